/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scep_drive.c - a file-based driver for csp/scep_msg.c, used by
 * tests/scripts/test-scep-msg-live.sh against a real SCEP server.  It only
 * builds and parses bytes; the script moves them with curl.
 *
 *   scep_drive caps CAPS_FILE [HASH_FAMILIES]
 *       prints "cipher=... digest=... post=0|1"
 *   scep_drive url BASE OPERATION [MESSAGE]
 *       prints the GET URL; MESSAGE is a file for PKIOperation, else text
 *   scep_drive cacert CA_FILE [THUMBPRINT [ROOT_DER...]]
 *       prints the set and roles; with THUMBPRINT exits 1 unless it matches
 *   scep_drive request DIR CAPS_FILE CA_FILE SUBJECT CHALLENGE [BITS [FAMILIES [SAN]]]
 *       new key, CSR, self-signed signer, PKCSReq; writes DIR/key.der,
 *       signer.der, csr.der, request.der, nonce.bin, txid, algs
 *   scep_drive poll DIR CA_FILE
 *       CertPoll for the transaction in DIR (same files); writes DIR/poll.der
 *       and a new DIR/nonce.bin
 *   scep_drive reply DIR CA_FILE REPLY_FILE
 *       checks the CertRep; prints "status=... failinfo=... cipher=...
 *       digest=..." (and "warning=..."), writes DIR/issued.der on SUCCESS;
 *       exit 0 when the reply is authentic (any status), 1 otherwise
 * The host clock (time()) is used for the signer's validity and chain checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csp/scep_msg.h"
#include "platform.h"

/* The library's default platform table (libc allocator, time(), OpenSSL's
 * RNG), for the calls that take one. */
static omadm_platform_t P;

static int die(const char *what, scep_err_t err, const char *why)
{
    fprintf(stderr, "scep_drive: %s: %s (%s)\n", what, scep_strerror(err), why ? why : "-");
    return 1;
}

static int read_file(const char *path, scep_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "scep_drive: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *d = malloc(cap + 1);
    for (;;) {
        if (!d)
            break;
        n += fread(d + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *nd = realloc(d, 2 * cap + 1);
        if (!nd) {
            free(d);
            d = NULL;
            break;
        }
        d = nd;
        cap *= 2;
    }
    fclose(f);
    if (!d)
        return -1;
    d[n] = 0;
    out->data = d;
    out->len = n;
    return 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "scep_drive: cannot write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int read_in(const char *dir, const char *name, scep_buf_t *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_file(path, out);
}

static int cmd_caps(int argc, char **argv)
{
    scep_buf_t caps = {0};
    if (argc < 1 || read_file(argv[0], &caps))
        return 2;
    unsigned flags = scep_caps_parse((const char *)caps.data, caps.len);
    scep_cipher_t c;
    scep_digest_t d;
    const char *why = NULL;
    scep_err_t err = scep_caps_choose(flags, argc > 1 ? argv[1] : NULL, &c, &d, &why);
    scep_buf_free(&P, &caps);
    if (err)
        return die("caps", err, why);
    printf("cipher=%s digest=%s post=%d\n", scep_cipher_name(c), scep_digest_name(d),
           scep_caps_post(flags));
    return 0;
}

static int cmd_url(int argc, char **argv)
{
    scep_buf_t msg = {0};
    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[1], "PKIOperation") != 0) {   /* a text message */
        msg.data = (uint8_t *)strdup(argv[2]);
        msg.len = msg.data ? strlen(argv[2]) : 0;
    } else if (argc > 2 && read_file(argv[2], &msg)) {
        return 2;
    }
    char *url = NULL;
    const char *why = NULL;
    scep_err_t err = scep_url_get(&P, argv[0], argv[1], argc > 2 ? msg.data : NULL, msg.len, &url, &why);
    scep_buf_free(&P, &msg);
    if (err)
        return die("url", err, why);
    printf("%s\n", url);
    plat_free(&P, url);
    return 0;
}

static int load_set(const char *path, scep_certset_t **set)
{
    scep_buf_t der = {0};
    const char *why = NULL;
    if (read_file(path, &der))
        return 2;
    scep_err_t err = scep_cacert_parse(&P, der.data, der.len, set, &why);
    scep_buf_free(&P, &der);
    return err ? die("GetCACert", err, why) : 0;
}

