/* SPDX-License-Identifier: Apache-2.0 */
/*
 * omadm_certstore.h - the certificate CSPs on the crash-safe store.
 *
 * One store serves ./Vendor/MSFT/CertificateStore and
 * ./Device/Vendor/MSFT/CertificateStore (the same tree), and
 * ./Device/Vendor/MSFT/RootCATrustedCertificates (also unprefixed
 * ./Vendor/MSFT/...) and ./User/Vendor/MSFT/RootCATrustedCertificates.
 * RootCATrustedCertificates Root and CA are the same stores as
 * CertificateStore Root/System and CA/System.
 *
 * The store does file I/O in the directory it is given (see store/store.h
 * for the layout); changes of one server message become durable together
 * at the end of the message.
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

/* Open the store in dir (created if missing; a journal left by a crash is
 * replayed).  platform (copied; NULL: the defaults, as for omadm_new) gives
 * the store and the CSPs their memory, clock and randomness.  On failure
 * *why (may be NULL) gets a short static reason. */
OMADM_API omadm_error_t omadm_certstore_open(const char *dir, const omadm_platform_t *platform,
                                             omadm_certstore_t **out, const char **why);
OMADM_API void omadm_certstore_close(omadm_certstore_t *cs);  /* NULL-safe; after omadm_free */

/* Register the CSPs on an engine.  cs must outlive the engine. */
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
    OMADM_HTTP_FAILED = 4      /* anything else (TLS, protocol, memory) */
} omadm_http_result_t;

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
 * host is copied; host->http must outlive the store. */
OMADM_API void omadm_certstore_set_host(omadm_certstore_t *cs, const omadm_certstore_host_t *host);

/* The underlying store, for hosts that list, export or check it. */
struct store;
OMADM_API struct store *omadm_certstore_store(omadm_certstore_t *cs);

#ifdef __cplusplus
}
#endif

#endif
