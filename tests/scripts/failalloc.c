/* SPDX-License-Identifier: Apache-2.0 */
/*
 * failalloc.c - an LD_PRELOAD allocator for tests/scripts/test-cli-oom.sh:
 * glibc's malloc, except that the FAILALLOC_N-th allocation (malloc, calloc,
 * realloc; counted from 1) returns NULL, once, and leaves errno as it was,
 * as an allocator that does not report why may.  Only allocations called
 * from the program itself (dmclient with the library linked in) and from
 * libc on its behalf (fopen, strdup ...) count: other libraries (libcurl,
 * libxml2, OpenSSL) are left alone.  With FAILALLOC_COUNT=FILE the number
 * of allocations that counted is written to FILE at exit.
 *
 * Built by the test: cc -shared -fPIC -o failalloc.so failalloc.c
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

#define MAX_RANGES 32

static struct {
    uintptr_t lo, hi;
} ranges[MAX_RANGES];
static int n_ranges;
static unsigned long fail_at, calls;
static int ready;

static int add_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    int *index = data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    /* the program comes first (its name is ""), libc wherever it is */
    int want = (*index)++ == 0 || strstr(name, "/libc.so") != NULL;
    for (int i = 0; want && i < info->dlpi_phnum && n_ranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        ranges[n_ranges].lo = info->dlpi_addr + ph->p_vaddr;
        ranges[n_ranges].hi = ranges[n_ranges].lo + ph->p_memsz;
        n_ranges++;
    }
    return 0;
}

static void report(void)
{
    const char *out = getenv("FAILALLOC_COUNT");
    FILE *f = out ? fopen(out, "w") : NULL;
    if (f) {
        fprintf(f, "%lu\n", calls);
        fclose(f);
    }
}

__attribute__((constructor)) static void init(void)
{
    const char *n = getenv("FAILALLOC_N");
    fail_at = n ? strtoul(n, NULL, 10) : 0;
    int index = 0;
    dl_iterate_phdr(add_object, &index);
    atexit(report);
    ready = 1;
}

/* 1 when this allocation is the one to fail. */
static int fail_now(const void *caller)
{
    if (!ready)
        return 0;
    uintptr_t ra = (uintptr_t)caller;
    int ours = 0;
    for (int i = 0; i < n_ranges && !ours; i++)
        ours = ra >= ranges[i].lo && ra < ranges[i].hi;
    if (!ours)
        return 0;
    return ++calls == fail_at;
}

void *malloc(size_t size)
{
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_realloc(p, size);
}
