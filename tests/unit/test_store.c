/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store.c - store/, the crash-safe certificate and key store, on a
 * real filesystem: every test gets a fresh directory under /tmp (removed
 * afterwards) and opens a store in <tmp>/store.
 *
 * Covered: the layout store_open creates; put/commit/flush/get (the name
 * as sent, server, added); lookups through the open transaction and
 * committed-but-unflushed changes; rollback; del (record and key);
 * refusals (outside a transaction, thumbprint mismatch); store_each
 * (staged and flushed records once each, newest op wins); private keys
 * (0600, get, del); the CApath directory (<hash>.0 holds the PEM, two
 * certificates with one subject get .0 and .1, deleting .0 moves .1
 * down); the PEM bundle (appended, deleted blocks blanked in place);
 * store_check on a good store and after tampering; journal recovery (a
 * complete journal is applied at open, an incomplete one dropped, a
 * journal.tmp removed, replay idempotent); store_open failures; a second
 * open in one process refused (-2, OMADM_E_BUSY) while another process
 * still makes it wait; state records (staged, pending, flushed, rolled
 * back, deleted, listed by prefix, name rules, 0600/0700, in one batch
 * with certificates, check, journal replay); the count of state records
 * by prefix (store_count_state) against the listing after every step of
 * a walk of changes; modes (set whatever the umask, reported and repaired
 * by store_check, restored by a write); certificate ingest (cert_decode):
 * a certificate not in DER refused in every armour, encrypted PEM refused
 * without a pass phrase prompt.
 *
 * Journals are written by hand in the format documented in
 * store/journal.c ("omadm-journal 1\n", W/A/O/U records, "E <sha256>\n"),
 * with file contents taken from a reference store that made the same
 * change through store_flush().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "omadm_certstore.h"
#include "platform.h"
#include "store/cert.h"
#include "store/journal.h"
#include "store/store.h"
#include "store/store_io.h"
#include "support_dir.h"
#include "support_pki.h"

/* ---- certificates ---- */

typedef struct tcert {
    const char *name;
    uint8_t *der;
    size_t der_len;
    char thumb[41];   /* uppercase */
    char lower[41];   /* lowercase spelling */
    char *pem;        /* as cert_pem / `openssl x509` write it */
    size_t pem_len;
    unsigned long hash;
} tcert_t;

enum { ROOT, INTER, LEAF, ROOT2, TEMPLATE, SAME_A, SAME_B, N_TCERTS };
static tcert_t certs[N_TCERTS];

/* The stores here are opened with the default platform table, whose
 * memory is libc's: what they hand out (keys, state records) is freed with
 * free().  The same table for the certificate helpers. */
static omadm_platform_t libc_plat;

static int load_cert(tcert_t *c, const char *name, uint8_t *der, size_t len)
{
    c->name = name;
    c->der = der;
    c->der_len = len;
    if (!der || cert_thumbprint(der, len, c->thumb) || cert_subject_hash(der, len, &c->hash))
        return -1;
    for (int i = 0; i < 41; i++)
        c->lower[i] = (char)(c->thumb[i] >= 'A' && c->thumb[i] <= 'F' ? c->thumb[i] + 32 : c->thumb[i]);
    c->pem = cert_pem(&libc_plat, der, len, &c->pem_len);
    return c->pem ? 0 : -1;
}

static int group_setup_certs(void);
static int group_setup(void **state)
{
    (void)state;
    plat_init(&libc_plat, NULL);
    if (group_setup_certs()) {
        fprintf(stderr, "test_store: cannot load the test PKI (tests/data/pki)\n");
        return -1;
    }
    return 0;
}

static int group_setup_certs(void)
{
    static const char *const names[] = {"root", "inter", "leaf", "root2", "template"};
    for (int i = 0; i < 5; i++) {
        char file[32], sha1[41];
        size_t len = 0;
        snprintf(file, sizeof file, "%s.der", names[i]);
        uint8_t *der = tpki_read(file, &len);
        if (load_cert(&certs[i], names[i], der, len) || tpki_thumb(names[i], sha1) ||
            strcmp(sha1, certs[i].thumb))
            return -1;
        /* the PEM the store writes is what openssl wrote */
        snprintf(file, sizeof file, "%s.pem", names[i]);
        uint8_t *pem = tpki_read(file, &len);
        int same = pem && len == certs[i].pem_len && !memcmp(pem, certs[i].pem, len);
        free(pem);
        if (!same)
            return -1;
    }
    /* two self-signed certificates with one subject (none of the fixed
     * PKI share one), made here */
    for (int i = SAME_A; i <= SAME_B; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        if (tpki_make_cert("Unit Test", "Same Subject", 100 + i, &der, &len) ||
            load_cert(&certs[i], i == SAME_A ? "same-a" : "same-b", der, len))
            return -1;
    }
    if (certs[SAME_A].hash != certs[SAME_B].hash || !strcmp(certs[SAME_A].thumb, certs[SAME_B].thumb))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_TCERTS; i++) {
        free(certs[i].der);
        free(certs[i].pem);
    }
    memset(certs, 0, sizeof certs);
    return 0;
}

/* ---- files ---- */

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int mode_of(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : (int)(st.st_mode & 07777);
}

static long size_of(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_size;
}

static char *slurp(const char *p, size_t *len)
{
    size_t n = 0;
    char *data = (char *)tpki_slurp(p, &n);
    if (len)
        *len = n;
    return data;
}

static void spew(const char *p, const void *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Entries of a directory (no . and ..), sorted, joined by spaces. */
static char *listing(const char *dir)
{
    struct dirent **v = NULL;
    int n = scandir(dir, &v, NULL, alphasort);
    char *out = calloc(1, 1);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i]->d_name, ".") && strcmp(v[i]->d_name, "..")) {
            size_t k = strlen(v[i]->d_name);
            out = realloc(out, len + k + 2);
            if (len)
                out[len++] = ' ';
            memcpy(out + len, v[i]->d_name, k + 1);
            len += k;
        }
        free(v[i]);
    }
    free(v);
    return out;
}

/* ---- fixture ---- */

typedef struct fixture {
    char tmp[64];
    char dir[128]; /* <tmp>/store */
    store_t *s;
    /* freed by teardown, so that a failing assertion leaks nothing */
    store_rec_t rec;
    void *owned[4];
    char *state_buf, *names_buf; /* the last state record / name list read */
} fixture_t;

static void *own(fixture_t *f, void *p)
{
    for (int i = 0; i < 4; i++)
        if (!f->owned[i]) {
            f->owned[i] = p;
            return p;
        }
    fail_msg("own: no room");
    return p;
}

/* A path below the store directory (8 rotating buffers). */
static const char *at(const fixture_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *at(const fixture_t *f, const char *fmt, ...)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/", f->dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, PATH_MAX - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/omadm-test-store.XXXXXX");
    if (!mkdtemp(f->tmp)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/store", f->tmp);
    const char *why = NULL;
    if (store_open(f->dir, NULL, &f->s, &why)) {
        fprintf(stderr, "store_open: %s\n", why);
        tdir_rm(f->tmp);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->s)
        store_rec_free(f->s, &f->rec);
    store_close(f->s);
    for (int i = 0; i < 4; i++)
        free(f->owned[i]);
    free(f->state_buf);
    free(f->names_buf);
    tdir_rm(f->tmp);
    free(f);
    return 0;
}

static void reopen(fixture_t *f)
{
    const char *why = NULL;
    store_close(f->s);
    f->s = NULL;
    if (store_open(f->dir, NULL, &f->s, &why))
        fail_msg("store_open: %s", why ? why : "?");
}

/* Copy a path out of at()'s rotating buffers. */
static void keep(char buf[PATH_MAX], const char *p)
{
    snprintf(buf, PATH_MAX, "%s", p);
}

/* ---- store helpers ---- */

static store_rec_t rec_of(const tcert_t *c, const char *thumb, const char *name,
                          const char *server, int64_t added)
{
    store_rec_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.thumb, sizeof r.thumb, "%s", thumb ? thumb : c->thumb);
    r.name = (char *)name;
    r.server = (char *)server;
    r.added = added;
    r.der = c->der;
    r.der_len = c->der_len;
    return r;
}

static int put(fixture_t *f, const char *store, const tcert_t *c)
{
    store_rec_t r = rec_of(c, NULL, c->thumb, "srv", 1700000000);
    return store_put(f->s, store, &r);
}

/* begin, put, commit, flush */
static void put1(fixture_t *f, const char *store, const tcert_t *c)
{
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, store, c), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
}

static void del1(fixture_t *f, const char *store, const tcert_t *c)
{
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, store, c->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
}

static bool present(fixture_t *f, const char *store, const tcert_t *c)
{
    store_rec_t r;
    int rc = store_get(f->s, store, c->thumb, &r);
    assert_in_range(rc, 0, 1);
    if (rc == 0) {
        assert_string_equal(r.thumb, c->thumb);
        assert_int_equal(r.der_len, c->der_len);
        assert_memory_equal(r.der, c->der, c->der_len);
        store_rec_free(f->s, &r);
    }
    return rc == 0;
}

static void print_problem(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "  store_check: %s\n", problem);
}

static int problems(fixture_t *f)
{
    return store_check(f->s, 0, print_problem, NULL);
}

/* store_check finds nothing, and no journal is left behind. */
static void assert_clean(fixture_t *f)
{
    assert_int_equal(problems(f), 0);
    assert_false(exists(at(f, "journal")));
    assert_false(exists(at(f, "journal.tmp")));
}

static long count_begin_lines(const char *p)
{
    FILE *fp = fopen(p, "r");
    char line[512];
    long n = 0;
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp))
        n += !strncmp(line, "-----BEGIN CERTIFICATE-----", 27);
    fclose(fp);
    return n;
}

typedef struct seen {
    int n;
    char thumb[16][41];
    char name[16][128];
    char server[16][64];
    int64_t added[16];
    int stop_after; /* return 1 from the callback after this many (0: never) */
} seen_t;

static int collect(void *ctx, const store_rec_t *rec)
{
    seen_t *s = ctx;
    if (s->n < 16) {
        snprintf(s->thumb[s->n], 41, "%s", rec->thumb);
        snprintf(s->name[s->n], 128, "%s", rec->name);
        snprintf(s->server[s->n], 64, "%s", rec->server);
        s->added[s->n] = rec->added;
        char check[41];
        assert_int_equal(cert_thumbprint(rec->der, rec->der_len, check), 0);
        assert_string_equal(check, rec->thumb);
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

/* How many times store_each reported c. */
static int times_seen(const seen_t *s, const tcert_t *c)
{
    int n = 0;
    for (int i = 0; i < s->n && i < 16; i++)
        n += !strcmp(s->thumb[i], c->thumb);
    return n;
}

static seen_t each(fixture_t *f, const char *store)
{
    seen_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(store_each(f->s, store, collect, &s), 0);
    return s;
}

/* The PEM with every byte but the newlines replaced by spaces. */
static char *blanked(const tcert_t *c)
{
    char *b = malloc(c->pem_len + 1);
    for (size_t i = 0; i < c->pem_len; i++)
        b[i] = c->pem[i] == '\n' ? '\n' : ' ';
    b[c->pem_len] = 0;
    return b;
}

static const char *capath_file(fixture_t *f, const char *store, const tcert_t *c, int idx)
{
    return at(f, "trust/%s/%08lx.%d", store, c->hash, idx);
}

static void assert_file_is(const char *p, const char *want, size_t want_len)
{
    size_t len = 0;
    char *got = slurp(p, &len);
    if (!got)
        fail_msg("%s: cannot read", p);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
}

/* ======== layout ======== */

static void test_open_creates_layout(void **state)
{
    fixture_t *f = *state;
    size_t n = 0;
    const store_kind_t *k = store_kinds(&n);
    assert_int_equal(n, 11);
    assert_true(is_dir(f->dir));
    assert_true(is_dir(at(f, "keys")));
    assert_int_equal(mode_of(at(f, "keys")), 0700);
    int trust = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(is_dir(at(f, "certs/%s", k[i].id)));
        if (k[i].trust) {
            trust++;
            assert_true(is_dir(at(f, "trust/%s", k[i].id)));
            assert_int_equal(size_of(at(f, "trust/%s.pem", k[i].id)), 0);
            char *l = listing(at(f, "trust/%s", k[i].id));
            assert_string_equal(l, "");
            free(l);
        } else {
            assert_false(exists(at(f, "trust/%s", k[i].id)));
            assert_false(exists(at(f, "trust/%s.pem", k[i].id)));
        }
        char buf[PATH_MAX];
        assert_int_equal(store_capath(f->s, k[i].id, buf, sizeof buf), 0);
        assert_string_equal(buf, at(f, "trust/%s", k[i].id));
        assert_int_equal(store_bundle(f->s, k[i].id, buf, sizeof buf), 0);
        assert_string_equal(buf, at(f, "trust/%s.pem", k[i].id));
    }
    assert_int_equal(trust, 9);
    assert_false(exists(at(f, "certs/my-user.pem")));
    assert_false(exists(at(f, "journal")));
    assert_string_equal(store_dir(f->s), f->dir);
    assert_false(store_in_tx(f->s));
    assert_clean(f);

    /* every store is empty */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(each(f, k[i].id).n, 0);

    /* opening again keeps it as it is, and puts a loosened key directory
     * back to 0700 */
    assert_int_equal(chmod(at(f, "keys"), 0755), 0);
    reopen(f);
    assert_int_equal(mode_of(at(f, "keys")), 0700);
    assert_clean(f);

    /* the store kinds, by id and label */
    assert_string_equal(store_kind_find("root")->id, "root");
    assert_string_equal(store_kind_find("Root/System")->id, "root");
    assert_string_equal(store_kind_find("ROOT/SYSTEM")->id, "root");
    assert_string_equal(store_kind_find("my/user")->id, "my-user");
    assert_false(store_kind_find("my-user")->trust);
    assert_false(store_kind_find("my-system")->trust);
    assert_true(store_kind_find("CA")->trust);
    assert_null(store_kind_find("nosuch"));
    assert_null(store_kind_find(""));
}

/* A second open of a store this process holds open would wait for the
 * process itself (flock on another open file description): it is refused
 * at once, by any path to the store, and works again after the close. */
static void test_open_twice_in_one_process(void **state)
{
    fixture_t *f = *state;
    char other[PATH_MAX], via_dot[PATH_MAX], link[PATH_MAX];
    snprintf(via_dot, sizeof via_dot, "%s/./store/", f->tmp);
    snprintf(link, sizeof link, "%s/link", f->tmp);
    assert_int_equal(symlink(f->dir, link), 0);
    const char *spellings[] = {f->dir, via_dot, link};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        store_t *s = (store_t *)1;
        const char *why = NULL;
        assert_int_equal(store_open(spellings[i], NULL, &s, &why), -2);
        assert_null(s);
        assert_non_null(why);
        assert_string_equal(why, "store already open in this process");
    }
    /* the first handle is unharmed */
    put1(f, "root", &certs[ROOT]);
    assert_true(present(f, "root", &certs[ROOT]));

    /* another store opens beside it */
    snprintf(other, sizeof other, "%s/other", f->tmp);
    store_t *o = NULL;
    const char *why = NULL;
    assert_int_equal(store_open(other, NULL, &o, &why), 0);
    assert_int_equal(store_open(other, NULL, &(store_t *){NULL}, &why), -2);
    store_close(o);

    /* closed: it opens again, through any path */
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(link, NULL, &f->s, &why), 0);
    assert_true(present(f, "root", &certs[ROOT]));
    assert_int_equal(store_open(f->dir, NULL, &o, &why), -2);
    reopen(f);
    assert_clean(f);
}

/* Another process holding the store still makes store_open wait (until it
 * closes), as before. */
static void test_open_waits_for_another_process(void **state)
{
    fixture_t *f = *state;
    store_close(f->s);
    f->s = NULL;
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *s = NULL;
        const char *why = NULL;
        close(ready[0]);
        if (store_open(f->dir, NULL, &s, &why))
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        usleep(300 * 1000);
        store_close(s);
        _exit(0);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *why = NULL;
    assert_int_equal(store_open(f->dir, NULL, &f->s, &why), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (waited < 0.2)
        fail_msg("store_open returned after %.3f s while another process held the store", waited);
    assert_clean(f);
}

/* The public API says the same with OMADM_E_BUSY. */
static void test_certstore_open_twice_is_busy(void **state)
{
    fixture_t *f = *state;
    omadm_certstore_t *cs = (omadm_certstore_t *)1;
    const char *why = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &cs, &why), OMADM_E_BUSY);
    assert_null(cs);
    assert_string_equal(why, "store already open in this process");
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &cs, &why), OMADM_OK);
    omadm_certstore_t *again = NULL;
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &again, &why), OMADM_E_BUSY);
    assert_null(again);
    omadm_certstore_close(cs);
    assert_int_equal(omadm_certstore_open(f->dir, NULL, &cs, &why), OMADM_OK);
    omadm_certstore_close(cs);
    reopen(f);
}

