#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-oom.sh BUILD_DIR
#
# dmclient's errors when an allocation fails name the real cause: every
# allocation of dmclient (and of the library linked into it, and of libc on
# their behalf: fopen, strdup ...) is failed in turn, once, by an LD_PRELOAD
# allocator (tests/scripts/failalloc.c) that leaves errno as it was, for
#   get ./DevInfo/DevId, process (an Add of a root certificate and a Get, on a
#   state directory with a dmclient.conf), run --once, alerts, store list.
# After each: no crash (exit 0 or 1), and a failure is reported on stderr:
# at least one line, each "dmclient: " and a reason, none blaming a file that
# is there ("File exists", "No such file or directory").  The distinct
# messages are printed.
#
# The ASan+UBSan build cannot take another allocator: skipped there (SKIP
# line, exit 0).  Needs: POSIX sh, cc, timeout.  Exits 0 on success.
set -u

build=${1:?usage: test-cli-oom.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
DM=$build/bin/dmclient
[ -x "$DM" ] || { echo "FAIL: $DM missing (build first)"; exit 1; }
if ldd "$DM" 2>/dev/null | grep -q 'libasan'; then
    echo "SKIP: $DM is built with AddressSanitizer, which allows no other allocator"
    exit 0
fi
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "FAIL: $CC not found"; exit 1; }

scratch_dir cli-oom
"$CC" -shared -fPIC -O1 -o "$tmp/failalloc.so" "$here/failalloc.c" ||
    { echo "FAIL: cannot build failalloc.so"; exit 1; }

# the state every run starts from
base=$tmp/base
mkdir -p "$base"
printf 'dev_id = oom-device\nmax_depth = 32\n' >"$base/dmclient.conf"
timeout 30 "$DM" --state-dir "$base" get ./DevInfo/DevId >/dev/null ||
    { echo "FAIL: dmclient get on a fresh state"; exit 1; }
pki=$here/../data/pki
msg_begin "$tmp/msg.xml" https://dm.example.com/omadm oom-device
m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$(cat "$pki/root.sha1")/EncodedCertificate" \
    b64 "$(cat "$pki/root.b64")"
m_cmd Get ./DevInfo/DevId
msg_end

# one ARGS...: dmclient ARGS on the state $tmp/s (a fresh copy of the base
# state when $fresh is 1), with the allocator's environment as set by the
# caller; exit status in $rc
one() {
    if [ "$fresh" = 1 ] || [ ! -d "$tmp/s" ]; then
        rm -rf "$tmp/s"
        cp -a "$base" "$tmp/s"
    fi
    timeout -s KILL 30 env LD_PRELOAD="$tmp/failalloc.so" "$DM" --state-dir "$tmp/s" "$@" \
        >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
}

# sweep LABEL FRESH ARGS...: every allocation of dmclient ARGS failed in
# turn; FRESH 1: each on a fresh copy of the state (ARGS change it)
sweep() {
    label=$1 fresh=$2
    shift 2
    FAILALLOC_COUNT=$tmp/count one "$@"
    unset FAILALLOC_COUNT
    [ "$rc" -eq 0 ] || { fail "$label without a failure: exit $rc: $(cat "$tmp/err")"; return; }
    total=$(cat "$tmp/count")
    : >"$tmp/messages"
    bad=0 n=1
    while [ "$n" -le "$total" ]; do
        FAILALLOC_N=$n one "$@"
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
            fail "$label, allocation $n failed: exit $rc: $(cat "$tmp/err")"
            bad=$((bad + 1))
        elif [ "$rc" -eq 1 ]; then
            if [ ! -s "$tmp/err" ]; then
                fail "$label, allocation $n failed: exit 1 and nothing on stderr"
                bad=$((bad + 1))
            elif grep -v -q -E '^dmclient: .*[^ :]' "$tmp/err" ||
                grep -q -E 'File exists|No such file or directory' "$tmp/err"; then
                fail "$label, allocation $n failed: $(tr '\n' '|' <"$tmp/err")"
                bad=$((bad + 1))
            fi
            sed "s|$tmp/s|DIR|g; s|$tmp|TMP|g" "$tmp/err" >>"$tmp/messages"
        fi
        n=$((n + 1))
    done
    [ "$bad" -eq 0 ] && ok "$label: $total allocations failed in turn, every failure reported"
    sort "$tmp/messages" | uniq -c | sed 's/^/    /'
}

sweep "get" 0 get ./DevInfo/DevId
sweep "process" 1 process "$tmp/msg.xml"
sweep "run --once" 0 run --once
sweep "alerts" 0 alerts
sweep "store list" 0 store list

finish test-cli-oom
