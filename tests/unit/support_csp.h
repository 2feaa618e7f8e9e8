/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_csp.h - an in-memory test CSP plugin: a flat list of nodes keyed
 * by their path below the base ("" is the base itself), with real undo
 * (begin() snapshots, rollback() restores), counters for every handler,
 * the last request seen, and switches that make it fail.
 *
 * One tcsp_t is one registration; list several bases in it to have them
 * share the same data.  tcsp_init() copies the full handler table into
 * c->table; a test may NULL out members before registering.
 */
#ifndef SUPPORT_CSP_H
#define SUPPORT_CSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

typedef struct tcsp_node {
    char *path;
    bool interior;
    uint8_t *data;   /* leaves; NUL-terminated copy */
    size_t len;
    char *format;
    char *type;
} tcsp_node_t;

typedef struct tcsp_nodes {
    tcsp_node_t *v;
    size_t n, cap;
} tcsp_nodes_t;

typedef enum {
    TCSP_GET, TCSP_LIST, TCSP_ADD, TCSP_REPLACE, TCSP_DEL, TCSP_EXEC,
    TCSP_BEGIN, TCSP_VALIDATE, TCSP_COMMIT, TCSP_ROLLBACK, TCSP_END, TCSP__N
} tcsp_op_t;

typedef struct tcsp {
    omadm_csp_t table;
    const char *bases[4];
    tcsp_nodes_t nodes;
    tcsp_nodes_t saved;      /* snapshot taken by begin() */
    bool in_tx;
    unsigned calls[TCSP__N];
    unsigned writes_outside_tx; /* add/replace/del/exec without begin(): contract breach */
    char trace[512];         /* "begin add commit ..." in call order */

    /* the last request */
    char last_uri[256], last_path[256], last_base[256], last_server[256];
    /* the last exec */
    bool exec_has_arg;
    uint8_t exec_arg[256];
    size_t exec_arg_len;
    char exec_format[32], exec_type[64];
    bool exec_has_correlator;
    char exec_correlator[64];
    /* the last add/replace value */
    char last_format[32], last_type[64];

    /* failure switches */
    const char *fail_path;   /* handlers addressed at this path ... */
    int fail_code;           /* ... return this (e.g. -404, -500, 7) */
    bool fail_dirty;         /* a failing write first changes the data */
    int exec_result;         /* what exec returns when not failing (0, 202 ...) */
    int begin_result, validate_result, commit_result, rollback_result;
} tcsp_t;

void tcsp_init(tcsp_t *c, const char *name, const char *base1, const char *base2);
void tcsp_free(tcsp_t *c);

/* Seed data directly (no transaction). */
void tcsp_put(tcsp_t *c, const char *path, const char *value);
void tcsp_mkdir(tcsp_t *c, const char *path);
/* Leaf value (NUL-terminated) or NULL when absent / interior. */
const char *tcsp_value(const tcsp_t *c, const char *path);
bool tcsp_exists(const tcsp_t *c, const char *path);
size_t tcsp_count(const tcsp_t *c);
void tcsp_reset_counters(tcsp_t *c);

#endif
