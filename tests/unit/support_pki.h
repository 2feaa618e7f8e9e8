/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_pki.h - the test PKI of tests/data/pki for the unit suites, and
 * certificates made at run time.
 *
 * The PKI directory is found through the environment variable OMADM_TOP
 * (the repository root) when it is set, else by walking up from the
 * current directory until tests/data/pki exists (tests/run-all runs the
 * unit programs from the repository root).
 */
#ifndef SUPPORT_PKI_H
#define SUPPORT_PKI_H

#include <stddef.h>
#include <stdint.h>

/* Absolute path of tests/data/pki, or NULL (with a message on stderr). */
const char *tpki_dir(void);

/* Whole file, NUL-terminated, malloc'ed; NULL on failure. */
uint8_t *tpki_slurp(const char *path, size_t *len);

/* A file of the test PKI ("root.der", "leaf.pem" ...), as tpki_slurp. */
uint8_t *tpki_read(const char *file, size_t *len);

/* The thumbprint in NAME.sha1 (40 uppercase hex digits); 0 or -1. */
int tpki_thumb(const char *name, char out[41]);

/* A self-signed EC P-256 certificate, DER (malloc'ed): subject and issuer
 * O=<o>, CN=<cn>; a fresh key each call, so two calls with the same names
 * give two certificates with the same subject.  0 or -1. */
int tpki_make_cert(const char *o, const char *cn, long serial, uint8_t **der, size_t *len);

#endif
