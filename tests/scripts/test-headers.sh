#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-headers.sh BUILD_DIR
#
# Every public header in include/omadm/, as a host includes it
# (#include <omadm/NAME.h>, -I include only):
#   1. compiles on its own as C: -std=c99 and -std=c11, -pedantic -Wall
#      -Wextra -Werror (included twice, so the include guard is checked too);
#   2. compiles on its own as C++: -std=c++11, same warnings;
#   3. has extern "C" guards;
#   4. links: a C and a C++ program that take the address of every function
#      the header declares OMADM_API (and call one of them) link against
#      BUILD_DIR/lib/libomadm.a, so every declaration has C linkage in C++
#      and a definition the archive exports.
# One PASS or FAIL line per check; exit 1 when any failed.
#
# Needs: a C compiler ($CC, default cc) and a C++ compiler ($CXX, default
# c++), nm, pkg-config (for the libraries the archive needs: the
# Requires.private of BUILD_DIR/lib/pkgconfig/omadm.pc; else -lxml2 -lcrypto).
set -u

build=${1:?usage: test-headers.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
inc=$top/include
lib=$build/lib/libomadm.a
CC=${CC:-cc}
CXX=${CXX:-c++}

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

for tool in "$CC" "$CXX" nm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL $tool not found"; exit 1; }
done
[ -f "$lib" ] || { echo "FAIL $lib missing (build first)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-headers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# what the archive needs from the system, and the sanitizers when it was built with them
reqs=$(sed -n 's/^Requires.private: *//p' "$build/lib/pkgconfig/omadm.pc" 2>/dev/null)
# shellcheck disable=SC2086  # reqs is a list of package names
libs=$(pkg-config --libs ${reqs:-libxml-2.0 libcrypto} 2>/dev/null) || libs="-lxml2 -lcrypto"
san=
if nm "$lib" 2>/dev/null | grep -q '__asan_\|__ubsan_'; then
    san="-fsanitize=address,undefined"
fi
warn="-pedantic -Wall -Wextra -Werror"

# run LABEL LOG COMMAND...: PASS/FAIL LABEL by the command's exit status
run() {
    label=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then
        pass "$label"
    else
        fail "$label"
        sed 's/^/    /' "$log" | head -n 30
    fi
}

# calls NAME: a statement that calls one function of header NAME (a host's
# first call), or nothing when the header has no known one
calls() {
    case $1 in
    omadm.h) echo 'if (!omadm_version()[0] || !omadm_strerror(OMADM_OK)[0]) return 1;' ;;
    omadm_certstore.h) echo 'if (omadm_certstore_kind_find("root", 0) != OMADM_OK) return 1;' ;;
    esac
}

headers=$(cd "$inc/omadm" && ls -- *.h 2>/dev/null)
[ -n "$headers" ] || { echo "FAIL no headers in $inc/omadm"; exit 1; }

for h in $headers; do
    base=${h%.h}
    # 1, 2: on its own (twice: the include guard)
    printf '#include <omadm/%s>\n#include <omadm/%s>\n' "$h" "$h" >"$tmp/$base-alone.c"
    cp "$tmp/$base-alone.c" "$tmp/$base-alone.cc"
    for std in c99 c11; do
        run "$h: alone as C ($std)" "$tmp/$base-$std.log" \
            "$CC" -std=$std $warn -I "$inc" -fsyntax-only "$tmp/$base-alone.c"
    done
    run "$h: alone as C++ (c++11)" "$tmp/$base-cxx.log" \
        "$CXX" -std=c++11 $warn -I "$inc" -fsyntax-only "$tmp/$base-alone.cc"

    # 3: extern "C"
    if grep -q 'extern "C" {' "$inc/omadm/$h" && grep -q '^#ifdef __cplusplus' "$inc/omadm/$h"; then
        pass "$h: extern \"C\" guards"
    else
        fail "$h: extern \"C\" guards"
    fi

    # 4: every OMADM_API function, from C and from C++, against the archive
    fns=$(tr '\n' ' ' <"$inc/omadm/$h" | grep -o 'OMADM_API[^;(]*(' |
        sed 's/($//; s/.*[ *]//' | grep '^omadm_' | sort -u)
    if [ -z "$fns" ]; then
        fail "$h: declares no OMADM_API function"
        continue
    fi
    {
        printf '#include <omadm/%s>\n#include <stdio.h>\n' "$h"
        printf '%s\n' 'typedef void (*any_fn)(void);' 'static const any_fn all[] = {'
        for f in $fns; do
            printf '    (any_fn)%s,\n' "$f"
        done
        printf '%s\n' '};' 'int main(void)' '{' \
            '    printf("%u functions\n", (unsigned)(sizeof all / sizeof all[0]));' \
            '    for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)' \
            '        if (!all[i]) return 1;'
        printf '    %s\n' "$(calls "$h")"
        printf '%s\n' '    return 0;' '}'
    } >"$tmp/$base-link.c"
    sed 's/(any_fn)\(omadm_[a-z_0-9]*\)/reinterpret_cast<any_fn>(\&\1)/' "$tmp/$base-link.c" \
        >"$tmp/$base-link.cc"
    n=$(echo "$fns" | wc -w)
    run "$h: $n functions link from C against libomadm.a" "$tmp/$base-link-c.log" \
        "$CC" -std=c11 $warn $san -I "$inc" -o "$tmp/$base-c" "$tmp/$base-link.c" "$lib" $libs -pthread
    if [ -x "$tmp/$base-c" ]; then
        run "$h: the C program runs" "$tmp/$base-run-c.log" "$tmp/$base-c"
    fi
    run "$h: $n functions link from C++ against libomadm.a" "$tmp/$base-link-cxx.log" \
        "$CXX" -std=c++11 $warn $san -I "$inc" -o "$tmp/$base-cxx" "$tmp/$base-link.cc" "$lib" $libs \
        -pthread
    if [ -x "$tmp/$base-cxx" ]; then
        run "$h: the C++ program runs" "$tmp/$base-run-cxx.log" "$tmp/$base-cxx"
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "test-headers: $failures check(s) failed"
    exit 1
fi
echo "test-headers: all passed"
exit 0
