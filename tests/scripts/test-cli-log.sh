#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-log.sh BUILD_DIR
#
# Where dmclient's log lines go and which (docs/cli.md "Logging"), with a
# session that fails (nothing listens on the server's port) for an error line
# and a daemon started and stopped for info lines:
#   - plain (the one-shot default): "dmclient: session: cannot reach ...";
#   - --log stderr: "YYYY-MM-DDTHH:MM:SS.mmmZ dmclient[PID]: error: session N: ...",
#     the PID dmclient's, N the SessionID of the session;
#   - --log journal: "<3>session N: ..." (error), "<6>daemon: started" (info);
#   - the log key of dmclient.conf chooses the same, and --log wins over it;
#   - levels: the daemon's info lines shown by default, gone with -q or
#     log_level = warning, and -v brings them back; log_level = error with
#     --log stderr keeps the error line;
#   - --log with a bad value, --log after the command, and bad log/log_level
#     values in dmclient.conf are one-line errors (exit 2, exit 2, exit 1).
set -u
build=${1:?usage: test-cli-log.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
scratch_dir cli-log
state=$tmp/state
mkdir -p "$state"
closed=http://127.0.0.1:9/dm
stamp='[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{3\}Z'

conf() { printf '%b' "$1" >"$state/dmclient.conf"; }

# session ARGS...: a session against the closed port, stderr in $tmp/err
session() {
    timeout -s KILL 30 "$dmclient" --state-dir "$state" "$@" session --server "$closed" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# daemon ARGS...: a daemon started and stopped at once (its start-up session fails),
# stderr in $tmp/err
daemon() {
    : >"$tmp/err"
    "$dmclient" --state-dir "$state" "$@" daemon --server "$closed" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    i=0
    while [ $i -lt 100 ] && ! grep -q 'session failed' "$tmp/err" && kill -0 "$pid" 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -TERM "$pid" 2>/dev/null
    i=0 # until it is gone or a zombie waiting for us
    while [ $i -lt 200 ] && grep -q '^State:[^Z]*$' "/proc/$pid/status" 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    if grep -q '^State:[^Z]*$' "/proc/$pid/status" 2>/dev/null; then
        fail "daemon $*: still running 10 s after SIGTERM: $(grep -E 'Sig(Blk|Pnd|Ign)|ShdPnd' \
            "/proc/$pid/status" 2>/dev/null | tr '\n' ' ')"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
}

# ---- destinations
conf ''
session
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "^dmclient: session: cannot reach $closed: " "$tmp/err"; then
    echo "PASS: plain: one 'dmclient: session: ...' line"
else
    fail "plain: exit $rc: $(cat "$tmp/err")"
fi

session --log stderr
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "^$stamp dmclient\[[0-9][0-9]*\]: error: session [0-9][0-9]*: cannot reach $closed: " "$tmp/err"; then
    echo "PASS: --log stderr: time, PID, level and SessionID: $(cut -c1-80 "$tmp/err")"
else
    fail "--log stderr: exit $rc: $(cat "$tmp/err")"
fi
# the SessionID named is the one the session used (the counter in DIR/session goes on)
sid=$(sed -n 's/.*: error: session \([0-9]*\): .*/\1/p' "$tmp/err")
session --log stderr
sid2=$(sed -n 's/.*: error: session \([0-9]*\): .*/\1/p' "$tmp/err")
if [ -n "$sid" ] && [ "$sid2" = $((sid + 1)) ]; then
    echo "PASS: the next session's lines name the next SessionID ($sid, $sid2)"
else
    fail "SessionIDs in the lines: '$sid' then '$sid2'"
fi

session --log journal
if [ "$rc" -eq 1 ] && grep -q "^<3>session [0-9]*: cannot reach $closed: " "$tmp/err"; then
    echo "PASS: --log journal: '<3>session N: ...'"
else
    fail "--log journal: exit $rc: $(cat "$tmp/err")"
fi

session --log syslog
if [ "$rc" -eq 1 ] && [ ! -s "$tmp/err" ]; then
    echo "PASS: --log syslog: nothing on stderr"
else
    fail "--log syslog: exit $rc, stderr: $(cat "$tmp/err")"
fi

conf 'log = journal\n'
session
if [ "$rc" -eq 1 ] && grep -q '^<3>session' "$tmp/err"; then
    echo "PASS: log = journal in dmclient.conf"
else
    fail "log = journal: exit $rc: $(cat "$tmp/err")"
fi
session --log plain
if [ "$rc" -eq 1 ] && grep -q '^dmclient: session: cannot reach' "$tmp/err"; then
    echo "PASS: --log wins over the log key"
else
    fail "--log plain over log = journal: $(cat "$tmp/err")"
fi

# ---- levels (the daemon: info lines)
conf ''
daemon
if [ "$rc" -eq 0 ] && grep -q "^$stamp dmclient\[$pid\]: info: daemon: started" "$tmp/err" &&
    grep -q "^$stamp dmclient\[$pid\]: warning: daemon: session failed (1 in a row)" "$tmp/err"; then
    echo "PASS: daemon: stderr with timestamps by default, info and warning lines"
else
    fail "daemon default: exit $rc: $(cat "$tmp/err")"
fi
daemon -q
if [ "$rc" -eq 0 ] && ! grep -q ': info: ' "$tmp/err" && grep -q ': warning: daemon: session failed' "$tmp/err"; then
    echo "PASS: -q: no info lines, warnings stay"
else
    fail "daemon -q: exit $rc: $(cat "$tmp/err")"
fi
conf 'log_level = warning\n'
daemon
if [ "$rc" -eq 0 ] && ! grep -q ': info: ' "$tmp/err" && grep -q ': error: session' "$tmp/err"; then
    echo "PASS: log_level = warning: no info lines"
else
    fail "log_level = warning: exit $rc: $(cat "$tmp/err")"
fi
daemon -v
if [ "$rc" -eq 0 ] && grep -q ': info: daemon: started' "$tmp/err"; then
    echo "PASS: -v over log_level = warning: info lines again"
else
    fail "-v with log_level = warning: exit $rc: $(cat "$tmp/err")"
fi
conf 'log_level = error\nlog = journal\n'
daemon
if [ "$rc" -eq 0 ] && grep -q '^<3>session' "$tmp/err" && ! grep -q '^<[46]>' "$tmp/err"; then
    echo "PASS: log_level = error, log = journal: error lines only"
else
    fail "log_level = error: exit $rc: $(cat "$tmp/err")"
fi

# ---- errors
conf ''
timeout 10 "$dmclient" --state-dir "$state" --log bogus get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(cat "$tmp/err")" = "dmclient: --log: expected plain, stderr, journal or syslog, not 'bogus'" ]; then
    echo "PASS: --log bogus: one line, exit 2"
else
    fail "--log bogus: exit $rc: $(cat "$tmp/err")"
fi
timeout 10 "$dmclient" --state-dir "$state" get ./DevInfo/DevId --log stderr >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(cat "$tmp/err")" = "dmclient: get: --log goes before the command (dmclient --log DEST get ...)" ]; then
    echo "PASS: --log after the command: one line, exit 2"
else
    fail "--log after the command: exit $rc: $(cat "$tmp/err")"
fi
for bad in 'log = loud' 'log_level = chatty' 'poll_interval = 0' 'retry_max = 1e9' 'poll_interval = 5s'; do
    conf "$bad\n"
    timeout 10 "$dmclient" --state-dir "$state" get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err"
    rc=$?
    key=${bad%% *}
    if [ "$rc" -eq 1 ] && [ "$(cat "$tmp/err")" = "dmclient: $state/dmclient.conf:1: bad value for '$key'" ]; then
        echo "PASS: '$bad' refused by name"
    else
        fail "'$bad': exit $rc: $(cat "$tmp/err")"
    fi
done

# the daemon with a bad dmclient.conf: exit 2 (a restart does not fix it), one line
conf 'poll_interval = soon\n'
timeout 10 "$dmclient" --state-dir "$state" daemon --server "$closed" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "dmclient.conf:1: bad value for 'poll_interval'\$" "$tmp/err"; then
    echo "PASS: daemon with a bad dmclient.conf: exit 2, one line"
else
    fail "daemon, bad dmclient.conf: exit $rc: $(cat "$tmp/err")"
fi

finish test-cli-log
