/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_store.h - an in-memory omadm_storage_t for the unit suites, with
 * switches to make load or save fail.
 */
#ifndef SUPPORT_STORE_H
#define SUPPORT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

#define TSTORE_KEYS 8

typedef struct tstore {
    struct {
        char key[32];
        uint8_t *data;
        size_t len;
        bool set;
    } e[TSTORE_KEYS];
    unsigned loads, hits, saves, releases; /* hits: loads that returned data */
    bool fail_load;      /* load() returns -1 */
    bool fail_save;      /* save() returns -1 and keeps the old value */
    omadm_storage_t api; /* the table to hand to omadm_new() */
} tstore_t;

void tstore_init(tstore_t *s);
void tstore_free(tstore_t *s);
/* Store/replace a value directly (bypassing the engine). */
void tstore_set(tstore_t *s, const char *key, const void *data, size_t len);
/* The stored value (NUL-terminated) or NULL. */
const uint8_t *tstore_get(const tstore_t *s, const char *key, size_t *len);

#endif
