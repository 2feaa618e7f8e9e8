/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certificatestore.c - the CertificateStore and RootCATrustedCertificates
 * CSPs: node paths to store records.
 *
 *   CertificateStore/{Root|CA}/{CertHash}/...        same store as .../System
 *   CertificateStore/{Root|CA}/System/{CertHash}/...
 *   CertificateStore/My/{User|System}/{CertHash}/...
 *   RootCATrustedCertificates/{Root|CA|TrustedPublisher|TrustedPeople|
 *                              UntrustedCertificates}/{CertHash}/...
 *   {CertHash}/EncodedCertificate  Add, Get, Replace (b64 DER)
 *   {CertHash}/IssuedBy|IssuedTo|ValidFrom|ValidTo|TemplateName  Get
 *   CertificateStore/My/SCEP/..., ClientCertificateInstall/SCEP/...  enroll.c
 *   ClientCertificateInstall/PFXCertInstall/...  pfx.c
 *   CertificateStore/My/WSTEP/...  wstep.c
 * Names match case-insensitively; a certificate is listed under its
 * thumbprint in upper case (as Windows lists it), whatever spelling the
 * server gave it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "certstore_internal.h"
#include "crypto.h"
#include "pfx.h"
#include "keystore_tpm.h"
#include "platform.h"
#include "store/cert.h"
#include "store/store.h"
#include "wstep.h"

typedef enum {
    N_NONE,    /* no such node */
    N_ROOT,    /* the CSP root */
    N_GROUP,   /* CertificateStore Root/CA (System + certificates), My (User/System) */
    N_STORE,   /* a store: children are certificates */
    N_CERT,    /* {CertHash} */
    N_LEAF,    /* a leaf of a certificate */
    N_SCEP,    /* at or below a SCEP node: enroll.c */
    N_PFX,     /* at or below ClientCertificateInstall/PFXCertInstall: pfx.c */
    N_WSTEP    /* at or below CertificateStore/My/WSTEP: wstep.c */
} node_kind_t;

typedef enum { L_ENCODED, L_ISSUED_BY, L_ISSUED_TO, L_VALID_FROM, L_VALID_TO, L_TEMPLATE } leaf_t;

static const char *const leaf_names[] = {"EncodedCertificate", "IssuedBy", "IssuedTo",
                                         "ValidFrom", "ValidTo", "TemplateName"};

typedef struct node {
    node_kind_t kind;
    const char *store;        /* store id for GROUP (Root/CA), STORE, CERT, LEAF */
    bool my_group;            /* the My group */
    const char *name;         /* CERT/LEAF: the {CertHash} segment as sent */
    leaf_t leaf;
    enr_ns_t ns;              /* SCEP: which enrollments */
    pfx_ns_t pfx_ns;          /* PFX: device or user */
    char **segs;              /* SCEP, PFX, WSTEP: the segments below the SCEP /
                                 PFXCertInstall / WSTEP node */
    size_t n_segs;
} node_t;

typedef struct flavour {
    bool rca;                 /* RootCATrustedCertificates */
    bool cci;                 /* ClientCertificateInstall */
    bool user;                /* ./User/... scope */
} flavour_t;

#define MAX_SEGS 6

static size_t split(char *path, char **segs)
{
    size_t n = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s && n < MAX_SEGS; s = strtok_r(NULL, "/", &save))
        segs[n++] = s;
    return strtok_r(NULL, "/", &save) ? MAX_SEGS + 1 : n;
}

/* By the last segment of the base the request came in on (bases[]). */
static flavour_t flavour_of(const omadm_csp_req_t *req)
{
    const char *last = strrchr(req->base, '/');
    last = last ? last + 1 : req->base;
    flavour_t f = {false, false, false};
    f.rca = !strcasecmp(last, "RootCATrustedCertificates");
    f.cci = !strcasecmp(last, "ClientCertificateInstall");
    f.user = !strncasecmp(req->base, "./User/", 7);
    return f;
}

