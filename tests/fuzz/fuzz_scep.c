/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_scep.c - libFuzzer target: what a SCEP server sends back, through
 * the SCEP message layer (csp/scep_msg.c).  The first byte of the input
 * picks the mode (modulo 5), the rest is the payload:
 *
 *   0 GetCACaps   scep_caps_parse, scep_caps_choose for several
 *                 HashAlgorithm values and for the payload as one,
 *                 scep_caps_post.  The bits are known ones; a choice is
 *                 an offered cipher and digest of an allowed family.
 *   1 GetCACert   scep_cacert_parse, then the roles, thumbprints, subjects,
 *                 scep_cacert_match_thumbprint (the recipient's own
 *                 thumbprint, a thumbprint no certificate has, a malformed
 *                 one; the fixture CA and the payload as extra roots).  A
 *                 parsed set has 1..64 certificates, all three roles are
 *                 in it, the recipient is RSA, a single certificate is the
 *                 input byte for byte and pins itself.
 *   2 CertRep     scep_certrep_parse of the payload against two sets of
 *                 expectations: the recorded micromdm exchange
 *                 (tests/data/scep/micromdm, when it can be found) and the
 *                 harness's own fixture CA.  A refusal hands out no
 *                 certificate; an accepted SUCCESS carries a certificate
 *                 for our key signed by the CA; FAILURE has a failInfo.
 *   3 authentic   a CertRep the harness builds and signs with the fixture
 *     CertRep     CA from the payload (status, content, cipher, digest,
 *                 attributes, and what to get wrong; see build_spec), so
 *                 that the code after the signature check is reached; the
 *                 result must be the one the spec implies (e.g. SUCCESS
 *                 with the issued certificate, byte for byte; a wrong
 *                 transactionID, nonce or signer refused).
 *   4 import      scep_cert_from_der (the DER round trip and the SHA-1
 *                 thumbprint) and scep_key_from_der (PKCS#8 round trip,
 *                 transactionID).
 *
 * The fixture (two RSA-1024 test keys below, certificates made from them
 * at start-up, a fixed clock and random generator) is the same in every
 * run, so a seed signed by the fixture CA stays authentic.  With
 * FUZZ_SCEP_SEEDS=DIR in the environment the harness also writes such
 * seeds (mode 2: SUCCESS with each cipher, PENDING, FAILURE) into DIR at
 * start-up (tests/fuzz/seeds.py uses it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "csp/scep_msg.h"
#include "fuzz_common.h"

#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"

/* Test keys (RSA-1024), made for this harness and nothing else. */
static const char CA_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAMBIuE18M8ZsME3U\n"
    "U8XQlIiL5Sw8Sf3h3FxQzeGJjmqO1YleTfZOdeIS+gRMeEDzegSFTsJ1zbB0yd3W\n"
    "5EABjiwd28ZneIcKpAMVSJ7M5BjCqXIuSPEJOGPLIehdRh388/qVrf20K6uIvRMh\n"
    "G0wGrENMxuJfRT/ma3HwDsIlVLq3AgMBAAECgYBdElXzW40MHE39PisWcvGSbnSN\n"
    "RtlhxDOPk6Uz6AtBVMXTagw+jpfMx/awofsLJU8IZSZMRg07viv/7wYoXRhdNkOf\n"
    "j/+8CCIgE3LPjeRZ6MsLRkSoM/pbR/aXUc/sV+Gh48EMTOjuakuKqUHX4uD6n2lZ\n"
    "xgBx3zTn0/jocPcIQQJBAPc5inQjok1P+FMcVJzqPx6UN+MM7uRyIEYMNEQbrUTl\n"
    "uCQOIPSeqiQ2L31X9brb6fQmShxXYVJY7yUwbZl0ACcCQQDHG/LvakuR6Oru9HgF\n"
    "G7rmls0DlqoHcXPwHJGivCcnRzQ+0tlLaXhaMpCj53thayuFXkPac6gfxphZRIbb\n"
    "QnrxAkAfh2EW6qx6O6apwsUvtdgS6EgwVqfozn07MbdAsF7qmHlhb8PYLpv4PkjU\n"
    "LXGTQRSXJILzFlm9DMaC8agol9ilAkAIa/I2ljRkE4n8WXLKJIYfQrmhMTo33mCd\n"
    "A1hVnce6LZTUI271dZyVlBXyGNRrJnFMztPn5YRy8592ByP9Gi7BAkBCser4WbW+\n"
    "Rf24VZZgyJbQX0MOqzc5u3fl741+qVM/WsLQNFddEBFI+DowZCBMufHLBZagts5e\n"
    "L7a8xXRWtl5S\n"
    "-----END PRIVATE KEY-----\n";

static const char DEV_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALPDF2RiLSpXw0Vm\n"
    "FMtt30TesAsqqNBhjiU845+mm3cTezkWbNMu0LZQSg83yeC7TvxvlV1ROQuR3s4j\n"
    "Q9cdSjsbHcSVYzX3JOEzVPL/WTdwQcjL/sjsf3OVEYWjYI2zFXjhszOtCd8QFnzm\n"
    "hcQHVzhni8rfx9kH0idSsE4qBshNAgMBAAECgYAXmk0O/CkL/zv/d7jRQRroswiQ\n"
    "XsiNm9GLKCSHCNwu1Vr/kuc1D1eOKJqgxuV14YIseQY2m3yO/Vcw38Z/jzP4uFk6\n"
    "8hijtw6x6QNzw0csm/tg7hRbpOZhjjjusNHccRJ5mIyv6JJqaGsN9O0kUVB65PRM\n"
    "ZstV440pEoniRkzCjQJBAOL+FKK7TislfcbUl2TkgSw7Qvst+vh7SvwzPfQPilHL\n"
    "O5wTYxdkKNluk+Wjq3qkTpEE/58OtaBw43I/bChwrbsCQQDKu+WEpvWFTI+rxOio\n"
    "JJGFB6flTg+TB69vxNEE1OrlzLQfgYP4YN7bbZ5UxpHbbH0WmkUMEsFSKqeyiauW\n"
    "dH2XAkEAyYEITJW+BKtZhmI+qz/2M4/AHD5rJp48qLnMa5ZIEeg6WIkVVDSD1tFE\n"
    "1Xx/w3WMkUxAp7BlJ7JPFqKanyO39QJAH5o6pPsBus28d6IyQkOxC3OuEGiitOC1\n"
    "0E515rLqCvhl+6NM1yMCmmH0FHL/uZynwyY5LTCfQhe0HHipbsKp8QJAInrn2IUK\n"
    "509ag+IQkGa4ZNi1agOG9ffZQH4EKuqzIcnBc1ahesLC/6fl2SPkl313OFOGPPTW\n"
    "7CvVtKtLHX/K5A==\n"
    "-----END PRIVATE KEY-----\n";

static const uint8_t NONCE[SCEP_NONCE_LEN] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,
                                              0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

/* What a CertRep is checked against. */
typedef struct world {
    bool ok;
    scep_certset_t *set;
    scep_key_t *key;
    scep_cert_t *signer;
    char txid[SCEP_TXID_LEN + 1];
    uint8_t nonce[SCEP_NONCE_LEN];
    scep_expect_t exp;
} world_t;

static struct fixture {
    const omadm_platform_t *plat;
    EVP_PKEY *ca_key, *dev_key;
    X509 *ca, *issued, *signer;     /* signer: the device's request signer, as X509 */
    uint8_t *ca_der, *issued_der;
    size_t ca_der_len, issued_der_len;
    world_t own;                    /* the fixture CA and device */
    world_t mdm;                    /* the recorded micromdm exchange (ok = false if absent) */
    uint8_t *env[4];                /* envelopes of {issued, ca} to signer: AES-128, 3DES, AES-256, DES */
    size_t env_len[4];
} F;

/* ---- OpenSSL helpers (harness side: the CA) ---- */

static EVP_PKEY *pem_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    FUZZ_CHECK(k != NULL, "fixture key does not load");
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    FUZZ_CHECK(e && X509_add_ext(x, e, -1), "fixture extension %d", nid);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       bool ca)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    FUZZ_CHECK(x && n, "fixture certificate");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Fuzz PKI", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    ASN1_TIME_set_string(X509_getm_notBefore(x), "20250101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(x), "20350101000000Z");
    X509_set_pubkey(x, key);
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage,
                "critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment");
    } else {
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    }
    FUZZ_CHECK(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0, "fixture signature");
    return x;
}

