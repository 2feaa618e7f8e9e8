/* SPDX-License-Identifier: Apache-2.0 */
/*
 * omadm_certstore.h - the certificate CSPs on the crash-safe store, and
 * what a host reads from the store.
 *
 * One store serves ./Vendor/MSFT/CertificateStore and
 * ./Device/Vendor/MSFT/CertificateStore (the same tree), and
 * ./Device/Vendor/MSFT/RootCATrustedCertificates (also unprefixed
 * ./Vendor/MSFT/...) and ./User/Vendor/MSFT/RootCATrustedCertificates.
 * RootCATrustedCertificates Root and CA are the same stores as
 * CertificateStore Root/System and CA/System.  SCEP enrollments
 * (CertificateStore My/SCEP, ClientCertificateInstall/SCEP) and PFX
 * installs (ClientCertificateInstall/PFXCertInstall, docs/pfx.md) put
 * their certificates and private keys into My/System or My/User.
 *
 * The store does file I/O in the directory it is given (POSIX files,
 * flock, fsync, rename; docs/certificatestore.md says which files other
 * software reads); changes of one server message become durable together
 * at the end of the message.
 *
 * Conventions as in omadm.h.  Ownership: arguments are borrowed for the
 * call.  Memory the store hands out is owned by the caller and released
 * with omadm_certstore_buffer_free(), which wipes it first (it may hold a
 * private key).  Threads: "store" means any thread, but never at the same
 * time as another call on the same omadm_certstore_t, nor as a call on an
 * engine it is registered on (omadm_process and omadm_step reach the store
 * through the CSPs).  One store per thread is fine; each directory is open
 * once per process.
 *
 * A store name argument is a store's id or label, case-insensitively
 * ("my-system", "My/System"; see omadm_certstore_kind).  A thumbprint
 * argument is the SHA-1 of the certificate's DER as 40 hex digits in any
 * case, with ':' or ' ' allowed between them, so what `openssl x509 -noout
 * -fingerprint -sha1` prints works, with or without its
 * "sha1 Fingerprint=" prefix.
 */
#ifndef OMADM_CERTSTORE_H
#define OMADM_CERTSTORE_H

#include "omadm.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct omadm_certstore omadm_certstore_t;

/* Open the store in dir (copied; created if missing; a journal left by a
 * crash is replayed).  platform (copied; NULL: the defaults, as for
 * omadm_new) gives the store and the CSPs their memory, clock and
 * randomness; its ctx must stay valid while the store or a buffer it
 * handed out lives.
 * Returns OMADM_OK and *out, owned by the caller (omadm_certstore_close);
 * OMADM_E_INVALID_ARG (dir or out NULL); OMADM_E_NOMEM; OMADM_E_STORAGE
 * (the directory cannot be created, locked or read; *why says why);
 * OMADM_E_BUSY (dir is already open in this process).  On failure *out is
 * NULL and *why (why may be NULL) gets a short static reason.
 * Threads: any thread. */
OMADM_API omadm_error_t omadm_certstore_open(const char *dir, const omadm_platform_t *platform,
                                             omadm_certstore_t **out, const char **why);
/* Close the store (NULL-safe): after omadm_free of every engine it is
 * registered on.  Buffers it handed out stay valid.  Threads: store. */
OMADM_API void omadm_certstore_close(omadm_certstore_t *cs);

/* What keeps the store from being read or changed now, or NULL when
 * nothing does: a batch committed before a crash waits to be applied and
 * cannot be, because its journal is of a newer format than this library
 * reads (*err, may be NULL, gets OMADM_E_NEWER_FORMAT; the text names the
 * journal and both formats: the version that wrote it applies it, this one
 * neither applies nor drops it), or because applying it fails now, a full
 * disk say (OMADM_E_STORAGE).  It tries to apply such a batch first.  While
 * the store is blocked every operation on it fails, and so does
 * omadm_process() on an engine it is registered on.  Returns the store's
 * text, valid until the next call on the store, or NULL (*err OMADM_OK).
 * Threads: store. */
OMADM_API const char *omadm_certstore_blocked(omadm_certstore_t *cs, omadm_error_t *err);

/* Register the CSPs on an engine.  cs must outlive the engine.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or cs NULL); OMADM_E_EXISTS
 * (the engine has these CSPs, or another plugin on their bases, already);
 * OMADM_E_NOMEM.  Threads: engine (omadm.h) and store. */
OMADM_API omadm_error_t omadm_certstore_register(omadm_t *dm, omadm_certstore_t *cs);

