/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syncml_emit.c - the SyncML grammar on the encode side: a message model
 * becomes element events for a codec's sink, in the element order the
 * SyncML DTD requires.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "internal.h"

typedef struct emit {
    const syncml_msg_t *msg;
    const syncml_sink_t *sink;
    int rc;
} emit_t;

static void open_el(emit_t *e, const char *name, syncml_ns_t ns)
{
    if (!e->rc)
        e->rc = e->sink->start(e->sink->ctx, name, ns);
}

static void close_el(emit_t *e, const char *name, syncml_ns_t ns)
{
    if (!e->rc)
        e->rc = e->sink->end(e->sink->ctx, name, ns);
}

static void text_el(emit_t *e, const char *name, syncml_ns_t ns, const uint8_t *data, size_t len,
                    bool binary)
{
    open_el(e, name, ns);
    if (!e->rc && len)
        e->rc = e->sink->text(e->sink->ctx, data, len, binary);
    close_el(e, name, ns);
}

static void str_el(emit_t *e, const char *name, syncml_ns_t ns, const char *s)
{
    if (s)
        text_el(e, name, ns, (const uint8_t *)s, strlen(s), false);
}

static void int_el(emit_t *e, const char *name, int64_t v)
{
    char num[32];
    if (v < 0)
        return;
    snprintf(num, sizeof num, "%" PRId64, v);
    str_el(e, name, SYNCML_NS_METINF, num);
}

static void empty_el(emit_t *e, const char *name)
{
    open_el(e, name, SYNCML_NS_SYNCML);
    close_el(e, name, SYNCML_NS_SYNCML);
}

static bool meta_empty(const syncml_meta_t *m, const char *format_override)
{
    return !m->format && !format_override && !m->type && !m->mark && !m->next_nonce &&
           m->size < 0 && m->max_msg_size < 0 && m->max_obj_size < 0;
}

static void emit_meta(emit_t *e, const syncml_meta_t *m, const char *format_override)
{
    if (meta_empty(m, format_override))
        return;
    open_el(e, "Meta", SYNCML_NS_SYNCML);
    str_el(e, "Format", SYNCML_NS_METINF, format_override ? format_override : m->format);
    str_el(e, "Type", SYNCML_NS_METINF, m->type);
    str_el(e, "Mark", SYNCML_NS_METINF, m->mark);
    int_el(e, "Size", m->size);
    str_el(e, "NextNonce", SYNCML_NS_METINF, m->next_nonce);
    int_el(e, "MaxMsgSize", m->max_msg_size);
    int_el(e, "MaxObjSize", m->max_obj_size);
    close_el(e, "Meta", SYNCML_NS_SYNCML);
}

static void emit_loc(emit_t *e, const char *el, const char *uri, const char *name)
{
    if (!uri)
        return;
    open_el(e, el, SYNCML_NS_SYNCML);
    str_el(e, "LocURI", SYNCML_NS_SYNCML, uri);
    str_el(e, "LocName", SYNCML_NS_SYNCML, name);
    close_el(e, el, SYNCML_NS_SYNCML);
}

/* True when the bytes are text XML 1.0 can carry: well-formed UTF-8
 * (no overlong forms, surrogates or code points past U+10FFFF) of XML
 * Chars (no controls but tab, newline and carriage return; no U+FFFE or
 * U+FFFF). */
static bool xml_text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        unsigned long cp;
        size_t len;
        /* eight bytes of printable ASCII at a time (base64, names, most
         * text): no byte with its high bit set, none below 0x20 */
        uint64_t w;
        if (n - i >= 8 && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ULL)) &&
            !((w - 0x2020202020202020ULL) & ~w & 0x8080808080808080ULL)) {
            i += 8;
            continue;
        }
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return false;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
            return false;
        i += len;
    }
    return true;
}

/* A bin value cannot travel as XML text: send it base64 with Format b64. */
static void emit_item_data(emit_t *e, const syncml_item_t *it, bool as_b64)
{
    if (!as_b64) {
        bool binary = it->data_opaque || (it->meta.format && !strcmp(it->meta.format, "bin"));
        text_el(e, "Data", SYNCML_NS_SYNCML, it->data, it->data_len, binary);
        return;
    }
    char *b64 = crypto_b64_encode(e->msg->arena.dm, it->data, it->data_len);
    if (!b64) {
        e->rc = OMADM_E_NOMEM;
        return;
    }
    text_el(e, "Data", SYNCML_NS_SYNCML, (const uint8_t *)b64, strlen(b64), false);
    om_free(e->msg->arena.dm, b64);
}

bool syncml_item_as_b64(const syncml_item_t *it, bool binary_ok)
{
    return !binary_ok && ((it->meta.format && !strcmp(it->meta.format, "bin")) ||
                          (it->has_data && !xml_text_ok(it->data, it->data_len)));
}

