#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-session.sh BUILD_DIR
#
# dmclient session (docs/cli.md, docs/session.md) against a small scripted
# DM server (Python, written to the scratch directory; HTTPS with a
# self-signed certificate made here, on 127.0.0.1 only).  The server answers
# package 1 with Status 200 for the SyncHdr and every command plus a Get of
# ./DevInfo/Mod, and the next message with only the SyncHdr Status (or an
# empty body), so a session is two POSTs.  Each case has its own state
# directory and server:
#    1 HTTPS with --cacert: exit 0, nothing printed; the request headers;
#      the second POST carries the Results of ./DevInfo/Mod
#    2 untrusted server certificate (no --cacert; a wrong --cacert): exit 1,
#      one line "cannot reach", nothing reached the server
#    3 HTTP 503 with Retry-After: 1, then success: exit 0 after >= 1 s
#    4 HTTP 503 four times: exit 1 after 4 POSTs; HTTP 404: exit 1 at once
#    5 --encoding wbxml: WBXML both ways (needs BUILD_DIR/tests/tools/syncmlconv)
#    6 basic auth with -vv and a secret file: the secret and its base64 are
#      nowhere in the output, Cred Data is shown as ***
#    7 HMAC both ways: the server checks our x-syncml-hmac; a wrong mac from
#      the server: exit 1 "does not verify", nothing processed
#    8 an empty HTTP body ends the session: exit 0, -v summary on stdout
#    9 --max-messages against a server that never stops; a response above
#      max_msg_size
#   10 settings from dmclient.conf (relative paths) and a TLS client
#      certificate file the server requires (without it: exit 1)
#  10b the TLS client certificate from the store (--client-cert, in the colon
#      form): a certificate a server put into My/System and its key where the
#      store keeps keys (as an enrollment leaves them); without the key, or
#      for a certificate that is not there: exit 1, nothing sent
#   11 usage: no server, bad values (exit 2), --help
#   12 credentials (--auth, --server-auth) with an http:// server: refused,
#      exit 2, one line naming why, nothing sent; allowed with
#      --allow-insecure-http or allow_insecure_http = yes
#   13 notify FILE after the options reads FILE, not stdin (a notification
#      for another server ID is refused naming that ID; a good one reaches
#      the network), and - or no FILE reads stdin
# dmclient must write nothing on stderr where it succeeds without -v, and
# exactly one line where it fails (a sanitizer report fails the test).
# Every dmclient runs under timeout(1); the servers are killed at exit.
#
# Needs: POSIX sh, timeout (coreutils), python3, openssl(1); without python3
# or openssl the test is skipped (exit 0 with a SKIP line).
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-cli-session.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
dmclient=$build/bin/dmclient
syncmlconv=$build/tests/tools/syncmlconv
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
command -v timeout >/dev/null 2>&1 || { echo "FAIL: timeout(1) not found"; exit 1; }
for tool in python3 openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not found"; exit 0; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-session.XXXXXX") || exit 1
servers=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    for p in $servers; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# ---- certificates ----
mkcert() { # NAME CN [SAN]
    if [ -n "${3:-}" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -keyout "$tmp/$1.key" -out "$tmp/$1.crt" -subj "/CN=$2" -addext "subjectAltName=$3"
    else
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -keyout "$tmp/$1.key" -out "$tmp/$1.crt" -subj "/CN=$2"
    fi >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log"; echo "FAIL: openssl req"; exit 1; }
}
mkcert srv localhost "IP:127.0.0.1,DNS:localhost"
mkcert other other "IP:127.0.0.1"
mkcert cli device-1

# ---- the server ----
cat >"$tmp/server.py" <<'EOF'
"""Scripted OMA DM server for test-cli-session.sh (one client at a time)."""
import argparse, base64, hashlib, http.server, json, os, re, ssl, subprocess
import xml.etree.ElementTree as ET

ap = argparse.ArgumentParser()
ap.add_argument('--dir', required=True)            # port file and requests.jsonl
ap.add_argument('--cert')
ap.add_argument('--key')
ap.add_argument('--client-ca')                     # require a client certificate
ap.add_argument('--fail', action='append', default=[])  # STATUS[:RETRY_AFTER], one per request
ap.add_argument('--end', default='final', choices=['final', 'empty'])
ap.add_argument('--endless', action='store_true')  # a Get in every message
ap.add_argument('--pad', type=int, default=0)      # comment of N bytes in package 2
ap.add_argument('--conv')                          # syncmlconv, for WBXML
ap.add_argument('--hmac-user')                     # sign our messages
ap.add_argument('--hmac-secret')
ap.add_argument('--bad-hmac', action='store_true')
ap.add_argument('--client-user')                   # check the client's x-syncml-hmac
ap.add_argument('--client-secret')
a = ap.parse_args()
fails = list(a.fail)
state = {'n': 0, 'nonce': b''}


def md5b64(b):
    return base64.b64encode(hashlib.md5(b).digest())


def mac(user, secret, nonce, body):
    inner = md5b64(('%s:%s' % (user, secret)).encode())
    return md5b64(inner + b':' + nonce + b':' + md5b64(body)).decode()


def conv(direction, data):
    return subprocess.run([a.conv, direction, '-', '-'], input=data, capture_output=True,
                          check=True).stdout


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, status, body=b'', ctype='application/vnd.syncml.dm+xml', extra=()):
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        if body:
            self.send_header('Content-Type', ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        wbxml = body[:1] in (b'\x01', b'\x02', b'\x03')
        xml = conv('to-xml', body) if wbxml and a.conv else body
        rec = {'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()},
               'wbxml': wbxml, 'xml': xml.decode('utf-8', 'replace')}
        peer = self.connection.getpeercert() if hasattr(self.connection, 'getpeercert') else None
        rec['peer'] = dict(x[0] for x in peer['subject'])['commonName'] if peer else None
        hm = self.headers.get('x-syncml-hmac')
        if hm and a.client_secret:
            m = re.search(r'mac=([^,\s]+)', hm)
            rec['client_hmac_ok'] = bool(m) and m.group(1) == mac(a.client_user, a.client_secret,
                                                                   b'', body)
        with open(os.path.join(a.dir, 'requests.jsonl'), 'a') as f:
            f.write(json.dumps(rec) + '\n')
        if fails:
            st = fails.pop(0).split(':', 1)
            self.reply(int(st[0]), b'busy\n', 'text/plain',
                       [('Retry-After', st[1])] if len(st) > 1 else [])
            return
        root = ET.fromstring(xml)
        for e in root.iter():
            e.tag = e.tag.split('}', 1)[-1]
        hdr = root.find('SyncHdr')
        sid, msgid = hdr.findtext('SessionID'), hdr.findtext('MsgID')
        dev, target = hdr.findtext('Source/LocURI'), hdr.findtext('Target/LocURI')
        for st in root.find('SyncBody').findall('Status'):
            if st.findtext('CmdRef') == '0' and st.findtext('Chal/Meta/NextNonce'):
                state['nonce'] = base64.b64decode(st.findtext('Chal/Meta/NextNonce'))
        state['n'] += 1
        n = state['n']
        if n >= 2 and a.end == 'empty' and not a.endless:
            self.reply(200)
            return
        out = ['<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
               '<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>'
               '<Target><LocURI>%s</LocURI></Target><Source><LocURI>%s</LocURI></Source>'
               '</SyncHdr><SyncBody>' % (sid, n, dev, target),
               '<Status><CmdID>1</CmdID><MsgRef>%s</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>'
               '<TargetRef>%s</TargetRef><SourceRef>%s</SourceRef><Data>200</Data></Status>'
               % (msgid, target, dev)]
        cid = 2
        for c in root.find('SyncBody'):
            if c.tag in ('Status', 'Results', 'Final'):
                continue
            out.append('<Status><CmdID>%d</CmdID><MsgRef>%s</MsgRef><CmdRef>%s</CmdRef>'
                       '<Cmd>%s</Cmd><Data>200</Data></Status>'
                       % (cid, msgid, c.findtext('CmdID'), c.tag))
            cid += 1
        if n == 1 or a.endless:
            out.append('<Get><CmdID>%d</CmdID><Item><Target><LocURI>./DevInfo/Mod</LocURI>'
                       '</Target></Item></Get>' % cid)
        if a.pad and n == 1:
            out.append('<!-- %s -->' % ('x' * a.pad))
        out.append('<Final/></SyncBody></SyncML>')
        resp = ''.join(out).encode()
        ctype = 'application/vnd.syncml.dm+xml'
        if wbxml:
            resp, ctype = conv('to-wbxml', resp), 'application/vnd.syncml.dm+wbxml'
        extra = []
        if a.hmac_secret:
            m = mac(a.hmac_user, a.hmac_secret, state['nonce'], resp)
            if a.bad_hmac:
                m = ('B' if m[0] == 'A' else 'A') + m[1:]
            extra.append(('x-syncml-hmac', 'algorithm=MD5, username="%s", mac=%s'
                          % (a.hmac_user, m)))
        self.reply(200, resp, ctype, extra)


srv = http.server.HTTPServer(('127.0.0.1', 0), H)
if a.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.client_ca)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(os.path.join(a.dir, 'port.tmp'), 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(a.dir, 'port.tmp'), os.path.join(a.dir, 'port'))
srv.serve_forever()
EOF

