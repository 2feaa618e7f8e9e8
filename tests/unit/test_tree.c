/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_tree.c - the engine-owned management tree (dmtree.c) inside a real
 * engine: built-in objects, case-insensitive lookup, add/remove, the node
 * limit, transactions (rollback restores exactly, savepoints, commit
 * frees), ACL inheritance, URI escaping, persistence through an in-memory
 * storage and refusal of a corrupt stored tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acl.h"
#include "dmtree.h"
#include "internal.h"
#include "support_dm.h"
#include "support_store.h"

typedef struct fixture {
    t_env_t env;
    tstore_t store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    t_env_init(&f->env);
    tstore_init(&f->store);
    f->env.storage = &f->store.api;
    t_env_start(&f->env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    t_env_done(&f->env);
    tstore_free(&f->store);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static void dump_node(FILE *out, const dmnode_t *n, int depth)
{
    fprintf(out, "%*s%s %c fmt=%s type=%s acl=%s title=%s ts=%lld v=%u perm=%d bi=%d acc=%u val=",
            depth * 2, "", n->name, n->interior ? 'I' : 'L', n->format ? n->format : "-",
            n->type ? n->type : "-", n->acl ? n->acl : "-", n->title ? n->title : "-",
            (long long)n->tstamp, (unsigned)n->verno, n->permanent, n->builtin, n->access);
    if (n->interior)
        fputc('-', out);
    else
        for (size_t i = 0; i < n->len; i++)
            fprintf(out, "%02x", n->value[i]);
    fprintf(out, " nch=%zu\n", n->n_children);
    size_t k = 0;
    for (const dmnode_t *c = n->first; c; c = c->next, k++) {
        assert_ptr_equal(c->parent, n);
        assert_ptr_equal(c->prev ? c->prev->next : n->first, c);
        dump_node(out, c, depth + 1);
    }
    assert_int_equal(k, n->n_children);
    assert_ptr_equal(n->first ? n->last->next : NULL, NULL);
}

/* A full textual picture of the tree (every field that rollback restores). */
static char *snapshot(omadm_t *dm)
{
    char *s = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&s, &len);
    dump_node(out, dmtree_root(dm), 0);
    fprintf(out, "count=%zu\n", dmtree_node_count(dm));
    fclose(out);
    return s;
}

/* Walk a '/'-separated path of exact names from the root. */
static dmnode_t *node_at(omadm_t *dm, const char *path)
{
    dmnode_t *n = dmtree_root(dm);
    char *copy = strdup(path), *save = NULL;
    for (char *seg = strtok_r(copy, "/", &save); seg && n; seg = strtok_r(NULL, "/", &save))
        n = dmtree_child(dm, n, seg);
    free(copy);
    return n;
}

static dmnode_t *add(omadm_t *dm, const char *parent, const char *name, bool interior)
{
    dmnode_t *p = node_at(dm, parent);
    assert_non_null(p);
    bool full = true;
    dmnode_t *n = dmtree_add(dm, p, name, interior, &full);
    assert_non_null(n);
    assert_false(full);
    return n;
}

static dmnode_t *leaf(omadm_t *dm, const char *parent, const char *name, const char *value)
{
    dmnode_t *n = add(dm, parent, name, false);
    assert_int_equal(dmtree_set_value(dm, n, (const uint8_t *)value, strlen(value), "chr", NULL), 0);
    return n;
}

static char *uri_of(omadm_t *dm, const dmnode_t *n)
{
    buf_t b;
    buf_init(&b, dm);
    assert_int_equal(dmtree_uri(n, &b), 0);
    char *s = strdup((char *)b.data);
    buf_free(&b);
    return s;
}

/* ---- built-in objects ---------------------------------------------------- */

static void test_builtin_objects(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    dmnode_t *root = dmtree_root(dm);
    assert_string_equal(root->name, ".");
    assert_null(root->parent);
    assert_true(root->interior);
    assert_string_equal(root->acl, "Add=*&Delete=*&Exec=*&Get=*&Replace=*");
    assert_int_equal(root->n_children, 2);
    assert_string_equal(root->first->name, "DevInfo");
    assert_string_equal(root->last->name, "DevDetail");
    /* root, DevInfo + 5 leaves, DevDetail + URI + 3 + 6 leaves */
    assert_int_equal(dmtree_node_count(dm), 18);

    static const struct {
        const char *path, *value, *format;
    } leaves[] = {
        {"DevInfo/DevId", "omadm-device", "chr"},  {"DevInfo/Man", "omadm", "chr"},
        {"DevInfo/Mod", "omadm-client", "chr"},    {"DevInfo/DmV", "1.2", "chr"},
        {"DevInfo/Lang", "en-US", "chr"},          {"DevDetail/URI/MaxDepth", "32", "int"},
        {"DevDetail/URI/MaxTotLen", "1024", "int"}, {"DevDetail/URI/MaxSegLen", "255", "int"},
        {"DevDetail/DevTyp", "device", "chr"},     {"DevDetail/OEM", "omadm", "chr"},
        {"DevDetail/FwV", "unknown", "chr"},       {"DevDetail/SwV", "unknown", "chr"},
        {"DevDetail/HwV", "unknown", "chr"},       {"DevDetail/LrgObj", "false", "bool"},
    };
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        dmnode_t *n = node_at(dm, leaves[i].path);
        if (!n)
            fail_msg("missing %s", leaves[i].path);
        assert_false(n->interior);
        assert_string_equal((char *)n->value, leaves[i].value);
        assert_int_equal(n->len, strlen(leaves[i].value));
        assert_string_equal(n->format, leaves[i].format);
        assert_true(n->permanent);
        assert_int_equal(n->access, ACL_GET);
        assert_null(n->acl);
    }
    assert_string_equal(node_at(dm, "DevInfo")->type, "org.openmobilealliance/1.0/DevInfo");
    assert_string_equal(node_at(dm, "DevDetail")->type, "org.openmobilealliance/1.0/DevDetail");
}

