/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scep_msg.c - SCEP (RFC 8894) messages with OpenSSL 3: GetCACaps choice,
 * GetCACert sets, CSR / self-signed signer / pkiMessage building, CertRep
 * checking, GET URLs.  Choices are explained in docs/scep.md.
 *
 * The SCEP attribute OIDs (2.16.840.1.113733.1.9.x) are made with
 * OBJ_txt2obj(..., 1) per use and freed again: nothing is registered in
 * OpenSSL's global object table (no OBJ_create).
 */
#include "scep_msg.h"
#include "keystore.h"
#include "platform.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The key lives in a key store (keystore.h): software or TPM. */
struct scep_key {
    ks_key_t *k;
};

struct scep_cert {
    X509 *x;
};

struct scep_certset {
    size_t n;
    scep_cert_t *certs;          /* n entries */
    size_t recipient, verifier, issuer;
};

#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"
#define OID_UPN "1.3.6.1.4.1.311.20.2.3"
#define OID_ENROLL_NAME_VALUE "1.3.6.1.4.1.311.13.2.1"

#define MSG_CERTREP "3"
#define MSG_RENEWALREQ "17"
#define MSG_PKCSREQ "19"
#define MSG_CERTPOLL "20"

#define MAX_TXID 128
#define MAX_SET_CERTS 64

/* ---- errors and buffers ------------------------------------------------------ */

static const char *const err_text[SCEP_E__COUNT] = {
    [SCEP_OK] = "success",
    [SCEP_E_NOMEM] = "out of memory",
    [SCEP_E_INVALID_ARG] = "invalid argument",
    [SCEP_E_MALFORMED] = "malformed SCEP data",
    [SCEP_E_TOO_LARGE] = "input too large",
    [SCEP_E_UNSUPPORTED] = "unsupported algorithm or value",
    [SCEP_E_NO_ALGORITHM] = "no acceptable algorithm",
    [SCEP_E_NOT_FOUND] = "no suitable certificate",
    [SCEP_E_UNTRUSTED] = "CA certificate not trusted",
    [SCEP_E_SIGNATURE] = "response signature invalid",
    [SCEP_E_MISMATCH] = "response does not match the request",
    [SCEP_E_DECRYPT] = "cannot decrypt response",
    [SCEP_E_CRYPTO] = "cryptographic operation failed",
    [SCEP_E_RESOURCE] = "a local resource failed",
    [SCEP_E_EXPIRED] = "certificate outside its validity period",
};

const char *scep_strerror(scep_err_t err)
{
    if ((int)err < 0 || err >= SCEP_E__COUNT || !err_text[err])
        return "unknown error";
    return err_text[err];
}

static scep_err_t fail(const char **why, scep_err_t err, const char *reason)
{
    if (why)
        *why = reason;
    return err;
}

/* Empty OpenSSL's error queue; true when it held an allocation failure
 * (OpenSSL 3.0 queues ERR_R_MALLOC_FAILURE for every one it notices).
 * With match, *matched tells whether another error satisfied it (library
 * and reason). */
static bool ossl_drain(bool (*match)(int lib, int reason), bool *matched)
{
    bool oom = false;
    unsigned long e;
    if (matched)
        *matched = false;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_SYSTEM_ERROR(e))
            continue;
        int r = ERR_GET_REASON(e);
        if (r == ERR_GET_REASON(ERR_R_MALLOC_FAILURE))
            oom = true;
        else if (match && match(ERR_GET_LIB(e), r))
            *matched = true;
    }
    return oom;
}

static bool ossl_drain_oom(void)
{
    return ossl_drain(NULL, NULL);
}

/* An OpenSSL call failed: drop its error queue (we report our own reason).
 * When OpenSSL ran out of memory that is the reason, whatever the call:
 * bytes that fail to parse for want of memory are not malformed. */
static scep_err_t ossl_fail(const char **why, scep_err_t err, const char *reason)
{
    if (ossl_drain_oom())
        return fail(why, SCEP_E_NOMEM, "out of memory (in OpenSSL)");
    return fail(why, err, reason);
}

/* The device's own trouble, not the input's (scep_msg.h). */
static bool scep_oom_err(scep_err_t err)
{
    return err == SCEP_E_NOMEM || err == SCEP_E_RESOURCE;
}

/* A key object that holds a key (scep_key_alloc gives an empty one). */
static bool key_ok(const scep_key_t *key)
{
    return key && key->k;
}

static EVP_PKEY *pkey_of(const scep_key_t *key)
{
    return ks_key_pkey(key->k);
}

/* The scep_err_t of a key store failure. */
static scep_err_t ks_fail(const char **why, ks_err_t err, const char *reason)
{
    static const scep_err_t map[] = {
        [KS_OK] = SCEP_OK,
        [KS_E_NOMEM] = SCEP_E_NOMEM,
        [KS_E_INVALID] = SCEP_E_INVALID_ARG,
        [KS_E_MALFORMED] = SCEP_E_MALFORMED,
        [KS_E_UNAVAILABLE] = SCEP_E_RESOURCE,
        [KS_E_UNSUPPORTED] = SCEP_E_UNSUPPORTED,
        [KS_E_FAILED] = SCEP_E_CRYPTO,
    };
    ERR_clear_error();
    return fail(why, (unsigned)err < sizeof map / sizeof map[0] ? map[err] : SCEP_E_CRYPTO,
                reason);
}

void scep_buf_free(const omadm_platform_t *plat, scep_buf_t *b)
{
    if (!b)
        return;
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
        plat_free(plat, b->data);
    }
    b->data = NULL;
    b->len = 0;
}

static scep_err_t buf_set(const omadm_platform_t *plat, scep_buf_t *out, const void *data,
                          size_t len, const char **why)
{
    uint8_t *d = plat_alloc(plat, len + 1);
    if (!d)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    if (len)
        memcpy(d, data, len);
    d[len] = 0;
    out->data = d;
    out->len = len;
    return SCEP_OK;
}

/* Copy the contents of a memory BIO into *out. */
static scep_err_t buf_from_bio(const omadm_platform_t *plat, BIO *bio, scep_buf_t *out,
                               const char **why)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    if (n < 0)
        return ossl_fail(why, SCEP_E_CRYPTO, "memory BIO");
    return buf_set(plat, out, p, (size_t)n, why);
}

/* i2d output (OpenSSL-allocated) into *out; the OpenSSL copy is wiped. */
static scep_err_t buf_take_der(const omadm_platform_t *plat, unsigned char *der, int n,
                               scep_buf_t *out, const char **why)
{
    if (n <= 0 || !der)
        return ossl_fail(why, SCEP_E_CRYPTO, "DER encoding failed");
    scep_err_t err = buf_set(plat, out, der, (size_t)n, why);
    OPENSSL_clear_free(der, (size_t)n);
    return err;
}

static bool der_len_ok(const uint8_t *der, size_t len, scep_err_t *err, const char **why)
{
    if (!der || len == 0) {
        *err = fail(why, SCEP_E_MALFORMED, "empty input");
        return false;
    }
    if (len > SCEP_MAX_DER) {
        *err = fail(why, SCEP_E_TOO_LARGE, "input larger than SCEP_MAX_DER");
        return false;
    }
    return true;
}

static const EVP_MD *digest_md(scep_digest_t d)
{
    switch (d) {
    case SCEP_DIGEST_SHA1: return EVP_sha1();
    case SCEP_DIGEST_SHA256: return EVP_sha256();
    case SCEP_DIGEST_SHA512: return EVP_sha512();
    }
    return NULL;
}

static const EVP_CIPHER *cipher_evp(scep_cipher_t c)
{
    switch (c) {
    case SCEP_CIPHER_AES128_CBC: return EVP_aes_128_cbc();
    case SCEP_CIPHER_DES3_CBC: return EVP_des_ede3_cbc();
    }
    return NULL;
}

const char *scep_cipher_name(scep_cipher_t c)
{
    switch (c) {
    case SCEP_CIPHER_AES128_CBC: return "AES-128-CBC";
    case SCEP_CIPHER_DES3_CBC: return "DES-EDE3-CBC";
    }
    return "?";
}

const char *scep_digest_name(scep_digest_t d)
{
    switch (d) {
    case SCEP_DIGEST_SHA1: return "SHA-1";
    case SCEP_DIGEST_SHA256: return "SHA-256";
    case SCEP_DIGEST_SHA512: return "SHA-512";
    }
    return "?";
}

static void hex_upper(const uint8_t *d, size_t n, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = 0;
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The PrintableString alphabet. */
static bool is_printable_char(unsigned char c)
{
    return is_alnum(c) || (c && strchr(" '()+,-./:=?", c));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Trim white space from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

/* "1.2.840.113549": digits and single dots, at least two arcs, no empty arc. */
static bool dotted_oid(const char *s, size_t n)
{
    if (n == 0 || n > 100 || s[0] == '.' || s[n - 1] == '.')
        return false;
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (i + 1 < n && s[i + 1] == '.')
                return false;
            dots++;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return dots > 0;
}

/* A new ASN1_OBJECT from a dotted OID (never from a name), or NULL. */
static ASN1_OBJECT *oid_obj(const char *s, size_t n)
{
    char buf[128];
    if (!dotted_oid(s, n))
        return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    return OBJ_txt2obj(buf, 1);
}

/* ---- keys and certificates ----------------------------------------------------- */

/* The public key of a certificate, or NULL: one from a server may carry an
 * algorithm OpenSSL does not know, or key bytes that do not decode (the
 * certificate itself still parses).  Every use goes through here. */
static EVP_PKEY *cert_key(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (!k)
        ERR_clear_error();
    return k;
}

/*
 * x parsed, but did OpenSSL run out of memory on the way?  It decodes the
 * public key while parsing and the extensions on first use, and when either
 * fails it remembers "no key" / "invalid extensions" for good, with no
 * reason kept.  A certificate that lacks either is parsed afresh from its
 * own bytes: when the copy has what x lacks (or the copy cannot be made),
 * the lack was memory, not the certificate.
 */
static bool cert_spoiled_by_oom(X509 *x)
{
    bool no_key = X509_get0_pubkey(x) == NULL;
    bool invalid = (X509_get_extension_flags(x) & EXFLAG_INVALID) != 0;
    ERR_clear_error();
    if (!no_key && !invalid)
        return false;
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        ERR_clear_error();
        return true; /* re-encoding what was parsed fails only for memory */
    }
    const unsigned char *p = der;
    X509 *y = d2i_X509(NULL, &p, n);
    OPENSSL_free(der);
    bool spoiled = !y || (no_key && X509_get0_pubkey(y)) ||
                   (invalid && !(X509_get_extension_flags(y) & EXFLAG_INVALID));
    X509_free(y);
    ERR_clear_error();
    return spoiled;
}

/* x, parsed from der, encodes back to der exactly: SCEP_OK, SCEP_E_MALFORMED
 * (der is not DER: OpenSSL accepts some BER, and a certificate's SHA-1
 * would then name other bytes than the server sent), or SCEP_E_NOMEM. */
static scep_err_t der_as_sent(X509 *x, const uint8_t *der, size_t len, const char **why)
{
    unsigned char *again = NULL;
    int n = i2d_X509(x, &again);
    if (n <= 0) {
        ERR_clear_error();
        return fail(why, SCEP_E_NOMEM, "out of memory (encoding a certificate)");
    }
    bool same = (size_t)n == len && !memcmp(again, der, len);
    OPENSSL_free(again);
    return same ? SCEP_OK : fail(why, SCEP_E_MALFORMED, "certificate not DER-encoded");
}

/* SCEP_E_NOMEM when one of certs is cert_spoiled_by_oom, else SCEP_OK. */
static scep_err_t certs_whole(STACK_OF(X509) *certs, const char **why)
{
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (cert_spoiled_by_oom(sk_X509_value(certs, i)))
            return fail(why, SCEP_E_NOMEM, "out of memory (decoding a certificate)");
    return SCEP_OK;
}

/* cert_key for a certificate that must have one: SCEP_OK, SCEP_E_NOMEM
 * (cert_spoiled_by_oom) or err with reason. */
static scep_err_t need_key(X509 *x, scep_err_t err, const char *reason, const char **why)
{
    if (cert_key(x))
        return SCEP_OK;
    if (cert_spoiled_by_oom(x))
        return fail(why, SCEP_E_NOMEM, "out of memory (decoding a public key)");
    return fail(why, err, reason);
}

static bool is_rsa(X509 *x)
{
    EVP_PKEY *k = cert_key(x);
    return k && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
}

scep_err_t scep_key_alloc(const omadm_platform_t *plat, scep_key_t **out, const char **why)
{
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = plat_calloc(plat, sizeof **out);
    return *out ? SCEP_OK : fail(why, SCEP_E_NOMEM, "out of memory");
}

scep_err_t scep_key_generate(scep_key_t *key, const keystore_t *ks, unsigned bits,
                             const char **why)
{
    if (!key || key->k)
        return fail(why, SCEP_E_INVALID_ARG, "no empty key object");
    if (bits != 1024 && bits != 2048 && bits != 4096)
        return fail(why, SCEP_E_INVALID_ARG, "KeyLength must be 1024, 2048 or 4096");
    /* a software key is OpenSSL's (rsa_keygen.c): its memory and its
     * randomness (the default DRBG) are OpenSSL's, not the host's hooks */
    const char *kwhy = NULL;
    ks_err_t e = ks_generate(ks ? ks : ks_software(), bits, &key->k, &kwhy);
    return e ? ks_fail(why, e, kwhy) : SCEP_OK;
}

scep_err_t scep_key_generate_rsa(scep_key_t *key, unsigned bits, const char **why)
{
    return scep_key_generate(key, NULL, bits, why);
}

scep_err_t scep_keygen_rsa(const omadm_platform_t *plat, unsigned bits, scep_key_t **out,
                           const char **why)
{
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    if (bits != 1024 && bits != 2048 && bits != 4096)
        return fail(why, SCEP_E_INVALID_ARG, "KeyLength must be 1024, 2048 or 4096");
    scep_key_t *k = NULL;
    scep_err_t err = scep_key_alloc(plat, &k, why);
    if (err == SCEP_OK && (err = scep_key_generate_rsa(k, bits, why)) != SCEP_OK) {
        scep_key_free(plat, k);
        k = NULL;
    }
    *out = k;
    return err;
}

scep_err_t scep_key_load(const omadm_platform_t *plat, const keystore_t *const *stores,
                         size_t n_stores, const uint8_t *der, size_t len, scep_key_t **out,
                         const char **why)
{
    scep_err_t err;
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    if (!der_len_ok(der, len, &err, why))
        return err;
    scep_key_t *k = plat_calloc(plat, sizeof *k);
    if (!k)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    const char *kwhy = NULL;
    ks_err_t e = ks_load(stores, n_stores, der, len, &k->k, &kwhy);
    if (e) {
        plat_free(plat, k);
        return ks_fail(why, e, kwhy);
    }
    *out = k;
    return SCEP_OK;
}

scep_err_t scep_key_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                             scep_key_t **out, const char **why)
{
    const keystore_t *soft = ks_software();
    return scep_key_load(plat, &soft, 1, der, len, out, why);
}