/* {CertHash} or {CertHash}/<leaf> below a store. */
static void cert_part(node_t *n, const char *store, char **segs, size_t n_segs)
{
    n->store = store;
    n->name = segs[0];
    if (n_segs == 1) {
        n->kind = N_CERT;
        return;
    }
    for (int i = 0; n_segs == 2 && i < 6; i++) {
        if (!strcasecmp(segs[1], leaf_names[i])) {
            n->kind = N_LEAF;
            n->leaf = (leaf_t)i;
            return;
        }
    }
    n->kind = N_NONE;
}

static void resolve_rca(const flavour_t *f, char **segs, size_t n, node_t *out)
{
    static const struct {
        const char *name;
        const char *device, *user;
    } stores[] = {
        {"Root", "root", NULL},
        {"CA", "ca", "user-ca"},
        {"TrustedPublisher", "trustedpublisher", "user-trustedpublisher"},
        {"TrustedPeople", "trustedpeople", "user-trustedpeople"},
        {"UntrustedCertificates", "untrusted", "user-untrusted"},
    };
    if (n == 0) {
        out->kind = N_ROOT;
        return;
    }
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        const char *id = f->user ? stores[i].user : stores[i].device;
        if (strcasecmp(segs[0], stores[i].name) || !id)
            continue;
        if (n == 1) {
            out->kind = N_STORE;
            out->store = id;
        } else {
            cert_part(out, id, segs + 1, n - 1);
        }
        return;
    }
}

static void scep_part(node_t *out, enr_ns_t ns, char **segs, size_t n)
{
    out->kind = N_SCEP;
    out->ns = ns;
    out->segs = segs;
    out->n_segs = n;
}

static void resolve_cci(const flavour_t *f, char **segs, size_t n, node_t *out)
{
    if (n == 0)
        out->kind = N_ROOT;
    else if (!strcasecmp(segs[0], "SCEP"))
        scep_part(out, f->user ? ENR_CCI_USER : ENR_CCI_DEVICE, segs + 1, n - 1);
    else if (!strcasecmp(segs[0], "PFXCertInstall")) {
        out->kind = N_PFX;
        out->pfx_ns = f->user ? PFX_USER : PFX_DEVICE;
        out->segs = segs + 1;
        out->n_segs = n - 1;
    }
}

static void resolve_cs(char **segs, size_t n, node_t *out)
{
    if (n == 0) {
        out->kind = N_ROOT;
        return;
    }
    const char *store = !strcasecmp(segs[0], "Root") ? "root"
                        : !strcasecmp(segs[0], "CA") ? "ca"
                                                     : NULL;
    if (store) {
        if (n == 1) {
            out->kind = N_GROUP;
            out->store = store;
        } else if (!strcasecmp(segs[1], "System") && n == 2) {
            out->kind = N_STORE;
            out->store = store;
        } else if (!strcasecmp(segs[1], "System")) {
            cert_part(out, store, segs + 2, n - 2);
        } else {
            cert_part(out, store, segs + 1, n - 1);
        }
        return;
    }
    if (strcasecmp(segs[0], "My"))
        return;
    if (n == 1) {
        out->kind = N_GROUP;
        out->my_group = true;
        return;
    }
    if (!strcasecmp(segs[1], "SCEP")) {
        scep_part(out, ENR_CS, segs + 2, n - 2);
        return;
    }
    if (!strcasecmp(segs[1], "WSTEP")) {
        out->kind = N_WSTEP;
        out->segs = segs + 2;
        out->n_segs = n - 2;
        return;
    }
    store = !strcasecmp(segs[1], "User") ? "my-user" : !strcasecmp(segs[1], "System") ? "my-system"
                                                                                       : NULL;
    if (!store)
        return;
    if (n == 2) {
        out->kind = N_STORE;
        out->store = store;
    } else {
        cert_part(out, store, segs + 2, n - 2);
    }
}

