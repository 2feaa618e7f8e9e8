/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_notify.c - libFuzzer target: a server's notification (package 0)
 * and the persisted "auth" record it is checked against.
 *
 * Input: one byte of flags, one byte n, n bytes for the "auth" record,
 * then the notification.
 *   flags bit 0: the n bytes are the record itself, stored as they are
 *                (whatever a damaged or hostile state directory holds);
 *                else (and n <= 64, the longest nonce the engine keeps)
 *                they are the server nonce, stored in a record the harness
 *                writes as the engine does ("omadm-auth 1" ...
 *                "server-nonce B64"), so the harness knows the nonce the
 *                digest must use.
 *   flags bit 1: the harness puts the right digest into the notification
 *                (the first 16 bytes) before it is checked.
 *
 * omadm_notification_parse: the fields are in range, the server ID is
 * NUL-terminated and as long as the header says, the vendor part lies in
 * the input and is the rest of it.  omadm_notification_verify with the
 * parsed server ID and "secret": a refused parse is MALFORMED; a known
 * nonce gives OK exactly when the digest is the one the harness computes
 * (digest = MD5(B64(MD5(id:secret)):nonce:B64(MD5(trigger)))); another
 * server ID is DENIED; out of memory only for a record the engine did not
 * write and cannot read.  Then a session starts with the
 * notification's SessionID on the same storage (package 1 must be made and
 * must decode), as dmclient notify does.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz_common.h"
#include "omadm.h"

#define SECRET "secret"

static void md5(const void *p, size_t n, uint8_t out[16])
{
    unsigned int len = 0;
    FUZZ_CHECK(EVP_Digest(p, n, out, &len, EVP_md5(), NULL) && len == 16, "MD5");
}

static void b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

/* The digest of msg (its trigger: everything after the digest). */
static void digest(const uint8_t *msg, size_t len, const char *server_id, const uint8_t *nonce,
                   size_t nonce_len, uint8_t out[16])
{
    char cred[25], trig[25];
    uint8_t h[16];
    size_t il = strlen(server_id);
    uint8_t *t = malloc(il + 1 + strlen(SECRET));
    FUZZ_CHECK(t != NULL, "malloc");
    memcpy(t, server_id, il);
    t[il] = ':';
    memcpy(t + il + 1, SECRET, strlen(SECRET));
    md5(t, il + 1 + strlen(SECRET), h);
    free(t);
    b64(h, 16, cred);
    md5(msg + 16, len - 16, h);
    b64(h, 16, trig);
    size_t tl = 24 + 1 + nonce_len + 1 + 24;
    uint8_t *text = malloc(tl);
    FUZZ_CHECK(text != NULL, "malloc");
    memcpy(text, cred, 24);
    text[24] = ':';
    memcpy(text + 25, nonce, nonce_len);
    text[25 + nonce_len] = ':';
    memcpy(text + 26 + nonce_len, trig, 24);
    md5(text, tl, out);
    free(text);
}

static void check_parsed(const omadm_notification_t *n, const uint8_t *msg, size_t len)
{
    size_t id_len = msg[23];
    FUZZ_CHECK(n->version < 1024 && n->ui_mode < 4 && n->initiator < 2 && n->session_id < 65536,
               "header fields out of range");
    FUZZ_CHECK(memchr(n->server_id, 0, sizeof n->server_id) && strlen(n->server_id) == id_len &&
                   !memcmp(n->server_id, msg + 24, id_len),
               "the server ID is the header's %zu bytes, NUL-terminated", id_len);
    FUZZ_CHECK(n->vendor_len == len - 24 - id_len, "the vendor part is the rest of the input");
    FUZZ_CHECK(n->vendor_len ? n->vendor == msg + 24 + id_len : n->vendor == NULL,
               "the vendor part points into the input");
    unsigned sid = (unsigned)msg[21] << 8 | msg[22];
    FUZZ_CHECK(n->session_id == sid, "SessionID %u, header says %u", n->session_id, sid);
}

/* A session as `dmclient notify` starts it: package 1 with the
 * notification's SessionID, on whatever "auth" record is stored. */