static uint8_t *der_of(X509 *x, size_t *len)
{
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    FUZZ_CHECK(n > 0, "fixture DER");
    *len = (size_t)n;
    return d;
}

static X509 *x509_of(const scep_cert_t *c)
{
    scep_buf_t b = {0};
    FUZZ_CHECK(scep_cert_to_der(F.plat, c, &b, NULL) == SCEP_OK, "scep_cert_to_der");
    const unsigned char *p = b.data;
    X509 *x = d2i_X509(NULL, &p, (long)b.len);
    scep_buf_free(F.plat, &b);
    FUZZ_CHECK(x != NULL, "a certificate of a set must encode as DER that parses");
    return x;
}

/* Degenerate certs-only SignedData of certs. */
static uint8_t *degenerate(X509 **certs, size_t n, size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    FUZZ_CHECK(p7 && PKCS7_set_type(p7, NID_pkcs7_signed) && PKCS7_content_new(p7, NID_pkcs7_data),
               "PKCS#7");
    for (size_t i = 0; i < n; i++)
        PKCS7_add_certificate(p7, certs[i]);
    unsigned char *d = NULL;
    int l = i2d_PKCS7(p7, &d);
    PKCS7_free(p7);
    FUZZ_CHECK(l > 0, "PKCS#7 DER");
    *len = (size_t)l;
    return d;
}

