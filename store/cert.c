/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cert.c - certificate parsing and rendering on OpenSSL.
 */
#include "cert.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform.h"

bool cert_thumb_normalise(const char *name, char upper[CERT_THUMB_HEX + 1])
{
    size_t i = 0;
    /* each character's upper-case hex digit, 0 for any other: by table
     * (no locale, and no branch on digits against letters, which hex text
     * mixes at random) */
    static const char up[256] = {
        ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4', ['5'] = '5',
        ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9', ['A'] = 'A', ['B'] = 'B',
        ['C'] = 'C', ['D'] = 'D', ['E'] = 'E', ['F'] = 'F', ['a'] = 'A', ['b'] = 'B',
        ['c'] = 'C', ['d'] = 'D', ['e'] = 'E', ['f'] = 'F'};
    for (; name[i] && i < CERT_THUMB_HEX; i++)
        if (!(upper[i] = up[(unsigned char)name[i]]))
            return false;
    upper[i] = 0;
    return i == CERT_THUMB_HEX && !name[i];
}

int cert_thumbprint(const uint8_t *der, size_t len, char out[CERT_THUMB_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789ABCDEF";
    if (!EVP_Digest(der, len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[CERT_THUMB_HEX] = 0;
    return 0;
}

/* Strip whitespace; base64-decode; NULL when not base64, or (*oom) when
 * memory ran out. */
static uint8_t *b64_decode(const omadm_platform_t *plat, const uint8_t *data, size_t len,
                           size_t *out_len, bool *oom)
{
    char *clean = plat_alloc(plat, len + 1);
    uint8_t *out = NULL;
    size_t n = 0, pad = 0;
    *oom = !clean;
    if (!clean)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];
        if (isspace(c))
            continue;
        if (c == '=')
            pad++;
        else if (!(isalnum(c) || c == '+' || c == '/') || pad)
            goto out;
        clean[n++] = (char)c;
    }
    if (n == 0 || n % 4 || pad > 2 || n > INT32_MAX)
        goto out;
    out = plat_alloc(plat, n / 4 * 3 + 1);
    *oom = !out;
    if (!out)
        goto out;
    int got = EVP_DecodeBlock(out, (unsigned char *)clean, (int)n);
    if (got < 0) {
        plat_free(plat, out);
        out = NULL;
        goto out;
    }
    *out_len = (size_t)got - pad;
out:
    plat_free(plat, clean);
    return out;
}

/*
 * A certificate as this layer reads it: X.509's structure (RFC 5280, as
 * OpenSSL's X509 template reads it, the tbsCertificate's own encoding kept
 * as OpenSSL keeps it) with the subjectPublicKeyInfo read as its algorithm
 * and bits.  OpenSSL 3.0's d2i_X509 also turns the key into an EVP_PKEY,
 * looking its decoder up among the providers on every call (about 100 µs
 * here), for a key the store never uses: a CA's key is OpenSSL's business
 * when it verifies a chain, from the CApath file.
 */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *bits;
} CERT_SPKI;

typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    CERT_SPKI *key;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) *extensions;
} CERT_TBS;

typedef struct {
    CERT_TBS *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} CERT_ASN1;

