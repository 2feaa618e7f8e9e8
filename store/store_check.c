/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_check.c - verify that records, keys, CApath directories and PEM
 * bundles agree with each other, that every part of the store has its
 * mode (public or private, store_modes.c), that no record or journal is
 * of a newer format and no temp file was left behind; a repair restores
 * the modes, removes the temp files and writes a trust store's CApath
 * directory and bundle anew from its records (store_repair.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert.h"
#include "journal.h"
#include "platform.h"
#include "state_format.h"
#include "store_internal.h"

typedef struct checker {
    store_t *s;
    bool repair;
    bool say_repairs;        /* STORE_CHECK_SAY_REPAIRS */
    void (*cb)(void *ctx, const char *problem);
    void *ctx;
    int problems;
    /* of the store being checked: problems of what is derived from its
     * records (CApath, bundle), and records that cannot be read */
    int derived, unreadable;
} checker_t;

static void problem(checker_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(checker_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->cb)
        c->cb(c->ctx, msg);
}

/* A repair made: through cb as "repaired: ..." with STORE_CHECK_SAY_REPAIRS
 * (not a problem: not counted). */
static void repaired(checker_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void repaired(checker_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(msg, sizeof msg, "repaired: ");
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    if (c->say_repairs && c->cb)
        c->cb(c->ctx, msg);
}

/* A file name an interrupted write leaves behind: ".<name>.tmp" (records,
 * keys, state records, CApath files, bundles are replaced through one). */
static bool is_temp_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] == '.' && len > 5 && !strcmp(n + len - 4, ".tmp");
}

/* A temp file in dir (a path below the store directory, for messages):
 * never read, never anything's current text; a repair removes it. */
static void check_temp(checker_t *c, const char *dir, const char *name)
{
    char p[4352];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (c->repair && !unlink(p)) {
        repaired(c, "%s: removed (a temp file an interrupted write left)", p);
        return;
    }
    if (c->repair)
        problem(c, "%s: a temp file an interrupted write left (cannot remove it: %s)", p,
                strerror(errno));
    else
        problem(c, "%s: a temp file an interrupted write left", p);
}

static bool is_thumb_name(const char *n)
{
    char up[STORE_THUMB_LEN + 1];
    return cert_thumb_normalise(n, up) && !strcmp(up, n);
}

/* One record: parses, names its own thumbprint, its bundle block holds
 * its PEM.  Returns 1 when the record is usable. */
static int check_record(checker_t *c, const store_kind_t *k, const char *name, FILE *bundle,
                        unsigned long *hash)
{
    store_rec_t r;
    long long boff = -1, blen = -1;
    char thumb[STORE_THUMB_LEN + 1], p[4096];
    path(c->s, p, sizeof p, "certs/%s/%s", k->id, name);
    int rc = disk_get(c->s, k->id, name, &r, &boff, &blen);
    if (rc == -3) {
        unsigned v = 0;
        size_t len = 0;
        char *text = read_file(&c->s->plat, &c->s->io, p, &len);
        if (text)
            state_format_text(text, len, STORE_CERT_FORMAT, 1, STORE_CERT_CURRENT, &v);
        plat_free(&c->s->plat, text);
        problem(c, "%s: record %s (%s): format " STORE_CERT_FORMAT " %u is newer than this "
                "library reads (" STORE_CERT_WRITES "); left as it is", k->label, name, p, v);
        c->unreadable++;
        return 1; /* it is there: the bundle and CApath may hold it */
    }
    if (rc) {
        problem(c, "%s: record %s (%s) %s", k->label, name, p,
                rc == -2 ? "is damaged" : "cannot be read");
        c->unreadable++;
        return 0;
    }
    int ok = 1;
    if (strcmp(r.thumb, name) || cert_thumbprint(r.der, r.der_len, thumb) || strcmp(thumb, name)) {
        problem(c, "%s: record %s holds another certificate", k->label, name);
        c->unreadable++;
        ok = 0;
    }
    cert_info_t info;
    if (ok && cert_info_from_der(&c->s->plat, r.der, r.der_len, &info)) {
        problem(c, "%s: record %s does not hold a certificate", k->label, name);
        c->unreadable++;
        ok = 0;
    } else if (ok) {
        *hash = info.subject_hash;
        /* what listings show without parsing must be what the DER says */
        const cert_info_t *kept = r.info;
        if (kept && (strcmp(kept->issued_by, info.issued_by) ||
                     strcmp(kept->issued_to, info.issued_to) ||
                     strcmp(kept->valid_from, info.valid_from) ||
                     strcmp(kept->valid_to, info.valid_to) ||
                     strcmp(kept->template_name, info.template_name) ||
                     kept->subject_hash != info.subject_hash))
            problem(c, "%s: record %s shows other names or dates than its certificate", k->label,
                    name);
        cert_info_free(&c->s->plat, &info);
    }
    if (ok && k->trust) {
        size_t pem_len = 0;
        char *pem = cert_pem(&c->s->plat, r.der, r.der_len, &pem_len);
        char *got = pem && blen == (long long)pem_len ? plat_alloc(&c->s->plat, pem_len) : NULL;
        if (!got || fseeko(bundle, boff, SEEK_SET) || fread(got, 1, pem_len, bundle) != pem_len ||
            memcmp(got, pem, pem_len)) {
            problem(c, "%s: bundle does not hold %s at its recorded place", k->label, name);
            c->derived++;
        }
        plat_free(&c->s->plat, got);
        plat_free(&c->s->plat, pem);
    }
    rec_clear(&c->s->plat, &r);
    return ok;
}

