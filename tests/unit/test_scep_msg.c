/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_scep_msg.c - csp/scep_msg.c, the SCEP message layer, offline:
 *   - GetCACaps parsing and the cipher/digest choice against HashAlgorithm;
 *   - the X.500 subject parser, CSR contents (SAN types incl. UPN otherName,
 *     KeyUsage bits, EKUs, challengePassword, requested validity) read back
 *     with OpenSSL, and refusals of bad parameters;
 *   - self-signed signer, transactionID;
 *   - PKCSReq / RenewalReq / CertPoll decoded with the CMS API as a CA would:
 *     signed attributes, nonce, envelope decrypted with the CA key;
 *   - GetCACert sets (single, RA set, chain) and the role choice;
 *   - CAThumbprint matching, directly and through a chain to a device root;
 *   - CertRep checking with replies built here by a fake CA: SUCCESS (AES,
 *     3DES, single DES via the legacy provider, shaNWithRSAEncryption label,
 *     RA signer), PENDING, FAILURE + failInfo, and each rejection;
 *   - a real micromdm 2.1.0 CertRep captured by tests/scripts/test-scep-msg-live.sh
 *     (tests/data/scep/micromdm/), parsed offline;
 *   - random, truncated and bit-flipped inputs to every parser (seeded, so
 *     the run is repeatable).
 * Keys are generated per run (RSA-1024 for speed); nothing depends on them.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csp/scep_msg.h"
#include "platform.h"

/* The library's default platform table (libc allocator, time(), OpenSSL's
 * RNG), for the calls that take one. */
static omadm_platform_t P;

#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"

#define NOW ((int64_t)1893456000)   /* 2030-01-01, inside every test cert's validity */

/* ---- small helpers --------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static EVP_PKEY *rsa_key(unsigned bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, const char *name, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, name, value);
    assert_non_null(e);
    assert_true(X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by issuer/issuer_key (self-signed when NULL),
 * valid 2025..2035 (or 2020..2021 when expired); exts "name=value|name=value". */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *exts, bool expired)
{
    static long serial = 100;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"SCEP Test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set_string(X509_getm_notBefore(x), expired ? "20200101000000Z" : "20250101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(x), expired ? "20210101000000Z" : "20350101000000Z");
    X509_set_pubkey(x, key);
    add_ext(x, issuer ? issuer : x, "subjectKeyIdentifier", "hash");
    if (issuer)
        add_ext(x, issuer, "authorityKeyIdentifier", "keyid:always");
    char buf[512];
    snprintf(buf, sizeof buf, "%s", exts ? exts : "");
    for (char *save = NULL, *tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = 0;
        add_ext(x, issuer ? issuer : x, tok, eq + 1);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static uint8_t *der_of_cert(X509 *x, size_t *len)
{
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    assert_true(n > 0);
    *len = (size_t)n;
    return d;
}

/* Degenerate certs-only PKCS#7 of certs. */
static uint8_t *degenerate(X509 **certs, size_t n, size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    assert_non_null(p7);
    assert_true(PKCS7_set_type(p7, NID_pkcs7_signed));
    assert_true(PKCS7_content_new(p7, NID_pkcs7_data));
    for (size_t i = 0; i < n; i++)
        assert_true(PKCS7_add_certificate(p7, certs[i]));
    unsigned char *d = NULL;
    int l = i2d_PKCS7(p7, &d);
    assert_true(l > 0);
    PKCS7_free(p7);
    *len = (size_t)l;
    return d;
}

static scep_certset_t *set_of(X509 **certs, size_t n)
{
    size_t len = 0;
    uint8_t *der = n == 1 ? der_of_cert(certs[0], &len) : degenerate(certs, n, &len);
    scep_certset_t *set = NULL;
    const char *why = NULL;
    assert_int_equal(scep_cacert_parse(&P, der, len, &set, &why), SCEP_OK);
    OPENSSL_free(der);
    return set;
}

static X509 *x509_of(const scep_cert_t *c)
{
    scep_buf_t b = {0};
    assert_int_equal(scep_cert_to_der(&P, c, &b, NULL), SCEP_OK);
    const unsigned char *p = b.data;
    X509 *x = d2i_X509(NULL, &p, (long)b.len);
    assert_non_null(x);
    scep_buf_free(&P, &b);
    return x;
}

static bool same_cert(const scep_cert_t *c, X509 *x)
{
    X509 *y = x509_of(c);
    bool same = X509_cmp(x, y) == 0;
    X509_free(y);
    return same;
}

static EVP_PKEY *pkey_of(const scep_key_t *k)
{
    scep_buf_t b = {0};
    assert_int_equal(scep_key_to_der(&P, k, &b, NULL), SCEP_OK);
    const unsigned char *p = b.data;
    EVP_PKEY *pk = d2i_AutoPrivateKey(NULL, &p, (long)b.len);
    assert_non_null(pk);
    scep_buf_free(&P, &b);
    return pk;
}

static bool dir_up(char *cur, char *found, size_t size);

static const char *data_dir(void)
{
    static char found[4096];
    struct stat st;
    const char *top = getenv("OMADM_TOP");
    if (top && *top) {
        snprintf(found, sizeof found, "%s/tests/data/scep", top);
        return stat(found, &st) == 0 ? found : NULL;
    }
    char cur[3800];
    /* from the current directory up, then from the program's own directory
     * up (build/<variant>/tests/ is inside the repository) */
    for (int from_exe = 0; from_exe < 2; from_exe++) {
        if (from_exe) {
            ssize_t n = readlink("/proc/self/exe", cur, sizeof cur - 1);
            if (n <= 0)
                return NULL;
            cur[n] = 0;
        } else if (!getcwd(cur, sizeof cur)) {
            continue;
        }
        if (dir_up(cur, found, sizeof found))
            return found;
    }
    return NULL;
}

/* Look for tests/data/scep in cur and its parents (cur is modified). */
static bool dir_up(char *cur, char *found, size_t size)
{
    struct stat st;
    for (;;) {
        snprintf(found, size, "%s/tests/data/scep", cur);
        if (stat(found, &st) == 0 && S_ISDIR(st.st_mode))
            return true;
        char *slash = strrchr(cur, '/');
        if (!slash || slash == cur)
            return false;
        *slash = 0;
    }
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(SCEP_MAX_DER);
    size_t n = buf ? fread(buf, 1, SCEP_MAX_DER, f) : 0;
    fclose(f);
    *len = n;
    return buf;
}

/* ---- GetCACaps --------------------------------------------------------------------- */

static void test_caps_parse(void **state)
{
    (void)state;
    const char *mm = "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";
    assert_int_equal(scep_caps_parse(mm, strlen(mm)),
                     SCEP_CAP_RENEWAL | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 | SCEP_CAP_AES |
                         SCEP_CAP_DES3 | SCEP_CAP_STANDARD | SCEP_CAP_POST);
    const char *crlf = "aes\r\nsha-512\r\nGETNEXTCACERT\r\nSHA-384\r\nUpdate\r\nDES\r\n\r\n";
    assert_int_equal(scep_caps_parse(crlf, strlen(crlf)),
                     SCEP_CAP_AES | SCEP_CAP_SHA512 | SCEP_CAP_NEXT_CA);
    assert_int_equal(scep_caps_parse("", 0), 0);
    assert_int_equal(scep_caps_parse(NULL, 5), 0);
    /* words must match whole: "AESX", "SHA-1x" are unknown; NULs separate */
    const char nul[] = "AESX SHA-1x\0SHA-1\0";
    assert_int_equal(scep_caps_parse(nul, sizeof nul - 1), SCEP_CAP_SHA1);
    /* length is respected (no NUL needed) */
    assert_int_equal(scep_caps_parse("AES\nDES3", 3), SCEP_CAP_AES);
    assert_true(scep_caps_post(SCEP_CAP_POST));
    assert_true(scep_caps_post(SCEP_CAP_STANDARD));
    assert_false(scep_caps_post(SCEP_CAP_AES | SCEP_CAP_SHA256));
}

static void choose_ok(unsigned caps, const char *fam, scep_cipher_t c, scep_digest_t d)
{
    scep_cipher_t gc = 0;
    scep_digest_t gd = 0;
    const char *why = NULL;
    scep_err_t err = scep_caps_choose(caps, fam, &gc, &gd, &why);
    if (err != SCEP_OK)
        fail_msg("choose(%#x, %s): %s", caps, fam ? fam : "NULL", why);
    assert_int_equal(gc, c);
    assert_int_equal(gd, d);
}

static void choose_err(unsigned caps, const char *fam, scep_err_t want)
{
    scep_cipher_t gc = 0;
    scep_digest_t gd = 0;
    const char *why = NULL;
    assert_int_equal(scep_caps_choose(caps, fam, &gc, &gd, &why), want);
    assert_non_null(why);
}

static void test_caps_choose(void **state)
{
    (void)state;
    unsigned mm = SCEP_CAP_RENEWAL | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 | SCEP_CAP_AES |
                  SCEP_CAP_DES3 | SCEP_CAP_STANDARD | SCEP_CAP_POST;
    choose_ok(mm, "SHA-1", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA1);    /* the MS example */
    choose_ok(mm, "SHA-2", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "SHA-1+SHA-2", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, " sha-1 + sha2 ", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "SHA256", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, NULL, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "  ", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(SCEP_CAP_STANDARD, "SHA-2", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(SCEP_CAP_DES3 | SCEP_CAP_SHA1, "SHA-1+SHA-2", SCEP_CIPHER_DES3_CBC, SCEP_DIGEST_SHA1);
    choose_ok(SCEP_CAP_AES | SCEP_CAP_SHA512 | SCEP_CAP_SHA1, "SHA-2+SHA-1", SCEP_CIPHER_AES128_CBC,
              SCEP_DIGEST_SHA512);
    choose_ok(SCEP_CAP_AES | SCEP_CAP_SHA512 | SCEP_CAP_SHA1, "SHA-1", SCEP_CIPHER_AES128_CBC,
              SCEP_DIGEST_SHA1);
    /* nothing acceptable left */
    choose_err(0, NULL, SCEP_E_NO_ALGORITHM);                                  /* no GetCACaps */
    choose_err(SCEP_CAP_SHA256, NULL, SCEP_E_NO_ALGORITHM);                    /* no cipher */
    choose_err(SCEP_CAP_AES, NULL, SCEP_E_NO_ALGORITHM);                       /* only MD5 */
    choose_err(SCEP_CAP_AES | SCEP_CAP_SHA512, "SHA-1", SCEP_E_NO_ALGORITHM);
    choose_err(SCEP_CAP_AES | SCEP_CAP_SHA1, "SHA-2", SCEP_E_NO_ALGORITHM);
    choose_err(mm, "SHA-3", SCEP_E_NO_ALGORITHM);
    choose_err(mm, "MD5", SCEP_E_INVALID_ARG);
    choose_err(mm, "SHA-1+MD5", SCEP_E_INVALID_ARG);
    choose_err(mm, "+", SCEP_E_INVALID_ARG);
    /* ';' separates as '+' does (Intune sends "SHA-1;SHA-2"), mixed too;
     * empty parts are skipped while one part names a family */
    choose_ok(mm, "SHA-1;SHA-2", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, " SHA-1 ; SHA-2 ", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(SCEP_CAP_DES3 | SCEP_CAP_SHA1, "SHA-1;SHA-2", SCEP_CIPHER_DES3_CBC, SCEP_DIGEST_SHA1);
    choose_ok(SCEP_CAP_AES | SCEP_CAP_SHA512 | SCEP_CAP_SHA1, "SHA-2;SHA-1", SCEP_CIPHER_AES128_CBC,
              SCEP_DIGEST_SHA512);
    choose_ok(mm, "SHA-1;SHA-2+SHA-3", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "SHA-3+SHA-1;", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA1);
    choose_ok(mm, ";SHA-1;;SHA-2;", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "SHA-1+;SHA-2", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    choose_ok(mm, "SHA-1;", SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA1);
    choose_err(mm, ";", SCEP_E_INVALID_ARG);
    choose_err(mm, " ; + ; ", SCEP_E_INVALID_ARG);
    choose_err(mm, "SHA-1;MD5", SCEP_E_INVALID_ARG);
    choose_err(mm, "SHA-1,SHA-2", SCEP_E_INVALID_ARG);   /* ',' is no separator */
    choose_err(mm, "SHA-3;", SCEP_E_NO_ALGORITHM);
    assert_string_equal(scep_cipher_name(SCEP_CIPHER_AES128_CBC), "AES-128-CBC");
    assert_string_equal(scep_digest_name(SCEP_DIGEST_SHA1), "SHA-1");
    assert_string_equal(scep_digest_name(0), "?");
}

/* ---- keys, CSR ------------------------------------------------------------------------ */

typedef struct world {
    scep_key_t *dev;            /* device key (scep_keygen_rsa) */
    scep_cert_t *signer;        /* its self-signed signer */
    char txid[SCEP_TXID_LEN + 1];
    EVP_PKEY *ca_key, *other_key, *ra_key, *root_key;
    X509 *ca, *other_ca, *ra_sig, *ra_enc, *root, *inter;
    EVP_PKEY *inter_key;
    scep_certset_t *ca_set;     /* { ca } */
} world_t;

static int world_setup(void **state)
{
    world_t *w = calloc(1, sizeof *w);
    const char *why = NULL;
    if (scep_keygen_rsa(&P, 1024, &w->dev, &why) != SCEP_OK)
        return -1;
    if (scep_self_signed(&P, w->dev, "CN=dev1,O=Test", SCEP_DIGEST_SHA256, NOW, &w->signer, &why))
        return -1;
    if (scep_transaction_id(w->dev, w->txid, &why) != SCEP_OK)
        return -1;
    w->ca_key = rsa_key(1024);
    w->other_key = rsa_key(1024);
    w->ra_key = rsa_key(1024);
    w->root_key = rsa_key(1024);
    w->inter_key = rsa_key(1024);
    w->ca = make_cert("Test CA", w->ca_key, NULL, NULL,
                      "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign", false);
    w->other_ca = make_cert("Test CA", w->other_key, NULL, NULL,
                            "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign", false);
    w->root = make_cert("Root", w->root_key, NULL, NULL,
                        "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign", false);
    w->inter = make_cert("Issuing CA", w->inter_key, w->root, w->root_key,
                         "basicConstraints=critical,CA:TRUE|keyUsage=critical,keyCertSign,cRLSign,digitalSignature", false);
    w->ra_sig = make_cert("RA sign", w->ra_key, w->inter, w->inter_key,
                          "keyUsage=critical,digitalSignature", false);
    w->ra_enc = make_cert("RA enc", w->ra_key, w->inter, w->inter_key,
                          "keyUsage=critical,keyEncipherment", false);
    w->ca_set = set_of(&w->ca, 1);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    world_t *w = *state;
    scep_key_free(&P, w->dev);
    scep_cert_free(&P, w->signer);
    EVP_PKEY_free(w->ca_key);
    EVP_PKEY_free(w->other_key);
    EVP_PKEY_free(w->ra_key);
    EVP_PKEY_free(w->root_key);
    EVP_PKEY_free(w->inter_key);
    X509_free(w->ca);
    X509_free(w->other_ca);
    X509_free(w->root);
    X509_free(w->inter);
    X509_free(w->ra_sig);
    X509_free(w->ra_enc);
    scep_certset_free(&P, w->ca_set);
    free(w);
    return 0;
}

static void test_keys(void **state)
{
    world_t *w = *state;
    const char *why = NULL;
    scep_key_t *k = NULL;
    assert_int_equal(scep_keygen_rsa(&P, 512, &k, &why), SCEP_E_INVALID_ARG);
    assert_null(k);
    assert_int_equal(scep_keygen_rsa(&P, 3072, &k, &why), SCEP_E_INVALID_ARG);
    /* keys from the parallel prime search: exact size, e = 65537, and a
     * full OpenSSL check (primality of p and q, d, the CRT values), a
     * signature and a decryption work; no two keys alike */
    EVP_PKEY *seen[4] = {0};
    for (int i = 0; i < 4; i++) {
        unsigned bits = i < 2 ? 1024 : i == 2 ? 2048 : 4096;
        scep_key_t *kk = NULL;
        assert_int_equal(scep_keygen_rsa(&P, bits, &kk, &why), SCEP_OK);
        EVP_PKEY *pk = pkey_of(kk);
        assert_int_equal(EVP_PKEY_get_bits(pk), (int)bits);
        BIGNUM *e = NULL;
        assert_true(EVP_PKEY_get_bn_param(pk, "e", &e));
        assert_true(BN_is_word(e, 65537));
        BN_free(e);
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        assert_int_equal(EVP_PKEY_check(c), 1);
        EVP_PKEY_CTX_free(c);
        unsigned char sig[512], msg[32] = "to be signed", pt[512], ct[512];
        size_t sl = sizeof sig, cl = sizeof ct, pl = sizeof pt;
        c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
        assert_int_equal(EVP_PKEY_sign_init(c), 1);
        assert_int_equal(EVP_PKEY_sign(c, sig, &sl, msg, sizeof msg), 1);
        assert_int_equal(EVP_PKEY_verify_init(c), 1);
        assert_int_equal(EVP_PKEY_verify(c, sig, sl, msg, sizeof msg), 1);
        assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
        assert_int_equal(EVP_PKEY_encrypt(c, ct, &cl, msg, sizeof msg), 1);
        assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
        assert_int_equal(EVP_PKEY_decrypt(c, pt, &pl, ct, cl), 1);
        assert_int_equal(pl, sizeof msg);
        assert_memory_equal(pt, msg, sizeof msg);
        EVP_PKEY_CTX_free(c);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(EVP_PKEY_eq(seen[j], pk), 1);
        seen[i] = pk;
        scep_key_free(&P, kk);
    }
    for (int i = 0; i < 4; i++)
        EVP_PKEY_free(seen[i]);
    assert_int_equal(scep_keygen_rsa(&P, 2048, &k, &why), SCEP_OK);
    /* DER round trip keeps the key (and so the transaction ID) */
    scep_buf_t der = {0};
    assert_int_equal(scep_key_to_der(&P, k, &der, &why), SCEP_OK);
    scep_key_t *k2 = NULL;
    assert_int_equal(scep_key_from_der(&P, der.data, der.len, &k2, &why), SCEP_OK);
    char t1[SCEP_TXID_LEN + 1], t2[SCEP_TXID_LEN + 1];
    assert_int_equal(scep_transaction_id(k, t1, &why), SCEP_OK);
    assert_int_equal(scep_transaction_id(k2, t2, &why), SCEP_OK);
    assert_string_equal(t1, t2);
    assert_string_not_equal(t1, w->txid);
    scep_buf_free(&P, &der);
    assert_null(der.data);
    scep_buf_free(&P, &der);   /* twice is fine */
    scep_key_free(&P, k);
    scep_key_free(&P, k2);
    scep_key_free(&P, NULL);
    /* transactionID = upper-case hex SHA-256 of the DER SPKI */
    EVP_PKEY *dev = pkey_of(w->dev);
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(dev, &spki);
    uint8_t md[32];
    assert_true(EVP_Digest(spki, (size_t)n, md, NULL, EVP_sha256(), NULL));
    char hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02X", md[i]);
    assert_string_equal(w->txid, hex);
    OPENSSL_free(spki);
    EVP_PKEY_free(dev);
    assert_int_equal(scep_key_from_der(&P, (const uint8_t *)"xx", 2, &k, &why), SCEP_E_MALFORMED);
    assert_null(k);
}

static X509_REQ *csr_make(const scep_key_t *key, const scep_csr_params_t *p)
{
    scep_buf_t der = {0};
    const char *why = NULL;
    scep_err_t err = scep_csr(&P, key, p, &der, &why);
    if (err != SCEP_OK)
        fail_msg("scep_csr: %s", why);
    const unsigned char *q = der.data;
    X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)der.len);
    assert_non_null(req);
    assert_ptr_equal(q, der.data + der.len);
    scep_buf_free(&P, &der);
    return req;
}

static scep_err_t csr_err(const scep_key_t *key, const scep_csr_params_t *p)
{
    scep_buf_t der = {0};
    const char *why = NULL;
    scep_err_t err = scep_csr(&P, key, p, &der, &why);
    if (err != SCEP_OK) {
        assert_non_null(why);
        assert_null(der.data);
    }
    scep_buf_free(&P, &der);
    return err;
}

static char *name_text(const X509_NAME *n)
{
    static char buf[512];
    BIO *b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int len = BIO_read(b, buf, sizeof buf - 1);
    buf[len > 0 ? len : 0] = 0;
    BIO_free(b);
    return buf;
}

static void test_subject_names(void **state)
{
    world_t *w = *state;
    scep_csr_params_t p = {.digest = SCEP_DIGEST_SHA256};
    /* encoded in string order, so RFC 2253 (reversed) prints it backwards */
    p.subject = "CN=AnnaLee";
    X509_REQ *r = csr_make(w->dev, &p);
    assert_string_equal(name_text(X509_REQ_get_subject_name(r)), "CN=AnnaLee");
    X509_REQ_free(r);
    p.subject = " CN = Anna Lee , O=\"Contoso, Ltd\"; OU=a+OU=b ,C=US,E=a@b.c,"
                "OID.2.5.4.5=123,2.5.4.97=x y,T=\"say \"\"hi\"\"\",DC=example,L=\"  pad  \"";
    r = csr_make(w->dev, &p);
    X509_NAME *n = X509_REQ_get_subject_name(r);
    assert_string_equal(name_text(n),
                        "L=\\  pad \\ ,DC=example,title=say \\\"hi\\\",organizationIdentifier=x y,"
                        "serialNumber=123,emailAddress=a@b.c,C=US,OU=b+OU=a,O=Contoso\\, Ltd,CN=Anna Lee");
    /* C is a PrintableString, E an IA5String, CN a UTF8String; OU=a+OU=b one RDN */
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, 0))), V_ASN1_UTF8STRING);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, 4))), V_ASN1_PRINTABLESTRING);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, 5))), V_ASN1_IA5STRING);
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)), X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 3)));
    assert_int_not_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)), X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)));
    X509_REQ_free(r);
    /* UTF-8 values */
    p.subject = "CN=J\xc3\xbcrgen";
    r = csr_make(w->dev, &p);
    X509_REQ_free(r);
    static const char *const bad[] = {
        "", "   ", "CN", "=x", "CN=\"open", "XX=1", "CN=a,", "CN=a,,O=b", "CN=\"a\"b",
        "OID.1.x=3", "C=USA", "CN=\xff\xfe", "CN=a+", ",CN=a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p.subject = bad[i];
        if (csr_err(w->dev, &p) != SCEP_E_INVALID_ARG)
            fail_msg("subject '%s' was accepted", bad[i]);
    }
    p.subject = NULL;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
}

