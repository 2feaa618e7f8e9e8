/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_session.c - sessions the device opens (omadm/client.c,
 * docs/session.md), message by message without a network:
 *
 *   package 1 (header, Alert 1201/1200, DevInfo Replace, Final, MaxMsgSize),
 *   the SessionID counter and a notification's SessionID, the exchange and
 *   its end, RespURI, basic and md5 client credentials (digest recomputed
 *   here with OpenSSL), challenges (package 1 again, nonce stored across
 *   sessions, too many challenges, a Chal of another type), server
 *   credentials (407/401 with a Chal, nothing executed, then 212), HMAC
 *   header values both ways, generic alerts in package 1 and marked
 *   delivered only on 200/202; a server message for another device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "support_dm.h"
#include "support_store.h"

#define URL "https://dm.example/omadm"
#define SRV "dmserver"

typedef struct fx {
    t_env_t e;
    tstore_t store;
    omadm_account_t acc;
    t_reply_t p1;              /* the last package 1 */
    char *p1_raw;
} fx_t;

/* ---- a plugin with generic alerts ---- */

typedef struct alerts_csp {
    int queued;                /* alerts waiting */
    int delivered;             /* alert_delivered calls that matched */
} alerts_csp_t;

static int ac_get(void *c, const omadm_csp_req_t *r, omadm_csp_out_t *o)
{
    (void)c;
    (void)r;
    return omadm_csp_out_interior(o, NULL) ? -500 : 0;
}

static int ac_alerts(void *c, omadm_alert_fn fn, void *ctx)
{
    alerts_csp_t *a = c;
    if (a->queued) {
        omadm_generic_alert_t al = {"al-1", "./Vendor/Test/Job/Exec", "org.example.result", "int",
                                    "critical", "-5"};
        return fn(ctx, &al) ? -1 : 0;
    }
    return 0;
}

static int ac_delivered(void *c, const char *id)
{
    alerts_csp_t *a = c;
    if (strcmp(id, "al-1") || !a->queued)
        return 1;
    a->queued = 0;
    a->delivered++;
    return 0;
}

static const char *const ac_bases[] = {"./Vendor/Test", NULL};
static const omadm_csp_t alerts_plugin = {
    .name = "alerts", .bases = ac_bases, .get = ac_get, .alerts = ac_alerts,
    .alert_delivered = ac_delivered,
};

/* ---- fixture ---- */

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    t_env_init(&f->e);
    tstore_init(&f->store);
    f->e.storage = &f->store.api;
    f->e.cfg.dev_id = "dev-1";
    snprintf(f->e.server, sizeof f->e.server, SRV);
    t_env_start(&f->e);
    f->acc.server_url = URL;
    t_reply_init(&f->p1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    t_reply_free(&f->p1);
    free(f->p1_raw);
    t_env_done(&f->e);
    tstore_free(&f->store);
    free(f);
    return 0;
}

/* Restart the engine on the same storage (a new process). */
static void restart(fx_t *f)
{
    t_reply_free(&f->e.reply);
    omadm_free(f->e.dm);
    f->e.dm = NULL;
    assert_int_equal(omadm_new(&f->e.cfg, &f->e.plat, f->e.storage, &f->e.dm), OMADM_OK);
}

static void begin(fx_t *f, int notified, const char *sid)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    assert_int_equal(omadm_session_begin(f->e.dm, &f->acc, notified, sid, &msg, &len), OMADM_OK);
    t_reply_free(&f->p1);
    free(f->p1_raw);
    f->p1_raw = strndup((const char *)msg, len);
    assert_int_equal(t_reply_parse(&f->p1, msg, len), 0);
    omadm_buffer_free(f->e.dm, msg);
    assert_true(omadm_session_active(f->e.dm));
    snprintf(f->e.session_id, sizeof f->e.session_id, "%s", f->p1.session_id);
    f->e.msg_id = 1;
}

/* A server message with extra SyncHdr content (Cred, RespURI). */
static omadm_error_t send_hdr(fx_t *f, const char *hdr_extra, const char *body)
{
    char *m = t_strf("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                     "<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>"
                     "<Target><LocURI>dev-1</LocURI></Target>"
                     "<Source><LocURI>" SRV "</LocURI></Source>%s</SyncHdr>"
                     "<SyncBody>%s<Final/></SyncBody></SyncML>",
                     f->e.session_id, f->e.msg_id++, hdr_extra, body);
    omadm_error_t err = t_send_raw(&f->e, m, strlen(m));
    free(m);
    return err;
}

/* The same without Final (a package that goes on). */
static omadm_error_t send_open(fx_t *f, const char *body)
{
    char *m = t_strf("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                     "<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>"
                     "<Target><LocURI>dev-1</LocURI></Target>"
                     "<Source><LocURI>" SRV "</LocURI></Source></SyncHdr>"
                     "<SyncBody>%s</SyncBody></SyncML>",
                     f->e.session_id, f->e.msg_id++, body);
    omadm_error_t err = t_send_raw(&f->e, m, strlen(m));
    free(m);
    return err;
}

#define CHUNK(id, uri, meta, data, more)                                                  \
    "<Add><CmdID>" id "</CmdID><Item><Target><LocURI>" uri "</LocURI></Target>" meta       \
    "<Data>" data "</Data>" more "</Item></Add>"
#define SIZE_META(n)                                                                      \
    "<Meta><Format xmlns=\"syncml:metinf\">chr</Format><Size xmlns=\"syncml:metinf\">" n  \
    "</Size></Meta>"

#define HDR_STATUS(msgref, code, chal)                                                   \
    "<Status><CmdID>1</CmdID><MsgRef>" msgref "</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>" \
    "<TargetRef>" URL "</TargetRef><SourceRef>dev-1</SourceRef>" chal "<Data>" code        \
    "</Data></Status>"
