/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon_cmd.c - dmclient daemon: the device's management service in the
 * foreground of a service manager (docs/cli.md "dmclient daemon").
 *
 * One thread, one loop.  It sleeps in poll(2) on a signalfd (SIGTERM,
 * SIGINT, SIGHUP, all blocked for the whole process) and the notification
 * socket DIR/notify.sock, until the next thing falls due:
 *
 *   - a step of the plugins' background work (as dmclient run does it),
 *     when omadm_step said, and at least every DMCLIENT_MINUTE_SECONDS;
 *   - a DM session (as dmclient session does it, with the daemon's session
 *     options and dmclient.conf): at start-up, then every poll_interval
 *     plus up to 10 % jitter; soon after a step queued a generic alert
 *     that no session has carried yet (an enrollment's result); after a
 *     failed session, retry_min doubling up to retry_max (with jitter);
 *   - a notification that dmclient notify hands over on the socket: its
 *     session runs at once and notify gets the session's exit status.
 *
 * The state lock is held only inside a step or a session, as by run and
 * session, so every other dmclient command works while the daemon runs.
 * SIGTERM/SIGINT end a step or session at its next safe point (within
 * about 100 ms of network waiting) and then the loop; SIGHUP reads
 * dmclient.conf again.  DIR/daemon.lock (flock) keeps a second daemon off
 * the same state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define NOTIFY_MAX ((size_t)64 << 10) /* as notify_cmd.c */
#define NOTIFY_READ_MS 2000           /* a client has this long to send */
#define ALERT_SESSION_DELAY_MS 2000   /* a queued alert's session, soon */
#define DEFAULT_POLL_S 3600.0
#define DEFAULT_RETRY_MIN_S 60.0
#define DEFAULT_RETRY_MAX_S 3600.0
#define MIN_INTERVAL_S 0.1
#define MAX_INTERVAL_S (366.0 * 86400.0)

const char cli_daemon_usage[] =
    "usage: dmclient [--state-dir DIR] [--log DEST] [-v|-q] daemon [session options]\n"
    "\n"
    "Run as the device's management service, in the foreground (under systemd\n"
    "or another service manager), until SIGTERM or SIGINT:\n"
    "  - a DM session at start-up and then every poll_interval seconds, plus a\n"
    "    random delay of up to 10 % so that a fleet does not arrive at once;\n"
    "  - background work (certificate enrollment) as it falls due, as 'run';\n"
    "  - a session about 2 s after background work queued a generic alert for\n"
    "    the server (an enrollment's result), instead of at the next poll;\n"
    "  - the session a server notification asks for, when 'dmclient notify'\n"
    "    hands it over through DIR/notify.sock;\n"
    "  - after a failed session, retries after retry_min seconds, doubling up\n"
    "    to retry_max (with up to 10 % jitter), until one succeeds.\n"
    "The session options are those of 'dmclient session --help' (secrets only\n"
    "from files or dmclient.conf); the state directory is locked only during\n"
    "a step or a session, so other dmclient commands work meanwhile.\n"
    "\n"
    "dmclient.conf keys (read again on SIGHUP):\n"
    "  poll_interval = SECONDS   between two sessions (default 3600)\n"
    "  retry_min = SECONDS       first retry after a failed session (default 60)\n"
    "  retry_max = SECONDS       longest wait between retries (default 3600)\n"
    "  log = DEST, log_level = LEVEL   as --log and -v/-q (see dmclient --help)\n"
    "Seconds may have a fraction (at least 0.1).\n"
    "\n"
    "Log lines go to stderr with a timestamp, PID and level unless --log or\n"
    "log say otherwise.  SIGTERM or SIGINT ends the daemon within a second\n"
    "(a step or session in progress stops at its next safe point and is\n"
    "taken up again later); SIGHUP reloads dmclient.conf.\n"
    "\n"
    "environment:\n"
    "  DMCLIENT_MINUTE_SECONDS  as for 'run' (also the longest wait between\n"
    "                 two looks for background work)\n"
    "\n"
    "Exit status: 0 stopped by a signal; 1 the state directory cannot be used\n"
    "(or another daemon serves it); 2 usage errors, a dmclient.conf with an\n"
    "error, or settings that make no session possible at start-up.\n";

typedef struct timing {
    double poll, retry_min, retry_max; /* seconds */
} timing_t;

typedef struct daemon {
    const char *state_dir;
    int argc;          /* the session's arguments, argv[0] "session" */
    char **argv;
    unsigned minute;
    timing_t t;
    int failures;      /* sessions failed in a row */
    int64_t next_step, next_session; /* monotonic ms */
    char *known;       /* "\nID\nID\n": alerts that a session has seen queued */
    char *seen;        /* the same, as the last step found them */
    bool new_alert;    /* the last step found an alert not in known */
    int listen_fd, sig_fd, lock_fd;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} daemon_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ms for s seconds plus a random 0..10 %. */
static int64_t jittered(double s)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)mono_ms() * 2654435761u;
    double f = 1.0 + 0.1 * ((double)r / 4294967296.0);
    return (int64_t)(s * 1000.0 * f + 0.5);
}

