/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.c - dmclient session --record DIR: the session written as a
 * conformance case that tests/conformance/run replays through `dmclient
 * process` (docs/conformance.md, "Record your own server").
 *
 * DIR gets package1.{xml,wbxml} (ours, for reference), NN-server.{xml,
 * wbxml,raw} with NN-reply.xml (or NN-error) for each exchange the replay
 * reproduces, not-replayed/ for the others, state/ (what the replay starts
 * from), dmclient.conf (the device settings, no secrets), encodings,
 * replay, transport (the HTTP side) and README.
 *
 * Masking works on the bytes as they travelled, XML or WBXML (record_msg.c):
 * the content of every Cred's Data, of every NextNonce and of the Data of an
 * Item whose Target or Source LocURI ends in /Challenge or /PFXCertPassword
 * has every byte but white space replaced by 'X', in place.  Lengths stay, so WBXML (string table offsets,
 * OPAQUE lengths) and base64 stay valid and the replay runs the masked
 * messages.  Every other occurrence of a secret (the client and server
 * secrets, their basic credentials, the server URL's user:password) and of
 * a masked value of 8 bytes or more is masked too, in every message file,
 * once more at the end with everything the session showed.  Last, every
 * file of DIR is searched for them; one that still holds one is removed.
 *
 * What `dmclient process` cannot reproduce (it has no session: no
 * authentication round, no reply in parts, no large object) goes to
 * not-replayed/; the case is the last run of exchanges it reproduces, with
 * a snapshot of the state taken before that run.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "record.h"
#include "record_msg.h"

#define MAX_SERVER_MESSAGES 99 /* NN-server: two digits */
#define MIN_SECRET 4           /* shorter secrets are masked only where they belong */
#define MIN_VALUE 8            /* masked values looked for elsewhere */
#define PATH_SIZE 4096
#define MAX_FILE ((size_t)1 << 30)
#define NEXT_STATE ".next-state"
#define NOT_REPLAYED "not-replayed"

/* A growing text; oom set when an allocation failed. */
typedef struct text {
    char *p;
    size_t n, cap;
    bool oom;
} text_t;

struct cli_record {
    char *dir;
    bool stopped;   /* a write failed: nothing more is written */
    bool began;
    cli_t *cli;
    /* the session, for README */
    char *url;      /* without user:password@ */
    bool wbxml, notified;
    omadm_auth_t client_auth, server_auth;
    char *client_user, *server_id;
    int verbose;
    time_t started;
    char session_id[24];
    cli_record_values_t vals; /* masked everywhere */
    /* exchanges */
    unsigned n_server;        /* server messages received */
    unsigned n_post;
    uint8_t *pending;         /* received, not yet processed (owned) */
    size_t pending_len;
    bool have_pending;
    unsigned first_run, last_run; /* the replayed run, 0: none yet */
    bool run_broken;          /* not-replayed exchanges after the run: NEXT_STATE holds the state */
    bool split;               /* our package goes out in parts */
    bool large;               /* the server is sending a large object */
    bool run_wbxml;           /* a server message of the run is WBXML */
    unsigned n_skipped;
    char *why[MAX_SERVER_MESSAGES + 1]; /* why exchange n is not replayed (owned), NULL: it is */
    FILE *transport;
};

/* ---- small things ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void tprintf(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->oom || need < 0)
        return;
    if (t->n + (size_t)need + 1 > t->cap) {
        size_t cap = (t->n + (size_t)need + 1) * 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)need;
}

static char *b64(const uint8_t *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* url without user:password@ (into a malloc'ed string), and the
 * user:password@ itself (*userinfo, malloc'ed, or NULL). */
static char *split_url(const char *url, char **userinfo)
{
    const char *sep = strstr(url, "://");
    size_t pre = sep ? (size_t)(sep - url) + 3 : 0;
    size_t host_len = strcspn(url + pre, "/?#");
    const char *at = NULL;
    for (const char *p = url + pre; p < url + pre + host_len; p++)
        if (*p == '@')
            at = p;
    *userinfo = at ? strndup(url + pre, (size_t)(at - url - pre) + 1) : NULL;
    size_t n = strlen(url) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s%s", (int)pre, url, at ? at + 1 : url + pre);
    return out;
}

/* ---- failures ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void stop(cli_record_t *r, const char *fmt, ...)
{
    if (r->stopped)
        return;
    r->stopped = true;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    cli_log(OMADM_LOG_ERROR, "session", "--record %s: %s; the record is incomplete", r->dir, msg);
}

static int path_of(const cli_record_t *r, const char *rel, char path[PATH_SIZE])
{
    if (snprintf(path, PATH_SIZE, "%s/%s", r->dir, rel) < PATH_SIZE)
        return 0;
    errno = ENAMETOOLONG;
    return -1;
}

/* A copy of a message that may hold credentials: wiped before it goes. */
static void free_wiped(void *p, size_t n)
{
    if (p)
        explicit_bzero(p, n);
    free(p);
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* DIR/rel with data (mode for a new file).  0, or -1 after stop(). */
static int put_file(cli_record_t *r, const char *rel, const void *data, size_t len, mode_t mode)
{
    char path[PATH_SIZE];
    if (r->stopped)
        return -1;
    if (path_of(r, rel, path)) {
        stop(r, "%s: %s", rel, strerror(ENAMETOOLONG));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    int err = fd < 0 ? errno : write_all(fd, data, len);
    if (fd >= 0 && close(fd) && !err)
        err = errno;
    if (err) {
        stop(r, "cannot write %s: %s", rel, strerror(err));
        return -1;
    }
    return 0;
}

static int make_dir(cli_record_t *r, const char *rel, mode_t mode)
{
    char path[PATH_SIZE];
    if (r->stopped)
        return -1;
    if (path_of(r, rel, path) || (mkdir(path, mode) && errno != EEXIST)) {
        stop(r, "cannot create %s: %s", rel, strerror(errno));
        return -1;
    }
    return 0;
}

/* rm -r DIR/rel (what the recorder made itself: files, directories, links). */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char sub[PATH_SIZE];
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ---- values and messages (record_msg.c) ---- */

static void add_string(cli_record_t *r, const char *s, size_t min)
{
    if (s)
        cli_record_values_add(&r->vals, (const uint8_t *)s, strlen(s), min);
    if (r->vals.oom)
        stop(r, "out of memory");
}

/* B64(user:secret), what a basic Cred carries. */
static void add_basic(cli_record_t *r, const char *user, const char *secret)
{
    if (!user || !secret)
        return;
    text_t t = {0};
    tprintf(&t, "%s:%s", user, secret);
    char *enc = t.oom ? NULL : b64((const uint8_t *)t.p, t.n);
    if (!enc)
        stop(r, "out of memory");
    add_string(r, enc, MIN_SECRET);
    if (t.p)
        explicit_bzero(t.p, t.n);
    free(t.p);
    if (enc)
        explicit_bzero(enc, strlen(enc));
    free(enc);
}

/* A masked copy of msg (malloc'ed), or NULL after stop(). */
static uint8_t *masked(cli_record_t *r, const uint8_t *msg, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        stop(r, "out of memory");
        return NULL;
    }
    memcpy(copy, msg, len);
    cli_record_mask(&r->vals, copy, len, MIN_VALUE);
    if (r->vals.oom) {
        /* a value may have been missed: it must not reach a file */
        free_wiped(copy, len);
        stop(r, "out of memory");
        return NULL;
    }
    return copy;
}

/* Why `dmclient process` would not answer this exchange as the session
 * did, or NULL when it would.  Updates r->split. */
static const char *not_replayable(cli_record_t *r, const cli_record_facts_t *srv,
                                  const cli_record_facts_t *rep,
                                  bool replied, char *buf, size_t size)
{
    bool was_split = r->split, was_large = r->large;
    bool split_now = replied && !rep->final && (srv->final || was_split);
    r->split = split_now;
    r->large = srv->more_data; /* the message after the last chunk completes the object */
    if (srv->status0 == 401 || srv->status0 == 407) {
        snprintf(buf, size, "the server's Status %d for our credentials: the session %s",
                 srv->status0,
                 rep->pkg1_alert ? "sent package 1 again" : "could not answer the challenge");
        return buf;
    }
    if (rep->status0 == 401 || rep->status0 == 407) {
        snprintf(buf, size, "our Status %d: the server's credentials were %s, its commands not "
                 "run", rep->status0, rep->status0 == 407 ? "missing" : "wrong");
        return buf;
    }
    if (rep->pkg1_alert)
        return "our package 1 again";
    if (srv->more_data || was_large || rep->more_data || rep->alert_1225)
        return "a large object (MoreData): dmclient process does not take one";
    if (was_split || split_now)
        return "our package in parts (the server's MaxMsgSize): dmclient process does not split";
    return NULL;
}

/* ---- the state the replay starts from ---- */

static int copy_file(cli_record_t *r, const char *src, const char *rel)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;
    if (stat(src, &st)) {
        if (errno == ENOENT)
            return 0;
        stop(r, "cannot read %s: %s", src, strerror(errno));
        return -1;
    }
    int err = cli_read_input(src, MAX_FILE, &data, &len);
    if (err) {
        stop(r, "cannot read %s: %s", src, strerror(err));
        return -1;
    }
    int rc = put_file(r, rel, data, len, st.st_mode & 0777);
    free(data);
    return rc;
}

/* src (a directory of the store) as rel, recursively. */
static int copy_dir(cli_record_t *r, const char *src, const char *rel)
{
    struct stat st;
    if (lstat(src, &st) || !S_ISDIR(st.st_mode))
        return 0;
    if (make_dir(r, rel, st.st_mode & 0777))
        return -1;
    DIR *d = opendir(src);
    if (!d) {
        stop(r, "cannot read %s: %s", src, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char s2[PATH_SIZE], r2[PATH_SIZE];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(s2, sizeof s2, "%s/%s", src, e->d_name) >= (int)sizeof s2 ||
            snprintf(r2, sizeof r2, "%s/%s", rel, e->d_name) >= (int)sizeof r2) {
            stop(r, "%s: %s", src, strerror(ENAMETOOLONG));
            rc = -1;
        } else if (!lstat(s2, &st) && S_ISDIR(st.st_mode)) {
            rc = copy_dir(r, s2, r2);
        } else if (!lstat(s2, &st) && S_ISREG(st.st_mode)) {
            rc = copy_file(r, s2, r2);
        }
    }
    closedir(d);
    return rc;
}

/* The tree's current keys: the manifest "tree" and, for format 2, the key
 * of each bucket it names (docs/abi.md); not the previous generations. */
static int copy_tree_keys(cli_record_t *r, const char *state, const char *dst)
{
    char src[PATH_SIZE], rel[PATH_SIZE];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(src, sizeof src, "%s/tree", state);
    snprintf(rel, sizeof rel, "%s/tree", dst);
    if (copy_file(r, src, rel) || cli_read_input(src, MAX_FILE, &data, &len))
        return r->stopped ? -1 : 0;
    char *text = realloc(data, len + 1);
    if (!text) {
        free(data);
        stop(r, "out of memory");
        return -1;
    }
    text[len] = 0;
    int rc = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    bool v2 = line && !strcmp(line, "omadm-tree 2");
    while (v2 && !rc && (line = strtok_r(NULL, "\n", &save))) {
        unsigned bucket;
        unsigned long long gen;
        if (sscanf(line, "%u %llu", &bucket, &gen) != 2)
            continue;
        char name[64];
        snprintf(name, sizeof name, "tree.%u.%c", bucket, gen % 2 ? 'b' : 'a');
        snprintf(src, sizeof src, "%s/%s", state, name);
        snprintf(rel, sizeof rel, "%s/%s", dst, name);
        rc = copy_file(r, src, rel);
    }
    free(text);
    return rc;
}

/* The state the replay starts from, as DIR/dst: the tree, the session
 * counters, the certificate store's records and CApath files.  Not the
 * nonces (auth), keys, enrollment records, the lock or anything else. */
static int snapshot(cli_record_t *r, const char *dst)
{
    char path[PATH_SIZE], src[PATH_SIZE], rel[PATH_SIZE];
    const char *state = r->cli->state_dir;
    if (!path_of(r, dst, path))
        remove_tree(path);
    if (make_dir(r, dst, 0700))
        return -1;
    snprintf(src, sizeof src, "%s/session", state);
    snprintf(rel, sizeof rel, "%s/session", dst);
    if (copy_file(r, src, rel) || copy_tree_keys(r, state, dst))
        return -1;
    snprintf(src, sizeof src, "%s/store", state);
    struct stat st;
    if (stat(src, &st) || !S_ISDIR(st.st_mode))
        return 0;
    snprintf(rel, sizeof rel, "%s/store", dst);
    if (make_dir(r, rel, st.st_mode & 0777))
        return -1;
    static const char *const parts[] = {"certs", "trust"};
    for (size_t i = 0; i < 2; i++) {
        char s2[PATH_SIZE], r2[PATH_SIZE];
        snprintf(s2, sizeof s2, "%s/store/%s", state, parts[i]);
        snprintf(r2, sizeof r2, "%s/store/%s", dst, parts[i]);
        if (copy_dir(r, s2, r2))
            return -1;
    }
    return 0;
}

/* ---- dmclient.conf: the device settings that differ from the defaults ---- */

static void conf_string(text_t *t, const char *key, const char *val, const char *def)
{
    if (!val || (def && !strcmp(val, def)))
        return;
    size_t n = strlen(val);
    bool bare = n && !isspace((unsigned char)val[0]) && !isspace((unsigned char)val[n - 1]) &&
                val[0] != '"' && val[0] != '#';
    for (size_t i = 1; bare && i < n; i++)
        bare = !(val[i] == '#' && isspace((unsigned char)val[i - 1]));
    if (bare)
        tprintf(t, "%s = %s\n", key, val);
    else
        tprintf(t, "%s = \"%s\"\n", key, val); /* values from the file hold no '"' then */
}

static void conf_number(text_t *t, const char *key, unsigned long long val,
                        unsigned long long def)
{
    if (val && val != def)
        tprintf(t, "%s = %llu\n", key, val);
}

/* Keep in step with set_option() in state.c: the keys of the engine's
 * configuration.  The session's account (server_url, credentials, TLS
 * files) is left out: `dmclient process` does not use it. */
static void write_conf(cli_record_t *r)
{
    const omadm_config_t *c = &r->cli->cfg;
    omadm_config_t d;
    omadm_config_init(&d);
    text_t t = {0};
    tprintf(&t, "# the device settings of the recorded session (dmclient session --record)\n");
    conf_string(&t, "dev_id", c->dev_id, d.dev_id);
    conf_string(&t, "man", c->man, d.man);
    conf_string(&t, "mod", c->mod, d.mod);
    conf_string(&t, "dmv", c->dmv, d.dmv);
    conf_string(&t, "lang", c->lang, d.lang);
    conf_string(&t, "dev_typ", c->dev_typ, d.dev_typ);
    conf_string(&t, "oem", c->oem, d.oem);
    conf_string(&t, "fwv", c->fwv, d.fwv);
    conf_string(&t, "swv", c->swv, d.swv);
    conf_string(&t, "hwv", c->hwv, d.hwv);
    conf_string(&t, "server_id", c->server_id, NULL);
    conf_string(&t, "root_acl", c->root_acl, d.root_acl);
    conf_number(&t, "max_msg_size", c->max_msg_size, d.max_msg_size);
    conf_number(&t, "max_obj_size", c->max_obj_size, d.max_obj_size);
    conf_number(&t, "max_depth", c->max_depth, d.max_depth);
    conf_number(&t, "max_commands", c->max_commands, d.max_commands);
    conf_number(&t, "max_items", c->max_items, d.max_items);
    conf_number(&t, "max_nodes", c->max_nodes, d.max_nodes);
    conf_number(&t, "max_reply_size", c->max_reply_size, d.max_reply_size);
    /* ./DevDetail/Ext/Microsoft as the session answered it (from the OS
     * unless set): the replay, on another machine, answers the same */
    cli_devdetail_t v;
    cli_devdetail_values(r->cli, &v);
    const struct {
        const char *key, *val;
    } dd[] = {
        {"device_name", v.device_name},       {"dns_computer_name", v.dns_computer_name},
        {"os_platform", v.os_platform},       {"processor_type", v.processor_type},
        {"total_ram", v.total_ram},           {"smbios_version", v.smbios_version},
    };
    for (size_t i = 0; i < sizeof dd / sizeof dd[0]; i++)
        if (!strpbrk(dd[i].val, "\"\n")) /* an OS value a conf line cannot hold: left out */
            conf_string(&t, dd[i].key, dd[i].val, NULL);
    if (t.oom)
        stop(r, "out of memory");
    else
        put_file(r, "dmclient.conf", t.p, t.n, 0600);
    free(t.p);
}

/* ---- opening ---- */

int cli_record_open(const char *dir, cli_record_t **out)
{
    *out = NULL;
    if (!*dir) {
        fprintf(stderr, "dmclient: session: --record: the directory name is empty\n");
        return 2;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "dmclient: session: --record %s: cannot create it: %s\n", dir,
                strerror(errno));
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "dmclient: session: --record %s: %s\n", dir,
                errno == ENOTDIR ? "not a directory" : strerror(errno));
        return 2;
    }
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    if (!empty) {
        fprintf(stderr, "dmclient: session: --record %s: the directory is not empty (a record "
                "goes into a new or empty directory)\n", dir);
        return 2;
    }
    cli_record_t *r = calloc(1, sizeof *r);
    if (r && !(r->dir = strdup(dir))) {
        free(r);
        r = NULL;
    }
    if (!r) {
        fprintf(stderr, "dmclient: session: --record %s: out of memory\n", dir);
        return 1;
    }
    r->started = time(NULL);
    *out = r;
    return 0;
}

