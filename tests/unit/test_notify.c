/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_notify.c - package 0 (omadm/notify.c, docs/session.md
 * "Notifications (package 0)"): notifications built here bit by bit and
 * signed with a digest computed here with OpenSSL's EVP directly.
 *
 *   parse: the header fields at their edge values (version, UI mode 0..3,
 *   initiator, session ID 0 and 65535, the 27 future-use bits ignored), an
 *   empty and a 255-character server ID, the vendor-specific body; input of
 *   every shorter length, a server ID running past the end or holding a NUL:
 *   MALFORMED, never a read past the input (each input is its own heap
 *   block, so ASan sees one);
 *   verify: the right digest; a wrong secret, another server's name, each
 *   bit of the trigger and of the digest flipped: DENIED; the stored nonce
 *   ("auth" record written directly, and the nonce our Chal gave the server
 *   in a real session) and the empty nonce when none is stored; allocation
 *   failures: NOMEM, nothing leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "support_dm.h"
#include "support_store.h"

#define SRV "dmserver"
#define SECRET "server-secret"
#define URL "https://dm.example/omadm"

typedef struct fx {
    t_env_t e;
    tstore_t store;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    t_env_init(&f->e);
    tstore_init(&f->store);
    f->e.storage = &f->store.api;
    f->e.cfg.dev_id = "dev-1";
    snprintf(f->e.server, sizeof f->e.server, SRV);
    t_env_start(&f->e);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    t_env_done(&f->e);
    tstore_free(&f->store);
    free(f);
    return 0;
}

/* ---- building notifications (independently of the engine) ---- */

typedef struct nspec {
    unsigned version, ui_mode, initiator, session_id;
    uint32_t future;           /* 27 bits */
    const char *server_id;
    size_t server_id_len;      /* bytes of server_id (may hold a NUL) */
    const uint8_t *vendor;
    size_t vendor_len;
} nspec_t;

/* The notification without a digest (16 zero bytes); malloc'ed. */
static uint8_t *build(const nspec_t *s, size_t *len)
{
    *len = 16 + 8 + s->server_id_len + s->vendor_len;
    uint8_t *m = calloc(1, *len);
    uint64_t h = (uint64_t)(s->version & 0x3ff) << 54 | (uint64_t)(s->ui_mode & 3) << 52 |
                 (uint64_t)(s->initiator & 1) << 51 | (uint64_t)(s->future & 0x7ffffff) << 24 |
                 (uint64_t)(s->session_id & 0xffff) << 8 | (uint64_t)(s->server_id_len & 0xff);
    for (int i = 0; i < 8; i++)
        m[16 + i] = (uint8_t)(h >> (56 - 8 * i));
    memcpy(m + 24, s->server_id, s->server_id_len);
    if (s->vendor_len)
        memcpy(m + 24 + s->server_id_len, s->vendor, s->vendor_len);
    return m;
}

static void md5(const void *d, size_t n, uint8_t out[16])
{
    unsigned len = 0;
    assert_true(EVP_Digest(d, n, out, &len, EVP_md5(), NULL));
    assert_int_equal(len, 16);
}

static void b64(const uint8_t in[16], char out[25])
{
    assert_int_equal(EVP_EncodeBlock((unsigned char *)out, in, 16), 24);
}

/* digest = H(B64(H(id:secret)):nonce:B64(H(trigger))) into m[0..15]. */
static void sign(uint8_t *m, size_t len, const char *id, const char *secret,
                 const uint8_t *nonce, size_t nonce_len)
{
    uint8_t h[16];
    char cred[25], trig[25];
    char *idpw = t_strf("%s:%s", id, secret);
    md5(idpw, strlen(idpw), h);
    free(idpw);
    b64(h, cred);
    md5(m + 16, len - 16, h);
    b64(h, trig);
    size_t n = 24 + 1 + nonce_len + 1 + 24;
    uint8_t *text = malloc(n);
    memcpy(text, cred, 24);
    text[24] = ':';
    if (nonce_len)
        memcpy(text + 25, nonce, nonce_len);
    text[25 + nonce_len] = ':';
    memcpy(text + 26 + nonce_len, trig, 24);
    md5(text, n, m);
    free(text);
}

