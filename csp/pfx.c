/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pfx.c - ClientCertificateInstall/PFXCertInstall/{UniqueID} (docs/pfx.md).
 *
 *   {UniqueID}                       Add, Get, Delete (removes what it installed)
 *   {UniqueID}/KeyLocation           int 1..4          Add, Get, Replace, Delete
 *   {UniqueID}/ContainerName         chr
 *   {UniqueID}/PFXCertPasswordEncryptionType   int 0..2
 *   {UniqueID}/PFXCertPasswordEncryptionStore  chr
 *   {UniqueID}/PFXKeyExportable      bool
 *   {UniqueID}/PFXCertPassword       chr, held in memory only; never given out (Get 405)
 *   {UniqueID}/PFXCertBlob           b64 | bin | chr (base64 text); Add installs, Replace
 *                                    re-installs, inside an Atomic; never given out
 *   {UniqueID}/Thumbprint|Status|ErrorCode   Get
 *
 * The blob is staged by Add/Replace and installed by validate(), when every
 * command of the Atomic has run: the parameters may come in any order.
 */
#include "pfx.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "platform.h"
#include "state_format.h"
#include "store/cert.h"
#include "store/textbuf.h"

#define PFX_FORMAT "omadm-pfx"
#define PFX_WRITES "omadm-pfx 1"
#define MAX_ID_LEN 255
#define MAX_PARAM_LEN 1024
#define MAX_BLOB (1024 * 1024)
#define MAX_INSTALLS 1000  /* {UniqueID}s per scope */
#define MAX_CERTS 32       /* certificates one install may put into the store */
#define RECORD_NAME_SIZE 39 /* "pfx-d-" + 32 hex + NUL */

typedef enum { K_KEYLOC, K_CONTAINER, K_ENCTYPE, K_ENCSTORE, K_EXPORTABLE, K__COUNT } param_t;

static const struct {
    const char *name;
    char kind;      /* 'i' integer, 'c' text, 'b' bool */
    int lo, hi;
} params[K__COUNT] = {
    {"KeyLocation", 'i', 1, 4},
    {"ContainerName", 'c', 0, 0},
    {"PFXCertPasswordEncryptionType", 'i', 0, 2},
    {"PFXCertPasswordEncryptionStore", 'c', 0, 0},
    {"PFXKeyExportable", 'b', 0, 0},
};

typedef struct pfx_inst {
    char store[24];
    char thumb[CERT_THUMB_HEX + 1];
} pfx_inst_t;

/* The state record of one {UniqueID}. */
typedef struct pfx_rec {
    pfx_ns_t ns;
    char *id;
    char *val[K__COUNT];        /* NULL = unset */
    char *name[K__COUNT];       /* node name as the server spelled it */
    bool pw;                    /* a password was set (the value is in memory only) */
    bool blob;                  /* a blob is installed */
    bool tried;                 /* an install was attempted: Status/ErrorCode exist */
    int32_t status, error;
    char thumb[CERT_THUMB_HEX + 1]; /* the installed leaf; "" none */
    size_t n_inst;
    pfx_inst_t inst[MAX_CERTS]; /* what the install put into the store */
} pfx_rec_t;

/* What the store object keeps in memory for one {UniqueID}: the password
 * (never written to disk) and a blob staged for validate(). */
typedef struct pfx_mem {
    pfx_ns_t ns;
    char *id;
    char *pw;                   /* committed password; NULL none */
    bool st_set;                /* the open transaction changed the password: */
    char *st_pw;                /*   to this (NULL: none) */
    uint8_t *blob;              /* staged blob: DER, or base64 text (blob_b64) */
    size_t blob_len;
    bool blob_b64;
    bool replace;
    char *server;
    struct pfx_mem *next;
} pfx_mem_t;

/* ---- small helpers ---- */

static void wipe_free(const omadm_platform_t *p, char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        plat_free(p, s);
    }
}

static int set_str(const omadm_platform_t *p, char **dst, const char *src, size_t len)
{
    char *c = NULL;
    if (src) {
        c = plat_alloc(p, len + 1);
        if (!c)
            return -1;
        memcpy(c, src, len);
        c[len] = 0;
    }
    wipe_free(p, *dst);
    *dst = c;
    return 0;
}

static const char *my_store(pfx_ns_t ns)
{
    return ns == PFX_USER ? "my-user" : "my-system";
}

static const char *ca_store(pfx_ns_t ns)
{
    return ns == PFX_USER ? "user-ca" : "ca";
}

/* Status reads as GetLastError would after PFXImportCertStore: the Win32
 * code for an HRESULT_FROM_WIN32, else the HRESULT. */
static int32_t status_of(int32_t ec)
{
    uint32_t u = (uint32_t)ec;
    return (u & 0xFFFF0000u) == 0x80070000u ? (int32_t)(u & 0xFFFF) : ec;
}

/* Base64 (white space anywhere ignored) into bytes from p: 0, -1 not
 * base64, -2 no memory. */
static int b64_decode(const omadm_platform_t *p, const uint8_t *in, size_t len, uint8_t **out,
                      size_t *out_len)
{
    *out = NULL;
    char *clean = plat_alloc(p, len + 1);
    if (!clean)
        return -2;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        if (isspace(in[i]))
            continue;
        clean[n++] = (char)in[i];
    }
    clean[n] = 0;
    if (!n || n % 4 || n > INT32_MAX) {
        plat_free(p, clean);
        return -1;
    }
    pad = clean[n - 1] == '=' ? (clean[n - 2] == '=' ? 2 : 1) : 0;
    uint8_t *buf = plat_alloc(p, n / 4 * 3 + 1);
    int got = buf ? EVP_DecodeBlock(buf, (const unsigned char *)clean, (int)n) : -2;
    OPENSSL_cleanse(clean, n);
    plat_free(p, clean);
    if (got < 0 || (size_t)got < pad) {
        plat_free(p, buf);
        return buf ? -1 : -2;
    }
    *out = buf;
    *out_len = (size_t)got - pad;
    return 0;
}

/* ---- the record ---- */

static int record_name(pfx_ns_t ns, const char *id, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    buf[0] = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (const char *c = id; ok && *c; c++) {
        unsigned char low = (unsigned char)tolower((unsigned char)*c);
        ok = EVP_DigestUpdate(ctx, &low, 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    memcpy(buf, ns == PFX_USER ? "pfx-u-" : "pfx-d-", 6);
    for (unsigned i = 0; i < 16; i++) {
        buf[6 + 2 * i] = hex[md[i] >> 4];
        buf[7 + 2 * i] = hex[md[i] & 15];
    }
    buf[RECORD_NAME_SIZE - 1] = 0;
    return 0;
}

/* Tokens: bytes outside [!-~] and '%' as %HH; the empty string as "%". */
static void put_token(store_buf_t *b, const char *s)
{
    if (!*s)
        store_buf_putc(b, '%');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c > 0x20 && *c < 0x7f && *c != '%')
            store_buf_putc(b, (char)*c);
        else
            store_buf_printf(b, "%%%02X", *c);
    }
}

