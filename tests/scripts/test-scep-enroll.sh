#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-scep-enroll.sh BUILD_DIR
#
# SCEP enrollment end to end (docs/enrollment.md): BUILD_DIR/bin/dmclient gets a
# DM message (an Atomic of Adds + Exec of .../Install/Enroll), `dmclient run`
# does the enrollment against real SCEP servers of the test bed (tests/scep/,
# docs/testing.md "SCEP test bed"), and Status, ErrorCode, CertThumbprint,
# RespondentServerUrl, the store, the keys, the alerts and the servers' logs
# are checked.  Each case has its own state directory:
#   micromdm scepserver (port 8080, private network namespace only):
#    1 success: Status 1, the certificate (subject, SANs, chains to the CA),
#      its key (0600, matches), the result alert, store check, DES warning
#    2 wrong challenge: Status 16, ErrorCode 0xA0D00002 (FAILURE badRequest)
#    3 wrong CAThumbprint: Status 16, 0x800B0109, no PKIOperation sent
#   pending peer (127.0.0.1, a fresh one per case where its log is counted):
#    4 server down, RetryCount 2: Status 32 while retrying, then 16 and
#      0x80072EFD after 3 attempts
#    5 -pending 1: Status 2 after one step, then 1; chains to the peer's CA;
#      `store show` (thumbprint in the openssl colon form) reports its key
#      and install time, `store show --json` "private_key": true
#    6 -pending 5, RetryCount 2: Status 16, 0x800705B4, exactly 2 CertPolls
#    7 dmclient run killed (SIGKILL) while pending: Status 2 survives, the
#      next run finishes the same transaction (one PKCSReq, one transactionID)
#    8 Delete while pending: no further poll, nothing left behind
#    9 Delete after success: certificate and key removed
#   10 ServerURL list with a dead URL first: the second answers
#   11 base URL answers 404: /pkiclient.exe appended
#   12 ./User/.../ClientCertificateInstall: the certificate goes to My/User
#   13 Exec again after success: new certificate, the old one removed
#   14 Exec while pending: 405, the pending enrollment goes on
#   15 KeyLength 4096, the step started late in a second: the certificate
#      (notBefore = time of issue) arrives in a later second than the step began
#      (all other steps are started in the first half of a second)
#   16 the CA issues a certificate that expired yesterday: Status 16,
#      0x800B0101 (CERT_E_EXPIRED), nothing installed, no key, no Challenge left
#   17 ... one valid from 2 hours after issue: the same
#   18 ... one valid from 5 minutes after issue (within the 10-minute allowance
#      for a CA clock running ahead): Status 1
#   19 a GetCACert certificate whose public key does not decode (a python3
#      stdlib server, first in record order) next to a good enrollment, one
#      dmclient run: no crash, that one Status 16 0x80090005 without any
#      PKIOperation, the good one Status 1
#   20 the GetCACert, GetCACaps and PKCSReq of one step share one connection
#      (keep-alive; a python3 forwarder in front of the peer counts them)
# The outer part (on the host) builds the bed's Go programs into
# BUILD_DIR/scep and re-runs this script inside new network + PID namespaces
# (bed_run_in_netns): nothing outside can reach the servers and nothing
# survives the test.  Without namespaces (no CAP_SYS_ADMIN) the test fails;
# SCEP_BED_REQUIRE_NETNS=0 instead skips cases 1-3 with a SKIP line and runs
# the rest on the host's 127.0.0.1.  Scratch directory
# BUILD_DIR/test-scep-enroll.XXXXXX, removed on success unless SCEP_BED_KEEP=1.  Every dmclient runs under
# timeout(1) (the one killed on purpose is killed by its pid); anything a
# sanitizer prints fails the test.  DMCLIENT_MINUTE_SECONDS=1, RetryDelay 1.
# Needs what test-scep-bed.sh needs (./setup.sh) and timeout (coreutils).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-scep-enroll.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
# shellcheck source=SCRIPTDIR/lib/dm-states.sh
. "$here/lib/dm-states.sh"
SCEP_BED_SRC=$(cd "$here/../scep" && pwd)
# shellcheck source=SCRIPTDIR/../scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"


# ============================================================ outer part (host)
if [ -z "${SCEP_ENROLL_INNER:-}" ]; then
    scep_host_part "$0" "$build" test-scep-enroll SCEP_ENROLL_INNER SCEP_ENROLL_WORK \
        "cases 1-3 (scepserver) skipped" scepserver go curl openssl ip unshare pgrep awk timeout
fi

# ============================================================ inner part (namespace)
t0=$(now)
bed_init "$SCEP_ENROLL_WORK" || exit 1
W=$SCEP_BED_DIR
DM=$build/bin/dmclient
CH=s3cr3t
SUBJ=CN=AnnaLee,O=Test
SAN='11+tom@contoso.com;3+dev.contoso.com;2+tom@contoso.com'
EKU=1.3.6.1.5.5.7.3.2
ALERT_TYPE=com.microsoft:mdm.SCEPcertinstall.result
CS=./Vendor/MSFT/CertificateStore/My/SCEP
keylen=2048
export DMCLIENT_MINUTE_SECONDS=1
netns=yes
if [ -n "${SCEP_BED_NO_NETNS:-}" ]; then
    netns=
