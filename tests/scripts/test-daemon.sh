#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-daemon.sh BUILD_DIR
#
# dmclient daemon (dmclient/daemon_cmd.c, `dmclient daemon --help`) as a service runs it, against
# the scripted DM server (tests/dmserver/dmserver.py over HTTPS, certificates from
# tests/dmserver/make-certs.sh) and the SCEP test bed's pending peer (tests/scep/bed.sh, -pending
# 1), everything on 127.0.0.1.  DMCLIENT_MINUTE_SECONDS=1 for every daemon.  Cases:
#   a  poll + enrollment + automatic report, against the demo script: the start-up session
#      installs the CAs and orders the SCEP enrollment, the daemon enrolls (PENDING once) and
#      reports the result alert (1226, Data 0) in a session it starts by itself about 2 s later;
#      the server's script passes; `get` and `store list` work while the daemon runs;
#      afterwards `alerts` is empty and `store list` shows the enrolled certificate
#   b  server down for a while (server_url at a closed port, retry_min 0.2, retry_max 1): the
#      waits after failed sessions grow (0.2, 0.4, 0.8, then 1) and stay at retry_max (+10 %
#      jitter at most); a server is started and server_url rewritten in dmclient.conf: the next
#      retry's session passes (package1 script); the next session after it waits poll_interval
#   c  poll_interval 1 (sessions script): at least 4 sessions, each starting between 1.0 s and
#      1.1 s (plus a generous allowance for a loaded machine) after the previous one ended
#   d  notify hand-off: a notification with a bad digest given to `dmclient notify FILE`: exit 1,
#      nothing sent (not then, nor as a retry); a valid one: the daemon runs the session (Alert
#      1200, the notification's SessionID: package1 script), notify exits 0; a second daemon
#      on the same state directory refuses (exit 1, one line)
#   e  signals: SIGTERM while a session waits on a server that accepts and never answers: exit
#      0 within 5 s; SIGHUP with a shorter poll_interval is logged and takes effect; a bad
#      value at SIGHUP keeps the settings in use; SIGTERM and SIGINT when idle: exit 0
#   f  kill -9 at random moments: ROUNDS (DAEMON_TEST_ROUNDS, default 8) enrollments from an
#      empty state, each with a daemon killed at a random moment between its start and the
#      report (uniform over the time case a took) and a new one started at once, against the
#      lenient daemon script: in the end the server has received the result alert, the store
#      holds exactly one enrolled certificate in My/System (the one the server read), no alert
#      is queued, `store check` passes
#   g  log lines: every line of every daemon above (default --log) is
#      "YYYY-MM-DDTHH:MM:SS.mmmZ dmclient[PID]: LEVEL: ..." with the daemon's PID, and a
#      session's lines name it ("session N: ..."); with --log journal every line starts with
#      "<N>"; --log syslog writes nothing on stderr; a session with basic authentication
#      (basic-auth script); the secrets (client_secret, server_secret, the SCEP challenge)
#      appear in no daemon's output
# Every case prints PASS or FAIL with its name; a failed check says what it expected and what it
# saw.  DAEMON_TEST_CASES picks cases (e.g. "af"; default all); DAEMON_TEST_SEED sets the random
# moments of case f (printed); the scratch directory
# (${TMPDIR:-/tmp}/test-daemon.XXXXXX, every log) is kept on failure or with DAEMON_TEST_KEEP=1.
# Every process started here is stopped at exit by its PID.  A sanitizer report in any output
# fails the test.  Needs what ./setup.sh installs: python3, openssl, curl, Go with
# golang-github-micromdm-scep-dev (the SCEP peer, built once into BUILD_DIR/scep).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-daemon.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
build=$(cd "$build" && pwd) || exit 1
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for c in python3 openssl curl timeout; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c not found (run ./setup.sh)"; exit 0; }
done
rounds=${DAEMON_TEST_ROUNDS:-8}
seed=${DAEMON_TEST_SEED:-$$}

work=$(mktemp -d "${TMPDIR:-/tmp}/test-daemon.XXXXXX") || exit 1
procs=              # PIDs of every process started here and not yet waited for
logs=               # the daemons' stderr (default --log), as FILE:PID
SCEP_BED_SRC=$top/tests/scep
# shellcheck source=tests/scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"
SCEP_BED_DIR=$work/scep
mkdir -p "$SCEP_BED_DIR" && : >"$SCEP_BED_DIR/pids"

# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for p in $procs; do kill -KILL "$p" 2>/dev/null; done
    bed_stop_all
    if [ "$failures" -ne 0 ] || [ -n "${DAEMON_TEST_KEEP:-}" ]; then
        echo "scratch directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

track() { procs="$procs $1"; }
untrack() { procs=$(echo " $procs " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

# wait_exit PID SECONDS: wait for the child PID (looking every 20 ms); after SECONDS it is
# killed.  Its exit status in $rc (the shell's 128 + signal when a signal ended it).
wait_exit() {
    _i=0
    while [ "$_i" -lt $(($2 * 50)) ]; do
        _st=$(ps -o stat= -p "$1" 2>/dev/null) || break
        case $_st in Z*) break ;; esac
        sleep 0.02
        _i=$((_i + 1))
    done
    [ "$_i" -lt $(($2 * 50)) ] || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null   # (not the shell's "Killed")
    rc=$?
    untrack "$1"
}

# wait_log FILE ERE SECONDS [COUNT]: until FILE has COUNT (default 1) lines matching ERE
wait_log() {
    _i=0
    while :; do
        _c=$(grep -cE "$2" "$1" 2>/dev/null)
        [ "${_c:-0}" -ge "${4:-1}" ] && return 0
        [ "$_i" -ge $(($3 * 20)) ] && return 1
        sleep 0.05
        _i=$((_i + 1))
    done
}

# want_case ID: whether case ID is to run (DAEMON_TEST_CASES, default all: abcdefg)
want_case() {
    case ${DAEMON_TEST_CASES:-abcdefg} in *"$1"*) return 0 ;; esac
    return 1
}