static const nspec_t plain = {12, 1, 1, 4242, 0, SRV, sizeof SRV - 1, NULL, 0};

/* A signed notification of spec with the empty nonce. */
static uint8_t *signed_one(const nspec_t *s, size_t *len)
{
    uint8_t *m = build(s, len);
    sign(m, *len, SRV, SECRET, NULL, 0);
    return m;
}

/* The engine's "auth" record with this server nonce (raw bytes). */
static void store_nonce(fx_t *f, const uint8_t *nonce, size_t n)
{
    char enc[128] = "";
    if (n)
        EVP_EncodeBlock((unsigned char *)enc, nonce, (int)n);
    char *rec = t_strf("omadm-auth 1\ncounter 7\nclient-nonce \nserver-nonce %s\n", enc);
    tstore_set(&f->store, "auth", rec, strlen(rec));
    free(rec);
}

/* ---- parse ---- */

static void check_fields(const nspec_t *s)
{
    size_t len;
    uint8_t *m = build(s, &len);
    omadm_notification_t n;
    assert_int_equal(omadm_notification_parse(m, len, &n), OMADM_OK);
    assert_int_equal(n.version, s->version);
    assert_int_equal(n.ui_mode, s->ui_mode);
    assert_int_equal(n.initiator, s->initiator);
    assert_int_equal(n.session_id, s->session_id);
    assert_int_equal(strlen(n.server_id), s->server_id_len);
    assert_memory_equal(n.server_id, s->server_id, s->server_id_len);
    assert_int_equal(n.vendor_len, s->vendor_len);
    if (s->vendor_len) {
        assert_ptr_equal(n.vendor, m + 24 + s->server_id_len); /* borrowed */
        assert_memory_equal(n.vendor, s->vendor, s->vendor_len);
    }
    free(m);
}

static void test_parse_fields(void **state)
{
    (void)state;
    char id255[256];
    memset(id255, 'x', 255);
    id255[0] = 'A';
    id255[254] = 'Z';
    id255[255] = 0;
    static const uint8_t body[] = {0x00, 0xff, 0x10, ':', 0x00};
    const nspec_t cases[] = {
        plain,
        {12, 0, 0, 0, 0, SRV, 8, NULL, 0},
        {12, 2, 1, 65535, 0, SRV, 8, NULL, 0},
        {12, 3, 0, 1, 0, "s", 1, NULL, 0},
        {0, 0, 0, 0, 0, "", 0, NULL, 0},
        {1023, 3, 1, 65535, 0x7ffffff, id255, 255, body, sizeof body},  /* every bit set */
        {11, 1, 0, 0x8001, 0x5555555, SRV, 8, body, sizeof body},
        {12, 1, 1, 12345, 0, id255, 255, NULL, 0},
        {12, 2, 0, 0x00ff, 0, "", 0, body, sizeof body},                   /* empty server id */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_fields(&cases[i]);
}

/* Every single header field set alone: no bleeding into its neighbours. */
static void test_parse_isolated_bits(void **state)
{
    (void)state;
    for (unsigned ui = 0; ui < 4; ui++) {
        nspec_t s = {0, ui, 0, 0, 0, "", 0, NULL, 0};
        check_fields(&s);
    }
    nspec_t s = {0, 0, 1, 0, 0, "", 0, NULL, 0};
    check_fields(&s);
    for (unsigned b = 0; b < 10; b++) {
        nspec_t v = {1u << b, 0, 0, 0, 0, "", 0, NULL, 0};
        check_fields(&v);
    }
    for (unsigned b = 0; b < 16; b++) {
        nspec_t v = {0, 0, 0, 1u << b, 0, "", 0, NULL, 0};
        check_fields(&v);
    }
    for (unsigned b = 0; b < 27; b++) {
        nspec_t v = {0, 0, 0, 0, 1u << b, "", 0, NULL, 0};
        check_fields(&v);
    }
}

/* Every prefix of a valid notification, each in a block of its own size. */
static void test_parse_truncated(void **state)
{
    fx_t *f = *state;
    static const uint8_t body[] = "vendor body";
    nspec_t s = plain;
    s.vendor = body;
    s.vendor_len = sizeof body - 1;
    size_t len;
    uint8_t *m = signed_one(&s, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, m, n);
        omadm_notification_t out;
        omadm_error_t want = n < 24 + 8 ? OMADM_E_MALFORMED : OMADM_OK;
        assert_int_equal(omadm_notification_parse(n ? cut : NULL, n, &out), want);
        if (want) {
            assert_int_equal(out.server_id[0], 0);
        } else {
            assert_string_equal(out.server_id, SRV);
            assert_int_equal(out.vendor_len, n - 32);
        }
        /* the vendor part is cut short: the digest no longer fits */
        assert_int_equal(omadm_notification_verify(f->e.dm, n ? cut : NULL, n, SRV, SECRET),
                         want ? OMADM_E_MALFORMED : OMADM_E_DENIED);
        free(cut);
    }
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    free(m);
}

