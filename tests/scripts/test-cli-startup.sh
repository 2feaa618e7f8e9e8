#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-startup.sh BUILD_DIR
#
# dmclient loads libcurl only for the commands that may use HTTP (run,
# session, notify; docs/building.md), so the others start without it and
# its ~30 dependent libraries:
#   1 libcurl is not in dmclient's NEEDED (readelf -d);
#   2 `get` does not load it (LD_DEBUG=libs names no libcurl), `session`
#     does (so that the check above can fail);
#   3 with an unloadable libcurl.so.4 first on LD_LIBRARY_PATH (an empty
#     file; a shared object without curl's functions): get, process, store,
#     alerts and check work as before, with nothing on stderr;
#   4 ... and session and run stop with exit 1 and the one line
#     "dmclient: HTTP needs libcurl (libcurl.so.4): <reason>";
#   5 with the system's libcurl a session gets as far as the network (a
#     closed port: exit 1, "cannot reach"), the same dmclient binary;
#   6 usage errors are one line "dmclient: ..." naming the problem, exit 2
#     (an unknown option of main's or of process/get, --state-dir after the
#     command, an unknown command), without the program's path;
#   7 commands that only read (get, store, alerts, check) on a state directory that
#     does not exist: exit 1, one line naming it, nothing created; on an
#     existing, empty one they work (a package may create it); process
#     creates the state.
# Needs: readelf (binutils), cc (for the shared object of 3), timeout.
# shellcheck disable=SC2015  # "check && pass ... || fail ...": pass always succeeds
set -u
build=${1:?usage: test-cli-startup.sh BUILD_DIR}
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-startup.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
state=$tmp/state
failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# dmc ARGS...: dmclient on the test's state, stdout to $tmp/out, stderr to
# $tmp/err; sets rc
dmc() {
    timeout -s KILL 60 "$dmclient" --state-dir "$state" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
# a TCP port on 127.0.0.1 that nothing listens on (connect: refused)
closed_url=http://127.0.0.1:9/omadm

# 1 NEEDED
if ! readelf -d "$dmclient" >"$tmp/dynamic" 2>&1; then
    fail "readelf -d $dmclient: $(head -n 1 "$tmp/dynamic")"
elif ! grep -q '(NEEDED)' "$tmp/dynamic"; then
    fail "readelf -d $dmclient lists no NEEDED at all"
elif grep '(NEEDED)' "$tmp/dynamic" | grep -q libcurl; then
    fail "dmclient links libcurl: $(grep '(NEEDED)' "$tmp/dynamic" | grep libcurl)"
else
    pass "no libcurl in dmclient's NEEDED ($(grep -c '(NEEDED)' "$tmp/dynamic") libraries)"
fi

# 2 what the dynamic loader loads
dmc process /dev/null # creates the state (an empty message: nothing to do)
if [ "$rc" -ne 0 ]; then
    fail "process /dev/null: exit $rc: $(head -n 3 "$tmp/err")"
fi
LD_DEBUG=libs timeout -s KILL 60 "$dmclient" --state-dir "$state" get ./DevInfo/DevId \
    >/dev/null 2>"$tmp/ld-get"
if ! grep -q 'libcrypto' "$tmp/ld-get"; then
    fail "LD_DEBUG=libs of get says nothing about libcrypto: is LD_DEBUG honoured?"
elif grep -q 'libcurl' "$tmp/ld-get"; then
    fail "get loads libcurl: $(grep -m 1 libcurl "$tmp/ld-get")"
else
    pass "get does not load libcurl (LD_DEBUG=libs)"
fi
LD_DEBUG=libs timeout -s KILL 60 "$dmclient" --state-dir "$state" session --server "$closed_url" \
    >/dev/null 2>"$tmp/ld-session"
if grep -q 'calling init: .*libcurl\.so\.4' "$tmp/ld-session"; then
    pass "session loads libcurl"
else
    fail "session does not load libcurl (LD_DEBUG=libs)"
fi

# 3, 4 with a libcurl.so.4 that cannot be used
mkdir -p "$tmp/empty" "$tmp/notcurl"
: >"$tmp/empty/libcurl.so.4"
echo 'int not_libcurl = 1;' >"$tmp/notcurl.c"
if ! "$cc" -shared -fPIC -o "$tmp/notcurl/libcurl.so.4" "$tmp/notcurl.c" 2>"$tmp/cc.err"; then
    fail "cannot build a shared object with $cc: $(head -n 1 "$tmp/cc.err")"
fi
cat >"$tmp/msg.xml" <<'XML'
<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>
<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>omadm-device</LocURI></Target>
<Source><LocURI>https://dm.example.com/</LocURI></Source></SyncHdr><SyncBody>
<Get><CmdID>2</CmdID><Item><Target><LocURI>./DevInfo/Man</LocURI></Target></Item></Get>
<Final/></SyncBody></SyncML>
XML
# works CMD WANT: exit 0, nothing on stderr, and WANT (a grep pattern) on
# stdout, or stdout empty when WANT is ""
works() {
    # shellcheck disable=SC2086 # the command and its arguments
    dmc $1
    if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
        fail "$lib libcurl.so.4: $1: exit $rc, stderr '$(head -n 3 "$tmp/err")'"
    elif { [ -n "$2" ] && ! grep -q "$2" "$tmp/out"; } || { [ -z "$2" ] && [ -s "$tmp/out" ]; }; then
        fail "$lib libcurl.so.4: $1: stdout '$(head -c 200 "$tmp/out")', want '$2'"
    else
        pass "$lib libcurl.so.4: $1 works"
    fi
}
for lib in empty notcurl; do
    [ -f "$tmp/$lib/libcurl.so.4" ] || continue
    state=$tmp/state-$lib
    LD_LIBRARY_PATH=$tmp/$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
    works "process $tmp/msg.xml" '<Data>omadm</Data>'
    works "get ./DevInfo/DevId" '^omadm-device$'
    works "store list" ""
    works "alerts" ""
    works "check" "^state $state is consistent\$"
    for cmd in "session --server $closed_url" "run --until-idle"; do
        # shellcheck disable=SC2086 # the command and its arguments
        dmc $cmd
        lines=$(wc -l <"$tmp/err")
        if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] &&
            grep -q '^dmclient: HTTP needs libcurl (libcurl\.so\.4): .*libcurl\.so\.4' "$tmp/err"; then
            pass "$lib libcurl.so.4: ${cmd%% *}: exit 1, '$(cat "$tmp/err")'"
        else
            fail "$lib libcurl.so.4: $cmd: exit $rc, $lines line(s) '$(head -n 3 "$tmp/err")'"
        fi
    done
    unset LD_LIBRARY_PATH
