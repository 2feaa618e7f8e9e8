/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c - omadm_process(): bytes -> decode -> run every command in
 * order -> reply model -> encode, plus persistence of the results.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "dispatch.h"
#include "large_obj.h"
#include "session.h"

static int worst_code(dm_exec_t *x, syncml_cmd_t *before)
{
    int worst = 0;
    for (syncml_cmd_t *s = before ? before->next : x->reply->cmds; s; s = s->next) {
        if (s->type != SYNCML_CMD_STATUS)
            continue;
        int c = status_code(s);
        if (!worst || (c >= 300 && worst < 300))
            worst = c;
    }
    return worst;
}

/* Outside an Atomic every item commits or rolls back its plugin changes
 * itself (item_finish); this only closes what a command left open. */
static void finish_plugins(dm_exec_t *x, syncml_cmd_t *before)
{
    if (x->mode == RUN_ATOMIC)
        return;
    int rc = csp_tx_finish(x->dm, worst_code(x, before) < 300, NULL);
    if (!rc)
        return;
    for (syncml_cmd_t *s = before ? before->next : x->reply->cmds; s; s = s->next)
        if (s->type == SYNCML_CMD_STATUS && status_code(s) < 300)
            status_set_code(x, s, rc);
}

static void run(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    bool group = cmd->type == SYNCML_CMD_ATOMIC || cmd->type == SYNCML_CMD_SEQUENCE;
    if (cmd->decode_status || !cmd->cmd_id) {
        int code = cmd->decode_status ? cmd->decode_status : 400;
        if (group)
            atomic_reject(x, cmd, code);
        else
            status_add(x, cmd, code);
        return;
    }
    switch (cmd->type) {
    case SYNCML_CMD_ADD: cmd_add(x, cmd); break;
    case SYNCML_CMD_REPLACE: cmd_replace(x, cmd); break;
    case SYNCML_CMD_DELETE: cmd_delete(x, cmd); break;
    case SYNCML_CMD_COPY: cmd_copy(x, cmd); break;
    case SYNCML_CMD_GET: cmd_get(x, cmd); break;
    case SYNCML_CMD_EXEC: cmd_exec(x, cmd); break;
    case SYNCML_CMD_ALERT: cmd_alert(x, cmd); break;
    case SYNCML_CMD_ATOMIC: cmd_atomic(x, cmd); break;
    case SYNCML_CMD_SEQUENCE: cmd_sequence(x, cmd); break;
    default: status_add(x, cmd, 400); break;
    }
}

int dispatch_command(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    if (cmd->type == SYNCML_CMD_STATUS || cmd->type == SYNCML_CMD_RESULTS) {
        /* the server's answers to our earlier messages: nothing to reply */
        if (x->mode != RUN_TOP) {
            status_add(x, cmd, 400);
            return 400;
        }
        if (cmd->type == SYNCML_CMD_STATUS && !x->misaddressed)
            client_on_status(x, cmd);
        return 200;
    }
    x->needs_reply = true;
    if (x->deny) {
        /* an unauthenticated server: answered, not executed */
        if (cmd->type == SYNCML_CMD_ATOMIC || cmd->type == SYNCML_CMD_SEQUENCE)
            atomic_reject(x, cmd, x->deny);
        else
            status_add(x, cmd, x->deny);
        return x->deny;
    }
    bool handled = false;
    cmd = lo_intercept(x, cmd, &handled);
    if (handled)
        return 213;
    syncml_cmd_t *before = x->reply->cmds_tail;
    run(x, cmd);
    if (cmd->type != SYNCML_CMD_ATOMIC)
        finish_plugins(x, before);
    return worst_code(x, before);
}

/* ---- the message ---- */

static omadm_error_t decode(omadm_t *dm, const uint8_t *msg, size_t len, syncml_msg_t *req)
{
    const char *detail = NULL;
    omadm_error_t err = codec_detect(msg, len) == SYNCML_ENC_WBXML
                            ? codec_wbxml_decode(dm, msg, len, req, &detail)
                            : codec_xml_decode(dm, msg, len, req, &detail);
    dm->last_detail = detail;
    if (err)
        om_log(dm, OMADM_LOG_WARN, "message refused: %s (%s)", omadm_strerror(err),
               detail ? detail : "");
    return err;
}