/* EnvelopedData of plain to the device's signer, with the cipher
 * ("DES-CBC" through a private context with the legacy provider). */
static uint8_t *envelope(const uint8_t *plain, size_t len, const char *cipher, size_t *out_len)
{
    OSSL_LIB_CTX *lc = NULL;
    OSSL_PROVIDER *pd = NULL, *pl = NULL;
    if (!strcmp(cipher, "DES-CBC")) {
        lc = OSSL_LIB_CTX_new();
        pd = OSSL_PROVIDER_load(lc, "default");
        pl = OSSL_PROVIDER_load(lc, "legacy");
    }
    EVP_CIPHER *c = EVP_CIPHER_fetch(lc, cipher, NULL);
    STACK_OF(X509) *rc = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(len ? (const void *)plain : "", (int)len);
    CMS_ContentInfo *env = NULL;
    uint8_t *out = NULL;
    if (c && rc && in && sk_X509_push(rc, F.signer))
        env = CMS_encrypt_ex(rc, in, c, CMS_BINARY, lc, NULL);
    unsigned char *der = NULL;
    int l = env ? i2d_CMS_ContentInfo(env, &der) : -1;
    if (l > 0) {
        out = malloc((size_t)l);
        FUZZ_CHECK(out != NULL, "malloc");
        memcpy(out, der, (size_t)l);
        *out_len = (size_t)l;
    }
    OPENSSL_free(der);
    CMS_ContentInfo_free(env);
    BIO_free(in);
    sk_X509_free(rc);
    EVP_CIPHER_free(c);
    if (pl)
        OSSL_PROVIDER_unload(pl);
    if (pd)
        OSSL_PROVIDER_unload(pd);
    OSSL_LIB_CTX_free(lc);
    ERR_clear_error();
    return out;
}

/* ---- the fixture ---- */

static bool dir_has(const char *dir)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/certrep.der", dir);
    return stat(p, &st) == 0;
}

