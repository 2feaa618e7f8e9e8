/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state.c - the dmclient state directory: configuration file, storage
 * hooks for the engine (one file per key, replaced atomically), input.
 */
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define LOCK_POLL_MS 50

int cli_read_input(const char *path, size_t max, uint8_t **data, size_t *len)
{
    /* fopen fails without a reason only when it has no memory for the FILE
     * (an allocator that leaves errno alone); errno is not left over from
     * an earlier call then */
    errno = 0;
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return errno ? errno : ENOMEM;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    int err = 0;
    if (!buf) {
        err = ENOMEM;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                err = EFBIG;
                goto out;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                err = ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                err = errno ? errno : EIO;
            break;
        }
    }
    if (!err && n > max)
        err = EFBIG;
out:
    if (f != stdin)
        fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    *data = buf;
    *len = n;
    return 0;
}

int cli_is_blank(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace(data[i]))
            return 0;
    return 1;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cli_write_atomic(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char tmp[4096], dst[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) || close(fd) || rename(tmp, dst)) {
        unlink(tmp);
        return -1;
    }
    /* replaced; if the directory cannot be synced the new file may not
     * survive a power loss, but it is what every reader sees now */
    fsync_dir(dir);
    return 0;
}

/* ---- storage hooks ---- */

static int st_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    cli_t *cli = ctx;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", cli->state_dir, key) >= (int)sizeof path)
        return -1;
    if (access(path, F_OK) && errno == ENOENT)
        return 1;
    return cli_read_input(path, (size_t)1 << 30, data, len) ? -1 : 0;
}

static void st_release(void *ctx, uint8_t *data)
{
    (void)ctx;
    free(data);
}

static int st_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    cli_t *cli = ctx;
    return cli_write_atomic(cli->state_dir, key, data, len);
}

