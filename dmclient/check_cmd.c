/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check_cmd.c - dmclient check [--repair] [--json]: the whole state
 * directory verified without starting an engine, so that a tree the engine
 * refuses is looked at too: dmclient's own files (temp files, modes), the
 * engine's values (omadm_state_check: tree, session, auth), the certificate
 * store with its enrollment records (omadm_certstore_check).  One line per
 * problem, naming the file; --repair first fixes what can be fixed without
 * losing anything that can still be read, and says what it did
 * (docs/state.md).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char cli_check_usage[] =
    "usage: dmclient [--state-dir DIR] check [--repair] [--json]\n"
    "\n"
    "Verify the state directory: the tree (its manifest and every bucket), the\n"
    "session and authentication state, the certificate store (records, keys,\n"
    "CApath directories, bundles, journal, file modes) and the enrollment\n"
    "records; files of a newer format than this dmclient reads; temp files an\n"
    "interrupted write left; the modes of the state files.  One line per problem\n"
    "on stderr, naming the file.  Older formats this dmclient reads are noted on\n"
    "stdout (they are written in the current format when they next change).\n"
    "\n"
    "  --repair   first fix what can be fixed without losing anything that can\n"
    "             still be read (temp files, modes, a damaged session or auth\n"
    "             state, CApath directories and bundles written anew from the\n"
    "             records), say on stdout what was done, report what is left\n"
    "  --json     {\"state\", \"consistent\", \"problems\", \"repaired\", \"notes\"}\n"
    "             on stdout\n"
    "\n"
    "Nothing of a newer format is ever changed.  Exit status: 0 consistent;\n"
    "1 problems found (or left by --repair); 2 usage errors.\n";

typedef struct list {
    char **v;
    size_t n, cap;
} list_t;

typedef struct report {
    const cli_t *cli;
    const char *store_dir;
    bool repair;
    list_t problems, repaired, notes;
    bool oom;
} report_t;

