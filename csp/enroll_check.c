/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enroll_check.c - judge an Exec'd enrollment's parameters: required ones
 * present, values in range, defaults and clamps applied (docs/scep.md,
 * "Install parameters").
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "enroll.h"
#include "scep_msg.h"

/* Decimal integer with optional surrounding white space. */
static int to_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static bool blank(const char *s)
{
    for (; s && *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* Every ';'-separated URL is http(s)://something. */
static bool urls_ok(const char *list)
{
    bool any = false;
    const char *p = list;
    while (*p) {
        while (*p == ';' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ";");
        size_t scheme = !strncasecmp(p, "http://", 7) ? 7 : !strncasecmp(p, "https://", 8) ? 8 : 0;
        if (!scheme || len <= scheme)
            return false;
        any = true;
        p += len;
    }
    return any;
}

static bool thumb_ok(const char *s)
{
    size_t digits = 0;
    for (; *s; s++) {
        if (isxdigit((unsigned char)*s))
            digits++;
        else if (!strchr(" \t:-", *s))
            return false;
    }
    return digits == 40;
}

int32_t enr_check(const enrollment_t *e, enr_job_t *job, const char **why)
{
    static const struct {
        enr_param_t p;
        const char *why;
    } required[] = {
        {P_SERVER_URL, "ServerURL is missing"},
        {P_CHALLENGE, "Challenge is missing"},
        {P_KEY_USAGE, "KeyUsage is missing"},
        {P_SUBJECT, "SubjectName is missing"},
        {P_KEY_LENGTH, "KeyLength is missing"},
        {P_HASH, "HashAlgorithm is missing"},
        {P_CA_THUMB, "CAThumbprint is missing"},
    };
    char *const *s = e->snap;
    long long v;
    memset(job, 0, sizeof *job);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!s[required[i].p]) {
            *why = required[i].why;
            return EC_MISSING;
        }
    }
    job->urls = s[P_SERVER_URL];
    job->challenge = s[P_CHALLENGE];
    job->eku = s[P_EKU] ? s[P_EKU] : "";
    job->subject = s[P_SUBJECT];
    job->san = s[P_SAN] ? s[P_SAN] : "";
    job->hash = s[P_HASH];
    job->ca_thumb = s[P_CA_THUMB];
    job->valid_period = s[P_VALID_PERIOD] && !blank(s[P_VALID_PERIOD]) ? s[P_VALID_PERIOD] : "Days";
    job->template_name = s[P_TEMPLATE] ? s[P_TEMPLATE] : "";

    if (!urls_ok(job->urls)) {
        *why = "ServerURL is not a ';'-separated list of http(s) URLs";
        return EC_INVALID_ARG;
    }
    /* X509KeyUsageFlags: the first octet of the KeyUsage bits plus
     * 0x8000 decipherOnly; a SCEP key must sign or encipher */
    if (to_int(s[P_KEY_USAGE], &v) || v <= 0 || (v & ~0x80FFLL) || !(v & 0xA0)) {
        *why = "KeyUsage must be key-usage bits including 0x80 or 0x20";
        return EC_INVALID_ARG;
    }
    job->key_usage = (unsigned)v;
    if (to_int(s[P_KEY_LENGTH], &v) || (v != 1024 && v != 2048 && v != 4096)) {
        *why = "KeyLength must be 1024, 2048 or 4096";
        return EC_INVALID_ARG;
    }
    job->key_length = (unsigned)v;
    if (blank(job->subject)) {
        *why = "SubjectName is empty";
        return EC_INVALID_ARG;
    }
    scep_cipher_t c;
    scep_digest_t d;
    const char *w = NULL;
    if (scep_caps_choose(~0u, job->hash, &c, &d, &w) == SCEP_E_INVALID_ARG || blank(job->hash)) {
        *why = "HashAlgorithm names no known family (SHA-1, SHA-2, SHA-3)";
        return EC_INVALID_ARG;
    }
    if (!thumb_ok(job->ca_thumb)) {
        *why = "CAThumbprint is not 40 hex digits";
        return EC_INVALID_ARG;
    }
    if (strcasecmp(job->valid_period, "Days") && strcasecmp(job->valid_period, "Months") &&
        strcasecmp(job->valid_period, "Years")) {
        *why = "ValidPeriod must be Days, Months or Years";
        return EC_INVALID_ARG;
    }
    job->valid_units = 0;
    if (s[P_VALID_UNITS] && !blank(s[P_VALID_UNITS])) {
        if (to_int(s[P_VALID_UNITS], &v) || v < 0 || v > 100000) {
            *why = "ValidPeriodUnits must be a count from 0";
            return EC_INVALID_ARG;
        }
        job->valid_units = (unsigned)v;
    }
    job->retry_count = 3;
    if (s[P_RETRY_COUNT]) {
        if (to_int(s[P_RETRY_COUNT], &v) || v < 0) {
            *why = "RetryCount must be 0 or more";
            return EC_INVALID_ARG;
        }
        job->retry_count = v > 30 ? 30 : (unsigned)v; /* documented clamp */
    }
    job->retry_delay = 5;
    if (s[P_RETRY_DELAY]) {
        if (to_int(s[P_RETRY_DELAY], &v) || v < 0 || v > 0xFFFFFFFFLL) {
            *why = "RetryDelay must be a number of minutes";
            return EC_INVALID_ARG;
        }
        job->retry_delay = v < 1 ? 1 : (uint64_t)v; /* at least one minute */
    }
    long long kp = 3;
    if (s[P_KEY_PROTECTION] && to_int(s[P_KEY_PROTECTION], &kp)) {
        *why = "KeyProtection must be 1, 2 or 3";
        return EC_INVALID_ARG;
    }
    if (kp == 4) {
        *why = "KeyProtection 4 (Windows Hello for Business) is not supported";
        return EC_NOT_SUPPORTED;
    }
    if (kp < 1 || kp > 3) {
        *why = "KeyProtection must be 1, 2 or 3";
        return EC_INVALID_ARG;
    }
    /* 1 and 2 want the TPM: whether there is one is seen when the key is
     * made (enroll_run.c choose_store) */
    job->key_protection = (unsigned)kp;
    if (s[P_ATTEST] && !blank(s[P_ATTEST])) {
        if (to_int(s[P_ATTEST], &v) || v < 0 || v > 2) {
            *why = "AttestPrivateKey must be 0, 1 or 2";
            return EC_INVALID_ARG;
        }
        if (v == 2) {
            *why = "AttestPrivateKey 2 requires key attestation, which needs a TPM";
            return EC_NO_TPM;
        }
    }
    return 0;
}
