# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/scripts/lib/dm-check.sh - one dmclient command on one state directory, its exit
# status and stderr checked (POSIX sh; sourced, not run, after lib/common.sh).  The script
# sets $dmclient (the program), $state (the state directory) and $tmp (lib/common.sh's
# scratch_dir):
#   dm WANT_RC ARGS...   dmclient --state-dir $state ARGS (killed after 30 s), stdout in
#                        $tmp/out, stderr in $tmp/err, the exit status in $rc; it must be
#                        WANT_RC, and stderr must be empty when WANT_RC is 0.  Otherwise a
#                        FAIL line (and stderr), return 1.

# shellcheck disable=SC2154  # dmclient and state are the sourcing script's, tmp is lib/common.sh's
dm() {
    want=$1
    shift
    timeout -s KILL 30 "$dmclient" --state-dir "$state" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "dmclient $*: exit $rc, expected $want"
        cat "$tmp/err"
        return 1
    fi
    if [ "$want" -eq 0 ] && [ -s "$tmp/err" ]; then
        fail "dmclient $*: wrote on stderr:"
        cat "$tmp/err"
        return 1
    fi
    return 0
}