static void begin_values(cli_record_t *r, const cli_record_info_t *info, const char *user,
                         const char *userinfo)
{
    add_string(r, info->client_secret, MIN_SECRET);
    add_string(r, info->server_secret, MIN_SECRET);
    add_basic(r, user, info->client_secret);
    add_basic(r, info->server_id, info->server_secret);
    add_string(r, userinfo, 1);
}

void cli_record_begin(cli_record_t *r, cli_t *cli, const cli_record_info_t *info,
                      const uint8_t *pkg1, size_t len)
{
    if (!r || r->began)
        return;
    r->began = true;
    r->cli = cli;
    r->wbxml = info->wbxml;
    r->notified = info->notified;
    r->client_auth = info->client_auth;
    r->server_auth = info->server_auth;
    r->verbose = info->verbose;
    const char *user = info->client_user ? info->client_user : cli->cfg.dev_id;
    char *userinfo = NULL;
    r->url = split_url(info->server_url, &userinfo);
    r->client_user = user ? strdup(user) : NULL;
    r->server_id = info->server_id ? strdup(info->server_id) : NULL;
    if (!r->url || (user && !r->client_user) || (info->server_id && !r->server_id))
        stop(r, "out of memory");
    begin_values(r, info, user, userinfo);
    if (userinfo)
        explicit_bzero(userinfo, strlen(userinfo));
    free(userinfo);

    char path[PATH_SIZE];
    int fd = r->stopped || path_of(r, "transport", path)
                 ? -1
                 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && !(r->transport = fdopen(fd, "w")))
        close(fd);
    if (!r->transport)
        stop(r, "cannot write transport: %s", strerror(errno));
    else
        fprintf(r->transport, "# the HTTP side of the recorded session (not replayed); "
                "x-syncml-hmac macs masked\n");
    cli_record_facts_t f = cli_record_facts(pkg1, len);
    snprintf(r->session_id, sizeof r->session_id, "%s", f.session_id);
    uint8_t *m = r->stopped ? NULL : masked(r, pkg1, len);
    if (m)
        put_file(r, cli_record_is_wbxml(pkg1, len) ? "package1.wbxml" : "package1.xml", m, len, 0600);
    free(m);
    if (!r->stopped)
        write_conf(r);
    if (!r->stopped)
        snapshot(r, "state");
}

