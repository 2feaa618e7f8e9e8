/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_enroll.c - libFuzzer target: SCEP enrollment as a host drives it.
 * A server message sets up one to three enrollments (their Install
 * parameters, Exec of Enroll) on the certificate CSPs of a real store;
 * then the harness calls omadm_step() again and again (at most MAX_STEPS
 * times), moving the clock to when the step says more work falls due, and
 * the host's HTTP hook answers each request of the enrollment state machine
 * (csp/enroll_run.c: GetCACert, GetCACaps, PKCSReq, CertPoll) with the next
 * answer of the input.
 *
 * Input: two configuration bytes, then the answers, separated by NEXT.
 *   c0 bits 0-1 the world: 0, 3 the fixture CA of fuzz_pki.c pinned by its
 *               thumbprint; 1 a subordinate CA, the fixture CA as the pin
 *               installed in Root/System by the setup message; 2 the
 *               recorded micromdm exchange (tests/data/scep/micromdm; the
 *               fixture when it cannot be found)
 *      bits 2-3 the namespace: CertificateStore My/SCEP under ./Vendor and
 *               under ./Device (3), ClientCertificateInstall SCEP of the
 *               device (1) and of the user (2)
 *      bits 4-5 enrollments: 1, 2, 3, 1 (always 1 in world 2: the recorded
 *               CertRep would give two the same certificate)
 *      bit 6    ServerURL lists two URLs (both answered by the hook)
 *      bit 7    SubjectAlternativeNames, EKUMapping, ValidPeriod(Units),
 *               TemplateName too
 *   c1 bits 0-1 RetryCount 1, 3, 0, 30; bits 2-3 RetryDelay 1, 5, 60,
 *               525600 minutes; bits 4-5 HashAlgorithm SHA-2, SHA-1,
 *               SHA-1+SHA-2, SHA-3; bits 6-7 KeyUsage 160, 128, 32, 0x80A0
 *   an answer: h0, h1, payload
 *   h0 bits 0-2 what request() returns: 0-3 OMADM_HTTP_OK with a response,
 *               4 CONNECT, 5 TIMEOUT, 6 TOO_LARGE, 7 FAILED
 *      bit 3    with 0-3: the hook unlocks the store for the transfer
 *               (omadm_certstore_unlock, _relock); with 7: ABORTED
 *      bits 4-6 the body: 0, 6, 7 the payload; 1 a CertRep the harness
 *               builds from the payload (a spec, fuzz_pki.h) and signs as
 *               the world's CA, the content an envelope of issued
 *               certificate variant h1 bits 4-6 (VARIANTS); 2 the world's
 *               GetCACert answer; 3 the recorded micromdm answer to the
 *               operation; 4 the right answer to the operation (standard
 *               GetCACaps, the world's CA, SUCCESS); 5 the world's GetCACert
 *               answer followed by the payload
 *      bit 7    not an answer but a server message, sent before the next
 *               step (the answers before it used up, the hook says CONNECT):
 *               bits 0-1 0 Exec of enrollment bits 4-5 again (with a new
 *               Challenge; the whole setup when it was deleted), 1 Delete of
 *               its {UniqueID}, 2 Gets of its nodes, 3 every result alert
 *               delivered (omadm_alerts, omadm_alert_delivered)
 *   h1 bits 0-3 HTTP status (STATUSES), bits 4-6 the variant, bit 7 a
 *               Content-Type that does not fit
 * When the answers are used up the hook says CONNECT; one more step runs.
 *
 * RSA keys are not generated per run: the enrollment record gets the
 * world's device key (RSA-1024 of fuzz_pki.c, or the recorded one, 2048)
 * as a round that reached no server would have left it (as
 * test_enroll_step.c does), and fuzz_platform()'s random hook is pinned to
 * the request signer's serial number and the senderNonce of the recorded
 * exchange, so that its CertRep answers our requests and the harness's
 * CertReps can be made ahead.  The setup of a configuration runs through
 * the engine once; later inputs of that configuration start from a copy of
 * what it left (setup_save).  FUZZ_ENROLL_LOG=1 shows what an input does.
 *
 * Invariants, besides the sanitizers (after every step and server message
 * unless said):
 *   - omadm_step returns OMADM_OK (no allocation fails, the store is on
 *     tmpfs: no answer is the device's own trouble); at most 4 requests per
 *     URL of each running enrollment per step, each to a ServerURL and
 *     well-formed (GET, or POST of a PKIOperation with its body and type);
 *     *next_due is OMADM_NEVER exactly when no enrollment runs, else after
 *     the step's time (the step's time itself after an ABORTED exchange);
 *   - Status (read through the engine, as a Get) is 1, 2, 16 or 32, and
 *     ErrorCode is non-zero exactly for 16, never E_OUTOFMEMORY or a store
 *     write fault, and E_FAIL only once the hook said FAILED (else it would
 *     blame the device for what a server sent); RespondentServerUrl (at the
 *     end) is absent while a run has not reached its CA, a ServerURL (or its
 *     /pkiclient.exe) once it has; Status 1 has its certificate
 *     (CertThumbprint) in My/System (My/User for the user), with the
 *     device's key (omadm_certstore_enrollment_identity; checked when it is
 *     new and at the end); otherwise only a certificate an earlier run of
 *     that {UniqueID} installed is there, or none; the store holds exactly
 *     those, each with its key (at the end: as omadm_certstore_list says);
 *   - the Challenge of a run is gone from its record once the CA answered
 *     (PENDING) or the run finished, and at the end from every state record
 *     and the journal; Install/Challenge exists (at the end) only when the
 *     server set one after the last accepted Exec;
 *   - each finished run has one result alert (until delivered) from its
 *     Exec URI with its ErrorCode as data; a running one none; delivered
 *     alerts are gone;
 *   - with one enrollment, a CertRep the harness built (or the recorded one)
 *     answering a PKCSReq or CertPoll after the world's own GetCACert
 *     answer leads where it says: installed when its certificate is valid
 *     then (CERT_E_EXPIRED otherwise), PENDING (or ERROR_TIMEOUT after
 *     RetryCount polls), FAILURE with its failInfo, refused (Status 16)
 *     when forged, for another key or not chained to the CA;
 *   - server messages are answered (replies decode); an Exec is accepted
 *     exactly when the enrollment is not running;
 *   - at the end, the engine state loads again (omadm_new), and the store
 *     passes omadm_certstore_check.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "csp/certstore_internal.h"
#include "csp/enroll.h"
#include "csp/scep_msg.h"
#include "fuzz_common.h"
#include "fuzz_pki.h"
#include "omadm.h"
#include "omadm_certstore.h"
#include "platform.h"
#include "store/store.h"

#define NEXT "\n#next#\n"
#define MAX_CHUNKS 64
#define MAX_STEPS 12
#define MAX_ENROLLMENTS 3
#define MAX_RUNS 16
#define SUBJECT "CN=dev1,O=OMADM Test"   /* the recorded request signer's subject */
#define SERVER "https://dm.example.com/omadm"
#define ALERT_TYPE "com.microsoft:mdm.SCEPcertinstall.result"
#define MINUTE 60
#define SKEW 600                         /* enroll_run.c, ISSUED_SKEW_S */
#define DAY ((int64_t)86400)

static const int STATUSES[16] = {200, 404, 500, 503, 408, 429, 400, 403,
                                 301, 204, 206, 0,   -1,  999, 1000, 200};

/* ---- the worlds ---- */

enum { W_FIXTURE, W_ROOT, W_MDM, WORLDS };

/* Issued certificate variants a built CertRep can carry (envelopes of a
 * degenerate PKCS#7 to the request signer, one per cipher).  The issued
 * certificate's serial number is the answer's place in the input, so no
 * two enrollments of an input get the same certificate, as from a real CA;
 * made when first needed, then kept. */
enum {
    V_GOOD,         /* {issued, CA} */
    V_ALONE,        /* {issued} */
    V_EXPIRED,      /* {expired, CA} */
    V_NOT_YET,      /* {valid from now + 30 days, CA} */
    V_SKEW,         /* {valid from now + 5 minutes, CA}: inside the allowance */
    V_OTHER_KEY,    /* {for another key, CA} */
    V_FORGED,       /* {names the CA as issuer, signed by the device key} */
    V_CA_ONLY,      /* {CA} */
    VARIANTS
};

typedef struct variant {
    uint8_t *env[FUZZ_PKI_CIPHERS];
    size_t env_len[FUZZ_PKI_CIPHERS];
    int32_t ec;            /* 0: our certificate, valid from..to; else the ErrorCode */
    int64_t from, to;
} variant_t;

