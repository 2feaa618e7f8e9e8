#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-install.sh BUILD_DIR
#
# The installed library is all an integrator needs:
#   1. `scons -Q variant=release install PREFIX=/usr/local DESTDIR=<tmp>` (a
#      nested build in BUILD_DIR/install-test, its own build directory) installs
#      libomadm.a, libomadm.so -> .so.MAJOR -> .so.MAJOR.MINOR.PATCH with SONAME
#      libomadm.so.MAJOR, the public headers in include/omadm/, omadm.pc,
#      dmclient and its manual pages (share/man/man1/dmclient.1,
#      share/man/man5/dmclient.conf.5, the version filled in) and the systemd
#      unit lib/systemd/system/dmclient.service (ExecStart the installed
#      dmclient, clean for `systemd-analyze verify`); no path of the build or of
#      DESTDIR leaks into the tree;
#   2. `dmclient --version` prints the version of `pkg-config --modversion
#      omadm` (and of OMADM_VERSION_STRING);
#   3. examples/host/host.c is built with nothing but `pkg-config --cflags
#      --libs omadm` against that tree (PKG_CONFIG_SYSROOT_DIR and
#      PKG_CONFIG_PATH point pkg-config at it): shared, static (libomadm.a,
#      system libraries shared), fully static, and a C++ host linked shared.
#      Each links a host object that defines its own global read_file,
#      buf_init, path, store_open, session_load, rsa_keygen, journal_new and
#      arena_alloc (names libomadm once exported) and calls each once; it
#      fails the run if the library called one of them;
#   4. each program processes examples/host/add-root.xml in a fresh state
#      directory: the reply has Status 200 for the SyncHdr, the Add and the
#      Get and the IssuedTo Results, and the store's Root/System CApath
#      directory (`dmclient store paths`) holds the root certificate.
# That the collision link is a real check: the same host objects must fail to
# link against an archive of the raw objects (the old libomadm.a) when those
# still define one of the names.
#
# In a sanitizer build (its archive calls into ASan/UBSan) the install is left
# to the plain build; instead the example and the host object are compiled
# with the sanitizers, linked with BUILD_DIR/lib/libomadm.a and run as in 4,
# so the whole example path runs under ASan, UBSan and LeakSanitizer.
#
# Needs: scons, pkg-config, cc, c++, nm, ar, readelf, ldd, openssl, sed.
# Exits 0 when all passed.
set -u

build=${1:?usage: test-install.sh BUILD_DIR}
build=$(cd "$build" && pwd) || exit 1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
root=$(cd "$here/../.." && pwd)
cc=${CC:-cc}
cxx=${CXX:-c++}
pkg_config=${PKG_CONFIG:-pkg-config}
# what libomadm.a needs from the system: the Requires.private of the built omadm.pc
# shellcheck disable=SC2046  # a list of package names
archive_libs() {
    $pkg_config --libs $(sed -n 's/^Requires.private: *//p' "$build/lib/pkgconfig/omadm.pc" 2>/dev/null ||
        echo libxml-2.0 libcrypto)
}

prefix=/usr/local
example=$root/examples/host
msg=$example/add-root.xml
pki=$root/tests/data/pki
thumb=$(cat "$pki/root.sha1")
node=./Vendor/MSFT/RootCATrustedCertificates/Root/$thumb
issued_to='C=DE, O=Conformance Test PKI, CN=Conformance Root'
collide_names='read_file buf_init path store_open session_load rsa_keygen journal_new arena_alloc'

version=$(sed -n 's/^#define OMADM_VERSION_STRING "\(.*\)".*/\1/p' "$root/include/omadm/omadm.h")
major=${version%%.*}
[ -n "$version" ] || { echo "FAIL: no OMADM_VERSION_STRING in include/omadm/omadm.h"; exit 1; }

scratch_dir install
dest=$tmp/dest

pass() { echo "PASS: $*"; }

# ---- host sources ----------------------------------------------------------------