scep_err_t scep_key_to_der(const omadm_platform_t *plat, const scep_key_t *key, scep_buf_t *out,
                           const char **why)
{
    if (!key_ok(key) || !out)
        return fail(why, SCEP_E_INVALID_ARG, "no key or output");
    *out = (scep_buf_t){0};
    uint8_t *der = NULL;
    size_t n = 0;
    const char *kwhy = NULL;
    ks_err_t e = ks_blob(key->k, &der, &n, &kwhy);
    if (e)
        return ks_fail(why, e, kwhy);
    scep_err_t err = buf_set(plat, out, der, n, why);
    ks_blob_free(der, n);
    return err;
}

const char *scep_key_pem_label(const scep_key_t *key)
{
    return key_ok(key) ? ks_key_pem_label(key->k) : NULL;
}

const keystore_t *scep_key_store(const scep_key_t *key)
{
    return key_ok(key) ? ks_key_store(key->k) : NULL;
}

const ks_key_t *scep_key_ks(const scep_key_t *key)
{
    return key_ok(key) ? key->k : NULL;
}

void scep_key_free(const omadm_platform_t *plat, scep_key_t *key)
{
    if (!key)
        return;
    ks_key_free(key->k);
    plat_free(plat, key);
}

static scep_cert_t *cert_wrap(const omadm_platform_t *plat, X509 *x)
{
    scep_cert_t *c = plat_calloc(plat, sizeof *c);
    if (c)
        c->x = x;
    return c;
}

scep_err_t scep_cert_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                              scep_cert_t **out, const char **why)
{
    scep_err_t err;
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    if (!der_len_ok(der, len, &err, why))
        return err;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != der + len) {
        X509_free(x);
        return ossl_fail(why, SCEP_E_MALFORMED, "not one DER certificate");
    }
    if (cert_spoiled_by_oom(x)) {
        X509_free(x);
        return fail(why, SCEP_E_NOMEM, "out of memory (decoding a certificate)");
    }
    if ((err = der_as_sent(x, der, len, why)) != SCEP_OK) {
        X509_free(x);
        return err;
    }
    *out = cert_wrap(plat, x);
    if (!*out) {
        X509_free(x);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    return SCEP_OK;
}

scep_err_t scep_cert_to_der(const omadm_platform_t *plat, const scep_cert_t *cert,
                            scep_buf_t *out, const char **why)
{
    if (!cert || !out)
        return fail(why, SCEP_E_INVALID_ARG, "no certificate or output");
    *out = (scep_buf_t){0};
    unsigned char *der = NULL;
    int n = i2d_X509(cert->x, &der);
    return buf_take_der(plat, der, n, out, why);
}

scep_err_t scep_cert_share(const omadm_platform_t *plat, const scep_cert_t *cert,
                           scep_cert_t **out, const char **why)
{
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    if (!cert || !cert->x)
        return fail(why, SCEP_E_INVALID_ARG, "no certificate");
    if (!X509_up_ref(cert->x))
        return fail(why, SCEP_E_NOMEM, "out of memory");
    *out = cert_wrap(plat, cert->x);
    if (!*out) {
        X509_free(cert->x);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    return SCEP_OK;
}

void scep_cert_free(const omadm_platform_t *plat, scep_cert_t *cert)
{
    if (!cert)
        return;
    X509_free(cert->x);
    plat_free(plat, cert);
}

static bool x509_sha1(X509 *x, uint8_t md[20])
{
    unsigned int n = 0;
    return X509_digest(x, EVP_sha1(), md, &n) == 1 && n == 20;
}

scep_err_t scep_cert_thumbprint(const scep_cert_t *cert, char out[SCEP_THUMB_LEN + 1])
{
    uint8_t md[20];
    if (!cert || !out)
        return SCEP_E_INVALID_ARG;
    if (!x509_sha1(cert->x, md))
        return ossl_fail(NULL, SCEP_E_CRYPTO, NULL);
    hex_upper(md, sizeof md, out);
    return SCEP_OK;
}

scep_err_t scep_cert_check_validity(const scep_cert_t *cert, int64_t now, int64_t skew,
                                    const char **why)
{
    if (!cert || now <= 0 || skew < 0 || skew > 86400)
        return fail(why, SCEP_E_INVALID_ARG, "no certificate, time or allowance");
    time_t at = (time_t)now, ahead = (time_t)(now + skew);
    /* X509_cmp_time: -1 when the certificate's time is at or before the
     * given one, 1 after it, 0 when it cannot be read */
    int nb = X509_cmp_time(X509_get0_notBefore(cert->x), &ahead);
    int na = X509_cmp_time(X509_get0_notAfter(cert->x), &at);
    if (nb == 0 || na == 0)
        return ossl_fail(why, SCEP_E_MALFORMED, "the certificate's validity period cannot be read");
    if (na < 0)
        return fail(why, SCEP_E_EXPIRED, "the certificate has expired");
    if (nb > 0)
        return fail(why, SCEP_E_EXPIRED, "the certificate is not valid yet");
    return SCEP_OK;
}

char *scep_cert_subject(const scep_cert_t *cert, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    buf[0] = 0;
    if (!cert)
        return buf;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return buf;
    if (X509_NAME_print_ex(b, X509_get_subject_name(cert->x), 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        size_t k = n > 0 ? (size_t)n : 0;
        if (k >= size)
            k = size - 1;
        memcpy(buf, p, k);
        buf[k] = 0;
    }
    BIO_free(b);
    ERR_clear_error();
    return buf;
}

/* ---- GetCACaps ----------------------------------------------------------------- */

static const struct {
    const char *word;
    unsigned bit;
} cap_words[] = {
    {"AES", SCEP_CAP_AES},         {"DES3", SCEP_CAP_DES3},
    {"SHA-1", SCEP_CAP_SHA1},      {"SHA-256", SCEP_CAP_SHA256},
    {"SHA-512", SCEP_CAP_SHA512},  {"POSTPKIOperation", SCEP_CAP_POST},
    {"SCEPStandard", SCEP_CAP_STANDARD}, {"Renewal", SCEP_CAP_RENEWAL},
    {"GetNextCACert", SCEP_CAP_NEXT_CA},
};

unsigned scep_caps_parse(const char *text, size_t len)
{
    unsigned caps = 0;
    if (!text)
        return 0;
    if (len > SCEP_MAX_TEXT)
        len = SCEP_MAX_TEXT;
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_space(text[i]) || text[i] == 0))
            i++;
        size_t start = i;
        while (i < len && !is_space(text[i]) && text[i] != 0)
            i++;
        size_t n = i - start;
        for (size_t w = 0; n && w < sizeof cap_words / sizeof cap_words[0]; w++) {
            if (strlen(cap_words[w].word) == n && strncasecmp(text + start, cap_words[w].word, n) == 0)
                caps |= cap_words[w].bit;
        }
    }
    return caps;
}

bool scep_caps_post(unsigned caps)
{
    return (caps & (SCEP_CAP_POST | SCEP_CAP_STANDARD)) != 0;
}

enum { FAM_SHA1 = 1, FAM_SHA2 = 2, FAM_SHA3 = 4 };

/* HashAlgorithm "SHA-1+SHA-2" -> family bits; -1 if a token is unknown.
 * '+' (the CSP documentation) and ';' (what Intune sends: "SHA-1;SHA-2")
 * both separate families, mixed as they come ("SHA-1;SHA-2+SHA-3"); an
 * empty part (";SHA-2", "SHA-1;;SHA-2", "SHA-2;") is skipped, as long as
 * one part names a family. */
static int hash_families(const char *s)
{
    if (!s)
        return FAM_SHA1 | FAM_SHA2 | FAM_SHA3;
    size_t len = strnlen(s, SCEP_MAX_TEXT + 1);
    if (len > SCEP_MAX_TEXT)
        return -1;
    const char *p = s, *end = s + len;
    trim(&p, &end);
    if (p == end)
        return FAM_SHA1 | FAM_SHA2 | FAM_SHA3;   /* not given: every family */
    int fam = 0;
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != '+' && *q != ';')
            q++;
        if (q == end)
            q = NULL;
        const char *e = q ? q : end, *b = p;
        trim(&b, &e);
        size_t n = (size_t)(e - b);
        char tok[16];
        if (n && n < sizeof tok) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)   /* "SHA-256", "sha256", "SHA 2" alike */
                if (b[i] != '-' && b[i] != '_' && b[i] != ' ')
                    tok[k++] = (char)toupper((unsigned char)b[i]);
            tok[k] = 0;
            if (!strcmp(tok, "SHA1"))
                fam |= FAM_SHA1;
            else if (!strcmp(tok, "SHA2") || !strcmp(tok, "SHA256") || !strcmp(tok, "SHA384") ||
                     !strcmp(tok, "SHA512") || !strcmp(tok, "SHA224"))
                fam |= FAM_SHA2;
            else if (!strncmp(tok, "SHA3", 4))
                fam |= FAM_SHA3;
            else
                return -1;
        } else if (n) {
            return -1;
        }
        if (!q)
            break;
        p = q + 1;
    }
    return fam ? fam : -1;
}

scep_err_t scep_caps_choose(unsigned caps, const char *families, scep_cipher_t *cipher,
                            scep_digest_t *digest, const char **why)
{
    if (!cipher || !digest)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    int fam = hash_families(families);
    if (fam < 0)
        return fail(why, SCEP_E_INVALID_ARG, "HashAlgorithm names no known hash family");
    if (caps & (SCEP_CAP_AES | SCEP_CAP_STANDARD))
        *cipher = SCEP_CIPHER_AES128_CBC;
    else if (caps & SCEP_CAP_DES3)
        *cipher = SCEP_CIPHER_DES3_CBC;
    else
        return fail(why, SCEP_E_NO_ALGORITHM, "server offers neither AES nor DES3");
    bool sha256 = (caps & (SCEP_CAP_SHA256 | SCEP_CAP_STANDARD)) != 0;
    if ((fam & FAM_SHA2) && sha256)
        *digest = SCEP_DIGEST_SHA256;
    else if ((fam & FAM_SHA2) && (caps & SCEP_CAP_SHA512))
        *digest = SCEP_DIGEST_SHA512;
    else if ((fam & FAM_SHA1) && (caps & SCEP_CAP_SHA1))
        *digest = SCEP_DIGEST_SHA1;
    else if (!(caps & (SCEP_CAP_SHA1 | SCEP_CAP_SHA512)) && !sha256)
        return fail(why, SCEP_E_NO_ALGORITHM, "server offers no SHA digest");
    else
        return fail(why, SCEP_E_NO_ALGORITHM,
                    "no digest both offered by the server and allowed by HashAlgorithm");
    return SCEP_OK;
}

/* ---- X.500 names (CertStrToName form) ---------------------------------------------- */

