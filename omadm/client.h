/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h - the client side of a session the device opened
 * (omadm_session_begin): package 1, credentials both ways, challenges,
 * acknowledged generic alerts, RespURI.  dispatch.c calls in at the
 * points below; without an open session every hook does nothing.
 */
#ifndef OMADM_CLIENT_H
#define OMADM_CLIENT_H

#include <stdbool.h>

#include "dispatch.h"

/* Before any command runs: check the server's credentials and settle the
 * SyncHdr Status (200/212, or 401/407 with a Chal).  Returns 0 when the
 * commands may run, else the code every command is answered with. */
int client_on_header(dm_exec_t *x, syncml_cmd_t *hdr_status);
/* A Status from the server (answers to our earlier commands). */
void client_on_status(dm_exec_t *x, const syncml_cmd_t *status);
/* After the commands: add what the session needs to the reply (package 1
 * again after a challenge, our credentials).  Sets *reply_due when the
 * reply must go out even without commands from the server. */
omadm_error_t client_on_reply(dm_exec_t *x, bool *reply_due);
/* The message was handled: remember its RespURI (may be NULL); end the
 * session when no reply is due.  err: the outcome of omadm_process. */
void client_after_message(omadm_t *dm, const char *resp_uri, bool reply_due, omadm_error_t err);
void client_free(omadm_t *dm);

/* The server's MaxMsgSize from its SyncHdr Meta. */
void client_peer_limits(omadm_t *dm, const syncml_hdr_t *h);
/* Encode the reply.  In a session whose server gave a MaxMsgSize, a reply
 * that does not fit goes out in parts: the commands that fit, without
 * Final; the rest is queued (out gives up its arena to the queue) and
 * follows the server's next message (normally Alert 1222). */
omadm_error_t client_encode(omadm_t *dm, syncml_msg_t *out, uint8_t **reply, size_t *reply_len);
/* About how many bytes of a message a Get's items may take before its
 * Results goes on as a stream (get_stream_t): the smaller of the server's
 * MaxMsgSize and max_reply_size in a session whose server gave a
 * MaxMsgSize, else 0 (no streaming). */
size_t client_stream_budget(const omadm_t *dm);
/* Keep s with the session (its Results is part of this message's reply). */
void client_stream_add(omadm_t *dm, get_stream_t *s);
/* The nonce this device gave the server last (persisted, "auth"): what a
 * package 0 digest is computed with.  OMADM_OK and *len (<= size), or why
 * the stored state cannot be read: OMADM_E_STORAGE, OMADM_E_NOMEM,
 * OMADM_E_CORRUPT, OMADM_E_NEWER_FORMAT. */
omadm_error_t client_stored_server_nonce(omadm_t *dm, uint8_t *out, size_t size, size_t *len);
/* omadm_state_check of the "auth" record (state_report each finding; with
 * OMADM_STATE_REPAIR a damaged one is written again with what could be
 * read of it).  OMADM_OK, or what is left: OMADM_E_CORRUPT,
 * OMADM_E_NEWER_FORMAT, OMADM_E_STORAGE, OMADM_E_NOMEM. */
omadm_error_t client_auth_check(omadm_t *dm);
/* Commands are queued for the next message. */
int client_pending(const omadm_t *dm);

#endif
