/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_alloc.c - allocation failure injection in the style of SQLite's
 * test_malloc.c: the platform allocator fails its N-th call (once, or
 * every call from the N-th on) for N = 1, 2, ... until a run completes
 * without a failure.  Every run of omadm_new() + omadm_register_csp() +
 * omadm_process() must return an error or a correct reply, never crash,
 * never leak (outstanding engine allocations are counted here; ASan/LSan
 * check the rest in the sanitize build), and leave an engine that still
 * works: after each run a probe message is processed without failures and
 * checked (Atomic all-or-nothing, persisted tree equal to the live one).
 *
 * With a plugin, its end_message is recorded: what the plugin holds then
 * is what it made durable.  Whatever fails, the plugin holds nothing it
 * was not asked to make durable; a message that got no reply made nothing
 * durable; and one that got a reply (in full, or its Statuses alone) says
 * in its Statuses what is durable.  The same in WBXML, and for a message
 * that leaves the server's package open (the reply asks for more).
 *
 * libxml2 allocates on its own; only the engine's allocations go through
 * the platform table.  A last sweep fails libxml2's allocations instead,
 * through its global allocator hooks: a parse libxml2 gives up for lack of
 * memory must be reported as that, not as input that is not SyncML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xmlmemory.h>

#include "support_csp.h"
#include "support_dm.h"
#include "support_store.h"

typedef struct scenario {
    const char *name;
    const char *body;        /* the message under failure injection */
    const char *seed_body;   /* run first (no failures) to fill the store; NULL: no storage */
    bool plugin;
    const char *probe;       /* run after each failure, without failures */
    void (*check_probe)(const t_reply_t *r);
    /* with plugin: the reply (NULL when none) against what the plugin has
     * made durable ("path=value" lines) */
    void (*check_durable)(const t_reply_t *r, const char *durable);
    bool wbxml;              /* the message (and so the reply) in WBXML */
    bool no_final;           /* the message leaves the server's package open */
} scenario_t;

typedef struct stats {
    unsigned runs, new_failed, register_failed, process_failed, replies, degraded;
    unsigned statuses_only;  /* replies without the Results the reference has (a Get
                                answered 500, or the Statuses alone) */
    unsigned problems;       /* runs that went wrong; the first few are kept */
    char first[6][768];
} stats_t;

static stats_t *g_stats;
static long g_fail_at;

/* Note a wrong outcome and go on with the sweep (all of them get reported
 * at the end instead of only the first). */
static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    stats_t *st = g_stats;
    char text[sizeof st->first[0] - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    st->problems++;
    /* keep the first run of each kind (the text up to the first digit) */
    size_t kind = strcspn(text, "0123456789\n");
    size_t kept = 0;
    for (; kept < sizeof st->first / sizeof st->first[0] && st->first[kept][0]; kept++) {
        const char *old = strchr(st->first[kept], ' ') + 1;
        if (!strncmp(old, text, kind))
            return;
    }
    if (kept < sizeof st->first / sizeof st->first[0])
        snprintf(st->first[kept], sizeof st->first[0], "N=%ld: %s", g_fail_at, text);
}

/* ---- messages ------------------------------------------------------------ */

#define M1                                                                                   \
    T_ADD_NODE("2", "./A")                                                                   \
    T_ADD("3", "./A/b", "b64", "AAEC/w==")                                                   \
    T_ADD("4", "./A/c", "chr", "hello &amp; bye")                                            \
    T_GET("5", "./A/c")                                                                      \
    T_GET("6", "./A?list=StructData")                                                        \
    "<Atomic><CmdID>7</CmdID>" T_ADD("8", "./T/At1", "chr", "1") T_ADD("9", "./T/At2", "int", "2") \
    T_REPLACE("10", "./A/c", "chr", "world") "</Atomic>"                                     \
    T_REPLACE_PROP("11", "./A?prop=ACL", "Get=*&amp;Replace=*&amp;Add=*&amp;Delete=*")       \
    T_REPLACE_PROP("12", "./A/c?prop=Title", "the title")                                    \
    "<Sequence><CmdID>13</CmdID>" T_DELETE("14", "./A/b") T_COPY("15", "./A/c", "./A/d")     \
    T_ALERT("16", "1201") "</Sequence>"                                                      \
    T_GET("17", "./A/d?prop=TStamp")                                                         \
    "<Atomic><CmdID>18</CmdID>" T_ADD("19", "./U", "chr", "u") T_GET("20", "./U") "</Atomic>" \
    T_REPLACE_PROP("21", "./A/c?prop=Name", "renamed")