static int parse_seconds(const char *val, double *out)
{
    char *end = NULL;
    errno = 0;
    if (!((*val >= '0' && *val <= '9') || *val == '.'))
        return -1;
    double v = strtod(val, &end);
    if (!end || *end || errno || !(v >= MIN_INTERVAL_S) || v > MAX_INTERVAL_S)
        return -1;
    *out = v;
    return 0;
}

int cli_service_conf_check(const char *key, const char *val)
{
    int n;
    double s;
    if (!strcmp(key, "log"))
        return cli_log_parse_dest(val, &n);
    if (!strcmp(key, "log_level"))
        return cli_log_parse_level(val, &n);
    if (!strcmp(key, "tpm_tcti"))
        return omadm_certstore_tpm_check(val) == OMADM_OK ? 0 : -1;
    return parse_seconds(val, &s);
}

/* poll_interval, retry_min, retry_max of dmclient.conf (read again; log
 * and log_level take effect as it is read): 0, or -1 after an error line. */
static int read_timing(const char *state_dir, timing_t *t)
{
    cli_t conf;
    if (cli_read_conf(&conf, state_dir))
        return -1;
    timing_t n = {DEFAULT_POLL_S, DEFAULT_RETRY_MIN_S, DEFAULT_RETRY_MAX_S};
    if (conf.svc.poll_interval)
        parse_seconds(conf.svc.poll_interval, &n.poll);
    if (conf.svc.retry_min)
        parse_seconds(conf.svc.retry_min, &n.retry_min);
    if (conf.svc.retry_max)
        parse_seconds(conf.svc.retry_max, &n.retry_max);
    cli_close(&conf);
    if (n.retry_max < n.retry_min) {
        cli_log(OMADM_LOG_ERROR, "daemon", "%s/dmclient.conf: retry_max (%g s) is shorter than "
                "retry_min (%g s)", state_dir, n.retry_max, n.retry_min);
        return -1;
    }
    *t = n;
    return 0;
}

/* ---- alerts: a session soon after a step queued one ---- */

typedef struct ids {
    char *buf;
    size_t len, cap;
    bool failed;
} ids_t;

static int collect_id(void *ctx, const omadm_generic_alert_t *a)
{
    ids_t *ids = ctx;
    size_t n = strlen(a->id);
    if (ids->len + n + 2 > ids->cap) {
        size_t cap = (ids->len + n + 2) * 2;
        char *b = realloc(ids->buf, cap);
        if (!b) {
            ids->failed = true;
            return 1;
        }
        ids->buf = b;
        ids->cap = cap;
    }
    if (!ids->len)
        ids->buf[ids->len++] = '\n';
    memcpy(ids->buf + ids->len, a->id, n);
    ids->len += n;
    ids->buf[ids->len++] = '\n';
    ids->buf[ids->len] = 0;
    return 0;
}

/* Whether list ("\nID\n..." or NULL) holds id. */
static bool has_id(const char *list, const char *id, size_t n)
{
    for (const char *p = list ? strstr(list, "\n") : NULL; p && p[1]; p = strchr(p + 1, '\n'))
        if (!strncmp(p + 1, id, n) && p[1 + n] == '\n')
            return true;
    return false;
}

/* After a step, with the state still open: the queued alerts. */
static void after_step(void *ctx, cli_t *cli)
{
    daemon_t *d = ctx;
    ids_t ids = {0};
    if (omadm_alerts(cli->dm, collect_id, &ids) || ids.failed) {
        free(ids.buf);
        return; /* the next poll carries them */
    }
    free(d->seen);
    d->seen = ids.buf;
    for (const char *p = ids.buf; p && p[1]; p = strchr(p + 1, '\n')) {
        size_t n = strcspn(p + 1, "\n");
        if (!has_id(d->known, p + 1, n)) {
            d->new_alert = true;
            break;
        }
    }
}

