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
/* ks_ops_t.import of the TPM backend: TPM2_Import of a software RSA key. */
ks_err_t ks_tpm_import(void *be, const EVP_PKEY *soft, EVP_PKEY **out, const char **why);

#endif