elif ! bed_in_private_netns; then
    fail "not in a loopback-only network namespace:"; ip -o link show
    exit 1
fi

# ---- dmclient (lib/dm-states.sh: dm STATE ARGS, get, expect_get, expect_missing, thumbs ...) --
# Every dmclient's stderr goes to a file under $W (*.err, *.log); all are searched for
# sanitizer reports at the end.
# Steps are started in the first half of a second (unless align=0): a CA that stamps notBefore
# with the time of issue (micromdm's signer, also the peer's) then issues in the second the step
# began, which is the time the certificate is checked at; case 15 covers the other case.
align=1
first_half() {
    [ "$align" = 1 ] || return 0
    case $(date +%N) in [5-9]*) ;; *) return 0 ;; esac
    _i=0
    while [ $_i -lt 100 ]; do
        case $(date +%N) in 0*) return 0 ;; esac
        sleep 0.01
        _i=$((_i + 1))
    done
}
run() { # run STATE LOG ARGS...: dmclient run ARGS -v, stderr appended to LOG; exit 0 expected
    _st=$1 _log=$2; shift 2
    _nyv0=$(count "$_log" 'not yet valid')
    first_half
    dm "$_st" run "$@" -v 2>>"$_log"
    _rc=$?
    [ "$_rc" -eq 0 ] || fail "dmclient run $* in $_st: exit $_rc (log $_log)"
    [ "$(count "$_log" 'not yet valid')" -gt "$_nyv0" ] &&
        echo "note: $(grep 'not yet valid' "$_log" | tail -n 1)"
    return "$_rc"
}
expect_store() { # expect_store STATE STORE WANT...: exactly these thumbprints (none: no WANT)
    _st=$1 _sn=$2; shift 2
    _want=$(for _t in "$@"; do echo "$_t"; done | sort | tr '\n' ' ' | sed 's/ $//')
    _got=$(thumbs "$_st" "$_sn")
    [ "$_got" = "$_want" ] && ok "store $_sn: ${_want:-empty}" ||
        fail "store $_sn: '$_got', expected '${_want:-}'"
}
keys_in() { names_in "$1/store/keys"; }
state_records() { names_in "$1/store/state"; }

# ---- DM messages (lib/syncml.sh: msg_begin, m_cmd, m_atomic ... msg_end) ---------------------
enroll_msg() { # enroll_msg FILE BASE/ID URLS THUMB CHALLENGE RETRYCOUNT: Atomic(Add ID, params, Exec)
    msg_begin "$1"
    m_scep_enroll "$2" "$3" "$4" "$5" "$6" "$keylen" "$SUBJ" "$SAN" "$EKU"
    msg_end
}
process() { # process STATE MSG: dmclient process; the reply in MSG.reply; every Status 200
    dm "$1" process "$2" >"$2.reply" 2>"$2.err"
    _rc=$?
    [ "$_rc" -eq 0 ] || { fail "dmclient process $2: exit $_rc ($(cat "$2.err"))"; return 1; }
    _bad=$(statuses "$2.reply" | awk '$3 != 200' | tr '\n' ';')
    _n=$(statuses "$2.reply" | wc -l)
    if [ -n "$_bad" ] || [ "$_n" -lt 2 ]; then
        fail "reply to $2: $_n statuses, not 200: $_bad"; return 1
    fi
}
status_of() { # status_of REPLY CMDID: the Status code answering CmdID
    statuses "$1" | awk -v r="$2" '$2 == r { print $3 }'
}
# enroll STATE BASE/ID URLS THUMB CHALLENGE RETRYCOUNT: process an enrollment message
enroll() {
    _ef=$1.msg$((sess + 1)).xml
    enroll_msg "$_ef" "$2" "$3" "$4" "$5" "$6"
    process "$1" "$_ef"
}