/* ---- the notification socket ---- */

static int sock_path(const char *state_dir, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/notify.sock", state_dir);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int listen_socket(daemon_t *d)
{
    if (sock_path(d->state_dir, d->sock_path, sizeof d->sock_path)) {
        cli_log(OMADM_LOG_ERROR, "daemon", "%s/notify.sock: the path is too long for a socket",
                d->state_dir);
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, d->sock_path, sizeof sa.sun_path);
    unlink(d->sock_path); /* one of a daemon that is gone (daemon.lock is ours) */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0177); /* 0600: the daemon's user (and root) only */
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc || listen(fd, 8)) {
        cli_log(OMADM_LOG_ERROR, "daemon", "%s: %s", d->sock_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    d->listen_fd = fd;
    return 0;
}

/* Read until EOF, at most max bytes, within NOTIFY_READ_MS: the length, or
 * -1. */
static ssize_t read_all(int fd, uint8_t *buf, size_t max)
{
    size_t len = 0;
    int64_t end = mono_ms() + NOTIFY_READ_MS;
    for (;;) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (len == max)
            return -1; /* more than a notification */
        ssize_t r = read(fd, buf + len, max - len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return -1;
        if (!r)
            return (ssize_t)len;
        len += (size_t)r;
    }
}

static void reply(int fd, int status)
{
    char line[16];
    int n = snprintf(line, sizeof line, "%d\n", status);
    if (write(fd, line, (size_t)n) != n)
        cli_log(OMADM_LOG_WARN, "daemon", "the notifier went away before its answer");
}

/* One notification from a client of the socket: its session, then the
 * session's exit status to the client.  Whether a session ran and how it
 * ended in *status (-1: none ran). */
static void serve_notification(daemon_t *d, int *status)
{
    *status = -1;
    int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
        (cred.uid != 0 && cred.uid != getuid())) {
        cli_log(OMADM_LOG_WARN, "daemon", "a notification from user %ld refused",
                clen == sizeof cred ? (long)cred.uid : -1L);
        close(fd);
        return;
    }
    uint8_t *buf = malloc(NOTIFY_MAX);
    ssize_t len = buf ? read_all(fd, buf, NOTIFY_MAX) : -1;
    if (len < 0) {
        cli_log(OMADM_LOG_WARN, "daemon", "a notification that was not sent whole within %d s, "
                "or larger than 64 KiB, was dropped", NOTIFY_READ_MS / 1000);
        reply(fd, 1);
    } else {
        cli_log(OMADM_LOG_INFO, "daemon", "a notification (%zd bytes) from PID %ld",
                len, (long)cred.pid);
        bool refused;
        int rc = cli_notify_session(d->state_dir, "notification", buf, (size_t)len, d->argc,
                                    d->argv, &refused);
        reply(fd, rc);
        /* a notification refused (a bad digest ...) is no failed session:
         * the schedule stays as it was */
        *status = refused ? -1 : rc;
    }
    free(buf);
    close(fd);
}

int cli_daemon_notify(const char *state_dir, const uint8_t *msg, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (sock_path(state_dir, sa.sun_path, sizeof sa.sun_path))
        return CLI_NO_DAEMON;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CLI_NO_DAEMON;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return CLI_NO_DAEMON; /* none listens (ENOENT, ECONNREFUSED) */
    }
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    int status = 1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, msg + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < len || shutdown(fd, SHUT_WR)) {
        cli_log(OMADM_LOG_ERROR, "notify", "handing the notification to the daemon: %s",
                strerror(errno));
        goto out;
    }
    /* the daemon answers when its session has ended */
    char line[16] = "";
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (cli_stop_pending()) {
            cli_log(OMADM_LOG_ERROR, "notify", "stopped by a signal; the daemon's session goes on");
            goto out;
        }
        int n = poll(&p, 1, 100);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        ssize_t r = read(fd, line + got, sizeof line - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (got += (size_t)r) == sizeof line - 1)
            break;
    }
    line[got] = 0;
    char *end = NULL;
    long v = strtol(line, &end, 10);
    if (!got || end == line || *end != '\n' || v < 0 || v > 2) {
        cli_log(OMADM_LOG_ERROR, "notify", "the daemon stopped before the session ended");
        goto out;
    }
    status = (int)v;
    if (status)
        cli_log(OMADM_LOG_ERROR, "notify", "the daemon's session for the notification failed "
                "(exit status %d; its log says why)", status);
