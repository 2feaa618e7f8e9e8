/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csp_registry.c - plugin registration and cross-plugin transactions.
 */
#include "csp_registry.h"

#include <string.h>

#include "acl.h"
#include "dmtree.h"
#include "uri.h"

void csp_out_init(omadm_csp_out_t *out, arena_t *arena)
{
    memset(out, 0, sizeof *out);
    out->arena = arena;
}

omadm_error_t omadm_csp_out_leaf(omadm_csp_out_t *out, const omadm_value_t *value)
{
    if (!out || !value || (value->len && !value->data))
        return OMADM_E_INVALID_ARG;
    out->data = arena_memdup(out->arena, value->data ? value->data : (const uint8_t *)"",
                             value->len);
    out->format = arena_strdup(out->arena, value->format ? value->format : "chr");
    out->type = value->type ? arena_strdup(out->arena, value->type) : NULL;
    if (!out->data || !out->format || (value->type && !out->type)) {
        out->failed = true;
        return OMADM_E_NOMEM;
    }
    out->len = value->len;
    out->is_leaf = true;
    out->is_interior = false;
    return OMADM_OK;
}

omadm_error_t omadm_csp_out_interior(omadm_csp_out_t *out, const char *type)
{
    if (!out)
        return OMADM_E_INVALID_ARG;
    out->is_interior = true;
    out->is_leaf = false;
    out->format = "node";
    out->type = type ? arena_strdup(out->arena, type) : NULL;
    if (type && !out->type) {
        out->failed = true;
        return OMADM_E_NOMEM;
    }
    return OMADM_OK;
}

omadm_error_t omadm_csp_out_child(omadm_csp_out_t *out, const char *name)
{
    if (!out || !name || !*name || strchr(name, '/'))
        return OMADM_E_INVALID_ARG;
    syncml_strlist_t *n = arena_alloc(out->arena, sizeof *n);
    if (!n || !(n->s = arena_strdup(out->arena, name))) {
        out->failed = true;
        return OMADM_E_NOMEM;
    }
    if (out->children_tail)
        out->children_tail->next = n;
    else
        out->children = n;
    out->children_tail = n;
    out->n_children++;
    return OMADM_OK;
}

int csp_status(int rc)
{
    if (rc == 0)
        return 200;
    if (rc < 0 && rc >= -599 && rc <= -100)
        return -rc;
    return 500;
}

/* A node on the way to a mount point is the device's own.  Servers may add
 * their nodes beside a CSP (./Vendor/Demo), except in a CSP namespace
 * (…/MSFT), which holds only CSPs: there an Add finds no such CSP (404). */
static void mark_path_node(omadm_t *dm, dmnode_t *n, const char *name)
{
    bool ns = om_strcaseeq(name, "MSFT");
    dmtree_make_builtin(dm, n, ns ? ACL_GET : ACL_GET | ACL_ADD);
    n->csp_namespace = ns;
}

/* Check (dry_run) or make the mount point for base.  A dry run finds every
 * conflict, so the real run can only fail for lack of memory. */
static omadm_error_t mount(omadm_t *dm, dm_csp_reg_t *reg, const char *base, bool dry_run)
{
    arena_t a;
    arena_init(&a, dm);
    dm_uri_t u;
    uri_limits_t lim = {0, 0, 0};
    omadm_error_t err = OMADM_OK;
    int rc = uri_parse(&a, base, &lim, &u);
    if (rc || u.query || u.n_segs == 0) {
        err = rc == 500 ? OMADM_E_NOMEM : OMADM_E_INVALID_ARG;
        goto out;
    }
    dmnode_t *n = dmtree_root(dm);
    for (size_t i = 0; i < u.n_segs; i++) {
        if (n->csp) {
            err = OMADM_E_EXISTS;
            goto out;
        }
        dmnode_t *c = dmtree_child(dm, n, u.segs[i]);
        if (!c && dry_run)
            goto out; /* the rest of the path is free */
        if (!c) {
            c = dmtree_add(dm, n, u.segs[i], true, NULL);
            if (!c) {
                err = OMADM_E_NOMEM;
                goto out;
            }
            mark_path_node(dm, c, u.segs[i]);
        } else if (!c->interior) {
            err = OMADM_E_EXISTS;
            goto out;
        } else if (!dry_run && !c->builtin && i + 1 < u.n_segs) {
            /* a node on the way (made by a server, or restored from the
             * persisted tree) becomes part of the device's own tree */
            mark_path_node(dm, c, u.segs[i]);
        }
        n = c;
    }
    if (n->csp || n->first) {
        err = OMADM_E_EXISTS;
        goto out;
    }
    if (dry_run)
        goto out;
    n->csp = reg;
    dmtree_make_builtin(dm, n, ACL_ALL);
out:
    arena_free(&a);
    return err;
}

/* Forget every mount point of reg (after a failed registration). */
static void unmount(dmnode_t *n, const dm_csp_reg_t *reg)
{
    if (n->csp == reg)
        n->csp = NULL;
    for (dmnode_t *c = n->first; c; c = c->next)
        unmount(c, reg);
}