# serve NAME ARGS...: a fresh HTTPS server (certificate srv.crt) and state
# directory for case NAME; sets $url, $sd (server dir), $state
serve() {
    name=$1
    shift
    sd=$tmp/$name
    state=$tmp/$name/state
    mkdir -p "$sd"
    timeout -s KILL 300 python3 "$tmp/server.py" --dir "$sd" --cert "$tmp/srv.crt" \
        --key "$tmp/srv.key" "$@" >"$sd/server.log" 2>&1 &
    servers="$servers $!"
    i=0
    while [ ! -f "$sd/port" ] && [ "$i" -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ ! -f "$sd/port" ]; then
        cat "$sd/server.log"
        echo "FAIL: the test server for $name did not start"
        exit 1
    fi
    url="https://127.0.0.1:$(cat "$sd/port")/dm"
}

# requests: how many POSTs the current server got
requests() {
    if [ -f "$sd/requests.jsonl" ]; then wc -l <"$sd/requests.jsonl" | tr -d ' '; else echo 0; fi
}

# jq_ PYTHON-EXPR: evaluate with r = list of the requests; prints the value
jq_() {
    python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print($1)" \
        "$sd/requests.jsonl" 2>/dev/null
}

# dm WANT_RC ARGS...: dmclient session on $state (at most 60 s), stdout in
# $tmp/out, stderr in $tmp/err; the exit status must be WANT_RC; stderr must
# be empty when WANT_RC is 0 (unless -v is among ARGS), one line otherwise
dm() {
    want=$1
    shift
    timeout -s KILL 60 "$dmclient" --state-dir "$state" session "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "dmclient session $*: exit $rc, expected $want"
        cat "$tmp/err"
        return 1
    fi
    verbose=0
    for arg in "$@"; do
        case $arg in -v | -vv | --verbose) verbose=1 ;; esac
    done
    if [ "$want" -eq 0 ] && [ "$verbose" -eq 0 ] && [ -s "$tmp/err" ]; then
        fail "dmclient session $*: wrote on stderr:"
        cat "$tmp/err"
        return 1
    fi
    if [ "$want" -ne 0 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
        fail "dmclient session $*: stderr is not one line:"
        cat "$tmp/err"
        return 1
    fi
    return 0
}