# ---- checks on certificates and logs ---------------------------------------------------------
pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey; }
export_cert() { # export_cert STATE STORE OUT.pem: the store's certificates as PEM
    dm "$1" store export "$2" >"$3" 2>>"$W/get.err"
}
verify() { # verify LABEL CA CERT
    if _o=$(openssl verify -CAfile "$2" "$3" 2>&1); then ok "$1: $_o"; else fail "$1: $_o"; fi
}
peer_ops() { # peer_ops LOG: "Type:ANSWER" of each PKIOperation, space-separated
    grep 'op=PKIOperation' "$1" | sed 's/.* type=\([A-Za-z]*\) .* answer=\([A-Z]*\).*/\1:\2/' |
        tr '\n' ' ' | sed 's/ $//'
}
peer_tids() { sed -n 's/.*op=PKIOperation .* tid=\([^ ]*\) .*/\1/p' "$1" | sort -u; }
expect_alert() { # expect_alert STATE SOURCE DATA: exactly one alert, this one
    _a=$(dm "$1" alerts 2>>"$W/get.err")
    _n=$(printf '%s\n' "$_a" | grep -c .)
    _rest=$(printf '%s\n' "$_a" | cut -f2-)
    _want=$(printf '%s\t%s\tint\t%s' "$2" "$ALERT_TYPE" "$3")
    [ "$_n" -eq 1 ] && [ "$_rest" = "$_want" ] && ok "one alert: $(printf '%s' "$_rest" | tr '\t' ' ')" ||
        fail "alerts: expected one '$_want', got: $_a"
}
expect_status() { # expect_status STATE BASE/ID STATUS ERRORCODE
    expect_get "$1" "$2/Status" "$3"
    expect_get "$1" "$2/ErrorCode" "$4"
}
# wait_status STATE URI WANT SECONDS: poll the Status node until it reads WANT
wait_status() {
    _t=$(($4 * 20))
    while [ "$_t" -gt 0 ]; do
        [ "$(get "$1" "$2")" = "$3" ] && return 0
        sleep 0.05
        _t=$((_t - 1))
    done
    return 1
}

# peer NAME ARGS...: start a pending peer (challenge $CH, its own CA in $W/NAME-depot, log
# $W/NAME.log); its URL in $purl, the CA's thumbprint in $pthumb
peer() {
    _pn=$1; shift
    purl=$(bed_start_peer "$_pn" "$W/$_pn-depot" -challenge "$CH" "$@") ||
        { fail "start peer $_pn"; return 1; }
    pthumb=$(bed_thumbprint "$W/$_pn-depot/ca.pem")
}

# ============================================================ cases 1-3: micromdm scepserver
if [ -n "$netns" ]; then
    bed_micromdm_depot "$W/micromdm-depot" 2048 || fail "scepserver ca -init"
    murl=$(bed_start_scepserver scepserver "$W/micromdm-depot" 8080 "$CH") ||
        { fail "start scepserver"; exit 1; }
    mca=$W/micromdm-depot/ca.pem
    mthumb=$(bed_thumbprint "$mca")
    mlog=$W/scepserver.log

    # ---- 1. success
    t=$(now)
    S=$W/s1 B=$CS/Anna
    enroll "$S" "$B" "$murl" "$mthumb" "$CH" 3
    run "$S" "$S.log" --until-idle
    echo "case 1: enrolled at scepserver in $(since "$t") s"
    expect_status "$S" "$B" 1 0
    th=$(thumbs "$S" my-system)
    if echo "$th" | grep -Eqx '[0-9A-F]{40}'; then
        expect_get "$S" "$B/CertThumbPrint" "$th"
        expect_get "$S" "$B/RespondentServerUrl" "$murl"
        export_cert "$S" my-system "$S.pem"
        [ "$(grep -c 'BEGIN CERTIFICATE' "$S.pem")" -eq 1 ] && ! grep -q 'PRIVATE KEY' "$S.pem" &&
            ok "store export my-system: one certificate, no private key" ||
            fail "store export my-system: $(grep -- '-----BEGIN' "$S.pem" | tr '\n' ' ')"
        [ "$(bed_thumbprint "$S.pem")" = "$th" ] && ok "exported certificate has SHA-1 $th" ||
            fail "exported certificate SHA-1 $(bed_thumbprint "$S.pem"), listed $th"
        subj=$(openssl x509 -in "$S.pem" -noout -subject -nameopt RFC2253)
        [ "$subj" = "subject=CN=AnnaLee,O=Test" ] && ok "certificate $subj" || fail "certificate $subj"
        # micromdm copies DNS names and e-mail addresses from the CSR, not the UPN (otherName)
        san=$(openssl x509 -in "$S.pem" -noout -ext subjectAltName | sed -n '2,$p' | sed 's/^ *//')
        [ "$san" = "DNS:dev.contoso.com, email:tom@contoso.com" ] &&
            ok "certificate SAN: $san (micromdm drops the UPN)" || fail "certificate SAN: '$san'"
        verify "certificate chains to the scepserver CA" "$mca" "$S.pem"
        key=$S/store/keys/my-system-$th
        if [ -f "$key" ]; then
            [ -n "$(find "$key" -prune -type f -perm 600)" ] &&
                ok "key file store/keys/${key##*/}: mode 0600" ||
                fail "key file $key: mode $(find "$key" -prune -printf %m)"
            if [ "$(openssl pkey -in "$key" -pubout 2>&1)" = "$(pubkey_of_cert "$S.pem")" ]; then
                ok "the key file holds the certificate's key" \
                    "($(openssl pkey -in "$key" -noout -text 2>/dev/null | head -n 1))"
            else
                fail "the key file does not match the certificate's public key"
            fi
        else
            fail "no key file $key"
        fi
        [ "$(keys_in "$S")" = "my-system-$th" ] && ok "no other key file" || fail "key files: $(keys_in "$S")"
    else
        fail "my-system should hold one certificate: '$th'"
    fi
    expect_alert "$S" "$B/Install/Enroll" 0
    dm "$S" store check >"$S.check" 2>&1 && ok "store check" || fail "store check: $(cat "$S.check")"
    grep -q 'single DES' "$S.log" && ok "run log: $(grep 'single DES' "$S.log" | head -n 1)" ||
        fail "run log does not mention single DES"
    expect_missing "$S" "$B/Install/Challenge"

    # ---- 2. wrong challenge
    S=$W/s2 B=$CS/Wrong
    enroll "$S" "$B" "$murl" "$mthumb" wrong 3
    run "$S" "$S.log" --until-idle
    expect_status "$S" "$B" 16 -1596981246
    expect_store "$S" my-system
    expect_alert "$S" "$B/Install/Enroll" -1596981246
    grep -q 'invalid challenge' "$mlog" && ok "scepserver logged: invalid challenge" ||
        fail "scepserver did not log 'invalid challenge'"

    # ---- 3. wrong CAThumbprint: no PKIOperation may reach the server
    S=$W/s3 B=$CS/OtherCA
    n0=$(count "$mlog" 'op=PKIOperation')
    enroll "$S" "$B" "$murl" 0123456789ABCDEF0123456789ABCDEF01234567 "$CH" 3
    run "$S" "$S.log" --until-idle
    expect_status "$S" "$B" 16 -2146762487
    expect_store "$S" my-system
    grep -q PKCSReq "$S.log" && fail "run log: $(grep PKCSReq "$S.log")"
    n1=$(count "$mlog" 'op=PKIOperation')
    [ "$n0" -eq 2 ] && [ "$n1" -eq 2 ] &&
        ok "scepserver log: still $n1 PKIOperation requests (cases 1 and 2), none from case 3" ||
        fail "scepserver PKIOperation requests: $n0 before case 3, $n1 after"
