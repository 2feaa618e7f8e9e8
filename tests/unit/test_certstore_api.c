/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_certstore_api.c - what a host reads from the certificate store
 * through omadm_certstore.h (csp/certstore_api.c), on a real store in a
 * fresh /tmp directory filled through the store's internal API with the
 * test PKI of tests/data/pki:
 *
 *   - the stores (by index, by id or label) and thumbprint parsing (plain,
 *     lower case, the colon and space forms, a whole `openssl x509
 *     -fingerprint` line; refusals);
 *   - list and show: every field, the store filter, a certificate in two
 *     stores, stopping early, a store with a key and one without; records
 *     that cannot be read: skipped, and reported by the checked listing;
 *   - exports: one certificate as PEM and DER, a whole store as PEM (also
 *     empty);
 *   - the CApath directory and bundle of trust stores;
 *   - client identities by thumbprint and by enrollment ID: PEM that
 *     OpenSSL loads and whose key matches the certificate; a certificate
 *     without a key; unknown thumbprints and enrollments; an enrollment
 *     without a certificate, or whose certificate was deleted;
 *   - the check, with and without the repair flag;
 *   - host buffers: freed through the store's allocator, wiped first, also
 *     after the store is closed;
 *   - NULL arguments and unknown stores everywhere.
 */
#include <ctype.h>
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
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "csp/enroll.h"
#include "platform.h"
#include "store/cert.h"
#include "store/store.h"
#include "support_dir.h"
#include "support_dm.h"
#include "support_pki.h"

/* ---- fixture ---- */

typedef struct tcert {
    uint8_t *der;
    size_t der_len;
    char thumb[41];
    char *pem;         /* as cert_pem writes it */
    size_t pem_len;
} tcert_t;

enum { ROOT, INTER, LEAF, N_CERTS };
static const char *const cert_names[N_CERTS] = {"root", "inter", "leaf"};

typedef struct fx {
    char dir[64];
    omadm_certstore_t *cs;
    tcert_t c[N_CERTS];
    char *leaf_key;    /* PEM */
} fx_t;

/* The default platform table: what the test's own buffers come from. */
static const omadm_platform_t *defplat(void)
{
    static omadm_platform_t p;
    if (!p.alloc)
        plat_init(&p, NULL);
    return &p;
}

static void load_cert(tcert_t *c, const char *name)
{
    char file[32];
    snprintf(file, sizeof file, "%s.der", name);
    c->der = tpki_read(file, &c->der_len);
    assert_non_null(c->der);
    assert_int_equal(tpki_thumb(name, c->thumb), 0);
    c->pem = cert_pem(defplat(), c->der, c->der_len, &c->pem_len);
    assert_non_null(c->pem);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-certstore-api.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, &why), OMADM_OK);
    for (int i = 0; i < N_CERTS; i++)
        load_cert(&f->c[i], cert_names[i]);
    size_t len;
    f->leaf_key = (char *)tpki_read("leaf.key", &len);
    assert_non_null(f->leaf_key);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    omadm_certstore_close(f->cs);
    tdir_rm(f->dir);
    for (int i = 0; i < N_CERTS; i++) {
        free(f->c[i].der);
        plat_free(defplat(), f->c[i].pem);
    }
    free(f->leaf_key);
    free(f);
    return 0;
}

static store_t *st(fx_t *f)
{
    return f->cs->store;
}

/* Certificate i into store (name as a server might spell it), with key
 * when not NULL, made durable. */
static void put(fx_t *f, const char *store, int i, const char *key)
{
    char lower[41];
    for (int k = 0; k < 41; k++)
        lower[k] = (char)(f->c[i].thumb[k] >= 'A' && f->c[i].thumb[k] <= 'F'
                              ? f->c[i].thumb[k] + 32
                              : f->c[i].thumb[k]);
    store_rec_t r = {.name = lower, .server = "srv-1", .added = 1700000000,
                     .der = f->c[i].der, .der_len = f->c[i].der_len};
    memcpy(r.thumb, f->c[i].thumb, sizeof r.thumb);
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(store_put(st(f), store, &r), 0);
    if (key)
        assert_int_equal(store_put_key(st(f), store, r.thumb, key), 0);
    assert_int_equal(store_commit(st(f)), 0);
    assert_int_equal(store_flush(st(f)), 0);
}

static void del(fx_t *f, const char *store, int i)
{
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(store_del(st(f), store, f->c[i].thumb), 0);
    assert_int_equal(store_commit(st(f)), 0);
    assert_int_equal(store_flush(st(f)), 0);
}

/* An enrollment record (ns, id) that installed thumb (NULL: nothing yet). */
static void enrollment(fx_t *f, enr_ns_t ns, const char *id, const char *thumb)
{
    enrollment_t e;
    memset(&e, 0, sizeof e);
    e.ns = ns;
    assert_int_equal(enr_set(store_platform(st(f)), &e.id, id), 0);
    e.phase = thumb ? PH_DONE : PH_PENDING;
    e.status = thumb ? ST_INSTALLED : ST_PENDING;
    assert_int_equal(enr_set(store_platform(st(f)), &e.thumb, thumb), 0);
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(enr_save(st(f), &e), 0);
    assert_int_equal(store_commit(st(f)), 0);
    assert_int_equal(store_flush(st(f)), 0);
    enr_free(store_platform(st(f)), &e);
}

/* ---- collecting certificates ---- */

#define MAX_SEEN 8

typedef struct seen {
    int n;
    int stop_after;    /* return 1 after this many (0: never) */
    struct {
        char store[32], label[32], thumb[41], name[41], subject[128], issuer[128];
        char valid_from[24], valid_to[24], template_name[64], installed_by[32];
        int64_t installed_at;
        int has_key;
    } c[MAX_SEEN];
} seen_t;

static int collect(void *ctx, const omadm_cert_info_t *ci)
{
    seen_t *s = ctx;
    assert_true(s->n < MAX_SEEN);
    snprintf(s->c[s->n].store, sizeof s->c[s->n].store, "%s", ci->store);
    snprintf(s->c[s->n].label, sizeof s->c[s->n].label, "%s", ci->store_label);
    snprintf(s->c[s->n].thumb, sizeof s->c[s->n].thumb, "%s", ci->thumbprint);
    snprintf(s->c[s->n].name, sizeof s->c[s->n].name, "%s", ci->name);
    snprintf(s->c[s->n].subject, sizeof s->c[s->n].subject, "%s", ci->subject);
    snprintf(s->c[s->n].issuer, sizeof s->c[s->n].issuer, "%s", ci->issuer);
    snprintf(s->c[s->n].valid_from, sizeof s->c[s->n].valid_from, "%s", ci->valid_from);
    snprintf(s->c[s->n].valid_to, sizeof s->c[s->n].valid_to, "%s", ci->valid_to);
    snprintf(s->c[s->n].template_name, sizeof s->c[s->n].template_name, "%s", ci->template_name);
    snprintf(s->c[s->n].installed_by, sizeof s->c[s->n].installed_by, "%s", ci->installed_by);
    s->c[s->n].installed_at = ci->installed_at;
    s->c[s->n].has_key = ci->has_key;
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static int never(void *ctx, const omadm_cert_info_t *ci)
{
    (void)ctx;
    (void)ci;
    fail_msg("no certificate expected");
    return 0;
}

/* Index of thumb in s, or -1. */
static int find_seen(const seen_t *s, const char *store, const char *thumb)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->c[i].thumb, thumb) && !strcmp(s->c[i].store, store))
            return i;
    return -1;
}

