/* SPDX-License-Identifier: Apache-2.0 */
/*
 * omadm.h - public API of the OMA DM 1.2 device-side engine.
 *
 * The engine takes one server message as bytes (SyncML XML or WBXML) and
 * returns the device's reply as bytes in the same encoding.  It does no
 * network or file I/O of its own: clocks, randomness, logging, allocation
 * and persistence come from the host through the tables below.
 *
 * Each function's comment says what it returns (every error code it can
 * give), who owns what it takes and hands out, and from which threads it
 * may be called, in these terms:
 *
 * Ownership: every pointer passed in is borrowed for the duration of the
 * call unless the comment says otherwise.  Buffers the engine hands out are
 * owned by the caller and released with omadm_buffer_free() on the same
 * engine.  Strings a function returns as const char * are the library's:
 * static text, or valid until the next call on the same engine.
 *
 * Threads: the library keeps no global mutable state and needs no
 * initialisation call.
 *   "any thread"   the function may run in several threads at once.
 *   "engine"       any thread, but never at the same time as another call
 *                  on the same omadm_t; a certificate store registered on
 *                  the engine (omadm_certstore_register) counts as part of
 *                  it.  One engine per thread is fine; two threads sharing
 *                  one engine must serialise their calls.
 * Hooks (platform, storage, CSP handlers, callbacks) run in the thread
 * that called the function that calls them.  The library starts threads of
 * its own only inside omadm_step(), for the certificate enrollment's RSA
 * key generation, and joins them before it returns.
 */
#ifndef OMADM_H
#define OMADM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------------
 * Semantic versioning (docs/abi.md).  The macros give the version a host was
 * compiled against, omadm_version() the one it runs with. */
#define OMADM_VERSION_MAJOR 0
#define OMADM_VERSION_MINOR 1
#define OMADM_VERSION_PATCH 0
#define OMADM_VERSION_STRING "0.1.0"
/* 0xMMmmpp, for #if comparisons. */
#define OMADM_VERSION_NUM \
    ((OMADM_VERSION_MAJOR << 16) | (OMADM_VERSION_MINOR << 8) | OMADM_VERSION_PATCH)

/* Marks the functions the library exports; everything else stays inside it. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define OMADM_API __attribute__((visibility("default")))
#else
#define OMADM_API
#endif

/* ---- errors (API level; SyncML status codes are separate) ---------------- */

typedef enum {
    OMADM_OK = 0,
    OMADM_E_NOMEM = 1,        /* an allocation failed */
    OMADM_E_INVALID_ARG = 2,  /* NULL or inconsistent argument */
    OMADM_E_NOT_SYNCML = 3,   /* input is not a SyncML message at all */
    OMADM_E_TOO_LARGE = 4,    /* input exceeds a configured limit */
    OMADM_E_MALFORMED = 5,    /* SyncML, but the header is unusable */
    OMADM_E_STORAGE = 6,      /* the host storage hook failed */
    OMADM_E_NOT_FOUND = 7,    /* no such node */
    OMADM_E_EXISTS = 8,       /* already registered / already exists */
    OMADM_E_ENCODE = 9,       /* the reply could not be encoded */
    OMADM_E_CORRUPT = 10,     /* persisted state could not be read back */
    OMADM_E_INTERNAL = 11,    /* a bug: please report */
    OMADM_E_DENIED = 12,      /* not permitted */
    OMADM_E_BUSY = 13,        /* already in use (a store open twice in one process) */
    OMADM_E_NO_KEY = 14,      /* the certificate has no private key in the store */
    OMADM_E_NEWER_FORMAT = 15,/* persisted state of a newer format than this library
                                 reads: left as it is (docs/state.md) */
    OMADM_E_NO_DEVICE = 16,   /* the device that holds a key (a TPM) is not configured or
                                 cannot be reached (docs/keys.md) */
    OMADM_E__COUNT
} omadm_error_t;

/* The library's version as "MAJOR.MINOR.PATCH".
 * Returns: static text, never NULL.  Threads: any thread. */
OMADM_API const char *omadm_version(void);

/* A short description of err.
 * Returns: static text, never NULL; "unknown error" for values outside the
 * enum.  Threads: any thread. */
OMADM_API const char *omadm_strerror(omadm_error_t err);

/* ---- platform table ------------------------------------------------------- */

