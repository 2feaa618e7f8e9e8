/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_csp.c - the CSP plugin API through omadm_process(): routing by
 * base (case-insensitive, two bases sharing one plugin's data), what the
 * handlers are told, child lists and ?list= into plugins, Exec, the
 * transaction hooks (per command, and across the engine tree and two
 * plugins inside Atomic: commit, rollback, validate failure, rollback
 * failure -> 516), end_message, unset handlers and bad handler results.
 *
 * Plugin A ("test") is mounted at ./Vendor/Test and ./Device/Vendor/Test
 * and starts with Dir/ (interior), Dir/Leaf = "v1", Top = "t".
 * Plugin B ("other") is mounted at ./Vendor/Other with X = "x".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support_csp.h"
#include "support_dm.h"

typedef struct fixture {
    t_env_t env;
    tcsp_t a, b;
} fixture_t;

static void seed(fixture_t *f)
{
    tcsp_init(&f->a, "test", "./Vendor/Test", "./Device/Vendor/Test");
    tcsp_mkdir(&f->a, "Dir");
    tcsp_put(&f->a, "Dir/Leaf", "v1");
    tcsp_put(&f->a, "Top", "t");
    tcsp_init(&f->b, "other", "./Vendor/Other", NULL);
    tcsp_put(&f->b, "X", "x");
}

static void start(fixture_t *f)
{
    t_env_start(&f->env);
    assert_int_equal(omadm_register_csp(f->env.dm, &f->a.table, &f->a), OMADM_OK);
    assert_int_equal(omadm_register_csp(f->env.dm, &f->b.table, &f->b), OMADM_OK);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    t_env_init(&f->env);
    seed(f);
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    t_env_done(&f->env);
    /* every write happened inside a transaction, and none was left open */
    assert_int_equal(f->a.writes_outside_tx, 0);
    assert_int_equal(f->b.writes_outside_tx, 0);
    assert_false(f->a.in_tx);
    assert_false(f->b.in_tx);
    tcsp_free(&f->a);
    tcsp_free(&f->b);
    free(f);
    return 0;
}

#define SEND(f, body) assert_int_equal(t_send(&(f)->env, true, (body)), OMADM_OK)
#define CODE(f, ref) t_code(&(f)->env.reply, (ref))
#define RESULTS(f, ref) t_results(&(f)->env.reply, (ref))

static void reset(fixture_t *f)
{
    tcsp_reset_counters(&f->a);
    tcsp_reset_counters(&f->b);
}

/* ---- routing ------------------------------------------------------------- */

static void test_routing_by_base(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(RESULTS(f, "2")->items[0].data, "t");
    assert_string_equal(RESULTS(f, "2")->items[0].format, "chr");
    assert_string_equal(f->a.last_path, "Top");
    assert_string_equal(f->a.last_base, "./Vendor/Test");
    assert_string_equal(f->a.last_uri, "./Vendor/Test/Top");
    assert_string_equal(f->a.last_server, "https://srv.example/dm");
    assert_int_equal(f->b.calls[TCSP_GET], 0);

    SEND(f, T_GET("2", "./Vendor/Other/X"));
    assert_string_equal(RESULTS(f, "2")->items[0].data, "x");
    assert_string_equal(f->b.last_path, "X");
    assert_string_equal(f->b.last_base, "./Vendor/Other");
    assert_int_equal(f->a.calls[TCSP_GET], 1);

    /* the second base reaches the same data */
    SEND(f, T_GET("2", "./Device/Vendor/Test/Dir/Leaf"));
    assert_string_equal(RESULTS(f, "2")->items[0].data, "v1");
    assert_string_equal(f->a.last_path, "Dir/Leaf");
    assert_string_equal(f->a.last_base, "./Device/Vendor/Test");

    /* beside the mounts: engine nodes, missing */
    SEND(f, T_GET("2", "./Vendor/Nope") T_GET("3", "./Vendor/Test/Nope"));
    assert_int_equal(CODE(f, "2"), 404);
    assert_int_equal(CODE(f, "3"), 404);
    assert_string_equal(f->a.last_path, "Nope");
    /* the nodes a mount creates on the way are the device's own: they
     * cannot go, but servers may add their own nodes beside a CSP */
    SEND(f, T_ADD("2", "./Vendor/Mine", "chr", "m") T_DELETE("3", "./Vendor")
            T_DELETE("4", "./Device"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(CODE(f, "3"), 405);
    assert_int_equal(CODE(f, "4"), 405);
}

static void test_case_insensitive_base(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "./VENDOR/test/Top") T_GET("3", "./device/VENDOR/TeSt/Dir"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(RESULTS(f, "2")->items[0].source, "./VENDOR/test/Top");
    assert_string_equal(RESULTS(f, "2")->items[0].data, "t");
    assert_int_equal(CODE(f, "3"), 200);
    assert_string_equal(RESULTS(f, "3")->items[0].source, "./device/VENDOR/TeSt/Dir");
    assert_string_equal(RESULTS(f, "3")->items[0].data, "Leaf");
    assert_string_equal(f->a.last_path, "Dir");
    assert_string_equal(f->a.last_base, "./Device/Vendor/Test");
    /* below the base the plugin decides (this one is case-sensitive) */
    SEND(f, T_GET("2", "./Vendor/Test/TOP"));
    assert_int_equal(CODE(f, "2"), 404);
    assert_string_equal(f->a.last_path, "TOP");
}

/* omadm.h: req->uri is "the full URI, normalised, server's spelling". */
static void test_request_uri_normalised(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(f->a.last_path, "Top");
    assert_string_equal(f->a.last_uri, "./Vendor/Test/Top");
    SEND(f, T_GET("2", "vendor/test/Top"));
    assert_string_equal(f->a.last_uri, "./vendor/test/Top");
}

static void test_path_passed_to_handlers(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_ADD("2", "./Vendor/Test/Dir/a%20b", "chr", "sp"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(f->a.last_path, "Dir/a b");
    assert_string_equal(tcsp_value(&f->a, "Dir/a b"), "sp");
    SEND(f, T_REPLACE("2", "./Vendor/Test/Dir/Leaf", "int", "12"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(f->a.last_path, "Dir/Leaf");
    assert_string_equal(f->a.last_format, "int");
    assert_string_equal(tcsp_value(&f->a, "Dir/Leaf"), "12");
    SEND(f, T_DELETE("2", "./Device/Vendor/Test/Dir/a%20b"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(f->a.last_path, "Dir/a b");
    assert_false(tcsp_exists(&f->a, "Dir/a b"));
    SEND(f, T_EXEC("2", "./Vendor/Test/Top"));
    assert_string_equal(f->a.last_path, "Top");
    SEND(f, T_GET("2", "./Vendor/Test"));
    assert_string_equal(f->a.last_path, "");
    assert_string_equal(f->a.last_base, "./Vendor/Test");
}

static void test_values_passed_as_sent(void **state)
{
    fixture_t *f = *state;
    SEND(f, "<Add><CmdID>2</CmdID><Item>" T_TARGET("./Vendor/Test/B64")
            T_META_FT("b64", "application/x-cert") "<Data>AAEC</Data></Item></Add>"
            T_ADD_NODE("3", "./Vendor/Test/Node"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(CODE(f, "3"), 200);
    /* plugins see the wire format and bytes */
    assert_string_equal(tcsp_value(&f->a, "B64"), "AAEC");
    assert_int_equal(f->a.nodes.v[f->a.nodes.n - 2].len, 4);
    assert_string_equal(f->a.nodes.v[f->a.nodes.n - 2].format, "b64");
    assert_string_equal(f->a.nodes.v[f->a.nodes.n - 2].type, "application/x-cert");
    assert_true(f->a.nodes.v[f->a.nodes.n - 1].interior);
    assert_string_equal(f->a.last_format, "node");
}

static void test_handler_sees_configured_server_id(void **state)
{
    (void)state;
    fixture_t f;
    memset(&f, 0, sizeof f);
    t_env_init(&f.env);
    f.env.cfg.server_id = "ServerOne";
    seed(&f);
    start(&f);
    SEND(&f, T_GET("2", "./Vendor/Test/Top"));
    assert_string_equal(f.a.last_server, "ServerOne");
    t_env_done(&f.env);
    tcsp_free(&f.a);
    tcsp_free(&f.b);
}

/* ---- reading interior nodes ---------------------------------------------- */

static void test_get_interior_lists_children(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "./Vendor/Test") T_GET("3", "./Vendor/Test/Dir") T_GET("4", "./Vendor")
            T_GET("5", "."));
    const t_cmd_t *r = RESULTS(f, "2");
    assert_string_equal(r->items[0].format, "node");
    assert_string_equal(r->items[0].type, "urn:test:csp");
    assert_string_equal(r->items[0].data, "Dir/Top");
    assert_string_equal(RESULTS(f, "3")->items[0].data, "Leaf");
    assert_string_equal(RESULTS(f, "4")->items[0].data, "Test/Other");
    assert_string_equal(RESULTS(f, "5")->items[0].data, "DevInfo/DevDetail/Vendor/Device");
    assert_int_equal(f->a.calls[TCSP_LIST], 2);
}

static void test_list_struct_data_walks_into_plugins(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "./Vendor?list=StructData") T_GET("3", "./Vendor/Test?list=Struct"));
    assert_int_equal(CODE(f, "2"), 200);
    const t_cmd_t *r = RESULTS(f, "2");
    static const char *const src[] = {"./Vendor", "./Vendor/Test", "./Vendor/Test/Dir",
                                      "./Vendor/Test/Dir/Leaf", "./Vendor/Test/Top",
                                      "./Vendor/Other", "./Vendor/Other/X"};
    static const char *const data[] = {NULL, NULL, NULL, "v1", "t", NULL, "x"};
    assert_int_equal(r->n_items, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(r->items[i].source, src[i]);
        if (data[i])
            assert_string_equal(r->items[i].data, data[i]);
        else
            assert_null(r->items[i].data);
    }
    assert_string_equal(r->items[3].format, "chr");
    assert_string_equal(r->items[2].format, "node");
    r = RESULTS(f, "3");
    assert_int_equal(r->n_items, 4);
    assert_string_equal(r->items[3].source, "./Vendor/Test/Top");
    assert_null(r->items[3].data);
}

static void test_plugin_properties(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_GET("2", "./Vendor/Test/Top?prop=Format") T_GET("3", "./Vendor/Test/Top?prop=Name")
            T_GET("4", "./Vendor/Test/Top?prop=Size") T_GET("5", "./Vendor/Test/Top?prop=ACL")
            T_GET("6", "./Vendor/Test/Top?prop=TStamp") T_GET("7", "./Vendor/Test/Dir?prop=Format")
            T_GET("8", "./Vendor/Test/Nope?prop=Format") T_GET("9", "./Vendor/Test?prop=Name"));
    assert_string_equal(RESULTS(f, "2")->items[0].data, "chr");
    assert_string_equal(RESULTS(f, "3")->items[0].data, "Top");
    assert_string_equal(RESULTS(f, "4")->items[0].data, "1");
    assert_string_equal(RESULTS(f, "5")->items[0].data, "");
    assert_int_equal(CODE(f, "6"), 406);
    assert_string_equal(RESULTS(f, "7")->items[0].data, "node");
    assert_int_equal(CODE(f, "8"), 404);
    assert_string_equal(RESULTS(f, "9")->items[0].data, "Test");
    SEND(f, T_REPLACE_PROP("2", "./Vendor/Test/Top?prop=Name", "New")
            T_REPLACE_PROP("3", "./Vendor/Test/Top?prop=Title", "t")
            T_REPLACE_PROP("4", "./Vendor/Test/Nope?prop=Title", "t"));
    assert_int_equal(CODE(f, "2"), 405);
    assert_int_equal(CODE(f, "3"), 405);
    assert_int_equal(CODE(f, "4"), 404);
    assert_true(tcsp_exists(&f->a, "Top"));
}

static void test_acl_on_mount_point_applies_to_plugin(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_REPLACE_PROP("2", "./Vendor/Test?prop=ACL", "Get=someone&amp;Replace=*"));
    assert_int_equal(CODE(f, "2"), 200);
    reset(f);
    SEND(f, T_GET("2", "./Vendor/Test/Top") T_ADD("3", "./Vendor/Test/New", "chr", "n")
            T_REPLACE("4", "./Vendor/Test/Top", "chr", "r") T_EXEC("5", "./Vendor/Test/Top")
            T_DELETE("6", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 425);
    assert_int_equal(CODE(f, "3"), 425);
    assert_int_equal(CODE(f, "4"), 200);
    assert_int_equal(CODE(f, "5"), 425);
    assert_int_equal(CODE(f, "6"), 425);
    assert_int_equal(f->a.calls[TCSP_GET], 0);
    assert_int_equal(f->a.calls[TCSP_ADD], 0);
    assert_int_equal(f->a.calls[TCSP_EXEC], 0);
    assert_int_equal(f->a.calls[TCSP_DEL], 0);
    assert_false(tcsp_exists(&f->a, "New"));
    /* the other base of the same plugin has its own mount point */
    SEND(f, T_GET("2", "./Device/Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(RESULTS(f, "2")->items[0].data, "r");
}

/* Whatever bytes a plugin hands back, the XML reply must stay a document
 * an XML parser accepts (XML 1.0 has no representation for most control
 * characters, even as character references, nor for invalid UTF-8): the
 * whole session depends on it. */
static void test_unencodable_values_keep_reply_well_formed(void **state)
{
    fixture_t *f = *state;
    tcsp_put(&f->a, "Ctl", "a\x01b\x1f");
    tcsp_put(&f->a, "Utf", "\xff\xfe ok");
    omadm_error_t err = t_send(&f->env, true, T_GET("2", "./Vendor/Test/Ctl") T_GET("3", "./Vendor/Test/Utf"));
    /* t_send fails the test when the reply does not parse */
    assert_int_equal(err, OMADM_OK);
    assert_true(f->env.reply.present);
}

/* ---- Exec ---------------------------------------------------------------- */

static void test_exec_argument_and_correlator(void **state)
{
    fixture_t *f = *state;
    SEND(f, "<Exec><CmdID>2</CmdID><Correlator>corr-77</Correlator><Item>" T_TARGET("./Vendor/Test/Top")
            T_META_FT("chr", "text/plain") "<Data>go &amp; run</Data></Item></Exec>");
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->a.calls[TCSP_EXEC], 1);
    assert_true(f->a.exec_has_arg);
    assert_int_equal(f->a.exec_arg_len, 8);
    assert_memory_equal(f->a.exec_arg, "go & run", 8);
    assert_string_equal(f->a.exec_format, "chr");
    assert_string_equal(f->a.exec_type, "text/plain");
    assert_true(f->a.exec_has_correlator);
    assert_string_equal(f->a.exec_correlator, "corr-77");
    assert_string_equal(f->a.trace, "begin exec validate commit end");

    SEND(f, T_EXEC("2", "./Vendor/Test/Dir"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_false(f->a.exec_has_arg);
    assert_false(f->a.exec_has_correlator);
    assert_string_equal(f->a.last_path, "Dir");
}

static void test_exec_results(void **state)
{
    fixture_t *f = *state;
    f->a.exec_result = 202;
    SEND(f, T_EXEC("2", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 202);
    f->a.exec_result = -404;
    SEND(f, T_EXEC("2", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 404);
    f->a.exec_result = 7;
    SEND(f, T_EXEC("2", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 500);
    f->a.exec_result = 304; /* positive but not 2xx */
    SEND(f, T_EXEC("2", "./Vendor/Test/Top"));
    assert_int_equal(CODE(f, "2"), 500);
    f->a.exec_result = 0;
    SEND(f, T_EXEC("2", "./Vendor/Test/Missing") T_EXEC("3", "./Vendor/Test/Top?prop=ACL"));
    assert_int_equal(CODE(f, "2"), 404);
    assert_int_equal(CODE(f, "3"), 405);
}

/* ---- status codes from handlers ------------------------------------------ */

static void test_handler_errors_become_statuses(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_ADD("2", "./Vendor/Test/Top", "chr", "dup")
            T_ADD("3", "./Vendor/Test", "chr", "x")          /* the base itself exists */
            T_DELETE("4", "./Vendor/Test")                   /* the base cannot go */
            T_DELETE("5", "./Vendor")                        /* nor what holds it */
            T_REPLACE("6", "./Vendor/Test/Dir", "chr", "x")
            T_ADD("7", "./Vendor/Test/No/Parent", "chr", "x")
            T_REPLACE("8", "./Vendor/Test/Missing", "chr", "x"));
    assert_int_equal(CODE(f, "2"), 418);
    assert_int_equal(CODE(f, "3"), 418);
    assert_int_equal(CODE(f, "4"), 405);
    assert_int_equal(CODE(f, "5"), 405);
    assert_int_equal(CODE(f, "6"), 405);
    assert_int_equal(CODE(f, "7"), 404);
    assert_int_equal(CODE(f, "8"), 404);
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");

    static const struct {
        int rc, status;
    } map[] = {{-404, 404}, {-500, 500}, {-403, 403}, {7, 500}, {-7, 500}, {-99, 500}, {-600, 500},
               {1, 500}};
    f->a.fail_path = "Top";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        f->a.fail_code = map[i].rc;
        SEND(f, T_GET("2", "./Vendor/Test/Top") T_REPLACE("3", "./Vendor/Test/Top", "chr", "x")
                T_DELETE("4", "./Vendor/Test/Top") T_EXEC("5", "./Vendor/Test/Top"));
        for (int k = 2; k <= 5; k++) {
            char ref[4];
            snprintf(ref, sizeof ref, "%d", k);
            if (CODE(f, ref) != map[i].status)
                fail_msg("handler result %d, CmdID %s: %d, want %d", map[i].rc, ref, CODE(f, ref),
                         map[i].status);
        }
        assert_null(RESULTS(f, "2"));
    }
    f->a.fail_path = NULL;
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
}

static void test_unset_handlers(void **state)
{
    (void)state;
    fixture_t f;
    memset(&f, 0, sizeof f);
    t_env_init(&f.env);
    seed(&f);
    /* A: only get; B: nothing at all */
    f.a.table.list = NULL;
    f.a.table.add = NULL;
    f.a.table.replace = NULL;
    f.a.table.del = NULL;
    f.a.table.exec = NULL;
    f.a.table.begin = NULL;
    f.a.table.validate = NULL;
    f.a.table.commit = NULL;
    f.a.table.rollback = NULL;
    f.a.table.end_message = NULL;
    omadm_csp_t bare = {.name = "bare", .bases = f.b.bases};
    t_env_start(&f.env);
    assert_int_equal(omadm_register_csp(f.env.dm, &f.a.table, &f.a), OMADM_OK);
    assert_int_equal(omadm_register_csp(f.env.dm, &bare, &f.b), OMADM_OK);
    SEND(&f, T_GET("2", "./Vendor/Test/Top") T_GET("3", "./Vendor/Test/Dir")
             T_ADD("4", "./Vendor/Test/New", "chr", "n") T_REPLACE("5", "./Vendor/Test/Top", "chr", "r")
             T_DELETE("6", "./Vendor/Test/Top") T_EXEC("7", "./Vendor/Test/Top")
             T_GET("8", "./Vendor/Other/X") T_ADD("9", "./Vendor/Other/Y", "chr", "y")
             "<Atomic><CmdID>10</CmdID>" T_ADD("11", "./Vendor/Other/Z", "chr", "z") "</Atomic>");
    assert_int_equal(CODE(&f, "2"), 200);
    assert_int_equal(CODE(&f, "3"), 406); /* no list handler */
    assert_int_equal(CODE(&f, "4"), 405);
    assert_int_equal(CODE(&f, "5"), 405);
    assert_int_equal(CODE(&f, "6"), 405);
    assert_int_equal(CODE(&f, "7"), 405);
    assert_int_equal(CODE(&f, "8"), 405); /* no get handler */
    assert_int_equal(CODE(&f, "9"), 405);
    assert_int_equal(CODE(&f, "10"), 507);
    assert_int_equal(CODE(&f, "11"), 405);
    assert_string_equal(tcsp_value(&f.a, "Top"), "t");
    assert_int_equal(f.b.calls[TCSP_GET], 0);
    t_env_done(&f.env);
    tcsp_free(&f.a);
    tcsp_free(&f.b);
}

/* ---- transactions -------------------------------------------------------- */

static void test_plain_commands_commit_one_by_one(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_REPLACE("2", "./Vendor/Test/Top", "chr", "t2") T_GET("3", "./Vendor/Test/Top")
            T_ADD("4", "./Vendor/Test/N", "chr", "n"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_string_equal(RESULTS(f, "3")->items[0].data, "t2");
    assert_int_equal(CODE(f, "4"), 200);
    assert_string_equal(f->a.trace, "begin replace validate commit get begin add validate commit end");
    assert_string_equal(f->b.trace, "end");
    /* outside an Atomic each item is its own transaction (items succeed or
     * fail independently, as their statuses say) */
    reset(f);
    SEND(f, "<Replace><CmdID>2</CmdID><Item>" T_TARGET("./Vendor/Test/Top") "<Data>a</Data></Item>"
            "<Item>" T_TARGET("./Vendor/Test/N") "<Data>b</Data></Item></Replace>");
    assert_string_equal(f->a.trace,
                        "begin replace validate commit begin replace validate commit end");
    assert_string_equal(tcsp_value(&f->a, "N"), "b");
}

static void test_end_message_once_per_message(void **state)
{
    fixture_t *f = *state;
    for (int i = 1; i <= 3; i++) {
        SEND(f, T_GET("2", "./Vendor/Test/Top") T_GET("3", "./Vendor/Test/Dir/Leaf")
                T_REPLACE("4", "./Vendor/Test/Top", "chr", "x"));
        assert_int_equal(f->a.calls[TCSP_END], (unsigned)i);
        assert_int_equal(f->b.calls[TCSP_END], (unsigned)i);
        /* after all commands */
        assert_non_null(strstr(f->a.trace, "commit end"));
    }
    /* also for messages that need no reply */
    SEND(f, T_STATUS("1", "0", "200"));
    assert_false(f->env.reply.present);
    assert_int_equal(f->a.calls[TCSP_END], 4);
}

static void test_validate_refusal_fails_plain_command(void **state)
{
    fixture_t *f = *state;
    f->a.validate_result = -403;
    SEND(f, T_REPLACE("2", "./Vendor/Test/Top", "chr", "bad"));
    assert_int_equal(CODE(f, "2"), 403);
    assert_string_equal(f->a.trace, "begin replace validate rollback end");
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
}

/* omadm.h: "after the command ... it calls validate() and then commit(), or
 * rollback() if anything failed" - a failed command must not be committed. */
static void test_failed_command_rolls_back_plugin(void **state)
{
    fixture_t *f = *state;
    f->a.fail_path = "Top";
    f->a.fail_code = -500;
    f->a.fail_dirty = true;
    SEND(f, T_REPLACE("2", "./Vendor/Test/Top", "chr", "x"));
    assert_int_equal(CODE(f, "2"), 500);
    assert_string_equal(f->a.trace, "begin replace rollback end");
    assert_false(tcsp_exists(&f->a, "__dirty__"));
}

static void test_atomic_across_tree_and_plugins_commits(void **state)
{
    fixture_t *f = *state;
    SEND(f, "<Atomic><CmdID>2</CmdID>"
            T_ADD("3", "./Eng", "chr", "e")
            T_ADD("4", "./Vendor/Test/New", "chr", "n")
            T_REPLACE("5", "./Vendor/Other/X", "chr", "x2")
            T_REPLACE("6", "./Device/Vendor/Test/Top", "chr", "t2")
            T_DELETE("7", "./Vendor/Test/Dir")
            "</Atomic>");
    for (int k = 2; k <= 7; k++) {
        char ref[4];
        snprintf(ref, sizeof ref, "%d", k);
        assert_int_equal(CODE(f, ref), 200);
    }
    /* one transaction per plugin for the whole Atomic */
    assert_string_equal(f->a.trace, "begin add replace del validate commit end");
    assert_string_equal(f->b.trace, "begin replace validate commit end");
    assert_string_equal(tcsp_value(&f->a, "New"), "n");
    assert_string_equal(tcsp_value(&f->a, "Top"), "t2");
    assert_false(tcsp_exists(&f->a, "Dir/Leaf"));
    assert_string_equal(tcsp_value(&f->b, "X"), "x2");
    char *v = t_read(&f->env, "./Eng", NULL, NULL);
    assert_string_equal(v, "e");
    free(v);
}

static void test_atomic_plugin_failure_rolls_back_everything(void **state)
{
    fixture_t *f = *state;
    f->b.fail_path = "Bad";
    f->b.fail_code = -404;
    f->b.fail_dirty = true;
    SEND(f, "<Atomic><CmdID>2</CmdID>"
            T_ADD("3", "./Eng", "chr", "e")
            T_ADD("4", "./Vendor/Test/New", "chr", "n")
            T_REPLACE("5", "./Vendor/Other/X", "chr", "x2")
            T_DELETE("6", "./Vendor/Test/Dir")
            T_ADD("7", "./Vendor/Other/Bad", "chr", "b")
            T_ADD("8", "./Eng2", "chr", "e2")
            T_ADD("9", "./Vendor/Test/Later", "chr", "l")
            "</Atomic>");
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 216);
    assert_int_equal(CODE(f, "4"), 216);
    assert_int_equal(CODE(f, "5"), 216);
    assert_int_equal(CODE(f, "6"), 216);
    assert_int_equal(CODE(f, "7"), 404);
    assert_int_equal(CODE(f, "8"), 215);
    assert_int_equal(CODE(f, "9"), 215);
    /* engine tree */
    assert_null(t_read(&f->env, "./Eng", NULL, NULL));
    assert_null(t_read(&f->env, "./Eng2", NULL, NULL));
    /* both plugins, data as before */
    assert_string_equal(f->a.trace, "begin add del rollback end");
    assert_string_equal(f->b.trace, "begin replace add rollback end");
    assert_false(tcsp_exists(&f->a, "New"));
    assert_false(tcsp_exists(&f->a, "Later"));
    assert_string_equal(tcsp_value(&f->a, "Dir/Leaf"), "v1");
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
    assert_int_equal(tcsp_count(&f->a), 3);
    assert_string_equal(tcsp_value(&f->b, "X"), "x");
    assert_int_equal(tcsp_count(&f->b), 1);
}

static void test_atomic_engine_failure_rolls_back_plugins(void **state)
{
    fixture_t *f = *state;
    SEND(f, "<Atomic><CmdID>2</CmdID>"
            T_REPLACE("3", "./Vendor/Test/Top", "chr", "t2")
            T_ADD("4", "./DevInfo/X", "chr", "x")
            "</Atomic>");
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 216);
    assert_int_equal(CODE(f, "4"), 405);
    assert_string_equal(f->a.trace, "begin replace rollback end");
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
}

static void test_atomic_validate_failure(void **state)
{
    fixture_t *f = *state;
    f->b.validate_result = -500;
    SEND(f, "<Atomic><CmdID>2</CmdID>"
            T_ADD("3", "./Eng", "chr", "e")
            T_ADD("4", "./Vendor/Test/New", "chr", "n")
            T_REPLACE("5", "./Vendor/Other/X", "chr", "x2")
            "</Atomic>");
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 216);
    assert_int_equal(CODE(f, "4"), 216);
    /* the command in the plugin that refused to validate carries its code */
    assert_int_equal(CODE(f, "5"), 500);
    assert_null(t_read(&f->env, "./Eng", NULL, NULL));
    assert_false(tcsp_exists(&f->a, "New"));
    assert_string_equal(tcsp_value(&f->b, "X"), "x");
    assert_int_equal(f->a.calls[TCSP_COMMIT], 0);
    assert_int_equal(f->b.calls[TCSP_COMMIT], 0);
    assert_int_equal(f->a.calls[TCSP_ROLLBACK], 1);
    assert_int_equal(f->b.calls[TCSP_ROLLBACK], 1);
}

static void test_atomic_rollback_failure_516(void **state)
{
    fixture_t *f = *state;
    f->a.rollback_result = -500;
    f->b.fail_path = "Bad";
    f->b.fail_code = -404;
    SEND(f, "<Atomic><CmdID>2</CmdID>"
            T_ADD("3", "./Vendor/Test/New", "chr", "n")
            T_ADD("4", "./Eng", "chr", "e")
            T_REPLACE("5", "./Vendor/Other/X", "chr", "x2")
            T_REPLACE("6", "./Device/Vendor/Test/Top", "chr", "t2")
            T_ADD("7", "./Vendor/Other/Bad", "chr", "b")
            "</Atomic>");
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 516); /* touched A, whose rollback failed */
    assert_int_equal(CODE(f, "4"), 216);
    assert_int_equal(CODE(f, "5"), 216);
    assert_int_equal(CODE(f, "6"), 516);
    assert_int_equal(CODE(f, "7"), 404);
    assert_null(t_read(&f->env, "./Eng", NULL, NULL));
    assert_string_equal(tcsp_value(&f->b, "X"), "x");
    assert_int_equal(f->a.calls[TCSP_ROLLBACK], 1);
    assert_int_equal(f->b.calls[TCSP_ROLLBACK], 1);
}

static void test_atomic_with_get_in_plugin(void **state)
{
    fixture_t *f = *state;
    SEND(f, "<Atomic><CmdID>2</CmdID>" T_REPLACE("3", "./Vendor/Test/Top", "chr", "t2")
            T_GET("4", "./Vendor/Test/Top") "</Atomic>");
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 216);
    assert_int_equal(CODE(f, "4"), 500);
    assert_null(RESULTS(f, "4"));
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
}

static void test_begin_failure(void **state)
{
    fixture_t *f = *state;
    f->a.begin_result = -420;
    SEND(f, T_REPLACE("2", "./Vendor/Test/Top", "chr", "x")
            "<Atomic><CmdID>3</CmdID>" T_ADD("4", "./Eng", "chr", "e")
            T_ADD("5", "./Vendor/Test/New", "chr", "n") "</Atomic>");
    assert_int_equal(CODE(f, "2"), 420);
    assert_int_equal(f->a.calls[TCSP_REPLACE], 0);
    assert_int_equal(CODE(f, "3"), 507);
    assert_int_equal(CODE(f, "4"), 216);
    assert_int_equal(CODE(f, "5"), 420);
    assert_null(t_read(&f->env, "./Eng", NULL, NULL));
    assert_string_equal(tcsp_value(&f->a, "Top"), "t");
    f->a.begin_result = 0;
}

/* ---- copy across owners -------------------------------------------------- */

static void test_copy_between_plugin_and_tree(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_COPY("2", "./Vendor/Test/Top", "./Eng/copy") T_COPY("3", "./DevInfo/Man", "./Vendor/Test/Dir/Man")
            T_COPY("4", "./Vendor/Test/Dir/Leaf", "./Vendor/Other/X"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(CODE(f, "3"), 200);
    assert_int_equal(CODE(f, "4"), 200);
    char *v = t_read(&f->env, "./Eng/copy", NULL, NULL);
    assert_string_equal(v, "t");
    free(v);
    assert_string_equal(tcsp_value(&f->a, "Dir/Man"), "omadm");
    assert_string_equal(tcsp_value(&f->b, "X"), "v1");
}

/* ---- registration -------------------------------------------------------- */

static void test_registration_errors(void **state)
{
    fixture_t *f = *state;
    tcsp_t c;
    tcsp_init(&c, "c", "./Vendor/Test/Sub", NULL); /* inside another plugin */
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_EXISTS);
    c.bases[0] = "./Vendor/Test"; /* taken */
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_EXISTS);
    c.bases[0] = "./Vendor"; /* holds mounts */
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_EXISTS);
    c.bases[0] = "./DevInfo/DevId"; /* a leaf */
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_EXISTS);
    c.bases[0] = ".";
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_INVALID_ARG);
    c.bases[0] = "./A//B";
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_INVALID_ARG);
    c.bases[0] = "./A?prop=ACL";
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_INVALID_ARG);
    c.bases[0] = NULL;
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_INVALID_ARG);
    c.table.bases = NULL;
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_E_INVALID_ARG);
    /* a good one still works, deeper in an engine subtree */
    c.table.bases = c.bases;
    c.bases[0] = "./Vendor/Third/Deep";
    assert_int_equal(omadm_register_csp(f->env.dm, &c.table, &c), OMADM_OK);
    tcsp_put(&c, "K", "k");
    SEND(f, T_GET("2", "./Vendor/Third/Deep/K"));
    assert_string_equal(RESULTS(f, "2")->items[0].data, "k");
    /* mount points are permanent */
    SEND(f, T_DELETE("2", "./Vendor/Third"));
    assert_int_equal(CODE(f, "2"), 405);
    t_env_done(&f->env);
    tcsp_free(&c);
    t_env_init(&f->env); /* teardown frees an already-freed engine otherwise */
    f->env.dm = NULL;
}

