# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/fuzz/targets.sh - sourced by tests/fuzz/run.sh and tests/scripts/test-fuzz.sh: the fuzz
# targets (build/fuzz/fuzz_NAME, corpus tests/fuzz/corpus/NAME) and the libFuzzer options each runs
# with.  docs/testing.md, "Fuzzing".

# shellcheck disable=SC2034
FUZZ_TARGETS="xml wbxml session scep notify cert enroll pfx wstep"

# fuzz_opts NAME TOP: the options of target NAME (TOP: the repository).
fuzz_opts() {
    common="-timeout=10 -rss_limit_mb=2048"
    case $1 in
    xml | session) echo "$common -max_len=16384 -dict=$2/tests/fuzz/syncml.dict" ;;
    wbxml) echo "$common -max_len=16384" ;;
    scep | cert | enroll | pfx | wstep) echo "$common -max_len=8192" ;;
    notify) echo "$common -max_len=1024" ;;
    *) return 1 ;;
    esac
}

# fuzz_tmpdir: a scratch directory for the targets' certificate stores (FUZZ_TMPDIR), on tmpfs
# when there is one: the store syncs every change.
fuzz_tmpdir() {
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        mktemp -d /dev/shm/omadm-fuzz-run.XXXXXX
    else
        mktemp -d "${TMPDIR:-/tmp}/omadm-fuzz-run.XXXXXX"
    fi
}