/* ---- what SCEP enrollment needs from the host ---- */

/* One HTTP exchange.  The library builds requests; the host moves bytes. */
typedef struct omadm_http_req {
    const char *method;        /* "GET" or "POST" */
    const char *url;
    const char *content_type;  /* POST body type, or NULL */
    const uint8_t *body;       /* POST body */
    size_t body_len;
    size_t max_response;       /* larger responses are an error */
    unsigned timeout_s;        /* whole exchange, connect included */
    /* Added after 0.1.0 (at the end: the library allocates this struct, the
     * host only reads it).  TLS client authentication for this exchange,
     * or NULL: none.  The DM identity's renewal (docs/wstep.md) sets them:
     * the host must then present this certificate (PEM) with this private
     * key (PEM, secret: do not copy or log it), require https:// and never
     * follow a redirect.  A host built before them ignores them, and the
     * renewal then fails at the TLS handshake. */
    const char *client_cert_pem;
    const char *client_key_pem;
} omadm_http_req_t;

typedef struct omadm_http_resp {
    int status;                /* HTTP status code */
    uint8_t *body;             /* owned by the host until release() */
    size_t len;
    char content_type[128];    /* "" when absent */
} omadm_http_resp_t;

typedef enum {
    OMADM_HTTP_OK = 0,         /* a response arrived (any status) */
    OMADM_HTTP_CONNECT = 1,    /* could not connect / resolve */
    OMADM_HTTP_TIMEOUT = 2,    /* no complete answer in time */
    OMADM_HTTP_TOO_LARGE = 3,  /* response above max_response */
    OMADM_HTTP_FAILED = 4,     /* anything else (TLS, protocol, memory) */
    OMADM_HTTP_ABORTED = 5     /* the host stopped the exchange (it is shutting down):
                                  the step ends at once, the enrollment stays as it was */
} omadm_http_result_t;

/* Called from omadm_step(), in its thread; req is borrowed for the call.
 * While it waits on the network, request() may let other processes use the
 * store: omadm_certstore_unlock() before the transfer, and
 * omadm_certstore_relock() after it, before returning. */
typedef struct omadm_http {
    void *ctx;
    /* Perform req; on OMADM_HTTP_OK fill resp (released with release()).
     * On failure write a one-line reason into err (err_size bytes). */
    omadm_http_result_t (*request)(void *ctx, const omadm_http_req_t *req,
                                   omadm_http_resp_t *resp, char *err, size_t err_size);
    void (*release)(void *ctx, omadm_http_resp_t *resp);
} omadm_http_t;

typedef struct omadm_certstore_host {
    const omadm_http_t *http;      /* NULL: enrollments wait until a host has one */
    unsigned minute_seconds;       /* length of one RetryDelay minute; 0 = 60 */
    /* Progress and warnings of background work; NULL = silent. */
    void (*log)(void *ctx, omadm_log_level_t level, const char *msg);
    void *log_ctx;
} omadm_certstore_host_t;

/* Give the store's background work (SCEP enrollment) its host services.
 * host is copied (NULL: none); host->http must outlive the store.  Cannot
 * fail; nothing happens when cs is NULL.  Threads: store. */
OMADM_API void omadm_certstore_set_host(omadm_certstore_t *cs, const omadm_certstore_host_t *host);

/* The TPM 2.0 that keeps private keys of KeyProtection 1 and 2 (SCEP
 * enrollments; docs/keys.md): tcti is a tpm2-tss TCTI configuration string
 * such as "device:/dev/tpmrm0" or "swtpm:host=127.0.0.1,port=2321" (letters,
 * digits and :/=,._-+@ only, at most 512 characters), copied; NULL or ""
 * means no TPM (the default): KeyProtection 1 then fails with
 * TBS_E_TPM_NOT_FOUND and 2 makes a software key.  The TPM is reached
 * through the OpenSSL 3 "tpm2" provider (tpm2-openssl) in a private library
 * context, only while an enrollment makes or uses a key.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs NULL, tcti not a TCTI string:
 * the setting is unchanged); OMADM_E_NOMEM.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_set_tpm(omadm_certstore_t *cs, const char *tcti);
/* OMADM_OK when omadm_certstore_set_tpm would take tcti as a TCTI string,
 * else OMADM_E_INVALID_ARG (NULL included).  Threads: any thread. */
