/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scep_msg.h - the SCEP (RFC 8894) message layer: builds request bytes and
 * checks response bytes.  It does no network I/O and keeps no state between
 * calls; the host moves the bytes over HTTP (see scep_url_get and
 * docs/scep.md for the GET and POST forms).
 *
 *   GetCACaps  text  -> scep_caps_parse -> scep_caps_choose
 *   GetCACert  bytes -> scep_cacert_parse -> scep_cacert_match_thumbprint
 *   keygen, CSR, self-signed signer, transactionID
 *   PKCSReq / CertPoll pkiMessage -> (host: PKIOperation) -> CertRep
 *   CertRep bytes -> scep_certrep_parse -> SUCCESS + certificate | PENDING | FAILURE
 *
 * Conventions
 *   - Every function returning scep_err_t sets *why (when why is not NULL)
 *     to a short static English reason on failure, and leaves it alone on
 *     success.  SCEP_E_NOMEM and SCEP_E_RESOURCE are the device's own
 *     trouble (memory, OpenSSL's included when it says so, randomness):
 *     the same bytes may well go through later; every other error is about
 *     the input or the parameters and will not.  Nothing here is thread-unsafe: no globals, and the OpenSSL
 *     legacy provider (single DES) is only ever loaded into a private
 *     library context that lives for one scep_certrep_parse call.
 *   - Pointers passed in are borrowed for the duration of the call.  Objects
 *     handed out (*out) belong to the caller and are released with the
 *     matching _free; scep_buf_t contents with scep_buf_free (which wipes
 *     them first: CSRs carry the challenge, key DER is a secret).
 *   - Memory: every function that hands out memory, and every _free, takes
 *     the host's platform table plat (defaults filled in, platform.h), and
 *     what one call allocated goes back to the same table.  Nonces and
 *     serial numbers come from plat's random hook.  OpenSSL's own working
 *     memory, and the randomness of RSA key generation (OpenSSL's default
 *     DRBG), stay OpenSSL's.
 *   - Inputs are bounded: a DER input larger than SCEP_MAX_DER fails with
 *     SCEP_E_TOO_LARGE before OpenSSL sees it.
 */
#ifndef SCEP_MSG_H
#define SCEP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"
#include "omadm.h"

#define SCEP_NONCE_LEN 16                 /* senderNonce / recipientNonce bytes */
#define SCEP_TXID_LEN 64                  /* hex SHA-256; buffers need +1 for the NUL */
#define SCEP_THUMB_LEN 40                 /* hex SHA-1;   buffers need +1 for the NUL */
#define SCEP_MAX_DER (1024 * 1024)        /* largest pkiMessage / cert set accepted */
#define SCEP_MAX_TEXT 4096                /* largest subject / SAN / EKU / caps text */

/* ---- errors ---------------------------------------------------------------- */

typedef enum {
    SCEP_OK = 0,
    SCEP_E_NOMEM = 1,         /* an allocation failed */
    SCEP_E_INVALID_ARG = 2,   /* NULL, out of range or unparsable parameter text */
    SCEP_E_MALFORMED = 3,     /* input bytes are not the expected structure */
    SCEP_E_TOO_LARGE = 4,     /* input exceeds SCEP_MAX_DER / SCEP_MAX_TEXT */
    SCEP_E_UNSUPPORTED = 5,   /* an algorithm or value we do not (or will not) handle */
    SCEP_E_NO_ALGORITHM = 6,  /* GetCACaps and HashAlgorithm leave nothing acceptable */
    SCEP_E_NOT_FOUND = 7,     /* no suitable certificate where one is required */
    SCEP_E_UNTRUSTED = 8,     /* thumbprint or chain check failed */
    SCEP_E_SIGNATURE = 9,     /* response not (validly) signed by the expected signer */
    SCEP_E_MISMATCH = 10,     /* messageType / transactionID / recipientNonce differ */
    SCEP_E_DECRYPT = 11,      /* the envelope could not be opened with our key */
    SCEP_E_CRYPTO = 12,       /* OpenSSL failed for another reason */
    SCEP_E_RESOURCE = 13,     /* a local resource failed (the host's random hook) */
    SCEP_E_EXPIRED = 14,      /* a certificate outside its validity period */
    SCEP_E__COUNT
} scep_err_t;

/* Never NULL; "unknown error" outside the enum. */
const char *scep_strerror(scep_err_t err);

/* ---- byte buffers ------------------------------------------------------------ */

/* Output bytes.  data comes from plat, len bytes, followed by one NUL that
 * is not counted (so text outputs are C strings). */
typedef struct scep_buf {
    uint8_t *data;
    size_t len;
} scep_buf_t;

/* Wipes, frees and zeroes *b; NULL-safe, safe on a zeroed buffer. */
void scep_buf_free(const omadm_platform_t *plat, scep_buf_t *b);

/* Borrowed input bytes (e.g. the device's Root/System certificates). */
typedef struct scep_blob {
    const uint8_t *data;
    size_t len;
} scep_blob_t;

/* ---- keys and certificates ----------------------------------------------------- */

typedef struct scep_key scep_key_t;     /* an RSA key pair in a key store (keystore.h) */
typedef struct scep_cert scep_cert_t;   /* one X.509 certificate (wraps X509) */

/* New RSA key of 1024, 2048 or 4096 bits (e65537); *out owned by caller.
 * Randomness comes from OpenSSL's default DRBG, not from plat. */
scep_err_t scep_keygen_rsa(const omadm_platform_t *plat, unsigned bits, scep_key_t **out,
                           const char **why);
/* The same in two steps, for a key made on another thread: scep_key_alloc
 * (on the caller's thread: it uses plat) gives an empty key object, and
 * scep_key_generate_rsa fills it using OpenSSL only (no hook of the
 * platform table), so it may run anywhere.  An empty or failed key object
 * is released with scep_key_free like any other. */
scep_err_t scep_key_alloc(const omadm_platform_t *plat, scep_key_t **out, const char **why);
scep_err_t scep_key_generate_rsa(scep_key_t *key, unsigned bits, const char **why);
/* The same in key store ks (NULL: the software one).  A TPM key store
 * makes the key in the TPM (SCEP_E_CRYPTO when the TPM cannot). */
scep_err_t scep_key_generate(scep_key_t *key, const keystore_t *ks, unsigned bits,
                             const char **why);
/* Load a software private key from DER (PKCS#8 or traditional RSA); *out owned. */
scep_err_t scep_key_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                             scep_key_t **out, const char **why);
/* Load a key blob (scep_key_to_der) with the first of stores[0..n_stores)
 * that owns it (ks_load): SCEP_E_RESOURCE when it is a TPM key and no TPM
 * key store is given or the TPM is unreachable. */
