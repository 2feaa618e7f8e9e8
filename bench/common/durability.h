/* SPDX-License-Identifier: Apache-2.0 */
/*
 * durability.h - what the store's code asks of the disk, counted.
 *
 * durability.c defines fsync(), fdatasync() and syncfs() -- the durability
 * barriers -- and write(), pwrite(), ftruncate(), rename() and unlink() --
 * the changes a barrier makes durable -- in the program that links it.
 * Definitions in the program win over libc's for the library code linked
 * statically into it (and for the shared libraries it loads).  Each one
 * makes the system call and counts it; the barriers also add up their time,
 * and return at once, uncounted, while dur_skip is set (setup: filling a
 * store that is synced once afterwards; storebench's --skip-sync).
 *
 * A barrier batch is a run of barriers with no change between them: the
 * barriers one batch needs could be issued together.  The first barrier
 * after dur_new_batch() starts a new batch.
 */
#ifndef BENCH_DURABILITY_H
#define BENCH_DURABILITY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dur_counts {
    uint64_t barriers;          /* fsync + fdatasync + syncfs calls made */
    uint64_t fsyncs, fdatasyncs, syncfss;
    uint64_t batches;           /* barrier batches */
    uint64_t changes;           /* write, pwrite, ftruncate, rename, unlink calls */
    int64_t barrier_ns;         /* time spent in the barriers */
} dur_counts_t;

extern dur_counts_t dur;        /* since the start of the program */
extern bool dur_skip;           /* barriers return 0 at once, uncounted */

/* The next barrier starts a new batch (call it before each message). */
void dur_new_batch(void);

#endif
