/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run_cmd.c - dmclient run: the plugins' background work (SCEP enrollment)
 * through omadm_step(), with the state lock held only while stepping.
 *
 * SIGTERM and SIGINT stay blocked for the whole command: a step (which
 * writes the tree and the store, and may wait on the network) is never
 * interrupted, not even by EINTR in a system call.  Between steps the
 * command waits for them with sigtimedwait(), so a signal that arrived
 * during a step ends the loop right after it, and one that arrives while
 * waiting ends the wait at once.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "http.h"

#define MAX_MINUTE_SECONDS 86400u

const char cli_run_usage[] =
    "usage: dmclient [--state-dir DIR] run [--once | --until-idle] [-v]\n"
    "\n"
    "Do the background work that plugins schedule (certificate enrollment\n"
    "over SCEP): each step locks the state directory, does what is due, and\n"
    "unlocks it again, so other dmclient commands run while this one waits.\n"
    "\n"
    "  (no option)    run until SIGTERM or SIGINT: step, wait until the next\n"
    "                 work is due, but at most one minute (work that other\n"
    "                 commands schedule meanwhile is picked up), step again\n"
    "  --once         one step, then exit\n"
    "  --until-idle   step and wait until no work is scheduled, then exit\n"
    "  -v, --verbose  also print debug messages\n"
    "\n"
    "Progress, warnings and errors go to stderr as 'dmclient: ...' lines.\n"
    "SIGTERM or SIGINT ends the command after the current step (exit 0).\n"
    "\n"
    "environment:\n"
    "  DMCLIENT_MINUTE_SECONDS  length in seconds of one minute of the\n"
    "                 enrollment schedule (RetryDelay) and of the idle wait;\n"
    "                 1..86400, default 60 (for tests)\n"
    "\n"
    "Exit status: 0 on success or when stopped by a signal; 1 when the state\n"
    "cannot be opened, or a step failed with --once or --until-idle (without\n"
    "them a failed step is logged and retried a minute later); 2 on usage\n"
    "errors.\n";

enum { RUN_FOREVER, RUN_ONCE, RUN_UNTIL_IDLE };

typedef struct run_log {
    int verbose;
} run_log_t;

/* "dmclient: msg" on stderr; control characters become spaces, so a
 * message (which may quote what a server sent) stays one line. */