done
grep -q 'undefined symbol: curl_' "$tmp/err" ||
    fail "a libcurl.so.4 without curl's functions: the reason names none: '$(cat "$tmp/err")'"

# 5 the real libcurl: a session reaches the network
state=$tmp/state
dmc session --server "$closed_url"
if [ "$rc" -eq 1 ] && grep -q "^dmclient: session: cannot reach $closed_url" "$tmp/err"; then
    pass "session with the system's libcurl: exit 1, '$(head -n 1 "$tmp/err")'"
else
    fail "session with the system's libcurl: exit $rc, '$(head -n 3 "$tmp/err")'"
fi

# 6 usage errors: one line, exit 2
# usage WANT_LINE ARGS...: dmclient ARGS (no --state-dir added) exits 2 with exactly WANT_LINE
usage() {
    want_line=$1
    shift
    timeout -s KILL 60 "$dmclient" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 2 ] && [ "$(cat "$tmp/err")" = "$want_line" ] && [ ! -s "$tmp/out" ]; then
        pass "$*: exit 2, '$want_line'"
    else
        fail "$*: exit $rc, stderr '$(head -n 3 "$tmp/err")', expected exit 2, '$want_line'"
    fi
}
usage "dmclient: unknown option '--bogus' (see dmclient --help)" --bogus
usage "dmclient: unknown option '-x' (see dmclient --help)" -x get ./DevInfo/DevId
usage "dmclient: option '--state-dir' needs a value" --state-dir
usage "dmclient: unknown command 'frob' (see dmclient --help)" --state-dir "$state" frob
usage "dmclient: get: --state-dir goes before the command (dmclient --state-dir DIR get ...)" \
    get ./DevInfo/DevId --state-dir "$state"
