#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-store-perms.sh BUILD_DIR
#
# The certificate store as another user of the device sees it
# (docs/certificatestore.md, "Who may read what"): the CApath directories and
# PEM bundles are for every user, private keys for root alone.  Run as root,
# with a state directory under a world-traversable temporary directory:
#   1. one message (dmclient process, umask 077 so nothing depends on it)
#      installs the root through CertificateStore/Root/System, the
#      intermediate through RootCATrustedCertificates/CA and the leaf through
#      CertificateStore/My/System; the leaf's private key is written by the
#      store itself (a journal in the format of store/journal.c, replayed
#      when the store is next opened, as an enrollment's batch would be)
#   2. as nobody: `openssl verify -CApath <Root/System CApath> -untrusted
#      <CA/System bundle>` of the leaf succeeds; reading the key file, or
#      listing the key directory, fails
#   4. store check --repair restores wrong modes (a CApath directory, a bundle,
#      the key directory); store check then passes and nobody verifies again
#   3. a trust directory chmod'ed 0700: `dmclient store check` names it (path,
#      mode found, mode expected) and exits non-zero, and nobody's verify
#      fails; the next write into that store (another Add) gives the
#      directory its mode back: check passes and nobody verifies again
# `dmclient store check` passes after steps 1 and 3.
#
# Needs: root, setpriv (util-linux) and the user nobody / group nogroup,
# openssl (the CLI), sha256sum, POSIX sh, sed, grep.  Exits 0 on success.
set -u

build=${1:?usage: test-store-perms.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
pki=$here/../data/pki
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for c in openssl setpriv sha256sum; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL: $c not found"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "FAIL: test-store-perms.sh must run as root"; exit 1; }

scratch_dir store-perms
# nobody must be able to walk down to the store: the temporary directory is
# opened up, and the state directory is made here (dmclient would create it
# with the umask applied)
chmod 0755 "$tmp"
state=$tmp/state
mkdir -m 0755 "$state"
cp "$pki/leaf.pem" "$tmp/leaf.pem"
chmod 0644 "$tmp/leaf.pem"

as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
as_nobody test -x "$tmp" ||
    { echo "FAIL: nobody cannot enter $tmp (a parent of ${TMPDIR:-/tmp} is closed)"; exit 1; }

# a fixed verification time inside the test PKI's validity (2025..2045)
attime=1893456000

ROOT=$(cat "$pki/root.sha1")
INTER=$(cat "$pki/inter.sha1")
LEAF=$(cat "$pki/leaf.sha1")
ROOT2=$(cat "$pki/root2.sha1")
CS=./Vendor/MSFT/CertificateStore
RCA=./Device/Vendor/MSFT/RootCATrustedCertificates

# dm ARGS...: dmclient on the state dir with umask 077; stdout to $tmp/out,
# stderr to $tmp/err
dm() {
    (umask 077 && exec "$dmclient" --state-dir "$state" "$@") >"$tmp/out" 2>"$tmp/err"
}

store_check_ok() {
    if dm store check; then
        echo "ok: $1: store check passes"
    else
        fail "$1: dmclient store check:"
        cat "$tmp/err"
    fi
}

# process WHAT EXPECTED: send $tmp/msg.xml (lib/syncml.sh); the reply's "Cmd code" pairs must be EXPECTED
process() {
    if ! dm process "$tmp/msg.xml"; then
        fail "$1: dmclient process failed:"
        cat "$tmp/err"
        return
    fi
    got=$(reply_codes "$tmp/out")
    [ "$got" = "$2" ] || fail "$1: reply statuses '$got', expected '$2'"
}

# verify_as_nobody WHAT ok|fails: openssl verify of the leaf, run by nobody,
# through the Root/System CApath and the CA/System bundle
verify_as_nobody() {
    out=$(as_nobody openssl verify -no-CAfile -no-CAstore -attime "$attime" -CApath "$capath" \
        -untrusted "$bundle" "$tmp/leaf.pem" 2>&1)
    rc=$?
    case $2 in
    ok)
        if [ $rc -eq 0 ] && [ "$out" = "$tmp/leaf.pem: OK" ]; then
            echo "ok: $1: nobody verifies the leaf through the store"
        else
            fail "$1: nobody's openssl verify: expected OK, got (exit $rc):"
            echo "$out"
        fi
        ;;
    fails)
        if [ $rc -ne 0 ]; then
            echo "ok: $1: nobody's openssl verify fails ($(echo "$out" | head -n 1))"
        else
            fail "$1: nobody's openssl verify: expected a failure, got OK"
        fi
        ;;
    esac
}