static void test_builtin_values_from_config(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.dev_id = "IMEI:123";
    e.cfg.man = "Acme";
    e.cfg.max_uri_depth = 9;
    e.cfg.root_acl = "Add=*&Get=*";
    t_env_start(&e);
    assert_string_equal((char *)node_at(e.dm, "DevInfo/DevId")->value, "IMEI:123");
    assert_string_equal((char *)node_at(e.dm, "DevInfo/Man")->value, "Acme");
    assert_string_equal((char *)node_at(e.dm, "DevDetail/URI/MaxDepth")->value, "9");
    assert_string_equal(dmtree_root(e.dm)->acl, "Add=*&Get=*");
    t_env_done(&e);
}

/* ---- lookup, add, remove ------------------------------------------------- */

static void test_child_lookup_case_insensitive(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    dmnode_t *root = dmtree_root(dm);
    dmnode_t *di = dmtree_child(dm, root, "DevInfo");
    assert_non_null(di);
    assert_ptr_equal(dmtree_child(dm, root, "devinfo"), di);
    assert_ptr_equal(dmtree_child(dm, root, "DEVINFO"), di);
    assert_null(dmtree_child(dm, root, "DevInf"));
    assert_null(dmtree_child(dm, root, "DevInfoX"));
    /* a name is only looked up under its own parent */
    assert_null(dmtree_child(dm, root, "DevId"));
    assert_null(dmtree_child(dm, node_at(dm, "DevDetail"), "DevId"));

    dmnode_t *n = add(dm, "", "MixedCase", true);
    assert_ptr_equal(dmtree_child(dm, root, "mixedcase"), n);
    assert_ptr_equal(dmtree_child(dm, root, "MIXEDCASE"), n);
    assert_string_equal(n->name, "MixedCase"); /* first spelling kept */
}

