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
#include <time.h>

#include <cmocka.h>

#include "acl.h"
#include "crypto.h"
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
    /* root, DevInfo + 5 leaves, DevDetail + URI + 3 + 6 leaves, Ext +
     * Microsoft + 7 leaves */
    assert_int_equal(dmtree_node_count(dm), 27);

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
        {"DevDetail/Ext/Microsoft/DeviceName", "unknown", "chr"},
        {"DevDetail/Ext/Microsoft/DNSComputerName", "unknown", "chr"},
        {"DevDetail/Ext/Microsoft/LocalTime", "", "chr"}, /* made when read */
        {"DevDetail/Ext/Microsoft/OSPlatform", "unknown", "chr"},
        {"DevDetail/Ext/Microsoft/ProcessorType", "0", "int"},
        {"DevDetail/Ext/Microsoft/SMBIOSVersion", "unknown", "chr"},
        {"DevDetail/Ext/Microsoft/TotalRAM", "0", "int"},
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

/* ./DevDetail/Ext/Microsoft: the host sets the values (omadm_devdetail_set),
 * LocalTime is made from the platform clock each time it is read. */
static const char *get_value(t_env_t *e, const char *uri)
{
    char body[512];
    snprintf(body, sizeof body, T_GET("2", "%s"), uri);
    assert_int_equal(t_send(e, true, body), OMADM_OK);
    assert_int_equal(t_code(&e->reply, "2"), 200);
    const t_cmd_t *r = t_results(&e->reply, "2");
    assert_non_null(r);
    return r->items[0].data ? r->items[0].data : "";
}

static void local_time_is(t_env_t *e, const char *tz, int64_t now, const char *want)
{
    setenv("TZ", tz, 1);
    tzset();
    e->alloc.now = now;
    assert_string_equal(get_value(e, "./DevDetail/Ext/Microsoft/LocalTime"), want);
    char *v = NULL;
    size_t len = 0;
    int interior = -1;
    assert_int_equal(omadm_tree_read(e->dm, "./DevDetail/Ext/Microsoft/LocalTime", &v, &len,
                                     &interior),
                     OMADM_OK);
    assert_string_equal(v, want);
    assert_int_equal(len, strlen(want));
    omadm_buffer_free(e->dm, v);
}