# The product's own code: global functions with the names that collided before.
# Each is called once, from a constructor; at exit every count must still be 1.
write_collide() {
    {
        echo '/* SPDX-License-Identifier: Apache-2.0 */'
        echo '#include <stdio.h>'
        echo '#include <stdlib.h>'
        echo '#include <unistd.h>'
        i=0
        for n in $collide_names; do
            echo "int $n(void);"
            echo "static int calls_$n;"
            echo "int $n(void) { return ++calls_$n; }"
            i=$((i + 1))
        done
        echo 'static void check_calls(void)'
        echo '{'
        for n in $collide_names; do
            echo "    if (calls_$n != 1) {"
            printf '        fprintf(stderr, "collide: host function %s ran %%d times: the library called it\\n", calls_%s);\n' \
                "$n" "$n"
            echo '        _exit(3);'
            echo '    }'
        done
        printf '    fprintf(stderr, "collide: %d host functions ran once each\\n");\n' "$i"
        echo '}'
        echo '__attribute__((constructor)) static void use_own_functions(void)'
        echo '{'
        for n in $collide_names; do
            echo "    $n();"
        done
        echo '    atexit(check_calls);'
        echo '}'
    } >"$tmp/collide.c"
}

# A C++ host: the headers compile as C++ and the API links with C linkage.
# Default platform hooks, no persistence of the engine's state; the DevId of
# examples/host (add-root.xml is addressed to it).
write_cxx_host() {
    cat >"$tmp/host.cpp" <<'EOF'
// SPDX-License-Identifier: Apache-2.0
#include <omadm/omadm.h>
#include <omadm/omadm_certstore.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<uint8_t> msg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string store = std::string(argv[1]) + "/store";
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.dev_id = "example-device-0001"; // the device add-root.xml is for, as in host.c
    omadm_t *dm = nullptr;
    omadm_certstore_t *cs = nullptr;
    const char *why = nullptr;
    uint8_t *reply = nullptr;
    size_t reply_len = 0;
    omadm_error_t e = omadm_new(&cfg, nullptr, nullptr, &dm);
    if (e == OMADM_OK)
        e = omadm_certstore_open(store.c_str(), nullptr, &cs, &why);
    if (e == OMADM_OK)
        e = omadm_certstore_register(dm, cs);
    if (e == OMADM_OK)
        e = omadm_process(dm, msg.data(), msg.size(), &reply, &reply_len);
    if (e == OMADM_OK && reply) {
        std::fwrite(reply, 1, reply_len, stdout);
        omadm_buffer_free(dm, reply);
    } else {
        std::fprintf(stderr, "c++ host: %s (%s)\n", omadm_strerror(e), why ? why : "-");
    }
    omadm_free(dm);
    omadm_certstore_close(cs);
    return e == OMADM_OK ? 0 : 1;
}
EOF
}

# ---- checks on one run ------------------------------------------------------------

# check_reply LABEL FILE: statuses, and the IssuedTo Results
check_reply() {
    flat=$(tr -d '\r\n' <"$2")
    got=$(reply_codes "$2")
    results=$(printf '%s' "$flat" | sed -n 's|.*<Results>\(.*\)</Results>.*|\1|p')
    issued=no
    case $results in
    *"<LocURI>$node/IssuedTo</LocURI>"*"<Data>$issued_to</Data>"*) issued=yes ;;
    esac
    if [ "$got" != "SyncHdr 200,Add 200,Get 200," ]; then
        fail "$1: reply statuses '$got', expected 'SyncHdr 200,Add 200,Get 200,'"
        head -c 2000 "$2"
        echo
    elif [ "$issued" = no ]; then
        fail "$1: no Results with IssuedTo '$issued_to' in the reply:"
        head -c 2000 "$2"
        echo
    else
        pass "$1: reply SyncHdr 200, Add 200, Get 200, Results IssuedTo '$issued_to'"
    fi
}

