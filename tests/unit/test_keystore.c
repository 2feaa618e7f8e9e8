/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_keystore.c - the key stores of csp/keystore*.c:
 *
 *   - software: keys made, written as a blob and loaded again, signatures
 *     that verify with the public key alone, RSA decryption, import of an
 *     EVP_PKEY, and the refusals (key size, a damaged blob, a TPM blob
 *     with no TPM, a bad TCTI string, a TCTI where no TPM answers);
 *   - TPM, with the TPM whose TCTI is in OMADM_TEST_TPM_TCTI (a software
 *     TPM that tests/scripts/test-tpm-keys.sh starts; skipped without it):
 *     a key made in the TPM, its blob a TSS2 PRIVATE KEY that a second
 *     key store loads again, signatures and a CSR and a self-signed
 *     certificate (scep_msg.c) that verify with the public key in
 *     OpenSSL's default context, PKCS #1 v1.5 decryption in the TPM, and
 *     import of a software key (TPM2_Import): the TPM's key is the
 *     software key (its signatures verify with the software public key),
 *     its blob loads in another key store; an EC key and an import while
 *     another key of the store is alive are refused;
 *   - cs_key_for_store (a PFX's key by KeyProtection) and
 *     omadm_certstore_tls_key (a TPM key that signs, PKCS #1 v1.5 and PSS,
 *     in OpenSSL's default context, as TLS makes it sign).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "csp/certstore_internal.h"
#include "csp/enroll.h"
#include "csp/keystore.h"
#include "platform.h"
#include "csp/scep_msg.h"
#include "support_dir.h"

#include <openssl/pem.h>
#include <openssl/provider.h>

static const char msg[] = "the quick brown fox jumps over the lazy dog";

/* The public key of k as a key of OpenSSL's default context. */
static EVP_PKEY *public_of(const ks_key_t *k)
{
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(ks_public_key(k, &der, &len, NULL), KS_OK);
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)len);
    assert_non_null(pub);
    OPENSSL_free(der);
    return pub;
}

static void check_signature(const ks_key_t *k)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    const char *why = NULL;
    assert_int_equal(ks_sign(k, "SHA256", (const uint8_t *)msg, sizeof msg, &sig, &sig_len, &why),
                     KS_OK);
    EVP_PKEY *pub = public_of(k);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, pub, NULL), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)msg, sizeof msg), 1);
    /* and not for other bytes */
    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, pub, NULL), 1);
    assert_int_not_equal(EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)msg, sizeof msg - 2), 1);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pub);
    OPENSSL_free(sig);
}

static void check_decrypt(const ks_key_t *k)
{
    EVP_PKEY *pub = public_of(k);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    uint8_t ct[512], pt[512];
    size_t ct_len = sizeof ct, pt_len = sizeof pt;
    assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(c, ct, &ct_len, (const uint8_t *)msg, 16), 1);
    assert_int_equal(ks_decrypt(k, ct, ct_len, pt, &pt_len, NULL), KS_OK);
    assert_int_equal(pt_len, 16);
    assert_memory_equal(pt, msg, 16);
    /* a damaged ciphertext does not decrypt to the same bytes */
    ct[ct_len / 2] ^= 0x55;
    pt_len = sizeof pt;
    if (ks_decrypt(k, ct, ct_len, pt, &pt_len, NULL) == KS_OK)
        assert_false(pt_len == 16 && memcmp(pt, msg, 16) == 0);
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pub);
}

/* A CSR and a self-signed certificate made with k by the SCEP layer
 * verify with the public key. */
