/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_alloc.c - the certificate store and the certificate CSPs take
 * their memory, clock and randomness from the host's platform table, as
 * the engine does.
 *
 * The host allocator here puts a 16-byte header (a magic number and the
 * size) in front of every block it hands out.  A block that reached the
 * library some other way (malloc, strdup, open_memstream) and came back to
 * the hook's free, or a hook block given to libc's free(), is then caught
 * at once: the first by the header check (abort), the second by libc or
 * ASan (an invalid free).  So a run that ends with no block outstanding
 * and no abort has seen every allocation of the store and the CSPs go
 * through the table.
 *
 * On that allocator, omadm_certstore_open + omadm_new run one
 * CertificateStore message (Add of an intermediate, Get of the root's
 * leaves and of its store, Delete of the root; as a sequence and in an
 * Atomic) while allocation N fails, for N = 1, 2, ... until a run needs no
 * failure; once with only the N-th call failing, once with every call from
 * the N-th on failing.  Every run must end without a crash, with nothing
 * outstanding once the engine and the store are closed (ASan checks libc's
 * side in the sanitize build), and with a consistent store (store_check)
 * that is, byte for byte, in one of the states the message allows: the
 * seed, the seed plus the Add, minus the Delete, or both (never half a
 * batch, never half an Atomic).  After a reply it must be the state the
 * reply's statuses say; after a failure before the message ran, the seed.
 * A message that fails after its batch became durable (the engine builds
 * its reply after the plugins' end_message) leaves its whole batch; the
 * sweep counts those.  After every run OpenSSL itself is asked too: the
 * root and the intermediate are found through the CApath directory (as
 * `openssl verify -CApath` looks) and in the bundle exactly when their
 * records are there, so a deleted CA is trusted by nobody.
 *
 * OpenSSL's own allocations go through memory functions of this program
 * (CRYPTO_set_mem_functions): a flush of a batch that adds a root and
 * deletes a CA runs while OpenSSL's N-th allocation fails, for every N.  The fixed clock of the table is the "added" time
 * of the record an Add writes, and the table's random hook gives the SCEP
 * nonces and the serial number of the request signer.
 */
#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "csp/certstore_internal.h"
#include "csp/scep_msg.h"
#include "platform.h"
#include "store/store.h"
#include "support_dm.h"
#include "support_pki.h"

/* ---- the host's allocator ------------------------------------------------ */

#define MAGIC 0x686f7374626c6b31ull /* "hostblk1" */
#define HDR 16

typedef struct host {
    long calls;          /* alloc + realloc calls */
    long fail_at;        /* 0: never; N: the N-th call fails */
    bool persistent;     /* every call from the N-th on fails */
    long failures;
    long outstanding;    /* blocks handed out, not yet freed */
    int64_t now;         /* the clock */
    unsigned randoms;    /* random hook calls */
} host_t;

static bool should_fail(host_t *h)
{
    h->calls++;
    if (h->fail_at && (h->calls == h->fail_at || (h->persistent && h->calls > h->fail_at))) {
        h->failures++;
        return true;
    }
    return false;
}

static uint8_t *header_of(void *p)
{
    uint8_t *b = (uint8_t *)p - HDR;
    uint64_t magic;
    memcpy(&magic, b, sizeof magic);
    if (magic != MAGIC) {
        fprintf(stderr, "test_store_alloc: a block the host allocator never handed out came "
                        "back to it\n");
        abort();
    }
    return b;
}

static void *h_alloc(void *ctx, size_t n)
{
    host_t *h = ctx;
    if (should_fail(h))
        return NULL;
    uint8_t *b = malloc(HDR + n);
    if (!b)
        return NULL;
    uint64_t magic = MAGIC;
    memcpy(b, &magic, sizeof magic);
    memcpy(b + 8, &n, sizeof n);
    h->outstanding++;
    return b + HDR;
}

static void *h_realloc(void *ctx, void *p, size_t n)
{
    host_t *h = ctx;
    if (!p)
        return h_alloc(ctx, n);
    uint8_t *b = header_of(p);
    if (should_fail(h))
        return NULL;
    uint8_t *nb = realloc(b, HDR + n);
    if (!nb)
        return NULL;
    memcpy(nb + 8, &n, sizeof n);
    return nb + HDR;
}

static void h_free(void *ctx, void *p)
{
    host_t *h = ctx;
    if (!p)
        return;
    uint8_t *b = header_of(p);
    memset(b, 0, HDR);
    h->outstanding--;
    free(b);
}

static int64_t h_now(void *ctx)
{
    return ((host_t *)ctx)->now;
}

/* 0x5A 0x5B 0x5C ...: recognisable, and not what OpenSSL would give */
static int h_random(void *ctx, uint8_t *buf, size_t len)
{
    ((host_t *)ctx)->randoms++;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(0x5A + i);
    return 0;
}

static void host_init(host_t *h, omadm_platform_t *p)
{
    memset(h, 0, sizeof *h);
    h->now = T_NOW; /* 2001: no clock of this machine says that */
    memset(p, 0, sizeof *p);
    p->ctx = h;
    p->alloc = h_alloc;
    p->realloc = h_realloc;
    p->free = h_free;
    p->now = h_now;
    p->random = h_random;
}

/* ---- the store directory ------------------------------------------------- */

static char g_tmp[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* The test PKI's root and intermediate (tests/data/pki). */
typedef struct tcert {
    char thumb[41];
    char *b64;
} tcert_t;

static tcert_t g_root, g_inter;
static void load(tcert_t *c, const char *name);

static int group_setup(void **state)
{
    (void)state;
    load(&g_root, "root");
    load(&g_inter, "inter");
    /* tmpfs when there is one: every run syncs the store twice */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_tmp, sizeof g_tmp, "%s/test-store-alloc.XXXXXX", base);
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(g_root.b64);
    free(g_inter.b64);
    return 0;
}

/* Every file of the store (but the lock) with its content, in name order:
 * two stores hold the same data when their listings are equal. */
typedef struct listing {
    char *text;
    size_t len, cap;
} listing_t;

static void lappend(listing_t *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->text = realloc(l->text, l->cap);
        assert_non_null(l->text);
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len] = 0;
}

