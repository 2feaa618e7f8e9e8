/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certpath.c - the real certificate path: what the CertificateStore CSP and
 * the certificate store cost on top of the engine, measured side by side
 * with what they cannot do without, against targets (docs/performance.md,
 * "The real certificate path").
 *
 *   1 message  A 2.3 KB message on a real self-signed RSA-2048 CA certificate
 *              made here: Add .../Root/System/<SHA-1>/EncodedCertificate
 *              (b64), Get of that leaf, Get of .../<SHA-1> (its children),
 *              Delete .../<SHA-1>.  Per message, in interleaved batches:
 *                A  the engine with the in-memory plugin (common/ramcsp.c)
 *                B  one d2i_X509 + SHA-1 of the certificate's DER
 *                C  the real CSP (omadm_certstore_open + _register), store
 *                   on tmpfs, durability barriers made
 *                D  the same with the store on a disk (--disk)
 *              Targets: C <= 1.5 x (A + B); D makes at most one barrier
 *              batch per message (common/durability.h).
 *   2 bulk     5,000 commands (1,250 groups of Add / Get / Replace / Delete
 *              of .../<SHA-1>/EncodedCertificate, each on its own real EC
 *              certificate) and the same shape with 1,000: the real CSP on
 *              tmpfs against the in-memory plugin + one d2i_X509 + SHA-1 per
 *              certificate, interleaved rounds.  Targets: <= 1.5x; 5,000 /
 *              1,000 commands through the real CSP <= 5.5x.
 *   3 listing  Stores of 1,000 and 10,000 certificates (100,000 with
 *              --big) on tmpfs: Get .../Root/System?list=Struct and
 *              ?list=StructData through the engine, each run in a child of
 *              its own (this program) that reports its time and how much
 *              its peak memory grew, two ways: in a session whose server
 *              gave MaxMsgSize 1 MiB, the Results streamed over as many
 *              messages as it takes (--listing-session-child: Alert 1222
 *              until Final), and as one omadm_process with max_reply_size
 *              1 GiB (--listing-child); `dmclient store list root` on a
 *              state directory whose store is the filled one.
 *              Targets: <= 20 us of CPU time per certificate (both ways);
 *              in the session a growth that does not grow with the store
 *              (10,000 against 1,000; <= 32 MiB at 100,000); store list
 *              <= 15 us of CPU time per certificate.  (CPU time: on a
 *              busy machine a process waits for a CPU, and the wall clock
 *              counts the waiting.)
 *   4 startup  `dmclient --state-dir D get ./DevInfo/DevId` against noop (a
 *              program that does nothing, linked with libxml2 and libcrypto),
 *              paired runs, alternating; peak RSS of `dmclient process` of
 *              the 2.3 KB message.  Targets: <= 1.3x; <= 10 MiB.
 *
 * Every reply is checked: every Status 200, each Get's value what was sent,
 * each listing the certificates the store holds.  Ratios are medians of
 * per-batch (per-round, per-pair) ratios, so the two sides of a ratio always
 * ran seconds apart on a machine whose speed drifts.
 *
 *   certpath [--only message,bulk,listing,startup] [--batches N]
 *            [--batch-ms MS] [--rounds N] [--list-rounds N] [--pairs N]
 *            [--big] [--tmpfs DIR] [--disk DIR] [--keep]
 *   certpath --listing-child STORE_DIR POOL_FILE N Struct|StructData
 *            (internal: one listing, see listing_child)
 *   certpath --listing-session-child STORE_DIR POOL_FILE N Struct|StructData
 *            (internal: one listing in a session, see listing_session_child)
 *
 * dmclient, noop and maxrss are taken from the build this program is in
 * (../bin/dmclient, ./noop, ./maxrss next to it).  A measurement, not a
 * test: exit status 0 whatever the figures are, 1 only when something could
 * not be measured (a reply that is not what it should be, a store that does
 * not hold what it should, a program that fails).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <libxml/xmlversion.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "csp/certstore_internal.h"
#include "durability.h"
#include "fill.h"
#include "omadm.h"
#include "omadm_certstore.h"
#include "pool.h"
#include "ramcsp.h"
#include "text.h"
#include "util.h"

extern char **environ;

#define ROOT_URI "./Vendor/MSFT/CertificateStore/Root/System"
#define SERVER_URI "https://dm.example.test/omadm"
#define DEV_ID "omadm-device"
#define MAX_BATCHES 64
#define MAX_SIZES 3
#define MIB (1024.0 * 1024.0)

#define BULK_GROUPS 1250u      /* 5,000 commands */
#define BULK_GROUPS_MID 250u   /* 1,000 commands */

/* Targets. */
#define T_MSG_VS_FLOOR 1.5     /* C / (A + B) */
#define T_BATCHES 1            /* barrier batches per message */
#define T_BULK_VS_FLOOR 1.5
#define T_LINEARITY 5.5
#define T_LIST_US 20.0         /* per certificate */
#define T_LIST_GROWTH 1.5      /* largest store / smallest */
#define T_LIST_GROWTH_SLACK (1.0 * MIB)
#define T_LIST_GROWTH_100K (32.0 * MIB)
#define T_STORE_LIST_US 15.0   /* per certificate */
#define T_STARTUP 1.3
#define T_PROCESS_RSS (10.0 * MIB)

/* ==== options and places ============================================================= */

enum { SEC_MESSAGE = 1, SEC_BULK = 2, SEC_LISTING = 4, SEC_STARTUP = 8 };

typedef struct opts {
    unsigned sections;
    unsigned batches;          /* section 1 */
    double batch_sec;
    unsigned rounds;           /* section 2; runs of dmclient store list */
    unsigned list_rounds;      /* section 3, stores up to 10,000 */
    unsigned pairs;            /* section 4 */
    bool big;
    bool keep;
    const char *tmpfs, *disk;
} opts_t;

typedef struct places {
    char self[PATH_MAX];       /* this program */
    char bindir[PATH_MAX];     /* where it is */
    char dmclient[PATH_MAX + 32], noop[PATH_MAX + 32], maxrss[PATH_MAX + 32];
    char tmp[PATH_MAX];        /* scratch on tmpfs: stores, state directories */
    char disk[PATH_MAX];       /* scratch on the disk: store D */
} places_t;

static places_t g_at;

/* ==== targets, collected for the summary ============================================= */

typedef struct target {
    char what[96];
    char figure[64];
    char goal[48];
    bool met;
} target_t;

static target_t g_targets[32];
static size_t g_n_targets;

static const char *verdict(bool met)
{
    return met ? "MET" : "NOT MET";
}

/* Record a target and print its line. */
static void target(bool met, const char *what, const char *goal, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void target(bool met, const char *what, const char *goal, const char *fmt, ...)
{
    target_t *t = &g_targets[g_n_targets < 32 ? g_n_targets++ : 31];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->figure, sizeof t->figure, fmt, ap);
    va_end(ap);
    snprintf(t->what, sizeof t->what, "%s", what);
    snprintf(t->goal, sizeof t->goal, "%s", goal);
    t->met = met;
    printf("  %-58s %12s  (target %s)  %s\n", t->what, t->figure, t->goal, verdict(met));
}

