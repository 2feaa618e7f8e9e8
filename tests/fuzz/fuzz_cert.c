/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cert.c - libFuzzer target: certificate ingest in every armour a
 * server may use for EncodedCertificate (store/cert.c): base64 with or
 * without line breaks, PEM, raw DER (a WBXML bin value).
 *
 * Input: one byte of flags (bit 0: raw DER allowed, as for a WBXML opaque
 * value), then the value.
 *
 * cert_decode: a refusal says why and hands out nothing; an accepted value
 * is exactly one DER certificate, and then
 *   - cert_info_from_der works, its thumbprint is cert_thumbprint's (the
 *     SHA-1 of the DER) and its subject hash is cert_subject_hash's, the
 *     texts are NUL-terminated;
 *   - the same certificate in each other armour decodes to the same DER:
 *     cert_pem (PEM), cert_b64 (base64, also with line breaks) and the DER
 *     itself as a raw value, and cert_b64_decode of cert_b64 gives the DER
 *     back; so the thumbprint and the CApath entry do not depend on how
 *     the server sent the certificate.
 * cert_decode_info answers as cert_decode does, with cert_info_from_der's
 * fields.  Also cert_b64_decode of the value as text (no certificate check) and
 * cert_thumb_normalise (40 hex digits, upper-cased, or refused) against
 * omadm_certstore_thumbprint_parse.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fuzz_common.h"
#include "omadm_certstore.h"
#include "store/cert.h"

static const omadm_platform_t *P;

static void same_der(const char *armour, const uint8_t *v, size_t n, bool raw_ok,
                     const uint8_t *der, size_t der_len)
{
    uint8_t *got = NULL;
    size_t got_len = 0;
    const char *why = NULL;
    int rc = cert_decode(P, v, n, raw_ok, &got, &got_len, &why);
    FUZZ_CHECK(rc == 0, "the certificate as %s must decode: %s", armour, why ? why : "?");
    FUZZ_CHECK(got_len == der_len && !memcmp(got, der, der_len),
               "the certificate as %s decodes to other DER (%zu bytes, was %zu)", armour, got_len,
               der_len);
    explicit_bzero(got, got_len);
    free(got);
}

static void accepted(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    FUZZ_CHECK(x && p == der + len, "an accepted value is exactly one DER certificate");
    X509_free(x);

    cert_info_t info;
    char thumb[CERT_THUMB_HEX + 1];
    unsigned long hash = 0;
    FUZZ_CHECK(cert_info_from_der(P, der, len, &info) == 0,
               "an accepted certificate must have its info (subject, issuer, dates)");
    FUZZ_CHECK(cert_thumbprint(der, len, thumb) == 0 && !strcmp(thumb, info.thumb),
               "thumbprint");
    unsigned char md[20];
    FUZZ_CHECK(EVP_Digest(der, len, md, NULL, EVP_sha1(), NULL), "SHA-1");
    for (int i = 0; i < 20; i++) {
        char h[3];
        snprintf(h, sizeof h, "%02X", md[i]);
        FUZZ_CHECK(thumb[2 * i] == h[0] && thumb[2 * i + 1] == h[1], "the thumbprint is the SHA-1");
    }
    FUZZ_CHECK(cert_subject_hash(der, len, &hash) == 0 && hash == info.subject_hash, "subject hash");
    FUZZ_CHECK(info.issued_by && info.issued_to && info.template_name, "info texts");
    FUZZ_CHECK(memchr(info.valid_from, 0, sizeof info.valid_from) &&
                   memchr(info.valid_to, 0, sizeof info.valid_to),
               "dates NUL-terminated");
    cert_info_free(P, &info);

    size_t pem_len = 0;
    char *pem = cert_pem(P, der, len, &pem_len);
    FUZZ_CHECK(pem && strlen(pem) == pem_len, "cert_pem");
    same_der("PEM", (const uint8_t *)pem, pem_len, false, der, len);
    free(pem);

    char *b64 = cert_b64(P, der, len);
    FUZZ_CHECK(b64 != NULL, "cert_b64");
    size_t bl = strlen(b64);
    same_der("base64", (const uint8_t *)b64, bl, false, der, len);
    /* with a line break every 76 characters and a final one */
    char *wrapped = malloc(bl + bl / 76 + 2);
    FUZZ_CHECK(wrapped != NULL, "malloc");
    size_t w = 0;
    for (size_t i = 0; i < bl; i++) {
        if (i && i % 76 == 0)
            wrapped[w++] = '\n';
        wrapped[w++] = b64[i];
    }
    wrapped[w++] = '\n';
    same_der("wrapped base64", (const uint8_t *)wrapped, w, false, der, len);
    free(wrapped);
    uint8_t *back = NULL;
    size_t back_len = 0;
    FUZZ_CHECK(cert_b64_decode(P, b64, &back, &back_len) == 0 && back_len == len &&
                   !memcmp(back, der, len),
               "cert_b64_decode of cert_b64 gives the DER back");
    free(back);
    free(b64);
    same_der("raw DER", der, len, true, der, len);
}

