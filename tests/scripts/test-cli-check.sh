#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-check.sh BUILD_DIR
#
# dmclient check (docs/cli.md, "dmclient check"; docs/state.md) on a state
# directory where a server message installed the test root, intermediate and
# leaf, added a node and ordered an enrollment (its CA never answers), and a
# session attempt wrote the auth state:
#   1. consistent: exit 0, "state DIR is consistent"; --json; --repair finds
#      nothing to do; usage errors (exit 2) and a state directory that does
#      not exist (exit 1, nothing created)
#   2. each problem it can repair, alone on a copy of the state: found by
#      check (exit 1, one stderr line naming the file, nothing changed), put
#      right by check --repair (exit 0, a "repaired:" line on stdout), and
#      gone for the next check: temp files of the state files, a state file
#      other users can read, a damaged session, damaged auth state (the
#      counter kept), a store directory's mode, a CApath file gone, a bundle
#      cut short (OpenSSL then verifies through both again), a temp file in
#      the store
#   3. each problem it cannot repair without losing something: found, left
#      by --repair (exit 1, the file unchanged): a bucket of the tree changed
#      or missing (the engine then refuses the state with one line naming
#      the bucket), a damaged certificate record (its bundle untouched), a
#      damaged enrollment record
#   4. --json with problems and repairs together
#
# Needs: POSIX sh, timeout (coreutils), openssl(1), sha256sum, find, sed,
# grep; python3 for the JSON checks (skipped without it).  Exits 0 when all
# passed.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-check.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/dm-check.sh
. "$here/lib/dm-check.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
pki=$here/../data/pki
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for tool in timeout openssl sha256sum find; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
have_python=
command -v python3 >/dev/null 2>&1 && have_python=1

scratch_dir cli-check
ROOT=$(cat "$pki/root.sha1")
INTER=$(cat "$pki/inter.sha1")
LEAF=$(cat "$pki/leaf.sha1")
export DMCLIENT_MINUTE_SECONDS=1

digest() {
    (cd "$1" && find . -printf '%p %y %m %s\n' | LC_ALL=C sort &&
        find . -type f -exec sha256sum {} + | LC_ALL=C sort) | sha256sum
}
json() {
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$tmp/out" 2>&1
}

# ---- the state ----
base=$tmp/base
state=$base
timeout -s KILL 30 "$dmclient" --state-dir "$state" session --server http://127.0.0.1:9/dm >/dev/null 2>&1
[ -f "$state/auth" ] || { echo "FAIL: no auth state written"; exit 1; }
msg_begin "$tmp/msg.xml"
m_cmd Add ./Vendor/Acme node
m_cmd Add ./Vendor/Acme/Greeting chr hello
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$ROOT/EncodedCertificate" b64 "$(cat "$pki/root.b64")"
m_cmd Add "./Vendor/MSFT/CertificateStore/CA/System/$INTER/EncodedCertificate" b64 "$(cat "$pki/inter.b64")"
m_cmd Add "./Vendor/MSFT/CertificateStore/My/System/$LEAF/EncodedCertificate" b64 "$(cat "$pki/leaf.b64")"
m_scep_enroll ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/E1 http://127.0.0.1:9/scep "$ROOT" \
    secret 3 2048 CN=device
msg_end
dm 0 process "$tmp/msg.xml" || exit 1
case $(reply_codes "$tmp/out") in
*' '[45]*) echo "FAIL: the state's message: $(reply_codes "$tmp/out")"; exit 1 ;;
esac
scep=$(cd "$state/store/state" && ls)
[ -n "$scep" ] || { echo "FAIL: no enrollment record"; exit 1; }

# ---- 1. consistent, usage ----
before=$(digest "$state")
dm 0 check && [ "$(cat "$tmp/out")" = "state $state is consistent" ] && ok "check: consistent" ||
    fail "check: $(cat "$tmp/out")"
dm 0 check --repair && [ "$(cat "$tmp/out")" = "state $state is consistent" ] &&
    [ "$(digest "$state")" = "$before" ] && ok "check --repair: nothing to do, nothing changed" ||
    fail "check --repair: $(cat "$tmp/out")"
if dm 0 check --json && [ -n "$have_python" ]; then
    [ "$(json "j['state'], j['consistent'], j['problems'], j['repaired'], j['notes']")" = \
        "$state True [] [] []" ] && ok "check --json: consistent" || fail "check --json: $(cat "$tmp/out")"
