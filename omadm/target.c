/* SPDX-License-Identifier: Apache-2.0 */
/*
 * target.c - resolve a LocURI to an engine node or a plugin, check ACLs,
 * and read/write values the same way whichever of the two owns the node.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "crypto.h"
#include "dispatch.h"

static const char *join_segments(dm_exec_t *x, const dm_uri_t *u, size_t from)
{
    buf_t b;
    buf_init(&b, x->dm);
    for (size_t i = from; i < u->n_segs; i++) {
        if (i > from)
            buf_putc(&b, '/');
        buf_puts(&b, u->segs[i]);
    }
    const char *s = b.failed ? NULL : arena_strndup(x->scratch, b.data ? (char *)b.data : "", b.len);
    buf_free(&b);
    return s;
}

static const char *node_uri(dm_exec_t *x, const dmnode_t *n)
{
    buf_t b;
    buf_init(&b, x->dm);
    dmtree_uri(n, &b);
    const char *s = b.failed ? NULL : arena_strndup(x->scratch, (char *)b.data, b.len);
    buf_free(&b);
    return s;
}

int target_resolve(dm_exec_t *x, const char *locuri, dm_target_t *t)
{
    memset(t, 0, sizeof *t);
    uri_limits_t lim = {x->dm->cfg.max_uri_len, x->dm->cfg.max_seg_len, x->dm->cfg.max_uri_depth};
    int rc = uri_parse(x->scratch, locuri, &lim, &t->uri);
    if (rc)
        return rc;
    dmnode_t *n = dmtree_root(x->dm);
    size_t i = 0;
    for (;;) {
        if (n->csp) {
            t->csp = (dm_csp_reg_t *)n->csp;
            t->csp_path = join_segments(x, &t->uri, i);
            t->csp_base = node_uri(x, n);
            if (!t->csp_path || !t->csp_base)
                return 500;
            break;
        }
        if (i == t->uri.n_segs) {
            t->node = n;
            break;
        }
        dmnode_t *c = dmtree_child(x->dm, n, t->uri.segs[i]);
        if (!c)
            break;
        n = c;
        i++;
    }
    t->deepest = n;
    t->n_found = i;
    return 0;
}

int target_acl(dm_exec_t *x, const dm_target_t *t, unsigned right)
{
    const char *acl = dmtree_effective_acl(t->node ? t->node : t->deepest);
    return acl_allows(acl, (acl_right_t)right, x->server_id) ? 0 : 425;
}

void target_csp_req(dm_exec_t *x, const dm_target_t *t, omadm_csp_req_t *req)
{
    req->uri = t->uri.norm;
    req->path = t->csp_path;
    req->base = t->csp_base;
    req->server_id = x->server_id;
    req->atomic = x->mode == RUN_ATOMIC;
}

int target_csp_touch(dm_exec_t *x, const dm_target_t *t)
{
    /* from here on the message may change what a plugin keeps: it must be
     * possible to answer it whatever happens later */
    if (status_reserve_fallback(x))
        return 500;
    x->touched |= 1ull << t->csp->index;
    x->plugins_changed = true;
    return csp_tx_touch(x->dm, t->csp);
}

int item_finish(dm_exec_t *x, int code, size_t savepoint)
{
    if (x->mode == RUN_ATOMIC)
        return code;
    int rc = csp_tx_finish(x->dm, code < 300, NULL);
    if (code < 300 && rc)
        code = rc;
    if (code >= 300)
        dmtree_rollback_to(x->dm, savepoint);
    return code;
}

static int read_csp(dm_exec_t *x, const dm_target_t *t, dm_read_t *out)
{
    const omadm_csp_t *csp = t->csp->csp;
    omadm_csp_req_t req;
    omadm_csp_out_t o;
    target_csp_req(x, t, &req);
    csp_out_init(&o, x->scratch);
    if (!csp->get)
        return 405;
    int rc = csp->get(t->csp->ctx, &req, &o);
    if (rc)
        return csp_status(rc);
    if (o.failed)
        return 500;
    if (!o.is_leaf && !o.is_interior)
        return 404;
    out->interior = o.is_interior;
    out->format = o.is_interior ? "node" : o.format;
    out->type = o.type;
    out->data = o.data;
    out->len = o.len;
    if (!o.is_interior)
        return 0;
    csp_out_init(&o, x->scratch);
    if (!csp->list)
        return 406;
    rc = csp->list(t->csp->ctx, &req, &o);
    if (rc)
        return csp_status(rc);
    if (o.failed)
        return 500;
    out->children = o.children;
    out->n_children = o.n_children;
    return 0;
}

