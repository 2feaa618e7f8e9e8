#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/startup.sh [BUILD_DIR] [PAIRS] - dmclient's start-up against the floor of its libraries,
# and its peak RSS on a certificate message (docs/performance.md, "Start-up").
#
# BUILD_DIR: the build whose bin/dmclient and bench/noop are measured; without it the
# release build is made first (scons -Q variant=release bench) and build/release is used.
# PAIRS: timed pairs (default 101).  STARTUP_RSS_RUNS: runs for each peak RSS (default 7).
#
#   start-up  `dmclient --state-dir S get ./DevInfo/DevId` (S made by an untimed first run)
#             against bench/noop, a program that does nothing, linked with libxml2 and
#             libcrypto (what dmclient loads at start): PAIRS pairs run A B A B ... after 3
#             untimed warm-up pairs; wall time (time.perf_counter() around each process) and CPU
#             time (user + system, wait4).  Target: the median of the per-pair wall ratios
#             A/B <= 1.3.
#   peak RSS  GNU time's %M of `dmclient --state-dir S process MSG`, median of
#             STARTUP_RSS_RUNS runs, MSG the 2.3 KB certificate message: Add of a new
#             self-signed RSA-2048 CA certificate (made here with the openssl CLI) to
#             ./Vendor/MSFT/CertificateStore/Root/System/<SHA-1>/EncodedCertificate, Get of
#             that leaf, Get of .../<SHA-1> (its children), Delete of .../<SHA-1>, Final.
#             Every reply is checked: five Status 200 and nothing else.  Target: <= 10 MiB.
#             Also shown: `get` and the no-op (the floor).
#
# State and message go into a scratch directory on tmpfs (/dev/shm, else BUILD_DIR), removed
# afterwards.  A measurement, not a test: exit status 0 whatever the figures are, 1 when
# something could not be measured (a program missing or failing, a reply not all 200).
# Needs: python3, openssl, GNU time (/usr/bin/time; package time).
# shellcheck disable=SC2015  # "check && check || die": die exits
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "startup.sh: $*" >&2; exit 1; }
if [ $# -ge 1 ] && [ -n "$1" ]; then
    build=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"
else
    (cd "$root" && scons -Q variant=release bench >&2) || die "the release build failed"
    build=$root/build/release
fi
pairs=${2:-101}
rss_runs=${STARTUP_RSS_RUNS:-7}
case $pairs$rss_runs in '' | *[!0-9]*) die "PAIRS and STARTUP_RSS_RUNS must be numbers" ;; esac
[ "$pairs" -ge 1 ] && [ "$rss_runs" -ge 1 ] || die "PAIRS and STARTUP_RSS_RUNS must be at least 1"
dmclient=$build/bin/dmclient
noop=$build/bench/noop
[ -x "$dmclient" ] || die "$dmclient missing (scons -Q variant=release bench)"
[ -x "$noop" ] || die "$noop missing (scons -Q variant=release bench)"
for c in python3 openssl; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found"
done
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 ||
    die "GNU time (/usr/bin/time) not found: apt-get install time"

tmp=$build
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
work=$(mktemp -d "$tmp/startup.XXXXXX") || die "mktemp in $tmp"
trap 'rm -rf "$work"' EXIT INT TERM
state=$work/state

# ---- the 2.3 KB certificate message
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -days 3650 -sha256 \
    -subj "/O=Contoso Test/OU=MDM/CN=Contoso Device Root CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -outform DER -out "$work/ca.der" >/dev/null 2>&1 || die "openssl req failed"