usage "dmclient: notify: --state-dir goes before the command (dmclient --state-dir DIR notify ...)" \
    notify /dev/null --state-dir="$state"
usage "dmclient: get: unknown option '--json'" --state-dir "$state" get ./DevInfo/DevId --json
usage "dmclient: get: unexpected argument './DevInfo/Man' (one URI)" --state-dir "$state" \
    get ./DevInfo/DevId ./DevInfo/Man
usage "dmclient: process: unknown option '--bogus'" --state-dir "$state" process --bogus
usage "dmclient: process: unknown option '--bogus'" --state-dir "$state" process --bogus "$tmp/msg.xml"
usage "dmclient: process: unexpected argument 'b' (one FILE at most)" --state-dir "$state" process a b

# 7 read-only commands do not create a state directory
mkdir "$tmp/empty-dir"
for dir in "$tmp/typo" "$tmp/typo/deep/a"; do
    for cmd in "get ./DevInfo/DevId" "store list" "store paths" "store check" "alerts" "check"; do
        # shellcheck disable=SC2086 # the command and its arguments
        timeout -s KILL 60 "$dmclient" --state-dir "$dir" $cmd >"$tmp/out" 2>"$tmp/err"
        rc=$?
        want="dmclient: no state in $dir (a device starts with 'dmclient process' or 'dmclient session'; is --state-dir right?)"
        if [ "$rc" -eq 1 ] && [ "$(cat "$tmp/err")" = "$want" ] && [ ! -s "$tmp/out" ]; then
            pass "$cmd on ${dir#"$tmp"/}: exit 1, no state"
        else
            fail "$cmd on ${dir#"$tmp"/}: exit $rc, '$(head -n 3 "$tmp/err")'"
        fi
    done
done
[ ! -e "$tmp/typo" ] &&
    pass "nothing created by the read-only commands" ||
    fail "the read-only commands created: $(find "$tmp/typo" 2>&1 | head -n 5)"
: >"$tmp/a-file"
timeout -s KILL 60 "$dmclient" --state-dir "$tmp/a-file" store list >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && [ "$(cat "$tmp/err")" = "dmclient: state directory $tmp/a-file: Not a directory" ] &&
    pass "a file as --state-dir: exit 1, named" ||
    fail "a file as --state-dir: exit $rc, '$(cat "$tmp/err")'"
timeout -s KILL 60 "$dmclient" --state-dir "$tmp/empty-dir" get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err" &&
    [ "$(cat "$tmp/out")" = omadm-device ] &&
    pass "an existing, empty state directory is read" ||
    fail "get on an existing, empty state directory: '$(cat "$tmp/err")'"
timeout -s KILL 60 "$dmclient" --state-dir "$tmp/typo" process /dev/null >"$tmp/out" 2>"$tmp/err" &&
    timeout -s KILL 60 "$dmclient" --state-dir "$tmp/typo" get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err" &&
    [ "$(cat "$tmp/out")" = omadm-device ] && pass "process creates the state, get reads it" ||
    fail "process then get on a new state: '$(cat "$tmp/err")'"

if [ "$failures" -ne 0 ]; then
    echo "test-cli-startup: $failures failure(s)"
    exit 1
fi
echo "test-cli-startup: all passed"