/* ---- configuration file ---- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* 0 done, -1 a bad value for a known key, -2 an unknown key. */
static int set_option(cli_t *cli, const char *key, char *val)
{
    omadm_config_t *cfg = &cli->cfg;
    /* the session account's keys (checked by session_cmd.c) and the
     * daemon's and logging keys (daemon_cmd.c): strings kept as written */
    enum { ACCT, SVC, DD };
#define ACCT_KEY(name, k) {name, ACCT, offsetof(cli_account_conf_t, k)}
#define SVC_KEY(name, k) {name, SVC, offsetof(cli_service_conf_t, k)}
#define DD_KEY(name, k) {name, DD, offsetof(cli_devdetail_conf_t, k)}
    static const struct {
        const char *key;
        int group;
        size_t off;
    } texts[] = {
        ACCT_KEY("server_url", server_url),
        ACCT_KEY("encoding", encoding),
        ACCT_KEY("cacert", cacert),
        ACCT_KEY("client_cert", client_cert),
        ACCT_KEY("client_cert_file", client_cert_file),
        ACCT_KEY("client_key_file", client_key_file),
        ACCT_KEY("client_auth", client_auth),
        ACCT_KEY("client_user", client_user),
        ACCT_KEY("client_secret", client_secret),
        ACCT_KEY("client_secret_file", client_secret_file),
        ACCT_KEY("server_auth", server_auth),
        ACCT_KEY("server_secret", server_secret),
        ACCT_KEY("server_secret_file", server_secret_file),
        ACCT_KEY("max_messages", max_messages),
        ACCT_KEY("allow_insecure_http", allow_insecure_http),
        SVC_KEY("log", log),
        SVC_KEY("log_level", log_level),
        SVC_KEY("poll_interval", poll_interval),
        SVC_KEY("retry_min", retry_min),
        SVC_KEY("retry_max", retry_max),
        DD_KEY("device_name", device_name),
        DD_KEY("dns_computer_name", dns_computer_name),
        DD_KEY("os_platform", os_platform),
        DD_KEY("processor_type", processor_type),
        DD_KEY("total_ram", total_ram),
        DD_KEY("smbios_version", smbios_version),
        SVC_KEY("tpm_tcti", tpm_tcti),
    };
#undef ACCT_KEY
#undef SVC_KEY
#undef DD_KEY
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (strcmp(texts[i].key, key))
            continue;
        if (texts[i].group == DD) {
            /* ./DevDetail/Ext/Microsoft: text as written; the int ones are
             * 1 to 18 decimal digits; empty: the OS's value */
            size_t n = strlen(val);
            if (n && (texts[i].off == offsetof(cli_devdetail_conf_t, processor_type) ||
                 texts[i].off == offsetof(cli_devdetail_conf_t, total_ram)) &&
                (n > 18 || strspn(val, "0123456789") != n))
                return -1;
            *(const char **)((char *)&cli->dd + texts[i].off) = n ? val : NULL;
            return 0;
        }
        bool acct = texts[i].group == ACCT;
        if (*val && (acct ? cli_session_conf_check(key, val) : cli_service_conf_check(key, val)))
            return -1;
        char *base = acct ? (char *)&cli->acct : (char *)&cli->svc;
        *(const char **)(base + texts[i].off) = *val ? val : NULL;
        return 0;
    }
    static const struct {
        const char *key;
        size_t off;
    } strings[] = {
        {"dev_id", offsetof(omadm_config_t, dev_id)},
        {"man", offsetof(omadm_config_t, man)},
        {"mod", offsetof(omadm_config_t, mod)},
        {"dmv", offsetof(omadm_config_t, dmv)},
        {"lang", offsetof(omadm_config_t, lang)},
        {"dev_typ", offsetof(omadm_config_t, dev_typ)},
        {"oem", offsetof(omadm_config_t, oem)},
        {"fwv", offsetof(omadm_config_t, fwv)},
        {"swv", offsetof(omadm_config_t, swv)},
        {"hwv", offsetof(omadm_config_t, hwv)},
        {"server_id", offsetof(omadm_config_t, server_id)},
        {"root_acl", offsetof(omadm_config_t, root_acl)},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (!strcmp(strings[i].key, key)) {
            *(const char **)((char *)cfg + strings[i].off) = val;
            return 0;
        }
    }
    static const char *const numbers[] = {"max_msg_size", "max_obj_size", "max_depth",
                                          "max_commands", "max_items",    "max_nodes",
                                          "max_reply_size"};
    bool known = false;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        known = known || !strcmp(numbers[i], key);
    if (!known)
        return -2;
    char *end = NULL;
    if (*val < '0' || *val > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (*end || errno || v > UINT_MAX)
        return -1;
    if (!strcmp(key, "max_msg_size"))
        cfg->max_msg_size = (size_t)v;
    else if (!strcmp(key, "max_obj_size"))
        cfg->max_obj_size = (size_t)v;
    else if (!strcmp(key, "max_depth"))
        cfg->max_depth = (unsigned)v;
    else if (!strcmp(key, "max_commands"))
        cfg->max_commands = (unsigned)v;
    else if (!strcmp(key, "max_items"))
        cfg->max_items = (unsigned)v;
    else if (!strcmp(key, "max_nodes"))
        cfg->max_nodes = (unsigned)v;
    else
        cfg->max_reply_size = (size_t)v;
    return 0;
}

/* The value after '=': "quoted" (the quotes go, '#' inside stays), or bare
 * up to a '#' that follows white space (a comment).  NULL when a quote is
 * not closed or text follows the closing quote. */
static char *conf_value(char *v)
{
    v = trim(v);
    if (*v == '"') {
        char *close = strchr(v + 1, '"');
        if (!close)
            return NULL;
        char *rest = trim(close + 1);
        if (*rest && *rest != '#')
            return NULL;
        *close = 0;
        return v + 1;
    }
    for (char *p = v; *p; p++) {
        if (*p == '#' && (p == v || isspace((unsigned char)p[-1]))) {
            *p = 0;
            break;
        }
    }
    return trim(v);
}

