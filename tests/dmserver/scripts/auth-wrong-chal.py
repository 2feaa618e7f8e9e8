# SPDX-License-Identifier: Apache-2.0
"""auth-wrong-chal: the server challenges for another kind of credentials than the client has
(docs/session.md: "A Chal of another type than configured ... ends the session with an error";
with no client credentials configured, a 407 ends it too).

--param chal=md5 (default) | basic | MAC: the Chal's Type (syncml:auth-md5 ...); --param code=401
(default) or 407.  Client side: e.g. --auth basic with chal=md5, or no --auth with chal=basic
and code=407.

- msg 1: package 1 (Cred as the client is configured: recorded, not checked); the server
  answers Status CODE for the SyncHdr with a Chal of that Type (and a NextNonce), no command.
- the client sends nothing more (3 s); the test checks its exit status 1.
"""

import os

from dmserver import ANY


def run(s):
    typ = "syncml:auth-" + s.param("chal", "md5")
    code = int(s.param("code", "401"))
    msg = s.receive()
    s.expect_package1(msg, cred=ANY)
    s.log("package 1 Cred: %s" % (msg.hdr.cred.type if msg.hdr.cred else None))
    m = s.message(msg)
    m.hdr_status(code, chal=dict(type=typ, format="b64", next_nonce=os.urandom(16)))
    s.reply(m)
    s.expect_no_request(3, "a challenge the client cannot answer ends the session")
