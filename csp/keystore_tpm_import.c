/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keystore_tpm_import.c - a software RSA key moved into the TPM
 * (TPM2_Import, tpm2-tss ESAPI), for keys that arrive from outside (a
 * PFX): the result is a TSS2 PRIVATE KEY blob (keystore.h) under the same
 * storage primary the tpm2 provider uses, so the provider loads it like a
 * key it made.
 *
 * The parent: the provider (tpm2-openssl 1.1) creates, under the owner
 * hierarchy, an ECC P-256 storage primary when the TPM has ECC and an
 * RSA-2048 one otherwise, with the templates below (restricted decrypt
 * keys with AES-128-CFB, SHA-256 names, no auth).  Creating a primary from
 * the same template gives the same key, so a blob imported under ours
 * loads under the provider's.
 *
 * The imported object: an RSA key for signing and decryption (no scheme),
 * userWithAuth with an empty auth value, noDA; fixedTPM and fixedParent
 * are clear, as TPM2_Import requires of any object that was not made in
 * this TPM.
 *
 * The wrapping (docs/keys.md, "Import"): the duplicate carries an inner
 * wrapper only: the sensitive area is encrypted with a fresh AES-128 key
 * (CFB, zero IV) and protected by an integrity digest over it and the
 * object's name; that key travels as TPM2_Import's first parameter, which
 * a session salted to the parent encrypts.  So the private key never
 * crosses the TPM interface in the clear, and no outer wrapper (an
 * ECDH/RSA-encrypted seed for the parent) is built: it protects a
 * duplicate that travels between machines, which this one does not.
 *
 * The TPM is reached through a connection of our own, with the provider
 * of the key store unloaded meanwhile (swtpm and /dev/tpm0 serve one
 * connection at a time): keystore_tpm.c does that.
 */
#include "keystore_tpm.h"

#include <string.h>

#ifdef OMADM_HAVE_TSS2

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tss2_dl.h"

static ks_err_t fail(const char **why, ks_err_t err, const char *reason)
{
    if (why)
        *why = reason;
    return err;
}

#define PRIMARY_ATTRS                                                                        \
    (TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |               \
     TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                     \
     TPMA_OBJECT_SENSITIVEDATAORIGIN)

static void primary_template(bool ecc, TPM2B_PUBLIC *t)
{
    memset(t, 0, sizeof *t);
    TPMT_PUBLIC *p = &t->publicArea;
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = PRIMARY_ATTRS;
    if (ecc) {
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 128;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    } else {
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
    }
}

/* Does the TPM implement ECC (the provider's choice of primary). */
static bool tpm_has_ecc(ESYS_CONTEXT *esys)
{
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA *cap = NULL;
    bool ecc = false;
    if (TSS->Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_ALGS,
                           TPM2_ALG_ECC, 1, &more, &cap) == TSS2_RC_SUCCESS && cap &&
        cap->data.algorithms.count >= 1 &&
        cap->data.algorithms.algProperties[0].alg == TPM2_ALG_ECC)
        ecc = true;
    TSS->Esys_Free(cap);
    return ecc;
}

ks_err_t ks_tpm_primary(ESYS_CONTEXT *esys, ESYS_TR *parent, const char **why)
{
    TPM2B_PUBLIC tmpl;
    TPM2B_SENSITIVE_CREATE in_sens;
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    memset(&in_sens, 0, sizeof in_sens);
    primary_template(tpm_has_ecc(esys), &tmpl);
    if (TSS->Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &in_sens, &tmpl, &outside, &pcrs, parent, NULL, NULL, NULL,
                           NULL) != TSS2_RC_SUCCESS) {
        *parent = ESYS_TR_NONE;
        return fail(why, KS_E_FAILED, "the TPM cannot make the storage primary key");
    }
    return KS_OK;
}