#define CHAL(type, nonce)                                                                \
    "<Chal><Meta><Type xmlns=\"syncml:metinf\">" type "</Type>"                             \
    "<Format xmlns=\"syncml:metinf\">b64</Format>"                                         \
    "<NextNonce xmlns=\"syncml:metinf\">" nonce "</NextNonce></Meta></Chal>"

/* <Cred><Data> of raw XML, or NULL. */
static char *cred_data(const char *raw)
{
    const char *c = raw ? strstr(raw, "<Cred>") : NULL;
    const char *d = c ? strstr(c, "<Data>") : NULL;
    const char *e = d ? strstr(d, "</Data>") : NULL;
    return e ? strndup(d + 6, (size_t)(e - d - 6)) : NULL;
}

static char *b64(const uint8_t *d, size_t n)
{
    char *out = calloc(1, 4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
    return out;
}

static void md5(const void *d, size_t n, uint8_t out[16])
{
    unsigned len = 0;
    assert_true(EVP_Digest(d, n, out, &len, EVP_md5(), NULL));
}

/* B64(MD5(B64(MD5(user:pw)):nonce)) computed independently. */
static char *digest(const char *user, const char *pw, const uint8_t *nonce, size_t nlen)
{
    uint8_t h[16];
    char *up = t_strf("%s:%s", user, pw);
    md5(up, strlen(up), h);
    char *inner = b64(h, 16);
    size_t il = strlen(inner);
    uint8_t *buf = malloc(il + 1 + nlen);
    memcpy(buf, inner, il);
    buf[il] = ':';
    memcpy(buf + il + 1, nonce, nlen);
    md5(buf, il + 1 + nlen, h);
    free(buf);
    free(inner);
    free(up);
    return b64(h, 16);
}

/* ---- tests ---- */

static void test_package1(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    t_reply_t *p = &f->p1;
    assert_string_equal(p->msg_id, "1");
    assert_string_equal(p->session_id, "1");
    assert_string_equal(p->target, URL);
    assert_string_equal(p->source, "dev-1");
    assert_non_null(strstr(p->hdr_elems, "Meta"));
    assert_non_null(strstr(f->p1_raw, "<MaxMsgSize xmlns=\"syncml:metinf\">4194304</MaxMsgSize>"));
    assert_null(strstr(f->p1_raw, "<Cred>"));
    assert_true(p->final);
    assert_int_equal(p->n_cmds, 2);
    assert_string_equal(p->cmds[0].name, "Alert");
    assert_string_equal(p->cmds[0].cmd_id, "1");
    assert_string_equal(p->cmds[0].data, "1201");
    assert_string_equal(p->cmds[1].name, "Replace");
    assert_string_equal(p->cmds[1].cmd_id, "2");
    static const char *const leaves[] = {"DevId", "Man", "Mod", "DmV", "Lang"};
    static const char *const values[] = {"dev-1", "omadm", "omadm-client", "1.2", "en-US"};
    assert_int_equal(p->cmds[1].n_items, 5);
    for (int i = 0; i < 5; i++) {
        char *u = t_strf("./DevInfo/%s", leaves[i]);
        assert_string_equal(p->cmds[1].items[i].source, u);
        assert_string_equal(p->cmds[1].items[i].format, "chr");
        assert_string_equal(p->cmds[1].items[i].data, values[i]);
        free(u);
    }
    /* the server's package 2: Status for our header and commands, a Get */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "")
                             "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>1</CmdRef>"
                             "<Cmd>Alert</Cmd><Data>200</Data></Status>" T_GET("3", "./DevInfo/Mod")),
                     OMADM_OK);
    assert_true(f->e.reply.present);
    assert_string_equal(f->e.reply.msg_id, "2");
    assert_string_equal(f->e.reply.session_id, "1");
    assert_string_equal(f->e.reply.target, SRV);
    assert_int_equal(t_code(&f->e.reply, "0"), 200);
    assert_int_equal(t_code(&f->e.reply, "3"), 200);
    assert_string_equal(t_results(&f->e.reply, "3")->items[0].data, "omadm-client");
    assert_null(strstr(f->e.reply.raw, "<Cred>"));
    assert_true(omadm_session_active(f->e.dm));
    assert_string_equal(omadm_session_url(f->e.dm), URL);
    assert_string_equal(omadm_session_id(f->e.dm), "1");
    /* a message without commands ends it: no reply */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "200", "")), OMADM_OK);
    assert_false(f->e.reply.present);
    assert_false(omadm_session_active(f->e.dm));
    assert_null(omadm_session_error(f->e.dm));
    assert_null(omadm_session_id(f->e.dm));
    assert_null(omadm_session_id(NULL));
}

static void test_session_ids(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    assert_string_equal(f->p1.session_id, "1");
    begin(f, 1, NULL);
    assert_string_equal(f->p1.session_id, "2");
    assert_string_equal(f->p1.cmds[0].data, "1200");
    begin(f, 1, "4711");
    assert_string_equal(f->p1.session_id, "4711");
    /* the counter persists */
    restart(f);
    begin(f, 0, NULL);
    assert_string_equal(f->p1.session_id, "3");
    /* bad arguments */
    uint8_t *m = NULL;
    size_t n = 0;
    omadm_account_t bad = {0};
    assert_int_equal(omadm_session_begin(f->e.dm, &bad, 0, NULL, &m, &n), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_session_begin(f->e.dm, &f->acc, 0, "", &m, &n), OMADM_E_INVALID_ARG);
}

