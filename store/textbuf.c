/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbuf.c - the growing text buffer (textbuf.h).
 */
#include "textbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

void store_buf_init(store_buf_t *b, const omadm_platform_t *plat)
{
    memset(b, 0, sizeof *b);
    b->plat = plat;
}

void store_buf_free(store_buf_t *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->cap);
        plat_free(b->plat, b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Room for n more bytes and a NUL; false (and failed) without. */
static bool reserve(store_buf_t *b, size_t n)
{
    if (b->failed)
        return false;
    if (n < b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > (size_t)-1 / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    /* not realloc: the old block is wiped before it goes */
    char *d = plat_alloc(b->plat, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    if (b->data)
        memcpy(d, b->data, b->len);
    d[b->len] = 0;
    size_t len = b->len;
    store_buf_free(b);
    b->len = len;
    b->data = d;
    b->cap = cap;
    return true;
}

void store_buf_put(store_buf_t *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void store_buf_puts(store_buf_t *b, const char *s)
{
    store_buf_put(b, s, strlen(s));
}

void store_buf_putc(store_buf_t *b, char c)
{
    store_buf_put(b, &c, 1);
}

void store_buf_printf(store_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *store_buf_take(store_buf_t *b, size_t *len)
{
    if (!b->failed && !b->data)
        reserve(b, 0); /* an empty text is "" */
    if (b->failed) {
        store_buf_free(b);
        b->failed = false;
        return NULL;
    }
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