# case_begin ID TITLE / case_end: a PASS or FAIL line for the case
case_begin() {
    case_id=$1
    case_title=$2
    case_failures=$failures
    printf '\n== %s. %s\n' "$1" "$2"
}
case_end() {
    if [ "$failures" -eq "$case_failures" ]; then
        echo "PASS $case_id. $case_title"
    else
        echo "FAIL $case_id. $case_title: $((failures - case_failures)) check(s) failed (above)"
    fi
}

# ---- the servers ----

# start_server NAME SCRIPT [dmserver.py options]: the scripted DM server over HTTPS; its
# stdout in $work/NAME.out, log NAME.log, summary NAME.json; sets srv_pid, srv_url
start_server() {
    _n=$1
    _s=$2
    shift 2
    rm -f "$work/$_n.port"
    python3 "$top/tests/dmserver/dmserver.py" --script "$_s" --port-file "$work/$_n.port" \
        --cert "$work/tls/server.pem" --key "$work/tls/server.key" --timeout 60 --max-time 900 \
        --log "$work/$_n.log" --summary "$work/$_n.json" --syncmlconv "$build/tests/tools/syncmlconv" \
        "$@" >"$work/$_n.out" 2>&1 </dev/null &
    srv_pid=$!
    track "$srv_pid"
    wait_log "$work/$_n.port" . 10 || {
        cat "$work/$_n.out"
        echo "FAIL: the DM server $_n ($_s) did not start"
        exit 1
    }
    srv_url="https://127.0.0.1:$(cat "$work/$_n.port")/omadm"
}

# server_done NAME PID [SECONDS]: the server's script has ended by itself (within SECONDS,
# default 30) and passed
server_done() {
    wait_exit "$2" "${3:-30}"
    if [ "$rc" -eq 0 ] && grep -q "^PASS: " "$work/$1.out"; then
        ok "the DM server's script passed: $(grep '^PASS: ' "$work/$1.out")"
    else
        fail "the DM server $1 (exit $rc): $(grep -E '^(FAIL|NOTE): ' "$work/$1.out" | head -n 8)"
    fi
}

# server_end NAME PID: SIGUSR1 (the client is done), then as server_done
server_end() {
    kill -USR1 "$2" 2>/dev/null
    server_done "$1" "$2" 30
}

# requests NAME: how many requests the server NAME got
requests() { grep -c '>>> request' "$work/$1.log" 2>/dev/null || true; }

closed_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- devices and daemons ----

server_secret=srv-$(openssl rand -hex 6)
client_secret=cli-$(openssl rand -hex 6)

# device NAME [KEY=VALUE]...: a new state directory $work/NAME (in $dev) whose dmclient.conf
# (mode 0600) has the test CA, the server's ID and secret, and the settings given
device() {
    dev=$work/$1
    shift
    mkdir -p "$dev"
    {
        echo "cacert = $work/tls/ca.pem"
        echo "server_id = dmserver"
        echo "server_secret = $server_secret"
        for kv; do echo "${kv%%=*} = ${kv#*=}"; done
    } >"$dev/dmclient.conf"
    chmod 600 "$dev/dmclient.conf"
}

# conf_set DIR KEY VALUE: KEY = VALUE in DIR/dmclient.conf (replaced or added), the file
# replaced at once (a session reads it whole or not at all)
conf_set() {
    { grep -v "^$2 *=" "$1/dmclient.conf"; echo "$2 = $3"; } >"$1/dmclient.conf.new"
    chmod 600 "$1/dmclient.conf.new"
    mv -f "$1/dmclient.conf.new" "$1/dmclient.conf"
}

# start_daemon NAME DIR [ARGS]: DMCLIENT_MINUTE_SECONDS=1 dmclient --state-dir DIR ARGS (ARGS
# hold "daemon"), stderr in $work/NAME.err, stdout in NAME.stdout; sets dpid.  Its log joins
# case g's check unless ARGS hold --log.
start_daemon() {
    _n=$1
    _d=$2
    shift 2
    DMCLIENT_MINUTE_SECONDS=1 "$dmclient" --state-dir "$_d" "$@" \
        >"$work/$_n.stdout" 2>"$work/$_n.err" </dev/null &
    dpid=$!
    track "$dpid"
    case " $* " in *" --log "*) ;; *) logs="$logs $work/$_n.err:$dpid" ;; esac
}

# stop_daemon NAME PID [SECONDS]: SIGTERM; the exit status must be 0 within SECONDS (10)
stop_daemon() {
    kill -TERM "$2" 2>/dev/null
    wait_exit "$2" "${3:-10}"
    [ "$rc" -eq 0 ] && ok "SIGTERM: daemon $1 stopped, exit 0" ||
        fail "SIGTERM: daemon $1 exit $rc, expected 0; its log ends: $(tail -n 3 "$work/$1.err")"
}

