/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_engine.c - commands end to end: XML messages built here go through
 * omadm_process() and the replies are read back with an independent
 * parser.  Covers the reply structure (SyncHdr status, CmdID numbering,
 * status order, Results after Status, per-item statuses, MsgID
 * progression, when no reply is due, Alert 1222 without Final), messages
 * for another device (SyncHdr Target: 404, nothing runs), every
 * DM command with its status codes (spec section 3 and the engine's
 * documented choices), properties, ?list=, and ACL enforcement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support_dm.h"
#include "support_store.h"

#define ROOT_ACL "Add=*&Delete=*&Exec=*&Get=*&Replace=*"

static int setup(void **state)
{
    t_env_t *e = calloc(1, sizeof *e);
    t_env_init(e);
    t_env_start(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    t_env_t *e = *state;
    t_env_done(e);
    free(e);
    return 0;
}

#define SEND(e, body) assert_int_equal(t_send((e), true, (body)), OMADM_OK)
#define CODE(e, ref) t_code(&(e)->reply, (ref))

/* The value of a node (must exist). */
static void assert_value(t_env_t *e, const char *uri, const char *want)
{
    size_t len = 0;
    char *v = t_read(e, uri, &len, NULL);
    if (!v)
        fail_msg("%s does not exist", uri);
    if (len != strlen(want) || memcmp(v, want, len))
        fail_msg("%s = \"%.*s\", want \"%s\"", uri, (int)len, v, want);
    free(v);
}

static void assert_absent(t_env_t *e, const char *uri)
{
    char *v = t_read(e, uri, NULL, NULL);
    if (v)
        fail_msg("%s exists (\"%s\")", uri, v);
}

/* Get uri and return the single Results item data (caller frees). */
static char *get_data(t_env_t *e, const char *uri)
{
    char *body = t_strf("<Get><CmdID>99</CmdID><Item><Target><LocURI>%s</LocURI></Target></Item></Get>",
                        uri);
    assert_int_equal(t_send(e, true, body), OMADM_OK);
    free(body);
    if (CODE(e, "99") != 200)
        fail_msg("Get %s answered %d", uri, CODE(e, "99"));
    const t_cmd_t *r = t_results(&e->reply, "99");
    assert_non_null(r);
    assert_int_equal(r->n_items, 1);
    return strdup(r->items[0].data ? r->items[0].data : "(no data)");
}

static void assert_get(t_env_t *e, const char *uri, const char *want)
{
    char *v = get_data(e, uri);
    if (strcmp(v, want))
        fail_msg("Get %s = \"%s\", want \"%s\"", uri, v, want);
    free(v);
}

/* ---- reply structure ----------------------------------------------------- */

static void test_reply_header_and_synchdr_status(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("1", "1201"));
    const t_reply_t *r = &e->reply;
    assert_true(r->present);
    assert_string_equal(r->ver_dtd, "1.2");
    assert_string_equal(r->ver_proto, "DM/1.2");
    assert_string_equal(r->session_id, "1");
    assert_string_equal(r->msg_id, "2");
    assert_string_equal(r->target, "https://srv.example/dm");
    assert_string_equal(r->source, "omadm-device");
    assert_string_equal(r->hdr_elems, "VerDTD VerProto SessionID MsgID Target Source");
    assert_true(r->final);
    assert_int_equal(r->n_cmds, 2);
    const t_cmd_t *s = &r->cmds[0];
    assert_string_equal(s->name, "Status");
    assert_string_equal(s->elems, "CmdID MsgRef CmdRef Cmd Data");
    assert_string_equal(s->cmd_id, "1");
    assert_string_equal(s->msg_ref, "1");
    assert_string_equal(s->cmd_ref, "0");
    assert_string_equal(s->cmd, "SyncHdr");
    assert_string_equal(s->data, "200");
    const t_cmd_t *a = &r->cmds[1];
    assert_string_equal(a->name, "Status");
    assert_string_equal(a->cmd_id, "2");
    assert_string_equal(a->msg_ref, "1");
    assert_string_equal(a->cmd_ref, "1");
    assert_string_equal(a->cmd, "Alert");
    assert_string_equal(a->data, "200");
    assert_string_equal(omadm_last_server(e->dm), "https://srv.example/dm");
}

static void test_msgid_progression(void **state)
{
    t_env_t *e = *state;
    for (int i = 0; i < 3; i++) {
        SEND(e, T_ALERT("1", "1201"));
        char want[8];
        snprintf(want, sizeof want, "%d", i + 2);
        assert_string_equal(e->reply.msg_id, want);
        snprintf(want, sizeof want, "%d", i + 1);
        assert_string_equal(e->reply.cmds[0].msg_ref, want); /* the server's MsgID */
    }
    /* a new SessionID starts a new session */
    strcpy(e->session_id, "2");
    e->msg_id = 1;
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.session_id, "2");
    assert_string_equal(e->reply.msg_id, "2");
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "3");
    /* another server, same SessionID: also a new session */
    strcpy(e->server, "https://other.example/dm");
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "2");
    assert_string_equal(e->reply.target, "https://other.example/dm");
}

static void test_status_order_and_cmdids(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./A", "chr", "a")
            T_GET("3", "./A")
            T_REPLACE("4", "./A", "chr", "b")
            T_GET("5", "./DevInfo/Man")
            T_DELETE("6", "./A")
            T_ALERT("7", "1201"));
    const t_reply_t *r = &e->reply;
    static const char *const want[][3] = {
        {"Status", "0", "SyncHdr"}, {"Status", "2", "Add"},    {"Status", "3", "Get"},
        {"Results", "3", NULL},     {"Status", "4", "Replace"}, {"Status", "5", "Get"},
        {"Results", "5", NULL},     {"Status", "6", "Delete"}, {"Status", "7", "Alert"},
    };
    assert_int_equal(r->n_cmds, 9);
    for (size_t i = 0; i < 9; i++) {
        char id[8];
        snprintf(id, sizeof id, "%zu", i + 1);
        assert_string_equal(r->cmds[i].name, want[i][0]);
        assert_string_equal(r->cmds[i].cmd_id, id);
        assert_string_equal(r->cmds[i].cmd_ref, want[i][1]);
        assert_string_equal(r->cmds[i].msg_ref, "1");
        if (want[i][2])
            assert_string_equal(r->cmds[i].cmd, want[i][2]);
        if (!strcmp(want[i][0], "Status"))
            assert_string_equal(r->cmds[i].data, "200");
    }
    assert_string_equal(r->cmds[3].items[0].data, "a");
    assert_string_equal(r->cmds[6].items[0].data, "omadm");
}

static void test_results_have_no_cmd_element(void **state)
{
    t_env_t *e = *state;
    /* SyncML 1.2 DTD: Results (CmdID, MsgRef?, CmdRef, Meta?, TargetRef*,
     * SourceRef*, Item+) - there is no Cmd in Results. */
    SEND(e, T_GET("2", "./DevInfo/Man"));
    const t_cmd_t *res = t_results(&e->reply, "2");
    assert_non_null(res);
    assert_string_equal(res->elems, "CmdID MsgRef CmdRef Item");
}

static void test_no_reply_for_status_only(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "2");
    SEND(e, T_STATUS("1", "0", "200") T_STATUS("2", "3", "200"));
    assert_false(e->reply.present);
    /* nothing to reply: that was the end of the session */
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "2");
}

static void test_no_reply_for_empty_final(void **state)
{
    t_env_t *e = *state;
    SEND(e, "");
    assert_false(e->reply.present);
}

static void test_no_reply_for_session_abort(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("1", "1201"));
    SEND(e, T_STATUS("1", "0", "200") T_ALERT("2", "1223"));
    assert_false(e->reply.present);
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "2");
}

static void test_no_final_asks_for_next_message(void **state)
{
    t_env_t *e = *state;
    assert_int_equal(t_send(e, false, T_ADD("2", "./A", "chr", "x") T_ADD("3", "./B", "chr", "y")),
                     OMADM_OK);
    const t_reply_t *r = &e->reply;
    assert_false(r->final);
    assert_null(strstr(r->raw, "Final"));
    assert_int_equal(r->n_cmds, 4);
    const t_cmd_t *last = &r->cmds[3];
    assert_string_equal(last->name, "Alert");
    assert_string_equal(last->cmd_id, "4");
    assert_string_equal(last->data, "1222");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    /* the next message with Final gets a Final reply without the 1222 */
    SEND(e, T_GET("1", "./A"));
    assert_true(e->reply.final);
    assert_string_equal(e->reply.cmds[e->reply.n_cmds - 1].name, "Results");
}

/* A message without Final is not the end of the server's package: even
 * with nothing but Status in it the client must ask for the next message
 * (spec section 4); only a complete package without commands ends the
 * session. */
