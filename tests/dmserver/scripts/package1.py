# SPDX-License-Identifier: Apache-2.0
"""package1: the client's package 1, one Get exchange, and the end of the session.

Checks (docs/session.md "Package 1", "The exchange"; spec §2, §4):
- msg 1: SyncHdr VerDTD 1.2, VerProto DM/1.2, SessionID a decimal 1..65535 (param session_id:
  exactly), MsgID 1, Target = the server URL, Source = the DevId (param dev_id), no Cred, no
  LocName, Meta MaxMsgSize 4194304 / MaxObjSize 1048576 (params max_msg_size, max_obj_size);
  Alert 1201 (CmdID 1; param alert=1200 for dmclient session --notified), Replace (CmdID 2) of ./DevInfo/DevId, Man, Mod, DmV, Lang in this order,
  each Format chr with the configured value (params man, mod, dmv, lang); no generic alert;
  Final; HTTP Content-Type and Accept of the DM XML (or WBXML) type.
- the server acks the header, Alert and Replace and Gets ./DevInfo/DevId and ./DevDetail/SwV.
- msg 2: MsgID 2, same SessionID, Target = the server's Source (param server_id, default
  dmserver); Status SyncHdr 200 (CmdID 1, MsgRef 1, CmdRef 0), Status 200 for each Get, each
  followed by its Results (CmdRef, MsgRef, Item Source LocURI = the Get's target, Meta Format
  chr, Data = the DevId / param swv, default "unknown"); no Cred; Final.
- the server ends with a message of Statuses only (no command): the client sends nothing more
  (checked for 2 s).
"""

from dmserver import R


def run(s):
    msg = s.receive()
    s.expect_package1(msg, session_id=s.param("session_id"), alert=s.param("alert", "1201"))
    m = s.message(msg)
    m.ack_all()
    g1 = m.get("./DevInfo/DevId")
    g2 = m.get("./DevDetail/SwV")
    s.reply(m)

    r = s.receive()
    s.expect(r, m, results={g1: [R("./DevInfo/DevId", s.dev_id)],
                            g2: [R("./DevDetail/SwV", s.param("swv", "unknown"))]})
    s.end(r)

