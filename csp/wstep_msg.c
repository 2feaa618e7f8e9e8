/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wstep_msg.c - MS-WSTEP renewal messages (wstep_msg.h, docs/wstep.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "platform.h"
#include "store/cert.h"
#include "wstep_msg.h"

#define NS_S "http://www.w3.org/2003/05/soap-envelope"
#define NS_A "http://www.w3.org/2005/08/addressing"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WST "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
#define NS_AC "http://schemas.xmlsoap.org/ws/2006/12/authorization"
#define NS_ENR "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
#define ACTION_RST NS_ENR "/RST/wstep"
#define TOKEN_TYPE "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken"
#define REQ_RENEW NS_WST "/Renew"
#define VT_PKCS7 NS_WSSE "#PKCS7"
#define VT_PROVDOC "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc"
#define ENC_B64 NS_WSSE "#base64binary"

#define MAX_ANSWER (1u << 20)

/* ---- the request ---- */

static EVP_PKEY *new_key_like(EVP_PKEY *cur)
{
    if (EVP_PKEY_get_base_id(cur) == EVP_PKEY_EC) {
        char group[80];
        if (!EVP_PKEY_get_utf8_string_param(cur, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL))
            return NULL;
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    }
    if (EVP_PKEY_get_base_id(cur) == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(cur);
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(bits < 2048 ? 2048 : bits));
    }
    return NULL;
}

/* The PKCS#10 for key, with cert's subject, as DER. */
static int make_csr(X509 *cert, EVP_PKEY *key, unsigned char **der, int *len)
{
    X509_REQ *req = X509_REQ_new();
    int rc = -1;
    if (req && X509_REQ_set_version(req, 0) &&
        X509_REQ_set_subject_name(req, X509_get_subject_name(cert)) &&
        X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, EVP_sha256()) > 0) {
        *der = NULL;
        *len = i2d_X509_REQ(req, der);
        rc = *len > 0 ? 0 : -1;
    }
    X509_REQ_free(req);
    return rc;
}

/* The PKCS#7 (CMS SignedData, content attached) of csr, signed with the
 * current certificate and key, base64 without line breaks (OPENSSL_free). */
static char *sign_b64(X509 *cert, EVP_PKEY *key, const unsigned char *csr, int csr_len)
{
    BIO *in = BIO_new_mem_buf(csr, csr_len);
    CMS_ContentInfo *cms = in ? CMS_sign(cert, key, NULL, in, CMS_BINARY) : NULL;
    unsigned char *der = NULL;
    int len = cms ? i2d_CMS_ContentInfo(cms, &der) : -1;
    char *b64 = NULL;
    if (len > 0 && (b64 = OPENSSL_malloc(((size_t)len + 2) / 3 * 4 + 1)))
        EVP_EncodeBlock((unsigned char *)b64, der, len);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return b64;
}

static xmlNodePtr child(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    return xmlNewTextChild(parent, ns, BAD_CAST name, text ? BAD_CAST text : NULL);
}

static void context_item(xmlNodePtr ctx, xmlNsPtr ac, const char *name, const char *value)
{
    xmlNodePtr item = child(ctx, ac, "ContextItem", NULL);
    xmlNewProp(item, BAD_CAST "Name", BAD_CAST name);
    child(item, ac, "Value", value);
}

/* The identity's CN (DeviceName, DeviceID: the library knows no other). */
static void subject_cn(X509 *cert, char *buf, size_t size)
{
    snprintf(buf, size, "omadm-device");
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, (int)size);
}

