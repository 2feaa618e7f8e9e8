/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_wstep.c - CertificateStore/My/WSTEP (csp/wstep.c) through an engine
 * and a store in /tmp: the identity (omadm_certstore_wstep_identity), the
 * nodes' defaults, aliases, ranges and Atomic rules, their persistence;
 * and the answers of a renewal (csp/wstep_msg.c): faults to HRESULTs,
 * redirects, malformed answers.  (tests/scripts/test-wstep-renew.sh runs
 * whole renewals against tests/wstep/wstep_peer.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csp/wstep.h"
#include "csp/wstep_msg.h"
#include "platform.h"
#include "store/cert.h"
#include "support_dm.h"
#include "support_enroll.h"
#include "support_pki.h"

#define W "./Vendor/MSFT/CertificateStore/My/WSTEP"
#define R W "/Renew"

/* The test PKI's leaf (and its key, unless no_key) into My/System. */
static void put_leaf(tenr_fx_t *f, bool with_key, char thumb[41])
{
    size_t der_len = 0, key_len = 0;
    uint8_t *der = tpki_read("leaf.der", &der_len);
    uint8_t *key = tpki_read("leaf.key", &key_len);
    assert_non_null(der);
    assert_non_null(key);
    char *pem = calloc(1, key_len + 1);
    memcpy(pem, key, key_len);
    store_rec_t rec = {0};
    assert_int_equal(cert_thumbprint(der, der_len, rec.thumb), 0);
    rec.name = rec.thumb;
    rec.server = "";
    rec.der = der;
    rec.der_len = der_len;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "my-system", &rec), 0);
    if (with_key)
        assert_int_equal(store_put_key(f->s, "my-system", rec.thumb, pem), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    memcpy(thumb, rec.thumb, 41);
    free(pem);
    free(key);
    free(der);
}

static void start(t_env_t *e, tenr_fx_t *f)
{
    t_env_init(e);
    t_env_start(e);
    assert_int_equal(omadm_certstore_register(e->dm, f->cs), OMADM_OK);
}

static void want_value(t_env_t *e, const char *uri, const char *want)
{
    char *v = t_read(e, uri, NULL, NULL);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static char *adopted(tenr_fx_t *f, char thumb[41])
{
    char cur[41] = "";
    put_leaf(f, true, thumb);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_OK);
    assert_string_equal(cur, thumb);
    return thumb;
}

/* No identity: no My/WSTEP; the identity must be in My/System with a key. */
static void test_no_identity(void **state)
{
    tenr_fx_t *f = *state;
    t_env_t e;
    char thumb[41], cur[41] = "unchanged";
    start(&e, f);
    assert_int_equal(t_send(&e, true, T_GET("2", W) T_GET("3", R "/RenewPeriod")
                                          T_REPLACE("4", R "/ServerURL", "chr", "https://x.example/")),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 404);
    assert_int_equal(t_code(&e.reply, "3"), 404);
    assert_int_equal(t_code(&e.reply, "4"), 404);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, "0123456789012345678901234567890123456789",
                                                    cur),
                     OMADM_E_NOT_FOUND);
    put_leaf(f, false, thumb);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_E_NO_KEY);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, "12:34", cur), OMADM_E_INVALID_ARG);
    assert_string_equal(cur, "unchanged");
    assert_int_equal(t_send(&e, true, T_GET("2", W)), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 404);
    t_env_done(&e);
}

/* The defaults and the aliases once an identity is there. */
static void test_defaults_and_aliases(void **state)
{
    tenr_fx_t *f = *state;
    t_env_t e;
    char thumb[41];
    adopted(f, thumb);
    start(&e, f);
    want_value(&e, W "/CertThumprint", thumb);
    want_value(&e, W "/CertThumbprint", thumb);
    want_value(&e, R "/RenewPeriod", "42");
    want_value(&e, R "/RenewalPeriod", "42");
    want_value(&e, R "/RetryInterval", "7");
    want_value(&e, R "/ROBOSupport", "true");
    want_value(&e, R "/Status", "0");
    want_value(&e, R "/ErrorCode", "0");
    want_value(&e, R "/LastRenewalAttemptTime", "");
    want_value(&e, R "/RetryAfterExpiryInterval", "0");
    want_value(&e, R "/ServerURL", NULL);
    want_value(&e, "./Vendor/MSFT/CertificateStore/My", "User/System/SCEP/WSTEP");
    want_value(&e, W, "CertThumprint/Renew");
    want_value(&e, R, "RenewPeriod/RetryInterval/ROBOSupport/Status/ErrorCode/"
                        "LastRenewalAttemptTime/RenewNow/RetryAfterExpiryInterval");
    t_env_done(&e);
}