#define M2                                                                                   \
    T_DELETE("2", "./A")                                                                     \
    T_ADD("3", "./A/x/y", "chr", "xy")                                                       \
    T_REPLACE("4", "./T/At1", "int", "11")                                                   \
    "<Atomic><CmdID>5</CmdID>" T_DELETE("6", "./T") T_ADD("7", "./T/New", "chr", "n")         \
    T_ADD("8", "./DevInfo/X", "chr", "x") "</Atomic>"                                        \
    T_GET("9", "./T?list=StructData")                                                        \
    T_REPLACE_PROP("10", "./T?prop=Title", "tt")

#define M3                                                                                   \
    T_ADD("2", "./Vendor/Test/New", "chr", "n")                                              \
    T_GET("3", "./Vendor/Test?list=StructData")                                              \
    "<Atomic><CmdID>4</CmdID>" T_ADD("5", "./E/At", "chr", "e")                               \
    T_REPLACE("6", "./Vendor/Test/Top", "chr", "t2") T_DELETE("7", "./Vendor/Test/Dir")       \
    "</Atomic>"                                                                              \
    "<Exec><CmdID>8</CmdID><Correlator>c</Correlator><Item>" T_TARGET("./Vendor/Test/Top")   \
    "<Data>arg</Data></Item></Exec>"                                                         \
    T_GET("9", "./Vendor/Test/Top")                                                          \
    T_COPY("10", "./Vendor/Test/Top", "./E/Copy")

/* ---- probes -------------------------------------------------------------- */

static bool has_source(const t_cmd_t *r, const char *src)
{
    for (size_t i = 0; r && i < r->n_items; i++)
        if (r->items[i].source && !strcmp(r->items[i].source, src))
            return true;
    return false;
}

/* After M1: the successful Atomic is all there or all gone, the failed
 * one left nothing. */
static void check_probe_m1(const t_reply_t *r)
{
    const t_cmd_t *t = t_results(r, "2");
    int code = t_code(r, "2");
    if (code == 200) {
        assert_true(has_source(t, "./T/At1"));
        assert_true(has_source(t, "./T/At2"));
    } else {
        assert_int_equal(code, 404);
    }
    assert_int_equal(t_code(r, "3"), 404); /* ./U */
}

/* After M2 (on the M1 tree): the Atomic always fails, so ./T keeps At1
 * and has no New. */
static void check_probe_m2(const t_reply_t *r)
{
    const t_cmd_t *t = t_results(r, "2");
    assert_int_equal(t_code(r, "2"), 200);
    assert_true(has_source(t, "./T/At1"));
    assert_false(has_source(t, "./T/New"));
    assert_int_equal(t_code(r, "3"), 404); /* ./DevInfo/X */
}

/* After M3: ./E/At and the plugin's Top change go together. */
static void check_probe_m3(const t_reply_t *r)
{
    bool at = t_code(r, "2") == 200;
    const t_cmd_t *top = t_results(r, "3");
    assert_non_null(top);
    bool changed = !strcmp(top->items[0].data, "t2");
    if (at != changed)
        fail_msg("Atomic half applied: ./E/At %s, Top = %s", at ? "present" : "absent",
                 top->items[0].data);
}

#define PROBE_M1 T_GET("2", "./T?list=Struct") T_GET("3", "./U")
#define PROBE_M2 T_GET("2", "./T?list=Struct") T_GET("3", "./DevInfo/X")
#define PROBE_M3 T_GET("2", "./E/At") T_GET("3", "./Vendor/Test/Top")

/* ---- running ------------------------------------------------------------- */

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines, sorted, as one string; frees them. */
static char *join_sorted(char **lines, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]);
    qsort(lines, n, sizeof *lines, cmp_lines);
    char *out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Every node below "." as "source|format|data" lines, in name order
 * (through Get ?list; a reloaded tree may list children in another
 * order). */