static void test_open_fails_on_uncreatable_path(void **state)
{
    fixture_t *f = *state;
    char file[PATH_MAX], p[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/plain-file", f->tmp);
    spew(file, "x", 1);
    /* below a regular file */
    snprintf(p, sizeof p, "%s/store", file);
    store_t *s = (store_t *)1;
    const char *why = NULL;
    assert_int_equal(store_open(p, NULL, &s, &why), -1);
    assert_null(s);
    assert_non_null(why);
    assert_true(*why);
    /* a regular file itself */
    s = (store_t *)1;
    why = NULL;
    assert_int_equal(store_open(file, NULL, &s, &why), -1);
    assert_null(s);
    assert_non_null(why);
    assert_true(*why);
    /* deeper below a regular file */
    snprintf(p, sizeof p, "%s/a/b/c", file);
    why = NULL;
    assert_int_equal(store_open(p, NULL, &s, &why), -1);
    assert_null(s);
    assert_non_null(why);
}

static void test_open_on_regular_file_leaves_it_alone(void **state)
{
    fixture_t *f = *state;
    /* a failed open changes nothing: the file keeps its mode */
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/plain-file", f->tmp);
    spew(file, "x", 1);
    assert_int_equal(chmod(file, 0644), 0);
    store_t *s = (store_t *)1;
    const char *why = NULL;
    assert_int_equal(store_open(file, NULL, &s, &why), -1);
    assert_null(s);
    assert_non_null(why);
    assert_int_equal(mode_of(file), 0644);
}

static void test_open_fails_on_too_long_path(void **state)
{
    fixture_t *f = *state;
    /* a path no buffer holds: refused, with a reason that is not "Success" */
    size_t n = 5000;
    char *p = own(f, malloc(n + 1));
    int w = snprintf(p, n + 1, "%s/", f->tmp);
    memset(p + w, 'a', n - (size_t)w);
    p[n] = 0;
    for (size_t i = (size_t)w + 200; i < n; i += 200)
        p[i] = '/';
    store_t *s = (store_t *)1;
    const char *why = NULL;
    errno = 0;
    assert_int_equal(store_open(p, NULL, &s, &why), -1);
    assert_null(s);
    assert_non_null(why);
    assert_true(*why);
    assert_string_not_equal(why, strerror(0));
}

/* ======== put / get / del ======== */

static void test_put_commit_flush_get(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    /* the server spelled the node name in lowercase */
    store_rec_t in = rec_of(c, c->lower, c->lower, "server-1", 1767225600);
    assert_int_equal(store_begin(f->s), 0);
    assert_true(store_in_tx(f->s));
    assert_int_equal(store_put(f->s, "root", &in), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_false(store_in_tx(f->s));
    assert_int_equal(store_flush(f->s), 0);

    /* one record file, named by the uppercase thumbprint */
    char *l = listing(at(f, "certs/root"));
    assert_string_equal(l, c->thumb);
    free(l);
    assert_clean(f);

    for (int pass = 0; pass < 2; pass++) {
        /* any spelling of the thumbprint, the store by id or label */
        const char *spellings[] = {c->thumb, c->lower};
        const char *stores[] = {"root", "Root/System"};
        for (int i = 0; i < 2; i++) {
            store_rec_t r;
            assert_int_equal(store_get(f->s, stores[i], spellings[i], &r), 0);
            assert_string_equal(r.thumb, c->thumb);
            assert_string_equal(r.name, c->lower);
            assert_string_equal(r.server, "server-1");
            assert_int_equal(r.added, 1767225600);
            assert_int_equal(r.der_len, c->der_len);
            assert_memory_equal(r.der, c->der, c->der_len);
            store_rec_free(f->s, &r);
            assert_null(r.name);
            assert_null(r.der);
        }
        /* not in the other stores */
        store_rec_t r;
        assert_int_equal(store_get(f->s, "ca", c->thumb, &r), 1);
        assert_int_equal(store_get(f->s, "my-user", c->thumb, &r), 1);
        assert_int_equal(store_get(f->s, "nosuch", c->thumb, &r), 1);
        assert_int_equal(store_get(f->s, "root", certs[INTER].thumb, &r), 1);
        assert_int_equal(store_get(f->s, "root", "not-a-thumbprint", &r), 1);
        /* and after reopening */
        reopen(f);
    }

    /* a name left NULL is the thumbprint, a NULL server is "" */
    store_rec_t in2 = rec_of(&certs[INTER], NULL, NULL, NULL, 5);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "ca", &in2), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    store_rec_t r;
    assert_int_equal(store_get(f->s, "ca", certs[INTER].lower, &r), 0);
    assert_string_equal(r.name, certs[INTER].thumb);
    assert_string_equal(r.server, "");
    assert_int_equal(r.added, 5);
    store_rec_free(f->s, &r);
    assert_clean(f);
}

static void test_record_fields_round_trip(void **state)
{
    fixture_t *f = *state;
    /* node names and server ids with what the record file must escape */
    static const struct {
        const char *name, *server;
        int64_t added;
    } cases[] = {
        {"name with spaces", "server with spaces", 0},
        {"100%", "%41%", -1},
        {"line\nbreak\r\ttab", "a\nb", 4102444800LL},
        {"Pr\xc3\xbc" "fung \xe2\x82\xac", "\xc3\xa9t\xc3\xa9", 1},
        {"", "", 2},
        {"%", "%%", 9223372036854775807LL},
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    const tcert_t *c = &certs[ROOT];
    for (int i = 0; i < n; i++) {
        store_rec_t in = rec_of(c, NULL, cases[i].name, cases[i].server, cases[i].added);
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_put(f->s, "my-system", &in), 0);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_flush(f->s), 0);
        reopen(f);
        store_rec_t r;
        assert_int_equal(store_get(f->s, "my-system", c->thumb, &r), 0);
        assert_string_equal(r.name, cases[i].name);
        assert_string_equal(r.server, cases[i].server);
        assert_int_equal(r.added, cases[i].added);
        store_rec_free(f->s, &r);
        assert_clean(f);
    }
}

/* Replace the line of a record file that starts with "\n<key> " by
 * "\n<line>" (NULL: remove it); the record must have that line. */
static void edit_record_line(const char *rp, const char *key, const char *line)
{
    size_t len = 0;
    char *text = slurp(rp, &len);
    char find[64];
    snprintf(find, sizeof find, "\n%s ", key);
    char *at_line = strstr(text, find);
    assert_non_null(at_line);
    char *end = strchr(at_line + 1, '\n');
    assert_non_null(end);
    size_t n = strlen(text) + (line ? strlen(line) : 0) + 2;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s%s", (int)(at_line - text), text, line ? "\n" : "", line ? line : "",
             end);
    spew(rp, out, strlen(out));
    free(out);
    free(text);
}

/* A record keeps what listings show (names, dates, template, subject hash),
 * taken from the DER when it was stored, so that reading it needs no
 * parse; a record without them (written before they were kept) still
 * reads, and fields a later version adds are skipped. */
static void test_record_keeps_what_listings_show(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[TEMPLATE];
    put1(f, "root", c);
    char rp[PATH_MAX];
    keep(rp, at(f, "certs/root/%s", c->thumb));
    size_t len = 0;
    char *text = slurp(rp, &len);
    char hash_line[40];
    snprintf(hash_line, sizeof hash_line, "\nsubject_hash %08lx\n", c->hash);
    assert_non_null(strstr(text, hash_line));
    assert_non_null(strstr(text, "\nissued_to "));
    free(text);

    cert_info_t want;
    assert_int_equal(cert_info_from_der(&libc_plat, c->der, c->der_len, &want), 0);
    assert_true(want.template_name[0]); /* the certificate with a template */
    for (int pass = 0; pass < 2; pass++) {
        store_rec_t r;
        assert_int_equal(store_get(f->s, "root", c->thumb, &r), 0);
        assert_non_null(r.info);
        assert_string_equal(r.info->thumb, c->thumb);
        assert_string_equal(r.info->issued_by, want.issued_by);
        assert_string_equal(r.info->issued_to, want.issued_to);
        assert_string_equal(r.info->valid_from, want.valid_from);
        assert_string_equal(r.info->valid_to, want.valid_to);
        assert_string_equal(r.info->template_name, want.template_name);
        assert_int_equal(r.info->subject_hash, c->hash);
        store_rec_free(f->s, &r);
        reopen(f);
    }
    cert_info_free(&libc_plat, &want);

    /* a field of a later version is skipped */
    edit_record_line(rp, "added", "added 1700000000\nfuture_field some value");
    reopen(f);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_non_null(f->rec.info);
    store_rec_free(f->s, &f->rec);
    assert_clean(f);

    /* an older record: no derived fields, derived again when asked */
    static const char *const derived[] = {"issued_by", "issued_to", "valid_from", "valid_to",
                                          "template", "subject_hash"};
    for (size_t i = 0; i < 6; i++)
        edit_record_line(rp, derived[i], NULL);
    reopen(f);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_null(f->rec.info);
    assert_int_equal(f->rec.der_len, c->der_len);
    store_rec_free(f->s, &f->rec);
    assert_clean(f);

    /* the next write of the record keeps them again */
    put1(f, "root", c);
    reopen(f);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_non_null(f->rec.info);
    store_rec_free(f->s, &f->rec);
    assert_clean(f);

    /* a derived field that does not parse makes the record damaged */
    edit_record_line(rp, "subject_hash", "subject_hash not-hex");
    reopen(f);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), -1);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

/* store_check compares the kept fields with the DER. */
static void test_check_kept_fields_differ(void **state)
{
    fixture_t *f = *state;
    static const char *const lines[][2] = {
        {"issued_to", "issued_to CN=Someone%20Else"},
        {"valid_to", "valid_to 2099-01-01T00:00:00Z"},
        {"template", "template Other"},
        {"subject_hash", "subject_hash 0badf00d"},
    };
    for (size_t i = 0; i < 4; i++) {
        put1(f, "ca", &certs[INTER]);
        assert_clean(f);
        char rp[PATH_MAX];
        keep(rp, at(f, "certs/ca/%s", certs[INTER].thumb));
        edit_record_line(rp, lines[i][0], lines[i][1]);
        reopen(f);
        assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    }
}

/* store_get keeps the last record it read from the disk (a listing reads
 * each certificate's record once per leaf); what changes the disk drops
 * it: a flush, and the lock given up (another process may write). */
static void test_get_after_the_disk_changed(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    put1(f, "root", c);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_string_equal(f->rec.name, c->thumb);
    store_rec_free(f->s, &f->rec);

    store_rec_t in = rec_of(c, NULL, "renamed", "srv", 1);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "root", &in), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_string_equal(f->rec.name, "renamed");
    store_rec_free(f->s, &f->rec);

    /* another process renames it while this one has given up the lock
     * (written here in place, as that process's flush would) */
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    store_rec_free(f->s, &f->rec);
    assert_int_equal(store_unlock(f->s), 0);
    char rp[PATH_MAX];
    keep(rp, at(f, "certs/root/%s", c->thumb));
    edit_record_line(rp, "name", "name by-another");
    assert_int_equal(store_relock(f->s), 0);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_string_equal(f->rec.name, "by-another");
    store_rec_free(f->s, &f->rec);
    assert_clean(f);
}

/* Whether this process has a descriptor open on the directory p. */
static bool dir_held_open(const char *p)
{
    char real[PATH_MAX], fdp[300], target[PATH_MAX];
    assert_non_null(realpath(p, real));
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    bool held = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        snprintf(fdp, sizeof fdp, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(fdp, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            held |= !strcmp(target, real);
        }
    }
    closedir(d);
    return held;
}

/* Lookups read records relative to certs/<store>, kept open while the
 * lock is held: given up with the lock (another process may even put a
 * new directory in its place meanwhile: it is the one read after
 * store_relock), and with a flush. */
static void test_get_reads_the_directory_anew(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    put1(f, "root", c);
    char dir[PATH_MAX], old[PATH_MAX], rp[PATH_MAX];
    keep(dir, at(f, "certs/root"));
    keep(old, at(f, "certs/root.old"));
    keep(rp, at(f, "certs/root/%s", c->thumb));
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    store_rec_free(f->s, &f->rec);
    assert_true(dir_held_open(dir));
    assert_int_equal(store_unlock(f->s), 0);
    assert_false(dir_held_open(dir));
    /* another process puts a new directory in its place */
    size_t len = 0;
    char *text = slurp(rp, &len);
    assert_int_equal(rename(dir, old), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    spew(rp, text, len);
    free(text);
    edit_record_line(rp, "name", "name in-a-new-directory");
    assert_int_equal(store_relock(f->s), 0);
    assert_int_equal(store_get(f->s, "root", c->thumb, &f->rec), 0);
    assert_string_equal(f->rec.name, "in-a-new-directory");
    store_rec_free(f->s, &f->rec);
    assert_true(dir_held_open(dir));
    assert_false(dir_held_open(old));
    /* a flush closes it too */
    put1(f, "root", &certs[ROOT2]);
    assert_false(dir_held_open(dir));
    tdir_rm(old);
}

static void test_record_server_dash_round_trip(void **state)
{
    fixture_t *f = *state;
    /* the record file writes an empty server as "-": a server id that is
     * "-" itself must still come back as "-" (and a name "-" as "-") */
    const tcert_t *c = &certs[ROOT];
    store_rec_t in = rec_of(c, NULL, "-", "-", 3);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "my-system", &in), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_int_equal(store_get(f->s, "my-system", c->thumb, &f->rec), 0);
    assert_string_equal(f->rec.name, "-");
    assert_string_equal(f->rec.server, "-");
}

static void test_get_sees_transaction_and_pending(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[ROOT], *b = &certs[ROOT2];
    char rec_a[PATH_MAX];
    keep(rec_a, at(f, "certs/root/%s", a->thumb));

    /* staged in the open transaction */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", a), 0);
    assert_true(present(f, "root", a));
    assert_false(exists(rec_a));
    /* committed, not flushed */
    assert_int_equal(store_commit(f->s), 0);
    assert_true(present(f, "root", a));
    assert_false(exists(rec_a));
    assert_int_equal(size_of(at(f, "trust/root.pem")), 0);
    /* a second transaction on top of the pending one */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", b), 0);
    assert_true(present(f, "root", a));
    assert_true(present(f, "root", b));
    assert_int_equal(store_del(f->s, "root", a->thumb), 0);
    assert_false(present(f, "root", a)); /* the transaction's delete hides the pending put */
    store_rollback(f->s);
    assert_true(present(f, "root", a));
    assert_false(present(f, "root", b));
    assert_int_equal(store_flush(f->s), 0);
    assert_true(exists(rec_a));
    assert_true(present(f, "root", a));

    /* a delete: in the transaction, pending, flushed */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", a->lower), 0);
    assert_false(present(f, "root", a));
    assert_int_equal(store_commit(f->s), 0);
    assert_false(present(f, "root", a));
    assert_true(exists(rec_a));
    assert_int_equal(store_flush(f->s), 0);
    assert_false(present(f, "root", a));
    assert_false(exists(rec_a));

    /* a re-put in the transaction over a pending delete */
    put1(f, "root", a);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", a->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    store_rec_t in = rec_of(a, NULL, "renamed", "srv2", 7);
    assert_int_equal(store_put(f->s, "root", &in), 0);
    store_rec_t r;
    assert_int_equal(store_get(f->s, "root", a->thumb, &r), 0);
    assert_string_equal(r.name, "renamed");
    store_rec_free(f->s, &r);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_int_equal(store_get(f->s, "root", a->thumb, &r), 0);
    assert_string_equal(r.name, "renamed");
    assert_string_equal(r.server, "srv2");
    store_rec_free(f->s, &r);
    assert_clean(f);
}

static void test_rollback_discards(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT]), 0);
    assert_int_equal(store_put_key(f->s, "root", certs[ROOT].thumb, "KEY"), 0);
    assert_int_equal(put(f, "my-user", &certs[LEAF]), 0);
    store_rollback(f->s);
    assert_false(store_in_tx(f->s));
    assert_false(present(f, "root", &certs[ROOT]));
    assert_false(present(f, "my-user", &certs[LEAF]));
    assert_null(store_get_key(f->s, "root", certs[ROOT].thumb));
    assert_int_equal(each(f, "root").n, 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(size_of(at(f, "trust/root.pem")), 0);
    char *l = listing(at(f, "certs/root"));
    assert_string_equal(l, "");
    free(l);
    l = listing(at(f, "keys"));
    assert_string_equal(l, "");
    free(l);

    /* a rollback keeps what earlier transactions committed */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT2]), 0);
    assert_int_equal(store_del(f->s, "root", certs[ROOT].thumb), 0);
    store_rollback(f->s);
    assert_int_equal(store_flush(f->s), 0);
    assert_true(present(f, "root", &certs[ROOT]));
    assert_false(present(f, "root", &certs[ROOT2]));
    l = listing(at(f, "certs/root"));
    assert_string_equal(l, certs[ROOT].thumb);
    free(l);
    /* rollback with no transaction is harmless */
    store_rollback(f->s);
    assert_clean(f);
}

static void test_del_removes_record_and_key(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", c), 0);
    assert_int_equal(store_put_key(f->s, "root", c->thumb, "-----BEGIN PRIVATE KEY-----\n"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_true(exists(at(f, "certs/root/%s", c->thumb)));
    assert_true(exists(at(f, "keys/root-%s", c->thumb)));
    assert_true(exists(capath_file(f, "root", c, 0)));
    assert_clean(f);

    del1(f, "root", c);
    assert_false(present(f, "root", c));
    assert_null(store_get_key(f->s, "root", c->thumb));
    assert_false(exists(at(f, "certs/root/%s", c->thumb)));
    assert_false(exists(at(f, "keys/root-%s", c->thumb)));
    assert_false(exists(capath_file(f, "root", c, 0)));
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 0);
    assert_clean(f);

    /* deleting what is not there is not an error and changes nothing */
    del1(f, "root", c);
    del1(f, "my-user", &certs[LEAF]);
    assert_clean(f);
}

static void test_refused_outside_transaction(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    assert_int_equal(put(f, "root", c), -1);
    assert_int_equal(store_del(f->s, "root", c->thumb), -1);
    assert_int_equal(store_put_key(f->s, "root", c->thumb, "KEY"), -1);
    assert_int_equal(store_commit(f->s), -1);
    assert_false(present(f, "root", c));
    assert_null(store_get_key(f->s, "root", c->thumb));
    /* a transaction does not nest */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_begin(f->s), -1);
    assert_true(store_in_tx(f->s));
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_commit(f->s), -1);
    /* after a commit, writes are refused again */
    assert_int_equal(put(f, "root", c), -1);
    assert_int_equal(store_flush(f->s), 0);
    char *l = listing(at(f, "certs/root"));
    assert_string_equal(l, "");
    free(l);
    assert_clean(f);
}

