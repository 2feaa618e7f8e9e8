#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/data/state/make-state.sh DMCLIENT DIR [NOTE]
#
# Writes a device state with DMCLIENT (a dmclient of an earlier version, built
# from an earlier commit: tests/data/state/README.md) into DIR, which must not
# exist, and the modes of its files and directories into DIR.modes (git keeps
# neither modes nor empty directories; tests/scripts/test-state-upgrade.sh
# gives them back): one server message adds the node ./Vendor/Acme/Greeting
# (value NOTE),
# the test root into Root/System, the intermediate into CA/System, the leaf into
# My/System and, where DMCLIENT has SCEP enrollment, an enrollment
# (./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/Old1) whose CA cannot be
# reached, so that its record waits in the store.  Where DMCLIENT has `session`,
# a session with a server that cannot be reached writes DIR/auth first.  The
# message's session (SessionID 1) is left open, so DIR/session holds it.
#
# Needs: POSIX sh, openssl(1), base64.
set -u
dmclient=${1:?usage: make-state.sh DMCLIENT DIR [NOTE]}
dir=${2:?usage: make-state.sh DMCLIENT DIR [NOTE]}
note=${3:-written by an earlier dmclient}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/syncml.sh
. "$here/../../scripts/lib/syncml.sh"
pki=$here/../pki
[ -e "$dir" ] && { echo "make-state.sh: $dir exists" >&2; exit 1; }
mkdir -p "$dir" || exit 1
msg=$(mktemp) || exit 1
trap 'rm -f "$msg"' EXIT

has_session=
"$dmclient" --help 2>/dev/null | grep -q '^ *session' && has_session=1
has_scep=
strings "$dmclient" | grep -q 'omadm-scep 1' && has_scep=1

if [ -n "$has_session" ]; then
    # omadm_session_begin writes the session counter (auth) before it sends
    "$dmclient" --state-dir "$dir" session --server http://127.0.0.1:9/dm >/dev/null 2>&1
    [ -f "$dir/auth" ] || { echo "make-state.sh: no auth written" >&2; exit 1; }
fi

msg_begin "$msg"
m_cmd Add ./Vendor/Acme node
m_cmd Add ./Vendor/Acme/Greeting chr "$note"
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$(cat "$pki/root.sha1")/EncodedCertificate" b64 "$(cat "$pki/root.b64")"
m_cmd Add "./Vendor/MSFT/RootCATrustedCertificates/CA/$(cat "$pki/inter.sha1")/EncodedCertificate" b64 "$(cat "$pki/inter.b64")"
m_cmd Add "./Vendor/MSFT/CertificateStore/My/System/$(cat "$pki/leaf.sha1")/EncodedCertificate" b64 "$(cat "$pki/leaf.b64")"
if [ -n "$has_scep" ]; then
    m_scep_enroll ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/Old1 http://127.0.0.1:9/scep \
        "$(cat "$pki/root.sha1")" secret 3 2048 CN=old-device
fi
msg_end
"$dmclient" --state-dir "$dir" process "$msg" >"$msg.reply" || exit 1
codes=$(reply_codes "$msg.reply")
rm -f "$msg.reply"
case $codes in
*' 2'[0-9][0-9],*) ;;
*) echo "make-state.sh: reply $codes" >&2; exit 1 ;;
esac
echo "$codes"
(cd "$dir" && find . -mindepth 1 -printf '%m %y %P\n' | LC_ALL=C sort -k3) >"$dir.modes"