# ---- 1. a session over HTTPS ----
serve c1
if dm 0 --server "$url" --cacert "$tmp/srv.crt"; then
    [ -s "$tmp/out" ] && fail "case 1 wrote on stdout: $(cat "$tmp/out")"
    [ "$(requests)" = 2 ] && ok "HTTPS session with --cacert: exit 0, 2 POSTs" ||
        fail "HTTPS session: $(requests) POSTs, expected 2"
    [ "$(jq_ "all(x['headers'].get('content-type') == 'application/vnd.syncml.dm+xml' and
              x['headers'].get('accept') == 'application/vnd.syncml.dm+wbxml, application/vnd.syncml.dm+xml' and
              x['headers'].get('cache-control') == 'no-store' and
              x['headers'].get('user-agent') == 'dmclient' and x['path'] == '/dm' for x in r)")" = True ] &&
        ok "request headers" || fail "request headers: $(jq_ "[x['headers'] for x in r]")"
    jq_ "r[0]['xml']" | grep -q '<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>' &&
        ok "package 1 has Alert 1201" || fail "package 1 has no Alert 1201"
    jq_ "r[1]['xml']" | grep -q '<Results>.*<LocURI>./DevInfo/Mod</LocURI>.*<Data>omadm-client</Data>' &&
        ok "message 2 carries the Results of ./DevInfo/Mod" ||
        fail "message 2: $(jq_ "r[1]['xml']")"