/* Resolve req->path; buf holds the split path for out's strings. */
static void resolve(const omadm_csp_req_t *req, char *buf, size_t size, char **segs,
                    node_t *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(req->path) >= size)
        return;
    strcpy(buf, req->path);
    size_t n = split(buf, segs);
    if (n > MAX_SEGS)
        return;
    flavour_t f = flavour_of(req);
    if (f.rca)
        resolve_rca(&f, segs, n, out);
    else if (f.cci)
        resolve_cci(&f, segs, n, out);
    else if (!f.user)
        resolve_cs(segs, n, out);
}

/* 0 found, -404 absent, -500 error.  *rec is the store's (store_peek):
 * valid until the next call on the store.  A damaged record file is no
 * certificate, as the listings leave it out (their names come from the
 * records' heads: store_each_name lists one damaged further on, and the
 * walk of ?list=Struct leaves out the 404 of its node). */
static int lookup(struct omadm_certstore *cs, const node_t *n, const store_rec_t **rec)
{
    int rc = store_peek(cs->store, n->store, n->name, rec);
    return rc == 0 ? 0 : rc == 1 || rc == -2 ? -404 : -500;
}

/* ---- get / list ---- */

static int leaf_value(const struct omadm_certstore *cs, const store_rec_t *rec, leaf_t leaf,
                      omadm_csp_out_t *out)
{
    cert_info_t parsed = {0};
    const cert_info_t *info = rec->info; /* kept in the record since it was stored */
    char *b64 = NULL;
    const char *text = NULL;
    if (leaf == L_ENCODED) {
        b64 = cert_b64(&cs->plat, rec->der, rec->der_len);
        text = b64;
    } else if (!info && cert_info_from_der(&cs->plat, rec->der, rec->der_len, &parsed)) {
        return -500;
    } else {
        if (!info)
            info = &parsed; /* a record from before records kept it */
        text = leaf == L_ISSUED_BY    ? info->issued_by
               : leaf == L_ISSUED_TO  ? info->issued_to
               : leaf == L_VALID_FROM ? info->valid_from
               : leaf == L_VALID_TO   ? info->valid_to
                                      : info->template_name;
    }
    int rc = -500;
    if (text) {
        omadm_value_t v = {(const uint8_t *)text, strlen(text), leaf == L_ENCODED ? "b64" : "chr",
                           NULL};
        rc = omadm_csp_out_leaf(out, &v) ? -500 : 0;
    }
    plat_free(&cs->plat, b64);
    cert_info_free(&cs->plat, &parsed);
    return rc;
}

static int cs_get(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    struct omadm_certstore *cs = ctx;
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    const store_rec_t *rec;
    resolve(req, buf, sizeof buf, segs, &n);
    switch (n.kind) {
    case N_NONE:
        return -404;
    case N_SCEP:
        return enroll_get(cs, n.ns, n.segs, n.n_segs, out);
    case N_PFX:
        return pfx_get(cs, n.pfx_ns, n.segs, n.n_segs, out);
    case N_WSTEP:
        return wstep_get(cs, n.segs, n.n_segs, out);
    case N_ROOT:
    case N_GROUP:
    case N_STORE:
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    default:
        break;
    }
    int rc = lookup(cs, &n, &rec);
    if (rc)
        return rc;
    if (n.kind == N_CERT)
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    return leaf_value(cs, rec, n.leaf, out);
}

/* A certificate is listed under its thumbprint in upper case, as Windows
 * lists it, whatever spelling the server used to Add it (the record keeps
 * that spelling, store_rec_t.name; Get, Replace and Delete find the
 * certificate under any spelling).  The record's thumbprint is its file's
 * name: listing it costs nothing more than the head store_each_name reads. */
static int add_name(void *ctx, const char *thumb, const char *name)
{
    (void)name;
    return omadm_csp_out_child(ctx, thumb) ? -1 : 0;
}

static int list_names(omadm_csp_out_t *out, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (omadm_csp_out_child(out, names[i]))
            return -500;
    return 0;
}