else
    echo "SKIP: cases 1-3 (micromdm scepserver needs a private network namespace)"
fi

# ============================================================ cases 4-15: pending peer
# a port nobody listens on
dead=1
curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$dead/" 2>/dev/null
[ $? -eq 7 ] || fail "something answers at 127.0.0.1:$dead"
deadurl=http://127.0.0.1:$dead/scep

# ---- 4. server down: RetryCount 2 -> 3 attempts, Status 32 meanwhile
# (an attempt logs the failure once or twice: the URL's, then the step's; today twice)
S=$W/s4 B=$CS/Down
enroll "$S" "$B" "$deadurl" 0123456789ABCDEF0123456789ABCDEF01234567 "$CH" 2
t=$(now)
run "$S" "$S.log" --once
expect_status "$S" "$B" 32 0
n1=$(count "$S.log" "enrollment Down: $deadurl?operation=GetCACert: .*Couldn't connect")
run "$S" "$S.log" --until-idle
took=$(since "$t")
expect_status "$S" "$B" 16 -2147012867
n3=$(count "$S.log" "enrollment Down: $deadurl?operation=GetCACert: .*Couldn't connect")
[ "$n1" -ge 1 ] && [ "$n1" -le 2 ] && [ "$n3" -eq $((3 * n1)) ] &&
    ok "3 attempts (connection failures logged: $n1 after run --once, $n3 in all)" ||
    fail "attempts: connection failures logged $n1 after run --once, $n3 in all (expected 3 times as many)"
# RetryDelay 1 "minute" = 1 s on a whole-second clock: attempt 2 >= 0 s after attempt 1, attempt 3
# > 1 s after attempt 1
awk -v t="$took" 'BEGIN { exit !(t >= 1) }' && ok "3 attempts took $took s (>= 1 s)" ||
    fail "3 attempts took $took s, expected >= 1 s"
expect_alert "$S" "$B/Install/Enroll" -2147012867

# ---- 5. -pending 1: Status 2, then 1
S=$W/s5 B=$CS/Pend1
peer p5 -pending 1
enroll "$S" "$B" "$purl" "$pthumb" "$CH" 3
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
expect_get "$S" "$B/RespondentServerUrl" "$purl"
export_cert "$S" my-system "$S.pem"
th=$(bed_thumbprint "$S.pem")
expect_get "$S" "$B/CertThumbPrint" "$th"
expect_store "$S" my-system "$th"
verify "case 5 certificate chains to the peer CA" "$W/p5-depot/ca.pem" "$S.pem"
fp=$(openssl x509 -in "$S.pem" -noout -fingerprint -sha1 | sed 's/.*=//')
dm "$S" store show "$fp" >"$S.show" 2>>"$W/get.err" && grep -q "^thumbprint:   $th\$" "$S.show" &&
    grep -q '^store:        My/System (my-system), node name ' "$S.show" &&
    grep -q '^installed at: [0-9-]*T[0-9:]*Z$' "$S.show" &&
    grep -q '^private key:  present (not shown)$' "$S.show" &&
    ok "store show $fp: in My/System, install time, private key present" ||
    fail "store show $fp: $(cat "$S.show")"
