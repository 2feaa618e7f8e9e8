/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dmbench.c - throughput and peak memory of omadm_process(), side by side
 * with libxml2 alone doing the XML work a reply needs.
 *
 * What it measures (see docs/performance.md):
 *   cert   a ~2 KB CertificateStore-shaped message: Add of
 *          ./Vendor/MSFT/CertificateStore/Root/System/<thumbprint>/EncodedCertificate
 *          (~1.3 KB base64 DER, Format b64), Get <thumbprint>?list=StructData,
 *          Delete <thumbprint>;
 *   1000   1,000 commands (~210 KB), groups of Add / Get / Replace / Delete
 *          on CertificateStore thumbprints;
 *   5000   the same with 5,000 commands (~1.1 MB of XML);
 * each in XML and in WBXML (made by the engine's own codec from the XML),
 * processed by an engine with a small in-memory CertificateStore CSP
 * (common/ramcsp.c).  Every message deletes what it adds, so each run
 * does the same work on the same engine.  The libxml2 baseline parses the
 * same XML (xmlReadMemory + xmlFreeDoc) and builds and serialises a copy
 * of the engine's reply (xmlNewChild ... + xmlDocDumpMemory).
 *
 * Modes:
 *   dmbench [--batches N] [--batch-ms MS] [--no-rss] [--no-host]
 *                                  timing table, peak RSS, targets, the
 *                                  host loop (host_heap())
 *   dmbench --once WHAT SIZE ENC   setup, one warm-up, then one run of
 *                                  measured_once() (for callgrind
 *                                  --toggle-collect=measured_once);
 *                                  WHAT engine|parse|serialise,
 *                                  SIZE cert|1000|5000, ENC xml|wbxml
 *   dmbench --dump SIZE ENC        write the generated message to stdout
 *   dmbench --rss-child FILE|-     (internal) process FILE once with a new
 *                                  engine, print VmHWM; "-": print it idle
 *   dmbench --host-child FILE MS   (internal) a host's plain loop: one engine
 *                                  processes FILE again and again for MS ms,
 *                                  prints CPU us and minor page faults per
 *                                  message (run with and without
 *                                  GLIBC_TUNABLES, see host_heap())
 *
 * Always exits 0 once it has measured: targets are reported, not enforced.
 * It exits 1 only when it could not measure (the engine refused a message,
 * a reply was not all 200s, a child failed).
 */
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlversion.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "model.h"
#include "omadm.h"
#include "ramcsp.h"
#include "text.h"
#include "util.h"

extern char **environ;

#define STORE_PATH RAMCSP_BASE "/Root/System/"
#define SERVER_URI "https://dm.example.test/omadm"
#define CERT_DER_LEN 975          /* -> 1,300 base64 characters */
/* Value of each Add/Replace in the 1,000- and 5,000-command messages: 32
 * base64 characters.  The commands themselves (a 95-character LocURI each)
 * already make 5,000 of them ~1 MB; this brings the XML to ~1.1 MB. */
#define GROUP_DER_LEN 24
#define BIG_CMDS 5000u
#define MID_CMDS 1000u
#define MAX_BATCHES 64

/* Targets from the issue. */
#define TARGET_LINEARITY 5.5
#define TARGET_VS_LIBXML2 3.0
#define TARGET_RSS_FACTOR 3.0
#define TARGET_RSS_EXTRA (4u << 20)
#define TARGET_HOST_HEAP 1.2      /* glibc defaults / trimming turned down, host loop */

/* ==== deterministic content =================================================== */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* 40 upper-case hex digits, as Windows writes certificate thumbprints. */
static void thumbprint(unsigned k, char out[41])
{
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < 40; i++) {
        uint64_t r = splitmix64(((uint64_t)k << 8) + i / 16);
        out[i] = hex[(r >> (4 * (i % 16))) & 15];
    }
    out[40] = 0;
}

/* len bytes shaped like a DER certificate: SEQUENCE header, then noise. */
static uint8_t *fake_der(uint64_t seed, size_t len)
{
    uint8_t *d = malloc(len);
    if (!d)
        bench_die("out of memory");
    for (size_t i = 0; i < len; i++)
        d[i] = (uint8_t)splitmix64(seed * 1000003u + i);
    if (len >= 4) {
        d[0] = 0x30;
        d[1] = 0x82;
        d[2] = (uint8_t)((len - 4) >> 8);
        d[3] = (uint8_t)(len - 4);
    }
    return d;
}

