/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_exec.c - Exec: hands the target (and its optional Data argument and
 * Correlator) to the plugin that owns it.  Engine-owned nodes have nothing
 * to execute (405).
 */
#include "acl.h"
#include "dispatch.h"

static int exec_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    dm_target_t t;
    int rc = target_resolve(x, it->target, &t);
    if (rc)
        return rc;
    if (t.uri.query)
        return 405;
    if (!t.csp)
        return t.node ? 405 : 404;
    rc = target_acl(x, &t, ACL_EXEC);
    if (rc)
        return rc;
    if (!t.csp->csp->exec)
        return 405;
    rc = target_csp_touch(x, &t);
    if (rc)
        return rc;
    omadm_csp_req_t req;
    target_csp_req(x, &t, &req);
    omadm_value_t arg = {
        .data = it->has_data ? it->data : NULL,
        .len = it->has_data ? it->data_len : 0,
        .format = item_format(cmd, it),
        .type = item_type(cmd, it),
    };
    rc = t.csp->csp->exec(t.csp->ctx, &req, it->has_data ? &arg : NULL, cmd->correlator);
    if (rc >= 200 && rc < 300)
        return rc; /* e.g. 202: accepted, finishing later */
    return csp_status(rc);
}

void cmd_exec(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    if (cmd->n_items == 0) {
        status_add(x, cmd, 412);
        return;
    }
    int *codes = arena_alloc(x->scratch, cmd->n_items * sizeof(int));
    if (!codes) {
        status_add(x, cmd, 500);
        return;
    }
    size_t i = 0;
    for (const syncml_item_t *it = cmd->items; it; it = it->next, i++) {
        size_t sp = dmtree_savepoint(x->dm);
        codes[i] = item_finish(x, exec_item(x, cmd, it), sp);
    }
    status_for_items(x, cmd, codes);
}
