#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-state-upgrade.sh BUILD_DIR
#
# State directories written by other versions (tests/data/state, docs/state.md):
#   1. tree1 (dmclient 0.1.0) and session1 (before 0.1.0) upgrade: get, store
#      list and check read them as they are and convert nothing (tree and
#      session unchanged); check notes the older formats (session1's store
#      modes of that version are problems that check --repair puts right); the
#      next message goes on in the stored session (our MsgID 3, which a session
#      that was not read would make 2) and leaves tree and session in the
#      current formats; the node, the certificates and the enrollment are all
#      still there; check is consistent, without notes.
#   2. newer (every format one above this version's): get, process, store
#      list, alerts and session are refused with one line naming DIR/tree and both
#      formats, exit 1, and the directory is the same byte for byte (names,
#      contents, modes); check names every file of a newer format (tree,
#      session, auth, the certificate record, the journal; the enrollment
#      records wait for the journal: part 3 has one alone), with and
#      without --repair, exit 1, and changes nothing.
#   3. one newer file in an upgraded state at a time: the session (every
#      command refused by name); auth (get works, a session and a
#      notification are refused naming DIR/auth, auth unchanged); a
#      certificate record (its commands answer 500, the others work, it is
#      neither replaced nor deleted, check names it and nothing else); an
#      enrollment record (500, run --once says it leaves it, check names it);
#      the store journal (a later version's committed batch: every command
#      that opens the store is refused with one line naming it, nothing
#      changed; check names it).
#
# Needs: POSIX sh, timeout (coreutils), find, sha256sum, sed, grep.
# Exits 0 when all passed.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-state-upgrade.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/dm-check.sh
. "$here/lib/dm-check.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
data=$here/../data/state
pki=$here/../data/pki
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for tool in timeout find sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done

scratch_dir state-upgrade
ROOT=$(cat "$pki/root.sha1")
INTER=$(cat "$pki/inter.sha1")
LEAF=$(cat "$pki/leaf.sha1")
CCI=./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/Old1
# no network: a session or enrollment that tries one fails at once
export DMCLIENT_MINUTE_SECONDS=1

# install NAME DEST: a copy of tests/data/state/NAME with the modes it was
# written with (NAME.modes: git keeps neither modes nor empty directories)
install_state() {
    rm -rf "$2"
    cp -R "$data/$1" "$2" || exit 1
    chmod 755 "$2"
    while read -r mode type path; do
        [ "$type" = d ] && mkdir -p "$2/$path"
        chmod "$mode" "$2/$path"
    done <"$data/$1.modes"
}

# digest DIR: names, types, modes, sizes and contents of everything in DIR
digest() {
    (cd "$1" && find . -printf '%p %y %m %s\n' | LC_ALL=C sort &&
        find . -type f -exec sha256sum {} + | LC_ALL=C sort) | sha256sum
}

# one_line WANT: stderr is exactly that one line
one_line() {
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ "$(cat "$tmp/err")" = "$1" ]
}

# continue_session FILE VERB URI [FORMAT [DATA]]: a message in the session the
# old states left open (SessionID 1, the server's MsgID 2)
continue_session() {
    sess=0
    _f=$1
    shift
    msg_begin "$_f"
    sed -i 's|<MsgID>1</MsgID>|<MsgID>2</MsgID>|' "$_f"
    m_cmd "$@"
    msg_end
}

