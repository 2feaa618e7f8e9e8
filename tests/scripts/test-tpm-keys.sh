#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-tpm-keys.sh BUILD_DIR
#
# The TPM key store (csp/keystore_tpm.c, docs/keys.md) against a software TPM
# (Debian's swtpm, tests/scripts/lib/swtpm.sh) on 127.0.0.1:
#   1 BUILD_DIR/tests/test_keystore with OMADM_TEST_TPM_TCTI set: keys made in the
#     TPM, their TSS2 blob loaded again, signatures and decryption in the TPM, the
#     SCEP CSR and signer certificate signed there (none of its TPM cases skipped)
#   2 the key test_keystore imported (TPM2_Import of a software key), written as a TSS2
#     PRIVATE KEY PEM: `openssl pkeyutl -provider tpm2 -sign` signs with it and the
#     signature verifies with its public key under OpenSSL's default provider;
#     tpm2-tools' tpm2_load takes it under the same ECC storage primary
#   (the export of an enrolled TPM key is in test-scep-tpm.sh)
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
if OMADM_TEST_TPM_TCTI=$swtpm_tcti OMADM_TEST_TPM_IMPORTED=$tmp/imported.der \
    "$build/tests/test_keystore" >"$tmp/unit.log" 2>&1; then
    if grep -q SKIPPED "$tmp/unit.log"; then
        fail "test_keystore skipped TPM cases: $(grep SKIPPED "$tmp/unit.log" | head -n 3)"
    else
        ok "test_keystore passed with the TPM"
    fi
else
    fail "test_keystore failed with the TPM:"
    grep -v '^WARNING:\|^ERROR:' "$tmp/unit.log" | tail -n 20
fi

# 2 the imported key with OpenSSL's tpm2 provider
if [ -s "$tmp/imported.der" ]; then
    { echo '-----BEGIN TSS2 PRIVATE KEY-----'; base64 -w 64 "$tmp/imported.der"
      echo '-----END TSS2 PRIVATE KEY-----'; } >"$tmp/imported.pem"
    printf 'signed by the TPM\n' >"$tmp/msg"
    export TPM2OPENSSL_TCTI="$swtpm_tcti"
    if openssl pkeyutl -provider tpm2 -provider default -sign -inkey "$tmp/imported.pem" \
            -rawin -digest sha256 -in "$tmp/msg" -out "$tmp/sig" 2>"$tmp/openssl.err" &&
        openssl pkey -provider tpm2 -provider default -in "$tmp/imported.pem" -pubout \
            -out "$tmp/pub.pem" 2>>"$tmp/openssl.err" &&
        openssl pkeyutl -verify -pubin -inkey "$tmp/pub.pem" -rawin -digest sha256 \
            -in "$tmp/msg" -sigfile "$tmp/sig" >/dev/null 2>>"$tmp/openssl.err"; then
        ok "openssl -provider tpm2 signs with the imported key; the signature verifies"
    else
        fail "openssl with the imported key: $(grep -v '^WARNING:\|^ERROR:' "$tmp/openssl.err" | tail -n 3)"
    fi
    unset TPM2OPENSSL_TCTI
    # tpm2-tools: the key's public and private parts under an ECC primary of the
    # provider's template
    if command -v tpm2_load >/dev/null 2>&1; then
        python3 - "$tmp/imported.der" "$tmp" <<'PYEOF'
import sys
der = open(sys.argv[1], 'rb').read()
def tlv(b, i):
    t, l = b[i], b[i + 1]
    i += 2
    if l & 0x80:
        n = l & 0x7f
        l = int.from_bytes(b[i:i + n], 'big')
        i += n
    return t, i, l
t, i, l = tlv(der, 0)
octets = []
while i < len(der):
    t, j, l = tlv(der, i)
    if t == 0x04:
        octets.append(der[j:j + l])
    i = j + l
open(sys.argv[2] + '/pub.bin', 'wb').write(octets[0])
open(sys.argv[2] + '/priv.bin', 'wb').write(octets[1])
PYEOF
        A='restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'
        if tpm2_createprimary -T "$swtpm_tcti" -C o -g sha256 -G ecc256:null:aes128cfb -a "$A" \
                -c "$tmp/primary.ctx" >/dev/null 2>"$tmp/tools.err" &&
            tpm2_load -T "$swtpm_tcti" -C "$tmp/primary.ctx" -u "$tmp/pub.bin" -r "$tmp/priv.bin" \
                -c "$tmp/key.ctx" >/dev/null 2>>"$tmp/tools.err"; then
            ok "tpm2_load loads the imported key under the ECC storage primary"
        else
            fail "tpm2_load: $(tail -n 3 "$tmp/tools.err")"
        fi
    fi
else
    fail "test_keystore left no imported key"
fi

swtpm_stop
bg=
finish test-tpm-keys
