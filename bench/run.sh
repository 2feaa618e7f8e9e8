#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh - build the optimised benchmarks and run them (docs/performance.md).
#
#   bench/run.sh [--batches N] [--batch-ms MS] [--no-rss]
#       the engine benchmark (dmbench, ~10 s), the tree persistence
#       benchmark (treebench, ~1 s), then the SCEP enrollment
#       benchmark (~30 s; skipped with a note when this machine cannot run
#       it), then the real certificate path (certpath with its defaults,
#       ~2.5 min), then the certificate store benchmark (storebench with its
#       defaults, ~6 min).
#   bench/run.sh --engine-only [--batches N] [--batch-ms MS] [--no-rss] [--no-host]
#       dmbench alone: wall-clock messages/second and peak RSS of
#       omadm_process() on the CertificateStore, 1,000- and 5,000-command
#       messages in XML and WBXML, interleaved with libxml2 alone on the same
#       XML; targets MET / NOT MET.
#   bench/run.sh --store-only [storebench options]
#       storebench alone: per-operation time of Add / Get / Delete through
#       omadm_process() and through the store API on stores of 100, 10,000 and
#       100,000 certificates (Root/System and My/User), the listings, targets.
#       Options, e.g. --sizes 100,10000 (quicker), --struct-max 10000 (skip the
#       ~2.5 min ?list=Struct of 100,000), --no-engine, --ops K, --dir DIR
#       --keep / --reuse (keep the filled stores for another run).
#   bench/run.sh --certpath-only [certpath options]
#       certpath alone: the real CertificateStore CSP and store against the
#       engine with an in-memory plugin and the certificate parses they
#       cannot do without -- the 2.3 KB message (tmpfs and disk, durability
#       barriers counted), 5,000 commands of valid certificates, the
#       ?list=Struct / StructData listings and `dmclient store list` of
#       1,000 and 10,000 certificates, start-up and peak RSS of dmclient;
#       targets MET / NOT MET.  Options, e.g. --only message,bulk (also
#       listing, startup), --big (also stores of 100,000: ~5 min more),
#       --batches N, --batch-ms MS, --rounds N, --list-rounds N, --pairs N,
#       --tmpfs DIR, --disk DIR, --keep.
#   bench/run.sh --tree-only [treebench options]
#       treebench alone: bytes written (wchar of /proc/self/io) per message
#       that replaces two 1-byte leaves of a 2.7 MB engine tree, against the
#       tree file the previous format rewrote whole; target MET / NOT MET.
#       Options, e.g. --groups 600 --leaves 160 (a tree near MaxNodes).
#   bench/run.sh --scep-only [RUNS]
#       bench/scep-enroll.sh: SCEP enrollment wall time (2048-bit RSA) of
#       `dmclient run --until-idle` against Debian's scepclient, alternating,
#       RUNS (default 7) runs each, against one scepserver in a private
#       network namespace; the ratio of medians (target <= 1.0), the same
#       without key generation (bench/dmclient-given-key against scepclient
#       with a ready key.pem, target <= 1.0) and the RSA key generation floor
#       (31 keys, SCEP_BENCH_KEYGENS).  Needs the scep
#       package and unshare with CAP_SYS_ADMIN (exit 77 when missing).
#   bench/run.sh --startup-only [PAIRS]
#       bench/startup.sh: `dmclient get` start-up against a no-op linked with
#       the same libraries (paired runs, median of the per-pair ratios, target
#       <= 1.3) and peak RSS of `dmclient process` on a 2.3 KB certificate
#       message (target <= 10 MiB), a few seconds.  Needs GNU time.
#   bench/run.sh --daemon-soak-only [SESSIONS]
#       bench/daemon-soak.sh: one `dmclient daemon` (poll_interval 0.1) through
#       SESSIONS (default 1000) short sessions against the scripted DM server
#       over HTTPS on 127.0.0.1 (~2.5 min), its VmRSS and open file
#       descriptors every 50 sessions; verdicts "RSS flat" (last sample at
#       most 1 MiB above the one after 50 sessions) and "fds flat" (equal).
#       Needs python3 and openssl.
#   bench/run.sh --callgrind
#       the same comparisons as instruction counts under valgrind's callgrind
#       (one run after a warm-up each; repeatable on a noisy machine).  The
#       profiles stay in build/release/bench/callgrind/ for callgrind_annotate.
#
# A measurement, not a test: the exit status is 0 whatever the figures are,
# non-zero only when the build fails or something could not be measured.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scons -Q variant=release bench >&2
bin=build/release/bench/dmbench

