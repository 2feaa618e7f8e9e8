/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_enroll.c - csp/enroll*.c below the SyncML level, on a real store in
 * a fresh /tmp directory:
 *
 *   - the enrollment record: every field round-trips through the store,
 *     including values with spaces, backslashes, newlines, UTF-8 and empty
 *     strings; each truncation and a set of damaged records load as errors
 *     (never a crash, never a half-filled record);
 *   - record names: case-insensitive, namespaces apart, valid state names;
 *   - enr_check: required parameters, defaults, clamps, and each refusal
 *     with its ErrorCode;
 *   - the step without an HTTP client: due work stays due and is reported;
 *     with an HTTP hook that never connects: retries every RetryDelay and
 *     fails with ERROR_INTERNET_CANNOT_CONNECT after RetryCount retries
 *     (the step's clock is the caller's, so no test waits);
 *   - alerts: listed once finished, acknowledged once.
 * The live SCEP exchanges are in tests/scripts/test-scep-enroll.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform.h"
#include "support_enroll.h"

/* The library's default platform table (libc allocator, time(), OpenSSL's
 * RNG), for the calls that take one. */
static omadm_platform_t P;

static void test_record_round_trip(void **state)
{
    tenr_fx_t *f = *state;
    enrollment_t e, got;
    tenr_valid(&P, &e, ENR_CCI_USER, "Odd Id \\ with\nnewline \xc3\xa9", "http://a/b;https://c/d");
    tenr_param(&P, &e, P_SAN, "");
    tenr_param(&P, &e, P_SUBJECT, "CN=Anna Lee,O=\"A, B\"");
    assert_int_equal(enr_set(&P, &e.p[P_HASH].name, "HashAlgrithm"), 0);
    e.phase = PH_PENDING;
    e.status = ST_PENDING;
    e.error = INT32_MIN;
    e.gen = 7;
    e.next_due = -5;
    e.tries = 3;
    assert_int_equal(enr_set(&P, &e.exec_uri, "./User/Vendor/MSFT/ClientCertificateInstall/SCEP/x"), 0);
    assert_int_equal(enr_set(&P, &e.server, "https://srv/ a"), 0);
    assert_int_equal(enr_set(&P, &e.key, "S0VZ"), 0);
    assert_int_equal(enr_set(&P, &e.txid, "ABC"), 0);
    e.cipher = 1;
    e.digest = 2;
    e.post = true;
    e.alert = true;
    e.alert_data = -2147012867;
    e.alert_gen = 7;
    tenr_save(f->s, &e);
    assert_int_equal(enr_load(f->s, ENR_CCI_USER, "ODD ID \\ WITH\nNEWLINE \xc3\xa9", &got), 0);
    assert_string_equal(got.id, e.id);
    for (int i = 0; i < P__COUNT; i++) {
        if (!e.p[i].name) {
            assert_null(got.p[i].name);
            continue;
        }
        assert_string_equal(got.p[i].name, e.p[i].name);
        assert_string_equal(got.p[i].format, e.p[i].format);
        assert_string_equal(got.p[i].value, e.p[i].value);
        assert_string_equal(got.snap[i], e.snap[i]);
    }
    assert_int_equal(got.phase, PH_PENDING);
    assert_int_equal(got.status, ST_PENDING);
    assert_int_equal(got.error, INT32_MIN);
    assert_int_equal(got.gen, 7);
    assert_int_equal(got.next_due, -5);
    assert_int_equal(got.tries, 3);
    assert_string_equal(got.exec_uri, e.exec_uri);
    assert_string_equal(got.server, e.server);
    assert_string_equal(got.key, "S0VZ");
    assert_string_equal(got.txid, "ABC");
    assert_null(got.csr);
    assert_true(got.post);
    assert_int_equal(got.cipher, 1);
    assert_int_equal(got.digest, 2);
    assert_true(got.alert);
    assert_int_equal(got.alert_data, -2147012867);
    assert_int_equal(got.alert_gen, 7);
    /* another namespace does not see it */
    enrollment_t other;
    assert_int_equal(enr_load(f->s, ENR_CCI_DEVICE, e.id, &other), 1);
    enr_free(&P, &got);
    enr_free(&P, &e);
}

