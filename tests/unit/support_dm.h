/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_dm.h - shared helpers for the unit suites: a counting (and
 * failure-injecting) platform table, an engine fixture that wraps body
 * XML into a SyncML message and runs it through omadm_process(), and an
 * independent reply parser (libxml2 DOM, not the engine's codec) so the
 * assertions never trust the code under test to read its own output.
 *
 * Ownership: every t_* object is initialised by its _init and released by
 * its _free/_done; strings inside a parsed reply belong to the reply.
 */
#ifndef SUPPORT_DM_H
#define SUPPORT_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

/* 2001-07-11T16:38:17Z: the fixed clock of every test engine. */
#define T_NOW 994869497
#define T_NOW_TSTAMP "20010711T163817Z"

/* ---- allocator / platform ------------------------------------------------ */

typedef struct t_alloc {
    long outstanding;   /* blocks handed out and not yet freed */
    long calls;         /* alloc + realloc calls so far */
    long fail_at;       /* 0: never fail; N: the N-th call fails */
    bool persistent;    /* with fail_at: every call from the N-th on fails */
    long failures;      /* calls that were made to fail */
    int64_t now;        /* what the clock hook returns */
    unsigned logs;      /* log lines received */
} t_alloc_t;

void t_alloc_init(t_alloc_t *a);
/* Fill p with hooks on a (alloc/realloc/free counted, fixed clock). */
void t_platform(omadm_platform_t *p, t_alloc_t *a);

/* ---- reply model (parsed with libxml2's DOM) ----------------------------- */

typedef struct t_item {
    char *target, *source;     /* LocURI text or NULL */
    char *format, *type;       /* Meta/Format, Meta/Type or NULL */
    bool format_metinf;        /* Format carried xmlns="syncml:metinf" */
    char *size;                /* Meta/Size or NULL */
    char *data;                /* Data content (NUL-terminated copy) or NULL */
    size_t data_len;
    bool more_data;
} t_item_t;

typedef struct t_cmd {
    char *name;                /* element name: Status, Results, Alert ... */
    char *elems;               /* direct child element names, ' '-separated */
    char *cmd_id, *msg_ref, *cmd_ref, *cmd, *data, *correlator;
    char *target_refs[16];
    size_t n_target_refs;
    char *source_refs[16];
    size_t n_source_refs;
    t_item_t *items;
    size_t n_items;
} t_cmd_t;

typedef struct t_reply {
    bool present;              /* false: the engine returned no reply */
    char *raw;                 /* the reply bytes, NUL-terminated */
    size_t raw_len;
    char *ver_dtd, *ver_proto, *session_id, *msg_id, *target, *source;
    char *hdr_elems;           /* SyncHdr child element names */
    t_cmd_t *cmds;
    size_t n_cmds;
    bool final;
} t_reply_t;

void t_reply_init(t_reply_t *r);
void t_reply_free(t_reply_t *r);
/* Parse XML reply bytes; 0, or -1 when they are not a SyncML document. */
int t_reply_parse(t_reply_t *r, const uint8_t *xml, size_t len);

/* The n-th (0-based) Status whose CmdRef is cmdref; NULL when absent. */
const t_cmd_t *t_status_n(const t_reply_t *r, const char *cmdref, size_t n);
const t_cmd_t *t_status(const t_reply_t *r, const char *cmdref);
/* Its code as an int, or -1 when there is no such Status. */
int t_code(const t_reply_t *r, const char *cmdref);
/* Number of Status elements with that CmdRef. */
size_t t_status_count(const t_reply_t *r, const char *cmdref);
/* The Status for cmdref carrying TargetRef ref (per-item statuses). */
int t_code_ref(const t_reply_t *r, const char *cmdref, const char *ref);
/* The Results answering cmdref, or NULL. */
const t_cmd_t *t_results(const t_reply_t *r, const char *cmdref);
/* Index of a command in the reply, or -1. */
long t_index(const t_reply_t *r, const t_cmd_t *c);

/* ---- engine fixture ------------------------------------------------------ */

typedef struct t_env {
    t_alloc_t alloc;
    omadm_platform_t plat;
    omadm_config_t cfg;
    const omadm_storage_t *storage;
    omadm_t *dm;
    char session_id[32];
    int msg_id;                /* MsgID of the next server message */
    char server[128];          /* SyncHdr Source/LocURI of server messages */
    t_reply_t reply;           /* the last reply */
    omadm_error_t last_err;
} t_env_t;

/* Defaults: omadm_config_init(), fixed clock, session "1", server
 * "https://srv.example/dm", MsgID 1. */
void t_env_init(t_env_t *e);
/* omadm_new() with e->cfg; asserts success. */
void t_env_start(t_env_t *e);
/* omadm_free(), release the reply, assert no engine allocation leaked. */
void t_env_done(t_env_t *e);

/* Wrap body in a SyncML message to the engine's DevId (MsgID e->msg_id++,
 * Final when final), process it and parse the reply into e->reply.
 * Returns the API result. */
omadm_error_t t_send(t_env_t *e, bool final, const char *body);
omadm_error_t t_sendf(t_env_t *e, bool final, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Process raw bytes as they are. */
omadm_error_t t_send_raw(t_env_t *e, const char *msg, size_t len);

/* A full message around body, to the device "omadm-device" (the default
 * DevId); malloc'ed. */
char *t_message(const char *session_id, int msg_id, const char *server, const char *body,
                bool final);
/* ... to the device target (the SyncHdr Target LocURI). */
char *t_message_to(const char *session_id, int msg_id, const char *server, const char *target,
                   const char *body, bool final);

/* omadm_tree_read() into a malloc'ed string; NULL when not found.
 * *interior (may be NULL) tells the node kind. */
char *t_read(t_env_t *e, const char *uri, size_t *len, int *interior);

/* XML to WBXML or back, with the engine's own codecs on an engine of its
 * own (no failure injected there, nothing counted); the bytes are
 * malloc'ed, *out_len their length. */
uint8_t *t_convert(const uint8_t *in, size_t len, bool to_wbxml, size_t *out_len);

/* Build a printf'ed string; malloc'ed. */
char *t_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- command snippets (string literals) ---------------------------------- */

#define T_META(fmt) "<Meta><Format xmlns=\"syncml:metinf\">" fmt "</Format></Meta>"
#define T_META_FT(fmt, type)                                                           \
    "<Meta><Format xmlns=\"syncml:metinf\">" fmt "</Format><Type xmlns=\"syncml:metinf\">" \
    type "</Type></Meta>"
#define T_TARGET(uri) "<Target><LocURI>" uri "</LocURI></Target>"
#define T_SOURCE(uri) "<Source><LocURI>" uri "</LocURI></Source>"

#define T_ADD(id, uri, fmt, data)                                                      \
    "<Add><CmdID>" id "</CmdID><Item>" T_TARGET(uri) T_META(fmt) "<Data>" data           \
    "</Data></Item></Add>"
#define T_ADD_NODE(id, uri)                                                            \
    "<Add><CmdID>" id "</CmdID><Item>" T_TARGET(uri) T_META("node") "</Item></Add>"
#define T_REPLACE(id, uri, fmt, data)                                                  \
    "<Replace><CmdID>" id "</CmdID><Item>" T_TARGET(uri) T_META(fmt) "<Data>" data       \
    "</Data></Item></Replace>"
#define T_REPLACE_PROP(id, uri, data)                                                  \
    "<Replace><CmdID>" id "</CmdID><Item>" T_TARGET(uri) "<Data>" data "</Data></Item></Replace>"
#define T_DELETE(id, uri) "<Delete><CmdID>" id "</CmdID><Item>" T_TARGET(uri) "</Item></Delete>"
#define T_GET(id, uri) "<Get><CmdID>" id "</CmdID><Item>" T_TARGET(uri) "</Item></Get>"
#define T_COPY(id, src, dst)                                                           \
    "<Copy><CmdID>" id "</CmdID><Item>" T_TARGET(dst) T_SOURCE(src) "</Item></Copy>"
#define T_EXEC(id, uri) "<Exec><CmdID>" id "</CmdID><Item>" T_TARGET(uri) "</Item></Exec>"
#define T_ALERT(id, code) "<Alert><CmdID>" id "</CmdID><Data>" code "</Data></Alert>"
#define T_STATUS(id, ref, code)                                                        \
    "<Status><CmdID>" id "</CmdID><MsgRef>1</MsgRef><CmdRef>" ref                        \
    "</CmdRef><Cmd>Alert</Cmd><Data>" code "</Data></Status>"

#endif
