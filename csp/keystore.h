/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore.h - where private keys live: a small table of operations with a
 * software implementation (keystore_soft.c: the key in OpenSSL's memory,
 * stored as PKCS#8) and a TPM 2.0 one (keystore_tpm.c: the key made in or
 * imported into the TPM, stored as the TPM's wrapped blob).  The CSPs see
 * only this interface; docs/keys.md tells how to add a backend (a secure
 * element, a PKCS#11 token).
 *
 * A key is a ks_key_t: the backend it belongs to and an OpenSSL EVP_PKEY
 * (the "export handle") that OpenSSL's X.509 and CMS code can use with the
 * backend's library context and property query (ks_key_libctx,
 * ks_key_propq).  What the store keeps of a key is its blob: DER bytes
 * that only its backend can load again, written to disk as PEM with the
 * backend's label ("PRIVATE KEY" for PKCS#8, "TSS2 PRIVATE KEY" for a TPM
 * key), and never a plaintext key for a hardware backend.
 *
 * Memory: everything here is OpenSSL's (OPENSSL_malloc / the EVP_PKEY),
 * like the key itself; blobs handed out are released with ks_blob_free,
 * which wipes them.  Threads: a keystore_t may be used from one thread at a
 * time; keys of one keystore_t likewise.
 */
#ifndef CSP_KEYSTORE_H
#define CSP_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

typedef enum {
    KS_OK = 0,
    KS_E_NOMEM = 1,        /* an allocation failed */
    KS_E_INVALID = 2,      /* bad argument (key size, NULL, a key of another backend) */
    KS_E_MALFORMED = 3,    /* a blob that is not this backend's */
    KS_E_UNAVAILABLE = 4,  /* the device behind the backend cannot be reached */
    KS_E_UNSUPPORTED = 5,  /* the backend cannot do this */
    KS_E_FAILED = 6        /* the operation failed in the backend */
} ks_err_t;

typedef struct keystore keystore_t;
typedef struct ks_key ks_key_t;

/*
 * A backend.  Every operation sets *why to a short static reason on
 * failure.  be is the backend's own state (keystore_t.be).  Keys are
 * EVP_PKEYs owned by the caller (EVP_PKEY_free); blobs are DER from
 * OPENSSL_malloc (the caller wipes and frees them).
 */
typedef struct ks_ops {
    const char *name;        /* "software", "tpm" (logs, docs/keys.md) */
    const char *pem_label;   /* label of the blob's PEM in the store */
    /* A new RSA key of bits (1024, 2048, 4096), public exponent 65537. */
    ks_err_t (*generate)(void *be, unsigned bits, EVP_PKEY **out, const char **why);
    /* The software private key soft moved into the backend; the caller
     * frees soft (and with it the plaintext) afterwards. */
    ks_err_t (*import)(void *be, const EVP_PKEY *soft, EVP_PKEY **out, const char **why);
    /* Does der look like a blob of this backend (a cheap check, no I/O). */
    bool (*owns)(const uint8_t *der, size_t len);
    /* The key of a blob this backend wrote. */
    ks_err_t (*load)(void *be, const uint8_t *der, size_t len, EVP_PKEY **out, const char **why);
    /* The blob of key. */
    ks_err_t (*blob)(void *be, const EVP_PKEY *key, uint8_t **der, size_t *len,
                     const char **why);
    /* The property query under which the backend's own signature and
     * asymmetric cipher are fetched in the backend's library context. */
    const char *sign_propq, *decrypt_propq;
    /* The key's trace in the device when it is deleted (the TPM backend
     * keeps nothing persistent: its blob in the store is the key). */
    void (*destroy)(void *be, EVP_PKEY *key);
    void (*close)(void *be);
} ks_ops_t;

struct keystore {
    const ks_ops_t *ops;
    void *be;                  /* the backend's state */
    OSSL_LIB_CTX *libctx;      /* the backend's library context (NULL: OpenSSL's default) */
    unsigned *live;            /* count of its keys alive (ks_wrap .. ks_key_free); NULL: not
                                  counted */
};