static void list_dir(listing_t *l, const char *dir, const char *rel)
{
    struct dirent **v = NULL;
    char p[4096], r[4096];
    int n = scandir(dir, &v, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = v[i]->d_name;
        if (strcmp(name, ".") && strcmp(name, "..") && strcmp(name, "lock")) {
            snprintf(p, sizeof p, "%s/%s", dir, name);
            snprintf(r, sizeof r, "%s%s", rel, name);
            struct stat st;
            assert_int_equal(lstat(p, &st), 0);
            lappend(l, r, strlen(r));
            if (S_ISDIR(st.st_mode)) {
                lappend(l, "/\n", 2);
                strcat(r, "/");
                list_dir(l, p, r);
            } else {
                size_t len = 0;
                uint8_t *data = tpki_slurp(p, &len);
                assert_non_null(data);
                lappend(l, "\n", 1);
                lappend(l, (const char *)data, len);
                lappend(l, "\n", 1);
                free(data);
            }
        }
        free(v[i]);
    }
    free(v);
}

static char *store_listing(const char *dir)
{
    listing_t l = {0};
    lappend(&l, "", 0);
    list_dir(&l, dir, "");
    return l.text;
}

/* ---- certificates and messages ------------------------------------------- */

static void load(tcert_t *c, const char *name)
{
    char file[32];
    size_t len = 0;
    if (tpki_thumb(name, c->thumb))
        abort();
    snprintf(file, sizeof file, "%s.b64", name);
    c->b64 = (char *)tpki_read(file, &len);
    if (!c->b64)
        abort();
    while (len && (c->b64[len - 1] == '\n' || c->b64[len - 1] == '\r'))
        c->b64[--len] = 0;
}

/* ---- the trust stores as OpenSSL sees them -------------------------------- */

/* Is x among the certificates OpenSSL finds for its subject through the
 * CApath directory capath (X509_LOOKUP_hash_dir, as `openssl verify
 * -CApath` looks them up)? */