static int cs_list(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    static const char *const cs_root[] = {"Root", "CA", "My"};
    static const char *const my[] = {"User", "System", "SCEP", "WSTEP"};
    static const char *const cci[] = {"PFXCertInstall", "SCEP"};
    static const char *const rca_device[] = {"Root", "CA", "TrustedPublisher", "TrustedPeople",
                                             "UntrustedCertificates"};
    struct omadm_certstore *cs = ctx;
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    resolve(req, buf, sizeof buf, segs, &n);
    flavour_t f = flavour_of(req);
    switch (n.kind) {
    case N_SCEP:
        return enroll_list(cs, n.ns, n.segs, n.n_segs, out);
    case N_PFX:
        return pfx_list(cs, n.pfx_ns, n.segs, n.n_segs, out);
    case N_WSTEP:
        return wstep_list(cs, n.segs, n.n_segs, out);
    case N_ROOT:
        if (f.cci)
            return list_names(out, cci, 2);
        if (f.rca)
            return f.user ? list_names(out, rca_device + 1, 4) : list_names(out, rca_device, 5);
        return list_names(out, cs_root, 3);
    case N_GROUP:
        if (n.my_group) {
            /* WSTEP: once there is an identity (Occ 0..1) */
            int rc = list_names(out, my, 3);
            return rc ? rc : wstep_exists(cs) ? list_names(out, my + 3, 1) : 0;
        }
        if (omadm_csp_out_child(out, "System"))
            return -500;
        /* the certificates sit beside System */
        return store_each_name(cs->store, n.store, add_name, out) ? -500 : 0;
    case N_STORE:
        return store_each_name(cs->store, n.store, add_name, out) ? -500 : 0;
    case N_CERT: {
        const store_rec_t *rec;
        int rc = lookup(cs, &n, &rec);
        return rc ? rc : list_names(out, leaf_names, 6);
    }
    default:
        return -404;
    }
}

/* ---- changes ---- */

/* The DER the value carries, checked against the {CertHash} name, and
 * what the store keeps of it (info, from the same parse: free it with
 * cert_info_free). */
static int value_der(const struct omadm_certstore *cs, const node_t *n, const omadm_value_t *v,
                     uint8_t **der, size_t *len, cert_info_t *info)
{
    const char *why = NULL;
    char want[CERT_THUMB_HEX + 1];
    bool raw = v->format && !strcmp(v->format, "bin");
    if (!v->data)
        return -400;
    int rc = cert_decode_info(&cs->plat, v->data, v->len, raw, der, len, info, &why);
    if (rc)
        return rc == -2 ? -500 : -400; /* no memory is not the server's fault */
    if (!cert_thumb_normalise(n->name, want) || strcmp(want, info->thumb)) {
        plat_free(&cs->plat, *der);
        *der = NULL;
        cert_info_free(&cs->plat, info);
        return -400; /* the node name must be the certificate's SHA-1 thumbprint */
    }
    return 0;
}

/* Add (new certificate) or Replace (existing one: it keeps its node name,
 * installer and date; only the encoding can differ). */
static int write_cert(struct omadm_certstore *cs, const omadm_csp_req_t *req, const node_t *n,
                      const omadm_value_t *v, bool add)
{
    store_rec_t old; /* a copy: store_put below may change what lookup sees */
    int rc = store_get(cs->store, n->store, n->name, &old);
    rc = rc == 0 ? 0 : rc == 1 ? -404 : -500;
    if (rc == -500)
        return rc;
    if ((add && rc == 0) || (!add && rc == -404)) {
        if (rc == 0)
            store_rec_free(cs->store, &old);
        return add ? -418 : -404;
    }
    store_rec_t rec = {0};
    cert_info_t info = {0};
    /* base64 (b64, or chr carrying base64/PEM text) or raw DER (bin) */
    if (v->format && strcmp(v->format, "b64") && strcmp(v->format, "chr") &&
        strcmp(v->format, "bin"))
        rc = -415;
    else
        rc = value_der(cs, n, v, &rec.der, &rec.der_len, &info);
    if (!rc) {
        memcpy(rec.thumb, info.thumb, sizeof rec.thumb);
        rec.info = &info;
        rec.name = add ? (char *)n->name : old.name;
        rec.server = add ? (char *)req->server_id : old.server;
        rec.added = add ? plat_now(&cs->plat) : old.added; /* the host's clock */
        rc = store_put(cs->store, n->store, &rec) ? -500 : 0;
    }
    plat_free(&cs->plat, rec.der);
    cert_info_free(&cs->plat, &info);
    if (!add)
        store_rec_free(cs->store, &old);
    return rc;
}