dm "$S" store show "$th" --json >"$S.show" 2>>"$W/get.err" &&
    grep -q "\"thumbprint\": \"$th\".*\"private_key\": true" "$S.show" &&
    ok "store show --json: private_key true" || fail "store show --json: $(cat "$S.show")"
ops=$(peer_ops "$W/p5.log")
[ "$ops" = "PKCSReq:PENDING CertPoll:SUCCESS" ] && ok "peer log: $ops" || fail "peer log: '$ops'"
expect_alert "$S" "$B/Install/Enroll" 0
# docs/enrollment.md: the Challenge is erased at Exec (Get -> 404); the snapshot keeps it only
# until the request has been built and answered
expect_missing "$S" "$B/Install/Challenge"
left=$(grep -rl -e "$CH" "$S" 2>/dev/null | sed "s|^$S/||" | tr '\n' ' ')
[ -z "$left" ] && ok "the challenge is nowhere in the state directory once the enrollment is over" ||
    fail "the challenge is still stored after the enrollment finished, in: $left"

# ---- 6. still pending after RetryCount polls
S=$W/s6 B=$CS/Pend5
peer p6 -pending 5
enroll "$S" "$B" "$purl" "$pthumb" "$CH" 2
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 16 -2147023436
expect_store "$S" my-system
ops=$(peer_ops "$W/p6.log")
[ "$ops" = "PKCSReq:PENDING CertPoll:PENDING CertPoll:PENDING" ] &&
    ok "exactly 2 CertPolls: $ops" || fail "peer log: '$ops'"
[ "$(count "$S.log" 'CertPoll [0-9]* of 2')" -eq 2 ] && ok "run log: 2 CertPolls sent" ||
    fail "run log: $(grep CertPoll "$S.log" | tr '\n' ';')"
expect_alert "$S" "$B/Install/Enroll" -2147023436

# ---- 7. dmclient run killed while pending: the transaction survives
S=$W/s7 B=$CS/Killed
peer p7 -pending 2
enroll "$S" "$B" "$purl" "$pthumb" "$CH" 3
first_half
DMCLIENT_MINUTE_SECONDS=2 "$DM" --state-dir "$S" run -v 2>>"$S.log" &
bg=$!
echo "$bg dmclient-run" >>"$W/pids"
if wait_status "$S" "$B/Status" 2 20; then
    kill -KILL "$bg"
    wait "$bg" 2>/dev/null
    ok "Status 2 while dmclient run waits to poll; killed it (SIGKILL)"
else
    kill -KILL "$bg" 2>/dev/null
    fail "Status did not become 2: $(get "$S" "$B/Status")"