/* ---- the stores and thumbprints ---- */

static void test_kinds(void **state)
{
    (void)state;
    omadm_certstore_kind_t k;
    size_t n = 0, trust = 0;
    while (omadm_certstore_kind(n, &k) == OMADM_OK) {
        assert_non_null(k.id);
        assert_non_null(k.label);
        omadm_certstore_kind_t again;
        assert_int_equal(omadm_certstore_kind_find(k.label, &again), OMADM_OK);
        assert_string_equal(again.id, k.id);
        trust += k.trust != 0;
        n++;
    }
    assert_int_equal(n, 11);
    assert_int_equal(trust, 9); /* all but My/User and My/System */
    assert_int_equal(omadm_certstore_kind(n, &k), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_kind(0, NULL), OMADM_E_INVALID_ARG);

    assert_int_equal(omadm_certstore_kind_find("MY/system", &k), OMADM_OK);
    assert_string_equal(k.id, "my-system");
    assert_string_equal(k.label, "My/System");
    assert_int_equal(k.trust, 0);
    assert_int_equal(omadm_certstore_kind_find("ROOT", &k), OMADM_OK);
    assert_string_equal(k.label, "Root/System");
    assert_int_equal(k.trust, 1);
    assert_int_equal(omadm_certstore_kind_find("root", NULL), OMADM_OK);
    assert_int_equal(omadm_certstore_kind_find("nosuch", &k), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_kind_find("", &k), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_kind_find(NULL, &k), OMADM_E_INVALID_ARG);
}

static void test_thumbprint_parse(void **state)
{
    (void)state;
    static const char want[] = "ADC1911E726D0E000C28A1FD4F864417303F3208";
    static const char *const good[] = {
        "ADC1911E726D0E000C28A1FD4F864417303F3208",
        "adc1911e726d0e000c28a1fd4f864417303f3208",
        "AD:C1:91:1E:72:6D:0E:00:0C:28:A1:FD:4F:86:44:17:30:3F:32:08",
        "ad c1 91 1e 72 6d 0e 00 0c 28 a1 fd 4f 86 44 17 30 3f 32 08",
        "sha1 Fingerprint=AD:C1:91:1E:72:6D:0E:00:0C:28:A1:FD:4F:86:44:17:30:3F:32:08",
        "SHA1 Fingerprint=AD:C1:91:1E:72:6D:0E:00:0C:28:A1:FD:4F:86:44:17:30:3F:32:08",
    };
    static const char *const bad[] = {
        "", "ADC1911E726D0E000C28A1FD4F864417303F320",    /* 39 */
        "ADC1911E726D0E000C28A1FD4F864417303F32080",      /* 41 */
        "ADC1911E726D0E000C28A1FD4F864417303F320G",       /* not hex */
        "ADC1911E726D0E000C28A1FD4F864417303F320-8",
        "sha256 Fingerprint=AD:C1:91:1E:72:6D:0E:00:0C:28:A1:FD:4F:86:44:17:30:3F:32:08",
        "::::",
    };
    char out[OMADM_THUMBPRINT_LEN + 1];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(omadm_certstore_thumbprint_parse(good[i], out), OMADM_OK);
        assert_string_equal(out, want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(omadm_certstore_thumbprint_parse(bad[i], out), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_thumbprint_parse(NULL, out), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_thumbprint_parse(want, NULL), OMADM_E_INVALID_ARG);
}

static void test_dir(void **state)
{
    fx_t *f = *state;
    assert_string_equal(omadm_certstore_dir(f->cs), f->dir);
    assert_null(omadm_certstore_dir(NULL));
}

/* ---- list and show ---- */

static void test_list(void **state)
{
    fx_t *f = *state;
    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, NULL, never, NULL), OMADM_OK);
    assert_int_equal(omadm_certstore_list(f->cs, "root", never, NULL), OMADM_OK);

    put(f, "root", ROOT, NULL);
    put(f, "ca", INTER, NULL);
    put(f, "my-system", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 3);
    /* in omadm_certstore_kind order: root, ca, ..., my-system */
    assert_string_equal(s.c[0].store, "root");
    assert_string_equal(s.c[1].store, "ca");
    assert_string_equal(s.c[2].store, "my-system");

    int r = find_seen(&s, "root", f->c[ROOT].thumb);
    assert_int_equal(r, 0);
    assert_string_equal(s.c[r].label, "Root/System");
    assert_string_equal(s.c[r].subject, "C=DE, O=Conformance Test PKI, CN=Conformance Root");
    assert_string_equal(s.c[r].issuer, s.c[r].subject);
    assert_string_equal(s.c[r].valid_from, "2025-01-01T00:00:00Z");
    assert_string_equal(s.c[r].valid_to, "2045-01-01T00:00:00Z");
    assert_string_equal(s.c[r].template_name, "");
    assert_string_equal(s.c[r].installed_by, "srv-1");
    assert_int_equal(s.c[r].installed_at, 1700000000);
    assert_int_equal(s.c[r].has_key, 0);
    /* stored under a lower-case spelling (the record keeps it), listed under
     * the upper-case thumbprint, as the tree lists it (Windows does) */
    assert_string_equal(s.c[r].name, f->c[ROOT].thumb);

    int l = find_seen(&s, "my-system", f->c[LEAF].thumb);
    assert_int_equal(l, 2);
    assert_string_equal(s.c[l].label, "My/System");
    assert_string_equal(s.c[l].issuer, "C=DE, O=Conformance Test PKI, CN=Conformance Intermediate");
    assert_int_equal(s.c[l].has_key, 1);

    /* one store, by id or label */
    memset(&s, 0, sizeof s);
    assert_int_equal(omadm_certstore_list(f->cs, "CA/System", collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].thumb, f->c[INTER].thumb);
    assert_int_equal(omadm_certstore_list(f->cs, "my-user", never, NULL), OMADM_OK);

    /* the callback stops the walk */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);

    assert_int_equal(omadm_certstore_list(f->cs, "nosuch", never, NULL), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_list(NULL, NULL, never, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_list(f->cs, NULL, NULL, NULL), OMADM_E_INVALID_ARG);
}

/* ---- records a listing cannot read ---- */

#define MAX_SKIPPED 4

typedef struct skipped {
    int n;
    struct {
        char store[32], label[32], path[256], reason[64];
    } r[MAX_SKIPPED];
} skipped_t;

/* collect's seen_t and the skipped records, for omadm_certstore_list_checked */
typedef struct checked {
    seen_t seen;         /* first: collect takes the whole as a seen_t */
    skipped_t skipped;
} checked_t;

