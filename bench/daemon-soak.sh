#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/daemon-soak.sh BUILD_DIR [SESSIONS] - dmclient daemon's memory and open files over many
# sessions (docs/performance.md, "Daemon soak").
#
# One `dmclient daemon` (poll_interval 0.1, so a session about every 0.1-0.11 s plus its own
# length) against the scripted DM server's `sessions` script (tests/dmserver: package 1 checked,
# answered with Statuses only) over HTTPS on 127.0.0.1, until SESSIONS (default 1000) sessions
# are done.  After the first session and every 50 sessions: the daemon's VmRSS
# (/proc/PID/status) and its open file descriptors (/proc/PID/fd).  Prints the table, the
# first/last/max figures and two verdicts:
#   RSS flat: MET when the last sample is at most 1 MiB above the one after 50 sessions
#   fds flat: MET when the last count equals the one after 50 sessions
# Then the daemon is stopped (SIGTERM: exit 0 expected) and the server's script must have passed.
# State, certificates and logs in a scratch directory (${TMPDIR:-/tmp}/daemon-soak.XXXXXX),
# removed at the end unless SOAK_KEEP=1.  A measurement, not a test: exit status 0 whatever the
# figures are, 1 when something could not be measured.  Needs python3 and openssl.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "daemon-soak.sh: $*" >&2; exit 1; }
build=$(cd "${1:?usage: bench/daemon-soak.sh BUILD_DIR [SESSIONS]}" 2>/dev/null && pwd) ||
    die "no build directory $1"
sessions=${2:-1000}
case $sessions in '' | *[!0-9]*) die "SESSIONS must be a number" ;; esac
[ "$sessions" -ge 100 ] || die "SESSIONS must be at least 100"
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || die "$dmclient missing (build first)"
for c in python3 openssl; do command -v "$c" >/dev/null 2>&1 || die "$c not found"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/daemon-soak.XXXXXX") || die "mktemp"
srv=
dmn=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    [ -n "$dmn" ] && kill -KILL "$dmn" 2>/dev/null
    [ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null
    if [ -n "${SOAK_KEEP:-}" ]; then echo "scratch directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

sh "$root/tests/dmserver/make-certs.sh" "$work/tls" >"$work/make-certs.log" 2>&1 ||
    die "make-certs.sh failed: $(cat "$work/make-certs.log")"
python3 "$root/tests/dmserver/dmserver.py" --script sessions --param "sessions=$sessions" \
    --param linger=600 --port-file "$work/port" --cert "$work/tls/server.pem" \
    --key "$work/tls/server.key" --timeout 60 --max-time 36000 --log "$work/dmserver.log" \
    >"$work/dmserver.out" 2>&1 </dev/null &
srv=$!
i=0
while [ ! -s "$work/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$work/port" ] || die "the DM server did not start: $(cat "$work/dmserver.out")"

mkdir -p "$work/state"
cat >"$work/state/dmclient.conf" <<EOF
server_url = https://127.0.0.1:$(cat "$work/port")/omadm
cacert = $work/tls/ca.pem
poll_interval = 0.1
EOF
"$dmclient" --state-dir "$work/state" daemon >"$work/daemon.out" 2>"$work/daemon.err" </dev/null &
dmn=$!
t0=$(date +%s.%N)

# sample N: one table row after N sessions
sample() {
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$dmn/status" 2>/dev/null)
    # shellcheck disable=SC2012  # the names are numbers
    fds=$(ls "/proc/$dmn/fd" 2>/dev/null | wc -l)
    [ -n "$rss" ] || die "the daemon is gone after $1 sessions: $(tail -n 3 "$work/daemon.err")"
    el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '%8d %10d %6d %9s\n' "$1" "$rss" "$fds" "$el"
    echo "$1 $rss $fds" >>"$work/samples"
}

echo "dmclient daemon, poll_interval 0.1, against the sessions script over HTTPS on 127.0.0.1"
echo "$(basename "$build") build; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %6s %9s\n' sessions "VmRSS KiB" fds "elapsed s"
next=1
last_n=0
stall=0
while [ "$next" -le "$sessions" ]; do
    n=$(grep -cE 'session [0-9]+: done' "$work/daemon.err")
    if [ "$n" -ge "$next" ]; then
        sample "$n"
        next=$(((n / 50 + 1) * 50))
        [ "$next" -gt "$sessions" ] && [ "$n" -lt "$sessions" ] && next=$sessions
    fi
    if [ "$n" -eq "$last_n" ]; then
        stall=$((stall + 1))
        [ "$stall" -lt 1500 ] || die "no session for 30 s after $n: $(tail -n 3 "$work/daemon.err")"
    else
        stall=0
        last_n=$n
    fi
    sleep 0.02
done
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
kill -TERM "$dmn"
i=0
while st=$(ps -o stat= -p "$dmn") && [ "${st#Z}" = "$st" ] && [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
done
wait "$dmn"
drc=$?
dmn=
kill -USR1 "$srv"
wait "$srv"
src=$?
srv=
failed=$(grep -cE 'error: session|session failed' "$work/daemon.err")
echo
echo "$(wc -l <"$work/samples" | tr -d ' ') samples; $last_n sessions in $took s; failed sessions: $failed;" \
    "daemon exit $drc after SIGTERM; server: $(grep -E '^(PASS|FAIL): ' "$work/dmserver.out" | tail -n 1)"
awk 'NR == 2 { r50 = $2; f50 = $3; n50 = $1 }
     NR == 1 { r1 = $2; f1 = $3 }
     { if ($2 > rmax) { rmax = $2; nmax = $1 } if ($3 > fmax) fmax = $3; rl = $2; fl = $3; nl = $1 }
     END {
         printf "RSS KiB: first %d (1 session), after %d sessions %d, last %d (%d sessions), max %d (%d sessions)\n",
             r1, n50, r50, rl, nl, rmax, nmax
         printf "fds: first %d, after %d sessions %d, last %d, max %d\n", f1, n50, f50, fl, fmax
         d = rl - r50
         printf "RSS flat: %s (last %d KiB vs %d KiB after the first %d sessions: %+d KiB; tolerance +1024 KiB)\n",
             d <= 1024 ? "MET" : "NOT MET", rl, r50, n50, d
         printf "fds flat: %s (last %d vs %d after the first %d sessions; must be equal)\n",
             fl == f50 ? "MET" : "NOT MET", fl, f50, n50
     }' "$work/samples"
[ "$drc" -eq 0 ] && [ "$src" -eq 0 ] || exit 1
exit 0