/* The three schedule nodes only inside an Atomic; RetryInterval <=
 * RenewPeriod as the Atomic leaves them; ranges; ROBOSupport false. */
static void test_atomic_rules(void **state)
{
    tenr_fx_t *f = *state;
    t_env_t e;
    char thumb[41];
    adopted(f, thumb);
    start(&e, f);
    assert_int_equal(t_send(&e, true,
                            T_REPLACE("2", R "/RenewPeriod", "int", "60")
                                T_REPLACE("3", R "/RetryInterval", "int", "4")
                                    T_REPLACE("4", R "/ROBOSupport", "bool", "true")
                                        T_DELETE("5", R "/RenewPeriod")),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 405);
    assert_int_equal(t_code(&e.reply, "3"), 405);
    assert_int_equal(t_code(&e.reply, "4"), 405);
    assert_int_equal(t_code(&e.reply, "5"), 405);
    want_value(&e, R "/RenewPeriod", "42");
    /* C5 */
    assert_int_equal(t_send(&e, true,
                            "<Atomic><CmdID>1</CmdID>" T_REPLACE("2", R "/ROBOSupport", "bool", "true")
                                T_REPLACE("3", R "/RenewPeriod", "int", "60")
                                    T_REPLACE("4", R "/RetryInterval", "int", "4") "</Atomic>"),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "1"), 200);
    assert_int_equal(t_code(&e.reply, "3"), 200);
    want_value(&e, R "/RenewPeriod", "60");
    want_value(&e, R "/RetryInterval", "4");
    /* RetryInterval above RenewPeriod: the whole Atomic is refused */
    assert_int_equal(t_send(&e, true,
                            "<Atomic><CmdID>1</CmdID>" T_REPLACE("2", R "/RenewPeriod", "int", "10")
                                T_REPLACE("3", R "/RetryInterval", "int", "11") "</Atomic>"),
                     OMADM_OK);
    assert_int_not_equal(t_code(&e.reply, "1"), 200);
    want_value(&e, R "/RenewPeriod", "60");
    want_value(&e, R "/RetryInterval", "4");
    /* ... unless a later command of the same Atomic fixes it */
    assert_int_equal(t_send(&e, true,
                            "<Atomic><CmdID>1</CmdID>" T_REPLACE("2", R "/RetryInterval", "int", "50")
                                T_REPLACE("3", R "/RenewPeriod", "int", "50") "</Atomic>"),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "1"), 200);
    want_value(&e, R "/RetryInterval", "50");
    /* ranges, formats, ROBOSupport false, Delete back to the default */
    assert_int_equal(t_send(&e, true,
                            "<Atomic><CmdID>1</CmdID>" T_REPLACE("2", R "/RenewPeriod", "int", "0")
                                "</Atomic><Atomic><CmdID>3</CmdID>"
                                T_REPLACE("4", R "/RenewPeriod", "int", "1001")
                                "</Atomic><Atomic><CmdID>5</CmdID>"
                                T_REPLACE("6", R "/RenewPeriod", "bool", "true")
                                "</Atomic><Atomic><CmdID>7</CmdID>"
                                T_REPLACE("8", R "/ROBOSupport", "bool", "false")
                                "</Atomic><Atomic><CmdID>9</CmdID>" T_DELETE("10", R "/ROBOSupport")
                                "</Atomic><Atomic><CmdID>11</CmdID>" T_DELETE("12", R "/RetryInterval")
                                "</Atomic>"),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 400);
    assert_int_equal(t_code(&e.reply, "4"), 400);
    assert_int_equal(t_code(&e.reply, "6"), 415);
    assert_int_equal(t_code(&e.reply, "8"), 405);
    assert_int_equal(t_code(&e.reply, "10"), 405);
    assert_int_equal(t_code(&e.reply, "12"), 200);
    want_value(&e, R "/RenewPeriod", "50");
    want_value(&e, R "/RetryInterval", "7");
    want_value(&e, R "/ROBOSupport", "true");
    t_env_done(&e);
}

