#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/fuzz/seeds.py OUT [--syncmlconv PATH] [--fuzz-scep PATH]

Write the seed inputs of every fuzz target into OUT/<target>/ (docs/testing.md, "Fuzzing").  The corpus
in tests/fuzz/corpus/ started from these, merged with what the campaigns found (`-merge=1`); run this
again when the conformance cases or test data change, and merge the result into the corpus.

  xml      every server message of the conformance cases (NN-server.xml, NN-server.raw) and the
           captured server messages of tests/dmserver/data
  wbxml    every NN-server.wbxml, and each XML seed converted with syncmlconv (when given)
  session  each conformance case's server messages in order, joined by the target's separator
           (XML, and WBXML when syncmlconv is given), and sessions made here: credentials
           challenged (401/407 with a Chal, then 212), a large object in three chunks, a large
           certificate split inside its base64, a small MaxMsgSize with Alert 1222 for the rest
           (many commands; one large Results), an x-syncml-hmac header, RespURI, Status for the
           client's alerts
  scep     tests/data/scep/micromdm (GetCACaps, GetCACert, CertRep, key), the test PKI's
           certificates as GetCACert bodies, and, with --fuzz-scep, the authentic CertReps the
           harness signs with its fixture CA (FUZZ_SCEP_SEEDS)
  notify   package-0 notifications for the harness's two "auth" modes
  cert     the test PKI's certificates as base64, PEM and DER, with and without raw DER allowed,
           and tests/data/pki/not-a-cert.*
  enroll   the recorded micromdm exchange as raw answers and as the harness replays it, the
           fixture CA's answers with CertReps the harness signs (every status, cipher and
           issued-certificate variant, PENDING then polls), both worlds' CAs, every namespace,
           several enrollments, two URLs, HTTP and transport failures, a store unlocked during a
           transfer, and server messages between steps (Exec again, Delete, Gets, alerts
           delivered); the test PKI's certificates as GetCACert answers
  wstep    answers to a WSTEP renewal (fuzz_wstep.c): each SOAP fault subcode, both fault details,
           lower case, a pending RSTRC, HTTP 307 and 503, and provisioning documents the harness
           wraps into an RSTRC: the test PKI's leaf in My/System and My/User (the harness's key is
           the leaf's: a certificate is handed out), with Root and PrivateKeyContainer, a wrong
           SHA-1 name, no certificate