static void test_no_final_status_only_still_asks_next(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("1", "1201"));
    assert_int_equal(t_send(e, false, T_STATUS("1", "0", "200")), OMADM_OK);
    assert_true(e->reply.present);
    assert_false(e->reply.final);
    assert_string_equal(e->reply.msg_id, "3");
    assert_int_equal(e->reply.n_cmds, 2);
    assert_string_equal(e->reply.cmds[0].cmd, "SyncHdr");
    assert_string_equal(e->reply.cmds[1].name, "Alert");
    assert_string_equal(e->reply.cmds[1].data, "1222");
}

static void test_session_survives_restart(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    SEND(&e, T_ALERT("1", "1201"));
    SEND(&e, T_ALERT("1", "1201"));
    assert_string_equal(e.reply.msg_id, "3");
    int next = e.msg_id;
    t_env_done(&e);

    t_env_init(&e);
    e.storage = &st.api;
    e.msg_id = next;
    t_env_start(&e);
    SEND(&e, T_ALERT("1", "1201"));
    assert_string_equal(e.reply.msg_id, "4");
    /* a session that ended is not continued */
    SEND(&e, T_STATUS("1", "0", "200"));
    assert_false(e.reply.present);
    t_env_done(&e);
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    SEND(&e, T_ALERT("1", "1201"));
    assert_string_equal(e.reply.msg_id, "2");
    t_env_done(&e);

    /* unreadable session counters only matter within a session: the
     * engine starts a new one rather than refusing to start */
    tstore_set(&st, "session", "garbage", 7);
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    SEND(&e, T_ALERT("1", "1201"));
    assert_string_equal(e.reply.msg_id, "2");
    t_env_done(&e);
    tstore_free(&st);
}

static void test_command_without_cmdid(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Get><Item>" T_TARGET("./DevInfo/Man") "</Item></Get>" T_GET("3", "./DevInfo/Mod"));
    const t_reply_t *r = &e->reply;
    assert_int_equal(r->n_cmds, 4);
    const t_cmd_t *s = &r->cmds[1];
    assert_string_equal(s->name, "Status");
    assert_string_equal(s->cmd_ref, "");
    assert_non_null(strstr(r->raw, "<CmdRef/>"));
    assert_string_equal(s->cmd, "Get");
    assert_string_equal(s->data, "400");
    assert_int_equal(CODE(e, "3"), 200);
    assert_null(t_results(r, ""));
}

static void test_unknown_and_non_dm_commands(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Sync><CmdID>2</CmdID></Sync><Frob><CmdID>3</CmdID></Frob>"
            "<Add><CmdID>4</CmdID><Bogus/>" "<Item>" T_TARGET("./X") "</Item></Add>");
    assert_int_equal(CODE(e, "2"), 406);
    assert_string_equal(t_status(&e->reply, "2")->cmd, "Sync");
    assert_int_equal(CODE(e, "3"), 400);
    assert_string_equal(t_status(&e->reply, "3")->cmd, "Frob");
    assert_int_equal(CODE(e, "4"), 400);
    assert_absent(e, "./X");
}

static void test_server_results_not_acknowledged(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Results><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>3</CmdRef>"
            "<Item>" T_SOURCE("./X") "<Data>1</Data></Item></Results>" T_ALERT("4", "1201"));
    assert_int_equal(t_status_count(&e->reply, "2"), 0);
    assert_int_equal(CODE(e, "4"), 200);
    assert_int_equal(e->reply.n_cmds, 2);
}

/* ---- the device a message is for ------------------------------------------ */

/* Send body to the device target (SyncHdr Target LocURI). */
static omadm_error_t send_to(t_env_t *e, const char *target, const char *body)
{
    char *msg = t_message_to(e->session_id, e->msg_id++, e->server, target, body, true);
    omadm_error_t err = t_send_raw(e, msg, strlen(msg));
    free(msg);
    return err;
}

/* A message whose SyncHdr Target is not our DevId is answered (SyncHdr
 * 404, the reply from our DevId) but nothing in it runs: every command
 * 215, an Atomic and its children 215, no Results, the tree unchanged; a
 * warning is logged.  The DevId must match exactly (case included).  The
 * next message for us runs as usual. */
static void test_message_for_another_device(void **state)
{
    t_env_t *e = *state;
    unsigned logs = e->alloc.logs;
    assert_int_equal(send_to(e, "other-device",
                             T_ADD("2", "./X", "chr", "1") T_GET("3", "./DevInfo/DevId")
                             "<Atomic><CmdID>4</CmdID>" T_ADD("5", "./Y", "chr", "1")
                             T_REPLACE("6", "./X", "chr", "2") "</Atomic>"
                             T_EXEC("7", "./X") T_ALERT("8", "1223") T_DELETE("9", "./DevInfo")),
                     OMADM_OK);
    const t_reply_t *r = &e->reply;
    assert_true(r->present);
    assert_string_equal(r->target, "https://srv.example/dm");
    assert_string_equal(r->source, "omadm-device");
    assert_int_equal(CODE(e, "0"), 404);
    assert_string_equal(t_status(r, "0")->cmd, "SyncHdr");
    static const char *const refs[] = {"2", "3", "4", "5", "6", "7", "8", "9"};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        if (CODE(e, refs[i]) != 215)
            fail_msg("command %s answered %d, want 215", refs[i], CODE(e, refs[i]));
    assert_int_equal(r->n_cmds, 9); /* the Statuses alone: no Results */
    assert_true(r->final);
    assert_absent(e, "./X");
    assert_absent(e, "./Y");
    assert_value(e, "./DevInfo/DevId", "omadm-device");
    assert_true(e->alloc.logs > logs);
    /* a case-insensitive match is not ours either */
    assert_int_equal(send_to(e, "OMADM-DEVICE", T_ADD("2", "./X", "chr", "1")), OMADM_OK);
    assert_int_equal(CODE(e, "0"), 404);
    assert_int_equal(CODE(e, "2"), 215);
    assert_absent(e, "./X");
    /* our own: runs (and the MsgIDs went on as for any message) */
    assert_int_equal(send_to(e, "omadm-device", T_ADD("2", "./X", "chr", "1")), OMADM_OK);
    assert_int_equal(CODE(e, "0"), 200);
    assert_int_equal(CODE(e, "2"), 200);
    assert_string_equal(e->reply.msg_id, "4");
    assert_value(e, "./X", "1");
    /* a message for another device without commands: no reply */
    assert_int_equal(send_to(e, "other-device", T_STATUS("2", "1", "200")), OMADM_OK);
    assert_false(e->reply.present);
}

/* The DevId a message must name is the configured one. */
static void test_message_for_configured_dev_id(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.dev_id = "IMEI:490154203237518";
    t_env_start(&e);
    assert_int_equal(send_to(&e, "omadm-device", T_ADD("2", "./X", "chr", "1")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "0"), 404);
    assert_int_equal(t_code(&e.reply, "2"), 215);
    assert_string_equal(e.reply.source, "IMEI:490154203237518");
    assert_int_equal(send_to(&e, "IMEI:490154203237518", T_ADD("2", "./X", "chr", "1")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "0"), 200);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    t_env_done(&e);
}

/* ---- Add ----------------------------------------------------------------- */

static void test_add_leaf_then_get(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Add><CmdID>2</CmdID><Item>" T_TARGET("./Cfg") T_META("node") "</Item>"
            "<Item>" T_TARGET("./Cfg/Url") T_META_FT("chr", "text/uri") "<Data>http://a/?x=1&amp;y=&lt;2&gt;</Data></Item></Add>"
            T_GET("3", "./Cfg/Url"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(t_status_count(&e->reply, "2"), 1);
    assert_int_equal(t_status(&e->reply, "2")->n_target_refs, 0);
    assert_int_equal(CODE(e, "3"), 200);
    const t_cmd_t *res = t_results(&e->reply, "3");
    assert_non_null(res);
    /* Results right after the Get's Status */
    assert_int_equal(t_index(&e->reply, res), t_index(&e->reply, t_status(&e->reply, "3")) + 1);
    assert_string_equal(res->msg_ref, "1");
    assert_int_equal(res->n_items, 1);
    assert_string_equal(res->items[0].source, "./Cfg/Url");
    assert_string_equal(res->items[0].format, "chr");
    assert_true(res->items[0].format_metinf);
    assert_string_equal(res->items[0].type, "text/uri");
    assert_string_equal(res->items[0].data, "http://a/?x=1&y=<2>");
    assert_value(e, "./Cfg/Url", "http://a/?x=1&y=<2>");
}

static void test_add_status_codes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./L", "chr", "leaf")
            T_ADD("3", "./DevInfo/X", "chr", "x")      /* DevInfo is read-only */
            T_ADD("4", "./DevInfo", "chr", "x")        /* exists */
            T_ADD("5", "./L", "chr", "again")          /* exists */
            T_ADD("6", "./L/x", "chr", "x")            /* parent is a leaf */
            T_ADD("7", "./L/x/y", "chr", "x")          /* deepest existing is a leaf */
            T_ADD("8", "./F", "foo", "x")              /* unknown format */
            T_ADD("9", "./A//B", "chr", "x")           /* bad URI */
            T_ADD("10", "/A", "chr", "x")
            T_ADD("11", "./A?prop=Title", "chr", "x")  /* Add on a property */
            T_ADD_NODE("12", "./Dir")
            T_ADD_NODE("13", "./Dir")
            T_ADD("14", ".", "chr", "x"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 405);
    assert_int_equal(CODE(e, "4"), 418);
    assert_int_equal(CODE(e, "5"), 418);
    assert_int_equal(CODE(e, "6"), 404);
    assert_int_equal(CODE(e, "7"), 404);
    assert_int_equal(CODE(e, "8"), 415);
    assert_int_equal(CODE(e, "9"), 400);
    assert_int_equal(CODE(e, "10"), 400);
    assert_int_equal(CODE(e, "11"), 405);
    assert_int_equal(CODE(e, "12"), 200);
    assert_int_equal(CODE(e, "13"), 418);
    assert_int_equal(CODE(e, "14"), 418);
    assert_value(e, "./L", "leaf");
    assert_absent(e, "./DevInfo/X");
    assert_absent(e, "./F");
}