typedef enum {
    OMADM_LOG_ERROR = 0,
    OMADM_LOG_WARN = 1,
    OMADM_LOG_INFO = 2,
    OMADM_LOG_DEBUG = 3
} omadm_log_level_t;

/*
 * Host services.  Any NULL member falls back to a default: time(),
 * OpenSSL's RAND_bytes (random bytes are session nonces: they must be
 * unpredictable), no logging, malloc/realloc/free (give all three
 * allocation hooks or none).
 * The engine never calls anything else that touches the outside world.
 * Hooks are called from the thread that called into the library; one
 * table may serve several engines in several threads only if its hooks
 * are thread-safe themselves.
 */
typedef struct omadm_platform {
    void *ctx;                                            /* passed back to every hook */
    int64_t (*now)(void *ctx);                            /* seconds since 1970-01-01 UTC */
    int (*random)(void *ctx, uint8_t *buf, size_t len);   /* 0 on success */
    void (*log)(void *ctx, omadm_log_level_t level, const char *msg);
    void *(*alloc)(void *ctx, size_t size);               /* may return NULL */
    void *(*realloc)(void *ctx, void *ptr, size_t size);  /* may return NULL */
    void (*free)(void *ctx, void *ptr);                   /* NULL-safe */
} omadm_platform_t;

/* ---- storage interface ---------------------------------------------------- */

/*
 * Persistence goes through this table.  Keys are short ASCII names: "tree"
 * and "tree.<n>.a" / "tree.<n>.b" (the management tree: a manifest and its
 * buckets, docs/abi.md), "session" (session counters) and "auth" (client
 * session counter and authentication nonces).  load() returns 0 and a
 * buffer the engine releases with release(), 1 when the key does not
 * exist, negative on error.  save() must replace the whole value
 * atomically (old or new, never half).
 */
typedef struct omadm_storage {
    void *ctx;
    int (*load)(void *ctx, const char *key, uint8_t **data, size_t *len);
    void (*release)(void *ctx, uint8_t *data);
    int (*save)(void *ctx, const char *key, const uint8_t *data, size_t len);
} omadm_storage_t;

/* ---- UI alerts (1100..1104) ----------------------------------------------- */

typedef struct omadm_ui_alert {
    int code;                  /* 1100 display .. 1104 multiple choice */
    int min_dt, max_dt;        /* seconds; -1 when absent */
    const char *default_resp;  /* DR option or NULL */
    int max_len;               /* MAXLEN or -1 */
    char input_type;           /* IT option: 'A','N','D','T','P','I' or 0 */
    char echo_type;            /* ET option: 'T','P' or 0 */
    const char *text;          /* item 2 */
    const char *const *choices;/* items 3..; n_choices entries */
    size_t n_choices;
} omadm_ui_alert_t;

typedef enum {
    OMADM_UI_OK = 0,        /* displayed / yes / answer given -> 200 */
    OMADM_UI_NO = 1,        /* confirm rejected -> 304 */
    OMADM_UI_CANCEL = 2,    /* user cancelled -> 214 */
    OMADM_UI_TIMEOUT = 3,   /* no answer within MAXDT -> 408 */
    OMADM_UI_TOO_BIG = 4    /* cannot be shown -> 416 */
} omadm_ui_result_t;

/*
 * Answer a UI alert.  For 1102 write the text, for 1103/1104 the chosen
 * 1-based indices separated by '-', into answer (NUL-terminated, at most
 * answer_size bytes).  alert and its strings are borrowed for the call.
 * Called from omadm_process(), in its thread.
 */
typedef omadm_ui_result_t (*omadm_ui_fn)(void *ctx, const omadm_ui_alert_t *alert,
                                         char *answer, size_t answer_size);

/* ---- configuration -------------------------------------------------------- */

