#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-wstep-peer.sh BUILD_DIR - the self-test of the MS-WSTEP renewal peer
# (tests/wstep/wstep_peer.py, README beside it).  No dmclient: the requests are built with
# the openssl CLI (a new key, its PKCS#10, `openssl cms -sign` with the current certificate
# and key for the PKCS#7) and sent with curl over TLS with the current certificate; the
# answers are read by tests/wstep/soap_facts.py (standard library, no code shared with the
# peer) and the certificates checked with openssl.
#
#   1. one peer, every request correct, a mode per request: issue (the certificate chains
#      to the CA, holds the new key and the subject; RSTRC and provisioning document shape),
#      a second renewal with the new certificate, each of the 7 fault subcodes (QName,
#      HTTP status, action), a deviceenrollmentserviceerror detail, a
#      CertificateEnrollmentWSDetail, pending then QueryTokenStatus, HTTP 503, a redirect, a
#      certificate for another key, a provisioning document cut short, a dropped
#      connection, a slow answer; the peer passes (exit 0) with --expect-requests
#   2. a second peer refuses: a client certificate of another CA (TLS), a certificate of the
#      client CA that is not the device's, an expired one, a PKCS#10 for the current key,
#      a PKCS#7 signed by another key, a wrong subject, RequestType Issue, SOAP 1.1;
#      each answered with the fault the README names and recorded as a failure (exit 1)
#   3. a third peer takes over the first one's --state (the current certificate is the last
#      one it delivered, not the one for another key nor the one in a malformed answer),
#      answers by a --script, under strict_current=1 refuses the superseded certificate, and
#      keeps the current certificate (and --issued-out) when a client gives up on a slow answer;
#      the malformed answers: not base64, no certificate, a wrong SHA-1 name, another
#      ValueType, SOAP cut short
#   4. parameters: an expired certificate allowed, the renewal window (NotEligibleToRenew),
#      My/User, PrivateKeyContainer beside the certificate, no Root, WSTEP/Renew parms, no
#      wsse:Security header, lower-case faults with HTTP 200, an Issue request with a PKCS#10
#
# About 6 s of CPU (60 requests, 5 peers; 14-19 s of wall time here on 2 shared cores).  It
# uses nothing of the build: runs once, the sanitizer build directory skips it.  Skips (exit 0, SKIP line) without python3 and its cryptography module,
# openssl or curl.  SCEP_BED_KEEP=1 keeps the scratch directory (kept on failure anyway).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u
build=${1:?usage: tests/scripts/test-wstep-peer.sh BUILD_DIR}
case $(basename "$build") in
*-san)
    echo "SKIP wstep-peer: runs once, with the build directory without sanitizers"
    exit 0 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
top=$(cd "$here/../.." && pwd)
peer_py=$top/tests/wstep/wstep_peer.py
facts_py=$top/tests/wstep/soap_facts.py

for tool in python3 openssl curl; do
    command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool not found (run ./setup.sh)"; exit 0; }
done
python3 -c 'import cryptography' 2>/dev/null ||
    { echo "SKIP: python3 has no cryptography module (apt-get install python3-cryptography)"; exit 0; }
# the interpreter itself, not a wrapper script in PATH that starts it (40 runs here)
py=$(python3 -c 'import sys; print(sys.executable)')

scratch_dir wstep-peer
cd "$tmp" || exit 1
sh "$top/tests/dmserver/make-certs.sh" pki >/dev/null || { echo "FAIL: make-certs.sh"; exit 1; }
subj="/O=dmserver test/CN=omadm-device"
svc=/EnrollmentServer/DeviceEnrollmentWebService.svc
NS_S=http://www.w3.org/2003/05/soap-envelope
NS_WSSE=http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd
NS_WCF=http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher
ACT_RSTRC=http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep
VT_P7=$NS_WSSE#PKCS7
RT_RENEW=http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew

openssl x509 -in pki/client-ca.pem -outform DER -out client-ca.der
# a certificate of the client CA that is not the device's, and the PKCS#7 signer of case 2e
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out pki/stranger.key 2>/dev/null
openssl req -new -key pki/stranger.key -subj "$subj" -out stranger.csr
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >ext
openssl x509 -req -in stranger.csr -CA pki/client-ca.pem -CAkey pki/client-ca.key \
    -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile ext -out pki/stranger.pem 2>/dev/null

