# SPDX-License-Identifier: Apache-2.0
"""respuri-downgrade: a RespURI that would move an https:// session to plain http:// ends the
session with an error (docs/cli.md "HTTP"; the client must not send the next message).

- msg 1: package 1 over HTTPS; the server answers with RespURI http://127.0.0.1:PORT/omadm/plain
  and a Get of ./DevInfo/DevId.
- the client sends nothing more: no request, and no plain-HTTP attempt on the TLS port (it
  would show as a failed TLS handshake); the test checks the client's exit status 1.
"""


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg, resp_uri="http://127.0.0.1:%d/omadm/plain" % s.port)
    m.ack_all()
    m.get("./DevInfo/DevId")
    s.reply(m)
    s.expect_no_request(3, "an https session must not move to http")
    s.check(not s.tls_errors, "no plain-HTTP attempt on the TLS port (TLS errors: %s)" %
            s.tls_errors)
