/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_alert_ui.c - user-interaction alerts 1100..1104 through the
 * config's ui_alert callback (spec section 4): what the callback is told
 * (options MINDT, MAXDT, DR, MAXLEN, IT, ET; text; choices), how answers
 * become statuses (200 / 304 / 214 / 408 / 416, answers as Items), 412
 * for missing items, and a "No" inside Sequence (rest 215) and Atomic
 * (507 with rollback).
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

typedef struct ui {
    /* what to answer */
    omadm_ui_result_t result;
    const char *answer;
    /* what the callback saw (last call) */
    unsigned calls;
    int code, min_dt, max_dt, max_len;
    char input_type, echo_type;
    bool has_dr;
    char dr[128];
    char text[256];
    size_t n_choices;
    char choices[8][64];
    size_t answer_size;
} ui_t;

typedef struct fixture {
    t_env_t env;
    ui_t ui;
} fixture_t;

static omadm_ui_result_t ui_cb(void *ctx, const omadm_ui_alert_t *a, char *answer, size_t size)
{
    ui_t *u = ctx;
    u->calls++;
    u->code = a->code;
    u->min_dt = a->min_dt;
    u->max_dt = a->max_dt;
    u->max_len = a->max_len;
    u->input_type = a->input_type;
    u->echo_type = a->echo_type;
    u->has_dr = a->default_resp != NULL;
    snprintf(u->dr, sizeof u->dr, "%s", a->default_resp ? a->default_resp : "");
    snprintf(u->text, sizeof u->text, "%s", a->text ? a->text : "(null)");
    u->n_choices = a->n_choices;
    for (size_t i = 0; i < a->n_choices && i < 8; i++)
        snprintf(u->choices[i], sizeof u->choices[i], "%s", a->choices[i]);
    u->answer_size = size;
    if (u->answer)
        snprintf(answer, size, "%s", u->answer);
    return u->result;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    t_env_init(&f->env);
    f->env.cfg.ui_alert = ui_cb;
    f->env.cfg.ui_ctx = &f->ui;
    t_env_start(&f->env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    t_env_done(&f->env);
    free(f);
    return 0;
}

#define SEND(f, body) assert_int_equal(t_send(&(f)->env, true, (body)), OMADM_OK)
#define CODE(f, ref) t_code(&(f)->env.reply, (ref))
#define ITEM(d) "<Item><Data>" d "</Data></Item>"
#define UI(id, code, items) "<Alert><CmdID>" id "</CmdID><Data>" code "</Data>" items "</Alert>"

static void test_display(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    SEND(f, UI("2", "1100", ITEM("MINDT=5") ITEM("Hello &amp; welcome")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.calls, 1);
    assert_int_equal(f->ui.code, 1100);
    assert_int_equal(f->ui.min_dt, 5);
    assert_int_equal(f->ui.max_dt, -1);
    assert_int_equal(f->ui.max_len, -1);
    assert_false(f->ui.has_dr);
    assert_int_equal(f->ui.input_type, 0);
    assert_int_equal(f->ui.echo_type, 0);
    assert_string_equal(f->ui.text, "Hello & welcome");
    assert_int_equal(f->ui.n_choices, 0);
    const t_cmd_t *s = t_status(&f->env.reply, "2");
    assert_string_equal(s->cmd, "Alert");
    assert_int_equal(s->n_items, 0);
}

static void test_confirm(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    SEND(f, UI("2", "1101", ITEM("") ITEM("Proceed?")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.code, 1101);
    assert_string_equal(f->ui.text, "Proceed?");
    f->ui.result = OMADM_UI_NO;
    SEND(f, UI("2", "1101", ITEM("") ITEM("Proceed?")));
    assert_int_equal(CODE(f, "2"), 304);
    assert_int_equal(t_status(&f->env.reply, "2")->n_items, 0);
}

static void test_text_input(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    f->ui.answer = "my answer <&>";
    SEND(f, UI("2", "1102", ITEM("MAXLEN=20&amp;IT=A&amp;ET=T&amp;DR=def%20text") ITEM("Your name?")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.code, 1102);
    assert_int_equal(f->ui.max_len, 20);
    assert_int_equal(f->ui.input_type, 'A');
    assert_int_equal(f->ui.echo_type, 'T');
    assert_true(f->ui.has_dr);
    assert_string_equal(f->ui.dr, "def text");
    assert_true(f->ui.answer_size >= 21);
    const t_cmd_t *s = t_status(&f->env.reply, "2");
    assert_int_equal(s->n_items, 1);
    assert_string_equal(s->items[0].data, "my answer <&>");
    assert_string_equal(s->elems, "CmdID MsgRef CmdRef Cmd Data Item");
    /* an empty answer is still an answer */
    f->ui.answer = "";
    SEND(f, UI("2", "1102", ITEM("") ITEM("Anything?")));
    s = t_status(&f->env.reply, "2");
    assert_int_equal(s->n_items, 1);
    assert_string_equal(s->items[0].data, "");
}

static void test_single_choice(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    f->ui.answer = "2";
    SEND(f, UI("2", "1103", ITEM("DR=1") ITEM("Pick one") ITEM("Red") ITEM("Green") ITEM("Blue")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.code, 1103);
    assert_string_equal(f->ui.text, "Pick one");
    assert_int_equal(f->ui.n_choices, 3);
    assert_string_equal(f->ui.choices[0], "Red");
    assert_string_equal(f->ui.choices[1], "Green");
    assert_string_equal(f->ui.choices[2], "Blue");
    assert_string_equal(f->ui.dr, "1");
    const t_cmd_t *s = t_status(&f->env.reply, "2");
    assert_int_equal(s->n_items, 1);
    assert_string_equal(s->items[0].data, "2");
}

static void test_multiple_choice(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    f->ui.answer = "1-3-4";
    SEND(f, UI("2", "1104", ITEM("DR=1-2&amp;MAXDT=30") ITEM("Pick some") ITEM("a") ITEM("b")
                                ITEM("c") ITEM("d")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.code, 1104);
    assert_int_equal(f->ui.n_choices, 4);
    assert_string_equal(f->ui.dr, "1-2");
    assert_int_equal(f->ui.max_dt, 30);
    const t_cmd_t *s = t_status(&f->env.reply, "2");
    assert_int_equal(s->n_items, 3);
    assert_string_equal(s->items[0].data, "1");
    assert_string_equal(s->items[1].data, "3");
    assert_string_equal(s->items[2].data, "4");
}

static void test_cancel_timeout_too_big(void **state)
{
    fixture_t *f = *state;
    f->ui.answer = "ignored";
    f->ui.result = OMADM_UI_CANCEL;
    SEND(f, UI("2", "1102", ITEM("") ITEM("Text?")));
    assert_int_equal(CODE(f, "2"), 214);
    assert_int_equal(t_status(&f->env.reply, "2")->n_items, 0);
    f->ui.result = OMADM_UI_TIMEOUT;
    SEND(f, UI("2", "1101", ITEM("MAXDT=1") ITEM("Quick?")));
    assert_int_equal(CODE(f, "2"), 408);
    f->ui.result = OMADM_UI_TOO_BIG;
    SEND(f, UI("2", "1100", ITEM("") ITEM("Huge")));
    assert_int_equal(CODE(f, "2"), 416);
    f->ui.result = (omadm_ui_result_t)99; /* not a result at all */
    SEND(f, UI("2", "1100", ITEM("") ITEM("?")));
    assert_int_equal(CODE(f, "2"), 500);
}

static void test_all_options(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    f->ui.answer = "1";
    SEND(f, UI("2", "1102", ITEM("MINDT=3&amp;MAXDT=60&amp;DR=a+b%26c&amp;MAXLEN=8&amp;IT=N&amp;ET=P"
                                 "&amp;UNKNOWN=zz&amp;novalue")
                                ITEM("Enter PIN")));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(f->ui.min_dt, 3);
    assert_int_equal(f->ui.max_dt, 60);
    assert_string_equal(f->ui.dr, "a b&c");
    assert_int_equal(f->ui.max_len, 8);
    assert_int_equal(f->ui.input_type, 'N');
    assert_int_equal(f->ui.echo_type, 'P');
    /* date input type with its format suffix: the letter is what counts */
    SEND(f, UI("2", "1102", ITEM("IT=D") ITEM("Date?")));
    assert_int_equal(f->ui.input_type, 'D');
    assert_int_equal(f->ui.min_dt, -1);
}

static void test_missing_items(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_OK;
    SEND(f, UI("2", "1100", ITEM("")) UI("3", "1101", "") UI("4", "1103", ITEM("") ITEM("Pick"))
            UI("5", "1104", ITEM("") ITEM("Pick")) UI("6", "1102", ITEM("")));
    assert_int_equal(CODE(f, "2"), 412);
    assert_int_equal(CODE(f, "3"), 412);
    assert_int_equal(CODE(f, "4"), 412);
    assert_int_equal(CODE(f, "5"), 412);
    assert_int_equal(CODE(f, "6"), 412);
    assert_int_equal(f->ui.calls, 0);
}

static void test_no_callback_406(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    assert_int_equal(t_send(&e, true, UI("2", "1100", ITEM("") ITEM("Hi"))
                                      UI("3", "1101", ITEM("") ITEM("Ok?"))
                                      UI("4", "1102", ITEM("") ITEM("Text"))
                                      UI("5", "1103", ITEM("") ITEM("One") ITEM("a"))
                                      UI("6", "1104", ITEM("") ITEM("Some") ITEM("a"))),
                     OMADM_OK);
    for (int k = 2; k <= 6; k++) {
        char ref[4];
        snprintf(ref, sizeof ref, "%d", k);
        assert_int_equal(t_code(&e.reply, ref), 406);
    }
    t_env_done(&e);
}

static void test_no_inside_sequence_skips_rest(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_NO;
    SEND(f, "<Sequence><CmdID>2</CmdID>" T_ADD("3", "./Before", "chr", "b")
            UI("4", "1101", ITEM("") ITEM("Install?")) T_ADD("5", "./After", "chr", "a")
            T_GET("6", "./Before") "</Sequence>" T_ADD("7", "./Outside", "chr", "o"));
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(CODE(f, "3"), 200);
    assert_int_equal(CODE(f, "4"), 304);
    assert_int_equal(CODE(f, "5"), 215);
    assert_int_equal(CODE(f, "6"), 215);
    assert_null(t_results(&f->env.reply, "6"));
    assert_int_equal(CODE(f, "7"), 200); /* only the Sequence stops */
    char *v = t_read(&f->env, "./Before", NULL, NULL);
    assert_string_equal(v, "b");
    free(v);
    assert_null(t_read(&f->env, "./After", NULL, NULL));
    assert_non_null((v = t_read(&f->env, "./Outside", NULL, NULL)));
    free(v);
}

static void test_cancel_inside_sequence_skips_rest(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_CANCEL;
    SEND(f, "<Sequence><CmdID>2</CmdID>" UI("3", "1102", ITEM("") ITEM("Name?"))
            T_ADD("4", "./After", "chr", "a") "</Sequence>");
    assert_int_equal(CODE(f, "3"), 214);
    assert_int_equal(CODE(f, "4"), 215);
    assert_null(t_read(&f->env, "./After", NULL, NULL));
    /* a Yes does not stop the next Sequence */
    f->ui.result = OMADM_UI_OK;
    SEND(f, "<Sequence><CmdID>2</CmdID>" UI("3", "1101", ITEM("") ITEM("Ok?"))
            T_ADD("4", "./After", "chr", "a") "</Sequence>");
    assert_int_equal(CODE(f, "3"), 200);
    assert_int_equal(CODE(f, "4"), 200);
}

static void test_no_inside_atomic_fails_it(void **state)
{
    fixture_t *f = *state;
    SEND(f, T_ADD("2", "./Keep", "chr", "k"));
    f->ui.result = OMADM_UI_NO;
    SEND(f, "<Atomic><CmdID>2</CmdID>" T_ADD("3", "./New", "chr", "n")
            T_REPLACE("4", "./Keep", "chr", "changed")
            UI("5", "1101", ITEM("") ITEM("Apply?")) T_ADD("6", "./Later", "chr", "l") "</Atomic>"
            T_ADD("7", "./Outside", "chr", "o"));
    assert_int_equal(CODE(f, "2"), 507);
    assert_int_equal(CODE(f, "3"), 216);
    assert_int_equal(CODE(f, "4"), 216);
    assert_int_equal(CODE(f, "5"), 304);
    assert_int_equal(CODE(f, "6"), 215);
    assert_int_equal(CODE(f, "7"), 200);
    assert_null(t_read(&f->env, "./New", NULL, NULL));
    assert_null(t_read(&f->env, "./Later", NULL, NULL));
    char *v = t_read(&f->env, "./Keep", NULL, NULL);
    assert_string_equal(v, "k");
    free(v);
    /* a Yes inside the next Atomic lets it commit */
    f->ui.result = OMADM_UI_OK;
    SEND(f, "<Atomic><CmdID>2</CmdID>" UI("3", "1101", ITEM("") ITEM("Apply?"))
            T_ADD("4", "./New", "chr", "n") "</Atomic>");
    assert_int_equal(CODE(f, "2"), 200);
    assert_int_equal(CODE(f, "3"), 200);
    assert_int_equal(CODE(f, "4"), 200);
}

static void test_no_at_top_level_only_informs(void **state)
{
    fixture_t *f = *state;
    f->ui.result = OMADM_UI_NO;
    SEND(f, UI("2", "1101", ITEM("") ITEM("Ok?")) T_ADD("3", "./After", "chr", "a"));
    assert_int_equal(CODE(f, "2"), 304);
    assert_int_equal(CODE(f, "3"), 200);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_display),
        T(test_confirm),
        T(test_text_input),
        T(test_single_choice),
        T(test_multiple_choice),
        T(test_cancel_timeout_too_big),
        T(test_all_options),
        T(test_missing_items),
        cmocka_unit_test(test_no_callback_406),
        T(test_no_inside_sequence_skips_rest),
        T(test_cancel_inside_sequence_skips_rest),
        T(test_no_inside_atomic_fails_it),
        T(test_no_at_top_level_only_informs),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
