#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-lock.sh BUILD_DIR
#
# No lock is held across a SCEP exchange, and a signal ends dmclient promptly
# whatever the network does (docs/cli.md "The state lock", docs/enrollment.md).
# Peers on 127.0.0.1: the pending peer of the SCEP test bed (tests/scep/,
# issues at once) and tests/scripts/lockbed.py, which answers one byte per
# second (/slow) or passes requests on to the peer, holding the PKIOperation
# answer until the test releases it (/late).
#   1. dmclient run stepping an enrollment whose three ServerURLs answer one
#      byte per second: a concurrent get (tree and store) completes in under
#      2 s; SIGTERM ends run in under 2 s, exit 0; the enrollment is left as
#      it was (Status 32, no retry counted), store check clean
#   2. SIGTERM ends dmclient run in under 2 s while it waits for the state
#      lock that another process holds
#   3. a Delete of the enrollment while its PKCSReq is with the CA: the Delete
#      completes at once (200), the CA's late answer (a certificate) is
#      dropped: nothing installed, no key, no record, no alert, store check
#      clean, and a later run does nothing
#   4. a message that changes the store but not the enrollment (Add of a root
#      certificate) while the PKCSReq is with the CA: the certificate is
#      installed (Status 1) beside the new root
#   5. dmclient session whose server answers one byte per second: it holds the
#      state lock for the whole session (a get waits), SIGTERM ends it in under
#      2 s with exit 1 and "stopped by a signal"; the state is usable after
# The measured times are printed.  Every dmclient is bounded by timeout(1) or
# a watchdog; anything a sanitizer prints fails the test.
#
# Needs: POSIX sh, timeout (coreutils), python3, go (the peer, built into
# BUILD_DIR/scep like test-scep-enroll.sh does), curl, openssl, flock.
# Exits 0 on success.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-lock.sh BUILD_DIR}
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

for c in python3 go curl openssl flock timeout awk; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL: $c not found (run ./setup.sh)"; exit 1; }
done
DM=$build/bin/dmclient
[ -x "$DM" ] || { echo "FAIL: $DM missing (build first)"; exit 1; }
build=$(cd "$build" && pwd) || exit 1
DM=$build/bin/dmclient
bed_build "$build/scep" || { echo "FAIL: building the SCEP test bed programs"; exit 1; }

work=$(mktemp -d "$build/test-cli-lock.XXXXXX") || exit 1
bed_init "$work" || exit 1
W=$SCEP_BED_DIR
bgs=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for _p in $bgs; do kill -KILL "$_p" 2>/dev/null; done
    bed_stop_all
    scratch_done "$work" "$failures"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

export DMCLIENT_MINUTE_SECONDS=1
CH=s3cr3t
CS=./Vendor/MSFT/CertificateStore/My/SCEP

# (dm STATE ARGS, get, expect_get, expect_missing, thumbs, names_in, count: lib/dm-states.sh)
store_clean() { # store_clean STATE LABEL
    if _o=$(dm "$1" store check 2>&1); then ok "$2: store check: $_o"; else fail "$2: store check: $_o"; fi
}
# wait_for FILE PATTERN SECONDS: until a line of FILE matches
wait_for() {
    _t=$(($3 * 20))
    while [ "$_t" -gt 0 ]; do
        grep -q -e "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
        _t=$((_t - 1))
    done
    return 1
}
# start NAME STATE ARGS...: dmclient in the background (pid in $bg, stderr in
# $W/NAME.err), killed after 120 s at the latest
start() {
    _n=$1 _st=$2; shift 2
    timeout -s KILL 120 "$DM" --state-dir "$_st" "$@" >"$W/$_n.out" 2>"$W/$_n.err" &
    bg=$!
    bgs="$bgs $bg"
}
# stop_timed PID LABEL: SIGTERM to PID; the exit status in $rc, the time in $el ms
stop_timed() {
    _t0=$(now_ms)
    kill -TERM "$1"
    if gone "$1" 30; then
        wait "$1"
        rc=$?
    else
        rc=255
    fi
    el=$(($(now_ms) - _t0))
}
# timed ARGS...: run ARGS; its exit status in $rc, the time in $el ms
timed() {
    _t0=$(now_ms)
    "$@"
    rc=$?
    el=$(($(now_ms) - _t0))
}

