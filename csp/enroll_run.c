/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_run.c - the background half of SCEP enrollment: talk to the CA
 * through the host's HTTP hook, wait out PENDING by polling, install the
 * issued certificate with its key, and queue the result alert.
 *
 * Every transition is one store transaction made durable before the next
 * network exchange: the key (and so the transaction ID) before the first
 * request, the pending transaction before the first poll, the certificate
 * together with the "installed" state.  A process killed anywhere resumes
 * from the last transition; a request may be sent twice, never lost.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "enroll.h"
#include "platform.h"
#include "scep_msg.h"
#include "store/cert.h"

#define HTTP_TIMEOUT_S 30
#define ALERT_TYPE "com.microsoft:mdm.SCEPcertinstall.result"

/* Allowance for an issuer whose clock runs ahead of ours: an issued
 * certificate whose notBefore is up to this far after the step's time is
 * accepted (docs/enrollment.md). */
#define ISSUED_SKEW_S 600

/* How one attempt ended. */
typedef enum {
    A_ISSUED,      /* certificate installed */
    A_PENDING,     /* the CA holds the request */
    A_TRANSIENT,   /* try again later (network, server error) */
    A_FAILED,      /* final failure */
    A_LEFT,        /* not ours to decide: the record changed while the store
                      was unlocked, or the host stopped; leave it as it is */
    A_LOCAL        /* the device's own resources failed (memory, the store):
                    * nothing is recorded, the enrollment stays due */
} outcome_t;

typedef struct attempt {
    struct omadm_certstore *cs;
    const omadm_platform_t *plat;  /* &cs->plat: everything allocated here */
    enrollment_t *e;
    const enr_job_t *job;
    int64_t now;
    int32_t ec;            /* A_TRANSIENT / A_FAILED */
    bool url_problem;      /* this URL cannot serve us: the next one may */
    char why[256];
    /* the key being made while GetCACert/GetCACaps run (they send
     * nothing about the device, so the key need not exist yet) */
    pthread_t keygen;
    bool keygen_running;
    scep_key_t *new_key;       /* allocated on the caller's thread, filled by keygen */
    bool keygen_ok;
    /* what the record keeps of the new key, made on its thread too: the
     * PKCS#8 DER (a secret, allocated with kplat, libc's allocator) and the
     * transaction ID ("": not made there) */
    omadm_platform_t kplat;
    scep_buf_t new_der;
    char new_txid[SCEP_TXID_LEN + 1];
    bool key_unsaved;          /* a->key is new and not yet durable */
    /* where a new key is made (keygen_start): the software key store or
     * the TPM (KeyProtection 1 and 2, choose_store) */
    const keystore_t *ks;
    keystore_t *tpm;           /* the TPM key store, opened for this attempt (a_tpm) */
    /* working objects */
    scep_key_t *key;
    scep_cert_t *signer;
    scep_certset_t *cas;
    scep_buf_t csr;
    /* the record as this step last saw it durable: the host may let other
     * processes use the store while it waits on the network */
    const char *record;        /* its state record name */
    char *seen;                /* its text then (secret: wiped), NULL: unknown */
    size_t seen_len;
    bool stopped;              /* the host stopped an exchange: end the step */
    const char *key_why;       /* why the saved key could not be loaded (static text) */
} attempt_t;

static int keygen_take(attempt_t *a);
static int key_ready(attempt_t *a);


static outcome_t fail(attempt_t *a, outcome_t kind, int32_t ec, const char *fmt, const char *arg)
{
    a->ec = ec;
    snprintf(a->why, sizeof a->why, fmt, arg ? arg : "");
    return kind;
}

/* The message layer's errors that are the device's trouble, not the
 * server's (scep_msg.h): the same answer may go through later. */
static bool scep_local(scep_err_t err)
{
    return err == SCEP_E_NOMEM || err == SCEP_E_RESOURCE;
}

/* A failure of the message layer: the device's own (A_LOCAL); OpenSSL
 * failing in an operation of ours (SCEP_E_CRYPTO says nothing about the
 * server's bytes; it may be OpenSSL running out of memory without saying
 * so): tried again after RetryDelay, as when the server does not answer;
 * else kind. */
static outcome_t scep_fail(attempt_t *a, scep_err_t err, outcome_t kind, int32_t ec,
                           const char *fmt, const char *why)
{
    if (scep_local(err))
        return fail(a, A_LOCAL, err == SCEP_E_NOMEM ? EC_NO_MEMORY : EC_FAIL, fmt, why);
    if (err == SCEP_E_CRYPTO)
        return fail(a, A_TRANSIENT, EC_FAIL, fmt, why);
    return fail(a, kind, ec, fmt, why);
}

/* The device's own trouble (memory, the store) is neither the server's
 * fault nor a try of the server: nothing of this attempt is recorded, the
 * enrollment stays due as it was and the step reports the failure (the
 * host tries again later).  -2. */
static int local_failure(struct omadm_certstore *cs, const enrollment_t *e, const attempt_t *a)
{
    cs_log(cs, OMADM_LOG_WARN, "enrollment %s: %s; it stays due", e->id, a->why);
    return -2;
}

/* ---- where the key lives (keystore.h, docs/keys.md) ---- */

/* The TPM key store of this attempt, opened on first use with the store's
 * TCTI (omadm_certstore_set_tpm); NULL with *why when there is none: no
 * TCTI configured, or the TPM cannot be reached. */
static const keystore_t *a_tpm(attempt_t *a, const char **why)
{
    if (a->tpm)
        return a->tpm;
    if (!a->cs->tpm_tcti) {
        *why = "no TPM is configured";
        return NULL;
    }
    if (ks_tpm_open(a->cs->tpm_tcti, &a->tpm, why) != KS_OK)
        a->tpm = NULL;
    return a->tpm;
}

/* The key store for a new key of this enrollment (a->ks): the TPM for
 * KeyProtection 1 and 2, the software one for 3.  Without a TPM,
 * KeyProtection 1 fails (EC_NO_TPM) and 2 makes a software key and says
 * so in the log (and the certificate's key is then reported as a software
 * one: docs/keys.md).  0 or the ErrorCode, with a->why. */
static int32_t choose_store(attempt_t *a)
{
    const char *why = NULL;
    a->ks = ks_software();
    if (a->job->key_protection == 3)
        return 0;
    const keystore_t *tpm = a_tpm(a, &why);
    if (tpm) {
        a->ks = tpm;
        cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: KeyProtection %u: the key is made in the TPM",
               a->e->id, a->job->key_protection);
        return 0;
    }
    if (a->job->key_protection == 1) {
        fail(a, A_FAILED, EC_NO_TPM, "KeyProtection 1 requires a TPM: %s", why);
        return EC_NO_TPM;
    }
    cs_log(a->cs, OMADM_LOG_WARN,
           "enrollment %s: KeyProtection 2: %s; falling back to a software key", a->e->id, why);
    return 0;
}

/* ---- base64 of what the record keeps ---- */

static int b64_set(const omadm_platform_t *p, char **dst, const uint8_t *data, size_t len)
{
    char *b = cert_b64(p, data, len);
    if (!b)
        return -1;
    int rc = enr_set(p, dst, b);
    OPENSSL_cleanse(b, strlen(b));
    plat_free(p, b);
    return rc;
}

