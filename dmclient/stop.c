/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stop.c - SIGTERM and SIGINT for the commands that finish what they are
 * doing before they stop (run, session, notify).  The signals stay blocked
 * for the whole command, so no system call is interrupted half way; what
 * waits (for the state lock, on the network, between steps and retries)
 * looks for one pending at least every STOP_POLL_MS and gives up.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cli.h"

static sigset_t stop_set;
static bool enabled; /* cli_stop_block() was called */
static bool stopped; /* a stop signal was taken by cli_stop_wait() */

int cli_stop_block(void)
{
    struct sigaction cur;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    /* a SIGINT ignored at start (a background job of a non-interactive
     * shell) stays ignored: blocked, it would be queued, not dropped */
    if (sigaction(SIGINT, NULL, &cur) || cur.sa_handler != SIG_IGN)
        sigaddset(&stop_set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &stop_set, NULL))
        return -1;
    enabled = true;
    return 0;
}

bool cli_stop_enabled(void)
{
    return enabled;
}

bool cli_stop_pending(void)
{
    if (!enabled)
        return false;
    if (stopped)
        return true;
    sigset_t pending;
    if (sigpending(&pending))
        return false;
    return sigismember(&pending, SIGTERM) == 1 ||
           (sigismember(&stop_set, SIGINT) == 1 && sigismember(&pending, SIGINT) == 1);
}

void cli_stop_set(void)
{
    stopped = true;
}

static struct timespec mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

int cli_stop_wait(int64_t ms)
{
    if (stopped)
        return 1;
    struct timespec start = mono_now();
    for (;;) {
        struct timespec now = mono_now(), left;
        int64_t ns = ms * 1000000LL - ((int64_t)(now.tv_sec - start.tv_sec) * 1000000000LL +
                                       (now.tv_nsec - start.tv_nsec));
        if (ns < 0)
            ns = 0;
        left.tv_sec = (time_t)(ns / 1000000000LL);
        left.tv_nsec = (long)(ns % 1000000000LL);
        if (!enabled) {
            if (ns > 0 && nanosleep(&left, NULL) && errno == EINTR)
                continue;
            return 0;
        }
        if (sigtimedwait(&stop_set, NULL, &left) > 0) {
            stopped = true;
            return 1;
        }
        if (errno == EINTR && ns > 0)
            continue; /* another signal: wait for the rest */
        return 0;     /* EAGAIN: time is up */
    }
}