# logtimes FILE ERE: the time (seconds since the epoch, ms) of each line of a daemon's log
# (default --log) that matches ERE (Python's re), one per line
logtimes() { python3 "$work/logtimes.py" "$1" "$2"; }
cat >"$work/logtimes.py" <<'EOF'
import datetime, re, sys
pat = re.compile(sys.argv[2])
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ", line)
    if m and pat.search(line):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
        print("%.3f" % t.replace(tzinfo=datetime.timezone.utc).timestamp())
EOF

# gaps.py STARTS DONES: per session after the first, "GAP LENGTH": from the end of the previous
# session to its start, and the previous session's length (seconds)
cat >"$work/gaps.py" <<'EOF'
import sys
starts = [float(x) for x in open(sys.argv[1])]
dones = [float(x) for x in open(sys.argv[2])]
for k in range(min(len(dones), len(starts) - 1)):
    print("%.3f %.3f" % (starts[k + 1] - dones[k], dones[k] - starts[k]))
EOF

# silent.py PORTFILE LOG: a server that accepts connections and never answers (a line in LOG
# for each)
cat >"$work/silent.py" <<'EOF'
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)     # kept open, never answered
    with open(sys.argv[2], "a") as f:
        f.write("accepted\n")
EOF

# killer.py LOG K MS PID: SIGKILL to PID MS milliseconds after the DM server's log (LOG) shows its
# Kth request (looking every millisecond; at most 30 s); says when
cat >"$work/killer.py" <<'EOF'
import os, re, signal, sys, time
log, k, ms, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pat = re.compile(r"^\[ *[0-9.]+\] >>> request %d:" % k, re.M)
end = time.monotonic() + 30
seen = False
while time.monotonic() < end:
    try:
        with open(log, errors="replace") as f:
            seen = pat.search(f.read()) is not None
    except OSError:
        pass
    if seen:
        break
    time.sleep(0.001)
time.sleep(ms / 1000.0)
try:
    os.kill(pid, signal.SIGKILL)
except ProcessLookupError:
    pass
print("%d ms after the server's request %d%s" % (ms, k, "" if seen else " (which never came)"))
EOF


# other_cmds WHEN: get and store list on case a's device while its daemon runs
other_cmds() {
    _id=$(timeout -s KILL 30 "$dmclient" --state-dir "$a_dev" get ./DevInfo/DevId 2>"$work/a-get.err")
    _rc=$?
    [ "$_rc" -eq 0 ] && [ -n "$_id" ] && ok "get ./DevInfo/DevId while the daemon runs ($1): $_id" ||
        fail "get while the daemon runs ($1): exit $_rc, '$_id', $(cat "$work/a-get.err")"
    timeout -s KILL 30 "$dmclient" --state-dir "$a_dev" store list >"$work/a-list.out" 2>"$work/a-list.err"
    _rc=$?
    [ "$_rc" -eq 0 ] && ok "store list while the daemon runs ($1): $(wc -l <"$work/a-list.out") certificate(s)" ||
        fail "store list while the daemon runs ($1): exit $_rc, $(cat "$work/a-list.err")"
}

# ---- set-up: TLS, the SCEP peer ----
echo "test-daemon: scratch directory $work; case f seed $seed (DAEMON_TEST_SEED), $rounds rounds"
sh "$top/tests/dmserver/make-certs.sh" "$work/tls" >"$work/make-certs.log" 2>&1 ||
    { cat "$work/make-certs.log"; echo "FAIL: make-certs.sh"; exit 1; }
bed_build "$build/scep" >"$work/scep-build.log" 2>&1 ||
    { cat "$work/scep-build.log"; echo "FAIL: the SCEP peer (tests/scep, Go) could not be built: run ./setup.sh"; exit 1; }
challenge=chl-$(openssl rand -hex 8)
purl=$(bed_start_peer scep-peer "$SCEP_BED_DIR/depot" -challenge "$challenge" -pending 1 \
    -ca-cn "test-daemon SCEP CA") || { echo "FAIL: the SCEP peer did not start"; exit 1; }
scep_thumb=$(bed_thumbprint "$SCEP_BED_DIR/depot/ca.pem")
scep="--param scep_url=$purl --param scep_ca_thumbprint=$scep_thumb --param scep_challenge=$challenge"

