/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pfx.c - csp/pfx.c through one engine and one store object, as a
 * `dmclient session` uses them: the password held in memory between the
 * messages of a session and gone after the install; and pfx_put_key, the
 * one place a PFX's key goes, by KeyLocation.  (tests/scripts/test-pfx.sh
 * covers the CSP through `dmclient process`.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "csp/pfx.h"
#include "platform.h"
#include "support_dm.h"
#include "support_enroll.h"
#include "support_pki.h"

#define BASE "./Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/S1"
#define PASSWORD "Sitzungs-Kennwort-\xc3\xa4"

static EVP_PKEY *leaf_key(void)
{
    size_t len = 0;
    uint8_t *pem = tpki_read("leaf.key", &len);
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(k);
    return k;
}

static X509 *leaf_cert(void)
{
    size_t len = 0;
    uint8_t *der = tpki_read("leaf.der", &len);
    assert_non_null(der);
    const unsigned char *q = der;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    free(der);
    assert_non_null(x);
    return x;
}

/* The test PKI's leaf and key as a PFX (OpenSSL's defaults), base64. */
static char *leaf_pfx_b64(void)
{
    EVP_PKEY *k = leaf_key();
    X509 *x = leaf_cert();
    PKCS12 *p12 = PKCS12_create(PASSWORD, NULL, k, x, NULL, 0, 0, 0, 0, 0);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    assert_true(n > 0);
    char *b64 = malloc(4 * ((size_t)n + 2) / 3 + 1);
    assert_non_null(b64);
    EVP_EncodeBlock((unsigned char *)b64, der, n);
    OPENSSL_free(der);
    PKCS12_free(p12);
    X509_free(x);
    EVP_PKEY_free(k);
    return b64;
}

static int first_name(void *ctx, const char *name)
{
    snprintf(ctx, 64, "%s", name);
    return 1;
}

static char *get(t_env_t *e, const char *uri)
{
    return t_read(e, uri, NULL, NULL);
}

/* A `dmclient session`: the password comes in one message, the blob in a
 * later one, to the same engine and store object: it installs, and then
 * no password is left in memory (nor anywhere on disk: the record says only
 * that none is set). */
static void test_password_held_between_messages(void **state)
{
    tenr_fx_t *f = *state;
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    assert_int_equal(omadm_certstore_register(e.dm, f->cs), OMADM_OK);
    assert_int_equal(t_send(&e, true,
                            T_ADD("2", BASE "/KeyLocation", "int", "3")
                                T_ADD("3", BASE "/PFXCertPassword", "chr", PASSWORD)),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    assert_int_equal(t_code(&e.reply, "3"), 200);
    assert_non_null(f->cs->pfx); /* held, in memory */
    char *b64 = leaf_pfx_b64();
    char *body = t_strf("<Atomic><CmdID>2</CmdID>" T_ADD("3", BASE "/PFXCertBlob", "chr", "%s")
                        "</Atomic>",
                        b64);
    assert_int_equal(t_send(&e, true, body), OMADM_OK);
    free(body);
    free(b64);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    char *v = get(&e, BASE "/ErrorCode");
    assert_non_null(v);
    assert_string_equal(v, "0");
    free(v);
    char thumb[41];
    assert_int_equal(tpki_thumb("leaf", thumb), 0);
    v = get(&e, BASE "/Thumbprint");
    assert_non_null(v);
    assert_string_equal(v, thumb);
    free(v);
    assert_null(f->cs->pfx); /* used: wiped and gone */
    /* the record names the install and says no password is set */
    char name[64] = "";
    assert_true(store_each_state(f->s, "pfx-d-", first_name, name) >= 0 && name[0]);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(store_get_state(f->s, name, &text, &len), 0);
    assert_non_null(strstr(text, "\npw 0\n"));
    assert_null(strstr(text, "Sitzungs"));
    plat_free(store_platform(f->s), text);
    omadm_cert_identity_t id;
    assert_int_equal(omadm_certstore_identity(f->cs, "my-system", thumb, &id), OMADM_OK);
    omadm_certstore_buffer_free(id.cert_pem);
    omadm_certstore_buffer_free(id.key_pem);
    t_env_done(&e);
}

/* pfx_put_key by KeyLocation: 1 (no TPM configured) and 4 stage nothing and say
 * why; 2 and 3 put the key into the store as the certificate's. */
static void test_put_key_by_location(void **state)
{
    tenr_fx_t *f = *state;
    EVP_PKEY *k = leaf_key();
    const char *thumb = "0123456789ABCDEF0123456789ABCDEF01234567";
    static const struct {
        int kl;
        int32_t ec;
    } cases[] = {{1, (int32_t)0x8028400F}, {4, (int32_t)0x80090029}, {2, 0}, {3, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(pfx_put_key(f->cs, "my-user", thumb, k, cases[i].kl), cases[i].ec);
        char *pem = store_get_key(f->s, "my-user", thumb);
        if (cases[i].ec) {
            assert_null(pem);
        } else {
            assert_non_null(pem);
            BIO *b = BIO_new_mem_buf(pem, -1);
            EVP_PKEY *got = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
            BIO_free(b);
            assert_non_null(got);
            assert_int_equal(EVP_PKEY_eq(got, k), 1);
            EVP_PKEY_free(got);
            plat_free(store_platform(f->s), pem);
        }
        store_rollback(f->s);
    }
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_password_held_between_messages, tenr_setup,
                                        tenr_teardown),
        cmocka_unit_test_setup_teardown(test_put_key_by_location, tenr_setup, tenr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
