/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore.c - the operations every backend shares (keystore.h): the key
 * handle, signing, decryption and the public key through the backend's
 * EVP_PKEY in its library context, and finding the backend of a blob.
 */
#include "keystore.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

struct ks_key {
    const keystore_t *ks;
    EVP_PKEY *pkey;
};

static ks_err_t fail(const char **why, ks_err_t err, const char *reason)
{
    if (why)
        *why = reason;
    return err;
}

const char *ks_name(const keystore_t *ks)
{
    return ks && ks->ops ? ks->ops->name : "?";
}

void ks_close(keystore_t *ks)
{
    if (ks && ks != ks_software() && ks->ops && ks->ops->close)
        ks->ops->close(ks->be);
}

ks_err_t ks_wrap(const keystore_t *ks, EVP_PKEY *pkey, ks_key_t **out, const char **why)
{
    *out = NULL;
    ks_key_t *k = OPENSSL_zalloc(sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return fail(why, KS_E_NOMEM, "out of memory");
    }
    k->ks = ks;
    k->pkey = pkey;
    if (ks->live)
        (*ks->live)++;
    *out = k;
    return KS_OK;
}

ks_err_t ks_generate(const keystore_t *ks, unsigned bits, ks_key_t **out, const char **why)
{
    if (!out)
        return fail(why, KS_E_INVALID, "no output");
    *out = NULL;
    if (!ks)
        return fail(why, KS_E_INVALID, "no key store");
    if (bits != 1024 && bits != 2048 && bits != 4096)
        return fail(why, KS_E_INVALID, "KeyLength must be 1024, 2048 or 4096");
    EVP_PKEY *pkey = NULL;
    ks_err_t err = ks->ops->generate(ks->be, bits, &pkey, why);
    return err ? err : ks_wrap(ks, pkey, out, why);
}

ks_err_t ks_import(const keystore_t *ks, const EVP_PKEY *soft, ks_key_t **out, const char **why)
{
    if (!out)
        return fail(why, KS_E_INVALID, "no output");
    *out = NULL;
    if (!ks || !soft)
        return fail(why, KS_E_INVALID, "no key store or key");
    if (!ks->ops->import)
        return fail(why, KS_E_UNSUPPORTED, "this key store cannot import keys");
    EVP_PKEY *pkey = NULL;
    ks_err_t err = ks->ops->import(ks->be, soft, &pkey, why);
    return err ? err : ks_wrap(ks, pkey, out, why);
}

bool ks_is_tpm_blob(const uint8_t *der, size_t len)
{
    /* SEQUENCE { OBJECT IDENTIFIER 2.23.133.10.1.3 (id-loadablekey) ... } */
    static const uint8_t oid[] = {0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03};
    size_t hdr;
    if (!der || len < 2 || der[0] != 0x30)
        return false;
    if (der[1] < 0x80)
        hdr = 2;
    else if (der[1] >= 0x81 && der[1] <= 0x83)
        hdr = 2 + (size_t)(der[1] & 0x7f);
    else
        return false;
    return len >= hdr + sizeof oid && memcmp(der + hdr, oid, sizeof oid) == 0;
}

const keystore_t *ks_owner(const keystore_t *const *stores, size_t n, const uint8_t *der,
                           size_t len)
{
    for (size_t i = 0; stores && i < n; i++)
        if (stores[i] && stores[i]->ops->owns(der, len))
            return stores[i];
    return NULL;
}

ks_err_t ks_load(const keystore_t *const *stores, size_t n, const uint8_t *der, size_t len,
                 ks_key_t **out, const char **why)
{
    if (!out)
        return fail(why, KS_E_INVALID, "no output");
    *out = NULL;
    if (!der || !len)
        return fail(why, KS_E_INVALID, "no key blob");
    const keystore_t *ks = ks_owner(stores, n, der, len);
    if (!ks)
        return fail(why, ks_is_tpm_blob(der, len) ? KS_E_UNAVAILABLE : KS_E_MALFORMED,
                    ks_is_tpm_blob(der, len) ? "the key is in a TPM and no TPM is configured"
                                             : "not a key blob of any key store");
    EVP_PKEY *pkey = NULL;
    ks_err_t err = ks->ops->load(ks->be, der, len, &pkey, why);
    return err ? err : ks_wrap(ks, pkey, out, why);
}