static int get_token(char *t)
{
    if (!strcmp(t, "%")) {
        *t = 0;
        return 0;
    }
    char *w = t;
    for (char *r = t; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        unsigned v;
        if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]) ||
            sscanf(r + 1, "%2x", &v) != 1 || !v)
            return -1;
        *w++ = (char)v;
        r += 2;
    }
    *w = 0;
    return 0;
}

static void rec_free(const omadm_platform_t *p, pfx_rec_t *r)
{
    plat_free(p, r->id);
    for (int i = 0; i < K__COUNT; i++) {
        plat_free(p, r->val[i]);
        plat_free(p, r->name[i]);
    }
    memset(r, 0, sizeof *r);
}

static char *serialise(const omadm_platform_t *p, const pfx_rec_t *r, size_t *len)
{
    store_buf_t buf, *b = &buf;
    store_buf_init(b, p);
    store_buf_printf(b, PFX_WRITES "\nns %d\nid ", (int)r->ns);
    put_token(b, r->id);
    store_buf_putc(b, '\n');
    for (int i = 0; i < K__COUNT; i++) {
        if (!r->val[i])
            continue;
        store_buf_printf(b, "p %d ", i);
        put_token(b, r->name[i]);
        store_buf_putc(b, ' ');
        put_token(b, r->val[i]);
        store_buf_putc(b, '\n');
    }
    store_buf_printf(b, "pw %d\nblob %d\n", r->pw, r->blob);
    if (r->tried)
        store_buf_printf(b, "result %ld %ld\n", (long)r->status, (long)r->error);
    if (r->thumb[0])
        store_buf_printf(b, "thumb %s\n", r->thumb);
    for (size_t i = 0; i < r->n_inst; i++)
        store_buf_printf(b, "inst %s %s\n", r->inst[i].store, r->inst[i].thumb);
    store_buf_puts(b, "end\n");
    return store_buf_take(b, len);
}

static bool is_thumb(const char *t)
{
    return strlen(t) == CERT_THUMB_HEX && strspn(t, "0123456789ABCDEF") == CERT_THUMB_HEX;
}

/* 0; -1 damaged; -2 no memory; -3 newer format.  On failure *r may hold
 * what was read: parse() frees it. */
static int parse_lines(const omadm_platform_t *p, char *text, pfx_rec_t *r)
{
    memset(r, 0, sizeof *r);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    state_fmt_t fmt = state_format(line, PFX_FORMAT, 1, 1, NULL);
    if (fmt == STATE_FMT_NEWER)
        return -3;
    if (fmt == STATE_FMT_DAMAGED)
        return -1;
    bool ended = false;
    while (!ended && (line = strtok_r(NULL, "\n", &save))) {
        char *tok[4];
        size_t n = 0;
        char *ls = NULL;
        for (char *t = strtok_r(line, " ", &ls); t && n < 4; t = strtok_r(NULL, " ", &ls))
            tok[n++] = t;
        if (strtok_r(NULL, " ", &ls))
            return -1;
        for (size_t i = 1; i < n; i++)
            if (get_token(tok[i]))
                return -1;
        const char *k = tok[0];
        char *end = NULL;
        long v = n > 1 ? strtol(tok[1], &end, 10) : 0;
        bool num = n > 1 && end && !*end && end != tok[1];
        if (!strcmp(k, "end") && n == 1) {
            ended = true;
        } else if (!strcmp(k, "ns") && n == 2 && num && v >= 0 && v <= 1) {
            r->ns = (pfx_ns_t)v;
        } else if (!strcmp(k, "id") && n == 2 && !r->id) {
            if (set_str(p, &r->id, tok[1], strlen(tok[1])))
                return -2;
        } else if (!strcmp(k, "p") && n == 4 && num && v >= 0 && v < K__COUNT) {
            if (set_str(p, &r->name[v], tok[2], strlen(tok[2])) ||
                set_str(p, &r->val[v], tok[3], strlen(tok[3])))
                return -2;
        } else if (!strcmp(k, "pw") && n == 2 && num && (v == 0 || v == 1)) {
            r->pw = v;
        } else if (!strcmp(k, "blob") && n == 2 && num && (v == 0 || v == 1)) {
            r->blob = v;
        } else if (!strcmp(k, "result") && n == 3 && num) {
            long e = strtol(tok[2], &end, 10);
            if (*end || end == tok[2] || v < INT32_MIN || v > INT32_MAX || e < INT32_MIN ||
                e > INT32_MAX)
                return -1;
            r->tried = true;
            r->status = (int32_t)v;
            r->error = (int32_t)e;
        } else if (!strcmp(k, "thumb") && n == 2 && is_thumb(tok[1])) {
            memcpy(r->thumb, tok[1], sizeof r->thumb);
        } else if (!strcmp(k, "inst") && n == 3 && r->n_inst < MAX_CERTS && is_thumb(tok[2]) &&
                   strlen(tok[1]) < sizeof r->inst[0].store && store_kind_find(tok[1])) {
            strcpy(r->inst[r->n_inst].store, tok[1]);
            strcpy(r->inst[r->n_inst++].thumb, tok[2]);
        } else {
            return -1;
        }
    }
    return ended && r->id ? 0 : -1;
}

/* parse_lines; on failure *r is empty (rec_free not needed). */
static int parse(const omadm_platform_t *p, char *text, pfx_rec_t *r)
{
    int rc = parse_lines(p, text, r);
    if (rc)
        rec_free(p, r);
    return rc;
}

/* 0 loaded, 1 absent, -1 damaged or unreadable, -3 newer. */
static int rec_load(store_t *s, pfx_ns_t ns, const char *id, pfx_rec_t *r)
{
    const omadm_platform_t *p = store_platform(s);
    char name[RECORD_NAME_SIZE];
    char *text = NULL;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    if (record_name(ns, id, name))
        return -1;
    int rc = store_get_state(s, name, &text, &len);
    if (rc)
        return rc < 0 ? -1 : 1;
    rc = strlen(text) == len ? parse(p, text, r) : -1;
    OPENSSL_cleanse(text, len);
    plat_free(p, text);
    if (!rc && (r->ns != ns || strcasecmp(r->id, id)))
        rc = -1;
    if (rc)
        rec_free(p, r);
    return rc == 0 ? 0 : rc == -3 ? -3 : -1;
}

static int rec_save(store_t *s, const pfx_rec_t *r)
{
    char name[RECORD_NAME_SIZE];
    size_t len = 0;
    if (record_name(r->ns, r->id, name))
        return -1;
    char *text = serialise(store_platform(s), r, &len);
    if (!text)
        return -1;
    int rc = store_put_state(s, name, text, len);
    plat_free(store_platform(s), text);
    return rc;
}

/* ---- checking the records ---- */

