/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record_msg.c - what dmclient session --record reads in a message, XML or
 * WBXML, as it travelled (record_msg.h): the values it masks, in place, and
 * the facts that tell whether `dmclient process` replays an exchange.
 *
 * A small scanner of its own for each encoding (the host sees the engine
 * through the public API only): element names from the root (local names;
 * WBXML tags of SyncML code pages 0 and 1 that matter here) and the raw
 * bytes of text content (XML text and CDATA; WBXML inline strings, string
 * table entries, OPAQUE), so that a value is masked where it lies without
 * re-encoding the message.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "record_msg.h"

#define DEPTH 64
#define NAME_LEN 32

/* ---- small things ---- */

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const uint8_t **p, size_t *n)
{
    while (*n && is_space(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && is_space((*p)[*n - 1]))
        (*n)--;
}

/* ---- values masked everywhere ---- */

static void add_one(cli_record_values_t *vs, const uint8_t *p, size_t n)
{
    size_t x = 0;
    while (x < n && p[x] == 'X')
        x++;
    if (x == n)
        return; /* masked already (a string table entry seen twice): nothing to hide */
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i].n == n && !memcmp(vs->v[i].p, p, n))
            return;
    cli_record_value_t *v = realloc(vs->v, (vs->n + 1) * sizeof *v);
    uint8_t *copy = malloc(n);
    if (v)
        vs->v = v;
    if (!v || !copy) {
        free(copy);
        vs->oom = true;
        return;
    }
    memcpy(copy, p, n);
    vs->v[vs->n++] = (cli_record_value_t){copy, n};
}

void cli_record_values_add(cli_record_values_t *vs, const uint8_t *p, size_t n, size_t min)
{
    trim(&p, &n);
    if (n < min)
        return;
    add_one(vs, p, n);
    /* the XML-escaped form: what an XML file holds of a value that came
     * as WBXML or text */
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += p[i] == '&' ? 5 : p[i] == '<' || p[i] == '>' ? 4 : 1;
    if (len == n)
        return;
    uint8_t *esc = malloc(len), *o = esc;
    if (!esc) {
        vs->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *e = p[i] == '&' ? "&amp;" : p[i] == '<' ? "&lt;" : p[i] == '>' ? "&gt;" : NULL;
        size_t k = e ? strlen(e) : 1;
        memcpy(o, e ? (const uint8_t *)e : p + i, k);
        o += k;
    }
    add_one(vs, esc, len);
    explicit_bzero(esc, len);
    free(esc);
}

void cli_record_blank(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(p[i]))
            p[i] = 'X';
}

size_t cli_record_values_blank(const cli_record_values_t *vs, uint8_t *p, size_t n)
{
    size_t hits = 0;
    for (size_t i = 0; i < vs->n; i++) {
        const cli_record_value_t *v = &vs->v[i];
        uint8_t *at = p;
        while (v->n && at < p + n && (at = memmem(at, (size_t)(p + n - at), v->p, v->n))) {
            cli_record_blank(at, v->n);
            at += v->n;
            hits++;
        }
    }
    return hits;
}

bool cli_record_values_in(const cli_record_values_t *vs, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i].n && memmem(p, n, vs->v[i].p, vs->v[i].n))
            return true;
    return false;
}

void cli_record_values_free(cli_record_values_t *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        explicit_bzero(vs->v[i].p, vs->v[i].n);
        free(vs->v[i].p);
    }
    free(vs->v);
    vs->v = NULL;
    vs->n = 0;
}

/* ---- scanning a message (XML or WBXML) ---- */

typedef struct scan scan_t;
struct scan {
    void (*start)(scan_t *s);  /* the element at depth - 1 has opened */
    void (*end)(scan_t *s);    /* the element at depth - 1 closes */
    /* text content of the element at depth - 1; entity: the bytes are a
     * WBXML ENTITY's number */
    void (*text)(scan_t *s, uint8_t *p, size_t n, bool entity);
    void *ctx;
    char names[DEPTH][NAME_LEN]; /* local names from the root; "" beyond DEPTH */
    size_t depth;
};

static const char *name_at(const scan_t *s, size_t i)
{
    return i < s->depth && i < DEPTH ? s->names[i] : "";
}

static const char *current(const scan_t *s)
{
    return s->depth ? name_at(s, s->depth - 1) : "";
}

static bool inside(const scan_t *s, const char *name)
{
    for (size_t i = 0; i < s->depth && i < DEPTH; i++)
        if (!strcmp(s->names[i], name))
            return true;
    return false;
}

