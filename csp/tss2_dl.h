/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tss2_dl.h - tpm2-tss's ESAPI, marshalling and TCTI loader, loaded with
 * dlopen on first use (tss2_dl.c), so that neither the library nor its
 * hosts link them: a program that never imports a key into a TPM or signs
 * with one for TLS never loads them (docs/keys.md).  Only for builds with
 * the tpm2-tss headers (OMADM_HAVE_TSS2).
 *
 * Call through the table: TSS->Esys_Load(...), after ks_tss2() answered
 * non-NULL.
 */
#ifndef CSP_TSS2_DL_H
#define CSP_TSS2_DL_H

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#define KS_TSS2_FUNCTIONS(X)                                                                 \
    X(Esys_CreatePrimary) X(Esys_Finalize) X(Esys_FlushContext) X(Esys_Free)                 \
    X(Esys_GetCapability) X(Esys_Import) X(Esys_Initialize) X(Esys_Load) X(Esys_RSA_Decrypt) \
    X(Esys_StartAuthSession) X(Esys_TRSess_SetAttributes) X(Tss2_MU_TPM2B_PRIVATE_Marshal)   \
    X(Tss2_MU_TPM2B_PRIVATE_Unmarshal) X(Tss2_MU_TPM2B_PUBLIC_Marshal)                       \
    X(Tss2_MU_TPM2B_PUBLIC_Unmarshal) X(Tss2_MU_TPM2B_SENSITIVE_Marshal)                     \
    X(Tss2_MU_TPMT_PUBLIC_Marshal) X(Tss2_TctiLdr_Finalize) X(Tss2_TctiLdr_Initialize)

typedef struct ks_tss2_api {
#define KS_TSS2_DECLARE(name) __typeof__(name) *name;
    KS_TSS2_FUNCTIONS(KS_TSS2_DECLARE)
#undef KS_TSS2_DECLARE
} ks_tss2_api_t;

/* The functions, loaded once per process (libtss2-esys.so.0,
 * libtss2-mu.so.0, libtss2-tctildr.so.0); NULL when they cannot be. */
const ks_tss2_api_t *ks_tss2(void);

#define TSS (ks_tss2())

#endif
