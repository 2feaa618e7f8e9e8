/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.h - dmclient session --record DIR: the session written as a
 * conformance case (record.c; docs/conformance.md, "Record your own
 * server").
 *
 * The session loop calls the hooks in the order things happen; every hook
 * takes a NULL recorder (no --record) and does nothing then.  A hook never
 * fails the session: the first write that fails is reported (one line on
 * stderr) and the recording stops there; cli_record_finish says so.
 */
#ifndef DMCLIENT_RECORD_H
#define DMCLIENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "http.h"

typedef struct cli_record cli_record_t;

/* What the session runs with (all borrowed for the call only; the
 * recorder copies what it keeps and wipes its copies of the secrets). */
typedef struct cli_record_info {
    const char *server_url;          /* as configured (may hold user:password@) */
    bool wbxml;                      /* our encoding */
    bool notified;                   /* Alert 1200 */
    omadm_auth_t client_auth, server_auth;
    const char *client_user;         /* NULL: the DevId */
    const char *server_id;           /* NULL: none configured */
    const char *client_secret;       /* NULL when none; masked wherever it occurs */
    const char *server_secret;
    int verbose;                     /* -v: a line saying where the record is */
} cli_record_info_t;

/* --record DIR, before anything else happens: DIR must not exist (it is
 * created, mode 0700) or be an empty directory.  0 and *out (free with
 * cli_record_free), or 2 after a one-line error (DIR not empty, not a
 * directory, cannot be created). */
int cli_record_open(const char *dir, cli_record_t **out);

/* The session has begun: package 1 (pkg1, borrowed) is built and the state
 * is saved.  Writes package 1, the device settings and the state the replay
 * starts from.  cli stays borrowed until cli_record_finish. */
void cli_record_begin(cli_record_t *r, cli_t *cli, const cli_record_info_t *info,
                      const uint8_t *pkg1, size_t len);
/* A message of ours is POSTed to url (len bytes, x-syncml-hmac or NULL). */
void cli_record_post(cli_record_t *r, const char *url, size_t len, const char *hmac);
/* The server's HTTP 200 response to it (a blank body ends the session). */
void cli_record_response(cli_record_t *r, const cli_http_reply_t *resp);
/* omadm_process() on that response returned e and, when OMADM_OK, reply
 * (NULL: no reply due). */
void cli_record_processed(cli_record_t *r, omadm_error_t e, const uint8_t *reply, size_t len);
/* The session is over (status: its exit status, 0 or 1; how: the -v
 * summary's reason, or NULL).  Writes the rest of the case.  0, or -1 when
 * the record is incomplete (the reason was printed). */
int cli_record_finish(cli_record_t *r, int status, const char *how);
void cli_record_free(cli_record_t *r); /* NULL-safe */

#endif
