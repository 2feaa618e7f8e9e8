/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_state.c - the formats of the engine's persisted values across
 * versions (omadm/state_format.c, omadm/state_check.c, docs/state.md):
 *
 *   the format line ("<name> <version>": current, older, newer, damaged);
 *   a tree, a session or auth state of a newer format is refused
 *   (OMADM_E_NEWER_FORMAT) and nothing is written; the older formats
 *   (omadm-tree 1, omadm-session 1) are read and written in the current one
 *   by the next message; omadm_state_check names every key that is damaged
 *   or newer, with both formats, notes the older ones, and with
 *   OMADM_STATE_REPAIR clears a damaged session and rewrites damaged auth
 *   state, never the tree; its allocations failing one by one leak nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state_format.h"
#include "support_dm.h"
#include "support_store.h"

#define SERVER "https://srv.example/dm"

/* ---- what omadm_state_check reports ---- */

typedef struct finding {
    char key[32];
    omadm_error_t err;
    char found[32];   /* "" for NULL */
    char current[32];
    char detail[256];
    int repaired;
} finding_t;

typedef struct findings {
    finding_t f[16];
    size_t n;
} findings_t;

static void collect(void *ctx, const omadm_state_problem_t *p)
{
    findings_t *fs = ctx;
    assert_true(fs->n < 16);
    finding_t *f = &fs->f[fs->n++];
    assert_non_null(p->key);
    assert_non_null(p->current);
    assert_non_null(p->detail);
    snprintf(f->key, sizeof f->key, "%s", p->key);
    f->err = p->err;
    snprintf(f->found, sizeof f->found, "%s", p->found ? p->found : "");
    snprintf(f->current, sizeof f->current, "%s", p->current);
    snprintf(f->detail, sizeof f->detail, "%s", p->detail);
    f->repaired = p->repaired;
}

/* omadm_state_check of st into fs (emptied first), with no allocation left
 * over. */
static omadm_error_t check(tstore_t *st, unsigned flags, findings_t *fs)
{
    t_alloc_t a;
    omadm_platform_t plat;
    t_alloc_init(&a);
    t_platform(&plat, &a);
    memset(fs, 0, sizeof *fs);
    omadm_error_t err = omadm_state_check(NULL, &plat, &st->api, flags, collect, fs);
    assert_int_equal(a.outstanding, 0);
    return err;
}

/* omadm_new on st: its result, with nothing leaked and nothing saved. */
static omadm_error_t start(tstore_t *st)
{
    t_env_t e;
    t_env_init(&e);
    e.storage = &st->api;
    unsigned saves = st->saves;
    omadm_error_t err = omadm_new(&e.cfg, &e.plat, e.storage, &e.dm);
    omadm_free(e.dm);
    assert_int_equal(e.alloc.outstanding, 0);
    assert_int_equal(st->saves, saves);
    return err;
}

static void set(tstore_t *st, const char *key, const char *text)
{
    tstore_set(st, key, text, strlen(text));
}