static const struct {
    const char *key;
    const char *oid;
} name_keys[] = {
    {"CN", "2.5.4.3"},           {"SN", "2.5.4.4"},          {"SERIALNUMBER", "2.5.4.5"},
    {"C", "2.5.4.6"},            {"L", "2.5.4.7"},           {"S", "2.5.4.8"},
    {"ST", "2.5.4.8"},           {"STREET", "2.5.4.9"},      {"O", "2.5.4.10"},
    {"OU", "2.5.4.11"},          {"T", "2.5.4.12"},          {"TITLE", "2.5.4.12"},
    {"DESCRIPTION", "2.5.4.13"}, {"POSTALCODE", "2.5.4.17"}, {"POBOX", "2.5.4.18"},
    {"PHONE", "2.5.4.20"},       {"G", "2.5.4.42"},          {"GN", "2.5.4.42"},
    {"GIVENNAME", "2.5.4.42"},   {"I", "2.5.4.43"},          {"INITIALS", "2.5.4.43"},
    {"DNQUALIFIER", "2.5.4.46"}, {"E", "1.2.840.113549.1.9.1"},
    {"EMAIL", "1.2.840.113549.1.9.1"}, {"DC", "0.9.2342.19200300.100.1.25"},
    {"UID", "0.9.2342.19200300.100.1.1"},
};

/* An attribute key ("CN", "OID.2.5.4.3", "2.5.4.3") to a new ASN1_OBJECT. */
static ASN1_OBJECT *name_key_obj(const char *b, const char *e)
{
    char key[64];
    size_t n = (size_t)(e - b);
    if (n == 0 || n >= sizeof key)
        return NULL;
    memcpy(key, b, n);
    key[n] = 0;
    const char *k = key;
    if (n > 4 && strncasecmp(k, "OID.", 4) == 0)
        k += 4;
    if (isdigit((unsigned char)k[0]))
        return oid_obj(k, strlen(k));
    for (size_t i = 0; i < sizeof name_keys / sizeof name_keys[0]; i++)
        if (strcasecmp(k, name_keys[i].key) == 0)
            return OBJ_txt2obj(name_keys[i].oid, 1);
    return NULL;
}

/* Value at *pp: "quoted ""with"" doubled quotes" or up to , ; + (trimmed).
 * Writes it to val (room for the whole input), advances *pp. */
static bool name_value(const char **pp, const char *end, char *val, size_t *vlen)
{
    const char *p = *pp;
    size_t n = 0;
    while (p < end && is_space(*p))
        p++;
    if (p < end && *p == '"') {
        p++;
        for (;;) {
            if (p >= end)
                return false;            /* unterminated quote */
            if (*p == '"') {
                if (p + 1 < end && p[1] == '"') {
                    val[n++] = '"';
                    p += 2;
                    continue;
                }
                p++;
                break;
            }
            val[n++] = *p++;
        }
        while (p < end && is_space(*p))
            p++;
    } else {
        const char *b = p;
        while (p < end && *p != ',' && *p != ';' && *p != '+')
            p++;
        const char *e = p;
        trim(&b, &e);
        memcpy(val, b, (size_t)(e - b));
        n = (size_t)(e - b);
    }
    val[n] = 0;
    *vlen = n;
    *pp = p;
    return true;
}

static scep_err_t name_add(X509_NAME *name, const char *kb, const char *ke, const char *val,
                           size_t vlen, int set, const char **why)
{
    ASN1_OBJECT *obj = name_key_obj(kb, ke);
    if (!obj)
        return ossl_fail(why, SCEP_E_INVALID_ARG, "unknown attribute key in X.500 name");
    int ok = X509_NAME_add_entry_by_OBJ(name, obj, MBSTRING_UTF8, (const unsigned char *)val,
                                        (int)vlen, -1, set);
    ASN1_OBJECT_free(obj);
    if (!ok)
        return ossl_fail(why, SCEP_E_INVALID_ARG, "X.500 name value not valid for its attribute");
    return SCEP_OK;
}

/*
 * Parse "CN=x, O=\"a, b\"; OU=y+CN=z" (CertStrToName: ',' or ';' between
 * RDNs, '+' inside a multi-valued RDN, "..." quoting with "" for a quote).
 * RDNs are encoded in string order.
 */
static scep_err_t name_parse(const char *s, X509_NAME **out, const char **why)
{
    scep_err_t err = SCEP_OK;
    *out = NULL;
    if (!s)
        return fail(why, SCEP_E_INVALID_ARG, "no X.500 name");
    size_t len = strnlen(s, SCEP_MAX_TEXT + 1);
    if (len > SCEP_MAX_TEXT)
        return fail(why, SCEP_E_TOO_LARGE, "X.500 name too long");
    X509_NAME *name = X509_NAME_new();
    char val[SCEP_MAX_TEXT + 1]; /* len is at most SCEP_MAX_TEXT */
    if (!name) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    const char *p = s, *end = s + len;
    int set = 0;
    for (;;) {
        while (p < end && is_space(*p))
            p++;
        const char *eq = p;
        while (eq < end && *eq != '=' && *eq != ',' && *eq != ';' && *eq != '+')
            eq++;
        if (eq >= end || *eq != '=') {
            err = fail(why, SCEP_E_INVALID_ARG, "X.500 name: expected KEY=value");
            goto out;
        }
        const char *kb = p, *ke = eq;
        trim(&kb, &ke);
        p = eq + 1;
        size_t vlen = 0;
        if (!name_value(&p, end, val, &vlen)) {
            err = fail(why, SCEP_E_INVALID_ARG, "X.500 name: unterminated quote");
            goto out;
        }
        if ((err = name_add(name, kb, ke, val, vlen, set, why)) != SCEP_OK)
            goto out;
        if (p >= end)
            break;
        if (*p != ',' && *p != ';' && *p != '+') {
            err = fail(why, SCEP_E_INVALID_ARG, "X.500 name: text after a quoted value");
            goto out;
        }
        set = *p == '+' ? -1 : 0;
        p++;
    }
    *out = name;
    name = NULL;
out:
    OPENSSL_cleanse(val, len + 1);
    X509_NAME_free(name);
    return err;
}

/* ---- CSR extensions and attributes ----------------------------------------------- */

static ASN1_IA5STRING *ia5(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == 0)
            return NULL;
    ASN1_IA5STRING *a = ASN1_IA5STRING_new();
    if (a && !ASN1_STRING_set(a, s, (int)n)) {
        ASN1_IA5STRING_free(a);
        a = NULL;
    }
    return a;
}

/* UPN otherName: { 1.3.6.1.4.1.311.20.2.3, [0] UTF8String } */
static GENERAL_NAME *gn_upn(const char *v, size_t n)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(OID_UPN, 1);
    ASN1_TYPE *val = ASN1_TYPE_new();
    ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
    if (!gn || !oid || !val || !s || !ASN1_STRING_set(s, v, (int)n))
        goto err;
    ASN1_TYPE_set(val, V_ASN1_UTF8STRING, s);
    s = NULL;
    if (!GENERAL_NAME_set0_othername(gn, oid, val))
        goto err;
    return gn;
err:
    GENERAL_NAME_free(gn);
    ASN1_OBJECT_free(oid);
    ASN1_TYPE_free(val);
    ASN1_UTF8STRING_free(s);
    return NULL;
}

/* The value of one SubjectAlternativeNames entry; NULL if it does not parse. */
static void *gn_value(long type, const char *v, size_t n, int *gtype)
{
    char tmp[1024];
    memcpy(tmp, v, n);
    tmp[n] = 0;
    switch (type) {
    case 2: *gtype = GEN_EMAIL; return ia5(v, n);
    case 3: *gtype = GEN_DNS; return ia5(v, n);
    case 7: *gtype = GEN_URI; return ia5(v, n);
    case 8: *gtype = GEN_IPADD; return a2i_IPADDRESS(tmp);
    case 9: *gtype = GEN_RID; return oid_obj(v, n);
    case 5: {
        X509_NAME *dn = NULL;
        *gtype = GEN_DIRNAME;
        return name_parse(tmp, &dn, NULL) == SCEP_OK ? dn : NULL;
    }
    }
    return NULL;
}

/* One SubjectAlternativeNames entry (certenroll AlternativeNameType). */
static scep_err_t gn_make(long type, const char *v, size_t n, GENERAL_NAME **out, const char **why)
{
    *out = NULL;
    if (n == 0 || n >= 1024)
        return fail(why, SCEP_E_INVALID_ARG, "SubjectAlternativeNames: empty or too long value");
    if (type == 11) {
        *out = gn_upn(v, n);
        return *out ? SCEP_OK : ossl_fail(why, SCEP_E_INVALID_ARG, "SubjectAlternativeNames: bad UPN");
    }
    if (type != 2 && type != 3 && type != 5 && type != 7 && type != 8 && type != 9)
        return fail(why, SCEP_E_UNSUPPORTED,
                    "SubjectAlternativeNames: only types 2, 3, 5, 7, 8, 9 and 11 are supported");
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    int gtype = 0;
    void *val = gn_value(type, v, n, &gtype);
    if (!val) {
        GENERAL_NAME_free(gn);
        return ossl_fail(why, SCEP_E_INVALID_ARG, "SubjectAlternativeNames: value does not parse");
    }
    GENERAL_NAME_set0_value(gn, gtype, val);
    *out = gn;
    return SCEP_OK;
}

/* "11+upn@x;3+host" -> GENERAL_NAMES (NULL when the list is empty). */
static scep_err_t san_parse(const char *s, GENERAL_NAMES **out, const char **why)
{
    scep_err_t err = SCEP_OK;
    *out = NULL;
    size_t len = strnlen(s, SCEP_MAX_TEXT + 1);
    if (len > SCEP_MAX_TEXT)
        return fail(why, SCEP_E_TOO_LARGE, "SubjectAlternativeNames too long");
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *ie = semi ? semi : end, *ib = p;
        p = semi ? semi + 1 : end;
        trim(&ib, &ie);
        if (ib == ie)
            continue;
        const char *plus = memchr(ib, '+', (size_t)(ie - ib));
        const char *tb = ib, *te = plus ? plus : ib;
        trim(&tb, &te);
        char *num_end = NULL;
        long type = (tb < te && isdigit((unsigned char)*tb)) ? strtol(tb, &num_end, 10) : -1;
        if (!plus || type < 0 || num_end != te) {
            err = fail(why, SCEP_E_INVALID_ARG, "SubjectAlternativeNames: expected type+value");
            goto out;
        }
        const char *vb = plus + 1, *ve = ie;
        trim(&vb, &ve);
        GENERAL_NAME *gn = NULL;
        if ((err = gn_make(type, vb, (size_t)(ve - vb), &gn, why)) != SCEP_OK)
            goto out;
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            err = fail(why, SCEP_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (sk_GENERAL_NAME_num(gens) > 0) {
        *out = gens;
        gens = NULL;
    }
out:
    GENERAL_NAMES_free(gens);
    return err;
}

/* Windows KeyUsage bits: first octet of the DER BIT STRING (0x80 = bit 0),
 * 0x8000 = decipherOnly (bit 8). */
static scep_err_t ku_make(unsigned ku, ASN1_BIT_STRING **out, const char **why)
{
    *out = NULL;
    if (ku & ~0x80FFu)
        return fail(why, SCEP_E_INVALID_ARG, "KeyUsage has bits outside 0x80FF");
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    if (!bs)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    for (int i = 0; i < 8; i++)
        if ((ku & (0x80u >> i)) && !ASN1_BIT_STRING_set_bit(bs, i, 1))
            goto nomem;
    if ((ku & 0x8000u) && !ASN1_BIT_STRING_set_bit(bs, 8, 1))
        goto nomem;
    *out = bs;
    return SCEP_OK;
nomem:
    ASN1_BIT_STRING_free(bs);
    return fail(why, SCEP_E_NOMEM, "out of memory");
}

/* "1.3.6.1.5.5.7.3.2+1.3.6.1.4.1.311.20.2.2" -> EXTENDED_KEY_USAGE (NULL if empty). */
static scep_err_t eku_parse(const char *s, EXTENDED_KEY_USAGE **out, const char **why)
{
    scep_err_t err = SCEP_OK;
    *out = NULL;
    size_t len = strnlen(s, SCEP_MAX_TEXT + 1);
    if (len > SCEP_MAX_TEXT)
        return fail(why, SCEP_E_TOO_LARGE, "EKUMapping too long");
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (!eku)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        const char *b = p, *e = plus ? plus : end;
        p = plus ? plus + 1 : end;
        trim(&b, &e);
        if (b == e)
            continue;
        ASN1_OBJECT *obj = oid_obj(b, (size_t)(e - b));
        if (!obj) {
            err = ossl_fail(why, SCEP_E_INVALID_ARG, "EKUMapping: not a dotted OID");
            goto out;
        }
        if (!sk_ASN1_OBJECT_push(eku, obj)) {
            ASN1_OBJECT_free(obj);
            err = fail(why, SCEP_E_NOMEM, "out of memory");
            goto out;
        }
    }
    if (sk_ASN1_OBJECT_num(eku) > 0) {
        *out = eku;
        eku = NULL;
    }
out:
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return err;
}

