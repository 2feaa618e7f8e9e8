# SPDX-License-Identifier: Apache-2.0
"""daemon: the demo's mission for dmclient daemon, in any number of sessions, in any order.

A lenient server for a client that may be killed at any moment (tests/scripts/test-daemon.sh,
case f): it keeps no expectation of which session comes next, only what it has learnt.
Parameters as for the demo script: scep_url and scep_ca_thumbprint (required), scep_challenge,
scep_id (DemoCert), scep_subject, scep_san, pki; wait (seconds to wait for the next session
while the result has not come, default --timeout), linger (seconds to go on serving after the
result came, for the same alert again, default 2).

Every client message is either package 1 of a session (MsgID 1) or the reply to the server's
last message in the same session; package 1 of a new session in the middle of another means
the client stopped (or was killed) in that one, and the new session is served from its start.
In each session:
- package 1 is checked as in the package1 script (Alert 1201, the DevInfo Replace), except that
  it may carry any number of Generic Alerts 1226; each must have Source = the Enroll URI, Type
  com.microsoft:mdm.SCEPcertinstall.result, Format int, and Data 0 (success).  Each is recorded
  (printed "server: result alert K: Data D") and acked 200 (delivered).
- with a result alert: the server also Gets Status ("1"), ErrorCode ("0") and CertThumbprint
  (40 upper-case hex digits, recorded) of the enrollment and
  ./Vendor/MSFT/CertificateStore/My/System (which must list that thumbprint); end.
- otherwise, while the server has not seen the enrollment in the device's tree: Add of the test
  PKI root and intermediate to RootCATrustedCertificates (200, or 418 when an earlier session
  that the server did not see to its end already added them) and a Get of {scep_id}/Status
  (404: not ordered yet; 200: ordered in a session whose end the server did not see, Status 32
  or 1).  When it was 404: the demo's Atomic (Add {scep_id}, the Install parameters, Exec
  Install/Enroll) and a Get of Status: Atomic 200, 200 inside, Status "32".  End.
- otherwise: only the Statuses for package 1 (the client has nothing to answer: the session
  ends).
The run ends PASS when a result alert with Data 0 has come and then no request for `linger`
seconds, or at SIGUSR1 (the client has exited): then it passes when such an alert came.  The
notes (printed as NOTE: lines) report what came: sessions, result alerts received (a count
above 1 means the same alert came again: the device did not process the server's 200 for it
before it stopped), the thumbprints read.
"""

import re

from dmserver import ANY, R
from _flows import CERTSTORE, ROOTCA, SCEP_ALERT_TYPE, SCEP_BASE, pki, scep_order

STOP = object()   # no further request (SIGUSR1, or a wait that ran out)


def say(text):
    print("server: " + text, flush=True)