static long count_pem_blocks(FILE *f)
{
    char line[256];
    long n = 0;
    rewind(f);
    while (fgets(line, sizeof line, f))
        n += !strncmp(line, "-----BEGIN CERTIFICATE-----", 27);
    return n;
}

typedef struct capath_entry {
    unsigned long hash;
    unsigned idx;
} capath_entry_t;

/* Every CApath file is <hash>.<n>, holds a certificate of this store with
 * that subject hash, and the indices of each hash run 0..k-1. */
static long check_capath(checker_t *c, const store_kind_t *k)
{
    char dir[4096];
    long files = 0;
    store_capath(c->s, k->id, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) {
        problem(c, "%s: CApath directory %s is missing", k->label, dir);
        c->derived++;
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (is_temp_name(e->d_name))
            check_temp(c, dir, e->d_name);
        if (e->d_name[0] == '.')
            continue;
        unsigned long hash;
        unsigned idx;
        char tail;
        if (sscanf(e->d_name, "%8lx.%u%c", &hash, &idx, &tail) != 2 || strlen(e->d_name) < 10) {
            problem(c, "%s: unexpected file %s in the CApath directory", k->label, e->d_name);
            continue;
        }
        files++;
        char p[4352], thumb[STORE_THUMB_LEN + 1];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = read_file(&c->s->plat, &c->s->io, p, &len);
        uint8_t *der = NULL;
        size_t der_len = 0;
        const char *why;
        unsigned long h2 = 0;
        store_rec_t r;
        int got;
        if (!text || cert_decode(&c->s->plat, (uint8_t *)text, len, false, &der, &der_len, &why) ||
            cert_thumbprint(der, der_len, thumb) || cert_subject_hash(der, der_len, &h2) ||
            h2 != hash)
            problem(c, "%s: CApath file %s is not a certificate with that subject hash", k->label,
                    e->d_name), c->derived++;
        else if ((got = disk_get(c->s, k->id, thumb, &r, NULL, NULL)) == 0)
            rec_clear(&c->s->plat, &r);
        else if (got != -3) /* a newer record is there, and has its own line */
            problem(c, "%s: CApath file %s holds %s, which the store does not", k->label,
                    e->d_name, thumb), c->derived++;
        if (idx > 0) {
            snprintf(p, sizeof p, "%s/%08lx.%u", dir, hash, idx - 1);
            if (access(p, F_OK))
                problem(c, "%s: CApath file %s has no predecessor", k->label, e->d_name),
                    c->derived++;
        }
        plat_free(&c->s->plat, der);
        plat_free(&c->s->plat, text);
    }
    closedir(d);
    return files;
}