/* Secrets in a dmclient.conf that other users can read: one warning per
 * process (dmclient run reads the file at every step); the command goes on
 * (docs/cli.md, "Secrets"). */
static void check_secrets_private(const cli_t *cli, const char *path)
{
    static bool warned;
    const char *key = cli->acct.client_secret   ? "client_secret"
                      : cli->acct.server_secret ? "server_secret"
                                                : NULL;
    struct stat st;
    if (warned || !key || stat(path, &st) || !(st.st_mode & (S_IRGRP | S_IROTH)))
        return;
    warned = true;
    cli_log(OMADM_LOG_WARN, NULL,
            "%s%s holds %s and other users can read it (mode %04o); make it private: chmod 600 %s",
            cli_log_dest() == CLI_LOG_PLAIN ? "warning: " : "", path, key,
            (unsigned)(st.st_mode & 07777), path);
}

/* log and log_level of dmclient.conf (checked when read) to the logger;
 * absent keys give way to the defaults again. */
static void apply_log_conf(const cli_t *cli)
{
    int dest = -1, level = -1;
    if (cli->svc.log)
        cli_log_parse_dest(cli->svc.log, &dest);
    if (cli->svc.log_level)
        cli_log_parse_level(cli->svc.log_level, &level);
    cli_log_conf(dest, level);
}

static int read_config(cli_t *cli)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dmclient.conf", cli->state_dir);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = cli_read_input(path, 1 << 20, &data, &len);
    if (rc == ENOENT) {
        apply_log_conf(cli);
        return 0;
    }
    if (rc) {
        cli_log(OMADM_LOG_ERROR, NULL, "%s: %s", path, strerror(rc));
        return -1;
    }
    /* a copy, not realloc: the file may hold secrets, and realloc could
     * leave them behind in freed memory */
    cli->conf_text = malloc(len + 1);
    if (cli->conf_text)
        memcpy(cli->conf_text, data, len);
    explicit_bzero(data, len);
    free(data);
    if (!cli->conf_text) {
        cli_log(OMADM_LOG_ERROR, NULL, "%s: out of memory", path);
        return -1;
    }
    cli->conf_text[len] = 0;
    cli->conf_len = len;
    int lineno = 0;
    for (char *line = cli->conf_text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            cli_log(OMADM_LOG_ERROR, NULL, "%s:%d: expected 'key = value'", path, lineno);
            return -1;
        }
        *eq = 0;
        char *key = trim(l), *val = conf_value(eq + 1);
        int set = val ? set_option(cli, key, val) : -1;
        if (set == -2) {
            cli_log(OMADM_LOG_ERROR, NULL, "%s:%d: unknown key '%s'", path, lineno, key);
            return -1;
        }
        if (set) {
            cli_log(OMADM_LOG_ERROR, NULL, "%s:%d: bad value for '%s'", path, lineno, key);
            return -1;
        }
    }
    apply_log_conf(cli);
    check_secrets_private(cli, path);
    return 0;
}

static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

/* Wait for the exclusive flock on fd: 0, or -1 (errno; ECANCELED: a stop
 * signal came meanwhile, see cli_stop_block). */
static int take_lock(int fd)
{
    int rc;
    if (!cli_stop_enabled()) {
        while ((rc = flock(fd, LOCK_EX)) && errno == EINTR)
            ;
        return rc;
    }
    /* a blocked signal does not interrupt flock: look for one between tries */
    for (;;) {
        if (!flock(fd, LOCK_EX | LOCK_NB))
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return -1;
        if (cli_stop_wait(LOCK_POLL_MS)) {
            errno = ECANCELED;
            return -1;
        }
    }
}

/* The state lock: one dmclient at a time reads and changes the state
 * directory (tree, session, store), so no update is lost between two
 * processes.  Taken before anything is read; waits for the holder. */
static int lock_state(cli_t *cli)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/lock", cli->state_dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = take_lock(fd);
    if (rc) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    cli->lock_fd = fd;
    return 0;
}

