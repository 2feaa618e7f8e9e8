/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbuf.h - a growing text buffer on the platform table, for the record
 * files the store and the CSPs write.  An append that cannot get memory is
 * remembered and store_buf_take then gives NULL, so a writer checks once at
 * the end.  Memory given up while growing is wiped first: records may hold
 * private keys.
 */
#ifndef OMADM_STORE_TEXTBUF_H
#define OMADM_STORE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "omadm.h"

typedef struct store_buf {
    const omadm_platform_t *plat;
    char *data;
    size_t len, cap;
    bool failed;          /* sticky: an append found no memory */
} store_buf_t;

void store_buf_init(store_buf_t *b, const omadm_platform_t *plat);   /* cannot fail */
void store_buf_put(store_buf_t *b, const void *p, size_t n);
void store_buf_puts(store_buf_t *b, const char *s);
void store_buf_putc(store_buf_t *b, char c);
void store_buf_printf(store_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, NUL-terminated, from b->plat (*len, may be NULL, without the
 * NUL); the buffer is empty afterwards.  NULL when an append failed (then
 * the buffer is wiped and freed). */
char *store_buf_take(store_buf_t *b, size_t *len);
void store_buf_free(store_buf_t *b);  /* wipes; safe after init */

#endif
