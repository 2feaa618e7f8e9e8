#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-man.sh BUILD_DIR
#
# The manual pages describe what the dmclient of BUILD_DIR does, and keep doing
# so as it grows (man/dmclient.1, man/dmclient.conf.5; `scons install` installs
# them):
#   1. both pages as built (BUILD_DIR/man/: the version filled in) render with
#      `man --warnings=all -l`, in the C and the C.UTF-8 locale, and with
#      `groff -man -ww -z`, without a single warning; nothing of the template
#      (@VERSION@) is left;
#   2. dmclient.1: every command that `dmclient --help` lists has its own
#      subsection (.SS COMMAND); every option that `dmclient --help` or
#      `dmclient COMMAND --help` names (--long, -x, -xx) is the tag of an entry
#      (.TP) and is mentioned in the subsection of each command whose help names
#      it (the global ones in OPTIONS); each subcommand `dmclient store --help`
#      lists is a tag in the store subsection; every --option a tag names is one
#      that some --help names (no stale entries);
#   3. dmclient.conf.5: every key the binary accepts in dmclient.conf is the tag
#      of an entry, and every key-like tag is a key the binary accepts.  The
#      keys are found by asking the binary: each lower-case identifier among the
#      string literals of dmclient/*.c is written into a dmclient.conf and given
#      to `dmclient get`; one it does not call an "unknown key" is a key.
# So an option, command or key added without its entry in the pages fails this
# test.  Self-tests first: the warning check must flag a page with an undefined
# macro, the key probe must call a made-up key unknown and dev_id known.
#
# Needs: man (man-db) and groff (./setup.sh installs them), sed, grep, awk, sort.
# Exits 0 when all passed.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-man.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
root=$(cd "$here/../.." && pwd)
dmclient=$build/bin/dmclient
page1=$build/man/dmclient.1
page5=$build/man/dmclient.conf.5
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for p in "$page1" "$page5"; do
    [ -f "$p" ] || { echo "FAIL: $p missing (build first)"; exit 1; }
done
for tool in man groff sed grep awk sort; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found (./setup.sh)"; exit 1; }
done

scratch_dir man

# ---- 1. rendering ----------------------------------------------------------------

# warnings PAGE: what man and groff say about PAGE on stderr (nothing when clean)
warnings() {
    for loc in C C.UTF-8; do
        # shellcheck disable=SC2069  # stderr to the caller, the page itself away
        LC_ALL=$loc MANWIDTH=80 man --warnings=all -l "$1" 2>&1 >/dev/null
    done
    groff -man -ww -z "$1" 2>&1
}

printf '.TH BAD 1\n.SH NAME\nbad \\- a page with an undefined macro\n.nosuchmacro\n' >"$tmp/bad.1"
[ -n "$(warnings "$tmp/bad.1")" ] && ok "self-test: a page with an undefined macro is flagged" ||
    fail "self-test: no warning for a page with an undefined macro: the rendering check sees nothing"
for p in "$page1" "$page5"; do
    name=${p##*/}
    w=$(warnings "$p")
    [ -z "$w" ] && ok "$name renders without warnings (man -l, C and C.UTF-8; groff -ww)" ||
        fail "$name: warnings when rendered: $w"
    grep -q '@[A-Z_]*@' "$p" && fail "$name: template placeholders left: $(grep -o '@[A-Z_]*@' "$p" | sort -u | tr '\n' ' ')" ||
        ok "$name: no template placeholder left"
done

# ---- the pages as text ------------------------------------------------------------

# plain FILE: the roff source with the escapes the pages use turned into the
# characters they stand for (\- -, \% and \& nothing, font changes nothing)
plain() {
    sed -e 's/\\%//g; s/\\&//g; s/\\-/-/g; s/\\f[BIRP]//g; s/\\(dq/"/g; s/\\(aq/'"'"'/g' "$1"
}
plain "$page1" >"$tmp/p1"
plain "$page5" >"$tmp/p5"

# tags FILE: the tag line of every entry (the line after .TP), its macro and
# quotes dropped
tags() {
    awk 'prev == ".TP" { print } { prev = $0 }' "$1" | sed -e 's/^\.[A-Z]* //' -e 's/"//g'
}
tags "$tmp/p1" >"$tmp/tags1"
tags "$tmp/p5" >"$tmp/tags5"

# section FILE NAME: the lines of subsection NAME (.SS NAME ...) or section NAME
# (.SH NAME), up to the next .SS or .SH
section() {
    awk -v want="$2" '
        /^\.S[SH] / { s = $0; sub(/^\.S[SH] "?/, "", s); split(s, w, /[ "]/); inside = (w[1] == want); next }
        inside { print }' "$1"
}

# has_token FILE TOKEN: TOKEN stands in FILE as a whole word (an option is not
# part of a longer one)
has_token() {
    grep -qE -- "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|\$)" "$1"
}

# ---- 2. dmclient.1: commands and options --------------------------------------------

# options: the options a --help text on stdin names, one a line
options() {
    grep -oE -- '(^|[^A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[^-]*//' |
        grep -xE -- '--[a-z][a-z0-9-]*[a-z0-9]|-[A-Za-z]|-([A-Za-z])\1' | sort -u
}

if ! "$dmclient" --help >"$tmp/help.main" 2>"$tmp/err"; then
    fail "dmclient --help failed: $(cat "$tmp/err")"
fi
# the commands: the lines of the "commands:" block, first word
commands=$(awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
    "$tmp/help.main")
commands=$(echo "$commands" | tr '\n' ' ')
[ "$(echo "$commands" | wc -w)" -ge 7 ] && ok "dmclient --help lists the commands $commands" ||
    fail "dmclient --help: commands not found in: $(cat "$tmp/help.main")"

