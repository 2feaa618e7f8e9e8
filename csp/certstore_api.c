/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certstore_api.c - what a host reads from the certificate store through
 * the public API (omadm_certstore.h): the stores, their certificates, PEM
 * and DER exports, the paths other software verifies with, client
 * certificates with their keys for TLS, and the store check.
 *
 * Everything handed to the host is allocated here, with the store's
 * platform allocator, behind a small header that records its size and
 * allocator, so that omadm_certstore_buffer_free() can wipe it and free it
 * without the store (which may be closed by then).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "certstore_internal.h"
#include "enroll.h"
#include "pfx.h"
#include "wstep.h"
#include "platform.h"
#include "store/cert.h"
#include "store/store.h"

/* ---- buffers handed to the host ---- */

typedef union out_hdr {
    struct {
        size_t size;                          /* bytes after the header */
        void (*free)(void *ctx, void *ptr);   /* the allocator that made it */
        void *ctx;
    } h;
    max_align_t align;
} out_hdr_t;

static void *out_alloc(const struct omadm_certstore *cs, size_t size)
{
    if (size > SIZE_MAX - sizeof(out_hdr_t))
        return NULL;
    out_hdr_t *h = plat_alloc(&cs->plat, sizeof *h + size);
    if (!h)
        return NULL;
    h->h.size = size;
    h->h.free = cs->plat.free;
    h->h.ctx = cs->plat.ctx;
    return h + 1;
}

/* len bytes and a NUL, as a host buffer. */
static char *out_text(const struct omadm_certstore *cs, const char *text, size_t len)
{
    char *p = len < SIZE_MAX ? out_alloc(cs, len + 1) : NULL;
    if (p) {
        memcpy(p, text, len);
        p[len] = 0;
    }
    return p;
}

void omadm_certstore_buffer_free(void *buf)
{
    if (!buf)
        return;
    out_hdr_t *h = (out_hdr_t *)buf - 1;
    void (*release)(void *ctx, void *ptr) = h->h.free;
    void *ctx = h->h.ctx;
    OPENSSL_cleanse(buf, h->h.size);
    OPENSSL_cleanse(h, sizeof *h);
    release(ctx, h);
}

/* ---- what the store's internals hand us ---- */

/* store_get_key's PEM (from the store's platform table, store.h): wiped,
 * freed. */
static void key_release(struct omadm_certstore *cs, char *pem)
{
    if (pem) {
        OPENSSL_cleanse(pem, strlen(pem));
        plat_free(&cs->plat, pem);
    }
}

static bool has_key(struct omadm_certstore *cs, const char *store, const char *thumb)
{
    char *key = store_get_key(cs->store, store, thumb);
    key_release(cs, key);
    return key != NULL;
}

/* A store by name: OMADM_OK and *out, or OMADM_E_NOT_FOUND. */
static omadm_error_t find_store(const char *name, const store_kind_t **out)
{
    *out = store_kind_find(name);
    return *out ? OMADM_OK : OMADM_E_NOT_FOUND;
}

/* ---- the stores ---- */

static void kind_out(const store_kind_t *k, omadm_certstore_kind_t *out)
{
    out->id = k->id;
    out->label = k->label;
    out->trust = k->trust ? 1 : 0;
}

omadm_error_t omadm_certstore_kind(size_t index, omadm_certstore_kind_t *out)
{
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    if (!out)
        return OMADM_E_INVALID_ARG;
    if (index >= n)
        return OMADM_E_NOT_FOUND;
    kind_out(&k[index], out);
    return OMADM_OK;
}

omadm_error_t omadm_certstore_kind_find(const char *name, omadm_certstore_kind_t *out)
{
    const store_kind_t *k;
    if (!name)
        return OMADM_E_INVALID_ARG;
    if (find_store(name, &k))
        return OMADM_E_NOT_FOUND;
    if (out)
        kind_out(k, out);
    return OMADM_OK;
}

