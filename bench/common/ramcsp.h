/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ramcsp.h - a minimal in-memory CSP on ./Vendor/MSFT/CertificateStore for
 * the benchmarks: what the engine costs when the plugin behind it costs
 * next to nothing.
 *
 * A hash table of nodes keyed by their path below the base, each with its
 * children in insertion order.  get, list, add, replace and delete; Add
 * creates interior parents implicitly, Delete removes a subtree.  No crypto,
 * no persistence, no transaction hooks.  Dies (bench_die) when memory runs
 * out while growing its table; a node it cannot allocate answers 500.
 */
#ifndef BENCH_RAMCSP_H
#define BENCH_RAMCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omadm.h"

#define RAMCSP_BASE "./Vendor/MSFT/CertificateStore"

typedef struct ramcsp_node {
    char *path;                /* owned; below the base, e.g. "Root/System/AB12..." */
    const char *name;          /* last segment (points into path) */
    struct ramcsp_node *hnext;
    struct ramcsp_node *parent, *first, *last, *prev, *next;
    bool interior;
    uint8_t *value;            /* owned; leaves */
    size_t len;
    char *format;              /* owned; leaves */
} ramcsp_node_t;

typedef struct ramcsp {
    ramcsp_node_t root;        /* path "" */
    ramcsp_node_t **buckets;   /* owned */
    size_t n_buckets;          /* power of two */
    size_t n_nodes;
} ramcsp_t;

/* An empty tree. */
void ramcsp_init(ramcsp_t *t);
/* Every node released; t must be initialised again before another use. */
void ramcsp_free(ramcsp_t *t);
/* Mount t on dm at RAMCSP_BASE; t must outlive dm.  omadm_register_csp's
 * errors. */
omadm_error_t ramcsp_register(omadm_t *dm, ramcsp_t *t);

#endif
