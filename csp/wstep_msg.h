/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep_msg.h - the messages of an MS-WSTEP certificate renewal
 * ([MS-MDE2] 3.5, docs/wstep.md): the RequestSecurityToken (a PKCS#10 for a
 * new key, in a PKCS#7 signed with the current certificate) and the
 * answer (an RSTRC carrying a provisioning document, or a SOAP fault).
 * OpenSSL and libxml2 stay in this file.
 */
#ifndef OMADM_WSTEP_MSG_H
#define OMADM_WSTEP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

/* HRESULTs Renew/ErrorCode takes (MENROLL_E_*, mdmregistration.h). */
#define WSTEP_E_MESSAGE_FORMAT ((int32_t)0x80180001u)
#define WSTEP_E_UNKNOWN ((int32_t)0x80180008u)
#define WSTEP_E_CONNECTIVITY ((int32_t)0x80180010u)
#define WSTEP_E_INSECURE_REDIRECT ((int32_t)0x8018001Au)
#define WSTEP_E_CERTSTORE ((int32_t)0x8018001Eu)

/* A request: the SOAP body (plat_alloc'ed) and the new key (PKCS#8 PEM,
 * plat_alloc'ed, secret: wstep_request_free wipes it). */
typedef struct wstep_request {
    uint8_t *body;
    size_t len;
    char *key_pem;
} wstep_request_t;

/* Build the renewal request for the current certificate (DER) and its key
 * (PEM) to url: a new key of the same kind (EC: same curve; RSA: same size,
 * at least 2048 bits).  0, or -1 (*why: a static reason). */
int wstep_build_request(const omadm_platform_t *p, const uint8_t *cert_der, size_t cert_len,
                        const char *key_pem, const char *url, wstep_request_t *out,
                        const char **why);
void wstep_request_free(const omadm_platform_t *p, wstep_request_t *r);

/* Read an answer (HTTP status, body).  0: the new certificate for key_pem
 * into *der (plat_alloc'ed); 1: pending (taken under submission); -1: a
 * failure, its HRESULT into *hresult and a static reason into *why. */
int wstep_parse_response(const omadm_platform_t *p, int http_status, const uint8_t *body,
                         size_t len, const char *key_pem, uint8_t **der, size_t *der_len,
                         int32_t *hresult, const char **why);

/* The certificate's notAfter, seconds since 1970.  0 / -1. */
int wstep_not_after(const uint8_t *der, size_t len, int64_t *t);

#endif
