/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dmtree.c - the engine-owned management tree.
 */
#include "dmtree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "crypto.h"
#include "state_format.h"
#include "uri.h"

typedef enum { J_ADDED, J_REMOVED, J_VALUE, J_STR, J_NAME } jkind_t;

typedef struct jentry {
    jkind_t kind;
    dmnode_t *node;
    dmnode_t *parent;         /* J_REMOVED */
    dmnode_t *prev;           /* J_REMOVED: sibling it followed */
    char **field;             /* J_STR / J_NAME */
    char *old_str;
    uint8_t *old_value;       /* J_VALUE */
    size_t old_len;
    char *old_format, *old_type;
    int64_t old_tstamp;
    uint16_t old_verno;
} jentry_t;

/* One persistence bucket as the stored manifest names it. */
typedef struct pbucket {
    uint64_t sum;              /* FNV-1a 64 of the current key's bytes */
    uint32_t gen;              /* generation of the current key: "a" even, "b" odd */
    bool used;                 /* the manifest names it (else it holds no record) */
    bool dirty;                /* to be written with the next save */
} pbucket_t;

struct dmtree {
    dmnode_t *root;
    dmnode_t **buckets;
    size_t n_buckets;
    size_t n_nodes;
    size_t n_builtin;          /* not counted against max_nodes */
    bool tx;
    jentry_t *journal;
    size_t n_journal, cap_journal;
    pbucket_t *pb;             /* persistence buckets */
    unsigned n_pb;
    uint32_t next_seq;
    bool pb_force;             /* write the manifest even if no bucket changed */
    bool pb_unsure;            /* a manifest save failed: the key may hold either */
};

static void free_subtree(omadm_t *dm, dmnode_t *n);

/* ---- name index ---- */

