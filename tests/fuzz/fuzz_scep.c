/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_scep.c - libFuzzer target: what a SCEP server sends back, through
 * the SCEP message layer (csp/scep_msg.c).  The first byte of the input
 * picks the mode (modulo 5), the rest is the payload:
 *
 *   0 GetCACaps   scep_caps_parse, scep_caps_choose for several
 *                 HashAlgorithm values and for the payload as one,
 *                 scep_caps_post.  The bits are known ones; a choice is
 *                 an offered cipher and digest of an allowed family.
 *   1 GetCACert   scep_cacert_parse, then the roles, thumbprints, subjects,
 *                 scep_cacert_match_thumbprint (the recipient's own
 *                 thumbprint, a thumbprint no certificate has, a malformed
 *                 one; the fixture CA and the payload as extra roots).  A
 *                 parsed set has 1..64 certificates, all three roles are
 *                 in it, the recipient is RSA, a single certificate is the
 *                 input byte for byte and pins itself.
 *   2 CertRep     scep_certrep_parse of the payload against two sets of
 *                 expectations: the recorded micromdm exchange
 *                 (tests/data/scep/micromdm, when it can be found) and the
 *                 harness's own fixture CA.  A refusal hands out no
 *                 certificate; an accepted SUCCESS carries a certificate
 *                 for our key signed by the CA; FAILURE has a failInfo.
 *   3 authentic   a CertRep the harness builds and signs with the fixture
 *     CertRep     CA from the payload (status, content, cipher, digest,
 *                 attributes, and what to get wrong; see build_spec), so
 *                 that the code after the signature check is reached; the
 *                 result must be the one the spec implies (e.g. SUCCESS
 *                 with the issued certificate, byte for byte; a wrong
 *                 transactionID, nonce or signer refused).
 *   4 import      scep_cert_from_der (the DER round trip and the SHA-1
 *                 thumbprint) and scep_key_from_der (PKCS#8 round trip,
 *                 transactionID).
 *
 * The fixture (two RSA-1024 test keys of fuzz_pki.c, certificates made
 * from them at start-up, a fixed clock and random generator) is the same in every
 * run, so a seed signed by the fixture CA stays authentic.  With
 * FUZZ_SCEP_SEEDS=DIR in the environment the harness also writes such
 * seeds (mode 2: SUCCESS with each cipher, PENDING, FAILURE) into DIR at
 * start-up (tests/fuzz/seeds.py uses it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "csp/scep_msg.h"
#include "fuzz_common.h"
#include "fuzz_pki.h"

/* The fixture's certificates are valid for these years. */
#define VALID_FROM "20250101000000Z"
#define VALID_TO "20350101000000Z"

static const uint8_t NONCE[SCEP_NONCE_LEN] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,
                                              0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

/* What a CertRep is checked against. */
typedef struct world {
    bool ok;
    scep_certset_t *set;
    scep_key_t *key;
    scep_cert_t *signer;
    char txid[SCEP_TXID_LEN + 1];
    uint8_t nonce[SCEP_NONCE_LEN];
    scep_expect_t exp;
} world_t;

static struct fixture {
    const omadm_platform_t *plat;
    EVP_PKEY *ca_key, *dev_key;
    X509 *ca, *issued, *signer;     /* signer: the device's request signer, as X509 */
    uint8_t *ca_der, *issued_der;
    size_t ca_der_len, issued_der_len;
    world_t own;                    /* the fixture CA and device */
    world_t mdm;                    /* the recorded micromdm exchange (ok = false if absent) */
    uint8_t *env[FUZZ_PKI_CIPHERS]; /* envelopes of {issued, ca} to signer, by fuzz_pki_ciphers */
    size_t env_len[FUZZ_PKI_CIPHERS];
    fuzz_pki_rep_t rep;             /* CertReps (mode 3): the fixture CA's to signer */
} F;

/* ---- the fixture ---- */

static void world_expect(world_t *w)
{
    w->exp = (scep_expect_t){.verifier = scep_certset_verifier(w->set), .ca_certs = w->set,
                             .transaction_id = w->txid, .nonce = w->nonce, .signer_cert = w->signer,
                             .signer_key = w->key, .csr_key = w->key, .now = FUZZ_NOW};
    w->ok = true;
}

static void load_capture(void)
{
    char dir[4200];
    if (!fuzz_pki_capture(dir, sizeof dir)) {
        fprintf(stderr, "fuzz_scep: tests/data/scep/micromdm not found (set OMADM_TOP): "
                        "mode 2 checks against the fixture CA only\n");
        return;
    }
    size_t ca_len = 0, key_len = 0, sig_len = 0, non_len = 0, tx_len = 0;
    uint8_t *ca = fuzz_pki_slurp(dir, "ca.der", &ca_len),
            *key = fuzz_pki_slurp(dir, "key.der", &key_len),
            *sig = fuzz_pki_slurp(dir, "signer.der", &sig_len),
            *non = fuzz_pki_slurp(dir, "nonce.bin", &non_len),
            *tx = fuzz_pki_slurp(dir, "txid", &tx_len);
    world_t *w = &F.mdm;
    const char *why = NULL;
    FUZZ_CHECK(ca && key && sig && non && tx && non_len == SCEP_NONCE_LEN && tx_len <= SCEP_TXID_LEN + 2,
               "%s is incomplete", dir);
    FUZZ_CHECK(scep_cacert_parse(F.plat, ca, ca_len, &w->set, &why) == SCEP_OK &&
                   scep_key_from_der(F.plat, key, key_len, &w->key, &why) == SCEP_OK &&
                   scep_cert_from_der(F.plat, sig, sig_len, &w->signer, &why) == SCEP_OK,
               "micromdm capture: %s", why);
    while (tx_len && (tx[tx_len - 1] == '\n' || tx[tx_len - 1] == '\r'))
        tx_len--;
    memcpy(w->txid, tx, tx_len);
    w->txid[tx_len] = 0;
    memcpy(w->nonce, non, SCEP_NONCE_LEN);
    world_expect(w);
    /* the capture's certificates are real ones, with real dates */
    w->exp.now = 0;
    free(ca), free(key), free(sig), free(non), free(tx);
}

static void make_fixture(void)
{
    F.plat = fuzz_platform();
    fuzz_platform_reset();
    F.ca_key = fuzz_pki_key(FUZZ_PKI_CA_KEY);
    F.dev_key = fuzz_pki_key(FUZZ_PKI_DEV_KEY);
    F.ca = fuzz_pki_cert("Fuzz SCEP CA", 1, F.ca_key, NULL, NULL, VALID_FROM, VALID_TO, true);
    F.issued = fuzz_pki_cert("fuzz device", 2, F.dev_key, F.ca, F.ca_key, VALID_FROM, VALID_TO,
                             false);
    F.ca_der = fuzz_pki_der(F.ca, &F.ca_der_len);
    F.issued_der = fuzz_pki_der(F.issued, &F.issued_der_len);
    world_t *w = &F.own;
    const char *why = NULL;
    unsigned char *kd = NULL;
    int kl = i2d_PrivateKey(F.dev_key, &kd);
    FUZZ_CHECK(kl > 0 && scep_key_from_der(F.plat, kd, (size_t)kl, &w->key, &why) == SCEP_OK,
               "device key: %s", why);
    OPENSSL_free(kd);
    FUZZ_CHECK(scep_cacert_parse(F.plat, F.ca_der, F.ca_der_len, &w->set, &why) == SCEP_OK &&
                   scep_self_signed(F.plat, w->key, "CN=fuzz device,O=Fuzz", SCEP_DIGEST_SHA256,
                                    FUZZ_NOW, &w->signer, &why) == SCEP_OK &&
                   scep_transaction_id(w->key, w->txid, &why) == SCEP_OK,
               "fixture: %s", why);
    memcpy(w->nonce, NONCE, SCEP_NONCE_LEN);
    world_expect(w);
    F.signer = fuzz_pki_x509_of(F.plat, w->signer);
    X509 *certs[2] = {F.issued, F.ca};
    size_t dlen = 0;
    uint8_t *deg = fuzz_pki_degenerate(certs, 2, &dlen);
    for (int i = 0; i < FUZZ_PKI_CIPHERS; i++) {
        F.env[i] = fuzz_pki_envelope(F.signer, deg, dlen, fuzz_pki_ciphers[i], &F.env_len[i]);
        FUZZ_CHECK(F.env[i] || i == 3, "fixture envelope %s", fuzz_pki_ciphers[i]);
    }
    OPENSSL_free(deg);
    F.rep = (fuzz_pki_rep_t){.ca = F.ca, .ca_key = F.ca_key, .other = F.signer,
                             .other_key = F.dev_key, .recipient = F.signer, .txid = w->txid,
                             .nonce = NONCE, .env = F.env, .env_len = F.env_len};
    load_capture();
}

/* ---- mode 0: GetCACaps ---- */

#define ALL_CAPS                                                                               \
    (SCEP_CAP_AES | SCEP_CAP_DES3 | SCEP_CAP_SHA1 | SCEP_CAP_SHA256 | SCEP_CAP_SHA512 |        \
     SCEP_CAP_POST | SCEP_CAP_STANDARD | SCEP_CAP_RENEWAL | SCEP_CAP_NEXT_CA)

static void choose(unsigned caps, const char *families)
{
    scep_cipher_t c = 0;
    scep_digest_t d = 0;
    const char *why = NULL;
    scep_err_t err = scep_caps_choose(caps, families, &c, &d, &why);
    FUZZ_CHECK(err == SCEP_OK || err == SCEP_E_NO_ALGORITHM || err == SCEP_E_INVALID_ARG,
               "scep_caps_choose: %s", scep_strerror(err));
    if (err != SCEP_OK) {
        FUZZ_CHECK(why != NULL, "a refusal says why");
        return;
    }
    bool aes = caps & (SCEP_CAP_AES | SCEP_CAP_STANDARD);
    FUZZ_CHECK(c == (aes ? SCEP_CIPHER_AES128_CBC : SCEP_CIPHER_DES3_CBC) &&
                   (aes || (caps & SCEP_CAP_DES3)),
               "cipher %d for caps %#x", c, caps);
    bool offered = d == SCEP_DIGEST_SHA1     ? caps & SCEP_CAP_SHA1
                   : d == SCEP_DIGEST_SHA256 ? caps & (SCEP_CAP_SHA256 | SCEP_CAP_STANDARD)
                   : d == SCEP_DIGEST_SHA512 ? caps & SCEP_CAP_SHA512
                                             : false;
    FUZZ_CHECK(offered, "digest %d not offered in caps %#x", d, caps);
    if (families && (!strcasecmp(families, "SHA-1")))
        FUZZ_CHECK(d == SCEP_DIGEST_SHA1, "SHA-1 only, got digest %d", d);
    if (families && (!strcasecmp(families, "SHA-2")))
        FUZZ_CHECK(d != SCEP_DIGEST_SHA1, "SHA-2 only, got SHA-1");
}

static void mode_caps(const uint8_t *p, size_t n)
{
    unsigned caps = scep_caps_parse((const char *)p, n);
    FUZZ_CHECK(!(caps & ~ALL_CAPS), "unknown capability bits %#x", caps);
    FUZZ_CHECK(scep_caps_post(caps) == !!(caps & (SCEP_CAP_POST | SCEP_CAP_STANDARD)),
               "scep_caps_post for %#x", caps);
    static const char *const fams[] = {NULL, "", "SHA-1", "SHA-2", "sha-1+sha-2", "SHA-3"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        choose(caps, fams[i]);
    char text[256];
    size_t tn = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, tn);
    text[tn] = 0;
    choose(caps, text);
    choose(ALL_CAPS, text);
}

/* ---- mode 1: GetCACert ---- */

static bool in_set(const scep_certset_t *set, const scep_cert_t *c)
{
    for (size_t i = 0; i < scep_certset_count(set); i++)
        if (scep_certset_get(set, i) == c)
            return true;
    return false;
}

static void check_cert(const scep_cert_t *c)
{
    char thumb[SCEP_THUMB_LEN + 1], subject[256];
    FUZZ_CHECK(scep_cert_thumbprint(c, thumb) == SCEP_OK && strlen(thumb) == SCEP_THUMB_LEN,
               "every certificate of a set has a thumbprint");
    scep_cert_subject(c, subject, sizeof subject);
    FUZZ_CHECK(memchr(subject, 0, sizeof subject) != NULL, "subject text NUL-terminated");
}

/* The input is one certificate as such (d2i_X509 takes all of it), not a
 * PKCS#7 of certificates, which may hold just one. */
static bool one_der_cert(const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)n);
    bool one = x && q == p + n;
    X509_free(x);
    ERR_clear_error();
    return one;
}

