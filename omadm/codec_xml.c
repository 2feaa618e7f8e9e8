/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec_xml.c - SyncML XML: libxml2 SAX2 events into the builder, and an
 * XML writer sink for the emitter.  The only file that touches libxml2.
 *
 * Hostile input: no entity declarations (refused as soon as one appears,
 * so nothing can be expanded), no DTD or network loading, input
 * size bounded before parsing, depth and counts bounded by the builder.
 */
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"

typedef struct xml_dec {
    xmlParserCtxtPtr ctxt;
    syncml_builder_t *b;
    int err;
    const char *detail;
    unsigned raw_depth;      /* >0: inside markup embedded in a Data value */
    buf_t raw;               /* serialisation of that markup */
} xml_dec_t;

static syncml_ns_t ns_of(const xmlChar *uri)
{
    if (!uri)
        return SYNCML_NS_SYNCML;
    const char *u = (const char *)uri;
    if (om_strncaseeq(u, "syncml:syncml1.", 15))
        return SYNCML_NS_SYNCML;
    if (om_strcaseeq(u, "syncml:metinf"))
        return SYNCML_NS_METINF;
    return SYNCML_NS_OTHER;
}

static void stop(xml_dec_t *d, int err, const char *detail)
{
    if (!d->err) {
        d->err = err;
        d->detail = detail;
    }
    xmlStopParser(d->ctxt);
}

static void raw_escape(buf_t *out, const uint8_t *s, size_t n, bool attr);

static size_t utf8_put(uint8_t *d, unsigned long cp)
{
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xC0 | (cp >> 6));
        d[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xE0 | (cp >> 12));
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (uint8_t)(0xF0 | (cp >> 18));
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Attribute values come from libxml2 with character references still in
 * them ("&#38;"): resolve those, then escape the value as usual. */
static void attr_escape(buf_t *out, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *semi = s[i] == '&' && i + 2 < n && s[i + 1] == '#'
                                  ? memchr(s + i, ';', n - i) : NULL;
        if (!semi) {
            raw_escape(out, s + i, 1, true);
            i++;
            continue;
        }
        bool hex = s[i + 2] == 'x';
        unsigned long cp = strtoul((const char *)s + i + 2 + hex, NULL, hex ? 16 : 10);
        uint8_t u[4];
        raw_escape(out, u, utf8_put(u, cp > 0x10FFFF ? 0xFFFD : cp), true);
        i = (size_t)(semi - s) + 1;
    }
}

/* Escape text for re-serialisation. */
static void raw_escape(buf_t *out, const uint8_t *s, size_t n, bool attr)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            buf_puts(out, "&amp;");
            break;
        case '<': buf_puts(out, "&lt;"); break;
        case '>': buf_puts(out, "&gt;"); break;
        case '"':
            if (attr) {
                buf_puts(out, "&quot;");
                break;
            }
            /* fall through */
        default: buf_putc(out, s[i]);
        }
    }
}

/* Re-serialise markup found inside <Data> so the value stays bytes. */
static void raw_start(xml_dec_t *d, const xmlChar *local, const xmlChar *prefix, int nb_ns,
                      const xmlChar **ns, int nb_attr, const xmlChar **attrs)
{
    buf_t *r = &d->raw;
    buf_putc(r, '<');
    if (prefix) {
        buf_puts(r, (const char *)prefix);
        buf_putc(r, ':');
    }
    buf_puts(r, (const char *)local);
    for (int i = 0; i < nb_ns; i++) {
        buf_puts(r, ns[2 * i] ? " xmlns:" : " xmlns");
        if (ns[2 * i])
            buf_puts(r, (const char *)ns[2 * i]);
        buf_puts(r, "=\"");
        attr_escape(r, ns[2 * i + 1], strlen((const char *)ns[2 * i + 1]));
        buf_putc(r, '"');
    }
    for (int i = 0; i < nb_attr; i++) {
        const xmlChar **a = attrs + 5 * i;
        buf_putc(r, ' ');
        if (a[1]) {
            buf_puts(r, (const char *)a[1]);
            buf_putc(r, ':');
        }
        buf_puts(r, (const char *)a[0]);
        buf_puts(r, "=\"");
        attr_escape(r, a[3], (size_t)(a[4] - a[3]));
        buf_putc(r, '"');
    }
    buf_putc(r, '>');
}

