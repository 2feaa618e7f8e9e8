/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec_wbxml.c - SyncML DM in WBXML (WBXML 1.1-1.3; SyncML 1.2, also 1.1).
 *
 * Decode: a small bounds-checked WBXML tokenizer feeds element events to
 * the builder (syncml_build.c).  It is hand-written rather than built on
 * libwbxml's parser because libwbxml cannot hand over exact bytes: its
 * parser reports STR_I and OPAQUE through the same callback (the opaque
 * flag is lost), base64-encodes an opaque NextNonce, its tree re-parses
 * devinf/dmtnds "+wbxml" Data as a sub-document and wraps vCard-like Data
 * in CDATA, it recurses without a depth limit, and Debian's 0.11.8 lacks
 * upstream's malformed-input fixes.  See docs/wbxml.md.
 *
 * Encode: the emitter (syncml_emit.c) feeds element events to a sink here
 * that writes WBXML 1.2 with public id 0x1201, UTF-8 and an empty string
 * table (02 A4 01 6A 00), like SyncML RTK.  Values travel as exact bytes:
 * STR_I for valid UTF-8 without NUL, OPAQUE otherwise or when binary.
 *
 * Both directions use the one token table below.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "internal.h"

/* ---- WBXML constants ------------------------------------------------------ */

enum {
    WB_SWITCH_PAGE = 0x00,
    WB_END = 0x01,
    WB_ENTITY = 0x02,
    WB_STR_I = 0x03,
    WB_LITERAL = 0x04,
    WB_EXT_I_0 = 0x40,
    WB_EXT_I_2 = 0x42,
    WB_PI = 0x43,
    WB_LITERAL_C = 0x44,
    WB_EXT_T_0 = 0x80,
    WB_EXT_T_2 = 0x82,
    WB_STR_T = 0x83,
    WB_LITERAL_A = 0x84,
    WB_EXT_0 = 0xC0,
    WB_EXT_2 = 0xC2,
    WB_OPAQUE = 0xC3,
    WB_LITERAL_AC = 0xC4
};

#define WB_TOKEN_MASK 0x3F
#define WB_WITH_CONTENT 0x40
#define WB_WITH_ATTRS 0x80

#define WB_PUBID_SYNCML12 0x1201u
#define WB_PUBID_SYNCML11 0x0FD3u
#define WB_FPI_SYNCML12 "-//SYNCML//DTD SyncML 1.2//EN"
#define WB_FPI_SYNCML11 "-//SYNCML//DTD SyncML 1.1//EN"

#define WB_CHARSET_UNKNOWN 0u   /* "use transport info": we assume UTF-8 */
#define WB_CHARSET_US_ASCII 3u
#define WB_CHARSET_UTF8 106u

/* Header we write: WBXML 1.2, public id 0x1201, UTF-8, no string table. */
static const uint8_t out_header[] = {0x02, 0xA4, 0x01, 0x6A, 0x00};

/* ---- token table (SyncML 1.2 RepPro / MetInf 1.2 WBXML code pages) -------- */

typedef struct wb_tag {
    uint8_t page;           /* 0 SyncML, 1 MetInf */
    uint8_t token;          /* without content / attribute bits */
    const char *name;
} wb_tag_t;

