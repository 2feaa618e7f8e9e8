#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""soap_facts.py RESPONSE.xml [OUTDIR] | --each X.resp... - an enrollment service's answer, fact by fact.

Reads a SOAP 1.2 answer of the enrollment service (an RSTRC or a SOAP fault, [MS-MDE2]
3.4.4.1.1.2 / 2.2.10, [MS-WSTEP] 3.1.4.1.3.x) with the standard library only (it shares no
code with wstep_peer.py, so the self-test does not check the peer with itself) and prints
KEY=VALUE lines, every QName resolved to {namespace}local:

  envelope, action, action_mu, security (a wsse:Security header: yes/no), relates_to
  fault_code, fault_subcode, fault_reason, fault_reason_lang, detail_errortype,
  wstep_errorcode, wstep_invalidrequest
  token_type, disposition, bst_valuetype, bst_encoding, request_id, reference_uri
  provdoc=wellformed|not-wellformed|not-base64
  root_hash, root_matches (the characteristic type is the SHA-1 of the certificate),
  my_store (User/System), my_hash, my_matches, pkc (child/sibling/none),
  wstep_renew (ROBOSupport,RenewPeriod,RetryInterval or none)

With OUTDIR, the certificates of the provisioning document are written there as
root.der and my.der.  --each X.resp ...: the facts of each into X.facts, the certificates
into X.d/.
"""

import base64
import hashlib
import os
import re
import sys
import xml.etree.ElementTree as ET

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://www.w3.org/2005/08/addressing"
NS_WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSTEP = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment"


def scopes(raw):
    """The document's root and {id(element): {prefix: namespace}} in scope at each s:Value."""
    import io
    stack, result, root = [], {}, None
    for event, item in ET.iterparse(io.BytesIO(raw), events=("start-ns", "end-ns", "start")):
        if event == "start-ns":
            stack.append(item)
        elif event == "end-ns":
            stack.pop()
        else:
            root = item if root is None else root
            if item.tag == "{%s}Value" % NS_S:
                result[id(item)] = dict(stack)
    return root, result


def qname_value(el, in_scope):
    """The text of el as a QName resolved with the declarations in scope."""
    prefix, _, name = (el.text or "").strip().rpartition(":")
    return "{%s}%s" % (in_scope.get(id(el), {}).get(prefix, "?" + prefix), name)


def find(el, *path):
    for ns, name in path:
        if el is None:
            return None
        el = el.find("{%s}%s" % (ns, name))
    return el


def out(key, value):
    print("%s=%s" % (key, "" if value is None else value))


def facts_provdoc(doc, outdir):
    try:
        root = ET.fromstring(doc)
    except ET.ParseError:
        out("provdoc", "not-wellformed")
        return
    out("provdoc", "wellformed")
    out("provdoc_version", root.get("version"))

    def chars(el, typ):
        return [c for c in el if c.tag == "characteristic" and c.get("type") == typ]

    def parm(el, name):
        for p in el:
            if p.tag == "parm" and p.get("name") == name:
                return p.get("value")
        return None

    roots, mys, renew = [], [], None
    for cs in chars(root, "CertificateStore"):
        for r in chars(cs, "Root"):
            for s in chars(r, "System"):
                roots += [c for c in s if c.tag == "characteristic"]
        for my in chars(cs, "My"):
            for c in my:
                if c.tag != "characteristic":
                    continue
                if c.get("type") in ("User", "System"):
                    mys.append(c)
                if c.get("type") == "WSTEP":
                    for r in chars(c, "Renew"):
                        renew = ",".join(parm(r, n) or "" for n in
                                         ("ROBOSupport", "RenewPeriod", "RetryInterval"))
    for kind, items in (("root", [(None, c) for c in roots]),):
        for _s, c in items:
            der = base64.b64decode(parm(c, "EncodedCertificate") or "")
            out(kind + "_hash", c.get("type"))
            out(kind + "_matches", "yes" if hashlib.sha1(der).hexdigest().upper()  # noqa: S324
                == c.get("type") else "no")
            if outdir:
                with open(os.path.join(outdir, kind + ".der"), "wb") as f:
                    f.write(der)
    out("my_count", sum(1 for s in mys for c in s if c.tag == "characteristic"
                        and c.get("type") != "PrivateKeyContainer"))
    for store in mys:
        for c in store:
            if c.tag != "characteristic" or c.get("type") == "PrivateKeyContainer":
                continue
            out("my_store", store.get("type"))
            der = base64.b64decode(parm(c, "EncodedCertificate") or "")
            out("my_hash", c.get("type"))
            out("my_matches", "yes" if hashlib.sha1(der).hexdigest().upper()  # noqa: S324
                == c.get("type") else "no")
            pkc = ("child" if chars(c, "PrivateKeyContainer") else
                   "sibling" if chars(store, "PrivateKeyContainer") else "none")
            out("pkc", pkc)
            if outdir:
                with open(os.path.join(outdir, "my.der"), "wb") as f:
                    f.write(der)
    out("wstep_renew", renew or "none")