static void test_add_format_validation(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./i1", "int", "-2147483648")
            T_ADD("3", "./i2", "int", "2147483648")
            T_ADD("4", "./i3", "int", "12a")
            T_ADD("5", "./i4", "int", "")
            T_ADD("6", "./b1", "bool", "true")
            T_ADD("7", "./b2", "bool", "yes")
            T_ADD("8", "./b3", "bool", "TRUE")
            T_ADD("9", "./f1", "float", "1.5e3")
            T_ADD("10", "./f2", "float", "one")
            T_ADD("11", "./d1", "date", "2024-02-29")
            T_ADD("12", "./d2", "date", "20240229")
            T_ADD("13", "./d3", "date", "2024/02/29")
            T_ADD("14", "./t1", "time", "12:30:05Z")
            T_ADD("15", "./t2", "time", "123005+01:00")
            T_ADD("16", "./t3", "time", "12h30")
            T_ADD("17", "./x1", "b64", "QUJD")
            T_ADD("18", "./x2", "b64", "!!notb64")
            T_ADD("19", "./x3", "b64", "QUJ")
            T_ADD("20", "./n1", "null", "ignored")
            T_ADD("21", "./i5", "int", " 42 ")
            T_ADD("22", "./c1", "xml", "&lt;a/&gt;")
            T_ADD("23", "./x4", "b64", "QUJD\nREVG\r\n"));
    static const struct {
        const char *ref;
        int code;
    } want[] = {
        {"2", 200},  {"3", 400},  {"4", 400},  {"5", 400},  {"6", 200},  {"7", 400},
        {"8", 400},  {"9", 200},  {"10", 400}, {"11", 200}, {"12", 200}, {"13", 400},
        {"14", 200}, {"15", 200}, {"16", 400}, {"17", 200}, {"18", 400}, {"19", 400},
        {"20", 200}, {"21", 200}, {"22", 200}, {"23", 200},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (CODE(e, want[i].ref) != want[i].code)
            fail_msg("Add CmdID %s: %d, want %d", want[i].ref, CODE(e, want[i].ref), want[i].code);
    assert_value(e, "./x1", "ABC");
    assert_value(e, "./n1", "");
    assert_value(e, "./i5", "42");
    assert_value(e, "./c1", "<a/>");
    assert_value(e, "./x4", "ABCDEF");
    assert_absent(e, "./i2");
    assert_get(e, "./x1?prop=Format", "bin");
    assert_get(e, "./x1?prop=Size", "3");
    assert_get(e, "./i1?prop=Format", "int");
}

static void test_add_implicit_parents(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./P/Q/R", "chr", "r"));
    assert_int_equal(CODE(e, "2"), 200);
    int interior = 0;
    char *v = t_read(e, "./P", NULL, &interior);
    assert_non_null(v);
    assert_true(interior);
    assert_string_equal(v, "Q");
    free(v);
    assert_value(e, "./P/Q/R", "r");
    /* implicit parents start with an empty ACL (the server has Replace on root) */
    assert_get(e, "./P?prop=ACL", "");
    assert_get(e, "./P/Q?prop=ACL", "");
    assert_get(e, "./P?prop=Format", "node");
}

static void test_add_interior_type_and_no_data_leaf(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Add><CmdID>2</CmdID><Item>" T_TARGET("./MO") T_META_FT("node", "urn:oma:mo:test:1.0")
            "</Item></Add>"
            "<Add><CmdID>3</CmdID><Item>" T_TARGET("./MO/Empty") "</Item></Add>"
            "<Add><CmdID>4</CmdID>" T_META("int") "<Item>" T_TARGET("./MO/N") "<Data>5</Data></Item>"
            "<Item>" T_TARGET("./MO/S") T_META("chr") "<Data>five</Data></Item></Add>");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    assert_int_equal(CODE(e, "4"), 200);
    assert_get(e, "./MO?prop=Type", "urn:oma:mo:test:1.0");
    assert_value(e, "./MO/Empty", "");
    assert_get(e, "./MO/Empty?prop=Format", "chr");
    /* command Meta applies to every item, item Meta overrides */
    assert_get(e, "./MO/N?prop=Format", "int");
    assert_get(e, "./MO/S?prop=Format", "chr");
}

