/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_syncml.c - libFuzzer targets: server messages through the engine
 * with the real certificate CSPs on a real store (a directory on tmpfs).
 * Built three times:
 *
 *   fuzz_xml      (FUZZ_XML)      the input is one SyncML XML message;
 *   fuzz_wbxml    (FUZZ_WBXML)    the input is one SyncML WBXML message;
 *   fuzz_session  (FUZZ_SESSION)  a client session is open first
 *                 (omadm_session_begin: package 1, MD5 client credentials),
 *                 then the input is the server's messages in turn, split at
 *                 FUZZ_NEXT (at most FUZZ_MAX_MESSAGES, while the session
 *                 lasts): credentials and challenges, large objects over
 *                 several messages, replies split at the server's
 *                 MaxMsgSize, alert delivery.  A message may start with a
 *                 line "x-syncml-hmac: VALUE": the header a host checks
 *                 with omadm_session_hmac_verify (OK or DENIED, nothing
 *                 else) before it hands the message over.
 *
 * The XML and WBXML targets ignore inputs of the other encoding (as
 * dmclient detects it), so each corpus stays in its encoding.
 *
 * Each input runs twice on the same state: from an empty engine state and
 * an empty store, then again on what the first run left (a replay, as a
 * server that repeats itself), unless the engine refused every message of
 * the first run.  Invariants, besides the sanitizers:
 *   - omadm_process refuses an input (not SyncML, too large, malformed),
 *     saying why (omadm_last_error_detail), or answers it; it never fails
 *     with OMADM_E_INTERNAL, OMADM_E_ENCODE, OMADM_E_STORAGE (the store is
 *     on tmpfs) or OMADM_E_NOMEM (nothing runs out of memory here);
 *   - every message the engine writes (replies, package 1) is in the
 *     encoding that was due (a reply in its request's) and decodes with the
 *     engine's own codecs (within the size limit);
 *   - the engine state saved by a run loads again (omadm_new on the same
 *     storage) and a store a run changed opens again;
 *   - a store a run changed passes omadm_certstore_check with no problem.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz_common.h"
#include "omadm.h"
#include "omadm_certstore.h"

#if !defined(FUZZ_XML) && !defined(FUZZ_WBXML) && !defined(FUZZ_SESSION)
#error "define FUZZ_XML, FUZZ_WBXML or FUZZ_SESSION"
#endif

/* Separates the server's messages in a session input. */
#define FUZZ_NEXT "\n#next#\n"
#define FUZZ_MAX_MESSAGES 8
/* A session message that starts with this line comes with that HTTP
 * header (the rest of the line is its value). */
#define FUZZ_HMAC "x-syncml-hmac: "

/* omadm_process's result for a server message: refusals are fine, a bug
 * or a reply the engine cannot write is not. */
static void process_ok(omadm_t *dm, omadm_error_t err, const char *what)
{
    const char *detail = omadm_last_error_detail(dm);
    FUZZ_CHECK(err != OMADM_E_INTERNAL && err != OMADM_E_ENCODE && err != OMADM_E_INVALID_ARG &&
                   err != OMADM_E_NOMEM && err != OMADM_E_STORAGE,
               "%s: omadm_process returned %s (%s)", what, omadm_strerror(err),
               detail ? detail : "no detail");
    if (err != OMADM_OK)
        FUZZ_CHECK(detail && *detail, "%s: refused (%s) without saying why", what,
                   omadm_strerror(err));
}

#ifndef FUZZ_SESSION

/* The number of messages the engine took (OMADM_OK). */
static int messages(omadm_t *dm, const uint8_t *data, size_t size)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    omadm_error_t err = omadm_process(dm, data, size, &reply, &reply_len);
    process_ok(dm, err, "the input");
    if (err == OMADM_OK && reply)
        fuzz_reply_decodes(dm, reply, reply_len, codec_detect(data, size) == SYNCML_ENC_WBXML);
    omadm_buffer_free(dm, reply);
    return err == OMADM_OK;
}

#else

static const uint8_t *find_next(const uint8_t *p, const uint8_t *end)
{
    size_t n = strlen(FUZZ_NEXT);
    for (; (size_t)(end - p) >= n; p++)
        if (*p == FUZZ_NEXT[0] && !memcmp(p, FUZZ_NEXT, n))
            return p;
    return NULL;
}

