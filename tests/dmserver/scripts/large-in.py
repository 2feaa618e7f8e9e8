# SPDX-License-Identifier: Apache-2.0
"""large-in: a large object from the server, chunked over three messages (docs/session.md
"Large objects from the server"; spec §4).

- msg 1: package 1; the server sends the first chunk of an Add of ./Vendor/LargeObj (Format chr,
  Size 3000, 1000 bytes, MoreData) in a message without Final.
- msg 2: Status 213 for the chunk, Alert 1222, no Final; second chunk (MoreData), no Final.
- msg 3: Status 213; last chunk (no MoreData), Final.
- msg 4: Status 200 for the Add; then a Get of the node returns the 3000 bytes exactly.
- then a second object whose last chunk makes it 10 bytes short of its Size: 424, and a Get of it
  answers 404; a third object broken off by a Get: the reply carries Alert 1225 naming it.
"""

BIG = "".join(chr(ord("a") + i % 26) for i in range(3000))


def chunk_msg(s, to, target, data, size=None, more=True, final=False):
    m = s.message(to, final=final)
    m.ack_all()
    it = dict(target=target, data=data, format="chr", more_data=more)
    if size is not None:
        it["size"] = str(size)
    cid = m.add(items=[it])
    s.reply(m)
    return m, cid


def status_of(r, cid):
    return [c.data for c in r.cmds if c.name == "Status" and c.cmd_ref == cid]


def run(s):
    msg = s.receive()
    s.expect_package1(msg)
    m, cid = chunk_msg(s, msg, "./Vendor/LargeObj", BIG[:1000], size=3000)
    r = s.receive()
    s.check(status_of(r, cid) == ["213"], "chunk 1: 213 (got %s)" % status_of(r, cid), r)
    s.check(any(c.name == "Alert" and c.data == "1222" for c in r.cmds), "Alert 1222 asks for more", r)
    s.check(not r.final, "no Final while the package goes on", r)
    m, cid = chunk_msg(s, r, "./Vendor/LargeObj", BIG[1000:2000])
    r = s.receive()
    s.check(status_of(r, cid) == ["213"], "chunk 2: 213 (got %s)" % status_of(r, cid), r)
    m, cid = chunk_msg(s, r, "./Vendor/LargeObj", BIG[2000:], more=False, final=True)
    r = s.receive()
    s.check(status_of(r, cid) == ["200"], "last chunk: the Add's 200 (got %s)" % status_of(r, cid), r)
    m = s.message(r)
    m.ack_all()
    g = m.get("./Vendor/LargeObj")
    s.reply(m)
    r = s.receive()
    res = [c for c in r.cmds if c.name == "Results" and c.cmd_ref == g]
    s.check(len(res) == 1 and res[0].items and res[0].items[0].data == BIG,
            "the node holds the 3000 bytes", r)
    # short by 10: 424, nothing written
    m, cid = chunk_msg(s, r, "./Vendor/Short", BIG[:1000], size=1010)
    r = s.receive()
    m, cid = chunk_msg(s, r, "./Vendor/Short", "", more=False, final=True)
    r = s.receive()
    s.check(status_of(r, cid) == ["424"], "size mismatch: 424 (got %s)" % status_of(r, cid), r)
    m = s.message(r)
    m.ack_all()
    g = m.get("./Vendor/Short")
    s.reply(m)
    r = s.receive()
    s.check(status_of(r, g) == ["404"], "nothing was written (Get 404)", r)
    # broken off
    m, cid = chunk_msg(s, r, "./Vendor/Broken", BIG[:500], size=1000)
    r = s.receive()
    m = s.message(r)
    m.ack_all()
    g = m.get("./DevInfo/DevId")
    s.reply(m)
    r = s.receive()
    al = [c for c in r.cmds if c.name == "Alert" and c.data == "1225"]
    s.check(len(al) == 1 and al[0].items and al[0].items[0].target == "./Vendor/Broken",
            "Alert 1225 names the broken object", r)
    s.check(status_of(r, g) == ["200"], "the Get that broke it off runs", r)
    s.end(r)