omadm_error_t omadm_certstore_thumbprint_parse(const char *text,
                                               char out[OMADM_THUMBPRINT_LEN + 1])
{
    static const char prefix[] = "sha1 fingerprint=";   /* a whole `openssl x509 -fingerprint` line */
    char hex[CERT_THUMB_HEX + 1];
    size_t n = 0;
    if (!text || !out)
        return OMADM_E_INVALID_ARG;
    if (!strncasecmp(text, prefix, sizeof prefix - 1))
        text += sizeof prefix - 1;
    for (; *text; text++) {
        if (*text == ' ' || *text == ':')
            continue;
        if (n == CERT_THUMB_HEX)
            return OMADM_E_INVALID_ARG;
        hex[n++] = *text;
    }
    hex[n] = 0;
    return cert_thumb_normalise(hex, out) ? OMADM_OK : OMADM_E_INVALID_ARG;
}

const char *omadm_certstore_dir(const omadm_certstore_t *cs)
{
    return cs ? store_dir(cs->store) : NULL;
}

/* ---- certificates ---- */

typedef struct walk {
    struct omadm_certstore *cs;
    const store_kind_t *kind;
    omadm_cert_fn fn;
    omadm_cert_skipped_fn skipped; /* NULL: skip unreadable records silently */
    void *ctx;
    bool stopped;       /* fn asked to stop */
    bool reporting;     /* omadm_certstore_list_checked: records skipped are counted */
    unsigned n_skipped;
} walk_t;

/* A record of the walk's store that cannot be read (its file name in the
 * store's record directory, and why) to the host. */
static void skip(walk_t *w, const char *name, const char *why)
{
    char p[4096];
    w->n_skipped++;
    if (!w->skipped)
        return;
    if (snprintf(p, sizeof p, "%s/certs/%s/%s", store_dir(w->cs->store), w->kind->id, name) >=
        (int)sizeof p)
        snprintf(p, sizeof p, "certs/%s/%s", w->kind->id, name); /* too long: the part that tells */
    omadm_cert_skipped_t info = {
        .store = w->kind->id,
        .store_label = w->kind->label,
        .path = p,
        .reason = why,
    };
    w->skipped(w->ctx, &info);
}

/* One record to fn.  Returns fn's answer; 0 for a record that is not a
 * certificate (skipped: omadm_certstore_check reports it). */
static int report(walk_t *w, const store_rec_t *rec)
{
    cert_info_t parsed = {0};
    const cert_info_t *ci = rec->info; /* kept in the record since it was stored */
    if (!ci) {
        /* a record from before records kept it */
        if (cert_info_from_der(&w->cs->plat, rec->der, rec->der_len, &parsed)) {
            if (w->reporting)
                skip(w, rec->thumb, "does not hold a certificate");
            return 0;
        }
        ci = &parsed;
    }
    omadm_cert_info_t info = {
        .store = w->kind->id,
        .store_label = w->kind->label,
        .name = rec->thumb, /* the node name the tree lists (not the spelling the server used) */
        .subject = ci->issued_to,
        .issuer = ci->issued_by,
        .valid_from = ci->valid_from,
        .valid_to = ci->valid_to,
        .template_name = ci->template_name ? ci->template_name : "",
        .installed_by = rec->server ? rec->server : "",
        .installed_at = rec->added,
        .has_key = has_key(w->cs, w->kind->id, rec->thumb),
    };
    memcpy(info.thumbprint, rec->thumb, sizeof info.thumbprint);
    int rc = w->fn(w->ctx, &info);
    cert_info_free(&w->cs->plat, &parsed);
    if (rc)
        w->stopped = true;
    return rc;
}

static int each_rec(void *ctx, const store_rec_t *rec)
{
    return report(ctx, rec) ? 1 : 0;
}

static int each_skipped(void *ctx, const char *name, const char *why)
{
    skip(ctx, name, why);
    return 0;
}

/* omadm_certstore_list (reporting: _checked). */
static omadm_error_t list(omadm_certstore_t *cs, const char *store, omadm_cert_fn fn,
                          omadm_cert_skipped_fn skipped, bool reporting, void *ctx)
{
    const store_kind_t *only = NULL;
    if (!cs || !fn)
        return OMADM_E_INVALID_ARG;
    if (store && find_store(store, &only))
        return OMADM_E_NOT_FOUND;
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    walk_t w = {.cs = cs, .fn = fn, .skipped = skipped, .ctx = ctx, .reporting = reporting};
    for (size_t i = 0; i < n && !w.stopped; i++) {
        if (only && only != &k[i])
            continue;
        w.kind = &k[i];
        if (store_each_report(cs->store, k[i].id, each_rec, reporting ? each_skipped : NULL,
                              &w) &&
            !w.stopped)
            return OMADM_E_STORAGE;
    }
    return w.n_skipped ? OMADM_E_CORRUPT : OMADM_OK;
}