static void b64_append(text_t *t, const uint8_t *d, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    text_reserve(t, (n + 2) / 3 * 4);
    char *o = t->data + t->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = al[v >> 18], *o++ = al[(v >> 12) & 63], *o++ = al[(v >> 6) & 63], *o++ = al[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = al[v >> 18], *o++ = al[(v >> 12) & 63];
        *o++ = i + 1 < n ? al[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    t->len = (size_t)(o - t->data);
    t->data[t->len] = 0;
}

/* ==== message generation ======================================================= */

static void msg_head(text_t *t)
{
    text_puts(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                 "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>2</MsgID>"
                 "<Target><LocURI>omadm-device</LocURI></Target>"
                 "<Source><LocURI>" SERVER_URI "</LocURI></Source></SyncHdr><SyncBody>\n");
}

static void msg_tail(text_t *t)
{
    text_puts(t, "<Final/></SyncBody></SyncML>\n");
}

/* Add or Replace of <node>/EncodedCertificate with a b64 value. */
static void cmd_write_cert(text_t *t, const char *el, unsigned id, const char *node,
                           const uint8_t *der, size_t der_len)
{
    text_printf(t, "<%s><CmdID>%u</CmdID><Item><Target><LocURI>%s/EncodedCertificate</LocURI>"
                   "</Target><Meta><Format xmlns=\"syncml:metinf\">b64</Format></Meta><Data>",
                el, id, node);
    b64_append(t, der, der_len);
    text_printf(t, "</Data></Item></%s>\n", el);
}

static void cmd_on_uri(text_t *t, const char *el, unsigned id, const char *uri)
{
    text_printf(t, "<%s><CmdID>%u</CmdID><Item><Target><LocURI>%s</LocURI></Target></Item></%s>\n",
                el, id, uri, el);
}

static void node_uri(unsigned k, char *out, size_t size)
{
    char tp[41];
    thumbprint(k, tp);
    snprintf(out, size, STORE_PATH "%s", tp);
}

/* (a): Add the certificate, read the thumbprint subtree back, delete it. */
static text_t gen_cert(void)
{
    text_t t = {0};
    char node[160], uri[200];
    node_uri(0, node, sizeof node);
    uint8_t *der = fake_der(1, CERT_DER_LEN);
    msg_head(&t);
    cmd_write_cert(&t, "Add", 1, node, der, CERT_DER_LEN);
    snprintf(uri, sizeof uri, "%s?list=StructData", node);
    cmd_on_uri(&t, "Get", 2, uri);
    cmd_on_uri(&t, "Delete", 3, node);
    msg_tail(&t);
    free(der);
    return t;
}

/* One group of four commands on thumbprint k; leaves the store as it was. */
static void group(text_t *t, unsigned k, unsigned first_id, size_t der_len)
{
    char node[160], leaf[200];
    node_uri(k + 1, node, sizeof node);
    snprintf(leaf, sizeof leaf, "%s/EncodedCertificate", node);
    uint8_t *der = fake_der(2 * (uint64_t)k + 2, der_len);
    cmd_write_cert(t, "Add", first_id, node, der, der_len);
    cmd_on_uri(t, "Get", first_id + 1, leaf);
    free(der);
    der = fake_der(2 * (uint64_t)k + 3, der_len);
    cmd_write_cert(t, "Replace", first_id + 2, node, der, der_len);
    cmd_on_uri(t, "Delete", first_id + 3, node);
    free(der);
}

static text_t gen_groups(unsigned n_cmds, size_t der_len)
{
    text_t t = {0};
    msg_head(&t);
    for (unsigned i = 0; i < n_cmds; i += 4)
        group(&t, i / 4, i + 1, der_len);
    msg_tail(&t);
    return t;
}

/* ==== engine runs ============================================================== */

typedef struct engine {
    omadm_t *dm;
    ramcsp_t tree;
} engine_t;

static void engine_open(engine_t *e)
{
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    ramcsp_init(&e->tree);
    omadm_error_t err = omadm_new(&cfg, NULL, NULL, &e->dm);
    if (!err)
        err = ramcsp_register(e->dm, &e->tree);
    if (err)
        bench_die("engine setup: %s", omadm_strerror(err));
}

static void engine_close(engine_t *e)
{
    omadm_free(e->dm);
    ramcsp_free(&e->tree);
}

/* One message through the engine; the reply is handed to the caller. */
static uint8_t *engine_run(engine_t *e, const text_t *msg, size_t *reply_len)
{
    uint8_t *reply = NULL;
    omadm_error_t err =
        omadm_process(e->dm, (const uint8_t *)msg->data, msg->len, &reply, reply_len);
    if (err) {
        const char *d = omadm_last_error_detail(e->dm);
        bench_die("omadm_process: %s (%s)", omadm_strerror(err), d ? d : "no detail");
    }
    if (!reply)
        bench_die("omadm_process gave no reply");
    return reply;
}

/* The reply must hold a Status 200 for the header and every command, and
 * a Results for every Get; anything else means the run did other work. */
static void check_reply(engine_t *e, const uint8_t *reply, size_t len, unsigned n_cmds,
                        unsigned n_gets)
{
    syncml_msg_t m;
    const char *detail = NULL;
    syncml_msg_init(&m, e->dm);
    omadm_error_t err = codec_detect(reply, len) == SYNCML_ENC_WBXML
                            ? codec_wbxml_decode(e->dm, reply, len, &m, &detail)
                            : codec_xml_decode(e->dm, reply, len, &m, &detail);
    if (err)
        bench_die("reply does not decode: %s (%s)", omadm_strerror(err), detail ? detail : "");
    unsigned ok = 0, other = 0, results = 0;
    for (const syncml_cmd_t *c = m.cmds; c; c = c->next) {
        if (c->type == SYNCML_CMD_RESULTS)
            results++;
        else if (c->type == SYNCML_CMD_STATUS && c->data_len == 3 && !memcmp(c->data, "200", 3))
            ok++;
        else
            other++;
    }
    syncml_msg_free(&m);
    if (ok != n_cmds + 1 || other || results != n_gets)
        bench_die("unexpected reply: %u Status 200 (want %u), %u other, %u Results (want %u)",
                  ok, n_cmds + 1, other, results, n_gets);
}

/* XML -> model -> WBXML with the engine's codec; returned text is owned. */
static text_t to_wbxml(const text_t *xml)
{
    engine_t e;
    engine_open(&e);
    syncml_msg_t m;
    buf_t b;
    const char *detail = NULL;
    syncml_msg_init(&m, e.dm);
    buf_init(&b, e.dm);
    omadm_error_t err = codec_xml_decode(e.dm, (const uint8_t *)xml->data, xml->len, &m, &detail);
    if (!err)
        err = codec_wbxml_encode(e.dm, &m, &b);
    if (err)
        bench_die("WBXML conversion: %s (%s)", omadm_strerror(err), detail ? detail : "");
    text_t out = {0};
    text_put(&out, (const char *)b.data, b.len);
    buf_free(&b);
    syncml_msg_free(&m);
    engine_close(&e);
    return out;
}

/* ==== libxml2 baseline ========================================================= */

/* A reply document as a flat list of build steps (taken from the engine's
 * own XML reply, outside the timed part). */
typedef enum { OP_OPEN, OP_TEXT, OP_CLOSE } op_kind_t;

typedef struct op {
    op_kind_t kind;
    xmlChar *s;               /* owned: element name or text */
    int len;                  /* text length */
    xmlChar *ns_href;         /* owned: default namespace declared here, or NULL */
} op_t;

typedef struct recipe {
    op_t *ops;                /* owned */
    size_t n, cap;
} recipe_t;

static op_t *recipe_push(recipe_t *r, op_kind_t kind)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->ops = realloc(r->ops, r->cap * sizeof *r->ops);
        if (!r->ops)
            bench_die("out of memory");
    }
    op_t *o = &r->ops[r->n++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    return o;
}

static void recipe_walk(recipe_t *r, const xmlNode *n)
{
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE) {
            op_t *o = recipe_push(r, OP_TEXT);
            o->s = xmlStrdup(n->content);
            o->len = xmlStrlen(n->content);
        } else if (n->type == XML_ELEMENT_NODE) {
            op_t *o = recipe_push(r, OP_OPEN);
            o->s = xmlStrdup(n->name);
            if (n->nsDef)
                o->ns_href = xmlStrdup(n->nsDef->href);
            recipe_walk(r, n->children);
            recipe_push(r, OP_CLOSE);
        }
    }
}

