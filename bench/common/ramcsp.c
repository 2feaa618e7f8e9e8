/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ramcsp.c - see ramcsp.h.
 */
#include "ramcsp.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint32_t path_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

void ramcsp_init(ramcsp_t *s)
{
    memset(s, 0, sizeof *s);
    s->root.path = "";
    s->root.name = "";
    s->root.interior = true;
    s->n_buckets = 1024;
    s->buckets = calloc(s->n_buckets, sizeof *s->buckets);
    if (!s->buckets)
        bench_die("out of memory");
}

static ramcsp_node_t *node_find(const ramcsp_t *s, const char *path, size_t n)
{
    if (n == 0)
        return (ramcsp_node_t *)&s->root;
    for (ramcsp_node_t *e = s->buckets[path_hash(path, n) & (s->n_buckets - 1)]; e; e = e->hnext)
        if (!strncmp(e->path, path, n) && !e->path[n])
            return e;
    return NULL;
}

static void grow(ramcsp_t *s)
{
    size_t nb = s->n_buckets * 2;
    ramcsp_node_t **b = calloc(nb, sizeof *b);
    if (!b)
        bench_die("out of memory");
    for (size_t i = 0; i < s->n_buckets; i++) {
        for (ramcsp_node_t *e = s->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t j = path_hash(e->path, strlen(e->path)) & (nb - 1);
            e->hnext = b[j];
            b[j] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = nb;
}

/* A new child of parent named by path[0..n); returns NULL without memory. */
static ramcsp_node_t *node_insert(ramcsp_t *s, ramcsp_node_t *parent, const char *path,
                                  size_t n, bool interior)
{
    if (s->n_nodes + 1 > s->n_buckets)
        grow(s);
    ramcsp_node_t *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strndup(path, n))) {
        free(e);
        return NULL;
    }
    const char *slash = strrchr(e->path, '/');
    e->name = slash ? slash + 1 : e->path;
    e->interior = interior;
    e->parent = parent;
    e->prev = parent->last;
    if (parent->last)
        parent->last->next = e;
    else
        parent->first = e;
    parent->last = e;
    size_t j = path_hash(e->path, n) & (s->n_buckets - 1);
    e->hnext = s->buckets[j];
    s->buckets[j] = e;
    s->n_nodes++;
    return e;
}

static void node_unhash(ramcsp_t *s, ramcsp_node_t *e)
{
    ramcsp_node_t **pp = &s->buckets[path_hash(e->path, strlen(e->path)) & (s->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
}

static void free_subtree(ramcsp_t *s, ramcsp_node_t *e)
{
    for (ramcsp_node_t *c = e->first, *next; c; c = next) {
        next = c->next;
        free_subtree(s, c);
    }
    node_unhash(s, e);
    s->n_nodes--;
    free(e->path);
    free(e->value);
    free(e->format);
    free(e);
}

static void node_remove(ramcsp_t *s, ramcsp_node_t *e)
{
    ramcsp_node_t *p = e->parent;
    if (e->prev)
        e->prev->next = e->next;
    else
        p->first = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        p->last = e->prev;
    free_subtree(s, e);
}

void ramcsp_free(ramcsp_t *s)
{
    while (s->root.first)
        node_remove(s, s->root.first);
    free(s->buckets);
    s->buckets = NULL;
}

static int set_leaf(ramcsp_node_t *e, const omadm_value_t *v)
{
    uint8_t *d = malloc(v->len + 1);
    char *f = strdup(v->format ? v->format : "chr");
    if (!d || !f) {
        free(d);
        free(f);
        return -500;
    }
    if (v->len)
        memcpy(d, v->data, v->len);
    free(e->value);
    free(e->format);
    e->value = d;
    e->len = v->len;
    e->format = f;
    return 0;
}

/* Interior parents of path, created as needed; NULL (with *rc) on failure. */
static ramcsp_node_t *parent_of(ramcsp_t *s, const char *path, int *rc)
{
    ramcsp_node_t *p = &s->root;
    for (const char *sl = strchr(path, '/'); sl; sl = strchr(sl + 1, '/')) {
        size_t n = (size_t)(sl - path);
        ramcsp_node_t *e = node_find(s, path, n);
        if (e && !e->interior) {
            *rc = -405;
            return NULL;
        }
        if (!e && !(e = node_insert(s, p, path, n, true))) {
            *rc = -500;
            return NULL;
        }
        p = e;
    }
    return p;
}

static int csp_get(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    const ramcsp_node_t *e = node_find(ctx, req->path, strlen(req->path));
    if (!e)
        return -404;
    if (e->interior)
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    omadm_value_t v = {.data = e->value, .len = e->len, .format = e->format};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

static int csp_list(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    const ramcsp_node_t *e = node_find(ctx, req->path, strlen(req->path));
    if (!e)
        return -404;
    if (!e->interior)
        return -406;
    for (const ramcsp_node_t *c = e->first; c; c = c->next)
        if (omadm_csp_out_child(out, c->name))
            return -500;
    return 0;
}

static int csp_add(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *value)
{
    ramcsp_t *s = ctx;
    size_t n = strlen(req->path);
    if (node_find(s, req->path, n))
        return -418;
    int rc = 0;
    ramcsp_node_t *p = parent_of(s, req->path, &rc);
    if (!p)
        return rc;
    bool interior = value->format && !strcmp(value->format, "node");
    ramcsp_node_t *e = node_insert(s, p, req->path, n, interior);
    if (!e)
        return -500;
    if (!interior && set_leaf(e, value)) {
        node_remove(s, e);
        return -500;
    }
    return 0;
}

static int csp_replace(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *value)
{
    ramcsp_node_t *e = node_find(ctx, req->path, strlen(req->path));
    if (!e)
        return -404;
    if (e->interior)
        return -405;
    return set_leaf(e, value);
}

static int csp_del(void *ctx, const omadm_csp_req_t *req)
{
    ramcsp_t *s = ctx;
    ramcsp_node_t *e = node_find(s, req->path, strlen(req->path));
    if (!e)
        return -404;
    if (e == &s->root)
        return -405;
    node_remove(s, e);
    return 0;
}

static const char *const csp_bases[] = {RAMCSP_BASE, NULL};

static const omadm_csp_t ramcsp_plugin = {
    .name = "bench-certstore",
    .bases = csp_bases,
    .get = csp_get,
    .list = csp_list,
    .add = csp_add,
    .replace = csp_replace,
    .del = csp_del,
};

omadm_error_t ramcsp_register(omadm_t *dm, ramcsp_t *t)
{
    return omadm_register_csp(dm, &ramcsp_plugin, t);
}