static char *listing(t_env_t *e)
{
    assert_int_equal(t_send(e, true, T_GET("1", ".?list=StructData")), OMADM_OK);
    const t_cmd_t *r = t_results(&e->reply, "1");
    assert_non_null(r);
    char **lines = calloc(r->n_items ? r->n_items : 1, sizeof *lines);
    for (size_t i = 0; i < r->n_items; i++) {
        const t_item_t *it = &r->items[i];
        lines[i] = t_strf("%s|%s|%s\n", it->source, it->format ? it->format : "-",
                          it->data ? it->data : "-");
    }
    return join_sorted(lines, r->n_items);
}

static bool status_code_allowed(int got, int want)
{
    return got == want || got == 500 || got == 507 || got == 216 || got == 215;
}

/* A reply produced under failure: the same statuses in the same order.
 * Up to the first command that failed for lack of memory (500, or the
 * Atomic codes 507/216/215) codes and Results are those of the reference;
 * after it, later commands may see its consequences (a Delete of a node
 * whose Add failed is 404), so only the structure is compared.  Returns
 * true when the reply is byte-identical to the reference. */
static bool check_reply(const t_reply_t *got, const t_reply_t *ref)
{
    size_t gi = 0;
    bool identical = got->raw_len == ref->raw_len && !memcmp(got->raw, ref->raw, ref->raw_len);
    bool deviated = false;
    if (identical)
        return true;
    if (!got->n_cmds || strcmp(got->cmds[0].cmd ? got->cmds[0].cmd : "", "SyncHdr") ||
        strcmp(got->cmds[0].data ? got->cmds[0].data : "", "200")) {
        problem("no SyncHdr status 200 first");
        return false;
    }
    for (size_t ri = 0; ri < ref->n_cmds; ri++) {
        const t_cmd_t *want = &ref->cmds[ri];
        if (strcmp(want->name, "Status"))
            continue;
        while (gi < got->n_cmds && strcmp(got->cmds[gi].name, "Status"))
            gi++;
        if (gi >= got->n_cmds) {
            problem("status for CmdRef %s (%s) missing from an OK reply", want->cmd_ref, want->cmd);
            return false;
        }
        const t_cmd_t *s = &got->cmds[gi++];
        if (strcmp(s->cmd_ref, want->cmd_ref) || strcmp(s->cmd, want->cmd)) {
            problem("status missing or out of order in an OK reply: got CmdRef %s (%s) where "
                    "CmdRef %s (%s) was due", s->cmd_ref, s->cmd, want->cmd_ref, want->cmd);
            return false;
        }
        int code = atoi(s->data), want_code = atoi(want->data);
        if (code != want_code) {
            if (!deviated && !status_code_allowed(code, want_code))
                problem("CmdRef %s (%s): %d under failure, %d without", s->cmd_ref, s->cmd, code,
                        want_code);
            deviated = true;
            continue;
        }
        if (!deviated && !strcmp(s->cmd, "Get") && code == 200 && s->n_target_refs == 0) {
            const t_cmd_t *gr = t_results(got, s->cmd_ref), *wr = t_results(ref, s->cmd_ref);
            if (!gr || !wr || gr->n_items != wr->n_items) {
                problem("Get %s answered 200 but its Results differ", s->cmd_ref);
                continue;
            }
            for (size_t k = 0; k < wr->n_items; k++) {
                bool same_data = !wr->items[k].data || !strcmp(s->cmd_ref, "17") || /* TStamp */
                                 (gr->items[k].data && !strcmp(gr->items[k].data, wr->items[k].data));
                if (strcmp(gr->items[k].source, wr->items[k].source) || !same_data)
                    problem("Get %s item %zu differs", s->cmd_ref, k);
            }
        }
    }
    while (gi < got->n_cmds && strcmp(got->cmds[gi].name, "Status"))
        gi++;
    if (gi != got->n_cmds)
        problem("extra status in the reply");
    return false;
}

static void seed_store(const scenario_t *sc, tstore_t *st)
{
    tstore_init(st);
    if (!sc->seed_body)
        return;
    t_env_t e;
    t_env_init(&e);
    e.storage = &st->api;
    t_env_start(&e);
    assert_int_equal(t_send(&e, true, sc->seed_body), OMADM_OK);
    t_env_done(&e);
}