ks_err_t ks_tpm_esys_open(const char *tcti, TSS2_TCTI_CONTEXT **tctx, ESYS_CONTEXT **esys,
                          const char **why)
{
    *tctx = NULL;
    *esys = NULL;
    if (!TSS)
        return fail(why, KS_E_UNSUPPORTED,
                    "the tpm2-tss libraries (libtss2-esys, -mu, -tctildr) cannot be loaded");
    if (TSS->Tss2_TctiLdr_Initialize(tcti, tctx) != TSS2_RC_SUCCESS ||
        TSS->Esys_Initialize(esys, *tctx, NULL) != TSS2_RC_SUCCESS) {
        ks_tpm_esys_close(tctx, esys);
        return fail(why, KS_E_UNAVAILABLE, "no TPM: the TPM cannot be reached");
    }
    return KS_OK;
}

void ks_tpm_esys_close(TSS2_TCTI_CONTEXT **tctx, ESYS_CONTEXT **esys)
{
    if (!TSS)
        return;
    if (*esys)
        TSS->Esys_Finalize(esys);
    if (*tctx)
        TSS->Tss2_TctiLdr_Finalize(tctx);
    *esys = NULL;
    *tctx = NULL;
}

/* A big number into a TPM2B buffer of exactly size bytes (big-endian). */
static bool bn_fixed(const BIGNUM *bn, uint8_t *buf, size_t cap, int size, uint16_t *out_size)
{
    if (size <= 0 || (size_t)size > cap || BN_bn2binpad(bn, buf, size) != size)
        return false;
    *out_size = (uint16_t)size;
    return true;
}

/* The public and sensitive areas of the RSA key soft. */
static ks_err_t key_areas(const EVP_PKEY *soft, TPM2B_PUBLIC *pub, TPM2B_SENSITIVE *sens,
                          const char **why)
{
    BIGNUM *n = NULL, *e = NULL, *p = NULL;
    ks_err_t err = KS_OK;
    memset(pub, 0, sizeof *pub);
    memset(sens, 0, sizeof *sens);
    if (EVP_PKEY_get_base_id(soft) != EVP_PKEY_RSA ||
        !EVP_PKEY_get_bn_param(soft, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(soft, OSSL_PKEY_PARAM_RSA_E, &e) ||
        !EVP_PKEY_get_bn_param(soft, OSSL_PKEY_PARAM_RSA_FACTOR1, &p)) {
        err = fail(why, KS_E_UNSUPPORTED, "not an RSA private key with its primes");
        goto out;
    }
    int bits = BN_num_bits(n);
    if (bits != 1024 && bits != 2048 && bits != 3072 && bits != 4096) {
        err = fail(why, KS_E_UNSUPPORTED, "RSA key size not one a TPM holds (1024 ... 4096)");
        goto out;
    }
    if (BN_num_bits(e) > 32) {
        err = fail(why, KS_E_UNSUPPORTED, "RSA public exponent larger than 32 bits");
        goto out;
    }
    TPMT_PUBLIC *a = &pub->publicArea;
    a->type = TPM2_ALG_RSA;
    a->nameAlg = TPM2_ALG_SHA256;
    a->objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT |
                          TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA;
    a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
    a->parameters.rsaDetail.keyBits = (TPMI_RSA_KEY_BITS)bits;
    BN_ULONG ev = BN_get_word(e);
    a->parameters.rsaDetail.exponent = ev == 65537 ? 0 : (UINT32)ev;
    TPMT_SENSITIVE *s = &sens->sensitiveArea;
    s->sensitiveType = TPM2_ALG_RSA;
    /* the obfuscation value of a non-storage key: random, digest-sized */
    s->seedValue.size = 32;
    if (!bn_fixed(n, a->unique.rsa.buffer, sizeof a->unique.rsa.buffer, bits / 8,
                  &a->unique.rsa.size) ||
        !bn_fixed(p, s->sensitive.rsa.buffer, sizeof s->sensitive.rsa.buffer, bits / 16,
                  &s->sensitive.rsa.size) ||
        RAND_bytes(s->seedValue.buffer, s->seedValue.size) != 1) {
        err = fail(why, KS_E_FAILED, "cannot encode the RSA key for the TPM");
        goto out;
    }
out:
    BN_free(n);
    BN_free(e);
    BN_clear_free(p);
    return err;
}

/* The object's name: nameAlg || SHA-256(TPMT_PUBLIC). */
static bool object_name(const TPM2B_PUBLIC *pub, uint8_t name[34])
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t len = 0;
    unsigned int mdlen = 0;
    if (TSS->Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof buf, &len) != TSS2_RC_SUCCESS)
        return false;
    name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
    name[1] = (uint8_t)(TPM2_ALG_SHA256 & 0xff);
    return EVP_Digest(buf, len, name + 2, &mdlen, EVP_sha256(), NULL) && mdlen == 32;
}

