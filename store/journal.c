/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c - the store's redo journal.
 *
 * File format:
 *   "omadm-journal 1\n"
 *   then records:  "W <mode> <len> <path>\n" <len bytes> "\n"   replace file
 *                  "A <off> <len> <path>\n" <len bytes> "\n"    write at off, cut at off+len
 *                  "O <off> <len> <path>\n" <len bytes> "\n"    overwrite in place
 *                  "U <path>\n"                                  unlink
 *   then "E <sha256 of everything before, hex>\n".
 * Paths are relative to the store directory and contain no spaces.
 *
 * Names in the store directory: "journal.tmp" while a batch is written,
 * "journal" from its commit point until it is applied, then
 * "journal.applied-<boot id>" (the Linux boot id, /proc/sys/kernel/random/
 * boot_id, without dashes) until the next commit point: its changes reach
 * the disk with the next barrier, so until then the journal is what would
 * redo them after a crash of the machine.  A journal applied in the
 * current boot needs nothing at open (the changes are in the page cache,
 * which every process reads); one of another boot is applied again.
 */
#include "journal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"
#include "state_format.h"
#include "store_io.h"

struct journal {
    const omadm_platform_t *plat;
    const store_io_t *io;
    char *buf;
    size_t len, cap;
    int failed;
    int n_ops;
};

journal_t *journal_new(const omadm_platform_t *plat, const store_io_t *io)
{
    journal_t *j = plat_calloc(plat, sizeof *j);
    if (j) {
        j->plat = plat;
        j->io = io;
    }
    return j;
}

void journal_free(journal_t *j)
{
    if (!j)
        return;
    if (j->buf)
        explicit_bzero(j->buf, j->len); /* may hold private keys */
    plat_free(j->plat, j->buf);
    plat_free(j->plat, j);
}

static void put(journal_t *j, const void *p, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *b = plat_alloc(j->plat, cap);
        if (!b) {
            j->failed = 1;
            return;
        }
        if (j->buf) {
            memcpy(b, j->buf, j->len);
            explicit_bzero(j->buf, j->len);
            plat_free(j->plat, j->buf);
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, p, n);
    j->len += n;
}

static void putf(journal_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(journal_t *j, const char *fmt, ...)
{
    char line[4200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        j->failed = 1;
        return;
    }
    put(j, line, (size_t)n);
}

static int record(journal_t *j, char op, long long a, const char *rel, const void *data,
                  size_t len)
{
    if (!j->len)
        put(j, JOURNAL_WRITES "\n", 16);
    if (strpbrk(rel, " \n"))
        j->failed = 1;
    if (op == 'U') {
        putf(j, "U %s\n", rel);
    } else {
        putf(j, op == 'W' ? "%c %llo %zu %s\n" : "%c %lld %zu %s\n", op, a, len, rel);
        put(j, data, len);
        put(j, "\n", 1);
    }
    j->n_ops++;
    return j->failed ? -1 : 0;
}

int journal_write_file(journal_t *j, const char *rel, const void *data, size_t len, mode_t mode)
{
    return record(j, 'W', (long long)mode, rel, data, len);
}

int journal_append_at(journal_t *j, const char *rel, off_t off, const void *data, size_t len)
{
    return record(j, 'A', (long long)off, rel, data, len);
}

int journal_overwrite(journal_t *j, const char *rel, off_t off, const void *data, size_t len)
{
    return record(j, 'O', (long long)off, rel, data, len);
}

int journal_unlink(journal_t *j, const char *rel)
{
    return record(j, 'U', 0, rel, NULL, 0);
}

int journal_empty(const journal_t *j)
{
    return j->n_ops == 0;
}

static int sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -1;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
    return 0;
}

/* ---- file primitives ---- */