/* ---- HTTP ---- */

/* value with the mac masked (its value is remembered as a secret). */
static void hmac_line(cli_record_t *r, const char *dir, const char *value)
{
    char line[CLI_HTTP_HMAC_MAX];
    snprintf(line, sizeof line, "%s", value);
    char *mac = strcasestr(line, "mac=");
    while (mac && mac > line && mac[-1] != ' ' && mac[-1] != ',')
        mac = strcasestr(mac + 4, "mac=");
    if (mac) {
        mac += 4;
        size_t n = strcspn(mac, ", \t");
        cli_record_values_add(&r->vals, (const uint8_t *)mac, n, MIN_VALUE);
        cli_record_blank((uint8_t *)mac, n);
        if (r->vals.oom)
            stop(r, "out of memory");
    }
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fprintf(r->transport, "%s   x-syncml-hmac: %s\n", dir, line);
}

void cli_record_post(cli_record_t *r, const char *url, size_t len, const char *hmac)
{
    if (!r || r->stopped || !r->transport)
        return;
    char *userinfo = NULL;
    char *shown = split_url(url, &userinfo);
    free(userinfo);
    r->n_post++;
    fprintf(r->transport, "> POST %u to %s: %zu bytes (%s)%s\n", r->n_post,
            shown ? shown : "?", len,
            r->wbxml ? "application/vnd.syncml.dm+wbxml" : "application/vnd.syncml.dm+xml",
            r->n_post == 1 ? ", package1" : "");
    free(shown);
    if (hmac)
        hmac_line(r, ">", hmac);
}

