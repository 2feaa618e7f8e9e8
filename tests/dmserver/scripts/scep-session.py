# SPDX-License-Identifier: Apache-2.0
"""scep-session: a SCEP enrollment ordered in one session, its result reported in the next.

Parameters (--param KEY=VALUE or the environment DMSERVER_KEY): scep_url (required: the SCEP
server), scep_ca_thumbprint (required: SHA-1 of its CA, 40 hex digits), scep_challenge
(default ""); scep_base (default ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP), scep_id
(default dmserver1), scep_subject (CN=dmserver-test), scep_key_length (2048), scep_hash
(SHA-2), scep_retry_delay (1), scep_retry_count (3); session2_timeout (seconds to wait for
session 2, default 120); phases (default "1,2"; "1,2,3" adds session 3; "2" or "2,3" when
session 1 ran under another server process; "1,2r,2,3" first refuses the alert).
docs/enrollment.md, docs/session.md "Package 1".

The test runs: dmclient session (session 1), dmclient run --until-idle (the enrollment, with
DMCLIENT_MINUTE_SECONDS=1), dmclient session (session 2) [, dmclient session (session 3)].

Session 1:
- package 1 without generic alerts; the server acks it and sends an Atomic of Add {ID}
  (Format node), Adds of Install/ServerURL, Challenge, CAThumbprint, SubjectName, KeyUsage
  (int 160), KeyLength (int), HashAlgorithm, RetryCount (int), RetryDelay (int), EKUMapping
  (1.3.6.1.5.5.7.3.2), Exec Install/Enroll; then a Get of {ID}/Status.
- reply: Atomic 200 and 200 for every command in it, Get 200 with Status "32" Format int
  (not executed yet: the work happens in dmclient run); end of session.
Session 2r (phases containing 2r): package 1 carries the alert (below); the server answers it
  500: not delivered (docs/session.md: anything but 200/202 keeps it); end.
Session 2:
- package 1 carries one Generic Alert: Alert 1226 (CmdID 3), one Item with Source LocURI =
  the Enroll URI as sent, Meta Type com.microsoft:mdm.SCEPcertinstall.result, Format int, no
  Mark, Data 0.  The server answers it 200 (delivered) and Gets Status, ErrorCode and
  CertThumbprint.
- reply: Status "1" (int), ErrorCode "0" (int), CertThumbprint 40 upper-case hex digits
  (chr); end of session.
Session 3 (phases containing 3): package 1 without the alert (it was delivered); end.
Every later session's SessionID is the previous one + 1 (same client state).
"""

import re

from dmserver import ANY, R

LAST = {}


def next_session(s, what):
    """Package 1 of the next session; its SessionID is the previous one + 1 (docs/session.md:
    a counter in the engine state)."""
    msg = s.receive(timeout=float(s.param("session2_timeout", "120")), what=what)
    prev = LAST.get("sid")
    if prev is not None and prev.isdigit():
        s.check_eq("SessionID of the next session", str(int(prev) % 65535 + 1), msg.session_id,
                   msg)
    LAST["sid"] = msg.session_id
    return msg


def run(s):
    phases = [p.strip() for p in s.param("phases", "1,2").split(",") if p.strip()]
    base = s.param("scep_base", "./Device/Vendor/MSFT/ClientCertificateInstall/SCEP")
    node = "%s/%s" % (base, s.param("scep_id", "dmserver1"))
    enroll = node + "/Install/Enroll"

    if "1" in phases:
        url = s.param("scep_url")
        thumb = s.param("scep_ca_thumbprint")
        s.require(bool(url) and bool(thumb), "scep_url and scep_ca_thumbprint are given "
                  "(DMSERVER_SCEP_URL, DMSERVER_SCEP_CA_THUMBPRINT)")
        msg = s.receive()
        LAST["sid"] = msg.session_id
        s.expect_package1(msg)
        m = s.message(msg)
        m.ack_all()
        a = m.atomic()
        a.add(node, format="node")
        inst = node + "/Install/"
        for name, value, fmt in (
                ("ServerURL", url, "chr"),
                ("Challenge", s.param("scep_challenge", ""), "chr"),
                ("CAThumbprint", thumb, "chr"),
                ("SubjectName", s.param("scep_subject", "CN=dmserver-test"), "chr"),
                ("KeyUsage", "160", "int"),
                ("KeyLength", s.param("scep_key_length", "2048"), "int"),
                ("HashAlgorithm", s.param("scep_hash", "SHA-2"), "chr"),
                ("RetryCount", s.param("scep_retry_count", "3"), "int"),
                ("RetryDelay", s.param("scep_retry_delay", "1"), "int"),
                ("EKUMapping", "1.3.6.1.5.5.7.3.2", "chr")):
            a.add(inst + name, value, format=fmt)
        a.exec(enroll)
        g = m.get(node + "/Status")
        s.reply(m)
        r = s.receive()
        s.expect(r, m, results={g: [R(node + "/Status", "32", format="int")]})
        s.end(r)

    alert = dict(source=enroll, type="com.microsoft:mdm.SCEPcertinstall.result", format="int",
                 data="0")
    if "2r" in phases:
        msg = next_session(s, "package 1 of session 2 (alert refused)")
        s.expect_package1(msg, alerts=[alert])
        m = s.message(msg)
        m.ack_all(codes={msg.cmds[-1].cmd_id: 500} if msg.cmds else {})
        s.reply(m)
        s.expect_no_request()

    if "2" in phases:
        msg = next_session(s, "package 1 of session 2")
        s.expect_package1(msg, alerts=[alert])
        m = s.message(msg)
        m.ack_all()
        g1 = m.get(node + "/Status")
        g2 = m.get(node + "/ErrorCode")
        g3 = m.get(node + "/CertThumbprint")
        s.reply(m)
        r = s.receive()
        s.expect(r, m, results={g1: [R(node + "/Status", "1", format="int")],
                                g2: [R(node + "/ErrorCode", "0", format="int")],
                                g3: [R(node + "/CertThumbprint", ANY)]})
        res = r.results_for(g3)
        tp = res[0].items[0].data if res and res[0].items else None
        s.check(tp is not None and re.fullmatch(r"[0-9A-F]{40}", tp) is not None,
                "CertThumbprint is 40 upper-case hex digits (got %r)" % tp, r)
        want = s.param("scep_cert_thumbprint")
        if want:
            s.check_eq("CertThumbprint", want, tp, r)
        s.end(r)

    if "3" in phases:
        msg = next_session(s, "package 1 of session 3")
        s.expect_package1(msg, alerts=[])
        s.end(msg)
