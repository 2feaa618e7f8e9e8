#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-run.sh BUILD_DIR
#
# dmclient run, dmclient alerts and the state lock (docs/cli.md), on a fresh
# state directory with nothing scheduled:
#   1. run --once and run --until-idle exit 0 at once; --help, usage errors
#      (exit 2), DMCLIENT_MINUTE_SECONDS that is not 1..86400 (exit 2)
#   2. alerts prints nothing, alerts --json prints [], alerts --ack of an
#      unknown id exits 1 with one line on stderr
#   3. the state lock: DIR/lock is created 0600; while another process holds
#      it (flock(1)) dmclient get and dmclient run --once wait for it
#   4. plain run: while it waits between steps, dmclient get in the same
#      state directory completes (the lock is not held); SIGTERM (and SIGINT)
#      end it within a few seconds with exit 0; a SIGINT that was ignored when
#      it started stays ignored (SIGTERM still ends it)
#   5. an enrollment whose one SCEP server is unreachable: run --once logs
#      one line for it (exit 0: it stays due)
# (run and session waiting on the network: test-cli-lock.sh)
# dmclient must write nothing on stderr where it succeeds (a sanitizer report
# fails the test).  Every dmclient is bounded by timeout(1) or a watchdog.
#
# Needs: POSIX sh, timeout (coreutils); flock (util-linux) and python3 for
# some checks, which are skipped when missing.  Exits 0 on success.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/dm-check.sh
. "$here/lib/dm-check.sh"
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
command -v timeout >/dev/null 2>&1 || { echo "FAIL: timeout(1) not found"; exit 1; }

scratch_dir cli-run
state=$tmp/state

# start_run: plain dmclient run in the background ($bg), with a watchdog
# that kills it after 60 s; its stderr goes to $tmp/run.err
start_run() {
    "$dmclient" --state-dir "$state" run >"$tmp/run.out" 2>"$tmp/run.err" &
    bg=$!
    (
        i=0
        while [ "$i" -lt 600 ] && kill -0 "$bg" 2>/dev/null; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$bg" 2>/dev/null
    ) >/dev/null 2>&1 &
    watchdog=$!
}

stop_watchdog() {
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
}

# ---- 1. run on an empty state ----
t0=$(now_ms)
dm 0 run --once && ok "run --once on an empty state: exit 0"
dm 0 run --until-idle && ok "run --until-idle on an empty state: exit 0"
DMCLIENT_MINUTE_SECONDS=1 dm 0 run --until-idle &&
    ok "run --until-idle with DMCLIENT_MINUTE_SECONDS=1: exit 0"
el=$(($(now_ms) - t0))
[ "$el" -lt 5000 ] || fail "three idle runs took ${el} ms"
[ -s "$tmp/out" ] && fail "run --until-idle wrote on stdout: $(cat "$tmp/out")"

dm 0 run --help && grep -q '^usage: dmclient .*run' "$tmp/out" && ok "run --help"
dm 0 alerts --help && grep -q '^usage: dmclient .*alerts' "$tmp/out" && ok "alerts --help"
dm 0 --help && grep -q 'run ' "$tmp/out" && grep -q 'alerts ' "$tmp/out" ||
    fail "dmclient --help does not list run and alerts"
dm 2 run --bogus && ok "run --bogus: exit 2"
dm 2 run --once --until-idle && ok "run --once --until-idle: exit 2"
for bad in abc 0 -5 1x "" 86401 99999999999999999999; do
    if DMCLIENT_MINUTE_SECONDS=$bad dm 2 run --once; then
        lines=$(wc -l <"$tmp/err")
        if [ "$lines" -eq 1 ] && grep -q DMCLIENT_MINUTE_SECONDS "$tmp/err"; then
            ok "DMCLIENT_MINUTE_SECONDS='$bad': exit 2, one line"
        else
            fail "DMCLIENT_MINUTE_SECONDS='$bad': stderr is not one line naming it:"
            cat "$tmp/err"
        fi
    fi
done
DMCLIENT_MINUTE_SECONDS=86400 dm 0 run --once && ok "DMCLIENT_MINUTE_SECONDS=86400 accepted"

# ---- 2. alerts ----
if dm 0 alerts; then
    if [ -s "$tmp/out" ]; then
        fail "alerts on an empty state printed: $(cat "$tmp/out")"
    else
        ok "alerts on an empty state prints nothing"
    fi
fi
if dm 0 alerts --json; then
    [ "$(cat "$tmp/out")" = "[]" ] && ok "alerts --json on an empty state prints []" ||
        fail "alerts --json on an empty state printed: $(cat "$tmp/out")"
fi
if dm 1 alerts --ack nope; then
    if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "nope" "$tmp/err"; then
        ok "alerts --ack nope: exit 1, $(cat "$tmp/err")"
    else
        fail "alerts --ack nope: stderr is not one line naming the id:"
        cat "$tmp/err"
    fi
fi
dm 2 alerts --ack && ok "alerts --ack without an id: exit 2"
dm 2 alerts --bogus && ok "alerts --bogus: exit 2"

