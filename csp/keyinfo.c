/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyinfo.c - ./Vendor/omadm/CertificateKeys: where the private key of each
 * certificate with a key lives, for the server to read (docs/keys.md).
 * Microsoft's CSPs have no node for it, and a KeyProtection 2 enrollment
 * that fell back to a software key is otherwise indistinguishable from one
 * whose key is in the TPM.  Read-only:
 *
 *   ./Vendor/omadm/CertificateKeys                  interior
 *   ./Vendor/omadm/CertificateKeys/my-system        interior (My/System)
 *   ./Vendor/omadm/CertificateKeys/my-user          interior (My/User)
 *   ./Vendor/omadm/CertificateKeys/<store>/<THUMB>  chr "TPM" or "Software"
 *
 * The answer is read from the key file itself (its PEM label), so it is
 * true for keys however they were installed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "certstore_internal.h"
#include "platform.h"
#include "store/store.h"

static const char *const key_stores[] = {"my-system", "my-user"};

/* "<store>" or "<store>/<thumb>" below the base: *store (one of
 * key_stores, matched case-insensitively) and thumb ("" for none).  0, or
 * -404. */
static int parse(const char *path, const char **store, char thumb[OMADM_THUMBPRINT_LEN + 1])
{
    *store = NULL;
    thumb[0] = 0;
    if (!*path)
        return 0;
    const char *slash = strchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : strlen(path);
    for (size_t i = 0; i < sizeof key_stores / sizeof key_stores[0]; i++)
        if (strlen(key_stores[i]) == n && !strncasecmp(path, key_stores[i], n))
            *store = key_stores[i];
    if (!*store)
        return -404;
    if (!slash)
        return 0;
    if (strchr(slash + 1, '/') || omadm_certstore_thumbprint_parse(slash + 1, thumb))
        return -404;
    return 0;
}

/* "TPM", "Software", or NULL when the certificate has no key here. */
static const char *key_location(struct omadm_certstore *cs, const char *store, const char *thumb)
{
    char *pem = store_get_key(cs->store, store, thumb);
    if (!pem)
        return NULL;
    const char *where = strncmp(pem, "-----BEGIN TSS2 PRIVATE KEY-----", 32) ? "Software" : "TPM";
    OPENSSL_cleanse(pem, strlen(pem));
    plat_free(&cs->plat, pem);
    return where;
}

static int ki_get(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    const char *store;
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (parse(req->path, &store, thumb))
        return -404;
    if (!thumb[0])
        return omadm_csp_out_interior(out, NULL) ? -500 : 0;
    const char *where = key_location(ctx, store, thumb);
    if (!where)
        return -404;
    omadm_value_t v = {(const uint8_t *)where, strlen(where), "chr", "text/plain"};
    return omadm_csp_out_leaf(out, &v) ? -500 : 0;
}

typedef struct list_ctx {
    struct omadm_certstore *cs;
    const char *store;
    omadm_csp_out_t *out;
    bool failed;
} list_ctx_t;

static int list_one(void *ctx, const char *thumb, const char *name)
{
    list_ctx_t *l = ctx;
    (void)name;
    if (key_location(l->cs, l->store, thumb) && omadm_csp_out_child(l->out, thumb)) {
        l->failed = true;
        return 1;
    }
    return 0;
}

static int ki_list(void *ctx, const omadm_csp_req_t *req, omadm_csp_out_t *out)
{
    const char *store;
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (parse(req->path, &store, thumb))
        return -404;
    if (thumb[0])
        return key_location(ctx, store, thumb) ? -406 : -404;
    if (!store) {
        for (size_t i = 0; i < sizeof key_stores / sizeof key_stores[0]; i++)
            if (omadm_csp_out_child(out, key_stores[i]))
                return -500;
        return 0;
    }
    list_ctx_t l = {ctx, store, out, false};
    if (store_each_name(((struct omadm_certstore *)ctx)->store, store, list_one, &l) || l.failed)
        return -500;
    return 0;
}

static const char *const ki_bases[] = {"./Vendor/omadm/CertificateKeys", NULL};

const omadm_csp_t cs_keyinfo_csp = {
    .name = "CertificateKeys",
    .bases = ki_bases,
    .get = ki_get,
    .list = ki_list,
};
