/*
 * cli.h - shared pieces of the dmclient host.
 */
#ifndef DMCLIENT_CLI_H
#define DMCLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "omadm.h"
#include "omadm_certstore.h"

typedef struct cli {
    char *state_dir;
    omadm_config_t cfg;
    char *conf_text;          /* backing store of cfg strings */
    omadm_storage_t storage;
    omadm_t *dm;
    omadm_certstore_t *certs; /* DIR/store, registered as the certificate CSPs */
    int lock_fd;              /* DIR/lock, flock'ed (exclusive) while open; -1 when not */
} cli_t;

/* Create the state directory if needed, take the state lock (DIR/lock,
 * exclusive flock; waits while another dmclient holds it), read
 * DIR/dmclient.conf, start the engine on the persisted state.  platform
 * may be NULL (libc).  Prints a one-line error and returns -1 on failure
 * (nothing held then).  The lock is held until cli_close(). */
int cli_open(cli_t *cli, const char *state_dir, const omadm_platform_t *platform);
void cli_close(cli_t *cli);

/* dmclient run ... (run_cmd.c); opens and closes the state itself. */
int cli_run_main(const char *state_dir, int argc, char **argv);
extern const char cli_run_usage[];

/* dmclient alerts ... (alerts_cmd.c) */
int cli_alerts_main(cli_t *cli, int argc, char **argv);
extern const char cli_alerts_usage[];

/* s as a JSON string (quoted and escaped; bytes that are not UTF-8 become
 * U+FFFD); NULL as null. */
void cli_json_str(FILE *f, const char *s);

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