# start_peer NAME ARGS... : a peer in the background ($bg), its port in $port
start_peer() {
    _name=$1
    shift
    rm -f "$_name.port"
    "$py" "$peer_py" --cert pki/server.pem --key pki/server.key --client-ca pki/client-ca.pem \
        --ca-cert pki/client-ca.pem --ca-key pki/client-ca.key --port-file "$_name.port" \
        --log "$_name.log" --summary "$_name.json" --state "$_name.state" "$@" >"$_name.out" 2>&1 &
    bg=$!
    _i=0
    while [ ! -s "$_name.port" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
    port=$(cat "$_name.port" 2>/dev/null) || { echo "FAIL: $_name did not start"; cat "$_name.out"; exit 1; }
}

# stop_peer: SIGTERM, wait; $peer_rc
stop_peer() {
    kill -TERM "$bg" 2>/dev/null
    wait "$bg"
    peer_rc=$?
    bg=
}

# mkreq OUT NEWKEY SIGNCERT SIGNKEY [SUBJ [REQUESTTYPE [VALUETYPE]]]: a renewal request in OUT
# (NEWKEY is made unless it exists); the MessageID goes to OUT.mid
mkreq() {
    [ -f "$2" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null
    openssl req -new -key "$2" -subj "${5:-$subj}" -outform DER -out "$1.csr" || return 1
    openssl cms -sign -binary -nodetach -in "$1.csr" -signer "$3" -inkey "$4" -outform DER \
        -out "$1.p7" || return 1
    _mid=$(cat /proc/sys/kernel/random/uuid 2>/dev/null ||
        openssl rand -hex 16 | sed 's/\(........\)\(....\)\(....\)\(....\)/\1-\2-\3-\4-/')
    echo "urn:uuid:$_mid" >"$1.mid"
    cat >"$1" <<EOF
<s:Envelope xmlns:s="$NS_S" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:wsse="$NS_WSSE" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:ac="http://schemas.xmlsoap.org/ws/2006/12/authorization">
<s:Header>
<a:Action s:mustUnderstand="1">http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep</a:Action>
<a:MessageID>urn:uuid:$_mid</a:MessageID>
<a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>
<a:To s:mustUnderstand="1">https://127.0.0.1:$port$svc</a:To>
</s:Header>
<s:Body>
<wst:RequestSecurityToken>
<wst:TokenType>http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken</wst:TokenType>
<wst:RequestType>${6:-$RT_RENEW}</wst:RequestType>
<wsse:BinarySecurityToken ValueType="${7:-$VT_P7}" EncodingType="$NS_WSSE#base64binary">$(base64 -w0 "$1.p7")</wsse:BinarySecurityToken>
<ac:AdditionalContext>
<ac:ContextItem Name="OSEdition"><ac:Value>4</ac:Value></ac:ContextItem>
<ac:ContextItem Name="OSVersion"><ac:Value>10.0.19045.0</ac:Value></ac:ContextItem>
<ac:ContextItem Name="DeviceName"><ac:Value>wstep-test</ac:Value></ac:ContextItem>
<ac:ContextItem Name="EnrollmentType"><ac:Value>Device</ac:Value></ac:ContextItem>
<ac:ContextItem Name="DeviceType"><ac:Value>CIMClient_Windows</ac:Value></ac:ContextItem>
<ac:ContextItem Name="ApplicationVersion"><ac:Value>10.0.19045.0</ac:Value></ac:ContextItem>
<ac:ContextItem Name="DeviceID"><ac:Value>omadm-device</ac:Value></ac:ContextItem>
</ac:AdditionalContext>
</wst:RequestSecurityToken>
</s:Body>
</s:Envelope>
EOF
}

# again SRC DST: the request SRC once more as DST, with a new MessageID
again() {
    _mid=$(cat /proc/sys/kernel/random/uuid 2>/dev/null ||
        openssl rand -hex 16 | sed 's/\(........\)\(....\)\(....\)\(....\)/\1-\2-\3-\4-/')
    sed "s|<a:MessageID>.*</a:MessageID>|<a:MessageID>urn:uuid:$_mid</a:MessageID>|" "$1" >"$2"
    echo "urn:uuid:$_mid" >"$2.mid"
}

# post REQ CERT KEY [CURL ARGS...]: POST REQ over TLS with CERT/KEY (Content-Type $ct, default
# SOAP 1.2); answer in REQ.resp, its headers in REQ.hdr, HTTP status in $code (also in REQ.code), curl's exit status in $curl_rc, the answer's facts in REQ.facts
post() {
    _r=$1 _c=$2 _k=$3
    shift 3
    code=$(curl -sS --cacert pki/ca.pem --cert "$_c" --key "$_k" \
        -H "Content-Type: ${ct:-application/soap+xml; charset=utf-8}" --data-binary @"$_r" \
        -D "$_r.hdr" -o "$_r.resp" -w '%{http_code}' "$@" "https://127.0.0.1:$port$svc" 2>"$_r.err")
    curl_rc=$?
    echo "$code" >"$_r.code"
    [ -s "$_r.resp" ] || : >"$_r.resp"
    [ -n "${later:-}" ] || facts "$_r"
}

# facts REQ...: read the answers (one process; `later=1 post ...` leaves it to this)
facts() {
    _f=
    for _x in "$@"; do _f="$_f $_x.resp"; done
    # shellcheck disable=SC2086
    "$py" "$facts_py" --each $_f
}

# fact REQ KEY: the value of KEY in REQ.facts
fact() {
    while IFS= read -r _l; do
        case $_l in "$2="*) printf '%s\n' "${_l#*=}"; return ;; esac
    done <"$1.facts"
}

# expect WHAT GOT WANT
expect() {
    if [ "$2" = "$3" ]; then ok "$1: $2"; else fail "$1: expected '$3', got '$2'"; fi
}

# pub_key KEY, pub_cert CERT: the public key (PEM, one line)
pub_key() { openssl pkey -in "$1" -pubout 2>/dev/null | tr -d '\n'; }
pub_cert() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null | tr -d '\n'; }