static void check_scep_signing(const keystore_t *ks, unsigned bits)
{
    omadm_platform_t P;
    plat_init(&P, NULL);
    scep_key_t *key = NULL;
    const char *why = NULL;
    assert_int_equal(scep_key_alloc(&P, &key, &why), SCEP_OK);
    assert_int_equal(scep_key_generate(key, ks, bits, &why), SCEP_OK);
    assert_ptr_equal(scep_key_store(key), ks);
    scep_csr_params_t cp = {.subject = "CN=keystore test", .digest = SCEP_DIGEST_SHA256};
    scep_buf_t csr = {0};
    assert_int_equal(scep_csr(&P, key, &cp, &csr, &why), SCEP_OK);
    const unsigned char *p = csr.data;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr.len);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    EVP_PKEY *pub = public_of(scep_key_ks(key));
    assert_int_equal(EVP_PKEY_eq(pub, X509_REQ_get0_pubkey(req)), 1);
    scep_cert_t *self = NULL;
    assert_int_equal(scep_self_signed(&P, key, "CN=keystore test", SCEP_DIGEST_SHA256, 1700000000,
                                      &self, &why),
                     SCEP_OK);
    scep_buf_t der = {0};
    assert_int_equal(scep_cert_to_der(&P, self, &der, &why), SCEP_OK);
    p = der.data;
    X509 *x = d2i_X509(NULL, &p, (long)der.len);
    assert_non_null(x);
    assert_int_equal(X509_verify(x, pub), 1);
    /* the blob loads again in the same key store */
    scep_buf_t blob = {0};
    assert_int_equal(scep_key_to_der(&P, key, &blob, &why), SCEP_OK);
    scep_key_t *again = NULL;
    assert_int_equal(scep_key_load(&P, &ks, 1, blob.data, blob.len, &again, &why), SCEP_OK);
    assert_int_equal(EVP_PKEY_eq(pub, ks_key_pkey(scep_key_ks(again))), 1);
    scep_key_free(&P, again);
    scep_buf_free(&P, &blob);
    X509_free(x);
    scep_buf_free(&P, &der);
    scep_cert_free(&P, self);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    scep_buf_free(&P, &csr);
    scep_key_free(&P, key);
}

static void test_software(void **state)
{
    (void)state;
    const keystore_t *ks = ks_software();
    ks_key_t *k = NULL;
    const char *why = NULL;
    assert_string_equal(ks_name(ks), "software");
    assert_int_equal(ks_generate(ks, 1000, &k, &why), KS_E_INVALID);
    assert_null(k);
    assert_int_equal(ks_generate(ks, 1024, &k, &why), KS_OK);
    assert_string_equal(ks_key_pem_label(k), "PRIVATE KEY");
    check_signature(k);
    check_decrypt(k);
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(ks_blob(k, &blob, &len, &why), KS_OK);
    assert_false(ks_is_tpm_blob(blob, len));
    ks_key_t *k2 = NULL;
    assert_int_equal(ks_load(&ks, 1, blob, len, &k2, &why), KS_OK);
    assert_int_equal(EVP_PKEY_eq(ks_key_pkey(k), ks_key_pkey(k2)), 1);
    check_signature(k2);
    /* a truncated blob */
    ks_key_t *bad = NULL;
    assert_int_not_equal(ks_load(&ks, 1, blob, len - 1, &bad, &why), KS_OK);
    assert_null(bad);
    assert_int_equal(ks_load(&ks, 1, (const uint8_t *)"nonsense", 8, &bad, &why), KS_E_MALFORMED);
    ks_blob_free(blob, len);
    /* import of an EVP_PKEY */
    ks_key_t *imp = NULL;
    assert_int_equal(ks_import(ks, ks_key_pkey(k), &imp, &why), KS_OK);
    assert_int_equal(EVP_PKEY_eq(ks_key_pkey(k), ks_key_pkey(imp)), 1);
    check_signature(imp);
    ks_delete(imp);
    ks_key_free(k2);
    ks_delete(k);
    check_scep_signing(ks, 1024);
}

static void test_tpm_blob_without_tpm(void **state)
{
    (void)state;
    /* SEQUENCE { OID 2.23.133.10.1.3, ... }: a TPM key, and no TPM here */
    static const uint8_t tss2[] = {0x30, 0x0b, 0x06, 0x06, 0x67, 0x81, 0x05, 0x0a,
                                   0x01, 0x03, 0x02, 0x01, 0x00};
    assert_true(ks_is_tpm_blob(tss2, sizeof tss2));
    const keystore_t *ks = ks_software();
    ks_key_t *k = NULL;
    const char *why = NULL;
    assert_int_equal(ks_load(&ks, 1, tss2, sizeof tss2, &k, &why), KS_E_UNAVAILABLE);
    assert_null(k);
    assert_non_null(strstr(why, "TPM"));
}

static void test_tpm_open_refusals(void **state)
{
    (void)state;
    keystore_t *ks = (keystore_t *)1;
    const char *why = NULL;
    assert_int_equal(ks_tpm_open("", &ks, &why), KS_E_INVALID);
    assert_null(ks);
    assert_int_equal(ks_tpm_open("swtpm:host=a b", &ks, &why), KS_E_INVALID);
    assert_int_equal(ks_tpm_open("device:/dev/x\n", &ks, &why), KS_E_INVALID);
    assert_int_equal(ks_tpm_open(NULL, &ks, &why), KS_E_INVALID);
    /* a TCTI where nothing answers: port 1 of 127.0.0.1 */
    assert_int_equal(ks_tpm_open("swtpm:host=127.0.0.1,port=1", &ks, &why), KS_E_UNAVAILABLE);
    assert_null(ks);
    assert_non_null(strstr(why, "TPM"));
}