static bool in_capath(const char *capath, X509 *x)
{
    X509_STORE *st = X509_STORE_new();
    X509_LOOKUP *lu = st ? X509_STORE_add_lookup(st, X509_LOOKUP_hash_dir()) : NULL;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(lu);
    assert_non_null(ctx);
    assert_int_equal(X509_LOOKUP_add_dir(lu, capath, X509_FILETYPE_PEM), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, NULL, NULL), 1);
    STACK_OF(X509) *sk = X509_STORE_CTX_get1_certs(ctx, X509_get_subject_name(x));
    bool found = false;
    for (int i = 0; sk && i < sk_X509_num(sk); i++)
        found = found || !X509_cmp(sk_X509_value(sk, i), x);
    sk_X509_pop_free(sk, X509_free);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return found;
}

/* Is x one of the PEM blocks of the bundle file? */
static bool in_bundle(const char *bundle, X509 *x)
{
    BIO *b = BIO_new_file(bundle, "r");
    bool found = false;
    X509 *y;
    assert_non_null(b);
    while (!found && (y = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        found = !X509_cmp(y, x);
        X509_free(y);
    }
    BIO_free(b);
    ERR_clear_error();
    return found;
}

/* For each trust store the test uses and each test certificate: OpenSSL
 * finds it through the CApath directory and in the bundle exactly when the
 * store holds its record (a deleted CA is no longer trusted, an added one
 * is).  Returns the number of disagreements, each on stderr. */
static int trust_view_problems(const char *dir)
{
    static const char *const stores[] = {"root", "ca"};
    static const char *const certs[] = {"root", "inter", "leaf", "root2"};
    int problems = 0;
    for (size_t c = 0; c < sizeof certs / sizeof certs[0]; c++) {
        char file[32], thumb[41], p[512], capath[512], bundle[512];
        size_t len = 0;
        snprintf(file, sizeof file, "%s.der", certs[c]);
        uint8_t *der = tpki_read(file, &len);
        const unsigned char *d = der;
        X509 *x = der ? d2i_X509(NULL, &d, (long)len) : NULL;
        assert_non_null(x);
        assert_int_equal(tpki_thumb(certs[c], thumb), 0);
        for (size_t k = 0; k < sizeof stores / sizeof stores[0]; k++) {
            snprintf(p, sizeof p, "%s/certs/%s/%s", dir, stores[k], thumb);
            snprintf(capath, sizeof capath, "%s/trust/%s", dir, stores[k]);
            snprintf(bundle, sizeof bundle, "%s/trust/%s.pem", dir, stores[k]);
            bool held = access(p, F_OK) == 0;
            bool by_capath = in_capath(capath, x), by_bundle = in_bundle(bundle, x);
            if (held != by_capath || held != by_bundle) {
                fprintf(stderr, "  %s in %s: record %s, CApath %s, bundle %s\n", certs[c],
                        stores[k], held ? "yes" : "no", by_capath ? "yes" : "no",
                        by_bundle ? "yes" : "no");
                problems++;
            }
        }
        X509_free(x);
        free(der);
    }
    return problems;
}

#define CS "./Vendor/MSFT/CertificateStore"

/* The seed: the root in Root/System. */
static char *seed_body(void)
{
    return t_strf(T_ADD("2", CS "/Root/System/%s/EncodedCertificate", "b64", "%s"),
                  g_root.thumb, g_root.b64);
}

/* Add the intermediate, Get the root (its encoding, its IssuedBy, the
 * store's list), Delete the root; as a plain sequence or in an Atomic. */
static char *test_body(bool atomic)
{
    char *add = t_strf(T_ADD("3", CS "/CA/System/%s/EncodedCertificate", "b64", "%s"),
                       g_inter.thumb, g_inter.b64);
    char *del = t_strf(T_DELETE("7", CS "/Root/System/%s"), g_root.thumb);
    char *gets = t_strf(T_GET("4", CS "/Root/System/%s/EncodedCertificate")
                        T_GET("5", CS "/Root/System/%s/IssuedBy")
                        T_GET("6", CS "/Root/System?list=Struct"),
                        g_root.thumb, g_root.thumb);
    char *body = atomic ? t_strf("%s<Atomic><CmdID>2</CmdID>%s%s</Atomic>", gets, add, del)
                        : t_strf("%s%s%s", add, gets, del);
    free(add);
    free(del);
    free(gets);
    return body;
}

/* ---- one run --------------------------------------------------------------- */

typedef struct run {
    omadm_certstore_t *cs;
    omadm_t *dm;
    omadm_error_t err;     /* of the step that failed, or of omadm_process */
    const char *stage;     /* "open", "new", "register"; NULL once processed */
    t_reply_t reply;
    int code[8];           /* status of CmdID 1..7 in the reply, -1 when none */
} run_t;

/* open + new + register + process on plat; r->stage names what failed. */
static void run_message(run_t *r, const char *dir, const omadm_platform_t *plat,
                        const omadm_platform_t *store_plat, int msg_id, const char *body)
{
    const char *why = NULL;
    memset(r, 0, sizeof *r);
    t_reply_init(&r->reply);
    for (int i = 0; i < 8; i++)
        r->code[i] = -1;
    r->stage = "open";
    if ((r->err = omadm_certstore_open(dir, store_plat, &r->cs, &why)) != OMADM_OK) {
        assert_null(r->cs);
        return;
    }
    r->stage = "new";
    if ((r->err = omadm_new(NULL, plat, NULL, &r->dm)) != OMADM_OK) {
        assert_null(r->dm);
        return;
    }
    r->stage = "register";
    if ((r->err = omadm_certstore_register(r->dm, r->cs)) != OMADM_OK)
        return;
    r->stage = "process";
    char *msg = t_message("1", msg_id, "https://srv.example/dm", body, true);
    uint8_t *reply = NULL;
    size_t len = 0;
    r->err = omadm_process(r->dm, (const uint8_t *)msg, strlen(msg), &reply, &len);
    free(msg);
    if (r->err == OMADM_OK) {
        assert_non_null(reply);
        assert_int_equal(t_reply_parse(&r->reply, reply, len), 0);
        for (int i = 1; i < 8; i++) {
            char ref[4];
            snprintf(ref, sizeof ref, "%d", i);
            r->code[i] = t_code(&r->reply, ref);
        }
    } else {
        assert_null(reply);
    }
    omadm_buffer_free(r->dm, reply);
    r->stage = NULL;
}

static void run_close(run_t *r)
{
    omadm_free(r->dm);
    omadm_certstore_close(r->cs);
    t_reply_free(&r->reply);
    r->dm = NULL;
    r->cs = NULL;
}

/* The fixed clock and randomness of the host, without failures: so that
 * every store made the same way is the same, byte for byte. */
static void quiet_host(host_t *h, omadm_platform_t *p)
{
    host_init(h, p);
}

/* A fresh store holding the seed; its listing. */
static char *fresh_store(const char *dir)
{
    host_t h;
    omadm_platform_t p;
    quiet_host(&h, &p);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    run_t r;
    char *body = seed_body();
    run_message(&r, dir, &p, &p, 1, body);
    free(body);
    assert_int_equal(r.err, OMADM_OK);
    assert_int_equal(r.code[2], 200);
    run_close(&r);
    assert_int_equal(h.outstanding, 0);
    return store_listing(dir);
}

/* The four states the test message can leave: the seed, the seed with the
 * intermediate added, with the root deleted, with both.  A store is in one
 * of them as a whole or it is half-written. */
enum { S_SEED, S_ADDED, S_DELETED, S_BOTH, S_N };

typedef struct states {
    char *listing[S_N];
} states_t;

static char *state_after(const char *dir, const char *body)
{
    free(fresh_store(dir));
    host_t h;
    omadm_platform_t p;
    quiet_host(&h, &p);
    run_t r;
    run_message(&r, dir, &p, &p, 2, body);
    assert_int_equal(r.err, OMADM_OK);
    run_close(&r);
    return store_listing(dir);
}

static void states_make(states_t *st, const char *dir, bool atomic)
{
    st->listing[S_SEED] = fresh_store(dir);
    char *add = t_strf(T_ADD("3", CS "/CA/System/%s/EncodedCertificate", "b64", "%s"),
                       g_inter.thumb, g_inter.b64);
    char *del = t_strf(T_DELETE("7", CS "/Root/System/%s"), g_root.thumb);
    char *both = test_body(atomic);
    st->listing[S_ADDED] = state_after(dir, add);
    st->listing[S_DELETED] = state_after(dir, del);
    st->listing[S_BOTH] = state_after(dir, both);
    free(add);
    free(del);
    free(both);
    for (int i = 0; i < S_N; i++)
        for (int j = 0; j < i; j++)
            assert_string_not_equal(st->listing[i], st->listing[j]);
}

static void states_free(states_t *st)
{
    for (int i = 0; i < S_N; i++)
        free(st->listing[i]);
}

static int state_of(const states_t *st, const char *listing)
{
    for (int i = 0; i < S_N; i++)
        if (!strcmp(st->listing[i], listing))
            return i;
    return -1;
}

/* The first line where two listings differ, on stderr. */
static void diff_lines(const char *a, const char *b)
{
    size_t i = 0, line = 0;
    while (a[i] && a[i] == b[i])
        i++;
    size_t start = i;
    while (start && a[start - 1] != '\n')
        start--;
    for (size_t k = 0; k < start; k++)
        line += a[k] == '\n';
    fprintf(stderr, "  store differs from the seed at line %zu:\n  seed: %.80s\n  now:  %.80s\n",
            line + 1, a + start, b + start);
}

static void print_problem(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "  store_check: %s\n", problem);
}