static void test_parse_server_id_too_long(void **state)
{
    (void)state;
    /* length byte larger than what follows, by one and by a lot */
    for (unsigned id_len = 1; id_len < 256; id_len++) {
        for (size_t have = 0; have < id_len && have < 40; have++) {
            size_t len = 24 + have;
            uint8_t *m = calloc(1, len);
            memset(m + 24, 'a', have);
            m[16] = 12 >> 2;
            m[17] = (uint8_t)(12 << 6);
            m[23] = (uint8_t)id_len;
            omadm_notification_t n;
            assert_int_equal(omadm_notification_parse(m, len, &n), OMADM_E_MALFORMED);
            free(m);
        }
    }
    /* a NUL inside the server ID */
    nspec_t s = plain;
    s.server_id = "dm\0server";
    s.server_id_len = 9;
    size_t len;
    uint8_t *m = build(&s, &len);
    omadm_notification_t n;
    assert_int_equal(omadm_notification_parse(m, len, &n), OMADM_E_MALFORMED);
    free(m);
}

static void test_args(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint8_t *m = signed_one(&plain, &len);
    omadm_notification_t n;
    assert_int_equal(omadm_notification_parse(m, len, NULL), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_notification_parse(NULL, len, &n), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_notification_parse(NULL, 0, &n), OMADM_E_MALFORMED);
    assert_int_equal(omadm_notification_verify(NULL, m, len, SRV, SECRET), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, NULL, SECRET),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, NULL), OMADM_E_INVALID_ARG);
    free(m);
}

/* ---- verify ---- */

static void test_verify_good(void **state)
{
    fx_t *f = *state;
    static const uint8_t body[] = {1, 2, 3, 0, 4};
    nspec_t s = plain;
    s.vendor = body;
    s.vendor_len = sizeof body;
    size_t len;
    uint8_t *m = signed_one(&s, &len);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    free(m);
    /* a session ID at both ends, an empty vendor body */
    s = plain;
    s.session_id = 65535;
    m = signed_one(&s, &len);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    free(m);
    s.session_id = 0;
    m = signed_one(&s, &len);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    free(m);
}

static void test_verify_wrong_secret(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint8_t *m = signed_one(&plain, &len);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, "server-secreT"),
                     OMADM_E_DENIED);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, ""), OMADM_E_DENIED);
    /* signed by the right server, checked as another one */
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, "other", SECRET), OMADM_E_DENIED);
    free(m);
    /* another server's notification, signed with its own name: not ours */
    nspec_t s = plain;
    s.server_id = "other";
    s.server_id_len = 5;
    m = build(&s, &len);
    sign(m, len, "other", SECRET, NULL, 0);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, "other", SECRET), OMADM_OK);
    free(m);
}

