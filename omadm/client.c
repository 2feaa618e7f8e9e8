/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.c - sessions the device opens (docs/session.md): package 1, our
 * credentials (basic, md5) and the server's challenges, the server's
 * credentials checked before its commands run, HMAC header values, the
 * delivery of generic alerts, RespURI.
 *
 * Persisted (storage key "auth"): the session counter, the nonce the
 * server gave us, the nonce we gave the server.  Both nonces change only
 * through a Chal, so they survive between sessions as the protocol wants.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "large_obj.h"
#include "session.h"
#include "state_format.h"

#define MAX_NONCE 64
#define MAX_CHALLENGES 3

typedef struct sent_alert {
    char *msg_id;
    char *cmd_id;
    char *id;               /* the plugin's alert id */
} sent_alert_t;

typedef enum { CRED_SEND, CRED_ACCEPTED } cred_state_t;

typedef struct dm_client {
    /* the account (owned copies) */
    char *server_url, *server_id, *client_user, *client_secret, *server_secret;
    omadm_auth_t client_auth, server_auth;
    bool wbxml;
    bool server_initiated;

    char *session_id;
    char *resp_uri;
    const char *error;
    cred_state_t cred;
    bool resend_pkg1;          /* a challenge asks for package 1 again */
    unsigned challenges;
    bool server_ok;            /* the server authenticated itself this session */
    bool hmac_verified;        /* the host checked this message's x-syncml-hmac */
    sent_alert_t *alerts;
    size_t n_alerts;

    /* persisted */
    unsigned long counter;
    uint8_t client_nonce[MAX_NONCE];
    size_t client_nonce_len;
    uint8_t server_nonce[MAX_NONCE];
    size_t server_nonce_len;
    /* the nonce before this message offered a new one: kept until the
     * reply carrying the new one is known to go out */
    uint8_t prev_nonce[MAX_NONCE];
    size_t prev_nonce_len;
    bool nonce_offered;

    /* replies larger than the server takes: what is still to be sent */
    int64_t peer_max_msg;      /* the server's MaxMsgSize, 0 = unknown */
    syncml_msg_t **carry;      /* messages whose commands are still queued */
    size_t n_carry;
    syncml_cmd_t *queued;      /* the queued commands, in order */
    const syncml_cmd_t *chunk_rest; /* the rest of a Results being sent in chunks */
    bool queued_final;         /* the package they belong to ends with them */
    get_stream_t *streams;     /* Results made as they go (cmd_get.c), queued */
} dm_client_t;

static dm_client_t *cl(const omadm_t *dm)
{
    return dm ? (dm_client_t *)dm->client : NULL;
}

static void wipe_str(omadm_t *dm, char *s)
{
    if (s) {
        om_wipe(s, strlen(s));
        om_free(dm, s);
    }
}

static void free_alerts(omadm_t *dm, dm_client_t *c)
{
    for (size_t i = 0; i < c->n_alerts; i++) {
        om_free(dm, c->alerts[i].msg_id);
        om_free(dm, c->alerts[i].cmd_id);
        om_free(dm, c->alerts[i].id);
    }
    om_free(dm, c->alerts);
    c->alerts = NULL;
    c->n_alerts = 0;
}

static void drop_queue(omadm_t *dm, dm_client_t *c)
{
    while (c->streams) {
        get_stream_t *s = c->streams;
        c->streams = s->next;
        get_stream_free(dm, s);
    }
    for (size_t i = 0; i < c->n_carry; i++) {
        syncml_msg_free(c->carry[i]);
        om_free(dm, c->carry[i]);
    }
    om_free(dm, c->carry);
    c->carry = NULL;
    c->n_carry = 0;
    c->queued = NULL;
    c->chunk_rest = NULL;
}

void client_free(omadm_t *dm)
{
    dm_client_t *c = cl(dm);
    if (!c)
        return;
    drop_queue(dm, c);
    free_alerts(dm, c);
    om_free(dm, c->server_url);
    om_free(dm, c->server_id);
    om_free(dm, c->client_user);
    wipe_str(dm, c->client_secret);
    wipe_str(dm, c->server_secret);
    om_free(dm, c->session_id);
    om_free(dm, c->resp_uri);
    om_wipe(c, sizeof *c);
    om_free(dm, c);
    dm->client = NULL;
}

/* ---- persistence ("auth") ---- */

#define AUTH_FORMAT "omadm-auth"
#define AUTH_CURRENT 1
#define AUTH_WRITES "omadm-auth 1"

static omadm_error_t save_auth(omadm_t *dm, const dm_client_t *c);

/* The lines after the format line: counter and nonces into c (what can be
 * read of them); OMADM_E_CORRUPT when a nonce does not decode. */
static omadm_error_t parse_auth(omadm_t *dm, dm_client_t *c, char **save)
{
    omadm_error_t err = OMADM_OK;
    char *line;
    while ((line = strtok_r(NULL, "\n", save))) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp++ = 0;
        if (!strcmp(line, "counter")) {
            c->counter = strtoul(sp, NULL, 10);
            continue;
        }
        uint8_t *dst = !strcmp(line, "client-nonce")   ? c->client_nonce
                       : !strcmp(line, "server-nonce") ? c->server_nonce
                                                       : NULL;
        if (!dst)
            continue;
        size_t *dlen = dst == c->client_nonce ? &c->client_nonce_len : &c->server_nonce_len;
        int bad = 0;
        size_t n = 0;
        uint8_t *raw = crypto_b64_decode(dm, (const uint8_t *)sp, strlen(sp), &n, &bad);
        if (raw && n <= MAX_NONCE) {
            memcpy(dst, raw, n);
            *dlen = n;
        } else if (!err) {
            err = raw || bad ? OMADM_E_CORRUPT : OMADM_E_NOMEM;
        }
        om_free(dm, raw);
    }
    return err;
}

/* Read the persisted "auth" record into c.  OMADM_OK (also when there is
 * none), OMADM_E_STORAGE (load() failed), OMADM_E_NOMEM, OMADM_E_CORRUPT
 * (not a record this engine wrote, or a nonce in it does not decode: c
 * holds what could be read), or OMADM_E_NEWER_FORMAT (a later version's
 * record: nothing of it is read).  *version (may be NULL) gets the version
 * its format line names (0: none), *why (may be NULL) what is damaged. */
static omadm_error_t load_auth(omadm_t *dm, dm_client_t *c, unsigned *version, const char **why)
{
    uint8_t *data = NULL;
    size_t len = 0;
    unsigned v = 0;
    const char *w = NULL;
    omadm_error_t err = OMADM_OK;
    int rc = dm->has_storage ? dm->storage.load(dm->storage.ctx, "auth", &data, &len) : 1;
    if (rc < 0)
        err = OMADM_E_STORAGE;
    if (rc)
        goto out;
    state_fmt_t fmt = state_format_text(data, len, AUTH_FORMAT, 1, AUTH_CURRENT, &v);
    char *text = fmt == STATE_FMT_NEWER ? NULL : om_strndup(dm, (const char *)data, len);
    if (dm->storage.release)
        dm->storage.release(dm->storage.ctx, data);
    if (fmt == STATE_FMT_NEWER) {
        err = OMADM_E_NEWER_FORMAT;
        goto out;
    }
    if (!text) {
        err = OMADM_E_NOMEM;
        goto out;
    }
    char *save = NULL;
    strtok_r(text, "\n", &save);
    if (fmt == STATE_FMT_DAMAGED) {
        err = OMADM_E_CORRUPT;
        w = "no " AUTH_FORMAT " format line";
    } else if ((err = parse_auth(dm, c, &save)) == OMADM_E_CORRUPT) {
        w = "a nonce does not decode";
    }
    om_wipe(text, len);
    om_free(dm, text);
out:
    if (version)
        *version = v;
    if (why)
        *why = w;
    return err;
}

/* omadm_state_check: the "auth" record loads; with OMADM_STATE_REPAIR a
 * damaged one is written again with what could be read of it, as the next
 * omadm_session_begin would. */
