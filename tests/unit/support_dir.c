/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_dir.c - stores in directories (see support_dir.h).
 */
#include "support_dir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "support_pki.h"

int tdir_make(char *buf, size_t size)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, size, "%s/%s.XXXXXX", base, program_invocation_short_name);
    return mkdtemp(buf) ? 0 : -1;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

void tdir_rm(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

typedef struct listing {
    char *text;
    size_t len, cap;
    const char *names_only;
} listing_t;

static void lappend(listing_t *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->text = realloc(l->text, l->cap);
        assert_non_null(l->text);
    }
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len] = 0;
}

static void list_dir(listing_t *l, const char *dir, const char *rel)
{
    struct dirent **v = NULL;
    char p[4096], r[4096];
    int n = scandir(dir, &v, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = v[i]->d_name;
        /* the lock, and the journal of the last batch kept until the next
         * batch's barrier: what it did is in the files listed */
        bool bookkeeping = !*rel && (!strcmp(name, "lock") || !strncmp(name, "journal.applied-", 16));
        if (strcmp(name, ".") && strcmp(name, "..") && !bookkeeping) {
            snprintf(p, sizeof p, "%s/%s", dir, name);
            snprintf(r, sizeof r, "%s%s", rel, name);
            struct stat st;
            assert_int_equal(lstat(p, &st), 0);
            lappend(l, r, strlen(r));
            if (S_ISDIR(st.st_mode)) {
                lappend(l, "/\n", 2);
                strcat(r, "/");
                list_dir(l, p, r);
            } else if (l->names_only && !strncmp(r, l->names_only, strlen(l->names_only))) {
                lappend(l, "\n", 1);
            } else {
                size_t len = 0;
                uint8_t *data = tpki_slurp(p, &len);
                assert_non_null(data);
                lappend(l, "\n", 1);
                lappend(l, (const char *)data, len);
                lappend(l, "\n", 1);
                free(data);
            }
        }
        free(v[i]);
    }
    free(v);
}

char *tdir_listing(const char *dir, const char *names_only)
{
    listing_t l = {.names_only = names_only};
    lappend(&l, "", 0);
    list_dir(&l, dir, "");
    return l.text;
}

void tdir_diff(const char *what, const char *want, const char *got)
{
    size_t i = 0, line = 0;
    while (want[i] && want[i] == got[i])
        i++;
    size_t start = i;
    while (start && want[start - 1] != '\n')
        start--;
    for (size_t k = 0; k < start; k++)
        line += want[k] == '\n';
    fprintf(stderr, "  the store differs from %s at line %zu:\n  %s: %.100s\n  now: %.100s\n",
            what, line + 1, what, want + start, got + start);
}

static void print_problem(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "  store_check: %s\n", problem);
}

int tdir_store_check(const char *dir)
{
    store_t *s = NULL;
    const char *why = NULL;
    assert_int_equal(store_open(dir, NULL, &s, &why), 0);
    int problems = store_check(s, 0, print_problem, NULL);
    store_close(s);
    return problems;
}
