/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_host_api.c - engine functions a host needs besides processing
 * messages:
 *
 *   - omadm_message_to_xml: WBXML and XML in, SyncML XML out (read back
 *     with the independent libxml2 parser of support_dm.c); the SyncHdr
 *     Cred masked only when asked; refused input with its reason; limits;
 *     NULL arguments and unknown flags; the engine's state untouched and
 *     every allocation released (the counting allocator);
 *   - OMADM_HMAC_HEADER_SIZE: omadm_session_hmac_sign fits in exactly that
 *     many bytes, and one byte less is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support_dm.h"

#define SERVER_URL "https://srv.example/dm"
/* base64 of "dev7:s3cr3t" */
#define DEV7_CRED "ZGV2NzpzM2NyM3Q="

static int setup(void **state)
{
    t_env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    t_env_init(e);
    t_env_start(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    t_env_t *e = *state;
    t_env_done(e); /* asserts that nothing the engine allocated is left */
    free(e);
    return 0;
}

/* Package 1 of a session with basic credentials for dev7: WBXML or XML. */
static uint8_t *package1(t_env_t *e, int wbxml, size_t *len)
{
    omadm_account_t acc = {.server_url = SERVER_URL, .client_auth = OMADM_AUTH_BASIC,
                           .client_user = "dev7", .client_secret = "s3cr3t", .wbxml = wbxml};
    uint8_t *msg = NULL;
    assert_int_equal(omadm_session_begin(e->dm, &acc, 0, NULL, &msg, len), OMADM_OK);
    assert_non_null(msg);
    return msg;
}

/* xml as SyncML XML: NUL-terminated, parses, the header as package 1 has it. */
static void assert_package1_xml(const char *xml, size_t len)
{
    t_reply_t r;
    assert_int_equal(strlen(xml), len);
    t_reply_init(&r);
    assert_int_equal(t_reply_parse(&r, (const uint8_t *)xml, len), 0);
    assert_string_equal(r.ver_proto, "DM/1.2");
    assert_string_equal(r.msg_id, "1");
    assert_string_equal(r.target, SERVER_URL);
    assert_string_equal(r.source, "omadm-device");
    assert_true(r.final);
    assert_true(r.n_cmds >= 2); /* Alert 1201, Replace of the DevInfo leaves */
    assert_string_equal(r.cmds[0].name, "Alert");
    assert_string_equal(r.cmds[0].data, "1201");
    t_reply_free(&r);
}

static void test_wbxml_to_xml(void **state)
{
    t_env_t *e = *state;
    size_t len = 0, xml_len = 0;
    uint8_t *msg = package1(e, 1, &len);
    assert_int_equal(msg[0], 0x02); /* WBXML 1.2 */
    char *xml = NULL;
    const char *detail = "x";

    assert_int_equal(omadm_message_to_xml(e->dm, msg, len, 0, &xml, &xml_len, &detail), OMADM_OK);
    assert_null(detail);
    assert_package1_xml(xml, xml_len);
    assert_non_null(strstr(xml, DEV7_CRED));
    omadm_buffer_free(e->dm, xml);

    assert_int_equal(omadm_message_to_xml(e->dm, msg, len, OMADM_XML_MASK_CRED, &xml, &xml_len,
                                          NULL),
                     OMADM_OK);
    assert_package1_xml(xml, xml_len);
    assert_null(strstr(xml, DEV7_CRED));
    assert_non_null(strstr(xml, "***"));
    omadm_buffer_free(e->dm, xml);

    /* the session is still open and the engine saw no refused message */
    assert_true(omadm_session_active(e->dm));
    assert_null(omadm_last_error_detail(e->dm));
    omadm_buffer_free(e->dm, msg);
}

static void test_xml_to_xml(void **state)
{
    t_env_t *e = *state;
    size_t len = 0, xml_len = 0;
    uint8_t *msg = package1(e, 0, &len);
    assert_int_equal(msg[0], '<');
    char *xml = NULL;
    assert_int_equal(omadm_message_to_xml(e->dm, msg, len, OMADM_XML_MASK_CRED, &xml, &xml_len,
                                          NULL),
                     OMADM_OK);
    assert_package1_xml(xml, xml_len);
    assert_null(strstr(xml, DEV7_CRED));
    assert_non_null(strstr((const char *)msg, DEV7_CRED)); /* the input is untouched */
    omadm_buffer_free(e->dm, xml);
    assert_int_equal(omadm_message_to_xml(e->dm, msg, len, 0, &xml, &xml_len, NULL), OMADM_OK);
    assert_non_null(strstr(xml, DEV7_CRED));
    omadm_buffer_free(e->dm, xml);
    omadm_buffer_free(e->dm, msg);
}

static void test_refused(void **state)
{
    t_env_t *e = *state;
    char *xml = (char *)"x";
    size_t xml_len = 7;
    const char *detail = NULL;
    static const char garbage[] = "this is not XML";
    assert_int_equal(omadm_message_to_xml(e->dm, (const uint8_t *)garbage, sizeof garbage - 1, 0,
                                          &xml, &xml_len, &detail),
                     OMADM_E_NOT_SYNCML);
    assert_null(xml);
    assert_int_equal(xml_len, 0);
    assert_non_null(detail);

    static const uint8_t truncated[] = {0x02, 0xa4, 0x01};
    detail = NULL;
    assert_int_equal(omadm_message_to_xml(e->dm, truncated, sizeof truncated, 0, &xml, &xml_len,
                                          &detail),
                     OMADM_E_NOT_SYNCML);
    assert_non_null(detail);

    static const char no_hdr[] = "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncBody/></SyncML>";
    assert_int_equal(omadm_message_to_xml(e->dm, (const uint8_t *)no_hdr, sizeof no_hdr - 1, 0,
                                          &xml, &xml_len, &detail),
                     OMADM_E_MALFORMED);
    assert_int_equal(omadm_message_to_xml(e->dm, NULL, 0, 0, &xml, &xml_len, NULL),
                     OMADM_E_NOT_SYNCML);
    assert_null(omadm_last_error_detail(e->dm)); /* omadm_process's reason is its own */

    assert_int_equal(omadm_message_to_xml(NULL, (const uint8_t *)no_hdr, 1, 0, &xml, &xml_len,
                                          NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_message_to_xml(e->dm, NULL, 5, 0, &xml, &xml_len, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_message_to_xml(e->dm, (const uint8_t *)no_hdr, 1, 0, NULL, &xml_len,
                                          NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_message_to_xml(e->dm, (const uint8_t *)no_hdr, 1, 0, &xml, NULL, NULL),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_message_to_xml(e->dm, (const uint8_t *)no_hdr, 1, 2, &xml, &xml_len,
                                          NULL),
                     OMADM_E_INVALID_ARG);
}

static void test_limits(void **state)
{
    t_env_t *e = *state;
    size_t len = 0, xml_len = 0;
    uint8_t *msg = package1(e, 1, &len);
    omadm_t *small = NULL;
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.max_msg_size = len - 1;
    assert_int_equal(omadm_new(&cfg, &e->plat, NULL, &small), OMADM_OK);
    char *xml = NULL;
    const char *detail = NULL;
    assert_int_equal(omadm_message_to_xml(small, msg, len, 0, &xml, &xml_len, &detail),
                     OMADM_E_TOO_LARGE);
    assert_null(xml);
    omadm_free(small);
    omadm_buffer_free(e->dm, msg);
}

static void test_hmac_header_size(void **state)
{
    t_env_t *e = *state;
    static const char body[] = "<SyncML/>";
    const char *const users[] = {"dev7", NULL /* the DevId */,
                                 "a-rather-long-user-name-for-this-device-0123456789"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        omadm_account_t acc = {.server_url = SERVER_URL, .client_auth = OMADM_AUTH_HMAC,
                               .client_user = users[i], .client_secret = "pw"};
        uint8_t *msg = NULL;
        size_t len = 0;
        assert_int_equal(omadm_session_begin(e->dm, &acc, 0, NULL, &msg, &len), OMADM_OK);
        omadm_buffer_free(e->dm, msg);
        size_t need = OMADM_HMAC_HEADER_SIZE(strlen(users[i] ? users[i] : "omadm-device"));
        char *buf = malloc(need);
        assert_non_null(buf);
        assert_int_equal(omadm_session_hmac_sign(e->dm, (const uint8_t *)body, sizeof body - 1,
                                                 buf, need),
                         OMADM_OK);
        assert_int_equal(strlen(buf) + 1, need);
        assert_int_equal(omadm_session_hmac_sign(e->dm, (const uint8_t *)body, sizeof body - 1,
                                                 buf, need - 1),
                         OMADM_E_TOO_LARGE);
        free(buf);
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_wbxml_to_xml), T(test_xml_to_xml), T(test_refused), T(test_limits),
        T(test_hmac_header_size),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
