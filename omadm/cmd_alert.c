/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_alert.c - Alert from the server: session alerts (1200/1201/1222/
 * 1223) and user-interaction alerts 1100..1104 answered through the host's
 * UI callback (406 without one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

#define UI_ANSWER_MAX 1024

static int alert_code(const syncml_cmd_t *cmd)
{
    int code = 0;
    size_t n = 0;
    for (size_t i = 0; i < cmd->data_len; i++) {
        uint8_t c = cmd->data[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c < '0' || c > '9' || ++n > 5)
            return -1;
        code = code * 10 + (c - '0');
    }
    return n ? code : -1;
}

static const char *item_string(dm_exec_t *x, const syncml_item_t *it)
{
    if (!it || !it->has_data)
        return "";
    return arena_strndup(x->scratch, (const char *)it->data, it->data_len);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* URL-decode in place. */
static void url_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* Options "MINDT=10&MAXDT=20&DR=1&MAXLEN=5&IT=A&ET=T"; unknown keys ignored. */
static void parse_options(dm_exec_t *x, const char *text, omadm_ui_alert_t *a)
{
    char *copy = arena_strdup(x->scratch, text);
    char *save = NULL;
    if (!copy)
        return;
    for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *v = eq + 1;
        url_decode(v);
        if (!strcmp(kv, "MINDT"))
            a->min_dt = atoi(v);
        else if (!strcmp(kv, "MAXDT"))
            a->max_dt = atoi(v);
        else if (!strcmp(kv, "DR"))
            a->default_resp = v;
        else if (!strcmp(kv, "MAXLEN"))
            a->max_len = atoi(v);
        else if (!strcmp(kv, "IT"))
            a->input_type = v[0];
        else if (!strcmp(kv, "ET"))
            a->echo_type = v[0];
    }
}

static int answer_status(omadm_ui_result_t r)
{
    switch (r) {
    case OMADM_UI_OK: return 200;
    case OMADM_UI_NO: return 304;
    case OMADM_UI_CANCEL: return 214;
    case OMADM_UI_TIMEOUT: return 408;
    case OMADM_UI_TOO_BIG: return 416;
    }
    return 500;
}

static void add_answer_item(dm_exec_t *x, syncml_cmd_t *st, const char *text, size_t n)
{
    syncml_item_t *it = syncml_item_add(x->reply, st);
    if (it)
        it->data = arena_memdup(&x->reply->arena, text, n);
    if (!it || !it->data) {
        x->oom = true;
        return;
    }
    it->data_len = n;
    it->has_data = true;
}

/* 1102 answers with the text, 1103/1104 with one Item per chosen index. */
static void add_answers(dm_exec_t *x, syncml_cmd_t *st, int code, const char *answer)
{
    if (code == 1102) {
        add_answer_item(x, st, answer, strlen(answer));
        return;
    }
    const char *p = answer;
    while (*p) {
        size_t n = strcspn(p, "-");
        if (n)
            add_answer_item(x, st, p, n);
        p += n + (p[n] == '-');
    }
}

static void ui_alert(dm_exec_t *x, const syncml_cmd_t *cmd, int code)
{
    const omadm_config_t *cfg = &x->dm->cfg;
    size_t need = code <= 1102 ? 2 : 3;
    if (!cfg->ui_alert) {
        status_add(x, cmd, 406);
        return;
    }
    if (cmd->n_items < need) {
        status_add(x, cmd, 412);
        return;
    }
    omadm_ui_alert_t a = {.code = code, .min_dt = -1, .max_dt = -1, .max_len = -1};
    const syncml_item_t *it = cmd->items;
    parse_options(x, item_string(x, it), &a);
    a.text = item_string(x, it->next);
    size_t n_choices = cmd->n_items - 2;
    const char **choices = n_choices ? arena_alloc(x->scratch, n_choices * sizeof(char *)) : NULL;
    size_t k = 0;
    for (const syncml_item_t *c = it->next->next; c && choices; c = c->next)
        choices[k++] = item_string(x, c);
    a.choices = choices;
    a.n_choices = k;
    char *answer = arena_alloc(x->scratch, UI_ANSWER_MAX);
    if (!a.text || !answer || (n_choices && !choices)) {
        status_add(x, cmd, 500);
        return;
    }
    omadm_ui_result_t r = cfg->ui_alert(cfg->ui_ctx, &a, answer, UI_ANSWER_MAX);
    answer[UI_ANSWER_MAX - 1] = 0;
    int status = answer_status(r);
    syncml_cmd_t *st = status_add(x, cmd, status);
    if (st && status == 200 && code >= 1102)
        add_answers(x, st, code, answer);
    if (status == 304 || status == 214) {
        if (x->mode == RUN_SEQUENCE)
            x->ui_stop = true;
        if (x->mode == RUN_ATOMIC)
            x->atomic_ui_fail = true;
    }
}

void cmd_alert(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    int code = cmd->has_data ? alert_code(cmd) : -1;
    if (code < 0) {
        status_add(x, cmd, code == -1 && !cmd->has_data ? 412 : 400);
        return;
    }
    switch (code) {
    case 1100: case 1101: case 1102: case 1103: case 1104:
        ui_alert(x, cmd, code);
        return;
    case 1200: case 1201: case 1222:
        status_add(x, cmd, 200);
        return;
    case 1223:
        x->abort_session = true;
        status_add(x, cmd, 200);
        return;
    default:
        status_add(x, cmd, 406);
        return;
    }
}
