/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host.c - the smallest complete omadm host: copy it into a product and
 * replace each hook with the product's own.
 *
 *   omadm-example-host STATE_DIR MESSAGE_FILE
 *
 * It creates an engine with its platform hooks (clock, randomness, logging,
 * memory) and a storage table (one file per key in STATE_DIR, replaced
 * atomically), opens the certificate store in STATE_DIR/store, registers the
 * certificate CSPs, hands the SyncML message in MESSAGE_FILE to the engine
 * and writes the device's reply on stdout.  How to build it: README.md.
 *
 * A real host also moves the messages over HTTP (the engine does no I/O),
 * calls omadm_step() when the time it returns has come (SCEP enrollment runs
 * there; give the store an HTTP table with omadm_certstore_set_host()), and
 * sends queued generic alerts (omadm_alerts()); see those functions in
 * omadm.h.
 *
 * Only the two installed public headers are used.
 */
#define _POSIX_C_SOURCE 200809L

#include <omadm/omadm.h>
#include <omadm/omadm_certstore.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Persisted values and messages larger than this are refused. */
#define HOST_MAX_FILE ((size_t)16 << 20)

/* ---- platform hooks ----------------------------------------------------------
 * Every hook gets the table's ctx back; here it holds the log threshold.  The
 * engine, the store and the CSPs use these and nothing else for time,
 * randomness, logging and memory. */

struct host {
    omadm_log_level_t max_level; /* messages above it are dropped */
};

static int64_t host_now(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL); /* wall clock, UTC seconds */
}

/* Random bytes become session nonces and SCEP transaction ids: they must be
 * unpredictable.  A device with a hardware RNG reads it here. */
static int host_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = read(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return off == len ? 0 : -1;
}

static void host_log(void *ctx, omadm_log_level_t level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const struct host *h = ctx;
    if (level > h->max_level)
        return;
    fprintf(stderr, "omadm %s: %s\n", (unsigned)level < 4 ? names[level] : "?", msg);
}

/* Memory: a product may point these at its own pool. */
static void *host_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *host_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void host_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

/* ---- files ------------------------------------------------------------------- */

/* Read a whole file of at most max bytes.  0 and a malloc'ed *data, or an
 * errno value (ENOENT when the file does not exist). */
static int load_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int err = 0;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno;
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap > max ? NULL : realloc(buf, cap ? cap * 2 : 4096);
            if (!nb) {
                err = cap > max ? EFBIG : ENOMEM;
                goto out;
            }
            buf = nb;
            cap = cap ? cap * 2 : 4096;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        err = EIO;
    else if (n > max)
        err = EFBIG;
out:
    fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    *data = buf;
    *len = n;
    return 0;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Replace dir/name atomically: after a crash a reader finds the old value or
 * the new one, never a mix.  Write a temporary file, make it durable, rename
 * it over the old one, then make the rename durable. */
static int replace_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write_all(fd, data, len) || fsync(fd)) {
        close(fd);
        goto fail;
    }
    if (close(fd) || rename(tmp, dst))
        goto fail;
    return fsync_dir(dir);
fail:
    unlink(tmp);
    return -1;
}

/* ---- storage table --------------------------------------------------------------
 * The engine persists its tree and session state under short ASCII keys
 * ("tree", "session", ...).  Here: one file per key in the state directory. */

struct file_storage {
    const char *dir;
};

static int key_ok(const char *key)
{
    return key[0] && key[0] != '.' && !strchr(key, '/');
}

static int fs_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    const struct file_storage *fs = ctx;
    char path[4096];
    if (!key_ok(key) || snprintf(path, sizeof path, "%s/%s", fs->dir, key) >= (int)sizeof path)
        return -1;
    int err = load_file(path, HOST_MAX_FILE, data, len);
    if (err == ENOENT)
        return 1; /* never saved: the engine starts fresh */
    return err ? -1 : 0;
}

static void fs_release(void *ctx, uint8_t *data)
{
    (void)ctx;
    free(data); /* what fs_load's load_file allocated */
}

