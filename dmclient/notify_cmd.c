/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify_cmd.c - dmclient notify: a server's notification (package 0) from
 * a file or stdin; its digest is checked with the server id and secret of
 * dmclient session's settings, then the session it asks for runs as
 * dmclient session --notified would, with its SessionID
 * (docs/session.md "Notifications (package 0)", docs/cli.md).
 *
 * The notification is read and parsed before the state is opened; the
 * digest is checked with the state locked (it needs the stored nonce),
 * before anything is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* WAP push / SMS carry far less; anything bigger is not a notification */
#define NOTIFY_MAX ((size_t)64 << 10)

const char cli_notify_usage[] =
    "usage: dmclient [--state-dir DIR] notify [FILE|-] [session options]\n"
    "\n"
    "Read a server's notification (OMA DM package 0, binary) from FILE, or\n"
    "stdin when FILE is absent or '-', check its digest with the server's id\n"
    "and secret and the nonce this device keeps for the server, then run the\n"
    "session it asks for: as 'dmclient session --notified' (Alert 1200), with\n"
    "the notification's session ID as SessionID.  FILE goes before or after\n"
    "the options, which with the dmclient.conf keys are those of 'dmclient\n"
    "session --help';\n"
    "the server id (--server-id, server_id) and the server's secret\n"
    "(--server-secret-file, --server-secret, server_secret_file,\n"
    "server_secret) are required.  -v also shows what the notification asks\n"
    "for (version, UI mode, initiator, session ID, server ID).\n"
    "\n"
    "When a 'dmclient daemon' serves DIR and no session options besides -v are\n"
    "given, the daemon runs the session (with its settings) and notify exits\n"
    "with the session's status.\n"
    "\n"
    "Refused (exit 1, nothing sent): input that is not a notification or is\n"
    "larger than 64 KiB, a notification for another server ID, a digest that\n"
    "does not verify.\n"
    "\n"
    "Exit status: 0 the session ended normally; 1 the notification was\n"
    "refused or the session failed; 2 usage errors and incomplete settings.\n";

typedef struct notify {
    const char *name;          /* the input, for messages */
    const char *state_dir;     /* for a message naming a state file */
    const uint8_t *msg;
    size_t len;
    omadm_notification_t n;
    char session_id[8];        /* decimal, 0..65535 */
    bool refused;              /* check() refused it: no session ran */
} notify_t;

