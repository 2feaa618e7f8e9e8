/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep_run.c - the renewal of the DM identity certificate as background
 * work (omadm_step), its result alert and its record's check
 * (docs/wstep.md).
 *
 * When: RenewNow, or RenewPeriod days before the certificate's notAfter,
 * then every RetryInterval days after a failed attempt, until
 * RetryAfterExpiryInterval days after notAfter.  An attempt is recorded
 * (Status 1, LastRenewalAttemptTime) before the request goes out; its end
 * is one store transaction: on success the new certificate and key into
 * My/System, the old ones out, the record naming the new one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "platform.h"
#include "state_format.h"
#include "store/cert.h"
#include "wstep.h"
#include "wstep_msg.h"

#define ALERT_TYPE "org.omadm.wstep.renewal.result"
#define ALERT_SOURCE "./Vendor/MSFT/CertificateStore/My/WSTEP/Renew/Status"
#define HTTP_TIMEOUT_S 60
#define MAX_RESPONSE (1u << 20)

/* When the next attempt falls due (OMADM_NEVER: none): RenewNow at once;
 * else RenewPeriod days before notAfter, RetryInterval days after the last
 * attempt in that window, never later than RetryAfterExpiryInterval days
 * after notAfter (an attempt overdue since then is not made either). */
static int64_t due_at(const struct omadm_certstore *cs, const wstep_rec_t *r, int64_t not_after,
                      int64_t now)
{
    if (!r->url)
        return OMADM_NEVER;
    if (r->now_req)
        return r->now_req;
    int64_t day = wstep_day(cs);
    int64_t start = not_after - (int64_t)wstep_period(r) * day;
    int64_t due = r->last >= start ? r->last + (int64_t)wstep_retry(r) * day : start;
    int64_t when = due > now ? due : now;
    return when > not_after + (int64_t)wstep_after(r) * day ? OMADM_NEVER : due;
}

/* r as one transaction of its own, with the switch to a new certificate
 * (der, key_pem) when der is given.  0 / -1. */
static int persist(struct omadm_certstore *cs, wstep_rec_t *r, const uint8_t *der, size_t der_len,
                   const char *key_pem, int64_t now)
{
    store_t *s = cs->store;
    if (store_in_tx(s) || store_begin(s))
        return -1;
    int rc = 0;
    if (der) {
        store_rec_t rec = {0};
        rc = cert_thumbprint(der, der_len, rec.thumb);
        if (!rc && strcmp(rec.thumb, r->current)) {
            rec.name = rec.thumb;
            rec.server = "";
            rec.added = now;
            rec.der = (uint8_t *)der;
            rec.der_len = der_len;
            rc = store_put(s, "my-system", &rec) || store_put_key(s, "my-system", rec.thumb, key_pem) ||
                 store_del(s, "my-system", r->current);
            memcpy(r->current, rec.thumb, sizeof r->current);
        }
    }
    if (!rc)
        rc = wstep_save(s, r);
    if (rc) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s) || store_flush(s) ? -1 : 0;
}

static void finish(wstep_rec_t *r, int status, int32_t error)
{
    r->status = status;
    r->error = error;
    r->now_req = 0;
    r->alert = true;
    r->alert_gen++;
}

/* One exchange with the service: 0 certificate, 1 pending, -1 failure
 * (*hr), -2 stopped by the host (nothing to record). */