static void open_el(scan_t *s, const char *name, size_t n)
{
    const char *colon = memrchr(name, ':', n);
    if (colon) {
        n -= (size_t)(colon + 1 - name);
        name = colon + 1;
    }
    if (s->depth < DEPTH) {
        size_t k = n < NAME_LEN - 1 ? n : NAME_LEN - 1;
        memcpy(s->names[s->depth], name, k);
        s->names[s->depth][k] = 0;
    }
    s->depth++;
    s->start(s);
}

static void close_el(scan_t *s)
{
    if (!s->depth)
        return;
    s->end(s);
    s->depth--;
}

static void text_ev(scan_t *s, uint8_t *p, size_t n, bool entity)
{
    if (s->depth && n)
        s->text(s, p, n, entity);
}

static size_t find(const uint8_t *p, size_t n, size_t from, const char *what)
{
    const uint8_t *at = from <= n ? memmem(p + from, n - from, what, strlen(what)) : NULL;
    return at ? (size_t)(at - p) : (size_t)-1;
}

/* <!DOCTYPE ...> with an internal subset: to the '>' outside brackets. */
static size_t skip_decl(const uint8_t *p, size_t n, size_t i)
{
    int brackets = 0;
    for (; i < n; i++) {
        if (p[i] == '[')
            brackets++;
        else if (p[i] == ']')
            brackets--;
        else if (p[i] == '>' && brackets <= 0)
            return i + 1;
    }
    return (size_t)-1;
}

/* A tag at p[i] == '<' that is not a comment, CDATA, PI or declaration. */
static size_t xml_tag(scan_t *s, const uint8_t *p, size_t n, size_t i)
{
    bool end = i + 1 < n && p[i + 1] == '/';
    size_t a = i + (end ? 2 : 1), b = a;
    while (b < n && !is_space(p[b]) && p[b] != '>' && p[b] != '/')
        b++;
    size_t j = b;
    uint8_t quote = 0;
    for (; j < n; j++) {
        if (quote)
            quote = p[j] == quote ? 0 : quote;
        else if (p[j] == '"' || p[j] == '\'')
            quote = p[j];
        else if (p[j] == '>')
            break;
    }
    if (j >= n)
        return (size_t)-1;
    if (end) {
        close_el(s);
    } else {
        open_el(s, (const char *)p + a, b - a);
        if (p[j - 1] == '/')
            close_el(s);
    }
    return j + 1;
}

static int scan_xml(scan_t *s, uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] != '<') {
            size_t j = i;
            while (j < n && p[j] != '<')
                j++;
            text_ev(s, p + i, j - i, false);
            i = j;
            continue;
        }
        size_t left = n - i;
        if (left >= 4 && !memcmp(p + i, "<!--", 4)) {
            size_t e = find(p, n, i + 4, "-->");
            i = e == (size_t)-1 ? e : e + 3;
        } else if (left >= 9 && !memcmp(p + i, "<![CDATA[", 9)) {
            size_t e = find(p, n, i + 9, "]]>");
            if (e != (size_t)-1)
                text_ev(s, p + i + 9, e - i - 9, false);
            i = e == (size_t)-1 ? e : e + 3;
        } else if (left >= 2 && !memcmp(p + i, "<?", 2)) {
            size_t e = find(p, n, i + 2, "?>");
            i = e == (size_t)-1 ? e : e + 2;
        } else if (left >= 2 && p[i + 1] == '!') {
            i = skip_decl(p, n, i + 2);
        } else {
            i = xml_tag(s, p, n, i);
        }
        if (i == (size_t)-1)
            return -1;
    }
    return 0;
}

/* The SyncML WBXML tags the recorder looks at (OMA SyncML WBXML code pages
 * 0 and 1, as in omadm/codec_wbxml.c); others have no name here. */
static const struct {
    uint8_t page, token;
    const char *name;
} wb_tags[] = {
    {0, 0x06, "Alert"},     {0, 0x09, "Chal"},      {0, 0x0C, "CmdRef"},   {0, 0x0E, "Cred"},
    {0, 0x0F, "Data"},      {0, 0x12, "Final"},     {0, 0x14, "Item"},     {0, 0x17, "LocURI"},
    {0, 0x1A, "Meta"},      {0, 0x25, "SessionID"}, {0, 0x27, "Source"},   {0, 0x29, "Status"},
    {0, 0x2B, "SyncBody"},  {0, 0x2C, "SyncHdr"},   {0, 0x2D, "SyncML"},   {0, 0x2E, "Target"},
    {0, 0x34, "MoreData"},  {1, 0x0E, "MetInf"},    {1, 0x10, "NextNonce"},
};

