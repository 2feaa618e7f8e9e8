# SPDX-License-Identifier: Apache-2.0
"""alert-1223: the server ends the session with Alert 1223 (session abort) in a message that
also carries Statuses (docs/session.md: the session ends when a server message carries Alert
1223; spec §4: the receiving client should not reply).

- msg 1: package 1; the server answers with a Get of ./DevInfo/DevId.
- msg 2: Status + Results; the server answers with its Statuses and Alert 1223 (and Final).
- the client sends nothing more (3 s) and exits 0.
"""

from dmserver import R


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg)
    m.ack_all()
    g = m.get("./DevInfo/DevId")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R("./DevInfo/DevId", s.dev_id)]})
    m = s.message(r)
    m.ack_all()
    m.alert("1223")
    s.reply(m)
    s.expect_no_request(3, "Alert 1223 ends the session")