# ================================================================================================
run_a() {
    case_begin a "poll + enrollment + automatic report (demo script)"
    # shellcheck disable=SC2086  # $scep: options
    start_server a demo $scep
    a_srv=$srv_pid
    device a "server_url=$srv_url" poll_interval=3600
    a_dev=$dev
    start_daemon a "$a_dev" daemon
    a_pid=$dpid
    other_cmds "at its start"
    wait_log "$work/a.err" 'PKCSReq' 30 && other_cmds "during the enrollment" ||
        fail "no PKCSReq in the daemon's log within 30 s: $(tail -n 5 "$work/a.err")"
    if wait_log "$work/a.err" 'session [0-9]+: done' 40 2; then
        ok "two sessions done: $(grep -E 'session [0-9]+: done' "$work/a.err" | sed 's/.*: info: //' | tr '\n' ';')"
    else
        fail "the daemon did not do two sessions within 40 s: $(tail -n 8 "$work/a.err")"
    fi
    server_done a "$a_srv" 30
    for w in 'PKCSReq' 'PENDING' 'CertPoll' 'certificate [0-9A-F]{40} installed in my-system' \
        'an alert is queued for the server: session in 2 s'; do
        grep -qE "$w" "$work/a.err" && ok "log: $w" || fail "no '$w' in the daemon's log"
    done
    t0=$(logtimes "$work/a.err" 'daemon: started' | head -n 1)
    t_inst=$(logtimes "$work/a.err" 'installed in my-system' | head -n 1)
    t_rep=$(logtimes "$work/a.err" 'session [0-9]+: done' | sed -n 2p)
    if [ -n "$t0" ] && [ -n "$t_inst" ] && [ -n "$t_rep" ]; then
        a_took=$(awk -v a="$t0" -v b="$t_rep" 'BEGIN { printf "%.2f", b - a }')
        rep=$(awk -v a="$t_inst" -v b="$t_rep" 'BEGIN { printf "%.2f", b - a }')
        awk -v r="$rep" 'BEGIN { exit !(r <= 8) }' &&
            ok "the report session ended ${rep} s after the certificate was installed (2 s delay; start to report: ${a_took} s)" ||
            fail "the report session ended ${rep} s after the certificate was installed, expected within 8 s"
    fi
    al=$(timeout -s KILL 30 "$dmclient" --state-dir "$a_dev" alerts 2>&1)
    [ -z "$al" ] && ok "dmclient alerts: none queued" || fail "dmclient alerts after the report: $al"
    thumb=$(sed -n 's/^server view: .*CertThumbprint=\([0-9A-F]*\).*/\1/p' "$work/a.out")
    timeout -s KILL 30 "$dmclient" --state-dir "$a_dev" store list >"$work/a-list.out" 2>&1
    [ -n "$thumb" ] && grep -q "^my-system  *$thumb " "$work/a-list.out" &&
        ok "store list: my-system $thumb (the CertThumbprint the server read)" ||
        fail "store list does not show my-system '$thumb': $(cat "$work/a-list.out")"
    other_cmds "after the report"
    stop_daemon a "$a_pid"
    case_end
}
want_case a && run_a

# ================================================================================================
run_b() {
    case_begin b "server down for a while: retries with backoff, then poll_interval"
    port=$(closed_port)
    device b "server_url=https://127.0.0.1:$port/omadm" poll_interval=3 retry_min=0.2 retry_max=1
    b_dev=$dev
    start_daemon b "$b_dev" daemon
    b_pid=$dpid
    wait_log "$work/b.err" 'session failed \(6 in a row\)' 30 ||
        fail "no 6 failed sessions within 30 s: $(tail -n 4 "$work/b.err")"
    start_server b package1
    b_srv=$srv_pid
    conf_set "$b_dev" server_url "$srv_url"
    wait_log "$work/b.err" 'session [0-9]+: done' 15 ||
        fail "no session passed within 15 s of the server's start: $(tail -n 4 "$work/b.err")"
    server_done b "$b_srv" 30
    # the waits the daemon announced, and the gaps between the failed sessions' error lines
    sed -n 's/.*session failed (\([0-9]*\) in a row); next try in \([0-9.]*\) s$/\1 \2/p' "$work/b.err" >"$work/b.waits"
    logtimes "$work/b.err" 'error: session [0-9]+: ' >"$work/b.fails"
    echo "   waits announced: $(awk '{ printf "%s ", $2 }' "$work/b.waits")"
    awk 'NR == FNR { row[FNR] = $1; w[FNR] = $2; n = FNR; next }
         { t[FNR] = $1; m = FNR }
         END {
             bad = ""
             for (i = 1; i <= n; i++) {
                 want = 0.2 * 2 ^ (row[i] - 1); if (want > 1) want = 1
                 # printed with one decimal: want .. want * 1.1, rounded
                 if (w[i] < want - 0.05 || w[i] > want * 1.1 + 0.05)
                     bad = bad sprintf(" wait %d (%d in a row) is %s s, expected %.1f..%.2f;", i, row[i], w[i], want, want * 1.1)
                 if (i < m && row[i + 1] == row[i] + 1) {
                     g = t[i + 1] - t[i]
                     if (g < w[i] - 0.06 || g > w[i] + 2.5)
                         bad = bad sprintf(" failure %d came %.3f s after failure %d (announced %s s);", i + 1, g, i, w[i])
                 }
             }
             if (n < 6) bad = bad " fewer than 6 failed sessions;"
             print bad
         }' "$work/b.waits" "$work/b.fails" >"$work/b.verdict"
    [ -s "$work/b.waits" ] && [ -z "$(tr -d ' \n' <"$work/b.verdict")" ] &&
        ok "failed sessions: waits 0.2, 0.4, 0.8 s, then at most retry_max 1 s (+10 %); the next session came after each" ||
        fail "retry waits:$(cat "$work/b.verdict")"
    # after the session that passed: nothing until poll_interval (3 s); then the next (failing: the
    # server's script has ended)
    t_ok=$(logtimes "$work/b.err" 'session [0-9]+: done' | head -n 1)
    wait_log "$work/b.err" 'session failed \(1 in a row\)' 15 2 ||
        fail "no session within 15 s after the one that passed"
    t_next=$(logtimes "$work/b.err" 'error: session [0-9]+: ' | tail -n 1)
    gap=$(awk -v a="$t_ok" -v b="$t_next" 'BEGIN { printf "%.3f", b - a }')
    awk -v g="$gap" 'BEGIN { exit !(g >= 2.99 && g <= 3.3 + 3) }' &&
        ok "after the session that passed, the next came ${gap} s later (poll_interval 3 s, +10 %)" ||
        fail "after the session that passed, the next came ${gap} s later, expected 3 .. 3.3 s (+ slack)"
    stop_daemon b "$b_pid"
    case_end
}
want_case b && run_b

