#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-scep-bed.sh BUILD_DIR
#
# Self-test of the SCEP test bed (tests/scep/, docs/testing.md "SCEP test bed"),
# proven with Debian's own micromdm `scepclient` and the bed's CertPoll client.
# Builds the Go programs into BUILD_DIR/scep (cached), then runs everything in
# new network + PID namespaces that have only loopback, so no server is
# reachable from outside and none can survive the test:
#   micromdm scepserver: GetCACaps/GetCACert; the CA thumbprint helper agrees
#     with an independent SHA-1; scepclient enrolls (cert verifies against the
#     depot CA); a wrong challenge gives FAILURE "badRequest" and no cert
#   pending peer -pending 2: CertPoll flow PENDING, PENDING, SUCCESS; the same
#     with re-sent PKCSReqs (by GET); a repeat after SUCCESS gets the same cert;
#     wrong challenge -> badRequest at once; CertPoll of an unknown transaction
#     -> badCertId, of a known one with another key -> badMessageCheck; -fail-after -> PENDING then FAILURE badRequest;
#     -unavailable 2 -> HTTP 500 twice to one transaction, then SUCCESS; GetCACaps
#     without DES; the CertRep envelope is AES-128-CBC and OpenSSL 3 without
#     the legacy provider verifies and decrypts it
#   pending peer and Debian's scepclient: PENDING, scepclient re-sends its
#     PKCSReq after 30 s (fixed in scepclient), SUCCESS, cert verifies.  The peer
#     runs with -pending $SCEP_SCEPCLIENT_PENDING (default 1: ~30 s; 2 takes
#     ~60 s); it runs in the background while the rest is tested.
#   isolation: only `lo` exists in the namespace, the peers listen on 127.0.0.1
#     only, while the servers run none of their sockets is in the host's network
#     namespace (ss -ltnp on the host), and afterwards no process is left (pgrep).
# Without namespaces (no CAP_SYS_ADMIN, e.g. an unprivileged container) the
# test fails; SCEP_BED_REQUIRE_NETNS=0 instead skips the scepserver part with
# a SKIP line and runs the peer part on the host's 127.0.0.1.
# SCEP_BED_KEEP=1 keeps the scratch directory BUILD_DIR/scep-bed.XXXXXX (it is
# always kept on failure).
# Needs: scepserver, scepclient (package scep), go + golang-github-micromdm-scep-dev,
# curl, openssl, iproute2 (ip, ss), util-linux (unshare), procps (pgrep) - setup.sh.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-scep-bed.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
SCEP_BED_SRC=$(cd "$here/../scep" && pwd)
# shellcheck source=SCRIPTDIR/../scep/bed.sh
. "$SCEP_BED_SRC/bed.sh"


