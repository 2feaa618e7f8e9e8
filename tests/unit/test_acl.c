/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_acl.c - the ACL grammar (acl_valid) and rights checks (acl_allows),
 * spec section 5: "cmd=ids&cmd=ids", cmd in Add/Delete/Exec/Get/Replace,
 * ids = "*" or id+id..., ids without = & * + or whitespace, no empty lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acl.h"

static void test_valid_acls(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "",  /* empty: inherit */
        "Get=*",
        "Add=*&Delete=*&Exec=*&Get=*&Replace=*",
        "Replace=*&Get=*",                /* any order */
        "Get=srv1",
        "Get=srv1+srv2+srv3",
        "Add=https://srv.example/dm+other&Get=*",
        "Exec=a.b-c_d~e:f@g",
        "Delete=%41",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!acl_valid(ok[i]))
            fail_msg("expected valid: \"%s\"", ok[i]);
    }
}

static void test_invalid_acls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Get",                 /* no '=' */
        "Get=",                /* command without ids must be omitted */
        "Get=*&Get=srv",       /* duplicate command */
        "Add=a&Get=b&Add=c",   /* duplicate, not adjacent */
        "Foo=*",               /* unknown command */
        "get=*",               /* commands are case-sensitive */
        "GET=*",
        "Get=a=b",             /* '=' inside an id */
        "Get=a&",              /* trailing '&': empty entry */
        "&Get=a",              /* leading '&' */
        "Get=a&&Add=b",
        "Get=a*",              /* '*' inside an id */
        "Get=*+a",             /* '*' is alone or nothing */
        "Get=a+*",
        "Get=**",
        "Get=a++b",            /* empty id */
        "Get=+a",
        "Get=a+",
        "Get=a b",             /* whitespace */
        "Get=a\tb",
        "Get=a\nb",
        "Get=a\rb",
        "Get= a",
        "Get=a ",
        " Get=a",
        "Get =a",
        "=a",
        "Get=*;Add=*",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (acl_valid(bad[i]))
            fail_msg("expected invalid: \"%s\"", bad[i]);
    }
}

static void test_star_grants_everyone(void **state)
{
    (void)state;
    const char *acl = "Add=*&Get=*";
    assert_true(acl_allows(acl, ACL_ADD, "srv1"));
    assert_true(acl_allows(acl, ACL_GET, "anyone"));
    assert_true(acl_allows(acl, ACL_GET, ""));
    assert_true(acl_allows(acl, ACL_GET, NULL));
    assert_false(acl_allows(acl, ACL_REPLACE, "srv1"));
    assert_false(acl_allows(acl, ACL_DELETE, "srv1"));
    assert_false(acl_allows(acl, ACL_EXEC, "srv1"));
}

static void test_id_lists(void **state)
{
    (void)state;
    const char *acl = "Get=srv1+srv2&Replace=srv2&Exec=srv3";
    assert_true(acl_allows(acl, ACL_GET, "srv1"));
    assert_true(acl_allows(acl, ACL_GET, "srv2"));
    assert_false(acl_allows(acl, ACL_GET, "srv3"));
    assert_true(acl_allows(acl, ACL_REPLACE, "srv2"));
    assert_false(acl_allows(acl, ACL_REPLACE, "srv1"));
    assert_true(acl_allows(acl, ACL_EXEC, "srv3"));
    assert_false(acl_allows(acl, ACL_EXEC, NULL));
}

static void test_ids_match_exactly(void **state)
{
    (void)state;
    const char *acl = "Get=srv+srv12&Add=abc";
    assert_false(acl_allows(acl, ACL_GET, "sr"));      /* prefix */
    assert_false(acl_allows(acl, ACL_GET, "srv1"));    /* prefix of srv12 */
    assert_false(acl_allows(acl, ACL_GET, "srv123"));  /* longer */
    assert_false(acl_allows(acl, ACL_GET, "SRV"));     /* ids are case-sensitive */
    assert_true(acl_allows(acl, ACL_GET, "srv"));
    assert_true(acl_allows(acl, ACL_GET, "srv12"));
    assert_false(acl_allows(acl, ACL_ADD, "ab"));
    assert_false(acl_allows(acl, ACL_ADD, "abcd"));
    assert_false(acl_allows(acl, ACL_ADD, "srv"));
    /* an id that contains the separator never matches a split list */
    assert_false(acl_allows(acl, ACL_GET, "srv+srv12"));
}

static void test_star_inside_list(void **state)
{
    (void)state;
    /* not valid grammar, but acl_allows must still treat '*' as everyone */
    assert_true(acl_allows("Get=a+*", ACL_GET, "zzz"));
}

static void test_absent_command_denies(void **state)
{
    (void)state;
    assert_false(acl_allows("", ACL_GET, "srv"));
    assert_false(acl_allows("Add=*", ACL_GET, "srv"));
    assert_false(acl_allows("Add=*&Delete=*&Exec=*&Replace=*", ACL_GET, "srv"));
    /* a command name that merely starts like another one */
    assert_false(acl_allows("Getx=*", ACL_GET, "srv"));
    assert_false(acl_allows("Ge=*", ACL_GET, "srv"));
}

static void test_each_right_found_anywhere(void **state)
{
    (void)state;
    const char *acl = "Add=a&Delete=d&Exec=e&Get=g&Replace=r";
    assert_true(acl_allows(acl, ACL_ADD, "a"));
    assert_true(acl_allows(acl, ACL_DELETE, "d"));
    assert_true(acl_allows(acl, ACL_EXEC, "e"));
    assert_true(acl_allows(acl, ACL_GET, "g"));
    assert_true(acl_allows(acl, ACL_REPLACE, "r"));
    assert_false(acl_allows(acl, ACL_ADD, "r"));
    assert_false(acl_allows(acl, ACL_REPLACE, "a"));
}

static void test_grants_anyone(void **state)
{
    (void)state;
    assert_true(acl_grants("Replace=*", ACL_REPLACE));
    assert_true(acl_grants("Get=*&Replace=nobody", ACL_REPLACE));
    assert_true(acl_grants("Add=a&Replace=b+c", ACL_REPLACE));
    assert_false(acl_grants("Get=nobody", ACL_REPLACE));
    assert_false(acl_grants("", ACL_REPLACE));
    assert_false(acl_grants("Add=*&Delete=*&Exec=*&Get=*", ACL_REPLACE));
    assert_false(acl_grants("Replacex=*", ACL_REPLACE));
    assert_true(acl_grants("Add=*&Delete=*&Exec=*&Get=*", ACL_EXEC));
}

static void test_right_names(void **state)
{
    (void)state;
    assert_string_equal(acl_right_name(ACL_ADD), "Add");
    assert_string_equal(acl_right_name(ACL_DELETE), "Delete");
    assert_string_equal(acl_right_name(ACL_EXEC), "Exec");
    assert_string_equal(acl_right_name(ACL_GET), "Get");
    assert_string_equal(acl_right_name(ACL_REPLACE), "Replace");
    assert_string_equal(acl_right_name(ACL_ALL), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_acls),
        cmocka_unit_test(test_invalid_acls),
        cmocka_unit_test(test_star_grants_everyone),
        cmocka_unit_test(test_id_lists),
        cmocka_unit_test(test_ids_match_exactly),
        cmocka_unit_test(test_star_inside_list),
        cmocka_unit_test(test_absent_command_denies),
        cmocka_unit_test(test_each_right_found_anywhere),
        cmocka_unit_test(test_grants_anyone),
        cmocka_unit_test(test_right_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