typedef struct check_walk {
    store_t *s;
    void (*fn)(void *ctx, const char *problem);
    void *ctx;
    unsigned n;
} check_walk_t;

static void problem(check_walk_t *w, const char *name, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s/state/%s: %s", store_dir(w->s), name, what);
    w->n++;
    if (w->fn)
        w->fn(w->ctx, msg);
}

static int check_one(void *ctx, const char *name)
{
    check_walk_t *w = ctx;
    const omadm_platform_t *p = store_platform(w->s);
    char *text = NULL, want[RECORD_NAME_SIZE];
    size_t len = 0;
    pfx_rec_t r;
    int rc = store_get_state(w->s, name, &text, &len);
    if (rc == 1)
        return 0; /* gone meanwhile */
    if (rc) {
        problem(w, name, "PFX install record cannot be read");
        return 0;
    }
    rc = strlen(text) == len ? parse(p, text, &r) : -1;
    plat_free(p, text);
    if (rc == -3) {
        problem(w, name, "PFX install record of a format newer than this library reads ("
                         PFX_WRITES "); left as it is");
        return 0;
    }
    if (rc) {
        problem(w, name,
                rc == -2 ? "PFX install record cannot be read" : "PFX install record is damaged");
        return 0;
    }
    if (record_name(r.ns, r.id, want) || strcmp(want, name))
        problem(w, name, "PFX install record holds another {UniqueID} than its name says");
    rec_free(p, &r);
    return 0;
}

int pfx_check_records(store_t *s, void (*fn)(void *ctx, const char *problem), void *ctx,
                      unsigned *problems)
{
    check_walk_t w = {s, fn, ctx, 0};
    int rc = store_each_state(s, "pfx-", check_one, &w);
    *problems = w.n;
    return rc;
}

/* ---- memory ---- */

static pfx_mem_t *mem_find(struct omadm_certstore *cs, pfx_ns_t ns, const char *id, bool create)
{
    for (pfx_mem_t *m = cs->pfx; m; m = m->next)
        if (m->ns == ns && !strcasecmp(m->id, id))
            return m;
    if (!create)
        return NULL;
    pfx_mem_t *m = plat_calloc(&cs->plat, sizeof *m);
    if (!m || set_str(&cs->plat, &m->id, id, strlen(id))) {
        plat_free(&cs->plat, m);
        return NULL;
    }
    m->ns = ns;
    m->next = cs->pfx;
    cs->pfx = m;
    return m;
}

static void drop_blob(const omadm_platform_t *p, pfx_mem_t *m)
{
    if (m->blob)
        OPENSSL_cleanse(m->blob, m->blob_len);
    plat_free(p, m->blob);
    plat_free(p, m->server);
    m->blob = NULL;
    m->server = NULL;
    m->blob_len = 0;
}

/* The password as the open transaction sees it (NULL: none). */
static const char *mem_pw(const pfx_mem_t *m)
{
    return !m ? NULL : m->st_set ? m->st_pw : m->pw;
}

/* Stage a new password (NULL: none). */
static int mem_set_pw(struct omadm_certstore *cs, pfx_mem_t *m, const char *pw, size_t len)
{
    if (set_str(&cs->plat, &m->st_pw, pw, len))
        return -1;
    m->st_set = true;
    return 0;
}

static void mem_free_one(const omadm_platform_t *p, pfx_mem_t *m)
{
    drop_blob(p, m);
    wipe_free(p, m->pw);
    wipe_free(p, m->st_pw);
    plat_free(p, m->id);
    plat_free(p, m);
}

/* Settle the open transaction: keep (commit) or drop its changes; entries
 * left with nothing are freed. */
static void mem_settle(struct omadm_certstore *cs, bool keep)
{
    pfx_mem_t **pp = &cs->pfx;
    while (*pp) {
        pfx_mem_t *m = *pp;
        if (m->st_set && keep) {
            wipe_free(&cs->plat, m->pw);
            m->pw = m->st_pw;
            m->st_pw = NULL;
        }
        wipe_free(&cs->plat, m->st_pw);
        m->st_pw = NULL;
        m->st_set = false;
        drop_blob(&cs->plat, m);
        if (!m->pw) {
            *pp = m->next;
            mem_free_one(&cs->plat, m);
        } else {
            pp = &m->next;
        }
    }
}

void pfx_commit(struct omadm_certstore *cs)
{
    mem_settle(cs, true);
}

void pfx_rollback(struct omadm_certstore *cs)
{
    mem_settle(cs, false);
}

void pfx_close(struct omadm_certstore *cs)
{
    while (cs->pfx) {
        pfx_mem_t *m = cs->pfx;
        cs->pfx = m->next;
        mem_free_one(&cs->plat, m);
    }
}

/* ---- nodes ---- */

typedef enum {
    PN_NONE,
    PN_TOP,       /* PFXCertInstall */
    PN_ID,        /* {UniqueID} */
    PN_PARAM,     /* a parameter */
    PN_PASSWORD,  /* PFXCertPassword */
    PN_BLOB,      /* PFXCertBlob */
    PN_THUMB,     /* Thumbprint */
    PN_STATUS,
    PN_ERROR
} pnode_kind_t;

typedef struct pnode {
    pnode_kind_t kind;
    const char *id;
    const char *leaf;
    int param;
} pnode_t;

static void resolve(char **segs, size_t n, pnode_t *out)
{
    memset(out, 0, sizeof *out);
    out->param = -1;
    if (n == 0) {
        out->kind = PN_TOP;
        return;
    }
    if (strlen(segs[0]) > MAX_ID_LEN || n > 2)
        return;
    out->id = segs[0];
    if (n == 1) {
        out->kind = PN_ID;
        return;
    }
    const char *l = out->leaf = segs[1];
    for (int i = 0; i < K__COUNT; i++) {
        if (!strcasecmp(l, params[i].name)) {
            out->kind = PN_PARAM;
            out->param = i;
            return;
        }
    }
    out->kind = !strcasecmp(l, "PFXCertPassword") ? PN_PASSWORD
                : !strcasecmp(l, "PFXCertBlob")   ? PN_BLOB
                : !strcasecmp(l, "Thumbprint")    ? PN_THUMB
                : !strcasecmp(l, "Status")        ? PN_STATUS
                : !strcasecmp(l, "ErrorCode")     ? PN_ERROR
                                                  : PN_NONE;
}

static int load(struct omadm_certstore *cs, pfx_ns_t ns, const char *id, pfx_rec_t *r)
{
    int rc = rec_load(cs->store, ns, id, r);
    return rc == 0 ? 0 : rc == 1 ? -404 : -500;
}

