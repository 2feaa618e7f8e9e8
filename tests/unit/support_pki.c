/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_pki.c - the test PKI and run-time certificates (see support_pki.h).
 */
#include "support_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tpki_dir(void)
{
    static char found[PATH_MAX + 32];
    char cur[PATH_MAX], probe[PATH_MAX + 32];
    if (found[0])
        return found;
    const char *top = getenv("OMADM_TOP");
    if (top && *top) {
        snprintf(probe, sizeof probe, "%s/tests/data/pki", top);
        if (is_dir(probe) && realpath(probe, found))
            return found;
        fprintf(stderr, "support_pki: OMADM_TOP=%s has no tests/data/pki\n", top);
        return NULL;
    }
    if (!getcwd(cur, sizeof cur))
        return NULL;
    for (;;) {
        snprintf(probe, sizeof probe, "%s/tests/data/pki", strcmp(cur, "/") ? cur : "");
        if (is_dir(probe)) {
            snprintf(found, sizeof found, "%s", probe);
            return found;
        }
        char *slash = strrchr(cur, '/');
        if (!slash || !strcmp(cur, "/"))
            break;
        if (slash == cur)
            slash[1] = 0; /* "/x" -> "/" */
        else
            *slash = 0;
    }
    fprintf(stderr, "support_pki: no tests/data/pki above the current directory; "
                    "set OMADM_TOP to the repository root\n");
    return NULL;
}

uint8_t *tpki_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got == (size_t)st.st_size) {
            buf[got] = 0;
            if (len)
                *len = got;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

uint8_t *tpki_read(const char *file, size_t *len)
{
    const char *dir = tpki_dir();
    char p[PATH_MAX + 64];
    if (!dir)
        return NULL;
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return tpki_slurp(p, len);
}

int tpki_thumb(const char *name, char out[41])
{
    char file[64];
    size_t len = 0;
    snprintf(file, sizeof file, "%s.sha1", name);
    uint8_t *t = tpki_read(file, &len);
    if (!t)
        return -1;
    while (len && (t[len - 1] == '\n' || t[len - 1] == '\r'))
        len--;
    int rc = len == 40 ? 0 : -1;
    if (!rc) {
        memcpy(out, t, 40);
        out[40] = 0;
    }
    free(t);
    return rc;
}

int tpki_make_cert(const char *o, const char *cn, long serial, uint8_t **der, size_t *len)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *out = NULL;
    int rc = -1, n = 0;
    *der = NULL;
    if (!key || !x || !name)
        goto done;
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0))
        goto done;
    if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
        !ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20250101000000Z") ||
        !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "20450101000000Z") ||
        !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
        !X509_set_pubkey(x, key) || !X509_sign(x, key, EVP_sha256()))
        goto done;
    n = i2d_X509(x, &out);
    if (n <= 0 || !(*der = malloc((size_t)n)))
        goto done;
    memcpy(*der, out, (size_t)n);
    *len = (size_t)n;
    rc = 0;
done:
    OPENSSL_free(out);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
