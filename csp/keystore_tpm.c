/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore_tpm.c - the TPM 2.0 key store (keystore.h) through the OpenSSL
 * 3 "tpm2" provider (tpm2-openssl, on tpm2-tss), loaded into a private
 * library context with the default provider, so the rest of the process
 * never sees it.
 *
 * Keys are made inside the TPM (TPM2_Create under the provider's storage
 * primary, made from its template under the owner hierarchy on each load);
 * their blob is the TSS2 PRIVATE KEY structure (public part + private part
 * wrapped by the TPM), which the provider and tpm2-tools load.  Signing and
 * RSA decryption run in the TPM; the private key never leaves it in the
 * clear.  Import of a software key: tpm_import and keystore_tpm_import.c.
 *
 * The TCTI: tpm2-openssl 1.1 reads it from the environment variable
 * TPM2OPENSSL_TCTI only (its "tcti" configuration parameter does not reach
 * it), so the provider is loaded with that variable set to our TCTI for the
 * duration of the load, under a lock, and the previous value is put back.
 * See docs/keys.md for what this means for a multi-threaded host.
 */
#include "keystore.h"
#include "keystore_tpm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#define TCTI_ENV "TPM2OPENSSL_TCTI"
#define TCTI_MAX 512

typedef struct tpm_be {
    keystore_t ks;
    OSSL_PROVIDER *dflt, *tpm2;
    unsigned live;             /* keys of this store alive (ks.live) */
    char tcti[TCTI_MAX + 1];
} tpm_be_t;

static ks_err_t fail(const char **why, ks_err_t err, const char *reason)
{
    if (why)
        *why = reason;
    return err;
}

/* Characters a TCTI string of tpm2-tss is made of ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321", "swtpm:path=/run/swtpm.sock",
 * "tabrmd:bus_name=com.intel.tss2.Tabrmd"). */
bool ks_tpm_tcti_valid(const char *tcti)
{
    if (!tcti || !*tcti || strlen(tcti) > TCTI_MAX)
        return false;
    return strspn(tcti, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        ":/=,._-+@") == strlen(tcti);
}

static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

/* The tpm2 provider, loaded into lc with TPM2OPENSSL_TCTI = tcti. */
static OSSL_PROVIDER *load_tpm2(OSSL_LIB_CTX *lc, const char *tcti)
{
    pthread_mutex_lock(&env_lock);
    const char *old = getenv(TCTI_ENV);
    char *saved = old ? strdup(old) : NULL;
    OSSL_PROVIDER *p = NULL;
    if ((!old || saved) && setenv(TCTI_ENV, tcti, 1) == 0) {
        p = OSSL_PROVIDER_load(lc, "tpm2");
        if (saved)
            setenv(TCTI_ENV, saved, 1);
        else
            unsetenv(TCTI_ENV);
    }
    free(saved);
    pthread_mutex_unlock(&env_lock);
    return p;
}

static ks_err_t tpm_generate(void *be, unsigned bits, EVP_PKEY **out, const char **why)
{
    tpm_be_t *t = be;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(t->ks.libctx, "RSA", "provider=tpm2");
    ks_err_t err = KS_OK;
    if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
        EVP_PKEY_keygen(ctx, out) <= 0) {
        *out = NULL;
        err = fail(why, KS_E_FAILED, "the TPM could not make the RSA key");
    }
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

static bool tpm_owns(const uint8_t *der, size_t len)
{
    return ks_is_tpm_blob(der, len);
}

static ks_err_t tpm_load(void *be, const uint8_t *der, size_t len, EVP_PKEY **out,
                         const char **why)
{
    tpm_be_t *t = be;
    EVP_PKEY *pk = NULL;
    const unsigned char *p = der;
    size_t left = len;
    OSSL_DECODER_CTX *dc = OSSL_DECODER_CTX_new_for_pkey(&pk, "DER", NULL, "RSA",
                                                         EVP_PKEY_KEYPAIR, t->ks.libctx,
                                                         "provider=tpm2");
    ks_err_t err = KS_OK;
    if (!dc)
        err = fail(why, KS_E_NOMEM, "cannot set up the TPM key decoder");
    else if (!OSSL_DECODER_from_data(dc, &p, &left) || !pk)
        err = fail(why, KS_E_FAILED, "the TPM cannot load the key blob");
    else if (left != 0)
        err = fail(why, KS_E_MALFORMED, "bytes after the TPM key blob");
    OSSL_DECODER_CTX_free(dc);
    ERR_clear_error();
    if (err) {
        EVP_PKEY_free(pk);
        return err;
    }
    *out = pk;
    return KS_OK;
}