typedef struct omadm_config {
    /* ./DevInfo values (read-only in the tree). */
    const char *dev_id;        /* default "omadm-device" */
    const char *man;           /* default "omadm" */
    const char *mod;           /* default "omadm-client" */
    const char *dmv;           /* default "1.2" */
    const char *lang;          /* default "en-US" */
    /* ./DevDetail values. */
    const char *dev_typ;       /* default "device" */
    const char *oem;           /* default "omadm" */
    const char *fwv, *swv, *hwv; /* default "unknown" */

    /* Server identity used for ACL checks.  NULL (default): the SyncHdr
     * Source LocURI of each message. */
    const char *server_id;
    /* ACL of the root node when the tree is created.  Default
     * "Add=*&Delete=*&Exec=*&Get=*&Replace=*" (see docs/protocol.md,
     * "Tree, URIs, properties, ACLs"). */
    const char *root_acl;

    /* Limits.  0 selects the default; values above a ceiling (1 GiB for
     * sizes, 1000 for depths, 10^6 for counts) are clamped to it. */
    size_t max_msg_size;       /* input bytes; default 4 MiB */
    size_t max_obj_size;       /* one node value; default 1 MiB */
    unsigned max_depth;        /* element nesting; default 32 */
    unsigned max_commands;     /* commands per message incl. nested; default 20000 */
    unsigned max_items;        /* items per command; default 1000 */
    unsigned max_uri_len;      /* DevDetail/URI/MaxTotLen; default 1024 */
    unsigned max_seg_len;      /* DevDetail/URI/MaxSegLen; default 255 */
    unsigned max_uri_depth;    /* DevDetail/URI/MaxDepth; default 32 */
    unsigned max_nodes;        /* nodes servers may create in the engine tree
                                  (built-in ones do not count); default 100000 */
    size_t max_reply_size;     /* Results bytes one reply may carry; items
                                  beyond it answer 413; default 8 MiB.  In a
                                  session whose server gave a MaxMsgSize, a
                                  ?list= listing goes on over the messages
                                  and this bounds each message's part */

    /* UI alerts; NULL: no UI, every UI alert is answered 406. */
    omadm_ui_fn ui_alert;
    void *ui_ctx;
} omadm_config_t;

/* Fill cfg with the defaults above (static strings).  Cannot fail; cfg
 * must not be NULL.  Threads: any thread. */
OMADM_API void omadm_config_init(omadm_config_t *cfg);

/* ---- CSP plugins ---------------------------------------------------------- */

/* A generic alert (1226) a plugin wants delivered in the next session. */
typedef struct omadm_generic_alert {
    const char *id;        /* chosen by the plugin; stable until delivered */
    const char *source;    /* Item Source LocURI, e.g. the node that was Exec'd */
    const char *type;      /* Item Meta Type */
    const char *format;    /* Item Meta Format ("int", "chr") */
    const char *mark;      /* Item Meta Mark ("informational", "critical") or NULL */
    const char *data;      /* Item Data */
} omadm_generic_alert_t;

/* Receives alerts one by one (alert and its strings borrowed for the
 * call); return 0 to go on. */
typedef int (*omadm_alert_fn)(void *ctx, const omadm_generic_alert_t *alert);

/* "No background work is scheduled" in omadm_step()'s *next_due. */
#define OMADM_NEVER INT64_MAX

/* A value as bytes.  format NULL means "chr", type NULL means "text/plain". */
typedef struct omadm_value {
    const uint8_t *data;
    size_t len;
    const char *format;
    const char *type;
} omadm_value_t;

/* One request to a plugin.  All strings are borrowed for the call. */
typedef struct omadm_csp_req {
    const char *uri;        /* the full URI, normalised ("./A/B", percent-decoded),
                               in the server's spelling */
    const char *path;       /* part below the plugin's base ("" = the base) */
    const char *base;       /* the registered base the URI fell under */
    const char *server_id;  /* authenticated server id, never NULL */
    int atomic;             /* non-zero: the command is inside an Atomic (for nodes a
                               CSP documents as AtomicRequired) */
} omadm_csp_req_t;

/* Output context filled by get/list handlers. */
typedef struct omadm_csp_out omadm_csp_out_t;

/*
 * For CSP handlers, inside a get or list call, on the out they were given:
 * omadm_csp_out_leaf   get: describe a leaf (value and its strings copied).
 * omadm_csp_out_interior  get: an interior node; type (copied) is an MO
 *                      identifier or NULL.
 * omadm_csp_out_child  list: one child name (copied; no '/', not empty).
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (out or value/name NULL, a value
 * with len but no data, a bad child name); OMADM_E_NOMEM.
 * Threads: the handler's thread (the engine's), during the handler call.
 */
OMADM_API omadm_error_t omadm_csp_out_leaf(omadm_csp_out_t *out, const omadm_value_t *value);
OMADM_API omadm_error_t omadm_csp_out_interior(omadm_csp_out_t *out, const char *type);
OMADM_API omadm_error_t omadm_csp_out_child(omadm_csp_out_t *out, const char *name);

