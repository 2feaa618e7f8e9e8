/* SPDX-License-Identifier: Apache-2.0 */
/*
 * durability.c - see durability.h.  System calls rather than libc's
 * functions, which these definitions replace.
 */
#include "durability.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* pwrite's offset goes to the system call as one argument */
_Static_assert(sizeof(off_t) == 8, "durability.c needs a 64-bit off_t");

dur_counts_t dur;
bool dur_skip;
static bool changed = true;     /* a change since the last barrier */

void dur_new_batch(void)
{
    changed = true;
}

static int barrier(long nr, int fd, uint64_t *calls)
{
    if (dur_skip)
        return 0;
    if (changed)
        dur.batches++;
    changed = false;
    int64_t t0 = bench_now_ns();
    long rc = syscall(nr, fd);
    dur.barrier_ns += bench_now_ns() - t0;
    dur.barriers++;
    (*calls)++;
    return (int)rc;
}

int fsync(int fd)
{
    return barrier(SYS_fsync, fd, &dur.fsyncs);
}

int fdatasync(int fd)
{
    return barrier(SYS_fdatasync, fd, &dur.fdatasyncs);
}

int syncfs(int fd)
{
    return barrier(SYS_syncfs, fd, &dur.syncfss);
}

static long change(long rc)
{
    dur.changes++;
    changed = true;
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    return change(syscall(SYS_write, fd, buf, n));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return change(syscall(SYS_pwrite64, fd, buf, n, off));
}

int ftruncate(int fd, off_t len)
{
    return (int)change(syscall(SYS_ftruncate, fd, len));
}

int rename(const char *from, const char *to)
{
    return (int)change(syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0));
}

int unlink(const char *p)
{
    return (int)change(syscall(SYS_unlinkat, AT_FDCWD, p, 0));
}