/* One store: its records, bundle and CApath directory. */
static void check_store_once(checker_t *c, const store_kind_t *k)
{
    char dir[4096], bpath[4096];
    path(c->s, dir, sizeof dir, "certs/%s", k->id);
    FILE *bundle = NULL;
    if (k->trust) {
        store_bundle(c->s, k->id, bpath, sizeof bpath);
        bundle = fopen(bpath, "rb");
        if (!bundle) {
            problem(c, "%s: bundle %s is missing", k->label, bpath);
            c->derived++;
            return;
        }
    }
    DIR *d = opendir(dir);
    long records = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (is_temp_name(e->d_name))
            check_temp(c, dir, e->d_name);
        if (e->d_name[0] == '.')
            continue;
        if (!is_thumb_name(e->d_name)) {
            problem(c, "%s: unexpected file %s among the records", k->label, e->d_name);
            c->unreadable++;
            continue;
        }
        unsigned long hash;
        records += check_record(c, k, e->d_name, bundle, &hash);
    }
    if (d)
        closedir(d);
    else
        problem(c, "%s: record directory %s is missing", k->label, dir);
    if (!k->trust)
        return;
    long blocks = count_pem_blocks(bundle);
    fclose(bundle);
    if (blocks != records)
        problem(c, "%s: bundle holds %ld certificates, the store %ld", k->label, blocks, records),
            c->derived++;
    long files = check_capath(c, k);
    if (files >= 0 && files != records)
        problem(c, "%s: CApath holds %ld certificates, the store %ld", k->label, files, records),
            c->derived++;
}

/* A repair writes a trust store's CApath directory and bundle anew from
 * its records when they disagree with them and every record can be read
 * (a record that cannot be read would lose its certificate); what is
 * left is reported after. */
static void check_store(checker_t *c, const store_kind_t *k)
{
    c->derived = c->unreadable = 0;
    if (c->repair && k->trust) {
        checker_t probe = *c;
        probe.cb = NULL;
        probe.repair = false;
        check_store_once(&probe, k);
        const char *why = NULL;
        if (probe.derived && !probe.unreadable) {
            if (store_rebuild_trust(c->s, k, &why) == 0)
                repaired(c, "%s: CApath directory and bundle written anew from its records",
                         k->label);
            else
                problem(c, "%s: CApath directory and bundle cannot be written anew: %s", k->label,
                        why);
        }
    }
    check_store_once(c, k);
}

static void check_keys(checker_t *c)
{
    char dir[4096];
    path(c->s, dir, sizeof dir, "keys");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (is_temp_name(e->d_name))
            check_temp(c, dir, e->d_name);
        if (e->d_name[0] == '.')
            continue;
        char p[4352], store[64];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        const char *dash = strrchr(e->d_name, '-');
        store_rec_t r;
        if (!dash || (size_t)(dash - e->d_name) >= sizeof store || !is_thumb_name(dash + 1)) {
            problem(c, "unexpected file %s in the key directory", e->d_name);
            continue;
        }
        memcpy(store, e->d_name, (size_t)(dash - e->d_name));
        store[dash - e->d_name] = 0;
        int got = store_kind_find(store) ? disk_get(c->s, store, dash + 1, &r, NULL, NULL) : 1;
        if (got == 0)
            rec_clear(&c->s->plat, &r);
        else if (got != -3) /* a newer record is there, and has its own line */
            problem(c, "key %s has no certificate", e->d_name);
    }
    if (d)
        closedir(d);
}

/* State records are other modules' blobs: only their names (and, in
 * check_modes, their privacy) are the store's to check. */
static void check_state(checker_t *c)
{
    char dir[4096];
    struct stat st;
    path(c->s, dir, sizeof dir, "state");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (is_temp_name(e->d_name))
            check_temp(c, dir, e->d_name);
        if (e->d_name[0] == '.')
            continue;
        char p[4352];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!state_name_ok(e->d_name) || stat(p, &st) || !S_ISREG(st.st_mode))
            problem(c, "unexpected file %s in the state directory", e->d_name);
    }
    if (d)
        closedir(d);
}

