/* SPDX-License-Identifier: Apache-2.0 */
/*
 * text.h - a growable text buffer for building messages; dies on
 * allocation failure (bench_die).
 */
#ifndef BENCH_TEXT_H
#define BENCH_TEXT_H

#include <stddef.h>

typedef struct text {
    char *data;   /* owned; NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} text_t;

/* Room for extra more bytes and a NUL. */
void text_reserve(text_t *t, size_t extra);
void text_put(text_t *t, const char *s, size_t n);
void text_puts(text_t *t, const char *s);
void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Release the buffer; t is empty afterwards (NULL-safe on an empty t). */
void text_free(text_t *t);

#endif