static X509_EXTENSION *req_ext(X509_REQ *r, int nid, STACK_OF(X509_EXTENSION) **exts)
{
    *exts = X509_REQ_get_extensions(r);
    int i = X509v3_get_ext_by_NID(*exts, nid, -1);
    return i < 0 ? NULL : X509v3_get_ext(*exts, i);
}

static void check_san(X509_REQ *r)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *e = req_ext(r, NID_subject_alt_name, &exts);
    assert_non_null(e);
    assert_false(X509_EXTENSION_get_critical(e));
    GENERAL_NAMES *g = X509V3_EXT_d2i(e);
    assert_non_null(g);
    assert_int_equal(sk_GENERAL_NAME_num(g), 9);
    /* 11 UPN as otherName 1.3.6.1.4.1.311.20.2.3 / UTF8String */
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, 0);
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *val = NULL;
    assert_true(GENERAL_NAME_get0_otherName(gn, &oid, &val));
    char buf[64];
    OBJ_obj2txt(buf, sizeof buf, oid, 1);
    assert_string_equal(buf, "1.3.6.1.4.1.311.20.2.3");
    assert_int_equal(val->type, V_ASN1_UTF8STRING);
    assert_memory_equal(ASN1_STRING_get0_data(val->value.utf8string), "tom@MyDomain.Contoso.com", 24);
    int type = 0;
    ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 1), &type);
    assert_int_equal(type, GEN_DNS);
    assert_string_equal((const char *)ASN1_STRING_get0_data(s), "MyDomain.Contoso.com");
    s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 2), &type);
    assert_int_equal(type, GEN_EMAIL);
    assert_string_equal((const char *)ASN1_STRING_get0_data(s), "a+b@c.d");
    s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 3), &type);
    assert_int_equal(type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(s), "http://x/y?a=b&c=d");
    s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 4), &type);
    assert_int_equal(type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(s), 4);
    assert_memory_equal(ASN1_STRING_get0_data(s), "\x0a\x01\x02\x03", 4);
    s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 5), &type);
    assert_int_equal(type, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(s), 16);
    X509_NAME *dn = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 6), &type);
    assert_int_equal(type, GEN_DIRNAME);
    assert_string_equal(name_text(dn), "O=x,CN=dir");
    ASN1_OBJECT *rid = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 7), &type);
    assert_int_equal(type, GEN_RID);
    OBJ_obj2txt(buf, sizeof buf, rid, 1);
    assert_string_equal(buf, "1.2.3.4");
    s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, 8), &type);
    assert_int_equal(type, GEN_DNS);   /* "3 + spaced.example " trimmed */
    assert_string_equal((const char *)ASN1_STRING_get0_data(s), "spaced.example");
    GENERAL_NAMES_free(g);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void check_ku(X509_REQ *r, const char *bits_hex, bool present)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *e = req_ext(r, NID_key_usage, &exts);
    if (!present) {
        assert_null(e);
    } else {
        assert_non_null(e);
        assert_true(X509_EXTENSION_get_critical(e));
        ASN1_BIT_STRING *bs = X509V3_EXT_d2i(e);
        char hex[16] = "";
        for (int i = 0; i < ASN1_STRING_length(bs); i++)
            sprintf(hex + 2 * i, "%02X", ASN1_STRING_get0_data(bs)[i]);
        assert_string_equal(hex, bits_hex);
        ASN1_BIT_STRING_free(bs);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void check_eku(X509_REQ *r)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *e = req_ext(r, NID_ext_key_usage, &exts);
    assert_non_null(e);
    EXTENDED_KEY_USAGE *eku = X509V3_EXT_d2i(e);
    static const char *const want[] = {"1.3.6.1.4.1.311.10.3.12", "1.3.6.1.4.1.311.10.3.4",
                                       "1.3.6.1.4.1.311.20.2.2", "1.3.6.1.5.5.7.3.2"};
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 4);
    for (int i = 0; i < 4; i++) {
        char buf[64];
        OBJ_obj2txt(buf, sizeof buf, sk_ASN1_OBJECT_value(eku, i), 1);
        assert_string_equal(buf, want[i]);
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static void check_challenge(X509_REQ *r, const char *want, int type)
{
    int i = X509_REQ_get_attr_by_NID(r, NID_pkcs9_challengePassword, -1);
    if (!want) {
        assert_int_equal(i, -1);
        return;
    }
    assert_true(i >= 0);
    X509_ATTRIBUTE *a = X509_REQ_get_attr(r, i);
    assert_int_equal(X509_ATTRIBUTE_count(a), 1);
    ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
    assert_int_equal(t->type, type);
    assert_int_equal(ASN1_STRING_length(t->value.asn1_string), (int)strlen(want));
    assert_memory_equal(ASN1_STRING_get0_data(t->value.asn1_string), want, strlen(want));
}

/* MS-WCCE name/value pairs: SEQUENCE { BMPString, BMPString } per value. */
static void check_validity(X509_REQ *r, const char *period, const char *units)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.311.13.2.1", 1);
    int i = X509_REQ_get_attr_by_OBJ(r, obj, -1);
    ASN1_OBJECT_free(obj);
    if (!period) {
        assert_int_equal(i, -1);
        return;
    }
    assert_true(i >= 0);
    X509_ATTRIBUTE *a = X509_REQ_get_attr(r, i);
    assert_int_equal(X509_ATTRIBUTE_count(a), 2);
    const char *names[2] = {"ValidityPeriod", "ValidityPeriodUnits"}, *vals[2] = {period, units};
    for (int v = 0; v < 2; v++) {
        ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, v);
        assert_int_equal(t->type, V_ASN1_SEQUENCE);
        const unsigned char *p = ASN1_STRING_get0_data(t->value.sequence);
        long len = ASN1_STRING_length(t->value.sequence);
        /* decode the two BMPStrings back to ASCII */
        const unsigned char *q = p;
        long plen;
        int tag, cls;
        assert_int_equal(ASN1_get_object(&q, &plen, &tag, &cls, len) & 0x80, 0);
        assert_int_equal(tag, V_ASN1_SEQUENCE);
        for (int f = 0; f < 2; f++) {
            ASN1_BMPSTRING *bmp = d2i_ASN1_BMPSTRING(NULL, &q, len - (q - p));
            assert_non_null(bmp);
            char *utf8 = NULL;
            assert_true(ASN1_STRING_to_UTF8((unsigned char **)&utf8, bmp) >= 0);
            assert_string_equal(utf8, f ? vals[v] : names[v]);
            OPENSSL_free(utf8);
            ASN1_BMPSTRING_free(bmp);
        }
        assert_ptr_equal(q, p + len);
    }
}

