/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_cmd.c - dmclient store list|show|export|paths|check, through the
 * public certificate store API (omadm_certstore.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

const char cli_store_usage[] =
    "usage: dmclient [--state-dir DIR] store COMMAND\n"
    "\n"
    "The certificate store that the CertificateStore, RootCATrustedCertificates\n"
    "and ClientCertificateInstall CSPs manage.\n"
    "\n"
    "commands:\n"
    "  list [STORE] [--json]      certificates of one store, or of all\n"
    "  show THUMBPRINT [--json]   one certificate: stores, names, dates, who installed\n"
    "                             it and when, whether its private key is stored\n"
    "  export STORE               the store's certificates as PEM on stdout\n"
    "  export STORE --key THUMBPRINT\n"
    "                             one certificate and its private key's TPM blob\n"
    "                             (TSS2 PRIVATE KEY; a software key is not exported)\n"
    "  paths [--json]             CApath directories and PEM bundles for other software\n"
    "  check [--repair] [--json]  verify records, keys, CApath directories, bundles and\n"
    "                             file modes agree (exit 1 if not); --repair first\n"
    "                             fixes what it can (modes, temp files, CApath\n"
    "                             directories and bundles from the records)\n"
    "\n"
    "STORE: root (Root/System), ca (CA/System), my-user (My/User), my-system\n"
    "(My/System), trustedpublisher, trustedpeople, untrusted, user-ca,\n"
    "user-trustedpublisher, user-trustedpeople, user-untrusted; the labels in\n"
    "parentheses work too.\n"
    "THUMBPRINT: the SHA-1 fingerprint, 40 hex digits in any case; ':' or spaces\n"
    "between them are allowed, as `openssl x509 -noout -fingerprint -sha1` prints it.\n"
    "\n"
    "Exit status: 0 done; 1 failed (a certificate that is not there, a store that\n"
    "cannot be read, a record that list could not read and skipped (one warning on\n"
    "stderr each), problems found by check); 2 usage errors.\n";

/* ---- arguments ---- */

typedef struct args {
    const char *sub;       /* the subcommand, for messages */
    bool json, repair;
    const char *pos[1];    /* positional arguments */
    int n_pos;
} args_t;

/* The arguments of a subcommand: --json (when json_ok), --repair (when
 * repair_ok) and at most max_pos positional ones.  0, or 2 after a
 * one-line error. */
static int parse_args(args_t *a, int argc, char **argv, bool json_ok, bool repair_ok, int max_pos)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (json_ok && !strcmp(s, "--json")) {
            a->json = true;
        } else if (repair_ok && !strcmp(s, "--repair")) {
            a->repair = true;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "dmclient: store %s: unknown option '%s'\n", a->sub, s);
            return 2;
        } else if (a->n_pos == max_pos) {
            fprintf(stderr, "dmclient: store %s: unexpected argument '%s'\n", a->sub, s);
            return 2;
        } else {
            a->pos[a->n_pos++] = s;
        }
    }
    return 0;
}

/* A store named on the command line: 0, or 2 after a one-line error. */
static int store_arg(const args_t *a, const char *name)
{
    if (omadm_certstore_kind_find(name, NULL) == OMADM_OK)
        return 0;
    fprintf(stderr, "dmclient: store %s: unknown store '%s'\n", a->sub, name);
    return 2;
}

/* t as ISO 8601 UTC; "unknown" for 0. */
static const char *iso_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "%s", t ? "?" : "unknown");
    return buf;
}

/* ---- list, show ---- */

typedef struct out {
    bool json;
    bool first;
} out_t;

/* One certificate as a JSON array element; the array opens with the
 * first. */
static void json_cert(const omadm_cert_info_t *c, bool first)
{
    printf("%s\n  {\"store\": ", first ? "[" : ",");
    cli_json_str(stdout, c->store);
    printf(", \"thumbprint\": ");
    cli_json_str(stdout, c->thumbprint);
    printf(", \"name\": ");
    cli_json_str(stdout, c->name);
    printf(", \"subject\": ");
    cli_json_str(stdout, c->subject);
    printf(", \"issuer\": ");
    cli_json_str(stdout, c->issuer);
    printf(", \"valid_from\": ");
    cli_json_str(stdout, c->valid_from);
    printf(", \"valid_to\": ");
    cli_json_str(stdout, c->valid_to);
    printf(", \"template\": ");
    cli_json_str(stdout, c->template_name);
    printf(", \"installed_by\": ");
    cli_json_str(stdout, c->installed_by);
    printf(", \"added\": %lld, \"private_key\": %s}", (long long)c->installed_at,
           c->has_key ? "true" : "false");
}

static int list_one(void *ctx, const omadm_cert_info_t *c)
{
    out_t *o = ctx;
    if (o->json)
        json_cert(c, o->first);
    else
        printf("%-16s %s  %s  %s\n", c->store, c->thumbprint, c->valid_to, c->subject);
    o->first = false;
    return 0;
}