static void test_add_and_remove(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    size_t base = dmtree_node_count(dm);
    dmnode_t *a = add(dm, "", "A", true);
    dmnode_t *b = add(dm, "A", "b", false);
    dmnode_t *c = add(dm, "A", "c", true);
    dmnode_t *d = add(dm, "A/c", "d", false);
    assert_int_equal(dmtree_node_count(dm), base + 4);
    assert_ptr_equal(a->parent, dmtree_root(dm));
    assert_ptr_equal(dmtree_root(dm)->last, a);
    assert_int_equal(a->n_children, 2);
    assert_ptr_equal(a->first, b);
    assert_ptr_equal(a->last, c);
    assert_ptr_equal(b->next, c);
    assert_ptr_equal(c->prev, b);
    assert_ptr_equal(d->parent, c);

    /* a new leaf: empty chr value, no type, no ACL, created now */
    assert_false(b->interior);
    assert_int_equal(b->len, 0);
    assert_non_null(b->value);
    assert_int_equal(b->value[0], 0);
    assert_string_equal(b->format, "chr");
    assert_null(b->type);
    assert_null(b->acl);
    assert_null(b->title);
    assert_int_equal(b->tstamp, T_NOW);
    assert_false(b->permanent);
    /* a new interior node has no value and no format ("node") */
    assert_true(a->interior);
    assert_null(a->value);
    assert_null(a->format);

    dmtree_remove(dm, c);
    assert_int_equal(dmtree_node_count(dm), base + 2);
    assert_null(node_at(dm, "A/c"));
    assert_int_equal(a->n_children, 1);
    assert_ptr_equal(a->last, b);
    assert_null(b->next);
    dmtree_remove(dm, a);
    assert_int_equal(dmtree_node_count(dm), base);
    assert_null(dmtree_child(dm, dmtree_root(dm), "A"));
    /* the name can be used again */
    add(dm, "", "a", false);
    assert_int_equal(dmtree_node_count(dm), base + 1);
}

static void test_many_children_index(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    add(dm, "", "Many", true);
    char name[32];
    for (int i = 0; i < 1500; i++) {
        snprintf(name, sizeof name, "Node%d", i);
        add(dm, "Many", name, false);
    }
    dmnode_t *many = node_at(dm, "Many");
    assert_int_equal(many->n_children, 1500);
    for (int i = 0; i < 1500; i += 7) {
        snprintf(name, sizeof name, "NODE%d", i);
        dmnode_t *n = dmtree_child(dm, many, name);
        assert_non_null(n);
        snprintf(name, sizeof name, "Node%d", i);
        assert_string_equal(n->name, name);
    }
    assert_null(dmtree_child(dm, many, "Node1500"));
}

static void test_node_count_limit(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_nodes = 2; /* built-in nodes do not count */
    t_env_start(&e);
    dmnode_t *root = dmtree_root(e.dm);
    size_t builtin = dmtree_node_count(e.dm);
    bool full = true;
    dmnode_t *a = dmtree_add(e.dm, root, "A", true, &full);
    assert_non_null(a);
    assert_false(full);
    assert_non_null(dmtree_add(e.dm, a, "b", false, &full));
    assert_false(full);
    assert_null(dmtree_add(e.dm, a, "c", false, &full));
    assert_true(full);
    assert_int_equal(dmtree_node_count(e.dm), builtin + 2);
    assert_null(dmtree_child(e.dm, a, "c"));
    dmtree_remove(e.dm, dmtree_child(e.dm, a, "b"));
    assert_non_null(dmtree_add(e.dm, a, "c", false, &full));
    assert_false(full);
    /* a failed add with no room does not pretend to be an allocation failure */
    full = false;
    assert_null(dmtree_add(e.dm, root, "X", false, &full));
    assert_true(full);
    t_env_done(&e);
}

static void test_mount_points_are_builtin(void **state)
{
    (void)state;
    t_env_t e;
    t_env_init(&e);
    e.cfg.max_nodes = 1;
    t_env_start(&e);
    omadm_csp_t csp = {.name = "x", .bases = (const char *const[]){"./Vendor/A/B", NULL}};
    assert_int_equal(omadm_register_csp(e.dm, &csp, NULL), OMADM_OK);
    dmnode_t *v = node_at(e.dm, "Vendor");
    assert_non_null(v);
    assert_true(v->permanent);
    assert_true(v->builtin);
    assert_true(node_at(e.dm, "Vendor/A/B")->permanent);
    assert_non_null(node_at(e.dm, "Vendor/A/B")->csp);
    /* the mount's nodes did not use up the one node servers may add */
    assert_non_null(dmtree_add(e.dm, dmtree_root(e.dm), "Mine", false, NULL));
    t_env_done(&e);
}

