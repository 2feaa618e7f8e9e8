/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.h - executing a decoded server message: the per-message
 * context, command handlers (one file per command family), target
 * resolution shared by them, and reply building (status.c).
 */
#ifndef OMADM_DISPATCH_H
#define OMADM_DISPATCH_H

#include <stdbool.h>

#include "csp_registry.h"
#include "dmtree.h"
#include "internal.h"
#include "model.h"
#include "uri.h"

/* Where a command is running: plain, inside an Atomic, inside a Sequence. */
typedef enum { RUN_TOP, RUN_ATOMIC, RUN_SEQUENCE } run_mode_t;

typedef struct dm_lo dm_lo_t;

/*
 * What a message's reply needs whatever happens once a plugin has made
 * changes (status.c, docs/protocol.md "Limits and failures"): every Status
 * the message can need, with its strings, comes from memory taken before
 * the first command runs, and room to encode those Statuses alone is taken
 * before a plugin is first touched.  So a message whose changes became
 * durable can always be answered, however short memory runs.
 */
typedef struct reply_reserve {
    arena_t statuses;          /* Status objects and their strings */
    const char *msg_ref;       /* the server's MsgID, one copy for all */
    syncml_cmd_t **own;        /* this message's Statuses, in order */
    size_t n_own, max_own;
    bool lost;                 /* a Status could not be kept (never, if the
                                  reservation is right) */
    size_t fallback_need;      /* bytes the Statuses-only reply can take */
    uint8_t *fallback;         /* that room, once a plugin is touched */
} reply_reserve_t;

typedef struct dm_exec {
    omadm_t *dm;
    const syncml_msg_t *req;
    syncml_msg_t *reply;
    arena_t *scratch;          /* per-message temporary strings */
    unsigned long next_cmd_id;
    const char *server_id;
    run_mode_t mode;
    uint64_t touched;          /* plugins touched by the current command (bits) */
    bool plugins_changed;      /* some plugin was touched in this message */
    bool ui_stop;              /* a UI alert answered No/cancel inside a Sequence */
    bool atomic_ui_fail;       /* ... inside an Atomic */
    bool abort_session;        /* Alert 1223 received */
    bool needs_reply;          /* the message carried a command */
    bool oom;                  /* a reply allocation failed: the full reply cannot
                                  be built (the message fails, or, once a plugin
                                  was touched, its Statuses go alone) */
    size_t reply_bytes;        /* Results data so far (max_reply_size) */
    int deny;                  /* the server is not authenticated, or the message
                                  is for another device: every command is
                                  answered with this code, none runs */
    bool misaddressed;         /* the SyncHdr Target is not our DevId: the
                                  message's Status and Results are not taken */
    reply_reserve_t *rsv;      /* NULL outside omadm_process */
} dm_exec_t;

/* ---- status.c: reply building ---- */

/* Before anything runs: take the memory every Status of req needs
 * (x->rsv).  OMADM_OK or OMADM_E_NOMEM. */
omadm_error_t status_reserve(dm_exec_t *x, reply_reserve_t *rsv);
/* Before a plugin is first touched: take the room for the Statuses-only
 * reply.  0, or -1 when out of memory (then nothing may be touched). */
int status_reserve_fallback(dm_exec_t *x);
/* The Statuses-only reply of a message whose full reply cannot be built:
 * the header of out, this message's Statuses in order (Gets and UI alerts
 * whose data cannot go with them answer 500), Alert 1222 when ask_next,
 * Final as out says; encoded in out's encoding into the reserved room,
 * which becomes the caller's (*reply).  Allocates nothing. */
omadm_error_t status_fallback_reply(reply_reserve_t *rsv, syncml_msg_t *out, bool ask_next,
                                    uint8_t **reply, size_t *reply_len);
/* Release what the reservation still holds (safe after a zeroed init). */
void status_reserve_free(omadm_t *dm, reply_reserve_t *rsv);

/* Append a Status for cmd with code (cmd may be NULL for SyncHdr).  The
 * returned object may be updated later (status_set_code). */
