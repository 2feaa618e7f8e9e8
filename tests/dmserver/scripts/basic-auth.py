# SPDX-License-Identifier: Apache-2.0
"""basic-auth: the server requires client credentials syncml:auth-basic and challenges first.

Client side: --auth basic --client-user U --client-secret S (params client_user, default the
DevId, and client_secret, default "client-secret").  docs/session.md "Authentication".

- msg 1: package 1 (as in the package1 script) carrying Cred Meta Type syncml:auth-basic,
  Format b64, Data B64(U:S), and Source LocName U.
- the server answers Status 407 for the SyncHdr with Chal (Type syncml:auth-basic, Format
  b64), nothing else (no command).
- msg 2: package 1 again in the same session: SessionID unchanged, MsgID 2, Target = the
  server's Source, Status 200 for the server's SyncHdr (CmdID 1, MsgRef 1), then Alert 1201
  (CmdID 2), Replace of the DevInfo leaves (CmdID 3), Final, with the same Cred and LocName.
- the server answers 212 (authenticated for the session), acks Alert and Replace, Gets
  ./DevInfo/DevId.
- msg 3: no Cred any more; Status SyncHdr 200, Get 200 + Results.
- the server ends the session: no further request.
"""

from dmserver import AUTH_BASIC, R, basic_cred_data


def run(s):
    msg = s.receive()
    cred = (AUTH_BASIC, basic_cred_data(s.user, s.client_secret))
    s.expect_package1(msg, cred=cred)
    m = s.message(msg)
    m.hdr_status(407, chal=dict(type=AUTH_BASIC, format="b64"))
    s.reply(m)

    msg = s.receive()
    s.expect_package1(msg, msg_id="2", hdr_status=200, cred=cred)
    m = s.message(msg)
    m.ack_all(hdr=212)
    g = m.get("./DevInfo/DevId")
    s.reply(m)

    r = s.receive()
    s.expect(r, m, results={g: [R("./DevInfo/DevId", s.dev_id)]})
    s.end(r)