typedef struct world {
    X509 *ca;                       /* issues the certificates */
    EVP_PKEY *ca_key, *other;       /* other: a key that is not the device's */
    EVP_PKEY *dev;                  /* the device key */
    char *key_b64;                  /* its PKCS#8 in base64, as a record keeps it */
    char txid[SCEP_TXID_LEN + 1];
    unsigned key_length;
    char thumb[SCEP_THUMB_LEN + 1]; /* CAThumbprint */
    uint8_t *cacert;                /* the GetCACert answer */
    size_t cacert_len;
    char *root_b64;                 /* installed in Root/System first, or NULL */
    X509 *recipient;                /* the request signer the device makes */
    uint8_t *spki, *pkcs8;          /* the device key's SubjectPublicKeyInfo and PKCS#8 */
    size_t spki_len, pkcs8_len;
    fuzz_pki_rep_t rep;             /* CertReps (env: per answer) */
    variant_t *v[VARIANTS][MAX_CHUNKS];
} world_t;

static struct fixture {
    const omadm_platform_t *plat;
    EVP_PKEY *ca_key, *sub_key, *dev_key;
    X509 *ca, *sub;
    world_t w[WORLDS];
    bool have_capture;
    struct {
        uint8_t *caps, *ca, *certrep;
        size_t caps_len, ca_len, certrep_len;
        int64_t from, to;           /* the issued certificate's validity */
    } cap;
} F;

/* FUZZ_ENROLL_LOG=1: the enrollments' log and the hook's answers on
 * stderr, to see what an input does. */
static bool verbose;

static uint8_t *copy_of(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    FUZZ_CHECK(c != NULL, "malloc");
    if (n)
        memcpy(c, p, n);
    return c;
}

static char *b64(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    FUZZ_CHECK(out != NULL, "malloc");
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static int64_t asn1_seconds(const ASN1_TIME *t)
{
    struct tm tm;
    FUZZ_CHECK(ASN1_TIME_to_tm(t, &tm), "a fixture time");
    return (int64_t)timegm(&tm);
}

static void world_key(world_t *w, EVP_PKEY *dev, const uint8_t *der, size_t len, unsigned bits)
{
    scep_key_t *k = NULL;
    scep_cert_t *signer = NULL;
    const char *why = NULL;
    w->dev = dev;
    w->key_length = bits;
    FUZZ_CHECK(scep_key_from_der(F.plat, der, len, &k, &why) == SCEP_OK &&
                   scep_transaction_id(k, w->txid, &why) == SCEP_OK &&
                   scep_self_signed(F.plat, k, SUBJECT, SCEP_DIGEST_SHA256, FUZZ_NOW, &signer,
                                    &why) == SCEP_OK,
               "device key: %s", why);
    w->recipient = fuzz_pki_x509_of(F.plat, signer);
    scep_cert_free(F.plat, signer);
    scep_buf_t p8 = {0};
    FUZZ_CHECK(scep_key_to_der(F.plat, k, &p8, &why) == SCEP_OK, "PKCS#8: %s", why);
    w->pkcs8 = copy_of(p8.data, p8.len);
    w->pkcs8_len = p8.len;
    w->key_b64 = b64(p8.data, p8.len); /* what keygen_take would have recorded */
    scep_buf_free(F.plat, &p8);
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(dev, &spki);
    FUZZ_CHECK(sl > 0, "public key DER");
    w->spki = copy_of(spki, (size_t)sl);
    w->spki_len = (size_t)sl;
    OPENSSL_free(spki);
    scep_key_free(F.plat, k);
}

static void world_ca(world_t *w, const uint8_t *cacert, size_t len, const uint8_t *pin,
                     size_t pin_len)
{
    w->cacert = copy_of(cacert, len);
    w->cacert_len = len;
    scep_cert_t *c = NULL;
    FUZZ_CHECK(scep_cert_from_der(F.plat, pin, pin_len, &c, NULL) == SCEP_OK &&
                   scep_cert_thumbprint(c, w->thumb) == SCEP_OK,
               "the pinned certificate");
    scep_cert_free(F.plat, c);
}

static const struct {
    int64_t from, to; /* from FUZZ_NOW */
    int32_t ec;
} KINDS[VARIANTS] = {
    [V_GOOD] = {-2 * 365 * DAY, 8 * 365 * DAY, 0},
    [V_ALONE] = {-2 * 365 * DAY, 8 * 365 * DAY, 0},
    [V_EXPIRED] = {-2 * 365 * DAY, -DAY, 0},
    [V_NOT_YET] = {30 * DAY, 2 * 365 * DAY, 0},
    [V_SKEW] = {300, 365 * DAY, 0},
    [V_OTHER_KEY] = {-DAY, 365 * DAY, EC_NO_CERT},
    [V_FORGED] = {-DAY, 365 * DAY, EC_CHAINING},
    [V_CA_ONLY] = {0, 0, EC_NO_CERT},
};

/* Variant i of the certificate the world's CA issues in the answer at
 * place serial of the input, in envelopes to the world's request signer. */
static const variant_t *variant(world_t *w, unsigned i, unsigned serial)
{
    if (w->v[i][serial])
        return w->v[i][serial];
    char from[16], to[16];
    fuzz_pki_time(FUZZ_NOW + KINDS[i].from, from);
    fuzz_pki_time(FUZZ_NOW + KINDS[i].to, to);
    X509 *x = NULL;
    long sn = 100 + (long)serial;
    if (i == V_OTHER_KEY)
        x = fuzz_pki_cert("dev1", sn, w->other, w->ca, w->ca_key, from, to, false);
    else if (i == V_FORGED)
        x = fuzz_pki_cert("dev1", sn, w->dev, w->ca, w->dev, from, to, false);
    else if (i != V_CA_ONLY)
        x = fuzz_pki_cert("dev1", sn, w->dev, w->ca, w->ca_key, from, to, false);
    X509 *set[2] = {x ? x : w->ca, w->ca};
    size_t n = i == V_ALONE || i == V_FORGED || i == V_CA_ONLY ? 1 : 2, dlen = 0;
    uint8_t *deg = fuzz_pki_degenerate(set, n, &dlen);
    variant_t *v = calloc(1, sizeof *v);
    FUZZ_CHECK(v != NULL, "calloc");
    for (int c = 0; c < FUZZ_PKI_CIPHERS; c++) {
        v->env[c] = fuzz_pki_envelope(w->recipient, deg, dlen, fuzz_pki_ciphers[c], &v->env_len[c]);
        FUZZ_CHECK(v->env[c] || c == 3, "envelope %s", fuzz_pki_ciphers[c]);
    }
    v->ec = KINDS[i].ec;
    v->from = x ? asn1_seconds(X509_get0_notBefore(x)) : 0;
    v->to = x ? asn1_seconds(X509_get0_notAfter(x)) : 0;
    OPENSSL_free(deg);
    X509_free(x);
    ERR_clear_error();
    return w->v[i][serial] = v;
}

/* The world's CA (ca, ca_key) signs CertReps and issues certificates. */
static void world_issuer(world_t *w, X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *other)
{
    w->ca = ca;
    w->ca_key = ca_key;
    w->other = other;
    w->rep = (fuzz_pki_rep_t){.ca = ca, .ca_key = ca_key, .other = w->recipient,
                              .other_key = w->dev, .recipient = w->recipient, .txid = w->txid};
}

/* The recorded exchange's serial number and nonce pinned (or our own when
 * it is not there), its answers and key loaded. */
static void load_capture(uint8_t **key, size_t *key_len)
{
    uint8_t serial[8] = {0x5A, 0x4E, 0xD6, 0x23, 0xFB, 0x06, 0x60, 0x4E};
    uint8_t nonce[SCEP_NONCE_LEN] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
    char dir[4200];
    *key = NULL;
    if (!fuzz_pki_capture(dir, sizeof dir)) {
        fprintf(stderr, "fuzz_enroll: tests/data/scep/micromdm not found (set OMADM_TOP): "
                        "world 2 is the fixture's\n");
        fuzz_random_pin(serial, sizeof serial);
        fuzz_random_pin(nonce, sizeof nonce);
        return;
    }
    size_t sig_len = 0, non_len = 0, iss_len = 0;
    uint8_t *sig = fuzz_pki_slurp(dir, "signer.der", &sig_len),
            *non = fuzz_pki_slurp(dir, "nonce.bin", &non_len),
            *iss = fuzz_pki_slurp(dir, "issued.der", &iss_len);
    F.cap.caps = fuzz_pki_slurp(dir, "caps.txt", &F.cap.caps_len);
    F.cap.ca = fuzz_pki_slurp(dir, "ca.der", &F.cap.ca_len);
    F.cap.certrep = fuzz_pki_slurp(dir, "certrep.der", &F.cap.certrep_len);
    *key = fuzz_pki_slurp(dir, "key.der", key_len);
    FUZZ_CHECK(sig && non && iss && F.cap.caps && F.cap.ca && F.cap.certrep && *key &&
                   non_len == SCEP_NONCE_LEN,
               "%s is incomplete", dir);
    const unsigned char *p = sig;
    X509 *s = d2i_X509(NULL, &p, (long)sig_len);
    p = iss;
    X509 *i = d2i_X509(NULL, &p, (long)iss_len);
    BIGNUM *bn = s ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(s), NULL) : NULL;
    FUZZ_CHECK(i && bn && BN_bn2binpad(bn, serial, sizeof serial) == sizeof serial,
               "the recorded request signer's serial number");
    F.cap.from = asn1_seconds(X509_get0_notBefore(i));
    F.cap.to = asn1_seconds(X509_get0_notAfter(i));
    fuzz_random_pin(serial, sizeof serial);
    fuzz_random_pin(non, SCEP_NONCE_LEN);
    BN_free(bn);
    X509_free(s);
    X509_free(i);
    free(sig), free(non), free(iss);
    F.have_capture = true;
}