static uint32_t name_hash(const dmnode_t *parent, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char c = *p;
        if (c >= 'A' && c <= 'Z')
            c += 32;
        h = (h ^ c) * 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static int index_grow(omadm_t *dm, dmtree_t *t)
{
    size_t nb = t->n_buckets ? t->n_buckets * 2 : 256;
    dmnode_t **b = om_calloc(dm, nb * sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < t->n_buckets; i++) {
        dmnode_t *n = t->buckets[i];
        while (n) {
            dmnode_t *next = n->hnext;
            size_t j = n->hash & (nb - 1);
            n->hnext = b[j];
            b[j] = n;
            n = next;
        }
    }
    om_free(dm, t->buckets);
    t->buckets = b;
    t->n_buckets = nb;
    return 0;
}

static void index_insert(dmtree_t *t, dmnode_t *n)
{
    n->hash = name_hash(n->parent, n->name);
    size_t j = n->hash & (t->n_buckets - 1);
    n->hnext = t->buckets[j];
    t->buckets[j] = n;
}

static void index_remove(dmtree_t *t, dmnode_t *n)
{
    dmnode_t **pp = &t->buckets[n->hash & (t->n_buckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = n->hnext;
    n->hnext = NULL;
}

static void index_subtree(dmtree_t *t, dmnode_t *n, bool insert)
{
    if (insert)
        index_insert(t, n);
    else
        index_remove(t, n);
    for (dmnode_t *c = n->first; c; c = c->next)
        index_subtree(t, c, insert);
}

static size_t count_subtree(const dmnode_t *n)
{
    size_t k = 1;
    for (const dmnode_t *c = n->first; c; c = c->next)
        k += count_subtree(c);
    return k;
}

/* ---- persistence bookkeeping ---- */

/* Whether a node has a record in the stored tree: every node but the root
 * and the built-in ones, which are recorded only for their properties. */
static bool recorded(const dmnode_t *n)
{
    if (!n->parent)
        return n->acl != NULL;
    return !n->builtin || n->acl || n->title;
}

/* The bucket of a new node: a hash of its parent's bucket and its name
 * (case-folded), so a subtree spreads over every bucket. */
static uint16_t place(const dmtree_t *t, const dmnode_t *parent, const char *name)
{
    uint32_t h = 2166136261u ^ ((uint32_t)parent->pbucket * 0x9E3779B1u);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char c = *p;
        if (c >= 'A' && c <= 'Z')
            c += 32;
        h = (h ^ c) * 16777619u;
    }
    return (uint16_t)(h % t->n_pb);
}

static void touch(dmnode_t *n)
{
    n->pstate |= DMTREE_P_UNSAVED;
}

/* A rename changes the URI in every record below. */
static void touch_subtree(dmnode_t *n)
{
    touch(n);
    for (dmnode_t *c = n->first; c; c = c->next)
        touch_subtree(c);
}

/* A subtree leaves the tree: the buckets holding its records change. */
static void forget_subtree(dmtree_t *t, const dmnode_t *n)
{
    if (n->pstate & DMTREE_P_STORED)
        t->pb[n->pbucket].dirty = true;
    for (const dmnode_t *c = n->first; c; c = c->next)
        forget_subtree(t, c);
}

static uint32_t number_subtree(dmnode_t *n, uint32_t seq)
{
    n->seq = seq++;
    touch(n);
    for (dmnode_t *c = n->first; c; c = c->next)
        seq = number_subtree(c, seq);
    return seq;
}

/* Creation numbers ran out (2^32 nodes created): number the tree again in
 * its order, removed subtrees an Atomic may bring back included; every
 * record changes. */
static void renumber(dmtree_t *t)
{
    uint32_t seq = number_subtree(t->root, 1);
    for (size_t i = 0; i < t->n_journal; i++)
        if (t->journal[i].kind == J_REMOVED)
            seq = number_subtree(t->journal[i].node, seq);
    t->next_seq = seq;
}

static uint32_t take_seq(dmtree_t *t)
{
    if (t->next_seq == UINT32_MAX)
        renumber(t);
    return t->next_seq++;
}

dmnode_t *dmtree_child(const omadm_t *dm, const dmnode_t *parent, const char *name)
{
    const dmtree_t *t = dm->tree;
    uint32_t h = name_hash(parent, name);
    for (dmnode_t *n = t->buckets[h & (t->n_buckets - 1)]; n; n = n->hnext)
        if (n->hash == h && n->parent == parent && om_strcaseeq(n->name, name))
            return n;
    return NULL;
}

dmnode_t *dmtree_root(const omadm_t *dm)
{
    return dm->tree->root;
}

size_t dmtree_node_count(const omadm_t *dm)
{
    return dm->tree->n_nodes;
}

/* ---- journal ---- */

static jentry_t *journal_push(omadm_t *dm, jkind_t kind, dmnode_t *node)
{
    dmtree_t *t = dm->tree;
    if (!t->tx)
        return NULL;
    if (t->n_journal == t->cap_journal) {
        size_t cap = t->cap_journal ? t->cap_journal * 2 : 32;
        jentry_t *j = om_realloc(dm, t->journal, cap * sizeof *j);
        if (!j)
            return NULL;
        t->journal = j;
        t->cap_journal = cap;
    }
    jentry_t *e = &t->journal[t->n_journal++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->node = node;
    return e;
}

/* A change that must be journaled but cannot be (no memory) fails. */
static bool journal_needed(omadm_t *dm)
{
    return dm->tree->tx;
}

void dmtree_tx_begin(omadm_t *dm)
{
    dm->tree->tx = true;
    dm->tree->n_journal = 0;
}

static void release_entry(omadm_t *dm, jentry_t *e)
{
    switch (e->kind) {
    case J_VALUE:
        om_free(dm, e->old_value);
        om_free(dm, e->old_format);
        om_free(dm, e->old_type);
        break;
    case J_STR:
    case J_NAME:
        om_free(dm, e->old_str);
        break;
    default:
        break;
    }
}

void dmtree_tx_commit(omadm_t *dm)
{
    dmtree_t *t = dm->tree;
    for (size_t i = 0; i < t->n_journal; i++)
        release_entry(dm, &t->journal[i]);
    for (size_t i = 0; i < t->n_journal; i++)
        if (t->journal[i].kind == J_REMOVED)
            free_subtree(dm, t->journal[i].node);
    t->n_journal = 0;
    t->tx = false;
}

static void link_child(dmnode_t *parent, dmnode_t *n, dmnode_t *after)
{
    n->parent = parent;
    n->prev = after;
    n->next = after ? after->next : parent->first;
    if (n->next)
        n->next->prev = n;
    else
        parent->last = n;
    if (after)
        after->next = n;
    else
        parent->first = n;
    parent->n_children++;
}

static void unlink_child(dmnode_t *n)
{
    dmnode_t *p = n->parent;
    if (n->prev)
        n->prev->next = n->next;
    else
        p->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        p->last = n->prev;
    p->n_children--;
    n->prev = n->next = NULL;
}

static void undo_entry(omadm_t *dm, jentry_t *e)
{
    dmtree_t *t = dm->tree;
    dmnode_t *n = e->node;
    switch (e->kind) {
    case J_ADDED:
        forget_subtree(t, n);
        index_subtree(t, n, false);
        t->n_nodes -= count_subtree(n);
        unlink_child(n);
        free_subtree(dm, n);
        break;
    case J_REMOVED:
        link_child(e->parent, n, e->prev);
        index_subtree(t, n, true);
        t->n_nodes += count_subtree(n);
        touch_subtree(n);
        break;
    case J_VALUE:
        touch(n);
        om_free(dm, n->value);
        om_free(dm, n->format);
        om_free(dm, n->type);
        n->value = e->old_value;
        n->len = e->old_len;
        n->format = e->old_format;
        n->type = e->old_type;
        n->tstamp = e->old_tstamp;
        n->verno = e->old_verno;
        break;
    case J_NAME:
        index_remove(t, n);
        touch_subtree(n);
        /* fall through */
    case J_STR:
        touch(n);
        om_free(dm, *e->field);
        *e->field = e->old_str;
        if (e->kind == J_NAME)
            index_insert(t, n);
        break;
    }
}

void dmtree_tx_rollback(omadm_t *dm)
{
    dmtree_rollback_to(dm, 0);
    dm->tree->tx = false;
}

size_t dmtree_savepoint(const omadm_t *dm)
{
    return dm->tree->n_journal;
}

void dmtree_rollback_to(omadm_t *dm, size_t savepoint)
{
    dmtree_t *t = dm->tree;
    while (t->n_journal > savepoint)
        undo_entry(dm, &t->journal[--t->n_journal]);
}

/* ---- nodes ---- */

static void free_node(omadm_t *dm, dmnode_t *n)
{
    om_free(dm, n->name);
    om_free(dm, n->format);
    om_free(dm, n->type);
    om_free(dm, n->value);
    om_free(dm, n->acl);
    om_free(dm, n->title);
    om_free(dm, n);
}

static void free_subtree(omadm_t *dm, dmnode_t *n)
{
    dmnode_t *c = n->first;
    while (c) {
        dmnode_t *next = c->next;
        free_subtree(dm, c);
        c = next;
    }
    free_node(dm, n);
}

static dmnode_t *new_node(omadm_t *dm, const char *name, bool interior)
{
    dmnode_t *n = om_calloc(dm, sizeof *n);
    if (!n)
        return NULL;
    n->name = om_strdup(dm, name);
    n->interior = interior;
    n->access = ACL_ALL;
    if (!interior) {
        n->value = om_calloc(dm, 1);
        n->format = om_strdup(dm, "chr");
    }
    if (!n->name || (!interior && (!n->value || !n->format))) {
        free_node(dm, n);
        return NULL;
    }
    n->tstamp = om_now(dm);
    return n;
}

dmnode_t *dmtree_add(omadm_t *dm, dmnode_t *parent, const char *name, bool interior, bool *full)
{
    dmtree_t *t = dm->tree;
    if (full)
        *full = false;
    if (t->n_nodes - t->n_builtin >= dm->cfg.max_nodes) {
        if (full)
            *full = true;
        return NULL;
    }
    if (t->n_nodes + 1 > t->n_buckets && index_grow(dm, t))
        return NULL;
    dmnode_t *n = new_node(dm, name, interior);
    if (!n)
        return NULL;
    if (journal_needed(dm) && !journal_push(dm, J_ADDED, n)) {
        free_node(dm, n);
        return NULL;
    }
    link_child(parent, n, parent->last);
    index_insert(t, n);
    t->n_nodes++;
    n->pbucket = place(t, parent, name);
    n->seq = take_seq(t);
    touch(n);
    return n;
}

void dmtree_make_builtin(omadm_t *dm, dmnode_t *node, unsigned access)
{
    if (!node->builtin) {
        dm->tree->n_builtin++;
        touch(node); /* its record, if it keeps one, loses the value */
    }
    node->builtin = true;
    node->permanent = true;
    node->access = access;
}

int dmtree_remove(omadm_t *dm, dmnode_t *node)
{
    dmtree_t *t = dm->tree;
    dmnode_t *parent = node->parent, *prev = node->prev;
    jentry_t *e = NULL;
    if (journal_needed(dm) && !(e = journal_push(dm, J_REMOVED, node)))
        return -1; /* cannot journal: keep the tree unchanged */
    forget_subtree(t, node);
    index_subtree(t, node, false);
    t->n_nodes -= count_subtree(node);
    unlink_child(node);
    if (e) {
        e->parent = parent;
        e->prev = prev;
        return 0;
    }
    free_subtree(dm, node);
    return 0;
}

int dmtree_set_value(omadm_t *dm, dmnode_t *node, const uint8_t *data, size_t len,
                     const char *format, const char *type)
{
    uint8_t *v = om_alloc(dm, len + 1);
    char *f = om_strdup(dm, format ? format : "chr");
    char *ty = type ? om_strdup(dm, type) : NULL;
    if (!v || !f || (type && !ty))
        goto fail;
    if (len)
        memcpy(v, data, len);
    v[len] = 0;
    jentry_t *e = NULL;
    if (journal_needed(dm)) {
        e = journal_push(dm, J_VALUE, node);
        if (!e)
            goto fail;
        e->old_value = node->value;
        e->old_len = node->len;
        e->old_format = node->format;
        e->old_type = node->type;
        e->old_tstamp = node->tstamp;
        e->old_verno = node->verno;
    } else {
        om_free(dm, node->value);
        om_free(dm, node->format);
        om_free(dm, node->type);
    }
    node->value = v;
    node->len = len;
    node->format = f;
    node->type = ty;
    node->tstamp = om_now(dm);
    node->verno++;
    touch(node);
    return 0;
fail:
    om_free(dm, v);
    om_free(dm, f);
    om_free(dm, ty);
    return -1;
}

static int set_str(omadm_t *dm, dmnode_t *node, char **field, const char *val, jkind_t kind)
{
    char *s = val ? om_strdup(dm, val) : NULL;
    if (val && !s)
        return -1;
    if (journal_needed(dm)) {
        jentry_t *e = journal_push(dm, kind, node);
        if (!e) {
            om_free(dm, s);
            return -1;
        }
        e->field = field;
        e->old_str = *field;
    } else {
        om_free(dm, *field);
    }
    if (kind == J_NAME) {
        index_remove(dm->tree, node);
        touch_subtree(node);
    }
    *field = s;
    if (kind == J_NAME)
        index_insert(dm->tree, node);
    touch(node);
    return 0;
}

int dmtree_set_acl(omadm_t *dm, dmnode_t *node, const char *acl)
{
    return set_str(dm, node, &node->acl, acl && *acl ? acl : NULL, J_STR);
}

int dmtree_set_title(omadm_t *dm, dmnode_t *node, const char *title)
{
    return set_str(dm, node, &node->title, title, J_STR);
}

int dmtree_set_type(omadm_t *dm, dmnode_t *node, const char *type)
{
    return set_str(dm, node, &node->type, type, J_STR);
}

int dmtree_rename(omadm_t *dm, dmnode_t *node, const char *name)
{
    return set_str(dm, node, &node->name, name, J_NAME);
}

const char *dmtree_effective_acl(const dmnode_t *node)
{
    for (; node; node = node->parent)
        if (node->acl)
            return node->acl;
    return "";
}

int dmtree_uri(const dmnode_t *node, buf_t *b)
{
    if (!node->parent)
        return buf_putc(b, '.');
    if (dmtree_uri(node->parent, b))
        return -1;
    buf_putc(b, '/');
    return uri_append_escaped(b, node->name);
}

/* ---- built-in objects ---- */

static dmnode_t *builtin(omadm_t *dm, dmnode_t *parent, const char *name, const char *value,
                         const char *format)
{
    dmnode_t *n = dmtree_add(dm, parent, name, value == NULL, NULL);
    if (!n)
        return NULL;
    dmtree_make_builtin(dm, n, ACL_GET);
    if (value && dmtree_set_value(dm, n, (const uint8_t *)value, strlen(value), format, NULL))
        return NULL;
    if (value)
        n->verno = 0;
    return n;
}

/* ./DevDetail/Ext/Microsoft: Windows' names and formats (DevDetail CSP). */
static const struct {
    const char *name;
    const char *format;
    uint8_t dynamic;
} devdetail_ms[] = {
    {"DeviceName", "chr", DMNODE_STATIC},    {"DNSComputerName", "chr", DMNODE_STATIC},
    {"LocalTime", "chr", DMNODE_LOCAL_TIME}, {"OSPlatform", "chr", DMNODE_STATIC},
    {"ProcessorType", "int", DMNODE_STATIC}, {"SMBIOSVersion", "chr", DMNODE_STATIC},
    {"TotalRAM", "int", DMNODE_STATIC},
};

/* LocalTime: ISO 8601 with the offset from UTC, "2026-12-07T23:05:09+01:00"
 * (Microsoft's DevDetail CSP: "the client local time in ISO 8601 format").
 * The offset is worked out from localtime_r and gmtime_r (no tm_gmtoff:
 * not every libc has it). */
size_t dmtree_dynamic_value(omadm_t *dm, const dmnode_t *node, char *buf, size_t size)
{
    if (node->dynamic != DMNODE_LOCAL_TIME || size < 32) {
        if (size)
            buf[0] = 0;
        return 0;
    }
    time_t t = (time_t)om_now(dm);
    struct tm lt, ut;
    if (!gmtime_r(&t, &ut))
        memset(&ut, 0, sizeof ut);
    if (!localtime_r(&t, &lt))
        lt = ut;
    int days = lt.tm_year != ut.tm_year ? (lt.tm_year > ut.tm_year ? 1 : -1)
                                        : lt.tm_yday - ut.tm_yday;
    long off = days * 86400L + (lt.tm_hour - ut.tm_hour) * 3600L + (lt.tm_min - ut.tm_min) * 60L +
               (lt.tm_sec - ut.tm_sec);
    long a = off < 0 ? -off : off;
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                     lt.tm_year + 1900, lt.tm_mon + 1, lt.tm_mday, lt.tm_hour, lt.tm_min,
                     lt.tm_sec, off < 0 ? '-' : '+', a / 3600 % 100, a / 60 % 60);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

omadm_error_t omadm_devdetail_set(omadm_t *dm, const char *name, const char *value)
{
    if (!dm || !name || !dm->tree)
        return OMADM_E_INVALID_ARG;
    size_t i = 0;
    while (i < sizeof devdetail_ms / sizeof devdetail_ms[0] && strcmp(devdetail_ms[i].name, name))
        i++;
    if (i == sizeof devdetail_ms / sizeof devdetail_ms[0] || devdetail_ms[i].dynamic)
        return OMADM_E_INVALID_ARG;
    bool is_int = !strcmp(devdetail_ms[i].format, "int");
    if (!value)
        value = is_int ? "0" : "unknown";
    if (is_int) {
        size_t n = strlen(value);
        if (n < 1 || n > 18 || strspn(value, "0123456789") != n)
            return OMADM_E_INVALID_ARG;
    }
    dmnode_t *dd = dmtree_child(dm, dm->tree->root, "DevDetail");
    dmnode_t *ext = dd ? dmtree_child(dm, dd, "Ext") : NULL;
    dmnode_t *ms = ext ? dmtree_child(dm, ext, "Microsoft") : NULL;
    dmnode_t *n = ms ? dmtree_child(dm, ms, name) : NULL;
    if (!n || !n->builtin)
        return OMADM_E_INTERNAL;
    int64_t tstamp = n->tstamp;
    if (dmtree_set_value(dm, n, (const uint8_t *)value, strlen(value), devdetail_ms[i].format, NULL))
        return OMADM_E_NOMEM;
    n->verno = 0; /* a built-in value, as build_std_objects leaves it */
    n->tstamp = tstamp;
    return OMADM_OK;
}

static omadm_error_t build_std_objects(omadm_t *dm)
{
    const omadm_config_t *c = &dm->cfg;
    dmnode_t *root = dm->tree->root;
    char num[3][16];
    snprintf(num[0], sizeof num[0], "%u", c->max_uri_depth);
    snprintf(num[1], sizeof num[1], "%u", c->max_uri_len);
    snprintf(num[2], sizeof num[2], "%u", c->max_seg_len);

    dmnode_t *di = builtin(dm, root, "DevInfo", NULL, NULL);
    if (!di || !builtin(dm, di, "DevId", c->dev_id, "chr") ||
        !builtin(dm, di, "Man", c->man, "chr") || !builtin(dm, di, "Mod", c->mod, "chr") ||
        !builtin(dm, di, "DmV", c->dmv, "chr") || !builtin(dm, di, "Lang", c->lang, "chr"))
        return OMADM_E_NOMEM;
    dmnode_t *dd = builtin(dm, root, "DevDetail", NULL, NULL);
    dmnode_t *u = dd ? builtin(dm, dd, "URI", NULL, NULL) : NULL;
    if (!u || !builtin(dm, u, "MaxDepth", num[0], "int") ||
        !builtin(dm, u, "MaxTotLen", num[1], "int") || !builtin(dm, u, "MaxSegLen", num[2], "int") ||
        !builtin(dm, dd, "DevTyp", c->dev_typ, "chr") || !builtin(dm, dd, "OEM", c->oem, "chr") ||
        !builtin(dm, dd, "FwV", c->fwv, "chr") || !builtin(dm, dd, "SwV", c->swv, "chr") ||
        !builtin(dm, dd, "HwV", c->hwv, "chr") || !builtin(dm, dd, "LrgObj", "false", "bool"))
        return OMADM_E_NOMEM;
    /* ./DevDetail/Ext/Microsoft (Windows' DevDetail CSP): host values
     * (omadm_devdetail_set), LocalTime made when read */
    dmnode_t *ext = builtin(dm, dd, "Ext", NULL, NULL);
    dmnode_t *ms = ext ? builtin(dm, ext, "Microsoft", NULL, NULL) : NULL;
    if (!ms)
        return OMADM_E_NOMEM;
    for (size_t i = 0; i < sizeof devdetail_ms / sizeof devdetail_ms[0]; i++) {
        const char *def = strcmp(devdetail_ms[i].format, "int") ? "unknown" : "0";
        dmnode_t *n = builtin(dm, ms, devdetail_ms[i].name,
                              devdetail_ms[i].dynamic ? "" : def, devdetail_ms[i].format);
        if (!n)
            return OMADM_E_NOMEM;
        n->dynamic = devdetail_ms[i].dynamic;
    }
    if (dmtree_set_type(dm, di, "org.openmobilealliance/1.0/DevInfo") ||
        dmtree_set_type(dm, dd, "org.openmobilealliance/1.0/DevDetail"))
        return OMADM_E_NOMEM;
    return OMADM_OK;
}

/* ---- persistence ---- */

/* A persisted field: '-' for NULL, '=' for "", else dm_escape'd text (a
 * leading '-' or '=' escaped too). */
static void put_field(buf_t *b, const char *s)
{
    if (!s) {
        buf_putc(b, '-');
        return;
    }
    if (!*s) {
        buf_putc(b, '=');
        return;
    }
    if (*s == '-' || *s == '=')
        buf_printf(b, "%%%02X", (unsigned char)*s++);
    dm_escape(b, s);
}

static void put_str(buf_t *b, const char *s)
{
    put_field(b, s);
    buf_putc(b, '\t');
}

/* FNV-1a, 64 bits: a bucket's checksum in the manifest. */
static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

#define BUCKET_HEAD "omadm-tree-bucket %u %lu\n"

/* The format line of the key "tree": 1 is the whole tree in one key, 2 a
 * manifest of buckets (docs/abi.md); both are read, 2 is written. */
#define TREE_FORMAT "omadm-tree"
#define TREE_CURRENT 2
#define TREE_WRITES "omadm-tree 2"

static void bucket_key(char key[32], unsigned i, uint32_t gen)
{
    snprintf(key, 32, "tree.%u.%c", i, gen & 1 ? 'b' : 'a');
}

static size_t bucket_head_len(unsigned i, uint32_t gen)
{
    return (size_t)snprintf(NULL, 0, BUCKET_HEAD, i, (unsigned long)gen);
}

/* A node's record: its creation number, then URI, kind, format, type, ACL,
 * title, timestamp, version and base64 value (built-in nodes: their
 * properties only), tab-separated. */
static void put_record(omadm_t *dm, const dmnode_t *n, buf_t *b)
{
    buf_printf(b, "%lu\t", (unsigned long)n->seq);
    buf_t uri;
    buf_init(&uri, dm);
    dmtree_uri(n, &uri);
    if (uri.failed)
        b->failed = 1;
    else
        put_field(b, (const char *)uri.data);
    buf_free(&uri);
    buf_putc(b, '\t');
    buf_puts(b, n->interior ? "I\t" : "L\t");
    put_str(b, n->format);
    put_str(b, n->type);
    put_str(b, n->acl);
    put_str(b, n->title);
    buf_printf(b, "%lld\t%u\t", (long long)n->tstamp, (unsigned)n->verno);
    if (!n->interior && !n->builtin) {
        char *v = crypto_b64_encode(dm, n->value, n->len);
        if (!v)
            b->failed = 1;
        else
            buf_puts(b, *v ? v : "=");
        om_free(dm, v);
    } else {
        buf_putc(b, '-');
    }
    buf_putc(b, '\n');
}

/* The buckets whose records changed since they were saved. */
static void mark_dirty(dmtree_t *t, const dmnode_t *n)
{
    bool rec = recorded(n);
    if ((rec && (n->pstate & DMTREE_P_UNSAVED)) || (!rec && (n->pstate & DMTREE_P_STORED)))
        t->pb[n->pbucket].dirty = true;
    for (const dmnode_t *c = n->first; c; c = c->next)
        mark_dirty(t, c);
}

/* The records of the dirty buckets, each bucket into its buffer. */
static void collect(omadm_t *dm, const dmnode_t *n, buf_t *bufs)
{
    if (dm->tree->pb[n->pbucket].dirty && recorded(n))
        put_record(dm, n, &bufs[n->pbucket]);
    for (const dmnode_t *c = n->first; c; c = c->next)
        collect(dm, c, bufs);
}

/* What the dirty buckets hold once the manifest naming them is saved. */
static void mark_saved(const dmtree_t *t, dmnode_t *n)
{
    if (t->pb[n->pbucket].dirty)
        n->pstate = recorded(n) ? DMTREE_P_STORED : 0;
    for (dmnode_t *c = n->first; c; c = c->next)
        mark_saved(t, c);
}

/* Write every dirty bucket that holds records into its other key; next
 * gets what the manifest is to say of it.  Nothing the stored manifest
 * names is touched. */
static omadm_error_t save_buckets(omadm_t *dm, pbucket_t *next)
{
    dmtree_t *t = dm->tree;
    buf_t *bufs = om_calloc(dm, t->n_pb * sizeof *bufs);
    if (!bufs)
        return OMADM_E_NOMEM;
    omadm_error_t err = OMADM_OK;
    for (unsigned i = 0; i < t->n_pb; i++) {
        buf_init(&bufs[i], dm);
        if (t->pb[i].dirty)
            buf_printf(&bufs[i], BUCKET_HEAD, i, (unsigned long)(uint32_t)(t->pb[i].gen + 1));
    }
    collect(dm, t->root, bufs);
    for (unsigned i = 0; i < t->n_pb; i++)
        if (bufs[i].failed)
            err = OMADM_E_NOMEM;
    for (unsigned i = 0; i < t->n_pb && !err; i++) {
        if (!t->pb[i].dirty)
            continue;
        uint32_t gen = t->pb[i].gen + 1;
        if (bufs[i].len == bucket_head_len(i, gen)) {
            next[i].used = false; /* no record left: no key */
            continue;
        }
        char key[32];
        bucket_key(key, i, gen);
        next[i].gen = gen;
        next[i].sum = checksum(bufs[i].data, bufs[i].len);
        next[i].used = true;
        if (dm->storage.save(dm->storage.ctx, key, bufs[i].data, bufs[i].len))
            err = OMADM_E_STORAGE;
    }
    for (unsigned i = 0; i < t->n_pb; i++)
        buf_free(&bufs[i]);
    om_free(dm, bufs);
    return err;
}

static omadm_error_t save_manifest(omadm_t *dm, const pbucket_t *pb)
{
    const dmtree_t *t = dm->tree;
    buf_t b;
    buf_init(&b, dm);
    buf_printf(&b, TREE_WRITES "\nbuckets %u\n", t->n_pb);
    for (unsigned i = 0; i < t->n_pb; i++)
        if (pb[i].used)
            buf_printf(&b, "%u %lu %016llx\n", i, (unsigned long)pb[i].gen,
                       (unsigned long long)pb[i].sum);
    buf_puts(&b, "end\n");
    omadm_error_t err = OMADM_OK;
    if (b.failed)
        err = OMADM_E_NOMEM;
    else if (dm->storage.save(dm->storage.ctx, "tree", b.data, b.len))
        err = OMADM_E_STORAGE;
    buf_free(&b);
    return err;
}

omadm_error_t dmtree_save(omadm_t *dm)
{
    if (!dm->has_storage)
        return OMADM_OK;
    dmtree_t *t = dm->tree;
    mark_dirty(t, t->root);
    bool any = t->pb_force || t->pb_unsure;
    for (unsigned i = 0; i < t->n_pb && !any; i++)
        any = t->pb[i].dirty;
    if (!any)
        return OMADM_OK;
    pbucket_t *next = om_alloc(dm, t->n_pb * sizeof *next);
    if (!next)
        return OMADM_E_NOMEM;
    memcpy(next, t->pb, t->n_pb * sizeof *next);
    omadm_error_t err = OMADM_OK;
    /* a manifest whose save failed may still have been stored: say again
     * which keys are current before overwriting the others */
    if (t->pb_unsure && !(err = save_manifest(dm, t->pb)))
        t->pb_unsure = false;
    if (!err)
        err = save_buckets(dm, next);
    if (!err && (err = save_manifest(dm, next)) == OMADM_E_STORAGE)
        t->pb_unsure = true;
    if (!err) {
        mark_saved(t, t->root);
        for (unsigned i = 0; i < t->n_pb; i++)
            next[i].dirty = false;
        memcpy(t->pb, next, t->n_pb * sizeof *next);
        t->pb_force = false;
    }
    om_free(dm, next);
    return err;
}

/* Decode one field in place into *out (NULL for '-'); -1 when corrupt. */
static int get_field(char *s, char **out)
{
    if (!strcmp(s, "-")) {
        *out = NULL;
        return 0;
    }
    if (!strcmp(s, "=")) {
        *out = s + 1;
        return 0;
    }
    *out = s;
    return dm_unescape(s);
}

/* Find or create the node a stored record names.  NULL with *err set. */
static dmnode_t *walk_create(omadm_t *dm, const char *uri, bool interior, omadm_error_t *err)
{
    arena_t a;
    arena_init(&a, dm);
    dm_uri_t u;
    /* the same limits as a server's URIs: a tampered file cannot build a
     * tree deeper than the engine walks safely */
    uri_limits_t lim = {dm->cfg.max_uri_len * 3, dm->cfg.max_seg_len * 3, dm->cfg.max_uri_depth};
    dmnode_t *n = NULL;
    int rc = uri_parse(&a, uri, &lim, &u);
    *err = OMADM_E_CORRUPT;
    if (rc == 500)
        *err = OMADM_E_NOMEM;
    if (rc || u.query)
        goto out;
    n = dm->tree->root;
    for (size_t i = 0; i < u.n_segs && n; i++) {
        dmnode_t *c = dmtree_child(dm, n, u.segs[i]);
        if (!c) {
            bool full = false;
            c = dmtree_add(dm, n, u.segs[i], i + 1 == u.n_segs ? interior : true, &full);
            if (!c)
                *err = full ? OMADM_E_CORRUPT : OMADM_E_NOMEM;
        }
        n = c;
    }
out:
    arena_free(&a);
    return n;
}

static omadm_error_t load_value(omadm_t *dm, dmnode_t *n, char *v, const char *format,
                               const char *type)
{
    size_t len = 0;
    int bad = 0;
    uint8_t *bytes = v && *v ? crypto_b64_decode(dm, (uint8_t *)v, strlen(v), &len, &bad) : NULL;
    if (bad)
        return OMADM_E_CORRUPT;
    if (v && *v && !bytes)
        return OMADM_E_NOMEM;
    int rc = dmtree_set_value(dm, n, bytes ? bytes : (const uint8_t *)"", len, format, type);
    om_free(dm, bytes);
    return rc ? OMADM_E_NOMEM : OMADM_OK;
}

/* One record of format 1 (without the creation number); *out is its node. */
static omadm_error_t load_line(omadm_t *dm, char *line, dmnode_t **out)
{
    char *f[9], *v[9];
    int k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, "\t", &save); tok && k < 9; tok = strtok_r(NULL, "\t", &save))
        f[k++] = tok;
    if (k != 9 || (strcmp(f[1], "I") && strcmp(f[1], "L")))
        return OMADM_E_CORRUPT;
    for (int i = 0; i < 9; i++)
        if (i != 1 && i != 6 && i != 7 && get_field(f[i], &v[i]))
            return OMADM_E_CORRUPT;
    char *uri = v[0];
    if (!uri)
        return OMADM_E_CORRUPT;
    bool interior = f[1][0] == 'I';
    omadm_error_t err = OMADM_OK;
    dmnode_t *n = !strcmp(uri, ".") ? dm->tree->root : walk_create(dm, uri, interior, &err);
    if (!n)
        return err;
    if (n->interior != interior)
        return OMADM_E_CORRUPT;
    if (dmtree_set_acl(dm, n, v[4]) || dmtree_set_title(dm, n, v[5]))
        return OMADM_E_NOMEM;
    if (!n->builtin) {
        if (interior && dmtree_set_type(dm, n, v[3]))
            return OMADM_E_NOMEM;
        if (!interior && (err = load_value(dm, n, v[8], v[2], v[3])))
            return err;
        n->tstamp = strtoll(f[6], NULL, 10);
        n->verno = (uint16_t)strtoul(f[7], NULL, 10);
    }
    *out = n;
    return OMADM_OK;
}

/* A record that does not load: omadm_state_check hears which, in which
 * key. */
static void bad_record(omadm_t *dm, const char *key, const char *found, const char *which,
                       unsigned long n)
{
    state_report(dm, OMADM_E_CORRUPT, false, key, found, TREE_WRITES,
                 "damaged: %s %lu cannot be loaded (its text, or this configuration's limits on "
                 "nodes and URIs)", which, n);
}

/* Format 1: the whole tree in one key, one record per line in tree order.
 * Every record is written anew (format 2) with the next save. */
static omadm_error_t load_v1(omadm_t *dm, char **save)
{
    omadm_error_t err = OMADM_OK;
    char *line;
    dmnode_t *n;
    unsigned long lineno = 1;
    while (!err && (line = strtok_r(NULL, "\n", save))) {
        lineno++;
        err = load_line(dm, line, &n);
    }
    if (err == OMADM_E_CORRUPT)
        bad_record(dm, "tree", TREE_FORMAT " 1", "the record on line", lineno);
    dm->tree->pb_force = true;
    return err;
}

/* A decimal (base 10) or lower-case hex (16) number up to max, followed
 * by sep (0: the end of the string).  0, or -1 when *s is not that. */
static int get_num(char **s, unsigned base, uint64_t max, char sep, uint64_t *out)
{
    char *p = *s;
    uint64_t v = 0;
    size_t digits = 0;
    for (;; p++, digits++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            break;
        if (d > max || v > (max - d) / base)
            return -1;
        v = v * base + d;
    }
    if (!digits || *p != sep)
        return -1;
    *out = v;
    *s = sep ? p + 1 : p;
    return 0;
}

typedef struct lrec {
    uint32_t seq;
    uint16_t bucket;
    char *line;
} lrec_t;

typedef struct loader {
    char **texts;              /* per bucket: its text, records point into it */
    lrec_t *recs;
    size_t n_recs, cap_recs;
} loader_t;

static int cmp_lrec(const void *a, const void *b)
{
    const lrec_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

static omadm_error_t push_rec(omadm_t *dm, loader_t *l, uint32_t seq, unsigned bucket, char *line)
{
    if (l->n_recs == l->cap_recs) {
        size_t cap = l->cap_recs ? l->cap_recs * 2 : 256;
        lrec_t *r = om_realloc(dm, l->recs, cap * sizeof *r);
        if (!r)
            return OMADM_E_NOMEM;
        l->recs = r;
        l->cap_recs = cap;
    }
    l->recs[l->n_recs++] = (lrec_t){seq, (uint16_t)bucket, line};
    return OMADM_OK;
}

/* Read the key the manifest names for bucket i: its checksum and head
 * must be what the manifest says, else the tree is corrupt. */
static omadm_error_t load_bucket(omadm_t *dm, loader_t *l, unsigned i, const pbucket_t *want)
{
    char key[32], head[64];
    bucket_key(key, i, want->gen);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = dm->storage.load(dm->storage.ctx, key, &data, &len);
    if (rc == 1) {
        state_report(dm, OMADM_E_CORRUPT, false, key, NULL, TREE_WRITES,
                     "missing: the manifest (tree) names it");
        return OMADM_E_CORRUPT;
    }
    if (rc < 0) {
        state_report(dm, OMADM_E_STORAGE, false, key, NULL, TREE_WRITES, "cannot be loaded");
        return OMADM_E_STORAGE;
    }
    bool same = checksum(data, len) == want->sum;
    char *text = same ? om_strndup(dm, (const char *)data, len) : NULL;
    if (dm->storage.release)
        dm->storage.release(dm->storage.ctx, data);
    if (!same) {
        state_report(dm, OMADM_E_CORRUPT, false, key, NULL, TREE_WRITES,
                     "damaged: its checksum is not the one the manifest (tree) gives");
        return OMADM_E_CORRUPT;
    }
    if (!text)
        return OMADM_E_NOMEM;
    l->texts[i] = text;
    snprintf(head, sizeof head, BUCKET_HEAD, i, (unsigned long)want->gen);
    head[strlen(head) - 1] = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, head)) {
        state_report(dm, OMADM_E_CORRUPT, false, key, NULL, TREE_WRITES,
                     "damaged: its first line is not \"%s\"", head);
        return OMADM_E_CORRUPT;
    }
    omadm_error_t err = OMADM_OK;
    unsigned long lineno = 1;
    while (!err && (line = strtok_r(NULL, "\n", &save))) {
        uint64_t seq;
        lineno++;
        if (get_num(&line, 10, UINT32_MAX - 1, '\t', &seq)) {
            bad_record(dm, key, NULL, "the record on line", lineno);
            return OMADM_E_CORRUPT;
        }
        err = push_rec(dm, l, (uint32_t)seq, i, line);
    }
    return err;
}

