/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore_soft.c - the software key store (keystore.h): keys in
 * OpenSSL's memory, kept as unencrypted PKCS#8 DER (the store writes them
 * as "PRIVATE KEY" PEM, mode 0600).  It makes RSA keys (rsa_keygen.c) and
 * takes RSA and EC keys (a PFX's key may be either).
 */
#include "keystore.h"
#include "rsa_keygen.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The key types this store keeps. */
static bool kept_type(const EVP_PKEY *k)
{
    int id = EVP_PKEY_get_base_id(k);
    return id == EVP_PKEY_RSA || id == EVP_PKEY_EC;
}

static ks_err_t fail(const char **why, ks_err_t err, const char *reason)
{
    if (why)
        *why = reason;
    return err;
}

static ks_err_t soft_generate(void *be, unsigned bits, EVP_PKEY **out, const char **why)
{
    (void)be;
    /* the key's memory and randomness are OpenSSL's (rsa_keygen.c) */
    *out = rsa_keygen(bits);
    return *out ? KS_OK : fail(why, KS_E_FAILED, "RSA key generation failed");
}

static ks_err_t soft_import(void *be, const EVP_PKEY *soft, EVP_PKEY **out, const char **why)
{
    (void)be;
    if (!kept_type(soft))
        return fail(why, KS_E_UNSUPPORTED, "not an RSA or EC key");
    *out = EVP_PKEY_dup((EVP_PKEY *)soft);
    return *out ? KS_OK : fail(why, KS_E_NOMEM, "cannot copy the key");
}

static bool soft_owns(const uint8_t *der, size_t len)
{
    return der && len > 2 && der[0] == 0x30 && !ks_is_tpm_blob(der, len);
}

static ks_err_t soft_load(void *be, const uint8_t *der, size_t len, EVP_PKEY **out,
                          const char **why)
{
    (void)be;
    const unsigned char *p = der;
    EVP_PKEY *pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
    if (!pk)
        return fail(why, KS_E_MALFORMED, "not a DER private key");
    if (p != der + len || !kept_type(pk)) {
        EVP_PKEY_free(pk);
        return fail(why, KS_E_UNSUPPORTED, "not a single RSA or EC private key");
    }
    *out = pk;
    return KS_OK;
}

static ks_err_t soft_blob(void *be, const EVP_PKEY *key, uint8_t **der, size_t *len,
                          const char **why)
{
    (void)be;
    unsigned char *d = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    if (!p8)
        return fail(why, KS_E_FAILED, "PKCS#8 encoding failed");
    int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &d);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0)
        return fail(why, KS_E_FAILED, "PKCS#8 encoding failed");
    *der = d;
    *len = (size_t)n;
    return KS_OK;
}

static const ks_ops_t soft_ops = {
    .name = "software",
    .pem_label = "PRIVATE KEY",
    .generate = soft_generate,
    .import = soft_import,
    .owns = soft_owns,
    .load = soft_load,
    .blob = soft_blob,
    .sign_propq = NULL,
    .decrypt_propq = NULL,
    .destroy = NULL,
    .close = NULL,
};

static const keystore_t soft_store = {.ops = &soft_ops, .be = NULL, .libctx = NULL};

const keystore_t *ks_software(void)
{
    return &soft_store;
}