/*
 * A CSP.  Every handler returns 0 on success or a negative SyncML status
 * (-404, -405, -418 ...) that becomes the command's Status; any other
 * value becomes 500, except that exec may return a positive 2xx code
 * (202: accepted, finishing in the background).  Unset handlers answer
 * 405 (406 for list).
 *
 * Transactions: before the first change an item of a command (or a whole
 * Atomic) makes in this plugin the engine calls begin(); after the item or
 * Atomic it calls validate() and then commit(), or rollback() if anything
 * failed.  A failing validate() fails the command (or the Atomic).  Every
 * plugin touched by an Atomic is rolled back together.  end_message() runs
 * once per server message after all commands (a place to fsync in batch),
 * also when the message failed on the way; when it fails, omadm_process()
 * fails with OMADM_E_STORAGE and sends no reply.  Once it succeeded after
 * a plugin was touched, the message is answered (its Statuses alone when
 * the full reply cannot be built; docs/protocol.md).
 * Handlers run in the thread of the engine call that reaches them
 * (omadm_process, omadm_step, omadm_alerts, omadm_alert_delivered,
 * omadm_tree_read); req, value and arg are borrowed for the call.
 */
typedef struct omadm_csp {
    const char *name;
    const char *const *bases;    /* NULL-terminated, e.g. "./Vendor/MSFT/CertificateStore" */
    int (*get)(void *csp, const omadm_csp_req_t *req, omadm_csp_out_t *out);
    int (*list)(void *csp, const omadm_csp_req_t *req, omadm_csp_out_t *out);
    int (*add)(void *csp, const omadm_csp_req_t *req, const omadm_value_t *value);
    int (*replace)(void *csp, const omadm_csp_req_t *req, const omadm_value_t *value);
    int (*del)(void *csp, const omadm_csp_req_t *req);
    int (*exec)(void *csp, const omadm_csp_req_t *req, const omadm_value_t *arg,
                const char *correlator);
    int (*begin)(void *csp);
    int (*validate)(void *csp);
    int (*commit)(void *csp);
    int (*rollback)(void *csp);
    int (*end_message)(void *csp);

    /* Background work (e.g. certificate enrollment), outside any message:
     * do what is due at now (seconds since the epoch) and set *next_due to
     * when the next work falls due (OMADM_NEVER: none; a time <= now: more
     * is due at once).  May block on the network for a bounded time.  The
     * plugin makes its own changes durable before returning.  0, or a
     * negative value when the work could not be done (it stays due). */
    int (*step)(void *csp, int64_t now, int64_t *next_due);
    /* Generic alerts waiting for the next session, oldest first. */
    int (*alerts)(void *csp, omadm_alert_fn fn, void *fn_ctx);
    /* The server acknowledged alert id: forget it (0), or 1 when the id is
     * not this plugin's; negative on error. */
    int (*alert_delivered)(void *csp, const char *id);
} omadm_csp_t;

/* ---- the engine ----------------------------------------------------------- */

typedef struct omadm omadm_t;

/*
 * Create an engine.  cfg is copied (strings too; NULL: the defaults);
 * platform and storage are copied and may be NULL (libc; no persistence);
 * the hooks' ctx pointers must stay valid for the engine's life.
 * The persisted tree and session are loaded from storage here (auth state
 * when a session begins); older formats are read and written in the
 * current one when they next change (docs/state.md).  Nothing is written.
 * Returns OMADM_OK and *out, owned by the caller (omadm_free);
 * OMADM_E_INVALID_ARG (out NULL); OMADM_E_NOMEM (also when OpenSSL cannot
 * be set up: the first call in a process sets it up explicitly, which
 * the host may have done already); OMADM_E_STORAGE (load() failed);
 * OMADM_E_CORRUPT (the tree cannot be read back: a damaged session only
 * starts a new session); OMADM_E_NEWER_FORMAT (the tree or the session is
 * of a newer format than this library reads).  omadm_state_check() says
 * which value and which formats.  On failure *out is NULL.
 * Threads: any thread (the new engine is not shared yet).
 */
OMADM_API omadm_error_t omadm_new(const omadm_config_t *cfg, const omadm_platform_t *platform,
                        const omadm_storage_t *storage, omadm_t **out);
