#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-session-record.sh BUILD_DIR
#
# dmclient session --record DIR (docs/conformance.md, "Record your own server")
# against the scripted DM test server (tests/dmserver, script "record": an Add,
# a Replace, a SCEP enrollment Atomic with a Challenge, a PFX password, Gets, a
# Delete), each
# session under timeout on a fresh state directory, HTTPS with throwaway
# certificates:
#   md5-xml     XML, our md5 credentials challenged once (401 + NextNonce) and
#               the server's md5 Cred in every message: the record replays
#               green with tests/conformance/run, the challenge round is in
#               not-replayed/, the case runs XML only
#   hmac-wbxml  WBXML, x-syncml-hmac both ways (a Chal with a NextNonce on every
#               SyncHdr Status): the server's messages stay .wbxml, the record
#               replays green in the wbxml pass
# For both: no secret of the session is anywhere in the record (the client and
# server secrets, their basic credentials, the SCEP Challenge, the PFX password, and every Cred
# Data, NextNonce and x-syncml-hmac mac the server's log shows), the masked
# values are there as X runs, and a reply changed in one Status code makes the
# replay fail.
#   not-empty   --record into a directory that is not empty: exit 2, one line,
#               nothing sent
#   write-fails the server makes a directory where the record writes the first
#               server message: the session runs to its end, dmclient exits 1
#               with one line saying the record is incomplete
# Scratch directory BUILD_DIR/test-session-record.XXXXXX, removed on success
# unless RECORD_KEEP=1.  Needs: POSIX sh, python3, openssl, timeout, xmllint.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-session-record.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
top=$(cd "$here/../.." && pwd)
dmclient=$build/bin/dmclient
conv=$build/tests/tools/syncmlconv
server=$top/tests/dmserver/dmserver.py
runner=$top/tests/conformance/run
for c in python3 openssl timeout xmllint; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL: $c not found"; exit 1; }
done
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
[ -x "$conv" ] || { echo "FAIL: $conv missing (build first)"; exit 1; }

tmp=$(mktemp -d "$build/test-session-record.XXXXXX") || exit 1
tmp=$(cd "$tmp" && pwd)
pids=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    if [ "$failures" -eq 0 ] && [ -z "${RECORD_KEEP:-}" ]; then
        rm -rf "$tmp"
    else
        echo "scratch directory kept: $tmp"
    fi
}
trap cleanup EXIT
trap 'failures=$((failures + 1)); exit 1' HUP INT TERM

sh "$top/tests/dmserver/make-certs.sh" "$tmp/pki" >"$tmp/make-certs.log" 2>&1 ||
    { fail "make-certs.sh"; cat "$tmp/make-certs.log"; exit 1; }
CLIENT_SECRET="rec-client-secret-5Kd8"
SERVER_SECRET="rec-server-secret-Wq31"
CHALLENGE="rec-scep-challenge-Zt60"
PFX_PASSWORD="rec-pfx-password-Mv27"
printf '%s' "$CLIENT_SECRET" >"$tmp/client.secret"
printf '%s' "$SERVER_SECRET" >"$tmp/server.secret"
chmod 600 "$tmp/client.secret" "$tmp/server.secret"

# start NAME SCRIPT SERVER-ARGS...: a dmserver in the background; sets $port, $spid
start() {
    name=$1 script=$2
    shift 2
    python3 "$server" --script "$script" --port-file "$tmp/$name.port" --max-time 120 \
        --cert "$tmp/pki/server.pem" --key "$tmp/pki/server.key" --syncmlconv "$conv" \
        --log "$tmp/$name.log" "$@" >"$tmp/$name.out" 2>&1 &
    spid=$!
    pids="$pids $spid"
    i=0
    while [ ! -s "$tmp/$name.port" ] && kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    port=$(cat "$tmp/$name.port" 2>/dev/null)
    [ -n "$port" ] && return 0
    fail "$name: the server did not start"
    cat "$tmp/$name.out"
    return 1
}