typedef struct sweep_stats {
    long runs, failed_open, failed_new, failed_register, failed_process, replies;
    long changed, unchanged;
    long failed_but_durable; /* a message that failed after its batch was durable */
} sweep_stats_t;

/* What a run under failure left: a consistent store in one of the states
 * the message allows; after a reply, the one its statuses say. */
static void check_after(const run_t *r, const char *dir, const states_t *states, bool atomic,
                        long n, sweep_stats_t *st)
{
    store_t *s = NULL;
    const char *why = NULL;
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    if (store_check(s, 0, print_problem, NULL))
        fail_msg("N=%ld: the store is inconsistent", n);
    store_close(s);
    if (trust_view_problems(dir))
        fail_msg("N=%ld: OpenSSL's view of the trust stores is not the store's", n);
    char *after = store_listing(dir);
    int got = state_of(states, after);
    if (got < 0) {
        diff_lines(states->listing[S_SEED], after);
        fail_msg("N=%ld: the store is in none of the states the message allows", n);
    }
    free(after);
    bool replied = !r->stage && r->err == OMADM_OK;
    if (replied && atomic) {
        if (got != (r->code[2] == 200 ? S_BOTH : S_SEED))
            fail_msg("N=%ld: the Atomic answered %d, the store is in state %d", n, r->code[2],
                     got);
    } else if (replied) {
        int want = (r->code[3] == 200 ? 1 : 0) + (r->code[7] == 200 ? 2 : 0);
        if (got != want)
            fail_msg("N=%ld: Add %d, Delete %d, but the store is in state %d", n, r->code[3],
                     r->code[7], got);
    } else if (r->stage && got != S_SEED) {
        fail_msg("N=%ld: %s failed, yet the store changed", n, r->stage);
    } else if (atomic && got != S_SEED && got != S_BOTH) {
        fail_msg("N=%ld: half of an Atomic in the store (state %d)", n, got);
    }
    if (!replied && got != S_SEED)
        st->failed_but_durable++;
    if (got == S_SEED)
        st->unchanged++;
    else
        st->changed++;
}

