/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core.c - engine lifetime, configuration defaults, platform fallbacks,
 * error strings.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "crypto.h"
#include "csp_registry.h"
#include "dmtree.h"
#include "internal.h"
#include "platform.h"
#include "client.h"
#include "large_obj.h"
#include "session.h"

static const char *const error_strings[OMADM_E__COUNT] = {
    [OMADM_OK] = "success",
    [OMADM_E_NOMEM] = "out of memory",
    [OMADM_E_INVALID_ARG] = "invalid argument",
    [OMADM_E_NOT_SYNCML] = "input is not a SyncML message",
    [OMADM_E_TOO_LARGE] = "input exceeds a configured limit",
    [OMADM_E_MALFORMED] = "SyncML header is malformed",
    [OMADM_E_STORAGE] = "storage failure",
    [OMADM_E_NOT_FOUND] = "node not found",
    [OMADM_E_EXISTS] = "already exists",
    [OMADM_E_ENCODE] = "reply could not be encoded",
    [OMADM_E_CORRUPT] = "persisted state is corrupt",
    [OMADM_E_INTERNAL] = "internal error",
    [OMADM_E_DENIED] = "permission denied",
    [OMADM_E_BUSY] = "already in use",
    [OMADM_E_NO_KEY] = "no private key for the certificate",
    [OMADM_E_NEWER_FORMAT] = "persisted state is of a newer format",
    [OMADM_E_NO_DEVICE] = "the device that holds the key is not configured or cannot be reached",
};

const char *omadm_version(void)
{
    return OMADM_VERSION_STRING;
}

const char *omadm_strerror(omadm_error_t err)
{
    if ((unsigned)err >= OMADM_E__COUNT || !error_strings[err])
        return "unknown error";
    return error_strings[err];
}

void omadm_config_init(omadm_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dev_id = "omadm-device";
    cfg->man = "omadm";
    cfg->mod = "omadm-client";
    cfg->dmv = "1.2";
    cfg->lang = "en-US";
    cfg->dev_typ = "device";
    cfg->oem = "omadm";
    cfg->fwv = "unknown";
    cfg->swv = "unknown";
    cfg->hwv = "unknown";
    cfg->root_acl = "Add=*&Delete=*&Exec=*&Get=*&Replace=*";
    cfg->max_msg_size = 4u << 20;
    cfg->max_obj_size = 1u << 20;
    cfg->max_depth = 32;
    cfg->max_commands = 20000;
    cfg->max_items = 1000;
    cfg->max_uri_len = 1024;
    cfg->max_seg_len = 255;
    cfg->max_uri_depth = 32;
    cfg->max_nodes = 100000;
    cfg->max_reply_size = 8u << 20;
}

/* ---- allocation, logging and time through the platform table ---- */

void *om_alloc(omadm_t *dm, size_t n)
{
    return dm->plat.alloc(dm->plat.ctx, n);
}

