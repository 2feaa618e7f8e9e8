# SPDX-License-Identifier: Apache-2.0
"""record: a session for dmclient session --record (tests/scripts/test-session-record.sh).

Parameters: auth (default "none"):
- "none": no credentials.
- "md5": client --auth digest --client-secret S and --server-id dmserver --server-secret SS
  --server-auth digest (params client_secret, server_secret).  Package 1 carries our md5 Cred
  over the empty nonce; the server answers with its own md5 Cred (over the empty nonce: the
  client gave it none yet) and Status 401 + Chal (NextNonce N1) for ours: the client answers
  212 for the server's Cred and sends package 1 again, its Cred over N1.  Every later server
  message carries the server's Cred too; its first command message answers our Cred 212 with
  a NextNonce for the next session.
- "hmac": x-syncml-hmac both ways (--auth hmac ... --server-auth hmac, as the hmac script):
  every SyncHdr Status of both sides carries a Chal with a fresh NextNonce.
scep_challenge (default "rec-challenge-7Hq2"): the SCEP Challenge sent.  pfx_password (default
"rec-pfx-password-Qw81"): a PFX password sent.  mkdir (optional): a
directory created just before the answer to package 1 (the test puts one where the recording
writes, so that the recording fails while the session goes on).

The commands (after the authentication):
- msg A: Add ./Record/Leaf (chr), Replace it, an Atomic enrolling
  ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/rec1 (Add {ID} node, Install/ServerURL,
  Challenge, CAThumbprint, SubjectName, KeyUsage int 160, KeyLength int 2048, HashAlgorithm,
  Exec Install/Enroll), an Add of
  ./Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/rec1/PFXCertPassword, Gets of
  ./Record/Leaf, {ID}/Status and {ID}/Install/Challenge.
  Reply: all 200, Results "replaced" and "32" (int), the Challenge 404 (erased at Exec).
- msg B: Get ./Record (its child list "Leaf", Format node), Delete ./Record, Get
  ./Record/Leaf.  Reply: 200 + Results "Leaf", 200, 404.
- then a message with Statuses only: no further request.
"""

import os

from dmserver import ANY, AUTH_MAC, AUTH_MD5, R, md5_cred_data

SCEP = "./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/rec1"
PFX = "./Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/rec1"


def package1(s, auth):
    """Package 1 and, with md5, the challenge round; returns the message to answer and the
    SyncHdr code our credentials get there."""
    msg = s.receive()
    if auth != "md5":
        s.expect_package1(msg)
        return msg
    s.expect_package1(msg, cred=(AUTH_MD5, md5_cred_data(s.user, s.client_secret, b"")))
    n1 = os.urandom(16)
    m = s.message(msg, cred="md5")
    m.hdr_status(401, chal=dict(type=AUTH_MD5, format="b64", next_nonce=n1))
    s.reply(m)
    msg = s.receive()
    s.expect_package1(msg, msg_id="2", hdr_status=212,
                      cred=(AUTH_MD5, md5_cred_data(s.user, s.client_secret, n1)))
    return msg


def run(s):
    auth = s.param("auth", "none")
    s.require(auth in ("none", "md5", "hmac"), "auth is none, md5 or hmac")
    s.hmac = auth == "hmac"
    cred = "md5" if auth == "md5" else None
    hdr_chal = dict(type=AUTH_MAC, format="b64", next_nonce=ANY) if s.hmac else None
    msg = package1(s, auth)
    block = s.param("mkdir")
    if block:
        os.mkdir(block)

    m = s.message(msg, cred=cred)
    if auth == "md5":
        m.ack_all(hdr=212, chal=dict(type=AUTH_MD5, format="b64", next_nonce=os.urandom(16)))
    else:
        m.ack_all()
    add = m.add("./Record/Leaf", "first", format="chr")
    m.replace("./Record/Leaf", "replaced", format="chr")
    a = m.atomic()
    a.add(SCEP, format="node")
    for name, value, fmt in (
            ("ServerURL", "http://127.0.0.1:9/scep", "chr"),
            ("Challenge", s.param("scep_challenge", "rec-challenge-7Hq2"), "chr"),
            ("CAThumbprint", "ADC1911E726D0E000C28A1FD4F864417303F3208", "chr"),
            ("SubjectName", "CN=record-test", "chr"),
            ("KeyUsage", "160", "int"),
            ("KeyLength", "2048", "int"),
            ("HashAlgorithm", "SHA-2", "chr")):
        a.add(SCEP + "/Install/" + name, value, format=fmt)
    a.exec(SCEP + "/Install/Enroll")
    m.add(PFX + "/PFXCertPassword", s.param("pfx_password", "rec-pfx-password-Qw81"), format="chr")
    g1 = m.get("./Record/Leaf")
    g2 = m.get(SCEP + "/Status")
    g3 = m.get(SCEP + "/Install/Challenge")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=200, hdr_chal=hdr_chal, codes={g3: 404},
             results={g1: [R("./Record/Leaf", "replaced")],
                      g2: [R(SCEP + "/Status", "32", format="int")]})
    s.check(add is not None, "the Add was sent", r)

    m = s.message(r, cred=cred)
    m.hdr_status(200)
    g1 = m.get("./Record")
    m.delete("./Record")
    g2 = m.get("./Record/Leaf")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=200, hdr_chal=hdr_chal, codes={g2: 404},
             results={g1: [R("./Record", "Leaf", format="node")]})
    s.end(r, cred=cred)
