/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h - what every benchmark program needs: dying with a message when
 * something cannot be measured, allocation that cannot fail, a clock.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* "<program>: <message>" on stderr, then exit(1): the benchmark could not
 * measure.  Never returns. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* malloc / realloc that die without memory (n 0 allocates 1 byte). */
void *bench_xmalloc(size_t n);
void *bench_xrealloc(void *p, size_t n);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

#endif