static const char *tpm_tcti(void)
{
    const char *t = getenv("OMADM_TEST_TPM_TCTI");
    return t && *t ? t : NULL;
}

static void test_tpm(void **state)
{
    (void)state;
    if (!tpm_tcti()) {
        skip();
        return;
    }
    keystore_t *ks = NULL;
    const char *why = NULL;
    assert_int_equal(ks_tpm_open(tpm_tcti(), &ks, &why), KS_OK);
    assert_string_equal(ks_name(ks), "tpm");
    /* in its library context the TPM signs and decrypts; digests and
     * ciphers stay OpenSSL's own (not TPM commands), even for a query that
     * prefers the tpm2 provider */
    EVP_MD *sha = EVP_MD_fetch(ks->libctx, "SHA256", "?provider=tpm2");
    EVP_CIPHER *aes = EVP_CIPHER_fetch(ks->libctx, "AES-128-CBC", "?provider=tpm2");
    assert_non_null(sha);
    assert_non_null(aes);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(sha)), "default");
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(aes)), "default");
    EVP_MD_free(sha);
    EVP_CIPHER_free(aes);
    ks_key_t *k = NULL;
    assert_int_equal(ks_generate(ks, 2048, &k, &why), KS_OK);
    assert_string_equal(ks_key_pem_label(k), "TSS2 PRIVATE KEY");
    check_signature(k);
    check_decrypt(k);
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(ks_blob(k, &blob, &len, &why), KS_OK);
    assert_true(ks_is_tpm_blob(blob, len));
    /* the software store does not take it; the TPM one does */
    const keystore_t *both[] = {ks_software(), ks};
    assert_ptr_equal(ks_owner(both, 2, blob, len), ks);
    EVP_PKEY *pub = public_of(k);
    ks_key_free(k);
    ks_close(ks);
    /* a second key store (another connection) loads the blob */
    assert_int_equal(ks_tpm_open(tpm_tcti(), &ks, &why), KS_OK);
    const keystore_t *again[] = {ks};
    ks_key_t *k2 = NULL;
    assert_int_equal(ks_load(again, 1, blob, len, &k2, &why), KS_OK);
    assert_int_equal(EVP_PKEY_eq(pub, ks_key_pkey(k2)), 1);
    check_signature(k2);
    check_decrypt(k2);
    ks_key_free(k2);
    /* a blob with a damaged private part does not load */
    blob[len - 10] ^= 0x5a;
    ks_key_t *bad = NULL;
    assert_int_not_equal(ks_load(again, 1, blob, len, &bad, &why), KS_OK);
    assert_null(bad);
    ks_blob_free(blob, len);
    check_scep_signing(ks, 2048);
    EVP_PKEY_free(pub);
    ks_close(ks);
}

static void test_tpm_import(void **state)
{
    (void)state;
    if (!tpm_tcti()) {
        skip();
        return;
    }
    keystore_t *ks = NULL;
    const char *why = NULL;
    assert_int_equal(ks_tpm_open(tpm_tcti(), &ks, &why), KS_OK);
    EVP_PKEY *soft = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(soft);
    ks_key_t *k = NULL;
    ks_err_t err = ks_import(ks, soft, &k, &why);
    if (err == KS_E_UNSUPPORTED && strstr(why, "built without")) {
        /* a build without tpm2-tss's ESAPI says so */
        EVP_PKEY_free(soft);
        ks_close(ks);
        skip();
        return;
    }
    assert_int_equal(err, KS_OK);
    assert_string_equal(ks_key_pem_label(k), "TSS2 PRIVATE KEY");
    /* the TPM's key is the software key: same public key, its signatures
     * verify with the software key's public half, it decrypts for it */
    assert_int_equal(EVP_PKEY_eq(soft, ks_key_pkey(k)), 1);
    check_signature(k);
    check_decrypt(k);
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    assert_int_equal(ks_sign(k, "SHA256", (const uint8_t *)msg, sizeof msg, &sig, &sig_len, &why),
                     KS_OK);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, soft, NULL), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)msg, sizeof msg), 1);
    EVP_MD_CTX_free(m);
    OPENSSL_free(sig);
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(ks_blob(k, &blob, &len, &why), KS_OK);
    assert_true(ks_is_tpm_blob(blob, len));
    /* another import while a key of the store is alive is refused */
    ks_key_t *k2 = NULL;
    assert_int_equal(ks_import(ks, soft, &k2, &why), KS_E_INVALID);
    assert_null(k2);
    ks_key_free(k);
    ks_close(ks);
    /* the blob loads in a new key store and still signs */
    assert_int_equal(ks_tpm_open(tpm_tcti(), &ks, &why), KS_OK);
    const keystore_t *one[] = {ks};
    assert_int_equal(ks_load(one, 1, blob, len, &k2, &why), KS_OK);
    assert_int_equal(EVP_PKEY_eq(soft, ks_key_pkey(k2)), 1);
    check_signature(k2);
    ks_key_free(k2);
    /* a key the TPM cannot hold: EC */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    assert_int_equal(ks_import(ks, ec, &k2, &why), KS_E_UNSUPPORTED);
    assert_null(k2);
    EVP_PKEY_free(ec);
    /* OMADM_TEST_TPM_IMPORTED: where to leave the blob for tpm2-tools/openssl */
    const char *path = getenv("OMADM_TEST_TPM_IMPORTED");
    if (path && *path) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(blob, 1, len, f), len);
        fclose(f);
    }
    ks_blob_free(blob, len);
    EVP_PKEY_free(soft);
    ks_close(ks);
}

