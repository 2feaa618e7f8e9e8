/*
 * rsa_keygen.c - RSA key generation with the two prime searches running
 * at once.
 *
 * An RSA-2048 key costs two independent searches for a 1024-bit prime
 * (OpenSSL 3 tests each candidate with 64 Miller-Rabin rounds), and the
 * search is almost all of the time.  OpenSSL runs them one after the
 * other; here each runs in its own thread with OpenSSL's own prime
 * generator (BN_generate_prime_ex2, top two bits set so that n has exactly
 * `bits` bits), and the key is assembled from p and q with the standard
 * CRT values and checked (pairwise consistency) before it is used.  On a
 * machine with two cores the key comes in about the time of the slower
 * search.  Any failure falls back to EVP_PKEY_Q_keygen.
 */
#include "rsa_keygen.h"

#include <pthread.h>
#include <stdbool.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

typedef struct search {
    int bits;
    const BIGNUM *e;
    BIGNUM *p;
    int ok;
} search_t;

/* A prime p of `bits` bits with gcd(p - 1, e) = 1. */
static void *find_prime(void *arg)
{
    search_t *s = arg;
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *pm1 = BN_new(), *g = BN_new();
    s->p = BN_secure_new();
    s->ok = 0;
    for (int tries = 0; ctx && pm1 && g && s->p && tries < 100; tries++) {
        if (!BN_generate_prime_ex2(s->p, s->bits, 0, NULL, NULL, NULL, ctx) ||
            !BN_sub(pm1, s->p, BN_value_one()) || !BN_gcd(g, pm1, s->e, ctx))
            break;
        if (BN_is_one(g)) {
            s->ok = 1;
            break;
        }
    }
    BN_free(pm1);
    BN_free(g);
    BN_CTX_free(ctx);
    return NULL;
}

/* p and q far enough apart: |p - q| > 2^(bits/2 - 100) (FIPS 186-4 B.3.1). */
static int far_apart(const BIGNUM *p, const BIGNUM *q, int half)
{
    BIGNUM *d = BN_new();
    int ok = d && BN_sub(d, p, q) && BN_num_bits(d) > half - 100;
    BN_free(d);
    return ok;
}

static EVP_PKEY *assemble(const BIGNUM *p, const BIGNUM *q, const BIGNUM *e, int bits)
{
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *n = BN_new(), *d = BN_secure_new(), *pm1 = BN_secure_new(), *qm1 = BN_secure_new();
    BIGNUM *g = BN_secure_new(), *lcm = BN_secure_new(), *dmp1 = BN_secure_new();
    BIGNUM *dmq1 = BN_secure_new(), *iqmp = BN_secure_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL, *check = NULL;
    EVP_PKEY *pkey = NULL;
    /* p > q, so that iqmp = q^-1 mod p exists as usual */
    if (BN_cmp(p, q) < 0) {
        const BIGNUM *t = p;
        p = q;
        q = t;
    }
    int ok = ctx && n && d && pm1 && qm1 && g && lcm && dmp1 && dmq1 && iqmp && bld &&
             BN_mul(n, p, q, ctx) && BN_num_bits(n) == bits && BN_sub(pm1, p, BN_value_one()) &&
             BN_sub(qm1, q, BN_value_one()) && BN_gcd(g, pm1, qm1, ctx) &&
             BN_mul(lcm, pm1, qm1, ctx) && BN_div(lcm, NULL, lcm, g, ctx) &&
             BN_mod_inverse(d, e, lcm, ctx) && BN_mod(dmp1, d, pm1, ctx) &&
             BN_mod(dmq1, d, qm1, ctx) && BN_mod_inverse(iqmp, q, p, ctx) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp) &&
             (params = OSSL_PARAM_BLD_to_param(bld)) &&
             (pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
             EVP_PKEY_fromdata_init(pctx) > 0 &&
             EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEYPAIR, params) > 0 &&
             (check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) &&
             EVP_PKEY_pairwise_check(check) > 0;
    if (!ok) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_clear_free(d);
    BN_clear_free(pm1);
    BN_clear_free(qm1);
    BN_clear_free(g);
    BN_clear_free(lcm);
    BN_clear_free(dmp1);
    BN_clear_free(dmq1);
    BN_clear_free(iqmp);
    BN_CTX_free(ctx);
    return pkey;
}

EVP_PKEY *rsa_keygen(unsigned bits)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *e = BN_new();
    if (e && BN_set_word(e, RSA_F4)) {
        for (int round = 0; !pkey && round < 4; round++) {
            search_t s[2] = {{(int)bits / 2, e, NULL, 0}, {(int)bits / 2, e, NULL, 0}};
            pthread_t t;
            bool threaded = pthread_create(&t, NULL, find_prime, &s[1]) == 0;
            find_prime(&s[0]);
            if (threaded)
                pthread_join(t, NULL);
            else
                find_prime(&s[1]);
            if (s[0].ok && s[1].ok && BN_cmp(s[0].p, s[1].p) &&
                far_apart(s[0].p, s[1].p, (int)bits / 2))
                pkey = assemble(s[0].p, s[1].p, e, (int)bits);
            BN_clear_free(s[0].p);
            BN_clear_free(s[1].p);
        }
    }
    BN_free(e);
    /* OpenSSL's own, one prime after the other, if anything above failed */
    return pkey ? pkey : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}