/* A run on the hooks without failures (every command 200); the number of
 * allocation calls it made through the table.  store_hooked: the store is
 * opened on the table too (else on the defaults). */
static long reference_calls(const char *dir, bool atomic, host_t *h, const omadm_platform_t *p,
                            bool store_hooked)
{
    free(fresh_store(dir));
    char *body = test_body(atomic);
    run_t r;
    h->calls = 0;
    run_message(&r, dir, p, store_hooked ? p : NULL, 2, body);
    free(body);
    assert_null(r.stage);
    assert_int_equal(r.err, OMADM_OK);
    for (int i = atomic ? 2 : 3; i <= 7; i++)
        assert_int_equal(r.code[i], 200);
    long calls = h->calls;
    run_close(&r);
    assert_int_equal(h->outstanding, 0);
    return calls;
}

static void sweep(bool atomic, bool persistent)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/store", g_tmp);
    host_t h;
    omadm_platform_t p;
    host_init(&h, &p);

    /* the store's and the CSPs' allocations go through the hook: with the
     * store on the same table, the hook sees more calls than the engine
     * makes alone */
    long engine_only = reference_calls(dir, atomic, &h, &p, false);
    long all = reference_calls(dir, atomic, &h, &p, true);
    if (all - engine_only < 50)
        fail_msg("the store and the CSPs made only %ld allocation calls through the table",
                 all - engine_only);

    states_t states;
    states_make(&states, dir, atomic);
    sweep_stats_t st = {0};
    char *body = test_body(atomic);
    long n;
    for (n = 1; n < 100000; n++) {
        free(fresh_store(dir));
        host_init(&h, &p);
        h.fail_at = n;
        h.persistent = persistent;
        run_t r;
        run_message(&r, dir, &p, &p, 2, body);
        h.fail_at = 0;
        st.runs++;
        if (r.stage && !strcmp(r.stage, "open"))
            st.failed_open++;
        else if (r.stage && !strcmp(r.stage, "new"))
            st.failed_new++;
        else if (r.stage)
            st.failed_register++;
        else if (r.err != OMADM_OK)
            st.failed_process++;
        else
            st.replies++;
        if (r.stage && r.err != OMADM_E_NOMEM && r.err != OMADM_E_STORAGE)
            fail_msg("N=%ld: %s failed with \"%s\"", n, r.stage, omadm_strerror(r.err));
        if (!r.stage && r.err != OMADM_OK && r.err != OMADM_E_NOMEM &&
            r.err != OMADM_E_STORAGE && r.err != OMADM_E_ENCODE)
            fail_msg("N=%ld: omadm_process failed with \"%s\"", n, omadm_strerror(r.err));
        run_close(&r);
        if (h.outstanding != 0)
            fail_msg("N=%ld: %ld blocks of the host allocator outstanding after close", n,
                     h.outstanding);
        check_after(&r, dir, &states, atomic, n, &st);
        if (h.failures == 0)
            break; /* the N-th call was never made: everything ran */
    }
    free(body);
    states_free(&states);
    assert_true(n < 100000);
    print_message("%s%s: %ld runs (%ld calls, %ld of them by the store and the CSPs); failed: "
                  "open %ld, new %ld, register %ld, process %ld; replies %ld; store changed "
                  "%ld (%ld by a message that failed after its batch was durable), unchanged "
                  "%ld\n",
                  atomic ? "Atomic" : "sequence", persistent ? ", persistent" : "", st.runs,
                  n - 1, all - engine_only, st.failed_open, st.failed_new, st.failed_register,
                  st.failed_process, st.replies, st.changed, st.failed_but_durable,
                  st.unchanged);
    assert_true(st.failed_open > 0);
    assert_true(st.failed_process > 0);
    assert_true(st.changed > 0);
    assert_true(st.unchanged > 0);
}