static void mode_cacert(const uint8_t *p, size_t n)
{
    scep_certset_t *set = NULL;
    const char *why = NULL;
    scep_err_t err = scep_cacert_parse(F.plat, p, n, &set, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "GetCACert: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(!set && why, "a refused GetCACert hands out nothing and says why");
        return;
    }
    size_t count = scep_certset_count(set);
    const scep_cert_t *rcpt = scep_certset_recipient(set), *ver = scep_certset_verifier(set),
                      *iss = scep_certset_issuer(set);
    FUZZ_CHECK(count >= 1 && count <= 64, "%zu certificates in a set", count);
    FUZZ_CHECK(rcpt && ver && iss && in_set(set, rcpt) && in_set(set, ver) && in_set(set, iss),
               "every role is a certificate of the set");
    FUZZ_CHECK(scep_certset_get(set, count) == NULL, "no certificate past the end");
    for (size_t i = 0; i < count; i++)
        check_cert(scep_certset_get(set, i));
    X509 *rx = fuzz_pki_x509_of(F.plat, rcpt);
    EVP_PKEY *rk = X509_get0_pubkey(rx);
    FUZZ_CHECK(rk && EVP_PKEY_get_base_id(rk) == EVP_PKEY_RSA, "the recipient is an RSA certificate");
    X509_free(rx);
    char thumb[SCEP_THUMB_LEN + 1];
    scep_cert_thumbprint(rcpt, thumb);
    if (count == 1) {
        if (one_der_cert(p, n)) { /* not a PKCS#7 holding one certificate */
            scep_buf_t der = {0};
            FUZZ_CHECK(scep_cert_to_der(F.plat, rcpt, &der, NULL) == SCEP_OK && der.len == n &&
                           !memcmp(der.data, p, n),
                       "a single certificate is the input byte for byte");
            scep_buf_free(F.plat, &der);
        }
        err = scep_cacert_match_thumbprint(set, thumb, NULL, 0, 0, &why);
        FUZZ_CHECK(err == SCEP_OK, "a single certificate pins itself: %s", why);
    }
    scep_blob_t roots[2] = {{F.ca_der, F.ca_der_len}, {p, n}};
    err = scep_cacert_match_thumbprint(set, thumb, roots, 2, FUZZ_NOW, &why);
    FUZZ_CHECK(err == SCEP_OK || err == SCEP_E_UNTRUSTED, "thumbprint match: %s", scep_strerror(err));
    err = scep_cacert_match_thumbprint(set, "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00",
                                       roots, 2, 0, &why);
    FUZZ_CHECK(err == SCEP_E_UNTRUSTED, "no certificate has the SHA-1 0000...: %s", scep_strerror(err));
    err = scep_cacert_match_thumbprint(set, "not a thumbprint", NULL, 0, 0, &why);
    FUZZ_CHECK(err == SCEP_E_INVALID_ARG, "a malformed thumbprint: %s", scep_strerror(err));
    scep_certset_free(F.plat, set);
}

