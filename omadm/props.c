/* SPDX-License-Identifier: Apache-2.0 */
/*
 * props.c - node properties through "?prop=": ACL, Format, Type, Size,
 * Name, Title, TStamp, VerNo.  Nodes inside a plugin report what the
 * plugin knows (Format, Type, Size, Name) and inherit the ACL of their
 * mount point; Title, TStamp and VerNo exist for engine-owned nodes only.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "dispatch.h"

typedef enum { P_ACL, P_FORMAT, P_TYPE, P_SIZE, P_NAME, P_TITLE, P_TSTAMP, P_VERNO, P_UNKNOWN } prop_t;

static prop_t prop_of(const char *name)
{
    static const char *const names[] = {"ACL", "Format", "Type", "Size",
                                        "Name", "Title", "TStamp", "VerNo"};
    for (int i = 0; i < P_UNKNOWN; i++)
        if (!strcmp(names[i], name))
            return (prop_t)i;
    return P_UNKNOWN;
}

static const char *last_segment(const dm_target_t *t)
{
    return t->uri.n_segs ? t->uri.segs[t->uri.n_segs - 1] : ".";
}

/* The engine node a property refers to: the node, or a mount point. */
static dmnode_t *engine_node(const dm_target_t *t)
{
    if (t->csp)
        return t->csp_path[0] ? NULL : t->deepest;
    return t->node;
}

static int set_text(dm_exec_t *x, dm_read_t *out, const char *s)
{
    out->data = (const uint8_t *)arena_strdup(x->scratch, s ? s : "");
    out->len = s ? strlen(s) : 0;
    out->format = "chr";
    return out->data ? 0 : 500;
}

static int prop_get_engine(dm_exec_t *x, const dmnode_t *n, prop_t p, dm_read_t *out)
{
    char num[32];
    switch (p) {
    case P_ACL:
        return set_text(x, out, n->acl);
    case P_TITLE:
        return set_text(x, out, n->title);
    case P_TSTAMP: {
        time_t ts = (time_t)n->tstamp;
        struct tm tm;
        if (!gmtime_r(&ts, &tm))
            return 500;
        strftime(num, sizeof num, "%Y%m%dT%H%M%SZ", &tm);
        return set_text(x, out, num);
    }
    case P_VERNO:
        snprintf(num, sizeof num, "%u", (unsigned)n->verno);
        return set_text(x, out, num);
    case P_NAME:
        return set_text(x, out, n->parent ? n->name : ".");
    default:
        return 406;
    }
}

int prop_get(dm_exec_t *x, const dm_target_t *t, const char *prop, dm_read_t *out)
{
    prop_t p = prop_of(prop);
    if (p == P_UNKNOWN)
        return 406;
    dm_read_t node;
    int rc = target_read(x, t, &node);
    if (rc)
        return rc;
    memset(out, 0, sizeof *out);
    char num[32];
    switch (p) {
    case P_FORMAT:
        return set_text(x, out, node.interior ? "node" : node.format);
    case P_TYPE:
        return set_text(x, out, node.type ? node.type : node.interior ? "" : "text/plain");
    case P_SIZE:
        if (node.interior)
            return 406;
        snprintf(num, sizeof num, "%zu", node.len);
        return set_text(x, out, num);
    case P_NAME:
        if (t->csp && t->csp_path[0])
            return set_text(x, out, last_segment(t));
        break;
    default:
        break;
    }
    const dmnode_t *n = engine_node(t);
    if (!n)
        return p == P_ACL ? set_text(x, out, "") : 406;
    return prop_get_engine(x, n, p, out);
}

/* Who may change a node's ACL: Replace on the node (interior) or on its
 * parent (leaf). */
static int acl_change_allowed(dm_exec_t *x, const dmnode_t *n)
{
    const dmnode_t *holder = n->interior || !n->parent ? n : n->parent;
    return acl_allows(dmtree_effective_acl(holder), ACL_REPLACE, x->server_id) ? 0 : 425;
}

static const char *item_text(dm_exec_t *x, const syncml_item_t *it, bool trim)
{
    const char *s = it->has_data ? (const char *)it->data : "";
    size_t n = it->has_data ? it->data_len : 0;
    if (memchr(s, 0, n))
        return NULL;
    while (trim && n && strchr(" \t\r\n", *s))
        s++, n--;
    while (trim && n && strchr(" \t\r\n", s[n - 1]))
        n--;
    return arena_strndup(x->scratch, s, n);
}

/* Whether some server could still change n's ACL once it is acl (valid):
 * a leaf's ACL is governed by its parent, which does not change here; an
 * interior node's by its own ACL as it would then be in force (acl, or
 * the nearest ancestor's when acl is empty), which must grant Replace to
 * some server; the root's must grant Replace to the server making the
 * change (or to every server), the only server the device knows exists. */
static bool acl_keeps_a_manager(dm_exec_t *x, const dmnode_t *n, const char *acl)
{
    if (!n->parent)
        return acl_allows(acl, ACL_REPLACE, x->server_id);
    if (!n->interior)
        return true;
    return acl_grants(*acl ? acl : dmtree_effective_acl(n->parent), ACL_REPLACE);
}

static int replace_acl(dm_exec_t *x, dmnode_t *n, const syncml_item_t *it)
{
    int rc = acl_change_allowed(x, n);
    if (rc)
        return rc;
    const char *acl = item_text(x, it, true);
    if (!acl || !acl_valid(acl))
        return 400;
    /* the root always has an ACL, and no change may leave an ACL that no
     * server can change again: that would lock every server out */
    if (!acl_keeps_a_manager(x, n, acl))
        return 400;
    return dmtree_set_acl(x->dm, n, acl) ? 500 : 0;
}

static int replace_name(dm_exec_t *x, dmnode_t *n, const syncml_item_t *it)
{
    if (n->permanent || !n->parent)
        return 405;
    if (!acl_allows(dmtree_effective_acl(n), ACL_REPLACE, x->server_id))
        return 425;
    const char *name = item_text(x, it, true);
    if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return 400;
    /* the name must stay addressable: its escaped form within MaxSegLen */
    buf_t esc;
    buf_init(&esc, x->dm);
    uri_append_escaped(&esc, name);
    size_t esc_len = esc.len;
    bool failed = esc.failed;
    buf_free(&esc);
    if (failed)
        return 500;
    if (esc_len > x->dm->cfg.max_seg_len)
        return 414;
    const dmnode_t *other = dmtree_child(x->dm, n->parent, name);
    if (other && other != n)
        return 418;
    return dmtree_rename(x->dm, n, name) ? 500 : 0;
}

int prop_replace(dm_exec_t *x, dm_target_t *t, const char *prop, const syncml_item_t *it)
{
    prop_t p = prop_of(prop);
    if (p == P_UNKNOWN)
        return 406;
    dmnode_t *n = engine_node(t);
    if (!n) {
        if (t->csp) {
            dm_read_t r;
            int rc = target_read(x, t, &r);
            return rc ? rc : 405;
        }
        return 404;
    }
    switch (p) {
    case P_ACL:
        return replace_acl(x, n, it);
    case P_NAME:
        return t->csp ? 405 : replace_name(x, n, it);
    case P_TITLE: {
        if (!acl_allows(dmtree_effective_acl(n), ACL_REPLACE, x->server_id))
            return 425;
        const char *title = item_text(x, it, false);
        if (!title)
            return 400;
        return dmtree_set_title(x->dm, n, title) ? 500 : 0;
    }
    default:
        return 405;
    }
}
