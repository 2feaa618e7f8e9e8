/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rsa_keygen.h - RSA key generation with the two prime searches in
 * parallel (rsa_keygen.c explains why).
 */
#ifndef OMADM_RSA_KEYGEN_H
#define OMADM_RSA_KEYGEN_H

#include <openssl/evp.h>

/* A new RSA key of bits (even, >= 1024) with e = 65537, or NULL. */
EVP_PKEY *rsa_keygen(unsigned bits);

#endif
