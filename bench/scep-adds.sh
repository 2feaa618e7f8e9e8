#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench/scep-adds.sh [BUILD_DIR] [K ...] - CPU time of creating SCEP enrollments in bulk
# (docs/performance.md, "SCEP enrollments in bulk").
#
# For each K (default: 1 2 4 20), one DM message of K Add commands, each with 1,000 Items
# ./Vendor/MSFT/CertificateStore/My/SCEP/E<k>_<i> (Format node: a new {UniqueID} each, all in
# one namespace), is processed by `dmclient process` on a new state directory, RUNS times
# (SCEP_ADDS_RUNS, default 3); the run with the least CPU time counts.  The first 1,000 Adds
# create enrollments, every later one must be refused with 420 (at most 1,000 enrollments per
# namespace, docs/enrollment.md).  Then the same with K = 1, 2, 3 commands to the three
# enrollment trees (CertificateStore My/SCEP, the device's and the user's
# ClientCertificateInstall/SCEP): K x 1,000 enrollments created, every Add 200.  Printed per
# message: its size, the Status codes of the reply (200 and 420 counted), user + system CPU
# time of the process, wall time, and CPU time per Add.  Linear work shows as a flat time per
# Add (falling in the first table: a refusal costs less than a creation).
#
# BUILD_DIR: the build whose bin/dmclient is measured; without it the release build is made
# first (scons -Q variant=release) and build/release is used.  The state directories go into
# a scratch directory on tmpfs (/dev/shm; SCEP_ADDS_TMPDIR overrides, else BUILD_DIR), removed
# afterwards: the store syncs its filesystem once per message, and on a disk shared with other
# work that sync's cost is theirs as much as ours.
#
# A measurement, not a test: exit status 0 whatever the figures are, 1 when something could
# not be measured (dmclient failed, or the Status codes are not 1,000 x 200 and the rest 420).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ] && [ -d "$1" ]; then
    build=$1
    shift
else
    (cd "$root" && scons -Q variant=release build/release/bin/dmclient >&2)
    build=$root/build/release
fi
[ $# -ge 1 ] || set -- 1 2 4 20
dmclient=$build/bin/dmclient
runs=${SCEP_ADDS_RUNS:-3}
tmp=${SCEP_ADDS_TMPDIR:-}
if [ -z "$tmp" ]; then
    tmp=$build
    [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
fi
scratch=$(mktemp -d "$tmp/scep-adds.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

python3 - "$dmclient" "$scratch" "$runs" "$@" <<'EOF'
import os, re, resource, subprocess, sys, time

dmclient, scratch, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = [int(k) for k in sys.argv[4:]]
ITEMS = 1000
LIMIT = 1000


TREES = ['./Vendor/MSFT/CertificateStore/My/SCEP/', './Vendor/MSFT/ClientCertificateInstall/SCEP/',
         './User/Vendor/MSFT/ClientCertificateInstall/SCEP/']


def message(k, spread):
    parts = ['<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
             '<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID>'
             '<Target><LocURI>omadm-device</LocURI></Target>'
             '<Source><LocURI>https://dm.example.com/omadm</LocURI></Source></SyncHdr><SyncBody>']
    for c in range(k):
        parts.append('<Add><CmdID>%d</CmdID>' % (c + 1))
        for i in range(ITEMS):
            tree = TREES[c] if spread else TREES[0]
            parts.append('<Item><Target><LocURI>%sE%d_%04d</LocURI></Target><Meta><Format '
                         'xmlns="syncml:metinf">node</Format></Meta></Item>' % (tree, c, i))
        parts.append('</Add>')
    parts.append('<Final/></SyncBody></SyncML>')
    return ''.join(parts).encode()


def run_once(msg_path, state):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([dmclient, '--state-dir', state, 'process', msg_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        sys.exit('scep-adds: dmclient failed (%d): %s' % (p.returncode, p.stderr.decode().strip()))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, p.stdout.decode()


def statuses(reply, k):
    """200 and 420 counts over the Add Items (one Status per command when all alike)."""
    ok = refused = 0
    for st in re.findall(r'<Status>(.*?)</Status>', reply, re.S):
        if '<Cmd>Add</Cmd>' not in st:
            continue
        code = int(re.search(r'<Data>(\d+)</Data>', st).group(1))
        refs = len(re.findall(r'<TargetRef>', st)) or ITEMS
        if code == 200:
            ok += refs
        elif code == 420:
            refused += refs
        else:
            sys.exit('scep-adds: an Add answered %d' % code)
    return ok, refused


def table(title, ks, spread):
    print(title)
    print('%-4s %9s %7s %7s %9s %9s %13s' % ('K', 'message', '200', '420', 'CPU s', 'wall s',
                                              'CPU us/Add'))
    for k in ks:
        msg = message(k, spread)
        path = os.path.join(scratch, 'm%d.xml' % k)
        with open(path, 'wb') as f:
            f.write(msg)
        best = None
        for r in range(runs):
            state = os.path.join(scratch, 's%d-%d' % (k, r))
            cpu, wall, reply = run_once(path, state)
            subprocess.run(['rm', '-rf', state], check=True)
            if best is None or cpu < best[0]:
                best = (cpu, wall, reply)
        cpu, wall, reply = best
        ok, refused = statuses(reply, k)
        want = k * ITEMS if spread else min(LIMIT, k * ITEMS)
        if ok != want or ok + refused != k * ITEMS:
            sys.exit('scep-adds: K=%d: %d x 200 and %d x 420, expected %d and %d'
                     % (k, ok, refused, want, k * ITEMS - want))
        print('%-4d %8.0fK %7d %7d %9.2f %9.2f %13.1f' % (k, len(msg) / 1024, ok, refused, cpu,
                                                         wall, cpu / (k * ITEMS) * 1e6))
        sys.stdout.flush()


table('K x 1,000 Adds of a {UniqueID}, one tree (1,000 created, the rest refused 420)',
      counts, False)
print()
table('K x 1,000 Adds of a {UniqueID}, one command per tree (all created)',
      [k for k in (1, 2, 3) if k <= max(counts)], True)
EOF
