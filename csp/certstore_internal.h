/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certstore_internal.h - what the certificate CSP files share: the store
 * object, and the SCEP enrollment nodes (enroll.c) and their background
 * work (enroll_run.c) that certificatestore.c routes to.
 */
#ifndef OMADM_CERTSTORE_INTERNAL_H
#define OMADM_CERTSTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm_certstore.h"
#include "store/store.h"

struct omadm_certstore {
    omadm_platform_t plat;      /* the host's table, defaults filled in */
    store_t *store;
    omadm_certstore_host_t host;
    omadm_http_t http;          /* copy of *host.http */
    bool has_http;
    bool in_http;               /* inside http.request(): the host may unlock the store */
    unsigned unlocks;           /* omadm_certstore_unlock calls so far */
    char *tpm_tcti;             /* the TPM's TCTI (omadm_certstore_set_tpm), NULL: no TPM */
};

/* ./Vendor/omadm/CertificateKeys (keyinfo.c), registered with the
 * certificate CSPs on the same store. */
extern const omadm_csp_t cs_keyinfo_csp;

void cs_log(const struct omadm_certstore *cs, omadm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The three SCEP enrollment namespaces.  ./Vendor/MSFT/CertificateStore
 * and ./Device/... are one tree; ClientCertificateInstall has a device and
 * a user tree.  Each keeps its own {UniqueID}s. */
typedef enum { ENR_CS = 0, ENR_CCI_DEVICE = 1, ENR_CCI_USER = 2 } enr_ns_t;

/* Node handlers for <SCEP node>/<segs...> (segs below the SCEP node, n may
 * be 0).  Same return conventions as the omadm_csp_t handlers. */
int enroll_get(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
               omadm_csp_out_t *out);
int enroll_list(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                omadm_csp_out_t *out);
int enroll_add(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
               const omadm_value_t *v);
int enroll_replace(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                   const omadm_value_t *v);
int enroll_del(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n);
int enroll_exec(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                const omadm_csp_req_t *req);

/* Background work and alerts (omadm_csp_t step / alerts / alert_delivered). */
int enroll_step(struct omadm_certstore *cs, int64_t now, int64_t *next_due);
int enroll_alerts(struct omadm_certstore *cs, omadm_alert_fn fn, void *ctx);
int enroll_alert_delivered(struct omadm_certstore *cs, const char *id);

#endif
