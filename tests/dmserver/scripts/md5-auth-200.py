# SPDX-License-Identifier: Apache-2.0
"""md5-auth-200: SyncHdr Status 200 (not 212) keeps the client sending credentials, with a new
digest when a new nonce came (docs/session.md "Authentication": "200 - the same credentials
again in the next message (with a new digest when a new nonce came)"; spec §7).

Client side: --auth digest --client-secret S (params client_user, client_secret); a fresh client
state (or the same --state file as before: the first digest is over the nonce the server gave
last, empty at first).

- msg 1: package 1 with Cred md5 over the current nonce; the server answers 200 with a Chal
  carrying NextNonce N1, acks Alert/Replace, Gets ./DevInfo/DevId.
- msg 2: Cred md5 over N1 (LocName = user), Status 200 + Results; the server answers 200 without
  Chal and Gets ./DevDetail/SwV.
- msg 3: Cred md5 over N1 again; Status 200 + Results; the server ends the session.
"""

import os

from dmserver import AUTH_MD5, R, md5_cred_data


def run(s):
    msg = s.receive()
    s.expect_package1(msg, cred=(AUTH_MD5, md5_cred_data(s.user, s.client_secret,
                                                         s.nonce_to_client)))
    n1 = os.urandom(16)
    m = s.message(msg)
    m.ack_all(hdr=200, chal=dict(type=AUTH_MD5, format="b64", next_nonce=n1))
    g = m.get("./DevInfo/DevId")
    s.reply(m)
    cred = (AUTH_MD5, md5_cred_data(s.user, s.client_secret, n1))

    r = s.receive()
    s.expect(r, m, results={g: [R("./DevInfo/DevId", s.dev_id)]}, cred=cred)
    s.check_eq("SyncHdr Source LocName (user)", s.user, r.hdr.source_name, r)
    m = s.message(r)
    m.hdr_status(200)
    g = m.get("./DevDetail/SwV")
    s.reply(m)

    r = s.receive()
    s.expect(r, m, results={g: [R("./DevDetail/SwV", s.param("swv", "unknown"))]}, cred=cred)
    s.end(r)