/* tests/data/scep/micromdm: $OMADM_TOP, else up from the program. */
static bool find_capture(char *dir, size_t size)
{
    const char *top = getenv("OMADM_TOP");
    if (top && *top) {
        snprintf(dir, size, "%s/tests/data/scep/micromdm", top);
        return dir_has(dir);
    }
    char cur[3800];
    ssize_t n = readlink("/proc/self/exe", cur, sizeof cur - 1);
    if (n <= 0)
        return false;
    cur[n] = 0;
    for (char *slash; (slash = strrchr(cur, '/')) && slash != cur;) {
        *slash = 0;
        snprintf(dir, size, "%s/tests/data/scep/micromdm", cur);
        if (dir_has(dir))
            return true;
    }
    return false;
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(SCEP_MAX_DER + 1);
    size_t n = buf ? fread(buf, 1, SCEP_MAX_DER, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

static void world_expect(world_t *w)
{
    w->exp = (scep_expect_t){.verifier = scep_certset_verifier(w->set), .ca_certs = w->set,
                             .transaction_id = w->txid, .nonce = w->nonce, .signer_cert = w->signer,
                             .signer_key = w->key, .csr_key = w->key, .now = FUZZ_NOW};
    w->ok = true;
}

static void load_capture(void)
{
    char dir[4200];
    if (!find_capture(dir, sizeof dir)) {
        fprintf(stderr, "fuzz_scep: tests/data/scep/micromdm not found (set OMADM_TOP): "
                        "mode 2 checks against the fixture CA only\n");
        return;
    }
    size_t ca_len = 0, key_len = 0, sig_len = 0, non_len = 0, tx_len = 0;
    uint8_t *ca = slurp(dir, "ca.der", &ca_len), *key = slurp(dir, "key.der", &key_len),
            *sig = slurp(dir, "signer.der", &sig_len), *non = slurp(dir, "nonce.bin", &non_len),
            *tx = slurp(dir, "txid", &tx_len);
    world_t *w = &F.mdm;
    const char *why = NULL;
    FUZZ_CHECK(ca && key && sig && non && tx && non_len == SCEP_NONCE_LEN && tx_len <= SCEP_TXID_LEN + 2,
               "%s is incomplete", dir);
    FUZZ_CHECK(scep_cacert_parse(F.plat, ca, ca_len, &w->set, &why) == SCEP_OK &&
                   scep_key_from_der(F.plat, key, key_len, &w->key, &why) == SCEP_OK &&
                   scep_cert_from_der(F.plat, sig, sig_len, &w->signer, &why) == SCEP_OK,
               "micromdm capture: %s", why);
    while (tx_len && (tx[tx_len - 1] == '\n' || tx[tx_len - 1] == '\r'))
        tx_len--;
    memcpy(w->txid, tx, tx_len);
    w->txid[tx_len] = 0;
    memcpy(w->nonce, non, SCEP_NONCE_LEN);
    world_expect(w);
    /* the capture's certificates are real ones, with real dates */
    w->exp.now = 0;
    free(ca), free(key), free(sig), free(non), free(tx);
}

static void make_fixture(void)
{
    F.plat = fuzz_platform();
    fuzz_platform_reset();
    F.ca_key = pem_key(CA_KEY);
    F.dev_key = pem_key(DEV_KEY);
    F.ca = make_cert("Fuzz SCEP CA", 1, F.ca_key, NULL, NULL, true);
    F.issued = make_cert("fuzz device", 2, F.dev_key, F.ca, F.ca_key, false);
    F.ca_der = der_of(F.ca, &F.ca_der_len);
    F.issued_der = der_of(F.issued, &F.issued_der_len);
    world_t *w = &F.own;
    const char *why = NULL;
    unsigned char *kd = NULL;
    int kl = i2d_PrivateKey(F.dev_key, &kd);
    FUZZ_CHECK(kl > 0 && scep_key_from_der(F.plat, kd, (size_t)kl, &w->key, &why) == SCEP_OK,
               "device key: %s", why);
    OPENSSL_free(kd);
    FUZZ_CHECK(scep_cacert_parse(F.plat, F.ca_der, F.ca_der_len, &w->set, &why) == SCEP_OK &&
                   scep_self_signed(F.plat, w->key, "CN=fuzz device,O=Fuzz", SCEP_DIGEST_SHA256,
                                    FUZZ_NOW, &w->signer, &why) == SCEP_OK &&
                   scep_transaction_id(w->key, w->txid, &why) == SCEP_OK,
               "fixture: %s", why);
    memcpy(w->nonce, NONCE, SCEP_NONCE_LEN);
    world_expect(w);
    F.signer = x509_of(w->signer);
    X509 *certs[2] = {F.issued, F.ca};
    size_t dlen = 0;
    uint8_t *deg = degenerate(certs, 2, &dlen);
    static const char *const ciphers[4] = {"AES-128-CBC", "DES-EDE3-CBC", "AES-256-CBC", "DES-CBC"};
    for (int i = 0; i < 4; i++) {
        F.env[i] = envelope(deg, dlen, ciphers[i], &F.env_len[i]);
        FUZZ_CHECK(F.env[i] || i == 3, "fixture envelope %s", ciphers[i]);
    }
    OPENSSL_free(deg);
    load_capture();
}

/* ---- mode 0: GetCACaps ---- */

#define ALL_CAPS                                                                               \
    (SCEP_CAP_AES | SCEP_CAP_DES3 | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 | SCEP_CAP_SHA512 |        \
     SCEP_CAP_POST | SCEP_CAP_STANDARD | SCEP_CAP_RENEWAL | SCEP_CAP_NEXT_CA)

static void choose(unsigned caps, const char *families)
{
    scep_cipher_t c = 0;
    scep_digest_t d = 0;
    const char *why = NULL;
    scep_err_t err = scep_caps_choose(caps, families, &c, &d, &why);
    FUZZ_CHECK(err == SCEP_OK || err == SCEP_E_NO_ALGORITHM || err == SCEP_E_INVALID_ARG,
               "scep_caps_choose: %s", scep_strerror(err));
    if (err != SCEP_OK) {
        FUZZ_CHECK(why != NULL, "a refusal says why");
        return;
    }
    bool aes = caps & (SCEP_CAP_AES | SCEP_CAP_STANDARD);
    FUZZ_CHECK(c == (aes ? SCEP_CIPHER_AES128_CBC : SCEP_CIPHER_DES3_CBC) &&
                   (aes || (caps & SCEP_CAP_DES3)),
               "cipher %d for caps %#x", c, caps);
    bool offered = d == SCEP_DIGEST_SHA1     ? caps & SCEP_CAP_SHA1
                   : d == SCEP_DIGEST_SHA256 ? caps & (SCEP_CAP_SHA256 | SCEP_CAP_STANDARD)
                   : d == SCEP_DIGEST_SHA512 ? caps & SCEP_CAP_SHA512
                                             : false;
    FUZZ_CHECK(offered, "digest %d not offered in caps %#x", d, caps);
    if (families && (!strcasecmp(families, "SHA-1")))
        FUZZ_CHECK(d == SCEP_DIGEST_SHA1, "SHA-1 only, got digest %d", d);
    if (families && (!strcasecmp(families, "SHA-2")))
        FUZZ_CHECK(d != SCEP_DIGEST_SHA1, "SHA-2 only, got SHA-1");
}

static void mode_caps(const uint8_t *p, size_t n)
{
    unsigned caps = scep_caps_parse((const char *)p, n);
    FUZZ_CHECK(!(caps & ~ALL_CAPS), "unknown capability bits %#x", caps);
    FUZZ_CHECK(scep_caps_post(caps) == !!(caps & (SCEP_CAP_POST | SCEP_CAP_STANDARD)),
               "scep_caps_post for %#x", caps);
    static const char *const fams[] = {NULL, "", "SHA-1", "SHA-2", "sha-1+sha-2", "SHA-3"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        choose(caps, fams[i]);
    char text[256];
    size_t tn = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, tn);
    text[tn] = 0;
    choose(caps, text);
    choose(ALL_CAPS, text);
}

/* ---- mode 1: GetCACert ---- */

static bool in_set(const scep_certset_t *set, const scep_cert_t *c)
{
    for (size_t i = 0; i < scep_certset_count(set); i++)
        if (scep_certset_get(set, i) == c)
            return true;
    return false;
}

static void check_cert(const scep_cert_t *c)
{
    char thumb[SCEP_THUMB_LEN + 1], subject[256];
    FUZZ_CHECK(scep_cert_thumbprint(c, thumb) == SCEP_OK && strlen(thumb) == SCEP_THUMB_LEN,
               "every certificate of a set has a thumbprint");
    scep_cert_subject(c, subject, sizeof subject);
    FUZZ_CHECK(memchr(subject, 0, sizeof subject) != NULL, "subject text NUL-terminated");
}

static void mode_cacert(const uint8_t *p, size_t n)
{
    scep_certset_t *set = NULL;
    const char *why = NULL;
    scep_err_t err = scep_cacert_parse(F.plat, p, n, &set, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "GetCACert: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(!set && why, "a refused GetCACert hands out nothing and says why");
        return;
    }
    size_t count = scep_certset_count(set);
    const scep_cert_t *rcpt = scep_certset_recipient(set), *ver = scep_certset_verifier(set),
                      *iss = scep_certset_issuer(set);
    FUZZ_CHECK(count >= 1 && count <= 64, "%zu certificates in a set", count);
    FUZZ_CHECK(rcpt && ver && iss && in_set(set, rcpt) && in_set(set, ver) && in_set(set, iss),
               "every role is a certificate of the set");
    FUZZ_CHECK(scep_certset_get(set, count) == NULL, "no certificate past the end");
    for (size_t i = 0; i < count; i++)
        check_cert(scep_certset_get(set, i));
    X509 *rx = x509_of(rcpt);
    EVP_PKEY *rk = X509_get0_pubkey(rx);
    FUZZ_CHECK(rk && EVP_PKEY_get_base_id(rk) == EVP_PKEY_RSA, "the recipient is an RSA certificate");
    X509_free(rx);
    char thumb[SCEP_THUMB_LEN + 1];
    scep_cert_thumbprint(rcpt, thumb);
    if (count == 1) {
        scep_buf_t der = {0};
        FUZZ_CHECK(scep_cert_to_der(F.plat, rcpt, &der, NULL) == SCEP_OK && der.len == n &&
                       !memcmp(der.data, p, n),
                   "a single certificate is the input byte for byte");
        scep_buf_free(F.plat, &der);
        err = scep_cacert_match_thumbprint(set, thumb, NULL, 0, 0, &why);
        FUZZ_CHECK(err == SCEP_OK, "a single certificate pins itself: %s", why);
    }
    scep_blob_t roots[2] = {{F.ca_der, F.ca_der_len}, {p, n}};
    err = scep_cacert_match_thumbprint(set, thumb, roots, 2, FUZZ_NOW, &why);
    FUZZ_CHECK(err == SCEP_OK || err == SCEP_E_UNTRUSTED, "thumbprint match: %s", scep_strerror(err));
    err = scep_cacert_match_thumbprint(set, "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00",
                                       roots, 2, 0, &why);
    FUZZ_CHECK(err == SCEP_E_UNTRUSTED, "no certificate has the SHA-1 0000...: %s", scep_strerror(err));
    err = scep_cacert_match_thumbprint(set, "not a thumbprint", NULL, 0, 0, &why);
    FUZZ_CHECK(err == SCEP_E_INVALID_ARG, "a malformed thumbprint: %s", scep_strerror(err));
    scep_certset_free(F.plat, set);
}

/* ---- modes 2 and 3: CertRep ---- */

/* The checks any result of scep_certrep_parse must pass. */
static scep_err_t certrep(const world_t *w, const uint8_t *p, size_t n, scep_certrep_t *rep)
{
    const char *why = NULL;
    scep_err_t err = scep_certrep_parse(F.plat, p, n, &w->exp, rep, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "CertRep: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(why && !rep->cert.data && !rep->cert.len,
                   "a refused CertRep hands out no certificate and says why");
        return err;
    }
    FUZZ_CHECK(rep->digest != NULL, "an accepted CertRep names its digest");
    FUZZ_CHECK(memchr(rep->fail_text, 0, sizeof rep->fail_text) != NULL, "failInfoText NUL-terminated");
    for (const char *c = rep->fail_text; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "control character in failInfoText");
    switch (rep->status) {
    case SCEP_STATUS_SUCCESS: {
        FUZZ_CHECK(rep->cert.data && rep->cert.len, "SUCCESS without a certificate");
        const unsigned char *q = rep->cert.data;
        X509 *x = d2i_X509(NULL, &q, (long)rep->cert.len);
        FUZZ_CHECK(x && q == rep->cert.data + rep->cert.len, "the issued certificate is one DER certificate");
        scep_buf_t kd = {0};
        FUZZ_CHECK(scep_key_to_der(F.plat, w->key, &kd, NULL) == SCEP_OK, "key DER");
        const unsigned char *kp = kd.data;
        EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &kp, (long)kd.len);
        FUZZ_CHECK(k && EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1, "the issued certificate is for our key");
        if (w == &F.own)
            FUZZ_CHECK(X509_verify(x, F.ca_key) == 1, "the issued certificate is signed by the CA");
        EVP_PKEY_free(k);
        scep_buf_free(F.plat, &kd);
        X509_free(x);
        break;
    }
    case SCEP_STATUS_FAILURE:
        FUZZ_CHECK(rep->fail_info >= 0 && !rep->cert.data, "FAILURE: failInfo %d", rep->fail_info);
        break;
    case SCEP_STATUS_PENDING:
        FUZZ_CHECK(!rep->cert.data, "PENDING with a certificate");
        break;
    default:
        fuzz_fail(__FILE__, __LINE__, "status", "unknown status %d", (int)rep->status);
    }
    ERR_clear_error();
    return SCEP_OK;
}

