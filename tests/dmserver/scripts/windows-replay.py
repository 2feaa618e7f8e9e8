# SPDX-License-Identifier: Apache-2.0
"""windows-replay: server messages of real and documented Windows sessions, replayed.

Data: tests/dmserver/data/ (see its SOURCE.md), the [MS-MDM] §4 example from
tests/conformance/010-ms-mdm-spec-example/01-server.xml, and (when present) the fleet SCEP
profile fragment from the corpus directory --param sessions=DIR (default /work/shared/sessions).

Each captured server message keeps its commands verbatim (layout, CmdIDs, Meta quirks); the
SyncHdr is ours (SessionID and Target of this session, MsgID counting up, Source = the captured
server URL https://mdmwindows.com/ManagementServer/MDM.svc for every message) and its captured
Statuses (for a Windows package 1) are replaced by Statuses for our package 1.  The fragments
(no SyncHdr) are wrapped in one message each, with their placeholders filled from the test PKI.

Expected (exact where this client implements the nodes; "recorded" = any code, logged as NOTE):
 1. package 1 (checked as in the package1 script) -> fleet POC package 2: Replace
    ./Vendor/MSFT/Personalization/DesktopImageUrl and LockScreenImageUrl: recorded (no
    Personalization CSP; the real device said 202).
 2. [MS-MDM] §4 example: Get ./DevDetail/SwV -> 200 + Results (Format chr, param swv, default
    "unknown"); Get "./ DevDetail/HwV" (a space in the URI) -> 404, no Results
    (tests/conformance/010-ms-mdm-spec-example/README).
 3. C1 Add Root/System/<root>/EncodedCertificate (Data before Meta, LocURI with newlines) -> 200.
 4. C2 Get My/User?list=StructData -> 200 + Results (items recorded).
 5. C3 Delete Root/System/<root> -> 200.
 6. C5 WSTEP Renew Atomic of three Replace: recorded (WSTEP is not implemented).
 7. C4 My/SCEP Atomic (CmdID 100, 15 Adds, Exec Enroll) -> 200 for each (case 350); then
    Get of CertSCEP1/Status -> 32 (Format int) and Delete CertSCEP1 -> 200 (nothing is
    enrolled: the test never runs `dmclient run`).
 8. fleet SCEP profile Atomic (ClientCertificateInstall, 11 Adds + Exec) -> 200 for each
    (docs/enrollment.md); Delete of the {UniqueID} -> 200.  Skipped when the file is missing.
 9. the fleet POC reply without commands (Statuses only) ends the session: no further request.
Every reply: one Status per command in order (MsgRef, CmdRef, Cmd), Results after a Get 200,
CmdIDs 1, 2, ..., Final, Target = the captured server URL.
"""

import os
import re

from dmserver import ANY, R, REPO, HERE
from _flows import pki

SRV = "https://mdmwindows.com/ManagementServer/MDM.svc"
DATA = os.path.join(HERE, "data")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def body_of(xml):
    """The SyncBody of a captured message without its Statuses and Final."""
    body = re.search(r"<SyncBody>(.*)</SyncBody>", xml, re.S).group(1)
    body = re.sub(r"<Status>.*?</Status>", "", body, flags=re.S)
    body = re.sub(r"<Final\s*/>", "", body)
    return body


def max_cmd_id(xml):
    ids = [int(x) for x in re.findall(r"<CmdID>\s*(\d+)\s*</CmdID>", xml)]
    return max(ids) if ids else 0


def send(s, to, body, ack_cmds=False):
    """A message answering `to` with our Statuses and the captured commands `body`."""
    m = s.message(to, source=SRV)
    hdr_id = max_cmd_id(body) + 1
    m.status("0", "SyncHdr", 200, cmd_id=hdr_id)
    n = hdr_id
    if ack_cmds:
        for c in to.cmds:
            if c.name not in ("Status", "Results"):
                n += 1
                m.status(c.cmd_id, c.name, 200, cmd_id=n)
    sent = m.raw(body)
    m.next_cmd_id = n + 1
    s.reply(m)
    return m, sent