static void place_subtree(dmtree_t *t, dmnode_t *n)
{
    for (dmnode_t *c = n->first; c; c = c->next) {
        c->pbucket = place(t, n, c->name);
        place_subtree(t, c);
    }
}

/* The manifest's "buckets N" line: the engine keeps the stored count. */
static omadm_error_t load_count(omadm_t *dm, char *line)
{
    dmtree_t *t = dm->tree;
    uint64_t n;
    if (!line || strncmp(line, "buckets ", 8))
        return OMADM_E_CORRUPT;
    line += 8;
    if (get_num(&line, 10, DMTREE_BUCKETS_MAX, 0, &n) || !n)
        return OMADM_E_CORRUPT;
    if (n == t->n_pb)
        return OMADM_OK;
    pbucket_t *pb = om_calloc(dm, (size_t)n * sizeof *pb);
    if (!pb)
        return OMADM_E_NOMEM;
    om_free(dm, t->pb);
    t->pb = pb;
    t->n_pb = (unsigned)n;
    t->root->pbucket = 0;
    place_subtree(t, t->root);
    return OMADM_OK;
}

/* The manifest's bucket lines, in increasing bucket order, then "end". */
static omadm_error_t load_manifest(omadm_t *dm, char **save)
{
    dmtree_t *t = dm->tree;
    omadm_error_t err = load_count(dm, strtok_r(NULL, "\n", save));
    uint64_t i, gen, sum, next = 0;
    char *line;
    while (!err && (line = strtok_r(NULL, "\n", save)) && strcmp(line, "end")) {
        if (get_num(&line, 10, t->n_pb - 1, ' ', &i) || i < next ||
            get_num(&line, 10, UINT32_MAX, ' ', &gen) || get_num(&line, 16, UINT64_MAX, 0, &sum))
            return OMADM_E_CORRUPT;
        t->pb[i] = (pbucket_t){.sum = sum, .gen = (uint32_t)gen, .used = true};
        next = i + 1;
    }
    if (!err && (!line || strtok_r(NULL, "\n", save)))
        err = OMADM_E_CORRUPT; /* no "end", or something after it */
    return err;
}

