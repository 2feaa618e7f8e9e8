#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-secrets.sh BUILD_DIR
#
# A dmclient.conf holding client_secret or server_secret that other users
# can read (docs/cli.md, "Secrets"): every command that reads it warns, one
# line on stderr naming the file, the key, its mode and the fix, never the
# secret, and goes on (exit 0, same output).  No warning when the file is
# 0600 (or 0400), when it holds no secret (also not for client_secret_file,
# a path), or when the secret is empty.  dmclient run, which reads the file
# at every step, warns once.
#
# Needs: POSIX sh, timeout.  Exits 0 on success.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-secrets.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
DM=$build/bin/dmclient
[ -x "$DM" ] || { echo "FAIL: $DM missing (build first)"; exit 1; }

scratch_dir cli-secrets
S=$tmp/state
mkdir -p "$S"
SECRET=hunter2-very-secret

# conf MODE TEXT: write dmclient.conf with that mode
conf() {
    printf '%b' "$2" >"$S/dmclient.conf"
    chmod "$1" "$S/dmclient.conf"
}
# get: dmclient get ./DevInfo/DevId; stdout in $tmp/out, stderr in $tmp/err,
# exit status in $rc
get() {
    timeout -s KILL 30 "$DM" --state-dir "$S" get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
# warned LABEL KEY MODE: get succeeded with exactly one warning line about KEY
warned() {
    get
    if [ "$rc" -ne 0 ] || [ "$(cat "$tmp/out")" != dev9 ]; then
        fail "$1: exit $rc, output '$(cat "$tmp/out")': $(cat "$tmp/err")"
    elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q "^dmclient: warning: $S/dmclient.conf holds $2 .*mode $3.*chmod 600" "$tmp/err"; then
        fail "$1: expected one warning about $2 (mode $3), got: $(cat "$tmp/err")"
    elif grep -q "$SECRET" "$tmp/err"; then
        fail "$1: the warning shows the secret"
    else
        ok "$1: $(cat "$tmp/err")"
    fi
}
# quiet LABEL: get succeeded without a word on stderr
quiet() {
    get
    if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = dev9 ] && [ ! -s "$tmp/err" ]; then
        ok "$1: no warning"
    else
        fail "$1: exit $rc: $(cat "$tmp/err")"
    fi
}

conf 644 "dev_id = dev9\nclient_secret = $SECRET\n"
warned "client_secret, mode 644" client_secret 0644
conf 640 "dev_id = dev9\nserver_secret = \"$SECRET\"   # the server's\n"
warned "server_secret, mode 640" server_secret 0640
conf 604 "dev_id = dev9\nserver_secret = $SECRET\nclient_secret = $SECRET\n"
warned "both secrets, mode 604" client_secret 0604
conf 600 "dev_id = dev9\nclient_secret = $SECRET\nserver_secret = $SECRET\n"
quiet "secrets, mode 600"
conf 400 "dev_id = dev9\nclient_secret = $SECRET\n"
quiet "secrets, mode 400"
conf 644 "dev_id = dev9\nclient_secret_file = cli.secret\nserver_secret_file = srv.secret\n"
quiet "only secret file names, mode 644"
conf 644 "dev_id = dev9\nclient_secret =\n"
quiet "an empty client_secret, mode 644"
conf 644 "dev_id = dev9\n"
quiet "no secret, mode 644"

# plain run steps every second here: one warning for the whole command
conf 644 "dev_id = dev9\nclient_secret = $SECRET\n"
DMCLIENT_MINUTE_SECONDS=1 "$DM" --state-dir "$S" run >/dev/null 2>"$tmp/run.err" &
bg=$!
sleep 2.5
kill -TERM "$bg"
i=0
while kill -0 "$bg" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wait "$bg"
rc=$?
bg=
n=$(grep -c 'warning:' "$tmp/run.err")
[ "$rc" -eq 0 ] && [ "$n" -eq 1 ] && [ "$(wc -l <"$tmp/run.err")" -eq 1 ] &&
    ok "run (three steps): one warning, exit 0" ||
    fail "run: exit $rc, $n warnings: $(cat "$tmp/run.err")"

finish test-cli-secrets
