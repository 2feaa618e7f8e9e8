/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_certmsg.c - the certificate message of the store's failure
 * sweeps and the checks after each run (see support_certmsg.h).
 */
#include "support_certmsg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "csp/certstore_internal.h"
#include "platform.h"
#include "store/store.h"
#include "store/store_io.h"
#include "support_dir.h"
#include "support_host.h"
#include "support_pki.h"

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
int cm_trust_view_problems(const char *dir)
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

/* ---- certificates and messages ------------------------------------------- */

cm_cert_t cm_root, cm_inter;

static void load(cm_cert_t *c, const char *name)
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

void cm_certs_load(void)
{
    load(&cm_root, "root");
    load(&cm_inter, "inter");
}

void cm_certs_free(void)
{
    free(cm_root.b64);
    free(cm_inter.b64);
    memset(&cm_root, 0, sizeof cm_root);
    memset(&cm_inter, 0, sizeof cm_inter);
}

char cm_tmp[64];

int cm_group_setup(void **state)
{
    (void)state;
    cm_certs_load();
    return tdir_make(cm_tmp, sizeof cm_tmp);
}

int cm_group_teardown(void **state)
{
    (void)state;
    tdir_rm(cm_tmp);
    cm_certs_free();
    return 0;
}

#define CS "./Vendor/MSFT/CertificateStore"

/* The seed: the root in Root/System. */
char *cm_seed_body(void)
{
    return t_strf(T_ADD("2", CS "/Root/System/%s/EncodedCertificate", "b64", "%s"),
                  cm_root.thumb, cm_root.b64);
}

/* The Add of the intermediate and the Delete of the root (malloc'ed). */
static char *add_body(void)
{
    return t_strf(T_ADD("3", CS "/CA/System/%s/EncodedCertificate", "b64", "%s"), cm_inter.thumb,
                  cm_inter.b64);
}

static char *del_body(void)
{
    return t_strf(T_DELETE("7", CS "/Root/System/%s"), cm_root.thumb);
}

/* Add the intermediate, Get the root (its encoding, its IssuedBy, the
 * store's list), Delete the root; as a plain sequence or in an Atomic. */
char *cm_test_body(bool atomic)
{
    char *add = add_body();
    char *del = del_body();
    char *gets = t_strf(T_GET("4", CS "/Root/System/%s/EncodedCertificate")
                        T_GET("5", CS "/Root/System/%s/IssuedBy")
                        T_GET("6", CS "/Root/System?list=Struct"),
                        cm_root.thumb, cm_root.thumb);
    char *body = atomic ? t_strf("%s<Atomic><CmdID>2</CmdID>%s%s</Atomic>", gets, add, del)
                        : t_strf("%s%s%s", add, gets, del);
    free(add);
    free(del);
    free(gets);
    return body;
}

/* ---- one run --------------------------------------------------------------- */

/* Equal but for white space. */
static bool same_text(const char *a, const char *b)
{
    for (;; a++, b++) {
        while (*a == ' ' || *a == '\n' || *a == '\r')
            a++;
        while (*b == ' ' || *b == '\n' || *b == '\r')
            b++;
        if (*a != *b)
            return false;
        if (!*a)
            return true;
    }
}

/* The data of the Results answering cmdref, or NULL. */
static const char *result_data(const t_reply_t *reply, const char *cmdref)
{
    const t_cmd_t *c = t_results(reply, cmdref);
    return c && c->n_items == 1 ? c->items[0].data : NULL;
}

/* Whether each Get answered 200 answered the truth: the Gets run while the
 * store holds the root (before the Delete), so its encoding, its issuer and
 * the store's list naming it.  NULL, or what is wrong. */