static void test_sequence_once(void **state)
{
    (void)state;
    sweep(false, false);
}

static void test_sequence_persistent(void **state)
{
    (void)state;
    sweep(false, true);
}

static void test_atomic_once(void **state)
{
    (void)state;
    sweep(true, false);
}

static void test_atomic_persistent(void **state)
{
    (void)state;
    sweep(true, true);
}

/* ---- OpenSSL's own allocations during a flush ------------------------------ */

/* OpenSSL's memory functions (set in main, before its first allocation):
 * while armed, the fail_at-th call fails. */
static struct {
    long calls, fail_at, failures;
} g_ossl;

static bool ossl_should_fail(void)
{
    if (!g_ossl.fail_at)
        return false;
    if (++g_ossl.calls != g_ossl.fail_at)
        return false;
    g_ossl.failures++;
    return true;
}

static void *o_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return ossl_should_fail() ? NULL : malloc(n);
}

static void *o_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return ossl_should_fail() ? NULL : realloc(p, n);
}

static void o_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

static void put_cert(store_t *s, const char *store, const char *name)
{
    char file[32];
    store_rec_t rec = {.server = "srv", .added = T_NOW};
    snprintf(file, sizeof file, "%s.der", name);
    rec.der = tpki_read(file, &rec.der_len);
    assert_non_null(rec.der);
    assert_int_equal(tpki_thumb(name, rec.thumb), 0);
    rec.name = rec.thumb;
    assert_int_equal(store_put(s, store, &rec), 0);
    free(rec.der);
}

