#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# setup.sh - install the Debian packages the build and the tests need
# (only those missing).  Run as root on Debian 12.
#
# clang and its runtime libraries (libclang-rt-14-dev: libFuzzer, the
# sanitizers; only a recommendation of clang) build the fuzz targets
# (`scons fuzz`, run briefly by the test command; docs/testing.md).
#
# Besides the native build it installs what the arm64 cross build test
# (tests/scripts/test-cross-arm64.sh) needs: Debian's cross compiler, qemu-user
# to run the results, and the arm64 -dev packages of the libraries
# (multiarch: they install beside the native ones; docs/building.md).
set -eu
pkgs="gcc g++ libc6-dev pkg-config scons libxml2-dev libxml2-utils libwbxml2-dev libwbxml2-utils
      libssl-dev openssl libcurl4-openssl-dev libcmocka-dev liblzma-dev python3 python3-cryptography valgrind
      scep golang-go golang-github-micromdm-scep-dev iproute2 curl procps time
      crossbuild-essential-arm64 qemu-user file clang libclang-rt-14-dev man-db groff-base
      systemd swtpm swtpm-tools tpm2-openssl tpm2-tools libtss2-tcti-swtpm0 libtss2-dev"
# swtpm and swtpm-tools (swtpm_setup) are the software TPM 2.0 of the TPM key
# tests, tpm2-openssl the OpenSSL provider the library reaches a TPM through
# (on libtss2-tcti-swtpm0 for swtpm), tpm2-tools and libtss2-dev (ESAPI) what
# TPM2_Import is built and checked with (docs/keys.md);
# g++ builds the C++ host of the header and install tests; liblzma-dev
# completes what a static link of libxml2 needs (tests/scripts/test-install.sh);
# clang with its runtime (libFuzzer, sanitizers) builds the fuzz targets;
# GNU time measures peak RSS in bench/startup.sh; man-db and groff-base render
# the manual pages (tests/scripts/test-man.sh); systemd brings systemd-analyze,
# which checks the installed service unit; python3-cryptography signs the
# certificates of the MS-WSTEP renewal peer (tests/wstep/).
# arm64 libraries for the cross build.  libwbxml2-dev is not among them: it is
# not Multi-Arch: same in Debian 12 and would replace the native one (the cross
# build leaves out test_codec_wbxml instead).
cross_arch=arm64
cross_pkgs="libxml2-dev libssl-dev libcurl4-openssl-dev libcmocka-dev"

# Packages of the list that are not installed for architecture $1: a package
# of another architecture does not count (libssl-dev:arm64 is not the native
# libssl-dev, nor the other way round).
missing_for() {
    arch=$1
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
            grep -Eq "install ok installed ($arch|all)\$" || printf ' %s:%s' "$p" "$arch"
    done
}

native=$(dpkg --print-architecture)
# shellcheck disable=SC2086
missing="$(missing_for "$native" $pkgs)"
if [ "$native" != "$cross_arch" ]; then
    # shellcheck disable=SC2086
    missing="$missing$(missing_for "$cross_arch" $cross_pkgs)"
fi
if [ -n "$missing" ]; then
    echo "setup.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$native" != "$cross_arch" ] &&
       ! dpkg --print-foreign-architectures | grep -qx "$cross_arch"; then
        echo "setup.sh: dpkg --add-architecture $cross_arch"
        dpkg --add-architecture "$cross_arch"
    fi
    apt-get update -qq
    # --no-remove: never take away a package to make room; fail instead
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends --no-remove $missing >/dev/null
fi