static void write_exchange(cli_record_t *r, const uint8_t *srv, size_t srv_len,
                           const uint8_t *reply, size_t reply_len, const char *why,
                           const char *error);

void cli_record_response(cli_record_t *r, const cli_http_reply_t *resp)
{
    if (!r || r->stopped || !r->began)
        return;
    unsigned n = ++r->n_server;
    bool blank_body = cli_is_blank(resp->body, resp->len);
    if (r->transport) {
        fprintf(r->transport, "< HTTP %d: %zu bytes (%s): server message %02u%s\n",
                resp->status, resp->len,
                resp->content_type[0] ? resp->content_type : "no content type", n,
                blank_body ? ", an empty body: the session ends" : "");
        if (resp->n_hmac)
            hmac_line(r, "<", resp->hmac);
    }
    if (n > MAX_SERVER_MESSAGES) {
        stop(r, "a record holds %d server messages at most", MAX_SERVER_MESSAGES);
        return;
    }
    if (blank_body) {
        /* `dmclient process` ends the session on it as the session did */
        write_exchange(r, resp->body, resp->len, NULL, 0, NULL, NULL);
        return;
    }
    free_wiped(r->pending, r->pending_len);
    r->pending = malloc(resp->len);
    if (!r->pending) {
        stop(r, "out of memory");
        return;
    }
    memcpy(r->pending, resp->body, resp->len);
    r->pending_len = resp->len;
    r->have_pending = true;
}

