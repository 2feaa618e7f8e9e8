# SPDX-License-Identifier: Apache-2.0
"""empty-body: the server ends the session with an HTTP 200 and an empty body (docs/session.md:
`dmclient session` treats an empty HTTP body as the end of the session; the fleet POC server
does this, tests/dmserver/data/SOURCE.md).

- msg 1: package 1; the server answers with a Get of ./DevInfo/DevId.
- msg 2: Status + Results; the server answers 200 with Content-Length 0.
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
    s.reply_empty()
    s.expect_no_request(3, "an empty body ends the session")