static void make_fixture(void)
{
    F.plat = fuzz_platform();
    fuzz_platform_reset();
    uint8_t *mdm_key = NULL;
    size_t mdm_key_len = 0;
    load_capture(&mdm_key, &mdm_key_len);
    F.ca_key = fuzz_pki_key(FUZZ_PKI_CA_KEY);
    F.sub_key = fuzz_pki_key(FUZZ_PKI_SUB_KEY);
    F.dev_key = fuzz_pki_key(FUZZ_PKI_DEV_KEY);
    /* the CA of fuzz_scep.c, so that its seeds serve here too */
    F.ca = fuzz_pki_cert("Fuzz SCEP CA", 1, F.ca_key, NULL, NULL, "20250101000000Z",
                         "20350101000000Z", true);
    F.sub = fuzz_pki_cert("Fuzz SCEP Sub CA", 5, F.sub_key, F.ca, F.ca_key, "20250101000000Z",
                          "20350101000000Z", true);
    size_t ca_len = 0, sub_len = 0;
    uint8_t *ca_der = fuzz_pki_der(F.ca, &ca_len), *sub_der = fuzz_pki_der(F.sub, &sub_len);
    unsigned char *dev_der = NULL;
    int dev_len = i2d_PrivateKey(F.dev_key, &dev_der);
    FUZZ_CHECK(dev_len > 0, "device key DER");
    for (int i = 0; i < WORLDS; i++) {
        world_t *w = &F.w[i];
        if (i == W_MDM && F.have_capture) {
            const unsigned char *p = mdm_key;
            EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)mdm_key_len);
            FUZZ_CHECK(k != NULL, "the recorded key");
            world_key(w, k, mdm_key, mdm_key_len, 2048);
            world_ca(w, F.cap.ca, F.cap.ca_len, F.cap.ca, F.cap.ca_len);
            /* the harness cannot sign as micromdm: its CertReps are forgeries here */
            world_issuer(w, F.ca, F.ca_key, F.sub_key);
            continue;
        }
        EVP_PKEY_up_ref(F.dev_key);
        world_key(w, F.dev_key, dev_der, (size_t)dev_len, 1024);
        if (i == W_ROOT) {
            world_ca(w, sub_der, sub_len, ca_der, ca_len);
            w->root_b64 = b64(ca_der, ca_len);
            world_issuer(w, F.sub, F.sub_key, F.ca_key);
        } else {
            world_ca(w, ca_der, ca_len, ca_der, ca_len);
            world_issuer(w, F.ca, F.ca_key, F.sub_key);
        }
    }
    OPENSSL_free(dev_der);
    OPENSSL_free(ca_der);
    OPENSSL_free(sub_der);
    free(mdm_key);
    ERR_clear_error();
}

/* ---- what a run keeps ---- */

typedef struct chunk {
    const uint8_t *p;
    size_t len;
} chunk_t;

/* What a built or recorded CertRep says must become of the enrollment. */
typedef enum { X_NONE, X_REFUSED, X_PENDING, X_FAILURE, X_ISSUED, X_ERROR } expect_kind_t;

typedef struct expect {
    expect_kind_t kind;
    int32_t ec;             /* X_FAILURE, X_ERROR */
    int64_t from, to;       /* X_ISSUED: the certificate's validity */
} expect_t;

/* One enrollment as the server set it up. */
typedef struct track {
    char id[16];
    char uri[160];           /* .../SCEP/<id> */
    char exec_uri[192];
    bool deleted;
    bool had_cert;           /* a run of this {UniqueID} installed thumb */
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    bool has_param;          /* Install/Challenge set after the last accepted Exec */
    char param[32];
    char chal[MAX_RUNS][32]; /* each run's Challenge, the current one last */
    unsigned runs;
    bool delivered;          /* the current run's alert was delivered */
    int status;              /* as last read (0: deleted) */
    int32_t error;
} track_t;

typedef struct run {
    unsigned world, ns, count, urls, retry_count, retry_delay, hash, key_usage;
    bool extras;
    world_t *w;
    fuzz_mem_t mem;
    omadm_t *dm;
    struct omadm_certstore *cs;
    int msg_id;
    chunk_t chunk[MAX_CHUNKS];
    size_t n, cur;
    track_t t[MAX_ENROLLMENTS];
    /* the HTTP hook */
    unsigned step_requests;
    bool aborted;
    bool cacert_world;       /* the last GetCACert answer was the world's own */
    expect_t expect;         /* what the last PKIOperation answer implies */
    int alerts_seen[MAX_ENROLLMENTS];
    bool transport_failed;   /* the hook said OMADM_HTTP_FAILED once */
} run_t;

static const char *const URLS[2] = {"http://scep.test/scep",
                                    "http://ra.test/scep ; https://scep.test/certsrv/mscep/mscep.dll"};
static const unsigned RETRY_COUNTS[4] = {1, 3, 0, 30};
static const unsigned RETRY_DELAYS[4] = {1, 5, 60, 525600};
static const char *const HASHES[4] = {"SHA-2", "SHA-1", "SHA-1+SHA-2", "SHA-3"};
static const unsigned KEY_USAGES[4] = {160, 128, 32, 0x80A0};

static const char *ns_base(unsigned ns)
{
    static const char *const bases[4] = {"./Vendor/MSFT/CertificateStore/My/SCEP",
                                         "./Device/Vendor/MSFT/ClientCertificateInstall/SCEP",
                                         "./User/Vendor/MSFT/ClientCertificateInstall/SCEP",
                                         "./Device/Vendor/MSFT/CertificateStore/My/SCEP"};
    return bases[ns];
}

static omadm_enroll_ns_t public_ns(unsigned ns)
{
    return ns == 1 ? OMADM_ENROLL_DEVICE : ns == 2 ? OMADM_ENROLL_USER : OMADM_ENROLL_CERTSTORE;
}

static enr_ns_t internal_ns(unsigned ns)
{
    return ns == 1 ? ENR_CCI_DEVICE : ns == 2 ? ENR_CCI_USER : ENR_CS;
}

static const char *my_store(unsigned ns)
{
    return ns == 2 ? "my-user" : "my-system";
}

static bool is_server_chunk(const chunk_t *c)
{
    return c->len && (c->p[0] & 0x80);
}

static const uint8_t *find_next(const uint8_t *p, const uint8_t *end)
{
    size_t n = strlen(NEXT);
    for (; (size_t)(end - p) >= n; p++)
        if (*p == NEXT[0] && !memcmp(p, NEXT, n))
            return p;
    return NULL;
}

static void split(run_t *r, const uint8_t *p, size_t size)
{
    const uint8_t *end = p + size;
    while (r->n < MAX_CHUNKS) {
        const uint8_t *next = find_next(p, end);
        r->chunk[r->n++] = (chunk_t){p, (size_t)((next ? next : end) - p)};
        if (!next)
            break;
        p = next + strlen(NEXT);
    }
}

/* ---- server messages ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        FUZZ_CHECK(n >= 0, "vsnprintf");
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL, "realloc");
    }
}

static void msg_begin(run_t *r, sbuf_t *b)
{
    sb_printf(b,
              "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
              "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>%d</MsgID>"
              "<Target><LocURI>omadm-device</LocURI></Target><Source><LocURI>" SERVER
              "</LocURI></Source></SyncHdr><SyncBody>",
              ++r->msg_id);
}

/* One command with one item; format and data may be NULL. */
static void cmd(sbuf_t *b, const char *name, int *cid, const char *uri, const char *format,
                const char *data)
{
    sb_printf(b, "<%s><CmdID>%d</CmdID><Item><Target><LocURI>%s</LocURI></Target>", name, ++*cid,
              uri);
    if (format)
        sb_printf(b, "<Meta><Format xmlns=\"syncml:metinf\">%s</Format></Meta>", format);
    if (data)
        sb_printf(b, "<Data>%s</Data>", data);
    sb_printf(b, "</Item></%s>", name);
}

static void param(sbuf_t *b, int *cid, const track_t *t, const char *name, const char *format,
                  const char *value)
{
    char uri[256];
    snprintf(uri, sizeof uri, "%s/Install/%s", t->uri, name);
    cmd(b, "Add", cid, uri, format, value);
}

