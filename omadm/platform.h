/* SPDX-License-Identifier: Apache-2.0 */
/*
 * platform.h - the host's platform table (omadm_platform_t) with its
 * defaults filled in, and the helpers every part of the library (engine,
 * store, CSPs) allocates, reads the clock and draws randomness through.
 */
#ifndef OMADM_PLATFORM_H
#define OMADM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

/* Copy *in (NULL: all defaults) into *out and fill every NULL hook with its
 * default: malloc/realloc/free (all three or none are the host's), time(),
 * OpenSSL's RAND_bytes, no logging. */
void plat_init(omadm_platform_t *out, const omadm_platform_t *in);

void *plat_alloc(const omadm_platform_t *p, size_t n);
void *plat_calloc(const omadm_platform_t *p, size_t n);          /* zeroed */
void *plat_realloc(const omadm_platform_t *p, void *ptr, size_t n);
void plat_free(const omadm_platform_t *p, void *ptr);            /* NULL-safe */
char *plat_strdup(const omadm_platform_t *p, const char *s);     /* NULL for NULL */
char *plat_strndup(const omadm_platform_t *p, const char *s, size_t n);
int64_t plat_now(const omadm_platform_t *p);
int plat_random(const omadm_platform_t *p, uint8_t *buf, size_t len); /* 0 on success */

#endif
