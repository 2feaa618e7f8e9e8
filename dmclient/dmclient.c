/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dmclient.c - the command-line host of the omadm library.
 *
 *   dmclient [--state-dir DIR] process [FILE]
 *   dmclient [--state-dir DIR] get URI
 *   dmclient [--state-dir DIR] store ...
 *   dmclient [--state-dir DIR] alerts [--json] | --ack ID
 *   dmclient [--state-dir DIR] run [--once | --until-idle] [-v]
 *   dmclient [--state-dir DIR] session [--server URL] [options]
 *   dmclient [--state-dir DIR] notify [FILE|-] [session options]
 *   dmclient [--state-dir DIR] check [--repair] [--json]
 *
 * The host owns all I/O: it reads the server message, persists engine
 * state in the state directory (state.c) and writes the reply; HTTP for
 * the plugins' background work and for DM sessions (session_cmd.c) goes
 * through libcurl (http.c), which is loaded only for the commands that may
 * use HTTP (those with own_fn below).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omadm/omadm.h>

#include "cli.h"
#include "http.h"

static const char usage_main[] =
    "usage: dmclient [--state-dir DIR] [--log DEST] [-v|-q] COMMAND [ARGS]\n"
    "\n"
    "An OMA DM 1.2 device client.\n"
    "\n"
    "commands:\n"
    "  process [FILE]   process one server message (XML or WBXML) from FILE or\n"
    "                   stdin; the reply goes to stdout in the same encoding\n"
    "  get URI          print a node's value, or an interior node's children\n"
    "  store ...        list, show, export and check the certificate store\n"
    "  alerts           list (or --ack) the generic alerts queued for the server\n"
    "  run              do background work (certificate enrollment) as it falls\n"
    "                   due: --once, --until-idle, or until SIGTERM/SIGINT\n"
    "  session          run one DM session with the server over HTTP(S)\n"
    "  notify [FILE]    check a server's notification (package 0) and run the\n"
    "                   session it asks for (or hand it to the daemon)\n"
    "  daemon           the management service: sessions every poll interval,\n"
    "                   on notifications and on queued alerts, background work\n"
    "  check            verify the state directory (tree, session, store); --repair\n"
    "                   fixes what can be fixed without losing anything\n"
    "\n"
    "options:\n"
    "  --state-dir DIR  where the tree and session state live\n"
    "                   (default: $DMCLIENT_STATE_DIR, else /var/lib/dmclient)\n"
    "  --log DEST       where log lines go: plain ('dmclient: ...' lines on\n"
    "                   stderr; the default), stderr (with time, PID and level;\n"
    "                   the daemon's default), journal (systemd priorities on\n"
    "                   stderr) or syslog [log]\n"
    "  -v, --verbose    one log level more (info -> debug) [log_level]\n"
    "  -q, --quiet      one log level less (info -> warning -> error)\n"
    "  -h, --help       show this help; 'dmclient COMMAND --help' for a command\n"
    "  -V, --version    print the version and exit\n"
    "\n"
    "Device settings are read from DIR/dmclient.conf (see docs/cli.md).  One\n"
    "dmclient at a time uses a state directory (DIR/lock); others wait.\n";

static const char usage_process[] =
    "usage: dmclient [--state-dir DIR] process [FILE]\n"
    "\n"
    "Read one SyncML DM message from the server (FILE, or stdin when FILE is\n"
    "absent or '-'), run its commands against the management tree, and write\n"
    "the device's reply to stdout in the encoding of the request (XML or\n"
    "WBXML, detected from the bytes).  Nothing is written when no reply is due\n"
    "(a message without commands, or Alert 1223); an empty message ends the\n"
    "session.  Exit status: 0 on success, 1 when the input is not a SyncML\n"
    "message or cannot be processed, 2 on usage errors.\n";

static const char usage_get[] =
    "usage: dmclient [--state-dir DIR] get URI\n"
    "\n"
    "Print the value of the leaf node URI, or the '/'-separated child names of\n"
    "an interior node, followed by a newline.  Exit status 1 when the node does\n"
    "not exist.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* The arguments of process and get, checked before the state is opened:
 * 0, or 2 after a one-line error. */
static int process_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "dmclient: process: unknown option '%s'\n", argv[i]);
            return 2;
        }
    if (argc > 2) {
        fprintf(stderr, "dmclient: process: unexpected argument '%s' (one FILE at most)\n",
                argv[2]);
        return 2;
    }
    return 0;
}