static void add(report_t *r, list_t *l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(report_t *r, list_t *l, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        r->oom = true;
        return;
    }
    /* one line each, whatever a file name holds */
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(s);
            r->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* ---- dmclient's own files ---- */

/* A storage key of the engine (one file each, state.c), or the lock. */
static bool state_file(const char *name)
{
    static const char *const fixed[] = {"tree", "session", "auth", "lock"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (!strcmp(name, fixed[i]))
            return true;
    /* tree.<n>.a, tree.<n>.b */
    if (strncmp(name, "tree.", 5))
        return false;
    const char *p = name + 5;
    size_t digits = strspn(p, "0123456789");
    return digits && digits < 6 && p[digits] == '.' && (p[digits + 1] == 'a' || p[digits + 1] == 'b') &&
           !p[digits + 2];
}

/* ".<key>.tmp": what cli_write_atomic leaves when it is cut off before its
 * rename.  Never read, never a value's current text. */
static bool temp_file(const char *name)
{
    size_t n = strlen(name);
    if (n < 6 || name[0] != '.' || strcmp(name + n - 4, ".tmp"))
        return false;
    char key[256];
    if (n - 5 >= sizeof key)
        return false;
    memcpy(key, name + 1, n - 5);
    key[n - 5] = 0;
    return state_file(key);
}

static void check_own_file(report_t *r, const char *dir, const char *name)
{
    char p[4352];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (temp_file(name)) {
        if (r->repair && !unlink(p))
            add(r, &r->repaired, "%s: removed (a temp file an interrupted write left)", p);
        else if (r->repair)
            add(r, &r->problems, "%s: a temp file an interrupted write left (cannot remove it: %s)",
                p, strerror(errno));
        else
            add(r, &r->problems, "%s: a temp file an interrupted write left", p);
        return;
    }
    if (!state_file(name))
        return; /* dmclient.conf, store/, what others keep here */
    if (lstat(p, &st)) {
        add(r, &r->problems, "%s: %s", p, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        add(r, &r->problems, "%s: not a regular file", p);
        return;
    }
    /* the state files hold nonces and session counters: the owner's alone */
    unsigned mode = st.st_mode & 07777;
    if (!(mode & 077))
        return;
    if (r->repair && !chmod(p, 0600))
        add(r, &r->repaired, "%s: mode %04o, set to 0600", p, mode);
    else
        add(r, &r->problems, "%s: mode %04o, expected 0600", p, mode);
}

static void check_own_files(report_t *r)
{
    const char *dir = r->cli->state_dir;
    DIR *d = opendir(dir);
    if (!d) {
        add(r, &r->problems, "%s: cannot be read: %s", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        check_own_file(r, dir, e->d_name);
    closedir(d);
}

/* ---- the engine's values ---- */

static void on_state(void *ctx, const omadm_state_problem_t *p)
{
    report_t *r = ctx;
    char text[1024];
    cli_state_text(r->cli, p, text, sizeof text);
    add(r, p->err == OMADM_OK ? &r->notes : p->repaired ? &r->repaired : &r->problems, "%s", text);
}

static void check_engine(report_t *r)
{
    omadm_error_t e = omadm_state_check(&r->cli->cfg, NULL, &r->cli->storage,
                                        r->repair ? OMADM_STATE_REPAIR : 0, on_state, r);
    if (e == OMADM_E_NOMEM)
        r->oom = true;
}

/* ---- the certificate store ---- */

static void on_store(void *ctx, const char *line)
{
    report_t *r = ctx;
    bool done = !strncmp(line, "repaired: ", 10);
    if (done)
        line += 10;
    size_t n = strlen(r->store_dir);
    list_t *l = done ? &r->repaired : &r->problems;
    /* every line names a file: the store's own lines may name only a part */
    if (!strncmp(line, r->store_dir, n) && (line[n] == '/' || line[n] == ':'))
        add(r, l, "%s", line);
    else
        add(r, l, "%s: %s", r->store_dir, line);
}

static void check_store(report_t *r)
{
    struct stat st;
    if (stat(r->store_dir, &st) && errno == ENOENT) {
        add(r, &r->notes, "%s: no certificate store yet", r->store_dir);
        return;
    }
    omadm_certstore_t *cs = NULL;
    const char *why = NULL;
    omadm_error_t e = omadm_certstore_open(r->store_dir, NULL, &cs, &why);
    if (e) {
        add(r, &r->problems, "%s: cannot be opened: %s", r->store_dir,
            why ? why : omadm_strerror(e));
        return;
    }
    unsigned flags =
        r->repair ? OMADM_CERTSTORE_CHECK_REPAIR | OMADM_CERTSTORE_CHECK_REPORT_REPAIRS : 0;
    omadm_certstore_check(cs, flags, on_store, r, NULL);
    omadm_certstore_close(cs);
}

/* ---- output ---- */

static void json_list(const char *name, const list_t *l, bool last)
{
    printf("  \"%s\": [", name);
    for (size_t i = 0; i < l->n; i++) {
        fputs(i ? ",\n    " : "\n    ", stdout);
        cli_json_str(stdout, l->v[i]);
    }
    printf("%s]%s\n", l->n ? "\n  " : "", last ? "" : ",");
}

static void print_json(const report_t *r)
{
    printf("{\n  \"state\": ");
    cli_json_str(stdout, r->cli->state_dir);
    printf(",\n  \"consistent\": %s,\n", r->problems.n ? "false" : "true");
    json_list("problems", &r->problems, false);
    json_list("repaired", &r->repaired, false);
    json_list("notes", &r->notes, true);
    printf("}\n");
}

static void print_text(const report_t *r)
{
    for (size_t i = 0; i < r->repaired.n; i++)
        printf("repaired: %s\n", r->repaired.v[i]);
    for (size_t i = 0; i < r->notes.n; i++)
        printf("note: %s\n", r->notes.v[i]);
    fflush(stdout);
    for (size_t i = 0; i < r->problems.n; i++)
        fprintf(stderr, "dmclient: check: %s\n", r->problems.v[i]);
    if (!r->problems.n)
        printf("state %s is consistent\n", r->cli->state_dir);
    else
        fprintf(stderr, "dmclient: check: %zu problem%s in %s\n", r->problems.n,
                r->problems.n == 1 ? "" : "s", r->cli->state_dir);
}

/* ---- arguments ---- */

static int parse_args(int argc, char **argv, bool *repair, bool *json)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--repair")) {
            *repair = true;
        } else if (!strcmp(a, "--json")) {
            *json = true;
        } else if (!strcmp(a, "--state-dir") || !strncmp(a, "--state-dir=", 12)) {
            fprintf(stderr, "dmclient: check: --state-dir goes before the command "
                            "(dmclient --state-dir DIR check ...)\n");
            return 2;
        } else if (a[0] == '-') {
            fprintf(stderr, "dmclient: check: unknown option '%s'\n", a);
            return 2;
        } else {
            fprintf(stderr, "dmclient: check: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    return 0;
}

int cli_check_main(const char *state_dir, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(cli_check_usage, stdout);
            return 0;
        }
    bool repair = false, json = false;
    int rc = parse_args(argc, argv, &repair, &json);
    if (rc)
        return rc;
    if (cli_state_exists(state_dir))
        return 1;
    cli_t cli;
    if (cli_open_state(&cli, state_dir))
        return 1;
    char store_dir[4096];
    snprintf(store_dir, sizeof store_dir, "%s/store", state_dir);
    report_t r = {.cli = &cli, .store_dir = store_dir, .repair = repair};
    check_own_files(&r);
    check_engine(&r);
    check_store(&r);
    if (r.oom) {
        fprintf(stderr, "dmclient: check: %s: out of memory\n", state_dir);
        rc = 1;
    } else {
        if (json)
            print_json(&r);
        else
            print_text(&r);
        rc = r.problems.n ? 1 : 0;
    }
    list_free(&r.problems);
    list_free(&r.repaired);
    list_free(&r.notes);
    cli_close(&cli);
    return rc;
}
