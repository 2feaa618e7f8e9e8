/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena.c - per-message bump allocator and growable byte buffer.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ARENA_MIN_CHUNK 16384u
#define ARENA_ALIGN 16u

void arena_init(arena_t *a, struct omadm *dm)
{
    a->dm = dm;
    a->head = NULL;
    a->total = 0;
}

/* A chunk the arena no longer needs: kept for the next message when the
 * message is ending (dm->arena_keep) and the engine's spares stay within
 * ARENA_SPARE_MAX, else freed (within a message, the allocator may need the
 * memory for something else than an arena: the reply's buffer, say). */
static void chunk_done(struct omadm *dm, arena_chunk_t *c)
{
    if (dm && dm->arena_keep && c->size <= ARENA_SPARE_MAX - dm->spare_bytes) {
        c->next = dm->spare;
        dm->spare = c;
        dm->spare_bytes += c->size;
        return;
    }
    om_free(dm, c);
}

void arena_free(arena_t *a)
{
    arena_chunk_t *c = a->head;
    while (c) {
        arena_chunk_t *next = c->next;
        chunk_done(a->dm, c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void arena_spare_free(struct omadm *dm)
{
    arena_chunk_t *c = dm->spare;
    while (c) {
        arena_chunk_t *next = c->next;
        om_free(dm, c);
        c = next;
    }
    dm->spare = NULL;
    dm->spare_bytes = 0;
}

/* A spare chunk of at least size bytes and at most twice that (a small
 * request does not take a large chunk), unlinked; NULL if none. */
static arena_chunk_t *spare_take(struct omadm *dm, size_t size)
{
    if (!dm)
        return NULL;
    for (arena_chunk_t **pp = &dm->spare; *pp; pp = &(*pp)->next) {
        arena_chunk_t *c = *pp;
        if (c->size >= size && c->size / 2 <= size) {
            *pp = c->next;
            dm->spare_bytes -= c->size;
            return c;
        }
    }
    return NULL;
}

static size_t header_size(void)
{
    return (sizeof(arena_chunk_t) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

size_t arena_cost(size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    return need < n ? SIZE_MAX : need;
}

static arena_chunk_t *new_chunk(arena_t *a, size_t size)
{
    if (size > SIZE_MAX - header_size())
        return NULL;
    arena_chunk_t *c = spare_take(a->dm, size);
    if (c) {
        size = c->size;
    } else if ((c = om_alloc(a->dm, header_size() + size))) {
        c->size = size;
    } else {
        return NULL;
    }
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->total += size;
    return c;
}

int arena_reserve(arena_t *a, size_t n)
{
    if (a->head && a->head->size - a->head->used >= n)
        return 0;
    return n == SIZE_MAX || !new_chunk(a, n ? n : ARENA_ALIGN) ? -1 : 0;
}

void arena_adopt(arena_t *a, arena_t *from)
{
    if (!from->head)
        return;
    arena_chunk_t **end = &a->head;
    while (*end)
        end = &(*end)->next;
    *end = from->head;
    a->total += from->total;
    from->head = NULL;
    from->total = 0;
}

/* n bytes, not cleared. */
static void *arena_take(arena_t *a, size_t n)
{
    size_t need = arena_cost(n);
    if (need == SIZE_MAX)
        return NULL;
    arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < need) {
        /* chunks double up to 1 MiB, then stay at 1 MiB (or what one
         * allocation needs) */
        size_t size = ARENA_MIN_CHUNK;
        if (a->head)
            size = a->head->size >= (1u << 20) ? (1u << 20) : a->head->size * 2;
        if (size < need)
            size = need;
        c = new_chunk(a, size);
        if (!c)
            return NULL;
    }
    uint8_t *p = (uint8_t *)c + header_size() + c->used;
    c->used += need;
    return p;
}

void *arena_alloc(arena_t *a, size_t n)
{
    void *p = arena_take(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

arena_mark_t arena_mark(const arena_t *a)
{
    arena_mark_t m = {a->head, a->head ? a->head->used : 0};
    return m;
}

void arena_release(arena_t *a, arena_mark_t mark)
{
    while (a->head && a->head != mark.chunk) {
        arena_chunk_t *c = a->head;
        a->head = c->next;
        a->total -= c->size;
        om_free(a->dm, c); /* within a message: the allocator may use it for anything */
    }
    if (a->head)
        a->head->used = mark.used;
}

void *arena_memdup(arena_t *a, const void *p, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    uint8_t *d = arena_take(a, n + 1); /* every byte written below */
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    return arena_memdup(a, s, n);
}

char *arena_strdup(arena_t *a, const char *s)
{
    return s ? arena_memdup(a, s, strlen(s)) : NULL;
}

void buf_init(buf_t *b, struct omadm *dm)
{
    b->dm = dm;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
    b->fixed = 0;
}

void buf_init_fixed(buf_t *b, uint8_t *mem, size_t cap)
{
    buf_init(b, NULL);
    b->data = mem;
    b->cap = cap;
    b->fixed = 1;
}

void buf_free(buf_t *b)
{
    if (!b->fixed)
        om_free(b->dm, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_reserve(buf_t *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    if (b->fixed) {
        b->failed = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = om_realloc(b->dm, b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(buf_t *b, uint8_t c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

uint8_t *buf_steal(buf_t *b, size_t *len)
{
    if (buf_reserve(b, 0))
        return NULL;
    uint8_t *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

int dm_escape(buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x21 || *p == '%' || *p == 0x7f) {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, 3);
        } else {
            buf_putc(b, *p);
        }
    }
    return b->failed ? -1 : 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int dm_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hex_digit(r[1]), lo = hi < 0 ? -1 : hex_digit(r[2]);
        if (lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = 0;
    return 0;
}