static void flush_raw(xml_dec_t *d)
{
    if (d->raw.failed) {
        stop(d, OMADM_E_NOMEM, "out of memory");
        return;
    }
    if (d->raw.len) {
        int rc = syncml_build_text(d->b, d->raw.data, d->raw.len, false);
        d->raw.len = 0;
        if (rc)
            stop(d, rc, NULL);
    }
}

static void on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **ns, int nb_attr, int nb_def, const xmlChar **attrs)
{
    xml_dec_t *d = ctx;
    (void)nb_def;
    if (d->err)
        return;
    if (!d->raw_depth && syncml_build_in_data(d->b))
        d->raw_depth = 1; /* markup inside <Data>: keep it as text */
    if (d->raw_depth) {
        d->raw_depth++;
        raw_start(d, local, prefix, nb_ns, ns, nb_attr, attrs);
        return;
    }
    int rc = syncml_build_start(d->b, (const char *)local, ns_of(uri));
    if (rc)
        stop(d, rc, NULL);
}

static void on_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
    xml_dec_t *d = ctx;
    (void)uri;
    if (d->err)
        return;
    if (d->raw_depth > 1) {
        d->raw_depth--;
        buf_puts(&d->raw, "</");
        if (prefix) {
            buf_puts(&d->raw, (const char *)prefix);
            buf_putc(&d->raw, ':');
        }
        buf_puts(&d->raw, (const char *)local);
        buf_putc(&d->raw, '>');
        if (d->raw_depth == 1) {
            d->raw_depth = 0;
            flush_raw(d);
        }
        return;
    }
    int rc = syncml_build_end(d->b);
    if (rc)
        stop(d, rc, NULL);
}

static void on_text(void *ctx, const xmlChar *ch, int len)
{
    xml_dec_t *d = ctx;
    if (d->err)
        return;
    if (d->raw_depth) {
        raw_escape(&d->raw, ch, (size_t)len, false);
        return;
    }
    int rc = syncml_build_text(d->b, ch, (size_t)len, false);
    if (rc)
        stop(d, rc, NULL);
}

static void on_cdata(void *ctx, const xmlChar *ch, int len)
{
    xml_dec_t *d = ctx;
    if (d->err)
        return;
    if (d->raw_depth) {
        buf_puts(&d->raw, "<![CDATA[");
        buf_append(&d->raw, ch, (size_t)len);
        buf_puts(&d->raw, "]]>");
        return;
    }
    on_text(ctx, ch, len);
}

/* A DOCTYPE naming the SyncML DTD (as some servers send) is harmless: the
 * DTD is never loaded.  What a DTD could do harm with, entity
 * declarations, is refused in on_entity_decl. */
static void on_subset(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)ctx, (void)name, (void)ext, (void)sys;
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    (void)name, (void)type, (void)pub, (void)sys, (void)content;
    stop(ctx, OMADM_E_NOT_SYNCML, "XML with entity declarations is refused");
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
    (void)ctx;
    return xmlGetPredefinedEntity(name);
}

/* An entity nobody declared (possible once a DOCTYPE is present) would
 * silently vanish from the value: refuse the message instead. */
static void on_reference(void *ctx, const xmlChar *name)
{
    (void)name;
    stop(ctx, OMADM_E_NOT_SYNCML, "XML with an undeclared entity is refused");
}

static void on_serror(void *ctx, xmlErrorPtr error)
{
    (void)ctx, (void)error; /* reported through wellFormed; never printed */
}

/* Diagnostics are reported through wellFormed, never printed: the library
 * does no I/O of its own. */
static void on_message(void *ctx, const char *msg, ...)
{
    (void)ctx, (void)msg;
}

static void on_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
    (void)ctx, (void)target, (void)data;
}

/* SyncML DM travels in UTF-8.  Other declared encodings are refused up
 * front: converting them would go through libxml2's global error channel. */