# ---- 1. older formats upgrade ----
for old in tree1 session1; do
    state=$tmp/$old
    install_state "$old" "$state"
    tree_before=$(sha256sum <"$state/tree")
    session_before=$(sha256sum <"$state/session")
    case $old in
    tree1) greeting="written by dmclient 0.1.0" ;;
    *) greeting="written by a dmclient before 0.1.0" ;;
    esac
    dm 0 get ./Vendor/Acme/Greeting && [ "$(cat "$tmp/out")" = "$greeting" ] &&
        ok "$old: get reads the node of the old tree" || fail "$old: get: $(cat "$tmp/out")"
    dm 0 store list && [ "$(awk '{print $1 " " $2}' "$tmp/out" | LC_ALL=C sort | tr '\n' ' ')" = \
        "ca $INTER my-system $LEAF root $ROOT " ] &&
        ok "$old: the certificates are listed" || fail "$old: store list: $(cat "$tmp/out")"
    if [ "$old" = tree1 ]; then
        dm 0 get "$CCI/Status" && [ "$(cat "$tmp/out")" = 32 ] &&
            ok "$old: the enrollment waits for its CA (Status 32)" ||
            fail "$old: enrollment Status: $(cat "$tmp/out")"
        dm 0 check && grep -q "^note: $state/tree: format omadm-tree 1: read, and written as omadm-tree 2" "$tmp/out" &&
            grep -q "^state $state is consistent\$" "$tmp/out" &&
            ok "$old: check is consistent and notes the tree's format" || fail "$old: check: $(cat "$tmp/out")"
    else
        # that version's store directories were 0700: a problem, which --repair puts right
        dm 1 check && grep -q "^dmclient: check: $state/store/trust: mode 0700, expected 0755\$" "$tmp/err" &&
            grep -q "^note: $state/session: format omadm-session 1: read" "$tmp/out" &&
            ok "$old: check notes the session's format and names the store's modes" ||
            fail "$old: check: $(cat "$tmp/out" "$tmp/err")"
        dm 0 check --repair && grep -q "^repaired: $state/store/trust: mode 0700, set to 0755\$" "$tmp/out" &&
            grep -q "^state $state is consistent\$" "$tmp/out" &&
            ok "$old: check --repair puts the modes right" || fail "$old: check --repair: $(cat "$tmp/out")"
    fi
    [ "$(sha256sum <"$state/tree")" = "$tree_before" ] && [ "$(sha256sum <"$state/session")" = "$session_before" ] &&
        ok "$old: reading converts nothing" || fail "$old: tree or session rewritten by a read"
    continue_session "$tmp/msg.xml" Replace ./Vendor/Acme/Greeting chr "upgraded"
    dm 0 process "$tmp/msg.xml" >/dev/null && mv "$tmp/out" "$tmp/reply.xml"
    [ "$(reply_codes "$tmp/reply.xml")" = "SyncHdr 200,Replace 200," ] &&
        tr -d '\n' <"$tmp/reply.xml" | grep -q '<SessionID>1</SessionID><MsgID>3</MsgID>' &&
        ok "$old: the next message goes on in the stored session (MsgID 3)" ||
        fail "$old: the next message: $(cat "$tmp/reply.xml")"
    [ "$(head -n 1 "$state/tree")" = "omadm-tree 2" ] && [ "$(head -n 1 "$state/session")" = "omadm-session 2" ] &&
        ok "$old: tree and session written in the current formats" ||
        fail "$old: after the message: $(head -n 1 "$state/tree") / $(head -n 1 "$state/session")"
    dm 0 get ./Vendor/Acme/Greeting && [ "$(cat "$tmp/out")" = upgraded ] &&
        dm 0 store show "$ROOT" && grep -q 'Root/System' "$tmp/out" &&
        ok "$old: the new value and the certificates after the upgrade" || fail "$old: after the upgrade"
    dm 0 check && [ "$(cat "$tmp/out")" = "state $state is consistent" ] &&
        ok "$old: check after the upgrade: consistent, nothing to note" || fail "$old: check: $(cat "$tmp/out")"
done
upgraded=$tmp/tree1 # the upgraded 0.1.0 state: the base of part 3