/* A record the listing skipped: one line on stderr (also with --json,
 * whose stdout stays the array of what could be read). */
static void list_skipped(void *ctx, const omadm_cert_skipped_t *rec)
{
    (void)ctx;
    fflush(stdout); /* the lines so far first, when both go to one file */
    fprintf(stderr, "dmclient: store list: warning: %s: record %s cannot be read: %s\n",
            rec->store_label, rec->path, rec->reason);
}

static int cmd_list(omadm_certstore_t *cs, int argc, char **argv)
{
    args_t a = {.sub = "list"};
    int rc = parse_args(&a, argc, argv, true, false, 1);
    if (rc || (a.n_pos && (rc = store_arg(&a, a.pos[0]))))
        return rc;
    out_t o = {.json = a.json, .first = true};
    omadm_error_t e = omadm_certstore_list_checked(cs, a.n_pos ? a.pos[0] : NULL, list_one,
                                                   list_skipped, &o);
    if (o.json)
        puts(o.first ? "[]" : "\n]");
    if (e == OMADM_E_CORRUPT)
        return 1; /* each record said so; the others are listed */
    if (e) {
        fprintf(stderr, "dmclient: store list: %s\n", omadm_strerror(e));
        return 1;
    }
    return 0;
}

static int show_one(void *ctx, const omadm_cert_info_t *c)
{
    out_t *o = ctx;
    char when[32];
    if (o->json)
        return list_one(ctx, c);
    if (o->first)
        printf("thumbprint:   %s\nsubject:      %s\nissuer:       %s\n"
               "valid from:   %s\nvalid to:     %s\ntemplate:     %s\n",
               c->thumbprint, c->subject, c->issuer, c->valid_from, c->valid_to,
               c->template_name);
    printf("store:        %s (%s), node name %s, installed by %s\n"
           "installed at: %s\n",
           c->store_label, c->store, c->name, *c->installed_by ? c->installed_by : "(unknown)",
           iso_time(c->installed_at, when, sizeof when));
    if (c->has_key)
        printf("private key:  present (not shown)\n");
    o->first = false;
    return 0;
}

static int cmd_show(omadm_certstore_t *cs, int argc, char **argv)
{
    args_t a = {.sub = "show"};
    char thumb[OMADM_THUMBPRINT_LEN + 1];
    int rc = parse_args(&a, argc, argv, true, false, 1);
    if (rc)
        return rc;
    if (!a.n_pos) {
        fprintf(stderr, "dmclient: store show: expected a thumbprint (40 hex digits)\n");
        return 2;
    }
    if (omadm_certstore_thumbprint_parse(a.pos[0], thumb)) {
        fprintf(stderr, "dmclient: store show: '%s' is not a thumbprint (40 hex digits, ':' or "
                        "spaces allowed)\n", a.pos[0]);
        return 2;
    }
    out_t o = {.json = a.json, .first = true};
    omadm_error_t e = omadm_certstore_show(cs, NULL, thumb, show_one, &o);
    if (o.json && !o.first)
        puts("\n]");
    if (e == OMADM_E_NOT_FOUND) {
        fprintf(stderr, "dmclient: store show: %s: no such certificate\n", thumb);
        return 1;
    }
    if (e) {
        fprintf(stderr, "dmclient: store show: %s\n", omadm_strerror(e));
        return 1;
    }
    return 0;
}

/* ---- export ---- */

/* export STORE --key THUMBPRINT: the certificate and its key's TPM blob,
 * which is useless without that TPM; a software key (the plaintext) is
 * never written out. */
static int export_with_key(omadm_certstore_t *cs, const char *store, const char *thumb)
{
    char t[OMADM_THUMBPRINT_LEN + 1];
    if (omadm_certstore_thumbprint_parse(thumb, t)) {
        fprintf(stderr, "dmclient: store export: not a thumbprint: %s\n", thumb);
        return 2;
    }
    omadm_cert_identity_t id;
    omadm_error_t e = omadm_certstore_identity(cs, store, t, &id);
    if (e) {
        fprintf(stderr, "dmclient: store export: %s: %s\n", t, omadm_strerror(e));
        return 1;
    }
    int rc = 0;
    if (!strstr(id.key_pem, "-----BEGIN TSS2 PRIVATE KEY-----")) {
        fprintf(stderr, "dmclient: store export: %s: its private key is not held by a TPM; "
                        "a software key is not exported\n", t);
        rc = 1;
    } else {
        fwrite(id.cert_pem, 1, id.cert_pem_len, stdout);
        fwrite(id.key_pem, 1, id.key_pem_len, stdout);
    }
    omadm_certstore_buffer_free(id.cert_pem);
    omadm_certstore_buffer_free(id.key_pem);
    return rc;
}

