/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_list_stream.c - ?list=Struct / ?list=StructData in a session whose
 * server gave a MaxMsgSize (omadm/cmd_get.c, omadm/client.c,
 * docs/session.md "Our large Results"): the Results is made message by
 * message, after each Alert 1222 of the server, so what the engine holds
 * does not grow with the subtree:
 *
 *   the items of all messages, joined, are the single-message listing
 *   (order and content), in XML and WBXML; every message within the
 *   server's MaxMsgSize, Final on the last one only; the engine's peak
 *   memory (bytes through the platform allocator) about the same for
 *   2,000 and 8,000 nodes and far below the reply; commands after the Get
 *   and a second listing Get in the same message follow in order; nodes
 *   gone between messages are left out; a session that ends in the middle
 *   (Alert 1223, omadm_free) frees the walk; failing every allocation in
 *   turn over a streamed listing gives correct messages or a clean error,
 *   never a crash or a leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support_dm.h"
#include "support_store.h"

#define URL "https://dm.example/omadm"
#define SRV "dmserver"
#define BASE "./Vendor/Gen"

/* ---- bytes through the platform allocator --------------------------------- */

typedef struct counted {
    t_alloc_t a;               /* first: the support hooks (clock, log) take it */
    long blocks;
    size_t cur, peak;
} counted_t;

#define HDR 16u

static bool fail_now(t_alloc_t *a)
{
    a->calls++;
    if (a->fail_at && (a->calls == a->fail_at || (a->persistent && a->calls > a->fail_at))) {
        a->failures++;
        return true;
    }
    return false;
}

static void note(counted_t *c, size_t plus, size_t minus)
{
    c->cur = c->cur + plus - minus;
    if (c->cur > c->peak)
        c->peak = c->cur;
}

static void *c_alloc(void *ctx, size_t n)
{
    counted_t *c = ctx;
    if (fail_now(&c->a))
        return NULL;
    uint8_t *p = malloc(HDR + n);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    c->blocks++;
    note(c, n, 0);
    return p + HDR;
}

static void *c_realloc(void *ctx, void *ptr, size_t n)
{
    counted_t *c = ctx;
    if (!ptr)
        return c_alloc(ctx, n);
    if (fail_now(&c->a))
        return NULL;
    uint8_t *old = (uint8_t *)ptr - HDR;
    size_t was;
    memcpy(&was, old, sizeof was);
    uint8_t *p = realloc(old, HDR + n);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    note(c, n, was);
    return p + HDR;
}

static void c_free(void *ctx, void *ptr)
{
    counted_t *c = ctx;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    c->blocks--;
    note(c, 0, n);
    free(p);
}

/* ---- a generated subtree -------------------------------------------------- */

/*
 * BASE holds n interior nodes "node-with-a-longer-name-NNNNN", each with
 * the leaves Val (a value naming its node, about 90 bytes; big_at's is
 * 3,000 bytes) and Id.  Nodes from gone_from on (while gone_from < n) are
 * gone: Get answers 404 and List leaves them out.
 */
typedef struct gen {
    unsigned n;
    unsigned big_at;           /* n: none */
    unsigned gone_from;        /* n: none */
    unsigned gets;
} gen_t;

static int gen_index(const gen_t *g, const char *path, const char **rest)
{
    unsigned i = 0;
    int used = 0;
    if (sscanf(path, "node-with-a-longer-name-%5u%n", &i, &used) != 1 || used != 29 ||
        i >= g->n || i >= g->gone_from)
        return -1;
    *rest = path + used;
    return (int)i;
}

static void gen_value(const gen_t *g, unsigned i, char *buf, size_t size)
{
    if (i == g->big_at) {
        size_t n = size - 1 < 3000 ? size - 1 : 3000;
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)('a' + (k + i) % 26);
        buf[n] = 0;
        return;
    }
    snprintf(buf, size, "value of node %05u <&> with some more text to make it longer: %u", i,
             i * 7919u);
}