ASN1_SEQUENCE(CERT_SPKI) = {
    ASN1_SIMPLE(CERT_SPKI, algor, X509_ALGOR),
    ASN1_SIMPLE(CERT_SPKI, bits, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(CERT_SPKI)

ASN1_SEQUENCE_enc(CERT_TBS, enc, 0) = {
    ASN1_EXP_OPT(CERT_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(CERT_TBS, serial, ASN1_INTEGER),
    ASN1_SIMPLE(CERT_TBS, signature, X509_ALGOR),
    ASN1_SIMPLE(CERT_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(CERT_TBS, validity, X509_VAL),
    ASN1_SIMPLE(CERT_TBS, subject, X509_NAME),
    ASN1_SIMPLE(CERT_TBS, key, CERT_SPKI),
    ASN1_IMP_OPT(CERT_TBS, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(CERT_TBS, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(CERT_TBS, extensions, X509_EXTENSION, 3)
} static_ASN1_SEQUENCE_END_ref(CERT_TBS, CERT_TBS)

ASN1_SEQUENCE(CERT_ASN1) = {
    ASN1_SIMPLE(CERT_ASN1, tbs, CERT_TBS),
    ASN1_SIMPLE(CERT_ASN1, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(CERT_ASN1, signature, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(CERT_ASN1)

/* Exactly one certificate in [der, der + len), or NULL. */
static CERT_ASN1 *cert_parse(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    CERT_ASN1 *c =
        (CERT_ASN1 *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CERT_ASN1));
    if (c && p != der + len) {
        ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CERT_ASN1));
        c = NULL;
    }
    return c;
}

static void cert_parsed_free(CERT_ASN1 *c)
{
    ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CERT_ASN1));
}

static int info_from_parsed(const omadm_platform_t *plat, const CERT_ASN1 *c,
                            const uint8_t *der, size_t len, cert_info_t *info);

/* 0 when der is exactly one certificate, encoded as OpenSSL encodes it
 * (DER: what OpenSSL writes for what it reads); -1 when it is not
 * one certificate; -3 when it is one but in another encoding (BER, a BIT
 * STRING with unused bits set, ...): OpenSSL would write other bytes for
 * it (in a PEM file, a CApath file), with another thumbprint; -2 when
 * that cannot be told (no memory).  info (when not NULL) gets the fields
 * of cert_info_from_der from the same parse, when 0 is returned. */
static int check_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                     cert_info_t *info)
{
    CERT_ASN1 *c = cert_parse(der, len);
    if (!c)
        return -1;
    unsigned char *again = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)c, &again, ASN1_ITEM_rptr(CERT_ASN1));
    int rc = n < 0 ? -2 : (size_t)n != len || memcmp(again, der, len) ? -3 : 0;
    OPENSSL_free(again);
    /* the fields the store keeps, from this one parse; what fails here
     * after the parse and the encoding worked is memory */
    if (!rc && info && info_from_parsed(plat, c, der, len, info))
        rc = -2;
    cert_parsed_free(c);
    return rc;
}

/* check_der's answer as cert_decode's (-1 refused, -2 no memory), with
 * the reason. */
static int der_verdict(int checked, const char **why)
{
    if (checked == -1)
        *why = "not an X.509 certificate";
    else if (checked == -3)
        *why = "certificate not DER-encoded";
    else if (checked == -2)
        *why = "out of memory";
    return checked == -3 ? -1 : checked;
}

static bool has_text(const uint8_t *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(data + i, needle, n))
            return true;
    return false;
}

/* The names PEM_read_bio_X509 takes a block by. */
static bool pem_cert_name(const char *name)
{
    return !strcmp(name, PEM_STRING_X509) || !strcmp(name, PEM_STRING_X509_OLD);
}

/* Exactly one PEM certificate block (blocks of other kinds are skipped),
 * its bytes checked as check_der does.  Blocks are read raw: an encrypted
 * one (it has headers) is refused, never decrypted, so OpenSSL never asks
 * a terminal for a pass phrase on a server's behalf. */
static int from_pem(const omadm_platform_t *plat, const uint8_t *data, size_t len, uint8_t **der,
                    size_t *der_len, cert_info_t *info, const char **why)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    unsigned char *body = NULL;
    long body_len = 0;
    int blocks = 0, rc = -1;
    bool headers = false;
    *why = "PEM text is not one X.509 certificate";
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *bytes = NULL;
        long n = 0;
        if (!bio || !PEM_read_bio(bio, &name, &header, &bytes, &n))
            break;
        if (pem_cert_name(name) && blocks++ == 0) {
            headers = *header != 0;
            body = bytes;
            body_len = n;
            bytes = NULL;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(bytes);
    }
    ERR_clear_error(); /* the end of the text is an error to PEM_read_bio */
    if (blocks == 1 && headers)
        *why = "encrypted PEM";
    else if (blocks == 1)
        rc = der_verdict(check_der(plat, body, (size_t)body_len, info), why);
    if (!rc) {
        *der = plat_alloc(plat, (size_t)body_len);
        if (*der) {
            memcpy(*der, body, (size_t)body_len);
            *der_len = (size_t)body_len;
        } else {
            *why = "out of memory";
            rc = -2;
        }
    }
    if (rc && info)
        cert_info_free(plat, info);
    OPENSSL_free(body);
    BIO_free(bio);
    return rc;
}

