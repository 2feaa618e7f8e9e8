#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-crash-scep-tpm.sh BUILD_DIR
#
# kill -9 of `dmclient run` in the middle of a KeyProtection 1 (TPM) SCEP enrollment
# (docs/keys.md, docs/testing.md "Crash consistency"): a software TPM (swtpm,
# tests/scripts/lib/swtpm.sh) and a pending peer that answers PENDING twice per transaction
# (-unavailable 1 first: one HTTP 500), RetryDelay 1 "minute" of DMCLIENT_MINUTE_SECONDS=1.
# `dmclient run --until-idle` is started again and again and killed (SIGKILL) after a random
# delay (CRASH_SEED, default 1) until CRASH_KILLS (default 30) runs really died of it.  After
# every kill:
#   - `dmclient store check` passes;
#   - no plaintext private key anywhere under the state directory: no PRIVATE KEY or RSA
#     PRIVATE KEY PEM, and no base64 in a state record that decodes to a PKCS#8 or PKCS#1
#     private key (the enrollment record keeps the TPM blob across PENDING);
#   - no orphan key blob: every file in store/keys is the key of a certificate in the store,
#     and a TSS2 PRIVATE KEY;
#   - Status is 32, 2 or 1 and never goes back (32 -> 2 -> 1); once 1, a new enrollment
#     (TpmCrash2, 3 ...: a new key in the TPM each) is ordered and the kills go on.
# Between kills the TPM's transient objects are flushed (tpm2_flushcontext -t), as the
# kernel's resource manager (/dev/tpmrm0) does when a process dies; swtpm has none.
# Then an uninterrupted `dmclient run --until-idle`: Status 1; each certificate with its TSS2
# key (its public key, read by openssl -provider tpm2, is the certificate's); one
# transactionID per enrollment at the peer and one result alert each.
# The outer part builds the bed and re-runs this script in new network + PID namespaces
# (bed_rerun_isolated, as test-scep-enroll.sh).  Scratch directory
# BUILD_DIR/test-crash-scep-tpm.XXXXXX, removed on success unless SCEP_BED_KEEP=1.
# Needs what test-scep-bed.sh needs, swtpm, swtpm_setup, tpm2-openssl, tpm2-tools (./setup.sh).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-crash-scep-tpm.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
# shellcheck source=SCRIPTDIR/lib/dm-states.sh
. "$here/lib/dm-states.sh"
# shellcheck source=SCRIPTDIR/lib/swtpm.sh
. "$here/lib/swtpm.sh"
SCEP_BED_SRC=$(cd "$here/../scep" && pwd)
# shellcheck source=SCRIPTDIR/../scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"

# ============================================================ outer part (host)
if [ -z "${CRASH_TPM_INNER:-}" ]; then
    swtpm_available || { echo "FAIL: swtpm or the OpenSSL tpm2 provider missing (run ./setup.sh)"; exit 1; }
    scep_host_part "$0" "$build" test-crash-scep-tpm CRASH_TPM_INNER CRASH_TPM_WORK nothing \
        go curl openssl ip unshare pgrep awk timeout python3 tpm2_flushcontext
fi

# ============================================================ inner part (namespace)
t0=$(now)
bed_init "$CRASH_TPM_WORK" || exit 1
W=$SCEP_BED_DIR
DM=$build/bin/dmclient
CH=s3cr3t
CS=./Vendor/MSFT/CertificateStore/My/SCEP
S=$W/state
seed=${CRASH_SEED:-1}
kills_wanted=${CRASH_KILLS:-30}
export DMCLIENT_MINUTE_SECONDS=1

swtpm_start "$W/tpm" || { fail "swtpm did not start"; exit 1; }
export DMCLIENT_TPM_TCTI="$swtpm_tcti"
purl=$(bed_start_peer peer "$W/peer-depot" -challenge "$CH" -pending 2 -unavailable 1) ||
    { fail "start the pending peer"; exit 1; }
pthumb=$(bed_thumbprint "$W/peer-depot/ca.pem")

# enroll N: a new KeyProtection 1 enrollment TpmCrashN (its URI in $B)
enroll() {
    B=$CS/TpmCrash$1
    msg_begin "$W/enroll$1.xml"
    m_scep_enroll "$B" "$purl" "$pthumb" "$CH" 10 2048 "CN=CrashTpm$1,O=Test" "" "" 1
    msg_end
    dm "$S" process "$W/enroll$1.xml" >"$W/enroll$1.reply" 2>"$W/enroll$1.err" ||
        { fail "dmclient process: $(cat "$W/enroll$1.err")"; exit 1; }
}
n_enroll=1
enroll 1

# checks after a kill: "" or the problems, one per line
after_kill() {
    dm "$S" store check >"$W/check.out" 2>&1 || echo "store check: $(tr '\n' ' ' <"$W/check.out")"
    grep -rl -e '-----BEGIN PRIVATE KEY-----' -e '-----BEGIN RSA PRIVATE KEY-----' "$S" 2>/dev/null |
        sed 's/^/plaintext key PEM in /'
    python3 - "$S" <<'PYEOF'
import base64, os, re, subprocess, sys
top = sys.argv[1]
# a base64 run that decodes to a private key (PKCS#8 or PKCS#1) in any state record
for d, _, files in os.walk(os.path.join(top, 'store', 'state')):
    for f in files:
        text = open(os.path.join(d, f), 'rb').read().decode('latin-1')
        for tok in re.findall(r'[A-Za-z0-9+/=]{200,}', text):
            try:
                der = base64.b64decode(tok, validate=True)
            except Exception:
                continue
            for form in ('PKCS8', 'RSA'):
                r = subprocess.run(['openssl', 'pkey', '-inform', 'DER', '-noout'], input=der,
                                   capture_output=True)
                if r.returncode == 0:
                    print('plaintext private key (base64 DER) in state record ' + f)
                    break
PYEOF
    _certs=$(dm "$S" store list my-system 2>/dev/null | awk '{print $2}')
    for _k in "$S"/store/keys/*; do
        [ -e "$_k" ] || continue
        _t=${_k##*/my-system-}
        printf '%s\n' "$_certs" | grep -qx "$_t" || echo "orphan key file ${_k##*/}"
        head -n 1 "$_k" | grep -qx -- '-----BEGIN TSS2 PRIVATE KEY-----' ||
            echo "key file ${_k##*/} is not a TSS2 PRIVATE KEY"
    done
}
rank() { case $1 in 32) echo 0 ;; 2) echo 1 ;; 1) echo 2 ;; *) echo 9 ;; esac; }

