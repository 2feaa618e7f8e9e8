/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - shared pieces of the dmclient host.
 */
#ifndef DMCLIENT_CLI_H
#define DMCLIENT_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <omadm/omadm.h>
#include <omadm/omadm_certstore.h>

/* The server account of dmclient session as dmclient.conf gives it (what a
 * DMAcc holds; docs/cli.md).  Values point into conf_text; NULL when the
 * key is absent or empty.  The server's id is cfg.server_id. */
typedef struct cli_account_conf {
    const char *server_url;
    const char *encoding;
    const char *cacert;
    const char *client_cert;          /* thumbprint in My/System */
    const char *client_cert_file, *client_key_file;
    const char *client_auth, *client_user, *client_secret, *client_secret_file;
    const char *server_auth, *server_secret, *server_secret_file;
    const char *max_messages;
    const char *allow_insecure_http;  /* "yes" or "no" */
} cli_account_conf_t;

/* The settings of dmclient daemon and of logging in dmclient.conf (values
 * point into conf_text; NULL when absent). */
typedef struct cli_service_conf {
    const char *log, *log_level;
    const char *poll_interval, *retry_min, *retry_max;
    const char *tpm_tcti;     /* the TPM's TCTI (omadm_certstore_set_tpm) */
} cli_service_conf_t;

/* The ./DevDetail/Ext/Microsoft keys of dmclient.conf (values point into
 * conf_text; NULL when absent: the OS's value). */
typedef struct cli_devdetail_conf {
    const char *device_name, *dns_computer_name, *os_platform;
    const char *processor_type, *total_ram, *smbios_version;
} cli_devdetail_conf_t;

/* The values given to the engine: each key's, or the OS's. */
typedef struct cli_devdetail {
    char device_name[256], dns_computer_name[256], os_platform[256];
    char processor_type[24], total_ram[24], smbios_version[256];
} cli_devdetail_t;

typedef struct cli {
    char *state_dir;
    omadm_config_t cfg;
    cli_account_conf_t acct;
    cli_service_conf_t svc;
    cli_devdetail_conf_t dd;
    char *conf_text;          /* backing store of cfg and acct strings (wiped on close) */
    size_t conf_len;
    omadm_storage_t storage;
    omadm_t *dm;
    omadm_certstore_t *certs; /* DIR/store, registered as the certificate CSPs */
    int lock_fd;              /* DIR/lock, flock'ed (exclusive) while open; -1 when not */
} cli_t;

/* What cli_open returns when a stop signal (cli_stop_block) came while it
 * waited for the state lock: nothing printed, nothing held. */
#define CLI_STOPPED (-2)

/* Create the state directory if needed, take the state lock (DIR/lock,
 * exclusive flock; waits while another dmclient holds it), read
 * DIR/dmclient.conf, start the engine on the persisted state.  platform
 * may be NULL (libc).  Prints a one-line error and returns -1 on failure,
 * or CLI_STOPPED (nothing held then).  The lock is held until cli_close(). */
int cli_open(cli_t *cli, const char *state_dir, const omadm_platform_t *platform);
/* cli_open, with adjust(ctx, cli) called after dmclient.conf is read and
 * before the engine starts (it may change cli->cfg); a nonzero return
 * fails the open (adjust prints its own error). */
int cli_open_ex(cli_t *cli, const char *state_dir, const omadm_platform_t *platform,
                int (*adjust)(void *ctx, cli_t *cli), void *ctx);
void cli_close(cli_t *cli);
/* devdetail.c: the ./DevDetail/Ext/Microsoft values (dmclient.conf, else
 * the OS: hostname, os-release or uname, sysinfo, DMI), and giving them to
 * cli->dm (0, or -1 after a one-line error). */
void cli_devdetail_values(const cli_t *cli, cli_devdetail_t *v);
int cli_devdetail_apply(cli_t *cli);
/* Only the first part of cli_open: the state lock, dmclient.conf and the
 * storage table (cli->storage), without creating the directory, starting
 * the engine or opening the store (dmclient check).  0, or -1 after a
 * one-line error, or CLI_STOPPED.  cli_close releases it. */
int cli_open_state(cli_t *cli, const char *state_dir);
/* A finding of omadm_state_check as text naming the file:
 * "DIR/KEY: format F is newer than this dmclient reads (C)" or
 * "DIR/KEY: DETAIL". */
