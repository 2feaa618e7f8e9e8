/* SPDX-License-Identifier: Apache-2.0 */
/*
 * platform.c - defaults for the host's platform table and the helpers that
 * go through it (platform.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "platform.h"

static int64_t libc_now(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

static void *libc_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n ? n : 1);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void plat_init(omadm_platform_t *out, const omadm_platform_t *in)
{
    omadm_platform_t p = {0};
    if (in)
        p = *in;
    if (!p.alloc || !p.realloc || !p.free) {
        p.alloc = libc_alloc;
        p.realloc = libc_realloc;
        p.free = libc_free;
    }
    if (!p.now)
        p.now = libc_now;
    if (!p.random)
        p.random = crypto_random;
    *out = p;
}

void *plat_alloc(const omadm_platform_t *p, size_t n)
{
    return p->alloc(p->ctx, n);
}

void *plat_calloc(const omadm_platform_t *p, size_t n)
{
    void *r = p->alloc(p->ctx, n);
    if (r)
        memset(r, 0, n);
    return r;
}

void *plat_realloc(const omadm_platform_t *p, void *ptr, size_t n)
{
    return p->realloc(p->ctx, ptr, n);
}

void plat_free(const omadm_platform_t *p, void *ptr)
{
    if (ptr)
        p->free(p->ctx, ptr);
}

char *plat_strndup(const omadm_platform_t *p, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = p->alloc(p->ctx, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *plat_strdup(const omadm_platform_t *p, const char *s)
{
    return s ? plat_strndup(p, s, strlen(s)) : NULL;
}

int64_t plat_now(const omadm_platform_t *p)
{
    return p->now(p->ctx);
}

int plat_random(const omadm_platform_t *p, uint8_t *buf, size_t len)
{
    return p->random(p->ctx, buf, len);
}