fi
expect_status "$S" "$B" 2 0
before=$(peer_ops "$W/p7.log")
DMCLIENT_MINUTE_SECONDS=2
run "$S" "$S.log" --until-idle
DMCLIENT_MINUTE_SECONDS=1
expect_status "$S" "$B" 1 0
export_cert "$S" my-system "$S.pem"
expect_get "$S" "$B/CertThumbPrint" "$(bed_thumbprint "$S.pem")"
verify "case 7 certificate chains to the peer CA" "$W/p7-depot/ca.pem" "$S.pem"
ops=$(peer_ops "$W/p7.log")
tids=$(peer_tids "$W/p7.log")
spki=$(openssl x509 -in "$S.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -r | cut -c1-64 | tr abcdef ABCDEF)
[ "$before" = "PKCSReq:PENDING" ] && [ "$ops" = "PKCSReq:PENDING CertPoll:PENDING CertPoll:SUCCESS" ] &&
    ok "peer log: $ops (before the kill: $before): no new PKCSReq after the kill" ||
    fail "peer log: '$ops' (before the kill: '$before')"
[ "$tids" = "$spki" ] && ok "one transactionID, the SHA-256 of the certificate's public key" ||
    fail "transactionIDs '$tids', SHA-256 of the certificate's SPKI $spki"
dm "$S" store check >"$S.check" 2>&1 && ok "store check after the kill and the resumed run" ||
    fail "store check: $(cat "$S.check")"

# ---- 8. Delete while pending
S=$W/s8 B=$CS/DelPend
peer p8 -pending 5
enroll "$S" "$B" "$purl" "$pthumb" "$CH" 3
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
msg_begin "$S.del.xml"; m_cmd Delete "$B"; msg_end
process "$S" "$S.del.xml" && ok "Delete $B: 200"
n0=$(count "$W/p8.log" 'op=PKIOperation')
t=$(now)
run "$S" "$S.log" --until-idle
took=$(since "$t")
awk -v t="$took" 'BEGIN { exit !(t < 1) }' && ok "run --until-idle returned after $took s" ||
    fail "run --until-idle took $took s after the Delete"
n1=$(count "$W/p8.log" 'op=PKIOperation')
[ "$n0" -eq 1 ] && [ "$n1" -eq 1 ] && ok "peer log: the PKCSReq only, no poll after the Delete" ||
    fail "peer PKIOperations: $n0 after the first step, $n1 at the end"
expect_missing "$S" "$B"
expect_missing "$S" "$B/Status"
expect_store "$S" my-system
[ -z "$(state_records "$S")" ] && [ -z "$(keys_in "$S")" ] && ok "no state record and no key left" ||
    fail "left: state records '$(state_records "$S")', keys '$(keys_in "$S")'"
[ -z "$(dm "$S" alerts 2>>"$W/get.err")" ] && ok "no alert queued" || fail "alerts: $(dm "$S" alerts)"

# one peer that issues at once, for the cases that do not count its log
peer p0
url0=$purl thumb0=$pthumb

# ---- 9. Delete after success
S=$W/s9 B=$CS/DelDone
enroll "$S" "$B" "$url0" "$thumb0" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
th=$(get "$S" "$B/CertThumbPrint")
[ "$(keys_in "$S")" = "my-system-$th" ] && [ "$(thumbs "$S" my-system)" = "$th" ] &&
    ok "installed $th with its key" ||
    fail "before the Delete: my-system '$(thumbs "$S" my-system)', keys '$(keys_in "$S")'"
msg_begin "$S.del.xml"; m_cmd Delete "$B"; msg_end
process "$S" "$S.del.xml" && ok "Delete $B: 200"
expect_missing "$S" "$B"
expect_store "$S" my-system
[ -z "$(keys_in "$S")" ] && ok "key file removed" || fail "key files left: $(keys_in "$S")"
[ -z "$(state_records "$S")" ] && ok "no state record left" || fail "state records: $(state_records "$S")"
dm "$S" store check >"$S.check" 2>&1 && ok "store check" || fail "store check: $(cat "$S.check")"

# ---- 10. ServerURL list: the dead one first
S=$W/s10 B=$CS/List
enroll "$S" "$B" "$deadurl;$url0" "$thumb0" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
expect_get "$S" "$B/RespondentServerUrl" "$url0"
n=$(count "$S.log" "enrollment List: $deadurl?operation=GetCACert: .*Couldn't connect")
[ "$n" -eq 1 ] && ok "run log: $deadurl tried first, once" || fail "run log: $n failures at $deadurl"

# ---- 11. the base URL answers 404: .../pkiclient.exe
S=$W/s11 B=$CS/Ndes
peer p11 -alias /certsrv/mscep/pkiclient.exe
base=${purl%/scep}/certsrv/mscep
code=$(curl -s -o /dev/null -w '%{http_code}' "$base?operation=GetCACaps")
[ "$code" = 404 ] && ok "peer -alias: $base answers 404, $base/pkiclient.exe serves SCEP" ||
    fail "peer: $base answers $code"
enroll "$S" "$B" "$base" "$pthumb" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
expect_get "$S" "$B/RespondentServerUrl" "$base/pkiclient.exe"
grep -q "op=GetCACert http=GET /certsrv/mscep answer=HTTP-404" "$W/p11.log" &&
    [ "$(peer_ops "$W/p11.log")" = "PKCSReq:SUCCESS" ] &&
    ok "peer log: GetCACert at the base URL answered 404, then PKCSReq:SUCCESS" ||
    fail "peer log p11: $(grep 'op=' "$W/p11.log" | tr '\n' ';')"

# ---- 12. user scope
S=$W/s12 B=./User/Vendor/MSFT/ClientCertificateInstall/SCEP/UserCert
enroll "$S" "$B" "$url0" "$thumb0" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
th=$(get "$S" "$B/CertThumbprint")
expect_store "$S" my-user "$th"
expect_store "$S" my-system
[ "$(keys_in "$S")" = "my-user-$th" ] && ok "key file my-user-$th" || fail "key files: $(keys_in "$S")"
expect_alert "$S" "$B/Install/Enroll" 0

# ---- 13. Exec again after success
S=$W/s13 B=$CS/Again
enroll "$S" "$B" "$url0" "$thumb0" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
old=$(get "$S" "$B/CertThumbPrint")
msg_begin "$S.again.xml"
m_atomic
m_cmd Add "$B/Install/Challenge" chr "$CH"
m_cmd Exec "$B/Install/Enroll"
m_atomic_end
msg_end
process "$S" "$S.again.xml" && ok "Add Challenge + Exec again: 200"
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
new=$(get "$S" "$B/CertThumbPrint")
if [ -n "$old" ] && [ -n "$new" ] && [ "$new" != "$old" ]; then
    ok "new certificate $new (was $old)"
    expect_store "$S" my-system "$new"
    [ "$(keys_in "$S")" = "my-system-$new" ] && ok "the old key removed, the new one kept" ||
        fail "key files: $(keys_in "$S")"
else
    fail "CertThumbPrint '$new' after the second Exec, was '$old'"
fi
expect_alert "$S" "$B/Install/Enroll" 0

# ---- 14. Exec while pending: 405
S=$W/s14 B=$CS/Busy
peer p14 -pending 5
enroll "$S" "$B" "$purl" "$pthumb" "$CH" 3
run "$S" "$S.log" --once
expect_status "$S" "$B" 2 0
msg_begin "$S.exec.xml"
m_cmd Add "$B/Install/Challenge" chr "$CH"
add_cid=$cid
m_cmd Exec "$B/Install/Enroll"
exec_cid=$cid
msg_end
dm "$S" process "$S.exec.xml" >"$S.exec.xml.reply" 2>"$S.exec.xml.err" || fail "process $S.exec.xml"
st_add=$(status_of "$S.exec.xml.reply" "$add_cid")
st_exec=$(status_of "$S.exec.xml.reply" "$exec_cid")
[ "$st_add" = 200 ] && [ "$st_exec" = 405 ] && ok "Exec while pending: 405 (Add Challenge 200)" ||
    fail "Exec while pending: Exec $st_exec, Add $st_add"
expect_status "$S" "$B" 2 0
[ "$(peer_ops "$W/p14.log")" = "PKCSReq:PENDING" ] && ok "peer log: the first PKCSReq only" ||
    fail "peer log: $(peer_ops "$W/p14.log")"

# ---- 15. the certificate is issued in a later second than the step began: the CA (micromdm's
# signer, in the peer too) sets notBefore to the time of issue; the step starts late in a second
# and makes a 4096-bit key (0.3-3 s), so the second has changed when the certificate arrives
S=$W/s15 B=$CS/Slow
keylen=4096
enroll "$S" "$B" "$url0" "$thumb0" "$CH" 3
keylen=2048
i=0
until case $(date +%N) in 8[0-4]*) true ;; *) false ;; esac || [ $i -ge 200 ]; do
    sleep 0.01
    i=$((i + 1))