out:
    sigaction(SIGPIPE, &old_pipe, NULL);
    close(fd);
    return status;
}

/* ---- the loop ---- */

/* After a session (status as dmclient session exits): when the next one
 * is due. */
static void session_done(daemon_t *d, int status, int64_t now)
{
    if (!status) {
        d->failures = 0;
        d->next_session = now + jittered(d->t.poll);
        return;
    }
    d->failures++;
    double wait = d->t.retry_min;
    for (int i = 1; i < d->failures && wait < d->t.retry_max; i++)
        wait *= 2;
    if (wait > d->t.retry_max)
        wait = d->t.retry_max;
    d->next_session = now + jittered(wait);
    cli_log(OMADM_LOG_WARN, "daemon", "session failed (%d in a row); next try in %.1f s",
            d->failures, (double)(d->next_session - now) / 1000.0);
}

static int run_session(daemon_t *d)
{
    /* the alerts the last step saw go with this session */
    free(d->known);
    d->known = d->seen ? strdup(d->seen) : NULL;
    d->new_alert = false;
    int status = cli_session_run(d->state_dir, d->argc, d->argv, NULL, NULL);
    /* whatever the server ordered (an enrollment) is looked at now */
    d->next_step = mono_ms();
    return status;
}

static void step(daemon_t *d, int64_t now)
{
    int64_t next = OMADM_NEVER;
    int rc = cli_run_step(d->state_dir, d->minute, true, &next, after_step, d);
    int64_t longest = (int64_t)d->minute * 1000;
    int64_t wait = longest;
    if (!rc && next != OMADM_NEVER) {
        int64_t in = (next - (int64_t)time(NULL)) * 1000;
        wait = in < 0 ? 0 : in < longest ? in : longest;
    }
    d->next_step = mono_ms() + wait;
    if (d->new_alert && d->next_session > now + ALERT_SESSION_DELAY_MS) {
        cli_log(OMADM_LOG_INFO, "daemon", "an alert is queued for the server: session in %d s",
                ALERT_SESSION_DELAY_MS / 1000);
        d->next_session = now + ALERT_SESSION_DELAY_MS;
    }
}

/* Signals from the signalfd: 1 to stop, 0 to go on. */
static int take_signals(daemon_t *d)
{
    struct signalfd_siginfo si;
    int stop = 0;
    while (read(d->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            timing_t t;
            if (!read_timing(d->state_dir, &t)) {
                bool sooner = t.poll < d->t.poll;
                d->t = t;
                if (sooner && !d->failures)
                    d->next_session = mono_ms() + jittered(t.poll);
                cli_log(OMADM_LOG_INFO, "daemon", "dmclient.conf read again: poll_interval %g s, "
                        "retry_min %g s, retry_max %g s", t.poll, t.retry_min, t.retry_max);
            } else {
                cli_log(OMADM_LOG_WARN, "daemon", "keeping the settings in use");
            }
        } else {
            stop = 1;
        }
    }
    if (stop)
        cli_stop_set();
    return stop;
}

static int take_daemon_lock(daemon_t *d)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/daemon.lock", d->state_dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->lock_fd < 0)
        return -1;
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            errno = EBUSY;
        return -1;
    }
    return 0;
}

/* The session's argv from the daemon's: "session" and the options; the
 * options are checked once here (every session parses them again). */
static int session_args(daemon_t *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--client-secret", 15) || !strncmp(argv[i], "--server-secret", 15)) {
            if (!strncmp(argv[i] + 15, "-file", 5))
                continue;
            fprintf(stderr, "dmclient: daemon: %.15s: a daemon's secrets come from files "
                    "(%.15s-file) or dmclient.conf\n", argv[i], argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--notified")) {
            fprintf(stderr, "dmclient: daemon: --notified: notifications reach the daemon "
                    "through 'dmclient notify'\n");
            return 2;
        }
    }
    d->argv = calloc((size_t)argc + 1, sizeof *d->argv);
    if (!d->argv) {
        fprintf(stderr, "dmclient: daemon: out of memory\n");
        return 1;
    }
    static char session_name[] = "session";
    d->argv[0] = session_name;
    for (int i = 1; i < argc; i++)
        d->argv[i] = argv[i];
    d->argc = argc;
    return cli_session_check_args(d->argc, d->argv);
}