scep_err_t scep_key_load(const omadm_platform_t *plat, const keystore_t *const *stores,
                         size_t n_stores, const uint8_t *der, size_t len, scep_key_t **out,
                         const char **why);
/* The key's blob into *out: unencrypted PKCS#8 DER for a software key (a
 * secret: the caller stores it protected), the TSS2 PRIVATE KEY DER (the
 * key wrapped by the TPM) for a TPM key; released with scep_buf_free. */
scep_err_t scep_key_to_der(const omadm_platform_t *plat, const scep_key_t *key, scep_buf_t *out,
                           const char **why);
/* The PEM label of the key's blob ("PRIVATE KEY", "TSS2 PRIVATE KEY"),
 * its key store and its key store handle; NULL for an empty key. */
const char *scep_key_pem_label(const scep_key_t *key);
const keystore_t *scep_key_store(const scep_key_t *key);
const ks_key_t *scep_key_ks(const scep_key_t *key);
void scep_key_free(const omadm_platform_t *plat, scep_key_t *key);   /* NULL-safe */

/* Parse exactly one DER certificate (no trailing bytes); *out owned. */
scep_err_t scep_cert_from_der(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                              scep_cert_t **out, const char **why);
/* DER of cert into *out (owned). */
scep_err_t scep_cert_to_der(const omadm_platform_t *plat, const scep_cert_t *cert,
                            scep_buf_t *out, const char **why);
