#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scep/bed.sh - the SCEP test bed harness (POSIX sh).  See docs/testing.md, "SCEP test bed".
#
# Two servers, reachable on loopback only:
#   * Debian's micromdm `scepserver` (2.1.0): SUCCESS or FAILURE/badRequest, never PENDING,
#     DES-CBC CertRep envelope.  It binds all interfaces (-port only), so it is only started
#     inside a private network namespace that has nothing but `lo`.
#   * our pending peer (tests/scep/pending-peer): PENDING N times, then SUCCESS or FAILURE;
#     CertPoll; AES-128-CBC envelope.  Binds 127.0.0.1.
#
# As a library (source it; set SCEP_BED_SRC to the tests/scep directory first):
#   SCEP_BED_SRC=path/to/tests/scep; . "$SCEP_BED_SRC/bed.sh"
#   bed_run_in_netns CMD [ARG...]   run CMD in new network + PID (+ mount, for /proc) namespaces;
#                                   the network has only `lo` (up); all started inside dies with CMD
#   bed_in_private_netns            true if this shell's network namespace has no interface but lo
#   bed_build OUTDIR                build the Go programs (cached); sets SCEP_BED_BIN=OUTDIR
#   bed_init [DIR]                  scratch dir (default mktemp -d, removed at exit unless
#                                   SCEP_BED_KEEP=1) in SCEP_BED_DIR; EXIT/INT/TERM/HUP traps
#                                   that stop every server (set your own trap afterwards and
#                                   call bed_stop_all from it if you need one)
#   bed_micromdm_depot DIR [BITS]   new micromdm CA depot (scepserver ca -init), RSA BITS (2048)
#   bed_start_scepserver NAME DEPOT PORT CHALLENGE [ARGS...]
#                                   start scepserver (private netns only), wait for GetCACaps,
#                                   print its URL; log in $SCEP_BED_DIR/NAME.log
#   bed_start_peer NAME DEPOT [PEER ARGS...]
#                                   start the pending peer on a free 127.0.0.1 port (a CA is
#                                   created in DEPOT if it has none), wait for GetCACaps,
#                                   print its URL; log in $SCEP_BED_DIR/NAME.log
#   bed_wait_caps URL [SECONDS]     wait until URL answers GetCACaps (default 10 s)
#   bed_get_cacert URL OUT.pem      GetCACert, as PEM
#   bed_thumbprint CERT             SHA-1 of the certificate (PEM or DER), uppercase hex
#                                   (CertificateStore CSP CAThumbprint form)
#   bed_stop_all                    stop every server started through this harness
# Functions print errors on stderr and return non-zero; URLs go to stdout.
#
# As a command:
#   tests/scep/bed.sh thumbprint CERT
#   tests/scep/bed.sh shell [CMD [ARG...]]
#       build the programs (into $SCEP_BED_BIN, default build/scep), then, in a private network
#       namespace, start scepserver (challenge $SCEP_CHALLENGE, default s3cr3t) on port 8080 and
#       the pending peer (args $SCEP_PEER_ARGS, default "-pending 2") on port 8081, and run CMD
#       (default: an interactive shell) with SCEP_MICROMDM_URL, SCEP_PEER_URL, SCEP_CHALLENGE,
#       SCEP_BED_DIR exported.  Everything stops when CMD exits.  The scratch directory is a
#       new mktemp -d (removed at the end) unless SCEP_BED_WORKDIR names one (kept).

bed_err() { echo "bed.sh: $*" >&2; }

bed_run_in_netns() {
    command -v unshare >/dev/null 2>&1 || { bed_err "unshare (util-linux) not found"; return 125; }
    command -v ip >/dev/null 2>&1 || { bed_err "ip (iproute2) not found"; return 125; }
    unshare --net --pid --mount-proc --fork --kill-child -- \
        sh -c 'ip link set lo up || exit 125; exec "$@"' bed-netns "$@"
}

