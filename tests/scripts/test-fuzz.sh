#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-fuzz.sh BUILD_DIR - every fuzz target (build/fuzz/, `scons fuzz`; `scons
# check` builds them first) runs every input of its corpus (tests/fuzz/corpus/TARGET: seeds,
# campaign finds, reproducers), then fuzzes for FUZZ_SECONDS (default 10) from it.  Any crash,
# sanitizer report, leak, timeout or broken invariant fails the test; the input is kept in
# BUILD_DIR/test-fuzz/ and named in the output.  docs/testing.md, "Fuzzing".
#
# Runs once: the -san run skips it (the targets are a sanitizer build of their own).
set -u
build=${1:?usage: tests/scripts/test-fuzz.sh BUILD_DIR}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/fuzz/targets.sh
. "$top/tests/fuzz/targets.sh"

case $(basename "$build") in
*-san)
    echo "SKIP fuzz: runs once, with the build directory without sanitizers (the targets are their own ASan+UBSan build)"
    exit 0 ;;
esac

secs=${FUZZ_SECONDS:-10}
out=$build/test-fuzz
rm -rf "$out"
mkdir -p "$out"
tmp=$(fuzz_tmpdir) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
export FUZZ_TMPDIR="$tmp"
fail=0
pass() { echo "PASS fuzz: $*"; }
failed() { echo "FAIL fuzz: $*"; fail=1; }

# what went wrong in a libFuzzer log, in a few lines
report() {
    grep -E '^(==[0-9]+==ERROR|==fuzz==|SUMMARY:|.*runtime error:|.*Test unit written to)' "$1" | head -n 8
}

for t in $FUZZ_TARGETS; do
    bin=$top/build/fuzz/fuzz_$t
    corpus=$top/tests/fuzz/corpus/$t
    if [ ! -x "$bin" ]; then
        failed "$t: $bin is missing (scons fuzz; clang: ./setup.sh)"
        continue
    fi
    n=$(find "$corpus" -type f 2>/dev/null | wc -l)
    if [ "$n" -eq 0 ]; then
        failed "$t: no corpus in $corpus"
        continue
    fi
    opts=$(fuzz_opts "$t" "$top")
    # every corpus input once, reproducers included
    # shellcheck disable=SC2086
    if "$bin" $opts -runs=0 -artifact_prefix="$out/$t-" "$corpus" >"$out/$t.replay.log" 2>&1; then
        pass "$t: $n corpus inputs ($(grep -E '^#[0-9]+[[:space:]]+INITED' "$out/$t.replay.log" | sed 's/.*\(cov: [0-9]*\).*/\1 edges/'))"
    else
        failed "$t: a corpus input fails (log: $out/$t.replay.log)"
        report "$out/$t.replay.log"
        for a in "$out/$t"-*; do
            for f in "$corpus"/*; do
                [ -f "$a" ] && cmp -s "$a" "$f" && echo "the input: ${f#"$top"/}"
            done
        done
        continue
    fi
    # fuzzing from the corpus; what it finds stays in the scratch directory
    mkdir -p "$out/$t.new"
    # shellcheck disable=SC2086
    if "$bin" $opts -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/$t-" \
            "$out/$t.new" "$corpus" >"$out/$t.log" 2>&1; then
        pass "$t: ${secs} s, $(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log") executions, $(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log")/s"
    else
        failed "$t: fuzzing for $secs s found a failure (log: $out/$t.log)"
        report "$out/$t.log"
    fi
done
[ $fail -eq 0 ] && rm -rf "$out"
exit $fail
