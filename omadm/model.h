/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model.h - the SyncML message model shared by both codecs and the engine.
 *
 * A decoded message lives entirely in one arena: every string and value
 * below is allocated from msg->arena and freed with it.  Values are bytes
 * (data + len), never re-encoded text.  The reply is built with the same
 * types and handed to a codec encoder.
 */
#ifndef OMADM_MODEL_H
#define OMADM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef enum {
    SYNCML_ENC_XML = 0,
    SYNCML_ENC_WBXML = 1
} syncml_encoding_t;

typedef enum {
    SYNCML_CMD_UNKNOWN = 0,  /* element not known to DM: answered 400/406 */
    SYNCML_CMD_ADD,
    SYNCML_CMD_ALERT,
    SYNCML_CMD_ATOMIC,
    SYNCML_CMD_COPY,
    SYNCML_CMD_DELETE,
    SYNCML_CMD_EXEC,
    SYNCML_CMD_GET,
    SYNCML_CMD_REPLACE,
    SYNCML_CMD_RESULTS,
    SYNCML_CMD_SEQUENCE,
    SYNCML_CMD_STATUS
} syncml_cmd_type_t;

/* Meta (syncml:metinf).  NULL strings / -1 numbers when absent. */
typedef struct syncml_meta {
    const char *format;
    const char *type;
    const char *mark;
    const char *next_nonce;   /* as text (b64) */
    int64_t size;
    int64_t max_msg_size;
    int64_t max_obj_size;
} syncml_meta_t;

typedef struct syncml_item {
    const char *target;        /* Target/LocURI, whitespace-trimmed */
    const char *source;        /* Source/LocURI, whitespace-trimmed */
    const char *target_name;   /* Target/LocName */
    const char *source_name;   /* Source/LocName */
    syncml_meta_t meta;
    bool has_meta;
    const uint8_t *data;       /* NULL when no <Data>; not NUL-terminated semantics */
    size_t data_len;
    bool has_data;
    bool data_opaque;          /* arrived as WBXML opaque */
    bool more_data;
    struct syncml_item *next;
} syncml_item_t;

typedef struct syncml_strlist {
    const char *s;
    struct syncml_strlist *next;
} syncml_strlist_t;

typedef struct syncml_chal {
    syncml_meta_t meta;
} syncml_chal_t;

typedef struct syncml_cmd {
    syncml_cmd_type_t type;
    const char *name;          /* element name as received */
    const char *cmd_id;        /* NULL when absent */
    int decode_status;         /* 0, or the status the decoder wants answered
                                  (400 malformed/unknown element, 406 SyncML
                                  command not used in DM, 413 value too big) */
    bool no_resp;
    syncml_meta_t meta;
    bool has_meta;
    const char *correlator;
    const uint8_t *data;       /* command-level Data (Alert code, Status code) */
    size_t data_len;
    bool has_data;
    syncml_item_t *items;
    syncml_item_t *items_tail;
    size_t n_items;
    struct syncml_cmd *children;   /* Atomic / Sequence */
    struct syncml_cmd *children_tail;
    /* Status / Results */
    const char *msg_ref;
    const char *cmd_ref;
    const char *cmd;
    syncml_strlist_t *target_refs;
    syncml_strlist_t *source_refs;
    syncml_chal_t *chal;
    struct syncml_cmd *next;
} syncml_cmd_t;

typedef struct syncml_cred {
    syncml_meta_t meta;
    const uint8_t *data;
    size_t data_len;
} syncml_cred_t;

typedef struct syncml_hdr {
    const char *ver_dtd;
    const char *ver_proto;
    const char *session_id;
    const char *msg_id;
    const char *target;        /* Target/LocURI */
    const char *target_name;
    const char *source;        /* Source/LocURI */
    const char *source_name;   /* Source/LocName */
    const char *resp_uri;
    bool no_resp;
    syncml_cred_t *cred;
    syncml_meta_t meta;
    bool has_meta;
} syncml_hdr_t;

typedef struct syncml_msg {
    arena_t arena;
    syncml_encoding_t enc;
    syncml_hdr_t hdr;
    syncml_cmd_t *cmds;
    syncml_cmd_t *cmds_tail;
    bool final;
    bool body_seen;
    /* encoding: after each Item of mark_cmd, the bytes written so far go
     * into mark_len[i] (the first mark_cap Items); see syncml_emit */
    const struct syncml_cmd *mark_cmd;
    size_t *mark_len;
    size_t mark_cap;
} syncml_msg_t;

/* Initialise an empty message whose arena draws on the platform of dm. */
struct omadm;
void syncml_msg_init(syncml_msg_t *msg, struct omadm *dm);
void syncml_msg_free(syncml_msg_t *msg);  /* frees the arena; safe after init */

void syncml_meta_init(syncml_meta_t *meta);
/* Append helpers; they return NULL only on allocation failure. */
syncml_cmd_t *syncml_cmd_new(syncml_msg_t *msg, syncml_cmd_type_t type);
void syncml_cmd_append(syncml_cmd_t **head, syncml_cmd_t **tail, syncml_cmd_t *cmd);
syncml_item_t *syncml_item_add(syncml_msg_t *msg, syncml_cmd_t *cmd);
int syncml_strlist_add(syncml_msg_t *msg, syncml_strlist_t **list, const char *s);

/* Element name <-> command type ("Add" -> SYNCML_CMD_ADD; unknown -> UNKNOWN). */
syncml_cmd_type_t syncml_cmd_type_from_name(const char *name);
const char *syncml_cmd_type_name(syncml_cmd_type_t type);

#endif