static int exchange(struct omadm_certstore *cs, const wstep_rec_t *r, const store_rec_t *cur,
                    const char *cur_key, wstep_request_t *req, uint8_t **der, size_t *der_len,
                    int32_t *hr)
{
    const char *why = NULL;
    size_t pem_len = 0;
    char *pem = cert_pem(&cs->plat, cur->der, cur->der_len, &pem_len);
    if (!pem || wstep_build_request(&cs->plat, cur->der, cur->der_len, cur_key, r->url, req, &why)) {
        plat_free(&cs->plat, pem);
        cs_log(cs, OMADM_LOG_ERROR, "WSTEP renewal: %s", why ? why : "out of memory");
        *hr = WSTEP_E_CERTSTORE;
        return -1;
    }
    omadm_http_req_t hreq = {
        .method = "POST",
        .url = r->url,
        .content_type = "application/soap+xml; charset=utf-8",
        .body = req->body,
        .body_len = req->len,
        .max_response = MAX_RESPONSE,
        .timeout_s = HTTP_TIMEOUT_S,
        .client_cert_pem = pem,
        .client_key_pem = cur_key,
    };
    omadm_http_resp_t resp = {0};
    char err[256] = "";
    omadm_http_result_t hres = cs->http.request(cs->http.ctx, &hreq, &resp, err, sizeof err);
    plat_free(&cs->plat, pem);
    if (hres == OMADM_HTTP_ABORTED)
        return -2;
    if (hres != OMADM_HTTP_OK) {
        cs_log(cs, OMADM_LOG_WARN, "WSTEP renewal: %s: %s", r->url, err[0] ? err : "no answer");
        *hr = WSTEP_E_CONNECTIVITY;
        return -1;
    }
    int rc = wstep_parse_response(&cs->plat, resp.status, resp.body, resp.len, req->key_pem, der,
                                  der_len, hr, &why);
    cs->http.release(cs->http.ctx, &resp);
    if (rc < 0)
        cs_log(cs, OMADM_LOG_WARN, "WSTEP renewal: HTTP %d: %s (0x%08X)", resp.status, why,
               (unsigned)*hr);
    return rc;
}

/* An attempt: 0 recorded (whatever came of it), -1 not recorded. */
static int attempt(struct omadm_certstore *cs, wstep_rec_t *r, const store_rec_t *cur, int64_t now)
{
    char *key = store_get_key(cs->store, "my-system", r->current);
    if (!key) {
        finish(r, WSTEP_FAILED, WSTEP_E_CERTSTORE);
        r->last = now;
        cs_log(cs, OMADM_LOG_ERROR, "WSTEP renewal: no private key for %s", r->current);
        return persist(cs, r, NULL, 0, NULL, now);
    }
    if (strstr(key, "-----BEGIN TSS2 PRIVATE KEY-----")) {
        /* not (yet): the new key would have to be made in the TPM and
         * the PKCS#7 signed through it (docs/wstep.md) */
        OPENSSL_cleanse(key, strlen(key));
        plat_free(&cs->plat, key);
        finish(r, WSTEP_FAILED, WSTEP_E_CERTSTORE);
        r->last = now;
        cs_log(cs, OMADM_LOG_ERROR, "WSTEP renewal: the key of %s is held by the TPM: renewing "
                                    "such an identity is not supported", r->current);
        return persist(cs, r, NULL, 0, NULL, now);
    }
    r->status = WSTEP_IN_PROGRESS;
    r->last = now;
    if (persist(cs, r, NULL, 0, NULL, now)) {
        OPENSSL_cleanse(key, strlen(key));
        plat_free(&cs->plat, key);
        return -1;
    }
    wstep_request_t req = {0};
    uint8_t *der = NULL;
    size_t der_len = 0;
    int32_t hr = 0;
    int rc = exchange(cs, r, cur, key, &req, &der, &der_len, &hr);
    OPENSSL_cleanse(key, strlen(key));
    plat_free(&cs->plat, key);
    if (rc == -2) {
        wstep_request_free(&cs->plat, &req);
        return -1; /* stopped: the attempt stays in progress, still due */
    }
    if (rc == 0) {
        char old[41];
        memcpy(old, r->current, sizeof old);
        finish(r, WSTEP_SUCCEEDED, 0);
        rc = persist(cs, r, der, der_len, req.key_pem, now);
        if (!rc)
            cs_log(cs, OMADM_LOG_INFO, "WSTEP renewal: %s replaces %s", r->current, old);
    } else if (rc == 1) {
        /* taken under submission: asked again (a new request) after RetryInterval */
        r->now_req = 0;
        cs_log(cs, OMADM_LOG_INFO, "WSTEP renewal: pending at the service");
        rc = persist(cs, r, NULL, 0, NULL, now);
    } else {
        finish(r, WSTEP_FAILED, hr);
        rc = persist(cs, r, NULL, 0, NULL, now);
    }
    plat_free(&cs->plat, der);
    wstep_request_free(&cs->plat, &req);
    return rc;
}