/* Free an engine and everything it owns (NULL-safe).  Buffers it handed
 * out must be released before.  Free the engine before the certificate
 * store registered on it.  Threads: engine. */
OMADM_API void omadm_free(omadm_t *dm);

/* ---- persisted state: formats and checks ----------------------------------- */

/*
 * Every value the engine stores starts with a format line, "<name>
 * <version>": "omadm-tree 2" (the key "tree"; the buckets "tree.<n>.a/b"
 * belong to it), "omadm-session 2", "omadm-auth 1".  This library reads
 * its own versions and the older ones (omadm-tree 1, omadm-session 1) and
 * refuses newer ones without changing them (docs/state.md).
 */

/* One finding of omadm_state_check(); everything borrowed for the call. */
typedef struct omadm_state_problem {
    const char *key;       /* the storage key: "tree", "tree.17.b", "session", "auth" */
    omadm_error_t err;     /* what was found: OMADM_E_CORRUPT (cannot be read back),
                              OMADM_E_NEWER_FORMAT (a newer format than this library
                              reads), OMADM_E_STORAGE (load() failed), or OMADM_OK:
                              an older format this library reads and converts when
                              the value next changes (a note, not a problem) */
    const char *found;     /* the format the value names ("omadm-tree 3"), or NULL
                              when it names none this library can tell */
    const char *current;   /* the format this library writes ("omadm-tree 2") */
    const char *detail;    /* for people: what is wrong, or what was done about it */
    int repaired;          /* non-zero: OMADM_STATE_REPAIR fixed it (detail says how) */
} omadm_state_problem_t;

/* Receives one finding (borrowed for the call). */
typedef void (*omadm_state_fn)(void *ctx, const omadm_state_problem_t *problem);

/* omadm_state_check flag: fix what can be fixed without losing anything
 * that can still be read (see omadm_state_check). */
#define OMADM_STATE_REPAIR 1u

/*
 * Check the engine's persisted state through storage as omadm_new() reads
 * it, with the same configuration (cfg: NULL for the defaults; the node
 * and URI limits apply to the tree), without starting an engine: the tree
 * (the manifest, then every bucket it names, each one reported by its
 * key), the session and the auth state.  Each finding goes to fn (may be
 * NULL), in that order.  Nothing is written, except with
 * OMADM_STATE_REPAIR: a damaged session is cleared (the engine would start
 * a new session anyway) and damaged auth state is written again with what
 * can be read of it (a session would start from that anyway); a damaged
 * tree and anything of a newer format are left as they are.
 * Returns OMADM_OK (everything can be read; older formats included), or
 * the err of the first finding left unrepaired: OMADM_E_CORRUPT,
 * OMADM_E_NEWER_FORMAT, OMADM_E_STORAGE; OMADM_E_INVALID_ARG (storage
 * NULL, or without load and save; unknown flags); OMADM_E_NOMEM.
 * Threads: any thread (not at the same time as an engine on the same
 * storage).
 */
OMADM_API omadm_error_t omadm_state_check(const omadm_config_t *cfg, const omadm_platform_t *platform,
                                          const omadm_storage_t *storage, unsigned flags,
                                          omadm_state_fn fn, void *ctx);

/* Register a plugin.  csp (borrowed) must outlive the engine; csp_ctx is
 * passed back to every handler.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or csp NULL, no bases, a base
 * that is not a valid URI, 64 plugins already); OMADM_E_EXISTS (a base, or
 * a node on its way, belongs to a plugin or a leaf already, or a base is
 * listed twice); OMADM_E_NOMEM.  Threads: engine. */
OMADM_API omadm_error_t omadm_register_csp(omadm_t *dm, const omadm_csp_t *csp, void *csp_ctx);

/*
 * Process one server message (msg borrowed).  On OMADM_OK *reply is the
 * reply (same encoding as the request), owned by the caller (release with
 * omadm_buffer_free), or NULL with *reply_len 0 when no reply is due (the
 * session is over).  State is persisted through the storage hook before
 * returning.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm, reply or reply_len NULL, msg
 * NULL with msg_len > 0); input refused, nothing changed
 * (omadm_last_error_detail says why): OMADM_E_NOT_SYNCML, OMADM_E_TOO_LARGE,
 * OMADM_E_MALFORMED; OMADM_E_NOMEM; OMADM_E_ENCODE (the reply cannot be
 * encoded); OMADM_E_STORAGE (a save() or a plugin's end_message failed: no
 * reply, the engine's state as before).  On failure *reply is NULL.  A
 * message whose changes a plugin made durable never fails: when its full
 * reply cannot be built or encoded its Statuses go alone, and when save()
 * fails the new state is kept and saved with the next message (a warning
 * is logged).
 * Threads: engine.
 */