thumb=$(openssl x509 -inform DER -in "$work/ca.der" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
b64=$(openssl base64 -A -in "$work/ca.der")
node=./Vendor/MSFT/CertificateStore/Root/System/$thumb
cat >"$work/msg.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>omadm-device</LocURI></Target><Source><LocURI>https://dm.example.test/omadm</LocURI></Source></SyncHdr><SyncBody>
<Add><CmdID>1</CmdID><Item><Target><LocURI>$node/EncodedCertificate</LocURI></Target><Meta><Format xmlns="syncml:metinf">b64</Format></Meta><Data>$b64</Data></Item></Add>
<Get><CmdID>2</CmdID><Item><Target><LocURI>$node/EncodedCertificate</LocURI></Target></Item></Get>
<Get><CmdID>3</CmdID><Item><Target><LocURI>$node</LocURI></Target></Item></Get>
<Delete><CmdID>4</CmdID><Item><Target><LocURI>$node</LocURI></Target></Item></Delete>
<Final/></SyncBody></SyncML>
XML

# check_reply FILE: five Status 200 (SyncHdr and the four commands), no other status
check_reply() {
    n200=$(grep -o '<Data>200</Data>' "$1" | wc -l)
    other=$(grep -Eo '<Data>[0-9]{3}</Data>' "$1" | grep -vc '<Data>200</Data>' || true)
    [ "$n200" -eq 5 ] && [ "$other" -eq 0 ] ||
        { head -c 2000 "$1" >&2; echo >&2; die "dmclient process: $n200 x 200 and $other other statuses (want 5 x 200)"; }
}
"$dmclient" --state-dir "$state" process "$work/msg.xml" >"$work/reply.xml" || die "dmclient process failed"
check_reply "$work/reply.xml"
[ "$("$dmclient" --state-dir "$state" get ./DevInfo/DevId)" = omadm-device ] || die "dmclient get failed"

# ---- peak RSS: NAME CMD...; prints "NAME kib kib ..." (the reply of each process run checked)
rss() {
    name=$1
    shift
    line=$name
    i=0
    while [ "$i" -lt "$rss_runs" ]; do
        /usr/bin/time -f %M -o "$work/rss" "$@" >"$work/out" 2>"$work/err" ||
            { cat "$work/err" >&2; die "$name failed"; }
        [ "$name" = process ] && check_reply "$work/out"
        line="$line $(tail -n 1 "$work/rss")"
        i=$((i + 1))
    done
    echo "$line"
}
{
    rss process "$dmclient" --state-dir "$state" process "$work/msg.xml"
    rss get "$dmclient" --state-dir "$state" get ./DevInfo/DevId
    rss noop "$noop"
} >"$work/rss.txt"

printf 'machine: %s CPUs, %s; %s; load average %s\n' "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(uname -sr)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $build; state on $(df -P "$work" | awk 'NR == 2 { print $1 }'); message $(wc -c <"$work/msg.xml") B"
python3 - "$pairs" "$work/rss.txt" "$rss_runs" "$dmclient" "$state" "$noop" <<'EOF'
import os, statistics, subprocess, sys, time

pairs, rss_file, rss_runs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
dmclient, state, noop = sys.argv[4:7]
A = [dmclient, "--state-dir", state, "get", "./DevInfo/DevId"]
B = [noop]
med = statistics.median


def run(argv):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("startup.sh: %s exited with %d" % (" ".join(argv), os.waitstatus_to_exitcode(status)))
    return wall * 1e3, (ru.ru_utime + ru.ru_stime) * 1e3


for _ in range(3):
    run(A), run(B)
ra, rb = [], []
for _ in range(pairs):
    ra.append(run(A))
    rb.append(run(B))
wall = [a[0] / b[0] for a, b in zip(ra, rb)]
cpu = [a[1] / b[1] for a, b in zip(ra, rb) if b[1] > 0]


def row(label, xs, fmt="%9.2f"):
    print("%-44s" % label + "".join(fmt % x for x in (med(xs), min(xs), max(xs))))


print()
print("start-up, %d pairs A B A B ... after 3 warm-up pairs" % pairs)
print("%-44s%9s%9s%9s" % ("", "median", "min", "max"))
row("A  dmclient get ./DevInfo/DevId, wall ms", [a[0] for a in ra])
row("B  no-op with libxml2 + libcrypto, wall ms", [b[0] for b in rb])
row("A  cpu ms (user + system)", [a[1] for a in ra])
row("B  cpu ms", [b[1] for b in rb])
row("A/B wall, per pair", wall)
if cpu:
    row("A/B cpu, per pair", cpu)
print()
rss = {}
for line in open(rss_file):
    name, *kib = line.split()
    rss[name] = [int(k) / 1024 for k in kib]
print("peak RSS, MiB (GNU time %%M, %d runs each)       median      min      max" % rss_runs)
row("dmclient process, 2.3 KB certificate message", rss["process"])
row("dmclient get ./DevInfo/DevId", rss["get"])
row("no-op with libxml2 + libcrypto (the floor)", rss["noop"])
print()
r, m = med(wall), med(rss["process"])
print("targets:")
print("  start-up, dmclient get / no-op, median of per-pair wall ratios: %5.2fx  (target <= 1.3x)  %s"
      % (r, "MET" if r <= 1.3 else "NOT MET"))
print("  peak RSS of dmclient process, 2.3 KB message, median:           %5.1f MiB (target <= 10 MiB)  %s"
      % (m, "MET" if m <= 10 else "NOT MET"))
print("(A measurement, not a test: the exit status does not depend on the targets.)")
EOF