static bool encoding_ok(const uint8_t *in, size_t len)
{
    if (len >= 2 && ((in[0] == 0xFE && in[1] == 0xFF) || (in[0] == 0xFF && in[1] == 0xFE)))
        return false; /* UTF-16 */
    if (len >= 3 && in[0] == 0xEF && in[1] == 0xBB && in[2] == 0xBF)
        in += 3, len -= 3;
    if (len < 5 || memcmp(in, "<?xml", 5))
        return true;
    size_t end = 5;
    while (end + 1 < len && end < 256 && !(in[end] == '?' && in[end + 1] == '>'))
        end++;
    const char *decl = (const char *)in;
    for (size_t i = 5; i + 8 < end; i++) {
        if (memcmp(decl + i, "encoding", 8))
            continue;
        size_t j = i + 8;
        while (j < end && (decl[j] == ' ' || decl[j] == '=' || decl[j] == '\t'))
            j++;
        if (j >= end || (decl[j] != '"' && decl[j] != '\''))
            return false;
        char q = decl[j++];
        size_t k = j;
        while (k < end && decl[k] != q)
            k++;
        size_t n = k - j;
        return (n == 5 && om_strncaseeq(decl + j, "UTF-8", 5)) ||
               (n == 4 && om_strncaseeq(decl + j, "UTF8", 4)) ||
               (n == 8 && om_strncaseeq(decl + j, "US-ASCII", 8));
    }
    return true;
}

/* Whether libxml2 gave up for lack of memory: it says so in errNo, or, when
 * it could not even take the input (xmlParserInputBufferPush fails only
 * for memory once the encoding is UTF-8), halts with XML_PARSER_EOF
 * without saying why; neither clears wellFormed. */
static bool parser_ran_out(xmlParserCtxtPtr ctxt, int rc)
{
    return ctxt->errNo == XML_ERR_NO_MEMORY || rc == XML_ERR_NO_MEMORY ||
           (ctxt->wellFormed && (rc == XML_PARSER_EOF || ctxt->errNo == XML_PARSER_EOF));
}

/* Keep libxml2 from printing what it reports outside the parser context
 * (a failed allocation before the context exists, a URI it cannot parse
 * for lack of memory): the library does no I/O of its own.  The handler is
 * the calling thread's (libxml2 keeps it per thread) and is put back. */
static void on_global_error(void *ctx, xmlErrorPtr error)
{
    (void)ctx, (void)error;
}

omadm_error_t codec_xml_decode(struct omadm *dm, const uint8_t *in, size_t len,
                               syncml_msg_t *msg, const char **err_detail)
{
    xml_dec_t d = {0};
    xmlSAXHandler sax;
    omadm_error_t err = OMADM_OK;
    const char *detail = NULL;

    msg->enc = SYNCML_ENC_XML;
    if (len > dm->cfg.max_msg_size) {
        if (err_detail)
            *err_detail = "message larger than the configured limit";
        return OMADM_E_TOO_LARGE;
    }
    if (len > INT32_MAX)
        return OMADM_E_TOO_LARGE;
    if (!encoding_ok(in, len)) {
        if (err_detail)
            *err_detail = "XML in an encoding other than UTF-8";
        return OMADM_E_NOT_SYNCML;
    }
    buf_init(&d.raw, dm);
    d.b = syncml_build_begin(dm, msg);
    if (!d.b)
        return OMADM_E_NOMEM;

    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    sax.characters = on_text;
    sax.cdataBlock = on_cdata;
    sax.internalSubset = on_subset;
    sax.externalSubset = on_subset;
    sax.entityDecl = on_entity_decl;
    sax.getEntity = on_get_entity;
    sax.reference = on_reference;
    sax.processingInstruction = on_pi;
    sax.serror = on_serror;
    sax.error = on_message;
    sax.warning = on_message;
    sax.fatalError = on_message;

    xmlStructuredErrorFunc host_handler = xmlStructuredError;
    void *host_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(NULL, on_global_error);
    d.ctxt = xmlCreatePushParserCtxt(&sax, &d, NULL, 0, NULL);
    if (!d.ctxt) {
        err = OMADM_E_NOMEM;
        detail = "out of memory";
        goto out;
    }
    xmlCtxtUseOptions(d.ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                  XML_PARSE_NOCDATA);
    int rc = xmlParseChunk(d.ctxt, (const char *)in, (int)len, 1);
    if (d.err) {
        err = (omadm_error_t)d.err;
        detail = d.detail;
    } else if (parser_ran_out(d.ctxt, rc)) {
        /* libxml2 stops quietly when its memory runs out: what it passed
         * on so far is a part of the message, whatever it looks like */
        err = OMADM_E_NOMEM;
        detail = "out of memory";
    } else if (!d.ctxt->wellFormed) {
        err = OMADM_E_NOT_SYNCML;
        detail = "XML is not well-formed";
    }
out:
    if (d.ctxt) {
        /* libxml2 makes a document of its own for a DOCTYPE's subset */
        if (d.ctxt->myDoc)
            xmlFreeDoc(d.ctxt->myDoc);
        xmlFreeParserCtxt(d.ctxt);
    }
    xmlSetStructuredErrorFunc(host_ctx, host_handler);
    buf_free(&d.raw);
    {
        const char *bdetail = NULL;
        omadm_error_t berr = syncml_build_finish(d.b, &bdetail);
        if (!err) {
            err = berr;
            detail = bdetail;
        } else if (!detail) {
            detail = bdetail;
        }
    }
    if (err_detail)
        *err_detail = detail;
    return err;
}