# ================================================================================================
run_c() {
    case_begin c "poll_interval 1: one session after another"
    start_server c sessions --param sessions=4 --param linger=30
    c_srv=$srv_pid
    device c "server_url=$srv_url" poll_interval=1
    start_daemon c "$dev" daemon -v
    c_pid=$dpid
    wait_log "$work/c.err" 'session [0-9]+: done' 30 5 ||
        fail "fewer than 5 sessions within 30 s: $(grep -cE 'session [0-9]+: done' "$work/c.err")"
    stop_daemon c "$c_pid"
    server_end c "$c_srv"
    logtimes "$work/c.err" 'session [0-9]+: message 1 to ' >"$work/c.starts"
    logtimes "$work/c.err" 'session [0-9]+: done' >"$work/c.dones"
    # gap k: from the end of session k to the start of session k+1
    python3 "$work/gaps.py" "$work/c.starts" "$work/c.dones" >"$work/c.gaps"
    n=$(wc -l <"$work/c.gaps")
    echo "   gaps between sessions (s): $(awk '{ printf "%s ", $1 }' "$work/c.gaps")"
    echo "   session lengths (s):      $(awk '{ printf "%s ", $2 }' "$work/c.gaps")"
    [ "$n" -ge 3 ] && ok "$((n + 1)) sessions" || fail "only $((n + 1)) sessions came"
    bad=$(awk '$1 < 0.99 || $1 > 1.1 + 1.5 { printf "%s ", $1 }' "$work/c.gaps")
    [ -z "$bad" ] && ok "every gap within 1.0 .. 1.1 s (+1.5 s allowance): max $(sort -n "$work/c.gaps" | tail -n 1 | cut -d' ' -f1) s" ||
        fail "gaps outside 1.0 .. 2.6 s: $bad"
    case_end
}
want_case c && run_c

# ================================================================================================
run_d() {
    case_begin d "notify hands the notification over; one daemon per state directory"
    start_server d1 package1
    d1_srv=$srv_pid
    device d "server_url=$srv_url" poll_interval=3600 retry_min=0.5 retry_max=1
    d_dev=$dev
    start_daemon d "$d_dev" daemon
    d_pid=$dpid
    wait_log "$work/d.err" 'session [0-9]+: done' 20 || fail "the start-up session did not pass: $(tail -n 3 "$work/d.err")"
    server_done d1 "$d1_srv" 30
    timeout -s KILL 20 "$dmclient" --state-dir "$d_dev" daemon >"$work/d-second.out" 2>"$work/d-second.err"
    rc=$?
    logs="$logs $work/d-second.err:"
    [ "$rc" -eq 1 ] && [ "$(wc -l <"$work/d-second.err")" -eq 1 ] &&
        grep -q 'another dmclient daemon serves it' "$work/d-second.err" &&
        ok "a second daemon on the same state directory: exit 1, $(sed 's/.*error: //' "$work/d-second.err")" ||
        fail "a second daemon: exit $rc, stderr: $(cat "$work/d-second.err")"
    start_server d2 package1 --param alert=1200 --param session_id=4242
    d2_srv=$srv_pid
    conf_set "$d_dev" server_url "$srv_url"
    notification "$work/bad.bin" 4242 dmserver "not-$server_secret"
    notification "$work/good.bin" 4242 dmserver "$server_secret"
    timeout -s KILL 60 "$dmclient" --state-dir "$d_dev" notify "$work/bad.bin" >"$work/d-notify1.out" 2>"$work/d-notify1.err"
    rc=$?
    [ "$rc" -eq 1 ] && ok "notify with a bad digest: exit 1 ($(cat "$work/d-notify1.err"))" ||
        fail "notify with a bad digest: exit $rc, expected 1: $(cat "$work/d-notify1.err")"
    grep -q "notify: the notification's digest does not verify for server ID dmserver" "$work/d.err" &&
        ok "the daemon's log says the digest does not verify" ||
        fail "the daemon's log does not say why: $(tail -n 3 "$work/d.err")"
    sleep 2     # retry_min is 0.5 s: a refused notification must not count as a failed session
    [ "$(requests d2)" -eq 0 ] && ok "nothing was sent (also not 2 s later)" ||
        fail "$(requests d2) request(s) reached the server after a refused notification: $(tail -n 3 "$work/d.err")"
    t0=$(now)
    timeout -s KILL 60 "$dmclient" --state-dir "$d_dev" notify "$work/good.bin" >"$work/d-notify2.out" 2>"$work/d-notify2.err"
    rc=$?
    [ "$rc" -eq 0 ] && [ ! -s "$work/d-notify2.err" ] && ok "notify FILE: exit 0 after $(since "$t0") s, nothing on stderr" ||
        fail "notify with a valid notification: exit $rc, stderr: $(cat "$work/d-notify2.err")"
    grep -qE "daemon: a notification \([0-9]+ bytes\) from PID [0-9]+" "$work/d.err" &&
        grep -qE 'session 4242: done' "$work/d.err" &&
        ok "the daemon ran the session: $(grep -E 'a notification|session 4242: done' "$work/d.err" | sed 's/.*: info: //' | tail -n 2 | tr '\n' ';')" ||
        fail "the daemon's log shows no session 4242: $(tail -n 4 "$work/d.err")"
    server_done d2 "$d2_srv" 30     # Alert 1200, SessionID 4242
    stop_daemon d "$d_pid"
    [ ! -e "$d_dev/notify.sock" ] && ok "the daemon removed DIR/notify.sock" || fail "DIR/notify.sock left behind"
    case_end
}
want_case d && run_d