static void test_csr_contents(void **state)
{
    world_t *w = *state;
    scep_csr_params_t p = {
        .subject = "CN=AnnaLee",
        .san = "11+tom@MyDomain.Contoso.com;3+MyDomain.Contoso.com;2+a+b@c.d;7+http://x/y?a=b&c=d;"
               "8+10.1.2.3;8+2001:db8::1;5+CN=dir,O=x;9+1.2.3.4; 3 + spaced.example ;;",
        .key_usage = 160,
        .eku = "1.3.6.1.4.1.311.10.3.12+1.3.6.1.4.1.311.10.3.4+ 1.3.6.1.4.1.311.20.2.2 ++1.3.6.1.5.5.7.3.2",
        .challenge = "ChallengeInsertedHere",
        .valid_period = "Years",
        .valid_units = 1,
        .digest = SCEP_DIGEST_SHA256,
    };
    X509_REQ *r = csr_make(w->dev, &p);
    EVP_PKEY *dev = pkey_of(w->dev);
    assert_int_equal(X509_REQ_verify(r, dev), 1);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(r), dev), 1);
    assert_int_equal(X509_REQ_get_signature_nid(r), NID_sha256WithRSAEncryption);
    assert_int_equal(X509_REQ_get_version(r), 0);
    check_san(r);
    check_ku(r, "A0", true);
    check_eku(r);
    check_challenge(r, "ChallengeInsertedHere", V_ASN1_PRINTABLESTRING);
    check_validity(r, "Years", "1");
    X509_REQ_free(r);

    /* the minimum: no extensionRequest, no attributes at all; SHA-1 signature */
    scep_csr_params_t min = {.subject = "CN=x", .digest = SCEP_DIGEST_SHA1, .san = "", .eku = ""};
    r = csr_make(w->dev, &min);
    assert_int_equal(X509_REQ_get_attr_count(r), 0);
    assert_int_equal(X509_REQ_get_signature_nid(r), NID_sha1WithRSAEncryption);
    X509_REQ_free(r);

    /* KeyUsage bit mapping incl. decipherOnly; UTF-8 challenge; other periods */
    scep_csr_params_t q = {.subject = "CN=x", .digest = SCEP_DIGEST_SHA512, .key_usage = 0x8001,
                           .challenge = "p\xc3\xa4ss*", .valid_period = "months", .valid_units = 6};
    r = csr_make(w->dev, &q);
    check_ku(r, "0180", true);
    check_challenge(r, "p\xc3\xa4ss*", V_ASN1_UTF8STRING);
    check_validity(r, "Months", "6");
    assert_int_equal(X509_REQ_get_signature_nid(r), NID_sha512WithRSAEncryption);
    X509_REQ_free(r);
    q.key_usage = 128;
    q.valid_period = NULL;
    q.valid_units = 3;
    q.challenge = "";
    r = csr_make(w->dev, &q);
    check_ku(r, "80", true);
    check_challenge(r, "", V_ASN1_PRINTABLESTRING);
    check_validity(r, "Days", "3");
    X509_REQ_free(r);
    q.valid_period = "Years";
    q.valid_units = 0;       /* 0 = not requested */
    q.challenge = NULL;
    r = csr_make(w->dev, &q);
    check_validity(r, NULL, NULL);
    check_challenge(r, NULL, 0);
    X509_REQ_free(r);
    EVP_PKEY_free(dev);
}

static void test_csr_refusals(void **state)
{
    world_t *w = *state;
    static const struct {
        const char *san;
        scep_err_t err;
    } sans[] = {
        {"1+x", SCEP_E_UNSUPPORTED},   {"4+x", SCEP_E_UNSUPPORTED},   {"6+x", SCEP_E_UNSUPPORTED},
        {"10+{guid}", SCEP_E_UNSUPPORTED}, {"12+x", SCEP_E_UNSUPPORTED},
        {"3", SCEP_E_INVALID_ARG},     {"x+foo", SCEP_E_INVALID_ARG}, {"+foo", SCEP_E_INVALID_ARG},
        {"3+", SCEP_E_INVALID_ARG},    {"8+999.1.1.1", SCEP_E_INVALID_ARG},
        {"8+host", SCEP_E_INVALID_ARG}, {"3+h\xc3\xa9llo", SCEP_E_INVALID_ARG},
        {"9+notanoid", SCEP_E_INVALID_ARG}, {"9+1..2", SCEP_E_INVALID_ARG}, {"5+CN", SCEP_E_INVALID_ARG},
        {"3 x+a", SCEP_E_INVALID_ARG}, {"-3+a", SCEP_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof sans / sizeof sans[0]; i++) {
        scep_csr_params_t p = {.subject = "CN=x", .digest = SCEP_DIGEST_SHA256, .san = sans[i].san};
        if (csr_err(w->dev, &p) != sans[i].err)
            fail_msg("SAN '%s' not refused with %d", sans[i].san, sans[i].err);
    }
    scep_csr_params_t p = {.subject = "CN=x", .digest = SCEP_DIGEST_SHA256};
    p.key_usage = 0x100;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    p.key_usage = 0x10000;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    p.key_usage = 0;
    static const char *const ekus[] = {"1.2.x", "clientAuth", "1.3.6.1.5.5.7.3.2+serverAuth", "1..2", "1.", "12"};
    for (size_t i = 0; i < sizeof ekus / sizeof ekus[0]; i++) {
        p.eku = ekus[i];
        if (csr_err(w->dev, &p) != SCEP_E_INVALID_ARG)
            fail_msg("EKU '%s' accepted", ekus[i]);
    }
    p.eku = NULL;
    p.valid_period = "Weeks";
    p.valid_units = 2;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    p.valid_period = NULL;
    p.challenge = "bad \xff utf8";
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    char longpw[300];
    memset(longpw, 'a', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = 0;
    p.challenge = longpw;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    p.challenge = NULL;
    p.digest = 0;
    assert_int_equal(csr_err(w->dev, &p), SCEP_E_INVALID_ARG);
    scep_buf_t out = {0};
    assert_int_equal(scep_csr(&P, NULL, &p, &out, NULL), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_csr(&P, w->dev, NULL, &out, NULL), SCEP_E_INVALID_ARG);
}

static void test_self_signed(void **state)
{
    world_t *w = *state;
    X509 *x = x509_of(w->signer);
    EVP_PKEY *dev = pkey_of(w->dev);
    assert_int_equal(X509_verify(x, dev), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_string_equal(name_text(X509_get_subject_name(x)), "O=Test,CN=dev1");
    assert_true(X509_get_extension_flags(x) & EXFLAG_KUSAGE);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_non_null(X509_get0_subject_key_id(x));
    int64_t serial = 0;
    assert_true(ASN1_INTEGER_get_int64(&serial, X509_get0_serialNumber(x)));
    assert_true(serial > 0);
    time_t before = (time_t)(NOW - 3600), after = (time_t)(NOW + 30 * 86400);
    int day = 0, sec = 0;
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_TIME_set(t, before);
    assert_true(ASN1_TIME_diff(&day, &sec, t, X509_get0_notBefore(x)));
    assert_int_equal(day, 0);
    assert_int_equal(sec, 0);
    ASN1_TIME_set(t, after);
    assert_true(ASN1_TIME_diff(&day, &sec, t, X509_get0_notAfter(x)));
    assert_int_equal(day, 0);
    assert_int_equal(sec, 0);
    ASN1_TIME_free(t);
    char sub[128];
    assert_string_equal(scep_cert_subject(w->signer, sub, sizeof sub), "O=Test,CN=dev1");
    assert_string_equal(scep_cert_subject(w->signer, sub, 5), "O=Te");
    X509_free(x);
    EVP_PKEY_free(dev);
    scep_cert_t *c = NULL;
    const char *why = NULL;
    assert_int_equal(scep_self_signed(&P, w->dev, "CN=x", SCEP_DIGEST_SHA256, 0, &c, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_self_signed(&P, w->dev, "CN", SCEP_DIGEST_SHA256, NOW, &c, &why), SCEP_E_INVALID_ARG);
    assert_null(c);
}

/* ---- requests as the CA sees them ---------------------------------------------------------- */

typedef struct decoded {
    char msg_type[8];
    char txid[160];
    uint8_t nonce[64];
    int nonce_len;
    X509 *signer;
    int digest_nid, cipher_nid;
    uint8_t *inner;
    size_t inner_len;
} decoded_t;

static int attr_str(CMS_SignerInfo *si, const char *oid, char *buf, size_t size)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_STRING *s = CMS_signed_get0_data_by_OBJ(si, obj, -3, V_ASN1_PRINTABLESTRING);
    ASN1_OBJECT_free(obj);
    if (!s || (size_t)ASN1_STRING_length(s) >= size)
        return 0;
    memcpy(buf, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    buf[ASN1_STRING_length(s)] = 0;
    return 1;
}

static void decode_request(const scep_buf_t *msg, X509 *ca, EVP_PKEY *ca_key, decoded_t *d)
{
    memset(d, 0, sizeof *d);
    const unsigned char *p = msg->data;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)msg->len);
    assert_non_null(cms);
    assert_ptr_equal(p, msg->data + msg->len);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_signed);
    assert_int_equal(OBJ_obj2nid(CMS_get0_eContentType(cms)), NID_pkcs7_data);
    BIO *env = BIO_new(BIO_s_mem());
    assert_int_equal(CMS_verify(cms, NULL, NULL, NULL, env, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
    STACK_OF(X509) *signers = CMS_get0_signers(cms);
    assert_int_equal(sk_X509_num(signers), 1);
    d->signer = X509_dup(sk_X509_value(signers, 0));
    sk_X509_free(signers);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 1);
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    assert_true(attr_str(si, OID_MESSAGE_TYPE, d->msg_type, sizeof d->msg_type));
    assert_true(attr_str(si, OID_TRANSACTION_ID, d->txid, sizeof d->txid));
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_SENDER_NONCE, 1);
    ASN1_OCTET_STRING *n = CMS_signed_get0_data_by_OBJ(si, obj, -3, V_ASN1_OCTET_STRING);
    ASN1_OBJECT_free(obj);
    assert_non_null(n);
    d->nonce_len = ASN1_STRING_length(n);
    assert_true(d->nonce_len <= (int)sizeof d->nonce);
    memcpy(d->nonce, ASN1_STRING_get0_data(n), (size_t)d->nonce_len);
    X509_ALGOR *dig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    d->digest_nid = OBJ_obj2nid(dig->algorithm);
    /* the envelope */
    char *ed = NULL;
    long el = BIO_get_mem_data(env, &ed);
    const unsigned char *q = (const unsigned char *)ed;
    PKCS7 *p7 = d2i_PKCS7(NULL, &q, el);
    assert_non_null(p7);
    assert_true(PKCS7_type_is_enveloped(p7));
    d->cipher_nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    q = (const unsigned char *)ed;
    CMS_ContentInfo *e = d2i_CMS_ContentInfo(NULL, &q, el);
    assert_non_null(e);
    BIO *plain = BIO_new(BIO_s_mem());
    assert_int_equal(CMS_decrypt(e, ca_key, ca, NULL, plain, CMS_BINARY), 1);
    char *pd = NULL;
    long pl = BIO_get_mem_data(plain, &pd);
    d->inner = malloc((size_t)pl + 1);
    memcpy(d->inner, pd, (size_t)pl);
    d->inner_len = (size_t)pl;
    BIO_free(plain);
    CMS_ContentInfo_free(e);
    BIO_free(env);
    CMS_ContentInfo_free(cms);
}

static void decoded_free(decoded_t *d)
{
    X509_free(d->signer);
    free(d->inner);
}

static scep_buf_t csr_der(world_t *w)
{
    scep_csr_params_t p = {.subject = "CN=dev1,O=Test", .challenge = "s3cr3t", .key_usage = 160,
                           .digest = SCEP_DIGEST_SHA256};
    scep_buf_t der = {0};
    assert_int_equal(scep_csr(&P, w->dev, &p, &der, NULL), SCEP_OK);
    return der;
}

static scep_msg_params_t msg_params(world_t *w, scep_cipher_t c, scep_digest_t d)
{
    return (scep_msg_params_t){.signer_cert = w->signer, .signer_key = w->dev,
                               .recipient = scep_certset_recipient(w->ca_set), .cipher = c,
                               .digest = d, .transaction_id = w->txid};
}

static void test_pkcsreq(void **state)
{
    world_t *w = *state;
    scep_buf_t csr = csr_der(w), msg = {0}, msg2 = {0};
    uint8_t nonce[SCEP_NONCE_LEN], nonce2[SCEP_NONCE_LEN];
    const char *why = NULL;
    scep_msg_params_t mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_OK);
    decoded_t d;
    decode_request(&msg, w->ca, w->ca_key, &d);
    assert_string_equal(d.msg_type, "19");
    assert_string_equal(d.txid, w->txid);
    assert_int_equal(d.nonce_len, SCEP_NONCE_LEN);
    assert_memory_equal(d.nonce, nonce, SCEP_NONCE_LEN);
    assert_true(same_cert(w->signer, d.signer));
    assert_int_equal(d.digest_nid, NID_sha256);
    assert_int_equal(d.cipher_nid, NID_aes_128_cbc);
    assert_int_equal(d.inner_len, csr.len);
    assert_memory_equal(d.inner, csr.data, csr.len);
    decoded_free(&d);
    /* a fresh nonce every time */
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce2, &msg2, &why), SCEP_OK);
    assert_memory_not_equal(nonce, nonce2, SCEP_NONCE_LEN);
    scep_buf_free(&P, &msg2);
    scep_buf_free(&P, &msg);

    /* 3DES + SHA-1; RenewalReq */
    mp = msg_params(w, SCEP_CIPHER_DES3_CBC, SCEP_DIGEST_SHA1);
    assert_int_equal(scep_renewalreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_OK);
    decode_request(&msg, w->ca, w->ca_key, &d);
    assert_string_equal(d.msg_type, "17");
    assert_int_equal(d.digest_nid, NID_sha1);
    assert_int_equal(d.cipher_nid, NID_des_ede3_cbc);
    decoded_free(&d);
    scep_buf_free(&P, &msg);
    scep_buf_free(&P, &csr);
}

