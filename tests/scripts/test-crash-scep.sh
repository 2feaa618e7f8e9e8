#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-crash-scep.sh BUILD_DIR - kill -9 `dmclient run` at random
# points of SCEP enrollments (at least 100 real kills; the DM messages that
# order, delete and repeat enrollments go to killed `dmclient process`es too)
# and check after each kill that the store is consistent and every enrollment
# in a valid state (Status, certificate, key, alert, transactionID, no
# Challenge left once the CA answered); then finish and compare with an
# uninterrupted run.  The work
# is done by crash_scep.py beside this script (see there and docs/testing.md,
# "Crash consistency"); the SCEP servers are the test bed's (tests/scep/):
# one pending peer per enrollment on 127.0.0.1, and micromdm's scepserver.
#
# As test-scep-enroll.sh, the outer part builds the bed's Go programs and
# re-runs this script inside new network + PID namespaces (only `lo`): no
# server is reachable from outside and none survives the test.  Without
# namespaces the test fails; SCEP_BED_REQUIRE_NETNS=0 instead leaves out the
# scepserver enrollment (SKIP line) and runs on the host's 127.0.0.1.
#
# CRASH_SEED   seed of the scenario and of the kill schedule (default 1)
# CRASH_KILLS  real kills to reach (default 100)
# CRASH_KEEP   1: keep the scratch directory (and every chain's state
#              directory) also when the test passes
# Scratch directory BUILD_DIR/crash-scep.XXXXXX (on disk: on tmpfs the journal
# windows shrink to microseconds).  Anything a sanitizer prints fails the test.
set -u
build=${1:?usage: tests/scripts/test-crash-scep.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
SCEP_BED_SRC=$(cd "$here/../scep" && pwd)
# shellcheck source-path=SCRIPTDIR source=../scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ============================================================ outer part (host)
if [ -z "${CRASH_SCEP_INNER:-}" ]; then
    t0=$(now)
    for c in python3 scepserver go curl openssl ip unshare pgrep; do
        command -v "$c" >/dev/null 2>&1 || { echo "FAIL: $c not found (run ./setup.sh)"; exit 1; }
    done
    [ -x "$build/bin/dmclient" ] || { echo "FAIL: $build/bin/dmclient missing (build first)"; exit 1; }
    build=$(cd "$build" && pwd) || exit 1
    bed_build "$build/scep" || { echo "FAIL: building the SCEP test bed programs"; exit 1; }
    work=$(mktemp -d "$build/crash-scep.XXXXXX") || exit 1
    # a private copy: a rebuild during the run must not swap the binary under it
    cp "$build/bin/dmclient" "$work/dmclient" || exit 1
    echo "test-crash-scep: $build/bin/dmclient"
    export CRASH_SCEP_INNER=1 SCEP_BED_BIN CRASH_SCEP_WORK="$work"
    bed_rerun_isolated "$0" "$build" "the scepserver enrollment is left out"
    # nothing may survive: every server and dmclient was started with a path in $work
    i=0
    while pgrep -f "$work/" >/dev/null 2>&1 && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    if pgrep -f "$work/" >/dev/null 2>&1; then
        echo "FAIL: processes survived the test:"; pgrep -a -f "$work/"
        for p in $(pgrep -f "$work/"); do kill -KILL "$p" 2>/dev/null; done
        rc=1
    fi
    echo "test-crash-scep: total $(since "$t0") s"
    if [ "$rc" -eq 0 ] && [ "${CRASH_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "test-crash-scep: scratch directory kept: $work"
    fi
    exit "$rc"
fi

# ============================================================ inner part (namespace)
work=$CRASH_SCEP_WORK
seed=${CRASH_SEED:-1}
bed_init "$work/bed" || exit 1
W=$SCEP_BED_DIR
mdm=--micromdm
if [ -n "${SCEP_BED_NO_NETNS:-}" ]; then
    mdm=
    # the scenario's dead URL
    curl -s --max-time 2 -o /dev/null http://127.0.0.1:1/ 2>/dev/null
    [ $? -eq 7 ] || { echo "FAIL: something answers at 127.0.0.1:1"; exit 1; }
elif ! bed_in_private_netns; then
    echo "FAIL: not in a loopback-only network namespace:"; ip -o link show
    exit 1
fi
python3 "$here/crash_scep.py" --plan --seed "$seed" $mdm >"$W/plan" || exit 1
: >"$work/servers"
ca=
while read -r kind name args; do
    case $kind in
    peer)
        # the first peer makes the CA, the others use a copy (a CA takes a peer 0.4 s to make)
        mkdir -p "$W/$name-depot"
        [ -n "$ca" ] && { cp "$ca/ca.pem" "$ca/ca.key" "$W/$name-depot/" || exit 1; }
        # shellcheck disable=SC2086  # the peer's flags, one word each
        url=$(bed_start_peer "$name" "$W/$name-depot" $args) || exit 1
        thumb=$(bed_thumbprint "$W/$name-depot/ca.pem")
        ca=${ca:-$W/$name-depot}
        ;;
    micromdm)
        bed_micromdm_depot "$W/$name-depot" 2048 || exit 1
        url=$(bed_start_scepserver "$name" "$W/$name-depot" 8080 "$args") || exit 1
        thumb=$(bed_thumbprint "$W/$name-depot/ca.pem")
        ;;
    *)
        echo "FAIL: plan line '$kind $name $args'"; exit 1 ;;
    esac
    echo "$name $url $thumb $W/$name.log" >>"$work/servers"
done <"$W/plan"
keep=
[ "${CRASH_KEEP:-0}" = 1 ] && keep=--keep
python3 "$here/crash_scep.py" --dmclient "$work/dmclient" --work "$work" \
    --servers "$work/servers" --seed "$seed" --kills "${CRASH_KILLS:-100}" $mdm $keep
rc=$?
bed_stop_all
exit "$rc"