static void test_record_names(void **state)
{
    (void)state;
    char a[96], b[96], c[96];
    assert_int_equal(enr_record_name(ENR_CS, "CertSCEP1", a, sizeof a), 0);
    assert_int_equal(enr_record_name(ENR_CS, "certscep1", b, sizeof b), 0);
    assert_int_equal(enr_record_name(ENR_CCI_DEVICE, "CertSCEP1", c, sizeof c), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strncmp(a, "scep-cs-", 8), 0);
    assert_int_equal(strlen(a), 8 + 32);
    assert_int_equal(strlen(a) + 1, ENR_RECORD_NAME_SIZE);
    for (const char *p = a; *p; p++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789-", *p));
    /* no name rather than a short one: the buffer, the namespace, the id */
    assert_int_equal(enr_record_name(ENR_CS, "CertSCEP1", b, ENR_RECORD_NAME_SIZE - 1), -1);
    assert_string_equal(b, "");
    assert_int_equal(enr_record_name((enr_ns_t)3, "CertSCEP1", b, sizeof b), -1);
    assert_string_equal(b, "");
    assert_int_equal(enr_record_name(ENR_CS, NULL, b, sizeof b), -1);
    assert_int_equal(enr_record_name(ENR_CS, "CertSCEP1", b, ENR_RECORD_NAME_SIZE), 0);
    assert_string_equal(a, b);
}

/* Every truncation and a few damaged variants of a record load as errors. */
static void test_record_damage(void **state)
{
    tenr_fx_t *f = *state;
    enrollment_t e, got;
    tenr_valid(&P, &e, ENR_CS, "dmg", "http://a/");
    e.phase = PH_START;
    tenr_save(f->s, &e);
    char name[96], *text = NULL;
    size_t len = 0;
    assert_int_equal(enr_record_name(ENR_CS, "dmg", name, sizeof name), 0);
    assert_int_equal(store_get_state(f->s, name, &text, &len), 0);
    assert_true(len > 100);
    for (size_t cut = 0; cut < len; cut++) {
        /* a record that lost its end line is never taken for a whole one */
        if (cut == len - 1) /* only the last newline gone: still whole */
            continue;
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_put_state(f->s, name, text, cut), 0);
        if (enr_load(f->s, ENR_CS, "dmg", &got) != -1)
            fail_msg("record cut at %zu of %zu loaded", cut, len);
        store_rollback(f->s);
    }
    static const char *const bad[] = {
        "omadm-scep\nid x\nend\n",
        "omadm-scep 1\nid dmg\nns 7\nend\n",
        "omadm-scep 1\nid dmg\np 99 a chr b\nend\n",
        "omadm-scep 1\nid dmg\np 1 a chr\nend\n",
        "omadm-scep 1\nid dmg\nphase 9\nend\n",
        "omadm-scep 1\nid dmg\nerror 99999999999\nend\n",
        "omadm-scep 1\nid dmg\nkey a\\x0\nend\n",
        "omadm-scep 1\nid dmg\nkey a\\x00b\nend\n",
        "omadm-scep 1\nid dmg\nkey a\\zz\nend\n",
        "omadm-scep 1\nid dmg\nunknown 1\nend\n",
        "omadm-scep 1\nend\n",
        "omadm-scep 1\nid other\nend\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_put_state(f->s, name, bad[i], strlen(bad[i])), 0);
        if (enr_load(f->s, ENR_CS, "dmg", &got) != -1)
            fail_msg("damaged record %zu loaded", i);
        store_rollback(f->s);
    }
    /* a later version's record is not damaged: -3, never written over */
    const char *newer = "omadm-scep 2\nid dmg\nwhatever comes later\n";
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, name, newer, strlen(newer)), 0);
    assert_int_equal(enr_load(f->s, ENR_CS, "dmg", &got), -3);
    store_rollback(f->s);
    free(text);
    enr_free(&P, &e);
}

static void want_check(enrollment_t *e, int32_t want)
{
    enr_job_t job;
    const char *why = NULL;
    int32_t got = enr_check(e, &job, &why);
    if (got != want)
        fail_msg("enr_check: got 0x%08x (%s), want 0x%08x", (unsigned)got, why ? why : "-",
                 (unsigned)want);
    if (want)
        assert_non_null(why);
}

