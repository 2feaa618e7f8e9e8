# SPDX-License-Identifier: Apache-2.0
"""Flows shared by several scripts (not a script itself: names starting with _ are refused)."""

import os

from dmserver import R, REPO

ROOTCA = "./Device/Vendor/MSFT/RootCATrustedCertificates"
CERTSTORE = "./Vendor/MSFT/CertificateStore"
SCEP_BASE = "./Device/Vendor/MSFT/ClientCertificateInstall/SCEP"
SCEP_ALERT_TYPE = "com.microsoft:mdm.SCEPcertinstall.result"

# tests/data/pki/README: subjects and validity of the test PKI
ROOT_DN = "C=DE, O=Conformance Test PKI, CN=Conformance Root"
INTER_DN = "C=DE, O=Conformance Test PKI, CN=Conformance Intermediate"
VALID_FROM = "2025-01-01T00:00:00Z"
VALID_TO = "2045-01-01T00:00:00Z"


def pki(s, name):
    """(thumbprint, base64 DER) of tests/data/pki/NAME (param pki: another directory)."""
    d = s.param("pki", os.path.join(REPO, "tests", "data", "pki"))
    with open(os.path.join(d, name + ".sha1")) as f:
        thumb = f.read().strip()
    with open(os.path.join(d, name + ".b64")) as f:
        data = f.read().strip()
    return thumb, data


def scep_order(s, container, node, url, ca_thumb):
    """The demo's SCEP enrollment order into container (an Atomic, as Intune/Fleet send it):
    Add node (Format node), the Adds of its Install parameters (params scep_challenge,
    scep_subject, scep_san) and Exec Install/Enroll.  Returns the (name, value, format) of the
    parameters, in the order they were added."""
    container.add(node, format="node")
    inst = node + "/Install/"
    params = (
        ("ServerURL", url, "chr"),
        ("Challenge", s.param("scep_challenge", ""), "chr"),
        ("CAThumbprint", ca_thumb, "chr"),
        ("SubjectName", s.param("scep_subject", "CN=demo-device,O=omadm demo"), "chr"),
        ("SubjectAlternativeNames", s.param("scep_san", "3+demo-device.example.org"), "chr"),
        ("KeyUsage", "160", "int"),
        ("KeyLength", "2048", "int"),
        ("HashAlgorithm", "SHA-2", "chr"),
        ("RetryCount", "3", "int"),
        ("RetryDelay", "1", "int"),
        ("EKUMapping", "1.3.6.1.5.5.7.3.2", "chr"))
    for name, value, fmt in params:
        container.add(inst + name, value, format=fmt)
    container.exec(node + "/Install/Enroll")
    return params


def package1_flow(s, msg):
    """Answer package 1 (already checked) with Gets of DevId and SwV; check the reply."""
    m = s.message(msg)
    m.ack_all()
    g1 = m.get("./DevInfo/DevId")
    g2 = m.get("./DevDetail/SwV")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results={g1: [R("./DevInfo/DevId", s.dev_id)],
                            g2: [R("./DevDetail/SwV", s.param("swv", "unknown"))]})
    return r


def certs_flow(s, msg, ack=True):
    """RootCATrustedCertificates: add the test root (Root) and intermediate (CA), read them back,
    delete the root, check it is gone.  msg: the client message to answer first (its commands
    are acked when ack).  Returns the client's last message."""
    base = s.param("rootca_base", ROOTCA)
    rt, rb = pki(s, "root")
    it, ib = pki(s, "inter")
    root = "%s/Root/%s" % (base, rt)
    inter = "%s/CA/%s" % (base, it)

    # 1: the two Adds (implicit {CertHash}, Format b64)
    m = s.message(msg)
    m.ack_all() if ack else m.hdr_status(200)
    a1 = m.add(root + "/EncodedCertificate", rb, format="b64")
    a2 = m.add(inter + "/EncodedCertificate", ib, format="b64")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, codes={a1: 200, a2: 200})

    # 2: read them back; the same store seen through CertificateStore; a second Add -> 418
    m = s.message(r)
    m.hdr_status(200)
    want = {}
    g = m.get(base + "/Root")
    want[g] = [R(base + "/Root", rt, format="node")]
    g = m.get(root)
    want[g] = [R(root, "EncodedCertificate/IssuedBy/IssuedTo/ValidFrom/ValidTo/TemplateName",
                 format="node")]
    for leaf, val in (("IssuedTo", ROOT_DN), ("IssuedBy", ROOT_DN), ("ValidFrom", VALID_FROM),
                      ("ValidTo", VALID_TO), ("TemplateName", "")):
        g = m.get("%s/%s" % (root, leaf))
        want[g] = [R("%s/%s" % (root, leaf), val)]
    g = m.get(root + "/EncodedCertificate")
    want[g] = [R(root + "/EncodedCertificate", rb, format="b64")]
    for leaf, val in (("IssuedTo", INTER_DN), ("IssuedBy", ROOT_DN)):
        g = m.get("%s/%s" % (inter, leaf))
        want[g] = [R("%s/%s" % (inter, leaf), val)]
    g = m.get(CERTSTORE + "/CA/System")
    want[g] = [R(CERTSTORE + "/CA/System", it, format="node")]
    dup = m.add(root + "/EncodedCertificate", rb, format="b64")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, results=want, codes={dup: 418})

    # 3: delete the root
    m = s.message(r)
    m.hdr_status(200)
    d = m.delete(root)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, codes={d: 200})

    # 4: it is gone (404), the Root store is empty, a second Delete -> 404; clean up the CA
    m = s.message(r)
    m.hdr_status(200)
    g1 = m.get(root + "/EncodedCertificate")
    g2 = m.get(base + "/Root")
    d2 = m.delete(root)
    d3 = m.delete(inter)
    g3 = m.get(inter)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, codes={g1: 404, g2: 200, d2: 404, d3: 200, g3: 404},
             results={g2: [R(base + "/Root", "", format="node")]})
    return r
