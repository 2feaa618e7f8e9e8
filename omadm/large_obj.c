/* SPDX-License-Identifier: Apache-2.0 */
/*
 * large_obj.c - large objects from the server (docs/session.md, "Large
 * objects"): an Add or Replace whose one Item carries <MoreData/> starts
 * or continues a value split across messages.
 *
 *   chunk (MoreData)        213; the bytes are kept (the first chunk must
 *                           give Meta Size, at most MaxObjSize)
 *   last chunk              the whole value runs as one Add/Replace; when
 *                           the bytes received differ from Size: 424 and
 *                           nothing is written
 *   anything else between   Alert 1225 for the broken object, which is
 *                           dropped; the new command runs as usual
 *
 * The object lives in the engine for the session the device opened
 * (omadm_session_begin; dmclient session keeps one engine for it); a
 * session that ends drops it.  Without such a session chunks answer 406.
 */
#include "large_obj.h"

#include <stdio.h>
#include <string.h>

struct dm_lo {
    syncml_cmd_type_t type;
    char *target;
    char *format, *mime;       /* from the first chunk */
    bool opaque;
    int64_t size;
    buf_t data;
};

void lo_drop(omadm_t *dm)
{
    dm_lo_t *lo = dm->lo;
    if (!lo)
        return;
    buf_free(&lo->data);
    om_free(dm, lo->target);
    om_free(dm, lo->format);
    om_free(dm, lo->mime);
    om_free(dm, lo);
    dm->lo = NULL;
}

static bool is_chunk_cmd(const syncml_cmd_t *cmd)
{
    return (cmd->type == SYNCML_CMD_ADD || cmd->type == SYNCML_CMD_REPLACE) &&
           cmd->n_items == 1 && cmd->items->target;
}

static int64_t declared_size(const syncml_cmd_t *cmd, const syncml_item_t *it)
{
    if (it->has_meta && it->meta.size >= 0)
        return it->meta.size;
    return cmd->has_meta ? cmd->meta.size : -1;
}

/* Alert 1225 naming the object that was broken off. */
static void alert_1225(dm_exec_t *x, const char *target)
{
    syncml_msg_t *r = x->reply;
    syncml_cmd_t *a = syncml_cmd_new(r, SYNCML_CMD_ALERT);
    syncml_item_t *it = a ? syncml_item_add(r, a) : NULL;
    char num[24];
    snprintf(num, sizeof num, "%lu", x->next_cmd_id++);
    if (!it || !(a->cmd_id = arena_strdup(&r->arena, num)) ||
        !(it->target = arena_strdup(&r->arena, target))) {
        x->oom = true;
        return;
    }
    it->source = it->target;
    a->data = (const uint8_t *)"1225";
    a->data_len = 4;
    a->has_data = true;
    syncml_cmd_append(&r->cmds, &r->cmds_tail, a);
}

static int start(dm_exec_t *x, const syncml_cmd_t *cmd)
{
    omadm_t *dm = x->dm;
    const syncml_item_t *it = cmd->items;
    int64_t size = declared_size(cmd, it);
    if (size < 0)
        return 400; /* the first chunk must say how big the object is */
    if ((uint64_t)size > dm->cfg.max_obj_size)
        return 413;
    dm_lo_t *lo = om_calloc(dm, sizeof *lo);
    if (!lo)
        return 500;
    dm->lo = lo;
    lo->type = cmd->type;
    lo->size = size;
    lo->opaque = it->data_opaque;
    buf_init(&lo->data, dm);
    const char *mime = item_type(cmd, it);
    lo->target = om_strdup(dm, it->target);
    lo->format = om_strdup(dm, item_format(cmd, it));
    lo->mime = mime ? om_strdup(dm, mime) : NULL;
    if (!lo->target || !lo->format || (mime && !lo->mime) ||
        buf_append(&lo->data, it->data, it->has_data ? it->data_len : 0)) {
        lo_drop(dm);
        return 500;
    }
    return 213;
}

const syncml_cmd_t *lo_intercept(dm_exec_t *x, const syncml_cmd_t *cmd, bool *handled)
{
    omadm_t *dm = x->dm;
    dm_lo_t *lo = dm->lo;
    *handled = false;
    /* only within a session the engine lives through: a host that runs
     * one process per message would lose the chunks (they answer 406) */
    if (x->mode != RUN_TOP || !omadm_session_active(dm))
        return cmd;
    bool chunkish = is_chunk_cmd(cmd);
    if (lo && !(chunkish && cmd->type == lo->type && !strcmp(cmd->items->target, lo->target))) {
        /* something else arrived before the last chunk */
        alert_1225(x, lo->target);
        lo_drop(dm);
        lo = NULL;
    }
    if (!chunkish || (!lo && !cmd->items->more_data))
        return cmd;
    *handled = true;
    const syncml_item_t *it = cmd->items;
    if (!lo) {
        status_add(x, cmd, start(x, cmd));
        return NULL;
    }
    size_t add = it->has_data ? it->data_len : 0;
    if (lo->data.len + add > dm->cfg.max_obj_size || (int64_t)(lo->data.len + add) > lo->size) {
        /* more than announced: it cannot end well */
        lo_drop(dm);
        status_add(x, cmd, 424);
        return NULL;
    }
    if (buf_append(&lo->data, it->data, add)) {
        lo_drop(dm);
        status_add(x, cmd, 500);
        return NULL;
    }
    if (it->more_data) {
        status_add(x, cmd, 213);
        return NULL;
    }
    if ((int64_t)lo->data.len != lo->size) {
        lo_drop(dm);
        status_add(x, cmd, 424); /* nothing is committed */
        return NULL;
    }
    /* the whole value as one ordinary command */
    syncml_cmd_t *whole = arena_alloc(x->scratch, sizeof *whole);
    syncml_item_t *wi = arena_alloc(x->scratch, sizeof *wi);
    uint8_t *data = lo->data.len ? arena_memdup(x->scratch, lo->data.data, lo->data.len) : NULL;
    if (!whole || !wi || (lo->data.len && !data)) {
        lo_drop(dm);
        status_add(x, cmd, 500);
        return NULL;
    }
    *whole = *cmd;
    *wi = *it;
    wi->next = NULL;
    wi->more_data = false;
    wi->data = data ? data : (const uint8_t *)"";
    wi->data_len = lo->data.len;
    wi->has_data = true;
    wi->data_opaque = lo->opaque;
    wi->has_meta = true;
    wi->meta.format = arena_strdup(x->scratch, lo->format);
    wi->meta.type = lo->mime ? arena_strdup(x->scratch, lo->mime) : NULL;
    wi->meta.size = -1;
    whole->items = whole->items_tail = wi;
    lo_drop(dm);
    *handled = false;
    return whole;
}
