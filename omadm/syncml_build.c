/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syncml_build.c - the SyncML DM grammar on the decode side: element
 * events from a codec become the message model.
 *
 * Leniency (what real servers send): Meta before or after Data, whitespace
 * around LocURI and other scalar elements, Meta children with or without
 * xmlns="syncml:metinf", a MetInf wrapper inside Meta, Data as text or
 * opaque.  Problems local to a command are recorded in its decode_status
 * so the rest of the message still runs.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "internal.h"

typedef enum {
    F_ROOT,
    F_SYNCML,
    F_HDR,
    F_LOC,        /* Target / Source (header or item) */
    F_CRED,
    F_BODY,
    F_CMD,
    F_ITEM,
    F_META,
    F_CHAL,
    F_LEAF,       /* collecting text */
    F_SKIP        /* ignoring a subtree */
} frame_kind_t;

typedef enum {
    L_STR,        /* trimmed string */
    L_BYTES,      /* exact bytes (Item Data) */
    L_INT,        /* trimmed decimal into int64 */
    L_CMDID,      /* trimmed string, must be non-empty */
    L_NONCE       /* NextNonce: text as is, WBXML opaque bytes as base64 */
} leaf_kind_t;

typedef struct frame {
    frame_kind_t kind;
    syncml_cmd_t *cmd;       /* enclosing command, if any */
    syncml_item_t *item;     /* enclosing item, if any */
    syncml_meta_t *meta;     /* F_META */
    /* F_LOC */
    const char **loc_uri;
    const char **loc_name;
    /* F_LEAF */
    leaf_kind_t leaf;
    const char **dst_str;
    const uint8_t **dst_bytes;
    size_t *dst_len;
    bool *dst_has;
    bool *dst_opaque;
    int64_t *dst_int;
    bool ref_target;         /* TargetRef (else SourceRef) when dst_str is NULL */
    syncml_strlist_t **tref_next, **sref_next; /* F_CMD: where the next ref goes */
} frame_t;

struct syncml_builder {
    omadm_t *dm;
    syncml_msg_t *msg;
    frame_t *stack;
    unsigned depth;
    unsigned max_depth;
    unsigned n_cmds;
    buf_t text;
    bool text_opaque;
    bool seen_root;
    bool seen_hdr;
    bool hdr_bad;            /* a SyncHdr scalar was too long */
    int error;
    const char *detail;
};

syncml_builder_t *syncml_build_begin(struct omadm *dm, syncml_msg_t *msg)
{
    syncml_builder_t *b = om_calloc(dm, sizeof *b);
    if (!b)
        return NULL;
    b->dm = dm;
    b->msg = msg;
    b->max_depth = dm->cfg.max_depth;
    b->stack = om_calloc(dm, sizeof(frame_t) * (b->max_depth + 2));
    if (!b->stack) {
        om_free(dm, b);
        return NULL;
    }
    b->stack[0].kind = F_ROOT;
    buf_init(&b->text, dm);
    return b;
}

static frame_t *top(syncml_builder_t *b)
{
    return &b->stack[b->depth];
}

static int fail(syncml_builder_t *b, int err, const char *detail)
{
    if (!b->error) {
        b->error = err;
        b->detail = detail;
    }
    return err;
}

static frame_t *push(syncml_builder_t *b, frame_kind_t kind)
{
    if (b->depth + 1 > b->max_depth) {
        fail(b, OMADM_E_TOO_LARGE, "elements nested deeper than the configured limit");
        return NULL;
    }
    frame_t *parent = top(b);
    frame_t *f = &b->stack[++b->depth];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->cmd = parent->cmd;
    f->item = parent->item;
    return f;
}

static void mark_cmd(frame_t *f, int status)
{
    if (f->cmd && !f->cmd->decode_status)
        f->cmd->decode_status = status;
}

static int push_skip(syncml_builder_t *b)
{
    return push(b, F_SKIP) ? 0 : b->error;
}

