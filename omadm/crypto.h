/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.h - the engine's small crypto layer; crypto.c is the only omadm/
 * file that touches OpenSSL.
 */
#ifndef OMADM_CRYPTO_H
#define OMADM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct omadm;

/* Set OpenSSL's base and its default library context up explicitly, once
 * per process (any thread).  Left to itself, OpenSSL does this on first
 * use, and when an allocation fails half-way it goes on with a NULL lock
 * and crashes in a later call.  The configuration file and the tables of
 * digest and cipher names stay OpenSSL's to load at the first use that
 * needs them (a failure there is one it survives, test_openssl_init): a
 * command that does no crypto does not pay for them.  0, or -1 when it
 * cannot be set up (no memory); after a failure every later call fails
 * too. */
int crypto_init(void);

/* Base64 (standard alphabet, padded, no line breaks).  Returns a
 * NUL-terminated string from om_alloc, or NULL on allocation failure. */
char *crypto_b64_encode(struct omadm *dm, const uint8_t *data, size_t len);

/* Decode base64, ignoring whitespace.  Returns om_alloc'ed bytes (with a
 * NUL after them) and *out_len, or NULL when the text is not base64 or on
 * allocation failure (*bad set to 1 for the former). */
uint8_t *crypto_b64_decode(struct omadm *dm, const uint8_t *text, size_t len, size_t *out_len,
                           int *bad);

/* MD5 of data (the SyncML auth-md5 / HMAC digest); 0 or -1. */
int crypto_md5(const void *data, size_t len, uint8_t out[16]);

/* Equal bytes, compared in constant time (secrets, digests). */
int crypto_memeq(const void *a, const void *b, size_t len);

/* Unpredictable bytes from OpenSSL's DRBG: the platform random() hook's
 * fallback (nonces must not be guessable).  0 or -1. */
int crypto_random(void *ctx, uint8_t *buf, size_t len);

#endif
