/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - omadm_http_t on libcurl's easy interface, and the DM session
 * client of dmclient session (see http.h).
 *
 * libcurl is not linked: cli_http_global_init() loads it (dlopen) for the
 * commands that may use HTTP, so that the others do not pay for loading it
 * and its ~30 dependent libraries at every start.  Its functions are
 * called through the table below, typed from <curl/curl.h>.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli.h"
#include "http.h"

#define DEFAULT_TIMEOUT_S 60u
#define STOP_POLL_MS 100 /* how often a transfer looks for a stop signal */
#define MAX_TIMEOUT_S 86400u
#define CONNECT_TIMEOUT_S 10u
#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define USER_AGENT "dmclient"

#define LIBCURL_SONAME "libcurl.so.4"

/* Every libcurl function this file calls, without the curl_ prefix. */
#define CURL_FUNCTIONS(X)                                                              \
    X(global_init) X(global_cleanup) X(easy_strerror) X(easy_init) X(easy_setopt)      \
    X(easy_getinfo) X(easy_cleanup) X(slist_append) X(slist_free_all) X(multi_init)   \
    X(multi_add_handle) X(multi_perform) X(multi_info_read) X(multi_poll)              \
    X(multi_remove_handle) X(multi_cleanup) X(getdate)

/* curl.easy_init() calls curl_easy_init(); all NULL until libcurl is
 * loaded.  (curl_easy_setopt's argument checks of <curl/curl.h>, a macro
 * around the call, do not apply to a call through a pointer.) */
static struct curl_api {
#define DECLARE(name) __typeof__(curl_##name) *name;
    CURL_FUNCTIONS(DECLARE)
#undef DECLARE
} curl;

/* dlopen libcurl and fill curl: 0, or -1 after printing a one-line error.
 * The library stays loaded until the process exits.  RTLD_LAZY, as the
 * dynamic loader binds a linked library: binding all of libcurl's and its
 * dependencies' references at once would cost ~3 million instructions more
 * (the functions we call are all looked up here, so none is missing). */
