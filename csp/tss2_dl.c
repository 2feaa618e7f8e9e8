/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tss2_dl.c - tpm2-tss loaded on first use (tss2_dl.h).  The table is
 * filled once per process (pthread_once) and never changes afterwards; the
 * libraries stay loaded until the process exits.
 */
#ifdef OMADM_HAVE_TSS2

#include "tss2_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>

static ks_tss2_api_t api;
static bool loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *lib(const char *soname)
{
    return dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
}

static void load(void)
{
    void *esys = lib("libtss2-esys.so.0"), *mu = lib("libtss2-mu.so.0");
    void *ldr = lib("libtss2-tctildr.so.0");
    bool ok = esys && mu && ldr;
#define KS_TSS2_LOAD(name)                                                                   \
    ok = ok && (api.name = (__typeof__(api.name))dlsym(                                      \
                    #name[0] == 'E' ? esys : (#name[5] == 'M' ? mu : ldr), #name)) != NULL;
    KS_TSS2_FUNCTIONS(KS_TSS2_LOAD)
#undef KS_TSS2_LOAD
    loaded = ok;
}

const ks_tss2_api_t *ks_tss2(void)
{
    if (pthread_once(&once, load))
        return NULL;
    return loaded ? &api : NULL;
}

#else

typedef int ks_tss2_dl_unused_t; /* an ISO C translation unit is never empty */

#endif