/* The other nodes: read-only ones, ServerURL, RetryAfterExpiryInterval,
 * Add of a node that holds a value, RenewNow; and persistence. */
static void test_other_nodes_and_persistence(void **state)
{
    tenr_fx_t *f = *state;
    t_env_t e;
    char thumb[41];
    adopted(f, thumb);
    start(&e, f);
    assert_int_equal(t_send(&e, true,
                            T_REPLACE("2", R "/Status", "int", "2") T_REPLACE("3", W "/CertThumbprint",
                                                                              "chr", "AB")
                                T_EXEC("4", R "/RenewNow") T_REPLACE("5", R "/ServerURL", "chr",
                                                                     "ftp://x.example/")
                                    T_ADD("6", R "/ServerURL", "chr", "https://es.example/svc")
                                        T_ADD("7", R "/ServerURL", "chr", "https://other.example/")
                                            T_REPLACE("8", R "/RetryAfterExpiryInterval", "int", "3")
                                                T_DELETE("9", R "/RetryAfterExpiryInterval")
                                                    T_GET("10", R "/RenewNow")
                                                        T_EXEC("11", R "/RenewPeriod")),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 405);
    assert_int_equal(t_code(&e.reply, "3"), 405);
    assert_int_equal(t_code(&e.reply, "4"), 412); /* no ServerURL yet */
    assert_int_equal(t_code(&e.reply, "5"), 400);
    assert_int_equal(t_code(&e.reply, "6"), 200);
    assert_int_equal(t_code(&e.reply, "7"), 418);
    assert_int_equal(t_code(&e.reply, "8"), 200);
    assert_int_equal(t_code(&e.reply, "9"), 405);
    assert_int_equal(t_code(&e.reply, "10"), 405);
    assert_int_equal(t_code(&e.reply, "11"), 405);
    assert_int_equal(t_send(&e, true, T_EXEC("2", R "/RenewNow") T_EXEC("3", R "/RenewNow")),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    assert_int_equal(t_code(&e.reply, "3"), 200); /* while one waits: the same renewal */
    want_value(&e, R "/Status", "1");
    t_env_done(&e);
    /* another process */
    omadm_certstore_close(f->cs);
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &f->cs, NULL), OMADM_OK);
    f->s = f->cs->store;
    start(&e, f);
    want_value(&e, R "/ServerURL", "https://es.example/svc");
    want_value(&e, R "/RetryAfterExpiryInterval", "3");
    want_value(&e, R "/Status", "1");
    want_value(&e, W "/CertThumprint", thumb);
    t_env_done(&e);
}

/* The identity follows a renewal; another configured certificate becomes
 * the identity afresh, the settings kept. */