# check_issued REQ NEWKEY: the answer of REQ is an RSTRC whose certificate chains to the
# client CA, holds NEWKEY's public key and the device's subject; the provisioning document as
# the want_* variables say (the defaults: EnrollmentType Device, a renewal)
want_store=System want_pkc=child want_root=yes want_renew=none want_security=yes
check_issued() {
    expect "$1: HTTP status" "$code" 200
    expect "$1: a:Action" "$(fact "$1" action)" "$ACT_RSTRC"
    expect "$1: a:RelatesTo is the request's MessageID" "$(fact "$1" relates_to)" "$(cat "$1.mid")"
    expect "$1: TokenType" "$(fact "$1" token_type)" \
        http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken
    expect "$1: BinarySecurityToken ValueType" "$(fact "$1" bst_valuetype)" \
        http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc
    expect "$1: EncodingType" "$(fact "$1" bst_encoding)" "$NS_WSSE#base64binary"
    expect "$1: provisioning document" "$(fact "$1" provdoc)" wellformed
    [ "$want_root" = yes ] &&
        expect "$1: Root/System characteristic named by the root's SHA-1" "$(fact "$1" root_matches)" yes
    expect "$1: one certificate under My" "$(fact "$1" my_count)" 1
    expect "$1: My/$want_store" "$(fact "$1" my_store)" "$want_store"
    expect "$1: My characteristic named by the certificate's SHA-1" "$(fact "$1" my_matches)" yes
    expect "$1: PrivateKeyContainer ($want_pkc)" "$(fact "$1" pkc)" "$want_pkc"
    expect "$1: WSTEP/Renew parms" "$(fact "$1" wstep_renew)" "$want_renew"
    expect "$1: a wsse:Security header" "$(fact "$1" security)" "$want_security"
    [ -n "$(fact "$1" request_id)" ] && ok "$1: RequestID $(fact "$1" request_id)" || fail "$1: no RequestID"
    if [ -s "$1.d/my.der" ]; then
        openssl x509 -inform DER -in "$1.d/my.der" -out "$1.cert.pem"
        if openssl verify -CAfile pki/client-ca.pem -purpose sslclient -no_check_time "$1.cert.pem" >/dev/null 2>&1; then
            ok "$1: the certificate chains to the client CA (clientAuth)"
        else
            fail "$1: the certificate does not verify against the client CA"
        fi
        expect "$1: the certificate's key is the new key" "$(pub_cert "$1.cert.pem")" "$(pub_key "$2")"
        expect "$1: subject" "$(openssl x509 -in "$1.cert.pem" -noout -subject -nameopt compat)" \
            "subject=$subj"
        if [ "$want_root" = yes ]; then
            cmp -s "$1.d/root.der" client-ca.der && ok "$1: Root/System holds the client CA" ||
                fail "$1: Root/System does not hold the client CA"
        else
            expect "$1: no Root/System" "$(fact "$1" root_hash)" ""
        fi
    else
        fail "$1: no certificate in the provisioning document"
    fi
}