/* 0; -1 when b64 is missing or not base64; -2 out of memory. */
static int b64_get(const omadm_platform_t *p, const char *b64, scep_buf_t *out)
{
    uint8_t *d = NULL;
    size_t len = 0;
    if (!b64)
        return -1;
    int rc = cert_b64_decode(p, b64, &d, &len);
    if (rc)
        return rc == -2 ? -2 : -1;
    out->data = d;
    out->len = len;
    return 0;
}

/* ---- the store unlocked while the host waits on the network ---- */

static void seen_drop(attempt_t *a)
{
    if (a->seen) {
        OPENSSL_cleanse(a->seen, a->seen_len);
        plat_free(store_platform(a->cs->store), a->seen);
    }
    a->seen = NULL;
    a->seen_len = 0;
}

/* Remember the record as it is durable now.  Without it (no memory) the
 * store is not let go during exchanges. */
static void seen_take(attempt_t *a)
{
    seen_drop(a);
    if (store_get_state(a->cs->store, a->record, &a->seen, &a->seen_len) != 0)
        seen_drop(a);
}

/* Before the host's request(): it may unlock the store (omadm_certstore_unlock)
 * only when the record can be compared afterwards.  Returns the unlock
 * count to give exchange_end. */
static unsigned exchange_begin(attempt_t *a)
{
    a->cs->in_http = a->seen != NULL;
    return a->cs->unlocks;
}

/* After request() returned r: 0 to go on with the answer; -1 when it must
 * not be used (*outcome A_LEFT): the host stopped, the store is still
 * unlocked, or another process changed or deleted the record meanwhile. */
static int exchange_end(attempt_t *a, unsigned unlocks, omadm_http_result_t r,
                        outcome_t *outcome)
{
    struct omadm_certstore *cs = a->cs;
    cs->in_http = false;
    if (!store_locked(cs->store) || r == OMADM_HTTP_ABORTED) {
        cs_log(cs, OMADM_LOG_INFO, "enrollment %s: %s; it is taken up again at a later step",
               a->e->id,
               r == OMADM_HTTP_ABORTED ? "the exchange was stopped"
                                       : "the store was not locked again after the exchange");
        a->stopped = true;
        *outcome = A_LEFT;
        return -1;
    }
    if (unlocks == cs->unlocks)
        return 0;
    char *now = NULL;
    size_t len = 0;
    int got = store_get_state(cs->store, a->record, &now, &len);
    bool same = got == 0 && len == a->seen_len && !memcmp(now, a->seen, len);
    if (got == 0) {
        OPENSSL_cleanse(now, len);
        plat_free(store_platform(cs->store), now);
    }
    if (same)
        return 0;
    cs_log(cs, OMADM_LOG_INFO, "enrollment %s %s while waiting for the CA; its answer is dropped",
           a->e->id,
           got < 0 ? "cannot be read again" : "was changed or deleted by another process");
    *outcome = A_LEFT;
    return -1;
}

/* ---- HTTP ---- */

/* 0: a response (caller releases it); otherwise the outcome to report. */
static int http(attempt_t *a, const char *method, const char *url, const scep_buf_t *body,
                omadm_http_resp_t *resp, outcome_t *outcome)
{
    const omadm_http_t *h = &a->cs->http;
    omadm_http_req_t req = {
        .method = method,
        .url = url,
        .content_type = body ? "application/x-pki-message" : NULL,
        .body = body ? body->data : NULL,
        .body_len = body ? body->len : 0,
        .max_response = SCEP_MAX_DER,
        .timeout_s = HTTP_TIMEOUT_S,
    };
    char err[200] = "";
    memset(resp, 0, sizeof *resp);
    unsigned unlocks = exchange_begin(a);
    omadm_http_result_t r = h->request(h->ctx, &req, resp, err, sizeof err);
    if (exchange_end(a, unlocks, r, outcome)) {
        if (r == OMADM_HTTP_OK)
            h->release(h->ctx, resp);
        return -1;
    }
    if (r == OMADM_HTTP_OK)
        return 0;
    char msg[sizeof a->why];
    snprintf(msg, sizeof msg, "%.120s: %.120s", url, err[0] ? err : "no response");
    *outcome = fail(a, A_TRANSIENT,
                    r == OMADM_HTTP_CONNECT   ? EC_CONNECT
                    : r == OMADM_HTTP_TIMEOUT ? EC_TIMEOUT
                    : r == OMADM_HTTP_TOO_LARGE ? EC_BAD_DATA
                                                : EC_FAIL,
                    "%s", msg);
    return -1;
}

static outcome_t http_status_outcome(attempt_t *a, int status, const char *url)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%.150s answered HTTP %d", url, status);
    /* server-side trouble may pass; anything else will not */
    return fail(a, status >= 500 || status == 408 || status == 429 ? A_TRANSIENT : A_FAILED,
                EC_HTTP_BASE + (status > 0 && status < 1000 ? status : 0), "%s", msg);
}

/* GET base?operation=op.  0 and resp on HTTP 200; 1 for another HTTP
 * status (*status; resp already released); -1 without an answer. */
static int get_op(attempt_t *a, const char *base, const char *op, omadm_http_resp_t *resp,
                  outcome_t *outcome, int *status)
{
    char *url = NULL;
    const char *why = NULL;
    scep_err_t err = scep_url_get(a->plat, base, op, NULL, 0, &url, &why);
    if (err) {
        *outcome = scep_fail(a, err, A_FAILED, EC_INVALID_ARG, "ServerURL: %s", why);
        return -1;
    }
    int rc = http(a, "GET", url, NULL, resp, outcome);
    *status = rc ? 0 : resp->status;
    if (!rc && resp->status != 200) {
        *outcome = http_status_outcome(a, resp->status, url);
        a->cs->http.release(a->cs->http.ctx, resp);
        rc = 1; /* an HTTP answer that is not 200: resp->status kept */
    }
    plat_free(a->plat, url);
    return rc;
}

/* ---- one attempt at a URL ---- */

/* The pinned CA, if the device already trusts it: Root/System by thumbprint. */
static int pinned_root(attempt_t *a, store_rec_t *rec)
{
    char up[CERT_THUMB_HEX + 1];
    char clean[64];
    size_t n = 0;
    for (const char *p = a->job->ca_thumb; *p && n + 1 < sizeof clean; p++)
        if (isxdigit((unsigned char)*p))
            clean[n++] = *p;
    clean[n] = 0;
    if (!cert_thumb_normalise(clean, up))
        return 1;
    return store_get(a->cs->store, "root", up, rec);
}

/* GetCACert at base, then base + /pkiclient.exe when the first answers 404.
 * 0: a->cas set, *used the base that answered (malloc'ed). */
