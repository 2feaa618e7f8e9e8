#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-scep-tpm.sh BUILD_DIR
#
# SCEP enrollment with KeyProtection 1 and 2 (docs/keys.md, docs/enrollment.md) against the
# SCEP test bed (tests/scep/) and a software TPM (Debian swtpm, tests/scripts/lib/swtpm.sh)
# reached through DMCLIENT_TPM_TCTI; every case has its own state directory:
#   1 micromdm scepserver, KeyProtection 1 (its reply is single-DES: the content key is
#     decrypted in the TPM): Status 1; the key file is a TSS2 PRIVATE KEY, mode 0600, whose
#     public key (openssl -provider tpm2) is the certificate's; no plaintext private key
#     anywhere in the state directory
#   2 pending peer, KeyProtection 1, -pending 1: Status 2, then 1 in a second dmclient run
#     (the key is loaded from its TPM blob in the enrollment record); the same key checks
#   3 KeyProtection 1, tpm_tcti set but no TPM answers there: Status 16, ErrorCode
#     0x8028400F (TBS_E_TPM_NOT_FOUND), no PKIOperation at the peer, no key file
#   4 KeyProtection 1 and no TPM configured: Status 16, 0x8028400F at once
#   5 KeyProtection 2, no TPM answers: Status 1 with a software key ("PRIVATE KEY"); the log
#     says it fell back, and so does ./Vendor/omadm/CertificateKeys/my-system/<THUMB>
#     ("Software"; "TPM" in cases 1, 2 and 6)
#   6 KeyProtection 2 with the TPM: Status 1, a TSS2 key
#   7 dmclient session with the TLS client certificate of case 2 (--client-cert): the key
#     signs in the TPM (omadm_certstore_tls_key, libcurl's SSL_CTX); dmserver requires a
#     certificate of the peer's CA, logs CN=TpmDevice, and reads the enrollment's result
#     alert, Status and CertThumbprint (script scep-session, phase 2); without a TPM
#     configured the session fails before sending anything, saying why
#   9 pending peer, KeyProtection 1: PENDING, then a step while the TPM does not answer (the
#     saved key cannot be loaded: Status stays 2, the log says why), then with the TPM
#     back: Status 1 with the same TPM key
#   8 dmclient store export my-system THUMB --key: the certificate and its TSS2 blob; `openssl
#     pkeyutl -provider tpm2 -sign` with the exported file, verified with the certificate's
#     public key (case 5: a software key is refused)
# The outer part builds the bed and re-runs this script in new network + PID namespaces
# (bed_rerun_isolated, as test-scep-enroll.sh); swtpm runs inside them on 127.0.0.1.
# Scratch directory BUILD_DIR/test-scep-tpm.XXXXXX, removed on success unless SCEP_BED_KEEP=1.
# Needs what test-scep-bed.sh needs and swtpm, swtpm_setup, tpm2-openssl (./setup.sh).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-scep-tpm.sh BUILD_DIR}
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
if [ -z "${SCEP_TPM_INNER:-}" ]; then
    swtpm_available || { echo "FAIL: swtpm or the OpenSSL tpm2 provider missing (run ./setup.sh)"; exit 1; }
    scep_host_part "$0" "$build" test-scep-tpm SCEP_TPM_INNER SCEP_TPM_WORK \
        "case 1 (scepserver) skipped" scepserver go curl openssl ip unshare pgrep awk timeout
fi

# ============================================================ inner part (namespace)
t0=$(now)
bed_init "$SCEP_TPM_WORK" || exit 1
W=$SCEP_BED_DIR
DM=$build/bin/dmclient
CH=s3cr3t
SUBJ=CN=TpmDevice,O=Test
CS=./Vendor/MSFT/CertificateStore/My/SCEP
NO_TPM=-2144845809
export DMCLIENT_MINUTE_SECONDS=1
netns=yes
if [ -n "${SCEP_BED_NO_NETNS:-}" ]; then
    netns=
elif ! bed_in_private_netns; then
    fail "not in a loopback-only network namespace:"; ip -o link show
    exit 1
