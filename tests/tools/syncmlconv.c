/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syncmlconv.c - convert one SyncML message between XML and WBXML with the
 * engine's own codecs (decode into the message model, encode it again).
 *
 *   syncmlconv to-wbxml IN OUT
 *   syncmlconv to-xml IN OUT
 *
 * IN or OUT may be "-" (stdin / stdout).  The input encoding is detected
 * from the bytes (codec_detect), so either direction also accepts input
 * that is already in the target encoding.  The conversion goes through the
 * model, not through libwbxml's XML converter: Data values keep their exact
 * bytes (libwbxml rewrites "\n" to "\r\n" inside Data and guesses opaque
 * content from Meta Type, see docs/wbxml.md).
 *
 * What the model does not keep is not converted: comments, whitespace
 * between elements and around scalar values, element order inside Item
 * (Meta and Data come out in DTD order), and the content of elements the
 * decoder does not know.  The conformance runner (tests/conformance/run)
 * uses this tool for its WBXML pass; a case whose point is lost that way
 * carries its own NN-server.wbxml.
 *
 * Exit status: 0 converted, 1 the input could not be decoded or encoded
 * (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "model.h"
#include "omadm.h"

static const char usage[] =
    "usage: syncmlconv to-wbxml IN OUT\n"
    "       syncmlconv to-xml IN OUT\n"
    "Convert a SyncML message with the omadm codecs.  IN/OUT may be '-'.\n";

#define MAX_INPUT ((size_t)64 << 20)

static int read_all(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return errno ? errno : EIO;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    int err = buf ? 0 : ENOMEM;
    while (!err) {
        if (n == cap) {
            uint8_t *nb = cap < MAX_INPUT ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                err = cap < MAX_INPUT ? ENOMEM : EFBIG;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                err = EIO;
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    *data = buf;
    *len = n;
    return 0;
}

static int write_all(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;
    if (!f)
        return errno ? errno : EIO;
    int err = 0;
    if (len && fwrite(data, 1, len, f) != len)
        err = errno ? errno : EIO;
    if (f == stdout) {
        if (fflush(f) && !err)
            err = errno ? errno : EIO;
    } else if (fclose(f) && !err) {
        err = errno ? errno : EIO;
    }
    return err;
}

static bool utf8_text(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            k = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, cp = c & 0x07;
        else
            return false;
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

static const char *cmd_label(const syncml_cmd_t *c)
{
    return c->name ? c->name : syncml_cmd_type_name(c->type);
}

/*
 * Prepare the model for XML output: WBXML OPAQUE Data that is text anyway
 * can be written as text; Format bin values are base64-encoded by the
 * emitter.  Anything else cannot be written as XML.
 */
static int prepare_for_xml(syncml_cmd_t *c)
{
    for (; c; c = c->next) {
        for (syncml_item_t *it = c->items; it; it = it->next) {
            bool bin = it->meta.format && !strcmp(it->meta.format, "bin");
            if (!it->data_opaque || bin)
                continue;
            if (!utf8_text(it->data, it->data_len)) {
                fprintf(stderr, "syncmlconv: %s %s: opaque Data with Format %s is not text and "
                        "cannot be written as XML\n", cmd_label(c), c->cmd_id ? c->cmd_id : "-",
                        it->meta.format ? it->meta.format : "(none)");
                return -1;
            }
            it->data_opaque = false;
        }
        if (prepare_for_xml(c->children))
            return -1;
    }
    return 0;
}

/* The model keeps no content of an element it did not understand: say so. */
static void warn_lossy(const syncml_cmd_t *c)
{
    for (; c; c = c->next) {
        if (c->decode_status)
            fprintf(stderr, "syncmlconv: warning: %s %s decoded with status %d; the "
                    "conversion may not carry all of it\n", cmd_label(c),
                    c->cmd_id ? c->cmd_id : "(no CmdID)", c->decode_status);
        warn_lossy(c->children);
    }
}

static int convert(omadm_t *dm, bool to_wbxml, const uint8_t *in, size_t in_len,
                   const char *out_path)
{
    syncml_msg_t msg;
    buf_t out;
    const char *detail = NULL;
    int status = 1;
    syncml_msg_init(&msg, dm);
    buf_init(&out, dm);
    omadm_error_t err = codec_detect(in, in_len) == SYNCML_ENC_WBXML
                            ? codec_wbxml_decode(dm, in, in_len, &msg, &detail)
                            : codec_xml_decode(dm, in, in_len, &msg, &detail);
    if (err) {
        fprintf(stderr, "syncmlconv: decoding: %s%s%s\n", omadm_strerror(err),
                detail ? ": " : "", detail ? detail : "");
        goto out;
    }
    warn_lossy(msg.cmds);
    if (to_wbxml) {
        msg.enc = SYNCML_ENC_WBXML;
        err = codec_wbxml_encode(dm, &msg, &out);
    } else {
        msg.enc = SYNCML_ENC_XML;
        if (prepare_for_xml(msg.cmds))
            goto out;
        err = codec_xml_encode(dm, &msg, &out);
    }
    if (err) {
        fprintf(stderr, "syncmlconv: encoding %s: %s\n", to_wbxml ? "WBXML" : "XML",
                omadm_strerror(err));
        goto out;
    }
    int werr = write_all(out_path, out.data, out.len);
    if (werr) {
        fprintf(stderr, "syncmlconv: %s: %s\n", out_path, strerror(werr));
        goto out;
    }
    status = 0;
out:
    buf_free(&out);
    syncml_msg_free(&msg);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "to-wbxml") && strcmp(argv[1], "to-xml"))) {
        fputs(usage, stderr);
        return 2;
    }
    bool to_wbxml = !strcmp(argv[1], "to-wbxml");
    uint8_t *in = NULL;
    size_t in_len = 0;
    int rerr = read_all(argv[2], &in, &in_len);
    if (rerr) {
        fprintf(stderr, "syncmlconv: %s: %s\n", argv[2], strerror(rerr));
        return 1;
    }
    /* The converter must never be the limit a test case runs into. */
    omadm_config_t cfg;
    omadm_config_init(&cfg);
    cfg.max_msg_size = MAX_INPUT;
    cfg.max_obj_size = MAX_INPUT;
    cfg.max_uri_len = 1u << 20;
    omadm_t *dm = NULL;
    omadm_error_t err = omadm_new(&cfg, NULL, NULL, &dm);
    if (err) {
        fprintf(stderr, "syncmlconv: engine: %s\n", omadm_strerror(err));
        free(in);
        return 1;
    }
    int status = convert(dm, to_wbxml, in, in_len, argv[3]);
    omadm_free(dm);
    free(in);
    return status;
}
