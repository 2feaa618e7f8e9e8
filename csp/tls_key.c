/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_key.c - a TPM-held client key for a TLS library (omadm_certstore_tls_key,
 * docs/keys.md "TLS").
 *
 * A TLS library signs with the key in its own library context (curl's
 * SSL_CTX is in OpenSSL's default one), where the tpm2 provider's key does
 * not work: OpenSSL picks the default provider's RSA signature there and
 * hands it the key's public half only.  So the key given to the TLS library
 * is an RSA key of the default context whose private operation is the
 * TPM's: a key with its own RSA method, whose private "encryption" (the
 * signature primitive, after OpenSSL has padded: PKCS #1 v1.5 for TLS 1.2,
 * PSS for TLS 1.3) is a raw RSA decryption by the TPM (TPM2_RSA_Decrypt,
 * scheme NULL) of the TSS2 blob loaded under the provider's storage
 * primary.  Each operation opens its own connection to the TPM and closes
 * it (swtpm and /dev/tpm0 serve one connection at a time, and the key may
 * live for a whole session while enrollments need the TPM too).
 *
 * RSA methods are deprecated in OpenSSL 3 but supported for "foreign"
 * keys; this file alone uses them.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "certstore_internal.h"
#include "keystore_tpm.h"
#include "platform.h"

struct omadm_tls_key {
    EVP_PKEY *pkey;        /* the default context's RSA key with the TPM method */
    RSA_METHOD *meth;
};

#ifdef OMADM_HAVE_TSS2

#include "tss2_dl.h"

/* What the method needs: the TCTI and the key's blob parts. */
typedef struct tpm_rsa {
    char tcti[513];
    TPM2B_PUBLIC pub;
    TPM2B_PRIVATE priv;
} tpm_rsa_t;

static int rsa_index = -1;
static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;

static void make_index(void)
{
    rsa_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The raw RSA private operation on in (k bytes) by the TPM: out, k bytes. */
static int tpm_raw(const tpm_rsa_t *t, const uint8_t *in, size_t k, uint8_t *out)
{
    TSS2_TCTI_CONTEXT *tctx = NULL;
    ESYS_CONTEXT *esys = NULL;
    ESYS_TR parent = ESYS_TR_NONE, key = ESYS_TR_NONE;
    TPM2B_PUBLIC_KEY_RSA cipher = {0}, *plain = NULL;
    TPMT_RSA_DECRYPT scheme = {.scheme = TPM2_ALG_NULL};
    TPM2B_DATA label = {0};
    int ok = 0;
    if (k > sizeof cipher.buffer || ks_tpm_esys_open(t->tcti, &tctx, &esys, NULL) ||
        ks_tpm_primary(esys, &parent, NULL))
        goto out;
    if (TSS->Esys_Load(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &t->priv, &t->pub,
                  &key) != TSS2_RC_SUCCESS)
        goto out;
    cipher.size = (UINT16)k;
    memcpy(cipher.buffer, in, k);
    if (TSS->Esys_RSA_Decrypt(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &cipher, &scheme,
                         &label, &plain) != TSS2_RC_SUCCESS || !plain || plain->size > k)
        goto out;
    /* the TPM drops leading zero bytes */
    memset(out, 0, k - plain->size);
    memcpy(out + (k - plain->size), plain->buffer, plain->size);
    ok = 1;
out:
    if (plain) {
        OPENSSL_cleanse(plain, sizeof *plain);
        TSS->Esys_Free(plain);
    }
    if (key != ESYS_TR_NONE)
        TSS->Esys_FlushContext(esys, key);
    if (parent != ESYS_TR_NONE)
        TSS->Esys_FlushContext(esys, parent);
    ks_tpm_esys_close(&tctx, &esys);
    return ok;
}

/* RSA_private_encrypt: PKCS #1 type 1 padding here (or none: PSS came
 * padded), then the TPM's raw operation.  The signature's length, or -1. */
static int tpm_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
                        int padding)
{
    const tpm_rsa_t *t = RSA_get_ex_data(rsa, rsa_index);
    int k = RSA_size(rsa);
    uint8_t *em = OPENSSL_malloc((size_t)k);
    int ok = t && em && k > 0;
    if (ok && padding == RSA_PKCS1_PADDING)
        ok = RSA_padding_add_PKCS1_type_1(em, k, from, flen) == 1;
    else if (ok && padding == RSA_NO_PADDING && flen == k)
        memcpy(em, from, (size_t)k);
    else
        ok = 0;
    ok = ok && tpm_raw(t, em, (size_t)k, to);
    OPENSSL_clear_free(em, (size_t)(k > 0 ? k : 0));
    return ok ? k : -1;
}