static void test_resp_uri(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "<RespURI>https://dm.example/next?s=1</RespURI>",
                              HDR_STATUS("1", "200", "") T_GET("2", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_string_equal(omadm_session_url(f->e.dm), "https://dm.example/next?s=1");
}

static void test_basic_auth_challenge(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_BASIC;
    f->acc.client_user = "alice";
    f->acc.client_secret = "pa:ss";
    begin(f, 0, NULL);
    char *cd = cred_data(f->p1_raw);
    assert_string_equal(cd, "YWxpY2U6cGE6c3M="); /* base64("alice:pa:ss") */
    free(cd);
    assert_non_null(strstr(f->p1_raw, "<LocName>alice</LocName>"));
    assert_non_null(strstr(f->p1_raw, "syncml:auth-basic"));
    /* 407 + Chal, no commands: package 1 again, MsgID 2 */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "407", CHAL("syncml:auth-basic", "AAAA"))),
                     OMADM_OK);
    assert_true(f->e.reply.present);
    assert_string_equal(f->e.reply.msg_id, "2");
    assert_int_equal(t_code(&f->e.reply, "0"), 200);
    assert_int_equal(f->e.reply.n_cmds, 3); /* Status, Alert, Replace */
    assert_string_equal(f->e.reply.cmds[1].name, "Alert");
    assert_string_equal(f->e.reply.cmds[1].data, "1201");
    assert_string_equal(f->e.reply.cmds[2].name, "Replace");
    cd = cred_data(f->e.reply.raw);
    assert_string_equal(cd, "YWxpY2U6cGE6c3M=");
    free(cd);
    /* 212: no more credentials */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "212", "") T_GET("3", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_null(strstr(f->e.reply.raw, "<Cred>"));
    assert_int_equal(t_code(&f->e.reply, "3"), 200);
}

static void test_200_means_send_again(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_BASIC;
    f->acc.client_secret = "s";
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "") T_GET("2", "./DevInfo/DevId")),
                     OMADM_OK);
    char *cd = cred_data(f->e.reply.raw);
    assert_string_equal(cd, "ZGV2LTE6cw=="); /* base64("dev-1:s"): the user defaults to the DevId */
    free(cd);
}

static void test_md5_nonce_across_sessions(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_MD5;
    f->acc.client_user = "bob";
    f->acc.client_secret = "secret";
    begin(f, 0, NULL);
    char *cd = cred_data(f->p1_raw), *want = digest("bob", "secret", (const uint8_t *)"", 0);
    assert_string_equal(cd, want); /* no nonce yet: the empty nonce */
    free(cd);
    free(want);
    assert_non_null(strstr(f->p1_raw, "syncml:auth-md5"));
    /* 401 with nonce N1 = "nonce-1" (b64 bm9uY2UtMQ==) */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "401", CHAL("syncml:auth-md5", "bm9uY2UtMQ=="))),
                     OMADM_OK);
    cd = cred_data(f->e.reply.raw);
    want = digest("bob", "secret", (const uint8_t *)"nonce-1", 7);
    assert_string_equal(cd, want);
    free(cd);
    free(want);
    /* 212 with N2 for the next session; the server ends */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "212", CHAL("syncml:auth-md5", "bm9uY2UtMg=="))),
                     OMADM_OK);
    assert_false(f->e.reply.present);
    /* a new process, a new session: N2 is used at once */
    restart(f);
    begin(f, 0, NULL);
    cd = cred_data(f->p1_raw);
    want = digest("bob", "secret", (const uint8_t *)"nonce-2", 7);
    assert_string_equal(cd, want);
    free(cd);
    free(want);
}

static void test_too_many_challenges(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_MD5;
    f->acc.client_secret = "wrong";
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "401", CHAL("syncml:auth-md5", "QQ=="))), OMADM_OK);
    assert_true(f->e.reply.present);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "401", CHAL("syncml:auth-md5", "Qg=="))), OMADM_OK);
    assert_true(f->e.reply.present);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("3", "401", CHAL("syncml:auth-md5", "Qw=="))), OMADM_OK);
    assert_false(f->e.reply.present);
    assert_false(omadm_session_active(f->e.dm));
    assert_non_null(omadm_session_error(f->e.dm));
}

static void test_challenge_of_another_type(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_BASIC;
    f->acc.client_secret = "s";
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "401", CHAL("syncml:auth-md5", "QQ=="))), OMADM_OK);
    assert_false(f->e.reply.present);
    assert_non_null(omadm_session_error(f->e.dm));
    /* no credentials configured at all */
    f->acc.client_auth = OMADM_AUTH_NONE;
    begin(f, 0, NULL);
    assert_null(omadm_session_error(f->e.dm));
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "407", CHAL("syncml:auth-basic", "QQ=="))), OMADM_OK);
    assert_false(f->e.reply.present);
    assert_non_null(omadm_session_error(f->e.dm));
}