/* The server's message in b, answered. */
static void send(run_t *r, sbuf_t *b, const char *what)
{
    sb_printf(b, "<Final/></SyncBody></SyncML>");
    uint8_t *reply = NULL;
    size_t len = 0;
    omadm_error_t err = omadm_process(r->dm, (const uint8_t *)b->p, b->len, &reply, &len);
    const char *detail = omadm_last_error_detail(r->dm);
    FUZZ_CHECK(err == OMADM_OK && reply, "%s: omadm_process: %s (%s)", what, omadm_strerror(err),
               detail ? detail : "no detail");
    fuzz_reply_decodes(r->dm, reply, len, false);
    omadm_buffer_free(r->dm, reply);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* A new run of t with Challenge chal (returned: the copy). */
static const char *new_run(track_t *t, const char *chal)
{
    if (t->runs == MAX_RUNS) { /* forget the oldest, gone long since */
        memmove(t->chal[0], t->chal[1], sizeof t->chal[0] * (MAX_RUNS - 1));
        t->runs--;
    }
    snprintf(t->chal[t->runs], sizeof t->chal[0], "%s", chal);
    t->delivered = false;
    return t->chal[t->runs++];
}

/* A new run of enrollment k as the setup starts it; its Challenge. */
static const char *setup_track(track_t *t, unsigned k)
{
    char chal[32];
    snprintf(chal, sizeof chal, "Chal%uRun%uq7Zx", k, t->runs + 1);
    t->deleted = false;
    t->has_param = false;
    return new_run(t, chal);
}

/* Every Install parameter of enrollment k and the Exec, into b. */
static void setup_one(run_t *r, sbuf_t *b, int *cid, unsigned k)
{
    track_t *t = &r->t[k];
    char num[24];
    param(b, cid, t, "ServerURL", "chr", URLS[r->urls - 1]);
    param(b, cid, t, "Challenge", "chr", setup_track(t, k));
    snprintf(num, sizeof num, "%u", r->key_usage);
    param(b, cid, t, "KeyUsage", "int", num);
    param(b, cid, t, "SubjectName", "chr", SUBJECT);
    snprintf(num, sizeof num, "%u", r->w->key_length);
    param(b, cid, t, "KeyLength", "int", num);
    param(b, cid, t, "HashAlgorithm", "chr", HASHES[r->hash]);
    param(b, cid, t, "CAThumbprint", "chr", r->w->thumb);
    snprintf(num, sizeof num, "%u", r->retry_count);
    param(b, cid, t, "RetryCount", "int", num);
    snprintf(num, sizeof num, "%u", r->retry_delay);
    param(b, cid, t, "RetryDelay", "int", num);
    if (r->extras) {
        param(b, cid, t, "SubjectAlternativeNames", "chr",
              "11+dev1@example.com;3+dev1.example.com");
        param(b, cid, t, "EKUMapping", "chr", "1.3.6.1.5.5.7.3.2");
        param(b, cid, t, "ValidPeriod", "chr", "Days");
        param(b, cid, t, "ValidPeriodUnits", "int", "30");
        param(b, cid, t, "TemplateName", "chr", "FuzzTemplate");
    }
    cmd(b, "Exec", cid, t->exec_uri, NULL, NULL);
}

/* The record of a started enrollment without a key gets the world's
 * device key, as a round that reached no server would have left it: no
 * RSA key is generated in these runs. */
static void preload_keys(run_t *r)
{
    store_t *s = r->cs->store;
    const omadm_platform_t *p = store_platform(s);
    for (unsigned k = 0; k < r->count; k++) {
        if (r->t[k].deleted)
            continue;
        enrollment_t e;
        int rc = enr_load(s, internal_ns(r->ns), r->t[k].id, &e);
        FUZZ_CHECK(rc == 0, "the record of %s loads: %d", r->t[k].id, rc);
        if (e.phase == PH_START && !e.key) {
            FUZZ_CHECK(!enr_set(p, &e.key, r->w->key_b64) && !enr_set(p, &e.txid, r->w->txid) &&
                           !store_begin(s) && !enr_save(s, &e) && !store_commit(s) &&
                           !store_flush(s),
                       "the key cannot be put into the record of %s", r->t[k].id);
        }
        enr_free(p, &e);
    }
}

/*
 * What the setup of one configuration left: the engine's storage, the
 * store's state records and Root/System.  The first input of each
 * configuration sets up through the engine (a SyncML message, then the
 * keys); the next ones put the same back directly, which costs a tenth of
 * it.  Either way an input starts from the same state, so it runs the same
 * way whether it is the first of its configuration or not.
 */
#define SAVED_RECORDS 8

typedef struct saved {
    fuzz_mem_t mem;
    struct {
        char *name, *text;
        size_t len;
    } state[SAVED_RECORDS];
    unsigned states;
    store_rec_t root[2];
    unsigned roots;
} saved_t;

static saved_t *saved[1 << 16];

typedef struct saving {
    store_t *s;
    saved_t *to;
} saving_t;

static char *dup_or_null(const char *s)
{
    char *c = s ? strdup(s) : NULL;
    FUZZ_CHECK(!s || c, "strdup");
    return c;
}

static int save_state(void *ctx, const char *name)
{
    saving_t *v = ctx;
    char *text = NULL;
    size_t len = 0;
    FUZZ_CHECK(v->to->states < SAVED_RECORDS && store_get_state(v->s, name, &text, &len) == 0,
               "the state record %s after the setup", name);
    v->to->state[v->to->states].name = dup_or_null(name);
    v->to->state[v->to->states].text = (char *)copy_of((const uint8_t *)text, len);
    v->to->state[v->to->states++].len = len;
    plat_free(store_platform(v->s), text);
    return 0;
}

static int save_root(void *ctx, const store_rec_t *rec)
{
    saved_t *to = ctx;
    FUZZ_CHECK(to->roots < 2, "Root/System after the setup");
    store_rec_t *c = &to->root[to->roots++];
    *c = *rec;
    c->name = dup_or_null(rec->name);
    c->server = dup_or_null(rec->server);
    c->der = copy_of(rec->der, rec->der_len);
    c->info = NULL; /* the store's; store_put derives it again */
    return 0;
}

static void setup_save(const run_t *r, unsigned config)
{
    saved_t *v = calloc(1, sizeof *v);
    FUZZ_CHECK(v != NULL, "calloc");
    for (int i = 0; i < FUZZ_MEM_KEYS; i++)
        if (r->mem.slot[i].data)
            fuzz_mem_put(&v->mem, r->mem.slot[i].key, r->mem.slot[i].data, r->mem.slot[i].len);
    saving_t ctx = {r->cs->store, v};
    FUZZ_CHECK(store_each_state(r->cs->store, "", save_state, &ctx) == 0 &&
                   store_each(r->cs->store, "root", save_root, v) == 0,
               "the store after the setup");
    saved[config] = v;
}

static void setup_restore(run_t *r, const saved_t *v)
{
    store_t *s = r->cs->store;
    for (int i = 0; i < FUZZ_MEM_KEYS; i++)
        if (v->mem.slot[i].data)
            fuzz_mem_put(&r->mem, v->mem.slot[i].key, v->mem.slot[i].data, v->mem.slot[i].len);
    FUZZ_CHECK(store_begin(s) == 0, "store_begin");
    for (unsigned i = 0; i < v->states; i++)
        FUZZ_CHECK(store_put_state(s, v->state[i].name, v->state[i].text, v->state[i].len) == 0,
                   "store_put_state");
    for (unsigned i = 0; i < v->roots; i++)
        FUZZ_CHECK(store_put(s, "root", &v->root[i]) == 0, "store_put");
    FUZZ_CHECK(store_commit(s) == 0 && store_flush(s) == 0, "the setup cannot be put back");
    r->msg_id = 1;
    for (unsigned k = 0; k < r->count; k++)
        setup_track(&r->t[k], k);
}

static void setup(run_t *r, unsigned config)
{
    if (saved[config]) {
        setup_restore(r, saved[config]);
        return;
    }
    sbuf_t b = {0};
    int cid = 0;
    msg_begin(r, &b);
    if (r->w->root_b64) {
        char uri[128];
        snprintf(uri, sizeof uri, "./Vendor/MSFT/RootCATrustedCertificates/Root/%s/EncodedCertificate",
                 r->w->thumb);
        cmd(&b, "Add", &cid, uri, "b64", r->w->root_b64);
    }
    for (unsigned k = 0; k < r->count; k++)
        setup_one(r, &b, &cid, k);
    send(r, &b, "the setup");
    preload_keys(r);
    setup_save(r, config);
}

static bool finished(int status)
{
    return status == ST_INSTALLED || status == ST_FAILED;
}

static void deliver_alerts(run_t *r);
static int get_status(omadm_t *dm, const track_t *t);

/* Server message kinds 0 to 3 (see the top of the file). */
static void server_message(run_t *r, const chunk_t *c)
{
    unsigned kind = c->p[0] & 3, k = (c->p[0] >> 4 & 3) % r->count;
    track_t *t = &r->t[k];
    sbuf_t b = {0};
    int cid = 0;
    char uri[256];
    switch (kind) {
    case 0: {
        /* Exec is refused while the enrollment runs; the Challenge then
         * waits for the next one */
        bool accepted = t->deleted || finished(t->status);
        int before = t->status;
        msg_begin(r, &b);
        if (t->deleted) {
            setup_one(r, &b, &cid, k);
        } else {
            if (!t->has_param) {
                snprintf(t->param, sizeof t->param, "Param%uChal%uq7Zx", k, t->runs + 1);
                snprintf(uri, sizeof uri, "%s/Install/Challenge", t->uri);
                cmd(&b, "Add", &cid, uri, "chr", t->param);
                t->has_param = true;
            }
            cmd(&b, "Exec", &cid, t->exec_uri, NULL, NULL);
            if (accepted) {
                new_run(t, t->param);
                t->has_param = false;
            }
        }
        send(r, &b, "an Exec again");
        preload_keys(r);
        int now = get_status(r->dm, t);
        FUZZ_CHECK(accepted ? now == ST_UNKNOWN : now == before,
                   "an Exec of %s with Status %d: Status %d after it", t->id, before, now);
        break;
    }
    case 1:
        msg_begin(r, &b);
        cmd(&b, "Delete", &cid, t->uri, NULL, NULL);
        send(r, &b, "a Delete");
        t->deleted = true;
        t->had_cert = false;
        t->has_param = false;
        break;
    case 2: {
        static const char *const leaves[] = {"Status", "ErrorCode", "CertThumbprint",
                                             "RespondentServerUrl", "Install"};
        msg_begin(r, &b);
        for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
            snprintf(uri, sizeof uri, "%s/%s", t->uri, leaves[i]);
            cmd(&b, "Get", &cid, uri, NULL, NULL);
        }
        cmd(&b, "Get", &cid, t->uri, NULL, NULL);
        send(r, &b, "Gets");
        break;
    }
    default:
        deliver_alerts(r);
        break;
    }
}