# bed_rerun_isolated SCRIPT BUILD SKIPPED: run `sh SCRIPT BUILD` again inside new network + PID
# namespaces (bed_run_in_netns), in the background so that a signal to this shell is handled at
# once: SIGKILL to unshare (it ignores INT and TERM) kills the namespace's init, and with it the
# kernel kills everything inside.  Without namespaces (no CAP_SYS_ADMIN): FAIL, or with
# SCEP_BED_REQUIRE_NETNS=0 a SKIP line saying what is SKIPPED and the script on the host
# (SCEP_BED_NO_NETNS=1).  Sets rc to the script's exit status (1 for the FAIL).
bed_rerun_isolated() {
    if unshare --net --pid --mount-proc --fork --kill-child true 2>/dev/null; then
        bed_run_in_netns sh "$1" "$2" &
        _bed_ns=$!
        trap 'echo "interrupted: killing the namespace"; pkill -KILL -P $_bed_ns -x unshare
              kill -KILL $_bed_ns 2>/dev/null' INT TERM HUP
        wait $_bed_ns
        rc=$?
        trap - INT TERM HUP
    elif [ "${SCEP_BED_REQUIRE_NETNS:-1}" != 0 ]; then
        echo "FAIL: cannot create network/PID namespaces (unshare needs CAP_SYS_ADMIN)"
        rc=1
    else
        echo "SKIP: no network/PID namespaces here (unshare needs CAP_SYS_ADMIN): $3"
        SCEP_BED_NO_NETNS=1 sh "$1" "$2"
        rc=$?
    fi
}

bed_in_private_netns() {
    command -v ip >/dev/null 2>&1 || return 1
    _ifs=$(ip -o link show | cut -d: -f2 | tr -d ' ' | grep -vx lo)
    [ -z "$_ifs" ] && ip -o link show lo 2>/dev/null | grep -q '[<,]UP[,>]'
}

bed_build() {
    sh "${SCEP_BED_SRC:?set SCEP_BED_SRC to the tests/scep directory}/build.sh" "$1" || return 1
    SCEP_BED_BIN=$(cd "$1" && pwd)
}

bed_init() {
    if [ -n "${1:-}" ]; then
        mkdir -p "$1" || return 1
        SCEP_BED_DIR=$(cd "$1" && pwd)
        _bed_rm=
    else
        SCEP_BED_DIR=$(mktemp -d "${TMPDIR:-/tmp}/scep-bed.XXXXXX") || return 1
        _bed_rm=$SCEP_BED_DIR
    fi
    : >"$SCEP_BED_DIR/pids"
    trap 'bed_stop_all; [ -n "$_bed_rm" ] && [ -z "${SCEP_BED_KEEP:-}" ] && rm -rf "$_bed_rm"' EXIT
    trap 'exit 130' INT TERM HUP
}

# bed_spawn NAME CMD...: start CMD in the background, remember its pid
bed_spawn() {
    _sp_n=$1; shift
    "$@" >"$SCEP_BED_DIR/$_sp_n.log" 2>&1 </dev/null &
    echo "$! $_sp_n" >>"$SCEP_BED_DIR/pids"
    echo $!
}

bed_alive() { kill -0 "$1" 2>/dev/null; }

bed_wait_caps() {
    _wc_url=$1 _wc_t=$(( ${2:-10} * 20 ))
    while [ "$_wc_t" -gt 0 ]; do
        curl -fsS --max-time 2 -o /dev/null "$_wc_url?operation=GetCACaps" 2>/dev/null && return 0
        sleep 0.05
        _wc_t=$((_wc_t - 1))
    done
    bed_err "no GetCACaps answer from $_wc_url"
    return 1
}

bed_micromdm_depot() {
    rm -rf "$1"
    scepserver ca -init -depot "$1" -keySize "${2:-2048}" >/dev/null ||
        { bed_err "scepserver ca -init -depot $1 failed"; return 1; }
}

bed_start_scepserver() {
    _name=$1 _depot=$2 _port=$3 _ch=$4
    shift 4
    if ! bed_in_private_netns && [ -z "${SCEP_BED_ALLOW_HOST_NETWORK:-}" ]; then
        bed_err "refusing to start scepserver: it binds all interfaces; run inside bed_run_in_netns"
        return 1
    fi
    _pid=$(bed_spawn "$_name" scepserver -depot "$_depot" -port "$_port" -challenge "$_ch" \
        -allowrenew 0 -debug "$@")
    if ! bed_wait_caps "http://127.0.0.1:$_port/scep" 10 || ! bed_alive "$_pid"; then
        bed_err "scepserver $_name did not start:"; tail -n 20 "$SCEP_BED_DIR/$_name.log" >&2
        return 1
    fi
    echo "http://127.0.0.1:$_port/scep"
}