static void make_plugin(tcsp_t *c)
{
    tcsp_init(c, "test", "./Vendor/Test", NULL);
    tcsp_mkdir(c, "Dir");
    tcsp_put(c, "Dir/Leaf", "v1");
    tcsp_put(c, "Top", "t");
}

/* The test CSP with its end_message recorded: what it holds when the
 * engine asks it to make the message's changes durable is its durable
 * state (the in-memory CSP makes nothing durable of its own). */
typedef struct dcsp {
    tcsp_t c;                /* first: the handlers take the context as a tcsp_t */
    int (*end)(void *);      /* the CSP's own end_message */
    char *seed;              /* its state before the message */
    char *durable;           /* its state at the last end_message; NULL: none ran */
} dcsp_t;

/* "path=value" (interior nodes "path/") lines, sorted. */
static char *csp_state(const tcsp_t *c)
{
    size_t n = c->nodes.n;
    char **lines = calloc(n ? n : 1, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        const tcsp_node_t *nd = &c->nodes.v[i];
        lines[i] = nd->interior ? t_strf("%s/\n", nd->path)
                                : t_strf("%s=%s\n", nd->path, nd->data ? (char *)nd->data : "");
    }
    return join_sorted(lines, n);
}

static int dcsp_end(void *ctx)
{
    dcsp_t *d = ctx;
    free(d->durable);
    d->durable = csp_state(&d->c);
    return d->end(ctx);
}

static void dcsp_init(dcsp_t *d)
{
    memset(d, 0, sizeof *d);
    make_plugin(&d->c);
    d->end = d->c.table.end_message;
    d->c.table.end_message = dcsp_end;
    d->seed = csp_state(&d->c);
}

static void dcsp_free(dcsp_t *d)
{
    free(d->seed);
    free(d->durable);
    tcsp_free(&d->c);
}

/* After a message: whatever the CSP holds has been made durable, a message
 * that got no reply made nothing durable, and one that got a reply says
 * what the durable state is (the scenario's check). */
static void check_durable(const scenario_t *sc, dcsp_t *d, const t_reply_t *r)
{
    char *live = csp_state(&d->c);
    const char *durable = d->durable ? d->durable : d->seed;
    if (strcmp(live, durable))
        problem("the plugin holds changes it was never asked to make durable:\n%s---\n%s",
                live, durable);
    if (!r && strcmp(durable, d->seed))
        problem("no reply, but the plugin made changes durable:\n%s", durable);
    if (r && sc->check_durable)
        sc->check_durable(r, durable);
    free(live);
}

/* t_send in the scenario's encoding: a WBXML reply is parsed as XML. */
static omadm_error_t send_body(t_env_t *e, const scenario_t *sc)
{
    if (!sc->wbxml)
        return t_send(e, !sc->no_final, sc->body);
    char *xml = t_message(e->session_id, e->msg_id++, e->server, sc->body, !sc->no_final);
    size_t len = 0, out_len = 0;
    uint8_t *msg = t_convert((const uint8_t *)xml, strlen(xml), true, &len);
    uint8_t *out = NULL;
    t_reply_free(&e->reply);
    e->last_err = omadm_process(e->dm, msg, len, &out, &out_len);
    if (out) {
        assert_int_equal(out[0], 0x02); /* WBXML 1.2 */
        size_t xml_len = 0;
        uint8_t *back = t_convert(out, out_len, false, &xml_len);
        assert_int_equal(t_reply_parse(&e->reply, back, xml_len), 0);
        free(back);
    }
    omadm_buffer_free(e->dm, out);
    free(msg);
    free(xml);
    return e->last_err;
}

/* The reply without any failure. */
static void reference(const scenario_t *sc, t_reply_t *ref)
{
    tstore_t st;
    tcsp_t c;
    seed_store(sc, &st);
    make_plugin(&c);
    t_env_t e;
    t_env_init(&e);
    if (sc->seed_body)
        e.storage = &st.api;
    e.msg_id = 10;
    t_env_start(&e);
    if (sc->plugin)
        assert_int_equal(omadm_register_csp(e.dm, &c.table, &c), OMADM_OK);
    assert_int_equal(send_body(&e, sc), OMADM_OK);
    assert_true(e.reply.present);
    *ref = e.reply;
    memset(&e.reply, 0, sizeof e.reply);
    t_env_done(&e);
    tcsp_free(&c);
    tstore_free(&st);
}

