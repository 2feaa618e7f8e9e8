/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll.c - the SCEP enrollment nodes, shared by CertificateStore
 * My/SCEP and ClientCertificateInstall SCEP:
 *
 *   SCEP/{UniqueID}                       Add, Delete, Get
 *   SCEP/{UniqueID}/Install               Get (exists with {UniqueID})
 *   SCEP/{UniqueID}/Install/<parameter>   Add, Replace, Delete, Get
 *   SCEP/{UniqueID}/Install/Enroll        Exec
 *   SCEP/{UniqueID}/Status|ErrorCode|CertThumbprint|RespondentServerUrl  Get
 *
 * and the record each {UniqueID} is kept in (enroll.h).  The network part
 * of an enrollment runs later, in enroll_run.c.  docs/scep.md describes
 * every choice made here.
 */
#include "enroll.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "platform.h"
#include "state_format.h"
#include "store/cert.h"
#include "store/textbuf.h"

const enr_param_info_t enr_params[P__COUNT] = {
    [P_SERVER_URL] = {"ServerURL", NULL, false, false},
    [P_CHALLENGE] = {"Challenge", NULL, false, false},
    [P_EKU] = {"EKUMapping", NULL, false, false},
    [P_KEY_USAGE] = {"KeyUsage", NULL, true, false},
    [P_SUBJECT] = {"SubjectName", NULL, false, false},
    [P_KEY_PROTECTION] = {"KeyProtection", NULL, true, false},
    [P_RETRY_DELAY] = {"RetryDelay", NULL, true, false},
    [P_RETRY_COUNT] = {"RetryCount", NULL, true, false},
    [P_TEMPLATE] = {"TemplateName", NULL, false, false},
    [P_KEY_LENGTH] = {"KeyLength", NULL, true, false},
    [P_HASH] = {"HashAlgorithm", "HashAlgrithm", false, false},
    [P_CA_THUMB] = {"CAThumbprint", NULL, false, false},
    [P_SAN] = {"SubjectAlternativeNames", NULL, false, false},
    [P_VALID_PERIOD] = {"ValidPeriod", NULL, false, false},
    [P_VALID_UNITS] = {"ValidPeriodUnits", "ValidPeriodUnit", true, false},
    [P_CONTAINER] = {"ContainerName", NULL, false, true},
    [P_PROMPT_TEXT] = {"CustomTextToShowInPrompt", NULL, false, true},
    [P_AAD_KEYS] = {"AADKeyIdentifierList", NULL, false, true},
    [P_ATTEST] = {"AttestPrivateKey", NULL, true, true},
};

/* Most enrollments one namespace holds (an Add beyond answers 420). */
#define MAX_ENROLLMENTS 1000
/* Longest parameter value accepted (413 beyond). */
#define MAX_PARAM_LEN 4096
/* Longest {UniqueID}. */
#define MAX_ID_LEN 255

int enr_param_find(const char *name, enr_ns_t ns)
{
    for (int i = 0; i < P__COUNT; i++) {
        if (enr_params[i].cci_only && ns == ENR_CS)
            continue;
        if (!strcasecmp(name, enr_params[i].name) ||
            (enr_params[i].alias && !strcasecmp(name, enr_params[i].alias)))
            return i;
    }
    return -1;
}

const char *enr_my_store(enr_ns_t ns)
{
    return ns == ENR_CCI_USER ? "my-user" : "my-system";
}

int enr_set(const omadm_platform_t *p, char **dst, const char *src)
{
    char *copy = src ? plat_strdup(p, src) : NULL;
    if (src && !copy)
        return -1;
    if (*dst) {
        OPENSSL_cleanse(*dst, strlen(*dst));
        plat_free(p, *dst);
    }
    *dst = copy;
    return 0;
}

static void wipe_free(const omadm_platform_t *p, char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        plat_free(p, s);
    }
}

void enr_param_clear(const omadm_platform_t *p, enr_value_t *v)
{
    plat_free(p, v->name);
    plat_free(p, v->format);
    wipe_free(p, v->value);
    v->name = v->format = v->value = NULL;
}

void enr_drop_work(const omadm_platform_t *p, enrollment_t *e)
{
    char **f[] = {&e->key, &e->signer, &e->csr, &e->txid, &e->cacerts, &e->base_url};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        wipe_free(p, *f[i]);
        *f[i] = NULL;
    }
    e->cipher = e->digest = 0;
    e->post = false;
}

