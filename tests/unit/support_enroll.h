/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_enroll.h - enrollments for the suites of csp/enroll*.c: a
 * certificate store in a fresh /tmp directory, and enrollment records to
 * save into a store.
 */
#ifndef SUPPORT_ENROLL_H
#define SUPPORT_ENROLL_H

#include "csp/enroll.h"

/* ---- the fixture ---- */

typedef struct tenr_fx {
    char dir[64];
    omadm_certstore_t *cs;
    store_t *s;            /* cs's store (certstore_internal.h) */
} tenr_fx_t;

/* cmocka setup: a certificate store (on the default platform table) in a
 * new /tmp directory named after the program; teardown: closed, removed. */
int tenr_setup(void **state);
int tenr_teardown(void **state);

/* ---- enrollments ---- */

/* Parameter k of e (memory from p): named and typed as the CSP names it,
 * value v, and the same in the snapshot Exec takes. */
void tenr_param(const omadm_platform_t *p, enrollment_t *e, enr_param_t k, const char *v);

/* A complete, valid enrollment snapshot in namespace ns: id, ServerURL url,
 * Challenge "s3cr3t", KeyUsage 160, SubjectName "CN=Test", KeyLength 1024,
 * HashAlgorithm SHA-2 and a CA thumbprint; nothing else set. */
void tenr_valid(const omadm_platform_t *p, enrollment_t *e, enr_ns_t ns, const char *id,
                const char *url);

/* e saved into s in a batch of its own, flushed. */
void tenr_save(store_t *s, const enrollment_t *e);

#endif