case "${1:-}" in
--store-only)
    shift
    exec build/release/bench/storebench "$@"
    ;;
--engine-only)
    shift
    exec "$bin" "$@"
    ;;
--tree-only)
    shift
    exec build/release/bench/treebench "$@"
    ;;
--scep-only)
    shift
    exec sh bench/scep-enroll.sh build/release "$@"
    ;;
--startup-only)
    shift
    exec sh bench/startup.sh build/release "$@"
    ;;
--daemon-soak-only)
    shift
    exec sh bench/daemon-soak.sh build/release "$@"
    ;;
--certpath-only)
    shift
    exec build/release/bench/certpath "$@"
    ;;
--callgrind) ;;
*)
    "$bin" "$@"
    echo
    build/release/bench/treebench
    echo
    rc=0
    sh bench/scep-enroll.sh build/release || rc=$?
    case $rc in
    0) ;;
    77) echo "(SCEP enrollment benchmark not run: see the line above; bench/run.sh --scep-only)" ;;
    *) exit "$rc" ;;
    esac
    echo
    build/release/bench/certpath
    echo
    exec build/release/bench/storebench
    ;;
esac

command -v valgrind >/dev/null || { echo "run.sh: valgrind is not installed" >&2; exit 1; }
cgdir=build/release/bench/callgrind
mkdir -p "$cgdir"

# count WHAT SIZE ENC: instructions of one measured_once() call.
count() {
    out="$cgdir/callgrind.$1.$2.$3.out"
    if ! valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measured_once \
        --callgrind-out-file="$out" "$bin" --once "$1" "$2" "$3" >/dev/null 2>"$out.log"; then
        echo "run.sh: callgrind run '$1 $2 $3' failed, see $out.log" >&2
        exit 1
    fi
    awk '/^totals:/ { print $2 }' "$out"
}

printf 'machine: %s CPUs, %s; %s\n' "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    "$(valgrind --version)"
echo "instruction counts (callgrind, Ir), one run after a warm-up, setup excluded:"
printf '%-26s %14s %14s %14s %14s %10s\n' message "engine XML" "engine WBXML" \
    "libxml2 parse" "libxml2 serial." "engine/lx"
results=""
for size in cert 1000 5000; do
    echo "  running $size ..." >&2
    ex=$(count engine "$size" xml)
    ew=$(count engine "$size" wbxml)
    lp=$(count parse "$size" xml)
    ls=$(count serialise "$size" xml)
    case $size in
    cert) label="CertificateStore (3 cmds)" ;;
    1000) label="1,000 commands" ;;
    5000) label="5,000 commands" ;;
    esac
    awk -v l="$label" -v ex="$ex" -v ew="$ew" -v lp="$lp" -v ls="$ls" 'BEGIN {
        printf "%-26s %14d %14d %14d %14d %9.2fx\n", l, ex, ew, lp, ls, ex / (lp + ls) }'
    results="$results $size:$ex:$ew:$lp:$ls"
done
echo "libxml2 parse: xmlReadMemory + xmlFreeDoc of the message; serial.: build a copy of the"
echo "engine's XML reply with xmlNewChild and xmlDocDumpMemory it.  engine/lx: engine XML /"
echo "(parse + serial.)."
echo
echo "targets (instruction counts):"
echo "$results" | tr ' ' '\n' | awk -F: '
    $1 == "1000" { mx = $2; mw = $3 }
    $1 == "5000" { bx = $2; bw = $3; lp = $4; ls = $5 }
    function verdict(ok) { return ok ? "MET" : "NOT MET" }
    END {
        printf "  linearity XML   5,000 / 1,000 commands: %5.2fx  (target <= 5.5x)  %s\n",
            bx / mx, verdict(bx / mx <= 5.5)
        printf "  linearity WBXML 5,000 / 1,000 commands: %5.2fx  (target <= 5.5x)  %s\n",
            bw / mw, verdict(bw / mw <= 5.5)
        r = bx / (lp + ls)
        printf "  1 MB XML process+reply / libxml2 parse+serialise: %5.2fx  (target <= 3.0x)  %s\n",
            r, verdict(r <= 3.0)
    }'
echo "(peak RSS is measured by the wall-clock run: bench/run.sh without --callgrind)"
echo "profiles: $cgdir/callgrind.WHAT.SIZE.ENC.out  (callgrind_annotate --inclusive=yes FILE)"