/* ---- exchanges ---- */

/* A regular expression for `dmclient process`'s error line. */
static void write_error(cli_record_t *r, const char *rel, const char *error)
{
    text_t t = {0};
    for (const char *p = error; *p; p++)
        tprintf(&t, isalnum((unsigned char)*p) || *p == ' ' ? "%c" : "\\%c", *p);
    tprintf(&t, "\n");
    if (t.oom)
        stop(r, "out of memory");
    else
        put_file(r, rel, t.p, t.n, 0600);
    free(t.p);
}

/* Our reply as XML: as sent, or WBXML through the engine's codec. */
static void write_reply(cli_record_t *r, const char *rel, const uint8_t *reply, size_t len)
{
    uint8_t *m = masked(r, reply, len);
    if (!m)
        return;
    if (!cli_record_is_wbxml(m, len)) {
        put_file(r, rel, m, len, 0600);
        free(m);
        return;
    }
    char *xml = NULL;
    size_t xml_len = 0;
    const char *detail = NULL;
    omadm_error_t e = omadm_message_to_xml(r->cli->dm, m, len, 0, &xml, &xml_len, &detail);
    free(m);
    if (e)
        stop(r, "our reply %s cannot be shown as XML: %s", rel,
             detail ? detail : omadm_strerror(e));
    else
        put_file(r, rel, xml, xml_len, 0600);
    omadm_buffer_free(r->cli->dm, xml);
}

