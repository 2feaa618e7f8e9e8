/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - where dmclient's progress, warning and error lines go
 * (docs/cli.md "Logging").
 *
 *   plain    "dmclient: MSG" on stderr: a person at a terminal (the default
 *            of every command but daemon)
 *   stderr   "2026-12-07T18:40:01.123Z dmclient[PID]: LEVEL: MSG" on stderr
 *            (the default of daemon)
 *   journal  "<PRIORITY>MSG" on stderr: systemd's journal reads the
 *            priority (sd-daemon(3)) and stamps the line itself
 *   syslog   syslog(3), facility daemon, with the matching priority
 *
 * One line per event: control characters in a message (which may quote
 * what a server sent) become spaces.  A context ("session 12") set while
 * a session runs replaces the command's tag in the timestamped forms, so
 * every line of a session names it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static int dest = CLI_LOG_PLAIN;
static int max_level = OMADM_LOG_INFO;
static char context[48];
static char tag_ctx[64];
static bool syslog_open;

int cli_log_parse_dest(const char *s, int *out)
{
    static const char *const names[] = {"plain", "stderr", "journal", "syslog"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, names[i])) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

int cli_log_parse_level(const char *s, int *out)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"error", OMADM_LOG_ERROR}, {"warning", OMADM_LOG_WARN}, {"warn", OMADM_LOG_WARN},
        {"info", OMADM_LOG_INFO},   {"debug", OMADM_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!strcasecmp(s, names[i].name)) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

/* The settings, each -1 while not given: the command's default
 * destination, the command line's (--log; -v/-q as a level step), and
 * dmclient.conf's (log, log_level). */
static int def_dest = CLI_LOG_PLAIN, cmd_dest = -1, cmd_delta, cmd_verbose, conf_dest = -1,
           conf_level = -1;

static void apply(void)
{
    int d = cmd_dest >= 0 ? cmd_dest : conf_dest >= 0 ? conf_dest : def_dest;
    int level = (conf_level >= 0 ? conf_level : OMADM_LOG_INFO) + cmd_delta + cmd_verbose;
    if (syslog_open && d != CLI_LOG_SYSLOG) {
        closelog();
        syslog_open = false;
    }
    if (d == CLI_LOG_SYSLOG && !syslog_open) {
        openlog("dmclient", LOG_PID, LOG_DAEMON);
        syslog_open = true;
    }
    dest = d;
    max_level = level < OMADM_LOG_ERROR ? OMADM_LOG_ERROR
                : level > OMADM_LOG_DEBUG ? OMADM_LOG_DEBUG
                                          : level;
}

void cli_log_default(int d)
{
    def_dest = d;
    apply();
}

void cli_log_cmdline(int d, int delta)
{
    cmd_dest = d;
    cmd_delta = delta;
    apply();
}

void cli_log_verbose(void)
{
    cmd_verbose = 1;
    apply();
}

void cli_log_conf(int d, int level)
{
    conf_dest = d;
    conf_level = level;
    apply();
}

int cli_log_dest(void)
{
    return dest;
}

int cli_log_level(void)
{
    return max_level;
}

void cli_log_context(const char *ctx)
{
    snprintf(context, sizeof context, "%s", ctx ? ctx : "");
}

static const char *level_name(int level)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    return level >= 0 && level <= 3 ? names[level] : "info";
}

static int syslog_priority(int level)
{
    return level == OMADM_LOG_ERROR  ? LOG_ERR
           : level == OMADM_LOG_WARN ? LOG_WARNING
           : level == OMADM_LOG_INFO ? LOG_INFO
                                     : LOG_DEBUG;
}

/* "session 12" for the tag "session" while a context is set; the tag
 * alone in the plain form and without a context. */
static const char *with_context(const char *tag)
{
    if (!tag)
        return context[0] && dest != CLI_LOG_PLAIN ? context : NULL;
    if (!context[0] || dest == CLI_LOG_PLAIN)
        return tag;
    snprintf(tag_ctx, sizeof tag_ctx, "%s %s", tag, context);
    return tag_ctx;
}

void cli_vlog(int level, const char *tag, const char *fmt, va_list ap)
{
    if (level > max_level)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    const char *t = with_context(tag);
    char line[1200];
    snprintf(line, sizeof line, "%s%s%s", t ? t : "", t ? ": " : "", msg);
    switch (dest) {
    case CLI_LOG_SYSLOG:
        syslog(syslog_priority(level), "%s", line);
        break;
    case CLI_LOG_JOURNAL:
        fprintf(stderr, "<%d>%s\n", syslog_priority(level), line);
        break;
    case CLI_LOG_STDERR: {
        struct timespec ts;
        struct tm tm;
        char when[32] = "";
        clock_gettime(CLOCK_REALTIME, &ts);
        if (gmtime_r(&ts.tv_sec, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ dmclient[%ld]: %s: %s\n", when, ts.tv_nsec / 1000000L,
                (long)getpid(), level_name(level), line);
        break;
    }
    default:
        fprintf(stderr, "dmclient: %s\n", line);
        break;
    }
}

void cli_log(int level, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vlog(level, tag, fmt, ap);
    va_end(ap);
}

void cli_log_hook(void *ctx, omadm_log_level_t level, const char *msg)
{
    cli_log((int)level, (const char *)ctx, "%s", msg ? msg : "");
}
