/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store_io.c - the certificate store under failing file operations.
 *
 * Every file operation of the store (open, read, write, fsync/syncfs,
 * rename, unlink, mkdir, chmod, ftruncate, close, stat, flock, opendir,
 * readdir: store/store_io.h) asks a fault hook first.  The sweeps' message
 * (support_certmsg.h: Add of an intermediate to CA/System, Gets of the
 * root, Delete of the root from Root/System; as a sequence and in an
 * Atomic) runs, store opening included, while the N-th file operation
 * fails (write with ENOSPC, everything else with EIO), for N = 1, 2, ...
 * until a run needs no failure; once with only the N-th call failing, once
 * with every call from the N-th on failing.
 *
 * After each run, with the hook gone: no crash, no block of the host
 * allocator outstanding and no file descriptor left open, and, once the
 * store is opened again (which replays a durable journal), a consistent
 * store (store_check) that OpenSSL sees as the store does (a deleted CA in
 * neither the CApath directory nor the bundle), in one of the states the
 * message allows, and the one the reply's statuses say when there was a
 * reply; never half a batch, never half an Atomic.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_io.h"
#include "support_certmsg.h"
#include "support_dir.h"
#include "support_dm.h"
#include "support_host.h"
#include "support_pki.h"

/* ---- the fault hook ---------------------------------------------------------- */

typedef struct faults {
    bool after_journal;            /* fail everything once the journal is in place */
    bool journal_done;
    long calls;                    /* file operations asked about */
    long fail_at;                  /* 0: none fails; N: the N-th */
    bool persistent;               /* every one from the N-th on */
    long failures;
    long by_op[STORE_IO__COUNT];   /* calls of each kind */
    store_io_op_t first_op;        /* the first that failed */
    char first_path[256];
} faults_t;

static int hook(void *ctx, store_io_op_t op, const char *path)
{
    faults_t *f = ctx;
    f->calls++;
    f->by_op[op]++;
    if (f->after_journal) {
        size_t n = path ? strlen(path) : 0;
        if (f->journal_done)
            return EIO;
        f->journal_done = op == STORE_IO_RENAME && n > 8 && !strcmp(path + n - 8, "/journal");
        return 0;
    }
    if (!f->fail_at || (f->calls != f->fail_at && !(f->persistent && f->calls > f->fail_at)))
        return 0;
    if (!f->failures++) {
        f->first_op = op;
        snprintf(f->first_path, sizeof f->first_path, "%s", path ? path : "(descriptor)");
    }
    return op == STORE_IO_WRITE ? ENOSPC : EIO;
}

/* What failed first in a run, for failure messages: " (write of ...
 * failed first)", or "" when nothing failed. */
static void first_failure(const faults_t *f, char *buf, size_t size)
{
    buf[0] = 0;
    if (f->failures)
        snprintf(buf, size, " (%s of %s failed first)", store_io_name(f->first_op),
                 f->first_path);
}

/* Descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- the sweep ----------------------------------------------------------------- */

/* A run without failures, counting the hook's calls; every command 200. */
static long reference_calls(const char *dir, bool atomic, faults_t *f)
{
    thost_t h;
    omadm_platform_t p;
    store_io_t io = {hook, f};
    thost_init(&h, &p);
    memset(f, 0, sizeof *f);
    cm_run_t r;
    cm_run_clean(&r, dir, atomic, &p, &p, &io);
    cm_run_close(&r);
    assert_int_equal(h.outstanding, 0);
    return f->calls;
}

static void sweep(bool atomic, bool persistent)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/store", cm_tmp);
    faults_t f;
    long total = reference_calls(dir, atomic, &f);
    /* the message reaches every kind of file operation the store has */
    for (int op = 0; op < STORE_IO__COUNT; op++)
        if (!f.by_op[op])
            fail_msg("the message makes no %s call", store_io_name((store_io_op_t)op));

    cm_states_t states;
    cm_states_make(&states, dir, atomic);
    cm_stats_t st = {0};
    char *body = cm_test_body(atomic);
    long n;
    for (n = 1; n < 100000; n++) {
        free(cm_fresh_store(dir));
        int fds = open_fds();
        thost_t h;
        omadm_platform_t p;
        thost_init(&h, &p);
        memset(&f, 0, sizeof f);
        f.fail_at = n;
        f.persistent = persistent;
        store_io_t io = {hook, &f};
        cm_run_t r;
        cm_run_message(&r, dir, &p, &p, &io, 2, body);
        cm_count_run(&r, &st);
        if (r.stage && r.err != OMADM_E_STORAGE)
            fail_msg("N=%ld: %s failed with \"%s\"", n, r.stage, omadm_strerror(r.err));
        if (!r.stage && r.err != OMADM_OK && r.err != OMADM_E_STORAGE)
            fail_msg("N=%ld: omadm_process failed with \"%s\"", n, omadm_strerror(r.err));
        cm_run_close(&r); /* still under the hook: close may fail too */
        if (h.outstanding != 0)
            fail_msg("N=%ld (%s): %ld blocks of the host allocator outstanding after close", n,
                     store_io_name(f.first_op), h.outstanding);
        if (open_fds() != fds)
            fail_msg("N=%ld (%s of %s): %d file descriptors left open", n,
                     store_io_name(f.first_op), f.first_path, open_fds() - fds);
        char what[400];
        first_failure(&f, what, sizeof what);
        cm_check_after(&r, dir, &states, atomic, n, what, &st);
        if (f.failures == 0)
            break; /* the N-th call was never made: everything ran */
    }
    free(body);
    cm_states_free(&states);
    assert_true(n < 100000);
    print_message("%s%s: %ld runs (%ld file operations); failed: open %ld, process %ld; "
                  "replies %ld; store changed %ld (%ld by a message that failed after its "
                  "batch was durable), unchanged %ld\n",
                  atomic ? "Atomic" : "sequence", persistent ? ", persistent" : "", st.runs,
                  total, st.failed_open, st.failed_process, st.replies, st.changed,
                  st.failed_but_durable, st.unchanged);
    assert_true(st.failed_open > 0);
    assert_true(st.failed_process > 0);
    assert_true(st.unchanged > 0);
}