typedef struct wb {
    uint8_t *p;
    size_t n, pos;
    uint8_t *tbl;
    size_t tbl_len;
    uint8_t page;
} wb_t;

static int wb_mb(wb_t *w, uint32_t *v)
{
    uint32_t x = 0;
    for (int k = 0; k < 5 && w->pos < w->n; k++) {
        uint8_t c = w->p[w->pos++];
        x = x << 7 | (c & 0x7F);
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int wb_tbl(wb_t *w, uint32_t idx, uint8_t **s, size_t *len)
{
    uint8_t *nul = idx < w->tbl_len ? memchr(w->tbl + idx, 0, w->tbl_len - idx) : NULL;
    if (!nul)
        return -1;
    *s = w->tbl + idx;
    *len = (size_t)(nul - *s);
    return 0;
}

static int wb_str(wb_t *w, uint8_t **s, size_t *len)
{
    uint8_t *nul = w->pos < w->n ? memchr(w->p + w->pos, 0, w->n - w->pos) : NULL;
    if (!nul)
        return -1;
    *s = w->p + w->pos;
    *len = (size_t)(nul - *s);
    w->pos += *len + 1;
    return 0;
}

/* Attribute lists and PIs (SyncML has none): tokens up to END. */
static int wb_skip_attrs(wb_t *w)
{
    for (;;) {
        uint32_t v;
        uint8_t *s;
        size_t len;
        if (w->pos >= w->n)
            return -1;
        uint8_t t = w->p[w->pos++];
        int rc = 0;
        if (t == 0x01)
            return 0;
        if (t == 0x00)
            rc = w->pos < w->n ? (w->pos++, 0) : -1;
        else if (t == 0x04 || t == 0x83 || (t >= 0x80 && t <= 0x82))
            rc = wb_mb(w, &v) || wb_tbl(w, v, &s, &len);
        else if (t == 0x02)
            rc = wb_mb(w, &v);
        else if (t == 0x03 || (t >= 0x40 && t <= 0x42))
            rc = wb_str(w, &s, &len);
        else if (t == 0xC3)
            rc = wb_mb(w, &v) || v > w->n - w->pos ? -1 : (w->pos += v, 0);
        if (rc)
            return -1;
    }
}

/* Text tokens: 1 handled, 0 not text, -1 malformed. */
static int wb_text(scan_t *s, wb_t *w, uint8_t t)
{
    uint32_t v;
    uint8_t *str;
    size_t len, at = w->pos;
    switch (t) {
    case 0x02: /* ENTITY */
        if (wb_mb(w, &v))
            return -1;
        text_ev(s, w->p + at, w->pos - at, true);
        return 1;
    case 0x03: /* STR_I */
        if (wb_str(w, &str, &len))
            return -1;
        text_ev(s, str, len, false);
        return 1;
    case 0x83: /* STR_T */
        if (wb_mb(w, &v) || wb_tbl(w, v, &str, &len))
            return -1;
        text_ev(s, str, len, false);
        return 1;
    case 0xC3: /* OPAQUE */
        if (wb_mb(w, &v) || v > w->n - w->pos)
            return -1;
        text_ev(s, w->p + w->pos, v, false);
        w->pos += v;
        return 1;
    default:
        return 0;
    }
}

static int wb_element(scan_t *s, wb_t *w, uint8_t t)
{
    bool literal = (t & 0x3F) == 0x04;
    uint8_t *name = (uint8_t *)"";
    size_t len = 0;
    if (literal) {
        uint32_t v;
        if (wb_mb(w, &v) || wb_tbl(w, v, &name, &len))
            return -1;
    } else {
        if ((t & 0x3F) < 0x05)
            return -1; /* extension tokens: not SyncML */
        for (size_t i = 0; i < sizeof wb_tags / sizeof wb_tags[0]; i++)
            if (wb_tags[i].page == w->page && wb_tags[i].token == (t & 0x3F))
                name = (uint8_t *)wb_tags[i].name;
        len = strlen((const char *)name);
    }
    if ((t & 0x80) && wb_skip_attrs(w))
        return -1;
    open_el(s, (const char *)name, len);
    if (!(t & 0x40))
        close_el(s);
    return 0;
}

static int scan_wbxml(scan_t *s, uint8_t *p, size_t n)
{
    wb_t w = {.p = p, .n = n, .pos = 1};
    uint32_t pubid, idx, charset, tbl;
    if (wb_mb(&w, &pubid) || (pubid == 0 && wb_mb(&w, &idx)) || wb_mb(&w, &charset) ||
        wb_mb(&w, &tbl) || tbl > n - w.pos)
        return -1;
    w.tbl = p + w.pos;
    w.tbl_len = tbl;
    w.pos += tbl;
    while (w.pos < n) {
        uint8_t t = p[w.pos++];
        int rc = wb_text(s, &w, t);
        if (rc)
            rc = rc < 0 ? -1 : 0;
        else if (t == 0x00)
            rc = w.pos < n ? (w.page = p[w.pos++], 0) : -1;
        else if (t == 0x01)
            close_el(s);
        else if (t == 0x43)
            rc = wb_skip_attrs(&w);
        else
            rc = wb_element(s, &w, t);
        if (rc)
            return -1;
    }
    return 0;
}

bool cli_record_is_wbxml(const uint8_t *p, size_t n)
{
    return n && p[0] >= 0x01 && p[0] <= 0x03;
}

/* The events of message p; 0, or -1 where it stops being well-formed (the
 * events up to there have been delivered). */
static int scan_message(scan_t *s, uint8_t *p, size_t n)
{
    s->depth = 0;
    return cli_record_is_wbxml(p, n) ? scan_wbxml(s, p, n) : scan_xml(s, p, n);
}

/* ---- masking ---- */

typedef struct range {
    uint8_t *p;
    size_t n;
    bool entity;
} range_t;

typedef struct masker {
    cli_record_values_t *vs;
    size_t min_value;
    size_t item;          /* depth of the open Item, 0: none */
    char uri[512];        /* its Target or Source LocURI */
    size_t uri_len;
    range_t *ranges;      /* the text of its Data */
    size_t n_ranges;
} masker_t;

/* The bytes of a WBXML ENTITY stay an mb_u_int32 of their length: 0x80 ...
 * 0x58, the code of 'X'. */
static void blank_entity(uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        p[i] = 0x80;
    p[n - 1] = 'X';
}

static void mask_range(masker_t *m, uint8_t *p, size_t n, bool entity)
{
    if (!entity)
        cli_record_values_add(m->vs, p, n, m->min_value);
    if (entity)
        blank_entity(p, n);
    else
        cli_record_blank(p, n);
    m->vs->masked++;
}

static void mask_start(scan_t *s)
{
    masker_t *m = s->ctx;
    if (!m->item && !strcmp(current(s), "Item")) {
        m->item = s->depth;
        m->uri_len = 0;
        m->n_ranges = 0;
    }
}

/* A node whose value is a secret a server sends: a SCEP Challenge, a PFX
 * password (ClientCertificateInstall/PFXCertInstall, docs/pfx.md). */
static bool secret_uri(const char *uri, size_t n)
{
    static const char *const names[] = {"Challenge", "PFXCertPassword"};
    const uint8_t *p = (const uint8_t *)uri;
    trim(&p, &n);
    while (n && p[n - 1] == '/')
        n--;
    const uint8_t *slash = memrchr(p, '/', n);
    const uint8_t *last = slash ? slash + 1 : p;
    size_t len = (size_t)(p + n - last);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == strlen(names[i]) && !strncasecmp((const char *)last, names[i], len))
            return true;
    return false;
}

static void mask_end(scan_t *s)
{
    masker_t *m = s->ctx;
    if (!m->item || s->depth != m->item)
        return;
    if (secret_uri(m->uri, m->uri_len))
        for (size_t i = 0; i < m->n_ranges; i++)
            mask_range(m, m->ranges[i].p, m->ranges[i].n, m->ranges[i].entity);
    m->item = 0;
    m->n_ranges = 0;
}

static void mask_text(scan_t *s, uint8_t *p, size_t n, bool entity)
{
    masker_t *m = s->ctx;
    const char *cur = current(s);
    if ((!strcmp(cur, "Data") && inside(s, "Cred")) || !strcmp(cur, "NextNonce")) {
        mask_range(m, p, n, entity);
        return;
    }
    if (!m->item || s->depth <= m->item)
        return;
    const char *child = name_at(s, m->item);
    if (!strcmp(child, "Data")) {
        range_t *g = realloc(m->ranges, (m->n_ranges + 1) * sizeof *g);
        if (!g) {
            /* the Item's Data cannot be kept for later: masked now */
            m->vs->oom = true;
            cli_record_blank(p, n);
            return;
        }
        m->ranges = g;
        m->ranges[m->n_ranges++] = (range_t){p, n, entity};
    } else if ((!strcmp(child, "Target") || !strcmp(child, "Source")) &&
               s->depth == m->item + 2 && !strcmp(cur, "LocURI")) {
        size_t k = n < sizeof m->uri - m->uri_len ? n : sizeof m->uri - m->uri_len;
        memcpy(m->uri + m->uri_len, p, k);
        m->uri_len += k;
    }
}

void cli_record_mask(cli_record_values_t *vs, uint8_t *msg, size_t len, size_t min_value)
{
    masker_t m = {.vs = vs, .min_value = min_value};
    scan_t s = {.start = mask_start, .end = mask_end, .text = mask_text, .ctx = &m};
    /* a message that is not well-formed is masked up to where it breaks;
     * the values are masked wherever they are */
    scan_message(&s, msg, len);
    for (size_t i = 0; m.item && i < m.n_ranges; i++)
        mask_range(&m, m.ranges[i].p, m.ranges[i].n, m.ranges[i].entity); /* never closed */
    free(m.ranges);
    cli_record_values_blank(vs, msg, len);
}

/* ---- what a message says ---- */

typedef struct facts {
    cli_record_facts_t f;
    char ref[8], data[8];   /* the open Status/Alert's CmdRef and Data */
    size_t ref_len, data_len, sid_len;
} facts_t;

static void add_text(char *buf, size_t size, size_t *len, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_space(p[i]))
            continue;
        if (*len + 1 < size)
            buf[*len] = (char)p[i];
        (*len)++; /* too long: does not match anything */
    }
    if (*len < size)
        buf[*len] = 0;
}