static void test_certpoll(void **state)
{
    world_t *w = *state;
    scep_buf_t csr = csr_der(w), msg = {0};
    uint8_t nonce[SCEP_NONCE_LEN];
    const char *why = NULL;
    scep_msg_params_t mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    assert_int_equal(scep_certpoll(&P, &mp, scep_certset_issuer(w->ca_set), csr.data, csr.len, nonce,
                                   &msg, &why), SCEP_OK);
    decoded_t d;
    decode_request(&msg, w->ca, w->ca_key, &d);
    assert_string_equal(d.msg_type, "20");
    assert_string_equal(d.txid, w->txid);
    assert_memory_equal(d.nonce, nonce, SCEP_NONCE_LEN);
    /* IssuerAndSubject */
    const unsigned char *p = d.inner, *end = d.inner + d.inner_len;
    long len;
    int tag, cls;
    assert_int_equal(ASN1_get_object(&p, &len, &tag, &cls, (long)d.inner_len) & 0x80, 0);
    assert_int_equal(tag, V_ASN1_SEQUENCE);
    X509_NAME *iss = d2i_X509_NAME(NULL, &p, end - p);
    X509_NAME *sub = d2i_X509_NAME(NULL, &p, end - p);
    assert_ptr_equal(p, end);
    assert_int_equal(X509_NAME_cmp(iss, X509_get_subject_name(w->ca)), 0);
    assert_string_equal(name_text(sub), "O=Test,CN=dev1");
    X509_NAME_free(iss);
    X509_NAME_free(sub);
    decoded_free(&d);
    scep_buf_free(&P, &msg);
    assert_int_equal(scep_certpoll(&P, &mp, NULL, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    scep_buf_free(&P, &csr);
}

static void test_request_refusals(void **state)
{
    world_t *w = *state;
    scep_buf_t csr = csr_der(w), msg = {0};
    uint8_t nonce[SCEP_NONCE_LEN];
    const char *why = NULL;
    scep_msg_params_t mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    assert_int_equal(scep_pkcsreq(&P, NULL, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_pkcsreq(&P, &mp, (const uint8_t *)"junk", 4, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len - 1, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    mp.transaction_id = "";
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    mp.transaction_id = "star*";
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    mp.transaction_id = "ueCDvCRmFQG+RoAAZtMae00hC8U=";   /* micromdm's form is printable */
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_OK);
    scep_buf_free(&P, &msg);
    mp = msg_params(w, 0, SCEP_DIGEST_SHA256);
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    /* signer certificate and key must belong together */
    scep_key_t *k = NULL;
    assert_int_equal(scep_keygen_rsa(&P, 1024, &k, &why), SCEP_OK);
    mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
    mp.signer_key = k;
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_INVALID_ARG);
    scep_key_free(&P, k);
    mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256); /* not the freed key */
    /* an EC recipient cannot be encrypted to (key transport needs RSA) */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ecx = make_cert("EC CA", ec, NULL, NULL, "basicConstraints=critical,CA:TRUE", false);
    size_t elen = 0;
    uint8_t *eder = der_of_cert(ecx, &elen);
    scep_cert_t *ecc = NULL;
    assert_int_equal(scep_cert_from_der(&P, eder, elen, &ecc, &why), SCEP_OK);
    mp.recipient = ecc;
    assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_UNSUPPORTED);
    /* ... and a set of only EC certificates has no recipient */
    scep_certset_t *set = NULL;
    assert_int_equal(scep_cacert_parse(&P, eder, elen, &set, &why), SCEP_E_UNSUPPORTED);
    assert_null(set);
    assert_null(msg.data);
    scep_cert_free(&P, ecc);
    OPENSSL_free(eder);
    X509_free(ecx);
    EVP_PKEY_free(ec);
    scep_buf_free(&P, &csr);
}

/* ---- GetCACert sets and CAThumbprint ----------------------------------------------------------- */

/* A certificate OpenSSL accepts but would encode otherwise (BER, here the
 * signature algorithm's NULL parameters re-tagged as a constructed
 * [UNIVERSAL 8]) is refused alone, in GetCACert or as a certificate: its
 * SHA-1 would name other bytes than the server sent. */
static void test_cert_not_der(void **state)
{
    world_t *w = *state;
    const char *why = NULL;
    unsigned char *der = NULL;
    int n = i2d_X509(w->ca, &der);
    assert_true(n > 300);
    /* the outer AlgorithmIdentifier: 30 0d 06 09 <sha256WithRSAEncryption> 05 00, then the
     * signature BIT STRING */
    static const unsigned char alg[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                        0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00, 0x03};
    unsigned char *at = NULL;
    for (int i = n - (int)sizeof alg; i > 0 && !at; i--)
        if (!memcmp(der + i, alg, sizeof alg))
            at = der + i;
    assert_non_null(at);
    const unsigned char *p = der;
    X509 *parsed = d2i_X509(NULL, &p, n);
    assert_non_null(parsed); /* the DER one is accepted, of course */
    X509_free(parsed);
    scep_certset_t *set = NULL;
    assert_int_equal(scep_cacert_parse(&P, der, (size_t)n, &set, &why), SCEP_OK);
    scep_certset_free(&P, set);
    at[13] = 0x28; /* 05 00 -> 28 00 */
    p = der;
    parsed = d2i_X509(NULL, &p, n);
    assert_non_null(parsed); /* OpenSSL takes it ... */
    unsigned char *again = NULL;
    int m = i2d_X509(parsed, &again);
    assert_true(m == n && memcmp(again, der, (size_t)n)); /* ... and writes other bytes */
    OPENSSL_free(again);
    X509_free(parsed);
    set = NULL;
    why = NULL;
    assert_int_equal(scep_cacert_parse(&P, der, (size_t)n, &set, &why), SCEP_E_MALFORMED);
    assert_null(set);
    assert_string_equal(why, "certificate not DER-encoded");
    scep_cert_t *c = NULL;
    why = NULL;
    assert_int_equal(scep_cert_from_der(&P, der, (size_t)n, &c, &why), SCEP_E_MALFORMED);
    assert_null(c);
    assert_string_equal(why, "certificate not DER-encoded");
    OPENSSL_free(der);
}

static void test_cacert_sets(void **state)
{
    world_t *w = *state;
    const char *why = NULL;
    /* single CA without digitalSignature/keyEncipherment (micromdm's): all roles */
    assert_int_equal(scep_certset_count(w->ca_set), 1);
    assert_true(same_cert(scep_certset_recipient(w->ca_set), w->ca));
    assert_true(same_cert(scep_certset_verifier(w->ca_set), w->ca));
    assert_true(same_cert(scep_certset_issuer(w->ca_set), w->ca));
    assert_null(scep_certset_get(w->ca_set, 1));
    /* NDES-style RA set, in every order */
    X509 *orders[3][3] = {{w->inter, w->ra_sig, w->ra_enc},
                          {w->ra_enc, w->inter, w->ra_sig},
                          {w->ra_sig, w->ra_enc, w->inter}};
    for (int i = 0; i < 3; i++) {
        scep_certset_t *set = set_of(orders[i], 3);
        assert_int_equal(scep_certset_count(set), 3);
        assert_true(same_cert(scep_certset_recipient(set), w->ra_enc));
        assert_true(same_cert(scep_certset_verifier(set), w->ra_sig));
        assert_true(same_cert(scep_certset_issuer(set), w->inter));
        scep_certset_free(&P, set);
    }
    /* a chain without RA certs: the leaf (issuing CA) does everything */
    X509 *chain[2] = {w->root, w->inter};
    scep_certset_t *set = set_of(chain, 2);
    assert_true(same_cert(scep_certset_recipient(set), w->inter));
    assert_true(same_cert(scep_certset_verifier(set), w->inter));
    assert_true(same_cert(scep_certset_issuer(set), w->root));
    scep_certset_free(&P, set);
    /* an RA cert without any key usage is preferred over the CA */
    X509 *ra_any = make_cert("RA any", w->ra_key, w->inter, w->inter_key, NULL, false);
    X509 *ra_set[2] = {w->inter, ra_any};
    set = set_of(ra_set, 2);
    assert_true(same_cert(scep_certset_recipient(set), ra_any));
    assert_true(same_cert(scep_certset_verifier(set), ra_any));
    assert_true(same_cert(scep_certset_issuer(set), w->inter));
    scep_certset_free(&P, set);
    X509_free(ra_any);
    /* refusals */
    size_t len = 0;
    uint8_t *der = der_of_cert(w->ca, &len);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_int_equal(scep_cacert_parse(&P, longer, len + 1, &set, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_cacert_parse(&P, der, len - 1, &set, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_cacert_parse(&P, der, 0, &set, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_cacert_parse(&P, NULL, 10, &set, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_cacert_parse(&P, der, SCEP_MAX_DER + 1, &set, &why), SCEP_E_TOO_LARGE);
    const char *pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_int_equal(scep_cacert_parse(&P, (const uint8_t *)pem, strlen(pem), &set, &why), SCEP_E_MALFORMED);
    assert_null(set);
    size_t elen = 0;
    uint8_t *empty = degenerate(NULL, 0, &elen);
    assert_int_equal(scep_cacert_parse(&P, empty, elen, &set, &why), SCEP_E_MALFORMED);
    OPENSSL_free(empty);
    scep_cert_t *c = NULL;
    assert_int_equal(scep_cert_from_der(&P, longer, len + 1, &c, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_cert_from_der(&P, der, len, &c, &why), SCEP_OK);
    char thumb[SCEP_THUMB_LEN + 1];
    assert_int_equal(scep_cert_thumbprint(c, thumb), SCEP_OK);
    uint8_t md[20];
    unsigned mdlen = 0;
    X509_digest(w->ca, EVP_sha1(), md, &mdlen);
    char hex[41];
    for (int i = 0; i < 20; i++)
        sprintf(hex + 2 * i, "%02X", md[i]);
    assert_string_equal(thumb, hex);
    /* a shared handle outlives the one it was made from: same certificate, no copy */
    scep_cert_t *shared = NULL;
    assert_int_equal(scep_cert_share(&P, NULL, &shared, &why), SCEP_E_INVALID_ARG);
    assert_null(shared);
    assert_int_equal(scep_cert_share(&P, c, NULL, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cert_share(&P, c, &shared, &why), SCEP_OK);
    assert_non_null(shared);
    assert_ptr_not_equal(shared, c);
    scep_cert_free(&P, c);
    char thumb2[SCEP_THUMB_LEN + 1];
    assert_int_equal(scep_cert_thumbprint(shared, thumb2), SCEP_OK);
    assert_string_equal(thumb2, hex);
    scep_buf_t back = {0};
    assert_int_equal(scep_cert_to_der(&P, shared, &back, &why), SCEP_OK);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.data, der, len);
    scep_buf_free(&P, &back);
    scep_cert_free(&P, shared);
    free(longer);
    OPENSSL_free(der);
}

static void thumb_of(X509 *x, char *out, bool pretty)
{
    uint8_t md[20];
    unsigned n = 0;
    X509_digest(x, EVP_sha1(), md, &n);
    out[0] = 0;
    for (int i = 0; i < 20; i++)
        sprintf(out + strlen(out), pretty ? "%02x%s" : "%02X", md[i], pretty && i < 19 ? ":" : "");
}

static void test_thumbprint(void **state)
{
    world_t *w = *state;
    const char *why = NULL;
    char t[80];
    thumb_of(w->ca, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, t, NULL, 0, NOW, &why), SCEP_OK);
    thumb_of(w->ca, t, true);   /* lower case with colons */
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, t, NULL, 0, NOW, &why), SCEP_OK);
    char spaced[128] = "";
    thumb_of(w->ca, t, false);
    for (int i = 0; i < 40; i += 2)
        snprintf(spaced + strlen(spaced), sizeof spaced - strlen(spaced), " %.2s", t + i);
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, spaced, NULL, 0, NOW, &why), SCEP_OK);
    thumb_of(w->other_ca, t, false);
    why = NULL;
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, t, NULL, 0, NOW, &why), SCEP_E_UNTRUSTED);
    assert_non_null(why);
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, "abc", NULL, 0, NOW, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, "12345087E648875D1DF5D9F9FF89DD10", NULL, 0,
                                                  NOW, &why), SCEP_E_INVALID_ARG);
    strcat(t, "0");
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, t, NULL, 0, NOW, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cacert_match_thumbprint(w->ca_set, "zz", NULL, 0, NOW, &why), SCEP_E_INVALID_ARG);

    /* RA set, root only in the device store: the pin is the root of the chain */
    X509 *ra[3] = {w->ra_sig, w->ra_enc, w->inter};
    scep_certset_t *set = set_of(ra, 3);
    size_t rlen = 0, olen = 0;
    uint8_t *rder = der_of_cert(w->root, &rlen), *oder = der_of_cert(w->other_ca, &olen);
    scep_blob_t roots[3] = {{(const uint8_t *)"junk", 4}, {oder, olen}, {rder, rlen}};
    thumb_of(w->root, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 3, NOW, &why), SCEP_OK);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 2, NOW, &why), SCEP_E_UNTRUSTED);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, NULL, 0, NOW, &why), SCEP_E_UNTRUSTED);
    /* the issuing CA (returned) as the pin */
    thumb_of(w->inter, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, NULL, 0, NOW, &why), SCEP_OK);
    /* a device root that matches but that the RA certs do not chain to */
    thumb_of(w->other_ca, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 3, NOW, &why), SCEP_E_UNTRUSTED);
    /* pinning one RA cert does not vouch for the other */
    thumb_of(w->ra_sig, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 3, NOW, &why), SCEP_E_UNTRUSTED);
    scep_certset_free(&P, set);
    /* validity: an expired RA cert fails with a time, passes without */
    X509 *old = make_cert("RA enc old", w->ra_key, w->inter, w->inter_key,
                          "keyUsage=critical,keyEncipherment", true);
    X509 *ra_old[3] = {w->ra_sig, old, w->inter};
    set = set_of(ra_old, 3);
    thumb_of(w->root, t, false);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 3, NOW, &why), SCEP_E_UNTRUSTED);
    assert_int_equal(scep_cacert_match_thumbprint(set, t, roots, 3, 0, &why), SCEP_OK);
    scep_certset_free(&P, set);
    X509_free(old);
    OPENSSL_free(rder);
    OPENSSL_free(oder);
}

