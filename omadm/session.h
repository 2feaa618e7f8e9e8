/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h - per-session counters that survive between messages (and
 * processes, through the storage hook): the server's SessionID and our
 * MsgID.
 */
#ifndef OMADM_SESSION_H
#define OMADM_SESSION_H

#include "internal.h"

omadm_error_t session_load(omadm_t *dm);
void session_clear(omadm_t *dm);
/* Note a server message; returns the MsgID our reply uses, or 0 on
 * allocation failure.  A new SessionID or server starts a new session in
 * which our package 1 counts as MsgID 1. */
unsigned long session_next_msg_id(omadm_t *dm, const char *session_id, const char *server);
/* The session ended (no reply due, or aborted). */
void session_end(omadm_t *dm);
omadm_error_t session_save(omadm_t *dm);

/* A copy of the counters, to put back when a message fails. */
typedef struct session_snap {
    char *session_id, *server;
    unsigned long our_msg_id;
    bool dirty;
} session_snap_t;
omadm_error_t session_snapshot(omadm_t *dm, session_snap_t *snap);
void session_restore(omadm_t *dm, const session_snap_t *snap);  /* keeps snap */
void session_snap_free(omadm_t *dm, session_snap_t *snap);

#endif
