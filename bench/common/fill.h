/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fill.h - certificates into a store through the store's own API, the way
 * the benchmarks set up stores of thousands of certificates quickly.  Dies
 * (bench_die) when the store refuses.
 */
#ifndef BENCH_FILL_H
#define BENCH_FILL_H

#include <stddef.h>

#include "pool.h"
#include "store/store.h"

/* The record a server's Add makes (name = thumbprint, installed by server,
 * now) staged into store store_id: store_put, inside a transaction the
 * caller began. */
void fill_put(store_t *st, const char *store_id, const pool_cert_t *c, const char *server);

/* Certificates [from, to) of p into store store_id of st, batch of them per
 * transaction and store_flush, with the durability barriers skipped
 * (dur_skip); then one syncfs of dir, the store's directory.
 * Trust stores want batch 1: store_flush's CApath step parses every
 * certificate of the batch once per certificate of the batch
 * (docs/performance.md, "Certificate store"). */
void fill_store(store_t *st, const char *dir, const char *store_id, const pool_t *p,
                size_t from, size_t to, size_t batch, const char *server);

#endif