static void mode_certrep(const uint8_t *p, size_t n)
{
    const world_t *worlds[2] = {&F.own, &F.mdm};
    for (int i = 0; i < 2; i++) {
        if (!worlds[i]->ok)
            continue;
        scep_certrep_t rep;
        certrep(worlds[i], p, n, &rep);
        scep_certrep_clear(F.plat, &rep);
    }
}

/*
 * Mode 3.  The payload is a spec:
 *   s[0] bits 0-1 pkiStatus: 0 SUCCESS, 1 FAILURE, 2 PENDING, 3 text[0] as is
 *        bits 2-3 content: 0 envelope of {issued, CA}; 1 envelope of body;
 *                 2 body as the content itself; 3 none
 *        bits 4-5 envelope cipher: AES-128, 3DES, AES-256, single DES
 *        bit 6 wrong transactionID, bit 7 wrong recipientNonce
 *   s[1] bits 0-2 digest: SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, MD5, SHA-1, SHA-256
 *        bit 3 SignerInfo algorithm relabelled sha256WithRSAEncryption
 *        bit 4 signed by the device's key (not the CA)
 *        bit 5 messageType text[1] instead of "3"
 *        bit 6 failInfo text[2] instead of "2"
 *        bit 7 failInfoText text[3]
 *   s[2] length of text, s[3..] text (fields separated by '|'), then body.
 */
