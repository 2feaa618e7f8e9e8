# SPDX-License-Identifier: Apache-2.0
"""basic-auth-refused: the server refuses the client's basic credentials three times.

Client side: --auth basic (params client_user, client_secret as for basic-auth).
docs/session.md: "a third challenge in a row ends the session with an error".

- msg 1: package 1 with Cred basic; answered Status 401 + Chal syncml:auth-basic (no command).
- msg 2: package 1 again (MsgID 2, Status 200 for our SyncHdr first, same Cred); 401 again.
- msg 3: package 1 again (MsgID 3); 401 a third time.
- then the client gives up: no further request within 3 s (the test checks its exit status 1).
"""

from dmserver import AUTH_BASIC, basic_cred_data


def run(s):
    cred = None
    for n in (1, 2, 3):
        msg = s.receive()
        if n == 1:
            cred = (AUTH_BASIC, basic_cred_data(s.user, s.client_secret))
            s.expect_package1(msg, cred=cred)
        else:
            s.expect_package1(msg, msg_id=str(n), hdr_status=200, cred=cred)
        m = s.message(msg)
        m.hdr_status(401, chal=dict(type=AUTH_BASIC, format="b64"))
        s.reply(m)
    s.expect_no_request(3, "the client gives up after the third challenge")