static int gen_get(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    gen_t *g = ctx;
    g->gets++;
    if (!req->path[0])
        return omadm_csp_out_interior(out, "urn:test:gen") ? -500 : 0;
    const char *rest = NULL;
    int i = gen_index(g, req->path, &rest);
    if (i < 0)
        return -404;
    if (!*rest)
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    char buf[3100];
    if (!strcmp(rest, "/Val"))
        gen_value(g, (unsigned)i, buf, sizeof buf);
    else if (!strcmp(rest, "/Id"))
        snprintf(buf, sizeof buf, "%d", i);
    else
        return -404;
    omadm_value_t v = {.data = (const uint8_t *)buf, .len = strlen(buf), .format = "chr",
                       .type = "text/plain"};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

static int gen_list(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    gen_t *g = ctx;
    if (!req->path[0]) {
        for (unsigned i = 0; i < g->n && i < g->gone_from; i++) {
            char name[40];
            snprintf(name, sizeof name, "node-with-a-longer-name-%05u", i);
            if (omadm_csp_out_child(out, name))
                return -500;
        }
        return 0;
    }
    const char *rest = NULL;
    if (gen_index(g, req->path, &rest) < 0 || *rest)
        return -404;
    return omadm_csp_out_child(out, "Val") || omadm_csp_out_child(out, "Id") ? -500 : 0;
}

static const char *const gen_bases[] = {BASE, NULL};
static const omadm_csp_t gen_plugin = {.name = "gen", .bases = gen_bases, .get = gen_get,
                                       .list = gen_list};

/* ---- one engine with a session ------------------------------------------- */

typedef struct fx {
    t_env_t e;
    counted_t mem;
    tstore_t store;
    gen_t gen;
    bool wbxml;
    int max_msg;               /* the server's MaxMsgSize */
    /* the last reply */
    t_reply_t reply;
    size_t reply_len;          /* its bytes in its own encoding */
    bool present;
    omadm_error_t err;
} fx_t;

static void fx_start(fx_t *f, unsigned n, bool wbxml, int max_msg)
{
    memset(f, 0, sizeof *f);
    t_env_init(&f->e);
    t_alloc_init(&f->mem.a);
    t_platform(&f->e.plat, &f->mem.a);
    f->e.plat.ctx = &f->mem;
    f->e.plat.alloc = c_alloc;
    f->e.plat.realloc = c_realloc;
    f->e.plat.free = c_free;
    tstore_init(&f->store);
    f->e.storage = &f->store.api;
    f->e.cfg.dev_id = "dev-1";
    f->gen.n = n;
    f->gen.big_at = n;
    f->gen.gone_from = n;
    f->wbxml = wbxml;
    f->max_msg = max_msg;
    t_reply_init(&f->reply);
    t_env_start(&f->e);
    assert_int_equal(omadm_register_csp(f->e.dm, &gen_plugin, &f->gen), OMADM_OK);
}

static void fx_done(fx_t *f)
{
    t_reply_free(&f->reply);
    omadm_free(f->e.dm);
    f->e.dm = NULL;
    t_env_done(&f->e);
    tstore_free(&f->store);
    assert_int_equal(f->mem.blocks, 0); /* nothing the engine took is left */
    assert_int_equal(f->mem.cur, 0);
}

static void begin(fx_t *f)
{
    omadm_account_t acc = {.server_url = URL, .wbxml = f->wbxml};
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(omadm_session_begin(f->e.dm, &acc, 0, NULL, &msg, &len), OMADM_OK);
    omadm_buffer_free(f->e.dm, msg);
    snprintf(f->e.session_id, sizeof f->e.session_id, "1");
    f->e.msg_id = 1;
}

/* A server message: SyncHdr (with our MaxMsgSize when meta), body, Final
 * unless open.  The reply (converted to XML when WBXML) in f->reply. */
static omadm_error_t server(fx_t *f, bool meta, const char *body, bool open)
{
    char hdr_meta[128] = "";
    if (meta)
        snprintf(hdr_meta, sizeof hdr_meta,
                 "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">%d</MaxMsgSize></Meta>", f->max_msg);
    char *xml = t_strf("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                       "<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>"
                       "<Target><LocURI>dev-1</LocURI></Target>"
                       "<Source><LocURI>" SRV "</LocURI></Source>%s</SyncHdr>"
                       "<SyncBody>%s%s</SyncBody></SyncML>",
                       f->e.session_id, f->e.msg_id++, hdr_meta, body, open ? "" : "<Final/>");
    size_t len = strlen(xml);
    uint8_t *msg = (uint8_t *)xml;
    if (f->wbxml)
        msg = t_convert((const uint8_t *)xml, strlen(xml), true, &len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    t_reply_free(&f->reply);
    f->present = false;
    f->err = omadm_process(f->e.dm, msg, len, &out, &out_len);
    if (out) {
        f->present = true;
        f->reply_len = out_len;
        if (f->wbxml) {
            assert_int_equal(out[0], 0x02);
            size_t xl = 0;
            uint8_t *back = t_convert(out, out_len, false, &xl);
            assert_int_equal(t_reply_parse(&f->reply, back, xl), 0);
            free(back);
        } else {
            assert_int_equal(t_reply_parse(&f->reply, out, out_len), 0);
        }
    }
    omadm_buffer_free(f->e.dm, out);
    if (msg != (uint8_t *)xml)
        free(msg);
    free(xml);
    return f->err;
}

/* "the server's SyncHdr Status and Alert 1222" for our last message */
static omadm_error_t next_please(fx_t *f)
{
    char *body = t_strf("<Status><CmdID>1</CmdID><MsgRef>%s</MsgRef><CmdRef>0</CmdRef>"
                        "<Cmd>SyncHdr</Cmd><Data>200</Data></Status>"
                        "<Alert><CmdID>2</CmdID><Data>1222</Data></Alert>",
                        f->reply.msg_id);
    omadm_error_t err = server(f, false, body, false);
    free(body);
    return err;
}

/* ---- items as text -------------------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
    char last[128];            /* Source of the last item (chunks join) */
} text_t;

static void text_add(text_t *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

/* Every Item of the Results for cmdref in r, as "\nsource|format|type|data";
 * a chunk of the value before it (same Source, MoreData before) adds its
 * data only. */
static size_t collect(text_t *t, const t_reply_t *r, const char *cmdref, bool *more)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_cmds; i++) {
        const t_cmd_t *c = &r->cmds[i];
        if (strcmp(c->name, "Results") || !c->cmd_ref || strcmp(c->cmd_ref, cmdref))
            continue;
        for (size_t j = 0; j < c->n_items; j++) {
            const t_item_t *it = &c->items[j];
            if (!(*more && it->source && !strcmp(it->source, t->last))) {
                text_add(t, "\n");
                text_add(t, it->source ? it->source : "-");
                text_add(t, "|");
                text_add(t, it->format ? it->format : "-");
                text_add(t, "|");
                text_add(t, it->type ? it->type : "-");
                text_add(t, "|");
                snprintf(t->last, sizeof t->last, "%s", it->source ? it->source : "");
                n++;
            }
            if (it->data)
                text_add(t, it->data);
            *more = it->more_data;
        }
    }
    return n;
}

/* The listing in one reply, outside a session (the reference). */
static char *reference(const gen_t *g, const char *uri)
{
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_reply_size = (size_t)1 << 30;
    e.cfg.dev_id = "dev-1";
    t_env_start(&e);
    gen_t copy = *g;
    assert_int_equal(omadm_register_csp(e.dm, &gen_plugin, &copy), OMADM_OK);
    char *body = t_strf("<Get><CmdID>3</CmdID><Item><Target><LocURI>%s</LocURI></Target></Item>"
                        "</Get>", uri);
    assert_int_equal(t_send(&e, true, body), OMADM_OK);
    free(body);
    assert_int_equal(t_code(&e.reply, "3"), 200);
    text_t t = {0};
    bool more = false;
    collect(&t, &e.reply, "3", &more);
    t_env_done(&e);
    return t.s;
}

#define GET_LIST(id, kind) "<Get><CmdID>" id "</CmdID><Item><Target><LocURI>" BASE "?list=" kind \
    "</LocURI></Target></Item></Get>"

typedef struct run {
    text_t items[2];           /* per Get (CmdRef 3 and 5) */
    bool more[2];
    unsigned parts;
    size_t reply_bytes;        /* all messages together */
    size_t peak;               /* the engine's peak bytes over the session */
    int status3, status5, status4;
    long order_bad;            /* a command out of order */
    size_t items_at_status4;   /* of the first Get, when the next one's Status came */
} run_t;

/* Everything after the first reply: Alert 1222 until Final. */
static void drain(fx_t *f, run_t *r)
{
    for (;;) {
        assert_true(f->present);
        r->parts++;
        r->reply_bytes += f->reply_len;
        if ((long)f->reply_len > f->max_msg)
            fail_msg("part %u is %zu bytes (MaxMsgSize %d)", r->parts, f->reply_len, f->max_msg);
        const char *refs[2] = {"3", "5"};
        for (int k = 0; k < 2; k++)
            collect(&r->items[k], &f->reply, refs[k], &r->more[k]);
        for (size_t i = 0; i < f->reply.n_cmds; i++) {
            const t_cmd_t *c = &f->reply.cmds[i];
            if (strcmp(c->name, "Status") || !c->cmd_ref)
                continue;
            int code = c->data ? atoi(c->data) : -1;
            if (!strcmp(c->cmd_ref, "3"))
                r->status3 = code;
            if (!strcmp(c->cmd_ref, "4")) {
                r->status4 = code;
                r->items_at_status4 = r->items[0].len;
                if (r->status5)
                    r->order_bad++;
            }
            if (!strcmp(c->cmd_ref, "5")) {
                r->status5 = code;
                if (!r->status4)
                    r->order_bad++;
            }
        }
        if (f->reply.final)
            break;
        assert_true(r->parts < 100000);
        assert_int_equal(next_please(f), OMADM_OK);
    }
}

static void run_free(run_t *r)
{
    free(r->items[0].s);
    free(r->items[1].s);
}

/* A listing of n nodes in a session: every Item once, in order, within
 * the server's MaxMsgSize. */
static void listing(unsigned n, bool wbxml, int max_msg, const char *kind, run_t *r)
{
    fx_t f;
    fx_start(&f, n, wbxml, max_msg);
    begin(&f);
    memset(r, 0, sizeof *r);
    f.mem.peak = f.mem.cur;
    char *body = t_strf("<Get><CmdID>3</CmdID><Item><Target><LocURI>" BASE "?list=%s</LocURI>"
                        "</Target></Item></Get>", kind);
    assert_int_equal(server(&f, true, body, false), OMADM_OK);
    free(body);
    drain(&f, r);
    r->peak = f.mem.peak;
    assert_int_equal(r->status3, 200);
    char *uri = t_strf(BASE "?list=%s", kind);
    char *want = reference(&f.gen, uri);
    free(uri);
    assert_non_null(r->items[0].s);
    assert_string_equal(r->items[0].s, want);
    free(want);
    /* the package is complete: the server's empty answer ends the session */
    assert_int_equal(server(&f, false, "", false), OMADM_OK);
    assert_false(f.present);
    assert_false(omadm_session_active(f.e.dm));
    fx_done(&f);
}

static void test_struct_data_xml(void **state)
{
    (void)state;
    run_t r;
    listing(300, false, 4096, "StructData", &r);
    assert_true(r.parts >= 20); /* about 200 kB in messages of 4 kB */
    assert_true(r.peak < r.reply_bytes / 2);
    run_free(&r);
}

static void test_struct_wbxml(void **state)
{
    (void)state;
    run_t r;
    listing(300, true, 2048, "Struct", &r);
    assert_true(r.parts >= 10);
    run_free(&r);
    listing(300, true, 4096, "StructData", &r);
    assert_true(r.parts >= 10);
    run_free(&r);
}

/* What the engine holds does not grow with the subtree: the walk's
 * position (the base's child names) does, nothing else. */
static void test_peak_memory_bounded(void **state)
{
    (void)state;
    run_t small, big;
    listing(2000, false, 65536, "StructData", &small);
    listing(8000, false, 65536, "StructData", &big);
    print_message("peak %zu bytes at 2000 nodes (%zu bytes sent in %u messages), "
                  "%zu at 8000 (%zu bytes in %u)\n",
                  small.peak, small.reply_bytes, small.parts, big.peak, big.reply_bytes,
                  big.parts);
    /* far below the reply (an engine that makes the whole Results first
     * holds more than all of it at once) */
    assert_true(small.peak < small.reply_bytes / 2);
    assert_true(big.peak < big.reply_bytes / 4);
    /* 6,000 more child names and little else: the walk keeps a copy of the
     * base's names (29 bytes and a pointer each), and the plugin's list of
     * them lives while they are copied */
    assert_true(big.peak < small.peak + 6000u * 128u + 64u * 1024u);
    run_free(&small);
    run_free(&big);
}

/* A value larger than a message goes in chunks in the middle of the
 * stream, and the listing goes on after it. */
static void test_big_value_in_stream(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, 40, false, 1500);
    f.gen.big_at = 17;
    begin(&f);
    run_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(server(&f, true, GET_LIST("3", "StructData"), false), OMADM_OK);
    drain(&f, &r);
    char *want = reference(&f.gen, BASE "?list=StructData");
    assert_string_equal(r.items[0].s, want);
    free(want);
    run_free(&r);
    fx_done(&f);
}

