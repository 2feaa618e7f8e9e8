#!/bin/sh
# tests/demo.sh BUILD_DIR - the README's main job: run dmclient on a bundled
# server message in a fresh state directory and show what happened: the
# device's reply, the certificate store it leaves behind, and other
# software (openssl) trusting a certificate chain through the store.
set -eu
build=${1:?usage: tests/demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
dmclient="$build/bin/dmclient"
state=$(mktemp -d /tmp/dmclient-demo.XXXXXX)
msg="$here/data/sample-server-message.xml"

echo "== dmclient demo (state directory: $state)"
echo "== server message: $msg"
echo "   Get DevInfo; Add a root CA (CertificateStore) and an intermediate"
echo "   (RootCATrustedCertificates); an Atomic that fails on its last Add"
echo "   (rolled back); Get Root/System?list=StructData"
echo
echo "== device reply (dmclient process), statuses:"
"$dmclient" --state-dir "$state" process "$msg" > "$state/reply.xml"
xmllint --xpath '//*[local-name()="Status"]' "$state/reply.xml" 2>/dev/null |
    sed 's#</Status>#</Status>\n#g' |
    sed -n 's#.*<CmdRef>\([^<]*\)</CmdRef><Cmd>\([^<]*\)</Cmd>.*<Data>\([^<]*\)</Data>.*#   command \1 (\2): \3#p'
echo
echo "== the whole reply:"
xmllint --format "$state/reply.xml" | cut -c1-150
echo
echo "== the certificate store afterwards (dmclient store list):"
"$dmclient" --state-dir "$state" store list
echo
echo "== for other software on the device (dmclient store paths):"
"$dmclient" --state-dir "$state" store paths | head -4
echo
echo "== openssl trusts the leaf through the installed root and intermediate:"
openssl verify -attime 1767225600 -CApath "$state/store/trust/root" \
    -untrusted "$state/store/trust/ca.pem" "$here/data/pki/leaf.pem"
echo
echo "== dmclient store check:"
"$dmclient" --state-dir "$state" store check