/* FNV-1a 64, the manifest's checksum of a bucket (docs/abi.md). */
static unsigned long long fnv(const char *p)
{
    unsigned long long h = 14695981039346656037ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

#define BUCKET1 "omadm-tree-bucket 1 2\n7\t./A\tI\t-\t-\t-\t-\t0\t0\t-\n"
#define BUCKET3 "omadm-tree-bucket 3 1\n8\t./B\tI\t-\t-\t-\t-\t0\t0\t-\n"

/* A manifest of 4 buckets naming tree.1.a (generation 2) and tree.3.b
 * (generation 1), with the checksums of BUCKET1 and BUCKET3. */
static void set_manifest(tstore_t *st)
{
    char m[256];
    snprintf(m, sizeof m, "omadm-tree 2\nbuckets 4\n1 2 %016llx\n3 1 %016llx\nend\n",
             fnv(BUCKET1), fnv(BUCKET3));
    set(st, "tree", m);
}

/* ---- the format line ---- */

static void test_format_line(void **state)
{
    (void)state;
    unsigned v = 0;
    assert_int_equal(state_format("omadm-tree 2", "omadm-tree", 1, 2, &v), STATE_FMT_CURRENT);
    assert_int_equal(v, 2);
    assert_int_equal(state_format("omadm-tree 1", "omadm-tree", 1, 2, &v), STATE_FMT_OLDER);
    assert_int_equal(v, 1);
    assert_int_equal(state_format("omadm-tree 3", "omadm-tree", 1, 2, &v), STATE_FMT_NEWER);
    assert_int_equal(v, 3);
    assert_int_equal(state_format("omadm-tree 999999999", "omadm-tree", 1, 2, NULL),
                     STATE_FMT_NEWER);
    static const char *const damaged[] = {
        "omadm-tree", "omadm-tree ", "omadm-tree 0", "omadm-tree 02", "omadm-tree 2 ",
        "omadm-tree 2x", "omadm-tree  2", "omadm-tree 1000000000", "omadm-trees 2",
        "omadm-tree-bucket 1 2", "omadm-session 2", "", "garbage",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof *damaged; i++)
        assert_int_equal(state_format(damaged[i], "omadm-tree", 1, 2, NULL), STATE_FMT_DAMAGED);
    assert_int_equal(state_format(NULL, "omadm-tree", 1, 2, NULL), STATE_FMT_DAMAGED);
    /* a version below the oldest one read */
    assert_int_equal(state_format("omadm-x 1", "omadm-x", 2, 3, &v), STATE_FMT_DAMAGED);
    /* the first line of a text that is not NUL-terminated */
    assert_int_equal(state_format_text("omadm-tree 2\nbuckets", 21, "omadm-tree", 1, 2, &v),
                     STATE_FMT_CURRENT);
    assert_int_equal(state_format_text("omadm-tree 2", 12, "omadm-tree", 1, 2, NULL),
                     STATE_FMT_DAMAGED);
    assert_int_equal(state_format_text(NULL, 0, "omadm-tree", 1, 2, NULL), STATE_FMT_DAMAGED);
}

/* ---- newer formats: refused, named, nothing written ---- */

static void test_newer_tree_refused(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "tree", "omadm-tree 3\nwhatever a later version keeps\n");
    assert_int_equal(start(&st), OMADM_E_NEWER_FORMAT);
    findings_t fs;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_E_NEWER_FORMAT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "tree");
    assert_int_equal(fs.f[0].err, OMADM_E_NEWER_FORMAT);
    assert_string_equal(fs.f[0].found, "omadm-tree 3");
    assert_string_equal(fs.f[0].current, "omadm-tree 2");
    assert_false(fs.f[0].repaired);
    assert_non_null(strstr(fs.f[0].detail, "omadm-tree 3 is newer"));
    assert_int_equal(st.saves, 0);
    tstore_free(&st);
}

static void test_newer_session_refused(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "session", "omadm-session 3\n7\n" SERVER "\n4\n");
    /* without this the engine took it for damaged, started afresh and
     * wrote its own session over it with the next message */
    assert_int_equal(start(&st), OMADM_E_NEWER_FORMAT);
    findings_t fs;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_E_NEWER_FORMAT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "session");
    assert_string_equal(fs.f[0].found, "omadm-session 3");
    assert_string_equal(fs.f[0].current, "omadm-session 2");
    assert_int_equal(st.saves, 0);
    tstore_free(&st);
}