/* ---- the backends ---- */

/* The software key store (static, nothing to close; ks_close is a no-op). */
const keystore_t *ks_software(void);

/* The TPM 2.0 key store, reached through the TCTI configuration string
 * tcti ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", ...) with
 * the OpenSSL tpm2 provider loaded into a private library context (default
 * + tpm2).  KS_E_UNAVAILABLE when the provider or the TPM cannot be
 * reached, KS_E_INVALID for an unusable tcti string.  *out owned
 * (ks_close). */
ks_err_t ks_tpm_open(const char *tcti, keystore_t **out, const char **why);

/* Close a key store (NULL-safe; nothing for the static software one).
 * Keys of it must have been freed before. */
void ks_close(keystore_t *ks);

/* The backend's name ("software", "tpm"). */
const char *ks_name(const keystore_t *ks);

/* ---- keys ---- */

ks_err_t ks_generate(const keystore_t *ks, unsigned bits, ks_key_t **out, const char **why);
ks_err_t ks_import(const keystore_t *ks, const EVP_PKEY *soft, ks_key_t **out, const char **why);
/* Take an EVP_PKEY made by the backend (ownership moves, also on failure). */
ks_err_t ks_wrap(const keystore_t *ks, EVP_PKEY *pkey, ks_key_t **out, const char **why);
/* The key of a blob, by the first of the stores stores[0..n) whose backend
 * owns it (NULL entries skipped); KS_E_MALFORMED when none does. */
ks_err_t ks_load(const keystore_t *const *stores, size_t n, const uint8_t *der, size_t len,
                 ks_key_t **out, const char **why);
/* The backend among stores[0..n) that owns der, or NULL. */
const keystore_t *ks_owner(const keystore_t *const *stores, size_t n, const uint8_t *der,
                           size_t len);
/* True when der is a TPM key blob (TSS2 PRIVATE KEY). */
bool ks_is_tpm_blob(const uint8_t *der, size_t len);
/* The blob of key into *der (OPENSSL_malloc, *len bytes; ks_blob_free). */
ks_err_t ks_blob(const ks_key_t *key, uint8_t **der, size_t *len, const char **why);
void ks_blob_free(uint8_t *der, size_t len);
/* Signature of data with digest mdname ("SHA256") by the key, PKCS #1
 * v1.5 for RSA, into *sig (OPENSSL_malloc, *sig_len bytes). */
ks_err_t ks_sign(const ks_key_t *key, const char *mdname, const uint8_t *data, size_t len,
                 uint8_t **sig, size_t *sig_len, const char **why);
/* RSA PKCS #1 v1.5 decryption of in by the key into out (out_len: its
 * size in, the plaintext's out). */
ks_err_t ks_decrypt(const ks_key_t *key, const uint8_t *in, size_t len, uint8_t *out,
                    size_t *out_len, const char **why);
/* The public key as DER SubjectPublicKeyInfo (OPENSSL_malloc). */
ks_err_t ks_public_key(const ks_key_t *key, uint8_t **der, size_t *len, const char **why);
/* Delete the key: its trace in the device, then the handle (NULL-safe). */
void ks_delete(ks_key_t *key);
/* Release the handle only (NULL-safe). */
void ks_key_free(ks_key_t *key);

/* The export handle: the EVP_PKEY, borrowed, for OpenSSL's X.509 and CMS
 * code, to be used in ks_key_libctx with ks_key_sign_propq (signing) or
 * ks_key_decrypt_propq (RSA decryption). */
EVP_PKEY *ks_key_pkey(const ks_key_t *key);
OSSL_LIB_CTX *ks_key_libctx(const ks_key_t *key);
const char *ks_key_sign_propq(const ks_key_t *key);
const char *ks_key_decrypt_propq(const ks_key_t *key);
const keystore_t *ks_key_store(const ks_key_t *key);
/* The PEM label of the key's blob ("PRIVATE KEY", "TSS2 PRIVATE KEY"). */
const char *ks_key_pem_label(const ks_key_t *key);

#endif
