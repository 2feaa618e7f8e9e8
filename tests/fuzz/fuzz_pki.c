/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pki.c - see fuzz_pki.h.
 */
#include "fuzz_pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "fuzz_common.h"

#define OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"

const char FUZZ_PKI_CA_KEY[] =
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

const char FUZZ_PKI_DEV_KEY[] =
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

const char FUZZ_PKI_SUB_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAKvtTiYNkSmyPnyb\n"
    "/t3PQJacgcycdhMyXoW6LCQv58rSsoQ41u3NbzfOVqliCNT0ahX7ciJbvPuAj8Ug\n"
    "WWQka/jBbO4ly2nHBUkmohtMM/cKzkEFPiVOBsyNpX0fMUyqP/0FNLt2x9W25ayl\n"
    "vlJjYea6S+Y1rF21eD8vys02uzj3AgMBAAECgYEAoZdINVHZF0SVoI8KDDZIcYam\n"
    "JMcF32MfHjduV5DDHonMCaRWtmm4183S/B7NSEJ1FzYe/xYUWJpsBo4yFoJ5C2il\n"
    "gG7Tj+l6YM1SnxTE3WX1rRDLgA1I30+gZlpNtXNIoanjmU7qPkNJfx69954SNfqR\n"
    "Cx5LmWVJaYxicLgkiuECQQDf5JUL9t4picyQlq8Hgc6pOR2YcnY4GjrwLySbiXTg\n"
    "hdPw0msM3D/ndGzc4dLLEBqUuN5v1hLd73XYv7WNs0wRAkEAxJT7awf3Dp8IPBOx\n"
    "GFJxe4ybHO5COzqlXvCe8rJWhLL2YLrCFFlf7uvYwEZKAbv0g+/xukwCbn21B776\n"
    "aFhchwJASWtY4QKEWdTBS0zOesS7c0yygtJOKBmZ6DddZs/Nju7z0E4AIsh7ADhy\n"
    "loBLMqHGRazV7JCjwTmMSJadP6ljMQJATBY18clVcI1RTJ96jiVq0x0q9FmrvO0I\n"
    "EOUlQF6Sai4yemIOuH2XSgxzCoiqIF21WFPIxgihcE6rgOIEXdrFhQJAfqaj1LZI\n"
    "DYdcdg0PKp6CrmcLRgnl8755a5vgzxOgbccVW5IkH8v1Ml6FwziPooJ8akupWT4Y\n"
    "wmKYH7cq80Y/+g==\n"
    "-----END PRIVATE KEY-----\n";

EVP_PKEY *fuzz_pki_key(const char *pem)
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

X509 *fuzz_pki_cert(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                    const char *from, const char *to, bool ca)
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
    FUZZ_CHECK(ASN1_TIME_set_string(X509_getm_notBefore(x), from) &&
                   ASN1_TIME_set_string(X509_getm_notAfter(x), to),
               "fixture validity %s..%s", from, to);
    X509_set_pubkey(x, key);
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage,
                "critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment");
    } else {
        add_ext(x, issuer ? issuer : x, NID_authority_key_identifier, "keyid:always");
        add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,digitalSignature");
    }
    FUZZ_CHECK(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0, "fixture signature");
    return x;
}

void fuzz_pki_time(int64_t t, char buf[16])
{
    time_t tt = (time_t)t;
    struct tm tm;
    FUZZ_CHECK(gmtime_r(&tt, &tm) && strftime(buf, 16, "%Y%m%d%H%M%SZ", &tm) == 15, "time %lld",
               (long long)t);
}

uint8_t *fuzz_pki_der(X509 *x, size_t *len)
{
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    FUZZ_CHECK(n > 0, "fixture DER");
    *len = (size_t)n;
    return d;
}

X509 *fuzz_pki_x509_of(const omadm_platform_t *plat, const scep_cert_t *c)
{
    scep_buf_t b = {0};
    FUZZ_CHECK(scep_cert_to_der(plat, c, &b, NULL) == SCEP_OK, "scep_cert_to_der");
    const unsigned char *p = b.data;
    X509 *x = d2i_X509(NULL, &p, (long)b.len);
    scep_buf_free(plat, &b);
    FUZZ_CHECK(x != NULL, "a certificate of the library must encode as DER that parses");
    return x;
}

uint8_t *fuzz_pki_degenerate(X509 **certs, size_t n, size_t *len)
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

static bool dir_has(const char *dir)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/certrep.der", dir);
    return stat(p, &st) == 0;
}

bool fuzz_pki_capture(char *dir, size_t size)
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

uint8_t *fuzz_pki_slurp(const char *dir, const char *name, size_t *len)
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

const char *const fuzz_pki_ciphers[FUZZ_PKI_CIPHERS] = {"AES-128-CBC", "DES-EDE3-CBC",
                                                        "AES-256-CBC", "DES-CBC"};

uint8_t *fuzz_pki_envelope(X509 *to, const uint8_t *plain, size_t len, const char *cipher,
                           size_t *out_len)
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
    if (c && rc && in && sk_X509_push(rc, to))
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

/* ---- CertReps ---- */

void fuzz_pki_spec_parse(const uint8_t *p, size_t n, fuzz_pki_spec_t *s)
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

const char *fuzz_pki_spec_message_type(const fuzz_pki_spec_t *s)
{
    return s->text[1] ? s->text[1] : "3";
}

const char *fuzz_pki_spec_fail_info(const fuzz_pki_spec_t *s)
{
    return s->text[2] ? s->text[2] : "2";
}

bool fuzz_pki_spec_refused(const fuzz_pki_spec_t *s)
{
    return s->other_signer || s->digest == 5 || strcmp(fuzz_pki_spec_message_type(s), "3") ||
           s->bad_txid || s->bad_nonce;
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

uint8_t *fuzz_pki_certrep(const fuzz_pki_rep_t *r, const fuzz_pki_spec_t *s, size_t *len)
{
    static const char *const statuses[3] = {"0", "2", "3"};
    const uint8_t *content = NULL;
    uint8_t *own = NULL, *out = NULL;
    size_t content_len = 0;
    switch (s->content) {
    case 0:
        content = r->env[s->cipher];
        content_len = r->env_len[s->cipher];
        break;
    case 1:
        content = own = fuzz_pki_envelope(r->recipient, s->body, s->body_len,
                                          fuzz_pki_ciphers[s->cipher], &content_len);
        break;
    case 2:
        content = s->body;
        content_len = s->body_len;
        break;
    default:
        break;
    }
    unsigned flags = CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP | (content ? 0 : CMS_DETACHED);
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    X509 *sc = s->other_signer ? r->other : r->ca;
    EVP_PKEY *sk = s->other_signer ? r->other_key : r->ca_key;
    CMS_SignerInfo *si = cms ? CMS_add1_signer(cms, sc, sk, spec_md(s->digest), flags) : NULL;
    const char *status = s->status < 3 ? statuses[s->status] : s->text[0];
    const char *mt = fuzz_pki_spec_message_type(s);
    const char *fi = fuzz_pki_spec_fail_info(s);
    const char *txid = s->bad_txid ? "0123456789ABCDEF" : r->txid;
    uint8_t nonce[SCEP_NONCE_LEN];
    memcpy(nonce, r->nonce, sizeof nonce);
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
    free(own);
    ERR_clear_error();
    return out;
}