static bool text_is(const char *buf, size_t len, size_t size, const char *want)
{
    return len < size && !strcmp(buf, want);
}

static bool top_command(const scan_t *s)
{
    return s->depth == 3 && !strcmp(name_at(s, 1), "SyncBody");
}

static void facts_start(scan_t *s)
{
    facts_t *f = s->ctx;
    const char *cur = current(s);
    if (!strcmp(cur, "MoreData"))
        f->f.more_data = true;
    if (!top_command(s))
        return;
    if (!strcmp(cur, "Final"))
        f->f.final = true;
    f->ref_len = f->data_len = 0;
    f->ref[0] = f->data[0] = 0;
}

static void facts_text(scan_t *s, uint8_t *p, size_t n, bool entity)
{
    facts_t *f = s->ctx;
    const char *cur = current(s);
    if (entity)
        return;
    if (s->depth == 3 && !strcmp(name_at(s, 1), "SyncHdr") && !strcmp(cur, "SessionID"))
        add_text(f->f.session_id, sizeof f->f.session_id, &f->sid_len, p, n);
    if (s->depth != 4 || strcmp(name_at(s, 1), "SyncBody"))
        return;
    if (!strcmp(cur, "CmdRef"))
        add_text(f->ref, sizeof f->ref, &f->ref_len, p, n);
    else if (!strcmp(cur, "Data"))
        add_text(f->data, sizeof f->data, &f->data_len, p, n);
}