# check_fault REQ SUBCODE_QNAME [HTTP [ACTION [CODE]]]
check_fault() {
    expect "$1: HTTP status" "$code" "${3:-500}"
    expect "$1: s:Code" "$(fact "$1" fault_code)" "{$NS_S}${5:-Receiver}"
    expect "$1: s:Subcode" "$(fact "$1" fault_subcode)" "$2"
    expect "$1: a:Action" "$(fact "$1" action)" "${4:-$ACT_RSTRC}"
    [ -n "$(fact "$1" fault_reason)" ] && ok "$1: s:Reason text '$(fact "$1" fault_reason)'" ||
        fail "$1: no s:Reason text"
    expect "$1: a:RelatesTo" "$(fact "$1" relates_to)" "$(cat "$1.mid")"
}

t0=$(now)
# ---------------------------------------------------------------------------------------
# 1. every request correct, the answers by mode
faults="MessageFormat Authentication Authorization CertificateRequest EnrollmentServer InternalServiceFault InvalidSecurity"
modes=issue,issue
for f in $faults; do modes=$modes,fault:$f; done
modes=$modes,detail:NotEligibleToRenew,wstep-fault,pending,issue,http:503,redirect,wrong-key,malformed:xml,drop,slow:5
start_peer good --current-cert pki/client.pem --issued-out issued.pem --mode "$modes" --expect-requests 19

mkreq r1 k1 pki/client.pem pki/client.key && post r1 pki/client.pem pki/client.key
check_issued r1 k1
expect "r1: --issued-out is the certificate of the answer" "$(openssl x509 -in issued.pem -noout -fingerprint -sha1)" \
    "$(openssl x509 -in r1.cert.pem -noout -fingerprint -sha1)"

# the renewed certificate is the current one now: renew again with it
mkreq r2 k2 r1.cert.pem k1 && post r2 r1.cert.pem k1
check_issued r2 k2

mkreq r3 k3 r2.cert.pem k2
n=3
for f in $faults; do
    [ $n -gt 3 ] && again r3 r$n
    later=1 post r$n r2.cert.pem k2
    n=$((n + 1))
done
again r3 r10 && later=1 post r10 r2.cert.pem k2
again r3 r11 && later=1 post r11 r2.cert.pem k2
facts r3 r4 r5 r6 r7 r8 r9 r10 r11
n=3
for f in $faults; do
    code=$(cat r$n.code)
    case $f in
    InternalServiceFault) check_fault r$n "{$NS_WCF}$f" 500 "$NS_WCF/fault" ;;
    InvalidSecurity) check_fault r$n "{$NS_WSSE}$f" ;;
    *) check_fault r$n "{$NS_S}$f" ;;
    esac
    n=$((n + 1))
done
code=$(cat r10.code)
check_fault r10 "{$NS_S}Authorization"
expect "r10: deviceenrollmentserviceerror errortype" "$(fact r10 detail_errortype)" noteligibletorenew
code=$(cat r11.code)
expect "r11: HTTP status" "$code" 500
expect "r11: CertificateEnrollmentWSDetail ErrorCode" "$(fact r11 wstep_errorcode)" -2146877422
expect "r11: InvalidRequest" "$(fact r11 wstep_invalidrequest)" true

