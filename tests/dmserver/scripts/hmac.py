# SPDX-License-Identifier: Apache-2.0
"""hmac: x-syncml-hmac integrity in both directions (syncml:auth-MAC).

Client side: --auth hmac --client-user U --client-secret S --server-auth hmac --server-id ID
--server-secret SS (params client_user, default the DevId; client_secret, default
"client-secret"; server_id, default "dmserver"; server_secret, default "server-secret").
With --state FILE the nonces carry over to the next run (use the same client state): the
server's answer to the next session's package 1 is signed with the last nonce the client gave.
(hmac-2 in tests/scripts/test-dm-session.sh: a nonce the client made for the unsent reply to
the session's last message must not be the one it checks the next session against.)
docs/session.md "HMAC", spec §7.

- every client message carries x-syncml-hmac: algorithm=MD5, username="U",
  mac=B64(MD5(B64(MD5(U:S)) ":" nonce ":" B64(MD5(body)))) over the exact body, with the nonce
  the server gave last (none yet in a first session: empty); no Cred in the SyncHdr.
- every server message is signed the same way with ID:SS and the nonce the client gave last
  (from the Chal of its SyncHdr Status; empty, or from --state, for the answer to package 1),
  and its SyncHdr Status (200) carries a Chal Type syncml:auth-MAC with a fresh NextNonce.
- msg 1: package 1; answered with Gets of ./DevInfo/DevId.
- msg 2: Status SyncHdr 200 with Chal (Type syncml:auth-MAC, Format b64, NextNonce), Get 200 +
  Results; answered with a Get of ./DevDetail/SwV.
- msg 3: the same with a new NextNonce; end of session (signed): no further request.
"""

from dmserver import ANY, AUTH_MAC, R

CHAL = dict(type=AUTH_MAC, format="b64", next_nonce=ANY)


def run(s):
    s.hmac = True
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg)
    m.ack_all()
    g = m.get("./DevInfo/DevId")
    s.reply(m)

    r = s.receive()
    s.expect(r, m, hdr_chal=CHAL, results={g: [R("./DevInfo/DevId", s.dev_id)]})
    first = s.nonce_from_client
    m = s.message(r)
    m.hdr_status(200)
    g = m.get("./DevDetail/SwV")
    s.reply(m)

    r = s.receive()
    s.expect(r, m, hdr_chal=CHAL, results={g: [R("./DevDetail/SwV", s.param("swv", "unknown"))]})
    s.check(s.nonce_from_client != first, "the client gives a new nonce in every message", r)
    s.end(r)