static recipe_t recipe_from_reply(const uint8_t *xml, size_t len)
{
    recipe_t r = {0};
    xmlDocPtr doc = xmlReadMemory((const char *)xml, (int)len, "reply.xml", NULL, XML_PARSE_NONET);
    if (!doc)
        bench_die("libxml2 cannot parse the engine's reply");
    recipe_walk(&r, xmlDocGetRootElement(doc));
    xmlFreeDoc(doc);
    return r;
}

static void recipe_free(recipe_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        xmlFree(r->ops[i].s);
        xmlFree(r->ops[i].ns_href);
    }
    free(r->ops);
    memset(r, 0, sizeof *r);
}

/* Build the reply document node by node. */
static xmlDocPtr recipe_build(const recipe_t *r)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr cur = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const op_t *o = &r->ops[i];
        if (o->kind == OP_OPEN) {
            xmlNodePtr el = cur ? xmlNewChild(cur, NULL, o->s, NULL)
                                : xmlNewDocNode(doc, NULL, o->s, NULL);
            if (!cur)
                xmlDocSetRootElement(doc, el);
            if (o->ns_href)
                xmlSetNs(el, xmlNewNs(el, o->ns_href, NULL));
            cur = el;
        } else if (o->kind == OP_TEXT) {
            xmlNodeAddContentLen(cur, o->s, o->len);
        } else {
            cur = cur->parent;
        }
    }
    return doc;
}

static void libxml2_parse(const text_t *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml->data, (int)xml->len, "msg.xml", NULL, XML_PARSE_NONET);
    if (!doc)
        bench_die("libxml2 cannot parse the message");
    xmlFreeDoc(doc);
}

static size_t libxml2_serialise(const recipe_t *r)
{
    xmlDocPtr doc = recipe_build(r);
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemory(doc, &mem, &size);
    if (!mem)
        bench_die("xmlDocDumpMemory failed");
    xmlFree(mem);
    xmlFreeDoc(doc);
    return (size_t)size;
}

/* ==== scenarios ================================================================ */

typedef enum { SZ_CERT, SZ_MID, SZ_BIG, SZ__COUNT } size_id_t;
typedef enum { ENC_XML, ENC_WBXML, ENC__COUNT } enc_id_t;

static const char *const size_names[SZ__COUNT] = {"cert", "1000", "5000"};
static const char *const size_labels[SZ__COUNT] = {"CertificateStore (3 cmds)",
                                                   "1,000 commands", "5,000 commands"};