int target_read(dm_exec_t *x, const dm_target_t *t, dm_read_t *out)
{
    memset(out, 0, sizeof *out);
    if (t->csp)
        return read_csp(x, t, out);
    const dmnode_t *n = t->node;
    if (!n)
        return 404;
    out->interior = n->interior;
    out->type = n->type;
    if (!n->interior) {
        out->format = n->format;
        out->data = n->value;
        out->len = n->len;
        if (n->dynamic) {
            char *v = arena_alloc(x->scratch, 64);
            if (!v)
                return 500;
            out->len = dmtree_dynamic_value(x->dm, n, v, 64);
            out->data = (const uint8_t *)v;
        }
        return 0;
    }
    out->format = "node";
    for (const dmnode_t *c = n->last; c; c = c->prev) {
        syncml_strlist_t *l = arena_alloc(x->scratch, sizeof *l);
        if (!l)
            return 500;
        l->s = c->name;
        l->next = out->children;
        out->children = l;
        out->n_children++;
    }
    return 0;
}

/* ---- values ---- */

const char *item_format(const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    if (it->meta.format)
        return it->meta.format;
    if (cmd->meta.format)
        return cmd->meta.format;
    return "chr";
}

const char *item_type(const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    if (it->meta.type)
        return it->meta.type;
    return cmd->meta.type;
}

static bool all_digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool valid_int(const char *s)
{
    char *end = NULL;
    if (!*s)
        return false;
    long long v = strtoll(s, &end, 10);
    return !*end && v >= INT32_MIN && v <= INT32_MAX && (s[0] == '-' || s[0] == '+' ||
                                                          (s[0] >= '0' && s[0] <= '9'));
}

static bool valid_float(const char *s)
{
    char *end = NULL;
    if (!*s || s[0] == ' ')
        return false;
    if (!strcmp(s, "INF") || !strcmp(s, "-INF") || !strcmp(s, "NaN"))
        return true;
    strtod(s, &end);
    return !*end;
}

static int two_digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static bool valid_ymd(int y, int m, int d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m != 2 || d <= 28 || leap;
}

/* ISO 8601 date with century: YYYY-MM-DD or YYYYMMDD, a real calendar day. */
static bool valid_date(const char *s)
{
    size_t n = strlen(s);
    bool basic = n == 8 && all_digits(s, 8);
    bool ext = n == 10 && all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) &&
               s[7] == '-' && all_digits(s + 8, 2);
    if (!basic && !ext)
        return false;
    int y = two_digits(s) * 100 + two_digits(s + 2);
    return valid_ymd(y, two_digits(s + (ext ? 5 : 4)), two_digits(s + (ext ? 8 : 6)));
}

/* ISO 8601 time: hh:mm[:ss[.f]] or hhmm[ss], then Z or +hh[:mm] / -hh[:mm];
 * hours 00-24 (24 only as 24:00:00), minutes 00-59, seconds 00-60. */
static bool valid_time(const char *s)
{
    const char *p = s;
    int field[3] = {0, 0, 0};
    if (!all_digits(p, 2))
        return false;
    field[0] = two_digits(p);
    p += 2;
    bool ext = *p == ':';
    for (int part = 0; part < 2; part++) {
        if (ext && *p == ':')
            p++;
        else if (ext && part == 1)
            break;
        if (!all_digits(p, 2)) {
            if (part == 1)
                break;
            return false;
        }
        field[part + 1] = two_digits(p);
        p += 2;
    }
    if (field[0] > 24 || field[1] > 59 || field[2] > 60 ||
        (field[0] == 24 && (field[1] || field[2])))
        return false;
    if (*p == '.' || *p == ',') {
        p++;
        if (!all_digits(p, 1))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z')
        p++;
    else if (*p == '+' || *p == '-') {
        p++;
        if (!all_digits(p, 2))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (*p && all_digits(p, 2))
            p += 2;
    }
    return *p == 0;
}

static bool known_format(const char *f)
{
    static const char *const formats[] = {"b64", "bin", "bool", "chr", "int", "node", "null",
                                          "xml", "date", "time", "float", NULL};
    for (size_t i = 0; formats[i]; i++)
        if (!strcmp(formats[i], f))
            return true;
    return false;
}

static int check_text_format(const char *f, const char *s)
{
    if (!strcmp(f, "int"))
        return valid_int(s) ? 0 : 400;
    if (!strcmp(f, "bool"))
        return !strcmp(s, "true") || !strcmp(s, "false") ? 0 : 400;
    if (!strcmp(f, "float"))
        return valid_float(s) ? 0 : 400;
    if (!strcmp(f, "date"))
        return valid_date(s) ? 0 : 400;
    if (!strcmp(f, "time"))
        return valid_time(s) ? 0 : 400;
    return 0;
}

int value_from_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it,
                    bool for_plugin, dm_value_t *v)
{
    memset(v, 0, sizeof *v);
    v->wire_format = item_format(cmd, it);
    v->format = v->wire_format;
    v->type = item_type(cmd, it);
    v->wire_data = it->has_data ? it->data : (const uint8_t *)"";
    v->wire_len = it->has_data ? it->data_len : 0;
    v->data = v->wire_data;
    v->len = v->wire_len;
    if (!known_format(v->format))
        return 415;
    if (v->len > x->dm->cfg.max_obj_size)
        return 413;
    if (for_plugin)
        return 0; /* a plugin reads its values itself (e.g. PEM sent as b64) */
    if (!strcmp(v->format, "b64")) {
        int bad = 0;
        size_t n = 0;
        uint8_t *d = crypto_b64_decode(x->dm, v->data, v->len, &n, &bad);
        if (!d)
            return bad ? 400 : 500;
        v->data = arena_memdup(x->scratch, d, n);
        om_free(x->dm, d);
        if (!v->data)
            return 500;
        v->len = n;
        v->format = "bin";
        return 0;
    }
    if (!strcmp(v->format, "bin") || !strcmp(v->format, "chr") || !strcmp(v->format, "xml") ||
        !strcmp(v->format, "node"))
        return 0;
    if (!strcmp(v->format, "null")) {
        v->len = 0;
        return 0;
    }
    /* int/bool/float/date/time: surrounding whitespace is not part of the value */
    size_t a = 0, n = v->len;
    while (a < n && strchr(" \t\r\n", v->data[a]))
        a++;
    while (n > a && strchr(" \t\r\n", v->data[n - 1]))
        n--;
    const char *s = arena_strndup(x->scratch, (const char *)v->data + a, n - a);
    if (!s)
        return 500;
    if (strlen(s) != n - a)
        return 400;
    v->data = (const uint8_t *)s;
    v->len = n - a;
    return check_text_format(v->format, s);
}

