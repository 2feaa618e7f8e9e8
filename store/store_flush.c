/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_flush.c - turn the committed changes of a batch into one journal:
 * record files, keys, bundle blocks (appended; a removed certificate's
 * block is blanked in place, so each change costs the same however big
 * the bundle is) and the CApath names of every subject hash touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert.h"
#include "journal.h"
#include "platform.h"
#include "store_internal.h"

/* A subject hash of a trust store that puts of the batch have (in batch
 * order, through op->hash_next: what capath_update adds), and whether the
 * batch changes its CApath names. */
typedef struct touched {
    const store_kind_t *store;
    unsigned long hash;
    bool changed;
    op_t *puts, *puts_tail;
} touched_t;

typedef struct flush {
    store_t *s;
    journal_t *j;
    long long cursor[16];        /* bundle size per store kind, -1 = not read yet */
    touched_t *touched;
    size_t n_touched, cap_touched;
    size_t *ix, ix_cap;          /* touched by (store, hash): index + 1, 0 empty; ix_cap a power of 2 */
} flush_t;

static size_t kind_index(const store_kind_t *k)
{
    size_t n;
    return (size_t)(k - store_kinds(&n));
}

/* State of a certificate just before op: an earlier op of this batch, or
 * the disk.  Returns 1 when it exists (rec/boff/blen filled; rec owned by
 * the caller only when *owned), 0 when not, -1 when that cannot be known
 * (no memory, I/O). */
static int before(flush_t *f, const op_t *op, store_rec_t *rec, bool *owned, long long *boff,
                  long long *blen)
{
    /* *owned also says the state came from the disk (not from this batch) */
    const op_t *prior = state_ix_flushed_before(f->s, op);
    *owned = false;
    if (prior) {
        if (prior->kind == OP_DEL)
            return 0;
        *rec = prior->rec;
        *boff = prior->boff;
        *blen = prior->blen;
        return 1;
    }
    int rc = disk_get(f->s, op->store->id, op->thumb, rec, boff, blen);
    if (rc == 0)
        *owned = true;
    /* a damaged record counts as absent, so it can still be deleted or
     * replaced (store check reports what it left behind); a record that
     * could not be read is not known to be absent, and one of a newer
     * format is not ours to replace: the batch fails */
    return rc == 0 ? 1 : rc == -1 || rc == -3 ? -1 : 0;
}

/* Note that the CApath names of subject hash h in store k change. */
static size_t touched_slot(const flush_t *f, const store_kind_t *k, unsigned long h)
{
    uint64_t x = ((uint64_t)h ^ ((uint64_t)kind_index(k) << 32)) * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(x >> 32) & (f->ix_cap - 1);
    while (f->ix[i] && (f->touched[f->ix[i] - 1].store != k || f->touched[f->ix[i] - 1].hash != h))
        i = (i + 1) & (f->ix_cap - 1);
    return i;
}

/* The entry of (k, h) in *at (may be NULL), made when new; changed: the
 * CApath names of (k, h) change.  One lookup whatever the batch holds. */
static int touch(flush_t *f, const store_kind_t *k, unsigned long h, bool changed,
                 touched_t **at)
{
    if (!k->trust)
        return 0;
    if ((f->n_touched + 1) * 2 > f->ix_cap) {
        /* a bigger index: the entries again */
        size_t cap = f->ix_cap ? f->ix_cap * 2 : 64;
        size_t *ix = plat_calloc(&f->s->plat, cap * sizeof *ix);
        if (!ix)
            return -1;
        plat_free(&f->s->plat, f->ix);
        f->ix = ix;
        f->ix_cap = cap;
        for (size_t i = 0; i < f->n_touched; i++)
            f->ix[touched_slot(f, f->touched[i].store, f->touched[i].hash)] = i + 1;
    }
    size_t slot = touched_slot(f, k, h);
    if (!f->ix[slot]) {
        if (f->n_touched == f->cap_touched) {
            size_t cap = f->cap_touched ? f->cap_touched * 2 : 16;
            touched_t *t = plat_realloc(&f->s->plat, f->touched, cap * sizeof *t);
            if (!t)
                return -1;
            f->touched = t;
            f->cap_touched = cap;
        }
        f->touched[f->n_touched++] = (touched_t){k, h, false, NULL, NULL};
        f->ix[slot] = f->n_touched;
    }
    f->touched[f->ix[slot] - 1].changed |= changed;
    if (at)
        *at = &f->touched[f->ix[slot] - 1];
    return 0;
}