/* One run with the N-th allocation failing; returns the failures injected. */
static long run_one(const scenario_t *sc, long fail_at, bool persistent, const t_reply_t *ref,
                    stats_t *stats)
{
    tstore_t st;
    dcsp_t d;
    tcsp_t *c = &d.c;
    seed_store(sc, &st);
    dcsp_init(&d);
    t_env_t e;
    t_env_init(&e);
    if (sc->seed_body)
        e.storage = &st.api;
    e.msg_id = 10;
    e.alloc.fail_at = fail_at;
    e.alloc.persistent = persistent;
    g_stats = stats;
    g_fail_at = fail_at;
    stats->runs++;

    omadm_error_t err = omadm_new(&e.cfg, &e.plat, e.storage, &e.dm);
    if (err) {
        if (err != OMADM_E_NOMEM)
            problem("omadm_new: %s instead of \"%s\"", omadm_strerror(err),
                    omadm_strerror(OMADM_E_NOMEM));
        if (e.dm)
            problem("omadm_new failed but set *out");
        e.dm = NULL;
        stats->new_failed++;
        goto done;
    }
    if (sc->plugin) {
        err = omadm_register_csp(e.dm, &c->table, &d);
        if (err) {
            if (err != OMADM_E_NOMEM)
                problem("omadm_register_csp: %s instead of \"%s\"", omadm_strerror(err),
                        omadm_strerror(OMADM_E_NOMEM));
            stats->register_failed++;
            goto done;
        }
    }
    unsigned saves_before = st.saves;
    err = send_body(&e, sc);
    if (err) {
        if (err != OMADM_E_NOMEM && err != OMADM_E_ENCODE)
            problem("omadm_process: %s (%s) instead of \"%s\"", omadm_strerror(err),
                    omadm_last_error_detail(e.dm) ? omadm_last_error_detail(e.dm) : "",
                    omadm_strerror(OMADM_E_NOMEM));
        assert_false(e.reply.present);
        stats->process_failed++;
    } else if (!e.reply.present) {
        problem("omadm_process: OK without a reply");
    } else {
        stats->replies++;
        if (!check_reply(&e.reply, ref))
            stats->degraded++;
        bool results = false;
        for (size_t i = 0; i < e.reply.n_cmds; i++)
            results = results || !strcmp(e.reply.cmds[i].name, "Results");
        for (size_t i = 0; i < ref->n_cmds && !results; i++)
            if (!strcmp(ref->cmds[i].name, "Results")) {
                stats->statuses_only++;
                break;
            }
    }
    if (sc->plugin)
        check_durable(sc, &d, err || !e.reply.present ? NULL : &e.reply);
    if (!err && e.reply.present && sc->no_final) {
        /* the server's package goes on: every reply asks for more */
        const t_cmd_t *last = &e.reply.cmds[e.reply.n_cmds - 1];
        if (e.reply.final || strcmp(last->name, "Alert") || strcmp(last->data, "1222"))
            problem("a reply to an open package without Alert 1222 last, or with Final");
    }
    /* the engine keeps working */
    e.alloc.fail_at = 0;
    e.alloc.persistent = false;
    assert_int_equal(t_send(&e, true, sc->probe), OMADM_OK);
    assert_string_equal(e.reply.cmds[0].data, "200");
    sc->check_probe(&e.reply);
    assert_int_equal(c->writes_outside_tx, 0);
    assert_false(c->in_tx);
    /* what was stored is what the engine holds */
    if (sc->seed_body && st.saves > saves_before) {
        char *live = listing(&e);
        t_env_t e2;
        t_env_init(&e2);
        e2.storage = &st.api;
        omadm_error_t lerr = omadm_new(&e2.cfg, &e2.plat, e2.storage, &e2.dm);
        if (!lerr && sc->plugin)
            assert_int_equal(omadm_register_csp(e2.dm, &c->table, &d), OMADM_OK);
        if (lerr) {
            size_t len = 0;
            const uint8_t *tree = tstore_get(&st, "tree", &len);
            problem("the tree stored by an OK omadm_process does not load: %s\n%.*s",
                    omadm_strerror(lerr), (int)len, tree ? (const char *)tree : "");
        } else {
            char *stored = listing(&e2);
            if (strcmp(live, stored))
                problem("stored tree differs from the live one:\n%s---\n%s", live, stored);
            free(stored);
        }
        free(live);
        t_env_done(&e2);
    }
done:
    omadm_free(e.dm);
    e.dm = NULL;
    t_reply_free(&e.reply);
    if (e.alloc.outstanding != 0)
        problem("%ld engine allocations leaked%s", e.alloc.outstanding,
                persistent ? " (all allocations from N on failing)" : "");
    dcsp_free(&d);
    tstore_free(&st);
    return e.alloc.failures;
}

