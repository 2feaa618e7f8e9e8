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
#   now_ms              milliseconds on some clock (date +%s%N where it works)
#   now; since T        the time in seconds (with fractions); the seconds since T (0.01 s)
#   gone PID SECONDS    0 when PID has exited within SECONDS

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