static ks_err_t tpm_blob(void *be, const EVP_PKEY *key, uint8_t **der, size_t *len,
                         const char **why)
{
    (void)be;
    unsigned char *d = NULL;
    size_t n = 0;
    OSSL_ENCODER_CTX *ec =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "DER", NULL, "provider=tpm2");
    int ok = ec && OSSL_ENCODER_to_data(ec, &d, &n);
    OSSL_ENCODER_CTX_free(ec);
    ERR_clear_error();
    if (!ok || !ks_is_tpm_blob(d, n)) {
        OPENSSL_free(d);
        return fail(why, KS_E_FAILED, "cannot encode the TPM key blob");
    }
    *der = d;
    *len = n;
    return KS_OK;
}

/* Import (keystore_tpm_import.c) talks to the TPM over a connection of
 * its own, and swtpm and /dev/tpm0 serve one at a time: the provider's is
 * closed meanwhile (unloading it tears its connection down once no key
 * holds it), then the provider is loaded again and loads the new blob. */
static ks_err_t tpm_import(void *be, const EVP_PKEY *soft, EVP_PKEY **out, const char **why)
{
    tpm_be_t *t = be;
    uint8_t *der = NULL;
    size_t len = 0;
    if (t->live)
        return fail(why, KS_E_INVALID,
                    "import into the TPM needs the other keys of its key store released first");
    if (t->tpm2)
        OSSL_PROVIDER_unload(t->tpm2);
    t->tpm2 = NULL;
    ks_err_t err = ks_tpm_import_blob(t->tcti, soft, &der, &len, why);
    t->tpm2 = load_tpm2(t->ks.libctx, t->tcti);
    ERR_clear_error();
    if (!t->tpm2 && !err)
        err = fail(why, KS_E_UNAVAILABLE, "no TPM: the tpm2 provider cannot be loaded again");
    if (!err)
        err = tpm_load(t, der, len, out, why);
    OPENSSL_clear_free(der, len);
    return err;
}

static void tpm_close(void *be)
{
    tpm_be_t *t = be;
    if (!t)
        return;
    if (t->tpm2)
        OSSL_PROVIDER_unload(t->tpm2);
    if (t->dflt)
        OSSL_PROVIDER_unload(t->dflt);
    OSSL_LIB_CTX_free(t->ks.libctx);
    OPENSSL_clear_free(t, sizeof *t);
}

static const ks_ops_t tpm_ops = {
    .name = "tpm",
    .pem_label = "TSS2 PRIVATE KEY",
    .generate = tpm_generate,
    .import = tpm_import,
    .owns = tpm_owns,
    .load = tpm_load,
    .blob = tpm_blob,
    /* the provider's RSA signature ("provider=tpm2,tpm2.signature"); its
     * digests and ciphers are excluded by the context's default properties
     * (ks_tpm_open) */
    .sign_propq = "?tpm2.signature",
    .decrypt_propq = "provider=tpm2",
    .destroy = NULL,   /* transient objects only: the blob is the key */
    .close = tpm_close,
};

ks_err_t ks_tpm_open(const char *tcti, keystore_t **out, const char **why)
{
    if (!out)
        return fail(why, KS_E_INVALID, "no output");
    *out = NULL;
    if (!ks_tpm_tcti_valid(tcti))
        return fail(why, KS_E_INVALID, "not a TCTI configuration string");
    tpm_be_t *t = OPENSSL_zalloc(sizeof *t);
    if (!t || !(t->ks.libctx = OSSL_LIB_CTX_new())) {
        tpm_close(t);
        return fail(why, KS_E_NOMEM, "out of memory");
    }
    strcpy(t->tcti, tcti);
    t->ks.ops = &tpm_ops;
    t->ks.be = t;
    t->ks.live = &t->live;
    t->dflt = OSSL_PROVIDER_load(t->ks.libctx, "default");
    if (!t->dflt) {
        tpm_close(t);
        ERR_clear_error();
        return fail(why, KS_E_NOMEM, "cannot load OpenSSL's default provider");
    }
    t->tpm2 = load_tpm2(t->ks.libctx, tcti);
    ERR_clear_error();
    if (!t->tpm2) {
        tpm_close(t);
        return fail(why, KS_E_UNAVAILABLE,
                    "no TPM: the tpm2 provider cannot be loaded or the TPM cannot be reached");
    }
    /* the provider's digests, ciphers and random generator are TPM commands:
     * only its keys, signatures and RSA decryption are wanted here (CMS
     * hashes its content and the session's AES runs in software) */
    if (!EVP_set_default_properties(t->ks.libctx, "tpm2.digest=no,tpm2.cipher=no,tpm2.rand=no")) {
        tpm_close(t);
        ERR_clear_error();
        return fail(why, KS_E_NOMEM, "out of memory");
    }
    *out = &t->ks;
    return KS_OK;
}

const char *ks_tpm_tcti(const keystore_t *ks)
{
    return ks && ks->ops == &tpm_ops ? ((const tpm_be_t *)ks->be)->tcti : NULL;
}