static int load_libcurl(void)
{
    struct curl_api api;
    void *lib = dlopen(LIBCURL_SONAME, RTLD_LAZY | RTLD_LOCAL);
    int ok = lib != NULL;
#define LOAD(name) \
    ok = ok && (api.name = (__typeof__(api.name))dlsym(lib, "curl_" #name)) != NULL;
    CURL_FUNCTIONS(LOAD)
#undef LOAD
    if (!ok) {
        const char *why = dlerror();
        char line[512];
        snprintf(line, sizeof line, "%s", why ? why : "cannot be loaded");
        for (char *p = line; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        fprintf(stderr, "dmclient: HTTP needs libcurl (%s): %s\n", LIBCURL_SONAME, line);
        if (lib)
            dlclose(lib);
        return -1;
    }
    curl = api;
    return 0;
}

int cli_http_global_init(void)
{
    if (!curl.global_init && load_libcurl())
        return -1;
    CURLcode rc = curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        fprintf(stderr, "dmclient: cannot initialise libcurl: %s\n", curl.easy_strerror(rc));
        return -1;
    }
    return 0;
}

void cli_http_global_cleanup(void)
{
    if (curl.global_cleanup)
        curl.global_cleanup();
}

_Static_assert(CLI_HTTP_ERR_SIZE >= CURL_ERROR_SIZE + 128, "libcurl's reasons fit in err");

time_t cli_http_date(const char *text)
{
    return curl.getdate ? curl.getdate(text, NULL) : (time_t)-1;
}

/* The response body as it arrives. */
typedef struct sink {
    uint8_t *buf;
    size_t len, cap, max;
    int too_large, nomem;
} sink_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    if (size && nmemb > SIZE_MAX / size) {
        s->too_large = 1;
        return 0;
    }
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        s->too_large = 1;
        return 0; /* != n: libcurl aborts with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 16384;
        while (cap < s->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
        if (cap > s->max + 1)
            cap = s->max + 1; /* max <= SIZE_MAX - 1, see request() */
        uint8_t *nb = realloc(s->buf, cap);
        if (!nb) {
            s->nomem = 1;
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    return n;
}

/* err = text, as one line. */
static void set_err(char *err, size_t err_size, const char *text)
{
    if (!err || !err_size)
        return;
    snprintf(err, err_size, "%s", text);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    size_t n = strlen(err);
    while (n && err[n - 1] == ' ')
        err[--n] = 0;
}

static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static omadm_http_result_t map_error(CURLcode rc, const sink_t *sink, bool stopped)
{
    if (stopped)
        return OMADM_HTTP_ABORTED;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return OMADM_HTTP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return OMADM_HTTP_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED: /* Content-Length above the limit */
        return OMADM_HTTP_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return sink->too_large ? OMADM_HTTP_TOO_LARGE : OMADM_HTTP_FAILED;
    default:
        return OMADM_HTTP_FAILED;
    }
}

/* What a transfer gives back, whichever reply type holds it. */
typedef struct got {
    int *status;
    uint8_t **body;
    size_t *len;
    char *content_type;
    size_t content_type_size;
} got_t;

static CURLcode multi_error(CURLMcode mc)
{
    return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
}

/* h's transfer to its end, as curl_easy_perform would run it, but given up
 * (*stopped) within STOP_POLL_MS of a stop signal (cli_stop_block), however
 * slowly the peer answers.  keep: a multi handle that keeps the connection
 * for the next transfer (the session's), or NULL for one of our own. */
static CURLcode transfer(CURL *h, CURLM *keep, bool *stopped)
{
    *stopped = false;
    CURLM *m = keep ? keep : curl.multi_init();
    if (!m)
        return CURLE_OUT_OF_MEMORY;
    CURLMcode mc = curl.multi_add_handle(m, h);
    if (mc != CURLM_OK) {
        if (!keep)
            curl.multi_cleanup(m);
        return multi_error(mc);
    }
    CURLcode rc = CURLE_OK;
    for (;;) {
        int running = 0;
        if ((mc = curl.multi_perform(m, &running)) != CURLM_OK) {
            rc = multi_error(mc);
            break;
        }
        if (!running) {
            int left = 0;
            CURLMsg *msg;
            rc = CURLE_FAILED_INIT; /* no DONE message: should not happen */
            while ((msg = curl.multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
                    rc = msg->data.result;
            break;
        }
        if (cli_stop_pending()) {
            *stopped = true;
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if ((mc = curl.multi_poll(m, NULL, 0, STOP_POLL_MS, NULL)) != CURLM_OK) {
            rc = multi_error(mc);
            break;
        }
    }
    curl.multi_remove_handle(m, h);
    if (!keep)
        curl.multi_cleanup(m);
    return rc;
}

/* Run the transfer and fill out from it (the body moves out of sink):
 * OMADM_HTTP_OK, or the failure with a one-line reason in err. */
static omadm_http_result_t perform(CURL *h, CURLM *keep, sink_t *sink, const char *errbuf,
                                   const got_t *out, char *err, size_t err_size)
{
    bool stopped = false;
    CURLcode rc = transfer(h, keep, &stopped);
    if (rc != CURLE_OK) {
        omadm_http_result_t result = map_error(rc, sink, stopped);
        if (result == OMADM_HTTP_ABORTED) {
            set_err(err, err_size, "stopped by a signal");
        } else if (result == OMADM_HTTP_TOO_LARGE) {
            char msg[96];
            snprintf(msg, sizeof msg, "response larger than %zu bytes", sink->max);
            set_err(err, err_size, msg);
        } else if (sink->nomem) {
            set_err(err, err_size, "out of memory for the response");
        } else {
            set_err(err, err_size, errbuf[0] ? errbuf : curl.easy_strerror(rc));
        }
        return result;
    }
    long status = 0;
    char *ct = NULL;
    if (curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl.easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK)
        ct = NULL;
    if (!sink->buf && !(sink->buf = malloc(1))) {
        set_err(err, err_size, "out of memory for the response");
        return OMADM_HTTP_FAILED;
    }
    sink->buf[sink->len] = 0;
    *out->status = (int)status;
    *out->body = (uint8_t *)sink->buf;
    *out->len = sink->len;
    snprintf(out->content_type, out->content_type_size, "%s", ct ? ct : "");
    for (char *p = out->content_type; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    sink->buf = NULL;
    return OMADM_HTTP_OK;
}


/* What every transfer of dmclient shares: no signals, http(s) only, no
 * redirects, peers verified, our user agent, the body into a sink_t. */
static CURLcode set_common(CURL *h, char *errbuf)
{
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                   \
    do {                                                \
        if (rc == CURLE_OK)                             \
            rc = curl.easy_setopt(h, opt, val);         \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM; the host ignores SIGPIPE */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TCP_NODELAY, 1L); /* a request leaves at once (libcurl's default since 7.50.2) */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_WRITEFUNCTION, on_body);
#undef SET
    return rc;
}

/* Connections kept between the exchanges of one step: libcurl keeps a
 * finished transfer's connection (and what it resolved) in the multi
 * handle the transfer ran in, for the next transfer to the same host. */
struct cli_http_conns {
    CURLM *m;
};

cli_http_conns_t *cli_http_conns_new(void)
{
    if (!curl.multi_init)
        return NULL;
    cli_http_conns_t *k = calloc(1, sizeof *k);
    if (k && !(k->m = curl.multi_init())) {
        free(k);
        k = NULL;
    }
    return k;
}

void cli_http_conns_free(cli_http_conns_t *k)
{
    if (!k)
        return;
    curl.multi_cleanup(k->m); /* closes the kept connections */
    free(k);
}

omadm_http_result_t cli_http_request(const omadm_http_req_t *req, omadm_http_resp_t *resp,
                                     char *err, size_t err_size)
{
    return cli_http_request_kept(NULL, req, resp, err, err_size);
}

omadm_http_result_t cli_http_request_kept(cli_http_conns_t *kept, const omadm_http_req_t *req,
                                          omadm_http_resp_t *resp, char *err, size_t err_size)
{
    if (err && err_size)
        *err = 0;
    if (!req || !resp || !req->url || !req->method) {
        set_err(err, err_size, "invalid HTTP request");
        return OMADM_HTTP_FAILED;
    }
    memset(resp, 0, sizeof *resp);
    if (!curl.easy_init) {
        set_err(err, err_size, "libcurl is not loaded");
        return OMADM_HTTP_FAILED;
    }
    int post = !strcmp(req->method, "POST");
    if (!post && strcmp(req->method, "GET")) {
        set_err(err, err_size, "unsupported HTTP method");
        return OMADM_HTTP_FAILED;
    }
    if (post && req->content_type && !header_safe(req->content_type)) {
        set_err(err, err_size, "invalid content type");
        return OMADM_HTTP_FAILED;
    }

    sink_t sink = {.max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE};
    if (sink.max > SIZE_MAX - 1)
        sink.max = SIZE_MAX - 1;
    unsigned timeout = req->timeout_s ? req->timeout_s : DEFAULT_TIMEOUT_S;
    if (timeout > MAX_TIMEOUT_S)
        timeout = MAX_TIMEOUT_S;
    unsigned connect = timeout < CONNECT_TIMEOUT_S ? timeout : CONNECT_TIMEOUT_S;

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = 0;
    struct curl_slist *headers = NULL;
    omadm_http_result_t result = OMADM_HTTP_FAILED;
    CURL *h = curl.easy_init();
    if (!h) {
        set_err(err, err_size, "cannot start an HTTP transfer");
        return OMADM_HTTP_FAILED;
    }

    CURLcode rc = set_common(h, errbuf);
#define SET(opt, val)                                   \
    do {                                                \
        if (rc == CURLE_OK)                             \
            rc = curl.easy_setopt(h, opt, val);         \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_TIMEOUT, (long)timeout);
    SET(CURLOPT_CONNECTTIMEOUT, (long)connect);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(sink.max > (size_t)INT64_MAX ? INT64_MAX
                                                                             : (int64_t)sink.max));
    SET(CURLOPT_WRITEDATA, &sink);
    if (post) {
        static const char empty[1];
        char ct[512];
        /* no "Expect: 100-continue" round trip before large bodies */
        headers = curl.slist_append(NULL, "Expect:");
        if (headers && req->content_type) {
            snprintf(ct, sizeof ct, "Content-Type: %s", req->content_type);
            struct curl_slist *more = curl.slist_append(headers, ct);
            if (!more) {
                curl.slist_free_all(headers);
                headers = NULL;
            } else {
                headers = more;
            }
        }
        if (!headers) {
            set_err(err, err_size, "out of memory");
            goto out;
        }
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SET(CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : empty);
        SET(CURLOPT_HTTPHEADER, headers);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
#undef SET
    if (rc != CURLE_OK) {
        set_err(err, err_size, errbuf[0] ? errbuf : curl.easy_strerror(rc));
        goto out;
    }

    got_t got = {&resp->status, &resp->body, &resp->len, resp->content_type,
                 sizeof resp->content_type};
    result = perform(h, kept ? kept->m : NULL, &sink, errbuf, &got, err, err_size);
out:
    curl.easy_cleanup(h);
    curl.slist_free_all(headers);
    free(sink.buf);
    return result;
}

void cli_http_release(omadm_http_resp_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}


/* ---- the DM session client ---- */

struct cli_http_client {
    CURL *h;
    CURLM *m;    /* keeps the connection between POSTs */
    char errbuf[CURL_ERROR_SIZE];
    /* a key libcurl cannot load (cli_tls_t.key_pkey), borrowed */
    const uint8_t *cert_pem;
    size_t cert_pem_len;
    void *key_pkey;
};

#define MIN_TLS_VERSION CURL_SSLVERSION_TLSv1_2

/* The libssl functions of ssl_ctx_identity, from the libssl that libcurl
 * brought in (libcurl built with OpenSSL 3): dmclient does not link libssl,
 * like libcurl (docs/building.md).  0, or -1 when libssl is not loaded. */
static struct ssl_api {
    __typeof__(SSL_CTX_use_certificate) *use_certificate;
    __typeof__(SSL_CTX_use_PrivateKey) *use_private_key;
    __typeof__(SSL_CTX_check_private_key) *check_private_key;
} ssl;

static int load_libssl(void)
{
    if (ssl.use_certificate)
        return 0;
    void *lib = dlopen("libssl.so.3", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    struct ssl_api api = {0};
    if (lib) {
        api.use_certificate = (__typeof__(api.use_certificate))dlsym(lib, "SSL_CTX_use_certificate");
        api.use_private_key = (__typeof__(api.use_private_key))dlsym(lib, "SSL_CTX_use_PrivateKey");
        api.check_private_key =
            (__typeof__(api.check_private_key))dlsym(lib, "SSL_CTX_check_private_key");
        dlclose(lib); /* libcurl keeps it loaded */
    }
    if (!api.use_certificate || !api.use_private_key || !api.check_private_key)
        return -1;
    ssl = api;
    return 0;
}

/* CURLOPT_SSL_CTX_FUNCTION for a key libcurl cannot load itself: the
 * client certificate (c->cert_pem) and the key (c->key_pkey, an EVP_PKEY)
 * into libcurl's SSL_CTX (libcurl built with OpenSSL). */
static CURLcode ssl_ctx_identity(CURL *h, void *ssl_ctx, void *ud)
{
    (void)h;
    const cli_http_client_t *c = ud;
    if (load_libssl())
        return CURLE_SSL_CERTPROBLEM;
    BIO *b = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    int ok = x && ssl.use_certificate(ssl_ctx, x) == 1 &&
             ssl.use_private_key(ssl_ctx, c->key_pkey) == 1 && ssl.check_private_key(ssl_ctx) == 1;
    X509_free(x);
    BIO_free(b);
    return ok ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

int cli_http_client_new(const cli_tls_t *tls, cli_http_client_t **out, char *err,
                        size_t err_size)
{
    static const cli_tls_t no_tls;
    if (err && err_size)
        *err = 0;
    *out = NULL;
    if (!tls)
        tls = &no_tls;
    if (!curl.easy_init) {
        set_err(err, err_size, "libcurl is not loaded");
        return -1;
    }
    cli_http_client_t *c = calloc(1, sizeof *c);
    if (!c || !(c->h = curl.easy_init()) || !(c->m = curl.multi_init())) {
        cli_http_client_free(c);
        set_err(err, err_size, "cannot start an HTTP transfer");
        return -1;
    }
    CURL *h = c->h;
    CURLcode rc = set_common(h, c->errbuf);
#define SET(opt, val)                                   \
    do {                                                \
        if (rc == CURLE_OK)                             \
            rc = curl.easy_setopt(h, opt, val);         \
    } while (0)
    SET(CURLOPT_SSLVERSION, (long)MIN_TLS_VERSION);
    if (tls->cacert)
        SET(CURLOPT_CAINFO, tls->cacert);
    if (tls->capath)
        SET(CURLOPT_CAPATH, tls->capath);
    if (tls->key_pkey && tls->cert_pem) {
        /* a key libcurl cannot name (in a TPM): certificate and key go
         * into its OpenSSL context directly */
        c->cert_pem = tls->cert_pem;
        c->cert_pem_len = tls->cert_pem_len;
        c->key_pkey = tls->key_pkey;
        SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_identity);
        SET(CURLOPT_SSL_CTX_DATA, (void *)c);
    } else if (tls->cert_pem) {
        struct curl_blob cert = {.data = (void *)tls->cert_pem,
                                 .len = tls->cert_pem_len,
                                 .flags = CURL_BLOB_COPY};
        SET(CURLOPT_SSLCERT_BLOB, &cert);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
    } else if (tls->cert_file) {
        SET(CURLOPT_SSLCERT, tls->cert_file);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (tls->key_pkey) {
        /* set above */
    } else if (tls->key_pem) {
        /* not copied: the owner wipes it when the session is over */
        struct curl_blob key = {.data = (void *)tls->key_pem,
                                .len = tls->key_pem_len,
                                .flags = CURL_BLOB_NOCOPY};
        SET(CURLOPT_SSLKEY_BLOB, &key);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    } else if (tls->key_file) {
        SET(CURLOPT_SSLKEY, tls->key_file);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
    SET(CURLOPT_POST, 1L);
#undef SET
    if (rc != CURLE_OK) {
        set_err(err, err_size, c->errbuf[0] ? c->errbuf : curl.easy_strerror(rc));
        cli_http_client_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void cli_http_client_free(cli_http_client_t *c)
{
    if (!c)
        return;
    if (c->m)
        curl.multi_cleanup(c->m); /* closes the kept connection */
    if (c->h)
        curl.easy_cleanup(c->h);
    free(c);
}

/* "HTTP/..." starts a response (there may be several: 1xx); a header we
 * want is kept, trimmed; a value too long for its field is dropped. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    cli_http_reply_t *r = ud;
    size_t n = size * nmemb;
    if (n >= 5 && !memcmp(ptr, "HTTP/", 5)) {
        r->hmac[0] = 0;
        r->n_hmac = 0;
        r->retry_after[0] = 0;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon)
        return n;
    size_t klen = (size_t)(colon - ptr);
    const char *v = colon + 1, *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 13 && !strncasecmp(ptr, "x-syncml-hmac", 13)) {
        r->n_hmac++;
        dst = r->hmac;
        cap = sizeof r->hmac;
    } else if (klen == 11 && !strncasecmp(ptr, "retry-after", 11)) {
        dst = r->retry_after;
        cap = sizeof r->retry_after;
    }
    if (!dst)
        return n;
    if (vlen >= cap || memchr(v, 0, vlen)) {
        dst[0] = 0;
        return n;
    }
    memcpy(dst, v, vlen);
    dst[vlen] = 0;
    return n;
}

/* list + "name: value"; NULL (list freed) when out of memory. */
static struct curl_slist *add_header(struct curl_slist *list, const char *name,
                                     const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    struct curl_slist *more = NULL;
    if (line) {
        snprintf(line, n, "%s: %s", name, value);
        more = curl.slist_append(list, line);
        free(line);
    }
    if (!more)
        curl.slist_free_all(list);
    return more;
}

omadm_http_result_t cli_http_client_post(cli_http_client_t *c, const cli_http_post_t *req,
                                         cli_http_reply_t *resp, char *err, size_t err_size)
{
    if (err && err_size)
        *err = 0;
    if (!c || !req || !resp || !req->url || !req->content_type || (!req->body && req->body_len)) {
        set_err(err, err_size, "invalid HTTP request");
        return OMADM_HTTP_FAILED;
    }
    memset(resp, 0, sizeof *resp);
    if (!header_safe(req->content_type) || (req->accept && !header_safe(req->accept)) ||
        (req->hmac && !header_safe(req->hmac))) {
        set_err(err, err_size, "a request header holds a control character");
        return OMADM_HTTP_FAILED;
    }
    sink_t sink = {.max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE};
    if (sink.max > SIZE_MAX - 1)
        sink.max = SIZE_MAX - 1;
    unsigned timeout = req->timeout_s ? req->timeout_s : DEFAULT_TIMEOUT_S;
    if (timeout > MAX_TIMEOUT_S)
        timeout = MAX_TIMEOUT_S;
    unsigned connect = req->connect_timeout_s ? req->connect_timeout_s : CONNECT_TIMEOUT_S;
    if (connect > timeout)
        connect = timeout;

    /* no "Expect: 100-continue" round trip before large bodies */
    struct curl_slist *headers = curl.slist_append(NULL, "Expect:");
    if (headers)
        headers = add_header(headers, "Content-Type", req->content_type);
    if (headers && req->accept)
        headers = add_header(headers, "Accept", req->accept);
    if (headers)
        headers = add_header(headers, "Cache-Control", "no-store");
    if (headers && req->hmac)
        headers = add_header(headers, "x-syncml-hmac", req->hmac);
    if (!headers) {
        set_err(err, err_size, "out of memory");
        return OMADM_HTTP_FAILED;
    }

    static const char empty[1];
    CURL *h = c->h;
    c->errbuf[0] = 0;
    omadm_http_result_t result = OMADM_HTTP_FAILED;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                   \
    do {                                                \
        if (rc == CURLE_OK)                             \
            rc = curl.easy_setopt(h, opt, val);         \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_TIMEOUT, (long)timeout);
    SET(CURLOPT_CONNECTTIMEOUT, (long)connect);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(sink.max > (size_t)INT64_MAX ? INT64_MAX
                                                                             : (int64_t)sink.max));
    SET(CURLOPT_WRITEDATA, &sink);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, resp);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SET(CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : empty);
    SET(CURLOPT_HTTPHEADER, headers);
#undef SET
    if (rc != CURLE_OK) {
        set_err(err, err_size, c->errbuf[0] ? c->errbuf : curl.easy_strerror(rc));
        goto out;
    }
    got_t got = {&resp->status, &resp->body, &resp->len, resp->content_type,
                 sizeof resp->content_type};
    result = perform(h, c->m, &sink, c->errbuf, &got, err, err_size);
out:
    /* nothing of this request stays behind in the handle */
    curl.easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl.easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
    curl.easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl.slist_free_all(headers);
    free(sink.buf);
    if (result != OMADM_HTTP_OK) {
        resp->hmac[0] = 0;
        resp->retry_after[0] = 0;
        resp->n_hmac = 0;
    }
    return result;
}

void cli_http_reply_free(cli_http_reply_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}
