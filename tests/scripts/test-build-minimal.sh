#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-build-minimal.sh BUILD_DIR - the library builds with only
# libxml2 and OpenSSL.
#
# A nested scons in BUILD_DIR/minimal sees, through PKG_CONFIG_LIBDIR, a
# directory that holds only the .pc files of libxml2 and OpenSSL (libxml-2.0,
# openssl, libssl, libcrypto and what they require), as on a machine with only
# those two -dev packages.  `scons lib` and the default target must build
# libomadm.a and libomadm.so and say that dmclient (libcurl) and the tests
# (cmocka) are left out; the shared library must need nothing else; `scons
# check` must stop with a clear message.  Runs once: the sanitizer build
# directory skips it.
set -u
build=${1:?usage: tests/scripts/test-build-minimal.sh BUILD_DIR}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
top=$(cd "$(dirname "$0")/../.." && pwd)

case $(basename "$build") in
*-san)
    echo "SKIP minimal: runs once, with the build directory without sanitizers"
    exit 0 ;;
esac

out=$build/minimal
fail=0
pass() { echo "PASS minimal: $*"; }
failed() { echo "FAIL minimal: $*"; fail=1; }
now() { date +%s; }
start=$(now)

unset CC CFLAGS CPPFLAGS LDFLAGS AR RANLIB OBJCOPY PKG_CONFIG PKG_CONFIG_PATH \
      PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR CROSS_COMPILE
cd "$top" || exit 1
rm -rf "$out"
mkdir -p "$out/pkgconfig"

# The .pc files of libxml2 and OpenSSL, and of everything they require.
todo="libxml-2.0 openssl libssl libcrypto"
while [ -n "$todo" ]; do
    next=
    for p in $todo; do
        [ -f "$out/pkgconfig/$p.pc" ] && continue
        dir=$(pkg-config --variable=pcfiledir "$p") || { failed "pkg-config does not know $p"; exit 1; }
        cp "$dir/$p.pc" "$out/pkgconfig/"
        next="$next $(pkg-config --print-requires --print-requires-private "$p" | awk '{print $1}')"
    done
    todo=$next
done
seen=
for f in "$out"/pkgconfig/*.pc; do seen="$seen $(basename "$f" .pc)"; done
pass "pkg-config sees only:$seen"
export PKG_CONFIG_LIBDIR="$out/pkgconfig"
for p in libcurl cmocka libwbxml2; do
    if pkg-config --exists "$p"; then
        failed "pkg-config still finds $p"
    fi
done

t0=$(now)
if scons -Q -j2 werror=1 builddir="$out/build" lib >"$out/lib.log" 2>&1; then
    pass "scons lib ($(($(now) - t0)) s)"
else
    failed "scons lib (log: $out/lib.log)"
    tail -n 30 "$out/lib.log"
fi
t0=$(now)
if scons -Q -j2 werror=1 builddir="$out/build" >"$out/default.log" 2>&1; then
    pass "scons, the default target ($(($(now) - t0)) s)"
else
    failed "scons, the default target (log: $out/default.log)"
    tail -n 30 "$out/default.log"
fi
for f in lib/libomadm.a lib/libomadm.so lib/pkgconfig/omadm.pc; do
    [ -e "$out/build/$f" ] || failed "$f was not built"
done
if grep -q 'libcurl not found: dmclient is not built' "$out/default.log" &&
   grep -q 'cmocka not found: the tests are not built' "$out/default.log" &&
   [ ! -e "$out/build/bin/dmclient" ] && ! ls "$out"/build/tests/test_* >/dev/null 2>&1; then
    pass "dmclient (needs libcurl) and the tests (need cmocka) are skipped, and scons says so"
else
    failed "dmclient and the tests should be skipped with a message (log: $out/default.log)"
fi

# Nothing of libcurl, libwbxml2 or cmocka in the library.
needed=$(readelf -d "$out/build/lib/libomadm.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
extra=$(echo "$needed" | tr ' ' '\n' | grep -Ev '^(libxml2|libcrypto|libc|libpthread|ld-linux.*)\.so' | grep .)
undef=$(nm -u "$out/build/lib/libomadm.a" | grep -E ' (curl_|wbxml_|_?cmocka|_assert_|_mock)' | awk '{print $2}')
if [ -z "$extra" ] && [ -z "$undef" ]; then
    pass "libomadm.so needs only: $needed"
else
    failed "the library uses more than libxml2 and OpenSSL: $extra $undef"
fi

if scons -Q builddir="$out/build" check >"$out/check.log" 2>&1; then
    failed "scons check passed without libcurl and cmocka (log: $out/check.log)"
elif grep -q '^scons: libcurl is needed for this target' "$out/check.log"; then
    pass "scons check stops: $(grep -m1 '^scons: .* is needed' "$out/check.log")"
else
    failed "scons check failed without saying what is missing (log: $out/check.log)"
fi
echo "$( [ $fail = 0 ] && echo PASS || echo FAIL ) minimal: total $(($(now) - start)) s"
exit $fail