/* A replayed exchange after not-replayed ones: the run before them goes to
 * not-replayed/ and the state after them becomes state/. */
static void new_run(cli_record_t *r)
{
    char path[PATH_SIZE], from[PATH_SIZE], to[PATH_SIZE];
    if (make_dir(r, NOT_REPLAYED, 0700) || path_of(r, "", path))
        return;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]) || !isdigit((unsigned char)e->d_name[1]) ||
            e->d_name[2] != '-')
            continue;
        snprintf(from, sizeof from, "%s/%s", r->dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s/%s", r->dir, NOT_REPLAYED, e->d_name);
        if (rename(from, to))
            stop(r, "cannot move %s to %s/: %s", e->d_name, NOT_REPLAYED, strerror(errno));
    }
    if (d)
        closedir(d);
    for (unsigned n = r->first_run; n && n <= r->last_run; n++) {
        if (!(r->why[n] = strdup("replayable, but the replay is the session's last run of "
                                 "such exchanges")))
            stop(r, "out of memory");
        r->n_skipped++;
    }
    path_of(r, "state", to);
    path_of(r, NEXT_STATE, from);
    remove_tree(to);
    if (!r->stopped && rename(from, to))
        stop(r, "cannot move %s to state: %s", NEXT_STATE, strerror(errno));
    r->run_broken = false;
    r->first_run = r->last_run = 0;
    r->run_wbxml = false;
}

/* Server message r->n_server (srv, as received), our reply (NULL: none),
 * why the replay cannot reproduce the exchange (NULL: it can), the error
 * `dmclient process` refuses the message with (NULL: it does not). */
static void write_exchange(cli_record_t *r, const uint8_t *srv, size_t srv_len,
                           const uint8_t *reply, size_t reply_len, const char *why,
                           const char *error)
{
    unsigned n = r->n_server;
    if (r->stopped)
        return;
    if (!why && r->run_broken)
        new_run(r);
    if (why && make_dir(r, NOT_REPLAYED, 0700))
        return;
    const char *sub = why ? NOT_REPLAYED "/" : "";
    bool raw = error || cli_is_blank(srv, srv_len);
    char rel[64];
    snprintf(rel, sizeof rel, "%s%02u-server.%s", sub, n,
             raw ? "raw" : cli_record_is_wbxml(srv, srv_len) ? "wbxml" : "xml");
    uint8_t *m = masked(r, srv, srv_len);
    if (m)
        put_file(r, rel, m, srv_len, 0600);
    free(m);
    if (reply) {
        snprintf(rel, sizeof rel, "%s%02u-reply.xml", sub, n);
        write_reply(r, rel, reply, reply_len);
    }
    if (error) {
        snprintf(rel, sizeof rel, "%s%02u-error", sub, n);
        write_error(r, rel, error);
    }
    if (!why) {
        r->first_run = r->first_run ? r->first_run : n;
        r->last_run = n;
        r->run_wbxml = r->run_wbxml || (!raw && cli_record_is_wbxml(srv, srv_len));
        return;
    }
    free(r->why[n]);
    if (!(r->why[n] = strdup(why)))
        stop(r, "out of memory");
    r->n_skipped++;
    r->run_broken = true;
    snapshot(r, NEXT_STATE); /* the state the next run would start from */
}

void cli_record_processed(cli_record_t *r, omadm_error_t e, const uint8_t *reply, size_t len)
{
    if (!r || r->stopped || !r->have_pending)
        return;
    r->have_pending = false;
    const uint8_t *srv = r->pending;
    size_t srv_len = r->pending_len;
    char buf[200];
    if (e == OMADM_E_NOT_SYNCML || e == OMADM_E_TOO_LARGE || e == OMADM_E_MALFORMED) {
        /* refused as `dmclient process` refuses it: the case expects that */
        write_exchange(r, srv, srv_len, NULL, 0, NULL, omadm_strerror(e));
    } else if (e) {
        snprintf(buf, sizeof buf, "dmclient could not process it (%s)", omadm_strerror(e));
        write_exchange(r, srv, srv_len, NULL, 0, buf, NULL);
    } else {
        cli_record_facts_t fs = cli_record_facts(srv, srv_len);
        cli_record_facts_t fr = cli_record_facts(reply, len);
        const char *why = not_replayable(r, &fs, &fr, reply != NULL, buf, sizeof buf);
        write_exchange(r, srv, srv_len, reply, len, why, NULL);
    }
    free_wiped(r->pending, r->pending_len);
    r->pending = NULL;
}

/* ---- the end ---- */

static const char *auth_text(omadm_auth_t a)
{
    return a == OMADM_AUTH_BASIC  ? "basic (syncml:auth-basic)"
           : a == OMADM_AUTH_MD5  ? "digest (syncml:auth-md5)"
           : a == OMADM_AUTH_HMAC ? "hmac (syncml:auth-MAC)"
                                  : "none";
}

