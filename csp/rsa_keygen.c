/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rsa_keygen.c - RSA key generation with the two prime searches running
 * at once.
 *
 * An RSA-2048 key costs two independent searches for a 1024-bit prime
 * (OpenSSL 3 tests each candidate with 64 Miller-Rabin rounds), and the
 * search is almost all of the time.  OpenSSL runs them one after the
 * other; here two threads search with OpenSSL's own prime generator
 * (BN_generate_prime_ex2, top two bits set so that n has exactly `bits`
 * bits), and the key is assembled from p and q with the standard CRT
 * values and checked (pairwise consistency) before it is used.  Any
 * failure falls back to EVP_PKEY_Q_keygen.
 *
 * Everything here is OpenSSL's, not the host's platform table: the prime
 * candidates come from OpenSSL's default DRBG (BN_generate_prime_ex2), and
 * the numbers and the key live in OpenSSL's (secure) heap.  A host that
 * must govern that randomness or memory does it through OpenSSL (a DRBG
 * seed source, CRYPTO_set_mem_functions), before the library is used.
 */
#include "rsa_keygen.h"

#include <pthread.h>
#include <stdbool.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

/* Both threads search; each starts on its own prime and, once that is
 * found, helps with the other, and a search whose prime another thread
 * found meanwhile gives up at once (the BN_GENCB callback).  With prime
 * search times that are close to memoryless this brings the expected time
 * from 1.5 to 1 search. */
typedef struct shared {
    pthread_mutex_t mu;
    BIGNUM *slot[2];           /* p and q once found */
    const BIGNUM *e;
    int bits;                  /* of each prime */
    bool failed;
} shared_t;

typedef struct worker {
    shared_t *sh;
    int want;                  /* the slot this worker searches for now */
} worker_t;

static int far_apart(const BIGNUM *p, const BIGNUM *q, int half);

static bool done_with(shared_t *sh, int slot)
{
    pthread_mutex_lock(&sh->mu);
    bool done = sh->slot[slot] != NULL || sh->failed;
    pthread_mutex_unlock(&sh->mu);
    return done;
}

static int keep_going(int a, int b, BN_GENCB *cb)
{
    (void)a;
    (void)b;
    worker_t *w = BN_GENCB_get_arg(cb);
    return !done_with(w->sh, w->want);
}

static void *search(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    BN_CTX *ctx = BN_CTX_secure_new();
    BN_GENCB *cb = BN_GENCB_new();
    BIGNUM *cand = BN_secure_new(), *pm1 = BN_new(), *g = BN_new();
    bool ok = ctx && cb && cand && pm1 && g;
    if (ok)
        BN_GENCB_set(cb, keep_going, w);
    for (int tries = 0; ok && tries < 200; tries++) {
        pthread_mutex_lock(&sh->mu);
        if (sh->slot[w->want])
            w->want = 1 - w->want;
        bool finished = sh->failed || (sh->slot[0] && sh->slot[1]);
        pthread_mutex_unlock(&sh->mu);
        if (finished)
            break;
        if (!BN_generate_prime_ex2(cand, sh->bits, 0, NULL, NULL, cb, ctx)) {
            if (done_with(sh, w->want))
                continue; /* given up: another thread found it */
            ok = false;
            break;
        }
        /* gcd(p - 1, e) = 1, as RSA needs */
        if (!BN_sub(pm1, cand, BN_value_one()) || !BN_gcd(g, pm1, sh->e, ctx)) {
            ok = false;
            break;
        }
        if (!BN_is_one(g))
            continue;
        pthread_mutex_lock(&sh->mu);
        const BIGNUM *other = sh->slot[1 - w->want];
        if (!sh->slot[w->want] &&
            (!other || (BN_cmp(cand, other) && far_apart(cand, other, sh->bits)))) {
            sh->slot[w->want] = cand;
            cand = BN_secure_new();
            ok = cand != NULL;
        }
        pthread_mutex_unlock(&sh->mu);
    }
    if (!ok) {
        pthread_mutex_lock(&sh->mu);
        sh->failed = true;
        pthread_mutex_unlock(&sh->mu);
    }
    BN_clear_free(cand);
    BN_free(pm1);
    BN_free(g);
    BN_GENCB_free(cb);
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

/* The randomness and memory of the key are OpenSSL's (see the top). */
EVP_PKEY *rsa_keygen(unsigned bits)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *e = BN_new();
    if (e && BN_set_word(e, RSA_F4)) {
        for (int round = 0; !pkey && round < 4; round++) {
            shared_t sh = {.e = e, .bits = (int)bits / 2};
            if (pthread_mutex_init(&sh.mu, NULL))
                break;
            worker_t w[2] = {{&sh, 0}, {&sh, 1}};
            pthread_t t;
            bool threaded = pthread_create(&t, NULL, search, &w[1]) == 0;
            search(&w[0]); /* without a thread this one finds both */
            if (threaded)
                pthread_join(t, NULL);
            pthread_mutex_destroy(&sh.mu);
            if (!sh.failed && sh.slot[0] && sh.slot[1])
                pkey = assemble(sh.slot[0], sh.slot[1], e, (int)bits);
            BN_clear_free(sh.slot[0]);
            BN_clear_free(sh.slot[1]);
        }
    }
    BN_free(e);
    /* OpenSSL's own, one prime after the other, if anything above failed */
    return pkey ? pkey : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}