static void test_set_value_and_properties(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    dmnode_t *n = add(dm, "", "V", false);
    static const uint8_t bytes[] = {0x00, 'a', 0xff, 0x00, 'b'};
    uint16_t v0 = n->verno;
    f->env.alloc.now = T_NOW + 100;
    assert_int_equal(dmtree_set_value(dm, n, bytes, sizeof bytes, "bin", "application/x-thing"), 0);
    assert_int_equal(n->len, sizeof bytes);
    assert_memory_equal(n->value, bytes, sizeof bytes);
    assert_int_equal(n->value[sizeof bytes], 0); /* always NUL after */
    assert_string_equal(n->format, "bin");
    assert_string_equal(n->type, "application/x-thing");
    assert_int_equal(n->tstamp, T_NOW + 100);
    assert_int_equal(n->verno, (uint16_t)(v0 + 1));
    /* NULL format/type fall back to chr / no type */
    assert_int_equal(dmtree_set_value(dm, n, (const uint8_t *)"x", 1, NULL, NULL), 0);
    assert_string_equal(n->format, "chr");
    assert_null(n->type);
    assert_int_equal(n->verno, (uint16_t)(v0 + 2));
    /* VerNo wraps at 16 bits */
    n->verno = 0xffff;
    assert_int_equal(dmtree_set_value(dm, n, (const uint8_t *)"y", 1, NULL, NULL), 0);
    assert_int_equal(n->verno, 0);

    assert_int_equal(dmtree_set_title(dm, n, "A title"), 0);
    assert_string_equal(n->title, "A title");
    assert_int_equal(dmtree_set_acl(dm, n, "Get=*"), 0);
    assert_string_equal(n->acl, "Get=*");
    assert_int_equal(dmtree_set_acl(dm, n, ""), 0); /* empty: inherit */
    assert_null(n->acl);
    assert_int_equal(dmtree_rename(dm, n, "W"), 0);
    assert_string_equal(n->name, "W");
    assert_null(node_at(dm, "V"));
    assert_ptr_equal(node_at(dm, "w"), n);
}

/* ---- transactions -------------------------------------------------------- */

static void build_sample(omadm_t *dm)
{
    add(dm, "", "App", true);
    leaf(dm, "App", "Name", "demo");
    leaf(dm, "App", "Count", "7");
    add(dm, "App", "Sub", true);
    leaf(dm, "App/Sub", "Deep", "deep value");
    add(dm, "App/Sub", "Deeper", true);
    leaf(dm, "App/Sub/Deeper", "X", "x");
    leaf(dm, "App", "Last", "last");
    dmtree_set_acl(dm, node_at(dm, "App"), "Get=*&Replace=srv");
    dmtree_set_title(dm, node_at(dm, "App/Name"), "The name");
    dmtree_set_type(dm, node_at(dm, "App/Sub"), "urn:test:sub");
}

