/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore_tpm_import.c - import of a software RSA key into the TPM.
 * Not implemented yet: KS_E_UNSUPPORTED.
 */
#include "keystore_tpm.h"

ks_err_t ks_tpm_import(void *be, const EVP_PKEY *soft, EVP_PKEY **out, const char **why)
{
    (void)be;
    (void)soft;
    *out = NULL;
    if (why)
        *why = "import of a key into the TPM is not supported";
    return KS_E_UNSUPPORTED;
}