omadm_error_t client_auth_check(omadm_t *dm)
{
    dm_client_t c;
    memset(&c, 0, sizeof c);
    unsigned v = 0;
    const char *why = NULL;
    char found[32];
    omadm_error_t err = load_auth(dm, &c, &v, &why);
    snprintf(found, sizeof found, AUTH_FORMAT " %u", v);
    if (err == OMADM_E_STORAGE) {
        state_report(dm, err, false, "auth", NULL, AUTH_WRITES, "cannot be loaded");
    } else if (err == OMADM_E_NEWER_FORMAT) {
        state_report(dm, err, false, "auth", found, AUTH_WRITES,
                     "format %s is newer than this library reads (" AUTH_WRITES ")", found);
    } else if (err == OMADM_E_CORRUPT) {
        omadm_error_t fix = state_repairing(dm) ? save_auth(dm, &c) : OMADM_E_CORRUPT;
        state_report(dm, err, fix == OMADM_OK, "auth", v ? found : NULL, AUTH_WRITES,
                     "damaged: %s%s", why,
                     fix == OMADM_OK ? "; written again with what could be read (the session "
                                       "counter, nonces that decode), as the next session would"
                                     : "");
        if (fix == OMADM_OK || fix == OMADM_E_NOMEM)
            err = fix;
    }
    om_wipe(&c, sizeof c);
    return err;
}

static omadm_error_t save_auth(omadm_t *dm, const dm_client_t *c)
{
    if (!dm->has_storage)
        return OMADM_OK;
    char *cn = crypto_b64_encode(dm, c->client_nonce, c->client_nonce_len);
    /* while a new nonce is only offered (its reply not yet out), the
     * server still has the previous one */
    char *sn = c->nonce_offered ? crypto_b64_encode(dm, c->prev_nonce, c->prev_nonce_len)
                                : crypto_b64_encode(dm, c->server_nonce, c->server_nonce_len);
    buf_t b;
    buf_init(&b, dm);
    buf_printf(&b, AUTH_WRITES "\ncounter %lu\nclient-nonce %s\nserver-nonce %s\n", c->counter,
               cn ? cn : "", sn ? sn : "");
    omadm_error_t err = b.failed || !cn || !sn ? OMADM_E_NOMEM : OMADM_OK;
    if (!err && dm->storage.save(dm->storage.ctx, "auth", b.data, b.len))
        err = OMADM_E_STORAGE;
    buf_free(&b);
    om_free(dm, cn);
    om_free(dm, sn);
    return err;
}

/* ---- credentials ---- */

/* B64(MD5(B64(MD5(user:secret)) ":" nonce [":" tail])) into the arena. */
static char *md5_digest(omadm_t *dm, arena_t *arena, const char *user, const char *secret,
                        const uint8_t *nonce, size_t nonce_len, const char *tail)
{
    uint8_t h[16];
    buf_t b;
    char *out = NULL;
    buf_init(&b, dm);
    buf_printf(&b, "%s:%s", user, secret ? secret : "");
    if (b.failed || crypto_md5(b.data, b.len, h)) {
        buf_free(&b);
        return NULL;
    }
    om_wipe(b.data, b.len);
    buf_free(&b);
    char *inner = crypto_b64_encode(dm, h, 16);
    buf_init(&b, dm);
    if (inner) {
        buf_puts(&b, inner);
        buf_putc(&b, ':');
        buf_append(&b, nonce, nonce_len);
        if (tail) {
            buf_putc(&b, ':');
            buf_puts(&b, tail);
        }
    }
    if (inner && !b.failed && !crypto_md5(b.data, b.len, h)) {
        char *d = crypto_b64_encode(dm, h, 16);
        out = d ? arena_strdup(arena, d) : NULL;
        om_free(dm, d);
    }
    om_free(dm, inner);
    buf_free(&b);
    return out;
}

static const char *user_name(const omadm_t *dm, const dm_client_t *c)
{
    return c->client_user && *c->client_user ? c->client_user : dm->cfg.dev_id;
}

static const char *auth_type(omadm_auth_t a)
{
    return a == OMADM_AUTH_BASIC ? "syncml:auth-basic" : a == OMADM_AUTH_MD5 ? "syncml:auth-md5"
           : a == OMADM_AUTH_HMAC                    ? "syncml:auth-MAC"
                                                     : NULL;
}

/* Our Cred (basic or md5) into the header of msg. */
static omadm_error_t put_cred(omadm_t *dm, dm_client_t *c, syncml_msg_t *msg)
{
    if (c->client_auth != OMADM_AUTH_BASIC && c->client_auth != OMADM_AUTH_MD5)
        return OMADM_OK;
    syncml_cred_t *cred = arena_alloc(&msg->arena, sizeof *cred);
    if (!cred)
        return OMADM_E_NOMEM;
    memset(cred, 0, sizeof *cred);
    syncml_meta_init(&cred->meta);
    cred->meta.type = auth_type(c->client_auth);
    cred->meta.format = "b64";
    const char *data = NULL;
    if (c->client_auth == OMADM_AUTH_BASIC) {
        buf_t b;
        buf_init(&b, dm);
        buf_printf(&b, "%s:%s", user_name(dm, c), c->client_secret ? c->client_secret : "");
        char *enc = b.failed ? NULL : crypto_b64_encode(dm, b.data, b.len);
        data = enc ? arena_strdup(&msg->arena, enc) : NULL;
        if (b.data)
            om_wipe(b.data, b.len);
        buf_free(&b);
        if (enc)
            om_wipe(enc, strlen(enc));
        om_free(dm, enc);
    } else {
        data = md5_digest(dm, &msg->arena, user_name(dm, c), c->client_secret, c->client_nonce,
                          c->client_nonce_len, NULL);
    }
    if (!data)
        return OMADM_E_NOMEM;
    cred->data = (const uint8_t *)data;
    cred->data_len = strlen(data);
    msg->hdr.cred = cred;
    msg->hdr.source_name = arena_strdup(&msg->arena, user_name(dm, c));
    return msg->hdr.source_name ? OMADM_OK : OMADM_E_NOMEM;
}

/* The server's Cred against what we require: 0 good, 407 missing, 401 wrong. */
static int check_server_cred(omadm_t *dm, dm_client_t *c, const syncml_hdr_t *h, arena_t *arena)
{
    const syncml_cred_t *cr = h->cred;
    if (!cr || !cr->data_len)
        return 407;
    const char *type = cr->meta.type ? cr->meta.type : "syncml:auth-basic";
    if (strcmp(type, auth_type(c->server_auth)))
        return 401;
    size_t len = cr->data_len;
    while (len && (cr->data[len - 1] == ' ' || cr->data[len - 1] == '\n' ||
                   cr->data[len - 1] == '\r' || cr->data[len - 1] == '\t'))
        len--;
    const char *name = c->server_id ? c->server_id : (h->source ? h->source : "");
    if (c->server_auth == OMADM_AUTH_BASIC) {
        int bad = 0;
        size_t n = 0;
        uint8_t *raw = crypto_b64_decode(dm, cr->data, len, &n, &bad);
        if (!raw)
            return bad ? 401 : 500;
        buf_t want;
        buf_init(&want, dm);
        buf_printf(&want, "%s:%s", name, c->server_secret ? c->server_secret : "");
        int ok = !want.failed && want.len == n && crypto_memeq(want.data, raw, n);
        if (want.data)
            om_wipe(want.data, want.len);
        buf_free(&want);
        om_wipe(raw, n);
        om_free(dm, raw);
        return ok ? 0 : 401;
    }
    const char *want = md5_digest(dm, arena, name, c->server_secret, c->server_nonce,
                                  c->server_nonce_len, NULL);
    if (!want)
        return 500;
    return strlen(want) == len && crypto_memeq(want, cr->data, len) ? 0 : 401;
}

/* A fresh nonce for the server; it counts (and is saved) only once the
 * reply that offers it goes out (client_after_message). */