static int get_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') {
            fprintf(stderr, "dmclient: get: unknown option '%s'\n", argv[i]);
            return 2;
        }
    if (argc < 2) {
        fprintf(stderr, "dmclient: get: expected one URI\n");
        return 2;
    }
    if (argc > 2) {
        fprintf(stderr, "dmclient: get: unexpected argument '%s' (one URI)\n", argv[2]);
        return 2;
    }
    return 0;
}

static int cmd_process(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_process, stdout);
        return 0;
    }
    const char *file = argc == 2 ? argv[1] : "-";
    const char *name = strcmp(file, "-") ? file : "stdin";
    uint8_t *msg = NULL;
    size_t len = 0;
    int rc = cli_read_input(file, cli->cfg.max_msg_size, &msg, &len);
    if (rc) {
        fprintf(stderr, "dmclient: %s: %s\n", name,
                rc == EFBIG ? "larger than the maximum message size" : strerror(rc));
        return 1;
    }
    int status = 0;
    if (cli_is_blank(msg, len)) {
        /* an empty body from the server ends the session */
        omadm_error_t err = omadm_end_session(cli->dm);
        if (err) {
            fprintf(stderr, "dmclient: %s: %s\n", name, omadm_strerror(err));
            status = 1;
        }
        free(msg);
        return status;
    }
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    omadm_error_t err = omadm_process(cli->dm, msg, len, &reply, &reply_len);
    free(msg);
    if (err) {
        const char *detail = omadm_last_error_detail(cli->dm);
        if (detail && !strcmp(detail, omadm_strerror(err)))
            detail = NULL; /* not "out of memory: out of memory" */
        fprintf(stderr, "dmclient: %s: %s%s%s\n", name, omadm_strerror(err),
                detail ? ": " : "", detail ? detail : "");
        return 1;
    }
    if (reply && fwrite(reply, 1, reply_len, stdout) != reply_len) {
        fprintf(stderr, "dmclient: writing the reply: %s\n", strerror(errno));
        status = 1;
    }
    omadm_buffer_free(cli->dm, reply);
    if (fflush(stdout)) {
        fprintf(stderr, "dmclient: writing the reply: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}

static int cmd_get(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_get, stdout);
        return 0;
    }
    char *value = NULL;
    size_t len = 0;
    int interior = 0;
    omadm_error_t err = omadm_tree_read(cli->dm, argv[1], &value, &len, &interior);
    if (err == OMADM_E_INVALID_ARG) {
        fprintf(stderr, "dmclient: get: %s: not a valid node URI\n", argv[1]);
        return 1;
    }
    if (err == OMADM_E_DENIED) {
        fprintf(stderr, "dmclient: get: %s: the node cannot be read (Get is not allowed)\n",
                argv[1]);
        return 1;
    }
    if (err) {
        fprintf(stderr, "dmclient: get: %s: %s\n", argv[1], omadm_strerror(err));
        return 1;
    }
    fwrite(value, 1, len, stdout);
    fputc('\n', stdout);
    omadm_buffer_free(cli->dm, value);
    return 0;
}

static int cmd_store(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(cli_store_usage, stdout);
        return 0;
    }
    return cli_store_main(cli, argc, argv);
}

static int cmd_alerts(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(cli_alerts_usage, stdout);
        return 0;
    }
    return cli_alerts_main(cli, argc, argv);
}

/* dmclient notify (notify_cmd.c) */

static const struct {
    const char *name;
    int (*fn)(cli_t *cli, int argc, char **argv);
    /* checks fn's arguments before the state is opened (or NULL) */
    int (*args_fn)(int argc, char **argv);
    /* fn only reads: the state must exist (it is not created) */
    bool reads;
    /* instead of fn, for commands that open the state themselves; they
     * may use HTTP */
    int (*own_fn)(const char *state_dir, int argc, char **argv);
    const char *own_usage;
} commands[] = {
    {"process", cmd_process, process_args, false, NULL, NULL},
    {"get", cmd_get, get_args, true, NULL, NULL},
    {"store", cmd_store, NULL, true, NULL, NULL},
    {"alerts", cmd_alerts, NULL, true, NULL, NULL},
    {"run", NULL, NULL, false, cli_run_main, cli_run_usage},
    {"session", NULL, NULL, false, cli_session_main, cli_session_usage},
    {"notify", NULL, NULL, false, cli_notify_main, cli_notify_usage},
    {"daemon", NULL, NULL, false, cli_daemon_main, cli_daemon_usage},
};

