/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c - the crash-safe certificate and key store (see store.h).
 */
#include "store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "journal.h"
#include "platform.h"
#include "state_format.h"
#include "store_internal.h"
#include "store_io.h"
#include "textbuf.h"

static const store_kind_t kinds[] = {
    {"root", "Root/System", true},
    {"ca", "CA/System", true},
    {"my-user", "My/User", false},
    {"my-system", "My/System", false},
    {"trustedpublisher", "TrustedPublisher", true},
    {"trustedpeople", "TrustedPeople", true},
    {"untrusted", "UntrustedCertificates", true},
    {"user-ca", "User/CA", true},
    {"user-trustedpublisher", "User/TrustedPublisher", true},
    {"user-trustedpeople", "User/TrustedPeople", true},
    {"user-untrusted", "User/UntrustedCertificates", true},
};

_Static_assert(sizeof kinds / sizeof kinds[0] <= STORE_KINDS_MAX, "store kinds");

const store_kind_t *store_kinds(size_t *n)
{
    *n = sizeof kinds / sizeof kinds[0];
    return kinds;
}

const store_kind_t *store_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcasecmp(kinds[i].id, name) || !strcasecmp(kinds[i].label, name))
            return &kinds[i];
    return NULL;
}

/* ---- staged changes ---- */

const char *store_dir(const store_t *s)
{
    return s->dir;
}

bool store_in_tx(const store_t *s)
{
    return s->in_tx;
}

const omadm_platform_t *store_platform(const store_t *s)
{
    return &s->plat;
}

void rec_clear(const omadm_platform_t *p, store_rec_t *r)
{
    if (r->info) {
        cert_info_free(p, r->info);
        plat_free(p, r->info);
    }
    plat_free(p, r->name);
    plat_free(p, r->server);
    plat_free(p, r->der);
    memset(r, 0, sizeof *r);
}

void store_rec_free(const store_t *s, store_rec_t *rec)
{
    rec_clear(&s->plat, rec);
}

void free_ops(const omadm_platform_t *p, op_t *o)
{
    while (o) {
        op_t *next = o->next;
        rec_clear(p, &o->rec);
        if (o->key_pem) {
            explicit_bzero(o->key_pem, strlen(o->key_pem));
            plat_free(p, o->key_pem);
        }
        if (o->state_data) {
            explicit_bzero(o->state_data, o->state_len); /* may hold a private key */
            plat_free(p, o->state_data);
        }
        plat_free(p, o->state_name);
        plat_free(p, o);
        o = next;
    }
}

static int info_copy(const omadm_platform_t *p, cert_info_t **dst, const cert_info_t *src)
{
    cert_info_t *i = plat_alloc(p, sizeof *i);
    if (!i)
        return -1;
    *i = *src;
    i->issued_by = plat_strdup(p, src->issued_by);
    i->issued_to = plat_strdup(p, src->issued_to);
    i->template_name = plat_strdup(p, src->template_name);
    *dst = i;
    return i->issued_by && i->issued_to && i->template_name ? 0 : -1;
}

static int rec_copy(const omadm_platform_t *p, store_rec_t *dst, const store_rec_t *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->thumb, src->thumb, sizeof dst->thumb);
    dst->name = plat_strdup(p, src->name ? src->name : src->thumb);
    dst->server = plat_strdup(p, src->server ? src->server : "");
    dst->added = src->added;
    dst->der = plat_alloc(p, src->der_len ? src->der_len : 1);
    if (!dst->name || !dst->server || !dst->der) {
        rec_clear(p, dst);
        return -1;
    }
    memcpy(dst->der, src->der, src->der_len);
    dst->der_len = src->der_len;
    if (src->info && info_copy(p, &dst->info, src->info)) {
        rec_clear(p, dst);
        return -1;
    }
    return 0;
}

/* ---- paths and record files ---- */

int path(const store_t *s, char *buf, size_t size, const char *fmt, ...)
{
    int n = snprintf(buf, size, "%s/", s->dir);
    va_list ap;
    va_start(ap, fmt);
    int m = n < 0 || (size_t)n >= size ? -1 : vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return m < 0 || (size_t)(n + m) >= size ? -1 : 0;
}

int store_capath(const store_t *s, const char *store, char *buf, size_t size)
{
    return path(s, buf, size, "trust/%s", store);
}

int store_bundle(const store_t *s, const char *store, char *buf, size_t size)
{
    return path(s, buf, size, "trust/%s.pem", store);
}

static void put_escaped(store_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c == '%' || c == 0x7f)
            store_buf_printf(b, "%%%02X", c);
        else
            store_buf_putc(b, (char)c);
    }
}

