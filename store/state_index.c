/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state_index.c - the staged ops by name (state records by theirs,
 * certificates and keys by a name of their own), and counts of state
 * records by prefix, so that a lookup, a new op or a count costs the same
 * however many ops a message staged (a message may create 1,000 SCEP
 * enrollments, each Add counting its namespace, or hold 5,000 certificate
 * commands, each looking up what the batch did to its certificate).
 *
 * Each name that has a staged op has an entry: its newest op in the open
 * transaction and in the committed changes.  A count by prefix is the
 * number of record files on disk (one directory read, the first time)
 * plus what the committed and the open changes add or remove; staging an
 * op adjusts it, commit and rollback move or drop the transaction's part,
 * a flush moves the committed part onto the disk part.  Anything that
 * cannot be known (a stat that fails, a failed flush) drops the count,
 * and the next call counts again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "platform.h"
#include "store_internal.h"
#include "store_io.h"

struct state_ix {
    struct state_ix *next;     /* bucket chain */
    const op_t *tx, *pending;  /* newest op for the name in each list, or NULL */
    const op_t *flushed;       /* during a flush: the last of its ops the flush did */
    signed char on_disk;       /* a record file: 1, none: 0, not looked yet: -1 */
    char name[];
};

static size_t hash(const char *name)
{
    size_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return h;
}