OMADM_API omadm_error_t omadm_certstore_tpm_check(const char *tcti);
/* The TCTI set with omadm_certstore_set_tpm (the store's copy), or NULL. */
OMADM_API const char *omadm_certstore_tpm(const omadm_certstore_t *cs);

/* Release the store's lock (store/lock, held since omadm_certstore_open) so
 * that other processes can open the store while this one waits on the
 * network.  Only from inside the HTTP hook's request(): nothing is staged
 * then.  After the transfer, and before request() returns, take the lock
 * again with omadm_certstore_relock().  The enrollment then reads its record
 * again: when another process changed or deleted it meanwhile, that change
 * stands and the answer is dropped (the enrollment, as it now is, is taken
 * up at a later step).  A request() that returns with the store still
 * unlocked ends the step at once, without touching the store; the host then
 * closes it.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs NULL); OMADM_E_DENIED (not from
 * inside request(), the store is unlocked already, or it cannot let go now:
 * it keeps its lock, and the host should keep any lock of its own too).
 * Threads: store (the thread of the omadm_step call). */
OMADM_API omadm_error_t omadm_certstore_unlock(omadm_certstore_t *cs);
/* Take the store's lock again after omadm_certstore_unlock(), waiting
 * while another process holds the store open (a host with a lock of its own
 * around the store takes that first).  A batch another process left half
 * applied is finished before the store is read.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs NULL, or the store is not
 * unlocked); OMADM_E_STORAGE (the lock cannot be taken; the store stays
 * unlocked).  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_relock(omadm_certstore_t *cs);

/* ---- reading the store: for hosts, tools and TLS clients on the device ---- */

/* Hex digits of a thumbprint (SHA-1). */
#define OMADM_THUMBPRINT_LEN 40

/* One of the stores.  The strings are static. */
typedef struct omadm_certstore_kind {
    const char *id;        /* "root", "ca", "my-user", "my-system", "trustedpublisher",
                              "trustedpeople", "untrusted", "user-ca", ... */
    const char *label;     /* "Root/System", "CA/System", "My/User" ... for people */
    int trust;             /* non-zero: a trust store, with a CApath directory and
                              a PEM bundle for other software (every store but My) */
} omadm_certstore_kind_t;

/* The index-th store (0, 1, ... in a fixed order) into *out.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (out NULL); OMADM_E_NOT_FOUND
 * (index is past the last store).  Threads: any thread. */
OMADM_API omadm_error_t omadm_certstore_kind(size_t index, omadm_certstore_kind_t *out);
/* A store by id or label, case-insensitively, into *out (may be NULL: only
 * the check).  Returns OMADM_OK; OMADM_E_INVALID_ARG (name NULL);
 * OMADM_E_NOT_FOUND (no such store).  Threads: any thread. */
OMADM_API omadm_error_t omadm_certstore_kind_find(const char *name, omadm_certstore_kind_t *out);

/* text as a thumbprint (see above) into out: 40 uppercase hex digits and a
 * NUL.  Returns OMADM_OK; OMADM_E_INVALID_ARG (text or out NULL, not 40 hex
 * digits).  Threads: any thread. */
OMADM_API omadm_error_t omadm_certstore_thumbprint_parse(const char *text,
                                                         char out[OMADM_THUMBPRINT_LEN + 1]);

/* The directory the store was opened in, as given to omadm_certstore_open.
 * Returns the store's copy (valid until omadm_certstore_close), or NULL
 * when cs is NULL.  Threads: store. */
OMADM_API const char *omadm_certstore_dir(const omadm_certstore_t *cs);

/* One certificate in one store.  Everything is borrowed for the callback. */
typedef struct omadm_cert_info {
    const char *store;              /* the store's id ("root", "my-system" ...) */
    const char *store_label;        /* its label ("Root/System" ...) */
    char thumbprint[OMADM_THUMBPRINT_LEN + 1]; /* uppercase */
    const char *name;               /* {CertHash} node name as the tree lists it: the
                                       thumbprint in upper case, whatever spelling the
                                       server used to Add it (Windows does the same) */
    const char *subject;            /* distinguished names as IssuedTo / IssuedBy */
    const char *issuer;             /*   show them: "CN=Test Root, O=Example" */
    const char *valid_from;         /* ISO 8601 UTC, "2026-01-31T12:00:00Z" */
    const char *valid_to;
    const char *template_name;      /* MS template name or OID; "" when none */
    const char *installed_by;       /* id of the server that installed it; "" unknown */
    int64_t installed_at;           /* when, in seconds since 1970-01-01 UTC */
    int has_key;                    /* non-zero: the store holds its private key */
} omadm_cert_info_t;

