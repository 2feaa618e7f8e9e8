/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_store.c - in-memory storage hooks (see support_store.h).
 */
#include "support_store.h"

#include <stdlib.h>
#include <string.h>

static int find(const tstore_t *s, const char *key)
{
    for (int i = 0; i < TSTORE_KEYS; i++)
        if (s->e[i].set && !strcmp(s->e[i].key, key))
            return i;
    return -1;
}

void tstore_set(tstore_t *s, const char *key, const void *data, size_t len)
{
    int i = find(s, key);
    if (i < 0)
        for (i = 0; i < TSTORE_KEYS && s->e[i].set; i++)
            ;
    if (i >= TSTORE_KEYS)
        abort();
    uint8_t *copy = malloc(len + 1);
    if (len)
        memcpy(copy, data, len);
    copy[len] = 0;
    free(s->e[i].data);
    strncpy(s->e[i].key, key, sizeof s->e[i].key - 1);
    s->e[i].data = copy;
    s->e[i].len = len;
    s->e[i].set = true;
}

const uint8_t *tstore_get(const tstore_t *s, const char *key, size_t *len)
{
    int i = find(s, key);
    if (i < 0)
        return NULL;
    if (len)
        *len = s->e[i].len;
    return s->e[i].data;
}

static int st_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    tstore_t *s = ctx;
    s->loads++;
    if (s->fail_load)
        return -1;
    int i = find(s, key);
    if (i < 0)
        return 1;
    s->hits++;
    *data = malloc(s->e[i].len + 1);
    memcpy(*data, s->e[i].data, s->e[i].len + 1);
    *len = s->e[i].len;
    return 0;
}

static void st_release(void *ctx, uint8_t *data)
{
    tstore_t *s = ctx;
    s->releases++;
    free(data);
}

static int st_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    tstore_t *s = ctx;
    s->saves++;
    if (s->fail_save)
        return -1;
    tstore_set(s, key, data, len);
    return 0;
}

void tstore_init(tstore_t *s)
{
    memset(s, 0, sizeof *s);
    s->api.ctx = s;
    s->api.load = st_load;
    s->api.release = st_release;
    s->api.save = st_save;
}

void tstore_free(tstore_t *s)
{
    for (int i = 0; i < TSTORE_KEYS; i++)
        free(s->e[i].data);
    memset(s->e, 0, sizeof s->e);
}