static const char *results_problem(const cm_run_t *r)
{
    const char *enc = result_data(&r->reply, "4"), *by = result_data(&r->reply, "5");
    if (r->code[4] == 200 && (!enc || !same_text(enc, cm_root.b64)))
        return "Get of the root's EncodedCertificate 200, but not its encoding";
    if (r->code[5] == 200 && (!by || !strstr(by, "CN=Conformance Root")))
        return "Get of the root's IssuedBy 200, but not its issuer";
    /* ?list=Struct: one Item per node, named by its Source */
    const t_cmd_t *c = t_results(&r->reply, "6");
    bool listed = false;
    for (size_t i = 0; c && i < c->n_items; i++)
        listed = listed || (c->items[i].source && strstr(c->items[i].source, cm_root.thumb));
    if (r->code[6] == 200 && !listed)
        return "Get of Root/System 200, but its list lacks the root";
    return NULL;
}

/* omadm_certstore_open, with the store opened through store_open_io. */
static omadm_error_t certstore_open_io(const char *dir, const omadm_platform_t *platform,
                                       const store_io_t *io, omadm_certstore_t **out)
{
    const char *why = NULL;
    omadm_platform_t plat;
    plat_init(&plat, platform);
    *out = plat_calloc(&plat, sizeof **out);
    if (!*out)
        return OMADM_E_NOMEM;
    (*out)->plat = plat;
    if (store_open_io(dir, &(*out)->plat, io, &(*out)->store, &why)) {
        plat_free(&plat, *out);
        *out = NULL;
        return OMADM_E_STORAGE;
    }
    return OMADM_OK;
}

/* open + new + register + process on plat; r->stage names what failed. */
void cm_run_message(cm_run_t *r, const char *dir, const omadm_platform_t *plat,
                    const omadm_platform_t *store_plat, const store_io_t *io, int msg_id,
                    const char *body)
{
    const char *why = NULL;
    memset(r, 0, sizeof *r);
    t_reply_init(&r->reply);
    for (int i = 0; i < 8; i++)
        r->code[i] = -1;
    r->stage = "open";
    r->err = io ? certstore_open_io(dir, store_plat, io, &r->cs)
                : omadm_certstore_open(dir, store_plat, &r->cs, &why);
    if (r->err != OMADM_OK) {
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
        r->bad_result = results_problem(r);
    } else {
        assert_null(reply);
    }
    omadm_buffer_free(r->dm, reply);
    r->stage = NULL;
}

void cm_run_close(cm_run_t *r)
{
    omadm_free(r->dm);
    omadm_certstore_close(r->cs);
    t_reply_free(&r->reply);
    r->dm = NULL;
    r->cs = NULL;
}

/* A fresh store holding the seed; its listing. */
char *cm_fresh_store(const char *dir)
{
    thost_t h;
    omadm_platform_t p;
    thost_init(&h, &p);
    tdir_rm(dir);
    cm_run_t r;
    char *body = cm_seed_body();
    cm_run_message(&r, dir, &p, &p, NULL, 1, body);
    free(body);
    assert_int_equal(r.err, OMADM_OK);
    assert_int_equal(r.code[2], 200);
    cm_run_close(&r);
    assert_int_equal(h.outstanding, 0);
    return tdir_listing(dir, NULL);
}

void cm_run_clean(cm_run_t *r, const char *dir, bool atomic, const omadm_platform_t *plat,
                  const omadm_platform_t *store_plat, const store_io_t *io)
{
    free(cm_fresh_store(dir));
    char *body = cm_test_body(atomic);
    cm_run_message(r, dir, plat, store_plat, io, 2, body);
    free(body);
    assert_null(r->stage);
    assert_int_equal(r->err, OMADM_OK);
    for (int i = atomic ? 2 : 3; i <= 7; i++)
        assert_int_equal(r->code[i], 200);
}

static char *state_after(const char *dir, const char *body)
{
    free(cm_fresh_store(dir));
    thost_t h;
    omadm_platform_t p;
    thost_init(&h, &p);
    cm_run_t r;
    cm_run_message(&r, dir, &p, &p, NULL, 2, body);
    assert_int_equal(r.err, OMADM_OK);
    cm_run_close(&r);
    return tdir_listing(dir, NULL);
}