static const wb_tag_t tag_table[] = {
    /* code page 0: SYNCML:SYNCML1.2 */
    {0, 0x05, "Add"},          {0, 0x06, "Alert"},        {0, 0x07, "Archive"},
    {0, 0x08, "Atomic"},       {0, 0x09, "Chal"},         {0, 0x0A, "Cmd"},
    {0, 0x0B, "CmdID"},        {0, 0x0C, "CmdRef"},       {0, 0x0D, "Copy"},
    {0, 0x0E, "Cred"},         {0, 0x0F, "Data"},         {0, 0x10, "Delete"},
    {0, 0x11, "Exec"},         {0, 0x12, "Final"},        {0, 0x13, "Get"},
    {0, 0x14, "Item"},         {0, 0x15, "Lang"},         {0, 0x16, "LocName"},
    {0, 0x17, "LocURI"},       {0, 0x18, "Map"},          {0, 0x19, "MapItem"},
    {0, 0x1A, "Meta"},         {0, 0x1B, "MsgID"},        {0, 0x1C, "MsgRef"},
    {0, 0x1D, "NoResp"},       {0, 0x1E, "NoResults"},    {0, 0x1F, "Put"},
    {0, 0x20, "Replace"},      {0, 0x21, "RespURI"},      {0, 0x22, "Results"},
    {0, 0x23, "Search"},       {0, 0x24, "Sequence"},     {0, 0x25, "SessionID"},
    {0, 0x26, "SftDel"},       {0, 0x27, "Source"},       {0, 0x28, "SourceRef"},
    {0, 0x29, "Status"},       {0, 0x2A, "Sync"},         {0, 0x2B, "SyncBody"},
    {0, 0x2C, "SyncHdr"},      {0, 0x2D, "SyncML"},       {0, 0x2E, "Target"},
    {0, 0x2F, "TargetRef"},    /* 0x30 reserved */        {0, 0x31, "VerDTD"},
    {0, 0x32, "VerProto"},     {0, 0x33, "NumberOfChanges"},
    {0, 0x34, "MoreData"},     {0, 0x35, "Field"},        {0, 0x36, "Filter"},
    {0, 0x37, "Record"},       {0, 0x38, "FilterType"},   {0, 0x39, "SourceParent"},
    {0, 0x3A, "TargetParent"}, {0, 0x3B, "Move"},         {0, 0x3C, "Correlator"},
    /* code page 1: syncml:metinf */
    {1, 0x05, "Anchor"},       {1, 0x06, "EMI"},          {1, 0x07, "Format"},
    {1, 0x08, "FreeID"},       {1, 0x09, "FreeMem"},      {1, 0x0A, "Last"},
    {1, 0x0B, "Mark"},         {1, 0x0C, "MaxMsgSize"},   {1, 0x0D, "Mem"},
    {1, 0x0E, "MetInf"},       {1, 0x0F, "Next"},         {1, 0x10, "NextNonce"},
    {1, 0x11, "SharedMem"},    {1, 0x12, "Size"},         {1, 0x13, "Type"},
    {1, 0x14, "Version"},      {1, 0x15, "MaxObjSize"},   {1, 0x16, "FieldLevel"},
};

#define N_TAGS (sizeof tag_table / sizeof tag_table[0])

/* Name of an element token seen on the wire that no table entry matches. */
static const char unknown_name[] = "unknown";

static const char *tag_name(uint8_t page, uint8_t token)
{
    for (size_t i = 0; i < N_TAGS; i++)
        if (tag_table[i].page == page && tag_table[i].token == token)
            return tag_table[i].name;
    return NULL;
}

static const wb_tag_t *tag_by_name(uint8_t page, const char *name)
{
    for (size_t i = 0; i < N_TAGS; i++)
        if (tag_table[i].page == page && tag_table[i].name[0] == name[0] &&
            !strcmp(tag_table[i].name, name))
            return &tag_table[i];
    return NULL;
}

static syncml_ns_t page_ns(uint8_t page)
{
    if (page == 0)
        return SYNCML_NS_SYNCML;
    if (page == 1)
        return SYNCML_NS_METINF;
    return SYNCML_NS_OTHER;
}

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

/* ---- detection ------------------------------------------------------------ */

syncml_encoding_t codec_detect(const uint8_t *in, size_t len)
{
    if (!in || len < 2 || in[0] < 0x01 || in[0] > 0x03)
        return SYNCML_ENC_XML;
    /* the public id is an mb_u_int32: at most 5 bytes, last one without 0x80 */
    for (size_t i = 1; i < len && i <= 5; i++)
        if (!(in[i] & 0x80))
            return SYNCML_ENC_WBXML;
    return SYNCML_ENC_XML;
}

/* ---- decoder -------------------------------------------------------------- */

typedef struct decoder {
    omadm_t *dm;
    syncml_msg_t *msg;
    syncml_builder_t *b;
    const uint8_t *in;
    size_t len;
    size_t pos;
    const uint8_t *strtbl;
    size_t strtbl_len;
    uint8_t page;           /* current tag code page */
    unsigned depth;         /* open elements */
    const char *detail;     /* set with our own errors */
} decoder_t;