mkreq r12 k12 r2.cert.pem k2 && post r12 r2.cert.pem k2
expect "r12 pending: HTTP status" "$code" 200
expect "r12 pending: no BinarySecurityToken" "$(fact r12 bst)" missing
expect "r12 pending: the reference is the service URL" "$(fact r12 reference_uri)" "https://127.0.0.1:$port$svc"
rid=$(fact r12 request_id)
[ -n "$rid" ] && ok "r12 pending: RequestID $rid" || fail "r12 pending: no RequestID"
# [MS-WSTEP] 4.1.3.1: QueryTokenStatus with the RequestID gets the certificate
sed -e 's|<wst:RequestType>.*</wst:RequestType>|<wst:RequestType>http://schemas.microsoft.com/windows/pki/2009/01/enrollment/QueryTokenStatus</wst:RequestType>|' \
    -e "s|<wsse:BinarySecurityToken .*</wsse:BinarySecurityToken>|<RequestID xmlns=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment\">$rid</RequestID>|" \
    -e '/<ac:/d' -e '/<\/ac:/d' r12 >r13
cp r12.mid r13.mid
post r13 r2.cert.pem k2
check_issued r13 k12

mkreq r14 k14 r13.cert.pem k12 && post r14 r13.cert.pem k12
expect "r14 http:503: HTTP status" "$code" 503
again r14 r15 && post r15 r13.cert.pem k12
expect "r15 redirect: HTTP status (curl does not follow)" "$code" 307
expect "r15 redirect: Location" "$(sed -n 's/^[Ll]ocation: //p' r15.hdr | tr -d '\r')" \
    "https://127.0.0.1:$port/redirected$svc"
mkreq r16 k16 r13.cert.pem k12 && post r16 r13.cert.pem k12
expect "r16 wrong-key: HTTP status" "$code" 200
openssl x509 -inform DER -in r16.d/my.der -out r16.cert.pem 2>/dev/null
if [ "$(pub_cert r16.cert.pem)" != "$(pub_key k16)" ] && [ -s r16.cert.pem ]; then
    ok "r16 wrong-key: the certificate holds another key"
else
    fail "r16 wrong-key: the certificate should hold another key than k16"
fi
again r14 r17 && post r17 r13.cert.pem k12
expect "r17 malformed:xml: provisioning document" "$(fact r17 provdoc)" not-wellformed
again r14 r18 && post r18 r13.cert.pem k12
expect "r18 drop: curl sees an empty reply (52)" "$curl_rc" 52
again r14 r19 && post r19 r13.cert.pem k12 --max-time 0.5
expect "r19 slow:5: curl gives up after 0.5 s (28)" "$curl_rc" 28
stop_peer
expect "good peer: exit status (every check passed, 19 requests)" "$peer_rc" 0
grep -q '"count": 19' good.json && ok "good peer: the summary counts 19 requests" ||
    fail "good peer: the summary does not count 19 requests"
[ "$peer_rc" -ne 0 ] && cat good.out

echo "time: $(since "$t0") s"
# ---------------------------------------------------------------------------------------
# 2. refusals: every one a failure of the client, answered with the README's fault
start_peer bad --current-cert pki/client.pem --validity 0 --param backdate=5
# a: a certificate of another CA: the TLS handshake fails
mkreq a ka pki/other-client.pem pki/other-client.key && post a pki/other-client.pem pki/other-client.key
[ "$curl_rc" -ne 0 ] && [ ! -s a.resp ] && ok "a: another CA's certificate: the handshake fails (curl $curl_rc)" ||
    fail "a: another CA's certificate was accepted (HTTP $code)"