/* The duplicate with an inner wrapper (TPM 2.0 Part 1, "Inner Duplication
 * Wrapper"): AES-128-CFB with key under a zero IV of
 * TPM2B_DIGEST(SHA-256(sensitive || name)) || sensitive, where sensitive
 * is the marshalled TPM2B_SENSITIVE. */
static ks_err_t inner_wrap(const TPM2B_PUBLIC *pub, const TPM2B_SENSITIVE *sens,
                           const uint8_t key[16], TPM2B_PRIVATE *dup, const char **why)
{
    uint8_t plain[sizeof(TPM2B_PRIVATE)], name[34];
    size_t slen = 0, off = 0;
    unsigned int mdlen = 0;
    ks_err_t err = KS_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    static const uint8_t iv[16] = {0};
    int n = 0, m = 0;
    /* integrity (2 + 32 bytes) first, then the sensitive area */
    if (!md || !c || !object_name(pub, name) ||
        TSS->Tss2_MU_TPM2B_SENSITIVE_Marshal(sens, plain + 34, sizeof plain - 34, &slen) !=
            TSS2_RC_SUCCESS ||
        !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, plain + 34, slen) ||
        !EVP_DigestUpdate(md, name, sizeof name) || !EVP_DigestFinal_ex(md, plain + 2, &mdlen) ||
        mdlen != 32) {
        err = fail(why, KS_E_FAILED, "cannot build the duplicate");
        goto out;
    }
    plain[0] = 0;
    plain[1] = 32;
    off = 34 + slen;
    if (off > sizeof dup->buffer || !EVP_EncryptInit_ex(c, EVP_aes_128_cfb(), NULL, key, iv) ||
        !EVP_EncryptUpdate(c, dup->buffer, &n, plain, (int)off) ||
        !EVP_EncryptFinal_ex(c, dup->buffer + n, &m) || (size_t)(n + m) != off) {
        err = fail(why, KS_E_FAILED, "cannot encrypt the duplicate");
        goto out;
    }
    dup->size = (UINT16)off;
out:
    OPENSSL_cleanse(plain, sizeof plain);
    EVP_CIPHER_CTX_free(c);
    EVP_MD_CTX_free(md);
    return err;
}

/* The TSS2 PRIVATE KEY structure (what tpm2-openssl and tpm2-tools read):
 * SEQUENCE { type OID (loadableKey), emptyAuth [0] EXPLICIT BOOLEAN
 * OPTIONAL, parent INTEGER, pubkey OCTET STRING, privkey OCTET STRING }. */
typedef struct ks_tss2key_st {
    ASN1_OBJECT *type;
    ASN1_BOOLEAN empty_auth;
    ASN1_INTEGER *parent;
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *privkey;
} KS_TSS2KEY;