static int fetch_ca(attempt_t *a, const char *base, char **used, outcome_t *outcome)
{
    omadm_http_resp_t resp;
    char *alt = NULL;
    const char *why = NULL;
    int status = 0;
    int rc = get_op(a, base, "GetCACert", &resp, outcome, &status);
    *used = plat_strdup(a->plat, base);
    scep_err_t err = rc == 1 && status == 404 ? scep_url_windows_base(a->plat, base, &alt, &why)
                                              : SCEP_OK;
    if (scep_local(err) || !*used) {
        if (!rc)
            a->cs->http.release(a->cs->http.ctx, &resp);
        *outcome = fail(a, A_LOCAL, EC_NO_MEMORY, "%s", "out of memory");
        return -1;
    }
    if (rc == 1 && status == 404 && !err && strcmp(alt, base)) {
        /* the Windows habit: NDES-style servers live at .../pkiclient.exe */
        cs_log(a->cs, OMADM_LOG_INFO, "%s answered 404; trying %s", base, alt);
        rc = get_op(a, alt, "GetCACert", &resp, outcome, &status);
        plat_free(a->plat, *used);
        *used = alt;
        alt = NULL;
    }
    plat_free(a->plat, alt);
    if (rc)
        return -1;
    err = scep_cacert_parse(a->plat, resp.body, resp.len, &a->cas, &why);
    if (!err && b64_set(a->plat, &a->e->cacerts, resp.body, resp.len)) {
        err = SCEP_E_NOMEM;
        why = "out of memory";
    }
    a->cs->http.release(a->cs->http.ctx, &resp);
    if (err) {
        *outcome = scep_fail(a, err, A_FAILED, EC_BAD_DATA, "GetCACert answer unusable: %s", why);
        return -1;
    }
    return 0;
}

static void algs_from_caps(attempt_t *a, const char *base, outcome_t *outcome, int *ok)
{
    omadm_http_resp_t resp;
    unsigned caps = 0;
    const char *why = NULL;
    int status = 0;
    int rc = get_op(a, base, "GetCACaps", &resp, outcome, &status);
    *ok = 0;
    if (rc < 0)
        return; /* no answer at all */
    if (rc == 0) {
        caps = scep_caps_parse((const char *)resp.body, resp.len);
        a->cs->http.release(a->cs->http.ctx, &resp);
    }
    if (caps == 0) /* no GetCACaps: RFC 8894 says assume the old defaults */
        caps = SCEP_CAP_DES3 | SCEP_CAP_SHA1;
    scep_cipher_t c;
    scep_digest_t d;
    if (scep_caps_choose(caps, a->job->hash, &c, &d, &why)) {
        *outcome = fail(a, A_FAILED, EC_NOT_SUPPORTED, "no common algorithm: %s", why);
        return;
    }
    a->e->cipher = (int)c;
    a->e->digest = (int)d;
    a->e->post = scep_caps_post(caps);
    *ok = 1;
}

/* The CSR and the request signer of a for its chosen digest, made with
 * the platform table p: the host's, or the preparing thread's (prep_t). */
static scep_err_t request_make(const omadm_platform_t *p, const attempt_t *a, scep_buf_t *csr,
                               scep_cert_t **signer, const char **why)
{
    scep_csr_params_t cp = {
        .subject = a->job->subject,
        .san = a->job->san,
        .key_usage = a->job->key_usage,
        .eku = a->job->eku,
        .challenge = *a->job->challenge ? a->job->challenge : NULL,
        .valid_period = a->job->valid_period,
        .valid_units = a->job->valid_units,
        .digest = (scep_digest_t)a->e->digest,
    };
    scep_err_t err = scep_csr(p, a->key, &cp, csr, why);
    if (!err)
        err = scep_self_signed(p, a->key, a->job->subject, (scep_digest_t)a->e->digest, a->now,
                               signer, why);
    return err;
}

/* Build the CSR and request signer for the chosen digest. */
static int build_request(attempt_t *a, outcome_t *outcome)
{
    const char *why = NULL;
    scep_buf_t signer = {0};
    scep_err_t err = request_make(a->plat, a, &a->csr, &a->signer, &why);
    if (!err)
        err = scep_cert_to_der(a->plat, a->signer, &signer, &why);
    if (!err && (b64_set(a->plat, &a->e->csr, a->csr.data, a->csr.len) ||
                 b64_set(a->plat, &a->e->signer, signer.data, signer.len))) {
        err = SCEP_E_NOMEM;
        why = "out of memory";
    }
    scep_buf_free(a->plat, &signer);
    if (err) {
        *outcome = scep_fail(a, err, A_FAILED, err == SCEP_E_INVALID_ARG ? EC_INVALID_ARG : EC_FAIL,
                             "cannot build the request: %s", why);
        return -1;
    }
    return 0;
}

static int32_t certrep_error(scep_err_t err)
{
    switch (err) {
    case SCEP_E_SIGNATURE:
    case SCEP_E_MISMATCH:
        return EC_BAD_SIGNATURE;
    case SCEP_E_NOT_FOUND:
        return EC_NO_CERT;
    case SCEP_E_UNTRUSTED:
        return EC_CHAINING;
    case SCEP_E_NOMEM:
        return EC_NO_MEMORY;
    default:
        return EC_BAD_DATA;
    }
}

/* A certificate the CA just issued must be valid now: not expired, and
 * its notBefore at most ISSUED_SKEW_S after the step's time.  (Its chain
 * is checked without times: the CA stamps notBefore with the moment of
 * issue, which may be after the time this step began.) */
static outcome_t issued_in_time(attempt_t *a, const scep_certrep_t *rep)
{
    scep_cert_t *cert = NULL;
    const char *why = NULL;
    scep_err_t err = rep->issued ? SCEP_OK
                                 : scep_cert_from_der(a->plat, rep->cert.data, rep->cert.len,
                                                      &cert, &why);
    if (!err)
        err = scep_cert_check_validity(rep->issued ? rep->issued : cert, a->now, ISSUED_SKEW_S,
                                       &why);
    scep_cert_free(a->plat, cert);
    if (!err)
        return A_ISSUED;
    return scep_fail(a, err, A_FAILED, err == SCEP_E_EXPIRED ? EC_EXPIRED : EC_BAD_DATA,
                     "the issued certificate is refused: %s", why);
}

/* A CertRep's envelope may be single DES (micromdm's scepserver 2.1.0
 * uses it whatever GetCACaps says), which needs a library context with the
 * legacy provider.  It is made on a thread while the request waits on the
 * server, so that the answer need not wait for it; the thread calls
 * OpenSSL and libc only.  An answer in AES or 3DES does not use it; when
 * it could not be made, the answer's check makes its own (and reports
 * why it cannot). */
typedef struct legacy_prep {
    pthread_t thread;
    bool running;
    scep_legacy_t *legacy;
} legacy_prep_t;

static void *legacy_thread(void *arg)
{
    legacy_prep_t *lp = arg;
    const char *why = NULL;
    if (scep_legacy_open(&lp->legacy, &why) != SCEP_OK)
        lp->legacy = NULL;
    return NULL;
}

static void legacy_start(legacy_prep_t *lp)
{
    memset(lp, 0, sizeof *lp);
    lp->running = pthread_create(&lp->thread, NULL, legacy_thread, lp) == 0;
}

/* The context, once the thread is done (NULL: none). */
static const scep_legacy_t *legacy_take(legacy_prep_t *lp)
{
    if (lp->running)
        pthread_join(lp->thread, NULL);
    lp->running = false;
    return lp->legacy;
}

static void legacy_end(legacy_prep_t *lp)
{
    legacy_take(lp);
    scep_legacy_free(lp->legacy);
    lp->legacy = NULL;
}