typedef struct spec {
    unsigned status, content, cipher, digest;
    bool bad_txid, bad_nonce, relabel, other_signer;
    char *text[4];           /* NULL: the default */
    const uint8_t *body;
    size_t body_len;
    char buf[256];
} spec_t;

static void parse_spec(const uint8_t *p, size_t n, spec_t *s)
{
    memset(s, 0, sizeof *s);
    uint8_t a = n > 0 ? p[0] : 0, b = n > 1 ? p[1] : 0;
    size_t tl = n > 2 ? p[2] : 0;
    size_t off = n > 3 ? 3 : n;
    if (tl > n - off)
        tl = n - off;
    s->status = a & 3;
    s->content = a >> 2 & 3;
    s->cipher = a >> 4 & 3;
    s->bad_txid = a & 0x40;
    s->bad_nonce = a & 0x80;
    s->digest = b & 7;
    s->relabel = b & 0x08;
    s->other_signer = b & 0x10;
    memcpy(s->buf, p + off, tl < sizeof s->buf - 1 ? tl : sizeof s->buf - 1);
    char *f = s->buf;
    for (int i = 0; i < 4; i++) {
        char *bar = strchr(f, '|');
        if (bar)
            *bar = 0;
        bool use = i == 0 ? s->status == 3 : (b >> (4 + i)) & 1;
        s->text[i] = use ? f : NULL;
        if (!bar)
            break;
        f = bar + 1;
    }
    s->body = p + off + tl;
    s->body_len = n - off - tl;
}

static bool add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *data, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    bool ok = obj && CMS_signed_add1_attr_by_OBJ(si, obj, type, data, (int)len);
    ASN1_OBJECT_free(obj);
    return ok;
}

static const EVP_MD *spec_md(unsigned d)
{
    switch (d) {
    case 1: return EVP_sha224();
    case 2: return EVP_sha256();
    case 3: return EVP_sha384();
    case 4: return EVP_sha512();
    case 5: return EVP_md5();
    case 7: return EVP_sha256();
    default: return EVP_sha1();
    }
}

/* The CertRep of spec s as DER (malloc'ed), or NULL when OpenSSL will not
 * build it (an attribute it refuses, say). */