static int new_server_nonce(omadm_t *dm, dm_client_t *c)
{
    if (!c->nonce_offered) {
        memcpy(c->prev_nonce, c->server_nonce, c->server_nonce_len);
        c->prev_nonce_len = c->server_nonce_len;
        c->nonce_offered = true;
    }
    if (dm->plat.random(dm->plat.ctx, c->server_nonce, 16))
        return -1;
    c->server_nonce_len = 16;
    return 0;
}

/* A Chal with a fresh nonce for the server, on our SyncHdr Status. */
static int add_chal(dm_exec_t *x, dm_client_t *c, syncml_cmd_t *st)
{
    syncml_chal_t *ch = arena_alloc(&x->reply->arena, sizeof *ch);
    if (!ch || new_server_nonce(x->dm, c))
        return -1;
    syncml_meta_init(&ch->meta);
    ch->meta.type = auth_type(c->server_auth);
    ch->meta.format = "b64";
    char *n = crypto_b64_encode(x->dm, c->server_nonce, c->server_nonce_len);
    ch->meta.next_nonce = n ? arena_strdup(&x->reply->arena, n) : NULL;
    om_free(x->dm, n);
    if (!ch->meta.next_nonce)
        return -1;
    st->chal = ch;
    return 0;
}

/* ---- package 1 ---- */

typedef struct pkg_ctx {
    omadm_t *dm;
    dm_client_t *c;
    syncml_msg_t *msg;
    const char *msg_id;
    unsigned long *next_cmd;
    omadm_error_t err;
} pkg_ctx_t;

static const char *num(arena_t *a, unsigned long n)
{
    char s[24];
    snprintf(s, sizeof s, "%lu", n);
    return arena_strdup(a, s);
}

static int add_alert(void *ctx, const omadm_generic_alert_t *al)
{
    pkg_ctx_t *p = ctx;
    syncml_msg_t *m = p->msg;
    syncml_cmd_t *a = syncml_cmd_new(m, SYNCML_CMD_ALERT);
    syncml_item_t *it = a ? syncml_item_add(m, a) : NULL;
    if (!it) {
        p->err = OMADM_E_NOMEM;
        return -1;
    }
    a->cmd_id = num(&m->arena, (*p->next_cmd)++);
    a->data = (const uint8_t *)"1226";
    a->data_len = 4;
    a->has_data = true;
    it->source = arena_strdup(&m->arena, al->source ? al->source : "");
    it->has_meta = true;
    it->meta.type = al->type ? arena_strdup(&m->arena, al->type) : NULL;
    it->meta.format = al->format ? arena_strdup(&m->arena, al->format) : NULL;
    it->meta.mark = al->mark ? arena_strdup(&m->arena, al->mark) : NULL;
    if (al->data) {
        it->data = (const uint8_t *)arena_strdup(&m->arena, al->data);
        it->data_len = strlen(al->data);
        it->has_data = true;
    }
    syncml_cmd_append(&m->cmds, &m->cmds_tail, a);
    /* remember which of our commands carried it, to mark it delivered */
    sent_alert_t *arr = om_realloc(p->dm, p->c->alerts, (p->c->n_alerts + 1) * sizeof *arr);
    if (!arr) {
        p->err = OMADM_E_NOMEM;
        return -1;
    }
    p->c->alerts = arr;
    sent_alert_t *s = &arr[p->c->n_alerts];
    s->msg_id = om_strdup(p->dm, p->msg_id);
    s->cmd_id = om_strdup(p->dm, a->cmd_id);
    s->id = om_strdup(p->dm, al->id);
    p->c->n_alerts++;
    if (!a->cmd_id || !it->source || !s->msg_id || !s->cmd_id || !s->id ||
        (al->data && !it->data)) {
        p->err = OMADM_E_NOMEM;
        return -1;
    }
    return 0;
}

/* Alert 1200/1201, the DevInfo Replace and the generic alerts into msg. */
static omadm_error_t package1_body(omadm_t *dm, dm_client_t *c, syncml_msg_t *m,
                                   const char *msg_id, unsigned long *next_cmd)
{
    syncml_cmd_t *a = syncml_cmd_new(m, SYNCML_CMD_ALERT);
    syncml_cmd_t *r = syncml_cmd_new(m, SYNCML_CMD_REPLACE);
    if (!a || !r)
        return OMADM_E_NOMEM;
    a->cmd_id = num(&m->arena, (*next_cmd)++);
    a->data = (const uint8_t *)(c->server_initiated ? "1200" : "1201");
    a->data_len = 4;
    a->has_data = true;
    syncml_cmd_append(&m->cmds, &m->cmds_tail, a);
    r->cmd_id = num(&m->arena, (*next_cmd)++);
    const struct {
        const char *uri, *value;
    } leaves[] = {
        {"./DevInfo/DevId", dm->cfg.dev_id}, {"./DevInfo/Man", dm->cfg.man},
        {"./DevInfo/Mod", dm->cfg.mod},      {"./DevInfo/DmV", dm->cfg.dmv},
        {"./DevInfo/Lang", dm->cfg.lang},
    };
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        syncml_item_t *it = syncml_item_add(m, r);
        if (!it)
            return OMADM_E_NOMEM;
        it->source = leaves[i].uri;
        it->has_meta = true;
        it->meta.format = "chr";
        it->data = (const uint8_t *)leaves[i].value;
        it->data_len = strlen(leaves[i].value);
        it->has_data = true;
    }
    syncml_cmd_append(&m->cmds, &m->cmds_tail, r);
    if (!a->cmd_id || !r->cmd_id)
        return OMADM_E_NOMEM;
    free_alerts(dm, c);
    pkg_ctx_t p = {dm, c, m, msg_id, next_cmd, OMADM_OK};
    omadm_error_t err = omadm_alerts(dm, add_alert, &p);
    return p.err ? p.err : err;
}

