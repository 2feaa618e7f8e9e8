/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uri.c - LocURI parsing: "./" prefix, segments, percent-decoding,
 * ?prop= and ?list= queries, DevDetail/URI limits.
 */
#include "uri.h"

#include <string.h>

#include "internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode %XX escapes of one segment in place; -1 on a bad escape or
 * a decoded '/' or NUL. */
static int percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
        if (hi < 0 || lo < 0)
            return -1;
        char c = (char)(hi * 16 + lo);
        if (c == '/' || c == 0)
            return -1;
        *w++ = c;
        r += 2;
    }
    *w = 0;
    return 0;
}

static int parse_query(arena_t *a, const char *q, dm_uri_t *out)
{
    if (!strncmp(q, "prop=", 5)) {
        out->query = URI_Q_PROP;
        out->query_value = arena_strdup(a, q + 5);
    } else if (!strncmp(q, "list=", 5)) {
        out->query = URI_Q_LIST;
        out->query_value = arena_strdup(a, q + 5);
    } else {
        return 400;
    }
    if (!out->query_value)
        return 500;
    return *out->query_value ? 0 : 400;
}

static int split_segments(arena_t *a, char *path, const uri_limits_t *lim, dm_uri_t *out)
{
    size_t n = 1;
    for (const char *p = path; *p; p++)
        n += *p == '/';
    if (lim->max_depth && n > lim->max_depth)
        return 414;
    out->segs = arena_alloc(a, n * sizeof(char *));
    if (!out->segs)
        return 500;
    char *save = NULL;
    for (char *seg = strtok_r(path, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (lim->max_seg_len && strlen(seg) > lim->max_seg_len)
            return 414;
        if (percent_decode(seg))
            return 400;
        if (!*seg || !strcmp(seg, ".") || !strcmp(seg, ".."))
            return 400;
        out->segs[out->n_segs++] = seg;
    }
    return 0;
}

int uri_parse(arena_t *a, const char *text, const uri_limits_t *lim, dm_uri_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return 400;
    out->text = text;
    size_t len = strlen(text);
    if (lim->max_len && len > lim->max_len)
        return 414;
    const char *q = strchr(text, '?');
    size_t path_len = q ? (size_t)(q - text) : len;
    if (q) {
        int rc = parse_query(a, q + 1, out);
        if (rc)
            return rc;
    }
    const char *p = text;
    if (path_len == 0)
        return 400;
    if (*p == '/')
        return 400;
    if (path_len == 1 && *p == '.') {
        out->path = "";
        out->norm = ".";
        return 0;
    }
    if (path_len >= 2 && p[0] == '.' && p[1] == '/') {
        p += 2;
        path_len -= 2;
        if (path_len == 0) {
            out->path = "";
            out->norm = ".";
            return 0;
        }
        if (*p == '/')
            return 400;
    }
    if (p[path_len - 1] == '/' || memmem(p, path_len, "//", 2))
        return 400;
    char *work = arena_strndup(a, p, path_len);
    if (!work)
        return 500;
    int rc = split_segments(a, work, lim, out);
    if (rc)
        return rc;
    /* the normalised path keeps the server's spelling, decoded */
    buf_t b;
    buf_init(&b, a->dm);
    buf_puts(&b, "./");
    for (size_t i = 0; i < out->n_segs; i++) {
        if (i)
            buf_putc(&b, '/');
        buf_puts(&b, out->segs[i]);
    }
    out->norm = b.failed ? NULL : arena_strndup(a, (char *)b.data, b.len);
    out->path = out->norm ? out->norm + 2 : NULL;
    buf_free(&b);
    return out->path ? 0 : 500;
}

int uri_append_escaped(buf_t *b, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~{}!$'()*+,;=:@", c)) {
            buf_putc(b, c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, 3);
        }
    }
    return b->failed ? -1 : 0;
}