# ============================================================ outer part (host)
if [ -z "${SCEP_BED_INNER:-}" ]; then
    for c in scepserver scepclient go curl openssl ip ss unshare pgrep awk; do
        command -v "$c" >/dev/null 2>&1 || { echo "FAIL: $c not found (run ./setup.sh)"; exit 1; }
    done
    t0=$(now)
    mkdir -p "$build" && build=$(cd "$build" && pwd) || exit 1
    bed_build "$build/scep" || { echo "FAIL: building the SCEP test bed programs"; exit 1; }
    echo "built/checked the Go programs in $(since "$t0") s"
    # a scratch directory of its own: cleanup kills what runs from it, so two
    # runs at once must not share one
    work=$(mktemp -d "$build/scep-bed.XXXXXX") || exit 1
    export SCEP_BED_INNER=1 SCEP_BED_BIN SCEP_BED_WORK="$work"
    if unshare --net --pid --mount-proc --fork --kill-child true 2>/dev/null; then
        # in the background, so that a signal to this shell is handled at once: SIGKILL to
        # unshare (it ignores INT and TERM) kills the namespace's init (--kill-child), and
        # with it the kernel kills everything inside
        bed_run_in_netns sh "$0" "$build" &
        nspid=$!
        trap 'echo "interrupted: killing the namespace"; pkill -KILL -P $nspid -x unshare
              kill -KILL $nspid 2>/dev/null' INT TERM HUP
        # while the servers run, from the host: none of our processes has a listening socket
        # in the host's network namespace (their sockets are all in the private one)
        i=0
        while [ ! -f "$work/servers-up" ] && kill -0 $nspid 2>/dev/null && [ $i -lt 600 ]; do
            sleep 0.1; i=$((i + 1))
        done
        if [ -f "$work/servers-up" ]; then
            ours=$(pgrep -f "$work/" | tr '\n' ' ')
            ss -ltnpH >"$work/host-listening" 2>&1
            seen=
            for p in $ours; do
                grep -q "pid=$p," "$work/host-listening" && seen="$seen $p"
            done
            if [ -n "$seen" ]; then
                echo "FAIL: bed processes listen in the host's network namespace:"; grep -E "pid=($(echo $seen | tr ' ' '|'))," "$work/host-listening"
                hostfail=1
            elif [ "$(echo "$ours" | wc -w)" -ge 4 ]; then
                echo "ok: while running, none of the bed's $(echo "$ours" | wc -w) processes listens in the host's network namespace"
            else
                echo "FAIL: expected the bed's servers to be running (found: $ours)"; hostfail=1
            fi
        fi
        wait $nspid
        rc=$?
        [ -n "${hostfail:-}" ] && rc=1
        trap - INT TERM HUP
    elif [ "${SCEP_BED_REQUIRE_NETNS:-1}" != 0 ]; then
        echo "FAIL: cannot create network/PID namespaces (unshare needs CAP_SYS_ADMIN)"
        rc=1
    else
        echo "SKIP: no network/PID namespaces here (unshare needs CAP_SYS_ADMIN): scepserver part skipped"
        SCEP_BED_NO_NETNS=1 sh "$0" "$build"
        rc=$?
    fi
    # nothing may survive: every server and client was started with a path in $work
    # (after an interruption the kernel may need a moment to tear the namespace down)
    if reap "$work"; then
        echo "ok: no server or client process left (pgrep -f $work)"
    else
        rc=1
    fi
    echo "total $(since "$t0") s"
    scratch_done "$work" "$rc"
    exit "$rc"
fi

# ============================================================ inner part (namespace)
t0=$(now)
bed_init "$SCEP_BED_WORK" || exit 1
W=$SCEP_BED_DIR
B=$SCEP_BED_BIN
CH=s3cr3t
netns=yes
if [ -n "${SCEP_BED_NO_NETNS:-}" ]; then
    netns=
elif bed_in_private_netns; then
    ok "private network namespace: only lo ($(ip -o -4 addr show | awk '{print $2, $4}'))"
else
    fail "not in a loopback-only network namespace:"; ip -o link show
    exit 1
fi
npend=${SCEP_SCEPCLIENT_PENDING:-1}
verify() { # verify NAME CA CERT
    if out=$(openssl verify -CAfile "$2" "$3" 2>&1); then ok "$1: $out"; else fail "$1: $out"; fi
}
last_result() { grep '^result=' "$1" | tail -n 1; }
# scepclient writes and re-uses ./csr.pem: give every enrollment its own directory
enroll() { # enroll DIR URL CHALLENGE CN [ARG...]: Debian scepclient, output in DIR/out
    _d=$1 _u=$2 _c=$3 _cn=$4
    shift 4
    mkdir -p "$_d"
    (cd "$_d" && scepclient -server-url "$_u" -challenge "$_c" -cn "$_cn" \
        -private-key key.pem -certificate cert.pem "$@" >out 2>&1)
}

# ---- 1. Debian scepclient against the pending peer, in the background (long: 30 s sleeps)
t=$(now)
purl=$(bed_start_peer peer-scepclient "$W/peer-scepclient-depot" -challenge "$CH" -pending "$npend") ||
    { fail "start pending peer for scepclient"; exit 1; }