static void collect_skipped(void *ctx, const omadm_cert_skipped_t *rec)
{
    skipped_t *k = &((checked_t *)ctx)->skipped;
    assert_true(k->n < MAX_SKIPPED);
    snprintf(k->r[k->n].store, sizeof k->r[k->n].store, "%s", rec->store);
    snprintf(k->r[k->n].label, sizeof k->r[k->n].label, "%s", rec->store_label);
    snprintf(k->r[k->n].path, sizeof k->r[k->n].path, "%s", rec->path);
    snprintf(k->r[k->n].reason, sizeof k->r[k->n].reason, "%s", rec->reason);
    k->n++;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

/* A damaged record, one whose DER is not a certificate and a directory
 * where a record should be: omadm_certstore_list skips them silently (as it
 * always did), omadm_certstore_list_checked lists the good certificate,
 * reports each of the three with its store, file and reason, and answers
 * OMADM_E_CORRUPT. */
static void test_list_checked(void **state)
{
    fx_t *f = *state;
    checked_t c = {0};
    assert_int_equal(omadm_certstore_list_checked(f->cs, NULL, collect, collect_skipped, &c),
                     OMADM_OK);
    assert_int_equal(c.seen.n + c.skipped.n, 0);
    put(f, "root", ROOT, NULL);
    put(f, "ca", INTER, NULL);
    put(f, "my-system", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_list_checked(f->cs, NULL, collect, collect_skipped, &c),
                     OMADM_OK);
    assert_int_equal(c.seen.n, 3);
    assert_int_equal(c.skipped.n, 0);

    char root_rec[160], ca_rec[160], dir_rec[160], text[512];
    snprintf(root_rec, sizeof root_rec, "%s/certs/root/%s", f->dir, f->c[ROOT].thumb);
    snprintf(ca_rec, sizeof ca_rec, "%s/certs/ca/%s", f->dir, f->c[INTER].thumb);
    snprintf(dir_rec, sizeof dir_rec, "%s/certs/trustedpeople/%s", f->dir, f->c[ROOT].thumb);
    write_text(ca_rec, "garbage\n");
    /* a record without the listing's fields, whose DER is three zero bytes */
    snprintf(text, sizeof text,
             "omadm-cert 1\nthumb %s\nname x\nserver -\nadded 1\nbundle -1 -1\nder AAAA\n",
             f->c[ROOT].thumb);
    write_text(root_rec, text);
    assert_int_equal(mkdir(dir_rec, 0755), 0);

    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].thumb, f->c[LEAF].thumb);

    memset(&c, 0, sizeof c);
    assert_int_equal(omadm_certstore_list_checked(f->cs, NULL, collect, collect_skipped, &c),
                     OMADM_E_CORRUPT);
    assert_int_equal(c.seen.n, 1);
    assert_string_equal(c.seen.c[0].thumb, f->c[LEAF].thumb);
    assert_int_equal(c.skipped.n, 3);
    /* in omadm_certstore_kind order: root, ca, ..., trustedpeople */
    assert_string_equal(c.skipped.r[0].store, "root");
    assert_string_equal(c.skipped.r[0].label, "Root/System");
    assert_string_equal(c.skipped.r[0].path, root_rec);
    assert_string_equal(c.skipped.r[0].reason, "does not hold a certificate");
    assert_string_equal(c.skipped.r[1].store, "ca");
    assert_string_equal(c.skipped.r[1].path, ca_rec);
    assert_string_equal(c.skipped.r[1].reason, "not a certificate record");
    assert_string_equal(c.skipped.r[2].store, "trustedpeople");
    assert_string_equal(c.skipped.r[2].path, dir_rec);
    assert_string_equal(c.skipped.r[2].reason, "not a regular file, or 64 MiB or more");

    /* one store; a record cut short */
    snprintf(text, sizeof text, "omadm-cert 1\nthumb %s\nname x\nser", f->c[INTER].thumb);
    write_text(ca_rec, text);
    memset(&c, 0, sizeof c);
    assert_int_equal(omadm_certstore_list_checked(f->cs, "CA/System", never, collect_skipped, &c),
                     OMADM_E_CORRUPT);
    assert_int_equal(c.skipped.n, 1);
    assert_string_equal(c.skipped.r[0].reason, "truncated");
    /* no callback for them: still the answer */
    assert_int_equal(omadm_certstore_list_checked(f->cs, "ca", never, NULL, NULL),
                     OMADM_E_CORRUPT);
    assert_int_equal(omadm_certstore_list_checked(f->cs, "my-system", collect, NULL, &s),
                     OMADM_OK);
    assert_int_equal(omadm_certstore_list_checked(f->cs, "nosuch", never, NULL, NULL),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_list_checked(NULL, NULL, never, NULL, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_list_checked(f->cs, NULL, NULL, NULL, NULL),
                     OMADM_E_INVALID_ARG);
}

/* A record written before records kept what listings show (no
 * issued_by ... subject_hash lines) reads the same through the API and
 * through the CSP: the fields come from its DER then. */
static void test_older_record_reads_the_same(void **state)
{
    fx_t *f = *state;
    put(f, "root", ROOT, NULL);
    char rp[160];
    snprintf(rp, sizeof rp, "%s/certs/root/%s", f->dir, f->c[ROOT].thumb);
    char text[8192];
    FILE *fp = fopen(rp, "r");
    assert_non_null(fp);
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[len] = 0;
    char *cut = strstr(text, "\nissued_by ");
    assert_non_null(cut);
    cut[1] = 0; /* the derived fields are the record's last lines */
    assert_non_null(fp = fopen(rp, "w"));
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    omadm_certstore_close(f->cs);
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, &why), OMADM_OK);
    store_rec_t r;
    assert_int_equal(store_get(st(f), "root", f->c[ROOT].thumb, &r), 0);
    assert_null(r.info);
    store_rec_free(st(f), &r);

    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, "root", collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].subject, "C=DE, O=Conformance Test PKI, CN=Conformance Root");
    assert_string_equal(s.c[0].valid_to, "2045-01-01T00:00:00Z");

    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    assert_int_equal(omadm_certstore_register(e.dm, f->cs), OMADM_OK);
    static const struct {
        const char *leaf, *want;
    } leaves[] = {{"IssuedTo", "C=DE, O=Conformance Test PKI, CN=Conformance Root"},
                  {"IssuedBy", "C=DE, O=Conformance Test PKI, CN=Conformance Root"},
                  {"ValidFrom", "2025-01-01T00:00:00Z"},
                  {"ValidTo", "2045-01-01T00:00:00Z"},
                  {"TemplateName", ""}};
    for (size_t i = 0; i < sizeof leaves / sizeof *leaves; i++) {
        char uri[200];
        snprintf(uri, sizeof uri, "./Vendor/MSFT/CertificateStore/Root/System/%s/%s",
                 f->c[ROOT].thumb, leaves[i].leaf);
        char *v = t_read(&e, uri, NULL, NULL);
        assert_non_null(v);
        assert_string_equal(v, leaves[i].want);
        free(v);
    }
    t_env_done(&e);
}