int cli_daemon_main(const char *state_dir, int argc, char **argv)
{
    daemon_t d = {.state_dir = state_dir, .listen_fd = -1, .sig_fd = -1, .lock_fd = -1};
    cli_log_default(CLI_LOG_STDERR);
    int status = session_args(&d, argc, argv);
    if (status)
        goto out;
    status = 2;
    if (cli_minute_seconds(&d.minute))
        goto out;
    status = 1;
    /* SIGTERM, SIGINT (stop.c) and SIGHUP blocked, read from a signalfd */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    if (cli_stop_block() || sigprocmask(SIG_BLOCK, &set, NULL)) {
        cli_log(OMADM_LOG_ERROR, "daemon", "cannot block signals: %s", strerror(errno));
        goto out;
    }
    sigaddset(&set, SIGTERM);
    /* a SIGINT ignored at start stays ignored (as in stop.c) */
    struct sigaction cur;
    if (sigaction(SIGINT, NULL, &cur) || cur.sa_handler != SIG_IGN)
        sigaddset(&set, SIGINT);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
    d.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d.sig_fd < 0) {
        cli_log(OMADM_LOG_ERROR, "daemon", "signalfd: %s", strerror(errno));
        goto out;
    }
    struct stat st;
    if (stat(state_dir, &st) && errno == ENOENT && mkdir(state_dir, 0755) && errno != EEXIST) {
        cli_log(OMADM_LOG_ERROR, "daemon", "state directory %s: %s", state_dir, strerror(errno));
        goto out;
    }
    if (take_daemon_lock(&d)) {
        cli_log(OMADM_LOG_ERROR, "daemon", "state directory %s: %s", state_dir,
                errno == EBUSY ? "another dmclient daemon serves it" : strerror(errno));
        goto out;
    }
    if (read_timing(state_dir, &d.t)) {
        status = 2; /* settings a restart does not fix */
        goto out;
    }
    if (listen_socket(&d))
        goto out;
    cli_log(OMADM_LOG_INFO, "daemon", "started (dmclient %s, state %s, poll_interval %g s)",
            OMADM_VERSION_STRING, state_dir, d.t.poll);

    int64_t now = mono_ms();
    d.next_step = now;
    d.next_session = now;
    bool first = true;
    status = 0;
    for (;;) {
        if (cli_stop_pending())
            break;
        now = mono_ms();
        if (now >= d.next_step)
            step(&d, now);
        if (cli_stop_pending())
            break;
        now = mono_ms();
        if (now >= d.next_session) {
            int rc = run_session(&d);
            if (rc == 2 && first) {
                /* settings that make no session possible: the service
                 * manager shows the failure and its line */
                status = 2;
                break;
            }
            first = false;
            if (cli_stop_pending())
                break;
            session_done(&d, rc, mono_ms());
            continue;
        }
        int64_t until = d.next_step < d.next_session ? d.next_step : d.next_session;
        int64_t wait = until - now;
        struct pollfd p[2] = {{.fd = d.sig_fd, .events = POLLIN},
                              {.fd = d.listen_fd, .events = POLLIN}};
        int n = poll(p, 2, wait > 86400000 ? 86400000 : (int)wait);
        if (n < 0 && errno != EINTR) {
            cli_log(OMADM_LOG_ERROR, "daemon", "poll: %s", strerror(errno));
            status = 1;
            break;
        }
        if (n > 0 && (p[0].revents & POLLIN) && take_signals(&d))
            break;
        if (n > 0 && (p[1].revents & POLLIN)) {
            int ns;
            serve_notification(&d, &ns);
            if (ns >= 0 && !cli_stop_pending()) {
                first = false;
                d.next_step = mono_ms();
                session_done(&d, ns, mono_ms());
            }
        }
    }
    if (cli_stop_pending())
        cli_log(OMADM_LOG_INFO, "daemon", "stopped by a signal");
out:
    if (d.listen_fd >= 0) {
        unlink(d.sock_path);
        close(d.listen_fd);
    }
    if (d.sig_fd >= 0)
        close(d.sig_fd);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    free(d.argv);
    free(d.known);
    free(d.seen);
    return status;
}
