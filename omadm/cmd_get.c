/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_get.c - Get: leaf values, child lists, properties, and the
 * "?list=Struct" / "?list=StructData" subtree walks.  Status first, then
 * one Results carrying an Item per successful target.
 */
#include <string.h>

#include "acl.h"
#include "dispatch.h"

typedef struct results {
    dm_exec_t *x;
    syncml_item_t *head, *tail;
    size_t n;
} results_t;

static syncml_item_t *result_item(results_t *r, const char *source, const char *format,
                                  const char *type)
{
    arena_t *a = &r->x->reply->arena;
    syncml_item_t *it = arena_alloc(a, sizeof *it);
    if (!it)
        return NULL;
    syncml_meta_init(&it->meta);
    it->source = arena_strdup(a, source);
    it->meta.format = format ? arena_strdup(a, format) : NULL;
    it->meta.type = type ? arena_strdup(a, type) : NULL;
    it->has_meta = true;
    if (!it->source || (format && !it->meta.format) || (type && !it->meta.type))
        return NULL;
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->n++;
    return it;
}

static int set_item_data(results_t *r, syncml_item_t *it, const uint8_t *data, size_t len)
{
    r->x->reply_bytes += len;
    if (r->x->reply_bytes > r->x->dm->cfg.max_reply_size)
        return 413; /* the reply would grow past its limit */
    if (r->x->dm->peer_max_obj > 0 && (int64_t)len > r->x->dm->peer_max_obj)
        return 413; /* more than the server said it can take as one object */
    it->data = arena_memdup(&r->x->reply->arena, data ? data : (const uint8_t *)"", len);
    it->data_len = len;
    it->has_data = true;
    return it->data ? 0 : 500;
}

static int child_list(results_t *r, syncml_item_t *it, const syncml_strlist_t *children)
{
    buf_t b;
    buf_init(&b, r->x->dm);
    for (const syncml_strlist_t *c = children; c; c = c->next) {
        if (c != children)
            buf_putc(&b, '/');
        uri_append_escaped(&b, c->s);
    }
    int rc = b.failed ? 500 : set_item_data(r, it, b.data, b.len);
    buf_free(&b);
    return rc;
}

/* One node's Item: value (leaf) or child names (interior). */
static int add_node_item(results_t *r, const char *source, const dm_read_t *rd, bool data)
{
    syncml_item_t *it = result_item(r, source, rd->interior ? "node" : rd->format, rd->type);
    if (!it)
        return 500;
    r->x->reply_bytes += strlen(source) + 64;
    if (!data)
        return 0;
    if (rd->interior)
        return child_list(r, it, rd->children);
    return set_item_data(r, it, rd->data, rd->len);
}

static const char *child_uri(dm_exec_t *x, const char *base, const char *name)
{
    buf_t b;
    buf_init(&b, x->dm);
    buf_puts(&b, base);
    buf_putc(&b, '/');
    uri_append_escaped(&b, name);
    const char *s = b.failed ? NULL : arena_strndup(x->scratch, (char *)b.data, b.len);
    buf_free(&b);
    return s;
}

/* Resolve a child of an already resolved target without reparsing. */
static int child_target(dm_exec_t *x, const dm_target_t *t, const char *name, const char *uri,
                        dm_target_t *c)
{
    if (t->csp) {
        *c = *t;
        c->uri.text = uri;
        buf_t b;
        buf_init(&b, x->dm);
        if (t->csp_path[0]) {
            buf_puts(&b, t->csp_path);
            buf_putc(&b, '/');
        }
        buf_puts(&b, name);
        c->csp_path = b.failed ? NULL : arena_strndup(x->scratch, (char *)b.data, b.len);
        b.len = 0;
        buf_puts(&b, t->uri.norm);
        buf_putc(&b, '/');
        buf_puts(&b, name);
        c->uri.norm = b.failed ? NULL : arena_strndup(x->scratch, (char *)b.data, b.len);
        buf_free(&b);
        return c->csp_path && c->uri.norm ? 0 : 500;
    }
    return target_resolve(x, uri, c);
}