/* Send a pkiMessage, check the CertRep.  On SUCCESS rep->cert is ours. */
static outcome_t exchange(attempt_t *a, const char *base, const scep_buf_t *msg,
                          const uint8_t nonce[SCEP_NONCE_LEN], scep_certrep_t *rep)
{
    const char *why = NULL;
    char *url = NULL;
    outcome_t outcome = A_FAILED;
    omadm_http_resp_t resp;
    scep_err_t err = scep_url_get(a->plat, base, "PKIOperation", a->e->post ? NULL : msg->data,
                                  a->e->post ? 0 : msg->len, &url, &why);
    if (err)
        return scep_fail(a, err, A_FAILED, EC_INVALID_ARG, "ServerURL: %s", why);
    legacy_prep_t lp;
    legacy_start(&lp);
    int rc = http(a, a->e->post ? "POST" : "GET", url, a->e->post ? msg : NULL, &resp, &outcome);
    if (rc) {
        legacy_end(&lp);
        plat_free(a->plat, url);
        return outcome;
    }
    if (resp.status != 200) {
        legacy_end(&lp);
        outcome = http_status_outcome(a, resp.status, base);
        a->cs->http.release(a->cs->http.ctx, &resp);
        plat_free(a->plat, url);
        return outcome;
    }
    plat_free(a->plat, url);
    scep_expect_t exp = {
        .verifier = scep_certset_verifier(a->cas),
        .ca_certs = a->cas,
        .transaction_id = a->e->txid,
        .nonce = nonce,
        .signer_cert = a->signer,
        .signer_key = a->key,
        .csr_key = a->key,
        /* the chain without times (issued_in_time checks the validity
         * period, with an allowance for the CA's clock) */
        .now = 0,
        .legacy = legacy_take(&lp),
    };
    err = scep_certrep_parse(a->plat, resp.body, resp.len, &exp, rep, &why);
    legacy_end(&lp);
    a->cs->http.release(a->cs->http.ctx, &resp);
    if (rep->warning)
        cs_log(a->cs, OMADM_LOG_WARN, "enrollment %s: %s", a->e->id, rep->warning);
    if (err)
        return scep_fail(a, err, A_FAILED, certrep_error(err), "CA answer refused: %s", why);
    switch (rep->status) {
    case SCEP_STATUS_SUCCESS:
        return issued_in_time(a, rep);
    case SCEP_STATUS_PENDING:
        return A_PENDING;
    default: {
        const char *name = scep_failinfo_name(rep->fail_info);
        char num[16];
        snprintf(num, sizeof num, "%d", rep->fail_info);
        a->ec = EC_SCEP_FAILURE + (rep->fail_info >= 0 && rep->fail_info < 0xFF ? rep->fail_info
                                                                                 : 0xFF);
        snprintf(a->why, sizeof a->why, "the CA refused the request (failInfo %s%s%.100s)",
                 name ? name : rep->fail_info < 0 ? "none" : num, rep->fail_text[0] ? ": " : "",
                 rep->fail_text);
        return A_FAILED;
    }
    }
}

/* ---- the request made while the key is made durable ---- */

/* Signing the CSR and the signer certificate (two RSA signatures) and
 * building the PKCSReq from them (the envelope to the CA and a third
 * signature) is done on a thread while the batch that makes the new key
 * durable waits for the disk; the PKCSReq still leaves only after that
 * batch.  The thread calls OpenSSL and libc only, never a hook of the
 * host's platform table: its own table allocates with libc and hands out
 * random bytes drawn from the host's hook before it started; the results
 * are copied into the host's memory after the join.  Whatever goes wrong
 * there, the request (or the PKCSReq) is built again on the caller's
 * thread (build_request, scep_pkcsreq), which gives the failure its usual
 * report. */
#define PREP_SERIAL 8 /* the signer's serial number (scep_self_signed) */
#define PREP_RANDOM (PREP_SERIAL + SCEP_NONCE_LEN) /* + the PKCSReq's senderNonce */
#define PREP_TXID_MAX 128

typedef struct prep {
    const attempt_t *a;        /* read only while the thread runs */
    omadm_platform_t plat;     /* the thread's table */
    uint8_t rnd[PREP_RANDOM];
    size_t rnd_used;
    pthread_t thread;
    bool running;
    scep_buf_t csr;            /* allocated with plat */
    scep_cert_t *signer;       /* allocated with plat */
    scep_err_t err;
    /* the PKCSReq: what it needs besides the key, copied before the start */
    const scep_cert_t *recipient;
    scep_cipher_t cipher;
    scep_digest_t digest;
    char txid[PREP_TXID_MAX + 1];
    scep_buf_t msg;            /* allocated with plat; empty: not made */
    uint8_t nonce[SCEP_NONCE_LEN];
} prep_t;

static int prep_random(void *ctx, uint8_t *buf, size_t len)
{
    prep_t *p = ctx;
    if (len > sizeof p->rnd - p->rnd_used)
        return -1;
    memcpy(buf, p->rnd + p->rnd_used, len);
    p->rnd_used += len;
    return 0;
}

static int64_t prep_now(void *ctx)
{
    return ((prep_t *)ctx)->a->now;
}

static void *prep_thread(void *arg)
{
    prep_t *p = arg;
    const char *why = NULL;
    p->err = request_make(&p->plat, p->a, &p->csr, &p->signer, &why);
    if (p->err != SCEP_OK || !p->recipient || !p->txid[0])
        return NULL;
    scep_msg_params_t mp = {
        .signer_cert = p->signer,
        .signer_key = p->a->key,
        .recipient = p->recipient,
        .cipher = p->cipher,
        .digest = p->digest,
        .transaction_id = p->txid,
    };
    if (scep_pkcsreq(&p->plat, &mp, p->csr.data, p->csr.len, p->nonce, &p->msg, &why) != SCEP_OK)
        scep_buf_free(&p->plat, &p->msg); /* made again on the caller's thread */
    return NULL;
}

/* Start the thread; false when it cannot run (build_request then does the
 * work after the batch). */
static bool prep_start(const attempt_t *a, prep_t *p)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    if (plat_random(a->plat, p->rnd, sizeof p->rnd))
        return false;
    p->recipient = scep_certset_recipient(a->cas);
    p->cipher = (scep_cipher_t)a->e->cipher;
    p->digest = (scep_digest_t)a->e->digest;
    if (a->e->txid && strlen(a->e->txid) <= PREP_TXID_MAX)
        memcpy(p->txid, a->e->txid, strlen(a->e->txid) + 1);
    const omadm_platform_t own = {.ctx = p, .now = prep_now, .random = prep_random};
    plat_init(&p->plat, &own); /* libc's allocator */
    p->running = pthread_create(&p->thread, NULL, prep_thread, p) == 0;
    if (!p->running)
        OPENSSL_cleanse(p->rnd, sizeof p->rnd);
    return p->running;
}

/* Join the thread and drop what it made. */
static void prep_end(prep_t *p)
{
    if (p->running)
        pthread_join(p->thread, NULL);
    p->running = false;
    scep_buf_free(&p->plat, &p->csr);
    scep_buf_free(&p->plat, &p->msg);
    scep_cert_free(&p->plat, p->signer);
    p->signer = NULL;
    OPENSSL_cleanse(p->rnd, sizeof p->rnd);
}

/* The request of a, from the thread when it made one, else built now;
 * the thread's PKCSReq into msg and nonce when it made one too (msg
 * stays empty otherwise). */
