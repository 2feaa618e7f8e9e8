/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_dm.c - counting platform, engine fixture and reply parser shared
 * by the unit suites (see support_dm.h).
 */
#include "support_dm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "codec.h"
#include "model.h"

/* ---- allocator / platform ------------------------------------------------ */

void t_alloc_init(t_alloc_t *a)
{
    memset(a, 0, sizeof *a);
    a->now = T_NOW;
}

static bool should_fail(t_alloc_t *a)
{
    a->calls++;
    if (!a->fail_at)
        return false;
    if (a->calls == a->fail_at || (a->persistent && a->calls > a->fail_at)) {
        a->failures++;
        return true;
    }
    return false;
}

static void *t_hook_alloc(void *ctx, size_t n)
{
    t_alloc_t *a = ctx;
    if (should_fail(a))
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        a->outstanding++;
    return p;
}

static void *t_hook_realloc(void *ctx, void *ptr, size_t n)
{
    t_alloc_t *a = ctx;
    if (should_fail(a))
        return NULL;
    void *p = realloc(ptr, n ? n : 1);
    if (p && !ptr)
        a->outstanding++;
    return p;
}

static void t_hook_free(void *ctx, void *ptr)
{
    t_alloc_t *a = ctx;
    if (ptr)
        a->outstanding--;
    free(ptr);
}

static int64_t t_hook_now(void *ctx)
{
    return ((t_alloc_t *)ctx)->now;
}

static int t_hook_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    return 0;
}

static void t_hook_log(void *ctx, omadm_log_level_t level, const char *msg)
{
    (void)level, (void)msg;
    ((t_alloc_t *)ctx)->logs++;
}

void t_platform(omadm_platform_t *p, t_alloc_t *a)
{
    memset(p, 0, sizeof *p);
    p->ctx = a;
    p->now = t_hook_now;
    p->random = t_hook_random;
    p->log = t_hook_log;
    p->alloc = t_hook_alloc;
    p->realloc = t_hook_realloc;
    p->free = t_hook_free;
}

/* ---- strings ------------------------------------------------------------- */

char *t_strf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

char *t_message_to(const char *session_id, int msg_id, const char *server, const char *target,
                   const char *body, bool final)
{
    return t_strf("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                  "<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>"
                  "<Target><LocURI>%s</LocURI></Target>"
                  "<Source><LocURI>%s</LocURI></Source></SyncHdr>"
                  "<SyncBody>%s%s</SyncBody></SyncML>",
                  session_id, msg_id, target, server, body, final ? "<Final/>" : "");
}

char *t_message(const char *session_id, int msg_id, const char *server, const char *body,
                bool final)
{
    return t_message_to(session_id, msg_id, server, "omadm-device", body, final);
}

/* ---- reply parser -------------------------------------------------------- */

void t_reply_init(t_reply_t *r)
{
    memset(r, 0, sizeof *r);
}

static void free_item(t_item_t *it)
{
    free(it->target);
    free(it->source);
    free(it->format);
    free(it->type);
    free(it->size);
    free(it->data);
}

static void free_cmd(t_cmd_t *c)
{
    free(c->name);
    free(c->elems);
    free(c->cmd_id);
    free(c->msg_ref);
    free(c->cmd_ref);
    free(c->cmd);
    free(c->data);
    free(c->correlator);
    for (size_t i = 0; i < c->n_target_refs; i++)
        free(c->target_refs[i]);
    for (size_t i = 0; i < c->n_source_refs; i++)
        free(c->source_refs[i]);
    for (size_t i = 0; i < c->n_items; i++)
        free_item(&c->items[i]);
    free(c->items);
}

void t_reply_free(t_reply_t *r)
{
    free(r->raw);
    free(r->ver_dtd);
    free(r->ver_proto);
    free(r->session_id);
    free(r->msg_id);
    free(r->target);
    free(r->source);
    free(r->hdr_elems);
    for (size_t i = 0; i < r->n_cmds; i++)
        free_cmd(&r->cmds[i]);
    free(r->cmds);
    memset(r, 0, sizeof *r);
}

static bool is_el(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

static char *text_of(const xmlNode *n, size_t *len)
{
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    if (len)
        *len = strlen(s);
    xmlFree(t);
    return s;
}

static char *child_text(const xmlNode *n, const char *name)
{
    return text_of(child(n, name), NULL);
}

static char *loc_uri(const xmlNode *n, const char *el)
{
    return child_text(child(n, el), "LocURI");
}

static char *elem_names(const xmlNode *n)
{
    size_t cap = 256, len = 0;
    char *s = calloc(1, cap);
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        size_t k = strlen((const char *)c->name);
        if (len + k + 2 > cap) {
            cap = (len + k + 2) * 2;
            s = realloc(s, cap);
        }
        if (len)
            s[len++] = ' ';
        memcpy(s + len, c->name, k);
        len += k;
        s[len] = 0;
    }
    return s;
}