static scep_err_t ext_push(STACK_OF(X509_EXTENSION) *exts, int nid, int crit, void *value,
                           const char **why)
{
    X509_EXTENSION *ext = X509V3_EXT_i2d(nid, crit, value);
    if (!ext)
        return ossl_fail(why, SCEP_E_CRYPTO, "extension encoding failed");
    if (!sk_X509_EXTENSION_push(exts, ext)) {
        X509_EXTENSION_free(ext);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    return SCEP_OK;
}

/* extensionRequest: SAN, KeyUsage (critical), EKU. */
static scep_err_t csr_extensions(X509_REQ *req, const scep_csr_params_t *p, const char **why)
{
    GENERAL_NAMES *san = NULL;
    ASN1_BIT_STRING *ku = NULL;
    EXTENDED_KEY_USAGE *eku = NULL;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    scep_err_t err = exts ? SCEP_OK : fail(why, SCEP_E_NOMEM, "out of memory");
    if (err == SCEP_OK && p->san && (err = san_parse(p->san, &san, why)) == SCEP_OK && san)
        err = ext_push(exts, NID_subject_alt_name, 0, san, why);
    if (err == SCEP_OK && p->key_usage && (err = ku_make(p->key_usage, &ku, why)) == SCEP_OK)
        err = ext_push(exts, NID_key_usage, 1, ku, why);
    if (err == SCEP_OK && p->eku && (err = eku_parse(p->eku, &eku, why)) == SCEP_OK && eku)
        err = ext_push(exts, NID_ext_key_usage, 0, eku, why);
    if (err == SCEP_OK && sk_X509_EXTENSION_num(exts) > 0 && !X509_REQ_add_extensions(req, exts))
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot add extensionRequest");
    GENERAL_NAMES_free(san);
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return err;
}

/* challengePassword, DirectoryString: PrintableString when the text allows, else UTF8String. */
static scep_err_t csr_challenge(X509_REQ *req, const char *pw, const char **why)
{
    size_t n = strnlen(pw, SCEP_MAX_TEXT + 1);
    if (n > 255)
        return fail(why, SCEP_E_INVALID_ARG, "challenge longer than 255 characters");
    int type = V_ASN1_PRINTABLESTRING;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pw[i];
        if (!is_printable_char(c))
            type = V_ASN1_UTF8STRING;
    }
    if (type == V_ASN1_UTF8STRING) {
        ASN1_UTF8STRING *chk = NULL;   /* must be valid UTF-8 */
        if (ASN1_mbstring_copy(&chk, (const unsigned char *)pw, (int)n, MBSTRING_UTF8,
                               B_ASN1_UTF8STRING) < 0)
            return ossl_fail(why, SCEP_E_INVALID_ARG, "challenge is not valid UTF-8");
        ASN1_STRING_clear_free(chk);
    }
    if (!X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, type,
                                   (const unsigned char *)pw, (int)n))
        return ossl_fail(why, SCEP_E_CRYPTO, "cannot add challengePassword");
    return SCEP_OK;
}

/* EnrollmentNameValuePair ::= SEQUENCE { name BMPString, value BMPString }, ASCII only. */
static size_t name_value_pair(const char *name, const char *value, uint8_t *out)
{
    size_t nl = strlen(name), vl = strlen(value), k = 0;
    out[k++] = 0x30;
    out[k++] = (uint8_t)(4 + 2 * nl + 2 * vl);
    out[k++] = 0x1e;
    out[k++] = (uint8_t)(2 * nl);
    for (size_t i = 0; i < nl; i++) {
        out[k++] = 0;
        out[k++] = (uint8_t)name[i];
    }
    out[k++] = 0x1e;
    out[k++] = (uint8_t)(2 * vl);
    for (size_t i = 0; i < vl; i++) {
        out[k++] = 0;
        out[k++] = (uint8_t)value[i];
    }
    return k;
}

/* Requested validity as MS-WCCE szENROLLMENT_NAME_VALUE_PAIR attribute
 * (1.3.6.1.4.1.311.13.2.1) with ValidityPeriod / ValidityPeriodUnits. */
static scep_err_t csr_validity(X509_REQ *req, const char *period, unsigned units, const char **why)
{
    static const char *const periods[] = {"Days", "Months", "Years"};
    const char *canon = NULL;
    for (size_t i = 0; i < 3; i++)
        if (!period || strcasecmp(period, periods[i]) == 0) {
            canon = periods[i];
            break;
        }
    if (!canon)
        return fail(why, SCEP_E_INVALID_ARG, "ValidPeriod must be Days, Months or Years");
    if (units == 0)
        return SCEP_OK;
    char num[16];
    snprintf(num, sizeof num, "%u", units);
    uint8_t p1[96], p2[96];
    size_t n1 = name_value_pair("ValidityPeriod", canon, p1);
    size_t n2 = name_value_pair("ValidityPeriodUnits", num, p2);
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_ENROLL_NAME_VALUE, 1);
    X509_ATTRIBUTE *attr = obj ? X509_ATTRIBUTE_create_by_OBJ(NULL, obj, V_ASN1_SEQUENCE, p1, (int)n1)
                               : NULL;
    bool ok = attr && X509_ATTRIBUTE_set1_data(attr, V_ASN1_SEQUENCE, p2, (int)n2) &&
              X509_REQ_add1_attr(req, attr);
    X509_ATTRIBUTE_free(attr);
    ASN1_OBJECT_free(obj);
    return ok ? SCEP_OK : ossl_fail(why, SCEP_E_CRYPTO, "cannot add the validity request");
}

/* ---- CSR, signer certificate, transaction ID ---------------------------------------- */

/* A signing context for key with md, in the key's library context (a TPM
 * key signs in the TPM); NULL on failure. */
static EVP_MD_CTX *sign_ctx(const scep_key_t *key, const EVP_MD *md)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx && EVP_DigestSignInit_ex(mctx, NULL, EVP_MD_get0_name(md), ks_key_libctx(key->k),
                                      ks_key_sign_propq(key->k), pkey_of(key), NULL) <= 0) {
        EVP_MD_CTX_free(mctx);
        mctx = NULL;
    }
    return mctx;
}

scep_err_t scep_csr(const omadm_platform_t *plat, const scep_key_t *key,
                    const scep_csr_params_t *p, scep_buf_t *out, const char **why)
{
    scep_err_t err = SCEP_OK;
    X509_NAME *name = NULL;
    EVP_MD_CTX *mctx = NULL;
    unsigned char *der = NULL;
    if (!key || !p || !out)
        return fail(why, SCEP_E_INVALID_ARG, "no key, parameters or output");
    *out = (scep_buf_t){0};
    const EVP_MD *md = digest_md(p->digest);
    if (!md)
        return fail(why, SCEP_E_INVALID_ARG, "unknown digest");
    if (!key_ok(key))
        return fail(why, SCEP_E_INVALID_ARG, "no key");
    X509_REQ *req = X509_REQ_new();
    if (!req)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    if ((err = name_parse(p->subject, &name, why)) != SCEP_OK)
        goto out;
    if (X509_NAME_entry_count(name) == 0) {
        err = fail(why, SCEP_E_INVALID_ARG, "empty SubjectName");
        goto out;
    }
    if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, pkey_of(key))) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot fill the CSR");
        goto out;
    }
    if ((err = csr_extensions(req, p, why)) != SCEP_OK)
        goto out;
    if (p->challenge && (err = csr_challenge(req, p->challenge, why)) != SCEP_OK)
        goto out;
    if ((err = csr_validity(req, p->valid_period, p->valid_units, why)) != SCEP_OK)
        goto out;
    if (!(mctx = sign_ctx(key, md)) || X509_REQ_sign_ctx(req, mctx) <= 0) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "CSR signing failed");
        goto out;
    }
    int n = i2d_X509_REQ(req, &der);
    err = buf_take_der(plat, der, n, out, why);
out:
    EVP_MD_CTX_free(mctx);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return err;
}

/* A serial number from the host's randomness hook. */
static bool random_serial(const omadm_platform_t *plat, X509 *x)
{
    uint8_t r[8];
    if (plat_random(plat, r, sizeof r))
        return false;
    r[0] &= 0x7f;   /* positive */
    r[0] |= 0x40;   /* and 8 bytes long */
    BIGNUM *bn = BN_bin2bn(r, sizeof r, NULL);
    bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    return ok;
}

static bool signer_extensions(X509 *x)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    static const char *const exts[][2] = {
        {"keyUsage", "critical,digitalSignature,keyEncipherment"},
        {"subjectKeyIdentifier", "hash"},
    };
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, exts[i][0], exts[i][1]);
        bool ok = e && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        if (!ok)
            return false;
    }
    return true;
}

scep_err_t scep_self_signed(const omadm_platform_t *plat, const scep_key_t *key,
                            const char *subject, scep_digest_t digest, int64_t now,
                            scep_cert_t **out, const char **why)
{
    scep_err_t err = SCEP_OK;
    X509_NAME *name = NULL;
    EVP_MD_CTX *mctx = NULL;
    if (!key_ok(key) || !out || now <= 0)
        return fail(why, SCEP_E_INVALID_ARG, "no key, output or time");
    *out = NULL;
    const EVP_MD *md = digest_md(digest);
    if (!md)
        return fail(why, SCEP_E_INVALID_ARG, "unknown digest");
    X509 *x = X509_new();
    if (!x)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    if ((err = name_parse(subject, &name, why)) != SCEP_OK)
        goto out;
    time_t t = (time_t)now;
    if (!random_serial(plat, x)) {
        err = ossl_fail(why, SCEP_E_RESOURCE, "no random bytes for the serial number");
        goto out;
    }
    if (!X509_set_version(x, 2) || !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey_of(key)) ||
        !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &t) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, &t) || !signer_extensions(x) ||
        !(mctx = sign_ctx(key, md)) || X509_sign_ctx(x, mctx) <= 0) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot make the self-signed certificate");
        goto out;
    }
    *out = cert_wrap(plat, x);
    if (!*out) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    x = NULL;
out:
    EVP_MD_CTX_free(mctx);
    X509_NAME_free(name);
    X509_free(x);
    return err;
}

scep_err_t scep_transaction_id(const scep_key_t *key, char out[SCEP_TXID_LEN + 1], const char **why)
{
    if (!key_ok(key) || !out)
        return fail(why, SCEP_E_INVALID_ARG, "no key or output");
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(pkey_of(key), &spki);
    uint8_t md[32];
    unsigned int mdlen = 0;
    bool ok = n > 0 && EVP_Digest(spki, (size_t)n, md, &mdlen, EVP_sha256(), NULL) && mdlen == 32;
    OPENSSL_free(spki);
    if (!ok)
        return ossl_fail(why, SCEP_E_CRYPTO, "cannot hash the public key");
    hex_upper(md, 32, out);
    return SCEP_OK;
}

/* ---- pkiMessage building -------------------------------------------------------------- */

static scep_err_t envelope(const omadm_platform_t *plat, const scep_cert_t *rcpt,
                           scep_cipher_t c, const uint8_t *data, size_t len, scep_buf_t *out,
                           const char **why)
{
    scep_err_t err;
    unsigned char *der = NULL;
    STACK_OF(X509) *to = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(data, (int)len);
    CMS_ContentInfo *cms = NULL;
    if (!to || !in || !sk_X509_push(to, rcpt->x)) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    cms = CMS_encrypt(to, in, cipher_evp(c), CMS_BINARY);
    if (!cms) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot encrypt to the CA certificate");
        goto out;
    }
    int n = i2d_CMS_ContentInfo(cms, &der);
    err = buf_take_der(plat, der, n, out, why);
out:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(to);   /* the certificate stays the caller's */
    return err;
}

static bool add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *data, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    bool ok = obj && CMS_signed_add1_attr_by_OBJ(si, obj, type, data, len);
    ASN1_OBJECT_free(obj);
    return ok;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_printable_char(c))
            return false;
    }
    return true;
}

static scep_err_t check_msg_params(const scep_msg_params_t *mp, const char **why)
{
    if (!mp || !mp->signer_cert || !mp->signer_key || !mp->recipient || !mp->transaction_id)
        return fail(why, SCEP_E_INVALID_ARG, "incomplete message parameters");
    size_t n = strnlen(mp->transaction_id, MAX_TXID + 1);
    if (n == 0 || n > MAX_TXID || !printable(mp->transaction_id, n))
        return fail(why, SCEP_E_INVALID_ARG, "transactionID must be 1..128 printable characters");
    if (!digest_md(mp->digest) || !cipher_evp(mp->cipher))
        return fail(why, SCEP_E_INVALID_ARG, "unknown cipher or digest");
    if (!key_ok(mp->signer_key))
        return fail(why, SCEP_E_INVALID_ARG, "no signer key");
    scep_err_t err = need_key(mp->recipient->x, SCEP_E_UNSUPPORTED,
                              "the recipient certificate has no usable key", why);
    if (err != SCEP_OK)
        return err;
    if (!is_rsa(mp->recipient->x))
        return fail(why, SCEP_E_UNSUPPORTED, "the recipient certificate has no RSA key");
    err = need_key(mp->signer_cert->x, SCEP_E_INVALID_ARG, "the signer certificate has no key", why);
    if (err != SCEP_OK)
        return err;
    if (X509_check_private_key(mp->signer_cert->x, pkey_of(mp->signer_key)) != 1)
        return ossl_fail(why, SCEP_E_INVALID_ARG, "signer certificate and key do not match");
    return SCEP_OK;
}