static omadm_error_t copy_account(omadm_t *dm, dm_client_t *c, const omadm_account_t *acc)
{
    struct {
        char **dst;
        const char *src;
    } s[] = {{&c->server_url, acc->server_url},     {&c->server_id, acc->server_id},
             {&c->client_user, acc->client_user},   {&c->client_secret, acc->client_secret},
             {&c->server_secret, acc->server_secret}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (s[i].src && !(*s[i].dst = om_strdup(dm, s[i].src)))
            return OMADM_E_NOMEM;
    c->client_auth = acc->client_auth;
    c->server_auth = acc->server_auth;
    c->wbxml = acc->wbxml != 0;
    return OMADM_OK;
}

omadm_error_t omadm_session_begin(omadm_t *dm, const omadm_account_t *acc, int server_initiated,
                                  const char *session_id, uint8_t **msg, size_t *msg_len)
{
    if (!dm || !acc || !acc->server_url || !*acc->server_url || !msg || !msg_len ||
        acc->client_auth > OMADM_AUTH_HMAC || acc->server_auth > OMADM_AUTH_HMAC ||
        (session_id && (!*session_id || strlen(session_id) > 16)))
        return OMADM_E_INVALID_ARG;
    *msg = NULL;
    *msg_len = 0;
    client_free(dm);
    lo_drop(dm);
    dm->peer_max_obj = 0;
    dm_client_t *c = om_calloc(dm, sizeof *c);
    if (!c)
        return OMADM_E_NOMEM;
    dm->client = c;
    dm->client_error = NULL;
    c->server_initiated = server_initiated != 0;
    omadm_error_t err = copy_account(dm, c, acc);
    omadm_error_t auth_err = load_auth(dm, c, NULL, NULL);
    if (auth_err == OMADM_E_NEWER_FORMAT) {
        /* a later version's record: neither read nor written over */
        client_free(dm);
        return auth_err;
    }
    if (auth_err)
        om_log(dm, OMADM_LOG_WARN, "authentication state cannot be read (%s); starting without nonces",
               omadm_strerror(auth_err));
    char sid[24];
    if (session_id) {
        snprintf(sid, sizeof sid, "%s", session_id);
    } else {
        c->counter = c->counter % 65535 + 1;
        snprintf(sid, sizeof sid, "%lu", c->counter);
    }
    if (!err && !(c->session_id = om_strdup(dm, sid)))
        err = OMADM_E_NOMEM;
    if (!err)
        err = save_auth(dm, c);

    syncml_msg_t m;
    syncml_msg_init(&m, dm);
    m.enc = c->wbxml ? SYNCML_ENC_WBXML : SYNCML_ENC_XML;
    m.hdr.ver_dtd = "1.2";
    m.hdr.ver_proto = "DM/1.2";
    m.hdr.session_id = c->session_id;
    m.hdr.msg_id = "1";
    m.hdr.target = c->server_url;
    m.hdr.source = dm->cfg.dev_id;
    m.hdr.has_meta = true;
    syncml_meta_init(&m.hdr.meta);
    m.hdr.meta.max_msg_size = (int64_t)dm->cfg.max_msg_size;
    m.hdr.meta.max_obj_size = (int64_t)dm->cfg.max_obj_size;
    m.final = true;
    unsigned long next_cmd = 1;
    if (!err)
        err = put_cred(dm, c, &m);
    if (!err)
        err = package1_body(dm, c, &m, "1", &next_cmd);
    buf_t b;
    buf_init(&b, dm);
    if (!err)
        err = c->wbxml ? codec_wbxml_encode(dm, &m, &b) : codec_xml_encode(dm, &m, &b);
    if (!err && !(*msg = buf_steal(&b, msg_len)))
        err = OMADM_E_NOMEM;
    buf_free(&b);
    syncml_msg_free(&m);
    if (!err) {
        /* the counters start with our package 1 as MsgID 1; the server's
         * first message (its Source is not known yet) continues them */
        session_end(dm);
        err = session_save(dm);
    }
    if (err) {
        om_free(dm, *msg);
        *msg = NULL;
        *msg_len = 0;
        client_free(dm);
    }
    return err;
}

int omadm_session_active(const omadm_t *dm)
{
    return cl(dm) != NULL;
}

const char *omadm_session_url(const omadm_t *dm)
{
    const dm_client_t *c = cl(dm);
    return !c ? NULL : c->resp_uri ? c->resp_uri : c->server_url;
}

const char *omadm_session_error(const omadm_t *dm)
{
    return dm ? dm->client_error : NULL;
}

const char *omadm_session_id(const omadm_t *dm)
{
    const dm_client_t *c = dm ? cl(dm) : NULL;
    return c ? c->session_id : NULL;
}

/* ---- HMAC ---- */

static char *body_digest(omadm_t *dm, const uint8_t *body, size_t len)
{
    uint8_t h[16];
    return crypto_md5(body, len, h) ? NULL : crypto_b64_encode(dm, h, 16);
}

omadm_error_t omadm_session_hmac_sign(omadm_t *dm, const uint8_t *body, size_t len, char *buf,
                                      size_t size)
{
    dm_client_t *c = cl(dm);
    if (!c || (!body && len) || !buf || !size)
        return OMADM_E_INVALID_ARG;
    char *bd = body_digest(dm, body ? body : (const uint8_t *)"", len);
    arena_t a;
    arena_init(&a, dm);
    char *mac = bd ? md5_digest(dm, &a, user_name(dm, c), c->client_secret, c->client_nonce,
                                c->client_nonce_len, bd)
                   : NULL;
    omadm_error_t err = OMADM_E_NOMEM;
    if (mac) {
        int n = snprintf(buf, size, "algorithm=MD5, username=\"%s\", mac=%s", user_name(dm, c), mac);
        err = n < 0 || (size_t)n >= size ? OMADM_E_TOO_LARGE : OMADM_OK;
    }
    arena_free(&a);
    om_free(dm, bd);
    return err;
}

/* The value of key in "k=v, k="v", ..." (quotes removed) into out. */
static int header_field(const char *h, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!strncasecmp(p, key, klen) && p[klen] == '=') {
            p += klen + 1;
            bool q = *p == '"';
            if (q)
                p++;
            size_t n = q ? strcspn(p, "\"") : strcspn(p, ", \t");
            if (n >= size)
                return -1;
            memcpy(out, p, n);
            out[n] = 0;
            return 0;
        }
        p = strchr(p, ',');
    }
    return -1;
}

omadm_error_t omadm_session_hmac_verify(omadm_t *dm, const char *header, const uint8_t *body,
                                        size_t len)
{
    dm_client_t *c = cl(dm);
    if (!c || (!body && len))
        return OMADM_E_INVALID_ARG;
    char alg[16], user[256], mac[64];
    if (!header || header_field(header, "algorithm", alg, sizeof alg) ||
        header_field(header, "username", user, sizeof user) ||
        header_field(header, "mac", mac, sizeof mac) || strcasecmp(alg, "MD5") ||
        (c->server_id && strcmp(user, c->server_id)))
        return OMADM_E_DENIED;
    char *bd = body_digest(dm, body ? body : (const uint8_t *)"", len);
    arena_t a;
    arena_init(&a, dm);
    char *want = bd ? md5_digest(dm, &a, user, c->server_secret, c->server_nonce,
                                 c->server_nonce_len, bd)
                    : NULL;
    omadm_error_t err = !want ? OMADM_E_NOMEM : strcmp(want, mac) ? OMADM_E_DENIED : OMADM_OK;
    arena_free(&a);
    om_free(dm, bd);
    if (!err)
        c->hmac_verified = true;
    return err;
}

/* ---- the exchange ---- */

static bool is_status_for(const syncml_cmd_t *st, const char *msg_ref, const char *cmd_ref)
{
    return st->cmd_ref && !strcmp(st->cmd_ref, cmd_ref) &&
           (!st->msg_ref || !msg_ref || !strcmp(st->msg_ref, msg_ref));
}

int client_on_header(dm_exec_t *x, syncml_cmd_t *hdr_status)
{
    omadm_t *dm = x->dm;
    dm_client_t *c = cl(dm);
    if (!c || !hdr_status)
        return 0;
    if (c->server_auth == OMADM_AUTH_NONE)
        return 0;
    if (c->server_auth == OMADM_AUTH_HMAC) {
        /* the host checked the header; every SyncHdr Status is 200 and
         * gives the server its next nonce */
        if (!c->hmac_verified) {
            status_set_code(x, hdr_status, 401);
            return 401;
        }
        c->hmac_verified = false;
        if (add_chal(x, c, hdr_status))
            x->oom = true;
        return 0;
    }
    if (c->server_ok)
        return 0;
    int rc = check_server_cred(dm, c, &x->req->hdr, x->scratch);
    if (rc == 0) {
        c->server_ok = true;
        status_set_code(x, hdr_status, 212);
        return 0;
    }
    status_set_code(x, hdr_status, rc);
    if (rc != 500 && add_chal(x, c, hdr_status))
        x->oom = true;
    om_log(dm, OMADM_LOG_WARN, "server credentials %s: its commands are not executed",
           rc == 407 ? "missing" : "refused");
    return rc;
}

/* The nonce a Chal carries, stored for our next credentials. */
static void take_nonce(omadm_t *dm, dm_client_t *c, const syncml_chal_t *ch)
{
    if (!ch || !ch->meta.next_nonce)
        return;
    const char *nn = ch->meta.next_nonce;
    int bad = 0;
    size_t n = 0;
    uint8_t *raw = crypto_b64_decode(dm, (const uint8_t *)nn, strlen(nn), &n, &bad);
    if (!raw && bad) {
        /* some servers send the nonce as plain text */
        n = strlen(nn);
        if (n <= MAX_NONCE) {
            memcpy(c->client_nonce, nn, n);
            c->client_nonce_len = n;
        }
    } else if (raw && n <= MAX_NONCE) {
        memcpy(c->client_nonce, raw, n);
        c->client_nonce_len = n;
    }
    om_free(dm, raw);
    if (save_auth(dm, c))
        om_log(dm, OMADM_LOG_WARN, "cannot save the server's nonce");
}

