/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_message.c - libFuzzer harness: any bytes as a server message
 * (XML or WBXML, detected as dmclient does), processed by a fresh engine
 * with in-memory storage and an in-memory CSP plugin (the unit tests'
 * support_csp.c) on ./Vendor/Test and ./Device/Vendor/Test, so decoding,
 * every command, plugin routing and transactions, and encoding are
 * exercised.  Whatever state a message leaves must load again.  A second pass replays the input on the state the first
 * pass left, covering persistence.
 */
#include <stdlib.h>
#include <string.h>

#include "omadm.h"
#include "support_csp.h"

typedef struct mem_store {
    uint8_t *tree, *session;
    size_t tree_len, session_len;
} mem_store_t;

static uint8_t **slot(mem_store_t *m, const char *key, size_t **len)
{
    if (!strcmp(key, "tree")) {
        *len = &m->tree_len;
        return &m->tree;
    }
    *len = &m->session_len;
    return &m->session;
}

static int st_load(void *ctx, const char *key, uint8_t **data, size_t *len)
{
    size_t *l;
    uint8_t **s = slot(ctx, key, &l);
    if (!*s)
        return 1;
    *data = malloc(*l ? *l : 1);
    if (!*data)
        return -1;
    memcpy(*data, *s, *l);
    *len = *l;
    return 0;
}

static void st_release(void *ctx, uint8_t *data)
{
    (void)ctx;
    free(data);
}

static int st_save(void *ctx, const char *key, const uint8_t *data, size_t len)
{
    size_t *l;
    uint8_t **s = slot(ctx, key, &l);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    free(*s);
    *s = copy;
    *l = len;
    return 0;
}

static void run_once(mem_store_t *m, const uint8_t *data, size_t size)
{
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.max_nodes = 2000;
    omadm_storage_t st = {.ctx = m, .load = st_load, .release = st_release, .save = st_save};
    omadm_t *dm = NULL;
    omadm_error_t err = omadm_new(&cfg, NULL, &st, &dm);
    if (err == OMADM_E_NOMEM)
        return;
    if (err)
        abort(); /* a state the engine saved must load again */
    tcsp_t csp;
    tcsp_init(&csp, "fuzz", "./Vendor/Test", "./Device/Vendor/Test");
    tcsp_put(&csp, "Top", "t");
    tcsp_put(&csp, "Dir/Leaf", "l");
    if (omadm_register_csp(dm, &csp.table, &csp))
        abort();
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    if (omadm_process(dm, data, size, &reply, &reply_len) == OMADM_OK && reply) {
        /* the reply must itself be a message the engine can read */
        uint8_t *again = NULL;
        size_t again_len = 0;
        omadm_process(dm, reply, reply_len, &again, &again_len);
        omadm_buffer_free(dm, again);
    }
    omadm_buffer_free(dm, reply);
    omadm_free(dm);
    tcsp_free(&csp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mem_store_t m = {0};
    run_once(&m, data, size);
    run_once(&m, data, size);
    free(m.tree);
    free(m.session);
    return 0;
}
