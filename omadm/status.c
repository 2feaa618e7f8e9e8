/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c - building the reply: Status (one per command, or one per item
 * with TargetRef when codes differ) and Results, in command order.
 */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"

static const char *id_string(dm_exec_t *x, unsigned long id)
{
    char num[24];
    snprintf(num, sizeof num, "%lu", id);
    return arena_strdup(&x->reply->arena, num);
}

static const char *code_string(dm_exec_t *x, int code)
{
    char num[16];
    snprintf(num, sizeof num, "%d", code);
    return arena_strdup(&x->reply->arena, num);
}

static syncml_cmd_t *reply_cmd(dm_exec_t *x, syncml_cmd_type_t type, const syncml_cmd_t *cmd)
{
    syncml_msg_t *r = x->reply;
    syncml_cmd_t *s = syncml_cmd_new(r, type);
    if (!s) {
        x->oom = true;
        return NULL;
    }
    s->cmd_id = id_string(x, x->next_cmd_id++);
    s->msg_ref = arena_strdup(&r->arena, x->req->hdr.msg_id);
    if (cmd) {
        s->cmd_ref = cmd->cmd_id ? arena_strdup(&r->arena, cmd->cmd_id) : NULL;
        s->cmd = arena_strdup(&r->arena, cmd->name);
    } else {
        s->cmd_ref = "0";
        s->cmd = "SyncHdr";
    }
    if (!s->cmd_id || !s->msg_ref || (cmd && cmd->cmd_id && !s->cmd_ref) || (cmd && !s->cmd)) {
        x->oom = true;
        return NULL;
    }
    syncml_cmd_append(&r->cmds, &r->cmds_tail, s);
    return s;
}

syncml_cmd_t *status_add(dm_exec_t *x, const syncml_cmd_t *cmd, int code)
{
    syncml_cmd_t *s = reply_cmd(x, SYNCML_CMD_STATUS, cmd);
    if (!s)
        return NULL;
    status_set_code(x, s, code);
    return s;
}

void status_set_code(dm_exec_t *x, syncml_cmd_t *status, int code)
{
    const char *c = code_string(x, code);
    if (!c)
        x->oom = true;
    status->data = (const uint8_t *)(c ? c : "500");
    status->data_len = strlen((const char *)status->data);
    status->has_data = true;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int status_code(const syncml_cmd_t *status)
{
    const uint8_t *d = status->data;
    size_t n = d ? status->data_len : 0;
    while (n && is_space(d[n - 1]))
        n--;
    while (n && is_space(d[0])) {
        d++;
        n--;
    }
    if (n != 3)
        return -1;
    for (size_t i = 0; i < 3; i++)
        if (d[i] < '0' || d[i] > '9')
            return -1;
    int code = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    return code >= 100 && code <= 599 ? code : -1;
}

static int add_ref(dm_exec_t *x, syncml_strlist_t **list, const char *ref)
{
    const char *s = arena_strdup(&x->reply->arena, ref);
    if (s && !syncml_strlist_add(x->reply, list, s))
        return 0;
    x->oom = true;
    return -1;
}

int status_add_target_ref(dm_exec_t *x, syncml_cmd_t *status, const char *ref)
{
    return add_ref(x, &status->target_refs, ref);
}

int status_add_source_ref(dm_exec_t *x, syncml_cmd_t *status, const char *ref)
{
    return add_ref(x, &status->source_refs, ref);
}

/* Results carry no Cmd: the SyncML 1.2 DTD has none (CmdRef says it). */
syncml_cmd_t *results_add(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    syncml_cmd_t *r = reply_cmd(x, SYNCML_CMD_RESULTS, cmd);
    if (r)
        r->cmd = NULL;
    return r;
}

void status_for_items(dm_exec_t *x, const syncml_cmd_t *cmd, const int *codes)
{
    bool same = true;
    for (size_t i = 1; i < cmd->n_items; i++)
        same = same && codes[i] == codes[0];
    if (cmd->n_items == 0) {
        status_add(x, cmd, codes ? codes[0] : 400);
        return;
    }
    if (same) {
        status_add(x, cmd, codes[0]);
        return;
    }
    size_t i = 0;
    for (const syncml_item_t *it = cmd->items; it; it = it->next, i++) {
        syncml_cmd_t *s = status_add(x, cmd, codes[i]);
        const char *ref = it->target ? it->target : it->source;
        if (s && ref)
            status_add_target_ref(x, s, ref);
    }
}