# ---- 3. the state lock ----
mode=$(stat -c %a "$state/lock" 2>/dev/null)
[ "$mode" = 600 ] && ok "DIR/lock is mode 600" || fail "DIR/lock mode is '$mode', expected 600"
if command -v flock >/dev/null 2>&1; then
    flock "$state/lock" sleep 2 &
    holder=$!
    sleep 0.5
    t0=$(now_ms)
    dm 0 get ./DevInfo/DevId
    el=$(($(now_ms) - t0))
    [ "$el" -ge 1000 ] && ok "get waited ${el} ms for the state lock" ||
        fail "get did not wait for the state lock held by another process (${el} ms)"
    wait "$holder"
    flock "$state/lock" sleep 2 &
    holder=$!
    sleep 0.5
    t0=$(now_ms)
    dm 0 run --once
    el=$(($(now_ms) - t0))
    [ "$el" -ge 1000 ] && ok "run --once waited ${el} ms for the state lock" ||
        fail "run --once did not wait for the state lock (${el} ms)"
    wait "$holder"
else
    echo "skip: flock(1) not found: the lock-waiting checks"
fi

# ---- 4. plain run ----
start_run
sleep 1.5
if ! kill -0 "$bg" 2>/dev/null; then
    fail "plain run exited on its own:"
    cat "$tmp/run.err"
else
    t0=$(now_ms)
    if dm 0 get ./DevInfo/DevId; then
        el=$(($(now_ms) - t0))
        if [ "$(cat "$tmp/out")" = omadm-device ]; then
            ok "get while plain run waits: done in ${el} ms"
        else
            fail "get while plain run waits printed '$(cat "$tmp/out")'"
        fi
    fi
    dm 0 alerts --json && ok "alerts while plain run waits"
    kill -0 "$bg" 2>/dev/null || fail "plain run ended during the get"
    t0=$(now_ms)
    kill -TERM "$bg"
    if gone "$bg" 5; then
        wait "$bg"
        rc=$?
        el=$(($(now_ms) - t0))
        if [ "$rc" -eq 0 ]; then
            ok "plain run ended by SIGTERM in ${el} ms, exit 0"
        else
            fail "plain run after SIGTERM: exit $rc"
            cat "$tmp/run.err"
        fi
        if [ -s "$tmp/run.err" ]; then
            fail "plain run wrote on stderr:"
            cat "$tmp/run.err"
        fi
    else
        fail "plain run still running 5 s after SIGTERM"
    fi
fi
stop_watchdog
bg=

# SIGINT: a background job of a non-interactive shell starts with SIGINT
# ignored (and dmclient keeps it so), so python3 starts it with the default
if command -v python3 >/dev/null 2>&1; then
    out=$(timeout -s KILL 30 python3 - "$dmclient" "$state" <<'EOF'
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)
p = subprocess.Popen([sys.argv[1], "--state-dir", sys.argv[2], "run"],
                     stderr=subprocess.PIPE)
time.sleep(1.0)
if p.poll() is not None:
    print("exited early with %d" % p.returncode); sys.exit(0)
t = time.time()
p.send_signal(signal.SIGINT)
try:
    p.wait(5)
except subprocess.TimeoutExpired:
    p.kill(); print("still running 5 s after SIGINT"); sys.exit(0)
err = p.stderr.read().decode(errors="replace")
print("exit %d in %d ms%s" % (p.returncode, (time.time() - t) * 1000,
                              "; stderr: " + err if err else ""))
EOF
)
    case $out in
    "exit 0 in "*) case $out in *stderr*) fail "plain run, SIGINT: $out" ;;
                   *) ok "plain run ended by SIGINT: $out" ;; esac ;;
    *) fail "plain run, SIGINT: ${out:-python3 failed}" ;;
    esac
    # started with SIGINT ignored (as a background job of a non-interactive
    # shell is): it stays ignored
    out=$(timeout -s KILL 30 python3 - "$dmclient" "$state" <<'EOF'
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
p = subprocess.Popen([sys.argv[1], "--state-dir", sys.argv[2], "run"],
                     stderr=subprocess.PIPE)
time.sleep(1.0)
p.send_signal(signal.SIGINT)
time.sleep(1.0)
alive = p.poll() is None
p.send_signal(signal.SIGTERM)
try:
    p.wait(5)
except subprocess.TimeoutExpired:
    p.kill(); print("still running 5 s after SIGTERM"); sys.exit(0)
print("%s; exit %d after SIGTERM" % ("ignored" if alive else "ended by SIGINT", p.returncode))
EOF
)
    case $out in
    "ignored; exit 0 after SIGTERM") ok "plain run started with SIGINT ignored: $out" ;;
    *) fail "plain run started with SIGINT ignored: ${out:-python3 failed}" ;;
    esac
else
    echo "skip: python3 not found: the SIGINT checks"
fi

# a stopped run leaves a usable state
dm 0 get ./DevInfo/DevId && ok "state usable after the runs"

# 5. an enrollment whose only SCEP server cannot be reached: run --once says
# so in one line (the round's outcome, not also the URL's), and it stays due
enr=$tmp/enroll
mkdir -p "$enr"
case371=$here/../conformance/371-scep-persistence-across-processes
if timeout -s KILL 30 "$dmclient" --state-dir "$enr" process "$case371/01-server.xml" >/dev/null 2>"$tmp/err" &&
    DMCLIENT_MINUTE_SECONDS=1 timeout -s KILL 60 "$dmclient" --state-dir "$enr" run --once \
        >/dev/null 2>"$tmp/err"; then
    if [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
        grep -q "^dmclient: enrollment Keep1: http://127.0.0.1:9/scep?operation=GetCACert: " "$tmp/err"; then
        ok "run --once, SCEP server unreachable: one line ($(cut -c1-70 "$tmp/err")...)"
    else
        fail "run --once, SCEP server unreachable: $(cat "$tmp/err")"
    fi
else
    fail "enrollment against an unreachable server: exit $?: $(cat "$tmp/err")"
fi

finish test-cli-run