static void test_put_thumbprint_mismatch_fails(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    assert_int_equal(store_begin(f->s), 0);
    /* another certificate's thumbprint */
    store_rec_t r = rec_of(c, certs[INTER].thumb, "x", "s", 1);
    assert_int_equal(store_put(f->s, "root", &r), -1);
    /* off by one digit */
    char near[41];
    memcpy(near, c->thumb, 41);
    near[39] = near[39] == '0' ? '1' : '0';
    r = rec_of(c, near, "x", "s", 1);
    assert_int_equal(store_put(f->s, "root", &r), -1);
    /* not a thumbprint */
    r = rec_of(c, "xyz", "x", "s", 1);
    assert_int_equal(store_put(f->s, "root", &r), -1);
    r = rec_of(c, "", "x", "s", 1);
    assert_int_equal(store_put(f->s, "root", &r), -1);
    /* an unknown store, keys and deletes with a bad thumbprint */
    assert_int_equal(put(f, "nosuch", c), -1);
    assert_int_equal(store_del(f->s, "root", "xyz"), -1);
    assert_int_equal(store_del(f->s, "nosuch", c->thumb), -1);
    assert_int_equal(store_put_key(f->s, "root", "xyz", "KEY"), -1);
    assert_int_equal(store_put_key(f->s, "nosuch", c->thumb, "KEY"), -1);
    /* nothing was staged; the transaction is still usable */
    assert_true(store_in_tx(f->s));
    assert_false(present(f, "root", c));
    assert_false(present(f, "root", &certs[INTER]));
    assert_int_equal(each(f, "root").n, 0);
    /* the right thumbprint in lowercase is fine */
    r = rec_of(c, c->lower, "x", "s", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    char *l = listing(at(f, "certs/root"));
    assert_string_equal(l, c->thumb);
    free(l);
    assert_clean(f);
}

static void test_put_copies_the_record(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[LEAF];
    uint8_t *der = malloc(c->der_len);
    memcpy(der, c->der, c->der_len);
    char name[] = "my name", server[] = "my server";
    store_rec_t r = rec_of(c, NULL, name, server, 1);
    r.der = der;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "my-user", &r), 0);
    /* the caller's buffers change afterwards */
    memset(der, 0, c->der_len);
    free(der);
    name[0] = 'X';
    server[0] = 'X';
    assert_int_equal(store_commit(f->s), 0);
    store_rec_t got;
    assert_int_equal(store_get(f->s, "my-user", c->thumb, &got), 0);
    assert_string_equal(got.name, "my name");
    assert_string_equal(got.server, "my server");
    assert_memory_equal(got.der, c->der, c->der_len);
    store_rec_free(f->s, &got);
    assert_int_equal(store_flush(f->s), 0);
    assert_true(present(f, "my-user", c));
    assert_clean(f);
}

/* ======== store_each ======== */

static void test_each_lists_staged_and_flushed_once(void **state)
{
    fixture_t *f = *state;
    const tcert_t *root = &certs[ROOT], *root2 = &certs[ROOT2], *inter = &certs[INTER],
                  *tmpl = &certs[TEMPLATE], *leaf = &certs[LEAF];
    /* on disk: root, root2, inter */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", root), 0);
    assert_int_equal(put(f, "root", root2), 0);
    assert_int_equal(put(f, "root", inter), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    seen_t s = each(f, "root");
    assert_int_equal(s.n, 3);
    assert_int_equal(times_seen(&s, root), 1);
    assert_int_equal(times_seen(&s, root2), 1);
    assert_int_equal(times_seen(&s, inter), 1);

    /* pending: root renamed, template added, root2 deleted */
    assert_int_equal(store_begin(f->s), 0);
    store_rec_t r = rec_of(root, NULL, "pending-name", "srv", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(put(f, "root", tmpl), 0);
    assert_int_equal(store_del(f->s, "root", root2->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    /* open transaction: root renamed again, leaf added, inter deleted,
     * root2 put back */
    assert_int_equal(store_begin(f->s), 0);
    r = rec_of(root, NULL, "tx-name", "srv", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(put(f, "root", leaf), 0);
    assert_int_equal(store_del(f->s, "root", inter->thumb), 0);
    assert_int_equal(put(f, "root", root2), 0);
    /* something in another store does not show */
    assert_int_equal(put(f, "ca", &certs[SAME_A]), 0);

    s = each(f, "root");
    assert_int_equal(s.n, 4);
    assert_int_equal(times_seen(&s, root), 1);
    assert_int_equal(times_seen(&s, root2), 1);
    assert_int_equal(times_seen(&s, tmpl), 1);
    assert_int_equal(times_seen(&s, leaf), 1);
    assert_int_equal(times_seen(&s, inter), 0);
    for (int i = 0; i < s.n; i++)
        if (!strcmp(s.thumb[i], root->thumb))
            assert_string_equal(s.name[i], "tx-name");

    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    s = each(f, "root");
    assert_int_equal(s.n, 4);
    assert_int_equal(times_seen(&s, root), 1);
    assert_int_equal(times_seen(&s, root2), 1);
    assert_int_equal(times_seen(&s, tmpl), 1);
    assert_int_equal(times_seen(&s, leaf), 1);
    for (int i = 0; i < s.n; i++)
        if (!strcmp(s.thumb[i], root->thumb))
            assert_string_equal(s.name[i], "tx-name");
    s = each(f, "ca");
    assert_int_equal(s.n, 1);
    assert_int_equal(times_seen(&s, &certs[SAME_A]), 1);
    assert_int_equal(store_each(f->s, "nosuch", collect, &s), -1);
    assert_clean(f);
}

/* store_each_name's listing: the thumbprints and names of name_seen_t. */
typedef struct name_seen {
    int n;
    char thumb[16][41];
    char name[16][128];
} name_seen_t;

static int collect_name_of(void *ctx, const char *thumb, const char *name)
{
    name_seen_t *s = ctx;
    if (s->n < 16) {
        snprintf(s->thumb[s->n], 41, "%s", thumb);
        snprintf(s->name[s->n], 128, "%s", name);
    }
    s->n++;
    return 0;
}

/* The name store_each_name gave c, or NULL when it did not list it. */
static const char *name_listed(const name_seen_t *s, const tcert_t *c)
{
    for (int i = 0; i < s->n && i < 16; i++)
        if (!strcmp(s->thumb[i], c->thumb))
            return s->name[i];
    return NULL;
}

/* fstat calls (a record read whole), counted by an I/O hook. */
static int count_fstats(void *ctx, store_io_op_t op, const char *p)
{
    if (op == STORE_IO_STAT && !p)
        ++*(int *)ctx;
    return 0;
}

/* store_each_name: the names store_each gives, staged changes first;
 * records whose head is this version's are not read whole (no fstat:
 * those of a name that is no spelling of the thumbprint, or of another
 * format, are); one damaged after its head is listed, and store_peek says
 * it is damaged; one damaged in its head, or of a newer format, is left
 * out as store_each leaves it out. */
static void test_each_name_from_heads(void **state)
{
    fixture_t *f = *state;
    int fstats = 0;
    store_io_t io = {count_fstats, &fstats};
    const char *why = NULL;
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open_io(f->dir, NULL, &io, &f->s, &why), 0);
    assert_int_equal(store_begin(f->s), 0);
    store_rec_t r = rec_of(&certs[ROOT], NULL, certs[ROOT].lower, "srv", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(put(f, "root", &certs[INTER]), 0);
    r = rec_of(&certs[ROOT2], NULL, "not-a-thumbprint", "srv", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(put(f, "root", &certs[SAME_A]), 0);
    assert_int_equal(put(f, "root", &certs[SAME_B]), 0);
    assert_int_equal(put(f, "root", &certs[TEMPLATE]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    /* SAME_A damaged after its head, SAME_B in it (its first line), TEMPLATE of a newer format */
    char p[PATH_MAX];
    keep(p, at(f, "certs/root/%s", certs[SAME_A].thumb));
    char *text = slurp(p, NULL);
    char *cut = strstr(text, "\nserver ");
    assert_non_null(cut);
    strcpy(cut + 1, "server -\n");
    spew(p, text, strlen(text));
    free(text);
    keep(p, at(f, "certs/root/%s", certs[SAME_B].thumb));
    text = slurp(p, NULL);
    text[0] = 'X'; /* its format line */
    spew(p, text, strlen(text));
    free(text);
    keep(p, at(f, "certs/root/%s", certs[TEMPLATE].thumb));
    text = slurp(p, NULL);
    memcpy(text, "omadm-cert 2", 12);
    spew(p, text, strlen(text));
    free(text);
    /* staged: LEAF named in lower case */
    assert_int_equal(store_begin(f->s), 0);
    r = rec_of(&certs[LEAF], NULL, certs[LEAF].lower, "srv", 1);
    assert_int_equal(store_put(f->s, "root", &r), 0);

    seen_t whole = each(f, "root");
    assert_int_equal(whole.n, 4); /* ROOT, INTER, ROOT2, LEAF */
    fstats = 0;
    name_seen_t s = {0};
    assert_int_equal(store_each_name(f->s, "root", collect_name_of, &s), 0);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < whole.n; i++) {
        for (int j = 0; j < N_TCERTS; j++) {
            if (strcmp(certs[j].thumb, whole.thumb[i]))
                continue;
            assert_non_null(name_listed(&s, &certs[j]));
            assert_string_equal(name_listed(&s, &certs[j]), whole.name[i]);
        }
    }
    assert_string_equal(name_listed(&s, &certs[ROOT]), certs[ROOT].lower);
    assert_string_equal(name_listed(&s, &certs[INTER]), certs[INTER].thumb);
    assert_string_equal(name_listed(&s, &certs[ROOT2]), "not-a-thumbprint");
    assert_string_equal(name_listed(&s, &certs[LEAF]), certs[LEAF].lower);
    assert_string_equal(name_listed(&s, &certs[SAME_A]), certs[SAME_A].thumb);
    assert_null(name_listed(&s, &certs[SAME_B]));
    assert_null(name_listed(&s, &certs[TEMPLATE]));
    assert_int_equal(fstats, 3); /* ROOT2, SAME_B, TEMPLATE read whole */
    const store_rec_t *rec;
    assert_int_equal(store_peek(f->s, "root", certs[SAME_A].thumb, &rec), -2);
    store_rec_t got;
    assert_int_equal(store_get(f->s, "root", certs[SAME_A].thumb, &got), -1);
    assert_int_equal(store_peek(f->s, "root", certs[TEMPLATE].thumb, &rec), -1);
    assert_int_equal(store_each_name(f->s, "nosuch", collect_name_of, &s), -1);
    store_rollback(f->s);
}

static void test_each_add_then_delete_in_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    /* in one transaction */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", c), 0);
    assert_int_equal(store_put_key(f->s, "root", c->thumb, "KEY"), 0);
    assert_int_equal(store_del(f->s, "root", c->thumb), 0);
    assert_int_equal(each(f, "root").n, 0);
    assert_false(present(f, "root", c));
    assert_int_equal(store_commit(f->s), 0);
    /* and across two transactions of one batch */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT2]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", certs[ROOT2].thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(each(f, "root").n, 0);

    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(each(f, "root").n, 0);
    assert_false(present(f, "root", c));
    assert_false(present(f, "root", &certs[ROOT2]));
    char *l = listing(at(f, "certs/root"));
    assert_string_equal(l, "");
    free(l);
    l = listing(at(f, "trust/root"));
    assert_string_equal(l, "");
    free(l);
    l = listing(at(f, "keys"));
    assert_string_equal(l, "");
    free(l);
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 0);
    assert_clean(f);
}

static void test_each_delete_then_readd_in_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[ROOT];
    put1(f, "root", c);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", c->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    store_rec_t r = rec_of(c, NULL, "back", "srv", 2);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    seen_t s = each(f, "root");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "back");
    assert_int_equal(store_flush(f->s), 0);
    s = each(f, "root");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "back");
    assert_true(present(f, "root", c));
    assert_true(exists(capath_file(f, "root", c, 0)));
    assert_false(exists(capath_file(f, "root", c, 1)));
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 1);
    assert_clean(f);

    /* the same in one transaction, on a flushed certificate */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", c->thumb), 0);
    r = rec_of(c, NULL, "again", "srv", 3);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    s = each(f, "root");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "again");
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 1);
    assert_clean(f);
}

static void test_each_stops_when_callback_says_so(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT]), 0);
    assert_int_equal(put(f, "root", &certs[ROOT2]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[INTER]), 0);
    /* stops in the staged part and in the on-disk part */
    for (int stop = 1; stop <= 3; stop++) {
        seen_t s;
        memset(&s, 0, sizeof s);
        s.stop_after = stop;
        assert_int_equal(store_each(f->s, "root", collect, &s), 1);
        assert_int_equal(s.n, stop);
    }
    store_rollback(f->s);
}

/* ======== private keys ======== */

static void test_keys(void **state)
{
    fixture_t *f = *state;
    static const char pem[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n"
                              "-----END PRIVATE KEY-----\n";
    const char *stores[] = {"my-user", "root"};
    const tcert_t *cs[] = {&certs[LEAF], &certs[ROOT]};
    for (int i = 0; i < 2; i++) {
        const char *st = stores[i];
        const tcert_t *c = cs[i];
        char kp[PATH_MAX];
    keep(kp, at(f, "keys/%s-%s", st, c->thumb));
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(put(f, st, c), 0);
        assert_int_equal(store_put_key(f->s, st, c->lower, pem), 0);
        /* visible in the transaction */
        char *k = store_get_key(f->s, st, c->thumb);
        assert_non_null(k);
        assert_string_equal(k, pem);
        free(k);
        assert_int_equal(store_commit(f->s), 0);
        k = store_get_key(f->s, st, c->lower);
        assert_non_null(k);
        assert_string_equal(k, pem);
        free(k);
        assert_false(exists(kp));
        assert_int_equal(store_flush(f->s), 0);
        assert_int_equal(mode_of(kp), 0600);
        assert_int_equal(mode_of(at(f, "keys")), 0700);
        assert_file_is(kp, pem, strlen(pem));
        reopen(f);
        k = store_get_key(f->s, st, c->thumb);
        assert_non_null(k);
        assert_string_equal(k, pem);
        free(k);
        assert_null(store_get_key(f->s, st == stores[0] ? "my-system" : "ca", c->thumb));
        assert_clean(f);

        /* replacing the key */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_put_key(f->s, st, c->thumb, "second key\n"), 0);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_flush(f->s), 0);
        assert_file_is(kp, "second key\n", 11);
        assert_int_equal(mode_of(kp), 0600);

        /* deleting the certificate hides the key at once and removes it
         * at the flush */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_del(f->s, st, c->thumb), 0);
        assert_null(store_get_key(f->s, st, c->thumb));
        assert_int_equal(store_commit(f->s), 0);
        assert_null(store_get_key(f->s, st, c->thumb));
        assert_true(exists(kp));
        assert_int_equal(store_flush(f->s), 0);
        assert_false(exists(kp));
        assert_null(store_get_key(f->s, st, c->thumb));
        assert_clean(f);
    }
    /* no key at all */
    assert_null(store_get_key(f->s, "root", certs[ROOT2].thumb));
    assert_null(store_get_key(f->s, "nosuch", certs[ROOT2].thumb));
    assert_null(store_get_key(f->s, "root", "xyz"));
}

static void test_key_put_then_delete_in_one_transaction(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[LEAF];
    /* put, key, delete: the delete removes the key too, so no lookup
     * may return it - not in the transaction, not pending, not on disk */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "my-user", c), 0);
    assert_int_equal(store_put_key(f->s, "my-user", c->thumb, "KEY"), 0);
    assert_int_equal(store_del(f->s, "my-user", c->thumb), 0);
    assert_false(present(f, "my-user", c));
    assert_null(own(f, store_get_key(f->s, "my-user", c->thumb)));
    assert_int_equal(store_commit(f->s), 0);
    assert_null(own(f, store_get_key(f->s, "my-user", c->thumb)));
    assert_int_equal(store_flush(f->s), 0);
    assert_null(store_get_key(f->s, "my-user", c->thumb));
    assert_false(exists(at(f, "keys/my-user-%s", c->thumb)));
    assert_clean(f);
}

static void test_key_delete_then_put_in_one_transaction(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[LEAF];
    char *k;
    /* delete, then put and key again: present */
    put1(f, "my-user", c);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "my-user", c->thumb), 0);
    assert_int_equal(put(f, "my-user", c), 0);
    assert_int_equal(store_put_key(f->s, "my-user", c->thumb, "KEY2"), 0);
    k = store_get_key(f->s, "my-user", c->thumb);
    assert_non_null(k);
    assert_string_equal(k, "KEY2");
    free(k);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    k = store_get_key(f->s, "my-user", c->thumb);
    assert_non_null(k);
    assert_string_equal(k, "KEY2");
    free(k);
    assert_clean(f);
}

/* ======== CApath ======== */

static void test_capath_holds_pem(void **state)
{
    fixture_t *f = *state;
    put1(f, "root", &certs[ROOT]);
    /* fc50d93f.0, as `openssl x509 -hash` names it */
    assert_int_equal(certs[ROOT].hash, 0xfc50d93fUL);
    assert_file_is(at(f, "trust/root/fc50d93f.0"), certs[ROOT].pem, certs[ROOT].pem_len);
    char *l = listing(at(f, "trust/root"));
    assert_string_equal(l, "fc50d93f.0");
    free(l);
    /* a non-trust store has no CApath */
    put1(f, "my-user", &certs[LEAF]);
    assert_false(exists(at(f, "trust/my-user")));
    /* several stores, several hashes */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "ca", &certs[INTER]), 0);
    assert_int_equal(put(f, "root", &certs[ROOT2]), 0);
    assert_int_equal(put(f, "user-ca", &certs[ROOT]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    l = listing(at(f, "trust/root"));
    assert_string_equal(l, "38b8e255.0 fc50d93f.0");
    free(l);
    l = listing(at(f, "trust/ca"));
    assert_string_equal(l, "956e0405.0");
    free(l);
    assert_file_is(at(f, "trust/ca/956e0405.0"), certs[INTER].pem, certs[INTER].pem_len);
    assert_file_is(at(f, "trust/user-ca/fc50d93f.0"), certs[ROOT].pem, certs[ROOT].pem_len);
    assert_clean(f);

    /* OpenSSL finds the chain through the CApath */
    X509_STORE *xs = X509_STORE_new();
    X509_LOOKUP *lu = X509_STORE_add_lookup(xs, X509_LOOKUP_hash_dir());
    char root_dir[PATH_MAX];
    assert_int_equal(store_capath(f->s, "root", root_dir, sizeof root_dir), 0);
    assert_int_equal(X509_LOOKUP_add_dir(lu, root_dir, X509_FILETYPE_PEM), 1);
    const unsigned char *p = certs[INTER].der;
    X509 *inter = d2i_X509(NULL, &p, (long)certs[INTER].der_len);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, xs, inter, NULL), 1);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), 1767225600); /* 2026 */
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_free(inter);
    X509_STORE_free(xs);
}

