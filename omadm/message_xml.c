/* SPDX-License-Identifier: Apache-2.0 */
/*
 * message_xml.c - omadm_message_to_xml: a message, XML or WBXML, as SyncML
 * XML for people (logs, -vv), through the same codecs omadm_process uses.
 */
#include "codec.h"
#include "internal.h"

/* Values that came as WBXML opaque bytes are shown as text where they are
 * text (the XML emitter still sends bin values and non-text as base64). */
static void clear_opaque(syncml_cmd_t *c)
{
    for (; c; c = c->next) {
        for (syncml_item_t *it = c->items; it; it = it->next)
            it->data_opaque = false;
        clear_opaque(c->children);
    }
}

omadm_error_t omadm_message_to_xml(omadm_t *dm, const uint8_t *msg, size_t len, unsigned flags,
                                   char **xml, size_t *xml_len, const char **detail)
{
    if (detail)
        *detail = NULL;
    if (xml)
        *xml = NULL;
    if (xml_len)
        *xml_len = 0;
    if (!dm || (!msg && len) || !xml || !xml_len || (flags & ~OMADM_XML_MASK_CRED))
        return OMADM_E_INVALID_ARG;
    if (!msg)
        msg = (const uint8_t *)"";
    syncml_msg_t m;
    buf_t out;
    const char *why = NULL;
    syncml_msg_init(&m, dm);
    buf_init(&out, dm);
    omadm_error_t err = codec_detect(msg, len) == SYNCML_ENC_WBXML
                            ? codec_wbxml_decode(dm, msg, len, &m, &why)
                            : codec_xml_decode(dm, msg, len, &m, &why);
    if (!err) {
        if ((flags & OMADM_XML_MASK_CRED) && m.hdr.cred) {
            m.hdr.cred->data = (const uint8_t *)"***";
            m.hdr.cred->data_len = 3;
        }
        clear_opaque(m.cmds);
        m.enc = SYNCML_ENC_XML;
        err = codec_xml_encode(dm, &m, &out);
    }
    if (!err && !(*xml = (char *)buf_steal(&out, xml_len)))
        err = OMADM_E_NOMEM;
    if (err && detail)
        *detail = why;
    buf_free(&out);
    syncml_msg_free(&m);
    return err;
}