static void emit_item(emit_t *e, const syncml_item_t *it)
{
    /* over XML a bin value, or any value XML cannot carry as text,
     * travels (and is described) as b64 */
    bool as_b64 = syncml_item_as_b64(it, e->sink->binary_ok);
    open_el(e, "Item", SYNCML_NS_SYNCML);
    emit_loc(e, "Target", it->target, it->target_name);
    emit_loc(e, "Source", it->source, it->source_name);
    emit_meta(e, &it->meta, as_b64 ? "b64" : NULL);
    if (it->has_data)
        emit_item_data(e, it, as_b64 && it->has_data);
    if (it->more_data)
        empty_el(e, "MoreData");
    close_el(e, "Item", SYNCML_NS_SYNCML);
}

static void emit_refs(emit_t *e, const char *el, const syncml_strlist_t *l)
{
    for (; l; l = l->next)
        str_el(e, el, SYNCML_NS_SYNCML, l->s);
}

static void emit_cmd(emit_t *e, const syncml_cmd_t *c);

static void emit_cmd_body(emit_t *e, const syncml_cmd_t *c)
{
    str_el(e, "CmdID", SYNCML_NS_SYNCML, c->cmd_id);
    if (c->type == SYNCML_CMD_STATUS || c->type == SYNCML_CMD_RESULTS) {
        str_el(e, "MsgRef", SYNCML_NS_SYNCML, c->msg_ref);
        /* CmdRef is mandatory: an empty one answers a command without CmdID */
        text_el(e, "CmdRef", SYNCML_NS_SYNCML, (const uint8_t *)(c->cmd_ref ? c->cmd_ref : ""),
                c->cmd_ref ? strlen(c->cmd_ref) : 0, false);
        str_el(e, "Cmd", SYNCML_NS_SYNCML, c->cmd);
    }
    if (c->no_resp)
        empty_el(e, "NoResp");
    if (c->type != SYNCML_CMD_STATUS)
        emit_meta(e, &c->meta, NULL);
    emit_refs(e, "TargetRef", c->target_refs);
    emit_refs(e, "SourceRef", c->source_refs);
    if (c->chal) {
        open_el(e, "Chal", SYNCML_NS_SYNCML);
        emit_meta(e, &c->chal->meta, NULL);
        close_el(e, "Chal", SYNCML_NS_SYNCML);
    }
    if (c->has_data)
        text_el(e, "Data", SYNCML_NS_SYNCML, c->data, c->data_len, false);
    str_el(e, "Correlator", SYNCML_NS_SYNCML, c->correlator);
    size_t i = 0;
    for (const syncml_item_t *it = c->items; it && !e->rc; it = it->next, i++) {
        emit_item(e, it);
        /* where each Item ends: the length of a message cut after it,
         * but for the elements that close it */
        if (c == e->msg->mark_cmd && i < e->msg->mark_cap && e->sink->out)
            e->msg->mark_len[i] = e->sink->out->len;
    }
    for (const syncml_cmd_t *ch = c->children; ch && !e->rc; ch = ch->next)
        emit_cmd(e, ch);
}

static void emit_cmd(emit_t *e, const syncml_cmd_t *c)
{
    open_el(e, c->name, SYNCML_NS_SYNCML);
    emit_cmd_body(e, c);
    close_el(e, c->name, SYNCML_NS_SYNCML);
}

static void emit_hdr(emit_t *e, const syncml_hdr_t *h)
{
    open_el(e, "SyncHdr", SYNCML_NS_SYNCML);
    str_el(e, "VerDTD", SYNCML_NS_SYNCML, h->ver_dtd);
    str_el(e, "VerProto", SYNCML_NS_SYNCML, h->ver_proto);
    str_el(e, "SessionID", SYNCML_NS_SYNCML, h->session_id);
    str_el(e, "MsgID", SYNCML_NS_SYNCML, h->msg_id);
    emit_loc(e, "Target", h->target, h->target_name);
    emit_loc(e, "Source", h->source, h->source_name);
    str_el(e, "RespURI", SYNCML_NS_SYNCML, h->resp_uri);
    if (h->no_resp)
        empty_el(e, "NoResp");
    if (h->cred) {
        open_el(e, "Cred", SYNCML_NS_SYNCML);
        emit_meta(e, &h->cred->meta, NULL);
        text_el(e, "Data", SYNCML_NS_SYNCML, h->cred->data, h->cred->data_len, false);
        close_el(e, "Cred", SYNCML_NS_SYNCML);
    }
    if (h->has_meta)
        emit_meta(e, &h->meta, NULL);
    close_el(e, "SyncHdr", SYNCML_NS_SYNCML);
}

int syncml_emit(const syncml_msg_t *msg, const syncml_sink_t *sink)
{
    emit_t e = {.msg = msg, .sink = sink, .rc = 0};
    open_el(&e, "SyncML", SYNCML_NS_SYNCML);
    emit_hdr(&e, &msg->hdr);
    open_el(&e, "SyncBody", SYNCML_NS_SYNCML);
    for (const syncml_cmd_t *c = msg->cmds; c && !e.rc; c = c->next)
        emit_cmd(&e, c);
    if (msg->final)
        empty_el(&e, "Final");
    close_el(&e, "SyncBody", SYNCML_NS_SYNCML);
    close_el(&e, "SyncML", SYNCML_NS_SYNCML);
    return e.rc;
}