/* cli empty, on state_dir (copied): 0, or -1 after a one-line error. */
static int cli_start(cli_t *cli, const char *state_dir)
{
    memset(cli, 0, sizeof *cli);
    cli->lock_fd = -1;
    cli->state_dir = strdup(state_dir);
    if (!cli->state_dir) {
        cli_log(OMADM_LOG_ERROR, NULL, "state directory %s: out of memory", state_dir);
        return -1;
    }
    return 0;
}

int cli_read_conf(cli_t *cli, const char *state_dir)
{
    if (cli_start(cli, state_dir))
        return -1;
    omadm_config_init(&cli->cfg);
    if (read_config(cli)) {
        cli_close(cli);
        return -1;
    }
    return 0;
}

int cli_open(cli_t *cli, const char *state_dir, const omadm_platform_t *platform)
{
    return cli_open_ex(cli, state_dir, platform, NULL, NULL);
}

/* The state directory (made first when create), its lock, dmclient.conf
 * (then adjust) and the storage table: what every command starts from.
 * 0, -1 after a one-line error, or CLI_STOPPED. */
static int open_base(cli_t *cli, const char *state_dir, bool create,
                     int (*adjust)(void *ctx, cli_t *cli), void *ctx)
{
    if (cli_start(cli, state_dir))
        return -1;
    if (create && make_dirs(state_dir)) {
        cli_log(OMADM_LOG_ERROR, NULL, "state directory %s: %s", state_dir, strerror(errno));
        cli_close(cli);
        return -1;
    }
    if (lock_state(cli)) {
        int stopped = errno == ECANCELED;
        if (!stopped)
            cli_log(OMADM_LOG_ERROR, NULL, "state directory %s: cannot lock: %s", state_dir,
                    strerror(errno));
        cli_close(cli);
        return stopped ? CLI_STOPPED : -1;
    }
    omadm_config_init(&cli->cfg);
    if (read_config(cli)) {
        cli_close(cli);
        return -1;
    }
    if (adjust && adjust(ctx, cli)) {
        cli_close(cli);
        return -1;
    }
    cli->storage.ctx = cli;
    cli->storage.load = st_load;
    cli->storage.release = st_release;
    cli->storage.save = st_save;
    return 0;
}

int cli_open_state(cli_t *cli, const char *state_dir)
{
    return open_base(cli, state_dir, false, NULL, NULL);
}

void cli_state_text(const cli_t *cli, const omadm_state_problem_t *p, char *buf, size_t size)
{
    if (p->err == OMADM_E_NEWER_FORMAT && p->found)
        snprintf(buf, size, "%s/%s: format %s is newer than this dmclient reads (%s)",
                 cli->state_dir, p->key, p->found, p->current);
    else
        snprintf(buf, size, "%s/%s: %s", cli->state_dir, p->key, p->detail);
}

typedef struct first_problem {
    const cli_t *cli;
    omadm_error_t want;
    const char *key;
    char line[1024];
} first_problem_t;

static void take_first(void *ctx, const omadm_state_problem_t *p)
{
    first_problem_t *f = ctx;
    if (!f->line[0] && p->err == f->want && !p->repaired && (!f->key || !strcmp(f->key, p->key)))
        cli_state_text(f->cli, p, f->line, sizeof f->line);
}

int cli_state_report(const char *state_dir, const omadm_config_t *cfg, omadm_error_t err,
                     const char *key, const char *cmd)
{
    if (err != OMADM_E_CORRUPT && err != OMADM_E_NEWER_FORMAT)
        return -1;
    /* the files as the engine reads them: the storage hooks above */
    cli_t cli;
    memset(&cli, 0, sizeof cli);
    cli.state_dir = (char *)state_dir;
    cli.storage = (omadm_storage_t){&cli, st_load, st_release, st_save};
    first_problem_t f = {.cli = &cli, .want = err, .key = key};
    omadm_state_check(cfg, NULL, &cli.storage, 0, take_first, &f);
    if (!f.line[0])
        return -1;
    cli_log(OMADM_LOG_ERROR, NULL, "%s%s%s; nothing was changed", cmd ? cmd : "", cmd ? ": " : "",
            f.line);
    return 0;
}