static int write_all(const store_io_t *io, int fd, const void *p, size_t n, off_t off,
                     int positioned)
{
    const char *c = p;
    while (n) {
        ssize_t w = positioned ? store_io_pwrite(io, fd, c, n, off) : store_io_write(io, fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int replace_file(const store_io_t *io, const char *dir, const char *rel,
                        const void *data, size_t len, mode_t mode)
{
    char p[4096], tmp[4200];
    if (snprintf(p, sizeof p, "%s/%s", dir, rel) >= (int)sizeof p)
        return -1;
    /* The temp file is hidden, ".<name>.tmp": a state record may itself be
     * named "<name>.tmp" and must not be written over by the one named
     * <name>, and no reader of a directory takes a temp file for a record. */
    const char *base = strrchr(p, '/') + 1;
    snprintf(tmp, sizeof tmp, "%.*s.%s.tmp", (int)(base - p), p, base);
    int fd = store_io_open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    int rc = store_io_fchmod(io, fd, mode) || write_all(io, fd, data, len, 0, 0);
    rc = store_io_close(io, fd) || rc;
    if (rc || store_io_rename(io, tmp, p)) {
        store_io_unlink(io, tmp);
        return -1;
    }
    return 0;
}

static int write_at(const store_io_t *io, const char *dir, const char *rel, off_t off,
                    const void *data, size_t len, int cut)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, rel) >= (int)sizeof p)
        return -1;
    /* a file written at an offset is a bundle: one that is created here
     * is public (0644, whatever the umask), as the store creates them */
    int fd = store_io_open(io, p, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0 && errno == ENOENT) {
        fd = store_io_open(io, p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 && store_io_fchmod(io, fd, 0644)) {
            store_io_close(io, fd);
            return -1;
        }
    }
    if (fd < 0)
        return -1;
    int rc = write_all(io, fd, data, len, off, 1);
    if (!rc && cut)
        rc = store_io_ftruncate(io, fd, off + (off_t)len);
    return store_io_close(io, fd) || rc ? -1 : 0;
}

static int remove_file(const store_io_t *io, const char *dir, const char *rel)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, rel) >= (int)sizeof p)
        return -1;
    return store_io_unlink(io, p) && errno != ENOENT ? -1 : 0;
}

/* ---- apply ---- */

static int apply(const store_io_t *io, const char *dir, const char *buf, size_t len)
{
    const char *p = buf + 16, *end = buf + len;
    while (p < end && *p != 'E') {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return -1;
        char head[4200];
        size_t hl = (size_t)(nl - p);
        if (hl >= sizeof head)
            return -1;
        memcpy(head, p, hl);
        head[hl] = 0;
        p = nl + 1;
        char op = head[0], rel[4097];
        long long a = 0;
        size_t n = 0;
        if (op == 'U') {
            if (sscanf(head, "U %4096s", rel) != 1 || remove_file(io, dir, rel))
                return -1;
            continue;
        }
        int ok = op == 'W' ? sscanf(head, "W %llo %zu %4096s", &a, &n, rel)
                           : sscanf(head + 1, " %lld %zu %4096s", &a, &n, rel);
        if (ok != 3 || n > (size_t)(end - p) - 1)
            return -1;
        int rc = op == 'W'   ? replace_file(io, dir, rel, p, n, (mode_t)a)
                 : op == 'A' ? write_at(io, dir, rel, (off_t)a, p, n, 1)
                 : op == 'O' ? write_at(io, dir, rel, (off_t)a, p, n, 0)
                             : -1;
        if (rc)
            return -1;
        p += n + 1;
    }
    return 0;
}

/* One durability barrier: everything written to the store's filesystem so
 * far (file data, renames, unlinks) is on disk when it returns 0. */
static int barrier(const store_io_t *io, const char *dir)
{
    int fd = store_io_open(io, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    int rc = fd < 0 || store_io_syncfs(io, fd);
    if (fd >= 0)
        rc = store_io_close(io, fd) || rc;
    return rc ? -1 : 0;
}

#define APPLIED_PREFIX "journal.applied-"

static char boot_id_text[33];

static void read_boot_id(void)
{
    char line[64];
    size_t n = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f && fgets(line, sizeof line, f))
        for (const char *c = line; *c && n < 32; c++)
            if (isxdigit((unsigned char)*c))
                boot_id_text[n++] = (char)tolower((unsigned char)*c);
    if (f)
        fclose(f);
    boot_id_text[n == 32 ? 32 : 0] = 0;
}

/* This boot's id as 32 hex digits, or "" when the system does not tell
 * it (then every batch gets a second barrier, see finish).  Read once. */
static const char *boot_id(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_boot_id);
    return boot_id_text;
}