# ================================================================================================
run_e() {
    case_begin e "signals: SIGTERM during a session and when idle, SIGHUP"
    python3 "$work/silent.py" "$work/silent.port" "$work/silent.accepted" </dev/null >"$work/silent.log" 2>&1 &
    silent=$!
    track "$silent"
    wait_log "$work/silent.port" . 10 || fail "the silent server did not start"
    device e1 "server_url=https://127.0.0.1:$(cat "$work/silent.port")/omadm" poll_interval=3600
    start_daemon e1 "$dev" daemon
    e_pid=$dpid
    if wait_log "$work/silent.accepted" . 20; then
        sleep 0.5   # the session now waits for the server's answer
        t0=$(now)
        kill -TERM "$e_pid"
        wait_exit "$e_pid" 10
        took=$(since "$t0")
        [ "$rc" -eq 0 ] && awk -v t="$took" 'BEGIN { exit !(t <= 5) }' &&
            ok "SIGTERM while the session waits on a server that never answers: exit 0 after $took s" ||
            fail "SIGTERM during a session: exit $rc after $took s, expected 0 within 5 s"
        grep -q 'daemon: stopped by a signal' "$work/e1.err" && ok "log: stopped by a signal" ||
            fail "no 'stopped by a signal' in the log: $(tail -n 3 "$work/e1.err")"
    else
        fail "the daemon did not connect to the silent server within 20 s"
        stop_daemon e1 "$e_pid"
    fi
    kill -KILL "$silent" 2>/dev/null
    wait_exit "$silent" 5

    start_server e2 sessions --param sessions=2 --param linger=30
    e2_srv=$srv_pid
    device e2 "server_url=$srv_url" poll_interval=3600
    e2_dev=$dev
    start_daemon e2 "$e2_dev" daemon
    e_pid=$dpid
    wait_log "$work/e2.err" 'session [0-9]+: done' 20 || fail "the start-up session did not pass"
    conf_set "$e2_dev" poll_interval 1.5
    t0=$(now)
    kill -HUP "$e_pid"
    wait_log "$work/e2.err" 'dmclient.conf read again: poll_interval 1.5 s' 5 &&
        ok "SIGHUP: $(grep 'read again' "$work/e2.err" | sed 's/.*: info: //')" ||
        fail "SIGHUP with poll_interval 1.5: not logged as read again: $(tail -n 3 "$work/e2.err")"
    wait_log "$work/e2.err" 'session [0-9]+: done' 10 2 &&
        ok "the shorter poll_interval took effect: the next session was done $(since "$t0") s after SIGHUP" ||
        fail "no session within 10 s of SIGHUP with poll_interval 1.5"
    conf_set "$e2_dev" poll_interval soon
    kill -HUP "$e_pid"
    wait_log "$work/e2.err" 'keeping the settings in use' 5 &&
        grep -q "bad value for 'poll_interval'" "$work/e2.err" &&
        ok "SIGHUP with poll_interval = soon: $(grep -E "bad value|keeping" "$work/e2.err" | sed 's/.*: \(error\|warning\): //' | tr '\n' ';')" ||
        fail "SIGHUP with a bad value: $(tail -n 3 "$work/e2.err")"
    conf_set "$e2_dev" poll_interval 3600    # not read until the next SIGHUP: 1.5 s stays in use
    t_prev=$(logtimes "$work/e2.err" 'session [0-9]+: done' | tail -n 1)
    if wait_log "$work/e2.err" 'session [0-9]+: done' 10 3; then
        t_new=$(logtimes "$work/e2.err" 'session [0-9]+: done' | tail -n 1)
        gap=$(awk -v a="$t_prev" -v b="$t_new" 'BEGIN { printf "%.2f", b - a }')
        ok "the settings in use were kept: the next session ${gap} s after the previous (poll_interval 1.5)"
    else
        fail "no session within 10 s after the bad SIGHUP (poll_interval 1.5 should have stayed)"
    fi
    t0=$(now)
    kill -TERM "$e_pid"
    wait_exit "$e_pid" 10
    [ "$rc" -eq 0 ] && ok "SIGTERM when idle: exit 0 after $(since "$t0") s" || fail "SIGTERM when idle: exit $rc"
    server_end e2 "$e2_srv"
    if env --default-signal=INT true 2>/dev/null; then
        device e3 "server_url=https://127.0.0.1:$(closed_port)/omadm" retry_min=3600
        DMCLIENT_MINUTE_SECONDS=1 env --default-signal=INT "$dmclient" --state-dir "$dev" daemon \
            >"$work/e3.stdout" 2>"$work/e3.err" </dev/null &
        e_pid=$!
        track "$e_pid"
        logs="$logs $work/e3.err:$e_pid"
        wait_log "$work/e3.err" 'session failed' 10 || fail "e3: no failed session"
        t0=$(now)
        kill -INT "$e_pid"
        wait_exit "$e_pid" 10
        [ "$rc" -eq 0 ] && ok "SIGINT when idle: exit 0 after $(since "$t0") s" || fail "SIGINT: exit $rc"
    else
        echo "SKIP: SIGINT (env --default-signal is missing: a background job ignores SIGINT)"
    fi
    case_end
}
want_case e && run_e