int cert_pem_der(const omadm_platform_t *plat, const char *text, size_t len, uint8_t **der,
                 size_t *der_len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    *der = NULL;
    const char *b = memmem(text, len, begin, sizeof begin - 1);
    if (!b)
        return -1;
    b += sizeof begin - 1;
    const char *e = memmem(b, len - (size_t)(b - text), end, sizeof end - 1);
    if (!e)
        return -1;
    bool oom = false;
    *der = b64_decode(plat, (const uint8_t *)b, (size_t)(e - b), der_len, &oom);
    return *der ? 0 : oom ? -2 : -1;
}

int cert_b64_decode(const omadm_platform_t *plat, const char *b64, uint8_t **out, size_t *len)
{
    bool oom = false;
    *out = b64_decode(plat, (const uint8_t *)b64, strlen(b64), len, &oom);
    return *out ? 0 : oom ? -2 : -1;
}

int cert_decode(const omadm_platform_t *plat, const uint8_t *data, size_t len, bool raw_ok,
                uint8_t **der, size_t *der_len, const char **why)
{
    return cert_decode_info(plat, data, len, raw_ok, der, der_len, NULL, why);
}

int cert_decode_info(const omadm_platform_t *plat, const uint8_t *data, size_t len, bool raw_ok,
                     uint8_t **der, size_t *der_len, cert_info_t *info, const char **why)
{
    *der = NULL;
    if (info)
        memset(info, 0, sizeof *info);
    if (len > 16u << 20) {
        *why = "certificate too large";
        return -1;
    }
    if (has_text(data, len, "-----BEGIN"))
        return from_pem(plat, data, len, der, der_len, info, why);
    /* raw DER, when allowed and it parses; else base64 (whose first
     * character is never 0x30's '0') */
    int raw = raw_ok && len && data[0] == 0x30 ? check_der(plat, data, len, info) : -1;
    if (raw != -1 && raw != 0)
        return der_verdict(raw, why);
    if (raw == 0) {
        *der = plat_alloc(plat, len);
        if (!*der) {
            if (info)
                cert_info_free(plat, info);
            *why = "out of memory";
            return -2;
        }
        memcpy(*der, data, len);
        *der_len = len;
        return 0;
    }
    size_t n = 0;
    bool oom = false;
    uint8_t *bytes = b64_decode(plat, data, len, &n, &oom);
    if (!bytes) {
        *why = oom ? "out of memory" : "not base64";
        return oom ? -2 : -1;
    }
    int checked = check_der(plat, bytes, n, info);
    if (checked) {
        plat_free(plat, bytes);
        return der_verdict(checked, why);
    }
    *der = bytes;
    *der_len = n;
    return 0;
}

