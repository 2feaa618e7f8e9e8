# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/scripts/lib/common.sh - helpers the test scripts share (POSIX sh; sourced,
# not run: tests/run-all runs only tests/scripts/test-*.sh).  A script finds it
# beside itself:
#   here=$(cd "$(dirname "$0")" && pwd)
#   # shellcheck source=SCRIPTDIR/lib/common.sh
#   . "$here/lib/common.sh"
#
#   fail TEXT...        print "FAIL: TEXT", count it in $failures
#   ok TEXT...          print "ok: TEXT"
#   finish NAME         "NAME: N failure(s)" and exit 1, or "NAME: all passed" and exit 0
#   scratch_dir NAME    a new directory ${TMPDIR:-/tmp}/NAME.XXXXXX in $tmp; at exit the
#                       process whose pid is in $bg (when set) is killed and $tmp removed;
#                       HUP, INT and TERM exit 1
#   scratch_done DIR STATUS
#                       remove the scratch directory DIR when STATUS is 0 and SCEP_BED_KEEP is
#                       not set, else say "scratch directory kept: DIR"
#   reap PATTERN        0 when no process whose command line holds PATTERN is left (they have
#                       2 s to end); else "FAIL: processes survived the test:", their list,
#                       they are killed, 1
#   now_ms              milliseconds on some clock (date +%s%N where it works)
#   now; since T        the time in seconds (with fractions); the seconds since T (0.01 s)
#   gone PID SECONDS    0 when PID has exited within SECONDS
#   notification FILE SESSION_ID SERVER_ID SECRET [NONCE_B64]
#                       a signed server notification (package 0) in FILE

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() {
    echo "ok: $*"
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$1: $failures failure(s)"
        exit 1
    fi
    echo "$1: all passed"
    exit 0
}

scratch_dir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    bg=
    trap scratch_cleanup EXIT
    trap 'exit 1' HUP INT TERM
}
# shellcheck disable=SC2317  # called by the trap
scratch_cleanup() {
    [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
    rm -rf "$tmp"
}

scratch_done() {
    if [ "$2" -eq 0 ] && [ -z "${SCEP_BED_KEEP:-}" ]; then
        rm -rf "$1"
    else
        echo "scratch directory kept: $1"
    fi
}

reap() {
    _i=0
    while pgrep -f "$1" >/dev/null 2>&1 && [ $_i -lt 20 ]; do sleep 0.1; _i=$((_i + 1)); done
    pgrep -f "$1" >/dev/null 2>&1 || return 0
    echo "FAIL: processes survived the test:"
    pgrep -a -f "$1"
    for _p in $(pgrep -f "$1"); do kill -KILL "$_p" 2>/dev/null; done
    return 1
}

now_ms() {
    _n=$(date +%s%N 2>/dev/null)
    case $_n in
    *N | "") echo $(($(date +%s) * 1000)) ;;
    *) echo $((_n / 1000000)) ;;
    esac
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

gone() {
    _i=0
    while [ "$_i" -lt $(($2 * 20)) ]; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
        _i=$((_i + 1))
    done
    return 1
}

# notification FILE SESSION_ID SERVER_ID SECRET [NONCE_B64]: a package 0 message
# (docs/session.md) signed here, independently of dmclient, with the nonce given
# (default empty): digest H(B64(H(id:secret)):nonce:B64(H(trigger))); version 12,
# UI mode 1 (background), initiator 1 (server), 8 bytes vendor-specific.  Needs python3.
notification() {
    python3 - "$@" <<'EOF'
import base64, hashlib, sys
out, sid, srv, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
nonce = base64.b64decode(sys.argv[5]) if len(sys.argv) > 5 else b""
def h(b):
    return hashlib.md5(b).digest()
hdr = (12 << 54 | 1 << 52 | 1 << 51 | sid << 8 | len(srv)).to_bytes(8, "big")
trigger = hdr + srv + b"\x00vendor\xff"
digest = h(base64.b64encode(h(srv + b":" + secret)) + b":" + nonce + b":" +
           base64.b64encode(h(trigger)))
with open(out, "wb") as f:
    f.write(digest + trigger)
EOF
}

# scep_host_part SCRIPT BUILD NAME INNER WORKVAR SKIPPED TOOL...: the host side of a test that
# runs inside the SCEP test bed's namespaces (tests/scep/bed.sh sourced too): check TOOL...
# and BUILD's dmclient, build the bed's programs, make the scratch directory BUILD/NAME.XXXXXX,
# run SCRIPT again isolated (bed_rerun_isolated; SKIPPED says what is left out without
# namespaces) with INNER=1 and WORKVAR naming the scratch directory, check that no process
# started with a path in it survived, say how long it took and remove the scratch directory
# unless the test failed.  Exits with the test's status.
scep_host_part() {
    _hp_script=$1 _hp_build=$2 _hp_name=$3 _hp_inner=$4 _hp_workvar=$5 _hp_skipped=$6
    shift 6
    for _hp_c in "$@"; do
        command -v "$_hp_c" >/dev/null 2>&1 || { echo "FAIL: $_hp_c not found (run ./setup.sh)"; exit 1; }
    done
    [ -x "$_hp_build/bin/dmclient" ] || { echo "FAIL: $_hp_build/bin/dmclient missing (build first)"; exit 1; }
    _hp_t0=$(now)
    _hp_build=$(cd "$_hp_build" && pwd) || exit 1
    bed_build "$_hp_build/scep" || { echo "FAIL: building the SCEP test bed programs"; exit 1; }
    _hp_work=$(mktemp -d "$_hp_build/$_hp_name.XXXXXX") || exit 1
    export "$_hp_inner=1" SCEP_BED_BIN "$_hp_workvar=$_hp_work"
    bed_rerun_isolated "$_hp_script" "$_hp_build" "$_hp_skipped"
    if reap "$_hp_work/"; then
        echo "ok: no server or dmclient process left"
    else
        rc=1
    fi
    echo "total $(since "$_hp_t0") s"
    scratch_done "$_hp_work" "$rc"
    exit "$rc"
}
