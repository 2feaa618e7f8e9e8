/* SPDX-License-Identifier: Apache-2.0 */
/*
 * large_obj.h - reassembly of large objects (MoreData) from the server.
 */
#ifndef OMADM_LARGE_OBJ_H
#define OMADM_LARGE_OBJ_H

#include <stdbool.h>

#include "dispatch.h"

/* Look at a top-level command before it runs.  *handled: the command was
 * a chunk and has its Status (213/424/...).  Otherwise returns the command
 * to run: cmd itself, or the reassembled whole value after its last chunk.
 * A different command while an object is open sends Alert 1225 first. */
const syncml_cmd_t *lo_intercept(dm_exec_t *x, const syncml_cmd_t *cmd, bool *handled);
/* Forget an open object (session over). */
void lo_drop(omadm_t *dm);

#endif
