/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_ossl.c - OpenSSL's memory functions (see support_ossl.h).
 */
#include "support_ossl.h"

#include <signal.h>
#include <stddef.h>
#include <stdlib.h>

#include <openssl/crypto.h>

static long g_calls;   /* malloc + realloc calls */
static long g_fail_at; /* 0: never */
static long g_failures;

static bool should_fail(void)
{
    g_calls++;
    if (g_fail_at && g_calls == g_fail_at) {
        g_failures++;
        return true;
    }
    return false;
}

static void *o_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return should_fail() ? NULL : malloc(n);
}

static void *o_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return should_fail() ? NULL : realloc(p, n);
}

static void o_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

bool tossl_install(void)
{
    return CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free) == 1;
}

void tossl_arm(long n)
{
    if (n)
        g_failures = 0;
    g_fail_at = n ? g_calls + n : 0;
}

long tossl_calls(void)
{
    return g_calls;
}

long tossl_failures(void)
{
    return g_failures;
}

void tossl_child_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}
