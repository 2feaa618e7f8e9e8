/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_store.c - in-memory storage hooks (see support_store.h).
 */
#include "support_store.h"

#include <stdlib.h>
#include <string.h>

static long find(const tstore_t *s, const char *key)
{
    for (size_t i = 0; i < s->n_e; i++)
        if (s->e[i].set && !strcmp(s->e[i].key, key))
            return (long)i;
    return -1;
}

void tstore_set(tstore_t *s, const char *key, const void *data, size_t len)
{
    long i = find(s, key);
    if (i < 0) {
        if (strlen(key) >= sizeof s->e[0].key)
            abort();
        tstore_entry_t *e = realloc(s->e, (s->n_e + 1) * sizeof *e);
        if (!e)
            abort();
        s->e = e;
        i = (long)s->n_e++;
        memset(&s->e[i], 0, sizeof s->e[i]);
    }
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
    long i = find(s, key);
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
    long i = find(s, key);
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
    bool fail = s->fail_save || s->saves == s->fail_save_at;
    if (fail && !(s->fail_stores && s->saves == s->fail_save_at))
        return -1;
    tstore_set(s, key, data, len);
    if (s->on_save)
        s->on_save(s, key, s->on_save_ctx);
    if (fail)
        return -1;
    s->saved_bytes += len;
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
    for (size_t i = 0; i < s->n_e; i++)
        free(s->e[i].data);
    free(s->e);
    s->e = NULL;
    s->n_e = 0;
}

void tstore_copy(tstore_t *dst, const tstore_t *src)
{
    tstore_init(dst);
    for (size_t i = 0; i < src->n_e; i++)
        if (src->e[i].set)
            tstore_set(dst, src->e[i].key, src->e[i].data, src->e[i].len);
}

size_t tstore_count(const tstore_t *s, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_e; i++)
        n += s->e[i].set && !strncmp(s->e[i].key, prefix, strlen(prefix));
    return n;
}