def run(s):
    rt, rb = pki(s, "root")
    swv = s.param("swv", "unknown")

    msg = s.receive()
    s.expect_package1(msg)

    # 1. fleet POC package 2: two Replace of Personalization (not implemented here)
    m, sent = send(s, msg, body_of(read(os.path.join(DATA, "fleet-poc-02-server-pkg2.xml"))),
                   ack_cmds=True)
    r = s.receive()
    s.expect(r, m, codes={c.cmd_id: ANY for c in sent})

    # 2. [MS-MDM] §4 example: Get SwV, Get "./ DevDetail/HwV"
    ex = read(os.path.join(REPO, "tests", "conformance", "010-ms-mdm-spec-example",
                           "01-server.xml"))
    m, sent = send(s, r, body_of(ex))
    r = s.receive()
    g_swv, g_hwv = sent[0].cmd_id, sent[1].cmd_id
    s.expect(r, m, codes={g_hwv: 404},
             results={g_swv: [R("./DevDetail/SwV", swv)]})

    # 3-6. the CertificateStore documentation fragments
    def frag(name):
        t = read(os.path.join(DATA, "msdocs-certstore-%s.frag.xml" % name))
        t = re.sub(r"<CertificateHashInserted[hH]ere>", rt, t)
        t = t.replace("B64EncodedCertInsertedHere", rb)
        t = t.replace("ChallengeInsertedHere", "Q2hhbGxlbmdlSW5zZXJ0ZWRIZXJl")
        t = t.replace("CAThumbprintInsertedHere", rt)
        return t

    m, sent = send(s, r, frag("01-add-root-system"))
    r = s.receive()
    s.expect(r, m, codes={sent[0].cmd_id: 200})

    m, sent = send(s, r, frag("02-get-my-user-structdata"))
    r = s.receive()
    s.expect(r, m, codes={sent[0].cmd_id: 200}, results={sent[0].cmd_id: ANY})
    for res in r.commands("Results"):
        for it in res.items:
            s.note("C2 StructData item: %s format=%s data=%r" % (it.source, it.format, it.data))

    m, sent = send(s, r, frag("03-delete-root-system"))
    r = s.receive()
    s.expect(r, m, codes={sent[0].cmd_id: 200})

    m, sent = send(s, r, frag("05-wstep-renew-atomic"))
    r = s.receive()
    s.expect(r, m, codes={c.cmd_id: ANY for top in sent for c in top.flat()})

    # 7. C4 My/SCEP enrollment Atomic -> 200 everywhere; Status 32; Delete
    m, sent = send(s, r, frag("04-my-scep-atomic-enroll"))
    r = s.receive()
    s.expect(r, m)
    base = "./Vendor/MSFT/CertificateStore/My/SCEP/CertSCEP1"
    m = s.message(r, source=SRV)
    m.hdr_status(200)
    g = m.get(base + "/Status")
    m.delete(base)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R(base + "/Status", "32", format="int")]})

    # 8. the fleet SCEP profile (ClientCertificateInstall), when the corpus is there
    path = os.path.join(s.param("sessions", "/work/shared/sessions"), "fleet-scep-profile",
                        "scep-atomic-clientcertificateinstall.frag.xml")
    if os.path.exists(path):
        m, sent = send(s, r, read(path))
        r = s.receive()
        s.expect(r, m)
        m = s.message(r, source=SRV)
        m.hdr_status(200)
        m.delete("./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/060358dc442f")
        s.reply(m)
        r = s.receive()
        s.expect(r, m)
    else:
        s.note("skipped the fleet SCEP profile: %s not found (--param sessions=DIR)" % path)

    # 9. the fleet POC reply without commands ends the session
    end = read(os.path.join(DATA, "fleet-poc-dump-sessB-02-server-reply.xml"))
    m = s.message(r, source=SRV)
    m.hdr_status(200)
    m.raw(body_of(end), cmds=[])
    s.reply(m)
    s.expect_no_request(2)