/* Whether dir is a state directory (a command that only reads does not
 * create one: a mistyped --state-dir must not start a new device).  An
 * existing directory is one, even empty: a package may make it before the
 * device's first message.  0, or 1 after a one-line error. */
static int state_exists(const char *dir)
{
    struct stat st;
    if (!stat(dir, &st) && S_ISDIR(st.st_mode))
        return 0;
    if (!stat(dir, &st) || errno != ENOENT)
        fprintf(stderr, "dmclient: state directory %s: %s\n", dir,
                strerror(errno == ENOENT || !errno ? ENOTDIR : errno));
    else
        fprintf(stderr,
                "dmclient: no state in %s (a device starts with 'dmclient process' or "
                "'dmclient session'; is --state-dir right?)\n",
                dir);
    return 1;
}

int cli_state_exists(const char *dir)
{
    return state_exists(dir);
}

/* An option of main's after the command ("get URI --state-dir DIR"):
 * 2 after a one-line error, else 0. */
static int misplaced_global(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--state-dir") || !strncmp(argv[i], "--state-dir=", 12) ||
            !strcmp(argv[i], "--log") || !strncmp(argv[i], "--log=", 6)) {
            const char *opt = argv[i][2] == 's' ? "--state-dir" : "--log";
            fprintf(stderr,
                    "dmclient: %s: %s goes before the command "
                    "(dmclient %s %s %s ...)\n",
                    argv[0], opt, opt, argv[i][2] == 's' ? "DIR" : "DEST", argv[0]);
            return 2;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"log", required_argument, NULL, 'l'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    int log_dest = -1, log_delta = 0;
    const char *state_dir = getenv("DMCLIENT_STATE_DIR");
    int c;
    opterr = 0; /* our own one-line messages, without the program's path */
    while ((c = getopt_long(argc, argv, "+hVvq", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            state_dir = optarg;
            break;
        case 'l':
            if (cli_log_parse_dest(optarg, &log_dest)) {
                fprintf(stderr, "dmclient: --log: expected plain, stderr, journal or syslog, "
                                "not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'v':
            log_delta++;
            break;
        case 'q':
            log_delta--;
            break;
        case 'h':
            fputs(usage_main, stdout);
            return 0;
        case 'V':
            /* the library's own version when it differs (a shared libomadm) */
            if (strcmp(omadm_version(), OMADM_VERSION_STRING))
                printf("dmclient %s (libomadm %s)\n", OMADM_VERSION_STRING, omadm_version());
            else
                printf("dmclient %s\n", OMADM_VERSION_STRING);
            return 0;
        default:
            if (optopt && optopt != 's' && optopt != 'l')
                fprintf(stderr, "dmclient: unknown option '-%c' (see dmclient --help)\n",
                        optopt);
            else if (optopt)
                fprintf(stderr, "dmclient: option '%s' needs a value\n", argv[optind - 1]);
            else
                fprintf(stderr, "dmclient: unknown option '%s' (see dmclient --help)\n",
                        argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage_main, stderr);
        return 2;
    }
    cli_log_cmdline(log_dest, log_delta);
    const char *cmd = argv[optind];
    if (!strcmp(cmd, "check")) /* check_cmd.c: no engine to start, no HTTP */
        return cli_check_main(state_dir ? state_dir : "/var/lib/dmclient", argc - optind,
                              argv + optind);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, cmd))
            continue;
        if (!state_dir)
            state_dir = "/var/lib/dmclient";
        if (commands[i].own_fn) {
            if (wants_help(argc - optind, argv + optind)) {
                fputs(commands[i].own_usage, stdout);
                return 0;
            }
            if (misplaced_global(argc - optind, argv + optind))
                return 2;
            if (cli_http_global_init())
                return 1;
            int rc = commands[i].own_fn(state_dir, argc - optind, argv + optind);
            cli_http_global_cleanup();
            return rc;
        }
        if (wants_help(argc - optind, argv + optind))
            return commands[i].fn(NULL, argc - optind, argv + optind);
        if (misplaced_global(argc - optind, argv + optind))
            return 2;
        int arc = commands[i].args_fn ? commands[i].args_fn(argc - optind, argv + optind) : 0;
        if (arc)
            return arc;
        if (commands[i].reads && state_exists(state_dir))
            return 1;
        cli_t cli;
        if (cli_open(&cli, state_dir, NULL))
            return 1;
        int rc = commands[i].fn(&cli, argc - optind, argv + optind);
        cli_close(&cli);
        return rc;
    }
    fprintf(stderr, "dmclient: unknown command '%s' (see dmclient --help)\n", cmd);
    return 2;
}