ks_err_t ks_blob(const ks_key_t *key, uint8_t **der, size_t *len, const char **why)
{
    if (!key || !der || !len)
        return fail(why, KS_E_INVALID, "no key or output");
    *der = NULL;
    *len = 0;
    return key->ks->ops->blob(key->ks->be, key->pkey, der, len, why);
}

void ks_blob_free(uint8_t *der, size_t len)
{
    OPENSSL_clear_free(der, len);
}

ks_err_t ks_sign(const ks_key_t *key, const char *mdname, const uint8_t *data, size_t len,
                 uint8_t **sig, size_t *sig_len, const char **why)
{
    if (!key || !mdname || !sig || !sig_len)
        return fail(why, KS_E_INVALID, "no key, digest or output");
    *sig = NULL;
    *sig_len = 0;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    size_t n = 0;
    ks_err_t err = KS_OK;
    if (!mctx || EVP_DigestSignInit_ex(mctx, NULL, mdname, ks_key_libctx(key),
                                       ks_key_sign_propq(key), key->pkey, NULL) <= 0 ||
        EVP_DigestSign(mctx, NULL, &n, data, len) <= 0) {
        err = fail(why, KS_E_FAILED, "cannot set up the signature");
        goto out;
    }
    if (!(*sig = OPENSSL_malloc(n))) {
        err = fail(why, KS_E_NOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSign(mctx, *sig, &n, data, len) <= 0) {
        OPENSSL_free(*sig);
        *sig = NULL;
        err = fail(why, KS_E_FAILED, "signing failed");
        goto out;
    }
    *sig_len = n;
out:
    EVP_MD_CTX_free(mctx);
    return err;
}

ks_err_t ks_decrypt(const ks_key_t *key, const uint8_t *in, size_t len, uint8_t *out,
                    size_t *out_len, const char **why)
{
    if (!key || !in || !out || !out_len)
        return fail(why, KS_E_INVALID, "no key, input or output");
    EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(ks_key_libctx(key), key->pkey, ks_key_decrypt_propq(key));
    ks_err_t err = KS_OK;
    if (!ctx || EVP_PKEY_decrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
        err = fail(why, KS_E_FAILED, "cannot set up the RSA decryption");
    else if (EVP_PKEY_decrypt(ctx, out, out_len, in, len) <= 0)
        err = fail(why, KS_E_FAILED, "RSA decryption failed");
    EVP_PKEY_CTX_free(ctx);
    return err;
}

ks_err_t ks_public_key(const ks_key_t *key, uint8_t **der, size_t *len, const char **why)
{
    if (!key || !der || !len)
        return fail(why, KS_E_INVALID, "no key or output");
    unsigned char *d = NULL;
    int n = i2d_PUBKEY(key->pkey, &d);
    if (n <= 0) {
        *der = NULL;
        *len = 0;
        return fail(why, KS_E_FAILED, "cannot encode the public key");
    }
    *der = d;
    *len = (size_t)n;
    return KS_OK;
}

void ks_key_free(ks_key_t *key)
{
    if (!key)
        return;
    if (key->ks->live)
        (*key->ks->live)--;
    EVP_PKEY_free(key->pkey);
    OPENSSL_clear_free(key, sizeof *key);
}

void ks_delete(ks_key_t *key)
{
    if (key && key->ks->ops->destroy)
        key->ks->ops->destroy(key->ks->be, key->pkey);
    ks_key_free(key);
}

EVP_PKEY *ks_key_pkey(const ks_key_t *key)
{
    return key ? key->pkey : NULL;
}

OSSL_LIB_CTX *ks_key_libctx(const ks_key_t *key)
{
    return key ? key->ks->libctx : NULL;
}

const char *ks_key_sign_propq(const ks_key_t *key)
{
    return key ? key->ks->ops->sign_propq : NULL;
}

const char *ks_key_decrypt_propq(const ks_key_t *key)
{
    return key ? key->ks->ops->decrypt_propq : NULL;
}

const keystore_t *ks_key_store(const ks_key_t *key)
{
    return key ? key->ks : NULL;
}

const char *ks_key_pem_label(const ks_key_t *key)
{
    return key ? key->ks->ops->pem_label : NULL;
}