fi

# ---- 2. untrusted certificates ----
serve c2
dm 1 --server "$url" && grep -q "cannot reach https://127.0.0.1:.*certificate" "$tmp/err" &&
    ok "self-signed server certificate without --cacert: exit 1 ($(cat "$tmp/err"))" ||
    fail "untrusted certificate: $(cat "$tmp/err")"
dm 1 --server "$url" --cacert "$tmp/other.crt" && grep -q "cannot reach" "$tmp/err" &&
    ok "a --cacert that does not sign the server's certificate: exit 1" ||
    fail "wrong --cacert: $(cat "$tmp/err")"
[ "$(requests)" = 0 ] && ok "nothing reached the server" || fail "$(requests) POSTs reached the server"

# ---- 3. retry after 503 + Retry-After ----
serve c3 --fail 503:1
t0=$(now_ms)
if dm 0 --server "$url" --cacert "$tmp/srv.crt"; then
    el=$(($(now_ms) - t0))
    [ "$(requests)" = 3 ] && [ "$el" -ge 900 ] &&
        ok "HTTP 503 with Retry-After: 1 retried after ${el} ms, 3 POSTs" ||
        fail "503 retry: $(requests) POSTs in ${el} ms"
    [ "$(jq_ "r[0]['xml'] == r[1]['xml']")" = True ] && ok "the same message was sent again" ||
        fail "the retry sent another message"
fi

# ---- 4. retries exhausted, other statuses ----
serve c4 --fail 503:0 --fail 502:0 --fail 500:0 --fail 429:0
dm 1 --server "$url" --cacert "$tmp/srv.crt" && grep -q "HTTP 429, also after 3 retries" "$tmp/err" &&
    [ "$(requests)" = 4 ] && ok "4 failures: exit 1 after 4 POSTs" ||
    fail "retries exhausted: $(requests) POSTs, $(cat "$tmp/err")"
serve c4b --fail 404
dm 1 --server "$url" --cacert "$tmp/srv.crt" && grep -q "HTTP 404" "$tmp/err" && [ "$(requests)" = 1 ] &&
    ok "HTTP 404: exit 1 at once" || fail "HTTP 404: $(requests) POSTs, $(cat "$tmp/err")"

# ---- 5. WBXML ----
if [ -x "$syncmlconv" ]; then
    serve c5 --conv "$syncmlconv"
    if dm 0 --server "$url" --cacert "$tmp/srv.crt" --encoding wbxml; then
        [ "$(jq_ "all(x['wbxml'] and x['headers'].get('content-type') == 'application/vnd.syncml.dm+wbxml' for x in r) and len(r) == 2")" = True ] &&
            ok "--encoding wbxml: 2 WBXML POSTs" || fail "WBXML: $(jq_ "[(x['wbxml'], x['headers'].get('content-type')) for x in r]")"
        jq_ "r[1]['xml']" | grep -q '<Data>omadm-client</Data>' && ok "WBXML message 2 carries the Results" ||
            fail "WBXML message 2: $(jq_ "r[1]['xml']")"
    fi
else
    echo "SKIP: WBXML case ($syncmlconv missing)"
fi

# ---- 6. basic auth, -vv, secret file ----
serve c6
printf 'S3cr3t-pw\n' >"$tmp/cli.secret"
if dm 0 --server "$url" --cacert "$tmp/srv.crt" --auth basic --client-user alice \
    --client-secret-file "$tmp/cli.secret" -vv; then
    b64=$(printf 'alice:S3cr3t-pw' | openssl base64)
    jq_ "r[0]['xml']" | grep -q "<Data>$b64</Data>" && ok "basic Cred sent" || fail "no basic Cred in package 1"
    if grep -q "S3cr3t-pw\|$b64" "$tmp/out" "$tmp/err"; then
        fail "-vv shows the secret"
    else
        ok "-vv does not show the secret"
    fi
    grep -q '<Cred>.*<Data>\*\*\*</Data></Cred>' "$tmp/err" && ok "-vv masks Cred Data" ||
        fail "-vv: no masked Cred"
    grep -q '^session with https://127.0.0.1:[0-9]*/dm done: 2 messages sent, 2 received' "$tmp/out" &&
        ok "-vv summary on stdout" || fail "-vv stdout: $(cat "$tmp/out")"
