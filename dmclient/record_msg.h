/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record_msg.h - what dmclient session --record reads in a message
 * (record_msg.c): the values it masks and the facts that tell whether
 * `dmclient process` replays an exchange.  For record.c only.
 */
#ifndef DMCLIENT_RECORD_MSG_H
#define DMCLIENT_RECORD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte strings masked wherever they occur. */
typedef struct cli_record_value {
    uint8_t *p;      /* owned; wiped by cli_record_values_free */
    size_t n;
} cli_record_value_t;

typedef struct cli_record_values {
    cli_record_value_t *v;
    size_t n;
    size_t masked;   /* text pieces masked by cli_record_mask */
    bool oom;        /* an allocation failed: a value may be missing */
} cli_record_values_t;

/* p, white space around it left out, when it has at least min bytes and
 * is not all 'X' (masked already); also its XML-escaped form when that
 * differs.  Copied. */
void cli_record_values_add(cli_record_values_t *vs, const uint8_t *p, size_t n, size_t min);
/* Every occurrence of a value in p masked; how many. */
size_t cli_record_values_blank(const cli_record_values_t *vs, uint8_t *p, size_t n);
/* Whether p holds a value. */
bool cli_record_values_in(const cli_record_values_t *vs, const uint8_t *p, size_t n);
void cli_record_values_free(cli_record_values_t *vs);

/* Every byte of p but white space becomes 'X'. */
void cli_record_blank(uint8_t *p, size_t n);
/* WBXML (version byte 1..3) rather than XML. */
bool cli_record_is_wbxml(const uint8_t *p, size_t n);

/* msg (XML or WBXML) masked in place: the content of every Cred's Data, of
 * every NextNonce and the Data of every Item whose Target or Source LocURI
 * ends in /Challenge (lengths kept); what was masked, when min_value bytes
 * or more, joins vs; then every value of vs in msg is masked too.  A
 * message that is not well-formed is masked up to where it breaks. */
void cli_record_mask(cli_record_values_t *vs, uint8_t *msg, size_t len, size_t min_value);

/* What a message says, as far as the replay is concerned. */
typedef struct cli_record_facts {
    bool final;          /* SyncBody ends with Final */
    bool more_data;      /* a MoreData anywhere */
    bool pkg1_alert;     /* an Alert 1200 or 1201 (package 1) */
    bool alert_1225;     /* an Alert 1225 (a large object broken off) */
    int status0;         /* code of the first Status for a SyncHdr (CmdRef 0), -1: none */
    char session_id[24]; /* the SyncHdr's SessionID, "" when longer */
} cli_record_facts_t;

cli_record_facts_t cli_record_facts(const uint8_t *msg, size_t len);

#endif