/* ---- the checks ---- */

/* The value of uri through the engine (a Get of the device's own), or
 * NULL when it is not there; free. */
static char *get(omadm_t *dm, const char *uri, omadm_error_t *err)
{
    char *v = NULL;
    size_t len = 0;
    int interior = 0;
    *err = omadm_tree_read(dm, uri, &v, &len, &interior);
    FUZZ_CHECK(*err == OMADM_OK || *err == OMADM_E_NOT_FOUND, "Get %s: %s", uri,
               omadm_strerror(*err));
    if (*err)
        return NULL;
    FUZZ_CHECK(strlen(v) == len, "Get %s: a NUL inside", uri);
    char *copy = strdup(v);
    FUZZ_CHECK(copy != NULL, "strdup");
    omadm_buffer_free(dm, v);
    return copy;
}

static bool get_int(omadm_t *dm, const char *uri, long *out)
{
    omadm_error_t err;
    char *v = get(dm, uri, &err);
    if (!v)
        return false;
    char *end = NULL;
    *out = strtol(v, &end, 10);
    FUZZ_CHECK(*v && !*end, "Get %s: '%s' is not an integer", uri, v);
    free(v);
    return true;
}

static int get_status(omadm_t *dm, const track_t *t)
{
    char uri[256];
    long v = 0;
    snprintf(uri, sizeof uri, "%s/Status", t->uri);
    return get_int(dm, uri, &v) ? (int)v : 0;
}

/* The DER inside a PEM text (malloc'ed), without decoding what it is. */
static uint8_t *pem_der(const char *pem, size_t len, size_t *der_len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long n = 0;
    bool ok = b && PEM_read_bio(b, &name, &header, &data, &n) == 1;
    BIO_free(b);
    OPENSSL_free(name);
    OPENSSL_free(header);
    uint8_t *der = ok ? copy_of(data, (size_t)n) : NULL;
    OPENSSL_free(data);
    *der_len = ok ? (size_t)n : 0;
    return der;
}

/* The identity of t (omadm_certstore_enrollment_identity): thumbprint, a
 * certificate for the device's key, and that key.  The key is compared as
 * the PKCS#8 the library writes, the certificate by the SubjectPublicKeyInfo
 * inside its DER: nothing is decoded (OpenSSL 3.0 decodes every key through
 * its decoder framework, which is slow). */
static void identity_ok(const run_t *r, const track_t *t, const char *when)
{
    omadm_cert_identity_t id;
    memset(&id, 0, sizeof id);
    omadm_error_t err = omadm_certstore_enrollment_identity((omadm_certstore_t *)r->cs,
                                                            public_ns(r->ns), t->id, &id);
    FUZZ_CHECK(err == OMADM_OK && !strcmp(id.thumbprint, t->thumb),
               "%s: %s: the identity of its certificate %s: %s", when, t->id, t->thumb,
               omadm_strerror(err));
    size_t cl = 0, kl = 0;
    uint8_t *cd = pem_der(id.cert_pem, id.cert_pem_len, &cl),
            *kd = pem_der(id.key_pem, id.key_pem_len, &kl);
    FUZZ_CHECK(cd && memmem(cd, cl, r->w->spki, r->w->spki_len),
               "%s: %s: the installed certificate is not for the device's key", when, t->id);
    FUZZ_CHECK(kd && kl == r->w->pkcs8_len && !memcmp(kd, r->w->pkcs8, kl),
               "%s: %s: the installed key is not the device's", when, t->id);
    free(cd);
    if (kd)
        OPENSSL_cleanse(kd, kl);
    free(kd);
    omadm_certstore_buffer_free(id.cert_pem);
    omadm_certstore_buffer_free(id.key_pem);
}

/* Whether the state record of t holds one of its finished Challenges. */
static void record_clean(const run_t *r, const track_t *t, int status)
{
    char name[ENR_RECORD_NAME_SIZE];
    char *text = NULL;
    size_t len = 0;
    FUZZ_CHECK(enr_record_name(internal_ns(r->ns), t->id, name, sizeof name) == 0, "record name");
    if (store_get_state(r->cs->store, name, &text, &len))
        return;
    for (unsigned i = 0; i < t->runs; i++) {
        bool current = i + 1 == t->runs;
        if (current && status == ST_UNKNOWN)
            continue; /* the running request still needs it */
        FUZZ_CHECK(!memmem(text, len, t->chal[i], strlen(t->chal[i])),
                   "%s: the Challenge of run %u stays in its record (Status %d)", t->id, i + 1,
                   status);
    }
    plat_free(store_platform(r->cs->store), text);
}

/* The thumbprints in the enrollments' My store. */
typedef struct mine {
    char thumb[MAX_ENROLLMENTS * 2][OMADM_THUMBPRINT_LEN + 1];
    unsigned n;
} mine_t;

static bool in_mine(const mine_t *m, const char *thumb)
{
    for (unsigned i = 0; thumb && i < m->n; i++)
        if (!strcmp(m->thumb[i], thumb))
            return true;
    return false;
}

/* The certificates of the My store as its directory holds them (a file
 * per thumbprint, docs/certificatestore.md): no certificate is parsed. */
static void dir_mine(const run_t *r, mine_t *m)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/certs/%s", fuzz_store_dir(), my_store(r->ns));
    m->n = 0;
    DIR *d = opendir(path);
    FUZZ_CHECK(d != NULL, "%s cannot be read", path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        FUZZ_CHECK(m->n < sizeof m->thumb / sizeof m->thumb[0] &&
                       strlen(e->d_name) == OMADM_THUMBPRINT_LEN,
                   "%s holds %s", path, e->d_name);
        memcpy(m->thumb[m->n++], e->d_name, sizeof m->thumb[0]);
    }
    closedir(d);
}

static int list_mine(void *ctx, const omadm_cert_info_t *c)
{
    mine_t *m = ctx;
    FUZZ_CHECK(c->has_key, "%s in %s has no key", c->thumbprint, c->store);
    FUZZ_CHECK(m->n < sizeof m->thumb / sizeof m->thumb[0], "%s holds more than %u certificates",
               c->store, m->n);
    memcpy(m->thumb[m->n++], c->thumbprint, sizeof m->thumb[0]);
    return 0;
}

/* RespondentServerUrl: none while the run has not reached its CA; the
 * URL of the list that answered (or its /pkiclient.exe) once it has. */
static void respondent_ok(const run_t *r, omadm_t *dm, const track_t *t, int status,
                          const char *when)
{
    char uri[256];
    omadm_error_t err;
    snprintf(uri, sizeof uri, "%s/RespondentServerUrl", t->uri);
    char *v = get(dm, uri, &err);
    if (status == ST_UNKNOWN) {
        FUZZ_CHECK(!v, "%s: %s runs, yet RespondentServerUrl is %s", when, t->id, v);
    } else if (status == ST_INSTALLED || status == ST_PENDING) {
        bool ours = false;
        for (const char *u = URLS[r->urls - 1]; v && *u;) {
            while (*u == ' ' || *u == ';')
                u++;
            size_t n = strcspn(u, " ;");
            ours |= n && !strncmp(v, u, n) && (!v[n] || !strcmp(v + n, "/pkiclient.exe"));
            u += n;
        }
        FUZZ_CHECK(ours, "%s: %s (Status %d): RespondentServerUrl '%s' is no ServerURL", when,
                   t->id, status, v ? v : "(none)");
    }
    free(v);
}