static void test_verify_flipped_bits(void **state)
{
    fx_t *f = *state;
    static const uint8_t body[] = "body";
    nspec_t s = plain;
    s.vendor = body;
    s.vendor_len = sizeof body - 1;
    size_t len;
    uint8_t *m = signed_one(&s, &len);
    for (size_t bit = 0; bit < len * 8; bit++) {
        uint8_t *x = malloc(len);
        memcpy(x, m, len);
        x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        omadm_error_t e = omadm_notification_verify(f->e.dm, x, len, SRV, SECRET);
        /* a flip in the length byte may make the server ID not fit */
        if (bit / 8 == 23 && e == OMADM_E_MALFORMED)
            e = OMADM_E_DENIED;
        assert_int_equal(e, OMADM_E_DENIED);
        free(x);
    }
    free(m);
}

static void test_verify_stored_nonce(void **state)
{
    fx_t *f = *state;
    static const uint8_t nonce[] = {0x00, ':', 0xff, 0x10, 'n', 0x00, 0x7f, 0x80, 1, 2, 3, 4};
    store_nonce(f, nonce, sizeof nonce);
    size_t len;
    uint8_t *m = build(&plain, &len);
    sign(m, len, SRV, SECRET, nonce, sizeof nonce);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    /* the empty nonce, or a default one, is not the stored one */
    sign(m, len, SRV, SECRET, NULL, 0);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    sign(m, len, SRV, SECRET, (const uint8_t *)"0x00000000", 10);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    static const uint8_t zero[4] = {0};
    sign(m, len, SRV, SECRET, zero, sizeof zero);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    /* a record without a server nonce: the empty nonce */
    store_nonce(f, NULL, 0);
    sign(m, len, SRV, SECRET, NULL, 0);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    sign(m, len, SRV, SECRET, (const uint8_t *)"0x00000000", 10);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    free(m);
}

/* A stored record that cannot be read, or a storage hook that fails, is
 * never checked as if there were no nonce, and the error names the cause. */
static void test_verify_unreadable_record(void **state)
{
    fx_t *f = *state;
    size_t len;
    uint8_t *m = signed_one(&plain, &len); /* would pass with the empty nonce */
    static const char *const damaged[] = {
        "",                                                   /* empty */
        "omadm-auth\nserver-nonce AAAA\n",                    /* no version */
        "something else",
        "omadm-auth 1\ncounter 7\nserver-nonce !!not base64\n", /* a nonce that does not decode */
        "omadm-auth 1\nserver-nonce "
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        tstore_set(&f->store, "auth", damaged[i], strlen(damaged[i]));
        assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_CORRUPT);
    }
    /* a later version's record: not damaged, not read either */
    tstore_set(&f->store, "auth", "omadm-auth 2\nserver-nonce AAAA\n", 31);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET),
                     OMADM_E_NEWER_FORMAT);
    store_nonce(f, NULL, 0);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    f->store.fail_load = true;
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_STORAGE);
    f->store.fail_load = false;
    free(m);
}

static void test_verify_no_storage(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e); /* no storage hook: no nonce */
    size_t len;
    uint8_t *m = signed_one(&plain, &len);
    assert_int_equal(omadm_notification_verify(e.dm, m, len, SRV, SECRET), OMADM_OK);
    free(m);
    t_env_done(&e);
}

/* The NextNonce of the reply's Chal, decoded. */
static size_t reply_nonce(const char *raw, uint8_t *out)
{
    const char *n = strstr(raw, "<NextNonce");
    assert_non_null(n);
    n = strchr(n, '>') + 1;
    const char *end = strstr(n, "</NextNonce>");
    assert_non_null(end);
    size_t tl = (size_t)(end - n);
    int got = EVP_DecodeBlock(out, (const unsigned char *)n, (int)tl);
    assert_true(got >= 0);
    size_t pad = (tl >= 1 && n[tl - 1] == '=') + (tl >= 2 && n[tl - 2] == '=');
    return (size_t)got - pad;
}

/* The nonce is the one our Chal gave the server (md5 server credentials),
 * in the session and in the next process. */