static int soap(const char *url, const char *pkcs7_b64, X509 *cert, xmlChar **out, int *len)
{
    unsigned char id[16];
    char msgid[64], cn[128];
    if (RAND_bytes(id, sizeof id) != 1)
        return -1;
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    snprintf(msgid, sizeof msgid,
             "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
             id[12], id[13], id[14], id[15]);
    subject_cn(cert, cn, sizeof cn);
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr env = xmlNewNode(NULL, BAD_CAST "Envelope");
    xmlDocSetRootElement(doc, env);
    xmlNsPtr s = xmlNewNs(env, BAD_CAST NS_S, BAD_CAST "s");
    xmlNsPtr a = xmlNewNs(env, BAD_CAST NS_A, BAD_CAST "a");
    xmlNsPtr wsse = xmlNewNs(env, BAD_CAST NS_WSSE, BAD_CAST "wsse");
    xmlNsPtr wst = xmlNewNs(env, BAD_CAST NS_WST, BAD_CAST "wst");
    xmlNsPtr ac = xmlNewNs(env, BAD_CAST NS_AC, BAD_CAST "ac");
    xmlSetNs(env, s);
    xmlNodePtr hdr = child(env, s, "Header", NULL);
    xmlNodePtr n = child(hdr, a, "Action", ACTION_RST);
    xmlNewNsProp(n, s, BAD_CAST "mustUnderstand", BAD_CAST "1");
    child(hdr, a, "MessageID", msgid);
    n = child(hdr, a, "ReplyTo", NULL);
    child(n, a, "Address", "http://www.w3.org/2005/08/addressing/anonymous");
    n = child(hdr, a, "To", url);
    xmlNewNsProp(n, s, BAD_CAST "mustUnderstand", BAD_CAST "1");
    xmlNodePtr rst = child(child(env, s, "Body", NULL), wst, "RequestSecurityToken", NULL);
    child(rst, wst, "TokenType", TOKEN_TYPE);
    child(rst, wst, "RequestType", REQ_RENEW);
    n = child(rst, wsse, "BinarySecurityToken", pkcs7_b64);
    xmlNewProp(n, BAD_CAST "ValueType", BAD_CAST VT_PKCS7);
    xmlNewProp(n, BAD_CAST "EncodingType", BAD_CAST ENC_B64);
    xmlNodePtr ctx = child(rst, ac, "AdditionalContext", NULL);
    context_item(ctx, ac, "OSEdition", "0");
    context_item(ctx, ac, "OSVersion", "0.0");
    context_item(ctx, ac, "DeviceName", cn);
    context_item(ctx, ac, "EnrollmentType", "Device");
    context_item(ctx, ac, "DeviceType", "omadm");
    context_item(ctx, ac, "ApplicationVersion", OMADM_VERSION_STRING);
    context_item(ctx, ac, "DeviceID", cn);
    xmlDocDumpMemoryEnc(doc, out, len, "UTF-8");
    xmlFreeDoc(doc);
    return *out ? 0 : -1;
}