/* SignedData(data = EnvelopedData(inner)) with the SCEP signed attributes. */
static scep_err_t pki_message(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                              const char *msg_type, const uint8_t *inner, size_t inner_len,
                              uint8_t nonce[SCEP_NONCE_LEN], scep_buf_t *out, const char **why)
{
    scep_err_t err;
    scep_buf_t env = {0};
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL;
    unsigned char *der = NULL;
    if (!out || !nonce)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = (scep_buf_t){0};
    if ((err = check_msg_params(mp, why)) != SCEP_OK)
        return err;
    err = envelope(plat, mp->recipient, mp->cipher, inner, inner_len, &env, why);
    if (err != SCEP_OK)
        return err;
    if (plat_random(plat, nonce, SCEP_NONCE_LEN)) { /* the host's randomness hook */
        err = fail(why, SCEP_E_RESOURCE, "no random bytes for the nonce");
        goto out;
    }
    unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP;
    /* in the key's library context, so that a TPM key signs in the TPM */
    const ks_key_t *sk = mp->signer_key->k;
    cms = CMS_sign_ex(NULL, NULL, NULL, NULL, flags, ks_key_libctx(sk), ks_key_sign_propq(sk));
    CMS_SignerInfo *si = cms ? CMS_add1_signer(cms, mp->signer_cert->x, pkey_of(mp->signer_key),
                                               digest_md(mp->digest), flags)
                             : NULL;
    const char *txid = mp->transaction_id;
    if (!si || !add_attr(si, OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, msg_type, (int)strlen(msg_type)) ||
        !add_attr(si, OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, txid, (int)strlen(txid)) ||
        !add_attr(si, OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN)) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot set up the SignedData");
        goto out;
    }
    in = BIO_new_mem_buf(env.data, (int)env.len);
    if (!in || !CMS_final(cms, in, NULL, CMS_BINARY)) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "signing the pkiMessage failed");
        goto out;
    }
    int n = i2d_CMS_ContentInfo(cms, &der);
    err = buf_take_der(plat, der, n, out, why);
out:
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    scep_buf_free(plat, &env);
    return err;
}

static scep_err_t request(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                          const char *type, const uint8_t *csr, size_t csr_len,
                          uint8_t nonce[SCEP_NONCE_LEN], scep_buf_t *out, const char **why)
{
    scep_err_t err;
    if (out)
        *out = (scep_buf_t){0};
    if (!der_len_ok(csr, csr_len, &err, why))
        return err;
    const unsigned char *p = csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_len);   /* only a sanity check */
    bool ok = req && p == csr + csr_len;
    X509_REQ_free(req);
    if (!ok)
        return ossl_fail(why, SCEP_E_INVALID_ARG, "the CSR is not one DER PKCS#10 request");
    return pki_message(plat, mp, type, csr, csr_len, nonce, out, why);
}

scep_err_t scep_pkcsreq(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                        const uint8_t *csr, size_t csr_len, uint8_t nonce[SCEP_NONCE_LEN],
                        scep_buf_t *out, const char **why)
{
    return request(plat, mp, MSG_PKCSREQ, csr, csr_len, nonce, out, why);
}

scep_err_t scep_renewalreq(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                           const uint8_t *csr, size_t csr_len, uint8_t nonce[SCEP_NONCE_LEN],
                           scep_buf_t *out, const char **why)
{
    return request(plat, mp, MSG_RENEWALREQ, csr, csr_len, nonce, out, why);
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } */
static scep_err_t issuer_and_subject(const omadm_platform_t *plat, const X509_NAME *issuer,
                                     const X509_NAME *subject, scep_buf_t *out, const char **why)
{
    int ni = i2d_X509_NAME(issuer, NULL), ns = i2d_X509_NAME(subject, NULL);
    if (ni <= 0 || ns <= 0)
        return ossl_fail(why, SCEP_E_CRYPTO, "cannot encode the names");
    int body = ni + ns, total = ASN1_object_size(1, body, V_ASN1_SEQUENCE);
    if (total <= 0)
        return fail(why, SCEP_E_CRYPTO, "names too large");
    uint8_t *buf = plat_alloc(plat, (size_t)total + 1);
    if (!buf)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    unsigned char *p = buf;
    ASN1_put_object(&p, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    i2d_X509_NAME(issuer, &p);
    i2d_X509_NAME(subject, &p);
    buf[total] = 0;
    out->data = buf;
    out->len = (size_t)total;
    return SCEP_OK;
}

scep_err_t scep_certpoll(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                         const scep_cert_t *issuer, const uint8_t *csr, size_t csr_len,
                         uint8_t nonce[SCEP_NONCE_LEN], scep_buf_t *out, const char **why)
{
    scep_err_t err;
    scep_buf_t ias = {0};
    if (out)
        *out = (scep_buf_t){0};
    if (!issuer)
        return fail(why, SCEP_E_INVALID_ARG, "no issuer certificate");
    if (!der_len_ok(csr, csr_len, &err, why))
        return err;
    const unsigned char *p = csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr_len);
    if (!req || p != csr + csr_len) {
        X509_REQ_free(req);
        return ossl_fail(why, SCEP_E_INVALID_ARG, "the CSR is not one DER PKCS#10 request");
    }
    err = issuer_and_subject(plat, X509_get_subject_name(issuer->x),
                             X509_REQ_get_subject_name(req), &ias, why);
    X509_REQ_free(req);
    if (err == SCEP_OK)
        err = pki_message(plat, mp, MSG_CERTPOLL, ias.data, ias.len, nonce, out, why);
    scep_buf_free(plat, &ias);
    return err;
}

/* ---- GetCACert sets --------------------------------------------------------------------- */

static bool is_ca_cert(X509 *x)
{
    return X509_check_ca(x) != 0;
}

static bool has_ku(X509 *x, uint32_t bit)
{
    return (X509_get_extension_flags(x) & EXFLAG_KUSAGE) && (X509_get_key_usage(x) & bit);
}

static bool has_no_ku(X509 *x)
{
    return !(X509_get_extension_flags(x) & EXFLAG_KUSAGE);
}

/* A cert that issued no other certificate of the set. */
static bool is_leaf(const scep_certset_t *s, size_t i)
{
    for (size_t j = 0; j < s->n; j++)
        if (j != i && X509_check_issued(s->certs[i].x, s->certs[j].x) == X509_V_OK)
            return false;
    return true;
}

/* Role choice (docs/scep.md): non-CA with the usage, non-CA without any KU,
 * any cert with the usage, a leaf, the first.  Only certificates with a
 * public key OpenSSL can decode take a role (an RSA one when need_rsa);
 * SIZE_MAX when there is none. */
static size_t pick_role(const scep_certset_t *s, uint32_t ku_bit, bool need_rsa)
{
    for (int pass = 0; pass < 5; pass++) {
        for (size_t i = 0; i < s->n; i++) {
            X509 *x = s->certs[i].x;
            if (need_rsa ? !is_rsa(x) : !cert_key(x))
                continue;
            bool hit = false;
            switch (pass) {
            case 0: hit = !is_ca_cert(x) && has_ku(x, ku_bit); break;
            case 1: hit = !is_ca_cert(x) && has_no_ku(x); break;
            case 2: hit = has_ku(x, ku_bit); break;
            case 3: hit = is_leaf(s, i); break;
            default: hit = true; break;
            }
            if (hit)
                return i;
        }
    }
    return SIZE_MAX;
}

static void pick_issuer(scep_certset_t *s)
{
    X509 *r = s->certs[s->recipient].x;
    s->issuer = s->recipient;
    for (size_t i = 0; i < s->n; i++)
        if (i != s->recipient && X509_check_issued(s->certs[i].x, r) == X509_V_OK) {
            s->issuer = i;
            return;
        }
}

/* The certificates of a DER (degenerate) SignedData, or NULL. */
static STACK_OF(X509) *signeddata_certs(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    CMS_ContentInfo *ci = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    STACK_OF(X509) *certs = NULL;
    if (ci && p == der + len && OBJ_obj2nid(CMS_get0_type(ci)) == NID_pkcs7_signed)
        certs = CMS_get1_certs(ci);
    CMS_ContentInfo_free(ci);
    if (certs && sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        certs = NULL;
    }
    return certs;
}

/* Takes the certificates out of *certs (left empty). */
static scep_err_t certset_from_stack(const omadm_platform_t *plat, STACK_OF(X509) *certs,
                                     scep_certset_t **out, const char **why)
{
    int n = sk_X509_num(certs);
    if (n > MAX_SET_CERTS)
        return fail(why, SCEP_E_TOO_LARGE, "more than 64 CA certificates");
    scep_certset_t *s = plat_calloc(plat, sizeof *s);
    scep_cert_t *arr = plat_calloc(plat, (size_t)(n > 0 ? n : 1) * sizeof *arr);
    if (!s || !arr) {
        plat_free(plat, s);
        plat_free(plat, arr);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        arr[i].x = sk_X509_value(certs, i);
    sk_X509_zero(certs);
    s->n = (size_t)n;
    s->certs = arr;
    for (size_t i = 0; i < s->n; i++)
        if (cert_spoiled_by_oom(arr[i].x)) {
            scep_certset_free(plat, s);
            return fail(why, SCEP_E_NOMEM, "out of memory (decoding a certificate)");
        }
    s->recipient = pick_role(s, KU_KEY_ENCIPHERMENT, true);
    s->verifier = pick_role(s, KU_DIGITAL_SIGNATURE, false);
    if (s->recipient == SIZE_MAX || s->verifier == SIZE_MAX) {
        scep_certset_free(plat, s);
        return fail(why, SCEP_E_UNSUPPORTED, "no certificate with a usable RSA key to encrypt "
                                             "requests to");
    }
    pick_issuer(s);
    *out = s;
    return SCEP_OK;
}

scep_err_t scep_cacert_parse(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                             scep_certset_t **out, const char **why)
{
    scep_err_t err;
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    if (!der_len_ok(der, len, &err, why))
        return err;
    STACK_OF(X509) *certs = NULL;
    const unsigned char *p = der;
    X509 *one = d2i_X509(NULL, &p, (long)len);
    if (one && p == der + len) {
        /* a certificate alone is pinned by the SHA-1 of these bytes */
        if ((err = der_as_sent(one, der, len, why)) != SCEP_OK) {
            X509_free(one);
            return err;
        }
        certs = sk_X509_new_null();
        if (!certs || !sk_X509_push(certs, one)) {
            X509_free(one);
            sk_X509_free(certs);
            return fail(why, SCEP_E_NOMEM, "out of memory");
        }
    } else {
        X509_free(one);
        certs = signeddata_certs(der, len);
    }
    if (!certs)
        return ossl_fail(why, SCEP_E_MALFORMED,
                         "neither a DER certificate nor a PKCS#7 with certificates");
    ERR_clear_error();
    err = certset_from_stack(plat, certs, out, why);
    sk_X509_pop_free(certs, X509_free);
    return err;
}

void scep_certset_free(const omadm_platform_t *plat, scep_certset_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        X509_free(set->certs[i].x);
    plat_free(plat, set->certs);
    plat_free(plat, set);
}

size_t scep_certset_count(const scep_certset_t *set)
{
    return set ? set->n : 0;
}

const scep_cert_t *scep_certset_get(const scep_certset_t *set, size_t i)
{
    return set && i < set->n ? &set->certs[i] : NULL;
}

const scep_cert_t *scep_certset_recipient(const scep_certset_t *set)
{
    return set ? &set->certs[set->recipient] : NULL;
}

const scep_cert_t *scep_certset_verifier(const scep_certset_t *set)
{
    return set ? &set->certs[set->verifier] : NULL;
}

const scep_cert_t *scep_certset_issuer(const scep_certset_t *set)
{
    return set ? &set->certs[set->issuer] : NULL;
}

/* ---- chains and thumbprints ----------------------------------------------------------------- */

/* One X509_verify_cert of leaf against trusted (intermediates may be trust
 * anchors), helped by untrusted; no purpose checks.  SCEP_OK, or the error
 * with *verr the verification's error code (0 when it could not be set up). */
static scep_err_t verify_chain(X509 *leaf, STACK_OF(X509) *trusted, STACK_OF(X509) *untrusted,
                               int64_t now, int *verr, const char **why)
{
    scep_err_t err = SCEP_OK;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    *verr = 0;
    if (!store || !ctx) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(trusted); i++)
        if (!X509_STORE_add_cert(store, sk_X509_value(trusted, i))) {
            err = ossl_fail(why, SCEP_E_CRYPTO, "cannot build the trust store");
            goto out;
        }
    if (!X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot set up chain verification");
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (now > 0)
        X509_VERIFY_PARAM_set_time(param, (time_t)now);
    else
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        *verr = X509_STORE_CTX_get_error(ctx);
        err = ossl_fail(why, *verr == X509_V_ERR_OUT_OF_MEM ? SCEP_E_NOMEM : SCEP_E_UNTRUSTED,
                        X509_verify_cert_error_string(*verr));
    }
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return err;
}

