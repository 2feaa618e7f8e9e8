/* SPDX-License-Identifier: Apache-2.0 */
/*
 * maxrss.c - peak resident memory of a whole process.
 *
 *   maxrss OUT PROGRAM [ARG...]
 *
 * Runs PROGRAM with its stdout on file OUT (created or truncated; "-":
 * this program's stdout), waits for it and prints "KB STATUS": its peak RSS
 * in KiB (wait4's ru_maxrss) and its exit status (128 + signal when a
 * signal ended it).  Exit 0 when it could run PROGRAM, else 1.
 *
 * Why a program of its own: Linux records the RSS of the address space a
 * process leaves at exec as the process's peak, so a child spawned by a big
 * process (a benchmark with its certificates and stores in memory) reports
 * that process's size.  This one is small and links only libc, so its
 * children start from almost nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: maxrss OUT PROGRAM [ARG...]\n", stderr);
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "maxrss: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        if (strcmp(argv[1], "-")) {
            int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
                fprintf(stderr, "maxrss: %s: %s\n", argv[1], strerror(errno));
                _exit(127);
            }
        }
        execv(argv[2], argv + 2);
        fprintf(stderr, "maxrss: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        fprintf(stderr, "maxrss: wait4: %s\n", strerror(errno));
        return 1;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%ld %d\n", ru.ru_maxrss, code);
    return 0;
}