static int prep_take(attempt_t *a, prep_t *p, outcome_t *outcome, scep_buf_t *msg,
                     uint8_t nonce[SCEP_NONCE_LEN])
{
    const char *why = NULL;
    scep_buf_t der = {0};
    if (p->running)
        pthread_join(p->thread, NULL);
    p->running = false;
    bool made = p->err == SCEP_OK && p->signer &&
                scep_cert_to_der(&p->plat, p->signer, &der, &why) == SCEP_OK &&
                scep_cert_share(a->plat, p->signer, &a->signer, &why) == SCEP_OK &&
                (a->csr.data = plat_alloc(a->plat, p->csr.len)) != NULL;
    if (made) {
        memcpy(a->csr.data, p->csr.data, p->csr.len);
        a->csr.len = p->csr.len;
        if (b64_set(a->plat, &a->e->csr, a->csr.data, a->csr.len) ||
            b64_set(a->plat, &a->e->signer, der.data, der.len))
            made = false;
    }
    if (made && p->msg.len && (msg->data = plat_alloc(a->plat, p->msg.len)) != NULL) {
        memcpy(msg->data, p->msg.data, p->msg.len);
        msg->len = p->msg.len;
        memcpy(nonce, p->nonce, SCEP_NONCE_LEN);
    }
    scep_buf_free(&p->plat, &der);
    prep_end(p);
    if (made)
        return 0;
    scep_cert_free(a->plat, a->signer);
    a->signer = NULL;
    scep_buf_free(a->plat, &a->csr);
    return build_request(a, outcome);
}

/* PKCSReq to one URL from the list. */
static outcome_t try_url(attempt_t *a, const char *url, scep_certrep_t *rep)
{
    outcome_t outcome = A_FAILED;
    char *base = NULL;
    const char *why = NULL;
    scep_certset_free(a->plat, a->cas);
    a->cas = NULL;
    a->url_problem = false;
    if (fetch_ca(a, url, &base, &outcome)) {
        a->url_problem = true;
        plat_free(a->plat, base);
        return outcome;
    }
    /* the pin is checked before anything about us is sent */
    store_rec_t root;
    int have_root = pinned_root(a, &root);
    if (have_root < 0) {
        plat_free(a->plat, base);
        return fail(a, A_LOCAL, EC_STORE, "%s", "cannot read Root/System");
    }
    scep_blob_t extra = {have_root == 0 ? root.der : NULL, have_root == 0 ? root.der_len : 0};
    scep_err_t err = scep_cacert_match_thumbprint(a->cas, a->job->ca_thumb, &extra,
                                                  have_root == 0 ? 1 : 0, a->now, &why);
    if (have_root == 0)
        store_rec_free(a->cs->store, &root);
    if (err) {
        plat_free(a->plat, base);
        a->url_problem = !scep_local(err);
        return scep_fail(a, err, A_FAILED, EC_UNTRUSTED_CA, "the CA does not match CAThumbprint: %s",
                         why);
    }
    int ok = 0;
    algs_from_caps(a, base, &outcome, &ok);
    a->url_problem = !ok;
    /* a new key: the request is made while the key's batch is synced */
    prep_t prep;
    bool prepared = false;
    if (ok) {
        int krc = keygen_take(a);
        if (!krc && a->key_unsaved)
            prepared = prep_start(a, &prep);
        if (krc || key_ready(a)) {
            if (prepared)
                prep_end(&prep);
            plat_free(a->plat, base);
            return fail(a, A_LOCAL, EC_FAIL, "%s", "cannot make or keep the key");
        }
    }
    uint8_t nonce[SCEP_NONCE_LEN];
    scep_buf_t msg = {0};
    if (!ok || (prepared ? prep_take(a, &prep, &outcome, &msg, nonce)
                         : build_request(a, &outcome))) {
        plat_free(a->plat, base);
        return outcome;
    }
    scep_msg_params_t mp = {
        .signer_cert = a->signer,
        .signer_key = a->key,
        .recipient = scep_certset_recipient(a->cas),
        .cipher = (scep_cipher_t)a->e->cipher,
        .digest = (scep_digest_t)a->e->digest,
        .transaction_id = a->e->txid,
    };
    err = msg.len ? SCEP_OK
                  : scep_pkcsreq(a->plat, &mp, a->csr.data, a->csr.len, nonce, &msg, &why);
    if (err) {
        plat_free(a->plat, base);
        return scep_fail(a, err, A_FAILED, EC_FAIL, "cannot build PKCSReq: %s", why);
    }
    cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: PKCSReq to %s (%s, %s, %s)", a->e->id, base,
           scep_cipher_name(mp.cipher), scep_digest_name(mp.digest), a->e->post ? "POST" : "GET");
    outcome = exchange(a, base, &msg, nonce, rep);
    scep_buf_free(a->plat, &msg);
    if (outcome == A_ISSUED || outcome == A_PENDING) {
        if (enr_set(a->plat, &a->e->base_url, base) ||
            enr_set(a->plat, &a->e->respondent, base))
            outcome = fail(a, A_LOCAL, EC_NO_MEMORY, "%s", "out of memory");
    }
    plat_free(a->plat, base);
    return outcome;
}

/* ---- transitions ---- */

/* Make e (and the certificate, when issued) durable in one batch. */
static int persist(struct omadm_certstore *cs, enrollment_t *e, const scep_buf_t *cert,
                   const char *key_pem, int64_t now)
{
    store_t *s = cs->store;
    if (store_in_tx(s) || store_begin(s))
        return -1;
    int rc = 0;
    if (cert) {
        store_rec_t rec = {0};
        const char *my = enr_my_store(e->ns);
        rc = cert_thumbprint(cert->data, cert->len, rec.thumb);
        if (!rc && e->thumb && strcmp(e->thumb, rec.thumb)) {
            /* a new enrollment of the same {UniqueID} replaces its certificate */
            store_rec_t old;
            int got = store_get(s, my, e->thumb, &old);
            if (got == 0) {
                store_rec_free(s, &old);
                rc = store_del(s, my, e->thumb);
            }
            rc = rc || got < 0 ? -1 : 0;
        }
        if (!rc) {
            rec.name = rec.thumb;
            rec.server = e->server ? e->server : "";
            rec.added = now;
            rec.der = cert->data;
            rec.der_len = cert->len;
            rc = store_put(s, my, &rec) || store_put_key(s, my, rec.thumb, key_pem) ||
                 enr_set(&cs->plat, &e->thumb, rec.thumb);
        }
    }
    if (!rc)
        rc = enr_save(s, e);
    if (rc) {
        store_rollback(s);
        return -1;
    }
    if (store_commit(s) || store_flush(s))
        return -1;
    return 0;
}

/* The Challenge is needed until the CA has answered the request.  Wiped
 * in place (it becomes ""): forgetting it cannot fail for want of memory. */
static void forget_challenge(const omadm_platform_t *p, enrollment_t *e)
{
    (void)p;
    char *c = e->snap[P_CHALLENGE];
    if (c)
        OPENSSL_cleanse(c, strlen(c) + 1);
}

static void finish(const omadm_platform_t *p, enrollment_t *e, int status, int32_t ec)
{
    forget_challenge(p, e);
    e->phase = PH_DONE;
    e->status = status;
    e->error = ec;
    e->alert = true;
    e->alert_data = ec;
    e->alert_gen = e->gen;
    enr_drop_work(p, e);
}

