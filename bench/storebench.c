/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storebench.c - per-operation cost of the certificate store at 100, 10,000
 * and 100,000 certificates, through the path a DM server uses and through
 * the store API alone (see docs/performance.md, "Certificate store").
 *
 * For each size N and each of two stores -- Root/System (a trust store:
 * record file + OpenSSL CApath + PEM bundle) and My/User (record file
 * only) -- one store directory is filled with N certificates, then:
 *
 *   message path: an engine (omadm_new, no storage) with the certificate
 *   CSPs registered (omadm_certstore_open + omadm_certstore_register)
 *   processes one SyncML message per operation (omadm_process):
 *     Add          Add ./Vendor/MSFT/CertificateStore/<store>/<thumb>/EncodedCertificate (b64)
 *     Get          Get .../<thumb>/EncodedCertificate
 *     Get IssuedTo Get .../<thumb>/IssuedTo
 *     Delete       Delete .../<thumb>
 *   each message ends with store_flush(): journal + fsync, apply, syncfs.
 *   Every reply is decoded and checked (Status 200, the Results' value).
 *
 *   store path: the same store_t, called directly:
 *     Add     store_begin, store_put, store_commit, store_flush
 *     Get     store_get
 *     Delete  store_begin, store_del, store_commit, store_flush
 *
 * Adds use certificates the store does not hold; Gets and Deletes pick
 * random certificates it holds, so every store stays at N..N+round.  The
 * operations run in rounds (--round of each kind on each store, then the
 * next store), so all sizes share the machine's mood.  Each operation is
 * timed on its own (CLOCK_MONOTONIC).  The program links
 * common/durability.c, whose fsync(), fdatasync() and syncfs() win over
 * libc's for the store code linked into this program, to add up the time
 * each operation spends in them, so the cost of durability can be told
 * from the rest; and it reads
 * the store device's read counter (/sys/dev/block/M:m/stat) around each
 * operation, to show whether the page cache served it.
 *
 * Then the listings: store_each() alone, Get .../<store> (the child list)
 * and Get .../<store>?list=Struct through the engine.  Root/System is
 * listed at every size, My/User up to 10,000; ?list=Struct runs on
 * Root/System up to --struct-max (default 10,000: at 100,000 it takes
 * about 3 minutes and replies 136 MB).
 *
 * Setup (not measured): certificates are made in-process (one EC P-256
 * key, X.509 v3 self-signed CA, distinct serial and subject); the stores
 * are filled with store_put batches and one store_flush per batch, with
 * the syncs skipped (one syncfs after each store); then every file of
 * every store is read once (--no-warm: not), since this VM trims the page
 * cache.  --keep leaves the stores and the certificates in --dir, and
 * --reuse measures them again without making and filling them.
 *
 *   storebench [--sizes 100,10000,100000] [--ops K] [--round R]
 *              [--stores root,my-user] [--no-engine] [--no-list]
 *              [--struct-max N] [--dir DIR] [--keep] [--reuse] [--no-warm]
 *              [--skip-sync]
 *
 * --skip-sync makes the syncs return at once (not durable; for profiling).
 * A measurement, not a test: exit status 0 whatever the figures are, 1
 * only when something could not be measured (setup failed, a reply was
 * not what the operation should give).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/opensslv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "csp/certstore_internal.h"
#include "durability.h"
#include "fill.h"
#include "model.h"
#include "omadm.h"
#include "omadm_certstore.h"
#include "pool.h"
#include "store/store.h"
#include "text.h"
#include "util.h"

#define CSP_BASE "./Vendor/MSFT/CertificateStore"
#define SERVER_URI "https://dm.example.test/omadm"
#define TARGET_RATIO 1.5
#define MAX_SIZES 8

/* ==== deterministic randomness ==================================================== */

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t x = (g_rng += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* ==== stores ======================================================================= */

typedef struct kind {
    const char *id;        /* store id */
    const char *label;
    const char *uri;       /* node of the store */
    const char *what;
    bool trust;
} kind_t;

static const kind_t kinds[] = {
    {"root", "Root/System", CSP_BASE "/Root/System", "trust store: record + CApath + bundle", true},
    {"my-user", "My/User", CSP_BASE "/My/User", "record only, no CApath/bundle", false},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

typedef enum {
    OP_MSG_ADD,
    OP_MSG_GET,
    OP_MSG_GET_ISSUED,
    OP_MSG_DEL,
    OP_ST_ADD,
    OP_ST_GET,
    OP_ST_DEL,
    OP__COUNT
} op_t;

static const char *const op_labels[OP__COUNT] = {
    "message Add",     "message Get EncodedCert", "message Get IssuedTo",
    "message Delete",  "store Add (put+flush)",   "store Get (store_get)",
    "store Delete (del+flush)",
};

typedef struct samples {
    double *total_us, *sync_us;
    unsigned *syncs;
    unsigned long reads;     /* block-device reads during these operations */
    size_t n;
} samples_t;

typedef struct listing {
    bool done;
    double list_ms, each_ms, struct_ms;  /* struct_ms < 0: not run */
    int list_runs, each_runs;
    size_t list_reply, struct_reply, struct_items, each_n, list_children;
} listing_t;

typedef struct bstore {
    const kind_t *kind;
    size_t size;
    char dir[4096];
    omadm_t *dm;
    omadm_certstore_t *cs;
    store_t *st;
    uint32_t *live;          /* pool indices held */
    size_t n_live;
    uint8_t *held;           /* per pool index */
    size_t fresh;            /* where to look for the next certificate to add */
    unsigned msg_id;
    double fill_s;
    size_t fill_batch;
    bool reused;
    samples_t s[OP__COUNT];
    listing_t list;
} bstore_t;

typedef struct opts {
    size_t sizes[MAX_SIZES];
    size_t n_sizes;
    unsigned ops, round;
    bool kind_on[N_KINDS];
    bool no_engine, list, keep, reuse, skip_sync, warm;
    size_t struct_max;
    const char *dir;
} opts_t;

static const pool_t *g_pool;
static omadm_t *g_checker;   /* decodes replies; limits raised */

static void live_add(bstore_t *b, uint32_t i)
{
    b->live[b->n_live++] = i;
    b->held[i] = 1;
}

static uint32_t live_pick(bstore_t *b, size_t *slot)
{
    *slot = (size_t)(rnd() % b->n_live);
    return b->live[*slot];
}

static void live_remove(bstore_t *b, size_t slot)
{
    b->held[b->live[slot]] = 0;
    b->live[slot] = b->live[--b->n_live];
}

/* A pool certificate the store does not hold. */
static uint32_t fresh_pick(bstore_t *b)
{
    for (size_t k = 0; k < g_pool->n; k++) {
        size_t i = (b->fresh + k) % g_pool->n;
        if (!b->held[i]) {
            b->fresh = i + 1;
            return (uint32_t)i;
        }
    }
    bench_die("certificate pool exhausted");
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p) && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *p)
{
    if (nftw(p, rm_entry, 64, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
        bench_die("cannot remove %s: %s", p, strerror(errno));
}

/* ---- block-device reads: was an operation served by the page cache? ---- */

static char g_disk_stat[128];   /* /sys/dev/block/MAJ:MIN/stat of the store's device */

static void disk_stat_init(const char *dir)
{
    struct stat st;
    g_disk_stat[0] = 0;
    if (stat(dir, &st))
        return;
    snprintf(g_disk_stat, sizeof g_disk_stat, "/sys/dev/block/%u:%u/stat", major(st.st_dev),
             minor(st.st_dev));
    if (access(g_disk_stat, R_OK))
        g_disk_stat[0] = 0;
}

/* Reads completed by the device so far (the whole device, not just this
 * process); 0 when unknown. */
static unsigned long disk_reads(void)
{
    char buf[256];
    unsigned long r = 0;
    int fd = g_disk_stat[0] ? open(g_disk_stat, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = 0;
        r = strtoul(buf, NULL, 10);
    }
    return r;
}

/* Read every file of a store once, so that the operations find what they
 * touch in the page cache whatever the size (see docs/performance.md:
 * this VM trims the page cache). */
static size_t g_warm_bytes;

static int warm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        g_warm_bytes += (size_t)n;
    close(fd);
    return 0;
}

static void engine_open(bstore_t *b)
{
    omadm_config_t cfg;
    const char *why = NULL;
    omadm_config_init(&cfg);
    omadm_error_t err = omadm_new(&cfg, NULL, NULL, &b->dm);
    if (!err)
        err = omadm_certstore_open(b->dir, NULL, &b->cs, &why);
    if (!err)
        err = omadm_certstore_register(b->dm, b->cs);
    if (err)
        bench_die("engine on %s: %s (%s)", b->dir, omadm_strerror(err), why ? why : "");
    b->st = b->cs->store; /* the internal store of the handle (certstore_internal.h) */
}

static void engine_close(bstore_t *b)
{
    omadm_free(b->dm);
    omadm_certstore_close(b->cs);
    b->dm = NULL;
    b->cs = NULL;
    b->st = NULL;
}

/* Fill to b->size in batches of one transaction and one flush each: a
 * batch of 1 for the trust stores (fill.h). */
static void fill(bstore_t *b)
{
    size_t batch = b->kind->trust ? 1 : 1000;
    int64_t t0 = bench_now_ns();
    fill_store(b->st, b->dir, b->kind->id, g_pool, 0, b->size, batch, SERVER_URI);
    for (size_t j = 0; j < b->size; j++)
        live_add(b, (uint32_t)j);
    b->fill_s = (double)(bench_now_ns() - t0) / 1e9;
    b->fill_batch = batch;
    b->fresh = b->size;
}

static void live_file(const bstore_t *b, char *buf, size_t size)
{
    snprintf(buf, size, "%s.live", b->dir);
}

static bool live_load(bstore_t *b)
{
    char p[4200];
    live_file(b, p, sizeof p);
    FILE *f = fopen(p, "rb");
    if (!f)
        return false;
    uint32_t i;
    while (fread(&i, sizeof i, 1, f) == 1) {
        if (i >= g_pool->n || b->held[i] || b->n_live >= b->size + g_pool->n)
            bench_die("%s: does not match the pool", p);
        live_add(b, i);
    }
    fclose(f);
    b->fresh = b->size;
    return true;
}

static void live_save(const bstore_t *b)
{
    char p[4200];
    live_file(b, p, sizeof p);
    FILE *f = fopen(p, "wb");
    if (!f)
        bench_die("%s: %s", p, strerror(errno));
    fwrite(b->live, sizeof *b->live, b->n_live, f);
    if (fclose(f))
        bench_die("%s: write failed", p);
}

static void bstore_setup(bstore_t *b, const kind_t *k, size_t size, const char *base,
                         const opts_t *o)
{
    char p[4200];
    memset(b, 0, sizeof *b);
    b->kind = k;
    b->size = size;
    if (snprintf(b->dir, sizeof b->dir, "%s/%s-%zu", base, k->id, size) >= (int)sizeof b->dir)
        bench_die("%s: path too long", base);
    b->live = bench_xmalloc((size + g_pool->n) * sizeof *b->live);
    b->held = calloc(g_pool->n, 1);
    if (!b->held)
        bench_die("out of memory");
    for (int i = 0; i < OP__COUNT; i++) {
        b->s[i].total_us = bench_xmalloc(o->ops * sizeof(double));
        b->s[i].sync_us = bench_xmalloc(o->ops * sizeof(double));
        b->s[i].syncs = bench_xmalloc(o->ops * sizeof(unsigned));
    }
    live_file(b, p, sizeof p);
    if (o->reuse && live_load(b)) {
        b->reused = true;
        unlink(p); /* written again at the end: a run cut short leaves none */
        engine_open(b);
        return;
    }
    rm_rf(b->dir);
    engine_open(b);
    fill(b);
}

/* ==== messages ===================================================================== */

static void msg_begin(text_t *t, bstore_t *b)
{
    t->len = 0;
    text_printf(t,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>%u</MsgID>"
                "<Target><LocURI>omadm-device</LocURI></Target>"
                "<Source><LocURI>" SERVER_URI "</LocURI></Source></SyncHdr><SyncBody>\n",
                ++b->msg_id + 1);
}

static void msg_end(text_t *t)
{
    text_printf(t, "<Final/></SyncBody></SyncML>\n");
}

static void msg_cmd(text_t *t, const char *el, const char *uri, const char *b64)
{
    if (b64)
        text_printf(t,
                    "<%s><CmdID>1</CmdID><Item><Target><LocURI>%s</LocURI></Target><Meta>"
                    "<Format xmlns=\"syncml:metinf\">b64</Format></Meta><Data>%s</Data></Item>"
                    "</%s>\n",
                    el, uri, b64, el);
    else
        text_printf(t, "<%s><CmdID>1</CmdID><Item><Target><LocURI>%s</LocURI></Target></Item></%s>\n",
                    el, uri, el);
}

typedef struct reply_sum {
    size_t n_status;        /* command Statuses (not the header's) */
    int status;             /* the first command Status code */
    size_t n_items;         /* Results items */
    const syncml_item_t *first;
} reply_sum_t;

/* Decode a reply (with the checker's raised limits) and summarise it. */
static void reply_check(const uint8_t *reply, size_t len, syncml_msg_t *m, reply_sum_t *r)
{
    const char *detail = NULL;
    memset(r, 0, sizeof *r);
    syncml_msg_init(m, g_checker);
    omadm_error_t err = codec_xml_decode(g_checker, reply, len, m, &detail);
    if (err)
        bench_die("reply does not decode: %s (%s)", omadm_strerror(err), detail ? detail : "");
    for (const syncml_cmd_t *c = m->cmds; c; c = c->next) {
        if (c->type == SYNCML_CMD_STATUS) {
            int code = c->data_len == 3 ? atoi((const char *)c->data) : -1;
            if (c->cmd_ref && !strcmp(c->cmd_ref, "0")) {
                if (code != 200)
                    bench_die("header Status %d", code);
                continue;
            }
            if (!r->n_status++)
                r->status = code;
        } else if (c->type == SYNCML_CMD_RESULTS) {
            for (const syncml_item_t *it = c->items; it; it = it->next) {
                if (!r->first)
                    r->first = it;
                r->n_items++;
            }
        }
    }
}

/* One message through the engine: returns microseconds; sync_us/syncs are
 * the part spent in fsync/syncfs and their number. */
static double run_msg(bstore_t *b, const text_t *msg, uint8_t **reply, size_t *reply_len,
                      double *sync_us, unsigned *syncs)
{
    int64_t s0 = dur.barrier_ns;
    uint64_t c0 = dur.barriers;
    int64_t t0 = bench_now_ns();
    omadm_error_t err =
        omadm_process(b->dm, (const uint8_t *)msg->data, msg->len, reply, reply_len);
    int64_t t1 = bench_now_ns();
    if (err || !*reply) {
        const char *d = omadm_last_error_detail(b->dm);
        bench_die("omadm_process on %s: %s (%s)", b->dir, omadm_strerror(err), d ? d : "no reply");
    }
    *sync_us = (double)(dur.barrier_ns - s0) / 1e3;
    *syncs = (unsigned)(dur.barriers - c0);
    return (double)(t1 - t0) / 1e3;
}

static void record(bstore_t *b, op_t op, double us, double sync_us, unsigned syncs,
                   unsigned long reads)
{
    samples_t *s = &b->s[op];
    s->reads += reads;
    s->total_us[s->n] = us;
    s->sync_us[s->n] = sync_us;
    s->syncs[s->n] = syncs;
    s->n++;
}

static void msg_op(bstore_t *b, op_t op, text_t *msg)
{
    char uri[512];
    uint32_t i;
    size_t slot = 0;
    const char *el;
    const char *b64 = NULL;
    if (op == OP_MSG_ADD) {
        i = fresh_pick(b);
        el = "Add";
        b64 = g_pool->c[i].b64;
        snprintf(uri, sizeof uri, "%s/%s/EncodedCertificate", b->kind->uri, g_pool->c[i].thumb);
    } else if (op == OP_MSG_DEL) {
        i = live_pick(b, &slot);
        el = "Delete";
        snprintf(uri, sizeof uri, "%s/%s", b->kind->uri, g_pool->c[i].thumb);
    } else {
        i = live_pick(b, &slot);
        el = "Get";
        snprintf(uri, sizeof uri, "%s/%s/%s", b->kind->uri, g_pool->c[i].thumb,
                 op == OP_MSG_GET ? "EncodedCertificate" : "IssuedTo");
    }
    msg_begin(msg, b);
    msg_cmd(msg, el, uri, b64);
    msg_end(msg);

    uint8_t *reply = NULL;
    size_t len = 0;
    double sync_us;
    unsigned syncs;
    unsigned long r0 = disk_reads();
    double us = run_msg(b, msg, &reply, &len, &sync_us, &syncs);
    unsigned long reads = disk_reads() - r0;

    syncml_msg_t m;
    reply_sum_t r;
    reply_check(reply, len, &m, &r);
    if (r.n_status != 1 || r.status != 200)
        bench_die("%s %s on %s: Status %d", el, uri, b->dir, r.status);
    if (op == OP_MSG_GET || op == OP_MSG_GET_ISSUED) {
        char want[64];
        snprintf(want, sizeof want, "O=omadm bench, CN=storebench %u", i);
        const char *w = op == OP_MSG_GET ? g_pool->c[i].b64 : want;
        const syncml_item_t *it = r.first;
        if (r.n_items != 1 || !it->has_data || it->data_len != strlen(w) ||
            memcmp(it->data, w, it->data_len))
            bench_die("Get %s on %s: Results '%.*s', want '%s'", uri, b->dir,
                it && it->has_data ? (int)it->data_len : 0, it ? (const char *)it->data : "", w);
    }
    syncml_msg_free(&m);
    omadm_buffer_free(b->dm, reply);
    if (op == OP_MSG_ADD)
        live_add(b, i);
    else if (op == OP_MSG_DEL)
        live_remove(b, slot);
    record(b, op, us, sync_us, syncs, reads);
}

static void store_op(bstore_t *b, op_t op)
{
    size_t slot = 0;
    uint32_t i = op == OP_ST_ADD ? fresh_pick(b) : live_pick(b, &slot);
    const pool_cert_t *c = &g_pool->c[i];
    store_rec_t rec;
    unsigned long r0 = disk_reads();
    int64_t s0 = dur.barrier_ns;
    uint64_t c0 = dur.barriers;
    int64_t t0 = bench_now_ns();
    int rc;
    switch (op) {
    case OP_ST_ADD:
        rc = store_begin(b->st);
        if (!rc)
            fill_put(b->st, b->kind->id, c, SERVER_URI);
        rc = rc || store_commit(b->st) || store_flush(b->st);
        break;
    case OP_ST_GET:
        rc = store_get(b->st, b->kind->id, c->thumb, &rec);
        break;
    default:
        rc = store_begin(b->st) || store_del(b->st, b->kind->id, c->thumb) ||
             store_commit(b->st) || store_flush(b->st);
        break;
    }
    int64_t t1 = bench_now_ns();
    unsigned long reads = disk_reads() - r0;
    if (rc)
        bench_die("%s on %s: failed (%d)", op_labels[op], b->dir, rc);
    if (op == OP_ST_GET) {
        if (rec.der_len != c->der_len || memcmp(rec.der, c->der, c->der_len))
            bench_die("store_get on %s: wrong certificate", b->dir);
        store_rec_free(b->st, &rec);
    } else if (op == OP_ST_ADD) {
        live_add(b, i);
    } else {
        live_remove(b, slot);
    }
    record(b, op, (double)(t1 - t0) / 1e3, (double)(dur.barrier_ns - s0) / 1e3,
           (unsigned)(dur.barriers - c0), reads);
}

/* ==== listings ===================================================================== */

static int count_rec(void *ctx, const store_rec_t *rec)
{
    (void)rec;
    (*(size_t *)ctx)++;
    return 0;
}

/* Runs of a listing: up to 3 while they add up to less than 2 s. */
#define LIST_RUNS 3
#define LIST_BUDGET_MS 2000.0

static double median_of_runs(double *t, int n)
{
    if (n == 1)
        return t[0];
    if (n == 2)
        return (t[0] + t[1]) / 2;
    return t[0] > t[1] ? (t[1] > t[2] ? t[1] : t[0] > t[2] ? t[2] : t[0])
                       : (t[0] > t[2] ? t[0] : t[1] > t[2] ? t[1] : t[2]);
}

/* The engine's XML decoder (the checker) hands libxml2 the whole message
 * in one chunk, and libxml2 refuses more than 10,000,000 bytes that way
 * without XML_PARSE_HUGE.  Bigger replies (?list=Struct of 10,000 and
 * more) are checked by a scan of the text: the Get's Status and the
 * number of Items (only Results carry Items in these replies). */
#define BIG_REPLY (8u << 20)

static void big_reply_check(const uint8_t *reply, size_t len, const char *uri, size_t want_items)
{
    static const char status[] = "<CmdRef>1</CmdRef><Cmd>Get</Cmd><Data>";
    const uint8_t *p = memmem(reply, len, status, sizeof status - 1);
    size_t items = 0;
    if (!p || len - (size_t)(p - reply) < sizeof status + 3 ||
        memcmp(p + sizeof status - 1, "200<", 4))
        bench_die("Get %s: no Status 200 in the %zu-byte reply", uri, len);
    for (const uint8_t *q = reply, *end = reply + len;
         (q = memmem(q, (size_t)(end - q), "<Item>", 6)); q += 6)
        items++;
    if (items != want_items)
        bench_die("Get %s: %zu Items, want %zu", uri, items, want_items);
}

/* Get uri through the engine; milliseconds.  Checks Status 200 and the
 * number of Results items; *first gets a copy of the first item's data
 * when first is not NULL. */
static double get_msg(bstore_t *b, text_t *msg, const char *uri, size_t want_items,
                      size_t *reply_len, char **first, size_t *first_len)
{
    uint8_t *reply = NULL;
    double sync_us;
    unsigned syncs;
    msg_begin(msg, b);
    msg_cmd(msg, "Get", uri, NULL);
    msg_end(msg);
    double ms = run_msg(b, msg, &reply, reply_len, &sync_us, &syncs) / 1e3;
    if (*reply_len > BIG_REPLY && !first) {
        big_reply_check(reply, *reply_len, uri, want_items);
        omadm_buffer_free(b->dm, reply);
        return ms;
    }
    syncml_msg_t m;
    reply_sum_t rs;
    reply_check(reply, *reply_len, &m, &rs);
    if (rs.status != 200 || rs.n_items != want_items)
        bench_die("Get %s on %s: Status %d, %zu Results items, want %zu", uri, b->dir, rs.status,
            rs.n_items, want_items);
    if (first) {
        *first = bench_xmalloc(rs.first->data_len + 1);
        memcpy(*first, rs.first->data, rs.first->data_len);
        (*first)[rs.first->data_len] = 0;
        *first_len = rs.first->data_len;
    }
    syncml_msg_free(&m);
    omadm_buffer_free(b->dm, reply);
    return ms;
}

static void listing(bstore_t *b, const opts_t *o, text_t *msg)
{
    listing_t *l = &b->list;
    double t[LIST_RUNS], sum = 0;
    char uri[512];
    int r;
    l->done = true;
    l->struct_ms = -1;
    /* store_each alone */
    for (r = 0; r < LIST_RUNS && sum < LIST_BUDGET_MS; r++) {
        size_t n = 0;
        int64_t t0 = bench_now_ns();
        if (store_each(b->st, b->kind->id, count_rec, &n))
            bench_die("store_each on %s failed", b->dir);
        sum += t[r] = (double)(bench_now_ns() - t0) / 1e6;
        if (n != b->n_live)
            bench_die("store_each on %s: %zu records, want %zu", b->dir, n, b->n_live);
        l->each_n = n;
    }
    l->each_ms = median_of_runs(t, r);
    l->each_runs = r;
    if (o->no_engine)
        return;
    /* (store_each above is the same for every store: what follows runs on
     * the trust store at every size, on the others up to 10,000) */
    /* Get <store>: the child list */
    for (r = 0, sum = 0; r < LIST_RUNS && sum < LIST_BUDGET_MS; r++) {
        char *list = NULL;
        size_t len = 0, children = 0;
        sum += t[r] = get_msg(b, msg, b->kind->uri, 1, &l->list_reply, &list, &len);
        for (size_t k = 0; k < len; k++)
            children += list[k] == '/';
        children += len ? 1 : 0;
        free(list);
        if (children != b->n_live)
            bench_die("Get %s: %zu children, want %zu", b->kind->uri, children, b->n_live);
        l->list_children = children;
    }
    l->list_ms = median_of_runs(t, r);
    l->list_runs = r;
    /* Get <store>?list=Struct, once: the store node, then per certificate
     * its node and its 6 leaves.  Root/System only (My/User runs the same
     * code), up to --struct-max. */
    if (b->size > o->struct_max || !b->kind->trust)
        return;
    snprintf(uri, sizeof uri, "%s?list=Struct", b->kind->uri);
    l->struct_ms = get_msg(b, msg, uri, 1 + 7 * b->n_live, &l->struct_reply, NULL, NULL);
    l->struct_items = 1 + 7 * b->n_live;
}

/* ==== statistics and report ========================================================== */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* q-quantile by nearest rank (q = 0.5: median, average of the middle two
 * for an even count). */
static double quantile(const double *v, size_t n, double q)
{
    if (!n)
        return 0;
    double *s = bench_xmalloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double r;
    if (q == 0.5)
        r = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    else {
        size_t k = (size_t)(q * (double)n + 0.999999);
        r = s[(k ? k : 1) - 1];
    }
    free(s);
    return r;
}

/* Median of total - sync. */
static double median_cpu(const samples_t *s)
{
    double *d = bench_xmalloc((s->n ? s->n : 1) * sizeof *d);
    for (size_t i = 0; i < s->n; i++)
        d[i] = s->total_us[i] - s->sync_us[i];
    double r = quantile(d, s->n, 0.5);
    free(d);
    return r;
}

static double median_syncs(const samples_t *s)
{
    double *d = bench_xmalloc((s->n ? s->n : 1) * sizeof *d);
    for (size_t i = 0; i < s->n; i++)
        d[i] = s->syncs[i];
    double r = quantile(d, s->n, 0.5);
    free(d);
    return r;
}

static void run_cmd(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    out[0] = 0;
    if (!p)
        return;
    if (!fgets(out, (int)size, p))
        out[0] = 0;
    out[strcspn(out, "\n")] = 0;
    pclose(p);
}

static void print_machine(const char *dir)
{
    char model[256] = "unknown", line[512], fs[128], cmd[4200], mnt[600] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
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
    snprintf(cmd, sizeof cmd, "stat -f -c %%T '%s' 2>/dev/null", dir);
    run_cmd(cmd, fs, sizeof fs);
    snprintf(cmd, sizeof cmd, "findmnt -n -o FSTYPE,SOURCE,TARGET -T '%s' 2>/dev/null", dir);
    run_cmd(cmd, mnt, sizeof mnt);
    printf("machine: %ld CPUs, %s; %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
           OPENSSL_VERSION_TEXT);
    printf("store dir: %s, filesystem %s (stat -f -c %%T), mount: %s\n", dir, fs[0] ? fs : "?",
           mnt[0] ? mnt : "?");
}

static const char *verdict(bool met)
{
    return met ? "MET" : "NOT MET";
}

static void fmt_size(size_t n, char *buf, size_t size)
{
    if (n >= 1000000)
        snprintf(buf, size, "%zu,%03zu,%03zu", n / 1000000, n / 1000 % 1000, n % 1000);
    else if (n >= 1000)
        snprintf(buf, size, "%zu,%03zu", n / 1000, n % 1000);
    else
        snprintf(buf, size, "%zu", n);
}

static bstore_t *find_store(bstore_t *bs, size_t n, const kind_t *k, size_t size)
{
    for (size_t i = 0; i < n; i++)
        if (bs[i].kind == k && bs[i].size == size)
            return &bs[i];
    return NULL;
}

static void print_kind(bstore_t *bs, size_t nb, const kind_t *k, const opts_t *o)
{
    char sz[80], a[32], z[32];
    fmt_size(o->sizes[0], a, sizeof a);
    fmt_size(o->sizes[o->n_sizes - 1], z, sizeof z);
    printf("\n%s (%s), microseconds per operation:\n", k->label, k->what);
    printf("%-26s %15s %8s %8s %8s %8s %9s\n", "operation", "N", "median", "p90", "sync", "other",
           "reads/op");
    for (int op = 0; op < OP__COUNT; op++) {
        if (o->no_engine && op < OP_ST_ADD)
            continue;
        double first = 0, last = 0, first_cpu = 0, last_cpu = 0;
        for (size_t j = 0; j < o->n_sizes; j++) {
            const samples_t *s = &find_store(bs, nb, k, o->sizes[j])->s[op];
            double med = quantile(s->total_us, s->n, 0.5);
            double cpu = median_cpu(s);
            fmt_size(o->sizes[j], sz, sizeof sz);
            printf("%-26s %15s %8.0f %8.0f %8.0f %8.0f %9.2f\n", j ? "" : op_labels[op], sz, med,
                   quantile(s->total_us, s->n, 0.9), quantile(s->sync_us, s->n, 0.5), cpu,
                   (double)s->reads / (double)(s->n ? s->n : 1));
            if (j == 0)
                first = med, first_cpu = cpu;
            last = med, last_cpu = cpu;
        }
        snprintf(sz, sizeof sz, "%s / %s", z, a);
        printf("%-26s %15s %7.2fx %8s %8s %7.2fx\n", "", sz, last / first, "", "",
               last_cpu / first_cpu);
    }
}

static void print_listings(bstore_t *bs, size_t nb, const opts_t *o)
{
    char sz[32];
    printf("\nlistings, milliseconds (us per certificate); store_each and Get <store>: median of"
           " up to 3 runs\n(as many as fit in 2 s), ?list=Struct: one run:\n");
    printf("%-12s %8s | %18s | %18s %9s | %20s %8s %10s\n", "store", "N", "store_each",
           "Get <store>", "reply B", "Get ?list=Struct", "items", "reply B");
    for (size_t i = 0; i < nb; i++) {
        const listing_t *l = &bs[i].list;
        if (!l->done)
            continue;
        double n = (double)bs[i].n_live;
        fmt_size(bs[i].n_live, sz, sizeof sz);
        printf("%-12s %8s | %9.1f (%4.0f) %dx |", bs[i].kind->label, sz, l->each_ms,
               l->each_ms * 1e3 / n, l->each_runs);
        if (o->no_engine) {
            printf(" %18s %9s | %20s %8s %10s\n", "-", "-", "-", "-", "-");
            continue;
        }
        printf(" %9.1f (%4.0f) %dx %9zu |", l->list_ms, l->list_ms * 1e3 / n, l->list_runs,
               l->list_reply);
        if (l->struct_ms >= 0)
            printf(" %12.1f (%5.0f) %8zu %10zu\n", l->struct_ms, l->struct_ms * 1e3 / n,
                   l->struct_items, l->struct_reply);
        else
            printf(" %20s %8s %10s\n", "(not run)", "-", "-");
    }
}

static void print_targets(bstore_t *bs, size_t nb, const opts_t *o)
{
    char a[32], z[32];
    size_t lo = o->sizes[0], hi = o->sizes[o->n_sizes - 1];
    fmt_size(lo, a, sizeof a);
    fmt_size(hi, z, sizeof z);
    printf("\ntargets: median per operation at N=%s within %.1fx of N=%s\n", z, TARGET_RATIO, a);
    for (size_t ki = 0; ki < N_KINDS; ki++) {
        if (!o->kind_on[ki])
            continue;
        for (int op = o->no_engine ? OP_ST_ADD : 0; op < OP__COUNT; op++) {
            const samples_t *s0 = &find_store(bs, nb, &kinds[ki], lo)->s[op];
            const samples_t *s1 = &find_store(bs, nb, &kinds[ki], hi)->s[op];
            double r = quantile(s1->total_us, s1->n, 0.5) / quantile(s0->total_us, s0->n, 0.5);
            double rc = median_cpu(s1) / median_cpu(s0);
            printf("  %-12s %-25s %5.2fx  %-8s (without sync time %5.2fx  %s)%s\n",
                   kinds[ki].label, op_labels[op], r, verdict(r <= TARGET_RATIO), rc,
                   verdict(rc <= TARGET_RATIO), op < OP_ST_ADD ? "" : "  [store only]");
        }
    }
}

typedef struct phases {
    double gen, fill, warm, ops, list;
    size_t warm_bytes;
    unsigned long warm_reads;
} phases_t;

static void print_report(bstore_t *bs, size_t nb, const opts_t *o, const char *base,
                         const phases_t *ph, bool pool_reused)
{
    print_machine(base);
    const pool_cert_t *c = &g_pool->c[0];
    printf("certificates: %zu, self-signed X.509 v3 CA certificates with distinct serials and\n"
           "subjects, one EC P-256 key, DER %zu B, b64 %zu characters; %s\n",
           g_pool->n, c->der_len, strlen(c->b64),
           pool_reused ? "loaded from the pool file (--reuse)" : "made in-process");
    printf("setup (not measured): stores filled with store_put, one store_flush per batch, syncs\n"
           "skipped, one syncfs after each store:\n");
    for (size_t i = 0; i < nb; i++) {
        char sz[32];
        fmt_size(bs[i].size, sz, sizeof sz);
        if (bs[i].reused)
            printf("  %-12s N=%-8s reused (--reuse)\n", bs[i].kind->label, sz);
        else
            printf("  %-12s N=%-8s %6.1f s  (batches of %zu: %.0f us per certificate)\n",
                   bs[i].kind->label, sz, bs[i].fill_s, bs[i].fill_batch,
                   bs[i].fill_s * 1e6 / (double)bs[i].size);
    }
    if (o->warm)
        printf("warm-up: read every file of every store once: %.0f MB in %.1f s, %lu device reads\n",
               (double)ph->warm_bytes / 1e6, ph->warm, ph->warm_reads);
    printf("wall time: certificates %.1f s, fill %.1f s, warm-up %.1f s, operations %.1f s, "
           "listings %.1f s\n",
           ph->gen, ph->fill, ph->warm, ph->ops, ph->list);
    printf("measured: %u of each operation on each store, %u at a time, the stores in turn%s\n",
           o->ops, o->round, o->skip_sync ? "; SYNCS SKIPPED (--skip-sync): not durable" : "");
    for (size_t ki = 0; ki < N_KINDS; ki++)
        if (o->kind_on[ki])
            print_kind(bs, nb, &kinds[ki], o);
    printf("median, p90: of the whole operation.  sync: median time inside fsync/fdatasync/syncfs.\n"
           "other: median of (operation - its sync time).  reads/op: block-device reads during the\n"
           "operations / operations (the whole device: 0 means the page cache served them).\n"
           "Syncs per writing operation (median):");
    const bstore_t *b0 = &bs[0];
    printf(" %s %.0f, %s %.0f.\n", o->no_engine ? "store Add" : "message Add",
           median_syncs(&b0->s[o->no_engine ? OP_ST_ADD : OP_MSG_ADD]),
           o->no_engine ? "store Delete" : "message Delete",
           median_syncs(&b0->s[o->no_engine ? OP_ST_DEL : OP_MSG_DEL]));
    if (o->list)
        print_listings(bs, nb, o);
    if (o->n_sizes > 1)
        print_targets(bs, nb, o);
    printf("(A measurement, not a test: the exit status does not depend on targets.)\n");
}

/* ==== main ============================================================================ */

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
            "usage: storebench [--sizes 100,10000,100000] [--ops K] [--round R]\n"
            "                  [--stores root,my-user] [--no-engine] [--no-list]\n"
            "                  [--struct-max N] [--dir DIR] [--keep] [--reuse] [--no-warm]\n"
            "                  [--skip-sync]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->sizes[0] = 100, o->sizes[1] = 10000, o->sizes[2] = 100000;
    o->n_sizes = 3;
    o->ops = 200;
    o->round = 10;
    o->list = true;
    o->struct_max = 10000;
    o->warm = true;
    for (size_t k = 0; k < N_KINDS; k++)
        o->kind_on[k] = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sizes") && v) {
            char *copy = strdup(v), *save = NULL;
            o->n_sizes = 0;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->n_sizes == MAX_SIZES || atol(t) < 1)
                    usage();
                o->sizes[o->n_sizes++] = (size_t)atol(t);
            }
            free(copy);
            i++;
        } else if (!strcmp(a, "--stores") && v) {
            char *copy = strdup(v), *save = NULL;
            memset(o->kind_on, 0, sizeof o->kind_on);
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t k = 0;
                while (k < N_KINDS && strcmp(t, kinds[k].id))
                    k++;
                if (k == N_KINDS)
                    usage();
                o->kind_on[k] = true;
            }
            free(copy);
            i++;
        } else if (!strcmp(a, "--ops") && v) {
            o->ops = (unsigned)atoi(v), i++;
        } else if (!strcmp(a, "--round") && v) {
            o->round = (unsigned)atoi(v), i++;
        } else if (!strcmp(a, "--struct-max") && v) {
            o->struct_max = (size_t)atol(v), i++;
        } else if (!strcmp(a, "--dir") && v) {
            o->dir = v, i++;
        } else if (!strcmp(a, "--no-engine")) {
            o->no_engine = true;
        } else if (!strcmp(a, "--no-list")) {
            o->list = false;
        } else if (!strcmp(a, "--keep")) {
            o->keep = true;
        } else if (!strcmp(a, "--reuse")) {
            o->reuse = o->keep = true;
        } else if (!strcmp(a, "--no-warm")) {
            o->warm = false;
        } else if (!strcmp(a, "--skip-sync")) {
            o->skip_sync = true;
        } else {
            usage();
        }
    }
    if (!o->n_sizes || o->ops < 1 || o->round < 1 || o->ops % o->round || (o->reuse && !o->dir))
        usage();
    for (size_t j = 1; j < o->n_sizes; j++)
        if (o->sizes[j] <= o->sizes[j - 1])
            usage();
}

