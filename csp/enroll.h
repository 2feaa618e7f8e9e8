/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll.h - one SCEP enrollment ({UniqueID}) as a record in the store.
 *
 * A record holds the Install parameters the server set (each with the
 * node name and format it used), the snapshot taken at Exec, and the state
 * of the running enrollment (key, request signer, transaction, CA
 * certificates, polls done, next due time).  It lives in the store as the
 * state record "scep-<ns>-<hash of the lower-case UniqueID>", so it
 * changes in the same transaction as the certificate and key it installs.
 */
#ifndef OMADM_ENROLL_H
#define OMADM_ENROLL_H

#include <stdbool.h>
#include <stdint.h>

#include "certstore_internal.h"

/* Install parameters (canonical order). */
typedef enum {
    P_SERVER_URL,
    P_CHALLENGE,
    P_EKU,
    P_KEY_USAGE,
    P_SUBJECT,
    P_KEY_PROTECTION,
    P_RETRY_DELAY,
    P_RETRY_COUNT,
    P_TEMPLATE,
    P_KEY_LENGTH,
    P_HASH,
    P_CA_THUMB,
    P_SAN,
    P_VALID_PERIOD,
    P_VALID_UNITS,
    P_CONTAINER,        /* ClientCertificateInstall only from here */
    P_PROMPT_TEXT,
    P_AAD_KEYS,
    P_ATTEST,
    P__COUNT
} enr_param_t;

typedef struct enr_param_info {
    const char *name;       /* spelling used when listing */
    const char *alias;      /* other accepted spelling, or NULL */
    bool is_int;            /* value must be a decimal integer */
    bool cci_only;
} enr_param_info_t;

extern const enr_param_info_t enr_params[P__COUNT];

/* A parameter by node name (case-insensitive, aliases too); -1 if none. */
int enr_param_find(const char *name, enr_ns_t ns);

typedef enum {
    PH_IDLE = 0,     /* never executed */
    PH_START,        /* executed: contact the CA (again) when due */
    PH_PENDING,      /* the CA answered PENDING: poll when due */
    PH_DONE,         /* finished: installed or failed (status says) */
} enr_phase_t;

/* Windows status values of {UniqueID}/Status. */
enum { ST_INSTALLED = 1, ST_PENDING = 2, ST_FAILED = 16, ST_UNKNOWN = 32 };

typedef struct enr_value {
    char *name;       /* node name as the server spelled it (NULL = unset) */
    char *format;     /* "chr" or "int" */
    char *value;
} enr_value_t;

typedef struct enrollment {
    enr_ns_t ns;
    char *id;                     /* {UniqueID} as first spelled */
    enr_value_t p[P__COUNT];      /* the Install parameters as set now */
    char *snap[P__COUNT];         /* values at the last Exec (NULL = unset) */

    enr_phase_t phase;
    int status;                   /* ST_* */
    int32_t error;                /* HRESULT of the last failure, 0 */
    unsigned gen;                 /* Execs so far */
    int64_t next_due;             /* PH_START / PH_PENDING: when to act */
    unsigned tries;               /* retries (PH_START) or polls (PH_PENDING) used */
    char *exec_uri;               /* the Enroll URI of the last Exec */
    char *server;                 /* the server that executed it */

    /* transaction material (PH_START after the key exists, PH_PENDING) */
    char *key;                    /* PKCS#8 DER, base64 (secret) */
    char *signer;                 /* self-signed request signer, DER base64 */
    char *csr;                    /* DER base64 */
    char *txid;
    char *cacerts;                /* GetCACert body, base64 */
    char *base_url;               /* base URL that answered (incl. /pkiclient.exe) */
    int cipher, digest;           /* scep_cipher_t / scep_digest_t */
    bool post;

    char *respondent;             /* RespondentServerUrl */
    char *thumb;                  /* certificate this enrollment installed */
    bool alert;                   /* a result alert is waiting for delivery */
    int32_t alert_data;
    unsigned alert_gen;
} enrollment_t;

/* The strings of an enrollment come from the certificate store's platform
 * table p (enr_load* use the store's, the same one) and go back to it. */
void enr_free(const omadm_platform_t *p, enrollment_t *e);  /* members (wiping secrets); not e */
/* Forget the transaction material (wiping the key). */
void enr_drop_work(const omadm_platform_t *p, enrollment_t *e);
/* Unset one Install parameter (wiping its value). */
void enr_param_clear(const omadm_platform_t *p, enr_value_t *v);

/* State record name for (ns, id) into buf: "scep-<ns>-" and 32 hex digits
 * of the SHA-256 of the lower-case id, NUL-terminated.  0, or -1 (buf ""
 * when size allows) when it cannot be computed (a digest or allocation
 * failure inside OpenSSL, size < ENR_RECORD_NAME_SIZE): never a shorter
 * name, which would be another record's. */
#define ENR_RECORD_NAME_SIZE 41
int enr_record_name(enr_ns_t ns, const char *id, char *buf, size_t size);
/* The format line of an enrollment record: "omadm-scep 1". */
#define ENR_FORMAT "omadm-scep"
#define ENR_CURRENT 1
#define ENR_WRITES "omadm-scep 1"