# client NAME ARGS...: dmclient session against the server of NAME; sets $rc
client() {
    name=$1
    shift
    mkdir -p "$tmp/s-$name"
    timeout -s KILL 120 "$dmclient" --state-dir "$tmp/s-$name" session \
        --server "https://127.0.0.1:$port/omadm" --cacert "$tmp/pki/ca.pem" "$@" \
        >"$tmp/$name.stdout" 2>"$tmp/$name.stderr"
    rc=$?
    if grep -q -E 'Sanitizer|runtime error:' "$tmp/$name.stderr"; then
        fail "$name: sanitizer report in dmclient's output"
        cat "$tmp/$name.stderr"
    fi
}

# server_done NAME: the server's verdict (SIGUSR1: the client is done); 0 = PASS
server_done() {
    kill -USR1 "$spid" 2>/dev/null
    wait "$spid"
    src=$?
    [ "$src" -eq 0 ] && return 0
    grep -v '^ok:' "$tmp/$1.out" | head -n 30 | sed 's/^/    server: /'
    return 1
}

# secrets NAME DIR: every secret the session showed, one per line, into $tmp/NAME.secrets
secrets() {
    {
        printf '%s\n%s\n%s\n%s\n' "$CLIENT_SECRET" "$SERVER_SECRET" "$CHALLENGE" "$PFX_PASSWORD"
        printf 'omadm-device:%s' "$CLIENT_SECRET" | openssl base64 -A
        echo
        printf 'dmserver:%s' "$SERVER_SECRET" | openssl base64 -A
        echo
        # the Cred Data, NextNonces and macs the server's log shows (both directions)
        python3 - "$tmp/$1.log" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
found = set(re.findall(r"<NextNonce[^>]*>\s*([^<\s]+)\s*<", text))
found |= set(re.findall(r"mac=([A-Za-z0-9+/=]+)", text))
for cred in re.findall(r"<Cred>(.*?)</Cred>", text, re.S):
    found |= set(re.findall(r"<Data>\s*([^<\s]+)\s*</Data>", cred))
for v in sorted(found):
    print(v)
EOF
    } >"$tmp/$1.secrets"
}

# no_secrets NAME DIR: none of them is in any file of DIR; masked values are
no_secrets() {
    secrets "$1"
    n=$(grep -c . "$tmp/$1.secrets")
    [ "$n" -ge 8 ] || fail "$1: only $n secrets found in the server's log (expected nonces, macs, Creds)"
    leaked=
    while IFS= read -r v; do
        [ -n "$v" ] || continue
        if grep -r -a -q -F -e "$v" "$2"; then
            leaked="$leaked $v ($(grep -r -a -l -F -e "$v" "$2" | sed "s|$2/||" | tr '\n' ' '))"
        fi
    done <"$tmp/$1.secrets"
    [ -z "$leaked" ] && ok "$1: none of the session's $n secrets is in the record" ||
        fail "$1: the record holds secrets:$leaked"
    grep -r -a -q 'XXXXXXXXXXXXXXXXXXXXXXXX' "$2" &&
        ok "$1: masked values are in the record" || fail "$1: no masked value in the record"
}