static void del_cert(store_t *s, const char *store, const char *name)
{
    char thumb[41];
    assert_int_equal(tpki_thumb(name, thumb), 0);
    assert_int_equal(store_del(s, store, thumb), 0);
}

/* The seed: the root in Root/System, the intermediate in CA/System. */
static void seed_store(const char *dir)
{
    store_t *s = NULL;
    const char *why = NULL;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    assert_int_equal(store_begin(s), 0);
    put_cert(s, "root", "root");
    put_cert(s, "ca", "inter");
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_flush(s), 0);
    store_close(s);
}

/* The batch: a second root added, the intermediate (a CA) deleted.  (Each
 * certificate parsed costs OpenSSL about a thousand allocations, and the
 * sweep runs the whole flush for each: two are enough to reach every
 * path.) */
static void stage_batch(store_t *s)
{
    assert_int_equal(store_begin(s), 0);
    put_cert(s, "root", "root2");
    del_cert(s, "ca", "inter");
    assert_int_equal(store_commit(s), 0);
}

/* store_flush of a batch that deletes CAs from trust stores, with OpenSSL's
 * N-th allocation failing, for N = 1, 2, ... until a flush needs no
 * failure: after each, the store is consistent and either untouched
 * (flush failed) or holds the whole batch (flush succeeded), and OpenSSL
 * finds a deleted CA neither through the CApath directory nor in the
 * bundle.  A subject hash that cannot be computed for lack of memory once
 * let the record go while its CApath file and bundle block stayed. */
static void test_flush_openssl_failures(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/ossl", g_tmp);
    store_t *s = NULL;
    const char *why = NULL;

    /* the two states a flush may leave */
    seed_store(dir);
    char *seed = store_listing(dir);
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    stage_batch(s);
    assert_int_equal(store_flush(s), 0);
    store_close(s);
    char *after = store_listing(dir);
    assert_string_not_equal(seed, after);
    assert_int_equal(trust_view_problems(dir), 0);

    long n, failed = 0, applied = 0;
    for (n = 1; n < 100000; n++) {
        seed_store(dir);
        assert_int_equal(store_open(dir, NULL, &s, &why), 0);
        stage_batch(s);
        g_ossl.calls = g_ossl.failures = 0;
        g_ossl.fail_at = n;
        int rc = store_flush(s);
        g_ossl.fail_at = 0;
        ERR_clear_error();
        store_close(s);
        assert_int_equal(store_open(dir, NULL, &s, &why), 0); /* recovers a durable batch */
        if (store_check(s, 0, print_problem, NULL))
            fail_msg("N=%ld: the store is inconsistent after a flush that returned %d", n, rc);
        store_close(s);
        char *now = store_listing(dir);
        if (strcmp(now, rc ? seed : after)) {
            diff_lines(rc ? seed : after, now);
            fail_msg("N=%ld: the flush returned %d, but the store is not in that state", n, rc);
        }
        free(now);
        if (trust_view_problems(dir))
            fail_msg("N=%ld: OpenSSL's view of the trust stores is not the store's", n);
        if (rc)
            failed++;
        else
            applied++;
        if (!g_ossl.failures)
            break;
    }
    assert_true(n < 100000);
    print_message("flush under OpenSSL allocation failures: %ld runs (%ld OpenSSL calls); "
                  "failed %ld, applied %ld\n",
                  n, n - 1, failed, applied);
    assert_true(failed > 0);
    free(seed);
    free(after);
}