void cli_state_text(const cli_t *cli, const omadm_state_problem_t *p, char *buf, size_t size);
/* After a call on the engine of state_dir (configured with cfg, NULL: the
 * defaults) failed with err (OMADM_E_CORRUPT, OMADM_E_NEWER_FORMAT): the one
 * line that names the file (the first with that error; only key when not
 * NULL) and the formats, "dmclient: [CMD: ]DIR/KEY: ...; nothing was
 * changed" on stderr (cmd may be NULL).  0 printed, -1 nothing to say (the
 * caller prints its own line). */
int cli_state_report(const char *state_dir, const omadm_config_t *cfg, omadm_error_t err,
                     const char *key, const char *cmd);
/* Whether dir is a state directory (dmclient.c): 0, or 1 after a one-line
 * error (the commands that only read never create one). */
int cli_state_exists(const char *dir);

/* While an HTTP hook of the store waits on the network (dmclient run):
 * release the store's lock and then the state lock, so that other dmclient
 * commands run meanwhile (0), or keep both (-1: the store cannot let go
 * now).  cli_relock takes them again, state lock first (waiting for other
 * dmclients; a stop signal ends the wait): 0, or -1 when the store stays
 * unlocked (the library then ends the step without touching it). */
int cli_unlock(cli_t *cli);
int cli_relock(cli_t *cli);

/* SIGTERM and SIGINT for commands that finish what they are doing first
 * (stop.c).  cli_stop_block blocks them for the rest of the process (a
 * SIGINT ignored at start stays ignored): 0, or -1 (errno).  Afterwards
 * waits for the state lock, HTTP transfers, and the waits of run and
 * session give up within about 100 ms of one arriving. */
int cli_stop_block(void);
bool cli_stop_enabled(void);
/* A stop signal arrived (it stays pending until cli_stop_wait takes it);
 * always false before cli_stop_block. */
bool cli_stop_pending(void);
/* A stop signal was taken by other means (the daemon's signalfd): from
 * now on cli_stop_pending is true. */
void cli_stop_set(void);
/* Wait up to ms milliseconds (0: only look) for a stop signal: 1 when one
 * came (from then on cli_stop_pending is true), else 0.  Before
 * cli_stop_block it only sleeps. */
int cli_stop_wait(int64_t ms);

/* dmclient session ... (session_cmd.c); opens and closes the state itself. */
int cli_session_main(const char *state_dir, int argc, char **argv);
extern const char cli_session_usage[];
/* The session with a check that runs once the settings are merged and the
 * state is open, before anything is sent (dmclient notify): 0 to go on,
 * with *session_id (when set) as the SessionID, or the exit status. */
typedef int (*cli_session_check_fn)(void *ctx, omadm_t *dm, const char *server_id,
                                    const char *server_secret, int verbose,
                                    const char **session_id);
int cli_session_run(const char *state_dir, int argc, char **argv, cli_session_check_fn check,
                    void *ctx);
/* The index in argv of the first argument that is not a session option or
 * an option's value (argv[0] is the command), or 0 when there is none. */
int cli_session_operand(int argc, char **argv);
/* The arguments of a session (argv[0] is the command): 0, or 2 after a
 * usage error. */
int cli_session_check_args(int argc, char **argv);
/* The session a notification (package 0, msg) asks for, as dmclient
 * notify runs it: the exit status.  name names the input in messages.
 * *refused: the notification itself was refused (not a notification, for
 * another server ID, a digest that does not verify, no server id or
 * secret to check it with), so no session ran. */
int cli_notify_session(const char *state_dir, const char *name, const uint8_t *msg, size_t len,
                       int argc, char **argv, bool *refused);
/* Hand a notification to the daemon serving state_dir (daemon_cmd.c) and
 * wait for its session: the session's exit status, or CLI_NO_DAEMON when
 * no daemon listens. */
#define CLI_NO_DAEMON (-3)
int cli_daemon_notify(const char *state_dir, const uint8_t *msg, size_t len);
/* dmclient notify ... (notify_cmd.c) */
int cli_notify_main(const char *state_dir, int argc, char **argv);
extern const char cli_notify_usage[];
/* Whether val is a valid dmclient.conf value for the session key (0 yes,
 * -1 no). */
int cli_session_conf_check(const char *key, const char *val);

