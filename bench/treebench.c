/* SPDX-License-Identifier: Apache-2.0 */
/*
 * treebench.c - what persisting the engine tree costs per message.
 *
 *   treebench [--dir DIR] [--groups G] [--leaves L] [--value-len V] [--messages N]
 *
 * Writes a tree file of the previous format (omadm-tree 1) holding
 * ./Big/G<g>/L<l> (G x L leaves of V bytes, base64 in the file: ~2.7 MB with
 * the defaults) and a 1-byte leaf ./Big/G<g>/F per group, into a fresh state
 * directory.  An engine on that directory (storage hooks as dmclient's: one
 * file per key, written to a temporary file, fsync'ed, renamed, directory
 * fsync'ed) then processes N + 1 messages, each replacing two of the 1-byte
 * leaves.  The first converts the tree to the current format (every bucket is
 * written, as the previous format rewrote the whole file for every message);
 * the next N are what a message costs from then on.  Bytes written are the
 * wchar delta of /proc/self/io around omadm_process(): every byte passed to
 * write(2), whatever the filesystem then does with it.  At the end a new
 * engine loads the directory and the leaves must hold the last values.
 *
 * Exits 0 once it has measured: the target is reported, not enforced.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omadm.h"
#include "text.h"
#include "util.h"

#define TARGET_BYTES (64u << 10)
#define SERVER_URI "https://dm.example.test/omadm"

typedef struct dir_store {
    const char *dir;
    unsigned saves;
} dir_store_t;

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int st_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    dir_store_t *s = ctx;
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", s->dir, key);
    snprintf(dst, sizeof dst, "%s/%s", s->dir, key);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write_all(fd, data, len) || fsync(fd) || close(fd) || rename(tmp, dst)) {
        unlink(tmp);
        return -1;
    }
    fsync_dir(s->dir);
    s->saves++;
    return 0;
}

static int st_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    dir_store_t *s = ctx;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->dir, key);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    text_t t = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        text_put(&t, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        text_free(&t);
        return -1;
    }
    *data = (uint8_t *)(t.data ? t.data : bench_xmalloc(1));
    *len = t.len;
    return 0;
}

static void st_release(void *ctx, uint8_t *data)
{
    (void)ctx;
    free(data);
}

static long long wchar_now(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        bench_die("cannot read /proc/self/io: %s", strerror(errno));
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1)
            break;
    fclose(f);
    if (v < 0)
        bench_die("no wchar in /proc/self/io");
    return v;
}

static void b64(text_t *t, const uint8_t *d, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        char out[4] = {a[v >> 18], a[(v >> 12) & 63], i + 1 < n ? a[(v >> 6) & 63] : '=',
                       i + 2 < n ? a[v & 63] : '='};
        text_put(t, out, 4);
    }
}

/* The tree file of the previous format, as that version wrote it. */
static size_t write_v1(const char *dir, unsigned groups, unsigned leaves, size_t value_len)
{
    text_t t = {0};
    uint8_t *value = bench_xmalloc(value_len);
    text_puts(&t, "omadm-tree 1\n./Big\tI\t-\t-\t-\t-\t994869497\t0\t-\n");
    for (unsigned g = 0; g < groups; g++) {
        text_printf(&t, "./Big/G%u\tI\t-\t-\t-\t-\t994869497\t0\t-\n", g);
        for (unsigned l = 0; l < leaves; l++) {
            for (size_t k = 0; k < value_len; k++)
                value[k] = (uint8_t)('a' + (g * 7 + l * 13 + k) % 26);
            text_printf(&t, "./Big/G%u/L%u\tL\tchr\t-\t-\t-\t994869497\t1\t", g, l);
            b64(&t, value, value_len);
            text_puts(&t, "\n");
        }
        text_printf(&t, "./Big/G%u/F\tL\tchr\t-\t-\t-\t994869497\t1\tMA==\n", g);
    }
    free(value);
    char path[4096];
    snprintf(path, sizeof path, "%s/tree", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(t.data, 1, t.len, f) != t.len || fclose(f))
        bench_die("cannot write %s", path);
    size_t len = t.len;
    text_free(&t);
    return len;
}

static omadm_t *engine_open(dir_store_t *s)
{
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    omadm_storage_t st = {.ctx = s, .load = st_load, .release = st_release, .save = st_save};
    omadm_t *dm = NULL;
    omadm_error_t err = omadm_new(&cfg, NULL, &st, &dm);
    if (err)
        bench_die("omadm_new on %s: %s", s->dir, omadm_strerror(err));
    return dm;
}

/* Message k replaces ./Big/G<a>/F and ./Big/G<b>/F with one digit each. */
static void message(text_t *t, unsigned k, unsigned a, unsigned b)
{
    t->len = 0;
    text_printf(t, "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
                   "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>%u</MsgID>"
                   "<Target><LocURI>omadm-device</LocURI></Target><Source><LocURI>"
                   SERVER_URI "</LocURI></Source></SyncHdr><SyncBody>", k + 1);
    unsigned g[2] = {a, b};
    for (int i = 0; i < 2; i++)
        text_printf(t, "<Replace><CmdID>%d</CmdID><Item><Target><LocURI>./Big/G%u/F</LocURI>"
                       "</Target><Meta><Format xmlns=\"syncml:metinf\">chr</Format></Meta>"
                       "<Data>%u</Data></Item></Replace>", i + 1, g[i], (k + (unsigned)i) % 10);
    text_puts(t, "<Final/></SyncBody></SyncML>");
}

