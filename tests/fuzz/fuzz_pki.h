/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pki.h - the SCEP server's side, for the targets that fuzz what a
 * SCEP server answers (fuzz_scep, fuzz_enroll): RSA test keys written into
 * the harness, certificates made from them, and CertReps built from a
 * spec in the input and signed by a CA the harness holds the key of, so
 * that the library's code after a CertRep's signature check is reached.
 *
 * Everything here is made with OpenSSL directly, never through the
 * library (except fuzz_pki_x509_of).  Nothing fails quietly: a fixture
 * that cannot be made stops the run (FUZZ_CHECK).
 */
#ifndef FUZZ_PKI_H
#define FUZZ_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "csp/scep_msg.h"

/* Test keys (RSA-1024, PKCS#8 PEM), made for these harnesses and nothing
 * else: a CA, a device, and a second CA (an intermediate). */
extern const char FUZZ_PKI_CA_KEY[], FUZZ_PKI_DEV_KEY[], FUZZ_PKI_SUB_KEY[];

/* The key in pem (owned by the caller: EVP_PKEY_free). */
EVP_PKEY *fuzz_pki_key(const char *pem);

/* A certificate "O=Fuzz PKI, CN=cn" with serial, for key's public key,
 * issued by issuer with issuer_key (issuer NULL: self-signed with key),
 * valid from..to ("YYYYMMDDHHMMSSZ"), a CA (basicConstraints, keyCertSign,
 * digitalSignature, keyEncipherment) or an end entity (digitalSignature),
 * signed with SHA-256.  Owned by the caller (X509_free). */
X509 *fuzz_pki_cert(const char *cn, long serial, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                    const char *from, const char *to, bool ca);
/* t (seconds since 1970, UTC) as "YYYYMMDDHHMMSSZ" into buf (16 bytes). */
void fuzz_pki_time(int64_t t, char buf[16]);

/* DER of x (OPENSSL_free). */
uint8_t *fuzz_pki_der(X509 *x, size_t *len);
/* A library certificate as X509 (X509_free). */
X509 *fuzz_pki_x509_of(const omadm_platform_t *plat, const scep_cert_t *c);
/* A degenerate certs-only PKCS#7 SignedData of certs, DER (OPENSSL_free). */
uint8_t *fuzz_pki_degenerate(X509 **certs, size_t n, size_t *len);

/* The recorded micromdm exchange, tests/data/scep/micromdm (its README
 * says what each file holds): its directory into dir, from $OMADM_TOP,
 * else found up from the program; false when it is not there. */
bool fuzz_pki_capture(char *dir, size_t size);
/* The file name in dir (at most SCEP_MAX_DER bytes, NUL after them;
 * free), or NULL. */
uint8_t *fuzz_pki_slurp(const char *dir, const char *name, size_t *len);

/* The envelope ciphers a spec picks from, by index; "DES-CBC" goes through
 * a private library context with the legacy provider. */
#define FUZZ_PKI_CIPHERS 4
extern const char *const fuzz_pki_ciphers[FUZZ_PKI_CIPHERS];
/* EnvelopedData (DER, malloc'ed) of plain to the certificate to, with the
 * cipher; NULL when OpenSSL will not make it (no legacy provider). */
uint8_t *fuzz_pki_envelope(X509 *to, const uint8_t *plain, size_t len, const char *cipher,
                           size_t *out_len);

/*
 * A CertRep spec, as the input gives it:
 *   s[0] bits 0-1 pkiStatus: 0 SUCCESS, 1 FAILURE, 2 PENDING, 3 text[0] as is
 *        bits 2-3 content: 0 the prepared envelope (fuzz_pki_rep_t.env); 1 an
 *                 envelope of body; 2 body as the content itself; 3 none
 *        bits 4-5 envelope cipher: AES-128, 3DES, AES-256, single DES
 *        bit 6 wrong transactionID, bit 7 wrong recipientNonce
 *   s[1] bits 0-2 digest: SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, MD5, SHA-1, SHA-256
 *        bit 3 SignerInfo algorithm relabelled sha256WithRSAEncryption
 *        bit 4 signed by the other signer (not the CA)
 *        bit 5 messageType text[1] instead of "3"
 *        bit 6 failInfo text[2] instead of "2"
 *        bit 7 failInfoText text[3]
 *   s[2] length of text, s[3..] text (fields separated by '|'), then body.
 */
typedef struct fuzz_pki_spec {
    unsigned status, content, cipher, digest;
    bool bad_txid, bad_nonce, relabel, other_signer;
    char *text[4];           /* NULL: the default; into buf */
    const uint8_t *body;     /* borrowed from the input */
    size_t body_len;
    char buf[256];
} fuzz_pki_spec_t;

void fuzz_pki_spec_parse(const uint8_t *p, size_t n, fuzz_pki_spec_t *s);
/* The messageType the spec puts in ("3" unless text[1]). */
const char *fuzz_pki_spec_message_type(const fuzz_pki_spec_t *s);
/* The failInfo a FAILURE spec puts in ("2" unless text[2]). */
const char *fuzz_pki_spec_fail_info(const fuzz_pki_spec_t *s);
/* A CertRep the device must refuse whatever it holds: signed by the other
 * signer, with MD5, another messageType, a wrong transactionID or nonce. */
bool fuzz_pki_spec_refused(const fuzz_pki_spec_t *s);

/* What a CertRep is built with (all borrowed). */
typedef struct fuzz_pki_rep {
    X509 *ca;                     /* signs it */
    EVP_PKEY *ca_key;
    X509 *other;                  /* signs it instead when the spec says so */
    EVP_PKEY *other_key;
    X509 *recipient;              /* the request signer: an envelope of body goes to it */
    const char *txid;             /* the request's transactionID */
    const uint8_t *nonce;         /* its senderNonce, SCEP_NONCE_LEN bytes */
    uint8_t *const *env;          /* content 0: the envelope for each cipher (NULL: none) */
    const size_t *env_len;
} fuzz_pki_rep_t;

/* The CertRep of spec s as DER (malloc'ed), or NULL when OpenSSL will not
 * build it (an attribute it refuses, say). */
uint8_t *fuzz_pki_certrep(const fuzz_pki_rep_t *r, const fuzz_pki_spec_t *s, size_t *len);

#endif
