#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-tpm-keys.sh BUILD_DIR
#
# The TPM key store (csp/keystore_tpm.c, docs/keys.md) against a software TPM
# (Debian's swtpm, tests/scripts/lib/swtpm.sh) on 127.0.0.1:
#   1 BUILD_DIR/tests/test_keystore with OMADM_TEST_TPM_TCTI set: keys made in the
#     TPM, their TSS2 blob loaded again, signatures and decryption in the TPM, the
#     SCEP CSR and signer certificate signed there (none of its TPM cases skipped)
#   (the export of an enrolled TPM key and `openssl -provider tpm2` are in
#   test-scep-tpm.sh)
# Needs swtpm, swtpm_setup, tpm2-openssl (./setup.sh).
set -u

build=${1:?usage: test-tpm-keys.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/swtpm.sh
. "$here/lib/swtpm.sh"

if ! swtpm_available; then
    fail "swtpm, swtpm_setup or the OpenSSL tpm2 provider is missing (./setup.sh installs them)"
    finish test-tpm-keys
fi
scratch_dir test-tpm-keys
swtpm_start "$tmp/tpm" || { fail "swtpm did not start"; finish test-tpm-keys; }
bg=$swtpm_pid

# 1 the unit test's TPM cases
if OMADM_TEST_TPM_TCTI=$swtpm_tcti "$build/tests/test_keystore" >"$tmp/unit.log" 2>&1; then
    if grep -q SKIPPED "$tmp/unit.log"; then
        fail "test_keystore skipped TPM cases: $(grep SKIPPED "$tmp/unit.log" | head -n 3)"
    else
        ok "test_keystore passed with the TPM"
    fi
else
    fail "test_keystore failed with the TPM:"
    grep -v '^WARNING:\|^ERROR:' "$tmp/unit.log" | tail -n 20
fi

swtpm_stop
bg=
finish test-tpm-keys
