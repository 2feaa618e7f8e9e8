# SPDX-License-Identifier: Apache-2.0
"""server-auth: the client requires the server's credentials, syncml:auth-basic.

Client side: --server-id ID --server-secret S --server-auth basic (params server_id, default
"dmserver" = the server's Source, and server_secret, default "server-secret").
docs/session.md "Server credentials".

- msg 1: package 1.  The server answers with Statuses, an Add of ./DMServerTest/Probe and a Get
  of it, without Cred.
- msg 2: Status 407 for the SyncHdr with Chal (Type syncml:auth-basic, Format b64); the Add
  and the Get answered 407 each (no Results): not executed.
- the server sends a wrong Cred (B64(ID:wrong secret)) and a Get: msg 3: 401 + Chal, Get 401.
- the server sends the right Cred B64(ID:S), Get (404: the first Add never happened), Add
  (200), Get (200, Results "added-after-auth"): msg 4: SyncHdr Status 212.
- a message without Cred: SyncHdr Status 200 (authenticated for the session), Get 200,
  Delete ./DMServerTest 200.  End of session.
"""

from _serverauth import flow


def run(s):
    flow(s, "basic")