/* The CSP lists a store's node names from the records' heads
 * (store_each_name): a record whose head is whole but whose later lines
 * are damaged is named in the store node's child list, yet it is no
 * certificate: a Get of its node is 404 (it was 500), and ?list=Struct and
 * ?list=StructData leave it out, as they did when the names came from
 * whole records.  The others are listed under their thumbprints in upper
 * case (they were stored under lower-case names), as Windows lists them. */
static void test_csp_listing_names_from_heads(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < N_CERTS; i++)
        put(f, "root", i, NULL); /* named in lower case */
    char rp[160], text[8192];
    snprintf(rp, sizeof rp, "%s/certs/root/%s", f->dir, f->c[INTER].thumb);
    FILE *fp = fopen(rp, "r");
    assert_non_null(fp);
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[len] = 0;
    char *cut = strstr(text, "\nserver ");
    assert_non_null(cut);
    strcpy(cut + 1, "server -\nder !!!\n"); /* the head whole, the rest not a record */
    write_text(rp, text);
    omadm_certstore_close(f->cs); /* nothing of it kept in memory */
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, &why), OMADM_OK);
    const store_rec_t *rec;
    assert_int_equal(store_peek(st(f), "root", f->c[INTER].thumb, &rec), -2);
    store_rec_t r;
    assert_int_equal(store_get(st(f), "root", f->c[INTER].thumb, &r), -1);

    char lower[N_CERTS][41];
    for (int i = 0; i < N_CERTS; i++)
        for (int k = 0; k < 41; k++)
            lower[i][k] = (char)tolower((unsigned char)f->c[i].thumb[k]);
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    assert_int_equal(omadm_certstore_register(e.dm, f->cs), OMADM_OK);
#define STORE_URI "./Vendor/MSFT/CertificateStore/Root/System"
    char *body = t_strf(T_GET("2", STORE_URI) T_GET("3", STORE_URI "/%s")
                        T_GET("4", STORE_URI "?list=Struct") T_GET("5", STORE_URI "?list=StructData"),
                        lower[INTER]);
    assert_int_equal(t_send(&e, true, body), OMADM_OK);
    free(body);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    const t_cmd_t *res = t_results(&e.reply, "2");
    assert_non_null(res);
    assert_int_equal(res->n_items, 1);
    for (int i = 0; i < N_CERTS; i++) {
        assert_non_null(strstr(res->items[0].data, f->c[i].thumb));
        assert_null(strstr(res->items[0].data, lower[i]));
    }
    assert_int_equal(t_code(&e.reply, "3"), 404);
    for (int g = 0; g < 2; g++) {
        const char *ref = g ? "5" : "4";
        assert_int_equal(t_code(&e.reply, ref), 200);
        res = t_results(&e.reply, ref);
        assert_non_null(res);
        assert_int_equal(res->n_items, 1 + 2 * 7); /* the store, two certificates, 6 leaves each */
        size_t named[N_CERTS] = {0};
        for (size_t j = 0; j < res->n_items; j++)
            for (int i = 0; i < N_CERTS; i++) {
                named[i] += strstr(res->items[j].source, f->c[i].thumb) != NULL;
                assert_null(strstr(res->items[j].source, lower[i]));
            }
        assert_int_equal(named[ROOT], 7);
        assert_int_equal(named[INTER], 0);
        assert_int_equal(named[LEAF], 7);
    }
#undef STORE_URI
    t_env_done(&e);
}

/* Listings name a certificate by its upper-case thumbprint, whatever the
 * record's name: a lower-case spelling (as the server sent it), or a name
 * that is no spelling of the thumbprint at all (the CSP never stores one;
 * a record written through the store layer or by hand may hold one).  Such
 * a name was listed as it was, and a Get of it was 404 (nodes are found by
 * thumbprint); now the listing names the node Get, Replace and Delete find,
 * under any case spelling, and the record's name is never shown. */
static void test_csp_listing_upper_thumbprints(void **state)
{
    fx_t *f = *state;
    put(f, "root", ROOT, NULL); /* lower case */
    store_rec_t r = {.name = "not a thumbprint", .server = "s", .added = 1,
                     .der = f->c[INTER].der, .der_len = f->c[INTER].der_len};
    memcpy(r.thumb, f->c[INTER].thumb, sizeof r.thumb);
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(store_put(st(f), "root", &r), 0);
    assert_int_equal(store_commit(st(f)), 0);
    assert_int_equal(store_flush(st(f)), 0);
    char lower[41], mixed[41];
    for (int k = 0; k < 41; k++) {
        lower[k] = (char)tolower((unsigned char)f->c[INTER].thumb[k]);
        mixed[k] = k % 2 ? lower[k] : f->c[INTER].thumb[k];
    }
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    assert_int_equal(omadm_certstore_register(e.dm, f->cs), OMADM_OK);
#define STORE_URI "./Vendor/MSFT/CertificateStore/Root/System"
    char *body = t_strf(T_GET("2", STORE_URI) T_GET("3", STORE_URI "/%s/IssuedTo")
                        T_GET("4", STORE_URI "/%s") T_GET("5", STORE_URI "?list=Struct"),
                        lower, mixed);
    assert_int_equal(t_send(&e, true, body), OMADM_OK);
    free(body);
    const t_cmd_t *res = t_results(&e.reply, "2");
    assert_non_null(res);
    char want[100];
    snprintf(want, sizeof want, "%s/%s", f->c[ROOT].thumb, f->c[INTER].thumb);
    char want2[100];
    snprintf(want2, sizeof want2, "%s/%s", f->c[INTER].thumb, f->c[ROOT].thumb);
    assert_true(!strcmp(res->items[0].data, want) || !strcmp(res->items[0].data, want2));
    assert_null(strstr(res->items[0].data, "not a thumbprint"));
    assert_int_equal(t_code(&e.reply, "3"), 200);
    assert_int_equal(t_code(&e.reply, "4"), 200);
    res = t_results(&e.reply, "5");
    assert_non_null(res);
    assert_int_equal(res->n_items, 1 + 2 * 7);
    for (size_t j = 1; j < res->n_items; j++)
        assert_true(strstr(res->items[j].source, f->c[ROOT].thumb) ||
                    strstr(res->items[j].source, f->c[INTER].thumb));
    /* the host's listing names the same nodes */
    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, "root", collect, &s), OMADM_OK);
    assert_int_equal(s.n, 2);
    for (int i = 0; i < s.n; i++)
        assert_string_equal(s.c[i].name, s.c[i].thumb);
    /* Delete under a lower-case spelling */
    body = t_strf(T_DELETE("2", STORE_URI "/%s") T_GET("3", STORE_URI), lower);
    assert_int_equal(t_send(&e, true, body), OMADM_OK);
    free(body);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    res = t_results(&e.reply, "3");
    assert_non_null(res);
    assert_string_equal(res->items[0].data, f->c[ROOT].thumb);
#undef STORE_URI
    t_env_done(&e);
}