# ---- 2. newer formats: a rollback ----
state=$tmp/newer
install_state newer "$state"
before=$(digest "$state")
tree_line="dmclient: $state/tree: format omadm-tree 3 is newer than this dmclient reads (omadm-tree 2); nothing was changed"
continue_session "$tmp/msg.xml" Get ./Vendor/Acme/Greeting
for cmd in "get ./Vendor/Acme/Greeting" "process $tmp/msg.xml" "store list" "alerts" \
    "session --server http://127.0.0.1:9/dm"; do
    # shellcheck disable=SC2086  # the command's words
    dm 1 $cmd && one_line "$tree_line" && [ ! -s "$tmp/out" ] && [ "$(digest "$state")" = "$before" ] &&
        ok "newer: ${cmd%% *} refused by name, nothing changed" ||
        fail "newer: ${cmd%% *}: $(cat "$tmp/err")"
done
for flags in "" "--repair"; do
    # shellcheck disable=SC2086
    dm 1 check $flags
    missing=
    for line in "$state/tree: format omadm-tree 3 is newer than this dmclient reads (omadm-tree 2)" \
        "$state/session: format omadm-session 3 is newer than this dmclient reads (omadm-session 2)" \
        "$state/auth: format omadm-auth 2 is newer than this dmclient reads (omadm-auth 1)" \
        "$state/store/certs/root/$ROOT): format omadm-cert 2 is newer than this library reads (omadm-cert 1)" \
        "$state/store: the enrollment records cannot be read until the journal is applied" \
        "$state/store/journal: format omadm-journal 2 is newer than this library reads (omadm-journal 1)"; do
        grep -qF "$line" "$tmp/err" || missing="$missing [$line]"
    done
    [ -z "$missing" ] && [ "$(digest "$state")" = "$before" ] &&
        ok "newer: check $flags names every newer file, nothing changed" ||
        fail "newer: check $flags: missing$missing: $(cat "$tmp/err")"
done

# ---- 3. one newer file at a time ----
# variant NAME FILE: the upgraded state with FILE (below the state directory) of newer/
variant() {
    state=$tmp/v-$1
    rm -rf "$state"
    cp -a "$upgraded" "$state"
    cp -p "$tmp/newer/$2" "$state/$2"
    file_before=$(sha256sum <"$state/$2")
}
unchanged() { [ "$(sha256sum <"$state/$1")" = "$file_before" ]; }

variant session session
before=$(digest "$state")
dm 1 get ./Vendor/Acme/Greeting &&
    one_line "dmclient: $state/session: format omadm-session 3 is newer than this dmclient reads (omadm-session 2); nothing was changed" &&
    [ "$(digest "$state")" = "$before" ] && ok "newer session: refused by name, nothing changed" ||
    fail "newer session: $(cat "$tmp/err")"

variant auth auth
dm 0 get ./Vendor/Acme/Greeting && ok "newer auth: get works (sessions read auth)" || fail "newer auth: get"
dm 1 session --server http://127.0.0.1:9/dm &&
    one_line "dmclient: session: $state/auth: format omadm-auth 2 is newer than this dmclient reads (omadm-auth 1); nothing was changed" &&
    unchanged auth && ok "newer auth: a session is refused by name, auth unchanged" ||
    fail "newer auth: session: $(cat "$tmp/err")"
# a notification (package 0: digest, header of version 12, session 1, server ID
# "srv"): its digest is checked against the nonce in auth, which is not read
printf '\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\003\030\000\000\000\000\001\003srv\000' >"$tmp/n.bin"
printf 'x\n' >"$tmp/secret"
dm 1 notify --server http://127.0.0.1:9/dm --server-id srv --server-secret-file "$tmp/secret" "$tmp/n.bin" &&
    one_line "dmclient: notify: $state/auth: format omadm-auth 2 is newer than this dmclient reads (omadm-auth 1); nothing was changed" &&
    unchanged auth && ok "newer auth: a notification is refused by name, auth unchanged" ||
    fail "newer auth: notify: $(cat "$tmp/err")"

