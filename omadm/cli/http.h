/*
 * http.h - the omadm_http_t hook of dmclient, on libcurl.
 */
#ifndef DMCLIENT_HTTP_H
#define DMCLIENT_HTTP_H

#include "omadm_certstore.h"

/* curl_global_init(); call once from main before any other thread exists.
 * 0, or -1 after printing a one-line error. */
int cli_http_global_init(void);
void cli_http_global_cleanup(void);

/*
 * The HTTP hook (static; outlives every store).  Behaviour:
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
 *   - nothing is logged (request bodies may carry secrets).
 */
const omadm_http_t *cli_http_curl(void);

#endif