fi

# ---- 7. HMAC ----
serve c7 --hmac-user dmserver --hmac-secret srvpw --client-user dev1 --client-secret clipw
printf 'srvpw\n' >"$tmp/srv.secret"
if dm 0 --server "$url" --cacert "$tmp/srv.crt" --auth hmac --client-user dev1 --client-secret clipw \
    --server-auth hmac --server-id dmserver --server-secret-file "$tmp/srv.secret"; then
    [ "$(jq_ "len(r) == 2 and all(x.get('client_hmac_ok') for x in r)")" = True ] &&
        ok "HMAC both ways: our x-syncml-hmac verifies, the server's too" ||
        fail "HMAC: $(jq_ "[x.get('client_hmac_ok') for x in r]")"
fi
serve c7b --hmac-user dmserver --hmac-secret srvpw --bad-hmac
dm 1 --server "$url" --cacert "$tmp/srv.crt" --server-auth hmac --server-id dmserver \
    --server-secret srvpw && grep -q "the server's x-syncml-hmac does not verify" "$tmp/err" &&
    [ "$(requests)" = 1 ] && ok "a wrong server mac: exit 1, not processed" ||
    fail "wrong server mac: $(requests) POSTs, $(cat "$tmp/err")"
serve c7c
dm 1 --server "$url" --cacert "$tmp/srv.crt" --server-auth hmac --server-secret srvpw &&
    grep -q "does not verify" "$tmp/err" && ok "no x-syncml-hmac from the server: exit 1" ||
    fail "missing server mac: $(cat "$tmp/err")"

# ---- 8. an empty body ends the session ----
serve c8 --end empty
if dm 0 --server "$url" --cacert "$tmp/srv.crt" -v; then
    grep -q 'done: 2 messages sent, 1 received; the server sent an empty response' "$tmp/out" &&
        ok "empty HTTP body ends the session (exit 0)" || fail "empty body: stdout $(cat "$tmp/out")"
    grep -q 'HTTP 200 from https://127.0.0.1:[0-9]*/dm: 0 bytes' "$tmp/err" && ok "-v shows the responses" ||
        fail "-v stderr: $(cat "$tmp/err")"
fi

# ---- 9. bounds ----
serve c9 --endless
dm 1 --server "$url" --cacert "$tmp/srv.crt" --max-messages 4 && grep -q "within 4 messages" "$tmp/err" &&
    [ "$(requests)" = 4 ] && ok "--max-messages 4: exit 1 after 4 POSTs" ||
    fail "max-messages: $(requests) POSTs, $(cat "$tmp/err")"
serve c9b --pad 6000
mkdir -p "$state" && echo "max_msg_size = 4096" >"$state/dmclient.conf"
dm 1 --server "$url" --cacert "$tmp/srv.crt" && grep -q "larger than 4096 bytes" "$tmp/err" &&
    ok "a response above max_msg_size: exit 1" || fail "too large: $(cat "$tmp/err")"

# ---- 10. dmclient.conf, TLS client certificate ----
serve c10 --client-ca "$tmp/cli.crt"
mkdir -p "$state"
cp "$tmp/srv.crt" "$tmp/cli.crt" "$tmp/cli.key" "$tmp/cli.secret" "$state/"
cat >"$state/dmclient.conf" <<EOF
server_url = $url
server_id = dmserver
encoding = xml
cacert = srv.crt
client_cert_file = cli.crt
client_key_file = cli.key
client_auth = BASIC
client_user = dev7
client_secret_file = cli.secret
max_messages = 10
EOF
if dm 0; then
    [ "$(jq_ "[x['peer'] for x in r]")" = "['device-1', 'device-1']" ] &&
        ok "settings from dmclient.conf; TLS client certificate sent" ||
        fail "client certificate: $(jq_ "[x['peer'] for x in r]")"
    jq_ "r[0]['xml']" | grep -q '<LocName>dev7</LocName>' && ok "client_user from dmclient.conf" ||
        fail "no LocName dev7"
fi
dm 1 --client-cert-file "$tmp/other.crt" --client-key-file "$tmp/other.key" &&
    ok "a client certificate the server does not accept: exit 1 (the command line wins)" ||
    fail "other client certificate"