/* Receives certificates one by one; return 0 to go on, anything else to
 * stop. */
typedef int (*omadm_cert_fn)(void *ctx, const omadm_cert_info_t *cert);

/* Every certificate of store (NULL: of every store, in omadm_certstore_kind
 * order), through fn; within a store in no particular order.  Staged and
 * committed changes of an unfinished message count.  Records that cannot
 * be read are skipped silently (omadm_certstore_list_checked and
 * omadm_certstore_check report them).
 * Returns OMADM_OK (also when fn stopped the walk); OMADM_E_INVALID_ARG (cs
 * or fn NULL); OMADM_E_NOT_FOUND (no such store); OMADM_E_STORAGE (a store
 * cannot be read); OMADM_E_NOMEM.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_list(omadm_certstore_t *cs, const char *store,
                                             omadm_cert_fn fn, void *ctx);

/* A record omadm_certstore_list_checked could not read.  Everything is
 * borrowed for the callback. */
typedef struct omadm_cert_skipped {
    const char *store;              /* the store's id ("root", "my-system" ...) */
    const char *store_label;        /* its label ("Root/System" ...) */
    const char *path;               /* the record's file: <store directory>/certs/<id>/<name> */
    const char *reason;             /* why, one short phrase: "malformed der (base64)",
                                       "does not hold a certificate", an I/O error ... */
} omadm_cert_skipped_t;

/* Receives the records a listing skips, one by one. */
typedef void (*omadm_cert_skipped_fn)(void *ctx, const omadm_cert_skipped_t *rec);

/* omadm_certstore_list, telling the records it skips: each record that
 * cannot be read (a damaged or truncated file, one that does not hold a
 * certificate, a file that cannot be read) goes to skipped (may be NULL)
 * with the same ctx, and the walk goes on with the next.
 * Returns OMADM_OK (every record was read; also when fn stopped the walk);
 * OMADM_E_CORRUPT (the walk is complete, or fn stopped it, but records
 * were skipped); otherwise as omadm_certstore_list.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_list_checked(omadm_certstore_t *cs, const char *store,
                                                     omadm_cert_fn fn,
                                                     omadm_cert_skipped_fn skipped, void *ctx);

/* The certificate with this thumbprint in store (NULL: in every store that
 * holds it, in omadm_certstore_kind order), through fn.
 * Returns OMADM_OK (also when fn stopped); OMADM_E_INVALID_ARG (cs,
 * thumbprint or fn NULL, not a thumbprint); OMADM_E_NOT_FOUND (no such
 * store, or no store asked holds the certificate); OMADM_E_STORAGE;
 * OMADM_E_NOMEM.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_show(omadm_certstore_t *cs, const char *store,
                                             const char *thumbprint, omadm_cert_fn fn, void *ctx);

typedef enum {
    OMADM_CERT_PEM = 0,    /* "-----BEGIN CERTIFICATE-----" text, NUL-terminated */
    OMADM_CERT_DER = 1     /* the DER bytes */
} omadm_cert_format_t;

/* One certificate, from store (NULL: the first store holding it, in
 * omadm_certstore_kind order), as PEM or DER into *out (*len bytes; PEM
 * has a NUL after them), owned by the caller: omadm_certstore_buffer_free.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (a NULL cs, thumbprint, out or len,
 * not a thumbprint, an unknown format); OMADM_E_NOT_FOUND (no such store,
 * or not in it); OMADM_E_STORAGE; OMADM_E_NOMEM.  On failure *out is NULL.
 * Threads: store. */
OMADM_API omadm_error_t omadm_certstore_export_cert(omadm_certstore_t *cs, const char *store,
                                                    const char *thumbprint,
                                                    omadm_cert_format_t format, uint8_t **out,
                                                    size_t *len);

