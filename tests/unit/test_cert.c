/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cert.c - store/cert.c, the certificate store's OpenSSL layer:
 * cert_decode(&P, ) (base64 on one line, with line breaks and spaces, PEM
 * armour, raw DER only when raw_ok, refusals and their reasons),
 * cert_thumbprint() against the .sha1 files, cert_thumb_normalise(),
 * cert_info_from_der(&P, ) (IssuedBy/IssuedTo text, validity, TemplateName,
 * subject hash), cert_subject_hash(), cert_pem(&P, ) and cert_b64(&P, ).
 *
 * Expected texts were computed once from the fixed test PKI with the
 * OpenSSL 3.0 CLI:
 *   openssl x509 -in X.pem -noout -subject -issuer -hash -startdate -enddate \
 *     -nameopt esc_2253,esc_ctrl,utf8,dump_nostr,dump_der,sep_comma_plus_space,sname
 * (RFC 4514 escaping, UTF-8 kept, ", " between RDNs, encoded order) and
 * match tests/data/pki/README.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "store/cert.h"
#include "support_pki.h"
#include "platform.h"

/* The library's default platform table (libc allocator, time(), OpenSSL's
 * RNG), for the calls that take one. */
static omadm_platform_t P;

typedef struct expect {
    const char *name;
    const char *issued_to;
    const char *issued_by;
    const char *template_name;
    unsigned long hash;
} expect_t;

static const expect_t expected[] = {
    {"root", "C=DE, O=Conformance Test PKI, CN=Conformance Root",
     "C=DE, O=Conformance Test PKI, CN=Conformance Root", "", 0xfc50d93fUL},
    {"inter", "C=DE, O=Conformance Test PKI, CN=Conformance Intermediate",
     "C=DE, O=Conformance Test PKI, CN=Conformance Root", "", 0x956e0405UL},
    {"leaf", "C=DE, O=Example\\, Inc., OU=Pr\xc3\xbc" "fung, CN=leaf.conformance.example",
     "C=DE, O=Conformance Test PKI, CN=Conformance Intermediate", "", 0x880dc961UL},
    {"root2", "O=Unrelated Test PKI, CN=Unrelated Root", "O=Unrelated Test PKI, CN=Unrelated Root",
     "", 0x38b8e255UL},
    {"template", "C=DE, O=Conformance Test PKI, CN=template.conformance.example",
     "C=DE, O=Conformance Test PKI, CN=Conformance Intermediate", "WebServer", 0x576ccbebUL},
};
#define N_CERTS (sizeof expected / sizeof expected[0])

/* A file of the test PKI; fails the test when it cannot be read. */
static uint8_t *pki(const char *name, const char *ext, size_t *len)
{
    char file[64];
    snprintf(file, sizeof file, "%s.%s", name, ext);
    uint8_t *data = tpki_read(file, len);
    if (!data)
        fail_msg("cannot read tests/data/pki/%s", file);
    return data;
}

/* cert_decode must succeed and give exactly want. */
static void decode_ok(const void *in, size_t len, bool raw_ok, const uint8_t *want,
                      size_t want_len)
{
    uint8_t *der = (uint8_t *)"untouched";
    size_t der_len = 0;
    const char *why = NULL;
    int rc = cert_decode(&P, in, len, raw_ok, &der, &der_len, &why);
    if (rc)
        fail_msg("cert_decode failed: %s", why ? why : "(no reason)");
    assert_non_null(der);
    assert_int_equal(der_len, want_len);
    assert_memory_equal(der, want, want_len);
    free(der);
}

/* cert_decode must fail with DER NULL and a reason (exactly want_why when
 * not NULL). */
static void decode_fails(const void *in, size_t len, bool raw_ok, const char *want_why)
{
    uint8_t *der = (uint8_t *)"untouched";
    size_t der_len = 12345;
    const char *why = NULL;
    assert_int_equal(cert_decode(&P, in, len, raw_ok, &der, &der_len, &why), -1);
    assert_null(der);
    assert_non_null(why);
    assert_true(*why);
    if (want_why)
        assert_string_equal(why, want_why);
}