fi

swtpm_start "$W/tpm" || { fail "swtpm did not start"; exit 1; }
TPM=$swtpm_tcti
# a TCTI where nothing answers
dead_port=$(swtpm_free_port)
DEAD_TPM="swtpm:host=127.0.0.1,port=$dead_port"

run() { # run STATE LOG ARGS...: dmclient run ARGS -v, stderr appended to LOG
    _st=$1 _log=$2; shift 2
    dm "$_st" run "$@" -v 2>>"$_log"
    _rc=$?
    [ "$_rc" -eq 0 ] || fail "dmclient run $* in $_st: exit $_rc (log $_log)"
}
process() { # process STATE MSG: dmclient process; every Status 200
    dm "$1" process "$2" >"$2.reply" 2>"$2.err"
    _rc=$?
    [ "$_rc" -eq 0 ] || { fail "dmclient process $2: exit $_rc ($(cat "$2.err"))"; return 1; }
    _bad=$(statuses "$2.reply" | awk '$3 != 200' | tr '\n' ';')
    [ -z "$_bad" ] || fail "reply to $2: not 200: $_bad"
}
enroll() { # enroll STATE BASE/ID URL THUMB KEYPROTECTION
    _ef=$1.msg$((sess + 1)).xml
    msg_begin "$_ef"
    m_scep_enroll "$2" "$3" "$4" "$CH" 3 2048 "$SUBJ" "" "" "$5"
    msg_end
    process "$1" "$_ef"
}
expect_status() {
    expect_get "$1" "$2/Status" "$3"
    expect_get "$1" "$2/ErrorCode" "$4"
}
# tpm_key_checks LABEL STATE: one certificate in my-system whose key file is a TSS2 key of
# mode 0600 with the certificate's public key, and no plaintext key in the state directory
tpm_key_checks() {
    _th=$(thumbs "$2" my-system)
    dm "$2" store export my-system >"$2.pem" 2>>"$W/get.err"
    _key=$2/store/keys/my-system-$_th
    if [ ! -f "$_key" ]; then
        fail "$1: no key file for '$_th'"; return
    fi
    head -n 1 "$_key" | grep -qx -- '-----BEGIN TSS2 PRIVATE KEY-----' &&
        ok "$1: the key file is a TSS2 PRIVATE KEY" || fail "$1: key file starts $(head -n 1 "$_key")"
    [ -n "$(find "$_key" -prune -type f -perm 600)" ] && ok "$1: key file mode 0600" ||
        fail "$1: key file mode $(find "$_key" -prune -printf %m)"
    _pub=$(TPM2OPENSSL_TCTI=$TPM openssl pkey -provider tpm2 -provider default -in "$_key" -pubout 2>>"$W/openssl.err")
    [ -n "$_pub" ] && [ "$_pub" = "$(openssl x509 -in "$2.pem" -noout -pubkey)" ] &&
        ok "$1: the TPM key (loaded by openssl -provider tpm2) is the certificate's" ||
        fail "$1: the TPM key's public key differs from the certificate's"
    expect_get "$2" "./Vendor/omadm/CertificateKeys/my-system/$_th" TPM
    _plain=$(grep -rl -e '-----BEGIN PRIVATE KEY-----' -e '-----BEGIN RSA PRIVATE KEY-----' "$2" 2>/dev/null)
    [ -z "$_plain" ] && ok "$1: no plaintext private key in the state directory" ||
        fail "$1: plaintext private keys in: $_plain"
}
peer() { # peer NAME ARGS...: a pending peer; $purl, $pthumb
    _pn=$1; shift
    purl=$(bed_start_peer "$_pn" "$W/$_pn-depot" -challenge "$CH" "$@") ||
        { fail "start peer $_pn"; return 1; }
    pthumb=$(bed_thumbprint "$W/$_pn-depot/ca.pem")
}