static void test_devdetail_ext_microsoft(void **state)
{
    (void)state;
    char *old_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    t_env_t e;
    t_env_init(&e);
    t_env_start(&e);
    omadm_t *dm = e.dm;
    assert_string_equal(get_value(&e, "./DevDetail/Ext"), "Microsoft");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft"),
                        "DeviceName/DNSComputerName/LocalTime/OSPlatform/ProcessorType/"
                        "SMBIOSVersion/TotalRAM");
    /* the host's values; NULL: the default again */
    assert_int_equal(omadm_devdetail_set(dm, "DeviceName", "Lab PC 7"), OMADM_OK);
    assert_int_equal(omadm_devdetail_set(dm, "DNSComputerName", "lab-pc-7"), OMADM_OK);
    assert_int_equal(omadm_devdetail_set(dm, "OSPlatform", "Debian GNU/Linux 12"), OMADM_OK);
    assert_int_equal(omadm_devdetail_set(dm, "ProcessorType", "8664"), OMADM_OK);
    assert_int_equal(omadm_devdetail_set(dm, "TotalRAM", "16384"), OMADM_OK);
    assert_int_equal(omadm_devdetail_set(dm, "SMBIOSVersion", "1.16.3"), OMADM_OK);
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/DeviceName"), "Lab PC 7");
    assert_string_equal(get_value(&e, "./devdetail/ext/microsoft/dnscomputername"), "lab-pc-7");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/OSPlatform"),
                        "Debian GNU/Linux 12");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/ProcessorType"), "8664");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/TotalRAM"), "16384");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/TotalRAM?prop=Format"), "int");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/SMBIOSVersion"), "1.16.3");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/DeviceName?prop=VerNo"), "0");
    assert_int_equal(omadm_devdetail_set(dm, "SMBIOSVersion", NULL), OMADM_OK);
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/SMBIOSVersion"), "unknown");
    assert_int_equal(omadm_devdetail_set(dm, "TotalRAM", NULL), OMADM_OK);
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/TotalRAM"), "0");
    /* refused: nothing changes */
    assert_int_equal(omadm_devdetail_set(NULL, "DeviceName", "x"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, NULL, "x"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "LocalTime", "2026-01-01T00:00:00Z"),
                     OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "devicename", "x"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "MobileID", "x"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "ProcessorType", "x86"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "TotalRAM", ""), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "TotalRAM", "-1"), OMADM_E_INVALID_ARG);
    assert_int_equal(omadm_devdetail_set(dm, "TotalRAM", "1234567890123456789"),
                     OMADM_E_INVALID_ARG);
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/DeviceName"), "Lab PC 7");
    /* read-only for servers, as the rest of DevDetail */
    assert_int_equal(t_send(&e, true,
                            T_REPLACE("2", "./DevDetail/Ext/Microsoft/DeviceName", "chr", "y")
                                T_DELETE("3", "./DevDetail/Ext/Microsoft/LocalTime")),
                     OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 405);
    assert_int_equal(t_code(&e.reply, "3"), 405);

    /* a host plugin may serve more Windows leaves beside them, not replace them */
    static const char *const mobile[] = {"./DevDetail/Ext/Microsoft/MobileID", NULL};
    static const char *const whole[] = {"./DevDetail/Ext/Microsoft", NULL};
    static const char *const wlan[] = {"./DevDetail/Ext/WLANMACAddress", NULL};
    static const omadm_csp_t p_mobile = {.name = "mobile", .bases = mobile};
    static const omadm_csp_t p_whole = {.name = "whole", .bases = whole};
    static const omadm_csp_t p_wlan = {.name = "wlan", .bases = wlan};
    assert_int_equal(omadm_register_csp(dm, &p_whole, NULL), OMADM_E_EXISTS);
    assert_int_equal(omadm_register_csp(dm, &p_mobile, NULL), OMADM_OK);
    assert_int_equal(omadm_register_csp(dm, &p_wlan, NULL), OMADM_OK);
    assert_string_equal(get_value(&e, "./DevDetail/Ext"), "Microsoft/WLANMACAddress");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft"),
                        "DeviceName/DNSComputerName/LocalTime/OSPlatform/ProcessorType/"
                        "SMBIOSVersion/TotalRAM/MobileID");

    /* LocalTime: the clock's time in TZ's zone when read, never frozen */
    local_time_is(&e, "UTC0", 1700000000, "2023-11-14T22:13:20+00:00");
    local_time_is(&e, "UTC0", 1700003600, "2023-11-14T23:13:20+00:00");
    local_time_is(&e, "EST5", 1700000000, "2023-11-14T17:13:20-05:00");
    local_time_is(&e, "IST-5:30", 1700000000, "2023-11-15T03:43:20+05:30");
    local_time_is(&e, "NZST-12", 1704067199, "2024-01-01T11:59:59+12:00"); /* year ahead */
    local_time_is(&e, "EST5", 1704067200, "2023-12-31T19:00:00-05:00");    /* year behind */
    local_time_is(&e, "CET-1CEST,M3.5.0,M10.5.0/3", 1719835200, "2024-07-01T14:00:00+02:00");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/LocalTime?prop=Size"), "25");
    assert_string_equal(get_value(&e, "./DevDetail/Ext/Microsoft/LocalTime?prop=Format"), "chr");
    t_env_done(&e);
    if (old_tz)
        setenv("TZ", old_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old_tz);
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
    /* a later version's tree is not damaged: refused as newer (test_state) */
    assert_int_equal(NEW_WITH("omadm-tree 3\n"), OMADM_E_NEWER_FORMAT);
    assert_int_equal(NEW_WITH("omadm-tree 0\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 02\n"), OMADM_E_CORRUPT);
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


/* ---- persistence in buckets ---------------------------------------------- */

/* Bytes of every tree key the store holds ("tree", "tree.<i>.<a|b>"). */
static size_t tree_bytes(const tstore_t *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_e; i++)
        if (st->e[i].set && !strncmp(st->e[i].key, "tree", 4))
            n += st->e[i].len;
    return n;
}

/* The tree an engine started on st holds (snapshot); NULL with *err set
 * when it does not start. */
static char *stored_snapshot(tstore_t *st, omadm_error_t *err)
{
    t_env_t e;
    t_env_init(&e);
    e.storage = &st->api;
    omadm_t *dm = NULL;
    *err = omadm_new(&e.cfg, &e.plat, e.storage, &dm);
    if (*err) {
        assert_null(dm);
        assert_int_equal(e.alloc.outstanding, 0);
        return NULL;
    }
    e.dm = dm;
    char *s = snapshot(dm);
    t_env_done(&e);
    return s;
}