static const char *const enc_names[ENC__COUNT] = {"xml", "wbxml"};
static const char *const enc_labels[ENC__COUNT] = {"XML", "WBXML"};

typedef struct scenario {
    text_t msg[ENC__COUNT];   /* owned */
    unsigned n_cmds, n_gets;
    size_t reply_len[ENC__COUNT];
    recipe_t reply_doc;       /* the XML reply, for the libxml2 baseline */
    size_t reply_doc_len;     /* what xmlDocDumpMemory made of it */
} scenario_t;

static void scenario_make(scenario_t *s, size_id_t id)
{
    memset(s, 0, sizeof *s);
    if (id == SZ_CERT) {
        s->msg[ENC_XML] = gen_cert();
        s->n_cmds = 3;
        s->n_gets = 1;
    } else {
        s->n_cmds = id == SZ_MID ? MID_CMDS : BIG_CMDS;
        s->n_gets = s->n_cmds / 4;
        s->msg[ENC_XML] = gen_groups(s->n_cmds, GROUP_DER_LEN);
    }
    s->msg[ENC_WBXML] = to_wbxml(&s->msg[ENC_XML]);
}

/* Run each encoding once on a scratch engine, check the replies, keep the
 * XML reply as the baseline's document. */
static void scenario_prepare(scenario_t *s)
{
    for (int enc = 0; enc < ENC__COUNT; enc++) {
        engine_t e;
        engine_open(&e);
        uint8_t *reply = engine_run(&e, &s->msg[enc], &s->reply_len[enc]);
        check_reply(&e, reply, s->reply_len[enc], s->n_cmds, s->n_gets);
        if (enc == ENC_XML) {
            s->reply_doc = recipe_from_reply(reply, s->reply_len[enc]);
            s->reply_doc_len = libxml2_serialise(&s->reply_doc);
        }
        omadm_buffer_free(e.dm, reply);
        engine_close(&e);
    }
}

static void scenario_free(scenario_t *s)
{
    for (int enc = 0; enc < ENC__COUNT; enc++)
        free(s->msg[enc].data);
    recipe_free(&s->reply_doc);
}

/* ==== timing ==================================================================== */

typedef enum { M_ENGINE, M_PARSE, M_SERIALISE } mkind_t;

typedef struct measure {
    mkind_t kind;
    size_id_t size;
    enc_id_t enc;
    scenario_t *sc;
    engine_t engine;          /* M_ENGINE: one engine for all its runs */
    unsigned iters;           /* per batch */
    double sec[MAX_BATCHES];  /* seconds per operation, per batch */
    double median;
    double min, max;
} measure_t;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One operation; the engine's reply is checked by scenario_prepare, so
 * here it is only freed. */
static void measure_op(measure_t *m)
{
    switch (m->kind) {
    case M_ENGINE: {
        size_t len = 0;
        uint8_t *reply = engine_run(&m->engine, &m->sc->msg[m->enc], &len);
        omadm_buffer_free(m->engine.dm, reply);
        break;
    }
    case M_PARSE:
        libxml2_parse(&m->sc->msg[ENC_XML]);
        break;
    case M_SERIALISE:
        libxml2_serialise(&m->sc->reply_doc);
        break;
    }
}

static double time_ops(measure_t *m, unsigned n)
{
    double t0 = now_sec();
    for (unsigned i = 0; i < n; i++)
        measure_op(m);
    return now_sec() - t0;
}

/* Iterations for one batch of about batch_sec (at least one). */
static void calibrate(measure_t *m, double batch_sec)
{
    measure_op(m); /* warm-up: first-use allocations, CSP parents, caches */
    unsigned n = 1;
    double t = time_ops(m, n);
    while (t < batch_sec / 5 && n < (1u << 24)) {
        n *= 2;
        t = time_ops(m, n);
    }
    double per_op = t / n;
    double want = batch_sec / per_op;
    m->iters = want < 1 ? 1 : (unsigned)want;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const double *v, unsigned n)
{
    double s[MAX_BATCHES];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void summarise(measure_t *m, unsigned batches)
{
    m->median = median_of(m->sec, batches);
    m->min = m->max = m->sec[0];
    for (unsigned b = 1; b < batches; b++) {
        m->min = m->sec[b] < m->min ? m->sec[b] : m->min;
        m->max = m->sec[b] > m->max ? m->sec[b] : m->max;
    }
}

/* All measurements, interleaved: batch b of every measurement runs before
 * batch b+1 of any, so the engine and libxml2 share the machine's mood. */
static void run_batches(measure_t *ms, size_t n, unsigned batches)
{
    bool tty = isatty(STDERR_FILENO);
    for (unsigned b = 0; b < batches; b++) {
        for (size_t i = 0; i < n; i++)
            ms[i].sec[b] = time_ops(&ms[i], ms[i].iters) / ms[i].iters;
        if (tty)
            fprintf(stderr, "\rbatch %u/%u ", b + 1, batches);
    }
    if (tty)
        fputc('\n', stderr);
    for (size_t i = 0; i < n; i++)
        summarise(&ms[i], batches);
}

/* After all its runs an engine must still answer every command with 200:
 * the messages undo their own changes, so every run did the same work. */
static void check_still_same(measure_t *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ms[i].kind != M_ENGINE)
            continue;
        size_t len = 0;
        uint8_t *reply = engine_run(&ms[i].engine, &ms[i].sc->msg[ms[i].enc], &len);
        check_reply(&ms[i].engine, reply, len, ms[i].sc->n_cmds, ms[i].sc->n_gets);
        omadm_buffer_free(ms[i].engine.dm, reply);
    }
}