omadm_error_t omadm_certstore_list(omadm_certstore_t *cs, const char *store, omadm_cert_fn fn,
                                   void *ctx)
{
    return list(cs, store, fn, NULL, false, ctx);
}

omadm_error_t omadm_certstore_list_checked(omadm_certstore_t *cs, const char *store,
                                           omadm_cert_fn fn, omadm_cert_skipped_fn skipped,
                                           void *ctx)
{
    return list(cs, store, fn, skipped, true, ctx);
}

omadm_error_t omadm_certstore_show(omadm_certstore_t *cs, const char *store,
                                   const char *thumbprint, omadm_cert_fn fn, void *ctx)
{
    const store_kind_t *only = NULL;
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (!cs || !fn || omadm_certstore_thumbprint_parse(thumbprint, thumb))
        return OMADM_E_INVALID_ARG;
    if (store && find_store(store, &only))
        return OMADM_E_NOT_FOUND;
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    walk_t w = {.cs = cs, .fn = fn, .ctx = ctx};
    bool found = false;
    for (size_t i = 0; i < n && !w.stopped; i++) {
        if (only && only != &k[i])
            continue;
        store_rec_t rec;
        int rc = store_get(cs->store, k[i].id, thumb, &rec);
        if (rc < 0)
            return OMADM_E_STORAGE;
        if (rc > 0)
            continue;
        found = true;
        w.kind = &k[i];
        report(&w, &rec);
        store_rec_free(cs->store, &rec);
    }
    return found ? OMADM_OK : OMADM_E_NOT_FOUND;
}

/* The record of thumb in store (NULL: the first store holding it) into
 * *rec (store_rec_free) and its store into *kind. */
static omadm_error_t find_rec(struct omadm_certstore *cs, const char *store, const char *thumb,
                              store_rec_t *rec, const store_kind_t **kind)
{
    const store_kind_t *only = NULL;
    if (store && find_store(store, &only))
        return OMADM_E_NOT_FOUND;
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    for (size_t i = 0; i < n; i++) {
        if (only && only != &k[i])
            continue;
        int rc = store_get(cs->store, k[i].id, thumb, rec);
        if (rc < 0)
            return OMADM_E_STORAGE;
        if (rc == 0) {
            *kind = &k[i];
            return OMADM_OK;
        }
    }
    return OMADM_E_NOT_FOUND;
}

/* PEM of DER as a host buffer. */
static omadm_error_t pem_out(struct omadm_certstore *cs, const uint8_t *der, size_t der_len,
                             char **out, size_t *len)
{
    size_t pem_len = 0;
    char *pem = cert_pem(&cs->plat, der, der_len, &pem_len);
    if (!pem)
        return OMADM_E_NOMEM;
    *out = out_text(cs, pem, pem_len);
    plat_free(&cs->plat, pem);
    if (!*out)
        return OMADM_E_NOMEM;
    *len = pem_len;
    return OMADM_OK;
}

omadm_error_t omadm_certstore_export_cert(omadm_certstore_t *cs, const char *store,
                                          const char *thumbprint, omadm_cert_format_t format,
                                          uint8_t **out, size_t *len)
{
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (out)
        *out = NULL;
    if (!cs || !out || !len || (format != OMADM_CERT_PEM && format != OMADM_CERT_DER) ||
        omadm_certstore_thumbprint_parse(thumbprint, thumb))
        return OMADM_E_INVALID_ARG;
    store_rec_t rec;
    const store_kind_t *kind;
    omadm_error_t err = find_rec(cs, store, thumb, &rec, &kind);
    if (err)
        return err;
    if (format == OMADM_CERT_PEM) {
        err = pem_out(cs, rec.der, rec.der_len, (char **)out, len);
    } else if ((*out = out_alloc(cs, rec.der_len))) {
        memcpy(*out, rec.der, rec.der_len);
        *len = rec.der_len;
    } else {
        err = OMADM_E_NOMEM;
    }
    store_rec_free(cs->store, &rec);
    return err;
}

/* A growing text in the store's memory. */
typedef struct text {
    struct omadm_certstore *cs;
    char *data;
    size_t len, cap;
    bool failed;
} text_t;

