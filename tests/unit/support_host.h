/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_host.h - a host's platform table for the suites that check the
 * library takes all its memory, time and randomness from the host
 * (test_store_alloc, test_store_io, test_enroll_step): a tagging allocator
 * that can fail the N-th call, a fixed clock, recognisable randomness.
 */
#ifndef SUPPORT_HOST_H
#define SUPPORT_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "omadm.h"

/* The allocator puts a 16-byte header (a magic number and the size) in
 * front of every block, so a block that reached the library some other way
 * and came back to the hook (abort), or a hook block given to libc's free
 * (an invalid free), is caught at once. */
typedef struct thost {
    long calls;          /* alloc + realloc calls */
    long fail_at;        /* 0: never; N: the N-th call fails */
    bool persistent;     /* every call from the N-th on fails */
    long failures;
    long outstanding;    /* blocks handed out, not yet freed */
    int64_t now;         /* the clock: T_NOW unless changed */
    unsigned randoms;    /* random hook calls */
} thost_t;

/* A fresh host and the platform table on it: the allocator, the clock
 * (h->now) and the random hook (0x5A 0x5B 0x5C ... whatever the length). */
void thost_init(thost_t *h, omadm_platform_t *p);

/* Fail the n-th call from now on (persistent: and every one after it),
 * counting calls and failures afresh. */
void thost_arm(thost_t *h, long n, bool persistent);
/* Fail no call any more (the counts stay). */
void thost_disarm(thost_t *h);

#endif