/* ==== peak RSS in a child ========================================================= */

static long read_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

static text_t read_file(const char *path)
{
    text_t t = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        bench_die("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    t.data = malloc((size_t)size + 1);
    if (!t.data || fread(t.data, 1, (size_t)size, f) != (size_t)size)
        bench_die("%s: cannot read", path);
    t.len = t.cap = (size_t)size;
    fclose(f);
    return t;
}

/* Child side: read the message as a host would, process it once with a new
 * engine, report the process's peak RSS. */
static int rss_child(const char *path)
{
    if (strcmp(path, "-") != 0) {
        text_t msg = read_file(path);
        engine_t e;
        engine_open(&e);
        size_t len = 0;
        uint8_t *reply = engine_run(&e, &msg, &len);
        omadm_buffer_free(e.dm, reply);
        engine_close(&e);
        free(msg.data);
    }
    printf("VmHWM %ld\n", read_status_kb("VmHWM"));
    return 0;
}

/* Run this program again with argv and env; its first line of output
 * into out (size bytes).  False when it could not run or did not exit 0. */
static bool run_self(char *const argv[], char *const env[], char *out, size_t size)
{
    int fd[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    if (pipe(fd))
        bench_die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc)
        bench_die("posix_spawn: %s", strerror(rc));
    memset(out, 0, size);
    ssize_t n = read(fd[0], out, size - 1);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Parent side: run "self --rss-child path" and read its VmHWM (kB).  The
 * child's own VmHWM is used rather than wait4()'s ru_maxrss, which also
 * counts the pages of the parent the child was forked from. */
static long rss_of_child(const char *path)
{
    char *argv[] = {"dmbench", "--rss-child", (char *)path, NULL};
    char out[128];
    long kb = -1;
    if (!run_self(argv, environ, out, sizeof out) || sscanf(out, "VmHWM %ld", &kb) != 1)
        bench_die("RSS child for %s failed", path);
    return kb;
}

/* The message in a new temporary file (its name malloc'ed). */
static char *message_file(const text_t *msg)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = bench_xmalloc(512);
    snprintf(path, 512, "%s/dmbench-msg.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        bench_die("mkstemp: %s", strerror(errno));
    if (write(fd, msg->data, msg->len) != (ssize_t)msg->len)
        bench_die("write %s: %s", path, strerror(errno));
    close(fd);
    return path;
}

static long rss_of_message(const text_t *msg)
{
    char *path = message_file(msg);
    long kb = rss_of_child(path);
    unlink(path);
    free(path);
    return kb;
}

/* ==== report ======================================================================= */

typedef struct rss {
    long idle_kb;
    long raw_kb[SZ__COUNT][ENC__COUNT];   /* -1: not measured */
} rss_t;

static const measure_t *find(const measure_t *ms, size_t n, mkind_t k, size_id_t sz, enc_id_t enc)
{
    for (size_t i = 0; i < n; i++)
        if (ms[i].kind == k && ms[i].size == sz && (k != M_ENGINE || ms[i].enc == enc))
            return &ms[i];
    bench_die("internal: measurement missing");
}

/* Median over batches of a/b, each batch's a and b measured back to back. */
static double median_ratio(const measure_t *a, const measure_t *b1, const measure_t *b2,
                           unsigned batches)
{
    double r[MAX_BATCHES];
    for (unsigned i = 0; i < batches; i++)
        r[i] = a->sec[i] / (b1->sec[i] + (b2 ? b2->sec[i] : 0));
    return median_of(r, batches);
}

static double spread_pct(const measure_t *m)
{
    return (m->max - m->min) / m->median * 100;
}

static void print_machine(void)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(model, sizeof model, "%s", c + 2);
                model[strcspn(model, "\n")] = 0;
            }
            break;
        }
    }
    if (f)
        fclose(f);
    printf("machine: %ld CPUs, %s; libxml2 %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
           LIBXML_DOTTED_VERSION);
}

static void print_engine_table(const measure_t *ms, size_t n, const scenario_t *sc,
                               const rss_t *rss)
{
    printf("\nomadm_process (decode, execute, encode the reply), one engine, "
           "median of batches:\n");
    printf("%-26s %-5s %9s %9s %10s %9s %6s %9s %9s %8s\n", "message", "enc", "msg B",
           "reply B", "msgs/s", "us/msg", "+-%", "RSS raw", "RSS net", "net/msg");
    for (int s = 0; s < SZ__COUNT; s++) {
        for (int e = 0; e < ENC__COUNT; e++) {
            const measure_t *m = find(ms, n, M_ENGINE, (size_id_t)s, (enc_id_t)e);
            printf("%-26s %-5s %9zu %9zu %10.1f %9.1f %6.1f", size_labels[s], enc_labels[e],
                   sc[s].msg[e].len, sc[s].reply_len[e], 1 / m->median, m->median * 1e6,
                   spread_pct(m));
            long raw = rss->raw_kb[s][e];
            if (raw >= 0) {
                long net = raw - rss->idle_kb;
                printf(" %6.1f MB %6.1f MB %7.2fx\n", raw / 1024.0, net / 1024.0,
                       net * 1024.0 / sc[s].msg[e].len);
            } else {
                printf(" %9s %9s %8s\n", "-", "-", "-");
            }
        }
    }
    if (rss->idle_kb >= 0)
        printf("RSS: VmHWM of a child that reads the message and processes it once with a new "
               "engine;\n     net = raw - %.1f MB (VmHWM of an idle child of the same binary).\n",
               rss->idle_kb / 1024.0);
    printf("+-%%: spread of the batches (max - min) / median.\n");
}