static int walk(results_t *r, const dm_target_t *t, const char *uri, bool data, unsigned depth)
{
    dm_exec_t *x = r->x;
    dm_read_t rd;
    if (depth > x->dm->cfg.max_uri_depth)
        return 0;
    if (target_acl(x, t, ACL_GET))
        return 0; /* unreadable nodes are left out */
    int rc = target_read(x, t, &rd);
    if (rc)
        return rc;
    rc = add_node_item(r, uri, &rd, data && !rd.interior);
    if (rc || !rd.interior)
        return rc;
    for (const syncml_strlist_t *c = rd.children; c; c = c->next) {
        const char *cu = child_uri(x, uri, c->s);
        dm_target_t ct;
        if (!cu)
            return 500;
        rc = child_target(x, t, c->s, cu, &ct);
        if (!rc)
            rc = walk(r, &ct, cu, data, depth + 1);
        /* a child gone meanwhile, beyond the URI limits, or that cannot be
         * read at all (an Exec-only node answers Get with 405) is left out */
        if (rc && rc != 404 && rc != 414 && rc != 405)
            return rc;
    }
    return 0;
}

/* The URI without its query, as the server spelled it. */
static const char *base_text(dm_exec_t *x, const dm_target_t *t)
{
    const char *q = strchr(t->uri.text, '?');
    size_t n = q ? (size_t)(q - t->uri.text) : strlen(t->uri.text);
    while (n > 1 && t->uri.text[n - 1] == '/')
        n--;
    return arena_strndup(x->scratch, t->uri.text, n);
}

static int get_item(results_t *r, const syncml_item_t *it)
{
    dm_exec_t *x = r->x;
    dm_target_t t;
    dm_read_t rd;
    int rc = target_resolve(x, it->target, &t);
    if (rc)
        return rc;
    if (!t.csp && !t.node)
        return 404;
    rc = target_acl(x, &t, ACL_GET);
    if (rc)
        return rc;
    if (t.uri.query == URI_Q_PROP) {
        rc = prop_get(x, &t, t.uri.query_value, &rd);
        if (rc)
            return rc;
        syncml_item_t *ri = result_item(r, t.uri.text, "chr", NULL);
        if (!ri)
            return 500;
        rc = set_item_data(r, ri, rd.data, rd.len);
        return rc ? rc : 200;
    }
    if (t.uri.query == URI_Q_LIST) {
        const char *kind = t.uri.query_value;
        if (strcmp(kind, "Struct") && strcmp(kind, "StructData"))
            return 406;
        const char *base = base_text(x, &t);
        if (!base)
            return 500;
        size_t before = r->n;
        rc = walk(r, &t, base, !strcmp(kind, "StructData"), 0);
        if (rc && r->n == before)
            return rc;
        return rc ? rc : 200;
    }
    rc = target_read(x, &t, &rd);
    if (rc)
        return rc;
    rc = add_node_item(r, t.uri.text, &rd, true);
    return rc ? rc : 200;
}

void cmd_get(dm_exec_t *x, const syncml_cmd_t *cmd)
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
    results_t r = {.x = x};
    size_t i = 0;
    for (const syncml_item_t *it = cmd->items; it; it = it->next, i++) {
        syncml_item_t *tail = r.tail;
        size_t n = r.n;
        arena_mark_t mark = arena_mark(x->scratch); /* scratch lives per item */
        codes[i] = get_item(&r, it);
        arena_release(x->scratch, mark);
        if (codes[i] >= 300) {
            /* drop any partial items of a failed target */
            r.tail = tail;
            r.n = n;
            if (tail)
                tail->next = NULL;
            else
                r.head = NULL;
        }
    }
    status_for_items(x, cmd, codes);
    if (!r.n)
        return;
    syncml_cmd_t *res = results_add(x, cmd);
    if (!res)
        return;
    res->items = r.head;
    res->items_tail = r.tail;
    res->n_items = r.n;
}