/* ---- modes 2 and 3: CertRep ---- */

/* The checks any result of scep_certrep_parse must pass. */
static scep_err_t certrep(const world_t *w, const uint8_t *p, size_t n, scep_certrep_t *rep)
{
    const char *why = NULL;
    scep_err_t err = scep_certrep_parse(F.plat, p, n, &w->exp, rep, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "CertRep: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(why && !rep->cert.data && !rep->cert.len,
                   "a refused CertRep hands out no certificate and says why");
        return err;
    }
    FUZZ_CHECK(rep->digest != NULL, "an accepted CertRep names its digest");
    FUZZ_CHECK(memchr(rep->fail_text, 0, sizeof rep->fail_text) != NULL, "failInfoText NUL-terminated");
    for (const char *c = rep->fail_text; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "control character in failInfoText");
    switch (rep->status) {
    case SCEP_STATUS_SUCCESS: {
        FUZZ_CHECK(rep->cert.data && rep->cert.len, "SUCCESS without a certificate");
        const unsigned char *q = rep->cert.data;
        X509 *x = d2i_X509(NULL, &q, (long)rep->cert.len);
        FUZZ_CHECK(x && q == rep->cert.data + rep->cert.len, "the issued certificate is one DER certificate");
        scep_buf_t kd = {0};
        FUZZ_CHECK(scep_key_to_der(F.plat, w->key, &kd, NULL) == SCEP_OK, "key DER");
        const unsigned char *kp = kd.data;
        EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &kp, (long)kd.len);
        FUZZ_CHECK(k && EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1, "the issued certificate is for our key");
        if (w == &F.own)
            FUZZ_CHECK(X509_verify(x, F.ca_key) == 1, "the issued certificate is signed by the CA");
        EVP_PKEY_free(k);
        scep_buf_free(F.plat, &kd);
        X509_free(x);
        break;
    }
    case SCEP_STATUS_FAILURE:
        FUZZ_CHECK(rep->fail_info >= 0 && !rep->cert.data, "FAILURE: failInfo %d", rep->fail_info);
        break;
    case SCEP_STATUS_PENDING:
        FUZZ_CHECK(!rep->cert.data, "PENDING with a certificate");
        break;
    default:
        fuzz_fail(__FILE__, __LINE__, "status", "unknown status %d", (int)rep->status);
    }
    ERR_clear_error();
    return SCEP_OK;
}