# ---- 10b. the TLS client certificate from the store ----
serve c10b --client-ca "$tmp/cli.crt"
mkdir -p "$state"
cli_thumb=$(cert_thumbprint "$tmp/cli.crt")
cli_colons=$(openssl x509 -in "$tmp/cli.crt" -noout -fingerprint -sha1 | sed 's/.*=//')
msg_begin "$tmp/add-cli.xml" dmserver
m_cmd Add "./Vendor/MSFT/CertificateStore/My/System/$cli_thumb/EncodedCertificate" b64 "$(cert_b64 "$tmp/cli.crt")"
msg_end
timeout -s KILL 30 "$dmclient" --state-dir "$state" process "$tmp/add-cli.xml" >"$tmp/out" 2>"$tmp/err" &&
    grep -q '<Cmd>Add</Cmd><Data>200</Data>' "$tmp/out" || fail "adding cli.crt to My/System: $(cat "$tmp/err")"
dm 1 --server "$url" --cacert "$tmp/srv.crt" --client-cert "$cli_colons" &&
    grep -q "client certificate $cli_thumb: the store has no private key for it" "$tmp/err" &&
    [ "$(requests)" = 0 ] && ok "--client-cert without its key in the store: exit 1, nothing sent" ||
    fail "--client-cert without a key: $(cat "$tmp/err")"
(umask 077 && cp "$tmp/cli.key" "$state/store/keys/my-system-$cli_thumb") || fail "placing the key"
if dm 0 --server "$url" --cacert "$tmp/srv.crt" --client-cert "$cli_colons"; then
    [ "$(jq_ "[x['peer'] for x in r]")" = "['device-1', 'device-1']" ] &&
        ok "--client-cert from the store: the server saw the certificate" ||
        fail "--client-cert: $(jq_ "[x['peer'] for x in r]")"
fi
dm 1 --server "$url" --cacert "$tmp/srv.crt" --client-cert 0123456789ABCDEF0123456789ABCDEF01234567 &&
    grep -q "not in the My/System store" "$tmp/err" && ok "--client-cert not in the store: exit 1" ||
    fail "--client-cert not in the store: $(cat "$tmp/err")"

# ---- 11. usage ----
state=$tmp/usage
dm 2 && grep -q "no server" "$tmp/err" && ok "no server: exit 2" || fail "no server: $(cat "$tmp/err")"
for bad in "--encoding json" "--auth kerberos" "--max-messages 0" "--server ftp://x" \
    "--client-cert 12" "--bogus"; do
    # shellcheck disable=SC2086  # split on purpose
    timeout -s KILL 30 "$dmclient" --state-dir "$state" session $bad >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 2 ] && ok "session $bad: exit 2" || fail "session $bad: exit $rc"
done
dm 2 --server http://127.0.0.1:9/ --auth digest && ok "--auth digest without a secret: exit 2" ||
    fail "--auth digest without a secret"
timeout -s KILL 30 "$dmclient" session --help >"$tmp/out" 2>"$tmp/err" &&
    grep -q '^usage: dmclient .*session' "$tmp/out" && ok "session --help" || fail "session --help"
timeout -s KILL 30 "$dmclient" --help >"$tmp/out" 2>&1 && grep -q '^  session ' "$tmp/out" &&
    ok "dmclient --help lists session" || fail "dmclient --help does not list session"

# ---- 12. credentials over plain http:// ----
state=$tmp/insecure
mkdir -p "$state"
printf 'secret-1\n' >"$tmp/plain.secret"
insecure="allow it with --allow-insecure-http (allow_insecure_http = yes)"
dm 2 --server http://127.0.0.1:9/ --auth basic --client-secret-file "$tmp/plain.secret" &&
    [ "$(cat "$tmp/err")" = "dmclient: session: --auth basic over plain http:// would send credentials unencrypted: use an https:// server, or $insecure" ] &&
    ok "--auth basic with http://: exit 2, refused" || fail "--auth basic with http://: $(cat "$tmp/err")"
dm 2 --server HTTP://127.0.0.1:9/ --server-auth hmac --server-secret-file "$tmp/plain.secret" &&
    grep -q '^dmclient: session: --server-auth hmac over plain http:// would send credentials unencrypted' "$tmp/err" &&
    ok "--server-auth hmac with HTTP://: exit 2, refused" || fail "--server-auth with http://: $(cat "$tmp/err")"