/* The base64 body of a PEM file: the lines between the armour lines. */
static char *pem_body(const char *pem)
{
    const char *start = strchr(pem, '\n');
    const char *end = strstr(pem, "-----END");
    assert_non_null(start);
    assert_non_null(end);
    start++;
    char *out = malloc((size_t)(end - start) + 1);
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = 0;
    return out;
}

/* ---- cert_decode ---- */

static void test_decode_b64_one_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len, b64_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        uint8_t *b64 = pki(expected[i].name, "b64", &b64_len);
        /* as the file has it (final newline) and without the newline */
        decode_ok(b64, b64_len, false, der, der_len);
        assert_int_equal(b64[b64_len - 1], '\n');
        decode_ok(b64, b64_len - 1, false, der, der_len);
        /* raw_ok does not stop base64 from being accepted */
        decode_ok(b64, b64_len - 1, true, der, der_len);
        free(b64);
        free(der);
    }
}

static void test_decode_b64_line_breaks_and_spaces(void **state)
{
    (void)state;
    size_t der_len, b64_len, pem_len;
    uint8_t *der = pki("leaf", "der", &der_len);
    uint8_t *b64 = pki("leaf", "b64", &b64_len);
    uint8_t *pem = pki("leaf", "pem", &pem_len);
    b64_len--; /* drop the final newline */

    /* the PEM body without armour: 64-column lines */
    char *body = pem_body((char *)pem);
    decode_ok(body, strlen(body), false, der, der_len);

    /* CRLF every 76 characters, a space every 4, a tab every 10, leading
     * and trailing white space */
    char *mixed = malloc(b64_len * 4 + 16);
    size_t w = 0;
    mixed[w++] = ' ';
    mixed[w++] = '\n';
    for (size_t i = 0; i < b64_len; i++) {
        mixed[w++] = (char)b64[i];
        if (i % 76 == 75) {
            mixed[w++] = '\r';
            mixed[w++] = '\n';
        } else if (i % 10 == 9) {
            mixed[w++] = '\t';
        } else if (i % 4 == 3) {
            mixed[w++] = ' ';
        }
    }
    mixed[w++] = '\r';
    mixed[w++] = '\n';
    mixed[w++] = ' ';
    decode_ok(mixed, w, false, der, der_len);

    /* one character per line */
    char *tall = malloc(b64_len * 2 + 1);
    w = 0;
    for (size_t i = 0; i < b64_len; i++) {
        tall[w++] = (char)b64[i];
        tall[w++] = '\n';
    }
    decode_ok(tall, w, false, der, der_len);

    free(tall);
    free(mixed);
    free(body);
    free(pem);
    free(b64);
    free(der);
}


/* base64 of bytes with EVP_EncodeBlock ('=' padding, no line breaks). */
static char *b64_of(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static void test_decode_b64_padding(void **state)
{
    (void)state;
    /* The fixed PKI's DER lengths are all multiples of 3 (no '=' in their
     * base64): make certificates until one needs "=" and one "==". */
    bool seen[3] = {true, false, false};
    char cn[80] = "p";
    for (long serial = 1; serial < 60 && !(seen[1] && seen[2]); serial++) {
        uint8_t *der = NULL;
        size_t der_len = 0;
        strcat(cn, "x");
        assert_int_equal(tpki_make_cert("Padding Test", cn, serial, &der, &der_len), 0);
        size_t pad = (3 - der_len % 3) % 3;
        if (!seen[pad]) {
            seen[pad] = true;
            char *b64 = b64_of(der, der_len);
            size_t n = strlen(b64);
            assert_int_equal(b64[n - 1], '=');
            assert_int_equal(b64[n - 2] == '=', pad == 2);
            decode_ok(b64, n, false, der, der_len);
            /* with a line break before the padding */
            char *split = malloc(n + 2);
            memcpy(split, b64, n - pad);
            split[n - pad] = '\n';
            memcpy(split + n - pad + 1, b64 + n - pad, pad);
            decode_ok(split, n + 1, false, der, der_len);
            /* data after the padding is not base64 */
            memcpy(split, b64, n);
            split[n] = 'A';
            decode_fails(split, n + 1, false, "not base64");
            free(split);
            free(b64);
        }
        free(der);
    }
    assert_true(seen[1] && seen[2]);
}

static void test_decode_pem(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len, pem_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        uint8_t *pem = pki(expected[i].name, "pem", &pem_len);
        decode_ok(pem, pem_len, false, der, der_len);
        decode_ok(pem, pem_len, true, der, der_len);
        /* CRLF line ends, text around the armour */
        char *crlf = malloc(pem_len * 2 + 64);
        size_t w = (size_t)sprintf(crlf, "subject=whatever\r\n");
        for (size_t k = 0; k < pem_len; k++) {
            if (pem[k] == '\n')
                crlf[w++] = '\r';
            crlf[w++] = (char)pem[k];
        }
        w += (size_t)sprintf(crlf + w, "\r\n");
        decode_ok(crlf, w, false, der, der_len);
        free(crlf);
        free(pem);
        free(der);
    }
}

