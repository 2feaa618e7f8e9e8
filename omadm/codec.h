/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec.h - SyncML decoders/encoders.
 *
 * The SyncML grammar lives in one place on each side:
 *   decode: a codec walks its parser's tree and feeds element events to the
 *           builder (syncml_build.c), which owns the grammar and fills the
 *           message model;
 *   encode: the emitter (syncml_emit.c) walks a model and feeds element
 *           events to a codec's sink, which writes bytes.
 * codec_xml.c is the only file that touches libxml2, codec_wbxml.c the only
 * one that touches libwbxml.
 */
#ifndef OMADM_CODEC_H
#define OMADM_CODEC_H

#include <stdbool.h>

#include "arena.h"
#include "model.h"
#include "omadm.h"

/* Namespaces (code pages) an element can be in. */
typedef enum {
    SYNCML_NS_SYNCML = 0,   /* SYNCML:SYNCML1.2, WBXML code page 0 */
    SYNCML_NS_METINF = 1,   /* syncml:metinf,   WBXML code page 1 */
    SYNCML_NS_OTHER = 2     /* anything else (treated as unknown element) */
} syncml_ns_t;

/* ---- decode side ---------------------------------------------------------- */

typedef struct syncml_builder syncml_builder_t;

/* Begin building msg (initialised by the caller) from events. */
syncml_builder_t *syncml_build_begin(struct omadm *dm, syncml_msg_t *msg);
/*
 * Events.  Element names are local names; ns is as seen on the wire
 * (bare Meta children count as metinf).  Text may arrive in several pieces;
 * opaque is true for WBXML OPAQUE bytes.  Each returns 0, or an
 * omadm_error_t (OMADM_E_TOO_LARGE for depth/count limits, OMADM_E_NOMEM,
 * OMADM_E_NOT_SYNCML when the root is not SyncML).
 */
int syncml_build_start(syncml_builder_t *b, const char *name, syncml_ns_t ns);
int syncml_build_text(syncml_builder_t *b, const uint8_t *data, size_t len, bool opaque);
int syncml_build_end(syncml_builder_t *b);
/* True while the builder collects an Item Data value (markup found there
 * is passed on as text by the XML codec). */
bool syncml_build_in_data(const syncml_builder_t *b);
/*
 * Finish: checks the header and releases the builder.  Returns OMADM_OK,
 * or OMADM_E_NOT_SYNCML / OMADM_E_MALFORMED with *err_detail set.
 * Safe to call after an event failed (it then only releases).
 */
omadm_error_t syncml_build_finish(syncml_builder_t *b, const char **err_detail);

/* ---- encode side ---------------------------------------------------------- */

typedef struct syncml_sink {
    void *ctx;
    int (*start)(void *ctx, const char *name, syncml_ns_t ns);
    /* binary: the bytes may not be valid text (a bin value); a WBXML sink
     * writes OPAQUE, an XML sink must never be handed binary (the emitter
     * base64-encodes bin values for XML). */
    int (*text)(void *ctx, const uint8_t *data, size_t len, bool binary);
    int (*end)(void *ctx, const char *name, syncml_ns_t ns);
    bool binary_ok;   /* the encoding carries raw bytes (WBXML opaque); when
                         false the emitter sends bin values as base64 */
    const buf_t *out; /* the bytes written so far (the message's mark_len) */
} syncml_sink_t;

/* Walk msg and feed sink; returns 0 or the first non-zero sink result. */
int syncml_emit(const syncml_msg_t *msg, const syncml_sink_t *sink);
/* Whether the emitter sends the item's Data as base64 (Format b64): a bin
 * value, or one XML cannot carry as text, when the encoding has no raw
 * bytes (binary_ok false: XML). */
bool syncml_item_as_b64(const syncml_item_t *it, bool binary_ok);

/* ---- codecs --------------------------------------------------------------- */

/* WBXML when the bytes start with a WBXML version byte (0x01..0x03) and a
 * public id; otherwise XML. */
syncml_encoding_t codec_detect(const uint8_t *in, size_t len);

/*
 * Decode into msg (initialised by the caller).  Problems inside a command
 * are recorded on the command so the rest of the message still runs; only
 * these fail the whole message:
 *   OMADM_E_NOT_SYNCML   not XML/WBXML, DTD/entities present, root not SyncML
 *   OMADM_E_TOO_LARGE    size, depth, command or item limits
 *   OMADM_E_MALFORMED    SyncHdr unusable
 *   OMADM_E_NOMEM
 * err_detail (may be NULL) receives a short static string.
 */
omadm_error_t codec_xml_decode(struct omadm *dm, const uint8_t *in, size_t len,
                               syncml_msg_t *msg, const char **err_detail);
omadm_error_t codec_wbxml_decode(struct omadm *dm, const uint8_t *in, size_t len,
                                 syncml_msg_t *msg, const char **err_detail);

/* Encode msg, appending to out.  OMADM_E_NOMEM / OMADM_E_ENCODE. */
omadm_error_t codec_xml_encode(struct omadm *dm, const syncml_msg_t *msg, buf_t *out);
omadm_error_t codec_wbxml_encode(struct omadm *dm, const syncml_msg_t *msg, buf_t *out);

#endif
