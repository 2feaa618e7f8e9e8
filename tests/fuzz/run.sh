#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer harness with clang
# (ASan+UBSan) and fuzz dmclient's message processing, seeded from the
# conformance cases.  SECONDS=0 only replays the corpus (regression mode,
# used by the test suite).
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/fuzz
mkdir -p "$out/corpus"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# shellcheck disable=SC2046,SC2086
clang $flags -I"$top/include/omadm" -I"$top/include" -I"$top/omadm" -I"$top" -I"$top/tests/unit" \
    $(pkg-config --cflags libxml-2.0 openssl) \
    "$here/fuzz_message.c" "$top/tests/unit/support_csp.c" "$top"/omadm/*.c -o "$out/fuzz_message" \
    $(pkg-config --libs libxml-2.0 openssl)
# seeds: every conformance message and the bundled samples
for f in "$top"/tests/conformance/*/*.xml "$top"/tests/conformance/*/*.wbxml "$top"/tests/data/*.xml \
         "$here"/corpus/*; do
    [ -f "$f" ] && cp "$f" "$out/corpus/$(echo "$f" | md5sum | cut -c1-16)" 2>/dev/null || true
done
if [ "$secs" = 0 ]; then
    exec "$out/fuzz_message" -runs=0 "$out/corpus"
fi
exec "$out/fuzz_message" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 "$out/corpus"