/* The invariants on enrollment k; full: also its identity and
 * Install/Challenge (once per input: they cost). */
static void check_one(run_t *r, omadm_t *dm, unsigned k, const mine_t *mine, bool full,
                      const char *when)
{
    track_t *t = &r->t[k];
    char uri[256];
    long status = 0, ec = 0;
    omadm_error_t err;
    snprintf(uri, sizeof uri, "%s/Status", t->uri);
    bool there = get_int(dm, uri, &status);
    if (t->deleted) {
        FUZZ_CHECK(!there, "%s: %s was deleted, yet Status %ld", when, t->id, status);
        t->status = 0;
        return;
    }
    FUZZ_CHECK(there, "%s: %s has no Status", when, t->id);
    snprintf(uri, sizeof uri, "%s/ErrorCode", t->uri);
    FUZZ_CHECK(get_int(dm, uri, &ec), "%s: %s has no ErrorCode", when, t->id);
    FUZZ_CHECK(status == ST_INSTALLED || status == ST_PENDING || status == ST_FAILED ||
                   status == ST_UNKNOWN,
               "%s: %s has Status %ld", when, t->id, status);
    FUZZ_CHECK((status == ST_FAILED) == (ec != 0), "%s: %s has Status %ld with ErrorCode %#lx",
               when, t->id, status, (unsigned long)(uint32_t)ec);
    FUZZ_CHECK(ec != EC_NO_MEMORY && ec != EC_STORE,
               "%s: %s failed for want of memory or a store write (ErrorCode %#lx)", when, t->id,
               (unsigned long)(uint32_t)ec);
    /* E_FAIL is the device's own trouble (OpenSSL failing in an operation of
     * ours), or a transfer that failed: never what a server said */
    FUZZ_CHECK(ec != EC_FAIL || r->transport_failed,
               "%s: %s failed with E_FAIL, yet every transfer went through", when, t->id);
    /* without a certificate, the count of the store's says enough until the end */
    char *thumb = NULL;
    if (status == ST_INSTALLED || t->had_cert || full) {
        snprintf(uri, sizeof uri, "%s/CertThumbprint", t->uri);
        thumb = get(dm, uri, &err);
    }
    if (status == ST_INSTALLED) {
        FUZZ_CHECK(in_mine(mine, thumb), "%s: %s has Status 1, but its certificate '%s' is not in %s",
                   when, t->id, thumb ? thumb : "(none)", my_store(r->ns));
        bool fresh = !t->had_cert || strcmp(thumb, t->thumb);
        t->had_cert = true;
        memcpy(t->thumb, thumb, sizeof t->thumb);
        if (fresh || full)
            identity_ok(r, t, when);
    } else if (t->had_cert) {
        /* a run that did not install leaves what an earlier one installed */
        FUZZ_CHECK(thumb && !strcmp(thumb, t->thumb) && in_mine(mine, thumb),
                   "%s: %s (Status %ld) lost the certificate %s an earlier run installed", when,
                   t->id, status, t->thumb);
        if (full)
            identity_ok(r, t, when);
    } else {
        FUZZ_CHECK(!thumb, "%s: %s (Status %ld) has a certificate %s", when, t->id, status, thumb);
    }
    free(thumb);
    if (full)
        respondent_ok(r, dm, t, (int)status, when);
    if (full) {
        snprintf(uri, sizeof uri, "%s/Install/Challenge", t->uri);
        char *chal = get(dm, uri, &err);
        FUZZ_CHECK(t->has_param ? chal && !strcmp(chal, t->param) : !chal,
                   "%s: %s: Install/Challenge is '%s'", when, t->id, chal ? chal : "(none)");
        free(chal);
    }
    record_clean(r, t, (int)status);
    t->status = (int)status;
    t->error = (int32_t)ec;
}

static int alert_seen(void *ctx, const omadm_generic_alert_t *al)
{
    run_t *r = ctx;
    for (unsigned k = 0; k < r->count; k++) {
        const track_t *t = &r->t[k];
        if (t->deleted || strcmp(al->source, t->exec_uri))
            continue;
        char data[16];
        snprintf(data, sizeof data, "%ld", (long)t->error);
        FUZZ_CHECK(!strcmp(al->type, ALERT_TYPE) && !strcmp(al->format, "int") &&
                       !strcmp(al->data, data) && finished(t->status),
                   "an alert for %s (Status %d, ErrorCode %s): type %s, data %s", t->id,
                   t->status, data, al->type, al->data);
        r->alerts_seen[k]++;
        return 0;
    }
    fuzz_fail(__FILE__, __LINE__, "alert", "an alert from %s, which is no enrollment's",
              al->source);
}

/* Every invariant on the enrollments, through the engine dm (full: see
 * check_one); returns how many are running. */
static unsigned check_all(run_t *r, omadm_t *dm, bool full, const char *when)
{
    unsigned running = 0, want = 0;
    bool changed = full;
    mine_t mine;
    dir_mine(r, &mine);
    if (full) {
        /* what the store says it holds is what its directory holds */
        mine_t listed;
        listed.n = 0;
        FUZZ_CHECK(omadm_certstore_list((omadm_certstore_t *)r->cs, my_store(r->ns), list_mine,
                                        &listed) == OMADM_OK,
                   "%s: %s cannot be listed", when, my_store(r->ns));
        FUZZ_CHECK(listed.n == mine.n, "%s: %s lists %u certificates, its directory has %u", when,
                   my_store(r->ns), listed.n, mine.n);
        for (unsigned i = 0; i < listed.n; i++)
            FUZZ_CHECK(in_mine(&mine, listed.thumb[i]), "%s: %s lists %s, not in its directory",
                       when, my_store(r->ns), listed.thumb[i]);
    }
    for (unsigned k = 0; k < r->count; k++) {
        int before = r->t[k].status;
        check_one(r, dm, k, &mine, full, when);
        changed |= r->t[k].status != before;
        running += r->t[k].status == ST_PENDING || r->t[k].status == ST_UNKNOWN;
    }
    for (unsigned k = 0; k < r->count; k++) {
        bool dup = false;
        for (unsigned j = 0; j < k; j++)
            dup |= r->t[j].had_cert && !r->t[j].deleted && !strcmp(r->t[j].thumb, r->t[k].thumb);
        want += r->t[k].had_cert && !r->t[k].deleted && !dup;
    }
    FUZZ_CHECK(mine.n == want, "%s: %s holds %u certificates, the enrollments installed %u", when,
               my_store(r->ns), mine.n, want);
    if (!changed)
        return running; /* the alerts are as they were */
    memset(r->alerts_seen, 0, sizeof r->alerts_seen);
    FUZZ_CHECK(omadm_alerts(dm, alert_seen, r) == OMADM_OK, "%s: omadm_alerts", when);
    for (unsigned k = 0; k < r->count; k++) {
        const track_t *t = &r->t[k];
        int due = !t->deleted && finished(t->status) && !t->delivered;
        FUZZ_CHECK(r->alerts_seen[k] == due, "%s: %s (Status %d) has %d alerts", when, t->id,
                   t->status, r->alerts_seen[k]);
    }
    return running;
}

typedef struct ids {
    char id[MAX_ENROLLMENTS * 4][128];
    char source[MAX_ENROLLMENTS * 4][192];
    unsigned n;
} ids_t;

static int collect_alert(void *ctx, const omadm_generic_alert_t *al)
{
    ids_t *ids = ctx;
    if (ids->n == sizeof ids->id / sizeof ids->id[0])
        return 1;
    snprintf(ids->id[ids->n], sizeof ids->id[0], "%s", al->id);
    snprintf(ids->source[ids->n], sizeof ids->source[0], "%s", al->source);
    ids->n++;
    return 0;
}

/* The host delivered every alert and the server answered 200. */
static void deliver_alerts(run_t *r)
{
    ids_t ids;
    ids.n = 0;
    FUZZ_CHECK(omadm_alerts(r->dm, collect_alert, &ids) == OMADM_OK, "omadm_alerts");
    for (unsigned i = 0; i < ids.n; i++) {
        omadm_error_t err = omadm_alert_delivered(r->dm, ids.id[i]);
        FUZZ_CHECK(err == OMADM_OK, "alert %s delivered: %s", ids.id[i], omadm_strerror(err));
        for (unsigned k = 0; k < r->count; k++)
            if (!strcmp(ids.source[i], r->t[k].exec_uri))
                r->t[k].delivered = true;
        FUZZ_CHECK(omadm_alert_delivered(r->dm, ids.id[i]) == OMADM_E_NOT_FOUND,
                   "alert %s delivered twice", ids.id[i]);
    }
}

/* What the last PKIOperation answer of the step implied, with one
 * enrollment: it must be what became of it. */