static void test_sequence_once(void **state)
{
    (void)state;
    sweep(false, false);
}

static void test_sequence_persistent(void **state)
{
    (void)state;
    sweep(false, true);
}

static void test_atomic_once(void **state)
{
    (void)state;
    sweep(true, false);
}

static void test_atomic_persistent(void **state)
{
    (void)state;
    sweep(true, true);
}

/* ---- recovery ------------------------------------------------------------- */

/* A store whose batch (the test message's changes, through the store API)
 * is durable in the journal but not applied: every file operation after
 * the journal's rename failed. */
static void pending_store(const char *dir)
{
    char thumb_inter[41];
    faults_t f = {.after_journal = true};
    store_io_t io = {hook, &f};
    store_t *s = NULL;
    const char *why = NULL;
    free(cm_fresh_store(dir));
    assert_int_equal(store_open_io(dir, NULL, &io, &s, &why), 0);
    memcpy(thumb_inter, cm_inter.thumb, sizeof thumb_inter);
    uint8_t *der = NULL;
    size_t der_len = 0;
    store_rec_t rec = {.name = thumb_inter, .server = "https://srv.example/dm", .added = T_NOW};
    memcpy(rec.thumb, thumb_inter, sizeof rec.thumb);
    der = tpki_read("inter.der", &der_len);
    assert_non_null(der);
    rec.der = der;
    rec.der_len = der_len;
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_put(s, "ca", &rec), 0);
    assert_int_equal(store_del(s, "root", cm_root.thumb), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_flush(s), 0); /* durable: it counts */
    assert_true(f.journal_done);
    store_close(s);
    free(der);
    char p[256];
    snprintf(p, sizeof p, "%s/journal", dir);
    assert_int_equal(access(p, F_OK), 0);
}

/* Opening a store with a durable journal (and reading from it) while the
 * N-th file operation fails, for every N: the store either recovers or
 * keeps the journal for the next open, and once opened without failures
 * it holds the whole batch, consistent (the replay is idempotent however
 * far a failed one got). */
static void recovery_sweep(bool persistent)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/recover", cm_tmp);
    pending_store(dir);
    store_t *s = NULL;
    const char *why = NULL;
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    store_close(s);
    char *want = tdir_listing(dir, NULL);
    long n, opened = 0, refused = 0;
    for (n = 1; n < 100000; n++) {
        pending_store(dir);
        int fds = open_fds();
        faults_t f = {.fail_at = n, .persistent = persistent};
        store_io_t io = {hook, &f};
        store_rec_t rec;
        s = NULL;
        if (store_open_io(dir, NULL, &io, &s, &why) == 0) {
            opened++;
            /* a read: recovers first when the open could not */
            int got = store_get(s, "ca", cm_inter.thumb, &rec);
            if (got == 0)
                store_rec_free(s, &rec);
            else if (got == 1)
                fail_msg("N=%ld: the intermediate of a durable batch read as absent", n);
            store_close(s);
        } else {
            refused++;
        }
        if (open_fds() != fds)
            fail_msg("N=%ld: %d file descriptors left open", n, open_fds() - fds);
        char what[400];
        first_failure(&f, what, sizeof what);
        cm_expect_state(dir, want, "the state of the batch", n, what);
        if (!f.failures)
            break;
    }
    assert_true(n < 100000);
    free(want);
    print_message("recovery%s: %ld runs; store opened %ld, refused %ld\n",
                  persistent ? ", persistent" : "", n, opened, refused);
    assert_true(refused > 0);
}

static void test_recovery_once(void **state)
{
    (void)state;
    recovery_sweep(false);
}

static void test_recovery_persistent(void **state)
{
    (void)state;
    recovery_sweep(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_once),
        cmocka_unit_test(test_sequence_persistent),
        cmocka_unit_test(test_atomic_once),
        cmocka_unit_test(test_atomic_persistent),
        cmocka_unit_test(test_recovery_once),
        cmocka_unit_test(test_recovery_persistent),
    };
    return cmocka_run_group_tests(tests, cm_group_setup, cm_group_teardown);
}
