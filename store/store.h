/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the crash-safe certificate and key store.
 *
 * Layout under the store directory (modes: store_modes.c and
 * docs/certificatestore.md; set explicitly, whatever the umask):
 *   certs/<store>/<THUMBPRINT>   one record per certificate (text, DER in base64), 0755/0644
 *   keys/<store>-<THUMBPRINT>    private keys, PEM, directory 0700, files 0600
 *   trust/<store>/<hash>.<n>     OpenSSL CApath (as `openssl rehash` names them), 0755/0644
 *   trust/<store>.pem            PEM bundle of the same certificates, 0644
 *   state/<name>                 state records of other modules (0700/0600)
 *   journal                      present only while a batch is being applied (0600)
 *   journal.applied-<boot id>    the last batch, kept until the next batch's barrier (0600)
 *   lock                         flock'ed while the store is open (0600)
 *
 * Changes are staged in a transaction (begin .. commit/rollback), committed
 * transactions collect in memory and are made durable together by
 * store_flush(): the batch is written to the journal and synced (one
 * barrier), then applied (each file replaced by rename); the journal is
 * kept until the next batch's barrier has made those files durable
 * (journal.h).  Opening the store replays a complete journal (and one kept
 * from another boot) and drops an incomplete one, so after a crash the
 * store holds every flushed batch and nothing of a batch that was not
 * flushed.  Lookups by thumbprint open one
 * file: no scan.
 *
 * Memory and time come from the platform table given to store_open; what
 * the store hands out goes back to it (store_rec_free, plat_free with
 * store_platform).  Only the working memory of libc (a DIR while a
 * directory is read, a FILE while store_check reads a bundle) and of
 * OpenSSL is not the table's.
 */
#ifndef OMADM_STORE_H
#define OMADM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

#define STORE_THUMB_LEN 40

typedef struct store store_t;

typedef struct store_rec {
    char thumb[STORE_THUMB_LEN + 1]; /* uppercase SHA-1 */
    char *name;                      /* node name as the server spelled it at Add: kept
                                        in the record, never listed (listings show
                                        thumb, as Windows does) */
    char *server;                    /* server id that installed it */
    int64_t added;                   /* seconds since the epoch */
    uint8_t *der;
    size_t der_len;
    /* What listings show, derived from der when it was stored (NULL in a
     * record written before records kept it: derive it then).  store_put
     * takes it from the caller's parse, or parses der itself. */
    struct cert_info *info;
} store_rec_t;

/* The stores, by id.  Trust stores also get a CApath and a bundle. */
typedef struct store_kind {
    const char *id;        /* "root", "ca", "my-user", ... */
    const char *label;     /* "Root/System" ... for people */
    bool trust;
} store_kind_t;

const store_kind_t *store_kinds(size_t *n);
/* By id or label, case-insensitively ("root", "Root/System"); NULL if none. */
const store_kind_t *store_kind_find(const char *name);

/* Open (creating directories as needed) and recover.  plat (copied; NULL:
 * the defaults) gives memory, time and randomness.  One process at a time
 * holds a store open: while another process does, this waits.  On failure
 * returns -1 and *why says what went wrong, or -2 ("store already open in
 * this process") when this process holds the same store open already (by
 * any path to it; store_close it first).  Thread-safe. */
int store_open(const char *dir, const omadm_platform_t *plat, store_t **out, const char **why);
void store_close(store_t *s);
const char *store_dir(const store_t *s);
/* Let other processes open the store meanwhile: release its lock.  Only
 * with nothing staged (no open transaction, every commit flushed): 0, or -1
 * and nothing changed.  While unlocked, store_begin and store_flush fail;
 * lookups must not be made (what they read may be half-written by another
 * process). */
int store_unlock(store_t *s);
/* Take the lock again, waiting while another process holds the store open;
 * a batch another process left unapplied is replayed before the next
 * lookup.  0, or -1 (the store stays unlocked). */
int store_relock(store_t *s);
bool store_locked(const store_t *s);
/* A committed batch waits to be applied (its journal could not be applied
 * when last tried, or is of a newer format): lookups fail until it is. */
bool store_blocked(const store_t *s);
/* The same, after one more try to apply it: 0 nothing waits (any more);
 * 1 a journal of a newer format than this library reads, 2 a batch that
 * cannot be applied now (a full disk, say); *text (the store's, valid
 * until the next call on it) names the journal, and for 1 both formats. */
int store_blocked_why(store_t *s, const char **text);
/* The platform table the store was opened with (defaults filled in): what
 * the store hands out (store_get_key, store_get_state) goes back to it with
 * plat_free(store_platform(s), p). */
const omadm_platform_t *store_platform(const store_t *s);

/* Lookups see the open transaction and committed-but-unflushed changes.
 * store_get: 0 found (rec filled, free with store_rec_free on the same
 * store), 1 absent, -1 error. */