/* Commands after a streamed Get, and a second listing Get, in one message:
 * their Statuses and Results follow the first listing's, in order. */
static void test_commands_after_stream(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, 200, false, 3000);
    begin(&f);
    run_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(server(&f, true,
                            GET_LIST("3", "StructData")
                            "<Get><CmdID>4</CmdID><Item><Target><LocURI>./DevInfo/DevId</LocURI>"
                            "</Target></Item></Get>"
                            GET_LIST("5", "Struct"), false),
                     OMADM_OK);
    drain(&f, &r);
    assert_int_equal(r.status3, 200);
    assert_int_equal(r.status4, 200);
    assert_int_equal(r.status5, 200);
    assert_int_equal(r.order_bad, 0);
    /* every Item of the first listing came before the next command's Status */
    assert_int_equal(r.items_at_status4, r.items[0].len);
    char *want = reference(&f.gen, BASE "?list=StructData");
    assert_string_equal(r.items[0].s, want);
    free(want);
    want = reference(&f.gen, BASE "?list=Struct");
    assert_string_equal(r.items[1].s, want);
    free(want);
    run_free(&r);
    fx_done(&f);
}

/* A Get of several targets: a listing that streams, then a leaf and a
 * second listing; one Results, items in target order. */
static void test_targets_after_stream(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, 120, true, 2500);
    begin(&f);
    run_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(server(&f, true,
                            "<Get><CmdID>3</CmdID>"
                            "<Item><Target><LocURI>" BASE "?list=StructData</LocURI></Target></Item>"
                            "<Item><Target><LocURI>./DevInfo/DevId</LocURI></Target></Item>"
                            "<Item><Target><LocURI>" BASE "/node-with-a-longer-name-00007?list=Struct"
                            "</LocURI></Target></Item></Get>", false),
                     OMADM_OK);
    drain(&f, &r);
    assert_int_equal(r.status3, 200);
    char *a = reference(&f.gen, BASE "?list=StructData");
    char *b = reference(&f.gen, "./DevInfo/DevId");
    char *c = reference(&f.gen, BASE "/node-with-a-longer-name-00007?list=Struct");
    char *want = t_strf("%s%s%s", a, b, c);
    assert_string_equal(r.items[0].s, want);
    free(a);
    free(b);
    free(c);
    free(want);
    run_free(&r);
    fx_done(&f);
}