state_ix_t *state_ix_find(const store_t *s, const char *name)
{
    const state_index_t *x = &s->states;
    if (!x->n_buckets)
        return NULL;
    for (state_ix_t *e = x->buckets[hash(name) % x->n_buckets]; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

/* Twice the buckets once there are twice as many entries; a table that
 * cannot grow stays as it is (slower, still right). */
static void grow(store_t *s)
{
    state_index_t *x = &s->states;
    if (x->n < 2 * x->n_buckets)
        return;
    size_t nb = x->n_buckets ? 2 * x->n_buckets : 64;
    state_ix_t **b = plat_calloc(&s->plat, nb * sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < x->n_buckets; i++) {
        for (state_ix_t *e = x->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t h = hash(e->name) % nb;
            e->next = b[h];
            b[h] = e;
        }
    }
    plat_free(&s->plat, x->buckets);
    x->buckets = b;
    x->n_buckets = nb;
}

state_ix_t *state_ix_get(store_t *s, const char *name)
{
    state_ix_t *e = state_ix_find(s, name);
    if (e)
        return e;
    grow(s);
    state_index_t *x = &s->states;
    if (!x->n_buckets)
        return NULL;
    size_t len = strlen(name);
    e = plat_calloc(&s->plat, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, len + 1);
    e->on_disk = -1;
    size_t h = hash(name) % x->n_buckets;
    e->next = x->buckets[h];
    x->buckets[h] = e;
    x->n++;
    return e;
}

int cert_ix_name(const store_kind_t *k, const char *thumb, bool key, char *buf, size_t size)
{
    /* a control character first: state_name_ok refuses it */
    int n = snprintf(buf, size, "%c%s/%s", key ? '\002' : '\001', k->id, thumb);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int op_ix_name(const op_t *o, char *buf, size_t size)
{
    if (!op_is_state(o))
        return cert_ix_name(o->store, o->thumb, o->kind == OP_KEY, buf, size);
    size_t n = strlen(o->state_name);
    if (n >= size)
        return -1;
    memcpy(buf, o->state_name, n + 1);
    return 0;
}

/* The entry an op was staged under, or NULL. */
static state_ix_t *entry_of(const store_t *s, const op_t *o)
{
    char name[256];
    return op_ix_name(o, name, sizeof name) ? NULL : state_ix_find(s, name);
}

const op_t *state_ix_flushed_before(const store_t *s, const op_t *o)
{
    const state_ix_t *e = entry_of(s, o);
    return e ? e->flushed : NULL;
}

void state_ix_flush_did(const store_t *s, const op_t *o)
{
    state_ix_t *e = entry_of(s, o);
    if (e)
        e->flushed = o;
}

const op_t *state_ix_op(const state_ix_t *e, bool in_tx)
{
    return !e ? NULL : in_tx ? e->tx : e->pending;
}

const op_t *state_ix_newest(const state_ix_t *e)
{
    return !e ? NULL : e->tx ? e->tx : e->pending;
}

bool state_ix_pending_is(const state_ix_t *e, const op_t *o)
{
    return !e || e->pending == o;
}

const char *state_ix_name(const state_ix_t *e)
{
    return e->name;
}

int state_ix_each(const store_t *s, int (*cb)(void *ctx, const state_ix_t *e), void *ctx)
{
    const state_index_t *x = &s->states;
    for (size_t i = 0; i < x->n_buckets; i++)
        for (const state_ix_t *e = x->buckets[i]; e; e = e->next) {
            int rc = cb(ctx, e);
            if (rc)
                return rc;
        }
    return 0;
}

/* ---- counts ---- */

/* Whether a record file name exists on disk: 1, 0, or -1 (cannot tell). */
static int on_disk(const store_t *s, state_ix_t *e)
{
    char p[4096];
    struct stat st;
    if (e->on_disk >= 0)
        return e->on_disk;
    if (path(s, p, sizeof p, "state/%s", e->name))
        return -1;
    if (store_io_stat(&s->io, p, &st))
        return errno == ENOENT ? (e->on_disk = 0) : -1;
    e->on_disk = S_ISREG(st.st_mode) ? 1 : 0; /* as store_each_state lists them */
    return e->on_disk;
}

/* Whether the record exists once the ops staged so far are applied: 1, 0,
 * or -1 (cannot tell). */
static int exists(const store_t *s, state_ix_t *e)
{
    const op_t *o = state_ix_newest(e);
    return o ? o->kind == OP_STATE_PUT : on_disk(s, e);
}

static bool has_prefix(const char *name, const char *prefix)
{
    return !strncmp(name, prefix, strlen(prefix));
}

void state_ix_staged(store_t *s, state_ix_t *e, const op_t *o)
{
    for (size_t i = 0; op_is_state(o) && i < STATE_COUNTS; i++) {
        state_count_t *c = &s->states.counts[i];
        if (!c->valid || !has_prefix(e->name, c->prefix))
            continue;
        int before = exists(s, e);
        if (before < 0)
            c->valid = false; /* counted again when next asked */
        else
            c->tx += (o->kind == OP_STATE_PUT) - before;
    }
    e->tx = o;
}

void state_ix_committed(store_t *s, const op_t *tx)
{
    for (const op_t *o = tx; o; o = o->next) {
        state_ix_t *e = entry_of(s, o);
        if (e && e->tx == o) {
            e->pending = o;
            e->tx = NULL;
        }
    }
    for (size_t i = 0; i < STATE_COUNTS; i++) {
        s->states.counts[i].pending += s->states.counts[i].tx;
        s->states.counts[i].tx = 0;
    }
}

void state_ix_rolled_back(store_t *s, const op_t *tx)
{
    for (const op_t *o = tx; o; o = o->next) {
        state_ix_t *e = entry_of(s, o);
        if (e)
            e->tx = NULL;
    }
    for (size_t i = 0; i < STATE_COUNTS; i++)
        s->states.counts[i].tx = 0;
}

void state_ix_flushed(store_t *s, bool durable)
{
    state_index_t *x = &s->states;
    for (size_t i = 0; i < STATE_COUNTS; i++) {
        state_count_t *c = &x->counts[i];
        c->valid = c->valid && durable;
        c->disk = (size_t)((long)c->disk + c->pending);
        c->pending = 0;
    }
    /* the committed ops are gone; an entry the open transaction still
     * needs stays, and looks at the disk again */
    for (size_t i = 0; i < x->n_buckets; i++) {
        for (state_ix_t **p = &x->buckets[i]; *p;) {
            state_ix_t *e = *p;
            e->pending = NULL;
            e->flushed = NULL;
            e->on_disk = -1;
            if (e->tx) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            plat_free(&s->plat, e);
            x->n--;
        }
    }
}

void state_ix_free(store_t *s)
{
    state_index_t *x = &s->states;
    for (size_t i = 0; i < x->n_buckets; i++) {
        for (state_ix_t *e = x->buckets[i], *next; e; e = next) {
            next = e->next;
            plat_free(&s->plat, e);
        }
    }
    plat_free(&s->plat, x->buckets);
    memset(x, 0, sizeof *x);
}

/* Count the record files with c's prefix, then what the staged ops
 * change.  0, or -1. */
static int recount(store_t *s, state_count_t *c)
{
    char p[4096];
    if (path(s, p, sizeof p, "state"))
        return -1;
    c->disk = 0;
    c->tx = c->pending = 0;
    DIR *d = store_io_opendir(&s->io, p);
    if (!d && errno != ENOENT)
        return -1;
    int rc = 0;
    while (d) {
        errno = 0;
        struct dirent *de = store_io_readdir(&s->io, d);
        if (!de) {
            rc = errno ? -1 : 0;
            break;
        }
        struct stat st;
        if (!state_name_ok(de->d_name) || !has_prefix(de->d_name, c->prefix))
            continue;
        if (store_io_fstatat(&s->io, dirfd(d), de->d_name, &st)) {
            if (errno == ENOENT)
                continue;
            rc = -1;
            break;
        }
        c->disk += S_ISREG(st.st_mode);
    }
    if (d)
        store_io_closedir(&s->io, d);
    state_index_t *x = &s->states;
    for (size_t i = 0; !rc && i < x->n_buckets; i++) {
        for (state_ix_t *e = x->buckets[i]; !rc && e; e = e->next) {
            const op_t *newest = state_ix_newest(e);
            if (!newest || !op_is_state(newest) || !has_prefix(e->name, c->prefix))
                continue; /* certificate and key ops are no state records */
            int base = on_disk(s, e);
            int committed = e->pending ? e->pending->kind == OP_STATE_PUT : base;
            int now = e->tx ? e->tx->kind == OP_STATE_PUT : committed;
            if (base < 0 || committed < 0) {
                rc = -1;
                break;
            }
            c->pending += committed - base;
            c->tx += now - committed;
        }
    }
    c->valid = !rc;
    return rc;
}

int store_count_state(store_t *s, const char *prefix, size_t *n)
{
    state_index_t *x = &s->states;
    if (!prefix || strlen(prefix) >= sizeof x->counts[0].prefix || store_recover_if_needed(s))
        return -1;
    state_count_t *c = NULL;
    for (size_t i = 0; i < STATE_COUNTS && !c; i++)
        if (x->counts[i].used && !strcmp(x->counts[i].prefix, prefix))
            c = &x->counts[i];
    if (!c) {
        c = &x->counts[x->next_count++ % STATE_COUNTS];
        memset(c, 0, sizeof *c);
        strcpy(c->prefix, prefix);
        c->used = true;
    }
    if (!c->valid && recount(s, c))
        return -1;
    long total = (long)c->disk + c->pending + c->tx;
    *n = total > 0 ? (size_t)total : 0;
    return 0;
}
