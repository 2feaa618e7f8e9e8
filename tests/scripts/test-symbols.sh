#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-symbols.sh BUILD_DIR
#
# Nothing of ours collides with a host's names: every symbol that a library in
# BUILD_DIR/lib defines globally must start with omadm_ (the public API; a
# reserved internal prefix would start with omadm_ too).  Allowed besides:
#   - the version nodes of libomadm.map (OMADM_<n>, absolute symbols of the
#     shared library);
#   - in a sanitizer build only, what the sanitizers bring: their runtime's
#     symbols (__asan_*, __ubsan_*, __sanitizer_* ...), and the ODR indicators
#     ASan makes for a global (__odr_asan.NAME), when NAME itself is allowed.
#     An indicator of an unprefixed global of ours is our own symbol: it fails.
# Checked with nm:
#   - every *.a: `nm -g --defined-only`; its only member is the pre-linked
#     object lib/libomadm-all.o;
#   - every *.so*: `nm -D --defined-only` (what a program can bind to) and
#     `nm -g --defined-only` (the symbol table); the SONAME of libomadm is
#     libomadm.so.<MAJOR>, MAJOR from include/omadm/omadm.h.
# Self-test first, so that a pass means something: the checker must flag an
# archive of the raw objects (BUILD_DIR/{omadm,csp,store}/*.o, the old kind of
# libomadm.a) plus a canary object that defines read_file, agreeing with
# readelf on the offenders, and a small shared library that exports read_file
# beside an OMADM_0 version node.
#
# Needs: nm, ar, readelf (binutils), cc, sed, sort.  Exits 0 when all passed.
set -u

build=${1:?usage: test-symbols.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}

scratch_dir symbols

pass() { echo "PASS: $*"; }

major=$(sed -n 's/^#define OMADM_VERSION_MAJOR \([0-9][0-9]*\).*/\1/p' "$root/include/omadm/omadm.h")
[ -n "$major" ] || { echo "FAIL: no OMADM_VERSION_MAJOR in include/omadm/omadm.h"; exit 1; }

