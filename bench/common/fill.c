/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fill.c - see fill.h.
 */
#include "fill.h"

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "durability.h"
#include "util.h"

_Static_assert(POOL_THUMB_LEN == STORE_THUMB_LEN, "a pool thumbprint is a store thumbprint");

void fill_put(store_t *st, const char *store_id, const pool_cert_t *c, const char *server)
{
    store_rec_t rec = {.name = (char *)c->thumb, .server = (char *)server,
                       .added = (int64_t)time(NULL), .der = c->der, .der_len = c->der_len};
    memcpy(rec.thumb, c->thumb, sizeof rec.thumb);
    if (store_put(st, store_id, &rec))
        bench_die("store_put failed");
}

void fill_store(store_t *st, const char *dir, const char *store_id, const pool_t *p,
                size_t from, size_t to, size_t batch, const char *server)
{
    bool skip = dur_skip;
    dur_skip = true;
    for (size_t i = from; i < to; i += batch) {
        size_t end = i + batch < to ? i + batch : to;
        if (store_begin(st))
            bench_die("store_begin failed");
        for (size_t j = i; j < end; j++)
            fill_put(st, store_id, &p->c[j], server);
        if (store_commit(st) || store_flush(st))
            bench_die("filling %s: store_flush failed", dir);
    }
    dur_skip = skip;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syscall(SYS_syncfs, fd);
        close(fd);
    }
}