/* s for a message line: control bytes and bytes above 0x7e as '?'. */
static void printable(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static const char *ui_mode_name(unsigned m)
{
    static const char *const names[] = {"not specified", "background", "informative",
                                        "user interaction"};
    return m < 4 ? names[m] : "?";
}

static void show(const notify_t *nt)
{
    char id[sizeof nt->n.server_id];
    printable(nt->n.server_id, id, sizeof id);
    cli_log(OMADM_LOG_INFO, "notify", "%s: version %u, UI mode %u (%s), initiator %u (%s), session ID %u, "
            "server ID '%s', %zu bytes vendor-specific",
            nt->name, nt->n.version, nt->n.ui_mode, ui_mode_name(nt->n.ui_mode), nt->n.initiator,
            nt->n.initiator ? "server" : "client", nt->n.session_id, id, nt->n.vendor_len);
}

/* Called by cli_session_run with the state open: 0 to start the session. */
static int check(void *ctx, omadm_t *dm, const char *server_id, const char *server_secret,
                 int verbose, const char **session_id)
{
    notify_t *nt = ctx;
    nt->refused = true; /* until the digest verifies */
    if (verbose)
        show(nt);
    if (!server_id) {
        cli_log(OMADM_LOG_ERROR, "notify", "no server id to check the notification with: give "
                        "--server-id or set server_id in dmclient.conf");
        return 2;
    }
    if (!server_secret) {
        cli_log(OMADM_LOG_ERROR, "notify", "no server secret to check the notification with: "
                        "give --server-secret-file, --server-secret, or server_secret_file in "
                        "dmclient.conf");
        return 2;
    }
    char want[256], got[sizeof nt->n.server_id];
    printable(server_id, want, sizeof want);
    if (strcmp(nt->n.server_id, server_id)) {
        printable(nt->n.server_id, got, sizeof got);
        cli_log(OMADM_LOG_ERROR, "notify", "the notification is for server ID '%s', not %s "
                        "(the configured server ID)",
                got, want);
        return 1;
    }
    omadm_error_t e = omadm_notification_verify(dm, nt->msg, nt->len, server_id, server_secret);
    if (e == OMADM_E_DENIED) {
        cli_log(OMADM_LOG_ERROR, "notify", "the notification's digest does not verify for server ID %s",
                want);
        return 1;
    }
    if (e && cli_state_report(nt->state_dir, NULL, e, "auth", "notify")) {
        cli_log(OMADM_LOG_ERROR, "notify", "checking the notification: %s", omadm_strerror(e));
        return 1;
    }
    if (e)
        return 1;
    snprintf(nt->session_id, sizeof nt->session_id, "%u", nt->n.session_id);
    *session_id = nt->session_id;
    nt->refused = false;
    if (verbose)
        cli_log(OMADM_LOG_INFO, "notify", "the digest verifies; session %s with %s",
                nt->session_id, want);
    return 0;
}

/* The notification from path into nt.  0, or the exit status after a
 * one-line error. */
static int load(notify_t *nt, const char *path, uint8_t **data)
{
    size_t len = 0;
    int rc = cli_read_input(path, NOTIFY_MAX, data, &len);
    if (rc) {
        fprintf(stderr, "dmclient: notify: %s: %s\n", nt->name,
                rc == EFBIG ? "larger than 64 KiB: not a notification" : strerror(rc));
        return 1;
    }
    nt->msg = *data;
    nt->len = len;
    if (omadm_notification_parse(nt->msg, nt->len, &nt->n)) {
        fprintf(stderr, "dmclient: notify: %s: not a notification (package 0): %s\n", nt->name,
                len < 24 ? "shorter than its digest and header (24 bytes)"
                         : "the server ID does not fit in it or holds a NUL byte");
        return 1;
    }
    return 0;
}

int cli_notify_session(const char *state_dir, const char *name, const uint8_t *msg, size_t len,
                       int argc, char **argv, bool *refused)
{
    notify_t nt = {.name = name, .msg = msg, .len = len};
    *refused = true;
    if (omadm_notification_parse(nt.msg, nt.len, &nt.n)) {
        cli_log(OMADM_LOG_ERROR, "notify", "%s: not a notification (package 0): %s", nt.name,
                len < 24 ? "shorter than its digest and header (24 bytes)"
                         : "the server ID does not fit in it or holds a NUL byte");
        return 1;
    }
    int rc = cli_session_run(state_dir, argc, argv, check, &nt);
    *refused = nt.refused;
    return rc;
}

/* Whether argv (without FILE) holds session options besides -v. */
static bool has_session_options(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-v") && strcmp(argv[i], "--verbose") && strcmp(argv[i], "-vv"))
            return true;
    return false;
}

int cli_notify_main(const char *state_dir, int argc, char **argv)
{
    /* argv[0] is "notify"; FILE, when given, before or after the options */
    int at = cli_session_operand(argc, argv);
    const char *path = at ? argv[at] : "-";
    notify_t nt = {.name = strcmp(path, "-") ? path : "stdin", .state_dir = state_dir};
    uint8_t *data = NULL;
    int rc = load(&nt, path, &data);
    if (rc) {
        free(data);
        return rc;
    }
    /* the session's own arguments: argv without FILE */
    char **sargv = calloc((size_t)argc + 1, sizeof *sargv);
    if (!sargv) {
        fprintf(stderr, "dmclient: notify: out of memory\n");
        free(data);
        return 1;
    }
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (!at || i != at)
            sargv[n++] = argv[i];
    /* a daemon serving the state directory runs the session, with its own
     * settings; options given here mean a session of this process */
    rc = has_session_options(n, sargv) ? CLI_NO_DAEMON
                                       : cli_daemon_notify(state_dir, nt.msg, nt.len);
    if (rc == CLI_NO_DAEMON)
        rc = cli_session_run(state_dir, n, sargv, check, &nt);
    free(sargv);
    free(data);
    return rc;
}
