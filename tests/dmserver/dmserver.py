#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""dmserver.py - a scripted OMA DM 1.2 test server (Python 3 standard library only).

    dmserver.py --script NAME [--port-file F] [--cert C --key K] [--client-ca CA]
                [--syncmlconv PATH] [--state F] [--log F] [--summary F]
                [--timeout SECONDS] [--param KEY=VALUE]... [-v]

Listens on 127.0.0.1, port 0 (the kernel picks one; it is written to --port-file once the
socket accepts connections), HTTPS with TLS 1.2 or later (--cert/--key; with --client-ca a
client certificate is required and verified), plain HTTP without --cert.  Every path under
/omadm is served (scripts assert the path, e.g. after a RespURI).

The script (tests/dmserver/scripts/NAME.py, or a path to a .py file) defines run(s) and runs
in its own thread: s.receive() blocks until the client POSTs a message and returns it parsed
(Message: hdr, cmds, final ...); s.reply(m) sends a server message built with s.message(...)
as the HTTP response (s.reply_empty(), s.reply_http(status, headers, body) for other
answers).  Assertions record failures ("FAIL: msg 2: Status for CmdID 3 (Add): expected 200,
got 404") and go on; s.require() and timeouts stop the script.  At the end the server prints
the FAIL lines and one PASS/FAIL summary line, writes --summary (JSON) and --state, and
exits 0 only when the script completed and every check passed (1 otherwise, 2 usage/setup).

Script parameters: --param KEY=VALUE, else the environment variable DMSERVER_KEY (upper
case), else the script's default.  See tests/dmserver/README.md for the whole API.
"""

import argparse
import base64
import hashlib
import http.server
import importlib.util
import json
import os
import queue
import re
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

CT_XML = "application/vnd.syncml.dm+xml"
CT_WBXML = "application/vnd.syncml.dm+wbxml"
NS_SYNCML = "SYNCML:SYNCML1.2"
NS_METINF = "syncml:metinf"

AUTH_BASIC = "syncml:auth-basic"
AUTH_MD5 = "syncml:auth-md5"
AUTH_MAC = "syncml:auth-MAC"


class _Any:
    def __repr__(self):
        return "ANY"


ANY = _Any()       # expectation: accept any value (it is logged)
ABSENT = object()  # expectation: the element must not be there


class Abort(Exception):
    """Stops the script (a failure has been recorded)."""


# ---------------------------------------------------------------------------------------
# crypto helpers (docs/session.md "Authentication", spec §7)

def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode("ascii")


def b64d(text):
    return base64.b64decode(text.encode() if isinstance(text, str) else text, validate=False)


def _md5b64(data):
    return b64(hashlib.md5(data).digest())


def basic_cred_data(user, secret):
    """Cred Data of syncml:auth-basic: B64(user:secret)."""
    return b64("%s:%s" % (user, secret))


def md5_cred_data(user, secret, nonce):
    """Cred Data of syncml:auth-md5: B64(MD5(B64(MD5(user:secret)) ":" nonce)); nonce: bytes."""
    inner = _md5b64(("%s:%s" % (user, secret)).encode())
    return _md5b64(inner.encode() + b":" + (nonce or b""))


def hmac_mac(user, secret, nonce, body):
    """mac of x-syncml-hmac: B64(MD5(B64(MD5(user:secret)) ":" nonce ":" B64(MD5(body))))."""
    inner = _md5b64(("%s:%s" % (user, secret)).encode())
    return _md5b64(inner.encode() + b":" + (nonce or b"") + b":" + _md5b64(body).encode())


def hmac_header(user, secret, nonce, body):
    return 'algorithm=MD5, username="%s", mac=%s' % (user, hmac_mac(user, secret, nonce, body))


def parse_hmac_header(value):
    """{'algorithm':..., 'username':..., 'mac':...} from 'k=v, k="v"' (keys lower case)."""
    out = {}
    for m in re.finditer(r'\s*([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]*)\s*,?', value or ""):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


# ---------------------------------------------------------------------------------------
# the object model of a received message

def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _ns(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _child(el, name):
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el, name):
    return [c for c in el if _local(c.tag) == name]


def _text(el, name):
    c = _child(el, name) if el is not None else None
    if c is None:
        return None
    return _inner(c)


def _inner(el):
    """Text of an element; child elements (e.g. Format xml data) serialized as they came."""
    if len(el) == 0:
        return el.text or ""
    parts = [el.text or ""]
    for c in el:
        parts.append(ET.tostring(c, encoding="unicode"))
    return "".join(parts)


class Meta:
    """Meta fields (metinf); attributes are None when absent.  .tags: element names in order."""
    FIELDS = ("format", "type", "size", "mark", "next_nonce", "max_msg_size", "max_obj_size",
              "version", "em_i", "mem")

    def __init__(self, el=None):
        for f in self.FIELDS:
            setattr(self, f, None)
        self.tags = []
        self.namespaces = {}
        if el is None:
            return
        for c in el:
            name = _local(c.tag)
            self.tags.append(name)
            self.namespaces[name] = _ns(c.tag)
            key = {"Format": "format", "Type": "type", "Size": "size", "Mark": "mark",
                   "NextNonce": "next_nonce", "MaxMsgSize": "max_msg_size",
                   "MaxObjSize": "max_obj_size", "Version": "version", "EMI": "em_i",
                   "Mem": "mem"}.get(name)
            if key:
                setattr(self, key, _inner(c))

    def __repr__(self):
        return "Meta(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.FIELDS
                                      if getattr(self, f) is not None)


class Item:
    def __init__(self, el):
        t, s = _child(el, "Target"), _child(el, "Source")
        self.target = _text(t, "LocURI") if t is not None else None
        self.target_name = _text(t, "LocName") if t is not None else None
        self.source = _text(s, "LocURI") if s is not None else None
        self.source_name = _text(s, "LocName") if s is not None else None
        m = _child(el, "Meta")
        self.meta = Meta(m) if m is not None else None
        self.data = _text(el, "Data")
        self.more_data = _child(el, "MoreData") is not None
        self.tags = [_local(c.tag) for c in el]

    @property
    def format(self):
        return self.meta.format if self.meta else None

    @property
    def type(self):
        return self.meta.type if self.meta else None

    def __repr__(self):
        return "Item(target=%r, source=%r, meta=%r, data=%r)" % (self.target, self.source,
                                                                 self.meta, self.data)


class Cred:
    def __init__(self, el):
        m = _child(el, "Meta")
        self.meta = Meta(m) if m is not None else None
        self.type = self.meta.type if self.meta else None
        self.format = self.meta.format if self.meta else None
        self.data = _text(el, "Data")


class Command:
    """One command of a received message.  name: element name (Status, Results, Alert ...)."""

    def __init__(self, el):
        self.el = el
        self.name = _local(el.tag)
        self.cmd_id = _text(el, "CmdID")
        self.msg_ref = _text(el, "MsgRef")
        self.cmd_ref = _text(el, "CmdRef")
        self.cmd = _text(el, "Cmd")
        self.data = _text(el, "Data")
        self.correlator = _text(el, "Correlator")
        m = _child(el, "Meta")
        self.meta = Meta(m) if m is not None else None
        ch = _child(el, "Chal")
        self.chal = None
        if ch is not None:
            cm = _child(ch, "Meta")
            self.chal = Meta(cm) if cm is not None else Meta()
        self.target_refs = [_inner(c) for c in _children(el, "TargetRef")]
        self.source_refs = [_inner(c) for c in _children(el, "SourceRef")]
        self.items = [Item(c) for c in _children(el, "Item")]
        self.no_resp = _child(el, "NoResp") is not None
        self.children = [Command(c) for c in el
                         if _local(c.tag) in ("Add", "Replace", "Delete", "Get", "Exec", "Copy",
                                              "Alert", "Atomic", "Sequence")]
        self.tags = [_local(c.tag) for c in el]

    @property
    def code(self):
        try:
            return int((self.data or "").strip())
        except ValueError:
            return None

    def describe(self):
        bits = [self.name, "CmdID=%s" % self.cmd_id]
        if self.name in ("Status", "Results"):
            bits.append("MsgRef=%s CmdRef=%s" % (self.msg_ref, self.cmd_ref))
        if self.cmd is not None:
            bits.append("Cmd=%s" % self.cmd)
        if self.data is not None and self.name in ("Status", "Alert"):
            bits.append("Data=%s" % self.data)
        for it in self.items:
            bits.append("[%s%s%s]" % ("T=" + it.target if it.target else "",
                                      " S=" + it.source if it.source else "",
                                      " D=%r" % _short(it.data) if it.data is not None else ""))
        return " ".join(bits)


def _short(s, n=60):
    if s is None:
        return None
    return s if len(s) <= n else s[:n] + "..."


class Header:
    def __init__(self, el):
        self.el = el
        self.tags = [_local(c.tag) for c in el]
        self.ver_dtd = _text(el, "VerDTD")
        self.ver_proto = _text(el, "VerProto")
        self.session_id = _text(el, "SessionID")
        self.msg_id = _text(el, "MsgID")
        t, s = _child(el, "Target"), _child(el, "Source")
        self.target = _text(t, "LocURI") if t is not None else None
        self.target_name = _text(t, "LocName") if t is not None else None
        self.source = _text(s, "LocURI") if s is not None else None
        self.source_name = _text(s, "LocName") if s is not None else None
        self.resp_uri = _text(el, "RespURI")
        c = _child(el, "Cred")
        self.cred = Cred(c) if c is not None else None
        m = _child(el, "Meta")
        self.meta = Meta(m) if m is not None else None
        self.no_resp = _child(el, "NoResp") is not None


class Message:
    """A message the client sent.  num: the request's number in this server run (1, 2 ...)."""

    def __init__(self, num, raw, xml_text, encoding, http):
        self.num = num
        self.raw = raw                  # the body as received (XML or WBXML bytes)
        self.xml = xml_text             # XML text (converted when the request was WBXML)
        self.encoding = encoding        # "xml" or "wbxml"
        self.http = http                # dict: method, path, headers (lower-case keys), peer_cert
        self.time = time.time()
        root = ET.fromstring(xml_text.encode("utf-8") if isinstance(xml_text, str) else xml_text)
        self.root_ns = _ns(root.tag)
        self.root_tag = _local(root.tag)
        if self.root_tag != "SyncML":
            raise ValueError("root element is %s, not SyncML" % self.root_tag)
        h, b = _child(root, "SyncHdr"), _child(root, "SyncBody")
        if h is None or b is None:
            raise ValueError("no SyncHdr or no SyncBody")
        self.hdr = Header(h)
        self.body_tags = [_local(c.tag) for c in b]
        self.cmds = [Command(c) for c in b if _local(c.tag) != "Final"]
        self.final = _child(b, "Final") is not None

    @property
    def msg_id(self):
        return self.hdr.msg_id

    @property
    def session_id(self):
        return self.hdr.session_id

    def header(self, name, default=None):
        return self.http["headers"].get(name.lower(), default)

    def statuses(self):
        return [c for c in self.cmds if c.name == "Status"]

    def status_for(self, cmd_ref, msg_ref=None):
        for c in self.cmds:
            if c.name == "Status" and c.cmd_ref == str(cmd_ref) and \
                    (msg_ref is None or c.msg_ref == str(msg_ref)):
                return c
        return None

    def results_for(self, cmd_ref):
        return [c for c in self.cmds if c.name == "Results" and c.cmd_ref == str(cmd_ref)]

    def commands(self, name=None):
        return [c for c in self.cmds if name is None or c.name == name]

    def describe(self):
        return "MsgID=%s SessionID=%s %s%s" % (self.msg_id, self.session_id,
                                              "; ".join(c.describe() for c in self.cmds),
                                              " Final" if self.final else "")


# ---------------------------------------------------------------------------------------
# server messages

def esc(s):
    return _xml_escape(str(s))


def _meta_xml(fields, wrap="Meta"):
    """fields: list of (Name, value); metinf elements."""
    inner = "".join('<%s xmlns="syncml:metinf">%s</%s>' % (k, esc(v), k)
                    for k, v in fields if v is not None)
    return "<%s>%s</%s>" % (wrap, inner, wrap) if inner else ""


class SentCmd:
    """A command the server sent: name, cmd_id, targets, children (Atomic/Sequence)."""

    def __init__(self, name, cmd_id, targets=(), children=None, data=None):
        self.name = name
        self.cmd_id = str(cmd_id)
        self.targets = list(targets)
        self.children = children if children is not None else []
        self.data = data

    def flat(self):
        yield self
        for c in self.children:
            yield from c.flat()

    def __repr__(self):
        return "%s(%s %s)" % (self.name, self.cmd_id, ",".join(self.targets))


class _CommandList:
    """Builders shared by a message body and by Atomic/Sequence containers."""

    def _next_id(self):
        raise NotImplementedError

    def _append(self, xml, sent):
        raise NotImplementedError

    @staticmethod
    def _item_xml(target=None, source=None, data=None, format=None, type=None, size=None,
                  meta=None, more_data=False, data_raw=False):
        parts = ["<Item>"]
        if target is not None:
            parts.append("<Target><LocURI>%s</LocURI></Target>" % esc(target))
        if source is not None:
            parts.append("<Source><LocURI>%s</LocURI></Source>" % esc(source))
        fields = list(meta or [])
        fields += [("Format", format), ("Type", type), ("Size", size)]
        parts.append(_meta_xml(fields))
        if data is not None:
            parts.append("<Data>%s</Data>" % (data if data_raw else esc(data)))
        if more_data:
            parts.append("<MoreData/>")
        parts.append("</Item>")
        return "".join(parts)

    def _write(self, name, target, data, format, type, items, cmd_id, size=None):
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        if items is None:
            items = [dict(target=target, data=data, format=format, type=type, size=size)]
        body = "".join(self._item_xml(**it) for it in items)
        self._append("<%s><CmdID>%s</CmdID>%s</%s>" % (name, cid, body, name),
                     SentCmd(name, cid, [it.get("target") for it in items]))
        return cid

    def add(self, target=None, data=None, format=None, type=None, items=None, cmd_id=None,
            size=None):
        """Add; returns its CmdID.  items: list of dicts (target, data, format, type, size)."""
        return self._write("Add", target, data, format, type, items, cmd_id, size)

    def replace(self, target=None, data=None, format=None, type=None, items=None, cmd_id=None):
        return self._write("Replace", target, data, format, type, items, cmd_id)

    def _targets_only(self, name, targets, cmd_id):
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        body = "".join(self._item_xml(target=t) for t in targets)
        self._append("<%s><CmdID>%s</CmdID>%s</%s>" % (name, cid, body, name),
                     SentCmd(name, cid, targets))
        return cid

    def get(self, *targets, cmd_id=None):
        return self._targets_only("Get", targets, cmd_id)

    def delete(self, *targets, cmd_id=None):
        return self._targets_only("Delete", targets, cmd_id)

    def exec(self, target, data=None, format=None, correlator=None, cmd_id=None):
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        corr = "<Correlator>%s</Correlator>" % esc(correlator) if correlator is not None else ""
        self._append("<Exec><CmdID>%s</CmdID>%s%s</Exec>" % (
            cid, corr, self._item_xml(target=target, data=data, format=format)),
            SentCmd("Exec", cid, [target]))
        return cid

    def alert(self, code, items=None, cmd_id=None):
        """Alert with Data code; items: list of dicts as for add()."""
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        body = "".join(self._item_xml(**it) for it in (items or []))
        self._append("<Alert><CmdID>%s</CmdID><Data>%s</Data>%s</Alert>" % (cid, esc(code), body),
                     SentCmd("Alert", cid, [], data=str(code)))
        return cid

    def atomic(self, cmd_id=None):
        """An Atomic; add commands to the returned container.  .cmd_id is its CmdID."""
        return self._container("Atomic", cmd_id)

    def sequence(self, cmd_id=None):
        return self._container("Sequence", cmd_id)

    def _container(self, name, cmd_id):
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        c = _Container(self, name, cid)
        self._append(c, c.sent)
        return c

    def raw(self, xml, cmds=None):
        """Commands as XML text (sent verbatim).  The commands are parsed from the text to learn
        their names and CmdIDs (for s.expect); give cmds=[SentCmd...] when the text is not
        well-formed on its own.  Returns the list of SentCmd."""
        if cmds is None:
            root = ET.fromstring("<x>%s</x>" % xml)
            cmds = [_sent_from_el(c) for c in root]
        self._append(xml, None)
        for c in cmds:
            self._register(c)
        return cmds


def _sent_from_el(el):
    name = _local(el.tag)
    cid = (_text(el, "CmdID") or "").strip()
    targets = []
    for it in _children(el, "Item"):
        t = _child(it, "Target")
        if t is not None:
            targets.append((_text(t, "LocURI") or "").strip())
    kids = [_sent_from_el(c) for c in el if _local(c.tag) in
            ("Add", "Replace", "Delete", "Get", "Exec", "Copy", "Alert", "Atomic", "Sequence")]
    return SentCmd(name, cid, targets, kids, data=_text(el, "Data") if name == "Alert" else None)


class _Container(_CommandList):
    def __init__(self, parent, name, cmd_id):
        self.parent = parent
        self.name = name
        self.cmd_id = cmd_id
        self.parts = []
        self.sent = SentCmd(name, cmd_id)

    def _next_id(self):
        return self.parent._next_id()

    def _append(self, xml, sent):
        self.parts.append(xml)
        if sent is not None:
            self.sent.children.append(sent)

    def _register(self, sent):
        self.sent.children.append(sent)

    def xml(self):
        return "<%s><CmdID>%s</CmdID>%s</%s>" % (
            self.name, self.cmd_id, "".join(p if isinstance(p, str) else p.xml()
                                            for p in self.parts), self.name)


class ServerMessage(_CommandList):
    """A server message.  Build it with s.message(to); add Statuses and commands; s.reply(it).

    Attributes: msg_id, session_id, target, source, resp_uri, cred (xml text or None),
    final, to (the client Message answered), sent (list of SentCmd, commands only)."""

    def __init__(self, s, to, msg_id, session_id, target, source, cred_xml=None, resp_uri=None,
                 final=True, hdr_meta=None, source_name=None):
        self.s = s
        self.to = to
        self.msg_id = str(msg_id)
        self.session_id = session_id
        self.target = target
        self.source = source
        self.source_name = source_name
        self.cred_xml = cred_xml
        self.resp_uri = resp_uri
        self.final = final
        self.hdr_meta = hdr_meta
        self.parts = []
        self.sent = []
        self.statuses = []   # (cmd_ref, cmd, code)
        self.next_cmd_id = 1
        self.nonce_given = None   # NextNonce (bytes) this message gives the client
        self.body_override = None

    def _next_id(self):
        cid = str(self.next_cmd_id)
        self.next_cmd_id += 1
        return cid

    def _append(self, xml, sent):
        self.parts.append(xml)
        if sent is not None:
            self.sent.append(sent)

    def _register(self, sent):
        self.sent.append(sent)
        try:
            n = max(int(x.cmd_id) for x in sent.flat() if x.cmd_id.isdigit())
            self.next_cmd_id = max(self.next_cmd_id, n + 1)
        except ValueError:
            pass

    def status(self, cmd_ref, cmd, code, msg_ref=None, chal=None, items=None, target_refs=(),
               source_refs=(), cmd_id=None):
        """A Status.  chal: None or dict(type=..., format='b64', next_nonce=bytes|str)."""
        cid = str(cmd_id) if cmd_id is not None else self._next_id()
        msg_ref = msg_ref if msg_ref is not None else (self.to.msg_id if self.to else "1")
        parts = ["<Status><CmdID>%s</CmdID><MsgRef>%s</MsgRef><CmdRef>%s</CmdRef><Cmd>%s</Cmd>"
                 % (cid, esc(msg_ref), esc(cmd_ref), esc(cmd))]
        parts += ["<TargetRef>%s</TargetRef>" % esc(t) for t in target_refs]
        parts += ["<SourceRef>%s</SourceRef>" % esc(t) for t in source_refs]
        if chal:
            nn = chal.get("next_nonce")
            if isinstance(nn, (bytes, bytearray)):
                self.nonce_given = bytes(nn)
                nn = b64(nn)
            parts.append("<Chal>%s</Chal>" % _meta_xml([("Type", chal.get("type")),
                                                        ("Format", chal.get("format", "b64")),
                                                        ("NextNonce", nn)]))
        parts.append("<Data>%s</Data>" % esc(code))
        parts += [self._item_xml(**it) for it in (items or [])]
        parts.append("</Status>")
        self.parts.append("".join(parts))
        self.statuses.append((str(cmd_ref), cmd, code))
        return cid

    def hdr_status(self, code=200, chal=None):
        """Status for the client's SyncHdr (CmdRef 0).  With HMAC on (s.hmac) and no chal given,
        a Chal syncml:auth-MAC with a fresh NextNonce is added (every message supplies one)."""
        if chal is None and self.s.hmac:
            chal = dict(type=AUTH_MAC, next_nonce=os.urandom(16))
        return self.status("0", "SyncHdr", code, chal=chal)

    def ack_all(self, code=200, hdr=200, chal=None, codes=None):
        """Status for the client's SyncHdr (hdr, with chal) and for every command of the message
        answered except Status and Results (Results are acked only on error): code, or
        codes[CmdID]."""
        codes = codes or {}
        if hdr is not None:
            self.hdr_status(hdr, chal)
        if self.to is None:
            return
        for c in self.to.cmds:
            if c.name in ("Status", "Results"):
                continue
            self.status(c.cmd_id, c.name, codes.get(c.cmd_id, code))

    def xml(self):
        if self.body_override is not None:
            return self.body_override
        h = ["<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>",
             "<SessionID>%s</SessionID><MsgID>%s</MsgID>" % (esc(self.session_id), self.msg_id),
             "<Target><LocURI>%s</LocURI></Target>" % esc(self.target),
             "<Source><LocURI>%s</LocURI>%s</Source>" % (
                 esc(self.source),
                 "<LocName>%s</LocName>" % esc(self.source_name) if self.source_name else "")]
        if self.resp_uri:
            h.append("<RespURI>%s</RespURI>" % esc(self.resp_uri))
        if self.cred_xml:
            h.append(self.cred_xml)
        if self.hdr_meta:
            h.append(_meta_xml(self.hdr_meta))
        h.append("</SyncHdr>")
        body = "".join(p if isinstance(p, str) else p.xml() for p in self.parts)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<SyncML xmlns="SYNCML:SYNCML1.2">%s'
                "<SyncBody>%s%s</SyncBody></SyncML>\n" % ("".join(h), body,
                                                         "<Final/>" if self.final else ""))

    def cmd(self, cmd_id):
        for top in self.sent:
            for c in top.flat():
                if c.cmd_id == str(cmd_id):
                    return c
        return None