/* ---- CertRep, built here as a CA would ------------------------------------------------------------ */

static const uint8_t NONCE[SCEP_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

typedef struct reply {
    const char *msg_type, *status, *fail_info, *fail_text, *txid;
    const uint8_t *rnonce;
    size_t rnonce_len;
    X509 *sign_cert;
    EVP_PKEY *sign_key;
    const EVP_MD *md;
    bool relabel;                 /* SignerInfo algorithm sha256WithRSAEncryption */
    X509 *second_cert;            /* a second SignerInfo */
    EVP_PKEY *second_key;
    const uint8_t *content;       /* NULL: content omitted */
    size_t content_len;
} reply_t;

static bool add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *data, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    bool ok = CMS_signed_add1_attr_by_OBJ(si, obj, type, data, (int)len);
    ASN1_OBJECT_free(obj);
    return ok;
}

static void reply_attrs(CMS_SignerInfo *si, const reply_t *r)
{
#define STR(oid, v) \
    if (v)          \
        assert_true(add_attr(si, oid, V_ASN1_PRINTABLESTRING, v, strlen(v)))
    STR(OID_MESSAGE_TYPE, r->msg_type);
    STR(OID_PKI_STATUS, r->status);
    STR(OID_FAIL_INFO, r->fail_info);
    STR(OID_TRANSACTION_ID, r->txid);
#undef STR
    if (r->fail_text)
        assert_true(add_attr(si, OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, r->fail_text, strlen(r->fail_text)));
    if (r->rnonce) {
        assert_true(add_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, r->rnonce, r->rnonce_len));
        assert_true(add_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, r->rnonce, r->rnonce_len));
    }
}

static scep_buf_t build_reply(const reply_t *r)
{
    unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP | (r->content ? 0 : CMS_DETACHED);
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    assert_non_null(cms);
    CMS_SignerInfo *si = CMS_add1_signer(cms, r->sign_cert, r->sign_key, r->md ? r->md : EVP_sha1(), flags);
    assert_non_null(si);
    reply_attrs(si, r);
    if (r->second_cert) {
        CMS_SignerInfo *s2 = CMS_add1_signer(cms, r->second_cert, r->second_key, EVP_sha256(), flags);
        assert_non_null(s2);
        reply_attrs(s2, r);
    }
    BIO *in = BIO_new_mem_buf(r->content ? (const void *)r->content : "", (int)r->content_len);
    assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
    BIO_free(in);
    if (r->relabel) {
        X509_ALGOR *sig = NULL;
        CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig);
        X509_ALGOR_set0(sig, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL);
    }
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    assert_true(n > 0);
    scep_buf_t out = {malloc((size_t)n), (size_t)n};
    memcpy(out.data, der, (size_t)n);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    return out;
}

/* EnvelopedData(degenerate(certs)) to `to`; "DES-CBC" through a legacy context. */
static scep_buf_t success_envelope(X509 **certs, size_t n, X509 *to, const char *cipher)
{
    size_t dlen = 0;
    uint8_t *deg = degenerate(certs, n, &dlen);
    OSSL_LIB_CTX *lc = NULL;
    OSSL_PROVIDER *pd = NULL, *pl = NULL;
    if (!strcmp(cipher, "DES-CBC")) {
        lc = OSSL_LIB_CTX_new();
        pd = OSSL_PROVIDER_load(lc, "default");
        pl = OSSL_PROVIDER_load(lc, "legacy");
        assert_non_null(pl);
    }
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc, cipher, NULL);
    assert_non_null(c);
    STACK_OF(X509) *rc = sk_X509_new_null();
    sk_X509_push(rc, to);
    BIO *in = BIO_new_mem_buf(deg, (int)dlen);
    CMS_ContentInfo *env = CMS_encrypt_ex(rc, in, c, CMS_BINARY, lc, NULL);
    assert_non_null(env);
    unsigned char *der = NULL;
    int l = i2d_CMS_ContentInfo(env, &der);
    assert_true(l > 0);
    scep_buf_t out = {malloc((size_t)l), (size_t)l};
    memcpy(out.data, der, (size_t)l);
    OPENSSL_free(der);
    CMS_ContentInfo_free(env);
    BIO_free(in);
    sk_X509_free(rc);
    EVP_CIPHER_free(c);
    OPENSSL_free(deg);
    if (pl)
        OSSL_PROVIDER_unload(pl);
    if (pd)
        OSSL_PROVIDER_unload(pd);
    OSSL_LIB_CTX_free(lc);
    return out;
}

typedef struct rep_fixture {
    world_t *w;
    X509 *signer;          /* w->signer as X509 (the reply envelope's recipient) */
    EVP_PKEY *dev_pub;
    X509 *issued;          /* issued by w->ca for the device key */
    X509 *issued_other;    /* issued by w->other_ca for the device key */
    X509 *stranger;        /* issued by w->ca for another key */
    scep_buf_t env_aes;    /* envelope of {stranger, issued, ca} to signer */
} rep_fixture_t;

static int rep_setup(void **state)
{
    world_t *w = *state;
    rep_fixture_t *f = calloc(1, sizeof *f);
    f->w = w;
    f->signer = x509_of(w->signer);
    f->dev_pub = pkey_of(w->dev);
    f->issued = make_cert("dev1", f->dev_pub, w->ca, w->ca_key,
                          "keyUsage=critical,digitalSignature|extendedKeyUsage=clientAuth", false);
    f->issued_other = make_cert("dev1", f->dev_pub, w->other_ca, w->other_key, NULL, false);
    f->stranger = make_cert("someone", w->other_key, w->ca, w->ca_key, NULL, false);
    X509 *certs[3] = {f->stranger, f->issued, w->ca};
    f->env_aes = success_envelope(certs, 3, f->signer, "AES-128-CBC");
    *state = f;
    return 0;
}

static int rep_teardown(void **state)
{
    rep_fixture_t *f = *state;
    X509_free(f->signer);
    EVP_PKEY_free(f->dev_pub);
    X509_free(f->issued);
    X509_free(f->issued_other);
    X509_free(f->stranger);
    scep_buf_free(&P, &f->env_aes);
    *state = f->w;
    free(f);
    return 0;
}

static reply_t good_reply(rep_fixture_t *f)
{
    return (reply_t){.msg_type = "3", .status = "0", .txid = f->w->txid, .rnonce = NONCE,
                     .rnonce_len = SCEP_NONCE_LEN, .sign_cert = f->w->ca, .sign_key = f->w->ca_key,
                     .content = f->env_aes.data, .content_len = f->env_aes.len};
}

static scep_expect_t expect_of(world_t *w, const scep_certset_t *set)
{
    return (scep_expect_t){.verifier = scep_certset_verifier(set), .ca_certs = set,
                           .transaction_id = w->txid, .nonce = NONCE, .signer_cert = w->signer,
                           .signer_key = w->dev, .csr_key = w->dev, .now = NOW};
}

/* Build r, parse it with exp; returns the error and fills rep. */
static scep_err_t run_reply(const reply_t *r, const scep_expect_t *exp, scep_certrep_t *rep,
                            const char **why)
{
    scep_buf_t msg = build_reply(r);
    *why = NULL;
    scep_err_t err = scep_certrep_parse(&P, msg.data, msg.len, exp, rep, why);
    if (err != SCEP_OK) {
        assert_non_null(*why);
        assert_null(rep->cert.data);
    }
    scep_buf_free(&P, &msg);
    return err;
}