fi
usage() {
    want_line=$1
    shift
    dm 2 "$@" && [ "$(cat "$tmp/err")" = "$want_line" ] && [ ! -s "$tmp/out" ] &&
        ok "$*: exit 2, '$want_line'" || fail "$*: stderr '$(cat "$tmp/err")', expected '$want_line'"
}
usage "dmclient: check: unknown option '--fix'" check --fix
usage "dmclient: check: unexpected argument 'now'" check now
usage "dmclient: check: --state-dir goes before the command (dmclient --state-dir DIR check ...)" \
    check --state-dir "$state"
dm 0 check --help && grep -q '^usage: dmclient \[--state-dir DIR\] check \[--repair\] \[--json\]$' "$tmp/out" &&
    ok "check --help" || fail "check --help: $(cat "$tmp/out")"
timeout -s KILL 30 "$dmclient" --help | grep -q '^  check  ' && ok "dmclient --help names check" ||
    fail "dmclient --help does not name check"
timeout -s KILL 30 "$dmclient" --state-dir "$tmp/nowhere" check >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "^dmclient: no state in $tmp/nowhere " "$tmp/err" && [ ! -e "$tmp/nowhere" ] &&
    ok "check of no state: exit 1, nothing created" || fail "check of no state: exit $rc, $(cat "$tmp/err")"

# ---- 2. what --repair puts right ----
# repairable NAME WANT_PROBLEM WANT_REPAIR: on a copy of the state that SETUP
# (a function, run in it) damaged: check finds WANT_PROBLEM and changes
# nothing; --repair says WANT_REPAIR; the next check is clean
repairable() {
    name=$1
    state=$tmp/$name
    rm -rf "$state"
    cp -a "$base" "$state"
    (cd "$state" && setup) || { fail "$name: setup"; return; }
    before=$(digest "$state")
    dm 1 check && grep -qxF "dmclient: check: $2" "$tmp/err" &&
        grep -qx "dmclient: check: [0-9]* problems\{0,1\} in $state" "$tmp/err" &&
        [ "$(digest "$state")" = "$before" ] &&
        ok "$name: found, nothing changed" || fail "$name: check: $(cat "$tmp/err")"
    dm 0 check --repair && grep -qxF "repaired: $3" "$tmp/out" &&
        grep -qx "state $state is consistent" "$tmp/out" &&
        ok "$name: repaired" || fail "$name: check --repair: $(cat "$tmp/out" "$tmp/err")"
    dm 0 check && [ "$(cat "$tmp/out")" = "state $state is consistent" ] && ok "$name: consistent after" ||
        fail "$name: check after the repair: $(cat "$tmp/out" "$tmp/err")"
}

setup() { printf 'half a tree' >.tree.tmp; }
repairable temp-tree "$tmp/temp-tree/.tree.tmp: a temp file an interrupted write left" \
    "$tmp/temp-tree/.tree.tmp: removed (a temp file an interrupted write left)"
setup() { printf 'half a bucket' >.tree.17.b.tmp; }
repairable temp-bucket "$tmp/temp-bucket/.tree.17.b.tmp: a temp file an interrupted write left" \
    "$tmp/temp-bucket/.tree.17.b.tmp: removed (a temp file an interrupted write left)"
setup() { chmod 644 auth; }
repairable mode-auth "$tmp/mode-auth/auth: mode 0644, expected 0600" "$tmp/mode-auth/auth: mode 0644, set to 0600"
setup() { printf 'garbage\n' >session; }
repairable session "$tmp/session/session: damaged: no omadm-session format line" \
    "$tmp/session/session: damaged: no omadm-session format line; cleared (the next session starts afresh, as it would anyway)"
[ -f "$state/session" ] && [ ! -s "$state/session" ] && dm 0 get ./Vendor/Acme/Greeting &&
    ok "session: cleared, the tree as before" || fail "session: after the repair"
setup() { sed -i 's/^client-nonce .*/client-nonce !!!/' auth; }
repairable auth "$tmp/auth/auth: damaged: a nonce does not decode" \
    "$tmp/auth/auth: damaged: a nonce does not decode; written again with what could be read (the session counter, nonces that decode), as the next session would"
grep -qx 'counter 1' "$state/auth" && ok "auth: the session counter kept" || fail "auth: $(cat "$state/auth")"
setup() { chmod 700 store/trust/root; }
repairable store-mode "$tmp/store-mode/store/trust/root: mode 0700, expected 0755" \
    "$tmp/store-mode/store/trust/root: mode 0700, set to 0755"