static int cmd_cacert(int argc, char **argv)
{
    scep_certset_t *set = NULL;
    if (argc < 1 || load_set(argv[0], &set))
        return 2;
    char sub[256], thumb[SCEP_THUMB_LEN + 1];
    printf("certs=%zu\n", scep_certset_count(set));
    for (size_t i = 0; i < scep_certset_count(set); i++) {
        scep_cert_thumbprint(scep_certset_get(set, i), thumb);
        printf("cert[%zu]=%s sha1=%s\n", i, scep_cert_subject(scep_certset_get(set, i), sub, sizeof sub), thumb);
    }
    printf("recipient=%s\n", scep_cert_subject(scep_certset_recipient(set), sub, sizeof sub));
    printf("verifier=%s\n", scep_cert_subject(scep_certset_verifier(set), sub, sizeof sub));
    int rc = 0;
    if (argc > 1) {
        size_t n = (size_t)(argc - 2);
        scep_blob_t *roots = calloc(n + 1, sizeof *roots);
        scep_buf_t *bufs = calloc(n + 1, sizeof *bufs);
        for (size_t i = 0; i < n; i++)
            if (read_file(argv[2 + i], &bufs[i]) == 0)
                roots[i] = (scep_blob_t){bufs[i].data, bufs[i].len};
        const char *why = NULL;
        scep_err_t err = scep_cacert_match_thumbprint(set, argv[1], roots, n, (int64_t)time(NULL), &why);
        printf("pin=%s\n", err ? why : "ok");
        rc = err ? 1 : 0;
        for (size_t i = 0; i < n; i++)
            scep_buf_free(&P, &bufs[i]);
        free(bufs);
        free(roots);
    }
    scep_certset_free(&P, set);
    return rc;
}

typedef struct txn {
    scep_key_t *key;
    scep_cert_t *signer;
    scep_buf_t csr;
    char txid[SCEP_TXID_LEN + 8];
    scep_cipher_t cipher;
    scep_digest_t digest;
} txn_t;

static void txn_free(txn_t *t)
{
    scep_key_free(&P, t->key);
    scep_cert_free(&P, t->signer);
    scep_buf_free(&P, &t->csr);
}

static int txn_save(const char *dir, const txn_t *t)
{
    scep_buf_t key = {0}, sig = {0};
    char algs[32];
    int rc = scep_key_to_der(&P, t->key, &key, NULL) || scep_cert_to_der(&P, t->signer, &sig, NULL) ||
             write_file(dir, "key.der", key.data, key.len) ||
             write_file(dir, "signer.der", sig.data, sig.len) ||
             write_file(dir, "csr.der", t->csr.data, t->csr.len) ||
             write_file(dir, "txid", t->txid, strlen(t->txid));
    snprintf(algs, sizeof algs, "%d %d", (int)t->cipher, (int)t->digest);
    rc = rc || write_file(dir, "algs", algs, strlen(algs));
    scep_buf_free(&P, &key);
    scep_buf_free(&P, &sig);
    return rc ? -1 : 0;
}

static int txn_load(const char *dir, txn_t *t)
{
    scep_buf_t key = {0}, sig = {0}, txid = {0}, algs = {0};
    int rc = -1, c = 0, d = 0;
    memset(t, 0, sizeof *t);
    if (read_in(dir, "key.der", &key) || read_in(dir, "signer.der", &sig) ||
        read_in(dir, "csr.der", &t->csr) || read_in(dir, "txid", &txid) || read_in(dir, "algs", &algs))
        goto out;
    if (scep_key_from_der(&P, key.data, key.len, &t->key, NULL) ||
        scep_cert_from_der(&P, sig.data, sig.len, &t->signer, NULL) || txid.len > SCEP_TXID_LEN ||
        sscanf((const char *)algs.data, "%d %d", &c, &d) != 2)
        goto out;
    memcpy(t->txid, txid.data, txid.len);
    t->txid[txid.len] = 0;
    t->cipher = (scep_cipher_t)c;
    t->digest = (scep_digest_t)d;
    rc = 0;
out:
    scep_buf_free(&P, &key);
    scep_buf_free(&P, &sig);
    scep_buf_free(&P, &txid);
    scep_buf_free(&P, &algs);
    return rc;
}

static int send_msg(const char *dir, const char *name, txn_t *t, const scep_certset_t *set, bool poll)
{
    scep_msg_params_t mp = {.signer_cert = t->signer, .signer_key = t->key,
                            .recipient = scep_certset_recipient(set), .cipher = t->cipher,
                            .digest = t->digest, .transaction_id = t->txid};
    uint8_t nonce[SCEP_NONCE_LEN];
    scep_buf_t msg = {0};
    const char *why = NULL;
    scep_err_t err = poll ? scep_certpoll(&P, &mp, scep_certset_issuer(set), t->csr.data, t->csr.len, nonce, &msg, &why)
                          : scep_pkcsreq(&P, &mp, t->csr.data, t->csr.len, nonce, &msg, &why);
    if (err)
        return die(poll ? "CertPoll" : "PKCSReq", err, why);
    int rc = write_file(dir, name, msg.data, msg.len) || write_file(dir, "nonce.bin", nonce, sizeof nonce);
    scep_buf_free(&P, &msg);
    return rc;
}