static void test_add_object_too_large(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_obj_size = 8;
    t_env_start(&e);
    SEND(&e, T_ADD("2", "./A", "chr", "12345678") T_ADD("3", "./B", "chr", "123456789")
             T_ADD("4", "./C", "b64", "MTIzNDU2Nzg5"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 413);
    assert_int_equal(CODE(&e, "4"), 413);
    assert_absent(&e, "./B");
    t_env_done(&e);
}

static void test_add_uri_limits(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_seg_len = 9;
    e.cfg.max_uri_depth = 3;
    e.cfg.max_uri_len = 30;
    t_env_start(&e);
    SEND(&e, T_ADD("2", "./abcdefghi/x", "chr", "x")
             T_ADD("3", "./abcdefghij", "chr", "x")
             T_ADD("4", "./a/b/c/d", "chr", "x")
             T_ADD("5", "./abcdefghi/abcdefghi/abcdefgh", "chr", "x")
             T_ADD("6", "./abcdefghi/abcdefghi/abcdefghi", "chr", "x")
             T_GET("7", "./abcdefghij")
             T_ADD("8", "./abcdefghi/%41%42%43", "chr", "x"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 414); /* segment of 10 */
    assert_int_equal(CODE(&e, "4"), 414); /* depth 4 */
    assert_int_equal(CODE(&e, "5"), 200); /* 30 characters */
    assert_int_equal(CODE(&e, "6"), 414); /* 31 characters */
    assert_int_equal(CODE(&e, "7"), 414);
    assert_int_equal(CODE(&e, "8"), 200);
    assert_value(&e, "./abcdefghi/ABC", "x");
    /* the limits are visible in DevDetail */
    assert_value(&e, "./DevDetail/URI/MaxSegLen", "9");
    assert_value(&e, "./DevDetail/URI/MaxDepth", "3");
    assert_value(&e, "./DevDetail/URI/MaxTotLen", "30");
    t_env_done(&e);
}

static void test_add_device_full(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_nodes = 2; /* built-in nodes do not count */
    t_env_start(&e);
    SEND(&e, T_ADD("2", "./N1", "chr", "1") T_ADD("3", "./X/Y/Z", "chr", "z")
             T_ADD("4", "./N2", "chr", "2") T_ADD("5", "./N3", "chr", "3"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 420);
    assert_absent(&e, "./X"); /* the implicit parent went away with the failed item */
    assert_int_equal(CODE(&e, "4"), 200);
    assert_int_equal(CODE(&e, "5"), 420);
    t_env_done(&e);
}

static void test_names_case_insensitive(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./Abc", "chr", "1") T_ADD("3", "./ABC", "chr", "2")
            T_REPLACE("4", "./aBc", "chr", "3") T_GET("5", "./abc") T_GET("6", "./ABC?prop=Name"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 418);
    assert_int_equal(CODE(e, "4"), 200);
    assert_string_equal(t_results(&e->reply, "5")->items[0].source, "./abc");
    assert_string_equal(t_results(&e->reply, "5")->items[0].data, "3");
    assert_string_equal(t_results(&e->reply, "6")->items[0].data, "Abc");
}

static void test_per_item_statuses(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Add><CmdID>2</CmdID>"
            "<Item>" T_TARGET("./I1") "<Data>1</Data></Item>"
            "<Item>" T_TARGET("./DevInfo/I2") "<Data>2</Data></Item>"
            "<Item>" T_TARGET("./I3") "<Data>3</Data></Item></Add>");
    assert_int_equal(t_status_count(&e->reply, "2"), 3);
    const t_cmd_t *s = t_status_n(&e->reply, "2", 0);
    assert_string_equal(s->elems, "CmdID MsgRef CmdRef Cmd TargetRef Data");
    assert_int_equal(s->n_target_refs, 1);
    assert_string_equal(s->target_refs[0], "./I1");
    assert_int_equal(t_code_ref(&e->reply, "2", "./I1"), 200);
    assert_int_equal(t_code_ref(&e->reply, "2", "./DevInfo/I2"), 405);
    assert_int_equal(t_code_ref(&e->reply, "2", "./I3"), 200);
    /* statuses keep item order */
    assert_string_equal(t_status_n(&e->reply, "2", 1)->target_refs[0], "./DevInfo/I2");
    assert_string_equal(t_status_n(&e->reply, "2", 2)->target_refs[0], "./I3");
    assert_value(e, "./I1", "1");
    assert_value(e, "./I3", "3");
}

/* ---- Replace, Delete, Copy, Exec ----------------------------------------- */

static void test_replace_codes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD_NODE("2", "./R") T_ADD("3", "./R/v", "chr", "old") T_ADD("4", "./R/n", "int", "1"));
    SEND(e, T_REPLACE("2", "./R/v", "chr", "new")
            T_REPLACE("3", "./R/missing", "chr", "x")
            T_REPLACE("4", "./R", "chr", "x")              /* interior */
            T_REPLACE("5", "./DevInfo/DevId", "chr", "x")  /* read-only */
            T_REPLACE("6", "./R/n", "int", "x12")          /* bad value */
            T_REPLACE("7", "./R/n", "node", "")            /* leaf into node */
            T_REPLACE("8", "./R/n", "bogus", "1")
            T_REPLACE("9", "./R?list=Struct", "chr", "x")
            T_REPLACE("10", "./R/n", "b64", "AAE=")
            T_REPLACE("11", "./Q/x", "chr", "x"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 404);
    assert_int_equal(CODE(e, "4"), 405);
    assert_int_equal(CODE(e, "5"), 405);
    assert_int_equal(CODE(e, "6"), 400);
    assert_int_equal(CODE(e, "7"), 415);
    assert_int_equal(CODE(e, "8"), 415);
    assert_int_equal(CODE(e, "9"), 405);
    assert_int_equal(CODE(e, "10"), 200);
    assert_int_equal(CODE(e, "11"), 404);
    assert_absent(e, "./Q"); /* Replace never creates */
    assert_value(e, "./R/v", "new");
    assert_value(e, "./DevInfo/DevId", "omadm-device");
    /* the format follows the new value */
    assert_get(e, "./R/n?prop=Format", "bin");
    assert_get(e, "./R/n?prop=Size", "2");
}

static void test_delete_codes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./D/a/b", "chr", "b") T_ADD("3", "./D/c", "chr", "c") T_ADD("4", "./E", "chr", "e"));
    SEND(e, T_DELETE("2", "./D")
            T_DELETE("3", "./D/c")
            T_DELETE("4", ".")
            T_DELETE("5", "./DevInfo")
            T_DELETE("6", "./DevInfo/DevId")
            T_DELETE("7", "./DevDetail/URI")
            T_DELETE("8", "./E?prop=ACL")
            T_DELETE("9", "./E"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 404);  /* went with its parent */
    assert_int_equal(CODE(e, "4"), 405);
    assert_int_equal(CODE(e, "5"), 405);
    assert_int_equal(CODE(e, "6"), 405);
    assert_int_equal(CODE(e, "7"), 405);
    assert_int_equal(CODE(e, "8"), 405);
    assert_int_equal(CODE(e, "9"), 200);
    assert_absent(e, "./D");
    assert_absent(e, "./D/a/b");
    assert_absent(e, "./E");
    assert_value(e, "./DevInfo/DevId", "omadm-device");
    int interior = 0;
    char *v = t_read(e, ".", NULL, &interior);
    assert_string_equal(v, "DevInfo/DevDetail");
    free(v);
}

static void test_copy(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Add><CmdID>2</CmdID><Item>" T_TARGET("./C/src") T_META_FT("int", "text/x-num")
            "<Data>17</Data></Item></Add>" T_ADD("3", "./C/old", "chr", "old") T_ADD_NODE("4", "./C/dir"));
    SEND(e, T_COPY("2", "./C/src", "./C/new")
            T_COPY("3", "./C/src", "./C/old")
            T_COPY("4", "./C/none", "./C/x")
            T_COPY("5", "./C/src", "./C/dir")
            T_COPY("6", "./C/src", "./DevInfo/Man")
            T_COPY("7", "./C/src", "./C/deep/er/leaf")
            "<Copy><CmdID>8</CmdID><Item>" T_TARGET("./C/y") "</Item></Copy>");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    assert_int_equal(CODE(e, "4"), 404);
    assert_int_equal(CODE(e, "5"), 403);
    assert_int_equal(CODE(e, "6"), 403);
    assert_int_equal(CODE(e, "7"), 200);
    assert_int_equal(CODE(e, "8"), 412);
    assert_value(e, "./C/new", "17");
    assert_value(e, "./C/old", "17");
    assert_value(e, "./C/deep/er/leaf", "17");
    assert_value(e, "./C/src", "17");
    assert_value(e, "./DevInfo/Man", "omadm");
    assert_get(e, "./C/new?prop=Format", "int");
    assert_get(e, "./C/new?prop=Type", "text/x-num");
    assert_get(e, "./C/old?prop=Format", "int");
}

static void test_exec_on_engine_nodes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./X", "chr", "x"));
    SEND(e, T_EXEC("2", "./X") T_EXEC("3", "./Nope") T_EXEC("4", "./DevInfo")
            "<Exec><CmdID>5</CmdID></Exec>");
    assert_int_equal(CODE(e, "2"), 405);
    assert_int_equal(CODE(e, "3"), 404);
    assert_int_equal(CODE(e, "4"), 405);
    assert_int_equal(CODE(e, "5"), 412);
}

/* ---- Get ----------------------------------------------------------------- */

static void test_get_interior_and_empty_interior(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD_NODE("2", "./Empty"));
    SEND(e, T_GET("2", ".") T_GET("3", "./Empty") T_GET("4", "./DevDetail") T_GET("5", "./"));
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_non_null(r);
    assert_string_equal(r->items[0].source, ".");
    assert_string_equal(r->items[0].format, "node");
    assert_string_equal(r->items[0].data, "DevInfo/DevDetail/Empty");
    r = t_results(&e->reply, "3");
    assert_int_equal(CODE(e, "3"), 200);
    assert_string_equal(r->items[0].format, "node");
    assert_non_null(r->items[0].data);
    assert_string_equal(r->items[0].data, "");
    assert_non_null(strstr(e->reply.raw, "<Source><LocURI>./Empty</LocURI></Source><Meta>"
                                         "<Format xmlns=\"syncml:metinf\">node</Format></Meta><Data/>"));
    r = t_results(&e->reply, "4");
    assert_string_equal(r->items[0].data, "URI/DevTyp/OEM/FwV/SwV/HwV/LrgObj/Ext");
    assert_string_equal(r->items[0].type, "org.openmobilealliance/1.0/DevDetail");
    assert_string_equal(t_results(&e->reply, "5")->items[0].data, "DevInfo/DevDetail/Empty");
}

static void test_get_missing_and_mixed_items(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_GET("2", "./Nope")
            "<Get><CmdID>3</CmdID><Item>" T_TARGET("./DevInfo/Man") "</Item>"
            "<Item>" T_TARGET("./DevInfo/Nope") "</Item><Item>" T_TARGET("devinfo/lang") "</Item></Get>"
            "<Get><CmdID>4</CmdID></Get>");
    assert_int_equal(CODE(e, "2"), 404);
    assert_null(t_results(&e->reply, "2"));
    assert_int_equal(t_status_count(&e->reply, "3"), 3);
    assert_int_equal(t_code_ref(&e->reply, "3", "./DevInfo/Man"), 200);
    assert_int_equal(t_code_ref(&e->reply, "3", "./DevInfo/Nope"), 404);
    assert_int_equal(t_code_ref(&e->reply, "3", "devinfo/lang"), 200);
    const t_cmd_t *r = t_results(&e->reply, "3");
    assert_non_null(r);
    /* the Results come after all of the Get's statuses */
    assert_int_equal(t_index(&e->reply, r), t_index(&e->reply, t_status_n(&e->reply, "3", 2)) + 1);
    assert_int_equal(r->n_items, 2);
    assert_string_equal(r->items[0].source, "./DevInfo/Man");
    assert_string_equal(r->items[0].data, "omadm");
    assert_string_equal(r->items[1].source, "devinfo/lang"); /* the server's spelling */
    assert_string_equal(r->items[1].data, "en-US");
    assert_int_equal(CODE(e, "4"), 412);
}