static void assert_issued(const scep_certrep_t *rep, X509 *want)
{
    const unsigned char *p = rep->cert.data;
    X509 *got = d2i_X509(NULL, &p, (long)rep->cert.len);
    assert_non_null(got);
    assert_int_equal(X509_cmp(got, want), 0);
    X509_free(got);
    /* the decoded one comes along: the same certificate */
    assert_non_null(rep->issued);
    scep_buf_t der = {0};
    const char *why = NULL;
    assert_int_equal(scep_cert_to_der(&P, rep->issued, &der, &why), SCEP_OK);
    assert_int_equal(der.len, rep->cert.len);
    assert_memory_equal(der.data, rep->cert.data, der.len);
    scep_buf_free(&P, &der);
}

static void test_certrep_success(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    scep_expect_t exp = expect_of(w, w->ca_set);
    scep_certrep_t rep;
    const char *why = NULL;
    reply_t r = good_reply(f);
    /* AES envelope, SHA-1, rsaEncryption; ours is not the first cert */
    if (run_reply(&r, &exp, &rep, &why) != SCEP_OK)
        fail_msg("%s", why);
    assert_int_equal(rep.status, SCEP_STATUS_SUCCESS);
    assert_int_equal(rep.fail_info, -1);
    assert_issued(&rep, f->issued);
    assert_string_equal(rep.cipher, "AES-128-CBC");
    assert_string_equal(rep.digest, "SHA-1");
    assert_null(rep.warning);
    scep_certrep_clear(&P, &rep);
    assert_null(rep.cert.data);
    assert_null(rep.issued);
    scep_certrep_clear(&P, &rep);

    /* 3DES, SHA-256, SignerInfo algorithm sha256WithRSAEncryption */
    X509 *certs[1] = {f->issued};
    scep_buf_t env = success_envelope(certs, 1, f->signer, "DES-EDE3-CBC");
    r.content = env.data;
    r.content_len = env.len;
    r.md = EVP_sha256();
    r.relabel = true;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_string_equal(rep.cipher, "DES-EDE3-CBC");
    assert_string_equal(rep.digest, "SHA-256");
    assert_issued(&rep, f->issued);
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &env);

    /* AES-256 (certmonger-style servers) */
    env = success_envelope(certs, 1, f->signer, "AES-256-CBC");
    r = good_reply(f);
    r.content = env.data;
    r.content_len = env.len;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_string_equal(rep.cipher, "AES-256-CBC");
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &env);

    /* single DES (micromdm 2.1.0): opened through the private legacy context, with a warning */
    env = success_envelope(certs, 1, f->signer, "DES-CBC");
    r.content = env.data;
    r.content_len = env.len;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_string_equal(rep.cipher, "DES-CBC");
    assert_non_null(rep.warning);
    assert_non_null(strstr(rep.warning, "DES"));
    assert_issued(&rep, f->issued);
    scep_certrep_clear(&P, &rep);
    /* the same with a context made ahead of the answer (scep_legacy_open) */
    scep_legacy_t *leg = NULL;
    assert_int_equal(scep_legacy_open(NULL, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_legacy_open(&leg, &why), SCEP_OK);
    assert_non_null(leg);
    scep_expect_t exp_leg = exp;
    exp_leg.legacy = leg;
    assert_int_equal(run_reply(&r, &exp_leg, &rep, &why), SCEP_OK);
    assert_string_equal(rep.cipher, "DES-CBC");
    assert_non_null(rep.warning);
    assert_issued(&rep, f->issued);
    scep_certrep_clear(&P, &rep);
    /* ... and used again for another answer */
    assert_int_equal(run_reply(&r, &exp_leg, &rep, &why), SCEP_OK);
    assert_issued(&rep, f->issued);
    scep_certrep_clear(&P, &rep);
    scep_legacy_free(leg);
    scep_legacy_free(NULL);
    /* ... and the default context still has no DES: nothing leaked into it */
    EVP_CIPHER *des = EVP_CIPHER_fetch(NULL, "DES-CBC", NULL);
    assert_null(des);
    ERR_clear_error();
    scep_buf_free(&P, &env);

    /* expired issued certificate: refused with a time, accepted without */
    X509 *old = make_cert("dev1", f->dev_pub, w->ca, w->ca_key, NULL, true);
    X509 *oc[1] = {old};
    env = success_envelope(oc, 1, f->signer, "AES-128-CBC");
    r = good_reply(f);
    r.content = env.data;
    r.content_len = env.len;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_UNTRUSTED);
    scep_certrep_clear(&P, &rep);
    exp.now = 0;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_issued(&rep, old);
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &env);
    X509_free(old);
}

static void test_certrep_ra(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    X509 *ra[3] = {w->ra_sig, w->ra_enc, w->inter};
    scep_certset_t *set = set_of(ra, 3);
    scep_expect_t exp = expect_of(w, set);
    X509 *issued = make_cert("dev1", f->dev_pub, w->inter, w->inter_key, NULL, false);
    X509 *certs[1] = {issued};
    scep_buf_t env = success_envelope(certs, 1, f->signer, "AES-128-CBC");
    reply_t r = good_reply(f);
    r.sign_cert = w->ra_sig;
    r.sign_key = w->ra_key;
    r.content = env.data;
    r.content_len = env.len;
    scep_certrep_t rep;
    const char *why = NULL;
    if (run_reply(&r, &exp, &rep, &why) != SCEP_OK)
        fail_msg("%s", why);
    assert_issued(&rep, issued);
    scep_certrep_clear(&P, &rep);
    /* the RA encryption cert is not the response signer */
    r.sign_cert = w->ra_enc;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_SIGNATURE);
    scep_certrep_clear(&P, &rep);
    /* "CA signs directly" while the set says RA: also refused */
    r.sign_cert = w->inter;
    r.sign_key = w->inter_key;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_SIGNATURE);
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &env);
    X509_free(issued);
    scep_certset_free(&P, set);
}

static void test_certrep_pending_failure(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    scep_expect_t exp = expect_of(w, w->ca_set);
    scep_certrep_t rep;
    const char *why = NULL;
    reply_t r = good_reply(f);
    r.status = "3";
    r.content = NULL;
    r.content_len = 0;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_int_equal(rep.status, SCEP_STATUS_PENDING);
    assert_int_equal(rep.fail_info, -1);
    assert_null(rep.cert.data);
    assert_null(rep.cipher);
    scep_certrep_clear(&P, &rep);
    /* PENDING with an (ignored) content */
    r.content = (const uint8_t *)"x";
    r.content_len = 1;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_int_equal(rep.status, SCEP_STATUS_PENDING);
    scep_certrep_clear(&P, &rep);

    r = good_reply(f);
    r.status = "2";
    r.fail_info = "2";
    r.fail_text = "invalid challenge\n";
    r.content = NULL;
    r.content_len = 0;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_int_equal(rep.status, SCEP_STATUS_FAILURE);
    assert_int_equal(rep.fail_info, 2);
    assert_string_equal(scep_failinfo_name(rep.fail_info), "badRequest");
    assert_string_equal(rep.fail_text, "invalid challenge?");
    scep_certrep_clear(&P, &rep);
    r.fail_info = "17";   /* CMP-style numbers are passed through */
    r.fail_text = NULL;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_OK);
    assert_int_equal(rep.fail_info, 17);
    assert_null(scep_failinfo_name(17));
    assert_string_equal(rep.fail_text, "");
    scep_certrep_clear(&P, &rep);
    r.fail_info = NULL;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_MALFORMED);
    scep_certrep_clear(&P, &rep);
    r.fail_info = "x1";
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_MALFORMED);
    scep_certrep_clear(&P, &rep);
    assert_string_equal(scep_failinfo_name(0), "badAlg");
    assert_string_equal(scep_failinfo_name(1), "badMessageCheck");
    assert_string_equal(scep_failinfo_name(3), "badTime");
    assert_string_equal(scep_failinfo_name(4), "badCertId");
    assert_null(scep_failinfo_name(-1));
}