# replay NAME DIR: tests/conformance/run on the record passes; with one Status code
# changed in the last reply it fails
replay() {
    if "$runner" "$build" "$2" >"$tmp/$1.replay" 2>&1 &&
        grep -q '^conformance: 1 passed, 0 failed, 1 skipped' "$tmp/$1.replay"; then
        ok "$1: the record replays green ($(grep '^PASS' "$tmp/$1.replay" | tr '\n' ' '))"
    else
        fail "$1: the record does not replay"
        sed 's/^/    /' "$tmp/$1.replay" | head -n 60
    fi
    last=$(find "$2" -maxdepth 1 -name '[0-9][0-9]-reply.xml' | sort | tail -n 1)
    if [ -z "$last" ]; then
        fail "$1: no reply in the record"
        return
    fi
    cp "$last" "$tmp/$1.reply.saved"
    sed -i '0,/<Data>200<\/Data>/s//<Data>500<\/Data>/' "$last"
    if cmp -s "$last" "$tmp/$1.reply.saved"; then
        fail "$1: could not change a Status code in $last"
    elif "$runner" "$build" "$2" >"$tmp/$1.replay-bad" 2>&1; then
        fail "$1: the replay passes with a changed reply"
    elif grep -q 'reply differs' "$tmp/$1.replay-bad"; then
        ok "$1: a changed reply ($(basename "$last")) fails the replay"
    else
        fail "$1: the replay of a changed reply fails for another reason"
        sed 's/^/    /' "$tmp/$1.replay-bad" | head -n 20
    fi
    cp "$tmp/$1.reply.saved" "$last"
}

SECRETS="--client-secret-file $tmp/client.secret --server-id dmserver --server-secret-file $tmp/server.secret"
PARAMS="--param client_secret=$CLIENT_SECRET --param server_secret=$SERVER_SECRET --param scep_challenge=$CHALLENGE --param pfx_password=$PFX_PASSWORD"

# ---- md5, XML
rec=$tmp/rec-md5-xml
# shellcheck disable=SC2086  # word splitting of the argument lists is wanted
if start md5-xml record $PARAMS --param auth=md5; then
    # shellcheck disable=SC2086
    client md5-xml --auth digest --server-auth digest $SECRETS --record "$rec"
    server_done md5-xml && [ "$rc" -eq 0 ] && [ ! -s "$tmp/md5-xml.stderr" ] &&
        ok "md5-xml: the session passed, exit 0, nothing on stderr" ||
        { fail "md5-xml: dmclient exit $rc or the server failed"; cat "$tmp/md5-xml.stderr"; }
    [ -f "$rec/not-replayed/01-server.xml" ] && [ -f "$rec/not-replayed/01-reply.xml" ] &&
        [ -f "$rec/02-server.xml" ] && [ -f "$rec/03-reply.xml" ] && [ -f "$rec/04-server.xml" ] &&
        [ -f "$rec/package1.xml" ] && [ -f "$rec/state/session" ] &&
        grep -q '^xml' "$rec/encodings" && grep -q '^no-auth' "$rec/replay" &&
        grep -q '^ *01: the server.s Status 401' "$rec/README" &&
        ok "md5-xml: the challenge round in not-replayed/, messages 02-04 replayed, XML" ||
        { fail "md5-xml: the record's files"; find "$rec" | sort; }
    for want in "^Recorded session with https://127.0.0.1:$port/omadm, " \
        "dmclient $("$dmclient" --version | sed 's/^dmclient //')" \
        "our credentials: digest (syncml:auth-md5)" "^Masked: "; do
        grep -q -e "$want" "$rec/README" || fail "md5-xml: README lacks '$want'"
    done
    grep -q '^server_id = dmserver$' "$rec/dmclient.conf" &&
        ! grep -q -i -e secret -e server_url "$rec/dmclient.conf" &&
        ok "md5-xml: dmclient.conf holds the device settings (server_id), no account" ||
        fail "md5-xml: dmclient.conf: $(cat "$rec/dmclient.conf")"
    no_secrets md5-xml "$rec"
    replay md5-xml "$rec"
fi