/* PEM of the private key (PKCS#8, or a TPM key's TSS2 blob), from p: from the base64 of its DER
 * that the record keeps (kept_b64, made from this key: keygen_take,
 * load_work), else encoded now. */
static char *key_pem(const omadm_platform_t *p, const scep_key_t *key, const char *kept_b64)
{
    /* PKCS#8 "PRIVATE KEY", or a TPM key's "TSS2 PRIVATE KEY" (keystore.h) */
    const char *label = scep_key_pem_label(key) ? scep_key_pem_label(key) : "PRIVATE KEY";
    char *b64;
    if (kept_b64 && *kept_b64 &&
        strspn(kept_b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
            strlen(kept_b64)) {
        b64 = plat_strdup(p, kept_b64);
    } else {
        scep_buf_t der = {0};
        const char *why;
        if (scep_key_to_der(p, key, &der, &why))
            return NULL;
        b64 = cert_b64(p, der.data, der.len);
        OPENSSL_cleanse(der.data, der.len);
        scep_buf_free(p, &der);
    }
    if (!b64)
        return NULL;
    size_t n = strlen(b64), cap = n + n / 64 + 100, w = 0;
    char *pem = plat_alloc(p, cap);
    if (pem) {
        w += (size_t)snprintf(pem, cap, "-----BEGIN %s-----\n", label);
        for (size_t i = 0; i < n; i += 64) {
            size_t len = n - i < 64 ? n - i : 64;
            memcpy(pem + w, b64 + i, len);
            w += len;
            pem[w++] = '\n';
        }
        snprintf(pem + w, cap - w, "-----END %s-----\n", label);
    }
    OPENSSL_cleanse(b64, n);
    plat_free(p, b64);
    return pem;
}

static int install(attempt_t *a, scep_certrep_t *rep)
{
    char *pem = key_pem(a->plat, a->key, a->e->key);
    if (!pem) {
        fail(a, A_LOCAL, EC_NO_MEMORY, "%s", "out of memory");
        return local_failure(a->cs, a->e, a);
    }
    finish(a->plat, a->e, ST_INSTALLED, 0);
    int rc = persist(a->cs, a->e, &rep->cert, pem, a->now);
    OPENSSL_cleanse(pem, strlen(pem));
    plat_free(a->plat, pem);
    if (!rc)
        cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: certificate %s installed in %s", a->e->id,
               a->e->thumb, enr_my_store(a->e->ns));
    return rc;
}

/* How loading a kept item went: 0; -1 damaged; -2 the device's own
 * resources failed (worth another try). */
static int load_rc(int b64_rc, scep_err_t err)
{
    if (b64_rc == -2 || scep_local(err))
        return -2;
    return b64_rc || err ? -1 : 0;
}

/* Load the key, signer and CA certificates the record keeps: 0, -1 when
 * the saved transaction is damaged, -2 (load_rc), -3 when the key is a TPM
 * key that the TPM cannot load now (none configured, unreachable, or it
 * refuses the blob: tried again, RetryCount times at most). */
static int load_work(attempt_t *a, bool need_pending)
{
    scep_buf_t der = {0};
    const char *why = NULL;
    scep_err_t err = SCEP_OK;
    int b = b64_get(a->plat, a->e->key, &der);
    bool tpm_key = false;
    if (!b) {
        /* a TPM key's blob needs the TPM */
        const keystore_t *stores[2] = {ks_software(), NULL};
        tpm_key = ks_is_tpm_blob(der.data, der.len);
        if (tpm_key && !(stores[1] = a_tpm(a, &why)))
            err = SCEP_E_RESOURCE; /* why: a_tpm's */
        else
            err = scep_key_load(a->plat, stores, 2, der.data, der.len, &a->key, &why);
        if (err) {
            cs_log(a->cs, OMADM_LOG_WARN, "enrollment %s: the saved key cannot be loaded: %s",
                   a->e->id, why);
            a->key_why = why;
        }
    }
    scep_buf_free(a->plat, &der);
    if (tpm_key && err && err != SCEP_E_NOMEM)
        return -3;
    int rc = load_rc(b, err);
    if (rc || !need_pending)
        return rc;
    b = b64_get(a->plat, a->e->signer, &der);
    if (!b)
        err = scep_cert_from_der(a->plat, der.data, der.len, &a->signer, &why);
    scep_buf_free(a->plat, &der);
    if ((rc = load_rc(b, err)) != 0)
        return rc;
    b = b64_get(a->plat, a->e->cacerts, &der);
    if (!b)
        err = scep_cacert_parse(a->plat, der.data, der.len, &a->cas, &why);
    scep_buf_free(a->plat, &der);
    if ((rc = load_rc(b, err)) != 0)
        return rc;
    if ((rc = load_rc(b64_get(a->plat, a->e->csr, &a->csr), SCEP_OK)) != 0)
        return rc;
    return !a->e->txid || !a->e->base_url ? -1 : 0;
}

/* Only OpenSSL runs here: no hook of the host's platform table is ever
 * called from the library's own thread (the key object was allocated
 * before, on the caller's). */
static void *keygen_thread(void *arg)
{
    attempt_t *a = arg;
    const char *why = NULL;
    a->keygen_ok = scep_key_generate(a->new_key, a->ks, a->job->key_length, &why) == SCEP_OK;
    if (a->keygen_ok && (scep_key_to_der(&a->kplat, a->new_key, &a->new_der, &why) != SCEP_OK ||
                         scep_transaction_id(a->new_key, a->new_txid, &why) != SCEP_OK))
        a->new_txid[0] = 0; /* keygen_take makes them */
    return NULL;
}

/* Drop what the key's thread made besides the key. */
static void keygen_der_drop(attempt_t *a)
{
    if (a->new_der.data)
        OPENSSL_cleanse(a->new_der.data, a->new_der.len);
    scep_buf_free(&a->kplat, &a->new_der);
    a->new_txid[0] = 0;
}

/* Start making the key of a started enrollment in the background. */
static void keygen_start(attempt_t *a)
{
    const char *why = NULL;
    if (scep_key_alloc(a->plat, &a->new_key, &why))
        return; /* keygen_take tries again */
    a->keygen_running = pthread_create(&a->keygen, NULL, keygen_thread, a) == 0;
}

/* The key made in the background (or now, without a thread), recorded in
 * the enrollment with its transaction ID; not yet durable. */
static int keygen_take(attempt_t *a)
{
    const char *why = NULL;
    scep_buf_t der = {0};
    char txid[SCEP_TXID_LEN + 1];
    if (a->key)
        return 0;
    if (a->keygen_running) {
        pthread_join(a->keygen, NULL);
        a->keygen_running = false;
    } else if (a->new_key || !scep_key_alloc(a->plat, &a->new_key, &why)) {
        keygen_thread(a);
    }
    if (a->keygen_ok) {
        a->key = a->new_key;
        a->new_key = NULL;
    }
    if (!a->key) {
        keygen_der_drop(a);
        return -1;
    }
    int rc;
    if (a->new_der.len && a->new_txid[0]) { /* made on the key's thread */
        rc = b64_set(a->plat, &a->e->key, a->new_der.data, a->new_der.len) ||
             enr_set(a->plat, &a->e->txid, a->new_txid);
    } else {
        if (scep_key_to_der(a->plat, a->key, &der, &why) ||
            scep_transaction_id(a->key, txid, &why)) {
            keygen_der_drop(a);
            if (der.data)
                OPENSSL_cleanse(der.data, der.len);
            scep_buf_free(a->plat, &der);
            return -1;
        }
        rc = b64_set(a->plat, &a->e->key, der.data, der.len) ||
             enr_set(a->plat, &a->e->txid, txid);
        OPENSSL_cleanse(der.data, der.len);
        scep_buf_free(a->plat, &der);
    }
    keygen_der_drop(a);
    a->key_unsaved = true;
    return rc ? -1 : 0;
}

