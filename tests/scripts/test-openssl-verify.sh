#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-openssl-verify.sh BUILD_DIR
#
# The certificate store as other software on the device sees it: certificates
# a server installs through the CertificateStore and RootCATrustedCertificates
# CSPs must make `openssl verify` trust exactly what they should, through the
# CApath directories and PEM bundles that `dmclient store paths` prints
# (docs/certificatestore.md, "For other software on the device").
#
# In a fresh state directory, with the test PKI of tests/data/pki:
#   0. empty store: leaf.pem does not verify (also not with the intermediate
#      given directly)
#   1. one message adds the root through CertificateStore/Root/System and the
#      intermediate through RootCATrustedCertificates/CA: leaf.pem (and
#      template.pem) verify OK with -CApath <Root/System CApath> -untrusted
#      <CA/System bundle>; the CApath files are named <subject hash>.0 as
#      `openssl rehash` names them
#   2. Delete of the root (CertificateStore): verification fails again
#   3. the root added again, through RootCATrustedCertificates/Root: OK
#   4. Delete of the root through RootCATrustedCertificates/Root: fails
# `dmclient store check` must pass after every step, and dmclient must write
# nothing on stderr (a sanitizer report fails the test).
#
# Needs: openssl (the CLI), POSIX sh, sed, grep.  Exits 0 on success.
set -u

build=${1:?usage: test-openssl-verify.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
pki=$here/../data/pki
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
command -v openssl >/dev/null 2>&1 || { echo "FAIL: openssl CLI not found"; exit 1; }

scratch_dir openssl-verify
state=$tmp/state
mkdir "$state" # the device's state directory (read-only commands create none)

# a fixed verification time inside the test PKI's validity (2025..2045):
# 2030-01-01T00:00:00Z, so the test does not depend on the clock
attime=1893456000

ROOT=$(cat "$pki/root.sha1")
INTER=$(cat "$pki/inter.sha1")
ROOT_B64=$(cat "$pki/root.b64")
INTER_B64=$(cat "$pki/inter.b64")
CS=./Vendor/MSFT/CertificateStore
RCA=./Device/Vendor/MSFT/RootCATrustedCertificates

untrusted=

# dm ARGS...: run dmclient on the state dir; stdout to $tmp/out, stderr must be empty
dm() {
    "$dmclient" --state-dir "$state" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ -s "$tmp/err" ]; then
        fail "dmclient $*: wrote on stderr:"
        cat "$tmp/err"
    fi
    return $rc
}

store_check() {
    if ! dm store check; then
        fail "dmclient store check after $1"
        cat "$tmp/out"
    fi
}

# process WHAT EXPECTED: send $tmp/msg.xml (lib/syncml.sh); the reply's "Cmd code" pairs must be EXPECTED
process() {
    if ! dm process "$tmp/msg.xml"; then
        fail "$1: dmclient process failed"
        return
    fi
    got=$(reply_codes "$tmp/out")
    [ "$got" = "$2" ] || fail "$1: reply statuses '$got', expected '$2'"
}

# verify WHAT ok|fails CERT...: openssl verify against the store's paths
# (-untrusted: $untrusted if set, else the CA/System bundle)
verify() {
    what=$1 want=$2
    shift 2
    dm store paths || { fail "$what: dmclient store paths"; return; }
    capath=$(sed -n 's|^Root/System  *CApath \(.*\)$|\1|p' "$tmp/out")
    bundle=$(sed -n '/^CA\/System /{n;s|^ *bundle \(.*\)$|\1|p;}' "$tmp/out")
    [ -d "$capath" ] || { fail "$what: Root/System CApath '$capath' is not a directory"; return; }
    [ -f "$bundle" ] || { fail "$what: CA/System bundle '$bundle' is not a file"; return; }
    for cert in "$@"; do
        out=$(openssl verify -no-CAfile -no-CAstore -attime "$attime" -CApath "$capath" \
            -untrusted "${untrusted:-$bundle}" "$pki/$cert" 2>&1)
        rc=$?
        case $want in
        ok)
            if [ $rc -ne 0 ] || [ "$out" != "$pki/$cert: OK" ]; then
                fail "$what: openssl verify $cert: expected OK, got (exit $rc):"
                echo "$out"
            else
                echo "ok: $what: $cert verifies"
            fi
            ;;
        fails)
            if [ $rc -eq 0 ]; then
                fail "$what: openssl verify $cert: expected a failure, got OK:"
                echo "$out"
            else
                why=$(echo "$out" | grep '^error [0-9]' | head -n 1)
                echo "ok: $what: $cert does not verify (${why:-$(echo "$out" | head -n 1)})"
            fi
            ;;
        esac
    done
}