static void sweep(const scenario_t *sc, bool persistent)
{
    t_reply_t ref;
    reference(sc, &ref);
    stats_t stats;
    memset(&stats, 0, sizeof stats);
    long n;
    for (n = 1; n < 100000; n++)
        if (run_one(sc, n, persistent, &ref, &stats) == 0)
            break; /* the N-th call was never made: everything ran */
    assert_true(n < 100000);
    print_message("%s%s: %u runs (%ld allocation calls), new failed %u, register failed %u, "
                  "process failed %u, replies %u (%u degraded, %u without Results), problems %u\n",
                  sc->name, persistent ? " persistent" : "", stats.runs, n - 1, stats.new_failed,
                  stats.register_failed, stats.process_failed, stats.replies, stats.degraded,
                  stats.statuses_only, stats.problems);
    t_reply_free(&ref);
    for (unsigned i = 0; i < sizeof stats.first / sizeof stats.first[0] && stats.first[i][0]; i++)
        print_error("  %s\n", stats.first[i]);
    assert_int_equal(stats.problems, 0);
    assert_true(stats.replies > 0);
    assert_true(stats.process_failed + stats.new_failed > 0);
}

/* M3's plugin changes against its Statuses: the Add of New (CmdRef 2) and
 * the Atomic (4: Replace of Top, Delete of Dir). */
static void check_durable_m3(const t_reply_t *r, const char *durable)
{
    bool new_node = strstr(durable, "New=n\n") != NULL;
    bool atomic = strstr(durable, "Top=t2\n") != NULL;
    if (atomic != !strstr(durable, "Dir/\n"))
        problem("half an Atomic is durable:\n%s", durable);
    if ((t_code(r, "2") == 200) != new_node)
        problem("Add of New answered %d, but New is %s", t_code(r, "2"),
                new_node ? "durable" : "absent");
    if ((t_code(r, "4") == 200) != atomic)
        problem("the Atomic answered %d, but its changes are %s", t_code(r, "4"),
                atomic ? "durable" : "absent");
}

static const scenario_t s_basic = {.name = "basic", .body = M1, .probe = PROBE_M1,
                                   .check_probe = check_probe_m1};
static const scenario_t s_stored = {.name = "stored", .body = M2, .seed_body = M1,
                                    .probe = PROBE_M2, .check_probe = check_probe_m2};
static const scenario_t s_plugin = {.name = "plugin", .body = M3, .plugin = true,
                                    .probe = PROBE_M3, .check_probe = check_probe_m3,
                                    .check_durable = check_durable_m3};
static const scenario_t s_plugin_stored = {.name = "plugin stored", .body = M3,
                                           .seed_body = T_ADD("2", "./Seed", "chr", "s"),
                                           .plugin = true, .probe = PROBE_M3,
                                           .check_probe = check_probe_m3,
                                           .check_durable = check_durable_m3};
static const scenario_t s_plugin_wbxml = {.name = "plugin stored WBXML", .body = M3,
                                          .seed_body = T_ADD("2", "./Seed", "chr", "s"),
                                          .plugin = true, .probe = PROBE_M3,
                                          .check_probe = check_probe_m3,
                                          .check_durable = check_durable_m3, .wbxml = true};

static void test_basic_once(void **state)
{
    (void)state;
    sweep(&s_basic, false);
}

static void test_basic_persistent(void **state)
{
    (void)state;
    sweep(&s_basic, true);
}

