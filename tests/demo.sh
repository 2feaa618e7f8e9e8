#!/bin/sh
# tests/demo.sh BUILD_DIR - the README's main job: run dmclient on a bundled
# server message in a fresh state directory and show what happened.
set -eu
build=${1:?usage: tests/demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
dmclient="$build/bin/dmclient"
state=$(mktemp -d /tmp/dmclient-demo.XXXXXX)
msg="$here/data/sample-server-message.xml"

echo "== dmclient demo (state directory: $state)"
echo "== server message: $msg"
echo "   Get DevInfo, Add two settings (parents created implicitly),"
echo "   an Atomic that fails half-way (rolled back), Get ?list=StructData"
echo
echo "== device reply (dmclient process):"
"$dmclient" --state-dir "$state" process "$msg" | xmllint --format -
echo
echo "== the tree afterwards, read back by a new dmclient process:"
for uri in ./Vendor/Demo/Settings ./Vendor/Demo/Settings/Greeting ./Vendor/Demo/Settings/Interval; do
    printf '   dmclient get %-34s -> %s\n' "$uri" "$("$dmclient" --state-dir "$state" get "$uri")"
done
printf '   dmclient get %-34s -> ' ./Vendor/Demo/Settings/Mode
"$dmclient" --state-dir "$state" get ./Vendor/Demo/Settings/Mode 2>&1 || true