/* The x-syncml-hmac header in front of a message (taken off it), checked
 * as a host checks it: the verdict is yes or no, nothing else. */
static void hmac_header(omadm_t *dm, const uint8_t **p, size_t *len)
{
    size_t hl = strlen(FUZZ_HMAC);
    const uint8_t *nl = *len > hl && !memcmp(*p, FUZZ_HMAC, hl) ? memchr(*p, '\n', *len) : NULL;
    if (!nl)
        return;
    char *header = strndup((const char *)*p + hl, (size_t)(nl - *p) - hl);
    FUZZ_CHECK(header != NULL, "strndup");
    *len -= (size_t)(nl + 1 - *p);
    *p = nl + 1;
    omadm_error_t err = omadm_session_hmac_verify(dm, header, *p, *len);
    FUZZ_CHECK(err == OMADM_OK || err == OMADM_E_DENIED, "x-syncml-hmac '%s': %s", header,
               omadm_strerror(err));
    free(header);
}

static int messages(omadm_t *dm, const uint8_t *data, size_t size)
{
    int taken = 0;
    omadm_account_t acc = {
        .server_url = "https://dm.example.com/omadm",
        .server_id = "fuzz-server",
        .client_auth = OMADM_AUTH_MD5,
        .client_user = "fuzz-device",
        .client_secret = "client-secret",
        .server_auth = OMADM_AUTH_NONE,
        .server_secret = "server-secret",
        .wbxml = codec_detect(data, size) == SYNCML_ENC_WBXML,
    };
    uint8_t *pkg1 = NULL;
    size_t pkg1_len = 0;
    omadm_error_t err = omadm_session_begin(dm, &acc, 0, "1", &pkg1, &pkg1_len);
    FUZZ_CHECK(err == OMADM_OK, "a session must begin: %s", omadm_strerror(err));
    fuzz_reply_decodes(dm, pkg1, pkg1_len, acc.wbxml);
    omadm_buffer_free(dm, pkg1);
    const uint8_t *p = data, *end = data + size;
    for (int i = 0; i < FUZZ_MAX_MESSAGES && p && omadm_session_active(dm); i++) {
        const uint8_t *next = find_next(p, end), *msg = p;
        size_t len = (size_t)((next ? next : end) - p);
        hmac_header(dm, &msg, &len);
        uint8_t *reply = NULL;
        size_t reply_len = 0;
        err = omadm_process(dm, msg, len, &reply, &reply_len);
        process_ok(dm, err, "a server message in the session");
        if (err == OMADM_OK && reply)
            fuzz_reply_decodes(dm, reply, reply_len, codec_detect(msg, len) == SYNCML_ENC_WBXML);
        omadm_buffer_free(dm, reply);
        taken += err == OMADM_OK;
        p = next ? next + strlen(FUZZ_NEXT) : NULL;
    }
    return taken;
}

#endif

/* One run of the input on the state in mem and the store directory;
 * returns the number of messages the engine took. */
static int run(fuzz_mem_t *mem, const uint8_t *data, size_t size, const char *what)
{
    omadm_t *dm = fuzz_engine(mem);
    struct omadm_certstore *cs = fuzz_store_open(dm);
    int taken = messages(dm, data, size);
    omadm_free(dm);
    fuzz_store_done(cs, what);
    return taken;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if defined(FUZZ_XML)
    if (codec_detect(data, size) != SYNCML_ENC_XML)
        return 0;
#elif defined(FUZZ_WBXML)
    if (codec_detect(data, size) != SYNCML_ENC_WBXML)
        return 0;
#endif
    fuzz_mem_t mem;
    memset(&mem, 0, sizeof mem);
    fuzz_platform_reset();
    fuzz_store_fresh();
    /* When the engine refused every message, nothing changed but the
     * session counters: the replay would be the same run again. */
    if (run(&mem, data, size, "after the input"))
        run(&mem, data, size, "after the replay");
    /* and what the replay saved loads too */
    omadm_free(fuzz_engine(&mem));
    fuzz_mem_clear(&mem);
    return 0;
}