static void test_server_basic(void **state)
{
    fx_t *f = *state;
    f->acc.server_auth = OMADM_AUTH_BASIC;
    f->acc.server_id = SRV;
    f->acc.server_secret = "srvpw";
    begin(f, 0, NULL);
    /* no Cred: 407 with a Chal, the Add answered 407 and not run */
    assert_int_equal(send_hdr(f, "", T_ADD("5", "./Vendor/Extra", "chr", "x")
                             T_GET("6", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 407);
    assert_non_null(strstr(f->e.reply.raw, "<Chal>"));
    assert_non_null(strstr(f->e.reply.raw, "syncml:auth-basic"));
    assert_int_equal(t_code(&f->e.reply, "5"), 407);
    assert_int_equal(t_code(&f->e.reply, "6"), 407);
    assert_null(t_results(&f->e.reply, "6"));
    assert_null(t_read(&f->e, "./Vendor/Extra", NULL, NULL));
    /* wrong Cred: 401 */
    assert_int_equal(send_hdr(f,
                              "<Cred><Meta><Type xmlns=\"syncml:metinf\">syncml:auth-basic</Type>"
                              "</Meta><Data>ZG1zZXJ2ZXI6bm8=</Data></Cred>",
                              T_ADD("7", "./Vendor/Extra", "chr", "x")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 401);
    assert_int_equal(t_code(&f->e.reply, "7"), 401);
    /* right Cred (base64 "dmserver:srvpw"): 212, commands run */
    assert_int_equal(send_hdr(f,
                              "<Cred><Meta><Type xmlns=\"syncml:metinf\">syncml:auth-basic</Type>"
                              "</Meta><Data>ZG1zZXJ2ZXI6c3J2cHc=</Data></Cred>",
                              T_ADD("8", "./Vendor/Extra", "chr", "x")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 212);
    assert_int_equal(t_code(&f->e.reply, "8"), 200);
    char *v = t_read(&f->e, "./Vendor/Extra", NULL, NULL);
    assert_string_equal(v, "x");
    free(v);
    /* authenticated for the rest of the session */
    assert_int_equal(send_hdr(f, "", T_GET("9", "./Vendor/Extra")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 200);
    assert_int_equal(t_code(&f->e.reply, "9"), 200);
}

/* The NextNonce in the reply's SyncHdr Status Chal, decoded. */
static size_t reply_nonce(const char *raw, uint8_t *out)
{
    const char *n = strstr(raw, "<NextNonce");
    assert_non_null(n);
    n = strchr(n, '>') + 1;
    const char *e = strstr(n, "</NextNonce>");
    char *text = strndup(n, (size_t)(e - n));
    int len = EVP_DecodeBlock(out, (const unsigned char *)text, (int)strlen(text));
    size_t pad = strlen(text) >= 2 ? (text[strlen(text) - 1] == '=') + (text[strlen(text) - 2] == '=') : 0;
    free(text);
    return (size_t)len - pad;
}

static void test_server_md5(void **state)
{
    fx_t *f = *state;
    f->acc.server_auth = OMADM_AUTH_MD5;
    f->acc.server_id = SRV;
    f->acc.server_secret = "srvpw";
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", T_GET("2", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 407);
    assert_non_null(strstr(f->e.reply.raw, "syncml:auth-md5"));
    uint8_t nonce[64];
    size_t nlen = reply_nonce(f->e.reply.raw, nonce);
    assert_int_equal(nlen, 16);
    char *d = digest(SRV, "srvpw", nonce, nlen);
    char *hdr = t_strf("<Cred><Meta><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type>"
                       "<Format xmlns=\"syncml:metinf\">b64</Format></Meta><Data>%s</Data></Cred>",
                       d);
    assert_int_equal(send_hdr(f, hdr, T_GET("3", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 212);
    assert_int_equal(t_code(&f->e.reply, "3"), 200);
    free(hdr);
    free(d);
}

static void test_hmac(void **state)
{
    fx_t *f = *state;
    f->acc.client_auth = OMADM_AUTH_HMAC;
    f->acc.client_user = "carol";
    f->acc.client_secret = "pw";
    f->acc.server_auth = OMADM_AUTH_HMAC;
    f->acc.server_id = SRV;
    f->acc.server_secret = "spw";
    begin(f, 0, NULL);
    assert_null(strstr(f->p1_raw, "<Cred>")); /* HMAC never goes in Cred */
    char hv[256];
    const char *body = "<SyncML>x</SyncML>";
    assert_int_equal(omadm_session_hmac_sign(f->e.dm, (const uint8_t *)body, strlen(body), hv,
                                             sizeof hv),
                     OMADM_OK);
    /* mac = B64(MD5(B64(MD5(carol:pw)):nonce:B64(MD5(body)))), nonce empty so far */
    uint8_t h[16];
    md5(body, strlen(body), h);
    char *bd = b64(h, 16);
    char *tail = t_strf(":%s", bd);
    /* the digest helper appends ":" nonce; pass ":"+B64(MD5(body)) as a nonce after an empty one */
    char *mac = digest("carol", "pw", (const uint8_t *)tail, strlen(tail));
    char *want = t_strf("algorithm=MD5, username=\"carol\", mac=%s", mac);
    assert_string_equal(hv, want);
    free(want);
    free(mac);
    free(tail);
    /* verify the server's: username dmserver, secret spw, our nonce (none yet) */
    tail = t_strf(":%s", bd);
    mac = digest(SRV, "spw", (const uint8_t *)tail, strlen(tail));
    char *good = t_strf("algorithm=MD5, username=\"" SRV "\", mac=%s", mac);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, good, (const uint8_t *)body, strlen(body)),
                     OMADM_OK);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, good, (const uint8_t *)"other", 5),
                     OMADM_E_DENIED);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, "algorithm=MD5, username=\"x\", mac=AAAA",
                                               (const uint8_t *)body, strlen(body)),
                     OMADM_E_DENIED);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, NULL, (const uint8_t *)body, strlen(body)),
                     OMADM_E_DENIED);
    /* a verified message gets 200 and a Chal with the server's next nonce */
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, good, (const uint8_t *)body, strlen(body)),
                     OMADM_OK);
    assert_int_equal(send_hdr(f, "", T_GET("2", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 200);
    assert_int_equal(t_code(&f->e.reply, "2"), 200);
    assert_non_null(strstr(f->e.reply.raw, "syncml:auth-MAC"));
    /* an unverified one: 401, nothing runs */
    assert_int_equal(send_hdr(f, "", T_GET("3", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 401);
    assert_int_equal(t_code(&f->e.reply, "3"), 401);
    free(good);
    free(mac);
    free(tail);
    free(bd);
}

/* x-syncml-hmac value a server would send for body with nonce. */
static char *server_mac(const char *body, const uint8_t *nonce, size_t nlen)
{
    uint8_t h[16];
    md5(body, strlen(body), h);
    char *bd = b64(h, 16);
    size_t bl = strlen(bd);
    uint8_t *n2 = malloc(nlen + 1 + bl);
    memcpy(n2, nonce, nlen);
    n2[nlen] = ':';
    memcpy(n2 + nlen + 1, bd, bl);
    char *mac = digest(SRV, "spw", n2, nlen + 1 + bl);
    char *hv = t_strf("algorithm=MD5, username=\"" SRV "\", mac=%s", mac);
    free(mac);
    free(n2);
    free(bd);
    return hv;
}

static void test_hmac_nonce_only_when_sent(void **state)
{
    fx_t *f = *state;
    f->acc.server_auth = OMADM_AUTH_HMAC;
    f->acc.server_id = SRV;
    f->acc.server_secret = "spw";
    /* real randomness (the engine's fallback): the test clock's random hook
     * repeats itself, so every nonce would be the same */
    f->e.plat.random = NULL;
    restart(f);
    begin(f, 0, NULL);
    const char *body = "b";
    char *hv = server_mac(body, (const uint8_t *)"", 0);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, hv, (const uint8_t *)body, 1), OMADM_OK);
    free(hv);
    assert_int_equal(send_hdr(f, "", T_GET("2", "./DevInfo/DevId")), OMADM_OK);
    uint8_t n1[64];
    size_t n1len = reply_nonce(f->e.reply.raw, n1);
    /* the last message needs no reply: the nonce it would offer never
     * reaches the server, so n1 stays */
    hv = server_mac(body, n1, n1len);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, hv, (const uint8_t *)body, 1), OMADM_OK);
    free(hv);
    /* (it also brings the client a nonce: saving that must not save ours) */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "200", CHAL("syncml:auth-MAC", "QUFB"))),
                     OMADM_OK);
    assert_false(f->e.reply.present);
    restart(f);
    begin(f, 0, NULL);
    hv = server_mac(body, n1, n1len);
    assert_int_equal(omadm_session_hmac_verify(f->e.dm, hv, (const uint8_t *)body, 1), OMADM_OK);
    free(hv);
}