class Mission:
    def __init__(self, s):
        self.s = s
        self.url = s.param("scep_url")
        self.ca_thumb = s.param("scep_ca_thumbprint")
        self.node = "%s/%s" % (SCEP_BASE, s.param("scep_id", "DemoCert"))
        self.enroll = self.node + "/Install/Enroll"
        self.wait = float(s.param("wait", s.timeout))
        self.linger = float(s.param("linger", "2"))
        self.ordered = False      # the server has seen the enrollment in the device's tree
        self.sessions = 0
        self.results = []         # Data of every result alert received
        self.thumbs = []          # CertThumbprint read after a result alert

    def next_message(self, timeout):
        """The client's next message, or STOP."""
        msg = self.s.receive(timeout=timeout, allow_timeout=True)
        return STOP if msg is None else msg

    def reply_and_receive(self, m):
        """Send m; the client's answer in the same session, package 1 of a new session (the
        client stopped in this one), or STOP."""
        self.s.reply(m)
        return self.next_message(self.wait)

    def end(self, r):
        m = self.s.message(r)
        m.ack_all()
        self.s.reply(m)

    def session(self, msg):
        """Serve the session msg (package 1) begins: None when it ended, or package 1 of the
        next session, or STOP."""
        s = self.s
        self.sessions += 1
        gen = [c for c in msg.commands("Alert") if c.data == "1226"]
        s.expect_package1(msg, alerts=[dict(source=self.enroll, type=SCEP_ALERT_TYPE,
                                             format="int", data="0")] * len(gen))
        for c in gen:
            for i in c.items:
                self.results.append(i.data)
                say("result alert %d: Data %s (session %d, SessionID %s)" % (
                    len(self.results), i.data, self.sessions, msg.session_id))
        m = s.message(msg)
        m.ack_all()
        if gen:
            g1 = m.get(self.node + "/Status")
            g2 = m.get(self.node + "/ErrorCode")
            g3 = m.get(self.node + "/CertThumbprint")
            g4 = m.get(CERTSTORE + "/My/System")
            r = self.reply_and_receive(m)
            if r is STOP or r.msg_id == "1":
                return r
            s.expect(r, m, results={g1: [R(self.node + "/Status", "1", format="int")],
                                    g2: [R(self.node + "/ErrorCode", "0", format="int")],
                                    g3: [R(self.node + "/CertThumbprint", ANY)],
                                    g4: [R(CERTSTORE + "/My/System", ANY, format="node")]})
            res = r.results_for(g3)
            tp = res[0].items[0].data if res and res[0].items else None
            s.check(tp is not None and re.fullmatch(r"[0-9A-F]{40}", tp) is not None,
                    "CertThumbprint is 40 upper-case hex digits (got %r)" % tp, r)
            res = r.results_for(g4)
            mine = (res[0].items[0].data or "").split("/") if res and res[0].items else []
            s.check(tp in mine, "My/System lists %s (got %r)" % (tp, mine), r)
            self.thumbs.append(tp)
            say("server view: Status=1 ErrorCode=0 CertThumbprint=%s" % tp)
            self.ordered = True
            self.end(r)
            return None
        if self.ordered:
            s.reply(m)          # Statuses only: the session ends
            return None
        # install the CAs; is the enrollment there already?
        rt, rb = pki(s, "root")
        it, ib = pki(s, "inter")
        a1 = m.add("%s/Root/%s/EncodedCertificate" % (ROOTCA, rt), rb, format="b64")
        a2 = m.add("%s/CA/%s/EncodedCertificate" % (ROOTCA, it), ib, format="b64")
        g = m.get(self.node + "/Status")
        r = self.reply_and_receive(m)
        if r is STOP or r.msg_id == "1":
            return r
        s.expect(r, m, codes={a1: (200, 418), a2: (200, 418), g: (200, 404)},
                 results={g: [R(self.node + "/Status", ANY, format="int")]})
        st = r.status_for(g)
        if st is not None and st.code == 200:
            res = r.results_for(g)
            val = res[0].items[0].data if res and res[0].items else None
            s.check(val in ("32", "2", "1"), "Status of an enrollment ordered before: 32, 2 "
                    "or 1 (got %r)" % val, r)
            say("session %d: the enrollment is there already (Status %s)" % (self.sessions, val))
            self.ordered = True
            self.end(r)
            return None
        m = s.message(r)
        m.hdr_status(200)
        a = m.atomic()
        scep_order(s, a, self.node, self.url, self.ca_thumb)
        g = m.get(self.node + "/Status")
        say("session %d: CAs installed; the enrollment ordered" % self.sessions)
        r = self.reply_and_receive(m)
        if r is STOP or r.msg_id == "1":
            return r
        s.expect(r, m, results={g: [R(self.node + "/Status", "32", format="int")]})
        self.ordered = True
        self.end(r)
        return None

    def run(self):
        s = self.s
        msg = None
        while True:
            if msg is None:
                done = "0" in self.results
                msg = self.next_message(self.linger if done else self.wait)
                if msg is STOP:
                    break
            if msg.msg_id != "1":
                s.fail("a message (MsgID %s) after the server ended its session" % msg.msg_id,
                       msg)
                s.reply_http(500, body=b"the session is over\n")
                msg = None
                continue
            msg = self.session(msg)
            if msg is STOP:
                break
        s.note("sessions: %d" % self.sessions)
        s.note("result alerts received: %d (Data %s)" % (
            len(self.results), ", ".join(self.results) or "-"))
        s.note("CertThumbprint read: %s" % (", ".join(t or "?" for t in self.thumbs) or "-"))
        s.check("0" in self.results, "a result alert with Data 0 came (got %d result alerts)"
                % len(self.results))


def run(s):
    s.require(bool(s.param("scep_url")) and bool(s.param("scep_ca_thumbprint")),
              "scep_url and scep_ca_thumbprint are given")
    Mission(s).run()