static void log_line(void *ctx, omadm_log_level_t level, const char *msg)
{
    const run_log_t *l = ctx;
    if (level == OMADM_LOG_DEBUG && !l->verbose)
        return;
    char line[1024];
    size_t n = 0;
    for (const char *p = msg ? msg : ""; *p && n < sizeof line - 1; p++)
        line[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    line[n] = 0;
    fprintf(stderr, "dmclient: %s\n", line);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void logf_(run_log_t *l, omadm_log_level_t level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line(l, level, msg);
}

/* DMCLIENT_MINUTE_SECONDS: 0 and *out, or -1 after a one-line error. */
static int minute_seconds(unsigned *out)
{
    const char *v = getenv("DMCLIENT_MINUTE_SECONDS");
    *out = 60;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long n = (*v >= '0' && *v <= '9') ? strtoul(v, &end, 10) : 0;
    if (!end || *end || errno || n < 1 || n > MAX_MINUTE_SECONDS) {
        fprintf(stderr,
                "dmclient: run: DMCLIENT_MINUTE_SECONDS must be a whole number of seconds "
                "from 1 to %u, not '%s'\n",
                MAX_MINUTE_SECONDS, v);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static struct timespec mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

/* Wait up to seconds (0: only look) for a signal of set, which is blocked.
 * 1 when one arrived. */
static int wait_for_stop(const sigset_t *set, int64_t seconds)
{
    struct timespec start = mono_now();
    for (;;) {
        struct timespec now = mono_now(), left;
        int64_t ns = seconds * 1000000000LL - ((int64_t)(now.tv_sec - start.tv_sec) * 1000000000LL +
                                               (now.tv_nsec - start.tv_nsec));
        if (ns < 0)
            ns = 0;
        left.tv_sec = (time_t)(ns / 1000000000LL);
        left.tv_nsec = (long)(ns % 1000000000LL);
        if (sigtimedwait(set, NULL, &left) > 0)
            return 1;
        if (errno == EINTR && ns > 0)
            continue; /* another signal: wait for the rest */
        return 0;     /* EAGAIN: time is up */
    }
}

int cli_run_main(const char *state_dir, int argc, char **argv)
{
    int mode = RUN_FOREVER;
    run_log_t log = {0};
    for (int i = 1; i < argc; i++) {
        int m = -1;
        if (!strcmp(argv[i], "--once"))
            m = RUN_ONCE;
        else if (!strcmp(argv[i], "--until-idle"))
            m = RUN_UNTIL_IDLE;
        else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
            log.verbose = 1;
        else {
            fprintf(stderr, "dmclient: run: unexpected argument '%s'\n%s", argv[i],
                    cli_run_usage);
            return 2;
        }
        if (m >= 0 && mode != RUN_FOREVER && mode != m) {
            fprintf(stderr, "dmclient: run: --once and --until-idle do not go together\n%s",
                    cli_run_usage);
            return 2;
        }
        if (m >= 0)
            mode = m;
    }
    unsigned minute;
    if (minute_seconds(&minute))
        return 2;

    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_set, NULL)) {
        fprintf(stderr, "dmclient: run: cannot block signals: %s\n", strerror(errno));
        return 1;
    }
    /* a peer closing a connection must not kill the process (libcurl is
     * told not to touch signals) */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);

    const omadm_platform_t platform = {.ctx = &log, .log = log_line};
    const omadm_certstore_host_t host = {
        .http = cli_http_curl(),
        .minute_seconds = minute,
        .log = log_line,
        .log_ctx = &log,
    };
    const int64_t idle_wait = minute; /* the longest wait between two steps */
    int status = 0;
    for (;;) {
        if (wait_for_stop(&stop_set, 0)) {
            logf_(&log, OMADM_LOG_DEBUG, "run: stopped by a signal");
            break;
        }
        cli_t cli;
        if (cli_open(&cli, state_dir, &platform)) {
            status = 1;
            break;
        }
        omadm_certstore_set_host(cli.certs, &host);
        int64_t next = OMADM_NEVER;
        omadm_error_t err = omadm_step(cli.dm, &next);
        cli_close(&cli); /* unlocks the state */
        if (err) {
            logf_(&log, OMADM_LOG_ERROR, "run: background work failed: %s%s",
                  omadm_strerror(err), mode == RUN_FOREVER ? "; trying again later" : "");
            if (mode != RUN_FOREVER) {
                status = 1;
                break;
            }
        }
        if (mode == RUN_ONCE || (mode == RUN_UNTIL_IDLE && next == OMADM_NEVER))
            break;
        int64_t now = (int64_t)time(NULL), wait;
        if (next == OMADM_NEVER)
            wait = idle_wait;
        else if (next <= now)
            wait = 0;
        else
            wait = next - now < idle_wait ? next - now : idle_wait;
        if (err && wait < idle_wait)
            wait = idle_wait; /* do not spin on work that keeps failing */
        if (next == OMADM_NEVER)
            logf_(&log, OMADM_LOG_DEBUG, "run: nothing scheduled; looking again in %lld s",
                  (long long)wait);
        else
            logf_(&log, OMADM_LOG_DEBUG, "run: next work due in %lld s; stepping in %lld s",
                  (long long)(next > now ? next - now : 0), (long long)wait);
        if (wait_for_stop(&stop_set, wait)) {
            logf_(&log, OMADM_LOG_DEBUG, "run: stopped by a signal");
            break;
        }
    }
    /* SIGTERM and SIGINT stay blocked: one that is still pending must not
     * kill the process on its way out */
    sigaction(SIGPIPE, &old_pipe, NULL);
    return status;
}
