/* SPDX-License-Identifier: Apache-2.0 */
/* bench/keygen.c - the RSA key generation floor of an enrollment (docs/performance.md,
 * "SCEP enrollment").
 *
 *   keygen [N [BITS]]   N (default 31) keys of BITS (default 2048) bits through
 *                       scep_keygen_rsa(&P, ), the function the enrollment uses
 *                       (csp/enroll_run.c:make_key); one line per key:
 *                         keygen BITS MS
 *                       then a summary line on stderr (median, min, max).
 *
 * One untimed 1024-bit key first loads OpenSSL's providers and seeds its DRBG,
 * so every timed key costs what a key costs, not the library's set-up.  RSA key
 * generation is a random prime search: its time varies several-fold from key
 * to key, hence the many samples.  Exit status 0, or 1 when a key fails. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "csp/scep_msg.h"
#include "platform.h"

/* The library's default platform table (libc allocator, time(), OpenSSL's
 * RNG), for the calls that take one. */
static omadm_platform_t P;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    plat_init(&P, NULL);
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 31;
    long bits = argc > 2 ? strtol(argv[2], NULL, 10) : 2048;
    if (argc > 3 || n < 1 || n > 100000 || (bits != 1024 && bits != 2048 && bits != 4096)) {
        fprintf(stderr, "usage: keygen [N [1024|2048|4096]]\n");
        return 2;
    }
    const char *why = NULL;
    scep_key_t *key = NULL;
    if (scep_keygen_rsa(&P, 1024, &key, &why)) {
        fprintf(stderr, "keygen: warm-up key failed: %s\n", why ? why : "?");
        return 1;
    }
    scep_key_free(&P, key);

    double *ms = calloc((size_t)n, sizeof *ms);
    if (!ms)
        return 1;
    for (long i = 0; i < n; i++) {
        key = NULL;
        double t0 = now_ms();
        scep_err_t err = scep_keygen_rsa(&P, (unsigned)bits, &key, &why);
        ms[i] = now_ms() - t0;
        if (err || !key) {
            fprintf(stderr, "keygen: key %ld failed: %s\n", i + 1, why ? why : "?");
            free(ms);
            return 1;
        }
        scep_key_free(&P, key);
        printf("keygen %ld %.3f\n", bits, ms[i]);
        fflush(stdout);
    }
    qsort(ms, (size_t)n, sizeof *ms, by_value);
    double med = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    fprintf(stderr, "keygen: %ld x RSA-%ld: median %.1f ms, min %.1f, max %.1f\n", n, bits, med,
            ms[0], ms[n - 1]);
    free(ms);
    return 0;
}
