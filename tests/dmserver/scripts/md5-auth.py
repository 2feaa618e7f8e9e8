# SPDX-License-Identifier: Apache-2.0
"""md5-auth: client credentials syncml:auth-md5 with server-chosen nonces, over two sessions.

Client side: --auth digest --client-user U --client-secret S (params client_user, default the
DevId, client_secret, default "client-secret").  The server keeps the nonces in --state FILE
(required); run the script twice with the same state file and the same client state
directory (fresh for the first run).  docs/session.md "Authentication", spec §7.

First run (the state file has no md5-auth entry):
- msg 1: package 1 with Cred Type syncml:auth-md5, Format b64, Data
  B64(MD5(B64(MD5(U:S)) ":" nonce)) over the empty nonce (none given yet), LocName U.
- the server answers Status 401 + Chal (syncml:auth-md5, b64, NextNonce N1: 16 random bytes).
- msg 2: package 1 again (MsgID 2, Status 200 for our SyncHdr first) with the digest over N1.
- the server answers 212 with a Chal carrying NextNonce N2 (for the next session), acks
  Alert and Replace, Gets ./DevInfo/DevId.
- msg 3: no Cred; Status 200 + Results.  End of session; N2 goes to the state file.
Second run (the state file has N2):
- msg 1: package 1 whose Cred is the digest over N2 (the nonce persisted by the client).
- the server answers 212 with a Chal carrying N3 (saved for a third run), acks, Gets DevId;
  msg 2: Status + Results, no Cred; end.
"""

import os

from dmserver import AUTH_MD5, R, b64, md5_cred_data


def run(s):
    s.require(bool(s.args.state), "md5-auth needs --state FILE")
    runs = s.state.get("md5_auth_runs", 0)
    s.log("md5-auth run %d; the client should use nonce %r" % (runs + 1,
                                                               b64(s.nonce_to_client)))
    msg = s.receive()
    cred = (AUTH_MD5, md5_cred_data(s.user, s.client_secret, s.nonce_to_client))
    s.expect_package1(msg, cred=cred)
    if runs == 0:
        n1 = os.urandom(16)
        m = s.message(msg)
        m.hdr_status(401, chal=dict(type=AUTH_MD5, format="b64", next_nonce=n1))
        s.reply(m)
        msg = s.receive()
        cred = (AUTH_MD5, md5_cred_data(s.user, s.client_secret, n1))
        s.expect_package1(msg, msg_id="2", hdr_status=200, cred=cred)
    nxt = os.urandom(16)
    m = s.message(msg)
    m.ack_all(hdr=212, chal=dict(type=AUTH_MD5, format="b64", next_nonce=nxt))
    g = m.get("./DevInfo/DevId")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R("./DevInfo/DevId", s.dev_id)]})
    s.end(r)
    s.state["md5_auth_runs"] = runs + 1
    s.log("next session's nonce: %s" % b64(nxt))