static int fail(decoder_t *d, int err, const char *detail)
{
    if (!d->detail)
        d->detail = detail;
    return err;
}

static int truncated(decoder_t *d)
{
    return fail(d, OMADM_E_NOT_SYNCML, "WBXML: truncated");
}

static int get_u8(decoder_t *d, uint8_t *out)
{
    if (d->pos >= d->len)
        return truncated(d);
    *out = d->in[d->pos++];
    return 0;
}

/* mb_u_int32: big-endian groups of 7 bits, continuation bit 0x80, <= 32 bits. */
static int get_mb(decoder_t *d, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t c;
        if (get_u8(d, &c))
            return OMADM_E_NOT_SYNCML;
        if (v > (UINT32_MAX >> 7))
            return fail(d, OMADM_E_NOT_SYNCML, "WBXML: multi-byte integer overflows");
        v = (v << 7) | (c & 0x7F);
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return fail(d, OMADM_E_NOT_SYNCML, "WBXML: multi-byte integer too long");
}

/* The NUL-terminated string at strtbl[idx].  WBXML 1.3 (String Table) ends
 * every string of the table with its terminator: an entry that runs to the
 * end of the table without one is refused. */
static int strtbl_string(decoder_t *d, uint32_t idx, const uint8_t **s, size_t *n)
{
    if (idx >= d->strtbl_len)
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: string table reference out of range");
    const uint8_t *p = d->strtbl + idx;
    const uint8_t *nul = memchr(p, 0, d->strtbl_len - idx);
    if (!nul)
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: string table entry without its terminating NUL");
    *s = p;
    *n = (size_t)(nul - p);
    return 0;
}

static bool strtbl_string_is(decoder_t *d, uint32_t idx, const char *want)
{
    const uint8_t *s;
    size_t n;
    if (strtbl_string(d, idx, &s, &n))
        return false;
    return n == strlen(want) && om_strncaseeq((const char *)s, want, n);
}

/* version publicid charset strtbl */
static int parse_header(decoder_t *d)
{
    uint8_t version;
    uint32_t pubid, pubid_idx = 0, charset, tbl_len;
    if (get_u8(d, &version) || get_mb(d, &pubid))
        return OMADM_E_NOT_SYNCML;
    if (version < 0x01 || version > 0x03)
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: unsupported WBXML version");
    if (pubid == 0 && get_mb(d, &pubid_idx))
        return OMADM_E_NOT_SYNCML;
    if (get_mb(d, &charset) || get_mb(d, &tbl_len))
        return OMADM_E_NOT_SYNCML;
    if (charset != WB_CHARSET_UTF8 && charset != WB_CHARSET_US_ASCII &&
        charset != WB_CHARSET_UNKNOWN)
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: unsupported charset (UTF-8 only)");
    if (tbl_len > d->len - d->pos)
        return truncated(d);
    d->strtbl = d->in + d->pos;
    d->strtbl_len = tbl_len;
    d->pos += tbl_len;
    if (pubid == WB_PUBID_SYNCML12 || pubid == WB_PUBID_SYNCML11)
        return 0;
    if (pubid == 0 && (strtbl_string_is(d, pubid_idx, WB_FPI_SYNCML12) ||
                       strtbl_string_is(d, pubid_idx, WB_FPI_SYNCML11)))
        return 0;
    return fail(d, OMADM_E_NOT_SYNCML, "WBXML: public id is not SyncML 1.2");
}

static int skip_bytes(decoder_t *d, size_t n)
{
    if (n > d->len - d->pos)
        return truncated(d);
    d->pos += n;
    return 0;
}

/* Inline string (after STR_I / EXT_I_n): bytes up to the NUL. */
static int get_termstr(decoder_t *d, const uint8_t **s, size_t *n)
{
    const uint8_t *p = d->in + d->pos;
    const uint8_t *nul = memchr(p, 0, d->len - d->pos);
    if (!nul)
        return truncated(d);
    *s = p;
    *n = (size_t)(nul - p);
    d->pos += *n + 1;
    return 0;
}