static void many_changes(fixture_t *f, omadm_t *dm)
{
    f->env.alloc.now = T_NOW + 500;
    dmnode_t *name = node_at(dm, "App/Name");
    assert_int_equal(dmtree_set_value(dm, name, (const uint8_t *)"\0new", 4, "bin", "x/y"), 0);
    assert_int_equal(dmtree_set_value(dm, name, (const uint8_t *)"newer", 5, "chr", NULL), 0);
    assert_int_equal(dmtree_set_title(dm, name, "Other title"), 0);
    assert_int_equal(dmtree_set_title(dm, node_at(dm, "App/Count"), "new title"), 0);
    assert_int_equal(dmtree_set_acl(dm, node_at(dm, "App"), "Get=other"), 0);
    assert_int_equal(dmtree_set_acl(dm, node_at(dm, "App/Count"), "Add=*"), 0);
    assert_int_equal(dmtree_set_acl(dm, dmtree_root(dm), "Get=*"), 0);
    assert_int_equal(dmtree_set_type(dm, node_at(dm, "App/Sub"), NULL), 0);
    assert_int_equal(dmtree_set_type(dm, node_at(dm, "App/Count"), "text/x"), 0);
    assert_int_equal(dmtree_rename(dm, node_at(dm, "App/Last"), "Renamed"), 0);
    assert_int_equal(dmtree_rename(dm, node_at(dm, "App/Renamed"), "Renamed2"), 0);
    /* changes inside a subtree that is then removed */
    assert_int_equal(dmtree_set_value(dm, node_at(dm, "App/Sub/Deep"), (const uint8_t *)"z", 1,
                                      NULL, NULL), 0);
    add(dm, "App/Sub", "Fresh", false);
    dmtree_remove(dm, node_at(dm, "App/Sub"));
    dmtree_remove(dm, node_at(dm, "App/Count"));
    /* added subtrees, one removed again */
    add(dm, "", "New", true);
    leaf(dm, "New", "L", "l");
    add(dm, "New", "Gone", true);
    dmtree_remove(dm, node_at(dm, "New/Gone"));
    add(dm, "App", "Sub", false); /* the removed name reused */
    /* built-in values are plain nodes to the tree */
    assert_int_equal(dmtree_set_value(dm, node_at(dm, "DevInfo/Man"), (const uint8_t *)"m", 1,
                                      NULL, NULL), 0);
    dmtree_remove(dm, node_at(dm, "DevDetail/URI"));
}

static void test_rollback_restores_exactly(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    build_sample(dm);
    char *before = snapshot(dm);
    long outstanding = f->env.alloc.outstanding;

    dmtree_tx_begin(dm);
    many_changes(f, dm);
    char *during = snapshot(dm);
    assert_string_not_equal(before, during);
    dmtree_tx_rollback(dm);

    char *after = snapshot(dm);
    assert_string_equal(before, after);
    /* the name index follows the restored names */
    assert_non_null(node_at(dm, "App/Last"));
    assert_non_null(node_at(dm, "app/last"));
    assert_null(node_at(dm, "App/Renamed2"));
    assert_null(node_at(dm, "New"));
    assert_non_null(node_at(dm, "App/Sub/Deeper/X"));
    assert_true(node_at(dm, "App/Sub")->interior);
    /* everything the transaction allocated is gone again (the journal
     * array itself may stay for the next transaction) */
    assert_true(f->env.alloc.outstanding <= outstanding + 1);
    free(before);
    free(during);
    free(after);
}

static void test_rollback_then_commit_cycle(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    build_sample(dm);
    dmtree_tx_begin(dm);
    many_changes(f, dm);
    char *changed = snapshot(dm);
    dmtree_tx_commit(dm);
    char *committed = snapshot(dm);
    assert_string_equal(changed, committed);
    /* after commit a rollback has nothing to undo */
    dmtree_tx_begin(dm);
    dmtree_tx_rollback(dm);
    char *again = snapshot(dm);
    assert_string_equal(committed, again);
    free(changed);
    free(committed);
    free(again);
}

