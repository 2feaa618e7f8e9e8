/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_cmd.c - dmclient store list|show|export|paths|check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "store/cert.h"
#include "store/store.h"

const char cli_store_usage[] =
    "usage: dmclient [--state-dir DIR] store COMMAND\n"
    "\n"
    "The certificate store that the CertificateStore and RootCATrustedCertificates\n"
    "CSPs manage.\n"
    "\n"
    "commands:\n"
    "  list [STORE] [--json]  certificates of one store, or of all\n"
    "  show THUMBPRINT        one certificate: stores, names, dates, installer\n"
    "  export STORE           the store's certificates as PEM on stdout\n"
    "  paths                  CApath directories and PEM bundles for other software\n"
    "  check                  verify records, CApath and bundles agree (exit 1 if not)\n"
    "\n"
    "STORE: root (Root/System), ca (CA/System), my-user (My/User), my-system\n"
    "(My/System), trustedpublisher, trustedpeople, untrusted, user-ca,\n"
    "user-trustedpublisher, user-trustedpeople, user-untrusted; the labels in\n"
    "parentheses work too.\n";

typedef struct list_ctx {
    const store_kind_t *kind;
    bool json;
    bool first;
    unsigned long count;
} list_ctx_t;

static int print_cert(void *ctx, const store_rec_t *rec)
{
    list_ctx_t *l = ctx;
    cert_info_t info;
    if (cert_info_from_der(rec->der, rec->der_len, &info))
        return 0;
    if (l->json) {
        printf("%s\n  {\"store\": ", l->first ? "" : ",");
        cli_json_str(stdout, l->kind->id);
        printf(", \"thumbprint\": ");
        cli_json_str(stdout, rec->thumb);
        printf(", \"name\": ");
        cli_json_str(stdout, rec->name);
        printf(", \"subject\": ");
        cli_json_str(stdout, info.issued_to);
        printf(", \"issuer\": ");
        cli_json_str(stdout, info.issued_by);
        printf(", \"valid_from\": \"%s\", \"valid_to\": \"%s\", \"template\": ", info.valid_from,
               info.valid_to);
        cli_json_str(stdout, info.template_name);
        printf(", \"installed_by\": ");
        cli_json_str(stdout, rec->server);
        printf(", \"added\": %lld}", (long long)rec->added);
    } else {
        printf("%-16s %s  %s  %s\n", l->kind->id, rec->thumb, info.valid_to, info.issued_to);
    }
    l->first = false;
    l->count++;
    cert_info_free(&info);
    return 0;
}

static int store_list(store_t *s, int argc, char **argv)
{
    list_ctx_t l = {.first = true};
    const store_kind_t *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            l.json = true;
        } else if (!only && (only = store_kind_find(argv[i]))) {
            continue;
        } else {
            fprintf(stderr, "dmclient: store list: unknown store '%s'\n", argv[i]);
            return 2;
        }
    }
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    if (l.json)
        fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        if (only && only != &k[i])
            continue;
        l.kind = &k[i];
        if (store_each(s, k[i].id, print_cert, &l)) {
            fprintf(stderr, "dmclient: store list: cannot read %s\n", k[i].label);
            return 1;
        }
    }
    if (l.json)
        puts(l.first ? "]" : "\n]");
    return 0;
}

static int store_show(store_t *s, int argc, char **argv)
{
    char thumb[CERT_THUMB_HEX + 1];
    if (argc != 2 || !cert_thumb_normalise(argv[1], thumb)) {
        fprintf(stderr, "dmclient: store show: expected a 40-digit hex thumbprint\n");
        return 2;
    }
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        store_rec_t rec;
        cert_info_t info;
        if (store_get(s, k[i].id, thumb, &rec) != 0)
            continue;
        if (!found++ && !cert_info_from_der(rec.der, rec.der_len, &info)) {
            printf("thumbprint:   %s\nsubject:      %s\nissuer:       %s\n"
                   "valid from:   %s\nvalid to:     %s\ntemplate:     %s\n",
                   thumb, info.issued_to, info.issued_by, info.valid_from, info.valid_to,
                   info.template_name);
            cert_info_free(&info);
        }
        printf("store:        %s (%s), node name %s, installed by %s\n", k[i].label, k[i].id,
               rec.name, *rec.server ? rec.server : "(unknown)");
        char *key = store_get_key(s, k[i].id, thumb);
        if (key) {
            printf("private key:  present (not shown)\n");
            free(key);
        }
        store_rec_free(&rec);
    }
    if (!found) {
        fprintf(stderr, "dmclient: store show: %s: no such certificate\n", thumb);
        return 1;
    }
    return 0;
}

static int print_pem(void *ctx, const store_rec_t *rec)
{
    size_t len = 0;
    char *pem = cert_pem(rec->der, rec->der_len, &len);
    (void)ctx;
    if (!pem)
        return -1;
    fwrite(pem, 1, len, stdout);
    free(pem);
    return 0;
}

static int store_export(store_t *s, int argc, char **argv)
{
    const store_kind_t *k = argc == 2 ? store_kind_find(argv[1]) : NULL;
    if (!k) {
        fprintf(stderr, "dmclient: store export: expected one store name\n");
        return 2;
    }
    return store_each(s, k->id, print_pem, NULL) ? 1 : 0;
}

static int store_paths(store_t *s)
{
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    for (size_t i = 0; i < n; i++) {
        char capath[4096], bundle[4096];
        if (!k[i].trust)
            continue;
        store_capath(s, k[i].id, capath, sizeof capath);
        store_bundle(s, k[i].id, bundle, sizeof bundle);
        printf("%-24s CApath %s\n%-24s bundle %s\n", k[i].label, capath, "", bundle);
    }
    return 0;
}

static void print_problem(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "dmclient: store check: %s\n", problem);
}

static int store_check_cmd(store_t *s)
{
    int problems = store_check(s, 0, print_problem, NULL);
    if (problems) {
        fprintf(stderr, "dmclient: store check: %d problem%s in %s\n", problems,
                problems == 1 ? "" : "s", store_dir(s));
        return 1;
    }
    printf("store %s is consistent\n", store_dir(s));
    return 0;
}

int cli_store_main(cli_t *cli, int argc, char **argv)
{
    store_t *s = omadm_certstore_store(cli->certs);
    if (argc < 2) {
        fputs(cli_store_usage, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "list"))
        return store_list(s, argc - 1, argv + 1);
    if (!strcmp(sub, "show"))
        return store_show(s, argc - 1, argv + 1);
    if (!strcmp(sub, "export"))
        return store_export(s, argc - 1, argv + 1);
    if (!strcmp(sub, "paths") && argc == 2)
        return store_paths(s);
    if (!strcmp(sub, "check") && argc == 2)
        return store_check_cmd(s);
    fprintf(stderr, "dmclient: store: unknown command '%s'\n%s", sub, cli_store_usage);
    return 2;
}