def cred_xml(type_, data, format="b64"):
    return "<Cred>%s<Data>%s</Data></Cred>" % (_meta_xml([("Type", type_), ("Format", format)]),
                                               esc(data))


class R:
    """An expected Results item: Source LocURI, Data, Meta Format (default chr) and Type
    (default: must be absent).  Any field may be ANY."""

    def __init__(self, uri, data, format="chr", type=ABSENT):
        self.uri, self.data, self.format, self.type = uri, data, format, type

    def __repr__(self):
        return "R(%r, %r, format=%r)" % (self.uri, _short(self.data) if isinstance(self.data, str)
                                         else self.data, self.format)


class Expect:
    """One expected client command for s.expect(..., extra=[...]) / s.expect_exact()."""

    def __init__(self, name, check=None, **fields):
        self.name, self.check, self.fields = name, check, fields


# ---------------------------------------------------------------------------------------
# the session object handed to the script

CLIENT_GONE = object()   # put into the inbox on SIGUSR1: the client has exited


class _Request:
    def __init__(self, method, path, headers, body, peer_cert):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.peer_cert = peer_cert
        self.done = threading.Event()
        self.response = None      # (status, headers dict, body bytes)


class Session:
    """What a script sees as `s`."""

    def __init__(self, args, params):
        self.args = args
        self.params = params
        self.timeout = args.timeout
        self.inbox = queue.Queue()
        self.pending = None          # _Request waiting for its answer
        self.stash = None            # a new session's package 1 seen by expect_no_request
        self.checks = 0
        self.failures = []
        self.notes = []
        self.requests = 0
        self.done = False
        self.completed = False
        self.port = None
        self.scheme = "https" if args.cert else "http"
        self.tls_errors = []
        self.lock = threading.Lock()
        self.logf = open(args.log, "a", encoding="utf-8") if args.log else None
        self.verbose = args.verbose
        self.state = {}
        if args.state and os.path.exists(args.state):
            with open(args.state, encoding="utf-8") as f:
                self.state = json.load(f)
        # identities (script parameters)
        self.server_id = self.param("server_id", "dmserver")
        self.server_secret = self.param("server_secret", "server-secret")
        self.client_user = self.param("client_user", None)   # default: the DevId
        self.client_secret = self.param("client_secret", "client-secret")
        self.hmac = False
        # nonces: the one we last gave the client, the one the client last gave us
        self.nonce_to_client = b64d(self.state.get("nonce_to_client", ""))
        self.nonce_from_client = b64d(self.state.get("nonce_from_client", ""))
        self.check_accept = self.param("check_accept", "1") != "0"
        self.encoding = self.param("encoding", None)         # "xml"/"wbxml": required encoding
        # session tracking
        self.sess_id = None
        self.srv_msg_id = 0
        self.last_sent = None
        self.last_msg = None
        self.dev_id = self.param("dev_id", None)

    # ---- parameters and logging ----

    def param(self, name, default=None):
        if name in self.params:
            return self.params[name]
        env = os.environ.get("DMSERVER_" + name.upper())
        return env if env is not None else default

    def param_int(self, name, default):
        return int(self.param(name, default))

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    @property
    def server_url(self):
        """The URL the client is expected to use (Target of package 1)."""
        return self.param("server_url", self.base_url + "/omadm")

    @property
    def user(self):
        return self.client_user or self.dev_id or "omadm-device"

    def log(self, text):
        line = "[%8.3f] %s" % (time.time() - START, text)
        with self.lock:
            if self.logf:
                self.logf.write(line + "\n")
                self.logf.flush()
            if self.verbose:
                sys.stderr.write(line + "\n")

    def note(self, text):
        """Something worth knowing that is not checked (printed as NOTE:)."""
        self.notes.append(text)
        self.log("NOTE: " + text)

    # ---- assertions ----

    def check(self, ok, text, msg=None):
        """Record a check; text says what was expected.  Returns ok."""
        self.checks += 1
        where = "msg %d: " % msg.num if msg is not None else ""
        if ok:
            self.log("ok: " + where + text)
        else:
            self.failures.append(where + text)
            self.log("FAIL: " + where + text)
        return ok

    def fail(self, text, msg=None):
        return self.check(False, text, msg)

    def check_eq(self, what, expected, got, msg=None):
        """'WHAT: expected E, got G'.  expected may be ANY (logged), a tuple or set of
        allowed values, or ABSENT (got must be None)."""
        if expected is ANY:
            self.log("(any) %s%s: %r" % ("msg %d: " % msg.num if msg else "", what, got))
            return True
        if expected is ABSENT:
            return self.check(got is None, "%s: expected none, got %r" % (what, got), msg)
        if isinstance(expected, (tuple, set, frozenset)):
            ok = got in expected
            return self.check(ok, "%s: expected one of %s, got %s" % (
                what, "/".join(str(e) for e in expected), _fmt(got)) if not ok else
                "%s: %s" % (what, _fmt(got)), msg)
        ok = got == expected
        return self.check(ok, ("%s: expected %s, got %s" % (what, _fmt(expected), _fmt(got)))
                          if not ok else "%s: %s" % (what, _fmt(got)), msg)

    def require(self, ok, text, msg=None):
        """Like check, but stops the script when it fails."""
        if not self.check(ok, text, msg):
            raise Abort(text)
        return True

    # ---- receiving ----

    def receive(self, timeout=None, what=None, allow_timeout=False):
        """The client's next message (a Message); blocks up to timeout (default --timeout).
        A timeout is a failure that stops the script, or returns None with allow_timeout."""
        if self.pending is not None:
            self.fail("script error: receive() while msg %d is not answered" % self.requests)
            self.reply_http(500, body=b"script error\n")
        timeout = self.timeout if timeout is None else timeout
        what = what or "msg %d" % (self.requests + 1)
        try:
            req, self.stash = self.stash or self.inbox.get(timeout=timeout), None
        except queue.Empty:
            req = None
        if req is CLIENT_GONE:
            self.inbox.put(CLIENT_GONE)
            if allow_timeout:
                self.log("no request: the client has exited (%s)" % what)
                return None
            self.fail("no request: the client exited before sending %s" % what)
            raise Abort("the client exited")
        if req is None:
            if allow_timeout:
                self.log("no request within %g s (%s)" % (timeout, what))
                return None
            self.fail("timeout: no request within %g s (waiting for %s)" % (timeout, what))
            raise Abort("timeout")
        self.requests += 1
        self.pending = req
        return self._accept(req)

    def receive_http(self, timeout=None, allow_timeout=False):
        """The next request without parsing (for HTTP-level tests): the _Request, pending."""
        timeout = self.timeout if timeout is None else timeout
        try:
            req = self.inbox.get(timeout=timeout)
        except queue.Empty:
            req = None
        if req is CLIENT_GONE:
            self.inbox.put(CLIENT_GONE)
            req = None
        if req is None:
            if allow_timeout:
                return None
            self.fail("no request within %g s or before the client exited (waiting for msg %d)"
                      % (timeout, self.requests + 1))
            raise Abort("timeout")
        self.requests += 1
        self.pending = req
        self.log(">>> request %d: %s %s (%d bytes) %s" % (
            self.requests, req.method, req.path, len(req.body),
            ", ".join("%s: %s" % kv for kv in sorted(req.headers.items()))))
        return req

    def _accept(self, req):
        n = self.requests
        h = req.headers
        self.log(">>> request %d: %s %s (%d bytes)" % (n, req.method, req.path, len(req.body)))
        for k, v in sorted(h.items()):
            self.log("    %s: %s" % (k, v))
        if req.peer_cert:
            self.log("    client certificate: %s serial %s" % (
                _dn(req.peer_cert.get("subject")), req.peer_cert.get("serialNumber", "?")))
        ctype = h.get("content-type", "")
        mime = ctype.split(";")[0].strip().lower()
        if mime == CT_WBXML:
            encoding = "wbxml"
        elif mime == CT_XML:
            encoding = "xml"
        else:
            encoding = "wbxml" if req.body[:1] in (b"\x01", b"\x02", b"\x03") else "xml"
            self.fail("Content-Type: expected %s or %s, got %r" % (CT_XML, CT_WBXML, ctype),
                      _Num(n))
        looks = "wbxml" if req.body[:1] in (b"\x01", b"\x02", b"\x03") else "xml"
        self.check(looks == encoding, "body is %s as its Content-Type says" % encoding, _Num(n))
        if self.check_accept:
            acc = [a.split(";")[0].strip().lower() for a in h.get("accept", "").split(",")]
            want = CT_WBXML if encoding == "wbxml" else CT_XML
            self.check(want in acc, "Accept lists %s (got %r)" % (want, h.get("accept")), _Num(n))
        if self.encoding:
            self.check_eq("encoding", self.encoding, encoding, _Num(n))
        self.check(req.method == "POST", "method POST (got %s)" % req.method, _Num(n))
        if encoding == "wbxml":
            try:
                xml_text = self.convert("to-xml", req.body).decode("utf-8")
            except Exception as e:   # noqa: BLE001
                self.fail("WBXML body does not convert to XML: %s" % e, _Num(n))
                raise Abort("bad body")
        else:
            try:
                xml_text = req.body.decode("utf-8")
            except UnicodeDecodeError:
                self.fail("XML body is not UTF-8", _Num(n))
                raise Abort("bad body")
        self.log(_pretty(xml_text))
        try:
            msg = Message(n, req.body, xml_text, encoding,
                          dict(method=req.method, path=req.path, headers=h,
                               peer_cert=req.peer_cert))
        except (ET.ParseError, ValueError) as e:
            self.fail("body is not a SyncML message: %s" % e, _Num(n))
            raise Abort("bad body")
        self.log("    = %s" % msg.describe())
        self._common_checks(msg)
        self.last_msg = msg
        return msg

    def _common_checks(self, msg):
        """Checks every client message must pass (docs/session.md, spec §2)."""
        h = msg.hdr
        self.check_eq("SyncML namespace", NS_SYNCML, msg.root_ns, msg)
        self.check_eq("VerDTD", "1.2", h.ver_dtd, msg)
        self.check_eq("VerProto", "DM/1.2", h.ver_proto, msg)
        if self.dev_id is None:
            self.dev_id = h.source
        self.check_eq("SyncHdr Source LocURI (DevId)", self.dev_id, h.source, msg)
        new_session = h.msg_id == "1"
        if new_session:
            if self.sess_id is not None and self.sess_id == h.session_id and self.last_sent:
                self.log("package 1 again with SessionID %s (a retry?)" % h.session_id)
            self.sess_id = h.session_id
            self.srv_msg_id = 0
            self.last_sent = None
            self.check_eq("SyncHdr Target LocURI (the server URL)", self.server_url, h.target, msg)
        else:
            self.check_eq("SessionID", self.sess_id, h.session_id, msg)
            if self.last_msg is not None and self.last_msg.session_id == h.session_id:
                try:
                    want = str(int(self.last_msg.msg_id) + 1)
                except (TypeError, ValueError):
                    want = None
                self.check_eq("MsgID", want, h.msg_id, msg)
            if self.last_sent is not None:
                self.check_eq("SyncHdr Target LocURI (the server's Source)",
                              self.last_sent.source, h.target, msg)
        if self.last_sent is not None and self.last_sent.resp_uri:
            want = _path_of(self.last_sent.resp_uri)
            self.check_eq("request path (the RespURI)", want, msg.http["path"], msg)
        sid = h.session_id or ""
        self.check(re.fullmatch(r"[0-9]{1,5}", sid) is not None and 1 <= int(sid) <= 65535,
                   "SessionID is a decimal 1..65535 (got %r)" % sid, msg)
        # the nonce the client gives us (its SyncHdr Status Chal)
        st = msg.status_for("0")
        if st is not None and st.chal is not None and st.chal.next_nonce is not None:
            try:
                self.nonce_from_client = b64d(st.chal.next_nonce)
            except ValueError:
                self.fail("NextNonce of the client's Chal is not base64: %r" % st.chal.next_nonce,
                          msg)
        if self.hmac:
            self._check_hmac(msg)
        # command ids: unique, never 0
        ids = []
        for c in msg.cmds:
            for x in _flat_cmds(c):
                ids.append(x.cmd_id)
        self.check(len(ids) == len(set(ids)) and "0" not in ids and None not in ids,
                   "CmdIDs unique and not 0 (got %s)" % ",".join(str(i) for i in ids), msg)

    def _check_hmac(self, msg):
        hv = msg.header("x-syncml-hmac")
        if not self.check(hv is not None, "x-syncml-hmac header present", msg):
            return
        f = parse_hmac_header(hv)
        self.check_eq("x-syncml-hmac algorithm", "MD5", f.get("algorithm"), msg)
        self.check_eq("x-syncml-hmac username", self.user, f.get("username"), msg)
        want = hmac_mac(self.user, self.client_secret, self.nonce_to_client, msg.raw)
        self.check(f.get("mac") == want,
                   "x-syncml-hmac mac over the body with nonce %r: expected %s, got %s" % (
                       b64(self.nonce_to_client), want, f.get("mac")), msg)

    # ---- building and replying ----

    def message(self, to=None, cred=None, resp_uri=None, final=True, source=None,
                session_id=None, target=None, hdr_meta=None):
        """A server message answering `to` (default: the last message received).  cred: None,
        'basic', 'md5' (the server's credentials: server_id/server_secret, md5 over the nonce
        the client last gave us), or Cred XML from cred_xml()."""
        to = to if to is not None else self.last_msg
        self.srv_msg_id += 1
        if cred == "basic":
            cred = cred_xml(AUTH_BASIC, basic_cred_data(self.server_id, self.server_secret))
        elif cred == "md5":
            cred = cred_xml(AUTH_MD5, md5_cred_data(self.server_id, self.server_secret,
                                                     self.nonce_from_client))
        return ServerMessage(self, to, self.srv_msg_id,
                             session_id if session_id is not None else
                             (to.session_id if to else "1"),
                             target if target is not None else (to.hdr.source if to else ""),
                             source if source is not None else self.server_id,
                             cred_xml=cred, resp_uri=resp_uri, final=final, hdr_meta=hdr_meta)

    def convert(self, direction, data):
        tool = self.args.syncmlconv
        if not tool:
            raise RuntimeError("WBXML needs --syncmlconv (or $SYNCMLCONV)")
        p = subprocess.run([tool, direction, "-", "-"], input=data, capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            raise RuntimeError("syncmlconv %s: exit %d: %s" % (direction, p.returncode,
                                                               p.stderr.decode(errors="replace")))
        return p.stdout

    def reply(self, m, encoding=None, hmac_sign=None, extra_headers=None):
        """Send server message m as the answer to the pending request, in the request's encoding
        (or encoding=).  With HMAC on, the response is signed (hmac_sign=False: no header;
        a (user, secret, nonce) tuple: sign with those)."""
        req = self._pending_or_fail("reply")
        if req is None:
            return m
        enc = encoding or (self.last_msg.encoding if self.last_msg else "xml")
        text = m.xml()
        body = text.encode("utf-8")
        if enc == "wbxml":
            body = self.convert("to-wbxml", body)
        headers = {"Content-Type": CT_WBXML if enc == "wbxml" else CT_XML}
        if self.hmac and hmac_sign is not False:
            u, sec, nonce = hmac_sign if isinstance(hmac_sign, tuple) else (
                self.server_id, self.server_secret, self.nonce_from_client)
            headers["x-syncml-hmac"] = hmac_header(u, sec, nonce, body)
        headers.update(extra_headers or {})
        if m.nonce_given is not None:
            self.nonce_to_client = m.nonce_given
        self.last_sent = m
        self.log("<<< response to request %d: 200 (%s, %d bytes)" % (self.requests, enc,
                                                                      len(body)))
        for k, v in headers.items():
            self.log("    %s: %s" % (k, v))
        self.log(_pretty(text))
        self._respond(req, 200, headers, body)
        return m

    def reply_empty(self, headers=None):
        """HTTP 200 with an empty body (ends the session, docs/session.md)."""
        req = self._pending_or_fail("reply_empty")
        if req is None:
            return
        enc = self.last_msg.encoding if self.last_msg else "xml"
        hd = {"Content-Type": CT_WBXML if enc == "wbxml" else CT_XML}
        hd.update(headers or {})
        self.log("<<< response to request %d: 200, empty body" % self.requests)
        self._respond(req, 200, hd, b"")

    def reply_http(self, status, headers=None, body=b""):
        """Any HTTP answer (e.g. 503 with Retry-After)."""
        req = self._pending_or_fail("reply_http")
        if req is None:
            return
        self.log("<<< response to request %d: HTTP %d %s" % (self.requests, status,
                                                            headers or ""))
        self._respond(req, status, dict(headers or {}), body)

    def _pending_or_fail(self, what):
        if self.pending is None:
            self.fail("script error: %s() without a request to answer" % what)
            return None
        req, self.pending = self.pending, None
        return req

    @staticmethod
    def _respond(req, status, headers, body):
        req.response = (status, headers, body)
        req.done.set()

    def expect_no_request(self, seconds=2.0, why="the session is over", exact=False):
        """Check that the client sends nothing more within `seconds` (param quiet_seconds
        overrides it unless exact: a test that waits for the client to exit first can keep the
        wait short)."""
        if not exact:
            seconds = float(self.param("quiet_seconds", seconds))
        req = None
        try:
            req = self.inbox.get(timeout=seconds)
        except queue.Empty:
            pass
        if req is CLIENT_GONE:
            self.inbox.put(CLIENT_GONE)
            self.check(True, "no request before the client exited (%s)" % why)
            return True
        if req is None:
            self.check(True, "no request within %g s (%s)" % (seconds, why))
            return True
        if self._new_session(req):
            # the next session's package 1 (a multi-session test): keep it for receive()
            self.stash = req
            self.check(True, "no further request in this session (%s); the next session "
                       "started" % why)
            return True
        self.requests += 1
        self.pending = req
        self.fail("msg %d: unexpected request within %g s (%s): %s" % (
            self.requests, seconds, why, _short(req.body.decode("utf-8", "replace"), 300)))
        self.reply_http(500, body=b"unexpected request\n")
        return False

    def _new_session(self, req):
        """Whether req is package 1 of another session (MsgID 1, another SessionID)."""
        body = req.body
        try:
            if body[:1] in (b"\x01", b"\x02", b"\x03"):
                body = self.convert("to-xml", body)
            root = ET.fromstring(body)
            h = _child(root, "SyncHdr")
            return _text(h, "MsgID") == "1" and _text(h, "SessionID") != self.sess_id
        except Exception:   # noqa: BLE001
            return False

    def end(self, to=None, seconds=2.0, **kw):
        """End the session: a message with only Statuses (ack_all) and Final, no commands;
        then check that the client sends nothing more within `seconds`."""
        m = self.message(to, **kw)
        m.ack_all()
        self.reply(m)
        self.expect_no_request(seconds)
        return m

    # ---- expectations on replies ----

    def expect(self, msg, answers, codes=None, default=200, results=None, hdr=200, hdr_chal=None,
               extra=(), final=True, cred=ABSENT):
        """Check that msg is exactly the reply to server message `answers`: SyncHdr Status
        (CmdRef 0, code hdr, Chal per hdr_chal: None = none, ANY, or dict of Meta fields), then
        for every command sent (Atomic/Sequence flattened, in order) one Status (MsgRef, CmdRef,
        Cmd, code = codes.get(CmdID, default)), and after a Get answered 200 its Results (items
        per results[CmdID]: list of R, or ANY; default one item per target, Source = target);
        then the commands in `extra` (Expect objects, e.g. a package 1 again); CmdIDs 1, 2, ...;
        Final; cred: ABSENT (no Cred), ANY, or a (type, data) pair."""
        codes = codes or {}
        results = results or {}
        mref = answers.msg_id
        exp = [("Status", "0", "SyncHdr", hdr, hdr_chal)]
        for top in answers.sent:
            for c in top.flat():
                exp.append(("Status", c.cmd_id, c.name, codes.get(c.cmd_id, default), None))
                if c.name == "Get":
                    exp.append(("Results?", c.cmd_id, c, results.get(c.cmd_id), None))
        got = list(msg.cmds)
        i = 0
        for e in exp:
            kind, ref, name, code_or_items, chal = e
            if kind == "Results?":
                st = msg.status_for(ref, mref)
                if st is None or st.code != 200:
                    # no Results after a failed Get
                    if i < len(got) and got[i].name == "Results" and got[i].cmd_ref == ref:
                        self.fail("Results for CmdID %s (Get) although its Status is %s" % (
                            ref, st.data if st else None), msg)
                        i += 1
                    continue
                if i >= len(got) or got[i].name != "Results":
                    self.fail("Results for CmdID %s (Get %s): missing (got %s)" % (
                        ref, ",".join(name.targets),
                        got[i].describe() if i < len(got) else "end of message"), msg)
                    continue
                self._check_results(msg, got[i], ref, mref, name, code_or_items)
                i += 1
                continue
            what = "Status for CmdID %s (%s)" % (ref, name) if ref != "0" else \
                "Status for the SyncHdr"
            if i >= len(got):
                self.fail("%s: missing (message ends)" % what, msg)
                continue
            g = got[i]
            if g.name != "Status" or g.cmd_ref != ref:
                # find it elsewhere to give a precise message
                other = msg.status_for(ref)
                if other is not None:
                    self.fail("%s: out of order (command %d of the reply is %s)" % (
                        what, i + 1, g.describe()), msg)
                    g = other
                else:
                    self.fail("%s: missing (command %d of the reply is %s)" % (
                        what, i + 1, g.describe()), msg)
                    continue
            else:
                i += 1
            self._check_status(msg, g, what, ref, name, mref, code_or_items, chal)
        for e in extra:
            if i >= len(got):
                self.fail("%s: missing (message ends)" % e.name, msg)
                continue
            g = got[i]
            i += 1
            if not self.check_eq("command %d of the reply" % i, e.name, g.name, msg):
                continue
            for k, v in e.fields.items():
                self.check_eq("%s CmdID %s %s" % (g.name, g.cmd_id, k), v, getattr(g, k), msg)
            if e.check:
                e.check(self, msg, g)
        for g in got[i:]:
            self.fail("unexpected command in the reply: %s" % g.describe(), msg)
        self._check_cmd_ids(msg)
        self.check_eq("Final", final, msg.final, msg)
        if cred is ABSENT:
            self.check(msg.hdr.cred is None, "no Cred in the SyncHdr (got %s)" % (
                "Cred " + str(msg.hdr.cred.type) if msg.hdr.cred else "none"), msg)
        elif cred is not ANY:
            self.check_cred(msg, *cred)

    def _check_status(self, msg, g, what, ref, name, mref, code, chal):
        self.check_eq(what + " MsgRef", mref, g.msg_ref, msg)
        self.check_eq(what + " Cmd", name, g.cmd, msg)
        if code is ANY:
            self.note("msg %d: %s: %s" % (msg.num, what, g.data))
        elif isinstance(code, (tuple, list, set)):
            ok = g.code in code and g.data == str(g.code)
            self.check(ok, "%s: expected one of %s, got %s" % (
                what, "/".join(map(str, code)), g.data), msg)
        else:
            self.check(g.data == str(code), "%s: expected %s, got %s" % (what, code, g.data), msg)
        if chal is None:
            self.check(g.chal is None, "%s: no Chal (got %r)" % (what, g.chal), msg)
        elif chal is not ANY:
            if self.check(g.chal is not None, "%s: Chal present" % what, msg):
                for k, v in chal.items():
                    got = getattr(g.chal, k)
                    if v is ANY:
                        self.check(got is not None, "%s Chal %s present (got %r)" % (what, k, got),
                                   msg)
                    else:
                        self.check_eq("%s Chal %s" % (what, k), v, got, msg)

    def _check_results(self, msg, g, ref, mref, get, items):
        what = "Results for CmdID %s (Get)" % ref
        self.check_eq(what + " CmdRef", ref, g.cmd_ref, msg)
        self.check_eq(what + " MsgRef", mref, g.msg_ref, msg)
        if g.cmd is not None:
            self.check_eq(what + " Cmd", "Get", g.cmd, msg)
        if items is ANY:
            self.log("(any) msg %d: %s items: %r" % (msg.num, what, g.items))
            return
        if items is None:
            items = [R(t, ANY, ANY, ANY) for t in get.targets]
        if not self.check(len(g.items) == len(items), "%s: expected %d item(s), got %d" % (
                what, len(items), len(g.items)), msg):
            return
        for k, (want, it) in enumerate(zip(items, g.items), 1):
            w = "%s item %d" % (what, k)
            self.check_eq(w + " Source LocURI", want.uri, it.source, msg)
            self.check_eq(w + " Meta Format", want.format, it.format, msg)
            self.check_eq(w + " Meta Type", want.type, it.type, msg)
            self.check_eq(w + " Data", want.data, it.data, msg)

    def _check_cmd_ids(self, msg):
        ids = [c.cmd_id for c in msg.cmds]
        want = [str(k) for k in range(1, len(ids) + 1)]
        self.check_eq("CmdIDs of the reply", ",".join(want), ",".join(str(i) for i in ids), msg)

    def check_cred(self, msg, type_, data, user=None):
        """The client's SyncHdr Cred: Meta Type type_, Format b64, Data data; LocName user."""
        c = msg.hdr.cred
        if not self.check(c is not None, "SyncHdr Cred %s present" % type_, msg):
            return False
        ok = self.check_eq("Cred Meta Type", type_, c.type, msg)
        ok &= self.check_eq("Cred Meta Format", "b64", c.format, msg)
        ok &= self.check_eq("Cred Data", data, c.data, msg)
        if user is not None:
            ok &= self.check_eq("SyncHdr Source LocName (user)", user, msg.hdr.source_name, msg)
        return ok

    def expect_package1(self, msg, msg_id="1", alert="1201", alerts=(), cred=ABSENT, user=None,
                        hdr_status=None, session_id=None):
        """Package 1 per docs/session.md: SyncHdr (VerDTD, VerProto, SessionID, MsgID msg_id,
        Target = server URL, Source = DevId, LocName only with Cred, Cred per `cred`, Meta
        MaxMsgSize/MaxObjSize (may be left out when package 1 is sent again)), then
        (hdr_status: code of a Status for the server's SyncHdr first, when package 1 is sent
        again after a challenge) Alert 1201, Replace of the five
        DevInfo leaves (Format chr) in order, one Alert 1226 per entry of alerts (dicts:
        source, type, format, mark, data), Final.  cred: ABSENT, ANY, or (type, data)."""
        h = msg.hdr
        self.check_eq("MsgID", str(msg_id), h.msg_id, msg)
        if session_id is not None:
            self.check_eq("SessionID", str(session_id), h.session_id, msg)
        allowed = ["VerDTD", "VerProto", "SessionID", "MsgID", "Target", "Source", "Cred", "Meta"]
        self.check([t for t in h.tags if t not in allowed] == [],
                   "SyncHdr elements %s (got %s)" % ("/".join(allowed), "/".join(h.tags)), msg)
        if cred is ABSENT:
            self.check(h.cred is None, "no Cred in package 1", msg)
            self.check(h.source_name is None, "no Source LocName without Cred (got %r)" %
                       h.source_name, msg)
        elif cred is not ANY:
            self.check_cred(msg, cred[0], cred[1], user if user is not None else self.user)
        meta = h.meta or Meta()
        mms, mos = self.param("max_msg_size", "4194304"), self.param("max_obj_size", "1048576")
        if str(msg_id) != "1" and h.meta is None:
            # package 1 again: the sizes advertised in MsgID 1 stay in force (spec §4)
            self.log("package 1 again without SyncHdr Meta (MaxMsgSize/MaxObjSize of MsgID 1 "
                     "stay in force)")
        else:
            self.check_eq("SyncHdr Meta MaxMsgSize", mms, meta.max_msg_size, msg)
            self.check_eq("SyncHdr Meta MaxObjSize", mos, meta.max_obj_size, msg)
        for t in ("MaxMsgSize", "MaxObjSize"):
            if t in meta.namespaces:
                self.check_eq("SyncHdr Meta %s namespace" % t, NS_METINF, meta.namespaces[t], msg)
        cmds = list(msg.cmds)
        n = 1
        if hdr_status is not None:
            want = self.last_sent.msg_id if self.last_sent else None
            if self.check(bool(cmds) and cmds[0].name == "Status",
                          "package 1 again starts with the Status for the server's SyncHdr", msg):
                st = cmds.pop(0)
                self.check_eq("Status CmdID", "1", st.cmd_id, msg)
                self.check_eq("Status MsgRef", want, st.msg_ref, msg)
                self.check_eq("Status CmdRef", "0", st.cmd_ref, msg)
                self.check_eq("Status Cmd", "SyncHdr", st.cmd, msg)
                self.check_eq("Status for the server's SyncHdr", str(hdr_status), st.data, msg)
                n = 2
        if self.check(len(cmds) >= 2, "package 1 has Alert and Replace (got %s)" % ", ".join(
                c.name for c in cmds), msg):
            a, r = cmds[0], cmds[1]
            self.check_eq("command %d" % n, "Alert", a.name, msg)
            self.check_eq("Alert CmdID", str(n), a.cmd_id, msg)
            self.check_eq("Alert Data", alert, a.data, msg)
            self.check_eq("Alert items", 0, len(a.items), msg)
            self.check_eq("command %d" % (n + 1), "Replace", r.name, msg)
            self.check_eq("Replace CmdID", str(n + 1), r.cmd_id, msg)
            want = [("./DevInfo/DevId", self.dev_id),
                    ("./DevInfo/Man", self.param("man", "omadm")),
                    ("./DevInfo/Mod", self.param("mod", "omadm-client")),
                    ("./DevInfo/DmV", self.param("dmv", "1.2")),
                    ("./DevInfo/Lang", self.param("lang", "en-US"))]
            self.check_eq("Replace item Sources", [u for u, _ in want],
                          [it.source for it in r.items], msg)
            for (uri, val), it in zip(want, r.items):
                self.check_eq("Replace %s Data" % uri, val, it.data, msg)
                self.check_eq("Replace %s Meta Format" % uri, "chr", it.format, msg)
                self.check_eq("Replace %s Target" % uri, None, it.target, msg)
            rest = cmds[2:]
            self.check_eq("number of generic alerts", len(alerts), len(rest), msg)
            for k, (want_al, g) in enumerate(zip(alerts, rest)):
                w = "generic alert %d" % (k + 1)
                self.check_eq(w + " command", "Alert", g.name, msg)
                self.check_eq(w + " CmdID", str(n + 2 + k), g.cmd_id, msg)
                self.check_eq(w + " Data", "1226", g.data, msg)
                if self.check_eq(w + " items", 1, len(g.items), msg):
                    it = g.items[0]
                    self.check_eq(w + " Source LocURI", want_al.get("source", ANY), it.source, msg)
                    self.check_eq(w + " Meta Type", want_al.get("type", ANY), it.type, msg)
                    self.check_eq(w + " Meta Format", want_al.get("format", ANY), it.format, msg)
                    self.check_eq(w + " Meta Mark", want_al.get("mark", ABSENT),
                                  it.meta.mark if it.meta else None, msg)
                    self.check_eq(w + " Data", want_al.get("data", ANY), it.data, msg)
        self.check_eq("Final", True, msg.final, msg)
        return msg

    # ---- persistence ----

    def save_state(self):
        if not self.args.state:
            return
        self.state["nonce_to_client"] = b64(self.nonce_to_client)
        self.state["nonce_from_client"] = b64(self.nonce_from_client)
        tmp = self.args.state + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.args.state)