static char *unescape(const omadm_platform_t *p, const char *s)
{
    char *out = plat_alloc(p, strlen(s) + 1), *w = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (*s == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
            char hx[3] = {s[1], s[2], 0};
            *w++ = (char)strtol(hx, NULL, 16);
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = 0;
    return out;
}

/* The bytes of a record file; bundle offset/length for trust stores. */
char *rec_serialise(const omadm_platform_t *p, const store_rec_t *r, long long boff,
                    long long blen, size_t *len)
{
    char *b64 = cert_b64(p, r->der, r->der_len);
    if (!b64)
        return NULL;
    store_buf_t b;
    store_buf_init(&b, p);
    store_buf_printf(&b, STORE_CERT_WRITES "\nthumb %s\nname ", r->thumb);
    put_escaped(&b, r->name);
    store_buf_puts(&b, "\nserver ");
    if (!*r->server)
        store_buf_puts(&b, "-"); /* no server */
    else if (!strcmp(r->server, "-"))
        store_buf_puts(&b, "%2D");
    else
        put_escaped(&b, r->server);
    store_buf_printf(&b, "\nadded %lld\nbundle %lld %lld\nder %s\n", (long long)r->added, boff,
                     blen, b64);
    plat_free(p, b64);
    if (r->info) {
        store_buf_puts(&b, "issued_by ");
        put_escaped(&b, r->info->issued_by);
        store_buf_puts(&b, "\nissued_to ");
        put_escaped(&b, r->info->issued_to);
        store_buf_printf(&b, "\nvalid_from %s\nvalid_to %s\ntemplate ", r->info->valid_from,
                         r->info->valid_to);
        put_escaped(&b, r->info->template_name);
        store_buf_printf(&b, "\nsubject_hash %08lx\n", r->info->subject_hash);
    }
    return store_buf_take(&b, len);
}

/* The record's own base64; whether it is the certificate the name says is
 * store_check's job, so reads stay cheap. */
static int b64_to_der(const omadm_platform_t *p, const char *b64, store_rec_t *r)
{
    return cert_b64_decode(p, b64, &r->der, &r->der_len);
}

/* The record fields, in the order of their bits in rec_parse's "seen":
 * the first six make a record; the others (derived from der) are kept
 * when all of them are there.  Fields this version does not know are
 * skipped, so an older library reads what a newer one wrote. */
enum {
    F_THUMB = 1 << 0, F_NAME = 1 << 1, F_SERVER = 1 << 2, F_ADDED = 1 << 3, F_BUNDLE = 1 << 4,
    F_DER = 1 << 5, F_ISSUED_BY = 1 << 6, F_ISSUED_TO = 1 << 7, F_VALID_FROM = 1 << 8,
    F_VALID_TO = 1 << 9, F_TEMPLATE = 1 << 10, F_SUBJECT_HASH = 1 << 11,
    REC_REQUIRED = F_THUMB | F_NAME | F_SERVER | F_ADDED | F_BUNDLE | F_DER,
    REC_INFO = F_ISSUED_BY | F_ISSUED_TO | F_VALID_FROM | F_VALID_TO | F_TEMPLATE | F_SUBJECT_HASH,
};
static const char *const rec_fields[] = {"thumb",     "name",      "server",     "added",
                                         "bundle",    "der",       "issued_by",  "issued_to",
                                         "valid_from", "valid_to", "template",   "subject_hash"};

static int rec_field(const char *key)
{
    for (size_t i = 0; i < sizeof rec_fields / sizeof *rec_fields; i++)
        if (!strcmp(key, rec_fields[i]))
            return 1 << i;
    return 0;
}

/* A derived field into info (0), -1 malformed, -2 no memory. */
static int info_field(const omadm_platform_t *p, cert_info_t *info, int bit, const char *v)
{
    char **text = bit == F_ISSUED_BY ? &info->issued_by : bit == F_ISSUED_TO ? &info->issued_to
                  : bit == F_TEMPLATE ? &info->template_name : NULL;
    if (text)
        return (*text = unescape(p, v)) ? 0 : -2;
    if (bit == F_VALID_FROM || bit == F_VALID_TO) {
        char *to = bit == F_VALID_FROM ? info->valid_from : info->valid_to;
        if (strlen(v) >= sizeof info->valid_from)
            return -1;
        strcpy(to, v);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long h = strtoul(v, &end, 16);
    if (errno || end == v || *end || h > 0xffffffffUL)
        return -1;
    info->subject_hash = h;
    return 0;
}

/* Parse a record file; boff/blen may be NULL.  On -1 *why (why may be
 * NULL) says what is wrong with it, a static phrase. */
int rec_parse(const omadm_platform_t *p, char *text, store_rec_t *r, long long *boff,
              long long *blen, const char **why)
{
    int rc = -1; /* damaged, until it parses; -2 when memory ran out */
    const char *bad = "malformed line";
    size_t n = strlen(text);
    bool cut = n && text[n - 1] != '\n'; /* the store ends every record with one */
    memset(r, 0, sizeof *r);
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    state_fmt_t fmt = state_format(line, STORE_CERT_FORMAT, 1, STORE_CERT_CURRENT, NULL);
    if (fmt == STATE_FMT_NEWER) {
        if (why)
            *why = "a record of a newer format";
        return -3; /* a later version's record: not damaged, not ours to read */
    }
    if (fmt == STATE_FMT_DAMAGED) {
        if (why)
            *why = !line ? "empty" : strncmp(line, "omadm-cert ", 11) ? "not a certificate record"
                                                                       : "unknown record format";
        return -1;
    }
    long long off = -1, len = -1;
    int seen = 0;
    cert_info_t info = {0};
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *sp = strchr(line, ' ');
        if (!sp)
            goto bad;
        *sp = 0;
        char *v = sp + 1;
        int bit = rec_field(line);
        if (seen & bit) {
            bad = "a field appears twice"; /* each field once */
            goto bad;
        }
        seen |= bit;
        switch (bit) {
        case F_THUMB:
            if (strlen(v) != STORE_THUMB_LEN) {
                bad = "malformed thumb";
                goto bad;
            }
            memcpy(r->thumb, v, STORE_THUMB_LEN + 1);
            break;
        case F_NAME:
            if (!(r->name = unescape(p, v)))
                goto oom;
            break;
        case F_SERVER:
            if (!(r->server = unescape(p, strcmp(v, "-") ? v : "")))
                goto oom;
            break;
        case F_ADDED:
            r->added = strtoll(v, NULL, 10);
            break;
        case F_BUNDLE:
            if (sscanf(v, "%lld %lld", &off, &len) != 2) {
                bad = "malformed bundle";
                goto bad;
            }
            break;
        case F_DER: {
            int d = b64_to_der(p, v, r);
            if (d == -2)
                goto oom;
            if (d) {
                bad = "malformed der (base64)";
                goto bad;
            }
            break;
        }
        case 0:
            break; /* a field of a later version */
        default: {
            int got = info_field(p, &info, bit, v);
            if (got == -2)
                goto oom;
            if (got) {
                bad = "malformed certificate details";
                goto bad;
            }
        }
        }
    }
    if ((seen & REC_REQUIRED) != REC_REQUIRED) {
        bad = "fields missing";
        goto bad;
    }
    if ((seen & REC_INFO) == REC_INFO) {
        memcpy(info.thumb, r->thumb, sizeof info.thumb);
        if (!(r->info = plat_alloc(p, sizeof info)))
            goto oom;
        *r->info = info;
    } else {
        cert_info_free(p, &info); /* not all of it: derive it when asked */
    }
    if (boff)
        *boff = off;
    if (blen)
        *blen = len;
    return 0;
oom:
    rc = -2;
bad:
    if (rc == -1 && why)
        *why = cut ? "truncated" : bad;
    cert_info_free(p, &info);
    rec_clear(p, r);
    return rc;
}

/* read_file of what fd has open (closed here). */
static char *read_fd(const omadm_platform_t *plat, const store_io_t *io, int fd, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    int failed = 0;
    if (store_io_fstat(io, fd, &st))
        failed = errno;
    else if (!S_ISREG(st.st_mode) || st.st_size >= (1 << 26))
        failed = EFBIG;
    else {
        buf = plat_alloc(plat, (size_t)st.st_size + 1);
        failed = buf ? EIO : ENOMEM;
        size_t got = 0;
        while (buf && got < (size_t)st.st_size) {
            ssize_t n = store_io_read(io, fd, buf + got, (size_t)st.st_size - got);
            if (n < 0)
                failed = errno;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (buf && got == (size_t)st.st_size) {
            buf[got] = 0;
            if (len)
                *len = got;
        } else if (buf) {
            explicit_bzero(buf, got); /* a key or state record, part read */
            plat_free(plat, buf);
            buf = NULL;
        }
    }
    store_io_close(io, fd); /* read-only: what was read stands */
    errno = buf ? 0 : failed;
    return buf;
}

char *read_file(const omadm_platform_t *plat, const store_io_t *io, const char *p, size_t *len)
{
    int fd = store_io_open(io, p, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
    return fd < 0 ? NULL : read_fd(plat, io, fd, len);
}

/* 0 found, 1 absent, -1 error (no memory, I/O: nothing is known), -2
 * damaged (there is a file, but not a record; *why says why when why is
 * not NULL), -3 a record of a newer format. */
/* disk_get of the text read_file gave (NULL: errno says why). */
static int disk_rec(const store_t *s, char *text, store_rec_t *r, long long *boff, long long *blen,
                    const char **why)
{
    if (!text) {
        if (errno == EFBIG && why) /* not a record */
            *why = "not a regular file, or 64 MiB or more";
        return errno == ENOENT ? 1 : errno == EFBIG ? -2 : -1;
    }
    int rc = rec_parse(&s->plat, text, r, boff, blen, why);
    plat_free(&s->plat, text);
    return rc == -1 ? -2 : rc == -2 ? -1 : rc;
}

int disk_get(const store_t *s, const char *store, const char *thumb, store_rec_t *r,
             long long *boff, long long *blen)
{
    char p[4096];
    memset(r, 0, sizeof *r);
    if (path(s, p, sizeof p, "certs/%s/%s", store, thumb))
        return -1;
    return disk_rec(s, read_file(&s->plat, &s->io, p, NULL), r, boff, blen, NULL);
}

/* disk_get of the record name in the directory dirfd has open (a listing:
 * no path to walk again for each record), with *why for a damaged or newer
 * one; and -4 with *errnum when the file cannot be opened or read (not for
 * want of memory: that is -1). */
static int disk_get_at(const store_t *s, int dirfd, const char *name, store_rec_t *r,
                       const char **why, int *errnum)
{
    memset(r, 0, sizeof *r);
    int fd = store_io_openat(&s->io, dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
    char *text = fd < 0 ? NULL : read_fd(&s->plat, &s->io, fd, NULL);
    if (!text && errno != ENOENT && errno != EFBIG && errno != ENOMEM) {
        *errnum = errno;
        return -4;
    }
    return disk_rec(s, text, r, NULL, NULL, why);
}

const op_t *find_op(const store_t *s, bool in_tx, const store_kind_t *k, const char *thumb,
                    bool want_key)
{
    char name[OP_IX_NAME_MAX];
    if (cert_ix_name(k, thumb, want_key, name, sizeof name))
        return NULL;
    const state_ix_t *e = state_ix_find(s, name);
    return state_ix_op(e, in_tx);
}

int store_recover_if_needed(store_t *s)
{
    const char *why = NULL;
    if (!s->needs_recovery)
        return 0;
    store_forget_read(s); /* also after store_relock: others may have written */
    if (journal_recover(&s->plat, &s->io, s->dir, &why)) {
        s->recover_why = why;
        return -1;
    }
    s->needs_recovery = false;
    return 0;
}

/* Close the directories store_peek reads from. */
static void close_certs_dirs(store_t *s)
{
    for (size_t i = 0; i < STORE_KINDS_MAX; i++) {
        if (s->certs_fd[i] >= 0)
            store_io_close(&s->io, s->certs_fd[i]);
        s->certs_fd[i] = -1;
    }
}

/* disk_get of store_peek: relative to certs/<store>, kept open while the
 * lock is held (a listing reads thousands of records from it). */
static int peek_disk(store_t *s, const store_kind_t *k, const char *up, store_rec_t *r)
{
    int *dfd = &s->certs_fd[k - kinds];
    char p[4096];
    if (*dfd < 0 && !s->unlocked && !path(s, p, sizeof p, "certs/%s", k->id))
        *dfd = store_io_open(&s->io, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (*dfd < 0)
        return disk_get(s, k->id, up, r, NULL, NULL); /* it says what is wrong */
    memset(r, 0, sizeof *r);
    int fd = store_io_openat(&s->io, *dfd, up, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
    return disk_rec(s, fd < 0 ? NULL : read_fd(&s->plat, &s->io, fd, NULL), r, NULL, NULL, NULL);
}

int store_peek(store_t *s, const char *store, const char *thumb, const store_rec_t **rec)
{
    const store_kind_t *k = store_kind_find(store);
    char up[STORE_THUMB_LEN + 1];
    *rec = NULL;
    if (!k || !cert_thumb_normalise(thumb, up))
        return 1;
    if (store_recover_if_needed(s))
        return -1;
    const op_t *o = NULL;
    if (s->tx || s->pending) {
        o = find_op(s, true, k, up, false);
        if (!o)
            o = find_op(s, false, k, up, false);
    }
    if (o) {
        *rec = o->kind == OP_DEL ? NULL : &o->rec;
        return o->kind == OP_DEL ? 1 : 0;
    }
    /* a Get of a certificate's node and of each of its leaves reads the
     * same record: the last one read is kept until the disk can change */
    if (s->last_read_kind == k && !strcmp(s->last_read.thumb, up)) {
        *rec = &s->last_read;
        return 0;
    }
    store_rec_t r;
    int rc = peek_disk(s, k, up, &r);
    if (rc)
        return rc == -2 ? -2 : rc < 0 ? -1 : rc;
    rec_clear(&s->plat, &s->last_read);
    s->last_read = r;
    s->last_read_kind = s->unlocked ? NULL : k; /* unlocked: others may write */
    *rec = &s->last_read;
    return 0;
}

int store_get(store_t *s, const char *store, const char *thumb, store_rec_t *rec)
{
    const store_rec_t *r;
    memset(rec, 0, sizeof *rec);
    int rc = store_peek(s, store, thumb, &r);
    return rc ? (rc < 0 ? -1 : rc) : rec_copy(&s->plat, rec, r) ? -1 : 0;
}

void store_forget_read(store_t *s)
{
    rec_clear(&s->plat, &s->last_read);
    s->last_read_kind = NULL;
    close_certs_dirs(s);
}

/* ---- transactions ---- */

int store_begin(store_t *s)
{
    if (s->in_tx || s->unlocked)
        return -1;
    s->in_tx = true;
    return 0;
}

static void tx_append(store_t *s, op_t *o)
{
    if (s->tx_tail)
        s->tx_tail->next = o;
    else
        s->tx = o;
    s->tx_tail = o;
}

static op_t *stage(store_t *s, op_kind_t kind, const char *store, const char *thumb)
{
    const store_kind_t *k = store_kind_find(store);
    char up[STORE_THUMB_LEN + 1];
    if (!s->in_tx || !k || !cert_thumb_normalise(thumb, up))
        return NULL;
    char name[OP_IX_NAME_MAX];
    state_ix_t *e = cert_ix_name(k, up, kind == OP_KEY, name, sizeof name) ? NULL
                                                                          : state_ix_get(s, name);
    op_t *o = e ? plat_calloc(&s->plat, sizeof *o) : NULL;
    if (!o)
        return NULL; /* an entry made for nothing goes with the next flush */
    o->kind = kind;
    o->store = k;
    memcpy(o->thumb, up, sizeof up);
    tx_append(s, o);
    state_ix_staged(s, e, o);
    return o;
}

int store_put(store_t *s, const char *store, const store_rec_t *rec)
{
    char check[STORE_THUMB_LEN + 1];
    if (cert_thumbprint(rec->der, rec->der_len, check) || strcasecmp(check, rec->thumb) ||
        (rec->info && strcmp(rec->info->thumb, check)))
        return -1; /* only certificates, named by their thumbprint */
    store_rec_t copy;
    if (rec_copy(&s->plat, &copy, rec))
        return -1;
    /* the fields listings show, from the caller's parse or from ours */
    cert_info_t info;
    if (!copy.info) {
        if (cert_info_from_der(&s->plat, copy.der, copy.der_len, &info) ||
            !(copy.info = plat_alloc(&s->plat, sizeof info))) {
            cert_info_free(&s->plat, &info);
            rec_clear(&s->plat, &copy);
            return -1;
        }
        *copy.info = info;
    }
    memcpy(copy.thumb, check, sizeof check);
    op_t *o = stage(s, OP_PUT, store, check);
    if (!o) {
        rec_clear(&s->plat, &copy);
        return -1;
    }
    o->rec = copy;
    return 0;
}

int store_del(store_t *s, const char *store, const char *thumb)
{
    return stage(s, OP_DEL, store, thumb) ? 0 : -1;
}

int store_put_key(store_t *s, const char *store, const char *thumb, const char *pem)
{
    char *copy = plat_strdup(&s->plat, pem);
    op_t *o = copy ? stage(s, OP_KEY, store, thumb) : NULL;
    if (!o) {
        if (copy)
            explicit_bzero(copy, strlen(copy));
        plat_free(&s->plat, copy);
        return -1;
    }
    o->key_pem = copy;
    return 0;
}

int store_commit(store_t *s)
{
    if (!s->in_tx)
        return -1;
    state_ix_committed(s, s->tx);
    if (s->tx) {
        if (s->pending_tail)
            s->pending_tail->next = s->tx;
        else
            s->pending = s->tx;
        s->pending_tail = s->tx_tail;
    }
    s->tx = s->tx_tail = NULL;
    s->in_tx = false;
    return 0;
}

void store_rollback(store_t *s)
{
    state_ix_rolled_back(s, s->tx);
    free_ops(&s->plat, s->tx);
    s->tx = s->tx_tail = NULL;
    s->in_tx = false;
}

/* ---- state records ---- */

bool state_name_ok(const char *name)
{
    /* the name is a file name in state/ and a journal path: no '/', no
     * spaces, no "." or "..", and nothing a temp file could be mistaken
     * for (the journal's are hidden, see journal.c:replace_file) */
    size_t n = strlen(name);
    if (n < 1 || n > 200 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i]; /* by hand: isalnum() would follow the locale */
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static op_t *stage_state(store_t *s, op_kind_t kind, const char *name)
{
    if (!s->in_tx || !name || !state_name_ok(name))
        return NULL;
    state_ix_t *e = state_ix_get(s, name);
    op_t *o = e ? plat_calloc(&s->plat, sizeof *o) : NULL;
    if (!o || !(o->state_name = plat_strdup(&s->plat, name))) {
        plat_free(&s->plat, o);
        return NULL; /* an entry made for nothing goes with the next flush */
    }
    o->kind = kind;
    tx_append(s, o);
    state_ix_staged(s, e, o);
    return o;
}

int store_put_state(store_t *s, const char *name, const void *data, size_t len)
{
    /* read_file refuses files of 64 MiB and more: never write a record
     * that could not be read back */
    if ((!data && len) || len >= (1u << 26))
        return -1;
    char *copy = plat_alloc(&s->plat, len + 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, data, len);
    copy[len] = 0; /* so store_get_state can hand out a string as it is */
    op_t *o = stage_state(s, OP_STATE_PUT, name);
    if (!o) {
        explicit_bzero(copy, len);
        plat_free(&s->plat, copy);
        return -1;
    }
    o->state_data = copy;
    o->state_len = len;
    return 0;
}

int store_del_state(store_t *s, const char *name)
{
    return stage_state(s, OP_STATE_DEL, name) ? 0 : -1;
}

int store_get_state(store_t *s, const char *name, char **data, size_t *len)
{
    char p[4096];
    *data = NULL;
    if (len)
        *len = 0;
    if (!name || !state_name_ok(name))
        return 1; /* no such record can exist (as store_get with a bad thumbprint) */
    if (store_recover_if_needed(s))
        return -1;
    /* the newest op wins: the open transaction first */
    const op_t *o = state_ix_newest(state_ix_find(s, name));
    if (o) {
        if (o->kind == OP_STATE_DEL)
            return 1;
        char *copy = plat_alloc(&s->plat, o->state_len + 1);
        if (!copy)
            return -1;
        memcpy(copy, o->state_data, o->state_len + 1); /* with its NUL */
        *data = copy;
        if (len)
            *len = o->state_len;
        return 0;
    }
    if (path(s, p, sizeof p, "state/%s", name))
        return -1;
    size_t n = 0;
    char *buf = read_file(&s->plat, &s->io, p, &n);
    if (!buf)
        return errno == ENOENT ? 1 : -1;
    *data = buf;
    if (len)
        *len = n;
    return 0;
}

typedef struct staged_name {
    char *name;
    bool put; /* the newest op puts it (else deletes it) */
} staged_name_t;

static int staged_name_cmp(const void *a, const void *b)
{
    return strcmp(((const staged_name_t *)a)->name, ((const staged_name_t *)b)->name);
}

typedef struct staged_names {
    const store_t *s;
    const char *prefix;
    size_t plen;
    staged_name_t *v;
    size_t n, cap;
} staged_names_t;

/* The name of an entry with a staged op, when it has the prefix. */
static int take_staged(void *ctx, const state_ix_t *e)
{
    staged_names_t *c = ctx;
    const op_t *o = state_ix_newest(e);
    if (!o || !op_is_state(o) || strncmp(state_ix_name(e), c->prefix, c->plen))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        staged_name_t *v = plat_realloc(&c->s->plat, c->v, cap * sizeof *v);
        if (!v)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    if (!(c->v[c->n].name = plat_strdup(&c->s->plat, state_ix_name(e))))
        return -1;
    c->v[c->n++].put = o->kind == OP_STATE_PUT;
    return 0;
}

int store_each_state(store_t *s, const char *prefix, int (*cb)(void *ctx, const char *name),
                     void *ctx)
{
    char p[4096];
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    if (path(s, p, sizeof p, "state") || store_recover_if_needed(s))
        return -1;
    /* The staged names are copied (and sorted) before cb first runs: cb may
     * stage, commit, roll back or flush, and the last two free ops. */
    staged_names_t c = {.s = s, .prefix = prefix, .plen = plen};
    int rc = state_ix_each(s, take_staged, &c) ? -1 : 0;
    staged_name_t *staged = c.v;
    size_t n = c.n;
    if (n)
        qsort(staged, n, sizeof *staged, staged_name_cmp);
    for (size_t i = 0; i < n && !rc; i++)
        if (staged[i].put)
            rc = cb(ctx, staged[i].name);
    /* then the disk, less what a staged op shadows */
    DIR *d = rc ? NULL : store_io_opendir(&s->io, p);
    if (!rc && !d && errno != ENOENT)
        rc = -1;
    struct dirent *e;
    while (d && !rc) {
        errno = 0;
        if (!(e = store_io_readdir(&s->io, d))) {
            rc = errno ? -1 : 0;
            break;
        }
        /* a temp file or anything else no record is named */
        if (!state_name_ok(e->d_name) || strncmp(e->d_name, prefix, plen))
            continue;
        staged_name_t key = {.name = e->d_name};
        if (n && bsearch(&key, staged, n, sizeof *staged, staged_name_cmp))
            continue;
        struct stat st;
        if (store_io_fstatat(&s->io, dirfd(d), e->d_name, &st)) {
            if (errno == ENOENT)
                continue; /* gone meanwhile */
            rc = -1;
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue; /* store_get_state could not read it */
        rc = cb(ctx, e->d_name);
    }
    if (d)
        store_io_closedir(&s->io, d);
    for (size_t i = 0; i < n; i++)
        plat_free(&s->plat, staged[i].name);
    plat_free(&s->plat, staged);
    return rc;
}

/* ---- keys ---- */

char *store_get_key(store_t *s, const char *store, const char *thumb)
{
    const store_kind_t *k = store_kind_find(store);
    char up[STORE_THUMB_LEN + 1], p[4096];
    if (!k || !cert_thumb_normalise(thumb, up))
        return NULL;
    /* the newest key or delete op wins: the open transaction first */
    const op_t *lists[2] = {s->tx, s->pending};
    for (int i = 0; i < 2; i++) {
        const op_t *last = NULL;
        for (const op_t *o = lists[i]; o; o = o->next)
            if (!op_is_state(o) && o->store == k && !strcmp(o->thumb, up) &&
                (o->kind == OP_KEY || o->kind == OP_DEL))
                last = o;
        if (last)
            return last->kind == OP_KEY ? plat_strdup(&s->plat, last->key_pem) : NULL;
    }
    if (path(s, p, sizeof p, "keys/%s-%s", k->id, up))
        return NULL;
    return read_file(&s->plat, &s->io, p, NULL);
}

/* ---- listing ---- */

typedef struct seen {
    char **thumbs;
    size_t n, cap;
} seen_t;

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_each(store_t *s, const char *store, int (*cb)(void *ctx, const store_rec_t *rec),
               void *ctx)
{
    return store_each_report(s, store, cb, NULL, ctx);
}

/* A record of store_each_report's listing that could not be read: to
 * skipped, or (without it) skipped silently when damaged, and the end of
 * the listing when unreadable.  Returns what the listing goes on with. */
static int skip_rec(store_skip_fn skipped, void *ctx, const char *name, int got, const char *why,
                    int errnum)
{
    if (!skipped)
        return got == -4 ? -1 : 0; /* unreadable: the listing would be incomplete */
    if (got == -4)
        why = strerror(errnum);
    return skipped(ctx, name, why ? why : "damaged");
}

/* The node name of record file name in the directory dirfd has open, from
 * the head of the file alone (a listing of names: no fstat, no allocation,
 * no DER decoded): 0 and name filled, when the head is this version's
 * record head exactly -- format line, thumb (the file's name), name (a
 * spelling of it, 40 hex digits: the CSP takes no other, and they are
 * never escaped).  Anything else (not such a head, a record of another
 * format, a file that cannot be read) is 1: the caller reads the whole
 * record, which says what it is. */
static int head_name_at(const store_t *s, int dirfd, const char *file,
                        char name[STORE_THUMB_LEN + 1])
{
    static const char fmt[] = STORE_CERT_WRITES "\nthumb ";
    enum { FMT = sizeof fmt - 1, NAME = FMT + STORE_THUMB_LEN + 6, HEAD = NAME + STORE_THUMB_LEN + 1 };
    char buf[HEAD];
    int fd = store_io_openat(&s->io, dirfd, file, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
    if (fd < 0)
        return 1;
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = store_io_read(&s->io, fd, buf + got, sizeof buf - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    store_io_close(&s->io, fd); /* read-only: what was read stands */
    if (got < sizeof buf || memcmp(buf, fmt, FMT) || memcmp(buf + FMT, file, STORE_THUMB_LEN) ||
        memcmp(buf + FMT + STORE_THUMB_LEN, "\nname ", 6) || buf[HEAD - 1] != '\n')
        return 1;
    char up[STORE_THUMB_LEN + 1];
    memcpy(name, buf + NAME, STORE_THUMB_LEN);
    name[STORE_THUMB_LEN] = 0;
    return cert_thumb_normalise(name, up) && !strcmp(up, file) ? 0 : 1;
}

/* store_each_report, or with name_cb (and cb NULL) store_each_name. */
static int each_rec(store_t *s, const char *store, int (*cb)(void *ctx, const store_rec_t *rec),
                    store_name_fn name_cb, store_skip_fn skipped, void *ctx);

int store_each_report(store_t *s, const char *store,
                      int (*cb)(void *ctx, const store_rec_t *rec), store_skip_fn skipped,
                      void *ctx)
{
    return each_rec(s, store, cb, NULL, skipped, ctx);
}

int store_each_name(store_t *s, const char *store, store_name_fn cb, void *ctx)
{
    return each_rec(s, store, NULL, cb, NULL, ctx);
}

static int each_rec(store_t *s, const char *store, int (*cb)(void *ctx, const store_rec_t *rec),
                    store_name_fn name_cb, store_skip_fn skipped, void *ctx)
{
    const store_kind_t *k = store_kind_find(store);
    char p[4096];
    if (!k || path(s, p, sizeof p, "certs/%s", k->id) || store_recover_if_needed(s))
        return -1;
    int rc = 0;
    /* staged records first (newest op per thumbprint wins) */
    seen_t staged = {0};
    const op_t *lists[2] = {s->tx, s->pending};
    for (int li = 0; li < 2 && !rc; li++) {
        for (const op_t *o = lists[li]; o && !rc; o = o->next) {
            if (op_is_state(o) || o->store != k || o->kind == OP_KEY)
                continue;
            const op_t *newest = find_op(s, true, k, o->thumb, false);
            if (!newest)
                newest = find_op(s, false, k, o->thumb, false);
            if (newest != o)
                continue;
            if (staged.n == staged.cap) {
                size_t cap = staged.cap ? staged.cap * 2 : 16;
                char **t = plat_realloc(&s->plat, staged.thumbs, cap * sizeof *t);
                if (!t) {
                    rc = -1;
                    break;
                }
                staged.thumbs = t;
                staged.cap = cap;
            }
            staged.thumbs[staged.n++] = (char *)o->thumb;
            if (o->kind == OP_PUT)
                rc = cb ? cb(ctx, &o->rec) : name_cb(ctx, o->rec.thumb, o->rec.name);
        }
    }
    if (staged.n)
        qsort(staged.thumbs, staged.n, sizeof *staged.thumbs, seen_cmp);
    DIR *d = rc ? NULL : store_io_opendir(&s->io, p);
    if (!rc && !d && errno != ENOENT)
        rc = -1; /* the listing would be incomplete */
    struct dirent *e;
    while (d && !rc) {
        errno = 0;
        if (!(e = store_io_readdir(&s->io, d))) {
            rc = errno ? -1 : 0;
            break;
        }
        if (e->d_name[0] == '.' || strlen(e->d_name) != STORE_THUMB_LEN)
            continue;
        char *key = e->d_name;
        if (staged.n && bsearch(&key, staged.thumbs, staged.n, sizeof *staged.thumbs, seen_cmp))
            continue;
        char name[STORE_THUMB_LEN + 1];
        if (name_cb && !head_name_at(s, dirfd(d), e->d_name, name)) {
            rc = name_cb(ctx, e->d_name, name);
            continue;
        }
        store_rec_t r;
        const char *why = NULL;
        int errnum = 0;
        int got = disk_get_at(s, dirfd(d), e->d_name, &r, &why, &errnum);
        if (got == -1) {
            rc = -1; /* no memory: the listing would be incomplete */
            break;
        }
        if (got == 1)
            continue; /* gone meanwhile */
        if (got) {
            rc = skip_rec(skipped, ctx, e->d_name, got, why, errnum); /* store_check reports it too */
            continue;
        }
        rc = cb ? cb(ctx, &r) : name_cb(ctx, r.thumb, r.name);
        rec_clear(&s->plat, &r);
    }
    if (d)
        store_io_closedir(&s->io, d);
    plat_free(&s->plat, staged.thumbs);
    return rc;
}

/* ---- opening ---- */

/* Create dir and its missing parents with mode (whatever the umask: a
 * parent of a CApath directory must let every user through).  force:
 * also set the mode of an existing directory (the private directories
 * must be 0700 whatever they were).  dir itself is tried first: after
 * the first open every directory exists, and its parents are not looked
 * at again. */
static int mkdir_p(const store_io_t *io, const char *dir, mode_t mode, bool force)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -1;
    int made = store_mkdir(io, p, mode);
    if (made < 0 && errno == ENOENT) { /* a parent is missing */
        for (char *c = p + 1; *c; c++) {
            if (*c != '/')
                continue;
            *c = 0;
            if (store_mkdir(io, p, 0755) < 0)
                return -1;
            *c = '/';
        }
        made = store_mkdir(io, p, mode);
    }
    if (made < 0)
        return -1;
    struct stat st;
    if (store_io_stat(io, p, &st))
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return made == 1 && force && (st.st_mode & 07777) != mode ? store_io_chmod(io, p, mode) : 0;
}

/* An empty file with exactly mode, unless one exists (left as it is). */
static int create_file(const store_io_t *io, const char *p, mode_t mode)
{
    int fd = store_io_open(io, p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? 0 : -1;
    int rc = store_io_fchmod(io, fd, mode);
    return store_io_close(io, fd) || rc ? -1 : 0;
}

/* A directory of the layout (rel below the store directory), created
 * with the mode store_mode_want gives it.  force: an existing one gets
 * that mode too. */
static int layout_dir(const store_t *s, const char *rel, bool force)
{
    char p[4096];
    if (path(s, p, sizeof p, "%s", rel))
        return -1;
    return mkdir_p(&s->io, p, store_mode_want(rel, true), force);
}

/* The directories and bundles.  Public ones that exist keep their mode
 * here (store_check reports a wrong one, the next write into them fixes
 * it); the private ones are made private at once. */
static int make_layout(const store_t *s)
{
    char rel[128], p[4096];
    errno = ENAMETOOLONG; /* what a path() failure means */
    if (strlen(s->dir) > 3000 || mkdir_p(&s->io, s->dir, store_mode_want("", true), false))
        return -1;
    if (layout_dir(s, "keys", true) || layout_dir(s, "state", true))
        return -1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        snprintf(rel, sizeof rel, "certs/%s", kinds[i].id);
        if (layout_dir(s, rel, false))
            return -1;
        if (!kinds[i].trust)
            continue;
        snprintf(rel, sizeof rel, "trust/%s", kinds[i].id);
        if (layout_dir(s, rel, false))
            return -1;
        snprintf(rel, sizeof rel, "trust/%s.pem", kinds[i].id);
        if (path(s, p, sizeof p, "%s", rel) || create_file(&s->io, p, store_mode_want(rel, false)))
            return -1;
    }
    return 0;
}

/* The lock file, private (0600) whatever it was; -1 when it cannot be
 * opened. */
static int open_lock(const store_t *s)
{
    char p[4096];
    if (path(s, p, sizeof p, "lock"))
        return -1;
    mode_t want = store_mode_want("lock", false);
    int fd = store_io_open(&s->io, p, O_RDWR | O_CREAT | O_CLOEXEC, want);
    struct stat st;
    if (fd >= 0 && (store_io_fstat(&s->io, fd, &st) ||
                    ((st.st_mode & 07777) != want && store_io_fchmod(&s->io, fd, want)))) {
        store_io_close(&s->io, fd);
        fd = -1;
    }
    return fd;
}

/* The stores this process holds open, by the identity of their lock
 * file.  flock on a second open file description of a lock this process
 * holds would wait for the process itself, for ever: a second open is
 * refused instead.  The list is the library's only state shared between
 * stores; its mutex is held only to look and to link, never while
 * waiting for the lock. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static store_t *open_stores;

/* Add s (its lock file is open) to the list: 0; -2 when this process
 * holds the same store open already; -1 when the lock file cannot be
 * told apart. */
static int register_open(store_t *s)
{
    struct stat st;
    if (store_io_fstat(&s->io, s->lock_fd, &st))
        return -1;
    int rc = 0;
    pthread_mutex_lock(&open_mu);
    for (const store_t *o = open_stores; o && !rc; o = o->next_open)
        if (o->lock_dev == st.st_dev && o->lock_ino == st.st_ino)
            rc = -2;
    if (!rc) {
        s->lock_dev = st.st_dev;
        s->lock_ino = st.st_ino;
        s->next_open = open_stores;
        open_stores = s;
        s->registered = true;
    }
    pthread_mutex_unlock(&open_mu);
    return rc;
}

static void unregister_open(store_t *s)
{
    pthread_mutex_lock(&open_mu);
    for (store_t **o = &open_stores; *o; o = &(*o)->next_open) {
        if (*o == s) {
            *o = s->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&open_mu);
    s->registered = false;
}

int store_open(const char *dir, const omadm_platform_t *plat, store_t **out, const char **why)
{
    return store_open_io(dir, plat, NULL, out, why);
}

int store_open_io(const char *dir, const omadm_platform_t *plat, const store_io_t *io,
                  store_t **out, const char **why)
{
    *out = NULL;
    omadm_platform_t p;
    plat_init(&p, plat);
    store_t *s = plat_calloc(&p, sizeof *s);
    if (!s || !(s->dir = plat_strdup(&p, dir))) {
        plat_free(&p, s);
        *why = "out of memory";
        return -1;
    }
    s->plat = p;
    if (io)
        s->io = *io;
    s->lock_fd = -1;
    for (size_t i = 0; i < STORE_KINDS_MAX; i++)
        s->certs_fd[i] = -1;
    if (make_layout(s)) {
        *why = strerror(errno);
        store_close(s);
        return -1;
    }
    /* one process at a time changes or recovers the store: the lock is
     * held until store_close (a second dmclient waits) */
    s->lock_fd = open_lock(s);
    int reg = s->lock_fd < 0 ? -1 : register_open(s);
    if (reg == -2) {
        *why = "store already open in this process";
        store_close(s);
        return -2;
    }
    if (reg || store_io_flock(&s->io, s->lock_fd, LOCK_EX)) {
        *why = "cannot lock the store";
        store_close(s);
        return -1;
    }
    /* A batch committed before a crash is applied now.  If that fails
     * (disk full, say) the journal is kept and every later store operation
     * tries again; the rest of the device stays manageable meanwhile. */
    if (journal_recover(&s->plat, &s->io, s->dir, why)) {
        s->needs_recovery = true;
        s->recover_why = *why;
    }
    *out = s;
    return 0;
}

int store_unlock(store_t *s)
{
    if (s->unlocked || s->in_tx || s->pending || s->lock_fd < 0)
        return -1;
    if (store_io_flock(&s->io, s->lock_fd, LOCK_UN))
        return -1;
    s->unlocked = true;
    close_certs_dirs(s); /* nothing of the store is kept open for others to change under */
    return 0;
}

int store_relock(store_t *s)
{
    if (!s->unlocked)
        return -1;
    int rc;
    while ((rc = store_io_flock(&s->io, s->lock_fd, LOCK_EX)) && errno == EINTR)
        ;
    if (rc)
        return -1;
    s->unlocked = false;
    /* another process may have crashed in the middle of a batch */
    s->needs_recovery = true;
    return 0;
}

bool store_locked(const store_t *s)
{
    return !s->unlocked;
}

bool store_blocked(const store_t *s)
{
    return s->needs_recovery;
}

int store_blocked_why(store_t *s, const char **text)
{
    *text = NULL;
    if (s->unlocked || !store_recover_if_needed(s))
        return 0;
    /* the journal of the batch that waits, and one kept from another boot */
    char names[2][64] = {"journal", ""};
    DIR *d = store_io_opendir(&s->io, s->dir);
    struct dirent *e;
    while (d && (e = store_io_readdir(&s->io, d)))
        if (!strncmp(e->d_name, "journal.applied-", 16) && strlen(e->d_name) < 64)
            strcpy(names[1], e->d_name);
    if (d)
        store_io_closedir(&s->io, d);
    for (int i = 0; i < 2; i++) {
        unsigned v = 0;
        if (*names[i] && journal_format(&s->plat, &s->io, s->dir, names[i], &v) == 1) {
            snprintf(s->blocked_why, sizeof s->blocked_why,
                     "%s/%s: format " JOURNAL_FORMAT " %u is newer than this library reads "
                     "(" JOURNAL_WRITES ")", s->dir, names[i], v);
            *text = s->blocked_why;
            return 1;
        }
    }
    snprintf(s->blocked_why, sizeof s->blocked_why,
             "%s/journal: a committed batch cannot be applied yet (%s)", s->dir,
             s->recover_why ? s->recover_why : "?");
    *text = s->blocked_why;
    return 2;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    if (s->lock_fd >= 0)
        store_io_close(&s->io, s->lock_fd); /* releases the lock */
    if (s->registered)
        unregister_open(s);
    omadm_platform_t p = s->plat;
    free_ops(&p, s->tx);
    free_ops(&p, s->pending);
    store_forget_read(s);
    state_ix_free(s);
    plat_free(&p, s->dir);
    plat_free(&p, s);
}