static char *name_text(const omadm_platform_t *plat, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (!bio)
        return NULL;
    /* as Windows' CertNameToStr(CERT_X500_NAME_STR) shows it: encoded
     * order, "CN=Root, O=Example", RFC 4514 escaping, UTF-8 kept */
    unsigned long flags = (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | XN_FLAG_SEP_CPLUS_SPC |
                          XN_FLAG_FN_SN;
    if (X509_NAME_print_ex(bio, name, 0, flags) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        out = plat_alloc(plat, (size_t)n + 1);
        if (out) {
            memcpy(out, p, (size_t)n);
            out[n] = 0;
        }
    }
    BIO_free(bio);
    return out;
}

static void time_text(const ASN1_TIME *t, char out[24])
{
    struct tm tm;
    out[0] = 0;
    if (t && ASN1_TIME_to_tm(t, &tm))
        strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Microsoft template extensions: v1 (1.3.6.1.4.1.311.20.2) carries the
 * name as a BMPString; v2 (1.3.6.1.4.1.311.21.7) a SEQUENCE starting with
 * the template OID. */
static char *template_name(const omadm_platform_t *plat, const STACK_OF(X509_EXTENSION) *exts)
{
    static const char *const oids[] = {"1.3.6.1.4.1.311.20.2", "1.3.6.1.4.1.311.21.7"};
    for (size_t k = 0; k < 2; k++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(oids[k], 1);
        int idx = obj ? X509v3_get_ext_by_OBJ(exts, obj, -1) : -1;
        ASN1_OBJECT_free(obj);
        if (idx < 0)
            continue;
        X509_EXTENSION *ext = X509v3_get_ext(exts, idx);
        const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
        const unsigned char *p = ASN1_STRING_get0_data(os);
        long len = ASN1_STRING_length(os);
        char *out = NULL;
        if (k == 0) {
            ASN1_TYPE *t = d2i_ASN1_TYPE(NULL, &p, len);
            int type = t ? ASN1_TYPE_get(t) : -1;
            bool text = type == V_ASN1_BMPSTRING || type == V_ASN1_UTF8STRING ||
                        type == V_ASN1_PRINTABLESTRING || type == V_ASN1_IA5STRING;
            unsigned char *utf8 = NULL;
            int n = text ? ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string) : -1;
            if (n >= 0) {
                out = plat_alloc(plat, (size_t)n + 1);
                if (out) {
                    memcpy(out, utf8, (size_t)n);
                    out[n] = 0;
                }
            }
            OPENSSL_free(utf8);
            ASN1_TYPE_free(t);
        } else {
            long l;
            int tag, cls;
            if (ASN1_get_object(&p, &l, &tag, &cls, len) & 0x80 || tag != V_ASN1_SEQUENCE)
                return plat_strdup(plat, "");
            ASN1_OBJECT *tmpl = d2i_ASN1_OBJECT(NULL, &p, l);
            char buf[128];
            if (tmpl && OBJ_obj2txt(buf, sizeof buf, tmpl, 1) > 0)
                out = plat_strdup(plat, buf);
            ASN1_OBJECT_free(tmpl);
        }
        return out ? out : plat_strdup(plat, "");
    }
    return plat_strdup(plat, "");
}

/* X509_subject_name_hash, which answers 0 when it cannot hash (no
 * memory): a CApath name made of that would be wrong, not missing. */
static int subject_hash(const X509_NAME *name, unsigned long *hash)
{
    int ok = 0;
    *hash = X509_NAME_hash_ex(name, NULL, NULL, &ok);
    return ok ? 0 : -1;
}

static int info_from_parsed(const omadm_platform_t *plat, const CERT_ASN1 *c,
                            const uint8_t *der, size_t len, cert_info_t *info)
{
    const CERT_TBS *t = c->tbs;
    memset(info, 0, sizeof *info);
    if (cert_thumbprint(der, len, info->thumb))
        return -1;
    info->issued_by = name_text(plat, t->issuer);
    info->issued_to = name_text(plat, t->subject);
    time_text(t->validity->notBefore, info->valid_from);
    time_text(t->validity->notAfter, info->valid_to);
    info->template_name = template_name(plat, t->extensions);
    if (subject_hash(t->subject, &info->subject_hash) || !info->issued_by || !info->issued_to ||
        !info->template_name) {
        cert_info_free(plat, info);
        return -1;
    }
    return 0;
}

int cert_info_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                       cert_info_t *info)
{
    memset(info, 0, sizeof *info);
    CERT_ASN1 *c = cert_parse(der, len);
    int rc = c ? info_from_parsed(plat, c, der, len, info) : -1;
    cert_parsed_free(c);
    return rc;
}

