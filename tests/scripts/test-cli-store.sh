#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-store.sh BUILD_DIR
#
# dmclient store (docs/cli.md, "dmclient store") on a state directory where
# a server message installed the test root (Root/System) and intermediate
# (CA/System) of tests/data/pki, and the leaf sits in My/System with its
# private key (the key file put where the store keeps keys, as an
# enrollment leaves it):
#   1. list: the three, text and --json (private_key only for the leaf);
#      one store; an unknown store or option is a usage error (exit 2)
#   2. show: the thumbprint in upper and lower case, in the colon form
#      `openssl x509 -fingerprint` prints (also with its "sha1 Fingerprint="
#      prefix) and with spaces; the installing server, the install time
#      (ISO 8601) and the key; --json; a certificate that is not there is
#      exit 1, a malformed thumbprint or none exit 2
#   3. export: PEM with the certificate only; "unknown store" and "expected
#      one store name" are exit 2; one certificate by thumbprint, and with
#      --key its private key, a pair openssl signs and verifies with
#   4. paths: text as before, --json with the same paths; an argument is
#      "unexpected", not "unknown command"
#   5. check: consistent (text, --json, --repair); after a record is damaged
#      exit 1 with the problem on stderr, or in the --json "problems"; list
#      then shows the other certificates, warns once on stderr for the
#      damaged (or truncated) record, naming its file and why, and exits 1;
#      with --json stdout stays valid JSON
#   6. an unknown subcommand: exit 2
# dmclient must write nothing on stderr where it succeeds and one line where
# it refuses its arguments (a sanitizer report fails the test).
#
# Needs: POSIX sh, timeout (coreutils), openssl(1), sed, grep; python3 for the
# JSON checks (skipped without it).  Exits 0 on success.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-store.sh BUILD_DIR}
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
for tool in timeout openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
have_python=
command -v python3 >/dev/null 2>&1 && have_python=1

scratch_dir cli-store
state=$tmp/state

# usage WANT_LINE ARGS...: dmclient ARGS exits 2 with exactly WANT_LINE on stderr, one line
usage() {
    want_line=$1
    shift
    if dm 2 "$@"; then
        [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ "$(cat "$tmp/err")" = "$want_line" ] && [ ! -s "$tmp/out" ] &&
            ok "$*: exit 2, '$want_line'" ||
            fail "$*: stderr '$(cat "$tmp/err")', expected '$want_line'"
    fi
}

# json EXPR: evaluate the Python expression with j = the JSON on $tmp/out
json() {
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$tmp/out" 2>&1
}

ROOT=$(cat "$pki/root.sha1")
INTER=$(cat "$pki/inter.sha1")
LEAF=$(cat "$pki/leaf.sha1")
SERVER=https://dm.example.com/omadm

# ---- the state: root and intermediate from a server, the leaf with its key ----
msg_begin "$tmp/msg.xml" "$SERVER"
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$ROOT/EncodedCertificate" b64 "$(cat "$pki/root.b64")"
m_cmd Add "./Vendor/MSFT/RootCATrustedCertificates/CA/$INTER/EncodedCertificate" b64 "$(cat "$pki/inter.b64")"
m_cmd Add "./Vendor/MSFT/CertificateStore/My/System/$LEAF/EncodedCertificate" b64 "$(cat "$pki/leaf.b64")"
msg_end
t_before=$(date -u +%s)
dm 0 process "$tmp/msg.xml" || exit 1
[ "$(grep -o '<Data>200</Data>' "$tmp/out" | wc -l)" -eq 4 ] || { fail "install message: $(cat "$tmp/out")"; exit 1; }
t_after=$(date -u +%s)
# the key of the leaf, where the store keeps keys (store/keys/<store>-<THUMBPRINT>, 0600)
(umask 077 && cp "$pki/leaf.key" "$state/store/keys/my-system-$LEAF") || exit 1

# ---- 1. list ----
if dm 0 store list; then
    [ "$(wc -l <"$tmp/out")" -eq 3 ] && grep -q "^root  *$ROOT  2045-01-01T00:00:00Z  C=DE" "$tmp/out" &&
        grep -q "^ca  *$INTER " "$tmp/out" && grep -q "^my-system  *$LEAF " "$tmp/out" &&
        ok "store list: the three certificates" || fail "store list: $(cat "$tmp/out")"
