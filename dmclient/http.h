/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the omadm_http_t hook of dmclient, on libcurl (loaded at run time).
 */
#ifndef DMCLIENT_HTTP_H
#define DMCLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <omadm/omadm_certstore.h>

/* Load libcurl (dlopen of libcurl.so.4: dmclient does not link it, so the
 * commands without HTTP never load it) and curl_global_init() it.  Call once
 * from main before any other thread exists and before any other function
 * of this file.  0, or -1 after printing a one-line error ("dmclient: HTTP
 * needs libcurl (libcurl.so.4): <reason>" when it cannot be loaded). */
int cli_http_global_init(void);
void cli_http_global_cleanup(void);

/*
 * One exchange of the store's HTTP hook (omadm_http_t.request; dmclient
 * run builds its hook on these, unlocking the state meanwhile).  Behaviour:
 *   - only http:// and https:// URLs; redirects are not followed (a 3xx
 *     is returned as a response like any other status: SCEP servers do
 *     not redirect, and a redirect must not move a request elsewhere);
 *   - HTTPS peers and host names are verified against the system CAs;
 *   - proxies: libcurl's defaults (http_proxy, https_proxy, no_proxy ...);
 *   - timeout_s bounds the whole exchange (0: 60 s), connecting is bounded
 *     by min(timeout_s, 10) s;
 *   - max_response bounds the body (0: 64 MiB); more aborts the transfer
 *     with OMADM_HTTP_TOO_LARGE;
 *   - resp->body is never NULL on OMADM_HTTP_OK and is followed by a NUL
 *     byte that len does not count;
 *   - after cli_stop_block(), a stop signal ends the transfer within 100 ms
 *     with OMADM_HTTP_ABORTED ("stopped by a signal"), whatever the peer
 *     does (also for cli_http_client_post);
 *   - nothing is logged (request bodies may carry secrets).
 */
omadm_http_result_t cli_http_request(const omadm_http_req_t *req, omadm_http_resp_t *resp,
                                     char *err, size_t err_size);

/* Connections kept from one exchange to the next (HTTP keep-alive): the
 * exchanges of one step made with cli_http_request_kept() on the same
 * cli_http_conns_t share a connection to the same server (and its DNS
 * answer) while the server keeps it open; a connection the server closed
 * meanwhile is replaced by a new one.  NULL when out of memory or libcurl
 * is not loaded.  cli_http_conns_free closes them (NULL: nothing). */
typedef struct cli_http_conns cli_http_conns_t;
cli_http_conns_t *cli_http_conns_new(void);
void cli_http_conns_free(cli_http_conns_t *kept);
/* cli_http_request, on kept's connections (kept NULL: a connection of its
 * own, closed at the end, as cli_http_request). */
omadm_http_result_t cli_http_request_kept(cli_http_conns_t *kept, const omadm_http_req_t *req,
                                          omadm_http_resp_t *resp, char *err, size_t err_size);
/* Release what cli_http_request put into resp (omadm_http_t.release). */
void cli_http_release(omadm_http_resp_t *resp);

/* An err buffer of this size holds every reason given below whole. */
#define CLI_HTTP_ERR_SIZE 384

/* An HTTP date (as in Retry-After) as seconds since the epoch, or
 * (time_t)-1 when text is not one (libcurl's curl_getdate). */
time_t cli_http_date(const char *text);


/* ---- the DM session client (dmclient session) ---------------------------- */

/* TLS settings of one session; strings and blobs are borrowed and must
 * outlive the client (the key is never copied, so the owner can wipe it). */
typedef struct cli_tls {
    const char *cacert;          /* PEM file of extra trust anchors, or NULL */
    const char *capath;          /* system CA directory, or NULL (libcurl's default) */
    const char *cert_file;       /* client certificate (PEM file), or NULL */
    const char *key_file;        /* its private key (PEM file); NULL: in cert_file */
    const uint8_t *cert_pem;     /* client certificate as PEM bytes, or NULL */
    size_t cert_pem_len;
    const uint8_t *key_pem;      /* its private key as PEM bytes */
    size_t key_pem_len;
    /* instead of key_pem: the key as an OpenSSL EVP_PKEY (a TPM key,
     * omadm_certstore_tls_key), given with cert_pem to libcurl's OpenSSL
     * context from its CURLOPT_SSL_CTX_FUNCTION */
    void *key_pkey;
} cli_tls_t;

/* One POST of a session. */
typedef struct cli_http_post {
    const char *url;
    const char *content_type;
    const char *accept;          /* Accept header value, or NULL */
    const char *hmac;            /* x-syncml-hmac value, or NULL */
    const uint8_t *body;
    size_t body_len;
    size_t max_response;         /* larger bodies fail with OMADM_HTTP_TOO_LARGE */
    unsigned timeout_s;          /* whole exchange */
    unsigned connect_timeout_s;
} cli_http_post_t;

#define CLI_HTTP_HMAC_MAX 1024

typedef struct cli_http_reply {
    int status;                  /* HTTP status code */
    uint8_t *body;               /* malloc'ed, NUL after len; never NULL on OMADM_HTTP_OK */
    size_t len;
    char content_type[128];      /* "" when absent; control characters replaced */
    char hmac[CLI_HTTP_HMAC_MAX];/* the x-syncml-hmac value, "" when absent */
    int n_hmac;                  /* how many x-syncml-hmac headers came (too long: counted, not kept) */
    char retry_after[64];        /* the Retry-After value, "" when absent */
} cli_http_reply_t;

typedef struct cli_http_client cli_http_client_t;

/* A client whose connection (and TLS session) is kept between POSTs.
 * Behaviour as for cli_http_request(), plus: TLS 1.2 or later, peer and host
 * always verified against capath and cacert; a client certificate when
 * given; the request headers Content-Type, Accept, Cache-Control: no-store,
 * User-Agent dmclient and x-syncml-hmac.  0, or -1 with a one-line reason
 * in err. */
int cli_http_client_new(const cli_tls_t *tls, cli_http_client_t **out, char *err,
                        size_t err_size);
void cli_http_client_free(cli_http_client_t *c); /* NULL-safe */

/* POST req.  OMADM_HTTP_OK: a response arrived (any status; redirects are
 * not followed); free it with cli_http_reply_free().  Otherwise a one-line
 * reason in err (never the request body or headers). */
omadm_http_result_t cli_http_client_post(cli_http_client_t *c, const cli_http_post_t *req,
                                         cli_http_reply_t *resp, char *err, size_t err_size);
void cli_http_reply_free(cli_http_reply_t *resp);

#endif