static long long *cursor(flush_t *f, const store_kind_t *k)
{
    long long *c = &f->cursor[kind_index(k)];
    if (*c < 0) {
        char p[4096];
        struct stat st;
        if (store_bundle(f->s, k->id, p, sizeof p))
            return NULL;
        if (store_io_stat(&f->s->io, p, &st) == 0)
            *c = (long long)st.st_size;
        else if (errno == ENOENT)
            *c = 0;
        else
            return NULL;
    }
    return c;
}

/* 1 when the bundle holds exactly pem at [off, off+len) on disk, 0 when
 * not (or there is no bundle), -1 when that cannot be told (no memory,
 * I/O). */
static int block_on_disk(flush_t *f, const store_kind_t *k, const char *pem, long long off,
                         long long len)
{
    char p[4096];
    if (store_bundle(f->s, k->id, p, sizeof p))
        return -1;
    const store_io_t *io = &f->s->io;
    int fd = store_io_open(io, p, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int same = -1;
    char *got = plat_alloc(&f->s->plat, (size_t)len);
    ssize_t n = got ? store_io_pread(io, fd, got, (size_t)len, (off_t)off) : -1;
    if (n == (ssize_t)len)
        same = !memcmp(got, pem, (size_t)len);
    else if (n >= 0)
        same = 0; /* the bundle ends before the block */
    plat_free(&f->s->plat, got);
    store_io_close(io, fd); /* read-only: what was read stands */
    return same;
}

/* Blank a certificate's block: same length, newlines kept, so the bundle
 * stays line-structured.  Offsets come from a record file: a block that is
 * not where the record says (a damaged record) is left alone for store
 * check to report, never written over blindly. */
static int blank_block(flush_t *f, const store_kind_t *k, const store_rec_t *old, long long off,
                       long long len, bool on_disk)
{
    size_t pem_len = 0;
    char *pem = cert_pem(&f->s->plat, old->der, old->der_len, &pem_len);
    char rel[128];
    if (!pem)
        return -1;
    long long *end = cursor(f, k);
    int there = end ? 0 : -1, rc = 0; /* no bundle size: nothing is known */
    if (end && off >= 0 && (long long)pem_len == len && off + len <= *end)
        there = on_disk ? block_on_disk(f, k, pem, off, len) : 1;
    if (there < 0)
        rc = -1;
    if (there > 0) {
        for (size_t i = 0; i < pem_len; i++)
            if (pem[i] != '\n')
                pem[i] = ' ';
        snprintf(rel, sizeof rel, "trust/%s.pem", k->id);
        rc = journal_overwrite(f->j, rel, (off_t)off, pem, pem_len);
    }
    plat_free(&f->s->plat, pem);
    return rc;
}

static int append_block(flush_t *f, op_t *op)
{
    size_t pem_len = 0;
    char *pem = cert_pem(&f->s->plat, op->rec.der, op->rec.der_len, &pem_len);
    long long *c = cursor(f, op->store);
    char rel[128];
    int rc = -1;
    if (pem && c) {
        snprintf(rel, sizeof rel, "trust/%s.pem", op->store->id);
        rc = journal_append_at(f->j, rel, (off_t)*c, pem, pem_len);
        op->boff = *c;
        op->blen = (long long)pem_len;
        *c += (long long)pem_len;
    }
    plat_free(&f->s->plat, pem);
    return rc;
}

/* Whether the certificate op replaces can be retired: 0 yes; 1 when its
 * record is damaged (its DER is not a certificate: it counts as absent,
 * and store check reports what it left behind); -1 when that cannot be
 * told.  store_put takes only certificates named by their thumbprint, so
 * a record of this batch, or one on disk whose DER still has the
 * thumbprint it is named by, was a certificate when it was stored: if it
 * does not parse now, the parse failed (no memory), not the record, and
 * skipping it would leave the certificate in the CApath and the bundle. */
static int old_is_certificate(const op_t *op, const store_rec_t *old, bool from_disk,
                              unsigned long *hash)
{
    char thumb[STORE_THUMB_LEN + 1];
    if (!cert_der_subject_hash(old->der, old->der_len, hash))
        return 0;
    if (!from_disk || cert_thumbprint(old->der, old->der_len, thumb))
        return -1;
    return strcmp(thumb, op->thumb) ? 1 : -1;
}

/* What op replaces: blank its bundle block and note its subject hash.  A
 * damaged old record (not a certificate) counts as absent.  *same is set
 * when op puts back exactly the certificate already there. */
static int retire_old(flush_t *f, const op_t *op, bool *same, long long *keep_off,
                      long long *keep_len)
{
    store_rec_t old;
    bool owned;
    long long boff = -1, blen = -1;
    unsigned long hash;
    *same = false;
    int ex = before(f, op, &old, &owned, &boff, &blen);
    if (ex <= 0)
        return ex;
    int rc = 0;
    if (op->kind == OP_PUT && old.der_len == op->rec.der_len &&
        !memcmp(old.der, op->rec.der, old.der_len)) {
        *same = true; /* nothing changes in the bundle or the CApath */
        *keep_off = boff;
        *keep_len = blen;
    } else if (!op->store->trust) {
        /* no CApath, no bundle: the record file is all there is */
    } else if ((rc = old_is_certificate(op, &old, owned, &hash)) == 0) {
        rc = touch(f, op->store, hash, true, NULL);
        if (!rc && blen > 0)
            rc = blank_block(f, op->store, &old, boff, blen, owned);
    } else if (rc == 1) {
        rc = 0; /* damaged: nothing of it to retire */
    }
    if (owned)
        rec_clear(&f->s->plat, &old);
    return rc;
}

static int flush_put(flush_t *f, op_t *op)
{
    char rel[128];
    size_t len = 0;
    bool same = false;
    op->boff = op->blen = -1;
    if (retire_old(f, op, &same, &op->boff, &op->blen))
        return -1;
    if (op->store->trust)
        op->hash = op->rec.info->subject_hash; /* store_put saw to it */
    touched_t *t = NULL;
    if (op->store->trust && !same && append_block(f, op))
        return -1;
    /* an unchanged certificate changes no CApath name, but its op is the
     * newest of its certificate should another op change them */
    if (op->store->trust && touch(f, op->store, op->hash, !same, &t))
        return -1;
    if (t) {
        op->hash_next = NULL;
        if (t->puts_tail)
            t->puts_tail->hash_next = op;
        else
            t->puts = op;
        t->puts_tail = op;
    }
    char *text = rec_serialise(&f->s->plat, &op->rec, op->boff, op->blen, &len);
    if (!text)
        return -1;
    snprintf(rel, sizeof rel, "certs/%s/%s", op->store->id, op->thumb);
    int rc = journal_write_file(f->j, rel, text, len, 0644);
    plat_free(&f->s->plat, text);
    return rc;
}

static int flush_del(flush_t *f, const op_t *op)
{
    char rel[128];
    bool same;
    long long off, len;
    if (retire_old(f, op, &same, &off, &len))
        return -1;
    snprintf(rel, sizeof rel, "certs/%s/%s", op->store->id, op->thumb);
    if (journal_unlink(f->j, rel))
        return -1;
    snprintf(rel, sizeof rel, "keys/%s-%s", op->store->id, op->thumb);
    return journal_unlink(f->j, rel);
}

static int flush_key(flush_t *f, const op_t *op)
{
    char rel[128];
    snprintf(rel, sizeof rel, "keys/%s-%s", op->store->id, op->thumb);
    return journal_write_file(f->j, rel, op->key_pem, strlen(op->key_pem), 0600);
}

/* A state record is one file: no bundle, no CApath, no key.  Deleting an
 * absent one is fine (the journal's unlink ignores ENOENT). */
static int flush_state(flush_t *f, const op_t *op)
{
    char rel[256]; /* names are at most 200 characters */
    if (snprintf(rel, sizeof rel, "state/%s", op->state_name) >= (int)sizeof rel)
        return -1;
    if (op->kind == OP_STATE_DEL)
        return journal_unlink(f->j, rel);
    return journal_write_file(f->j, rel, op->state_data, op->state_len, 0600);
}

/* ---- CApath ---- */

typedef struct member {
    char thumb[STORE_THUMB_LEN + 1];
} member_t;

/* Final state of (store, thumb) after the batch: 1 exists, 0 not, -1 error
 * (not known: no memory, I/O).
 * der/len point at the record's DER (an op's, or *disk filled). */
static int final_state(flush_t *f, const store_kind_t *k, const char *thumb, store_rec_t *disk,
                       const uint8_t **der, size_t *len)
{
    const op_t *o = find_op(f->s, false, k, thumb, false);
    if (o) {
        if (o->kind == OP_DEL)
            return 0;
        *der = o->rec.der;
        *len = o->rec.der_len;
        return 1;
    }
    int rc = disk_get(f->s, k->id, thumb, disk, NULL, NULL);
    if (rc == -1 || rc == -3)
        return -1;
    if (rc)
        return 0; /* absent, or damaged (counted as absent, see before()) */
    *der = disk->der;
    *len = disk->der_len;
    return 1;
}

/* The thumbprint of the certificate in a CApath file (the store wrote it:
 * its PEM block is not parsed as a certificate, only decoded; a file that
 * holds something else is no member of the store whatever it is): 0; 1
 * when the file holds no PEM certificate block; -1 when it cannot be told
 * (no memory, I/O). */
static int thumb_of_file(const store_t *s, const char *p, char thumb[STORE_THUMB_LEN + 1])
{
    const omadm_platform_t *plat = &s->plat;
    size_t len = 0;
    char *text = read_file(plat, &s->io, p, &len);
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = !text ? (errno == EFBIG ? 1 : -1) : cert_pem_der(plat, text, len, &der, &der_len);
    if (rc == -2)
        rc = -1; /* no memory */
    else if (rc == -1 && text)
        rc = 1;  /* no certificate */
    if (!rc && cert_thumbprint(der, der_len, thumb))
        rc = -1;
    plat_free(plat, der);
    plat_free(plat, text);
    return rc;
}

static int add_member(const omadm_platform_t *plat, member_t **m, size_t *n, const char *thumb)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*m)[i].thumb, thumb))
            return 0;
    member_t *nm = plat_realloc(plat, *m, (*n + 1) * sizeof *nm);
    if (!nm)
        return -1;
    *m = nm;
    memcpy(nm[*n].thumb, thumb, STORE_THUMB_LEN + 1);
    (*n)++;
    return 0;
}