ASN1_SEQUENCE(KS_TSS2KEY) = {
    ASN1_SIMPLE(KS_TSS2KEY, type, ASN1_OBJECT),
    ASN1_EXP_OPT(KS_TSS2KEY, empty_auth, ASN1_BOOLEAN, 0),
    ASN1_SIMPLE(KS_TSS2KEY, parent, ASN1_INTEGER),
    ASN1_SIMPLE(KS_TSS2KEY, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(KS_TSS2KEY, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(KS_TSS2KEY)

/* DER of the TSS2 PRIVATE KEY of pub/priv under the owner's primary. */
static ks_err_t tss2_der(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint8_t **der,
                         size_t *len, const char **why)
{
    uint8_t pb[sizeof(TPM2B_PUBLIC)], vb[sizeof(TPM2B_PRIVATE)];
    size_t pl = 0, vl = 0;
    if (TSS->Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pb, sizeof pb, &pl) != TSS2_RC_SUCCESS ||
        TSS->Tss2_MU_TPM2B_PRIVATE_Marshal(priv, vb, sizeof vb, &vl) != TSS2_RC_SUCCESS)
        return fail(why, KS_E_FAILED, "cannot marshal the imported key");
    KS_TSS2KEY *k = (KS_TSS2KEY *)ASN1_item_new(ASN1_ITEM_rptr(KS_TSS2KEY));
    unsigned char *out = NULL;
    int n = -1;
    if (k && (k->type = OBJ_txt2obj("2.23.133.10.1.3", 1)) != NULL &&
        ASN1_INTEGER_set_uint64(k->parent, TPM2_RH_OWNER) &&
        ASN1_STRING_set(k->pubkey, pb, (int)pl) && ASN1_STRING_set(k->privkey, vb, (int)vl)) {
        k->empty_auth = 1;
        n = ASN1_item_i2d((ASN1_VALUE *)k, &out, ASN1_ITEM_rptr(KS_TSS2KEY));
    }
    ASN1_item_free((ASN1_VALUE *)k, ASN1_ITEM_rptr(KS_TSS2KEY));
    if (n <= 0 || !ks_is_tpm_blob(out, (size_t)n)) {
        OPENSSL_free(out);
        return fail(why, KS_E_FAILED, "cannot encode the TSS2 key");
    }
    *der = out;
    *len = (size_t)n;
    return KS_OK;
}

ks_err_t ks_tss2_parse(const uint8_t *der, size_t len, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv,
                       const char **why)
{
    if (!TSS)
        return fail(why, KS_E_UNSUPPORTED,
                    "the tpm2-tss libraries (libtss2-esys, -mu, -tctildr) cannot be loaded");
    const unsigned char *p = der;
    KS_TSS2KEY *k = (KS_TSS2KEY *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(KS_TSS2KEY));
    char oid[32];
    uint64_t parent = 0;
    ks_err_t err = KS_OK;
    memset(pub, 0, sizeof *pub);
    memset(priv, 0, sizeof *priv);
    if (!k || p != der + len || OBJ_obj2txt(oid, sizeof oid, k->type, 1) <= 0 ||
        strcmp(oid, "2.23.133.10.1.3") || !ASN1_INTEGER_get_uint64(&parent, k->parent) ||
        parent != TPM2_RH_OWNER ||
        TSS->Tss2_MU_TPM2B_PUBLIC_Unmarshal(k->pubkey->data, (size_t)k->pubkey->length, NULL, pub) !=
            TSS2_RC_SUCCESS ||
        TSS->Tss2_MU_TPM2B_PRIVATE_Unmarshal(k->privkey->data, (size_t)k->privkey->length, NULL,
                                        priv) != TSS2_RC_SUCCESS)
        err = fail(why, KS_E_MALFORMED, "not a TSS2 PRIVATE KEY under the owner's primary key");
    ASN1_item_free((ASN1_VALUE *)k, ASN1_ITEM_rptr(KS_TSS2KEY));
    return err;
}

/* TPM2_Import of pub/sens under the provider's primary, through esys. */
static ks_err_t import_with(ESYS_CONTEXT *esys, const TPM2B_PUBLIC *pub,
                            const TPM2B_SENSITIVE *sens, TPM2B_PRIVATE **priv, const char **why)
{
    ESYS_TR parent = ESYS_TR_NONE, session = ESYS_TR_NONE;
    TPM2B_DATA enc_key = {.size = 16};
    TPM2B_ENCRYPTED_SECRET seed = {0};
    TPMT_SYM_DEF_OBJECT sym = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
    TPMT_SYM_DEF session_sym = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128,
                                .mode.aes = TPM2_ALG_CFB};
    TPM2B_PRIVATE dup = {0};
    ks_err_t err = KS_OK;
    if ((err = ks_tpm_primary(esys, &parent, why)) != KS_OK)
        goto out;
    if (RAND_bytes(enc_key.buffer, enc_key.size) != 1 ||
        (err = inner_wrap(pub, sens, enc_key.buffer, &dup, why)) != KS_OK) {
        if (!err)
            err = fail(why, KS_E_FAILED, "no random bytes for the wrapping key");
        goto out;
    }
    /* the wrapping key, TPM2_Import's first parameter, encrypted on its
     * way by a session salted to the parent */
    if (TSS->Esys_StartAuthSession(esys, parent, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              NULL, TPM2_SE_HMAC, &session_sym, TPM2_ALG_SHA256,
                              &session) != TSS2_RC_SUCCESS ||
        TSS->Esys_TRSess_SetAttributes(esys, session,
                                  TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION,
                                  0xff) != TSS2_RC_SUCCESS) {
        err = fail(why, KS_E_FAILED, "cannot start the TPM session for the import");
        goto out;
    }
    TSS2_RC rc = TSS->Esys_Import(esys, parent, session, ESYS_TR_NONE, ESYS_TR_NONE, &enc_key, pub,
                             &dup, &seed, &sym, priv);
    if (rc != TSS2_RC_SUCCESS)
        err = fail(why, KS_E_FAILED, "the TPM refused to import the key (TPM2_Import)");
out:
    OPENSSL_cleanse(&enc_key, sizeof enc_key);
    OPENSSL_cleanse(&dup, sizeof dup);
    if (session != ESYS_TR_NONE)
        TSS->Esys_FlushContext(esys, session);
    if (parent != ESYS_TR_NONE)
        TSS->Esys_FlushContext(esys, parent);
    return err;
}

ks_err_t ks_tpm_import_blob(const char *tcti, const EVP_PKEY *soft, uint8_t **der, size_t *len,
                            const char **why)
{
    TSS2_TCTI_CONTEXT *tctx = NULL;
    ESYS_CONTEXT *esys = NULL;
    TPM2B_PUBLIC pub;
    TPM2B_SENSITIVE sens;
    TPM2B_PRIVATE *priv = NULL;
    ks_err_t err = key_areas(soft, &pub, &sens, why);
    if (err)
        goto out;
    if ((err = ks_tpm_esys_open(tcti, &tctx, &esys, why)) != KS_OK)
        goto out;
    if ((err = import_with(esys, &pub, &sens, &priv, why)) == KS_OK)
        err = tss2_der(&pub, priv, der, len, why);
out:
    OPENSSL_cleanse(&sens, sizeof sens);
    if (priv)
        TSS->Esys_Free(priv);
    ks_tpm_esys_close(&tctx, &esys);
    return err;
}

#else /* without tpm2-tss's ESAPI */

ks_err_t ks_tpm_import_blob(const char *tcti, const EVP_PKEY *soft, uint8_t **der, size_t *len,
                            const char **why)
{
    (void)tcti;
    (void)soft;
    *der = NULL;
    *len = 0;
    if (why)
        *why = "import of a key into the TPM is not supported (built without tpm2-tss ESAPI)";
    return KS_E_UNSUPPORTED;
}

#endif