void *om_calloc(omadm_t *dm, size_t n)
{
    void *p = om_alloc(dm, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *om_realloc(omadm_t *dm, void *p, size_t n)
{
    return dm->plat.realloc(dm->plat.ctx, p, n);
}

void om_free(omadm_t *dm, void *p)
{
    if (p)
        dm->plat.free(dm->plat.ctx, p);
}

char *om_strndup(omadm_t *dm, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = om_alloc(dm, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *om_strdup(omadm_t *dm, const char *s)
{
    return s ? om_strndup(dm, s, strlen(s)) : NULL;
}

void om_log(omadm_t *dm, omadm_log_level_t level, const char *fmt, ...)
{
    if (!dm->plat.log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dm->plat.log(dm->plat.ctx, level, msg);
}

int64_t om_now(omadm_t *dm)
{
    return dm->plat.now(dm->plat.ctx);
}

void om_wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

int om_strcaseeq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
        if (!x)
            return 1;
    }
}

int om_strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
        if (!x)
            return 1;
    }
    return 1;
}

/* ---- configuration copy ---- */

#define CFG_STRINGS(X)                                                                  \
    X(dev_id) X(man) X(mod) X(dmv) X(lang) X(dev_typ) X(oem) X(fwv) X(swv) X(hwv)      \
    X(server_id) X(root_acl)

static omadm_error_t copy_config(omadm_t *dm, const omadm_config_t *in)
{
    omadm_config_t def;
    omadm_config_init(&def);
    dm->cfg = *in;
    size_t total = 0;
#define SIZE_ONE(f)                                                                     \
    if (!dm->cfg.f && strcmp(#f, "server_id") != 0)                                     \
        dm->cfg.f = def.f;                                                              \
    if (dm->cfg.f)                                                                      \
        total += strlen(dm->cfg.f) + 1;
    CFG_STRINGS(SIZE_ONE)
#undef SIZE_ONE
    dm->cfg_strings = om_alloc(dm, total ? total : 1);
    if (!dm->cfg_strings)
        return OMADM_E_NOMEM;
    char *p = dm->cfg_strings;
#define COPY_ONE(f)                                                                     \
    if (dm->cfg.f) {                                                                    \
        size_t n = strlen(dm->cfg.f) + 1;                                               \
        memcpy(p, dm->cfg.f, n);                                                        \
        dm->cfg.f = p;                                                                  \
        p += n;                                                                         \
    }
    CFG_STRINGS(COPY_ONE)
#undef COPY_ONE
    /* 0 selects the default; anything beyond a sane ceiling is clamped so
     * no size computation can overflow */
#define LIMIT(f, ceiling)                                                               \
    if (!dm->cfg.f)                                                                     \
        dm->cfg.f = def.f;                                                              \
    if (dm->cfg.f > (ceiling))                                                          \
        dm->cfg.f = (ceiling);
    LIMIT(max_msg_size, (size_t)1 << 30) LIMIT(max_obj_size, (size_t)1 << 30)
    LIMIT(max_depth, 1000u) LIMIT(max_commands, 1000000u) LIMIT(max_items, 1000000u)
    LIMIT(max_uri_len, 65536u) LIMIT(max_seg_len, 65536u) LIMIT(max_uri_depth, 1000u)
    LIMIT(max_nodes, 100000000u) LIMIT(max_reply_size, (size_t)1 << 30)
#undef LIMIT
    return OMADM_OK;
}

omadm_error_t engine_new(const omadm_config_t *cfg, const omadm_platform_t *platform,
                         const omadm_storage_t *storage, omadm_t **out)
{
    *out = NULL;
    if (crypto_init())
        return OMADM_E_NOMEM; /* OpenSSL cannot be set up: crypto.h */
    omadm_platform_t plat;
    plat_init(&plat, platform);
    omadm_t *dm = plat.alloc(plat.ctx, sizeof *dm);
    if (!dm)
        return OMADM_E_NOMEM;
    memset(dm, 0, sizeof *dm);
    dm->plat = plat;
    if (storage && storage->load && storage->save) {
        dm->storage = *storage;
        dm->has_storage = true;
    }
    omadm_config_t def;
    if (!cfg) {
        omadm_config_init(&def);
        cfg = &def;
    }
    omadm_error_t err = copy_config(dm, cfg);
    if (err != OMADM_OK) {
        omadm_free(dm);
        return err;
    }
    *out = dm;
    return OMADM_OK;
}

omadm_error_t omadm_new(const omadm_config_t *cfg, const omadm_platform_t *platform,
                        const omadm_storage_t *storage, omadm_t **out)
{
    if (!out)
        return OMADM_E_INVALID_ARG;
    *out = NULL;
    omadm_t *dm = NULL;
    omadm_error_t err = engine_new(cfg, platform, storage, &dm);
    if (err == OMADM_OK)
        err = dmtree_create(dm);
    if (err == OMADM_OK)
        err = session_load(dm);
    if (err != OMADM_OK) {
        omadm_free(dm);
        return err;
    }
    *out = dm;
    return OMADM_OK;
}

void omadm_free(omadm_t *dm)
{
    if (!dm)
        return;
    dmtree_destroy(dm);
    client_free(dm);
    lo_drop(dm);
    csp_registry_free(dm);
    session_clear(dm);
    om_free(dm, dm->last_server);
    om_free(dm, dm->cfg_strings);
    arena_spare_free(dm);
    omadm_platform_t plat = dm->plat;
    plat.free(plat.ctx, dm);
}

void omadm_buffer_free(omadm_t *dm, void *buf)
{
    if (dm)
        om_free(dm, buf);
}

const char *omadm_last_server(const omadm_t *dm)
{
    return dm ? dm->last_server : NULL;
}