static omadm_auth_t chal_type(const syncml_chal_t *ch)
{
    const char *t = ch && ch->meta.type ? ch->meta.type : "";
    return !strcmp(t, "syncml:auth-basic") ? OMADM_AUTH_BASIC
           : !strcmp(t, "syncml:auth-md5") ? OMADM_AUTH_MD5
           : !strcmp(t, "syncml:auth-MAC") ? OMADM_AUTH_HMAC
                                           : OMADM_AUTH_NONE;
}

void client_on_status(dm_exec_t *x, const syncml_cmd_t *st)
{
    omadm_t *dm = x->dm;
    dm_client_t *c = cl(dm);
    if (!c || !st->cmd_ref)
        return;
    int code = status_code(st);
    if (code < 0) {
        /* not a status code: it accepts nothing (our credentials stay as
         * they were, an alert it answers stays queued) */
        om_log(dm, OMADM_LOG_WARN, "a Status from the server carries no valid code "
               "(three digits, 100-599): ignored");
        return;
    }
    if (!strcmp(st->cmd_ref, "0")) {
        /* the server's answer to our SyncHdr: our credentials */
        take_nonce(dm, c, st->chal);
        if (code == 212) {
            c->cred = CRED_ACCEPTED;
            c->challenges = 0;
        } else if (code == 401 || code == 407) {
            omadm_auth_t want = chal_type(st->chal);
            if (!st->chal || (want != c->client_auth && c->client_auth != OMADM_AUTH_NONE) ||
                want == OMADM_AUTH_NONE || want == OMADM_AUTH_HMAC) {
                dm->client_error = "the server refused our credentials and asks for another "
                                   "kind than configured";
                x->abort_session = true;
            } else if (c->client_auth == OMADM_AUTH_NONE) {
                dm->client_error = "the server requires credentials and none are configured";
                x->abort_session = true;
            } else if (++c->challenges >= MAX_CHALLENGES) {
                dm->client_error = "the server refused our credentials";
                x->abort_session = true;
            } else {
                c->resend_pkg1 = true;
                c->cred = CRED_SEND;
            }
        }
        return;
    }
    for (size_t i = 0; i < c->n_alerts; i++) {
        sent_alert_t *s = &c->alerts[i];
        if (!s->id || !is_status_for(st, s->msg_id, s->cmd_id))
            continue;
        if (code == 200 || code == 202) {
            if (omadm_alert_delivered(dm, s->id))
                om_log(dm, OMADM_LOG_WARN, "a delivered alert could not be marked");
        } else {
            om_log(dm, OMADM_LOG_WARN, "the server answered a generic alert with %d; kept", code);
        }
        om_free(dm, s->id);
        s->id = NULL;
    }
}

omadm_error_t client_on_reply(dm_exec_t *x, bool *reply_due)
{
    omadm_t *dm = x->dm;
    dm_client_t *c = cl(dm);
    if (!c)
        return OMADM_OK;
    omadm_error_t err = OMADM_OK;
    if (c->resend_pkg1 && !x->abort_session) {
        c->resend_pkg1 = false;
        err = package1_body(dm, c, x->reply, x->reply->hdr.msg_id, &x->next_cmd_id);
        *reply_due = true;
    }
    /* the rest of our package waits: the server must get it */
    if (c->queued && !x->abort_session)
        *reply_due = true;
    if (!err && c->cred == CRED_SEND && *reply_due)
        err = put_cred(dm, c, x->reply);
    return err;
}

void client_after_message(omadm_t *dm, const char *resp_uri, bool reply_due, omadm_error_t err)
{
    dm_client_t *c = cl(dm);
    if (!c)
        return;
    if (c->nonce_offered) {
        c->nonce_offered = false;
        if (err || !reply_due) {
            /* the server never sees that nonce: keep the one it has */
            memcpy(c->server_nonce, c->prev_nonce, c->prev_nonce_len);
            c->server_nonce_len = c->prev_nonce_len;
        } else if (save_auth(dm, c)) {
            om_log(dm, OMADM_LOG_WARN, "cannot save the nonce given to the server");
        }
    }
    if (!err && resp_uri && *resp_uri) {
        char *u = om_strdup(dm, resp_uri);
        if (u) {
            om_free(dm, c->resp_uri);
            c->resp_uri = u;
        }
    }
    if (err || !reply_due) {
        client_free(dm); /* the session is over */
        dm->peer_max_obj = 0;
        return;
    }
    /* a stream whose Results did not become part of the queue (its
     * message went out as Statuses alone) has nothing left to send */
    for (get_stream_t **p = &c->streams; *p;) {
        get_stream_t *s = *p;
        const syncml_cmd_t *k = c->queued;
        while (k && k != s->res)
            k = k->next;
        if (k) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        get_stream_free(dm, s);
    }
}

/* ---- replies larger than the server's MaxMsgSize ---- */

void client_peer_limits(omadm_t *dm, const syncml_hdr_t *h)
{
    dm_client_t *c = cl(dm);
    if (c && h->has_meta && h->meta.max_msg_size > 0)
        c->peer_max_msg = h->meta.max_msg_size;
    if (c && h->has_meta && h->meta.max_obj_size > 0)
        dm->peer_max_obj = h->meta.max_obj_size; /* in force until changed */
}

int client_pending(const omadm_t *dm)
{
    const dm_client_t *c = cl(dm);
    return c && c->queued;
}

size_t client_stream_budget(const omadm_t *dm)
{
    const dm_client_t *c = cl(dm);
    if (!c || c->peer_max_msg <= 0)
        return 0;
    size_t b = (size_t)c->peer_max_msg;
    return b < dm->cfg.max_reply_size ? b : dm->cfg.max_reply_size;
}

void client_stream_add(omadm_t *dm, get_stream_t *s)
{
    dm_client_t *c = cl(dm);
    s->next = c->streams;
    c->streams = s;
}

static get_stream_t *stream_of(const dm_client_t *c, const syncml_cmd_t *k)
{
    for (get_stream_t *s = c->streams; s; s = s->next)
        if (s->res == k)
            return s;
    return NULL;
}