ok "pending peer -pending $npend up at $purl in $(since "$t") s (incl. creating its CA)"
mkdir -p "$W/sc-pending"
tpend=$(now)
bed_spawn scepclient-pending sh -c \
    'd=$1; p=$2; shift 2; cd "$d" || exit 1
     scepclient "$@" & echo "$! scepclient" >>"$p"; wait $!; echo $? >rc' \
    sh "$W/sc-pending" "$W/pids" -server-url "$purl" -challenge "$CH" -cn bed-pending \
    -private-key key.pem -certificate cert.pem >/dev/null

# ---- 2. micromdm scepserver (private namespace only: it binds all interfaces)
if [ -n "$netns" ]; then
    t=$(now)
    bed_micromdm_depot "$W/micromdm-depot" 2048 || fail "scepserver ca -init"
    ok "micromdm depot (RSA 2048 CA) in $(since "$t") s"
    t=$(now)
    murl=$(bed_start_scepserver scepserver "$W/micromdm-depot" 8080 "$CH") ||
        { fail "start scepserver"; exit 1; }
    ok "scepserver up at $murl in $(since "$t") s"
    caps=$(curl -fsS "$murl?operation=GetCACaps" | tr '\n' ' ')
    [ "$caps" = "Renewal SHA-1 SHA-256 AES DES3 SCEPStandard POSTPKIOperation" ] &&
        ok "scepserver GetCACaps: $caps" || fail "scepserver GetCACaps: '$caps'"
    bed_get_cacert "$murl" "$W/micromdm-ca.pem" || fail "GetCACert from scepserver"
    tp=$(bed_thumbprint "$W/micromdm-ca.pem")
    tp2=$(openssl x509 -in "$W/micromdm-depot/ca.pem" -outform DER | openssl dgst -sha1 -r |
        cut -c1-40 | tr abcdef ABCDEF)
    if echo "$tp" | grep -Eqx '[0-9A-F]{40}' && [ "$tp" = "$tp2" ]; then
        ok "GetCACert = depot CA, SHA-1 thumbprint $tp"
    else
        fail "thumbprint of GetCACert '$tp' vs depot CA '$tp2'"
    fi
    fp256=$(openssl x509 -in "$W/micromdm-ca.pem" -outform DER | openssl dgst -sha256 -r | cut -c1-64)

    t=$(now)
    if enroll "$W/sc-ok" "$murl" "$CH" bed-ok -ca-fingerprint "$fp256" && [ -s "$W/sc-ok/cert.pem" ]; then
        ok "scepclient enrolled at scepserver in $(since "$t") s (incl. 2048-bit keygen)"
        verify "scepserver cert" "$W/micromdm-depot/ca.pem" "$W/sc-ok/cert.pem"
        openssl x509 -in "$W/sc-ok/cert.pem" -noout -subject | grep -q 'CN *= *bed-ok' ||
            fail "issued cert subject: $(openssl x509 -in "$W/sc-ok/cert.pem" -noout -subject)"
    else
        fail "scepclient enrollment at scepserver:"; cat "$W/sc-ok/out"
    fi
    if enroll "$W/sc-bad" "$murl" wrong bed-bad; then
        fail "scepclient with a wrong challenge succeeded"
    elif grep -q 'badRequest' "$W/sc-bad/out" && [ ! -s "$W/sc-bad/cert.pem" ] &&
         grep -q 'invalid challenge' "$W/scepserver.log"; then
        ok "wrong challenge: $(grep -o 'failInfo: badRequest.*' "$W/sc-bad/out")"
    else
        fail "wrong challenge: expected failInfo badRequest:"; cat "$W/sc-bad/out"
    fi
    # informational: micromdm's CertRep envelope cipher, as the bed's client sees it
    "$B/scep-test-client" -url "$murl" -ca "$W/micromdm-ca.pem" -key "$W/tc-micromdm.key" \
        -challenge "$CH" -cn bed-tc >"$W/tc-micromdm.out" 2>&1 &&
        echo "info: scepserver CertRep: $(last_result "$W/tc-micromdm.out")"