void enr_free(const omadm_platform_t *p, enrollment_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < P__COUNT; i++) {
        enr_param_clear(p, &e->p[i]);
        wipe_free(p, e->snap[i]);
    }
    enr_drop_work(p, e);
    plat_free(p, e->id);
    plat_free(p, e->exec_uri);
    plat_free(p, e->server);
    plat_free(p, e->respondent);
    plat_free(p, e->thumb);
    memset(e, 0, sizeof *e);
}

/* ---- the record ---- */

static const char *const ns_tags[] = {"cs", "cd", "cu"};

int enr_record_name(enr_ns_t ns, const char *id, char *buf, size_t size)
{
    /* names match case-insensitively, so the key is the lower-case id
     * (hashed a piece at a time: no copy of the whole id) */
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (buf && size)
        buf[0] = 0;
    if (!buf || size < ENR_RECORD_NAME_SIZE || !id || (int)ns < 0 || ns > ENR_CCI_USER)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (const char *c = id; ok && *c;) {
        char low[64];
        size_t k = 0;
        for (; *c && k < sizeof low; c++)
            low[k++] = (char)tolower((unsigned char)*c);
        ok = EVP_DigestUpdate(ctx, low, k);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) && md_len >= 16;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* a name without its hash would be another record's, or nobody's:
         * no name at all */
        ERR_clear_error();
        OPENSSL_cleanse(md, sizeof md);
        return -1;
    }
    memcpy(buf, "scep-", 5);
    memcpy(buf + 5, ns_tags[ns], 2);
    buf[7] = '-';
    for (unsigned i = 0; i < 16; i++) {
        buf[8 + 2 * i] = hex[md[i] >> 4];
        buf[9 + 2 * i] = hex[md[i] & 15];
    }
    buf[ENR_RECORD_NAME_SIZE - 1] = 0;
    return 0;
}

/* Tokens: printable ASCII other than space and '\' as is, every other byte
 * as \xHH; the empty string as "\-". */
static void put_token(store_buf_t *b, const char *s)
{
    if (!*s) {
        store_buf_puts(b, "\\-");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '\\')
            store_buf_putc(b, (char)*p);
        else
            store_buf_printf(b, "\\x%02x", *p);
    }
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                                                 : -1;
}

/* Decode a token in place; -1 when malformed (or it would hold a NUL). */
static int get_token(char *t)
{
    if (!strcmp(t, "\\-")) {
        *t = 0;
        return 0;
    }
    char *w = t;
    for (char *r = t; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        int hi, lo;
        if (r[1] != 'x' || (hi = hexval(r[2])) < 0 || (lo = hexval(r[3])) < 0 || !(hi | lo))
            return -1;
        *w++ = (char)(hi * 16 + lo);
        r += 3;
    }
    *w = 0;
    return 0;
}

static void put_str(store_buf_t *f, const char *key, const char *v)
{
    if (!v)
        return;
    store_buf_printf(f, "%s ", key);
    put_token(f, v);
    store_buf_putc(f, '\n');
}

/* The record's text (from p; it holds secrets: wipe it before freeing). */
static char *serialise(const omadm_platform_t *p, const enrollment_t *e, size_t *len)
{
    store_buf_t buf, *f = &buf;
    store_buf_init(f, p);
    store_buf_printf(f, ENR_WRITES "\nns %d\n", (int)e->ns);
    put_str(f, "id", e->id);
    for (int i = 0; i < P__COUNT; i++) {
        if (e->p[i].name) {
            store_buf_printf(f, "p %d ", i);
            put_token(f, e->p[i].name);
            store_buf_putc(f, ' ');
            put_token(f, e->p[i].format);
            store_buf_putc(f, ' ');
            put_token(f, e->p[i].value);
            store_buf_putc(f, '\n');
        }
        if (e->snap[i]) {
            store_buf_printf(f, "s %d ", i);
            put_token(f, e->snap[i]);
            store_buf_putc(f, '\n');
        }
    }
    store_buf_printf(f, "phase %d\nstatus %d\nerror %ld\ngen %u\nnext %lld\ntries %u\n",
                     (int)e->phase, e->status, (long)e->error, e->gen, (long long)e->next_due,
                     e->tries);
    put_str(f, "exec", e->exec_uri);
    put_str(f, "server", e->server);
    put_str(f, "key", e->key);
    put_str(f, "signer", e->signer);
    put_str(f, "csr", e->csr);
    put_str(f, "txid", e->txid);
    put_str(f, "cacerts", e->cacerts);
    put_str(f, "base", e->base_url);
    store_buf_printf(f, "algs %d %d %d\n", e->cipher, e->digest, e->post ? 1 : 0);
    put_str(f, "respondent", e->respondent);
    put_str(f, "thumb", e->thumb);
    if (e->alert)
        store_buf_printf(f, "alert %ld %u\n", (long)e->alert_data, e->alert_gen);
    store_buf_puts(f, "end\n");
    return store_buf_take(f, len);
}

