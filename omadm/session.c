/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - session counters and their persistence (key "session":
 * "omadm-session 2\n<session id>\n<server>\n<our last MsgID>\n", the two
 * strings escaped with dm_escape; format 1 had them as they are; an empty
 * value: no session).
 */
#include "session.h"

#include "arena.h"
#include "state_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void session_clear(omadm_t *dm)
{
    om_free(dm, dm->session.session_id);
    om_free(dm, dm->session.server);
    dm->session.session_id = NULL;
    dm->session.server = NULL;
    dm->session.our_msg_id = 0;
}

#define SESSION_FORMAT "omadm-session"
#define SESSION_OLDEST 1
#define SESSION_CURRENT 2
#define SESSION_WRITES "omadm-session 2"

/* The lines after the format line of version v (format 1: the strings as
 * they are, format 2: escaped). */
static omadm_error_t parse(omadm_t *dm, char *text, unsigned v)
{
    char *save = NULL;
    char *magic = strtok_r(text, "\n", &save);
    char *sid = strtok_r(NULL, "\n", &save);
    char *srv = strtok_r(NULL, "\n", &save);
    char *num = strtok_r(NULL, "\n", &save);
    if (!magic || !sid || !srv || !num || (v >= 2 && (dm_unescape(sid) || dm_unescape(srv))))
        return OMADM_E_CORRUPT;
    char *end = NULL;
    unsigned long n = strtoul(num, &end, 10);
    if (*end)
        return OMADM_E_CORRUPT;
    dm->session.session_id = om_strdup(dm, sid);
    dm->session.server = om_strdup(dm, srv);
    dm->session.our_msg_id = n;
    if (!dm->session.session_id || !dm->session.server)
        return OMADM_E_NOMEM;
    return OMADM_OK;
}

/* A damaged value: the engine starts a new session (the counters only
 * matter within one); omadm_state_check reports it, and clears it when it
 * repairs. */
static omadm_error_t damaged(omadm_t *dm, const char *found, const char *why)
{
    session_clear(dm);
    if (!state_checking(dm)) {
        om_log(dm, OMADM_LOG_WARN, "session state unreadable (%s); starting a new session", why);
        return OMADM_OK;
    }
    bool fixed = state_repairing(dm) &&
                 !dm->storage.save(dm->storage.ctx, "session", (const uint8_t *)"", 0);
    state_report(dm, OMADM_E_CORRUPT, fixed, "session", found, SESSION_WRITES, "damaged: %s%s",
                 why, fixed ? "; cleared (the next session starts afresh, as it would anyway)" : "");
    return fixed ? OMADM_OK : OMADM_E_CORRUPT;
}

omadm_error_t session_load(omadm_t *dm)
{
    if (!dm->has_storage)
        return OMADM_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = dm->storage.load(dm->storage.ctx, "session", &data, &len);
    if (rc == 1)
        return OMADM_OK;
    if (rc < 0) {
        state_report(dm, OMADM_E_STORAGE, false, "session", NULL, SESSION_WRITES,
                     "cannot be loaded");
        return OMADM_E_STORAGE;
    }
    unsigned v = 0;
    state_fmt_t fmt = len ? state_format_text(data, len, SESSION_FORMAT, SESSION_OLDEST,
                                              SESSION_CURRENT, &v)
                          : STATE_FMT_CURRENT;
    char *text = om_strndup(dm, (const char *)data, len);
    if (dm->storage.release)
        dm->storage.release(dm->storage.ctx, data);
    if (!text)
        return OMADM_E_NOMEM;
    char found[32];
    snprintf(found, sizeof found, SESSION_FORMAT " %u", v);
    omadm_error_t err = OMADM_OK;
    if (fmt == STATE_FMT_NEWER) {
        /* a later version's session: nothing of it is read or written */
        state_report(dm, OMADM_E_NEWER_FORMAT, false, "session", found, SESSION_WRITES,
                     "format %s is newer than this library reads (" SESSION_WRITES ")", found);
        err = OMADM_E_NEWER_FORMAT;
    } else if (fmt == STATE_FMT_DAMAGED) {
        err = damaged(dm, v ? found : NULL, "no " SESSION_FORMAT " format line");
    } else if (len && (err = parse(dm, text, v)) == OMADM_E_CORRUPT) {
        err = damaged(dm, found, "its lines are not a session");
    } else if (!err && fmt == STATE_FMT_OLDER) {
        state_report(dm, OMADM_OK, false, "session", found, SESSION_WRITES,
                     "format %s: read, and written as " SESSION_WRITES " when it next changes",
                     found);
    }
    om_free(dm, text);
    if (err)
        session_clear(dm);
    return err;
}

unsigned long session_next_msg_id(omadm_t *dm, const char *session_id, const char *server)
{
    dm_session_t *s = &dm->session;
    if (!s->session_id || strcmp(s->session_id, session_id) || !s->server ||
        strcmp(s->server, server)) {
        session_clear(dm);
        s->session_id = om_strdup(dm, session_id);
        s->server = om_strdup(dm, server);
        if (!s->session_id || !s->server) {
            session_clear(dm);
            return 0;
        }
        s->our_msg_id = 1; /* our package 1 opened the session */
    }
    dm->session_dirty = true;
    return ++s->our_msg_id;
}

void session_end(omadm_t *dm)
{
    session_clear(dm);
    dm->session_dirty = true;
}

omadm_error_t session_save(omadm_t *dm)
{
    if (!dm->has_storage || !dm->session_dirty)
        return OMADM_OK;
    buf_t b;
    buf_init(&b, dm);
    if (dm->session.session_id) {
        buf_puts(&b, SESSION_WRITES "\n");
        dm_escape(&b, dm->session.session_id);
        buf_putc(&b, '\n');
        dm_escape(&b, dm->session.server);
        buf_printf(&b, "\n%lu\n", dm->session.our_msg_id);
    }
    if (b.failed) {
        buf_free(&b);
        return OMADM_E_NOMEM;
    }
    int rc = dm->storage.save(dm->storage.ctx, "session", b.data ? b.data : (const uint8_t *)"",
                              b.len);
    buf_free(&b);
    if (rc)
        return OMADM_E_STORAGE;
    dm->session_dirty = false;
    return OMADM_OK;
}

omadm_error_t session_snapshot(omadm_t *dm, session_snap_t *snap)
{
    snap->session_id = om_strdup(dm, dm->session.session_id);
    snap->server = om_strdup(dm, dm->session.server);
    snap->our_msg_id = dm->session.our_msg_id;
    snap->dirty = dm->session_dirty;
    if ((dm->session.session_id && !snap->session_id) || (dm->session.server && !snap->server)) {
        session_snap_free(dm, snap);
        return OMADM_E_NOMEM;
    }
    return OMADM_OK;
}

void session_restore(omadm_t *dm, const session_snap_t *snap)
{
    char *sid = om_strdup(dm, snap->session_id), *srv = om_strdup(dm, snap->server);
    if ((snap->session_id && !sid) || (snap->server && !srv)) {
        /* cannot copy: forget the session, which is always safe */
        om_free(dm, sid);
        om_free(dm, srv);
        session_clear(dm);
        dm->session_dirty = true;
        return;
    }
    session_clear(dm);
    dm->session.session_id = sid;
    dm->session.server = srv;
    dm->session.our_msg_id = snap->our_msg_id;
    dm->session_dirty = true;
}

void session_snap_free(omadm_t *dm, session_snap_t *snap)
{
    om_free(dm, snap->session_id);
    om_free(dm, snap->server);
    snap->session_id = snap->server = NULL;
}