# b: the client CA's certificate, but not the device's
mkreq b kb pki/stranger.pem pki/stranger.key && post b pki/stranger.pem pki/stranger.key
check_fault b "{$NS_S}Authentication"
# c: a PKCS#10 for the current key
cp pki/client.key kc
mkreq c kc pki/client.pem pki/client.key && post c pki/client.pem pki/client.key
check_fault c "{$NS_S}CertificateRequest"
# d: the PKCS#7 signed by another key (TLS with the current certificate)
mkreq d kd pki/stranger.pem pki/stranger.key && post d pki/client.pem pki/client.key
check_fault d "{$NS_S}Authentication"
# e: another subject
mkreq e ke pki/client.pem pki/client.key "/O=dmserver test/CN=somebody-else" && post e pki/client.pem pki/client.key
check_fault e "{$NS_S}CertificateRequest"
# f: RequestType Issue where a renewal is expected
mkreq f kf pki/client.pem pki/client.key "$subj" http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue &&
    post f pki/client.pem pki/client.key
check_fault f "{$NS_S}MessageFormat"
# g: SOAP 1.1 (text/xml)
mkreq g kg pki/client.pem pki/client.key && ct='text/xml; charset=utf-8' post g pki/client.pem pki/client.key
check_fault g "{$NS_S}MessageFormat"
# h: a good renewal (a certificate that expires as it is issued) ...; i: ... renewing with it
mkreq h kh pki/client.pem pki/client.key && post h pki/client.pem pki/client.key
check_issued h kh
nb=$(date -d "$(openssl x509 -in h.cert.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in h.cert.pem -noout -enddate | cut -d= -f2)" +%s)
expect "h: validity = --validity 0 + backdate 5" "$((na - nb))" 5
mkreq i ki h.cert.pem kh && post i h.cert.pem kh
check_fault i "{$NS_S}Authentication"
stop_peer
expect "bad peer: exit status (the client failed checks)" "$peer_rc" 1
for want in "TLS handshake with a client certificate of the client CA" \
    "is the current one" "is for a new key" "is signed with the TLS client certificate" \
    "the PKCS#10 subject is the current certificate's" "wst:RequestType is one of" \
    "Content-Type is SOAP 1.2" "the client certificate is within its validity"; do
    grep -qF "FAIL: " bad.out && grep -F "FAIL: " bad.out | grep -qF "$want" &&
        ok "bad peer recorded: $want" || fail "bad peer did not record: $want"
done
grep -F "FAIL: " bad.out | grep -q "req 7:" && fail "bad peer: the good renewal (req 7) failed a check" ||
    ok "bad peer: the good renewal among them passed every check"

echo "time: $(since "$t0") s"
# ---------------------------------------------------------------------------------------
# 3. --state carries the current certificate over to the next peer; --script chooses the
#    answers; strict_current=1 refuses a superseded certificate
printf '%s\n' 'def choose(n, request):' \
    '    return {1: "fault:EnrollmentServer", 4: "slow:0.6", 6: "malformed:base64", 7: "malformed:nocert",' \
    '            8: "malformed:hash", 9: "malformed:valuetype", 10: "malformed:soap"}.get(n, "issue")' >choose.py
cp good.state next.state
start_peer next --current-cert pki/client.pem --script "$tmp/choose.py" --param strict_current=1 \
    --issued-out next.pem
mkreq s1 ks1 r13.cert.pem k12 && post s1 r13.cert.pem k12
check_fault s1 "{$NS_S}EnrollmentServer"
mkreq s2 ks2 r13.cert.pem k12 && post s2 r13.cert.pem k12
check_issued s2 ks2
mkreq s3 ks3 pki/client.pem pki/client.key && post s3 pki/client.pem pki/client.key
check_fault s3 "{$NS_S}Authentication"
# s4: the client gives up before the slow answer; its certificate is not delivered
mkreq s4 ks4 s2.cert.pem ks2 && post s4 s2.cert.pem ks2 --max-time 0.3
expect "s4 slow:0.6: curl gives up (28)" "$curl_rc" 28
sleep 0.4       # the peer has tried to answer
expect "s4: --issued-out is still the certificate of s2" "$(openssl x509 -in next.pem -noout -fingerprint -sha1)" \
    "$(openssl x509 -in s2.cert.pem -noout -fingerprint -sha1)"
# s5: so s2's certificate is still the current one
again s4 s5 && post s5 s2.cert.pem ks2
check_issued s5 ks4
n=6
mkreq s6 ks6 s5.cert.pem ks4
for m in base64 nocert hash valuetype soap; do
    [ $n -gt 6 ] && again s6 s$n
    later=1 post s$n s5.cert.pem ks4
    expect "s$n malformed:$m: HTTP status" "$code" 200
    n=$((n + 1))