static void test_savepoints(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    build_sample(dm);
    dmtree_tx_begin(dm);
    assert_int_equal(dmtree_savepoint(dm), 0);
    leaf(dm, "App", "One", "1");
    assert_int_equal(dmtree_set_title(dm, node_at(dm, "App"), "t1"), 0);
    size_t sp = dmtree_savepoint(dm);
    assert_true(sp > 0);
    char *at_sp = snapshot(dm);

    leaf(dm, "App", "Two", "2");
    assert_int_equal(dmtree_set_title(dm, node_at(dm, "App"), "t2"), 0);
    dmtree_remove(dm, node_at(dm, "App/Sub"));
    assert_int_equal(dmtree_rename(dm, node_at(dm, "App/One"), "Uno"), 0);
    assert_true(dmtree_savepoint(dm) > sp);
    dmtree_rollback_to(dm, sp);
    assert_int_equal(dmtree_savepoint(dm), sp);
    char *back = snapshot(dm);
    assert_string_equal(at_sp, back);
    assert_non_null(node_at(dm, "App/One"));
    assert_null(node_at(dm, "App/Two"));
    assert_string_equal(node_at(dm, "App")->title, "t1");

    /* rolling back to the current point changes nothing */
    dmtree_rollback_to(dm, dmtree_savepoint(dm));
    char *same = snapshot(dm);
    assert_string_equal(at_sp, same);

    leaf(dm, "App", "Three", "3");
    dmtree_tx_commit(dm);
    assert_non_null(node_at(dm, "App/One"));
    assert_non_null(node_at(dm, "App/Three"));
    assert_null(node_at(dm, "App/Two"));
    assert_non_null(node_at(dm, "App/Sub/Deep"));
    free(at_sp);
    free(back);
    free(same);
}

static void test_commit_frees_removed_and_replaced(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    build_sample(dm);
    dmtree_tx_begin(dm);
    dmtree_remove(dm, node_at(dm, "App/Sub"));
    assert_int_equal(dmtree_set_value(dm, node_at(dm, "App/Name"), (const uint8_t *)"n", 1, NULL,
                                      NULL), 0);
    long held = f->env.alloc.outstanding;
    dmtree_tx_commit(dm);
    /* the removed subtree (4 nodes) and the old value are released now */
    assert_true(f->env.alloc.outstanding < held - 4);
    assert_null(node_at(dm, "App/Sub"));
    assert_string_equal((char *)node_at(dm, "App/Name")->value, "n");
}

static void test_rollback_of_added_subtree_frees(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    long start = f->env.alloc.outstanding;
    size_t count = dmtree_node_count(dm);
    dmtree_tx_begin(dm);
    add(dm, "", "T", true);
    leaf(dm, "T", "a", "aaaa");
    add(dm, "T", "b", true);
    leaf(dm, "T/b", "c", "cccc");
    dmtree_tx_rollback(dm);
    assert_int_equal(dmtree_node_count(dm), count);
    assert_null(node_at(dm, "T"));
    /* the journal array itself may stay allocated: allow one block */
    assert_true(f->env.alloc.outstanding <= start + 1);
}

/* ---- ACL inheritance and URIs -------------------------------------------- */

static void test_effective_acl_inheritance(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    build_sample(dm);
    const char *root_acl = "Add=*&Delete=*&Exec=*&Get=*&Replace=*";
    assert_string_equal(dmtree_effective_acl(dmtree_root(dm)), root_acl);
    assert_string_equal(dmtree_effective_acl(node_at(dm, "DevInfo/DevId")), root_acl);
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App")), "Get=*&Replace=srv");
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App/Name")), "Get=*&Replace=srv");
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App/Sub/Deeper/X")), "Get=*&Replace=srv");
    dmtree_set_acl(dm, node_at(dm, "App/Sub"), "Exec=a");
    /* the nearest ACL wins, never merged */
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App/Sub/Deeper/X")), "Exec=a");
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App/Name")), "Get=*&Replace=srv");
    dmtree_set_acl(dm, node_at(dm, "App/Sub"), NULL);
    assert_string_equal(dmtree_effective_acl(node_at(dm, "App/Sub/Deeper/X")), "Get=*&Replace=srv");
}

static void test_uri_escaping(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    char *s = uri_of(dm, dmtree_root(dm));
    assert_string_equal(s, ".");
    free(s);
    s = uri_of(dm, node_at(dm, "DevDetail/URI/MaxDepth"));
    assert_string_equal(s, "./DevDetail/URI/MaxDepth");
    free(s);
    dmnode_t *a = add(dm, "", "a b", true);
    dmnode_t *c = dmtree_add(dm, a, "x/y%z", false, NULL);
    dmnode_t *g = dmtree_add(dm, a, "{GUID-1}", false, NULL);
    s = uri_of(dm, c);
    assert_string_equal(s, "./a%20b/x%2Fy%25z");
    free(s);
    s = uri_of(dm, g);
    assert_string_equal(s, "./a%20b/{GUID-1}");
    free(s);
}