# ---- DM messages (lib/syncml.sh) ----
enroll_msg() { # enroll_msg FILE BASE/ID URLS THUMB: RetryCount 3, a 2048-bit key
    msg_begin "$1"
    m_scep_enroll "$2" "$3" "$4" "$CH" 3 2048 CN=LockTest,O=Test
    msg_end
}
# process STATE MSG LABEL: dmclient process (at most 10 s); every Status must
# be 200; the time in $el ms
process() {
    _t0=$(now_ms)
    timeout -s KILL 10 "$DM" --state-dir "$1" process "$2" >"$2.reply" 2>"$2.err"
    _rc=$?
    el=$(($(now_ms) - _t0))
    if [ "$_rc" -ne 0 ]; then
        fail "$3: dmclient process: exit $_rc after $el ms ($(cat "$2.err"))"
        return 1
    fi
    _s=$(statuses "$2.reply" | awk '{ print $3 }' | tr '\n' ' ' | sed 's/ $//')
    if [ -z "$_s" ] || echo "$_s" | tr ' ' '\n' | grep -q -v -x 200; then
        fail "$3: statuses '$_s'"
        return 1
    fi
    return 0
}

# ---- the peers ----
purl=$(bed_start_peer peer "$W/peer-depot" -challenge "$CH") || { fail "start the pending peer"; exit 1; }
pthumb=$(bed_thumbprint "$W/peer-depot/ca.pem")
bed_spawn lockbed python3 "$here/lockbed.py" "$W" "$purl" >/dev/null
_t=200
while [ ! -s "$W/port" ] && [ "$_t" -gt 0 ]; do sleep 0.05; _t=$((_t - 1)); done
[ -s "$W/port" ] || { fail "lockbed.py did not start: $(cat "$W/lockbed.log" 2>/dev/null)"; exit 1; }
L=http://127.0.0.1:$(cat "$W/port")
LOG=$W/lockbed.log
: >"$LOG"

# ---- 1. run waiting on slow servers: get, SIGTERM ----
S=$W/s1 B=$CS/Slow
enroll_msg "$S.enroll.xml" "$B" "$L/slow/1;$L/slow/2;$L/slow/3" "$pthumb"
process "$S" "$S.enroll.xml" "1: enrollment" && ok "1: enrollment with three slow ServerURLs"
start run1 "$S" run -v
run1=$bg
if ! wait_for "$LOG" "slow GET /slow/1 GetCACert" 20; then
    fail "1: no GetCACert reached the slow server: $(cat "$W/run1.err")"
else
    sleep 0.5
    timed timeout -s KILL 10 "$DM" --state-dir "$S" get ./DevInfo/DevId >"$W/get1.out" 2>"$W/get1.err"
    if [ "$rc" -eq 0 ] && [ "$el" -lt 2000 ] && [ "$(cat "$W/get1.out")" = omadm-device ]; then
        ok "1: get ./DevInfo/DevId while run waits on the network: ${el} ms"
    else
        fail "1: get ./DevInfo/DevId while run waits on the network: exit $rc after ${el} ms"
    fi
    timed timeout -s KILL 10 "$DM" --state-dir "$S" get "$B/Status" >"$W/get1.out" 2>"$W/get1.err"
    if [ "$rc" -eq 0 ] && [ "$el" -lt 2000 ] && [ "$(cat "$W/get1.out")" = 32 ]; then
        ok "1: get $B/Status (the store) while run waits on the network: ${el} ms"
    else
        fail "1: get $B/Status while run waits: exit $rc after ${el} ms, '$(cat "$W/get1.out")'"
    fi
    kill -0 "$run1" 2>/dev/null || fail "1: run ended early: $(cat "$W/run1.err")"
    n_before=$(count "$LOG" "^slow ")
    stop_timed "$run1" run
    if [ "$rc" -eq 0 ] && [ "$el" -lt 2000 ]; then
        ok "1: SIGTERM ended run in ${el} ms, exit 0"
    else
        fail "1: SIGTERM: run exit $rc after ${el} ms"
        cat "$W/run1.err"
    fi
    [ "$(count "$LOG" "^slow ")" -eq "$n_before" ] || fail "1: run went on asking after SIGTERM"
    grep -q 'stopped' "$W/run1.err" && ok "1: run says: $(grep 'stopped' "$W/run1.err" | head -n 1)" ||
        fail "1: run did not say why the exchange ended: $(cat "$W/run1.err")"
    expect_get "$S" "$B/Status" 32
    expect_get "$S" "$B/ErrorCode" 0
    store_clean "$S" 1