static void test_newer_auth_refused(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    const char *newer = "omadm-auth 2\ncounter 41\nserver-nonce AAAA\n";
    set(&st, "auth", newer);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e); /* the engine starts: auth state is read by sessions */
    omadm_account_t acc = {.server_url = SERVER};
    uint8_t *msg = (uint8_t *)&acc;
    size_t len = 1;
    assert_int_equal(omadm_session_begin(e.dm, &acc, 0, NULL, &msg, &len), OMADM_E_NEWER_FORMAT);
    assert_null(msg);
    assert_int_equal(len, 0);
    assert_false(omadm_session_active(e.dm));
    assert_int_equal(st.saves, 0);
    assert_string_equal((const char *)tstore_get(&st, "auth", NULL), newer);
    t_env_done(&e);
    findings_t fs;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_E_NEWER_FORMAT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "auth");
    assert_string_equal(fs.f[0].found, "omadm-auth 2");
    assert_string_equal(fs.f[0].current, "omadm-auth 1");
    assert_int_equal(st.saves, 0);
    tstore_free(&st);
}

/* ---- damaged values: each key named ---- */

static void test_damaged_buckets_named(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set_manifest(&st);
    set(&st, "tree.1.a", BUCKET1);
    set(&st, "tree.3.b", BUCKET3);
    findings_t fs;
    assert_int_equal(start(&st), OMADM_OK);
    assert_int_equal(check(&st, 0, &fs), OMADM_OK);
    assert_int_equal(fs.n, 0);

    /* one bucket changed, the other missing: both named */
    tstore_free(&st);
    tstore_init(&st);
    set_manifest(&st);
    set(&st, "tree.1.a", "omadm-tree-bucket 1 2\n7\t./A\tI\t-\t-\t-\t-\t0\t0\t+\n");
    assert_int_equal(start(&st), OMADM_E_CORRUPT);
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_E_CORRUPT);
    assert_int_equal(fs.n, 2);
    assert_string_equal(fs.f[0].key, "tree.1.a");
    assert_int_equal(fs.f[0].err, OMADM_E_CORRUPT);
    assert_non_null(strstr(fs.f[0].detail, "checksum"));
    assert_string_equal(fs.f[1].key, "tree.3.b");
    assert_non_null(strstr(fs.f[1].detail, "missing"));
    assert_false(fs.f[0].repaired || fs.f[1].repaired); /* a tree is never rewritten */
    assert_int_equal(st.saves, 0);

    /* a record that does not load: its bucket is named */
    char m[256];
    const char *bad = "omadm-tree-bucket 1 2\n7\t./A\tQ\t-\t-\t-\t-\t0\t0\t-\n";
    snprintf(m, sizeof m, "omadm-tree 2\nbuckets 4\n1 2 %016llx\nend\n", fnv(bad));
    set(&st, "tree", m);
    set(&st, "tree.1.a", bad);
    assert_int_equal(start(&st), OMADM_E_CORRUPT);
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "tree.1.a");
    assert_non_null(strstr(fs.f[0].detail, "record 7"));

    /* the manifest itself */
    set(&st, "tree", "omadm-tree 2\nbuckets four\nend\n");
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "tree");
    set(&st, "tree", "no format line\n");
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_string_equal(fs.f[0].key, "tree");
    assert_string_equal(fs.f[0].found, "");
    /* format 1 with a bad record: the line is named */
    set(&st, "tree", "omadm-tree 1\n./A\tI\t-\t-\t-\t-\t0\t0\t-\n./A/B\tQ\n");
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_string_equal(fs.f[0].key, "tree");
    assert_non_null(strstr(fs.f[0].detail, "line 3"));
    assert_int_equal(st.saves, 0);
    tstore_free(&st);
}

/* A damaged tree does not hide what else is wrong. */
static void test_every_value_checked(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "tree", "garbage");
    set(&st, "session", "omadm-session 9\n");
    set(&st, "auth", "omadm-auth 1\ncounter 3\nclient-nonce !!\n");
    findings_t fs;
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_int_equal(fs.n, 3);
    assert_string_equal(fs.f[0].key, "tree");
    assert_int_equal(fs.f[0].err, OMADM_E_CORRUPT);
    assert_string_equal(fs.f[1].key, "session");
    assert_int_equal(fs.f[1].err, OMADM_E_NEWER_FORMAT);
    assert_string_equal(fs.f[2].key, "auth");
    assert_int_equal(fs.f[2].err, OMADM_E_CORRUPT);
    assert_string_equal(fs.f[2].found, "omadm-auth 1");
    st.fail_load = true;
    assert_int_equal(check(&st, 0, &fs), OMADM_E_STORAGE);
    assert_int_equal(fs.n, 3);
    assert_int_equal(fs.f[0].err, OMADM_E_STORAGE);
    tstore_free(&st);
}