static void stream_drop(omadm_t *dm, dm_client_t *c, get_stream_t *s)
{
    for (get_stream_t **p = &c->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    get_stream_free(dm, s);
}

/* Before a message is encoded: the streamed Results in it (this message's
 * own commands, then the queue) get their next items, in order, up to the
 * first that goes on after them (*open: what follows it waits for a later
 * message).  One with nothing left to send leaves the message and the
 * queue (its last nodes were gone). */
static omadm_error_t fill_streams(omadm_t *dm, dm_client_t *c, syncml_msg_t *out,
                                  get_stream_t **open)
{
    *open = NULL;
    size_t budget = client_stream_budget(dm);
    syncml_cmd_t **lists[2] = {&out->cmds, &c->queued};
    for (int i = 0; i < 2; i++) {
        syncml_cmd_t *prev = NULL;
        for (syncml_cmd_t **pp = lists[i]; *pp;) {
            syncml_cmd_t *k = *pp;
            get_stream_t *st = stream_of(c, k);
            if (!st) {
                prev = k;
                pp = &k->next;
                continue;
            }
            omadm_error_t err = get_stream_fill(dm, st, budget);
            if (err)
                return err;
            if (!k->n_items && get_stream_done(st)) {
                *pp = k->next;
                if (i == 0 && out->cmds_tail == k)
                    out->cmds_tail = prev;
                stream_drop(dm, c, st);
                continue;
            }
            if (!get_stream_done(st)) {
                *open = st;
                return OMADM_OK;
            }
            prev = k;
            pp = &k->next;
        }
    }
    return OMADM_OK;
}

static omadm_error_t encode_msg(omadm_t *dm, const syncml_msg_t *m, uint8_t **out, size_t *len)
{
    buf_t b;
    buf_init(&b, dm);
    omadm_error_t err = m->enc == SYNCML_ENC_WBXML ? codec_wbxml_encode(dm, m, &b)
                                                   : codec_xml_encode(dm, m, &b);
    if (!err && !(*out = buf_steal(&b, len)))
        err = OMADM_E_NOMEM;
    buf_free(&b);
    return err;
}

/* The first k commands of list as a message with out's header. */
static omadm_error_t encode_prefix(omadm_t *dm, const syncml_msg_t *out, syncml_cmd_t *list,
                                   size_t k, bool final, uint8_t **bytes, size_t *len)
{
    syncml_cmd_t *cut = list, *prev = NULL;
    for (size_t i = 0; i < k && cut; i++) {
        prev = cut;
        cut = cut->next;
    }
    if (prev)
        prev->next = NULL;
    syncml_msg_t m = *out;     /* shares out's arena: never freed here */
    m.cmds = k ? list : NULL;
    m.final = final;
    omadm_error_t err = encode_msg(dm, &m, bytes, len);
    if (prev)
        prev->next = cut;
    return err;
}

/* A Results whose one value can go out in chunks (MoreData). */
static bool chunkable(const syncml_cmd_t *r)
{
    const syncml_item_t *it = r ? r->items : NULL;
    return r && r->type == SYNCML_CMD_RESULTS && it && !it->next && it->has_data &&
           it->data_len > 3;
}

/* Replace a Results by its largest first chunk that fits after the `keep`
 * commands before it, followed by a Results with the rest (queued by the
 * caller).
 * The first chunk of a value gives Meta Size (the whole length). */
static omadm_error_t split_results(omadm_t *dm, dm_client_t *c, syncml_msg_t *out, size_t keep)
{
    /* the Results is the command after the first `keep` ones */
    syncml_cmd_t *hdr = out->cmds;
    for (size_t i = 1; i < keep; i++)
        hdr = hdr->next;
    syncml_cmd_t *res = hdr->next;
    const syncml_item_t *it = res->items;
    bool first = res != c->chunk_rest;
    syncml_cmd_t *chunk = arena_alloc(&out->arena, sizeof *chunk);
    syncml_cmd_t *rest = arena_alloc(&out->arena, sizeof *rest);
    syncml_item_t *ci = arena_alloc(&out->arena, sizeof *ci);
    syncml_item_t *ri = arena_alloc(&out->arena, sizeof *ri);
    if (!chunk || !rest || !ci || !ri)
        return OMADM_E_NOMEM;
    *chunk = *res;
    *rest = *res;
    *ci = *it;
    *ri = *it;
    chunk->items = chunk->items_tail = ci;
    rest->items = rest->items_tail = ri;
    /* a value that travels as base64 (over XML: bin, or not XML text) is
     * cut at multiples of 3 bytes, so the chunks' base64 texts join into
     * the whole one, and every chunk is sent so (as bin); Size counts what
     * travels: the base64 characters */
    bool b64 = syncml_item_as_b64(it, out->enc == SYNCML_ENC_WBXML);
    bool binary = b64 || it->data_opaque || (it->meta.format && !strcmp(it->meta.format, "bin"));
    ci->more_data = true;
    ci->has_meta = true;
    ci->meta.size = !first ? -1 : b64 ? (int64_t)(4 * ((it->data_len + 2) / 3))
                                      : (int64_t)it->data_len;
    ri->meta.size = -1;
    if (b64)
        ci->meta.format = ri->meta.format = "bin";
    chunk->next = NULL;
    hdr->next = chunk;
    size_t lo = 1, hi = it->data_len - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        ci->data_len = mid;
        uint8_t *b = NULL;
        size_t len = 0;
        omadm_error_t err = encode_prefix(dm, out, out->cmds, keep + 1, false, &b, &len);
        om_free(dm, b);
        if (err) {
            hdr->next = res;
            return err;
        }
        if ((int64_t)len <= c->peer_max_msg)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (b64)
        lo = lo >= 3 ? lo - lo % 3 : 3;
    /* text: never cut inside a UTF-8 sequence */
    while (!binary && lo > 1 && (it->data[lo] & 0xC0) == 0x80)
        lo--;
    ci->data_len = lo;
    ri->data = it->data + lo;
    ri->data_len = it->data_len - lo;
    chunk->next = rest;
    rest->next = res->next;
    c->chunk_rest = rest;
    return OMADM_OK;
}

/* Where a streamed Results is cut in this message (restored when the
 * message fails, or when it does not go after all). */
typedef struct stream_cut {
    get_stream_t *s;
    syncml_item_t *last;       /* its last item that goes now (split_items) */
    syncml_item_t *unsent;     /* the items after it */
    syncml_item_t *tail;       /* its last item before the cut */
    size_t n;                  /* its items before the cut */
    bool detached;             /* its first item goes ahead alone, in chunks */
    syncml_item_t *after;      /* ... and these stay with the stream */
} stream_cut_t;

static void cut_restore(stream_cut_t *cut)
{
    if (cut->s && cut->last) {
        cut->last->next = cut->unsent;
        cut->s->res->items_tail = cut->tail;
        cut->s->res->n_items = cut->n;
    }
    memset(cut, 0, sizeof *cut);
}

/* Split the Results cand (after `before` commands) into one with the most
 * leading items that fit and one with the others, linked after it (a
 * streamed Results keeps the others itself: *cut).
 * Returns the number of items kept (at least 1). */
/* Where the items of cmd, the last command of an encoding of len bytes,
 * end in it (syncml_msg_t.mark_len). */
typedef struct item_ends {
    const syncml_cmd_t *cmd;
    size_t *ends;
    size_t n, len;
} item_ends_t;

/* Encode the first k commands of out, noting where the items of the last
 * one end when it is a Results of several (*ie; its memory the caller's,
 * ie->ends NULL when there is none). */
static omadm_error_t encode_noting_ends(omadm_t *dm, syncml_msg_t *out, size_t k, bool final,
                                        uint8_t **bytes, size_t *len, item_ends_t *ie)
{
    syncml_cmd_t *last = out->cmds;
    for (size_t i = 1; last && i < k; i++)
        last = last->next;
    memset(ie, 0, sizeof *ie);
    if (last && !last->next && last->type == SYNCML_CMD_RESULTS && last->n_items > 1 &&
        (ie->ends = om_alloc(dm, last->n_items * sizeof *ie->ends))) {
        ie->cmd = last;
        ie->n = last->n_items;
        out->mark_cmd = last;
        out->mark_len = ie->ends;
        out->mark_cap = ie->n;
    }
    omadm_error_t err = encode_prefix(dm, out, out->cmds, k, final, bytes, len);
    out->mark_cmd = NULL;
    out->mark_len = NULL;
    out->mark_cap = 0;
    ie->len = *len;
    if (err) {
        om_free(dm, ie->ends);
        memset(ie, 0, sizeof *ie);
    }
    return err;
}

static size_t split_items(omadm_t *dm, dm_client_t *c, syncml_msg_t *out, size_t before,
                          syncml_cmd_t *cand, const item_ends_t *known, stream_cut_t *cut,
                          uint8_t **fits, size_t *fits_len, omadm_error_t *err)
{
    get_stream_t *st = stream_of(c, cand);
    syncml_cmd_t *rest = st ? NULL : arena_alloc(&out->arena, sizeof *rest);
    *err = OMADM_OK;
    if (!st && !rest) {
        *err = OMADM_E_NOMEM;
        return 0;
    }
    size_t n = cand->n_items, lo = 1, hi = n - 1;
    syncml_item_t *all = cand->items, *all_tail = cand->items_tail;
    syncml_cmd_t *after = cand->next;
    cand->next = NULL;
    /* one encoding tells where each item ends (the whole message's, when
     * cand ends it): the most that fit, once the elements that close the
     * message are added (a WBXML code page switch may add two bytes
     * there), checked by encoding them (those bytes are the message's);
     * else (or without the memory for it) a binary search */
    item_ends_t mine = {0};
    const item_ends_t *ie = known && known->cmd == cand && known->ends && !after &&
                                    known->n == n ? known : NULL;
    uint8_t *b = NULL;
    size_t len = 0;
    if (!ie) {
        *err = encode_noting_ends(dm, out, before + 1, false, &b, &len, &mine);
        om_free(dm, b);
        if (*err) {
            cand->next = after;
            return 0;
        }
        ie = mine.cmd == cand && mine.ends ? &mine : NULL;
    }
    if (ie) {
        size_t close = ie->len - ie->ends[n - 1] + 2, k = 1;
        while (k < n - 1 && ie->ends[k] + close <= (size_t)c->peer_max_msg)
            k++;
        om_free(dm, mine.ends);
        /* k items would fit; the search below confirms it (or finds fewer) */
        syncml_item_t *cut_at = all;
        for (size_t i = 1; i < k; i++)
            cut_at = cut_at->next;
        syncml_item_t *nx = cut_at->next;
        cut_at->next = NULL;
        b = NULL;
        *err = encode_prefix(dm, out, out->cmds, before + 1, false, &b, &len);
        cut_at->next = nx;
        if (*err) {
            om_free(dm, b);
            cand->next = after;
            return 0;
        }
        if ((int64_t)len <= c->peer_max_msg) {
            lo = hi = k;
            *fits = b;
            *fits_len = len;
        } else {
            om_free(dm, b);
            hi = k - 1;
        }
    }
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        syncml_item_t *cut_at = all;
        for (size_t i = 1; i < mid; i++)
            cut_at = cut_at->next;
        syncml_item_t *nx = cut_at->next;
        cut_at->next = NULL;
        b = NULL;
        *err = encode_prefix(dm, out, out->cmds, before + 1, false, &b, &len);
        cut_at->next = nx;
        om_free(dm, b);
        if (*err) {
            cand->next = after;
            return 0;
        }
        if ((int64_t)len <= c->peer_max_msg)
            lo = mid;
        else
            hi = mid - 1;
    }
    syncml_item_t *cut_at = all;
    for (size_t i = 1; i < lo; i++)
        cut_at = cut_at->next;
    if (st) {
        cut->s = st;
        cut->last = cut_at;
        cut->unsent = cut_at->next;
        cut->tail = all_tail;
        cut->n = n;
    } else {
        *rest = *cand;
        rest->items = cut_at->next;
        rest->items_tail = all_tail;
        rest->n_items = n - lo;
    }
    cut_at->next = NULL;
    cand->items_tail = cut_at;
    cand->n_items = lo;
    cand->next = st ? after : rest;
    if (rest)
        rest->next = after;
    return lo;
}