else
    echo "SKIP: scepserver tests (they need a private network namespace)"
fi

# ---- 3. pending peer, driven by the CertPoll client
t=$(now)
url=$(bed_start_peer peer2 "$W/peer2-depot" -challenge "$CH" -pending 2 -alias /scep/pkiclient.exe) ||
    { fail "start pending peer -pending 2"; exit 1; }
ok "pending peer -pending 2 up at $url in $(since "$t") s"
pca=$W/peer2-depot/ca.pem
caps=$(curl -fsS "$url?operation=GetCACaps" | tr '\n' ' ')
[ "$caps" = "AES SHA-256 POSTPKIOperation" ] && ok "peer GetCACaps: $caps" || fail "peer GetCACaps: '$caps'"
caps2=$(curl -fsS "$url/pkiclient.exe?operation=GetCACaps" | tr '\n' ' ')
[ "$caps2" = "$caps" ] && ok "peer -alias: $url/pkiclient.exe answers too" || fail "peer -alias: '$caps2'"
bed_get_cacert "$url" "$W/peer2-ca.pem" && [ "$(bed_thumbprint "$W/peer2-ca.pem")" = "$(bed_thumbprint "$pca")" ] &&
    ok "peer GetCACert = its depot CA, SHA-1 $(bed_thumbprint "$pca")" || fail "peer GetCACert"
openssl x509 -in "$pca" -noout -ext keyUsage 2>/dev/null | grep -q 'Key Encipherment' ||
    fail "peer CA lacks keyEncipherment"