static void thumb_text(const uint8_t *v, size_t n)
{
    char text[128], upper[CERT_THUMB_HEX + 1], parsed[OMADM_THUMBPRINT_LEN + 1];
    size_t tn = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, v, tn);
    text[tn] = 0;
    if (cert_thumb_normalise(text, upper)) {
        FUZZ_CHECK(strlen(upper) == CERT_THUMB_HEX && strlen(text) == CERT_THUMB_HEX,
                   "a thumbprint is 40 characters");
        for (int i = 0; i < CERT_THUMB_HEX; i++)
            FUZZ_CHECK(isxdigit((unsigned char)upper[i]) && !islower((unsigned char)upper[i]) &&
                           toupper((unsigned char)text[i]) == upper[i],
                       "upper-cased hex");
        FUZZ_CHECK(omadm_certstore_thumbprint_parse(text, parsed) == OMADM_OK &&
                       !strcmp(parsed, upper),
                   "what the store takes as a name, the API takes as a thumbprint");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    P = fuzz_platform();
    bool raw_ok = data[0] & 1;
    const uint8_t *v = data + 1;
    size_t n = size - 1;

    uint8_t *der = NULL;
    size_t der_len = 0;
    const char *why = NULL;
    int rc = cert_decode(P, v, n, raw_ok, &der, &der_len, &why);
    FUZZ_CHECK(rc == 0 || rc == -1, "cert_decode: %d (out of memory without a failed allocation?)",
               rc);
    if (rc == 0) {
        accepted(der, der_len);
    } else {
        FUZZ_CHECK(!der && why, "a refused value: nothing handed out, a reason");
    }
    /* the same answer with the fields the store keeps, from the same parse */
    uint8_t *der2 = NULL;
    size_t der2_len = 0;
    cert_info_t kept, info;
    int rc2 = cert_decode_info(P, v, n, raw_ok, &der2, &der2_len, &kept, &why);
    FUZZ_CHECK(rc2 == rc, "cert_decode_info: %d, cert_decode: %d", rc2, rc);
    if (rc == 0) {
        FUZZ_CHECK(der2_len == der_len && !memcmp(der2, der, der_len), "cert_decode_info: DER");
        FUZZ_CHECK(cert_info_from_der(P, der, der_len, &info) == 0, "cert_info_from_der");
        FUZZ_CHECK(!strcmp(kept.thumb, info.thumb) && !strcmp(kept.issued_by, info.issued_by) &&
                       !strcmp(kept.issued_to, info.issued_to) &&
                       !strcmp(kept.valid_from, info.valid_from) &&
                       !strcmp(kept.valid_to, info.valid_to) &&
                       !strcmp(kept.template_name, info.template_name) &&
                       kept.subject_hash == info.subject_hash,
                   "cert_decode_info's fields are cert_info_from_der's");
        cert_info_free(P, &info);
        cert_info_free(P, &kept);
    }
    free(der2);
    free(der);

    /* text the store wrote itself */
    char *text = malloc(n + 1);
    FUZZ_CHECK(text != NULL, "malloc");
    memcpy(text, v, n);
    text[n] = 0;
    uint8_t *bytes = NULL;
    size_t blen = 0;
    rc = cert_b64_decode(P, text, &bytes, &blen);
    FUZZ_CHECK(rc == 0 || rc == -1, "cert_b64_decode: %d", rc);
    if (rc == 0)
        FUZZ_CHECK(blen <= strlen(text) / 4 * 3, "%zu bytes from %zu characters", blen, strlen(text));
    free(bytes);
    free(text);
    thumb_text(v, n);
    return 0;
}
