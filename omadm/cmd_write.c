/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_write.c - Add, Replace, Delete and Copy.
 *
 * Each item is all-or-nothing on its own (implicit parents it created are
 * undone when it fails); items of one command are independent, except
 * inside an Atomic, where the Atomic decides.
 */
#include <string.h>

#include "acl.h"
#include "dispatch.h"

typedef int (*item_fn)(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it);

/* Run fn on every item, undoing engine-tree changes of a failed item. */
static void for_each_item(dm_exec_t *x, const syncml_cmd_t *cmd, item_fn fn)
{
    if (cmd->n_items == 0) {
        status_add(x, cmd, 412);
        return;
    }
    int small[8];
    int *codes = cmd->n_items <= 8 ? small : arena_alloc(x->scratch, cmd->n_items * sizeof(int));
    if (!codes) {
        status_add(x, cmd, 500);
        return;
    }
    size_t i = 0;
    for (const syncml_item_t *it = cmd->items; it; it = it->next, i++) {
        size_t sp = dmtree_savepoint(x->dm);
        /* large objects (MoreData) are not reassembled yet: refuse the
         * chunk rather than store part of a value as the whole */
        codes[i] = it->more_data ? 406 : item_finish(x, fn(x, cmd, it), sp);
    }
    status_for_items(x, cmd, codes);
}

static int add_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    dm_target_t t;
    dm_value_t v;
    int rc = target_resolve(x, it->target, &t);
    if (rc)
        return rc;
    if (t.uri.query)
        return 405;
    rc = value_from_item(x, cmd, it, t.csp != NULL, &v);
    if (rc)
        return rc;
    if (!t.csp && t.node)
        return 418;
    rc = target_acl(x, &t, ACL_ADD);
    if (rc)
        return rc;
    rc = target_add_value(x, &t, &v, !strcmp(v.format, "node"));
    return rc ? rc : 200;
}

static int replace_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    dm_target_t t;
    dm_value_t v;
    int rc = target_resolve(x, it->target, &t);
    if (rc)
        return rc;
    if (t.uri.query == URI_Q_LIST)
        return 405;
    if (t.uri.query == URI_Q_PROP) {
        rc = prop_replace(x, &t, t.uri.query_value, it);
        return rc ? rc : 200;
    }
    if (!t.csp && !t.node)
        return 404;
    rc = target_acl(x, &t, ACL_REPLACE);
    if (rc)
        return rc;
    rc = value_from_item(x, cmd, it, t.csp != NULL, &v);
    if (rc)
        return rc;
    rc = target_replace_value(x, &t, &v);
    return rc ? rc : 200;
}

static int delete_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    dm_target_t t;
    (void)cmd;
    int rc = target_resolve(x, it->target, &t);
    if (rc)
        return rc;
    if (t.uri.query)
        return 405;
    if (t.csp) {
        if (!t.csp_path[0])
            return 405;
        rc = target_acl(x, &t, ACL_DELETE);
        if (rc)
            return rc;
        if (!t.csp->csp->del)
            return 405;
        rc = target_csp_touch(x, &t);
        if (rc)
            return rc;
        omadm_csp_req_t req;
        target_csp_req(x, &t, &req);
        return csp_status(t.csp->csp->del(t.csp->ctx, &req));
    }
    if (!t.node)
        return 404;
    if (t.node->permanent || !t.node->parent || !(t.node->access & ACL_DELETE))
        return 405;
    rc = target_acl(x, &t, ACL_DELETE);
    if (rc)
        return rc;
    return dmtree_remove(x->dm, t.node) ? 500 : 200;
}

/* Copy (1.2): leaf to leaf; an existing target is replaced, a missing one
 * added (with implicit parents). */
static int copy_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    dm_target_t src, dst;
    dm_read_t r;
    (void)cmd;
    if (!it->source || !it->target)
        return 412;
    int rc = target_resolve(x, it->source, &src);
    if (!rc)
        rc = target_resolve(x, it->target, &dst);
    if (rc)
        return rc;
    if (src.uri.query || dst.uri.query)
        return 405;
    rc = target_acl(x, &src, ACL_GET);
    if (!rc)
        rc = target_read(x, &src, &r);
    if (rc)
        return rc;
    if (r.interior)
        return 405;
    dm_value_t v = {.data = r.data, .len = r.len, .format = r.format, .type = r.type,
                    .wire_format = r.format, .wire_data = r.data, .wire_len = r.len};
    bool exists = dst.csp ? target_read(x, &dst, &r) == 0 : dst.node != NULL;
    if (exists) {
        if (dst.node && dst.node->interior)
            return 403;
        rc = target_acl(x, &dst, ACL_REPLACE);
        if (!rc)
            rc = target_replace_value(x, &dst, &v);
        if (rc == 405 && dst.node)
            rc = 403; /* the target exists but cannot be overwritten */
    } else {
        rc = target_acl(x, &dst, ACL_ADD);
        if (!rc)
            rc = target_add_value(x, &dst, &v, false);
    }
    return rc ? rc : 200;
}

void cmd_add(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    for_each_item(x, cmd, add_item);
}

void cmd_replace(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    for_each_item(x, cmd, replace_item);
}

void cmd_delete(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    for_each_item(x, cmd, delete_item);
}

void cmd_copy(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    for_each_item(x, cmd, copy_item);
}