/* Format 2: the manifest, then the buckets it names; records are applied
 * in creation order, so parents come first and siblings keep their order. */
static omadm_error_t load_v2(omadm_t *dm, char **save)
{
    dmtree_t *t = dm->tree;
    loader_t l = {0};
    omadm_error_t err = load_manifest(dm, save), bad = OMADM_OK;
    if (err == OMADM_E_CORRUPT)
        state_report(dm, err, false, "tree", TREE_WRITES, TREE_WRITES,
                     "damaged: the manifest's lines after its format line are not a bucket list");
    if (!err && !(l.texts = om_calloc(dm, t->n_pb * sizeof *l.texts)))
        err = OMADM_E_NOMEM;
    for (unsigned i = 0; !err && i < t->n_pb; i++) {
        if (t->pb[i].used)
            err = load_bucket(dm, &l, i, &t->pb[i]);
        /* omadm_state_check hears of every bucket that does not load */
        if ((err == OMADM_E_CORRUPT || err == OMADM_E_STORAGE) && state_checking(dm)) {
            bad = bad ? bad : err;
            err = OMADM_OK;
        }
    }
    if (!err)
        err = bad;
    if (!err && l.n_recs)
        qsort(l.recs, l.n_recs, sizeof *l.recs, cmp_lrec);
    for (size_t k = 0; !err && k < l.n_recs; k++) {
        dmnode_t *n = NULL;
        err = load_line(dm, l.recs[k].line, &n);
        if (err == OMADM_E_CORRUPT) {
            char key[32];
            bucket_key(key, l.recs[k].bucket, t->pb[l.recs[k].bucket].gen);
            bad_record(dm, key, NULL, "record", (unsigned long)l.recs[k].seq);
        }
        if (err)
            break;
        n->pbucket = l.recs[k].bucket;
        n->pstate = DMTREE_P_STORED;
        if (!n->builtin)
            n->seq = l.recs[k].seq;
    }
    /* new nodes come after every stored one (those the records made on
     * their way were numbered before, like parents) */
    if (!err && l.n_recs && l.recs[l.n_recs - 1].seq >= t->next_seq)
        t->next_seq = l.recs[l.n_recs - 1].seq + 1;
    for (unsigned i = 0; l.texts && i < t->n_pb; i++)
        om_free(dm, l.texts[i]);
    om_free(dm, l.texts);
    om_free(dm, l.recs);
    return err;
}

