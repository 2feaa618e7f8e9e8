/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alerts_cmd.c - dmclient alerts [--json] | --ack ID.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_alerts_usage[] =
    "usage: dmclient [--state-dir DIR] alerts [--json]\n"
    "       dmclient [--state-dir DIR] alerts --ack ID\n"
    "\n"
    "List the generic alerts (1226) that plugins queued for the next session,\n"
    "oldest first, one per line:\n"
    "\n"
    "  ID<TAB>SOURCE<TAB>TYPE<TAB>FORMAT<TAB>DATA\n"
    "\n"
    "(backslash, tab, newline and carriage return in a field are written as\n"
    "\\\\, \\t, \\n and \\r), or with --json as an array of objects with the keys\n"
    "id, source, type, format, mark (null when absent) and data.  Nothing is\n"
    "printed ('[]' with --json) when no alert is queued.\n"
    "\n"
    "--ack ID forgets alert ID, as after the server answered it with 200.\n"
    "\n"
    "Exit status: 0 on success; 1 when the alerts cannot be read or ID is not\n"
    "queued; 2 on usage errors.\n";

typedef struct print_ctx {
    int json;
    unsigned long count;
} print_ctx_t;

/* One TAB-separated field: no raw TAB, newline or carriage return. */
static void text_field(const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        default:
            putchar(*s);
        }
    }
}

static int print_alert(void *ctx, const omadm_generic_alert_t *a)
{
    print_ctx_t *p = ctx;
    if (p->json) {
        printf("%s\n  {\"id\": ", p->count ? "," : "");
        cli_json_str(stdout, a->id);
        fputs(", \"source\": ", stdout);
        cli_json_str(stdout, a->source);
        fputs(", \"type\": ", stdout);
        cli_json_str(stdout, a->type);
        fputs(", \"format\": ", stdout);
        cli_json_str(stdout, a->format);
        fputs(", \"mark\": ", stdout);
        cli_json_str(stdout, a->mark);
        fputs(", \"data\": ", stdout);
        cli_json_str(stdout, a->data);
        putchar('}');
    } else {
        text_field(a->id);
        putchar('\t');
        text_field(a->source);
        putchar('\t');
        text_field(a->type);
        putchar('\t');
        text_field(a->format);
        putchar('\t');
        text_field(a->data);
        putchar('\n');
    }
    p->count++;
    return 0;
}

static int alerts_ack(cli_t *cli, const char *id)
{
    omadm_error_t err = omadm_alert_delivered(cli->dm, id);
    if (err == OMADM_E_NOT_FOUND) {
        fprintf(stderr, "dmclient: alerts: no queued alert '%s'\n", id);
        return 1;
    }
    if (err) {
        fprintf(stderr, "dmclient: alerts: --ack %s: %s\n", id, omadm_strerror(err));
        return 1;
    }
    return 0;
}

int cli_alerts_main(cli_t *cli, int argc, char **argv)
{
    print_ctx_t p = {0};
    const char *ack = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            p.json = 1;
        } else if (!strcmp(argv[i], "--ack") && !ack) {
            if (i + 1 == argc) {
                fprintf(stderr, "dmclient: alerts: --ack needs an alert ID\n%s",
                        cli_alerts_usage);
                return 2;
            }
            ack = argv[++i];
        } else if (!strncmp(argv[i], "--ack=", 6) && !ack) {
            ack = argv[i] + 6;
        } else {
            fprintf(stderr, "dmclient: alerts: unexpected argument '%s'\n%s", argv[i],
                    cli_alerts_usage);
            return 2;
        }
    }
    if (ack && p.json) {
        fprintf(stderr, "dmclient: alerts: --ack and --json do not go together\n%s",
                cli_alerts_usage);
        return 2;
    }
    if (ack && !*ack) {
        fprintf(stderr, "dmclient: alerts: --ack needs an alert ID\n%s", cli_alerts_usage);
        return 2;
    }
    if (ack)
        return alerts_ack(cli, ack);

    if (p.json)
        putchar('[');
    omadm_error_t err = omadm_alerts(cli->dm, print_alert, &p);
    if (p.json)
        puts(p.count ? "\n]" : "]");
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "dmclient: alerts: writing the list: %s\n", strerror(errno));
        return 1;
    }
    if (err) {
        fprintf(stderr, "dmclient: alerts: cannot read the queued alerts: %s\n",
                omadm_strerror(err));
        return 1;
    }
    return 0;
}
