# SPDX-License-Identifier: Apache-2.0
"""maxmsg: our replies split by the server's MaxMsgSize (docs/session.md "Replies larger than the
server's MaxMsgSize"; spec §4 multi-message packages).

- msg 1: package 1; the server answers with SyncHdr Meta MaxMsgSize 1200 (param limit) and 14 Gets of DevInfo
  leaves (their Statuses and Results do not fit in 1,200 bytes).
- every client message is at most 1,200 bytes (as sent: XML or WBXML); all but the last have no
  Final; the server answers each of those with its SyncHdr Status and Alert 1222, nothing else.
- the client's first message after each 1222 starts with the SyncHdr Status, then the Status for
  the Alert (200); CmdIDs are unique in every message.
- over all parts: exactly one Status (200) per Get and exactly one Results with the right value;
  at least three parts; then the server ends the session.
"""

LEAVES = ("DevId", "Man", "Mod", "DmV", "Lang")


def run(s):
    LIMIT = int(s.param("limit", "1200"))   # WBXML is denser: the test gives it less
    msg = s.receive()
    s.expect_package1(msg)
    m = s.message(msg, hdr_meta=[("MaxMsgSize", str(LIMIT))])
    m.ack_all()
    gets = {}
    for i in range(14):
        leaf = LEAVES[i % len(LEAVES)]
        gets[m.get("./DevInfo/" + leaf)] = leaf
    s.reply(m)
    statuses = {g: [] for g in gets}
    results = {g: [] for g in gets}
    parts = 0
    alert_id = None
    while True:
        r = s.receive()
        parts += 1
        s.check(len(r.raw) <= LIMIT, "part %d is %d bytes, at most %d" % (parts, len(r.raw), LIMIT), r)
        ids = [c.cmd_id for c in r.cmds]
        s.check(len(ids) == len(set(ids)), "CmdIDs unique in part %d: %s" % (parts, ids), r)
        s.check(r.cmds and r.cmds[0].name == "Status" and r.cmds[0].cmd_ref == "0",
                "part %d starts with the SyncHdr Status" % parts, r)
        if alert_id is not None:
            st = [c for c in r.cmds if c.name == "Status" and c.cmd_ref == alert_id]
            s.check(len(st) == 1 and st[0].data == "200" and r.cmds.index(st[0]) == 1,
                    "part %d: Status 200 for our Alert 1222 right after the SyncHdr Status" % parts,
                    r)
        for c in r.cmds:
            if c.cmd_ref in statuses and c.msg_ref == m.msg_id:
                (statuses if c.name == "Status" else results)[c.cmd_ref].append(c)
        if r.final:
            break
        if not s.check(parts < 20, "fewer than 20 parts", r):
            break
        m2 = s.message(r)
        m2.hdr_status(200)
        alert_id = m2.alert("1222")
        s.reply(m2)
    s.check(parts >= 3, "the reply came in %d parts (at least 3)" % parts)
    for g, leaf in gets.items():
        st, rs = statuses[g], results[g]
        s.check(len(st) == 1 and st[0].data == "200", "Get %s: one Status 200 (got %s)"
                % (g, [c.data for c in st]))
        want = {"DevId": s.dev_id}.get(leaf)
        ok = len(rs) == 1 and len(rs[0].items) == 1 and \
            rs[0].items[0].source == "./DevInfo/" + leaf and \
            (want is None or rs[0].items[0].data == want)
        s.check(ok, "Get %s: one Results for ./DevInfo/%s" % (g, leaf))
    s.end(r)