static omadm_error_t load_tree(omadm_t *dm)
{
    if (!dm->has_storage)
        return OMADM_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = dm->storage.load(dm->storage.ctx, "tree", &data, &len);
    if (rc == 1)
        return OMADM_OK;
    if (rc < 0) {
        state_report(dm, OMADM_E_STORAGE, false, "tree", NULL, TREE_WRITES, "cannot be loaded");
        return OMADM_E_STORAGE;
    }
    unsigned v = 0;
    state_fmt_t fmt = state_format_text(data, len, TREE_FORMAT, 1, TREE_CURRENT, &v);
    char found[32];
    snprintf(found, sizeof found, TREE_FORMAT " %u", v);
    char *text = fmt == STATE_FMT_NEWER ? NULL : om_strndup(dm, (const char *)data, len);
    if (dm->storage.release)
        dm->storage.release(dm->storage.ctx, data);
    if (fmt == STATE_FMT_NEWER) {
        /* a later version's tree: nothing of it is read, nothing written */
        state_report(dm, OMADM_E_NEWER_FORMAT, false, "tree", found, TREE_WRITES,
                     "format %s is newer than this library reads (" TREE_WRITES ")", found);
        return OMADM_E_NEWER_FORMAT;
    }
    if (!text)
        return OMADM_E_NOMEM;
    char *save = NULL;
    strtok_r(text, "\n", &save);
    unsigned reported = state_reported(dm);
    omadm_error_t err = fmt == STATE_FMT_DAMAGED ? OMADM_E_CORRUPT
                        : v == 1                 ? load_v1(dm, &save)
                                                 : load_v2(dm, &save);
    om_free(dm, text);
    if (err == OMADM_E_CORRUPT && state_reported(dm) == reported)
        state_report(dm, err, false, "tree", NULL, TREE_WRITES,
                     "damaged: no " TREE_FORMAT " format line");
    else if (!err && fmt == STATE_FMT_OLDER)
        state_report(dm, OMADM_OK, false, "tree", found, TREE_WRITES,
                     "format %s: read, and written as " TREE_WRITES " when the tree next changes",
                     found);
    return err;
}

