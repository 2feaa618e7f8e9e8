/* SPDX-License-Identifier: Apache-2.0 */
/*
 * support_dir.h - stores in directories, for the suites that run the
 * certificate store on disk: temporary directories, a listing that tells
 * whether two stores hold the same data, where two listings differ, and
 * store_check.
 */
#ifndef SUPPORT_DIR_H
#define SUPPORT_DIR_H

#include <stddef.h>

/* A new directory named after the program, on tmpfs when there is one
 * (every run of a sweep syncs its store), else in /tmp, into buf (64
 * bytes are enough).  0, or -1. */
int tdir_make(char *buf, size_t size);

/* Remove a directory tree (absent: nothing to do). */
void tdir_rm(const char *dir);

/* Every file below dir but the store's lock and the journal it keeps of
 * the last batch (journal.applied-<boot id>: what that batch did is in the
 * files listed), with its content, in name
 * order (malloc'ed): two stores hold the same data when their listings
 * match.  A file whose path below dir starts with names_only (NULL: none)
 * is listed by its name only. */
char *tdir_listing(const char *dir, const char *names_only);

/* The first line where the listing got differs from want, on stderr;
 * what names want ("the seed"). */
void tdir_diff(const char *what, const char *want, const char *got);

/* store_check of the store in dir (opened again on the default table,
 * which replays a durable journal), each problem on stderr; their
 * number. */
int tdir_store_check(const char *dir);

#endif