/*
 * Attribute lists and processing instructions (SyncML defines neither):
 * skip tokens up to the END, validating lengths.  attrStart and attrValue
 * tokens carry no payload; strings, entities, opaque and extensions do.
 */
static int skip_attrs(decoder_t *d)
{
    for (;;) {
        uint8_t t, page;
        uint32_t v;
        const uint8_t *s;
        size_t n;
        if (get_u8(d, &t))
            return OMADM_E_NOT_SYNCML;
        if (t == WB_END)
            return 0;
        int rc = 0;
        if (t == WB_SWITCH_PAGE)
            rc = get_u8(d, &page);
        else if (t == WB_LITERAL || t == WB_STR_T || (t >= WB_EXT_T_0 && t <= WB_EXT_T_2))
            rc = get_mb(d, &v) || strtbl_string(d, v, &s, &n);
        else if (t == WB_ENTITY)
            rc = get_mb(d, &v);
        else if (t == WB_STR_I || (t >= WB_EXT_I_0 && t <= WB_EXT_I_2))
            rc = get_termstr(d, &s, &n);
        else if (t == WB_OPAQUE)
            rc = get_mb(d, &v) || skip_bytes(d, v);
        if (rc)
            return OMADM_E_NOT_SYNCML;
    }
}

static int emit_text(decoder_t *d, const uint8_t *s, size_t n, bool opaque)
{
    return syncml_build_text(d->b, s, n, opaque);
}

/* ENTITY: a UCS-4 code point, handed on as UTF-8 text. */
static int parse_entity(decoder_t *d)
{
    uint32_t cp;
    uint8_t u[4];
    size_t n;
    if (get_mb(d, &cp))
        return OMADM_E_NOT_SYNCML;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: invalid character entity");
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return emit_text(d, u, n, false);
}

static bool is_literal(uint8_t t)
{
    return t == WB_LITERAL || t == WB_LITERAL_A || t == WB_LITERAL_C || t == WB_LITERAL_AC;
}

/* Global tokens have 0..4 in the low six bits; of those, LITERAL* start elements. */
static bool is_tag(uint8_t t)
{
    return is_literal(t) || (t & WB_TOKEN_MASK) > WB_LITERAL;
}

/* LITERAL*: the element name is in the string table; copied to the arena. */
static int literal_name(decoder_t *d, const char **name)
{
    uint32_t idx;
    const uint8_t *s;
    size_t n;
    if (get_mb(d, &idx) || strtbl_string(d, idx, &s, &n))
        return OMADM_E_NOT_SYNCML;
    if (n == 0)
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: empty literal element name");
    *name = arena_strndup(&d->msg->arena, (const char *)s, n);
    return *name ? 0 : fail(d, OMADM_E_NOMEM, "out of memory");
}

/* An element start (tag token or literal) whose first byte t was read. */
static int parse_start(decoder_t *d, uint8_t t)
{
    const char *name;
    uint8_t flags = t & (WB_WITH_CONTENT | WB_WITH_ATTRS);
    if (is_literal(t)) {
        int rc = literal_name(d, &name);
        if (rc)
            return rc;
    } else {
        name = tag_name(d->page, t & WB_TOKEN_MASK);
        if (!name)
            name = unknown_name;
    }
    if (d->depth + 1 > d->dm->cfg.max_depth)
        return fail(d, OMADM_E_TOO_LARGE, "WBXML: elements nested deeper than max_depth");
    int rc = syncml_build_start(d->b, name, page_ns(d->page));
    if (rc)
        return rc;
    if ((flags & WB_WITH_ATTRS) && skip_attrs(d))
        return OMADM_E_NOT_SYNCML;
    if (flags & WB_WITH_CONTENT) {
        d->depth++;
        return 0;
    }
    return syncml_build_end(d->b);
}

static int parse_string_ref(decoder_t *d)
{
    uint32_t idx;
    const uint8_t *s;
    size_t n;
    if (get_mb(d, &idx) || strtbl_string(d, idx, &s, &n))
        return OMADM_E_NOT_SYNCML;
    return emit_text(d, s, n, false);
}

static int parse_inline(decoder_t *d)
{
    const uint8_t *s;
    size_t n;
    if (get_termstr(d, &s, &n))
        return OMADM_E_NOT_SYNCML;
    return emit_text(d, s, n, false);
}