syncml_cmd_t *status_add(dm_exec_t *x, const syncml_cmd_t *cmd, int code);
void status_set_code(dm_exec_t *x, syncml_cmd_t *status, int code);
/* The code a Status carries: three digits, 100..599; -1 for anything else
 * (no Data, more or fewer digits, other characters). */
int status_code(const syncml_cmd_t *status);
int status_add_target_ref(dm_exec_t *x, syncml_cmd_t *status, const char *ref);
/* Append a Results for cmd (Get); items are added by the caller. */
syncml_cmd_t *results_add(dm_exec_t *x, const syncml_cmd_t *cmd);
/* Per-item codes of one command -> one Status (all equal) or one per item
 * with TargetRef. */
void status_for_items(dm_exec_t *x, const syncml_cmd_t *cmd, const int *codes);

/* ---- target.c: resolving URIs to engine nodes or plugins ---- */

typedef struct dm_target {
    dm_uri_t uri;
    dmnode_t *node;            /* the engine node, when it exists and is not inside a plugin */
    dmnode_t *deepest;         /* deepest existing engine node on the path */
    size_t n_found;            /* segments resolved in the engine tree */
    dm_csp_reg_t *csp;         /* plugin owning the URI (mount point or below) */
    const char *csp_path;      /* path below the mount ("" = mount itself) */
    const char *csp_base;      /* mount URI */
} dm_target_t;

/* Parse and resolve a LocURI; returns 0 or a status (400, 414). */
int target_resolve(dm_exec_t *x, const char *locuri, dm_target_t *t);
/* ACL check of right on the target (the node, or the deepest ancestor for
 * a node that does not exist yet); 0 or 425. */
int target_acl(dm_exec_t *x, const dm_target_t *t, unsigned right);
/* Fill a plugin request for t. */
void target_csp_req(dm_exec_t *x, const dm_target_t *t, omadm_csp_req_t *req);
/* Open the plugin transaction for t and note the plugin as touched. */
int target_csp_touch(dm_exec_t *x, const dm_target_t *t);
/* End of one item outside an Atomic: commit the plugins it touched when
 * code is a success (their validate/commit may still turn it into a
 * failure), else roll them and the engine tree (to savepoint) back.
 * Returns the item's final code.  Inside an Atomic: returns code. */
int item_finish(dm_exec_t *x, int code, size_t savepoint);

/* A leaf value read through the engine or a plugin. */
typedef struct dm_read {
    bool interior;
    const uint8_t *data;
    size_t len;
    const char *format;
    const char *type;
    syncml_strlist_t *children;   /* interior: child names */
    size_t n_children;
} dm_read_t;

/* Read a node (leaf value or child list); 0 or a status (404 ...).  No ACL
 * check here. */
int target_read(dm_exec_t *x, const dm_target_t *t, dm_read_t *out);

/* Item value after Meta defaults and format decoding: the bytes to store. */
typedef struct dm_value {
    const uint8_t *data;
    size_t len;
    const char *format;       /* stored format: b64 from the wire becomes bin */
    const char *type;
    const char *wire_format;  /* format as the server sent it */
    const uint8_t *wire_data; /* bytes as the server sent them */
    size_t wire_len;
} dm_value_t;

/* Meta of the item overrides the command's; defaults chr/text-plain. */
const char *item_format(const syncml_cmd_t *cmd, const syncml_item_t *it);
const char *item_type(const syncml_cmd_t *cmd, const syncml_item_t *it);
/* Validate an item's value against its format; 0 or a status (400/413/415).
 * For a plugin target only the format name and size are checked: the
 * plugin gets the value as sent. */
int value_from_item(dm_exec_t *x, const syncml_cmd_t *cmd, const syncml_item_t *it,
                    bool for_plugin, dm_value_t *v);
/* Write a value (add or replace) to a target; 0 or a status. */
int target_add_value(dm_exec_t *x, dm_target_t *t, const dm_value_t *v, bool interior);
int target_replace_value(dm_exec_t *x, dm_target_t *t, const dm_value_t *v);