/* leaf chains to one of trusted, helped by untrusted (verify_chain).  A
 * chain that does not verify is checked once more: OpenSSL reports a
 * signature it could not check for want of memory as one that does not
 * verify, so a chain that verifies the second time failed for memory. */
static scep_err_t chain_check(X509 *leaf, STACK_OF(X509) *trusted, STACK_OF(X509) *untrusted,
                              int64_t now, const char **why)
{
    int verr = 0, verr2 = 0;
    scep_err_t err = verify_chain(leaf, trusted, untrusted, now, &verr, why);
    if (err != SCEP_E_UNTRUSTED)
        return err;
    const char *why2 = NULL;
    scep_err_t again = verify_chain(leaf, trusted, untrusted, now, &verr2, &why2);
    if (again == SCEP_OK || scep_oom_err(again))
        return fail(why, SCEP_E_NOMEM, "out of memory (checking a certificate chain)");
    return err;
}

/* "AB:cd 12..." -> 20 bytes; false unless exactly 40 hex digits. */
static bool thumb_parse(const char *s, uint8_t out[20])
{
    size_t k = 0;
    for (size_t i = 0; s[i] && i < 256; i++) {
        char c = s[i];
        if (c == ' ' || c == ':' || c == '\t' || c == '-')
            continue;
        int v = isdigit((unsigned char)c) ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0 || k >= 40)
            return false;
        out[k / 2] = (uint8_t)(k % 2 ? (out[k / 2] | v) : v << 4);
        k++;
    }
    return k == 40 && strnlen(s, 257) <= 256;
}

static X509 *find_by_sha1(STACK_OF(X509) *certs, const uint8_t want[20])
{
    uint8_t md[20];
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        if (x509_sha1(x, md) && memcmp(md, want, 20) == 0)
            return x;
    }
    return NULL;
}

/* The set's certs (borrowed) followed by the parsable extra roots (owned). */
static STACK_OF(X509) *pool_make(const scep_certset_t *set, const scep_blob_t *roots, size_t n,
                                 int *n_owned_from)
{
    STACK_OF(X509) *pool = sk_X509_new_null();
    if (!pool)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        if (!sk_X509_push(pool, set->certs[i].x))
            goto err;
    *n_owned_from = sk_X509_num(pool);
    for (size_t i = 0; roots && i < n && i < 4096; i++) {
        if (!roots[i].data || roots[i].len == 0 || roots[i].len > SCEP_MAX_DER)
            continue;
        const unsigned char *p = roots[i].data;
        X509 *x = d2i_X509(NULL, &p, (long)roots[i].len);
        if (!x && ossl_drain_oom())
            goto err; /* a device root skipped for want of memory would fail the pin */
        if (!x || p != roots[i].data + roots[i].len) {
            X509_free(x);
            continue;
        }
        if (cert_spoiled_by_oom(x) || !sk_X509_push(pool, x)) {
            X509_free(x);
            goto err;
        }
    }
    ERR_clear_error();
    return pool;
err:
    for (int i = *n_owned_from; i < sk_X509_num(pool); i++)
        X509_free(sk_X509_value(pool, i));
    sk_X509_free(pool);
    return NULL;
}

static void pool_free(STACK_OF(X509) *pool, int owned_from)
{
    for (int i = owned_from; i < sk_X509_num(pool); i++)
        X509_free(sk_X509_value(pool, i));
    sk_X509_free(pool);
}

/* cert is the pin or chains to it through the pool. */
static scep_err_t chains_to_pin(X509 *cert, X509 *pin, STACK_OF(X509) *pool, int64_t now,
                                const char **why)
{
    if (X509_cmp(cert, pin) == 0)
        return SCEP_OK;
    STACK_OF(X509) *trusted = sk_X509_new_null();
    if (!trusted || !sk_X509_push(trusted, pin)) {
        sk_X509_free(trusted);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    scep_err_t err = chain_check(cert, trusted, pool, now, why);
    sk_X509_free(trusted);
    return err;
}

scep_err_t scep_cacert_match_thumbprint(const scep_certset_t *set, const char *sha1_hex,
                                        const scep_blob_t *extra_roots, size_t n_extra,
                                        int64_t now, const char **why)
{
    uint8_t want[20];
    int owned_from = 0;
    if (!set || !sha1_hex)
        return fail(why, SCEP_E_INVALID_ARG, "no certificate set or thumbprint");
    if (!thumb_parse(sha1_hex, want))
        return fail(why, SCEP_E_INVALID_ARG, "CAThumbprint is not 40 hex digits");
    STACK_OF(X509) *pool = pool_make(set, extra_roots, n_extra, &owned_from);
    if (!pool)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    scep_err_t err = SCEP_OK;
    X509 *pin = find_by_sha1(pool, want);
    if (!pin) {
        err = fail(why, SCEP_E_UNTRUSTED,
                   "no returned or device root certificate has the CAThumbprint");
        goto out;
    }
    err = chains_to_pin(set->certs[set->recipient].x, pin, pool, now, why);
    if (err == SCEP_OK)
        err = chains_to_pin(set->certs[set->verifier].x, pin, pool, now, why);
out:
    pool_free(pool, owned_from);
    return err;
}

/* ---- CertRep ------------------------------------------------------------------------------ */

void scep_certrep_init(scep_certrep_t *rep)
{
    if (!rep)
        return;
    memset(rep, 0, sizeof *rep);
    rep->status = SCEP_STATUS_FAILURE;
    rep->fail_info = -1;
}

void scep_certrep_clear(const omadm_platform_t *plat, scep_certrep_t *rep)
{
    if (!rep)
        return;
    scep_buf_free(plat, &rep->cert);
    scep_cert_free(plat, rep->issued);
    scep_certrep_init(rep);
}

const char *scep_failinfo_name(int fi)
{
    static const char *const names[] = {"badAlg", "badMessageCheck", "badRequest", "badTime",
                                        "badCertId"};
    return fi >= 0 && fi < 5 ? names[fi] : NULL;
}

/* A single-valued string attribute: 1 copied (NUL-terminated, must fit),
 * 0 absent, -1 malformed (duplicate, several values, wrong type, too long),
 * -2 out of memory. */
static int attr_string(CMS_SignerInfo *si, const char *oid, char *buf, size_t size)
{
    static const int types[] = {V_ASN1_PRINTABLESTRING, V_ASN1_UTF8STRING, V_ASN1_IA5STRING};
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (!obj)
        return -2; /* our own OID text: only memory can fail */
    int rc = -1;
    if (CMS_signed_get_attr_by_OBJ(si, obj, -1) < 0) {
        rc = 0;
        goto out;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        ASN1_STRING *s = CMS_signed_get0_data_by_OBJ(si, obj, -3, types[t]);
        if (!s)
            continue;
        int n = ASN1_STRING_length(s);
        const unsigned char *d = ASN1_STRING_get0_data(s);
        if (n >= 0 && (size_t)n < size && !memchr(d, 0, (size_t)n)) {
            memcpy(buf, d, (size_t)n);
            buf[n] = 0;
            rc = 1;
        }
        break;
    }
out:
    ASN1_OBJECT_free(obj);
    return rc;
}

/* 1 if the OCTET STRING attribute is exactly want[len], 0 absent/different,
 * -1 malformed, -2 out of memory. */
static int attr_octets_equal(CMS_SignerInfo *si, const char *oid, const uint8_t *want, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (!obj)
        return -2;
    int rc = 0;
    if (CMS_signed_get_attr_by_OBJ(si, obj, -1) >= 0) {
        ASN1_OCTET_STRING *s = CMS_signed_get0_data_by_OBJ(si, obj, -3, V_ASN1_OCTET_STRING);
        if (!s)
            rc = -1;
        else
            rc = (size_t)ASN1_STRING_length(s) == len && !memcmp(ASN1_STRING_get0_data(s), want, len);
    }
    ASN1_OBJECT_free(obj);
    return rc;
}

static const char *digest_label(int nid)
{
    switch (nid) {
    case NID_sha1: return "SHA-1";
    case NID_sha224: return "SHA-224";
    case NID_sha256: return "SHA-256";
    case NID_sha384: return "SHA-384";
    case NID_sha512: return "SHA-512";
    }
    return NULL;
}

static bool rsa_sig_alg(int nid)
{
    switch (nid) {
    case NID_rsaEncryption:
    case NID_sha1WithRSAEncryption:
    case NID_sha224WithRSAEncryption:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
        return true;
    }
    return false;
}

/* Outer structure, one SignerInfo, algorithms. */
static scep_err_t certrep_shape(CMS_ContentInfo *cms, CMS_SignerInfo **psi, scep_certrep_t *rep,
                                const char **why)
{
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
        return fail(why, SCEP_E_MALFORMED, "CertRep is not a SignedData");
    if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data)
        return fail(why, SCEP_E_MALFORMED, "CertRep content type is not data");
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    if (sk_CMS_SignerInfo_num(sis) != 1)
        return fail(why, SCEP_E_MALFORMED, "CertRep must have exactly one SignerInfo");
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(sis, 0);
    X509_ALGOR *dig = NULL, *sig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
    const ASN1_OBJECT *dobj = NULL, *sobj = NULL;
    X509_ALGOR_get0(&dobj, NULL, NULL, dig);
    X509_ALGOR_get0(&sobj, NULL, NULL, sig);
    rep->digest = digest_label(OBJ_obj2nid(dobj));
    if (!rep->digest)
        return fail(why, SCEP_E_UNSUPPORTED, "CertRep digest is not SHA-1/224/256/384/512");
    if (!rsa_sig_alg(OBJ_obj2nid(sobj)))
        return fail(why, SCEP_E_UNSUPPORTED,
                    "CertRep signature algorithm is not rsaEncryption or shaNWithRSAEncryption");
    *psi = si;
    return SCEP_OK;
}

static bool signature_mismatch(int lib, int r)
{
    return lib == ERR_LIB_CMS &&
           (r == CMS_R_VERIFICATION_FAILURE || r == CMS_R_CONTENT_VERIFY_ERROR ||
            r == CMS_R_MESSAGEDIGEST_WRONG_LENGTH || r == CMS_R_MESSAGEDIGEST_ATTRIBUTE_WRONG_LENGTH);
}

/* Why CMS_verify failed: the signature or the digest of the signed
 * attributes does not match (the reply's fault), or OpenSSL could not do
 * the check (memory, say: it does not always say so). */
static scep_err_t verify_failure(const char **why)
{
    bool mismatch;
    bool oom = ossl_drain(signature_mismatch, &mismatch);
    if (oom)
        return fail(why, SCEP_E_NOMEM, "out of memory (in OpenSSL)");
    if (mismatch)
        return fail(why, SCEP_E_SIGNATURE, "CertRep signature check failed");
    return fail(why, SCEP_E_CRYPTO, "the CertRep signature could not be checked");
}

/* One CMS_verify by verifier only; the signed content into *content. */
static scep_err_t verify_once(const omadm_platform_t *plat, CMS_ContentInfo *cms,
                              const scep_cert_t *verifier, scep_buf_t *content, const char **why)
{
    scep_err_t err = SCEP_OK;
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *out = BIO_new(BIO_s_mem());
    BIO *dcont = NULL;
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
    if (!pos || !*pos)
        dcont = BIO_new_mem_buf("", 0);   /* PENDING / FAILURE: content omitted */
    if (!certs || !out || !sk_X509_push(certs, verifier->x) || (!(pos && *pos) && !dcont)) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    unsigned flags = CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;
    if (CMS_verify(cms, certs, NULL, dcont, out, flags) != 1) {
        err = verify_failure(why);
        goto out;
    }
    err = buf_from_bio(plat, out, content, why);
out:
    BIO_free(dcont);
    BIO_free(out);
    sk_X509_free(certs);
    return err;
}

/* Signature by exp->verifier only; the signed content (envelope DER) into *content. */
static scep_err_t certrep_verify(const omadm_platform_t *plat, CMS_ContentInfo *cms,
                                 CMS_SignerInfo *si, const scep_cert_t *verifier,
                                 scep_buf_t *content, const char **why)
{
    scep_err_t err = need_key(verifier->x, SCEP_E_SIGNATURE,
                              "the CA's signing certificate has no usable key", why);
    if (err != SCEP_OK)
        return err;
    if (CMS_SignerInfo_cert_cmp(si, verifier->x) != 0)
        return fail(why, SCEP_E_SIGNATURE, "CertRep is not signed by the CA's signing certificate");
    err = verify_once(plat, cms, verifier, content, why);
    if (err != SCEP_E_SIGNATURE)
        return err;
    /* OpenSSL reports a signature it could not check for want of memory as
     * one that does not verify: one that verifies the second time failed
     * for memory */
    const char *why2 = NULL;
    scep_buf_t again = {0};
    scep_err_t err2 = verify_once(plat, cms, verifier, &again, &why2);
    scep_buf_free(plat, &again);
    if (err2 == SCEP_OK || scep_oom_err(err2))
        return fail(why, SCEP_E_NOMEM, "out of memory (checking the CertRep signature)");
    return err;
}