/* A leaf other than EncodedCertificate, or {CertHash} itself, cannot be
 * written: 405, or 404 when the certificate does not exist. */
static int read_only(struct omadm_certstore *cs, const node_t *n)
{
    const store_rec_t *rec;
    int rc = lookup(cs, n, &rec);
    return rc == -404 ? -404 : -405;
}

static int cs_add(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *value)
{
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    resolve(req, buf, sizeof buf, segs, &n);
    switch (n.kind) {
    case N_NONE:
        return -404;
    case N_SCEP:
        return enroll_add(ctx, n.ns, n.segs, n.n_segs, value);
    case N_PFX:
        return pfx_add(ctx, n.pfx_ns, n.segs, n.n_segs, req, value);
    case N_WSTEP:
        return wstep_set(ctx, n.segs, n.n_segs, req, value, true);
    case N_ROOT:
    case N_GROUP:
    case N_STORE:
        return -418;
    case N_CERT:
        return -405; /* {CertHash} comes into being with its EncodedCertificate */
    default:
        break;
    }
    if (n.leaf != L_ENCODED)
        return read_only(ctx, &n);
    return write_cert(ctx, req, &n, value, true);
}

static int cs_replace(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *value)
{
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    resolve(req, buf, sizeof buf, segs, &n);
    if (n.kind == N_NONE)
        return -404;
    if (n.kind == N_SCEP)
        return enroll_replace(ctx, n.ns, n.segs, n.n_segs, value);
    if (n.kind == N_PFX)
        return pfx_replace(ctx, n.pfx_ns, n.segs, n.n_segs, req, value);
    if (n.kind == N_WSTEP)
        return wstep_set(ctx, n.segs, n.n_segs, req, value, false);
    if (n.kind == N_CERT || (n.kind == N_LEAF && n.leaf != L_ENCODED))
        return read_only(ctx, &n);
    if (n.kind != N_LEAF)
        return -405;
    return write_cert(ctx, req, &n, value, false);
}

static int cs_del(void *ctx, const omadm_csp_req_t *req)
{
    struct omadm_certstore *cs = ctx;
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    const store_rec_t *rec;
    resolve(req, buf, sizeof buf, segs, &n);
    if (n.kind == N_NONE)
        return -404;
    if (n.kind == N_SCEP)
        return enroll_del(cs, n.ns, n.segs, n.n_segs);
    if (n.kind == N_PFX)
        return pfx_del(cs, n.pfx_ns, n.segs, n.n_segs);
    if (n.kind == N_WSTEP)
        return wstep_del(cs, n.segs, n.n_segs, req);
    if (n.kind == N_LEAF)
        return read_only(cs, &n);
    if (n.kind != N_CERT)
        return -405;
    int rc = lookup(cs, &n, &rec);
    if (rc)
        return rc;
    return store_del(cs->store, n.store, n.name) ? -500 : 0;
}