# ---- 1. install root, intermediate and leaf; the leaf's key --------------------
msg_begin "$tmp/msg.xml"
m_cmd Add "$CS/Root/System/$ROOT/EncodedCertificate" b64 "$(cat "$pki/root.b64")"
m_cmd Add "$RCA/CA/$INTER/EncodedCertificate" b64 "$(cat "$pki/inter.b64")"
m_cmd Add "$CS/My/System/$LEAF/EncodedCertificate" b64 "$(cat "$pki/leaf.b64")"
msg_end
process "install" "SyncHdr 200,Add 200,Add 200,Add 200,"

dm store paths || fail "dmclient store paths"
capath=$(sed -n 's|^Root/System  *CApath \(.*\)$|\1|p' "$tmp/out")
bundle=$(sed -n '/^CA\/System /{n;s|^ *bundle \(.*\)$|\1|p;}' "$tmp/out")
[ -d "$capath" ] || fail "Root/System CApath '$capath' is not a directory"
[ -f "$bundle" ] || fail "CA/System bundle '$bundle' is not a file"
store=${capath%/trust/root}

# The key as a batch of the store writes it: "omadm-journal 1", one W record
# (mode in octal, length, path), the SHA-256 trailer over all that.
key=keys/my-system-$LEAF
{
    printf 'omadm-journal 1\n'
    printf 'W 600 %s %s\n' "$(wc -c <"$pki/leaf.key" | tr -d ' ')" "$key"
    cat "$pki/leaf.key"
    printf '\n'
} >"$tmp/journal"
printf 'E %s\n' "$(sha256sum "$tmp/journal" | cut -d ' ' -f 1)" >>"$tmp/journal"
cp "$tmp/journal" "$store/journal"
store_check_ok "step 1"
[ ! -e "$store/journal" ] || fail "the key's journal was not applied"
[ -f "$store/$key" ] || fail "the store did not write $key"
cmp -s "$store/$key" "$pki/leaf.key" || fail "$key does not hold leaf.key"

# ---- 2. what nobody can and cannot do -------------------------------------------
verify_as_nobody "step 2" ok
if as_nobody cat "$store/$key" >/dev/null 2>&1; then
    fail "step 2: nobody can read the private key $store/$key"
else
    echo "ok: step 2: nobody cannot read the private key"
fi
if as_nobody ls "$store/keys" >/dev/null 2>&1; then
    fail "step 2: nobody can list $store/keys"
else
    echo "ok: step 2: nobody cannot list the key directory"
fi
as_nobody cat "$bundle" >/dev/null 2>&1 || fail "step 2: nobody cannot read the bundle $bundle"
as_nobody cat "$store/trust/root.pem" >/dev/null 2>&1 ||
    fail "step 2: nobody cannot read the Root/System bundle"

# ---- 3. a trust directory with a wrong mode --------------------------------------
chmod 0700 "$capath"
if dm store check; then
    fail "step 3: store check passes with $capath at 0700"
elif grep -q "^dmclient: store check: $capath: mode 0700, expected 0755\$" "$tmp/err"; then
    echo "ok: step 3: store check reports $capath (exit 1)"
else
    fail "step 3: store check does not name $capath, 0700 and 0755:"
    cat "$tmp/err"
fi
verify_as_nobody "step 3, CApath 0700" fails

# the next write into Root/System gives the directory its mode back
msg_begin "$tmp/msg.xml"
m_cmd Add "$CS/Root/System/$ROOT2/EncodedCertificate" b64 "$(cat "$pki/root2.b64")"
msg_end
process "add root2" "SyncHdr 200,Add 200,"
mode=$(stat -c %a "$capath")
[ "$mode" = 755 ] || fail "step 3: after a write into Root/System its CApath is $mode, not 755"
store_check_ok "step 3"
verify_as_nobody "step 3, after the write" ok

# store check --repair: wrong modes of a trust directory, a bundle and the key
# directory are fixed and no longer reported; a second check passes
rootpem=$(dirname "$capath")/$(basename "$capath").pem
chmod 0700 "$capath"
chmod 0600 "$rootpem"
chmod 0755 "$state/store/keys"
if dm store check; then
    fail "step 4: store check passes with three wrong modes"
fi
if dm store check --repair; then
    m="$(stat -c %a "$capath") $(stat -c %a "$rootpem") $(stat -c %a "$state/store/keys")"
    if [ "$m" = "755 644 700" ]; then
        echo "ok: step 4: store check --repair restored 0755, 0644, 0700"
    else
        fail "step 4: after store check --repair the modes are $m, not 755 644 700"
    fi
else
    fail "step 4: store check --repair left problems:"
    cat "$tmp/err"
fi
store_check_ok "step 4"
verify_as_nobody "step 4, after the repair" ok

finish test-store-perms