/* The first item of the streamed Results after `before` commands goes
 * ahead alone, in a Results of its own in out's memory (to be sent in
 * chunks); the stream keeps the items after it. */
static omadm_error_t detach_first(syncml_msg_t *out, size_t before, get_stream_t *st,
                                  stream_cut_t *cut)
{
    syncml_cmd_t *hdr = out->cmds;
    for (size_t i = 1; i < before; i++)
        hdr = hdr->next;
    syncml_cmd_t *res = hdr->next;
    const syncml_item_t *first = res->items;
    syncml_cmd_t *alone = arena_alloc(&out->arena, sizeof *alone);
    syncml_item_t *it = arena_alloc(&out->arena, sizeof *it);
    if (!alone || !it)
        return OMADM_E_NOMEM;
    *it = *first;
    it->next = NULL;
    it->source = first->source ? arena_strdup(&out->arena, first->source) : NULL;
    it->meta.format = first->meta.format ? arena_strdup(&out->arena, first->meta.format) : NULL;
    it->meta.type = first->meta.type ? arena_strdup(&out->arena, first->meta.type) : NULL;
    it->data = first->data ? arena_memdup(&out->arena, first->data, first->data_len) : NULL;
    if ((first->source && !it->source) || (first->meta.format && !it->meta.format) ||
        (first->meta.type && !it->meta.type) || (first->data && !it->data))
        return OMADM_E_NOMEM;
    *alone = *res;
    alone->items = alone->items_tail = it;
    alone->n_items = 1;
    alone->next = res;
    hdr->next = alone;
    if (!cut->s)
        cut->s = st;
    cut->after = cut->last ? cut->unsent : first->next;
    cut->detached = true;
    return OMADM_OK;
}

/* How many of out's commands go in this message (*sent; all of them when
 * they fit), encoded into *reply. */
static omadm_error_t cut_commands(omadm_t *dm, dm_client_t *c, syncml_msg_t *out, bool final,
                                  uint8_t **reply, size_t *reply_len, bool *mutated,
                                  stream_cut_t *cut, size_t *sent, item_ends_t *known)
{
    size_t n = 0;
    for (syncml_cmd_t *k = out->cmds; k; k = k->next)
        n++;
    *sent = n;
    omadm_error_t err = encode_noting_ends(dm, out, n, final, reply, reply_len, known);
    if (err || !c->peer_max_msg || (int64_t)*reply_len <= c->peer_max_msg)
        return err;
    /* too big: the most commands that fit (at least the SyncHdr Status and
     * one more, so the session moves on), the rest waits for Alert 1222 */
    om_free(dm, *reply);
    *reply = NULL;
    size_t lo = n > 1 ? 2 : n, hi = n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        uint8_t *b = NULL;
        size_t len = 0;
        err = encode_prefix(dm, out, out->cmds, mid, false, &b, &len);
        om_free(dm, b);
        if (err)
            return err;
        if ((int64_t)len <= c->peer_max_msg)
            lo = mid;
        else
            hi = mid - 1;
    }
    err = encode_prefix(dm, out, out->cmds, lo, false, reply, reply_len);
    if (err)
        return err;
    /* A Results that does not fit goes in chunks (MoreData): the one
     * that had to go alone, or else the first left out, if its first
     * chunk fits in the room that is left */
    bool forced = (int64_t)*reply_len > c->peer_max_msg;
    size_t before = forced ? lo - 1 : lo;
    syncml_cmd_t *cand = out->cmds;
    for (size_t i = 0; cand && i < before; i++)
        cand = cand->next;
    if (before >= 1 && cand && cand->type == SYNCML_CMD_RESULTS && cand->n_items > 1) {
        /* a Results with several items: as many as fit, the rest in a
         * second Results for the same Get (one item always goes, and a
         * single item that is too big is chunked below next time) */
        uint8_t *fits = NULL;
        size_t fits_len = 0;
        size_t k = split_items(dm, c, out, before, cand, known, cut, &fits, &fits_len, &err);
        if (err)
            return err;
        *mutated = *mutated || !cut->s;
        om_free(dm, *reply);
        *reply = fits;
        *reply_len = fits_len;
        lo = before + 1;
        if (!fits)
            err = encode_prefix(dm, out, out->cmds, lo, false, reply, reply_len);
        if (err)
            return err;
        if (k > 1 || (int64_t)*reply_len <= c->peer_max_msg)
            cand = NULL; /* done; else the lone item, too big, goes in chunks */
    }
    if (before >= 1 && chunkable(cand)) {
        uint8_t *b = NULL;
        size_t len = 0;
        syncml_cmd_t *after = cand->next;
        syncml_item_t *it = cand->items;
        syncml_item_t keep_item = *it;
        /* is there room for at least a one-byte chunk (with its Size and
         * MoreData)? */
        it->data_len = 1;
        it->more_data = true;
        it->has_meta = true;
        it->meta.size = (int64_t)keep_item.data_len;
        cand->next = NULL;
        err = encode_prefix(dm, out, out->cmds, before + 1, false, &b, &len);
        *it = keep_item;
        cand->next = after;
        om_free(dm, b);
        if (err)
            return err;
        if ((int64_t)len <= c->peer_max_msg) {
            om_free(dm, *reply);
            *reply = NULL;
            get_stream_t *st = stream_of(c, cand);
            if (st) {
                /* a streamed item is copied out: the stream's memory
                 * does not last as long as the chunks */
                err = detach_first(out, before, st, cut);
                *mutated = true;
            }
            if (!err)
                err = split_results(dm, c, out, before);
            *mutated = *mutated || !err;
            lo = before + 1;
            if (!err)
                err = encode_prefix(dm, out, out->cmds, lo, false, reply, reply_len);
            if (err)
                return err;
        } else if (lo > before && before >= 2) {
            /* no room left here: it starts the next message */
            om_free(dm, *reply);
            *reply = NULL;
            lo = before;
            err = encode_prefix(dm, out, out->cmds, lo, false, reply, reply_len);
            if (err)
                return err;
        }
    }
    if ((int64_t)*reply_len > c->peer_max_msg)
        om_log(dm, OMADM_LOG_WARN, "one command of %zu bytes exceeds the server's MaxMsgSize",
               *reply_len);
    *sent = lo;
    return OMADM_OK;
}