static void parse_item(const xmlNode *n, t_item_t *it)
{
    memset(it, 0, sizeof *it);
    it->target = loc_uri(n, "Target");
    it->source = loc_uri(n, "Source");
    xmlNode *meta = child(n, "Meta");
    xmlNode *fmt = child(meta, "Format");
    it->format = text_of(fmt, NULL);
    it->format_metinf = fmt && fmt->ns && fmt->ns->href &&
                        !strcmp((const char *)fmt->ns->href, "syncml:metinf");
    it->type = child_text(meta, "Type");
    it->size = child_text(meta, "Size");
    it->data = text_of(child(n, "Data"), &it->data_len);
    it->more_data = child(n, "MoreData") != NULL;
}

static void parse_cmd(const xmlNode *n, t_cmd_t *c)
{
    memset(c, 0, sizeof *c);
    c->name = strdup((const char *)n->name);
    c->elems = elem_names(n);
    c->cmd_id = child_text(n, "CmdID");
    c->msg_ref = child_text(n, "MsgRef");
    c->cmd_ref = child_text(n, "CmdRef");
    c->cmd = child_text(n, "Cmd");
    c->data = child_text(n, "Data");
    c->correlator = child_text(n, "Correlator");
    size_t n_items = 0;
    for (xmlNode *k = n->children; k; k = k->next) {
        if (is_el(k, "TargetRef") && c->n_target_refs < 16)
            c->target_refs[c->n_target_refs++] = text_of(k, NULL);
        if (is_el(k, "SourceRef") && c->n_source_refs < 16)
            c->source_refs[c->n_source_refs++] = text_of(k, NULL);
        n_items += is_el(k, "Item");
    }
    c->items = calloc(n_items ? n_items : 1, sizeof *c->items);
    for (xmlNode *k = n->children; k; k = k->next)
        if (is_el(k, "Item"))
            parse_item(k, &c->items[c->n_items++]);
}

int t_reply_parse(t_reply_t *r, const uint8_t *xml, size_t len)
{
    t_reply_free(r);
    r->present = true;
    r->raw = malloc(len + 1);
    memcpy(r->raw, xml, len);
    r->raw[len] = 0;
    r->raw_len = len;
    xmlDoc *doc = xmlReadMemory((const char *)xml, (int)len, "reply.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return -1;
    int rc = -1;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!is_el(root, "SyncML"))
        goto out;
    xmlNode *hdr = child(root, "SyncHdr"), *body = child(root, "SyncBody");
    if (!hdr || !body)
        goto out;
    r->ver_dtd = child_text(hdr, "VerDTD");
    r->ver_proto = child_text(hdr, "VerProto");
    r->session_id = child_text(hdr, "SessionID");
    r->msg_id = child_text(hdr, "MsgID");
    r->target = loc_uri(hdr, "Target");
    r->source = loc_uri(hdr, "Source");
    r->hdr_elems = elem_names(hdr);
    size_t n = 0;
    for (xmlNode *c = body->children; c; c = c->next)
        n += c->type == XML_ELEMENT_NODE;
    r->cmds = calloc(n ? n : 1, sizeof *r->cmds);
    for (xmlNode *c = body->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, "Final")) {
            r->final = true;
            continue;
        }
        parse_cmd(c, &r->cmds[r->n_cmds++]);
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}

const t_cmd_t *t_status_n(const t_reply_t *r, const char *cmdref, size_t n)
{
    for (size_t i = 0; i < r->n_cmds; i++) {
        const t_cmd_t *c = &r->cmds[i];
        if (!strcmp(c->name, "Status") && c->cmd_ref && !strcmp(c->cmd_ref, cmdref) && !n--)
            return c;
    }
    return NULL;
}

const t_cmd_t *t_status(const t_reply_t *r, const char *cmdref)
{
    return t_status_n(r, cmdref, 0);
}

int t_code(const t_reply_t *r, const char *cmdref)
{
    const t_cmd_t *s = t_status(r, cmdref);
    return s && s->data ? atoi(s->data) : -1;
}

size_t t_status_count(const t_reply_t *r, const char *cmdref)
{
    size_t k = 0;
    while (t_status_n(r, cmdref, k))
        k++;
    return k;
}

