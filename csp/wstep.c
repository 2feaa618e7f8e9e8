/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep.c - the CertificateStore/My/WSTEP nodes and their record
 * (docs/wstep.md):
 *
 *   My/WSTEP                              exists once an identity is adopted
 *   WSTEP/CertThumprint (CertThumbprint)  Get: the current identity
 *   WSTEP/Renew                           Get
 *   Renew/RenewPeriod (RenewalPeriod)     int 1..1000, default 42   } AtomicRequired:
 *   Renew/RetryInterval                   int 1..1000, default 7    } Add/Replace/Delete
 *   Renew/ROBOSupport                     bool, default true        } only in an Atomic
 *   Renew/ServerURL                       chr http(s) URL, optional
 *   Renew/Status, ErrorCode, LastRenewalAttemptTime   Get
 *   Renew/RenewNow                        Exec
 *   Renew/RetryAfterExpiryInterval        int 0..1000 days, default 0
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "omadm_certstore.h"
#include "platform.h"
#include "state_format.h"
#include "store/cert.h"
#include "store/textbuf.h"
#include "wstep.h"

#define FORMAT_NAME "omadm-wstep"
#define MAX_URL 2048

typedef enum {
    W_NONE, W_WSTEP, W_THUMB, W_RENEW, W_PERIOD, W_RETRY, W_ROBO, W_URL, W_STATUS, W_ERROR,
    W_LAST, W_NOW, W_AFTER
} wnode_t;

static const struct {
    const char *name, *alias;
    wnode_t node;
} renew_leaves[] = {
    {"RenewPeriod", "RenewalPeriod", W_PERIOD},
    {"RetryInterval", NULL, W_RETRY},
    {"ROBOSupport", NULL, W_ROBO},
    {"ServerURL", NULL, W_URL},
    {"Status", NULL, W_STATUS},
    {"ErrorCode", NULL, W_ERROR},
    {"LastRenewalAttemptTime", NULL, W_LAST},
    {"RenewNow", NULL, W_NOW},
    {"RetryAfterExpiryInterval", NULL, W_AFTER},
};
#define N_RENEW_LEAVES (sizeof renew_leaves / sizeof renew_leaves[0])

static wnode_t resolve(char **segs, size_t n)
{
    if (n == 0)
        return W_WSTEP;
    if (n == 1 && (!strcasecmp(segs[0], "CertThumprint") || !strcasecmp(segs[0], "CertThumbprint")))
        return W_THUMB;
    if (strcasecmp(segs[0], "Renew"))
        return W_NONE;
    if (n == 1)
        return W_RENEW;
    for (size_t i = 0; n == 2 && i < N_RENEW_LEAVES; i++)
        if (!strcasecmp(segs[1], renew_leaves[i].name) ||
            (renew_leaves[i].alias && !strcasecmp(segs[1], renew_leaves[i].alias)))
            return renew_leaves[i].node;
    return W_NONE;
}

/* ---- the record ---- */

int wstep_period(const wstep_rec_t *r)
{
    return r->period < 0 ? WSTEP_DEFAULT_PERIOD : r->period;
}

int wstep_retry(const wstep_rec_t *r)
{
    return r->retry < 0 ? WSTEP_DEFAULT_RETRY : r->retry;
}

int wstep_after(const wstep_rec_t *r)
{
    return r->after < 0 ? WSTEP_DEFAULT_AFTER : r->after;
}

void wstep_rec_free(const omadm_platform_t *p, wstep_rec_t *r)
{
    plat_free(p, r->url);
    r->url = NULL;
}

static bool is_thumb(const char *t)
{
    return strlen(t) == CERT_THUMB_HEX && strspn(t, "0123456789ABCDEF") == CERT_THUMB_HEX;
}