static void check_expect(const run_t *r, int64_t now)
{
    const expect_t *x = &r->expect;
    const track_t *t = &r->t[0];
    if (r->count != 1 || t->deleted || x->kind == X_NONE)
        return;
    int st = t->status;
    int32_t ec = t->error;
    switch (x->kind) {
    case X_REFUSED:
        FUZZ_CHECK(st == ST_FAILED && (ec == EC_BAD_SIGNATURE || ec == EC_BAD_DATA ||
                                       ec == EC_NO_CERT || ec == EC_CHAINING),
                   "a forged or malformed CertRep: Status %d, ErrorCode %#x", st, (unsigned)ec);
        break;
    case X_PENDING:
        FUZZ_CHECK((st == ST_PENDING && !ec) || (st == ST_FAILED && ec == EC_POLL_TIMEOUT),
                   "a CertRep PENDING: Status %d, ErrorCode %#x", st, (unsigned)ec);
        break;
    case X_FAILURE:
    case X_ERROR:
        FUZZ_CHECK(st == ST_FAILED && ec == x->ec, "ErrorCode %#x expected: Status %d, ErrorCode %#x",
                   (unsigned)x->ec, st, (unsigned)ec);
        break;
    case X_ISSUED: {
        bool valid = x->from <= now + SKEW && now < x->to;
        FUZZ_CHECK(valid ? st == ST_INSTALLED : st == ST_FAILED && ec == EC_EXPIRED,
                   "a CertRep SUCCESS with a certificate %s at %lld: Status %d, ErrorCode %#x",
                   valid ? "valid" : "not valid", (long long)now, st, (unsigned)ec);
        break;
    }
    default:
        break;
    }
}

/* ---- the HTTP hook ---- */

typedef enum { OP_CACERT, OP_CACAPS, OP_PKI } op_t;

/* The operation of a request, which must be well-formed. */
static op_t request_op(const run_t *r, const omadm_http_req_t *req)
{
    FUZZ_CHECK(req->url && !strncmp(req->url, "http", 4) && req->method, "a request without URL");
    bool ours = false;
    const char *list = URLS[r->urls - 1];
    for (const char *u = list; *u;) {
        while (*u == ' ' || *u == ';')
            u++;
        size_t n = strcspn(u, " ;");
        ours |= n && !strncmp(req->url, u, n);
        u += n;
    }
    FUZZ_CHECK(ours, "a request to %s, not a ServerURL", req->url);
    FUZZ_CHECK(req->max_response > 0 && req->timeout_s > 0, "a request without limits");
    op_t op = strstr(req->url, "operation=GetCACert") ? OP_CACERT
              : strstr(req->url, "operation=GetCACaps") ? OP_CACAPS
              : strstr(req->url, "operation=PKIOperation") ? OP_PKI
                                                            : (op_t)-1;
    FUZZ_CHECK((int)op >= 0, "a request for no SCEP operation: %s", req->url);
    if (!strcmp(req->method, "POST")) {
        FUZZ_CHECK(op == OP_PKI && req->body && req->body_len && req->content_type &&
                       !strcmp(req->content_type, "application/x-pki-message"),
                   "a POST that is not a pkiMessage");
    } else {
        FUZZ_CHECK(!strcmp(req->method, "GET") && !req->body_len, "a %s request", req->method);
    }
    return op;
}

static expect_t spec_expect(const run_t *r, const fuzz_pki_spec_t *s, const variant_t *v)
{
    if (r->world == W_MDM && F.have_capture)
        return (expect_t){X_REFUSED, 0, 0, 0};
    if (fuzz_pki_spec_refused(s))
        return (expect_t){X_REFUSED, 0, 0, 0};
    switch (s->status) {
    case 2:
        return (expect_t){X_PENDING, 0, 0, 0};
    case 1: {
        const char *fi = fuzz_pki_spec_fail_info(s);
        size_t n = strlen(fi);
        if (!n || n > 6 || strspn(fi, "0123456789") != n)
            return (expect_t){X_REFUSED, 0, 0, 0};
        long info = atol(fi);
        return (expect_t){X_FAILURE, EC_SCEP_FAILURE + (int32_t)(info < 0xFF ? info : 0xFF), 0, 0};
    }
    case 0:
        if (s->content == 3)
            return (expect_t){X_REFUSED, 0, 0, 0};
        if (s->content == 0 && v->env[s->cipher]) {
            return v->ec ? (expect_t){X_ERROR, v->ec, 0, 0}
                         : (expect_t){X_ISSUED, 0, v->from, v->to};
        }
        return (expect_t){X_NONE, 0, 0, 0};
    default:
        return (expect_t){X_NONE, 0, 0, 0};
    }
}

static uint8_t *copy(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, size_t *len)
{
    uint8_t *out = malloc(an + bn + 1);
    FUZZ_CHECK(out != NULL, "malloc");
    if (an)
        memcpy(out, a, an);
    if (bn)
        memcpy(out + an, b, bn);
    out[an + bn] = 0;
    *len = an + bn;
    return out;
}

/* The body of the answer at place serial (malloc'ed), and what it implies. */
static uint8_t *body(run_t *r, op_t op, unsigned source, unsigned vi, unsigned serial,
                     const uint8_t *p, size_t n, size_t *len, expect_t *x)
{
    static const char STANDARD_CAPS[] = "POSTPKIOperation\nSHA-256\nSHA-1\nAES\nDES3\nSCEPStandard\n";
    static const uint8_t RIGHT_SPEC[3] = {0x00, 0x02, 0x00}; /* SUCCESS, AES-128, SHA-256 */
    world_t *w = r->w;
    bool mdm = r->world == W_MDM && F.have_capture;
    *x = (expect_t){X_NONE, 0, 0, 0};
    if (source == 3 && !F.have_capture)
        source = 0;
    if (source == 4 && op == OP_PKI && mdm)
        source = 3;
    switch (source) {
    case 1:
    case 4: {
        if (source == 4 && op == OP_CACAPS)
            return copy((const uint8_t *)STANDARD_CAPS, strlen(STANDARD_CAPS), NULL, 0, len);
        if (source == 4 && op == OP_CACERT)
            return copy(w->cacert, w->cacert_len, NULL, 0, len);
        fuzz_pki_spec_t s;
        if (source == 4) {
            fuzz_pki_spec_parse(RIGHT_SPEC, sizeof RIGHT_SPEC, &s);
            vi = V_GOOD;
        } else {
            fuzz_pki_spec_parse(p, n, &s);
        }
        fuzz_pki_rep_t rep = w->rep;
        uint8_t nonce[SCEP_NONCE_LEN];
        FUZZ_CHECK(F.plat->random(NULL, nonce, sizeof nonce) == 0, "nonce");
        rep.nonce = nonce; /* the pinned senderNonce */
        const variant_t *v = variant(w, vi, serial);
        rep.env = v->env;
        rep.env_len = v->env_len;
        uint8_t *der = fuzz_pki_certrep(&rep, &s, len);
        if (!der)
            return copy(NULL, 0, NULL, 0, len);
        if (op == OP_PKI)
            *x = spec_expect(r, &s, v);
        return der;
    }
    case 2:
        return copy(w->cacert, w->cacert_len, NULL, 0, len);
    case 3:
        if (op == OP_CACAPS)
            return copy(F.cap.caps, F.cap.caps_len, NULL, 0, len);
        if (op == OP_CACERT)
            return copy(F.cap.ca, F.cap.ca_len, NULL, 0, len);
        *x = mdm ? (expect_t){X_ISSUED, 0, F.cap.from, F.cap.to} : (expect_t){X_REFUSED, 0, 0, 0};
        return copy(F.cap.certrep, F.cap.certrep_len, NULL, 0, len);
    case 5:
        return copy(w->cacert, w->cacert_len, p, n, len);
    default:
        return copy(p, n, NULL, 0, len);
    }
}