static omadm_error_t cut_to_fit(omadm_t *dm, dm_client_t *c, syncml_msg_t *out, bool final,
                                uint8_t **reply, size_t *reply_len, bool *mutated,
                                stream_cut_t *cut, size_t *sent)
{
    item_ends_t known = {0};
    omadm_error_t err =
        cut_commands(dm, c, out, final, reply, reply_len, mutated, cut, sent, &known);
    om_free(dm, known.ends);
    return err;
}

/* After a message of `sent` commands (of which the first n_own are its
 * own): the rest is queued.  A streamed Results that went out whole and is
 * complete is done with; one that goes on stays at the head of the queue
 * with what it did not send (in its own memory).  out's memory is kept
 * with the queue only while the queue uses it. */
static omadm_error_t queue_rest(omadm_t *dm, dm_client_t *c, syncml_msg_t *out, size_t n_own,
                                size_t sent, bool final, stream_cut_t *cut, bool mutated)
{
    syncml_cmd_t *last = NULL, *rest = out->cmds;
    bool cut_sent = false;
    for (size_t i = 0; i < sent; i++) {
        last = rest;
        rest = rest->next;
        if (cut->s && last == cut->s->res)
            cut_sent = true;
    }
    if (cut->s && !cut->detached && !cut_sent)
        cut_restore(cut); /* it does not go after all */
    /* the stream that goes on, and what it keeps */
    get_stream_t *goes_on = NULL;
    syncml_item_t *unsent = NULL;
    get_stream_t *lst = last ? stream_of(c, last) : NULL;
    if (lst && cut->s == lst && !cut->detached && cut->unsent) {
        goes_on = lst;
        unsent = cut->unsent;
    } else if (lst && !get_stream_done(lst)) {
        goes_on = lst;
    }
    syncml_cmd_t *first = goes_on ? last : rest;
    size_t r0 = goes_on ? sent - 1 : sent;
    bool carry = first && (r0 < n_own || mutated);
    syncml_msg_t **arr = NULL;
    syncml_msg_t *keep = NULL;
    if (carry) {
        /* the memory first: a failure leaves the reply whole */
        arr = om_realloc(dm, c->carry, (c->n_carry + 1) * sizeof *arr);
        if (arr)
            c->carry = arr;
        keep = arr ? om_alloc(dm, sizeof *keep) : NULL;
        if (!keep)
            return OMADM_E_NOMEM;
    }
    omadm_error_t err = OMADM_OK;
    if (goes_on)
        err = get_stream_keep(dm, goes_on, unsent);
    else if (cut->s && cut->detached)
        err = get_stream_keep(dm, cut->s, cut->after);
    if (err) {
        om_free(dm, keep);
        return err;
    }
    /* nothing can fail from here */
    for (syncml_cmd_t *k = out->cmds; k != first;) {
        syncml_cmd_t *nx = k->next;
        get_stream_t *st = stream_of(c, k);
        if (st && st != goes_on)
            stream_drop(dm, c, st); /* sent whole, and complete */
        if (k == last)
            break;
        k = nx;
    }
    if (!goes_on && last)
        last->next = NULL;
    if (!first) {
        drop_queue(dm, c); /* everything went out */
        out->cmds_tail = NULL;
        return OMADM_OK;
    }
    if (carry) {
        *keep = *out;          /* the arena moves to keep */
        syncml_msg_init(out, dm);
        c->carry[c->n_carry++] = keep;
    } else {
        /* the queue holds nothing of out's: its CmdIDs are given again
         * with the next message */
        for (syncml_cmd_t *k = first; k; k = k->next)
            k->cmd_id = NULL;
        out->cmds_tail = NULL;
    }
    c->queued = first;
    c->queued_final = final;
    return OMADM_OK;
}

static omadm_error_t encode_session(omadm_t *dm, dm_client_t *c, syncml_msg_t *out,
                                    get_stream_t *open, uint8_t **reply, size_t *reply_len,
                                    bool *mutated)
{
    /* commands queued from earlier replies go after this message's own */
    bool final = out->final;
    size_t n_own = 0;
    for (syncml_cmd_t *k = out->cmds; k; k = k->next)
        n_own++;
    if (c->queued) {
        unsigned long id = 1;
        for (syncml_cmd_t *k = out->cmds; k; k = k->next)
            id++;
        for (syncml_cmd_t *k = c->queued; k; k = k->next) {
            char num[24];
            snprintf(num, sizeof num, "%lu", id++);
            if (!(k->cmd_id = arena_strdup(&out->arena, num)))
                return OMADM_E_NOMEM;
        }
        if (out->cmds_tail)
            out->cmds_tail->next = c->queued;
        else
            out->cmds = c->queued;
        final = c->queued_final;
        c->queued = NULL;
    }
    /* what follows a streamed Results that goes on waits for it */
    syncml_cmd_t *held = open ? open->res->next : NULL;
    if (open)
        open->res->next = NULL;
    stream_cut_t cut = {0};
    size_t sent = 0;
    omadm_error_t err = cut_to_fit(dm, c, out, final && !open, reply, reply_len, mutated, &cut,
                                   &sent);
    if (open)
        open->res->next = held;
    if (!err)
        err = queue_rest(dm, c, out, n_own, sent, final, &cut, *mutated);
    if (err) {
        cut_restore(&cut);
        om_free(dm, *reply);
        *reply = NULL;
    }
    return err;
}

omadm_error_t client_encode(omadm_t *dm, syncml_msg_t *out, uint8_t **reply, size_t *reply_len)
{
    dm_client_t *c = cl(dm);
    if (!c)
        return encode_msg(dm, out, reply, reply_len);
    get_stream_t *open = NULL;
    omadm_error_t err = fill_streams(dm, c, out, &open);
    if (err)
        return err;
    syncml_cmd_t *queued = c->queued;
    const syncml_cmd_t *chunk_rest = c->chunk_rest;
    bool queued_final = c->queued_final, mutated = false;
    err = encode_session(dm, c, out, open, reply, reply_len, &mutated);
    if (!err)
        return OMADM_OK;
    /* the session may go on (a message answered with its Statuses alone):
     * what earlier replies left queued stays queued, unless splitting it
     * already put parts of it into this message's memory */
    if (mutated && queued) {
        om_log(dm, OMADM_LOG_WARN, "the rest of an earlier reply is lost");
        drop_queue(dm, c);
    } else {
        c->queued = queued;
        c->queued_final = queued_final;
        c->chunk_rest = mutated ? NULL : chunk_rest;
    }
    return err;
}

omadm_error_t client_stored_server_nonce(omadm_t *dm, uint8_t *out, size_t size, size_t *len)
{
    dm_client_t tmp;
    memset(&tmp, 0, sizeof tmp);
    const dm_client_t *c = cl(dm);
    if (!c) {
        omadm_error_t err = load_auth(dm, &tmp, NULL, NULL);
        if (err) {
            om_wipe(&tmp, sizeof tmp);
            return err; /* never check against an empty nonce by mistake */
        }
        c = &tmp;
    }
    size_t n = c->nonce_offered ? c->prev_nonce_len : c->server_nonce_len;
    const uint8_t *src = c->nonce_offered ? c->prev_nonce : c->server_nonce;
    if (n > size)
        n = size;
    memcpy(out, src, n);
    om_wipe(&tmp, sizeof tmp);
    *len = n;
    return OMADM_OK;
}