static int parse_opaque(decoder_t *d)
{
    uint32_t n;
    if (get_mb(d, &n))
        return OMADM_E_NOT_SYNCML;
    if (n > d->len - d->pos)
        return truncated(d);
    const uint8_t *s = d->in + d->pos;
    d->pos += n;
    return emit_text(d, s, n, true);
}

/* One token inside an open element. */
static int parse_content(decoder_t *d, uint8_t t)
{
    switch (t) {
    case WB_SWITCH_PAGE:
        return get_u8(d, &d->page) ? OMADM_E_NOT_SYNCML : 0;
    case WB_END:
        d->depth--;
        return syncml_build_end(d->b);
    case WB_STR_I:
        return parse_inline(d);
    case WB_STR_T:
        return parse_string_ref(d);
    case WB_ENTITY:
        return parse_entity(d);
    case WB_OPAQUE:
        return parse_opaque(d);
    case WB_PI:
        return skip_attrs(d) ? OMADM_E_NOT_SYNCML : 0;
    default:
        break;
    }
    if (!is_tag(t)) /* EXT_I_n, EXT_T_n, EXT_n */
        return fail(d, OMADM_E_NOT_SYNCML, "WBXML: extension token (not used by SyncML)");
    return parse_start(d, t);
}

/* *pi element *pi, and nothing after. */
static int parse_body(decoder_t *d)
{
    bool root_seen = false;
    while (d->pos < d->len) {
        uint8_t t = d->in[d->pos++];
        int rc;
        if (d->depth > 0)
            rc = parse_content(d, t);
        else if (t == WB_PI)
            rc = skip_attrs(d) ? OMADM_E_NOT_SYNCML : 0;
        else if (root_seen)
            rc = fail(d, OMADM_E_NOT_SYNCML, "WBXML: data after the root element");
        else if (t == WB_SWITCH_PAGE)
            rc = get_u8(d, &d->page) ? OMADM_E_NOT_SYNCML : 0;
        else if (!is_tag(t))
            rc = fail(d, OMADM_E_NOT_SYNCML, "WBXML: no root element");
        else {
            root_seen = true;
            rc = parse_start(d, t);
        }
        if (rc)
            return rc;
    }
    if (!root_seen || d->depth > 0)
        return truncated(d);
    return 0;
}

omadm_error_t codec_wbxml_decode(struct omadm *dm, const uint8_t *in, size_t len,
                                 syncml_msg_t *msg, const char **err_detail)
{
    decoder_t d = {.dm = dm, .msg = msg, .in = in, .len = len};
    const char *build_detail = NULL;
    int rc;
    if (err_detail)
        *err_detail = NULL;
    if (!dm || !msg || (!in && len))
        return OMADM_E_INVALID_ARG;
    if (dm->cfg.max_msg_size && len > dm->cfg.max_msg_size) {
        rc = fail(&d, OMADM_E_TOO_LARGE, "WBXML: message larger than max_msg_size");
        goto out;
    }
    msg->enc = SYNCML_ENC_WBXML;
    rc = parse_header(&d);
    if (rc)
        goto out;
    d.b = syncml_build_begin(dm, msg);
    if (!d.b) {
        rc = fail(&d, OMADM_E_NOMEM, "out of memory");
        goto out;
    }
    rc = parse_body(&d);
    omadm_error_t fin = syncml_build_finish(d.b, &build_detail);
    if (!rc)
        rc = fin;
    if (rc && !d.detail)
        d.detail = build_detail; /* the builder refused an event */
out:
    if (rc && !d.detail)
        d.detail = "WBXML: parse error";
    if (err_detail)
        *err_detail = d.detail;
    return (omadm_error_t)rc;
}

/* ---- encoder -------------------------------------------------------------- */

typedef struct encoder {
    buf_t *out;
    uint8_t page;           /* current tag code page */
    bool pending;           /* a start tag not yet written */
    uint8_t pending_token;
    unsigned depth;
} encoder_t;

static int put_u8(encoder_t *e, uint8_t c)
{
    return buf_putc(e->out, c) ? OMADM_E_NOMEM : 0;
}

