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
    struct pfx_mem *pfx;        /* PFX passwords and staged blobs (pfx.c): memory only */
    bool wstep_touched;         /* the transaction set a My/WSTEP schedule node (wstep.c) */
    char *tpm_tcti;             /* the TPM's TCTI (omadm_certstore_set_tpm), NULL: no TPM */
};

/* ./Vendor/omadm/CertificateKeys (keyinfo.c), registered with the
 * certificate CSPs on the same store. */
extern const omadm_csp_t cs_keyinfo_csp;

/* The private key soft (e.g. from PKCS12_parse; borrowed: the caller
 * frees and so wipes it afterwards) as the store keeps it (store_put_key),
 * in the key store key_protection chooses: 1 the TPM only, 2 the TPM else
 * the software key (logged), 3 software (docs/keys.md).  *pem (from
 * cs->plat; wipe it, then plat_free) is a "TSS2 PRIVATE KEY" (the key
 * imported into the TPM) or PKCS#8 "PRIVATE KEY".  0, or an ErrorCode
 * (EC_NO_TPM, EC_NOT_SUPPORTED for a key the TPM cannot take, EC_NO_MEMORY,
 * EC_INVALID_ARG, EC_FAIL) with *why. */
struct evp_pkey_st;
int32_t cs_key_for_store(struct omadm_certstore *cs, const struct evp_pkey_st *soft,
                         unsigned key_protection, char **pem, const char **why);

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