/* The key, durable before the first request that carries it. */
static int key_ready(attempt_t *a)
{
    if (keygen_take(a))
        return -1;
    if (!a->key_unsaved)
        return 0;
    a->key_unsaved = false;
    if (persist(a->cs, a->e, NULL, NULL, a->now))
        return -1;
    seen_take(a);
    return 0;
}

static int64_t delay(const attempt_t *a)
{
    uint64_t minute = a->cs->host.minute_seconds ? a->cs->host.minute_seconds : 60;
    uint64_t d = a->job->retry_delay * minute;
    return d > (uint64_t)INT32_MAX ? INT32_MAX : (int64_t)d;
}

/* The PKCSReq round: the URLs of the list in order, until one gets an
 * answer from its CA (issued, pending or refused).  When none does, the
 * round is retried later if any failure may pass, else it failed. */
static outcome_t start(attempt_t *a, scep_certrep_t *rep)
{
    outcome_t last = A_TRANSIENT;
    bool transient = false;
    int32_t transient_ec = 0;
    char transient_why[sizeof a->why] = "";
    char *list = plat_strdup(a->plat, a->job->urls);
    if (!list)
        return fail(a, A_LOCAL, EC_NO_MEMORY, "%s", "out of memory");
    char *save = NULL;
    for (char *u = strtok_r(list, ";", &save); u; u = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*u))
            u++;
        char *end = u + strlen(u);
        while (end > u && isspace((unsigned char)end[-1]))
            *--end = 0;
        if (!*u)
            continue;
        scep_certrep_clear(a->plat, rep);
        scep_certrep_init(rep);
        last = try_url(a, u, rep);
        if (last != A_TRANSIENT && !(last == A_FAILED && a->url_problem))
            break;
        /* the outcome of the last URL is the round's, which the caller logs */
        if (save && save[strspn(save, "; \t\r\n")])
            cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: %s", a->e->id, a->why);
        if (last == A_TRANSIENT && !transient) {
            transient = true;
            transient_ec = a->ec;
            memcpy(transient_why, a->why, sizeof transient_why);
        }
        scep_cert_free(a->plat, a->signer);
        a->signer = NULL;
        scep_buf_free(a->plat, &a->csr);
    }
    plat_free(a->plat, list);
    if (last == A_FAILED && a->url_problem && transient) {
        cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: %s", a->e->id, a->why);
        /* another URL may come back: that failure is the one to retry */
        a->ec = transient_ec;
        memcpy(a->why, transient_why, sizeof a->why);
        return A_TRANSIENT;
    }
    return last;
}

static outcome_t poll(attempt_t *a, scep_certrep_t *rep)
{
    const char *why = NULL;
    scep_msg_params_t mp = {
        .signer_cert = a->signer,
        .signer_key = a->key,
        .recipient = scep_certset_recipient(a->cas),
        .cipher = (scep_cipher_t)a->e->cipher,
        .digest = (scep_digest_t)a->e->digest,
        .transaction_id = a->e->txid,
    };
    uint8_t nonce[SCEP_NONCE_LEN];
    scep_buf_t msg = {0};
    scep_err_t err = scep_certpoll(a->plat, &mp, scep_certset_issuer(a->cas), a->csr.data,
                                   a->csr.len, nonce, &msg, &why);
    if (err)
        return scep_fail(a, err, A_FAILED, EC_FAIL, "cannot build CertPoll: %s", why);
    cs_log(a->cs, OMADM_LOG_INFO, "enrollment %s: CertPoll %u of %u to %s", a->e->id,
           a->e->tries + 1, a->job->retry_count, a->e->base_url);
    outcome_t o = exchange(a, a->e->base_url, &msg, nonce, rep);
    scep_buf_free(a->plat, &msg);
    return o;
}

/* What act() did besides 0 (the result is durable), -1 (it cannot be
 * saved) and -2 (the device's resources failed: local_failure); after -1
 * and -2 the enrollment stays due. */
enum {
    ACT_LEFT = 1,   /* nothing: the record changed meanwhile (load it again) */
    ACT_STOPPED = 2 /* nothing: the host stopped; end the step, touch nothing */
};

/* One due action of the enrollment e, loaded from the state record named
 * record: 0, -1, -2 or ACT_*. */
static int act(struct omadm_certstore *cs, enrollment_t *e, const char *record, int64_t now)
{
    enr_job_t job;
    const char *why = NULL;
    attempt_t a = {.cs = cs, .plat = &cs->plat, .e = e, .job = &job, .now = now,
                   .record = record};
    plat_init(&a.kplat, NULL); /* libc's allocator, for the key's thread */
    scep_certrep_t rep;
    scep_certrep_init(&rep);
    seen_take(&a);
    int32_t ec = enr_check(e, &job, &why);
    int rc = 0;
    outcome_t o;
    bool pending = e->phase == PH_PENDING;
    int loaded = ec ? 0 : pending ? load_work(&a, true) : e->key ? load_work(&a, false) : 0;
    if (ec) {
        o = fail(&a, A_FAILED, ec, "%s", why);
    } else if (loaded == -3) {
        o = fail(&a, A_TRANSIENT, EC_NO_TPM, "the TPM cannot load the saved key: %s", a.key_why);
    } else if (loaded == -2) {
        o = fail(&a, A_LOCAL, EC_NO_MEMORY, "%s", "cannot load the saved transaction");
    } else if (pending) {
        o = loaded ? fail(&a, A_FAILED, EC_FAIL, "%s", "the saved transaction is damaged")
                   : poll(&a, &rep);
    } else if (loaded) {
        o = fail(&a, A_TRANSIENT, EC_FAIL, "%s", "the saved key is damaged");
    } else if (!e->key && choose_store(&a)) {
        o = A_FAILED; /* KeyProtection 1 without a TPM: a.ec, a.why */
    } else {
        if (!e->key)
            keygen_start(&a);
        o = start(&a, &rep);
        /* a round that ended before it needed the key keeps it for the next */
        if (o == A_TRANSIENT && !e->key && keygen_take(&a))
            o = fail(&a, A_LOCAL, EC_FAIL, "%s", "cannot make the key");
    }
    if (a.keygen_running) {
        pthread_join(a.keygen, NULL);
        a.keygen_running = false;
    }
    scep_key_free(&cs->plat, a.new_key);
    a.new_key = NULL;
    keygen_der_drop(&a);
    switch (o) {
    case A_ISSUED:
        rc = install(&a, &rep);
        break;
    case A_PENDING:
        if (pending)
            e->tries++;
        else
            e->tries = 0;
        if (e->tries >= job.retry_count) {
            snprintf(a.why, sizeof a.why, "still PENDING after %u polls", e->tries);
            cs_log(cs, OMADM_LOG_WARN, "enrollment %s: %s", e->id, a.why);
            finish(&cs->plat, e, ST_FAILED, EC_POLL_TIMEOUT);
        } else {
            forget_challenge(&cs->plat, e);
            e->phase = PH_PENDING;
            e->status = ST_PENDING;
            e->next_due = now + delay(&a);
            cs_log(cs, OMADM_LOG_INFO, "enrollment %s: PENDING; poll %u of %u in %lld s", e->id,
                   e->tries + 1, job.retry_count, (long long)delay(&a));
        }
        rc = persist(cs, e, NULL, NULL, now);
        break;
    case A_TRANSIENT:
        e->tries++;
        cs_log(cs, OMADM_LOG_WARN, "enrollment %s: %s", e->id, a.why);
        if (e->tries > job.retry_count || (pending && e->tries >= job.retry_count)) {
            finish(&cs->plat, e, ST_FAILED, a.ec);
        } else {
            e->next_due = now + delay(&a);
        }
        rc = persist(cs, e, NULL, NULL, now);
        break;
    case A_FAILED:
        cs_log(cs, OMADM_LOG_WARN, "enrollment %s failed: %s", e->id, a.why);
        finish(&cs->plat, e, ST_FAILED, a.ec);
        rc = persist(cs, e, NULL, NULL, now);
        break;
    case A_LEFT:
        rc = a.stopped ? ACT_STOPPED : ACT_LEFT;
        break;
    case A_LOCAL:
        rc = local_failure(cs, e, &a);
        break;
    }
    seen_drop(&a);
    scep_certrep_clear(&cs->plat, &rep);
    scep_key_free(&cs->plat, a.key);
    ks_close(a.tpm); /* after its keys */
    scep_cert_free(&cs->plat, a.signer);
    scep_certset_free(&cs->plat, a.cas);
    scep_buf_free(&cs->plat, &a.csr);
    return rc;
}