/* Nodes gone between messages are left out, as a walk leaves out a node
 * gone meanwhile. */
static void test_nodes_gone_midway(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, 200, false, 3000);
    begin(&f);
    run_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(server(&f, true, GET_LIST("3", "StructData"), false), OMADM_OK);
    assert_false(f.reply.final);
    bool more = false;
    collect(&r.items[0], &f.reply, "3", &more);
    r.more[0] = more;
    r.parts = 1;
    r.status3 = t_code(&f.reply, "3");
    /* after the first message: every node from 150 on is gone */
    f.gen.gone_from = 150;
    assert_int_equal(next_please(&f), OMADM_OK);
    drain(&f, &r);
    assert_int_equal(r.status3, 200);
    char *want = reference(&f.gen, BASE "?list=StructData"); /* 150 nodes */
    assert_string_equal(r.items[0].s, want);
    free(want);
    run_free(&r);
    fx_done(&f);
}

/* A session that ends in the middle of a listing frees the walk with it. */
static void test_interrupted(void **state)
{
    (void)state;
    fx_t f;
    fx_start(&f, 8000, false, 8192);
    begin(&f);
    assert_int_equal(server(&f, true, GET_LIST("3", "Struct"), false), OMADM_OK);
    assert_false(f.reply.final);
    assert_int_equal(next_please(&f), OMADM_OK);
    assert_false(f.reply.final);
    size_t mid = f.mem.cur;
    /* the server stops: Alert 1223, no reply, the session is over */
    assert_int_equal(server(&f, false, "<Alert><CmdID>2</CmdID><Data>1223</Data></Alert>", false),
                     OMADM_OK);
    assert_false(f.present);
    assert_false(omadm_session_active(f.e.dm));
    /* 8,000 child names of 29 bytes are gone with it */
    print_message("engine memory %zu bytes in the middle, %zu after the end\n", mid, f.mem.cur);
    assert_true(mid - f.mem.cur >= 8000u * 29u);
    fx_done(&f);

    /* and omadm_free in the middle of one */
    fx_start(&f, 3000, true, 4096);
    begin(&f);
    assert_int_equal(server(&f, true, GET_LIST("3", "StructData"), false), OMADM_OK);
    assert_int_equal(next_please(&f), OMADM_OK);
    assert_false(f.reply.final);
    fx_done(&f); /* no block left */
}

