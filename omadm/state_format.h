/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state_format.h - the format line every persisted text starts with,
 * "<name> <version>" ("omadm-tree 2", "omadm-cert 1" ...), and what a
 * build makes of it: its own version, an older one it reads, a newer one
 * it must leave alone, or no such line at all (docs/state.md).
 */
#ifndef OMADM_STATE_FORMAT_H
#define OMADM_STATE_FORMAT_H

#include <stddef.h>

typedef enum {
    STATE_FMT_DAMAGED = -1, /* not "<name> <version>", or a version below the oldest */
    STATE_FMT_CURRENT = 0,  /* the version this build writes */
    STATE_FMT_OLDER = 1,    /* an older version this build reads */
    STATE_FMT_NEWER = 2     /* a later version: read nothing of it, change nothing */
} state_fmt_t;

/* Classify line (the text's first line, without its newline; NULL: an
 * empty text) as a format line of name, for a build that reads versions
 * oldest..current.  The version is decimal, 1 to 999999999, without
 * leading zeros; *version (may be NULL) gets it when the line has one. */
state_fmt_t state_format(const char *line, const char *name, unsigned oldest, unsigned current,
                         unsigned *version);

/* state_format of the first line of text (len bytes, not necessarily
 * NUL-terminated; a first line of 64 characters or more is no format
 * line). */
state_fmt_t state_format_text(const void *text, size_t len, const char *name, unsigned oldest,
                              unsigned current, unsigned *version);

#endif
