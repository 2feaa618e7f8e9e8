/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "omadm_certstore.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n==fuzz== invariant broken at %s:%d: %s\n==fuzz== ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- platform ---- */

static uint64_t rng;
static int64_t clock_now = FUZZ_NOW;
static struct {
    uint8_t bytes[32];
    size_t len;       /* 0: unused */
} pins[FUZZ_RANDOM_PINS];

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static int pseudo_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    for (int i = 0; i < FUZZ_RANDOM_PINS; i++) {
        if (pins[i].len && pins[i].len == len) {
            memcpy(buf, pins[i].bytes, len);
            return 0;
        }
    }
    for (size_t i = 0; i < len; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        buf[i] = (uint8_t)(rng >> 24);
    }
    return 0;
}

static void *alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void *reallocate(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n ? n : 1);
}

static void release(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

/* Every hook set: the SCEP layer takes a table with the defaults filled in. */
static const omadm_platform_t platform = {.now = fixed_now, .random = pseudo_random,
                                          .alloc = alloc, .realloc = reallocate, .free = release};

const omadm_platform_t *fuzz_platform(void)
{
    return &platform;
}

void fuzz_platform_reset(void)
{
    rng = 0x9E3779B97F4A7C15ull;
    clock_now = FUZZ_NOW;
}

void fuzz_clock_set(int64_t now)
{
    clock_now = now;
}

void fuzz_random_pin(const uint8_t *bytes, size_t len)
{
    int i = 0;
    while (i < FUZZ_RANDOM_PINS && pins[i].len && pins[i].len != len)
        i++;
    FUZZ_CHECK(i < FUZZ_RANDOM_PINS && len && len <= sizeof pins[i].bytes,
               "cannot pin %zu random bytes", len);
    memcpy(pins[i].bytes, bytes, len);
    pins[i].len = len;
}

/* ---- storage in memory ---- */

static int find(fuzz_mem_t *m, const char *key, bool create)
{
    for (int i = 0; i < FUZZ_MEM_KEYS; i++)
        if (m->slot[i].key[0] && !strcmp(m->slot[i].key, key))
            return i;
    if (!create || strlen(key) >= sizeof m->slot[0].key)
        return -1;
    for (int i = 0; i < FUZZ_MEM_KEYS; i++)
        if (!m->slot[i].key[0]) {
            strcpy(m->slot[i].key, key);
            return i;
        }
    return -1;
}

static int mem_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    fuzz_mem_t *m = ctx;
    int i = find(m, key, false);
    if (i < 0 || !m->slot[i].data)
        return 1;
    *data = malloc(m->slot[i].len ? m->slot[i].len : 1);
    if (!*data)
        return -1;
    memcpy(*data, m->slot[i].data, m->slot[i].len);
    *len = m->slot[i].len;
    return 0;
}

static void mem_release(void *ctx, uint8_t *data)
{
    (void)ctx;
    free(data);
}

static int mem_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    fuzz_mem_t *m = ctx;
    int i = find(m, key, true);
    uint8_t *copy = i < 0 ? NULL : malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    free(m->slot[i].data);
    m->slot[i].data = copy;
    m->slot[i].len = len;
    return 0;
}

omadm_storage_t fuzz_mem_storage(fuzz_mem_t *m)
{
    return (omadm_storage_t){.ctx = m, .load = mem_load, .release = mem_release, .save = mem_save};
}

void fuzz_mem_put(fuzz_mem_t *m, const char *key, const uint8_t *data, size_t len)
{
    FUZZ_CHECK(mem_save(m, key, data, len) == 0, "cannot keep \"%s\" in memory", key);
}

void fuzz_mem_clear(fuzz_mem_t *m)
{
    for (int i = 0; i < FUZZ_MEM_KEYS; i++)
        free(m->slot[i].data);
    memset(m, 0, sizeof *m);
}

omadm_t *fuzz_engine(fuzz_mem_t *m)
{
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.dev_id = "omadm-device"; /* the DevId the corpus (and the conformance seeds) address */
    omadm_storage_t st = fuzz_mem_storage(m);
    omadm_t *dm = NULL;
    omadm_error_t err = omadm_new(&cfg, fuzz_platform(), &st, &dm);
    FUZZ_CHECK(err == OMADM_OK, "the engine state a run saved must load again: %s",
               omadm_strerror(err));
    return dm;
}

/* ---- the store directory ---- */

static char base_dir[256], store_dir[300];
/* The store, open while nothing changed it since it was opened or last
 * checked: opening it again would find the same. */
static omadm_certstore_t *kept;