/* The TPM of the store's keys: DMCLIENT_TPM_TCTI when it is set (empty:
 * no TPM), else tpm_tcti of dmclient.conf (docs/keys.md).  0, or -1 after
 * an error line. */
static int set_tpm(cli_t *cli)
{
    const char *env = getenv("DMCLIENT_TPM_TCTI");
    const char *tcti = env ? env : cli->svc.tpm_tcti;
    if (omadm_certstore_set_tpm(cli->certs, tcti) == OMADM_OK)
        return 0;
    cli_log(OMADM_LOG_ERROR, NULL, "%s: not a TCTI configuration string: %s",
            env ? "DMCLIENT_TPM_TCTI" : "dmclient.conf: tpm_tcti", tcti);
    return -1;
}

int cli_open_ex(cli_t *cli, const char *state_dir, const omadm_platform_t *platform,
                int (*adjust)(void *ctx, cli_t *cli), void *ctx)
{
    int rc = open_base(cli, state_dir, true, adjust, ctx);
    if (rc)
        return rc;
    omadm_error_t err = omadm_new(&cli->cfg, platform, &cli->storage, &cli->dm);
    if (err) {
        /* a value of a newer format, or a damaged one: named (docs/state.md) */
        if (cli_state_report(state_dir, &cli->cfg, err, NULL, NULL))
            cli_log(OMADM_LOG_ERROR, NULL, "state directory %s: %s", state_dir,
                    omadm_strerror(err));
        cli_close(cli);
        return -1;
    }
    if (cli_devdetail_apply(cli)) {
        cli_close(cli);
        return -1;
    }
    char store_dir[4096];
    const char *why = NULL;
    snprintf(store_dir, sizeof store_dir, "%s/store", state_dir);
    err = omadm_certstore_open(store_dir, platform, &cli->certs, &why);
    if (!err)
        err = omadm_certstore_register(cli->dm, cli->certs);
    if (!err && set_tpm(cli)) {
        cli_close(cli);
        return -1;
    }
    if (err) {
        cli_log(OMADM_LOG_ERROR, NULL, "certificate store %s: %s", store_dir,
                why ? why : omadm_strerror(err));
        cli_close(cli);
        return -1;
    }
    /* a later version's committed batch: the store stays as that version
     * left it (dmclient check still looks at it) */
    const char *blocked = omadm_certstore_blocked(cli->certs, &err);
    if (blocked && err == OMADM_E_NEWER_FORMAT) {
        cli_log(OMADM_LOG_ERROR, NULL, "%s; nothing was changed", blocked);
        cli_close(cli);
        return -1;
    }
    return 0;
}

int cli_unlock(cli_t *cli)
{
    /* the store first: it is taken inside the state lock */
    if (omadm_certstore_unlock(cli->certs) != OMADM_OK)
        return -1;
    flock(cli->lock_fd, LOCK_UN);
    return 0;
}

int cli_relock(cli_t *cli)
{
    if (take_lock(cli->lock_fd))
        return -1;
    return omadm_certstore_relock(cli->certs) == OMADM_OK ? 0 : -1;
}

void cli_close(cli_t *cli)
{
    omadm_free(cli->dm);
    omadm_certstore_close(cli->certs);
    if (cli->conf_text) /* may hold secrets (client_secret, server_secret) */
        explicit_bzero(cli->conf_text, cli->conf_len);
    free(cli->conf_text);
    free(cli->state_dir);
    /* last: everything above is written and closed before another
     * dmclient may start reading */
    if (cli->lock_fd >= 0)
        close(cli->lock_fd);
    memset(cli, 0, sizeof *cli);
    cli->lock_fd = -1;
}
