/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl.h - OMA DM ACLs: "Add=*&Get=srv1+srv2&Replace=srv1".
 */
#ifndef OMADM_ACL_H
#define OMADM_ACL_H

#include <stdbool.h>

typedef enum {
    ACL_ADD = 1,
    ACL_DELETE = 2,
    ACL_EXEC = 4,
    ACL_GET = 8,
    ACL_REPLACE = 16,
    ACL_ALL = 31
} acl_right_t;

/* True when text follows the grammar (empty text is valid: "inherit"). */
bool acl_valid(const char *text);

/* True when the ACL grants right to server_id ('*' grants everyone). */
bool acl_allows(const char *text, acl_right_t right, const char *server_id);

/* True when the ACL grants right to anyone at all ('*' or some id). */
bool acl_grants(const char *text, acl_right_t right);

/* "Get" for ACL_GET etc. */
const char *acl_right_name(acl_right_t right);

#endif