static void test_get_binary_value_as_b64(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./Bin", "b64", "AAEC/w==") T_GET("3", "./Bin"));
    assert_int_equal(CODE(e, "2"), 200);
    const t_cmd_t *r = t_results(&e->reply, "3");
    assert_string_equal(r->items[0].format, "b64");
    assert_string_equal(r->items[0].data, "AAEC/w==");
    size_t len = 0;
    char *v = t_read(e, "./Bin", &len, NULL);
    assert_int_equal(len, 4);
    assert_memory_equal(v, "\x00\x01\x02\xff", 4);
    free(v);
}

static void test_values_keep_cr_and_markup(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./T", "chr", "a&#13;\nb &lt;c&gt; &amp;") T_GET("3", "./T"));
    assert_value(e, "./T", "a\r\nb <c> &");
    assert_string_equal(t_results(&e->reply, "3")->items[0].data, "a\r\nb <c> &");
    assert_non_null(strstr(e->reply.raw, "<Data>a&#13;\nb &lt;c&gt; &amp;</Data>"));
}

/* ---- Alert --------------------------------------------------------------- */

static void test_alert_codes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("2", "1200") T_ALERT("3", "1201") T_ALERT("4", "1222")
            "<Alert><CmdID>5</CmdID></Alert>"
            T_ALERT("6", "1299") T_ALERT("7", "abc") T_ALERT("8", "1100")
            T_ALERT("9", "1226") T_ALERT("10", " 1201 "));
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    assert_int_equal(CODE(e, "4"), 200);
    assert_int_equal(CODE(e, "5"), 412);
    assert_int_equal(CODE(e, "6"), 406);
    assert_int_equal(CODE(e, "7"), 400);
    assert_int_equal(CODE(e, "8"), 406); /* no UI callback */
    assert_int_equal(CODE(e, "9"), 406); /* Generic Alert is client to server only */
    assert_int_equal(CODE(e, "10"), 200);
}

/* ---- Atomic and Sequence ------------------------------------------------- */

static void test_atomic_success(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./Keep", "chr", "k"));
    SEND(e, "<Atomic><CmdID>2</CmdID>" T_ADD_NODE("3", "./At") T_ADD("4", "./At/x", "chr", "x")
            T_REPLACE("5", "./Keep", "chr", "k2") T_COPY("6", "./At/x", "./At/y")
            T_ALERT("7", "1201") "</Atomic>" T_GET("8", "./At"));
    const t_reply_t *r = &e->reply;
    static const char *const order[] = {"0", "2", "3", "4", "5", "6", "7", "8"};
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(r->cmds[i].name, "Status");
        assert_string_equal(r->cmds[i].cmd_ref, order[i]);
        assert_string_equal(r->cmds[i].data, "200");
    }
    assert_string_equal(r->cmds[1].cmd, "Atomic");
    assert_string_equal(t_results(r, "8")->items[0].data, "x/y");
    assert_value(e, "./Keep", "k2");
}

static void test_atomic_failure_rolls_back(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./Keep", "chr", "k") T_ADD("3", "./Gone/leaf", "chr", "g"));
    SEND(e, "<Replace><CmdID>2</CmdID><Item>" T_TARGET("./Keep?prop=Title") "<Data>t0</Data></Item></Replace>");
    SEND(e, "<Atomic><CmdID>2</CmdID>"
            T_ADD("3", "./New/a", "chr", "a")
            T_REPLACE("4", "./Keep", "int", "5")
            T_DELETE("5", "./Gone")
            "<Replace><CmdID>6</CmdID><Item>" T_TARGET("./Keep?prop=Title") "<Data>t1</Data></Item></Replace>"
            "<Replace><CmdID>7</CmdID><Item>" T_TARGET("./Keep?prop=Name") "<Data>Kept</Data></Item></Replace>"
            T_ADD("8", "./DevInfo/X", "chr", "x")
            T_ADD("9", "./After", "chr", "x")
            "</Atomic>");
    assert_int_equal(CODE(e, "2"), 507);
    assert_int_equal(CODE(e, "3"), 216);
    assert_int_equal(CODE(e, "4"), 216);
    assert_int_equal(CODE(e, "5"), 216);
    assert_int_equal(CODE(e, "6"), 216);
    assert_int_equal(CODE(e, "7"), 216);
    assert_int_equal(CODE(e, "8"), 405);
    assert_int_equal(CODE(e, "9"), 215);
    assert_absent(e, "./New");
    assert_absent(e, "./After");
    assert_absent(e, "./Kept");
    assert_value(e, "./Keep", "k");
    assert_value(e, "./Gone/leaf", "g");
    assert_get(e, "./Keep?prop=Format", "chr");
    assert_get(e, "./Keep?prop=Title", "t0");
    assert_get(e, "./Keep?prop=VerNo", "1");
}

static void test_atomic_with_get_fails(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Atomic><CmdID>2</CmdID>" T_ADD("3", "./T", "chr", "t") T_GET("4", "./T")
            T_ADD("5", "./U", "chr", "u") "</Atomic>");
    assert_int_equal(CODE(e, "2"), 507);
    assert_int_equal(CODE(e, "3"), 216);
    assert_int_equal(CODE(e, "4"), 500);
    assert_int_equal(CODE(e, "5"), 215);
    assert_null(t_results(&e->reply, "4"));
    assert_absent(e, "./T");
    assert_absent(e, "./U");
}

static void test_nested_atomic(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Atomic><CmdID>2</CmdID>" T_ADD("3", "./T", "chr", "t")
            "<Atomic><CmdID>4</CmdID>" T_ADD("5", "./U", "chr", "u") "</Atomic>"
            T_ADD("6", "./V", "chr", "v") "</Atomic>");
    assert_int_equal(CODE(e, "2"), 507);
    assert_int_equal(CODE(e, "3"), 216);
    assert_int_equal(CODE(e, "4"), 500);
    assert_int_equal(CODE(e, "6"), 215);
    assert_absent(e, "./T");
    assert_absent(e, "./U");
    assert_absent(e, "./V");
}

/* Every command gets a Status (spec section 2), including those inside a
 * refused nested Atomic (as for an Atomic refused for lacking a CmdID). */
static void test_nested_atomic_children_get_status(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Atomic><CmdID>2</CmdID>" T_ADD("3", "./T", "chr", "t")
            "<Atomic><CmdID>4</CmdID>" T_ADD("5", "./U", "chr", "u") "</Atomic></Atomic>");
    assert_int_equal(CODE(e, "4"), 500);
    assert_int_equal(CODE(e, "5"), 215);
}

static void test_atomic_without_cmdid(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Atomic>" T_ADD("3", "./T", "chr", "t") T_ADD("4", "./U", "chr", "u") "</Atomic>"
            T_ALERT("5", "1201"));
    const t_reply_t *r = &e->reply;
    assert_int_equal(r->n_cmds, 5);
    assert_string_equal(r->cmds[1].cmd, "Atomic");
    assert_string_equal(r->cmds[1].cmd_ref, "");
    assert_string_equal(r->cmds[1].data, "400");
    assert_int_equal(CODE(e, "3"), 215);
    assert_int_equal(CODE(e, "4"), 215);
    assert_int_equal(CODE(e, "5"), 200);
    assert_absent(e, "./T");
    assert_absent(e, "./U");
}

static void test_sequence(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Sequence><CmdID>2</CmdID>" T_ADD("3", "./S", "chr", "1") T_GET("4", "./S")
            T_REPLACE("5", "./Missing", "chr", "x") T_REPLACE("6", "./S", "chr", "2")
            T_GET("7", "./S") "</Sequence>");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    assert_int_equal(CODE(e, "4"), 200);
    assert_int_equal(CODE(e, "5"), 404);
    assert_int_equal(CODE(e, "6"), 200);
    assert_int_equal(CODE(e, "7"), 200);
    /* strictly in order: the first Get saw the first value */
    assert_string_equal(t_results(&e->reply, "4")->items[0].data, "1");
    assert_string_equal(t_results(&e->reply, "7")->items[0].data, "2");
    assert_string_equal(e->reply.cmds[1].cmd, "Sequence");
    assert_string_equal(e->reply.cmds[1].cmd_ref, "2");
}

static void test_atomic_inside_sequence(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Sequence><CmdID>2</CmdID>" T_ADD("3", "./A", "chr", "a")
            "<Atomic><CmdID>4</CmdID>" T_ADD("5", "./B", "chr", "b") T_ADD("6", "./DevInfo/X", "chr", "x")
            "</Atomic>" T_ADD("7", "./C", "chr", "c") "</Sequence>");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 200);
    assert_int_equal(CODE(e, "4"), 507);
    assert_int_equal(CODE(e, "5"), 216);
    assert_int_equal(CODE(e, "6"), 405);
    assert_int_equal(CODE(e, "7"), 200);
    assert_value(e, "./A", "a");
    assert_absent(e, "./B");
    assert_value(e, "./C", "c");
}