/* ---- step, alerts ---- */

typedef struct names {
    const omadm_platform_t *plat;
    char **v;
    size_t n, cap;
} names_t;

static int collect(void *ctx, const char *name)
{
    names_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = plat_realloc(l->plat, l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = plat_strdup(l->plat, name)))
        return -1;
    l->n++;
    return 0;
}

static void names_free(names_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        plat_free(l->plat, l->v[i]);
    plat_free(l->plat, l->v);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int all_records(struct omadm_certstore *cs, names_t *l)
{
    memset(l, 0, sizeof *l);
    l->plat = &cs->plat;
    if (store_each_state(cs->store, "scep-", collect, l)) {
        names_free(l);
        return -1;
    }
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, by_name);
    return 0;
}

int enroll_step(struct omadm_certstore *cs, int64_t now, int64_t *next_due)
{
    names_t l;
    int rc = 0;
    *next_due = OMADM_NEVER;
    if (all_records(cs, &l)) {
        *next_due = now; /* what is due stays due */
        return -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        enrollment_t e;
        int lrc = enr_load_named(cs->store, l.v[i], &e);
        if (lrc == -2) {
            /* could not be read now: it may be due */
            cs_log(cs, OMADM_LOG_ERROR, "enrollment record %s cannot be read now", l.v[i]);
            rc = -1;
            *next_due = now < *next_due ? now : *next_due;
            continue;
        }
        if (lrc == -3)
            cs_log(cs, OMADM_LOG_WARN,
                   "enrollment record %s is of a newer format than this library reads (" ENR_WRITES
                   "): left as it is", l.v[i]);
        if (lrc)
            continue; /* store check reports a damaged record */
        if (e.phase == PH_START || e.phase == PH_PENDING) {
            int64_t due = e.next_due;
            if (due <= now) {
                int done = 0;
                if (!cs->has_http) {
                    cs_log(cs, OMADM_LOG_WARN, "enrollment %s waits: no HTTP client", e.id);
                    rc = -1;
                } else if ((done = act(cs, &e, l.v[i], now)) == ACT_STOPPED) {
                    /* the rest stays due; the store may be unlocked */
                    enr_free(&cs->plat, &e);
                    *next_due = now;
                    break;
                } else if (done == ACT_LEFT) {
                    /* what another process made of it decides when it is due */
                    enr_free(&cs->plat, &e);
                    if (enr_load_named(cs->store, l.v[i], &e))
                        continue;
                    due = e.phase == PH_START || e.phase == PH_PENDING ? e.next_due : OMADM_NEVER;
                } else if (done) {
                    /* nothing of it was recorded: still due, as it was */
                    if (done == -1)
                        cs_log(cs, OMADM_LOG_ERROR, "enrollment %s: cannot save its state", e.id);
                    rc = -1;
                } else {
                    due = e.phase == PH_START || e.phase == PH_PENDING ? e.next_due : OMADM_NEVER;
                }
            }
            if (due < *next_due)
                *next_due = due;
        }
        enr_free(&cs->plat, &e);
    }
    names_free(&l);
    return rc;
}

typedef struct pending_alert {
    char id[128];
    char *source;
    char data[16];
    unsigned gen;
} pending_alert_t;

int enroll_alerts(struct omadm_certstore *cs, omadm_alert_fn fn, void *ctx)
{
    names_t l;
    int rc = 0;
    if (all_records(cs, &l))
        return -1;
    for (size_t i = 0; !rc && i < l.n; i++) {
        enrollment_t e;
        if (enr_load_named(cs->store, l.v[i], &e))
            continue;
        if (e.alert) {
            char id[128], data[16];
            snprintf(id, sizeof id, "%s:%u", l.v[i], e.alert_gen);
            snprintf(data, sizeof data, "%ld", (long)e.alert_data);
            omadm_generic_alert_t al = {
                .id = id,
                .source = e.exec_uri ? e.exec_uri : "",
                .type = ALERT_TYPE,
                .format = "int",
                .mark = NULL,
                .data = data,
            };
            rc = fn(ctx, &al) ? 1 : 0;
        }
        enr_free(&cs->plat, &e);
    }
    names_free(&l);
    return rc < 0 ? -1 : 0;
}

int enroll_alert_delivered(struct omadm_certstore *cs, const char *id)
{
    char name[128];
    const char *colon = strrchr(id, ':');
    if (!colon || (size_t)(colon - id) >= sizeof name || strncmp(id, "scep-", 5))
        return 1;
    memcpy(name, id, (size_t)(colon - id));
    name[colon - id] = 0;
    char *end;
    unsigned long gen = strtoul(colon + 1, &end, 10);
    if (*end || end == colon + 1)
        return 1;
    enrollment_t e;
    int rc = enr_load_named(cs->store, name, &e);
    if (rc)
        return rc < 0 ? -1 : 1;
    if (!e.alert || e.alert_gen != gen) {
        enr_free(&cs->plat, &e);
        return 1;
    }
    e.alert = false;
    /* inside a message the engine's transaction carries it; alone, our own */
    if (store_in_tx(cs->store))
        rc = enr_save(cs->store, &e);
    else
        rc = persist(cs, &e, NULL, NULL, 0);
    enr_free(&cs->plat, &e);
    return rc ? -1 : 0;
}
