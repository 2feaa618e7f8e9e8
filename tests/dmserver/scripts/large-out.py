# SPDX-License-Identifier: Apache-2.0
"""large-out: our Results larger than the server's MaxMsgSize arrive in chunks (docs/session.md
"Our large Results"; spec §4 large objects).

- msg 1: package 1; the server Adds a 3000-byte chr value at ./Vendor/LargeOut (one message).
- msg 2: Status 200; the server now gives MaxMsgSize 1000 (param limit) and Gets the node.
- msg 3..: every client message is at most the limit; each carries one chunk of the Results for the
  Get: Meta Size 3000 on the first chunk only, MoreData on all but the last, Final only on the
  last; the server answers each chunk with Status 213 and Alert 1222.
- the chunks put together are the 3000 bytes exactly; then the server ends the session.
"""

BIG = "".join(chr(ord("A") + i % 26) for i in range(3000))


def run(s):
    limit = int(s.param("limit", "1000"))
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg)
    m.ack_all()
    a = m.add("./Vendor/LargeOut", BIG, format="chr")
    s.reply(m)
    r = s.receive()
    s.expect(r, m)
    m = s.message(r, hdr_meta=[("MaxMsgSize", str(limit))])
    m.ack_all()
    g = m.get("./Vendor/LargeOut")
    s.reply(m)
    got, parts = "", 0
    while True:
        r = s.receive()
        parts += 1
        s.check(len(r.raw) <= limit, "part %d: %d bytes, at most %d" % (parts, len(r.raw), limit), r)
        res = [c for c in r.cmds if c.name == "Results" and c.cmd_ref == g]
        if not s.check(len(res) == 1 and len(res[0].items) == 1, "part %d: one Results item" % parts, r):
            break
        it = res[0].items[0]
        got += it.data or ""
        size = it.meta.size if it.meta else None
        if parts == 1:
            s.check_eq("Meta Size of the first chunk", "3000", size, r)
        else:
            s.check(size is None, "no Meta Size after the first chunk", r)
        s.check(it.more_data == (not r.final), "MoreData on every chunk but the last", r)
        if r.final or not s.check(parts < 12, "fewer than 12 parts", r):
            break
        m2 = s.message(r)
        m2.hdr_status(200)
        m2.status(res[0].cmd_id, "Results", 213)
        m2.alert("1222")
        s.reply(m2)
    s.check(parts >= 3, "the Results came in %d parts (at least 3)" % parts)
    s.check(got == BIG, "the chunks make the 3000 bytes (got %d)" % len(got))
    s.end(r)
