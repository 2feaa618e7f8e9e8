/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dmtree.h - the engine-owned management tree: nodes, properties, a
 * case-insensitive name index, an undo journal for Atomic, persistence.
 *
 * Subtrees registered by CSP plugins are mount points here (node->csp);
 * what lies below a mount point belongs to the plugin, not to this tree.
 */
#ifndef OMADM_DMTREE_H
#define OMADM_DMTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "internal.h"

struct dm_csp_reg;

typedef struct dmnode {
    char *name;                 /* as first spelled (by us or the server) */
    struct dmnode *parent;
    struct dmnode *first, *last;/* children in insertion order */
    struct dmnode *prev, *next; /* siblings */
    struct dmnode *hnext;       /* name index chain */
    uint32_t hash;
    uint16_t pbucket;           /* persistence bucket holding the node's record */
    uint8_t pstate;             /* DMTREE_P_* bits */
    size_t n_children;
    bool interior;
    bool builtin;               /* created by the engine (not persisted as such) */
    bool permanent;             /* cannot be deleted or renamed */
    bool csp_namespace;         /* holds only CSPs (…/MSFT): Add below finds no such CSP, 404 */
    unsigned access;            /* acl_right_t bits the node's AccessType allows */
    char *format;               /* leaves: chr, int, bin ...; interior: NULL ("node") */
    char *type;                 /* MIME type (leaf) or MO identifier (interior); NULL = default */
    uint8_t *value;             /* leaves; always followed by a NUL byte */
    size_t len;
    char *acl;                  /* NULL = empty (inherit) */
    char *title;
    int64_t tstamp;             /* seconds since epoch, 0 = never set */
    uint16_t verno;
    uint32_t seq;               /* creation order: siblings load in this order */
    const struct dm_csp_reg *csp; /* mount point of a plugin */
    uint8_t dynamic;            /* DMNODE_* : a built-in leaf whose value is made when read */
} dmnode_t;

/* dmnode_t.dynamic: ./DevDetail/Ext/Microsoft/LocalTime, the local time now */
#define DMNODE_STATIC 0u
#define DMNODE_LOCAL_TIME 1u
/* The value of a dynamic leaf into buf (NUL-terminated): its length. */
size_t dmtree_dynamic_value(omadm_t *dm, const dmnode_t *node, char *buf, size_t size);

/* pstate: the node's record changed since it was last saved; its bucket
 * as last saved holds a record of it. */
#define DMTREE_P_UNSAVED 1u
#define DMTREE_P_STORED 2u

typedef struct dmtree dmtree_t;

/* Create root, ./DevInfo, ./DevDetail from dm->cfg, then load the
 * persisted tree through the storage hook.  Sets dm->tree. */
omadm_error_t dmtree_create(omadm_t *dm);
void dmtree_destroy(omadm_t *dm);

dmnode_t *dmtree_root(const omadm_t *dm);
size_t dmtree_node_count(const omadm_t *dm);

/* Case-insensitive child lookup. */
dmnode_t *dmtree_child(const omadm_t *dm, const dmnode_t *parent, const char *name);

/* Create a child (must not exist).  Leaves start with an empty chr value.
 * NULL on allocation failure or when max_nodes is reached (*full set). */
dmnode_t *dmtree_add(omadm_t *dm, dmnode_t *parent, const char *name, bool interior, bool *full);

/* Make a node a permanent part of the device's own tree (built-in objects,
 * CSP mount points): not deletable, not persisted, not counted against
 * max_nodes; access is what the node's AccessType allows. */
void dmtree_make_builtin(omadm_t *dm, dmnode_t *node, unsigned access);

/* Remove a node and its subtree (journaled when a transaction is open);
 * -1, with nothing changed, when the journal cannot grow. */
int dmtree_remove(omadm_t *dm, dmnode_t *node);

/* Set a leaf value; format/type NULL keep defaults ("chr", NULL).
 * Returns 0 or -1 (no memory). */
int dmtree_set_value(omadm_t *dm, dmnode_t *node, const uint8_t *data, size_t len,
                     const char *format, const char *type);
/* Set a string property (acl / title / name).  0 or -1. */
int dmtree_set_acl(omadm_t *dm, dmnode_t *node, const char *acl);
int dmtree_set_title(omadm_t *dm, dmnode_t *node, const char *title);
int dmtree_rename(omadm_t *dm, dmnode_t *node, const char *name);
int dmtree_set_type(omadm_t *dm, dmnode_t *node, const char *type);

/* The ACL that applies to node: its own, or the nearest ancestor's. */
const char *dmtree_effective_acl(const dmnode_t *node);

/* Full URI of a node ("./A/B"), names percent-escaped; appended to b. */
int dmtree_uri(const dmnode_t *node, buf_t *b);

/* Transactions (Atomic): every change after begin() is undone by
 * rollback(); commit() forgets the journal.  Not nested. */
void dmtree_tx_begin(omadm_t *dm);
void dmtree_tx_commit(omadm_t *dm);
void dmtree_tx_rollback(omadm_t *dm);
/* Savepoints inside an open transaction: undo what came after one. */
size_t dmtree_savepoint(const omadm_t *dm);
void dmtree_rollback_to(omadm_t *dm, size_t savepoint);

/* Persistence through dm->storage; no-op without storage.  The tree is
 * kept in DMTREE_BUCKETS buckets (a node's bucket is fixed when it is
 * created), each under two keys "tree.<i>.a" / "tree.<i>.b" used in turn,
 * and a manifest under "tree" naming each bucket's current key and
 * checksum.  A save writes the buckets whose records changed into their
 * other key, then the manifest: until the manifest is replaced the stored
 * tree is the previous one.  OMADM_E_STORAGE when a save() fails (the
 * stored tree is then the one before), OMADM_E_NOMEM. */
#define DMTREE_BUCKETS 512u
#define DMTREE_BUCKETS_MAX 4096u /* read from a manifest */
omadm_error_t dmtree_save(omadm_t *dm);

#endif