static int out_text(omadm_csp_out_t *out, const char *text, const char *format)
{
    omadm_value_t v = {(const uint8_t *)text, strlen(text), format, NULL};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

static const char *param_format(int i)
{
    return params[i].kind == 'i' ? "int" : params[i].kind == 'b' ? "bool" : "chr";
}

static int get_leaf(struct omadm_certstore *cs, const pfx_rec_t *r, const pnode_t *n,
                    omadm_csp_out_t *out)
{
    char num[24];
    switch (n->kind) {
    case PN_PARAM:
        return r->val[n->param] ? out_text(out, r->val[n->param], param_format(n->param)) : -404;
    case PN_PASSWORD:
    case PN_BLOB:
        return -405; /* secrets are never given out */
    case PN_STATUS:
    case PN_ERROR:
        if (!r->tried)
            return -404;
        snprintf(num, sizeof num, "%ld", (long)(n->kind == PN_STATUS ? r->status : r->error));
        return out_text(out, num, "int");
    case PN_THUMB: {
        if (!r->thumb[0])
            return -404;
        /* "" once the certificate is gone from the store (deleted through
         * CertificateStore, say), as for SCEP's CertThumbprint */
        store_rec_t rec;
        int rc = store_get(cs->store, my_store(r->ns), r->thumb, &rec);
        if (rc < 0)
            return -500;
        if (rc == 0)
            store_rec_free(cs->store, &rec);
        return out_text(out, rc == 0 ? r->thumb : "", "chr");
    }
    default:
        return -404;
    }
}

int pfx_get(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n, omadm_csp_out_t *out)
{
    pnode_t pn;
    pfx_rec_t r;
    resolve(segs, n, &pn);
    if (pn.kind == PN_NONE)
        return -404;
    if (pn.kind == PN_TOP)
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    int rc = load(cs, ns, pn.id, &r);
    if (rc)
        return rc;
    rc = pn.kind == PN_ID ? (omadm_csp_out_interior(out, NULL) ? -500 : 0)
                          : get_leaf(cs, &r, &pn, out);
    rec_free(&cs->plat, &r);
    return rc;
}

typedef struct collect {
    struct omadm_certstore *cs;
    pfx_ns_t ns;
    omadm_csp_out_t *out;
    int rc;
} collect_t;

static int list_one(void *ctx, const char *name)
{
    collect_t *c = ctx;
    const omadm_platform_t *p = &c->cs->plat;
    char *text = NULL;
    size_t len = 0;
    pfx_rec_t r;
    int rc = store_get_state(c->cs->store, name, &text, &len);
    if (rc) {
        c->rc = rc < 0 ? -500 : 0;
        return c->rc ? -1 : 0;
    }
    rc = strlen(text) == len ? parse(p, text, &r) : -1;
    OPENSSL_cleanse(text, len);
    plat_free(p, text);
    if (rc == -2)
        c->rc = -500;
    if (rc == 0) {
        if (omadm_csp_out_child(c->out, r.id))
            c->rc = -500;
        rec_free(p, &r);
    }
    return c->rc ? -1 : 0;
}

int pfx_list(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
             omadm_csp_out_t *out)
{
    pnode_t pn;
    pfx_rec_t r;
    resolve(segs, n, &pn);
    if (pn.kind == PN_TOP) {
        collect_t c = {cs, ns, out, 0};
        if (store_each_state(cs->store, ns == PFX_USER ? "pfx-u-" : "pfx-d-", list_one, &c) &&
            !c.rc)
            c.rc = -500;
        return c.rc;
    }
    if (pn.kind == PN_NONE)
        return -404;
    int rc = load(cs, ns, pn.id, &r);
    if (rc)
        return rc;
    if (pn.kind != PN_ID) {
        rec_free(&cs->plat, &r);
        return -406; /* a leaf has no children */
    }
    /* PFXCertPassword and PFXCertBlob are not listed: never given out */
    for (int i = 0; !rc && i < K__COUNT; i++)
        if (r.val[i] && omadm_csp_out_child(out, r.name[i]))
            rc = -500;
    if (!rc && r.thumb[0] && omadm_csp_out_child(out, "Thumbprint"))
        rc = -500;
    if (!rc && r.tried &&
        (omadm_csp_out_child(out, "Status") || omadm_csp_out_child(out, "ErrorCode")))
        rc = -500;
    rec_free(&cs->plat, &r);
    return rc;
}

/* A new {UniqueID}: -420 when the scope holds MAX_INSTALLS already. */
static int create(struct omadm_certstore *cs, pfx_ns_t ns, const char *id, pfx_rec_t *r)
{
    size_t count = 0;
    if (store_count_state(cs->store, ns == PFX_USER ? "pfx-u-" : "pfx-d-", &count))
        return -500;
    if (count >= MAX_INSTALLS)
        return -420;
    memset(r, 0, sizeof *r);
    r->ns = ns;
    return set_str(&cs->plat, &r->id, id, strlen(id)) ? -500 : 0;
}

/* A value as text (NUL-free, at most max bytes): 0, -400, -413. */
static int value_text(const omadm_value_t *v, size_t max)
{
    if (v->len > max)
        return -413;
    if (v->len && (!v->data || memchr(v->data, 0, v->len)))
        return -400;
    return 0;
}

/* Check a parameter value; *canon (static or v's bytes) gets the value to
 * keep: integers without white space, booleans as true/false. */
static int check_param(int i, const omadm_value_t *v, char *buf, size_t size)
{
    if (v->format && strcmp(v->format, "chr") && strcmp(v->format, "int") &&
        strcmp(v->format, "bool"))
        return -415;
    int rc = value_text(v, MAX_PARAM_LEN);
    if (rc)
        return rc;
    size_t a = 0, b = v->len;
    if (params[i].kind != 'c') {
        while (a < b && isspace(v->data[a]))
            a++;
        while (b > a && isspace(v->data[b - 1]))
            b--;
    }
    if (b - a >= size)
        return -400;
    if (b > a)
        memcpy(buf, v->data + a, b - a);
    buf[b - a] = 0;
    if (params[i].kind == 'i') {
        char *end;
        errno = 0;
        long n = strtol(buf, &end, 10);
        if (!*buf || *end || errno || n < params[i].lo || n > params[i].hi)
            return -400;
        snprintf(buf, size, "%ld", n);
    } else if (params[i].kind == 'b') {
        if (!strcasecmp(buf, "true") || !strcmp(buf, "1"))
            strcpy(buf, "true");
        else if (!strcasecmp(buf, "false") || !strcmp(buf, "0"))
            strcpy(buf, "false");
        else
            return -400;
    }
    return 0;
}

static int set_param(struct omadm_certstore *cs, pfx_rec_t *r, const pnode_t *pn,
                     const omadm_value_t *v, bool keep_name)
{
    char buf[MAX_PARAM_LEN + 1];
    int rc = check_param(pn->param, v, buf, sizeof buf);
    if (rc)
        return rc;
    if ((!keep_name && set_str(&cs->plat, &r->name[pn->param], pn->leaf, strlen(pn->leaf))) ||
        set_str(&cs->plat, &r->val[pn->param], buf, strlen(buf)))
        return -500;
    return 0;
}

/* The blob as sent: DER (bin) or base64 text (b64, or chr carrying it,
 * as Intune sends it), decoded by the install: what the blob holds is the
 * install's to judge (Status, ErrorCode), its format the command's. */
static int blob_copy(struct omadm_certstore *cs, const omadm_value_t *v, uint8_t **blob,
                     size_t *len, bool *b64)
{
    *blob = NULL;
    if (v->format && strcmp(v->format, "b64") && strcmp(v->format, "bin") &&
        strcmp(v->format, "chr"))
        return -415;
    if (!v->len || !v->data)
        return -400;
    *b64 = !v->format || strcmp(v->format, "bin");
    if (v->len > (*b64 ? MAX_BLOB / 3 * 4 + MAX_BLOB / 32 : MAX_BLOB))
        return -413;
    *blob = plat_alloc(&cs->plat, v->len);
    if (!*blob)
        return -500;
    memcpy(*blob, v->data, v->len);
    *len = v->len;
    return 0;
}

/* Stage a blob for validate(). */
static int stage_blob(struct omadm_certstore *cs, pfx_rec_t *r, const omadm_csp_req_t *req,
                      const omadm_value_t *v, bool replace)
{
    if (!req->atomic)
        return -405; /* AtomicRequired: the parameters must come with it */
    uint8_t *der = NULL;
    size_t len = 0;
    bool b64 = false;
    int rc = blob_copy(cs, v, &der, &len, &b64);
    if (rc)
        return rc;
    pfx_mem_t *m = mem_find(cs, r->ns, r->id, true);
    if (!m) {
        plat_free(&cs->plat, der);
        return -500;
    }
    if (m->blob) {
        OPENSSL_cleanse(der, len);
        plat_free(&cs->plat, der);
        return replace ? -405 : -418; /* one install per {UniqueID} and Atomic */
    }
    m->blob = der;
    m->blob_len = len;
    m->blob_b64 = b64;
    m->replace = replace;
    if (set_str(&cs->plat, &m->server, req->server_id, strlen(req->server_id)))
        return -500;
    return 0;
}

static int set_password(struct omadm_certstore *cs, pfx_rec_t *r, const omadm_value_t *v)
{
    if (v->format && strcmp(v->format, "chr"))
        return -415;
    int rc = value_text(v, MAX_PARAM_LEN * 8);
    if (rc)
        return rc;
    pfx_mem_t *m = mem_find(cs, r->ns, r->id, true);
    if (!m || mem_set_pw(cs, m, v->len ? (const char *)v->data : "", v->len))
        return -500;
    r->pw = true;
    return 0;
}

int pfx_add(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
            const omadm_csp_req_t *req, const omadm_value_t *v)
{
    pnode_t pn;
    pfx_rec_t r;
    resolve(segs, n, &pn);
    if (pn.kind == PN_NONE)
        return -404;
    if (pn.kind == PN_TOP)
        return -418;
    int rc = load(cs, ns, pn.id, &r);
    if (rc == -500)
        return rc;
    bool exists = rc == 0;
    if (pn.kind == PN_ID) {
        rc = exists ? -418 : create(cs, ns, pn.id, &r);
        if (!rc)
            rc = rec_save(cs->store, &r) ? -500 : 0;
        rec_free(&cs->plat, &r);
        return rc;
    }
    if (pn.kind == PN_THUMB || pn.kind == PN_STATUS || pn.kind == PN_ERROR) {
        if (exists)
            rec_free(&cs->plat, &r);
        return exists ? -405 : -404;
    }
    /* Add creates the missing {UniqueID}, as Add does */
    rc = exists ? 0 : create(cs, ns, pn.id, &r);
    if (!rc) {
        switch (pn.kind) {
        case PN_PARAM:
            rc = r.val[pn.param] ? -418 : set_param(cs, &r, &pn, v, false);
            break;
        case PN_PASSWORD:
            rc = r.pw ? -418 : set_password(cs, &r, v);
            break;
        default: /* PN_BLOB: Add when a blob is installed fails */
            rc = r.blob ? -418 : stage_blob(cs, &r, req, v, false);
        }
    }
    if (!rc)
        rc = rec_save(cs->store, &r) ? -500 : 0;
    rec_free(&cs->plat, &r);
    return rc;
}

int pfx_replace(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n,
                const omadm_csp_req_t *req, const omadm_value_t *v)
{
    pnode_t pn;
    pfx_rec_t r;
    resolve(segs, n, &pn);
    if (pn.kind == PN_NONE)
        return -404;
    if (pn.kind == PN_TOP)
        return -405;
    int rc = load(cs, ns, pn.id, &r);
    if (rc)
        return rc;
    switch (pn.kind) {
    case PN_PARAM:
        rc = !r.val[pn.param] ? -404 : set_param(cs, &r, &pn, v, true);
        break;
    case PN_PASSWORD:
        rc = !r.pw ? -404 : set_password(cs, &r, v);
        break;
    case PN_BLOB: /* Replace when no blob is installed fails */
        rc = !r.blob ? -404 : stage_blob(cs, &r, req, v, true);
        break;
    default:
        rc = -405;
    }
    if (!rc)
        rc = rec_save(cs->store, &r) ? -500 : 0;
    rec_free(&cs->plat, &r);
    return rc;
}

/* Remove what an install put into the store (what is still there). */
static int remove_installed(store_t *s, const pfx_rec_t *r, const pfx_inst_t *keep,
                            size_t n_keep)
{
    for (size_t i = 0; i < r->n_inst; i++) {
        bool kept = false;
        for (size_t k = 0; k < n_keep && !kept; k++)
            kept = !strcmp(keep[k].store, r->inst[i].store) &&
                   !strcmp(keep[k].thumb, r->inst[i].thumb);
        if (kept)
            continue;
        store_rec_t rec;
        int rc = store_get(s, r->inst[i].store, r->inst[i].thumb, &rec);
        if (rc < 0)
            return -1;
        if (rc == 1)
            continue;
        store_rec_free(s, &rec);
        if (store_del(s, r->inst[i].store, r->inst[i].thumb))
            return -1;
    }
    return 0;
}

int pfx_del(struct omadm_certstore *cs, pfx_ns_t ns, char **segs, size_t n)
{
    pnode_t pn;
    pfx_rec_t r;
    resolve(segs, n, &pn);
    if (pn.kind == PN_NONE)
        return -404;
    if (pn.kind == PN_TOP)
        return -405;
    int rc = load(cs, ns, pn.id, &r);
    if (rc)
        return rc;
    pfx_mem_t *m = mem_find(cs, ns, pn.id, false);
    switch (pn.kind) {
    case PN_ID: {
        char name[RECORD_NAME_SIZE];
        rc = remove_installed(cs->store, &r, NULL, 0) || record_name(ns, r.id, name) ||
                     store_del_state(cs->store, name)
                 ? -500
                 : 0;
        if (!rc && m) {
            drop_blob(&cs->plat, m);
            rc = mem_set_pw(cs, m, NULL, 0) ? -500 : 0;
        }
        rec_free(&cs->plat, &r);
        return rc;
    }
    case PN_PARAM:
        if (!r.val[pn.param]) {
            rc = -404;
            break;
        }
        set_str(&cs->plat, &r.val[pn.param], NULL, 0);
        set_str(&cs->plat, &r.name[pn.param], NULL, 0);
        break;
    case PN_PASSWORD:
        if (!r.pw) {
            rc = -404;
            break;
        }
        r.pw = false;
        rc = m && mem_set_pw(cs, m, NULL, 0) ? -500 : 0;
        break;
    default:
        rc = -405;
    }
    if (!rc)
        rc = rec_save(cs->store, &r) ? -500 : 0;
    rec_free(&cs->plat, &r);
    return rc;
}

/* ---- the key ---- */

int32_t pfx_put_key(struct omadm_certstore *cs, const char *store, const char *thumb, EVP_PKEY *key,
                    int key_location)
{
    if (key_location < 1 || key_location > 3)
        return (int32_t)0x80090029; /* 4, Windows Hello for Business: NTE_NOT_SUPPORTED */
    char *pem = NULL;
    const char *why = NULL;
    /* 1 the TPM or fail, 2 the TPM else software (logged), 3 software: the
     * key store's choice, as for SCEP's KeyProtection (docs/keys.md) */
    int32_t ec = cs_key_for_store(cs, key, (unsigned)key_location, &pem, &why);
    if (ec)
        cs_log(cs, OMADM_LOG_WARN, "PFX KeyLocation %d: %s", key_location, why ? why : "failed");
    else if (store_put_key(cs->store, store, thumb, pem))
        ec = (int32_t)0x8007001D; /* ERROR_WRITE_FAULT */
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        plat_free(&cs->plat, pem);
    }
    ERR_clear_error();
    return ec;
}

