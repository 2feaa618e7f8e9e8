#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scep/build.sh OUTDIR - build the SCEP test bed's Go programs into OUTDIR:
#   OUTDIR/scep-pending-peer   PENDING-capable SCEP server (tests/scep/pending-peer)
#   OUTDIR/scep-test-client    SCEP client that polls with CertPoll (tests/scep/test-client)
# Offline, in GOPATH mode, against Debian's Go libraries in /usr/share/gocode
# (packages golang-go and golang-github-micromdm-scep-dev; setup.sh installs
# them).  Cached: a program is rebuilt only when its source, this script, the
# Go version or the library version changed.  Exit status 0 when both binaries
# are up to date; otherwise a message on stderr and non-zero.
set -eu
out=${1:?usage: tests/scep/build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
gocode=/usr/share/gocode
lib=$gocode/src/github.com/micromdm/scep

die() { echo "tests/scep/build.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 ||
    die "the Go toolchain (go) is missing: apt-get install golang-go (or run ./setup.sh)"
for d in "$lib/scep" "$lib/server" "$lib/depot/file" "$gocode/src/go.mozilla.org/pkcs7" \
         "$gocode/src/github.com/go-kit/kit/log"; do
    [ -d "$d" ] || die "Go library missing: $d (apt-get install golang-github-micromdm-scep-dev, or run ./setup.sh)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
gp=$out/.gopath
# Debian installs the library without the /v2 directory its own import paths use
mkdir -p "$gp/src/github.com/micromdm/scep"
[ "$(readlink "$gp/src/github.com/micromdm/scep/v2" 2>/dev/null)" = "$lib" ] ||
    ln -sfn "$lib" "$gp/src/github.com/micromdm/scep/v2"

# offline GOPATH build; nothing from the caller's Go environment leaks in
export GO111MODULE=off GOPATH="$gp:$gocode" GOFLAGS='' GOENV=off GOPROXY=off GOWORK=off \
       GOCACHE="${GOCACHE:-$out/.gocache}"
[ -n "${HOME:-}" ] || export HOME="$out"

libver=$(dpkg-query -W -f='${Version}' golang-github-micromdm-scep-dev 2>/dev/null || echo unknown)
gover=$(go version)

build() { # build NAME SRCDIR
    name=$1 src=$2
    stamp=$( { cat "$src"/*.go "$here/build.sh"; echo "$gover $libver"; } | sha256sum | cut -d' ' -f1)
    if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "tests/scep/build.sh: building $out/$name"
    (cd "$src" && go build -o "$out/.$name.tmp" .) ||
        die "go build of $src failed (GOPATH=$GOPATH)"
    mv -f "$out/.$name.tmp" "$out/$name"
    echo "$stamp" >"$out/.$name.stamp"
}
build scep-pending-peer "$here/pending-peer"
build scep-test-client "$here/test-client"
