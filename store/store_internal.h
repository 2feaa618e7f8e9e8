/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_internal.h - what store.c shares with store_flush.c and
 * store_check.c.
 */
#ifndef OMADM_STORE_INTERNAL_H
#define OMADM_STORE_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "store.h"
#include "store_io.h"

/* At least the number of store kinds (store_kinds). */
#define STORE_KINDS_MAX 16

typedef enum { OP_PUT, OP_DEL, OP_KEY, OP_STATE_PUT, OP_STATE_DEL } op_kind_t;

/* Certificate ops (OP_PUT, OP_DEL, OP_KEY) name (store, thumb).  State ops
 * name a state record instead and have store == NULL: every walk over an
 * op list that matches o->store against a store kind skips them. */
typedef struct op {
    op_kind_t kind;
    const store_kind_t *store;
    char thumb[STORE_THUMB_LEN + 1];
    store_rec_t rec;         /* OP_PUT */
    char *key_pem;           /* OP_KEY */
    char *state_name;        /* OP_STATE_PUT, OP_STATE_DEL */
    char *state_data;        /* OP_STATE_PUT: len bytes (+ a NUL), wiped when freed */
    size_t state_len;
    long long boff, blen;    /* OP_PUT: its block in the bundle, set by flush */
    unsigned long hash;      /* OP_PUT in a trust store: subject hash, set by flush */
    struct op *hash_next;    /* the batch's next put with that (store, hash), set by flush */
    struct op *next;
} op_t;

/* ---- the state ops by name (state_index.c) ---- */

typedef struct state_ix state_ix_t;

#define STATE_COUNTS 4

/* The number of state records whose name starts with prefix: on disk
 * (when last counted) plus what the committed and the open changes add
 * or remove. */
typedef struct state_count {
    char prefix[32];
    bool used, valid;
    size_t disk;
    long pending, tx;
} state_count_t;

typedef struct state_index {
    state_ix_t **buckets;
    size_t n_buckets, n;
    state_count_t counts[STATE_COUNTS];
    unsigned next_count;          /* the slot a new prefix takes */
} state_index_t;

struct store {
    omadm_platform_t plat;        /* the host's table, defaults filled in */
    store_io_t io;                /* the fault hook of the I/O tests (none: zero) */
    char *dir;
    int lock_fd;                  /* flock'ed for the life of the store */
    dev_t lock_dev;               /* the lock file's identity, while registered */
    ino_t lock_ino;
    bool registered;              /* in the process's list of open stores */
    struct store *next_open;      /* that list */
    bool needs_recovery;          /* a durable batch is not applied yet */
    bool in_tx;
    op_t *tx, *tx_tail;           /* the open transaction */
    op_t *pending, *pending_tail; /* committed, not yet flushed */
    bool unlocked;                /* lock released by store_unlock */
    state_index_t states;         /* the state ops of both lists by name */
    const char *recover_why;      /* why the last recovery failed (static text) */
    char blocked_why[512];        /* store_blocked_why's text */
    store_rec_t last_read;        /* store_peek's last record from the disk */
    const store_kind_t *last_read_kind; /* its store; NULL: none to reuse */
    /* certs/<store> of each store kind, open while the lock is held for
     * store_peek's reads (openat: no path walked again for each); -1 none.
     * Closed with store_forget_read, and when the lock is given up. */
    int certs_fd[STORE_KINDS_MAX];
};

/* Memory of a record, an op list, a file read: from the platform table p
 * (the store's), back to the same table. */
void rec_clear(const omadm_platform_t *p, store_rec_t *r);
/* Drop store_peek's copy of the last record it read, and close the
 * directories it reads from: the disk may change (a flush, a recovery,
 * the lock given up). */
