#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/demo.sh BUILD_DIR - the README's first command (`scons -Q demo`): the whole mission on
# this machine, everything on 127.0.0.1.
#
#   1. set-up: the SCEP peer of the test bed (tests/scep: built once with Go, cached in
#      BUILD_DIR/scep) started with -pending 1 (it answers PENDING once, then issues), a
#      throwaway TLS PKI (tests/dmserver/make-certs.sh) and the scripted DM server
#      (tests/dmserver/dmserver.py, script tests/dmserver/scripts/demo.py) over HTTPS
#   2. session 1 (dmclient session): the server installs a root and an intermediate CA
#      (RootCATrustedCertificates), reads them back and orders a client certificate over
#      SCEP (an Atomic of ClientCertificateInstall/SCEP Adds + Exec Enroll; Status 32)
#   3. the background work (DMCLIENT_MINUTE_SECONDS=1 dmclient run --until-idle -v):
#      PKCSReq, PENDING, CertPoll one "minute" (1 s) later, the certificate installed
#   4. session 2: the result alert (Generic Alert 1226, Data 0) goes to the server, which
#      reads Status 1, ErrorCode 0 and CertThumbprint and prints its view
#   5. the device afterwards (dmclient store list): root, CA and the enrolled certificate
#   6. the enrolled certificate (dmclient store export my-system): subject, SAN, EKU,
#      openssl verify against the SCEP CA, its private key in the store matches it
#   7. dmclient store paths: openssl verifies a leaf of the installed PKI
#      (tests/data/pki/leaf.pem) through the Root/System CApath and the CA/System bundle
#   8. dmclient store check
# The DM server asserts the client's exact messages; its PASS is required, as is every
# dmclient exit status, and anything a sanitizer prints fails the demo (`scons sanitize=1
# demo`).  Exit status 0 only when every step worked: the demo doubles as a smoke test.
# Scratch directory ${TMPDIR:-/tmp}/omadm-demo.XXXXXX, removed at the end unless
# DEMO_KEEP=1; every process started here is stopped at exit.  Needs what ./setup.sh
# installs (python3, openssl, curl, procps, iproute2, Go + golang-github-micromdm-scep-dev
# for the SCEP peer).  docs/demo.md describes the output.
set -u
build=${1:?usage: tests/demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=$(cd "$build" && pwd) || exit 1
dmclient=$build/bin/dmclient
t0=$(date +%s.%N)

elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
heading() { printf '\n== %s\n' "$*"; }
indent() { sed 's/^/   /'; }

for c in python3 openssl curl timeout awk; do
    command -v "$c" >/dev/null 2>&1 || { echo "demo: $c not found (run ./setup.sh)"; exit 1; }
done
[ -x "$dmclient" ] || { echo "demo: $dmclient missing (build first: scons -Q)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/omadm-demo.XXXXXX") || exit 1
state=$work/device
srv_pid=
srv_shown=0

SCEP_BED_SRC=$top/tests/scep
# shellcheck source=tests/scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"
SCEP_BED_DIR=$work/scep
mkdir -p "$SCEP_BED_DIR" && : >"$SCEP_BED_DIR/pids"

# shellcheck disable=SC2317  # called by the trap
cleanup() {
    # shellcheck disable=SC2046,SC2086  # one pid per word; $srv_pid may be empty
    stop $srv_pid $(cut -d' ' -f1 "$SCEP_BED_DIR/pids" 2>/dev/null)
    : >"$SCEP_BED_DIR/pids"
    bed_stop_all
    if [ -n "${DEMO_KEEP:-}" ]; then
        echo "scratch directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'echo "demo: interrupted"; exit 130' INT TERM HUP

# server_says: what the DM server printed (its narration; at the end its verdict) since the
# last call
server_says() {
    n=$(wc -l <"$work/dmserver.out")
    if [ "$n" -gt "$srv_shown" ]; then
        sed -n "$((srv_shown + 1)),${n}p" "$work/dmserver.out" |
            sed '/^server/! s/^/server verdict: /; s/^/   /'
        srv_shown=$n
    fi
}

# stop PID...: TERM, wait until gone (or a zombie for init to reap), then KILL
stop() {
    for p; do kill -TERM "$p" 2>/dev/null; done
    for p; do
        i=0
        while [ $i -lt 40 ] && st=$(ps -o stat= -p "$p" 2>/dev/null) && [ "${st#Z}" = "$st" ]; do
            sleep 0.05; i=$((i + 1))
        done
        kill -KILL "$p" 2>/dev/null
    done
}

# die WHAT: the demo failed; show what the servers said and stop
die() {
    echo
    echo "== What went wrong"
    if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
        kill -USR1 "$srv_pid" 2>/dev/null      # the client is gone: the server stops waiting
        i=0
        while kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
    fi
    if [ -s "$work/dmserver.out" ] && [ "$(wc -l <"$work/dmserver.out")" -gt "$srv_shown" ]; then
        echo "   the DM server said:"
        server_says
    fi
    [ -s "$work/dmserver.log" ] && { echo "   its log, tail (dmserver.log: requests and failures):"
        grep -E '^\[ *[0-9.]+\] (>>>|FAIL|SIGUSR1|no request|timeout|Traceback|[A-Za-z]*Error)' \
            "$work/dmserver.log" | tail -n 8 | cut -c1-200 | indent; }
    [ -s "$SCEP_BED_DIR/scep-peer.log" ] && { echo "   the SCEP peer's log, tail (scep/scep-peer.log):"
        tail -n 6 "$SCEP_BED_DIR/scep-peer.log" | indent; }
    [ -n "${DEMO_KEEP:-}" ] || echo "   (DEMO_KEEP=1 keeps the scratch directory with every log and the device state)"
    echo
    echo "DEMO FAILED after $(elapsed) s: $*"
    exit 1
}

cat <<EOF
omadm demo: a DM server installs CA certificates on this device and has it enroll a
client certificate over SCEP, with dmclient doing the device's side.  Everything runs
here, on 127.0.0.1.  Device state directory: $state
EOF

# ---- 1. set-up
heading "1. Set-up: a SCEP server and a DM server on 127.0.0.1"
if ! bed_build "$build/scep" >"$work/scep-build.log" 2>&1; then
    indent <"$work/scep-build.log"
    die "the SCEP peer (Go, tests/scep) could not be built: run ./setup.sh"
fi
grep -q building "$work/scep-build.log" &&
    echo "   built the SCEP peer (tests/scep/pending-peer, Go; cached in $build/scep)"
challenge=$(openssl rand -hex 8)
purl=$(bed_start_peer scep-peer "$SCEP_BED_DIR/depot" -challenge "$challenge" -pending 1 \
    -ca-cn "omadm demo SCEP CA") || die "the SCEP peer did not start"
scep_ca=$SCEP_BED_DIR/depot/ca.pem
scep_thumb=$(bed_thumbprint "$scep_ca")
echo "   SCEP server   $purl  (answers PENDING once, then issues)"
echo "                 CA: $(openssl x509 -in "$scep_ca" -noout -subject | sed 's/^subject=//')," \
    "SHA-1 $scep_thumb"

sh "$top/tests/dmserver/make-certs.sh" "$work/tls" || die "make-certs.sh (the DM server's TLS certificate)"
python3 "$top/tests/dmserver/dmserver.py" --script demo --port-file "$work/dmserver.port" \
    --cert "$work/tls/server.pem" --key "$work/tls/server.key" --timeout 60 --max-time 300 \
    --log "$work/dmserver.log" --summary "$work/dmserver.json" \
    --param "scep_url=$purl" --param "scep_ca_thumbprint=$scep_thumb" \
    --param "scep_challenge=$challenge" >"$work/dmserver.out" 2>&1 </dev/null &
srv_pid=$!
i=0
while [ ! -s "$work/dmserver.port" ] && kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 200 ]; do
    sleep 0.05; i=$((i + 1))
done
[ -s "$work/dmserver.port" ] || die "the DM server did not start"
dm_url="https://127.0.0.1:$(cat "$work/dmserver.port")/omadm"
echo "   DM server     $dm_url  (tests/dmserver/dmserver.py, script demo.py;"
echo "                 TLS certificate from a throwaway CA: $work/tls/ca.pem)"
if command -v ss >/dev/null 2>&1; then
    for p in "$srv_pid" $(cut -d' ' -f1 "$SCEP_BED_DIR/pids"); do
        ss -Hltnp 2>/dev/null | grep "pid=$p," | awk '{ print $4 }'
    done >"$work/listening"
    grep -qv '^127\.0\.0\.1:' "$work/listening" && die "something listens beyond 127.0.0.1: $(cat "$work/listening")"
    [ -s "$work/listening" ] && echo "   listening:    $(tr '\n' ' ' <"$work/listening")(loopback only)"
fi

# clean FILE...: no sanitizer report in dmclient's output
clean() {
    ! grep -q -E 'Sanitizer|runtime error:' "$@" || { cat "$@"; die "sanitizer report in dmclient's output"; }
}

session() {
    timeout -s KILL 120 "$dmclient" --state-dir "$state" session --server "$dm_url" \
        --cacert "$work/tls/ca.pem" -v >"$work/session$1.out" 2>"$work/session$1.err"
    rc=$?
    clean "$work/session$1.out" "$work/session$1.err"
    return $rc
}

# ---- 2. session 1
heading "2. Session 1: dmclient --state-dir DIR session --server $dm_url --cacert ca.pem"
session 1
rc=$?
server_says
sed -n 's/^session with .* done: /   dmclient: session done: /p' "$work/session1.out"
[ "$rc" -eq 0 ] || { indent <"$work/session1.err"; die "dmclient session (session 1) exit $rc"; }
grep -q '^server: -> end of session 1$' "$work/dmserver.out" ||
    die "session 1 did not go as the server expected"
st=$("$dmclient" --state-dir "$state" get ./Device/Vendor/MSFT/ClientCertificateInstall/SCEP/DemoCert/Status)
[ "$st" = 32 ] || die "dmclient get .../SCEP/DemoCert/Status: '$st', expected 32"
echo "   device: dmclient get .../SCEP/DemoCert/Status -> $st (ordered, not done yet)"

# ---- 3. the background work
heading "3. Background work: DMCLIENT_MINUTE_SECONDS=1 dmclient run --until-idle -v"
echo "   (RetryDelay is 1 minute; DMCLIENT_MINUTE_SECONDS=1 makes that minute 1 s)"
DMCLIENT_MINUTE_SECONDS=1 timeout -s KILL 120 "$dmclient" --state-dir "$state" \
    run --until-idle -v >"$work/run.out" 2>&1
rc=$?
indent <"$work/run.out"
clean "$work/run.out"
[ "$rc" -eq 0 ] || die "dmclient run --until-idle exit $rc"
for w in PKCSReq PENDING CertPoll installed; do
    grep -q "$w" "$work/run.out" || die "dmclient run: no '$w' in its log"
done
echo "   the SCEP server's log:"
sed -n 's/.* op=PKIOperation type=\([A-Za-z]*\) .* answer=\([A-Z]*\).*/     \1 -> \2/p' \
    "$SCEP_BED_DIR/scep-peer.log"
"$dmclient" --state-dir "$state" alerts >"$work/alerts" || die "dmclient alerts"
grep -q 'SCEPcertinstall.result' "$work/alerts" || die "no result alert queued (dmclient alerts)"
echo "   queued for the next session (dmclient alerts): Generic Alert 1226"
awk -F'\t' '{ printf "     Source %s\n     Type %s, Format %s, Data %s\n", $2, $3, $4, $5 }' "$work/alerts"

# ---- 4. session 2
heading "4. Session 2: the result goes to the server (dmclient session)"
session 2
rc=$?
server_says
sed -n 's/^session with .* done: /   dmclient: session done: /p' "$work/session2.out"
[ "$rc" -eq 0 ] || { indent <"$work/session2.err"; die "dmclient session (session 2) exit $rc"; }
kill -USR1 "$srv_pid" 2>/dev/null    # the client is done: no quiet period to wait out
wait "$srv_pid"
src=$?
srv_pid=
server_says
[ "$src" -eq 0 ] || die "the DM server's checks failed (exit $src)"
grep -q '^PASS: demo' "$work/dmserver.out" || die "no PASS from the DM server"
server_thumb=$(sed -n 's/^server view: .*CertThumbprint=\([0-9A-F]*\).*/\1/p' "$work/dmserver.out")
[ -n "$server_thumb" ] || die "no server view"
[ -z "$("$dmclient" --state-dir "$state" alerts)" ] || die "the alert is still queued after its delivery"
echo "   device: the alert was delivered (dmclient alerts: none queued)"

# ---- 5. the device afterwards
heading "5. The certificate store afterwards (dmclient store list)"
"$dmclient" --state-dir "$state" store list | indent
"$dmclient" --state-dir "$state" store list my-system | grep -q "$server_thumb" ||
    die "My/System does not hold $server_thumb (the server's CertThumbprint)"
echo "   (My/System holds $server_thumb: the CertThumbprint the server read)"

heading "6. The enrolled certificate (dmclient store export my-system)"
"$dmclient" --state-dir "$state" store export my-system >"$work/enrolled.pem" ||
    die "dmclient store export my-system"
openssl x509 -in "$work/enrolled.pem" -noout -subject -issuer -enddate \
    -ext subjectAltName,extendedKeyUsage 2>/dev/null | grep -v '^X509v3' | indent
echo "   \$ openssl verify -CAfile scep-ca.pem enrolled.pem"
openssl verify -CAfile "$scep_ca" "$work/enrolled.pem" 2>&1 | sed "s|$work/||" | indent
openssl verify -CAfile "$scep_ca" "$work/enrolled.pem" >/dev/null 2>&1 ||
    die "the enrolled certificate does not verify against the SCEP CA"
key=$(find "$state/store/keys" -type f -name "*$server_thumb*" 2>/dev/null | head -n 1)
[ -n "$key" ] || die "no private key for $server_thumb in $state/store/keys"
[ "$(openssl pkey -in "$key" -pubout 2>/dev/null | openssl sha256)" = \
  "$(openssl x509 -in "$work/enrolled.pem" -noout -pubkey | openssl sha256)" ] ||
    die "the stored private key does not match the enrolled certificate"
echo "   its private key (made on the device, never sent): DIR/${key#"$state"/}," \
    "mode $(stat -c '%a' "$key"), matches the certificate"

heading "7. For other software on the device (dmclient store paths)"
"$dmclient" --state-dir "$state" store paths >"$work/paths" || die "dmclient store paths"
grep --no-group-separator -A1 -E '^(Root|CA)/System ' "$work/paths" | indent
echo "   ... $(grep -c CApath "$work/paths") trust stores in all, each a CApath directory and a PEM bundle"
echo "   \$ openssl verify -CApath <Root/System CApath> -untrusted <CA/System bundle> leaf.pem"
root_capath=$(awk '/^Root\/System / { print $3 }' "$work/paths")
ca_bundle=$(awk '/^CA\/System / { getline; print $2 }' "$work/paths")
if [ ! -d "$root_capath" ] || [ ! -f "$ca_bundle" ]; then
    die "dmclient store paths: no Root/System CApath or CA/System bundle"
fi
openssl verify -attime 1767225600 -CApath "$root_capath" -untrusted "$ca_bundle" \
    "$here/data/pki/leaf.pem" 2>&1 | sed "s|$top/||" | indent
openssl verify -attime 1767225600 -CApath "$root_capath" -untrusted "$ca_bundle" \
    "$here/data/pki/leaf.pem" >/dev/null 2>&1 ||
    die "openssl does not trust the leaf through the installed root and intermediate"

heading "8. dmclient store check"
"$dmclient" --state-dir "$state" store check >"$work/check.out" 2>&1
rc=$?
indent <"$work/check.out"
[ "$rc" -eq 0 ] || die "dmclient store check exit $rc"

echo
checks=$(sed -n 's/^PASS: demo: \([0-9]*\) checks.*/\1/p' "$work/dmserver.out")
echo "DEMO PASSED in $(elapsed) s: 2 CAs installed, a client certificate enrolled over SCEP" \
    "(1 PENDING round) and its result reported (Status=1 ErrorCode=0); the DM server's $checks" \
    "checks and every check here passed."