static void readme_files(cli_record_t *r, text_t *t)
{
    const char *ext = r->wbxml ? "wbxml" : "xml";
    tprintf(t, "Files:   package1.%-8s our package 1 (not compared)\n", ext);
    char span[16];
    snprintf(span, sizeof span, r->first_run == r->last_run ? "%02u" : "%02u-%02u",
             r->first_run, r->last_run);
    if (r->first_run)
        tprintf(t, "         NN-server.*       the server's message%s %s as received "
                   "(masked)\n         NN-reply.xml      our replies to them: the expected "
                   "replies%s\n", r->first_run == r->last_run ? "" : "s", span,
                r->wbxml ? " (sent as WBXML,\n                           shown as XML by the "
                           "engine's codec)" : "");
    if (r->n_skipped)
        tprintf(t, "         not-replayed/     the exchanges the replay leaves out (below)\n");
    tprintf(t, "         state/            the state the replay starts from%s: the tree, the "
               "session\n                           counters, the certificate store's records "
               "and CApath\n                           files (no nonces, keys or enrollment "
               "records)\n", r->first_run ? "" : " (nothing to replay)");
    tprintf(t, "         dmclient.conf     the device settings of the session (no account, no "
               "secrets)\n         transport         the HTTP side: each POST and response "
               "(not replayed)\n         encodings, replay how tests/conformance/run replays "
               "the case\n");
}

/* The exchanges in not-replayed/ and why, in order; a run of exchanges with
 * one reason as one line. */
static void readme_skipped(const cli_record_t *r, text_t *t)
{
    tprintf(t, "Not replayed (not-replayed/; `dmclient process` has no session to do these):\n");
    for (unsigned n = 1; n <= r->n_server && n <= MAX_SERVER_MESSAGES; n++) {
        if (!r->why[n])
            continue;
        unsigned last = n;
        while (last + 1 <= r->n_server && last + 1 <= MAX_SERVER_MESSAGES && r->why[last + 1] &&
               !strcmp(r->why[last + 1], r->why[n]))
            last++;
        if (last == n)
            tprintf(t, "         %02u: %s\n", n, r->why[n]);
        else
            tprintf(t, "         %02u-%02u: %s\n", n, last, r->why[n]);
        n = last;
    }
}

static void write_readme(cli_record_t *r, int status, const char *how)
{
    char when[32], start[32];
    struct tm tm;
    time_t now = time(NULL);
    strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&r->started, &tm));
    strftime(when, sizeof when, "%Y-%m-%d", gmtime_r(&now, &tm));
    text_t t = {0};
    tprintf(&t, "Recorded session with %s, %s\n\n", r->url, when);
    tprintf(&t, "Source:  dmclient session --record, %s UTC, dmclient %s", start,
            OMADM_VERSION_STRING);
    if (strcmp(omadm_version(), OMADM_VERSION_STRING))
        tprintf(&t, " (libomadm %s)", omadm_version());
    tprintf(&t, "\n         server %s (user:password@ left out), SessionID %s, Alert %s\n",
            r->url, r->session_id[0] ? r->session_id : "?", r->notified ? "1200" : "1201");
    tprintf(&t, "         encoding of our messages: %s; of the server's in the replay: %s\n",
            r->wbxml ? "WBXML" : "XML", r->run_wbxml ? "WBXML" : "XML");
    tprintf(&t, "         our credentials: %s%s%s; the server's: %s%s%s\n",
            auth_text(r->client_auth), r->client_auth ? ", user " : "",
            r->client_auth && r->client_user ? r->client_user : "", auth_text(r->server_auth),
            r->server_auth && r->server_id ? ", user " : "",
            r->server_auth && r->server_id ? r->server_id : "");
    readme_files(r, &t);
    tprintf(&t, "Masked:  %zu values.  Every byte but white space of these became X (lengths "
                "kept, so\n         WBXML and base64 stay valid; the replay runs the masked "
                "messages): the Data\n         of every Cred, every NextNonce, the Data of every "
                "Item whose Target or Source\n         LocURI ends in /Challenge or "
                "/PFXCertPassword, the mac of every x-syncml-hmac;\n         and anywhere else "
                "the client and server secrets (%d bytes or more), their\n         basic "
                "credentials, the server URL's user:password, and the masked values of\n"
                "         %d bytes or more.\n",
            r->vals.masked, MIN_SECRET, MIN_VALUE);
    if (r->n_skipped)
        readme_skipped(r, &t);
    tprintf(&t, "Replay:  tests/conformance/run BUILD_DIR ./THIS_DIRECTORY: each NN-server.* "
                "through\n         `dmclient process` in turn, from state/ and dmclient.conf.  "
                "It does no\n         authentication (replay: no-auth), so Cred, LocName, Chal "
                "and the SyncHdr\n         Status 212 are not compared; every other Status and "
                "Results is.\n");
    tprintf(&t, "Covers:  the server's messages as this session ran them (say what they do "
                "when the\n         case joins a suite)\n");
    tprintf(&t, "Expect:  the replies of the session (NN-reply.xml)\n");
    tprintf(&t, "Outcome: %s%s%s\n",
            status ? "the session failed (exit 1; dmclient said why)" : "the session ended",
            how ? ": " : "", how ? how : "");
    if (t.oom)
        stop(r, "out of memory");
    else
        put_file(r, "README", t.p, t.n, 0600);
    free(t.p);
}