# ================================================================================================
run_f() {
    case_begin f "kill -9 at random moments, $rounds rounds"
    # odd rounds: a delay drawn from 0 .. the time case a took from start to report (x 1.1);
    # even rounds: the moment the DM server has received its Kth request (1..5: three in the
    # session that orders the enrollment, two in the report's), plus 0..40 ms, so that kills
    # land inside sessions too (between the server's receipt of the alert and the device's
    # processing of the answer, for one)
    window=${a_took:-4}
    window=$(awk -v w="$window" 'BEGIN { printf "%.2f", w * 1.1 }')
    echo "   odd rounds: kill after a random delay in 0 .. $window s; even rounds: after the server's"
    echo "   Kth request (K random in 1..5) + 0..40 ms (seed $seed)"
    awk -v seed="$seed" -v n="$rounds" -v w="$window" 'BEGIN {
        srand(seed)
        for (i = 1; i <= n; i++)
            if (i % 2) printf "%.3f\n", rand() * w
            else printf "request %d %d\n", 1 + int(rand() * 5), int(rand() * 41)
    }' >"$work/f.moments"
    f_dups=0
    i=0
    while [ "$i" -lt "$rounds" ]; do
        i=$((i + 1))
        moment=$(sed -n "${i}p" "$work/f.moments")
        r0=$(now)
        # shellcheck disable=SC2086  # $scep: options
        start_server "f$i" daemon $scep --param linger=120 --param wait=120
        f_srv=$srv_pid
        device "f$i" "server_url=$srv_url" poll_interval=3600 retry_min=0.5 retry_max=2
        f_dev=$dev
        start_daemon "f$i-1" "$f_dev" daemon
        case $moment in
        request*)
            # shellcheck disable=SC2086  # "request K MS": two words
            set -- $moment
            python3 "$work/killer.py" "$work/f$i.log" "$2" "$3" "$dpid" >"$work/f$i.killer" 2>&1
            moment="$(cat "$work/f$i.killer")"
            ;;
        *)
            sleep "$moment"
            kill -KILL "$dpid" 2>/dev/null
            moment="after $moment s"
            ;;
        esac
        wait_exit "$dpid" 10
        killed=$rc
        where=$(grep -v '^$' "$work/f$i-1.err" | tail -n 1 | sed 's/^[^ ]* dmclient\[[0-9]*\]: //')
        start_daemon "f$i-2" "$f_dev" daemon
        f_pid=$dpid
        # until the server has the result and the device has nothing queued, with the session over
        j=0
        settled=0
        while [ $j -lt 300 ]; do
            if grep -q '^server: result alert [0-9]*: Data 0' "$work/f$i.out" &&
                tail -n 1 "$work/f$i-2.err" | grep -qE 'session [0-9]+: done' &&
                [ -z "$(timeout -s KILL 30 "$dmclient" --state-dir "$f_dev" alerts 2>&1)" ]; then
                settled=1
                break
            fi
            sleep 0.2
            j=$((j + 1))
        done
        [ "$settled" -eq 1 ] ||
            fail "round $i: no result at the server with an empty alert queue within 60 s: daemon: $(tail -n 3 "$work/f$i-2.err"); server: $(tail -n 3 "$work/f$i.out")"
        kill -TERM "$f_pid" 2>/dev/null
        wait_exit "$f_pid" 10
        [ "$rc" -eq 0 ] || fail "round $i: SIGTERM: the second daemon's exit status $rc, expected 0"
        kill -USR1 "$f_srv" 2>/dev/null
        wait_exit "$f_srv" 30
        srv_rc=$rc
        got=$(sed -n 's/^NOTE: result alerts received: \([0-9]*\).*/\1/p' "$work/f$i.out")
        [ "$srv_rc" -eq 0 ] && grep -q '^PASS: ' "$work/f$i.out" ||
            fail "round $i: the server's script: exit $srv_rc: $(grep -E '^(FAIL|NOTE)' "$work/f$i.out" | head -n 6)"
        # Nothing lost or duplicated: the result alert reaches the server at least once.  It reaches
        # it twice only when the kill fell between the server's receipt of the alert and the
        # device's processing of the server's 200 for it (the device then still has it queued and
        # sends it again, as it must: docs/session.md keeps an alert until the server acks it).
        # Anything else (more copies, a second certificate, an alert left queued) is a failure.
        [ "${got:-0}" -ge 1 ] || fail "round $i: the server received no result alert"
        [ "${got:-0}" -le 2 ] || fail "round $i: the server received the result alert $got times (one kill: twice at most)"
        [ "${got:-0}" -ge 2 ] && f_dups=$((f_dups + 1))
        timeout -s KILL 30 "$dmclient" --state-dir "$f_dev" store list my-system >"$work/f$i-my.out" 2>&1
        nmy=$(grep -c '^my-system ' "$work/f$i-my.out")
        thumb=$(sed -n 's/^server: server view: .*CertThumbprint=\([0-9A-F]*\).*/\1/p' "$work/f$i.out" | tail -n 1)
        [ "$nmy" -eq 1 ] || fail "round $i: My/System holds $nmy certificates: $(cat "$work/f$i-my.out")"
        [ -z "$thumb" ] || grep -q "^my-system  *$thumb " "$work/f$i-my.out" ||
            fail "round $i: My/System does not hold $thumb, the certificate the server read"
        al=$(timeout -s KILL 30 "$dmclient" --state-dir "$f_dev" alerts 2>&1)
        [ -z "$al" ] || fail "round $i: an alert is still queued: $al"
        st=$(timeout -s KILL 30 "$dmclient" --state-dir "$f_dev" get ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/DemoCert/Status 2>&1)
        [ "$st" = 1 ] || fail "round $i: the enrollment's Status is '$st', expected 1"
        timeout -s KILL 60 "$dmclient" --state-dir "$f_dev" store check >"$work/f$i-check.out" 2>&1 ||
            fail "round $i: store check: $(cat "$work/f$i-check.out")"
        echo "   round $i: killed $moment (exit $killed); its last line: $where"
        echo "            result alerts at the server: ${got:-0}; My/System: $nmy; round $(since "$r0") s"
    done
    [ "$f_dups" -eq 0 ] || echo "   $f_dups round(s) delivered the result alert twice (a kill between the server's receipt and the device's processing of its 200)"
    case_end
}
want_case f && run_f