# ---- 1. micromdm scepserver, KeyProtection 1
if [ -n "$netns" ]; then
    bed_micromdm_depot "$W/micromdm-depot" 2048 || fail "scepserver ca -init"
    murl=$(bed_start_scepserver scepserver "$W/micromdm-depot" 8080 "$CH") ||
        { fail "start scepserver"; exit 1; }
    S=$W/s1 B=$CS/Tpm1
    export DMCLIENT_TPM_TCTI="$TPM"
    enroll "$S" "$B" "$murl" "$(bed_thumbprint "$W/micromdm-depot/ca.pem")" 1
    run "$S" "$S.log" --until-idle
    expect_status "$S" "$B" 1 0
    tpm_key_checks "case 1" "$S"
    openssl verify -CAfile "$W/micromdm-depot/ca.pem" "$S.pem" >/dev/null 2>&1 &&
        ok "case 1: the certificate chains to the scepserver CA" || fail "case 1: certificate does not verify"
    grep -q 'KeyProtection 1: the key is made in the TPM' "$S.log" && ok "case 1: log says the key is in the TPM" ||
        fail "case 1: log does not say the key is made in the TPM"
else
    echo "SKIP: case 1 (micromdm scepserver needs a private network namespace)"
fi

# ---- 2. pending peer, KeyProtection 1, PENDING once
S=$W/s2 B=$CS/Tpm2
export DMCLIENT_TPM_TCTI="$TPM"
peer p2 -pending 1
enroll "$S" "$B" "$purl" "$pthumb" 1
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
tpm_key_checks "case 2" "$S"
openssl verify -CAfile "$W/p2-depot/ca.pem" "$S.pem" >/dev/null 2>&1 &&
    ok "case 2: the certificate chains to the peer's CA" || fail "case 2: certificate does not verify"
ops=$(grep 'op=PKIOperation' "$W/p2.log" | sed 's/.* type=\([A-Za-z]*\) .* answer=\([A-Z]*\).*/\1:\2/' | tr '\n' ' ')
[ "$ops" = "PKCSReq:PENDING CertPoll:SUCCESS " ] && ok "case 2: peer log: $ops" || fail "case 2: peer log: '$ops'"

# ---- 7. dmclient session authenticates with the TPM key of case 2 (TLS client certificate)
sh "$here/../dmserver/make-certs.sh" "$W/pki" >/dev/null 2>&1 || fail "make-certs.sh"
# tls_session NAME WANT_RC STATE THUMB SCRIPT [SERVER ARGS...]: dmclient session with the
# client certificate THUMB against dmserver SCRIPT, which wants a client certificate of the
# pending peer's CA; the server's verdict is the return status
tls_session() {
    _n=$1 _want=$2 _st=$3 _th=$4 _script=$5
    shift 5
    rm -f "$W/$_n.port"
    python3 "$here/../dmserver/dmserver.py" --script "$_script" --port-file "$W/$_n.port" \
        --max-time 120 --cert "$W/pki/server.pem" --key "$W/pki/server.key" \
        --client-ca "$W/p2-depot/ca.pem" --syncmlconv "$build/tests/tools/syncmlconv" \
        --log "$W/$_n.srvlog" "$@" >"$W/$_n.out" 2>&1 &
    _spid=$!
    _i=0
    while [ ! -s "$W/$_n.port" ] && kill -0 "$_spid" 2>/dev/null && [ $_i -lt 100 ]; do
        sleep 0.05; _i=$((_i + 1))
    done
    dm "$_st" session --server "https://127.0.0.1:$(cat "$W/$_n.port" 2>/dev/null)/omadm" \
        --cacert "$W/pki/ca.pem" --client-cert "$_th" >"$W/$_n.log" 2>&1
    _rc=$?
    kill -USR1 "$_spid" 2>/dev/null
    wait "$_spid"
    _src=$?
    [ "$_rc" -eq "$_want" ] || {
        fail "$_n: dmclient session exit $_rc, expected $_want: $(grep -v '^WARNING:\|^ERROR:' "$W/$_n.log" | tail -n 3)"
        return 1
    }
    return "$_src"
}
S=$W/s2
th=$(thumbs "$S" my-system)
export DMCLIENT_TPM_TCTI="$TPM"
# the server reads the enrollment's result alert and Status over the TPM-authenticated session
if tls_session tls7 0 "$S" "$th" scep-session --param phases=2 --param scep_base="$CS" \
    --param scep_id=Tpm2 --param scep_url="$purl" --param scep_ca_thumbprint="$pthumb"; then
    grep -q 'client certificate: .*TpmDevice' "$W/tls7.srvlog" &&
        ok "case 7: dmclient session authenticated with the TPM key (server saw CN=TpmDevice)" ||
        fail "case 7: the server did not log the client certificate: $(grep -i 'client cert' "$W/tls7.srvlog" | head -n 2)"