/* ---- allocation failures --------------------------------------------------- */

typedef struct sweep_stats {
    unsigned runs, complete, failed;
} sweep_stats_t;

/* One streamed listing with the fail_at-th allocation failing (from then
 * on when persistent): every message that comes is within MaxMsgSize and
 * its items continue the reference; a run that completes has all of them;
 * a failing message ends the session; nothing leaks. */
static void sweep_once(long fail_at, bool persistent, bool wbxml, const char *want,
                       sweep_stats_t *st, long *calls)
{
    fx_t f;
    fx_start(&f, 30, wbxml, 1500);
    f.gen.big_at = 11;
    begin(&f);
    f.mem.a.calls = 0;
    f.mem.a.fail_at = fail_at;
    f.mem.a.persistent = persistent;
    run_t r;
    memset(&r, 0, sizeof r);
    omadm_error_t err = server(&f, true, GET_LIST("3", "StructData"), false);
    bool complete = false;
    while (!err && f.present) {
        r.parts++;
        if ((long)f.reply_len > f.max_msg)
            fail_msg("N=%ld: part %u is %zu bytes", fail_at, r.parts, f.reply_len);
        int code = t_code(&f.reply, "3");
        if (code >= 0)
            r.status3 = code;
        collect(&r.items[0], &f.reply, "3", &r.more[0]);
        if (f.reply.final) {
            complete = true;
            break;
        }
        if (r.parts > 200)
            fail_msg("N=%ld: no end", fail_at);
        err = next_please(&f);
    }
    const char *got = r.items[0].s ? r.items[0].s : "";
    if (complete && r.status3 == 200) {
        if (strcmp(got, want)) {
            size_t d = 0;
            while (got[d] && got[d] == want[d])
                d++;
            size_t from = d > 200 ? d - 200 : 0;
            fail_msg("N=%ld: a complete listing differs at %zu:\n%.400s\n---\n%.400s", fail_at,
                     d, got + from, want + from);
        }
        st->complete++;
    } else {
        /* what came is the start of the listing (the Get itself may have
         * been answered 500 without Results) */
        if (strncmp(got, want, strlen(got)) && !(r.status3 == 500 && !*got))
            fail_msg("N=%ld: the items sent are not the listing's start:\n%s", fail_at, got);
        if (!complete)
            assert_false(omadm_session_active(f.e.dm)); /* the error ended it */
        st->failed++;
    }
    st->runs++;
    *calls = f.mem.a.calls;
    f.mem.a.fail_at = 0;
    run_free(&r);
    fx_done(&f); /* no leak */
}

