# SPDX-License-Identifier: Apache-2.0
"""respuri: the server moves the session with RespURI (docs/session.md "The exchange": the
next message goes to the server's RespURI when its last message gave one; spec §2).

- msg 1: package 1 (POST /omadm); the server answers with RespURI
  https://127.0.0.1:PORT/omadm/next?sid=SESSIONID and a Get of ./DevInfo/DevId.
- msg 2: POSTed to /omadm/next?sid=SESSIONID; Status 200 + Results; the server answers with
  another RespURI (/omadm/third) and a Get of ./DevDetail/SwV.
- msg 3: POSTed to /omadm/third; then a message without RespURI ends the session (the client
  sends nothing more).
"""

from dmserver import R


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    s.check_eq("request path", "/omadm", msg.http["path"], msg)
    m = s.message(msg, resp_uri="%s/omadm/next?sid=%s" % (s.base_url, msg.session_id))
    m.ack_all()
    g = m.get("./DevInfo/DevId")
    s.reply(m)
    r = s.receive()           # the path is checked against the RespURI for every message
    s.expect(r, m, results={g: [R("./DevInfo/DevId", s.dev_id)]})
    m = s.message(r, resp_uri=s.base_url + "/omadm/third")
    m.hdr_status(200)
    g = m.get("./DevDetail/SwV")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g: [R("./DevDetail/SwV", s.param("swv", "unknown"))]})
    s.end(r)