fi

# ---- 2. SIGTERM while run waits for the state lock ----
S=$W/s2
mkdir -p "$S"
flock "$S/lock" sleep 30 &
holder=$!
bgs="$bgs $holder"
sleep 0.3
start run2 "$S" run
run2=$bg
sleep 1
if kill -0 "$run2" 2>/dev/null; then
    stop_timed "$run2" run
    if [ "$rc" -eq 0 ] && [ "$el" -lt 2000 ]; then
        ok "2: SIGTERM ended run waiting for the state lock in ${el} ms, exit 0"
    else
        fail "2: SIGTERM while run waits for the lock: exit $rc after ${el} ms"
    fi
    [ -s "$W/run2.err" ] && fail "2: run wrote on stderr: $(cat "$W/run2.err")"
else
    fail "2: run did not wait for the state lock: $(cat "$W/run2.err")"
fi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# ---- 3. Delete while the PKCSReq is with the CA ----
S=$W/s3 B=$CS/Deleted
rm -f "$W/release"
enroll_msg "$S.enroll.xml" "$B" "$L/late" "$pthumb"
process "$S" "$S.enroll.xml" "3: enrollment" && ok "3: enrollment through the holding proxy"
start run3 "$S" run --once -v
run3=$bg
n_rel=$(count "$LOG" "late PKIOperation received")
if ! wait_for "$LOG" "late PKIOperation received" 30; then
    fail "3: no PKIOperation reached the CA: $(cat "$W/run3.err")"
else
    msg_begin "$S.del.xml"; m_cmd Delete "$B"; msg_end
    process "$S" "$S.del.xml" "3: Delete during the exchange" &&
        ok "3: Delete $B while its PKCSReq is with the CA: 200 in $el ms"
    touch "$W/release"
    if gone "$run3" 20; then
        wait "$run3"
        rc=$?
        [ "$rc" -eq 0 ] && ok "3: run --once exit 0" || fail "3: run --once exit $rc: $(cat "$W/run3.err")"
    else
        fail "3: run --once still running 20 s after the answer was released"
    fi
    [ "$(count "$LOG" "late PKIOperation answered")" -gt "$n_rel" ] &&
        ok "3: the CA's answer was delivered to run" ||
        fail "3: the CA's answer did not reach run: $(tail -n 3 "$LOG")"
    grep -q 'dropped' "$W/run3.err" && ok "3: run says: $(grep 'dropped' "$W/run3.err" | head -n 1)" ||
        fail "3: run does not say the answer was dropped: $(cat "$W/run3.err")"
    expect_missing "$S" "$B"
    [ -z "$(thumbs "$S" my-system)" ] && ok "3: My/System is empty" ||
        fail "3: My/System holds $(thumbs "$S" my-system)"
    [ -z "$(names_in "$S/store/keys")" ] && [ -z "$(names_in "$S/store/state")" ] &&
        ok "3: no key and no state record left" ||
        fail "3: left: keys '$(names_in "$S/store/keys")', records '$(names_in "$S/store/state")'"
    [ -z "$(dm "$S" alerts 2>>"$W/get.err")" ] && ok "3: no alert queued" ||
        fail "3: alerts: $(dm "$S" alerts)"
    store_clean "$S" 3
    dm "$S" run --until-idle 2>"$W/run3b.err" || fail "3: a later run: $(cat "$W/run3b.err")"
    [ -z "$(thumbs "$S" my-system)" ] && [ -z "$(names_in "$S/store/keys")" ] &&
        ok "3: a later run installs nothing" || fail "3: a later run installed $(thumbs "$S" my-system)"