static int append_pem(void *ctx, const store_rec_t *rec)
{
    text_t *t = ctx;
    size_t pem_len = 0;
    char *pem = cert_pem(&t->cs->plat, rec->der, rec->der_len, &pem_len);
    if (!pem || pem_len > SIZE_MAX / 2 - t->len) {
        plat_free(&t->cs->plat, pem);
        t->failed = true;
        return 1;
    }
    if (t->len + pem_len > t->cap) {
        size_t cap = (t->len + pem_len) * 2;
        char *d = plat_realloc(&t->cs->plat, t->data, cap);
        if (!d) {
            plat_free(&t->cs->plat, pem);
            t->failed = true;
            return 1;
        }
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, pem, pem_len);
    t->len += pem_len;
    plat_free(&t->cs->plat, pem);
    return 0;
}

omadm_error_t omadm_certstore_export_store(omadm_certstore_t *cs, const char *store, char **pem,
                                           size_t *len)
{
    const store_kind_t *k;
    if (pem)
        *pem = NULL;
    if (!cs || !store || !pem || !len)
        return OMADM_E_INVALID_ARG;
    if (find_store(store, &k))
        return OMADM_E_NOT_FOUND;
    text_t t = {.cs = cs};
    int rc = store_each(cs->store, k->id, append_pem, &t);
    omadm_error_t err = t.failed ? OMADM_E_NOMEM : rc ? OMADM_E_STORAGE : OMADM_OK;
    if (!err && !(*pem = out_text(cs, t.data ? t.data : "", t.len)))
        err = OMADM_E_NOMEM;
    if (!err)
        *len = t.len;
    plat_free(&cs->plat, t.data);
    return err;
}

/* ---- paths for other software ---- */

static omadm_error_t trust_path(omadm_certstore_t *cs, const char *store, char *buf, size_t size,
                                int (*path)(const store_t *, const char *, char *, size_t))
{
    const store_kind_t *k;
    if (!cs || !store || !buf || !size)
        return OMADM_E_INVALID_ARG;
    if (find_store(store, &k))
        return OMADM_E_NOT_FOUND;
    if (!k->trust)
        return OMADM_E_INVALID_ARG;
    if (path(cs->store, k->id, buf, size)) {
        buf[0] = 0;
        return OMADM_E_TOO_LARGE;
    }
    return OMADM_OK;
}

omadm_error_t omadm_certstore_capath(omadm_certstore_t *cs, const char *store, char *buf,
                                     size_t size)
{
    return trust_path(cs, store, buf, size, store_capath);
}

omadm_error_t omadm_certstore_bundle(omadm_certstore_t *cs, const char *store, char *buf,
                                     size_t size)
{
    return trust_path(cs, store, buf, size, store_bundle);
}

/* ---- client certificates with their keys ---- */

static void identity_clear(omadm_cert_identity_t *id)
{
    omadm_certstore_buffer_free(id->cert_pem);
    omadm_certstore_buffer_free(id->key_pem);
    memset(id, 0, sizeof *id);
}

/* Certificate and key of thumb (normalised) in store k. */
static omadm_error_t identity_in(struct omadm_certstore *cs, const store_kind_t *k,
                                 const char *thumb, omadm_cert_identity_t *out)
{
    store_rec_t rec;
    int rc = store_get(cs->store, k->id, thumb, &rec);
    if (rc)
        return rc < 0 ? OMADM_E_STORAGE : OMADM_E_NOT_FOUND;
    omadm_error_t err = pem_out(cs, rec.der, rec.der_len, &out->cert_pem, &out->cert_pem_len);
    store_rec_free(cs->store, &rec);
    if (err)
        return err;
    char *key = store_get_key(cs->store, k->id, thumb);
    if (!key) {
        identity_clear(out);
        return OMADM_E_NO_KEY;
    }
    out->key_pem_len = strlen(key);
    out->key_pem = out_text(cs, key, out->key_pem_len);
    key_release(cs, key);
    if (!out->key_pem) {
        identity_clear(out);
        return OMADM_E_NOMEM;
    }
    out->store = k->id;
    memcpy(out->thumbprint, thumb, sizeof out->thumbprint);
    return OMADM_OK;
}