/* ---- encoder ---- */

typedef struct xml_enc {
    buf_t *out;
    bool pending;            /* a start tag is open but not yet closed with '>' */
} xml_enc_t;

static void close_pending(xml_enc_t *x)
{
    if (x->pending) {
        buf_putc(x->out, '>');
        x->pending = false;
    }
}

static int enc_start(void *ctx, const char *name, syncml_ns_t ns)
{
    xml_enc_t *x = ctx;
    close_pending(x);
    buf_putc(x->out, '<');
    buf_puts(x->out, name);
    if (!strcmp(name, "SyncML"))
        buf_puts(x->out, " xmlns=\"SYNCML:SYNCML1.2\"");
    else if (ns == SYNCML_NS_METINF)
        buf_puts(x->out, " xmlns=\"syncml:metinf\"");
    x->pending = true;
    return x->out->failed ? OMADM_E_NOMEM : 0;
}

/* Whether a byte of w is below b (b <= 0x80), or is c: exact. */
static inline uint64_t has_below(uint64_t w, uint8_t b)
{
    return (w - 0x0101010101010101ULL * b) & ~w & 0x8080808080808080ULL;
}

static inline uint64_t has_byte(uint64_t w, uint8_t c)
{
    return has_below(w ^ (0x0101010101010101ULL * c), 1);
}

static int enc_text(void *ctx, const uint8_t *s, size_t n, bool binary)
{
    xml_enc_t *x = ctx;
    if (binary)
        return OMADM_E_ENCODE;
    close_pending(x);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        char num[8];
        /* eight bytes at a time while none of them needs a replacement:
         * none below 0x20 (\r and the controls; tab and newline go the
         * slow way), no '&', '<' or '>' */
        uint64_t w;
        while (n - i >= 8 && (memcpy(&w, s + i, 8), !(has_below(w, 0x20) | has_byte(w, '&') |
                                                        has_byte(w, '<') | has_byte(w, '>'))))
            i += 8;
        if (i == n)
            break;
        uint8_t c = s[i];
        if (c == '&')
            rep = "&amp;";
        else if (c == '<')
            rep = "&lt;";
        else if (c == '>')
            rep = "&gt;";
        else if (c == '\r') {
            snprintf(num, sizeof num, "&#%u;", c);
            rep = num;
        } else if (c < 0x20 && c != '\n' && c != '\t') {
            rep = "\xEF\xBF\xBD"; /* not representable in XML 1.0: U+FFFD */
        }
        if (rep) {
            buf_append(x->out, s + run, i - run);
            buf_puts(x->out, rep);
            run = i + 1;
        }
    }
    buf_append(x->out, s + run, n - run);
    return x->out->failed ? OMADM_E_NOMEM : 0;
}

static int enc_end(void *ctx, const char *name, syncml_ns_t ns)
{
    xml_enc_t *x = ctx;
    (void)ns;
    if (x->pending) {
        buf_puts(x->out, "/>");
        x->pending = false;
    } else {
        buf_puts(x->out, "</");
        buf_puts(x->out, name);
        buf_putc(x->out, '>');
    }
    return x->out->failed ? OMADM_E_NOMEM : 0;
}

omadm_error_t codec_xml_encode(struct omadm *dm, const syncml_msg_t *msg, buf_t *out)
{
    (void)dm;
    xml_enc_t x = {.out = out, .pending = false};
    syncml_sink_t sink = {.ctx = &x, .start = enc_start, .text = enc_text, .end = enc_end,
                          .out = out};
    int rc = syncml_emit(msg, &sink);
    if (rc)
        return rc == OMADM_E_NOMEM ? OMADM_E_NOMEM : OMADM_E_ENCODE;
    return out->failed ? OMADM_E_NOMEM : OMADM_OK;
}