/* Every certificate of one store as concatenated PEM into *pem (*len bytes
 * and a NUL; "" for an empty store), in the order omadm_certstore_list
 * gives, owned by the caller: omadm_certstore_buffer_free.  No keys.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (a NULL argument);
 * OMADM_E_NOT_FOUND (no such store); OMADM_E_STORAGE; OMADM_E_NOMEM.  On
 * failure *pem is NULL.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_export_store(omadm_certstore_t *cs, const char *store,
                                                     char **pem, size_t *len);

/* Paths other software on the device verifies certificates with, for a
 * trust store: its OpenSSL CApath directory (files <subject hash>.<n>, as
 * `openssl rehash` names them) and its PEM bundle.  Written NUL-terminated
 * into buf (size bytes); relative when the store's directory was given
 * relative.  Both always exist (possibly empty) once the store is open.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs, store or buf NULL, or a store
 * that is not a trust store: My/User, My/System); OMADM_E_NOT_FOUND (no
 * such store); OMADM_E_TOO_LARGE (buf too small).  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_capath(omadm_certstore_t *cs, const char *store,
                                               char *buf, size_t size);
OMADM_API omadm_error_t omadm_certstore_bundle(omadm_certstore_t *cs, const char *store,
                                               char *buf, size_t size);

/* A client certificate with its private key, as PEM a TLS library loads
 * (OpenSSL PEM_read_bio_X509 / PEM_read_bio_PrivateKey, libcurl
 * CURLOPT_SSLCERT_BLOB / CURLOPT_SSLKEY_BLOB, mbed TLS x509_crt_parse /
 * pk_parse_key).  cert_pem and key_pem are NUL-terminated (the lengths
 * without the NUL), owned by the caller and released, each, with
 * omadm_certstore_buffer_free (which wipes the key). */
typedef struct omadm_cert_identity {
    const char *store;                          /* static: the store's id */
    char thumbprint[OMADM_THUMBPRINT_LEN + 1];  /* uppercase */
    char *cert_pem;                             /* "-----BEGIN CERTIFICATE-----" */
    size_t cert_pem_len;
    char *key_pem;                              /* PKCS#8 "-----BEGIN PRIVATE KEY-----" (secret);
                                                   a key held by the TPM: its blob,
                                                   "-----BEGIN TSS2 PRIVATE KEY-----", usable only
                                                   through the TPM (omadm_certstore_tls_key) */
    size_t key_pem_len;
} omadm_cert_identity_t;

/* A client key held by a TPM (the key_pem of an omadm_cert_identity_t is
 * then a "TSS2 PRIVATE KEY", not PKCS#8) for a TLS library: an OpenSSL 3
 * EVP_PKEY of the default library context whose private operation runs in
 * the TPM set with omadm_certstore_set_tpm (docs/keys.md, "TLS"), to give
 * to SSL_CTX_use_PrivateKey (libcurl: from a CURLOPT_SSL_CTX_FUNCTION).
 * key_pem (len bytes) is borrowed.  *out is owned by the caller
 * (omadm_tls_key_free) and independent of cs; each signature connects to
 * the TPM for its duration.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (a NULL argument, key_pem not a TSS2
 * RSA key); OMADM_E_NO_DEVICE (no TPM configured, or a build without
 * tpm2-tss); OMADM_E_NOMEM.  *why (why may be NULL) gets a short static
 * reason on failure.  Threads: store; the key: one thread at a time. */
typedef struct omadm_tls_key omadm_tls_key_t;
OMADM_API omadm_error_t omadm_certstore_tls_key(omadm_certstore_t *cs, const char *key_pem,
                                                size_t len, omadm_tls_key_t **out,
                                                const char **why);
/* The key's EVP_PKEY * (borrowed: valid until omadm_tls_key_free; take a
 * reference with EVP_PKEY_up_ref to keep it longer), NULL for NULL. */
OMADM_API void *omadm_tls_key_pkey(const omadm_tls_key_t *key);
OMADM_API void omadm_tls_key_free(omadm_tls_key_t *key);   /* NULL-safe */

/* The certificate with this thumbprint and its private key from store
 * (NULL: My/System, then My/User) into *out.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs, thumbprint or out NULL, not a
 * thumbprint); OMADM_E_NOT_FOUND (no such store, or not in it);
 * OMADM_E_NO_KEY (the certificate is there, its private key is not);
 * OMADM_E_STORAGE; OMADM_E_NOMEM.  On failure *out holds no buffers.
 * Threads: store. */
OMADM_API omadm_error_t omadm_certstore_identity(omadm_certstore_t *cs, const char *store,
                                                 const char *thumbprint,
                                                 omadm_cert_identity_t *out);

/* The SCEP enrollment namespaces, each with its own {UniqueID}s. */
typedef enum {
    /* ./Vendor/MSFT/CertificateStore/My/SCEP/{UniqueID} (also ./Device/...):
     * installs into My/System */
    OMADM_ENROLL_CERTSTORE = 0,
    /* ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/{UniqueID} (also
     * ./Vendor/...): My/System */
    OMADM_ENROLL_DEVICE = 1,
    /* ./User/Vendor/MSFT/ClientCertificateInstall/SCEP/{UniqueID}: My/User */
    OMADM_ENROLL_USER = 2
} omadm_enroll_ns_t;

