/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_ossl.h - OpenSSL's memory functions for the suites that make its
 * allocations fail (test_store_alloc, test_enroll_step,
 * test_openssl_init): every malloc and realloc counted, the N-th on
 * request failing.
 */
#ifndef SUPPORT_OSSL_H
#define SUPPORT_OSSL_H

#include <stdbool.h>

/* Install them (CRYPTO_set_mem_functions): in main, before OpenSSL's first
 * allocation; false when that was too late. */
bool tossl_install(void);

/* Fail OpenSSL's n-th allocation from now on, counting failures afresh;
 * 0: fail none (the failure count stays, for the run just ended). */
void tossl_arm(long n);

/* OpenSSL's allocations in this process so far. */
long tossl_calls(void);
/* Those that failed since the last tossl_arm(n > 0). */
long tossl_failures(void);

/* In a child process that runs OpenSSL under failure: the crash signals
 * back to their default actions, so a crash is the child's death, not the
 * test runner's to catch. */
void tossl_child_signals(void);

#endif
