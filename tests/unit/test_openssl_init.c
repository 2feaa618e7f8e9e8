/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_openssl_init.c - OpenSSL's own initialisation failing.
 *
 * OpenSSL sets itself up once per process, on first use unless told to
 * earlier; when an allocation fails half-way through, it may go on with a
 * NULL lock and crash in a later call (EVP_MD_fetch, say).  The store sets
 * OpenSSL's base and default library context up explicitly in
 * omadm_certstore_open and checks the result; OpenSSL loads its
 * configuration file on the first use of that context, as it always does.
 *
 * Each run is a child process of this one, which never uses OpenSSL
 * itself: OpenSSL's allocator (CRYPTO_set_mem_functions, set before
 * OpenSSL allocates anything) fails its N-th call, then the child opens a
 * store and uses OpenSSL the way the store and an enrollment do (a record
 * name, a thumbprint, a certificate set and its pin).  N goes through every
 * allocation OpenSSL makes while the store opens and in the first uses
 * (the configuration file among them), then a sample of the rest.  Every
 * child must exit normally: omadm_certstore_open either fails with
 * OMADM_E_NOMEM and a reason, or works, and then what follows may fail but
 * never crashes.  The same for the engine alone: omadm_new,
 * then what uses OpenSSL in it (a session with MD5 credentials, base64,
 * random nonces).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "csp/certstore_internal.h"
#include "csp/enroll.h"
#include "csp/scep_msg.h"
#include "platform.h"
#include "store/cert.h"
#include "support_dir.h"
#include "support_ossl.h"
#include "support_pki.h"

static long g_start;   /* OpenSSL's allocations when the child armed its failure */
static long g_at_open; /* and since then, once the store or engine was created */

/* a certificate of the test PKI, read without OpenSSL */
static uint8_t *g_root;
static size_t g_root_len;

/* In a child armed with tossl_arm(n): whether OpenSSL's n-th allocation
 * never came (false for n 0: nothing was to fail). */
static bool never_came(long n)
{
    return n && !tossl_failures();
}

/* n 0: print how many allocations OpenSSL made while the store or engine
 * was created, and in all (see child()). */
static void print_counts(long n)
{
    if (n == 0) {
        printf("%ld %ld\n", g_at_open, tossl_calls() - g_start);
        fflush(stdout);
    }
}

/* The engine's child: fail OpenSSL's n-th allocation, create an engine,
 * begin a session with MD5 credentials.  Exit codes as child() below. */
static void engine_child(long n)
{
    g_start = tossl_calls();
    tossl_arm(n);
    omadm_t *dm = NULL;
    omadm_error_t err = omadm_new(NULL, NULL, NULL, &dm);
    g_at_open = tossl_calls() - g_start;
    if (err == OMADM_E_NOMEM && !dm)
        _exit(never_came(n) ? 9 : 10);
    if (err != OMADM_OK)
        _exit(1);
    omadm_account_t acc = {.server_url = "http://127.0.0.1:1/dm", .server_id = "srv",
                           .client_auth = OMADM_AUTH_MD5, .client_secret = "secret",
                           .server_auth = OMADM_AUTH_MD5, .server_secret = "s2"};
    uint8_t *msg = NULL;
    size_t len = 0;
    if (omadm_session_begin(dm, &acc, 0, NULL, &msg, &len) == OMADM_OK)
        omadm_buffer_free(dm, msg);
    omadm_free(dm);
    print_counts(n);
    _exit(never_came(n) ? 9 : 0);
}

/* The child: fail OpenSSL's n-th allocation, open a store in dir, use
 * OpenSSL.  Exit 0 (open worked, and then all of it ran), 10 (open failed
 * cleanly), 9 (the n-th allocation never came), 1 (open failed with
 * another error).  n 0: no failure; print how many allocations OpenSSL
 * made while the store opened, and in all.  dir NULL: engine_child(). */