static omadm_error_t init_reply(dm_exec_t *x, syncml_msg_t *out, syncml_cmd_t **hdr_status)
{
    omadm_t *dm = x->dm;
    const syncml_hdr_t *in = &x->req->hdr;
    syncml_hdr_t *h = &out->hdr;
    unsigned long id = session_next_msg_id(dm, in->session_id, in->source);
    char num[24];
    snprintf(num, sizeof num, "%lu", id);
    out->enc = x->req->enc;
    h->ver_dtd = "1.2";
    h->ver_proto = "DM/1.2";
    h->session_id = arena_strdup(&out->arena, in->session_id);
    h->msg_id = arena_strdup(&out->arena, num);
    h->target = arena_strdup(&out->arena, in->source);
    h->source = arena_strdup(&out->arena, dm->cfg.dev_id);
    if (!id || !h->session_id || !h->msg_id || !h->target || !h->source)
        return OMADM_E_NOMEM;
    *hdr_status = status_add(x, NULL, 200);
    return *hdr_status ? OMADM_OK : OMADM_E_NOMEM;
}

/* The SyncHdr Target names the device a message is for: this device's
 * DevId, exactly (the Source of our replies).  A message for another
 * device is answered, so that the server hears of its mistake, but nothing
 * in it counts: the SyncHdr Status is 404 (unless the server's credentials
 * already failed it), every command is answered 215 and none runs, its
 * Status and Results are not taken (docs/protocol.md). */
static void check_target(dm_exec_t *x, syncml_cmd_t *hdr_status)
{
    omadm_t *dm = x->dm;
    const char *target = x->req->hdr.target;
    if (!hdr_status || (target && !strcmp(target, dm->cfg.dev_id)))
        return;
    x->misaddressed = true;
    if (!x->deny) {
        status_set_code(x, hdr_status, 404);
        x->deny = 215;
    }
    if (omadm_session_active(dm))
        dm->client_error = "the server addressed a message to another device (SyncHdr Target)";
    om_log(dm, OMADM_LOG_WARN, "message for device '%s', not for this one ('%s'): its commands "
           "are not executed", target ? target : "", dm->cfg.dev_id);
}

/* A server package spread over several messages: ask for the next one. */
static omadm_error_t ask_next_message(dm_exec_t *x)
{
    syncml_cmd_t *a = syncml_cmd_new(x->reply, SYNCML_CMD_ALERT);
    char num[24];
    if (!a)
        return OMADM_E_NOMEM; /* the Statuses-only reply carries its own 1222 */
    snprintf(num, sizeof num, "%lu", x->next_cmd_id++);
    a->cmd_id = arena_strdup(&x->reply->arena, num);
    a->data = (const uint8_t *)"1222";
    a->data_len = 4;
    a->has_data = true;
    if (!a->cmd_id)
        return OMADM_E_NOMEM;
    syncml_cmd_append(&x->reply->cmds, &x->reply->cmds_tail, a);
    return OMADM_OK;
}

static omadm_error_t remember_server(omadm_t *dm, const char *server)
{
    char *s = om_strdup(dm, server);
    if (!s)
        return OMADM_E_NOMEM;
    om_free(dm, dm->last_server);
    dm->last_server = s;
    return OMADM_OK;
}

/* A command left unrun because the message's full reply can no longer be
 * built: it fails (500; an Atomic or Sequence 500 and its children 215). */
static void not_run(dm_exec_t *x, const syncml_cmd_t *c)
{
    if (c->type == SYNCML_CMD_STATUS || c->type == SYNCML_CMD_RESULTS)
        return;
    if (c->type == SYNCML_CMD_ATOMIC || c->type == SYNCML_CMD_SEQUENCE)
        atomic_reject(x, c, 500);
    else
        status_add(x, c, 500);
}

/* Every command in order.  Once the full reply cannot be built, the rest
 * does not run: the message fails whole while no plugin has been touched,
 * else the rest is answered 500. */
static void run_commands(dm_exec_t *x)
{
    for (const syncml_cmd_t *c = x->req->cmds; c; c = c->next) {
        if (x->oom && !x->plugins_changed)
            return;
        if (x->oom) {
            not_run(x, c);
            continue;
        }
        /* nothing a command leaves in scratch outlives it */
        arena_mark_t mark = arena_mark(x->scratch);
        dispatch_command(x, c);
        arena_release(x->scratch, mark);
    }
}

typedef struct exec_result {
    bool reply_due;
    bool ask_next;          /* the reply asks for the server's next message */
    bool plugins_changed;   /* a plugin was touched */
    bool durable;           /* ... and made the message's changes durable */
    bool fallback;          /* the full reply cannot be built: the Statuses alone go */
} exec_result_t;