int wstep_step(struct omadm_certstore *cs, int64_t now, int64_t *next_due)
{
    wstep_rec_t r;
    *next_due = OMADM_NEVER;
    int rc = wstep_load(cs->store, &r);
    if (rc == -3)
        cs_log(cs, OMADM_LOG_WARN, "the WSTEP record is of a newer format than this library reads: "
                                   "left as it is, no renewal");
    if (rc == 1 || rc == -3)
        return 0; /* no identity; a newer record is left alone */
    if (rc) {
        cs_log(cs, OMADM_LOG_ERROR, "the WSTEP record cannot be read now");
        return -1;
    }
    store_rec_t cur;
    int64_t not_after = 0;
    rc = store_get(cs->store, "my-system", r.current, &cur);
    if (rc) {
        wstep_rec_free(&cs->plat, &r);
        if (rc == 1)
            return 0; /* the identity was deleted: nothing to renew */
        return -1;
    }
    int64_t due = wstep_not_after(cur.der, cur.der_len, &not_after) ? OMADM_NEVER
                                                                      : due_at(cs, &r, not_after, now);
    if (due <= now && !cs->has_http) {
        cs_log(cs, OMADM_LOG_WARN, "WSTEP renewal waits: no HTTP client");
        rc = -1;
    } else if (due <= now) {
        rc = attempt(cs, &r, &cur, now);
        if (!rc) {
            store_rec_t now_cur;
            if (!store_get(cs->store, "my-system", r.current, &now_cur)) {
                if (!wstep_not_after(now_cur.der, now_cur.der_len, &not_after))
                    due = due_at(cs, &r, not_after, now);
                store_rec_free(cs->store, &now_cur);
            }
        } else {
            due = now;
        }
    }
    *next_due = due;
    store_rec_free(cs->store, &cur);
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

/* ---- the result alert ---- */

int wstep_alerts(struct omadm_certstore *cs, omadm_alert_fn fn, void *ctx)
{
    wstep_rec_t r;
    if (wstep_load(cs->store, &r))
        return 0;
    int rc = 0;
    if (r.alert) {
        char id[32], data[80];
        snprintf(id, sizeof id, "wstep:%u", r.alert_gen);
        snprintf(data, sizeof data, "%d %s %ld", r.status, r.current, (long)r.error);
        omadm_generic_alert_t al = {
            .id = id,
            .source = ALERT_SOURCE,
            .type = ALERT_TYPE,
            .format = "chr",
            .mark = r.status == WSTEP_FAILED ? "critical" : "informational",
            .data = data,
        };
        (void)fn(ctx, &al); /* its answer: whether to go on, and this is the last */
    }
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

int wstep_alert_delivered(struct omadm_certstore *cs, const char *id)
{
    char *end;
    if (strncmp(id, "wstep:", 6))
        return 1;
    unsigned long gen = strtoul(id + 6, &end, 10);
    if (*end || end == id + 6)
        return 1;
    wstep_rec_t r;
    int rc = wstep_load(cs->store, &r);
    if (rc)
        return rc < 0 ? -1 : 1;
    if (!r.alert || r.alert_gen != gen) {
        wstep_rec_free(&cs->plat, &r);
        return 1;
    }
    r.alert = false;
    if (store_in_tx(cs->store))
        rc = wstep_save(cs->store, &r);
    else
        rc = persist(cs, &r, NULL, 0, NULL, 0);
    wstep_rec_free(&cs->plat, &r);
    return rc ? -1 : 0;
}

/* ---- store check ---- */

int wstep_check_record(store_t *s, void (*fn)(void *ctx, const char *problem), void *ctx,
                       unsigned *problems)
{
    wstep_rec_t r;
    char msg[512];
    const char *what = NULL;
    *problems = 0;
    int rc = wstep_load(s, &r);
    if (rc == 1)
        return 0;
    if (rc == -3)
        what = "WSTEP record of a format newer than this library reads; left as it is";
    else if (rc)
        what = "WSTEP record is damaged";
    else {
        store_rec_t cur;
        int got = store_get(s, "my-system", r.current, &cur);
        if (got == 0) {
            store_rec_free(s, &cur);
            char *key = store_get_key(s, "my-system", r.current);
            if (!key)
                what = "WSTEP record: the identity has no private key in My/System";
            else { /* (an identity the server deleted is no inconsistency) */
                OPENSSL_cleanse(key, strlen(key));
                plat_free(store_platform(s), key);
            }
        }
        wstep_rec_free(store_platform(s), &r);
    }
    if (what) {
        snprintf(msg, sizeof msg, "%s/state/" WSTEP_RECORD ": %s", store_dir(s), what);
        (*problems)++;
        if (fn)
            fn(ctx, msg);
    }
    return 0;
}
