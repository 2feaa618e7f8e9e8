#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/data/state/make-newer.sh DMCLIENT FROM DIR
#
# A state as a later version of dmclient might leave it, for the rollback
# tests: the state FROM (a directory made by make-state.sh, with FROM.modes)
# is copied to DIR, DMCLIENT (this version) processes one message in its open
# session (so that tree and session are in this version's formats), and then
# the format line of every versioned file is set one version above this
# version's: tree (manifest) omadm-tree 3, session omadm-session 3, auth
# omadm-auth 2, the Root/System record omadm-cert 2, the enrollment record
# omadm-scep 2, and a store journal omadm-journal 2 (a committed batch of the
# later version that was not applied yet).  The rest of each file is this
# version's: a later version's contents are unknown, and nothing may read
# them anyway.  DIR.modes gets the modes.
#
# Needs: POSIX sh, sed, find.
set -u
dmclient=${1:?usage: make-newer.sh DMCLIENT FROM DIR}
from=${2:?usage: make-newer.sh DMCLIENT FROM DIR}
dir=${3:?usage: make-newer.sh DMCLIENT FROM DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/lib/syncml.sh
. "$here/../../scripts/lib/syncml.sh"
[ -e "$dir" ] && { echo "make-newer.sh: $dir exists" >&2; exit 1; }
cp -R "$from" "$dir" || exit 1
while read -r mode type path; do
    [ "$type" = d ] && mkdir -p "$dir/$path"
    chmod "$mode" "$dir/$path"
done <"$from.modes"
msg=$(mktemp) || exit 1
trap 'rm -f "$msg" "$msg.reply"' EXIT
# the session make-state.sh left open: SessionID 1, the server's MsgID 2
msg_begin "$msg"
sed -i 's|<MsgID>1</MsgID>|<MsgID>2</MsgID>|' "$msg"
m_cmd Replace ./Vendor/Acme/Greeting chr "written by a later dmclient"
msg_end
"$dmclient" --state-dir "$dir" process "$msg" >"$msg.reply" || exit 1
bump() { sed -i "1s/.*/$2/" "$dir/$1" || exit 1; }
bump tree "omadm-tree 3"
bump session "omadm-session 3"
bump auth "omadm-auth 2"
bump "store/certs/root/$(cat "$here/../pki/root.sha1")" "omadm-cert 2"
for f in "$dir"/store/state/scep-*; do bump "store/state/${f##*/}" "omadm-scep 2"; done
printf 'omadm-journal 2\nwhat a later version commits\n' >"$dir/store/journal"
chmod 600 "$dir/store/journal"
(cd "$dir" && find . -mindepth 1 -printf '%m %y %P\n' | LC_ALL=C sort -k3) >"$dir.modes"
