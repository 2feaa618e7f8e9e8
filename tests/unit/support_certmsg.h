/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_certmsg.h - the certificate message the store's failure sweeps
 * run (test_store_alloc: failing allocations; test_store_io: failing file
 * operations) on the host's table (support_host.h), and what they check
 * after each run.
 *
 * The message, on a store seeded with the test PKI's root in Root/System:
 * Add of the intermediate to CA/System, Gets of the root (its encoding,
 * its IssuedBy, its store's list), Delete of the root; as a sequence or
 * in an Atomic.  It can leave four states, byte for byte: the seed, the
 * seed plus the Add, minus the Delete, or both.
 */
#ifndef SUPPORT_CERTMSG_H
#define SUPPORT_CERTMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"
#include "omadm_certstore.h"
#include "store/store_io.h"
#include "support_dm.h"

/* ---- the trust stores ---- */

/* OpenSSL's view of the trust stores: each test certificate (root, inter,
 * leaf, root2) is found through the CApath directory of Root/System and
 * of CA/System (X509_LOOKUP_hash_dir, as `openssl verify -CApath` looks)
 * and in their bundles exactly when the store holds its record.  The
 * number of disagreements, each on stderr. */
int cm_trust_view_problems(const char *dir);

/* ---- the message ---- */

typedef struct cm_cert {
    char thumb[41];
    char *b64;
} cm_cert_t;

extern cm_cert_t cm_root, cm_inter;
/* Load the test PKI's root and intermediate (group setup); free them. */
void cm_certs_load(void);
void cm_certs_free(void);

/* The sweeps' group setup and teardown: the certificates loaded, and a
 * directory for their stores (support_dir.h: tdir_make) in cm_tmp. */
extern char cm_tmp[64];
int cm_group_setup(void **state);
int cm_group_teardown(void **state);

/* The seed message body (Add of the root) and the test message body
 * (malloc'ed).  CmdIDs: 3 Add, 4-6 Gets, 7 Delete; 2 the Atomic. */
char *cm_seed_body(void);
char *cm_test_body(bool atomic);

/* One run: omadm_certstore_open (or, with io, the store opened through
 * store_open_io with that fault hook) + omadm_new + register +
 * omadm_process. */
typedef struct cm_run {
    omadm_certstore_t *cs;
    omadm_t *dm;
    omadm_error_t err;     /* of the step that failed, or of omadm_process */
    const char *stage;     /* "open", "new", "register"; NULL once processed */
    t_reply_t reply;
    int code[8];           /* status of CmdID 1..7 in the reply, -1 when none */
    const char *bad_result; /* a Get answered 200 with what the store does not hold */
} cm_run_t;

void cm_run_message(cm_run_t *r, const char *dir, const omadm_platform_t *plat,
                    const omadm_platform_t *store_plat, const store_io_t *io, int msg_id,
                    const char *body);
void cm_run_close(cm_run_t *r);

/* A fresh store in dir holding the seed (no failures); its listing. */
char *cm_fresh_store(const char *dir);

/* The test message on a fresh store without failures (through io when not
 * NULL): every command answered 200.  cm_run_close it. */
void cm_run_clean(cm_run_t *r, const char *dir, bool atomic, const omadm_platform_t *plat,
                  const omadm_platform_t *store_plat, const store_io_t *io);

/* ---- the states and the checks ---- */

enum { CM_SEED, CM_ADDED, CM_DELETED, CM_BOTH, CM_N };

typedef struct cm_states {
    char *listing[CM_N];
} cm_states_t;

void cm_states_make(cm_states_t *st, const char *dir, bool atomic);
void cm_states_free(cm_states_t *st);

typedef struct cm_stats {
    long runs, failed_open, failed_new, failed_register, failed_process, replies;
    long changed, unchanged;
    long failed_but_durable; /* a message that failed after its batch was durable */
} cm_stats_t;

/* The store in dir, opened again without failures (which replays a
 * durable journal): consistent (store_check) and OpenSSL's view of its
 * trust stores its own, or the test fails; its listing (malloc'ed).  n and
 * what (" (write of ... failed first)", or "") name the run in failure
 * messages, here and below. */
char *cm_checked_listing(const char *dir, long n, const char *what);
/* The same, and the listing is want (which name names: "the seed"). */
void cm_expect_state(const char *dir, const char *want, const char *name, long n,
                     const char *what);

/* What a run under failure left (checked as cm_checked_listing): one of
 * the states the message allows; after a reply, the one its statuses say;
 * after a failure before the message ran, the seed; never half an
 * Atomic. */
void cm_check_after(const cm_run_t *r, const char *dir, const cm_states_t *states, bool atomic,
                    long n, const char *what, cm_stats_t *st);
/* Count what the run did (stage that failed, reply). */
void cm_count_run(const cm_run_t *r, cm_stats_t *st);

#endif
