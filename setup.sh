#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# setup.sh - install the Debian packages the build and the tests need
# (only those missing).  Run as root on Debian 12.
set -eu
pkgs="gcc libc6-dev pkg-config scons libxml2-dev libxml2-utils libwbxml2-dev libwbxml2-utils
      libssl-dev openssl libcurl4-openssl-dev libcmocka-dev python3 valgrind
      scep golang-go golang-github-micromdm-scep-dev iproute2 curl procps"
missing=""
arch=$(dpkg --print-architecture)
for p in $pkgs; do
    # the native package: a foreign-architecture one (see the cross build) does not count
    dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
        grep -Eq "install ok installed ($arch|all)\$" || missing="$missing $p:$arch"
done
if [ -n "$missing" ]; then
    echo "setup.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