static int tpm_finish(RSA *rsa)
{
    tpm_rsa_t *t = RSA_get_ex_data(rsa, rsa_index);
    if (t) {
        OPENSSL_clear_free(t, sizeof *t);
        RSA_set_ex_data(rsa, rsa_index, NULL);
    }
    return 1;
}

static omadm_error_t make_key(const char *tcti, const uint8_t *der, size_t len,
                              omadm_tls_key_t *k, const char **why)
{
    tpm_rsa_t *t = OPENSSL_zalloc(sizeof *t);
    RSA *rsa = NULL;
    BIGNUM *n = NULL, *e = NULL;
    if (!t || !CRYPTO_THREAD_run_once(&index_once, make_index) || rsa_index < 0) {
        OPENSSL_free(t);
        return OMADM_E_NOMEM;
    }
    snprintf(t->tcti, sizeof t->tcti, "%s", tcti);
    if (ks_tss2_parse(der, len, &t->pub, &t->priv, why) ||
        t->pub.publicArea.type != TPM2_ALG_RSA) {
        OPENSSL_clear_free(t, sizeof *t);
        if (why && !*why)
            *why = "not an RSA key";
        return OMADM_E_INVALID_ARG;
    }
    const TPMS_RSA_PARMS *rp = &t->pub.publicArea.parameters.rsaDetail;
    const TPM2B_PUBLIC_KEY_RSA *u = &t->pub.publicArea.unique.rsa;
    if (!(k->meth = RSA_meth_dup(RSA_get_default_method())) ||
        !RSA_meth_set1_name(k->meth, "omadm TPM key") ||
        !RSA_meth_set_priv_enc(k->meth, tpm_priv_enc) ||
        !RSA_meth_set_finish(k->meth, tpm_finish) || !(rsa = RSA_new()) ||
        !RSA_set_method(rsa, k->meth) || !(n = BN_bin2bn(u->buffer, u->size, NULL)) ||
        !(e = BN_new()) || !BN_set_word(e, rp->exponent ? rp->exponent : 65537) ||
        !RSA_set0_key(rsa, n, e, NULL)) {
        BN_free(n);
        BN_free(e);
        RSA_free(rsa);
        OPENSSL_clear_free(t, sizeof *t);
        return OMADM_E_NOMEM;
    }
    RSA_set_ex_data(rsa, rsa_index, t); /* tpm_finish frees it with rsa */
    if (!(k->pkey = EVP_PKEY_new()) || !EVP_PKEY_assign_RSA(k->pkey, rsa)) {
        RSA_free(rsa);
        return OMADM_E_NOMEM;
    }
    return OMADM_OK;
}

#endif

void omadm_tls_key_free(omadm_tls_key_t *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    RSA_meth_free(key->meth);
    OPENSSL_clear_free(key, sizeof *key);
}

void *omadm_tls_key_pkey(const omadm_tls_key_t *key)
{
    return key ? key->pkey : NULL;
}

omadm_error_t omadm_certstore_tls_key(omadm_certstore_t *cs, const char *key_pem, size_t len,
                                      omadm_tls_key_t **out, const char **why)
{
    static const char label[] = "TSS2 PRIVATE KEY";
    if (why)
        *why = NULL;
    if (!out)
        return OMADM_E_INVALID_ARG;
    *out = NULL;
    if (!cs || !key_pem || !len || len > 64 * 1024)
        return OMADM_E_INVALID_ARG;
    BIO *b = BIO_new_mem_buf(key_pem, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long dlen = 0;
    omadm_error_t err = OMADM_OK;
    if (!b) {
        err = OMADM_E_NOMEM;
    } else if (!PEM_read_bio(b, &name, &header, &der, &dlen) || strcmp(name, label) ||
               !ks_is_tpm_blob(der, (size_t)dlen)) {
        err = OMADM_E_INVALID_ARG;
        if (why)
            *why = "not a TSS2 PRIVATE KEY";
    } else if (!cs->tpm_tcti) {
        err = OMADM_E_NO_DEVICE;
        if (why)
            *why = "the key is in a TPM and no TPM is configured";
    } else {
#ifdef OMADM_HAVE_TSS2
        omadm_tls_key_t *k = OPENSSL_zalloc(sizeof *k);
        err = k ? make_key(cs->tpm_tcti, der, (size_t)dlen, k, why) : OMADM_E_NOMEM;
        if (err)
            omadm_tls_key_free(k);
        else
            *out = k;
#else
        err = OMADM_E_NO_DEVICE;
        if (why)
            *why = "TPM keys for TLS need tpm2-tss's ESAPI, which this build lacks";
#endif
    }
    if (der)
        OPENSSL_cleanse(der, (size_t)dlen);
    OPENSSL_free(der);
    OPENSSL_free(name);
    OPENSSL_free(header);
    BIO_free(b);
    ERR_clear_error();
    return err;
}
