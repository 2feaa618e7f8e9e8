/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arena.h - bump allocator for one message's lifetime, and a growable
 * byte buffer.  Both draw on the engine's platform allocator.
 */
#ifndef OMADM_ARENA_H
#define OMADM_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct omadm;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
    /* data follows, max_align_t aligned */
} arena_chunk_t;

typedef struct arena {
    struct omadm *dm;
    arena_chunk_t *head;
    size_t total;           /* bytes obtained from the platform */
} arena_t;

/* The engine keeps the chunks a message's arenas give back as it ends
 * (omadm_process), up to ARENA_SPARE_MAX bytes, for the next message: a
 * message's working memory is then taken from the
 * platform once, not again for every message (with glibc's defaults, the
 * large chunks would go back to the system at each message's end and be
 * faulted in again).  arena_spare_free() gives them back (omadm_free). */
#define ARENA_SPARE_MAX (8u << 20)

void arena_init(arena_t *a, struct omadm *dm);
void arena_free(arena_t *a);                       /* safe after init */
void arena_spare_free(struct omadm *dm);
void *arena_alloc(arena_t *a, size_t n);           /* zeroed; NULL on failure */
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_strdup(arena_t *a, const char *s);
void *arena_memdup(arena_t *a, const void *p, size_t n); /* adds a NUL after */

/* Bytes of a chunk that arena_alloc(a, n) takes. */
size_t arena_cost(size_t n);
/* Make sure the next allocations totalling n bytes (counted with
 * arena_cost) need no call to the platform: a chunk of that room is
 * taken now if the current one lacks it.  0, or -1 when out of memory. */
int arena_reserve(arena_t *a, size_t n);
/* Move every chunk of from into a (from becomes empty); what was
 * allocated from either lives until a is freed. */
void arena_adopt(arena_t *a, arena_t *from);

/* Free everything allocated after a mark (scratch memory per command). */
typedef struct arena_mark {
    arena_chunk_t *chunk;
    size_t used;
} arena_mark_t;
arena_mark_t arena_mark(const arena_t *a);
void arena_release(arena_t *a, arena_mark_t mark);

typedef struct buf {
    struct omadm *dm;
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;             /* sticky: an append failed for lack of memory */
    int fixed;              /* data is the caller's and does not grow */
} buf_t;

void buf_init(buf_t *b, struct omadm *dm);
/* A buffer on cap bytes the caller owns (taken with buf_steal, it is the
 * caller's again): it never grows, an append past cap fails. */
void buf_init_fixed(buf_t *b, uint8_t *mem, size_t cap);
void buf_free(buf_t *b);                           /* safe after init */
int buf_reserve(buf_t *b, size_t extra);           /* 0 or -1 */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_putc(buf_t *b, uint8_t c);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Persistence text fields: bytes below 0x21, '%' and 0x7f become %XX. */
int dm_escape(buf_t *b, const char *s);
/* Undo dm_escape in place; -1 on a bad escape or a NUL. */
int dm_unescape(char *s);

/* Hand the bytes to the caller (NUL-terminated); the buffer becomes empty. */
uint8_t *buf_steal(buf_t *b, size_t *len);

#endif
