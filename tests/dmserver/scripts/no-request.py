# SPDX-License-Identifier: Apache-2.0
"""no-request: the client must not get a message through at all (TLS refused).

For the TLS cases: a server certificate the client does not trust (the client gets --cacert of
another CA, or the server runs with other-server.pem), or a client certificate the server
does not accept (--client-ca with a certificate from another CA, or none).

- no request within --param seconds=N (default 5) ; with --param tls_errors=1 at least one
  TLS handshake must have failed on the server's side (recorded in the log).
"""


import time


def run(s):
    seconds = float(s.param("seconds", "5"))
    s.expect_no_request(seconds, "the TLS handshake must fail", exact=True)
    for e in s.tls_errors:
        s.log("TLS error seen: %s" % e)
    if s.param("tls_errors", "0") == "1":
        for _ in range(20):     # the handshake failure may be logged just after the client exits
            if s.tls_errors:
                break
            time.sleep(0.05)
        s.check(len(s.tls_errors) >= 1, "a TLS handshake failed on the server's side "
                "(got %d failures)" % len(s.tls_errors))
