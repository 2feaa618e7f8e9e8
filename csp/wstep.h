/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep.h - CertificateStore/My/WSTEP: the DM identity certificate (the TLS
 * client certificate of the DM session, in My/System) and its renewal over
 * MS-WSTEP (docs/wstep.md).
 *
 * Everything is kept in the state record "wstep" of the store, staged in
 * the same store transactions as the certificates, so a renewal's switch
 * (new certificate and key in, old ones out, the record naming the new
 * one) is one transaction: a crash leaves the old identity or the new one.
 * My/WSTEP exists once a host made a certificate of My/System the identity
 * (omadm_certstore_wstep_identity).
 */
#ifndef OMADM_WSTEP_H
#define OMADM_WSTEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certstore_internal.h"

#define WSTEP_RECORD "wstep"

/* Renew/Status values. */
enum { WSTEP_NOT_STARTED = 0, WSTEP_IN_PROGRESS = 1, WSTEP_SUCCEEDED = 2, WSTEP_FAILED = 3 };

typedef struct wstep_rec {
    char configured[41];   /* the thumbprint the host named when it adopted the identity */
    char current[41];      /* the identity now (My/System) */
    int period;            /* RenewPeriod days; -1: not set (42) */
    int retry;             /* RetryInterval days; -1: not set (7) */
    int robo;              /* ROBOSupport; -1: not set (true) */
    int after;             /* RetryAfterExpiryInterval days; -1: not set (0) */
    char *url;             /* ServerURL, or NULL */
    int status;            /* Renew/Status */
    int32_t error;         /* Renew/ErrorCode (HRESULT) */
    int64_t last;          /* LastRenewalAttemptTime, 0 never */
    int64_t now_req;       /* a RenewNow waiting: when it was asked (0: none) */
    bool alert;            /* a result alert waits for the next session */
    unsigned alert_gen;
} wstep_rec_t;

#define WSTEP_DEFAULT_PERIOD 42
#define WSTEP_DEFAULT_RETRY 7
#define WSTEP_DEFAULT_AFTER 0

/* The record: 0 loaded, 1 absent, -1 damaged or unreadable, -3 newer.
 * wstep_rec_free releases it (safe on a zeroed one). */
int wstep_load(store_t *s, wstep_rec_t *r);
int wstep_save(store_t *s, const wstep_rec_t *r);
void wstep_rec_free(const omadm_platform_t *p, wstep_rec_t *r);
int wstep_period(const wstep_rec_t *r);
int wstep_retry(const wstep_rec_t *r);
int wstep_after(const wstep_rec_t *r);

/* Node handlers for My/WSTEP/<segs...> (segs below WSTEP, n may be 0).
 * Conventions of the omadm_csp_t handlers. */
int wstep_get(struct omadm_certstore *cs, char **segs, size_t n, omadm_csp_out_t *out);
int wstep_list(struct omadm_certstore *cs, char **segs, size_t n, omadm_csp_out_t *out);
int wstep_set(struct omadm_certstore *cs, char **segs, size_t n, const omadm_csp_req_t *req,
              const omadm_value_t *v, bool add);
int wstep_del(struct omadm_certstore *cs, char **segs, size_t n, const omadm_csp_req_t *req);
int wstep_exec(struct omadm_certstore *cs, char **segs, size_t n);
/* Whether My/WSTEP exists (for the listing of My). */
bool wstep_exists(struct omadm_certstore *cs);

/* Transaction: validate() checks RetryInterval <= RenewPeriod once the
 * whole Atomic has set them (0, or the status refusing it); end() forgets
 * what the transaction touched. */
int wstep_validate(struct omadm_certstore *cs);
void wstep_end(struct omadm_certstore *cs);

/* Background work (wstep_run.c): a renewal that falls due. */
int wstep_step(struct omadm_certstore *cs, int64_t now, int64_t *next_due);
int wstep_alerts(struct omadm_certstore *cs, omadm_alert_fn fn, void *ctx);
int wstep_alert_delivered(struct omadm_certstore *cs, const char *id);
int wstep_check_record(store_t *s, void (*fn)(void *ctx, const char *problem), void *ctx,
                       unsigned *problems);

/* The length of a renewal "day" in seconds: 1440 minutes of
 * host.minute_seconds. */
int64_t wstep_day(const struct omadm_certstore *cs);

#endif
