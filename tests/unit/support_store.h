/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_store.h - an in-memory omadm_storage_t for the unit suites, with
 * switches to make load or save fail, a count of the bytes saved and a
 * hook called after every save (to copy the store as a crash would leave
 * it).
 */
#ifndef SUPPORT_STORE_H
#define SUPPORT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

typedef struct tstore_entry {
    char key[32];
    uint8_t *data;
    size_t len;
    bool set;
} tstore_entry_t;

typedef struct tstore {
    tstore_entry_t *e;   /* grows as keys are added */
    size_t n_e;
    unsigned loads, hits, saves, releases; /* hits: loads that returned data */
    size_t saved_bytes;  /* bytes passed to save() calls that succeeded */
    bool fail_load;      /* load() returns -1 */
    bool fail_save;      /* save() returns -1 and keeps the old value */
    unsigned fail_save_at; /* 0: never; N: the N-th save() call returns -1 */
    bool fail_stores;    /* with fail_save_at: that call stores the value first */
    /* called after every save() that stored its value */
    void (*on_save)(struct tstore *s, const char *key, void *ctx);
    void *on_save_ctx;
    omadm_storage_t api; /* the table to hand to omadm_new() */
} tstore_t;

void tstore_init(tstore_t *s);
void tstore_free(tstore_t *s);
/* dst (not initialised, or freed) becomes a copy of src's keys and values, with
 * counters and switches reset. */
void tstore_copy(tstore_t *dst, const tstore_t *src);
/* The number of keys whose name starts with prefix. */
size_t tstore_count(const tstore_t *s, const char *prefix);
/* Store/replace a value directly (bypassing the engine). */
void tstore_set(tstore_t *s, const char *key, const void *data, size_t len);
/* The stored value (NUL-terminated) or NULL. */
const uint8_t *tstore_get(const tstore_t *s, const char *key, size_t *len);

#endif