/* ./Big/G<g>/L<l>, value_len bytes each (about 200 bytes stored per leaf
 * for a value of 100). */
static void build_big(omadm_t *dm, unsigned groups, unsigned leaves, size_t value_len)
{
    char name[32], path[32];
    char *value = malloc(value_len);
    add(dm, "", "Big", true);
    for (unsigned g = 0; g < groups; g++) {
        snprintf(name, sizeof name, "G%u", g);
        add(dm, "Big", name, true);
        snprintf(path, sizeof path, "Big/G%u", g);
        dmnode_t *p = node_at(dm, path);
        for (unsigned l = 0; l < leaves; l++) {
            snprintf(name, sizeof name, "L%u", l);
            for (size_t k = 0; k < value_len; k++)
                value[k] = (char)('a' + (g * 7 + l * 13 + k) % 26);
            dmnode_t *n = dmtree_add(dm, p, name, false, NULL);
            assert_non_null(n);
            assert_int_equal(dmtree_set_value(dm, n, (uint8_t *)value, value_len, "chr", NULL), 0);
        }
    }
    free(value);
}

static void test_message_writes_what_it_changed(void **state)
{
    fixture_t *f = *state;
    build_big(f->env.dm, 50, 100, 100);
    assert_int_equal(dmtree_save(f->env.dm), OMADM_OK);
    size_t tree = tree_bytes(&f->store);
    assert_true(tree > 900000);
    size_t bytes = f->store.saved_bytes;
    unsigned saves = f->store.saves;
    assert_int_equal(t_send(&f->env, true,
                            T_REPLACE("2", "./Big/G7/L42", "chr", "x")
                            T_REPLACE("3", "./Big/G31/L5", "chr", "y")),
                     OMADM_OK);
    assert_int_equal(t_code(&f->env.reply, "2"), 200);
    assert_int_equal(t_code(&f->env.reply, "3"), 200);
    size_t written = f->store.saved_bytes - bytes;
    print_message("tree of %zu bytes; a message changing two leaves wrote %zu bytes in %u keys\n",
                  tree, written, f->store.saves - saves);
    /* the session, two buckets, the manifest */
    assert_true(f->store.saves - saves <= 4);
    assert_true(written < tree / 20);
    /* what was written is the tree */
    char *live = snapshot(f->env.dm);
    omadm_error_t err;
    char *stored = stored_snapshot(&f->store, &err);
    assert_int_equal(err, OMADM_OK);
    assert_string_equal(live, stored);
    assert_string_equal((char *)node_at(f->env.dm, "Big/G7/L42")->value, "x");
    free(live);
    free(stored);
}

/* The writer of format 1 (omadm-tree 1) as the previous version had it. */
static void v1_field(buf_t *b, const char *s)
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

static void v1_node(omadm_t *dm, const dmnode_t *n, buf_t *b)
{
    bool record = n->parent ? !n->builtin || n->acl || n->title : n->acl != NULL;
    if (record) {
        buf_t uri;
        buf_init(&uri, dm);
        assert_int_equal(dmtree_uri(n, &uri), 0);
        v1_field(b, (const char *)uri.data);
        buf_free(&uri);
        buf_puts(b, n->interior ? "\tI\t" : "\tL\t");
        const char *f[] = {n->format, n->type, n->acl, n->title};
        for (int i = 0; i < 4; i++) {
            v1_field(b, f[i]);
            buf_putc(b, '\t');
        }
        buf_printf(b, "%lld\t%u\t", (long long)n->tstamp, (unsigned)n->verno);
        if (!n->interior && !n->builtin) {
            char *v = crypto_b64_encode(dm, n->value, n->len);
            buf_puts(b, *v ? v : "=");
            om_free(dm, v);
        } else {
            buf_putc(b, '-');
        }
        buf_putc(b, '\n');
    }
    for (const dmnode_t *c = n->first; c; c = c->next)
        v1_node(dm, c, b);
}

