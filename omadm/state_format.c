/* SPDX-License-Identifier: Apache-2.0 */
/*
 * state_format.c - the format line of persisted texts (state_format.h).
 */
#include "state_format.h"

#include <string.h>

state_fmt_t state_format(const char *line, const char *name, unsigned oldest, unsigned current,
                         unsigned *version)
{
    size_t n = strlen(name);
    if (!line || strncmp(line, name, n) || line[n] != ' ')
        return STATE_FMT_DAMAGED;
    const char *p = line + n + 1;
    unsigned long v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
        v = v * 10 + (unsigned long)(*p - '0');
    if (!digits || *p || line[n + 1] == '0')
        return STATE_FMT_DAMAGED;
    if (version)
        *version = (unsigned)v;
    if (v > current)
        return STATE_FMT_NEWER;
    if (v < oldest)
        return STATE_FMT_DAMAGED;
    return v == current ? STATE_FMT_CURRENT : STATE_FMT_OLDER;
}

state_fmt_t state_format_text(const void *text, size_t len, const char *name, unsigned oldest,
                              unsigned current, unsigned *version)
{
    char line[64];
    if (!text || !len)
        return STATE_FMT_DAMAGED;
    const char *nl = memchr(text, '\n', len < sizeof line ? len : sizeof line);
    if (!nl)
        return STATE_FMT_DAMAGED;
    memcpy(line, text, (size_t)(nl - (const char *)text));
    line[nl - (const char *)text] = 0;
    return state_format(line, name, oldest, current, version);
}
