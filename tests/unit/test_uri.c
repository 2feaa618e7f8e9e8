/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_uri.c - uri_parse(): "./" forms, percent-decoding, refused forms,
 * ?prop= / ?list= queries, the DevDetail/URI limits (414); and
 * uri_append_escaped().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "internal.h"
#include "support_dm.h"
#include "uri.h"

typedef struct fixture {
    t_env_t env;
    arena_t arena;
    uri_limits_t lim;
    dm_uri_t u;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    t_env_init(&f->env);
    t_env_start(&f->env);
    arena_init(&f->arena, f->env.dm);
    f->lim = (uri_limits_t){1024, 255, 32};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    arena_free(&f->arena);
    t_env_done(&f->env);
    free(f);
    return 0;
}

static int parse(fixture_t *f, const char *text)
{
    return uri_parse(&f->arena, text, &f->lim, &f->u);
}

static void assert_segs(const dm_uri_t *u, size_t n, ...)
{
    va_list ap;
    assert_int_equal(u->n_segs, n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(u->segs[i], va_arg(ap, const char *));
    va_end(ap);
}

static void test_dot_slash_and_plain_are_equivalent(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A/B"), 0);
    assert_string_equal(f->u.path, "A/B");
    assert_string_equal(f->u.text, "./A/B");
    assert_segs(&f->u, 2, "A", "B");
    assert_int_equal(f->u.query, URI_Q_NONE);
    assert_null(f->u.query_value);

    assert_int_equal(parse(f, "A/B"), 0);
    assert_string_equal(f->u.path, "A/B");
    assert_string_equal(f->u.text, "A/B");
    assert_segs(&f->u, 2, "A", "B");
}

static void test_root_forms(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "."), 0);
    assert_string_equal(f->u.path, "");
    assert_int_equal(f->u.n_segs, 0);
    assert_int_equal(parse(f, "./"), 0);
    assert_string_equal(f->u.path, "");
    assert_int_equal(f->u.n_segs, 0);
}

static void test_single_segment_and_case_kept(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./DevInfo"), 0);
    assert_string_equal(f->u.path, "DevInfo");
    assert_segs(&f->u, 1, "DevInfo");
    assert_int_equal(parse(f, "devinfo/DEVID"), 0);
    assert_string_equal(f->u.path, "devinfo/DEVID");
    assert_segs(&f->u, 2, "devinfo", "DEVID");
    /* a name that merely starts with a dot is a name */
    assert_int_equal(parse(f, "./.hidden/..x"), 0);
    assert_segs(&f->u, 2, ".hidden", "..x");
}

static void test_percent_decoding(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A%20B/%7Bguid%7d/x%25y"), 0);
    assert_segs(&f->u, 3, "A B", "{guid}", "x%y");
    assert_string_equal(f->u.path, "A B/{guid}/x%y");
    /* the text stays as received */
    assert_string_equal(f->u.text, "./A%20B/%7Bguid%7d/x%25y");
    assert_int_equal(parse(f, "%41"), 0);
    assert_segs(&f->u, 1, "A");
}

static void test_bad_escapes_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A/%2F"), 400);     /* encoded '/' */
    assert_int_equal(parse(f, "./A/x%2fy"), 400);
    assert_int_equal(parse(f, "./A/%00"), 400);     /* encoded NUL */
    assert_int_equal(parse(f, "./A/%"), 400);
    assert_int_equal(parse(f, "./A/%4"), 400);
    assert_int_equal(parse(f, "./A/%G1"), 400);
    assert_int_equal(parse(f, "./A/%2E"), 400);     /* decodes to "." */
    assert_int_equal(parse(f, "./A/%2E%2E"), 400);  /* decodes to ".." */
}

static void test_refused_forms(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, ""), 400);
    assert_int_equal(parse(f, "/A"), 400);          /* leading '/' */
    assert_int_equal(parse(f, "/"), 400);
    assert_int_equal(parse(f, "./A/../B"), 400);
    assert_int_equal(parse(f, ".."), 400);
    assert_int_equal(parse(f, "./.."), 400);
    assert_int_equal(parse(f, "./A/./B"), 400);
    assert_int_equal(parse(f, "A/."), 400);
    assert_int_equal(parse(f, "./A//B"), 400);      /* empty segment */
    assert_int_equal(parse(f, "./A/"), 400);        /* trailing '/' */
    assert_int_equal(parse(f, "A/B/"), 400);
    assert_int_equal(parse(f, NULL), 400);
}

/* "./" followed by "/A": the name after "./" is empty, like "//" anywhere
 * else (spec section 5: no empty names). */
static void test_empty_segment_after_dot_slash(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, ".//A"), 400);
    assert_int_equal(parse(f, ".//A/B"), 400);
}

