# SPDX-License-Identifier: Apache-2.0
"""hmac-bad: the server's x-syncml-hmac is wrong (or missing): the client must end the session.

Client side as for the hmac script.  --param bad=mac (default: signed with a wrong secret),
bad=missing (no header), bad=nonce (signed over a nonce the client never gave).

- msg 1: package 1 (with a good x-syncml-hmac); the server answers with a Get of
  ./DevInfo/DevId, signed as `bad` says.
- the client must not answer (docs/session.md: "a missing or wrong header ends the session"):
  no request within 3 s; the test checks its exit status 1.
"""


def run(s):
    s.hmac = True
    bad = s.param("bad", "mac")
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg)
    m.ack_all()
    m.get("./DevInfo/DevId")
    if bad == "missing":
        sign = False
    elif bad == "nonce":
        sign = (s.server_id, s.server_secret, b"stale")
    else:
        sign = (s.server_id, s.server_secret + "-wrong", s.nonce_from_client)
    s.reply(m, hmac_sign=sign)
    s.expect_no_request(3, "the server's x-syncml-hmac is %s" % bad)