static uint8_t *build_certrep(const spec_t *s, size_t *len)
{
    static const char *const statuses[3] = {"0", "2", "3"};
    static const char *const ciphers[4] = {"AES-128-CBC", "DES-EDE3-CBC", "AES-256-CBC", "DES-CBC"};
    uint8_t *content = NULL, *out = NULL;
    size_t content_len = 0;
    bool own_content = false;
    switch (s->content) {
    case 0:
        content = F.env[s->cipher];
        content_len = F.env_len[s->cipher];
        break;
    case 1:
        content = envelope(s->body, s->body_len, ciphers[s->cipher], &content_len);
        own_content = true;
        break;
    case 2:
        content = (uint8_t *)s->body;
        content_len = s->body_len;
        break;
    default:
        break;
    }
    unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP | (content ? 0 : CMS_DETACHED);
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    X509 *sc = s->other_signer ? F.signer : F.ca;
    EVP_PKEY *sk = s->other_signer ? F.dev_key : F.ca_key;
    CMS_SignerInfo *si = cms ? CMS_add1_signer(cms, sc, sk, spec_md(s->digest), flags) : NULL;
    const char *status = s->status < 3 ? statuses[s->status] : s->text[0];
    const char *mt = s->text[1] ? s->text[1] : "3";
    const char *fi = s->text[2] ? s->text[2] : "2";
    const char *txid = s->bad_txid ? "0123456789ABCDEF" : F.own.txid;
    uint8_t nonce[SCEP_NONCE_LEN];
    memcpy(nonce, NONCE, sizeof nonce);
    if (s->bad_nonce)
        nonce[0] ^= 1;
    bool ok = si && add_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, mt, strlen(mt)) &&
              add_attr(si, OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, status, strlen(status)) &&
              add_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, txid, strlen(txid)) &&
              add_attr(si, OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, nonce, sizeof nonce) &&
              add_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, sizeof nonce) &&
              (s->status != 1 || add_attr(si, OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, fi, strlen(fi))) &&
              (!s->text[3] ||
               add_attr(si, OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, s->text[3], strlen(s->text[3])));
    BIO *in = ok ? BIO_new_mem_buf(content ? (const void *)content : "", (int)content_len) : NULL;
    ok = in && CMS_final(cms, in, NULL, flags) == 1;
    BIO_free(in);
    if (ok && s->relabel) {
        X509_ALGOR *sig = NULL;
        CMS_SignerInfo_get0_algs(si, NULL, NULL, NULL, &sig);
        X509_ALGOR_set0(sig, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL);
    }
    unsigned char *der = NULL;
    int l = ok ? i2d_CMS_ContentInfo(cms, &der) : -1;
    if (l > 0 && (out = malloc((size_t)l))) {
        memcpy(out, der, (size_t)l);
        *len = (size_t)l;
    }
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    if (own_content)
        free(content);
    ERR_clear_error();
    return out;
}

static bool numeric(const char *t, size_t max)
{
    size_t n = strlen(t);
    return n && n <= max && strspn(t, "0123456789") == n;
}

static void mode_authentic(const uint8_t *p, size_t n)
{
    spec_t s;
    parse_spec(p, n, &s);
    size_t len = 0;
    uint8_t *der = build_certrep(&s, &len);
    if (!der)
        return;
    scep_certrep_t rep;
    scep_err_t err = certrep(&F.own, der, len, &rep);
    const char *mt = s.text[1] ? s.text[1] : "3";
    bool md_ok = s.digest != 5;
    bool broken = s.other_signer || !md_ok || strcmp(mt, "3") || s.bad_txid || s.bad_nonce;
    if (broken) {
        FUZZ_CHECK(err != SCEP_OK, "a CertRep with a wrong signer, digest, messageType, "
                                   "transactionID or nonce is refused");
    } else if (s.status == 2) {
        FUZZ_CHECK(err == SCEP_OK && rep.status == SCEP_STATUS_PENDING, "PENDING: %s",
                   scep_strerror(err));
    } else if (s.status == 1) {
        const char *fi = s.text[2] ? s.text[2] : "2";
        bool good = numeric(fi, 6);
        FUZZ_CHECK(good ? err == SCEP_OK && rep.status == SCEP_STATUS_FAILURE &&
                              rep.fail_info == atoi(fi)
                        : err != SCEP_OK,
                   "FAILURE with failInfo '%s': %s", fi, scep_strerror(err));
    } else if (s.status == 0 && s.content == 0 && F.env[s.cipher]) {
        FUZZ_CHECK(err == SCEP_OK && rep.status == SCEP_STATUS_SUCCESS &&
                       rep.cert.len == F.issued_der_len &&
                       !memcmp(rep.cert.data, F.issued_der, F.issued_der_len),
                   "SUCCESS with the issued certificate: %s", scep_strerror(err));
        FUZZ_CHECK((s.cipher == 3) == (rep.warning != NULL), "the single-DES warning");
    } else if (s.status == 0 && s.content == 3) {
        FUZZ_CHECK(err != SCEP_OK, "SUCCESS without content is refused");
    }
    scep_certrep_clear(F.plat, &rep);
    free(der);
}