static void print_baseline_table(const measure_t *ms, size_t n, const scenario_t *sc,
                                 unsigned batches)
{
    printf("\nlibxml2 alone on the same XML, median of batches (interleaved with the engine):\n");
    printf("%-26s %9s %9s %10s %10s %10s %12s %9s\n", "message", "msg B", "doc B", "parse us",
           "serial. us", "sum us", "engine XML us", "engine/lx");
    for (int s = 0; s < SZ__COUNT; s++) {
        const measure_t *p = find(ms, n, M_PARSE, (size_id_t)s, ENC_XML);
        const measure_t *w = find(ms, n, M_SERIALISE, (size_id_t)s, ENC_XML);
        const measure_t *e = find(ms, n, M_ENGINE, (size_id_t)s, ENC_XML);
        printf("%-26s %9zu %9zu %10.1f %10.1f %10.1f %12.1f %8.2fx\n", size_labels[s],
               sc[s].msg[ENC_XML].len, sc[s].reply_doc_len, p->median * 1e6, w->median * 1e6,
               (p->median + w->median) * 1e6, e->median * 1e6, median_ratio(e, p, w, batches));
    }
    printf("parse: xmlReadMemory + xmlFreeDoc of the message.  serial.: build a copy of the "
           "engine's\nXML reply (SyncHdr, one Status per command, Results of each Get) with "
           "xmlNewChild and\nxmlDocDumpMemory it (doc B = its size).  engine/lx: median over "
           "batches of\nengine time / (parse + serialise) time.\n");
}

static const char *verdict(bool met)
{
    return met ? "MET" : "NOT MET";
}

static void print_targets(const measure_t *ms, size_t n, const scenario_t *sc, const rss_t *rss,
                          unsigned batches)
{
    printf("\ntargets:\n");
    for (int e = 0; e < ENC__COUNT; e++) {
        const measure_t *big = find(ms, n, M_ENGINE, SZ_BIG, (enc_id_t)e);
        const measure_t *mid = find(ms, n, M_ENGINE, SZ_MID, (enc_id_t)e);
        double r = median_ratio(big, mid, NULL, batches);
        printf("  linearity %-5s 5,000 / 1,000 commands: %5.2fx  (target <= %.1fx)  %s\n",
               enc_labels[e], r, TARGET_LINEARITY, verdict(r <= TARGET_LINEARITY));
    }
    const measure_t *e = find(ms, n, M_ENGINE, SZ_BIG, ENC_XML);
    const measure_t *p = find(ms, n, M_PARSE, SZ_BIG, ENC_XML);
    const measure_t *w = find(ms, n, M_SERIALISE, SZ_BIG, ENC_XML);
    double r = median_ratio(e, p, w, batches);
    printf("  1 MB XML process+reply / libxml2 parse+serialise: %5.2fx  (target <= %.1fx)  %s\n",
           r, TARGET_VS_LIBXML2, verdict(r <= TARGET_VS_LIBXML2));
    for (int enc = 0; enc < ENC__COUNT; enc++) {
        long raw = rss->raw_kb[SZ_BIG][enc];
        if (raw < 0)
            continue;
        double net = (raw - rss->idle_kb) * 1024.0;
        double limit = TARGET_RSS_FACTOR * sc[SZ_BIG].msg[enc].len + TARGET_RSS_EXTRA;
        printf("  peak RSS %-5s 5,000 commands: net %.2f MB  (target < 3 x %.2f MB + 4 MB = "
               "%.2f MB)  %s\n",
               enc_labels[enc], net / 1048576, sc[SZ_BIG].msg[enc].len / 1048576.0,
               limit / 1048576, verdict(net < limit));
    }
    printf("(MB = MiB.  A benchmark, not a test: the exit status does not depend on targets.)\n");
}

/* ==== a host's plain loop, glibc's heap as it comes ================================== */

/* The review found a plain loop of omadm_process() over the 5,000-command
 * message 2.2x slower with glibc's defaults than with its trimming turned
 * down: the arena chunks freed after each message went back to the OS
 * (heap trimmed, large chunks unmapped) and were faulted in again.  Each
 * measurement is a child of its own, so that its heap is a host's. */
#define HOST_TUNED "GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:" \
                   "glibc.malloc.mmap_threshold=268435456"

static double cpu_us_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
           ru.ru_stime.tv_usec;
}