static void mode_certrep(const uint8_t *p, size_t n)
{
    const world_t *worlds[2] = {&F.own, &F.mdm};
    for (int i = 0; i < 2; i++) {
        if (!worlds[i]->ok)
            continue;
        scep_certrep_t rep;
        certrep(worlds[i], p, n, &rep);
        scep_certrep_clear(F.plat, &rep);
    }
}

/*
 * Mode 3.  The payload is a spec:
 *   s[0] bits 0-1 pkiStatus: 0 SUCCESS, 1 FAILURE, 2 PENDING, 3 text[0] as is
 *        bits 2-3 content: 0 envelope of {issued, CA}; 1 envelope of body;
 *                 2 body as the content itself; 3 none
 *        bits 4-5 envelope cipher: AES-128, 3DES, AES-256, single DES
 *        bit 6 wrong transactionID, bit 7 wrong recipientNonce
 *   s[1] bits 0-2 digest: SHA-1, SHA-224, SHA-256, SHA-384, SHA-512, MD5, SHA-1, SHA-256
 *        bit 3 SignerInfo algorithm relabelled sha256WithRSAEncryption
 *        bit 4 signed by the device's key (not the CA)
 *        bit 5 messageType text[1] instead of "3"
 *        bit 6 failInfo text[2] instead of "2"
 *        bit 7 failInfoText text[3]
 *   s[2] length of text, s[3..] text (fields separated by '|'), then body.
 */