static void test_decode_raw_der_only_when_raw_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        decode_ok(der, der_len, true, der, der_len);
        decode_fails(der, der_len, false, "not base64");
        free(der);
    }
}

static void test_decode_two_certificates_fail(void **state)
{
    (void)state;
    size_t a_len, b_len, da_len, db_len;
    uint8_t *a = pki("root", "pem", &a_len);
    uint8_t *b = pki("inter", "pem", &b_len);
    uint8_t *da = pki("root", "der", &da_len);
    uint8_t *db = pki("inter", "der", &db_len);

    /* two PEM certificates */
    uint8_t *two = malloc(a_len + b_len + 1);
    memcpy(two, a, a_len);
    memcpy(two + a_len, b, b_len);
    decode_fails(two, a_len + b_len, false, NULL);
    decode_fails(two, a_len + b_len, true, NULL);
    /* the same certificate twice */
    memcpy(two + a_len, a, a_len);
    decode_fails(two, 2 * a_len, false, NULL);

    /* two DERs back to back: raw, and in base64 */
    uint8_t *dd = malloc(da_len + db_len);
    memcpy(dd, da, da_len);
    memcpy(dd + da_len, db, db_len);
    decode_fails(dd, da_len + db_len, true, NULL);
    char *b64 = b64_of(dd, da_len + db_len);
    decode_fails(b64, strlen(b64), false, "not an X.509 certificate");
    decode_fails(b64, strlen(b64), true, "not an X.509 certificate");

    free(b64);
    free(dd);
    free(two);
    free(db);
    free(da);
    free(b);
    free(a);
}

static void test_decode_trailing_garbage_fails(void **state)
{
    (void)state;
    size_t der_len;
    uint8_t *der = pki("root", "der", &der_len);
    static const uint8_t tails[][4] = {{0}, {0, 0}, {0x30, 0x00}, {'x', 'y', 'z', '\n'}};
    static const size_t tail_len[] = {1, 2, 2, 4};
    for (size_t t = 0; t < 4; t++) {
        size_t n = der_len + tail_len[t];
        uint8_t *buf = malloc(n);
        memcpy(buf, der, der_len);
        memcpy(buf + der_len, tails[t], tail_len[t]);
        decode_fails(buf, n, true, NULL);
        char *b64 = b64_of(buf, n);
        decode_fails(b64, strlen(b64), false, "not an X.509 certificate");
        decode_fails(b64, strlen(b64), true, "not an X.509 certificate");
        free(b64);
        free(buf);
    }
    /* and a truncated DER */
    decode_fails(der, der_len - 1, true, NULL);
    char *b64 = b64_of(der, der_len - 3);
    decode_fails(b64, strlen(b64), false, "not an X.509 certificate");
    free(b64);
    free(der);
}