static void test_status_inside_sequence_is_an_error(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Sequence><CmdID>2</CmdID>" T_STATUS("3", "1", "200") "</Sequence>");
    assert_int_equal(CODE(e, "2"), 200);
    assert_int_equal(CODE(e, "3"), 400);
}

/* ---- properties ---------------------------------------------------------- */

static void test_get_properties(void **state)
{
    t_env_t *e = *state;
    SEND(e, "<Add><CmdID>2</CmdID><Item>" T_TARGET("./P") T_META_FT("chr", "text/x-p")
            "<Data>hello</Data></Item></Add>" T_ADD_NODE("3", "./Dir"));
    static const struct {
        const char *uri, *value;
    } props[] = {
        {"./P?prop=ACL", ""},
        {"./P?prop=Format", "chr"},
        {"./P?prop=Type", "text/x-p"},
        {"./P?prop=Size", "5"},
        {"./P?prop=Name", "P"},
        {"./P?prop=Title", ""},
        {"./P?prop=TStamp", T_NOW_TSTAMP},
        {".?prop=ACL", ROOT_ACL},
        {".?prop=Format", "node"},
        {"./?prop=Name", "."},
        {"./Dir?prop=Format", "node"},
        {"./Dir?prop=Type", ""},
        {"./DevInfo?prop=Type", "org.openmobilealliance/1.0/DevInfo"},
        {"./DevInfo/DevId?prop=Type", "text/plain"},
        {"./DevDetail/LrgObj?prop=Format", "bool"},
        {"./devinfo/devid?prop=Name", "DevId"},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        char *v = get_data(e, props[i].uri);
        if (strcmp(v, props[i].value))
            fail_msg("Get %s = \"%s\", want \"%s\"", props[i].uri, v, props[i].value);
        free(v);
    }
    SEND(e, T_GET("2", "./P?prop=Format"));
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_string_equal(r->items[0].source, "./P?prop=Format");
    assert_string_equal(r->items[0].format, "chr");
    SEND(e, T_GET("2", "./P?prop=Bogus") T_GET("3", "./Dir?prop=Size") T_GET("4", "./None?prop=ACL")
            T_GET("5", "./P?prop=acl"));
    assert_int_equal(CODE(e, "2"), 406);
    assert_int_equal(CODE(e, "3"), 406);
    assert_int_equal(CODE(e, "4"), 404);
    assert_int_equal(CODE(e, "5"), 406);
    assert_null(t_results(&e->reply, "2"));
}

static void test_verno_and_tstamp_follow_changes(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./V", "chr", "1"));
    char *v0 = get_data(e, "./V?prop=VerNo");
    e->alloc.now = T_NOW + 86400 + 3661; /* 2001-07-12T17:39:18Z */
    SEND(e, T_REPLACE("2", "./V", "chr", "2"));
    char *v1 = get_data(e, "./V?prop=VerNo");
    assert_int_equal(atoi(v1), atoi(v0) + 1);
    assert_get(e, "./V?prop=TStamp", "20010712T173918Z");
    SEND(e, T_REPLACE("2", "./V", "chr", "3"));
    char *v2 = get_data(e, "./V?prop=VerNo");
    assert_int_equal(atoi(v2), atoi(v0) + 2);
    free(v2);
    free(v0);
    free(v1);
}

static void test_replace_properties(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD_NODE("2", "./Q") T_ADD("3", "./Q/a", "chr", "a") T_ADD("4", "./Q/b", "chr", "b"));
    SEND(e, T_REPLACE_PROP("3", "./Q/a?prop=ACL", "Get=")
            T_REPLACE_PROP("4", "./Q/a?prop=Title", "My title")
            T_REPLACE_PROP("5", "./Q/a?prop=Name", "c")
            T_REPLACE_PROP("6", "./Q/b?prop=Name", "C")            /* sibling clash */
            T_REPLACE_PROP("7", "./DevInfo?prop=Name", "X")        /* permanent */
            T_REPLACE_PROP("8", "./Q/b?prop=Format", "int")
            T_REPLACE_PROP("9", "./Q/b?prop=Size", "9")
            T_REPLACE_PROP("10", "./Q/b?prop=Bogus", "x")
            T_REPLACE_PROP("11", "./Q/none?prop=ACL", "Get=*")
            T_REPLACE_PROP("12", ".?prop=ACL", "")                 /* root needs an ACL */
            T_REPLACE_PROP("13", "./Q/b?prop=TStamp", "x")
            T_REPLACE_PROP("14", "./Q/b?prop=Name", "d/e")
            T_REPLACE_PROP("15", "./Q/b?prop=Type", "text/x")
            T_REPLACE_PROP("16", "./Q?prop=ACL", "Get=*&amp;Replace=srv1+srv2"));
    assert_int_equal(CODE(e, "3"), 400);
    assert_int_equal(CODE(e, "4"), 200);
    assert_int_equal(CODE(e, "5"), 200);
    assert_int_equal(CODE(e, "6"), 418);
    assert_int_equal(CODE(e, "7"), 405);
    assert_int_equal(CODE(e, "8"), 405);
    assert_int_equal(CODE(e, "9"), 405);
    assert_int_equal(CODE(e, "10"), 406);
    assert_int_equal(CODE(e, "11"), 404);
    assert_int_equal(CODE(e, "12"), 400);
    assert_int_equal(CODE(e, "13"), 405);
    assert_int_equal(CODE(e, "14"), 400);
    assert_int_equal(CODE(e, "15"), 405);
    assert_int_equal(CODE(e, "16"), 200);
    assert_get(e, "./Q?prop=ACL", "Get=*&Replace=srv1+srv2");
    assert_get(e, "./Q/c?prop=Title", "My title");
    assert_value(e, "./Q/c", "a");
    assert_absent(e, "./Q/a");
    assert_value(e, "./Q/b", "b");
    assert_get(e, ".?prop=ACL", ROOT_ACL);
    int interior = 0;
    char *v = t_read(e, "./Q", NULL, &interior);
    assert_string_equal(v, "c/b");
    free(v);
}

/* ---- ?list= -------------------------------------------------------------- */

static void build_list_tree(t_env_t *e)
{
    SEND(e, T_ADD_NODE("2", "./S") T_ADD("3", "./S/a", "chr", "A")
            "<Add><CmdID>4</CmdID><Item>" T_TARGET("./S/b") T_META_FT("node", "urn:b") "</Item></Add>"
            T_ADD("5", "./S/b/c", "int", "3") T_ADD("6", "./S/b/d e", "chr", "D"));
}

static void test_list_struct(void **state)
{
    t_env_t *e = *state;
    build_list_tree(e);
    SEND(e, T_GET("2", "./S?list=Struct"));
    assert_int_equal(CODE(e, "2"), 200);
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_non_null(r);
    static const char *const src[] = {"./S", "./S/a", "./S/b", "./S/b/c", "./S/b/d%20e"};
    static const char *const fmt[] = {"node", "chr", "node", "int", "chr"};
    assert_int_equal(r->n_items, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(r->items[i].source, src[i]);
        assert_string_equal(r->items[i].format, fmt[i]);
        assert_null(r->items[i].data);
    }
    assert_string_equal(r->items[2].type, "urn:b");
}

static void test_list_struct_data(void **state)
{
    t_env_t *e = *state;
    build_list_tree(e);
    SEND(e, T_GET("2", "./S?list=StructData") T_GET("3", "./S/a?list=StructData"));
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_non_null(r);
    assert_int_equal(r->n_items, 5);
    assert_null(r->items[0].data);
    assert_string_equal(r->items[1].data, "A");
    assert_null(r->items[2].data);
    assert_string_equal(r->items[3].data, "3");
    assert_string_equal(r->items[4].data, "D");
    r = t_results(&e->reply, "3");
    assert_int_equal(r->n_items, 1);
    assert_string_equal(r->items[0].source, "./S/a");
    assert_string_equal(r->items[0].data, "A");
}

static void test_list_unsupported_and_missing(void **state)
{
    t_env_t *e = *state;
    build_list_tree(e);
    SEND(e, T_GET("2", "./S?list=TNDS") T_GET("3", "./S?list=TNDS+Value")
            T_GET("4", "./S?list=Bogus") T_GET("5", "./Nope?list=Struct"));
    assert_int_equal(CODE(e, "2"), 406);
    assert_int_equal(CODE(e, "3"), 406);
    assert_int_equal(CODE(e, "4"), 406);
    assert_int_equal(CODE(e, "5"), 404);
    assert_null(t_results(&e->reply, "2"));
}

static void test_list_leaves_out_unreadable(void **state)
{
    t_env_t *e = *state;
    build_list_tree(e);
    SEND(e, T_REPLACE_PROP("2", "./S/b?prop=ACL", "Get=someone-else&amp;Replace=*"));
    assert_int_equal(CODE(e, "2"), 200);
    SEND(e, T_GET("2", "./S?list=StructData"));
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_int_equal(r->n_items, 2);
    assert_string_equal(r->items[0].source, "./S");
    assert_string_equal(r->items[1].source, "./S/a");
}