static void test_check(void **state)
{
    (void)state;
    enrollment_t e;
    enr_job_t job;
    const char *why = NULL;
    tenr_valid(&P, &e, ENR_CS, "c", "http://a/");
    assert_int_equal(enr_check(&e, &job, &why), 0);
    assert_int_equal(job.retry_count, 3);
    assert_int_equal(job.retry_delay, 5);
    assert_string_equal(job.valid_period, "Days");
    assert_int_equal(job.valid_units, 0);
    assert_int_equal(job.key_protection, 3); /* the default: software */
    assert_string_equal(job.eku, "");
    assert_int_equal(job.key_usage, 160);
    assert_int_equal(job.key_length, 1024);

    static const enr_param_t required[] = {P_SERVER_URL, P_CHALLENGE, P_KEY_USAGE, P_SUBJECT,
                                           P_KEY_LENGTH, P_HASH, P_CA_THUMB};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char *keep = e.snap[required[i]];
        e.snap[required[i]] = NULL;
        want_check(&e, EC_MISSING);
        e.snap[required[i]] = keep;
    }
    static const struct {
        enr_param_t p;
        const char *value;
        int32_t ec;
    } cases[] = {
        {P_KEY_USAGE, "64", EC_INVALID_ARG},      {P_KEY_USAGE, "0x80", EC_INVALID_ARG},
        {P_KEY_USAGE, "65536", EC_INVALID_ARG},   {P_KEY_USAGE, "128", 0},
        {P_KEY_USAGE, "32", 0},                   {P_KEY_USAGE, " 32800 ", 0},
        {P_KEY_LENGTH, "999", EC_INVALID_ARG},    {P_KEY_LENGTH, "4096", 0},
        {P_HASH, "MD5", EC_INVALID_ARG},          {P_HASH, "sha-1+SHA-2", 0},
        {P_HASH, "", EC_INVALID_ARG},             {P_CA_THUMB, "1234", EC_INVALID_ARG},
        {P_CA_THUMB, "ad:c1:91:1e:72:6d:0e:00:0c:28:a1:fd:4f:86:44:17:30:3f:32:08", 0},
        {P_SERVER_URL, "ftp://x/", EC_INVALID_ARG},
        {P_SERVER_URL, "http://x/;file:///etc", EC_INVALID_ARG},
        {P_SERVER_URL, " http://x/ ; https://y/ ", 0},
        {P_SERVER_URL, ";;", EC_INVALID_ARG},     {P_SUBJECT, " ", EC_INVALID_ARG},
        {P_VALID_PERIOD, "Weeks", EC_INVALID_ARG}, {P_VALID_PERIOD, "years", 0},
        {P_VALID_UNITS, "-1", EC_INVALID_ARG},    {P_RETRY_COUNT, "-1", EC_INVALID_ARG},
        {P_RETRY_DELAY, "-1", EC_INVALID_ARG},    {P_KEY_PROTECTION, "1", 0},
        {P_KEY_PROTECTION, "4", EC_NOT_SUPPORTED}, {P_KEY_PROTECTION, "5", EC_INVALID_ARG},
        {P_KEY_PROTECTION, "2", 0},               {P_ATTEST, "2", EC_NO_TPM},
        {P_ATTEST, "3", EC_INVALID_ARG},          {P_ATTEST, "1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *keep = e.snap[cases[i].p];
        e.snap[cases[i].p] = (char *)cases[i].value;
        want_check(&e, cases[i].ec);
        e.snap[cases[i].p] = keep;
    }
    /* clamps */
    char *keep_c = e.snap[P_RETRY_COUNT], *keep_d = e.snap[P_RETRY_DELAY];
    e.snap[P_RETRY_COUNT] = "31";
    e.snap[P_RETRY_DELAY] = "0";
    assert_int_equal(enr_check(&e, &job, &why), 0);
    assert_int_equal(job.retry_count, 30);
    assert_int_equal(job.retry_delay, 1);
    e.snap[P_RETRY_COUNT] = "0";
    e.snap[P_RETRY_DELAY] = "4294967295";
    assert_int_equal(enr_check(&e, &job, &why), 0);
    assert_int_equal(job.retry_count, 0);
    assert_true(job.retry_delay == 4294967295u);
    e.snap[P_RETRY_COUNT] = keep_c;
    e.snap[P_RETRY_DELAY] = keep_d;
    enr_free(&P, &e);
}

/* ---- the step, with a hook that never connects ---- */

typedef struct fake_http {
    unsigned calls;
} fake_http_t;

static omadm_http_result_t refuse(void *ctx, const omadm_http_req_t *req, omadm_http_resp_t *resp,
                                  char *err, size_t err_size)
{
    (void)req;
    (void)resp;
    ((fake_http_t *)ctx)->calls++;
    snprintf(err, err_size, "connection refused");
    return OMADM_HTTP_CONNECT;
}

static void no_release(void *ctx, omadm_http_resp_t *resp)
{
    (void)ctx;
    (void)resp;
}