static int fs_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    const struct file_storage *fs = ctx;
    if (!key_ok(key))
        return -1;
    return replace_file(fs->dir, key, data, len);
}

/* ---- one message ------------------------------------------------------------------ */

/* Process the message in file and write the reply on stdout. */
static int process_file(omadm_t *dm, const char *file)
{
    uint8_t *msg = NULL, *reply = NULL;
    size_t msg_len = 0, reply_len = 0;
    int err = load_file(file, HOST_MAX_FILE, &msg, &msg_len);
    if (err) {
        fprintf(stderr, "%s: %s\n", file, strerror(err));
        return -1;
    }
    /* The reply is in the message's encoding (XML or WBXML).  State changes
     * are durable (storage table, store) before omadm_process() returns. */
    omadm_error_t e = omadm_process(dm, msg, msg_len, &reply, &reply_len);
    free(msg);
    if (e) {
        const char *detail = omadm_last_error_detail(dm);
        fprintf(stderr, "omadm_process: %s%s%s\n", omadm_strerror(e), detail ? ": " : "",
                detail ? detail : "");
        return -1;
    }
    if (reply) { /* NULL: the server ended the session, nothing to send */
        fwrite(reply, 1, reply_len, stdout);
        omadm_buffer_free(dm, reply);
    }
    return fflush(stdout) ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s STATE_DIR MESSAGE_FILE\n", argv[0]);
        return 2;
    }
    const char *state_dir = argv[1];
    int rc = 1;
    omadm_t *dm = NULL;
    omadm_certstore_t *cs = NULL;
    omadm_error_t e;

    /* The state directory holds the engine's files and the store.  Other
     * software on the device reads the store's CApath directories, so the
     * directories above them are world-readable (docs/certificatestore.md). */
    if (mkdir(state_dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", state_dir, strerror(errno));
        return 1;
    }
    char store_dir[4096];
    if (snprintf(store_dir, sizeof store_dir, "%s/store", state_dir) >= (int)sizeof store_dir) {
        fprintf(stderr, "%s: path too long\n", state_dir);
        return 1;
    }

    /* What the device says about itself (./DevInfo, ./DevDetail); every field
     * left alone keeps the default omadm_config_init() documents. */
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.dev_id = "example-device-0001";
    cfg.man = "Example Devices";
    cfg.mod = "example-host";
    cfg.fwv = "1.0.0";

    /* The engine and the store copy these tables; ctx pointers must outlive
     * them (they live in main's frame, which outlives both). */
    struct host host = {.max_level = OMADM_LOG_WARN};
    const omadm_platform_t platform = {
        .ctx = &host, .now = host_now, .random = host_random, .log = host_log,
        .alloc = host_alloc, .realloc = host_realloc, .free = host_free,
    };
    struct file_storage files = {.dir = state_dir};
    const omadm_storage_t storage = {
        .ctx = &files, .load = fs_load, .release = fs_release, .save = fs_save,
    };

    /* 1. The engine: loads the persisted tree and session state. */
    if ((e = omadm_new(&cfg, &platform, &storage, &dm))) {
        fprintf(stderr, "omadm_new: %s\n", omadm_strerror(e));
        goto out;
    }
    /* 2. The certificate store (created if missing; a crash's journal is
     * replayed) with the same platform hooks. */
    const char *why = NULL;
    if ((e = omadm_certstore_open(store_dir, &platform, &cs, &why))) {
        fprintf(stderr, "omadm_certstore_open %s: %s (%s)\n", store_dir, omadm_strerror(e),
                why ? why : "no detail");
        goto out;
    }
    /* 3. The CertificateStore and RootCATrustedCertificates CSPs. */
    if ((e = omadm_certstore_register(dm, cs))) {
        fprintf(stderr, "omadm_certstore_register: %s\n", omadm_strerror(e));
        goto out;
    }
    /* 4. One server message in, the reply out. */
    if (process_file(dm, argv[2]) == 0)
        rc = 0;
out:
    /* The engine first: the store must outlive the engine it is registered on. */
    omadm_free(dm);
    omadm_certstore_close(cs);
    return rc;
}
