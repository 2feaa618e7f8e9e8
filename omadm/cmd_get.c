/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_get.c - Get: leaf values, child lists, properties, and the
 * "?list=Struct" / "?list=StructData" subtree walks.  Status first, then
 * one Results carrying an Item per successful target.
 */
#include <string.h>

#include "acl.h"
#include "client.h"
#include "codec.h"
#include "dispatch.h"

typedef struct results {
    dm_exec_t *x;
    arena_t *arena;            /* where the items live */
    syncml_item_t *head, *tail;
    size_t n;
    size_t raw;                /* what the items take encoded, about (item_cost) */
    bool wbxml;                /* ... in WBXML */
    size_t budget;             /* a walk pauses once raw passes it (0: never) */
    bool fill;                 /* making a stream's next items */
    walk_t paused;             /* the walk a target left paused */
    get_stream_t *stream;      /* this Get's stream, once one is paused */
} results_t;

/* walk_run: the budget is spent and the walk has more to do. */
#define WALK_PAUSED 1

/* About what an item takes in a message (escaping aside): its strings and
 * elements, and its value as it travels (base64 over XML when binary). */
static size_t head_cost(const char *source, const char *format, const char *type, bool wbxml)
{
    size_t n = strlen(source) + (format ? strlen(format) : 0) + (type ? strlen(type) : 0);
    return n + (wbxml ? 16 : 60 + (format ? 39 : 0) + (type ? 35 : 0));
}

static size_t data_cost(const syncml_item_t *it, bool wbxml)
{
    size_t len = it->data_len;
    return (syncml_item_as_b64(it, wbxml) ? 4 * ((len + 2) / 3) : len) + (wbxml ? 4 : 13);
}

static size_t item_cost(const syncml_item_t *it, bool wbxml)
{
    return head_cost(it->source ? it->source : "", it->meta.format, it->meta.type, wbxml) +
           (it->has_data ? data_cost(it, wbxml) : 0);
}

static syncml_item_t *result_item(results_t *r, const char *source, const char *format,
                                  const char *type)
{
    arena_t *a = r->arena;
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
    r->raw += head_cost(source, format, type, r->wbxml);
    return it;
}