static void test_old_format_loads_and_converts(void **state)
{
    fixture_t *f = *state;
    build_persisted(f->env.dm);
    char *before = snapshot(f->env.dm);
    buf_t b;
    buf_init(&b, f->env.dm);
    buf_puts(&b, "omadm-tree 1\n");
    v1_node(f->env.dm, dmtree_root(f->env.dm), &b);
    assert_false(b.failed);

    tstore_t st;
    tstore_init(&st);
    tstore_set(&st, "tree", b.data, b.len);
    buf_free(&b);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    char *loaded = snapshot(e.dm);
    assert_string_equal(before, loaded);
    assert_int_equal(st.saves, 0); /* loading writes nothing */
    /* the first message that changes the tree writes it in format 2 */
    assert_int_equal(t_send(&e, true, T_ADD("2", "./EmptyInterior/N", "chr", "n")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    assert_memory_equal(tstore_get(&st, "tree", NULL), "omadm-tree 2\n", 13);
    assert_true(tstore_count(&st, "tree.") > 1);
    char *live = snapshot(e.dm);
    omadm_error_t err;
    char *stored = stored_snapshot(&st, &err);
    assert_int_equal(err, OMADM_OK);
    assert_string_equal(live, stored);
    t_env_done(&e);
    tstore_free(&st);
    free(before);
    free(loaded);
    free(live);
    free(stored);
}

/* A file of the previous version, as it wrote it: the order of siblings,
 * which is not the order of names, survives the conversion. */
static void test_old_format_order_kept(void **state)
{
    (void)state;
    static const char v1[] = "omadm-tree 1\n"
                             "./B\tI\t-\t-\tGet=*&Add=*\t-\t5\t0\t-\n"
                             "./B/z\tL\tchr\t-\t-\t-\t6\t1\tWg==\n"
                             "./B/a\tL\tint\t-\t-\tT\t7\t2\tMQ==\n"
                             "./A\tI\t-\turn:x\t-\t-\t8\t0\t-\n";
    tstore_t st;
    tstore_init(&st);
    tstore_set(&st, "tree", v1, sizeof v1 - 1);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    t_env_start(&e);
    dmnode_t *root = dmtree_root(e.dm);
    assert_string_equal(root->first->next->next->name, "B");
    assert_string_equal(root->last->name, "A");
    dmnode_t *bn = node_at(e.dm, "B");
    assert_string_equal(bn->first->name, "z");
    assert_string_equal(bn->last->name, "a");
    assert_string_equal(bn->last->title, "T");
    assert_string_equal((char *)bn->last->value, "1");
    assert_int_equal(bn->last->tstamp, 7);
    assert_int_equal(t_send(&e, true, T_ADD("2", "./B/m", "chr", "m")), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "2"), 200);
    char *live = snapshot(e.dm);
    t_env_done(&e);

    t_env_t e2;
    t_env_init(&e2);
    e2.storage = &st.api;
    t_env_start(&e2);
    char *stored = snapshot(e2.dm);
    assert_string_equal(live, stored);
    bn = node_at(e2.dm, "B");
    assert_string_equal(bn->first->name, "z");
    assert_string_equal(bn->first->next->name, "a");
    assert_string_equal(bn->last->name, "m");
    t_env_done(&e2);
    free(live);
    free(stored);
    tstore_free(&st);
}

static uint64_t fnv64(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* A store of one bucket (index i of n, generation gen) holding text under
 * key, the manifest naming it with text's checksum plus sum_delta. */
static omadm_error_t new_with_bucket(unsigned n, unsigned i, unsigned gen, const char *key,
                                     const char *text, uint64_t sum_delta)
{
    tstore_t st;
    tstore_init(&st);
    char *manifest = t_strf("omadm-tree 2\nbuckets %u\n%u %u %016llx\nend\n", n, i, gen,
                            (unsigned long long)(fnv64(text, strlen(text)) + sum_delta));
    tstore_set(&st, "tree", manifest, strlen(manifest));
    tstore_set(&st, key, text, strlen(text));
    free(manifest);
    omadm_error_t err;
    char *s = stored_snapshot(&st, &err);
    assert_int_equal(st.saves, 0);
    assert_int_equal(st.hits, st.releases);
    if (!err)
        assert_non_null(strstr(s, "  A I "));
    free(s);
    tstore_free(&st);
    return err;
}

static void test_corrupt_manifest_or_bucket_refused(void **state)
{
    (void)state;
    const char *good = "omadm-tree-bucket 1 2\n7\t./A\tI\t-\t-\t-\t-\t0\t0\t-\n";
    /* a manifest of 4 buckets (not the engine's count) loads */
    assert_int_equal(new_with_bucket(4, 1, 2, "tree.1.a", good, 0), OMADM_OK);
    /* a checksum that does not match */
    assert_int_equal(new_with_bucket(4, 1, 2, "tree.1.a", good, 1), OMADM_E_CORRUPT);
    /* the key the manifest names is missing (generation 3 is key b) */
    assert_int_equal(new_with_bucket(4, 1, 3, "tree.1.a", good, 0), OMADM_E_CORRUPT);
    /* a bucket whose head names another bucket or generation */
    assert_int_equal(new_with_bucket(4, 2, 2, "tree.2.a", good, 0), OMADM_E_CORRUPT);
    assert_int_equal(new_with_bucket(4, 1, 4, "tree.1.a", good, 0), OMADM_E_CORRUPT);
    /* an index past the count, a record without its number */
    assert_int_equal(new_with_bucket(1, 1, 2, "tree.1.a", good, 0), OMADM_E_CORRUPT);
    assert_int_equal(new_with_bucket(4, 1, 2, "tree.1.a",
                                     "omadm-tree-bucket 1 2\n./A\tI\t-\t-\t-\t-\t0\t0\t-\n", 0),
                     OMADM_E_CORRUPT);
    /* manifests that are not one */
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 0\nend\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4097\nend\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\nend\nx\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\n1 0 00000000000000zz\nend\n"),
                     OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\n1 0 0\n1 0 0\nend\n"), OMADM_E_CORRUPT);
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\n-1 0 0\nend\n"), OMADM_E_CORRUPT);
    /* an empty tree */
    assert_int_equal(NEW_WITH("omadm-tree 2\nbuckets 4\nend\n"), OMADM_OK);
}

/* A saved tree whose current bucket is changed on disk: refused, and the
 * store is left as it was. */
static void test_changed_bucket_refused(void **state)
{
    fixture_t *f = *state;
    build_big(f->env.dm, 4, 20, 10);
    assert_int_equal(dmtree_save(f->env.dm), OMADM_OK);
    /* a second save, so that both keys of a bucket exist */
    assert_int_equal(t_send(&f->env, true, T_REPLACE("2", "./Big/G1/L1", "chr", "v")), OMADM_OK);
    assert_int_equal(t_code(&f->env.reply, "2"), 200);
    const char *manifest = (const char *)tstore_get(&f->store, "tree", NULL);
    unsigned i, gen;
    const char *line = strchr(strchr(manifest, '\n') + 1, '\n') + 1;
    assert_int_equal(sscanf(line, "%u %u", &i, &gen), 2);
    char key[32];
    snprintf(key, sizeof key, "tree.%u.%c", i, gen & 1 ? 'b' : 'a');
    size_t len;
    char *orig = strdup((const char *)tstore_get(&f->store, key, &len));
    for (int how = 0; how < 3; how++) {
        char *bad = strdup(orig);
        size_t bad_len = len;
        if (how == 0)
            bad[len / 2] ^= 1;          /* a flipped bit */
        else if (how == 1)
            bad_len = len - 1;          /* cut short */
        else
            bad[strlen("omadm-tree-bucket ")] ^= 1; /* another head */
        tstore_set(&f->store, key, bad, bad_len);
        free(bad);
        tstore_t copy;
        tstore_copy(&copy, &f->store);
        omadm_error_t err;
        char *s = stored_snapshot(&f->store, &err);
        assert_null(s);
        assert_int_equal(err, OMADM_E_CORRUPT);
        /* nothing changed */
        assert_int_equal(copy.n_e, f->store.n_e);
        for (size_t k = 0; k < copy.n_e; k++) {
            size_t l2;
            const uint8_t *v = tstore_get(&f->store, copy.e[k].key, &l2);
            assert_non_null(v);
            assert_int_equal(l2, copy.e[k].len);
            assert_memory_equal(v, copy.e[k].data, l2);
        }
        tstore_free(&copy);
    }
    tstore_set(&f->store, key, orig, len);
    free(orig);
    omadm_error_t err;
    char *s = stored_snapshot(&f->store, &err);
    assert_int_equal(err, OMADM_OK);
    free(s);
}

/* ---- a save that fails, or stops, at each of its keys --------------------- */

#define FAIL_BASE                                                                     \
    T_ADD_NODE("2", "./P") T_ADD("3", "./P/N0", "chr", "0") T_ADD("4", "./P/N1", "chr", "1") \
    T_ADD("5", "./P/N2", "chr", "2") T_ADD("6", "./P/N3", "chr", "3")                     \
    T_ADD("7", "./P/N4", "chr", "4") T_ADD("8", "./P/N5", "chr", "5")                     \
    T_ADD("9", "./P/N6", "chr", "6") T_ADD("10", "./P/N7", "chr", "7")
#define FAIL_MSG                                                                      \
    T_REPLACE("2", "./P/N0", "chr", "a") T_REPLACE("3", "./P/N3", "chr", "b")            \
    T_REPLACE("4", "./P/N6", "chr", "c") T_ADD("5", "./P/New", "chr", "n")               \
    T_DELETE("6", "./P/N5")

typedef struct crash_check {
    const char *before, *after;
    unsigned copies, problems;
} crash_check_t;

/* After every key stored: the store as a crash would leave it loads, and
 * holds the tree before or after the message. */
static void check_copy(tstore_t *st, const char *key, void *ctx)
{
    crash_check_t *c = ctx;
    tstore_t copy;
    tstore_copy(&copy, st);
    omadm_error_t err;
    char *s = stored_snapshot(&copy, &err);
    c->copies++;
    if (!s) {
        print_error("after key %s the stored tree does not load: %s\n", key, omadm_strerror(err));
        c->problems++;
    } else if (strcmp(s, c->before) && strcmp(s, c->after)) {
        print_error("after key %s the stored tree is neither before nor after:\n%s", key, s);
        c->problems++;
    }
    free(s);
    tstore_free(&copy);
}

static void run_failing(const tstore_t *seed, unsigned k, bool stores, unsigned ref_saves,
                        crash_check_t *c)
{
    tstore_t st;
    tstore_copy(&st, seed);
    t_env_t e;
    t_env_init(&e);
    e.storage = &st.api;
    e.msg_id = 20;
    t_env_start(&e);
    st.saves = 0;
    st.fail_save_at = k;
    st.fail_stores = stores;
    st.on_save = check_copy;
    st.on_save_ctx = c;
    omadm_error_t err = t_send(&e, true, FAIL_MSG);
    omadm_error_t lerr;
    char *stored = stored_snapshot(&st, &lerr);
    assert_int_equal(lerr, OMADM_OK);
    char *live = snapshot(e.dm);
    if (k <= ref_saves) {
        /* refused: no reply, the engine's tree as before */
        assert_int_equal(err, OMADM_E_STORAGE);
        assert_false(e.reply.present);
        assert_string_equal(live, c->before);
        if (!stores)
            assert_string_equal(stored, c->before);
        else if (strcmp(stored, c->before))
            assert_string_equal(stored, c->after);
        /* sent again, it goes through */
        free(stored);
        free(live);
        assert_int_equal(t_send(&e, true, FAIL_MSG), OMADM_OK);
        stored = stored_snapshot(&st, &lerr);
        assert_int_equal(lerr, OMADM_OK);
        live = snapshot(e.dm);
    } else {
        assert_int_equal(err, OMADM_OK);
    }
    assert_int_equal(t_code(&e.reply, "2"), 200);
    assert_int_equal(t_code(&e.reply, "6"), 200);
    assert_string_equal(live, c->after);
    assert_string_equal(stored, c->after);
    free(stored);
    free(live);
    t_env_done(&e);
    tstore_free(&st);
}

static void test_save_fails_at_every_key(void **state)
{
    (void)state;
    tstore_t seed, ref;
    tstore_init(&seed);
    t_env_t e;
    t_env_init(&e);
    e.storage = &seed.api;
    t_env_start(&e);
    assert_int_equal(t_send(&e, true, FAIL_BASE), OMADM_OK);
    assert_int_equal(t_code(&e.reply, "10"), 200);
    t_env_done(&e);
    omadm_error_t err;
    char *before = stored_snapshot(&seed, &err);
    assert_int_equal(err, OMADM_OK);

    tstore_copy(&ref, &seed);
    t_env_init(&e);
    e.storage = &ref.api;
    e.msg_id = 20;
    t_env_start(&e);
    ref.saves = 0;
    assert_int_equal(t_send(&e, true, FAIL_MSG), OMADM_OK);
    unsigned ref_saves = ref.saves;
    t_env_done(&e);
    char *after = stored_snapshot(&ref, &err);
    assert_int_equal(err, OMADM_OK);
    assert_string_not_equal(before, after);
    /* the session, at least three buckets, the manifest */
    assert_true(ref_saves >= 5);

    crash_check_t c = {before, after, 0, 0};
    for (int stores = 0; stores < 2; stores++)
        for (unsigned k = 1; k <= ref_saves + 1; k++)
            run_failing(&seed, k, stores, ref_saves, &c);
    print_message("%u saves per message; %u stored states checked\n", ref_saves, c.copies);
    assert_int_equal(c.problems, 0);
    assert_true(c.copies > 2 * ref_saves * ref_saves);
    free(before);
    free(after);
    tstore_free(&seed);
    tstore_free(&ref);
}

/* ---- what a save rewrites ------------------------------------------------ */

/* A renamed interior node: every record below has a new URI. */
static void test_rename_and_emptied_bucket_persist(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    add(dm, "", "R", true);
    add(dm, "R", "Old", true);
    leaf(dm, "R/Old", "a", "1");
    add(dm, "R/Old", "Deep", true);
    leaf(dm, "R/Old/Deep", "b", "2");
    leaf(dm, "", "Lone", "l");
    assert_int_equal(dmtree_save(dm), OMADM_OK);
    assert_int_equal(dmtree_rename(dm, node_at(dm, "R/Old"), "New"), 0);
    dmnode_t *lone = node_at(dm, "Lone");
    assert_int_equal(dmtree_remove(dm, lone), 0);
    assert_int_equal(dmtree_save(dm), OMADM_OK);
    char *live = snapshot(dm);
    omadm_error_t err;
    char *stored = stored_snapshot(&f->store, &err);
    assert_int_equal(err, OMADM_OK);
    assert_string_equal(live, stored);
    assert_null(strstr(stored, "Old"));
    assert_null(strstr(stored, "Lone"));
    assert_non_null(strstr(stored, "      b L"));
    free(live);
    free(stored);
    /* nothing changed: nothing written */
    unsigned saves = f->store.saves;
    assert_int_equal(dmtree_save(dm), OMADM_OK);
    assert_int_equal(f->store.saves, saves);
}

/* Creation numbers that run out are given again in tree order. */
static void test_creation_numbers_run_out(void **state)
{
    fixture_t *f = *state;
    omadm_t *dm = f->env.dm;
    add(dm, "", "S", true);
    leaf(dm, "S", "x", "1")->seq = UINT32_MAX - 2;
    leaf(dm, "S", "y", "2")->seq = UINT32_MAX - 1;
    node_at(dm, "S")->seq = UINT32_MAX - 3;
    assert_int_equal(dmtree_save(dm), OMADM_OK);

    t_env_t e;
    t_env_init(&e);
    e.storage = &f->store.api;
    t_env_start(&e);
    dmnode_t *s = node_at(e.dm, "S");
    assert_string_equal(s->first->name, "x");
    assert_int_equal(s->last->seq, UINT32_MAX - 1);
    dmnode_t *z = dmtree_add(e.dm, s, "z", false, NULL);
    assert_non_null(z);
    assert_true(z->seq > s->first->next->seq);
    assert_true(s->seq < s->first->seq);
    assert_true(z->seq < 100);
    assert_int_equal(dmtree_save(e.dm), OMADM_OK);
    char *live = snapshot(e.dm);
    t_env_done(&e);
    omadm_error_t err;
    char *stored = stored_snapshot(&f->store, &err);
    assert_int_equal(err, OMADM_OK);
    assert_string_equal(live, stored);
    free(live);
    free(stored);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_builtin_objects),
        cmocka_unit_test(test_builtin_values_from_config),
        cmocka_unit_test(test_devdetail_ext_microsoft),
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
        T(test_message_writes_what_it_changed),
        T(test_old_format_loads_and_converts),
        cmocka_unit_test(test_old_format_order_kept),
        cmocka_unit_test(test_corrupt_manifest_or_bucket_refused),
        T(test_changed_bucket_refused),
        cmocka_unit_test(test_save_fails_at_every_key),
        T(test_rename_and_emptied_bucket_persist),
        T(test_creation_numbers_run_out),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