/* The files <hash>.0, .1 ... as they are now. */
static int capath_existing(flush_t *f, const touched_t *t, member_t **m, size_t *n)
{
    for (unsigned i = 0;; i++) {
        char p[4096], thumb[STORE_THUMB_LEN + 1];
        if (path(f->s, p, sizeof p, "trust/%s/%08lx.%u", t->store->id, t->hash, i))
            return -1;
        if (store_io_access(&f->s->io, p))
            return errno == ENOENT ? 0 : -1; /* the end of the run, or unknown */
        int got = thumb_of_file(f->s, p, thumb);
        if (got < 0)
            return -1;
        if (got) /* no certificate: no member of the store, written over */
            memset(thumb, '-', STORE_THUMB_LEN), thumb[STORE_THUMB_LEN] = 0;
        member_t *nm = plat_realloc(&f->s->plat, *m, (*n + 1) * sizeof *nm);
        if (!nm)
            return -1;
        *m = nm;
        memcpy(nm[*n].thumb, thumb, sizeof thumb);
        (*n)++;
    }
}

static int capath_write(flush_t *f, const touched_t *t, size_t i, const char *thumb)
{
    store_rec_t disk = {0};
    const uint8_t *der = NULL;
    size_t len = 0, pem_len = 0;
    char rel[128];
    int rc = -1;
    if (final_state(f, t->store, thumb, &disk, &der, &len) == 1) {
        char *pem = cert_pem(&f->s->plat, der, len, &pem_len);
        snprintf(rel, sizeof rel, "trust/%s/%08lx.%zu", t->store->id, t->hash, i);
        rc = pem ? journal_write_file(f->j, rel, pem, pem_len, 0644) : -1;
        plat_free(&f->s->plat, pem);
    }
    rec_clear(&f->s->plat, &disk);
    return rc;
}