static void test_prop_query(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A/B?prop=ACL"), 0);
    assert_int_equal(f->u.query, URI_Q_PROP);
    assert_string_equal(f->u.query_value, "ACL");
    assert_string_equal(f->u.path, "A/B");
    assert_segs(&f->u, 2, "A", "B");
    assert_string_equal(f->u.text, "./A/B?prop=ACL");

    assert_int_equal(parse(f, ".?prop=Title"), 0);
    assert_int_equal(f->u.query, URI_Q_PROP);
    assert_string_equal(f->u.query_value, "Title");
    assert_string_equal(f->u.path, "");
}

static void test_list_query(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A?list=Struct"), 0);
    assert_int_equal(f->u.query, URI_Q_LIST);
    assert_string_equal(f->u.query_value, "Struct");
    assert_segs(&f->u, 1, "A");
    assert_int_equal(parse(f, "./?list=StructData"), 0);
    assert_int_equal(f->u.query, URI_Q_LIST);
    assert_string_equal(f->u.query_value, "StructData");
    assert_int_equal(f->u.n_segs, 0);
}

static void test_bad_queries(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "./A?foo=bar"), 400);
    assert_int_equal(parse(f, "./A?"), 400);
    assert_int_equal(parse(f, "./A?prop="), 400);
    assert_int_equal(parse(f, "./A?list="), 400);
    assert_int_equal(parse(f, "./A?PROP=ACL"), 400);
    assert_int_equal(parse(f, "?prop=ACL"), 400);   /* no path at all */
}

static void test_total_length_limit(void **state)
{
    fixture_t *f = *state;
    f->lim.max_len = 10;
    assert_int_equal(parse(f, "./AAAA/BBB"), 0);    /* exactly 10 */
    assert_int_equal(parse(f, "./AAAA/BBBB"), 414); /* 11 */
    /* the query counts */
    assert_int_equal(parse(f, "./A?prop=ACL"), 414);
    f->lim.max_len = 0; /* unlimited */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[0] = 'x';
    f->lim.max_seg_len = 0;
    assert_int_equal(parse(f, big), 0);
}

static void test_segment_length_limit(void **state)
{
    fixture_t *f = *state;
    f->lim.max_seg_len = 4;
    assert_int_equal(parse(f, "./AAAA/BBBB"), 0);
    assert_int_equal(parse(f, "./AAAA/BBBBB"), 414);
    assert_int_equal(parse(f, "./AAAAA"), 414);
}

static void test_depth_limit(void **state)
{
    fixture_t *f = *state;
    f->lim.max_depth = 3;
    assert_int_equal(parse(f, "./A/B/C"), 0);
    assert_int_equal(f->u.n_segs, 3);
    assert_int_equal(parse(f, "./A/B/C/D"), 414);
    assert_int_equal(parse(f, "A/B/C/D"), 414);
    f->lim.max_depth = 0; /* unlimited */
    assert_int_equal(parse(f, "A/B/C/D/E/F/G/H/I/J/K/L/M/N/O/P/Q/R/S/T/U/V/W/X/Y/Z/1/2/3/4/5/6/7/8"),
                     0);
    assert_int_equal(f->u.n_segs, 34);
}

static char *escaped(t_env_t *e, const char *name)
{
    buf_t b;
    buf_init(&b, e->dm);
    assert_int_equal(uri_append_escaped(&b, name), 0);
    char *s = strdup(b.data ? (char *)b.data : "");
    buf_free(&b);
    return s;
}

static void test_append_escaped(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Plain-Name_1.2~", "Plain-Name_1.2~"},
        {"a b", "a%20b"},
        {"a/b", "a%2Fb"},
        {"a?b", "a%3Fb"},
        {"100%", "100%25"},
        {"{7A1E-4F}", "{7A1E-4F}"},
        {"x!$'()*+,;=:@y", "x!$'()*+,;=:@y"},
        {"tab\there", "tab%09here"},
        {"q\"<>#&", "q%22%3C%3E%23%26"},
        {"\xc3\xa9", "%C3%A9"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = escaped(&f->env, cases[i].in);
        assert_string_equal(s, cases[i].out);
        free(s);
    }
}

static void test_escape_then_parse_round_trip(void **state)
{
    fixture_t *f = *state;
    const char *name = "we ird&na%me?x";
    char *esc = escaped(&f->env, name);
    char *uri = t_strf("./Base/%s", esc);
    assert_int_equal(parse(f, uri), 0);
    assert_segs(&f->u, 2, "Base", name);
    free(uri);
    free(esc);
}

static void test_appends_to_existing_content(void **state)
{
    fixture_t *f = *state;
    buf_t b;
    buf_init(&b, f->env.dm);
    buf_puts(&b, "./A/");
    assert_int_equal(uri_append_escaped(&b, "b c"), 0);
    assert_int_equal(b.len, 9);
    assert_string_equal((char *)b.data, "./A/b%20c");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dot_slash_and_plain_are_equivalent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_segment_and_case_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_percent_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_escapes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_segment_after_dot_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prop_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escape_then_parse_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_to_existing_content, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