/* ---- mode 4: certificates and keys ---- */

static void mode_import(const uint8_t *p, size_t n)
{
    const char *why = NULL;
    scep_cert_t *c = NULL;
    scep_err_t err = scep_cert_from_der(F.plat, p, n, &c, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "certificate: out of memory without a failed allocation");
    if (err == SCEP_OK) {
        scep_buf_t der = {0};
        FUZZ_CHECK(scep_cert_to_der(F.plat, c, &der, NULL) == SCEP_OK && der.len == n &&
                       !memcmp(der.data, p, n),
                   "a certificate is its input byte for byte");
        char thumb[SCEP_THUMB_LEN + 1], want[SCEP_THUMB_LEN + 1];
        unsigned char md[20];
        FUZZ_CHECK(EVP_Digest(p, n, md, NULL, EVP_sha1(), NULL), "SHA-1");
        for (int i = 0; i < 20; i++)
            snprintf(want + 2 * i, 3, "%02X", md[i]);
        FUZZ_CHECK(scep_cert_thumbprint(c, thumb) == SCEP_OK && !strcmp(thumb, want),
                   "the thumbprint is the SHA-1 of the DER");
        scep_buf_free(F.plat, &der);
        scep_cert_free(F.plat, c);
    } else {
        FUZZ_CHECK(!c && why, "a refused certificate: nothing handed out, a reason");
    }
    scep_key_t *k = NULL;
    err = scep_key_from_der(F.plat, p, n, &k, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "key: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(!k && why, "a refused key: nothing handed out, a reason");
        return;
    }
    scep_buf_t kd = {0};
    err = scep_key_to_der(F.plat, k, &kd, &why);
    if (err == SCEP_OK) {
        scep_key_t *k2 = NULL;
        FUZZ_CHECK(scep_key_from_der(F.plat, kd.data, kd.len, &k2, &why) == SCEP_OK,
                   "a key's own PKCS#8 loads again: %s", why);
        scep_key_free(F.plat, k2);
    }
    char txid[SCEP_TXID_LEN + 1];
    if (scep_transaction_id(k, txid, &why) == SCEP_OK)
        FUZZ_CHECK(strlen(txid) == SCEP_TXID_LEN, "transactionID length");
    scep_buf_free(F.plat, &kd);
    scep_key_free(F.plat, k);
    ERR_clear_error();
}

/* ---- seeds ---- */

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    fputc(mode, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Authentic CertReps as mode-2 inputs, and their specs as mode-3 inputs. */
static void write_seeds(const char *dir)
{
    static const struct {
        const char *name;
        uint8_t s0, s1;
        const char *text;
    } seeds[] = {
        {"certrep-success-aes", 0x00, 0x02, ""},
        {"certrep-success-3des", 0x10, 0x00, ""},
        {"certrep-success-aes256-sha512", 0x20, 0x0c, ""},
        {"certrep-success-des", 0x30, 0x00, ""},
        {"certrep-pending", 0x0e, 0x02, ""},
        {"certrep-failure", 0x0d, 0xc2, "||4|bad time"},
        {"certrep-enveloped-body", 0x04, 0x02, ""},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        uint8_t spec[4096] = {seeds[i].s0, seeds[i].s1, (uint8_t)strlen(seeds[i].text)};
        size_t sl = 3 + strlen(seeds[i].text);
        memcpy(spec + 3, seeds[i].text, strlen(seeds[i].text));
        if ((seeds[i].s0 >> 2 & 3) == 1) {
            /* a body that is a degenerate PKCS#7 of {issued, CA} */
            X509 *certs[2] = {F.issued, F.ca};
            size_t dl = 0;
            uint8_t *deg = degenerate(certs, 2, &dl);
            FUZZ_CHECK(sl + dl <= sizeof spec, "seed too long");
            memcpy(spec + sl, deg, dl);
            sl += dl;
            OPENSSL_free(deg);
        }
        char name[128];
        snprintf(name, sizeof name, "spec-%s", seeds[i].name);
        write_seed(dir, name, 3, spec, sl);
        spec_t s;
        parse_spec(spec, sl, &s);
        size_t len = 0;
        uint8_t *der = build_certrep(&s, &len);
        if (der)
            write_seed(dir, seeds[i].name, 2, der, len);
        free(der);
    }
    write_seed(dir, "cacert-fixture", 1, F.ca_der, F.ca_der_len);
    write_seed(dir, "import-issued", 4, F.issued_der, F.issued_der_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    make_fixture();
    const char *seeds = getenv("FUZZ_SCEP_SEEDS");
    if (seeds && *seeds)
        write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_platform_reset();
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: mode_caps(p, n); break;
    case 1: mode_cacert(p, n); break;
    case 2: mode_certrep(p, n); break;
    case 3: mode_authentic(p, n); break;
    default: mode_import(p, n); break;
    }
    ERR_clear_error();
    return 0;
}