typedef struct opts {
    const char *dir;
    unsigned groups, leaves, messages;
    size_t value_len;
} opts_t;

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fprintf(stderr, "usage: treebench [--dir DIR] [--groups G] [--leaves L] [--value-len V] "
                    "[--messages N]\n");
    exit(2);
}

static opts_t parse_opts(int argc, char **argv)
{
    opts_t o = {NULL, 164, 100, 20, 96};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--dir"))
            o.dir = v;
        else if (!strcmp(argv[i - 1], "--groups"))
            o.groups = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--leaves"))
            o.leaves = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--value-len"))
            o.value_len = strtoul(v, NULL, 10);
        else if (!strcmp(argv[i - 1], "--messages"))
            o.messages = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
    }
    if (o.groups < 2 || !o.leaves || !o.value_len || !o.messages)
        usage();
    return o;
}

static long long run_message(omadm_t *dm, dir_store_t *s, text_t *msg, unsigned *keys)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    unsigned saves = s->saves;
    long long before = wchar_now();
    omadm_error_t err =
        omadm_process(dm, (const uint8_t *)msg->data, msg->len, &reply, &reply_len);
    long long after = wchar_now();
    if (err)
        bench_die("omadm_process: %s", omadm_strerror(err));
    unsigned ok = 0;
    for (const char *p = reply ? (const char *)reply : ""; (p = strstr(p, "<Data>200</Data>")); p++)
        ok++;
    if (ok != 3) /* the header and both Replaces */
        bench_die("the Replaces were not answered 200: %.*s", (int)reply_len, (char *)reply);
    omadm_buffer_free(dm, reply);
    *keys = s->saves - saves;
    return after - before;
}

int main(int argc, char **argv)
{
    opts_t o = parse_opts(argc, argv);
    char tmpl[] = "/tmp/treebench.XXXXXX";
    const char *dir = o.dir;
    if (!dir && !(dir = mkdtemp(tmpl)))
        bench_die("mkdtemp: %s", strerror(errno));
    dir_store_t s = {dir, 0};
    size_t v1 = write_v1(dir, o.groups, o.leaves, o.value_len);
    omadm_t *dm = engine_open(&s);
    text_t msg = {0};
    unsigned keys_first, keys, keys_max = 0;
    message(&msg, 0, 0, o.groups - 1);
    long long first = run_message(dm, &s, &msg, &keys_first);
    long long max = 0, sum = 0;
    unsigned last_a = 0, last_b = 0;
    for (unsigned k = 1; k <= o.messages; k++) {
        last_a = (k * 37) % o.groups;
        last_b = (k * 101 + 1) % o.groups;
        if (last_b == last_a)
            last_b = (last_a + 1) % o.groups;
        message(&msg, k, last_a, last_b);
        long long w = run_message(dm, &s, &msg, &keys);
        sum += w;
        if (w > max)
            max = w;
        if (keys > keys_max)
            keys_max = keys;
    }
    omadm_free(dm);
    /* what was written loads, with the last values */
    dm = engine_open(&s);
    char uri[64];
    unsigned want[2] = {o.messages % 10, (o.messages + 1) % 10};
    unsigned g[2] = {last_a, last_b};
    for (int i = 0; i < 2; i++) {
        char *v = NULL;
        size_t len = 0;
        int interior = 0;
        snprintf(uri, sizeof uri, "./Big/G%u/F", g[i]);
        if (omadm_tree_read(dm, uri, &v, &len, &interior) || len != 1 ||
            (unsigned)(v[0] - '0') != want[i])
            bench_die("%s does not hold its last value after a reload", uri);
        omadm_buffer_free(dm, v);
    }
    omadm_free(dm);
    text_free(&msg);

    printf("tree persistence (treebench): %u x %u leaves of %zu bytes + %u 1-byte leaves\n",
           o.groups, o.leaves, o.value_len, o.groups);
    printf("  tree file of the previous format (omadm-tree 1), rewritten whole by every "
           "message: %zu bytes\n", v1);
    printf("  first message, converting it (every bucket written): %lld bytes in %u keys\n",
           first, keys_first);
    printf("  next %u messages, each replacing two 1-byte leaves: mean %lld, max %lld bytes "
           "(at most %u keys each)\n", o.messages, sum / o.messages, max, keys_max);
    printf("  bytes: wchar of /proc/self/io around omadm_process(); the session key included\n");
    printf("\ntargets:\n");
    printf("  tree persistence: bytes written per message changing two leaves of a %.1f MB tree: "
           "%lld (target: proportional to what changed, <= 64 KiB)  %s\n", v1 / 1e6, max,
           max <= (long long)TARGET_BYTES ? "MET" : "NOT MET");
    if (!o.dir) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "treebench: could not remove %s\n", dir);
    }
    return 0;
}