class _Num:
    """Stands in for a Message in check() before the message is parsed."""

    def __init__(self, num):
        self.num = num


def _fmt(v):
    if isinstance(v, str):
        return repr(_short(v, 200))
    return repr(v)


def _pretty(xml_text):
    """Indented XML for the log (the bytes on the wire are logged as they are only when this
    fails)."""
    try:
        import xml.dom.minidom
        out = xml.dom.minidom.parseString(xml_text.encode("utf-8")).toprettyxml(indent="  ")
        return "\n".join(line for line in out.splitlines()[1:] if line.strip())
    except Exception:   # noqa: BLE001
        return xml_text.rstrip()


def _dn(subject):
    if not subject:
        return "-"
    return ", ".join("%s=%s" % kv for rdn in subject for kv in rdn)


def _path_of(url):
    m = re.match(r"^[a-z]+://[^/]+(/[^#]*)?", url)
    return (m.group(1) or "/") if m else url


def _flat_cmds(c):
    yield c
    for k in c.children:
        yield from _flat_cmds(k)


# ---------------------------------------------------------------------------------------
# HTTP(S)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dmserver/1"
    timeout = 120

    def setup(self):
        self.tls_failed = False
        self.peer_cert = None
        ctx = self.server.ssl_ctx
        if ctx is not None:
            raw = self.request
            raw.settimeout(15)
            try:
                self.request = ctx.wrap_socket(raw, server_side=True)
                self.peer_cert = self.request.getpeercert() or None
            except (ssl.SSLError, OSError) as e:
                self.tls_failed = True
                self.server.session.tls_errors.append(str(e))
                self.server.session.log("TLS handshake failed: %s" % e)
                try:
                    raw.close()
                except OSError:
                    pass
                return
        super().setup()

    def handle(self):
        if not self.tls_failed:
            super().handle()

    def finish(self):
        if not self.tls_failed:
            try:
                super().finish()
            except OSError:
                pass

    def log_message(self, fmt, *args):
        self.server.session.log("http: " + (fmt % args))

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def _serve(self, method):
        s = self.server.session
        body = self._read_body() if method == "POST" else b""
        path = self.path
        if not (path == "/omadm" or path.startswith("/omadm/") or path.startswith("/omadm?")):
            s.log("request for %s %s: 404" % (method, path))
            s.fail("request %s %s outside /omadm" % (method, path))
            self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        if s.done:
            self._send(503, {"Content-Type": "text/plain"}, b"the script has ended\n")
            s.fail("request after the script ended: %s %s" % (method, path))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = _Request(method, path, headers, body, self.peer_cert)
        s.inbox.put(req)
        while not req.done.wait(0.5):
            if s.done and not req.done.is_set():
                self._send(500, {"Content-Type": "text/plain"}, b"the script has ended\n")
                return
        status, hdrs, rbody = req.response
        self._send(status, hdrs, rbody)

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_POST(self):   # noqa: N802
        self._serve("POST")

    def do_GET(self):    # noqa: N802
        self._serve("GET")

    def do_PUT(self):    # noqa: N802
        self._serve("PUT")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def handle_error(self, request, client_address):
        self.session.log("http: error with %s: %s" % (client_address, traceback.format_exc()))