/* The record an Add writes carries the table's clock, not the machine's. */
static void test_added_is_the_hosts_time(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/clock", g_tmp);
    host_t h;
    omadm_platform_t p;
    host_init(&h, &p);
    h.now = 1234567890;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    char *body = seed_body();
    run_t r;
    run_message(&r, dir, &p, &p, 1, body);
    free(body);
    assert_null(r.stage);
    assert_int_equal(r.err, OMADM_OK);
    assert_int_equal(r.code[2], 200);
    store_t *s = r.cs->store;
    store_rec_t rec;
    assert_int_equal(store_get(s, "root", g_root.thumb, &rec), 0);
    assert_int_equal(rec.added, 1234567890);
    store_rec_free(s, &rec);
    run_close(&r);
    assert_int_equal(h.outstanding, 0);
    /* and so does the file */
    char file[256];
    snprintf(file, sizeof file, "%s/certs/root/%s", dir, g_root.thumb);
    char *text = (char *)tpki_slurp(file, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "\nadded 1234567890\n"));
    free(text);
}

/* SCEP nonces and the request signer's serial come from the table's
 * random hook; every object lives on the table's memory. */
static void test_scep_randomness_is_the_hosts(void **state)
{
    (void)state;
    host_t h;
    omadm_platform_t p;
    host_init(&h, &p);
    const char *why = NULL;
    scep_key_t *key = NULL;
    scep_cert_t *signer = NULL;
    scep_buf_t csr = {0}, msg = {0};
    assert_int_equal(scep_keygen_rsa(&p, 1024, &key, &why), SCEP_OK);
    assert_int_equal(scep_self_signed(&p, key, "CN=host random", SCEP_DIGEST_SHA256, T_NOW,
                                      &signer, &why),
                     SCEP_OK);
    unsigned after_signer = h.randoms;
    assert_true(after_signer >= 1);
    /* the serial: the hook's bytes, made positive and 8 bytes long */
    scep_buf_t der = {0};
    assert_int_equal(scep_cert_to_der(&p, signer, &der, &why), SCEP_OK);
    const unsigned char *d = der.data;
    X509 *x = d2i_X509(NULL, &d, (long)der.len);
    assert_non_null(x);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    const unsigned char want[8] = {0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x61};
    assert_int_equal(ASN1_STRING_length(serial), 8);
    assert_memory_equal(ASN1_STRING_get0_data(serial), want, 8);
    X509_free(x);
    scep_buf_free(&p, &der);

    scep_csr_params_t cp = {.subject = "CN=host random", .digest = SCEP_DIGEST_SHA256};
    assert_int_equal(scep_csr(&p, key, &cp, &csr, &why), SCEP_OK);
    scep_msg_params_t mp = {
        .signer_cert = signer,
        .signer_key = key,
        .recipient = signer,
        .cipher = SCEP_CIPHER_AES128_CBC,
        .digest = SCEP_DIGEST_SHA256,
        .transaction_id = "TX1",
    };
    uint8_t nonce[SCEP_NONCE_LEN];
    assert_int_equal(scep_pkcsreq(&p, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_OK);
    assert_true(h.randoms > after_signer);
    for (size_t i = 0; i < SCEP_NONCE_LEN; i++)
        assert_int_equal(nonce[i], 0x5A + i);
    scep_buf_free(&p, &msg);
    scep_buf_free(&p, &csr);
    scep_cert_free(&p, signer);
    scep_key_free(&p, key);
    assert_int_equal(h.outstanding, 0);
    assert_true(h.calls > 0);
}

int main(void)
{
    /* before OpenSSL's first allocation, or it refuses */
    if (!CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free)) {
        fprintf(stderr, "test_store_alloc: cannot set OpenSSL's memory functions\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_openssl_failures),
        cmocka_unit_test(test_added_is_the_hosts_time),
        cmocka_unit_test(test_scep_randomness_is_the_hosts),
        cmocka_unit_test(test_sequence_once),
        cmocka_unit_test(test_sequence_persistent),
        cmocka_unit_test(test_atomic_once),
        cmocka_unit_test(test_atomic_persistent),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