static int push_leaf_str(syncml_builder_t *b, leaf_kind_t kind, const char **dst)
{
    frame_t *f = push(b, F_LEAF);
    if (!f)
        return b->error;
    f->leaf = kind;
    f->dst_str = dst;
    b->text.len = 0;
    b->text_opaque = false;
    return 0;
}

static int push_leaf_int(syncml_builder_t *b, int64_t *dst)
{
    frame_t *f = push(b, F_LEAF);
    if (!f)
        return b->error;
    f->leaf = L_INT;
    f->dst_int = dst;
    b->text.len = 0;
    return 0;
}

static int push_leaf_bytes(syncml_builder_t *b, const uint8_t **dst, size_t *len, bool *has,
                           bool *opaque)
{
    frame_t *f = push(b, F_LEAF);
    if (!f)
        return b->error;
    f->leaf = L_BYTES;
    f->dst_bytes = dst;
    f->dst_len = len;
    f->dst_has = has;
    f->dst_opaque = opaque;
    b->text.len = 0;
    b->text_opaque = false;
    return 0;
}

static int push_meta(syncml_builder_t *b, syncml_meta_t *meta, bool *has)
{
    frame_t *f = push(b, F_META);
    if (!f)
        return b->error;
    f->meta = meta;
    if (has)
        *has = true;
    return 0;
}

static int push_loc(syncml_builder_t *b, const char **uri, const char **name)
{
    frame_t *f = push(b, F_LOC);
    if (!f)
        return b->error;
    f->loc_uri = uri;
    f->loc_name = name;
    return 0;
}

/* ---- per-context start handlers ---- */

static int start_in_meta(syncml_builder_t *b, frame_t *f, const char *name)
{
    syncml_meta_t *m = f->meta;
    if (!strcmp(name, "MetInf"))
        return push_meta(b, m, NULL);
    if (!strcmp(name, "Format"))
        return push_leaf_str(b, L_STR, &m->format);
    if (!strcmp(name, "Type"))
        return push_leaf_str(b, L_STR, &m->type);
    if (!strcmp(name, "Mark"))
        return push_leaf_str(b, L_STR, &m->mark);
    if (!strcmp(name, "NextNonce"))
        return push_leaf_str(b, L_NONCE, &m->next_nonce);
    if (!strcmp(name, "Size"))
        return push_leaf_int(b, &m->size);
    if (!strcmp(name, "MaxMsgSize"))
        return push_leaf_int(b, &m->max_msg_size);
    if (!strcmp(name, "MaxObjSize"))
        return push_leaf_int(b, &m->max_obj_size);
    /* Other MetInf elements (Version, Anchor, EMI, Mem ...) are not used in DM. */
    return push_skip(b);
}

static int start_in_loc(syncml_builder_t *b, frame_t *f, const char *name)
{
    if (!strcmp(name, "LocURI"))
        return push_leaf_str(b, L_STR, f->loc_uri);
    if (!strcmp(name, "LocName") && f->loc_name)
        return push_leaf_str(b, L_STR, f->loc_name);
    mark_cmd(f, 400);
    return push_skip(b);
}

static int start_in_item(syncml_builder_t *b, frame_t *f, syncml_ns_t ns, const char *name)
{
    syncml_item_t *it = f->item;
    if (ns == SYNCML_NS_SYNCML) {
        if (!strcmp(name, "Target"))
            return push_loc(b, &it->target, &it->target_name);
        if (!strcmp(name, "Source"))
            return push_loc(b, &it->source, &it->source_name);
        if (!strcmp(name, "Meta"))
            return push_meta(b, &it->meta, &it->has_meta);
        if (!strcmp(name, "Data"))
            return push_leaf_bytes(b, &it->data, &it->data_len, &it->has_data, &it->data_opaque);
        if (!strcmp(name, "MoreData")) {
            it->more_data = true;
            return push_skip(b);
        }
        if (!strcmp(name, "SourceParent") || !strcmp(name, "TargetParent"))
            return push_skip(b);
    }
    mark_cmd(f, 400);
    return push_skip(b);
}