def make_ssl_context(args):
    if not args.cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key or None)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=args.client_ca)
    return ctx


# ---------------------------------------------------------------------------------------
# main

START = time.time()


class UsageError(Exception):
    pass


def load_script(name):
    if name.endswith(".py") or "/" in name:
        path = name
    else:
        if name.startswith("_") or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise UsageError("bad script name %r" % name)
        path = os.path.join(HERE, "scripts", name + ".py")
    if not os.path.exists(path):
        raise UsageError("no script %s" % path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("dmscript_" + re.sub(r"\W", "_", name), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "run"):
        raise UsageError("%s has no run(s)" % path)
    return mod


def main(argv=None):
    sys.dont_write_bytecode = True     # no __pycache__ in the source tree (scripts import helpers)
    sys.modules.setdefault("dmserver", sys.modules[__name__])
    ap = argparse.ArgumentParser(description="Scripted OMA DM test server (see README).")
    ap.add_argument("--script", required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca")
    ap.add_argument("--syncmlconv", default=os.environ.get("SYNCMLCONV"))
    ap.add_argument("--state")
    ap.add_argument("--log")
    ap.add_argument("--summary")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds to wait for each request (default 30)")
    ap.add_argument("--max-time", type=float, default=600.0,
                    help="the whole run fails after this many seconds (default 600)")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.syncmlconv is None:
        for cand in ("build/debug/tests/tools/syncmlconv",):
            p = os.path.join(REPO, cand)
            if os.access(p, os.X_OK):
                args.syncmlconv = p
    params = {}
    for kv in args.param:
        if "=" not in kv:
            ap.error("--param wants KEY=VALUE, got %r" % kv)
        k, v = kv.split("=", 1)
        params[k] = v
    if args.client_ca and not args.cert:
        ap.error("--client-ca needs --cert")

    try:
        script = load_script(args.script)
    except UsageError as e:
        print("dmserver: %s" % e, file=sys.stderr)
        return 2
    s = Session(args, params)
    s.log("dmserver: script %s, params %s" % (args.script, params))
    try:
        ctx = make_ssl_context(args)
    except (ssl.SSLError, OSError) as e:
        print("dmserver: TLS setup: %s" % e, file=sys.stderr)
        return 2
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.session = s
    httpd.ssl_ctx = ctx
    s.port = httpd.server_address[1]
    s.log("listening on %s/omadm" % s.base_url)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % s.port)
        os.replace(tmp, args.port_file)

    outcome = {"error": None}

    def body():
        try:
            script.run(s)
            s.completed = True
        except Abort as e:
            outcome["error"] = "aborted: %s" % e
        except Exception:   # noqa: BLE001
            tb = traceback.format_exc()
            s.log(tb)
            outcome["error"] = "script error: %s" % tb.strip().splitlines()[-1]
            s.fail(outcome["error"])

    def on_signal(signum, frame):
        outcome["error"] = "killed by signal %d" % signum
        s.fail(outcome["error"])
        finish()
        os._exit(1)

    def finish():
        if s.pending is not None:
            if s.completed:
                s.fail("the script ended without answering msg %d" % s.requests)
            s._respond(s.pending, 500, {"Content-Type": "text/plain"}, b"script ended\n")
            s.pending = None
        if s.stash is not None:
            s.requests += 1
            s.fail("msg %d: a new session started after the script's last one" % s.requests)
            s._respond(s.stash, 500, {"Content-Type": "text/plain"}, b"script ended\n")
            s.stash = None
        s.done = True
        ok = s.completed and not s.failures
        name = os.path.basename(args.script)
        for f in s.failures:
            print("FAIL: %s" % f)
        for n in s.notes:
            print("NOTE: %s" % n)
        if ok:
            line = "PASS: %s: %d checks, %d requests" % (name, s.checks, s.requests)
        else:
            line = "FAIL: %s: %d of %d checks failed, %d requests%s" % (
                name, len(s.failures), s.checks, s.requests,
                "; " + outcome["error"] if outcome["error"] else
                ("" if s.completed else "; the script did not complete"))
        print(line)
        sys.stdout.flush()
        s.log(line)
        if args.summary:
            with open(args.summary, "w", encoding="utf-8") as f:
                json.dump({"script": name, "result": "PASS" if ok else "FAIL",
                           "checks": s.checks, "failures": s.failures, "notes": s.notes,
                           "requests": s.requests, "completed": s.completed,
                           "error": outcome["error"], "tls_errors": s.tls_errors,
                           "port": s.port}, f, indent=1)
                f.write("\n")
        try:
            s.save_state()
        except OSError as e:
            print("dmserver: cannot write the state: %s" % e, file=sys.stderr)
        return ok

    def on_usr1(signum, frame):
        s.log("SIGUSR1: the client has exited")
        s.inbox.put(CLIENT_GONE)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_usr1)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    deadline = time.time() + args.max_time
    while t.is_alive():
        t.join(0.2)
        if time.time() > deadline:
            outcome["error"] = "the run took longer than --max-time %g s" % args.max_time
            s.fail(outcome["error"])
            break
    ok = finish()
    time.sleep(0.1)    # let a handler thread deliver the last answer
    httpd.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