static void test_capath_same_subject(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[SAME_A], *b = &certs[SAME_B];
    put1(f, "root", a);
    assert_file_is(capath_file(f, "root", a, 0), a->pem, a->pem_len);
    assert_false(exists(capath_file(f, "root", a, 1)));
    assert_clean(f);
    put1(f, "root", b);
    assert_file_is(capath_file(f, "root", a, 0), a->pem, a->pem_len);
    assert_file_is(capath_file(f, "root", b, 1), b->pem, b->pem_len);
    assert_false(exists(capath_file(f, "root", a, 2)));
    assert_clean(f);
    /* putting a again changes nothing in the CApath */
    put1(f, "root", a);
    assert_file_is(capath_file(f, "root", a, 0), a->pem, a->pem_len);
    assert_file_is(capath_file(f, "root", b, 1), b->pem, b->pem_len);
    assert_clean(f);
    /* deleting the .0 one moves the other down */
    del1(f, "root", a);
    assert_file_is(capath_file(f, "root", b, 0), b->pem, b->pem_len);
    assert_false(exists(capath_file(f, "root", b, 1)));
    char *l = listing(at(f, "trust/root"));
    char want[32];
    snprintf(want, sizeof want, "%08lx.0", b->hash);
    assert_string_equal(l, want);
    free(l);
    assert_clean(f);
    del1(f, "root", b);
    l = listing(at(f, "trust/root"));
    assert_string_equal(l, "");
    free(l);
    assert_clean(f);
}

static void test_capath_same_subject_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[SAME_A], *b = &certs[SAME_B];
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "ca", a), 0);
    assert_int_equal(put(f, "ca", b), 0);
    assert_int_equal(put(f, "ca", &certs[INTER]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_file_is(capath_file(f, "ca", a, 0), a->pem, a->pem_len);
    assert_file_is(capath_file(f, "ca", b, 1), b->pem, b->pem_len);
    assert_clean(f);
    /* deleting the .1 one leaves .0 alone */
    del1(f, "ca", b);
    assert_file_is(capath_file(f, "ca", a, 0), a->pem, a->pem_len);
    assert_false(exists(capath_file(f, "ca", a, 1)));
    assert_clean(f);
    /* b back, then a deleted and b re-put in one batch: b at .0 only */
    put1(f, "ca", b);
    assert_file_is(capath_file(f, "ca", b, 1), b->pem, b->pem_len);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "ca", a->thumb), 0);
    assert_int_equal(put(f, "ca", b), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_file_is(capath_file(f, "ca", b, 0), b->pem, b->pem_len);
    assert_false(exists(capath_file(f, "ca", b, 1)));
    assert_clean(f);
    /* both deleted and a added again in one batch */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "ca", b->thumb), 0);
    assert_int_equal(put(f, "ca", a), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_file_is(capath_file(f, "ca", a, 0), a->pem, a->pem_len);
    assert_false(exists(capath_file(f, "ca", a, 1)));
    assert_clean(f);
}

/* ======== bundle ======== */

static void test_bundle_append_and_blank(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[ROOT], *b = &certs[ROOT2], *c = &certs[INTER];
    char bp[PATH_MAX];
    keep(bp, at(f, "trust/root.pem"));
    put1(f, "root", a);
    assert_file_is(bp, a->pem, a->pem_len);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", b), 0);
    assert_int_equal(put(f, "root", c), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    size_t total = a->pem_len + b->pem_len + c->pem_len;
    char *want = malloc(total + a->pem_len + b->pem_len + 1);
    memcpy(want, a->pem, a->pem_len);
    memcpy(want + a->pem_len, b->pem, b->pem_len);
    memcpy(want + a->pem_len + b->pem_len, c->pem, c->pem_len);
    assert_file_is(bp, want, total);
    assert_int_equal(count_begin_lines(bp), 3);
    assert_clean(f);

    /* deleting b blanks its block: same length, newlines kept */
    del1(f, "root", b);
    char *blank = blanked(b);
    memcpy(want + a->pem_len, blank, b->pem_len);
    assert_file_is(bp, want, total);
    assert_int_equal(count_begin_lines(bp), 2);
    assert_int_equal(each(f, "root").n, 2);
    assert_clean(f);

    /* adding b again appends it */
    put1(f, "root", b);
    memcpy(want + total, b->pem, b->pem_len);
    total += b->pem_len;
    assert_file_is(bp, want, total);
    assert_int_equal(count_begin_lines(bp), 3);
    assert_clean(f);

    /* putting a again (same certificate, new name) rewrites only the
     * record: the bundle does not grow with repeated Replaces */
    store_rec_t r = rec_of(a, NULL, "renamed", "srv", 1);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put(f->s, "root", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    char *blank_a = blanked(a);
    assert_file_is(bp, want, total);
    assert_int_equal(count_begin_lines(bp), 3);
    store_rec_t renamed;
    assert_int_equal(store_get(f->s, "root", a->thumb, &renamed), 0);
    assert_string_equal(renamed.name, "renamed");
    store_rec_free(f->s, &renamed);
    assert_clean(f);

    /* delete everything: only spaces and newlines remain */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", a->thumb), 0);
    assert_int_equal(store_del(f->s, "root", b->thumb), 0);
    assert_int_equal(store_del(f->s, "root", c->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    size_t len = 0;
    char *got = slurp(bp, &len);
    assert_int_equal(len, total);
    for (size_t i = 0; i < len; i++)
        assert_true(got[i] == ' ' || got[i] == '\n');
    assert_int_equal(count_begin_lines(bp), 0);
    assert_clean(f);
    free(got);
    free(blank_a);
    free(blank);
    free(want);
}

static void test_bundle_add_then_delete_in_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[ROOT], *b = &certs[ROOT2];
    char bp[PATH_MAX];
    keep(bp, at(f, "trust/root.pem"));
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", a), 0);
    assert_int_equal(put(f, "root", b), 0);
    assert_int_equal(store_del(f->s, "root", a->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    char *blank = blanked(a);
    char *want = malloc(a->pem_len + b->pem_len);
    memcpy(want, blank, a->pem_len);
    memcpy(want + a->pem_len, b->pem, b->pem_len);
    assert_file_is(bp, want, a->pem_len + b->pem_len);
    assert_int_equal(count_begin_lines(bp), 1);
    assert_clean(f);
    free(want);
    free(blank);
}

static void test_bundle_put_twice_in_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *a = &certs[INTER];
    char bp[PATH_MAX];
    keep(bp, at(f, "trust/ca.pem"));
    /* the second put of the same certificate only renames: one block */
    assert_int_equal(store_begin(f->s), 0);
    store_rec_t r = rec_of(a, NULL, "first", "srv", 1);
    assert_int_equal(store_put(f->s, "ca", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    r = rec_of(a, NULL, "second", "srv", 2);
    assert_int_equal(store_put(f->s, "ca", &r), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    char *blank = blanked(a);
    char *want = malloc(2 * a->pem_len);
    memcpy(want, a->pem, a->pem_len);
    assert_file_is(bp, want, a->pem_len);
    assert_int_equal(count_begin_lines(bp), 1);
    assert_file_is(capath_file(f, "ca", a, 0), a->pem, a->pem_len);
    assert_false(exists(capath_file(f, "ca", a, 1)));
    store_rec_t got;
    assert_int_equal(store_get(f->s, "ca", a->thumb, &got), 0);
    assert_string_equal(got.name, "second");
    store_rec_free(f->s, &got);
    assert_clean(f);
    free(want);
    free(blank);
}

static void test_non_trust_store_has_no_bundle(void **state)
{
    fixture_t *f = *state;
    put1(f, "my-user", &certs[LEAF]);
    put1(f, "my-system", &certs[TEMPLATE]);
    assert_true(exists(at(f, "certs/my-user/%s", certs[LEAF].thumb)));
    assert_false(exists(at(f, "trust/my-user.pem")));
    assert_false(exists(at(f, "trust/my-user")));
    assert_false(exists(at(f, "trust/my-system.pem")));
    /* no trust store changed */
    size_t n = 0;
    const store_kind_t *k = store_kinds(&n);
    for (size_t i = 0; i < n; i++)
        if (k[i].trust)
            assert_int_equal(size_of(at(f, "trust/%s.pem", k[i].id)), 0);
    assert_clean(f);
    del1(f, "my-user", &certs[LEAF]);
    assert_false(exists(at(f, "certs/my-user/%s", certs[LEAF].thumb)));
    assert_clean(f);
}

/* Certificates a PEM reader finds in a file. */
static int pem_certs_in(const char *p)
{
    BIO *bio = BIO_new_file(p, "r");
    int n = 0;
    X509 *x;
    assert_non_null(bio);
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        n++;
        X509_free(x);
    }
    BIO_free(bio);
    return n;
}

static void test_bundle_readable_by_openssl(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "ca", &certs[ROOT]), 0);
    assert_int_equal(put(f, "ca", &certs[INTER]), 0);
    assert_int_equal(put(f, "ca", &certs[ROOT2]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    del1(f, "ca", &certs[ROOT]);
    del1(f, "ca", &certs[ROOT2]);
    put1(f, "ca", &certs[TEMPLATE]);
    char bp[PATH_MAX];
    assert_int_equal(store_bundle(f->s, "ca", bp, sizeof bp), 0);
    /* blanked blocks are skipped */
    assert_int_equal(pem_certs_in(bp), 2);
    assert_int_equal(count_begin_lines(bp), 2);
    assert_clean(f);
}

/* ======== store_check ======== */

/* A store with something in several stores, keys, a deleted block and
 * two certificates with one subject. */
static void populate(fixture_t *f)
{
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT]), 0);
    assert_int_equal(put(f, "root", &certs[ROOT2]), 0);
    assert_int_equal(put(f, "root", &certs[SAME_A]), 0);
    assert_int_equal(put(f, "root", &certs[SAME_B]), 0);
    assert_int_equal(put(f, "ca", &certs[INTER]), 0);
    assert_int_equal(put(f, "my-user", &certs[LEAF]), 0);
    assert_int_equal(store_put_key(f->s, "my-user", certs[LEAF].thumb, "LEAF KEY\n"), 0);
    assert_int_equal(put(f, "my-system", &certs[TEMPLATE]), 0);
    assert_int_equal(store_put_key(f->s, "my-system", certs[TEMPLATE].thumb, "TEMPLATE KEY\n"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    del1(f, "root", &certs[ROOT2]);
    assert_clean(f);
}

static void test_check_good_store(void **state)
{
    fixture_t *f = *state;
    assert_clean(f);
    populate(f);
    assert_clean(f);
    reopen(f);
    assert_clean(f);
    /* store_check without a callback */
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
}

static void test_check_capath_file_deleted(void **state)
{
    fixture_t *f = *state;
    populate(f);
    assert_int_equal(unlink(at(f, "trust/root/%08lx.0", certs[ROOT].hash)), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void test_check_capath_gap(void **state)
{
    fixture_t *f = *state;
    populate(f);
    /* .0 of the shared subject gone, .1 left: a gap (and a missing file) */
    assert_int_equal(unlink(capath_file(f, "root", &certs[SAME_A], 0)), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void test_check_record_byte_flipped(void **state)
{
    fixture_t *f = *state;
    populate(f);
    /* one base64 character in the middle of the DER line */
    char rp[PATH_MAX];
    keep(rp, at(f, "certs/ca/%s", certs[INTER].thumb));
    size_t len = 0;
    char *text = slurp(rp, &len);
    char *der = strstr(text, "\nder ");
    assert_non_null(der);
    char *victim = der + 5 + 200;
    *victim = *victim == 'A' ? 'B' : 'A';
    spew(rp, text, len);
    free(text);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void test_check_record_thumb_line_changed(void **state)
{
    fixture_t *f = *state;
    populate(f);
    char rp[PATH_MAX];
    keep(rp, at(f, "certs/my-user/%s", certs[LEAF].thumb));
    size_t len = 0;
    char *text = slurp(rp, &len);
    char *t = strstr(text, "\nthumb ");
    assert_non_null(t);
    t[7] = t[7] == '0' ? '1' : '0';
    spew(rp, text, len);
    free(text);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void test_check_bundle_block_blanked(void **state)
{
    fixture_t *f = *state;
    populate(f);
    /* blank root's block (the first) by hand */
    char bp[PATH_MAX];
    keep(bp, at(f, "trust/root.pem"));
    size_t len = 0;
    char *text = slurp(bp, &len);
    assert_true(len >= certs[ROOT].pem_len);
    assert_memory_equal(text, certs[ROOT].pem, certs[ROOT].pem_len);
    for (size_t i = 0; i < certs[ROOT].pem_len; i++)
        if (text[i] != '\n')
            text[i] = ' ';
    spew(bp, text, len);
    free(text);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void test_check_stray_file(void **state)
{
    fixture_t *f = *state;
    populate(f);
    spew(at(f, "certs/root/stray"), "x", 1);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    /* store_each does not list it */
    assert_int_equal(each(f, "root").n, 3);
}

static void test_check_stray_files_elsewhere(void **state)
{
    fixture_t *f = *state;
    populate(f);
    /* a lowercase record name (the store writes uppercase) */
    spew(at(f, "certs/root/%s", certs[ROOT2].lower), "x", 1);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(unlink(at(f, "certs/root/%s", certs[ROOT2].lower)), 0);
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
    /* a CApath file that is not a certificate */
    spew(at(f, "trust/root/00000000.0"), "x", 1);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(unlink(at(f, "trust/root/00000000.0")), 0);
    /* a key without a certificate */
    spew(at(f, "keys/root-%s", certs[ROOT2].thumb), "k", 1);
    assert_int_equal(chmod(at(f, "keys/root-%s", certs[ROOT2].thumb), 0600), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(unlink(at(f, "keys/root-%s", certs[ROOT2].thumb)), 0);
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
}

static void test_check_key_mode(void **state)
{
    fixture_t *f = *state;
    populate(f);
    assert_int_equal(chmod(at(f, "keys/my-user-%s", certs[LEAF].thumb), 0644), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(chmod(at(f, "keys/my-user-%s", certs[LEAF].thumb), 0600), 0);
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
    /* the key directory too */
    assert_int_equal(chmod(at(f, "keys"), 0755), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
}

static void count_problem(void *ctx, const char *problem)
{
    assert_non_null(problem);
    assert_true(*problem);
    ++*(int *)ctx;
}

static void test_check_reports_through_callback(void **state)
{
    fixture_t *f = *state;
    populate(f);
    assert_int_equal(unlink(at(f, "trust/ca/%08lx.0", certs[INTER].hash)), 0);
    spew(at(f, "certs/root/stray"), "x", 1);
    int calls = 0;
    int n = store_check(f->s, 0, count_problem, &calls);
    assert_true(n >= 2);
    assert_int_equal(calls, n);
}

/* ======== modes ======== */

/* The problems store_check reports, one per line. */
typedef struct lines {
    char text[4096];
    int n;
} lines_t;

static void add_line(void *ctx, const char *problem)
{
    lines_t *l = ctx;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof l->text - len, "%s\n", problem);
    l->n++;
}

static lines_t check_lines(fixture_t *f, unsigned flags)
{
    lines_t l;
    memset(&l, 0, sizeof l);
    int n = store_check(f->s, flags, add_line, &l);
    assert_int_equal(n, l.n);
    return l;
}

/* The line store_check gives a path with a wrong mode. */
static void assert_mode_line(const lines_t *l, const char *p, int got, int want)
{
    char line[PATH_MAX + 64];
    snprintf(line, sizeof line, "%s: mode %04o, expected %04o\n", p, got, want);
    if (!strstr(l->text, line))
        fail_msg("expected the line \"%.*s\" among:\n%s", (int)strlen(line) - 1, line, l->text);
}

/* Every part of the store has its mode: public ones for every user,
 * private ones for the owner alone. */
static void assert_modes(fixture_t *f)
{
    size_t n = 0;
    const store_kind_t *k = store_kinds(&n);
    assert_int_equal(mode_of(f->dir), 0755);
    assert_int_equal(mode_of(at(f, "certs")), 0755);
    assert_int_equal(mode_of(at(f, "trust")), 0755);
    assert_int_equal(mode_of(at(f, "keys")), 0700);
    assert_int_equal(mode_of(at(f, "state")), 0700);
    assert_int_equal(mode_of(at(f, "lock")), 0600);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(mode_of(at(f, "certs/%s", k[i].id)), 0755);
        if (!k[i].trust)
            continue;
        assert_int_equal(mode_of(at(f, "trust/%s", k[i].id)), 0755);
        assert_int_equal(mode_of(at(f, "trust/%s.pem", k[i].id)), 0644);
    }
}

static void test_modes_of_a_fresh_store(void **state)
{
    fixture_t *f = *state;
    /* a store two directories below an existing one, created with a umask
     * that would make everything private: the modes are set, not left to
     * the umask, and the directories above the CApath directories let
     * every user through */
    char deep[sizeof f->dir];
    assert_true(snprintf(deep, sizeof deep, "%s/a/b/store", f->tmp) < (int)sizeof deep);
    store_close(f->s);
    f->s = NULL;
    mode_t old = umask(077);
    const char *why = NULL;
    int rc = store_open(deep, NULL, &f->s, &why);
    umask(old);
    assert_int_equal(rc, 0);
    memcpy(f->dir, deep, sizeof deep);
    assert_int_equal(mode_of(at(f, "..")), 0755);
    assert_int_equal(mode_of(at(f, "../..")), 0755);
    assert_modes(f);
    assert_clean(f);

    /* what a batch writes, under the same umask */
    old = umask(077);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[ROOT]), 0);
    assert_int_equal(put(f, "my-user", &certs[LEAF]), 0);
    assert_int_equal(store_put_key(f->s, "my-user", certs[LEAF].thumb, "KEY\n"), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "x", 1), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    umask(old);
    assert_modes(f);
    assert_int_equal(mode_of(at(f, "certs/root/%s", certs[ROOT].thumb)), 0644);
    assert_int_equal(mode_of(capath_file(f, "root", &certs[ROOT], 0)), 0644);
    assert_int_equal(mode_of(at(f, "certs/my-user/%s", certs[LEAF].thumb)), 0644);
    assert_int_equal(mode_of(at(f, "keys/my-user-%s", certs[LEAF].thumb)), 0600);
    assert_int_equal(mode_of(at(f, "state/scep-1")), 0600);
    assert_clean(f);

    /* a bundle that is gone comes back public with the next open, and
     * a private lock stays private */
    assert_int_equal(unlink(at(f, "trust/ca.pem")), 0);
    assert_int_equal(chmod(at(f, "lock"), 0644), 0);
    old = umask(077);
    reopen(f);
    umask(old);
    assert_int_equal(mode_of(at(f, "trust/ca.pem")), 0644);
    assert_int_equal(mode_of(at(f, "lock")), 0600);
    assert_clean(f);
}

/* Every wrong mode is one line naming the path, the mode found and the
 * mode expected; a repair fixes them all. */
static void test_check_reports_and_repairs_modes(void **state)
{
    fixture_t *f = *state;
    populate(f);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "secret", 6), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_clean(f);

    static const struct {
        const char *rel;
        int bad, good;
    } wrong[] = {
        {"", 0700, 0755},
        {"certs", 0700, 0755},
        {"certs/root", 0750, 0755},
        {"trust", 0700, 0755},
        {"trust/root", 0700, 0755},
        {"trust/ca.pem", 0600, 0644},
        {"lock", 0666, 0600},
        {"keys", 0755, 0700},
        {"state", 0711, 0700},
        {"state/scep-1", 0644, 0600},
    };
    size_t n = sizeof wrong / sizeof wrong[0];
    char rec[PATH_MAX], capath[PATH_MAX], key[PATH_MAX];
    keep(rec, at(f, "certs/ca/%s", certs[INTER].thumb));
    keep(capath, capath_file(f, "root", &certs[ROOT], 0));
    keep(key, at(f, "keys/my-user-%s", certs[LEAF].thumb));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chmod(*wrong[i].rel ? at(f, "%s", wrong[i].rel) : f->dir, (mode_t)wrong[i].bad), 0);
    assert_int_equal(chmod(rec, 0640), 0);
    assert_int_equal(chmod(capath, 0600), 0);
    assert_int_equal(chmod(key, 0640), 0);

    lines_t l = check_lines(f, 0);
    assert_int_equal(l.n, (int)n + 3);
    for (size_t i = 0; i < n; i++)
        assert_mode_line(&l, *wrong[i].rel ? at(f, "%s", wrong[i].rel) : f->dir, wrong[i].bad,
                         wrong[i].good);
    assert_mode_line(&l, rec, 0640, 0644);
    assert_mode_line(&l, capath, 0600, 0644);
    assert_mode_line(&l, key, 0640, 0600);
    /* checking changes nothing */
    assert_int_equal(mode_of(at(f, "trust/root")), 0700);

    /* the repair fixes every mode and reports nothing */
    l = check_lines(f, STORE_CHECK_REPAIR);
    if (l.n)
        fail_msg("left after a repair:\n%s", l.text);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mode_of(*wrong[i].rel ? at(f, "%s", wrong[i].rel) : f->dir), wrong[i].good);
    assert_int_equal(mode_of(rec), 0644);
    assert_int_equal(mode_of(capath), 0644);
    assert_int_equal(mode_of(key), 0600);
    assert_clean(f);
    assert_modes(f);
}

/* A repair reports what it cannot fix: here a CApath file that is gone,
 * beside a mode it fixes. */
static void test_check_repair_reports_what_is_left(void **state)
{
    fixture_t *f = *state;
    populate(f);
    assert_int_equal(chmod(at(f, "trust/ca"), 0700), 0);
    /* a file of the state directory no record can be named: not ours to remove */
    spew(at(f, "state/no record"), "x", 1);
    assert_int_equal(chmod(at(f, "state/no record"), 0600), 0);
    lines_t l = check_lines(f, 0);
    assert_int_equal(l.n, 2);
    assert_mode_line(&l, at(f, "trust/ca"), 0700, 0755);
    l = check_lines(f, STORE_CHECK_REPAIR);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.text, "unexpected file no record in the state directory\n");
    assert_int_equal(mode_of(at(f, "trust/ca")), 0755);
    assert_true(exists(at(f, "state/no record")));
}

/* store_check with STORE_CHECK_SAY_REPAIRS: problems counted, repairs
 * passed on as "repaired: ..." lines and not counted. */
typedef struct said {
    lines_t problems, repairs;
} said_t;

static void add_said(void *ctx, const char *line)
{
    said_t *s = ctx;
    add_line(strncmp(line, "repaired: ", 10) ? &s->problems : &s->repairs, line);
}

static said_t check_said(fixture_t *f)
{
    said_t s;
    memset(&s, 0, sizeof s);
    int n = store_check(f->s, STORE_CHECK_REPAIR | STORE_CHECK_SAY_REPAIRS, add_said, &s);
    assert_int_equal(n, s.problems.n);
    return s;
}

static void assert_has(const lines_t *l, const char *text)
{
    if (!strstr(l->text, text))
        fail_msg("expected \"%s\" among:\n%s", text, l->text);
}

/* What a trust store derives from its records (CApath, bundle) is written
 * anew from them; what the repair did is said. */
static void test_check_repair_rebuilds_capath_and_bundle(void **state)
{
    fixture_t *f = *state;
    populate(f); /* root holds ROOT, SAME_A, SAME_B (one subject hash), ca INTER */
    char *bundle_before = slurp(at(f, "trust/root.pem"), NULL);
    /* a CApath file gone, one for a certificate the store does not hold,
     * one that is no certificate, the bundle cut short */
    assert_int_equal(unlink(at(f, "trust/root/%08lx.0", certs[ROOT].hash)), 0);
    spew(at(f, "trust/root/%08lx.0", certs[ROOT2].hash), certs[ROOT2].pem, certs[ROOT2].pem_len);
    spew(at(f, "trust/root/%08lx.7", certs[SAME_A].hash), "junk\n", 5);
    assert_int_equal(truncate(at(f, "trust/root.pem"), 100), 0);
    spew(at(f, "trust/ca.pem"), "", 0); /* the other trust store too */
    lines_t l = check_lines(f, 0);
    assert_true(l.n >= 5);
    said_t s = check_said(f);
    assert_int_equal(s.problems.n, 0);
    assert_int_equal(s.repairs.n, 2);
    assert_has(&s.repairs, "repaired: Root/System: CApath directory and bundle written anew");
    assert_has(&s.repairs, "repaired: CA/System: CApath directory and bundle written anew");
    assert_clean(f);
    /* the same certificates, in thumbprint order */
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 3);
    assert_int_equal(count_begin_lines(at(f, "trust/ca.pem")), 1);
    assert_true(present(f, "root", &certs[ROOT]));
    assert_true(present(f, "root", &certs[SAME_A]));
    assert_true(present(f, "root", &certs[SAME_B]));
    assert_false(exists(at(f, "trust/root/%08lx.0", certs[ROOT2].hash)));
    assert_false(exists(at(f, "trust/root/%08lx.7", certs[SAME_A].hash)));
    assert_int_equal(mode_of(at(f, "trust/root.pem")), 0644);
    free(bundle_before);
    /* and it holds after a reopen, and further changes work on it */
    reopen(f);
    assert_clean(f);
    del1(f, "root", &certs[SAME_A]);
    put1(f, "root", &certs[ROOT2]);
    assert_clean(f);
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 3);
}

/* A record that cannot be read would lose its certificate from the bundle:
 * nothing of that store is written anew, the problems stay. */
static void test_check_repair_keeps_what_it_cannot_read(void **state)
{
    fixture_t *f = *state;
    populate(f);
    char *bundle = slurp(at(f, "trust/root.pem"), NULL);
    assert_int_equal(unlink(at(f, "trust/root/%08lx.0", certs[ROOT].hash)), 0);
    spew(at(f, "certs/root/%s", certs[SAME_A].thumb), "garbage\n", 8);
    said_t s = check_said(f);
    assert_int_equal(s.repairs.n, 0);
    assert_has(&s.problems, "is damaged");
    assert_has(&s.problems, "bundle holds 3 certificates, the store 2");
    assert_false(exists(at(f, "trust/root/%08lx.0", certs[ROOT].hash)));
    char *now = slurp(at(f, "trust/root.pem"), NULL);
    assert_string_equal(now, bundle);
    free(now);
    free(bundle);
}

/* Temp files an interrupted write left are reported and removed. */
static void test_check_temp_files(void **state)
{
    fixture_t *f = *state;
    populate(f);
    static const char *const temps[] = {
        "certs/root/.ADC1911E726D0E000C28A1FD4F864417303F3208.tmp", "keys/.my-user-X.tmp",
        "state/.scep-cd-1.tmp", "trust/root/.fc50d93f.0.tmp", "trust/.root.pem.tmp",
    };
    for (size_t i = 0; i < sizeof temps / sizeof *temps; i++)
        spew(at(f, "%s", temps[i]), "half", 4);
    lines_t l = check_lines(f, 0);
    assert_int_equal(l.n, 5);
    for (size_t i = 0; i < sizeof temps / sizeof *temps; i++) {
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s: a temp file an interrupted write left\n",
                 at(f, "%s", temps[i]));
        assert_has(&l, want);
    }
    said_t s = check_said(f);
    assert_int_equal(s.problems.n, 0);
    assert_int_equal(s.repairs.n, 5);
    assert_has(&s.repairs, "trust/.root.pem.tmp: removed (a temp file an interrupted write left)");
    for (size_t i = 0; i < sizeof temps / sizeof *temps; i++)
        assert_false(exists(at(f, "%s", temps[i])));
    assert_clean(f);
}

/* A record of a newer format: not read, not counted as absent, never
 * written over; store_check names it with both formats and nothing else
 * about it. */
static void test_record_of_newer_format(void **state)
{
    fixture_t *f = *state;
    populate(f);
    const char *p = at(f, "certs/root/%s", certs[SAME_A].thumb);
    char keep_p[PATH_MAX];
    keep(keep_p, p);
    size_t len = 0;
    char *rec = slurp(keep_p, &len);
    char *newer = malloc(len + 1);
    memcpy(newer, rec, len + 1);
    memcpy(newer, "omadm-cert 2", 12); /* "omadm-cert 1" as long */
    spew(keep_p, newer, len);
    reopen(f); /* nothing kept in memory */
    store_rec_t r;
    assert_int_equal(store_get(f->s, "root", certs[SAME_A].thumb, &r), -1);
    /* a batch that would replace or delete it fails, and leaves it */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "root", &certs[SAME_A]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), -1);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "root", certs[SAME_A].thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), -1);
    char *now = slurp(keep_p, NULL);
    assert_string_equal(now, newer);
    free(now);
    lines_t l = check_lines(f, 0);
    assert_int_equal(l.n, 1);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want,
             "Root/System: record %s (%s): format omadm-cert 2 is newer than this library reads "
             "(omadm-cert 1); left as it is\n", certs[SAME_A].thumb, keep_p);
    assert_string_equal(l.text, want);
    /* a repair does not rebuild around it */
    said_t s = check_said(f);
    assert_int_equal(s.problems.n, 1);
    assert_int_equal(s.repairs.n, 0);
    now = slurp(keep_p, NULL);
    assert_string_equal(now, newer);
    free(now);
    free(newer);
    free(rec);
}