void store_forget_read(store_t *s);
/* Apply a batch that was committed but not applied (needs_recovery). */
int store_recover_if_needed(store_t *s);
void free_ops(const omadm_platform_t *p, op_t *o);
/* snprintf of "<store dir>/<fmt>" into buf; -1 when it does not fit. */
int path(const store_t *s, char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The format line of record files: "omadm-cert 1" (docs/certificatestore.md). */
#define STORE_CERT_FORMAT "omadm-cert"
#define STORE_CERT_CURRENT 1
#define STORE_CERT_WRITES "omadm-cert 1"

/* Record file bytes (from p); boff/blen: its block in the bundle or -1. */
char *rec_serialise(const omadm_platform_t *p, const store_rec_t *r, long long boff,
                    long long blen, size_t *len);
/* 0, -1 (not a record; *why says why when why is not NULL), -2 (p had
 * no memory) or -3 (a record of a newer format: nothing of it is read). */
int rec_parse(const omadm_platform_t *p, char *text, store_rec_t *r, long long *boff,
              long long *blen, const char **why);
/* Whole file, NUL-terminated, from plat, read through io; NULL with errno
 * set (EFBIG: not a regular file, or 64 MiB or more; ENOMEM: plat had no
 * memory; ENOENT: no such file; anything else: I/O). */
char *read_file(const omadm_platform_t *plat, const store_io_t *io, const char *p, size_t *len);
/* 0 found, 1 absent, -1 error (no memory, I/O: nothing is known), -2
 * damaged (a file that is not a record), -3 a record of a newer format
 * (neither absent nor readable: never replaced or counted as absent). */
int disk_get(const store_t *s, const char *store, const char *thumb, store_rec_t *r,
             long long *boff, long long *blen);
/* Newest staged op for (store, thumb) in the open transaction (in_tx) or
 * in the committed changes (key ops when want_key), or NULL: one lookup in
 * the index of staged ops, whatever the batch holds. */
const op_t *find_op(const store_t *s, bool in_tx, const store_kind_t *k, const char *thumb,
                    bool want_key);

static inline bool op_is_state(const op_t *o)
{
    return o->kind == OP_STATE_PUT || o->kind == OP_STATE_DEL;
}
/* Write trust store k's CApath directory and bundle anew from its records
 * (store_repair.c), in a journal batch of its own: only with nothing
 * staged, nothing to recover, and every record readable.  0 done (durable;
 * applied now or before the next lookup), -1 nothing changed (*why). */
int store_rebuild_trust(store_t *s, const store_kind_t *k, const char **why);

/* A name store_put_state accepts (also: which files in state/ are records). */
bool state_name_ok(const char *name);

/* The index of staged ops: state ops by their record name, certificate
 * and key ops by the name op_ix_name gives them, which no state record can
 * have (state_name_ok).  op_ix_name: 0, or -1 when it does not fit. */
int op_ix_name(const op_t *o, char *buf, size_t size);
int cert_ix_name(const store_kind_t *k, const char *thumb, bool key, char *buf, size_t size);
#define OP_IX_NAME_MAX 64
/* The entry of a name (NULL: no op staged for it), or a new one (NULL:
 * no memory). */
state_ix_t *state_ix_find(const store_t *s, const char *name);
state_ix_t *state_ix_get(store_t *s, const char *name);
/* The newest staged op of an entry (the open transaction first), or NULL
 * (none any more: the name shadows nothing).  e may be NULL. */
const op_t *state_ix_newest(const state_ix_t *e);
/* During a flush, which goes through the committed ops in order: the op
 * of o's name the flush did last (NULL: none yet, the state before the
 * batch is on disk), and noting that it did o. */
const op_t *state_ix_flushed_before(const store_t *s, const op_t *o);
void state_ix_flush_did(const store_t *s, const op_t *o);
/* Its newest op in the open transaction (in_tx) or the committed changes. */
const op_t *state_ix_op(const state_ix_t *e, bool in_tx);
const char *state_ix_name(const state_ix_t *e);
/* Whether o is the newest committed op of e's name (true without e). */
bool state_ix_pending_is(const state_ix_t *e, const op_t *o);
/* cb for every entry until it returns non-zero (returned). */
int state_ix_each(const store_t *s, int (*cb)(void *ctx, const state_ix_t *e), void *ctx);
/* o, an op for e's name, was appended to the open transaction. */
void state_ix_staged(store_t *s, state_ix_t *e, const op_t *o);
/* The open transaction tx was committed, or rolled back (before its ops
 * are freed). */
void state_ix_committed(store_t *s, const op_t *tx);
void state_ix_rolled_back(store_t *s, const op_t *tx);
/* The committed ops left memory: durable (applied, or to be applied at
 * recovery) or lost. */
void state_ix_flushed(store_t *s, bool durable);
void state_ix_free(store_t *s);

/* ---- modes (store_modes.c) ---- */

/* The mode a path of the store must have; rel is relative to the store
 * directory ("" for the directory itself). */
mode_t store_mode_want(const char *rel, bool dir);
/* Give the store directory and every directory from it down to rel (and
 * rel itself, when it exists) the mode store_mode_want says.  A symbolic
 * link is left alone.  0, or -1 (errno) when a chmod failed. */
int store_fix_modes(const store_t *s, const char *rel);
/* mkdir with exactly mode, whatever the umask (an existing directory is
 * left as it is): 0 created, 1 existed, -1 error. */
int store_mkdir(const store_io_t *io, const char *p, mode_t mode);

#endif