OMADM_API omadm_error_t omadm_process(omadm_t *dm, const uint8_t *msg, size_t msg_len,
                            uint8_t **reply, size_t *reply_len);

/* Release a buffer this engine handed out (NULL-safe; nothing happens
 * when dm is NULL).  Threads: engine. */
OMADM_API void omadm_buffer_free(omadm_t *dm, void *buf);

/* The server ended the session without a message (an empty HTTP body):
 * forget the session counters and persist that.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm NULL); OMADM_E_NOMEM;
 * OMADM_E_STORAGE (save() failed).  Threads: engine. */
OMADM_API omadm_error_t omadm_end_session(omadm_t *dm);

/*
 * Run the plugins' due background work (see omadm_csp_t.step) at the
 * platform's now().  *next_due: the earliest time more work falls due, or
 * OMADM_NEVER.  Never call it from inside omadm_process().  May block on
 * the host's HTTP hook; certificate enrollment generates its RSA keys in
 * threads it starts and joins here.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or next_due NULL);
 * OMADM_E_STORAGE when a plugin failed (its work stays due; the others
 * still ran).  Threads: engine.
 */
OMADM_API omadm_error_t omadm_step(omadm_t *dm, int64_t *next_due);

/* Every queued generic alert of every plugin, through fn (oldest first per
 * plugin).  A host sends them in the next session's first package and calls
 * omadm_alert_delivered() for each one the server answered with 200.
 * fn returns 0 to go on; non-zero skips the rest of that plugin's alerts.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or fn NULL); OMADM_E_STORAGE
 * (a plugin cannot read its alerts).  Threads: engine. */
OMADM_API omadm_error_t omadm_alerts(omadm_t *dm, omadm_alert_fn fn, void *ctx);
/* Forget a delivered alert (id borrowed).
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or id NULL); OMADM_E_NOT_FOUND
 * (no plugin has it); OMADM_E_STORAGE (the plugin failed to forget it).
 * Threads: engine. */
OMADM_API omadm_error_t omadm_alert_delivered(omadm_t *dm, const char *id);

/* ---- client sessions (the device calls the server) -------------------------- */

typedef enum {
    OMADM_AUTH_NONE = 0,
    OMADM_AUTH_BASIC = 1,     /* syncml:auth-basic: B64(user:secret) in Cred */
    OMADM_AUTH_MD5 = 2,       /* syncml:auth-md5: digest over the peer's nonce */
    OMADM_AUTH_HMAC = 3       /* syncml:auth-MAC: x-syncml-hmac transport header */
} omadm_auth_t;

/* What a DMAcc holds for one server.  Strings are copied by
 * omadm_session_begin(). */
typedef struct omadm_account {
    const char *server_url;     /* where package 1 goes (its Target LocURI) */
    const char *server_id;      /* the server's identity: its user name for its
                                   credentials; NULL = not checked */
    omadm_auth_t client_auth;   /* how we prove who we are */
    const char *client_user;    /* our name (default: the DevId) */
    const char *client_secret;
    omadm_auth_t server_auth;   /* what we require of the server (NONE: nothing) */
    const char *server_secret;
    int wbxml;                  /* nonzero: our messages are WBXML */
} omadm_account_t;

/*
 * Start a session: package 1 (SyncHdr with a new SessionID, MsgID 1,
 * Target = server_url, Source = DevId, credentials as configured, our
 * MaxMsgSize/MaxObjSize; Alert 1201, or 1200 with server_initiated; the
 * ./DevInfo leaves; every queued generic alert; Final).  session_id:
 * the one a notification asked for, or NULL for a new one.  Then hand
 * each server message to omadm_process(); it answers within the session
 * (credentials, challenges, acknowledged alerts) until it returns no
 * reply.  Nonces persist through the storage hook ("auth").  acc and its
 * strings are copied.  *msg (owned by the caller, omadm_buffer_free) is
 * package 1 in the account's encoding.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm, acc, msg or msg_len NULL, no
 * server_url, an unknown auth value, a session_id that is empty or longer
 * than 16 characters); OMADM_E_NOMEM; OMADM_E_ENCODE; OMADM_E_STORAGE (the
 * session counters or nonces cannot be saved); OMADM_E_NEWER_FORMAT (the
 * auth state is of a newer format: left as it is; damaged auth state only
 * starts without nonces).  On failure *msg is NULL and no session is open.
 * Threads: engine.
 */
