/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl.c - parse and check OMA DM ACL strings without allocating.
 */
#include "acl.h"

#include <string.h>

static const struct {
    const char *name;
    acl_right_t right;
} rights[] = {
    {"Add", ACL_ADD}, {"Delete", ACL_DELETE}, {"Exec", ACL_EXEC},
    {"Get", ACL_GET}, {"Replace", ACL_REPLACE},
};

const char *acl_right_name(acl_right_t right)
{
    for (size_t i = 0; i < sizeof rights / sizeof rights[0]; i++)
        if (rights[i].right == right)
            return rights[i].name;
    return "?";
}

static acl_right_t right_of(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof rights / sizeof rights[0]; i++)
        if (strlen(rights[i].name) == n && !memcmp(rights[i].name, s, n))
            return rights[i].right;
    return 0;
}

static bool id_char(char c)
{
    return c && c != '=' && c != '&' && c != '*' && c != '+' && c != ' ' && c != '\t' &&
           c != '\r' && c != '\n';
}

/* Validate "ids" = "*" | id ("+" id)*, n bytes. */
static bool ids_valid(const char *s, size_t n)
{
    if (n == 1 && s[0] == '*')
        return true;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            if (!run)
                return false;
            run = 0;
        } else if (id_char(s[i])) {
            run++;
        } else {
            return false;
        }
    }
    return run > 0;
}

bool acl_valid(const char *text)
{
    unsigned seen = 0;
    const char *p = text;
    if (!*p)
        return true;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq)
            return false;
        acl_right_t r = right_of(p, (size_t)(eq - p));
        if (!r || (seen & r))
            return false;
        seen |= r;
        if (!ids_valid(eq + 1, n - (size_t)(eq + 1 - p)))
            return false;
        if (!amp)
            return true;
        p = amp + 1;
    }
}

static bool ids_match(const char *s, size_t n, const char *id)
{
    size_t idlen = strlen(id);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '+') {
            size_t len = i - start;
            if (len == 1 && s[start] == '*')
                return true;
            if (len == idlen && !memcmp(s + start, id, len))
                return true;
            start = i + 1;
        }
    }
    return false;
}

/* The id list of right in text (n bytes), or NULL when right is absent. */
static const char *ids_of(const char *text, acl_right_t right, size_t *n)
{
    const char *p = text;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq && right_of(p, (size_t)(eq - p)) == right) {
            *n = len - (size_t)(eq + 1 - p);
            return eq + 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

bool acl_allows(const char *text, acl_right_t right, const char *server_id)
{
    size_t n = 0;
    const char *ids = ids_of(text, right, &n);
    return ids && ids_match(ids, n, server_id ? server_id : "");
}

bool acl_grants(const char *text, acl_right_t right)
{
    size_t n = 0;
    return ids_of(text, right, &n) && n > 0;
}