/* ---- command handlers (cmd_*.c) ---- */

void cmd_add(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_replace(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_delete(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_copy(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_get(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_exec(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_alert(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_atomic(dm_exec_t *x, const syncml_cmd_t *cmd);
void cmd_sequence(dm_exec_t *x, const syncml_cmd_t *cmd);
/* An Atomic/Sequence that cannot run: its own code, 215 for each child. */
void atomic_reject(dm_exec_t *x, const syncml_cmd_t *cmd, int code);

/* ---- cmd_get.c: listings streamed over the messages of a session ---- */

/* Where a ?list= walk stands: per level (a node whose children are being
 * listed) its URI as Results show it, copies of its children's names and
 * the next one to visit; a plugin node also keeps the paths its children's
 * targets are made of.  All of it is the walk's (platform allocator). */
typedef struct walk_level {
    char **names;              /* one block: the names, then the strings below */
    size_t n, next;
    const char *uri;
    const char *norm, *csp_path, *csp_base;   /* a plugin node; NULL otherwise */
    dm_target_t t;             /* made from the above; valid within one run */
    bool t_valid;
} walk_level_t;

typedef struct walk {
    bool data;                 /* StructData: leaves carry their values */
    walk_level_t *lv;
    size_t depth, cap;
} walk_t;

/* What a streamed Results still has to send after the items it holds. */
typedef struct get_part {
    struct get_part *next;
    syncml_item_t *fixed, *fixed_tail;  /* a later target's items (in the stream's
                                           memory) */
    walk_t walk;               /* then the rest of this walk */
} get_part_t;

/*
 * A Get's Results that does not fit in one message of a session, made as
 * it goes (docs/session.md, "Listings made as they go"): res holds the items made
 * and not sent yet, parts what follows them.  The client (client.c) keeps
 * it with the rest of the reply, fills res before each message and gives
 * back what did not go out; what it holds is bounded by the server's
 * MaxMsgSize plus the walk's position, whatever was sent already.
 */
typedef struct get_stream {
    struct get_stream *next;   /* the session's streams (client.c) */
    syncml_cmd_t *res;         /* the Results (in the Get's reply memory);
                                  its items in the stream's */
    size_t raw;                /* what res's items take in a message, about */
    bool wbxml;                /* ... in WBXML */
    char *server_id;           /* whose ACLs the walk checks */
    arena_t arena;             /* the items not sent yet, those of parts */
    get_part_t *parts;         /* what comes after res's items, in order */
} get_stream_t;

/* Append the next items to s->res until they take about budget bytes of a
 * message or the Results is complete.  A node that fails now is left out
 * with a warning (its Get's Status went out long ago), as one gone
 * meanwhile is; OMADM_E_NOMEM when memory runs out or the plugin fails
 * with 500 (the message fails). */
omadm_error_t get_stream_fill(omadm_t *dm, get_stream_t *s, size_t budget);
/* Nothing comes after s->res's items. */
bool get_stream_done(const get_stream_t *s);
/* The items from unsent on (a tail of s->res's items, or NULL) are what is
 * left to send: they move into fresh memory of the stream and everything
 * else the stream made is freed.  OMADM_OK or OMADM_E_NOMEM (then nothing
 * changed). */
omadm_error_t get_stream_keep(omadm_t *dm, get_stream_t *s, syncml_item_t *unsent);
void get_stream_free(omadm_t *dm, get_stream_t *s);

/* Properties (props.c): Get/Replace of "?prop=". */
int prop_get(dm_exec_t *x, const dm_target_t *t, const char *prop, dm_read_t *out);
int prop_replace(dm_exec_t *x, dm_target_t *t, const char *prop, const syncml_item_t *it);

/* Run one command of any kind (dispatch.c); returns its status code (the
 * first status it appended), used by Atomic/Sequence. */
int dispatch_command(dm_exec_t *x, const syncml_cmd_t *cmd);

#endif