# ================================================================================================
run_g() {
    case_begin g "log lines and secrets"
    start_server g basic-auth --param "client_secret=$client_secret"
    g_srv=$srv_pid
    device g "server_url=$srv_url" poll_interval=3600 client_auth=basic "client_secret=$client_secret"
    start_daemon g "$dev" daemon
    g_pid=$dpid
    wait_log "$work/g.err" 'session [0-9]+: done' 20 || fail "the session with basic authentication did not pass: $(tail -n 3 "$work/g.err")"
    server_done g "$g_srv" 30
    stop_daemon g "$g_pid"
    # the default form, every daemon above
    re_ts='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z '
    nlines=0
    for fp in $logs; do
        f=${fp%:*}
        pid=${fp##*:}
        [ -n "$pid" ] || pid='[0-9]+'
        nlines=$((nlines + $(wc -l <"$f")))
        bad=$(grep -vE "${re_ts}dmclient\[$pid\]: (error|warning|info|debug): " "$f" | head -n 3)
        [ -z "$bad" ] || fail "$(basename "$f"): lines not in the form 'YYYY-MM-DDTHH:MM:SS.mmmZ dmclient[$pid]: LEVEL: ': $bad"
        bad=$(grep -E ': (error|warning|info|debug): session' "$f" | grep -vE ': (error|warning|info|debug): session [0-9]+: ' | head -n 3)
        [ -z "$bad" ] || fail "$(basename "$f"): session lines without the session's number: $bad"
    done
    [ "$failures" -eq "$case_failures" ] &&
        ok "$nlines lines of $(echo "$logs" | wc -w) daemons: timestamp, dmclient[PID], level; session lines 'session N: '"
    # shellcheck disable=SC2046  # one file per word
    grep -hE 'session [0-9]+: ' $(for fp in $logs; do echo "${fp%:*}"; done) | head -n 1 | sed 's/^/   e.g. /'
    # --log journal
    device gj "server_url=https://127.0.0.1:$(closed_port)/omadm" retry_min=0.2 retry_max=0.2
    start_daemon gj "$dev" --log journal daemon
    gj_pid=$dpid
    wait_log "$work/gj.err" 'session failed \(2 in a row\)' 10 || fail "--log journal: no failed sessions logged"
    stop_daemon gj "$gj_pid"
    bad=$(grep -vE '^<[0-7]>' "$work/gj.err" | head -n 3)
    [ -s "$work/gj.err" ] && [ -z "$bad" ] &&
        ok "--log journal: $(wc -l <"$work/gj.err") lines, each '<N>...', e.g. $(grep 'session failed' "$work/gj.err" | head -n 1)" ||
        fail "--log journal: lines without a priority: $bad"
    grep -qE "$re_ts" "$work/gj.err" && fail "--log journal: timestamps in the lines (the journal stamps them)"
    # --log syslog
    device gs "server_url=https://127.0.0.1:$(closed_port)/omadm" retry_min=0.2 retry_max=0.2
    start_daemon gs "$dev" --log syslog daemon
    gs_pid=$dpid
    sleep 1.5
    stop_daemon gs "$gs_pid"
    [ ! -s "$work/gs.err" ] && ok "--log syslog: nothing on stderr" || fail "--log syslog wrote on stderr: $(head -n 3 "$work/gs.err")"
    # secrets
    all=$(for fp in $logs; do echo "${fp%:*}"; done; ls "$work"/*.stdout "$work"/gj.err "$work"/gs.err "$work"/d-notify*.err)
    for sec in "$client_secret" "$server_secret" "$challenge"; do
        # shellcheck disable=SC2086  # one file per word
        hits=$(grep -lF -- "$sec" $all 2>/dev/null)
        [ -z "$hits" ] && ok "secret ${sec%%-*}-... in no daemon's output" || fail "secret ${sec%%-*}-... in: $hits"
    done
    grep -q "$challenge" "$work/a.log" && ok "(the SCEP challenge did travel: the DM server's log has it)"
    # shellcheck disable=SC2086  # one file per word
    if grep -lE 'Sanitizer|runtime error:' $all >/dev/null 2>&1; then
        fail "sanitizer report in: $(grep -lE 'Sanitizer|runtime error:' $all)"
    fi
    case_end
}
want_case g && run_g

echo
finish test-daemon