static void test_certrep_rejections(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    scep_expect_t exp = expect_of(w, w->ca_set);
    scep_certrep_t rep;
    const char *why = NULL;
    reply_t r;
    uint8_t other_nonce[SCEP_NONCE_LEN];
    memcpy(other_nonce, NONCE, sizeof other_nonce);
    other_nonce[15] ^= 1;

#define REJECT(mutate, want)                                              \
    do {                                                                  \
        r = good_reply(f);                                                \
        mutate;                                                           \
        scep_err_t e_ = run_reply(&r, &exp, &rep, &why);                  \
        if (e_ != (want))                                                 \
            fail_msg("%s: got %d (%s), want %d", #mutate, e_, why, want); \
        scep_certrep_clear(&P, &rep);                                         \
    } while (0)

    REJECT(r.txid = "0000", SCEP_E_MISMATCH);
    REJECT(r.txid = NULL, SCEP_E_MALFORMED);
    REJECT(r.rnonce = other_nonce, SCEP_E_MISMATCH);
    REJECT(r.rnonce_len = 8, SCEP_E_MISMATCH);
    REJECT(r.rnonce = NULL, SCEP_E_MISMATCH);
    REJECT(r.msg_type = "19", SCEP_E_MISMATCH);
    REJECT(r.msg_type = NULL, SCEP_E_MALFORMED);
    REJECT(r.status = "1", SCEP_E_MALFORMED);
    REJECT(r.status = "00", SCEP_E_MALFORMED);
    REJECT(r.status = NULL, SCEP_E_MALFORMED);
    /* signed by another key (another CA with the same name) */
    REJECT((r.sign_cert = w->other_ca, r.sign_key = w->other_key), SCEP_E_SIGNATURE);
    /* two SignerInfos */
    REJECT((r.second_cert = w->other_ca, r.second_key = w->other_key), SCEP_E_MALFORMED);
    /* MD5 is refused outright */
    REJECT(r.md = EVP_md5(), SCEP_E_UNSUPPORTED);
    /* SUCCESS without content / with a non-envelope / without our certificate */
    REJECT((r.content = NULL, r.content_len = 0), SCEP_E_NOT_FOUND);
    REJECT((r.content = (const uint8_t *)"\x30\x03\x02\x01\x00", r.content_len = 5), SCEP_E_MALFORMED);
    X509 *strangers[2] = {f->stranger, w->ca};
    scep_buf_t env = success_envelope(strangers, 2, f->signer, "AES-128-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_NOT_FOUND);
    scep_buf_free(&P, &env);
    env = success_envelope(NULL, 0, f->signer, "AES-128-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_NOT_FOUND);
    scep_buf_free(&P, &env);
    /* issued by someone else */
    X509 *foreign[1] = {f->issued_other};
    env = success_envelope(foreign, 1, f->signer, "AES-128-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_UNTRUSTED);
    scep_buf_free(&P, &env);
    /* encrypted to another recipient */
    X509 *mine[1] = {f->issued};
    env = success_envelope(mine, 1, w->other_ca, "AES-128-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_DECRYPT);
    scep_buf_free(&P, &env);
    /* single DES (its own decryption path): to another recipient ... */
    env = success_envelope(mine, 1, w->other_ca, "DES-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_DECRYPT);
    scep_buf_free(&P, &env);
    /* ... to our issuer and serial number with another key: our key does not open it ... */
    X509 *twin = X509_dup(f->signer);
    X509_set_pubkey(twin, w->other_key);
    X509_sign(twin, w->other_key, EVP_sha256());
    env = success_envelope(mine, 1, twin, "DES-CBC");
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_DECRYPT);
    scep_buf_free(&P, &env);
    X509_free(twin);
    /* ... bad padding: the content ends the envelope, and flipping bit 6 of
     * the last byte of the block before the last makes the padding length
     * of the last block 65..72 ... */
    env = success_envelope(mine, 1, f->signer, "DES-CBC");
    env.data[env.len - 9] ^= 0x40;
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_DECRYPT);
    scep_buf_free(&P, &env);
    /* ... and without its IV (the parameter of desCBC) */
    env = success_envelope(mine, 1, f->signer, "DES-CBC");
    {
        static const uint8_t des_oid[] = {0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x07, 0x04, 0x08};
        uint8_t *at = memmem(env.data, env.len, des_oid, sizeof des_oid);
        assert_non_null(at);
        at[7] = 0x0c; /* OCTET STRING (8) -> UTF8String (8): not an IV */
    }
    REJECT((r.content = env.data, r.content_len = env.len), SCEP_E_MALFORMED);
    assert_non_null(strstr(why, "IV"));
    scep_buf_free(&P, &env);
#undef REJECT

    /* an impostor: same issuer and serial as the CA, another key, its cert
     * inside the reply.  The reply's certificates are never used. */
    X509 *imp = X509_dup(w->ca);
    X509_set_pubkey(imp, w->other_key);
    X509_sign(imp, w->other_key, EVP_sha256());
    r = good_reply(f);
    r.sign_cert = imp;
    r.sign_key = w->other_key;
    assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_SIGNATURE);
    scep_certrep_clear(&P, &rep);
    X509_free(imp);

    /* a flipped byte in the signature value */
    r = good_reply(f);
    scep_buf_t msg = build_reply(&r);
    msg.data[msg.len - 5] ^= 0x40;   /* the signature is the last field */
    assert_int_equal(scep_certrep_parse(&P, msg.data, msg.len, &exp, &rep, &why), SCEP_E_SIGNATURE);
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &msg);

    /* bad expectations */
    r = good_reply(f);
    msg = build_reply(&r);
    scep_expect_t bad = exp;
    bad.verifier = NULL;
    assert_int_equal(scep_certrep_parse(&P, msg.data, msg.len, &bad, &rep, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_certrep_parse(&P, msg.data, msg.len, NULL, &rep, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_certrep_parse(&P, msg.data, msg.len, &exp, NULL, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_certrep_parse(&P, msg.data, 0, &exp, &rep, &why), SCEP_E_MALFORMED);
    assert_int_equal(scep_certrep_parse(&P, msg.data, SCEP_MAX_DER + 1, &exp, &rep, &why), SCEP_E_TOO_LARGE);
    scep_certrep_clear(&P, &rep);
    scep_buf_free(&P, &msg);
}

/* ---- validity of an issued certificate -------------------------------------------------------------- */

static void test_cert_validity(void **state)
{
    world_t *w = *state;
    const char *why = NULL;
    /* valid 2025-01-01T00:00:00Z .. 2035-01-01T00:00:00Z */
    X509 *x = make_cert("valid", w->other_key, w->ca, w->ca_key, NULL, false);
    size_t len = 0;
    uint8_t *der = der_of_cert(x, &len);
    scep_cert_t *c = NULL;
    assert_int_equal(scep_cert_from_der(&P, der, len, &c, &why), SCEP_OK);
    const int64_t nb = 1735689600, na = 2051222400;
    assert_int_equal(scep_cert_check_validity(c, NOW, 0, &why), SCEP_OK);
    assert_int_equal(scep_cert_check_validity(c, nb, 0, &why), SCEP_OK);
    assert_int_equal(scep_cert_check_validity(c, na - 1, 0, &why), SCEP_OK);
    why = NULL;
    assert_int_equal(scep_cert_check_validity(c, na, 600, &why), SCEP_E_EXPIRED);
    assert_string_equal(why, "the certificate has expired");
    assert_int_equal(scep_cert_check_validity(c, na + 86400, 600, &why), SCEP_E_EXPIRED);
    /* notBefore ahead of now: within the allowance, and beyond it */
    assert_int_equal(scep_cert_check_validity(c, nb - 1, 0, &why), SCEP_E_EXPIRED);
    assert_string_equal(why, "the certificate is not valid yet");
    assert_int_equal(scep_cert_check_validity(c, nb - 600, 600, &why), SCEP_OK);
    assert_int_equal(scep_cert_check_validity(c, nb - 601, 600, &why), SCEP_E_EXPIRED);
    /* arguments */
    assert_int_equal(scep_cert_check_validity(NULL, NOW, 0, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cert_check_validity(c, 0, 0, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cert_check_validity(c, NOW, -1, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_cert_check_validity(c, NOW, 86401, &why), SCEP_E_INVALID_ARG);
    assert_string_equal(scep_strerror(SCEP_E_EXPIRED), "certificate outside its validity period");
    scep_cert_free(&P, c);
    OPENSSL_free(der);
    X509_free(x);
}

/* ---- certificates whose public key OpenSSL cannot decode ------------------------------------------ */

enum { SPKI_UNKNOWN_OID, SPKI_BAD_KEY };

/* Length of the DER element at d (tag, length, content); 0 if it does not fit in n. */
static size_t der_elem(const uint8_t *d, size_t n, size_t *hdr)
{
    if (n < 2)
        return 0;
    size_t len = d[1], h = 2;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 3 || n < 2 + k)
            return 0;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = len << 8 | d[2 + i];
        h += k;
    }
    *hdr = h;
    return h + len <= n ? h + len : 0;
}

/*
 * x with its SubjectPublicKeyInfo spoiled, as DER that d2i_X509 still
 * parses: the algorithm rsaEncryption becomes 1.2.840.113549.1.1.99 (no
 * such algorithm), or the RSAPublicKey inside the BIT STRING loses its
 * INTEGER tag.  Either way X509_get0_pubkey() is NULL.  (The signature
 * no longer verifies; nothing here needs it to.)  Returned from malloc.
 */
static uint8_t *spoil_spki(X509 *x, int how, size_t *len)
{
    static const uint8_t rsa_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    uint8_t *d = der_of_cert(x, len);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    memcpy(out, d, *len);
    OPENSSL_free(d);
    uint8_t *at = NULL;
    for (size_t i = 0; i + sizeof rsa_oid <= *len && !at; i++)
        if (!memcmp(out + i, rsa_oid, sizeof rsa_oid))
            at = out + i;   /* the SPKI's: the certificate's own signature is sha256WithRSA */
    assert_non_null(at);
    if (how == SPKI_UNKNOWN_OID) {
        at[sizeof rsa_oid - 1] = 99;
    } else {
        uint8_t *p = at + sizeof rsa_oid;
        size_t end = *len - (size_t)(p - out), hdr = 0;
        assert_int_equal(p[0], 0x05);              /* NULL parameters */
        p += 2;
        assert_int_equal(p[0], 0x03);              /* BIT STRING */
        assert_true(der_elem(p, end, &hdr) > 0);
        p += hdr;
        assert_int_equal(p[0], 0x00);              /* no unused bits */
        assert_int_equal(p[1], 0x30);              /* RSAPublicKey */
        assert_true(der_elem(p + 1, end, &hdr) > 0);
        p += 1 + hdr;
        assert_int_equal(p[0], 0x02);              /* modulus */
        p[0] = 0x04;
    }
    const unsigned char *q = out;
    X509 *chk = d2i_X509(NULL, &q, (long)*len);
    assert_non_null(chk);
    assert_true(q == out + *len);
    assert_null(X509_get0_pubkey(chk));
    X509_free(chk);
    ERR_clear_error();
    return out;
}

static X509 *spoiled_x509(X509 *x, int how)
{
    size_t len = 0;
    uint8_t *der = spoil_spki(x, how, &len);
    const unsigned char *q = der;
    X509 *y = d2i_X509(NULL, &q, (long)len);
    assert_non_null(y);
    free(der);
    ERR_clear_error();
    return y;
}

/* A GetCACert answer is anyone's bytes: a certificate whose key OpenSSL
 * cannot decode takes no role, is never dereferenced, and a set with
 * nothing else usable is refused. */
static void test_undecodable_keys(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    const char *why = NULL;
    for (int how = SPKI_UNKNOWN_OID; how <= SPKI_BAD_KEY; how++) {
        /* the only certificate of the answer */
        size_t len = 0;
        uint8_t *der = spoil_spki(w->ca, how, &len);
        scep_certset_t *set = NULL;
        why = NULL;
        assert_int_equal(scep_cacert_parse(&P, der, len, &set, &why), SCEP_E_UNSUPPORTED);
        assert_null(set);
        assert_non_null(why);
        /* as one of a degenerate PKCS#7 with nothing else usable */
        X509 *bad_ca = spoiled_x509(w->ca, how);
        X509 *only_bad[1] = {bad_ca};
        size_t dlen = 0;
        uint8_t *deg = degenerate(only_bad, 1, &dlen);
        assert_int_equal(scep_cacert_parse(&P, deg, dlen, &set, &why), SCEP_E_UNSUPPORTED);
        assert_null(set);
        OPENSSL_free(deg);

        /* an RA set with a spoiled copy of each RA certificate, first: the good ones are chosen */
        X509 *bad_enc = spoiled_x509(w->ra_enc, how), *bad_sig = spoiled_x509(w->ra_sig, how);
        X509 *ra[5] = {bad_enc, bad_sig, w->inter, w->ra_sig, w->ra_enc};
        set = set_of(ra, 5);
        assert_true(same_cert(scep_certset_recipient(set), w->ra_enc));
        assert_true(same_cert(scep_certset_verifier(set), w->ra_sig));
        assert_true(same_cert(scep_certset_issuer(set), w->inter));
        /* pinned to the spoiled certificate: nothing chains to it */
        char thumb[41];
        thumb_of(bad_enc, thumb, false);
        assert_int_equal(scep_cacert_match_thumbprint(set, thumb, NULL, 0, NOW, &why), SCEP_E_UNTRUSTED);
        thumb_of(w->inter, thumb, false);
        assert_int_equal(scep_cacert_match_thumbprint(set, thumb, NULL, 0, NOW, &why), SCEP_OK);
        scep_certset_free(&P, set);

        /* only spoiled RA certificates: the issuing CA does everything */
        X509 *ra_bad[3] = {bad_enc, w->inter, bad_sig};
        set = set_of(ra_bad, 3);
        assert_true(same_cert(scep_certset_recipient(set), w->inter));
        assert_true(same_cert(scep_certset_verifier(set), w->inter));
        /* a device root without a usable key, pinned: nothing chains to it either */
        size_t rlen = 0;
        uint8_t *root_der = spoil_spki(w->root, how, &rlen);
        X509 *bad_root = spoiled_x509(w->root, how);
        thumb_of(bad_root, thumb, false);
        scep_blob_t roots[1] = {{root_der, rlen}};
        assert_int_equal(scep_cacert_match_thumbprint(set, thumb, roots, 1, NOW, &why), SCEP_E_UNTRUSTED);
        scep_certset_free(&P, set);
        free(root_der);
        X509_free(bad_root);

        /* as a request's recipient (a set never gives it, a caller might) */
        scep_cert_t *rcpt = NULL;
        assert_int_equal(scep_cert_from_der(&P, der, len, &rcpt, &why), SCEP_OK);
        scep_buf_t csr = csr_der(w), msg = {0};
        scep_msg_params_t mp = msg_params(w, SCEP_CIPHER_AES128_CBC, SCEP_DIGEST_SHA256);
        mp.recipient = rcpt;
        uint8_t nonce[SCEP_NONCE_LEN];
        assert_int_equal(scep_pkcsreq(&P, &mp, csr.data, csr.len, nonce, &msg, &why), SCEP_E_UNSUPPORTED);
        assert_null(msg.data);
        /* ... and as the CertRep's expected signer */
        scep_expect_t exp = expect_of(w, w->ca_set);
        exp.verifier = rcpt;
        scep_certrep_t rep;
        reply_t r = good_reply(f);
        assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_SIGNATURE);
        scep_certrep_clear(&P, &rep);
        scep_cert_free(&P, rcpt);
        scep_buf_free(&P, &csr);

        /* a spoiled certificate in a SUCCESS envelope is passed over */
        X509 *bad_stranger = spoiled_x509(f->stranger, how);
        X509 *certs[3] = {bad_stranger, f->issued, w->ca};
        scep_buf_t env = success_envelope(certs, 3, f->signer, "AES-128-CBC");
        exp = expect_of(w, w->ca_set);
        r = good_reply(f);
        r.content = env.data;
        r.content_len = env.len;
        if (run_reply(&r, &exp, &rep, &why) != SCEP_OK)
            fail_msg("SUCCESS with a spoiled certificate besides ours: %s", why);
        assert_issued(&rep, f->issued);
        scep_certrep_clear(&P, &rep);
        scep_buf_free(&P, &env);
        /* and it is never taken for ours */
        X509 *bad_mine = spoiled_x509(f->issued, how);
        X509 *only[2] = {bad_mine, w->ca};
        env = success_envelope(only, 2, f->signer, "AES-128-CBC");
        r.content = env.data;
        r.content_len = env.len;
        assert_int_equal(run_reply(&r, &exp, &rep, &why), SCEP_E_NOT_FOUND);
        scep_certrep_clear(&P, &rep);
        scep_buf_free(&P, &env);

        X509_free(bad_mine);
        X509_free(bad_stranger);
        X509_free(bad_enc);
        X509_free(bad_sig);
        X509_free(bad_ca);
        free(der);
    }
    /* a key object that holds no key yet is refused, not dereferenced */
    scep_key_t *empty = NULL;
    assert_int_equal(scep_key_alloc(&P, &empty, &why), SCEP_OK);
    scep_buf_t out = {0};
    char txid[SCEP_TXID_LEN + 1];
    scep_cert_t *c = NULL;
    scep_csr_params_t cp = {.subject = "CN=x", .digest = SCEP_DIGEST_SHA256};
    assert_int_equal(scep_key_to_der(&P, empty, &out, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_transaction_id(empty, txid, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_csr(&P, empty, &cp, &out, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_self_signed(&P, empty, "CN=x", SCEP_DIGEST_SHA256, NOW, &c, &why),
                     SCEP_E_INVALID_ARG);
    assert_null(c);
    scep_key_free(&P, empty);
}

/* ---- a real micromdm 2.1.0 exchange, captured by the live test ---------------------------------- */

static void test_micromdm_capture(void **state)
{
    (void)state;
    const char *dir0 = data_dir();
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/micromdm", dir0 ? dir0 : ".");
    size_t ca_len = 0, key_len = 0, sig_len = 0, rep_len = 0, non_len = 0, tx_len = 0, is_len = 0;
    uint8_t *ca = slurp(dir, "ca.der", &ca_len), *key = slurp(dir, "key.der", &key_len),
            *sig = slurp(dir, "signer.der", &sig_len), *rep_der = slurp(dir, "certrep.der", &rep_len),
            *non = slurp(dir, "nonce.bin", &non_len), *tx = slurp(dir, "txid", &tx_len),
            *issued = slurp(dir, "issued.der", &is_len);
    if (!ca || !key || !sig || !rep_der || !non || !tx || !issued) {
        free(ca), free(key), free(sig), free(rep_der), free(non), free(tx), free(issued);
        fail_msg("tests/data/scep/micromdm is incomplete (set OMADM_TOP?)");
    }
    const char *why = NULL;
    scep_certset_t *set = NULL;
    scep_key_t *k = NULL;
    scep_cert_t *signer = NULL;
    assert_int_equal(scep_cacert_parse(&P, ca, ca_len, &set, &why), SCEP_OK);
    assert_int_equal(scep_key_from_der(&P, key, key_len, &k, &why), SCEP_OK);
    assert_int_equal(scep_cert_from_der(&P, sig, sig_len, &signer, &why), SCEP_OK);
    assert_int_equal(non_len, SCEP_NONCE_LEN);
    while (tx_len && (tx[tx_len - 1] == '\n' || tx[tx_len - 1] == '\r'))
        tx_len--;
    tx[tx_len] = 0;
    scep_expect_t exp = {.verifier = scep_certset_verifier(set), .ca_certs = set,
                         .transaction_id = (const char *)tx, .nonce = non, .signer_cert = signer,
                         .signer_key = k, .csr_key = k, .now = 0};
    scep_certrep_t rep;
    if (scep_certrep_parse(&P, rep_der, rep_len, &exp, &rep, &why) != SCEP_OK)
        fail_msg("micromdm CertRep: %s", why);
    assert_int_equal(rep.status, SCEP_STATUS_SUCCESS);
    assert_string_equal(rep.cipher, "DES-CBC");
    assert_string_equal(rep.digest, "SHA-1");
    assert_non_null(rep.warning);
    assert_int_equal(rep.cert.len, is_len);
    assert_memory_equal(rep.cert.data, issued, is_len);
    scep_certrep_clear(&P, &rep);
    /* every truncation of the real reply is refused */
    for (size_t n = 0; n < rep_len; n += 1 + n / 64) {
        assert_int_not_equal(scep_certrep_parse(&P, rep_der, n, &exp, &rep, &why), SCEP_OK);
        scep_certrep_clear(&P, &rep);
    }
    scep_certset_free(&P, set);
    scep_key_free(&P, k);
    scep_cert_free(&P, signer);
    free(ca), free(key), free(sig), free(rep_der), free(non), free(tx), free(issued);
}

/* ---- garbage in ----------------------------------------------------------------------------------- */

static void random_bytes(uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rnd();
}

/* Random DER-ish prefixes make the parsers go deeper than pure noise. */
static void test_garbage_parsers(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    scep_expect_t exp = expect_of(w, w->ca_set);
    uint8_t buf[600];
    const char *why = NULL;
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd() % sizeof buf;
        random_bytes(buf, n);
        if (round % 3 == 0) {          /* SEQUENCE with a plausible length */
            buf[0] = 0x30;
            buf[1] = 0x82;
            buf[2] = (uint8_t)((n - 4) >> 8);
            buf[3] = (uint8_t)(n - 4);
        }
        if (round % 3 == 1 && n > 20)  /* ContentInfo signedData header */
            memcpy(buf, "\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x80\x30\x80", 17);
        scep_certset_t *set = NULL;
        assert_int_not_equal(scep_cacert_parse(&P, buf, n, &set, &why), SCEP_OK);
        assert_null(set);
        scep_certrep_t rep;
        assert_int_not_equal(scep_certrep_parse(&P, buf, n, &exp, &rep, &why), SCEP_OK);
        scep_certrep_clear(&P, &rep);
        scep_key_t *k = NULL;
        assert_int_not_equal(scep_key_from_der(&P, buf, n, &k, &why), SCEP_OK);
        scep_cert_t *c = NULL;
        assert_int_not_equal(scep_cert_from_der(&P, buf, n, &c, &why), SCEP_OK);
        (void)scep_caps_parse((const char *)buf, n);
    }
}

static void test_truncated_and_flipped(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    scep_expect_t exp = expect_of(w, w->ca_set);
    const char *why = NULL;
    scep_certrep_t rep;
    reply_t r = good_reply(f);
    scep_buf_t msg = build_reply(&r);
    for (size_t n = 0; n < msg.len; n++) {
        assert_int_not_equal(scep_certrep_parse(&P, msg.data, n, &exp, &rep, &why), SCEP_OK);
        scep_certrep_clear(&P, &rep);
    }
    /* flipped bits: refused, or (in unsigned parts) the same result */
    for (int i = 0; i < 1500; i++) {
        size_t pos = rnd() % msg.len;
        uint8_t bit = (uint8_t)(1u << (rnd() % 8));
        msg.data[pos] ^= bit;
        if (scep_certrep_parse(&P, msg.data, msg.len, &exp, &rep, &why) == SCEP_OK) {
            assert_int_equal(rep.status, SCEP_STATUS_SUCCESS);
            assert_issued(&rep, f->issued);
        }
        scep_certrep_clear(&P, &rep);
        msg.data[pos] ^= bit;
    }
    scep_buf_free(&P, &msg);
    /* a PENDING reply, truncated */
    r.status = "3";
    r.content = NULL;
    r.content_len = 0;
    msg = build_reply(&r);
    for (size_t n = 0; n < msg.len; n++) {
        assert_int_not_equal(scep_certrep_parse(&P, msg.data, n, &exp, &rep, &why), SCEP_OK);
        scep_certrep_clear(&P, &rep);
    }
    scep_buf_free(&P, &msg);
    /* an RA set, truncated and flipped */
    X509 *ra[3] = {w->ra_sig, w->ra_enc, w->inter};
    size_t len = 0;
    uint8_t *der = degenerate(ra, 3, &len);
    for (size_t n = 0; n < len; n++) {
        scep_certset_t *set = NULL;
        assert_int_not_equal(scep_cacert_parse(&P, der, n, &set, &why), SCEP_OK);
        assert_null(set);
    }
    for (int i = 0; i < 1500; i++) {
        size_t pos = rnd() % len;
        der[pos] ^= (uint8_t)(1u << (rnd() % 8));
        scep_certset_t *set = NULL;
        if (scep_cacert_parse(&P, der, len, &set, &why) == SCEP_OK) {
            assert_true(scep_certset_count(set) >= 1);
            (void)scep_cacert_match_thumbprint(set, "00112233445566778899AABBCCDDEEFF00112233", NULL, 0,
                                               NOW, &why);
        }
        scep_certset_free(&P, set);
    }
    OPENSSL_free(der);
}

/* Random parameter text for the CSR parsers: no crash, no leak, a reason on refusal. */
static void test_garbage_text(void **state)
{
    rep_fixture_t *f = *state;
    world_t *w = f->w;
    static const char alphabet[] = ",;+=\" \\CNOUE0123456789.:@abcxyz\xc3\xa9\xff\t";
    char subject[64], san[64], eku[64], fam[24];
    for (int round = 0; round < 400; round++) {
        char *bufs[4] = {subject, san, eku, fam};
        size_t sizes[4] = {sizeof subject, sizeof san, sizeof eku, sizeof fam};
        for (int b = 0; b < 4; b++) {
            size_t n = rnd() % sizes[b];
            for (size_t i = 0; i < n; i++)
                bufs[b][i] = alphabet[rnd() % (sizeof alphabet - 1)];
            bufs[b][n] = 0;
        }
        if (round % 2)
            memcpy(subject, "CN=", 3);
        if (round % 4 == 1)
            memcpy(san, "3+", 2);
        scep_csr_params_t p = {.subject = subject, .san = san, .eku = eku, .challenge = eku,
                               .key_usage = rnd() & 0x80ff, .digest = SCEP_DIGEST_SHA1,
                               .valid_period = round % 5 ? NULL : fam, .valid_units = rnd() % 3};
        scep_buf_t out = {0};
        const char *why = NULL;
        scep_err_t err = scep_csr(&P, w->dev, &p, &out, &why);
        assert_true(err == SCEP_OK || why != NULL);
        scep_buf_free(&P, &out);
        scep_cipher_t c;
        scep_digest_t d;
        err = scep_caps_choose(~0u, fam, &c, &d, &why);
        assert_true(err == SCEP_OK || why != NULL);
        char *url = NULL;
        if (scep_url_get(&P, subject[0] ? subject : "x", "GetCACert", (const uint8_t *)san, strlen(san),
                         &url, &why) == SCEP_OK)
            plat_free(&P, url);
        (void)scep_cacert_match_thumbprint(w->ca_set, subject, NULL, 0, NOW, &why);
    }
}

/* ---- URLs ------------------------------------------------------------------------------------------- */

static void url_is(const char *base, const char *op, const uint8_t *msg, size_t len, const char *want)
{
    char *url = NULL;
    const char *why = NULL;
    scep_err_t err = scep_url_get(&P, base, op, msg, len, &url, &why);
    if (err != SCEP_OK)
        fail_msg("url: %s", why);
    assert_string_equal(url, want);
    plat_free(&P, url);
}

static void test_urls(void **state)
{
    (void)state;
    url_is("http://h/scep", "GetCACaps", NULL, 0, "http://h/scep?operation=GetCACaps");
    url_is("http://h/cgi-bin/pkiclient.exe", "GetCACert", (const uint8_t *)"CA id/1", 7,
           "http://h/cgi-bin/pkiclient.exe?operation=GetCACert&message=CA%20id%2F1");
    url_is("http://h/x?tenant=a", "GetCACaps", NULL, 0, "http://h/x?tenant=a&operation=GetCACaps");
    /* fb ff bf -> "+/+/" ; fb ff -> "+/8=" : standard alphabet, then escaped */
    url_is("http://h/scep", "PKIOperation", (const uint8_t *)"\xfb\xff\xbf\xfb\xff", 5,
           "http://h/scep?operation=PKIOperation&message=%2B%2F%2B%2F%2B%2F8%3D");
    url_is("http://h/scep", "PKIOperation", (const uint8_t *)"", 0,
           "http://h/scep?operation=PKIOperation&message=");
    char *url = NULL;
    const char *why = NULL;
    assert_int_equal(scep_url_get(&P, "http://h", "PKI Operation", NULL, 0, &url, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_url_get(&P, "", "GetCACaps", NULL, 0, &url, &why), SCEP_E_INVALID_ARG);
    assert_int_equal(scep_url_get(&P, "http://h", "GetCACaps", NULL, 3, &url, &why), SCEP_E_INVALID_ARG);
    assert_null(url);
    /* Windows-style base */
    static const char *const wb[][2] = {
        {"https://contoso.com/certsrv/mscep/mscep.dll", "https://contoso.com/certsrv/mscep/mscep.dll/pkiclient.exe"},
        {"https://contoso.com/certsrv/mscep/mscep.dll/", "https://contoso.com/certsrv/mscep/mscep.dll/pkiclient.exe"},
        {"http://h/cgi-bin/pkiclient.exe", "http://h/cgi-bin/pkiclient.exe"},
        {"http://h/scep/PKICLIENT.EXE", "http://h/scep/PKICLIENT.EXE"},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(scep_url_windows_base(&P, wb[i][0], &url, &why), SCEP_OK);
        assert_string_equal(url, wb[i][1]);
        plat_free(&P, url);
    }
    assert_int_equal(scep_url_windows_base(&P, "http://h/x?y=1", &url, &why), SCEP_E_INVALID_ARG);
    assert_string_equal(scep_strerror(SCEP_E_SIGNATURE), "response signature invalid");
    assert_string_equal(scep_strerror((scep_err_t)99), "unknown error");
    assert_string_equal(scep_strerror((scep_err_t)-1), "unknown error");
}

int main(void)
{
    plat_init(&P, NULL);
    const struct CMUnitTest world_tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_subject_names),
        cmocka_unit_test(test_csr_contents),
        cmocka_unit_test(test_csr_refusals),
        cmocka_unit_test(test_self_signed),
        cmocka_unit_test(test_pkcsreq),
        cmocka_unit_test(test_certpoll),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_cacert_sets),
        cmocka_unit_test(test_cert_not_der),
        cmocka_unit_test(test_thumbprint),
        cmocka_unit_test(test_cert_validity),
        cmocka_unit_test_setup_teardown(test_certrep_success, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_certrep_ra, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_certrep_pending_failure, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_certrep_rejections, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_keys, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_parsers, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_flipped, rep_setup, rep_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_text, rep_setup, rep_teardown),
    };
    const struct CMUnitTest plain_tests[] = {
        cmocka_unit_test(test_caps_parse),
        cmocka_unit_test(test_caps_choose),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_micromdm_capture),
    };
    int failed = cmocka_run_group_tests_name("scep_msg", plain_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("scep_msg_pki", world_tests, world_setup, world_teardown);
    return failed ? 1 : 0;
}
