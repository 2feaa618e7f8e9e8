/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_io.h - every file operation of the store goes through these
 * wrappers, so a test can make any of them fail (the store's I/O-failure
 * injection; tests/unit/test_store_io.c).  Internal: not part of the
 * library's API, and nothing outside the test suites sets a fault hook.
 *
 * Without a hook (io NULL, or io->fault NULL) each wrapper is the libc
 * call.  With one, the hook is asked before each call; when it answers an
 * errno value the call is not made and fails with that errno (close and
 * closedir still release the descriptor, then report the failure).
 */
#ifndef OMADM_STORE_IO_H
#define OMADM_STORE_IO_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "omadm.h"

typedef enum {
    STORE_IO_OPEN,     /* open, opendir */
    STORE_IO_READ,     /* read, pread, readdir */
    STORE_IO_WRITE,    /* write, pwrite */
    STORE_IO_SYNC,     /* fsync, syncfs */
    STORE_IO_RENAME,
    STORE_IO_UNLINK,
    STORE_IO_MKDIR,
    STORE_IO_CHMOD,    /* chmod, fchmod */
    STORE_IO_TRUNCATE, /* ftruncate */
    STORE_IO_CLOSE,    /* close, closedir */
    STORE_IO_STAT,     /* stat, lstat, fstat, fstatat, access */
    STORE_IO_LOCK,     /* flock */
    STORE_IO__COUNT
} store_io_op_t;

typedef struct store_io {
    /* 0: make the call; an errno value: fail it with that errno.  path is
     * the file the call names, NULL for a call on a descriptor. */
    int (*fault)(void *ctx, store_io_op_t op, const char *path);
    void *ctx;
} store_io_t;

/* The name of an operation, for messages ("write", "rename", ...). */
const char *store_io_name(store_io_op_t op);

int store_io_open(const store_io_t *io, const char *p, int flags, mode_t mode);
int store_io_openat(const store_io_t *io, int dirfd, const char *name, int flags, mode_t mode);
ssize_t store_io_read(const store_io_t *io, int fd, void *buf, size_t n);
ssize_t store_io_pread(const store_io_t *io, int fd, void *buf, size_t n, off_t off);
ssize_t store_io_write(const store_io_t *io, int fd, const void *buf, size_t n);
ssize_t store_io_pwrite(const store_io_t *io, int fd, const void *buf, size_t n, off_t off);
int store_io_fsync(const store_io_t *io, int fd);
int store_io_syncfs(const store_io_t *io, int fd);
int store_io_rename(const store_io_t *io, const char *from, const char *to);
int store_io_unlink(const store_io_t *io, const char *p);
int store_io_mkdir(const store_io_t *io, const char *p, mode_t mode);
int store_io_chmod(const store_io_t *io, const char *p, mode_t mode);
int store_io_fchmod(const store_io_t *io, int fd, mode_t mode);
int store_io_ftruncate(const store_io_t *io, int fd, off_t len);
int store_io_close(const store_io_t *io, int fd);
int store_io_stat(const store_io_t *io, const char *p, struct stat *st);
int store_io_lstat(const store_io_t *io, const char *p, struct stat *st);
int store_io_fstat(const store_io_t *io, int fd, struct stat *st);
int store_io_fstatat(const store_io_t *io, int dirfd, const char *name, struct stat *st);
int store_io_access(const store_io_t *io, const char *p);   /* F_OK */
int store_io_flock(const store_io_t *io, int fd, int op);
DIR *store_io_opendir(const store_io_t *io, const char *p);
/* NULL at the end (errno unchanged) or on error (errno set). */
struct dirent *store_io_readdir(const store_io_t *io, DIR *d);
int store_io_closedir(const store_io_t *io, DIR *d);

/* store_open with a fault hook (copied; NULL: none) that every file
 * operation of this store, from its first mkdir on, asks. */
typedef struct store store_t;
int store_open_io(const char *dir, const omadm_platform_t *plat, const store_io_t *io,
                  store_t **out, const char **why);

#endif