fi
if dm 0 store list My/System; then
    [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -q "$LEAF" "$tmp/out" && ok "store list My/System" ||
        fail "store list My/System: $(cat "$tmp/out")"
fi
if dm 0 store list --json && [ -n "$have_python" ]; then
    [ "$(json "sorted((x['store'], x['thumbprint'], x['private_key'], x['installed_by']) for x in j)")" = \
        "[('ca', '$INTER', False, '$SERVER'), ('my-system', '$LEAF', True, '$SERVER'), ('root', '$ROOT', False, '$SERVER')]" ] &&
        ok "store list --json: stores, thumbprints, private_key, installed_by" ||
        fail "store list --json: $(cat "$tmp/out")"
fi
dm 0 store list user-ca --json && [ "$(cat "$tmp/out")" = "[]" ] && ok "store list user-ca --json: []" ||
    fail "store list user-ca --json: '$(cat "$tmp/out")'"
usage "dmclient: store list: unknown store 'nosuch'" store list nosuch
usage "dmclient: store list: unknown option '--bogus'" store list --bogus
usage "dmclient: store list: unexpected argument 'ca'" store list root ca

# ---- 2. show ----
fingerprint=$(openssl x509 -in "$pki/root.pem" -noout -fingerprint -sha1)
colons=${fingerprint#*=}
spaces=$(echo "$colons" | tr ':' ' ')
lower=$(echo "$ROOT" | tr 'A-F' 'a-f')
for form in "$ROOT" "$lower" "$colons" "$fingerprint" "$spaces"; do
    if dm 0 store show "$form"; then
        grep -q "^thumbprint:   $ROOT\$" "$tmp/out" &&
            grep -q "^store:        Root/System (root), node name $ROOT, installed by $SERVER\$" "$tmp/out" &&
            ! grep -q 'private key' "$tmp/out" && ok "store show '$form'" ||
            fail "store show '$form': $(cat "$tmp/out")"
    fi
done
# the install time: ISO 8601 UTC, between before and after the message
if dm 0 store show "$ROOT"; then
    at=$(sed -n 's/^installed at: \([0-9-]*T[0-9:]*Z\)$/\1/p' "$tmp/out")
    secs=$(date -u -d "$at" +%s 2>/dev/null || echo 0)
    [ -n "$at" ] && [ "$secs" -ge "$t_before" ] && [ "$secs" -le "$t_after" ] &&
        ok "store show: installed at $at" || fail "store show: install time '$at': $(cat "$tmp/out")"
fi
dm 0 store show "$LEAF" && grep -q '^private key:  present (not shown)$' "$tmp/out" &&
    grep -q '^store:        My/System (my-system)' "$tmp/out" && ok "store show: the leaf's key is present" ||
    fail "store show $LEAF: $(cat "$tmp/out")"
if dm 0 store show "$colons" --json && [ -n "$have_python" ]; then
    [ "$(json "[(x['store'], x['thumbprint'], x['private_key'], x['subject']) for x in j]")" = \
        "[('root', '$ROOT', False, 'C=DE, O=Conformance Test PKI, CN=Conformance Root')]" ] &&
        ok "store show --json" || fail "store show --json: $(cat "$tmp/out")"
fi
dm 0 store show --json "$LEAF" && grep -q '"private_key": true' "$tmp/out" &&
    ok "store show --json: private_key true for the leaf" || fail "store show --json $LEAF: $(cat "$tmp/out")"
if dm 1 store show 0123456789ABCDEF0123456789ABCDEF01234567 --json; then
    [ ! -s "$tmp/out" ] && grep -q 'no such certificate' "$tmp/err" &&
        ok "store show of a certificate that is not there: exit 1, nothing on stdout" ||
        fail "store show (absent): stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
usage "dmclient: store show: expected a thumbprint (40 hex digits)" store show
usage "dmclient: store show: expected a thumbprint (40 hex digits)" store show --json
usage "dmclient: store show: '1234' is not a thumbprint (40 hex digits, ':' or spaces allowed)" store show 1234
usage "dmclient: store show: unknown option '--pem'" store show "$ROOT" --pem

# ---- 3. export ----
if dm 0 store export root; then
    [ "$(grep -c 'BEGIN CERTIFICATE' "$tmp/out")" -eq 1 ] &&
        [ "$(openssl x509 -in "$tmp/out" -noout -fingerprint -sha1)" = "$fingerprint" ] &&
        ok "store export root: the root as PEM" || fail "store export root: $(cat "$tmp/out")"
fi
dm 0 store export My/System && [ "$(grep -c 'BEGIN CERTIFICATE' "$tmp/out")" -eq 1 ] &&
    ! grep -q 'PRIVATE KEY' "$tmp/out" && ok "store export My/System: the certificate, not the key" ||
    fail "store export My/System: $(cat "$tmp/out")"
dm 0 store export user-ca && [ ! -s "$tmp/out" ] && ok "store export of an empty store: nothing" ||
    fail "store export user-ca: $(cat "$tmp/out")"
usage "dmclient: store export: unknown store 'nosuch'" store export nosuch
usage "dmclient: store export: expected one store name" store export
usage "dmclient: store export: 'ca' is not a thumbprint (40 hex digits, ':' or spaces allowed)" \
    store export root ca
usage "dmclient: store export: unexpected argument 'x'" store export my-system "$LEAF" x
usage "dmclient: store export: --key needs a thumbprint" store export my-system --key
usage "dmclient: store export: unknown option '--repair'" store export my-system --repair
# one certificate; with --key its private key after it: the pair signs and verifies
dm 0 store export my-system "$LEAF" && [ "$(grep -c 'BEGIN CERTIFICATE' "$tmp/out")" -eq 1 ] &&
    ! grep -q 'PRIVATE KEY' "$tmp/out" && cmp -s "$tmp/out" "$pki/leaf.pem" &&
    ok "store export my-system THUMBPRINT: that certificate" ||
    fail "store export my-system $LEAF: $(cat "$tmp/out")"
if dm 0 store export My/System "$(echo "$LEAF" | tr 'A-F' 'a-f')" --key; then
    echo data >"$tmp/data"
    grep -q 'BEGIN PRIVATE KEY' "$tmp/out" &&
        openssl dgst -sha256 -sign "$tmp/out" -out "$tmp/sig" "$tmp/data" 2>/dev/null &&
        openssl x509 -in "$tmp/out" -pubkey -noout >"$tmp/pub" &&
        openssl dgst -sha256 -verify "$tmp/pub" -signature "$tmp/sig" "$tmp/data" >/dev/null &&
        ok "store export --key: certificate and key, a pair that signs and verifies" ||
        fail "store export --key: $(cat "$tmp/out")"
fi
dm 1 store export root "$LEAF" --key &&
    grep -qx "dmclient: store export: $LEAF: no such certificate in that store" "$tmp/err" &&
    ok "store export --key of a certificate not in that store: exit 1" ||
    fail "store export root $LEAF --key: $(cat "$tmp/err")"
usage "dmclient: store export: unknown option '--json'" store export root --json

# ---- 4. paths ----
if dm 0 store paths; then
    cp "$tmp/out" "$tmp/paths.txt"
    capath=$(sed -n 's|^Root/System  *CApath \(.*\)$|\1|p' "$tmp/paths.txt")
    bundle=$(sed -n '/^CA\/System /{n;s|^ *bundle \(.*\)$|\1|p;}' "$tmp/paths.txt")
    [ "$(wc -l <"$tmp/paths.txt")" -eq 18 ] && [ "$capath" = "$state/store/trust/root" ] &&
        [ "$bundle" = "$state/store/trust/ca.pem" ] && ok "store paths: 9 trust stores" ||
        fail "store paths: $(cat "$tmp/paths.txt")"
fi
if dm 0 store paths --json && [ -n "$have_python" ]; then
    [ "$(json "len(j), [x['store'] for x in j][:2], j[0]['label'], j[0]['capath'], j[1]['bundle']")" = \
        "9 ['root', 'ca'] Root/System $state/store/trust/root $state/store/trust/ca.pem" ] &&
        ok "store paths --json: the same paths" || fail "store paths --json: $(cat "$tmp/out")"
fi
usage "dmclient: store paths: unexpected argument 'root'" store paths root
usage "dmclient: store paths: unknown option '--repair'" store paths --repair

# ---- 5. check ----
dm 0 store check && [ "$(cat "$tmp/out")" = "store $state/store is consistent" ] &&
    ok "store check: consistent" || fail "store check: $(cat "$tmp/out")"
dm 0 store check --repair && grep -q 'is consistent' "$tmp/out" && ok "store check --repair: consistent" ||
    fail "store check --repair: $(cat "$tmp/out")"
if dm 0 store check --json && [ -n "$have_python" ]; then
    [ "$(json "j['consistent'], j['problems'], j['store']")" = "True [] $state/store" ] &&
        ok "store check --json: consistent" || fail "store check --json: $(cat "$tmp/out")"
fi
usage "dmclient: store check: unknown option '--fix'" store check --fix
usage "dmclient: store check: unexpected argument 'root'" store check root
# a damaged record
cp "$state/store/certs/ca/$INTER" "$tmp/inter.rec"
printf 'garbage\n' >"$state/store/certs/ca/$INTER"
if dm 1 store check; then
    grep -q "^dmclient: store check: CA/System: record $INTER" "$tmp/err" &&
        grep -q "^dmclient: store check: [0-9]* problems\{0,1\} in $state/store\$" "$tmp/err" &&
        ok "store check of a damaged record: exit 1 ($(head -n 1 "$tmp/err"))" ||
        fail "store check (damaged): $(cat "$tmp/err")"
fi
dm 1 store check --repair && grep -q "record $INTER" "$tmp/err" &&
    ok "store check --repair: a damaged record stays a problem" || fail "store check --repair (damaged)"
if timeout -s KILL 30 "$dmclient" --state-dir "$state" store check --json >"$tmp/out" 2>"$tmp/err"; then
    fail "store check --json (damaged): exit 0"
elif [ -n "$have_python" ]; then
    [ -s "$tmp/err" ] && fail "store check --json (damaged) wrote on stderr: $(cat "$tmp/err")"
    [ "$(json "j['consistent'], len(j['problems']) >= 1, any('$INTER' in p for p in j['problems'])")" = \
        "False True True" ] && ok "store check --json (damaged): the problems" ||
        fail "store check --json (damaged): $(cat "$tmp/out")"
fi
# list: the good certificates, one warning per damaged record naming its file
# and why, exit 1; --json stays valid JSON (the warnings on stderr)
rec=$state/store/certs/ca/$INTER
if dm 1 store list; then
    [ "$(wc -l <"$tmp/out")" -eq 2 ] && grep -q "^root  *$ROOT " "$tmp/out" &&
        grep -q "^my-system  *$LEAF " "$tmp/out" &&
        [ "$(cat "$tmp/err")" = "dmclient: store list: warning: CA/System: record $rec cannot be read: not a certificate record" ] &&
        ok "store list with a damaged record: the other two, a warning naming it, exit 1" ||
        fail "store list (damaged): stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
fi
# a record cut short (as copying a state directory while it is written can leave it)
head -c $(($(wc -c <"$tmp/inter.rec") / 2)) "$tmp/inter.rec" >"$rec"
if dm 1 store list --json; then
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^dmclient: store list: warning: CA/System: record $rec cannot be read: ." "$tmp/err" &&
        ok "store list --json with a truncated record: $(cat "$tmp/err")" ||
        fail "store list --json (truncated): stderr '$(cat "$tmp/err")'"
    if [ -n "$have_python" ]; then
        [ "$(json "sorted(x['thumbprint'] for x in j) == sorted(['$LEAF', '$ROOT'])")" = True ] &&
            ok "store list --json with a truncated record: valid JSON, the other two" ||
            fail "store list --json (truncated): $(cat "$tmp/out")"
    fi
fi
dm 1 store list ca && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    ok "store list ca with only the truncated record: nothing listed, the warning, exit 1" ||
    fail "store list ca (truncated): stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"
dm 0 store list root && [ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "store list of another store: exit 0" ||
    fail "store list root (another store damaged): $(cat "$tmp/out")"
# a record a later version wrote: not damaged, not read, named as such
sed '1s/.*/omadm-cert 2/' "$tmp/inter.rec" >"$rec"
dm 1 store list ca && [ ! -s "$tmp/out" ] &&
    [ "$(cat "$tmp/err")" = "dmclient: store list: warning: CA/System: record $rec cannot be read: a record of a newer format" ] &&
    ok "store list ca with a record of a newer format: the warning says so, exit 1" ||
    fail "store list ca (newer record): stdout '$(cat "$tmp/out")', stderr '$(cat "$tmp/err")'"

# ---- 6. subcommands ----
# (the reason line, then the usage)
timeout -s KILL 30 "$dmclient" --state-dir "$state" store frob >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && head -n 1 "$tmp/err" | grep -q "^dmclient: store: unknown command 'frob'$" &&
    ok "store frob: unknown command (exit 2)" || fail "store frob: exit $rc, $(cat "$tmp/err")"
timeout -s KILL 30 "$dmclient" store --help >"$tmp/out" 2>"$tmp/err" &&
    grep -q 'check \[--repair\] \[--json\]' "$tmp/out" && ok "store --help names check --repair" ||
    fail "store --help: $(cat "$tmp/out")"

finish test-cli-store