static void test_decode_not_base64(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "hello world!",   /* '!' */
        "MIIB@AAA",       /* '@' */
        "MIIBAAA",        /* 7 characters */
        "MIIBAA=A",       /* data after padding */
        "MIIB====",       /* too much padding */
        "MIIB-_AA",       /* base64url alphabet */
        "\xc3\xa4\xc3\xa4", /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        decode_fails(bad[i], strlen(bad[i]), false, "not base64");
        decode_fails(bad[i], strlen(bad[i]), true, "not base64");
    }
    /* a certificate's base64 with one character replaced by '*' */
    size_t b64_len;
    uint8_t *b64 = pki("root", "b64", &b64_len);
    b64[100] = '*';
    decode_fails(b64, b64_len, false, "not base64");
    free(b64);
}

static void test_decode_not_a_certificate(void **state)
{
    (void)state;
    size_t n, der_len;
    uint8_t *b64 = pki("not-a-cert", "b64", &n);
    uint8_t *der = pki("not-a-cert", "der", &der_len);
    decode_fails(b64, n, false, "not an X.509 certificate");
    decode_fails(b64, n, true, "not an X.509 certificate");
    /* raw: refused (the reason is not pinned: it falls back to base64) */
    decode_fails(der, der_len, true, NULL);
    /* base64 of text */
    decode_fails("aGVsbG8=", 8, false, "not an X.509 certificate");
    decode_fails("AAAA", 4, false, "not an X.509 certificate");
    /* PEM armour around something else */
    static const char key_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
                                  "-----END PUBLIC KEY-----\n";
    decode_fails(key_pem, strlen(key_pem), false, NULL);
    /* PEM armour around garbage */
    static const char junk_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                   "aGVsbG8=\n"
                                   "-----END CERTIFICATE-----\n";
    decode_fails(junk_pem, strlen(junk_pem), false, NULL);
    /* armour without an end */
    static const char open_pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    decode_fails(open_pem, strlen(open_pem), false, NULL);
    free(der);
    free(b64);
}

static void test_decode_empty(void **state)
{
    (void)state;
    decode_fails("", 0, false, NULL);
    decode_fails("", 0, true, NULL);
    decode_fails(" \r\n\t ", 5, false, NULL);
    decode_fails("\n", 1, true, NULL);
    decode_fails("====", 4, false, NULL);
}

/* ---- thumbprints ---- */

static void test_thumbprint_matches_sha1_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        char want[41], got[CERT_THUMB_HEX + 1];
        assert_int_equal(tpki_thumb(expected[i].name, want), 0);
        memset(got, 'x', sizeof got);
        assert_int_equal(cert_thumbprint(der, der_len, got), 0);
        assert_int_equal(strlen(got), 40);
        assert_string_equal(got, want);
        free(der);
    }
    /* the README's table, for one of them */
    size_t der_len;
    uint8_t *der = pki("root", "der", &der_len);
    char got[CERT_THUMB_HEX + 1];
    assert_int_equal(cert_thumbprint(der, der_len, got), 0);
    assert_string_equal(got, "ADC1911E726D0E000C28A1FD4F864417303F3208");
    free(der);
    /* SHA-1 of nothing */
    assert_int_equal(cert_thumbprint((const uint8_t *)"", 0, got), 0);
    assert_string_equal(got, "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
}

