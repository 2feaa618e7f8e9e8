/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.h - real X.509 certificates for the benchmarks, made in-process with
 * OpenSSL, each with its SHA-1 thumbprint and its base64; saved to and
 * loaded from a file so that a later run can measure the same ones.
 * Every function dies (bench_die) when it cannot do its work.
 */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_THUMB_LEN 40

typedef struct pool_cert {
    uint8_t *der;                          /* owned */
    size_t der_len;
    char thumb[POOL_THUMB_LEN + 1];        /* uppercase hex SHA-1 of the DER */
    char *b64;                             /* owned; the DER in base64, one line */
} pool_cert_t;

typedef struct pool {
    pool_cert_t *c;                        /* owned */
    size_t n;
} pool_t;

/* n self-signed X.509 v3 CA certificates (basicConstraints CA:TRUE,
 * critical) on one new EC P-256 key: serial i + 1, subject and issuer
 * "O=omadm bench, CN=<cn_prefix> <i>", valid 2024-01-01 to 2034-01-01. */
void pool_make(pool_t *p, size_t n, const char *cn_prefix);

/* One self-signed RSA-2048 CA certificate on a new key, as `openssl req
 * -x509` makes one: subject and authority key identifiers, basicConstraints
 * CA:TRUE and keyUsage keyCertSign, cRLSign (both critical), SHA-256;
 * subject and issuer "O=omadm bench, OU=<ou>, CN=<cn>", valid ten years
 * from 2026-01-01. */
void pool_make_rsa_ca(pool_cert_t *c, const char *ou, const char *cn);

/* File: "storebench-pool 1\n", then per certificate a u32 length (host
 * order) and the DER.  pool_load returns false when the file does not exist,
 * and dies when it is not such a file. */
void pool_save(const pool_t *p, const char *file);
bool pool_load(pool_t *p, const char *file);

void pool_cert_free(pool_cert_t *c);
void pool_free(pool_t *p);

#endif
