# SPDX-License-Identifier: Apache-2.0
"""demo: the README's demonstration (tests/demo.sh) - the whole mission in two sessions.

Parameters (--param KEY=VALUE or the environment DMSERVER_KEY): scep_url (required: the SCEP
server), scep_ca_thumbprint (required: SHA-1 of its CA, 40 hex digits), scep_challenge
(default ""); scep_id (default DemoCert), scep_subject (CN=demo-device,O=omadm demo),
scep_san (3+demo-device.example.org), session2_timeout (seconds to wait for session 2, default
120); pki (default tests/data/pki: root and intermediate CA to install).

Every step is narrated on stdout as it happens ("server: ..." lines and one "server view: ..."
line, flushed at once), so the demo can show the server's side of each session; the checks are
those of the certs and scep-session scripts, and the run ends with the usual PASS:/FAIL: line.

Session 1 (dmclient session):
- package 1 checked as in the package1 script; the server acks it and Adds the test PKI root
  to ./Device/Vendor/MSFT/RootCATrustedCertificates/Root/<thumbprint>/EncodedCertificate and
  the intermediate to .../CA/<thumbprint>/EncodedCertificate (Format b64): 200, 200.
- Gets them back: Root (node: the root's thumbprint), the root's IssuedTo and
  EncodedCertificate (the same base64), the intermediate's IssuedTo and IssuedBy, and
  ./Vendor/MSFT/CertificateStore/CA/System (the intermediate's thumbprint): 200 + Results.
- an Atomic of Add ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/{scep_id} (node) and
  Adds of Install/ServerURL, Challenge, CAThumbprint, SubjectName, SubjectAlternativeNames,
  KeyUsage (int 160), KeyLength (int 2048), HashAlgorithm (SHA-2), RetryCount (int 3),
  RetryDelay (int 1), EKUMapping (1.3.6.1.5.5.7.3.2: clientAuth), and Exec Install/Enroll;
  a Get of {scep_id}/Status: Atomic 200 and 200 for everything in it, Status "32" (int: not
  executed yet - dmclient run does the work); end of session.
Session 2 (dmclient session, after dmclient run --until-idle):
- SessionID = session 1's + 1; package 1 carries one Generic Alert 1226: Source = the Enroll
  URI, Type com.microsoft:mdm.SCEPcertinstall.result, Format int, Data 0 (success).  The
  server acks it (200: delivered) and Gets Status ("1", int), ErrorCode ("0", int),
  CertThumbprint (40 upper-case hex digits), RespondentServerUrl (scep_url),
  ./Vendor/MSFT/CertificateStore/My/System (lists CertThumbprint) and the Root store (still
  the root's thumbprint).  It prints "server view: Status=1 ErrorCode=0 CertThumbprint=<40 hex
  digits>"; end of session.
"""

import re

from dmserver import ANY, R
from _flows import (CERTSTORE, INTER_DN, ROOT_DN, ROOTCA, SCEP_ALERT_TYPE as ALERT_TYPE,
                    SCEP_BASE, pki, scep_order)


LOG = []


def say(text, prefix="server: "):
    """One narration line on stdout at once (the demo shows them as they come)."""
    print(prefix + text, flush=True)
    if LOG:
        LOG[0].log("demo: " + text)


def codes_of(r):
    """'Add 200, Get 200, ...': the Statuses of a client message (SyncHdr left out)."""
    return ", ".join("%s %s" % (c.cmd, c.data) for c in r.statuses() if c.cmd != "SyncHdr")


def result_data(r, cmd_id):
    res = r.results_for(cmd_id)
    return res[0].items[0].data if res and res[0].items else None


def short(thumb):
    return (thumb[:8] + "...") if thumb else repr(thumb)