static int cs_exec(void *ctx, const omadm_csp_req_t *req, const omadm_value_t *arg,
                   const char *correlator)
{
    char buf[1024], *segs[MAX_SEGS];
    node_t n;
    (void)arg;
    (void)correlator;
    resolve(req, buf, sizeof buf, segs, &n);
    if (n.kind == N_SCEP)
        return enroll_exec(ctx, n.ns, n.segs, n.n_segs, req);
    if (n.kind == N_WSTEP)
        return wstep_exec(ctx, n.segs, n.n_segs);
    return n.kind == N_NONE ? -404 : -405;
}

/* ---- transactions ---- */

static int cs_begin(void *ctx)
{
    return store_begin(((struct omadm_certstore *)ctx)->store) ? -500 : 0;
}

/* PFX blobs staged by the commands are installed now, when every command
 * of the Atomic has set its parameters (pfx.c); the WSTEP schedule is
 * checked as the whole Atomic left it (wstep.c). */
static int cs_validate(void *ctx)
{
    int rc = wstep_validate(ctx);
    return rc ? rc : pfx_validate(ctx);
}

static int cs_commit(void *ctx)
{
    struct omadm_certstore *cs = ctx;
    wstep_end(cs);
    if (store_commit(cs->store)) {
        pfx_rollback(cs);
        return -500;
    }
    pfx_commit(cs);
    return 0;
}

static int cs_rollback(void *ctx)
{
    store_rollback(((struct omadm_certstore *)ctx)->store);
    pfx_rollback(ctx);
    wstep_end(ctx);
    return 0;
}

static int cs_end_message(void *ctx)
{
    return store_flush(((struct omadm_certstore *)ctx)->store) ? -500 : 0;
}

static int cs_step(void *ctx, int64_t now, int64_t *next_due)
{
    int64_t enroll_next = OMADM_NEVER, wstep_next = OMADM_NEVER;
    int rc = enroll_step(ctx, now, &enroll_next);
    /* a step that lost the store's lock ends at once (omadm_certstore_unlock) */
    int rc2 = store_locked(((struct omadm_certstore *)ctx)->store)
                  ? wstep_step(ctx, now, &wstep_next)
                  : 0;
    *next_due = enroll_next < wstep_next ? enroll_next : wstep_next;
    return rc ? rc : rc2;
}

static int cs_alerts(void *ctx, omadm_alert_fn fn, void *fn_ctx)
{
    int rc = enroll_alerts(ctx, fn, fn_ctx);
    return rc ? rc : wstep_alerts(ctx, fn, fn_ctx);
}

static int cs_alert_delivered(void *ctx, const char *id)
{
    int rc = enroll_alert_delivered(ctx, id);
    return rc == 1 ? wstep_alert_delivered(ctx, id) : rc;
}

/* One registration for both CSPs: the handlers tell them apart by the base
 * (flavour_of), and one store transaction covers both. */
static const char *const bases[] = {"./Vendor/MSFT/CertificateStore",
                                    "./Device/Vendor/MSFT/CertificateStore",
                                    "./Device/Vendor/MSFT/RootCATrustedCertificates",
                                    "./Vendor/MSFT/RootCATrustedCertificates",
                                    "./User/Vendor/MSFT/RootCATrustedCertificates",
                                    "./Device/Vendor/MSFT/ClientCertificateInstall",
                                    "./Vendor/MSFT/ClientCertificateInstall",
                                    "./User/Vendor/MSFT/ClientCertificateInstall", NULL};

static const omadm_csp_t certificate_csps = {
    .name = "CertificateStore+RootCATrustedCertificates+ClientCertificateInstall",
    .bases = bases,
    .get = cs_get,
    .list = cs_list,
    .add = cs_add,
    .replace = cs_replace,
    .del = cs_del,
    .exec = cs_exec,
    .begin = cs_begin,
    .validate = cs_validate,
    .commit = cs_commit,
    .rollback = cs_rollback,
    .end_message = cs_end_message,
    .step = cs_step,
    .alerts = cs_alerts,
    .alert_delivered = cs_alert_delivered,
};