static void test_stored_tree_once(void **state)
{
    (void)state;
    sweep(&s_stored, false);
}

static void test_stored_tree_persistent(void **state)
{
    (void)state;
    sweep(&s_stored, true);
}

static void test_plugin_once(void **state)
{
    (void)state;
    sweep(&s_plugin, false);
}

static void test_plugin_persistent(void **state)
{
    (void)state;
    sweep(&s_plugin, true);
}

/* A message whose plugin changes became durable is answered, whatever
 * allocation fails after that (building the reply, encoding it, saving
 * the engine's state), and its Statuses say what is durable. */
static void test_plugin_stored_once(void **state)
{
    (void)state;
    sweep(&s_plugin_stored, false);
}

static void test_plugin_stored_persistent(void **state)
{
    (void)state;
    sweep(&s_plugin_stored, true);
}

static void test_plugin_open_package(void **state)
{
    (void)state;
    scenario_t sc = s_plugin_stored;
    sc.name = "plugin stored, no Final";
    sc.no_final = true;
    sweep(&sc, false);
    sc.name = "plugin stored, no Final, WBXML";
    sc.wbxml = true;
    sweep(&sc, true);
}

static void test_plugin_wbxml_once(void **state)
{
    (void)state;
    sweep(&s_plugin_wbxml, false);
}

static void test_plugin_wbxml_persistent(void **state)
{
    (void)state;
    sweep(&s_plugin_wbxml, true);
}

/* A reply large enough that the reply arena needs a second chunk, then a
 * Sequence holding a server Status (answered 400 from inside) and an
 * Atomic holding a Get (answered 500 from inside): with every allocation
 * from some point on failing, those inner statuses cannot be allocated. */
static char *big_body(void)
{
    size_t cap = 200 * 80 + 1024;
    char *s = malloc(cap);
    s[0] = 0;
    for (int i = 0; i < 200; i++)
        snprintf(s + strlen(s), cap - strlen(s), "<Alert><CmdID>%d</CmdID><Data>1201</Data></Alert>",
                 i + 100);
    strcat(s, "<Sequence><CmdID>2</CmdID>" T_STATUS("3", "1", "200") T_ADD("4", "./S", "chr", "s")
              "</Sequence>"
              "<Atomic><CmdID>5</CmdID>" T_ADD("6", "./U", "chr", "u") T_GET("7", "./U") "</Atomic>");
    return s;
}

static void check_probe_big(const t_reply_t *r)
{
    assert_int_equal(t_code(r, "3"), 404); /* ./U: the Atomic always fails */
}

static void test_big_reply_persistent(void **state)
{
    (void)state;
    char *body = big_body();
    scenario_t sc = {.name = "big reply", .body = body, .probe = T_GET("3", "./U"),
                     .check_probe = check_probe_big};
    sweep(&sc, true);
    free(body);
}

static void test_big_reply_once(void **state)
{
    (void)state;
    char *body = big_body();
    scenario_t sc = {.name = "big reply", .body = body, .probe = T_GET("3", "./U"),
                     .check_probe = check_probe_big};
    sweep(&sc, false);
    free(body);
}

/* ---- libxml2's own allocations ------------------------------------------ */

/* libxml2 does not allocate through the platform table; here its global
 * allocator is pointed at libc through a counter that can fail the N-th
 * call, so a parse cut short by libxml2 running out of memory is seen. */
static struct {
    long calls, fail_at, failures;
} g_xml;

static bool xml_fail(void)
{
    g_xml.calls++;
    if (g_xml.fail_at && g_xml.calls == g_xml.fail_at) {
        g_xml.failures++;
        return true;
    }
    return false;
}

static void *xml_malloc(size_t n)
{
    return xml_fail() ? NULL : malloc(n);
}

static void *xml_realloc(void *p, size_t n)
{
    return xml_fail() ? NULL : realloc(p, n);
}

static char *xml_strdup(const char *s)
{
    return xml_fail() ? NULL : strdup(s);
}

/* A structured error handler the host set for its own use of libxml2. */
static unsigned g_host_xml_errors;

static void host_xml_error(void *ctx, xmlErrorPtr error)
{
    (void)ctx, (void)error;
    g_host_xml_errors++;
}