done
facts s6 s7 s8 s9 s10
expect "s6 malformed:base64" "$(fact s6 provdoc)" not-base64
expect "s7 malformed:nocert: no certificate under My" "$(fact s7 my_count)" 0
expect "s8 malformed:hash: the characteristic is not the SHA-1" "$(fact s8 my_matches)" no
expect "s9 malformed:valuetype" "$(fact s9 bst_valuetype)" \
    http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3
expect "s10 malformed:soap" "$(fact s10 envelope)" not-wellformed
stop_peer
grep -q '"undelivered": true' next.json && ok "next peer: the certificate of s4 is recorded undelivered" ||
    fail "next peer: the certificate of s4 is not recorded undelivered"
expect "next peer: exit status (one superseded certificate)" "$peer_rc" 1
grep -F "FAIL: " next.out | grep -q "req 3: .*superseded" && ok "next peer: req 3 refused as superseded" ||
    fail "next peer: req 3 not refused as superseded"
expect "next peer: failed checks" "$(grep -c "^FAIL: req" next.out)" 1

echo "time: $(since "$t0") s"
# ---------------------------------------------------------------------------------------
# 4. parameters: an expired certificate allowed, the renewal window, My/User with the
#    PrivateKeyContainer beside the certificate, no Root, WSTEP/Renew parms, no wsse:Security,
#    faults in lower case with HTTP 200, RequestType Issue with a PKCS#10 accepted
start_peer params --current-cert h.cert.pem --param allow_expired=1 --param renew_window=3600 \
    --param store=User --param pkc=sibling --param root=0 --param wstep_renew=true,42,7 \
    --param security_header=0 --param fault_case=lower --param fault_http=200 \
    --param request_type=any --param "subject=CN=omadm-device,O=dmserver test" \
    --mode issue,issue,fault:InvalidSecurity,issue
want_store=User want_pkc=sibling want_root=no want_renew=true,42,7 want_security=no
mkreq p1 kp1 h.cert.pem kh && post p1 h.cert.pem kh
check_issued p1 kp1
mkreq p2 kp2 p1.cert.pem kp1 && post p2 p1.cert.pem kp1
check_fault p2 "{$NS_S}authorization" 200 "$ACT_RSTRC" receiver
expect "p2: the certificate is 1 day from expiry, the window 1 h: errortype" "$(fact p2 detail_errortype)" \
    noteligibletorenew
again p2 p3 && post p3 p1.cert.pem kp1
check_fault p3 "{$NS_WSSE}invalidsecurity" 200 "$ACT_RSTRC" receiver
expect "p3: s:Text xml:lang" "$(fact p3 fault_reason_lang)" en-us
openssl req -new -key kp2 -subj "$subj" -outform DER -out p4.csr
sed -e 's|<wst:RequestType>.*</wst:RequestType>|<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>|' \
    -e "s|<wsse:BinarySecurityToken .*</wsse:BinarySecurityToken>|<wsse:BinarySecurityToken ValueType=\"http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10\" EncodingType=\"$NS_WSSE#base64binary\">$(base64 -w0 p4.csr)</wsse:BinarySecurityToken>|" \
    p2 >p4
cp p2.mid p4.mid
post p4 p1.cert.pem kp1
check_issued p4 kp2
stop_peer
want_store=System want_pkc=child want_root=yes want_renew=none want_security=yes
expect "params peer: exit status (renewals before the window)" "$peer_rc" 1
expect "params peer: failed checks (req 2 and 3, both before the window)" \
    "$(grep -c "^FAIL: req [23]: the renewal comes within renew_window" params.out)/$(grep -c "^FAIL: req" params.out)" 2/2
grep -q "^NOTE: req 1: the client certificate is outside its validity" params.out &&
    ok "params peer: the expired certificate noted" || fail "params peer: the expired certificate not noted"

echo "time: $(since "$t0") s"
trap - EXIT
cd / && scratch_done "$tmp" "$failures"
finish test-wstep-peer