/* ---- repairs: what the engine would do anyway ---- */

static void test_damaged_session_repaired(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "session", "omadm-session 2\nonly one line\n");
    assert_int_equal(start(&st), OMADM_OK); /* the engine starts a new session */
    findings_t fs;
    assert_int_equal(check(&st, 0, &fs), OMADM_E_CORRUPT);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "session");
    assert_false(fs.f[0].repaired);
    assert_int_equal(st.saves, 0);
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_OK);
    assert_int_equal(fs.n, 1);
    assert_int_equal(fs.f[0].err, OMADM_E_CORRUPT);
    assert_true(fs.f[0].repaired);
    size_t len = 1;
    assert_non_null(tstore_get(&st, "session", &len));
    assert_int_equal(len, 0); /* no session */
    assert_int_equal(check(&st, 0, &fs), OMADM_OK);
    assert_int_equal(fs.n, 0);
    tstore_free(&st);
}

static void test_damaged_auth_repaired(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "auth", "omadm-auth 1\ncounter 41\nclient-nonce QUJD\nserver-nonce !!\n");
    findings_t fs;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_OK);
    assert_int_equal(fs.n, 1);
    assert_string_equal(fs.f[0].key, "auth");
    assert_true(fs.f[0].repaired);
    /* what could be read stays */
    assert_string_equal((const char *)tstore_get(&st, "auth", NULL),
                        "omadm-auth 1\ncounter 41\nclient-nonce QUJD\nserver-nonce \n");
    assert_int_equal(check(&st, 0, &fs), OMADM_OK);
    /* a record that is not one at all */
    set(&st, "auth", "garbage\n");
    st.fail_save = true;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_E_CORRUPT);
    assert_false(fs.f[0].repaired);
    st.fail_save = false;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_OK);
    assert_string_equal((const char *)tstore_get(&st, "auth", NULL),
                        "omadm-auth 1\ncounter 0\nclient-nonce \nserver-nonce \n");
    tstore_free(&st);
}

/* ---- older formats: read, then written in the current one ---- */