/* ---- writes ---- */

static int csp_write(dm_exec_t *x, dm_target_t *t, const dm_value_t *v, bool add, bool interior)
{
    const omadm_csp_t *csp = t->csp->csp;
    int (*fn)(void *, const omadm_csp_req_t *, const omadm_value_t *) =
        add ? csp->add : csp->replace;
    if (!fn)
        return 405;
    int rc = target_csp_touch(x, t);
    if (rc)
        return rc;
    omadm_csp_req_t req;
    target_csp_req(x, t, &req);
    omadm_value_t val = {
        .data = interior ? NULL : v->wire_data,
        .len = interior ? 0 : v->wire_len,
        .format = interior ? "node" : v->wire_format,
        .type = v->type,
    };
    return csp_status(fn(t->csp->ctx, &req, &val));
}

static bool acl_safe_id(const char *id)
{
    return *id && !strpbrk(id, "=&*+ \t\r\n");
}

/* An interior node made by a server without Replace on the parent gets
 * rights for that server of its own (OMA DM TND), plus Get. */
static int auto_acl(dm_exec_t *x, dmnode_t *parent, dmnode_t *n)
{
    if (!n->interior || !acl_safe_id(x->server_id) ||
        acl_allows(dmtree_effective_acl(parent), ACL_REPLACE, x->server_id))
        return 0;
    buf_t b;
    buf_init(&b, x->dm);
    buf_printf(&b, "Add=%s&Delete=%s&Get=%s&Replace=%s", x->server_id, x->server_id,
               x->server_id, x->server_id);
    int rc = b.failed ? -1 : dmtree_set_acl(x->dm, n, (const char *)b.data);
    buf_free(&b);
    return rc;
}

int target_add_value(dm_exec_t *x, dm_target_t *t, const dm_value_t *v, bool interior)
{
    if (t->csp)
        return t->csp_path[0] ? csp_write(x, t, v, true, interior) : 418;
    if (t->node)
        return 418;
    dmnode_t *n = t->deepest;
    if (!n->interior)
        return 404;
    if (!(n->access & ACL_ADD))
        return n->csp_namespace ? 404 : 405;
    for (size_t i = t->n_found; i < t->uri.n_segs; i++) {
        bool last = i + 1 == t->uri.n_segs;
        bool full = false;
        dmnode_t *c = dmtree_add(x->dm, n, t->uri.segs[i], last ? interior : true, &full);
        if (!c)
            return full ? 420 : 500;
        if (auto_acl(x, n, c))
            return 500;
        n = c;
    }
    if (!interior && dmtree_set_value(x->dm, n, v->data, v->len, v->format, v->type))
        return 500;
    if (interior && v->type && dmtree_set_type(x->dm, n, v->type))
        return 500;
    t->node = n;
    return 0;
}

int target_replace_value(dm_exec_t *x, dm_target_t *t, const dm_value_t *v)
{
    if (t->csp)
        return csp_write(x, t, v, false, false);
    dmnode_t *n = t->node;
    if (!n)
        return 404;
    if (!(n->access & ACL_REPLACE) || n->interior)
        return 405;
    if (!strcmp(v->format, "node"))
        return 415;
    return dmtree_set_value(x->dm, n, v->data, v->len, v->format, v->type) ? 500 : 0;
}