static char *key_pem_of(const omadm_platform_t *p, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n = 0;
    if (b && PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) &&
        (n = BIO_get_mem_data(b, &data)) > 0 && (out = plat_alloc(p, (size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = 0;
    }
    BIO_free(b); /* a memory BIO's buffer is cleared on free */
    return out;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

int wstep_build_request(const omadm_platform_t *p, const uint8_t *cert_der, size_t cert_len,
                        const char *key_pem, const char *url, wstep_request_t *out,
                        const char **why)
{
    const unsigned char *d = cert_der;
    X509 *cert = d2i_X509(NULL, &d, (long)cert_len);
    EVP_PKEY *cur = key_pem ? read_key(key_pem) : NULL, *key = NULL;
    unsigned char *csr = NULL;
    int csr_len = 0, len = 0;
    char *p7 = NULL;
    xmlChar *xml = NULL;
    memset(out, 0, sizeof *out);
    *why = "the current certificate or key cannot be read";
    if (!cert || !cur || X509_check_private_key(cert, cur) != 1)
        goto out;
    *why = "cannot make a new key";
    if (!(key = new_key_like(cur)))
        goto out;
    *why = "cannot make the PKCS#10 or its PKCS#7";
    if (make_csr(cert, key, &csr, &csr_len) || !(p7 = sign_b64(cert, cur, csr, csr_len)))
        goto out;
    *why = "cannot build the SOAP request";
    if (soap(url, p7, cert, &xml, &len) || len <= 0)
        goto out;
    *why = "out of memory";
    out->body = plat_alloc(p, (size_t)len);
    out->key_pem = key_pem_of(p, key);
    if (!out->body || !out->key_pem) {
        wstep_request_free(p, out);
        goto out;
    }
    memcpy(out->body, xml, (size_t)len);
    out->len = (size_t)len;
    *why = NULL;
out:
    xmlFree(xml);
    OPENSSL_free(p7);
    OPENSSL_free(csr);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cur);
    X509_free(cert);
    return *why ? -1 : 0;
}

void wstep_request_free(const omadm_platform_t *p, wstep_request_t *r)
{
    plat_free(p, r->body);
    if (r->key_pem) {
        OPENSSL_cleanse(r->key_pem, strlen(r->key_pem));
        plat_free(p, r->key_pem);
    }
    memset(r, 0, sizeof *r);
}

/* ---- the answer ---- */

static bool named(xmlNodePtr n, const char *ns, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcasecmp((const char *)n->name, name) &&
           (!ns || (n->ns && !strcmp((const char *)n->ns->href, ns)));
}

static xmlNodePtr first(xmlNodePtr parent, const char *ns, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (named(c, ns, name))
            return c;
    return NULL;
}

/* The first element named name (any namespace when ns is NULL) below n. */
static xmlNodePtr find(xmlNodePtr n, const char *ns, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
        if (named(c, ns, name))
            return c;
        xmlNodePtr d = find(c, ns, name);
        if (d)
            return d;
    }
    return NULL;
}

static void silent(void *ctx, xmlErrorPtr err)
{
    (void)ctx, (void)err;
}

/* As the XML codec parses (docs/threading.md): no network, nothing
 * printed, the calling thread's error handler put back afterwards; a DTD
 * is refused. */
static xmlDocPtr parse_xml(const uint8_t *data, size_t len)
{
    if (len > MAX_ANSWER)
        return NULL;
    xmlStructuredErrorFunc host_handler = xmlStructuredError;
    void *host_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(NULL, silent);
    xmlDocPtr doc = xmlReadMemory((const char *)data, (int)len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlSetStructuredErrorFunc(host_ctx, host_handler);
    if (doc && doc->intSubset) { /* no DTD */
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

typedef struct code {
    const char *name;
    uint32_t hr;
} code_t;

static const code_t subcodes[] = {
    {"MessageFormat", 0x80180001u},        {"Authentication", 0x80180002u},
    {"Authorization", 0x80180003u},        {"CertificateRequest", 0x80180004u},
    {"EnrollmentServer", 0x80180005u},     {"InternalServiceFault", 0x80180006u},
    {"InvalidSecurity", 0x80180007u},
};

static const code_t errortypes[] = {
    {"DeviceCapReached", 0x80180013u},     {"DeviceNotSupported", 0x80180014u},
    {"NotSupported", 0x80180015u},         {"NotEligibleToRenew", 0x80180016u},
    {"InMaintenance", 0x80180017u},        {"UserLicense", 0x80180018u},
    {"InvalidEnrollmentData", 0x80180019u},
};

static uint32_t lookup(const char *text, bool qname, const code_t *t, size_t n)
{
    const char *local = text;
    if (qname && strchr(text, ':'))
        local = strchr(text, ':') + 1;
    while (*local == ' ' || *local == '\n' || *local == '\t')
        local++;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(t[i].name);
        if (!strncasecmp(local, t[i].name, l) && strspn(local + l, " \t\r\n") == strlen(local + l))
            return t[i].hr;
    }
    return 0;
}

/* A SOAP fault's HRESULT: the detail's, else the subcode's, else unknown. */
static int32_t fault_code(xmlNodePtr fault)
{
    xmlNodePtr detail = first(fault, NULL, "Detail");
    xmlNodePtr et = find(detail, NULL, "errortype");
    xmlNodePtr ec = find(detail, NULL, "ErrorCode");
    xmlChar *t;
    uint32_t hr = 0;
    if (et && (t = xmlNodeGetContent(et))) {
        hr = lookup((const char *)t, false, errortypes, sizeof errortypes / sizeof errortypes[0]);
        xmlFree(t);
    }
    if (!hr && ec && (t = xmlNodeGetContent(ec))) {
        char *end;
        long long v = strtoll((const char *)t, &end, 10);
        if (end != (char *)t && !*end && v >= INT32_MIN && v <= (long long)UINT32_MAX && v)
            hr = (uint32_t)v;
        xmlFree(t);
    }
    xmlNodePtr sub = first(first(first(fault, NULL, "Code"), NULL, "Subcode"), NULL, "Value");
    if (!hr && sub && (t = xmlNodeGetContent(sub))) {
        hr = lookup((const char *)t, true, subcodes, sizeof subcodes / sizeof subcodes[0]);
        xmlFree(t);
    }
    return (int32_t)(hr ? hr : 0x80180008u);
}

static int b64_decode(const omadm_platform_t *p, xmlNodePtr n, uint8_t **out, size_t *len)
{
    xmlChar *t = xmlNodeGetContent(n);
    int rc = t ? cert_b64_decode(p, (const char *)t, out, len) : -1;
    xmlFree(t);
    return rc ? -1 : 0;
}

/* The attribute value of a characteristic/parm. */
static bool attr_is(xmlNodePtr n, const char *attr, const char *want)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST attr);
    bool eq = v && !strcasecmp((const char *)v, want);
    xmlFree(v);
    return eq;
}

static xmlNodePtr characteristic(xmlNodePtr parent, const char *type)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (named(c, NULL, "characteristic") && attr_is(c, "type", type))
            return c;
    return NULL;
}

/* The My/System (or My/User) certificate of the provisioning document,
 * named by its SHA-1: 0, or -1. */