static int put_mb(encoder_t *e, uint32_t v)
{
    uint8_t tmp[5];
    size_t n = 0;
    do {
        tmp[4 - n] = (uint8_t)((v & 0x7F) | (n ? 0x80 : 0));
        v >>= 7;
        n++;
    } while (v);
    return buf_append(e->out, tmp + 5 - n, n) ? OMADM_E_NOMEM : 0;
}

/* The pending start tag now has content. */
static int flush_pending(encoder_t *e)
{
    if (!e->pending)
        return 0;
    e->pending = false;
    return put_u8(e, e->pending_token | WB_WITH_CONTENT);
}

/* Metinf names are written on page 1 even when the emitter says SyncML. */
static const wb_tag_t *lookup_for_encode(const char *name, syncml_ns_t ns)
{
    const wb_tag_t *t = NULL;
    if (ns == SYNCML_NS_SYNCML || ns == SYNCML_NS_METINF)
        t = tag_by_name(ns == SYNCML_NS_METINF ? 1 : 0, name);
    if (!t)
        t = tag_by_name(ns == SYNCML_NS_METINF ? 0 : 1, name);
    return t;
}

static int sink_start(void *ctx, const char *name, syncml_ns_t ns)
{
    encoder_t *e = ctx;
    const wb_tag_t *t = name ? lookup_for_encode(name, ns) : NULL;
    if (!t)
        return OMADM_E_ENCODE; /* no token, and we write no string table */
    int rc = flush_pending(e);
    if (!rc && t->page != e->page) {
        rc = put_u8(e, WB_SWITCH_PAGE);
        if (!rc)
            rc = put_u8(e, t->page);
        e->page = t->page;
    }
    if (rc)
        return rc;
    e->pending = true;
    e->pending_token = t->token;
    e->depth++;
    return 0;
}

static int sink_text(void *ctx, const uint8_t *data, size_t len, bool binary)
{
    encoder_t *e = ctx;
    if (len == 0)
        return 0; /* <X></X> and <X/> are the same element */
    if (!data || e->depth == 0 || len > UINT32_MAX)
        return OMADM_E_ENCODE;
    int rc = flush_pending(e);
    if (rc)
        return rc;
    if (binary || memchr(data, 0, len) || !utf8_valid(data, len)) {
        if ((rc = put_u8(e, WB_OPAQUE)) || (rc = put_mb(e, (uint32_t)len)))
            return rc;
        return buf_append(e->out, data, len) ? OMADM_E_NOMEM : 0;
    }
    if ((rc = put_u8(e, WB_STR_I)))
        return rc;
    if (buf_append(e->out, data, len))
        return OMADM_E_NOMEM;
    return put_u8(e, 0x00);
}

static int sink_end(void *ctx, const char *name, syncml_ns_t ns)
{
    encoder_t *e = ctx;
    (void)name;
    (void)ns;
    if (e->depth == 0)
        return OMADM_E_ENCODE;
    e->depth--;
    if (e->pending) {
        e->pending = false;
        return put_u8(e, e->pending_token); /* empty element: no content bit */
    }
    return put_u8(e, WB_END);
}

omadm_error_t codec_wbxml_encode(struct omadm *dm, const syncml_msg_t *msg, buf_t *out)
{
    encoder_t e = {.out = out};
    syncml_sink_t sink = {.ctx = &e, .start = sink_start, .text = sink_text, .end = sink_end,
                          .binary_ok = true, .out = out};
    (void)dm;
    if (!msg || !out)
        return OMADM_E_INVALID_ARG;
    size_t start_len = out->len;
    int rc = buf_append(out, out_header, sizeof out_header) ? OMADM_E_NOMEM : 0;
    if (!rc)
        rc = syncml_emit(msg, &sink);
    if (!rc && (e.depth || e.pending))
        rc = OMADM_E_ENCODE;
    if (!rc && out->failed)
        rc = OMADM_E_NOMEM;
    if (rc < 0 || rc >= OMADM_E__COUNT)
        rc = OMADM_E_ENCODE; /* not an omadm_error_t */
    if (rc)
        out->len = start_len;
    return (omadm_error_t)rc;
}