omadm_error_t omadm_register_csp(omadm_t *dm, const omadm_csp_t *csp, void *csp_ctx)
{
    if (!dm || !csp || !csp->bases || !csp->bases[0])
        return OMADM_E_INVALID_ARG;
    if (dm->n_csps >= 64)
        return OMADM_E_INVALID_ARG;
    dm_csp_reg_t **arr = om_realloc(dm, dm->csps, (dm->n_csps + 1) * sizeof *arr);
    if (!arr)
        return OMADM_E_NOMEM;
    dm->csps = arr;
    dm_csp_reg_t *reg = om_calloc(dm, sizeof *reg);
    if (!reg)
        return OMADM_E_NOMEM;
    reg->csp = csp;
    reg->ctx = csp_ctx;
    reg->index = (unsigned)dm->n_csps;
    omadm_error_t err = OMADM_OK;
    for (size_t i = 0; !err && csp->bases[i]; i++)
        err = mount(dm, reg, csp->bases[i], true);
    for (size_t i = 0; csp->bases[i]; i++)
        for (size_t j = 0; !err && j < i; j++)
            if (om_strcaseeq(csp->bases[i], csp->bases[j]))
                err = OMADM_E_EXISTS;
    for (size_t i = 0; !err && csp->bases[i]; i++)
        err = mount(dm, reg, csp->bases[i], false);
    if (err) {
        unmount(dmtree_root(dm), reg);
        om_free(dm, reg);
        return err;
    }
    dm->csps[dm->n_csps++] = reg;
    return OMADM_OK;
}

void csp_registry_free(omadm_t *dm)
{
    for (size_t i = 0; i < dm->n_csps; i++)
        om_free(dm, dm->csps[i]);
    om_free(dm, dm->csps);
    dm->csps = NULL;
    dm->n_csps = 0;
}

int csp_tx_touch(omadm_t *dm, dm_csp_reg_t *reg)
{
    (void)dm;
    if (reg->in_tx)
        return 0;
    int rc = reg->csp->begin ? reg->csp->begin(reg->ctx) : 0;
    if (rc)
        return csp_status(rc);
    reg->in_tx = true;
    return 0;
}

int csp_tx_finish(omadm_t *dm, bool ok, csp_tx_result_t *res)
{
    int status = 0;
    csp_tx_result_t local;
    if (!res)
        res = &local;
    res->refused = res->rollback_failed = 0;
    for (size_t i = 0; ok && i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        if (r->in_tx && r->csp->validate) {
            int rc = r->csp->validate(r->ctx);
            if (rc) {
                status = csp_status(rc);
                res->refused |= 1ull << r->index;
                ok = false;
            }
        }
    }
    for (size_t i = 0; i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        if (!r->in_tx)
            continue;
        r->in_tx = false;
        if (ok) {
            int rc = r->csp->commit ? r->csp->commit(r->ctx) : 0;
            if (rc && !status)
                status = csp_status(rc);
        } else if (r->csp->rollback && r->csp->rollback(r->ctx)) {
            res->rollback_failed |= 1ull << r->index;
            status = status ? status : 516;
        }
    }
    return status;
}

int csp_end_message(omadm_t *dm)
{
    int status = 0;
    for (size_t i = 0; i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        int rc = r->csp->end_message ? r->csp->end_message(r->ctx) : 0;
        if (rc && !status)
            status = csp_status(rc);
    }
    return status;
}

/* ---- background work and generic alerts ---- */

omadm_error_t omadm_step(omadm_t *dm, int64_t *next_due)
{
    if (!dm || !next_due)
        return OMADM_E_INVALID_ARG;
    int64_t now = om_now(dm), earliest = OMADM_NEVER;
    omadm_error_t err = OMADM_OK;
    for (size_t i = 0; i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        if (!r->csp->step)
            continue;
        int64_t due = OMADM_NEVER;
        if (r->csp->step(r->ctx, now, &due)) {
            om_log(dm, OMADM_LOG_WARN, "background work of %s failed; it stays due",
                   r->csp->name ? r->csp->name : "a plugin");
            err = OMADM_E_STORAGE;
        }
        if (due < earliest)
            earliest = due;
    }
    *next_due = earliest;
    return err;
}

omadm_error_t omadm_alerts(omadm_t *dm, omadm_alert_fn fn, void *ctx)
{
    if (!dm || !fn)
        return OMADM_E_INVALID_ARG;
    for (size_t i = 0; i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        if (r->csp->alerts && r->csp->alerts(r->ctx, fn, ctx))
            return OMADM_E_STORAGE;
    }
    return OMADM_OK;
}

omadm_error_t omadm_alert_delivered(omadm_t *dm, const char *id)
{
    if (!dm || !id)
        return OMADM_E_INVALID_ARG;
    for (size_t i = 0; i < dm->n_csps; i++) {
        dm_csp_reg_t *r = dm->csps[i];
        if (!r->csp->alert_delivered)
            continue;
        int rc = r->csp->alert_delivered(r->ctx, id);
        if (rc == 0)
            return OMADM_OK;
        if (rc < 0)
            return OMADM_E_STORAGE;
    }
    return OMADM_E_NOT_FOUND;
}