int main(int argc, char **argv)
{
    opts_t o;
    char base[4096], poolfile[4200];
    parse_args(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (o.dir) {
        snprintf(base, sizeof base, "%s", o.dir);
        if (mkdir(base, 0700) && errno != EEXIST)
            bench_die("%s: %s", base, strerror(errno));
    } else {
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(base, sizeof base, "%s/storebench.XXXXXX", tmp);
        if (!mkdtemp(base))
            bench_die("mkdtemp %s: %s", base, strerror(errno));
    }

    /* checker engine: decodes replies of any size */
    omadm_config_t ccfg;
    omadm_config_init(&ccfg);
    ccfg.max_msg_size = (size_t)1 << 30;
    ccfg.max_obj_size = (size_t)1 << 30;
    ccfg.max_commands = 1u << 30;
    ccfg.max_items = 1u << 30;
    if (omadm_new(&ccfg, NULL, NULL, &g_checker))
        bench_die("checker engine");

    /* certificates: the largest store, plus what the adds need */
    pool_t pool;
    size_t need = o.sizes[o.n_sizes - 1] + 2 * (size_t)o.ops + 64;
    snprintf(poolfile, sizeof poolfile, "%s/pool.der", base);
    phases_t ph = {0};
    disk_stat_init(base);
    bool pool_reused = o.reuse && pool_load(&pool, poolfile);
    if (pool_reused && pool.n < need)
        bench_die("%s holds %zu certificates, %zu needed: run without --reuse", poolfile, pool.n,
                  need);
    if (!pool_reused) {
        fprintf(stderr, "storebench: making %zu certificates ...\n", need);
        int64_t t0 = bench_now_ns();
        pool_make(&pool, need, "storebench");
        ph.gen = (double)(bench_now_ns() - t0) / 1e9;
        if (o.keep)
            pool_save(&pool, poolfile);
    }
    g_pool = &pool;

    /* stores: each kind at each size, in its own directory */
    size_t nb = 0;
    bstore_t *bs = bench_xmalloc(N_KINDS * o.n_sizes * sizeof *bs);
    int64_t t0 = bench_now_ns();
    for (size_t j = 0; j < o.n_sizes; j++) {
        for (size_t k = 0; k < N_KINDS; k++) {
            if (!o.kind_on[k])
                continue;
            fprintf(stderr, "storebench: %s %s, N=%zu ...\n",
                    o.reuse ? "opening or filling" : "filling", kinds[k].label, o.sizes[j]);
            /* reusing the pool but not the stores: refill them */
            bstore_setup(&bs[nb++], &kinds[k], o.sizes[j], base, &o);
        }
    }
    ph.fill = (double)(bench_now_ns() - t0) / 1e9;
    if (o.warm) {
        fprintf(stderr, "storebench: warm-up ...\n");
        unsigned long r0 = disk_reads();
        t0 = bench_now_ns();
        for (size_t i = 0; i < nb; i++)
            if (nftw(bs[i].dir, warm_entry, 64, FTW_PHYS))
                bench_die("cannot read %s", bs[i].dir);
        ph.warm = (double)(bench_now_ns() - t0) / 1e9;
        ph.warm_bytes = g_warm_bytes;
        ph.warm_reads = disk_reads() - r0;
    }

    /* the measured operations, in rounds */
    text_t msg = {0};
    dur_skip = o.skip_sync;
    unsigned rounds = o.ops / o.round;
    bool tty = isatty(STDERR_FILENO);
    fprintf(stderr, "storebench: %u operations of each kind on each store ...\n", o.ops);
    t0 = bench_now_ns();
    for (unsigned r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nb; i++) {
            for (int op = o.no_engine ? OP_ST_ADD : 0; op < OP__COUNT; op++) {
                for (unsigned k = 0; k < o.round; k++) {
                    if (op >= OP_ST_ADD)
                        store_op(&bs[i], (op_t)op);
                    else
                        msg_op(&bs[i], (op_t)op, &msg);
                }
            }
        }
        if (tty)
            fprintf(stderr, "\rstorebench: round %u/%u ", r + 1, rounds);
    }
    if (tty)
        fputc('\n', stderr);
    dur_skip = false;
    ph.ops = (double)(bench_now_ns() - t0) / 1e9;

    /* listings: Root/System at every size, the others up to 10,000 */
    t0 = bench_now_ns();
    for (size_t i = 0; o.list && i < nb; i++) {
        if (bs[i].kind->trust || bs[i].size <= 10000) {
            fprintf(stderr, "storebench: listing %s, N=%zu ...\n", bs[i].kind->label,
                    bs[i].n_live);
            listing(&bs[i], &o, &msg);
        }
    }
    ph.list = (double)(bench_now_ns() - t0) / 1e9;

    print_report(bs, nb, &o, base, &ph, pool_reused);

    for (size_t i = 0; i < nb; i++) {
        engine_close(&bs[i]);
        if (o.keep)
            live_save(&bs[i]);
        for (int op = 0; op < OP__COUNT; op++) {
            free(bs[i].s[op].total_us);
            free(bs[i].s[op].sync_us);
            free(bs[i].s[op].syncs);
        }
        free(bs[i].live);
        free(bs[i].held);
    }
    free(bs);
    free(msg.data);
    pool_free(&pool);
    omadm_free(g_checker);
    if (o.keep)
        fprintf(stderr, "storebench: stores kept in %s (reuse: --dir %s --reuse)\n", base, base);
    else
        rm_rf(base);
    return 0;
}