int store_get(store_t *s, const char *store, const char *thumb, store_rec_t *rec);
/* store_get without the copy: *rec is the store's, valid until the next
 * call on the store; and -2 (not -1) when the file is there but is not a
 * record (damaged: store_each leaves it out). */
int store_peek(store_t *s, const char *store, const char *thumb, const store_rec_t **rec);
void store_rec_free(const store_t *s, store_rec_t *rec);

/* Every record of a store, in no particular order.  cb returns 0 to go on.
 * A record file that is not a record is skipped; one that cannot be read
 * (I/O) fails the listing (-1). */
int store_each(store_t *s, const char *store, int (*cb)(void *ctx, const store_rec_t *rec),
               void *ctx);
/* A record store_each_report could not read: its file name in
 * certs/<store>/ and why (a short phrase or strerror text; both borrowed for
 * the call).  Returns 0 to go on. */
typedef int (*store_skip_fn)(void *ctx, const char *name, const char *why);
/* store_each, and each record file it cannot read or parse through
 * skipped (NULL: as store_each), where the listing goes on. */
int store_each_report(store_t *s, const char *store,
                      int (*cb)(void *ctx, const store_rec_t *rec), store_skip_fn skipped,
                      void *ctx);

/* The node names of a store's certificates (store_rec_t.name; thumb its
 * thumbprint, which is what the CSP lists), in no particular order: what
 * store_each would list, for much less.  A record whose head is this version's (the format line, the
 * thumbprint, the name) is not read further: one whose later lines are
 * damaged is listed, and store_peek then says it is damaged (-2).  cb
 * returns 0 to go on; its strings are borrowed for the call. */
typedef int (*store_name_fn)(void *ctx, const char *thumb, const char *name);
int store_each_name(store_t *s, const char *store, store_name_fn cb, void *ctx);

/* Transactions: put/del outside begin..commit fail.  store_put takes a
 * certificate the caller has checked (cert_decode, or a parse of its own)
 * named by its thumbprint: it checks the name and the DER's shape up to the
 * subject, not the whole certificate again. */
int store_begin(store_t *s);
int store_put(store_t *s, const char *store, const store_rec_t *rec);   /* copies rec */
int store_del(store_t *s, const char *store, const char *thumb);        /* also its key */
int store_put_key(store_t *s, const char *store, const char *thumb, const char *pem);
int store_commit(store_t *s);
void store_rollback(store_t *s);
bool store_in_tx(const store_t *s);

/*
 * State records: small named blobs other modules keep beside the
 * certificates (SCEP enrollments), in the same transactions and batches,
 * so a certificate and the state that owns it change together.  Files
 * state/<name>, directory 0700, files 0600 (they may hold private keys).
 * name: 1..200 characters of [A-Za-z0-9._-], not starting with '.'.
 */
int store_put_state(store_t *s, const char *name, const void *data, size_t len); /* copies */
int store_del_state(store_t *s, const char *name);   /* absent is not an error */
/* 0 found (*data from store_platform(s), NUL-terminated, *len without the
 * NUL; plat_free it, wiping secrets first), 1 absent, -1 error.  len may
 * be NULL. */
int store_get_state(store_t *s, const char *name, char **data, size_t *len);
/* Names of every state record starting with prefix, staged changes
 * included, in no particular order.  cb returns 0 to go on. */
int store_each_state(store_t *s, const char *prefix,
                     int (*cb)(void *ctx, const char *name), void *ctx);

/* How many state records' names start with prefix (at most 31
 * characters), staged changes included: 0 and *n, or -1.  The first call
 * for a prefix reads the directory; the count is then kept up to date as
 * changes are staged, committed, rolled back and flushed, so later calls
 * cost the same however many records there are. */
int store_count_state(store_t *s, const char *prefix, size_t *n);

/* Make every committed change durable (journal, apply, sync).  0 / -1. */
int store_flush(store_t *s);

/* Private key PEM of a certificate, from store_platform(s) (wipe it, then
 * plat_free it); NULL when none. */
char *store_get_key(store_t *s, const char *store, const char *thumb);

/* Verify records, CApath directories and bundles agree, that files and
 * directories have the modes docs/certificatestore.md gives, that no record
 * or journal is of a newer format and no temp file is left; report each
 * problem through cb.  With STORE_CHECK_REPAIR, fix what can be fixed
 * without losing anything (modes, temp files, a trust store's CApath
 * directory and bundle written anew from its records when every record
 * can be read) and report only what is left; with STORE_CHECK_SAY_REPAIRS
 * too, each repair goes through cb as "repaired: ..." (not counted).
 * Returns the number of problems (0 = consistent). */
#define STORE_CHECK_REPAIR 1u
#define STORE_CHECK_SAY_REPAIRS 2u
int store_check(store_t *s, unsigned flags, void (*cb)(void *ctx, const char *problem), void *ctx);

/* Paths for device software. */
int store_capath(const store_t *s, const char *store, char *buf, size_t size);
int store_bundle(const store_t *s, const char *store, char *buf, size_t size);

#endif