/* The DER inside a PEM of label (from a string), *len bytes (OPENSSL_free). */
static uint8_t *pem_der(const char *pem, const char *label, long *len)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    assert_int_equal(PEM_read_bio(b, &name, &header, &der, len), 1);
    assert_string_equal(name, label);
    OPENSSL_free(name);
    OPENSSL_free(header);
    BIO_free(b);
    return der;
}

/* cs_key_for_store (the PFX install's way in): a software key as the store
 * keeps it, by KeyProtection, with and without a TPM. */
static void test_key_for_store(void **state)
{
    (void)state;
    char dir[256];
    assert_int_equal(tdir_make(dir, sizeof dir), 0);
    omadm_certstore_t *cs = NULL;
    assert_int_equal(omadm_certstore_open(dir, NULL, &cs, NULL), OMADM_OK);
    EVP_PKEY *soft = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(soft);
    char *pem = NULL;
    const char *why = NULL;
    long len = 0;
    /* 3: software, the PKCS#8 of the same key */
    assert_int_equal(cs_key_for_store(cs, soft, 3, &pem, &why), 0);
    uint8_t *der = pem_der(pem, "PRIVATE KEY", &len);
    const keystore_t *soft_ks = ks_software();
    ks_key_t *k = NULL;
    assert_int_equal(ks_load(&soft_ks, 1, der, (size_t)len, &k, &why), KS_OK);
    assert_int_equal(EVP_PKEY_eq(soft, ks_key_pkey(k)), 1);
    ks_key_free(k);
    OPENSSL_free(der);
    plat_free(&cs->plat, pem);
    /* no TPM configured: 1 fails with TBS_E_TPM_NOT_FOUND, 2 keeps the software key */
    assert_int_equal(cs_key_for_store(cs, soft, 1, &pem, &why), EC_NO_TPM);
    assert_null(pem);
    assert_int_equal(cs_key_for_store(cs, soft, 2, &pem, &why), 0);
    assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    plat_free(&cs->plat, pem);
    assert_int_equal(cs_key_for_store(cs, soft, 4, &pem, &why), EC_INVALID_ARG);
    /* a TCTI where no TPM answers: the same */
    assert_int_equal(omadm_certstore_set_tpm(cs, "swtpm:host=127.0.0.1,port=1"), OMADM_OK);
    assert_int_equal(cs_key_for_store(cs, soft, 1, &pem, &why), EC_NO_TPM);
    assert_null(pem);
    /* a bad TCTI string is refused and changes nothing */
    assert_int_equal(omadm_certstore_set_tpm(cs, "swtpm:host=a b"), OMADM_E_INVALID_ARG);
    assert_string_equal(omadm_certstore_tpm(cs), "swtpm:host=127.0.0.1,port=1");
    if (tpm_tcti()) {
        /* 1 and 2 with the TPM: the key imported, a TSS2 key the TPM loads */
        assert_int_equal(omadm_certstore_set_tpm(cs, tpm_tcti()), OMADM_OK);
        for (unsigned kp = 1; kp <= 2; kp++) {
            assert_int_equal(cs_key_for_store(cs, soft, kp, &pem, &why), 0);
            der = pem_der(pem, "TSS2 PRIVATE KEY", &len);
            keystore_t *tpm = NULL;
            assert_int_equal(ks_tpm_open(tpm_tcti(), &tpm, &why), KS_OK);
            const keystore_t *one[] = {tpm};
            assert_int_equal(ks_load(one, 1, der, (size_t)len, &k, &why), KS_OK);
            assert_int_equal(EVP_PKEY_eq(soft, ks_key_pkey(k)), 1);
            check_signature(k);
            ks_key_free(k);
            ks_close(tpm);
            OPENSSL_free(der);
            plat_free(&cs->plat, pem);
        }
    }
    assert_int_equal(omadm_certstore_set_tpm(cs, NULL), OMADM_OK);
    assert_null(omadm_certstore_tpm(cs));
    EVP_PKEY_free(soft);
    omadm_certstore_close(cs);
    tdir_rm(dir);
}