static void sweep(bool persistent, bool wbxml)
{
    gen_t g = {.n = 30, .big_at = 11, .gone_from = 30};
    char *want = reference(&g, BASE "?list=StructData");
    sweep_stats_t st = {0};
    long total = 0;
    sweep_once(0, false, wbxml, want, &st, &total);
    assert_true(total > 100);
    for (long n = 1; n <= total; n++) {
        long calls = 0;
        sweep_once(n, persistent, wbxml, want, &st, &calls);
    }
    print_message("%s%s: %u runs over %ld allocations, %u complete, %u ended early\n",
                  wbxml ? "WBXML" : "XML", persistent ? " (persistent)" : "", st.runs, total,
                  st.complete, st.failed);
    assert_true(st.failed > 0);
    free(want);
}

static void test_alloc_failures_xml(void **state)
{
    (void)state;
    sweep(false, false);
    sweep(true, false);
}

static void test_alloc_failures_wbxml(void **state)
{
    (void)state;
    sweep(false, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_data_xml),
        cmocka_unit_test(test_struct_wbxml),
        cmocka_unit_test(test_peak_memory_bounded),
        cmocka_unit_test(test_big_value_in_stream),
        cmocka_unit_test(test_commands_after_stream),
        cmocka_unit_test(test_targets_after_stream),
        cmocka_unit_test(test_nodes_gone_midway),
        cmocka_unit_test(test_interrupted),
        cmocka_unit_test(test_alloc_failures_xml),
        cmocka_unit_test(test_alloc_failures_wbxml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
