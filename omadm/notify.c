/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c - package 0: a server's notification (OMA DM Notification
 * Initiated Session 1.2) read, and its digest checked with the server's
 * name and secret and the nonce this device keeps for the server
 * (docs/session.md, "Notifications (package 0)").
 *
 *   digest   16 bytes   H(B64(H(server-id:secret)):nonce:B64(H(trigger)))
 *   header    8 bytes   big-endian bits: version 10, ui-mode 2, initiator 1,
 *                       future use 27, session id 16, server-id length 8
 *   server id           as many bytes as the header says
 *   vendor-specific     the rest
 *
 * trigger = everything after the digest; H = MD5, B64 = base64.  The nonce
 * is the one we gave the server (client_stored_server_nonce(), persisted
 * as "auth"), raw bytes as for auth-md5; none stored = the empty nonce
 * (no fallback to a default nonce, see the docs).
 */
#include <string.h>


#include "client.h"
#include "crypto.h"
#include "internal.h"

#define DIGEST_LEN 16
#define HEADER_LEN 8
#define FIXED_LEN (DIGEST_LEN + HEADER_LEN)
/* more than the engine keeps (client.c: 64 bytes) */
#define NONCE_MAX 256

/* The fixed-size parts and the length of the server identifier. */
static void read_header(const uint8_t *h, omadm_notification_t *out, size_t *id_len)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < HEADER_LEN; i++)
        bits = bits << 8 | h[i];
    out->version = (unsigned)(bits >> 54) & 0x3ffu;
    out->ui_mode = (unsigned)(bits >> 52) & 0x3u;
    out->initiator = (unsigned)(bits >> 51) & 0x1u;
    /* 27 bits of future use: ignored */
    out->session_id = (unsigned)(bits >> 8) & 0xffffu;
    *id_len = (size_t)(bits & 0xffu);
}

omadm_error_t omadm_notification_parse(const uint8_t *msg, size_t len, omadm_notification_t *out)
{
    if (!out)
        return OMADM_E_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (!msg && len)
        return OMADM_E_INVALID_ARG;
    if (len < FIXED_LEN)
        return OMADM_E_MALFORMED;
    size_t id_len = 0;
    read_header(msg + DIGEST_LEN, out, &id_len);
    const uint8_t *id = msg + FIXED_LEN;
    /* the identifier must fit, and be a C string (no NUL inside) */
    if (id_len > len - FIXED_LEN || memchr(id, 0, id_len)) {
        memset(out, 0, sizeof *out);
        return OMADM_E_MALFORMED;
    }
    memcpy(out->server_id, id, id_len);
    out->server_id[id_len] = 0;
    out->vendor_len = len - FIXED_LEN - id_len;
    out->vendor = out->vendor_len ? id + id_len : NULL;
    return OMADM_OK;
}

/* B64(MD5(a:b)) into out (25 bytes with the NUL).  0 or -1. */
static int b64_md5_pair(omadm_t *dm, const char *a, const char *b, char out[25])
{
    size_t la = strlen(a), lb = strlen(b);
    uint8_t *text = om_alloc(dm, la + 1 + lb);
    if (!text)
        return -1;
    memcpy(text, a, la);
    text[la] = ':';
    memcpy(text + la + 1, b, lb);
    uint8_t h[16];
    int rc = crypto_md5(text, la + 1 + lb, h);
    om_wipe(text, la + 1 + lb);
    om_free(dm, text);
    char *enc = rc ? NULL : crypto_b64_encode(dm, h, sizeof h);
    om_wipe(h, sizeof h);
    if (!enc)
        return -1;
    memcpy(out, enc, 25); /* 16 bytes -> 24 characters + NUL */
    om_wipe(enc, 25);
    om_free(dm, enc);
    return 0;
}

/* B64(MD5(data)) into out.  0 or -1. */
static int b64_md5(omadm_t *dm, const uint8_t *data, size_t len, char out[25])
{
    uint8_t h[16];
    char *enc = crypto_md5(data, len, h) ? NULL : crypto_b64_encode(dm, h, sizeof h);
    if (!enc)
        return -1;
    memcpy(out, enc, 25);
    om_free(dm, enc);
    return 0;
}

/* The digest the notification must carry.  OMADM_OK, or why not: the stored
 * nonce cannot be read (client_stored_server_nonce), OMADM_E_NOMEM. */
static omadm_error_t expected_digest(omadm_t *dm, const uint8_t *msg, size_t len, const char *server_id,
                           const char *server_secret, uint8_t want[DIGEST_LEN])
{
    char cred[25], trig[25];
    uint8_t nonce[NONCE_MAX];
    size_t nonce_len = 0;
    omadm_error_t err = OMADM_E_NOMEM;
    uint8_t *text = NULL;
    omadm_error_t nerr = client_stored_server_nonce(dm, nonce, sizeof nonce, &nonce_len);
    if (nerr)
        return nerr;
    size_t text_len = 24 + 1 + nonce_len + 1 + 24;
    if (b64_md5_pair(dm, server_id, server_secret, cred) ||
        b64_md5(dm, msg + DIGEST_LEN, len - DIGEST_LEN, trig) ||
        !(text = om_alloc(dm, text_len)))
        goto out;
    memcpy(text, cred, 24);
    text[24] = ':';
    memcpy(text + 25, nonce, nonce_len);
    text[25 + nonce_len] = ':';
    memcpy(text + 26 + nonce_len, trig, 24);
    err = crypto_md5(text, text_len, want) ? OMADM_E_NOMEM : OMADM_OK;
out:
    if (text) {
        om_wipe(text, text_len);
        om_free(dm, text);
    }
    om_wipe(cred, sizeof cred);
    om_wipe(nonce, sizeof nonce);
    return err;
}

omadm_error_t omadm_notification_verify(omadm_t *dm, const uint8_t *msg, size_t len,
                                        const char *server_id, const char *server_secret)
{
    if (!dm || !server_id || !server_secret)
        return OMADM_E_INVALID_ARG;
    omadm_notification_t n;
    omadm_error_t err = omadm_notification_parse(msg, len, &n);
    if (err)
        return err;
    /* a digest made with this server's secret still speaks for this
     * server only: a notification naming another one is refused */
    if (strcmp(n.server_id, server_id))
        return OMADM_E_DENIED;
    uint8_t want[DIGEST_LEN];
    err = expected_digest(dm, msg, len, server_id, server_secret, want);
    if (err)
        return err;
    err = crypto_memeq(want, msg, DIGEST_LEN) ? OMADM_OK : OMADM_E_DENIED;
    om_wipe(want, sizeof want);
    return err;
}
