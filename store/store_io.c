/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_io.c - the store's file operations, each asking the fault hook
 * first (see store_io.h).
 */
#include "store_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

const char *store_io_name(store_io_op_t op)
{
    static const char *const names[STORE_IO__COUNT] = {
        [STORE_IO_OPEN] = "open",         [STORE_IO_READ] = "read",
        [STORE_IO_WRITE] = "write",       [STORE_IO_SYNC] = "sync",
        [STORE_IO_RENAME] = "rename",     [STORE_IO_UNLINK] = "unlink",
        [STORE_IO_MKDIR] = "mkdir",       [STORE_IO_CHMOD] = "chmod",
        [STORE_IO_TRUNCATE] = "truncate", [STORE_IO_CLOSE] = "close",
        [STORE_IO_STAT] = "stat",         [STORE_IO_LOCK] = "lock",
    };
    return (unsigned)op < STORE_IO__COUNT ? names[op] : "?";
}

/* 0 to go on; else errno is set and the call fails. */
static int fault(const store_io_t *io, store_io_op_t op, const char *p)
{
    int e = io && io->fault ? io->fault(io->ctx, op, p) : 0;
    if (e)
        errno = e;
    return e;
}

int store_io_open(const store_io_t *io, const char *p, int flags, mode_t mode)
{
    return fault(io, STORE_IO_OPEN, p) ? -1 : open(p, flags, mode);
}

int store_io_openat(const store_io_t *io, int dirfd, const char *name, int flags, mode_t mode)
{
    return fault(io, STORE_IO_OPEN, name) ? -1 : openat(dirfd, name, flags, mode);
}

ssize_t store_io_read(const store_io_t *io, int fd, void *buf, size_t n)
{
    return fault(io, STORE_IO_READ, NULL) ? -1 : read(fd, buf, n);
}

ssize_t store_io_pread(const store_io_t *io, int fd, void *buf, size_t n, off_t off)
{
    return fault(io, STORE_IO_READ, NULL) ? -1 : pread(fd, buf, n, off);
}

ssize_t store_io_write(const store_io_t *io, int fd, const void *buf, size_t n)
{
    return fault(io, STORE_IO_WRITE, NULL) ? -1 : write(fd, buf, n);
}

ssize_t store_io_pwrite(const store_io_t *io, int fd, const void *buf, size_t n, off_t off)
{
    return fault(io, STORE_IO_WRITE, NULL) ? -1 : pwrite(fd, buf, n, off);
}

int store_io_fsync(const store_io_t *io, int fd)
{
    return fault(io, STORE_IO_SYNC, NULL) ? -1 : fsync(fd);
}

int store_io_syncfs(const store_io_t *io, int fd)
{
    return fault(io, STORE_IO_SYNC, NULL) ? -1 : syncfs(fd);
}

int store_io_rename(const store_io_t *io, const char *from, const char *to)
{
    return fault(io, STORE_IO_RENAME, to) ? -1 : rename(from, to);
}

int store_io_unlink(const store_io_t *io, const char *p)
{
    return fault(io, STORE_IO_UNLINK, p) ? -1 : unlink(p);
}

int store_io_mkdir(const store_io_t *io, const char *p, mode_t mode)
{
    return fault(io, STORE_IO_MKDIR, p) ? -1 : mkdir(p, mode);
}

int store_io_chmod(const store_io_t *io, const char *p, mode_t mode)
{
    return fault(io, STORE_IO_CHMOD, p) ? -1 : chmod(p, mode);
}

int store_io_fchmod(const store_io_t *io, int fd, mode_t mode)
{
    return fault(io, STORE_IO_CHMOD, NULL) ? -1 : fchmod(fd, mode);
}

int store_io_ftruncate(const store_io_t *io, int fd, off_t len)
{
    return fault(io, STORE_IO_TRUNCATE, NULL) ? -1 : ftruncate(fd, len);
}

int store_io_close(const store_io_t *io, int fd)
{
    /* the descriptor goes whatever the hook says: a close that reports
     * an error has still closed it */
    int e = io && io->fault ? io->fault(io->ctx, STORE_IO_CLOSE, NULL) : 0;
    int rc = close(fd);
    if (e) {
        errno = e;
        return -1;
    }
    return rc;
}

int store_io_stat(const store_io_t *io, const char *p, struct stat *st)
{
    return fault(io, STORE_IO_STAT, p) ? -1 : stat(p, st);
}

int store_io_lstat(const store_io_t *io, const char *p, struct stat *st)
{
    return fault(io, STORE_IO_STAT, p) ? -1 : lstat(p, st);
}

int store_io_fstat(const store_io_t *io, int fd, struct stat *st)
{
    return fault(io, STORE_IO_STAT, NULL) ? -1 : fstat(fd, st);
}

int store_io_fstatat(const store_io_t *io, int dirfd, const char *name, struct stat *st)
{
    return fault(io, STORE_IO_STAT, name) ? -1 : fstatat(dirfd, name, st, 0);
}

int store_io_access(const store_io_t *io, const char *p)
{
    return fault(io, STORE_IO_STAT, p) ? -1 : access(p, F_OK);
}

int store_io_flock(const store_io_t *io, int fd, int op)
{
    return fault(io, STORE_IO_LOCK, NULL) ? -1 : flock(fd, op);
}

DIR *store_io_opendir(const store_io_t *io, const char *p)
{
    return fault(io, STORE_IO_OPEN, p) ? NULL : opendir(p);
}

struct dirent *store_io_readdir(const store_io_t *io, DIR *d)
{
    return fault(io, STORE_IO_READ, NULL) ? NULL : readdir(d);
}

int store_io_closedir(const store_io_t *io, DIR *d)
{
    int e = io && io->fault ? io->fault(io->ctx, STORE_IO_CLOSE, NULL) : 0;
    int rc = closedir(d);
    if (e) {
        errno = e;
        return -1;
    }
    return rc;
}