static bool numeric(const char *t, size_t max)
{
    size_t n = strlen(t);
    return n && n <= max && strspn(t, "0123456789") == n;
}

static void mode_authentic(const uint8_t *p, size_t n)
{
    fuzz_pki_spec_t s;
    fuzz_pki_spec_parse(p, n, &s);
    size_t len = 0;
    uint8_t *der = fuzz_pki_certrep(&F.rep, &s, &len);
    if (!der)
        return;
    scep_certrep_t rep;
    scep_err_t err = certrep(&F.own, der, len, &rep);
    if (fuzz_pki_spec_refused(&s)) {
        FUZZ_CHECK(err != SCEP_OK, "a CertRep with a wrong signer, digest, messageType, "
                                   "transactionID or nonce is refused");
    } else if (s.status == 2) {
        FUZZ_CHECK(err == SCEP_OK && rep.status == SCEP_STATUS_PENDING, "PENDING: %s",
                   scep_strerror(err));
    } else if (s.status == 1) {
        const char *fi = fuzz_pki_spec_fail_info(&s);
        bool good = numeric(fi, 6);
        FUZZ_CHECK(good ? err == SCEP_OK && rep.status == SCEP_STATUS_FAILURE &&
                              rep.fail_info == atoi(fi)
                        : err != SCEP_OK,
                   "FAILURE with failInfo '%s': %s", fi, scep_strerror(err));
    } else if (s.status == 0 && s.content == 0 && F.env[s.cipher]) {
        FUZZ_CHECK(err == SCEP_OK && rep.status == SCEP_STATUS_SUCCESS &&
                       rep.cert.len == F.issued_der_len &&
                       !memcmp(rep.cert.data, F.issued_der, F.issued_der_len),
                   "SUCCESS with the issued certificate: %s", scep_strerror(err));
        FUZZ_CHECK((s.cipher == 3) == (rep.warning != NULL), "the single-DES warning");
    } else if (s.status == 0 && s.content == 3) {
        FUZZ_CHECK(err != SCEP_OK, "SUCCESS without content is refused");
    }
    scep_certrep_clear(F.plat, &rep);
    free(der);
}

/* ---- mode 4: certificates and keys ---- */

