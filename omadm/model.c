/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model.c - constructors for the SyncML message model.
 */
#include "model.h"

#include <string.h>

#include "internal.h"

void syncml_meta_init(syncml_meta_t *meta)
{
    memset(meta, 0, sizeof *meta);
    meta->size = -1;
    meta->max_msg_size = -1;
    meta->max_obj_size = -1;
}

void syncml_msg_init(syncml_msg_t *msg, struct omadm *dm)
{
    memset(msg, 0, sizeof *msg);
    arena_init(&msg->arena, dm);
    syncml_meta_init(&msg->hdr.meta);
}

void syncml_msg_free(syncml_msg_t *msg)
{
    arena_free(&msg->arena);
    msg->cmds = msg->cmds_tail = NULL;
}

syncml_cmd_t *syncml_cmd_new(syncml_msg_t *msg, syncml_cmd_type_t type)
{
    syncml_cmd_t *c = arena_alloc(&msg->arena, sizeof *c);
    if (!c)
        return NULL;
    c->type = type;
    c->name = syncml_cmd_type_name(type);
    syncml_meta_init(&c->meta);
    return c;
}

void syncml_cmd_append(syncml_cmd_t **head, syncml_cmd_t **tail, syncml_cmd_t *cmd)
{
    cmd->next = NULL;
    if (*tail)
        (*tail)->next = cmd;
    else
        *head = cmd;
    *tail = cmd;
}

syncml_item_t *syncml_item_add(syncml_msg_t *msg, syncml_cmd_t *cmd)
{
    syncml_item_t *it = arena_alloc(&msg->arena, sizeof *it);
    if (!it)
        return NULL;
    syncml_meta_init(&it->meta);
    if (cmd->items_tail)
        cmd->items_tail->next = it;
    else
        cmd->items = it;
    cmd->items_tail = it;
    cmd->n_items++;
    return it;
}

int syncml_strlist_add(syncml_msg_t *msg, syncml_strlist_t **list, const char *s)
{
    syncml_strlist_t *n = arena_alloc(&msg->arena, sizeof *n);
    if (!n)
        return -1;
    n->s = s;
    while (*list)
        list = &(*list)->next;
    *list = n;
    return 0;
}

static const struct {
    const char *name;
    syncml_cmd_type_t type;
} cmd_names[] = {
    {"Add", SYNCML_CMD_ADD},         {"Alert", SYNCML_CMD_ALERT},
    {"Atomic", SYNCML_CMD_ATOMIC},   {"Copy", SYNCML_CMD_COPY},
    {"Delete", SYNCML_CMD_DELETE},   {"Exec", SYNCML_CMD_EXEC},
    {"Get", SYNCML_CMD_GET},         {"Replace", SYNCML_CMD_REPLACE},
    {"Results", SYNCML_CMD_RESULTS}, {"Sequence", SYNCML_CMD_SEQUENCE},
    {"Status", SYNCML_CMD_STATUS},
};

syncml_cmd_type_t syncml_cmd_type_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof cmd_names / sizeof cmd_names[0]; i++)
        if (strcmp(cmd_names[i].name, name) == 0)
            return cmd_names[i].type;
    return SYNCML_CMD_UNKNOWN;
}

const char *syncml_cmd_type_name(syncml_cmd_type_t type)
{
    for (size_t i = 0; i < sizeof cmd_names / sizeof cmd_names[0]; i++)
        if (cmd_names[i].type == type)
            return cmd_names[i].name;
    return "Unknown";
}
