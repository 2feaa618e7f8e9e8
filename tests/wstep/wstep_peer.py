#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""wstep_peer.py - a scripted MS-WSTEP enrollment service for certificate renewal tests.

    wstep_peer.py --ca-cert PEM --ca-key PEM [--cert C --key K [--client-ca CA]]
                  [--port-file F] [--path P] [--mode M1,M2,...] [--script FILE.py]
                  [--current-cert PEM] [--validity SECONDS] [--issued-out F]
                  [--state F] [--log F] [--summary F] [--max-requests N]
                  [--expect-requests N] [--max-time S] [--param KEY=VALUE]... [-v]

Plays the enrollment service (ES) of [MS-MDE2] 3.5 (certificate renewal) on 127.0.0.1,
port 0 (written to --port-file once the socket accepts connections).  Every POST to --path
is checked as a RequestSecurityToken of [MS-MDE2] 3.5.4.1.1.1 / [MS-WSTEP] 3.1.4.1.3.3
sent over TLS with the device's current certificate (ROBO): SOAP 1.2, the WS-Addressing
header, TokenType, RequestType, the BinarySecurityToken (a PKCS#7 signed with the TLS client
certificate's key that wraps a PKCS#10 for a new key with the expected subject),
AdditionalContext.  Then the request is answered by the mode of its number (--mode is a
list; request N takes entry N, the last entry repeats; --script FILE.py defining
choose(n, info) decides instead): an RSTRC with a wap-provisioningdoc holding the
certificate the test CA signed ([MS-MDE2] 3.4.4.1.1.2, 3.5.4.1.1.2), a SOAP fault
([MS-MDE2] 2.2.10, [MS-WSTEP] 4.1.4.2), a pending answer ([MS-WSTEP] 3.1.4.1.3.2), or a
transport failure.  See tests/wstep/README.md for the modes and the parameters.

Every check is recorded ("ok: ..." / "FAIL: ..." in --log, counted in --summary); a request
that fails a check of the peer's own is refused with the fault the README names, whatever
the mode.  The run ends at SIGTERM/SIGINT/SIGUSR1, after --max-requests answers or after
--max-time; it prints the FAIL lines and one PASS/FAIL line, writes --summary and --state,
and exits 0 only when every check passed (1 otherwise, 2 usage or setup errors).

Python 3 standard library, the `cryptography` package (Debian python3-cryptography) for the
certificates and the `openssl` CLI for the PKCS#7 signature.
"""

import argparse
import base64
import datetime
import hashlib
import http.server
import importlib.util
import json
import os
import re
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

# ---------------------------------------------------------------------------------------
# names from the documents (tests/wstep/README.md says where each comes from)

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://www.w3.org/2005/08/addressing"
NS_WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_AC = "http://schemas.xmlsoap.org/ws/2006/12/authorization"
NS_WSTEP = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"
NS_DIAG = "http://schemas.microsoft.com/2004/09/ServiceModel/Diagnostics"
NS_WCF = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"

ACTION_RST = NS_WSTEP + "/RST/wstep"
ACTION_RSTRC = NS_WSTEP + "/RSTRC/wstep"
ACTION_WCF_FAULT = NS_WCF + "/fault"
TOKEN_TYPE = "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken"
TOKEN_X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
VT_PROVDOC = ("http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/"
              "DeviceEnrollmentProvisionDoc")
RT_ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
RT_RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew"
RT_QUERY = NS_WSTEP + "/QueryTokenStatus"
VT_PKCS7 = (NS_WSSE + "#PKCS7",            # [MS-MDE2] 3.5.4.1.1.1, the renewal page, [MS-WSTEP] 4.1.5.1
            NS_WSTEP + "#PKCS7")           # [MS-MDE] 3.5.4.1.1.1 (the older document)
VT_PKCS10 = NS_WSTEP + "#PKCS10"           # [MS-MDE2] 3.4.4.1.1.1
ENC_B64 = NS_WSSE + "#base64binary"
PASSWORD_TEXT = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-username-token-profile-1.0#PasswordText")
CT_SOAP12 = "application/soap+xml"

# [MS-MDE2] 3.5.4.1.1.1: the AdditionalContext items a renewal request carries
RENEW_CONTEXT_ITEMS = ("OSEdition", "OSVersion", "DeviceName", "EnrollmentType", "DeviceType",
                       "ApplicationVersion", "DeviceID")

# s:Subcode values: [MS-MDE2] 2.2.10 and Microsoft's "Enrollment error messages" table.
# name -> (namespace of the QName, prefix, HRESULT, our reason text)
FAULTS = {
    "MessageFormat": (NS_S, "s", 0x80180001, "The request message is not in the expected format"),
    "Authentication": (NS_S, "s", 0x80180002, "The device could not be authenticated"),
    "Authorization": (NS_S, "s", 0x80180003, "The device may not renew its certificate"),
    "CertificateRequest": (NS_S, "s", 0x80180004, "The certificate request was refused"),
    "EnrollmentServer": (NS_S, "s", 0x80180005, "The enrollment server failed"),
    # [MS-WSTEP] 4.1.4.2: a:InternalServiceFault with a: the WCF dispatcher namespace
    "InternalServiceFault": (NS_WCF, "a", 0x80180006,
                             "The server could not process the request because of an internal error"),
    # WS-Security 1.0 section 12: wsse:InvalidSecurity (the error table writes it a:)
    "InvalidSecurity": (NS_WSSE, "a", 0x80180007, "The security of the message could not be verified"),
}
# errortype of the deviceenrollmentserviceerror detail (the same table's second part)
DETAIL_ERRORS = {
    "DeviceCapReached": 0x80180013,
    "DeviceNotSupported": 0x80180014,
    "NotSupported": 0x80180015,
    "NotEligibleToRenew": 0x80180016,
    "InMaintenance": 0x80180017,
    "UserLicense": 0x80180018,
    "InvalidEnrollmentData": 0x80180019,
}

MODE_RE = re.compile(r"^(issue|pending|drop|redirect|wrong-key|fault:(%s)|detail:(%s)|"
                     r"wstep-fault(:(0x[0-9a-fA-F]{1,8}|-?[0-9]+))?|http:[1-5][0-9][0-9]|"
                     r"slow:[0-9]+(\.[0-9]+)?|malformed:(xml|base64|nocert|hash|soap|valuetype))$"
                     % ("|".join(FAULTS), "|".join(DETAIL_ERRORS)))

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = datetime.timezone.utc


def now_utc():
    return datetime.datetime.now(UTC)


def not_after(cert):
    t = getattr(cert, "not_valid_after_utc", None)
    return t if t is not None else cert.not_valid_after.replace(tzinfo=UTC)


def not_before(cert):
    t = getattr(cert, "not_valid_before_utc", None)
    return t if t is not None else cert.not_valid_before.replace(tzinfo=UTC)


def sha1_hex(cert):
    return cert.fingerprint(hashes.SHA1()).hex().upper()   # noqa: S303 (a thumbprint)


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class UsageError(Exception):
    pass


class Refusal(Exception):
    """A check of the peer's own failed: answer this fault (subcode, reason)."""

    def __init__(self, subcode, reason, detail=None):
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------------------
# XML helpers

def q(ns, name):
    return "{%s}%s" % (ns, name)


def children(el, ns, name):
    return [c for c in el if c.tag == q(ns, name)]


def one(el, ns, name):
    found = children(el, ns, name)
    return found[0] if len(found) == 1 else None


def text(el):
    return (el.text or "").strip() if el is not None else None


# ---------------------------------------------------------------------------------------
# the peer

class Request:
    """What one POST carried (also what a --script's choose() sees)."""

    def __init__(self, n, method, path, headers, body, peer_der):
        self.n = n
        self.method = method
        self.path = path
        self.headers = headers          # lower-case names
        self.body = body
        self.peer_der = peer_der        # the TLS client certificate (DER) or None
        self.request_type = None        # Renew / Issue / QueryTokenStatus URI
        self.message_id = None
        self.request_id = None          # wstep:RequestID of a QueryTokenStatus
        self.context = {}               # AdditionalContext Name -> [values]
        self.csr = None
        self.tls_cert = None
        self.issued = None              # the state's record of the certificate answered
        self.checks = []                # "ok: ..." / "FAIL: ..."


class Peer:
    def __init__(self, args, params):
        self.args = args
        self.params = params
        self.lock = threading.RLock()
        self.logf = open(args.log, "a", encoding="utf-8") if args.log else None
        self.checks = 0
        self.failures = []
        self.notes = []
        self.requests = []              # summary entries
        self.tls_errors = []
        self.answered = 0
        self.port = None
        self.done = threading.Event()
        self.modes = [m.strip() for m in (args.mode or "issue").split(",") if m.strip()]
        for m in self.modes:
            if not MODE_RE.match(m):
                raise UsageError("unknown mode %r (see tests/wstep/README.md)" % m)
        self.script = load_script(args.script) if args.script else None
        self.ca_cert = load_cert(args.ca_cert)
        with open(args.ca_key, "rb") as f:
            self.ca_key = serialization.load_pem_private_key(f.read(), None)
        if spki(self.ca_key.public_key()) != spki(self.ca_cert.public_key()):
            raise UsageError("--ca-key is not the key of --ca-cert")
        self.root_cert = load_cert(args.root_cert) if args.root_cert else self.ca_cert
        self.current_cert = load_cert(args.current_cert) if args.current_cert else None
        self.state = {"requests": 0, "request_id": 0, "issued": [], "pending": {}}
        if args.state and os.path.exists(args.state):
            with open(args.state, encoding="utf-8") as f:
                self.state.update(json.load(f))
        if self.param("request_type", "renew") not in ("renew", "issue", "any"):
            raise UsageError("request_type must be renew, issue or any")
        if self.param("store", "auto") not in ("auto", "User", "System"):
            raise UsageError("store must be auto, User or System")
        if self.param("pkc", "auto") not in ("auto", "child", "sibling"):
            raise UsageError("pkc must be auto, child or sibling")

    # -- recording ---------------------------------------------------------------------

    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.args.cert else "http", self.port)

    def param(self, key, default=None):
        if key in self.params:
            return self.params[key]
        return os.environ.get("WSTEP_PEER_" + key.upper(), default)

    def log(self, line):
        stamp = "%8.3f " % (time.time() - START)
        for part in str(line).splitlines() or [""]:
            if self.logf:
                self.logf.write(stamp + part + "\n")
                self.logf.flush()
            if self.args.verbose:
                sys.stderr.write(stamp + part + "\n")

    def check(self, req, ok, what):
        with self.lock:
            self.checks += 1
            line = ("ok: " if ok else "FAIL: ") + what
            if req is not None:
                req.checks.append(line)
            self.log("  " + line)
            if not ok:
                self.failures.append(("req %d: " % req.n if req is not None else "") + what)
        return ok

    def note(self, req, what):
        with self.lock:
            self.notes.append(("req %d: " % req.n if req is not None else "") + what)
            if req is not None:
                req.checks.append("note: " + what)
            self.log("  note: " + what)

    def save_state(self):
        if not self.args.state:
            return
        tmp = self.args.state + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.args.state)     # a peer killed with -9 leaves the old or the new

    # -- the mode of a request -----------------------------------------------------------

    def mode_for(self, req):
        if self.script is not None:
            m = self.script.choose(req.n, req)
            if not isinstance(m, str) or not MODE_RE.match(m):
                raise UsageError("the script's choose() returned %r" % (m,))
            return m
        return self.modes[min(req.n, len(self.modes)) - 1]

    # -- checks ------------------------------------------------------------------------

    def check_transport(self, req):
        ct = req.headers.get("content-type", "")
        fields = [p.strip() for p in ct.split(";")]
        media = fields[0].lower()
        params = {}
        for p in fields[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        self.check(req, media == CT_SOAP12,
                   "Content-Type is SOAP 1.2 (%s): %r" % (CT_SOAP12, ct))
        self.check(req, params.get("charset", "").lower() == "utf-8",
                   "Content-Type charset=utf-8: %r" % ct)
        if "action" in params:
            self.check(req, params["action"] == ACTION_RST,
                       "Content-Type action parameter is %s: %r" % (ACTION_RST, params["action"]))
        self.check(req, "chunked" not in req.headers.get("transfer-encoding", "").lower(),
                   "the request is not chunked")
        if media != CT_SOAP12:
            raise Refusal("MessageFormat", "not a SOAP 1.2 message")

    def check_tls_cert(self, req):
        if not self.args.cert:
            self.note(req, "plain HTTP: no client certificate to check")
            return None
        if not self.check(req, req.peer_der is not None, "a TLS client certificate was presented"):
            raise Refusal("Authentication", "no client certificate")
        cert = x509.load_der_x509_certificate(req.peer_der)
        req.tls_cert = cert
        thumb = sha1_hex(cert)
        self.log("  TLS client certificate %s, subject %s, valid %s .. %s"
                 % (thumb, cert.subject.rfc4514_string(), not_before(cert), not_after(cert)))
        t = now_utc()
        valid = not_before(cert) <= t <= not_after(cert)
        if self.param("allow_expired", "0") == "1":
            if not valid:
                self.note(req, "the client certificate is outside its validity (allow_expired=1)")
        elif not self.check(req, valid, "the client certificate is within its validity (%s .. %s)"
                            % (not_before(cert), not_after(cert))):
            raise Refusal("Authentication", "the client certificate is not valid now")
        known = {i["sha1"]: i for i in self.state["issued"] if not i.get("unusable")}
        current = self.current_thumbprint()
        if current is None:
            self.note(req, "no --current-cert and nothing issued yet: any certificate of the "
                      "client CA is taken as current")
        elif thumb == current:
            self.check(req, True, "the client certificate is the current one (%s)" % thumb)
        elif thumb in known or (self.current_cert is not None
                                and thumb == sha1_hex(self.current_cert)):
            if self.param("strict_current", "0") == "1":
                self.check(req, False, "the client certificate %s is superseded by %s"
                           % (thumb, current))
                raise Refusal("Authentication", "a superseded certificate")
            self.note(req, "renewal with the superseded certificate %s (current %s)"
                      % (thumb, current))
        else:
            self.check(req, False, "the client certificate %s is the current one (%s) or one "
                       "this peer issued" % (thumb, current))
            raise Refusal("Authentication", "the certificate is not the device's")
        return cert

    def check_window(self, req):
        """renew_window: a renewal comes no earlier than that before the certificate expires."""
        window = float(self.param("renew_window", "0"))
        if window <= 0 or req.tls_cert is None or req.request_type != RT_RENEW:
            return
        start = not_after(req.tls_cert) - datetime.timedelta(seconds=window)
        if not self.check(req, now_utc() >= start, "the renewal comes within renew_window=%gs "
                          "of the certificate's expiry (from %s)" % (window, start)):
            raise Refusal("Authorization", "not yet in the renewal period",
                          detail="NotEligibleToRenew")

    def current_thumbprint(self):
        for item in reversed(self.state["issued"]):
            if not item.get("unusable"):
                return item["sha1"]
        return sha1_hex(self.current_cert) if self.current_cert is not None else None

    def parse_envelope(self, req):
        if b"<!DOCTYPE" in req.body or b"<!ENTITY" in req.body:
            self.check(req, False, "the request has no DTD")
            raise Refusal("MessageFormat", "a DTD in the request")
        try:
            root = ET.fromstring(req.body)
        except ET.ParseError as e:
            self.check(req, False, "the request is well-formed XML: %s" % e)
            raise Refusal("MessageFormat", "not well-formed XML") from None
        self.check(req, root.tag == q(NS_S, "Envelope"),
                   "the root is s:Envelope of SOAP 1.2 (%s): %s" % (NS_S, root.tag))
        header = one(root, NS_S, "Header")
        body = one(root, NS_S, "Body")
        if not self.check(req, header is not None and body is not None,
                          "one s:Header and one s:Body"):
            raise Refusal("MessageFormat", "no SOAP header or body")
        return header, body

    def check_header(self, req, header):
        action = one(header, NS_A, "Action")
        self.check(req, action is not None and text(action) == ACTION_RST,
                   "a:Action is %s: %r" % (ACTION_RST, text(action)))
        if action is not None:
            self.check(req, action.get(q(NS_S, "mustUnderstand")) in ("1", "true"),
                       "a:Action has s:mustUnderstand=\"1\"")
        mid = one(header, NS_A, "MessageID")
        req.message_id = text(mid)
        self.check(req, bool(req.message_id) and re.match(r"^urn:uuid:[0-9A-Fa-f-]{36}$",
                                                         req.message_id) is not None,
                   "a:MessageID is urn:uuid:<uuid>: %r" % req.message_id)
        reply = one(header, NS_A, "ReplyTo")
        addr = text(one(reply, NS_A, "Address")) if reply is not None else None
        self.check(req, addr == NS_A + "/anonymous",
                   "a:ReplyTo/a:Address is the anonymous address: %r" % addr)
        to = one(header, NS_A, "To")
        want = self.base_url() + self.args.path
        if to is None:
            self.note(req, "no a:To")
        else:
            self.check(req, text(to).lower() == want.lower()
                       or text(to).lower() == want.replace("127.0.0.1", "localhost").lower(),
                       "a:To is the service URL %s: %r" % (want, text(to)))
        sec = one(header, NS_WSSE, "Security")
        if sec is not None:
            if one(sec, NS_WSSE, "BinarySecurityToken") is not None:
                self.check(req, req.request_type != RT_RENEW,
                           "no wsse:BinarySecurityToken in the header of a renewal (ROBO "
                           "authenticates by client TLS)")
            ut = one(sec, NS_WSSE, "UsernameToken")
            if ut is not None:
                user = text(one(ut, NS_WSSE, "Username"))
                pw = one(ut, NS_WSSE, "Password")
                self.note(req, "wsse:UsernameToken for %r (on-premise renewal)" % user)
                if pw is not None:
                    self.check(req, pw.get("Type") in (None, PASSWORD_TEXT),
                               "wsse:Password Type is PasswordText")
                want = self.param("username")
                if want is not None:
                    self.check(req, user == want, "wsse:Username is %r: %r" % (want, user))

    def check_body(self, req, body):
        rst = one(body, NS_WST, "RequestSecurityToken")
        if not self.check(req, rst is not None and len(body) == 1,
                          "s:Body holds exactly one wst:RequestSecurityToken"):
            raise Refusal("MessageFormat", "no RequestSecurityToken")
        tt = text(one(rst, NS_WST, "TokenType"))
        rt = text(one(rst, NS_WST, "RequestType"))
        req.request_type = rt
        if rt == RT_QUERY and tt == TOKEN_X509V3:
            self.note(req, "QueryTokenStatus with the X509v3 TokenType of [MS-WSTEP] 4.1.3.1")
        else:
            self.check(req, tt == TOKEN_TYPE, "wst:TokenType is %s: %r" % (TOKEN_TYPE, tt))
        allowed = {"renew": (RT_RENEW, RT_QUERY), "issue": (RT_ISSUE, RT_QUERY),
                   "any": (RT_RENEW, RT_ISSUE, RT_QUERY)}[self.param("request_type", "renew")]
        if not self.check(req, rt in allowed, "wst:RequestType is one of %s: %r"
                          % (", ".join(allowed), rt)):
            raise Refusal("MessageFormat", "unexpected RequestType")
        self.check_context(req, rst)
        if rt == RT_QUERY:
            rid = text(one(rst, NS_WSTEP, "RequestID"))
            req.request_id = rid
            if not self.check(req, bool(rid), "QueryTokenStatus carries a wstep:RequestID"):
                raise Refusal("MessageFormat", "no RequestID")
            return rst
        bst = one(rst, NS_WSSE, "BinarySecurityToken")
        if not self.check(req, bst is not None, "one wsse:BinarySecurityToken in "
                          "wst:RequestSecurityToken"):
            raise Refusal("MessageFormat", "no BinarySecurityToken")
        vt, enc = bst.get("ValueType"), bst.get("EncodingType")
        if rt == RT_RENEW:
            ok = self.check(req, vt in VT_PKCS7, "ValueType is PKCS#7 (%s): %r"
                            % (" or ".join(VT_PKCS7), vt))
        else:
            ok = self.check(req, vt in VT_PKCS7 + (VT_PKCS10,), "ValueType is PKCS#10 or "
                            "PKCS#7: %r" % vt)
        if vt == VT_PKCS7[1]:
            self.note(req, "ValueType %s ([MS-MDE]); [MS-MDE2] 3.5.4.1.1.1 gives %s"
                      % (vt, VT_PKCS7[0]))
        self.check(req, enc == ENC_B64, "EncodingType is %s: %r" % (ENC_B64, enc))
        try:
            der = base64.b64decode(re.sub(r"\s+", "", bst.text or ""), validate=True)
        except ValueError:
            der = b""
        if not (self.check(req, len(der) > 0, "the BinarySecurityToken is base64") and ok):
            raise Refusal("MessageFormat", "a bad BinarySecurityToken")
        if vt == VT_PKCS10:
            csr_der = der
        else:
            csr_der = self.open_pkcs7(req, der)
        self.check_csr(req, csr_der)
        return rst

    def check_context(self, req, rst):
        ac = one(rst, NS_AC, "AdditionalContext")
        strict = self.param("context", "strict") == "strict"
        if ac is None:
            if req.request_type == RT_QUERY:
                return          # [MS-WSTEP] 4.1.3.1 carries none
            if strict:
                self.check(req, False, "ac:AdditionalContext in wst:RequestSecurityToken")
            else:
                self.note(req, "no ac:AdditionalContext")
            return
        for item in children(ac, NS_AC, "ContextItem"):
            vals = [text(v) for v in children(item, NS_AC, "Value")]
            self.check(req, len(vals) == 1, "ContextItem %r has one ac:Value"
                       % item.get("Name"))
            req.context.setdefault(item.get("Name"), []).extend(vals)
        if req.request_type == RT_QUERY:
            return
        for name in RENEW_CONTEXT_ITEMS:
            if name in req.context:
                continue
            if strict:
                self.check(req, False, "ContextItem %s present ([MS-MDE2] 3.5.4.1.1.1)" % name)
            else:
                self.note(req, "no ContextItem %s" % name)
        et = req.context.get("EnrollmentType", [None])[0]
        if et is not None:
            self.check(req, et in ("Full", "Device"), "EnrollmentType is Full or Device: %r" % et)
        want = self.param("device_id")
        if want is not None:
            did = req.context.get("DeviceID", [None])[0]
            self.check(req, did == want, "DeviceID is %r: %r" % (want, did))

    def open_pkcs7(self, req, der):
        """The PKCS#7 SignedData's content, checked to be signed with the TLS client key."""
        with tempfile.TemporaryDirectory(prefix="wstep-peer.") as tmp:
            p7 = os.path.join(tmp, "req.p7")
            out = os.path.join(tmp, "content")
            with open(p7, "wb") as f:
                f.write(der)
            base = ["openssl", "cms", "-verify", "-inform", "DER", "-in", p7, "-binary",
                    "-noverify", "-out", out]
            if req.tls_cert is not None:
                signer = os.path.join(tmp, "tls.pem")
                with open(signer, "wb") as f:
                    f.write(req.tls_cert.public_bytes(serialization.Encoding.PEM))
                r = subprocess.run(base + ["-nointern", "-certfile", signer],
                                   capture_output=True, check=False)
                if r.returncode == 0:
                    self.check(req, True, "the PKCS#7 signature verifies with the TLS client "
                               "certificate")
                else:
                    r2 = subprocess.run(base, capture_output=True, check=False)
                    if r2.returncode == 0:
                        self.check(req, False, "the PKCS#7 is signed with the TLS client "
                                   "certificate (it verifies with another one it carries)")
                    else:
                        self.check(req, False, "the PKCS#7 signature verifies: %s"
                                   % r.stderr.decode(errors="replace").strip()[-300:])
                    raise Refusal("Authentication", "the PKCS#7 is not signed by the "
                                  "current certificate")
            else:
                r = subprocess.run(base, capture_output=True, check=False)
                if not self.check(req, r.returncode == 0, "the PKCS#7 signature verifies"):
                    raise Refusal("MessageFormat", "a bad PKCS#7")
            with open(out, "rb") as f:
                content = f.read()
        if content[:1] == b"\x30":
            self.check(req, True, "the PKCS#7 content is DER (automatic renewal)")
            return content
        try:
            inner = base64.b64decode(re.sub(rb"\s+", b"", content), validate=True)
        except ValueError:
            inner = b""
        if self.param("content", "any") == "der":
            self.check(req, False, "the PKCS#7 content is a DER PKCS#10")
            raise Refusal("CertificateRequest", "the PKCS#7 content is not DER")
        self.note(req, "the PKCS#7 content is a base64 PKCS#10 (manual renewal form)")
        return inner

    def check_csr(self, req, der):
        try:
            csr = x509.load_der_x509_csr(der)
        except ValueError as e:
            self.check(req, False, "the PKCS#10 parses: %s" % e)
            raise Refusal("CertificateRequest", "not a PKCS#10") from None
        req.csr = csr
        self.check(req, True, "the PKCS#10 parses")
        if not self.check(req, csr.is_signature_valid, "the PKCS#10 signature verifies"):
            raise Refusal("CertificateRequest", "the PKCS#10 signature does not verify")
        if req.tls_cert is not None and req.request_type == RT_RENEW:
            if not self.check(req, spki(csr.public_key()) != spki(req.tls_cert.public_key()),
                              "the PKCS#10 is for a new key (not the current certificate's)"):
                raise Refusal("CertificateRequest", "the request reuses the current key")
        want = self.param("subject")
        got = csr.subject.rfc4514_string()
        if want == "any":
            self.note(req, "PKCS#10 subject %s (not checked)" % got)
        elif want is not None:
            if not self.check(req, got == want, "the PKCS#10 subject is %r: %r" % (want, got)):
                raise Refusal("CertificateRequest", "unexpected subject")
        elif req.tls_cert is not None:
            if not self.check(req, csr.subject == req.tls_cert.subject,
                              "the PKCS#10 subject is the current certificate's %r: %r"
                              % (req.tls_cert.subject.rfc4514_string(), got)):
                raise Refusal("CertificateRequest", "unexpected subject")

    # -- answers -----------------------------------------------------------------------

    def next_request_id(self):
        self.state["request_id"] += 1
        return str(self.state["request_id"])

    def issue(self, req, csr, wrong_key=False, unusable=False):
        """Sign csr with the test CA.  A certificate for another key, or one sent in an answer
        the client cannot use (malformed:*), is recorded but never becomes the current one."""
        t = now_utc()
        backdate = float(self.param("backdate", "60"))
        validity = float(self.args.validity)
        pub = csr.public_key()
        if wrong_key:
            pub = ec.generate_private_key(ec.SECP256R1()).public_key()
        b = (x509.CertificateBuilder()
             .subject_name(csr.subject)
             .issuer_name(self.ca_cert.subject)
             .public_key(pub)
             .serial_number(x509.random_serial_number())
             .not_valid_before(t - datetime.timedelta(seconds=backdate))
             .not_valid_after(t + datetime.timedelta(seconds=validity))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=isinstance(pub, rsa.RSAPublicKey),
                                          data_encipherment=False, key_agreement=False,
                                          key_cert_sign=False, crl_sign=False,
                                          encipher_only=False, decipher_only=False),
                            critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 self.ca_key.public_key()), critical=False))
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            b = b.add_extension(san.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        cert = b.sign(self.ca_key, hashes.SHA256())
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        item = {"sha1": sha1_hex(cert), "serial": "%x" % cert.serial_number,
                "subject": cert.subject.rfc4514_string(), "not_after": iso(not_after(cert)),
                "request": req.n, "time": iso(t), "pem": pem}
        if wrong_key:
            item["wrong_key"] = True
        if wrong_key or unusable:
            item["unusable"] = True
        self.state["issued"].append(item)
        req.issued = item
        self.log("  issued %s serial %s for %s, not after %s%s"
                 % (item["sha1"], item["serial"], item["subject"], item["not_after"],
                    " (for ANOTHER key)" if wrong_key else ""))
        return cert

    def maybe_done(self):
        if self.args.max_requests and self.answered >= self.args.max_requests:
            self.done.set()

    def delivered(self, req):
        """The answer went out: its certificate is the one the client has now (--issued-out)."""
        item = req.issued
        if item is None or item.get("unusable") or not self.args.issued_out:
            return
        tmp = self.args.issued_out + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(item["pem"])
        os.replace(tmp, self.args.issued_out)

    def store_name(self, req):
        s = self.param("store", "auto")
        if s != "auto":
            return s
        return "System" if req.context.get("EnrollmentType", ["Full"])[0] == "Device" else "User"

    def provisioning_doc(self, req, cert, variant=None):
        """[MS-MDE2] 3.5.4.1.1.2 (renewal) / 2.2.9.1 (enrollment) CertificateStore part."""
        store = self.store_name(req)
        pkc = self.param("pkc", "auto")
        if pkc == "auto":
            pkc = "child" if req.request_type == RT_RENEW else "sibling"
        der = cert.public_bytes(serialization.Encoding.DER)
        thumb = sha1_hex(cert)
        if variant == "hash":
            thumb = hashlib.sha1(b"not this certificate").hexdigest().upper()   # noqa: S324
        parts = ['<wap-provisioningdoc version="1.1">', '<characteristic type="CertificateStore">']
        if self.param("root", "1") == "1":
            rder = self.root_cert.public_bytes(serialization.Encoding.DER)
            parts += ['<characteristic type="Root">', '<characteristic type="System">',
                      '<characteristic type=%s>' % quoteattr(sha1_hex(self.root_cert)),
                      '<parm name="EncodedCertificate" value=%s/>' % quoteattr(b64(rder)),
                      '</characteristic>', '</characteristic>', '</characteristic>']
        if variant != "nocert":
            parts += ['<characteristic type="My">', '<characteristic type=%s>' % quoteattr(store),
                      '<characteristic type=%s>' % quoteattr(thumb),
                      '<parm name="EncodedCertificate" value=%s/>' % quoteattr(b64(der))]
            if pkc == "child":
                parts += ['<characteristic type="PrivateKeyContainer"/>', '</characteristic>']
            else:
                parts += ['</characteristic>', '<characteristic type="PrivateKeyContainer"/>']
            parts.append('</characteristic>')
            renew = self.param("wstep_renew",
                               "" if req.request_type == RT_RENEW else "true,60,4")
            if renew:
                robo, period, retry = (renew.split(",") + ["", "", ""])[:3]
                parts += ['<characteristic type="WSTEP">', '<characteristic type="Renew">',
                          '<parm name="ROBOSupport" value=%s datatype="boolean"/>' % quoteattr(robo),
                          '<parm name="RenewPeriod" value=%s datatype="integer"/>' % quoteattr(period),
                          '<parm name="RetryInterval" value=%s datatype="integer"/>'
                          % quoteattr(retry),
                          '</characteristic>', '</characteristic>']
            parts.append('</characteristic>')
        parts += ['</characteristic>', '</wap-provisioningdoc>']
        doc = "\n".join(parts)
        if variant == "xml":
            doc = doc[:len(doc) // 2]          # cut in the middle: not well-formed
        return doc

    def envelope(self, req, action, body, security=False):
        aid = str(uuid.uuid4())
        hdr = ['<a:Action s:mustUnderstand="1">%s</a:Action>' % xml_escape(action),
               '<ActivityId CorrelationId="%s" xmlns="%s">%s</ActivityId>'
               % (str(uuid.uuid4()), NS_DIAG, aid)]
        if req.message_id:
            hdr.append('<a:RelatesTo>%s</a:RelatesTo>' % xml_escape(req.message_id))
        if security and self.param("security_header", "1") == "1":
            t = now_utc()
            hdr.append('<o:Security s:mustUnderstand="1" xmlns:o="%s"><u:Timestamp u:Id="_0">'
                       '<u:Created>%s</u:Created><u:Expires>%s</u:Expires></u:Timestamp>'
                       '</o:Security>' % (NS_WSSE, iso(t), iso(t + datetime.timedelta(minutes=5))))
        return ('<s:Envelope xmlns:s="%s" xmlns:a="%s" xmlns:u="%s">'
                '<s:Header>%s</s:Header><s:Body>%s</s:Body></s:Envelope>'
                % (NS_S, NS_A, NS_WSU, "".join(hdr), body)).encode("utf-8")

    def rstrc(self, req, token_b64, value_type=VT_PROVDOC, request_id=None, disposition=""):
        rid = request_id or self.next_request_id()
        disp = ('<DispositionMessage xml:lang="en-US" xmlns="%s">%s</DispositionMessage>'
                % (NS_WSTEP, xml_escape(disposition)) if disposition
                else '<DispositionMessage xmlns="%s"/>' % NS_WSTEP)
        body = ('<RequestSecurityTokenResponseCollection xmlns="%s">'
                '<RequestSecurityTokenResponse>'
                '<TokenType>%s</TokenType>%s'
                '<RequestedSecurityToken>'
                '<BinarySecurityToken ValueType="%s" EncodingType="%s" xmlns="%s">%s'
                '</BinarySecurityToken>'
                '</RequestedSecurityToken>'
                '<RequestID xmlns="%s">%s</RequestID>'
                '</RequestSecurityTokenResponse>'
                '</RequestSecurityTokenResponseCollection>'
                % (NS_WST, TOKEN_TYPE, disp, xml_escape(value_type), ENC_B64, NS_WSSE,
                   token_b64, NS_WSTEP, rid))
        return self.envelope(req, ACTION_RSTRC, body, security=True)

    def pending_answer(self, req, rid):
        """[MS-WSTEP] 3.1.4.1.3.2/3.1.4.1.3.4: no token, a reference where to ask again."""
        url = self.base_url() + self.args.path
        body = ('<RequestSecurityTokenResponseCollection xmlns="%s">'
                '<RequestSecurityTokenResponse>'
                '<TokenType>%s</TokenType>'
                '<DispositionMessage xml:lang="en-US" xmlns="%s">Taken Under Submission'
                '</DispositionMessage>'
                '<RequestedSecurityToken>'
                '<SecurityTokenReference xmlns="%s"><Reference URI=%s/></SecurityTokenReference>'
                '</RequestedSecurityToken>'
                '<RequestID xmlns="%s">%s</RequestID>'
                '</RequestSecurityTokenResponse>'
                '</RequestSecurityTokenResponseCollection>'
                % (NS_WST, TOKEN_TYPE, NS_WSTEP, NS_WSSE, quoteattr(url), NS_WSTEP, rid))
        return self.envelope(req, ACTION_RSTRC, body, security=True)

    def fault(self, req, subcode, reason=None, detail=None, wstep_error=None):
        """[MS-MDE2] 2.2.10 / [MS-WSTEP] 4.1.4.2 SOAP fault; (HTTP status, headers, body)."""
        lower = self.param("fault_case", "document") == "lower"
        code = "s:receiver" if lower else "s:Receiver"
        action = ACTION_RSTRC
        sub = ""
        if subcode is not None:
            ns, prefix, _hr, default_reason = FAULTS[subcode]
            reason = reason or default_reason
            name = subcode.lower() if lower else subcode
            if ns == NS_S:
                sub = '<s:Subcode><s:Value>s:%s</s:Value></s:Subcode>' % name
            else:
                sub = ('<s:Subcode><s:Value xmlns:%s="%s">%s:%s</s:Value></s:Subcode>'
                       % (prefix, ns, prefix, name))
            if subcode == "InternalServiceFault":
                action = ACTION_WCF_FAULT
        det = ""
        if detail is not None:
            det = ('<s:Detail><deviceenrollmentserviceerror xmlns="%s">'
                   '<errortype>%s</errortype><message>%s</message><traceid>%s</traceid>'
                   '</deviceenrollmentserviceerror></s:Detail>'
                   % (NS_WSTEP, detail.lower(), xml_escape(reason), uuid.uuid4()))
        elif wstep_error is not None:
            det = ('<s:Detail><CertificateEnrollmentWSDetail xmlns="%s" '
                   'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                   '<BinaryResponse xsi:nil="true"/><ErrorCode>%d</ErrorCode>'
                   '<InvalidRequest>true</InvalidRequest><RequestID xsi:nil="true"/>'
                   '</CertificateEnrollmentWSDetail></s:Detail>' % (NS_WSTEP, wstep_error))
        body = ('<s:Fault><s:Code><s:Value>%s</s:Value>%s</s:Code>'
                '<s:Reason><s:Text xml:lang="%s">%s</s:Text></s:Reason>%s</s:Fault>'
                % (code, sub, "en-us" if lower else "en-US", xml_escape(reason or "refused"),
                   det))
        status = int(self.param("fault_http", "500"))
        return status, self.envelope(req, action, body)

    # -- one request ---------------------------------------------------------------------

    def checked(self, req):
        """All the checks; returns the Refusal of the first failed check of ours, or None."""
        req.message_id = peek_message_id(req.body)   # a fault relates to it in any case
        try:
            self.check_transport(req)
            self.check_tls_cert(req)
            header, body = self.parse_envelope(req)
            rst = one(body, NS_WST, "RequestSecurityToken")
            if rst is not None:
                req.request_type = text(one(rst, NS_WST, "RequestType"))
            self.check_header(req, header)
            self.check_window(req)
            self.check_body(req, body)
        except Refusal as r:
            return r
        return None

    def answer(self, req, mode, refusal):
        """(status, headers, body) or an action string ('drop')."""
        soap = {"Content-Type": "application/soap+xml; charset=utf-8"}
        if mode.startswith("http:"):
            code = int(mode[5:])
            return code, {"Content-Type": "text/plain"}, b"the enrollment service failed\n"
        if mode == "drop":
            return "drop"
        if mode == "redirect":
            loc = self.base_url() + "/redirected" + self.args.path
            return 307, {"Location": loc, "Content-Type": "text/plain"}, b"moved\n"
        if mode.startswith("fault:"):
            st, b = self.fault(req, mode[6:])
            return st, soap, b
        if mode.startswith("detail:"):
            name = mode[7:]
            st, b = self.fault(req, "Authorization", reason="%s (test)" % name, detail=name)
            return st, soap, b
        if mode.startswith("wstep-fault"):
            hr = mode.split(":", 1)[1] if ":" in mode else "0x80094012"
            v = int(hr, 16) if hr.lower().startswith("0x") else int(hr)
            if v > 0x7FFFFFFF:
                v -= 1 << 32
            st, b = self.fault(req, None, reason="The request was denied (test)", wstep_error=v)
            return st, soap, b
        if mode == "malformed:soap":
            return 200, soap, self.envelope(req, ACTION_RSTRC, "<RequestSecurityTokenResponse")[:-40]
        # the modes below answer the request itself: a refused request gets its fault
        if refusal is not None:
            st, b = self.fault(req, refusal.subcode, reason=refusal.reason,
                               detail=refusal.detail)
            return st, soap, b
        csr = req.csr
        rid = None
        if req.request_type == RT_QUERY:
            pend = self.state["pending"].get(req.request_id)
            if not self.check(req, pend is not None, "RequestID %s names a pending request"
                              % req.request_id):
                st, b = self.fault(req, "MessageFormat", reason="unknown RequestID")
                return st, soap, b
            csr = x509.load_pem_x509_csr(pend["csr"].encode("ascii"))
            rid = req.request_id
            req.context = pend.get("context", {})
            req.request_type = pend.get("request_type", RT_RENEW)
        if mode == "pending":
            rid = rid or self.next_request_id()
            self.state["pending"][rid] = {
                "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                "context": req.context, "request_type": req.request_type}
            return 200, soap, self.pending_answer(req, rid)
        if rid is not None:
            self.state["pending"].pop(rid, None)
        variant = mode.split(":", 1)[1] if mode.startswith("malformed:") else None
        cert = self.issue(req, csr, wrong_key=(mode == "wrong-key"), unusable=variant is not None)
        doc = self.provisioning_doc(req, cert, variant=variant).encode("utf-8")
        token = b64(doc)
        vt = VT_PROVDOC
        if variant == "base64":
            token = "!!" + token[:40] + "*not base64*"
        elif variant == "valuetype":
            vt = TOKEN_X509V3
        self.log("  provisioning document:\n" + doc.decode("utf-8"))
        return 200, soap, self.rstrc(req, token, value_type=vt, request_id=rid)


# ---------------------------------------------------------------------------------------
# HTTP(S)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wstep-peer/1"
    timeout = 120

    def setup(self):
        self.tls_failed = False
        self.peer_der = None
        ctx = self.server.ssl_ctx
        if ctx is not None:
            raw = self.request
            raw.settimeout(15)
            try:
                self.request = ctx.wrap_socket(raw, server_side=True)
                self.peer_der = self.request.getpeercert(binary_form=True)
            except (ssl.SSLError, OSError) as e:
                self.tls_failed = True
                p = self.server.peer
                with p.lock:
                    p.tls_errors.append(str(e))
                    p.log("TLS handshake failed: %s" % e)
                    p.check(None, False, "TLS handshake with a client certificate of the "
                            "client CA: %s" % e)
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
        self.server.peer.log("http: " + (fmt % args))

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

    def do_POST(self):   # noqa: N802
        self._serve("POST")

    def do_GET(self):    # noqa: N802
        self._serve("GET")

    def _serve(self, method):
        p = self.server.peer
        body = self._read_body() if method == "POST" else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        with p.lock:
            p.state["requests"] += 1
            req = Request(len(p.requests) + 1, method, self.path, headers, body, self.peer_der)
            entry = {"n": req.n, "method": method, "path": self.path, "time": iso(now_utc())}
            p.requests.append(entry)
            p.log("request %d: %s %s (%d bytes)" % (req.n, method, self.path, len(body)))
            for k, v in headers.items():
                p.log("  %s: %s" % (k, v))
            p.log(body.decode("utf-8", errors="replace"))
            if self.path != p.args.path:
                what = ("request to %s: the client followed a redirect" % self.path
                        if self.path.startswith("/redirected") else
                        "request to %s, not the service path %s" % (self.path, p.args.path))
                p.check(req, False, what)
                entry.update(checks=req.checks, answer="404")
                self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
                p.save_state()
                return
            p.check(req, method == "POST", "the method is POST: %s" % method)
            try:
                mode = p.mode_for(req)
            except Exception as e:   # noqa: BLE001 (a --script error is reported, not fatal)
                p.check(req, False, "choosing the mode: %s" % e)
                mode = "http:500"
            entry["mode"] = mode
        if mode.startswith("slow:"):
            secs = float(mode[5:])
            p.log("  request %d: answering in %g s" % (req.n, secs))
            if p.done.wait(secs):
                entry["answer"] = "none (the peer stopped)"
                return
        with p.lock:
            p.log("request %d: mode %s" % (req.n, mode))
            refusal = p.checked(req)
            try:
                ans = p.answer(req, mode, refusal)
            except Exception:   # noqa: BLE001
                tb = traceback.format_exc()
                p.log(tb)
                p.check(req, False, "peer error: %s" % tb.strip().splitlines()[-1])
                ans = (500, {"Content-Type": "text/plain"}, b"peer error\n")
            entry.update(request_type=req.request_type, checks=req.checks,
                         tls_subject=(req.tls_cert.subject.rfc4514_string()
                                      if req.tls_cert is not None else None),
                         tls_sha1=sha1_hex(req.tls_cert) if req.tls_cert is not None else None,
                         csr_subject=(req.csr.subject.rfc4514_string()
                                      if req.csr is not None else None),
                         refusal=(refusal.subcode if refusal is not None else None))
            if ans == "drop":
                entry["answer"] = "connection dropped"
                p.log("  answer: the connection is closed without an answer")
                p.save_state()
                self.close_connection = True
                try:
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                p.answered += 1
                p.maybe_done()
                return
            status, hdrs, rbody = ans
            entry["answer"] = "%d %s" % (status, hdrs.get("Content-Type", ""))
            p.log("  answer: HTTP %d" % status)
            p.log(rbody.decode("utf-8", errors="replace"))
            p.save_state()
            try:
                if mode.startswith("slow:") and self.client_gone():
                    raise OSError("the client closed the connection while the answer waited")
                self._send(status, hdrs, rbody)
                p.delivered(req)
            except OSError as e:
                # the client went away (killed, timed out): its certificate was not delivered
                entry["answer"] += " (not delivered: %s)" % e
                p.log("  the answer could not be sent: %s" % e)
                if req.issued is not None:
                    req.issued["unusable"] = req.issued["undelivered"] = True
                    p.save_state()
                self.close_connection = True
            p.answered += 1
            p.maybe_done()

    def client_gone(self):
        """After a slow answer's wait: has the client closed the connection (EOF or a TLS
        alert waiting on the socket)?  An HTTP/1.1 client sends nothing else meanwhile."""
        raw = self.request
        try:
            r, _, _ = select.select([raw], [], [], 0)
            if not r:
                return False
            head = socket.socket.recv(raw, 1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        return head in (b"", b"\x15")

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def handle_error(self, request, client_address):
        self.peer.log("http: error with %s: %s" % (client_address, traceback.format_exc()))


X509_V_FLAG_NO_CHECK_TIME = 0x200000   # OpenSSL: the peer checks validity times itself


def make_ssl_context(args):
    if not args.cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key or None)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=args.client_ca)
        ctx.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    return ctx


def peek_message_id(body):
    """a:MessageID of a request, if it can be read at all (no checks)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    header = one(root, NS_S, "Header")
    return text(one(header, NS_A, "MessageID")) if header is not None else None


def load_cert(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_script(path):
    if not os.path.exists(path):
        raise UsageError("no script %s" % path)
    spec = importlib.util.spec_from_file_location("wstep_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "choose"):
        raise UsageError("%s has no choose(n, request)" % path)
    return mod


# ---------------------------------------------------------------------------------------
# main

START = time.time()


def main(argv=None):
    sys.dont_write_bytecode = True
    ap = argparse.ArgumentParser(description="Scripted MS-WSTEP renewal peer (see README).")
    ap.add_argument("--port-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca")
    ap.add_argument("--ca-cert", required=True, help="the CA that signs the new certificates")
    ap.add_argument("--ca-key", required=True)
    ap.add_argument("--root-cert", help="the Root/System certificate of the answer "
                    "(default --ca-cert)")
    ap.add_argument("--current-cert", help="the certificate the device renews")
    ap.add_argument("--validity", type=float, default=86400.0,
                    help="seconds the new certificates are valid (default 86400)")
    ap.add_argument("--issued-out", help="the last certificate issued (PEM) goes here")
    ap.add_argument("--path", default="/EnrollmentServer/DeviceEnrollmentWebService.svc")
    ap.add_argument("--mode", help="comma-separated modes, one per request (the last "
                    "repeats); default issue")
    ap.add_argument("--script", help="a .py file with choose(n, request) -> mode")
    ap.add_argument("--state")
    ap.add_argument("--log")
    ap.add_argument("--summary")
    ap.add_argument("--max-requests", type=int, default=0)
    ap.add_argument("--expect-requests", type=int)
    ap.add_argument("--max-time", type=float, default=600.0)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    params = {}
    for kv in args.param:
        if "=" not in kv:
            ap.error("--param wants KEY=VALUE, got %r" % kv)
        k, v = kv.split("=", 1)
        params[k] = v
    if args.client_ca and not args.cert:
        ap.error("--client-ca needs --cert")
    if args.mode and args.script:
        ap.error("--mode and --script exclude each other")
    try:
        peer = Peer(args, params)
        ctx = make_ssl_context(args)
    except (UsageError, OSError, ValueError, TypeError, ssl.SSLError) as e:
        print("wstep_peer: %s" % e, file=sys.stderr)
        return 2
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.peer = peer
    httpd.ssl_ctx = ctx
    peer.port = httpd.server_address[1]
    peer.log("wstep_peer: %s%s, modes %s, params %s"
             % (peer.base_url(), args.path, args.mode or "issue", params))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % peer.port)
        os.replace(tmp, args.port_file)

    reason = {"why": None}

    def on_signal(signum, frame):
        reason["why"] = "signal %d" % signum
        peer.done.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    if not peer.done.wait(args.max_time):
        reason["why"] = "--max-time %g s" % args.max_time
    time.sleep(0.05)         # let a handler thread deliver its answer
    with peer.lock:
        if args.expect_requests is not None:
            peer.check(None, len(peer.requests) == args.expect_requests,
                       "%d requests came (expected %d)" % (len(peer.requests),
                                                          args.expect_requests))
        ok = not peer.failures
        for f in peer.failures:
            print("FAIL: %s" % f)
        for n in peer.notes:
            print("NOTE: %s" % n)
        line = ("PASS: wstep_peer: %d checks, %d requests" % (peer.checks, len(peer.requests))
                if ok else "FAIL: wstep_peer: %d of %d checks failed, %d requests"
                % (len(peer.failures), peer.checks, len(peer.requests)))
        print(line)
        sys.stdout.flush()
        peer.log(line + " (stopped by %s)" % reason["why"])
        if args.summary:
            issued = [{k: v for k, v in i.items() if k != "pem"} for i in peer.state["issued"]]
            with open(args.summary, "w", encoding="utf-8") as f:
                json.dump({"result": "PASS" if ok else "FAIL", "checks": peer.checks,
                           "failures": peer.failures, "notes": peer.notes,
                           "requests": peer.requests, "count": len(peer.requests),
                           "issued": issued, "tls_errors": peer.tls_errors,
                           "stopped_by": reason["why"], "port": peer.port}, f, indent=1)
                f.write("\n")
        try:
            peer.save_state()
        except OSError as e:
            print("wstep_peer: cannot write the state: %s" % e, file=sys.stderr)
    peer.done.set()
    httpd.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