static void session(omadm_t *dm, const omadm_notification_t *n, bool known)
{
    char sid[8];
    snprintf(sid, sizeof sid, "%X", n->session_id);
    omadm_account_t acc = {.server_url = "https://dm.example.com/omadm",
                           .server_id = n->server_id,
                           .client_auth = OMADM_AUTH_MD5,
                           .client_secret = "client-secret",
                           .server_auth = OMADM_AUTH_MD5,
                           .server_secret = SECRET};
    uint8_t *msg = NULL;
    size_t len = 0;
    omadm_error_t err = omadm_session_begin(dm, &acc, 1, sid, &msg, &len);
    /* a later version's record is left alone: no session on it */
    FUZZ_CHECK(err == OMADM_OK || (!known && err == OMADM_E_NEWER_FORMAT),
               "a notified session must begin: %s", omadm_strerror(err));
    if (err)
        return;
    fuzz_reply_decodes(dm, msg, len, false);
    omadm_buffer_free(dm, msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    size_t alen = data[1];
    if (alen > size - 2)
        alen = size - 2;
    const uint8_t *auth = data + 2;
    size_t len = size - 2 - alen;
    /* a copy the harness may sign, exactly as long as the notification */
    uint8_t *msg = malloc(len ? len : 1);
    FUZZ_CHECK(msg != NULL, "malloc");
    memcpy(msg, data + 2 + alen, len);

    fuzz_platform_reset();
    fuzz_mem_t mem;
    memset(&mem, 0, sizeof mem);
    /* the engine keeps nonces of up to 64 bytes */
    bool known = !(flags & 1) && alen <= 64;
    if (known) {
        char rec[64 + 4 * 256 / 3 + 8];
        char nb[4 * 256 / 3 + 8];
        b64(auth, alen, nb);
        snprintf(rec, sizeof rec, "omadm-auth 1\ncounter 7\nclient-nonce \nserver-nonce %s\n", nb);
        fuzz_mem_put(&mem, "auth", (const uint8_t *)rec, strlen(rec));
    } else {
        fuzz_mem_put(&mem, "auth", auth, alen);
    }
    omadm_t *dm = fuzz_engine(&mem);

    omadm_notification_t n;
    omadm_error_t err = omadm_notification_parse(msg, len, &n);
    FUZZ_CHECK(err == OMADM_OK || err == OMADM_E_MALFORMED, "parse: %s", omadm_strerror(err));
    if (err == OMADM_OK) {
        check_parsed(&n, msg, len);
        uint8_t want[16];
        if (known) {
            digest(msg, len, n.server_id, auth, alen, want);
            if (flags & 2)
                memcpy(msg, want, 16);
        }
        err = omadm_notification_verify(dm, msg, len, n.server_id, SECRET);
        /* nothing runs out of memory here; a record the engine did not
         * write may be unreadable (or of a later version), one it writes
         * never is */
        FUZZ_CHECK(err == OMADM_OK || err == OMADM_E_DENIED ||
                       (!known && (err == OMADM_E_CORRUPT || err == OMADM_E_NEWER_FORMAT)),
                   "verify: %s", omadm_strerror(err));
        if (known)
            FUZZ_CHECK((err == OMADM_OK) == !memcmp(msg, want, 16),
                       "verify says %s, the digest %s", omadm_strerror(err),
                       memcmp(msg, want, 16) ? "differs" : "matches");
        err = omadm_notification_verify(dm, msg, len, "another-server", SECRET);
        FUZZ_CHECK(err == OMADM_E_DENIED || !strcmp(n.server_id, "another-server"),
                   "a notification for another server: %s", omadm_strerror(err));
        session(dm, &n, known);
    } else {
        err = omadm_notification_verify(dm, msg, len, "fuzz-server", SECRET);
        FUZZ_CHECK(err == OMADM_E_MALFORMED, "verify of what parse refused: %s",
                   omadm_strerror(err));
    }
    omadm_free(dm);
    omadm_free(fuzz_engine(&mem));
    fuzz_mem_clear(&mem);
    free(msg);
    return 0;
}
