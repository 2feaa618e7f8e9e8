/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore_tpm.h - what the TPM key store's files share (keystore_tpm.c,
 * keystore_tpm_import.c).
 */
#ifndef CSP_KEYSTORE_TPM_H
#define CSP_KEYSTORE_TPM_H

#include "keystore.h"

/* tcti is a plausible TCTI configuration string (characters, length). */
bool ks_tpm_tcti_valid(const char *tcti);
/* The TCTI string of a TPM key store, NULL for another backend. */
const char *ks_tpm_tcti(const keystore_t *ks);
/* TPM2_Import of the software RSA key soft under the tpm2 provider's
 * storage primary, through a connection of its own to the TPM at tcti:
 * the TSS2 PRIVATE KEY DER into *der (OPENSSL_malloc, *len bytes).
 * KS_E_UNSUPPORTED when built without tpm2-tss's ESAPI or for a key the
 * TPM cannot hold; KS_E_UNAVAILABLE when the TPM cannot be reached. */
ks_err_t ks_tpm_import_blob(const char *tcti, const EVP_PKEY *soft, uint8_t **der, size_t *len,
                            const char **why);

#ifdef OMADM_HAVE_TSS2
#include "tss2_dl.h"

/* A connection of our own to the TPM at tcti (ks_tpm_esys_close). */
ks_err_t ks_tpm_esys_open(const char *tcti, TSS2_TCTI_CONTEXT **tctx, ESYS_CONTEXT **esys,
                          const char **why);
void ks_tpm_esys_close(TSS2_TCTI_CONTEXT **tctx, ESYS_CONTEXT **esys);
/* The tpm2 provider's storage primary under the owner hierarchy (flush it). */
ks_err_t ks_tpm_primary(ESYS_CONTEXT *esys, ESYS_TR *parent, const char **why);
/* The public and private parts of a TSS2 PRIVATE KEY DER under the owner. */
ks_err_t ks_tss2_parse(const uint8_t *der, size_t len, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv,
                       const char **why);
#endif

#endif