else
    fail "case 7: the session with the TPM key failed (server: $(tail -n 2 "$W/tls7.out"))"
fi
# without the TPM the key cannot be used: exit 1, a clear reason, nothing sent
export DMCLIENT_TPM_TCTI=
tls_session tls7b 1 "$S" "$th" no-request --param seconds=1 || true
grep -q "its key is in a TPM: .*no TPM is configured" "$W/tls7b.log" &&
    ok "case 7: without a TPM configured: $(grep -o 'its key is in a TPM.*' "$W/tls7b.log")" ||
    fail "case 7 without a TPM: $(cat "$W/tls7b.log")"

# ---- 8. store export --key: the certificate and the TPM blob; openssl -provider tpm2 signs
# with the exported blob, the signature verifies with the certificate's public key
export DMCLIENT_TPM_TCTI="$TPM"
S=$W/s2
dm "$S" store export my-system "$th" --key >"$W/export.pem" 2>"$W/export.err" ||
    fail "case 8: store export --key: $(cat "$W/export.err")"
[ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$W/export.pem")" -eq 1 ] &&
    [ "$(grep -c -- '-----BEGIN TSS2 PRIVATE KEY-----' "$W/export.pem")" -eq 1 ] &&
    [ "$(bed_thumbprint "$W/export.pem")" = "$th" ] &&
    ok "case 8: store export --key wrote the certificate $th and its TSS2 key" ||
    fail "case 8: export: $(grep -- '-----BEGIN' "$W/export.pem" | tr '\n' ' ')"
printf 'signed in the TPM\n' >"$W/msg"
openssl x509 -in "$W/export.pem" -noout -pubkey >"$W/export-pub.pem"
if TPM2OPENSSL_TCTI=$TPM openssl pkeyutl -provider tpm2 -provider default -sign -inkey "$W/export.pem" \
        -rawin -digest sha256 -in "$W/msg" -out "$W/msg.sig" 2>"$W/openssl-sign.err" &&
    openssl pkeyutl -verify -pubin -inkey "$W/export-pub.pem" -rawin -digest sha256 -in "$W/msg" \
        -sigfile "$W/msg.sig" >/dev/null 2>&1; then
    ok "case 8: openssl pkeyutl -provider tpm2 -sign with the exported blob; verified with the certificate's key"
else
    fail "case 8: openssl with the exported blob: $(grep -v '^WARNING:\|^ERROR:' "$W/openssl-sign.err" | tail -n 3)"
fi

# ---- 3. KeyProtection 1, a TCTI where no TPM answers
S=$W/s3 B=$CS/NoTpm
export DMCLIENT_TPM_TCTI="$DEAD_TPM"
peer p3
n0=$(count "$W/p3.log" 'op=PKIOperation')
enroll "$S" "$B" "$purl" "$pthumb" 1
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 16 "$NO_TPM"
[ "$(count "$W/p3.log" 'op=PKIOperation')" -eq "$n0" ] && ok "case 3: no PKIOperation reached the peer" ||
    fail "case 3: PKIOperation sent without a TPM"
[ -z "$(names_in "$S/store/keys")" ] && ok "case 3: no key file" || fail "case 3: key files: $(names_in "$S/store/keys")"
grep -q 'KeyProtection 1 requires a TPM' "$S.log" && ok "case 3: log: $(grep -o 'KeyProtection 1 requires a TPM.*' "$S.log" | head -n 1)" ||
    fail "case 3: the log does not say why"