static void test_identity_follows_renewal(void **state)
{
    tenr_fx_t *f = *state;
    char thumb[41], cur[41];
    adopted(f, thumb);
    wstep_rec_t r;
    assert_int_equal(wstep_load(f->s, &r), 0);
    strcpy(r.current, "00112233445566778899AABBCCDDEEFF00112233"); /* as a renewal leaves it */
    r.status = WSTEP_SUCCEEDED;
    r.period = 30;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(wstep_save(f->s, &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_OK);
    assert_string_equal(cur, r.current);
    /* the current one itself, in lower case with colons */
    assert_int_equal(omadm_certstore_wstep_identity(
                         f->cs, "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33", cur),
                     OMADM_OK);
    assert_string_equal(cur, r.current);
    /* the leaf again, as if configured anew: it is in My/System, so it becomes the identity */
    strcpy(r.configured, "FFEEDDCCBBAA99887766554433221100FFEEDDCC");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(wstep_save(f->s, &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_OK);
    assert_string_equal(cur, thumb);
    wstep_rec_free(store_platform(f->s), &r);
    assert_int_equal(wstep_load(f->s, &r), 0);
    assert_string_equal(r.configured, thumb);
    assert_int_equal(r.status, WSTEP_NOT_STARTED);
    assert_int_equal(r.period, 30);
    wstep_rec_free(store_platform(f->s), &r);
}

static void count_problem(void *ctx, const char *problem)
{
    char *seen = ctx;
    snprintf(seen, 256, "%s", problem);
}

static void put_record(tenr_fx_t *f, const char *text)
{
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, WSTEP_RECORD, text, strlen(text)), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
}

/* store check: a damaged record, a newer one (left alone), an identity
 * without its key; the nodes then answer 500 and the identity call says
 * why, changing nothing. */
static void test_record_checked(void **state)
{
    tenr_fx_t *f = *state;
    char thumb[41], cur[41] = "", seen[256] = "";
    unsigned problems = 0;
    t_env_t e;
    adopted(f, thumb);
    assert_int_equal(omadm_certstore_check(f->cs, 0, count_problem, seen, &problems), OMADM_OK);
    put_record(f, "omadm-wstep 1\nconfigured nonsense\nend\n");
    assert_int_equal(omadm_certstore_check(f->cs, 0, count_problem, seen, &problems),
                     OMADM_E_CORRUPT);
    assert_int_equal(problems, 1);
    assert_non_null(strstr(seen, "WSTEP record is damaged"));
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_E_CORRUPT);
    start(&e, f);
    assert_int_equal(t_send(&e, true, T_GET("2", R "/Status")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 500);
    t_env_done(&e);
    put_record(f, "omadm-wstep 2\nwhatever a later version writes\n");
    assert_int_equal(omadm_certstore_check(f->cs, 0, count_problem, seen, &problems),
                     OMADM_E_CORRUPT);
    assert_non_null(strstr(seen, "newer than this library reads"));
    assert_int_equal(omadm_certstore_wstep_identity(f->cs, thumb, cur), OMADM_E_NEWER_FORMAT);
    char *text = NULL;
    assert_int_equal(store_get_state(f->s, WSTEP_RECORD, &text, NULL), 0);
    assert_non_null(strstr(text, "omadm-wstep 2\n")); /* left as it was */
    plat_free(store_platform(f->s), text);
    /* the identity's key gone */
    char *rec = t_strf("omadm-wstep 1\nconfigured %s\ncurrent %s\nend\n", thumb, thumb);
    put_record(f, rec);
    free(rec);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "my-system", thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(omadm_certstore_check(f->cs, 0, count_problem, seen, &problems), OMADM_OK);
    put_leaf(f, false, thumb);
    assert_int_equal(omadm_certstore_check(f->cs, 0, count_problem, seen, &problems),
                     OMADM_E_CORRUPT);
    assert_non_null(strstr(seen, "the identity has no private key"));
}

static unsigned http_calls;

static omadm_http_result_t no_request(void *ctx, const omadm_http_req_t *req,
                                      omadm_http_resp_t *resp, char *err, size_t err_size)
{
    (void)ctx, (void)req, (void)resp, (void)err, (void)err_size;
    http_calls++;
    return OMADM_HTTP_CONNECT;
}

static void no_release(void *ctx, omadm_http_resp_t *resp)
{
    (void)ctx, (void)resp;
}

/* An identity whose key the TPM holds is not renewed: Status 3, ErrorCode
 * MENROLL_E_PROV_CSP_CERTSTORE, nothing sent, the identity unchanged. */
static void test_tpm_key_not_renewed(void **state)
{
    tenr_fx_t *f = *state;
    char thumb[41];
    adopted(f, thumb);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_key(f->s, "my-system", thumb,
                                   "-----BEGIN TSS2 PRIVATE KEY-----\nMA==\n"
                                   "-----END TSS2 PRIVATE KEY-----\n"),
                     0);
    wstep_rec_t r;
    assert_int_equal(wstep_load(f->s, &r), 0);
    r.now_req = 1000;
    r.status = WSTEP_IN_PROGRESS;
    r.url = strdup("https://es.example/EnrollmentServer/DeviceEnrollmentWebService.svc");
    assert_int_equal(wstep_save(f->s, &r), 0);
    free(r.url);
    r.url = NULL;
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    const omadm_http_t http = {.request = no_request, .release = no_release};
    const omadm_certstore_host_t host = {.http = &http, .minute_seconds = 1};
    omadm_certstore_set_host(f->cs, &host);
    int64_t next = 0;
    http_calls = 0;
    assert_int_equal(wstep_step(f->cs, 2000, &next), 0);
    assert_int_equal(http_calls, 0);
    assert_int_equal(wstep_load(f->s, &r), 0);
    assert_int_equal(r.status, WSTEP_FAILED);
    assert_int_equal(r.error, (int32_t)0x8018001Eu);
    assert_string_equal(r.current, thumb);
    assert_int_equal(r.now_req, 0);
    wstep_rec_free(store_platform(f->s), &r);
}