omadm_error_t dmtree_create(omadm_t *dm)
{
    dmtree_t *t = om_calloc(dm, sizeof *t);
    if (!t)
        return OMADM_E_NOMEM;
    dm->tree = t;
    if (index_grow(dm, t))
        return OMADM_E_NOMEM;
    t->n_pb = DMTREE_BUCKETS;
    t->next_seq = 1;
    if (!(t->pb = om_calloc(dm, t->n_pb * sizeof *t->pb)))
        return OMADM_E_NOMEM;
    t->root = new_node(dm, ".", true);
    if (!t->root)
        return OMADM_E_NOMEM;
    t->n_nodes = 1;
    dmtree_make_builtin(dm, t->root, ACL_ADD | ACL_GET | ACL_REPLACE | ACL_EXEC);
    if (dmtree_set_acl(dm, t->root, dm->cfg.root_acl))
        return OMADM_E_NOMEM;
    omadm_error_t err = build_std_objects(dm);
    if (err)
        return err;
    return load_tree(dm);
}

void dmtree_destroy(omadm_t *dm)
{
    dmtree_t *t = dm->tree;
    if (!t)
        return;
    if (t->tx)
        dmtree_tx_commit(dm);
    if (t->root)
        free_subtree(dm, t->root);
    om_free(dm, t->buckets);
    om_free(dm, t->journal);
    om_free(dm, t->pb);
    om_free(dm, t);
    dm->tree = NULL;
}
