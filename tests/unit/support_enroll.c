/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_enroll.c - enrollments for the enrollment suites (see
 * support_enroll.h).
 */
#include "support_enroll.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support_dir.h"

int tenr_setup(void **state)
{
    tenr_fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/%s.XXXXXX", program_invocation_short_name);
    assert_non_null(mkdtemp(f->dir));
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, &why), OMADM_OK);
    f->s = f->cs->store;
    *state = f;
    return 0;
}

int tenr_teardown(void **state)
{
    tenr_fx_t *f = *state;
    omadm_certstore_close(f->cs);
    tdir_rm(f->dir);
    free(f);
    return 0;
}

void tenr_param(const omadm_platform_t *p, enrollment_t *e, enr_param_t k, const char *v)
{
    assert_int_equal(enr_set(p, &e->p[k].name, enr_params[k].name), 0);
    assert_int_equal(enr_set(p, &e->p[k].format, enr_params[k].is_int ? "int" : "chr"), 0);
    assert_int_equal(enr_set(p, &e->p[k].value, v), 0);
    assert_int_equal(enr_set(p, &e->snap[k], v), 0);
}

void tenr_valid(const omadm_platform_t *p, enrollment_t *e, enr_ns_t ns, const char *id,
                const char *url)
{
    memset(e, 0, sizeof *e);
    e->ns = ns;
    assert_int_equal(enr_set(p, &e->id, id), 0);
    tenr_param(p, e, P_SERVER_URL, url);
    tenr_param(p, e, P_CHALLENGE, "s3cr3t");
    tenr_param(p, e, P_KEY_USAGE, "160");
    tenr_param(p, e, P_SUBJECT, "CN=Test");
    tenr_param(p, e, P_KEY_LENGTH, "1024");
    tenr_param(p, e, P_HASH, "SHA-2");
    tenr_param(p, e, P_CA_THUMB, "ADC1911E726D0E000C28A1FD4F864417303F3208");
}

void tenr_save(store_t *s, const enrollment_t *e)
{
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(enr_save(s, e), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_flush(s), 0);
}