/* ---- answers ---- */

#define ENV_HEAD                                                                               \
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "                        \
    "xmlns:a=\"http://www.w3.org/2005/08/addressing\"><s:Header/><s:Body>"
#define ENV_TAIL "</s:Body></s:Envelope>"
#define FAULT(sub, detail)                                                                     \
    ENV_HEAD "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>" sub         \
             "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">no</s:Text>" \
             "</s:Reason>" detail "</s:Fault>" ENV_TAIL

static int32_t answer(int status, const char *body)
{
    uint8_t *der = NULL;
    size_t len = 0;
    int32_t hr = 0;
    const char *why = NULL;
    omadm_platform_t p;
    plat_init(&p, NULL);
    assert_int_equal(wstep_parse_response(&p, status, (const uint8_t *)body,
                                          strlen(body), "", &der, &len, &hr, &why),
                     -1);
    assert_null(der);
    assert_non_null(why);
    return hr;
}

static void test_answers_to_hresults(void **state)
{
    (void)state;
    assert_int_equal(answer(500, FAULT("s:MessageFormat", "")), (int32_t)0x80180001u);
    assert_int_equal(answer(500, FAULT("s:Authentication", "")), (int32_t)0x80180002u);
    assert_int_equal(answer(200, FAULT("s:authorization", "")), (int32_t)0x80180003u);
    assert_int_equal(answer(500, FAULT("s:CertificateRequest", "")), (int32_t)0x80180004u);
    assert_int_equal(answer(500, FAULT("s:EnrollmentServer", "")), (int32_t)0x80180005u);
    assert_int_equal(answer(500, FAULT("a:InternalServiceFault", "")), (int32_t)0x80180006u);
    assert_int_equal(answer(500, FAULT("a:InvalidSecurity", "")), (int32_t)0x80180007u);
    assert_int_equal(answer(500, FAULT("s:SomethingElse", "")), (int32_t)0x80180008u);
    assert_int_equal(
        answer(500, FAULT("s:Authorization",
                          "<s:Detail><deviceenrollmentserviceerror xmlns=\"http://schemas."
                          "microsoft.com/windows/pki/2009/01/enrollment\"><errortype>"
                          "noteligibletorenew</errortype></deviceenrollmentserviceerror>"
                          "</s:Detail>")),
        (int32_t)0x80180016u);
    assert_int_equal(answer(500, FAULT("s:Receiver",
                                       "<s:Detail><CertificateEnrollmentWSDetail><ErrorCode>"
                                       "-2146877422</ErrorCode></CertificateEnrollmentWSDetail>"
                                       "</s:Detail>")),
                     (int32_t)0x80094012u);
    assert_int_equal(answer(307, ""), (int32_t)0x8018001Au);
    assert_int_equal(answer(503, "Service Unavailable"), (int32_t)0x80180010u);
    assert_int_equal(answer(200, ENV_HEAD "<wst:RequestSecurityTokenResponseCollection "
                                          "xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/"
                                          "200512\"/>" ENV_TAIL),
                     (int32_t)0x80180001u);
    assert_int_equal(answer(200, ENV_HEAD "<s:Body"), (int32_t)0x80180001u);
    /* a DTD is not read */
    assert_int_equal(answer(200, "<!DOCTYPE x [<!ENTITY e \"s:Authorization\">]>" FAULT("&e;", "")),
                     (int32_t)0x80180001u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_identity, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_aliases, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_atomic_rules, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_other_nodes_and_persistence, tenr_setup,
                                        tenr_teardown),
        cmocka_unit_test_setup_teardown(test_identity_follows_renewal, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_record_checked, tenr_setup, tenr_teardown),
        cmocka_unit_test_setup_teardown(test_tpm_key_not_renewed, tenr_setup, tenr_teardown),
        cmocka_unit_test(test_answers_to_hresults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