/* The name of a journal applied in this boot ("" when there is no boot id). */
int journal_applied_name(char *buf, size_t size)
{
    const char *id = boot_id();
    if (!*id)
        return -1;
    return snprintf(buf, size, APPLIED_PREFIX "%s", id) >= (int)size ? -1 : 0;
}

/* Remove dir/name; absent is fine. */
static int remove_top(const store_io_t *io, const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return store_io_unlink(io, p) && errno != ENOENT ? -1 : 0;
}

/* An applied journal: renamed for this boot, so that it is not applied
 * again while its changes are in the page cache.  Without a boot id:
 * make everything applied durable, then drop the journal (the removal
 * needs no barrier of its own: a journal that comes back after a crash is
 * applied again, which changes nothing: every operation is idempotent). */
static int finish(const store_io_t *io, const char *dir, const char **why)
{
    char p[4096], done[4200], name[64];
    snprintf(p, sizeof p, "%s/journal", dir);
    if (!journal_applied_name(name, sizeof name)) {
        snprintf(done, sizeof done, "%s/%s", dir, name);
        if (store_io_rename(io, p, done)) {
            *why = "cannot rename the store journal";
            return -1;
        }
        return 0;
    }
    if (barrier(io, dir)) {
        *why = "cannot sync the store";
        return -1;
    }
    if (store_io_unlink(io, p) && errno != ENOENT) {
        *why = "cannot remove the store journal";
        return -1;
    }
    return 0;
}

