/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_atomic.c - Atomic (all-or-nothing across the engine tree and every
 * plugin it touches) and Sequence (in order; a UI No/cancel skips the rest).
 */
#include "dispatch.h"

typedef struct child_run {
    syncml_cmd_t *first;     /* first reply object the child produced */
    syncml_cmd_t *last;
    uint64_t touched;
    bool failed;
} child_run_t;

/* A status saying the command (or item) was carried out. */
static bool carried_out(int code)
{
    return code == 200 || code == 202 || code == 213;
}

/* Rewrite the Statuses a child produced: all of them, or (only_ok) those
 * of its items that had been carried out. */
static void restatus(dm_exec_t *x, const child_run_t *c, int code, bool only_ok)
{
    for (syncml_cmd_t *s = c->first; s; s = s->next) {
        if (s->type == SYNCML_CMD_STATUS && (!only_ok || carried_out(status_code(s))))
            status_set_code(x, s, code);
        if (s == c->last)
            break;
    }
}

static bool allowed_in_atomic(syncml_cmd_type_t t)
{
    return t == SYNCML_CMD_ADD || t == SYNCML_CMD_REPLACE || t == SYNCML_CMD_DELETE ||
           t == SYNCML_CMD_COPY || t == SYNCML_CMD_EXEC || t == SYNCML_CMD_ALERT;
}

static void skip_children(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    for (const syncml_cmd_t *c = cmd->children; c; c = c->next)
        status_add(x, c, 215);
}

static void run_child(dm_exec_t *x, const syncml_cmd_t *c, child_run_t *run)
{
    syncml_cmd_t *before = x->reply->cmds_tail;
    uint64_t outer = x->touched;
    x->touched = 0;
    int code;
    if (!allowed_in_atomic(c->type) && !c->decode_status) {
        /* Get, nested Atomic, Sequence: not allowed inside an Atomic; the
         * children of a refused Atomic/Sequence are not executed (215) */
        atomic_reject(x, c, 500);
        code = 500;
    } else {
        code = dispatch_command(x, c);
    }
    run->first = before ? before->next : x->reply->cmds;
    run->last = x->reply->cmds_tail;
    run->touched = x->touched;
    run->failed = code >= 300 || code == 214 || x->atomic_ui_fail;
    x->touched = outer | run->touched;
}

void cmd_atomic(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    syncml_cmd_t *st = status_add(x, cmd, 200);
    size_t n = 0;
    for (const syncml_cmd_t *c = cmd->children; c; c = c->next)
        n++;
    child_run_t *runs = n ? arena_alloc(x->scratch, n * sizeof *runs) : NULL;
    if (!st)
        return;
    if (n && !runs) {
        /* nothing ran */
        status_set_code(x, st, 500);
        skip_children(x, cmd);
        return;
    }
    run_mode_t outer_mode = x->mode;
    size_t sp = dmtree_savepoint(x->dm);
    x->mode = RUN_ATOMIC;
    x->atomic_ui_fail = false;
    bool failed = false;
    size_t ran = 0;
    for (const syncml_cmd_t *c = cmd->children; c; c = c->next) {
        if (failed) {
            status_add(x, c, 215);
            continue;
        }
        run_child(x, c, &runs[ran]);
        failed = runs[ran++].failed;
    }
    x->mode = outer_mode;
    csp_tx_result_t res;
    int rc = csp_tx_finish(x->dm, !failed, &res);
    int refused = !failed && rc ? rc : 0; /* a plugin refused to validate or commit */
    if (!failed && !refused)
        return;
    dmtree_rollback_to(x->dm, sp);
    /* undone: 216 (516 where a plugin could not roll back), including the
     * items that had succeeded within the command that failed; the
     * commands in a plugin that refused the whole carry its code */
    for (size_t i = 0; i < ran; i++) {
        int code = runs[i].touched & res.rollback_failed ? 516 : 216;
        if (refused && (runs[i].touched & res.refused))
            code = refused;
        restatus(x, &runs[i], code, runs[i].failed);
    }
    status_set_code(x, st, 507);
    x->atomic_ui_fail = false;
}

void cmd_sequence(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    run_mode_t outer_mode = x->mode;
    if (outer_mode == RUN_ATOMIC) {
        status_add(x, cmd, 500);
        return;
    }
    status_add(x, cmd, 200);
    x->mode = RUN_SEQUENCE;
    x->ui_stop = false;
    for (const syncml_cmd_t *c = cmd->children; c; c = c->next) {
        if (x->ui_stop)
            status_add(x, c, 215);
        else
            dispatch_command(x, c);
    }
    x->ui_stop = false;
    x->mode = outer_mode;
}

void atomic_reject(dm_exec_t *x, const syncml_cmd_t *cmd, int code)
{
    status_add(x, cmd, code);
    skip_children(x, cmd);
}