static int cmd_export(omadm_certstore_t *cs, int argc, char **argv)
{
    args_t a = {.sub = "export"};
    const char *key = NULL;
    /* --key THUMBPRINT, taken out before the common arguments */
    char *rest[8];
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--key")) {
            if (i + 1 >= argc || key) {
                fprintf(stderr, "dmclient: store export: --key needs one THUMBPRINT\n");
                return 2;
            }
            key = argv[++i];
        } else if (n < 8) {
            rest[n++] = argv[i];
        } else {
            fprintf(stderr, "dmclient: store export: too many arguments\n");
            return 2;
        }
    }
    int rc = parse_args(&a, n, rest, false, false, 1);
    if (rc)
        return rc;
    if (!a.n_pos) {
        fprintf(stderr, "dmclient: store export: expected one store name\n");
        return 2;
    }
    if ((rc = store_arg(&a, a.pos[0])))
        return rc;
    if (key)
        return export_with_key(cs, a.pos[0], key);
    char *pem = NULL;
    size_t len = 0;
    omadm_error_t e = omadm_certstore_export_store(cs, a.pos[0], &pem, &len);
    if (e) {
        fprintf(stderr, "dmclient: store export: %s\n", omadm_strerror(e));
        return 1;
    }
    fwrite(pem, 1, len, stdout);
    omadm_certstore_buffer_free(pem);
    return 0;
}

/* ---- paths ---- */

static int cmd_paths(omadm_certstore_t *cs, int argc, char **argv)
{
    args_t a = {.sub = "paths"};
    int rc = parse_args(&a, argc, argv, true, false, 0);
    if (rc)
        return rc;
    omadm_certstore_kind_t k;
    bool first = true;
    if (a.json)
        fputs("[", stdout);
    for (size_t i = 0; omadm_certstore_kind(i, &k) == OMADM_OK; i++) {
        char capath[4096], bundle[4096];
        if (!k.trust)
            continue;
        omadm_error_t e = omadm_certstore_capath(cs, k.id, capath, sizeof capath);
        if (!e)
            e = omadm_certstore_bundle(cs, k.id, bundle, sizeof bundle);
        if (e) {
            if (a.json)
                puts(first ? "]" : "\n]");
            fprintf(stderr, "dmclient: store paths: %s: %s\n", k.label, omadm_strerror(e));
            return 1;
        }
        if (a.json) {
            printf("%s\n  {\"store\": ", first ? "" : ",");
            cli_json_str(stdout, k.id);
            printf(", \"label\": ");
            cli_json_str(stdout, k.label);
            printf(", \"capath\": ");
            cli_json_str(stdout, capath);
            printf(", \"bundle\": ");
            cli_json_str(stdout, bundle);
            putchar('}');
        } else {
            printf("%-24s CApath %s\n%-24s bundle %s\n", k.label, capath, "", bundle);
        }
        first = false;
    }
    if (a.json)
        puts(first ? "]" : "\n]");
    return 0;
}

/* ---- check ---- */

static void problem_line(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "dmclient: store check: %s\n", problem);
}

static void problem_json(void *ctx, const char *problem)
{
    bool *first = ctx;
    printf("%s\n    ", *first ? "" : ",");
    cli_json_str(stdout, problem);
    *first = false;
}

static int cmd_check(omadm_certstore_t *cs, int argc, char **argv)
{
    args_t a = {.sub = "check"};
    int rc = parse_args(&a, argc, argv, true, true, 0);
    if (rc)
        return rc;
    const char *dir = omadm_certstore_dir(cs);
    unsigned flags = a.repair ? OMADM_CERTSTORE_CHECK_REPAIR : 0, problems = 0;
    omadm_error_t e;
    if (a.json) {
        bool first = true;
        fputs("{\"store\": ", stdout);
        cli_json_str(stdout, dir);
        fputs(", \"problems\": [", stdout);
        e = omadm_certstore_check(cs, flags, problem_json, &first, &problems);
        printf("%s], \"consistent\": %s}\n", first ? "" : "\n  ",
               e == OMADM_OK ? "true" : "false");
    } else {
        e = omadm_certstore_check(cs, flags, problem_line, NULL, &problems);
        if (e == OMADM_OK)
            printf("store %s is consistent\n", dir);
        else if (e == OMADM_E_CORRUPT)
            fprintf(stderr, "dmclient: store check: %u problem%s in %s\n", problems,
                    problems == 1 ? "" : "s", dir);
    }
    if (e && e != OMADM_E_CORRUPT)
        fprintf(stderr, "dmclient: store check: %s\n", omadm_strerror(e));
    return e ? 1 : 0;
}

int cli_store_main(cli_t *cli, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(omadm_certstore_t *cs, int argc, char **argv);
    } cmds[] = {
        {"list", cmd_list},   {"show", cmd_show},   {"export", cmd_export},
        {"paths", cmd_paths}, {"check", cmd_check},
    };
    if (argc < 2) {
        fputs(cli_store_usage, stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(cli->certs, argc - 1, argv + 1);
    fprintf(stderr, "dmclient: store: unknown command '%s'\n%s", argv[1], cli_store_usage);
    return 2;
}