# capath_names WHAT STORE PEM...: the CApath of STORE holds exactly the names
# `openssl rehash` gives PEM... (<subject hash>.0, as `openssl x509 -hash`),
# each holding that certificate
capath_names() {
    what=$1 label=$2
    shift 2
    dm store paths || { fail "$what: dmclient store paths"; return; }
    dir=$(sed -n "s|^$label  *CApath \\(.*\\)\$|\\1|p" "$tmp/out")
    ref=$tmp/rehash
    rm -rf "$ref"
    mkdir "$ref"
    want=
    for pem in "$@"; do
        cp "$pki/$pem" "$ref/"
        h=$(openssl x509 -hash -noout -in "$pki/$pem")
        want="$want $h.0"
        if [ -f "$dir/$h.0" ]; then
            a=$(cert_thumbprint "$dir/$h.0")
            b=$(cat "$pki/${pem%.pem}.sha1")
            [ "$a" = "$b" ] || fail "$what: $label CApath $h.0 holds $a, not $pem ($b)"
        else
            fail "$what: $label CApath has no $h.0 (openssl x509 -hash of $pem)"
        fi
    done
    openssl rehash "$ref" >/dev/null 2>&1 || fail "$what: openssl rehash failed"
    names=$(names_in "$dir")
    rehashed=$(names_in "$ref" .pem)
    [ "$names" = "$rehashed" ] ||
        fail "$what: $label CApath holds '$names', openssl rehash names '$rehashed'"
    want=$(for w in $want; do echo "$w"; done | sort | tr '\n' ' ')
    [ "$names" = "$want" ] ||
        fail "$what: $label CApath holds '$names', expected '$want'"
}

# names_in DIR [SUFFIX]: the names in DIR (without those ending in SUFFIX), sorted, one line
names_in() {
    for f in "$1"/* "$1"/.[!.]*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        f=${f##*/}
        case $f in *"${2:-/}") continue ;; esac
        echo "$f"
    done | sort | tr '\n' ' '
}

capath_empty() {
    dm store paths || { fail "$1: dmclient store paths"; return; }
    dir=$(sed -n "s|^$2  *CApath \\(.*\\)\$|\\1|p" "$tmp/out")
    [ -z "$(names_in "$dir")" ] || fail "$1: $2 CApath not empty: $(names_in "$dir")"
}

# 0. nothing installed: fails with the store's (empty) bundle, and also with
# the intermediate given directly (then only the trusted root is missing)
verify "empty store" fails leaf.pem
untrusted=$pki/inter.pem verify "empty store, intermediate from tests/data/pki" fails leaf.pem
untrusted=
store_check "step 0"

# 1. root through CertificateStore, intermediate through RootCATrustedCertificates
msg_begin "$tmp/msg.xml"
m_cmd Add "$CS/Root/System/$ROOT/EncodedCertificate" b64 "$ROOT_B64"
m_cmd Add "$RCA/CA/$INTER/EncodedCertificate" b64 "$INTER_B64"
msg_end
process "add root + intermediate" "SyncHdr 200,Add 200,Add 200,"
store_check "step 1"
verify "root and intermediate installed" ok leaf.pem template.pem
verify "root and intermediate installed" fails root2.pem
capath_names "step 1" Root/System root.pem
capath_names "step 1" CA/System inter.pem

# 2. Delete of the root (CertificateStore)
msg_begin "$tmp/msg.xml"
m_cmd Delete "$CS/Root/System/$ROOT"
msg_end
process "delete root" "SyncHdr 200,Delete 200,"
store_check "step 2"
verify "root deleted" fails leaf.pem template.pem
capath_empty "step 2" Root/System
capath_names "step 2" CA/System inter.pem

# 3. the root again, through RootCATrustedCertificates/Root
msg_begin "$tmp/msg.xml"
m_cmd Add "$RCA/Root/$ROOT/EncodedCertificate" b64 "$ROOT_B64"
msg_end
process "re-add root" "SyncHdr 200,Add 200,"
store_check "step 3"
verify "root added again" ok leaf.pem
capath_names "step 3" Root/System root.pem

# 4. Delete through RootCATrustedCertificates
msg_begin "$tmp/msg.xml"
m_cmd Delete "$RCA/Root/$ROOT"
msg_end
process "delete root (RootCATrustedCertificates)" "SyncHdr 200,Delete 200,"
store_check "step 4"
verify "root deleted again" fails leaf.pem
capath_empty "step 4" Root/System

finish test-openssl-verify