static long minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static int host_child(const char *path, const char *ms_text)
{
    text_t msg = read_file(path);
    engine_t e;
    engine_open(&e);
    double budget_us = atof(ms_text) * 1e3;
    size_t len = 0;
    omadm_buffer_free(e.dm, engine_run(&e, &msg, &len)); /* warm-up */
    unsigned n = 0;
    long f0 = minflt_now();
    double t0 = cpu_us_now(), t;
    do {
        uint8_t *reply = engine_run(&e, &msg, &len);
        omadm_buffer_free(e.dm, reply);
        n++;
    } while ((t = cpu_us_now()) - t0 < budget_us);
    printf("us %.1f faults %.1f\n", (t - t0) / n, (double)(minflt_now() - f0) / n);
    engine_close(&e);
    free(msg.data);
    return 0;
}

/* One child run: CPU us and faults per message. */
static void host_run(const char *path, bool tuned, double *us, double *faults)
{
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **env = bench_xmalloc((n_env + 2) * sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "GLIBC_TUNABLES=", 15))
            env[k++] = environ[i];
    if (tuned)
        env[k++] = HOST_TUNED;
    env[k] = NULL;
    char *argv[] = {"dmbench", "--host-child", (char *)path, "300", NULL};
    char out[128];
    if (!run_self(argv, env, out, sizeof out) ||
        sscanf(out, "us %lf faults %lf", us, faults) != 2)
        bench_die("host-loop child for %s failed", path);
    free(env);
}

/* The 1,000- and 5,000-command XML messages, each with glibc's defaults
 * and tuned, the four children alternating round after round. */
static void host_heap(scenario_t *sc, unsigned rounds)
{
    enum { H_MID, H_BIG };
    char *file[2] = {message_file(&sc[SZ_MID].msg[ENC_XML]),
                     message_file(&sc[SZ_BIG].msg[ENC_XML])};
    double us[2][2][MAX_BATCHES], flt[2][2][MAX_BATCHES]; /* [size][tuned][round] */
    double heap[MAX_BATCHES], lin_def[MAX_BATCHES], lin_tuned[MAX_BATCHES];
    for (unsigned r = 0; r < rounds; r++) {
        for (int sz = 0; sz < 2; sz++)
            for (int t = 0; t < 2; t++) {
                int tt = (int)(r % 2) ? 1 - t : t; /* which goes first alternates */
                host_run(file[sz], tt, &us[sz][tt][r], &flt[sz][tt][r]);
            }
        heap[r] = us[H_BIG][0][r] / us[H_BIG][1][r];
        lin_def[r] = us[H_BIG][0][r] / us[H_MID][0][r];
        lin_tuned[r] = us[H_BIG][1][r] / us[H_MID][1][r];
    }
    printf("\nA host's plain loop of omadm_process() (a child process per run, ~300 ms of CPU each,\n"
           "one engine, the message again and again), glibc's malloc with its defaults and with\n"
           "trimming turned down (" HOST_TUNED "),\n%u rounds alternating; medians:\n", rounds);
    printf("message            malloc        us/msg   minor faults/msg\n");
    static const char *const names[2] = {"1,000 commands", "5,000 commands"};
    for (int sz = 0; sz < 2; sz++)
        for (int t = 0; t < 2; t++)
            printf("%-18s %-9s %10.1f %18.1f\n", names[sz], t ? "tuned" : "defaults",
                   median_of(us[sz][t], rounds), median_of(flt[sz][t], rounds));
    double h = median_of(heap, rounds), ld = median_of(lin_def, rounds);
    printf("host loop, 5,000 commands: glibc defaults / tuned %.2fx; linearity 5,000 / 1,000: "
           "defaults %.2fx, tuned %.2fx (medians of per-round ratios)\n", h, ld,
           median_of(lin_tuned, rounds));
    printf("targets:\n");
    printf("  host loop, glibc defaults / trimming turned down, 5,000 commands: %5.2fx  "
           "(target <= %.1fx)  %s\n", h, TARGET_HOST_HEAP, h <= TARGET_HOST_HEAP ? "MET" : "NOT MET");
    printf("  host loop, glibc defaults, 5,000 / 1,000 commands:               %5.2fx  "
           "(target <= %.1fx)  %s\n", ld, TARGET_LINEARITY, ld <= TARGET_LINEARITY ? "MET" : "NOT MET");
    for (int sz = 0; sz < 2; sz++) {
        unlink(file[sz]);
        free(file[sz]);
    }
}

/* ==== modes ========================================================================== */

typedef struct opts {
    unsigned batches;
    double batch_sec;
    bool rss;
    bool host;                 /* the host-loop section */
} opts_t;

static void measure_rss(scenario_t *sc, rss_t *rss)
{
    rss->idle_kb = rss_of_child("-");
    for (int s = 0; s < SZ__COUNT; s++)
        for (int e = 0; e < ENC__COUNT; e++)
            rss->raw_kb[s][e] = rss_of_message(&sc[s].msg[e]);
}

