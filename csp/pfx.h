/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pfx.h - ClientCertificateInstall/PFXCertInstall/{UniqueID}: a PKCS#12
 * (PFX) blob installed into My/System (./Device, ./Vendor) or My/User
 * (./User), with its private key; docs/pfx.md.
 *
 * What an install put into the store (the certificates, the key) is kept in
 * the state record "pfx-<d|u>-<hash of the lower-case UniqueID>", staged in
 * the same store transaction as the certificates, so a crash leaves all of
 * an install or nothing of it.  The password is never written anywhere: it
 * is kept in the store object's memory from its Add until the install that
 * uses it (then wiped).  The blob is installed by the transaction's
 * validate(), once every parameter of the Atomic is set.
 */
#ifndef OMADM_PFX_H
#define OMADM_PFX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "certstore_internal.h"

typedef enum { PFX_DEVICE = 0, PFX_USER = 1 } pfx_ns_t;

/* Node handlers for PFXCertInstall/<segs...> (segs below PFXCertInstall;
 * n may be 0).  Conventions of the omadm_csp_t handlers. */
int pfx_get(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
            omadm_csp_out_t *out);
int pfx_list(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
             omadm_csp_out_t *out);
int pfx_add(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
            const omadm_csp_req_t *req, const omadm_value_t *v);
int pfx_replace(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
                const omadm_csp_req_t *req, const omadm_value_t *v);
int pfx_del(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n);

/* Transaction hooks: validate() installs the blobs staged since begin
 * (0, or the status refusing the transaction); commit() and rollback()
 * settle the passwords held in memory; close() wipes them all. */
int pfx_validate(struct omadm_certstore *cs);
void pfx_commit(struct omadm_certstore *cs);
void pfx_rollback(struct omadm_certstore *cs);
void pfx_close(struct omadm_certstore *cs);

/* Every PFX install record loads and is named by its {UniqueID} (the
 * certificates it names may have been deleted since, through
 * CertificateStore: not a problem): each one that does not goes to fn as a
 * line naming its file, their number into *problems.  0, or -1 when the
 * records cannot be listed. */
int pfx_check_records(store_t *s, void (*fn)(void *ctx, const char *problem), void *ctx,
                      unsigned *problems);

/* The one place a PFX's private key goes: into the store (staged in the
 * open transaction) as the key of certificate thumb in store, as
 * KeyLocation says (1 TPM or fail, 2 TPM else software, 3 software,
 * 4 Windows Hello: not supported), through cs_key_for_store (the TPM of
 * omadm_certstore_set_tpm; docs/keys.md).  0, or the ErrorCode (HRESULT) of why
 * not; nothing is staged then. */
int32_t pfx_put_key(struct omadm_certstore *cs, const char *store, const char *thumb, EVP_PKEY *key,
                    int key_location);

/* Open a blob as sent (b64: base64 text, else DER) with password (UTF-8,
 * may be NULL) as an install does, without installing anything: 0, or
 * the ErrorCode an install would report.  Memory from p.  For the fuzz
 * target. */
int32_t pfx_check_blob(const omadm_platform_t *p, const uint8_t *blob, size_t len, bool b64,
                       const char *password);
/* Parse a password envelope (base64 of CMS EnvelopedData) as an install
 * does before it looks for the recipient: 0, or the ErrorCode. */
int32_t pfx_check_envelope(const omadm_platform_t *p, const char *b64, size_t len);

/* ErrorCode values of a PFX install (HRESULTs; docs/pfx.md). */
#define PFX_EC_BAD_PASSWORD ((int32_t)0x80070056)  /* HRESULT_FROM_WIN32(ERROR_INVALID_PASSWORD) */
#define PFX_EC_BAD_ENCODE ((int32_t)0x80092002)    /* CRYPT_E_BAD_ENCODE: not a (readable) PFX */
#define PFX_EC_BAD_KEY ((int32_t)0x80090003)       /* NTE_BAD_KEY: no key, or no certificate
                                                      of it */
#define PFX_EC_NO_DECRYPT ((int32_t)0x8009200C)    /* CRYPT_E_NO_DECRYPT_CERT: no certificate opens
                                                      the password's envelope */
#define PFX_EC_BAD_DATA ((int32_t)0x80090005)      /* NTE_BAD_DATA: the envelope is not CMS */
#define PFX_EC_NOT_FOUND ((int32_t)0x80070490)     /* HRESULT_FROM_WIN32(ERROR_NOT_FOUND) */

#endif