static void facts_end(scan_t *s)
{
    facts_t *f = s->ctx;
    if (!top_command(s))
        return;
    const char *cur = current(s);
    if (!strcmp(cur, "Status") && f->f.status0 < 0 && text_is(f->ref, f->ref_len, 8, "0") &&
        f->data_len == 3 && isdigit((unsigned char)f->data[0]))
        f->f.status0 = atoi(f->data);
    if (!strcmp(cur, "Alert")) {
        f->f.pkg1_alert = f->f.pkg1_alert || text_is(f->data, f->data_len, 8, "1200") ||
                          text_is(f->data, f->data_len, 8, "1201");
        f->f.alert_1225 = f->f.alert_1225 || text_is(f->data, f->data_len, 8, "1225");
    }
}

cli_record_facts_t cli_record_facts(const uint8_t *msg, size_t len)
{
    facts_t f = {.f.status0 = -1};
    uint8_t *copy = msg ? malloc(len ? len : 1) : NULL;
    if (!copy)
        return f.f;
    memcpy(copy, msg, len);
    scan_t s = {.start = facts_start, .end = facts_end, .text = facts_text, .ctx = &f};
    scan_message(&s, copy, len);
    explicit_bzero(copy, len); /* a server's message may hold its credentials */
    free(copy);
    if (f.sid_len >= sizeof f.f.session_id)
        f.f.session_id[0] = 0;
    return f.f;
}