static void test_step_retries_then_fails(void **state)
{
    tenr_fx_t *f = *state;
    enrollment_t e, got;
    int64_t next = 0;
    tenr_valid(&P, &e, ENR_CS, "down", "http://127.0.0.1:9/a;http://127.0.0.1:9/b");
    tenr_param(&P, &e, P_RETRY_COUNT, "2");
    tenr_param(&P, &e, P_RETRY_DELAY, "3");
    e.phase = PH_START;
    e.status = ST_UNKNOWN;
    e.gen = 1;
    assert_int_equal(enr_set(&P, &e.exec_uri, "./Vendor/MSFT/CertificateStore/My/SCEP/down/Install/Enroll"), 0);
    tenr_save(f->s, &e);

    /* without an HTTP client the work stays due and the step says so */
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    assert_int_not_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(next, 0);

    fake_http_t fh = {0};
    omadm_http_t http = {&fh, refuse, no_release};
    omadm_certstore_host_t host = {.http = &http, .minute_seconds = 10};
    omadm_certstore_set_host(f->cs, &host);

    /* round 1 at t=1000: both URLs refused, retry after 3 x 10 s */
    assert_int_equal(enroll_step(cs, 1000, &next), 0);
    assert_int_equal(fh.calls, 2);
    assert_int_equal(next, 1030);
    assert_int_equal(enr_load(f->s, ENR_CS, "down", &got), 0);
    assert_int_equal(got.status, ST_UNKNOWN);
    assert_int_equal(got.tries, 1);
    assert_non_null(got.key); /* the key made meanwhile is kept for the next round */
    char *key1 = strdup(got.key);
    enr_free(&P, &got);
    /* not due yet: nothing happens */
    assert_int_equal(enroll_step(cs, 1029, &next), 0);
    assert_int_equal(fh.calls, 2);
    assert_int_equal(next, 1030);
    /* round 2: same key */
    assert_int_equal(enroll_step(cs, 1030, &next), 0);
    assert_int_equal(fh.calls, 4);
    assert_int_equal(enr_load(f->s, ENR_CS, "down", &got), 0);
    assert_string_equal(got.key, key1);
    assert_int_equal(got.tries, 2);
    assert_string_equal(got.snap[P_CHALLENGE], "s3cr3t"); /* not answered yet: still needed */
    enr_free(&P, &got);
    /* round 3 is the last retry: failed */
    assert_int_equal(enroll_step(cs, 1060, &next), 0);
    assert_int_equal(fh.calls, 6);
    assert_int_equal(next, OMADM_NEVER);
    assert_int_equal(enr_load(f->s, ENR_CS, "down", &got), 0);
    assert_int_equal(got.phase, PH_DONE);
    assert_int_equal(got.status, ST_FAILED);
    assert_int_equal(got.error, EC_CONNECT);
    assert_null(got.key); /* the transaction material is gone */
    assert_string_equal(got.snap[P_CHALLENGE], ""); /* and the Challenge with it */
    assert_true(got.alert);
    assert_int_equal(got.alert_data, EC_CONNECT);
    enr_free(&P, &got);
    free(key1);
    enr_free(&P, &e);
}

typedef struct seen {
    unsigned n;
    char id[128];
    char source[128];
    char data[16];
} seen_t;

static int see(void *ctx, const omadm_generic_alert_t *a)
{
    seen_t *s = ctx;
    s->n++;
    snprintf(s->id, sizeof s->id, "%s", a->id);
    snprintf(s->source, sizeof s->source, "%s", a->source);
    snprintf(s->data, sizeof s->data, "%s", a->data);
    assert_string_equal(a->type, "com.microsoft:mdm.SCEPcertinstall.result");
    assert_string_equal(a->format, "int");
    return 0;
}

static void test_alerts(void **state)
{
    tenr_fx_t *f = *state;
    struct omadm_certstore *cs = (struct omadm_certstore *)f->cs;
    enrollment_t e;
    tenr_valid(&P, &e, ENR_CS, "al", "http://a/");
    e.phase = PH_DONE;
    e.status = ST_FAILED;
    e.gen = 2;
    e.alert = true;
    e.alert_data = EC_UNTRUSTED_CA;
    e.alert_gen = 2;
    assert_int_equal(enr_set(&P, &e.exec_uri, "./Vendor/MSFT/CertificateStore/My/SCEP/al/Install/Enroll"), 0);
    tenr_save(f->s, &e);
    seen_t s = {0};
    assert_int_equal(enroll_alerts(cs, see, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.source, e.exec_uri);
    assert_string_equal(s.data, "-2146762487");
    assert_int_equal(enroll_alert_delivered(cs, "scep-cs-nope:2"), 1);
    assert_int_equal(enroll_alert_delivered(cs, "other"), 1);
    char stale[160];
    snprintf(stale, sizeof stale, "%.*s:1", (int)(strrchr(s.id, ':') - s.id), s.id);
    assert_int_equal(enroll_alert_delivered(cs, stale), 1); /* an older run's alert */
    assert_int_equal(enroll_alert_delivered(cs, s.id), 0);
    assert_int_equal(enroll_alert_delivered(cs, s.id), 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(enroll_alerts(cs, see, &s), 0);
    assert_int_equal(s.n, 0);
    enr_free(&P, &e);
}

int main(void)
{
    plat_init(&P, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_round_trip, tenr_setup, tenr_teardown),
        cmocka_unit_test(test_record_names),
        cmocka_unit_test_setup_teardown(test_record_damage, tenr_setup, tenr_teardown),
        cmocka_unit_test(test_check),
        cmocka_unit_test_setup_teardown(test_step_retries_then_fails, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_alerts, tenr_setup, tenr_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
