#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-wstep-renew.sh BUILD_DIR - the renewal of the DM identity certificate over
# MS-WSTEP (docs/wstep.md), end to end: dmclient session against tests/dmserver (TLS with the
# identity as client certificate, --client-ca), the renewal as background work (dmclient run)
# against tests/wstep/wstep_peer.py, then the next session.
#
#   1. RenewNow: session 1 adopts the identity (dmclient.conf client_cert), sets ServerURL and
#      the schedule in one Atomic (C5) and Execs RenewNow; `run --once` renews: My/System holds
#      the new certificate (the one the peer delivered) and its key, not the old one; Status 2;
#      session 2 authenticates with the new certificate (serial in dmserver's log), gets the
#      result alert (Data "2 NEWTHUMB 0"), session 3 none; the peer's checks all pass
#   2. scheduled: RenewPeriod 60 days and a 2-day certificate: not due with
#      DMCLIENT_MINUTE_SECONDS=1 (60 days are 86400 s there), due with 60 (real days)
#   3. server errors: a SOAP fault (Authorization), a deviceenrollmentserviceerror detail
#      (NotEligibleToRenew): Status 3 and the HRESULT of tests/wstep/README.md, the identity
#      unchanged, the alert "3 THUMB HRESULT" marked critical; a redirect (not followed,
#      0x8018001A), a certificate for another key (0x80180001)
#   4. server down: Status 3, ErrorCode 0x80180010 (MENROLL_E_CONNECTIVITY), the next attempt
#      due RetryInterval days later
#      then a WSTEP record of a newer format: left alone, named by store check, the session
#      authenticates with the configured certificate
#   5. kill -9 while the peer holds the answer back: the store is consistent with exactly one
#      identity (the old one), Status 1; the next run renews
#   6. an RSA identity that expired 2 hours ago: with RetryAfterExpiryInterval 0 nothing is due; with
#      1 (day) the renewal is attempted (the peer allows an expired certificate) and succeeds
#
# About 5 s of CPU (14 s of wall time here).  Skips (exit 0, SKIP line) without python3 and its
# cryptography module, openssl or timeout.  SCEP_BED_KEEP=1 keeps the scratch directory (kept on
# failure anyway).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u
build=${1:?usage: tests/scripts/test-wstep-renew.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
case $build in /*) ;; *) build=$top/$build ;; esac
dmclient=$build/bin/dmclient
conv=$build/tests/tools/syncmlconv
for c in python3 openssl timeout; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP wstep-renew: $c not found"; exit 0; }
done
python3 -c 'import cryptography' 2>/dev/null || { echo "SKIP wstep-renew: python3-cryptography"; exit 0; }
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-wstep-renew.XXXXXX") || exit 1
pids=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done
    scratch_done "$tmp" "$failures"
}
trap cleanup EXIT
trap 'failures=$((failures + 1)); exit 1' HUP INT TERM

sh "$top/tests/dmserver/make-certs.sh" "$tmp/pki" >/dev/null || { fail "make-certs.sh"; exit 1; }
pki=$tmp/pki
client_ca=$pki/client-ca.pem # dmserver requires a client certificate of this CA (unset: none)
BASE=./Vendor/MSFT/CertificateStore/My/WSTEP

wait_port() { # FILE PID
    _i=0
    while [ ! -s "$1" ] && kill -0 "$2" 2>/dev/null && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done
    [ -s "$1" ]
}

# peer NAME MODE [ARGS...]: a WSTEP peer for the identity $cur; sets $wport, $wpid, $wurl
peer() {
    _n=$1 _m=$2
    shift 2
    rm -f "$tmp/$_n.wport"
    python3 "$top/tests/wstep/wstep_peer.py" --cert "$pki/server.pem" --key "$pki/server.key" \
        --client-ca "$pki/client-ca.pem" --ca-cert "$pki/client-ca.pem" --ca-key "$pki/client-ca.key" \
        --current-cert "$cur" --issued-out "$tmp/$_n.issued.pem" --validity 3600 \
        --port-file "$tmp/$_n.wport" --log "$tmp/$_n.wlog" --summary "$tmp/$_n.wjson" \
        --state "$tmp/$_n.wstate" --max-time 300 --mode "$_m" "$@" >"$tmp/$_n.wout" 2>&1 &
    wpid=$!
    pids="$pids $wpid"
    wait_port "$tmp/$_n.wport" "$wpid" || { fail "$_n: the WSTEP peer did not start"; cat "$tmp/$_n.wout"; return 1; }
    wport=$(cat "$tmp/$_n.wport")
    wurl="https://127.0.0.1:$wport/EnrollmentServer/DeviceEnrollmentWebService.svc"
}
peer_end() { # NAME: 0 when the peer passed
    kill -TERM "$wpid" 2>/dev/null
    wait "$wpid"
    _rc=$?
    grep -q '^PASS: wstep_peer' "$tmp/$1.wout" && [ $_rc -eq 0 ]
}

# dms NAME PARAMS...: one DM session (dmserver script wstep-renew) with state $st
dms() {
    _n=$1
    shift
    rm -f "$tmp/$_n.port"
    _cnt=$#
    for a in "$@"; do set -- "$@" --param "$a"; done
    shift "$_cnt"
    python3 "$top/tests/dmserver/dmserver.py" --script "${dscript:-wstep-renew}" --port-file "$tmp/$_n.port" \
        --max-time 120 --cert "$pki/server.pem" --key "$pki/server.key" ${client_ca:+--client-ca "$client_ca"} \
        --syncmlconv "$conv" --log "$tmp/$_n.log" --summary "$tmp/$_n.json" "$@" >"$tmp/$_n.out" 2>&1 &
    _sp=$!
    pids="$pids $_sp"
    wait_port "$tmp/$_n.port" "$_sp" || { fail "$_n: dmserver did not start"; cat "$tmp/$_n.out"; return 1; }
    sed -i "s|^server_url.*|server_url = https://127.0.0.1:$(cat "$tmp/$_n.port")/omadm|" "$st/dmclient.conf"
    timeout -s KILL 60 "$dmclient" --state-dir "$st" session >"$tmp/$_n.client" 2>&1
    _crc=$?
    kill -USR1 "$_sp" 2>/dev/null
    wait "$_sp"
    _src=$?
    [ $_crc -eq 0 ] || { echo "dmclient session exit $_crc" >>"$tmp/$_n.out"; return 1; }
    [ $_src -eq 0 ]
}
dms_ok() { # NAME TEXT PARAMS...
    _n=$1 _t=$2
    shift 2
    if dms "$_n" "$@"; then ok "$_t"; else fail "$_t"; sed 's/^/    /' "$tmp/$_n.out" "$tmp/$_n.client" | grep -v '^    ok:' | tail -25; fi
}

# state NAME CERT KEY: a state directory whose DM identity is CERT (My/System, with KEY)
state() {
    st=$tmp/$1
    mkdir -p "$st"
    _t=$(cert_thumbprint "$2")
    msg_begin "$tmp/$1.add.xml" dmserver
    m_cmd Add "./Vendor/MSFT/CertificateStore/My/System/$_t/EncodedCertificate" b64 \
        "$(openssl x509 -in "$2" -outform DER | openssl base64 -A)"
    msg_end
    "$dmclient" --state-dir "$st" process "$tmp/$1.add.xml" >/dev/null 2>&1 || fail "$1: adding the identity"
    (umask 077 && openssl pkey -in "$3" >"$st/store/keys/my-system-$_t") || fail "$1: placing its key"
    cat >"$st/dmclient.conf" <<EOF
server_url = https://127.0.0.1:1/omadm
cacert = $pki/ca.pem
client_cert = $_t
EOF
    cur=$2
}

get() { # URI: the value of one node, through dmclient process
    msg_begin "$tmp/get.xml" dmserver
    m_cmd Get "$1"
    msg_end
    "$dmclient" --state-dir "$st" process "$tmp/get.xml" 2>/dev/null |
        sed -n 's|.*<Results>.*<Data>\([^<]*\)</Data>.*|\1|p'
}
my_system() { "$dmclient" --state-dir "$st" store list my-system 2>/dev/null | awk '{print $2}' | sort | tr '\n' ' '; }
serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/serial=//'; }
run_once() { DMCLIENT_MINUTE_SECONDS=${1:-1} timeout -s KILL 90 "$dmclient" --state-dir "$st" run --once -v >"$tmp/run.out" 2>&1; }

# identity NAME DAYS: a client certificate of the client CA (EC P-256), valid DAYS days
identity() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key" 2>/dev/null
    openssl req -new -key "$tmp/$1.key" -subj "/O=dmserver test/CN=omadm-device" -out "$tmp/$1.csr"
    printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$pki/client-ca.pem" -CAkey "$pki/client-ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days "$2" -sha256 -extfile "$tmp/$1.ext" \
        -out "$tmp/$1.pem" 2>/dev/null
}
next_due() { sed -n 's/.*next work due in \([0-9-]*\) s.*/\1/p' "$tmp/run.out" | tail -1; }
requests() { grep -c '^ *[0-9.]* request [0-9]*: [A-Z]* /' "$tmp/$1.wlog"; }
near() { [ -n "$1" ] && [ "$1" -ge $(($2 - 30)) ] && [ "$1" -le $(($2 + 30)) ]; }

# ---- 1. RenewNow
state s1 "$pki/client.pem" "$pki/client.key"
old=$(cert_thumbprint "$pki/client.pem")
peer p1 issue || exit 1
dms_ok s1-setup "session 1: ServerURL, the C5 Atomic, RenewNow: 200s; CertThumbprint the configured one" \
    mode=setup "wstep_url=$wurl" renew_now=1 "thumb=$old"
[ "$(get "$BASE/Renew/Status")" = 1 ] && ok "RenewNow: Status 1 (in progress) until the step" ||
    fail "Status after RenewNow: $(get "$BASE/Renew/Status")"
run_once || { fail "run --once: exit $?"; cat "$tmp/run.out"; }
if peer_end p1 && [ "$(requests p1)" = 1 ]; then ok "peer: one request, every check of it passed"; else
    fail "peer checks"; grep -E '^(FAIL|NOTE)' "$tmp/p1.wout" | head; fi
new=$(cert_thumbprint "$tmp/p1.issued.pem" 2>/dev/null)
[ -n "$new" ] && [ "$(my_system)" = "$new " ] &&
    ok "My/System holds the new certificate only" || fail "My/System: $(my_system) (new $new, old $old)"
[ -s "$st/store/keys/my-system-$new" ] && [ ! -e "$st/store/keys/my-system-$old" ] &&
    ok "the new key is in the store, the old one gone" || fail "keys: $(ls "$st/store/keys")"
[ "$(get "$BASE/Renew/Status")" = 2 ] && [ "$(get "$BASE/CertThumbprint")" = "$new" ] &&
    [ "$(get "$BASE/Renew/ErrorCode")" = 0 ] && [ -n "$(get "$BASE/Renew/LastRenewalAttemptTime")" ] &&
    ok "Status 2, CertThumbprint the new one, ErrorCode 0, LastRenewalAttemptTime set" ||
    fail "after renewal: Status $(get "$BASE/Renew/Status") thumb $(get "$BASE/CertThumbprint")"
"$dmclient" --state-dir "$st" store check >/dev/null 2>&1 && ok "store check passes" || fail "store check"
dms_ok s1-after "session 2: the result alert (2 NEWTHUMB 0); CertThumprint the new one" \
    mode=check "alert_data=2 $new 0" "thumb=$new" status=2 error=0
grep -q "client certificate: .*serial $(serial_of "$tmp/p1.issued.pem")" "$tmp/s1-after.log" &&
    ok "session 2 authenticated with the new certificate (serial $(serial_of "$tmp/p1.issued.pem"))" ||
    fail "session 2's client certificate: $(grep 'client certificate' "$tmp/s1-after.log")"
dms_ok s1-again "session 3: the alert was delivered once" mode=check "thumb=$new" status=2 error=0
grep -q "^client_cert = $old" "$st/dmclient.conf" && ok "dmclient.conf left as it was" || fail "dmclient.conf changed"

# ---- 2. scheduled by RenewPeriod (60 days) before the 2-day certificate's notAfter
state s2 "$pki/client.pem" "$pki/client.key"
peer p2 issue || exit 1
dms_ok s2-setup "scheduled: session 1 sets the schedule (no RenewNow)" mode=setup "wstep_url=$wurl" "thumb=$old"
run_once 1 || fail "run --once (minute 1 s): exit $?"
# at 1 s a minute, 60 days are 86400 s and the certificate has 2 x 86400 s left
due=$(next_due)
[ "$(requests p2)" = 0 ] && [ "$(get "$BASE/Renew/Status")" = 0 ] && near "$due" 86400 &&
    ok "DMCLIENT_MINUTE_SECONDS=1: not due yet; due in $due s (notAfter - 60 days of 1440 s)" ||
    fail "not due yet: requests $(requests p2), Status $(get "$BASE/Renew/Status"), due '$due'"
run_once 60 || fail "run --once (minute 60 s): exit $?"
peer_end p2 || fail "p2 peer checks"
new2=$(cert_thumbprint "$tmp/p2.issued.pem" 2>/dev/null)
[ -n "$new2" ] && [ "$(my_system)" = "$new2 " ] && [ "$(get "$BASE/Renew/Status")" = 2 ] &&
    ok "real days: the certificate is within RenewPeriod of expiry and was renewed" ||
    fail "scheduled renewal: $(my_system), Status $(get "$BASE/Renew/Status")"

# ---- 3. server errors: Status 3 and the HRESULT of tests/wstep/README.md
state s3 "$pki/client.pem" "$pki/client.key"
peer p3 fault:Authorization,detail:NotEligibleToRenew,redirect,wrong-key || exit 1
dms_ok s3-setup "faults: session 1 with RenewNow" mode=setup "wstep_url=$wurl" renew_now=1 "thumb=$old"
run_once 1 || fail "run --once: exit $?"
[ "$(get "$BASE/Renew/Status")" = 3 ] && [ "$(get "$BASE/Renew/ErrorCode")" = -2145910781 ] &&
    [ "$(my_system)" = "$old " ] &&
    ok "fault Authorization: Status 3, ErrorCode 0x80180003, the identity unchanged" ||
    fail "fault: Status $(get "$BASE/Renew/Status") ErrorCode $(get "$BASE/Renew/ErrorCode") $(my_system)"
dms_ok s3-alert "the failure alert: 3 THUMB -2145910781, critical; the session still authenticates" \
    mode=check "alert_data=3 $old -2145910781" alert_mark=critical "thumb=$old" status=3 error=-2145910781
dms_ok s3-again "faults: RenewNow again" mode=setup "wstep_url=$wurl" renew_now=1 "thumb=$old"
run_once 1 || fail "run --once: exit $?"
[ "$(get "$BASE/Renew/ErrorCode")" = -2145910762 ] &&
    ok "deviceenrollmentserviceerror NotEligibleToRenew: ErrorCode 0x80180016" ||
    fail "detail: ErrorCode $(get "$BASE/Renew/ErrorCode")"
renew_now() {
    msg_begin "$tmp/now.xml" dmserver
    m_cmd Exec "$BASE/Renew/RenewNow"
    msg_end
    "$dmclient" --state-dir "$st" process "$tmp/now.xml" 2>/dev/null | grep -q '<Cmd>Exec</Cmd><Data>200</Data>' ||
        fail "RenewNow through dmclient process"
}
renew_now
run_once 1 || fail "run --once: exit $?"
[ "$(get "$BASE/Renew/Status")" = 3 ] && [ "$(get "$BASE/Renew/ErrorCode")" = -2145910758 ] &&
    ok "a redirect is not followed: Status 3, ErrorCode 0x8018001A" ||
    fail "redirect: Status $(get "$BASE/Renew/Status") ErrorCode $(get "$BASE/Renew/ErrorCode")"
renew_now
run_once 1 || fail "run --once: exit $?"
[ "$(get "$BASE/Renew/ErrorCode")" = -2145910783 ] && [ "$(my_system)" = "$old " ] &&
    ok "a certificate for another key is refused: ErrorCode 0x80180001, the identity unchanged" ||
    fail "wrong key: ErrorCode $(get "$BASE/Renew/ErrorCode"), $(my_system)"
peer_end p3 && [ "$(requests p3)" = 4 ] && ok "peer: four requests, no redirect followed, every check passed" ||
    fail "p3 peer checks"
"$dmclient" --state-dir "$st" store check >/dev/null 2>&1 && ok "store check passes" || fail "store check"

# ---- 4. server down: a failed scheduled attempt, the next one RetryInterval (4) days later
identity id10 10
state s4 "$tmp/id10.pem" "$tmp/id10.key"
peer p4 issue || exit 1
downurl="https://127.0.0.1:$wport/EnrollmentServer/DeviceEnrollmentWebService.svc"
peer_end p4 || true
dms_ok s4-setup "server down: session 1 (ServerURL of a stopped service)" mode=setup "wstep_url=$downurl" \
    "thumb=$(cert_thumbprint "$tmp/id10.pem")"
run_once 60 || fail "run --once: exit $?"
due=$(next_due)
[ "$(get "$BASE/Renew/Status")" = 3 ] && [ "$(get "$BASE/Renew/ErrorCode")" = -2145910768 ] &&
    near "$due" 345600 &&
    ok "server down: Status 3, ErrorCode 0x80180010, the next attempt in $due s (4 days)" ||
    fail "server down: Status $(get "$BASE/Renew/Status") ErrorCode $(get "$BASE/Renew/ErrorCode") due '$due'"
run_once 60 || fail "run --once: exit $?"
due2=$(next_due)
[ -n "$due2" ] && [ "$due2" -le "$due" ] && [ "$due2" -gt 300000 ] &&
    ok "a step before the retry is due tries nothing (due in $due2 s)" || fail "second step: due '$due2'"

# a record of a newer format (a rollback): left alone, the session authenticates as configured
printf 'omadm-wstep 9\nwhat a later version writes\n' >"$st/store/state/wstep"
dscript=package1
dms_ok s4-newer "a newer WSTEP record: the session authenticates with the configured certificate"
dscript=
grep -q "client certificate: .*serial $(serial_of "$tmp/id10.pem")" "$tmp/s4-newer.log" &&
    ! "$dmclient" --state-dir "$st" store check >"$tmp/check.out" 2>&1 &&
    grep -q 'state/wstep: WSTEP record of a format newer' "$tmp/check.out" &&
    [ "$(cat "$st/store/state/wstep")" = "$(printf 'omadm-wstep 9\nwhat a later version writes')" ] &&
    ok "... and store check names the record, which is left as it was" ||
    fail "newer record: $(cat "$tmp/check.out")"

# ---- 5. kill -9 while the answer is held back
state s5 "$pki/client.pem" "$pki/client.key"
peer p5 slow:30 || exit 1
dms_ok s5-setup "kill -9: session 1 with RenewNow" mode=setup "wstep_url=$wurl" renew_now=1 "thumb=$old"
DMCLIENT_MINUTE_SECONDS=1 "$dmclient" --state-dir "$st" run --once >"$tmp/run5.out" 2>&1 &
rpid=$!
i=0
while ! grep -q 'answering in' "$tmp/p5.wlog" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -KILL "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
kill -TERM "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
"$dmclient" --state-dir "$st" store check >/dev/null 2>&1 && [ "$(my_system)" = "$old " ] &&
    [ "$(get "$BASE/Renew/Status")" = 1 ] && [ -s "$st/store/keys/my-system-$old" ] &&
    ok "killed mid-renewal: store consistent, the old identity only (with its key), Status 1" ||
    fail "after kill -9: $(my_system) Status $(get "$BASE/Renew/Status")"
peer p5b issue || exit 1
"$dmclient" --state-dir "$st" store check >/dev/null 2>&1 || fail "store check"
msg_begin "$tmp/url.xml" dmserver
m_cmd Replace "$BASE/Renew/ServerURL" chr "$wurl"
msg_end
"$dmclient" --state-dir "$st" process "$tmp/url.xml" >/dev/null 2>&1
run_once 1 || fail "run --once: exit $?"
peer_end p5b || fail "p5b peer checks"
new5=$(cert_thumbprint "$tmp/p5b.issued.pem" 2>/dev/null)
[ -n "$new5" ] && [ "$(my_system)" = "$new5 " ] && [ "$(get "$BASE/Renew/Status")" = 2 ] &&
    "$dmclient" --state-dir "$st" store check >/dev/null 2>&1 &&
    ok "the next run takes the renewal up again and finishes it" ||
    fail "after the kill, the next run: $(my_system) Status $(get "$BASE/Renew/Status")"

# ---- 6. after expiry: RetryAfterExpiryInterval
python3 - "$pki/client-ca.pem" "$pki/client-ca.key" "$tmp/expired" <<'PYEOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
ca_key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
now = datetime.datetime.now(datetime.timezone.utc)
name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dmserver test"),
                  x509.NameAttribute(NameOID.COMMON_NAME, "omadm-device")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3))
        .not_valid_after(now - datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
open(sys.argv[3] + ".pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[3] + ".key", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PYEOF
state s6 "$tmp/expired.pem" "$tmp/expired.key"
exp=$(cert_thumbprint "$tmp/expired.pem")
peer p6 issue --param allow_expired=1 || exit 1
# the DM server does not ask for a client certificate: it would refuse the expired one
client_ca=
dms_ok s6-setup "expired identity: session 1 sets the schedule" mode=setup "wstep_url=$wurl" "thumb=$exp"
client_ca=$pki/client-ca.pem
run_once 60 || fail "run --once: exit $?"
[ "$(requests p6)" = 0 ] && [ -z "$(next_due)" ] && [ "$(get "$BASE/Renew/Status")" = 0 ] &&
    ok "expired 2 h ago, RetryAfterExpiryInterval 0: nothing due, nothing sent" ||
    fail "after expiry: requests $(requests p6), due '$(next_due)', Status $(get "$BASE/Renew/Status")"
msg_begin "$tmp/after.xml" dmserver
m_cmd Replace "$BASE/Renew/RetryAfterExpiryInterval" int 1
msg_end
"$dmclient" --state-dir "$st" process "$tmp/after.xml" >/dev/null 2>&1
run_once 60 || fail "run --once: exit $?"
peer_end p6 || fail "p6 peer checks"
new6=$(cert_thumbprint "$tmp/p6.issued.pem" 2>/dev/null)
[ -n "$new6" ] && [ "$(my_system)" = "$new6 " ] && [ "$(get "$BASE/Renew/Status")" = 2 ] &&
    [ "$(openssl x509 -in "$tmp/p6.issued.pem" -noout -text | grep -c 'rsaEncryption')" = 1 ] &&
    ok "RetryAfterExpiryInterval 1 day: renewed after expiry (an RSA key again)" ||
    fail "after expiry with 1 day: $(my_system) Status $(get "$BASE/Renew/Status")"

finish test-wstep-renew