# A sanitizer build references the sanitizer runtime from its objects.
sanitized=0
if ls "$build"/lib/*.a >/dev/null 2>&1 &&
    nm -u "$build"/lib/*.a 2>/dev/null | grep -q '__asan_\|__ubsan_'; then
    sanitized=1
    echo "note: sanitizer build: symbols of the sanitizer runtime are allowed"
fi

# allowed TYPE NAME: 0 when a defined global NAME (nm type TYPE) is in our namespace
allowed() {
    case $2 in
    omadm_*) return 0 ;;
    esac
    if [ "$1" = A ]; then
        case $2 in
        OMADM_[0-9]*) return 0 ;; # version node (libomadm.map)
        esac
    fi
    [ "$sanitized" = 1 ] || return 1
    case $2 in
    __asan_* | ___asan_* | __ubsan_* | __sanitizer_* | __lsan_* | __interceptor_* | __sancov_*)
        return 0 ;;
    __odr_asan.* | __odr_asan_gen_*)
        allowed D "${2#__odr_asan[._]}"
        return $? ;;
    esac
    return 1
}

# defined FILE NM-OPTIONS...: "TYPE NAME" of every defined global symbol
# (version suffixes @OMADM_0 / @@OMADM_0 dropped); fails when nm does
defined() {
    f=$1
    shift
    nm -A "$@" "$f" >"$tmp/nm.out" 2>"$tmp/nm.err" || {
        cat "$tmp/nm.err"
        return 1
    }
    sed -n 's/^.* \([^ ]\) \([^ @]*\)[^ ]*$/\1 \2/p' "$tmp/nm.out"
}

# offenders FILE NM-OPTIONS...: the names outside the namespace, sorted, one a line
offenders() {
    defined "$@" >"$tmp/defined" || return 1
    while read -r type name; do
        allowed "$type" "$name" || echo "$name"
    done <"$tmp/defined" | sort -u
}

# check FILE NM-OPTIONS...: PASS/FAIL for one library and one view of it
check() {
    f=$1
    shift
    what="nm $* ${f#"$build"/}"
    if ! offenders "$f" "$@" >"$tmp/bad"; then
        fail "$what: nm failed"
        return
    fi
    total=$(wc -l <"$tmp/defined")
    if ! grep -q '^T omadm_new$' "$tmp/defined"; then
        fail "$what: omadm_new is not defined ($total global symbols): not the library?"
    fi
    n=$(wc -l <"$tmp/bad")
    if [ "$n" -ne 0 ]; then
        fail "$what: $n of $total global symbols outside the omadm_ namespace:"
        sed 's/^/    /' "$tmp/bad"
    else
        pass "$what: all $total global symbols in the namespace"
    fi
}

# ---- self-test ---------------------------------------------------------------

# expected_offenders ARCHIVE: the same set from readelf's symbol tables
expected_offenders() {
    readelf -sW "$1" | awk '$5 == "GLOBAL" || $5 == "WEAK" || $5 == "UNIQUE" {
        if ($7 != "UND" && NF >= 8) print ($7 == "ABS" ? "A" : "D"), $8 }' |
        while read -r type name; do
            allowed "$type" "$name" || echo "$name"
        done | sort -u
}

self_test_archive() {
    cat >"$tmp/canary.c" <<'EOF'
/* SPDX-License-Identifier: Apache-2.0 */
int omadm_selftest_ok(void);
int read_file(void);
int omadm_selftest_ok(void) { return 1; }
int read_file(void) { return 2; }
EOF
    "$cc" -c -o "$tmp/canary.o" "$tmp/canary.c" || {
        fail "self-test: cannot compile the canary object"
        return
    }
    set --
    for o in "$build"/omadm/*.o "$build"/csp/*.o "$build"/store/*.o; do
        [ -f "$o" ] && set -- "$@" "$o"
    done
    [ $# -gt 0 ] || {
        fail "self-test: no raw objects in $build/omadm, csp, store"
        return
    }
    nraw=$#
    ar rc "$tmp/raw.a" "$@" "$tmp/canary.o" || {
        fail "self-test: ar failed"
        return
    }
    offenders "$tmp/raw.a" -g --defined-only >"$tmp/raw.bad" || {
        fail "self-test: nm failed on the raw archive"
        return
    }
    expected_offenders "$tmp/raw.a" >"$tmp/raw.expected"
    n=$(wc -l <"$tmp/raw.bad")
    if ! grep -qx read_file "$tmp/raw.bad"; then
        fail "self-test: the checker missed the canary's read_file in an archive of the raw objects"
    elif grep -qx omadm_selftest_ok "$tmp/raw.bad"; then
        fail "self-test: the checker flagged omadm_selftest_ok"
    elif ! cmp -s "$tmp/raw.bad" "$tmp/raw.expected"; then
        fail "self-test: nm and readelf disagree on the raw archive's offenders (< nm, > readelf):"
        diff "$tmp/raw.bad" "$tmp/raw.expected" | sed -n 's/^[<>]/    &/p' | head -n 40
    else
        sample=$(grep -vx read_file "$tmp/raw.bad" | head -n 6 | tr '\n' ' ')
        pass "self-test: an archive of the $nraw raw objects and the canary has $n symbols outside the namespace, as readelf says (${sample}...)"
    fi
}

self_test_shared() {
    cat >"$tmp/canary.map" <<'EOF'
OMADM_0 {
    global:
        omadm_selftest_ok;
        read_file;
    local:
        *;
};
EOF
    "$cc" -shared -fPIC -o "$tmp/libcanary.so" "$tmp/canary.c" \
        -Wl,--version-script="$tmp/canary.map" || {
        fail "self-test: cannot link the canary shared library"
        return
    }
    for view in "-D --defined-only" "-g --defined-only"; do
        offenders "$tmp/libcanary.so" $view >"$tmp/so.bad" || {
            fail "self-test: nm $view failed on the canary library"
            continue
        }
        if [ "$(cat "$tmp/so.bad")" = read_file ] && grep -q '^A OMADM_0$' "$tmp/defined"; then
            pass "self-test: nm $view: the checker flags read_file of a shared library, not omadm_selftest_ok or OMADM_0"
        else
            fail "self-test: nm $view on the canary library: offenders '$(tr '\n' ' ' <"$tmp/so.bad")', expected 'read_file'"
        fi
    done
}

self_test_archive
self_test_shared

# ---- the build's libraries -----------------------------------------------------

nlibs=0
for a in "$build"/lib/*.a; do
    [ -f "$a" ] || continue
    nlibs=$((nlibs + 1))
    check "$a" -g --defined-only
    members=$(ar t "$a" | tr '\n' ' ')
    case $members in
    "libomadm-all.o ")
        if [ -f "$build/lib/libomadm-all.o" ] &&
            ! ar p "$a" libomadm-all.o | cmp -s - "$build/lib/libomadm-all.o"; then
            fail "${a#"$build"/}: its member differs from lib/libomadm-all.o"
        else
            pass "${a#"$build"/}: one member, the pre-linked libomadm-all.o"
        fi
        ;;
    *) fail "${a#"$build"/}: members '$members', expected only the pre-linked libomadm-all.o" ;;
    esac
done

for so in "$build"/lib/*.so*; do
    [ -e "$so" ] || continue
    if [ -L "$so" ]; then
        [ -f "$so" ] || fail "${so#"$build"/}: dangling link to $(readlink "$so")"
        continue
    fi
    nlibs=$((nlibs + 1))
    check "$so" -D --defined-only
    check "$so" -g --defined-only
    case ${so##*/} in
    libomadm.so.*)
        soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
        if [ "$soname" = "libomadm.so.$major" ]; then
            pass "${so#"$build"/}: SONAME $soname"
        else
            fail "${so#"$build"/}: SONAME '$soname', expected libomadm.so.$major (OMADM_VERSION_MAJOR)"
        fi
        ;;
    esac
done
[ "$nlibs" -gt 0 ] || fail "no library in $build/lib (build first)"

finish test-symbols
