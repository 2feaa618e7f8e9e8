/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certstore_keys.c - a private key that arrives from outside (a PFX) as the
 * store keeps it, in the key store KeyProtection chooses (docs/keys.md).
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certstore_internal.h"
#include "enroll.h"
#include "keystore_tpm.h"
#include "platform.h"

/* PEM of der with label, in plat's memory (wipe it). */
static char *pem_of(const omadm_platform_t *plat, const char *label, const uint8_t *der,
                    size_t len)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *data = NULL, *out = NULL;
    long n = 0;
    if (b && len <= 0x7fffffff && PEM_write_bio(b, label, "", der, (long)len) > 0 &&
        (n = BIO_get_mem_data(b, &data)) > 0 && (out = plat_alloc(plat, (size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = 0;
    }
    BIO_free(b); /* a secure-memory BIO: cleared */
    return out;
}

int32_t cs_key_for_store(struct omadm_certstore *cs, const EVP_PKEY *soft,
                         unsigned key_protection, char **pem, const char **why)
{
    *pem = NULL;
    keystore_t *tpm = NULL;
    const keystore_t *ks = ks_software();
    const char *kwhy = NULL;
    if (key_protection < 1 || key_protection > 3) {
        *why = "KeyProtection must be 1, 2 or 3";
        return EC_INVALID_ARG;
    }
    if (key_protection != 3) {
        if (!cs->tpm_tcti)
            kwhy = "no TPM is configured";
        else if (ks_tpm_open(cs->tpm_tcti, &tpm, &kwhy) == KS_OK)
            ks = tpm;
        if (!tpm && key_protection == 1) {
            *why = kwhy;
            return EC_NO_TPM;
        }
        if (!tpm)
            cs_log(cs, OMADM_LOG_WARN, "KeyProtection 2: %s; the key stays a software key", kwhy);
    }
    ks_key_t *key = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    int32_t ec = 0;
    ks_err_t err = ks_import(ks, soft, &key, &kwhy);
    if (err == KS_E_UNSUPPORTED && tpm && key_protection == 2) {
        /* a key the TPM cannot take (an EC key from a PFX, say): 2 allows software */
        cs_log(cs, OMADM_LOG_WARN, "KeyProtection 2: the TPM cannot take this key (%s); the key "
               "stays a software key", kwhy);
        ks = ks_software();
        err = ks_import(ks, soft, &key, &kwhy);
    }
    if (!err)
        err = ks_blob(key, &der, &len, &kwhy);
    if (err) {
        *why = kwhy;
        ec = err == KS_E_NOMEM ? EC_NO_MEMORY
             : err == KS_E_UNAVAILABLE ? EC_NO_TPM
             : err == KS_E_UNSUPPORTED ? EC_NOT_SUPPORTED
                                       : EC_FAIL;
    } else if (!(*pem = pem_of(&cs->plat, ks_key_pem_label(key), der, len))) {
        *why = "out of memory";
        ec = EC_NO_MEMORY;
    }
    ks_blob_free(der, len);
    ks_key_free(key);
    ks_close(tpm);
    return ec;
}