variant cert "store/certs/root/$ROOT"
msg_begin "$tmp/msg.xml"
m_cmd Get "./Vendor/MSFT/CertificateStore/Root/System/$ROOT/EncodedCertificate"
m_cmd Delete "./Vendor/MSFT/CertificateStore/Root/System/$ROOT"
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$ROOT/EncodedCertificate" b64 "$(cat "$pki/root.b64")"
m_cmd Get "./Vendor/MSFT/CertificateStore/CA/System/$INTER/IssuedTo"
msg_end
dm 0 process "$tmp/msg.xml" && mv "$tmp/out" "$tmp/reply.xml"
[ "$(reply_codes "$tmp/reply.xml")" = "SyncHdr 200,Get 500,Delete 500,Add 500,Get 200," ] && unchanged "store/certs/root/$ROOT" &&
    ok "newer certificate record: its commands answer 500, it stays as it is" ||
    fail "newer certificate record: $(reply_codes "$tmp/reply.xml")"
dm 1 check && grep -qF "$state/store/certs/root/$ROOT): format omadm-cert 2 is newer" "$tmp/err" &&
    [ "$(grep -c '^dmclient: check: ' "$tmp/err")" -eq 2 ] &&
    ok "newer certificate record: check names it (and nothing else)" || fail "newer certificate record: check: $(cat "$tmp/err")"
dm 1 check --repair && unchanged "store/certs/root/$ROOT" && grep -qF "root/$ROOT" "$tmp/err" &&
    ok "newer certificate record: check --repair leaves it" || fail "newer certificate record: check --repair"

scep=$(cd "$upgraded/store/state" && ls)
variant scep "store/state/$scep"
msg_begin "$tmp/msg.xml"
m_cmd Get "$CCI/Status"
m_cmd Delete "$CCI"
msg_end
dm 0 process "$tmp/msg.xml" && mv "$tmp/out" "$tmp/reply.xml"
[ "$(reply_codes "$tmp/reply.xml")" = "SyncHdr 200,Get 500,Delete 500," ] && unchanged "store/state/$scep" &&
    ok "newer enrollment record: its commands answer 500, it stays as it is" ||
    fail "newer enrollment record: $(reply_codes "$tmp/reply.xml")"
timeout -s KILL 30 "$dmclient" --state-dir "$state" run --once >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] && grep -q "enrollment record $scep is of a newer format than this library reads (omadm-scep 1): left as it is" "$tmp/err" &&
    unchanged "store/state/$scep" && ok "newer enrollment record: run --once says it leaves it" ||
    fail "newer enrollment record: run --once: exit $rc, $(cat "$tmp/err")"
dm 1 check && grep -qF "$state/store/state/$scep: enrollment record of format omadm-scep 2" "$tmp/err" &&
    ok "newer enrollment record: check names it" || fail "newer enrollment record: check: $(cat "$tmp/err")"

variant journal store/journal
before=$(digest "$state")
journal_line="dmclient: $state/store/journal: format omadm-journal 2 is newer than this library reads (omadm-journal 1); nothing was changed"
msg_begin "$tmp/msg.xml"
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$(cat "$pki/root2.sha1")/EncodedCertificate" b64 "$(cat "$pki/root2.b64")"
msg_end
for cmd in "store list" "get ./Vendor/Acme/Greeting" "process $tmp/msg.xml"; do
    # shellcheck disable=SC2086  # the command's words
    dm 1 $cmd && one_line "$journal_line" && [ "$(digest "$state")" = "$before" ] &&
        ok "newer journal: ${cmd%% *} refused by name, nothing changed" ||
        fail "newer journal: ${cmd%% *}: $(cat "$tmp/out" "$tmp/err")"
done
dm 1 check && grep -qF "$state/store/journal: format omadm-journal 2 is newer than this library reads (omadm-journal 1)" "$tmp/err" &&
    unchanged store/journal && ok "newer journal: check names it" || fail "newer journal: check: $(cat "$tmp/err")"

finish test-state-upgrade
