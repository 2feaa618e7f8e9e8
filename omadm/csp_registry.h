/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csp_registry.h - registered CSP plugins, their mount points in the tree,
 * the output context handed to their get/list handlers, and the
 * transaction bookkeeping across plugins.
 */
#ifndef OMADM_CSP_REGISTRY_H
#define OMADM_CSP_REGISTRY_H

#include <stdbool.h>

#include "arena.h"
#include "internal.h"
#include "model.h"

typedef struct dm_csp_reg {
    const omadm_csp_t *csp;
    void *ctx;
    unsigned index;          /* position in dm->csps (bit in touch masks) */
    bool in_tx;              /* begin() called, not yet committed/rolled back */
} dm_csp_reg_t;

struct omadm_csp_out {
    arena_t *arena;
    bool is_leaf;
    bool is_interior;
    uint8_t *data;
    size_t len;
    const char *format;
    const char *type;
    syncml_strlist_t *children;
    syncml_strlist_t *children_tail;
    size_t n_children;
    bool failed;
};

void csp_out_init(omadm_csp_out_t *out, arena_t *arena);

void csp_registry_free(omadm_t *dm);

/* Map a handler result to a SyncML status (0 -> 200). */
int csp_status(int rc);

/* Open a plugin transaction if none is open; returns 0 or a status. */
int csp_tx_touch(omadm_t *dm, dm_csp_reg_t *reg);
/* Which plugins (bits by index) refused to validate, or failed to roll
 * back, in csp_tx_finish. */
typedef struct csp_tx_result {
    uint64_t refused;
    uint64_t rollback_failed;
} csp_tx_result_t;

/* Finish every open plugin transaction: validate+commit when ok, else
 * rollback.  Returns 0, the failing validate/commit status, or 516 when a
 * rollback failed; res (may be NULL) says which plugins. */
int csp_tx_finish(omadm_t *dm, bool ok, csp_tx_result_t *res);
/* end_message() on every plugin; 0, or the first failure's status. */
int csp_end_message(omadm_t *dm);

#endif
