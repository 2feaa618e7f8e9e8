#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""crash_scep.py - kill -9 test of SCEP enrollment (dmclient run).

Run by tests/scripts/test-crash-scep.sh (see docs/testing.md, "Crash
consistency"), which starts the SCEP servers of the test bed.  Python 3
standard library only; shares its helpers with crash_consistency.py.

--plan prints the servers the scenario of --seed needs (one pending peer per
enrollment, and micromdm's scepserver with --micromdm), one per line:
    peer NAME PEER-ARGS...        micromdm NAME CHALLENGE
The script starts them and writes --servers: "NAME URL THUMBPRINT LOGFILE".

The scenario (from --seed): one DM message of Atomics (Add {UniqueID} and its
Install parameters, Exec Install/Enroll) orders enrollments of every kind:
installed at once, PENDING a few times then installed, in My/User, at a CA
that answers HTTP 500 a few times (behind a dead URL), refused after a
PENDING, still PENDING after RetryCount polls, a server that never answers,
one at micromdm's scepserver (--micromdm), and one that a second message
Deletes while it is pending.  `run --once` until that one is pending, the
Delete, `run --until-idle`; then a third message has the one installed at
once enroll again (Challenge, Exec), whose install replaces its first
certificate in the same store batch, and `run --until-idle`.

1. Reference run, uninterrupted.  Every enrollment must end as the scenario
   says (Status, ErrorCode, certificate, key, alert, the servers' logs), so
   the scenario and the client check each other.  A self-test then damages
   copies of the result (an orphan key, a Challenge put back into a record, a
   key file gone, two keys swapped) and the checks below must see each.
2. Chains: the same from an empty state directory, but every `dmclient run`
   is first started to be killed (SIGKILL) at a random point: after a random
   delay, or when the Nth store journal is being written (store/journal.tmp)
   or applied (store/journal), a state record or a key file is written, or a
   SCEP server has answered a PKIOperation (before the client has recorded
   the answer), plus a random delay.  Now and then the next opener is killed
   too while it replays the journal.  Each message, too, mostly goes first
   to a `dmclient process` that is killed; it must be in the store whole or
   not at all (then it is sent again).  After every kill:
   - `dmclient store check` passes, no journal or *.tmp is left in the store;
     a journal found complete is applied in full (every file it writes has its
     content, every file it removes is gone), one still being written not at all;
   - every enrollment is in a valid state: Status 32/2/1/16 matching its phase;
     never back to an earlier stage; a finished one as the scenario ends it;
     Status 1 => its certificate in My/System (My/User) with a key file (0600)
     holding that certificate's key, and no certificate for it otherwise but
     the one an earlier Exec installed; no key without its certificate, no
     certificate that no enrollment claims; a pending transaction complete,
     its transactionID the one it had (and the SHA-256 of the signer's key);
     an alert exactly when finished, with its ErrorCode; the Challenge
     nowhere under the state directory once the CA has answered (before, only
     in the enrollment's own record);
   - the deleted enrollment has no record, no key, no alert, and its server
     sees no request after the Delete.
   At the end of a chain every enrollment must be as in the reference run
   (Gets of Status, ErrorCode and CertThumbprint, `store list`), with exactly
   one result alert each (`dmclient alerts`), and all the PKIOperations a
   server saw for one Exec must carry one transactionID, the SHA-256 of the
   installed certificate's key.
Chains run until --kills `dmclient run`s really died of SIGKILL; a tenth of
that number at least must have landed while a journal was being written, a
tenth with a complete journal, and at least one request must have been sent
again.
"""
import argparse
import base64
import ctypes
import hashlib
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crash_consistency as cc  # noqa: E402  (beside this file)

Failure = cc.Failure
SERVER = 'https://dm.example.com/crash-scep'
ALERT_TYPE = 'com.microsoft:mdm.SCEPcertinstall.result'
EKU = '1.3.6.1.5.5.7.3.2'

ST_INSTALLED, ST_PENDING, ST_FAILED, ST_RUNNING = 1, 2, 16, 32
PH_START, PH_PENDING, PH_DONE = 1, 2, 3
PHASE_STATUS = {PH_START: {ST_RUNNING}, PH_PENDING: {ST_PENDING},
                PH_DONE: {ST_INSTALLED, ST_FAILED}}
RANK = {ST_RUNNING: 0, ST_PENDING: 1, ST_INSTALLED: 2, ST_FAILED: 2}

EC_SCEP_BAD_REQUEST = -1596981246  # 0xA0D00002: FAILURE, failInfo badRequest
EC_POLL_TIMEOUT = -2147023436      # 0x800705B4: still PENDING after RetryCount polls
EC_CONNECT = -2147012867           # 0x80072EFD: cannot connect

CS = './Vendor/MSFT/CertificateStore/My/SCEP'
CCI_DEVICE = ('./Device/Vendor/MSFT/ClientCertificateInstall/SCEP',
              './Vendor/MSFT/ClientCertificateInstall/SCEP')
CCI_USER = './User/Vendor/MSFT/ClientCertificateInstall/SCEP'
DEAD_URL = 'http://127.0.0.1:1/scep'
# kill strategies and their weights
RUN_STRATEGIES = {'early': 5, 'uniform': 10, 'journal.tmp': 25, 'journal': 20, 'record': 15,
                  'key': 10, 'answer': 15}
PROCESS_STRATEGIES = {'early': 10, 'uniform': 30, 'journal.tmp': 30, 'journal': 30}
# the most a kill waits after its event: the journal is written and synced
# within about a millisecond, the answer takes the client some more to
# check and record
EXTRA = {'journal.tmp': 0.0003, 'journal': 0.0015, 'record': 0.0015, 'key': 0.0015,
         'answer': 0.010}
DELETED = 'delpend'  # the enrollment Deleted while pending
AGAIN = 'quick'      # the one Executed again once installed


def log(*a):
    print('crash-scep:', *a, flush=True)


# ------------------------------------------------------------------ scenario

class Enrollment:
    """One {UniqueID}: what the DM message says and how it must end."""

    def __init__(self, kind, eid, tree, server, peer_args, retry_count, key_length, expect,
                 challenge, urls=None):
        self.kind = kind
        self.id = eid
        self.tree = tree
        self.server = server          # server name (peer or micromdm), None: none at all
        self.peer_args = peer_args    # pending peer flags; None: not a pending peer
        self.retry_count = retry_count
        self.key_length = key_length
        self.expect = expect          # (Status, ErrorCode) at the end; None: deleted
        self.challenge = challenge
        self.urls = urls              # ServerURL with {url} for the server's URL
        self.base = tree + '/' + eid
        self.enroll_uri = self.base + '/Install/Enroll'
        tag = 'cu' if tree == CCI_USER else 'cs' if tree == CS else 'cd'
        self.my = 'my-user' if tree == CCI_USER else 'my-system'
        self.record = 'scep-%s-%s' % (tag, hashlib.sha256(eid.lower().encode()).hexdigest()[:32])
        self.subject = 'CN=crash-%s,O=omadm crash test' % kind


def build_scenario(seed, micromdm):
    r = random.Random('scenario-%d' % seed)

    def uid(kind):
        return '%s-%04x' % (kind.capitalize(), r.getrandbits(16))

    def challenge(kind):
        return 'crash%s%012x' % (kind, r.getrandbits(48))

    def device_tree():
        return r.choice((CS,) + CCI_DEVICE)

    def key_length():
        return r.choice((1024, 1024, 1024, 2048))

    pend = r.randint(1, 2)
    down500 = r.randint(1, 2)
    polls = r.randint(1, 2)
    tries = r.randint(1, 2)
    spec = [
        # kind, tree, peer args (None: not a pending peer), RetryCount, expect, ServerURL
        ('quick', device_tree(), [], r.randint(1, 3), (ST_INSTALLED, 0), None),
        ('pend', device_tree(), ['-pending', str(pend)], pend + r.randint(1, 2),
         (ST_INSTALLED, 0), None),
        ('user', CCI_USER, ['-pending', '1'], 3, (ST_INSTALLED, 0), None),
        ('flaky', device_tree(), ['-unavailable', str(down500)], down500 + 2, (ST_INSTALLED, 0),
         DEAD_URL + ';{url}'),
        ('refused', device_tree(), ['-pending', '1', '-fail-after'], 3,
         (ST_FAILED, EC_SCEP_BAD_REQUEST), None),
        ('timeout', device_tree(), ['-pending', '1000'], polls, (ST_FAILED, EC_POLL_TIMEOUT), None),
        ('down', device_tree(), None, tries, (ST_FAILED, EC_CONNECT), DEAD_URL),
        ('delpend', device_tree(), ['-pending', '1000'], 30, None, None),
    ]
    if micromdm:
        spec.append(('mdm', device_tree(), None, 2, (ST_INSTALLED, 0), None))
    out = []
    for kind, tree, peer_args, retry_count, expect, urls in spec:
        server = None if kind == 'down' else 'micromdm' if kind == 'mdm' else 'p-' + kind
        out.append(Enrollment(kind, uid(kind), tree, server, peer_args, retry_count,
                              2048 if kind == 'mdm' else key_length(), expect, challenge(kind),
                              urls))
    r.shuffle(out)  # the order in the message; records are stepped in name order anyway
    return out


def parse_results(reply):
    """{CmdRef: Status code} and {CmdRef: Data of the Results} of a reply."""
    body = ET.fromstring(reply).find(cc.SYNCML_NS + 'SyncBody')
    status, data = {}, {}
    for st in body.findall(cc.SYNCML_NS + 'Status'):
        status[st.findtext(cc.SYNCML_NS + 'CmdRef')] = int(st.findtext(cc.SYNCML_NS + 'Data'))
    for res in body.findall(cc.SYNCML_NS + 'Results'):
        data[res.findtext(cc.SYNCML_NS + 'CmdRef')] = res.findtext(
            cc.SYNCML_NS + 'Item/' + cc.SYNCML_NS + 'Data') or ''
    return status, data


def xml_escape(s):
    return cc.xml_escape(s).replace('"', '&quot;')


class Message:
    def __init__(self, session_id):
        self.session_id = session_id
        self.cmds = []
        self.cid = 0

    def next_id(self):
        self.cid += 1
        return str(self.cid)

    def cmd(self, verb, uri, fmt=None, data=None):
        meta = '<Meta><Format xmlns="syncml:metinf">%s</Format></Meta>' % fmt if fmt else ''
        value = '<Data>%s</Data>' % xml_escape(data) if data is not None else ''
        return '<%s><CmdID>%s</CmdID><Item><Target><LocURI>%s</LocURI></Target>%s%s</Item></%s>' % (
            verb, self.next_id(), xml_escape(uri), meta, value, verb)

    def enroll(self, e, url, thumb):
        """Atomic: Add {UniqueID}, its parameters, Exec Enroll (as test-scep-enroll.sh)."""
        aid = self.next_id()
        urls = e.urls.format(url=url) if e.urls else url
        params = [('RetryCount', 'int', str(e.retry_count)), ('RetryDelay', 'int', '1'),
                  ('KeyUsage', 'int', '160'), ('KeyLength', 'int', str(e.key_length)),
                  ('HashAlgorithm', 'chr', 'SHA-2'), ('SubjectName', 'chr', e.subject),
                  ('EKUMapping', 'chr', EKU), ('ServerURL', 'chr', urls),
                  ('Challenge', 'chr', e.challenge), ('CAThumbprint', 'chr', thumb)]
        body = [self.cmd('Add', e.base, 'node')]
        body += [self.cmd('Add', e.base + '/Install/' + n, f, v) for n, f, v in params]
        body.append(self.cmd('Exec', e.enroll_uri))
        self.cmds.append('<Atomic><CmdID>%s</CmdID>%s</Atomic>' % (aid, ''.join(body)))

    def delete(self, e):
        self.cmds.append(self.cmd('Delete', e.base))

    def again(self, e):
        """Atomic: the Challenge again and a new Exec of a finished enrollment."""
        aid = self.next_id()
        body = self.cmd('Add', e.base + '/Install/Challenge', 'chr', e.challenge)
        body += self.cmd('Exec', e.enroll_uri)
        self.cmds.append('<Atomic><CmdID>%s</CmdID>%s</Atomic>' % (aid, body))

    def get(self, uri):
        """A Get; its CmdID."""
        self.cmds.append(self.cmd('Get', uri))
        return str(self.cid)

    def text(self):
        return ('<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
                '<VerProto>DM/1.2</VerProto><SessionID>%d</SessionID><MsgID>1</MsgID>'
                '<Target><LocURI>omadm-device</LocURI></Target>'
                '<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>\n%s\n<Final/>'
                '</SyncBody></SyncML>\n' % (self.session_id, SERVER, '\n'.join(self.cmds)))


# ------------------------------------------------------------------ DER, keys

def der_item(b, i):
    """(tag, start of the header, start of the content, end) of the TLV at i."""
    tag, n = b[i], b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[j:j + k], 'big')
        j += k
    if j + n > len(b):
        raise ValueError('DER item runs past its end')
    return tag, i, j, j + n


def der_kids(b, item):
    out, i = [], item[2]
    while i < item[3]:
        k = der_item(b, i)
        out.append(k)
        i = k[3]
    return out


def cert_spki(der):
    """The certificate's SubjectPublicKeyInfo, DER."""
    tbs = der_kids(der, der_item(der, 0))[0]
    kids = der_kids(der, tbs)
    if kids[0][0] == 0xa0:  # [0] version
        kids = kids[1:]
    spki = kids[5]  # serial, signature, issuer, validity, subject, SPKI
    return der[spki[1]:spki[3]]


def spki_rsa(spki):
    """(n, e) of an RSA SubjectPublicKeyInfo."""
    bits = der_kids(spki, der_item(spki, 0))[1]
    pub = spki[bits[2] + 1:bits[3]]  # past the unused-bits byte
    n, e = der_kids(pub, der_item(pub, 0))[:2]
    return int.from_bytes(pub[n[2]:n[3]], 'big'), int.from_bytes(pub[e[2]:e[3]], 'big')


def pkcs8_rsa(pem):
    """(n, e) of an RSA private key in PKCS#8 PEM."""
    m = re.search(rb'-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=\n]+)-----END PRIVATE KEY-----',
                  pem)
    if not m:
        raise ValueError('no PKCS#8 PEM block')
    der = base64.b64decode(b''.join(m.group(1).split()))
    octets = der_kids(der, der_item(der, 0))[2]
    rsa = der[octets[2]:octets[3]]
    _v, n, e = der_kids(rsa, der_item(rsa, 0))[:3]
    return int.from_bytes(rsa[n[2]:n[3]], 'big'), int.from_bytes(rsa[e[2]:e[3]], 'big')


def txid_of(spki):
    return hashlib.sha256(spki).hexdigest().upper()


# ------------------------------------------------------------------ the state directory

def unescape(tok):
    if tok == '\\-':
        return ''
    return re.sub(r'\\x([0-9a-fA-F]{2})', lambda m: chr(int(m.group(1), 16)), tok)


def parse_record(text):
    """An enrollment record (csp/enroll.c) as a dict; raises ValueError."""
    lines = text.split('\n')
    if lines[0] != 'omadm-scep 1' or 'end' not in lines:
        raise ValueError('not a whole enrollment record')
    rec = {'snap': {}, 'params': {}}
    for line in lines[1:lines.index('end')]:
        tok = line.split(' ')
        k, v = tok[0], [unescape(t) for t in tok[1:]]
        if k in ('phase', 'status', 'error', 'gen', 'next', 'tries', 'ns'):
            rec[k] = int(v[0])
        elif k == 's':
            rec['snap'][int(v[0])] = v[1]
        elif k == 'p':
            rec['params'][int(v[0])] = v[1:]
        elif k == 'alert':
            rec['alert'] = (int(v[0]), int(v[1]))
        elif k == 'algs':
            rec['algs'] = v
        else:
            rec[k] = v[0]
    return rec


P_CHALLENGE = 1
WORK_FIELDS = ('key', 'signer', 'csr', 'txid', 'cacerts', 'base')


def read_cert_record(path):
    with open(path) as f:
        text = f.read()
    m = re.search(r'^der (\S+)$', text, re.M)
    if not m:
        raise ValueError('%s: no der line' % path)
    return base64.b64decode(m.group(1))


def listing(d):
    """name -> path of the files in directory d (none when it is missing)."""
    return {n: os.path.join(d, n) for n in os.listdir(d)} if os.path.isdir(d) else {}


def files_under(top):
    for root, _dirs, files in os.walk(top):
        for f in files:
            yield os.path.join(root, f)


class Observation:
    """What the state directory holds, read directly (after a store check
    opened the store and so recovered it)."""

    def __init__(self, sd, enrollments):
        top = os.path.join(sd, 'store')
        self.records = {}
        self.bad_records = []
        sdir = os.path.join(top, 'state')
        for name in sorted(os.listdir(sdir)) if os.path.isdir(sdir) else []:
            if name.startswith('.'):
                continue
            with open(os.path.join(sdir, name), encoding='latin-1') as f:
                text = f.read()
            try:
                self.records[name] = parse_record(text)
            except (ValueError, IndexError) as ex:
                self.bad_records.append('%s: %s' % (name, ex))
        self.certs = {}
        for my in ('my-system', 'my-user'):
            self.certs[my] = listing(os.path.join(top, 'certs', my))
        self.keys = listing(os.path.join(top, 'keys'))
        # where each Challenge is found, anywhere under the state directory
        self.challenge_in = {e.kind: [] for e in enrollments}
        needles = [(e.kind, e.challenge.encode()) for e in enrollments]
        for path in files_under(sd):
            with open(path, 'rb') as f:
                data = f.read()
            for kind, needle in needles:
                if needle in data:
                    self.challenge_in[kind].append(os.path.relpath(path, sd))

    def summary(self, enrollments):
        out = []
        for e in enrollments:
            rec = self.records.get(e.record)
            out.append('%s %s' % (e.kind, 'gone' if rec is None else '%d/%d/%d' % (
                rec['status'], rec['phase'], rec['tries'])))
        return ', '.join(out)

    def key(self, enrollments):
        """What must change when a step makes progress."""
        return tuple((e.kind, tuple(sorted((k, str(v)) for k, v in self.records[e.record].items())))
                     if e.record in self.records else (e.kind, None) for e in enrollments)


# ------------------------------------------------------------------ journals

def parse_journal(data):
    """(ops, complete) of a store journal (store/journal.c): ops are
    (op, path, data); a torn one gives the ops that are whole."""
    ops = []
    complete = False
    if not data.startswith(b'omadm-journal 1\n'):
        return ops, complete
    if len(data) >= 16 + 67 and data.endswith(b'\n') and data[-67:-65] == b'E ':
        complete = hashlib.sha256(data[:-67]).hexdigest().encode() == data[-65:-1]
    p = 16
    while p < len(data) and data[p:p + 1] != b'E':
        nl = data.find(b'\n', p)
        if nl < 0:
            break
        head = data[p:nl].decode(errors='replace').split(' ')
        p = nl + 1
        if head[0] == 'U' and len(head) == 2:
            ops.append(('U', head[1], None))
            continue
        if head[0] not in ('W', 'A', 'O') or len(head) != 4:
            break
        n = int(head[2])
        if p + n + 1 > len(data):
            break
        ops.append((head[0], head[3], data[p:p + n]))
        p += n + 1
    return ops, complete


def journal_effect(ops):
    """path -> content after the whole replace/unlink ops (None: absent);
    files written in place (bundles) are left to store check."""
    want = {}
    for op, path, data in ops:
        if op == 'W':
            want[path] = data
        elif op == 'U':
            want[path] = None
        else:
            want.pop(path, None)
    return want


def read_or_none(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ inotify

class Inotify:
    """File events in the state directory and the servers' logs (Linux
    inotify through ctypes: the kill must follow the event closely, and
    polling stat() for seconds would take a core from the client)."""
    IN_MODIFY, IN_MOVED_TO, IN_CREATE = 0x2, 0x80, 0x100
    IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        if self.fd < 0:
            raise Failure('inotify_init1: %s' % os.strerror(ctypes.get_errno()))
        self.wds = {}

    def watch(self, path, mask, label):
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), mask)
        if wd < 0:
            raise Failure('inotify_add_watch %s: %s' % (path, os.strerror(ctypes.get_errno())))
        self.wds[wd] = label

    def read(self, timeout):
        """[(label, name)] of the events within timeout seconds (maybe none)."""
        if not select.select([self.fd], [], [], timeout)[0]:
            return []
        out = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            i = 0
            while i + 16 <= len(buf):
                wd, _mask, _cookie, n = struct.unpack_from('iIII', buf, i)
                name = buf[i + 16:i + 16 + n].split(b'\0', 1)[0].decode(errors='replace')
                out.append((self.wds.get(wd, '?'), name))
                i += 16 + n

    def drain(self):
        while self.read(0):
            pass

    def close(self):
        os.close(self.fd)


# ------------------------------------------------------------------ the test

class Servers:
    """--servers: NAME URL THUMBPRINT LOGFILE per line."""

    def __init__(self, path):
        self.url, self.thumb, self.log = {}, {}, {}
        with open(path) as f:
            for line in f:
                if line.strip():
                    name, url, thumb, logf = line.split()
                    self.url[name], self.thumb[name], self.log[name] = url, thumb, logf

    def size(self, name):
        return os.path.getsize(self.log[name])

    def ops(self, name, since=0, until=None):
        """[(type, tid, answer)] of the PKIOperations logged from offset since
        (to offset until)."""
        with open(self.log[name], 'rb') as f:
            f.seek(since)
            text = f.read(-1 if until is None else until - since).decode(errors='replace')
        return re.findall(r'op=PKIOperation type=(\w+) tid=(\S+) answer=(\S+)', text)


class Walk:
    """One way through the scenario in its own state directory: the
    reference run (nothing killed) or a chain (runs killed)."""

    def __init__(self, test, name, killing, budget=0):
        self.sd = os.path.join(test.work, name)
        shutil.rmtree(self.sd, ignore_errors=True)
        self.log = os.path.join(test.work, name + '.log')
        self.ctx = ', ' + name.replace('-', ' ')
        self.killing = killing
        self.budget = budget
        self.kills = 0
        self.obs = None
        self.ordered = False   # the enrollments' message is in
        self.deleted = False   # the Delete is in
        self.seen_txid = {}
        self.marks = {}
        self.servers = test.servers
        self.ino = None

    def mark(self, what):
        """Where the servers' logs stand at a point of the scenario."""
        self.marks[what] = {n: self.servers.size(n) for n in self.servers.log}

    def segments(self, e):
        """The PKIOperations e's server saw, one list per Exec."""
        cuts = ['start', 'again', None] if e.kind == AGAIN else ['start', None]
        return [self.servers.ops(e.server, self.marks[a][e.server],
                                 self.marks[b][e.server] if b else None)
                for a, b in zip(cuts, cuts[1:])]


class Test:
    def __init__(self, args, enrollments):
        self.args = args
        self.seed = args.seed
        self.enr = enrollments
        self.by_kind = {e.kind: e for e in enrollments}
        self.work = args.work
        self.dm = cc.Dm(args.dmclient)
        self.servers = Servers(args.servers)
        self.krng = random.Random('kills-%d' % args.seed)
        self.stats = dict.fromkeys(
            ('attempts', 'kills', 'finished', 'progress', 'no-progress', 'journal-write',
             'journal-apply', 'apply-partial', 'record-tmp', 'recovery-kills', 'chains',
             'resent', 'checks', 'process-kills', 'process-applied'), 0)
        self.by_strategy = {}
        self.key_ok = {}  # (certificate, key) hashes already matched
        self.est = {}     # phase -> how long its first run took in the reference run

    def fail(self, what, ctx, detail=''):
        raise Failure('%s (seed %d%s)%s' % (what, self.seed, ctx, '\n' + detail if detail else ''))

    # -- messages

    def msg_path(self, name):
        return os.path.join(self.work, 'msg', name + '.xml')

    def write_messages(self):
        os.makedirs(os.path.join(self.work, 'msg'), exist_ok=True)
        msgs = {'enroll': Message(1), 'delete': Message(2), 'again': Message(3)}
        for e in self.enr:
            url = self.servers.url[e.server] if e.server else DEAD_URL
            thumb = self.servers.thumb[e.server] if e.server else '01' * 20
            msgs['enroll'].enroll(e, url, thumb)
        msgs['delete'].delete(self.by_kind[DELETED])
        msgs['again'].again(self.by_kind[AGAIN])
        for name, m in msgs.items():
            with open(self.msg_path(name), 'w') as f:
                f.write(m.text())

    def replied(self, w, name, reply):
        bad = [s for s in cc.parse_statuses(reply) if s[2] != 200]
        if bad:
            self.fail('process %s: Status codes other than 200: %s' % (name, bad), w.ctx)

    def applied(self, w, name):
        """Whether message name is in the store (the store opened by a check
        first); a part of it is a failure."""
        obs = Observation(w.sd, self.enr)
        if name == 'enroll':
            n = sum(e.record in obs.records for e in self.enr)
            if 0 < n < len(self.enr):
                self.fail('%d of %d enrollments of one message are in the store' % (
                    n, len(self.enr)), w.ctx)
            return n > 0
        if name == 'delete':
            return self.by_kind[DELETED].record not in obs.records
        e = self.by_kind[AGAIN]
        return obs.records[e.record]['gen'] > w.obs.records[e.record]['gen']

    def send(self, w, name):
        """Message name through `dmclient process`; in a chain mostly first
        to processes that get killed, until one is applied."""
        for _ in range(3):
            if not w.killing or self.krng.random() > 0.7:
                break
            killed, _strategy, detail, reply = self.kill_cmd(
                w, ['process', self.msg_path(name)], PROCESS_STRATEGIES, self.est[name])
            if not killed:
                self.replied(w, name, reply)
            self.stats['process-kills'] += killed
            ctx = ', process %s, %s' % (name, detail)
            try:
                cc.check_store(self.dm, w.sd)
            except Failure as ex:
                self.fail('store check failed', w.ctx + ctx, str(ex))
            if self.applied(w, name):
                self.stats['process-applied'] += killed
                return self.sent(w, name, ctx)
            if not killed:
                self.fail('process %s finished, but its message is not in the store' % name,
                          w.ctx + ctx)
            self.check(w, ctx + ', not applied')
        t = time.perf_counter()
        p = self.dm.run(w.sd, 'process', self.msg_path(name))
        self.est.setdefault(name, time.perf_counter() - t)
        self.replied(w, name, p.stdout)
        self.sent(w, name, ', after process %s' % name)

    def sent(self, w, name, ctx):
        """Check the state once message name is in."""
        if name == 'enroll':
            w.ordered = True
        elif name == 'delete':
            w.deleted = True
        else:
            w.seen_txid.pop(AGAIN, None)
        self.check(w, ctx, restarted={AGAIN} if name == 'again' else ())

    # -- the checks

    def key_matches(self, cert_der, key_pem):
        h = (hashlib.sha256(cert_der).digest(), hashlib.sha256(key_pem).digest())
        if h not in self.key_ok:
            try:
                self.key_ok[h] = spki_rsa(cert_spki(cert_der)) == pkcs8_rsa(key_pem)
            except (ValueError, IndexError):
                self.key_ok[h] = False
        return self.key_ok[h]

    def check_enrollment(self, e, obs, w, restarted, problems):
        rec = obs.records.get(e.record)
        hits = obs.challenge_in[e.kind]
        if not w.ordered:
            if rec is not None or hits:
                problems.append('%s: record or Challenge before its message was in' % e.kind)
            return
        if e.kind == DELETED and w.deleted:
            if rec is not None:
                problems.append('%s: its record is still there after the Delete' % e.kind)
            if hits:
                problems.append('%s: its Challenge is still in %s after the Delete' % (
                    e.kind, hits))
            return
        if rec is None:
            problems.append('%s: no record %s' % (e.kind, e.record))
            return
        st, ph = rec.get('status'), rec.get('phase')
        if st not in RANK or st not in PHASE_STATUS.get(ph, ()):
            problems.append('%s: Status %s in phase %s' % (e.kind, st, ph))
            return
        old = w.obs.records.get(e.record) if w.obs else None
        if old and e.kind in restarted:
            if rec['gen'] != old['gen'] + 1 or st != ST_RUNNING:
                problems.append('%s: Exec again: gen %d -> %d, Status %d' % (
                    e.kind, old['gen'], rec['gen'], st))
        elif old:
            self.check_progress(e, old, rec, problems)
        self.check_certificate(e, obs, rec, problems)
        self.check_phase(e, rec, problems)
        if 'txid' in rec:
            self.check_txid(e, rec, w.seen_txid, problems)
        if ph == PH_START:
            # its record, and the journal the store keeps of its last batch
            # until the next one when that batch wrote the record (a copy of
            # what is current: never a Challenge the record no longer holds)
            mine = 'store/state/' + e.record
            kept = [h for h in hits if h.startswith('store/journal.applied-')]
            if [h for h in hits if h != mine and h not in kept] or (kept and mine not in hits):
                problems.append('%s: Status 32, its Challenge is in %s' % (e.kind, hits))
        elif hits:
            problems.append('%s: Status %d (the CA answered), its Challenge is in %s' % (
                e.kind, st, hits))

    @staticmethod
    def check_progress(e, old, rec, problems):
        """Never back to an earlier stage, nothing after the end."""
        if RANK[rec['status']] < RANK[old['status']] or rec['gen'] != old['gen']:
            problems.append('%s: went from Status %d (gen %d) back to %d (gen %d)' % (
                e.kind, old['status'], old['gen'], rec['status'], rec['gen']))
        if old['phase'] == PH_DONE and old != rec:
            problems.append('%s: finished, but its record changed' % e.kind)
        if rec['phase'] == old['phase'] == PH_PENDING and rec['tries'] < old['tries']:
            problems.append('%s: polls used went down from %d to %d' % (
                e.kind, old['tries'], rec['tries']))

    @staticmethod
    def check_phase(e, rec, problems):
        st, ph = rec['status'], rec['phase']
        if ph == PH_DONE:
            if (st, rec['error']) != e.expect:
                problems.append('%s: finished with Status %d ErrorCode %d, the scenario says %s'
                                % (e.kind, st, rec['error'], e.expect))
            if rec.get('alert') != (rec['error'], rec['gen']):
                problems.append('%s: finished; alert %s, expected (%d, %d)' % (
                    e.kind, rec.get('alert'), rec['error'], rec['gen']))
            left = [f for f in WORK_FIELDS if f in rec]
            if left:
                problems.append('%s: finished, but the record keeps %s' % (e.kind, left))
        elif 'alert' in rec:
            problems.append('%s: Status %d, but an alert is queued' % (e.kind, st))
        if ph == PH_PENDING:
            missing = [f for f in WORK_FIELDS if f not in rec]
            if missing:
                problems.append('%s: pending without %s' % (e.kind, missing))
            if rec['snap'].get(P_CHALLENGE):
                problems.append('%s: pending, the Challenge still in its snapshot' % e.kind)
        if ('key' in rec) != ('txid' in rec):
            problems.append('%s: key and transactionID not together' % e.kind)

    def check_certificate(self, e, obs, rec, problems):
        """Status 1 <=> the certificate with its key; before, only the one a
        previous Exec installed (it goes with the next install)."""
        t = rec.get('thumb')
        if not t:
            if rec['status'] == ST_INSTALLED:
                problems.append('%s: Status 1 without a thumbprint' % e.kind)
            return
        if rec['status'] != ST_INSTALLED and rec['gen'] < 2:
            problems.append('%s: Status %d with thumbprint %s' % (e.kind, rec['status'], t))
        cert = obs.certs[e.my].get(t)
        keyf = obs.keys.get('%s-%s' % (e.my, t))
        if not cert or not keyf:
            problems.append('%s: Status %d, thumbprint %s: certificate %s, key file %s' % (
                e.kind, rec['status'], t, 'present' if cert else 'missing',
                'present' if keyf else 'missing'))
            return
        mode = os.stat(keyf).st_mode & 0o7777
        if mode != 0o600:
            problems.append('%s: key file mode %o' % (e.kind, mode))
        der = read_cert_record(cert)
        if hashlib.sha1(der).hexdigest().upper() != t:
            problems.append('%s: certificate record %s holds another certificate' % (e.kind, t))
        with open(keyf, 'rb') as f:
            if not self.key_matches(der, f.read()):
                problems.append('%s: the key file does not hold the key of certificate %s' % (
                    e.kind, t))

    def check_txid(self, e, rec, seen_txid, problems):
        """The transactionID is the SHA-256 of the key's SubjectPublicKeyInfo
        (the signer certificate's, once there is one) and never changes."""
        try:
            signer = base64.b64decode(rec['signer']) if 'signer' in rec else None
            if signer is not None and txid_of(cert_spki(signer)) != rec['txid']:
                problems.append('%s: transactionID %s is not the SHA-256 of the signer\'s key'
                                % (e.kind, rec['txid']))
        except (ValueError, IndexError):
            problems.append('%s: the saved signer does not decode' % e.kind)
        first = seen_txid.setdefault(e.kind, rec['txid'])
        if first != rec['txid']:
            problems.append('%s: transactionID changed from %s to %s' % (
                e.kind, first, rec['txid']))

    def check_store_files(self, obs, problems):
        """No certificate that no enrollment claims, no key without its
        certificate, no other record."""
        claimed = set()
        for e in self.enr:
            rec = obs.records.get(e.record)
            if rec and rec.get('thumb'):
                claimed.add((e.my, rec['thumb']))
        for my, certs in obs.certs.items():
            for t in certs:
                if (my, t) not in claimed:
                    problems.append('orphan certificate %s in %s' % (t, my))
        for k in obs.keys:
            my, _dash, t = k.rpartition('-')
            if (my, t) not in claimed or t not in obs.certs.get(my, {}):
                problems.append('key file %s without its certificate or enrollment' % k)
        expected = {e.record for e in self.enr}
        for name in obs.records:
            if name not in expected:
                problems.append('unknown state record %s' % name)
        problems.extend('damaged record %s' % b for b in obs.bad_records)

    def check(self, w, ctx='', restarted=(), store_ok=True):
        """store check (which recovers the store), no leftovers, every
        invariant; w.obs becomes what is there now."""
        ctx = w.ctx + ctx
        self.stats['checks'] += 1
        if store_ok:
            try:
                cc.check_store(self.dm, w.sd)
            except Failure as ex:
                self.fail('store check failed', ctx, str(ex))
            left = cc.leftovers(w.sd)
            if left:
                self.fail('files left in the store after it was opened again', ctx, ' '.join(left))
        obs = Observation(w.sd, self.enr)
        problems = []
        for e in self.enr:
            self.check_enrollment(e, obs, w, restarted, problems)
        self.check_store_files(obs, problems)
        if problems:
            self.fail('invalid state', ctx, '  ' + '\n  '.join(problems) +
                      '\n  state: ' + obs.summary(self.enr))
        w.obs = obs

    def delpend_pending(self, obs):
        rec = obs.records.get(self.by_kind[DELETED].record)
        return rec is not None and rec['status'] == ST_PENDING

    # -- the end of a walk

    def final(self, w, first_thumb):
        """Gets, store list, alerts and the servers' logs at the end:
        {kind: (Status, ErrorCode, thumbprint)}."""
        ctx = w.ctx + ', at the end'
        got = {}
        for e in self.enr:
            rec = w.obs.records.get(e.record)
            if e.expect is None:
                continue
            if rec is None or rec['phase'] != PH_DONE:
                self.fail('%s did not finish' % e.kind, ctx, w.obs.summary(self.enr))
            got[e.kind] = (rec['status'], rec['error'], rec.get('thumb'))
        self.check_gets(w, got, ctx)
        t = got[AGAIN][2]
        if t == first_thumb:
            self.fail('%s: the same certificate after Exec again' % AGAIN, ctx)
        listed = cc.list_store(self.dm, w.sd)
        want = {(e.my, got[e.kind][2]) for e in self.enr if e.kind in got and got[e.kind][2]}
        if set(listed) != want:
            self.fail('store list: %s, expected %s' % (sorted(listed), sorted(want)), ctx)
        self.check_alerts(w, ctx)
        self.check_server_logs(w, got, ctx)
        if any(w.obs.challenge_in.values()):
            self.fail('a Challenge is still stored: %s' % w.obs.challenge_in, ctx)
        return got

    def check_gets(self, w, got, ctx):
        """Status, ErrorCode and CertThumbprint as a server reads them (one
        message of Gets)."""
        m = Message(4)
        ids = {}
        for e in self.enr:
            for node in ('Status', 'ErrorCode', 'CertThumbprint'):
                ids[(e.kind, node)] = m.get(e.base + '/' + node)
        path = os.path.join(w.sd + '.gets.xml')
        with open(path, 'w') as f:
            f.write(m.text())
        status, data = parse_results(self.dm.run(w.sd, 'process', path).stdout)
        for e in self.enr:
            codes = {n: status.get(ids[(e.kind, n)]) for n in ('Status', 'ErrorCode')}
            if e.expect is None:
                if codes != {'Status': 404, 'ErrorCode': 404}:
                    self.fail('%s: Get after the Delete: %s' % (e.kind, codes), ctx)
                continue
            st, ec, t = got[e.kind]
            seen = (data.get(ids[(e.kind, 'Status')]), data.get(ids[(e.kind, 'ErrorCode')]),
                    data.get(ids[(e.kind, 'CertThumbprint')]))
            if seen != (str(st), str(ec), t):
                self.fail('%s: Get Status, ErrorCode, CertThumbprint: %s, the record %s' % (
                    e.kind, seen, (st, ec, t)), ctx)

    def check_alerts(self, w, ctx):
        lines = self.dm.run(w.sd, 'alerts').stdout.decode().splitlines()
        alerts = sorted(tuple(line.split('\t')[1:]) for line in lines if line)
        want = sorted((e.enroll_uri, ALERT_TYPE, 'int', str(e.expect[1]))
                      for e in self.enr if e.expect)
        if alerts != want:
            self.fail('alerts: not exactly one result alert per enrollment', ctx,
                      'got:\n  %s\nexpected:\n  %s' % ('\n  '.join(map(str, alerts)),
                                                      '\n  '.join(map(str, want))))

    def check_server_logs(self, w, got, ctx):
        """One transactionID per Exec, the last one that of the installed
        certificate's key; nothing reaches the deleted one's server after
        the Delete."""
        w.mark('end')
        for e in self.enr:
            if e.peer_args is None:
                continue
            tids = [sorted({t for _ty, t, _a in seg}) for seg in w.segments(e)]
            if any(len(t) != 1 for t in tids) or len({t[0] for t in tids}) != len(tids):
                self.fail('%s: transactionIDs per Exec %s' % (e.kind, tids), ctx)
            t = got.get(e.kind, (0, 0, None))[2]
            if t:
                der = read_cert_record(w.obs.certs[e.my][t])
                if txid_of(cert_spki(der)) != tids[-1][0]:
                    self.fail('%s: transactionID %s is not the SHA-256 of the certificate\'s '
                              'key' % (e.kind, tids[-1][0]), ctx)
        e = self.by_kind[DELETED]
        late = self.servers.ops(e.server, w.marks['delete'][e.server])
        if late:
            self.fail('%s: requests after the Delete: %s' % (e.kind, late), ctx)

    # -- the scenario

    def run_plain(self, w, mode, phase):
        t = time.perf_counter()
        p = self.dm.run(w.sd, 'run', mode, '-v')
        took = time.perf_counter() - t
        self.est.setdefault(phase, took)
        with open(w.log, 'ab') as f:
            f.write(b'--- run %s (not killed)\n' % mode.encode() + p.stderr)
        self.check(w, ', after run %s' % mode)

    def step(self, w, mode, phase):
        """One `dmclient run MODE`, in a chain mostly killed; True when killed."""
        if w.killing and w.kills < w.budget and (mode != '--once' or self.krng.random() < 0.8):
            killed = self.attempt(w, mode, phase)
            w.kills += killed
            return killed
        self.run_plain(w, mode, phase)
        return False

    def walk(self, w):
        """The scenario: the enrollments, `run --once` until the one to delete
        is pending, its Delete, `run --until-idle`, Exec again of one that is
        installed, `run --until-idle`."""
        try:
            w.mark('start')
            # the device's state directory (a command that only reads creates
            # none); the store check makes the store in it
            os.makedirs(w.sd, exist_ok=True)
            self.check(w, ', a new state directory')
            self.send(w, 'enroll')
            for _ in range(60):
                if self.delpend_pending(w.obs):
                    break
                self.step(w, '--once', 'once')
            else:
                self.fail('the enrollment to delete never became pending', w.ctx,
                          w.obs.summary(self.enr))
            w.mark('delete')
            self.send(w, 'delete')
            while self.step(w, '--until-idle', 'idle'):
                pass
            first = w.obs.records[self.by_kind[AGAIN].record].get('thumb')
            w.mark('again')
            self.send(w, 'again')
            while self.step(w, '--until-idle', 'again'):
                pass
        finally:
            if w.ino:
                w.ino.close()
        return self.final(w, first)

    def reference(self):
        w = Walk(self, 'reference', killing=False)
        self.expected = self.walk(w)
        self.ref_ops = {e.kind: w.segments(e) for e in self.enr if e.peer_args is not None}
        self.check_reference_ops()
        t = time.perf_counter()
        for _ in range(5):
            self.dm.run(w.sd, 'store', 'list')
        self.open_time = (time.perf_counter() - t) / 5
        self.reference_dir = w.sd

    def check_reference_ops(self):
        """The servers answered as the scenario has them answer."""
        def seq(kind):
            return ' | '.join(' '.join('%s:%s' % (ty, a) for ty, _t, a in seg)
                              for seg in self.ref_ops[kind])
        e = self.by_kind
        pend = int(e['pend'].peer_args[1])
        down = int(e['flaky'].peer_args[1])
        want = {
            'quick': 'PKCSReq:SUCCESS | PKCSReq:SUCCESS',
            'pend': ' '.join(['PKCSReq:PENDING'] + ['CertPoll:PENDING'] * (pend - 1) +
                             ['CertPoll:SUCCESS']),
            'user': 'PKCSReq:PENDING CertPoll:SUCCESS',
            'flaky': ' '.join(['PKCSReq:HTTP-500'] * down + ['PKCSReq:SUCCESS']),
            'refused': 'PKCSReq:PENDING CertPoll:FAILURE',
            'timeout': ' '.join(['PKCSReq:PENDING'] +
                                ['CertPoll:PENDING'] * e['timeout'].retry_count),
            'delpend': 'PKCSReq:PENDING',
        }
        for kind, seq_want in want.items():
            if seq(kind) != seq_want:
                self.fail('reference run: %s: the server saw "%s", the scenario says "%s"' % (
                    kind, seq(kind), seq_want), '')

    def self_test(self):
        """The checks catch an orphan key, a Challenge left in a finished
        record, a missing key file and swapped keys."""
        installed = [e for e in self.enr if e.expect and e.expect[0] == ST_INSTALLED
                     and e.my == 'my-system']
        failed = [e for e in self.enr if e.expect and e.expect[0] == ST_FAILED]
        a, b = installed[:2]

        def key_of(top, e):
            return os.path.join(top, 'store', 'keys', '%s-%s' % (e.my, self.expected[e.kind][2]))

        def orphan_key(top):
            shutil.copy(key_of(top, a), os.path.join(top, 'store', 'keys', 'my-system-' + 'A' * 40))

        def challenge_back(top):
            path = os.path.join(top, 'store', 'state', failed[0].record)
            with open(path) as f:
                text = f.read()
            with open(path, 'w') as f:
                f.write(text.replace('s %d \\-\n' % P_CHALLENGE,
                                     's %d %s\n' % (P_CHALLENGE, failed[0].challenge)))

        def key_gone(top):
            os.unlink(key_of(top, a))

        def keys_swapped(top):
            ka, kb = key_of(top, a), key_of(top, b)
            os.rename(ka, ka + '.swap')
            os.rename(kb, ka)
            os.rename(ka + '.swap', kb)

        for name, damage in (('orphan-key', orphan_key), ('challenge-in-record', challenge_back),
                             ('key-file-gone', key_gone), ('keys-swapped', keys_swapped)):
            w = Walk(self, 'selftest-' + name, killing=False)
            shutil.copytree(self.reference_dir, w.sd)
            w.deleted = True
            damage(w.sd)
            try:
                self.check(w, ', self-test ' + name, store_ok=False)
            except Failure:
                shutil.rmtree(w.sd)
                continue
            raise Failure('self-test: %s is not detected' % name)

    # -- kill attempts

    def watches(self, sd):
        ino = Inotify()
        top = os.path.join(sd, 'store')
        ino.watch(top, Inotify.IN_CREATE | Inotify.IN_MOVED_TO, 'store')
        ino.watch(os.path.join(top, 'state'), Inotify.IN_MOVED_TO, 'state')
        ino.watch(os.path.join(top, 'keys'), Inotify.IN_CREATE | Inotify.IN_MOVED_TO, 'keys')
        for name, path in self.servers.log.items():
            ino.watch(path, Inotify.IN_MODIFY, 'log:' + name)
        return ino

    def is_event(self, strategy, label, name, logs):
        if strategy in ('journal.tmp', 'journal'):
            return label == 'store' and name == strategy
        if strategy == 'record':
            return label == 'state' and name.startswith('scep-')
        if strategy == 'key':
            return label == 'keys'
        if strategy == 'answer' and label.startswith('log:'):
            server = label[4:]
            with open(self.servers.log[server], 'rb') as f:
                f.seek(logs[server])
                new = f.read()
            logs[server] += len(new)
            return b'op=PKIOperation type=' in new
        return False

    def kill_cmd(self, w, args, strategies, est):
        """Start `dmclient ARGS`, SIGKILL it at a random point: (killed,
        strategy, detail, stdout)."""
        r = self.krng
        names = list(strategies)
        strategy = r.choices(names, weights=[strategies[n] for n in names])[0]
        out = os.path.join(self.work, 'killed.out')
        if not w.ino:
            w.ino = self.watches(w.sd)
        w.ino.drain()
        logs = {n: self.servers.size(n) for n in self.servers.log}
        with open(out, 'wb') as fo, open(out + '.err', 'wb') as fe:
            proc = subprocess.Popen([self.dm.path, '--state-dir', w.sd] + args,
                                    env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                    stdout=fo, stderr=fe)
            t0 = time.perf_counter()
            if strategy in ('early', 'uniform'):
                delay = 10 ** r.uniform(-5, -2.5) if strategy == 'early' else r.uniform(0, est)
                while proc.poll() is None and time.perf_counter() < t0 + delay - 0.05:
                    time.sleep(0.02)
                if proc.poll() is None:
                    cc.spin_until(t0 + delay)
                detail = 'SIGKILL %.3f ms after start' % (delay * 1e3)
            else:
                nth = r.choice([1, 1, 1, 1, 2, 2, 3]) if args[0] == 'run' else 1
                extra = r.uniform(0, EXTRA[strategy])
                seen = 0
                while seen < nth and proc.poll() is None:
                    if time.perf_counter() - t0 > 120:
                        proc.kill()
                        self.fail('dmclient %s still running after 120 s' % args[0], w.ctx)
                    for label, name in w.ino.read(0.05):
                        seen += self.is_event(strategy, label, name, logs)
                if seen >= nth:
                    cc.spin_until(time.perf_counter() + extra)
                detail = ('SIGKILL %.3f ms after %s #%d' % (extra * 1e3, strategy, nth)
                          if seen >= nth else '%s #%d never came' % (strategy, nth))
            proc.send_signal(signal.SIGKILL)  # nothing when it already ended
            rc = proc.wait(timeout=120)
        with open(out + '.err', 'rb') as f:
            text = f.read()
        with open(out, 'rb') as f:
            reply = f.read()
        with open(w.log, 'ab') as f:
            f.write(b'--- %s, %s: exit %d\n' % (args[0].encode(), detail.encode(), rc) + text)
        cc.sanitizer_check(text, '%s (killed run)' % args[0])
        self.dm.runs += 1
        self.stats['attempts'] += args[0] == 'run'
        if rc not in (0, -signal.SIGKILL):
            self.fail('dmclient %s exited %d' % (' '.join(args), rc), '%s, %s' % (w.ctx, detail),
                      text.decode(errors='replace')[-3000:])
        return rc == -signal.SIGKILL, strategy, detail, reply

    def journal_before(self, sd):
        """The journal files a kill left, before anything opens the store:
        what a complete journal must give (path -> content), what one still
        being written must not touch (path -> content now), and whether
        applying had begun."""
        top = os.path.join(sd, 'store')
        data = read_or_none(os.path.join(top, 'journal'))
        must, keep, partial = {}, {}, False
        if data is not None:
            ops, complete = parse_journal(data)
            if not complete:
                raise Failure('store/journal is not a whole journal (seed %d)' % self.seed)
            must = journal_effect(ops)
            done = [p for p, want in must.items() if read_or_none(os.path.join(top, p)) == want]
            partial = 0 < len(done) < len(must)
        tmp = read_or_none(os.path.join(top, 'journal.tmp'))
        if tmp is not None and data is None:
            ops, _complete = parse_journal(tmp)
            keep = {p: read_or_none(os.path.join(top, p)) for p in journal_effect(ops)}
        return must, keep, partial

    def journal_after(self, sd, must, keep, ctx):
        top = os.path.join(sd, 'store')
        wrong = [p for p, want in must.items() if read_or_none(os.path.join(top, p)) != want]
        if wrong:
            self.fail('a complete journal was not applied in full', ctx, 'differ: %s' % wrong)
        touched = [p for p, was in keep.items() if read_or_none(os.path.join(top, p)) != was]
        if touched:
            self.fail('a journal still being written was applied', ctx, 'changed: %s' % touched)

    def recovery_kill(self, sd):
        """Kill the next opener while it replays the journal."""
        proc = subprocess.Popen([self.dm.path, '--state-dir', sd, 'store', 'list'],
                                env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cc.spin_until(time.perf_counter() + self.krng.uniform(0, 1.2 * self.open_time))
        proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        cc.sanitizer_check(err, 'store list (killed run)')
        self.dm.runs += 1
        if proc.returncode == -signal.SIGKILL:
            self.stats['recovery-kills'] += 1
        elif proc.returncode != 0:
            raise Failure('dmclient store list exited %d during recovery: %s' % (
                proc.returncode, err))

    def attempt(self, w, mode, phase):
        """A run killed at a random point, then every check: True when it
        was killed, False when it ended first."""
        killed, strategy, detail, _out = self.kill_cmd(w, ['run', mode, '-v'], RUN_STRATEGIES,
                                                        self.est[phase])
        left = cc.leftovers(w.sd)
        must, keep, partial = self.journal_before(w.sd)
        s = self.stats
        if killed:
            s['kills'] += 1
            st = self.by_strategy.setdefault(strategy, [0, 0])
            st[0] += 1
            s['journal-apply'] += 'journal' in left
            s['journal-write'] += 'journal.tmp' in left and 'journal' not in left
            s['apply-partial'] += partial
            s['record-tmp'] += any(f.startswith(('state/', 'keys/')) for f in left)
            if 'journal' in left and self.krng.random() < 0.3:
                self.recovery_kill(w.sd)
        else:
            s['finished'] += 1
        before = w.obs
        ctx = ', run %s, %s, files in the store at the kill: %s' % (mode, detail,
                                                                    ' '.join(left) or 'none')
        self.check(w, ctx)
        self.journal_after(w.sd, must, keep, w.ctx + ctx)
        if killed:
            moved = w.obs.key(self.enr) != before.key(self.enr)
            s['progress' if moved else 'no-progress'] += 1
            self.by_strategy[strategy][1] += moved
        return killed

    def chain(self, ci):
        budget = self.krng.randint(self.args.chain_kills // 2, self.args.chain_kills)
        w = Walk(self, 'chain-%d' % ci, killing=True, budget=budget)
        got = self.walk(w)
        for kind, (status, ec, _t) in got.items():
            if (status, ec) != self.expected[kind][:2]:
                self.fail('%s ended with Status %d ErrorCode %d, the reference run with %s' % (
                    kind, status, ec, self.expected[kind][:2]), w.ctx)
        for e in self.enr:
            if e.peer_args is not None:
                n = sum(len(seg) for seg in w.segments(e))
                self.stats['resent'] += max(0, n - sum(len(seg) for seg in self.ref_ops[e.kind]))
        self.stats['chains'] += 1
        if not self.args.keep:
            shutil.rmtree(w.sd)
        return w.kills

    def main(self):
        t_start = time.perf_counter()
        log('seed %d (CRASH_SEED=%d repeats the scenario and the kill schedule; kill timing is '
            'real time, so not the exact kill points)' % (self.seed, self.seed))
        log('scenario: %s' % ', '.join('%s %s (%s, RetryCount %d, KeyLength %d)' % (
            e.kind, e.id, e.my, e.retry_count, e.key_length) for e in self.enr))
        self.write_messages()
        self.reference()
        log('reference run: every enrollment ends as the scenario says; first runs: --once '
            '%.2f s, --until-idle %.2f s, after Exec again %.2f s; store open %.1f ms' % (
                self.est['once'], self.est['idle'], self.est['again'], self.open_time * 1e3))
        self.self_test()
        log('self-test: an orphan key, a Challenge put back into a record, a missing key file '
            'and swapped keys are caught')
        ci = 0
        while self.stats['kills'] < self.args.kills:
            ci += 1
            if ci > self.args.max_chains:
                raise Failure('only %d real kills after %d chains (seed %d)' % (
                    self.stats['kills'], ci - 1, self.seed))
            k = self.chain(ci)
            log('chain %d done: %d kills (%d so far), %.1f s' % (
                ci, k, self.stats['kills'], time.perf_counter() - t_start))
        s = self.stats
        # A complete journal must be hit by a tenth of the kills; the window
        # in which only journal.tmp exists holds no sync (the journal is
        # renamed before the barrier that commits it) and lasts
        # microseconds, so a few kills there are enough (docs/testing.md).
        need = max(1, self.args.kills // 10)
        need_write = max(1, self.args.kills // 50)
        if s['journal-write'] < need_write or s['journal-apply'] < need or not s['resent']:
            raise Failure('too few kills where they matter (journal being written %d, want %d; '
                          'with a complete journal %d, want %d; requests sent again %d; seed %d): '
                          'is the scratch directory on tmpfs, where syncs are free and the '
                          'windows last microseconds?' % (s['journal-write'], need_write,
                                                          s['journal-apply'], need, s['resent'],
                                                          self.seed))
        log('kills by strategy (killed, of which the state moved on): %s' % ', '.join(
            '%s %d/%d' % (k, v[0], v[1]) for k, v in sorted(self.by_strategy.items())))
        log('PASS seed %d: %d chains, %d kill attempts, %d real kills (SIGKILL) + %d during '
            'recovery; %d moved the state on, %d did not; killed while writing the journal %d, '
            'with a complete journal (replayed) %d, of which while applying it %d (a record or '
            'key half written %d); %d requests sent again; %d `dmclient process` killed (%d '
            'applied); %d state checks, %d dmclient runs; %.1f s' % (
                self.seed, s['chains'], s['attempts'], s['kills'], s['recovery-kills'],
                s['progress'], s['no-progress'], s['journal-write'], s['journal-apply'],
                s['apply-partial'], s['record-tmp'], s['resent'], s['process-kills'],
                s['process-applied'], s['checks'], self.dm.runs, time.perf_counter() - t_start))


def plan(enrollments):
    for e in enrollments:
        if e.server == 'micromdm':
            print('micromdm micromdm %s' % e.challenge)
        elif e.server:
            print('peer %s %s' % (e.server, ' '.join(e.peer_args + ['-challenge', e.challenge])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--plan', action='store_true', help='print the servers the scenario needs')
    ap.add_argument('--micromdm', action='store_true', help='an enrollment at micromdm scepserver')
    ap.add_argument('--dmclient')
    ap.add_argument('--work', help='an empty scratch directory')
    ap.add_argument('--servers', help='the servers started for --plan')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--kills', type=int, default=100, help='real kills to reach')
    ap.add_argument('--chain-kills', type=int, default=30, help='most kills in one chain')
    ap.add_argument('--max-chains', type=int, default=40)
    ap.add_argument('--keep', action='store_true', help='keep every chain\'s state directory')
    args = ap.parse_args()
    enrollments = build_scenario(args.seed, args.micromdm)
    if args.plan:
        plan(enrollments)
        return 0
    if not (args.dmclient and args.work and args.servers):
        ap.error('--dmclient, --work and --servers are needed')
    os.environ['DMCLIENT_MINUTE_SECONDS'] = '1'
    return cc.run_test(lambda: Test(args, enrollments).main(), args.seed, log)


if __name__ == '__main__':
    sys.exit(main())