static void child(long n, const char *dir)
{
    if (!dir)
        engine_child(n);
    g_start = tossl_calls();
    tossl_arm(n);
    omadm_certstore_t *cs = NULL;
    const char *why = NULL;
    omadm_error_t err = omadm_certstore_open(dir, NULL, &cs, &why);
    g_at_open = tossl_calls() - g_start;
    if (err == OMADM_E_NOMEM && !cs && why)
        _exit(never_came(n) ? 9 : 10);
    if (err != OMADM_OK)
        _exit(1);
    char name[96], thumb[41];
    (void)enr_record_name(ENR_CS, "Sweep", name, sizeof name);
    if (cert_thumbprint(g_root, g_root_len, thumb))
        snprintf(thumb, sizeof thumb, "%040d", 0);
    omadm_platform_t p;
    plat_init(&p, NULL);
    scep_certset_t *set = NULL;
    if (scep_cacert_parse(&p, g_root, g_root_len, &set, &why) == SCEP_OK)
        (void)scep_cacert_match_thumbprint(set, thumb, NULL, 0, 1893456000, &why);
    scep_certset_free(&p, set);
    omadm_certstore_close(cs);
    print_counts(n);
    _exit(never_came(n) ? 9 : 0);
}

/* child(n) in a child process: its exit code; the two numbers of its
 * output into out[0] and out[1] when out is not NULL. */
static int run_child(long n, const char *dir, long out[2])
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tossl_child_signals();
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        child(n, dir);
        _exit(127);
    }
    close(fd[1]);
    char buf[64] = "";
    ssize_t got = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    if (out) {
        char *end = buf;
        out[0] = got > 0 ? strtol(buf, &end, 10) : -1;
        out[1] = got > 0 ? strtol(end, NULL, 10) : -1;
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("N=%ld: the process died of signal %d", n, WTERMSIG(st));
    return WEXITSTATUS(st);
}

/* child(n, dir) for every allocation OpenSSL makes while the store (dir)
 * or the engine (NULL) is created and the next DENSE ones (where the first
 * use loads OpenSSL's configuration file: ~2,900 allocations with
 * Debian's), then for every 7th up to the end; each exits cleanly, and
 * some failed cleanly. */
#define DENSE 3000
static void sweep(const char *dir, const char *what)
{
    long counts[2] = {0, 0};
    assert_int_equal(run_child(0, dir, counts), 0);
    long at_open = counts[0], total = counts[1];
    assert_true(at_open >= 0 && total >= at_open);
    long n, clean_failures = 0, worked = 0;
    for (n = 1; n <= total; n += n <= at_open + DENSE ? 1 : 7) {
        int code = run_child(n, dir, NULL);
        if (code == 9)
            break;
        if (code == 10)
            clean_failures++;
        else if (code == 0)
            worked++;
        else
            fail_msg("%s, N=%ld: exit %d", what, n, code);
    }
    print_message("OpenSSL initialisation: %ld allocations while %s, %ld with the first uses; "
                  "%ld processes: it failed cleanly (OMADM_E_NOMEM) in %ld, worked in %ld\n",
                  at_open, what, total, clean_failures + worked, clean_failures, worked);
    assert_true(clean_failures > 0);
}

static void test_openssl_init_failure(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/test-openssl-init.XXXXXX");
    assert_non_null(mkdtemp(dir));
    sweep(dir, "the store opens");
    tdir_rm(dir);
}

static void test_openssl_init_failure_engine(void **state)
{
    (void)state;
    sweep(NULL, "an engine is created");
}

int main(void)
{
    /* before anything allocates through OpenSSL */
    if (!tossl_install()) {
        fprintf(stderr, "test_openssl_init: OpenSSL allocated before main\n");
        return 1;
    }
    g_root = tpki_read("root.der", &g_root_len);
    if (!g_root)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_init_failure),
        cmocka_unit_test(test_openssl_init_failure_engine),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_root);
    if (tossl_calls() != 0) {
        fprintf(stderr, "test_openssl_init: this process used OpenSSL, not only its children\n");
        return 1;
    }
    return failed;
}