static int cmd_request(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    const char *dir = argv[0], *subject = argv[3], *challenge = argv[4];
    unsigned bits = argc > 5 ? (unsigned)atoi(argv[5]) : 2048;
    const char *fam = argc > 6 ? argv[6] : NULL, *san = argc > 7 ? argv[7] : NULL;
    scep_buf_t caps = {0};
    scep_certset_t *set = NULL;
    txn_t t = {0};
    const char *why = NULL;
    scep_err_t err;
    int rc = 1;
    if (read_file(argv[1], &caps) || load_set(argv[2], &set))
        goto out;
    if ((err = scep_caps_choose(scep_caps_parse((const char *)caps.data, caps.len), fam, &t.cipher,
                                &t.digest, &why))) {
        rc = die("caps", err, why);
        goto out;
    }
    scep_csr_params_t p = {.subject = subject, .san = san, .key_usage = 0xA0,
                           .eku = "1.3.6.1.5.5.7.3.2", .challenge = challenge,
                           .valid_period = "Days", .valid_units = 30, .digest = t.digest};
    if ((err = scep_keygen_rsa(&P, bits, &t.key, &why)) ||
        (err = scep_csr(&P, t.key, &p, &t.csr, &why)) ||
        (err = scep_self_signed(&P, t.key, subject, t.digest, (int64_t)time(NULL), &t.signer, &why)) ||
        (err = scep_transaction_id(t.key, t.txid, &why))) {
        rc = die("request", err, why);
        goto out;
    }
    if (txn_save(dir, &t) || send_msg(dir, "request.der", &t, set, false))
        goto out;
    printf("txid=%s cipher=%s digest=%s\n", t.txid, scep_cipher_name(t.cipher), scep_digest_name(t.digest));
    rc = 0;
out:
    txn_free(&t);
    scep_certset_free(&P, set);
    scep_buf_free(&P, &caps);
    return rc;
}

static int cmd_poll(int argc, char **argv)
{
    txn_t t;
    scep_certset_t *set = NULL;
    if (argc < 2 || load_set(argv[1], &set))
        return 2;
    int rc = txn_load(argv[0], &t) ? 1 : send_msg(argv[0], "poll.der", &t, set, true);
    txn_free(&t);
    scep_certset_free(&P, set);
    return rc;
}

static int cmd_reply(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *dir = argv[0];
    txn_t t;
    scep_certset_t *set = NULL;
    scep_buf_t rep_der = {0}, nonce = {0};
    int rc = 1;
    if (txn_load(dir, &t) || load_set(argv[1], &set) || read_file(argv[2], &rep_der) ||
        read_in(dir, "nonce.bin", &nonce) || nonce.len != SCEP_NONCE_LEN)
        goto out;
    scep_expect_t exp = {.verifier = scep_certset_verifier(set), .ca_certs = set,
                         .transaction_id = t.txid, .nonce = nonce.data, .signer_cert = t.signer,
                         .signer_key = t.key, .csr_key = t.key, .now = (int64_t)time(NULL)};
    scep_certrep_t rep;
    const char *why = NULL;
    scep_err_t err = scep_certrep_parse(&P, rep_der.data, rep_der.len, &exp, &rep, &why);
    if (err) {
        rc = die("CertRep", err, why);
        scep_certrep_clear(&P, &rep);
        goto out;
    }
    static const char *const st[] = {"SUCCESS", "?", "FAILURE", "PENDING"};
    printf("status=%s", st[rep.status]);
    if (rep.status == SCEP_STATUS_FAILURE) {
        const char *name = scep_failinfo_name(rep.fail_info);
        printf(" failinfo=%d(%s)", rep.fail_info, name ? name : "?");
    }
    printf(" cipher=%s digest=%s\n", rep.cipher ? rep.cipher : "-", rep.digest ? rep.digest : "-");
    if (rep.warning)
        printf("warning=%s\n", rep.warning);
    rc = rep.status == SCEP_STATUS_SUCCESS ? write_file(dir, "issued.der", rep.cert.data, rep.cert.len) : 0;
    scep_certrep_clear(&P, &rep);
out:
    txn_free(&t);
    scep_certset_free(&P, set);
    scep_buf_free(&P, &rep_der);
    scep_buf_free(&P, &nonce);
    return rc;
}

int main(int argc, char **argv)
{
    plat_init(&P, NULL);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"caps", cmd_caps}, {"url", cmd_url},   {"cacert", cmd_cacert},
                {"request", cmd_request}, {"poll", cmd_poll}, {"reply", cmd_reply}};
    for (size_t i = 0; argc > 1 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) {
            int rc = cmds[i].fn(argc - 2, argv + 2);
            if (rc == 2)
                fprintf(stderr, "scep_drive %s: bad arguments or unreadable files\n", argv[1]);
            return rc;
        }
    fprintf(stderr, "usage: scep_drive caps|url|cacert|request|poll|reply ... (see the source)\n");
    return 2;
}
