/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c - see pool.h.
 */
#include "pool.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define POOL_FILE_HEAD "storebench-pool 1\n"
#define T_2024_01_01 1704067200
#define T_2026_01_01 1767225600
#define T_2034_01_01 2019686400
#define T_2036_01_01 2082758400

/* thumbprint and base64 of c->der */
static void finish(pool_cert_t *c)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(c->der, c->der_len, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        bench_die("cannot compute a SHA-1");
    for (unsigned i = 0; i < 20; i++) {
        c->thumb[2 * i] = hex[md[i] >> 4];
        c->thumb[2 * i + 1] = hex[md[i] & 15];
    }
    c->thumb[POOL_THUMB_LEN] = 0;
    c->b64 = bench_xmalloc(4 * ((c->der_len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)c->b64, c->der, (int)c->der_len);
}

/* x signed by key, as DER into c (thumbprint and base64 too). */
static void sign_into(X509 *x, EVP_PKEY *key, pool_cert_t *c, const char *what)
{
    if (!X509_sign(x, key, EVP_sha256()))
        bench_die("cannot sign %s", what);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0)
        bench_die("cannot encode %s", what);
    c->der = bench_xmalloc((size_t)n);
    memcpy(c->der, der, (size_t)n);
    c->der_len = (size_t)n;
    OPENSSL_free(der);
    finish(c);
}

static void add_name(X509_NAME *name, const char *field, const char *value)
{
    if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC, (const unsigned char *)value, -1,
                                    -1, 0))
        bench_die("cannot build a certificate name");
}

/* ---- many certificates on one EC key ---- */

/* The key and its public point, encoded once. */
typedef struct signer {
    EVP_PKEY *key;
    unsigned char point[133];
    size_t point_len;
} signer_t;

/* Set the certificate's SubjectPublicKeyInfo from the encoded point:
 * X509_set_pubkey() would run OpenSSL 3's encoder and decoder for every
 * certificate, three quarters of the time it takes to make one. */
static int set_pubkey(X509 *x, const signer_t *sg)
{
    unsigned char *penc = OPENSSL_memdup(sg->point, sg->point_len);
    return penc && X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x),
                                          OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                          OBJ_nid2obj(NID_X9_62_prime256v1), penc,
                                          (int)sg->point_len);
}

static void make_ec_cert(const signer_t *sg, unsigned i, const char *cn_prefix, pool_cert_t *c)
{
    char cn[128];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    snprintf(cn, sizeof cn, "%s %u", cn_prefix, i);
    if (!x || !name || !bc)
        bench_die("out of memory");
    add_name(name, "O", "omadm bench");
    add_name(name, "CN", cn);
    if (!X509_set_version(x, 2) ||
        !ASN1_INTEGER_set_int64(X509_get_serialNumber(x), (int64_t)i + 1) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), T_2024_01_01) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), T_2034_01_01) || !set_pubkey(x, sg))
        bench_die("cannot build certificate %u", i);
    bc->ca = 0xff;
    if (!X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0))
        bench_die("cannot build certificate %u", i);
    sign_into(x, sg->key, c, "a certificate");
    BASIC_CONSTRAINTS_free(bc);
    X509_NAME_free(name);
    X509_free(x);
}

void pool_make(pool_t *p, size_t n, const char *cn_prefix)
{
    signer_t sg = {.key = EVP_EC_gen("P-256")};
    if (!sg.key || !EVP_PKEY_get_octet_string_param(sg.key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                    sg.point, sizeof sg.point, &sg.point_len))
        bench_die("cannot generate an EC P-256 key");
    p->c = bench_xmalloc(n * sizeof *p->c);
    p->n = n;
    for (size_t i = 0; i < n; i++)
        make_ec_cert(&sg, (unsigned)i, cn_prefix, &p->c[i]);
    /* the first one must parse back, with the key it was signed with */
    const unsigned char *q = p->c[0].der;
    X509 *x = n ? d2i_X509(NULL, &q, (long)p->c[0].der_len) : NULL;
    if (n && (!x || X509_verify(x, sg.key) != 1))
        bench_die("the generated certificates do not verify");
    X509_free(x);
    EVP_PKEY_free(sg.key);
}

/* ---- one RSA CA ---- */

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e || !X509_add_ext(x, e, -1))
        bench_die("cannot add extension %s", value);
    X509_EXTENSION_free(e);
}

void pool_make_rsa_ca(pool_cert_t *c, const char *ou, const char *cn)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!key)
        bench_die("cannot generate an RSA-2048 key");
    if (!x || !name)
        bench_die("out of memory");
    add_name(name, "O", "omadm bench");
    add_name(name, "OU", ou);
    add_name(name, "CN", cn);
    if (!X509_set_version(x, 2) || !ASN1_INTEGER_set_int64(X509_get_serialNumber(x), 1) ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), T_2026_01_01) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), T_2036_01_01) || !X509_set_pubkey(x, key))
        bench_die("cannot build the RSA CA certificate");
    /* the extensions `openssl req -x509` gives a CA, and its key usage */
    add_ext(x, NID_subject_key_identifier, "hash");
    add_ext(x, NID_authority_key_identifier, "keyid:always");
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign");
    sign_into(x, key, c, "the RSA CA certificate");
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- files ---- */

void pool_save(const pool_t *p, const char *file)
{
    FILE *f = fopen(file, "wb");
    if (!f)
        bench_die("%s: %s", file, strerror(errno));
    fputs(POOL_FILE_HEAD, f);
    for (size_t i = 0; i < p->n; i++) {
        uint32_t len = (uint32_t)p->c[i].der_len;
        fwrite(&len, sizeof len, 1, f);
        fwrite(p->c[i].der, 1, len, f);
    }
    if (fclose(f))
        bench_die("%s: write failed", file);
}

bool pool_load(pool_t *p, const char *file)
{
    FILE *f = fopen(file, "rb");
    char head[32];
    if (!f)
        return false;
    if (!fgets(head, sizeof head, f) || strcmp(head, POOL_FILE_HEAD))
        bench_die("%s: not a file of certificates", file);
    size_t cap = 0;
    uint32_t len;
    memset(p, 0, sizeof *p);
    while (fread(&len, sizeof len, 1, f) == 1) {
        if (p->n == cap) {
            cap = cap ? cap * 2 : 1024;
            p->c = bench_xrealloc(p->c, cap * sizeof *p->c);
        }
        pool_cert_t *c = &p->c[p->n++];
        c->der = bench_xmalloc(len);
        c->der_len = len;
        if (fread(c->der, 1, len, f) != len)
            bench_die("%s: truncated", file);
        finish(c);
    }
    fclose(f);
    return true;
}

void pool_cert_free(pool_cert_t *c)
{
    free(c->der);
    free(c->b64);
    c->der = NULL;
    c->b64 = NULL;
}

void pool_free(pool_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        pool_cert_free(&p->c[i]);
    free(p->c);
    p->c = NULL;
    p->n = 0;
}