/* The next write into a part of the store gives it (and the directories
 * above it) its mode back; parts it does not write into keep theirs until
 * a repair. */
static void test_write_fixes_modes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(chmod(at(f, "trust"), 0700), 0);
    assert_int_equal(chmod(at(f, "trust/root"), 0700), 0);
    assert_int_equal(chmod(at(f, "trust/root.pem"), 0600), 0);
    assert_int_equal(chmod(at(f, "certs/root"), 0700), 0);
    assert_int_equal(chmod(at(f, "trust/ca"), 0700), 0); /* not written into */
    put1(f, "root", &certs[ROOT]);
    assert_int_equal(mode_of(f->dir), 0755);
    assert_int_equal(mode_of(at(f, "trust")), 0755);
    assert_int_equal(mode_of(at(f, "trust/root")), 0755);
    assert_int_equal(mode_of(at(f, "trust/root.pem")), 0644);
    assert_int_equal(mode_of(at(f, "certs/root")), 0755);
    assert_int_equal(mode_of(at(f, "trust/ca")), 0700);
    lines_t l = check_lines(f, 0);
    assert_int_equal(l.n, 1);
    assert_mode_line(&l, at(f, "trust/ca"), 0700, 0755);

    /* keys and state records: the same, privately */
    assert_int_equal(chmod(at(f, "keys"), 0755), 0);
    assert_int_equal(chmod(at(f, "state"), 0755), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "my-user", &certs[LEAF]), 0);
    assert_int_equal(store_put_key(f->s, "my-user", certs[LEAF].thumb, "KEY\n"), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "x", 1), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(mode_of(at(f, "keys")), 0700);
    assert_int_equal(mode_of(at(f, "state")), 0700);
    assert_int_equal(mode_of(at(f, "trust/ca")), 0700);
    assert_int_equal(store_check(f->s, STORE_CHECK_REPAIR, print_problem, NULL), 0);
    assert_clean(f);
}

/* ======== journal recovery ======== */

/* A journal in the format of store/journal.c, built by hand. */
typedef struct jbuf {
    char *p;
    size_t len;
} jbuf_t;

static void jb_raw(jbuf_t *j, const void *data, size_t n)
{
    j->p = realloc(j->p, j->len + n + 1);
    memcpy(j->p + j->len, data, n);
    j->len += n;
    j->p[j->len] = 0;
}