static void write_rules(cli_record_t *r)
{
    static const char replay[] =
        "# How tests/conformance/run replays this recorded case (docs/conformance.md,\n"
        "# \"Record your own server\").  Masked in the messages: see README.\n"
        "no-auth   # dmclient process does no authentication: Cred, LocName, Chal and\n"
        "          # the SyncHdr Status 212 are left out of the comparison\n";
    put_file(r, "replay", replay, sizeof replay - 1, 0600);
    const char *enc = r->run_wbxml ? "wbxml  # the session was WBXML: it replays as WBXML\n"
                                   : "xml  # the session was XML: it replays as XML\n";
    put_file(r, "encodings", enc, strlen(enc), 0600);
}

static bool message_file(const char *name)
{
    static const char *const suffixes[] = {"-server.xml", "-server.wbxml", "-server.raw",
                                           "-reply.xml"};
    if (!strcmp(name, "package1.xml") || !strcmp(name, "package1.wbxml"))
        return true;
    if (!isdigit((unsigned char)name[0]) || !isdigit((unsigned char)name[1]))
        return false;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (!strcmp(name + 2, suffixes[i]))
            return true;
    return false;
}

/* Mask what the session showed later in the messages written before. */
static void remask_dir(cli_record_t *r, const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char file[PATH_SIZE];
        uint8_t *data = NULL;
        size_t len = 0;
        if (!message_file(e->d_name) ||
            snprintf(file, sizeof file, "%s/%s", path, e->d_name) >= (int)sizeof file ||
            cli_read_input(file, MAX_FILE, &data, &len))
            continue;
        if (cli_record_values_blank(&r->vals, data, len)) {
            int fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
            int err = fd < 0 ? errno : write_all(fd, data, len);
            if (fd >= 0 && close(fd) && !err)
                err = errno;
            if (err)
                stop(r, "cannot write %s: %s", file, strerror(err));
        }
        free(data);
    }
    if (d)
        closedir(d);
}

/* Every file under path that still holds a secret is removed. */
static void leak_check(cli_record_t *r, const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char file[PATH_SIZE];
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            snprintf(file, sizeof file, "%s/%s", path, e->d_name) >= (int)sizeof file ||
            lstat(file, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            leak_check(r, file);
            continue;
        }
        uint8_t *data = NULL;
        size_t len = 0;
        if (!S_ISREG(st.st_mode) || cli_read_input(file, MAX_FILE, &data, &len))
            continue;
        bool leak = cli_record_values_in(&r->vals, data, len);
        free_wiped(data, len);
        if (leak) {
            unlink(file);
            stop(r, "%s holds a secret and was removed", file);
        }
    }
    if (d)
        closedir(d);
}

int cli_record_finish(cli_record_t *r, int status, const char *how)
{
    if (!r || !r->began)
        return 0;
    char path[PATH_SIZE];
    if (r->have_pending) {
        /* received, never processed: the session ended on it */
        r->have_pending = false;
        write_exchange(r, r->pending, r->pending_len, NULL, 0,
                       "not processed: the session ended before (see dmclient's error)", NULL);
    }
    if (!path_of(r, NEXT_STATE, path))
        remove_tree(path);
    if (!r->stopped) {
        write_rules(r);
        write_readme(r, status, how);
    }
    if (r->transport && (ferror(r->transport) | fclose(r->transport)))
        stop(r, "cannot write transport");
    r->transport = NULL;
    /* also after a failure: what was written must not keep a secret */
    remask_dir(r, r->dir);
    if (!path_of(r, NOT_REPLAYED, path))
        remask_dir(r, path);
    leak_check(r, r->dir);
    /* an incomplete record has no README: the runner refuses it rather than
     * replay part of a session */
    if (r->stopped && !path_of(r, "README", path))
        unlink(path);
    if (!r->stopped && r->verbose)
        cli_log(OMADM_LOG_INFO, "session", "recorded in %s: %s%u server message%s, "
                "%u not replayed (tests/conformance/run BUILD_DIR %s)", r->dir,
                r->first_run ? "" : "nothing to replay; ", r->n_server,
                r->n_server == 1 ? "" : "s", r->n_skipped, r->dir);
    return r->stopped ? -1 : 0;
}

void cli_record_free(cli_record_t *r)
{
    if (!r)
        return;
    if (r->transport)
        fclose(r->transport);
    cli_record_values_free(&r->vals);
    free_wiped(r->pending, r->pending_len);
    for (size_t i = 0; i <= MAX_SERVER_MESSAGES; i++)
        free(r->why[i]);
    free(r->url);
    free(r->client_user);
    free(r->server_id);
    free(r->dir);
    free(r);
}