/* Every libxml2 allocation of the message's parse fails in turn: the
 * message is refused as out of memory (nothing changed: the probe sees
 * the tree as before) or answered in full, never refused as something
 * that is not SyncML and never run in part.  What libxml2 reports on the way is neither printed
 * nor handed to the host's handler, which is in place again afterwards. */
static void test_libxml2_allocation_failure(void **state)
{
    (void)state;
    t_reply_t ref;
    reference(&s_basic, &ref);
    xmlInitParser();
    assert_int_equal(xmlMemSetup(free, xml_malloc, xml_realloc, xml_strdup), 0);
    xmlSetStructuredErrorFunc(&g_host_xml_errors, host_xml_error);
    stats_t stats;
    memset(&stats, 0, sizeof stats);
    g_stats = &stats;
    unsigned nomem = 0;
    long n;
    for (n = 1; n < 100000; n++) {
        t_env_t e;
        t_env_init(&e);
        e.msg_id = 10;
        t_env_start(&e);
        g_fail_at = n;
        g_xml.calls = g_xml.failures = 0;
        char *msg = t_message(e.session_id, e.msg_id++, e.server, M1, true);
        uint8_t *out = NULL;
        size_t out_len = 0;
        g_xml.fail_at = n;
        omadm_error_t err = omadm_process(e.dm, (const uint8_t *)msg, strlen(msg), &out, &out_len);
        g_xml.fail_at = 0; /* the reply is read with libxml2 too */
        long failures = g_xml.failures;
        if (xmlStructuredError != host_xml_error || xmlStructuredErrorContext != &g_host_xml_errors)
            problem("the host's libxml2 error handler was not put back");
        if (g_host_xml_errors)
            problem("%u libxml2 reports reached the host's error handler", g_host_xml_errors);
        g_host_xml_errors = 0;
        free(msg);
        if (out && t_reply_parse(&e.reply, out, out_len))
            fail_msg("reply is not a SyncML XML document:\n%.*s", (int)out_len, (char *)out);
        e.reply.present = out != NULL;
        omadm_buffer_free(e.dm, out);
        if (err == OMADM_E_NOMEM) {
            nomem++;
            assert_false(e.reply.present);
            assert_int_equal(t_send(&e, true, T_GET("2", "./A")), OMADM_OK);
            if (t_code(&e.reply, "2") != 404)
                problem("a message refused for lack of memory left ./A behind");
        } else if (err != OMADM_OK) {
            problem("omadm_process: \"%s\" (%s) instead of \"%s\"", omadm_strerror(err),
                    omadm_last_error_detail(e.dm) ? omadm_last_error_detail(e.dm) : "",
                    omadm_strerror(OMADM_E_NOMEM));
        } else if (!e.reply.present) {
            problem("omadm_process: OK without a reply");
        } else {
            check_reply(&e.reply, &ref);
        }
        t_env_done(&e);
        if (failures == 0)
            break;
    }
    xmlMemSetup(free, malloc, realloc, strdup);
    xmlSetStructuredErrorFunc(NULL, NULL);
    t_reply_free(&ref);
    print_message("libxml2: %ld allocation calls failed in turn, %u refused as out of memory, "
                  "problems %u\n", n - 1, nomem, stats.problems);
    for (unsigned i = 0; i < sizeof stats.first / sizeof stats.first[0] && stats.first[i][0]; i++)
        print_error("  %s\n", stats.first[i]);
    assert_int_equal(stats.problems, 0);
    assert_true(nomem > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_once),
        cmocka_unit_test(test_basic_persistent),
        cmocka_unit_test(test_stored_tree_once),
        cmocka_unit_test(test_stored_tree_persistent),
        cmocka_unit_test(test_plugin_once),
        cmocka_unit_test(test_plugin_persistent),
        cmocka_unit_test(test_plugin_stored_once),
        cmocka_unit_test(test_plugin_stored_persistent),
        cmocka_unit_test(test_plugin_wbxml_once),
        cmocka_unit_test(test_plugin_wbxml_persistent),
        cmocka_unit_test(test_plugin_open_package),
        cmocka_unit_test(test_big_reply_once),
        cmocka_unit_test(test_big_reply_persistent),
        cmocka_unit_test(test_libxml2_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