/* An attribute lookup that did not give 1: out of memory (-2), else err. */
static scep_err_t attr_err(int rc, scep_err_t err, const char *reason, const char **why)
{
    return rc == -2 ? fail(why, SCEP_E_NOMEM, "out of memory") : fail(why, err, reason);
}

/* messageType, transactionID, recipientNonce, pkiStatus, failInfo(+Text). */
static scep_err_t certrep_attrs(CMS_SignerInfo *si, const scep_expect_t *exp, scep_certrep_t *rep,
                                const char **why)
{
    char buf[MAX_TXID + 1];
    int rc;
    if ((rc = attr_string(si, OID_MESSAGE_TYPE, buf, sizeof buf)) != 1)
        return attr_err(rc, SCEP_E_MALFORMED, "CertRep messageType missing or malformed", why);
    if (strcmp(buf, MSG_CERTREP) != 0)
        return fail(why, SCEP_E_MISMATCH, "messageType is not CertRep (3)");
    if ((rc = attr_string(si, OID_TRANSACTION_ID, buf, sizeof buf)) != 1)
        return attr_err(rc, SCEP_E_MALFORMED, "CertRep transactionID missing or malformed", why);
    if (strcmp(buf, exp->transaction_id) != 0)
        return fail(why, SCEP_E_MISMATCH, "transactionID differs from ours");
    if ((rc = attr_octets_equal(si, OID_RECIPIENT_NONCE, exp->nonce, SCEP_NONCE_LEN)) != 1)
        return attr_err(rc, rc < 0 ? SCEP_E_MALFORMED : SCEP_E_MISMATCH,
                        "recipientNonce is not the senderNonce we sent", why);
    if ((rc = attr_string(si, OID_PKI_STATUS, buf, sizeof buf)) != 1)
        return attr_err(rc, SCEP_E_MALFORMED, "CertRep pkiStatus missing or malformed", why);
    if (!strcmp(buf, "0"))
        rep->status = SCEP_STATUS_SUCCESS;
    else if (!strcmp(buf, "2"))
        rep->status = SCEP_STATUS_FAILURE;
    else if (!strcmp(buf, "3"))
        rep->status = SCEP_STATUS_PENDING;
    else
        return fail(why, SCEP_E_MALFORMED, "pkiStatus is not 0, 2 or 3");
    if (rep->status != SCEP_STATUS_FAILURE)
        return SCEP_OK;
    size_t n = 0;
    if ((rc = attr_string(si, OID_FAIL_INFO, buf, sizeof buf)) != 1 || !(n = strlen(buf)) ||
        n > 6 || strspn(buf, "0123456789") != n)
        return attr_err(rc, SCEP_E_MALFORMED, "FAILURE without a numeric failInfo", why);
    rep->fail_info = atoi(buf);
    char text[sizeof rep->fail_text + 512];
    if ((rc = attr_string(si, OID_FAIL_INFO_TEXT, text, sizeof text)) == -2)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    if (rc == 1) {
        size_t tn = strnlen(text, sizeof rep->fail_text - 1);
        memcpy(rep->fail_text, text, tn);
        rep->fail_text[tn] = 0;
        for (char *c = rep->fail_text; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    return SCEP_OK;
}

/* ---- opening the envelope --------------------------------------------------------------------- */

typedef struct legacy {
    OSSL_LIB_CTX *ctx;
    OSSL_PROVIDER *leg;
} legacy_t;

static void legacy_free(legacy_t *l)
{
    if (l->leg)
        OSSL_PROVIDER_unload(l->leg);
    OSSL_LIB_CTX_free(l->ctx);
    *l = (legacy_t){0};
}

static bool from_dso(int lib, int r)
{
    (void)r;
    return lib == ERR_LIB_DSO;
}

/* The legacy module could not be loaded from disk (rather than for want
 * of memory): OpenSSL's loader says so, and only then.  Drains the queue. */
static bool module_missing(void)
{
    bool dso;
    bool oom = ossl_drain(from_dso, &dso);
    return dso && !oom;
}

/* A private library context with the legacy provider alone, for the
 * DES-CBC decryption only (des_envelope_decrypt).  Making the context can
 * fail only for want of resources; the legacy provider is a module that
 * may be missing. */
static scep_err_t legacy_open(legacy_t *l, const char **why)
{
    *l = (legacy_t){0};
    l->ctx = OSSL_LIB_CTX_new();
    if (!l->ctx) {
        ERR_clear_error();
        return fail(why, SCEP_E_NOMEM, "out of memory (a library context for DES)");
    }
    l->leg = OSSL_PROVIDER_load(l->ctx, "legacy");
    if (!l->leg) {
        /* "missing" may be the loader lacking memory for a file name: a
         * module that loads the second time is not missing */
        bool missing = module_missing();
        if (missing && (l->leg = OSSL_PROVIDER_load(l->ctx, "legacy")) != NULL)
            missing = false;
        ERR_clear_error();
        legacy_free(l);
        if (!missing)
            return fail(why, SCEP_E_NOMEM, "out of memory (loading the legacy provider)");
        return fail(why, SCEP_E_UNSUPPORTED,
                    "single DES envelope, but the OpenSSL legacy provider is not available");
    }
    return SCEP_OK;
}

struct scep_legacy {
    legacy_t l;
    EVP_CIPHER *des;
};

scep_err_t scep_legacy_open(scep_legacy_t **out, const char **why)
{
    if (!out)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    *out = NULL;
    scep_legacy_t *l = OPENSSL_zalloc(sizeof *l);
    if (!l) {
        ERR_clear_error();
        return fail(why, SCEP_E_NOMEM, "out of memory (a library context for DES)");
    }
    scep_err_t err = legacy_open(&l->l, why);
    if (err == SCEP_OK && !(l->des = EVP_CIPHER_fetch(l->l.ctx, "DES-CBC", NULL))) {
        ERR_clear_error();
        err = fail(why, SCEP_E_NOMEM, "out of memory (DES-CBC of the legacy provider)");
    }
    if (err != SCEP_OK) {
        scep_legacy_free(l);
        return err;
    }
    *out = l;
    return SCEP_OK;
}

void scep_legacy_free(scep_legacy_t *l)
{
    if (!l)
        return;
    EVP_CIPHER_free(l->des);
    legacy_free(&l->l);
    OPENSSL_free(l);
}

/* The content-encryption algorithm of an EnvelopedData (looked at through
 * the PKCS7 structures, which are public), or NID_undef. */
static int envelope_cipher_nid(const scep_buf_t *env)
{
    const unsigned char *p = env->data;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)env->len);
    int nid = NID_undef;
    if (p7 && p == env->data + env->len && PKCS7_type_is_enveloped(p7) && p7->d.enveloped &&
        p7->d.enveloped->enc_data && p7->d.enveloped->enc_data->algorithm)
        nid = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    return nid;
}

static bool not_our_envelope(int lib, int r)
{
    return (lib == ERR_LIB_CMS && (r == CMS_R_NO_MATCHING_RECIPIENT || r == CMS_R_DECRYPT_ERROR)) ||
           (lib == ERR_LIB_EVP && r == EVP_R_BAD_DECRYPT);
}

/* Why CMS_decrypt failed, for an envelope with a recipient that is our
 * certificate: the key does not open it (the reply's fault), or OpenSSL
 * could not do the work (memory, say, in the library context made for
 * this reply: it does not always say so). */
static scep_err_t decrypt_failure(const char **why)
{
    bool not_ours;
    bool oom = ossl_drain(not_our_envelope, &not_ours);
    if (oom)
        return fail(why, SCEP_E_NOMEM, "out of memory (in OpenSSL)");
    if (not_ours)
        return fail(why, SCEP_E_DECRYPT, "cannot decrypt the CertRep envelope with our key");
    return fail(why, SCEP_E_CRYPTO, "the CertRep envelope could not be opened");
}

/* One of the envelope's recipients is cert (issuer and serial, or key id). */
static bool for_us(CMS_ContentInfo *cms, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
            CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
            return true;
    }
    return false;
}

static scep_err_t envelope_decrypt(const omadm_platform_t *plat, const scep_buf_t *env,
                                   const scep_expect_t *exp, scep_buf_t *plain, const char **why)
{
    scep_err_t err = SCEP_OK;
    CMS_ContentInfo *cms = CMS_ContentInfo_new();
    BIO *out = BIO_new(BIO_s_mem());
    if (!cms || !out) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    const unsigned char *p = env->data;
    if (!d2i_CMS_ContentInfo(&cms, &p, (long)env->len) || p != env->data + env->len ||
        OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
        err = ossl_fail(why, SCEP_E_MALFORMED, "CertRep content is not an EnvelopedData");
        goto out;
    }
    if (!for_us(cms, exp->signer_cert->x)) {
        err = ossl_fail(why, SCEP_E_DECRYPT, "the CertRep envelope is not encrypted to us");
        goto out;
    }
    if (!CMS_decrypt(cms, pkey_of(exp->signer_key), exp->signer_cert->x, NULL, out, CMS_BINARY)) {
        err = decrypt_failure(why);
        goto out;
    }
    err = buf_from_bio(plat, out, plain, why);
out:
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return err;
}

/* Our recipient of a PKCS#7 envelope: the one that names cert by issuer
 * and serial number, or NULL. */
static PKCS7_RECIP_INFO *pkcs7_recipient(PKCS7 *p7, X509 *cert)
{
    STACK_OF(PKCS7_RECIP_INFO) *ris = p7->d.enveloped->recipientinfo;
    for (int i = 0; i < sk_PKCS7_RECIP_INFO_num(ris); i++) {
        PKCS7_RECIP_INFO *ri = sk_PKCS7_RECIP_INFO_value(ris, i);
        if (ri && ri->issuer_and_serial && ri->issuer_and_serial->issuer &&
            ri->issuer_and_serial->serial &&
            X509_NAME_cmp(ri->issuer_and_serial->issuer, X509_get_issuer_name(cert)) == 0 &&
            ASN1_INTEGER_cmp(ri->issuer_and_serial->serial, X509_get0_serialNumber(cert)) == 0)
            return ri;
    }
    return NULL;
}

/* An envelope opened step by step: a single-DES one (micromdm 2.1.0 and
 * other old servers), and any envelope for a key that is not a software
 * one (a TPM key decrypts only through its own provider, in its own
 * library context, which CMS_decrypt cannot be pointed at for the key
 * alone).  The content key is recovered with our RSA key (PKCS #1 v1.5, as
 * CMS_decrypt does it) by the key's store; the content is decrypted in the
 * default library context, or for single DES in a private context with the
 * legacy provider alone: CMS_decrypt in a context with default + legacy
 * made that context its own random generators, names and RSA methods, more
 * than half of the CertRep check.  The errors are CMS_decrypt's with a
 * certificate given: an envelope not for us, a key that does not open it
 * or bad padding are SCEP_E_DECRYPT. */