static void test_list_sees_staged_changes(void **state)
{
    fx_t *f = *state;
    store_rec_t r = {.name = f->c[ROOT].thumb, .server = "", .added = 5,
                     .der = f->c[ROOT].der, .der_len = f->c[ROOT].der_len};
    memcpy(r.thumb, f->c[ROOT].thumb, sizeof r.thumb);
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(store_put(st(f), "root", &r), 0);
    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, "root", collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].installed_by, "");
    store_rollback(st(f));
    assert_int_equal(omadm_certstore_list(f->cs, "root", never, NULL), OMADM_OK);
}

static void test_show(void **state)
{
    fx_t *f = *state;
    seen_t s = {0};
    put(f, "root", ROOT, NULL);
    put(f, "trustedpeople", ROOT, NULL);
    put(f, "ca", INTER, NULL);

    /* every store holding it, in omadm_certstore_kind order */
    assert_int_equal(omadm_certstore_show(f->cs, NULL, f->c[ROOT].thumb, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.c[0].store, "root");
    assert_string_equal(s.c[1].store, "trustedpeople");
    assert_string_equal(s.c[1].label, "TrustedPeople");
    assert_string_equal(s.c[1].subject, "C=DE, O=Conformance Test PKI, CN=Conformance Root");

    /* the openssl fingerprint form, lower case, one store */
    char colons[64] = "";
    for (int i = 0; i < 20; i++)
        snprintf(colons + strlen(colons), sizeof colons - strlen(colons), "%s%c%c", i ? ":" : "",
                 f->c[INTER].thumb[2 * i] | 0x20, f->c[INTER].thumb[2 * i + 1] | 0x20);
    memset(&s, 0, sizeof s);
    assert_int_equal(omadm_certstore_show(f->cs, "ca", colons, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].thumb, f->c[INTER].thumb);

    /* stopping after the first */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(omadm_certstore_show(f->cs, NULL, f->c[ROOT].thumb, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);

    /* not there */
    assert_int_equal(omadm_certstore_show(f->cs, NULL, f->c[LEAF].thumb, never, NULL),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_show(f->cs, "ca", f->c[ROOT].thumb, never, NULL),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_show(f->cs, "nosuch", f->c[ROOT].thumb, never, NULL),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_show(f->cs, NULL, "1234", never, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_show(f->cs, NULL, NULL, never, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_show(f->cs, NULL, f->c[ROOT].thumb, NULL, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_show(NULL, NULL, f->c[ROOT].thumb, never, NULL),
                     OMADM_E_INVALID_ARG);
}

/* ---- exports ---- */

static void test_export_cert(void **state)
{
    fx_t *f = *state;
    put(f, "ca", INTER, NULL);
    uint8_t *out = (uint8_t *)"x";
    size_t len = 0;

    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, f->c[INTER].thumb, OMADM_CERT_PEM,
                                                 &out, &len),
                     OMADM_OK);
    assert_int_equal(len, f->c[INTER].pem_len);
    assert_memory_equal(out, f->c[INTER].pem, len);
    assert_int_equal(out[len], 0);
    omadm_certstore_buffer_free(out);

    assert_int_equal(omadm_certstore_export_cert(f->cs, "CA/System", f->c[INTER].thumb,
                                                 OMADM_CERT_DER, &out, &len),
                     OMADM_OK);
    assert_int_equal(len, f->c[INTER].der_len);
    assert_memory_equal(out, f->c[INTER].der, len);
    omadm_certstore_buffer_free(out);

    out = (uint8_t *)"x";
    assert_int_equal(omadm_certstore_export_cert(f->cs, "root", f->c[INTER].thumb,
                                                 OMADM_CERT_PEM, &out, &len),
                     OMADM_E_NOT_FOUND);
    assert_null(out);
    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, f->c[ROOT].thumb, OMADM_CERT_PEM,
                                                 &out, &len),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_export_cert(f->cs, "nosuch", f->c[INTER].thumb,
                                                 OMADM_CERT_PEM, &out, &len),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, f->c[INTER].thumb,
                                                 (omadm_cert_format_t)7, &out, &len),
                     OMADM_E_INVALID_ARG);
    assert_null(out);
    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, "nothex", OMADM_CERT_PEM, &out,
                                                 &len),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, f->c[INTER].thumb, OMADM_CERT_PEM,
                                                 NULL, &len),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_cert(f->cs, NULL, f->c[INTER].thumb, OMADM_CERT_PEM,
                                                 &out, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_cert(NULL, NULL, f->c[INTER].thumb, OMADM_CERT_PEM,
                                                 &out, &len),
                     OMADM_E_INVALID_ARG);
}

/* The thumbprints of the certificates in PEM text, in order. */
static int pem_thumbs(const char *pem, size_t len, char thumbs[][41], int max)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    int n = 0;
    assert_non_null(b);
    while (n < max && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        unsigned char *der = NULL;
        int dlen = i2d_X509(x, &der);
        assert_true(dlen > 0);
        assert_int_equal(cert_thumbprint(der, (size_t)dlen, thumbs[n]), 0);
        OPENSSL_free(der);
        X509_free(x);
        n++;
    }
    BIO_free(b);
    return n;
}