OMADM_API omadm_error_t omadm_session_begin(omadm_t *dm, const omadm_account_t *acc, int server_initiated,
                                  const char *session_id, uint8_t **msg, size_t *msg_len);

/* Returns non-zero while a session started by omadm_session_begin() is
 * open, 0 otherwise (also for NULL).  Threads: engine. */
OMADM_API int omadm_session_active(const omadm_t *dm);
/* The URL for the next message: the server's last RespURI, else
 * server_url.  Returns the engine's copy (valid until the next call on the
 * engine), or NULL without a session.  Threads: engine. */
OMADM_API const char *omadm_session_url(const omadm_t *dm);
/* Why the last session ended badly, e.g. "the server refused our
 * credentials".  Returns static text, or NULL.  Threads: engine. */
OMADM_API const char *omadm_session_error(const omadm_t *dm);
/* The SessionID of the session omadm_session_begin() opened, while it is
 * open (for log lines), else NULL.  Borrowed: valid until the session
 * ends or omadm_free().  Threads: engine. */
OMADM_API const char *omadm_session_id(const omadm_t *dm);

/* Bytes omadm_session_hmac_sign() writes for a user name of user_len bytes
 * (the account's client_user, else the DevId), NUL included:
 * 'algorithm=MD5, username="<user>", mac=<24 base64 characters>'. */
#define OMADM_HMAC_HEADER_SIZE(user_len) ((size_t)(user_len) + 57u)

/* HMAC (syncml:auth-MAC) for the open session.  Sign: the x-syncml-hmac
 * header value for a message we send, written NUL-terminated into buf,
 * which needs OMADM_HMAC_HEADER_SIZE(strlen(user name)) bytes.  Verify:
 * the check of a header we received with a server message (header and
 * body borrowed).
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (no open session, body NULL with
 * len > 0, sign: buf NULL or size 0); OMADM_E_NOMEM; sign:
 * OMADM_E_TOO_LARGE (buf too small); verify: OMADM_E_DENIED (header
 * missing, malformed, for another user or with a wrong mac).
 * Threads: engine. */
OMADM_API omadm_error_t omadm_session_hmac_sign(omadm_t *dm, const uint8_t *body, size_t len, char *buf,
                                      size_t size);
OMADM_API omadm_error_t omadm_session_hmac_verify(omadm_t *dm, const char *header, const uint8_t *body,
                                        size_t len);

/* ---- package 0: server notifications (implemented in omadm/notify.c) ---- */

typedef struct omadm_notification {
    unsigned version;          /* 10 bits, e.g. 12 for DM 1.2 */
    unsigned ui_mode;          /* 0 not specified, 1 background, 2 informative, 3 user interaction */
    unsigned initiator;        /* 0 client, 1 server */
    unsigned session_id;       /* 16 bits: the SessionID the session must use */
    char server_id[256];       /* NUL-terminated */
    const uint8_t *vendor;     /* vendor-specific body, borrowed from the input */
    size_t vendor_len;
} omadm_notification_t;

/* Parse a package 0 message (no digest check).  out->vendor points into
 * msg (borrowed from the caller).
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (out NULL, msg NULL with len > 0);
 * OMADM_E_MALFORMED (not a package 0 message).  Threads: any thread. */
OMADM_API omadm_error_t omadm_notification_parse(const uint8_t *msg, size_t len,
                                       omadm_notification_t *out);
/* Check its digest with the server's name and secret and the nonce this
 * device keeps for that server (docs/session.md, "Notifications").
 * Returns OMADM_OK (genuine); OMADM_E_INVALID_ARG (dm, server_id or
 * server_secret NULL, msg NULL with len > 0); OMADM_E_MALFORMED;
 * OMADM_E_DENIED (a digest mismatch, or it names another server);
 * OMADM_E_NOMEM; OMADM_E_STORAGE (the storage hook failed to load the
 * nonce); OMADM_E_CORRUPT (the stored nonce cannot be read back);
 * OMADM_E_NEWER_FORMAT (the auth state is of a newer format).  Never
 * checks against an empty nonce when the stored one cannot be read.
 * Threads: engine. */
