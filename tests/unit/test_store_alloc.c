/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_alloc.c - the certificate store and the certificate CSPs take
 * their memory, clock and randomness from the host's platform table, as
 * the engine does.
 *
 * The host allocator (support_host.c) puts a 16-byte header (a magic
 * number and the size) in front of every block it hands out.  A block
 * that reached the library some other way (malloc, strdup,
 * open_memstream) and came back to the hook's free, or a hook block given
 * to libc's free(), is then caught at once: the first by the header check
 * (abort), the second by libc or ASan (an invalid free).  So a run that
 * ends with no block outstanding and no abort has seen every allocation of
 * the store and the CSPs go through the table.
 *
 * On that allocator, omadm_certstore_open + omadm_new run the sweeps'
 * CertificateStore message (support_certmsg.h: Add of an intermediate,
 * Get of the root's leaves and of its store, Delete of the root; as a
 * sequence and in an Atomic) while allocation N fails, for N = 1, 2, ...
 * until a run needs no failure; once with only the N-th call failing, once
 * with every call from the N-th on failing.  Every run must end without a
 * crash, with nothing outstanding once the engine and the store are closed
 * (ASan checks libc's side in the sanitize build), and with a consistent
 * store (store_check) that is, byte for byte, in one of the states the
 * message allows: the seed, the seed plus the Add, minus the Delete, or
 * both (never half a batch, never half an Atomic).  After a reply it must
 * be the state the reply's statuses say; after a failure before the
 * message ran, the seed.  A message that fails after its batch became
 * durable (the engine builds its reply after the plugins' end_message)
 * leaves its whole batch; the sweep counts those.  After every run OpenSSL
 * itself is asked too: the root and the intermediate are found through the
 * CApath directory (as `openssl verify -CApath` looks) and in the bundle
 * exactly when their records are there, so a deleted CA is trusted by
 * nobody.
 *
 * OpenSSL's own allocations go through memory functions of this program
 * (CRYPTO_set_mem_functions): a flush of a batch that adds a root and
 * deletes a CA runs while OpenSSL's N-th allocation fails, for every N.
 *
 * The fixed clock of the table is the "added" time of the record an Add
 * writes, and the table's random hook gives the SCEP nonces and the serial
 * number of the request signer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "csp/certstore_internal.h"
#include "csp/scep_msg.h"
#include "platform.h"
#include "store/store.h"
#include "support_certmsg.h"
#include "support_dir.h"
#include "support_dm.h"
#include "support_host.h"
#include "support_ossl.h"
#include "support_pki.h"

/* ---- the message sweeps ---------------------------------------------------- */

/* A run on the hooks without failures (every command 200); the number of
 * allocation calls it made through the table.  store_hooked: the store is
 * opened on the table too (else on the defaults). */
static long reference_calls(const char *dir, bool atomic, thost_t *h, const omadm_platform_t *p,
                            bool store_hooked)
{
    cm_run_t r;
    h->calls = 0;
    cm_run_clean(&r, dir, atomic, p, store_hooked ? p : NULL, NULL);
    long calls = h->calls;
    cm_run_close(&r);
    assert_int_equal(h->outstanding, 0);
    return calls;
}

static void sweep(bool atomic, bool persistent)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/store", cm_tmp);
    thost_t h;
    omadm_platform_t p;
    thost_init(&h, &p);

    /* the store's and the CSPs' allocations go through the hook: with the
     * store on the same table, the hook sees more calls than the engine
     * makes alone */
    long engine_only = reference_calls(dir, atomic, &h, &p, false);
    long all = reference_calls(dir, atomic, &h, &p, true);
    if (all - engine_only < 50)
        fail_msg("the store and the CSPs made only %ld allocation calls through the table",
                 all - engine_only);

    cm_states_t states;
    cm_states_make(&states, dir, atomic);
    cm_stats_t st = {0};
    char *body = cm_test_body(atomic);
    long n;
    for (n = 1; n < 100000; n++) {
        free(cm_fresh_store(dir));
        thost_init(&h, &p);
        thost_arm(&h, n, persistent);
        cm_run_t r;
        cm_run_message(&r, dir, &p, &p, NULL, 2, body);
        thost_disarm(&h);
        cm_count_run(&r, &st);
        if (r.stage && r.err != OMADM_E_NOMEM && r.err != OMADM_E_STORAGE)
            fail_msg("N=%ld: %s failed with \"%s\"", n, r.stage, omadm_strerror(r.err));
        if (!r.stage && r.err != OMADM_OK && r.err != OMADM_E_NOMEM &&
            r.err != OMADM_E_STORAGE && r.err != OMADM_E_ENCODE)
            fail_msg("N=%ld: omadm_process failed with \"%s\"", n, omadm_strerror(r.err));
        cm_run_close(&r);
        if (h.outstanding != 0)
            fail_msg("N=%ld: %ld blocks of the host allocator outstanding after close", n,
                     h.outstanding);
        cm_check_after(&r, dir, &states, atomic, n, "", &st);
        if (h.failures == 0)
            break; /* the N-th call was never made: everything ran */
    }
    free(body);
    cm_states_free(&states);
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
    tdir_rm(dir);
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
    snprintf(dir, sizeof dir, "%s/ossl", cm_tmp);
    store_t *s = NULL;
    const char *why = NULL;

    /* the two states a flush may leave */
    seed_store(dir);
    char *seed = tdir_listing(dir, NULL);
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    stage_batch(s);
    assert_int_equal(store_flush(s), 0);
    store_close(s);
    char *after = tdir_listing(dir, NULL);
    assert_string_not_equal(seed, after);
    assert_int_equal(cm_trust_view_problems(dir), 0);

    long n, failed = 0, applied = 0;
    for (n = 1; n < 100000; n++) {
        seed_store(dir);
        assert_int_equal(store_open(dir, NULL, &s, &why), 0);
        stage_batch(s);
        tossl_arm(n);
        int rc = store_flush(s);
        tossl_arm(0);
        ERR_clear_error();
        store_close(s);
        char what[32];
        snprintf(what, sizeof what, " (the flush returned %d)", rc);
        /* opened again, the store recovers a durable batch */
        cm_expect_state(dir, rc ? seed : after, rc ? "the seed" : "the batch applied", n, what);
        if (rc)
            failed++;
        else
            applied++;
        if (!tossl_failures())
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
    snprintf(dir, sizeof dir, "%s/clock", cm_tmp);
    thost_t h;
    omadm_platform_t p;
    thost_init(&h, &p);
    h.now = 1234567890;
    tdir_rm(dir);
    char *body = cm_seed_body();
    cm_run_t r;
    cm_run_message(&r, dir, &p, &p, NULL, 1, body);
    free(body);
    assert_null(r.stage);
    assert_int_equal(r.err, OMADM_OK);
    assert_int_equal(r.code[2], 200);
    store_t *s = r.cs->store;
    store_rec_t rec;
    assert_int_equal(store_get(s, "root", cm_root.thumb, &rec), 0);
    assert_int_equal(rec.added, 1234567890);
    store_rec_free(s, &rec);
    cm_run_close(&r);
    assert_int_equal(h.outstanding, 0);
    /* and so does the file */
    char file[256];
    snprintf(file, sizeof file, "%s/certs/root/%s", dir, cm_root.thumb);
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
    thost_t h;
    omadm_platform_t p;
    thost_init(&h, &p);
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
    if (!tossl_install()) {
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
    return cmocka_run_group_tests(tests, cm_group_setup, cm_group_teardown);
}