fi

# ---- 4. a change elsewhere in the store while the PKCSReq is with the CA ----
S=$W/s4 B=$CS/Kept
rm -f "$W/release"
enroll_msg "$S.enroll.xml" "$B" "$L/late" "$pthumb"
process "$S" "$S.enroll.xml" "4: enrollment" && ok "4: enrollment through the holding proxy"
start run4 "$S" run --once -v
run4=$bg
n_rel=$(count "$LOG" "late PKIOperation received")
wait_for_more() { # wait_for_more FILE PATTERN N SECONDS: more than N lines match
    _t=$(($4 * 20))
    while [ "$_t" -gt 0 ]; do
        [ "$(count "$1" "$2")" -gt "$3" ] && return 0
        sleep 0.05
        _t=$((_t - 1))
    done
    return 1
}
if ! wait_for_more "$LOG" "late PKIOperation received" "$n_rel" 30; then
    fail "4: no PKIOperation reached the CA: $(cat "$W/run4.err")"
else
    root_b64=$(cert_b64 "$W/peer-depot/ca.pem")
    msg_begin "$S.root.xml"
    m_cmd Add "./Vendor/MSFT/RootCATrustedCertificates/Root/$pthumb/EncodedCertificate" b64 "$root_b64"
    msg_end
    process "$S" "$S.root.xml" "4: Add of a root during the exchange" &&
        ok "4: Add of a root certificate while the PKCSReq is with the CA: 200 in $el ms"
    touch "$W/release"
    if gone "$run4" 20; then
        wait "$run4"
        rc=$?
        [ "$rc" -eq 0 ] && ok "4: run --once exit 0" || fail "4: run --once exit $rc: $(cat "$W/run4.err")"
    else
        fail "4: run --once still running 20 s after the answer was released"
    fi
    expect_get "$S" "$B/Status" 1
    th=$(get "$S" "$B/CertThumbprint")
    [ -n "$th" ] && [ "$(thumbs "$S" my-system)" = "$th" ] && [ "$(thumbs "$S" root)" = "$pthumb" ] &&
        ok "4: certificate $th installed beside the new root" ||
        fail "4: my-system '$(thumbs "$S" my-system)', root '$(thumbs "$S" root)', thumbprint '$th'"
    store_clean "$S" 4
fi

# ---- 5. a session waiting on a slow server ----
S=$W/s5
start sess5 "$S" session --server "$L/slow/dm"
sess5=$bg
if ! wait_for "$LOG" "slow POST /slow/dm" 20; then
    fail "5: the session did not reach the server: $(cat "$W/sess5.err")"
else
    timed timeout -s KILL 1 "$DM" --state-dir "$S" get ./DevInfo/DevId >/dev/null 2>&1
    [ "$rc" -ne 0 ] && ok "5: get waits while a session waits on the network (the session holds the lock)" ||
        fail "5: get did not wait for the session's lock (${el} ms)"
    stop_timed "$sess5" session
    if [ "$rc" -eq 1 ] && [ "$el" -lt 2000 ] && grep -q 'stopped by a signal' "$W/sess5.err"; then
        ok "5: SIGTERM ended the session in ${el} ms, exit 1: $(cat "$W/sess5.err")"
    else
        fail "5: SIGTERM: session exit $rc after ${el} ms: $(cat "$W/sess5.err")"
    fi
    timed dm "$S" get ./DevInfo/DevId >/dev/null 2>>"$W/get.err"
    [ "$rc" -eq 0 ] && ok "5: the state is usable after the session ($el ms)" ||
        fail "5: get after the session: exit $rc"
fi

# nothing a sanitizer says, in any log
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W"/*.err >/dev/null 2>&1; then
    fail "sanitizer reports in $(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W"/*.err | tr '\n' ' ')"
fi

finish test-cli-lock