def main():
    if sys.argv[1] == "--each":
        # X.resp ... -> X.facts and the certificates in X.d/ (one process for many answers)
        for path in sys.argv[2:]:
            base = path[:-5] if path.endswith(".resp") else path
            os.makedirs(base + ".d", exist_ok=True)
            saved = sys.stdout
            with open(base + ".facts", "w", encoding="utf-8") as sys.stdout:
                one_file(path, base + ".d")
            sys.stdout = saved
        return 0
    return one_file(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)


def one_file(path, outdir):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        env, in_scope = scopes(raw)
    except ET.ParseError:
        out("envelope", "not-wellformed")
        return 0
    out("envelope", env.tag)
    hdr = find(env, (NS_S, "Header"))
    action = find(hdr, (NS_A, "Action"))
    out("action", (action.text or "").strip() if action is not None else None)
    out("action_mu", action.get("{%s}mustUnderstand" % NS_S) if action is not None else None)
    out("security", "yes" if find(hdr, (NS_WSSE, "Security")) is not None else "no")
    rel = find(hdr, (NS_A, "RelatesTo"))
    out("relates_to", (rel.text or "").strip() if rel is not None else None)
    body = find(env, (NS_S, "Body"))
    fault = find(body, (NS_S, "Fault"))
    if fault is not None:
        code = find(fault, (NS_S, "Code"), (NS_S, "Value"))
        sub = find(fault, (NS_S, "Code"), (NS_S, "Subcode"), (NS_S, "Value"))
        for key, el in (("fault_code", code), ("fault_subcode", sub)):
            out(key, qname_value(el, in_scope) if el is not None else None)
        reason = find(fault, (NS_S, "Reason"), (NS_S, "Text"))
        out("fault_reason", (reason.text or "").strip() if reason is not None else None)
        out("fault_reason_lang", reason.get("{http://www.w3.org/XML/1998/namespace}lang")
            if reason is not None else None)
        det = find(fault, (NS_S, "Detail"))
        if det is not None:
            e = find(det, (NS_WSTEP, "deviceenrollmentserviceerror"), (NS_WSTEP, "errortype"))
            out("detail_errortype", e.text if e is not None else None)
            w = find(det, (NS_WSTEP, "CertificateEnrollmentWSDetail"))
            if w is not None:
                out("wstep_errorcode", find(w, (NS_WSTEP, "ErrorCode")).text)
                out("wstep_invalidrequest", find(w, (NS_WSTEP, "InvalidRequest")).text)
        return 0
    rstr = find(body, (NS_WST, "RequestSecurityTokenResponseCollection"),
                (NS_WST, "RequestSecurityTokenResponse"))
    if rstr is None:
        out("rstr", "missing")
        return 0
    out("token_type", (find(rstr, (NS_WST, "TokenType")).text or "").strip())
    disp = find(rstr, (NS_WSTEP, "DispositionMessage"))
    out("disposition", (disp.text or "").strip() if disp is not None else None)
    rid = find(rstr, (NS_WSTEP, "RequestID"))
    out("request_id", (rid.text or "").strip() if rid is not None else None)
    rst = find(rstr, (NS_WST, "RequestedSecurityToken"))
    ref = find(rst, (NS_WSSE, "SecurityTokenReference"), (NS_WSSE, "Reference"))
    out("reference_uri", ref.get("URI") if ref is not None else None)
    bst = find(rst, (NS_WSSE, "BinarySecurityToken"))
    if bst is None:
        out("bst", "missing")
        return 0
    out("bst_valuetype", bst.get("ValueType"))
    out("bst_encoding", bst.get("EncodingType"))
    try:
        doc = base64.b64decode(re.sub(r"\s+", "", bst.text or ""), validate=True)
    except ValueError:
        out("provdoc", "not-base64")
        return 0
    facts_provdoc(doc, outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