/* Temp files of bundles (trust/.<store>.pem.tmp). */
static void check_trust_dir(checker_t *c)
{
    char dir[4096];
    path(c->s, dir, sizeof dir, "trust");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (is_temp_name(e->d_name))
            check_temp(c, dir, e->d_name);
    if (d)
        closedir(d);
}

/* A committed batch that cannot be applied: a journal of a newer format
 * (kept for the library that wrote it), or one that fails to apply. */
static void check_journal(checker_t *c)
{
    const char *why = NULL;
    int rc = store_blocked_why(c->s, &why);
    if (rc == 1)
        problem(c, "%s; kept, neither applied nor dropped", why);
    else if (rc)
        problem(c, "%s", why);
}

/* ---- modes ---- */

/* One path (rel below the store directory; absent: other checks report
 * it): its mode must be the one store_mode_want gives, and a repair sets
 * it.  Symbolic links and other odd files are left to the other checks. */
static void check_mode(checker_t *c, const char *rel)
{
    char p[4096];
    struct stat st;
    if (path(c->s, p, sizeof p, "%s", rel) || lstat(p, &st) ||
        (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)))
        return;
    if (!*rel)
        p[strlen(p) - 1] = 0; /* the store directory without the '/' path() added */
    unsigned got = st.st_mode & 07777, want = store_mode_want(rel, S_ISDIR(st.st_mode));
    if (got == want)
        return;
    if (c->repair && chmod(p, want) == 0) {
        repaired(c, "%s: mode %04o, set to %04o", p, got, want);
        return;
    }
    if (c->repair)
        problem(c, "%s: mode %04o, expected %04o (cannot change it: %s)", p, got, want,
                strerror(errno));
    else
        problem(c, "%s: mode %04o, expected %04o", p, got, want);
}

/* A directory and what is in it (hidden temp files aside). */
static void check_dir_modes(checker_t *c, const char *rel)
{
    char p[4096], sub[4096];
    check_mode(c, rel);
    if (path(c->s, p, sizeof p, "%s", rel))
        return;
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name) < (int)sizeof sub)
            check_mode(c, sub);
    }
    if (d)
        closedir(d);
}

/* Every directory and file of the layout has the mode store_modes.c
 * gives it: CApath directories, bundles and records readable by every
 * user, keys, state records, journal and lock private. */
static void check_modes(checker_t *c)
{
    static const char *const top[] = {"", "certs", "trust", "journal", "journal.tmp", "lock"};
    char rel[128];
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        check_mode(c, top[i]);
    if (!journal_applied_name(rel, sizeof rel))
        check_mode(c, rel);
    for (size_t i = 0; i < n; i++) {
        snprintf(rel, sizeof rel, "certs/%s", k[i].id);
        check_dir_modes(c, rel);
        if (!k[i].trust)
            continue;
        snprintf(rel, sizeof rel, "trust/%s", k[i].id);
        check_dir_modes(c, rel);
        snprintf(rel, sizeof rel, "trust/%s.pem", k[i].id);
        check_mode(c, rel);
    }
    check_dir_modes(c, "keys");
    check_dir_modes(c, "state");
}

int store_check(store_t *s, unsigned flags, void (*cb)(void *ctx, const char *problem), void *ctx)
{
    checker_t c = {.s = s,
                   .repair = flags & STORE_CHECK_REPAIR,
                   .say_repairs = flags & STORE_CHECK_SAY_REPAIRS,
                   .cb = cb,
                   .ctx = ctx};
    check_modes(&c);
    check_journal(&c);
    size_t n;
    const store_kind_t *k = store_kinds(&n);
    for (size_t i = 0; i < n; i++)
        check_store(&c, &k[i]);
    check_trust_dir(&c);
    check_keys(&c);
    check_state(&c);
    return c.problems;
}
