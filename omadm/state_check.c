/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state_check.c - omadm_state_check: the engine's persisted values loaded
 * as omadm_new loads them, with every finding (a damaged or newer value,
 * an older format) passed to the host, and the repairs that lose nothing
 * that can still be read.
 */
#include <stdarg.h>
#include <stdio.h>

#include "client.h"
#include "dmtree.h"
#include "internal.h"
#include "session.h"

struct state_checker {
    omadm_state_fn fn;
    void *ctx;
    unsigned flags;
    unsigned reported;
    omadm_error_t first; /* the first finding left unrepaired */
};

void state_report(omadm_t *dm, omadm_error_t err, bool repaired, const char *key,
                  const char *found, const char *current, const char *fmt, ...)
{
    struct state_checker *c = dm->checker;
    if (!c)
        return;
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    c->reported++;
    if (err != OMADM_OK && !repaired && c->first == OMADM_OK)
        c->first = err;
    omadm_state_problem_t p = {
        .key = key,
        .err = err,
        .found = found,
        .current = current,
        .detail = detail,
        .repaired = repaired,
    };
    if (c->fn)
        c->fn(c->ctx, &p);
}

unsigned state_reported(const omadm_t *dm)
{
    return dm->checker ? dm->checker->reported : 0;
}

bool state_checking(const omadm_t *dm)
{
    return dm->checker != NULL;
}

bool state_repairing(const omadm_t *dm)
{
    return dm->checker && (dm->checker->flags & OMADM_STATE_REPAIR);
}

omadm_error_t omadm_state_check(const omadm_config_t *cfg, const omadm_platform_t *platform,
                                const omadm_storage_t *storage, unsigned flags,
                                omadm_state_fn fn, void *ctx)
{
    if (!storage || !storage->load || !storage->save || (flags & ~OMADM_STATE_REPAIR))
        return OMADM_E_INVALID_ARG;
    omadm_t *dm = NULL;
    omadm_error_t err = engine_new(cfg, platform, storage, &dm);
    if (err)
        return err;
    struct state_checker c = {.fn = fn, .ctx = ctx, .flags = flags};
    dm->checker = &c;
    /* each value on its own: a damaged tree does not hide a newer session */
    omadm_error_t e[3] = {dmtree_create(dm), session_load(dm), client_auth_check(dm)};
    for (int i = 0; i < 3 && !err; i++)
        if (e[i] == OMADM_E_NOMEM)
            err = e[i];
    if (!err)
        err = c.first;
    omadm_free(dm);
    return err;
}