# ---- HMAC, WBXML
rec=$tmp/rec-hmac-wbxml
# shellcheck disable=SC2086
if start hmac-wbxml record $PARAMS --param auth=hmac --param encoding=wbxml; then
    # shellcheck disable=SC2086
    client hmac-wbxml --encoding wbxml --auth hmac --server-auth hmac $SECRETS --record "$rec"
    server_done hmac-wbxml && [ "$rc" -eq 0 ] && [ ! -s "$tmp/hmac-wbxml.stderr" ] &&
        ok "hmac-wbxml: the session passed, exit 0, nothing on stderr" ||
        { fail "hmac-wbxml: dmclient exit $rc or the server failed"; cat "$tmp/hmac-wbxml.stderr"; }
    [ -f "$rec/01-server.wbxml" ] && [ -f "$rec/02-server.wbxml" ] && [ -f "$rec/03-server.wbxml" ] &&
        [ -f "$rec/01-reply.xml" ] && [ -f "$rec/package1.wbxml" ] && [ ! -e "$rec/not-replayed" ] &&
        grep -q '^wbxml' "$rec/encodings" &&
        [ "$(grep -c 'x-syncml-hmac: .*mac=XXXXXXXXXXXXXXXXXXXXXXXX$' "$rec/transport")" -eq 6 ] &&
        ok "hmac-wbxml: WBXML server messages, every exchange replayed, 6 macs masked" ||
        { fail "hmac-wbxml: the record's files"; find "$rec" | sort; cat "$rec/transport"; }
    no_secrets hmac-wbxml "$rec"
    replay hmac-wbxml "$rec"
fi

# ---- -vv (no record) shows the messages masked as a record is: no SCEP
# Challenge, no secret, the Cred Data as ***
# shellcheck disable=SC2086
if start vv record $PARAMS --param auth=md5; then
    # shellcheck disable=SC2086
    client vv --auth digest --server-auth digest $SECRETS -vv
    if server_done vv && [ "$rc" -eq 0 ] && grep -q '/Challenge</LocURI>' "$tmp/vv.stderr" &&
        grep -q '<Cred>.*<Data>\*\*\*</Data></Cred>' "$tmp/vv.stderr"; then
        if grep -q -e "$CHALLENGE" -e "$PFX_PASSWORD" -e "$CLIENT_SECRET" -e "$SERVER_SECRET" "$tmp/vv.stderr"; then
            fail "vv: -vv shows a secret, the Challenge or the PFX password: $(grep -e "$CHALLENGE" \
                -e "$PFX_PASSWORD" -e "$CLIENT_SECRET" -e "$SERVER_SECRET" "$tmp/vv.stderr" | head -n 3)"
        elif ! grep -q '/PFXCertPassword</LocURI>' "$tmp/vv.stderr"; then
            fail "vv: the PFX password's Add is not in the dump"
        else
            ok "vv: -vv dumps every message, the Challenge, the PFX password, the secrets and Cred Data masked"
        fi
    else
        fail "vv: exit $rc, or the messages not dumped"
        head -n 20 "$tmp/vv.stderr"
    fi
fi

# ---- a directory that is not empty: refused before anything is sent
rec=$tmp/rec-not-empty
mkdir -p "$rec"
: >"$rec/other-case"
if start not-empty no-request --param seconds=2; then
    client not-empty --record "$rec"
    server_done not-empty && [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/not-empty.stderr")" -eq 1 ] &&
        grep -q "^dmclient: session: --record $rec: the directory is not empty" \
            "$tmp/not-empty.stderr" && [ "$(ls "$rec")" = other-case ] &&
        ok "not-empty: exit 2, one line, nothing sent, the directory untouched" ||
        { fail "not-empty: exit $rc"; cat "$tmp/not-empty.stderr"; }
fi

# ---- the record cannot be written: the session goes on, exit 1
rec=$tmp/rec-write-fails
# shellcheck disable=SC2086
if start write-fails record --param "mkdir=$rec/01-server.xml"; then
    client write-fails --record "$rec"
    server_done write-fails && [ "$rc" -eq 1 ] &&
        [ "$(wc -l <"$tmp/write-fails.stderr")" -eq 1 ] &&
        grep -q "^dmclient: session: --record $rec: cannot write 01-server.xml: .*; the record is incomplete$" \
            "$tmp/write-fails.stderr" && [ ! -e "$rec/README" ] &&
        ok "write-fails: the session ran to its end, exit 1, one line, no README" ||
        { fail "write-fails: exit $rc"; cat "$tmp/write-fails.stderr"; }
fi

finish test-session-record.sh
