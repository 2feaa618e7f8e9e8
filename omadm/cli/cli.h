/*
 * cli.h - shared pieces of the dmclient host.
 */
#ifndef DMCLIENT_CLI_H
#define DMCLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "omadm.h"
#include "omadm_certstore.h"

typedef struct cli {
    char *state_dir;
    omadm_config_t cfg;
    char *conf_text;          /* backing store of cfg strings */
    omadm_storage_t storage;
    omadm_t *dm;
    omadm_certstore_t *certs; /* DIR/store, registered as the certificate CSPs */
} cli_t;

/* Create the state directory if needed, read DIR/dmclient.conf, start the
 * engine on the persisted state.  Prints a one-line error and returns -1
 * on failure. */
int cli_open(cli_t *cli, const char *state_dir);
void cli_close(cli_t *cli);

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