/* Remove what is inside the directory at fd (closed here). */
static void empty_dir(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        if (errno != EISDIR && errno != EPERM)
            continue;
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            empty_dir(sub);
        unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

static void remove_base_dir(void)
{
    omadm_certstore_close(kept);
    kept = NULL;
    int fd = open(base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        empty_dir(fd);
    rmdir(base_dir);
}

/* Every batch the store makes durable goes through its journal, in the
 * store directory itself (store.h), and opening and closing a store whose
 * layout exists writes nothing there: so an event on that directory says
 * the store changed.  inotify watches it; -1 when inotify is not there
 * (then every input is taken as a change). */
static int watch_fd = -1;

const char *fuzz_store_dir(void)
{
    if (store_dir[0])
        return store_dir;
    const char *base = getenv("FUZZ_TMPDIR");
    struct stat st;
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                   ? "/dev/shm"
                   : "/tmp";
    int n = snprintf(base_dir, sizeof base_dir, "%s/omadm-fuzz.%ld", base, (long)getpid());
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof base_dir, "directory name too long");
    snprintf(store_dir, sizeof store_dir, "%s/store", base_dir);
    if ((mkdir(base_dir, 0700) && errno != EEXIST) || (mkdir(store_dir, 0755) && errno != EEXIST) ||
        chmod(store_dir, 0755))
        fuzz_fail(__FILE__, __LINE__, "mkdir", "cannot create %s", store_dir);
    atexit(remove_base_dir);
    watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch_fd >= 0 &&
        inotify_add_watch(watch_fd, store_dir,
                          IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_MODIFY) < 0) {
        close(watch_fd);
        watch_fd = -1;
    }
    return store_dir;
}

/* Whether anything was written to the store directory since the last call. */
static bool changed(void)
{
    if (watch_fd < 0)
        return true;
    bool any = false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(watch_fd, buf, sizeof buf) > 0)
        any = true;
    return any;
}

/* The store may hold more than an empty store's layout. */
static bool dirty = true;

static void open_kept(const char *what)
{
    const char *why = NULL;
    omadm_error_t err = omadm_certstore_open(store_dir, fuzz_platform(), &kept, &why);
    FUZZ_CHECK(err == OMADM_OK, "the store must open %s: %s (%s)", what, omadm_strerror(err),
               why ? why : "no reason");
}

void fuzz_store_fresh(void)
{
    fuzz_store_dir();
    if (!changed() && !dirty)
        return;
    omadm_certstore_close(kept);
    kept = NULL;
    int fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "cannot open the store directory %s", store_dir);
    empty_dir(fd);
    open_kept("in an empty directory");
    changed();
    dirty = false;
}

struct omadm_certstore *fuzz_store_open(omadm_t *dm)
{
    fuzz_store_dir();
    if (!kept)
        open_kept("again after a run changed it");
    omadm_error_t err = omadm_certstore_register(dm, kept);
    FUZZ_CHECK(err == OMADM_OK, "the certificate CSPs must register: %s", omadm_strerror(err));
    return kept;
}

static void print_problem(void *ctx, const char *problem)
{
    fprintf(stderr, "==fuzz== store check (%s): %s\n", (const char *)ctx, problem);
}

void fuzz_store_done(struct omadm_certstore *cs, const char *what)
{
    FUZZ_CHECK(cs == kept, "not the store fuzz_store_open gave");
    if (!changed())
        return; /* as consistent as when it was last checked; stays open */
    dirty = true;
    unsigned problems = 0;
    omadm_error_t err = omadm_certstore_check(cs, 0, print_problem, (void *)what, &problems);
    FUZZ_CHECK(err == OMADM_OK && problems == 0, "the store must be consistent %s: %u problem(s)",
               what, problems);
    /* the next run opens it again: what a run left must open */
    omadm_certstore_close(kept);
    kept = NULL;
}

/* ---- messages ---- */

void fuzz_reply_decodes(omadm_t *dm, const uint8_t *reply, size_t len, bool wbxml)
{
    bool is_wbxml = codec_detect(reply, len) == SYNCML_ENC_WBXML;
    FUZZ_CHECK(is_wbxml == wbxml, "the engine wrote %s where %s was due", is_wbxml ? "WBXML" : "XML",
               wbxml ? "WBXML" : "XML");
    syncml_msg_t m;
    syncml_msg_init(&m, dm);
    const char *why = NULL;
    omadm_error_t err = is_wbxml ? codec_wbxml_decode(dm, reply, len, &m, &why)
                                 : codec_xml_decode(dm, reply, len, &m, &why);
    syncml_msg_free(&m);
    FUZZ_CHECK(err == OMADM_OK || (err == OMADM_E_TOO_LARGE && len > FUZZ_MAX_MSG_SIZE),
               "a message the engine wrote must decode: %s (%s)", omadm_strerror(err),
               why ? why : "no reason");
}