/* Whether val is a valid dmclient.conf value for the service key (log,
 * log_level, poll_interval, retry_min, retry_max): 0 yes, -1 no. */
int cli_service_conf_check(const char *key, const char *val);
/* Read DIR/dmclient.conf alone (no lock, no engine) into cli, which
 * cli_close() releases: 0, or -1 after a one-line error. */
int cli_read_conf(cli_t *cli, const char *state_dir);

/* dmclient daemon ... (daemon_cmd.c) */
int cli_daemon_main(const char *state_dir, int argc, char **argv);
extern const char cli_daemon_usage[];

/* DMCLIENT_MINUTE_SECONDS (the enrollment schedule's minute): 0 and
 * *out (default 60), or -1 after a one-line error. */
int cli_minute_seconds(unsigned *out);
/* One step of the plugins' background work: open the state, omadm_step,
 * after(ctx, cli) while it is still open (after may be NULL), close.  0
 * (*next: when more work is due, or OMADM_NEVER), 1 the step failed
 * (logged; retried: "trying again later"), -1 the state cannot be opened
 * (logged), CLI_STOPPED. */
int cli_run_step(const char *state_dir, unsigned minute, bool retried, int64_t *next,
                 void (*after)(void *ctx, cli_t *cli), void *ctx);
/* dmclient run ... (run_cmd.c); opens and closes the state itself. */
int cli_run_main(const char *state_dir, int argc, char **argv);
extern const char cli_run_usage[];

/* dmclient alerts ... (alerts_cmd.c) */
int cli_alerts_main(cli_t *cli, int argc, char **argv);
extern const char cli_alerts_usage[];

/* ---- logging (log.c; docs/cli.md "Logging") ---- */

/* Where log lines go: "dmclient: MSG" lines (plain), timestamped lines
 * with level and PID (stderr), "<PRIORITY>MSG" for systemd's journal
 * (journal), or syslog(3). */
enum { CLI_LOG_PLAIN, CLI_LOG_STDERR, CLI_LOG_JOURNAL, CLI_LOG_SYSLOG };
/* The name of a destination or a level (error, warning, info, debug):
 * 0 and *out, or -1. */
int cli_log_parse_dest(const char *s, int *out);
int cli_log_parse_level(const char *s, int *out);
/* Destination and the most verbose level shown (an omadm_log_level_t):
 * the command line's (dest -1: not given; delta: one level up per -v,
 * down per -q) before dmclient.conf's (log, log_level; -1: absent, set
 * by every read of the file) before the command's default (plain; the
 * daemon: stderr) and info. */
void cli_log_default(int dest);
void cli_log_cmdline(int dest, int delta);
void cli_log_conf(int dest, int level);
/* One level more verbose (a command's own -v; once, however often it is
 * called). */
void cli_log_verbose(void);
int cli_log_dest(void);
int cli_log_level(void);
/* What the lines that follow concern, e.g. "12" for session 12: the
 * timestamped forms print "TAG CONTEXT: MSG" (NULL or "": none). */
void cli_log_context(const char *ctx);
/* One line "TAG: MSG" (tag may be NULL) at level, if shown. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void cli_log(int level, const char *tag, const char *fmt, ...);
void cli_vlog(int level, const char *tag, const char *fmt, va_list ap);
/* An omadm log hook (platform and store host): ctx is the tag or NULL. */
void cli_log_hook(void *ctx, omadm_log_level_t level, const char *msg);

/* s as a JSON string (quoted and escaped; bytes that are not UTF-8 become
 * U+FFFD); NULL as null. */
void cli_json_str(FILE *f, const char *s);

/* dmclient check ... (check_cmd.c); opens and closes the state itself. */
int cli_check_main(const char *state_dir, int argc, char **argv);
extern const char cli_check_usage[];

/* dmclient store ... (store_cmd.c) */
int cli_store_main(cli_t *cli, int argc, char **argv);
extern const char cli_store_usage[];

/* Read a whole file ("-" = stdin) of at most max bytes.  0, or an errno
 * value (EFBIG when larger than max).  *data is malloc'ed. */
int cli_read_input(const char *path, size_t max, uint8_t **data, size_t *len);
int cli_is_blank(const uint8_t *data, size_t len);

/* Crash-safe file replacement: temp file, fsync, rename, directory fsync. */
int cli_write_atomic(const char *dir, const char *name, const uint8_t *data, size_t len);

#endif