static int set_item_data(results_t *r, syncml_item_t *it, const uint8_t *data, size_t len)
{
    r->x->reply_bytes += len;
    if (r->x->reply_bytes > r->x->dm->cfg.max_reply_size)
        return 413; /* the reply would grow past its limit */
    if (r->x->dm->peer_max_obj > 0 && (int64_t)len > r->x->dm->peer_max_obj)
        return 413; /* more than the server said it can take as one object */
    it->data = arena_memdup(r->arena, data ? data : (const uint8_t *)"", len);
    it->data_len = len;
    it->has_data = true;
    if (!it->data)
        return 500;
    r->raw += data_cost(it, r->wbxml);
    return 0;
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

/* ---- the walk, one node after the other ---- */

static void walk_pop(omadm_t *dm, walk_t *w)
{
    om_free(dm, w->lv[--w->depth].names);
}

static void walk_free(omadm_t *dm, walk_t *w)
{
    while (w->depth)
        walk_pop(dm, w);
    om_free(dm, w->lv);
    memset(w, 0, sizeof *w);
}

static char *put_str(char **p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

/* A plugin level's target points at the strings the level owns. */
static void level_strings(walk_level_t *l)
{
    memset(&l->t.uri, 0, sizeof l->t.uri);
    l->t.uri.text = l->uri;
    l->t.uri.norm = l->norm;
    l->t.csp_path = l->csp_path;
    l->t.csp_base = l->csp_base;
    l->t_valid = true;
}

/* A node whose children come next: a level with copies of what they need. */
static int walk_push(dm_exec_t *x, walk_t *w, const char *uri, const dm_target_t *t,
                     const dm_read_t *rd)
{
    size_t n = 0, bytes = strlen(uri) + 1;
    for (const syncml_strlist_t *c = rd->children; c; c = c->next, n++)
        bytes += strlen(c->s) + 1;
    if (!n)
        return 0; /* nothing below it */
    if (t->csp)
        bytes += strlen(t->uri.norm) + strlen(t->csp_path) + strlen(t->csp_base) + 3;
    if (w->depth == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        walk_level_t *lv = om_realloc(x->dm, w->lv, cap * sizeof *lv);
        if (!lv)
            return 500;
        w->lv = lv;
        w->cap = cap;
    }
    char **names = om_alloc(x->dm, n * sizeof *names + bytes);
    if (!names)
        return 500;
    walk_level_t *l = &w->lv[w->depth++];
    memset(l, 0, sizeof *l);
    l->names = names;
    l->n = n;
    char *p = (char *)(names + n);
    size_t i = 0;
    for (const syncml_strlist_t *c = rd->children; c; c = c->next)
        names[i++] = put_str(&p, c->s);
    l->uri = put_str(&p, uri);
    if (t->csp) {
        l->norm = put_str(&p, t->uri.norm);
        l->csp_path = put_str(&p, t->csp_path);
        l->csp_base = put_str(&p, t->csp_base);
        /* within this run the plugin and the nodes it hangs on stay */
        l->t = *t;
        level_strings(l);
    }
    return 0;
}

/* A level's target again, in a later run: a plugin node's from its mount
 * point (the engine's nodes may have changed meanwhile); the children of
 * an engine node are found by their URIs. */
static int level_target(dm_exec_t *x, walk_level_t *l)
{
    memset(&l->t, 0, sizeof l->t);
    if (l->csp_base) {
        dm_target_t m;
        int rc = target_resolve(x, l->csp_base, &m);
        if (rc)
            return rc;
        if (!m.csp || m.csp_path[0])
            return 404; /* no longer a mount point */
        l->t.csp = m.csp;
        l->t.deepest = m.deepest;
        l->t.n_found = m.n_found;
        level_strings(l);
    }
    l->t_valid = true;
    return 0;
}

/* One node: its Item, and a level for its children.  0, or the code of a
 * node that cannot be listed. */
static int walk_visit(results_t *r, walk_t *w, const dm_target_t *t, const char *uri,
                      unsigned depth)
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
    rc = add_node_item(r, uri, &rd, w->data && !rd.interior);
    if (rc || !rd.interior)
        return rc;
    return walk_push(x, w, uri, t, &rd);
}

/* Drop the items after tail (those of a node left out). */
static void cut_after(results_t *r, syncml_item_t *tail, size_t n, size_t raw)
{
    r->tail = tail;
    r->n = n;
    r->raw = raw;
    if (tail)
        tail->next = NULL;
    else
        r->head = NULL;
}

/* The walk's nodes in order (depth first, children in list order) until
 * it ends (0), the budget is spent (WALK_PAUSED) or a node fails (its
 * code; when making a stream's items such a node is left out instead, and
 * only 500 stops the walk). */
static int walk_run(results_t *r, walk_t *w)
{
    dm_exec_t *x = r->x;
    while (w->depth) {
        if (r->budget && r->raw > r->budget)
            return WALK_PAUSED;
        walk_level_t *l = &w->lv[w->depth - 1];
        if (l->next == l->n) {
            walk_pop(x->dm, w);
            continue;
        }
        const char *name = l->names[l->next++];
        unsigned depth = (unsigned)w->depth;
        syncml_item_t *tail = r->tail;
        size_t n = r->n, raw = r->raw;
        arena_mark_t mark = arena_mark(x->scratch);
        int rc = l->t_valid ? 0 : level_target(x, l);
        if (rc && rc != 500) {
            l->next = l->n; /* its node is gone: so are its children */
            rc = 0;
        } else if (!rc) {
            const char *cu = child_uri(x, l->uri, name);
            dm_target_t ct;
            rc = cu ? child_target(x, &l->t, name, cu, &ct) : 500;
            if (r->fill)
                x->reply_bytes = 0; /* each node on its own: the message has its bound */
            if (!rc)
                rc = walk_visit(r, w, &ct, cu, depth);
        }
        arena_release(x->scratch, mark);
        /* a child gone meanwhile, beyond the URI limits, or that cannot be
         * read at all (an Exec-only node answers Get with 405) is left out */
        if (!rc || rc == 404 || rc == 414 || rc == 405) {
            if (rc)
                cut_after(r, tail, n, raw);
            continue;
        }
        if (r->fill)
            cut_after(r, tail, n, raw);
        if (!r->fill || rc == 500)
            return rc;
        om_log(x->dm, OMADM_LOG_WARN, "a node of a streamed listing cannot be listed (%d): "
               "left out", rc);
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
        walk_t w = {.data = !strcmp(kind, "StructData")};
        /* the walk keeps what it needs of the node and its children: what
         * the plugin said of them goes before the walk goes on */
        arena_mark_t mark = arena_mark(x->scratch);
        rc = walk_visit(r, &w, &t, base, 0);
        arena_release(x->scratch, mark);
        if (!rc)
            rc = walk_run(r, &w);
        if (rc == WALK_PAUSED) {
            r->paused = w; /* the rest follows as a stream (stream_target) */
            return 200;
        }
        walk_free(x->dm, &w);
        return rc ? rc : 200;
    }
    rc = target_read(x, &t, &rd);
    if (rc)
        return rc;
    rc = add_node_item(r, t.uri.text, &rd, true);
    return rc ? rc : 200;
}

/* ---- Results that go on as a stream ---- */

static void part_free(omadm_t *dm, get_part_t *p)
{
    walk_free(dm, &p->walk);
    om_free(dm, p);
}

void get_stream_free(omadm_t *dm, get_stream_t *s)
{
    if (!s)
        return;
    while (s->parts) {
        get_part_t *p = s->parts;
        s->parts = p->next;
        part_free(dm, p);
    }
    arena_free(&s->arena);
    om_free(dm, s->server_id);
    om_free(dm, s);
}

bool get_stream_done(const get_stream_t *s)
{
    return !s->parts;
}

/* A target (whose items follow tail) of a Get that streams: the first walk
 * to pause starts the stream; from then on each target's items, and the
 * walk it leaves paused, become a part that follows.  The target's code:
 * 200, or 500 when memory runs out (its items are dropped). */
static int stream_target(results_t *r, syncml_item_t *tail, size_t n, size_t raw)
{
    omadm_t *dm = r->x->dm;
    get_part_t *p = om_calloc(dm, sizeof *p);
    if (p && !r->stream) {
        get_stream_t *s = om_calloc(dm, sizeof *s);
        char *sid = om_strdup(dm, r->x->server_id ? r->x->server_id : "");
        if (s && sid) {
            arena_init(&s->arena, dm);
            s->server_id = sid;
            s->raw = r->raw;
            s->wbxml = r->wbxml;
            r->stream = s;
        } else {
            om_free(dm, s);
            om_free(dm, sid);
            om_free(dm, p);
            p = NULL;
        }
    } else if (p) {
        /* after the items the Results holds, and all that comes before */
        p->fixed = tail ? tail->next : r->head; /* they move with the stream's memory */
        p->fixed_tail = p->fixed ? r->tail : NULL;
        cut_after(r, tail, n, raw);
    }
    if (!p) {
        walk_free(dm, &r->paused);
        cut_after(r, tail, n, raw);
        return 500;
    }
    p->walk = r->paused;
    memset(&r->paused, 0, sizeof r->paused);
    get_part_t **end = &r->stream->parts;
    while (*end)
        end = &(*end)->next;
    *end = p;
    return 200;
}

omadm_error_t get_stream_fill(omadm_t *dm, get_stream_t *s, size_t budget)
{
    arena_t scratch;
    arena_init(&scratch, dm);
    dm_exec_t x = {.dm = dm, .scratch = &scratch, .server_id = s->server_id, .next_cmd_id = 1};
    syncml_cmd_t *res = s->res;
    results_t r = {.x = &x, .arena = &s->arena, .head = res->items, .tail = res->items_tail,
                   .n = res->n_items, .raw = s->raw, .budget = budget ? budget : 1,
                   .fill = true, .wbxml = s->wbxml};
    /* the targets of plugin levels are made again: the engine tree may
     * have changed since the last message */
    for (get_part_t *p = s->parts; p; p = p->next)
        for (size_t i = 0; i < p->walk.depth; i++)
            p->walk.lv[i].t_valid = false;
    int rc = 0;
    while (s->parts && r.raw <= r.budget) {
        get_part_t *p = s->parts;
        if (p->fixed) {
            if (r.tail)
                r.tail->next = p->fixed;
            else
                r.head = p->fixed;
            r.tail = p->fixed_tail;
            for (const syncml_item_t *it = p->fixed; it; it = it->next) {
                r.n++;
                r.raw += item_cost(it, r.wbxml);
            }
            p->fixed = p->fixed_tail = NULL;
            continue;
        }
        rc = walk_run(&r, &p->walk);
        if (rc == WALK_PAUSED) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        s->parts = p->next;
        part_free(dm, p);
    }
    res->items = r.head;
    res->items_tail = r.tail;
    res->n_items = r.n;
    s->raw = r.raw;
    arena_free(&scratch);
    return rc ? OMADM_E_NOMEM : OMADM_OK;
}

static const char *dup_or_null(arena_t *a, const char *s, bool *failed)
{
    const char *d = s ? arena_strdup(a, s) : NULL;
    if (s && !d)
        *failed = true;
    return d;
}

/* Copies of the items of list into a (*tail their last, *n how many, *raw
 * what they take); false when memory runs out. */
static bool copy_items(arena_t *a, const syncml_item_t *list, bool wbxml, syncml_item_t **head,
                       syncml_item_t **tail, size_t *n, size_t *raw)
{
    bool failed = false;
    *head = *tail = NULL;
    for (const syncml_item_t *it = list; it && !failed; it = it->next) {
        syncml_item_t *c = arena_alloc(a, sizeof *c);
        if (!c)
            return false;
        *c = *it;
        c->next = NULL;
        c->source = dup_or_null(a, it->source, &failed);
        c->meta.format = dup_or_null(a, it->meta.format, &failed);
        c->meta.type = dup_or_null(a, it->meta.type, &failed);
        if (it->data && !(c->data = arena_memdup(a, it->data, it->data_len)))
            failed = true;
        if (*tail)
            (*tail)->next = c;
        else
            *head = c;
        *tail = c;
        if (n)
            (*n)++;
        if (raw)
            *raw += item_cost(it, wbxml);
    }
    return !failed;
}

omadm_error_t get_stream_keep(omadm_t *dm, get_stream_t *s, syncml_item_t *unsent)
{
    /* the unsent items, and those of the targets to come, live in the
     * stream's memory: copied, the rest of it goes */
    arena_t a;
    arena_init(&a, dm);
    syncml_item_t *head, *tail;
    size_t n = 0, raw = 0;
    bool ok = copy_items(&a, unsent, s->wbxml, &head, &tail, &n, &raw);
    size_t n_fixed = 0;
    for (get_part_t *p = s->parts; p; p = p->next)
        n_fixed += p->fixed != NULL;
    syncml_item_t **fixed = n_fixed ? arena_alloc(&a, 2 * n_fixed * sizeof *fixed) : NULL;
    if (n_fixed && !fixed)
        ok = false;
    size_t i = 0;
    for (get_part_t *p = s->parts; p && ok; p = p->next)
        if (p->fixed) {
            ok = copy_items(&a, p->fixed, s->wbxml, &fixed[i], &fixed[i + 1], NULL, NULL);
            i += 2;
        }
    if (!ok) {
        arena_free(&a);
        return OMADM_E_NOMEM;
    }
    i = 0;
    for (get_part_t *p = s->parts; p; p = p->next)
        if (p->fixed) {
            p->fixed = fixed[i];
            p->fixed_tail = fixed[i + 1];
            i += 2;
        }
    arena_free(&s->arena);
    s->arena = a;
    s->res->items = head;
    s->res->items_tail = tail;
    s->res->n_items = n;
    s->raw = raw;
    return OMADM_OK;
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
    /* in a session, a listing larger than a message goes on as a stream
     * (inside an Atomic a Get is refused anyway); the items are made in
     * memory of their own, which becomes the stream's or the reply's */
    arena_t items;
    arena_init(&items, x->dm);
    results_t r = {.x = x, .arena = &x->reply->arena,
                   .wbxml = x->reply->enc == SYNCML_ENC_WBXML};
    if (x->mode != RUN_ATOMIC)
        r.budget = client_stream_budget(x->dm);
    if (r.budget)
        r.arena = &items;
    size_t i = 0;
    for (const syncml_item_t *it = cmd->items; it; it = it->next, i++) {
        syncml_item_t *tail = r.tail;
        size_t n = r.n, raw = r.raw;
        arena_mark_t mark = arena_mark(x->scratch); /* scratch lives per item */
        codes[i] = get_item(&r, it);
        arena_release(x->scratch, mark);
        if (codes[i] >= 300) {
            /* drop any partial items of a failed target */
            walk_free(x->dm, &r.paused);
            cut_after(&r, tail, n, raw);
        } else if (r.stream || r.paused.depth) {
            codes[i] = stream_target(&r, tail, n, raw);
        }
    }
    arena_adopt(r.stream ? &r.stream->arena : &x->reply->arena, &items);
    status_for_items(x, cmd, codes);
    syncml_cmd_t *res = r.n ? results_add(x, cmd) : NULL;
    if (!res) {
        get_stream_free(x->dm, r.stream);
        return;
    }
    res->items = r.head;
    res->items_tail = r.tail;
    res->n_items = r.n;
    if (r.stream) {
        r.stream->res = res;
        client_stream_add(x->dm, r.stream);
    }
}
