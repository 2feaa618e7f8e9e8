/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_repair.c - what a store check may redo without losing anything:
 * a trust store's CApath directory and PEM bundle are derived from its
 * records, so when they disagree with the records they are written anew
 * from them, in one journal batch (crash-safe like every other change).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "journal.h"
#include "platform.h"
#include "store_internal.h"
#include "textbuf.h"

typedef struct member {
    char thumb[STORE_THUMB_LEN + 1];
    store_rec_t rec;
    long long boff, blen;  /* where the record says its block is */
    unsigned long hash;    /* subject hash: the CApath name */
    unsigned idx;          /* the .<n> of the CApath name */
    char *pem;
    size_t pem_len;
} member_t;

typedef struct members {
    member_t *v;
    size_t n, cap;
} members_t;

static void members_free(const omadm_platform_t *p, members_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        rec_clear(p, &m->v[i].rec);
        plat_free(p, m->v[i].pem);
    }
    plat_free(p, m->v);
    memset(m, 0, sizeof *m);
}

static int by_thumb(const void *a, const void *b)
{
    return strcmp(((const member_t *)a)->thumb, ((const member_t *)b)->thumb);
}

/* Every record of k, each one read whole, sorted by thumbprint; -1 (why)
 * when one cannot be read: nothing may be rebuilt without it. */
static int read_members(store_t *s, const store_kind_t *k, members_t *m, const char **why)
{
    char dir[4096];
    if (path(s, dir, sizeof dir, "certs/%s", k->id))
        return -1;
    DIR *d = store_io_opendir(&s->io, dir);
    if (!d) {
        *why = "its record directory cannot be read";
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (errno = 0, e = store_io_readdir(&s->io, d))) {
        if (e->d_name[0] == '.')
            continue;
        char up[STORE_THUMB_LEN + 1];
        if (!cert_thumb_normalise(e->d_name, up) || strcmp(up, e->d_name)) {
            *why = "a file among its records is no record";
            rc = -1;
            break;
        }
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 16;
            member_t *v = plat_realloc(&s->plat, m->v, cap * sizeof *v);
            if (!v) {
                *why = "out of memory";
                rc = -1;
                break;
            }
            m->v = v;
            m->cap = cap;
        }
        member_t *x = &m->v[m->n];
        memset(x, 0, sizeof *x);
        memcpy(x->thumb, up, sizeof up);
        if (disk_get(s, k->id, up, &x->rec, &x->boff, &x->blen)) {
            *why = "a record cannot be read";
            rc = -1;
            break;
        }
        m->n++;
        x->pem = cert_pem(&s->plat, x->rec.der, x->rec.der_len, &x->pem_len);
        if (!x->pem || cert_subject_hash(x->rec.der, x->rec.der_len, &x->hash)) {
            *why = "a record does not hold a certificate";
            rc = -1;
        }
    }
    if (!rc && errno) {
        *why = "its record directory cannot be read";
        rc = -1;
    }
    store_io_closedir(&s->io, d);
    if (!rc && m->n)
        qsort(m->v, m->n, sizeof *m->v, by_thumb);
    return rc;
}

/* The CApath names in thumbprint order within each subject hash. */
static void number_names(members_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        m->v[i].idx = 0;
        for (size_t j = 0; j < i; j++)
            if (m->v[j].hash == m->v[i].hash)
                m->v[i].idx++;
    }
}

static bool is_member_name(const members_t *m, const char *name)
{
    char want[32];
    for (size_t i = 0; i < m->n; i++) {
        snprintf(want, sizeof want, "%08lx.%u", m->v[i].hash, m->v[i].idx);
        if (!strcmp(want, name))
            return true;
    }
    return false;
}

/* The bundle, each moved record, each CApath file, and the removal of
 * every other <hash>.<n> file into j. */
static int stage_rebuild(store_t *s, const store_kind_t *k, members_t *m, journal_t *j)
{
    char rel[512];
    store_buf_t b;
    store_buf_init(&b, &s->plat);
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        member_t *x = &m->v[i];
        long long off = (long long)b.len;
        store_buf_puts(&b, x->pem);
        if (x->boff != off || x->blen != (long long)x->pem_len) {
            size_t len = 0;
            char *text = rec_serialise(&s->plat, &x->rec, off, (long long)x->pem_len, &len);
            snprintf(rel, sizeof rel, "certs/%s/%s", k->id, x->thumb);
            rc = !text || journal_write_file(j, rel, text, len, store_mode_want(rel, false));
            plat_free(&s->plat, text);
        }
        snprintf(rel, sizeof rel, "trust/%s/%08lx.%u", k->id, x->hash, x->idx);
        if (!rc)
            rc = journal_write_file(j, rel, x->pem, x->pem_len, store_mode_want(rel, false));
    }
    size_t len = 0;
    char *bundle = store_buf_take(&b, &len);
    snprintf(rel, sizeof rel, "trust/%s.pem", k->id);
    if (!rc)
        rc = !bundle || journal_write_file(j, rel, bundle, len, store_mode_want(rel, false));
    plat_free(&s->plat, bundle);
    char dir[4096];
    DIR *d = rc || store_capath(s, k->id, dir, sizeof dir) ? NULL : store_io_opendir(&s->io, dir);
    if (!rc && !d && errno != ENOENT)
        rc = -1;
    struct dirent *e;
    while (d && !rc && (e = store_io_readdir(&s->io, d))) {
        unsigned long h;
        unsigned idx;
        char tail;
        /* only what the store names so; anything else is left for a person */
        if (strlen(e->d_name) < 10 || sscanf(e->d_name, "%8lx.%u%c", &h, &idx, &tail) != 2 ||
            is_member_name(m, e->d_name))
            continue;
        snprintf(rel, sizeof rel, "trust/%s/%s", k->id, e->d_name);
        rc = journal_unlink(j, rel);
    }
    if (d)
        store_io_closedir(&s->io, d);
    return rc ? -1 : 0;
}

int store_rebuild_trust(store_t *s, const store_kind_t *k, const char **why)
{
    *why = "the store has changes in progress";
    if (!k->trust || s->in_tx || s->pending || s->unlocked || s->needs_recovery)
        return -1;
    members_t m = {0};
    journal_t *j = NULL;
    int rc = read_members(s, k, &m, why);
    if (!rc) {
        number_names(&m);
        j = journal_new(&s->plat, &s->io);
        *why = "out of memory";
        rc = !j || stage_rebuild(s, k, &m, j) ? -1 : 0;
    }
    if (!rc) {
        store_forget_read(s);
        int c = journal_commit(j, s->dir, why);
        if (c > 0)
            s->needs_recovery = true; /* durable: applied before the next lookup */
        rc = c < 0 ? -1 : 0;
    }
    journal_free(j);
    members_free(&s->plat, &m);
    return rc;
}
