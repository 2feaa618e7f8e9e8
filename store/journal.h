/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.h - redo journal for store batches.
 *
 * A batch of file operations is written to <dir>/journal (via a temp file
 * and rename, with a SHA-256 trailer) and made durable by one barrier (a
 * sync of the store's filesystem), then applied, and kept as
 * journal.applied-<boot id> until the next batch's barrier has made its
 * changes durable too: one barrier per batch.  Every operation is
 * idempotent, so a journal found at open is simply applied again (one
 * applied in the current boot needs nothing: its changes are in the page
 * cache); a journal without a valid trailer was never applied and is
 * dropped.  Without a boot id (no /proc) a batch takes a second barrier
 * and its journal is removed.
 */
#ifndef OMADM_STORE_JOURNAL_H
#define OMADM_STORE_JOURNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "omadm.h"
#include "store_io.h"

typedef struct journal journal_t;

/* The format line of a journal: "omadm-journal 1". */
#define JOURNAL_FORMAT "omadm-journal"
#define JOURNAL_WRITES "omadm-journal 1"

/* The journal's memory comes from plat, its file operations go through io
 * (both kept: they must outlive j; io may be NULL). */
journal_t *journal_new(const omadm_platform_t *plat, const store_io_t *io);
void journal_free(journal_t *j);
/* Replace a whole file (written to a temp name, then renamed). */
int journal_write_file(journal_t *j, const char *rel, const void *data, size_t len, mode_t mode);
/* Write data at off and cut the file there (appending to a bundle). */
int journal_append_at(journal_t *j, const char *rel, off_t off, const void *data, size_t len);
/* Overwrite bytes in place (blanking a bundle block). */
int journal_overwrite(journal_t *j, const char *rel, off_t off, const void *data, size_t len);
int journal_unlink(journal_t *j, const char *rel);
/* Nothing was recorded. */
int journal_empty(const journal_t *j);
/* Write, sync, apply, keep as applied (without a boot id: sync, remove).
 * 0 done; 1 committed but not applied yet: the journal is in place and
 * journal_recover() finishes it (durable, unless the sync itself failed);
 * -1 nothing happened (*why). */
int journal_commit(journal_t *j, const char *dir, const char **why);
/* At open: apply again the journal applied in another boot and a complete
 * journal, drop an incomplete one (read into memory from plat). */
int journal_recover(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                    const char **why);
/* Whether dir/name is a journal of a newer format than this library reads
 * (recovery keeps it, neither applied nor dropped): 1 and *version, 0 not
 * (or absent), -1 it cannot be read. */
int journal_format(const omadm_platform_t *plat, const store_io_t *io, const char *dir,
                   const char *name, unsigned *version);
/* "journal.applied-<boot id>" of the current boot into buf: 0, or -1 when
 * the system tells no boot id (or buf is too small). */
int journal_applied_name(char *buf, size_t size);

#endif