# the global options: those of the "options:" block of dmclient --help
awk '/^options:/ { on = 1; next } on && /^$/ { on = 0 } on' "$tmp/help.main" | options >"$tmp/global"
[ -s "$tmp/global" ] && ok "global options: $(tr '\n' ' ' <"$tmp/global")" ||
    fail "dmclient --help: no options block found"

# check_options WHAT SECTION HELPFILE: every option of HELPFILE is a tag of
# dmclient.1, and mentioned in SECTION unless it is a global option (the usage
# lines of every command name --state-dir) or SECTION is empty
check_options() {
    section "$tmp/p1" "$2" >"$tmp/sect"
    n=0 missing=
    for o in $(options <"$3"); do
        n=$((n + 1))
        echo "$o" >>"$tmp/all-options"
        if ! has_token "$tmp/tags1" "$o"; then
            missing="$missing $o (no entry)"
        elif [ -n "$2" ] && ! grep -qx -- "$o" "$tmp/global" && ! has_token "$tmp/sect" "$o"; then
            missing="$missing $o (not in $2)"
        fi
    done
    [ -z "$missing" ] && ok "$1: its $n options are in dmclient.1" ||
        fail "$1: options missing from dmclient.1:$missing"
}

: >"$tmp/all-options"
# the main help also names options of commands in their descriptions: entries only
check_options "dmclient --help" "" "$tmp/help.main"
missing=
while read -r o; do
    section "$tmp/p1" OPTIONS | has_token /dev/stdin "$o" || missing="$missing $o"
done <"$tmp/global"
[ -z "$missing" ] && ok "dmclient.1: the global options are in OPTIONS" ||
    fail "dmclient.1: global options not in OPTIONS:$missing"
for c in $commands; do
    if ! "$dmclient" "$c" --help >"$tmp/help.$c" 2>"$tmp/err"; then
        fail "dmclient $c --help failed: $(cat "$tmp/err")"
        continue
    fi
    grep -q "^\.SS \"\{0,1\}$c\( \|\"\|\$\)" "$tmp/p1" && ok "dmclient.1 has a subsection for $c" ||
        fail "dmclient.1 has no subsection (.SS $c ...) for the command $c"
    check_options "dmclient $c --help" "$c" "$tmp/help.$c"
done

# the store's subcommands: tags of the store subsection
if [ -f "$tmp/help.store" ]; then
    subs=$(awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
        "$tmp/help.store" | tr '\n' ' ')
    section "$tmp/p1" store | awk 'prev == ".TP" { print } { prev = $0 }' |
        sed -e 's/^\.[A-Z]* //' -e 's/"//g' >"$tmp/store-tags"
    missing=
    for s in $subs; do
        awk '{ print $1 }' "$tmp/store-tags" | grep -qx -- "$s" || missing="$missing $s"
    done
    [ -n "$subs" ] && [ -z "$missing" ] && ok "dmclient.1: the store subcommands ${subs}have entries" ||
        fail "dmclient.1: store subcommands without an entry:${missing:- (none found in store --help)}"
fi

# no stale entry: every --option of a tag is one some --help names
stale=
grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' "$tmp/tags1" | sort -u >"$tmp/tag-options"
while read -r o; do
    grep -qx -- "$o" "$tmp/all-options" || stale="$stale $o"
done <"$tmp/tag-options"
[ -z "$stale" ] && ok "dmclient.1: every option it has an entry for is one dmclient's help names" ||
    fail "dmclient.1: entries for options no --help names:$stale"

# ---- 3. dmclient.conf.5: the keys ---------------------------------------------------

probe=$tmp/probe
mkdir -p "$probe"
# known KEY: 0 when dmclient accepts KEY in dmclient.conf (any verdict but
# "unknown key" on its value)
known() {
    printf '%s = 1\n' "$1" >"$probe/dmclient.conf"
    timeout -s KILL 30 "$dmclient" --state-dir "$probe" get ./DevInfo/DevId >/dev/null 2>"$tmp/probe.err"
    ! grep -q "unknown key '$1'" "$tmp/probe.err"
}
known no_such_key_made_up && fail "self-test: the probe takes no_such_key_made_up for a key ($(cat "$tmp/probe.err"))" ||
    ok "self-test: the probe calls a made-up key unknown"
known dev_id && ok "self-test: the probe knows dev_id" ||
    fail "self-test: the probe calls dev_id unknown: $(cat "$tmp/probe.err")"

keys=
for cand in $(cat "$root"/dmclient/*.c | grep -oE '"[a-z][a-z0-9_]*"' | tr -d '"' | sort -u); do
    known "$cand" && keys="$keys $cand"
done
nkeys=$(echo "$keys" | wc -w)
[ "$nkeys" -ge 30 ] && ok "dmclient accepts $nkeys keys in dmclient.conf" ||
    fail "only $nkeys keys found ($keys): is the probe broken?"

awk '{ print $1 }' "$tmp/tags5" | grep -xE '[a-z][a-z0-9_]*' | sort -u >"$tmp/page-keys"
missing=
for k in $keys; do
    grep -qx -- "$k" "$tmp/page-keys" || missing="$missing $k"
done
[ -z "$missing" ] && ok "dmclient.conf.5 has an entry for each of the $nkeys keys" ||
    fail "keys dmclient accepts without an entry in dmclient.conf.5:$missing"
stale=
while read -r k; do
    case " $keys " in
    *" $k "*) ;;
    *) stale="$stale $k" ;;
    esac
done <"$tmp/page-keys"
[ -z "$stale" ] && ok "dmclient.conf.5: every key it has an entry for is accepted" ||
    fail "dmclient.conf.5: entries for keys dmclient does not accept:$stale"

finish test-man
