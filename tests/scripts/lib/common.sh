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