/* The server's "next message" answer to our message msg_id: its SyncHdr
 * Status and Alert 1222, nothing else. */
static void next_please(fx_t *f, const char *msg_id)
{
    char *next = t_strf("<Status><CmdID>1</CmdID><MsgRef>%s</MsgRef><CmdRef>0</CmdRef>"
                        "<Cmd>SyncHdr</Cmd><Data>200</Data></Status>"
                        "<Alert><CmdID>2</CmdID><Data>1222</Data></Alert>", msg_id);
    assert_int_equal(send_hdr(f, "", next), OMADM_OK);
    free(next);
}

/* A reply bigger than the server's MaxMsgSize goes out in parts: each
 * within the limit, Final only on the last, the rest after Alert 1222. */
static void test_split_by_max_msg_size(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    char *body = t_strf("%s", HDR_STATUS("1", "200", ""));
    for (int i = 0; i < 12; i++) {
        char *more = t_strf("%s<Get><CmdID>%d</CmdID><Item><Target><LocURI>./DevInfo/%s</LocURI>"
                            "</Target></Item></Get>",
                            body, 10 + i, i % 2 ? "Man" : "DevId");
        free(body);
        body = more;
    }
    assert_int_equal(send_hdr(f, "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1500</MaxMsgSize></Meta>",
                              body),
                     OMADM_OK);
    free(body);
    int seen_status[12] = {0}, seen_results[12] = {0};
    int parts = 0;
    for (;;) {
        t_reply_t *r = &f->e.reply;
        assert_true(r->present);
        parts++;
        assert_true(r->raw_len <= 1500);
        /* CmdIDs unique within the message */
        for (size_t i = 0; i < r->n_cmds; i++)
            for (size_t j = i + 1; j < r->n_cmds; j++)
                assert_string_not_equal(r->cmds[i].cmd_id, r->cmds[j].cmd_id);
        assert_string_equal(r->cmds[0].name, "Status");
        assert_string_equal(r->cmds[0].cmd_ref, "0");
        for (size_t i = 0; i < r->n_cmds; i++) {
            const t_cmd_t *c = &r->cmds[i];
            int ref = c->cmd_ref ? atoi(c->cmd_ref) - 10 : -1;
            if (ref < 0 || ref >= 12)
                continue;
            if (!strcmp(c->name, "Status"))
                seen_status[ref]++;
            else if (!strcmp(c->name, "Results"))
                seen_results[ref]++;
        }
        if (r->final)
            break;
        assert_true(parts < 20);
        next_please(f, r->msg_id); /* formatted before the reply is replaced */
    }
    assert_true(parts >= 3);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(seen_status[i], 1);
        assert_int_equal(seen_results[i], 1);
    }
    /* the package is complete: the server's empty answer ends the session */
    assert_int_equal(send_hdr(f, "", ""), OMADM_OK);
    assert_false(f->e.reply.present);
    assert_false(omadm_session_active(f->e.dm));
}