tc() { # tc NAME [ARG...]: run the CertPoll client against $url, output in $W/NAME.out
    _n=$1; shift
    "$B/scep-test-client" -url "$url" -ca "$pca" -key "$W/$_n.key" -cn "$_n" -interval 200ms \
        -save-certrep "$W/$_n.certrep.der" -save-signer "$W/$_n.signer.pem" "$@" >"$W/$_n.out" 2>&1
}
t=$(now)
tc certpoll -challenge "$CH" -out "$W/certpoll.pem"; rc=$?
seq=$(sed -n 's/^\([A-Za-z]*\) tid=[^ ]* -> \([A-Z]*\).*/\1:\2/p' "$W/certpoll.out" | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$seq" = "PKCSReq:PENDING CertPoll:PENDING CertPoll:SUCCESS " ]; then
    ok "CertPoll flow: $seq($(since "$t") s, 200 ms poll interval); $(last_result "$W/certpoll.out")"
    verify "peer cert (CertPoll)" "$pca" "$W/certpoll.pem"
else
    fail "CertPoll flow (rc $rc): $seq"; cat "$W/certpoll.out"
fi
tid=$(sed -n 's/^PKCSReq tid=\([^ ]*\) .*/\1/p' "$W/certpoll.out")
logseq=$(grep "tid=$tid " "$W/peer2.log" | sed 's/.* type=\([A-Za-z]*\) .* answer=\([A-Z]*\).*/\1:\2/' | tr '\n' ' ')
[ "$logseq" = "PKCSReq:PENDING CertPoll:PENDING CertPoll:SUCCESS " ] &&
    ok "peer log for that transaction: $logseq" || fail "peer log for $tid: $logseq"

# OpenSSL 3, default provider only (no legacy): the CertRep must verify and decrypt
emptycnf=$W/openssl-default-only.cnf
: >"$emptycnf"
if OPENSSL_CONF=$emptycnf openssl cms -verify -inform DER -in "$W/certpoll.certrep.der" -binary \
        -CAfile "$pca" -purpose any -out "$W/env.der" 2>"$W/cms.err" &&
   OPENSSL_CONF=$emptycnf openssl cms -decrypt -inform DER -in "$W/env.der" -binary \
        -recip "$W/certpoll.signer.pem" -inkey "$W/certpoll.key" -out "$W/deg.der" 2>>"$W/cms.err" &&
   OPENSSL_CONF=$emptycnf openssl pkcs7 -inform DER -in "$W/deg.der" -print_certs -out "$W/deg.pem" &&
   [ "$(bed_thumbprint "$W/deg.pem")" = "$(bed_thumbprint "$W/certpoll.pem")" ] &&
   openssl cms -cmsout -print -inform DER -in "$W/env.der" | grep -q 'aes-128-cbc'; then
    ok "OpenSSL $(openssl version | cut -d' ' -f2) without the legacy provider verifies and decrypts the CertRep (aes-128-cbc)"
else
    fail "openssl could not read the peer's CertRep:"; cat "$W/cms.err"
fi

tc resend -challenge "$CH" -poll pkcsreq -get -out "$W/resend.pem"; rc=$?
seq=$(sed -n 's/^\([A-Za-z]*\) tid=[^ ]* -> \([A-Z]*\).*/\1:\2/p' "$W/resend.out" | tr '\n' ' ')
[ $rc -eq 0 ] && [ "$seq" = "PKCSReq:PENDING PKCSReq:PENDING PKCSReq:SUCCESS " ] &&
    ok "re-sent PKCSReq (by GET) counts as a poll: $seq" || { fail "re-sent PKCSReq (rc $rc): $seq"; cat "$W/resend.out"; }
verify "peer cert (re-sent PKCSReq)" "$pca" "$W/resend.pem"

# the same key again after SUCCESS: the cached certificate, no new PENDING
tc certpoll -poll-only -out "$W/again.pem"; rc=$?
[ $rc -eq 0 ] && cmp -s "$W/again.pem" "$W/certpoll.pem" &&
    ok "CertPoll after SUCCESS returns the same certificate" || { fail "CertPoll after SUCCESS (rc $rc)"; cat "$W/certpoll.out"; }

tc otherkey -poll-only -tid "$tid"; rc=$?
[ $rc -eq 2 ] && [ "$(last_result "$W/otherkey.out")" = "result=FAILURE failInfo=badMessageCheck polls=0" ] &&
    ok "CertPoll signed with another key: $(last_result "$W/otherkey.out")" || { fail "CertPoll with another key (rc $rc)"; cat "$W/otherkey.out"; }

tc badch -challenge wrong; rc=$?
[ $rc -eq 2 ] && [ "$(last_result "$W/badch.out")" = "result=FAILURE failInfo=badRequest polls=0" ] &&
    ok "peer, wrong challenge: $(last_result "$W/badch.out")" || { fail "peer, wrong challenge (rc $rc)"; cat "$W/badch.out"; }

tc unknown -poll-only; rc=$?
[ $rc -eq 2 ] && [ "$(last_result "$W/unknown.out")" = "result=FAILURE failInfo=badCertId polls=0" ] &&
    ok "CertPoll, unknown transaction: $(last_result "$W/unknown.out")" || { fail "CertPoll, unknown transaction (rc $rc)"; cat "$W/unknown.out"; }

url=$(bed_start_peer peerfail "$W/peerfail-depot" -challenge "$CH" -pending 1 -fail-after) ||
    { fail "start pending peer -fail-after"; exit 1; }
pca=$W/peerfail-depot/ca.pem
tc failafter -challenge "$CH"; rc=$?
seq=$(sed -n 's/^\([A-Za-z]*\) tid=[^ ]* -> \([A-Za-z ]*\)$/\1:\2/p' "$W/failafter.out" | tr '\n' ' ')
[ $rc -eq 2 ] && [ "$seq" = "PKCSReq:PENDING CertPoll:FAILURE badRequest " ] &&
    ok "-pending 1 -fail-after: $seq" || { fail "-fail-after (rc $rc): $seq"; cat "$W/failafter.out"; }

# -unavailable 2: a transaction's first two PKIOperations get HTTP 500, the third goes through
url=$(bed_start_peer peerdown "$W/peerdown-depot" -challenge "$CH" -unavailable 2) ||
    { fail "start pending peer -unavailable"; exit 1; }
pca=$W/peerdown-depot/ca.pem
rcs=
for i in 1 2 3; do tc down -challenge "$CH" -out "$W/down.pem"; rcs="$rcs$? "; done
tid=$(sed -n 's/^PKCSReq tid=\([^ ]*\) .*/\1/p' "$W/down.out")
seq=$(grep "type=PKCSReq tid=$tid " "$W/peerdown.log" | sed 's/.* answer=\([A-Z0-9-]*\).*/\1/' | tr '\n' ' ')
[ "$rcs" = "1 1 0 " ] && [ "$seq" = "HTTP-500 HTTP-500 SUCCESS " ] && verify "peer cert (-unavailable)" "$pca" "$W/down.pem" &&
    ok "-unavailable 2: the same transaction gets $seq(client exits $rcs)" ||
    { fail "-unavailable 2: client exits $rcs, peer answers $seq"; cat "$W/down.out"; }

# ---- 4. loopback only (the outer part checks the host side now)
: >"$W/servers-up"
ss -ltnH | awk '{print $4}' >"$W/listening"
for f in "$W"/peer*.port; do
    p=$(cat "$f")
    grep -qx "127.0.0.1:$p" "$W/listening" || fail "peer port $p not bound to 127.0.0.1"
    grep -x ".*:$p" "$W/listening" | grep -vqx "127.0.0.1:$p" && fail "peer port $p also bound elsewhere"
done
if [ -n "$netns" ]; then
    ok "listening in the namespace: $(sort "$W/listening" | tr '\n' ' ')(the peers on 127.0.0.1; scepserver's *:8080 in a namespace that has only lo)"
else
    ok "the peers listen on 127.0.0.1 only"
fi

# ---- 5. Debian scepclient + pending peer (started in step 1)
limit=$((30 * npend + 30))
while [ ! -s "$W/sc-pending/rc" ] && [ "$(since "$tpend" | cut -d. -f1)" -lt "$limit" ]; do sleep 0.2; done
took=$(since "$tpend")
if [ "$(cat "$W/sc-pending/rc" 2>/dev/null)" = 0 ] && [ -s "$W/sc-pending/cert.pem" ]; then
    ok "scepclient against the pending peer (-pending $npend) got its certificate after $took s"
    verify "peer cert (scepclient)" "$W/peer-scepclient-depot/ca.pem" "$W/sc-pending/cert.pem"
else
    fail "scepclient against the pending peer (rc $(cat "$W/sc-pending/rc" 2>/dev/null), $took s):"
    cat "$W/scepclient-pending.log"
fi
logseq=$(grep 'op=PKIOperation' "$W/peer-scepclient.log" |
    sed 's/.* type=\([A-Za-z]*\) .* answer=\([A-Z]*\).*/\1:\2/' | tr '\n' ' ')
want=$(i=0; while [ $i -lt "$npend" ]; do printf 'PKCSReq:PENDING '; i=$((i + 1)); done; printf 'PKCSReq:SUCCESS ')
ntid=$(sed -n 's/.* tid=\([^ ]*\) .*/\1/p' "$W/peer-scepclient.log" | sort -u | wc -l)
[ "$logseq" = "$want" ] && [ "$ntid" -eq 1 ] &&
    ok "peer log for scepclient: $logseq(one transactionID)" || fail "peer log for scepclient: $logseq ($ntid IDs)"

# ---- 6. stop everything
bed_stop_all
for p in $(pgrep -f "$W/" 2>/dev/null); do
    [ "$p" = "$$" ] || { fail "process $p still running after bed_stop_all"; ps -o pid,args -p "$p"; }
done
echo "inner part took $(since "$t0") s; failures: $failures"
[ "$failures" -eq 0 ]
