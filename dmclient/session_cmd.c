/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session_cmd.c - dmclient session: one DM session with the server over
 * HTTP(S) (docs/session.md, docs/cli.md).
 *
 * The engine builds package 1 (omadm_session_begin) and answers every
 * server message (omadm_process); this file moves the messages: POST to
 * omadm_session_url(), HMAC headers both ways, retries of the same message
 * on 401/429/5xx, and the TLS settings of the account.  The state lock is
 * held from the start to the end of the session.
 *
 * Secrets (client_secret, server_secret, the client key) never reach a log
 * line or an error message; -vv masks Cred Data and the HMAC mac.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "record.h"
#include "record_msg.h"

#define DEFAULT_MAX_MESSAGES 100ul
#define MAX_MAX_MESSAGES 1000000ul
#define RETRIES 3
#define RETRY_AFTER_CAP 60u
#define REQUEST_TIMEOUT_S 60u
#define CONNECT_TIMEOUT_S 10u
#define SECRET_FILE_MAX 4096
#define DEFAULT_MAX_MSG_SIZE ((size_t)4 << 20)
#define MAX_MSG_SIZE_CEILING ((size_t)1 << 30)
#define SYSTEM_CAPATH "/etc/ssl/certs"
#define CLIENT_CERT_STORE "my-system"
#define CT_XML "application/vnd.syncml.dm+xml"
#define CT_WBXML "application/vnd.syncml.dm+wbxml"

const char cli_session_usage[] =
    "usage: dmclient [--state-dir DIR] session [--server URL] [options]\n"
    "\n"
    "Run one OMA DM session with the server over HTTP(S): send package 1\n"
    "(Alert 1201, DevInfo, queued generic alerts), then POST each reply of the\n"
    "engine until the server ends the session.  The state directory stays\n"
    "locked for the whole session (other dmclient commands, 'run' too, wait).\n"
    "Every option can also be set in DIR/dmclient.conf (key in brackets); the\n"
    "command line wins.\n"
    "\n"
    "server:\n"
    "  --server URL               the DM server, http:// or https:// [server_url]\n"
    "  --server-id ID             the server's identity: its user name for its\n"
    "                             credentials and the ACL identity [server_id]\n"
    "  --encoding xml|wbxml       encoding of our messages (default xml) [encoding]\n"
    "  --allow-insecure-http      allow credentials (--auth, --server-auth) with an\n"
    "                             http:// server, unencrypted\n"
    "                             [allow_insecure_http = yes]\n"
    "TLS (verification is always on):\n"
    "  --cacert FILE              PEM trust anchors for the server's certificate,\n"
    "                             besides the system store " SYSTEM_CAPATH " [cacert]\n"
    "  --client-cert THUMBPRINT   TLS client certificate from the My/System store,\n"
    "                             with its private key [client_cert]\n"
    "  --client-cert-file FILE    TLS client certificate (PEM) [client_cert_file]\n"
    "  --client-key-file FILE     its private key (PEM; default: in the certificate\n"
    "                             file) [client_key_file]\n"
    "our credentials:\n"
    "  --auth none|basic|digest|hmac  how we authenticate (default none; digest\n"
    "                             is syncml:auth-md5) [client_auth]\n"
    "  --client-user NAME         our user name (default: the DevId) [client_user]\n"
    "  --client-secret S          our secret [client_secret]\n"
    "  --client-secret-file FILE  read it from FILE instead [client_secret_file]\n"
    "what we require of the server:\n"
    "  --server-auth none|basic|digest|hmac  (default none) [server_auth]\n"
    "  --server-secret S          the server's secret [server_secret]\n"
    "  --server-secret-file FILE  read it from FILE instead [server_secret_file]\n"
    "session:\n"
    "  --notified                 send Alert 1200 (server-initiated) instead of 1201\n"
    "  --max-messages N           give up after sending N messages (default 100)\n"
    "                             [max_messages]\n"
    "  --record DIR               also write the session into DIR (new or empty) as\n"
    "                             a conformance case, secrets masked, for\n"
    "                             tests/conformance/run; a write failure ends the\n"
    "                             recording, not the session (exit 1 at the end)\n"
    "  -v, --verbose              each message sent and received on stderr (size,\n"
    "                             HTTP status), a summary on stdout; -vv also the\n"
    "                             SyncML, with credentials masked\n"
    "\n"
    "HTTP 401, 429, 500, 502, 503 and 504 are retried up to 3 times (1, 2, 4 s,\n"
    "or the server's Retry-After up to 60 s).  Secrets are never printed; a\n"
    "secret on the command line is visible to other users while dmclient starts,\n"
    "so prefer the -file options or dmclient.conf (mode 0600).\n"
    "\n"
    "Exit status: 0 the session ended normally; 1 it failed (one line on\n"
    "stderr: network, TLS, HTTP status, a refused message, the server's\n"
    "credentials, ...); 2 usage errors and incomplete settings.\n";

/* ---- values ---- */

static int parse_auth(const char *s, omadm_auth_t *out)
{
    static const struct {
        const char *name;
        omadm_auth_t auth;
    } names[] = {
        {"none", OMADM_AUTH_NONE}, {"basic", OMADM_AUTH_BASIC}, {"digest", OMADM_AUTH_MD5},
        {"md5", OMADM_AUTH_MD5},   {"hmac", OMADM_AUTH_HMAC},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcasecmp(s, names[i].name)) {
            *out = names[i].auth;
            return 0;
        }
    }
    return -1;
}

static const char *auth_name(omadm_auth_t a)
{
    return a == OMADM_AUTH_BASIC  ? "basic"
           : a == OMADM_AUTH_MD5  ? "digest"
           : a == OMADM_AUTH_HMAC ? "hmac"
                                  : "none";
}