# check_capath LABEL STATE DMCLIENT: the root is in the Root/System CApath
# directory that `dmclient store paths` names, and `store check` passes
check_capath() {
    if ! "$3" --state-dir "$2" store paths >"$tmp/paths" 2>"$tmp/paths.err"; then
        fail "$1: dmclient store paths failed:"
        cat "$tmp/paths.err"
        return
    fi
    capath=$(sed -n 's|^Root/System  *CApath \(.*\)$|\1|p' "$tmp/paths")
    case $capath in
    "$2"/*) ;;
    *)
        fail "$1: Root/System CApath '$capath' is not in the state directory $2"
        return
        ;;
    esac
    hash=$(openssl x509 -hash -noout -in "$pki/root.pem")
    if [ ! -f "$capath/$hash.0" ]; then
        fail "$1: no $hash.0 in the Root/System CApath $capath: $(ls "$capath" 2>&1 | tr '\n' ' ')"
        return
    fi
    fp=$(cert_thumbprint "$capath/$hash.0")
    if [ "$fp" != "$thumb" ]; then
        fail "$1: $capath/$hash.0 holds $fp, not the root ($thumb)"
    elif ! "$3" --state-dir "$2" store check >"$tmp/check" 2>&1; then
        fail "$1: dmclient store check:"
        cat "$tmp/check"
    else
        pass "$1: the root is in the Root/System CApath (${capath#"$2"/}/$hash.0), store check passes"
    fi
}

# run_host LABEL DMCLIENT COMMAND...: run COMMAND STATE MESSAGE in a fresh state
# directory; it must succeed and write on stderr only the host object's report
run_host() {
    label=$1 dmc=$2
    shift 2
    state=$tmp/state-$label
    mkdir -p "$state"
    "$@" "$state" "$msg" >"$tmp/$label.reply" 2>"$tmp/$label.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$label: the host exited $rc:"
        cat "$tmp/$label.err"
        return
    fi
    if ! grep -q "^collide: [0-9]* host functions ran once each$" "$tmp/$label.err"; then
        fail "$label: the host object's functions did not report (not linked?)"
    fi
    if grep -v "^collide: [0-9]* host functions ran once each$" "$tmp/$label.err" | grep -q .; then
        fail "$label: the host wrote on stderr:"
        cat "$tmp/$label.err"
    fi
    check_reply "$label" "$tmp/$label.reply"
    check_capath "$label" "$state" "$dmc"
}

# add-root.xml: a licence line, then what make-message.sh writes for root.pem
check_sample_message() {
    sed 1d "$msg" >"$tmp/sample"
    if sh "$example/make-message.sh" "$pki/root.pem" | cmp -s - "$tmp/sample"; then
        pass "examples/host/add-root.xml is make-message.sh's output for tests/data/pki/root.pem"
    else
        fail "examples/host/add-root.xml (below its first line) differs from: sh examples/host/make-message.sh tests/data/pki/root.pem"
    fi
}

# ---- a sanitizer build: the example under ASan and UBSan --------------------------

run_sanitized() {
    echo "note: sanitizer build: the install is checked in the plain build; here the example runs under ASan+UBSan"
    san='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined'
    [ -x "$build/bin/dmclient" ] || {
        fail "$build/bin/dmclient missing (build first)"
        return
    }
    if ! $cc -std=c11 -Wall -Wextra -Werror -g $san -I"$root/include" -c "$example/host.c" \
        -o "$tmp/host.o" >"$tmp/cc.log" 2>&1 ||
        ! $cc -std=c11 -Wall -Wextra -Werror -g $san -c "$tmp/collide.c" -o "$tmp/collide.o" \
            >>"$tmp/cc.log" 2>&1 ||
        ! $cc $san -o "$tmp/host-san" "$tmp/host.o" "$tmp/collide.o" "$build/lib/libomadm.a" \
            $(archive_libs) -pthread >>"$tmp/cc.log" 2>&1; then
        fail "sanitizer: building the example failed:"
        cat "$tmp/cc.log"
        return
    fi
    pass "sanitizer: the example and the host object built with ASan+UBSan against lib/libomadm.a"
    run_host sanitizer "$build/bin/dmclient" "$tmp/host-san"
}

# ---- the install -----------------------------------------------------------------

nested_install() {
    builddir=$(realpath -m --relative-to="$root" "$build/install-test")
    echo "scons -Q -j2 variant=release install PREFIX=$prefix DESTDIR=$dest builddir=$builddir"
    start=$(date +%s)
    if ! (cd "$root" && scons -Q -j2 variant=release install PREFIX="$prefix" DESTDIR="$dest" \
        builddir="$builddir") >"$tmp/scons.log" 2>&1; then
        fail "scons install failed:"
        tail -n 40 "$tmp/scons.log"
        return 1
    fi
    pass "scons install into DESTDIR in $(($(date +%s) - start)) s"
    echo "installed:"
    (cd "$dest" && find . ! -type d | sort | sed 's/^\./    /')
}

# check_installed_file PATH: a regular file under DESTDIR/PREFIX
want_file() {
    if [ -f "$dest$prefix/$1" ] && [ ! -L "$dest$prefix/$1" ]; then
        pass "installed $prefix/$1"
    else
        fail "$prefix/$1 is not installed as a file"
    fi
}

# want_link PATH TARGET...: a symbolic link PATH -> one of TARGET... (same directory)
want_link() {
    link=$1
    shift
    to=$(readlink "$dest$prefix/$link" 2>/dev/null)
    for t in "$@"; do
        if [ -L "$dest$prefix/$link" ] && [ "$to" = "$t" ]; then
            pass "installed $prefix/$link -> $to"
            return
        fi
    done
    fail "$prefix/$link is not a link to $* ($(ls -l "$dest$prefix/$link" 2>&1))"
}

# The systemd unit: installed with the installed dmclient in ExecStart, and
# clean for systemd-analyze verify (checked on a copy whose ExecStart names the
# staged program, which must exist for the check).
check_unit() {
    unit=lib/systemd/system/dmclient.service
    want_file "$unit"
    exec_start=$(sed -n 's/^ExecStart=//p' "$dest$prefix/$unit")
    if [ "$exec_start" = "$prefix/bin/dmclient --state-dir /var/lib/dmclient --log journal daemon" ]; then
        pass "the unit starts $exec_start"
    else
        fail "the unit's ExecStart is '$exec_start'"
    fi
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        fail "systemd-analyze not found (./setup.sh installs systemd)"
        return
    fi
    mkdir -p "$tmp/unit"
    sed "s|^ExecStart=$prefix/bin/dmclient|ExecStart=$dest$prefix/bin/dmclient|" "$dest$prefix/$unit" \
        >"$tmp/unit/dmclient.service"
    out=$(systemd-analyze verify --man=no "$tmp/unit/dmclient.service" 2>&1)
    if [ -z "$out" ]; then
        pass "systemd-analyze verify: the unit is clean"
    else
        fail "systemd-analyze verify: $out"
    fi
}

check_tree() {
    lib=$dest$prefix/lib
    want_file lib/libomadm.a
    want_file "lib/libomadm.so.$version"
    want_link "lib/libomadm.so.$major" "libomadm.so.$version"
    # the link for -lomadm: to the SONAME's link or straight to the file
    want_link lib/libomadm.so "libomadm.so.$major" "libomadm.so.$version"
    want_file lib/pkgconfig/omadm.pc
    want_file bin/dmclient
    [ -x "$dest$prefix/bin/dmclient" ] || fail "$prefix/bin/dmclient is not executable"
    # the manual pages, with the version filled in
    for page in man1/dmclient.1 man5/dmclient.conf.5; do
        want_file "share/man/$page"
        f=$dest$prefix/share/man/$page
        [ -f "$f" ] || continue
        if grep -q '@[A-Z_]*@' "$f"; then
            fail "installed $page holds template placeholders: $(grep -o '@[A-Z_]*@' "$f" | sort -u | tr '\n' ' ')"
        elif ! grep -q "^\.TH .* \"omadm $version\"" "$f"; then
            fail "installed $page does not name omadm $version in its .TH line: $(grep '^\.TH' "$f")"
        elif ! cmp -s "$f" "$build/install-test/man/${page#*/}"; then
            fail "installed $page differs from the one built"
        else
            pass "installed $page (omadm $version)"
        fi
    done

    check_unit

    soname=$(readelf -d "$lib/libomadm.so.$version" 2>/dev/null |
        sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
    if [ "$soname" = "libomadm.so.$major" ]; then
        pass "installed libomadm.so.$version has SONAME $soname"
    else
        fail "installed libomadm.so.$version has SONAME '$soname', expected libomadm.so.$major"
    fi
    members=$(ar t "$lib/libomadm.a" 2>&1 | tr '\n' ' ')
    [ "$members" = "libomadm-all.o " ] ||
        fail "installed libomadm.a holds '$members', expected only the pre-linked libomadm-all.o"

    # the public headers, exactly, and nothing else
    want=$(cd "$root/include/omadm" && ls ./*.h | sed 's|^\./||' | sort | tr '\n' ' ')
    have=$(cd "$dest$prefix/include/omadm" 2>/dev/null && ls ./*.h | sed 's|^\./||' | sort | tr '\n' ' ')
    if [ "$want" != "$have" ]; then
        fail "$prefix/include/omadm holds '$have', expected the public headers '$want'"
    else
        for h in $want; do
            cmp -s "$root/include/omadm/$h" "$dest$prefix/include/omadm/$h" ||
                fail "installed $h differs from include/omadm/$h"
        done
        pass "$prefix/include/omadm holds the public headers: $want"
    fi

    # DESTDIR is only where the tree is staged: no installed file may name it,
    # and no text file (omadm.pc, headers) the source tree or the build
    leaks=$(grep -rlF -e "$dest" "$dest" 2>/dev/null | sed "s|^$dest||" | tr '\n' ' ')
    leaks=$leaks$(grep -rlIF -e "$root" "$dest" 2>/dev/null | sed "s|^$dest||" | tr '\n' ' ')
    if [ -z "$leaks" ]; then
        pass "no installed file names DESTDIR, no text file the source tree"
    else
        fail "installed files name DESTDIR or the source tree: $leaks"
    fi
    for f in "$lib/libomadm.so.$version" "$dest$prefix/bin/dmclient"; do
        if readelf -d "$f" 2>/dev/null | grep -q 'RPATH\|RUNPATH'; then
            fail "${f#"$dest"} has an RPATH/RUNPATH: $(readelf -d "$f" | grep 'RPATH\|RUNPATH')"
        fi
    done
}

check_versions() {
    out=$("$dest$prefix/bin/dmclient" --version 2>&1)
    rc=$?
    pcv=$($pkg_config --modversion omadm 2>&1)
    lines=$(printf '%s\n' "$out" | wc -l)
    if [ $rc -ne 0 ] || [ "$lines" -ne 1 ]; then
        fail "dmclient --version: exit $rc, $lines lines: $out"
    elif [ "${out##* }" != "$pcv" ] || [ "$pcv" != "$version" ]; then
        fail "dmclient --version says '$out', pkg-config --modversion omadm '$pcv', omadm.h '$version'"
    else
        pass "dmclient --version '$out' = pkg-config --modversion omadm = OMADM_VERSION_STRING"
    fi
}

# link LABEL COMPILER OUTPUT ARGS...: link; the log is kept for a failure
link() {
    label=$1 compiler=$2 out=$3
    shift 3
    if $compiler -o "$out" "$@" >"$tmp/link-$label.log" 2>&1; then
        return 0
    fi
    fail "$label: link failed: $compiler -o $out $*"
    tail -n 30 "$tmp/link-$label.log"
    return 1
}

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | tr '\n' ' '; }

# The collision link is real: against an archive of the raw objects (the old
# libomadm.a) the same objects fail with a multiple definition.
collision_self_test() {
    set --
    for o in "$build"/install-test/omadm/*.o "$build"/install-test/csp/*.o \
        "$build"/install-test/store/*.o; do
        [ -f "$o" ] && set -- "$@" "$o"
    done
    defined=$(nm -g --defined-only "$@" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
    clash=
    for n in $collide_names; do
        printf '%s\n' "$defined" | grep -qx "$n" && clash="$clash $n"
    done
    if [ -z "$clash" ]; then
        echo "note: the raw objects define none of: $collide_names (no old-kind archive to compare with)"
        return
    fi
    ar rc "$tmp/raw.a" "$@"
    if $cc -o "$tmp/host-raw" "$tmp/host.o" "$tmp/collide.o" "$tmp/raw.a" \
        $(archive_libs) -pthread >"$tmp/link-raw.log" 2>&1; then
        fail "collision self-test: linking against an archive of the raw objects (defining$clash) succeeded"
    elif grep -q 'multiple definition of' "$tmp/link-raw.log"; then
        pass "collision self-test: against an archive of the raw objects the same link fails: $(grep -o "multiple definition of [^;]*" "$tmp/link-raw.log" | head -n 3 | tr '\n' ' ')"
    else
        fail "collision self-test: the link against the raw archive failed, but not with a multiple definition:"
        tail -n 10 "$tmp/link-raw.log"
    fi
}

build_and_run() {
    cflags=$($pkg_config --cflags omadm) || { fail "pkg-config --cflags omadm"; return; }
    libs=$($pkg_config --libs omadm) || { fail "pkg-config --libs omadm"; return; }
    slibs=$($pkg_config --static --libs omadm) || { fail "pkg-config --static --libs omadm"; return; }
    echo "pkg-config --cflags omadm: $cflags"
    echo "pkg-config --libs omadm: $libs"
    echo "pkg-config --static --libs omadm: $slibs"
    lib=$dest$prefix/lib
    # libomadm.a where -lomadm would take libomadm.so (examples/host/README.md)
    static_libomadm=$(printf '%s \n' "$slibs" | sed 's/-lomadm /-Wl,-Bstatic -lomadm -Wl,-Bdynamic /')

    if ! $cc -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags -c "$example/host.c" \
        -o "$tmp/host.o" >"$tmp/cc.log" 2>&1; then
        fail "compiling examples/host/host.c with only pkg-config --cflags omadm:"
        cat "$tmp/cc.log"
        return
    fi
    pass "examples/host/host.c compiles (-std=c11 -Wpedantic -Werror) with only pkg-config --cflags omadm"
    $cc -std=c11 -Wall -Wextra -Werror -c "$tmp/collide.c" -o "$tmp/collide.o" || {
        fail "compiling the host object collide.c"
        return
    }

    # shared
    if link shared "$cc" "$tmp/host-shared" "$tmp/host.o" "$tmp/collide.o" $libs; then
        n=$(needed "$tmp/host-shared")
        where=$(LD_LIBRARY_PATH=$lib ldd "$tmp/host-shared" | sed -n 's/.*libomadm\.so\.[0-9]* => \([^ ]*\).*/\1/p')
        case " $n" in
        *" libomadm.so.$major "*) ;;
        *) fail "shared: host-shared does not need libomadm.so.$major (NEEDED: $n)" ;;
        esac
        [ "$where" = "$lib/libomadm.so.$major" ] ||
            fail "shared: libomadm.so.$major resolves to '$where', not the installed tree"
        pass "shared: cc host.o collide.o \$(pkg-config --libs omadm); NEEDED: $n"
        run_host shared "$dest$prefix/bin/dmclient" env LD_LIBRARY_PATH="$lib" "$tmp/host-shared"
    fi

    # libomadm.a, system libraries shared (the recommended static link)
    if link static "$cc" "$tmp/host-static" "$tmp/host.o" "$tmp/collide.o" $static_libomadm; then
        n=$(needed "$tmp/host-static")
        case " $n" in
        *" libomadm.so"*) fail "static: host-static needs libomadm.so (NEEDED: $n)" ;;
        *) pass "static: cc host.o collide.o $static_libomadm; NEEDED: $n" ;;
        esac
        run_host static "$dest$prefix/bin/dmclient" env -u LD_LIBRARY_PATH "$tmp/host-static"
    fi

    # everything static (Debian's ICU is C++ and its .pc does not name libstdc++)
    if link full-static "$cc" "$tmp/host-full" -static "$tmp/host.o" "$tmp/collide.o" $slibs -lstdc++; then
        n=$(needed "$tmp/host-full")
        if [ -n "$n" ]; then
            fail "full-static: host-full still needs shared libraries: $n"
        else
            pass "full-static: cc -static host.o collide.o \$(pkg-config --static --libs omadm) -lstdc++; no shared library"
        fi
        run_host full-static "$dest$prefix/bin/dmclient" env -u LD_LIBRARY_PATH "$tmp/host-full"
    fi

    # a C++ host, shared
    if ! $cxx -std=c++11 -Wall -Wextra -Wpedantic -Werror $cflags -c "$tmp/host.cpp" \
        -o "$tmp/host-cxx.o" >"$tmp/cxx.log" 2>&1; then
        fail "c++: the C++ host does not compile with the installed headers:"
        cat "$tmp/cxx.log"
    elif link c++ "$cxx" "$tmp/host-cxx" "$tmp/host-cxx.o" "$tmp/collide.o" $libs; then
        pass "c++: c++ host.o collide.o \$(pkg-config --libs omadm); NEEDED: $(needed "$tmp/host-cxx")"
        run_host c++ "$dest$prefix/bin/dmclient" env LD_LIBRARY_PATH="$lib" "$tmp/host-cxx"
    fi

    collision_self_test
}

# ---- main ----------------------------------------------------------------------

command -v openssl >/dev/null 2>&1 || { echo "FAIL: openssl CLI not found"; exit 1; }
write_collide
write_cxx_host
check_sample_message

if nm -u "$build/lib/libomadm.a" 2>/dev/null | grep -q '__asan_\|__ubsan_'; then
    run_sanitized
    finish test-install
fi

if nested_install; then
    # from here pkg-config sees the staged tree as if it were installed
    unset PKG_CONFIG_LIBDIR
    PKG_CONFIG_SYSROOT_DIR=$dest
    PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
    check_tree
    check_versions
    build_and_run
fi
finish test-install