/* 0 loaded, 1 absent, -1 error (the name cannot be made) or a damaged
 * record, -2 the record could not be read (memory, I/O): it may well be
 * fine, -3 a record of a newer format (never read, never written over).
 * On failure *e is empty (enr_free not needed). */
int enr_load(store_t *s, enr_ns_t ns, const char *id, enrollment_t *e);
int enr_load_named(store_t *s, const char *record, enrollment_t *e);

/* Every enrollment record loads and is named by its enrollment: each one
 * that does not goes to fn as a line naming its file ("<store>/state/
 * <name>: ..."), their number into *problems.  0, or -1 when the records
 * cannot be listed. */
typedef void (*enr_problem_fn)(void *ctx, const char *problem);
int enr_check_records(store_t *s, enr_problem_fn fn, void *ctx, unsigned *problems);
/* Stage the record (inside a store transaction).  0 / -1. */
int enr_save(store_t *s, const enrollment_t *e);
int enr_delete(store_t *s, const enrollment_t *e);

/* Store id of My/System or My/User, by namespace. */
const char *enr_my_store(enr_ns_t ns);

/* Replace *dst by a copy of src (NULL allowed), from p; the old string is
 * wiped and freed.  0 / -1. */
int enr_set(const omadm_platform_t *p, char **dst, const char *src);

/* An executed enrollment's snapshot, checked and with defaults applied.
 * Strings point into the enrollment. */
typedef struct enr_job {
    const char *urls;            /* ServerURL: one or more, ';'-separated */
    const char *challenge;       /* may be "" */
    const char *eku;             /* "" = none */
    const char *subject;
    const char *san;             /* "" = none */
    const char *hash;            /* HashAlgorithm families */
    const char *ca_thumb;
    const char *valid_period;    /* Days | Months | Years */
    const char *template_name;   /* "" = none */
    unsigned key_usage;
    unsigned key_length;
    unsigned key_protection;     /* 1 TPM only, 2 TPM else software, 3 software */
    unsigned valid_units;
    unsigned retry_count;        /* clamped to 0..30 */
    uint64_t retry_delay;        /* minutes, at least 1 */
} enr_job_t;

/* Check e->snap and fill job: 0, or the ErrorCode with *why saying which
 * parameter and why (static text). */
int32_t enr_check(const enrollment_t *e, enr_job_t *job, const char **why);

/* ErrorCode values (HRESULTs; docs/scep.md has the table). */
#define EC_FAIL ((int32_t)0x80004005)            /* E_FAIL: unexpected local failure */
#define EC_INVALID_ARG ((int32_t)0x80070057)     /* E_INVALIDARG: a parameter is invalid */
#define EC_MISSING ((int32_t)0x80070490)         /* ERROR_NOT_FOUND: required parameter missing */
#define EC_NO_MEMORY ((int32_t)0x8007000E)       /* E_OUTOFMEMORY */
#define EC_STORE ((int32_t)0x8007001D)           /* ERROR_WRITE_FAULT: store write failed */
#define EC_POLL_TIMEOUT ((int32_t)0x800705B4)    /* ERROR_TIMEOUT: still PENDING after RetryCount polls */
#define EC_BAD_DATA ((int32_t)0x80090005)        /* NTE_BAD_DATA: malformed SCEP response */
#define EC_BAD_SIGNATURE ((int32_t)0x80090006)   /* NTE_BAD_SIGNATURE: response not from the CA, or not ours */
#define EC_NOT_SUPPORTED ((int32_t)0x80090029)   /* NTE_NOT_SUPPORTED: no common algorithm, KeyProtection 4 */
#define EC_NO_CERT ((int32_t)0x80092004)         /* CRYPT_E_NOT_FOUND: SUCCESS without our certificate */
#define EC_UNTRUSTED_CA ((int32_t)0x800B0109)    /* CERT_E_UNTRUSTEDROOT: CA does not match CAThumbprint */
#define EC_CHAINING ((int32_t)0x800B010A)        /* CERT_E_CHAINING: issued cert does not chain to the CA */
#define EC_EXPIRED ((int32_t)0x800B0101)         /* CERT_E_EXPIRED: issued cert expired or not yet valid */
#define EC_NO_TPM ((int32_t)0x8028400F)          /* TBS_E_TPM_NOT_FOUND: KeyProtection 1, no TPM */
#define EC_TIMEOUT ((int32_t)0x80072EE2)         /* ERROR_INTERNET_TIMEOUT */
#define EC_CONNECT ((int32_t)0x80072EFD)         /* ERROR_INTERNET_CANNOT_CONNECT */
#define EC_HTTP_BASE ((int32_t)0x80190000)       /* + HTTP status: HTTP_E_STATUS_* (0x801901F4 = 500) */
#define EC_SCEP_FAILURE ((int32_t)0xA0D00000)    /* + failInfo (0..4, 0xFF none): CA answered FAILURE */

#endif