static int capath_update(flush_t *f, const touched_t *t)
{
    member_t *now = NULL, *want = NULL;
    size_t n_now = 0, n_want = 0;
    int rc = capath_existing(f, t, &now, &n_now);
    /* keep the members that stay, in their order, then the new ones */
    for (size_t i = 0; !rc && i < n_now; i++) {
        store_rec_t disk = {0};
        const uint8_t *der;
        size_t len;
        int st = final_state(f, t->store, now[i].thumb, &disk, &der, &len);
        rec_clear(&f->s->plat, &disk);
        if (st < 0)
            rc = -1;
        else if (st == 1)
            rc = add_member(&f->s->plat, &want, &n_want, now[i].thumb);
    }
    for (const op_t *o = t->puts; !rc && o; o = o->hash_next) {
        if (find_op(f->s, false, o->store, o->thumb, false) != o)
            continue; /* a later op of the batch replaced or deleted it */
        rc = add_member(&f->s->plat, &want, &n_want, o->thumb);
    }
    for (size_t i = 0; !rc && i < n_want; i++)
        if (i >= n_now || strcmp(now[i].thumb, want[i].thumb))
            rc = capath_write(f, t, i, want[i].thumb);
    for (size_t i = n_want; !rc && i < n_now; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "trust/%s/%08lx.%zu", t->store->id, t->hash, i);
        rc = journal_unlink(f->j, rel);
    }
    plat_free(&f->s->plat, now);
    plat_free(&f->s->plat, want);
    return rc;
}