done
t=$(now)
align=0
run "$S" "$S.log" --until-idle
align=1
echo "case 15: the step began 0.$(echo "$t" | cut -d. -f2 | cut -c1-3) s into a second," \
    "took $(since "$t") s"
expect_status "$S" "$B" 1 0
th=$(get "$S" "$B/CertThumbPrint")
[ -n "$th" ] && expect_store "$S" my-system "$th"

# ---- 16-18. the issued certificate's validity: the peer issues with its own validity
# (-issued-not-before/-issued-not-after, offsets to the time of issue)
expired_case() { # expired_case N ID NOT_BEFORE NOT_AFTER STATUS ERRORCODE
    S=$W/s$1 B=$CS/$2
    peer "p$1" -issued-not-before "$3" -issued-not-after "$4"
    enroll "$S" "$B" "$purl" "$pthumb" "$CH" 3
    run "$S" "$S.log" --until-idle
    expect_status "$S" "$B" "$5" "$6"
    [ "$(peer_ops "$W/p$1.log")" = "PKCSReq:SUCCESS" ] && ok "case $1: the peer issued once" ||
        fail "case $1: peer log: $(peer_ops "$W/p$1.log")"
    expect_alert "$S" "$B/Install/Enroll" "$6"
    left=$(grep -rl -e "$CH" "$S" 2>/dev/null | sed "s|^$S/||" | tr '\n' ' ')
    [ -z "$left" ] && ok "case $1: the challenge is nowhere in the state directory" ||
        fail "case $1: the challenge is still stored in: $left"
    dm "$S" store check >"$S.check" 2>&1 && ok "case $1: store check" ||
        fail "case $1: store check: $(cat "$S.check")"
}
expired_case 16 Expired -48h -24h 16 -2146762495
expect_store "$S" my-system
[ -z "$(keys_in "$S")" ] && ok "no key file" || fail "key files: $(keys_in "$S")"
grep -q 'the issued certificate is refused: the certificate has expired' "$S.log" &&
    ok "run log: the certificate has expired" || fail "run log: $(grep -i 'refused\|failed' "$S.log")"
expired_case 17 Early 2h 48h 16 -2146762495
expect_store "$S" my-system
grep -q 'the issued certificate is refused: the certificate is not valid yet' "$S.log" &&
    ok "run log: the certificate is not valid yet" || fail "run log: $(grep -i 'refused\|failed' "$S.log")"
expired_case 18 Skewed 5m 48h 1 0
th=$(get "$S" "$B/CertThumbPrint")
[ -n "$th" ] && expect_store "$S" my-system "$th"