static void test_export_store(void **state)
{
    fx_t *f = *state;
    char *pem = (char *)"x";
    size_t len = 99;
    assert_int_equal(omadm_certstore_export_store(f->cs, "root", &pem, &len), OMADM_OK);
    assert_non_null(pem);
    assert_int_equal(len, 0);
    assert_string_equal(pem, "");
    omadm_certstore_buffer_free(pem);

    put(f, "trustedpublisher", ROOT, NULL);
    put(f, "trustedpublisher", INTER, NULL);
    put(f, "my-system", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_export_store(f->cs, "TrustedPublisher", &pem, &len),
                     OMADM_OK);
    assert_int_equal(strlen(pem), len);
    char thumbs[4][41];
    assert_int_equal(pem_thumbs(pem, len, thumbs, 4), 2);
    assert_true((!strcmp(thumbs[0], f->c[ROOT].thumb) && !strcmp(thumbs[1], f->c[INTER].thumb)) ||
                (!strcmp(thumbs[1], f->c[ROOT].thumb) && !strcmp(thumbs[0], f->c[INTER].thumb)));
    omadm_certstore_buffer_free(pem);

    /* a store with a key exports the certificate only */
    assert_int_equal(omadm_certstore_export_store(f->cs, "my-system", &pem, &len), OMADM_OK);
    assert_int_equal(len, f->c[LEAF].pem_len);
    assert_memory_equal(pem, f->c[LEAF].pem, len);
    assert_null(strstr(pem, "PRIVATE KEY"));
    omadm_certstore_buffer_free(pem);

    pem = (char *)"x";
    assert_int_equal(omadm_certstore_export_store(f->cs, "nosuch", &pem, &len), OMADM_E_NOT_FOUND);
    assert_null(pem);
    assert_int_equal(omadm_certstore_export_store(f->cs, NULL, &pem, &len), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_store(f->cs, "root", NULL, &len), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_store(f->cs, "root", &pem, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_export_store(NULL, "root", &pem, &len), OMADM_E_INVALID_ARG);
}

/* ---- paths ---- */

static void test_paths(void **state)
{
    fx_t *f = *state;
    char buf[256], want[256];
    assert_int_equal(omadm_certstore_capath(f->cs, "Root/System", buf, sizeof buf), OMADM_OK);
    snprintf(want, sizeof want, "%s/trust/root", f->dir);
    assert_string_equal(buf, want);
    assert_int_equal(access(buf, R_OK | X_OK), 0);
    assert_int_equal(omadm_certstore_bundle(f->cs, "user-ca", buf, sizeof buf), OMADM_OK);
    snprintf(want, sizeof want, "%s/trust/user-ca.pem", f->dir);
    assert_string_equal(buf, want);
    assert_int_equal(access(buf, R_OK), 0);

    /* exactly large enough, one byte short */
    size_t need = strlen(want) + 1;
    assert_int_equal(omadm_certstore_bundle(f->cs, "user-ca", buf, need), OMADM_OK);
    assert_int_equal(omadm_certstore_bundle(f->cs, "user-ca", buf, need - 1), OMADM_E_TOO_LARGE);
    assert_string_equal(buf, "");

    /* My stores have no paths; unknown stores, NULLs */
    assert_int_equal(omadm_certstore_capath(f->cs, "my-system", buf, sizeof buf),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_bundle(f->cs, "My/User", buf, sizeof buf),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_capath(f->cs, "nosuch", buf, sizeof buf), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_capath(f->cs, NULL, buf, sizeof buf), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_capath(f->cs, "root", NULL, sizeof buf), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_capath(f->cs, "root", buf, 0), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_bundle(NULL, "root", buf, sizeof buf), OMADM_E_INVALID_ARG);
}

/* ---- identities ---- */

/* cert_pem and key_pem load with OpenSSL and belong together. */
static void assert_identity_loads(const omadm_cert_identity_t *id)
{
    assert_int_equal(strlen(id->cert_pem), id->cert_pem_len);
    assert_int_equal(strlen(id->key_pem), id->key_pem_len);
    BIO *cb = BIO_new_mem_buf(id->cert_pem, (int)id->cert_pem_len);
    BIO *kb = BIO_new_mem_buf(id->key_pem, (int)id->key_pem_len);
    X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    assert_non_null(x);
    assert_non_null(k);
    assert_int_equal(X509_check_private_key(x, k), 1);
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
}

static void identity_free(omadm_cert_identity_t *id)
{
    omadm_certstore_buffer_free(id->cert_pem);
    omadm_certstore_buffer_free(id->key_pem);
}

static void assert_identity_empty(const omadm_cert_identity_t *id)
{
    assert_null(id->cert_pem);
    assert_null(id->key_pem);
    assert_int_equal(id->cert_pem_len, 0);
    assert_int_equal(id->key_pem_len, 0);
}

static void test_identity(void **state)
{
    fx_t *f = *state;
    omadm_cert_identity_t id;
    put(f, "my-system", LEAF, f->leaf_key);
    put(f, "my-system", INTER, NULL); /* a certificate without a key */

    assert_int_equal(omadm_certstore_identity(f->cs, "my-system", f->c[LEAF].thumb, &id),
                     OMADM_OK);
    assert_string_equal(id.store, "my-system");
    assert_string_equal(id.thumbprint, f->c[LEAF].thumb);
    assert_memory_equal(id.cert_pem, f->c[LEAF].pem, f->c[LEAF].pem_len);
    assert_string_equal(id.key_pem, f->leaf_key);
    assert_identity_loads(&id);
    identity_free(&id);

    /* no store named: My/System, then My/User; the colon form */
    char colons[64] = "";
    for (int i = 0; i < 20; i++)
        snprintf(colons + strlen(colons), sizeof colons - strlen(colons), "%s%.2s", i ? ":" : "",
                 f->c[LEAF].thumb + 2 * i);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, colons, &id), OMADM_OK);
    assert_string_equal(id.store, "my-system");
    identity_free(&id);
    del(f, "my-system", LEAF);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, f->c[LEAF].thumb, &id),
                     OMADM_E_NOT_FOUND);
    assert_identity_empty(&id);
    put(f, "my-user", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, f->c[LEAF].thumb, &id), OMADM_OK);
    assert_string_equal(id.store, "my-user");
    assert_identity_loads(&id);
    identity_free(&id);
    assert_int_equal(omadm_certstore_identity(f->cs, "my-system", f->c[LEAF].thumb, &id),
                     OMADM_E_NOT_FOUND);

    /* a store with the certificate but without its key */
    assert_int_equal(omadm_certstore_identity(f->cs, "my-system", f->c[INTER].thumb, &id),
                     OMADM_E_NO_KEY);
    assert_identity_empty(&id);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, f->c[INTER].thumb, &id),
                     OMADM_E_NO_KEY);
    assert_identity_empty(&id);

    /* errors */
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, f->c[ROOT].thumb, &id),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_identity(f->cs, "nosuch", f->c[LEAF].thumb, &id),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, "12:34", &id), OMADM_E_INVALID_ARG);
    assert_identity_empty(&id);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, NULL, &id), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_identity(f->cs, NULL, f->c[LEAF].thumb, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_identity(NULL, NULL, f->c[LEAF].thumb, &id),
                     OMADM_E_INVALID_ARG);
}