static int count_command(syncml_builder_t *b)
{
    if (++b->n_cmds > b->dm->cfg.max_commands)
        return fail(b, OMADM_E_TOO_LARGE, "more commands than the configured limit");
    return 0;
}

/* SyncML commands that exist but are not part of DM. */
static bool is_non_dm_command(const char *name)
{
    static const char *const names[] = {"Sync", "Map", "Put", "Search", "Move", NULL};
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static int start_command(syncml_builder_t *b, frame_t *parent, syncml_ns_t ns, const char *name,
                         syncml_cmd_t **head, syncml_cmd_t **tail)
{
    if (count_command(b))
        return b->error;
    syncml_cmd_type_t type =
        ns == SYNCML_NS_SYNCML ? syncml_cmd_type_from_name(name) : SYNCML_CMD_UNKNOWN;
    syncml_cmd_t *cmd = syncml_cmd_new(b->msg, type);
    if (!cmd)
        return fail(b, OMADM_E_NOMEM, "out of memory");
    if (type == SYNCML_CMD_UNKNOWN) {
        cmd->name = arena_strdup(&b->msg->arena, name);
        if (!cmd->name)
            return fail(b, OMADM_E_NOMEM, "out of memory");
        cmd->decode_status = ns == SYNCML_NS_SYNCML && is_non_dm_command(name) ? 406 : 400;
    }
    syncml_cmd_append(head, tail, cmd);
    frame_t *f = push(b, F_CMD);
    if (!f)
        return b->error;
    f->cmd = cmd;
    f->item = NULL;
    f->tref_next = &cmd->target_refs;
    f->sref_next = &cmd->source_refs;
    (void)parent;
    return 0;
}

static int start_in_cmd(syncml_builder_t *b, frame_t *f, syncml_ns_t ns, const char *name)
{
    syncml_cmd_t *c = f->cmd;
    if (c->type == SYNCML_CMD_UNKNOWN) {
        if (ns == SYNCML_NS_SYNCML && !strcmp(name, "CmdID") && !c->cmd_id)
            return push_leaf_str(b, L_CMDID, &c->cmd_id);
        return push_skip(b);
    }
    if (ns != SYNCML_NS_SYNCML) {
        mark_cmd(f, 400);
        return push_skip(b);
    }
    if (!strcmp(name, "CmdID"))
        return push_leaf_str(b, L_CMDID, &c->cmd_id);
    if (!strcmp(name, "Meta"))
        return push_meta(b, &c->meta, &c->has_meta);
    if (!strcmp(name, "Item")) {
        if (c->n_items >= b->dm->cfg.max_items)
            return fail(b, OMADM_E_TOO_LARGE, "more items in a command than the configured limit");
        syncml_item_t *it = syncml_item_add(b->msg, c);
        if (!it)
            return fail(b, OMADM_E_NOMEM, "out of memory");
        frame_t *nf = push(b, F_ITEM);
        if (!nf)
            return b->error;
        nf->item = it;
        return 0;
    }
    if (!strcmp(name, "NoResp")) {
        c->no_resp = true;
        return push_skip(b);
    }
    if (!strcmp(name, "Correlator"))
        return push_leaf_str(b, L_STR, &c->correlator);
    if (!strcmp(name, "Data") &&
        (c->type == SYNCML_CMD_ALERT || c->type == SYNCML_CMD_STATUS))
        return push_leaf_bytes(b, &c->data, &c->data_len, &c->has_data, NULL);
    if (c->type == SYNCML_CMD_STATUS || c->type == SYNCML_CMD_RESULTS) {
        if (!strcmp(name, "MsgRef"))
            return push_leaf_str(b, L_STR, &c->msg_ref);
        if (!strcmp(name, "CmdRef"))
            return push_leaf_str(b, L_STR, &c->cmd_ref);
        if (!strcmp(name, "Cmd"))
            return push_leaf_str(b, L_STR, &c->cmd);
        if (!strcmp(name, "TargetRef") || !strcmp(name, "SourceRef")) {
            /* collected, then appended to the list at end */
            int rc = push_leaf_str(b, L_STR, NULL);
            if (!rc)
                top(b)->ref_target = name[0] == 'T';
            return rc;
        }
        if (!strcmp(name, "Chal")) {
            c->chal = arena_alloc(&b->msg->arena, sizeof *c->chal);
            if (!c->chal)
                return fail(b, OMADM_E_NOMEM, "out of memory");
            syncml_meta_init(&c->chal->meta);
            return push(b, F_CHAL) ? 0 : b->error;
        }
    }
    if (c->type == SYNCML_CMD_ATOMIC || c->type == SYNCML_CMD_SEQUENCE) {
        if (syncml_cmd_type_from_name(name) != SYNCML_CMD_UNKNOWN || is_non_dm_command(name) ||
            strcmp(name, "Final") != 0)
            return start_command(b, f, ns, name, &c->children, &c->children_tail);
    }
    if (!strcmp(name, "Lang") || !strcmp(name, "Archive") || !strcmp(name, "SftDel") ||
        !strcmp(name, "NoResults"))
        return push_skip(b);
    /* Cred inside a command is forbidden in DM; anything else is unknown. */
    mark_cmd(f, 400);
    return push_skip(b);
}

static int start_in_hdr(syncml_builder_t *b, frame_t *f, syncml_ns_t ns, const char *name)
{
    syncml_hdr_t *h = &b->msg->hdr;
    (void)f;
    if (ns != SYNCML_NS_SYNCML)
        return push_skip(b);
    if (!strcmp(name, "VerDTD"))
        return push_leaf_str(b, L_STR, &h->ver_dtd);
    if (!strcmp(name, "VerProto"))
        return push_leaf_str(b, L_STR, &h->ver_proto);
    if (!strcmp(name, "SessionID"))
        return push_leaf_str(b, L_STR, &h->session_id);
    if (!strcmp(name, "MsgID"))
        return push_leaf_str(b, L_STR, &h->msg_id);
    if (!strcmp(name, "Target"))
        return push_loc(b, &h->target, &h->target_name);
    if (!strcmp(name, "Source"))
        return push_loc(b, &h->source, &h->source_name);
    if (!strcmp(name, "RespURI"))
        return push_leaf_str(b, L_STR, &h->resp_uri);
    if (!strcmp(name, "NoResp")) {
        h->no_resp = true;
        return push_skip(b);
    }
    if (!strcmp(name, "Meta"))
        return push_meta(b, &h->meta, &h->has_meta);
    if (!strcmp(name, "Cred")) {
        h->cred = arena_alloc(&b->msg->arena, sizeof *h->cred);
        if (!h->cred)
            return fail(b, OMADM_E_NOMEM, "out of memory");
        syncml_meta_init(&h->cred->meta);
        return push(b, F_CRED) ? 0 : b->error;
    }
    return push_skip(b);
}

int syncml_build_start(syncml_builder_t *b, const char *name, syncml_ns_t ns)
{
    if (b->error)
        return b->error;
    frame_t *f = top(b);
    switch (f->kind) {
    case F_ROOT:
        if (b->seen_root || strcmp(name, "SyncML") != 0 || ns == SYNCML_NS_OTHER)
            return fail(b, OMADM_E_NOT_SYNCML, "root element is not SyncML");
        b->seen_root = true;
        return push(b, F_SYNCML) ? 0 : b->error;
    case F_SYNCML:
        if (!strcmp(name, "SyncHdr") && !b->seen_hdr) {
            b->seen_hdr = true;
            return push(b, F_HDR) ? 0 : b->error;
        }
        if (!strcmp(name, "SyncBody") && !b->msg->body_seen) {
            b->msg->body_seen = true;
            return push(b, F_BODY) ? 0 : b->error;
        }
        return push_skip(b);
    case F_HDR:
        return start_in_hdr(b, f, ns, name);
    case F_LOC:
        return start_in_loc(b, f, name);
    case F_CRED: {
        syncml_cred_t *cr = b->msg->hdr.cred;
        if (!strcmp(name, "Meta"))
            return push_meta(b, &cr->meta, NULL);
        if (!strcmp(name, "Data"))
            return push_leaf_bytes(b, &cr->data, &cr->data_len, NULL, NULL);
        return push_skip(b);
    }
    case F_BODY:
        if (ns == SYNCML_NS_SYNCML && !strcmp(name, "Final")) {
            b->msg->final = true;
            return push_skip(b);
        }
        return start_command(b, f, ns, name, &b->msg->cmds, &b->msg->cmds_tail);
    case F_CMD:
        return start_in_cmd(b, f, ns, name);
    case F_ITEM:
        return start_in_item(b, f, ns, name);
    case F_META:
        return start_in_meta(b, f, name);
    case F_CHAL:
        if (!strcmp(name, "Meta"))
            return push_meta(b, &f->cmd->chal->meta, NULL);
        return push_skip(b);
    case F_LEAF:
        /* markup inside a scalar element */
        if (f->leaf != L_BYTES)
            mark_cmd(f, 400);
        return push_skip(b);
    case F_SKIP:
        return push_skip(b);
    }
    return fail(b, OMADM_E_INTERNAL, "builder state");
}

bool syncml_build_in_data(const syncml_builder_t *b)
{
    const frame_t *f = &b->stack[b->depth];
    return f->kind == F_LEAF && f->leaf == L_BYTES && f->dst_opaque;
}

int syncml_build_text(syncml_builder_t *b, const uint8_t *data, size_t len, bool opaque)
{
    if (b->error)
        return b->error;
    frame_t *f = top(b);
    if (f->kind != F_LEAF)
        return 0; /* whitespace between elements, or ignored content */
    size_t limit = f->leaf == L_BYTES ? b->dm->cfg.max_obj_size : b->dm->cfg.max_uri_len * 4 + 64;
    if (b->text.len + len > limit) {
        if (f->leaf == L_BYTES && f->cmd && !f->cmd->decode_status) {
            f->cmd->decode_status = 413;
            return 0;
        }
        if (f->leaf == L_BYTES)
            return 0;
        if (!f->cmd)
            b->hdr_bad = true; /* a header value cut short would change meaning */
        mark_cmd(f, 414);
        return 0;
    }
    if (opaque)
        b->text_opaque = true;
    if (buf_append(&b->text, data, len))
        return fail(b, OMADM_E_NOMEM, "out of memory");
    return 0;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The collected text without surrounding whitespace; NULL with *bad set
 * when it holds a NUL byte (not a string), NULL alone when out of memory. */
static const char *trimmed_copy(syncml_builder_t *b, bool *bad)
{
    const uint8_t *p = b->text.data ? b->text.data : (const uint8_t *)"";
    size_t n = b->text.len;
    *bad = false;
    while (n && is_space(*p))
        p++, n--;
    while (n && is_space(p[n - 1]))
        n--;
    if (memchr(p, 0, n)) {
        *bad = true;
        return NULL;
    }
    return arena_strndup(&b->msg->arena, (const char *)p, n);
}

static int end_leaf(syncml_builder_t *b, frame_t *f, frame_t *parent)
{
    if (f->leaf == L_BYTES) {
        uint8_t *d = arena_memdup(&b->msg->arena, b->text.data ? b->text.data : (uint8_t *)"",
                                  b->text.len);
        if (!d)
            return fail(b, OMADM_E_NOMEM, "out of memory");
        *f->dst_bytes = d;
        *f->dst_len = b->text.len;
        if (f->dst_has)
            *f->dst_has = true;
        if (f->dst_opaque)
            *f->dst_opaque = b->text_opaque;
        return 0;
    }
    if (f->leaf == L_NONCE && b->text_opaque) {
        char *enc = crypto_b64_encode(b->dm, b->text.data ? b->text.data : (uint8_t *)"",
                                      b->text.len);
        *f->dst_str = enc ? arena_strdup(&b->msg->arena, enc) : NULL;
        om_free(b->dm, enc);
        return *f->dst_str ? 0 : fail(b, OMADM_E_NOMEM, "out of memory");
    }
    bool bad;
    const char *s = trimmed_copy(b, &bad);
    if (!s && !bad)
        return fail(b, OMADM_E_NOMEM, "out of memory");
    if (!s) {
        mark_cmd(f, 400);
        return 0;
    }
    if (f->leaf == L_INT) {
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (*s && end && !*end && v >= 0)
            *f->dst_int = v;
        else
            mark_cmd(f, 400);
        return 0;
    }
    if (f->leaf == L_CMDID && !*s) {
        mark_cmd(f, 400);
        return 0;
    }
    if (f->dst_str) {
        *f->dst_str = s;
        return 0;
    }
    /* TargetRef / SourceRef of a Status or Results, appended in O(1) */
    syncml_strlist_t *n = arena_alloc(&b->msg->arena, sizeof *n);
    if (!n)
        return fail(b, OMADM_E_NOMEM, "out of memory");
    n->s = s;
    syncml_strlist_t ***next = f->ref_target ? &parent->tref_next : &parent->sref_next;
    **next = n;
    *next = &n->next;
    return 0;
}

int syncml_build_end(syncml_builder_t *b)
{
    if (b->error)
        return b->error;
    if (b->depth == 0)
        return fail(b, OMADM_E_INTERNAL, "unbalanced end event");
    frame_t *f = top(b);
    frame_t *parent = &b->stack[b->depth - 1];
    int rc = 0;
    if (f->kind == F_LEAF)
        rc = end_leaf(b, f, parent);
    b->depth--;
    return rc;
}

/* A header value we store and echo: not empty, no control characters. */
static bool scalar_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

omadm_error_t syncml_build_finish(syncml_builder_t *b, const char **err_detail)
{
    omadm_error_t err = (omadm_error_t)b->error;
    const char *detail = b->detail;
    if (!err) {
        syncml_hdr_t *h = &b->msg->hdr;
        if (!b->seen_root) {
            err = OMADM_E_NOT_SYNCML;
            detail = "no SyncML root element";
        } else if (!b->seen_hdr) {
            err = OMADM_E_MALFORMED;
            detail = "no SyncHdr";
        } else if (!h->ver_dtd || !h->ver_proto || !h->session_id || !h->msg_id) {
            err = OMADM_E_MALFORMED;
            detail = "SyncHdr lacks VerDTD, VerProto, SessionID or MsgID";
        } else if (strcmp(h->ver_dtd, "1.2") && strcmp(h->ver_dtd, "1.1")) {
            err = OMADM_E_MALFORMED;
            detail = "unsupported VerDTD (expected 1.2)";
        } else if (strncmp(h->ver_proto, "DM/1.", 5) != 0) {
            err = OMADM_E_MALFORMED;
            detail = "unsupported VerProto (expected DM/1.2)";
        } else if (!h->source || !*h->source) {
            err = OMADM_E_MALFORMED;
            detail = "SyncHdr lacks Source/LocURI";
        } else if (b->hdr_bad || !scalar_ok(h->session_id) || !scalar_ok(h->msg_id) ||
                   !scalar_ok(h->source) || (h->target && *h->target && !scalar_ok(h->target)) ||
                   (h->resp_uri && !scalar_ok(h->resp_uri))) {
            err = OMADM_E_MALFORMED;
            detail = "SyncHdr value empty, too long or with control characters";
        }
    }
    if (err_detail)
        *err_detail = detail;
    buf_free(&b->text);
    om_free(b->dm, b->stack);
    om_free(b->dm, b);
    return err;
}
