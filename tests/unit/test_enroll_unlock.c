/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_enroll_unlock.c - the store unlocked while the host's HTTP hook
 * waits on the network (omadm_certstore_unlock / _relock), on a real store
 * in a fresh /tmp directory.  The hooks here play the other process
 * themselves: while the store is unlocked they take its lock file (as
 * another process's open would), delete or rewrite the enrollment's record
 * file, and let go again.
 *
 *   - unlock only from inside request(); relock only when unlocked;
 *   - while unlocked another process can take store/lock;
 *   - the record deleted meanwhile: the answer (here a failed connection,
 *     which would count a retry) is dropped and the record is not written
 *     back; rewritten meanwhile: the other process's text stands;
 *   - unchanged meanwhile: the step goes on as if the lock had been held;
 *   - OMADM_HTTP_ABORTED: the step ends at once, nothing written, work
 *     still due (next_due = now); the same when request() returns with the
 *     store still unlocked, which stays usable after a relock.
 * The end-to-end cases (dmclient run, a concurrent dmclient process, a real
 * CA) are in tests/scripts/test-cli-lock.sh.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform.h"
#include "support_enroll.h"

static omadm_platform_t P;

/* An executed enrollment, due at once, that retries retry_count times. */
static void due(enrollment_t *e, const char *id, const char *retry_count)
{
    tenr_valid(&P, e, ENR_CS, id, "http://127.0.0.1:9/scep");
    tenr_param(&P, e, P_RETRY_COUNT, retry_count);
    tenr_param(&P, e, P_RETRY_DELAY, "1");
    e->phase = PH_START;
    e->status = ST_UNKNOWN;
    e->gen = 1;
    assert_int_equal(enr_set(&P, &e->exec_uri, "./Vendor/MSFT/CertificateStore/My/SCEP/x/Install/Enroll"),
                     0);
}

/* The record file of enrollment id, and what it holds ("" when absent). */
static void record_path(tenr_fx_t *f, const char *id, char *p, size_t size)
{
    char name[96];
    enr_record_name(ENR_CS, id, name, sizeof name);
    snprintf(p, size, "%s/state/%s", f->dir, name);
}

static char *slurp(const char *p)
{
    FILE *fp = fopen(p, "rb");
    if (!fp)
        return strdup("");
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static void spill(const char *p, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.other", p);
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(rename(tmp, p), 0);
}

/* ---- the hooks ---- */

typedef enum { H_NOTHING, H_DELETE, H_REWRITE, H_ABORT, H_NO_RELOCK } what_t;

typedef struct hook {
    tenr_fx_t *f;
    what_t what;
    char record[512];      /* its file */
    const char *rewrite;   /* H_REWRITE: the other process's text */
    unsigned calls;
    int other_locked;      /* the other process got store/lock meanwhile */
    omadm_error_t unlock_rc, relock_rc;
} hook_t;

/* What another process does with the store while this one waits. */
static void other_process(hook_t *h)
{
    char p[256];
    snprintf(p, sizeof p, "%s/lock", h->f->dir);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    h->other_locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (h->what == H_DELETE)
        unlink(h->record);
    else if (h->what == H_REWRITE)
        spill(h->record, h->rewrite);
    close(fd);
}

static omadm_http_result_t request(void *ctx, const omadm_http_req_t *req,
                                   omadm_http_resp_t *resp, char *err, size_t err_size)
{
    (void)req;
    (void)resp;
    hook_t *h = ctx;
    h->calls++;
    snprintf(err, err_size, "connection refused");
    if (h->what == H_ABORT) {
        snprintf(err, err_size, "stopped");
        return OMADM_HTTP_ABORTED;
    }
    h->unlock_rc = omadm_certstore_unlock(h->f->cs);
    if (h->unlock_rc == OMADM_OK) {
        /* a second unlock inside the same exchange is refused */
        assert_int_equal(omadm_certstore_unlock(h->f->cs), OMADM_E_DENIED);
        other_process(h);
        if (h->what != H_NO_RELOCK)
            h->relock_rc = omadm_certstore_relock(h->f->cs);
    }
    return OMADM_HTTP_CONNECT;
}

static void no_release(void *ctx, omadm_http_resp_t *resp)
{
    (void)ctx;
    (void)resp;
}

static void use_hook(tenr_fx_t *f, hook_t *h, what_t what, const char *id)
{
    memset(h, 0, sizeof *h);
    h->f = f;
    h->what = what;
    record_path(f, id, h->record, sizeof h->record);
    static omadm_http_t http;
    http = (omadm_http_t){h, request, no_release};
    omadm_certstore_host_t host = {.http = &http, .minute_seconds = 10};
    omadm_certstore_set_host(f->cs, &host);
}

/* ---- the tests ---- */

static void test_unlock_only_in_the_hook(void **state)
{
    tenr_fx_t *f = *state;
    assert_int_equal(omadm_certstore_unlock(NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_relock(NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_certstore_unlock(f->cs), OMADM_E_DENIED);
    assert_int_equal(omadm_certstore_relock(f->cs), OMADM_E_INVALID_ARG); /* not unlocked */
}

static void test_unchanged_goes_on(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e, got;
    int64_t next = 0;
    due(&e, "same", "3");
    tenr_save(f->s, &e);
    hook_t h;
    use_hook(f, &h, H_NOTHING, "same");
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.unlock_rc, OMADM_OK);
    assert_int_equal(h.relock_rc, OMADM_OK);
    assert_true(h.other_locked);
    /* the refused connection counts as usual */
    assert_int_equal(next, 1010);
    assert_int_equal(enr_load(f->s, ENR_CS, "same", &got), 0);
    assert_int_equal(got.tries, 1);
    assert_int_equal(got.status, ST_UNKNOWN);
    enr_free(&P, &got);
    enr_free(&P, &e);
}

static void test_deleted_meanwhile_stays_deleted(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e, got;
    int64_t next = 0;
    /* RetryCount 0: without the check the refused connection would end it
     * (Status 16, a result alert) and write the record back */
    due(&e, "gone", "0");
    tenr_save(f->s, &e);
    hook_t h;
    use_hook(f, &h, H_DELETE, "gone");
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(h.calls, 1);
    assert_true(h.other_locked);
    assert_int_equal(h.relock_rc, OMADM_OK);
    assert_int_equal(access(h.record, F_OK), -1);
    assert_int_equal(enr_load(f->s, ENR_CS, "gone", &got), 1);
    assert_int_equal(next, OMADM_NEVER);
    assert_int_equal(omadm_certstore_check(f->cs, 0, NULL, NULL, NULL), OMADM_OK);
    enr_free(&P, &e);
}

static void test_rewritten_meanwhile_stands(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e, other, got;
    int64_t next = 0;
    hook_t h;
    /* the other process's text: the same enrollment, RetryCount 7, due later */
    due(&other, "rw", "7");
    other.next_due = 5000;
    tenr_save(f->s, &other);
    record_path(f, "rw", h.record, sizeof h.record);
    char *text = slurp(h.record);
    due(&e, "rw", "0");
    tenr_save(f->s, &e);
    use_hook(f, &h, H_REWRITE, "rw");
    h.rewrite = text;
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(h.calls, 1);
    char *now = slurp(h.record);
    assert_string_equal(now, text);
    /* its due time is what the other process wrote */
    assert_int_equal(next, 5000);
    assert_int_equal(enr_load(f->s, ENR_CS, "rw", &got), 0);
    assert_string_equal(got.snap[P_RETRY_COUNT], "7");
    assert_int_equal(got.tries, 0);
    enr_free(&P, &got);
    free(now);
    free(text);
    enr_free(&P, &other);
    enr_free(&P, &e);
}

static void test_aborted_leaves_all(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e, e2;
    int64_t next = 0;
    due(&e, "a1", "0");
    tenr_save(f->s, &e);
    due(&e2, "a2", "0");
    tenr_save(f->s, &e2);
    hook_t h;
    use_hook(f, &h, H_ABORT, "a1");
    char p1[512], p2[512];
    record_path(f, "a1", p1, sizeof p1);
    record_path(f, "a2", p2, sizeof p2);
    char *before1 = slurp(p1), *before2 = slurp(p2);
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    /* the first exchange stopped the whole step: the second enrollment was
     * not tried, and the work is still due */
    assert_int_equal(h.calls, 1);
    assert_int_equal(next, 1000);
    char *after1 = slurp(p1), *after2 = slurp(p2);
    assert_string_equal(after1, before1);
    assert_string_equal(after2, before2);
    free(before1);
    free(before2);
    free(after1);
    free(after2);
    enr_free(&P, &e);
    enr_free(&P, &e2);
}

static void test_not_relocked_ends_the_step(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e, got;
    int64_t next = 0;
    due(&e, "nr", "0");
    tenr_save(f->s, &e);
    hook_t h;
    use_hook(f, &h, H_NO_RELOCK, "nr");
    char *before = slurp(h.record);
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(next, 1000);
    /* nothing can be written while unlocked */
    assert_int_not_equal(store_begin(f->s), 0);
    assert_int_equal(omadm_certstore_relock(f->cs), OMADM_OK);
    char *after = slurp(h.record);
    assert_string_equal(after, before);
    assert_int_equal(enr_load(f->s, ENR_CS, "nr", &got), 0);
    assert_int_equal(got.tries, 0);
    enr_free(&P, &got);
    free(before);
    free(after);
    enr_free(&P, &e);
}

int main(void)
{
    plat_init(&P, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unlock_only_in_the_hook, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_goes_on, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_deleted_meanwhile_stays_deleted, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_meanwhile_stands, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_aborted_leaves_all, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_not_relocked_ends_the_step, tenr_setup, tenr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