static void test_thumb_normalise(void **state)
{
    (void)state;
    char up[CERT_THUMB_HEX + 1];
    assert_true(cert_thumb_normalise("adc1911e726d0e000c28a1fd4f864417303f3208", up));
    assert_string_equal(up, "ADC1911E726D0E000C28A1FD4F864417303F3208");
    assert_true(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F3208", up));
    assert_string_equal(up, "ADC1911E726D0E000C28A1FD4F864417303F3208");
    assert_true(cert_thumb_normalise("AdC1911e726D0E000c28A1Fd4f864417303F3208", up));
    assert_string_equal(up, "ADC1911E726D0E000C28A1FD4F864417303F3208");
    assert_true(cert_thumb_normalise("0123456789abcdefABCDEF0123456789abcdefAB", up));
    assert_string_equal(up, "0123456789ABCDEFABCDEF0123456789ABCDEFAB");

    /* 39 and 41 digits */
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F320", up));
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F32080", up));
    /* 80 digits */
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F3208"
                                      "ADC1911E726D0E000C28A1FD4F864417303F3208",
                                      up));
    /* not hex: at the start, the middle, the end; 0x prefix; spaces; colons */
    assert_false(cert_thumb_normalise("GDC1911E726D0E000C28A1FD4F864417303F3208", up));
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28Z1FD4F864417303F3208", up));
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F320g", up));
    assert_false(cert_thumb_normalise("0xC1911E726D0E000C28A1FD4F864417303F3208", up));
    assert_false(cert_thumb_normalise("ADC1911E726D0E000C28A1FD4F864417303F320 ", up));
    assert_false(cert_thumb_normalise(" ADC1911E726D0E000C28A1FD4F864417303F320", up));
    assert_false(cert_thumb_normalise("AD:C1:91:1E:72:6D:0E:00:0C:28:A1:FD:4F:86", up));
    assert_false(cert_thumb_normalise("", up));
    assert_false(cert_thumb_normalise("System", up));
}

/* ---- cert_info_from_der ---- */

static void test_info_from_der(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        const expect_t *e = &expected[i];
        size_t der_len;
        uint8_t *der = pki(e->name, "der", &der_len);
        char thumb[41];
        assert_int_equal(tpki_thumb(e->name, thumb), 0);
        cert_info_t info;
        assert_int_equal(cert_info_from_der(&P, der, der_len, &info), 0);
        assert_string_equal(info.thumb, thumb);
        assert_string_equal(info.issued_to, e->issued_to);
        assert_string_equal(info.issued_by, e->issued_by);
        assert_string_equal(info.valid_from, "2025-01-01T00:00:00Z");
        assert_string_equal(info.valid_to, "2045-01-01T00:00:00Z");
        assert_non_null(info.template_name);
        assert_string_equal(info.template_name, e->template_name);
        assert_int_equal(info.subject_hash, e->hash);
        cert_info_free(&P, &info);
        assert_null(info.issued_by);
        assert_null(info.issued_to);
        assert_null(info.template_name);
        cert_info_free(&P, &info); /* twice is harmless */
        free(der);
    }
}

static void test_info_generated_certificate(void **state)
{
    (void)state;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(tpki_make_cert("Unit \"Test\" <O>", "a+b=c;d #1", 77, &der, &der_len), 0);
    cert_info_t info;
    assert_int_equal(cert_info_from_der(&P, der, der_len, &info), 0);
    /* RFC 4514 section 2.4: " + ; < > escaped; '=' and a '#' that does
     * not start the value are not */
    assert_string_equal(info.issued_to, "O=Unit \\\"Test\\\" \\<O\\>, CN=a\\+b=c\\;d #1");
    assert_string_equal(info.issued_by, info.issued_to);
    assert_string_equal(info.template_name, "");
    assert_string_equal(info.valid_from, "2025-01-01T00:00:00Z");
    assert_string_equal(info.valid_to, "2045-01-01T00:00:00Z");
    unsigned long h = 0;
    assert_int_equal(cert_subject_hash(der, der_len, &h), 0);
    assert_int_equal(h, info.subject_hash);
    cert_info_free(&P, &info);
    free(der);

    /* a leading '#', leading and trailing spaces */
    assert_int_equal(tpki_make_cert("#hash", " spaced ", 78, &der, &der_len), 0);
    assert_int_equal(cert_info_from_der(&P, der, der_len, &info), 0);
    assert_string_equal(info.issued_to, "O=\\#hash, CN=\\ spaced\\ ");
    cert_info_free(&P, &info);
    free(der);
}

/* The offset of the first occurrence of pat in der, or fails. */
static size_t find_bytes(const uint8_t *der, size_t len, const uint8_t *pat, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(der + i, pat, n))
            return i;
    fail_msg("pattern not found");
    return 0;
}

/* The store reads a certificate's subjectPublicKeyInfo as its algorithm
 * and bits, never as a key: one whose key OpenSSL cannot decode is
 * accepted as d2i_X509 accepts it, with its names; one whose key field is
 * not an algorithm and a BIT STRING is refused as d2i_X509 refuses it. */