setup() { rm store/trust/root/*.0; }
repairable capath "$tmp/capath/store: Root/System: CApath holds 0 certificates, the store 1" \
    "$tmp/capath/store: Root/System: CApath directory and bundle written anew from its records"
openssl verify -CApath "$state/store/trust/root" "$pki/inter.pem" >/dev/null 2>&1 &&
    ok "capath: OpenSSL verifies through the CApath directory again" || fail "capath: openssl verify"
setup() { printf 'cut' >store/trust/ca.pem; }
repairable bundle "$tmp/bundle/store: CA/System: bundle holds 0 certificates, the store 1" \
    "$tmp/bundle/store: CA/System: CApath directory and bundle written anew from its records"
openssl verify -CAfile "$state/store/trust/root.pem" -untrusted "$state/store/trust/ca.pem" "$pki/leaf.pem" \
    >/dev/null 2>&1 && ok "bundle: OpenSSL verifies through the bundles again" || fail "bundle: openssl verify"
setup() { printf 'half' >"store/certs/root/.$ROOT.tmp"; }
repairable store-temp "$tmp/store-temp/store/certs/root/.$ROOT.tmp: a temp file an interrupted write left" \
    "$tmp/store-temp/store/certs/root/.$ROOT.tmp: removed (a temp file an interrupted write left)"

# ---- 3. what --repair leaves ----
# left NAME FILE WANT_PROBLEM: SETUP damaged FILE; check and check --repair
# find WANT_PROBLEM (@ stands for the state directory), exit 1, and FILE
# stays as it is
left() {
    name=$1
    state=$tmp/$name
    rm -rf "$state"
    cp -a "$base" "$state"
    (cd "$state" && setup) || { fail "$name: setup"; return; }
    file=$(sha256sum <"$state/$2")
    expect=$(printf '%s' "$3" | sed "s|@|$state|g") # not $want: dm() sets it
    for flags in "" --repair; do
        # shellcheck disable=SC2086
        dm 1 check $flags && grep -qF "dmclient: check: $expect" "$tmp/err" && [ "$(sha256sum <"$state/$2")" = "$file" ] &&
            ok "$name: check $flags finds it and leaves it" || fail "$name: check $flags: $(cat "$tmp/err")"
    done
}
bucket=$(sed -n '3{s/^\([0-9]*\) \([0-9]*\) .*/\1 \2/;p}' "$base/tree")
bucket_key=tree.${bucket% *}.$([ $((${bucket#* } % 2)) -eq 1 ] && echo b || echo a)
setup() { sed -i '2s/\t/ /' "$bucket_key"; }
left bucket "$bucket_key" "@/$bucket_key: damaged: its checksum is not the one the manifest (tree) gives"
dm 1 get ./Vendor/Acme/Greeting &&
    [ "$(cat "$tmp/err")" = "dmclient: $state/$bucket_key: damaged: its checksum is not the one the manifest (tree) gives; nothing was changed" ] &&
    ok "bucket: the engine refuses the state with one line naming the bucket" || fail "bucket: get: $(cat "$tmp/err")"
setup() { mv "$bucket_key" "$bucket_key.gone"; }
left bucket-missing tree "@/$bucket_key: missing: the manifest (tree) names it"
setup() { printf 'omadm-cert 1\ngarbage\n' >"store/certs/ca/$INTER"; }
left record "store/trust/ca.pem" "@/store: CA/System: record $INTER (@/store/certs/ca/$INTER) is damaged"
setup() { printf 'omadm-scep 1\nid E1\nphase 99\nend\n' >"store/state/$scep"; }
left enrollment "store/state/$scep" "@/store/state/$scep: enrollment record is damaged"

# ---- 4. --json with both ----
state=$tmp/both
rm -rf "$state"
cp -a "$base" "$state"
printf 'x' >"$state/.session.tmp"
printf 'omadm-scep 1\nid E1\nphase 99\nend\n' >"$state/store/state/$scep"
if dm 1 check --repair --json && [ -n "$have_python" ]; then
    [ "$(json "j['consistent'], j['repaired'], j['problems']")" = \
        "False ['$state/.session.tmp: removed (a temp file an interrupted write left)'] ['$state/store/state/$scep: enrollment record is damaged']" ] &&
        [ ! -s "$tmp/err" ] && ok "check --repair --json: repairs and problems" ||
        fail "check --repair --json: $(cat "$tmp/out" "$tmp/err")"
fi

finish test-cli-check