static omadm_error_t execute(omadm_t *dm, const syncml_msg_t *req, syncml_msg_t *out,
                             arena_t *scratch, reply_reserve_t *rsv, exec_result_t *res)
{
    dm_exec_t x = {.dm = dm, .req = req, .reply = out, .scratch = scratch, .next_cmd_id = 1};
    x.server_id = dm->cfg.server_id ? dm->cfg.server_id : req->hdr.source;
    syncml_cmd_t *hdr_status = NULL;
    omadm_error_t err = status_reserve(&x, rsv);
    if (!err)
        err = init_reply(&x, out, &hdr_status);
    if (err)
        return err;
    x.deny = client_on_header(&x, hdr_status);
    check_target(&x, hdr_status);
    dmtree_tx_begin(dm);
    run_commands(&x);
    /* a package that is not finished (no Final) needs our Alert 1222 even
     * when this message carried only Status */
    res->reply_due = (x.needs_reply || !req->final) && !x.abort_session;
    if (!x.oom)
        err = client_on_reply(&x, &res->reply_due);
    res->ask_next = res->reply_due && !req->final;
    if (!err && !x.oom && res->ask_next)
        err = ask_next_message(&x);
    /* plugins make the message's changes durable now (a store batches its
     * syncs per message); if that fails, nothing of the message counts */
    int end = csp_end_message(dm);
    res->plugins_changed = x.plugins_changed;
    res->durable = x.plugins_changed && !end;
    if (end && !x.oom && !err)
        err = OMADM_E_STORAGE;
    out->final = req->final;
    if ((x.oom || err) && res->durable) {
        /* what the plugins changed stays, and so does the engine tree's
         * part: the server must hear of it (unless it ended the session) */
        if (res->reply_due)
            om_log(dm, OMADM_LOG_WARN, "the reply cannot be built in full (%s): answering "
                   "with the statuses alone", omadm_strerror(x.oom ? OMADM_E_NOMEM : err));
        res->fallback = res->reply_due;
        return OMADM_OK;
    }
    if (x.oom || err) {
        /* no complete reply can be sent: leave the engine tree as it was */
        dmtree_tx_rollback(dm);
        return x.oom ? OMADM_E_NOMEM : err;
    }
    /* the tree's transaction stays open until the state is persisted */
    return OMADM_OK;
}

/* Session counters first, then the tree: if the tree cannot be saved the
 * counters go back as they were, so a refused message changes nothing;
 * unless a plugin made the message's changes durable (durable): then the
 * message is answered and the engine keeps its new state, saved again with
 * the next message. */
static omadm_error_t persist(omadm_t *dm, const session_snap_t *before, bool durable)
{
    omadm_error_t err = session_save(dm);
    if (err || !dm->tree_dirty)
        return err;
    err = dmtree_save(dm);
    if (err) {
        if (!durable) {
            session_restore(dm, before);
            session_save(dm);
        }
        return err;
    }
    dm->tree_dirty = false;
    return OMADM_OK;
}

/* The reply, or, when it cannot be built in full after a plugin made the
 * message's changes durable, the Statuses alone. */
static omadm_error_t encode_reply(omadm_t *dm, syncml_msg_t *out, reply_reserve_t *rsv,
                                  exec_result_t *res, uint8_t **reply, size_t *reply_len)
{
    omadm_error_t err = OMADM_OK;
    if (!res->fallback) {
        err = client_encode(dm, out, reply, reply_len);
        if (!err || !res->durable)
            return err;
        om_log(dm, OMADM_LOG_WARN, "the reply cannot be encoded (%s): answering with the "
               "statuses alone", omadm_strerror(err));
        res->fallback = true;
    }
    err = status_fallback_reply(rsv, out, res->ask_next, reply, reply_len);
    if (err)
        om_log(dm, OMADM_LOG_ERROR, "no reply for a message whose changes are durable");
    return err;
}