/* xml / wbxml, or the DMAcc DefaultEncoding MIME types. */
static int parse_encoding(const char *s, int *wbxml)
{
    if (!strcasecmp(s, "xml") || !strcasecmp(s, CT_XML))
        *wbxml = 0;
    else if (!strcasecmp(s, "wbxml") || !strcasecmp(s, CT_WBXML))
        *wbxml = 1;
    else
        return -1;
    return 0;
}

static int parse_count(const char *s, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v < 1 || v > MAX_MAX_MESSAGES)
        return -1;
    *out = v;
    return 0;
}

/* 40 hex digits; spaces and colons between them are allowed. */
static int parse_thumb(const char *s, char out[OMADM_THUMBPRINT_LEN + 1])
{
    return omadm_certstore_thumbprint_parse(s, out) ? -1 : 0;
}

/* A name that goes into a header or a SyncML text: printable, no '"'. */
static int name_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"')
            return 0;
    return 1;
}

static int url_ok(const char *s)
{
    return (!strncasecmp(s, "http://", 7) && s[7]) || (!strncasecmp(s, "https://", 8) && s[8]);
}

int cli_session_conf_check(const char *key, const char *val)
{
    omadm_auth_t a;
    int w;
    unsigned long n;
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    if (!strcmp(key, "encoding"))
        return parse_encoding(val, &w);
    if (!strcmp(key, "client_auth") || !strcmp(key, "server_auth"))
        return parse_auth(val, &a);
    if (!strcmp(key, "max_messages"))
        return parse_count(val, &n);
    if (!strcmp(key, "client_cert"))
        return parse_thumb(val, thumb);
    if (!strcmp(key, "server_url"))
        return url_ok(val) && name_ok(val) ? 0 : -1;
    if (!strcmp(key, "client_user"))
        return name_ok(val) ? 0 : -1;
    if (!strcmp(key, "allow_insecure_http"))
        return strcmp(val, "yes") && strcmp(val, "no") ? -1 : 0;
    return 0;
}

/* ---- output ---- */

typedef struct session session_t;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vlog(OMADM_LOG_ERROR, "session", fmt, ap);
    va_end(ap);
}

/* url for people: without user:password@, control characters replaced. */
static void show_url(const char *url, char *buf, size_t size)
{
    const char *auth = strstr(url, "://");
    size_t pre = auth ? (size_t)(auth - url) + 3 : 0;
    const char *host = url + pre;
    size_t alen = strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < host + alen; p++)
        if (*p == '@')
            at = p;
    snprintf(buf, size, "%.*s%s", (int)pre, url, at ? at + 1 : host);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Bytes of a message for -vv: printable ASCII, UTF-8 and line breaks as
 * they are, other control bytes as '?'. */
static void put_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n')
            continue;
        fputc(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f) ? c : c == '\r' ? '\n' : '?',
              stderr);
    }
}

/* put_text and a line break at the end. */
static void dump_text(const char *s, size_t len)
{
    put_text(s, len);
    if (!len || s[len - 1] != '\n')
        fputc('\n', stderr);
}

/* The local name of the tag starting at s (after '<' or '</'). */
static size_t tag_name(const char *s, size_t len, const char **local)
{
    size_t n = 0;
    while (n < len && !isspace((unsigned char)s[n]) && s[n] != '>' && s[n] != '/')
        n++;
    *local = s;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            *local = s + i + 1;
    return n;
}

static bool name_is(const char *local, const char *start, size_t n, const char *want)
{
    size_t ln = n - (size_t)(local - start);
    return ln == strlen(want) && !memcmp(local, want, ln);
}

/* xml with the content of every Data inside a Cred replaced by "***",
 * on stderr. */
static void dump_masked_xml(const char *xml, size_t len)
{
    int in_cred = 0;
    size_t i = 0, from = 0;
    while (i < len) {
        if (xml[i] != '<') {
            i++;
            continue;
        }
        bool end = i + 1 < len && xml[i + 1] == '/';
        size_t name_at = i + 1 + (end ? 1 : 0);
        const char *local;
        size_t n = tag_name(xml + name_at, len - name_at, &local);
        const char *gt = memchr(xml + i, '>', len - i);
        size_t after = gt ? (size_t)(gt - xml) + 1 : len;
        bool self_closing = gt && gt > xml + i && gt[-1] == '/';
        if (name_is(local, xml + name_at, n, "Cred") && !self_closing) {
            in_cred += end ? (in_cred > 0 ? -1 : 0) : 1;
        } else if (!end && !self_closing && in_cred > 0 &&
                   name_is(local, xml + name_at, n, "Data")) {
            /* print up to the Data start tag, mask to its end tag */
            put_text(xml + from, after - from);
            fputs("***", stderr);
            size_t j = after;
            for (; j < len; j++) {
                if (xml[j] != '<' || j + 1 >= len || xml[j + 1] != '/')
                    continue;
                const char *l2;
                size_t n2 = tag_name(xml + j + 2, len - j - 2, &l2);
                if (name_is(l2, xml + j + 2, n2, "Data"))
                    break;
            }
            from = i = j;
            continue;
        }
        i = after;
    }
    dump_text(xml + from, len - from);
}

/* ---- the session ---- */

typedef struct opts {
    const char *server_url, *encoding, *cacert, *client_cert, *client_cert_file,
        *client_key_file, *client_auth, *client_user, *client_secret_file, *server_id,
        *server_auth, *server_secret_file, *max_messages, *record;
    char *client_secret, *server_secret; /* copies; argv's text is overwritten */
    int notified, verbose, allow_insecure_http;
} opts_t;