static void test_enrollment_identity(void **state)
{
    fx_t *f = *state;
    omadm_cert_identity_t id;
    put(f, "my-system", LEAF, f->leaf_key);
    enrollment(f, ENR_CS, "Wifi-Cert", f->c[LEAF].thumb);

    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_CERTSTORE,
                                                         "wifi-cert", &id),
                     OMADM_OK);
    assert_string_equal(id.store, "my-system");
    assert_string_equal(id.thumbprint, f->c[LEAF].thumb);
    assert_identity_loads(&id);
    identity_free(&id);

    /* the same {UniqueID} in the other namespaces is another enrollment */
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_DEVICE, "Wifi-Cert",
                                                         &id),
                     OMADM_E_NOT_FOUND);
    assert_identity_empty(&id);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_USER, "Wifi-Cert",
                                                         &id),
                     OMADM_E_NOT_FOUND);

    /* ClientCertificateInstall: device into My/System, user into My/User */
    enrollment(f, ENR_CCI_DEVICE, "dev", f->c[LEAF].thumb);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_DEVICE, "dev", &id),
                     OMADM_OK);
    assert_string_equal(id.store, "my-system");
    identity_free(&id);
    enrollment(f, ENR_CCI_USER, "usr", f->c[LEAF].thumb);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_USER, "usr", &id),
                     OMADM_E_NOT_FOUND); /* its certificate is not in My/User */
    put(f, "my-user", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_USER, "usr", &id),
                     OMADM_OK);
    assert_string_equal(id.store, "my-user");
    assert_identity_loads(&id);
    identity_free(&id);

    /* still pending: no certificate yet */
    enrollment(f, ENR_CS, "pending", NULL);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_CERTSTORE,
                                                         "pending", &id),
                     OMADM_E_NOT_FOUND);
    /* a certificate without its key */
    put(f, "my-system", INTER, NULL);
    enrollment(f, ENR_CS, "nokey", f->c[INTER].thumb);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_CERTSTORE, "nokey",
                                                         &id),
                     OMADM_E_NO_KEY);
    assert_identity_empty(&id);
    /* the certificate deleted since (through My/System, say) */
    del(f, "my-system", LEAF);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_CERTSTORE,
                                                         "Wifi-Cert", &id),
                     OMADM_E_NOT_FOUND);

    /* errors */
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_CERTSTORE, "nosuch",
                                                         &id),
                     OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, (omadm_enroll_ns_t)3, "dev", &id),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, (omadm_enroll_ns_t)-1, "dev",
                                                         &id),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_DEVICE, NULL, &id),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_DEVICE, "dev", NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_enrollment_identity(NULL, OMADM_ENROLL_DEVICE, "dev", &id),
                     OMADM_E_INVALID_ARG);
    /* a record a later version wrote */
    char name[ENR_RECORD_NAME_SIZE];
    const char *newer = "omadm-scep 2\nid dev\n";
    assert_int_equal(enr_record_name(ENR_CCI_DEVICE, "dev", name, sizeof name), 0);
    assert_int_equal(store_begin(st(f)), 0);
    assert_int_equal(store_put_state(st(f), name, newer, strlen(newer)), 0);
    assert_int_equal(store_commit(st(f)), 0);
    assert_int_equal(store_flush(st(f)), 0);
    assert_int_equal(omadm_certstore_enrollment_identity(f->cs, OMADM_ENROLL_DEVICE, "dev", &id),
                     OMADM_E_NEWER_FORMAT);
    assert_identity_empty(&id);
}

/* A later version's committed batch (its journal of a newer format) blocks
 * the store: named with both formats, kept, every operation fails; gone, the
 * store works again. */
static void test_blocked_by_newer_journal(void **state)
{
    fx_t *f = *state;
    omadm_error_t err = OMADM_E_INTERNAL;
    put(f, "root", ROOT, NULL);
    assert_null(omadm_certstore_blocked(f->cs, &err));
    assert_int_equal(err, OMADM_OK);
    omadm_certstore_close(f->cs);
    f->cs = NULL;
    char p[512];
    snprintf(p, sizeof p, "%s/journal", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("omadm-journal 2\na batch of a later version\n", fp);
    fclose(fp);
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, &why), OMADM_OK);
    const char *text = omadm_certstore_blocked(f->cs, &err);
    assert_int_equal(err, OMADM_E_NEWER_FORMAT);
    char want[600];
    snprintf(want, sizeof want,
             "%s: format omadm-journal 2 is newer than this library reads (omadm-journal 1)", p);
    assert_non_null(text);
    assert_string_equal(text, want);
    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_E_STORAGE);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(unlink(p), 0);
    assert_null(omadm_certstore_blocked(f->cs, &err));
    assert_int_equal(err, OMADM_OK);
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_null(omadm_certstore_blocked(NULL, NULL));
}

/* The check covers the enrollment records (the store checks only their
 * names): a damaged one, one of a newer format, each named by its file;
 * repairs are said with OMADM_CERTSTORE_CHECK_REPORT_REPAIRS. */
typedef struct said {
    unsigned problems, repairs;
    char text[2048];
} said_t;

static void note_said(void *ctx, const char *line)
{
    said_t *s = ctx;
    if (!strncmp(line, "repaired: ", 10))
        s->repairs++;
    else
        s->problems++;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%s\n", line);
}

