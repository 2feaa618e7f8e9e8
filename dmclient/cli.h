/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - shared pieces of the dmclient host.
 */
#ifndef DMCLIENT_CLI_H
#define DMCLIENT_CLI_H

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

typedef struct cli {
    char *state_dir;
    omadm_config_t cfg;
    cli_account_conf_t acct;
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
/* dmclient notify ... (notify_cmd.c) */
int cli_notify_main(const char *state_dir, int argc, char **argv);
extern const char cli_notify_usage[];
/* Whether val is a valid dmclient.conf value for the session key (0 yes,
 * -1 no). */
int cli_session_conf_check(const char *key, const char *val);

/* dmclient run ... (run_cmd.c); opens and closes the state itself. */
int cli_run_main(const char *state_dir, int argc, char **argv);
extern const char cli_run_usage[];

/* dmclient alerts ... (alerts_cmd.c) */
int cli_alerts_main(cli_t *cli, int argc, char **argv);
extern const char cli_alerts_usage[];

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
