/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - the engine context and helpers shared by omadm/ files.
 */
#ifndef OMADM_INTERNAL_H
#define OMADM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

struct dmtree;
struct dm_csp_reg;

typedef struct dm_session {
    char *session_id;        /* server's SessionID of the current session */
    char *server;            /* server's Source LocURI */
    unsigned long our_msg_id;/* last MsgID we used in this session */
} dm_session_t;

struct omadm {
    omadm_config_t cfg;          /* strings point into cfg_strings */
    char *cfg_strings;
    omadm_platform_t plat;
    omadm_storage_t storage;
    bool has_storage;
    struct dmtree *tree;
    struct dm_csp_reg **csps;    /* array of registrations */
    size_t n_csps;
    dm_session_t session;
    char *last_server;
    const char *last_detail;     /* static text about the last refused message */
    bool tree_dirty;
    bool session_dirty;
    void *client;                /* client.c: the session we opened, or NULL */
    struct dm_lo *lo;            /* large_obj.c: a large object being received */
    int64_t peer_max_obj;        /* the server's MaxObjSize in our session, 0 = none */
    const char *client_error;    /* static text: why our last session failed */
    struct arena_chunk *spare;   /* arena.c: chunks kept for the next message */
    bool arena_keep;             /* a message is ending: freed chunks become spares */
    size_t spare_bytes;          /* their sizes, at most ARENA_SPARE_MAX */
    struct state_checker *checker; /* state_check.c: omadm_state_check's engine only */
};

/* Allocation through the platform table. */
void *om_alloc(omadm_t *dm, size_t n);            /* not zeroed */
void *om_calloc(omadm_t *dm, size_t n);           /* zeroed */
void *om_realloc(omadm_t *dm, void *p, size_t n);
void om_free(omadm_t *dm, void *p);               /* NULL-safe */
char *om_strdup(omadm_t *dm, const char *s);      /* NULL -> NULL */
char *om_strndup(omadm_t *dm, const char *s, size_t n);

void om_log(omadm_t *dm, omadm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t om_now(omadm_t *dm);

/* A finding about a persisted value (state_check.c): passed on to the
 * host's omadm_state_fn when omadm_state_check runs the load, else
 * nothing.  err as in omadm_state_problem_t (OMADM_OK: a note); found:
 * the format the value names, or NULL; current: the format this library
 * writes; repaired: OMADM_STATE_REPAIR fixed it. */
void state_report(omadm_t *dm, omadm_error_t err, bool repaired, const char *key,
                  const char *found, const char *current, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Findings reported so far (0 outside omadm_state_check). */
unsigned state_reported(const omadm_t *dm);
/* omadm_state_check runs the load (and findings matter more than speed). */
bool state_checking(const omadm_t *dm);
/* ... with OMADM_STATE_REPAIR. */
bool state_repairing(const omadm_t *dm);

/* A new engine with its configuration copied and nothing loaded yet
 * (omadm_new and omadm_state_check start from it; omadm_free frees it). */
omadm_error_t engine_new(const omadm_config_t *cfg, const omadm_platform_t *platform,
                         const omadm_storage_t *storage, omadm_t **out);

/* Secure wipe for secrets. */
void om_wipe(void *p, size_t n);

/* ASCII case-insensitive compare helpers. */
int om_strcaseeq(const char *a, const char *b);
int om_strncaseeq(const char *a, const char *b, size_t n);

#endif