int journal_commit(journal_t *j, const char *dir, const char **why)
{
    char hex[65], p[4096], tmp[4200];
    if (j->failed || !j->n_ops) {
        *why = j->failed ? "out of memory" : NULL;
        return j->failed ? -1 : 0;
    }
    /* a batch committed earlier but not applied goes first */
    if (journal_recover(j->plat, j->io, dir, why))
        return -1;
    if (sha256_hex(j->buf, j->len, hex)) {
        *why = "cannot checksum the journal";
        return -1;
    }
    putf(j, "E %s\n", hex);
    snprintf(p, sizeof p, "%s/journal", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    /* private: it carries keys and state records */
    int fd = store_io_open(j->io, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 || store_io_fchmod(j->io, fd, 0600) || j->failed ||
             write_all(j->io, fd, j->buf, j->len, 0, 0);
    if (fd >= 0)
        rc = store_io_close(j->io, fd) || rc;
    if (rc || store_io_rename(j->io, tmp, p)) {
        store_io_unlink(j->io, tmp);
        *why = "cannot write the store journal";
        return -1;
    }
    /* The commit point: one barrier makes the journal's bytes and its name
     * durable together (before it, a crash leaves either no journal or one
     * whose checksum tells it is torn, or a complete one, which recovery
     * applies: a batch whose reply never went out, as when the crash comes
     * just after the barrier).  The same barrier makes the changes of the
     * batch before durable, so its journal goes now: renaming this one over
     * it, once applied, removes it (without a boot id, finish syncs and
     * removes each journal itself).  From the rename on, the batch happens,
     * now or at the next recovery: failures are reported as "committed,
     * not applied yet" (1), never as a lost batch. */
    if (barrier(j->io, dir) || apply(j->io, dir, j->buf, j->len) || finish(j->io, dir, why)) {
        *why = "store journal committed but not applied yet";
        return 1;
    }
    return 0;
}

/* A journal is valid when its trailer matches the checksum of the rest. */
static int valid(const char *buf, size_t len)
{
    if (len < 16 + 67 || memcmp(buf, JOURNAL_WRITES "\n", 16) || buf[len - 1] != '\n')
        return 0;
    const char *trailer = buf + len - 67;
    char hex[65];
    if (memcmp(trailer, "E ", 2) || sha256_hex(buf, (size_t)(trailer - buf), hex))
        return 0;
    return !memcmp(trailer + 2, hex, 64);
}

/* Read dir/name whole into *buf (from plat): 0, 1 absent, -1 error. */
static int read_journal(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                        const char *name, char **buf, size_t *len)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    *buf = NULL;
    int fd = store_io_open(io, p, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    size_t got = 0;
    if (store_io_fstat(io, fd, &st) == 0 && (*buf = plat_alloc(plat, (size_t)st.st_size + 1)))
        while (got < (size_t)st.st_size) {
            ssize_t n = store_io_read(io, fd, *buf + got, (size_t)st.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
    store_io_close(io, fd); /* read-only: nothing of it to lose */
    if (*buf && got == (size_t)st.st_size) {
        *len = got;
        return 0;
    }
    if (*buf) {
        explicit_bzero(*buf, got);
        plat_free(plat, *buf);
        *buf = NULL;
    }
    return -1;
}

/* Apply dir/name again when it is complete (1 applied, 0 not: torn or
 * absent), -1 when it cannot be read or applied. */
static int redo(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                const char *name, const char **why)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_journal(plat, io, dir, name, &buf, &len);
    if (rc < 0)
        *why = "cannot read the store journal";
    if (rc)
        return rc < 0 ? -1 : 0;
    rc = 0;
    if (state_format_text(buf, len, JOURNAL_FORMAT, 1, 1, NULL) == STATE_FMT_NEWER) {
        /* a later version's batch: neither applied nor dropped; it waits
         * for a library that reads it (store_check names it) */
        *why = "the store journal is of a newer format than this library reads "
               "(" JOURNAL_WRITES "); it is kept";
        rc = -1;
    } else if (valid(buf, len)) {
        rc = apply(io, dir, buf, len) ? -1 : 1;
        if (rc < 0)
            *why = "cannot apply the store journal";
    }
    explicit_bzero(buf, len);
    plat_free(plat, buf);
    return rc;
}

int journal_format(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                   const char *name, unsigned *version)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_journal(plat, io, dir, name, &buf, &len);
    if (rc)
        return rc < 0 ? -1 : 0;
    *version = 0;
    state_fmt_t fmt = state_format_text(buf, len, JOURNAL_FORMAT, 1, 1, version);
    explicit_bzero(buf, len);
    plat_free(plat, buf);
    return fmt == STATE_FMT_NEWER ? 1 : 0;
}

/* The name of a journal applied in another boot (at most one is left:
 * each commit point removes the one before), or "". */
static int other_boot(const store_io_t *io, const char *dir, char name[64])
{
    const char *mine = boot_id();
    name[0] = 0;
    DIR *d = store_io_opendir(io, dir);
    if (!d)
        return -1;
    struct dirent *e;
    errno = 0;
    while ((e = store_io_readdir(io, d)))
        if (!strncmp(e->d_name, APPLIED_PREFIX, strlen(APPLIED_PREFIX)) &&
            strcmp(e->d_name + strlen(APPLIED_PREFIX), mine) &&
            strlen(e->d_name) < 64)
            strcpy(name, e->d_name);
    int rc = errno ? -1 : 0;
    store_io_closedir(io, d);
    return rc;
}

int journal_recover(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                    const char **why)
{
    char applied[64];
    remove_top(io, dir, "journal.tmp"); /* never renamed: never applied */
    if (other_boot(io, dir, applied)) {
        *why = "cannot read the store directory";
        return -1;
    }
    /* the batch applied before the machine stopped, then the one after it
     * that may not have been (every operation is idempotent: the order of
     * the batches is all that matters) */
    int old = *applied ? redo(plat, io, dir, applied, why) : 0;
    if (old < 0)
        return -1;
    int cur = redo(plat, io, dir, "journal", why);
    if (cur < 0)
        return -1;
    char mine[64];
    bool synced = false;
    if (old || cur) {
        if (barrier(io, dir)) {
            *why = "cannot sync the store";
            return -1;
        }
        synced = true;
    }
    /* Durable now, or torn (never applied): no barrier for the removals, a
     * journal that comes back is applied (or dropped) again.  After a
     * barrier the journal this boot applied before goes too, and before
     * the journal: it is older than what was just made durable, and must
     * not be applied over it after a crash of the machine, so it must
     * never be left without the journal (a stop in between leaves the
     * journal, applied again at the next open). */
    if ((*applied && remove_top(io, dir, applied)) ||
        (synced && !journal_applied_name(mine, sizeof mine) && remove_top(io, dir, mine)) ||
        remove_top(io, dir, "journal")) {
        *why = "cannot remove the store journal";
        return -1;
    }
    return 0;
}