static omadm_http_result_t answer(void *ctx, const omadm_http_req_t *req, omadm_http_resp_t *resp,
                                  char *err, size_t err_size)
{
    run_t *r = ctx;
    op_t op = request_op(r, req);
    r->step_requests++;
    if (op == OP_PKI)
        r->expect.kind = X_NONE;
    if (op == OP_CACERT)
        r->cacert_world = false;
    if (r->cur == r->n || is_server_chunk(&r->chunk[r->cur])) {
        snprintf(err, err_size, "nothing answers");
        return OMADM_HTTP_CONNECT;
    }
    const chunk_t *c = &r->chunk[r->cur++];
    uint8_t h0 = c->len > 0 ? c->p[0] : 0, h1 = c->len > 1 ? c->p[1] : 0;
    const uint8_t *p = c->p + (c->len > 2 ? 2 : c->len);
    size_t n = c->len > 2 ? c->len - 2 : 0;
    switch (h0 & 7) {
    case 4:
        snprintf(err, err_size, "connection refused");
        return OMADM_HTTP_CONNECT;
    case 5:
        snprintf(err, err_size, "timed out");
        return OMADM_HTTP_TIMEOUT;
    case 6:
        snprintf(err, err_size, "response too large");
        return OMADM_HTTP_TOO_LARGE;
    case 7:
        if (h0 & 8) {
            r->aborted = true;
            return OMADM_HTTP_ABORTED;
        }
        snprintf(err, err_size, "TLS handshake failed");
        r->transport_failed = true;
        return OMADM_HTTP_FAILED;
    default:
        break;
    }
    if (h0 & 8) {
        /* the transfer, with the store let go */
        omadm_error_t u = omadm_certstore_unlock((omadm_certstore_t *)r->cs);
        FUZZ_CHECK(u == OMADM_OK || u == OMADM_E_DENIED, "omadm_certstore_unlock: %s",
                   omadm_strerror(u));
        if (u == OMADM_OK)
            FUZZ_CHECK(omadm_certstore_relock((omadm_certstore_t *)r->cs) == OMADM_OK,
                       "omadm_certstore_relock");
    }
    expect_t x;
    size_t len = 0;
    uint8_t *b = body(r, op, h0 >> 4 & 7, h1 >> 4 & 7, (unsigned)(c - r->chunk), p, n, &len, &x);
    if (len > req->max_response) {
        free(b);
        snprintf(err, err_size, "response too large");
        return OMADM_HTTP_TOO_LARGE;
    }
    resp->status = STATUSES[h1 & 15];
    if (verbose)
        fprintf(stderr, "  answer %u to %s: HTTP %d, %zu bytes\n", (unsigned)(c - r->chunk),
                req->url, resp->status, len);
    resp->body = b;
    resp->len = len;
    snprintf(resp->content_type, sizeof resp->content_type, "%s",
             h1 & 0x80            ? "text/html; charset=utf-8"
             : op == OP_CACAPS    ? "text/plain"
             : op == OP_PKI       ? "application/x-pki-message"
             : (h0 >> 4 & 7) == 0 ? "application/x-x509-ca-ra-cert"
                                  : "application/x-x509-ca-cert");
    if (resp->status == 200) {
        if (op == OP_CACERT)
            r->cacert_world = len == r->w->cacert_len && !memcmp(b, r->w->cacert, len);
        if (op == OP_PKI && r->cacert_world)
            r->expect = x;
    }
    return OMADM_HTTP_OK;
}

static void release(void *ctx, omadm_http_resp_t *resp)
{
    (void)ctx;
    free(resp->body);
    resp->body = NULL;
}

/* ---- the run ---- */

static void steps(run_t *r)
{
    int64_t now = FUZZ_NOW;
    unsigned running = r->count;
    for (unsigned k = 0; k < r->count; k++) {
        r->t[k].status = get_status(r->dm, &r->t[k]);
        FUZZ_CHECK(r->t[k].status == ST_UNKNOWN, "the setup left %s with Status %d", r->t[k].id,
                   r->t[k].status);
    }
    for (int i = 0; i < MAX_STEPS; i++) {
        while (r->cur < r->n && is_server_chunk(&r->chunk[r->cur])) {
            server_message(r, &r->chunk[r->cur++]);
            running = check_all(r, r->dm, false, "after a server message");
        }
        bool answers = r->cur < r->n;
        fuzz_clock_set(now);
        r->step_requests = 0;
        r->aborted = false;
        r->expect.kind = X_NONE;
        int64_t next = 0;
        omadm_error_t err = omadm_step(r->dm, &next);
        FUZZ_CHECK(err == OMADM_OK, "step %d: omadm_step: %s", i + 1, omadm_strerror(err));
        FUZZ_CHECK(r->step_requests <= running * r->urls * 4,
                   "step %d: %u requests for %u running enrollments", i + 1, r->step_requests,
                   running);
        char when[32];
        snprintf(when, sizeof when, "after step %d", i + 1);
        running = check_all(r, r->dm, false, when);
        if (r->aborted)
            FUZZ_CHECK(next == now, "%s: an exchange was stopped, next due %lld", when,
                       (long long)next);
        else if (running)
            FUZZ_CHECK(next > now && next != OMADM_NEVER, "%s: %u running, next due %lld", when,
                       running, (long long)next);
        else
            FUZZ_CHECK(next == OMADM_NEVER, "%s: none running, next due %lld", when,
                       (long long)next);
        check_expect(r, now);
        if (verbose)
            for (unsigned k = 0; k < r->count; k++)
                fprintf(stderr, "%s: %s Status %d, ErrorCode %#x; next due %+lld s\n", when,
                        r->t[k].id, r->t[k].status, (unsigned)r->t[k].error,
                        next == OMADM_NEVER ? -1LL : (long long)(next - now));
        bool message_ahead = r->cur < r->n && is_server_chunk(&r->chunk[r->cur]);
        if (!answers || (!running && !message_ahead))
            break;
        now = next == OMADM_NEVER ? now + MINUTE : next > now ? next : now + 1;
    }
}

/* The files of the store directory and of its state records free of the
 * Challenges of finished runs (certificates and keys cannot hold them). */
static void scan_dir(const run_t *r, int dfd, const char *path)
{
    DIR *d = fdopendir(dfd);
    FUZZ_CHECK(d != NULL, "opendir %s", path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (e->d_type == DT_DIR) {
            if (!strcmp(e->d_name, "state"))
                scan_dir(r, fd, e->d_name);
            else
                close(fd);
            continue;
        }
        struct stat st;
        char *buf = fstat(fd, &st) == 0 && st.st_size > 0 ? malloc((size_t)st.st_size) : NULL;
        ssize_t got = buf ? read(fd, buf, (size_t)st.st_size) : 0;
        close(fd);
        for (unsigned k = 0; got > 0 && k < r->count; k++) {
            const track_t *t = &r->t[k];
            for (unsigned i = 0; i < t->runs; i++) {
                if (i + 1 == t->runs && !t->deleted && t->status == ST_UNKNOWN)
                    continue;
                FUZZ_CHECK(!memmem(buf, (size_t)got, t->chal[i], strlen(t->chal[i])),
                           "the Challenge of run %u of %s is in %s/%s", i + 1, t->id, path,
                           e->d_name);
            }
        }
        free(buf);
    }
    closedir(d);
}

static void show_log(void *ctx, omadm_log_level_t level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "  log %d: %s\n", (int)level, msg);
}

static void run_input(run_t *r, unsigned config)
{
    static omadm_http_t http;
    http = (omadm_http_t){r, answer, release};
    omadm_certstore_host_t host = {.http = &http, .minute_seconds = MINUTE,
                                   .log = verbose ? show_log : NULL};
    r->dm = fuzz_engine(&r->mem);
    r->cs = fuzz_store_open(r->dm);
    omadm_certstore_set_host((omadm_certstore_t *)r->cs, &host);
    setup(r, config);
    steps(r);
    check_all(r, r->dm, true, "at the end");
    omadm_free(r->dm);
    /* a host that starts again: the engine state it saved loads */
    omadm_free(fuzz_engine(&r->mem));
    int fd = open(fuzz_store_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "the store directory");
    scan_dir(r, fd, fuzz_store_dir());
    omadm_certstore_set_host((omadm_certstore_t *)r->cs, NULL);
    fuzz_store_done(r->cs, "after the input");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    make_fixture();
    const char *v = getenv("FUZZ_ENROLL_LOG");
    verbose = v && *v && strcmp(v, "0");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static run_t r;
    memset(&r, 0, sizeof r);
    uint8_t c0 = data[0], c1 = data[1];
    static const unsigned counts[4] = {1, 2, 3, 1};
    r.world = (c0 & 3) == 3 ? W_FIXTURE : c0 & 3;
    r.ns = c0 >> 2 & 3;
    /* the recorded CertRep would give two enrollments one certificate */
    r.count = r.world == W_MDM && F.have_capture ? 1 : counts[c0 >> 4 & 3];
    r.urls = c0 & 0x40 ? 2 : 1;
    r.extras = c0 & 0x80;
    r.retry_count = RETRY_COUNTS[c1 & 3];
    r.retry_delay = RETRY_DELAYS[c1 >> 2 & 3];
    r.hash = c1 >> 4 & 3;
    r.key_usage = KEY_USAGES[c1 >> 6 & 3];
    r.w = &F.w[r.world];
    /* the configuration as the setup sees it */
    unsigned config = (unsigned)(r.world | r.ns << 2 | (r.count - 1) << 4 | (r.urls - 1) << 6 |
                                 (r.extras ? 0x80 : 0)) << 8 | c1;
    for (unsigned k = 0; k < r.count; k++) {
        track_t *t = &r.t[k];
        snprintf(t->id, sizeof t->id, "Fuzz%u", k + 1);
        snprintf(t->uri, sizeof t->uri, "%s/%s", ns_base(r.ns), t->id);
        snprintf(t->exec_uri, sizeof t->exec_uri, "%s/Install/Enroll", t->uri);
    }
    split(&r, data + 2, size - 2);
    fuzz_platform_reset();
    fuzz_store_fresh();
    run_input(&r, config);
    fuzz_mem_clear(&r.mem);
    ERR_clear_error();
    return 0;
}