/* Each write gives what it writes into (and every directory above it,
 * up to the store directory) its mode back, so a store whose modes went
 * wrong heals with its next change.  A chmod that fails does not stop the
 * batch: store_check reports what is left. */
static void fix_modes_of_batch(const store_t *s)
{
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    bool kind[16] = {false}, keys = false, state = false;
    char rel[128];
    for (const op_t *o = s->pending; o; o = o->next) {
        if (op_is_state(o)) {
            state = true;
            continue;
        }
        kind[kind_index(o->store)] = true;
        keys = keys || o->kind == OP_KEY;
    }
    for (size_t i = 0; i < n && i < sizeof kind / sizeof kind[0]; i++) {
        if (!kind[i])
            continue;
        snprintf(rel, sizeof rel, "certs/%s", k[i].id);
        store_fix_modes(s, rel);
        if (!k[i].trust)
            continue;
        snprintf(rel, sizeof rel, "trust/%s", k[i].id);
        store_fix_modes(s, rel);
        snprintf(rel, sizeof rel, "trust/%s.pem", k[i].id);
        store_fix_modes(s, rel);
    }
    if (keys)
        store_fix_modes(s, "keys");
    if (state)
        store_fix_modes(s, "state");
}

int store_flush(store_t *s)
{
    if (s->unlocked || store_recover_if_needed(s))
        return -1;
    if (!s->pending)
        return 0;
    store_forget_read(s);
    fix_modes_of_batch(s);
    flush_t f = {.s = s, .j = journal_new(&s->plat, &s->io)};
    for (size_t i = 0; i < sizeof f.cursor / sizeof f.cursor[0]; i++)
        f.cursor[i] = -1;
    int rc = f.j ? 0 : -1;
    for (op_t *o = s->pending; !rc && o; o = o->next) {
        switch (o->kind) {
        case OP_PUT:
            rc = flush_put(&f, o);
            break;
        case OP_DEL:
            rc = flush_del(&f, o);
            break;
        case OP_KEY:
            rc = flush_key(&f, o);
            break;
        case OP_STATE_PUT:
        case OP_STATE_DEL:
            /* only the newest op of a name matters: the records are
             * independent files (an enrollment rewritten by each of its
             * parameters' Adds is written once) */
            if (state_ix_pending_is(state_ix_find(s, o->state_name), o))
                rc = flush_state(&f, o);
            break;
        default:
            rc = -1;
        }
        if (!rc && (o->kind == OP_PUT || o->kind == OP_DEL))
            state_ix_flush_did(s, o); /* what the next op of its certificate replaces */
    }
    for (size_t i = 0; !rc && i < f.n_touched; i++)
        if (f.touched[i].changed)
            rc = capath_update(&f, &f.touched[i]);
    const char *why = NULL;
    if (!rc)
        rc = journal_commit(f.j, s->dir, &why);
    if (rc == 1) {
        /* durable: it counts; reads recover it before they look */
        s->needs_recovery = true;
        rc = 0;
    }
    /* Done, or failed: either way the batch leaves memory.  A failure
     * before the journal was durable loses the batch (the caller reports
     * it); one after is applied again when the store is next opened. */
    state_ix_flushed(s, rc == 0);
    free_ops(&s->plat, s->pending);
    s->pending = s->pending_tail = NULL;
    journal_free(f.j);
    plat_free(&s->plat, f.touched);
    plat_free(&s->plat, f.ix);
    return rc;
}
