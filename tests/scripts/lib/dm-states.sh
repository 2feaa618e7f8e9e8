# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/scripts/lib/dm-states.sh - dmclient on the state directories of a script's cases, and
# checks of what it answers (POSIX sh; sourced, not run, after lib/common.sh).  The script sets
# $DM (the dmclient program) and $W (its scratch directory: the stderr of the Gets is appended
# to $W/get.err, where a search for sanitizer reports finds it):
#   dm STATE ARGS...            dmclient --state-dir STATE ARGS, killed after 60 s
#   get STATE URI               the node's value on stdout ("" and exit 1 when the Get fails)
#   expect_get STATE URI WANT   ok when the Get answers exactly WANT, else FAIL
#   expect_missing STATE URI    ok when the Get fails with "node not found", else FAIL
#   thumbs STATE STORE          the thumbprints in STORE (dmclient store list), sorted,
#                               space-separated
#   names_in DIR                the names of the files in DIR (a store's keys, records ...),
#                               space-separated
#   count FILE PATTERN          how many lines of FILE match PATTERN (0 when FILE is missing)

# shellcheck disable=SC2154  # DM and W are the sourcing script's
dm() {
    _st=$1
    shift
    timeout -s KILL 60 "$DM" --state-dir "$_st" "$@"
}
get() { dm "$1" get "$2" 2>>"$W/get.err"; }
expect_get() {
    _v=$(get "$1" "$2")
    if [ "$_v" = "$3" ]; then ok "$2 = $3"; else fail "$2 = '$_v', expected '$3'"; fi
}
expect_missing() {
    if _v=$(dm "$1" get "$2" 2>"$W/missing.err"); then
        fail "Get $2 answered '$_v', expected not found"
    elif grep -q 'node not found' "$W/missing.err"; then
        ok "Get $2: not found"
    else
        fail "Get $2: $(cat "$W/missing.err")"
    fi
    cat "$W/missing.err" >>"$W/get.err"
}
thumbs() {
    dm "$1" store list "$2" 2>>"$W/get.err" | awk '{print $2}' | sort | tr '\n' ' ' | sed 's/ $//'
}

names_in() {
    for _f in "$1"/*; do [ -e "$_f" ] && echo "${_f##*/}"; done | tr '\n' ' ' | sed 's/ $//'
}
count() {
    _c=$(grep -c -e "$2" "$1" 2>/dev/null)
    echo "${_c:-0}"
}