static void jb_fmt(jbuf_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(jbuf_t *j, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_in_range(n, 1, (int)sizeof line - 1);
    jb_raw(j, line, (size_t)n);
}

static void jb_start(jbuf_t *j)
{
    memset(j, 0, sizeof *j);
    jb_raw(j, "omadm-journal 1\n", 16);
}

static void jb_write(jbuf_t *j, unsigned mode, const char *rel, const void *data, size_t n)
{
    jb_fmt(j, "W %o %zu %s\n", mode, n, rel);
    jb_raw(j, data, n);
    jb_raw(j, "\n", 1);
}

static void jb_at(jbuf_t *j, char op, long long off, const char *rel, const void *data, size_t n)
{
    jb_fmt(j, "%c %lld %zu %s\n", op, off, n, rel);
    jb_raw(j, data, n);
    jb_raw(j, "\n", 1);
}

static void jb_unlink(jbuf_t *j, const char *rel)
{
    jb_fmt(j, "U %s\n", rel);
}

/* "E <sha256 of everything before, lowercase hex>\n" */
static void jb_seal(jbuf_t *j)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65];
    assert_int_equal(EVP_Digest(j->p, j->len, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    jb_fmt(j, "E %s\n", hex);
}

/* What a store holds after root (with a key) was put, and after it was
 * deleted again, as store_flush made it in a reference store. */
typedef struct reference {
    char *rec, *bundle, *capath, *key, *bundle_after_del;
    size_t rec_len, bundle_len, capath_len, key_len, bundle_after_del_len;
    char rec_rel[80], key_rel[80], capath_rel[80];
} reference_t;

static const char ref_key[] = "-----BEGIN PRIVATE KEY-----\nref\n-----END PRIVATE KEY-----\n";

static void make_reference(fixture_t *f, reference_t *ref)
{
    fixture_t r;
    const tcert_t *c = &certs[ROOT];
    memset(&r, 0, sizeof r);
    memset(ref, 0, sizeof *ref);
    snprintf(r.dir, sizeof r.dir, "%s/ref", f->tmp);
    const char *why = NULL;
    assert_int_equal(store_open(r.dir, NULL, &r.s, &why), 0);
    assert_int_equal(store_begin(r.s), 0);
    store_rec_t in = rec_of(c, NULL, "ref", "srv", 1767225600);
    assert_int_equal(store_put(r.s, "root", &in), 0);
    assert_int_equal(store_put_key(r.s, "root", c->thumb, ref_key), 0);
    assert_int_equal(store_commit(r.s), 0);
    assert_int_equal(store_flush(r.s), 0);
    snprintf(ref->rec_rel, sizeof ref->rec_rel, "certs/root/%s", c->thumb);
    snprintf(ref->key_rel, sizeof ref->key_rel, "keys/root-%s", c->thumb);
    snprintf(ref->capath_rel, sizeof ref->capath_rel, "trust/root/%08lx.0", c->hash);
    ref->rec = slurp(at(&r, "%s", ref->rec_rel), &ref->rec_len);
    ref->key = slurp(at(&r, "%s", ref->key_rel), &ref->key_len);
    ref->capath = slurp(at(&r, "%s", ref->capath_rel), &ref->capath_len);
    ref->bundle = slurp(at(&r, "trust/root.pem"), &ref->bundle_len);
    assert_non_null(ref->rec);
    assert_non_null(ref->key);
    assert_non_null(ref->capath);
    assert_non_null(ref->bundle);
    assert_int_equal(ref->bundle_len, c->pem_len);
    del1(&r, "root", c);
    ref->bundle_after_del = slurp(at(&r, "trust/root.pem"), &ref->bundle_after_del_len);
    assert_non_null(ref->bundle_after_del);
    store_close(r.s);
}

static void free_reference(reference_t *ref)
{
    free(ref->rec);
    free(ref->bundle);
    free(ref->capath);
    free(ref->key);
    free(ref->bundle_after_del);
}

/* The batch "put root with its key", as store_flush journals it. */
static void journal_add(const reference_t *ref, jbuf_t *j)
{
    jb_start(j);
    jb_at(j, 'A', 0, "trust/root.pem", ref->bundle, ref->bundle_len);
    jb_write(j, 0644, ref->rec_rel, ref->rec, ref->rec_len);
    jb_write(j, 0600, ref->key_rel, ref->key, ref->key_len);
    jb_write(j, 0644, ref->capath_rel, ref->capath, ref->capath_len);
    jb_seal(j);
}

/* The batch "delete root". */
static void journal_del(const reference_t *ref, jbuf_t *j)
{
    char *blank = blanked(&certs[ROOT]);
    jb_start(j);
    jb_at(j, 'O', 0, "trust/root.pem", blank, certs[ROOT].pem_len);
    jb_unlink(j, ref->rec_rel);
    jb_unlink(j, ref->key_rel);
    jb_unlink(j, ref->capath_rel);
    jb_seal(j);
    free(blank);
}

/* Close the store, leave a journal as a crash would, open again. */
static void crash_with(fixture_t *f, const char *name, const void *data, size_t len)
{
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", name), data, len);
    reopen(f);
}

static void assert_added_state(fixture_t *f, const reference_t *ref)
{
    assert_false(exists(at(f, "journal")));
    assert_file_is(at(f, "%s", ref->rec_rel), ref->rec, ref->rec_len);
    assert_file_is(at(f, "%s", ref->key_rel), ref->key, ref->key_len);
    assert_file_is(at(f, "%s", ref->capath_rel), ref->capath, ref->capath_len);
    assert_file_is(at(f, "trust/root.pem"), ref->bundle, ref->bundle_len);
    assert_int_equal(mode_of(at(f, "%s", ref->key_rel)), 0600);
    assert_int_equal(mode_of(at(f, "%s", ref->rec_rel)), 0644);
    char *l = listing(at(f, "trust/root"));
    assert_string_equal(l, "fc50d93f.0");
    free(l);
    store_rec_t r;
    assert_int_equal(store_get(f->s, "root", certs[ROOT].thumb, &r), 0);
    assert_string_equal(r.name, "ref");
    assert_string_equal(r.server, "srv");
    assert_int_equal(r.added, 1767225600);
    store_rec_free(f->s, &r);
    char *k = store_get_key(f->s, "root", certs[ROOT].thumb);
    assert_non_null(k);
    assert_string_equal(k, ref_key);
    free(k);
    assert_int_equal(each(f, "root").n, 1);
    assert_clean(f);
}

static void assert_deleted_state(fixture_t *f, const reference_t *ref)
{
    assert_false(exists(at(f, "journal")));
    assert_false(exists(at(f, "%s", ref->rec_rel)));
    assert_false(exists(at(f, "%s", ref->key_rel)));
    assert_false(exists(at(f, "%s", ref->capath_rel)));
    assert_file_is(at(f, "trust/root.pem"), ref->bundle_after_del, ref->bundle_after_del_len);
    assert_false(present(f, "root", &certs[ROOT]));
    assert_int_equal(each(f, "root").n, 0);
    assert_clean(f);
}

/* Nothing of the batch: the store as setup() left it plus root2 in ca. */
static void assert_untouched(fixture_t *f)
{
    assert_false(exists(at(f, "journal")));
    assert_false(exists(at(f, "journal.tmp")));
    assert_false(present(f, "root", &certs[ROOT]));
    assert_null(store_get_key(f->s, "root", certs[ROOT].thumb));
    assert_int_equal(size_of(at(f, "trust/root.pem")), 0);
    char *l = listing(at(f, "trust/root"));
    assert_string_equal(l, "");
    free(l);
    l = listing(at(f, "certs/root"));
    assert_string_equal(l, "");
    free(l);
    l = listing(at(f, "keys"));
    assert_string_equal(l, "");
    free(l);
    assert_true(present(f, "ca", &certs[ROOT2]));
    assert_file_is(at(f, "trust/ca.pem"), certs[ROOT2].pem, certs[ROOT2].pem_len);
    assert_clean(f);
}

static void test_journal_complete_is_applied(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t j;
    make_reference(f, &ref);
    assert_false(present(f, "root", &certs[ROOT]));

    journal_add(&ref, &j);
    crash_with(f, "journal", j.p, j.len);
    assert_added_state(f, &ref);
    free(j.p);

    journal_del(&ref, &j);
    crash_with(f, "journal", j.p, j.len);
    assert_deleted_state(f, &ref);
    free(j.p);
    free_reference(&ref);
}

static int count_syncs(void *ctx, store_io_op_t op, const char *path)
{
    (void)path;
    if (op == STORE_IO_SYNC)
        (*(int *)ctx)++;
    return 0;
}

/* This boot's applied-journal name (the test needs a boot id). */
static void applied_name(char name[64])
{
    if (journal_applied_name(name, 64))
        skip(); /* no /proc/sys/kernel/random/boot_id here */
}

/* A batch takes one barrier: its journal is kept, renamed for this boot,
 * until the next batch's barrier has made its changes durable too; the
 * next batch's journal replaces it. */
static void test_journal_one_barrier_per_batch(void **state)
{
    fixture_t *f = *state;
    char name[64];
    applied_name(name);
    int syncs = 0;
    store_io_t io = {count_syncs, &syncs};
    store_close(f->s);
    const char *why = NULL;
    assert_int_equal(store_open_io(f->dir, NULL, &io, &f->s, &why), 0);
    for (int i = 0; i < 3; i++) {
        syncs = 0;
        if (i == 1)
            del1(f, "ca", &certs[INTER]);
        else
            put1(f, "ca", &certs[INTER]);
        assert_int_equal(syncs, 1);
        assert_false(exists(at(f, "journal")));
        assert_true(exists(at(f, "%s", name)));
        assert_int_equal(mode_of(at(f, "%s", name)), 0600); /* it carries keys */
        char *l = listing(f->dir);
        assert_null(strstr(l, "journal.tmp"));
        free(l);
    }
    /* an open in the same boot does not apply it again: nothing written */
    syncs = 0;
    store_close(f->s);
    assert_int_equal(store_open_io(f->dir, NULL, &io, &f->s, &why), 0);
    assert_true(present(f, "ca", &certs[INTER]));
    assert_int_equal(syncs, 0);
    assert_true(exists(at(f, "%s", name)));
    assert_clean(f);
}

/* The machine stopped after a batch was applied, before the next
 * barrier: its changes may be lost, so a journal applied in another boot
 * is applied again at open (then synced and removed); when a newer batch
 * was committed too, the older goes first. */
static void test_journal_of_another_boot_is_applied_again(void **state)
{
    fixture_t *f = *state;
    char name[64];
    applied_name(name);
    reference_t ref;
    jbuf_t add, del;
    make_reference(f, &ref);
    journal_add(&ref, &add);
    journal_del(&ref, &del);
    static const char other[] = "journal.applied-00000000000000000000000000000000";

    /* the add, applied before the stop, its files lost */
    crash_with(f, "journal", add.p, add.len);
    assert_added_state(f, &ref);
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", other), add.p, add.len);
    assert_int_equal(unlink(at(f, "%s", ref.rec_rel)), 0);
    assert_int_equal(unlink(at(f, "%s", ref.capath_rel)), 0);
    reopen(f);
    assert_added_state(f, &ref);
    assert_false(exists(at(f, "%s", other)));

    /* the add applied in another boot, the delete committed after it:
     * the add first, then the delete */
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", other), add.p, add.len);
    crash_with(f, "journal", del.p, del.len);
    assert_deleted_state(f, &ref);
    assert_false(exists(at(f, "%s", other)));

    /* a torn journal of another boot was never applied: dropped */
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", other), add.p, add.len - 10);
    reopen(f);
    assert_deleted_state(f, &ref);
    assert_false(exists(at(f, "%s", other)));

    /* once a recovery made everything durable, this boot's applied journal
     * goes too: it is older than what was applied after it */
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", name), add.p, add.len);
    crash_with(f, "journal", del.p, del.len);
    assert_deleted_state(f, &ref);
    assert_false(exists(at(f, "%s", name)));
    free(add.p);
    free(del.p);
    free_reference(&ref);
}

/* Fails the unlink of the path that ends in ctx. */
static int fail_unlink_of(void *ctx, store_io_op_t op, const char *path)
{
    const char *end = ctx;
    size_t n = path ? strlen(path) : 0, m = strlen(end);
    return op == STORE_IO_UNLINK && n >= m && !strcmp(path + n - m, end) ? EIO : 0;
}

/* A recovery that applies a journal drops this boot's applied journal (an
 * older batch) before the journal itself: stopped in between (here: the
 * removal fails), the journal is still there to be applied again, and
 * the older batch never outlives it (after a crash of the machine it
 * would be applied over the newer state). */
static void test_journal_recovery_drops_the_older_batch_first(void **state)
{
    fixture_t *f = *state;
    char name[64];
    applied_name(name);
    reference_t ref;
    jbuf_t add, del;
    make_reference(f, &ref);
    journal_add(&ref, &add);
    journal_del(&ref, &del);
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "%s", name), add.p, add.len);
    spew(at(f, "journal"), del.p, del.len);
    store_io_t io = {fail_unlink_of, name};
    const char *why = NULL;
    assert_int_equal(journal_recover(&libc_plat, &io, f->dir, &why), -1);
    assert_non_null(why);
    assert_true(exists(at(f, "journal")));   /* to be applied again */
    assert_true(exists(at(f, "%s", name)));
    /* the next recovery finishes it */
    reopen(f);
    assert_deleted_state(f, &ref);
    assert_false(exists(at(f, "%s", name)));
    free(add.p);
    free(del.p);
    free_reference(&ref);
}

static void test_journal_replay_is_idempotent(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t add, del;
    make_reference(f, &ref);
    journal_add(&ref, &add);
    journal_del(&ref, &del);

    /* applied, then found again (a crash after applying, before the
     * journal was removed): twice, three times */
    for (int i = 0; i < 3; i++) {
        crash_with(f, "journal", add.p, add.len);
        assert_added_state(f, &ref);
    }
    for (int i = 0; i < 3; i++) {
        crash_with(f, "journal", del.p, del.len);
        assert_deleted_state(f, &ref);
    }

    /* a crash half way through applying: some operations done, the
     * journal left - replaying it from the start gives the same result */
    store_close(f->s);
    f->s = NULL;
    tdir_rm(f->dir);
    reopen(f);
    crash_with(f, "journal", add.p, add.len);
    assert_added_state(f, &ref);
    /* first two of the delete's operations done by hand */
    size_t blen = 0;
    char *bundle = slurp(at(f, "trust/root.pem"), &blen);
    char *blank = blanked(&certs[ROOT]);
    memcpy(bundle, blank, certs[ROOT].pem_len);
    spew(at(f, "trust/root.pem"), bundle, blen);
    assert_int_equal(unlink(at(f, "%s", ref.rec_rel)), 0);
    crash_with(f, "journal", del.p, del.len);
    assert_deleted_state(f, &ref);
    free(blank);
    free(bundle);

    /* an append after which the bundle grew further (a crash after a
     * later append of the same batch): the replay cuts and rewrites */
    store_close(f->s);
    f->s = NULL;
    tdir_rm(f->dir);
    reopen(f);
    spew(at(f, "trust/root.pem"), "partial garbage beyond the block\n", 33);
    crash_with(f, "journal", add.p, add.len);
    assert_added_state(f, &ref);

    free(add.p);
    free(del.p);
    free_reference(&ref);
}

static void test_journal_add_and_delete_in_one_batch_replayed(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t j;
    make_reference(f, &ref);
    /* what store_flush journals for put + put_key + del of root in one
     * batch: append, record, key, blank, unlink record and key */
    char *blank = blanked(&certs[ROOT]);
    jb_start(&j);
    jb_at(&j, 'A', 0, "trust/root.pem", ref.bundle, ref.bundle_len);
    jb_write(&j, 0644, ref.rec_rel, ref.rec, ref.rec_len);
    jb_write(&j, 0600, ref.key_rel, ref.key, ref.key_len);
    jb_at(&j, 'O', 0, "trust/root.pem", blank, certs[ROOT].pem_len);
    jb_unlink(&j, ref.rec_rel);
    jb_unlink(&j, ref.key_rel);
    jb_seal(&j);
    for (int i = 0; i < 2; i++) {
        crash_with(f, "journal", j.p, j.len);
        assert_false(exists(at(f, "journal")));
        assert_file_is(at(f, "trust/root.pem"), blank, certs[ROOT].pem_len);
        assert_false(present(f, "root", &certs[ROOT]));
        assert_false(exists(at(f, "%s", ref.key_rel)));
        assert_clean(f);
    }
    free(j.p);
    free(blank);
    free_reference(&ref);
}

static void test_journal_incomplete_is_dropped(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t good, other;
    make_reference(f, &ref);
    journal_add(&ref, &good);
    journal_del(&ref, &other);
    put1(f, "ca", &certs[ROOT2]); /* something that must survive */
    assert_untouched(f);

    enum { N_VARIANTS = 10 };
    for (int v = 0; v < N_VARIANTS; v++) {
        jbuf_t j;
        memset(&j, 0, sizeof j);
        jb_raw(&j, good.p, good.len);
        switch (v) {
        case 0: /* a digit of the trailer changed */
            j.p[j.len - 2] = j.p[j.len - 2] == '0' ? '1' : '0';
            break;
        case 1: /* a byte of the data changed */
            j.p[200] ^= 0x01;
            break;
        case 2: /* cut before the final newline */
            j.len -= 1;
            break;
        case 3: /* cut in the trailer */
            j.len -= 30;
            break;
        case 4: /* no trailer */
            j.len -= 67;
            break;
        case 5: /* cut in the middle of an operation */
            j.len /= 2;
            break;
        case 6: /* the header only */
            j.len = 16;
            break;
        case 7: /* empty */
            j.len = 0;
            break;
        case 8: { /* another journal's trailer */
            j.len -= 67;
            jb_raw(&j, other.p + other.len - 67, 67);
            break;
        }
        case 9: /* a format line that is none */
            memcpy(j.p, "omadm-journal X\n", 16);
            break;
        }
        crash_with(f, "journal", j.p, j.len);
        if (exists(at(f, "journal")) || present(f, "root", &certs[ROOT]))
            fail_msg("variant %d of the incomplete journal was not dropped", v);
        assert_untouched(f);
        free(j.p);
    }
    free(good.p);
    free(other.p);
    free_reference(&ref);
}

/* A journal of a newer format (a later version's batch, committed and not
 * applied before the device went back to this version) is neither applied
 * nor dropped: store operations fail until a version that reads it runs,
 * store_check names it, and a reopen keeps it. */
static void test_journal_of_newer_format_is_kept(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t good, k;
    make_reference(f, &ref);
    journal_add(&ref, &good);
    put1(f, "ca", &certs[ROOT2]);
    memset(&k, 0, sizeof k);
    jb_raw(&k, "omadm-journal 2\n", 16);
    jb_raw(&k, good.p + 16, good.len - 16 - 67);
    jb_seal(&k);
    crash_with(f, "journal", k.p, k.len);
    char *kept = slurp(at(f, "journal"), NULL);
    assert_non_null(kept);
    assert_memory_equal(kept, k.p, k.len);
    free(kept);
    assert_false(exists(at(f, "%s", ref.rec_rel))); /* not applied */
    store_rec_t r;
    assert_int_equal(store_get(f->s, "ca", certs[ROOT2].thumb, &r), -1);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(put(f, "ca", &certs[INTER]), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), -1); /* never written over */
    lines_t l = check_lines(f, 0);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want,
             "%s/journal: format omadm-journal 2 is newer than this library reads "
             "(omadm-journal 1); kept, neither applied nor dropped", f->dir);
    assert_has(&l, want);
    reopen(f);
    kept = slurp(at(f, "journal"), NULL);
    assert_non_null(kept);
    assert_memory_equal(kept, k.p, k.len);
    free(kept);
    /* the version that wrote it would apply it; here: gone, all is well */
    assert_int_equal(unlink(at(f, "journal")), 0);
    reopen(f);
    assert_true(present(f, "ca", &certs[ROOT2]));
    free(k.p);
    free(good.p);
    free_reference(&ref);
}

static void test_journal_tmp_is_removed(void **state)
{
    fixture_t *f = *state;
    reference_t ref;
    jbuf_t j;
    make_reference(f, &ref);
    journal_add(&ref, &j);
    put1(f, "ca", &certs[ROOT2]);
    /* a journal.tmp was never renamed, so never applied: even a complete
     * one is removed and nothing of it applied */
    crash_with(f, "journal.tmp", j.p, j.len);
    assert_false(exists(at(f, "journal.tmp")));
    assert_untouched(f);
    crash_with(f, "journal.tmp", j.p, j.len / 2);
    assert_untouched(f);
    /* next to a complete journal: the journal is applied, the tmp removed */
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "journal.tmp"), "omadm-journal 1\nU certs/ca/x\n", 29);
    crash_with(f, "journal", j.p, j.len);
    assert_false(exists(at(f, "journal.tmp")));
    assert_added_state(f, &ref);
    assert_true(present(f, "ca", &certs[ROOT2]));
    free(j.p);
    free_reference(&ref);
}

static void test_journal_that_cannot_be_applied(void **state)
{
    fixture_t *f = *state;
    /* complete, but an operation fails (its directory does not exist):
     * the store still opens (the rest of the device stays manageable), the
     * journal stays, and store operations fail until it applies */
    jbuf_t j;
    jb_start(&j);
    jb_write(&j, 0644, "no/such/dir/file", "x", 1);
    jb_seal(&j);
    store_close(f->s);
    f->s = NULL;
    spew(at(f, "journal"), j.p, j.len);
    store_t *s = NULL;
    const char *why = NULL;
    assert_int_equal(store_open(f->dir, NULL, &s, &why), 0);
    assert_non_null(s);
    assert_true(exists(at(f, "journal")));
    store_rec_t r;
    assert_int_equal(store_get(s, "root", certs[ROOT].thumb, &r), -1);
    assert_int_equal(store_flush(s), -1);
    /* once the cause is gone, the next operation applies it */
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/no/such/dir'", f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(store_get(s, "root", certs[ROOT].thumb, &r), 1);
    assert_false(exists(at(f, "journal")));
    assert_true(exists(at(f, "no/such/dir/file")));
    store_close(s);
    free(j.p);

    /* an unknown operation: kept, and store operations fail on it */
    jb_start(&j);
    jb_fmt(&j, "X 1 1 certs/root/x\nx\n");
    jb_seal(&j);
    spew(at(f, "journal"), j.p, j.len);
    why = NULL;
    assert_int_equal(store_open(f->dir, NULL, &s, &why), 0);
    assert_int_equal(store_get(s, "root", certs[ROOT].thumb, &r), -1);
    store_close(s);
    free(j.p);

    /* once the journal is gone the store works */
    assert_int_equal(unlink(at(f, "journal")), 0);
    reopen(f);
    assert_clean(f);
}