static size_t plan(measure_t *ms, scenario_t *sc)
{
    size_t n = 0;
    for (int s = 0; s < SZ__COUNT; s++) {
        for (int e = 0; e < ENC__COUNT; e++) {
            ms[n] = (measure_t){.kind = M_ENGINE, .size = (size_id_t)s, .enc = (enc_id_t)e,
                                .sc = &sc[s]};
            engine_open(&ms[n++].engine);
        }
        ms[n++] = (measure_t){.kind = M_PARSE, .size = (size_id_t)s, .sc = &sc[s]};
        ms[n++] = (measure_t){.kind = M_SERIALISE, .size = (size_id_t)s, .sc = &sc[s]};
    }
    return n;
}

static int run_all(const opts_t *o)
{
    scenario_t sc[SZ__COUNT];
    measure_t ms[SZ__COUNT * 4];
    rss_t rss = {.idle_kb = -1};
    memset(rss.raw_kb, 0xff, sizeof rss.raw_kb);
    for (int s = 0; s < SZ__COUNT; s++) {
        scenario_make(&sc[s], (size_id_t)s);
        scenario_prepare(&sc[s]);
    }
    if (o->rss)
        measure_rss(sc, &rss);
    size_t n = plan(ms, sc);
    for (size_t i = 0; i < n; i++)
        calibrate(&ms[i], o->batch_sec);
    run_batches(ms, n, o->batches);
    check_still_same(ms, n);
    print_machine();
    printf("%u batches of ~%.0f ms per measurement, all measurements interleaved\n", o->batches,
           o->batch_sec * 1e3);
    print_engine_table(ms, n, sc, &rss);
    print_baseline_table(ms, n, sc, o->batches);
    print_targets(ms, n, sc, &rss, o->batches);
    if (o->host)
        host_heap(sc, o->batches);
    for (size_t i = 0; i < n; i++)
        if (ms[i].kind == M_ENGINE)
            engine_close(&ms[i].engine);
    for (int s = 0; s < SZ__COUNT; s++)
        scenario_free(&sc[s]);
    return 0;
}

static int parse_size(const char *s)
{
    for (int i = 0; i < SZ__COUNT; i++)
        if (!strcmp(s, size_names[i]))
            return i;
    bench_die("size must be cert, 1000 or 5000, not %s", s);
}

static int parse_enc(const char *s)
{
    for (int i = 0; i < ENC__COUNT; i++)
        if (!strcmp(s, enc_names[i]))
            return i;
    bench_die("encoding must be xml or wbxml, not %s", s);
}

/* The one call callgrind counts (--toggle-collect=measured_once). */
static __attribute__((noinline)) void measured_once(measure_t *m)
{
    measure_op(m);
    __asm__ volatile("" ::: "memory");
}

static int run_once(const char *what, const char *size, const char *enc)
{
    size_id_t sz = (size_id_t)parse_size(size);
    scenario_t sc;
    measure_t m = {.size = sz, .enc = (enc_id_t)parse_enc(enc), .sc = &sc};
    if (!strcmp(what, "engine"))
        m.kind = M_ENGINE;
    else if (!strcmp(what, "parse"))
        m.kind = M_PARSE;
    else if (!strcmp(what, "serialise"))
        m.kind = M_SERIALISE;
    else
        bench_die("WHAT must be engine, parse or serialise, not %s", what);
    scenario_make(&sc, sz);
    scenario_prepare(&sc);
    if (m.kind == M_ENGINE)
        engine_open(&m.engine);
    measure_op(&m); /* warm-up, not counted */
    measured_once(&m);
    if (m.kind == M_ENGINE)
        engine_close(&m.engine);
    printf("%s %s %s: message %zu bytes\n", what, size, enc, sc.msg[m.enc].len);
    scenario_free(&sc);
    return 0;
}

static int run_dump(const char *size, const char *enc)
{
    size_id_t sz = (size_id_t)parse_size(size);
    scenario_t sc;
    scenario_make(&sc, sz);
    const text_t *t = &sc.msg[parse_enc(enc)];
    fwrite(t->data, 1, t->len, stdout);
    scenario_free(&sc);
    return 0;
}

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr, "usage: dmbench [--batches N] [--batch-ms MS] [--no-rss] [--no-host]\n"
                    "       dmbench --once engine|parse|serialise cert|1000|5000 xml|wbxml\n"
                    "       dmbench --dump cert|1000|5000 xml|wbxml\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.batches = 7, .batch_sec = 0.1, .rss = true, .host = true};
    if (argc == 3 && !strcmp(argv[1], "--rss-child"))
        return rss_child(argv[2]); /* libxml2 initialises itself on first use */
    if (argc == 4 && !strcmp(argv[1], "--host-child"))
        return host_child(argv[2], argv[3]);
    xmlInitParser();
    if (argc == 5 && !strcmp(argv[1], "--once"))
        return run_once(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "--dump"))
        return run_dump(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batches") && i + 1 < argc)
            o.batches = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch-ms") && i + 1 < argc)
            o.batch_sec = atof(argv[++i]) / 1e3;
        else if (!strcmp(argv[i], "--no-rss"))
            o.rss = false;
        else if (!strcmp(argv[i], "--no-host"))
            o.host = false;
        else
            usage();
    }
    if (o.batches < 1 || o.batches > MAX_BATCHES || o.batch_sec <= 0)
        usage();
    return run_all(&o);
}