/* ---- opening the blob ---- */

typedef struct opened {
    OSSL_LIB_CTX *ctx;
    OSSL_PROVIDER *def, *leg;
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) *ca;
} opened_t;

static void opened_free(opened_t *o)
{
    EVP_PKEY_free(o->key);
    X509_free(o->cert);
    sk_X509_pop_free(o->ca, X509_free);
    if (o->leg)
        OSSL_PROVIDER_unload(o->leg);
    if (o->def)
        OSSL_PROVIDER_unload(o->def);
    OSSL_LIB_CTX_free(o->ctx);
    memset(o, 0, sizeof *o);
    ERR_clear_error();
}

static bool mac_ok(PKCS12 *p12, const char *pw)
{
    if (!PKCS12_mac_present(p12))
        return true;
    if (pw && *pw)
        return PKCS12_verify_mac(p12, pw, -1) == 1;
    return PKCS12_verify_mac(p12, NULL, 0) == 1 || PKCS12_verify_mac(p12, "", 0) == 1;
}

/* Open a PKCS#12 blob: 0 and o filled (the key and certificates belong to
 * o's library context: use them before opened_free), or the ErrorCode.
 * The legacy provider (RC2-40, 3DES in older PFX files) is loaded in a
 * private library context, as scep_msg.c does for DES. */