static void test_check_enrollments_and_repairs(void **state)
{
    fx_t *f = *state;
    enrollment(f, ENR_CS, "good", NULL);
    enrollment(f, ENR_CS, "damaged", NULL);
    enrollment(f, ENR_CCI_USER, "later", NULL);
    char dmg[ENR_RECORD_NAME_SIZE], later[ENR_RECORD_NAME_SIZE];
    assert_int_equal(enr_record_name(ENR_CS, "damaged", dmg, sizeof dmg), 0);
    assert_int_equal(enr_record_name(ENR_CCI_USER, "later", later, sizeof later), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/state/%s", f->dir, dmg);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("omadm-scep 1\nid damaged\nphase 99\nend\n", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/state/%s", f->dir, later);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("omadm-scep 3\nsomething new\n", fp);
    fclose(fp);
    said_t s = {0};
    unsigned n = 99;
    assert_int_equal(omadm_certstore_check(f->cs, 0, note_said, &s, &n), OMADM_E_CORRUPT);
    assert_int_equal(n, 2);
    assert_int_equal(s.problems, 2);
    char want[1024];
    snprintf(want, sizeof want, "%s/state/%s: enrollment record is damaged\n", f->dir, dmg);
    assert_non_null(strstr(s.text, want));
    snprintf(want, sizeof want,
             "%s/state/%s: enrollment record of format omadm-scep 3, newer than this library "
             "reads (omadm-scep 1); left as it is\n", f->dir, later);
    assert_non_null(strstr(s.text, want));
    /* a mode put right is said, and the records stay as they are */
    snprintf(p, sizeof p, "%s/trust/root.pem", f->dir);
    assert_int_equal(chmod(p, 0600), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(omadm_certstore_check(f->cs,
                                           OMADM_CERTSTORE_CHECK_REPAIR |
                                               OMADM_CERTSTORE_CHECK_REPORT_REPAIRS,
                                           note_said, &s, &n),
                     OMADM_E_CORRUPT);
    assert_int_equal(n, 2);
    assert_int_equal(s.repairs, 1);
    snprintf(want, sizeof want, "repaired: %s: mode 0600, set to 0644\n", p);
    assert_non_null(strstr(s.text, want));
    snprintf(p, sizeof p, "%s/state/%s", f->dir, later);
    fp = fopen(p, "r");
    char line[64] = "";
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_string_equal(line, "omadm-scep 3\n");
    /* without REPORT_REPAIRS a repair says nothing */
    assert_int_equal(chmod(p, 0644), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(omadm_certstore_check(f->cs, OMADM_CERTSTORE_CHECK_REPAIR, note_said, &s, &n),
                     OMADM_E_CORRUPT);
    assert_int_equal(s.repairs, 0);
    assert_int_equal(s.problems, 2);
}

/* ---- the check ---- */

typedef struct problems {
    unsigned n;
    char last[512];
} problems_t;

static void note_problem(void *ctx, const char *problem)
{
    problems_t *p = ctx;
    p->n++;
    snprintf(p->last, sizeof p->last, "%s", problem);
}

static void test_check(void **state)
{
    fx_t *f = *state;
    problems_t p = {0};
    unsigned n = 99;
    put(f, "root", ROOT, NULL);
    put(f, "my-system", LEAF, f->leaf_key);
    assert_int_equal(omadm_certstore_check(f->cs, 0, note_problem, &p, &n), OMADM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(omadm_certstore_check(f->cs, OMADM_CERTSTORE_CHECK_REPAIR, note_problem, &p,
                                           &n),
                     OMADM_OK);
    assert_int_equal(omadm_certstore_check(f->cs, 0, NULL, NULL, NULL), OMADM_OK);

    /* a damaged record: no repair brings it back */
    char rec[256];
    snprintf(rec, sizeof rec, "%s/certs/root/%s", f->dir, f->c[ROOT].thumb);
    FILE *fp = fopen(rec, "w");
    assert_non_null(fp);
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(omadm_certstore_check(f->cs, 0, note_problem, &p, &n), OMADM_E_CORRUPT);
    assert_true(n >= 1);
    assert_int_equal(p.n, n);
    assert_non_null(strstr(p.last, "Root/System"));
    memset(&p, 0, sizeof p);
    assert_int_equal(omadm_certstore_check(f->cs, OMADM_CERTSTORE_CHECK_REPAIR, note_problem, &p,
                                           &n),
                     OMADM_E_CORRUPT);
    assert_true(n >= 1);
    assert_int_equal(p.n, n);
    n = 99;
    assert_int_equal(omadm_certstore_check(f->cs, 0, NULL, NULL, &n), OMADM_E_CORRUPT);
    assert_true(n >= 1);

    /* the unreadable record is skipped by list */
    seen_t s = {0};
    assert_int_equal(omadm_certstore_list(f->cs, NULL, collect, &s), OMADM_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.c[0].store, "my-system");

    n = 99;
    assert_int_equal(omadm_certstore_check(f->cs, 4, NULL, NULL, &n), OMADM_E_INVALID_ARG);
    assert_int_equal(n, 0);
    assert_int_equal(omadm_certstore_check(NULL, 0, NULL, NULL, &n), OMADM_E_INVALID_ARG);
}

/* ---- host buffers ---- */

typedef struct counting {
    unsigned allocs, frees;
    size_t last_size;
    bool freed_zeroed;   /* every block freed was all zero */
} counting_t;

static void *c_alloc(void *ctx, size_t n)
{
    counting_t *c = ctx;
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    c->allocs++;
    p[0] = n;
    return p + 2;
}

static void *c_realloc(void *ctx, void *ptr, size_t n)
{
    (void)ctx;
    size_t *p = ptr ? (size_t *)ptr - 2 : NULL;
    size_t *q = realloc(p, n + sizeof(size_t) * 2);
    if (!q)
        return NULL;
    if (!ptr)
        ((counting_t *)ctx)->allocs++;
    q[0] = n;
    return q + 2;
}

static void c_free(void *ctx, void *ptr)
{
    counting_t *c = ctx;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    c->frees++;
    c->last_size = p[0];
    free(p);
}

/* Like c_free, and checks the block was wiped. */
static void c_free_check(void *ctx, void *ptr)
{
    counting_t *c = ctx;
    if (!ptr)
        return;
    size_t n = ((size_t *)ptr - 2)[0];
    const uint8_t *b = ptr;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            c->freed_zeroed = false;
    c_free(ctx, ptr);
}

static void test_buffers(void **state)
{
    fx_t *f = *state;
    omadm_certstore_buffer_free(NULL);

    /* a store of its own with a counting allocator */
    char dir[80];
    snprintf(dir, sizeof dir, "%s/other", f->dir);
    counting_t c = {0};
    omadm_platform_t plat = {.ctx = &c, .alloc = c_alloc, .realloc = c_realloc, .free = c_free};
    omadm_certstore_t *cs = NULL;
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(dir, &plat, &cs, &why), OMADM_OK);
    store_rec_t r = {.name = f->c[LEAF].thumb, .server = "s", .added = 1,
                     .der = f->c[LEAF].der, .der_len = f->c[LEAF].der_len};
    memcpy(r.thumb, f->c[LEAF].thumb, sizeof r.thumb);
    store_t *s = cs->store;
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, "my-system", &r), 0);
    assert_int_equal(store_put_key(s, "my-system", r.thumb, f->leaf_key), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_flush(s), 0);

    omadm_cert_identity_t id;
    assert_int_equal(omadm_certstore_identity(cs, NULL, r.thumb, &id), OMADM_OK);
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(omadm_certstore_export_cert(cs, NULL, r.thumb, OMADM_CERT_DER, &der,
                                                 &der_len),
                     OMADM_OK);
    assert_true(c.allocs >= 3);

    /* the store goes first: its buffers stay usable and are freed through
     * its allocator */
    omadm_certstore_close(cs);
    assert_memory_equal(der, f->c[LEAF].der, der_len);
    assert_identity_loads(&id);
    unsigned frees = c.frees;
    omadm_certstore_buffer_free(der);
    assert_int_equal(c.frees, frees + 1);
    assert_true(c.last_size > der_len); /* the block had a header in front of the bytes */
    omadm_certstore_buffer_free(id.key_pem);
    omadm_certstore_buffer_free(id.cert_pem);
    assert_int_equal(c.frees, frees + 3);
}

static void test_buffers_wiped(void **state)
{
    fx_t *f = *state;
    char dir[80];
    snprintf(dir, sizeof dir, "%s/wiped", f->dir);
    counting_t c = {.freed_zeroed = true};
    omadm_platform_t plat = {.ctx = &c, .alloc = c_alloc, .realloc = c_realloc,
                             .free = c_free_check};
    omadm_certstore_t *cs = NULL;
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(dir, &plat, &cs, &why), OMADM_OK);
    store_rec_t r = {.name = f->c[LEAF].thumb, .server = "s", .added = 1,
                     .der = f->c[LEAF].der, .der_len = f->c[LEAF].der_len};
    memcpy(r.thumb, f->c[LEAF].thumb, sizeof r.thumb);
    assert_int_equal(store_begin(cs->store), 0);
    assert_int_equal(store_put(cs->store, "my-system", &r), 0);
    assert_int_equal(store_put_key(cs->store, "my-system", r.thumb, f->leaf_key), 0);
    assert_int_equal(store_commit(cs->store), 0);
    assert_int_equal(store_flush(cs->store), 0);
    omadm_cert_identity_t id;
    assert_int_equal(omadm_certstore_identity(cs, NULL, r.thumb, &id), OMADM_OK);
    omadm_certstore_close(cs);
    c.freed_zeroed = true;
    omadm_certstore_buffer_free(id.key_pem);
    assert_true(c.freed_zeroed);
    omadm_certstore_buffer_free(id.cert_pem);
    assert_true(c.freed_zeroed);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_kinds),
        T(test_thumbprint_parse),
        T(test_dir),
        T(test_list),
        T(test_list_checked),
        T(test_older_record_reads_the_same),
        T(test_csp_listing_upper_thumbprints),
        T(test_csp_listing_names_from_heads),
        T(test_list_sees_staged_changes),
        T(test_show),
        T(test_export_cert),
        T(test_export_store),
        T(test_paths),
        T(test_identity),
        T(test_enrollment_identity),
        T(test_check),
        T(test_check_enrollments_and_repairs),
        T(test_blocked_by_newer_journal),
        T(test_buffers),
        T(test_buffers_wiped),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