static void mode_import(const uint8_t *p, size_t n)
{
    const char *why = NULL;
    scep_cert_t *c = NULL;
    scep_err_t err = scep_cert_from_der(F.plat, p, n, &c, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "certificate: out of memory without a failed allocation");
    if (err == SCEP_OK) {
        scep_buf_t der = {0};
        FUZZ_CHECK(scep_cert_to_der(F.plat, c, &der, NULL) == SCEP_OK && der.len == n &&
                       !memcmp(der.data, p, n),
                   "a certificate is its input byte for byte");
        char thumb[SCEP_THUMB_LEN + 1], want[SCEP_THUMB_LEN + 1];
        unsigned char md[20];
        FUZZ_CHECK(EVP_Digest(p, n, md, NULL, EVP_sha1(), NULL), "SHA-1");
        for (int i = 0; i < 20; i++)
            snprintf(want + 2 * i, 3, "%02X", md[i]);
        FUZZ_CHECK(scep_cert_thumbprint(c, thumb) == SCEP_OK && !strcmp(thumb, want),
                   "the thumbprint is the SHA-1 of the DER");
        scep_buf_free(F.plat, &der);
        scep_cert_free(F.plat, c);
    } else {
        FUZZ_CHECK(!c && why, "a refused certificate: nothing handed out, a reason");
    }
    scep_key_t *k = NULL;
    err = scep_key_from_der(F.plat, p, n, &k, &why);
    FUZZ_CHECK(err != SCEP_E_NOMEM, "key: out of memory without a failed allocation");
    if (err != SCEP_OK) {
        FUZZ_CHECK(!k && why, "a refused key: nothing handed out, a reason");
        return;
    }
    scep_buf_t kd = {0};
    err = scep_key_to_der(F.plat, k, &kd, &why);
    if (err == SCEP_OK) {
        scep_key_t *k2 = NULL;
        FUZZ_CHECK(scep_key_from_der(F.plat, kd.data, kd.len, &k2, &why) == SCEP_OK,
                   "a key's own PKCS#8 loads again: %s", why);
        scep_key_free(F.plat, k2);
    }
    char txid[SCEP_TXID_LEN + 1];
    if (scep_transaction_id(k, txid, &why) == SCEP_OK)
        FUZZ_CHECK(strlen(txid) == SCEP_TXID_LEN, "transactionID length");
    scep_buf_free(F.plat, &kd);
    scep_key_free(F.plat, k);
    ERR_clear_error();
}

/* ---- seeds ---- */

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    fputc(mode, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Authentic CertReps as mode-2 inputs, and their specs as mode-3 inputs. */
static void write_seeds(const char *dir)
{
    static const struct {
        const char *name;
        uint8_t s0, s1;
        const char *text;
    } seeds[] = {
        {"certrep-success-aes", 0x00, 0x02, ""},
        {"certrep-success-3des", 0x10, 0x00, ""},
        {"certrep-success-aes256-sha512", 0x20, 0x0c, ""},
        {"certrep-success-des", 0x30, 0x00, ""},
        {"certrep-pending", 0x0e, 0x02, ""},
        {"certrep-failure", 0x0d, 0xc2, "||4|bad time"},
        {"certrep-enveloped-body", 0x04, 0x02, ""},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        uint8_t spec[4096] = {seeds[i].s0, seeds[i].s1, (uint8_t)strlen(seeds[i].text)};
        size_t sl = 3 + strlen(seeds[i].text);
        memcpy(spec + 3, seeds[i].text, strlen(seeds[i].text));
        if ((seeds[i].s0 >> 2 & 3) == 1) {
            /* a body that is a degenerate PKCS#7 of {issued, CA} */
            X509 *certs[2] = {F.issued, F.ca};
            size_t dl = 0;
            uint8_t *deg = fuzz_pki_degenerate(certs, 2, &dl);
            FUZZ_CHECK(sl + dl <= sizeof spec, "seed too long");
            memcpy(spec + sl, deg, dl);
            sl += dl;
            OPENSSL_free(deg);
        }
        char name[128];
        snprintf(name, sizeof name, "spec-%s", seeds[i].name);
        write_seed(dir, name, 3, spec, sl);
        fuzz_pki_spec_t s;
        fuzz_pki_spec_parse(spec, sl, &s);
        size_t len = 0;
        uint8_t *der = fuzz_pki_certrep(&F.rep, &s, &len);
        if (der)
            write_seed(dir, seeds[i].name, 2, der, len);
        free(der);
    }
    write_seed(dir, "cacert-fixture", 1, F.ca_der, F.ca_der_len);
    write_seed(dir, "import-issued", 4, F.issued_der, F.issued_der_len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    make_fixture();
    const char *seeds = getenv("FUZZ_SCEP_SEEDS");
    if (seeds && *seeds)
        write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_platform_reset();
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: mode_caps(p, n); break;
    case 1: mode_cacert(p, n); break;
    case 2: mode_certrep(p, n); break;
    case 3: mode_authentic(p, n); break;
    default: mode_import(p, n); break;
    }
    ERR_clear_error();
    return 0;
}