def session1(s, url, ca_thumb):
    node = "%s/%s" % (SCEP_BASE, s.param("scep_id", "DemoCert"))
    rt, rb = pki(s, "root")
    it, ib = pki(s, "inter")
    root = "%s/Root/%s" % (ROOTCA, rt)
    inter = "%s/CA/%s" % (ROOTCA, it)

    msg = s.receive()
    s.expect_package1(msg)
    devinfo = {i.source.rsplit("/", 1)[-1]: i.data
               for c in msg.commands("Replace") for i in c.items if i.source}
    say("session 1 begins: package 1 from device %r (SessionID %s, Alert %s; DevInfo Man=%s "
        "Mod=%s)" % (msg.hdr.source, msg.session_id,
                     "/".join(c.data or "" for c in msg.commands("Alert")),
                     devinfo.get("Man"), devinfo.get("Mod")))

    # 1. install a root CA and an intermediate CA
    m = s.message(msg)
    m.ack_all()
    a1 = m.add(root + "/EncodedCertificate", rb, format="b64")
    a2 = m.add(inter + "/EncodedCertificate", ib, format="b64")
    say("-> Add root CA 'Conformance Root' to RootCATrustedCertificates/Root/%s" % rt)
    say("-> Add intermediate CA 'Conformance Intermediate' to RootCATrustedCertificates/CA/%s"
        % it)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, codes={a1: 200, a2: 200})
    say("<- %s" % codes_of(r))

    # 2. read them back (the CA store is also visible through CertificateStore)
    m = s.message(r)
    m.hdr_status(200)
    want = {}
    g_root = m.get(ROOTCA + "/Root")
    want[g_root] = [R(ROOTCA + "/Root", rt, format="node")]
    g = m.get(root + "/IssuedTo")
    want[g] = [R(root + "/IssuedTo", ROOT_DN)]
    g = m.get(root + "/EncodedCertificate")
    want[g] = [R(root + "/EncodedCertificate", rb, format="b64")]
    g_ito = m.get(inter + "/IssuedTo")
    want[g_ito] = [R(inter + "/IssuedTo", INTER_DN)]
    g_iby = m.get(inter + "/IssuedBy")
    want[g_iby] = [R(inter + "/IssuedBy", ROOT_DN)]
    g_cs = m.get(CERTSTORE + "/CA/System")
    want[g_cs] = [R(CERTSTORE + "/CA/System", it, format="node")]
    say("-> Get them back: Root list, the root's IssuedTo and EncodedCertificate, the "
        "intermediate's IssuedTo/IssuedBy, CertificateStore/CA/System")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results=want)
    say("<- Root = %s; intermediate %r issued by %r; CertificateStore/CA/System = %s"
        % (short(result_data(r, g_root)), result_data(r, g_ito), result_data(r, g_iby),
           short(result_data(r, g_cs))))

    # 3. order a client certificate over SCEP (an Atomic, as Intune/Fleet send it)
    m = s.message(r)
    m.hdr_status(200)
    a = m.atomic()
    params = scep_order(s, a, node, url, ca_thumb)
    g = m.get(node + "/Status")
    say("-> Atomic: Add %s with" % node)
    for name, value, fmt in params:
        say("     Install/%-24s %s" % (name, "***" if name == "Challenge" else value))
    say("   and Exec Install/Enroll; then Get Status")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R(node + "/Status", "32", format="int")]})
    say("<- Atomic %s (%d commands in it: 200); Status = %s (accepted; the device enrolls in "
        "the background)" % (r.status_for(a.cmd_id).data if r.status_for(a.cmd_id) else None,
                             len(params) + 2, result_data(r, g)))
    say("-> end of session 1")
    s.end(r)
    return node, rt, msg.session_id


def session2(s, node, url, rt, sid1):
    enroll = node + "/Install/Enroll"
    msg = s.receive(timeout=float(s.param("session2_timeout", "120")),
                    what="package 1 of session 2")
    if sid1 and sid1.isdigit():
        s.check_eq("SessionID of session 2", str(int(sid1) % 65535 + 1), msg.session_id, msg)
    s.expect_package1(msg, alerts=[dict(source=enroll, type=ALERT_TYPE, format="int",
                                         data="0")])
    alerts = [c for c in msg.commands("Alert") if c.data == "1226"]
    say("session 2 begins (SessionID %s): package 1 carries %d Generic Alert(s) 1226" %
        (msg.session_id, len(alerts)))
    for c in alerts:
        for i in c.items:
            say("   Alert 1226: Source %s, Type %s, Data %s (0 = success)" % (i.source, i.type,
                                                                            i.data))
    m = s.message(msg)
    m.ack_all()
    g1 = m.get(node + "/Status")
    g2 = m.get(node + "/ErrorCode")
    g3 = m.get(node + "/CertThumbprint")
    g4 = m.get(node + "/RespondentServerUrl")
    g5 = m.get(CERTSTORE + "/My/System")
    g6 = m.get(ROOTCA + "/Root")
    say("-> 200 for the alert (delivered); Get Status, ErrorCode, CertThumbprint, "
        "RespondentServerUrl, CertificateStore/My/System, the Root store")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g1: [R(node + "/Status", "1", format="int")],
                            g2: [R(node + "/ErrorCode", "0", format="int")],
                            g3: [R(node + "/CertThumbprint", ANY)],
                            g4: [R(node + "/RespondentServerUrl", url)],
                            g5: [R(CERTSTORE + "/My/System", ANY, format="node")],
                            g6: [R(ROOTCA + "/Root", rt, format="node")]})
    tp = result_data(r, g3)
    s.check(tp is not None and re.fullmatch(r"[0-9A-F]{40}", tp) is not None,
            "CertThumbprint is 40 upper-case hex digits (got %r)" % tp, r)
    mine = (result_data(r, g5) or "").split("/")
    s.check(tp in mine, "My/System lists the enrolled certificate %s (got %r)" % (tp, mine), r)
    say("<- Status %s, ErrorCode %s, RespondentServerUrl %s, My/System = %s" % (
        result_data(r, g1), result_data(r, g2), result_data(r, g4), "/".join(mine)))
    say("server view: Status=%s ErrorCode=%s CertThumbprint=%s" % (
        result_data(r, g1), result_data(r, g2), tp), prefix="")
    say("-> end of session 2")
    s.end(r)


def run(s):
    url = s.param("scep_url")
    thumb = s.param("scep_ca_thumbprint")
    s.require(bool(url) and bool(thumb), "scep_url and scep_ca_thumbprint are given")
    LOG[:] = [s]
    node, rt, sid1 = session1(s, url, thumb)
    session2(s, node, url, rt, sid1)
