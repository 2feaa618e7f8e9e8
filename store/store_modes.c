/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_modes.c - who may read what in the store.
 *
 * The CApath directories, the PEM bundles and the certificate records are
 * for every user of the device: directories 0755, files 0644, and so is
 * every directory above them that the store creates.  Private keys
 * (keys/), state records (state/: they may hold keys too), the journal
 * (it carries keys and state records while a batch is applied) and the
 * lock are the store owner's alone: directories 0700, files 0600.  The
 * lock is private so that no other user can take it and stall every
 * change; readers do not need it (docs/certificatestore.md).
 *
 * Modes are always set with chmod/fchmod, never left to the umask.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "store_internal.h"

static bool private_area(const char *rel)
{
    static const char *const areas[] = {"keys", "state"};
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        size_t n = strlen(areas[i]);
        if (!strncmp(rel, areas[i], n) && (rel[n] == 0 || rel[n] == '/'))
            return true;
    }
    return false;
}

mode_t store_mode_want(const char *rel, bool dir)
{
    if (private_area(rel))
        return dir ? 0700 : 0600;
    if (!strncmp(rel, "journal", 7) || !strcmp(rel, "lock")) /* journal, .tmp, .applied-<boot> */
        return 0600;
    return dir ? 0755 : 0644;
}

int store_mkdir(const store_io_t *io, const char *p, mode_t mode)
{
    if (store_io_mkdir(io, p, mode))
        return errno == EEXIST ? 1 : -1;
    return store_io_chmod(io, p, mode) ? -1 : 0;
}

/* One path: its mode as store_mode_want says, when it is a directory or a
 * regular file (absent: nothing to do). */
static int fix_one(const store_io_t *io, const char *p, const char *rel)
{
    struct stat st;
    if (store_io_lstat(io, p, &st))
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return 0;
    mode_t want = store_mode_want(rel, S_ISDIR(st.st_mode));
    if ((st.st_mode & 07777) == want)
        return 0;
    return store_io_chmod(io, p, want);
}

int store_fix_modes(const store_t *s, const char *rel)
{
    char p[4096];
    size_t base = strlen(store_dir(s));
    if (path(s, p, sizeof p, "%s", rel))
        return -1;
    int rc = 0;
    /* the store directory, then rel one component at a time */
    p[base] = 0;
    if (fix_one(&s->io, p, ""))
        rc = -1;
    p[base] = '/';
    for (char *c = p + base + 1; *rel; c++) {
        if (*c && *c != '/')
            continue;
        char keep = *c;
        *c = 0;
        if (fix_one(&s->io, p, p + base + 1))
            rc = -1;
        if (!keep)
            break;
        *c = keep;
    }
    return rc;
}