static void test_verify_nonce_from_challenge(void **state)
{
    fx_t *f = *state;
    const omadm_account_t acc = {.server_url = URL, .server_id = SRV,
                                 .server_auth = OMADM_AUTH_MD5, .server_secret = SECRET};
    uint8_t *p1 = NULL;
    size_t p1_len = 0;
    assert_int_equal(omadm_session_begin(f->e.dm, &acc, 1, "77", &p1, &p1_len), OMADM_OK);
    omadm_buffer_free(f->e.dm, p1);
    snprintf(f->e.session_id, sizeof f->e.session_id, "77");
    f->e.msg_id = 1;
    /* no Cred: 407 with a Chal carrying a new nonce */
    assert_int_equal(t_send(&f->e, true, T_GET("2", "./DevInfo/DevId")), OMADM_OK);
    assert_int_equal(t_code(&f->e.reply, "0"), 407);
    uint8_t nonce[64];
    size_t nlen = reply_nonce(f->e.reply.raw, nonce);
    assert_int_equal(nlen, 16);

    size_t len;
    uint8_t *m = build(&plain, &len);
    sign(m, len, SRV, SECRET, nonce, nlen);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    /* a new process on the same storage */
    omadm_free(f->e.dm);
    f->e.dm = NULL;
    t_reply_free(&f->e.reply);
    assert_int_equal(omadm_new(&f->e.cfg, &f->e.plat, f->e.storage, &f->e.dm), OMADM_OK);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_OK);
    sign(m, len, SRV, SECRET, NULL, 0);
    assert_int_equal(omadm_notification_verify(f->e.dm, m, len, SRV, SECRET), OMADM_E_DENIED);
    free(m);
}

/* Allocation N fails: NOMEM, or DENIED when the stored nonce could not be
 * read (it reads as no nonce), or OK when the allocation was not needed
 * (the client nonce of the record); a wrong digest never verifies;
 * nothing leaks. */
static void test_verify_alloc_failures(void **state)
{
    fx_t *f = *state;
    static const uint8_t nonce[] = "0123456789abcdef";
    store_nonce(f, nonce, 16);
    size_t len;
    uint8_t *good = build(&plain, &len), *bad = build(&plain, &len);
    sign(good, len, SRV, SECRET, nonce, 16);
    sign(bad, len, SRV, "wrong", nonce, 16);
    long base = f->e.alloc.calls;
    assert_int_equal(omadm_notification_verify(f->e.dm, good, len, SRV, SECRET), OMADM_OK);
    long needed = f->e.alloc.calls - base;
    assert_true(needed > 0);
    long before = f->e.alloc.outstanding;
    unsigned nomem = 0;
    for (long n = 1; n <= needed; n++) {
        f->e.alloc.fail_at = f->e.alloc.calls + n;
        omadm_error_t e = omadm_notification_verify(f->e.dm, good, len, SRV, SECRET);
        assert_true(e == OMADM_OK || e == OMADM_E_NOMEM || e == OMADM_E_DENIED);
        nomem += e == OMADM_E_NOMEM;
        assert_int_equal(f->e.alloc.outstanding, before);
        f->e.alloc.fail_at = f->e.alloc.calls + n;
        e = omadm_notification_verify(f->e.dm, bad, len, SRV, SECRET);
        assert_true(e == OMADM_E_NOMEM || e == OMADM_E_DENIED);
        assert_int_equal(f->e.alloc.outstanding, before);
    }
    assert_true(nomem > 0);
    f->e.alloc.fail_at = 0;
    assert_int_equal(omadm_notification_verify(f->e.dm, good, len, SRV, SECRET), OMADM_OK);
    free(good);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_isolated_bits),
        cmocka_unit_test_setup_teardown(test_parse_truncated, setup, teardown),
        cmocka_unit_test(test_parse_server_id_too_long),
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_flipped_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_stored_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_unreadable_record, setup, teardown),
        cmocka_unit_test(test_verify_no_storage),
        cmocka_unit_test_setup_teardown(test_verify_nonce_from_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