/* The certificate enrollment {UniqueID} (case-insensitive) of namespace ns
 * installed, with its private key, into *out, as omadm_certstore_identity
 * gives it.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs, enrollment_id or out NULL, an
 * unknown ns); OMADM_E_NOT_FOUND (no such enrollment, it has not installed
 * a certificate (yet), or the certificate was deleted since);
 * OMADM_E_NO_KEY; OMADM_E_CORRUPT (the enrollment's record cannot be
 * read); OMADM_E_NEWER_FORMAT (it is of a newer format); OMADM_E_STORAGE;
 * OMADM_E_NOMEM.  On failure *out holds no buffers.  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_enrollment_identity(omadm_certstore_t *cs,
                                                            omadm_enroll_ns_t ns,
                                                            const char *enrollment_id,
                                                            omadm_cert_identity_t *out);

/* The DM identity certificate: the TLS client certificate the host's DM
 * session authenticates with, which CertificateStore/My/WSTEP renews over
 * MS-WSTEP (docs/wstep.md).  thumbprint names the certificate the host is
 * configured with, in My/System with its private key.  When it is the
 * identity already, or the one the identity was renewed from, the identity
 * stays as it is; otherwise it becomes the identity (My/WSTEP appears, or
 * starts afresh for it: Renew/Status 0, the schedule settings kept).  The
 * current identity's thumbprint (uppercase) goes to current: the
 * certificate to authenticate with (omadm_certstore_identity).  Call it
 * before each session, outside omadm_process and omadm_step.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (cs, thumbprint or current NULL,
 * not a thumbprint); OMADM_E_NOT_FOUND (not in My/System); OMADM_E_NO_KEY
 * (the store has no private key for it); OMADM_E_CORRUPT (the identity's
 * record cannot be read); OMADM_E_NEWER_FORMAT (it is of a newer format);
 * OMADM_E_STORAGE.  On failure nothing changed and current is untouched.
 * Threads: store. */
OMADM_API omadm_error_t omadm_certstore_wstep_identity(omadm_certstore_t *cs,
                                                       const char *thumbprint,
                                                       char current[OMADM_THUMBPRINT_LEN + 1]);

/* omadm_certstore_check flag: also fix what can be fixed without losing
 * anything (file and directory modes; temp files an interrupted write
 * left; a trust store's CApath directory and bundle, written anew from its
 * records when they disagree and every record can be read) and report only
 * what is left. */
#define OMADM_CERTSTORE_CHECK_REPAIR 1u
/* omadm_certstore_check flag, with OMADM_CERTSTORE_CHECK_REPAIR: also pass
 * each repair made to fn, as a text starting with "repaired: " (not a
 * problem: not counted). */
#define OMADM_CERTSTORE_CHECK_REPORT_REPAIRS 2u

/* Receives one problem of omadm_certstore_check (text borrowed for the
 * call). */
typedef void (*omadm_problem_fn)(void *ctx, const char *problem);

/* Verify that records, keys, CApath directories and bundles agree, that
 * files and directories have their modes (docs/certificatestore.md), that
 * every enrollment record, PFX install record and the WSTEP record loads
 * (the WSTEP identity, when in My/System, with its key) and that nothing
 * is of a newer format (a record, an enrollment or PFX install record, the
 * journal: each named, with both formats) or a temp file left behind; each problem through fn (may be
 * NULL), their number into *problems (may be NULL).  flags: 0,
 * OMADM_CERTSTORE_CHECK_REPAIR, with OMADM_CERTSTORE_CHECK_REPORT_REPAIRS.
 * Returns OMADM_OK (consistent); OMADM_E_CORRUPT (problems remain);
 * OMADM_E_INVALID_ARG (cs NULL, unknown flags).  Threads: store. */
OMADM_API omadm_error_t omadm_certstore_check(omadm_certstore_t *cs, unsigned flags,
                                              omadm_problem_fn fn, void *ctx,
                                              unsigned *problems);

/* Release memory the store handed out (NULL-safe): wipes it, then frees it
 * with the allocator of the store that made it.  It may be called after
 * omadm_certstore_close.  Threads: any thread (the allocator's free hook
 * must then be thread-safe). */
OMADM_API void omadm_certstore_buffer_free(void *buf);

#ifdef __cplusplus
}
#endif

#endif /* OMADM_CERTSTORE_H */