static void test_older_formats_upgrade(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    /* as a build of the earlier formats wrote them */
    set(&st, "tree", "omadm-tree 1\n.\tI\t-\t-\tAdd=*&Delete=*&Exec=*&Get=*&Replace=*\t-\t0\t0\t-\n"
                     "./Acme\tI\t-\t-\t-\t-\t0\t0\t-\n./Acme/Greeting\tL\tchr\t-\t-\t-\t0\t1\taGk=\n");
    set(&st, "session", "omadm-session 1\n7\n" SERVER "\n2\n");
    findings_t fs;
    assert_int_equal(check(&st, OMADM_STATE_REPAIR, &fs), OMADM_OK);
    assert_int_equal(fs.n, 2);
    assert_string_equal(fs.f[0].key, "tree");
    assert_int_equal(fs.f[0].err, OMADM_OK);
    assert_string_equal(fs.f[0].found, "omadm-tree 1");
    assert_string_equal(fs.f[0].current, "omadm-tree 2");
    assert_string_equal(fs.f[1].key, "session");
    assert_string_equal(fs.f[1].found, "omadm-session 1");
    assert_int_equal(st.saves, 0); /* a check converts nothing */

    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    assert_int_equal(st.saves, 0); /* nor does starting */
    char *v = t_read(&e, "./Acme/Greeting", NULL, NULL);
    assert_string_equal(v, "hi");
    free(v);
    /* the next message of the stored session: our MsgID goes on from 2
     * (without reading format 1 the session started afresh: MsgID 2) */
    snprintf(e.session_id, sizeof e.session_id, "7");
    snprintf(e.server, sizeof e.server, SERVER);
    e.msg_id = 2;
    assert_int_equal(t_send(&e, true, T_GET("2", "./Acme/Greeting")), OMADM_OK);
    assert_string_equal(e.reply.msg_id, "3");
    assert_int_equal(t_code(&e.reply, "2"), 200);
    /* a message that reads converts nothing; one that changes the tree does */
    assert_int_equal(strncmp((const char *)tstore_get(&st, "tree", NULL), "omadm-tree 1\n", 13),
                     0);
    assert_int_equal(t_send(&e, true, T_REPLACE("2", "./Acme/Greeting", "chr", "hi")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    assert_string_equal(e.reply.msg_id, "4");
    t_env_done(&e);
    assert_int_equal(strncmp((const char *)tstore_get(&st, "tree", NULL), "omadm-tree 2\n", 13),
                     0);
    assert_string_equal((const char *)tstore_get(&st, "session", NULL),
                        "omadm-session 2\n7\n" SERVER "\n4\n");
    assert_int_equal(check(&st, 0, &fs), OMADM_OK);
    assert_int_equal(fs.n, 0);
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    v = t_read(&e, "./Acme/Greeting", NULL, NULL);
    assert_string_equal(v, "hi");
    free(v);
    t_env_done(&e);
    tstore_free(&st);
}

/* ---- arguments, memory ---- */

static void test_arguments(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    omadm_storage_t none = {0};
    assert_int_equal(omadm_state_check(NULL, NULL, NULL, 0, NULL, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_state_check(NULL, NULL, &none, 0, NULL, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_state_check(NULL, NULL, &st.api, 2, NULL, NULL), OMADM_E_INVALID_ARG);
    /* no callback: only the result */
    set(&st, "tree", "omadm-tree 7\n");
    assert_int_equal(omadm_state_check(NULL, NULL, &st.api, 0, NULL, NULL), OMADM_E_NEWER_FORMAT);
    assert_string_equal(omadm_strerror(OMADM_E_NEWER_FORMAT),
                        "persisted state is of a newer format");
    tstore_free(&st);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    set(&st, "tree", "omadm-tree 1\n./Acme\tI\t-\t-\t-\t-\t0\t0\t-\n");
    set(&st, "session", "omadm-session 2\nonly one line\n");
    set(&st, "auth", "omadm-auth 1\ncounter 41\nserver-nonce !!\n");
    for (long n = 1;; n++) {
        tstore_t copy;
        tstore_copy(&copy, &st);
        t_alloc_t a;
        omadm_platform_t plat;
        t_alloc_init(&a);
        t_platform(&plat, &a);
        a.fail_at = n;
        findings_t fs;
        memset(&fs, 0, sizeof fs);
        omadm_error_t err = omadm_state_check(NULL, &plat, &copy.api, OMADM_STATE_REPAIR, collect,
                                              &fs);
        assert_int_equal(a.outstanding, 0);
        tstore_free(&copy);
        if (!a.failures) {
            assert_int_equal(err, OMADM_OK);
            break;
        }
        assert_true(err == OMADM_E_NOMEM || err == OMADM_OK);
    }
    tstore_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_line),
        cmocka_unit_test(test_newer_tree_refused),
        cmocka_unit_test(test_newer_session_refused),
        cmocka_unit_test(test_newer_auth_refused),
        cmocka_unit_test(test_damaged_buckets_named),
        cmocka_unit_test(test_every_value_checked),
        cmocka_unit_test(test_damaged_session_repaired),
        cmocka_unit_test(test_damaged_auth_repaired),
        cmocka_unit_test(test_older_formats_upgrade),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