void scep_cert_free(const omadm_platform_t *plat, scep_cert_t *cert);   /* NULL-safe */
/* Another handle on cert's certificate, allocated with plat (the certificate
 * itself is shared and reference counted: no copy, no new decode).  Each
 * handle is freed with scep_cert_free and the plat it was made with.
 * SCEP_E_INVALID_ARG, SCEP_E_NOMEM. */
scep_err_t scep_cert_share(const omadm_platform_t *plat, const scep_cert_t *cert,
                           scep_cert_t **out, const char **why);
/* SCEP_OK when cert is valid at now (Unix time): notAfter after now, and
 * notBefore at most skew seconds after it (0..86400: an allowance for the
 * issuer's clock running ahead).  SCEP_E_EXPIRED (why says which end)
 * otherwise; SCEP_E_MALFORMED when a time cannot be read. */
scep_err_t scep_cert_check_validity(const scep_cert_t *cert, int64_t now, int64_t skew,
                                    const char **why);
/* Upper-case hex SHA-1 of the DER ("thumbprint"), NUL-terminated. */
scep_err_t scep_cert_thumbprint(const scep_cert_t *cert, char out[SCEP_THUMB_LEN + 1]);
/* One-line RFC 2253 rendering of the subject into buf (truncated, always
 * NUL-terminated); returns buf.  For logs and tests. */
char *scep_cert_subject(const scep_cert_t *cert, char *buf, size_t size);

/* ---- GetCACaps --------------------------------------------------------------- */

enum {
    SCEP_CAP_AES = 1u << 0,           /* AES (= AES-128-CBC) */
    SCEP_CAP_DES3 = 1u << 1,
    SCEP_CAP_SHA1 = 1u << 2,
    SCEP_CAP_SHA256 = 1u << 3,
    SCEP_CAP_SHA512 = 1u << 4,
    SCEP_CAP_POST = 1u << 5,          /* POSTPKIOperation */
    SCEP_CAP_STANDARD = 1u << 6,      /* SCEPStandard: implies AES, SHA-256, POST */
    SCEP_CAP_RENEWAL = 1u << 7,
    SCEP_CAP_NEXT_CA = 1u << 8        /* GetNextCACert */
};

/* Capability bits from a GetCACaps body: words separated by LF, CRLF or
 * other white space, matched case-insensitively; unknown words ignored.
 * Never fails: garbage or an empty body gives 0 ("nothing supported").
 * At most SCEP_MAX_TEXT bytes are looked at.  text need not be NUL-terminated. */
unsigned scep_caps_parse(const char *text, size_t len);

typedef enum { SCEP_CIPHER_AES128_CBC = 1, SCEP_CIPHER_DES3_CBC = 2 } scep_cipher_t;
typedef enum { SCEP_DIGEST_SHA1 = 1, SCEP_DIGEST_SHA256 = 2, SCEP_DIGEST_SHA512 = 3 } scep_digest_t;

/* "AES-128-CBC", "DES-EDE3-CBC"; "SHA-1", "SHA-256", "SHA-512"; "?" otherwise. */
const char *scep_cipher_name(scep_cipher_t c);
const char *scep_digest_name(scep_digest_t d);

/*
 * Pick the request cipher and digest.  hash_families is the CSP's
 * HashAlgorithm value ("SHA-1", "SHA-2", "SHA-1+SHA-2", ..., matched
 * case-insensitively; SHA-3 is accepted but no SCEP digest belongs to it);
 * NULL, "" or white space allows every family.
 *   cipher: AES-128-CBC if AES or SCEPStandard, else DES3, else error.
 *   digest: with SHA-2 allowed, SHA-256 if SHA-256 or SCEPStandard, else
 *           SHA-512 if offered; then SHA-1 if SHA-1 allowed and offered.
 * Single DES and MD5 are never chosen.  SCEP_E_NO_ALGORITHM (why says which
 * side is empty) when nothing acceptable is left; a host that must talk to
 * a server without GetCACaps may OR in SCEP_CAP_DES3 | SCEP_CAP_SHA1 itself.
 * SCEP_E_INVALID_ARG when hash_families names no known family.
 */