static void test_large_object_in(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    /* three chunks, Size 12 on the first */
    assert_int_equal(send_open(f, HDR_STATUS("1", "200", "")
                                 CHUNK("2", "./Vendor/Big", SIZE_META("12"), "abcd", "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "2"), 213);
    assert_false(f->e.reply.final);
    bool asked = false;
    for (size_t i = 0; i < f->e.reply.n_cmds; i++)
        if (!strcmp(f->e.reply.cmds[i].name, "Alert") && !strcmp(f->e.reply.cmds[i].data, "1222"))
            asked = true;
    assert_true(asked); /* the rest of the package, please */
    assert_null(t_read(&f->e, "./Vendor/Big", NULL, NULL));
    assert_int_equal(send_open(f, CHUNK("1", "./Vendor/Big", "", "efgh", "<MoreData/>")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "1"), 213);
    assert_int_equal(send_hdr(f, "", CHUNK("1", "./Vendor/Big", "", "ijkl", "")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "1"), 200);
    char *v = t_read(&f->e, "./Vendor/Big", NULL, NULL);
    assert_string_equal(v, "abcdefghijkl");
    free(v);

    /* Size mismatch: 424, nothing written */
    assert_int_equal(send_open(f, CHUNK("2", "./Vendor/Short", SIZE_META("10"), "abcd", "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "2"), 213);
    assert_int_equal(send_hdr(f, "", CHUNK("1", "./Vendor/Short", "", "ef", "")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "1"), 424);
    assert_null(t_read(&f->e, "./Vendor/Short", NULL, NULL));
    /* more than announced: 424 at once */
    assert_int_equal(send_open(f, CHUNK("2", "./Vendor/Long", SIZE_META("5"), "abcd", "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(send_hdr(f, "", CHUNK("1", "./Vendor/Long", "", "efgh", "<MoreData/>")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "1"), 424);

    /* broken off by another command: Alert 1225 naming it, the Get runs */
    assert_int_equal(send_open(f, CHUNK("2", "./Vendor/Broken", SIZE_META("8"), "abcd", "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(send_hdr(f, "", T_GET("1", "./DevInfo/DevId")), OMADM_OK);
    const t_cmd_t *al = NULL;
    for (size_t i = 0; i < f->e.reply.n_cmds; i++)
        if (!strcmp(f->e.reply.cmds[i].name, "Alert"))
            al = &f->e.reply.cmds[i];
    assert_non_null(al);
    assert_string_equal(al->data, "1225");
    assert_string_equal(al->items[0].target, "./Vendor/Broken");
    assert_int_equal(t_code(&f->e.reply, "1"), 200);
    assert_null(t_read(&f->e, "./Vendor/Broken", NULL, NULL));

    /* the first chunk must give Size, within MaxObjSize */
    assert_int_equal(send_open(f, CHUNK("2", "./Vendor/NoSize", "", "abcd", "<MoreData/>")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "2"), 400);
    assert_int_equal(send_open(f, CHUNK("2", "./Vendor/Huge", SIZE_META("99999999"), "abcd",
                                        "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "2"), 413);
}

static void test_large_object_needs_session(void **state)
{
    fx_t *f = *state;
    /* one process per message would lose the chunks: refused */
    assert_int_equal(t_send(&f->e, false, CHUNK("2", "./Vendor/Big", SIZE_META("8"), "abcd",
                                                "<MoreData/>")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "2"), 406);
}

/* Our Results bigger than the server's MaxMsgSize goes out in chunks:
 * MoreData on all but the last, Size (the whole length) on the first. */
static void test_large_results_out(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    char big[3001];
    for (int i = 0; i < 3000; i++)
        big[i] = (char)('a' + i % 26);
    big[3000] = 0;
    char *body = t_strf(HDR_STATUS("1", "200", "") T_ADD("2", "./Vendor/Big", "chr", "%s"), big);
    assert_int_equal(send_hdr(f, "", body), OMADM_OK);
    free(body);
    assert_int_equal(t_code(&f->e.reply, "2"), 200);
    assert_int_equal(send_hdr(f, "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1000</MaxMsgSize></Meta>",
                              HDR_STATUS("2", "200", "") T_GET("3", "./Vendor/Big")),
                     OMADM_OK);
    char got[4000] = "";
    int parts = 0;
    bool sized = false;
    for (;;) {
        t_reply_t *r = &f->e.reply;
        assert_true(r->present);
        assert_true(r->raw_len <= 1000);
        parts++;
        const t_cmd_t *res = t_results(r, "3");
        assert_non_null(res);
        assert_int_equal(res->n_items, 1);
        strcat(got, res->items[0].data);
        if (parts == 1) {
            assert_non_null(res->items[0].size);
            assert_string_equal(res->items[0].size, "3000");
            sized = true;
        } else {
            assert_null(res->items[0].size);
        }
        assert_int_equal(res->items[0].more_data, !r->final);
        if (r->final)
            break;
        assert_true(parts < 10);
        char *next = t_strf("<Status><CmdID>1</CmdID><MsgRef>%s</MsgRef><CmdRef>0</CmdRef>"
                            "<Cmd>SyncHdr</Cmd><Data>200</Data></Status>"
                            "<Status><CmdID>2</CmdID><MsgRef>%s</MsgRef><CmdRef>%s</CmdRef>"
                            "<Cmd>Results</Cmd><Data>213</Data></Status>"
                            "<Alert><CmdID>3</CmdID><Data>1222</Data></Alert>",
                            r->msg_id, r->msg_id, res->cmd_id);
        assert_int_equal(send_hdr(f, "", next), OMADM_OK);
        free(next);
    }
    assert_true(sized);
    assert_true(parts >= 4);
    assert_string_equal(got, big);
}

/* A Results with many items (a ?list=StructData walk) spread over several
 * Results within the server's MaxMsgSize; one item too big is chunked. */
static void test_many_items_split(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    char val[201];
    memset(val, 'v', 200);
    val[200] = 0;
    char *body = t_strf("%s", HDR_STATUS("1", "200", ""));
    for (int i = 0; i < 10; i++) {
        char *more = t_strf("%s<Add><CmdID>%d</CmdID><Item><Target><LocURI>./Vendor/T/n%d</LocURI>"
                            "</Target><Data>%s%s</Data></Item></Add>",
                            body, 10 + i, i, val, i == 7 ? val : "");
        free(body);
        body = more;
    }
    char big[1601];
    memset(big, 'b', 1600);
    big[1600] = 0;
    char *more = t_strf("%s<Add><CmdID>30</CmdID><Item><Target><LocURI>./Vendor/T/zbig</LocURI>"
                        "</Target><Data>%s</Data></Item></Add>", body, big);
    free(body);
    assert_int_equal(send_hdr(f, "", more), OMADM_OK);
    free(more);
    assert_int_equal(send_hdr(f, "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1000</MaxMsgSize></Meta>",
                              HDR_STATUS("2", "200", "") T_GET("3", "./Vendor/T?list=StructData")),
                     OMADM_OK);
    char *joined = calloc(1, 20000);
    char last[64] = "";
    int parts = 0, results = 0;
    for (;;) {
        t_reply_t *r = &f->e.reply;
        assert_true(r->present);
        if (r->raw_len > 1000)
            fail_msg("part %d is %zu bytes:\n%s", parts + 1, r->raw_len, r->raw);
        parts++;
        for (size_t i = 0; i < r->n_cmds; i++) {
            const t_cmd_t *c = &r->cmds[i];
            if (strcmp(c->name, "Results") || strcmp(c->cmd_ref, "3"))
                continue;
            results++;
            for (size_t j = 0; j < c->n_items; j++) {
                const t_item_t *it = &c->items[j];
                /* chunks of one value repeat its Source: join them */
                if (it->source && strcmp(it->source, last)) {
                    snprintf(last, sizeof last, "%s", it->source);
                    strcat(joined, "|");
                    strcat(joined, it->source);
                    strcat(joined, "=");
                }
                if (it->data)
                    strcat(joined, it->data);
            }
        }
        if (r->final)
            break;
        assert_true(parts < 40);
        next_please(f, r->msg_id);
    }
    assert_true(results >= 3);
    /* every node once, in walk order, values whole */
    char *want = t_strf("|./Vendor/T=");
    for (int i = 0; i < 10; i++) {
        char *w = t_strf("%s|./Vendor/T/n%d=%s%s", want, i, val, i == 7 ? val : "");
        free(want);
        want = w;
    }
    char *w = t_strf("%s|./Vendor/T/zbig=%s", want, big);
    free(want);
    assert_string_equal(joined, w);
    free(w);
    free(joined);
}

/* A binary value too big for a message: base64 chunks that join into the
 * whole base64 text; Size counts the base64 characters. */
static void test_large_binary_results_out(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    uint8_t raw[3000];
    for (int i = 0; i < 3000; i++)
        raw[i] = (uint8_t)(i * 7 + 3);
    char *enc = b64(raw, sizeof raw);
    char *body = t_strf(HDR_STATUS("1", "200", "") T_ADD("2", "./Vendor/Bin", "b64", "%s"), enc);
    assert_int_equal(send_hdr(f, "", body), OMADM_OK);
    free(body);
    assert_int_equal(t_code(&f->e.reply, "2"), 200);
    assert_int_equal(send_hdr(f, "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1000</MaxMsgSize></Meta>",
                              HDR_STATUS("2", "200", "") T_GET("3", "./Vendor/Bin")),
                     OMADM_OK);
    char *got = calloc(1, 8000);
    int parts = 0;
    for (;;) {
        t_reply_t *r = &f->e.reply;
        assert_true(r->present);
        assert_true(r->raw_len <= 1000);
        parts++;
        const t_cmd_t *res = t_results(r, "3");
        assert_non_null(res);
        assert_string_equal(res->items[0].format, "b64");
        if (parts == 1)
            assert_string_equal(res->items[0].size, "4000");
        strcat(got, res->items[0].data);
        if (r->final)
            break;
        assert_true(parts < 40);
        next_please(f, r->msg_id);
    }
    assert_true(parts >= 4);
    assert_string_equal(got, enc); /* the joined base64 is the value's */
    free(got);
    free(enc);
}

/* The server's MaxObjSize: a value bigger than it is not sent (413). */
static void test_server_max_obj_size(void **state)
{
    fx_t *f = *state;
    begin(f, 0, NULL);
    char val[201];
    memset(val, 'x', 200);
    val[200] = 0;
    char *body = t_strf(HDR_STATUS("1", "200", "") T_ADD("2", "./Vendor/V", "chr", "%s"), val);
    assert_int_equal(send_hdr(f, "", body), OMADM_OK);
    free(body);
    assert_int_equal(send_hdr(f, "<Meta><MaxObjSize xmlns=\"syncml:metinf\">100</MaxObjSize></Meta>",
                              HDR_STATUS("2", "200", "") T_GET("3", "./Vendor/V")
                              T_GET("4", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "3"), 413);
    assert_null(t_results(&f->e.reply, "3"));
    assert_int_equal(t_code(&f->e.reply, "4"), 200);
    /* it stays in force in the next message of the session */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("3", "200", "") T_GET("5", "./Vendor/V")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "5"), 413);
}

static void test_generic_alerts(void **state)
{
    fx_t *f = *state;
    alerts_csp_t ac = {.queued = 1};
    assert_int_equal(omadm_register_csp(f->e.dm, &alerts_plugin, &ac), OMADM_OK);
    begin(f, 0, NULL);
    assert_int_equal(f->p1.n_cmds, 3);
    const t_cmd_t *a = &f->p1.cmds[2];
    assert_string_equal(a->name, "Alert");
    assert_string_equal(a->cmd_id, "3");
    assert_string_equal(a->data, "1226");
    assert_int_equal(a->n_items, 1);
    assert_string_equal(a->items[0].source, "./Vendor/Test/Job/Exec");
    assert_string_equal(a->items[0].type, "org.example.result");
    assert_string_equal(a->items[0].format, "int");
    assert_string_equal(a->items[0].data, "-5");
    assert_non_null(strstr(f->p1_raw, "<Mark xmlns=\"syncml:metinf\">critical</Mark>"));
    /* 500 for it: kept */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "")
                             "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef>"
                             "<Cmd>Alert</Cmd><Data>500</Data></Status>"),
                     OMADM_OK);
    assert_false(f->e.reply.present);
    assert_int_equal(ac.queued, 1);
    assert_int_equal(ac.delivered, 0);
    /* next session: 200 for it (a Status for another MsgRef does not count) */
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "")
                             "<Status><CmdID>2</CmdID><MsgRef>7</MsgRef><CmdRef>3</CmdRef>"
                             "<Cmd>Alert</Cmd><Data>200</Data></Status>" T_GET("3", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_int_equal(ac.delivered, 0);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "200", "")), OMADM_OK);
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "")
                             "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef>"
                             "<Cmd>Alert</Cmd><Data>202</Data></Status>"),
                     OMADM_OK);
    assert_int_equal(ac.delivered, 1);
    assert_int_equal(ac.queued, 0);
    begin(f, 0, NULL);
    assert_int_equal(f->p1.n_cmds, 2); /* nothing queued any more */
}

/* In a session a server message for another device (SyncHdr Target not
 * our DevId) is answered 404 / 215 and nothing of it counts: not its
 * commands, not its Status for our generic alert (the alert stays queued);
 * omadm_session_error() says why the session went wrong. */
static void test_message_for_another_device(void **state)
{
    fx_t *f = *state;
    alerts_csp_t ac = {.queued = 1};
    assert_int_equal(omadm_register_csp(f->e.dm, &alerts_plugin, &ac), OMADM_OK);
    begin(f, 0, NULL);
    assert_null(omadm_session_error(f->e.dm));
    char *m = t_strf("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                     "<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>"
                     "<Target><LocURI>dev-2</LocURI></Target>"
                     "<Source><LocURI>" SRV "</LocURI></Source></SyncHdr><SyncBody>"
                     HDR_STATUS("1", "200", "")
                     "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef>"
                     "<Cmd>Alert</Cmd><Data>200</Data></Status>"
                     T_ADD("3", "./X", "chr", "1") "<Final/></SyncBody></SyncML>",
                     f->e.session_id, f->e.msg_id++);
    assert_int_equal(t_send_raw(&f->e, m, strlen(m)), OMADM_OK);
    free(m);
    assert_true(f->e.reply.present);
    assert_int_equal(t_code(&f->e.reply, "0"), 404);
    assert_int_equal(t_code(&f->e.reply, "3"), 215);
    assert_string_equal(f->e.reply.source, "dev-1");
    assert_null(t_read(&f->e, "./X", NULL, NULL));
    assert_int_equal(ac.delivered, 0);
    assert_int_equal(ac.queued, 1);
    assert_non_null(omadm_session_error(f->e.dm));
    assert_non_null(strstr(omadm_session_error(f->e.dm), "another device"));
    /* the server's next message, for us, counts */
    assert_int_equal(send_hdr(f, "", HDR_STATUS("2", "200", "")
                             "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef>"
                             "<Cmd>Alert</Cmd><Data>200</Data></Status>"),
                     OMADM_OK);
    assert_int_equal(ac.delivered, 1);
    /* the next session starts without the error */
    begin(f, 0, NULL);
    assert_null(omadm_session_error(f->e.dm));
}

#define ALERT_STATUS(msgref, code)                                                       \
    "<Status><CmdID>2</CmdID><MsgRef>" msgref "</MsgRef><CmdRef>3</CmdRef>"                \
    "<Cmd>Alert</Cmd><Data>" code "</Data></Status>"

/* A Status code is three digits (100-599): anything else from the server
 * is ignored, so the alert it answers stays queued.  4294967496 is 200
 * modulo 2^32 and "1:0" is 200 when digits are not checked. */
static void test_status_code_bounds(void **state)
{
    fx_t *f = *state;
    alerts_csp_t ac = {.queued = 1};
    assert_int_equal(omadm_register_csp(f->e.dm, &alerts_plugin, &ac), OMADM_OK);
    static const char *const bad[] = {"4294967496", "1:0", "99999999999999999999", "-200",
                                      "2000", "20", "", "099", "600", "2 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        begin(f, 0, NULL);
        char *body = t_strf(HDR_STATUS("1", "200", "") ALERT_STATUS("1", "%s"), bad[i]);
        unsigned logs = f->e.alloc.logs;
        assert_int_equal(send_hdr(f, "", body), OMADM_OK);
        free(body);
        assert_false(f->e.reply.present);
        if (ac.delivered)
            fail_msg("Status code \"%s\" taken for a delivery", bad[i]);
        assert_int_equal(ac.queued, 1);
        assert_true(f->e.alloc.logs > logs); /* the host is told */
    }
    /* a malformed code on our SyncHdr accepts no credentials either */
    f->acc.client_auth = OMADM_AUTH_BASIC;
    f->acc.client_secret = "s";
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "4294967508", "") T_GET("2", "./DevInfo/DevId")),
                     OMADM_OK);
    assert_non_null(strstr(f->e.reply.raw, "<Cred>")); /* 4294967508 = 212 + 2^32 */
    /* surrounding whitespace is allowed */
    f->acc.client_auth = OMADM_AUTH_NONE;
    begin(f, 0, NULL);
    assert_int_equal(send_hdr(f, "", HDR_STATUS("1", "200", "") ALERT_STATUS("1", " 200\n")),
                     OMADM_OK);
    assert_int_equal(ac.delivered, 1);
    assert_int_equal(ac.queued, 0);
}

static void test_no_session_no_change(void **state)
{
    fx_t *f = *state;
    /* without omadm_session_begin the engine answers as before */
    assert_false(omadm_session_active(f->e.dm));
    assert_null(omadm_session_url(f->e.dm));
    char buf[64];
    assert_int_equal(omadm_session_hmac_sign(f->e.dm, (const uint8_t *)"x", 1, buf, sizeof buf),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(t_send(&f->e, true, T_GET("1", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "1"), 200);
    assert_int_equal(t_code(&f->e.reply, "0"), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_package1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resp_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_200_means_send_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_md5_nonce_across_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_challenges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_challenge_of_another_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_md5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmac_nonce_only_when_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_by_max_msg_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_object_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_object_needs_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_results_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_items_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_binary_results_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_max_obj_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generic_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_for_another_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_code_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_session_no_change, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