static int provdoc_cert(const omadm_platform_t *p, const uint8_t *doc_data, size_t doc_len,
                        uint8_t **der, size_t *der_len)
{
    xmlDocPtr doc = parse_xml(doc_data, doc_len);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr my = characteristic(characteristic(root, "CertificateStore"), "My");
    xmlNodePtr st = characteristic(my, "System");
    int rc = -1;
    if (!st)
        st = characteristic(my, "User");
    for (xmlNodePtr c = st ? st->children : NULL; rc && c; c = c->next) {
        if (!named(c, NULL, "characteristic"))
            continue;
        xmlChar *hash = xmlGetProp(c, BAD_CAST "type");
        for (xmlNodePtr parm = c->children; rc && hash && parm; parm = parm->next) {
            if (!named(parm, NULL, "parm") || !attr_is(parm, "name", "EncodedCertificate"))
                continue;
            xmlChar *v = xmlGetProp(parm, BAD_CAST "value");
            char want[CERT_THUMB_HEX + 1], got[CERT_THUMB_HEX + 1];
            if (v && !cert_b64_decode(p, (const char *)v, der, der_len)) {
                if (cert_thumb_normalise((const char *)hash, want) &&
                    !cert_thumbprint(*der, *der_len, got) && !strcmp(want, got))
                    rc = 0;
                else {
                    plat_free(p, *der);
                    *der = NULL;
                }
            }
            xmlFree(v);
        }
        xmlFree(hash);
    }
    xmlFreeDoc(doc);
    return rc;
}

static bool cert_fits_key(const uint8_t *der, size_t len, const char *key_pem)
{
    const unsigned char *d = der;
    X509 *x = d2i_X509(NULL, &d, (long)len);
    EVP_PKEY *k = read_key(key_pem);
    bool ok = x && k && X509_check_private_key(x, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static int fail(int32_t hr, const char *reason, int32_t *hresult, const char **why)
{
    *hresult = hr;
    *why = reason;
    return -1;
}

/* The RSTRC's token: 0 certificate, 1 pending, -1 failure. */
static int rstrc(const omadm_platform_t *p, xmlNodePtr body, const char *key_pem, uint8_t **der,
                 size_t *der_len, int32_t *hresult, const char **why)
{
    xmlNodePtr rst = find(body, NS_WST, "RequestedSecurityToken");
    xmlNodePtr tok = first(rst, NS_WSSE, "BinarySecurityToken");
    if (rst && !tok && find(rst, NS_WSSE, "Reference"))
        return 1;
    if (!tok || !attr_is(tok, "ValueType", VT_PROVDOC))
        return fail(WSTEP_E_MESSAGE_FORMAT, "no provisioning document in the answer", hresult,
                    why);
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    if (b64_decode(p, tok, &doc, &doc_len))
        return fail(WSTEP_E_MESSAGE_FORMAT, "the token is not base64", hresult, why);
    int rc = provdoc_cert(p, doc, doc_len, der, der_len);
    plat_free(p, doc);
    if (rc)
        return fail(WSTEP_E_MESSAGE_FORMAT, "no usable certificate in the provisioning document",
                    hresult, why);
    if (!cert_fits_key(*der, *der_len, key_pem)) {
        plat_free(p, *der);
        *der = NULL;
        return fail(WSTEP_E_MESSAGE_FORMAT, "the new certificate is not for the new key", hresult,
                    why);
    }
    return 0;
}

int wstep_parse_response(const omadm_platform_t *p, int http_status, const uint8_t *body,
                         size_t len, const char *key_pem, uint8_t **der, size_t *der_len,
                         int32_t *hresult, const char **why)
{
    *der = NULL;
    *der_len = 0;
    if (http_status >= 300 && http_status < 400)
        return fail(WSTEP_E_INSECURE_REDIRECT, "the service redirected (refused)", hresult, why);
    xmlDocPtr doc = parse_xml(body, len);
    xmlNodePtr env = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr sbody = named(env, NS_S, "Envelope") ? first(env, NS_S, "Body") : NULL;
    xmlNodePtr fault = first(sbody, NS_S, "Fault");
    int rc;
    if (fault)
        rc = fail(fault_code(fault), "the service answered with a SOAP fault", hresult, why);
    else if (http_status != 200)
        rc = fail(WSTEP_E_CONNECTIVITY, "the service answered with an HTTP error", hresult, why);
    else if (!sbody)
        rc = fail(WSTEP_E_MESSAGE_FORMAT, "the answer is not a SOAP 1.2 envelope", hresult, why);
    else
        rc = rstrc(p, sbody, key_pem, der, der_len, hresult, why);
    xmlFreeDoc(doc);
    return rc;
}

int wstep_not_after(const uint8_t *der, size_t len, int64_t *t)
{
    const unsigned char *d = der;
    X509 *x = d2i_X509(NULL, &d, (long)len);
    struct tm tm;
    int rc = x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) ? 0 : -1;
    if (!rc)
        *t = (int64_t)timegm(&tm);
    X509_free(x);
    return rc;
}
