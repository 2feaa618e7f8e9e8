/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_csp.c - the in-memory test CSP (see support_csp.h).
 */
#include "support_csp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- node list ----------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void node_free(tcsp_node_t *n)
{
    free(n->path);
    free(n->data);
    free(n->format);
    free(n->type);
}

static void nodes_clear(tcsp_nodes_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        node_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void node_copy(tcsp_node_t *d, const tcsp_node_t *s)
{
    d->path = xstrdup(s->path);
    d->interior = s->interior;
    d->len = s->len;
    d->data = NULL;
    if (s->data) {
        d->data = malloc(s->len + 1);
        memcpy(d->data, s->data, s->len + 1);
    }
    d->format = xstrdup(s->format);
    d->type = xstrdup(s->type);
}

static void nodes_copy(tcsp_nodes_t *d, const tcsp_nodes_t *s)
{
    memset(d, 0, sizeof *d);
    d->cap = s->n ? s->n : 1;
    d->v = calloc(d->cap, sizeof *d->v);
    for (size_t i = 0; i < s->n; i++)
        node_copy(&d->v[i], &s->v[i]);
    d->n = s->n;
}

static long find(const tcsp_nodes_t *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].path, path))
            return (long)i;
    return -1;
}

static tcsp_node_t *append(tcsp_nodes_t *l, const char *path, bool interior)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    tcsp_node_t *n = &l->v[l->n++];
    memset(n, 0, sizeof *n);
    n->path = strdup(path);
    n->interior = interior;
    return n;
}

static void set_leaf(tcsp_node_t *n, const uint8_t *data, size_t len, const char *format,
                     const char *type)
{
    free(n->data);
    free(n->format);
    free(n->type);
    n->data = malloc(len + 1);
    if (len)
        memcpy(n->data, data, len);
    n->data[len] = 0;
    n->len = len;
    n->format = strdup(format ? format : "chr");
    n->type = xstrdup(type);
}

/* Parent path of p ("" for a top-level name). */
static void parent_of(const char *p, char *out, size_t size)
{
    const char *slash = strrchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static bool is_below(const char *path, const char *base)
{
    size_t n = strlen(base);
    if (n == 0)
        return path[0] != 0;
    return !strncmp(path, base, n) && path[n] == '/';
}

static void remove_subtree(tcsp_nodes_t *l, const char *path)
{
    char *p = strdup(path);
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->v[i].path, p) || is_below(l->v[i].path, p))
            node_free(&l->v[i]);
        else
            l->v[w++] = l->v[i];
    }
    l->n = w;
    free(p);
}

/* ---- handlers ------------------------------------------------------------ */

static void trace(tcsp_t *c, tcsp_op_t op)
{
    static const char *const names[TCSP__N] = {"get", "list", "add", "replace", "del", "exec",
                                               "begin", "validate", "commit", "rollback", "end"};
    c->calls[op]++;
    size_t n = strlen(c->trace);
    snprintf(c->trace + n, sizeof c->trace - n, "%s%s", n ? " " : "", names[op]);
}

static void note_req(tcsp_t *c, const omadm_csp_req_t *req)
{
    snprintf(c->last_uri, sizeof c->last_uri, "%s", req->uri ? req->uri : "(null)");
    snprintf(c->last_path, sizeof c->last_path, "%s", req->path ? req->path : "(null)");
    snprintf(c->last_base, sizeof c->last_base, "%s", req->base ? req->base : "(null)");
    snprintf(c->last_server, sizeof c->last_server, "%s",
             req->server_id ? req->server_id : "(null)");
}

static bool failing(const tcsp_t *c, const omadm_csp_req_t *req)
{
    return c->fail_path && req->path && !strcmp(c->fail_path, req->path);
}

/* A failing write that first scribbles on the data (partial work). */
static void dirty(tcsp_t *c)
{
    if (c->fail_dirty)
        set_leaf(append(&c->nodes, "__dirty__", false), (const uint8_t *)"x", 1, "chr", NULL);
}

static int h_get(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_GET);
    note_req(c, req);
    if (failing(c, req))
        return c->fail_code;
    if (!req->path[0])
        return omadm_csp_out_interior(out, "urn:test:csp") ? -500 : 0;
    long i = find(&c->nodes, req->path);
    if (i < 0)
        return -404;
    tcsp_node_t *n = &c->nodes.v[i];
    if (n->interior)
        return omadm_csp_out_interior(out, n->type) ? -500 : 0;
    omadm_value_t v = {.data = n->data, .len = n->len, .format = n->format, .type = n->type};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

static int h_list(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_LIST);
    note_req(c, req);
    if (failing(c, req))
        return c->fail_code;
    char parent[256];
    for (size_t i = 0; i < c->nodes.n; i++) {
        parent_of(c->nodes.v[i].path, parent, sizeof parent);
        if (!strcmp(parent, req->path)) {
            const char *slash = strrchr(c->nodes.v[i].path, '/');
            const char *name = slash ? slash + 1 : c->nodes.v[i].path;
            if (omadm_csp_out_child(out, name))
                return -500;
        }
    }
    return 0;
}

static int h_add(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *v)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_ADD);
    note_req(c, req);
    c->writes_outside_tx += !c->in_tx;
    snprintf(c->last_format, sizeof c->last_format, "%s", v->format ? v->format : "(null)");
    snprintf(c->last_type, sizeof c->last_type, "%s", v->type ? v->type : "(null)");
    if (failing(c, req)) {
        dirty(c);
        return c->fail_code;
    }
    if (!req->path[0] || find(&c->nodes, req->path) >= 0)
        return -418;
    char parent[256];
    parent_of(req->path, parent, sizeof parent);
    if (parent[0]) {
        long p = find(&c->nodes, parent);
        if (p < 0)
            return -404;
        if (!c->nodes.v[p].interior)
            return -405;
    }
    bool interior = v->format && !strcmp(v->format, "node");
    tcsp_node_t *n = append(&c->nodes, req->path, interior);
    if (interior)
        n->type = xstrdup(v->type);
    else
        set_leaf(n, v->data, v->len, v->format, v->type);
    return 0;
}