/* ==== small helpers ================================================================== */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, size_t n)
{
    if (!n)
        return 0;
    double *s = bench_xmalloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

/* 10000 -> "10,000" (static buffers, four in turn) */
static const char *count_text(size_t n)
{
    static char bufs[4][32];
    static int next;
    char *b = bufs[next++ % 4];
    if (n >= 1000000)
        snprintf(b, 32, "%zu,%03zu,%03zu", n / 1000000, n / 1000 % 1000, n % 1000);
    else if (n >= 1000)
        snprintf(b, 32, "%zu,%03zu", n / 1000, n % 1000);
    else
        snprintf(b, 32, "%zu", n);
    return b;
}

static double seconds_since(int64_t t0)
{
    return (double)(bench_now_ns() - t0) / 1e9;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p) && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *p)
{
    if (nftw(p, rm_entry, 64, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
        bench_die("cannot remove %s: %s", p, strerror(errno));
}

static void path_join(char *out, size_t size, const char *dir, const char *name)
{
    if (snprintf(out, size, "%s/%s", dir, name) >= (int)size)
        bench_die("%s/%s: path too long", dir, name);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        bench_die("%s: cannot write", path);
}

static text_t read_file(const char *path)
{
    text_t t = {0};
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    if (!f)
        bench_die("%s: %s", path, strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        text_put(&t, buf, n);
    fclose(f);
    if (!t.data)
        text_puts(&t, "");
    return t;
}

/* ==== machine and filesystems ========================================================= */

/* "TYPE on MOUNT (DEVICE)" of the mount that holds dir, e.g. "ext4 on /
 * (/dev/vda)"; *is_tmpfs whether it is a tmpfs. */
static void describe_fs(const char *dir, char *out, size_t size, bool *is_tmpfs)
{
    char real[PATH_MAX], best[PATH_MAX] = "", line[2048];
    size_t best_len = 0;
    snprintf(out, size, "?");
    if (!realpath(dir, real))
        bench_die("%s: %s", dir, strerror(errno));
    FILE *f = fopen("/proc/self/mounts", "r");
    while (f && fgets(line, sizeof line, f)) {
        char dev[512], mnt[1024], type[64];
        if (sscanf(line, "%511s %1023s %63s", dev, mnt, type) != 3)
            continue;
        size_t n = strlen(mnt);
        bool under = !strcmp(mnt, "/") || (!strncmp(real, mnt, n) && (real[n] == '/' || !real[n]));
        if (under && n >= best_len) {
            best_len = n;
            snprintf(best, sizeof best, "%s on %s (%s)", type, mnt, dev);
        }
    }
    if (f)
        fclose(f);
    if (best[0])
        snprintf(out, size, "%s", best);
    struct statfs sf;
    *is_tmpfs = !statfs(dir, &sf) && sf.f_type == 0x01021994; /* TMPFS_MAGIC */
}

static void load_average(char *out, size_t size)
{
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(out, size, "?");
    if (f) {
        if (fgets(out, (int)size, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

static void print_machine(void)
{
    char model[256] = "unknown", line[512], load[128];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);
    load_average(load, sizeof load);
    printf("machine: %ld CPUs, %s; %s; libxml2 %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
           OpenSSL_version(OPENSSL_VERSION), LIBXML_DOTTED_VERSION);
    printf("load average at the start: %s\n", load);
}

/* ==== messages ======================================================================== */

static void msg_head(text_t *t)
{
    text_puts(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                 "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>2</MsgID>"
                 "<Target><LocURI>" DEV_ID "</LocURI></Target>"
                 "<Source><LocURI>" SERVER_URI "</LocURI></Source></SyncHdr><SyncBody>\n");
}

static void msg_tail(text_t *t)
{
    text_puts(t, "<Final/></SyncBody></SyncML>\n");
}

static void cmd_b64(text_t *t, const char *el, unsigned id, const char *uri, const char *b64)
{
    text_printf(t, "<%s><CmdID>%u</CmdID><Item><Target><LocURI>%s</LocURI></Target><Meta>"
                   "<Format xmlns=\"syncml:metinf\">b64</Format></Meta><Data>%s</Data></Item>"
                   "</%s>\n", el, id, uri, b64, el);
}

static void cmd_on(text_t *t, const char *el, unsigned id, const char *uri)
{
    text_printf(t, "<%s><CmdID>%u</CmdID><Item><Target><LocURI>%s</LocURI></Target></Item></%s>\n",
                el, id, uri, el);
}

/* Section 1: Add the certificate, Get it, Get its node, Delete it. */
static text_t msg_cert(const pool_cert_t *c)
{
    text_t t = {0};
    char node[256], leaf[300];
    snprintf(node, sizeof node, ROOT_URI "/%s", c->thumb);
    snprintf(leaf, sizeof leaf, "%s/EncodedCertificate", node);
    msg_head(&t);
    cmd_b64(&t, "Add", 1, leaf, c->b64);
    cmd_on(&t, "Get", 2, leaf);
    cmd_on(&t, "Get", 3, node);
    cmd_on(&t, "Delete", 4, node);
    msg_tail(&t);
    return t;
}

/* Section 2: per certificate Add, Get, Replace (the same DER: a Replace of
 * EncodedCertificate may only change how it is encoded), Delete. */
static text_t msg_groups(const pool_t *p, unsigned groups)
{
    text_t t = {0};
    char node[256], leaf[300];
    msg_head(&t);
    for (unsigned i = 0; i < groups; i++) {
        const pool_cert_t *c = &p->c[i];
        snprintf(node, sizeof node, ROOT_URI "/%s", c->thumb);
        snprintf(leaf, sizeof leaf, "%s/EncodedCertificate", node);
        cmd_b64(&t, "Add", 4 * i + 1, leaf, c->b64);
        cmd_on(&t, "Get", 4 * i + 2, leaf);
        cmd_b64(&t, "Replace", 4 * i + 3, leaf, c->b64);
        cmd_on(&t, "Delete", 4 * i + 4, node);
    }
    msg_tail(&t);
    return t;
}

static text_t msg_get(const char *uri)
{
    text_t t = {0};
    msg_head(&t);
    cmd_on(&t, "Get", 1, uri);
    msg_tail(&t);
    return t;
}

/* ==== replies ========================================================================= */

/* One Item of a Results, borrowed for the callback. */
typedef struct reply_item {
    const char *source;        /* "" when none */
    const char *data;          /* NULL when the Item has no Data */
    size_t data_len;
} reply_item_t;

typedef void (*item_fn)(void *ctx, const reply_item_t *it);

typedef struct reply_sum {
    size_t statuses, ok;       /* Status commands (the header's too), of them 200 */
    char first_bad[128];       /* "Cmd CmdRef: code" of the first that is not 200 */
    size_t items;              /* Items of all Results */
} reply_sum_t;

#define DEPTH_MAX 16

typedef struct scan {
    const char *stack[DEPTH_MAX];
    int depth;
    reply_sum_t *sum;
    item_fn fn;
    void *ctx;
    xmlChar *cmd, *cmd_ref, *status_data;  /* the Status being read */
    xmlChar *source, *data;                /* the Item being read */
    bool in_item;
} scan_t;

static const char *parent_of(const scan_t *s, int up)
{
    return s->depth - 1 - up >= 0 ? s->stack[s->depth - 1 - up] : "";
}

static void take(xmlChar **slot, xmlTextReaderPtr rd)
{
    xmlFree(*slot);
    *slot = xmlTextReaderReadString(rd);
}

/* An element starts; the stack holds its parents. */
static void scan_start(scan_t *s, xmlTextReaderPtr rd, const char *name)
{
    const char *p = parent_of(s, 0);
    if (!strcmp(name, "Item") && !strcmp(p, "Results")) {
        s->in_item = true;
        xmlFree(s->source);
        xmlFree(s->data);
        s->source = s->data = NULL;
    } else if (!strcmp(p, "Status") && !strcmp(name, "Cmd")) {
        take(&s->cmd, rd);
    } else if (!strcmp(p, "Status") && !strcmp(name, "CmdRef")) {
        take(&s->cmd_ref, rd);
    } else if (!strcmp(p, "Status") && !strcmp(name, "Data")) {
        take(&s->status_data, rd);
    } else if (s->in_item && !strcmp(p, "Item") && !strcmp(name, "Data")) {
        take(&s->data, rd);
        if (!s->data)
            s->data = xmlStrdup(BAD_CAST "");
    } else if (s->in_item && !strcmp(p, "Source") && !strcmp(name, "LocURI")) {
        take(&s->source, rd);
    }
}

static void status_end(scan_t *s)
{
    const char *code = s->status_data ? (const char *)s->status_data : "";
    s->sum->statuses++;
    if (!strcmp(code, "200"))
        s->sum->ok++;
    else if (!s->sum->first_bad[0])
        snprintf(s->sum->first_bad, sizeof s->sum->first_bad, "%s %s: %s",
                 s->cmd ? (const char *)s->cmd : "?", s->cmd_ref ? (const char *)s->cmd_ref : "?",
                 code[0] ? code : "no code");
    xmlFree(s->cmd);
    xmlFree(s->cmd_ref);
    xmlFree(s->status_data);
    s->cmd = s->cmd_ref = s->status_data = NULL;
}

static void item_end(scan_t *s)
{
    reply_item_t it = {.source = s->source ? (const char *)s->source : "",
                       .data = (const char *)s->data,
                       .data_len = s->data ? (size_t)xmlStrlen(s->data) : 0};
    s->sum->items++;
    s->in_item = false;
    if (s->fn)
        s->fn(s->ctx, &it);
}

/* An element ends (its name is on top of the stack). */
static void scan_end(scan_t *s)
{
    const char *name = s->stack[--s->depth];
    const char *p = parent_of(s, 0);
    if (!strcmp(name, "Status") && !strcmp(p, "SyncBody"))
        status_end(s);
    else if (!strcmp(name, "Item") && s->in_item && !strcmp(p, "Results"))
        item_end(s);
}

/* Walk an XML reply of any size (libxml2's reader, XML_PARSE_HUGE): count
 * its Statuses and Items, each Item through fn (may be NULL). */
static void reply_scan(const uint8_t *reply, size_t len, reply_sum_t *sum, item_fn fn, void *ctx)
{
    scan_t s = {.sum = sum, .fn = fn, .ctx = ctx};
    memset(sum, 0, sizeof *sum);
    if (len > INT_MAX)
        bench_die("a reply of %zu bytes is too large to check", len);
    xmlTextReaderPtr rd = xmlReaderForMemory((const char *)reply, (int)len, "reply.xml", NULL,
                                             XML_PARSE_HUGE | XML_PARSE_NONET);
    int rc;
    if (!rd)
        bench_die("cannot read a reply");
    while ((rc = xmlTextReaderRead(rd)) == 1) {
        int type = xmlTextReaderNodeType(rd);
        if (type == XML_READER_TYPE_ELEMENT) {
            const char *name = (const char *)xmlTextReaderConstLocalName(rd);
            if (s.depth == DEPTH_MAX)
                bench_die("a reply nested deeper than %d elements", DEPTH_MAX);
            scan_start(&s, rd, name);
            s.stack[s.depth++] = (const char *)xmlTextReaderConstString(rd, BAD_CAST name);
            if (xmlTextReaderIsEmptyElement(rd))
                scan_end(&s);
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (!s.depth)
                bench_die("a reply that is not well-formed");
            scan_end(&s);
        }
    }
    if (rc < 0)
        bench_die("a reply that is not well-formed XML");
    xmlFree(s.cmd);
    xmlFree(s.cmd_ref);
    xmlFree(s.status_data);
    xmlFree(s.source);
    xmlFree(s.data);
    xmlFreeTextReader(rd);
}

/* Every Status 200, and as many as the message had commands (+ the
 * header's). */
static void expect_all_200(const reply_sum_t *s, size_t n_cmds, const char *what)
{
    if (s->statuses != n_cmds + 1 || s->ok != s->statuses)
        bench_die("%s: %zu Statuses, %zu of them 200 (want %zu, all 200)%s%s", what, s->statuses,
                  s->ok, n_cmds + 1, s->first_bad[0] ? "; first other: " : "", s->first_bad);
}

static bool data_is(const reply_item_t *it, const char *want)
{
    return it->data && it->data_len == strlen(want) && !memcmp(it->data, want, it->data_len);
}

/* ==== engines ========================================================================= */

typedef struct engine {
    omadm_t *dm;
    ramcsp_t tree;             /* the in-memory plugin (cs NULL) */
    omadm_certstore_t *cs;     /* the real CSP */
    char dir[PATH_MAX];        /* its store */
} engine_t;

static void engine_new(engine_t *e, size_t max_reply)
{
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    if (max_reply)
        cfg.max_reply_size = max_reply;
    memset(e, 0, sizeof *e);
    omadm_error_t err = omadm_new(&cfg, NULL, NULL, &e->dm);
    if (err)
        bench_die("omadm_new: %s", omadm_strerror(err));
}

static void engine_open_ram(engine_t *e)
{
    engine_new(e, 0);
    ramcsp_init(&e->tree);
    omadm_error_t err = ramcsp_register(e->dm, &e->tree);
    if (err)
        bench_die("registering the in-memory plugin: %s", omadm_strerror(err));
}

static void engine_open_real(engine_t *e, const char *dir, size_t max_reply)
{
    const char *why = NULL;
    engine_new(e, max_reply);
    snprintf(e->dir, sizeof e->dir, "%s", dir);
    omadm_error_t err = omadm_certstore_open(dir, NULL, &e->cs, &why);
    if (!err)
        err = omadm_certstore_register(e->dm, e->cs);
    if (err)
        bench_die("the store in %s: %s (%s)", dir, omadm_strerror(err), why ? why : "");
}

static void engine_close(engine_t *e)
{
    omadm_free(e->dm);
    if (e->cs)
        omadm_certstore_close(e->cs);
    else
        ramcsp_free(&e->tree);
    e->dm = NULL;
    e->cs = NULL;
}

static uint8_t *engine_run(engine_t *e, const text_t *msg, size_t *reply_len)
{
    uint8_t *reply = NULL;
    omadm_error_t err =
        omadm_process(e->dm, (const uint8_t *)msg->data, msg->len, &reply, reply_len);
    if (err || !reply) {
        const char *d = omadm_last_error_detail(e->dm);
        bench_die("omadm_process: %s (%s)", omadm_strerror(err), d ? d : "no reply");
    }
    return reply;
}

static int count_cert(void *ctx, const omadm_cert_info_t *cert)
{
    (*(size_t *)ctx)++;
    return 0;
}

/* The certificates store "root" of cs holds, by the store's own listing. */
static size_t root_count(omadm_certstore_t *cs)
{
    size_t n = 0;
    omadm_error_t err = omadm_certstore_list(cs, "root", count_cert, &n);
    if (err)
        bench_die("listing a store: %s", omadm_strerror(err));
    return n;
}

/* ==== interleaved measurements ======================================================== */

typedef struct meas meas_t;
typedef void (*check_fn)(meas_t *m, const uint8_t *reply, size_t len);

struct meas {
    const char *label;
    engine_t *engine;          /* a message through an engine, or */
    const pool_cert_t *certs;  /* d2i_X509 + SHA-1 of these (engine NULL) */
    size_t n_certs;
    const text_t *msg;
    check_fn check;
    const void *want;          /* for check: the certificate(s) the message carries */
    size_t groups;             /* for check: section 2's groups in the message */
    unsigned iters;            /* per batch */
    double sec[MAX_BATCHES];   /* per operation, per batch */
    double med, min, max;
    size_t reply_len;
    /* durability barriers, all timed operations together */
    uint64_t ops, barriers, fsyncs, fdatasyncs, syncfss, batches, max_batches;
};

static void d2i_all(const pool_cert_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = c[i].der;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        X509 *x = d2i_X509(NULL, &p, (long)c[i].der_len);
        if (!x || !EVP_Digest(c[i].der, c[i].der_len, md, &md_len, EVP_sha1(), NULL))
            bench_die("d2i_X509 or SHA-1 failed");
        X509_free(x);
    }
}

/* One operation; with check, the reply is checked. */
static void meas_op(meas_t *m, bool check)
{
    if (!m->engine) {
        d2i_all(m->certs, m->n_certs);
        return;
    }
    dur_counts_t d0 = dur;
    dur_new_batch();
    size_t len = 0;
    uint8_t *reply = engine_run(m->engine, m->msg, &len);
    uint64_t batches = dur.batches - d0.batches;
    m->ops++;
    m->barriers += dur.barriers - d0.barriers;
    m->fsyncs += dur.fsyncs - d0.fsyncs;
    m->fdatasyncs += dur.fdatasyncs - d0.fdatasyncs;
    m->syncfss += dur.syncfss - d0.syncfss;
    m->batches += batches;
    m->max_batches = batches > m->max_batches ? batches : m->max_batches;
    m->reply_len = len;
    if (check)
        m->check(m, reply, len);
    omadm_buffer_free(m->engine->dm, reply);
}

static double time_ops(meas_t *m, unsigned n)
{
    int64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < n; i++)
        meas_op(m, false);
    return seconds_since(t0);
}

/* The checked first run, then as many runs per batch as make ~batch_sec
 * (at least one). */
static void calibrate(meas_t *m, double batch_sec)
{
    int64_t t0 = bench_now_ns();
    meas_op(m, true);
    double t = seconds_since(t0);
    unsigned n = 1;
    while (t < batch_sec / 5 && n < (1u << 24)) {
        n *= 2;
        t = time_ops(m, n);
    }
    double want = batch_sec / (t / n);
    m->iters = want < 1 ? 1 : (unsigned)want;
}

/* Batch b of every measurement runs before batch b + 1 of any. */
static void run_batches(meas_t **ms, size_t n, unsigned batches, const char *what)
{
    bool tty = isatty(STDERR_FILENO);
    for (size_t i = 0; i < n; i++)
        ms[i]->ops = ms[i]->barriers = ms[i]->fsyncs = ms[i]->fdatasyncs = ms[i]->syncfss =
            ms[i]->batches = ms[i]->max_batches = 0;
    for (unsigned b = 0; b < batches; b++) {
        for (size_t i = 0; i < n; i++)
            ms[i]->sec[b] = time_ops(ms[i], ms[i]->iters) / ms[i]->iters;
        if (tty)
            fprintf(stderr, "\rcertpath: %s, batch %u/%u ", what, b + 1, batches);
    }
    if (tty)
        fputc('\n', stderr);
    for (size_t i = 0; i < n; i++) {
        meas_t *m = ms[i];
        m->med = median(m->sec, batches);
        m->min = m->max = m->sec[0];
        for (unsigned b = 1; b < batches; b++) {
            m->min = m->sec[b] < m->min ? m->sec[b] : m->min;
            m->max = m->sec[b] > m->max ? m->sec[b] : m->max;
        }
        if (m->engine)
            meas_op(m, true); /* still the same work after all the runs */
    }
}

/* Median over batches of a / (b + c) (c may be NULL). */
static double ratio(const meas_t *a, const meas_t *b, const meas_t *c, unsigned batches)
{
    double r[MAX_BATCHES];
    for (unsigned i = 0; i < batches; i++)
        r[i] = a->sec[i] / (b->sec[i] + (c ? c->sec[i] : 0));
    return median(r, batches);
}

static double spread_pct(const meas_t *m)
{
    return (m->max - m->min) / m->med * 100;
}

/* ==== processes ======================================================================= */

typedef struct proc_run {
    double wall_ms, cpu_ms;
    int status;                /* exit status; 128 + signal */
} proc_run_t;

/* argv[0] with stdout on out (NULL: inherited), waited for. */
static proc_run_t run_process(char *const argv[], const char *out)
{
    posix_spawn_file_actions_t fa;
    proc_run_t r = {0};
    pid_t pid;
    struct rusage ru;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    if (out)
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
    int64_t t0 = bench_now_ns();
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        bench_die("cannot run %s: %s", argv[0], strerror(rc));
    if (wait4(pid, &status, 0, &ru) != pid)
        bench_die("wait4: %s", strerror(errno));
    r.wall_ms = (double)(bench_now_ns() - t0) / 1e6;
    r.cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

static void must_succeed(const proc_run_t *r, char *const argv[])
{
    if (r->status) {
        text_t cmd = {0};
        for (size_t i = 0; argv[i]; i++)
            text_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
        bench_die("`%s` exited with %d", cmd.data, r->status);
    }
}

/* Peak RSS (KiB) of argv as a whole process, through the maxrss helper;
 * its stdout on out. */
static long peak_rss_kb(char *const argv[], const char *out)
{
    char *args[16] = {g_at.maxrss, (char *)out};
    char result[PATH_MAX + 16];
    size_t n = 2;
    for (size_t i = 0; argv[i] && n < 15; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    path_join(result, sizeof result, g_at.tmp, "maxrss.out");
    proc_run_t r = run_process(args, result);
    must_succeed(&r, args);
    text_t t = read_file(result);
    long kb = -1;
    int status = -1;
    if (sscanf(t.data, "%ld %d", &kb, &status) != 2 || status)
        bench_die("%s under maxrss: '%s'", argv[0], t.data);
    text_free(&t);
    return kb;
}

/* ==== section 1: the 2.3 KB message =================================================== */

static bool has_segment(const char *list, size_t len, const char *seg)
{
    size_t n = strlen(seg);
    for (size_t i = 0; list && i + n <= len; i++)
        if ((i == 0 || list[i - 1] == '/') && !memcmp(list + i, seg, n) &&
            (i + n == len || list[i + n] == '/'))
            return true;
    return false;
}

typedef struct cert_items {
    const pool_cert_t *c;
    size_t n;
    bool leaf_ok, node_ok;
} cert_items_t;

static void cert_item(void *ctx, const reply_item_t *it)
{
    cert_items_t *ci = ctx;
    char node[256], leaf[300];
    snprintf(node, sizeof node, ROOT_URI "/%s", ci->c->thumb);
    snprintf(leaf, sizeof leaf, "%s/EncodedCertificate", node);
    if (ci->n == 0)
        ci->leaf_ok = !strcmp(it->source, leaf) && data_is(it, ci->c->b64);
    else if (ci->n == 1)
        ci->node_ok = !strcmp(it->source, node) &&
                      has_segment(it->data, it->data_len, "EncodedCertificate");
    ci->n++;
}

/* Every Status 200; the leaf's Get gives the b64 sent, the node's Get its
 * children, EncodedCertificate among them. */
static void check_cert_reply(const pool_cert_t *c, const uint8_t *reply, size_t len,
                             const char *what)
{
    reply_sum_t sum;
    cert_items_t ci = {.c = c};
    reply_scan(reply, len, &sum, cert_item, &ci);
    expect_all_200(&sum, 4, what);
    if (ci.n != 2 || !ci.leaf_ok || !ci.node_ok)
        bench_die("%s: %zu Results items (want 2), the certificate's value %s, its node's "
                  "children %s", what, ci.n, ci.leaf_ok ? "right" : "WRONG",
                  ci.node_ok ? "right" : "WRONG");
}

static void check_cert_msg(meas_t *m, const uint8_t *reply, size_t len)
{
    check_cert_reply(m->want, reply, len, m->label);
}

static void print_barriers(const meas_t *m)
{
    double ops = m->ops ? (double)m->ops : 1;
    printf(" %9.1f %8.1f\n", (double)m->barriers / ops, (double)m->batches / ops);
}

/* "fsync 3, syncfs 1" per message */
static const char *barrier_kinds(const meas_t *m, char *buf, size_t size)
{
    double ops = m->ops ? (double)m->ops : 1;
    snprintf(buf, size, "fsync %.1f, fdatasync %.1f, syncfs %.1f", (double)m->fsyncs / ops,
             (double)m->fdatasyncs / ops, (double)m->syncfss / ops);
    return buf;
}

static void section_message(const opts_t *o, const pool_cert_t *ca)
{
    text_t msg = msg_cert(ca);
    engine_t ram, on_tmpfs, on_disk;
    char dir_c[PATH_MAX + 32], dir_d[PATH_MAX + 32], fs_c[1200], fs_d[1200];
    bool tmpfs_c, tmpfs_d;
    path_join(dir_c, sizeof dir_c, g_at.tmp, "message-store");
    path_join(dir_d, sizeof dir_d, g_at.disk, "message-store");
    engine_open_ram(&ram);
    engine_open_real(&on_tmpfs, dir_c, 0);
    engine_open_real(&on_disk, dir_d, 0);
    describe_fs(dir_c, fs_c, sizeof fs_c, &tmpfs_c);
    describe_fs(dir_d, fs_d, sizeof fs_d, &tmpfs_d);
    meas_t a = {.label = "A in-memory plugin", .engine = &ram, .msg = &msg,
                .check = check_cert_msg, .want = ca};
    meas_t b = {.label = "B d2i_X509 + SHA-1", .certs = ca, .n_certs = 1};
    meas_t c = {.label = "C real CSP, tmpfs", .engine = &on_tmpfs, .msg = &msg,
                .check = check_cert_msg, .want = ca};
    meas_t d = {.label = "D real CSP, disk", .engine = &on_disk, .msg = &msg,
                .check = check_cert_msg, .want = ca};
    meas_t *ms[] = {&a, &b, &c, &d};
    fprintf(stderr, "certpath: 1. the 2.3 KB message ...\n");
    for (size_t i = 0; i < 4; i++)
        calibrate(ms[i], o->batch_sec);
    run_batches(ms, 4, o->batches, "the 2.3 KB message");
    if (root_count(on_tmpfs.cs) || root_count(on_disk.cs))
        bench_die("a store holds certificates after the messages that delete what they add");

    printf("\n1. The 2.3 KB message (%zu B): Add .../Root/System/<SHA-1>/EncodedCertificate "
           "(b64),\n   Get of it, Get of .../<SHA-1> (its children), Delete .../<SHA-1>; on a "
           "self-signed\n   RSA-2048 CA (basicConstraints CA, keyUsage keyCertSign cRLSign): DER "
           "%zu B, b64 %zu\n   characters.  %u batches of ~%.0f ms per row, the rows "
           "interleaved; per message, median of\n   batches (+-%%: (max - min) / median):\n",
           msg.len, ca->der_len, strlen(ca->b64), o->batches, o->batch_sec * 1e3);
    printf("   %-46s %9s %6s %8s %9s %8s\n", "", "us", "+-%", "reply B", "barriers", "batches");
    printf("   %-46s %9.1f %6.1f %8zu\n", "A  engine + in-memory plugin", a.med * 1e6,
           spread_pct(&a), a.reply_len);
    printf("   %-46s %9.1f %6.1f\n", "B  one d2i_X509 + SHA-1 of the DER", b.med * 1e6,
           spread_pct(&b));
    printf("   %-46s %9.1f %6.1f %8zu", "C  real CSP, store on tmpfs, barriers made", c.med * 1e6,
           spread_pct(&c), c.reply_len);
    print_barriers(&c);
    printf("   %-46s %9.1f %6.1f %8zu", "D  real CSP, store on the disk", d.med * 1e6,
           spread_pct(&d), d.reply_len);
    print_barriers(&d);
    printf("   C: %s; D: %s%s\n", fs_c, fs_d, tmpfs_d ? " -- NOT A DISK (--disk)" : "");
    char kinds[96];
    printf("   barriers: fsync + fdatasync + syncfs calls per message (D: %s);\n   batches: runs "
           "of them with no write, rename, unlink or truncate between\n   (common/durability.h)."
           "  Every reply checked.\n", barrier_kinds(&d, kinds, sizeof kinds));
    double r = ratio(&c, &a, &b, o->batches);
    printf("   C / A = %.1fx; D / C = %.1fx (medians of per-batch ratios)\n",
           ratio(&c, &a, NULL, o->batches), ratio(&d, &c, NULL, o->batches));
    printf("targets:\n");
    target(r <= T_MSG_VS_FLOOR, "1. real CSP on tmpfs / (in-memory plugin + one d2i_X509)",
           "<= 1.5x", "%.2fx", r);
    target(d.max_batches <= T_BATCHES, "1. barrier batches in one message, store on the disk",
           "<= 1", "%llu (%.0f calls)", (unsigned long long)d.max_batches,
           (double)d.barriers / (double)(d.ops ? d.ops : 1));
    engine_close(&ram);
    engine_close(&on_tmpfs);
    engine_close(&on_disk);
    text_free(&msg);
}

/* ==== section 2: 5,000 commands of valid certificates ================================ */

typedef struct bulk_items {
    const pool_t *pool;
    size_t n;
    size_t bad;                /* items that are not the next certificate's value */
} bulk_items_t;

static void bulk_item(void *ctx, const reply_item_t *it)
{
    bulk_items_t *bi = ctx;
    char leaf[300];
    if (bi->n < bi->pool->n) {
        const pool_cert_t *c = &bi->pool->c[bi->n];
        snprintf(leaf, sizeof leaf, ROOT_URI "/%s/EncodedCertificate", c->thumb);
        if (strcmp(it->source, leaf) || !data_is(it, c->b64))
            bi->bad++;
    }
    bi->n++;
}

/* Every Status 200; one Results item per group, in order, the group's
 * certificate. */
static void check_bulk_msg(meas_t *m, const uint8_t *reply, size_t len)
{
    const pool_t *p = m->want;
    size_t groups = m->groups;
    reply_sum_t sum;
    pool_t first = {.c = p->c, .n = groups};
    bulk_items_t bi = {.pool = &first};
    reply_scan(reply, len, &sum, bulk_item, &bi);
    expect_all_200(&sum, 4 * groups, m->label);
    if (bi.n != groups || bi.bad)
        bench_die("%s: %zu Results items (want %zu), %zu of them not the certificate sent",
                  m->label, bi.n, groups, bi.bad);
}

static void section_bulk(const opts_t *o, const pool_t *pool)
{
    text_t big = msg_groups(pool, BULK_GROUPS), mid = msg_groups(pool, BULK_GROUPS_MID);
    engine_t ram, real_big, real_mid;
    char dir_big[PATH_MAX + 32], dir_mid[PATH_MAX + 32];
    path_join(dir_big, sizeof dir_big, g_at.tmp, "bulk-5000-store");
    path_join(dir_mid, sizeof dir_mid, g_at.tmp, "bulk-1000-store");
    engine_open_ram(&ram);
    engine_open_real(&real_big, dir_big, 0);
    engine_open_real(&real_mid, dir_mid, 0);
    meas_t rb = {.label = "real CSP, 5,000 commands", .engine = &real_big, .msg = &big,
                 .check = check_bulk_msg, .want = pool, .groups = BULK_GROUPS};
    meas_t rm = {.label = "real CSP, 1,000 commands", .engine = &real_mid, .msg = &mid,
                 .check = check_bulk_msg, .want = pool, .groups = BULK_GROUPS_MID};
    meas_t fb = {.label = "in-memory plugin, 5,000 commands", .engine = &ram, .msg = &big,
                 .check = check_bulk_msg, .want = pool, .groups = BULK_GROUPS};
    meas_t db = {.label = "d2i_X509 + SHA-1 x 1,250", .certs = pool->c, .n_certs = BULK_GROUPS};
    meas_t *ms[] = {&rb, &rm, &fb, &db};
    fprintf(stderr, "certpath: 2. 5,000 commands of valid certificates ...\n");
    for (size_t i = 0; i < 4; i++)
        calibrate(ms[i], o->batch_sec);
    run_batches(ms, 4, o->rounds, "5,000 commands");
    if (root_count(real_big.cs) || root_count(real_mid.cs))
        bench_die("a store holds certificates after the messages that delete what they add");

    printf("\n2. 5,000 commands (%zu B) and 1,000 commands (%zu B): per certificate Add of\n"
           "   .../<SHA-1>/EncodedCertificate (b64), Get of it, Replace with the same DER, "
           "Delete of\n   .../<SHA-1>; 1,250 and 250 distinct self-signed EC P-256 CA certificates "
           "(DER %zu B).\n   %u rounds, the rows interleaved; per message, median of rounds:\n",
           big.len, mid.len, pool->c[0].der_len, o->rounds);
    printf("   %-50s %11s %6s %9s %9s %8s\n", "", "ms", "+-%", "reply B", "barriers", "batches");
    printf("   %-50s %11.2f %6.1f %9zu", "real CSP, store on tmpfs, 5,000 commands", rb.med * 1e3,
           spread_pct(&rb), rb.reply_len);
    print_barriers(&rb);
    printf("   %-50s %11.2f %6.1f %9zu", "real CSP, store on tmpfs, 1,000 commands", rm.med * 1e3,
           spread_pct(&rm), rm.reply_len);
    print_barriers(&rm);
    printf("   %-50s %11.2f %6.1f %9zu\n", "in-memory plugin, 5,000 commands", fb.med * 1e3,
           spread_pct(&fb), fb.reply_len);
    printf("   %-50s %11.2f %6.1f\n", "d2i_X509 + SHA-1 of each of the 1,250 certificates",
           db.med * 1e3, spread_pct(&db));
    printf("   every reply checked: 5,001 / 1,001 Statuses 200, each Get the certificate sent\n");
    double r = ratio(&rb, &fb, &db, o->rounds), lin = ratio(&rb, &rm, NULL, o->rounds);
    printf("targets:\n");
    target(r <= T_BULK_VS_FLOOR, "2. 5,000 commands: real CSP / (plugin + d2i_X509 per cert)",
           "<= 1.5x", "%.2fx", r);
    target(lin <= T_LINEARITY, "2. real CSP, 5,000 / 1,000 commands", "<= 5.5x", "%.2fx", lin);
    engine_close(&ram);
    engine_close(&real_big);
    engine_close(&real_mid);
    text_free(&big);
    text_free(&mid);
}

/* ==== section 3: listings ============================================================== */

/* The certificates a store of n holds: the first n of the pool, found by
 * thumbprint. */
typedef struct expect {
    const pool_t *pool;
    size_t n;
    size_t *by_thumb;          /* owned: indices 0..n-1 in thumbprint order */
    uint8_t *seen;             /* owned: per index */
} expect_t;

static int cmp_thumb(const void *a, const void *b, void *ctx)
{
    const pool_t *p = ctx;
    return strcmp(p->c[*(const size_t *)a].thumb, p->c[*(const size_t *)b].thumb);
}

static void expect_init(expect_t *e, const pool_t *p, size_t n)
{
    e->pool = p;
    e->n = n;
    e->by_thumb = bench_xmalloc(n * sizeof *e->by_thumb);
    e->seen = calloc(n ? n : 1, 1);
    if (!e->seen)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++)
        e->by_thumb[i] = i;
    qsort_r(e->by_thumb, n, sizeof *e->by_thumb, cmp_thumb, (void *)p);
}

/* The pool index of thumbprint t[0..len), or -1. */
static long expect_find(const expect_t *e, const char *t, size_t len)
{
    size_t lo = 0, hi = e->n;
    if (len != POOL_THUMB_LEN)
        return -1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(e->pool->c[e->by_thumb[mid]].thumb, t, len);
        if (!c)
            return (long)e->by_thumb[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void expect_free(expect_t *e)
{
    free(e->by_thumb);
    free(e->seen);
}

/* What a ?list=Struct(Data) reply must hold: the store's node, each
 * certificate's node once, its leaves, EncodedCertificate among them with
 * the certificate's b64 (StructData) or no value (Struct). */
typedef struct listing_check {
    expect_t *e;
    bool data;
    size_t root, nodes, leaves, encoded, bad;
    char first_bad[256];
} listing_check_t;

static void listing_bad(listing_check_t *lc, const char *why, const char *source)
{
    if (!lc->bad++)
        snprintf(lc->first_bad, sizeof lc->first_bad, "%s: %s", why, source);
}

static void listing_item(void *ctx, const reply_item_t *it)
{
    listing_check_t *lc = ctx;
    size_t base_len = strlen(ROOT_URI);
    const char *s = it->source;
    if (!strcmp(s, ROOT_URI)) {
        lc->root++;
        return;
    }
    if (strncmp(s, ROOT_URI "/", base_len + 1)) {
        listing_bad(lc, "an item outside the store", s);
        return;
    }
    const char *thumb = s + base_len + 1, *slash = strchr(thumb, '/');
    long i = expect_find(lc->e, thumb, slash ? (size_t)(slash - thumb) : strlen(thumb));
    if (i < 0) {
        listing_bad(lc, "a certificate the store does not hold", s);
    } else if (!slash) {
        lc->nodes++;
        if (lc->e->seen[i]++)
            listing_bad(lc, "a certificate listed twice", s);
    } else {
        lc->leaves++;
        if (lc->data != (it->data != NULL))
            listing_bad(lc, lc->data ? "a leaf without its value" : "a value in a Struct", s);
        if (!strcmp(slash + 1, "EncodedCertificate")) {
            lc->encoded++;
            if (lc->data && !data_is(it, lc->e->pool->c[i].b64))
                listing_bad(lc, "not the certificate's value", s);
        }
    }
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* CPU time of this process so far. */
static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Start the peak (VmHWM) afresh from the current RSS (Linux 4.0). */
static bool reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    bool ok = f && fputs("5", f) >= 0;
    if (f && fclose(f))
        ok = false;
    return ok;
}

/* Child: Get ROOT_URI?list=KIND through a new engine on the store in dir,
 * which holds the first n certificates of the pool in pool_file.  Prints
 * one line for the parent: the time of omadm_process, the reply, and the
 * RSS before and the peak during it (the peak started afresh from the RSS
 * before, when the kernel lets it: reset=1).  Then checks the reply. */
static int listing_child(const char *dir, const char *pool_file, const char *n_text,
                         const char *kind)
{
    pool_t pool;
    expect_t e;
    engine_t eng;
    char uri[256];
    size_t n = (size_t)strtoul(n_text, NULL, 10), len = 0;
    if (!pool_load(&pool, pool_file) || pool.n < n)
        bench_die("%s: not a file of %zu certificates", pool_file, n);
    expect_init(&e, &pool, n);
    engine_open_real(&eng, dir, (size_t)1 << 30); /* a reply too large is 413, not a listing */
    snprintf(uri, sizeof uri, ROOT_URI "?list=%s", kind);
    text_t msg = msg_get(uri);
    bool reset = reset_peak();
    long rss0 = status_kb("VmRSS");
    double cpu0 = cpu_us();
    int64_t t0 = bench_now_ns();
    uint8_t *reply = engine_run(&eng, &msg, &len);
    double us = (double)(bench_now_ns() - t0) / 1e3, cpu = cpu_us() - cpu0;
    long hwm = status_kb("VmHWM");

    reply_sum_t sum;
    listing_check_t lc = {.e = &e, .data = !strcmp(kind, "StructData")};
    reply_scan(reply, len, &sum, listing_item, &lc);
    expect_all_200(&sum, 1, uri);
    if (lc.root != 1 || lc.nodes != n || lc.encoded != n || lc.leaves < n || lc.bad)
        bench_die("Get %s on %zu certificates: store node %zu, certificate nodes %zu, "
                  "EncodedCertificate leaves %zu%s%s", uri, n, lc.root, lc.nodes, lc.encoded,
                  lc.bad ? "; " : "", lc.first_bad);
    printf("us=%.1f cpu=%.1f reply=%zu items=%zu rss0=%ld hwm=%ld reset=%d\n", us, cpu, len,
           sum.items, rss0, hwm, reset);
    omadm_buffer_free(eng.dm, reply);
    engine_close(&eng);
    text_free(&msg);
    expect_free(&e);
    pool_free(&pool);
    return 0;
}

/* The server's MaxMsgSize in the session listings. */
#define LIST_MAX_MSG (1u << 20)

/* A server message of the session: its SyncHdr (MaxMsgSize on the first),
 * body, Final. */
static text_t session_msg(unsigned msg_id, bool first, const char *body)
{
    text_t t = {0};
    text_printf(&t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                    "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>%u</MsgID>"
                    "<Target><LocURI>" DEV_ID "</LocURI></Target>"
                    "<Source><LocURI>" SERVER_URI "</LocURI></Source>", msg_id);
    if (first)
        text_printf(&t, "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">%u</MaxMsgSize></Meta>",
                    LIST_MAX_MSG);
    text_printf(&t, "</SyncHdr><SyncBody>\n%s<Final/></SyncBody></SyncML>\n", body);
    return t;
}

/* The text of the first <el>...</el> in a reply, into out. */
static void reply_field(const uint8_t *reply, size_t len, const char *el, char *out, size_t size)
{
    char open[32], close[32];
    snprintf(open, sizeof open, "<%s>", el);
    snprintf(close, sizeof close, "</%s>", el);
    const char *a = memmem(reply, len, open, strlen(open));
    const char *b = a ? memmem(a, len - (size_t)(a - (const char *)reply), close, strlen(close))
                      : NULL;
    if (!a || !b || (size_t)(b - a) - strlen(open) >= size)
        bench_die("a reply without %s", el);
    a += strlen(open);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = 0;
}

/* Child: the same listing in a session the device opened (package 1 made
 * and dropped: the server's first message answers it), the server's
 * MaxMsgSize LIST_MAX_MSG, the engine's default max_reply_size: the Get,
 * then Alert 1222 for every message of ours that lacks Final.  Each message
 * is checked (within MaxMsgSize, every Status 200, every Item once over
 * them all, as listing_child checks the one reply).  Prints the same line
 * as listing_child: time and CPU of the omadm_process calls, the messages'
 * bytes, and the RSS before the first call and the highest peak during one
 * (each call's peak started afresh from the RSS before it when reset=1,
 * so that checking a message does not count), and msgs=. */
static int listing_session_child(const char *dir, const char *pool_file, const char *n_text,
                                 const char *kind)
{
    pool_t pool;
    expect_t e;
    engine_t eng;
    char uri[256], body[512];
    size_t n = (size_t)strtoul(n_text, NULL, 10);
    if (!pool_load(&pool, pool_file) || pool.n < n)
        bench_die("%s: not a file of %zu certificates", pool_file, n);
    expect_init(&e, &pool, n);
    engine_open_real(&eng, dir, 0);
    omadm_account_t acc = {.server_url = SERVER_URI};
    uint8_t *p1 = NULL;
    size_t p1_len = 0;
    omadm_error_t err = omadm_session_begin(eng.dm, &acc, 0, NULL, &p1, &p1_len);
    if (err)
        bench_die("omadm_session_begin: %s", omadm_strerror(err));
    omadm_buffer_free(eng.dm, p1);
    snprintf(uri, sizeof uri, ROOT_URI "?list=%s", kind);
    snprintf(body, sizeof body, "<Get><CmdID>1</CmdID><Item><Target><LocURI>%s</LocURI></Target>"
                                "</Item></Get>\n", uri);
    text_t msg = session_msg(1, true, body);
    listing_check_t lc = {.e = &e, .data = !strcmp(kind, "StructData")};
    double us = 0, cpu = 0;
    size_t total = 0, items = 0;
    long rss0 = status_kb("VmRSS"), hwm = rss0;
    bool reset = true;
    unsigned msgs = 0;
    for (;;) {
        size_t len = 0;
        reset = reset_peak() && reset;
        double cpu0 = cpu_us();
        int64_t t0 = bench_now_ns();
        uint8_t *reply = engine_run(&eng, &msg, &len);
        us += (double)(bench_now_ns() - t0) / 1e3;
        cpu += cpu_us() - cpu0;
        long h = status_kb("VmHWM");
        if (h > hwm)
            hwm = h;
        msgs++;
        total += len;
        if (len > LIST_MAX_MSG)
            bench_die("Get %s in a session: message %u is %zu bytes, over MaxMsgSize %u", uri,
                      msgs, len, LIST_MAX_MSG);
        reply_sum_t sum;
        reply_scan(reply, len, &sum, listing_item, &lc);
        items += sum.items;
        /* the header's Status, and the Get's (first) or the Alert's */
        expect_all_200(&sum, 1, uri);
        bool final = memmem(reply, len, "<Final/>", 8) != NULL;
        char ours[32];
        reply_field(reply, len, "MsgID", ours, sizeof ours);
        omadm_buffer_free(eng.dm, reply);
        text_free(&msg);
        if (final)
            break;
        if (msgs > 100000)
            bench_die("Get %s in a session: no end", uri);
        snprintf(body, sizeof body, "<Status><CmdID>1</CmdID><MsgRef>%s</MsgRef><CmdRef>0</CmdRef>"
                                    "<Cmd>SyncHdr</Cmd><Data>200</Data></Status>"
                                    "<Alert><CmdID>2</CmdID><Data>1222</Data></Alert>\n", ours);
        msg = session_msg(msgs + 1, false, body);
    }
    if (lc.root != 1 || lc.nodes != n || lc.encoded != n || lc.leaves < n || lc.bad)
        bench_die("Get %s on %zu certificates in a session: store node %zu, certificate nodes "
                  "%zu, EncodedCertificate leaves %zu%s%s", uri, n, lc.root, lc.nodes,
                  lc.encoded, lc.bad ? "; " : "", lc.first_bad);
    printf("us=%.1f cpu=%.1f reply=%zu items=%zu rss0=%ld hwm=%ld reset=%d msgs=%u\n", us, cpu,
           total, items, rss0, hwm, reset, msgs);
    engine_close(&eng);
    expect_free(&e);
    pool_free(&pool);
    return 0;
}

typedef struct listing_run {
    double us, cpu_us;
    size_t reply, items;
    double growth;             /* bytes: peak during omadm_process - RSS before */
    bool reset;
    unsigned msgs;             /* messages (session) */
} listing_run_t;

typedef struct list_size {
    size_t n;
    char store[PATH_MAX + 32];     /* the filled store */
    char state[PATH_MAX + 32];     /* a dmclient state directory whose store it is */
    double fill_s;
    listing_run_t runs[2][MAX_BATCHES];   /* one reply: [Struct, StructData][round] */
    listing_run_t sruns[2][MAX_BATCHES];  /* in a session, the same */
    unsigned n_runs;
    double list_ms[MAX_BATCHES];   /* dmclient store list, wall */
    double list_cpu_ms[MAX_BATCHES];
} list_size_t;

static const char *const list_kinds[2] = {"Struct", "StructData"};

static void listing_spawn(const list_size_t *sz, int kind, bool session, listing_run_t *out)
{
    char n_text[32], pool_file[PATH_MAX + 32], res[PATH_MAX + 32];
    snprintf(n_text, sizeof n_text, "%zu", sz->n);
    path_join(pool_file, sizeof pool_file, g_at.tmp, "pool.der");
    path_join(res, sizeof res, g_at.tmp, "listing.out");
    char *argv[] = {g_at.self, session ? "--listing-session-child" : "--listing-child",
                    (char *)sz->store, pool_file, n_text, (char *)list_kinds[kind], NULL};
    proc_run_t r = run_process(argv, res);
    must_succeed(&r, argv);
    text_t t = read_file(res);
    long rss0 = 0, hwm = 0;
    int reset = 0;
    out->msgs = 1;
    int got = sscanf(t.data, "us=%lf cpu=%lf reply=%zu items=%zu rss0=%ld hwm=%ld reset=%d "
                     "msgs=%u", &out->us, &out->cpu_us, &out->reply, &out->items, &rss0, &hwm,
                     &reset, &out->msgs);
    if (got != (session ? 8 : 7))
        bench_die("a listing child said '%s'", t.data);
    out->growth = (double)(hwm - rss0) * 1024;
    out->reset = reset;
    text_free(&t);
}

/* Fill a store of sz->n on tmpfs (setup, not measured), check it, and give
 * it a dmclient state directory. */
static void list_setup(list_size_t *sz, const pool_t *pool)
{
    char name[64], link[PATH_MAX + 64];
    engine_t e;
    snprintf(name, sizeof name, "root-%zu", sz->n);
    path_join(sz->store, sizeof sz->store, g_at.tmp, name);
    snprintf(name, sizeof name, "state-%zu", sz->n);
    path_join(sz->state, sizeof sz->state, g_at.tmp, name);
    fprintf(stderr, "certpath: 3. filling a store of %zu certificates ...\n", sz->n);
    int64_t t0 = bench_now_ns();
    engine_open_real(&e, sz->store, 0);
    fill_store(e.cs->store, sz->store, "root", pool, 0, sz->n, 1, SERVER_URI);
    if (root_count(e.cs) != sz->n)
        bench_die("%s holds %zu certificates, not %zu", sz->store, root_count(e.cs), sz->n);
    engine_close(&e); /* the children and dmclient open it */
    sz->fill_s = seconds_since(t0);
    path_join(link, sizeof link, sz->state, "store");
    if (mkdir(sz->state, 0700) || symlink(sz->store, link))
        bench_die("%s: %s", sz->state, strerror(errno));
}

/* `dmclient store list root` prints the store's certificates, one line
 * each, the thumbprint second. */
static void check_store_list(const list_size_t *sz, const pool_t *pool, const char *out)
{
    text_t t = read_file(out);
    expect_t e;
    size_t lines = 0, bad = 0;
    expect_init(&e, pool, sz->n);
    for (char *line = t.data, *next; *line; line = next) {
        char id[64], thumb[64];
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        lines++;
        long i = sscanf(line, "%63s %63s", id, thumb) == 2 ? expect_find(&e, thumb, strlen(thumb))
                                                           : -1;
        if (i < 0 || e.seen[i]++)
            bad++;
    }
    if (lines != sz->n || bad)
        bench_die("dmclient store list on %zu certificates: %zu lines, %zu not a certificate of "
                  "the store or listed twice", sz->n, lines, bad);
    expect_free(&e);
    text_free(&t);
}

static void store_list_runs(list_size_t *sizes, size_t n_sizes, const pool_t *pool,
                            unsigned rounds)
{
    char out[PATH_MAX + 32];
    path_join(out, sizeof out, g_at.tmp, "store-list.out");
    for (size_t k = 0; k < n_sizes; k++) {
        char *argv[] = {g_at.dmclient, "--state-dir", sizes[k].state, "store", "list", "root",
                        NULL};
        proc_run_t r = run_process(argv, out); /* checked, and warms the page cache */
        must_succeed(&r, argv);
        check_store_list(&sizes[k], pool, out);
    }
    for (unsigned i = 0; i < rounds; i++) {
        for (size_t j = 0; j < n_sizes; j++) {
            size_t k = i % 2 ? n_sizes - 1 - j : j; /* alternate the order */
            char *argv[] = {g_at.dmclient, "--state-dir", sizes[k].state, "store", "list", "root",
                            NULL};
            proc_run_t r = run_process(argv, "/dev/null");
            must_succeed(&r, argv);
            sizes[k].list_ms[i] = r.wall_ms;
            sizes[k].list_cpu_ms[i] = r.cpu_ms;
        }
    }
}

typedef enum { F_WALL, F_GROWTH, F_CPU } run_field_t;

/* Median over the runs of one field. */
static double run_median_of(const list_size_t *sz, int kind, bool session, run_field_t field)
{
    double v[MAX_BATCHES];
    for (unsigned i = 0; i < sz->n_runs; i++) {
        const listing_run_t *r = session ? &sz->sruns[kind][i] : &sz->runs[kind][i];
        v[i] = field == F_WALL ? r->us : field == F_GROWTH ? r->growth : r->cpu_us;
    }
    return median(v, sz->n_runs);
}

static void print_listing_rows(const list_size_t *sizes, size_t n_sizes, bool session)
{
    printf("   %-20s %8s %4s %10s %10s %8s %12s %9s %10s%s\n", "Get", "N", "runs", "wall ms",
           "cpu ms", "us/cert", "reply B", "items", "growth MiB", session ? "     msgs" : "");
    bool reset = true;
    for (int kind = 0; kind < 2; kind++) {
        for (size_t k = 0; k < n_sizes; k++) {
            const list_size_t *sz = &sizes[k];
            const listing_run_t *r0 = session ? &sz->sruns[kind][0] : &sz->runs[kind][0];
            char get[40], msgs[24] = "";
            snprintf(get, sizeof get, "?list=%s", list_kinds[kind]);
            if (session)
                snprintf(msgs, sizeof msgs, " %8u", r0->msgs);
            double cpu = run_median_of(sz, kind, session, F_CPU);
            for (unsigned i = 0; i < sz->n_runs; i++)
                reset = reset && (session ? sz->sruns : sz->runs)[kind][i].reset;
            printf("   %-20s %8s %4u %10.1f %10.1f %8.1f %12zu %9zu %10.2f%s\n", k ? "" : get,
                   count_text(sz->n), sz->n_runs,
                   run_median_of(sz, kind, session, F_WALL) / 1e3, cpu / 1e3,
                   cpu / (double)sz->n, r0->reply, r0->items,
                   run_median_of(sz, kind, session, F_GROWTH) / MIB, msgs);
        }
    }
    if (session)
        printf("   Medians of the runs, each a whole session's omadm_process calls (the Get, "
               "then Alert 1222\n   until Final; MaxMsgSize %u, max_reply_size the default): "
               "wall and CPU time of the\n   calls (the child's), us/cert = CPU time / N, reply B "
               "= all messages, growth = the\n   child's highest peak RSS (VmHWM) during one call "
               "minus its RSS before the first%s.\n   Every message checked: within MaxMsgSize, "
               "Status 200; over all of them the store's node,\n   each certificate's node once "
               "and its leaves, EncodedCertificate's value (StructData).\n", LIST_MAX_MSG,
               reset ? "" : " (the peak could not be reset: it also counts the set-up)");
    else
        printf("   Medians of the runs, each the one omadm_process call: wall and CPU time (the "
               "child's),\n   us/cert = CPU time / N, growth = the child's peak RSS (VmHWM) during "
               "the call minus\n   its RSS before it%s.  Every reply checked: Status 200, the "
               "store's node, each\n   certificate's node once and its leaves, "
               "EncodedCertificate's value (StructData).\n", reset ? "" : " (the peak could not "
               "be reset: it also counts the set-up)");
}

/* Median over rounds of (t at the largest size - t at the smallest) per
 * certificate, in us, from ms per run. */
static double store_list_slope(const list_size_t *sizes, size_t n_sizes, unsigned rounds,
                               bool cpu)
{
    const list_size_t *lo = &sizes[0], *hi = &sizes[n_sizes - 1];
    double per[MAX_BATCHES];
    for (unsigned i = 0; i < rounds; i++)
        per[i] = (cpu ? hi->list_cpu_ms[i] - lo->list_cpu_ms[i] : hi->list_ms[i] - lo->list_ms[i]) *
                 1e3 / (double)(hi->n - lo->n);
    return median(per, rounds);
}

static void print_store_list_rows(const list_size_t *sizes, size_t n_sizes, unsigned rounds)
{
    printf("   %-20s %8s %4s %10s %10s\n", "dmclient store list", "N", "runs", "wall ms",
           "cpu ms");
    for (size_t k = 0; k < n_sizes; k++)
        printf("   %-20s %8s %4u %10.1f %10.1f\n", k ? "" : "root", count_text(sizes[k].n),
               rounds, median(sizes[k].list_ms, rounds), median(sizes[k].list_cpu_ms, rounds));
    printf("   whole processes (build/release/bin/dmclient; the store of its state directory a "
           "symbolic\n   link to the filled one), output to /dev/null, the sizes alternating; the "
           "output checked\n   once (every certificate once).  Per certificate: the median "
           "over rounds of\n   (CPU time at %s - at %s) / %s, so that start-up does not count: "
           "%.1f us\n   (wall time the same way: %.1f us).\n",
           count_text(sizes[n_sizes - 1].n), count_text(sizes[0].n),
           count_text(sizes[n_sizes - 1].n - sizes[0].n),
           store_list_slope(sizes, n_sizes, rounds, true),
           store_list_slope(sizes, n_sizes, rounds, false));
}

static void print_listings(const list_size_t *sizes, size_t n_sizes, unsigned rounds)
{
    printf("\n3. Listings of Root/System on tmpfs, each through a new engine in a child process "
           "of its own;\n   the stores filled with store_put, one flush per certificate.\n"
           "   session (MaxMsgSize %u, the Results streamed over the messages):\n",
           LIST_MAX_MSG);
    print_listing_rows(sizes, n_sizes, true);
    printf("   process (one reply, max_reply_size bound; here 1 GiB):\n");
    print_listing_rows(sizes, n_sizes, false);
    print_store_list_rows(sizes, n_sizes, rounds);
}

static void listing_targets(const list_size_t *sizes, size_t n_sizes, unsigned rounds)
{
    char what[96], goal[48];
    const list_size_t *lo = &sizes[0], *hi = &sizes[n_sizes - 1];
    printf("targets:\n");
    for (int kind = 0; kind < 2; kind++) {
        for (int session = 1; session >= 0; session--) {
            for (size_t k = 0; k < n_sizes; k++) {
                double per =
                    run_median_of(&sizes[k], kind, session, F_CPU) / (double)sizes[k].n;
                snprintf(what, sizeof what, "3. ?list=%s, %s certificates, %s, CPU us per cert.",
                         list_kinds[kind], count_text(sizes[k].n),
                         session ? "session" : "process");
                target(per <= T_LIST_US, what, "<= 20", "%.1f", per);
            }
        }
        /* memory: the session, where the Results is streamed; 10,000
         * against 1,000 (the walk's position, the store node's names,
         * grows with the store by design: 100,000 has its own bound) */
        const list_size_t *mid = &sizes[1];
        double g_lo = run_median_of(lo, kind, true, F_GROWTH);
        double g_mid = run_median_of(mid, kind, true, F_GROWTH);
        double g_hi = run_median_of(hi, kind, true, F_GROWTH);
        double limit = g_lo * T_LIST_GROWTH > g_lo + T_LIST_GROWTH_SLACK
                           ? g_lo * T_LIST_GROWTH : g_lo + T_LIST_GROWTH_SLACK;
        snprintf(what, sizeof what, "3. ?list=%s, session, memory growth at %s / at %s",
                 list_kinds[kind], count_text(mid->n), count_text(lo->n));
        snprintf(goal, sizeof goal, "<= %.2f MiB", limit / MIB);
        target(g_mid <= limit, what, goal, "%.2f/%.2f MiB", g_mid / MIB, g_lo / MIB);
        if (hi->n >= 100000) {
            snprintf(what, sizeof what, "3. ?list=%s, session, memory growth at %s",
                     list_kinds[kind], count_text(hi->n));
            target(g_hi <= T_LIST_GROWTH_100K, what, "<= 32 MiB", "%.2f MiB", g_hi / MIB);
        }
    }
    double slope = store_list_slope(sizes, n_sizes, rounds, true);
    target(slope <= T_STORE_LIST_US, "3. dmclient store list, CPU us per certificate", "<= 15",
           "%.1f", slope);
}

static void section_listing(const opts_t *o, const pool_t *pool, double *fill_s)
{
    static list_size_t sizes[MAX_SIZES];
    size_t n_sizes = 0;
    char pool_file[PATH_MAX + 32];
    sizes[n_sizes++].n = 1000;
    sizes[n_sizes++].n = 10000;
    if (o->big)
        sizes[n_sizes++].n = 100000;
    path_join(pool_file, sizeof pool_file, g_at.tmp, "pool.der");
    pool_save(pool, pool_file);
    *fill_s = 0;
    for (size_t k = 0; k < n_sizes; k++) {
        list_setup(&sizes[k], pool);
        *fill_s += sizes[k].fill_s;
    }
    /* rounds: every size and kind once, the sizes up to 10,000 each round */
    for (unsigned r = 0; r < o->list_rounds; r++) {
        for (size_t k = 0; k < n_sizes; k++) {
            if (sizes[k].n > 10000 && r > 0)
                continue;
            fprintf(stderr, "certpath: 3. listings, round %u/%u, %s certificates ...\n", r + 1,
                    o->list_rounds, count_text(sizes[k].n));
            for (int kind = 0; kind < 2; kind++) {
                listing_spawn(&sizes[k], kind, true, &sizes[k].sruns[kind][sizes[k].n_runs]);
                listing_spawn(&sizes[k], kind, false, &sizes[k].runs[kind][sizes[k].n_runs]);
            }
            sizes[k].n_runs++;
        }
    }
    fprintf(stderr, "certpath: 3. dmclient store list ...\n");
    store_list_runs(sizes, n_sizes, pool, o->rounds);
    print_listings(sizes, n_sizes, o->rounds);
    listing_targets(sizes, n_sizes, o->rounds);
}

/* ==== section 4: start-up and the whole process ======================================== */

typedef struct startup {
    double dm_wall[256], dm_cpu[256], floor_wall[256], floor_cpu[256];
    double ratio_wall[256], ratio_cpu[256];
    unsigned pairs;
    long rss_process[8], rss_get[8], rss_noop[8];
    unsigned rss_runs;
} startup_t;

static void check_output(const char *file, const char *want, const char *what)
{
    text_t t = read_file(file);
    if (strcmp(t.data, want))
        bench_die("%s printed '%s', not '%s'", what, t.data, want);
    text_free(&t);
}

/* `dmclient get` and noop, in pairs, alternating which goes first. */
static void startup_pairs(startup_t *s, char *const dm[], char *const floor[])
{
    for (unsigned i = 0; i < s->pairs; i++) {
        proc_run_t a, b;
        if (i % 2) {
            b = run_process(floor, "/dev/null");
            a = run_process(dm, "/dev/null");
        } else {
            a = run_process(dm, "/dev/null");
            b = run_process(floor, "/dev/null");
        }
        must_succeed(&a, dm);
        must_succeed(&b, floor);
        s->dm_wall[i] = a.wall_ms;
        s->dm_cpu[i] = a.cpu_ms;
        s->floor_wall[i] = b.wall_ms;
        s->floor_cpu[i] = b.cpu_ms;
        s->ratio_wall[i] = a.wall_ms / b.wall_ms;
        s->ratio_cpu[i] = b.cpu_ms > 0 ? a.cpu_ms / b.cpu_ms : 0;
    }
}

/* Peak RSS of `dmclient process` of the 2.3 KB message (its reply checked
 * each time), of `dmclient get` and of noop, s->rss_runs of each. */
static void startup_rss(startup_t *s, const pool_cert_t *ca, char *const dm[],
                        char *const floor[])
{
    char msg_file[PATH_MAX + 32], state[PATH_MAX + 32], reply[PATH_MAX + 32];
    path_join(msg_file, sizeof msg_file, g_at.tmp, "message.xml");
    path_join(state, sizeof state, g_at.tmp, "state-process");
    path_join(reply, sizeof reply, g_at.tmp, "reply.xml");
    text_t msg = msg_cert(ca);
    write_file(msg_file, msg.data, msg.len);
    text_free(&msg);
    char *process[] = {g_at.dmclient, "--state-dir", state, "process", msg_file, NULL};
    proc_run_t warm = run_process(process, reply); /* creates the state and the store */
    must_succeed(&warm, process);
    for (unsigned i = 0; i < s->rss_runs; i++) {
        s->rss_process[i] = peak_rss_kb(process, reply);
        text_t t = read_file(reply);
        check_cert_reply(ca, (const uint8_t *)t.data, t.len, "dmclient process");
        text_free(&t);
        s->rss_get[i] = peak_rss_kb(dm, "/dev/null");
        s->rss_noop[i] = peak_rss_kb(floor, "/dev/null");
    }
}

static double median_kb(const long *v, unsigned n)
{
    double d[8];
    for (unsigned i = 0; i < n; i++)
        d[i] = (double)v[i];
    return median(d, n);
}

static void section_startup(const opts_t *o, const pool_cert_t *ca)
{
    static startup_t s;
    char state[PATH_MAX + 32], out[PATH_MAX + 32];
    path_join(state, sizeof state, g_at.tmp, "state-get");
    path_join(out, sizeof out, g_at.tmp, "get.out");
    char *dm[] = {g_at.dmclient, "--state-dir", state, "get", "./DevInfo/DevId", NULL};
    char *create[] = {g_at.dmclient, "--state-dir", state, "process", "/dev/null", NULL};
    char *floor[] = {g_at.noop, NULL};
    s.pairs = o->pairs;
    s.rss_runs = 5;
    fprintf(stderr, "certpath: 4. start-up ...\n");
    proc_run_t made = run_process(create, out); /* read-only commands create no state */
    must_succeed(&made, create);
    for (int i = 0; i < 3; i++) { /* warm-up */
        proc_run_t a = run_process(dm, out), b = run_process(floor, NULL);
        must_succeed(&a, dm);
        must_succeed(&b, floor);
        check_output(out, DEV_ID "\n", "dmclient get ./DevInfo/DevId");
    }
    startup_pairs(&s, dm, floor);
    startup_rss(&s, ca, dm, floor);

    printf("\n4. Start-up: `dmclient --state-dir D get ./DevInfo/DevId` (D on tmpfs) and noop "
           "(does\n   nothing; linked with libxml2 and libcrypto), %u pairs, alternating which "
           "goes first:\n", s.pairs);
    printf("   %-40s %10s %10s\n", "", "wall ms", "cpu ms");
    printf("   %-40s %10.2f %10.2f\n", "dmclient get", median(s.dm_wall, s.pairs),
           median(s.dm_cpu, s.pairs));
    printf("   %-40s %10.2f %10.2f\n", "noop", median(s.floor_wall, s.pairs),
           median(s.floor_cpu, s.pairs));
    double r = median(s.ratio_wall, s.pairs);
    printf("   %-40s %9.2fx %9.2fx\n", "median of the per-pair ratios", r,
           median(s.ratio_cpu, s.pairs));
    printf("   Peak RSS, whole process (bench/maxrss: wait4's ru_maxrss), median of %u:\n"
           "   `dmclient process` of the 2.3 KB message (reply checked each time) %.2f MiB;\n"
           "   `dmclient get` %.2f MiB; noop %.2f MiB\n", s.rss_runs,
           median_kb(s.rss_process, s.rss_runs) / 1024, median_kb(s.rss_get, s.rss_runs) / 1024,
           median_kb(s.rss_noop, s.rss_runs) / 1024);
    printf("targets:\n");
    target(r <= T_STARTUP, "4. start-up: dmclient get / noop, wall", "<= 1.3x", "%.2fx", r);
    double rss = median_kb(s.rss_process, s.rss_runs) * 1024;
    target(rss <= T_PROCESS_RSS, "4. peak RSS of dmclient process, 2.3 KB message", "<= 10 MiB",
           "%.2f MiB", rss / MIB);
}

/* ==== main ================================================================================ */

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
            "usage: certpath [--only message,bulk,listing,startup] [--batches N] [--batch-ms MS]\n"
            "                [--rounds N] [--list-rounds N] [--pairs N] [--big]\n"
            "                [--tmpfs DIR] [--disk DIR] [--keep]\n");
    exit(2);
}

static unsigned parse_sections(const char *v)
{
    static const char *const names[] = {"message", "bulk", "listing", "startup"};
    unsigned set = 0;
    char *copy = strdup(v), *save = NULL;
    if (!copy)
        bench_die("out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < 4 && strcmp(t, names[i]))
            i++;
        if (i == 4)
            usage();
        set |= 1u << i;
    }
    free(copy);
    return set;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.sections = SEC_MESSAGE | SEC_BULK | SEC_LISTING | SEC_STARTUP, .batches = 7,
                  .batch_sec = 0.1, .rounds = 5, .list_rounds = 3, .pairs = 31,
                  .tmpfs = "/dev/shm"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--big"))
            o->big = true;
        else if (!strcmp(a, "--keep"))
            o->keep = true;
        else if (!v)
            usage();
        else if (!strcmp(a, "--only"))
            o->sections = parse_sections(v);
        else if (!strcmp(a, "--batches"))
            o->batches = (unsigned)atoi(v);
        else if (!strcmp(a, "--batch-ms"))
            o->batch_sec = atof(v) / 1e3;
        else if (!strcmp(a, "--rounds"))
            o->rounds = (unsigned)atoi(v);
        else if (!strcmp(a, "--list-rounds"))
            o->list_rounds = (unsigned)atoi(v);
        else if (!strcmp(a, "--pairs"))
            o->pairs = (unsigned)atoi(v);
        else if (!strcmp(a, "--tmpfs"))
            o->tmpfs = v;
        else if (!strcmp(a, "--disk"))
            o->disk = v;
        else
            usage();
        if (strcmp(a, "--big") && strcmp(a, "--keep"))
            i++;
    }
    if (!o->sections || o->batches < 1 || o->batches > MAX_BATCHES || o->batch_sec <= 0 ||
        o->rounds < 1 || o->rounds > MAX_BATCHES || o->list_rounds < 1 ||
        o->list_rounds > MAX_BATCHES || o->pairs < 1 || o->pairs > 256)
        usage();
}

static void scratch_dir(char *out, size_t size, const char *under)
{
    if (snprintf(out, size, "%s/certpath.XXXXXX", under) >= (int)size || !mkdtemp(out))
        bench_die("cannot make a directory in %s: %s", under, strerror(errno));
}

/* Where the programs are, and the scratch directories. */
static void places_init(const opts_t *o)
{
    char exe[PATH_MAX], fs[1200];
    bool tmpfs;
    if (!realpath("/proc/self/exe", exe))
        bench_die("/proc/self/exe: %s", strerror(errno));
    snprintf(g_at.self, sizeof g_at.self, "%s", exe);
    snprintf(g_at.bindir, sizeof g_at.bindir, "%s", dirname(exe));
    snprintf(g_at.dmclient, sizeof g_at.dmclient, "%s/../bin/dmclient", g_at.bindir);
    snprintf(g_at.noop, sizeof g_at.noop, "%s/noop", g_at.bindir);
    snprintf(g_at.maxrss, sizeof g_at.maxrss, "%s/maxrss", g_at.bindir);
    if ((o->sections & (SEC_LISTING | SEC_STARTUP)) &&
        (access(g_at.dmclient, X_OK) || access(g_at.noop, X_OK) || access(g_at.maxrss, X_OK)))
        bench_die("%s, noop or maxrss is missing (scons -Q variant=release bench; dmclient needs "
                  "libcurl)", g_at.dmclient);
    scratch_dir(g_at.tmp, sizeof g_at.tmp, o->tmpfs);
    describe_fs(g_at.tmp, fs, sizeof fs, &tmpfs);
    if (!tmpfs)
        bench_die("%s is not on tmpfs (%s): --tmpfs DIR", o->tmpfs, fs);
    scratch_dir(g_at.disk, sizeof g_at.disk, o->disk ? o->disk : g_at.bindir);
}

int main(int argc, char **argv)
{
    opts_t o;
    if (argc == 6 && !strcmp(argv[1], "--listing-child"))
        return listing_child(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 6 && !strcmp(argv[1], "--listing-session-child"))
        return listing_session_child(argv[2], argv[3], argv[4], argv[5]);
    xmlInitParser();
    parse_args(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    places_init(&o);
    print_machine();

    double secs[6] = {0}, fill_s = 0;
    int64_t start = bench_now_ns(), t0 = start;
    pool_cert_t ca;
    pool_t pool;
    size_t n_pool = (o.sections & SEC_BULK) ? BULK_GROUPS : 0;
    if (o.sections & SEC_LISTING)
        n_pool = o.big ? 100000 : 10000;
    fprintf(stderr, "certpath: making an RSA-2048 CA and %zu EC certificates ...\n", n_pool);
    pool_make_rsa_ca(&ca, "certpath", "certpath Device Root CA");
    pool_make(&pool, n_pool, "certpath");
    secs[0] = seconds_since(t0);
    if (o.sections & SEC_MESSAGE) {
        t0 = bench_now_ns();
        section_message(&o, &ca);
        secs[1] = seconds_since(t0);
    }
    if (o.sections & SEC_BULK) {
        t0 = bench_now_ns();
        section_bulk(&o, &pool);
        secs[2] = seconds_since(t0);
    }
    if (o.sections & SEC_LISTING) {
        t0 = bench_now_ns();
        section_listing(&o, &pool, &fill_s);
        secs[3] = seconds_since(t0);
    }
    if (o.sections & SEC_STARTUP) {
        t0 = bench_now_ns();
        section_startup(&o, &ca);
        secs[4] = seconds_since(t0);
    }

    printf("\nall targets:\n");
    for (size_t i = 0; i < g_n_targets; i++)
        printf("  %-58s %12s  (target %s)  %s\n", g_targets[i].what, g_targets[i].figure,
               g_targets[i].goal, verdict(g_targets[i].met));
    char load[128];
    load_average(load, sizeof load);
    printf("load average at the end: %s\n", load);
    printf("wall time %.0f s: certificates %.1f s, 1. %.1f s, 2. %.1f s, 3. %.1f s (filling the "
           "stores %.1f s), 4. %.1f s\n", seconds_since(start), secs[0], secs[1], secs[2],
           secs[3], fill_s, secs[4]);
    printf("(A measurement, not a test: the exit status does not depend on the targets.)\n");
    if (o.keep) {
        fprintf(stderr, "certpath: scratch directories kept: %s %s\n", g_at.tmp, g_at.disk);
    } else {
        rm_rf(g_at.tmp);
        rm_rf(g_at.disk);
    }
    pool_cert_free(&ca);
    pool_free(&pool);
    return 0;
}