static void test_decode_keeps_the_key_opaque(void **state)
{
    (void)state;
    /* id-ecPublicKey, the algorithm of the test PKI's keys */
    static const uint8_t ec_oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    size_t len;
    uint8_t *der = pki("root", "der", &len);
    size_t at = find_bytes(der, len, ec_oid, sizeof ec_oid);
    assert_int_equal(der[at - 2], 0x30); /* the AlgorithmIdentifier, short length */
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *odd = malloc(len);
        memcpy(odd, der, len);
        bool refused = pass == 1;
        if (!refused) {
            odd[at + sizeof ec_oid - 1] = 0x7f; /* 1.2.840.10045.2.127: no such key type */
        } else {
            /* the BIT STRING after the algorithm becomes an OCTET STRING */
            size_t bits = at + der[at - 1];
            assert_int_equal(odd[bits], 0x03);
            odd[bits] = 0x04;
        }
        const unsigned char *p = odd;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        assert_int_equal(x != NULL, !refused);
        X509_free(x);
        uint8_t *got = NULL;
        size_t got_len = 0;
        const char *why = NULL;
        cert_info_t info;
        int rc = cert_decode_info(&P, odd, len, true, &got, &got_len, &info, &why);
        if (refused) {
            assert_int_equal(rc, -1);
            assert_null(got);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(got_len, len);
            assert_string_equal(info.issued_to, expected[0].issued_to);
            assert_int_equal(info.subject_hash, expected[0].hash);
            cert_info_free(&P, &info);
        }
        free(got);
        free(odd);
    }
    free(der);
}

static void test_info_not_a_certificate(void **state)
{
    (void)state;
    size_t n;
    uint8_t *spki = pki("not-a-cert", "der", &n);
    cert_info_t info;
    memset(&info, 0x5a, sizeof info);
    assert_int_equal(cert_info_from_der(&P, spki, n, &info), -1);
    assert_null(info.issued_by);
    assert_null(info.issued_to);
    assert_null(info.template_name);
    cert_info_free(&P, &info);
    assert_int_equal(cert_info_from_der(&P, (const uint8_t *)"hello", 5, &info), -1);
    assert_int_equal(cert_info_from_der(&P, (const uint8_t *)"", 0, &info), -1);
    /* truncated certificate */
    size_t der_len;
    uint8_t *der = pki("leaf", "der", &der_len);
    assert_int_equal(cert_info_from_der(&P, der, der_len / 2, &info), -1);
    unsigned long h;
    assert_int_equal(cert_subject_hash(der, der_len / 2, &h), -1);
    assert_int_equal(cert_subject_hash(spki, n, &h), -1);
    ERR_clear_error();
    assert_int_equal(cert_der_subject_hash(der, der_len / 2, &h), -1);
    assert_int_equal(cert_der_subject_hash(spki, n, &h), -1);
    assert_int_equal(cert_der_subject_hash((const uint8_t *)"", 0, &h), -1);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left in OpenSSL's queue */
    free(der);
    free(spki);
}

static void test_subject_hash(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        unsigned long h = 0, fast = 0;
        assert_int_equal(cert_subject_hash(der, der_len, &h), 0);
        assert_int_equal(h, expected[i].hash);
        assert_int_equal(cert_der_subject_hash(der, der_len, &fast), 0);
        assert_int_equal(fast, expected[i].hash);
        /* every truncation is refused, and never read beyond */
        for (size_t n = 0; n < der_len; n++) {
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, der, n);
            assert_int_equal(cert_der_subject_hash(cut, n, &fast), -1);
            free(cut);
        }
        free(der);
    }
}

/* A version 1 certificate (no [0] version field) and a v3 one with a
 * multi-valued RDN, made here: the walk to the subject gives OpenSSL's
 * hash for both. */