static int h_replace(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *v)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_REPLACE);
    note_req(c, req);
    c->writes_outside_tx += !c->in_tx;
    snprintf(c->last_format, sizeof c->last_format, "%s", v->format ? v->format : "(null)");
    snprintf(c->last_type, sizeof c->last_type, "%s", v->type ? v->type : "(null)");
    if (failing(c, req)) {
        dirty(c);
        return c->fail_code;
    }
    long i = find(&c->nodes, req->path);
    if (i < 0)
        return -404;
    if (c->nodes.v[i].interior)
        return -405;
    set_leaf(&c->nodes.v[i], v->data, v->len, v->format, v->type);
    return 0;
}

static int h_del(void *ctx, const omadm_csp_req_t *req)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_DEL);
    note_req(c, req);
    c->writes_outside_tx += !c->in_tx;
    if (failing(c, req)) {
        dirty(c);
        return c->fail_code;
    }
    if (find(&c->nodes, req->path) < 0)
        return -404;
    remove_subtree(&c->nodes, req->path);
    return 0;
}

static int h_exec(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *arg,
                  const char *correlator)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_EXEC);
    note_req(c, req);
    c->writes_outside_tx += !c->in_tx;
    c->exec_has_arg = arg != NULL;
    c->exec_arg_len = 0;
    c->exec_format[0] = c->exec_type[0] = 0;
    if (arg) {
        c->exec_arg_len = arg->len < sizeof c->exec_arg ? arg->len : sizeof c->exec_arg;
        if (arg->len)
            memcpy(c->exec_arg, arg->data, c->exec_arg_len);
        snprintf(c->exec_format, sizeof c->exec_format, "%s", arg->format ? arg->format : "(null)");
        snprintf(c->exec_type, sizeof c->exec_type, "%s", arg->type ? arg->type : "(null)");
    }
    c->exec_has_correlator = correlator != NULL;
    snprintf(c->exec_correlator, sizeof c->exec_correlator, "%s", correlator ? correlator : "");
    if (failing(c, req))
        return c->fail_code;
    if (req->path[0] && find(&c->nodes, req->path) < 0)
        return -404;
    return c->exec_result;
}

static int h_begin(void *ctx)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_BEGIN);
    if (c->begin_result)
        return c->begin_result;
    nodes_clear(&c->saved);
    nodes_copy(&c->saved, &c->nodes);
    c->in_tx = true;
    return 0;
}

static int h_validate(void *ctx)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_VALIDATE);
    return c->validate_result;
}

static int h_commit(void *ctx)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_COMMIT);
    if (c->commit_result)
        return c->commit_result;
    nodes_clear(&c->saved);
    c->in_tx = false;
    return 0;
}

static int h_rollback(void *ctx)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_ROLLBACK);
    c->in_tx = false;
    if (c->rollback_result) {
        nodes_clear(&c->saved);
        return c->rollback_result;
    }
    nodes_clear(&c->nodes);
    c->nodes = c->saved;
    memset(&c->saved, 0, sizeof c->saved);
    return 0;
}

static int h_end(void *ctx)
{
    tcsp_t *c = ctx;
    trace(c, TCSP_END);
    return 0;
}

/* ---- public -------------------------------------------------------------- */

void tcsp_init(tcsp_t *c, const char *name, const char *base1, const char *base2)
{
    memset(c, 0, sizeof *c);
    c->bases[0] = base1;
    c->bases[1] = base2;
    c->bases[2] = NULL;
    c->table.name = name;
    c->table.bases = c->bases;
    c->table.get = h_get;
    c->table.list = h_list;
    c->table.add = h_add;
    c->table.replace = h_replace;
    c->table.del = h_del;
    c->table.exec = h_exec;
    c->table.begin = h_begin;
    c->table.validate = h_validate;
    c->table.commit = h_commit;
    c->table.rollback = h_rollback;
    c->table.end_message = h_end;
}

void tcsp_free(tcsp_t *c)
{
    nodes_clear(&c->nodes);
    nodes_clear(&c->saved);
}

void tcsp_put(tcsp_t *c, const char *path, const char *value)
{
    long i = find(&c->nodes, path);
    tcsp_node_t *n = i >= 0 ? &c->nodes.v[i] : append(&c->nodes, path, false);
    set_leaf(n, (const uint8_t *)value, strlen(value), "chr", NULL);
}

void tcsp_mkdir(tcsp_t *c, const char *path)
{
    if (find(&c->nodes, path) < 0)
        append(&c->nodes, path, true);
}

const char *tcsp_value(const tcsp_t *c, const char *path)
{
    long i = find(&c->nodes, path);
    if (i < 0 || c->nodes.v[i].interior)
        return NULL;
    return (const char *)c->nodes.v[i].data;
}

bool tcsp_exists(const tcsp_t *c, const char *path)
{
    return find(&c->nodes, path) >= 0;
}

size_t tcsp_count(const tcsp_t *c)
{
    return c->nodes.n;
}

void tcsp_reset_counters(tcsp_t *c)
{
    memset(c->calls, 0, sizeof c->calls);
    c->trace[0] = 0;
    c->writes_outside_tx = 0;
}
