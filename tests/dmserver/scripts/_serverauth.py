# SPDX-License-Identifier: Apache-2.0
"""The server-auth flow shared by server-auth (basic) and server-auth-md5."""

from dmserver import ANY, AUTH_BASIC, AUTH_MD5, R, cred_xml, basic_cred_data, md5_cred_data

PROBE = "./DMServerTest/Probe"


def flow(s, kind):
    typ = AUTH_BASIC if kind == "basic" else AUTH_MD5
    chal = dict(type=typ, format="b64", next_nonce=ANY if kind == "md5" else None)
    if kind == "basic":
        chal.pop("next_nonce")   # optional for basic
    runs_key = "server_auth_%s_runs" % kind
    runs = s.state.get(runs_key, 0)
    msg = s.receive()
    s.expect_package1(msg)
    if runs and kind == "md5":
        # a later session (--state): the client keeps the last nonce it gave us, so our first
        # message can authenticate at once
        m = s.message(msg, cred="md5")
        m.ack_all()
        g = m.get("./DevInfo/DevId")
        s.reply(m)
        r = s.receive()
        s.expect(r, m, hdr=212, results={g: [R("./DevInfo/DevId", s.dev_id)]})
        s.end(r)
        s.state[runs_key] = runs + 1
        return

    # A: no Cred -> 407 + Chal; the Add and the Get are answered 407 and not executed
    m = s.message(msg)
    m.ack_all()
    a = m.add(PROBE, "must-not-exist", format="chr")
    g = m.get(PROBE)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=407, hdr_chal=chal, codes={a: 407, g: 407})
    n1 = s.nonce_from_client
    if kind == "md5":
        s.check(len(n1) == 16, "the Chal's NextNonce is 16 bytes (got %d)" % len(n1), r)

    # B: a wrong Cred -> 401 + Chal (a fresh nonce for md5)
    if kind == "basic":
        bad = cred_xml(AUTH_BASIC, basic_cred_data(s.server_id, s.server_secret + "-wrong"))
    else:
        bad = cred_xml(AUTH_MD5, md5_cred_data(s.server_id, s.server_secret + "-wrong",
                                               s.nonce_from_client))
    m = s.message(r, cred=bad)
    m.hdr_status(200)
    g = m.get(PROBE)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=401, hdr_chal=chal, codes={g: 401})
    if kind == "md5":
        s.check(s.nonce_from_client != n1, "a new NextNonce with the 401", r)

    # C: the right Cred -> 212; the first Add did not happen (404), now it does
    m = s.message(r, cred=kind)
    m.hdr_status(200)
    g1 = m.get(PROBE)
    a = m.add(PROBE, "added-after-auth", format="chr")
    g2 = m.get(PROBE)
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=212, codes={g1: 404, a: 200},
             results={g2: [R(PROBE, "added-after-auth")]})

    # D: no Cred any more: the session is authenticated (200); clean up
    m = s.message(r)
    m.hdr_status(200)
    g = m.get(PROBE)
    d = m.delete("./DMServerTest")
    s.reply(m)
    r = s.receive()
    s.expect(r, m, hdr=200, codes={d: 200}, results={g: [R(PROBE, "added-after-auth")]})
    s.end(r)
    s.state[runs_key] = runs + 1

