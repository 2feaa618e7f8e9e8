# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/scripts/lib/syncml.sh - server messages for `dmclient process` (POSIX sh;
# sourced, not run).  A script finds it beside itself:
#   here=$(cd "$(dirname "$0")" && pwd)
#   # shellcheck source=SCRIPTDIR/lib/syncml.sh
#   . "$here/lib/syncml.sh"
#
# A message is written into a file a piece at a time, a command a line:
#   msg_begin FILE [SOURCE [TARGET]]  the SyncHdr of a new message: a new session
#                                     (SessionID $sess, one more for each message), MsgID 1,
#                                     from the server SOURCE (https://dm.example.com/omadm)
#                                     to the device TARGET (omadm-device)
#   m_cmd VERB URI [FORMAT [DATA]]    a command (Add, Replace, Get, Delete, Exec ...) with one
#                                     Item: Target URI, Meta Format FORMAT, Data DATA; its
#                                     CmdID (1, 2 ... in each message) in $cid
#   m_atomic ... m_atomic_end         an Atomic around the commands in between
#   msg_end                           Final and the end of the message
#   m_scep_enroll BASE URLS THUMB CHALLENGE RETRYCOUNT KEYLENGTH SUBJECT [SANS [EKU [KEYPROT]]]
#                                     an SCEP enrollment as servers order one, in an Atomic:
#                                     the Add of the node BASE (.../SCEP/{UniqueID}), the Adds
#                                     of its Install parameters (ServerURL URLS, CAThumbprint
#                                     THUMB, RetryDelay 1, KeyUsage 160, HashAlgorithm SHA-2,
#                                     SubjectAlternativeNames, EKUMapping and KeyProtection
#                                     when given ...),
#                                     the Exec of BASE/Install/Enroll
# Certificates:
#   cert_b64 CERT.pem                 the DER in base64 on one line (the Data of Format b64)
#   cert_thumbprint CERT.pem          its SHA-1 thumbprint: upper-case hex, no colons
# Replies (the file dmclient process wrote):
#   reply_codes REPLY                 "Cmd code," of each Status whose Data follows its Cmd (the
#                                     SyncHdr's, the commands'), in order: "SyncHdr 200,Add 200,"
#   statuses REPLY                    "Cmd CmdRef Data" of each Status, a line each
# For example:
#   msg_begin "$tmp/msg.xml"
#   m_cmd Add "./Vendor/MSFT/CertificateStore/Root/System/$thumb/EncodedCertificate" b64 "$b64"
#   m_cmd Get ./DevInfo/DevId
#   msg_end

sess=0
msg_begin() {
    _mf=$1 _cid=0 sess=$((sess + 1))
    printf '%s%s%s%s\n' '<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>' \
        "<VerProto>DM/1.2</VerProto><SessionID>$sess</SessionID><MsgID>1</MsgID>" \
        "<Target><LocURI>${3:-omadm-device}</LocURI></Target>" \
        "<Source><LocURI>${2:-https://dm.example.com/omadm}</LocURI></Source></SyncHdr><SyncBody>" >"$_mf"
}
msg_end() { echo '<Final/></SyncBody></SyncML>' >>"$_mf"; }

next_cid() { _cid=$((_cid + 1)); cid=$_cid; }
m_item() { # m_item URI [FORMAT [DATA]]: an Item on stdout
    printf '<Item><Target><LocURI>%s</LocURI></Target>' "$1"
    [ -n "${2:-}" ] && printf '<Meta><Format xmlns="syncml:metinf">%s</Format></Meta>' "$2"
    [ $# -ge 3 ] && printf '<Data>%s</Data>' "$3"
    printf '</Item>'
}
m_cmd() {
    next_cid
    _verb=$1
    shift
    { printf '<%s><CmdID>%s</CmdID>' "$_verb" "$cid"; m_item "$@"; printf '</%s>\n' "$_verb"; } >>"$_mf"
}
m_atomic() { next_cid; printf '<Atomic><CmdID>%s</CmdID>\n' "$cid" >>"$_mf"; }
m_atomic_end() { echo '</Atomic>' >>"$_mf"; }

m_scep_enroll() {
    m_atomic
    m_cmd Add "$1" node
    m_cmd Add "$1/Install/RetryCount" int "$5"
    m_cmd Add "$1/Install/RetryDelay" int 1
    m_cmd Add "$1/Install/KeyUsage" int 160
    m_cmd Add "$1/Install/KeyLength" int "$6"
    m_cmd Add "$1/Install/HashAlgorithm" chr SHA-2
    m_cmd Add "$1/Install/SubjectName" chr "$7"
    if [ -n "${8:-}" ]; then m_cmd Add "$1/Install/SubjectAlternativeNames" chr "$8"; fi
    if [ -n "${9:-}" ]; then m_cmd Add "$1/Install/EKUMapping" chr "$9"; fi
    if [ -n "${10:-}" ]; then m_cmd Add "$1/Install/KeyProtection" int "${10}"; fi
    m_cmd Add "$1/Install/ServerURL" chr "$2"
    m_cmd Add "$1/Install/Challenge" chr "$4"
    m_cmd Add "$1/Install/CAThumbprint" chr "$3"
    m_cmd Exec "$1/Install/Enroll"
    m_atomic_end
}

cert_b64() { openssl x509 -in "$1" -outform DER | base64 | tr -d '\n'; }
cert_thumbprint() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }

reply_codes() {
    tr -d ' \t\r\n' <"$1" |
        grep -o '<Cmd>[A-Za-z]*</Cmd><Data>[0-9]*</Data>' |
        sed 's|<Cmd>\(.*\)</Cmd><Data>\(.*\)</Data>|\1 \2|' | tr '\n' ','
}
statuses() {
    awk '{ gsub(/</, "\n<"); print }' "$1" | awk '
        /^<Status>/ { in_st = 1; cmd = ref = data = "" }
        in_st && /^<Cmd>/ { sub(/^<Cmd>/, ""); cmd = $0 }
        in_st && /^<CmdRef>/ { sub(/^<CmdRef>/, ""); ref = $0 }
        in_st && /^<Data>/ { sub(/^<Data>/, ""); data = $0 }
        /^<\/Status>/ { if (in_st) print cmd, ref, data; in_st = 0 }'
}
