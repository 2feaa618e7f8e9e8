/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_host.c - the host's platform table (see support_host.h).
 */
#include "support_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support_dm.h"

#define MAGIC 0x686f7374626c6b31ull /* "hostblk1" */
#define HDR 16

static bool should_fail(thost_t *h)
{
    h->calls++;
    if (h->fail_at && (h->calls == h->fail_at || (h->persistent && h->calls > h->fail_at))) {
        h->failures++;
        return true;
    }
    return false;
}

static uint8_t *header_of(void *p)
{
    uint8_t *b = (uint8_t *)p - HDR;
    uint64_t magic;
    memcpy(&magic, b, sizeof magic);
    if (magic != MAGIC) {
        fprintf(stderr, "a block the host allocator never handed out came back to it\n");
        abort();
    }
    return b;
}

static void *h_alloc(void *ctx, size_t n)
{
    thost_t *h = ctx;
    if (should_fail(h))
        return NULL;
    uint8_t *b = malloc(HDR + n);
    if (!b)
        return NULL;
    uint64_t magic = MAGIC;
    memcpy(b, &magic, sizeof magic);
    memcpy(b + 8, &n, sizeof n);
    h->outstanding++;
    return b + HDR;
}

static void *h_realloc(void *ctx, void *p, size_t n)
{
    thost_t *h = ctx;
    if (!p)
        return h_alloc(ctx, n);
    uint8_t *b = header_of(p);
    if (should_fail(h))
        return NULL;
    uint8_t *nb = realloc(b, HDR + n);
    if (!nb)
        return NULL;
    memcpy(nb + 8, &n, sizeof n);
    return nb + HDR;
}

static void h_free(void *ctx, void *p)
{
    thost_t *h = ctx;
    if (!p)
        return;
    uint8_t *b = header_of(p);
    memset(b, 0, HDR);
    h->outstanding--;
    free(b);
}

static int64_t h_now(void *ctx)
{
    return ((thost_t *)ctx)->now;
}

/* 0x5A 0x5B 0x5C ...: recognisable, and not what OpenSSL would give */
static int h_random(void *ctx, uint8_t *buf, size_t len)
{
    ((thost_t *)ctx)->randoms++;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(0x5A + i);
    return 0;
}

void thost_init(thost_t *h, omadm_platform_t *p)
{
    memset(h, 0, sizeof *h);
    h->now = T_NOW; /* 2001: no clock of this machine says that */
    memset(p, 0, sizeof *p);
    p->ctx = h;
    p->alloc = h_alloc;
    p->realloc = h_realloc;
    p->free = h_free;
    p->now = h_now;
    p->random = h_random;
}

void thost_arm(thost_t *h, long n, bool persistent)
{
    h->calls = 0;
    h->failures = 0;
    h->fail_at = n;
    h->persistent = persistent;
}

void thost_disarm(thost_t *h)
{
    h->fail_at = 0;
    h->persistent = false;
}