static int parse_long(const char *t, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long v = strtoll(t, &end, 10);
    if (!*t || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* 0; -1 damaged; -2 no memory; -3 newer. */
static int parse(const omadm_platform_t *p, char *text, wstep_rec_t *r)
{
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    state_fmt_t fmt = state_format(line, FORMAT_NAME, 1, 1, NULL);
    if (fmt == STATE_FMT_NEWER)
        return -3;
    if (fmt == STATE_FMT_DAMAGED)
        return -1;
    bool ended = false;
    while (!ended && (line = strtok_r(NULL, "\n", &save))) {
        char *sp = strchr(line, ' ');
        const char *v = sp ? sp + 1 : "";
        if (sp)
            *sp = 0;
        long long x = 0;
        if (!strcmp(line, "end") && !sp) {
            ended = true;
        } else if (!strcmp(line, "configured") && is_thumb(v)) {
            strcpy(r->configured, v);
        } else if (!strcmp(line, "current") && is_thumb(v)) {
            strcpy(r->current, v);
        } else if (!strcmp(line, "period") && !parse_long(v, -1, 1000, &x)) {
            r->period = (int)x;
        } else if (!strcmp(line, "retry") && !parse_long(v, -1, 1000, &x)) {
            r->retry = (int)x;
        } else if (!strcmp(line, "robo") && !parse_long(v, -1, 1, &x)) {
            r->robo = (int)x;
        } else if (!strcmp(line, "after") && !parse_long(v, -1, 1000, &x)) {
            r->after = (int)x;
        } else if (!strcmp(line, "url") && !r->url && *v && strlen(v) <= MAX_URL) {
            if (!(r->url = plat_alloc(p, strlen(v) + 1)))
                return -2;
            strcpy(r->url, v);
        } else if (!strcmp(line, "status") && !parse_long(v, 0, 3, &x)) {
            r->status = (int)x;
        } else if (!strcmp(line, "error") && !parse_long(v, INT32_MIN, INT32_MAX, &x)) {
            r->error = (int32_t)x;
        } else if (!strcmp(line, "last") && !parse_long(v, 0, INT64_MAX, &x)) {
            r->last = x;
        } else if (!strcmp(line, "renewnow") && !parse_long(v, 0, INT64_MAX, &x)) {
            r->now_req = x;
        } else if (!strcmp(line, "alert") && !parse_long(v, 0, UINT32_MAX, &x)) {
            r->alert = true;
            r->alert_gen = (unsigned)x;
        } else if (!strcmp(line, "gen") && !parse_long(v, 0, UINT32_MAX, &x)) {
            r->alert_gen = (unsigned)x;
        } else {
            return -1;
        }
    }
    return ended && r->configured[0] && r->current[0] ? 0 : -1;
}

int wstep_load(store_t *s, wstep_rec_t *r)
{
    const omadm_platform_t *p = store_platform(s);
    char *text = NULL;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    r->period = r->retry = r->robo = r->after = -1;
    int rc = store_get_state(s, WSTEP_RECORD, &text, &len);
    if (rc)
        return rc < 0 ? -1 : 1;
    rc = strlen(text) == len ? parse(p, text, r) : -1;
    plat_free(p, text);
    if (rc) {
        wstep_rec_free(p, r);
        return rc == -3 ? -3 : -1;
    }
    return 0;
}

int wstep_save(store_t *s, const wstep_rec_t *r)
{
    store_buf_t b;
    store_buf_init(&b, store_platform(s));
    store_buf_printf(&b, FORMAT_NAME " 1\nconfigured %s\ncurrent %s\n", r->configured, r->current);
    store_buf_printf(&b, "period %d\nretry %d\nrobo %d\nafter %d\n", r->period, r->retry, r->robo,
                     r->after);
    if (r->url)
        store_buf_printf(&b, "url %s\n", r->url);
    store_buf_printf(&b, "status %d\nerror %ld\nlast %lld\n", r->status, (long)r->error,
                     (long long)r->last);
    if (r->now_req)
        store_buf_printf(&b, "renewnow %lld\n", (long long)r->now_req);
    if (r->alert)
        store_buf_printf(&b, "alert %u\n", r->alert_gen);
    else
        store_buf_printf(&b, "gen %u\n", r->alert_gen);
    store_buf_puts(&b, "end\n");
    size_t len = 0;
    char *text = store_buf_take(&b, &len);
    if (!text)
        return -1;
    int rc = store_put_state(s, WSTEP_RECORD, text, len);
    plat_free(store_platform(s), text);
    return rc ? -1 : 0;
}

/* 0, -404 (no identity: no My/WSTEP), -500. */
static int load(struct omadm_certstore *cs, wstep_rec_t *r)
{
    int rc = wstep_load(cs->store, r);
    return rc == 0 ? 0 : rc == 1 ? -404 : -500;
}

bool wstep_exists(struct omadm_certstore *cs)
{
    wstep_rec_t r;
    if (load(cs, &r))
        return false;
    wstep_rec_free(&cs->plat, &r);
    return true;
}

/* ---- get / list ---- */

static int out_text(omadm_csp_out_t *out, const char *text, const char *format)
{
    omadm_value_t v = {(const uint8_t *)text, strlen(text), format, NULL};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

static int out_int(omadm_csp_out_t *out, long long x)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", x);
    return out_text(out, buf, "int");
}

static int out_time(omadm_csp_out_t *out, int64_t t)
{
    char buf[32] = "";
    struct tm tm;
    time_t tt = (time_t)t;
    if (t && gmtime_r(&tt, &tm))
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out_text(out, buf, "time");
}

static int leaf_get(const wstep_rec_t *r, wnode_t w, omadm_csp_out_t *out)
{
    switch (w) {
    case W_THUMB:
        return out_text(out, r->current, "chr");
    case W_PERIOD:
        return out_int(out, wstep_period(r));
    case W_RETRY:
        return out_int(out, wstep_retry(r));
    case W_ROBO:
        return out_text(out, r->robo == 0 ? "false" : "true", "bool");
    case W_URL:
        return r->url ? out_text(out, r->url, "chr") : -404;
    case W_STATUS:
        return out_int(out, r->status);
    case W_ERROR:
        return out_int(out, r->error);
    case W_LAST:
        return out_time(out, r->last);
    case W_AFTER:
        return out_int(out, wstep_after(r));
    case W_NOW:
        return -405; /* Exec only */
    default:
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    }
}

int wstep_get(struct omadm_certstore *cs, char **segs, size_t n, omadm_csp_out_t *out)
{
    wnode_t w = resolve(segs, n);
    if (w == W_NONE)
        return -404;
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc;
    rc = leaf_get(&r, w, out);
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

int wstep_list(struct omadm_certstore *cs, char **segs, size_t n, omadm_csp_out_t *out)
{
    wnode_t w = resolve(segs, n);
    if (w != W_WSTEP && w != W_RENEW)
        return w == W_NONE ? -404 : -406; /* a leaf has no children */
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc;
    if (w == W_WSTEP) {
        rc = omadm_csp_out_child(out, "CertThumprint") || omadm_csp_out_child(out, "Renew") ? -500
                                                                                           : 0;
    } else {
        for (size_t i = 0; !rc && i < N_RENEW_LEAVES; i++) {
            if (renew_leaves[i].node == W_URL && !r.url)
                continue;
            rc = omadm_csp_out_child(out, renew_leaves[i].name) ? -500 : 0;
        }
    }
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

/* ---- changes ---- */

static bool format_is(const omadm_value_t *v, const char *want)
{
    return !v->format || !strcmp(v->format, want) || !strcmp(v->format, "chr");
}

/* A whole number in lo..hi: 0, -415 (format), -400 (not a number, out of range). */
static int value_int(const omadm_value_t *v, int lo, int hi, int *out)
{
    char buf[16];
    long long x;
    if (!format_is(v, "int"))
        return -415;
    if (!v->data || !v->len || v->len >= sizeof buf)
        return -400;
    memcpy(buf, v->data, v->len);
    buf[v->len] = 0;
    if (!isdigit((unsigned char)buf[0]) || parse_long(buf, lo, hi, &x))
        return -400;
    *out = (int)x;
    return 0;
}

static int value_bool(const omadm_value_t *v, int *out)
{
    if (!format_is(v, "bool"))
        return -415;
    if (v->data && v->len == 4 && !strncasecmp((const char *)v->data, "true", 4))
        *out = 1;
    else if (v->data && v->len == 5 && !strncasecmp((const char *)v->data, "false", 5))
        *out = 0;
    else
        return -400;
    return 0;
}

/* An http:// or https:// URL of printable ASCII. */
static int value_url(const struct omadm_certstore *cs, const omadm_value_t *v, char **out)
{
    if (!format_is(v, "chr"))
        return -415;
    if (!v->data || v->len < 8 || v->len > MAX_URL)
        return -400;
    for (size_t i = 0; i < v->len; i++)
        if (v->data[i] <= 0x20 || v->data[i] >= 0x7f)
            return -400;
    if (strncasecmp((const char *)v->data, "https://", 8) &&
        strncasecmp((const char *)v->data, "http://", 7))
        return -400;
    if (!(*out = plat_alloc(&cs->plat, v->len + 1)))
        return -500;
    memcpy(*out, v->data, v->len);
    (*out)[v->len] = 0;
    return 0;
}

static bool atomic_required(wnode_t w)
{
    return w == W_PERIOD || w == W_RETRY || w == W_ROBO;
}

/* Set w to v in r: 0 or a status.  *set: whether the node held a value of
 * its own before (for Add's 418). */
static int leaf_set(struct omadm_certstore *cs, wstep_rec_t *r, wnode_t w, const omadm_value_t *v,
                    bool *had)
{
    int x = 0, rc;
    switch (w) {
    case W_PERIOD:
    case W_RETRY:
        if ((rc = value_int(v, 1, 1000, &x)))
            return rc;
        *had = (w == W_PERIOD ? r->period : r->retry) >= 0;
        *(w == W_PERIOD ? &r->period : &r->retry) = x;
        return 0;
    case W_AFTER:
        if ((rc = value_int(v, 0, 1000, &x)))
            return rc;
        *had = r->after >= 0;
        r->after = x;
        return 0;
    case W_ROBO:
        if ((rc = value_bool(v, &x)))
            return rc;
        if (!x)
            return -405; /* ROBO is how this client renews: federated */
        *had = r->robo >= 0;
        r->robo = x;
        return 0;
    case W_URL: {
        char *url = NULL;
        if ((rc = value_url(cs, v, &url)))
            return rc;
        *had = r->url != NULL;
        plat_free(&cs->plat, r->url);
        r->url = url;
        return 0;
    }
    default:
        return -405;
    }
}

int wstep_set(struct omadm_certstore *cs, char **segs, size_t n, const omadm_csp_req_t *req,
              const omadm_value_t *v, bool add)
{
    wnode_t w = resolve(segs, n);
    if (w == W_NONE)
        return -404;
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc == -404 && add && n == 0 ? -405 : rc; /* My/WSTEP comes with an identity */
    if (w == W_WSTEP || w == W_RENEW || w == W_THUMB)
        rc = add ? -418 : -405;
    else if (atomic_required(w) && !req->atomic)
        rc = -405; /* AtomicRequired */
    else {
        bool had = false;
        rc = leaf_set(cs, &r, w, v, &had);
        if (!rc && add && had)
            rc = -418;
    }
    if (!rc)
        rc = wstep_save(cs->store, &r) ? -500 : 0;
    if (!rc && atomic_required(w))
        cs->wstep_touched = true;
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

int wstep_del(struct omadm_certstore *cs, char **segs, size_t n, const omadm_csp_req_t *req)
{
    wnode_t w = resolve(segs, n);
    if (w == W_NONE)
        return -404;
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc;
    switch (w) {
    case W_PERIOD:
    case W_RETRY:
        if (!req->atomic)
            rc = -405;
        else
            *(w == W_PERIOD ? &r.period : &r.retry) = -1; /* back to the default */
        break;
    case W_ROBO:
        rc = -405; /* federated: ROBOSupport cannot go */
        break;
    case W_URL:
        if (!r.url)
            rc = -404;
        plat_free(&cs->plat, r.url);
        r.url = NULL;
        break;
    default:
        rc = -405;
    }
    if (!rc)
        rc = wstep_save(cs->store, &r) ? -500 : 0;
    if (!rc && atomic_required(w))
        cs->wstep_touched = true;
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

/* RenewNow: the renewal falls due at once (background work); while one
 * runs it stays the one.  Without a ServerURL there is nowhere to renew. */
int wstep_exec(struct omadm_certstore *cs, char **segs, size_t n)
{
    wnode_t w = resolve(segs, n);
    if (w == W_NONE)
        return -404;
    if (w != W_NOW)
        return -405;
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc;
    if (!r.url) {
        rc = -412; /* incomplete: no Renew/ServerURL */
    } else {
        if (!r.now_req)
            r.now_req = plat_now(&cs->plat);
        r.status = WSTEP_IN_PROGRESS;
        rc = wstep_save(cs->store, &r) ? -500 : 0;
    }
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

int wstep_validate(struct omadm_certstore *cs)
{
    if (!cs->wstep_touched)
        return 0;
    wstep_rec_t r;
    int rc = load(cs, &r);
    if (rc)
        return rc == -404 ? 0 : rc;
    rc = wstep_retry(&r) > wstep_period(&r) ? -400 : 0; /* RetryInterval <= RenewPeriod */
    wstep_rec_free(&cs->plat, &r);
    return rc;
}

void wstep_end(struct omadm_certstore *cs)
{
    cs->wstep_touched = false;
}

int64_t wstep_day(const struct omadm_certstore *cs)
{
    return 1440 * (int64_t)(cs->host.minute_seconds ? cs->host.minute_seconds : 60);
}

/* ---- the identity (public) ---- */

static omadm_error_t adopt(omadm_certstore_t *cs, const char *thumb, wstep_rec_t *r, bool had)
{
    store_rec_t rec;
    int rc = store_get(cs->store, "my-system", thumb, &rec);
    if (rc)
        return rc == 1 ? OMADM_E_NOT_FOUND : OMADM_E_STORAGE;
    store_rec_free(cs->store, &rec);
    char *key = store_get_key(cs->store, "my-system", thumb);
    if (!key)
        return OMADM_E_NO_KEY;
    OPENSSL_cleanse(key, strlen(key));
    plat_free(&cs->plat, key);
    if (!had) {
        memset(r, 0, sizeof *r);
        r->period = r->retry = r->robo = r->after = -1;
    }
    /* another identity: its renewal starts afresh, the settings stay */
    strcpy(r->configured, thumb);
    strcpy(r->current, thumb);
    r->status = WSTEP_NOT_STARTED;
    r->error = 0;
    r->last = 0;
    r->now_req = 0;
    if (store_in_tx(cs->store) || store_begin(cs->store))
        return OMADM_E_STORAGE;
    if (wstep_save(cs->store, r) || store_commit(cs->store)) {
        store_rollback(cs->store);
        return OMADM_E_STORAGE;
    }
    return store_flush(cs->store) ? OMADM_E_STORAGE : OMADM_OK;
}

omadm_error_t omadm_certstore_wstep_identity(omadm_certstore_t *cs, const char *thumbprint,
                                             char current[OMADM_THUMBPRINT_LEN + 1])
{
    char t[CERT_THUMB_HEX + 1];
    if (!cs || !thumbprint || !current || omadm_certstore_thumbprint_parse(thumbprint, t))
        return OMADM_E_INVALID_ARG;
    wstep_rec_t r;
    int rc = wstep_load(cs->store, &r);
    if (rc == -3)
        return OMADM_E_NEWER_FORMAT;
    if (rc < 0)
        return OMADM_E_CORRUPT;
    omadm_error_t e = OMADM_OK;
    if (rc == 0 && (!strcmp(r.configured, t) || !strcmp(r.current, t)))
        strcpy(t, r.current); /* renewed since it was configured: the renewed one */
    else
        e = adopt(cs, t, &r, rc == 0);
    wstep_rec_free(&cs->plat, &r);
    if (!e)
        memcpy(current, t, sizeof t);
    return e;
}