omadm_error_t omadm_certstore_open(const char *dir, const omadm_platform_t *platform,
                                   omadm_certstore_t **out, const char **why)
{
    const char *reason = NULL;
    if (!dir || !out)
        return OMADM_E_INVALID_ARG;
    *out = NULL;
    if (crypto_init()) { /* omadm/crypto.h: why explicitly */
        if (why)
            *why = "OpenSSL cannot be initialised (out of memory)";
        return OMADM_E_NOMEM;
    }
    omadm_platform_t plat;
    plat_init(&plat, platform);
    *out = plat_calloc(&plat, sizeof **out);
    if (!*out)
        return OMADM_E_NOMEM;
    (*out)->plat = plat;
    int rc = store_open(dir, &(*out)->plat, &(*out)->store, &reason);
    if (rc) {
        plat_free(&plat, *out);
        *out = NULL;
        if (why)
            *why = reason;
        /* -2: this process has the store open already (a second open
         * would wait for itself for ever) */
        return rc == -2 ? OMADM_E_BUSY : OMADM_E_STORAGE;
    }
    return OMADM_OK;
}

void omadm_certstore_close(omadm_certstore_t *cs)
{
    if (!cs)
        return;
    omadm_platform_t plat = cs->plat;
    pfx_close(cs);
    store_close(cs->store);
    plat_free(&plat, cs->tpm_tcti);
    plat_free(&plat, cs);
}

omadm_error_t omadm_certstore_register(omadm_t *dm, omadm_certstore_t *cs)
{
    if (!cs)
        return OMADM_E_INVALID_ARG;
    omadm_error_t err = omadm_register_csp(dm, &certificate_csps, cs);
    /* where each key lives (keyinfo.c) */
    return err ? err : omadm_register_csp(dm, &cs_keyinfo_csp, cs);
}

void omadm_certstore_set_host(omadm_certstore_t *cs, const omadm_certstore_host_t *host)
{
    if (!cs)
        return;
    memset(&cs->host, 0, sizeof cs->host);
    cs->has_http = false;
    if (!host)
        return;
    cs->host = *host;
    if (host->http && host->http->request && host->http->release) {
        cs->http = *host->http;
        cs->has_http = true;
    }
    cs->host.http = cs->has_http ? &cs->http : NULL;
}

omadm_error_t omadm_certstore_set_tpm(omadm_certstore_t *cs, const char *tcti)
{
    if (!cs || (tcti && *tcti && !ks_tpm_tcti_valid(tcti)))
        return OMADM_E_INVALID_ARG;
    char *copy = NULL;
    if (tcti && *tcti && !(copy = plat_strdup(&cs->plat, tcti)))
        return OMADM_E_NOMEM;
    plat_free(&cs->plat, cs->tpm_tcti);
    cs->tpm_tcti = copy;
    return OMADM_OK;
}

omadm_error_t omadm_certstore_tpm_check(const char *tcti)
{
    return ks_tpm_tcti_valid(tcti) ? OMADM_OK : OMADM_E_INVALID_ARG;
}

const char *omadm_certstore_tpm(const omadm_certstore_t *cs)
{
    return cs ? cs->tpm_tcti : NULL;
}

omadm_error_t omadm_certstore_unlock(omadm_certstore_t *cs)
{
    if (!cs)
        return OMADM_E_INVALID_ARG;
    /* only while the enrollment waits on the host's HTTP hook: then
     * nothing is staged, and the enrollment knows to look again */
    if (!cs->in_http || store_unlock(cs->store))
        return OMADM_E_DENIED;
    cs->unlocks++;
    return OMADM_OK;
}

omadm_error_t omadm_certstore_relock(omadm_certstore_t *cs)
{
    if (!cs || store_locked(cs->store))
        return OMADM_E_INVALID_ARG;
    return store_relock(cs->store) ? OMADM_E_STORAGE : OMADM_OK;
}

void cs_log(const struct omadm_certstore *cs, omadm_log_level_t level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!cs->host.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cs->host.log(cs->host.log_ctx, level, msg);
}