scep_err_t scep_caps_choose(unsigned caps, const char *hash_families, scep_cipher_t *cipher,
                            scep_digest_t *digest, const char **why);

/* True when PKIOperation must/should go by POST (POSTPKIOperation or SCEPStandard). */
bool scep_caps_post(unsigned caps);

/* ---- GetCACert --------------------------------------------------------------- */

typedef struct scep_certset scep_certset_t;

/*
 * Parse a GetCACert body: one DER certificate (x-x509-ca-cert) or a
 * degenerate certs-only PKCS#7 SignedData (x-x509-ca-ra-cert) with at least
 * one certificate.  Then select (see docs/scep.md):
 *   recipient  the RSA cert to encrypt requests to: among non-CA certs
 *              (all certs when none) the first with keyEncipherment, else the
 *              leaf (a cert that issued no other cert in the set);
 *   verifier   the cert that must sign responses: likewise digitalSignature;
 *   issuer     the CA that issues (subject of CertPoll's IssuerAndSubject):
 *              the issuer of the recipient when it is in the set, else the
 *              recipient itself.
 * A single certificate fills all three roles.  *out owned by the caller.
 */
scep_err_t scep_cacert_parse(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                             scep_certset_t **out, const char **why);
void scep_certset_free(const omadm_platform_t *plat, scep_certset_t *set);   /* NULL-safe */
size_t scep_certset_count(const scep_certset_t *set);
/* Borrowed pointers, valid while set lives; NULL only for a bad index. */
const scep_cert_t *scep_certset_get(const scep_certset_t *set, size_t i);
const scep_cert_t *scep_certset_recipient(const scep_certset_t *set);
const scep_cert_t *scep_certset_verifier(const scep_certset_t *set);
const scep_cert_t *scep_certset_issuer(const scep_certset_t *set);

/*
 * CAThumbprint check.  sha1_hex: 40 hex digits, any case; spaces, tabs,
 * colons and dashes are ignored.  The pinned certificate is the returned
 * cert, or one of extra_roots (DER, e.g. the device's Root/System store),
 * with that SHA-1.  SCEP_OK when it exists and the recipient and verifier
 * are the pinned cert or chain to it (signatures checked; chain built from
 * the returned certs; an intermediate may be the pin).  now: Unix time for
 * validity periods, 0 = do not check times.  SCEP_E_UNTRUSTED otherwise;
 * SCEP_E_INVALID_ARG for a malformed thumbprint.  Unparsable extra_roots
 * are skipped.
 */
scep_err_t scep_cacert_match_thumbprint(const scep_certset_t *set, const char *sha1_hex,
                                        const scep_blob_t *extra_roots, size_t n_extra,
                                        int64_t now, const char **why);

/* ---- request building ---------------------------------------------------------- */

/* CSR content, from the CSP's Install parameters (borrowed strings). */
typedef struct scep_csr_params {
    const char *subject;       /* SubjectName, X.500 string ("CN=x,O=y"); required */
    const char *san;           /* SubjectAlternativeNames "type+value;..."; NULL/"" = none */
    unsigned key_usage;        /* KeyUsage Windows bits (0x80 digSig ... 0x01, 0x8000); 0 = none */
    const char *eku;           /* EKUMapping, dotted OIDs joined by '+'; NULL/"" = none */
    const char *challenge;     /* put verbatim into challengePassword; NULL = none */
    const char *valid_period;  /* "Days" | "Months" | "Years" (any case); NULL = Days */
    unsigned valid_units;      /* ValidPeriodUnits; 0 = no validity requested */
    scep_digest_t digest;      /* CSR signature digest (use the chosen one) */
} scep_csr_params_t;