int cert_subject_hash(const uint8_t *der, size_t len, unsigned long *hash)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x)
        return -1;
    int rc = subject_hash(X509_get_subject_name(x), hash);
    X509_free(x);
    return rc;
}

/* The next DER element of [*p, end): its tag and class must be tag and
 * cls, definite length, inside the input.  *p moves past it; *content and
 * *clen give its contents.  0 or -1. */
static int der_next(const unsigned char **p, const unsigned char *end, int tag, int cls,
                    const unsigned char **content, long *clen)
{
    const unsigned char *q = *p;
    long len = 0;
    int t = 0, c = 0;
    if (q >= end)
        return -1;
    ERR_set_mark(); /* a malformed header leaves nothing in the error queue */
    int flags = ASN1_get_object(&q, &len, &t, &c, end - q);
    ERR_pop_to_mark();
    /* 0x80: an error; 0x20: constructed; 0x01: indefinite length (not DER) */
    if ((flags & 0x81) || t != tag || c != cls || len > end - q ||
        (tag == V_ASN1_SEQUENCE && !(flags & 0x20)))
        return -1;
    *content = q;
    *clen = len;
    *p = q + len;
    return 0;
}

int cert_der_subject_hash(const uint8_t *der, size_t len, unsigned long *hash)
{
    const unsigned char *p = der, *end = der + len, *tbs, *c;
    long n;
    /* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
     * OPTIONAL, serialNumber, signature, issuer, validity, subject, ... } } */
    if (len > LONG_MAX || der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n))
        return -1;
    p = c;
    end = c + n;
    if (der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &tbs, &n))
        return -1;
    p = tbs;
    end = tbs + n;
    const unsigned char *v = p;
    if (der_next(&v, end, 0, V_ASN1_CONTEXT_SPECIFIC, &c, &n) == 0)
        p = v; /* the version */
    if (der_next(&p, end, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, &c, &n))
        return -1;
    for (int i = 0; i < 3; i++) /* signature, issuer, validity */
        if (der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n))
            return -1;
    const unsigned char *subject = p;
    if (der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &c, &n))
        return -1;
    X509_NAME *name = d2i_X509_NAME(NULL, &subject, p - subject);
    if (!name)
        return -1; /* not a Name, or no memory: OpenSSL says which */
    int ok = 0;
    *hash = X509_NAME_hash_ex(name, NULL, NULL, &ok);
    X509_NAME_free(name);
    return ok ? 0 : -1;
}

void cert_info_free(const omadm_platform_t *plat, cert_info_t *info)
{
    plat_free(plat, info->issued_by);
    plat_free(plat, info->issued_to);
    plat_free(plat, info->template_name);
    memset(info, 0, sizeof *info);
}

char *cert_b64(const omadm_platform_t *plat, const uint8_t *der, size_t len)
{
    if (len > INT32_MAX / 2)
        return NULL;
    char *out = plat_alloc(plat, 4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, der, (int)len);
    return out;
}

char *cert_pem(const omadm_platform_t *plat, const uint8_t *der, size_t len, size_t *pem_len)
{
    char *b64 = cert_b64(plat, der, len);
    if (!b64)
        return NULL;
    size_t n = strlen(b64);
    size_t cap = n + n / 64 + 80;
    char *out = plat_alloc(plat, cap);
    if (!out) {
        plat_free(plat, b64);
        return NULL;
    }
    size_t w = (size_t)snprintf(out, cap, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < n; i += 64) {
        size_t k = n - i < 64 ? n - i : 64;
        memcpy(out + w, b64 + i, k);
        w += k;
        out[w++] = '\n';
    }
    w += (size_t)snprintf(out + w, cap - w, "-----END CERTIFICATE-----\n");
    plat_free(plat, b64);
    if (pem_len)
        *pem_len = w;
    return out;
}