/* ---- ACLs ---------------------------------------------------------------- */

static void start_with_root_acl(t_env_t *e, const char *acl, const char *server_id)
{
    t_env_init(e);
    e->cfg.root_acl = acl;
    e->cfg.server_id = server_id;
    t_env_start(e);
}

static void test_acl_denial_by_synchdr_source(void **state)
{
    (void)state;
    t_env_t e;
    start_with_root_acl(&e, "Add=*&Get=*&Replace=srvA&Delete=srvA", NULL);
    strcpy(e.server, "srvB");
    SEND(&e, T_ADD("2", "./N", "chr", "n") T_REPLACE("3", "./N", "chr", "x") T_DELETE("4", "./N")
             T_GET("5", "./N"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 425);
    assert_int_equal(CODE(&e, "4"), 425);
    assert_int_equal(CODE(&e, "5"), 200);
    assert_value(&e, "./N", "n");
    strcpy(e.server, "srvA");
    SEND(&e, T_REPLACE("3", "./N", "chr", "x"));
    assert_int_equal(CODE(&e, "3"), 200);
    assert_value(&e, "./N", "x");
    SEND(&e, T_DELETE("4", "./N"));
    assert_int_equal(CODE(&e, "4"), 200);
    t_env_done(&e);
}

static void test_acl_denial_by_configured_server_id(void **state)
{
    (void)state;
    t_env_t e;
    start_with_root_acl(&e, "Add=srvA&Get=srvA", "srvA");
    strcpy(e.server, "srvB"); /* the SyncHdr Source does not matter */
    SEND(&e, T_ADD("2", "./N", "chr", "n") T_GET("3", "./N") T_REPLACE("4", "./N", "chr", "x"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 200);
    assert_int_equal(CODE(&e, "4"), 425);
    t_env_done(&e);

    start_with_root_acl(&e, "Add=srvA&Get=srvA", "srvC");
    strcpy(e.server, "srvA");
    SEND(&e, T_ADD("2", "./N", "chr", "n") T_GET("3", "./DevInfo/Man"));
    assert_int_equal(CODE(&e, "2"), 425);
    assert_int_equal(CODE(&e, "3"), 425);
    assert_null(t_results(&e.reply, "3"));
    assert_absent(&e, "./N");
    t_env_done(&e);
}

static void test_acl_per_node_and_inheritance(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./Own/leaf", "chr", "v") T_ADD("3", "./Own/sub/x", "chr", "x"));
    SEND(e, T_REPLACE_PROP("2", "./Own?prop=ACL", "Get=other&amp;Add=*&amp;Replace=*&amp;Delete=other"));
    assert_int_equal(CODE(e, "2"), 200);
    /* children inherit the nearest ACL */
    SEND(e, T_GET("2", "./Own/leaf") T_GET("3", "./Own/sub/x") T_DELETE("4", "./Own/sub")
            T_ADD("5", "./Own/new", "chr", "n") T_REPLACE("6", "./Own/leaf", "chr", "w")
            T_GET("8", "./Own?prop=ACL") T_GET("9", "./Own/leaf?prop=ACL"));
    assert_int_equal(CODE(e, "2"), 425);
    assert_int_equal(CODE(e, "3"), 425);
    assert_int_equal(CODE(e, "4"), 425);
    assert_int_equal(CODE(e, "5"), 200);
    assert_int_equal(CODE(e, "6"), 200);
    assert_int_equal(CODE(e, "8"), 425);
    assert_int_equal(CODE(e, "9"), 425);
    /* a node's own ACL overrides */
    SEND(e, T_REPLACE_PROP("2", "./Own/leaf?prop=ACL", "Get=*"));
    assert_int_equal(CODE(e, "2"), 200);
    assert_get(e, "./Own/leaf", "w");
    assert_get(e, "./Own/leaf?prop=ACL", "Get=*");
}

static void test_acl_change_rights(void **state)
{
    (void)state;
    t_env_t e;
    start_with_root_acl(&e, "Add=*&Get=*&Replace=srvA", NULL);
    strcpy(e.server, "srvA");
    SEND(&e, T_ADD_NODE("2", "./I") T_ADD("3", "./I/leaf", "chr", "v")
             T_REPLACE_PROP("4", "./I?prop=ACL", "Get=*&amp;Add=*&amp;Replace=srvB"));
    assert_int_equal(CODE(&e, "4"), 200);
    /* leaf ACL: needs Replace on the parent (./I grants srvB only) */
    SEND(&e, T_REPLACE_PROP("2", "./I/leaf?prop=ACL", "Get=*"));
    assert_int_equal(CODE(&e, "2"), 425);
    strcpy(e.server, "srvB");
    SEND(&e, T_REPLACE_PROP("2", "./I/leaf?prop=ACL", "Get=*"));
    assert_int_equal(CODE(&e, "2"), 200);
    /* interior ACL: needs Replace on the node itself */
    SEND(&e, T_REPLACE_PROP("3", "./I?prop=ACL", "Get=*&amp;Replace=srvB+srvC"));
    assert_int_equal(CODE(&e, "3"), 200);
    strcpy(e.server, "srvD");
    SEND(&e, T_REPLACE_PROP("4", "./I?prop=ACL", "Get=*") T_REPLACE_PROP("5", "./I?prop=Title", "t")
             T_REPLACE_PROP("6", "./I/leaf?prop=Name", "x"));
    assert_int_equal(CODE(&e, "4"), 425);
    assert_int_equal(CODE(&e, "5"), 425);
    assert_int_equal(CODE(&e, "6"), 425);
    t_env_done(&e);
}

/* No ACL change may leave a node whose ACL no server can change again:
 * the root's must keep Replace for the server making the change (or for
 * everyone); an interior node's ACL in force afterwards (its own, or the
 * inherited one when emptied) must grant Replace to some server.  Such a
 * change is refused with 400, as the empty root ACL always was. */
static void test_acl_lockout_refused(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    SEND(&e, T_REPLACE_PROP("2", ".?prop=ACL", "Get=nobody")
             T_REPLACE_PROP("3", ".?prop=ACL", "Add=*&amp;Delete=*&amp;Exec=*&amp;Get=*")
             T_REPLACE_PROP("4", ".?prop=ACL", "Get=*&amp;Replace=nobody")
             T_REPLACE_PROP("5", ".?prop=ACL", "")
             T_ADD("6", "./After", "chr", "a"));
    assert_int_equal(CODE(&e, "2"), 400);
    assert_int_equal(CODE(&e, "3"), 400);
    assert_int_equal(CODE(&e, "4"), 400);
    assert_int_equal(CODE(&e, "5"), 400);
    assert_int_equal(CODE(&e, "6"), 200); /* the tree is still managed */
    assert_get(&e, ".?prop=ACL", ROOT_ACL);
    /* keeping Replace for itself (by id, or for everyone) is fine */
    SEND(&e, T_REPLACE_PROP("2", ".?prop=ACL", "Get=*&amp;Add=*&amp;Replace=https://srv.example/dm")
             T_REPLACE_PROP("3", ".?prop=ACL", "Get=*&amp;Add=*&amp;Replace=*"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 200);
    SEND(&e, T_REPLACE_PROP("2", ".?prop=ACL",
                            "Add=*&amp;Delete=*&amp;Exec=*&amp;Get=*&amp;Replace=*"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_get(&e, ".?prop=ACL", ROOT_ACL);
    /* an interior node: some server must keep Replace; handing it over to
     * another server is the server's call; a leaf follows its parent */
    SEND(&e, T_ADD("2", "./I/leaf", "chr", "v")
             T_REPLACE_PROP("3", "./I?prop=ACL", "Get=*")
             T_REPLACE_PROP("4", "./I?prop=ACL", "Get=*&amp;Add=*")
             T_REPLACE_PROP("5", "./I/leaf?prop=ACL", "Get=*")
             T_REPLACE_PROP("6", "./I?prop=ACL", "Get=*&amp;Replace=other"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 400);
    assert_int_equal(CODE(&e, "4"), 400);
    assert_int_equal(CODE(&e, "5"), 200);
    assert_int_equal(CODE(&e, "6"), 200);
    strcpy(e.server, "other");
    SEND(&e, T_REPLACE_PROP("2", "./I?prop=ACL", "")); /* back to the root's */
    assert_int_equal(CODE(&e, "2"), 200);
    t_env_done(&e);

    /* emptying an interior ACL under a root that grants no Replace */
    start_with_root_acl(&e, "Add=*&Get=*", NULL);
    strcpy(e.server, "srvB");
    SEND(&e, T_ADD_NODE("2", "./Box") T_REPLACE_PROP("3", "./Box?prop=ACL", "")
             T_REPLACE_PROP("4", "./Box?prop=ACL", "Get=*&amp;Replace=srvB")
             T_REPLACE_PROP("5", ".?prop=ACL", "Get=*&amp;Replace=*"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 400);
    assert_int_equal(CODE(&e, "4"), 200);
    assert_int_equal(CODE(&e, "5"), 425); /* the root's own ACL grants no Replace */
    assert_get(&e, "./Box?prop=ACL", "Get=*&Replace=srvB");
    t_env_done(&e);
}

static void test_auto_acl_for_interior_nodes(void **state)
{
    (void)state;
    t_env_t e;
    start_with_root_acl(&e, "Add=*&Get=*", NULL);
    strcpy(e.server, "srvB");
    SEND(&e, T_ADD_NODE("2", "./Box") T_ADD("3", "./Leaf", "chr", "l") T_ADD("4", "./Box2/Sub/x", "chr", "x"));
    assert_int_equal(CODE(&e, "2"), 200);
    assert_int_equal(CODE(&e, "3"), 200);
    assert_int_equal(CODE(&e, "4"), 200);
    /* the creating server gets Add, Delete and Replace (and Get) of its own */
    assert_get(&e, "./Box?prop=ACL", "Add=srvB&Delete=srvB&Get=srvB&Replace=srvB");
    assert_get(&e, "./Box2?prop=ACL", "Add=srvB&Delete=srvB&Get=srvB&Replace=srvB");
    /* below a node where it has Replace, and for leaves: empty (inherit) */
    assert_get(&e, "./Box2/Sub?prop=ACL", "");
    assert_get(&e, "./Leaf?prop=ACL", "");
    /* so it can manage what it made, another server cannot */
    SEND(&e, T_DELETE("2", "./Box"));
    assert_int_equal(CODE(&e, "2"), 200);
    strcpy(e.server, "srvC");
    SEND(&e, T_DELETE("2", "./Box2") T_GET("3", "./Box2/Sub/x"));
    assert_int_equal(CODE(&e, "2"), 425);
    assert_int_equal(CODE(&e, "3"), 425);
    t_env_done(&e);

    /* a server with Replace on the parent gets no ACL of its own */
    t_env_init(&e);
    t_env_start(&e);
    SEND(&e, T_ADD_NODE("2", "./Box"));
    assert_get(&e, "./Box?prop=ACL", "");
    t_env_done(&e);
}

/* ---- API level ----------------------------------------------------------- */

static void test_refused_messages(void **state)
{
    t_env_t *e = *state;
    const char *junk = "this is not xml";
    assert_int_equal(t_send_raw(e, junk, strlen(junk)), OMADM_E_NOT_SYNCML);
    assert_false(e->reply.present);
    assert_non_null(omadm_last_error_detail(e->dm));
    const char *nohdr = "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncBody><Final/></SyncBody></SyncML>";
    assert_int_equal(t_send_raw(e, nohdr, strlen(nohdr)), OMADM_E_MALFORMED);
    const char *ent = "<!DOCTYPE SyncML [<!ENTITY a \"b\">]><SyncML/>";
    assert_int_equal(t_send_raw(e, ent, strlen(ent)), OMADM_E_NOT_SYNCML);
    assert_int_equal(t_send_raw(e, "", 0), OMADM_E_NOT_SYNCML);
    /* the engine still works */
    SEND(e, T_ALERT("1", "1201"));
    assert_int_equal(CODE(e, "1"), 200);
}

static void test_message_too_large(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_msg_size = 200;
    t_env_start(&e);
    assert_int_equal(t_send(&e, true, T_ADD("2", "./A", "chr", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
                     OMADM_E_TOO_LARGE);
    assert_absent(&e, "./A");
    t_env_done(&e);
}

static void test_invalid_arguments(void **state)
{
    t_env_t *e = *state;
    uint8_t *out = (uint8_t *)"x";
    size_t len = 5;
    assert_int_equal(omadm_process(NULL, (const uint8_t *)"x", 1, &out, &len), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_process(e->dm, NULL, 3, &out, &len), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_process(e->dm, (const uint8_t *)"x", 1, NULL, &len), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_process(e->dm, (const uint8_t *)"x", 1, &out, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_new(NULL, NULL, NULL, NULL), OMADM_E_INVALID_ARG);
    char *v = NULL;
    int in = 0;
    assert_int_equal(omadm_tree_read(e->dm, NULL, &v, &len, &in), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_tree_read(e->dm, "./A//B", &v, &len, &in), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_tree_read(e->dm, "./Nope", &v, &len, &in), OMADM_E_NOT_FOUND);
    assert_int_equal(omadm_register_csp(e->dm, NULL, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_end_session(NULL), OMADM_E_INVALID_ARG);
    assert_null(omadm_last_error_detail(NULL));
    assert_null(omadm_last_server(NULL));
    omadm_free(NULL);
}

static void test_tree_read(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ADD("2", "./A/b c", "chr", "v") T_ADD("3", "./A/d", "chr", "w"));
    char *v = NULL;
    size_t len = 0;
    int interior = -1;
    assert_int_equal(omadm_tree_read(e->dm, "./A", &v, &len, &interior), OMADM_OK);
    assert_int_equal(interior, 1);
    assert_string_equal(v, "b%20c/d");
    assert_int_equal(len, 7);
    omadm_buffer_free(e->dm, v);
    assert_int_equal(omadm_tree_read(e->dm, "A/b%20c", &v, &len, &interior), OMADM_OK);
    assert_int_equal(interior, 0);
    assert_string_equal(v, "v");
    assert_int_equal(len, 1);
    omadm_buffer_free(e->dm, v);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int i = 0; i < OMADM_E__COUNT; i++) {
        const char *s = omadm_strerror((omadm_error_t)i);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(omadm_strerror(OMADM_OK), "success");
    assert_string_equal(omadm_strerror(OMADM_E__COUNT), "unknown error");
    assert_string_equal(omadm_strerror((omadm_error_t)-1), "unknown error");
}

static void test_end_session_restarts_msgid(void **state)
{
    t_env_t *e = *state;
    SEND(e, T_ALERT("1", "1201"));
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "3");
    assert_int_equal(omadm_end_session(e->dm), OMADM_OK);
    SEND(e, T_ALERT("1", "1201"));
    assert_string_equal(e->reply.msg_id, "2");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_reply_header_and_synchdr_status),
        T(test_msgid_progression),
        T(test_status_order_and_cmdids),
        T(test_results_have_no_cmd_element),
        T(test_no_reply_for_status_only),
        T(test_no_reply_for_empty_final),
        T(test_no_reply_for_session_abort),
        T(test_no_final_asks_for_next_message),
        T(test_no_final_status_only_still_asks_next),
        cmocka_unit_test(test_session_survives_restart),
        T(test_command_without_cmdid),
        T(test_unknown_and_non_dm_commands),
        T(test_server_results_not_acknowledged),
        T(test_message_for_another_device),
        cmocka_unit_test(test_message_for_configured_dev_id),
        T(test_add_leaf_then_get),
        T(test_add_status_codes),
        T(test_add_format_validation),
        T(test_add_implicit_parents),
        T(test_add_interior_type_and_no_data_leaf),
        cmocka_unit_test(test_add_object_too_large),
        cmocka_unit_test(test_add_uri_limits),
        cmocka_unit_test(test_add_device_full),
        T(test_names_case_insensitive),
        T(test_per_item_statuses),
        T(test_replace_codes),
        T(test_delete_codes),
        T(test_copy),
        T(test_exec_on_engine_nodes),
        T(test_get_interior_and_empty_interior),
        T(test_get_missing_and_mixed_items),
        T(test_get_binary_value_as_b64),
        T(test_values_keep_cr_and_markup),
        T(test_alert_codes),
        T(test_atomic_success),
        T(test_atomic_failure_rolls_back),
        T(test_atomic_with_get_fails),
        T(test_nested_atomic),
        T(test_nested_atomic_children_get_status),
        T(test_atomic_without_cmdid),
        T(test_sequence),
        T(test_atomic_inside_sequence),
        T(test_status_inside_sequence_is_an_error),
        T(test_get_properties),
        T(test_verno_and_tstamp_follow_changes),
        T(test_replace_properties),
        T(test_list_struct),
        T(test_list_struct_data),
        T(test_list_unsupported_and_missing),
        T(test_list_leaves_out_unreadable),
        cmocka_unit_test(test_acl_denial_by_synchdr_source),
        cmocka_unit_test(test_acl_denial_by_configured_server_id),
        T(test_acl_per_node_and_inheritance),
        cmocka_unit_test(test_acl_change_rights),
        cmocka_unit_test(test_acl_lockout_refused),
        cmocka_unit_test(test_auto_acl_for_interior_nodes),
        T(test_refused_messages),
        cmocka_unit_test(test_message_too_large),
        T(test_invalid_arguments),
        T(test_tree_read),
        cmocka_unit_test(test_strerror),
        T(test_end_session_restarts_msgid),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