/* DER PKCS#10 signed with key, into *out (owned; holds the challenge).
 * SCEP_E_INVALID_ARG with why naming the parameter that does not parse. */
scep_err_t scep_csr(const omadm_platform_t *plat, const scep_key_t *key,
                    const scep_csr_params_t *p, scep_buf_t *out, const char **why);

/* Self-signed request signer for key: subject parsed like the CSR's, KU
 * digitalSignature+keyEncipherment (critical), SKI, random serial (plat's
 * random hook), valid from now-1h to now+30d (now: Unix time from the
 * host); *out owned. */
scep_err_t scep_self_signed(const omadm_platform_t *plat, const scep_key_t *key,
                            const char *subject, scep_digest_t digest, int64_t now,
                            scep_cert_t **out, const char **why);

/* transactionID: upper-case hex SHA-256 of the DER SubjectPublicKeyInfo of
 * key (stable for a key, so a resumed enrollment reuses it). */
scep_err_t scep_transaction_id(const scep_key_t *key, char out[SCEP_TXID_LEN + 1],
                               const char **why);

/* What every pkiMessage we send needs (all borrowed). */
typedef struct scep_msg_params {
    const scep_cert_t *signer_cert;   /* self-signed cert (or old cert for renewal) */
    const scep_key_t *signer_key;     /* its key; also opens the CertRep envelope */
    const scep_cert_t *recipient;     /* scep_certset_recipient() */
    scep_cipher_t cipher;
    scep_digest_t digest;
    const char *transaction_id;       /* printable, 1..128 chars */
} scep_msg_params_t;

/* PKCSReq (19) over the DER CSR: SignedData(EnvelopedData(csr)) with signed
 * attributes messageType, transactionID, senderNonce.  A fresh nonce (plat's
 * random hook) is written to nonce; keep it for scep_certrep_parse.  *out
 * owned. */
scep_err_t scep_pkcsreq(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                        const uint8_t *csr, size_t csr_len, uint8_t nonce[SCEP_NONCE_LEN],
                        scep_buf_t *out, const char **why);

/* RenewalReq (17): the same, mp->signer_* being the existing certificate and key. */
scep_err_t scep_renewalreq(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                           const uint8_t *csr, size_t csr_len, uint8_t nonce[SCEP_NONCE_LEN],
                           scep_buf_t *out, const char **why);

/* CertPoll (20, GetCertInitial): messageData = IssuerAndSubject { issuer =
 * subject of issuer (scep_certset_issuer), subject = subject of the CSR }.
 * Same signer and transaction ID as the PKCSReq; fresh nonce.  *out owned. */
scep_err_t scep_certpoll(const omadm_platform_t *plat, const scep_msg_params_t *mp,
                         const scep_cert_t *issuer, const uint8_t *csr, size_t csr_len,
                         uint8_t nonce[SCEP_NONCE_LEN], scep_buf_t *out, const char **why);

/* ---- CertRep ------------------------------------------------------------------ */

typedef enum {
    SCEP_STATUS_SUCCESS = 0,
    SCEP_STATUS_FAILURE = 2,
    SCEP_STATUS_PENDING = 3
} scep_status_t;

/* A private library context with OpenSSL's legacy provider alone and its
 * DES-CBC, for a CertRep whose envelope is single DES (opened with it only
 * then).  scep_legacy_open makes one ahead of the answer, so that it can be
 * made while the request waits on the server; it calls OpenSSL and libc
 * only, never a hook of a platform table, so any thread may make it (and
 * another use and free it).  SCEP_E_NOMEM, SCEP_E_UNSUPPORTED (no legacy
 * module).  scep_legacy_free: NULL-safe. */
typedef struct scep_legacy scep_legacy_t;
scep_err_t scep_legacy_open(scep_legacy_t **out, const char **why);
void scep_legacy_free(scep_legacy_t *l);