/* ---- persistence --------------------------------------------------------- */

static void build_persisted(omadm_t *dm)
{
    build_sample(dm);
    static const uint8_t bin[] = {0x00, 0x01, 0x00, 0xfe, 0xff, '\n', '\t', '%'};
    dmnode_t *b = add(dm, "App", "Bin", false);
    assert_int_equal(dmtree_set_value(dm, b, bin, sizeof bin, "bin", "application/octet-stream"), 0);
    dmnode_t *e = add(dm, "App", "Empty", false);
    assert_int_equal(dmtree_set_value(dm, e, (const uint8_t *)"", 0, "chr", NULL), 0);
    assert_int_equal(dmtree_set_title(dm, e, ""), 0);
    dmnode_t *odd = add(dm, "App", "we ird\t%name=-", true);
    leaf(dm, "App/we ird\t%name=-", "-lead", "=eq\n\r\tline");
    leaf(dm, "App", "\xc3\xa9t\xc3\xa9", "utf-8 \xe2\x82\xac");
    dmtree_set_acl(dm, odd, "Get=srv+other&Add=*");
    dmtree_set_title(dm, odd, "title with spaces\tand tab");
    add(dm, "App", "{7A1E-GUID}", true);
    add(dm, "", "EmptyInterior", true);
    /* properties on built-in nodes persist too */
    dmtree_set_acl(dm, node_at(dm, "DevInfo"), "Get=srv");
    dmtree_set_title(dm, node_at(dm, "DevDetail/URI/MaxDepth"), "max depth");
    dmtree_set_acl(dm, dmtree_root(dm), "Add=*&Get=*&Replace=srv");
    dmnode_t *stamped = node_at(dm, "App/Name");
    stamped->tstamp = 1234567890;
    stamped->verno = 42;
}

static void test_persistence_round_trip(void **state)
{
    fixture_t *f = *state;
    build_persisted(f->env.dm);
    char *before = snapshot(f->env.dm);
    assert_int_equal(dmtree_save(f->env.dm), OMADM_OK);
    size_t len = 0;
    assert_non_null(tstore_get(&f->store, "tree", &len));
    assert_true(len > 0);

    t_env_t e2;
    t_env_init(&e2);
    e2.storage = &f->store.api;
    t_env_start(&e2);
    char *after = snapshot(e2.dm);
    assert_string_equal(before, after);
    assert_string_equal(node_at(e2.dm, "DevInfo")->acl, "Get=srv");
    assert_string_equal(node_at(e2.dm, "DevDetail/URI/MaxDepth")->title, "max depth");
    assert_string_equal(node_at(e2.dm, "App/we ird\t%name=-/-lead")->value, "=eq\n\r\tline");
    assert_int_equal(node_at(e2.dm, "App/Bin")->len, 8);
    assert_string_equal(node_at(e2.dm, "App/Empty")->title, "");
    /* and saving the reloaded tree gives the same bytes */
    size_t len1 = 0;
    const uint8_t *v1 = tstore_get(&f->store, "tree", &len1);
    char *first = strndup((const char *)v1, len1);
    assert_int_equal(dmtree_save(e2.dm), OMADM_OK);
    size_t len2 = 0;
    const uint8_t *v2 = tstore_get(&f->store, "tree", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(first, v2, len1);
    free(first);
    t_env_done(&e2);
    free(before);
    free(after);
}

static void test_persistence_through_process(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(t_send(&f->env, true,
                            T_ADD_NODE("2", "./Cfg")
                            T_ADD("3", "./Cfg/Url", "chr", "http://x/?a=1&amp;b=2")
                            "<Replace><CmdID>4</CmdID><Item>" T_TARGET("./Cfg?prop=ACL")
                            "<Data>Get=*&amp;Replace=*&amp;Delete=*</Data></Item></Replace>"),
                     OMADM_OK);
    assert_int_equal(t_code(&f->env.reply, "2"), 200);
    assert_int_equal(t_code(&f->env.reply, "3"), 200);
    assert_int_equal(t_code(&f->env.reply, "4"), 200);
    assert_true(f->store.saves > 0);

    t_env_t e2;
    t_env_init(&e2);
    e2.storage = &f->store.api;
    t_env_start(&e2);
    char *v = t_read(&e2, "./Cfg/Url", NULL, NULL);
    assert_string_equal(v, "http://x/?a=1&b=2");
    free(v);
    assert_string_equal(node_at(e2.dm, "Cfg")->acl, "Get=*&Replace=*&Delete=*");
    t_env_done(&e2);
}

static void test_no_save_without_changes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(t_send(&f->env, true, T_GET("2", "./DevInfo/Man")), OMADM_OK);
    assert_int_equal(t_code(&f->env.reply, "2"), 200);
    assert_null(tstore_get(&f->store, "tree", NULL));
}

