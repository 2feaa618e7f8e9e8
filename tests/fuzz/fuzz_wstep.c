/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_wstep.c - libFuzzer target: the answer to a WSTEP renewal
 * (csp/wstep_msg.c, docs/wstep.md): a SOAP 1.2 envelope holding an RSTRC
 * whose token is a base64 provisioning document, or a SOAP fault.
 *
 * Input: one byte of flags, then the payload.  Bits 0-1: the HTTP status
 * (200, 500, 307, 503); bit 2: the payload is the provisioning document,
 * which the harness base64-encodes into an RSTRC of the documented shape
 * (so the document's parser is reached without the fuzzer having to find
 * base64), else the payload is the whole answer.  The renewal's new key is
 * the test PKI's leaf key (tests/data/pki/leaf.key).
 *
 * wstep_parse_response answers 0, 1 or -1:
 *   - 0 (a certificate): only for HTTP 200; the certificate is one DER
 *     certificate, for the new key;
 *   - 1 (pending): only for HTTP 200, no certificate;
 *   - -1: no certificate, a reason, an HRESULT that is not 0; a 3xx is
 *     always MENROLL_E_INSECUREREDIRECT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "csp/wstep_msg.h"
#include "fuzz_common.h"

static const char leaf_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLOoDwOGUsjyHc/Cl\n"
    "loDzUFkD7sygGKOncI4aWX2HQtOhRANCAASHyEepDPerb1j5jXo0J121X0oCIxek\n"
    "TfiJHyfQxm1tbXp/QZt99xLAbk31n/eK0nBCTtL9GUbulRlINIWkKf/u\n"
    "-----END PRIVATE KEY-----\n";

static const char rstrc_head[] =
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">"
    "<s:Header/><s:Body><RequestSecurityTokenResponseCollection "
    "xmlns=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512\"><RequestSecurityTokenResponse>"
    "<RequestedSecurityToken><BinarySecurityToken ValueType=\"http://schemas.microsoft.com/"
    "5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc\" EncodingType="
    "\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    "#base64binary\" xmlns=\"http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-wssecurity-secext-1.0.xsd\">";
static const char rstrc_tail[] =
    "</BinarySecurityToken></RequestedSecurityToken></RequestSecurityTokenResponse>"
    "</RequestSecurityTokenResponseCollection></s:Body></s:Envelope>";

static uint8_t *wrap(const uint8_t *doc, size_t len, size_t *out_len)
{
    size_t b64 = (len + 2) / 3 * 4;
    size_t n = sizeof rstrc_head - 1 + b64 + sizeof rstrc_tail - 1;
    uint8_t *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL, "memory");
    memcpy(out, rstrc_head, sizeof rstrc_head - 1);
    EVP_EncodeBlock(out + sizeof rstrc_head - 1, doc, (int)len);
    memcpy(out + sizeof rstrc_head - 1 + b64, rstrc_tail, sizeof rstrc_tail);
    *out_len = n;
    return out;
}

static void certificate(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *b = BIO_new_mem_buf(leaf_key, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    FUZZ_CHECK(x && p == der + len, "a certificate handed out is exactly one DER certificate");
    FUZZ_CHECK(k && X509_check_private_key(x, k) == 1, "a certificate handed out is for the new key");
    EVP_PKEY_free(k);
    BIO_free(b);
    X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 500, 307, 503};
    if (size < 1)
        return 0;
    const omadm_platform_t *p = fuzz_platform();
    int status = statuses[data[0] & 3];
    size_t len = size - 1;
    uint8_t *body = (data[0] & 4) ? wrap(data + 1, size - 1, &len) : NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int32_t hr = 0;
    const char *why = NULL;
    int rc = wstep_parse_response(p, status, body ? body : data + 1, len, leaf_key, &der, &der_len,
                                  &hr, &why);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1, "answer %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(status == 200 && der && der_len, "a certificate only from an HTTP 200");
        certificate(der, der_len);
    } else {
        FUZZ_CHECK(!der, "no certificate handed out with answer %d", rc);
        FUZZ_CHECK(rc == 1 ? status == 200 : why && hr != 0, "pending from a 200, else a reason "
                                                             "and an HRESULT (%d, 0x%08X)",
                   status, (unsigned)hr);
        FUZZ_CHECK(status != 307 || rc != -1 || hr == WSTEP_E_INSECURE_REDIRECT,
                   "a redirect is MENROLL_E_INSECUREREDIRECT (0x%08X)", (unsigned)hr);
    }
    free(der);
    free(body);
    return 0;
}