omadm_error_t omadm_certstore_identity(omadm_certstore_t *cs, const char *store,
                                       const char *thumbprint, omadm_cert_identity_t *out)
{
    static const char *const my_stores[] = {"my-system", "my-user"};
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (out)
        memset(out, 0, sizeof *out);
    if (!cs || !out || omadm_certstore_thumbprint_parse(thumbprint, thumb))
        return OMADM_E_INVALID_ARG;
    const store_kind_t *k;
    if (store)
        return find_store(store, &k) ? OMADM_E_NOT_FOUND : identity_in(cs, k, thumb, out);
    omadm_error_t err = OMADM_E_NOT_FOUND;
    for (size_t i = 0; i < 2 && err == OMADM_E_NOT_FOUND; i++)
        if (!find_store(my_stores[i], &k))
            err = identity_in(cs, k, thumb, out);
    return err;
}

omadm_error_t omadm_certstore_enrollment_identity(omadm_certstore_t *cs, omadm_enroll_ns_t ns,
                                                  const char *enrollment_id,
                                                  omadm_cert_identity_t *out)
{
    static const enr_ns_t map[] = {
        [OMADM_ENROLL_CERTSTORE] = ENR_CS,
        [OMADM_ENROLL_DEVICE] = ENR_CCI_DEVICE,
        [OMADM_ENROLL_USER] = ENR_CCI_USER,
    };
    if (out)
        memset(out, 0, sizeof *out);
    if (!cs || !enrollment_id || !out || (unsigned)ns >= sizeof map / sizeof map[0])
        return OMADM_E_INVALID_ARG;
    enrollment_t e;
    int rc = enr_load(cs->store, map[ns], enrollment_id, &e);
    if (rc)
        return rc > 0 ? OMADM_E_NOT_FOUND : rc == -3 ? OMADM_E_NEWER_FORMAT : OMADM_E_CORRUPT;
    const store_kind_t *k = store_kind_find(enr_my_store(map[ns]));
    omadm_error_t err = !e.thumb ? OMADM_E_NOT_FOUND
                        : !k     ? OMADM_E_INTERNAL
                                 : identity_in(cs, k, e.thumb, out);
    enr_free(&cs->plat, &e);
    return err;
}

const char *omadm_certstore_blocked(omadm_certstore_t *cs, omadm_error_t *err)
{
    const char *why = NULL;
    int rc = cs ? store_blocked_why(cs->store, &why) : 0;
    if (err)
        *err = rc == 1 ? OMADM_E_NEWER_FORMAT : rc ? OMADM_E_STORAGE : OMADM_OK;
    return rc ? why : NULL;
}

/* ---- the check ---- */

omadm_error_t omadm_certstore_check(omadm_certstore_t *cs, unsigned flags, omadm_problem_fn fn,
                                    void *ctx, unsigned *problems)
{
    if (problems)
        *problems = 0;
    if (!cs || (flags & ~(OMADM_CERTSTORE_CHECK_REPAIR | OMADM_CERTSTORE_CHECK_REPORT_REPAIRS)))
        return OMADM_E_INVALID_ARG;
    unsigned sf = (flags & OMADM_CERTSTORE_CHECK_REPAIR ? STORE_CHECK_REPAIR : 0) |
                  (flags & OMADM_CERTSTORE_CHECK_REPORT_REPAIRS ? STORE_CHECK_SAY_REPAIRS : 0);
    int n = store_check(cs->store, sf, fn, ctx);
    /* the enrollment records are ours, not the store's: it checks only
     * their names */
    unsigned bad = 0;
    if (enr_check_records(cs->store, fn, ctx, &bad)) {
        bad++;
        if (fn)
            fn(ctx, store_blocked(cs->store) ? "the enrollment records cannot be read until the "
                                               "journal is applied"
                                             : "the enrollment records cannot be listed");
    }
    n += (int)bad;
    bad = 0;
    if (pfx_check_records(cs->store, fn, ctx, &bad)) {
        bad++;
        if (fn)
            fn(ctx, "the PFX install records cannot be listed");
    }
    n += (int)bad;
    bad = 0;
    wstep_check_record(cs->store, fn, ctx, &bad);
    n += (int)bad;
    if (problems)
        *problems = n > 0 ? (unsigned)n : 0;
    return n ? OMADM_E_CORRUPT : OMADM_OK;
}