static int32_t open_blob(const uint8_t *der, size_t len, const char *pw, opened_t *o)
{
    memset(o, 0, sizeof *o);
    o->ctx = OSSL_LIB_CTX_new();
    if (!o->ctx || !(o->def = OSSL_PROVIDER_load(o->ctx, "default")))
        return (int32_t)0x8007000E;
    o->leg = OSSL_PROVIDER_load(o->ctx, "legacy"); /* may be missing: modern PFX still open */
    ERR_clear_error();
    PKCS12 *p12 = PKCS12_init_ex(NID_pkcs7_data, o->ctx, NULL);
    if (!p12)
        return (int32_t)0x8007000E;
    const unsigned char *q = der;
    if (len > LONG_MAX || !d2i_PKCS12(&p12, &q, (long)len) || q != der + len) {
        PKCS12_free(p12);
        return PFX_EC_BAD_ENCODE;
    }
    int32_t ec = 0;
    if (!mac_ok(p12, pw))
        ec = PFX_EC_BAD_PASSWORD;
    else if (!PKCS12_parse(p12, pw && *pw ? pw : NULL, &o->key, &o->cert, &o->ca))
        /* without a MAC a wrong password shows only here */
        ec = PKCS12_mac_present(p12) ? PFX_EC_BAD_ENCODE : PFX_EC_BAD_PASSWORD;
    else if (!o->key || !o->cert || X509_check_private_key(o->cert, o->key) != 1)
        ec = PFX_EC_BAD_KEY; /* no key, or no certificate of it */
    PKCS12_free(p12);
    ERR_clear_error();
    return ec;
}

/* The blob's DER: *der is blob itself, or (b64) decoded from p.  0 or
 * the ErrorCode. */
static int32_t blob_decode(const omadm_platform_t *p, const uint8_t *blob, size_t len, bool b64,
                           uint8_t **der, size_t *der_len)
{
    *der = (uint8_t *)blob;
    *der_len = len;
    if (!b64)
        return 0;
    int rc = b64_decode(p, blob, len, der, der_len);
    return rc == -2 ? (int32_t)0x8007000E : rc ? PFX_EC_BAD_ENCODE : 0;
}

static void blob_release(const omadm_platform_t *p, const uint8_t *blob, uint8_t *der, size_t len)
{
    if (der && der != blob) {
        OPENSSL_cleanse(der, len);
        plat_free(p, der);
    }
}

int32_t pfx_check_blob(const omadm_platform_t *p, const uint8_t *blob, size_t len, bool b64,
                       const char *password)
{
    uint8_t *der = NULL;
    size_t der_len = 0;
    int32_t ec = blob_decode(p, blob, len, b64, &der, &der_len);
    if (!ec) {
        opened_t o;
        ec = open_blob(der, der_len, password, &o);
        opened_free(&o);
    }
    blob_release(p, blob, der, der_len);
    return ec;
}

/* ---- the password's envelope (PFXCertPasswordEncryptionType 1, 2) ---- */

typedef struct find_recipient {
    CMS_ContentInfo *cms;
    char thumbs[8][CERT_THUMB_HEX + 1];
    size_t n;
} find_recipient_t;

static int match_recipient(void *ctx, const store_rec_t *rec)
{
    find_recipient_t *f = ctx;
    const unsigned char *q = rec->der;
    X509 *x = d2i_X509(NULL, &q, (long)rec->der_len);
    if (!x)
        return 0;
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(f->cms);
    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
            CMS_RecipientInfo_ktri_cert_cmp(ri, x) == 0) {
            memcpy(f->thumbs[f->n++], rec->thumb, CERT_THUMB_HEX + 1);
            break;
        }
    }
    X509_free(x);
    ERR_clear_error();
    return f->n == 8 ? 1 : 0;
}

