/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cert.h - the certificate store's small OpenSSL layer: parse what a
 * server sends (base64 DER, with or without line breaks, PEM armour, raw
 * DER), thumbprints, and the text renderings the CSP reports.
 *
 * Memory handed out (DER, text) comes from the platform table plat (the
 * store's or the certificate store's, defaults filled in by plat_init) and
 * goes back to the same table: plat_free(plat, p), cert_info_free(plat, i).
 * OpenSSL's own working memory stays OpenSSL's.
 */
#ifndef OMADM_STORE_CERT_H
#define OMADM_STORE_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

#define CERT_THUMB_HEX 40

typedef struct cert_info {
    char thumb[CERT_THUMB_HEX + 1];   /* SHA-1 of the DER, uppercase hex */
    char *issued_by;                  /* issuer DN: encoded order, ", ", RFC 4514 escaping */
    char *issued_to;                  /* subject DN */
    char valid_from[24];              /* ISO 8601 UTC: 2024-01-31T12:00:00Z */
    char valid_to[24];
    char *template_name;              /* MS certificate template name or OID, "" if none */
    unsigned long subject_hash;       /* X509_subject_name_hash, for CApath names */
} cert_info_t;

/*
 * Decode a value as sent for EncodedCertificate into DER: base64 (line
 * breaks and spaces allowed), PEM armour around base64, or raw DER when
 * raw_ok (a WBXML bin value).  Exactly one certificate: anything else
 * fails.  Returns 0 and the DER (from plat), or -1 with *why set to a
 * short static reason ("not base64", "not an X.509 certificate", ...), or
 * -2 when plat had no memory (*why "out of memory").
 */
int cert_decode(const omadm_platform_t *plat, const uint8_t *data, size_t len, bool raw_ok,
                uint8_t **der, size_t *der_len, const char **why);
/* cert_decode, and when info is not NULL also the fields of cert_info_from_der
 * from the same parse (on success only; free with cert_info_free). */
int cert_decode_info(const omadm_platform_t *plat, const uint8_t *data, size_t len, bool raw_ok,
                     uint8_t **der, size_t *der_len, cert_info_t *info, const char **why);

/* Plain base64 to bytes (no certificate check: for data the store wrote
 * itself; store_check verifies thumbprints).  0 and the bytes (from plat),
 * -1 (not base64) or -2 (no memory). */
int cert_b64_decode(const omadm_platform_t *plat, const char *b64, uint8_t **out, size_t *len);

/* The bytes of the first PEM CERTIFICATE block of text (as cert_pem
 * writes them; no certificate check, no OpenSSL parse: for files the
 * store wrote itself).  0 and the bytes (from plat), -1 (no such block)
 * or -2 (no memory). */
int cert_pem_der(const omadm_platform_t *plat, const char *text, size_t len, uint8_t **der,
                 size_t *der_len);

/* Fill info from DER (0), or -1 when it is not a certificate.  Free with
 * cert_info_free and the same plat. */
int cert_info_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                       cert_info_t *info);
void cert_info_free(const omadm_platform_t *plat, cert_info_t *info);

/* SHA-1 thumbprint of DER as 40 uppercase hex digits (0, or -1). */
int cert_thumbprint(const uint8_t *der, size_t len, char out[CERT_THUMB_HEX + 1]);

/* X509_subject_name_hash of a DER certificate (0, or -1 when it is not a
 * certificate OpenSSL parses). */
int cert_subject_hash(const uint8_t *der, size_t len, unsigned long *hash);

/* The same hash from the subject field of the DER alone: the outer
 * structure is walked to tbsCertificate.subject and only that Name is
 * decoded (a few microseconds, where parsing the whole certificate costs
 * about a hundred).  For DER already known to be a certificate (checked
 * when it came in, or named by its thumbprint in the store).  0, or -1
 * when the DER does not have a certificate's shape up to its subject. */
int cert_der_subject_hash(const uint8_t *der, size_t len, unsigned long *hash);

/* PEM text of a DER certificate (from plat, NUL-terminated) or NULL. */
char *cert_pem(const omadm_platform_t *plat, const uint8_t *der, size_t len, size_t *pem_len);

/* Base64 of DER without line breaks (from plat) or NULL. */
char *cert_b64(const omadm_platform_t *plat, const uint8_t *der, size_t len);

/* True when name is 40 hex digits (any case); upper gets the uppercase. */
bool cert_thumb_normalise(const char *name, char upper[CERT_THUMB_HEX + 1]);

#endif