/* ======== state records ======== */

/* store_get_state finds name holding exactly want (want_len bytes), and
 * hands it out NUL-terminated. */
static void assert_state_is(fixture_t *f, const char *name, const void *want, size_t want_len)
{
    char *data = (char *)1;
    size_t len = 12345;
    assert_int_equal(store_get_state(f->s, name, &data, &len), 0);
    assert_non_null(data);
    free(f->state_buf);
    f->state_buf = data;
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, want_len);
    assert_int_equal(data[len], 0);
    /* len may be NULL */
    char *again = NULL;
    assert_int_equal(store_get_state(f->s, name, &again, NULL), 0);
    assert_non_null(again);
    assert_memory_equal(again, want, want_len);
    free(again);
    free(f->state_buf);
    f->state_buf = NULL;
}

static void assert_state_absent(fixture_t *f, const char *name)
{
    char *data = (char *)1;
    size_t len = 12345;
    assert_int_equal(store_get_state(f->s, name, &data, &len), 1);
    assert_null(data);
    assert_int_equal(len, 0);
}

/* begin, put_state, commit, flush */
static void put_state1(fixture_t *f, const char *name, const char *text)
{
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, name, text, strlen(text)), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
}

typedef struct names {
    int n;
    char name[16][256];
    int stop_after; /* return 7 from the callback after this many (0: never) */
} names_t;

static int collect_name(void *ctx, const char *name)
{
    names_t *s = ctx;
    if (s->n < 16)
        snprintf(s->name[s->n], sizeof s->name[s->n], "%s", name);
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The names store_each_state reports, sorted, joined by spaces (valid
 * until the next call); each name must come once. */
static char *each_state(fixture_t *f, const char *prefix)
{
    names_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(store_each_state(f->s, prefix, collect_name, &s), 0);
    assert_in_range(s.n, 0, 16);
    qsort(s.name, (size_t)s.n, sizeof s.name[0], name_cmp);
    char *out = calloc(1, (size_t)s.n * 257 + 1);
    for (int i = 0; i < s.n; i++) {
        if (i) {
            assert_string_not_equal(s.name[i - 1], s.name[i]);
            strcat(out, " ");
        }
        strcat(out, s.name[i]);
    }
    free(f->names_buf);
    f->names_buf = out;
    return out;
}

static void test_state_put_get_flush_reopen(void **state)
{
    fixture_t *f = *state;
    /* binary, with NUL bytes: the length is explicit */
    static const char bin[] = "a\0b\0\0\xff\n-----BEGIN PRIVATE KEY-----\n";
    const size_t bin_len = sizeof bin - 1;
    char sp[PATH_MAX];
    keep(sp, at(f, "state/scep-1"));
    assert_true(is_dir(at(f, "state")));
    assert_int_equal(mode_of(at(f, "state")), 0700);
    assert_state_absent(f, "scep-1");

    /* staged in the open transaction */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", bin, bin_len), 0);
    assert_state_is(f, "scep-1", bin, bin_len);
    assert_false(exists(sp));
    /* committed, not flushed */
    assert_int_equal(store_commit(f->s), 0);
    assert_state_is(f, "scep-1", bin, bin_len);
    assert_false(exists(sp));
    /* flushed: one private file holding exactly the bytes */
    assert_int_equal(store_flush(f->s), 0);
    assert_file_is(sp, bin, bin_len);
    assert_int_equal(mode_of(sp), 0600);
    assert_int_equal(mode_of(at(f, "state")), 0700);
    char *l = listing(at(f, "state"));
    assert_string_equal(l, "scep-1");
    free(l);
    assert_state_is(f, "scep-1", bin, bin_len);
    assert_clean(f);
    /* durable */
    reopen(f);
    assert_state_is(f, "scep-1", bin, bin_len);
    assert_clean(f);

    /* replaced, and an empty record (both stay 0600) */
    put_state1(f, "scep-1", "second");
    assert_state_is(f, "scep-1", "second", 6);
    assert_int_equal(mode_of(sp), 0600);
    put_state1(f, "empty", "");
    assert_int_equal(size_of(at(f, "state/empty")), 0);
    assert_int_equal(mode_of(at(f, "state/empty")), 0600);
    reopen(f);
    assert_state_is(f, "empty", "", 0);
    assert_state_is(f, "scep-1", "second", 6);
    assert_clean(f);

    /* the store copied the data: changing the caller's buffer changes nothing */
    char buf[] = "original";
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "copied", buf, strlen(buf)), 0);
    memset(buf, 'x', strlen(buf));
    assert_state_is(f, "copied", "original", 8);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_file_is(at(f, "state/copied"), "original", 8);

    /* opening again puts a loosened state directory back to 0700, and
     * creates it in a store made before there were state records */
    assert_int_equal(chmod(at(f, "state"), 0755), 0);
    reopen(f);
    assert_int_equal(mode_of(at(f, "state")), 0700);
    tdir_rm(at(f, "state"));
    assert_false(exists(at(f, "state")));
    reopen(f);
    assert_int_equal(mode_of(at(f, "state")), 0700);
    assert_state_absent(f, "scep-1");
    assert_clean(f);
}

static void test_state_rollback_discards(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "x", 1), 0);
    store_rollback(f->s);
    assert_state_absent(f, "scep-1");
    assert_string_equal(each_state(f, ""), "");
    assert_int_equal(store_flush(f->s), 0);
    char *l = listing(at(f, "state"));
    assert_string_equal(l, "");
    free(l);

    /* a rollback keeps what earlier transactions committed, and a
     * rolled-back delete leaves the record */
    put_state1(f, "kept", "on disk");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "pending", 7), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "tx", 2), 0);
    assert_int_equal(store_put_state(f->s, "scep-2", "tx", 2), 0);
    assert_int_equal(store_del_state(f->s, "kept"), 0);
    assert_state_is(f, "scep-1", "tx", 2);
    assert_state_absent(f, "kept");
    store_rollback(f->s);
    assert_state_is(f, "scep-1", "pending", 7);
    assert_state_absent(f, "scep-2");
    assert_state_is(f, "kept", "on disk", 7);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_state_is(f, "scep-1", "pending", 7);
    assert_state_absent(f, "scep-2");
    assert_state_is(f, "kept", "on disk", 7);
    l = listing(at(f, "state"));
    assert_string_equal(l, "kept scep-1");
    free(l);
    assert_clean(f);
}

static void test_state_delete(void **state)
{
    fixture_t *f = *state;
    char sp[PATH_MAX];
    keep(sp, at(f, "state/scep-1"));
    put_state1(f, "scep-1", "data");

    /* staged: hidden at once, removed at the flush */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "scep-1"), 0);
    assert_state_absent(f, "scep-1");
    assert_int_equal(store_commit(f->s), 0);
    assert_state_absent(f, "scep-1");
    assert_true(exists(sp));
    assert_int_equal(store_flush(f->s), 0);
    assert_false(exists(sp));
    assert_state_absent(f, "scep-1");
    reopen(f);
    assert_state_absent(f, "scep-1");
    assert_clean(f);

    /* deleting what is not there is not an error and changes nothing */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "scep-1"), 0);
    assert_int_equal(store_del_state(f->s, "never-was"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    char *l = listing(at(f, "state"));
    assert_string_equal(l, "");
    free(l);
    assert_clean(f);

    /* put then delete in one transaction: nothing lands */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "a", 1), 0);
    assert_int_equal(store_del_state(f->s, "scep-1"), 0);
    assert_state_absent(f, "scep-1");
    assert_int_equal(store_commit(f->s), 0);
    assert_state_absent(f, "scep-1");
    assert_int_equal(store_flush(f->s), 0);
    assert_false(exists(sp));

    /* delete then put, the delete pending and the put in the next
     * transaction: the put wins */
    put_state1(f, "scep-1", "old");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "scep-1"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_state_absent(f, "scep-1");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "new", 3), 0);
    assert_state_is(f, "scep-1", "new", 3);
    assert_int_equal(store_commit(f->s), 0);
    assert_state_is(f, "scep-1", "new", 3);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_state_is(f, "scep-1", "new", 3);
    assert_int_equal(mode_of(sp), 0600);
    assert_clean(f);

    /* a pending put, deleted in the open transaction */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-2", "p", 1), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "scep-2"), 0);
    assert_state_absent(f, "scep-2");
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_false(exists(at(f, "state/scep-2")));
    assert_clean(f);
}

static void test_state_each(void **state)
{
    fixture_t *f = *state;
    assert_string_equal(each_state(f, ""), "");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-a", "1", 1), 0);
    assert_int_equal(store_put_state(f->s, "scep-b", "1", 1), 0);
    assert_int_equal(store_put_state(f->s, "other", "1", 1), 0);
    assert_int_equal(store_put_state(f->s, "scep-gone", "1", 1), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_string_equal(each_state(f, "scep-"), "scep-a scep-b scep-gone");
    assert_string_equal(each_state(f, ""), "other scep-a scep-b scep-gone");
    assert_string_equal(each_state(f, NULL), "other scep-a scep-b scep-gone");
    assert_string_equal(each_state(f, "scep-b"), "scep-b");
    assert_string_equal(each_state(f, "nothing"), "");

    /* what is in state/ but no record is not listed: hidden and temp
     * files, names no record has, directories */
    spew(at(f, "state/.scep-c.tmp"), "t", 1);
    spew(at(f, "state/scep- x"), "t", 1);
    spew(at(f, "state/scep-~"), "t", 1);
    assert_int_equal(mkdir(at(f, "state/scep-dir"), 0700), 0);
    assert_string_equal(each_state(f, "scep-"), "scep-a scep-b scep-gone");
    assert_int_equal(unlink(at(f, "state/.scep-c.tmp")), 0);
    assert_int_equal(unlink(at(f, "state/scep- x")), 0);
    assert_int_equal(unlink(at(f, "state/scep-~")), 0);
    assert_int_equal(rmdir(at(f, "state/scep-dir")), 0);

    /* staged changes: a pending put of a new name, a pending re-put of a
     * flushed one, a pending delete put back in the transaction, a
     * delete in the transaction; each name once, deleted ones not */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-c", "2", 1), 0);
    assert_int_equal(store_put_state(f->s, "scep-b", "2", 1), 0);
    assert_int_equal(store_del_state(f->s, "scep-a"), 0);
    assert_int_equal(store_put_state(f->s, "scep-c", "3", 1), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-a", "4", 1), 0);
    assert_int_equal(store_del_state(f->s, "scep-gone"), 0);
    assert_int_equal(store_put_state(f->s, "scep-d", "5", 1), 0);
    assert_int_equal(store_del_state(f->s, "scep-d"), 0);
    assert_int_equal(store_put_state(f->s, "scep-b", "6", 1), 0);
    assert_string_equal(each_state(f, "scep-"), "scep-a scep-b scep-c");
    assert_string_equal(each_state(f, ""), "other scep-a scep-b scep-c");
    assert_string_equal(each_state(f, "scep-g"), "");
    assert_int_equal(store_commit(f->s), 0);
    assert_string_equal(each_state(f, "scep-"), "scep-a scep-b scep-c");
    assert_int_equal(store_flush(f->s), 0);
    assert_string_equal(each_state(f, "scep-"), "scep-a scep-b scep-c");
    reopen(f);
    assert_string_equal(each_state(f, ""), "other scep-a scep-b scep-c");
    assert_state_is(f, "scep-a", "4", 1);
    assert_state_is(f, "scep-b", "6", 1);
    assert_state_is(f, "scep-c", "3", 1);

    /* the callback stops it, and its value comes back */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-e", "7", 1), 0);
    names_t s;
    for (int stop = 1; stop <= 4; stop++) {
        memset(&s, 0, sizeof s);
        s.stop_after = stop;
        assert_int_equal(store_each_state(f->s, "scep-", collect_name, &s), 7);
        assert_int_equal(s.n, stop);
    }
    store_rollback(f->s);
    assert_clean(f);
}

/* A callback that flushes (freeing every staged op) while
 * store_each_state runs, then stages a delete of what it is shown. */
typedef struct midway {
    store_t *s;
    names_t seen;
} midway_t;

static int flush_midway(void *ctx, const char *name)
{
    midway_t *m = ctx;
    collect_name(&m->seen, name);
    if (!strcmp(name, "a")) {
        assert_int_equal(store_commit(m->s), 0);
        assert_int_equal(store_flush(m->s), 0);
        assert_int_equal(store_begin(m->s), 0);
    } else if (!strcmp(name, "b")) {
        assert_int_equal(store_del_state(m->s, "b"), 0);
    }
    return 0;
}

static void test_state_each_callback_may_change_the_store(void **state)
{
    fixture_t *f = *state;
    put_state1(f, "z", "disk");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "a", "1", 1), 0);
    assert_int_equal(store_put_state(f->s, "b", "1", 1), 0);
    midway_t m;
    memset(&m, 0, sizeof m);
    m.s = f->s;
    assert_int_equal(store_each_state(f->s, "", flush_midway, &m), 0);
    /* each name once: a and b as staged when the walk began, z from the
     * disk (a and b, flushed meanwhile, not twice) */
    assert_int_equal(m.seen.n, 3);
    assert_string_equal(m.seen.name[0], "a");
    assert_string_equal(m.seen.name[1], "b");
    assert_string_equal(m.seen.name[2], "z");
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_string_equal(each_state(f, ""), "a z");
    assert_clean(f);
}

static void test_state_names(void **state)
{
    fixture_t *f = *state;
    char longest[201], too_long[202];
    memset(longest, 'n', 200);
    longest[200] = 0;
    memset(too_long, 'n', 201);
    too_long[201] = 0;
    static const char *const bad[] = {
        "", ".", "..", ".hidden", "a/b", "../x", "/abs", "a b", "a\nb", "a~", "a*",
        "caf\xc3\xa9", "tab\t", "semi;colon", "back\\slash",
    };
    assert_int_equal(store_begin(f->s), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store_put_state(f->s, bad[i], "x", 1), -1);
        assert_int_equal(store_del_state(f->s, bad[i]), -1);
        /* no record can have such a name: absent */
        assert_state_absent(f, bad[i]);
    }
    assert_int_equal(store_put_state(f->s, too_long, "x", 1), -1);
    assert_int_equal(store_del_state(f->s, too_long), -1);
    /* no data but a length */
    assert_int_equal(store_put_state(f->s, "scep-1", NULL, 1), -1);
    assert_string_equal(each_state(f, ""), "");

    /* the whole alphabet, the longest name, NULL data of length 0 */
    static const char *const good[] = {
        "a", "Z", "0", "a.b", "a..", "-", "_x", "x-", "A-Za-z0-9._-", "scep-1.state",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(store_put_state(f->s, good[i], good[i], strlen(good[i])), 0);
    assert_int_equal(store_put_state(f->s, longest, "long", 4), 0);
    assert_int_equal(store_put_state(f->s, "nothing", NULL, 0), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_state_is(f, good[i], good[i], strlen(good[i]));
        assert_int_equal(mode_of(at(f, "state/%s", good[i])), 0600);
    }
    assert_state_is(f, longest, "long", 4);
    assert_state_is(f, "nothing", "", 0);
    assert_clean(f);
}

static void test_state_name_like_a_temp_file(void **state)
{
    fixture_t *f = *state;
    /* "x.tmp" is a valid name: writing x (which the journal does through a
     * temp file) must leave the record x.tmp alone, in one batch or two */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "x.tmp", "tmp record", 10), 0);
    assert_int_equal(store_put_state(f->s, "x", "x record", 8), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    put_state1(f, "x", "x again");
    reopen(f);
    assert_state_is(f, "x.tmp", "tmp record", 10);
    assert_state_is(f, "x", "x again", 7);
    assert_string_equal(each_state(f, "x"), "x x.tmp");
    char *l = listing(at(f, "state"));
    assert_string_equal(l, "x x.tmp");
    free(l);
    assert_clean(f);
}

static void test_state_refused_outside_transaction(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(store_put_state(f->s, "scep-1", "x", 1), -1);
    assert_int_equal(store_del_state(f->s, "scep-1"), -1);
    assert_state_absent(f, "scep-1");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_commit(f->s), 0);
    /* after a commit, writes are refused again */
    assert_int_equal(store_put_state(f->s, "scep-1", "x", 1), -1);
    assert_int_equal(store_del_state(f->s, "scep-1"), -1);
    assert_int_equal(store_flush(f->s), 0);
    assert_state_absent(f, "scep-1");
    assert_string_equal(each_state(f, ""), "");
    char *l = listing(at(f, "state"));
    assert_string_equal(l, "");
    free(l);
    assert_clean(f);
}