/* The password from the envelope's content, from p (NUL-terminated; NULL
 * for want of memory): UTF-8 as it is, up to a NUL; UTF-16LE (as Windows
 * encrypts strings: a byte-order mark FF FE, or even length with a NUL byte
 * before the trailing ones, which UTF-8 text never has) converted to UTF-8,
 * up to a U+0000. */
static char *password_text(const omadm_platform_t *p, const unsigned char *d, size_t n)
{
    size_t end = n;
    while (end && !d[end - 1])
        end--;
    bool bom = n >= 2 && d[0] == 0xFF && d[1] == 0xFE;
    bool utf16 = bom || (n % 2 == 0 && memchr(d, 0, end));
    char *out = plat_alloc(p, utf16 ? n / 2 * 3 + 1 : n + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    if (!utf16) {
        memcpy(out, d, n);
        out[n] = 0;
        return out;
    }
    for (size_t i = bom ? 2 : 0; i + 1 < n; i += 2) {
        unsigned c = d[i] | (unsigned)d[i + 1] << 8;
        if (c >= 0xD800 && c < 0xDC00 && i + 3 < n) {
            unsigned lo = d[i + 2] | (unsigned)d[i + 3] << 8;
            if (lo >= 0xDC00 && lo < 0xE000) {
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            }
        }
        if (c == 0)
            break;
        if (c < 0x80) {
            out[w++] = (char)c;
        } else if (c < 0x800) {
            out[w++] = (char)(0xC0 | c >> 6);
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[w++] = (char)(0xE0 | c >> 12);
            out[w++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        } else { /* from a surrogate pair: 4 bytes for the pair's 4 */
            out[w++] = (char)(0xF0 | c >> 18);
            out[w++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[w++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[w] = 0;
    return out;
}

/* Decrypt with the certificate thumb of store and its key: the password
 * (from p) or NULL. */
static char *try_recipient(store_t *s, const char *store, const char *thumb,
                           CMS_ContentInfo *cms)
{
    const omadm_platform_t *p = store_platform(s);
    char *key_pem = store_get_key(s, store, thumb);
    store_rec_t rec;
    if (!key_pem)
        return NULL;
    char *pw = NULL;
    if (store_get(s, store, thumb, &rec) == 0) {
        const unsigned char *q = rec.der;
        X509 *x = d2i_X509(NULL, &q, (long)rec.der_len);
        BIO *kb = BIO_new_mem_buf(key_pem, -1);
        EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
        BIO *out = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len;
        if (x && key && out && CMS_decrypt(cms, key, x, NULL, out, CMS_BINARY) &&
            (len = BIO_get_mem_data(out, &data)) >= 0 && len < 4 * MAX_PARAM_LEN) {
            pw = password_text(p, (const unsigned char *)data, (size_t)len);
            OPENSSL_cleanse(data, (size_t)len);
        }
        BIO_free(out);
        BIO_free(kb);
        EVP_PKEY_free(key);
        X509_free(x);
        store_rec_free(s, &rec);
    }
    OPENSSL_cleanse(key_pem, strlen(key_pem));
    plat_free(p, key_pem);
    ERR_clear_error();
    return pw;
}

/* The store of the certificate that opens the envelope. */
static const char *envelope_store(const pfx_rec_t *r, int type)
{
    const char *name = r->val[K_ENCSTORE];
    if (type == 1) /* the MDM client certificate: My/System, as dmclient's client_cert */
        return "my-system";
    if (!strcasecmp(name, "My"))
        return my_store(r->ns);
    const store_kind_t *k = store_kind_find(name);
    return k ? k->id : NULL;
}

/* The envelope from its base64: 0 and *cms (CMS_ContentInfo_free it), or
 * the ErrorCode. */
static int32_t envelope_parse(const omadm_platform_t *p, const char *b64, size_t b64_len,
                              CMS_ContentInfo **cms)
{
    uint8_t *der = NULL;
    size_t len = 0;
    *cms = NULL;
    int rc = b64_decode(p, (const uint8_t *)b64, b64_len, &der, &len);
    if (rc)
        return rc == -2 ? (int32_t)0x8007000E : PFX_EC_BAD_DATA;
    const unsigned char *q = der;
    CMS_ContentInfo *c = len <= LONG_MAX ? d2i_CMS_ContentInfo(NULL, &q, (long)len) : NULL;
    bool whole = c && q == der + len;
    plat_free(p, der);
    if (!whole || OBJ_obj2nid(CMS_get0_type(c)) != NID_pkcs7_enveloped) {
        CMS_ContentInfo_free(c);
        ERR_clear_error();
        return PFX_EC_BAD_DATA;
    }
    *cms = c;
    return 0;
}

int32_t pfx_check_envelope(const omadm_platform_t *p, const char *b64, size_t len)
{
    CMS_ContentInfo *cms = NULL;
    int32_t ec = envelope_parse(p, b64, len, &cms);
    if (!ec) {
        /* what a lookup of the recipients walks */
        STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
        for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
            (void)CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, i));
    }
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return ec;
}

static int32_t open_envelope(struct omadm_certstore *cs, const pfx_rec_t *r, int type,
                             const char *b64, char **pw)
{
    CMS_ContentInfo *cms = NULL;
    *pw = NULL;
    int32_t ec = envelope_parse(&cs->plat, b64, strlen(b64), &cms);
    if (ec)
        return ec;
    const char *store = envelope_store(r, type);
    find_recipient_t f = {cms, {{0}}, 0};
    if (store && store_each(cs->store, store, match_recipient, &f) < 0)
        f.n = 0;
    for (size_t i = 0; i < f.n && !*pw; i++)
        *pw = try_recipient(cs->store, store, f.thumbs[i], cms);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    if (!*pw)
        cs_log(cs, OMADM_LOG_WARN, "PFX %s: no certificate in %s opens the password's envelope",
               r->id, store ? store : "(unknown store)");
    return *pw ? 0 : PFX_EC_NO_DECRYPT;
}

/* ---- installing ---- */

/* The request itself is inconsistent: the Atomic fails (docs/pfx.md). */
static const char *refusal(const pfx_rec_t *r, bool have_pw)
{
    int kl = r->val[K_KEYLOC] ? atoi(r->val[K_KEYLOC]) : 0;
    int type = r->val[K_ENCTYPE] ? atoi(r->val[K_ENCTYPE]) : 0;
    if (!kl)
        return "KeyLocation is not set";
    if (r->val[K_EXPORTABLE] && !strcmp(r->val[K_EXPORTABLE], "true") && kl != 3)
        return "PFXKeyExportable true needs KeyLocation 3";
    if (type && !have_pw)
        return "an encrypted password (PFXCertPasswordEncryptionType 1, 2) is not set";
    if (type == 2 && (!r->val[K_ENCSTORE] || !*r->val[K_ENCSTORE]))
        return "PFXCertPasswordEncryptionType 2 needs PFXCertPasswordEncryptionStore";
    return NULL;
}

static bool is_self_signed(X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

static int der_of(X509 *x, uint8_t **der, size_t *len, char thumb[CERT_THUMB_HEX + 1])
{
    unsigned char *d = NULL;
    int n = i2d_X509(x, &d);
    if (n <= 0)
        return -1;
    if (cert_thumbprint(d, (size_t)n, thumb)) {
        OPENSSL_free(d);
        return -1;
    }
    *der = d;
    *len = (size_t)n;
    return 0;
}

static bool owned(const pfx_rec_t *r, const char *store, const char *thumb)
{
    for (size_t i = 0; i < r->n_inst; i++)
        if (!strcmp(r->inst[i].store, store) && !strcmp(r->inst[i].thumb, thumb))
            return true;
    return false;
}

/* Stage one certificate; it joins inst.  0 / -1. */
static int put_cert(struct omadm_certstore *cs, const char *store, X509 *x, const char *server,
                    pfx_inst_t *inst, size_t *n_inst)
{
    uint8_t *der = NULL;
    store_rec_t rec = {0};
    if (*n_inst >= MAX_CERTS || der_of(x, &der, &rec.der_len, rec.thumb))
        return -1;
    rec.der = der;
    rec.name = rec.thumb;
    rec.server = (char *)server;
    rec.added = plat_now(&cs->plat);
    int rc = store_put(cs->store, store, &rec);
    OPENSSL_free(der);
    if (!rc) {
        snprintf(inst[*n_inst].store, sizeof inst[0].store, "%s", store);
        memcpy(inst[(*n_inst)++].thumb, rec.thumb, CERT_THUMB_HEX + 1);
    }
    return rc;
}

/* Stage the opened blob into the store in place of what r installed
 * before.  0 and r updated; the ErrorCode (nothing staged) when the key
 * cannot go where KeyLocation says; -1 store failure. */
static int stage(struct omadm_certstore *cs, pfx_rec_t *r, opened_t *o, const char *server,
                 int32_t *ec)
{
    pfx_inst_t inst[MAX_CERTS];
    size_t n_inst = 0;
    uint8_t *der = NULL;
    size_t len;
    char thumb[CERT_THUMB_HEX + 1];
    const char *my = my_store(r->ns), *ca = ca_store(r->ns);
    if (der_of(o->cert, &der, &len, thumb))
        return -1;
    OPENSSL_free(der);
    /* CA certificates the chain needs beyond the store (docs/pfx.md):
     * intermediates to CA; self-signed roots are not made trust anchors */
    int n_ca = sk_X509_num(o->ca);
    if (n_ca >= MAX_CERTS) {
        *ec = PFX_EC_BAD_ENCODE;
        return 0;
    }
    *ec = pfx_put_key(cs, my, thumb, o->key, atoi(r->val[K_KEYLOC]));
    if (*ec)
        return 0;
    if (put_cert(cs, my, o->cert, server, inst, &n_inst))
        return -1;
    for (int i = 0; i < n_ca; i++) {
        X509 *x = sk_X509_value(o->ca, i);
        char t[CERT_THUMB_HEX + 1];
        store_rec_t have;
        if (is_self_signed(x) || der_of(x, &der, &len, t))
            continue;
        OPENSSL_free(der);
        int got = store_get(cs->store, ca, t, &have);
        if (got < 0)
            return -1;
        if (got == 0)
            store_rec_free(cs->store, &have);
        if (got == 0 && !owned(r, ca, t))
            continue; /* there before: not ours to install, nor to delete */
        if (put_cert(cs, ca, x, server, inst, &n_inst))
            return -1;
    }
    if (remove_installed(cs->store, r, inst, n_inst))
        return -1;
    memcpy(r->inst, inst, sizeof inst);
    r->n_inst = n_inst;
    memcpy(r->thumb, thumb, sizeof thumb);
    r->blob = true;
    return 0;
}

/* The password the blob opens with (from cs->plat), or the ErrorCode. */
static int32_t password(struct omadm_certstore *cs, const pfx_rec_t *r, const pfx_mem_t *m,
                        char **pw)
{
    const char *raw = mem_pw(m);
    int type = r->val[K_ENCTYPE] ? atoi(r->val[K_ENCTYPE]) : 0;
    *pw = NULL;
    if (r->pw && !raw) {
        cs_log(cs, OMADM_LOG_WARN,
               "PFX %s: the password was set in an earlier process and is not kept: send it "
               "with the blob",
               r->id);
        return PFX_EC_NOT_FOUND;
    }
    if (type)
        return open_envelope(cs, r, type, raw, pw);
    *pw = plat_strdup(&cs->plat, raw ? raw : "");
    return *pw ? 0 : (int32_t)0x8007000E;
}

/* Install m's staged blob for r: 0 (r says how it went), or the status
 * that refuses the transaction. */
static int install(struct omadm_certstore *cs, pfx_rec_t *r, pfx_mem_t *m)
{
    const char *why = refusal(r, r->pw);
    if (why) {
        cs_log(cs, OMADM_LOG_WARN, "PFX %s: %s", r->id, why);
        return -400;
    }
    char *pw = NULL;
    opened_t o = {0};
    uint8_t *der = NULL;
    size_t len = 0;
    int32_t ec = blob_decode(&cs->plat, m->blob, m->blob_len, m->blob_b64, &der, &len);
    if (!ec)
        ec = password(cs, r, m, &pw);
    if (!ec)
        ec = open_blob(der, len, pw, &o);
    wipe_free(&cs->plat, pw);
    blob_release(&cs->plat, m->blob, der, len);
    int rc = 0;
    if (!ec)
        rc = stage(cs, r, &o, m->server ? m->server : "", &ec);
    opened_free(&o);
    if (rc)
        return -500;
    r->tried = true;
    r->status = status_of(ec);
    r->error = ec;
    if (ec)
        cs_log(cs, OMADM_LOG_WARN, "PFX %s: not installed (ErrorCode 0x%08lX)", r->id,
               (unsigned long)(uint32_t)ec);
    else
        cs_log(cs, OMADM_LOG_INFO, "PFX %s: certificate %s installed in %s", r->id, r->thumb,
               my_store(r->ns));
    /* the password has served: it goes (wiped at commit) */
    r->pw = false;
    return mem_set_pw(cs, m, NULL, 0) ? -500 : 0;
}

int pfx_validate(struct omadm_certstore *cs)
{
    for (pfx_mem_t *m = cs->pfx; m; m = m->next) {
        if (!m->blob)
            continue;
        pfx_rec_t r;
        int rc = load(cs, m->ns, m->id, &r);
        if (rc == -404) { /* deleted after the blob came: nothing to install */
            drop_blob(&cs->plat, m);
            continue;
        }
        if (rc)
            return rc;
        rc = install(cs, &r, m);
        if (!rc)
            rc = rec_save(cs->store, &r) ? -500 : 0;
        rec_free(&cs->plat, &r);
        drop_blob(&cs->plat, m);
        if (rc)
            return rc;
    }
    return 0;
}