static void test_subject_hash_shapes(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    for (int version = 0; version <= 2; version += 2) {
        X509 *x = X509_new();
        assert_non_null(x);
        assert_true(X509_set_version(x, version));
        ASN1_INTEGER_set(X509_get_serialNumber(x), 4242 + version);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Shapes \xc3\xa9", -1,
                                   -1, 0);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "UID", MBSTRING_ASC, (const unsigned char *)"b", -1, -1, 1);
        X509_set_issuer_name(x, n);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        assert_true(len > 0);
        unsigned long strict = 0, fast = 1;
        assert_int_equal(cert_subject_hash(der, (size_t)len, &strict), 0);
        assert_int_equal(cert_der_subject_hash(der, (size_t)len, &fast), 0);
        assert_int_equal(fast, strict);
        assert_int_equal(fast, X509_subject_name_hash(x));
        OPENSSL_free(der);
        X509_free(x);
    }
    EVP_PKEY_free(key);
}

/* ---- PEM and base64 renderings ---- */

static void test_pem_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len, file_len, pem_len = 0;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        uint8_t *file = pki(expected[i].name, "pem", &file_len);
        char *pem = cert_pem(&P, der, der_len, &pem_len);
        assert_non_null(pem);
        assert_int_equal(pem_len, strlen(pem));
        /* byte for byte what `openssl x509` writes: 64-column lines */
        assert_int_equal(pem_len, file_len);
        assert_memory_equal(pem, file, file_len);
        assert_true(!strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28));
        assert_string_equal(pem + pem_len - 26, "-----END CERTIFICATE-----\n");
        decode_ok(pem, pem_len, false, der, der_len);
        /* pem_len is optional */
        char *again = cert_pem(&P, der, der_len, NULL);
        assert_string_equal(again, pem);
        free(again);
        free(pem);
        free(file);
        free(der);
    }
    /* a length that is a multiple of 48 bytes (64 characters): no empty line */
    uint8_t blob[96];
    memset(blob, 0xab, sizeof blob);
    char *pem = cert_pem(&P, blob, sizeof blob, NULL);
    assert_null(strstr(pem, "\n\n"));
    free(pem);
}

static void test_b64(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CERTS; i++) {
        size_t der_len, file_len;
        uint8_t *der = pki(expected[i].name, "der", &der_len);
        uint8_t *file = pki(expected[i].name, "b64", &file_len);
        char *b64 = cert_b64(&P, der, der_len);
        assert_non_null(b64);
        assert_null(strchr(b64, '\n'));
        assert_int_equal(strlen(b64), file_len - 1);
        assert_memory_equal(b64, file, file_len - 1);
        decode_ok(b64, strlen(b64), false, der, der_len);
        free(b64);
        free(file);
        free(der);
    }
    char *b = cert_b64(&P, (const uint8_t *)"hello", 5);
    assert_string_equal(b, "aGVsbG8=");
    free(b);
    b = cert_b64(&P, (const uint8_t *)"", 0);
    assert_string_equal(b, "");
    free(b);
}

static int group_setup(void **state)
{
    (void)state;
    return tpki_dir() ? 0 : -1;
}

int main(void)
{
    plat_init(&P, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_b64_one_line),
        cmocka_unit_test(test_decode_b64_line_breaks_and_spaces),
        cmocka_unit_test(test_decode_b64_padding),
        cmocka_unit_test(test_decode_pem),
        cmocka_unit_test(test_decode_raw_der_only_when_raw_ok),
        cmocka_unit_test(test_decode_two_certificates_fail),
        cmocka_unit_test(test_decode_trailing_garbage_fails),
        cmocka_unit_test(test_decode_not_base64),
        cmocka_unit_test(test_decode_not_a_certificate),
        cmocka_unit_test(test_decode_empty),
        cmocka_unit_test(test_thumbprint_matches_sha1_files),
        cmocka_unit_test(test_thumb_normalise),
        cmocka_unit_test(test_info_from_der),
        cmocka_unit_test(test_info_generated_certificate),
        cmocka_unit_test(test_decode_keeps_the_key_opaque),
        cmocka_unit_test(test_info_not_a_certificate),
        cmocka_unit_test(test_subject_hash),
        cmocka_unit_test(test_subject_hash_shapes),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_b64),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
