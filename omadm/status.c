/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c - building the reply: Status (one per command, or one per item
 * with TargetRef when codes differ) and Results, in command order.  The
 * Statuses come from memory reserved before the first command runs, so
 * that a message whose changes a plugin made durable can always be
 * answered: with the full reply, or, when that cannot be built or
 * encoded, with its Statuses alone (status_fallback_reply).
 */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "dispatch.h"

/* A Status and the text of its code, which may be rewritten in place. */
typedef struct status_obj {
    syncml_cmd_t cmd;
    char code[8];
} status_obj_t;

#define ID_LEN 21 /* a CmdID: up to 20 digits, and the NUL */

static const char *id_string(arena_t *a, unsigned long id)
{
    char num[ID_LEN + 3];
    snprintf(num, sizeof num, "%lu", id);
    return arena_strdup(a, num);
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

/* ---- the reservation ---- */

/* Encoded size of the Statuses-only reply, as XML (WBXML is never larger:
 * one byte per tag, strings unescaped): fixed markup, plus every string at
 * its worst escaping ('&' and CR take five bytes). */
#define XML_ESC 5
#define XML_STATUS 192 /* <Status> with CmdID, MsgRef, CmdRef, Cmd, Data */
#define XML_REF 32     /* <TargetRef></TargetRef> */
#define XML_HEADER 640 /* <SyncML>, <SyncHdr> with its fixed parts, <SyncBody>, <Final/> */
#define XML_EXTRA 1024 /* Chal, Cred and Meta of our SyncHdr, Alert 1222 */

typedef struct bound {
    size_t statuses; /* Statuses a message can get */
    size_t bytes;    /* arena bytes they take */
    size_t text;     /* their encoded size */
} bound_t;

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A command (and what it holds) gets at most one Status, or one per item
 * with a TargetRef; reply_cmd and add_ref below take exactly this. */
static void bound_cmd(bound_t *b, const syncml_cmd_t *c, const char *msg_id)
{
    size_t n = sat_add(c->n_items, 1);
    size_t bytes = arena_cost(sizeof(status_obj_t)) + arena_cost(ID_LEN) +
                   arena_cost(slen(c->cmd_id) + 1) + arena_cost(slen(c->name) + 1);
    size_t text = XML_STATUS + XML_ESC * (ID_LEN + slen(msg_id) + slen(c->cmd_id) + slen(c->name));
    b->statuses = sat_add(b->statuses, n);
    b->bytes = sat_add(b->bytes, sat_mul(n, bytes));
    b->text = sat_add(b->text, sat_mul(n, text));
    for (const syncml_item_t *it = c->items; it; it = it->next) {
        size_t ref = slen(it->target ? it->target : it->source);
        b->bytes = sat_add(b->bytes, arena_cost(sizeof(syncml_strlist_t)) + arena_cost(ref + 1));
        b->text = sat_add(b->text, sat_add(XML_REF, sat_mul(XML_ESC, ref)));
    }
    for (const syncml_cmd_t *ch = c->children; ch; ch = ch->next)
        bound_cmd(b, ch, msg_id);
}

omadm_error_t status_reserve(dm_exec_t *x, reply_reserve_t *rsv)
{
    const syncml_hdr_t *h = &x->req->hdr;
    /* the SyncHdr's Status: CmdRef and Cmd are constants */
    bound_t b = {1, arena_cost(sizeof(status_obj_t)) + arena_cost(ID_LEN),
                 XML_HEADER + XML_EXTRA + XML_STATUS};
    for (const syncml_cmd_t *c = x->req->cmds; c; c = c->next)
        bound_cmd(&b, c, h->msg_id);
    b.bytes = sat_add(b.bytes, arena_cost(slen(h->msg_id) + 1));
    b.bytes = sat_add(b.bytes, arena_cost(sat_mul(b.statuses, sizeof(syncml_cmd_t *))));
    b.text = sat_add(b.text, sat_mul(XML_ESC, slen(h->session_id) + ID_LEN + slen(h->msg_id) +
                                                  slen(h->source) + slen(x->dm->cfg.dev_id)));
    if (arena_reserve(&rsv->statuses, b.bytes))
        return OMADM_E_NOMEM;
    rsv->msg_ref = arena_strdup(&rsv->statuses, h->msg_id);
    rsv->own = arena_alloc(&rsv->statuses, sat_mul(b.statuses, sizeof *rsv->own));
    if (!rsv->msg_ref || !rsv->own)
        return OMADM_E_NOMEM;
    rsv->max_own = b.statuses;
    rsv->fallback_need = b.text;
    x->rsv = rsv;
    return OMADM_OK;
}

int status_reserve_fallback(dm_exec_t *x)
{
    reply_reserve_t *rsv = x->rsv;
    if (!rsv || rsv->fallback)
        return 0;
    rsv->fallback = rsv->fallback_need == SIZE_MAX ? NULL : om_alloc(x->dm, rsv->fallback_need);
    return rsv->fallback ? 0 : -1;
}

void status_reserve_free(omadm_t *dm, reply_reserve_t *rsv)
{
    om_free(dm, rsv->fallback);
    rsv->fallback = NULL;
    arena_free(&rsv->statuses);
}

/* ---- Status and Results ---- */

/* Where a Status and its strings live. */
static arena_t *status_arena(dm_exec_t *x)
{
    return x->rsv ? &x->rsv->statuses : &x->reply->arena;
}

/* CmdID, MsgRef, CmdRef and Cmd of a reply command answering cmd (NULL:
 * the SyncHdr); 0, or -1 when out of memory. */
static int fill_refs(dm_exec_t *x, arena_t *a, syncml_cmd_t *s, const syncml_cmd_t *cmd)
{
    s->cmd_id = id_string(a, x->next_cmd_id++);
    s->msg_ref = x->rsv ? x->rsv->msg_ref : arena_strdup(a, x->req->hdr.msg_id);
    if (cmd) {
        s->cmd_ref = cmd->cmd_id ? arena_strdup(a, cmd->cmd_id) : NULL;
        s->cmd = arena_strdup(a, cmd->name);
    } else {
        s->cmd_ref = "0";
        s->cmd = "SyncHdr";
    }
    if (!s->cmd_id || !s->msg_ref || (cmd && cmd->cmd_id && !s->cmd_ref) || !s->cmd)
        return -1;
    return 0;
}

static void lost(dm_exec_t *x)
{
    x->oom = true;
    if (x->rsv)
        x->rsv->lost = true;
}

syncml_cmd_t *status_add(dm_exec_t *x, const syncml_cmd_t *cmd, int code)
{
    arena_t *a = status_arena(x);
    status_obj_t *o = arena_alloc(a, sizeof *o);
    if (!o) {
        lost(x);
        return NULL;
    }
    syncml_cmd_t *s = &o->cmd;
    s->type = SYNCML_CMD_STATUS;
    s->name = syncml_cmd_type_name(SYNCML_CMD_STATUS);
    syncml_meta_init(&s->meta);
    if (fill_refs(x, a, s, cmd)) {
        lost(x);
        return NULL;
    }
    status_set_code(x, s, code);
    syncml_cmd_append(&x->reply->cmds, &x->reply->cmds_tail, s);
    if (x->rsv && x->rsv->n_own < x->rsv->max_own)
        x->rsv->own[x->rsv->n_own++] = s;
    else if (x->rsv)
        x->rsv->lost = true; /* more than bound_cmd counted */
    return s;
}

/* Every Status comes from status_add: its code text is its own. */
void status_set_code(dm_exec_t *x, syncml_cmd_t *status, int code)
{
    status_obj_t *o = (status_obj_t *)status;
    (void)x;
    snprintf(o->code, sizeof o->code, "%d", code);
    status->data = (const uint8_t *)o->code;
    status->data_len = strlen(o->code);
    status->has_data = true;
}

int status_add_target_ref(dm_exec_t *x, syncml_cmd_t *status, const char *ref)
{
    arena_t *a = status_arena(x);
    syncml_strlist_t *n = arena_alloc(a, sizeof *n);
    if (!n || !(n->s = arena_strdup(a, ref))) {
        lost(x);
        return -1;
    }
    syncml_strlist_t **end = &status->target_refs;
    while (*end)
        end = &(*end)->next;
    *end = n;
    return 0;
}

/* Results carry no Cmd: the SyncML 1.2 DTD has none (CmdRef says it). */
syncml_cmd_t *results_add(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    syncml_msg_t *r = x->reply;
    syncml_cmd_t *s = syncml_cmd_new(r, SYNCML_CMD_RESULTS);
    if (!s || fill_refs(x, &r->arena, s, cmd)) {
        x->oom = true;
        return NULL;
    }
    s->cmd = NULL;
    syncml_cmd_append(&r->cmds, &r->cmds_tail, s);
    return s;
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

/* ---- the Statuses-only reply ---- */

/* A Status whose data cannot go with it (the Results of a Get, the answer
 * of a UI alert) says the command failed; CmdIDs run 1, 2, 3 again. */
static void fallback_status(syncml_cmd_t *s, size_t id)
{
    int code = status_code(s);
    bool get = s->cmd && !strcmp(s->cmd, "Get");
    if (s->items || (get && code >= 200 && code < 300)) {
        status_obj_t *o = (status_obj_t *)s;
        snprintf(o->code, sizeof o->code, "%d", 500);
        s->data_len = strlen(o->code);
    }
    s->items = s->items_tail = NULL;
    s->n_items = 0;
    /* the id was written as a number of at least as many digits */
    char *cmd_id = (char *)s->cmd_id;
    snprintf(cmd_id, strlen(cmd_id) + 1, "%zu", id);
}

static omadm_error_t encode(syncml_msg_t *m, buf_t *b)
{
    return m->enc == SYNCML_ENC_WBXML ? codec_wbxml_encode(m->arena.dm, m, b)
                                      : codec_xml_encode(m->arena.dm, m, b);
}

omadm_error_t status_fallback_reply(reply_reserve_t *rsv, syncml_msg_t *out, bool ask_next,
                                    uint8_t **reply, size_t *reply_len)
{
    if (!rsv->fallback || rsv->lost || !rsv->n_own)
        return OMADM_E_NOMEM;
    syncml_msg_t m = *out; /* its header; shares out's arena, never frees it */
    m.cmds = m.cmds_tail = NULL;
    for (size_t i = 0; i < rsv->n_own; i++) {
        syncml_cmd_t *s = rsv->own[i];
        fallback_status(s, i + 1);
        syncml_cmd_append(&m.cmds, &m.cmds_tail, s);
    }
    syncml_cmd_t alert;
    char alert_id[ID_LEN + 3];
    if (ask_next) {
        memset(&alert, 0, sizeof alert);
        alert.type = SYNCML_CMD_ALERT;
        alert.name = syncml_cmd_type_name(SYNCML_CMD_ALERT);
        syncml_meta_init(&alert.meta);
        snprintf(alert_id, sizeof alert_id, "%zu", rsv->n_own + 1);
        alert.cmd_id = alert_id;
        alert.data = (const uint8_t *)"1222";
        alert.data_len = 4;
        alert.has_data = true;
        syncml_cmd_append(&m.cmds, &m.cmds_tail, &alert);
    }
    buf_t b;
    buf_init_fixed(&b, rsv->fallback, rsv->fallback_need);
    omadm_error_t err = encode(&m, &b);
    if (err && (m.hdr.cred || m.hdr.has_meta)) {
        /* room for credentials of any length is not reserved: without them
         * the server asks again (what was written may hold them; an
         * encoder that fails may have set its length back) */
        om_wipe(rsv->fallback, rsv->fallback_need);
        buf_init_fixed(&b, rsv->fallback, rsv->fallback_need);
        m.hdr.cred = NULL;
        m.hdr.source_name = NULL;
        m.hdr.has_meta = false;
        err = encode(&m, &b);
    }
    if (err) {
        om_wipe(rsv->fallback, rsv->fallback_need);
        return err;
    }
    *reply = buf_steal(&b, reply_len);
    rsv->fallback = NULL; /* the caller's now */
    return OMADM_OK;
}