void cm_states_make(cm_states_t *st, const char *dir, bool atomic)
{
    st->listing[CM_SEED] = cm_fresh_store(dir);
    char *add = add_body();
    char *del = del_body();
    char *both = cm_test_body(atomic);
    st->listing[CM_ADDED] = state_after(dir, add);
    st->listing[CM_DELETED] = state_after(dir, del);
    st->listing[CM_BOTH] = state_after(dir, both);
    free(add);
    free(del);
    free(both);
    for (int i = 0; i < CM_N; i++)
        for (int j = 0; j < i; j++)
            assert_string_not_equal(st->listing[i], st->listing[j]);
}

void cm_states_free(cm_states_t *st)
{
    for (int i = 0; i < CM_N; i++)
        free(st->listing[i]);
}

static int state_of(const cm_states_t *st, const char *listing)
{
    for (int i = 0; i < CM_N; i++)
        if (!strcmp(st->listing[i], listing))
            return i;
    return -1;
}

char *cm_checked_listing(const char *dir, long n, const char *what)
{
    if (tdir_store_check(dir))
        fail_msg("N=%ld%s: the store is inconsistent", n, what);
    if (cm_trust_view_problems(dir))
        fail_msg("N=%ld%s: OpenSSL's view of the trust stores is not the store's", n, what);
    return tdir_listing(dir, NULL);
}

void cm_expect_state(const char *dir, const char *want, const char *name, long n,
                     const char *what)
{
    char *got = cm_checked_listing(dir, n, what);
    if (strcmp(got, want)) {
        tdir_diff(name, want, got);
        fail_msg("N=%ld%s: the store is not %s", n, what, name);
    }
    free(got);
}

/* The state the store in dir is in (checked as cm_checked_listing). */
static int state_reached(const char *dir, const cm_states_t *states, long n, const char *what)
{
    char *after = cm_checked_listing(dir, n, what);
    int got = state_of(states, after);
    if (got < 0) {
        tdir_diff("the seed", states->listing[CM_SEED], after);
        fail_msg("N=%ld%s: the store is in none of the states the message allows", n, what);
    }
    free(after);
    return got;
}

/* State got is what run r may leave: after a reply, the state its
 * statuses say; after a failure before the message ran, the seed; never
 * half an Atomic. */
static void check_state_fits_run(const cm_run_t *r, int got, bool atomic, long n,
                                 const char *what)
{
    bool replied = !r->stage && r->err == OMADM_OK;
    if (r->bad_result)
        fail_msg("N=%ld%s: %s", n, what, r->bad_result);
    if (replied && atomic) {
        if (got != (r->code[2] == 200 ? CM_BOTH : CM_SEED))
            fail_msg("N=%ld%s: the Atomic answered %d, the store is in state %d", n, what,
                     r->code[2], got);
    } else if (replied) {
        int want = (r->code[3] == 200 ? 1 : 0) + (r->code[7] == 200 ? 2 : 0);
        if (got != want)
            fail_msg("N=%ld%s: Add %d, Delete %d, but the store is in state %d", n, what,
                     r->code[3], r->code[7], got);
    } else if (r->stage && got != CM_SEED) {
        fail_msg("N=%ld%s: %s failed, yet the store changed", n, what, r->stage);
    } else if (atomic && got != CM_SEED && got != CM_BOTH) {
        fail_msg("N=%ld%s: half of an Atomic in the store (state %d)", n, what, got);
    }
}

void cm_check_after(const cm_run_t *r, const char *dir, const cm_states_t *states, bool atomic,
                    long n, const char *what, cm_stats_t *st)
{
    int got = state_reached(dir, states, n, what);
    check_state_fits_run(r, got, atomic, n, what);
    bool replied = !r->stage && r->err == OMADM_OK;
    if (!replied && got != CM_SEED)
        st->failed_but_durable++;
    if (got == CM_SEED)
        st->unchanged++;
    else
        st->changed++;
}

void cm_count_run(const cm_run_t *r, cm_stats_t *st)
{
    st->runs++;
    if (r->stage && !strcmp(r->stage, "open"))
        st->failed_open++;
    else if (r->stage && !strcmp(r->stage, "new"))
        st->failed_new++;
    else if (r->stage)
        st->failed_register++;
    else if (r->err != OMADM_OK)
        st->failed_process++;
    else
        st->replies++;
}
