/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_pfx.c - libFuzzer target: what a peer reaches through
 * ClientCertificateInstall/PFXCertInstall (csp/pfx.c): the PFX blob, as raw
 * DER (Format bin) or base64 text (b64, chr), opened with a password as an
 * install does (PKCS#12 in a private library context with the legacy
 * provider), and the password's envelope (base64 of CMS EnvelopedData).
 *
 * Input: one byte of flags (bit 0: an envelope, not a blob; bit 1: the
 * blob is base64 text), the password up to the first NUL (blob only;
 * none: no password), then the value.
 *
 * Invariants: a blob's answer is 0 or one of the ErrorCodes an install
 * reports for the blob (wrong password, not a readable PFX, no key of a
 * certificate), never "out of memory"; a DER blob answers the same as its
 * base64 (the install decodes base64 first, so the armour never changes the
 * outcome).  An envelope's answer is 0 (an EnvelopedData) or NTE_BAD_DATA.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "csp/pfx.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const omadm_platform_t *p = fuzz_platform();
    uint8_t flags = data[0];
    data++;
    size--;
    if (flags & 1) {
        int32_t ec = pfx_check_envelope(p, (const char *)data, size);
        FUZZ_CHECK(ec == 0 || ec == PFX_EC_BAD_DATA, "envelope: ErrorCode 0x%08X",
                   (unsigned)ec);
        return 0;
    }
    char pw[129];
    const uint8_t *nul = memchr(data, 0, size < sizeof pw ? size : sizeof pw);
    size_t pw_len = nul ? (size_t)(nul - data) : 0;
    memcpy(pw, data, pw_len);
    pw[pw_len] = 0;
    if (nul) {
        data += pw_len + 1;
        size -= pw_len + 1;
    }
    bool b64 = flags & 2;
    int32_t ec = pfx_check_blob(p, data, size, b64, nul ? pw : NULL);
    FUZZ_CHECK(ec == 0 || ec == PFX_EC_BAD_PASSWORD || ec == PFX_EC_BAD_ENCODE ||
                   ec == PFX_EC_BAD_KEY,
               "blob: ErrorCode 0x%08X", (unsigned)ec);
    if (!b64 && size && size < 65536) {
        unsigned char *text = malloc(4 * ((size + 2) / 3) + 1);
        FUZZ_CHECK(text != NULL, "malloc");
        int n = EVP_EncodeBlock(text, data, (int)size);
        int32_t again = pfx_check_blob(p, text, (size_t)n, true, nul ? pw : NULL);
        FUZZ_CHECK(again == ec, "the blob as base64 answers 0x%08X, as DER 0x%08X",
                   (unsigned)again, (unsigned)ec);
        free(text);
    }
    return 0;
}