struct session {
    const opts_t *o;
    cli_t cli;
    int exit_code;               /* of a failed cli_open_ex */
    int verbose;
    /* settings, merged */
    const char *server_url;
    int wbxml;
    char *cacert, *cert_file, *key_file; /* resolved paths (malloc'ed) */
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    omadm_auth_t client_auth, server_auth;
    const char *client_user, *server_id;
    char *client_secret, *server_secret; /* malloc'ed, wiped */
    unsigned long max_messages;
    size_t max_msg_size;
    /* TLS material from the store (omadm_certstore_buffer_free wipes it) */
    omadm_cert_identity_t id;
    omadm_tls_key_t *tpm_key;     /* id's key when it is in a TPM */
    const char *session_id;              /* a notification's SessionID, or NULL */
    cli_record_t *rec;                   /* --record, or NULL */
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* path as given on the command line, or relative to the state directory
 * when it came from dmclient.conf. */
static char *resolve(const session_t *s, const char *path, bool from_conf)
{
    if (!path)
        return NULL;
    if (!from_conf || path[0] == '/')
        return strdup(path);
    size_t n = strlen(s->cli.state_dir) + strlen(path) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", s->cli.state_dir, path);
    return p;
}

/* A secret from a file: one line (trailing CR/LF dropped), not empty, no
 * NUL.  0, or -1 after a one-line error naming the file only. */
static int read_secret(const char *what, const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        errorf("%s secret file %s: %s", what, path, strerror(errno));
        return -1;
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    size_t n = 0;
    int err = buf ? 0 : ENOMEM;
    while (!err && n <= SECRET_FILE_MAX) {
        ssize_t r = read(fd, buf + n, SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!err && n > SECRET_FILE_MAX)
        err = EFBIG;
    if (err) {
        errorf("%s secret file %s: %s", what, path,
               err == EFBIG ? "longer than 4096 bytes" : strerror(err));
        if (buf)
            explicit_bzero(buf, SECRET_FILE_MAX + 1);
        free(buf);
        return -1;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = 0;
    if (!n || memchr(buf, 0, n)) {
        errorf("%s secret file %s: %s", what, path, n ? "holds a NUL byte" : "is empty");
        explicit_bzero(buf, SECRET_FILE_MAX + 1);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* The secret of one side: the command line's value or file, else the
 * configuration's.  0, or -1 (s->exit_code set) after a one-line error. */
static int pick_secret(session_t *s, const char *what, const char *cl_val, const char *cl_file,
                       const char *cf_val, const char *cf_file, char **out)
{
    *out = NULL;
    if (cl_val || (cf_val && !cf_file && !cl_file)) {
        if (!(*out = strdup(cl_val ? cl_val : cf_val)))
            errorf("out of memory");
        return *out ? 0 : -1;
    }
    if (cl_file)
        return read_secret(what, cl_file, out);
    if (cf_val && cf_file) {
        errorf("dmclient.conf: %s_secret and %s_secret_file do not go together", what, what);
        s->exit_code = 2;
        return -1;
    }
    if (cf_file) {
        char *path = resolve(s, cf_file, true);
        if (!path) {
            errorf("out of memory");
            return -1;
        }
        int rc = read_secret(what, path, out);
        free(path);
        return rc;
    }
    return 0;
}

/* Merge the command line over dmclient.conf (called by cli_open_ex before
 * the engine starts, so --server-id becomes the ACL identity too). */
static int adjust(void *ctx, cli_t *cli)
{
    session_t *s = ctx;
    const opts_t *o = s->o;
    const cli_account_conf_t *a = &cli->acct;
    s->exit_code = 2;
    if (o->server_id)
        cli->cfg.server_id = o->server_id;
    s->server_id = cli->cfg.server_id && *cli->cfg.server_id ? cli->cfg.server_id : NULL;
    if (s->server_id && !name_ok(s->server_id)) {
        errorf("the server id holds a control character or '\"'");
        return -1;
    }
    s->server_url = o->server_url ? o->server_url : a->server_url;
    if (!s->server_url) {
        errorf("no server: give --server URL or set server_url in %s/dmclient.conf",
               cli->state_dir);
        return -1;
    }
    const char *enc = o->encoding ? o->encoding : a->encoding;
    s->wbxml = 0;
    if (enc)
        parse_encoding(enc, &s->wbxml); /* checked when read */
    if (o->client_auth || a->client_auth)
        parse_auth(o->client_auth ? o->client_auth : a->client_auth, &s->client_auth);
    if (o->server_auth || a->server_auth)
        parse_auth(o->server_auth ? o->server_auth : a->server_auth, &s->server_auth);
    s->client_user = o->client_user ? o->client_user : a->client_user;
    s->max_messages = DEFAULT_MAX_MESSAGES;
    if (o->max_messages || a->max_messages)
        parse_count(o->max_messages ? o->max_messages : a->max_messages, &s->max_messages);

    /* TLS: the command line's client certificate settings replace the
     * configuration's as a whole */
    bool cl_cert = o->client_cert || o->client_cert_file || o->client_key_file;
    const char *thumb = cl_cert ? o->client_cert : a->client_cert;
    const char *cert_file = cl_cert ? o->client_cert_file : a->client_cert_file;
    const char *key_file = cl_cert ? o->client_key_file : a->client_key_file;
    if (!cl_cert && thumb && cert_file) {
        errorf("dmclient.conf: client_cert and client_cert_file do not go together");
        return -1;
    }
    if (!cl_cert && key_file && !cert_file) {
        errorf("dmclient.conf: client_key_file needs client_cert_file");
        return -1;
    }
    if (thumb)
        parse_thumb(thumb, s->thumb);
    s->cacert = resolve(s, o->cacert ? o->cacert : a->cacert, !o->cacert);
    s->cert_file = resolve(s, cert_file, !cl_cert);
    s->key_file = resolve(s, key_file, !cl_cert);
    if ((!s->cacert && (o->cacert || a->cacert)) || (!s->cert_file && cert_file) ||
        (!s->key_file && key_file)) {
        errorf("out of memory");
        s->exit_code = 1;
        return -1;
    }

    /* secrets */
    s->exit_code = 1;
    if (pick_secret(s, "client", o->client_secret, o->client_secret_file, a->client_secret,
                    a->client_secret_file, &s->client_secret) ||
        pick_secret(s, "server", o->server_secret, o->server_secret_file, a->server_secret,
                    a->server_secret_file, &s->server_secret))
        return -1;
    s->exit_code = 2;
    if (s->client_auth != OMADM_AUTH_NONE && !s->client_secret) {
        errorf("--auth %s needs our secret: --client-secret-file, --client-secret, or "
               "client_secret_file in dmclient.conf",
               auth_name(s->client_auth));
        return -1;
    }
    if (s->server_auth != OMADM_AUTH_NONE && !s->server_secret) {
        errorf("--server-auth %s needs the server's secret: --server-secret-file, "
               "--server-secret, or server_secret_file in dmclient.conf",
               auth_name(s->server_auth));
        return -1;
    }
    /* credentials in clear text: Cred (basic: the secret itself), or a
     * digest or MAC an eavesdropper can test guesses against */
    if ((s->client_auth != OMADM_AUTH_NONE || s->server_auth != OMADM_AUTH_NONE) &&
        !strncasecmp(s->server_url, "http://", 7) && !o->allow_insecure_http &&
        !(a->allow_insecure_http && !strcmp(a->allow_insecure_http, "yes"))) {
        errorf("%s %s over plain http:// would send credentials unencrypted: use an https:// "
               "server, or allow it with --allow-insecure-http (allow_insecure_http = yes)",
               s->client_auth != OMADM_AUTH_NONE ? "--auth" : "--server-auth",
               auth_name(s->client_auth != OMADM_AUTH_NONE ? s->client_auth : s->server_auth));
        return -1;
    }
    size_t m = cli->cfg.max_msg_size ? cli->cfg.max_msg_size : DEFAULT_MAX_MSG_SIZE;
    s->max_msg_size = m > MAX_MSG_SIZE_CEILING ? MAX_MSG_SIZE_CEILING : m;
    s->exit_code = 0;
    return 0;
}

/* The client certificate and key from My/System.  0, or -1 after a
 * one-line error. */
static int load_store_cert(session_t *s)
{
    /* the DM identity: the configured certificate, or what its WSTEP
     * renewal replaced it with (docs/wstep.md) */
    omadm_error_t e = omadm_certstore_wstep_identity(s->cli.certs, s->thumb, s->thumb);
    if (e == OMADM_OK || e == OMADM_E_NOT_FOUND || e == OMADM_E_NO_KEY ||
        e == OMADM_E_CORRUPT || e == OMADM_E_NEWER_FORMAT) /* unreadable record: as configured */
        e = omadm_certstore_identity(s->cli.certs, CLIENT_CERT_STORE, s->thumb, &s->id);
    if (e == OMADM_OK && strstr(s->id.key_pem, "-----BEGIN TSS2 PRIVATE KEY-----")) {
        /* a key in the TPM: TLS signs through it (docs/keys.md) */
        const char *why = NULL;
        e = omadm_certstore_tls_key(s->cli.certs, s->id.key_pem, s->id.key_pem_len, &s->tpm_key,
                                    &why);
        if (e == OMADM_OK)
            return 0;
        errorf("client certificate %s: its key is in a TPM: %s", s->thumb,
               why ? why : omadm_strerror(e));
        return -1;
    }
    if (e == OMADM_OK)
        return 0;
    errorf("client certificate %s: %s", s->thumb,
           e == OMADM_E_NOT_FOUND ? "not in the My/System store"
           : e == OMADM_E_NO_KEY  ? "the store has no private key for it"
           : e == OMADM_E_NOMEM   ? "out of memory"
                                  : "cannot read the store");
    return -1;
}

static int readable(const char *what, const char *path)
{
    errno = 0; /* fopen without a reason: no memory for the FILE */
    FILE *f = fopen(path, "r");
    if (!f) {
        errorf("%s %s: %s", what, path, strerror(errno ? errno : ENOMEM));
        return -1;
    }
    fclose(f);
    return 0;
}

/* ---- engine log ---- */

/* The engine's messages with -v (debug ones with -vv): without -v the
 * outcome is reported once, by the session loop. */
static void log_line(void *ctx, omadm_log_level_t level, const char *msg)
{
    const session_t *s = ctx;
    if (s->verbose < (level == OMADM_LOG_DEBUG ? 2 : 1))
        return;
    cli_log((int)level, "session", "%s", msg ? msg : "");
}

/* Nonces we give the server (the engine's Chal): the kernel's CSPRNG. */
static int random_bytes(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- -vv ---- */

static void dump_masked(session_t *s, const uint8_t *msg, size_t len);

/* A message on stderr with what must not reach a log masked (as --record
 * masks it: Cred Data, NextNonce, SCEP Challenges, the secrets wherever
 * they occur), Cred Data shown as "***": XML as it is, WBXML as XML through
 * the engine's own codecs (omadm_message_to_xml).  WBXML starts with its
 * version byte (1..3), XML with text. */
static void dump_message(session_t *s, const uint8_t *msg, size_t len)
{
    uint8_t *copy = len ? malloc(len) : NULL;
    if (!copy) {
        if (len)
            fprintf(stderr, "(%zu bytes not shown: out of memory)\n", len);
        return;
    }
    memcpy(copy, msg, len);
    cli_record_values_t vs = {0};
    const char *secrets[] = {s->client_secret, s->server_secret};
    for (size_t i = 0; i < 2; i++)
        if (secrets[i])
            cli_record_values_add(&vs, (const uint8_t *)secrets[i], strlen(secrets[i]), 4);
    cli_record_mask(&vs, copy, len, 8); /* as --record: shorter values only where they belong */
    cli_record_values_free(&vs);
    dump_masked(s, copy, len);
    explicit_bzero(copy, len);
    free(copy);
}

static void dump_masked(session_t *s, const uint8_t *msg, size_t len)
{
    if (msg[0] < 0x01 || msg[0] > 0x03) {
        dump_masked_xml((const char *)msg, len);
        return;
    }
    char *xml = NULL;
    size_t xml_len = 0;
    const char *detail = NULL;
    omadm_error_t err = omadm_message_to_xml(s->cli.dm, msg, len, OMADM_XML_MASK_CRED, &xml,
                                             &xml_len, &detail);
    if (err) {
        fprintf(stderr, "(%zu bytes of WBXML that cannot be shown as XML: %s)\n", len,
                detail ? detail : omadm_strerror(err));
    } else {
        fprintf(stderr, "(WBXML, shown as XML)\n");
        dump_text(xml, xml_len);
    }
    omadm_buffer_free(s->cli.dm, xml);
}

static void dump_hmac(const char *value)
{
    const char *mac = strcasestr(value, "mac=");
    while (mac && mac > value && mac[-1] != ' ' && mac[-1] != ',')
        mac = strcasestr(mac + 4, "mac=");
    char line[CLI_HTTP_HMAC_MAX + 8];
    if (mac)
        snprintf(line, sizeof line, "%.*smac=***", (int)(mac - value), value);
    else
        snprintf(line, sizeof line, "%s", value);
    fprintf(stderr, "x-syncml-hmac: ");
    dump_text(line, strlen(line));
}

/* ---- HTTP ---- */

static bool retriable(int status)
{
    return status == 401 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

/* Seconds to wait before retrying: Retry-After (seconds or an HTTP date,
 * at most 60), else backoff. */
static unsigned retry_wait(const char *retry_after, unsigned backoff)
{
    if (!*retry_after)
        return backoff;
    if (*retry_after >= '0' && *retry_after <= '9') {
        unsigned long v = 0;
        const char *p = retry_after;
        for (; *p >= '0' && *p <= '9'; p++)
            v = v > RETRY_AFTER_CAP ? v : v * 10 + (unsigned long)(*p - '0');
        if (*p)
            return backoff;
        return v > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : (unsigned)v;
    }
    time_t t = cli_http_date(retry_after);
    if (t == (time_t)-1)
        return backoff;
    time_t now = time(NULL);
    if (t <= now)
        return 0;
    return t - now > (time_t)RETRY_AFTER_CAP ? RETRY_AFTER_CAP : (unsigned)(t - now);
}

#define STOPPED "stopped by a signal; the session is not finished"

/* POST msg to url, retrying as documented.  0 and *resp (HTTP 200), or -1
 * after a one-line error. */
static int exchange(session_t *s, cli_http_client_t *http, const char *url, unsigned long n,
                    const uint8_t *msg, size_t len, const char *hmac, cli_http_reply_t *resp)
{
    char shown[1024], err[CLI_HTTP_ERR_SIZE];
    show_url(url, shown, sizeof shown);
    const cli_http_post_t req = {
        .url = url,
        .content_type = s->wbxml ? CT_WBXML : CT_XML,
        .accept = CT_WBXML ", " CT_XML,
        .hmac = hmac,
        .body = msg,
        .body_len = len,
        .max_response = s->max_msg_size,
        .timeout_s = REQUEST_TIMEOUT_S,
        .connect_timeout_s = CONNECT_TIMEOUT_S,
    };
    if (s->verbose) {
        cli_log(OMADM_LOG_INFO, "session", "message %lu to %s: %zu bytes (%s)", n, shown, len,
                req.content_type);
        if (s->verbose > 1) {
            if (hmac)
                dump_hmac(hmac);
            dump_message(s, msg, len);
        }
    }
    for (int attempt = 0;; attempt++) {
        omadm_http_result_t r = cli_http_client_post(http, &req, resp, err, sizeof err);
        if (r == OMADM_HTTP_ABORTED) {
            errorf(STOPPED);
            return -1;
        }
        if (r == OMADM_HTTP_TOO_LARGE) {
            errorf("%s: the server's message is larger than %zu bytes (max_msg_size)", shown,
                   s->max_msg_size);
            return -1;
        }
        if (r != OMADM_HTTP_OK) {
            errorf("cannot reach %s: %s", shown, err);
            return -1;
        }
        if (s->verbose)
            cli_log(OMADM_LOG_INFO, "session", "HTTP %d from %s: %zu bytes (%s)",
                    resp->status, shown, resp->len,
                    resp->content_type[0] ? resp->content_type : "no content type");
        if (resp->status == 200)
            return 0;
        if (!retriable(resp->status)) {
            errorf("%s: HTTP %d", shown, resp->status);
            cli_http_reply_free(resp);
            return -1;
        }
        if (attempt == RETRIES) {
            errorf("%s: HTTP %d, also after %d retries", shown, resp->status, RETRIES);
            cli_http_reply_free(resp);
            return -1;
        }
        unsigned wait = retry_wait(resp->retry_after, 1u << attempt);
        if (s->verbose)
            cli_log(OMADM_LOG_INFO, "session", "trying message %lu again in %u s (retry %d of %d)",
                    n, wait, attempt + 1, RETRIES);
        cli_http_reply_free(resp);
        if (cli_stop_wait((int64_t)wait * 1000)) {
            errorf(STOPPED);
            return -1;
        }
    }
}

/* ---- the loop ---- */

static int run_session(session_t *s)
{
    cli_t *cli = &s->cli;
    const omadm_account_t acc = {
        .server_url = s->server_url,
        .server_id = s->server_id,
        .client_auth = s->client_auth,
        .client_user = s->client_user,
        .client_secret = s->client_secret,
        .server_auth = s->server_auth,
        .server_secret = s->server_secret,
        .wbxml = s->wbxml,
    };
    cli_tls_t tls = {
        .cacert = s->cacert,
        .cert_file = s->cert_file,
        .key_file = s->key_file,
        .cert_pem = (const uint8_t *)s->id.cert_pem,
        .cert_pem_len = s->id.cert_pem_len,
        .key_pem = (const uint8_t *)s->id.key_pem,
        .key_pem_len = s->id.key_pem_len,
        .key_pkey = omadm_tls_key_pkey(s->tpm_key),
    };
    struct stat st;
    if (!stat(SYSTEM_CAPATH, &st) && S_ISDIR(st.st_mode))
        tls.capath = SYSTEM_CAPATH;
    char err[CLI_HTTP_ERR_SIZE];
    cli_http_client_t *http = NULL;
    if (cli_http_client_new(&tls, &http, err, sizeof err)) {
        errorf("%s", err);
        return 1;
    }

    uint8_t *msg = NULL;
    size_t len = 0;
    omadm_error_t e =
        omadm_session_begin(cli->dm, &acc, s->o->notified, s->session_id, &msg, &len);
    if (e) {
        if (cli_state_report(cli->state_dir, &cli->cfg, e, "auth", "session"))
            errorf("cannot start the session: %s", omadm_strerror(e));
        cli_http_client_free(http);
        return 1;
    }
    cli_log_context(omadm_session_id(cli->dm));
    const cli_record_info_t rinfo = {
        .server_url = s->server_url,
        .wbxml = s->wbxml,
        .notified = s->o->notified,
        .client_auth = s->client_auth,
        .server_auth = s->server_auth,
        .client_user = s->client_user,
        .server_id = s->server_id,
        .client_secret = s->client_secret,
        .server_secret = s->server_secret,
        .verbose = s->verbose,
    };
    cli_record_begin(s->rec, cli, &rinfo, msg, len);
    const bool https = !strncasecmp(s->server_url, "https://", 8);
    int status = 1;
    unsigned long sent = 0, received = 0;
    const char *how = NULL;
    char shown[1024];
    for (;;) {
        const char *url = omadm_session_url(cli->dm);
        show_url(url ? url : "", shown, sizeof shown);
        if (!url || (https && strncasecmp(url, "https://", 8))) {
            errorf("the server's RespURI %s leaves HTTPS; not sent", shown);
            break;
        }
        if (sent == s->max_messages) {
            errorf("the session did not end within %lu messages (max_messages)", sent);
            break;
        }
        if (cli_stop_pending()) {
            errorf(STOPPED);
            break;
        }
        char hmac[CLI_HTTP_HMAC_MAX];
        if (s->client_auth == OMADM_AUTH_HMAC &&
            (e = omadm_session_hmac_sign(cli->dm, msg, len, hmac, sizeof hmac))) {
            errorf("cannot sign message %lu: %s", sent + 1, omadm_strerror(e));
            break;
        }
        cli_record_post(s->rec, url, len, s->client_auth == OMADM_AUTH_HMAC ? hmac : NULL);
        cli_http_reply_t resp;
        int rc = exchange(s, http, url, sent + 1, msg, len,
                          s->client_auth == OMADM_AUTH_HMAC ? hmac : NULL, &resp);
        explicit_bzero(hmac, sizeof hmac);
        omadm_buffer_free(cli->dm, msg);
        msg = NULL;
        if (rc)
            break;
        sent++;
        cli_record_response(s->rec, &resp);
        if (cli_is_blank(resp.body, resp.len)) {
            /* the server ends the session without a message */
            cli_http_reply_free(&resp);
            if ((e = omadm_end_session(cli->dm))) {
                errorf("ending the session: %s", omadm_strerror(e));
                break;
            }
            how = "the server sent an empty response";
            status = 0;
            break;
        }
        received++;
        if (s->verbose > 1) {
            if (resp.n_hmac)
                dump_hmac(resp.hmac);
            dump_message(s, resp.body, resp.len);
        }
        if (s->server_auth == OMADM_AUTH_HMAC &&
            (resp.n_hmac != 1 ||
             omadm_session_hmac_verify(cli->dm, resp.hmac, resp.body, resp.len))) {
            if (s->verbose)
                cli_log(OMADM_LOG_INFO, "session", "%s x-syncml-hmac header%s",
                        resp.n_hmac ? "the server's" : "no", resp.n_hmac > 1 ? "s (several)" : "");
            errorf("the server's x-syncml-hmac does not verify");
            cli_http_reply_free(&resp);
            break;
        }
        e = omadm_process(cli->dm, resp.body, resp.len, &msg, &len);
        cli_record_processed(s->rec, e, msg, len);
        if (e) {
            const char *detail = omadm_last_error_detail(cli->dm);
            if (detail && !strcmp(detail, omadm_strerror(e)))
                detail = NULL;
            /* the input's fault, or ours (memory, storage) */
            bool refused = e == OMADM_E_NOT_SYNCML || e == OMADM_E_TOO_LARGE ||
                           e == OMADM_E_MALFORMED;
            errorf("the server's message %lu (%s) %s: %s%s%s", received,
                   resp.content_type[0] ? resp.content_type : "no content type",
                   refused ? "was refused" : "could not be processed", omadm_strerror(e),
                   detail ? ": " : "", detail ? detail : "");
            cli_http_reply_free(&resp);
            msg = NULL;
            break;
        }
        cli_http_reply_free(&resp);
        if (!msg) {
            const char *why = omadm_session_error(cli->dm);
            if (why) {
                errorf("%s", why);
                break;
            }
            how = "no reply due";
            status = 0;
            break;
        }
    }
    omadm_buffer_free(cli->dm, msg);
    cli_http_client_free(http);
    if (!status && cli_log_dest() != CLI_LOG_PLAIN) /* -v prints a summary on stdout */
        cli_log(OMADM_LOG_INFO, "session", "done: %lu message%s sent, %lu received; %s", sent,
                sent == 1 ? "" : "s", received, how);
    cli_log_context(NULL);
    if (!status && s->verbose) {
        show_url(s->server_url, shown, sizeof shown);
        printf("session with %s done: %lu message%s sent, %lu received; %s\n", shown, sent,
               sent == 1 ? "" : "s", received, how);
    }
    /* a record that could not be written whole fails the command, not the session */
    if (cli_record_finish(s->rec, status, how))
        status = 1;
    return status;
}

/* ---- command line ---- */

enum {
    O_SERVER = 256, O_ENCODING, O_CACERT, O_CLIENT_CERT, O_CLIENT_CERT_FILE, O_CLIENT_KEY_FILE,
    O_AUTH, O_CLIENT_USER, O_CLIENT_SECRET, O_CLIENT_SECRET_FILE, O_SERVER_ID, O_SERVER_AUTH,
    O_SERVER_SECRET, O_SERVER_SECRET_FILE, O_NOTIFIED, O_MAX_MESSAGES, O_ALLOW_INSECURE_HTTP,
    O_RECORD,
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dmclient: session: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", cli_session_usage);
    return 2;
}

/* A secret given on the command line: copied, and the argument text
 * overwritten so it does not stay in /proc/PID/cmdline. */
static char *take_secret(char *arg)
{
    char *copy = strdup(arg);
    memset(arg, 'x', strlen(arg));
    return copy;
}

static const struct option session_opts[] = {
    {"server", required_argument, NULL, O_SERVER},
    {"encoding", required_argument, NULL, O_ENCODING},
    {"cacert", required_argument, NULL, O_CACERT},
    {"client-cert", required_argument, NULL, O_CLIENT_CERT},
    {"client-cert-file", required_argument, NULL, O_CLIENT_CERT_FILE},
    {"client-key-file", required_argument, NULL, O_CLIENT_KEY_FILE},
    {"auth", required_argument, NULL, O_AUTH},
    {"client-user", required_argument, NULL, O_CLIENT_USER},
    {"client-secret", required_argument, NULL, O_CLIENT_SECRET},
    {"client-secret-file", required_argument, NULL, O_CLIENT_SECRET_FILE},
    {"server-id", required_argument, NULL, O_SERVER_ID},
    {"server-auth", required_argument, NULL, O_SERVER_AUTH},
    {"server-secret", required_argument, NULL, O_SERVER_SECRET},
    {"server-secret-file", required_argument, NULL, O_SERVER_SECRET_FILE},
    {"notified", no_argument, NULL, O_NOTIFIED},
    {"allow-insecure-http", no_argument, NULL, O_ALLOW_INSECURE_HTTP},
    {"max-messages", required_argument, NULL, O_MAX_MESSAGES},
    {"record", required_argument, NULL, O_RECORD},
    {"verbose", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

int cli_session_operand(int argc, char **argv)
{
    optind = 0;
    opterr = 0;
    while (getopt_long(argc, argv, "+v", session_opts, NULL) != -1)
        ;
    return optind < argc ? optind : 0;
}

static int parse_args(opts_t *o, int argc, char **argv)
{
    omadm_auth_t a;
    int w;
    unsigned long n;
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    int c;
    optind = 0; /* glibc: start over (main parsed the global options) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+v", session_opts, NULL)) != -1) {
        switch (c) {
        case O_SERVER:
            if (!url_ok(optarg) || !name_ok(optarg))
                return usage_error("--server: expected an http:// or https:// URL, not '%s'",
                                   optarg);
            o->server_url = optarg;
            break;
        case O_ENCODING:
            if (parse_encoding(optarg, &w))
                return usage_error("--encoding: expected xml or wbxml, not '%s'", optarg);
            o->encoding = optarg;
            break;
        case O_CACERT:
            o->cacert = optarg;
            break;
        case O_CLIENT_CERT:
            if (parse_thumb(optarg, thumb))
                return usage_error("--client-cert: expected a 40-digit hex thumbprint, not '%s'",
                                   optarg);
            o->client_cert = optarg;
            break;
        case O_CLIENT_CERT_FILE:
            o->client_cert_file = optarg;
            break;
        case O_CLIENT_KEY_FILE:
            o->client_key_file = optarg;
            break;
        case O_AUTH:
        case O_SERVER_AUTH:
            if (parse_auth(optarg, &a))
                return usage_error(c == O_AUTH
                                       ? "--auth: expected none, basic, digest or hmac, not '%s'"
                                       : "--server-auth: expected none, basic, digest or hmac, "
                                         "not '%s'",
                                   optarg);
            *(c == O_AUTH ? &o->client_auth : &o->server_auth) = optarg;
            break;
        case O_CLIENT_USER:
            if (!*optarg || !name_ok(optarg))
                return usage_error("--client-user: '%s' is empty or holds a control character "
                                   "or '\"'", optarg);
            o->client_user = optarg;
            break;
        case O_SERVER_ID:
            if (!*optarg || !name_ok(optarg))
                return usage_error("--server-id: '%s' is empty or holds a control character "
                                   "or '\"'", optarg);
            o->server_id = optarg;
            break;
        case O_CLIENT_SECRET:
        case O_SERVER_SECRET: {
            char **dst = c == O_CLIENT_SECRET ? &o->client_secret : &o->server_secret;
            wipe_free(*dst);
            if (!*optarg)
                return usage_error("%s: the secret is empty",
                                   c == O_CLIENT_SECRET ? "--client-secret" : "--server-secret");
            if (!(*dst = take_secret(optarg))) {
                fprintf(stderr, "dmclient: session: out of memory\n");
                return 1;
            }
            break;
        }
        case O_CLIENT_SECRET_FILE:
            o->client_secret_file = optarg;
            break;
        case O_SERVER_SECRET_FILE:
            o->server_secret_file = optarg;
            break;
        case O_NOTIFIED:
            o->notified = 1;
            break;
        case O_ALLOW_INSECURE_HTTP:
            o->allow_insecure_http = 1;
            break;
        case O_MAX_MESSAGES:
            if (parse_count(optarg, &n))
                return usage_error("--max-messages: expected a number from 1 to 1000000, "
                                   "not '%s'", optarg);
            o->max_messages = optarg;
            break;
        case O_RECORD:
            o->record = optarg;
            break;
        case 'v':
            o->verbose++;
            break;
        default:
            if (optopt && optopt < 256) {
                char opt[3] = {'-', (char)optopt, 0};
                return usage_error("unknown option '%s'", opt);
            }
            return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->client_secret && o->client_secret_file)
        return usage_error("%s", "--client-secret and --client-secret-file do not go together");
    if (o->server_secret && o->server_secret_file)
        return usage_error("%s", "--server-secret and --server-secret-file do not go together");
    if (o->client_cert && (o->client_cert_file || o->client_key_file))
        return usage_error("%s", "--client-cert and --client-cert-file/--client-key-file do "
                                 "not go together");
    if (o->client_key_file && !o->client_cert_file)
        return usage_error("%s", "--client-key-file needs --client-cert-file");
    return 0;
}

/* dmclient notify (notify_cmd.c, which declares it too: keep the two
 * alike): the session of cli_session_main, same options and settings, with
 * Alert 1200; check() runs once the settings are merged and the state is
 * open, before anything is sent, and returns 0 to go on (with *session_id,
 * when it sets one, as the SessionID) or the exit status. */

int cli_session_check_args(int argc, char **argv)
{
    opts_t o = {0};
    int rc = parse_args(&o, argc, argv);
    wipe_free(o.client_secret);
    wipe_free(o.server_secret);
    return rc;
}

int cli_session_main(const char *state_dir, int argc, char **argv)
{
    return cli_session_run(state_dir, argc, argv, NULL, NULL);
}

int cli_session_run(const char *state_dir, int argc, char **argv, cli_session_check_fn check,
                    void *ctx)
{
    opts_t o = {0};
    int rc = parse_args(&o, argc, argv);
    if (rc) {
        wipe_free(o.client_secret);
        wipe_free(o.server_secret);
        return rc;
    }
    if (check)
        o.notified = 1;
    session_t s = {.o = &o, .verbose = o.verbose};
    if (o.verbose > 1)
        cli_log_verbose(); /* the engine's debug lines */
    /* random: the engine makes the server's nonces with it (there is no
     * fallback for a NULL random hook) */
    const omadm_platform_t platform = {.ctx = &s, .log = log_line, .random = random_bytes};

    /* a server closing the connection must not kill the process */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    if (o.record && (rc = cli_record_open(o.record, &s.rec)))
        goto out;
    /* SIGTERM and SIGINT end the session between two steps of it, never
     * inside omadm_process (stop.c); they stay blocked to the end */
    if (cli_stop_block()) {
        errorf("cannot block signals: %s", strerror(errno));
        rc = 1;
        goto out;
    }

    rc = 1;
    int opened = cli_open_ex(&s.cli, state_dir, &platform, adjust, &s);
    if (opened == CLI_STOPPED)
        errorf(STOPPED);
    if (opened) {
        rc = s.exit_code ? s.exit_code : 1;
        goto out;
    }
    rc = check ? check(ctx, s.cli.dm, s.server_id, s.server_secret, s.verbose, &s.session_id) : 0;
    if (!rc) {
        rc = 1;
        if ((!s.thumb[0] || !load_store_cert(&s)) &&
            (!s.cacert || !readable("--cacert/cacert", s.cacert)) &&
            (!s.cert_file || !readable("client certificate file", s.cert_file)) &&
            (!s.key_file || !readable("client key file", s.key_file)))
            rc = run_session(&s);
    }
    cli_close(&s.cli); /* unlocks the state */
out:
    sigaction(SIGPIPE, &old_pipe, NULL);
    cli_record_free(s.rec);
    wipe_free(s.client_secret);
    wipe_free(s.server_secret);
    omadm_tls_key_free(s.tpm_key);
    omadm_certstore_buffer_free(s.id.key_pem);
    omadm_certstore_buffer_free(s.id.cert_pem);
    free(s.cacert);
    free(s.cert_file);
    free(s.key_file);
    wipe_free(o.client_secret);
    wipe_free(o.server_secret);
    return rc;
}
