#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh - fuzzing campaigns with the targets `scons fuzz` builds (docs/testing.md,
# "Fuzzing").
#
#   tests/fuzz/run.sh TARGET|all [SECONDS]   fuzz each target for SECONDS (default 600), one at a
#                                            time, under nice -n 19
#   tests/fuzz/run.sh --replay TARGET|all    run every input of the corpus once
#   tests/fuzz/run.sh --merge TARGET|all     fold what the campaigns found into the corpus in the
#                                            repository, minimised for edges (libFuzzer -merge=1
#                                            -use_counters=0); the reproducers (repro-*) are kept
#
# TARGET: xml wbxml session scep notify cert enroll.  A campaign reads tests/fuzz/corpus/TARGET
# and keeps what it finds in build/fuzz/work/TARGET, so campaigns add up; crashes go to
# build/fuzz/artifacts/.  Each campaign appends a line to build/fuzz/campaigns.tsv: date, commit,
# target, seconds it ran, CPU seconds, executions, executions per second, coverage (edges),
# features, crashes (inputs written to the artifacts; a campaign stopped by a signal has none).
# Campaigns of different targets may run at once (one run.sh each).
# FUZZ_NO_BUILD=1 skips `scons -Q fuzz`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/fuzz/targets.sh
. "$here/targets.sh"
out=$top/build/fuzz

usage() {
    sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# CPU seconds (user + system) of the children waited for so far, from
# `times` run in this shell (in a command substitution it would count the
# subshell's children): child_times, then $(child_cpu).
child_times() {
    times >"$out/.times.$$"
}
child_cpu() {
    sed -n 2p "$out/.times.$$" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m");
        sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.1f\n", t }'
}

mode=fuzz
case ${1:-} in
--replay) mode=replay; shift ;;
--merge) mode=merge; shift ;;
-h | --help | "") usage ;;
esac
what=${1:-}
secs=${2:-600}
[ "$what" = all ] && what=$FUZZ_TARGETS
for t in $what; do
    fuzz_opts "$t" "$top" >/dev/null || usage
done
case $secs in '' | *[!0-9]*) usage ;; esac

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    (cd "$top" && scons -Q fuzz) || exit 1
fi
tmp=$(fuzz_tmpdir) || exit 1
trap 'rm -rf "$tmp" "$out/.times.$$"' EXIT
trap 'exit 130' INT TERM
export FUZZ_TMPDIR="$tmp"
mkdir -p "$out/work" "$out/artifacts"
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
rc=0

for t in $what; do
    bin=$out/fuzz_$t
    corpus=$top/tests/fuzz/corpus/$t
    work=$out/work/$t
    log=$out/$t.log
    mkdir -p "$work" "$corpus"
    # shellcheck disable=SC2046
    case $mode in
    replay)
        "$bin" $(fuzz_opts "$t" "$top") -runs=0 "$corpus" >"$log" 2>&1 || rc=1
        echo "$t: $(find "$corpus" -type f | wc -l) inputs, $(grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" | tail -n 1 | sed 's/^#[0-9]*[[:space:]]*//') (log $log)"
        ;;
    merge)
        new=$out/merge.$t
        rm -rf "$new"
        mkdir -p "$new"
        # minimal for edges, not for hit counts: small enough for the repository
        if "$bin" $(fuzz_opts "$t" "$top") -merge=1 -use_counters=0 "$new" "$corpus" "$work" \
                >"$log" 2>&1; then
            # reproducers stay, under their names, whatever they add
            for f in "$corpus"/repro-*; do
                [ -f "$f" ] && cp "$f" "$new/"
            done
            rm -rf "$corpus"
            mv "$new" "$corpus"
            echo "$t: corpus now $(find "$corpus" -type f | wc -l) inputs, $(cat "$corpus"/* | wc -c) bytes"
        else
            echo "$t: merge failed (log $log)"
            rc=1
        fi
        ;;
    fuzz)
        echo "$t: fuzzing for $secs s (log $log)"
        child_times
        cpu0=$(child_cpu)
        start=$(date +%s)
        nice -n 19 "$bin" $(fuzz_opts "$t" "$top") -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$out/artifacts/$t-" "$work" "$corpus" >"$log" 2>&1
        status=$?
        elapsed=$(($(date +%s) - start)) # less than $secs when stopped
        child_times
        cpu=$(echo "$cpu0 $(child_cpu)" | awk '{ printf "%.1f", $2 - $1 }')
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1)
        cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
        ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
        # a crash leaves its input in the artifacts; a campaign stopped by a
        # signal (libFuzzer: "run interrupted") found nothing
        crashes=$(grep -c "Test unit written to" "$log")
        [ "$crashes" -ne 0 ] && rc=1
        if [ $status -ne 0 ] && [ "$crashes" -eq 0 ] && ! grep -q "run interrupted" "$log"; then
            crashes=1 # failed without a unit: count it, look at the log
            rc=1
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" \
            "$t" "$elapsed" "$cpu" "${runs:-0}" "${speed:-0}" "${cov:-?}" "${ft:-?}" "$crashes" \
            >>"$out/campaigns.tsv"
        echo "$t: ${runs:-0} executions in $elapsed s ($cpu s of CPU), ${speed:-0}/s," \
            "coverage ${cov:-?} edges, exit $status"
        if [ $status -ne 0 ]; then
            grep -E '^(==[0-9]+==ERROR|==fuzz==|SUMMARY|.*runtime error)' "$log" | head -n 5
            grep -E "Test unit written to" "$log"
        fi
        ;;
    esac
done
exit $rc
