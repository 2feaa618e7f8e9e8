# SPDX-License-Identifier: Apache-2.0
"""certs: certificates through RootCATrustedCertificates (certificatestore-csp.md §7-8,
docs/certificatestore.md), with the test PKI of tests/data/pki (param pki: another directory).

Checks, after package 1 (checked as in the package1 script):
- Add ./Device/Vendor/MSFT/RootCATrustedCertificates/Root/<root thumbprint>/EncodedCertificate
  and CA/<intermediate thumbprint>/EncodedCertificate (Format b64, one-line base64 DER): 200, 200.
- Get Root (Format node, Data = the root's thumbprint), Get of the root's {CertHash} (children
  EncodedCertificate/IssuedBy/IssuedTo/ValidFrom/ValidTo/TemplateName), IssuedTo/IssuedBy
  ("C=DE, O=Conformance Test PKI, CN=Conformance Root"), ValidFrom 2025-01-01T00:00:00Z,
  ValidTo 2045-01-01T00:00:00Z, TemplateName "", EncodedCertificate (Format b64, the same
  base64), the intermediate's IssuedTo/IssuedBy, ./Vendor/MSFT/CertificateStore/CA/System
  (same store: the intermediate's thumbprint); each Status 200 + Results (Format chr unless
  said); the same Add again: 418.
- Delete of the root's {CertHash}: 200.
- Get of its EncodedCertificate: 404 (no Results); Get Root: 200, empty Data; Delete again:
  404; Delete of the intermediate: 200; Get of it: 404.
- End of session: no further request.
Exact replies: every Status with MsgRef, CmdRef, Cmd; CmdIDs 1, 2, ...; Final.
"""

from _flows import certs_flow


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    r = certs_flow(s, msg)
    s.end(r)