static scep_err_t manual_envelope_decrypt(const omadm_platform_t *plat, const scep_buf_t *env,
                                          const scep_expect_t *exp, int nid, scep_buf_t *plain,
                                          const char **why)
{
    scep_err_t err = SCEP_OK;
    legacy_t legacy = {0};
    EVP_CIPHER *des = NULL;
    EVP_CIPHER_CTX *cctx = NULL;
    uint8_t *out = NULL;
    size_t out_cap = 0;
    unsigned char cek[512];
    size_t cek_len = sizeof cek;
    unsigned char iv[EVP_MAX_IV_LENGTH];
    bool single_des = nid == NID_des_cbc;
    const unsigned char *p = env->data;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)env->len);
    if (!p7 || p != env->data + env->len || !PKCS7_type_is_enveloped(p7) || !p7->d.enveloped ||
        !p7->d.enveloped->enc_data || !p7->d.enveloped->enc_data->algorithm) {
        err = ossl_fail(why, SCEP_E_MALFORMED, "CertRep content is not an EnvelopedData");
        goto out;
    }
    PKCS7_ENC_CONTENT *ec = p7->d.enveloped->enc_data;
    PKCS7_RECIP_INFO *ri = pkcs7_recipient(p7, exp->signer_cert->x);
    if (!ri) {
        err = ossl_fail(why, SCEP_E_DECRYPT, "the CertRep envelope is not encrypted to us");
        goto out;
    }
    if (!ri->key_enc_algor || OBJ_obj2nid(ri->key_enc_algor->algorithm) != NID_rsaEncryption ||
        !ri->enc_key) {
        err = ossl_fail(why, SCEP_E_UNSUPPORTED, "CertRep envelope: key transport is not RSA");
        goto out;
    }
    /* the context made ahead of the answer, else one of our own now */
    if (single_des && !exp->legacy && (err = legacy_open(&legacy, why)) != SCEP_OK)
        goto out;
    if (!single_des)
        des = EVP_CIPHER_fetch(NULL, OBJ_nid2sn(nid), NULL);
    else if (exp->legacy)
        des = EVP_CIPHER_up_ref(exp->legacy->des) ? exp->legacy->des : NULL;
    else
        des = EVP_CIPHER_fetch(legacy.ctx, "DES-CBC", NULL);
    if (!des) {
        err = ossl_fail(why, SCEP_E_CRYPTO, "cannot set up the envelope's cipher");
        goto out;
    }
    int iv_len = EVP_CIPHER_get_iv_length(des);
    if (iv_len <= 0 || iv_len > (int)sizeof iv ||
        ASN1_TYPE_get_octetstring(ec->algorithm->parameter, iv, (int)sizeof iv) != iv_len ||
        !ec->enc_data) {
        err = ossl_fail(why, SCEP_E_MALFORMED, "CertRep envelope without its IV or content");
        goto out;
    }
    const char *kwhy = NULL;
    ks_err_t kerr = ks_decrypt(exp->signer_key->k, ri->enc_key->data,
                               (size_t)ri->enc_key->length, cek, &cek_len, &kwhy);
    if (kerr == KS_E_NOMEM || kerr == KS_E_INVALID) {
        err = ks_fail(why, kerr, kwhy);
        goto out;
    }
    if (kerr || cek_len != (size_t)EVP_CIPHER_get_key_length(des)) {
        err = ossl_drain_oom() ? fail(why, SCEP_E_NOMEM, "out of memory (in OpenSSL)")
                               : fail(why, SCEP_E_DECRYPT,
                                      "cannot decrypt the CertRep envelope with our key");
        goto out;
    }
    int in_len = ec->enc_data->length, n = 0, m = 0;
    out_cap = (size_t)in_len + (size_t)EVP_MAX_BLOCK_LENGTH;
    cctx = EVP_CIPHER_CTX_new();
    out = plat_alloc(plat, out_cap);
    if (!des || !cctx || !out || in_len < 0 ||
        !EVP_DecryptInit_ex2(cctx, des, cek, iv, NULL)) {
        err = ossl_fail(why, !out ? SCEP_E_NOMEM : SCEP_E_CRYPTO, "cannot set up the decryption");
        goto out;
    }
    if (!EVP_DecryptUpdate(cctx, out, &n, ec->enc_data->data, in_len) ||
        !EVP_DecryptFinal_ex(cctx, out + n, &m)) {
        bool not_ours;
        bool oom = ossl_drain(not_our_envelope, &not_ours);
        err = oom ? fail(why, SCEP_E_NOMEM, "out of memory (in OpenSSL)")
                  : fail(why, SCEP_E_DECRYPT, "cannot decrypt the CertRep envelope with our key");
        goto out;
    }
    plain->data = out;
    plain->len = (size_t)(n + m);
    out = NULL;
out:
    if (out) {
        OPENSSL_cleanse(out, out_cap);
        plat_free(plat, out);
    }
    OPENSSL_cleanse(cek, sizeof cek);
    EVP_CIPHER_CTX_free(cctx);
    EVP_CIPHER_free(des);
    legacy_free(&legacy);
    PKCS7_free(p7);
    return err;
}

/* AES and 3DES in the default context; single DES in a private legacy one;
 * a key of another store than the software one step by step. */
static scep_err_t envelope_open(const omadm_platform_t *plat, const scep_buf_t *env,
                                const scep_expect_t *exp, scep_buf_t *plain, scep_certrep_t *rep,
                                const char **why)
{
    bool single_des = false;
    switch (envelope_cipher_nid(env)) {
    case NID_aes_128_cbc: rep->cipher = "AES-128-CBC"; break;
    case NID_aes_192_cbc: rep->cipher = "AES-192-CBC"; break;
    case NID_aes_256_cbc: rep->cipher = "AES-256-CBC"; break;
    case NID_des_ede3_cbc: rep->cipher = "DES-EDE3-CBC"; break;
    case NID_des_cbc:
        single_des = true;
        rep->cipher = "DES-CBC";
        break;
    case NID_undef:
        return ossl_fail(why, SCEP_E_MALFORMED, "CertRep content is not an EnvelopedData");
    default:
        return ossl_fail(why, SCEP_E_UNSUPPORTED, "CertRep envelope cipher is not AES, 3DES or DES");
    }
    /* a key of another key store than the software one: step by step */
    bool manual = single_des || ks_key_libctx(exp->signer_key->k) != NULL;
    scep_err_t err = manual ? manual_envelope_decrypt(plat, env, exp, envelope_cipher_nid(env),
                                                      plain, why)
                            : envelope_decrypt(plat, env, exp, plain, why);
    if (err == SCEP_OK && single_des)
        rep->warning = "the CA encrypted its reply with single DES (RFC 8894: MUST NOT); "
                       "opened with the OpenSSL legacy provider in a private library context";
    return err;
}

/* ---- the issued certificate ------------------------------------------------------------------------ */

static STACK_OF(X509) *certset_stack(const scep_certset_t *set)
{
    STACK_OF(X509) *s = sk_X509_new_null();
    for (size_t i = 0; s && set && i < set->n; i++)
        if (!sk_X509_push(s, set->certs[i].x)) {
            sk_X509_free(s);
            return NULL;
        }
    return s;
}

static scep_err_t issued_cert(const omadm_platform_t *plat, const scep_buf_t *plain,
                              const scep_expect_t *exp, scep_certrep_t *rep, const char **why)
{
    scep_err_t err = SCEP_OK;
    STACK_OF(X509) *certs = plain->len ? signeddata_certs(plain->data, plain->len) : NULL;
    STACK_OF(X509) *trusted = NULL;
    if (!certs) {
        err = ossl_fail(why, SCEP_E_NOT_FOUND, "SUCCESS, but the envelope holds no certificates");
        goto out;
    }
    if ((err = certs_whole(certs, why)) != SCEP_OK)
        goto out;
    X509 *mine = NULL;
    for (int i = 0; i < sk_X509_num(certs) && !mine; i++) {
        EVP_PKEY *k = cert_key(sk_X509_value(certs, i));
        if (k && EVP_PKEY_eq(k, pkey_of(exp->csr_key)) == 1)
            mine = sk_X509_value(certs, i);
    }
    ERR_clear_error();
    if (!mine) {
        err = fail(why, SCEP_E_NOT_FOUND, "SUCCESS, but no certificate carries our public key");
        goto out;
    }
    trusted = certset_stack(exp->ca_certs);
    if (!trusted) {
        err = fail(why, SCEP_E_NOMEM, "out of memory");
        goto out;
    }
    if ((err = chain_check(mine, trusted, certs, exp->now, why)) != SCEP_OK)
        goto out;
    unsigned char *der = NULL;
    int n = i2d_X509(mine, &der);
    err = buf_take_der(plat, der, n, &rep->cert, why);
    /* the decoded certificate too, so that the caller need not decode it
     * again (without memory for it: only the DER) */
    if (err == SCEP_OK && X509_up_ref(mine) && !(rep->issued = cert_wrap(plat, mine)))
        X509_free(mine);
    ERR_clear_error();
out:
    sk_X509_free(trusted);
    sk_X509_pop_free(certs, X509_free);
    return err;
}

static scep_err_t check_expect(const scep_expect_t *exp, const char **why)
{
    if (!exp || !exp->verifier || !exp->ca_certs || !exp->transaction_id || !exp->nonce ||
        !exp->signer_cert || !key_ok(exp->signer_key) || !key_ok(exp->csr_key))
        return fail(why, SCEP_E_INVALID_ARG, "incomplete expectations");
    return SCEP_OK;
}

scep_err_t scep_certrep_parse(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                              const scep_expect_t *exp, scep_certrep_t *rep, const char **why)
{
    scep_err_t err;
    scep_buf_t env = {0}, plain = {0};
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si = NULL;
    if (!rep)
        return fail(why, SCEP_E_INVALID_ARG, "no output");
    scep_certrep_init(rep);
    if ((err = check_expect(exp, why)) != SCEP_OK || !der_len_ok(der, len, &err, why))
        return err;
    const unsigned char *p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (!cms || p != der + len) {
        err = ossl_fail(why, SCEP_E_MALFORMED, "CertRep is not one DER CMS ContentInfo");
        goto out;
    }
    if ((err = certrep_shape(cms, &si, rep, why)) != SCEP_OK ||
        (err = certrep_verify(plat, cms, si, exp->verifier, &env, why)) != SCEP_OK ||
        (err = certrep_attrs(si, exp, rep, why)) != SCEP_OK)
        goto out;
    if (rep->status != SCEP_STATUS_SUCCESS)
        goto out;
    if (env.len == 0) {
        err = fail(why, SCEP_E_NOT_FOUND, "SUCCESS without an envelope");
        goto out;
    }
    if ((err = envelope_open(plat, &env, exp, &plain, rep, why)) != SCEP_OK)
        goto out;
    err = issued_cert(plat, &plain, exp, rep, why);
out:
    if (err != SCEP_OK) {
        const char *d = rep->digest, *c = rep->cipher;
        scep_certrep_clear(plat, rep);
        rep->digest = d;   /* still useful in a report */
        rep->cipher = c;
    }
    scep_buf_free(plat, &plain);
    scep_buf_free(plat, &env);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return err;
}

/* ---- URLs ------------------------------------------------------------------------------------------- */

static bool unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encode s[0..n) after out[*k] (room checked by the caller). */
static void pct_append(char *out, size_t *k, const unsigned char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (unreserved(s[i])) {
            out[(*k)++] = (char)s[i];
        } else {
            out[(*k)++] = '%';
            out[(*k)++] = hx[s[i] >> 4];
            out[(*k)++] = hx[s[i] & 15];
        }
    }
}

static scep_err_t base64(const omadm_platform_t *plat, const uint8_t *msg, size_t len,
                         char **out, size_t *out_len, const char **why)
{
    size_t n = 4 * ((len + 2) / 3);
    char *b = plat_alloc(plat, n + 1);
    if (!b)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    b[0] = 0;
    if (len)
        EVP_EncodeBlock((unsigned char *)b, msg, (int)len);
    *out = b;
    *out_len = n;
    return SCEP_OK;
}

scep_err_t scep_url_get(const omadm_platform_t *plat, const char *base, const char *op,
                        const uint8_t *msg, size_t msg_len, char **out, const char **why)
{
    if (!base || !op || !out || (!msg && msg_len))
        return fail(why, SCEP_E_INVALID_ARG, "no base URL, operation or output");
    *out = NULL;
    size_t blen = strnlen(base, SCEP_MAX_TEXT + 1), olen = strnlen(op, 65);
    if (blen == 0 || blen > SCEP_MAX_TEXT || olen == 0 || olen > 64 || msg_len > SCEP_MAX_DER)
        return fail(why, SCEP_E_INVALID_ARG, "base URL or operation empty or too long");
    for (size_t i = 0; i < olen; i++)
        if (!isalpha((unsigned char)op[i]))
            return fail(why, SCEP_E_INVALID_ARG, "operation must be letters only");
    char *b64 = NULL;
    size_t mlen = msg ? msg_len : 0;
    const unsigned char *m = msg;
    if (msg && strcmp(op, "PKIOperation") == 0) {
        scep_err_t err = base64(plat, msg, msg_len, &b64, &mlen, why);
        if (err != SCEP_OK)
            return err;
        m = (const unsigned char *)b64;
    }
    size_t cap = blen + 1 + 10 + olen + (msg ? 9 + 3 * mlen : 0) + 1;
    char *url = plat_alloc(plat, cap);
    if (!url) {
        plat_free(plat, b64);
        return fail(why, SCEP_E_NOMEM, "out of memory");
    }
    size_t k = 0;
    memcpy(url, base, blen);
    k = blen;
    url[k++] = memchr(base, '?', blen) ? '&' : '?';
    memcpy(url + k, "operation=", 10);
    k += 10;
    memcpy(url + k, op, olen);
    k += olen;
    if (msg) {
        memcpy(url + k, "&message=", 9);
        k += 9;
        pct_append(url, &k, m, mlen);
    }
    url[k] = 0;
    plat_free(plat, b64);
    *out = url;
    return SCEP_OK;
}

scep_err_t scep_url_windows_base(const omadm_platform_t *plat, const char *base, char **out,
                                 const char **why)
{
    static const char suffix[] = "/pkiclient.exe";
    if (!base || !out)
        return fail(why, SCEP_E_INVALID_ARG, "no base URL or output");
    *out = NULL;
    size_t n = strnlen(base, SCEP_MAX_TEXT + 1), sl = sizeof suffix - 1;
    if (n == 0 || n > SCEP_MAX_TEXT || memchr(base, '?', n))
        return fail(why, SCEP_E_INVALID_ARG, "base URL empty, too long or with a query");
    bool has = n >= sl && strcasecmp(base + n - sl, suffix) == 0;
    while (!has && n > 0 && base[n - 1] == '/')
        n--;   /* "…/mscep.dll/" + "/pkiclient.exe" would double the slash */
    char *u = plat_alloc(plat, n + (has ? 0 : sl) + 1);
    if (!u)
        return fail(why, SCEP_E_NOMEM, "out of memory");
    memcpy(u, base, n);
    if (!has)
        memcpy(u + n, suffix, sl);
    u[n + (has ? 0 : sl)] = 0;
    *out = u;
    return SCEP_OK;
}