bed_start_peer() {
    _name=$1 _depot=$2
    shift 2
    [ -x "${SCEP_BED_BIN:-}/scep-pending-peer" ] || { bed_err "run bed_build first"; return 1; }
    _pf=$SCEP_BED_DIR/$_name.port
    rm -f "$_pf"
    case " $* " in *" -port "*) ;; *) set -- -port 0 "$@" ;; esac
    _pid=$(bed_spawn "$_name" "$SCEP_BED_BIN/scep-pending-peer" -depot "$_depot" -port-file "$_pf" "$@")
    _t=200
    while [ ! -s "$_pf" ] && bed_alive "$_pid" && [ "$_t" -gt 0 ]; do sleep 0.05; _t=$((_t - 1)); done
    if [ ! -s "$_pf" ] || ! bed_wait_caps "http://127.0.0.1:$(cat "$_pf")/scep" 10; then
        bed_err "pending peer $_name did not start:"; tail -n 20 "$SCEP_BED_DIR/$_name.log" >&2
        return 1
    fi
    echo "http://127.0.0.1:$(cat "$_pf")/scep"
}

bed_get_cacert() {
    _tmp=$2.der
    curl -fsS --max-time 5 -o "$_tmp" "$1?operation=GetCACert&message=bed" || return 1
    openssl x509 -inform DER -in "$_tmp" -out "$2" 2>/dev/null ||
        openssl pkcs7 -inform DER -in "$_tmp" -print_certs -out "$2" || return 1
    rm -f "$_tmp"
}

bed_thumbprint() {
    { openssl x509 -in "$1" -noout -fingerprint -sha1 2>/dev/null ||
      openssl x509 -inform DER -in "$1" -noout -fingerprint -sha1; } |
        sed 's/^.*=//; s/://g' | tr abcdef ABCDEF
}

bed_stop_all() {
    [ -n "${SCEP_BED_DIR:-}" ] && [ -f "$SCEP_BED_DIR/pids" ] || return 0
    _pids=$(cut -d' ' -f1 "$SCEP_BED_DIR/pids")
    for _p in $_pids; do kill -TERM "$_p" 2>/dev/null; done
    _t=40
    for _p in $_pids; do
        while bed_alive "$_p" && [ "$_t" -gt 0 ]; do sleep 0.05; _t=$((_t - 1)); done
        kill -KILL "$_p" 2>/dev/null
    done
    : >"$SCEP_BED_DIR/pids"
    return 0
}

# ---- command mode --------------------------------------------------------------------------
case ${0##*/} in
bed.sh)
    set -u
    SCEP_BED_SRC=$(cd "$(dirname "$0")" && pwd)
    cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $cmd in
    thumbprint)
        bed_thumbprint "${1:?usage: bed.sh thumbprint CERT}"
        ;;
    shell)
        if ! bed_in_private_netns; then
            bin=${SCEP_BED_BIN:-$SCEP_BED_SRC/../../build/scep}
            bed_build "$bin" || exit 1
            export SCEP_BED_BIN
            bed_run_in_netns sh "$0" shell "$@"
            exit $?
        fi
        export SCEP_BED_BIN
        bed_init "${SCEP_BED_WORKDIR:-}" || exit 1
        export SCEP_CHALLENGE="${SCEP_CHALLENGE:-s3cr3t}" SCEP_BED_DIR
        bed_micromdm_depot "$SCEP_BED_DIR/micromdm-depot" || exit 1
        SCEP_MICROMDM_URL=$(bed_start_scepserver scepserver "$SCEP_BED_DIR/micromdm-depot" 8080 \
            "$SCEP_CHALLENGE") || exit 1
        # shellcheck disable=SC2086
        SCEP_PEER_URL=$(bed_start_peer peer "$SCEP_BED_DIR/peer-depot" -port 8081 \
            -challenge "$SCEP_CHALLENGE" ${SCEP_PEER_ARGS:--pending 2}) || exit 1
        export SCEP_MICROMDM_URL SCEP_PEER_URL
        cat <<EOF
SCEP test bed (private network namespace, loopback only; scratch dir $SCEP_BED_DIR)
  micromdm scepserver  $SCEP_MICROMDM_URL  CA $SCEP_BED_DIR/micromdm-depot/ca.pem  SHA-1 $(bed_thumbprint "$SCEP_BED_DIR/micromdm-depot/ca.pem")
  pending peer         $SCEP_PEER_URL  CA $SCEP_BED_DIR/peer-depot/ca.pem  SHA-1 $(bed_thumbprint "$SCEP_BED_DIR/peer-depot/ca.pem")
  challenge $SCEP_CHALLENGE; peer args: ${SCEP_PEER_ARGS:--pending 2}; logs: scepserver.log, peer.log there
EOF
        if [ $# -gt 0 ]; then "$@"; else "${SHELL:-sh}" -i; fi
        exit $?
        ;;
    *)
        echo "usage: tests/scep/bed.sh thumbprint CERT | shell [CMD [ARG...]]  (or source it)" >&2
        exit 2
        ;;
    esac
    ;;
esac