OMADM_API omadm_error_t omadm_notification_verify(omadm_t *dm, const uint8_t *msg, size_t len,
                                        const char *server_id, const char *server_secret);

/*
 * ./DevDetail/Ext/Microsoft, the leaves Windows DM servers read in every
 * session (docs/protocol.md, "DevDetail/Ext/Microsoft").  The engine builds
 * them read-only (Get; Add, Replace, Delete 405) with the defaults
 * "unknown" (chr) and "0" (int); the host gives the device's values with
 * omadm_devdetail_set(), after omadm_new() and between messages.  name:
 *   "DeviceName", "DNSComputerName", "OSPlatform", "SMBIOSVersion"  chr
 *   "ProcessorType" (SYSTEM_INFO's number: 8664 for x86-64), "TotalRAM"
 *   (MB)                                                             int
 * value (copied): the text; an int leaf takes 1 to 18 decimal digits.
 * NULL puts the default back.  LocalTime is not set by the host: it is the
 * platform's now() in the process's local time zone (localtime_r: TZ,
 * /etc/localtime), formatted when it is read, "2026-12-07T23:05:09+01:00".
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm or name NULL, another name,
 * LocalTime, an int value that is not decimal digits); OMADM_E_NOMEM.
 * Threads: engine. */
OMADM_API omadm_error_t omadm_devdetail_set(omadm_t *dm, const char *name, const char *value);

/* Local read of a node, as a Get from the device itself (no ACL check).
 * Leaf: *value is its bytes, *is_interior 0.  Interior: *value is the
 * '/'-joined child list, *is_interior 1.  *value is NUL-terminated, owned
 * by the caller and freed with omadm_buffer_free.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (a NULL argument, uri not a valid
 * node URI or with a query); OMADM_E_NOT_FOUND (absent); OMADM_E_DENIED
 * (the node cannot be read: an Exec-only node); OMADM_E_NOMEM;
 * OMADM_E_INTERNAL (a plugin failed).  Threads: engine. */
OMADM_API omadm_error_t omadm_tree_read(omadm_t *dm, const char *uri, char **value, size_t *len,
                              int *is_interior);

/* Why the last omadm_process() refused its input (e.g. "XML is not
 * well-formed").  Returns static text, or NULL.  Threads: engine. */
OMADM_API const char *omadm_last_error_detail(const omadm_t *dm);

/* What the last omadm_process() saw as the Source LocURI (the server).
 * Returns the engine's copy (valid until the next omadm_process or
 * omadm_free), or NULL.  Threads: engine. */
OMADM_API const char *omadm_last_server(const omadm_t *dm);

/* ---- messages for people ---------------------------------------------------- */

/* omadm_message_to_xml(): replace the Data of the SyncHdr's Cred by "***". */
#define OMADM_XML_MASK_CRED 1u

/*
 * A SyncML message (XML or WBXML, msg borrowed) as SyncML XML, for logs
 * and debugging: decoded with the engine's codecs and limits and encoded
 * again as XML (so XML comes out normalised).  Values that arrived as
 * WBXML opaque bytes are shown as text when they are text.  flags: 0 or
 * OMADM_XML_MASK_CRED.  The engine's state does not change.
 * *xml is NUL-terminated (*xml_len without the NUL), owned by the caller
 * and freed with omadm_buffer_free.  *detail (may be NULL) gets a short
 * static reason when the input is refused, else NULL.
 * Returns OMADM_OK; OMADM_E_INVALID_ARG (dm, xml or xml_len NULL, msg NULL
 * with len > 0, unknown flags); OMADM_E_NOT_SYNCML, OMADM_E_TOO_LARGE,
 * OMADM_E_MALFORMED (as omadm_process would refuse it); OMADM_E_NOMEM;
 * OMADM_E_ENCODE.  On failure *xml is NULL.  Threads: engine.
 */
OMADM_API omadm_error_t omadm_message_to_xml(omadm_t *dm, const uint8_t *msg, size_t len,
                                             unsigned flags, char **xml, size_t *xml_len,
                                             const char **detail);

#ifdef __cplusplus
}
#endif
#endif /* OMADM_H */