dm 1 --server http://127.0.0.1:9/ --auth digest --client-secret-file "$tmp/plain.secret" --allow-insecure-http &&
    grep -q '^dmclient: session: cannot reach http://127.0.0.1:9/' "$tmp/err" &&
    ok "--allow-insecure-http: the session goes on (cannot reach)" || fail "--allow-insecure-http: $(cat "$tmp/err")"
printf 'allow_insecure_http = yes   # a lab server\n' >"$state/dmclient.conf"
dm 1 --server http://127.0.0.1:9/ --auth basic --client-secret-file "$tmp/plain.secret" &&
    grep -q '^dmclient: session: cannot reach' "$tmp/err" &&
    ok "allow_insecure_http = yes: the session goes on" || fail "allow_insecure_http = yes: $(cat "$tmp/err")"
printf 'allow_insecure_http = maybe\n' >"$state/dmclient.conf"
dm 1 --server http://127.0.0.1:9/ && grep -q "bad value for 'allow_insecure_http'" "$tmp/err" &&
    ok "allow_insecure_http = maybe: bad value" || fail "allow_insecure_http = maybe: $(cat "$tmp/err")"
rm "$state/dmclient.conf"
dm 1 --server http://127.0.0.1:9/ && grep -q '^dmclient: session: cannot reach' "$tmp/err" &&
    ok "http:// without credentials: the session goes on" || fail "http:// without credentials: $(cat "$tmp/err")"

# ---- 13. notify FILE: before or after the options ----
state=$tmp/notify
mkdir -p "$state"
notification "$tmp/n.bin" 4242 dmserver secret-1
# notify_ WANT_RC STDIN ARGS...: dmclient notify ARGS with STDIN as stdin
notify_() {
    want=$1 stdin=$2
    shift 2
    timeout -s KILL 30 "$dmclient" --state-dir "$state" notify "$@" <"$stdin" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq "$want" ] || { fail "notify $*: exit $rc, expected $want: $(cat "$tmp/err")"; return 1; }
}
for args in "--server-id other --server-secret-file $tmp/plain.secret $tmp/n.bin" \
    "--server-id other $tmp/n.bin --server-secret-file $tmp/plain.secret" \
    "$tmp/n.bin --server-id other --server-secret-file $tmp/plain.secret"; do
    # shellcheck disable=SC2086  # split on purpose
    notify_ 1 /dev/null --server http://127.0.0.1:9/ $args &&
        [ "$(cat "$tmp/err")" = "dmclient: notify: the notification is for server ID 'dmserver', not other (the configured server ID)" ] &&
        ok "notify $args: FILE read, another server ID refused" || fail "notify $args: $(cat "$tmp/err")"
done
notify_ 1 /dev/null --server http://127.0.0.1:9/ --server-id dmserver --server-secret-file "$tmp/plain.secret" -v "$tmp/n.bin" &&
    grep -q 'the digest verifies; session 4242 with dmserver' "$tmp/err" && grep -q 'cannot reach' "$tmp/err" &&
    ok "notify OPTIONS FILE: the digest verifies, the session reaches the network" ||
    fail "notify OPTIONS FILE: $(cat "$tmp/err")"
notify_ 1 "$tmp/n.bin" --server http://127.0.0.1:9/ --server-id other --server-secret-file "$tmp/plain.secret" &&
    grep -q "for server ID 'dmserver', not other" "$tmp/err" && ok "notify without FILE reads stdin" ||
    fail "notify without FILE: $(cat "$tmp/err")"
notify_ 1 "$tmp/n.bin" --server http://127.0.0.1:9/ --server-id other --server-secret-file "$tmp/plain.secret" - &&
    grep -q "for server ID 'dmserver', not other" "$tmp/err" && ok "notify OPTIONS - reads stdin" ||
    fail "notify OPTIONS -: $(cat "$tmp/err")"
notify_ 2 /dev/null --server-id dmserver "$tmp/n.bin" "$tmp/n.bin" &&
    grep -q "unexpected argument '$tmp/n.bin'" "$tmp/err" && ok "notify FILE FILE: exit 2" ||
    fail "notify FILE FILE: $(cat "$tmp/err")"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0