/* Signature by an EVP_PKEY of the default context with padding (PKCS #1
 * v1.5 or PSS, as TLS 1.2 and 1.3 sign), verified with pub. */
static void sign_default_ctx(EVP_PKEY *key, EVP_PKEY *pub, int padding)
{
    uint8_t sig[512];
    size_t sig_len = sizeof sig;
    EVP_PKEY_CTX *pc = NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit_ex(m, &pc, "SHA256", NULL, NULL, key, NULL), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, padding), 1);
    assert_int_equal(EVP_DigestSign(m, sig, &sig_len, (const uint8_t *)msg, sizeof msg), 1);
    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit_ex(m, &pc, "SHA256", NULL, NULL, pub, NULL), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, padding), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)msg, sizeof msg), 1);
    EVP_MD_CTX_free(m);
}

/* omadm_certstore_tls_key: a TPM key signing in OpenSSL's default context,
 * as a TLS library makes it sign; the refusals. */
static void test_tls_key(void **state)
{
    (void)state;
    char dir[256];
    assert_int_equal(tdir_make(dir, sizeof dir), 0);
    omadm_certstore_t *cs = NULL;
    assert_int_equal(omadm_certstore_open(dir, NULL, &cs, NULL), OMADM_OK);
    omadm_tls_key_t *tk = NULL;
    const char *why = NULL;
    static const char not_tss2[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_int_equal(omadm_certstore_tls_key(cs, not_tss2, strlen(not_tss2), &tk, &why),
                     OMADM_E_INVALID_ARG);
    assert_null(tk);
    if (tpm_tcti()) {
        keystore_t *tpm = NULL;
        assert_int_equal(ks_tpm_open(tpm_tcti(), &tpm, &why), KS_OK);
        ks_key_t *k = NULL;
        assert_int_equal(ks_generate(tpm, 2048, &k, &why), KS_OK);
        uint8_t *der = NULL;
        size_t len = 0;
        assert_int_equal(ks_blob(k, &der, &len, &why), KS_OK);
        EVP_PKEY *pub = public_of(k);
        ks_key_free(k);
        ks_close(tpm);
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        assert_true(PEM_write_bio(b, "TSS2 PRIVATE KEY", "", der, (long)len) > 0);
        long n = BIO_get_mem_data(b, &pem);
        /* no TPM configured: the key cannot be used */
        assert_int_equal(omadm_certstore_tls_key(cs, pem, (size_t)n, &tk, &why), OMADM_E_NO_DEVICE);
        assert_null(tk);
        assert_int_equal(omadm_certstore_set_tpm(cs, tpm_tcti()), OMADM_OK);
        omadm_error_t e = omadm_certstore_tls_key(cs, pem, (size_t)n, &tk, &why);
        if (e == OMADM_E_NO_DEVICE && strstr(why, "lacks")) {
            skip(); /* a build without tpm2-tss's headers */
        } else {
            assert_int_equal(e, OMADM_OK);
            EVP_PKEY *key = omadm_tls_key_pkey(tk);
            assert_int_equal(EVP_PKEY_eq(key, pub), 1);
            sign_default_ctx(key, pub, RSA_PKCS1_PADDING);
            sign_default_ctx(key, pub, RSA_PKCS1_PSS_PADDING);
            omadm_tls_key_free(tk);
        }
        BIO_free(b);
        OPENSSL_free(der);
        EVP_PKEY_free(pub);
    }
    omadm_certstore_close(cs);
    tdir_rm(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_software),
        cmocka_unit_test(test_tpm_blob_without_tpm),
        cmocka_unit_test(test_tpm_open_refusals),
        cmocka_unit_test(test_tpm),
        cmocka_unit_test(test_tpm_import),
        cmocka_unit_test(test_key_for_store),
        cmocka_unit_test(test_tls_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