int t_code_ref(const t_reply_t *r, const char *cmdref, const char *ref)
{
    for (size_t k = 0;; k++) {
        const t_cmd_t *s = t_status_n(r, cmdref, k);
        if (!s)
            return -1;
        for (size_t i = 0; i < s->n_target_refs; i++)
            if (!strcmp(s->target_refs[i], ref))
                return s->data ? atoi(s->data) : -1;
    }
}

const t_cmd_t *t_results(const t_reply_t *r, const char *cmdref)
{
    for (size_t i = 0; i < r->n_cmds; i++) {
        const t_cmd_t *c = &r->cmds[i];
        if (!strcmp(c->name, "Results") && c->cmd_ref && !strcmp(c->cmd_ref, cmdref))
            return c;
    }
    return NULL;
}

long t_index(const t_reply_t *r, const t_cmd_t *c)
{
    return c ? (long)(c - r->cmds) : -1;
}

/* ---- engine fixture ------------------------------------------------------ */

void t_env_init(t_env_t *e)
{
    memset(e, 0, sizeof *e);
    t_alloc_init(&e->alloc);
    t_platform(&e->plat, &e->alloc);
    omadm_config_init(&e->cfg);
    strcpy(e->session_id, "1");
    strcpy(e->server, "https://srv.example/dm");
    e->msg_id = 1;
    t_reply_init(&e->reply);
}

void t_env_start(t_env_t *e)
{
    omadm_error_t err = omadm_new(&e->cfg, &e->plat, e->storage, &e->dm);
    assert_int_equal(err, OMADM_OK);
    assert_non_null(e->dm);
}

void t_env_done(t_env_t *e)
{
    omadm_free(e->dm);
    e->dm = NULL;
    t_reply_free(&e->reply);
    assert_int_equal(e->alloc.outstanding, 0);
}

omadm_error_t t_send_raw(t_env_t *e, const char *msg, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    t_reply_free(&e->reply);
    e->last_err = omadm_process(e->dm, (const uint8_t *)msg, len, &out, &out_len);
    if (e->last_err == OMADM_OK && out) {
        if (t_reply_parse(&e->reply, out, out_len))
            fail_msg("reply is not a SyncML XML document:\n%.*s", (int)out_len, (char *)out);
    }
    if (e->last_err != OMADM_OK)
        assert_null(out);
    if (e->last_err == OMADM_OK && !out)
        assert_int_equal(out_len, 0);
    omadm_buffer_free(e->dm, out);
    return e->last_err;
}

omadm_error_t t_send(t_env_t *e, bool final, const char *body)
{
    char *msg = t_message_to(e->session_id, e->msg_id++, e->server,
                             e->cfg.dev_id ? e->cfg.dev_id : "omadm-device", body, final);
    omadm_error_t err = t_send_raw(e, msg, strlen(msg));
    free(msg);
    return err;
}

omadm_error_t t_sendf(t_env_t *e, bool final, const char *fmt, ...)
{
    va_list ap;
    char *body = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    omadm_error_t err = t_send(e, final, body);
    free(body);
    return err;
}

char *t_read(t_env_t *e, const char *uri, size_t *len, int *interior)
{
    char *v = NULL;
    size_t n = 0;
    int in = 0;
    omadm_error_t err = omadm_tree_read(e->dm, uri, &v, &n, &in);
    if (err == OMADM_E_NOT_FOUND)
        return NULL;
    assert_int_equal(err, OMADM_OK);
    char *copy = malloc(n + 1);
    memcpy(copy, v, n + 1);
    omadm_buffer_free(e->dm, v);
    if (len)
        *len = n;
    if (interior)
        *interior = in;
    return copy;
}

/* ---- encodings ------------------------------------------------------------ */

uint8_t *t_convert(const uint8_t *in, size_t len, bool to_wbxml, size_t *out_len)
{
    omadm_t *dm = NULL;
    assert_int_equal(omadm_new(NULL, NULL, NULL, &dm), OMADM_OK);
    syncml_msg_t m;
    syncml_msg_init(&m, dm);
    omadm_error_t err = to_wbxml ? codec_xml_decode(dm, in, len, &m, NULL)
                                 : codec_wbxml_decode(dm, in, len, &m, NULL);
    assert_int_equal(err, OMADM_OK);
    buf_t b;
    buf_init(&b, dm);
    err = to_wbxml ? codec_wbxml_encode(dm, &m, &b) : codec_xml_encode(dm, &m, &b);
    assert_int_equal(err, OMADM_OK);
    uint8_t *out = malloc(b.len + 1);
    memcpy(out, b.data, b.len + 1);
    *out_len = b.len;
    buf_free(&b);
    syncml_msg_free(&m);
    omadm_free(dm);
    return out;
}
