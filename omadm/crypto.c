/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.c - OpenSSL's set-up, base64 through its EVP encoder, MD5,
 * random bytes.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "internal.h"

int crypto_init(void)
{
    if (OPENSSL_init_crypto(0, NULL) == 1 && OSSL_LIB_CTX_get0_global_default())
        return 0;
    ERR_clear_error();
    return -1;
}

char *crypto_b64_encode(struct omadm *dm, const uint8_t *data, size_t len)
{
    if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT32_MAX / 2)
        return NULL;
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = om_alloc(dm, out_len + 1);
    if (!out)
        return NULL;
    if (len)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[out_len] = 0;
    return out;
}

static int is_b64_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

uint8_t *crypto_b64_decode(struct omadm *dm, const uint8_t *text, size_t len, size_t *out_len,
                           int *bad)
{
    uint8_t *clean = NULL, *out = NULL;
    *bad = 0;
    if (len > INT32_MAX / 2) {
        *bad = 1;
        return NULL;
    }
    clean = om_alloc(dm, len + 1);
    if (!clean)
        return NULL;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (!is_b64_char(c) || pad) {
            *bad = 1;
            goto out;
        }
        clean[n++] = c;
    }
    if (n % 4 || pad > 2) {
        *bad = 1;
        goto out;
    }
    out = om_alloc(dm, n / 4 * 3 + 1);
    if (!out)
        goto out;
    int got = n ? EVP_DecodeBlock(out, clean, (int)n) : 0;
    if (got < 0) {
        *bad = 1;
        om_free(dm, out);
        out = NULL;
        goto out;
    }
    *out_len = (size_t)got - pad;
    out[*out_len] = 0;
out:
    om_free(dm, clean);
    return out;
}

int crypto_md5(const void *data, size_t len, uint8_t out[16])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_md5(), NULL) && n == 16 ? 0 : -1;
}

int crypto_memeq(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int crypto_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    return len > INT32_MAX || RAND_bytes(buf, (int)len) != 1 ? -1 : 0;
}
