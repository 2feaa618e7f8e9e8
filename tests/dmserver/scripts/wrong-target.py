# SPDX-License-Identifier: Apache-2.0
"""wrong-target: a server message for another device (its SyncHdr Target is not the client's
DevId) is answered but not executed (docs/protocol.md, "Reply shape"): SyncHdr Status 404,
every command 215, no Results; the session then ends with exit 1.

- msg 1: package 1; the server answers, addressed to "another-device", with an Add of
  ./WrongTarget and a Get of ./DevInfo/DevId.
- msg 2: SyncHdr 404, the Add and the Get 215, no Results; the server answers, addressed to
  the DevId, with a Get of ./WrongTarget.
- msg 3: that Get answers 404 (the Add did not run); the server ends the session (Statuses
  only).
- the client sends nothing more and exits 1 ("the server addressed a message to another
  device").
"""


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg, target="another-device")
    m.ack_all()
    m.add("./WrongTarget", data="x", format="chr")
    m.get("./DevInfo/DevId")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=404, default=215)
    m = s.message(r)
    m.ack_all()
    g = m.get("./WrongTarget")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, codes={g: 404})
    m = s.message(r)
    m.ack_all()
    s.reply(m)
    s.expect_no_request(3, "the session is over")