# ---- kill -9 at random points
kills=0 runs=0 last=32 problems=0
rand_state=$seed
next_delay() { # $d: a delay in seconds, 0.000 .. 1.999, from a small LCG of the seed
    rand_state=$(( (rand_state * 1103515245 + 12345) % 2147483648 ))
    d=$(( (rand_state >> 8) % 2000 ))
    d=$((d / 1000)).$(printf '%03d' $((d % 1000)))
}
while [ "$kills" -lt "$kills_wanted" ] && [ "$runs" -lt $((kills_wanted * 4)) ]; do
    next_delay
    # dmclient itself, not under timeout(1): the SIGKILL must reach it
    "$DM" --state-dir "$S" run --until-idle -v >>"$W/run.log" 2>&1 &
    pid=$!
    sleep "$d"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    st=$?
    runs=$((runs + 1))
    [ "$st" -eq 137 ] && kills=$((kills + 1))
    # what the kernel's resource manager does when a TPM user dies
    tpm2_flushcontext -T "$swtpm_tcti" -t >/dev/null 2>&1
    p=$(after_kill)
    s=$(get "$S" "$B/Status")
    if [ "$(rank "$s")" -lt "$(rank "$last")" ] || [ "$(rank "$s")" -eq 9 ]; then
        p="$p
Status $s after $last"
    fi
    last=$s
    if [ -n "$(printf '%s' "$p" | tr -d '\n')" ]; then
        fail "after run $runs (killed after $d s, exit $st): $(printf '%s' "$p" | tr '\n' ';')"
        problems=$((problems + 1))
        [ "$problems" -ge 3 ] && break
    fi
    if [ "$s" = 1 ]; then # installed: the next enrollment (a new key in the TPM)
        n_enroll=$((n_enroll + 1))
        enroll "$n_enroll"
        last=32
    fi
done
echo "kills: $kills of $runs runs; $n_enroll enrollments; Status $last"
[ "$kills" -ge 5 ] && ok "$kills runs killed by SIGKILL in the middle of the enrollment, each checked" ||
    fail "only $kills runs were killed"

# ---- finish uninterrupted
dm "$S" run --until-idle -v >>"$W/run.log" 2>&1 || fail "the final dmclient run failed"
expect_get "$S" "$B/Status" 1
expect_get "$S" "$B/ErrorCode" 0
p=$(after_kill)
[ -z "$p" ] && ok "final state: store consistent, no plaintext key, no orphan key blob" ||
    fail "final state: $(printf '%s' "$p" | tr '\n' ';')"
# every certificate with its own TSS2 key, that key the certificate's
for th in $(thumbs "$S" my-system); do
    key=$S/store/keys/my-system-$th
    dm "$S" store export my-system --key "$th" >"$W/cert.pem" 2>/dev/null
    pub=$(TPM2OPENSSL_TCTI=$swtpm_tcti openssl pkey -provider tpm2 -provider default -in "$key" -pubout 2>/dev/null)
    [ -n "$pub" ] && [ "$pub" = "$(openssl x509 -in "$W/cert.pem" -noout -pubkey)" ] ||
        fail "certificate $th: the TPM key does not match it"
done
th=$(get "$S" "$B/CertThumbprint")
dm "$S" store export my-system --key "$th" >"$W/cert.pem" 2>/dev/null
key=$S/store/keys/my-system-$th
pub=$(TPM2OPENSSL_TCTI=$swtpm_tcti openssl pkey -provider tpm2 -provider default -in "$key" -pubout 2>/dev/null)
[ -n "$pub" ] && [ "$pub" = "$(openssl x509 -in "$W/cert.pem" -noout -pubkey)" ] &&
    ok "the certificate's key is the TPM key in store/keys (openssl -provider tpm2)" ||
    fail "the TPM key does not match the certificate ($key)"
# one transactionID per enrollment (a kill never makes a second key for a sent request)
tids=$(sed -n 's/.*op=PKIOperation .* tid=\([^ ]*\) .*/\1/p' "$W/peer.log" | sort -u)
n=$(printf '%s\n' "$tids" | grep -c .)
[ "$n" -eq "$n_enroll" ] && ok "$n_enroll enrollments, $n transactionIDs at the peer" ||
    fail "$n transactionIDs at the peer for $n_enroll enrollments"
alerts=$(dm "$S" alerts 2>/dev/null | grep -c "$CS/TpmCrash[0-9]*/Install/Enroll")
[ "$alerts" -eq "$n_enroll" ] && ok "one result alert per enrollment" ||
    fail "$alerts result alerts for $n_enroll enrollments"

unset DMCLIENT_TPM_TCTI
swtpm_stop
bed_stop_all
san='ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer'
grep -q -E "$san" "$W/run.log" && fail "sanitizer report in $W/run.log"
echo "inner part took $(since "$t0") s; failures: $failures"
[ "$failures" -eq 0 ]