static void test_state_and_certificates_in_one_batch(void **state)
{
    fixture_t *f = *state;
    const tcert_t *c = &certs[LEAF], *r = &certs[ROOT];
    /* an enrollment: the certificate, its key and the state that owns
     * them, in one transaction; a root and a state delete in another of
     * the same batch */
    put_state1(f, "scep-old", "old");
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "scep-1", "enrolled", 8), 0);
    assert_int_equal(put(f, "my-user", c), 0);
    assert_int_equal(store_put_key(f->s, "my-user", c->thumb, "LEAF KEY\n"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "scep-old"), 0);
    assert_int_equal(put(f, "root", r), 0);
    assert_int_equal(store_put_state(f->s, "scep-2", "root", 4), 0);
    assert_int_equal(store_commit(f->s), 0);
    /* the certificate paths see only certificates */
    assert_true(present(f, "my-user", c));
    assert_true(present(f, "root", r));
    seen_t seen = each(f, "my-user");
    assert_int_equal(seen.n, 1);
    assert_int_equal(times_seen(&seen, c), 1);
    assert_int_equal(each(f, "root").n, 1);
    char *k = own(f, store_get_key(f->s, "my-user", c->thumb));
    assert_non_null(k);
    assert_string_equal(k, "LEAF KEY\n");
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_true(present(f, "my-user", c));
    assert_true(present(f, "root", r));
    assert_file_is(at(f, "keys/my-user-%s", c->thumb), "LEAF KEY\n", 9);
    assert_file_is(capath_file(f, "root", r, 0), r->pem, r->pem_len);
    assert_file_is(at(f, "trust/root.pem"), r->pem, r->pem_len);
    assert_state_is(f, "scep-1", "enrolled", 8);
    assert_state_is(f, "scep-2", "root", 4);
    assert_state_absent(f, "scep-old");
    assert_string_equal(each_state(f, ""), "scep-1 scep-2");
    assert_clean(f);

    /* and out again together: a state op between certificate ops */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del(f->s, "my-user", c->thumb), 0);
    assert_int_equal(store_del_state(f->s, "scep-1"), 0);
    assert_int_equal(store_del(f->s, "root", r->thumb), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_false(present(f, "my-user", c));
    assert_false(present(f, "root", r));
    assert_false(exists(at(f, "keys/my-user-%s", c->thumb)));
    assert_false(exists(capath_file(f, "root", r, 0)));
    assert_int_equal(count_begin_lines(at(f, "trust/root.pem")), 0);
    assert_state_absent(f, "scep-1");
    assert_string_equal(each_state(f, ""), "scep-2");
    assert_clean(f);
}

static void test_state_only_batch(void **state)
{
    fixture_t *f = *state;
    populate(f);
    char *bundle = own(f, slurp(at(f, "trust/root.pem"), NULL));
    assert_non_null(bundle);
    long bundle_len = size_of(at(f, "trust/root.pem"));
    /* two transactions of state ops only: one batch, and the certificate
     * files are left as they were */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "s1", "one", 3), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_put_state(f->s, "s2", "two", 3), 0);
    assert_int_equal(store_del_state(f->s, "absent"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_false(exists(at(f, "journal")));
    assert_file_is(at(f, "trust/root.pem"), bundle, (size_t)bundle_len);
    assert_state_is(f, "s1", "one", 3);
    assert_state_is(f, "s2", "two", 3);
    /* nothing pending: a second flush is a no-op */
    assert_int_equal(store_flush(f->s), 0);
    reopen(f);
    assert_state_is(f, "s1", "one", 3);
    assert_state_is(f, "s2", "two", 3);
    assert_file_is(at(f, "trust/root.pem"), bundle, (size_t)bundle_len);
    /* a batch of only a delete */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_del_state(f->s, "s1"), 0);
    assert_int_equal(store_commit(f->s), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_false(exists(at(f, "state/s1")));
    assert_state_is(f, "s2", "two", 3);
    assert_clean(f);
}

static void test_state_check(void **state)
{
    fixture_t *f = *state;
    populate(f);
    put_state1(f, "scep-1", "one");
    put_state1(f, "x.tmp", "a record");
    /* state records are not problems */
    assert_clean(f);
    /* but a readable one is (it may hold a private key) */
    assert_int_equal(chmod(at(f, "state/scep-1"), 0644), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(chmod(at(f, "state/scep-1"), 0600), 0);
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
    /* and so is the directory */
    assert_int_equal(chmod(at(f, "state"), 0750), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(chmod(at(f, "state"), 0700), 0);
    assert_int_equal(store_check(f->s, 0, NULL, NULL), 0);
    /* a file no record is named, a directory */
    spew(at(f, "state/bad name"), "x", 1);
    assert_int_equal(chmod(at(f, "state/bad name"), 0600), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(unlink(at(f, "state/bad name")), 0);
    assert_int_equal(mkdir(at(f, "state/sub"), 0700), 0);
    assert_true(store_check(f->s, 0, NULL, NULL) > 0);
    assert_int_equal(rmdir(at(f, "state/sub")), 0);
    assert_clean(f);
}

static void test_state_journal_replayed(void **state)
{
    fixture_t *f = *state;
    /* a complete journal of state ops, as store_flush writes it, is
     * applied at open (twice over is the same) */
    static const char bin[] = "k\0e\0y";
    put_state1(f, "gone", "x");
    jbuf_t j;
    jb_start(&j);
    jb_write(&j, 0600, "state/scep-1", bin, sizeof bin - 1);
    jb_unlink(&j, "state/gone");
    jb_unlink(&j, "state/never-was");
    jb_seal(&j);
    own(f, j.p);
    for (int pass = 0; pass < 2; pass++) {
        crash_with(f, "journal", j.p, j.len);
        assert_false(exists(at(f, "journal")));
        assert_state_is(f, "scep-1", bin, sizeof bin - 1);
        assert_int_equal(mode_of(at(f, "state/scep-1")), 0600);
        assert_state_absent(f, "gone");
        assert_clean(f);
    }
    /* an incomplete one is dropped */
    jbuf_t k;
    jb_start(&k);
    jb_write(&k, 0600, "state/scep-1", "torn", 4);
    own(f, k.p);
    crash_with(f, "journal", k.p, k.len);
    assert_false(exists(at(f, "journal")));
    assert_state_is(f, "scep-1", bin, sizeof bin - 1);
    assert_clean(f);
}

/* ---- counting state records ---- */

static int count_one(void *ctx, const char *name)
{
    (void)name;
    ++*(size_t *)ctx;
    return 0;
}

/* store_count_state agrees with what store_each_state lists, for each of
 * the prefixes. */
static void counts_agree(store_t *s, int step)
{
    static const char *const prefixes[] = {"scep-a-", "scep-b-", "scep-", ""};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t listed = 0, counted = 99999;
        assert_int_equal(store_each_state(s, prefixes[i], count_one, &listed), 0);
        assert_int_equal(store_count_state(s, prefixes[i], &counted), 0);
        if (listed != counted)
            fail_msg("step %d, prefix \"%s\": %zu listed, %zu counted", step, prefixes[i],
                     listed, counted);
    }
}

/* Fails every write once armed (a flush that cannot write its journal). */
static int fail_writes(void *ctx, store_io_op_t op, const char *path)
{
    (void)path;
    return *(bool *)ctx && op == STORE_IO_WRITE ? ENOSPC : 0;
}

/* The count of a prefix is kept as changes are staged, committed, rolled
 * back and flushed (the limit of SCEP enrollments is checked against it):
 * a walk of puts and deletes of names under two prefixes, across commits,
 * rollbacks, flushes, a flush that fails, reopening (and a record file
 * put there while the store was closed) checks it against the listing
 * after every step, for four prefixes. */
static void test_state_count_follows_every_change(void **state)
{
    fixture_t *f = *state;
    bool fail = false;
    store_io_t io = {fail_writes, &fail};
    const char *why = NULL;
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open_io(f->dir, NULL, &io, &f->s, &why), 0);
    unsigned x = 12345;
    bool in_tx = false;
    int lost = 0;
    for (int step = 0; step < 600; step++) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 16) % 100;
        char name[32];
        snprintf(name, sizeof name, "scep-%c-%u", "ab"[(x >> 8) & 1], (x >> 10) % 12);
        if (!in_tx) {
            assert_int_equal(store_begin(f->s), 0);
            in_tx = true;
        }
        if (r < 45)
            assert_int_equal(store_put_state(f->s, name, "v", 1), 0);
        else if (r < 70)
            assert_int_equal(store_del_state(f->s, name), 0);
        else if (r < 82) {
            assert_int_equal(store_commit(f->s), 0);
            in_tx = false;
        } else if (r < 88) {
            store_rollback(f->s);
            in_tx = false;
        } else if (r < 94) {
            assert_int_equal(store_commit(f->s), 0);
            in_tx = false;
            assert_int_equal(store_flush(f->s), 0);
        } else if (r < 96) {
            /* a flush that cannot write: the batch (if any) is lost */
            assert_int_equal(store_commit(f->s), 0);
            in_tx = false;
            fail = true;
            lost += store_flush(f->s) == -1;
            fail = false;
        } else {
            if (in_tx)
                store_rollback(f->s);
            in_tx = false;
            store_close(f->s);
            f->s = NULL;
            if (r >= 98) {
                /* a record file put there while the store was closed */
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/state/scep-a-x%d", f->dir, step);
                spew(p, "w", 1);
            }
            assert_int_equal(store_open_io(f->dir, NULL, &io, &f->s, &why), 0);
        }
        counts_agree(f->s, step);
    }
    if (in_tx)
        store_rollback(f->s);
    assert_true(lost > 0);
}

/* ---- certificate ingest: one encoding ---- */

/* The root's DER with its signature BIT STRING saying one unused bit and
 * that bit set (DER wants unused bits zero), or with the outer SEQUENCE's
 * length in four bytes instead of three (BER).  OpenSSL reads both and
 * writes other bytes for them.  Malloc'ed. */
static uint8_t *not_der(bool unused_bits, size_t *len)
{
    const tcert_t *r = &certs[ROOT];
    const unsigned char *p = r->der;
    long n;
    int tag, cls;
    assert_int_equal(r->der[0], 0x30);
    assert_int_equal(r->der[1], 0x82);
    uint8_t *out = malloc(r->der_len + 1);
    assert_non_null(out);
    if (!unused_bits) {
        out[0] = 0x30;
        out[1] = 0x83;
        out[2] = 0;
        memcpy(out + 3, r->der + 2, r->der_len - 2);
        *len = r->der_len + 1;
        return out;
    }
    memcpy(out, r->der, r->der_len);
    *len = r->der_len;
    /* Certificate: into the SEQUENCE, over tbsCertificate and the
     * algorithm, to the signature's BIT STRING */
    assert_false(ASN1_get_object(&p, &n, &tag, &cls, (long)r->der_len) & 0x80);
    for (int i = 0; i < 2; i++) {
        const unsigned char *q = p;
        assert_false(ASN1_get_object(&q, &n, &tag, &cls, (long)(r->der + r->der_len - p)) & 0x80);
        p = q + n;
    }
    assert_false(ASN1_get_object(&p, &n, &tag, &cls, (long)(r->der + r->der_len - p)) & 0x80);
    assert_int_equal(tag, V_ASN1_BIT_STRING);
    assert_int_equal(*p, 0); /* no unused bits */
    out[p - r->der] = 1;
    out[*len - 1] |= 1;
    return out;
}

/* cert_decode refuses data in the armour given (0 raw, 1 base64, 2 PEM)
 * with want_why. */
static void refused_in(const uint8_t *der, size_t len, int armour, const char *want_why)
{
    uint8_t *got = NULL;
    size_t got_len = 0, text_len = 0;
    const char *why = NULL;
    char *text = armour == 1 ? cert_b64(&libc_plat, der, len)
                 : armour == 2 ? cert_pem(&libc_plat, der, len, &text_len)
                               : NULL;
    const uint8_t *in = armour ? (const uint8_t *)text : der;
    size_t in_len = armour ? strlen(text) : len;
    assert_int_equal(cert_decode(&libc_plat, in, in_len, armour == 0, &got, &got_len, &why), -1);
    assert_null(got);
    assert_non_null(why);
    assert_string_equal(why, want_why);
    free(text);
}

/* A certificate reaches the store only as the bytes OpenSSL writes for it
 * (the thumbprint, the record, the CApath file and the bundle then agree
 * whatever the armour): one in another encoding is refused as raw DER, as
 * base64 and as PEM alike, and the same certificate re-encoded is taken in
 * all three. */
static void test_ingest_refuses_what_is_not_der(void **state)
{
    (void)state;
    for (int v = 0; v < 2; v++) {
        size_t len = 0;
        uint8_t *der = not_der(v == 0, &len);
        /* OpenSSL reads it, and would write something else */
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        assert_non_null(x);
        unsigned char *again = NULL;
        int n = i2d_X509(x, &again);
        assert_true(n > 0);
        assert_true((size_t)n != len || memcmp(again, der, len));
        X509_free(x);
        for (int armour = 0; armour < 3; armour++)
            refused_in(der, len, armour, "certificate not DER-encoded");
        /* its re-encoding is DER: accepted as it is in every armour */
        for (int armour = 0; armour < 3; armour++) {
            size_t text_len = 0, got_len = 0;
            uint8_t *got = NULL;
            const char *why = NULL;
            char *text = armour == 1 ? cert_b64(&libc_plat, again, (size_t)n)
                         : armour == 2 ? cert_pem(&libc_plat, again, (size_t)n, &text_len)
                                       : NULL;
            const uint8_t *in = armour ? (const uint8_t *)text : again;
            size_t in_len = armour ? strlen(text) : (size_t)n;
            assert_int_equal(cert_decode(&libc_plat, in, in_len, armour == 0, &got, &got_len,
                                         &why),
                             0);
            assert_int_equal(got_len, (size_t)n);
            assert_memory_equal(got, again, got_len);
            free(got);
            free(text);
        }
        OPENSSL_free(again);
        free(der);
    }
}

static int g_ui_reads;

static int ui_reader(UI *ui, UI_STRING *uis)
{
    (void)ui, (void)uis;
    g_ui_reads++;
    return 0;
}

/* PEM with encryption headers is refused without being decrypted: OpenSSL
 * is never made to ask a terminal for a pass phrase on a server's behalf
 * (it did, and a `dmclient process` on a terminal waited for it). */
static void test_ingest_encrypted_pem_asks_nobody(void **state)
{
    (void)state;
    UI_METHOD *m = UI_create_method("test: count prompts");
    assert_non_null(m);
    UI_method_set_reader(m, ui_reader);
    UI_set_default_method(m);
    g_ui_reads = 0;
    const tcert_t *r = &certs[ROOT];
    const char *lines = strchr(r->pem, '\n') + 1; /* after the BEGIN line */
    char *pem = NULL;
    assert_true(asprintf(&pem,
                         "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n"
                         "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n%s",
                         lines) > 0);
    uint8_t *der = NULL;
    size_t der_len = 0;
    const char *why = NULL;
    assert_int_equal(cert_decode(&libc_plat, (uint8_t *)pem, strlen(pem), false, &der, &der_len,
                                 &why),
                     -1);
    assert_int_equal(g_ui_reads, 0);
    assert_string_equal(why, "encrypted PEM");
    UI_set_default_method(UI_OpenSSL());
    UI_destroy_method(m);
    free(pem);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_layout),
        T(test_open_twice_in_one_process),
        T(test_open_waits_for_another_process),
        T(test_certstore_open_twice_is_busy),
        T(test_open_fails_on_uncreatable_path),
        T(test_open_on_regular_file_leaves_it_alone),
        T(test_open_fails_on_too_long_path),
        T(test_put_commit_flush_get),
        T(test_record_fields_round_trip),
        T(test_get_reads_the_directory_anew),
        T(test_record_server_dash_round_trip),
    T(test_record_keeps_what_listings_show),
    T(test_check_kept_fields_differ),
    T(test_get_after_the_disk_changed),
        T(test_get_sees_transaction_and_pending),
        T(test_rollback_discards),
        T(test_del_removes_record_and_key),
        T(test_refused_outside_transaction),
        T(test_put_thumbprint_mismatch_fails),
        T(test_put_copies_the_record),
        T(test_each_lists_staged_and_flushed_once),
        T(test_each_name_from_heads),
        T(test_each_add_then_delete_in_one_batch),
        T(test_each_delete_then_readd_in_one_batch),
        T(test_each_stops_when_callback_says_so),
        T(test_keys),
        T(test_key_put_then_delete_in_one_transaction),
        T(test_key_delete_then_put_in_one_transaction),
        T(test_capath_holds_pem),
        T(test_capath_same_subject),
        T(test_capath_same_subject_one_batch),
        T(test_bundle_append_and_blank),
        T(test_bundle_add_then_delete_in_one_batch),
        T(test_bundle_put_twice_in_one_batch),
        T(test_bundle_readable_by_openssl),
        T(test_non_trust_store_has_no_bundle),
        T(test_check_good_store),
        T(test_check_capath_file_deleted),
        T(test_check_capath_gap),
        T(test_check_record_byte_flipped),
        T(test_check_record_thumb_line_changed),
        T(test_check_bundle_block_blanked),
        T(test_check_stray_file),
        T(test_check_stray_files_elsewhere),
        T(test_check_key_mode),
        T(test_check_reports_through_callback),
        T(test_modes_of_a_fresh_store),
        T(test_check_reports_and_repairs_modes),
        T(test_check_repair_reports_what_is_left),
        T(test_check_repair_rebuilds_capath_and_bundle),
        T(test_check_repair_keeps_what_it_cannot_read),
        T(test_check_temp_files),
        T(test_record_of_newer_format),
        T(test_write_fixes_modes),
        T(test_journal_complete_is_applied),
        T(test_journal_one_barrier_per_batch),
        T(test_journal_of_another_boot_is_applied_again),
        T(test_journal_recovery_drops_the_older_batch_first),
        T(test_journal_replay_is_idempotent),
        T(test_journal_add_and_delete_in_one_batch_replayed),
        T(test_journal_incomplete_is_dropped),
        T(test_journal_of_newer_format_is_kept),
        T(test_journal_tmp_is_removed),
        T(test_journal_that_cannot_be_applied),
        T(test_state_put_get_flush_reopen),
        T(test_state_rollback_discards),
        T(test_state_delete),
        T(test_state_each),
        T(test_state_each_callback_may_change_the_store),
        T(test_state_names),
        T(test_state_name_like_a_temp_file),
        T(test_state_refused_outside_transaction),
        T(test_state_and_certificates_in_one_batch),
        T(test_state_only_batch),
        T(test_state_check),
        T(test_state_journal_replayed),
        T(test_state_count_follows_every_change),
        T(test_ingest_refuses_what_is_not_der),
        T(test_ingest_encrypted_pem_asks_nobody),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