static int parse_num(const char *t, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno || end == t || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* 0; -1 damaged; -2 out of memory; -3 a record of a newer format. */
static int parse(const omadm_platform_t *p, char *text, enrollment_t *e)
{
    memset(e, 0, sizeof *e);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    state_fmt_t fmt = state_format(line, ENR_FORMAT, 1, ENR_CURRENT, NULL);
    if (fmt == STATE_FMT_NEWER)
        return -3; /* a later version's enrollment: not read, never written over */
    if (fmt == STATE_FMT_DAMAGED)
        return -1;
    bool ended = false;
    while (!ended && (line = strtok_r(NULL, "\n", &save))) {
        char *tok[6];
        size_t n = 0;
        char *ls = NULL;
        for (char *t = strtok_r(line, " ", &ls); t && n < 6; t = strtok_r(NULL, " ", &ls))
            tok[n++] = t;
        for (size_t i = 1; i < n; i++)
            if (get_token(tok[i]))
                return -1;
        long long v = 0, w = 0, x = 0;
        const char *k = tok[0];
        char **str = !strcmp(k, "id")           ? &e->id
                     : !strcmp(k, "exec")       ? &e->exec_uri
                     : !strcmp(k, "server")     ? &e->server
                     : !strcmp(k, "key")        ? &e->key
                     : !strcmp(k, "signer")     ? &e->signer
                     : !strcmp(k, "csr")        ? &e->csr
                     : !strcmp(k, "txid")       ? &e->txid
                     : !strcmp(k, "cacerts")    ? &e->cacerts
                     : !strcmp(k, "base")       ? &e->base_url
                     : !strcmp(k, "respondent") ? &e->respondent
                     : !strcmp(k, "thumb")      ? &e->thumb
                                                : NULL;
        if (str) {
            if (n != 2)
                return -1;
            if (enr_set(p, str, tok[1]))
                return -2;
        } else if (!strcmp(k, "end") && n == 1) {
            ended = true;
        } else if (!strcmp(k, "ns") && n == 2 && !parse_num(tok[1], 0, 2, &v)) {
            e->ns = (enr_ns_t)v;
        } else if (!strcmp(k, "p") && n == 5 && !parse_num(tok[1], 0, P__COUNT - 1, &v)) {
            if (enr_set(p, &e->p[v].name, tok[2]) || enr_set(p, &e->p[v].format, tok[3]) ||
                enr_set(p, &e->p[v].value, tok[4]))
                return -2;
        } else if (!strcmp(k, "s") && n == 3 && !parse_num(tok[1], 0, P__COUNT - 1, &v)) {
            if (enr_set(p, &e->snap[v], tok[2]))
                return -2;
        } else if (!strcmp(k, "phase") && n == 2 && !parse_num(tok[1], 0, PH_DONE, &v)) {
            e->phase = (enr_phase_t)v;
        } else if (!strcmp(k, "status") && n == 2 && !parse_num(tok[1], 0, 1000, &v)) {
            e->status = (int)v;
        } else if (!strcmp(k, "error") && n == 2 &&
                   !parse_num(tok[1], INT32_MIN, INT32_MAX, &v)) {
            e->error = (int32_t)v;
        } else if (!strcmp(k, "gen") && n == 2 && !parse_num(tok[1], 0, UINT32_MAX, &v)) {
            e->gen = (unsigned)v;
        } else if (!strcmp(k, "next") && n == 2 &&
                   !parse_num(tok[1], INT64_MIN, INT64_MAX, &v)) {
            e->next_due = v;
        } else if (!strcmp(k, "tries") && n == 2 && !parse_num(tok[1], 0, UINT32_MAX, &v)) {
            e->tries = (unsigned)v;
        } else if (!strcmp(k, "algs") && n == 4 && !parse_num(tok[1], 0, 9, &v) &&
                   !parse_num(tok[2], 0, 9, &w) && !parse_num(tok[3], 0, 1, &x)) {
            e->cipher = (int)v;
            e->digest = (int)w;
            e->post = x == 1;
        } else if (!strcmp(k, "alert") && n == 3 &&
                   !parse_num(tok[1], INT32_MIN, INT32_MAX, &v) &&
                   !parse_num(tok[2], 0, UINT32_MAX, &w)) {
            e->alert = true;
            e->alert_data = (int32_t)v;
            e->alert_gen = (unsigned)w;
        } else {
            return -1;
        }
    }
    return ended && e->id ? 0 : -1;
}

int enr_load_named(store_t *s, const char *record, enrollment_t *e)
{
    const omadm_platform_t *p = store_platform(s);
    char *text = NULL;
    size_t len = 0;
    memset(e, 0, sizeof *e);
    int rc = store_get_state(s, record, &text, &len);
    if (rc)
        return rc < 0 ? -2 : rc; /* could not read it is not "absent", nor damaged */
    rc = strlen(text) == len ? parse(p, text, e) : -1;
    OPENSSL_cleanse(text, len);
    plat_free(p, text);
    if (rc)
        enr_free(p, e);
    return rc;
}

int enr_load(store_t *s, enr_ns_t ns, const char *id, enrollment_t *e)
{
    char name[ENR_RECORD_NAME_SIZE];
    memset(e, 0, sizeof *e);
    if (enr_record_name(ns, id, name, sizeof name))
        return -1;
    int rc = enr_load_named(s, name, e);
    if (rc == 0 && (e->ns != ns || strcasecmp(e->id, id))) {
        enr_free(store_platform(s), e);
        return -1; /* a hash collision would land here; never silently mix records */
    }
    return rc;
}

/* One state record of ours for enr_check_records. */
static void check_record(store_t *s, const char *name, enr_problem_fn fn, void *ctx,
                         unsigned *n)
{
    enrollment_t e;
    char msg[512], want[ENR_RECORD_NAME_SIZE];
    int rc = enr_load_named(s, name, &e);
    bool loaded = rc == 0;
    if (rc == 1)
        return; /* gone meanwhile */
    int w = snprintf(msg, sizeof msg, "%s/state/%s: ", store_dir(s), name);
    if (w < 0 || (size_t)w >= sizeof msg)
        w = 0;
    if (rc == -3) {
        char *text = NULL;
        size_t len = 0;
        unsigned v = 0;
        if (!store_get_state(s, name, &text, &len))
            state_format_text(text, len, ENR_FORMAT, 1, ENR_CURRENT, &v);
        if (text) {
            OPENSSL_cleanse(text, len);
            plat_free(store_platform(s), text);
        }
        snprintf(msg + w, sizeof msg - (size_t)w,
                 "enrollment record of format " ENR_FORMAT " %u, newer than this library reads "
                 "(" ENR_WRITES "); left as it is", v);
    } else if (rc == -1) {
        snprintf(msg + w, sizeof msg - (size_t)w, "enrollment record is damaged");
    } else if (rc) {
        snprintf(msg + w, sizeof msg - (size_t)w, "enrollment record cannot be read");
    } else if (enr_record_name(e.ns, e.id, want, sizeof want) || strcmp(want, name)) {
        snprintf(msg + w, sizeof msg - (size_t)w,
                 "enrollment record holds another enrollment (%s) than its name says", e.id);
        rc = -1;
    }
    if (loaded)
        enr_free(store_platform(s), &e);
    if (rc) {
        (*n)++;
        if (fn)
            fn(ctx, msg);
    }
}

typedef struct check_walk {
    store_t *s;
    enr_problem_fn fn;
    void *ctx;
    unsigned n;
} check_walk_t;

static int check_one(void *ctx, const char *name)
{
    check_walk_t *w = ctx;
    check_record(w->s, name, w->fn, w->ctx, &w->n);
    return 0;
}

int enr_check_records(store_t *s, enr_problem_fn fn, void *ctx, unsigned *problems)
{
    check_walk_t w = {s, fn, ctx, 0};
    int rc = store_each_state(s, "scep-", check_one, &w);
    *problems = w.n;
    return rc;
}

int enr_save(store_t *s, const enrollment_t *e)
{
    char name[ENR_RECORD_NAME_SIZE];
    size_t len = 0;
    if (enr_record_name(e->ns, e->id, name, sizeof name))
        return -1;
    char *text = serialise(store_platform(s), e, &len);
    if (!text)
        return -1;
    int rc = store_put_state(s, name, text, len);
    OPENSSL_cleanse(text, len);
    plat_free(store_platform(s), text);
    return rc;
}

int enr_delete(store_t *s, const enrollment_t *e)
{
    char name[ENR_RECORD_NAME_SIZE];
    if (enr_record_name(e->ns, e->id, name, sizeof name))
        return -1;
    return store_del_state(s, name);
}

/* ---- nodes ---- */

typedef enum {
    SN_NONE,
    SN_SCEP,      /* the SCEP node */
    SN_ID,        /* {UniqueID} */
    SN_INSTALL,   /* {UniqueID}/Install */
    SN_PARAM,     /* Install/<parameter> */
    SN_ENROLL,    /* Install/Enroll */
    SN_RESULT     /* Status, ErrorCode, CertThumbprint, RespondentServerUrl */
} snode_kind_t;

typedef enum { R_STATUS, R_ERROR, R_THUMB, R_RESPONDENT } result_t;

typedef struct snode {
    snode_kind_t kind;
    const char *id;
    int param;
    result_t result;
} snode_t;

static const char *result_name(enr_ns_t ns, result_t r)
{
    static const char *const names[] = {"Status", "ErrorCode", "CertThumbprint",
                                        "RespondentServerUrl"};
    /* CertificateStore's DDF spells it CertThumbPrint */
    return r == R_THUMB && ns == ENR_CS ? "CertThumbPrint" : names[r];
}

static void resolve(enr_ns_t ns, char **segs, size_t n, snode_t *out)
{
    memset(out, 0, sizeof *out);
    out->param = -1;
    if (n == 0) {
        out->kind = SN_SCEP;
        return;
    }
    out->id = segs[0];
    if (strlen(segs[0]) > MAX_ID_LEN)
        return;
    if (n == 1) {
        out->kind = SN_ID;
        return;
    }
    if (!strcasecmp(segs[1], "Install")) {
        if (n == 2) {
            out->kind = SN_INSTALL;
        } else if (n == 3 && !strcasecmp(segs[2], "Enroll")) {
            out->kind = SN_ENROLL;
        } else if (n == 3 && (out->param = enr_param_find(segs[2], ns)) >= 0) {
            out->kind = SN_PARAM;
        }
        return;
    }
    for (int r = R_STATUS; n == 2 && r <= R_RESPONDENT; r++) {
        if (!strcasecmp(segs[1], result_name(ns, (result_t)r)) ||
            (r == R_THUMB && !strcasecmp(segs[1], "CertThumbprint"))) {
            out->kind = SN_RESULT;
            out->result = (result_t)r;
        }
    }
}

/* Load the enrollment of node n: 0, -404 when absent, -500 on error. */
static int load(struct omadm_certstore *cs, enr_ns_t ns, const snode_t *n, enrollment_t *e)
{
    int rc = enr_load(cs->store, ns, n->id, e);
    return rc == 0 ? 0 : rc == 1 ? -404 : -500;
}

static int out_text(omadm_csp_out_t *out, const char *text, const char *format)
{
    omadm_value_t v = {(const uint8_t *)text, strlen(text), format, NULL};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

/* The thumbprint this enrollment reports: "" once its certificate is gone
 * from the store (deleted through My/..., say), as ClientCertificateInstall
 * documents. */
static int result_value(struct omadm_certstore *cs, const enrollment_t *e, result_t r,
                        omadm_csp_out_t *out)
{
    char num[24];
    switch (r) {
    case R_STATUS:
        snprintf(num, sizeof num, "%d", e->phase == PH_IDLE ? ST_UNKNOWN : e->status);
        return out_text(out, num, "int");
    case R_ERROR:
        snprintf(num, sizeof num, "%ld", (long)e->error);
        return out_text(out, num, "int");
    case R_RESPONDENT:
        return e->respondent ? out_text(out, e->respondent, "chr") : -404;
    case R_THUMB: {
        if (!e->thumb)
            return -404;
        store_rec_t rec;
        int rc = store_get(cs->store, enr_my_store(e->ns), e->thumb, &rec);
        if (rc < 0)
            return -500;
        if (rc == 0)
            store_rec_free(cs->store, &rec);
        return out_text(out, rc == 0 ? e->thumb : "", "chr");
    }
    }
    return -500;
}

int enroll_get(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
               omadm_csp_out_t *out)
{
    snode_t sn;
    enrollment_t e;
    resolve(ns, segs, n, &sn);
    if (sn.kind == SN_NONE)
        return -404;
    if (sn.kind == SN_SCEP)
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    int rc = load(cs, ns, &sn, &e);
    if (rc)
        return rc;
    switch (sn.kind) {
    case SN_ID:
    case SN_INSTALL:
        rc = omadm_csp_out_interior(out, NULL) ? -500 : 0;
        break;
    case SN_ENROLL:
        rc = -405; /* Exec only */
        break;
    case SN_PARAM:
        rc = e.p[sn.param].name ? out_text(out, e.p[sn.param].value, e.p[sn.param].format) : -404;
        break;
    case SN_RESULT:
        rc = result_value(cs, &e, sn.result, out);
        break;
    default:
        rc = -404;
    }
    enr_free(&cs->plat, &e);
    return rc;
}

typedef struct collect {
    struct omadm_certstore *cs;
    omadm_csp_out_t *out;
    int rc;
} collect_t;

static int list_one(void *ctx, const char *name)
{
    collect_t *c = ctx;
    enrollment_t e;
    int rc = enr_load_named(c->cs->store, name, &e);
    if (rc == 0) {
        if (omadm_csp_out_child(c->out, e.id))
            c->rc = -500;
        enr_free(&c->cs->plat, &e);
    } else if (rc < 0) {
        c->rc = -500;
    }
    return c->rc ? -1 : 0;
}

static int list_scep(struct omadm_certstore *cs, enr_ns_t ns, omadm_csp_out_t *out)
{
    char prefix[16];
    snprintf(prefix, sizeof prefix, "scep-%s-", ns_tags[ns]);
    collect_t c = {cs, out, 0};
    if (store_each_state(cs->store, prefix, list_one, &c) && !c.rc)
        c.rc = -500;
    return c.rc;
}

int enroll_list(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                omadm_csp_out_t *out)
{
    snode_t sn;
    enrollment_t e;
    resolve(ns, segs, n, &sn);
    if (sn.kind == SN_SCEP)
        return list_scep(cs, ns, out);
    if (sn.kind == SN_NONE)
        return -404;
    int rc = load(cs, ns, &sn, &e);
    if (rc)
        return rc;
    if (sn.kind == SN_ID) {
        if (omadm_csp_out_child(out, "Install") ||
            omadm_csp_out_child(out, result_name(ns, R_STATUS)) ||
            omadm_csp_out_child(out, result_name(ns, R_ERROR)) ||
            (e.thumb && omadm_csp_out_child(out, result_name(ns, R_THUMB))) ||
            (e.respondent && omadm_csp_out_child(out, result_name(ns, R_RESPONDENT))))
            rc = -500;
    } else if (sn.kind == SN_INSTALL) {
        for (int i = 0; !rc && i < P__COUNT; i++)
            if (e.p[i].name && omadm_csp_out_child(out, e.p[i].name))
                rc = -500;
        if (!rc && omadm_csp_out_child(out, "Enroll"))
            rc = -500;
    } else {
        rc = -406; /* a leaf has no children to list */
    }
    enr_free(&cs->plat, &e);
    return rc;
}

static bool running(const enrollment_t *e)
{
    return e->phase == PH_START || e->phase == PH_PENDING;
}

/* A new {UniqueID}: -420 when the namespace is full.  The store keeps
 * the count of a namespace's records as changes are staged, so this costs
 * the same for the first enrollment as for the thousandth, and for every
 * Add refused beyond. */
static int create(struct omadm_certstore *cs, enr_ns_t ns, const char *id, enrollment_t *e)
{
    char prefix[16];
    size_t count = 0;
    snprintf(prefix, sizeof prefix, "scep-%s-", ns_tags[ns]);
    if (store_count_state(cs->store, prefix, &count))
        return -500;
    if (count >= MAX_ENROLLMENTS)
        return -420;
    memset(e, 0, sizeof *e);
    e->ns = ns;
    e->status = ST_UNKNOWN;
    return enr_set(&cs->plat, &e->id, id) ? -500 : 0;
}

/* Check a parameter value as sent: formats chr and int (both, for every
 * parameter: the documents disagree on several), integers in decimal. */
static int check_value(int param, const omadm_value_t *v)
{
    if (v->format && strcmp(v->format, "chr") && strcmp(v->format, "int"))
        return -415;
    if (v->len > MAX_PARAM_LEN)
        return -413;
    if (v->len && (!v->data || memchr(v->data, 0, v->len)))
        return -400;
    /* an int parameter, or any value labelled int, must be a decimal */
    if (enr_params[param].is_int || (v->format && !strcmp(v->format, "int"))) {
        char buf[32];
        long long n;
        size_t len = v->len;
        while (len && isspace(v->data[len - 1]))
            len--;
        size_t start = 0;
        while (start < len && isspace(v->data[start]))
            start++;
        if (len - start == 0 || len - start >= sizeof buf)
            return -400;
        memcpy(buf, v->data + start, len - start);
        buf[len - start] = 0;
        if (parse_num(buf, INT64_MIN / 2, INT64_MAX / 2, &n))
            return -400;
    }
    return 0;
}

static int set_param(const omadm_platform_t *p, enrollment_t *e, int param, const char *name,
                     const omadm_value_t *v)
{
    char *text = plat_alloc(p, v->len + 1);
    if (!text)
        return -500;
    if (v->len)
        memcpy(text, v->data, v->len);
    text[v->len] = 0;
    int rc = enr_set(p, &e->p[param].name, name) ||
                     enr_set(p, &e->p[param].format, v->format ? v->format : "chr") ||
                     enr_set(p, &e->p[param].value, text)
                 ? -500
                 : 0;
    OPENSSL_cleanse(text, v->len);
    plat_free(p, text);
    return rc;
}

static int save(struct omadm_certstore *cs, const enrollment_t *e)
{
    return enr_save(cs->store, e) ? -500 : 0;
}

int enroll_add(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
               const omadm_value_t *v)
{
    snode_t sn;
    enrollment_t e;
    resolve(ns, segs, n, &sn);
    if (sn.kind == SN_NONE)
        return -404;
    if (sn.kind == SN_SCEP)
        return -418;
    int rc = load(cs, ns, &sn, &e);
    if (rc == -500)
        return rc;
    bool exists = rc == 0;
    switch (sn.kind) {
    case SN_INSTALL:
        /* Install always exists with its {UniqueID}; ClientCertificateInstall
         * documents Add for it and servers send it after the {UniqueID}:
         * accepted, creating the {UniqueID} when missing (as Add does) */
        if (exists)
            break;
        rc = create(cs, ns, sn.id, &e);
        if (!rc)
            rc = save(cs, &e);
        break;
    case SN_ID:
        if (exists) {
            rc = -418;
            break;
        }
        rc = create(cs, ns, sn.id, &e);
        if (!rc)
            rc = save(cs, &e);
        break;
    case SN_PARAM:
        rc = check_value(sn.param, v);
        if (rc)
            break;
        if (exists && e.p[sn.param].name) {
            rc = -418;
            break;
        }
        /* Add creates the missing parent ({UniqueID}), as Add does */
        if (!exists)
            rc = create(cs, ns, sn.id, &e);
        if (!rc)
            rc = set_param(&cs->plat, &e, sn.param, segs[2], v);
        if (!rc)
            rc = save(cs, &e);
        break;
    default:
        rc = exists ? -405 : -404;
    }
    enr_free(&cs->plat, &e);
    return rc;
}

/* A change to an existing node below the SCEP node (Replace, Delete,
 * Exec): resolve it and load its enrollment.  0, or the status. */
static int existing(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n, snode_t *sn,
                    enrollment_t *e)
{
    resolve(ns, segs, n, sn);
    if (sn->kind == SN_NONE)
        return -404;
    if (sn->kind == SN_SCEP)
        return -405;
    return load(cs, ns, sn, e);
}

int enroll_replace(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                   const omadm_value_t *v)
{
    snode_t sn;
    enrollment_t e;
    int rc = existing(cs, ns, segs, n, &sn, &e);
    if (rc)
        return rc;
    if (sn.kind != SN_PARAM) {
        rc = -405;
    } else if (!e.p[sn.param].name) {
        rc = -404; /* Replace is for nodes that exist */
    } else if (!(rc = check_value(sn.param, v))) {
        /* a running enrollment works on its snapshot: this changes only
         * what the next Exec uses */
        char *keep = plat_strdup(&cs->plat, e.p[sn.param].name);
        rc = keep ? set_param(&cs->plat, &e, sn.param, keep, v) : -500;
        plat_free(&cs->plat, keep);
        if (!rc)
            rc = save(cs, &e);
    }
    enr_free(&cs->plat, &e);
    return rc;
}

/* Remove the certificate (and key) an enrollment installed, if it is still
 * the one in the store. */
static int remove_cert(struct omadm_certstore *cs, const enrollment_t *e)
{
    store_rec_t rec;
    if (!e->thumb)
        return 0;
    int rc = store_get(cs->store, enr_my_store(e->ns), e->thumb, &rec);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return 0;
    store_rec_free(cs->store, &rec);
    return store_del(cs->store, enr_my_store(e->ns), e->thumb);
}

int enroll_del(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n)
{
    snode_t sn;
    enrollment_t e;
    int rc = existing(cs, ns, segs, n, &sn, &e);
    if (rc)
        return rc;
    switch (sn.kind) {
    case SN_ID:
        /* cancels a running enrollment (its record, key and transaction go)
         * and removes what it installed */
        rc = remove_cert(cs, &e) || enr_delete(cs->store, &e) ? -500 : 0;
        if (!rc && running(&e))
            cs_log(cs, OMADM_LOG_INFO, "enrollment %s cancelled", e.id);
        break;
    case SN_PARAM:
        if (!e.p[sn.param].name) {
            rc = -404;
            break;
        }
        enr_param_clear(&cs->plat, &e.p[sn.param]);
        rc = save(cs, &e);
        break;
    default:
        rc = -405;
    }
    enr_free(&cs->plat, &e);
    return rc;
}

int enroll_exec(struct omadm_certstore *cs, enr_ns_t ns, char **segs, size_t n,
                const omadm_csp_req_t *req)
{
    snode_t sn;
    enrollment_t e;
    int rc = existing(cs, ns, segs, n, &sn, &e);
    if (rc)
        return rc;
    if (sn.kind != SN_ENROLL) {
        enr_free(&cs->plat, &e);
        return -405;
    }
    if (running(&e)) {
        /* one enrollment at a time per {UniqueID}: the running one goes on
         * untouched (Delete the {UniqueID} to cancel it) */
        enr_free(&cs->plat, &e);
        return -405;
    }
    /* the snapshot: later changes to Install parameters do not touch this run */
    for (int i = 0; i < P__COUNT; i++)
        if (enr_set(&cs->plat, &e.snap[i], e.p[i].name ? e.p[i].value : NULL))
            rc = -500;
    /* the Challenge is single-use: it goes once the Exec is accepted */
    enr_param_clear(&cs->plat, &e.p[P_CHALLENGE]);
    enr_drop_work(&cs->plat, &e);
    e.gen++;
    e.tries = 0;
    e.error = 0;
    e.status = ST_UNKNOWN;
    e.phase = PH_START;
    e.next_due = 0; /* at once */
    e.alert = false;
    if (!rc && (enr_set(&cs->plat, &e.exec_uri, req->uri) ||
                enr_set(&cs->plat, &e.server, req->server_id) ||
                enr_set(&cs->plat, &e.respondent, NULL)))
        rc = -500;
    /* Parameter problems are judged now and reported the way CA failures
     * are (Status 16 + ErrorCode), so the server reads the reason with its
     * next Get: a failing Exec would roll back its Atomic, reason and all. */
    enr_job_t job;
    const char *why = NULL;
    int32_t ec = rc ? 0 : enr_check(&e, &job, &why);
    /* KeyProtection 1 on a device without a TPM fails now; with one
     * configured, the enrollment finds out whether it answers when it
     * makes the key (enroll_run.c choose_store) */
    if (!rc && !ec && job.key_protection == 1 && !cs->tpm_tcti) {
        ec = EC_NO_TPM;
        why = "KeyProtection 1 requires a TPM and none is configured";
    }
    if (ec) {
        cs_log(cs, OMADM_LOG_WARN, "enrollment %s: %s", e.id, why);
        e.phase = PH_DONE;
        e.status = ST_FAILED;
        e.error = ec;
        e.alert = true;
        e.alert_data = ec;
        e.alert_gen = e.gen;
    }
    if (!rc)
        rc = save(cs, &e);
    enr_free(&cs->plat, &e);
    return rc;
}
