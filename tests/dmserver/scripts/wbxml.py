# SPDX-License-Identifier: Apache-2.0
"""wbxml: the package1 and certs flows with WBXML messages both ways.

Client side: --encoding wbxml.  The server converts with syncmlconv (--syncmlconv; the
omadm codec, so it checks the transport, not the codec independently) and answers in WBXML.

- every request: Content-Type application/vnd.syncml.dm+wbxml, Accept lists it, the body is
  WBXML; every response: the same Content-Type, WBXML body.
- msg 1: package 1 exactly as in the package1 script; then the Gets of ./DevInfo/DevId and
  ./DevDetail/SwV (package1 script) and the whole certs flow (certs script: Add/Get/Delete
  through RootCATrustedCertificates with the test PKI), in one session; end of session.
"""

from _flows import certs_flow, package1_flow


def run(s):
    s.encoding = "wbxml"
    msg = s.receive()
    s.check(msg.raw[:1] in (b"\x01", b"\x02", b"\x03"),
            "WBXML version byte 0x01..0x03 (got %r)" % msg.raw[:1], msg)
    s.expect_package1(msg)
    r = package1_flow(s, msg)
    r = certs_flow(s, r)
    s.end(r)