omadm_error_t omadm_process(omadm_t *dm, const uint8_t *msg, size_t msg_len, uint8_t **reply,
                            size_t *reply_len)
{
    if (!dm || (!msg && msg_len) || !reply || !reply_len)
        return OMADM_E_INVALID_ARG;
    *reply = NULL;
    *reply_len = 0;
    syncml_msg_t req, out;
    arena_t scratch;
    reply_reserve_t rsv;
    syncml_msg_init(&req, dm);
    syncml_msg_init(&out, dm);
    arena_init(&scratch, dm);
    memset(&rsv, 0, sizeof rsv);
    arena_init(&rsv.statuses, dm);
    exec_result_t res = {0};
    bool executed = false, snapped = false;
    session_snap_t before;
    char *resp_uri = NULL;
    omadm_error_t err = decode(dm, msg ? msg : (const uint8_t *)"", msg_len, &req);
    if (!err)
        err = remember_server(dm, req.hdr.source);
    if (!err && req.hdr.resp_uri && !(resp_uri = om_strdup(dm, req.hdr.resp_uri)))
        err = OMADM_E_NOMEM;
    if (!err)
        client_peer_limits(dm, &req.hdr);
    if (!err && !(err = session_snapshot(dm, &before)))
        snapped = true;
    if (!err && !(err = execute(dm, &req, &out, &scratch, &rsv, &res)))
        executed = true;
    /* the Statuses live as long as the reply (and what it leaves queued) */
    arena_adopt(&out.arena, &rsv.statuses);
    if (!err && !res.reply_due) {
        session_end(dm);
        lo_drop(dm);
    }
    /* the reply owns copies of all it needs: free the request first */
    arena_free(&scratch);
    syncml_msg_free(&req);
    bool was_dirty = dm->tree_dirty;
    if (executed && dmtree_savepoint(dm) > 0)
        dm->tree_dirty = true;
    if (!err && res.reply_due)
        err = encode_reply(dm, &out, &rsv, &res, reply, reply_len);
    if (!err) {
        omadm_error_t perr = persist(dm, &before, res.durable);
        if (perr && res.durable)
            om_log(dm, OMADM_LOG_WARN, "the engine state cannot be saved (%s); the message's "
                   "changes are durable and answered, the state is saved with the next message",
                   omadm_strerror(perr));
        else
            err = perr;
    }
    /* A failure after the commands ran leaves the engine tree as it was,
     * unless plugins already committed their part: then the tree keeps its
     * part too, so an Atomic across both is never half applied. */
    if (executed && err && !res.plugins_changed) {
        dmtree_tx_rollback(dm);
        dm->tree_dirty = was_dirty;
    } else if (executed) {
        dmtree_tx_commit(dm);
    }
    if (err && snapped)
        session_restore(dm, &before);
    if (snapped)
        session_snap_free(dm, &before);
    if (err) {
        om_free(dm, *reply);
        *reply = NULL;
        *reply_len = 0;
    }
    client_after_message(dm, resp_uri, res.reply_due, err);
    om_free(dm, resp_uri);
    status_reserve_free(dm, &rsv);
    dm->arena_keep = true; /* the next message reuses what this one took */
    arena_free(&scratch);
    syncml_msg_free(&out);
    syncml_msg_free(&req);
    dm->arena_keep = false;
    return err;
}

omadm_error_t omadm_end_session(omadm_t *dm)
{
    if (!dm)
        return OMADM_E_INVALID_ARG;
    session_end(dm);
    return session_save(dm);
}

const char *omadm_last_error_detail(const omadm_t *dm)
{
    return dm ? dm->last_detail : NULL;
}

omadm_error_t omadm_tree_read(omadm_t *dm, const char *uri, char **value, size_t *len,
                              int *is_interior)
{
    if (!dm || !uri || !value || !len || !is_interior)
        return OMADM_E_INVALID_ARG;
    syncml_msg_t dummy;
    arena_t scratch;
    syncml_msg_init(&dummy, dm);
    arena_init(&scratch, dm);
    dummy.hdr.msg_id = "0";
    dm_exec_t x = {.dm = dm, .req = &dummy, .reply = &dummy, .scratch = &scratch,
                   .server_id = ""};
    dm_target_t t;
    dm_read_t r;
    omadm_error_t err = OMADM_OK;
    *value = NULL;
    int rc = target_resolve(&x, uri, &t);
    if (rc || t.uri.query) {
        err = OMADM_E_INVALID_ARG;
        goto out;
    }
    rc = target_read(&x, &t, &r);
    if (rc) {
        err = rc == 404 ? OMADM_E_NOT_FOUND : rc == 405 ? OMADM_E_DENIED : OMADM_E_INTERNAL;
        goto out;
    }
    buf_t b;
    buf_init(&b, dm);
    if (r.interior) {
        for (const syncml_strlist_t *c = r.children; c; c = c->next) {
            if (c != r.children)
                buf_putc(&b, '/');
            uri_append_escaped(&b, c->s);
        }
    } else {
        buf_append(&b, r.data, r.len);
    }
    *value = (char *)buf_steal(&b, len);
    buf_free(&b);
    *is_interior = r.interior;
    if (!*value)
        err = OMADM_E_NOMEM;
out:
    arena_free(&scratch);
    syncml_msg_free(&dummy);
    return err;
}