/* What the response must match (all borrowed). */
typedef struct scep_expect {
    const scep_cert_t *verifier;        /* scep_certset_verifier(): the only accepted signer */
    const scep_certset_t *ca_certs;     /* the GetCACert set: the issued cert must chain to it */
    const char *transaction_id;         /* ours */
    const uint8_t *nonce;               /* the senderNonce we sent (SCEP_NONCE_LEN bytes) */
    const scep_cert_t *signer_cert;     /* our request signer = envelope recipient */
    const scep_key_t *signer_key;       /* its key */
    const scep_key_t *csr_key;          /* the key in our CSR (= signer_key unless renewing) */
    int64_t now;                        /* Unix time for the chain check; 0 = no time checks */
    const scep_legacy_t *legacy;        /* NULL, or a context from scep_legacy_open for a
                                           single-DES envelope (else one is opened for it) */
} scep_expect_t;

typedef struct scep_certrep {
    scep_status_t status;
    int fail_info;                /* FAILURE: the failInfo number (0..4 named); otherwise -1 */
    char fail_text[128];          /* failInfoText, if the server sent one (truncated) */
    scep_buf_t cert;              /* SUCCESS: DER of the issued certificate (owned) */
    scep_cert_t *issued;          /* SUCCESS: the same, decoded (owned); NULL when there was
                                     no memory to keep it (cert is what counts) */
    const char *digest;           /* static: the SignerInfo digest, e.g. "SHA1" */
    const char *cipher;           /* static: the envelope cipher, e.g. "DES-CBC"; NULL without one */
    const char *warning;          /* static, NULL or e.g. single-DES used via the legacy provider */
} scep_certrep_t;

void scep_certrep_init(scep_certrep_t *rep);    /* cannot fail */
/* Frees cert (with the plat scep_certrep_parse was given); safe after init. */
void scep_certrep_clear(const omadm_platform_t *plat, scep_certrep_t *rep);

/*
 * Check a CertRep (docs/scep.md, "Checking a CertRep"): one SignerInfo, by
 * exp->verifier (certificates inside the reply are not trusted), RSA with
 * SHA-1/224/256/384/512 (SignerInfo algorithm rsaEncryption or
 * shaNWithRSAEncryption); messageType 3, transactionID and recipientNonce
 * ours; pkiStatus 0/2/3; FAILURE carries failInfo.  On SUCCESS the envelope
 * (AES, 3DES; single DES through a private legacy-provider context, with
 * rep->warning set) is opened with exp->signer_key and the certificate
 * whose public key is exp->csr_key is taken and checked to chain to
 * exp->ca_certs.  SUCCESS without that certificate is an error.
 * SCEP_OK means rep->status is authentic; rep is owned by the caller and
 * released with scep_certrep_clear (also after a failure).
 */
scep_err_t scep_certrep_parse(const omadm_platform_t *plat, const uint8_t *der, size_t len,
                              const scep_expect_t *exp, scep_certrep_t *rep, const char **why);

/* "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"; NULL for
 * other values (print them as numbers). */
const char *scep_failinfo_name(int fail_info);

/* ---- URLs --------------------------------------------------------------------- */

/*
 * GET URL for operation on base_url (which may already carry a query: then
 * '&' joins).  For "PKIOperation" the message bytes are base64 (standard
 * alphabet) and percent-encoded ('+' %2B, '/' %2F, '=' %3D); for other
 * operations they are text (a CA identifier) and percent-encoded as is.
 * msg NULL: no message parameter.  *out is a C string from plat (plat_free).
 * POST form: URL from msg NULL, the DER as body, Content-Type
 * application/x-pki-message.
 */
scep_err_t scep_url_get(const omadm_platform_t *plat, const char *base_url, const char *operation,
                        const uint8_t *msg, size_t msg_len, char **out, const char **why);

/* base_url with "/pkiclient.exe" appended unless it already ends with it
 * (Windows devices do this; NDES-style servers expect it).  *out from plat. */
scep_err_t scep_url_windows_base(const omadm_platform_t *plat, const char *base_url, char **out,
                                 const char **why);

#endif