# ---- 19. a GetCACert certificate whose public key does not decode, before a good enrollment
S=$W/s19
cat >"$W/evil-scep.py" <<'PYEOF'
# a SCEP server that answers GetCACert with a certificate whose SubjectPublicKeyInfo names an
# algorithm nobody knows (rsaEncryption 1.2.840.113549.1.1.1 turned into ...1.99); port to argv[2]
import hashlib, http.server, sys
der = bytearray(open(sys.argv[1], 'rb').read())
oid = bytes.fromhex('06092a864886f70d010101')
at = der.find(oid)
assert at > 0 and der.find(oid, at + 1) < 0
der[at + len(oid) - 1] = 99
der = bytes(der)
print('thumb=' + hashlib.sha1(der).hexdigest().upper(), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        op = self.path.partition('operation=')[2].partition('&')[0]
        print('op=' + op, flush=True)
        if op == 'GetCACert':
            body, ctype, code = der, 'application/x-x509-ca-cert', 200
        elif op == 'GetCACaps':
            body, ctype, code = b'AES\nSHA-256\nPOSTPKIOperation\n', 'text/plain', 200
        else:
            body, ctype, code = b'no', 'text/plain', 500
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
open(sys.argv[2] + '.tmp', 'w').write('%d\n' % srv.server_address[1])
import os; os.rename(sys.argv[2] + '.tmp', sys.argv[2])
srv.serve_forever()
PYEOF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/evil.key" -subj /CN=EvilCA -days 30 \
    -outform DER -out "$W/evil.der" 2>/dev/null || fail "openssl req for case 19"
bed_spawn evil python3 "$W/evil-scep.py" "$W/evil.der" "$W/evil.port" >/dev/null
i=0
while [ ! -s "$W/evil.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
eurl=http://127.0.0.1:$(cat "$W/evil.port" 2>/dev/null)/scep
ethumb=$(sed -n 's/^thumb=//p' "$W/evil.log")
# records are stepped in name order ("scep-cs-" + SHA-256 of the lower-case id): a good id after "Evil"
hash_of() { printf %s "$1" | tr '[:upper:]' '[:lower:]' | sha256sum | cut -c1-32; }
good=
for c in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    first=$(printf '%s\n%s\n' "$(hash_of "Good$c")" "$(hash_of Evil)" | LC_ALL=C sort | head -n 1)
    [ "$first" = "$(hash_of Evil)" ] && { good=Good$c; break; }
done
enroll "$S" "$CS/Evil" "$eurl" "$ethumb" "$CH" 3
enroll "$S" "$CS/$good" "$url0" "$thumb0" "$CH" 3
run "$S" "$S.log" --until-idle
expect_status "$S" "$CS/Evil" 16 -2146893819
expect_status "$S" "$CS/$good" 1 0
grep -q "enrollment Evil failed: GetCACert answer unusable: no certificate with a usable RSA key" "$S.log" &&
    ok "run log: the GetCACert answer is unusable" || fail "run log: $(grep Evil "$S.log")"
[ "$(grep -c '^op=' "$W/evil.log")" -ge 1 ] && ! grep -q '^op=PKIOperation' "$W/evil.log" &&
    ok "the server saw $(grep '^op=' "$W/evil.log" | sort -u | tr '\n' ' ')and no PKIOperation" ||
    fail "the server saw: $(grep '^op=' "$W/evil.log" | tr '\n' ' ')"
th=$(get "$S" "$CS/$good/CertThumbPrint")
[ -n "$th" ] && expect_store "$S" my-system "$th"

# ---- 20. one connection for the exchanges of a step (keep-alive): a forwarder in front of the
# peer that issues at once counts the connections it accepts
S=$W/s20 B=$CS/KeepAlive
cat >"$W/count-conns.py" <<'PYEOF'
# a TCP forwarder from a new port (written to argv[2]) to 127.0.0.1:argv[1]; one "conn" line per
# accepted connection
import os, socket, sys, threading
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(16)
open(sys.argv[2] + '.tmp', 'w').write('%d\n' % srv.getsockname()[1])
os.rename(sys.argv[2] + '.tmp', sys.argv[2])
while True:
    c, _ = srv.accept()
    print('conn', flush=True)
    u = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PYEOF
p0port=$(echo "$url0" | sed 's|^http://127\.0\.0\.1:\([0-9]*\)/.*|\1|')
bed_spawn conns python3 "$W/count-conns.py" "$p0port" "$W/conns.port" >/dev/null
i=0
while [ ! -s "$W/conns.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kurl=http://127.0.0.1:$(cat "$W/conns.port" 2>/dev/null)/scep
enroll "$S" "$B" "$kurl" "$thumb0" "$CH" 3
n0=$(count "$W/p0.log" 'op=')
run "$S" "$S.log" --until-idle
expect_status "$S" "$B" 1 0
n1=$(count "$W/p0.log" 'op=')
nc=$(count "$W/conns.log" '^conn$')
[ $((n1 - n0)) -eq 3 ] && [ "$nc" -eq 1 ] &&
    ok "GetCACert, GetCACaps and PKCSReq of one step on one connection" ||
    fail "$((n1 - n0)) requests reached the peer on $nc connections (want 3 on 1)"

# ============================================================ sanitizers, cleanup
bed_stop_all
san='ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)Sanitizer'
san="$san|==[0-9]+==ERROR"
reports=$(grep -l -E "$san" "$W"/*.log "$W"/*.err "$W"/*.check 2>/dev/null | tr '\n' ' ')
[ -z "$reports" ] && ok "no sanitizer report in any dmclient output" ||
    fail "sanitizer reports in: $reports"
echo "inner part took $(since "$t0") s; failures: $failures"
[ "$failures" -eq 0 ]