static omadm_error_t new_with_tree(const char *stored, size_t len)
{
    tstore_t st;
    tstore_init(&st);
    tstore_set(&st, "tree", stored, len);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    e.dm = (omadm_t *)0x1;
    omadm_error_t err = omadm_new(&e.cfg, &e.plat, e.storage, &e.dm);
    if (err)
        assert_null(e.dm);
    omadm_free(e.dm);
    assert_int_equal(e.alloc.outstanding, 0);
    assert_int_equal(st.hits, st.releases);
    tstore_free(&st);
    return err;
}

#define NEW_WITH(s) new_with_tree(s, sizeof(s) - 1)

static void test_corrupt_tree_refused(void **state)
{
    (void)state;
    assert_int_equal(NEW_WITH("garbage"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("\x00\x01\x02"), OMADM_E_CORRUPT);
    /* a line with too few fields */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./A\tI\t-\t-\n"), OMADM_E_CORRUPT);
    /* unknown node kind */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./A\tX\t-\t-\t-\t-\t0\t0\t-\n"), OMADM_E_CORRUPT);
    /* a leaf value that is not base64 */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./A\tL\tchr\t-\t-\t-\t0\t0\t@@@\n"), OMADM_E_CORRUPT);
    /* a built-in interior node stored as a leaf */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./DevInfo\tL\tchr\t-\t-\t-\t0\t0\t=\n"),
                     OMADM_E_CORRUPT);
    /* an unusable URI */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./A//B\tI\t-\t-\t-\t-\t0\t0\t-\n"), OMADM_E_CORRUPT);
    /* a good file still loads */
    assert_int_equal(NEW_WITH("omadm-tree 1\n./A\tI\t-\t-\t-\t-\t0\t0\t-\n"
                              "./A/b\tL\tchr\t-\t-\t-\t0\t0\tYQ==\n"),
                     OMADM_OK);
}

static void test_storage_load_failure(void **state)
{
    (void)state;
    tstore_t st;
    tstore_init(&st);
    st.fail_load = true;
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    omadm_t *dm = NULL;
    assert_int_equal(omadm_new(&e.cfg, &e.plat, e.storage, &dm), OMADM_E_STORAGE);
    assert_null(dm);
    assert_int_equal(e.alloc.outstanding, 0);
    tstore_free(&st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_builtin_objects),
        cmocka_unit_test(test_builtin_values_from_config),
        T(test_child_lookup_case_insensitive),
        T(test_add_and_remove),
        T(test_many_children_index),
        cmocka_unit_test(test_node_count_limit),
        cmocka_unit_test(test_mount_points_are_builtin),
        T(test_set_value_and_properties),
        T(test_rollback_restores_exactly),
        T(test_rollback_then_commit_cycle),
        T(test_savepoints),
        T(test_commit_frees_removed_and_replaced),
        T(test_rollback_of_added_subtree_frees),
        T(test_effective_acl_inheritance),
        T(test_uri_escaping),
        T(test_persistence_round_trip),
        T(test_persistence_through_process),
        T(test_no_save_without_changes),
        cmocka_unit_test(test_corrupt_tree_refused),
        cmocka_unit_test(test_storage_load_failure),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
