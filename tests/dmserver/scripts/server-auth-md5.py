# SPDX-License-Identifier: Apache-2.0
"""server-auth-md5: the client requires the server's credentials, syncml:auth-md5.

Client side: --server-id ID --server-secret S --server-auth digest (params server_id, default
"dmserver", server_secret, default "server-secret").  docs/session.md "Server credentials".

As server-auth, with md5: the 407's Chal carries NextNonce (16 bytes, b64); the wrong Cred is
a digest with a wrong secret over that nonce (401, with a new NextNonce); the right Cred is
B64(MD5(B64(MD5(ID:S)) ":" nonce)) over the latest nonce the client gave -> 212.

With --state FILE, a second run (same client state directory) checks the next session: the
server's first message carries the md5 Cred over the last nonce the client gave in the
previous session (the client persists it) -> SyncHdr Status 212 at once, a Get of
./DevInfo/DevId answered 200 + Results; end.
"""

from _serverauth import flow


def run(s):
    flow(s, "md5")