/* A registration that fails on its second base must leave nothing behind
 * that still points at the (freed) registration. */
static void test_failed_registration_leaves_no_mount(void **state)
{
    fixture_t *f = *state;
    tcsp_t d;
    tcsp_init(&d, "d", "./Vendor/D1", "./Vendor/Test/Sub");
    tcsp_put(&d, "x", "from d");
    assert_int_equal(omadm_register_csp(f->env.dm, &d.table, &d), OMADM_E_EXISTS);
    SEND(f, T_GET("2", "./Vendor/D1/x"));
    assert_int_equal(CODE(f, "2"), 404);
    assert_int_equal(d.calls[TCSP_GET], 0);
    tcsp_free(&d);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_routing_by_base),
        T(test_case_insensitive_base),
        T(test_request_uri_normalised),
        T(test_path_passed_to_handlers),
        T(test_values_passed_as_sent),
        cmocka_unit_test(test_handler_sees_configured_server_id),
        T(test_get_interior_lists_children),
        T(test_list_struct_data_walks_into_plugins),
        T(test_plugin_properties),
        T(test_acl_on_mount_point_applies_to_plugin),
        T(test_unencodable_values_keep_reply_well_formed),
        T(test_exec_argument_and_correlator),
        T(test_exec_results),
        T(test_handler_errors_become_statuses),
        cmocka_unit_test(test_unset_handlers),
        T(test_plain_commands_commit_one_by_one),
        T(test_end_message_once_per_message),
        T(test_validate_refusal_fails_plain_command),
        T(test_failed_command_rolls_back_plugin),
        T(test_atomic_across_tree_and_plugins_commits),
        T(test_atomic_plugin_failure_rolls_back_everything),
        T(test_atomic_engine_failure_rolls_back_plugins),
        T(test_atomic_validate_failure),
        T(test_atomic_rollback_failure_516),
        T(test_atomic_with_get_in_plugin),
        T(test_begin_failure),
        T(test_copy_between_plugin_and_tree),
        T(test_registration_errors),
        T(test_failed_registration_leaves_no_mount),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