# ---- 9. a PENDING TPM enrollment while its TPM is away: tried again later, then finished
S=$W/s9 B=$CS/TpmAway
peer p9 -pending 2
export DMCLIENT_TPM_TCTI="$TPM"
enroll "$S" "$B" "$purl" "$pthumb" 1
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
sleep 1.1
export DMCLIENT_TPM_TCTI="$DEAD_TPM"
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
grep -q 'TpmAway: the TPM cannot load the saved key' "$S.log" &&
    ok "case 9: the saved key waits for its TPM: $(grep -o 'the TPM cannot load the saved key.*' "$S.log" | head -n 1)" ||
    fail "case 9: no word of the missing TPM in the log"
export DMCLIENT_TPM_TCTI="$TPM"
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
tpm_key_checks "case 9" "$S"

# ---- 4. KeyProtection 1, no TPM configured: refused at Exec
S=$W/s4 B=$CS/NoTcti
export DMCLIENT_TPM_TCTI=
enroll "$S" "$B" "$purl" "$pthumb" 1
expect_status "$S" "$B" 16 "$NO_TPM"

# ---- 5. KeyProtection 2, no TPM answers: software key, said so
S=$W/s5 B=$CS/Fallback
export DMCLIENT_TPM_TCTI="$DEAD_TPM"
enroll "$S" "$B" "$purl" "$pthumb" 2
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
th=$(thumbs "$S" my-system)
head -n 1 "$S/store/keys/my-system-$th" 2>/dev/null | grep -qx -- '-----BEGIN PRIVATE KEY-----' &&
    ok "case 5: a software key (PKCS#8)" || fail "case 5: key file: $(head -n 1 "$S/store/keys/my-system-$th" 2>&1)"
expect_get "$S" "./Vendor/omadm/CertificateKeys/my-system/$th" Software
expect_get "$S" ./Vendor/omadm/CertificateKeys/my-system "$th"
expect_get "$S" ./Vendor/omadm/CertificateKeys my-system/my-user
grep -q 'KeyProtection 2: .*falling back to a software key' "$S.log" &&
    ok "case 5: log: $(grep -o 'KeyProtection 2: .*' "$S.log" | head -n 1)" || fail "case 5: no fallback in the log"

# the fallback key is exported as the store holds it (PKCS#8), not as a TSS2 blob
th5=$th
if [ -n "$th5" ]; then
    dm "$W/s5" store export my-system "$th5" --key >"$W/export5.pem" 2>"$W/export5.err"
    rc5=$?
    [ "$rc5" -eq 0 ] && grep -q -- '-----BEGIN PRIVATE KEY-----' "$W/export5.pem" &&
        ! grep -q -- 'TSS2' "$W/export5.pem" &&
        [ "$(openssl x509 -in "$W/export5.pem" -noout -pubkey 2>/dev/null)" = \
          "$(openssl pkey -in "$W/export5.pem" -pubout 2>/dev/null)" ] &&
        ok "case 5: store export --key of the software fallback key: PKCS#8, the certificate's key" ||
        fail "case 5: export of a software key: exit $rc5, $(cat "$W/export5.err")"
fi

# ---- 6. KeyProtection 2 with the TPM
S=$W/s6 B=$CS/Kp2
export DMCLIENT_TPM_TCTI="$TPM"
enroll "$S" "$B" "$purl" "$pthumb" 2
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
tpm_key_checks "case 6" "$S"

# ============================================================ sanitizers, cleanup
unset DMCLIENT_TPM_TCTI
swtpm_stop
bed_stop_all
san='ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer'
san="$san|==[0-9]+==ERROR"
reports=$(grep -l -E "$san" "$W"/*.log "$W"/*.err 2>/dev/null | tr '\n' ' ')
[ -z "$reports" ] && ok "no sanitizer report in any dmclient output" ||
    fail "sanitizer reports in: $reports"
echo "inner part took $(since "$t0") s; failures: $failures"
[ "$failures" -eq 0 ]