Python 3 standard library only.
"""
import argparse
import base64
import glob
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(TOP, "tests", "conformance")
PKI = os.path.join(TOP, "tests", "data", "pki")
MDM = os.path.join(TOP, "tests", "data", "scep", "micromdm")
NEXT = b"\n#next#\n"        # fuzz_syncml.c, FUZZ_NEXT
MAX_LEN = 16384             # the message targets' -max_len


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def to_wbxml(conv, xml):
    if not conv:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.xml"), os.path.join(tmp, "out.wbxml")
        with open(src, "wb") as f:
            f.write(xml)
        r = subprocess.run([conv, "to-wbxml", src, dst], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return read(dst) if r.returncode == 0 else None


def conformance_cases():
    """(case name, [(NN, kind, path)]) with kind xml, raw or wbxml, in message order."""
    for case in sorted(os.listdir(CONF)):
        d = os.path.join(CONF, case)
        if not os.path.isdir(d):
            continue
        msgs = []
        for f in sorted(os.listdir(d)):
            m = re.match(r"^(\d\d)-server\.(xml|raw|wbxml)$", f)
            if m:
                msgs.append((m.group(1), m.group(2), os.path.join(d, f)))
        if msgs:
            yield case, msgs


# ---- server messages made here (session seeds) ----

def hdr(msg_id, meta="", cred="", resp_uri=""):
    return ("<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID>"
            "<MsgID>%d</MsgID><Target><LocURI>omadm-device</LocURI></Target>"
            "<Source><LocURI>https://dm.example.com/omadm</LocURI></Source>%s%s%s</SyncHdr>"
            % (msg_id, resp_uri and "<RespURI>%s</RespURI>" % resp_uri, cred,
               meta and "<Meta>%s</Meta>" % meta))


def msg(msg_id, body, final=True, **kw):
    return ('<SyncML xmlns="SYNCML:SYNCML1.2">%s<SyncBody>%s%s</SyncBody></SyncML>'
            % (hdr(msg_id, **kw), body, "<Final/>" if final else "")).encode()


def status(cid, msg_ref, cmd_ref, cmd, code, chal=""):
    return ("<Status><CmdID>%d</CmdID><MsgRef>%s</MsgRef><CmdRef>%s</CmdRef><Cmd>%s</Cmd>%s"
            "<Data>%s</Data></Status>" % (cid, msg_ref, cmd_ref, cmd, chal, code))


def chal(kind, nonce):
    return ('<Chal><Meta><Type xmlns="syncml:metinf">%s</Type><Format xmlns="syncml:metinf">b64</Format>'
            '<NextNonce xmlns="syncml:metinf">%s</NextNonce></Meta></Chal>'
            % (kind, base64.b64encode(nonce).decode()))


def item(target, data=None, fmt=None, size=None, more=False, typ=None):
    meta = ""
    if fmt or size or typ:
        meta = "<Meta>%s%s%s</Meta>" % (
            fmt and '<Format xmlns="syncml:metinf">%s</Format>' % fmt or "",
            typ and '<Type xmlns="syncml:metinf">%s</Type>' % typ or "",
            size and '<Size xmlns="syncml:metinf">%s</Size>' % size or "")
    return "<Item><Target><LocURI>%s</LocURI></Target>%s%s%s</Item>" % (
        target, meta, "" if data is None else "<Data>%s</Data>" % data, "<MoreData/>" if more else "")


def cmd(name, cid, *items):
    return "<%s><CmdID>%d</CmdID>%s</%s>" % (name, cid, "".join(items), name)


def made_sessions():
    big = "".join(chr(ord("a") + i % 26) for i in range(3000))
    root_b64 = read(os.path.join(PKI, "root.b64")).decode().strip()
    root_thumb = read(os.path.join(PKI, "root.sha1")).decode().strip()
    cert_uri = "./Vendor/MSFT/RootCATrustedCertificates/Root/%s/EncodedCertificate" % root_thumb
    third = len(root_b64) // 3 + 1          # not a multiple of 4: splits a base64 quad
    yield "challenge-md5", [
        msg(1, status(1, 1, 0, "SyncHdr", 401, chal("syncml:auth-md5", b"nonce-1")), final=True),
        msg(2, status(1, 2, 0, "SyncHdr", 212, chal("syncml:auth-md5", b"nonce-2"))
            + cmd("Get", 2, item("./DevInfo/DevId")))]
    yield "challenge-407-basic", [
        msg(1, status(1, 1, 0, "SyncHdr", 407, chal("syncml:auth-basic", b"")), final=True)]
    yield "large-object", [
        msg(1, status(1, 1, 0, "SyncHdr", 212)
            + cmd("Add", 2, item("./Vendor/LargeObj", big[:1000], "chr", 3000, more=True)), final=False),
        msg(2, status(1, 2, 0, "SyncHdr", 200)
            + cmd("Add", 2, item("./Vendor/LargeObj", big[1000:2000], more=True)), final=False),
        msg(3, status(1, 3, 0, "SyncHdr", 200) + cmd("Add", 2, item("./Vendor/LargeObj", big[2000:]))),
        msg(4, status(1, 4, 0, "SyncHdr", 200) + cmd("Get", 2, item("./Vendor/LargeObj")))]
    yield "large-object-short-then-broken", [
        msg(1, status(1, 1, 0, "SyncHdr", 212)
            + cmd("Replace", 2, item("./Vendor/Short", big[:1000], "chr", 1010, more=True)), final=False),
        msg(2, status(1, 2, 0, "SyncHdr", 200) + cmd("Replace", 2, item("./Vendor/Short", ""))),
        msg(3, status(1, 3, 0, "SyncHdr", 200)
            + cmd("Add", 2, item("./Vendor/Broken", big[:500], "chr", 1000, more=True)), final=False),
        msg(4, status(1, 4, 0, "SyncHdr", 200) + cmd("Get", 2, item("./DevInfo/DevId")))]
    yield "large-certificate", [
        msg(1, status(1, 1, 0, "SyncHdr", 212)
            + cmd("Add", 2, item(cert_uri, root_b64[:third], "b64", len(root_b64), more=True,
                                 typ="application/x-x509-ca-cert")), final=False),
        msg(2, status(1, 2, 0, "SyncHdr", 200)
            + cmd("Add", 2, item(cert_uri, root_b64[third:2 * third], more=True)), final=False),
        msg(3, status(1, 3, 0, "SyncHdr", 200) + cmd("Add", 2, item(cert_uri, root_b64[2 * third:]))),
        msg(4, status(1, 4, 0, "SyncHdr", 200)
            + cmd("Get", 2, item("./Vendor/MSFT/RootCATrustedCertificates/Root?list=Struct")))]
    gets = "".join(cmd("Get", 2 + i, item("./DevInfo/" + leaf))
                   for i, leaf in enumerate(["DevId", "Man", "Mod", "DmV", "Lang"] * 3))
    yield "max-msg-size", [
        msg(1, status(1, 1, 0, "SyncHdr", 212) + gets,
            meta='<MaxMsgSize xmlns="syncml:metinf">1200</MaxMsgSize>')] + [
        msg(n, status(1, n, 0, "SyncHdr", 200) + '<Alert><CmdID>2</CmdID><Data>1222</Data></Alert>')
        for n in range(2, 9)]
    yield "large-results", [
        msg(1, status(1, 1, 0, "SyncHdr", 212) + cmd("Add", 2, item("./Vendor/LargeOut", big, "chr"))),
        msg(2, status(1, 2, 0, "SyncHdr", 200) + cmd("Get", 2, item("./Vendor/LargeOut")),
            meta='<MaxMsgSize xmlns="syncml:metinf">1000</MaxMsgSize>')] + [
        msg(n, status(1, n, 0, "SyncHdr", 200) + status(2, n, 3, "Results", 213)
            + '<Alert><CmdID>3</CmdID><Data>1222</Data></Alert>') for n in range(3, 9)]
    hmac = b'x-syncml-hmac: algorithm=MD5, username="fuzz-server", mac=2jmj7l5rSw0yVb/vlWAYkK==\n'
    yield "hmac-header", [
        hmac + msg(1, status(1, 1, 0, "SyncHdr", 212, chal("syncml:auth-MAC", b"mac-nonce"))
                   + cmd("Get", 2, item("./DevInfo/DevId"))),
        b'x-syncml-hmac: algorithm=md5,username=fuzz-server,mac="x"\n'
        + msg(2, status(1, 2, 0, "SyncHdr", 200))]
    yield "resp-uri-and-alerts", [
        msg(1, status(1, 1, 0, "SyncHdr", 212) + status(2, 1, 1, "Alert", 200)
            + status(3, 1, 2, "Alert", 200) + cmd("Get", 4, item("./DevDetail/URI/MaxDepth")),
            resp_uri="https://dm.example.com/omadm?s=2"),
        msg(2, status(1, 2, 0, "SyncHdr", 200) + status(2, 2, 4, "Results", 200)
            + '<Alert><CmdID>3</CmdID><Data>1223</Data></Alert>')]


# ---- package 0 (fuzz_notify.c) ----

def notification(server_id, session_id, vendor=b"", ui_mode=1, version=12):
    bits = version << 54 | ui_mode << 52 | 1 << 51 | session_id << 8 | len(server_id)
    return b"\0" * 16 + struct.pack(">Q", bits) + server_id + vendor


def notify_seeds(out):
    nonce = b"nonce-from-package-1"
    n = notification(b"fuzz-server", 0x1234, b"vendor")
    # known nonce, harness signs (flags 2), harness does not sign (0)
    write(out, "notify", "signed", bytes([2, len(nonce)]) + nonce + n)
    write(out, "notify", "unsigned", bytes([0, len(nonce)]) + nonce + n)
    write(out, "notify", "empty-nonce", bytes([2, 0]) + notification(b"x", 1))
    rec = b"omadm-auth 1\ncounter 5\nclient-nonce \nserver-nonce bm9uY2U=\n"
    write(out, "notify", "raw-record", bytes([3, len(rec)]) + rec + n)
    write(out, "notify", "raw-garbage", bytes([1, 4]) + b"junk" + notification(b"", 0, b"\x01\x02"))
    write(out, "notify", "long-id", bytes([2, 8]) + b"12345678" + notification(b"s" * 255, 65535))


# ---- enrollment (fuzz_enroll.c) ----

SRC_PAYLOAD, SRC_CERTREP, SRC_CA, SRC_RECORDED, SRC_RIGHT, SRC_CA_PLUS = range(6)
CONNECT, TIMEOUT, TOO_LARGE, FAILED = 4, 5, 6, 7
HTTP = {200: 0, 404: 1, 500: 2, 503: 3, 408: 4, 429: 5, 400: 6, 403: 7, 301: 8, 204: 9}
W_FIXTURE, W_ROOT, W_MDM = 0, 1, 2
STANDARD_CAPS = b"POSTPKIOperation\nSHA-256\nSHA-1\nAES\nDES3\nSCEPStandard\n"


def answer(source=SRC_PAYLOAD, payload=b"", status=200, transport=0, unlock=False, variant=0):
    """One answer of the HTTP hook: h0 (transport, unlock/abort, body source), h1 (HTTP status,
    issued-certificate variant), payload."""
    h0 = transport | (8 if unlock else 0) | source << 4
    return bytes([h0, HTTP[status] | variant << 4]) + payload


def aborted():
    return bytes([FAILED | 8, 0])


def server(kind, which=0):
    """A server message before the next step: 0 Exec again, 1 Delete, 2 Gets, 3 alerts delivered."""
    return bytes([0x80 | kind | which << 4, 0])


def spec(s0, s1, text=b"", body=b""):
    """A CertRep spec (fuzz_pki.h): status/content/cipher/wrong ids, digest/signer/texts."""
    return bytes([s0, s1, len(text)]) + text + body


def enrollment(world=W_FIXTURE, ns=0, count=1, two_urls=False, extras=False, retry_count=0,
               retry_delay=0, hash_alg=0, key_usage=0):
    """The two configuration bytes (indices into the harness's tables)."""
    counts = {1: 0, 2: 1, 3: 2}
    c0 = world | ns << 2 | counts[count] << 4 | (0x40 if two_urls else 0) | (0x80 if extras else 0)
    c1 = retry_count | retry_delay << 2 | hash_alg << 4 | key_usage << 6
    return bytes([c0, c1])


def right_round():
    return [answer(SRC_CA), answer(SRC_PAYLOAD, STANDARD_CAPS), answer(SRC_RIGHT)]


def certrep_round(s, variant=0, caps=STANDARD_CAPS):
    return [answer(SRC_CA), answer(SRC_PAYLOAD, caps), answer(SRC_CERTREP, s, variant=variant)]


def enroll_seeds(out):
    def put(name, config, answers):
        write(out, "enroll", name, config + NEXT.join(answers))

    if os.path.isdir(MDM):
        ca, caps, certrep = (read(os.path.join(MDM, f)) for f in ("ca.der", "caps.txt", "certrep.der"))
        mdm = enrollment(world=W_MDM)
        put("micromdm-raw", mdm, [answer(SRC_PAYLOAD, ca), answer(SRC_PAYLOAD, caps),
                                  answer(SRC_PAYLOAD, certrep)])
        put("micromdm-replayed", mdm, [answer(SRC_RECORDED)] * 3)
        put("micromdm-404-then-pkiclient", mdm, [answer(SRC_RECORDED, status=404)]
            + [answer(SRC_RECORDED)] * 3)
        put("micromdm-caps-404", enrollment(world=W_MDM, hash_alg=1),
            [answer(SRC_RECORDED), answer(SRC_PAYLOAD, b"Not Found", status=404),
             answer(SRC_RECORDED)])
        put("micromdm-certrep-to-fixture", enrollment(),
            [answer(SRC_CA), answer(SRC_PAYLOAD, caps), answer(SRC_PAYLOAD, certrep)])
        put("micromdm-ca-for-fixture-pin", enrollment(),
            [answer(SRC_PAYLOAD, ca), answer(SRC_PAYLOAD, caps)])
    for path in sorted(glob.glob(os.path.join(PKI, "*.der"))):
        put("cacert-" + os.path.basename(path), enrollment(),
            [answer(SRC_PAYLOAD, read(path)), answer(SRC_PAYLOAD, STANDARD_CAPS)])
    put("fixture-right", enrollment(), [answer(SRC_RIGHT)] * 3)
    put("root-pinned-right", enrollment(world=W_ROOT), [answer(SRC_RIGHT)] * 3)
    put("root-pinned-fixture-ca", enrollment(world=W_ROOT), [answer(SRC_CA_PLUS)] + right_round()[1:])
    for ns in range(4):
        put("namespace-%d" % ns, enrollment(ns=ns, extras=True), right_round())
    put("three-enrollments", enrollment(count=3, retry_count=1), right_round() * 3)
    put("two-enrollments-pending", enrollment(count=2, retry_count=1),
        certrep_round(spec(0x0e, 0x02)) * 2 + [answer(SRC_CERTREP, spec(0x00, 0x02))] * 2)
    # every issued-certificate variant, every cipher, the digests
    for v in range(8):
        put("certrep-variant-%d" % v, enrollment(), certrep_round(spec(0x00, 0x02), variant=v))
    for name, s0, s1 in [("aes", 0x00, 0x02), ("3des-sha1", 0x10, 0x00), ("aes256-sha512", 0x20, 0x04),
                         ("des", 0x30, 0x00), ("sha224-relabelled", 0x00, 0x09),
                         ("sha384", 0x00, 0x03), ("md5", 0x00, 0x05)]:
        put("certrep-success-" + name, enrollment(), certrep_round(spec(s0, s1)))
    put("certrep-failure-badtime", enrollment(), certrep_round(spec(0x0d, 0xc2, b"||3|bad time")))
    put("certrep-failure-text", enrollment(), certrep_round(spec(0x0d, 0xc2, b"||99999|x")))
    put("certrep-status-text", enrollment(), certrep_round(spec(0x03, 0x02, b"1")))
    put("certrep-message-type", enrollment(), certrep_round(spec(0x00, 0x22, b"|19")))
    put("certrep-wrong-txid", enrollment(), certrep_round(spec(0x40, 0x02)))
    put("certrep-wrong-nonce", enrollment(), certrep_round(spec(0x80, 0x02)))
    put("certrep-other-signer", enrollment(), certrep_round(spec(0x00, 0x12)))
    put("certrep-no-content", enrollment(), certrep_round(spec(0x0c, 0x02)))
    put("certrep-enveloped-ca", enrollment(),
        certrep_round(spec(0x04, 0x02, b"", read(os.path.join(PKI, "root.der")))))
    put("certrep-raw-content", enrollment(), certrep_round(spec(0x08, 0x02, b"", b"0")))
    # PENDING, polls, RetryCount, RetryDelay (a year: the certificate becomes valid)
    put("pending-then-issued", enrollment(retry_count=1),
        certrep_round(spec(0x0e, 0x02)) + [answer(SRC_CERTREP, spec(0x0e, 0x02)),
                                           answer(SRC_CERTREP, spec(0x00, 0x02))])
    put("pending-until-timeout", enrollment(retry_count=0, retry_delay=1),
        certrep_round(spec(0x0e, 0x02)) + [answer(SRC_CERTREP, spec(0x0e, 0x02))] * 2)
    put("pending-a-year-not-yet-valid", enrollment(retry_count=1, retry_delay=3),
        certrep_round(spec(0x0e, 0x02)) + [answer(SRC_CERTREP, spec(0x00, 0x02), variant=3)])
    put("pending-poll-failures", enrollment(retry_count=1),
        certrep_round(spec(0x0e, 0x02)) + [answer(status=500), answer(transport=TIMEOUT),
                                           answer(SRC_CERTREP, spec(0x0d, 0x42, b"||0"))])
    # HTTP and transport failures, retries, two URLs, a store unlocked during transfers
    put("transient-then-right", enrollment(retry_count=1),
        [answer(status=500), answer(transport=TIMEOUT)] + right_round())
    put("statuses", enrollment(retry_count=3),
        [answer(status=503), answer(status=429), answer(status=408), answer(SRC_CA, status=301)]
        + right_round())
    put("transport-failures", enrollment(retry_count=3),
        [answer(transport=CONNECT), answer(transport=TOO_LARGE), answer(transport=FAILED),
         aborted()] + right_round())
    put("caps-404-sha1", enrollment(hash_alg=1), [answer(SRC_CA), answer(status=404),
                                                  answer(SRC_CERTREP, spec(0x10, 0x00))])
    put("caps-none-sha2", enrollment(), [answer(SRC_CA), answer(SRC_PAYLOAD, b"GetNextCACert\n")])
    put("sha3", enrollment(hash_alg=3), right_round())
    put("two-urls", enrollment(two_urls=True, retry_count=1),
        [answer(SRC_PAYLOAD, b"<html>not SCEP</html>"), answer(status=404)] + right_round())
    put("two-urls-transient", enrollment(two_urls=True, retry_count=1),
        [answer(status=500), answer(SRC_CA), answer(transport=TIMEOUT)] + right_round())
    put("unlocked", enrollment(), [answer(SRC_CA, unlock=True),
                                   answer(SRC_PAYLOAD, STANDARD_CAPS, unlock=True),
                                   answer(SRC_RIGHT, unlock=True)])
    # server messages between steps
    put("exec-again-replaces", enrollment(), right_round() + [server(0)] + right_round()
        + [server(3), server(2)])
    put("exec-while-pending", enrollment(retry_count=1),
        certrep_round(spec(0x0e, 0x02)) + [server(0), answer(SRC_CERTREP, spec(0x00, 0x02)),
                                           server(0)] + right_round())
    put("delete-while-pending", enrollment(count=2, retry_count=1),
        certrep_round(spec(0x0e, 0x02)) + [server(1)] + right_round() + [server(0)] + right_round())
    put("delete-installed", enrollment(key_usage=2), right_round() + [server(1, 0), server(2)])


def pfx_seeds(out):
    """pfx: flags byte (bit 0 envelope, bit 1 base64 blob) + password + NUL + value (fuzz_pfx.c):
    PFX files of the test PKI's leaf made by openssl(1), modern and legacy, and a password envelope"""
    if not shutil.which("openssl"):
        return
    pw = "pässwörd".encode()
    leaf, key, inter = (os.path.join(PKI, f) for f in ("leaf.pem", "leaf.key", "inter.pem"))
    with tempfile.TemporaryDirectory() as d:
        def pkcs12(name, *opts):
            path = os.path.join(d, name)
            subprocess.run(["openssl", "pkcs12", "-export", "-in", leaf, "-inkey", key, "-certfile", inter,
                            "-out", path, *opts], check=True, env=dict(os.environ, LC_ALL="C.UTF-8"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return read(path)
        modern = pkcs12("modern.pfx", "-passout", "pass:" + pw.decode())
        legacy = pkcs12("legacy.pfx", "-legacy", "-passout", "pass:" + pw.decode())
        nopass = pkcs12("nopass.pfx", "-passout", "pass:")
        env = subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-aes256", "-outform", "DER", leaf],
                             input=pw, check=True, capture_output=True).stdout
    write(out, "pfx", "modern", b"\0" + pw + b"\0" + modern)
    write(out, "pfx", "legacy", b"\0" + pw + b"\0" + legacy)
    write(out, "pfx", "modern-b64", b"\2" + pw + b"\0" + base64.b64encode(modern))
    write(out, "pfx", "legacy-wrong-password", b"\0wrong\0" + legacy)
    write(out, "pfx", "nopass", b"\0\0" + nopass)
    write(out, "pfx", "envelope", b"\1" + base64.b64encode(env))


WSTEP_ENV = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
             b'xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">'
             b'http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep</a:Action>'
             b'</s:Header><s:Body>%s</s:Body></s:Envelope>')


def wstep_fault(subcode, ns=b"", detail=b"", value=b"s:Receiver"):
    return WSTEP_ENV % (b'<s:Fault><s:Code><s:Value>' + value + b'</s:Value><s:Subcode><s:Value' + ns +
                        b'>' + subcode + b'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">'
                        b'refused</s:Text></s:Reason>' + detail + b'</s:Fault>')


def wstep_seeds(out):
    """wstep: a flags byte (bits 0-1: HTTP 200/500/307/503; bit 2: the payload is a provisioning
    document the harness wraps into an RSTRC) + the payload (fuzz_wstep.c)"""
    for sub in (b"MessageFormat", b"Authentication", b"Authorization", b"CertificateRequest",
                b"EnrollmentServer"):
        write(out, "wstep", "fault-" + sub.decode(), b"\1" + wstep_fault(b"s:" + sub))
    write(out, "wstep", "fault-InternalServiceFault", b"\1" + wstep_fault(
        b"a:InternalServiceFault",
        b' xmlns:a="http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"'))
    write(out, "wstep", "fault-lower-200", b"\0" + wstep_fault(b"s:authorization", value=b"s:receiver"))
    write(out, "wstep", "fault-detail-errortype", b"\1" + wstep_fault(
        b"s:Authorization", detail=b'<s:Detail><deviceenrollmentserviceerror xmlns="http://schemas.microsoft.com/'
        b'windows/pki/2009/01/enrollment"><errortype>noteligibletorenew</errortype><message>m</message>'
        b'<traceid>t</traceid></deviceenrollmentserviceerror></s:Detail>'))
    write(out, "wstep", "fault-wsdetail", b"\1" + wstep_fault(
        b"s:Receiver", detail=b'<s:Detail><CertificateEnrollmentWSDetail xmlns="http://schemas.microsoft.com/'
        b'windows/pki/2009/01/enrollment" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        b'<BinaryResponse xsi:nil="true"/><ErrorCode>-2146877422</ErrorCode><InvalidRequest>true'
        b'</InvalidRequest><RequestID xsi:nil="true"/></CertificateEnrollmentWSDetail></s:Detail>'))
    write(out, "wstep", "pending", b"\0" + WSTEP_ENV % (
        b'<RequestSecurityTokenResponseCollection xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512">'
        b'<RequestSecurityTokenResponse><DispositionMessage xmlns="http://schemas.microsoft.com/windows/pki/'
        b'2009/01/enrollment">Taken Under Submission</DispositionMessage><RequestedSecurityToken>'
        b'<wsse:SecurityTokenReference xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
        b'wssecurity-secext-1.0.xsd"><wsse:Reference URI="https://127.0.0.1/EnrollmentServer/'
        b'DeviceEnrollmentWebService.svc"/></wsse:SecurityTokenReference></RequestedSecurityToken>'
        b'<RequestID xmlns="http://schemas.microsoft.com/windows/pki/2009/01/enrollment">7</RequestID>'
        b'</RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection>'))
    write(out, "wstep", "redirect", b"\2")
    write(out, "wstep", "http-503", b"\3Service Unavailable")
    leaf = read(os.path.join(PKI, "leaf.b64")).strip()
    sha1 = read(os.path.join(PKI, "leaf.sha1")).strip()
    root = read(os.path.join(PKI, "root.b64")).strip()
    rsha1 = read(os.path.join(PKI, "root.sha1")).strip()

    def doc(store, name, inner=b'<characteristic type="PrivateKeyContainer"/>', roots=True):
        r = (b'<characteristic type="Root"><characteristic type="System"><characteristic type="' + rsha1 +
             b'"><parm name="EncodedCertificate" value="' + root + b'"/></characteristic></characteristic>'
             b'</characteristic>') if roots else b""
        return (b'<wap-provisioningdoc version="1.1"><characteristic type="CertificateStore">' + r +
                b'<characteristic type="My"><characteristic type="' + store + b'"><characteristic type="' +
                name + b'"><parm name="EncodedCertificate" value="' + leaf + b'"/>' + inner +
                b'</characteristic></characteristic></characteristic></characteristic></wap-provisioningdoc>')
    write(out, "wstep", "provdoc-system", b"\4" + doc(b"System", sha1))
    write(out, "wstep", "provdoc-user-no-root", b"\4" + doc(b"User", sha1.lower(), inner=b"", roots=False))
    write(out, "wstep", "provdoc-wrong-name", b"\4" + doc(b"System", rsha1))
    write(out, "wstep", "provdoc-no-my", b"\4" + doc(b"Nothing", sha1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--syncmlconv", help="BUILD_DIR/tests/tools/syncmlconv: WBXML seeds")
    ap.add_argument("--fuzz-scep", help="build/fuzz/fuzz_scep: authentic CertRep seeds")
    a = ap.parse_args()
    out = a.out
    if os.path.exists(out):
        shutil.rmtree(out)

    # xml, wbxml, session from the conformance cases
    for case, msgs in conformance_cases():
        xmls = []
        for nn, kind, path in msgs:
            data = read(path)
            if len(data) > MAX_LEN:
                continue
            if kind == "wbxml":
                write(out, "wbxml", "%s-%s" % (case, nn), data)
                continue
            write(out, "xml", "%s-%s.%s" % (case, nn, kind), data)
            xmls.append(data)
            wb = to_wbxml(a.syncmlconv, data)
            if wb:
                write(out, "wbxml", "%s-%s-conv" % (case, nn), wb)
        if xmls:
            write(out, "session", case + ".xml", NEXT.join(xmls))
            wbs = [to_wbxml(a.syncmlconv, x) for x in xmls]
            if all(wbs) and a.syncmlconv:
                write(out, "session", case + ".wbxml", NEXT.join(wbs))
    for path in sorted(glob.glob(os.path.join(TOP, "tests", "dmserver", "data", "*.xml"))):
        data = read(path)
        if b"<SyncML" in data and len(data) <= MAX_LEN:
            write(out, "xml", "dmserver-" + os.path.basename(path), data)
    for name, msgs in made_sessions():
        write(out, "session", name + ".xml", NEXT.join(msgs))
        # without the x-syncml-hmac line: the message alone
        bare = [re.sub(rb"^x-syncml-hmac: [^\n]*\n", b"", m) for m in msgs]
        wbs = [to_wbxml(a.syncmlconv, m) for m in bare]
        if all(wbs) and a.syncmlconv:
            write(out, "session", name + ".wbxml", NEXT.join(wbs))
        for i, m in enumerate(bare):
            write(out, "xml", "session-%s-%d.xml" % (name, i + 1), m)

    # scep: mode byte + payload (fuzz_scep.c)
    if os.path.isdir(MDM):
        write(out, "scep", "caps-micromdm", b"\0" + read(os.path.join(MDM, "caps.txt")))
        write(out, "scep", "cacert-micromdm", b"\1" + read(os.path.join(MDM, "ca.der")))
        write(out, "scep", "certrep-micromdm", b"\2" + read(os.path.join(MDM, "certrep.der")))
        write(out, "scep", "import-key-micromdm", b"\4" + read(os.path.join(MDM, "key.der")))
        write(out, "scep", "import-issued-micromdm", b"\4" + read(os.path.join(MDM, "issued.der")))
    write(out, "scep", "caps-standard", b"\0AES\r\nSHA-256\r\nSCEPStandard\r\nPOSTPKIOperation\r\n")
    write(out, "scep", "caps-legacy", b"\0DES3\nSHA-1\nGetNextCACert\nRenewal")
    for path in sorted(glob.glob(os.path.join(PKI, "*.der"))):
        write(out, "scep", "cacert-" + os.path.basename(path), b"\1" + read(path))
    if a.fuzz_scep:
        d = os.path.join(out, "scep")
        os.makedirs(d, exist_ok=True)
        env = dict(os.environ, FUZZ_SCEP_SEEDS=d, OMADM_TOP=TOP)
        with tempfile.TemporaryDirectory() as empty:
            subprocess.run([a.fuzz_scep, "-runs=0", empty], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    notify_seeds(out)
    enroll_seeds(out)

    # cert: flags byte (bit 0: raw DER allowed) + value
    for path in sorted(glob.glob(os.path.join(PKI, "*.b64")) + glob.glob(os.path.join(PKI, "*.pem"))
                       + glob.glob(os.path.join(PKI, "*.der"))):
        data = read(path)
        base = os.path.basename(path)
        write(out, "cert", base, b"\0" + data)
        write(out, "cert", "raw-" + base, b"\1" + data)
    pem = read(os.path.join(PKI, "root.pem")) + read(os.path.join(PKI, "inter.pem"))
    write(out, "cert", "two-pems", b"\0" + pem)
    write(out, "cert", "thumbprint", b"\0" + read(os.path.join(PKI, "root.sha1")).strip())
    pfx_seeds(out)
    wstep_seeds(out)
    for t in sorted(os.listdir(out)):
        print("%-8s %4d seeds" % (t, len(os.listdir(os.path.join(out, t)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
