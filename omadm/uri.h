/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uri.h - management-tree URIs: validation, normalisation, queries.
 */
#ifndef OMADM_URI_H
#define OMADM_URI_H

#include <stddef.h>

#include "arena.h"

typedef enum {
    URI_Q_NONE = 0,
    URI_Q_PROP,         /* ?prop=<name> */
    URI_Q_LIST          /* ?list=<kind> */
} uri_query_t;

typedef struct dm_uri {
    const char *text;       /* as received, trimmed */
    const char *path;       /* normalised: "" for the root, else "A/B/C" (no "./") */
    const char *norm;       /* "." or "./" + path, decoded, server's spelling */
    char **segs;            /* percent-decoded segment names */
    size_t n_segs;
    uri_query_t query;
    const char *query_value;/* property name or list kind */
} dm_uri_t;

typedef struct uri_limits {
    unsigned max_len;       /* MaxTotLen */
    unsigned max_seg_len;   /* MaxSegLen */
    unsigned max_depth;     /* MaxDepth */
} uri_limits_t;

/*
 * Parse a LocURI.  Returns 0, or the SyncML status to answer:
 *   400 empty segment, leading '/', "." or ".." segment, bad escape,
 *       unknown query syntax;
 *   414 longer than a limit.
 * Accepts "./A/B", "A/B", "." and "./".  Strings live in the arena.
 */
int uri_parse(arena_t *a, const char *text, const uri_limits_t *lim, dm_uri_t *out);

/* Percent-encode one node name for output (unreserved and a few safe
 * characters stay as they are).  Appends to b. */
int uri_append_escaped(buf_t *b, const char *name);

#endif
