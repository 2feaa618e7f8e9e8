#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""crash_consistency.py - kill -9 test of the certificate store and the engine tree.

Run by tests/scripts/test-crash-consistency.sh (see docs/testing.md, "Crash
consistency").  Python 3 standard library only; needs the openssl CLI.

1. Makes certificates with the openssl CLI (one EC key; some share a subject,
   so CApath names get .1, .2 ...) and notes each one's SHA-1 thumbprint and
   subject hash.
2. Builds a deterministic session (from --seed) of server messages of
   Add/Delete/Replace commands and Atomics (some meant to roll back) on
   Root/System, CA/System, TrustedPeople and My/User, through several of the
   URIs that reach each store, and a model of the store after every message.
3. Reference run: every message once, uninterrupted.  Each reply's Status codes
   must be the model's, and after each message `store check` passes and
   `store list --json` equals the model (so model and real run cross-check).
4. Chains: from an empty state directory, walk the session to the end; most
   messages are first sent to a `dmclient process` that gets SIGKILL at a
   random point (a random delay around the message's measured run time, or
   the moment store/journal.tmp or store/journal appears plus a random delay).
   After each attempt `store check` must pass (opening the store recovers),
   no journal or *.tmp file may be left in the store, and the store (records,
   names, bundles, CApath, checked again here independently of store_check.c)
   must equal the model after the previous message (not applied: the message
   is sent again) or after this one (applied: go on).  Messages sent without a
   kill must get the reference run's Status codes.  At the end the store must
   equal the model's final state.  Chains run until --kills processes were
   really killed (exit by SIGKILL).
5. The engine tree (TreeTest): a tree of ~5,100 leaves (~1 MB) written in the
   previous format (omadm-tree 1), then messages that replace two 1-byte
   leaves each, and sometimes a 96-byte leaf, add a leaf or delete one; the
   first converts the tree to buckets.  `dmclient process` is killed at a
   random moment or when a bucket's or the manifest's temporary file appears;
   after each attempt `dmclient get` of every node the message touches (and
   one it does not) must give the values before the message or after it, all
   of them.  Chains run until --tree-kills real kills.
6. PFX installs (PfxTest): PFX files made by openssl (modern and legacy, a
   chain of two intermediates) installed, re-installed (Replace) and deleted
   through ClientCertificateInstall/PFXCertInstall; `dmclient process` is
   killed at a random moment or when the store journal appears; after each
   attempt `store check` passes, nothing is left over, and every
   certificate (with or without its key) and every {UniqueID}'s Thumbprint
   and Status are as before the message or as after it.  Chains run until
   --pfx-kills real kills.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SYNCML_NS = '{SYNCML:SYNCML1.2}'
SERVER = 'https://dm.example.com/crash-test'
SESSION_ID = '4711'

# store id -> node bases (without /EncodedCertificate) that reach it
STORE_URIS = {
    'root': ['./Vendor/MSFT/CertificateStore/Root/System/{n}',
             './Vendor/MSFT/CertificateStore/Root/{n}',
             './Device/Vendor/MSFT/RootCATrustedCertificates/Root/{n}'],
    'ca': ['./Vendor/MSFT/CertificateStore/CA/System/{n}',
           './Device/Vendor/MSFT/RootCATrustedCertificates/CA/{n}'],
    'trustedpeople': ['./Device/Vendor/MSFT/RootCATrustedCertificates/TrustedPeople/{n}'],
    'my-user': ['./Vendor/MSFT/CertificateStore/My/User/{n}'],
}
STORES = sorted(STORE_URIS)


class Failure(Exception):
    pass


def log(*a):
    print('crash-consistency:', *a, flush=True)


# ---------------------------------------------------------------- certificates

class Cert:
    def __init__(self, idx, der, thumb, subject, subject_hash):
        self.idx = idx
        self.der = der
        self.thumb = thumb
        self.b64 = base64.b64encode(der).decode()
        self.subject = subject
        self.subject_hash = subject_hash


def make_certs(work, count):
    d = os.path.join(work, 'certs')
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, 'key.pem')
    subprocess.run(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-out', key],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    certs = []
    for i in range(count):
        # certificates 0-3 share one subject, 4-5 another: same subject hash
        cn = 'Crash Shared A' if i < 4 else 'Crash Shared B' if i < 6 else 'Crash Test %02d' % i
        subject = '/CN=%s/O=omadm crash test' % cn
        path = os.path.join(d, 'c%02d.der' % i)
        subprocess.run(['openssl', 'req', '-x509', '-new', '-key', key, '-subj', subject,
                        '-set_serial', str(1000 + i), '-days', '3650', '-sha256',
                        '-outform', 'DER', '-out', path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run(['openssl', 'x509', '-inform', 'DER', '-in', path, '-noout',
                              '-fingerprint', '-sha1', '-subject_hash'],
                             check=True, capture_output=True, text=True).stdout
        fp = re.search(r'Fingerprint=([0-9A-Fa-f:]+)', out)
        sh = re.search(r'^([0-9a-f]{8})$', out, re.M)
        if not fp or not sh:
            raise Failure('cannot read thumbprint/subject hash of %s: %r' % (path, out))
        with open(path, 'rb') as f:
            der = f.read()
        thumb = fp.group(1).replace(':', '').upper()
        if hashlib.sha1(der).hexdigest().upper() != thumb:
            raise Failure('openssl thumbprint of %s disagrees with SHA-1 of its DER' % path)
        certs.append(Cert(i, der, thumb, cn, sh.group(1)))
    if len({c.thumb for c in certs}) != count:
        raise Failure('certificates with equal thumbprints')
    return certs


# ------------------------------------------------------------- session + model
#
# A command: {'op': 'Add'|'Delete'|'Replace', 'items': [item, ...]} or
# {'op': 'Atomic', 'children': [single-item command, ...]}.
# An item: {'store', 'uri' (node base), 'name' (node name as sent),
#           'cert' (Cert whose DER is the Data; Add/Replace)}.
# The model state: {(store, THUMB): the name `store list` shows, THUMB}.

def norm_thumb(name):
    return name.upper() if re.fullmatch(r'[0-9A-Fa-f]{40}', name) else None


def item_code(state, op, it):
    """What the CSP answers for one item; updates state (a dict) on success."""
    key = norm_thumb(it['name'])
    present = key is not None and (it['store'], key) in state
    if op == 'Delete':
        if not present:
            return 404
        del state[(it['store'], key)]
        return 200
    if op == 'Add' and present:
        return 418
    if op == 'Replace' and not present:
        return 404
    if it['cert'].thumb != key:
        return 400  # the node name must be the certificate's thumbprint
    if op == 'Add':
        # listed under the upper-case thumbprint whatever the spelling
        # (docs/certificatestore.md); the record keeps the Add's spelling
        state[(it['store'], key)] = key
    return 200


def run_message(state, cmds):
    """Model one message: (new state, expected [(CmdRef, Cmd, code)])."""
    state = dict(state)
    st = [('0', 'SyncHdr', 200)]
    for c in cmds:
        if c['op'] != 'Atomic':
            codes = [item_code(state, c['op'], it) for it in c['items']]
            if len(set(codes)) == 1:
                st.append((c['id'], c['op'], codes[0]))
            else:
                st += [(c['id'], c['op'], code) for code in codes]
            continue
        tent = dict(state)
        child_st, failed = [], False
        for ch in c['children']:
            if failed:
                child_st.append([ch['id'], ch['op'], 215])
                continue
            code = item_code(tent, ch['op'], ch['items'][0])
            failed = code >= 300
            child_st.append([ch['id'], ch['op'], code])
        if failed:
            for s in child_st:
                if s[2] == 200:  # ran and succeeded: rolled back
                    s[2] = 216
        else:
            state = tent
        st.append((c['id'], 'Atomic', 507 if failed else 200))
        st += [tuple(s) for s in child_st]
    return state, st


class SessionGen:
    def __init__(self, rng, certs):
        self.rng = rng
        self.certs = certs
        self.by_thumb = {c.thumb: c for c in certs}

    def pairs(self, state):
        """(store, Cert) in the state, in an order that does not depend on
        the thumbprints (new keys every run): a seed gives one session."""
        return sorted(((s, self.by_thumb[t]) for (s, t) in state), key=lambda p: (p[0], p[1].idx))

    def item(self, store, cert, name=None, data=None):
        r = self.rng
        if name is None:
            name = cert.thumb.lower() if r.random() < 0.2 else cert.thumb
        return {'store': store, 'uri': r.choice(STORE_URIS[store]).format(n=name),
                'name': name, 'cert': data or cert}

    def add(self, state, ok=True):
        r = self.rng
        store = r.choice(STORES)
        absent = [c for c in self.certs if (store, c.thumb) not in state]
        present = [c for c in self.certs if (store, c.thumb) in state]
        if ok and absent:
            return {'op': 'Add', 'items': [self.item(store, r.choice(absent))]}
        if present and r.random() < 0.4:
            return {'op': 'Add', 'items': [self.item(store, r.choice(present))]}  # 418
        # 400: the node is named after another (absent) certificate
        c, other = r.sample(absent if len(absent) >= 2 else self.certs, 2)
        return {'op': 'Add', 'items': [self.item(store, other, data=c)]}

    def delete(self, state, ok=True):
        r = self.rng
        pairs = self.pairs(state)
        if ok and pairs:
            store, cert = r.choice(pairs)
            return {'op': 'Delete', 'items': [self.item(store, cert)]}
        store = r.choice(STORES)
        absent = [c for c in self.certs if (store, c.thumb) not in state]
        if not absent:
            return self.add(state, ok=False)
        return {'op': 'Delete', 'items': [self.item(store, r.choice(absent))]}  # 404

    def replace(self, state):
        pairs = self.pairs(state)
        if not pairs:
            return self.add(state)
        store, cert = self.rng.choice(pairs)
        return {'op': 'Replace', 'items': [self.item(store, cert)]}

    def multi_add(self, state):
        r = self.rng
        store = r.choice(STORES)
        absent = [c for c in self.certs if (store, c.thumb) not in state]
        if len(absent) < 2:
            return self.add(state)
        picked = r.sample(absent, min(len(absent), r.randint(2, 3)))
        return {'op': 'Add', 'items': [self.item(store, c) for c in picked]}

    def simple(self, state):
        r = self.rng
        fill = len(state)
        x = r.random()
        if x < 0.05:
            return self.replace(state)
        if x < 0.10:
            return self.multi_add(state)
        if x < 0.18:
            return self.add(state, ok=False) if r.random() < 0.5 else self.delete(state, ok=False)
        p_add = 0.7 if fill < 30 else 0.45 if fill < 60 else 0.25
        return self.add(state) if r.random() < p_add else self.delete(state)

    def atomic(self, state, succeed):
        r = self.rng
        tent = dict(state)
        children = []
        for _ in range(r.randint(2, 4)):
            c = self.add(tent) if r.random() < 0.6 else self.delete(tent)
            if len(c['items']) != 1:
                continue
            if item_code(tent, c['op'], c['items'][0]) >= 300:
                continue  # a child that fails by accident: leave it out
            children.append(c)
        if not succeed:
            # the last child fails: a bad thumbprint (400), an existing
            # certificate (418) or an absent one to delete (404)
            x = r.random()
            children.append(self.add(tent, ok=False) if x < 0.75 else self.delete(tent, ok=False))
            if r.random() < 0.3:  # and one more after it, skipped (215)
                children.append(self.add(tent))
        return {'op': 'Atomic', 'children': children}

    def message(self, i, state):
        r = self.rng
        cmds = []
        tent = dict(state)

        def push(c):
            cmds.append(c)
            renumber(cmds)
            tent.clear()
            tent.update(run_message(tent_before, cmds)[0])

        tent_before = dict(state)
        if i == 0:
            for _ in range(10):
                push(self.add(tent))
        for _ in range(r.randint(2, 5)):
            push(self.simple(tent))
        kind = i % 8
        if kind in (1, 5):
            push(self.atomic(tent, succeed=True))
        if kind in (3, 6):
            push(self.atomic(tent, succeed=False))
        if kind == 4:
            # a certificate added and deleted in the same message
            c = self.add(tent)
            if len(c['items']) == 1 and item_code(dict(tent), 'Add', c['items'][0]) == 200:
                it = c['items'][0]
                push(c)
                push({'op': 'Delete', 'items': [self.item(it['store'], it['cert'])]})
        if kind == 7 and tent:
            # deleted and added again in the same message
            d = self.delete(tent)
            push(d)
            it = d['items'][0]
            push({'op': 'Add', 'items': [self.item(it['store'], it['cert'])]})
        return cmds


def renumber(cmds):
    """CmdIDs 1, 2 ... in document order (an Atomic before its children)."""
    n = 0

    def number(c):
        nonlocal n
        n += 1
        c['id'] = str(n)
        for ch in c.get('children', []):
            number(ch)
    for c in cmds:
        number(c)


def build_session(rng, certs, n_messages):
    gen = SessionGen(rng, certs)
    msgs, states, expected = [], [{}], []
    for i in range(n_messages):
        cmds = gen.message(i, states[-1])
        renumber(cmds)
        st, exp = run_message(states[-1], cmds)
        msgs.append(cmds)
        states.append(st)
        expected.append(exp)
    return msgs, states, expected


def xml_escape(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def render_cmd(c):
    if c['op'] == 'Atomic':
        return '<Atomic><CmdID>%s</CmdID>%s</Atomic>' % (
            c['id'], ''.join(render_cmd(ch) for ch in c['children']))
    items = []
    for it in c['items']:
        if c['op'] == 'Delete':
            items.append('<Item><Target><LocURI>%s</LocURI></Target></Item>' % xml_escape(it['uri']))
        else:
            items.append('<Item><Target><LocURI>%s/EncodedCertificate</LocURI></Target>'
                         '<Meta><Format xmlns="syncml:metinf">b64</Format></Meta>'
                         '<Data>%s</Data></Item>' % (xml_escape(it['uri']), it['cert'].b64))
    return '<%s><CmdID>%s</CmdID>%s</%s>' % (c['op'], c['id'], ''.join(items), c['op'])


def render_message(msg_id, cmds):
    return ('<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
            '<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>'
            '<Target><LocURI>omadm-device</LocURI></Target>'
            '<Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>\n%s\n<Final/>'
            '</SyncBody></SyncML>\n' % (SESSION_ID, msg_id, SERVER,
                                         '\n'.join(render_cmd(c) for c in cmds)))


def session_stats(msgs):
    n_add_del = n_atomic = n_cmds = 0
    for cmds in msgs:
        for c in cmds:
            n_cmds += 1
            if c['op'] == 'Atomic':
                n_atomic += 1
                n_add_del += sum(ch['op'] in ('Add', 'Delete') for ch in c['children'])
            elif c['op'] in ('Add', 'Delete'):
                n_add_del += 1
    return n_cmds, n_add_del, n_atomic


# ------------------------------------------------------------------- dmclient

class Dm:
    def __init__(self, path):
        self.path = path
        self.env = dict(os.environ)
        # a process killed by SIGKILL never reaches LeakSanitizer, but one
        # that finished just before the kill would: killed runs only
        self.kill_env = dict(os.environ)
        opts = self.kill_env.get('ASAN_OPTIONS', '')
        self.kill_env['ASAN_OPTIONS'] = (opts + ':' if opts else '') + 'detect_leaks=0'
        self.runs = 0

    def run(self, sd, *args, ok=(0,)):
        self.runs += 1
        p = subprocess.run([self.path, '--state-dir', sd] + list(args), env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        sanitizer_check(p.stderr, ' '.join(args))
        if p.returncode not in ok:
            raise Failure('dmclient %s exited %d\nstdout: %s\nstderr: %s' % (
                ' '.join(args), p.returncode, p.stdout.decode(errors='replace')[-2000:],
                p.stderr.decode(errors='replace')[-2000:]))
        return p


def spin_until(t):
    """Wait until time.perf_counter() reaches t: sleep, then spin the last
    1.5 ms (a sleep alone overshoots by more than a kill window)."""
    while True:
        now = time.perf_counter()
        if now >= t:
            return
        if t - now > 0.002:
            time.sleep(t - now - 0.0015)


def sanitizer_check(stderr, what):
    text = stderr.decode(errors='replace') if isinstance(stderr, bytes) else stderr
    if re.search(r'Sanitizer|runtime error:', text):
        raise Failure('sanitizer report from dmclient %s:\n%s' % (what, text[-4000:]))


def parse_statuses(reply):
    root = ET.fromstring(reply)
    body = root.find(SYNCML_NS + 'SyncBody')
    out = []
    for s in body.findall(SYNCML_NS + 'Status'):
        out.append((s.findtext(SYNCML_NS + 'CmdRef'), s.findtext(SYNCML_NS + 'Cmd'),
                    int(s.findtext(SYNCML_NS + 'Data'))))
    return out


def list_store(dm, sd):
    p = dm.run(sd, 'store', 'list', '--json')
    got = {}
    for r in json.loads(p.stdout.decode()):
        got[(r['store'], r['thumbprint'])] = r['name']
    return got


def check_store(dm, sd):
    p = dm.run(sd, 'store', 'check', ok=(0, 1))
    if p.returncode != 0 or b'is consistent' not in p.stdout:
        raise Failure('store check failed:\n%s%s' % (p.stdout.decode(errors='replace'),
                                                    p.stderr.decode(errors='replace')))


def leftovers(sd):
    """journal, journal.tmp and other *.tmp files in the store."""
    found = []
    top = os.path.join(sd, 'store')
    for root, _dirs, files in os.walk(top):
        for f in files:
            if f == 'journal' or f.endswith('.tmp'):
                found.append(os.path.relpath(os.path.join(root, f), top))
    return sorted(found)


PEM_RE = re.compile(rb'-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+?)-----END CERTIFICATE-----')


def pem_thumbs(data):
    return [hashlib.sha1(base64.b64decode(b''.join(m.group(1).split()))).hexdigest().upper()
            for m in PEM_RE.finditer(data)]


def independent_check(sd, got, certs):
    """The files on disk agree with the listed state, checked here without
    store_check.c: records, bundles, CApath names and contents, no keys."""
    by_thumb = {c.thumb: c for c in certs}
    top = os.path.join(sd, 'store')
    problems = []
    kinds = sorted(os.listdir(os.path.join(top, 'certs')))
    for k in kinds:
        want = sorted(t for (s, t) in got if s == k)
        recs = sorted(os.listdir(os.path.join(top, 'certs', k)))
        if recs != want:
            problems.append('%s: record files %s, listed %s' % (k, recs, want))
        bundle = os.path.join(top, 'trust', k + '.pem')
        if not os.path.exists(bundle):
            continue
        with open(bundle, 'rb') as f:
            in_bundle = sorted(pem_thumbs(f.read()))
        if in_bundle != want:
            problems.append('%s: bundle holds %s, listed %s' % (k, in_bundle, want))
        capath = os.path.join(top, 'trust', k)
        groups, in_capath = {}, []
        for name in os.listdir(capath):
            m = re.fullmatch(r'([0-9a-f]{8})\.(\d+)', name)
            if not m:
                problems.append('%s: CApath file %s' % (k, name))
                continue
            with open(os.path.join(capath, name), 'rb') as f:
                ts = pem_thumbs(f.read())
            if len(ts) != 1:
                problems.append('%s: CApath file %s holds %d certificates' % (k, name, len(ts)))
                continue
            in_capath.append(ts[0])
            groups.setdefault(m.group(1), []).append(int(m.group(2)))
            c = by_thumb.get(ts[0])
            if not c or c.subject_hash != m.group(1):
                problems.append('%s: CApath file %s holds %s, whose subject hash is %s' % (
                    k, name, ts[0], c.subject_hash if c else '?'))
        for h, idx in groups.items():
            if sorted(idx) != list(range(len(idx))):
                problems.append('%s: CApath %s.* indices %s' % (k, h, sorted(idx)))
        if sorted(in_capath) != want:
            problems.append('%s: CApath holds %s, listed %s' % (k, sorted(in_capath), want))
    keys = os.listdir(os.path.join(top, 'keys'))
    if keys:
        problems.append('unexpected key files %s' % keys)
    return problems


def fmt_state(state):
    return ['%s %s %s' % (s, t, n) for (s, t), n in sorted(state.items())]


def state_diff(got, want):
    g, w = set(fmt_state(got)), set(fmt_state(want))
    return ['  missing  ' + x for x in sorted(w - g)] + ['  extra    ' + x for x in sorted(g - w)]


# ------------------------------------------------------------------ the test

class Test:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.dm = Dm(args.dmclient)
        self.work = args.work
        self.krng = random.Random('kills-%d' % args.seed)
        self.stats = {'attempts': 0, 'kills': 0, 'finished': 0, 'applied': 0,
                      'not-applied': 0, 'no-change': 0, 'at-journal-write': 0,
                      'at-journal-apply': 0, 'tmp-files': 0, 'recovery-kills': 0,
                      'chains': 0, 'resent': 0}
        self.by_strategy = {}

    def msg_path(self, k):
        return os.path.join(self.work, 'msg', '%03d.xml' % k)

    def fail(self, what, k, ctx, detail):
        raise Failure('%s at message %d (seed %d%s)\n%s' % (what, k, self.seed, ctx, detail))

    def verify(self, sd, k, ctx):
        """store check, no leftovers, state == model after k-1 or k.
        Returns True when message k is in the store."""
        try:
            check_store(self.dm, sd)
        except Failure as e:
            self.fail('store check failed', k, ctx, str(e))
        left = leftovers(sd)
        if left:
            self.fail('files left after recovery', k, ctx, '  ' + '\n  '.join(left))
        got = list_store(self.dm, sd)
        problems = independent_check(sd, got, self.certs)
        if problems:
            self.fail('store files disagree with the listing', k, ctx, '\n'.join(problems))
        if got == self.states[k]:
            return True
        if got == self.states[k - 1]:
            return False
        self.fail('the store is neither the state before nor the state after the message', k, ctx,
                  'against the state after message %d:\n%s\nagainst the state after message %d:\n%s'
                  % (k - 1, '\n'.join(state_diff(got, self.states[k - 1])), k,
                     '\n'.join(state_diff(got, self.states[k]))))

    def process(self, sd, k, ctx):
        p = self.dm.run(sd, 'process', self.msg_path(k))
        got = parse_statuses(p.stdout)
        if got != self.expected[k - 1]:
            self.fail('unexpected Status codes', k, ctx, self.status_diff(got, self.expected[k - 1]))

    @staticmethod
    def status_diff(got, want):
        lines = []
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else None
            w = want[i] if i < len(want) else None
            lines.append('  %s %-28s model %s' % ('  ' if g == w else '!!', g, w))
        return '\n'.join(lines)

    # -- reference run

    def reference(self):
        sd = os.path.join(self.work, 'reference')
        self.durations = []
        for k in range(1, len(self.msgs) + 1):
            t = time.perf_counter()
            self.process(sd, k, ', reference run')
            self.durations.append(time.perf_counter() - t)
            if not self.verify(sd, k, ', reference run') and self.states[k] != self.states[k - 1]:
                self.fail('reference run: store is the state before the message', k, '', '')
        t = time.perf_counter()
        for _ in range(5):
            self.dm.run(sd, 'store', 'list')
        self.open_time = (time.perf_counter() - t) / 5
        self.reference_dir = sd

    def self_test(self):
        """store check and the independent check catch a broken bundle or
        CApath; a torn journal is dropped, a stale journal.tmp removed."""
        src = self.reference_dir
        final = self.states[-1]
        store = max(('root', 'ca', 'trustedpeople'),
                    key=lambda s: sum(1 for (st, _t) in final if st == s))
        if sum(1 for (st, _t) in final if st == store) < 2:
            raise Failure('self-test needs a trust store with two certificates (seed %d)' % self.seed)

        def broken(name, mutate):
            sd = os.path.join(self.work, 'selftest-' + name)
            shutil.copytree(src, sd)
            mutate(os.path.join(sd, 'store'))
            p = self.dm.run(sd, 'store', 'check', ok=(0, 1))
            got = list_store(self.dm, sd)
            if p.returncode == 0 or not independent_check(sd, got, self.certs):
                raise Failure('self-test: %s is not detected (store check exit %d)' % (name, p.returncode))
            shutil.rmtree(sd)

        def drop_capath(top):
            d = os.path.join(top, 'trust', store)
            os.unlink(os.path.join(d, sorted(os.listdir(d))[0]))

        def blank_bundle(top):
            # as a Delete blanks a block, but with the record left in place
            p = os.path.join(top, 'trust', store + '.pem')
            with open(p, 'rb') as f:
                data = f.read()
            m = list(PEM_RE.finditer(data))[-1]
            blank = re.sub(rb'[^\n]', b' ', m.group(0))
            with open(p, 'wb') as f:
                f.write(data[:m.start()] + blank + data[m.end():])

        def drop_record(top):
            d = os.path.join(top, 'certs', store)
            os.unlink(os.path.join(d, sorted(os.listdir(d))[0]))

        broken('missing-capath-file', drop_capath)
        broken('blanked-bundle', blank_bundle)
        broken('missing-record', drop_record)

        sd = os.path.join(self.work, 'selftest-torn-journal')
        shutil.copytree(src, sd)
        rec = 'certs/%s/%s' % (store, 'A' * 40)
        with open(os.path.join(sd, 'store', 'journal'), 'wb') as f:
            f.write(b'omadm-journal 1\nW 644 5 %s\nhello\nU certs/%s\n' % (
                rec.encode(), sorted(t for (s, t) in final if s == store)[0].encode()))
        with open(os.path.join(sd, 'store', 'journal.tmp'), 'wb') as f:
            f.write(b'omadm-journal 1\n')
        if not self.verify(sd, len(self.msgs), ', self-test torn journal'):
            raise Failure('self-test: a torn journal changed the store')
        shutil.rmtree(sd)

    # -- kill attempts

    def kill_attempt(self, sd, k, chain):
        r = self.krng
        dur = self.durations[k - 1]
        strategy = r.choices(['early', 'uniform', 'late', 'journal.tmp', 'journal'],
                             weights=[5, 25, 15, 25, 30])[0]
        out = os.path.join(self.work, 'killed.out')
        with open(out, 'wb') as fo, open(out + '.err', 'wb') as fe:
            proc = subprocess.Popen([self.dm.path, '--state-dir', sd, 'process', self.msg_path(k)],
                                    env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                    stdout=fo, stderr=fe)
            t0 = time.perf_counter()
            if strategy in ('early', 'uniform', 'late'):
                if strategy == 'early':
                    delay = 10 ** r.uniform(-5, -2.5)  # 10 us .. 3 ms
                else:
                    lo, hi = (0.0, 1.25 * dur) if strategy == 'uniform' else (0.5 * dur, 1.1 * dur)
                    delay = r.uniform(lo, hi)
                spin_until(t0 + delay)
                detail = 'SIGKILL %.3f ms after start' % (delay * 1e3)
            else:
                watch = os.path.join(sd, 'store', strategy)
                extra = r.uniform(0, 0.00003 if strategy == 'journal.tmp' else 0.0015)
                seen, i = False, 0
                while True:
                    if os.path.exists(watch):
                        seen = True
                        break
                    i += 1
                    if (i & 15) == 0 and (proc.poll() is not None or time.perf_counter() - t0 > 30):
                        break
                if seen:
                    spin_until(time.perf_counter() + extra)
                detail = 'SIGKILL %.3f ms after %s appeared' % (extra * 1e3, strategy) if seen \
                    else '%s never seen' % strategy
            proc.send_signal(signal.SIGKILL)  # nothing when it already ended
            rc = proc.wait(timeout=120)
        with open(out + '.err', 'rb') as f:
            sanitizer_check(f.read(), 'process (killed run)')
        self.dm.runs += 1
        self.stats['attempts'] += 1
        killed = rc == -signal.SIGKILL
        ctx = ', chain %d, %s, %s' % (chain, strategy, detail)
        if not killed and rc != 0:
            self.fail('dmclient process exited %d' % rc, k, ctx, open(out + '.err').read())
        left = leftovers(sd)
        journal = 'journal' in left
        writing = 'journal.tmp' in left and not journal
        changes = self.states[k] != self.states[k - 1]
        if killed:
            self.stats['kills'] += 1
            st = self.by_strategy.setdefault(strategy, [0, 0])
            st[0] += 1
            self.stats['at-journal-apply'] += journal
            self.stats['at-journal-write'] += writing
            self.stats['tmp-files'] += any(f.endswith('.tmp') and f != 'journal.tmp' for f in left)
            if journal and r.random() < 0.3:
                self.recovery_kill(sd)
        else:
            self.stats['finished'] += 1
            with open(out, 'rb') as f:
                got = parse_statuses(f.read())
            if got != self.expected[k - 1]:
                self.fail('unexpected Status codes', k, ctx, self.status_diff(got, self.expected[k - 1]))
        applied = self.verify(sd, k, ctx + ', files in the store after the kill: %s' % (
            ' '.join(left) or 'none'))
        if journal and changes and not applied:
            self.fail('a complete journal was found but its message is not in the store', k, ctx,
                      'files in the store after the kill: %s' % ' '.join(left))
        if writing and changes and applied:
            self.fail('the journal was still being written but the message is in the store', k,
                      ctx, 'files in the store after the kill: %s' % ' '.join(left))
        if not killed and changes and not applied:
            self.fail('process finished but its message is not in the store', k, ctx, '')
        if killed:
            if not changes:
                self.stats['no-change'] += 1
            elif applied:
                self.stats['applied'] += 1
                self.by_strategy[strategy][1] += 1
            else:
                self.stats['not-applied'] += 1
        return applied or not changes

    def recovery_kill(self, sd):
        """Kill the next opener while it replays the journal."""
        proc = subprocess.Popen([self.dm.path, '--state-dir', sd, 'store', 'list'],
                                env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        spin_until(time.perf_counter() + self.krng.uniform(0, 1.2 * self.open_time))
        proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        sanitizer_check(err, 'store list (killed run)')
        self.dm.runs += 1
        if proc.returncode == -signal.SIGKILL:
            self.stats['recovery-kills'] += 1
        elif proc.returncode != 0:
            raise Failure('dmclient store list exited %d during recovery: %s' % (proc.returncode, err))

    def chain(self, ci):
        sd = os.path.join(self.work, 'chain')
        shutil.rmtree(sd, ignore_errors=True)
        # the device's state directory: a process killed before it made it
        # leaves the store to be checked (a command that only reads makes no
        # state directory)
        os.makedirs(sd)
        r = self.krng
        n = len(self.msgs)
        for k in range(1, n + 1):
            tries = 0
            while True:
                if tries >= 6 or r.random() > self.args.kill_ratio:
                    self.process(sd, k, ', chain %d, sent without a kill%s' % (
                        ci, ' (again)' if tries else ''))
                    if tries:
                        self.stats['resent'] += 1
                    break
                tries += 1
                if self.kill_attempt(sd, k, ci):
                    break
            if r.random() < 0.05 and not self.verify(sd, k, ', chain %d' % ci) \
                    and self.states[k] != self.states[k - 1]:
                self.fail('message sent without a kill is not in the store', k, ', chain %d' % ci, '')
        if not self.verify(sd, n, ', chain %d, end of the session' % ci):
            self.fail('end of the session: the last message is missing', n, ', chain %d' % ci,
                      '\n'.join(state_diff(list_store(self.dm, sd), self.states[n])))
        self.stats['chains'] += 1

    def main(self):
        t_start = time.perf_counter()
        log('seed %d (CRASH_SEED=%d repeats the session and the kill schedule; kill timing is '
            'real time, so not the exact kill points)' % (self.seed, self.seed))
        self.certs = make_certs(self.work, self.args.certs)
        srng = random.Random('session-%d' % self.seed)
        self.msgs, self.states, self.expected = build_session(srng, self.certs, self.args.messages)
        os.makedirs(os.path.join(self.work, 'msg'), exist_ok=True)
        for k, cmds in enumerate(self.msgs, 1):
            with open(self.msg_path(k), 'w') as f:
                f.write(render_message(k, cmds))
        n_cmds, n_add_del, n_atomic = session_stats(self.msgs)
        atomic_codes = [s[2] for exp in self.expected for s in exp if s[1] == 'Atomic']
        log('session: %d messages, %d commands, %d Add/Delete, %d Atomics (%d commit, %d roll '
            'back), %d certificates at the end' % (
                len(self.msgs), n_cmds, n_add_del, n_atomic, atomic_codes.count(200),
                atomic_codes.count(507), len(self.states[-1])))
        if n_add_del < 200 or atomic_codes.count(200) < 3 or atomic_codes.count(507) < 3:
            raise Failure('the session is too small (seed %d)' % self.seed)
        self.reference()
        log('reference run: replies and store states agree with the model; median process '
            '%.1f ms, store open %.1f ms' % (sorted(self.durations)[len(self.durations) // 2] * 1e3,
                                             self.open_time * 1e3))
        self.self_test()
        log('self-test: store check and the independent check catch a missing CApath file, a '
            'blanked bundle block and a missing record; a torn journal is dropped')
        ci = 0
        while self.stats['kills'] < self.args.kills:
            ci += 1
            if ci > self.args.max_chains:
                raise Failure('only %d real kills after %d chains (seed %d)' % (
                    self.stats['kills'], ci - 1, self.seed))
            self.chain(ci)
            log('chain %d done: %d kills so far' % (ci, self.stats['kills']))
        s = self.stats
        need = max(1, self.args.kills // 10)
        # The journal is written into the page cache and renamed before the
        # barrier, so the window in which only journal.tmp exists lasts
        # microseconds and few kills land in it (failures inside it are
        # covered one by one by tests/unit/test_store_io.c); the barrier and
        # the apply are the window that must be hit.
        if s['at-journal-apply'] < need:
            raise Failure('too few kills inside the journal window (%d with a complete journal; '
                          'want %d; seed %d): is the scratch directory on tmpfs, where syncs are '
                          'free and the window lasts microseconds?' % (
                              s['at-journal-apply'], need, self.seed))
        log('kills by strategy (killed, of which applied): %s' % ', '.join(
            '%s %d/%d' % (k, v[0], v[1]) for k, v in sorted(self.by_strategy.items())))
        log('PASS seed %d: %d chains, %d kill attempts, %d real kills (SIGKILL) + %d during '
            'recovery; %d applied, %d not applied, %d on messages without changes; killed while '
            'writing the journal %d, with a complete journal (replayed) %d, with *.tmp files %d; '
            '%d dmclient runs; %.1f s' % (
                self.seed, s['chains'], s['attempts'], s['kills'], s['recovery-kills'],
                s['applied'], s['not-applied'], s['no-change'], s['at-journal-write'],
                s['at-journal-apply'], s['tmp-files'], self.dm.runs,
                time.perf_counter() - t_start))


# ------------------------------------------------------------ the engine tree
#
# A tree of the previous format (omadm-tree 1) is written into the state
# directory: ./Big/G<g>/L<l> leaves of 96 bytes and a 1-byte ./Big/G<g>/F per
# group.  Each message replaces two 1-byte leaves, and sometimes a big leaf,
# adds a leaf or deletes one; the first one converts the tree to buckets.
# After every attempt the nodes the message touches must all read as before
# it or all as after it (dmclient get), and the tree must load.

TREE_GROUPS = 100
TREE_LEAVES = 50
TREE_VALUE = 96


def tree_value(g, l, salt=0):
    return ''.join(chr(ord('a') + (g * 7 + l * 13 + k + salt) % 26) for k in range(TREE_VALUE))


def write_v1_tree(sd):
    os.makedirs(sd, exist_ok=True)
    lines = ['omadm-tree 1', './Big\tI\t-\t-\t-\t-\t994869497\t0\t-']
    model = {}
    for g in range(TREE_GROUPS):
        lines.append('./Big/G%d\tI\t-\t-\t-\t-\t994869497\t0\t-' % g)
        for l in range(TREE_LEAVES):
            v = tree_value(g, l)
            model['./Big/G%d/L%d' % (g, l)] = v
            lines.append('./Big/G%d/L%d\tL\tchr\t-\t-\t-\t994869497\t1\t%s' % (
                g, l, base64.b64encode(v.encode()).decode()))
        model['./Big/G%d/F' % g] = '0'
        lines.append('./Big/G%d/F\tL\tchr\t-\t-\t-\t994869497\t1\tMA==' % g)
    with open(os.path.join(sd, 'tree'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return model


def build_tree_session(rng, model, n):
    """Messages (lists of commands) and the model after each one."""
    msgs, states = [], [dict(model)]
    cur = dict(model)
    for k in range(1, n + 1):
        cmds = []
        for g in rng.sample(range(TREE_GROUPS), 2):
            cmds.append(('Replace', './Big/G%d/F' % g, str(rng.randrange(10))))
        if rng.random() < 0.5:
            g, l = rng.randrange(TREE_GROUPS), rng.randrange(TREE_LEAVES)
            uri = './Big/G%d/L%d' % (g, l)
            if uri in cur:
                cmds.append(('Replace', uri, tree_value(g, l, k)))
        if rng.random() < 0.3:
            cmds.append(('Add', './Big/G%d/N%d' % (rng.randrange(TREE_GROUPS), k), 'new %d' % k))
        if rng.random() < 0.3:
            uri = rng.choice(sorted(u for u in cur if '/L' in u))
            if all(c[1] != uri for c in cmds):
                cmds.append(('Delete', uri, None))
        for op, uri, v in cmds:
            if op == 'Delete':
                del cur[uri]
            else:
                cur[uri] = v
        msgs.append(cmds)
        states.append(dict(cur))
    return msgs, states


def render_tree_message(msg_id, cmds):
    body = []
    for i, (op, uri, v) in enumerate(cmds, 1):
        item = '<Target><LocURI>%s</LocURI></Target>' % uri
        if v is not None:
            item += ('<Meta><Format xmlns="syncml:metinf">chr</Format></Meta><Data>%s</Data>'
                     % xml_escape(v))
        body.append('<%s><CmdID>%d</CmdID><Item>%s</Item></%s>' % (op, i, item, op))
    return ('<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2'
            '</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID><Target><LocURI>omadm-device'
            '</LocURI></Target><Source><LocURI>%s</LocURI></Source></SyncHdr><SyncBody>%s'
            '<Final/></SyncBody></SyncML>' % (SESSION_ID, msg_id, SERVER, ''.join(body)))


class TreeTest:
    def __init__(self, args, dm, work):
        self.args = args
        self.seed = args.seed
        self.dm = dm
        self.work = os.path.join(work, 'tree')
        self.krng = random.Random('tree-kills-%d' % args.seed)
        self.stats = {'attempts': 0, 'kills': 0, 'applied': 0, 'not-applied': 0, 'chains': 0,
                      'converting-kills': 0}
        self.by_strategy = {}

    def msg_path(self, k):
        return os.path.join(self.work, 'msg', '%03d.xml' % k)

    def fail(self, what, k, ctx, detail=''):
        raise Failure('tree: %s at message %d (seed %d%s)\n%s' % (what, k, self.seed, ctx, detail))

    def read(self, sd, uris):
        got = {}
        for uri in uris:
            p = self.dm.run(sd, 'get', uri, ok=(0, 1))
            if p.returncode == 0:
                out = p.stdout.decode()
                got[uri] = out[:-1] if out.endswith('\n') else out
            elif b'node not found' in p.stderr:
                got[uri] = None
            else:
                raise Failure('dmclient get %s failed: %s' % (uri, p.stderr.decode(errors='replace')))
        return got

    def verify(self, sd, k, ctx):
        """The nodes message k touches read as before it or after it, all of
        them; True when after."""
        uris = sorted({c[1] for c in self.msgs[k - 1]})
        # one untouched node: the rest of the tree is there too
        uris.append('./Big/G%d/L%d' % (k % TREE_GROUPS, (k * 7) % TREE_LEAVES))
        got = self.read(sd, uris)
        after = {u: self.states[k].get(u) for u in uris}
        before = {u: self.states[k - 1].get(u) for u in uris}
        if got == after:
            return True
        if got == before:
            return False
        self.fail('the tree is neither the one before nor the one after the message', k, ctx,
                  '\n'.join('  %s: got %r, before %r, after %r' % (u, got[u], before[u], after[u])
                            for u in uris))

    def process(self, sd, k, ctx):
        p = self.dm.run(sd, 'process', self.msg_path(k))
        codes = [c for (_ref, cmd, c) in parse_statuses(p.stdout) if cmd != 'SyncHdr']
        if codes != [200] * len(self.msgs[k - 1]):
            self.fail('unexpected Status codes %s' % codes, k, ctx)

    def kill_attempt(self, sd, k, chain):
        r = self.krng
        dur = self.durations[k - 1]
        strategy = r.choices(['early', 'uniform', 'late', 'bucket.tmp', 'manifest.tmp'],
                             weights=[5, 25, 20, 30, 20])[0]
        proc = subprocess.Popen([self.dm.path, '--state-dir', sd, 'process', self.msg_path(k)],
                                env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.perf_counter()
        if strategy in ('early', 'uniform', 'late'):
            if strategy == 'early':
                delay = 10 ** r.uniform(-5, -2.5)
            else:
                lo, hi = (0.0, 1.25 * dur) if strategy == 'uniform' else (0.6 * dur, 1.05 * dur)
                delay = r.uniform(lo, hi)
            spin_until(t0 + delay)
            detail = 'SIGKILL %.3f ms after start' % (delay * 1e3)
        else:
            extra = r.uniform(0, 0.0015)
            seen, i = False, 0
            manifest = os.path.join(sd, '.tree.tmp')
            while not seen:
                if strategy == 'manifest.tmp':
                    seen = os.path.exists(manifest)
                else:
                    seen = any(f.startswith('.tree.') and f.endswith('.tmp') and f != '.tree.tmp'
                               for f in os.listdir(sd))
                i += 1
                if not seen and (i & 7) == 0 and (proc.poll() is not None or
                                                  time.perf_counter() - t0 > 30):
                    break
            if seen:
                spin_until(time.perf_counter() + extra)
            detail = ('SIGKILL %.3f ms after a %s appeared' % (extra * 1e3, strategy) if seen
                      else '%s never seen' % strategy)
        proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        sanitizer_check(err, 'process (killed run)')
        self.dm.runs += 1
        self.stats['attempts'] += 1
        killed = proc.returncode == -signal.SIGKILL
        ctx = ', tree chain %d, %s, %s' % (chain, strategy, detail)
        if not killed and proc.returncode != 0:
            self.fail('dmclient process exited %d' % proc.returncode, k, ctx, err.decode())
        applied = self.verify(sd, k, ctx)
        if not killed and not applied:
            self.fail('process finished but its message is not in the tree', k, ctx)
        if killed:
            self.stats['kills'] += 1
            self.stats['converting-kills'] += k == 1
            st = self.by_strategy.setdefault(strategy, [0, 0])
            st[0] += 1
            st[1] += applied
            self.stats['applied' if applied else 'not-applied'] += 1
        return applied

    def chain(self, ci):
        sd = os.path.join(self.work, 'chain')
        shutil.rmtree(sd, ignore_errors=True)
        shutil.copytree(self.initial, sd)
        r = self.krng
        n = len(self.msgs)
        for k in range(1, n + 1):
            tries = 0
            while True:
                if tries >= 6 or r.random() > self.args.kill_ratio:
                    self.process(sd, k, ', tree chain %d, sent without a kill' % ci)
                    if not self.verify(sd, k, ', tree chain %d' % ci):
                        self.fail('message sent without a kill is not in the tree', k,
                                  ', tree chain %d' % ci)
                    break
                tries += 1
                if self.kill_attempt(sd, k, ci):
                    break
        # the whole tree at the end
        final = self.states[n]
        got = self.read(sd, ['./Big/G%d' % g for g in range(0, TREE_GROUPS, 9)])
        for g in range(0, TREE_GROUPS, 9):
            want = sorted(u.rsplit('/', 1)[1] for u in final if u.startswith('./Big/G%d/' % g))
            if sorted((got['./Big/G%d' % g] or '').split('/')) != want:
                self.fail('children of ./Big/G%d differ at the end' % g, n, ', tree chain %d' % ci)
        self.stats['chains'] += 1

    def main(self):
        t_start = time.perf_counter()
        os.makedirs(os.path.join(self.work, 'msg'), exist_ok=True)
        self.initial = os.path.join(self.work, 'initial')
        model = write_v1_tree(self.initial)
        size = os.path.getsize(os.path.join(self.initial, 'tree'))
        srng = random.Random('tree-session-%d' % self.seed)
        self.msgs, self.states = build_tree_session(srng, model, self.args.tree_messages)
        for k, cmds in enumerate(self.msgs, 1):
            with open(self.msg_path(k), 'w') as f:
                f.write(render_tree_message(k, cmds))
        log('tree: %d messages of %d commands on a tree of %d nodes (%d bytes as omadm-tree 1); '
            'the first converts it' % (len(self.msgs), sum(len(m) for m in self.msgs), len(model),
                                      size))
        ref = os.path.join(self.work, 'reference')
        shutil.copytree(self.initial, ref)
        self.durations = []
        for k in range(1, len(self.msgs) + 1):
            t = time.perf_counter()
            self.process(ref, k, ', reference run')
            self.durations.append(time.perf_counter() - t)
            if not self.verify(ref, k, ', reference run'):
                self.fail('reference run: the message is not in the tree', k, '')
        with open(os.path.join(ref, 'tree')) as f:
            if f.readline() != 'omadm-tree 2\n':
                raise Failure('tree: the reference run did not convert the tree')
        log('tree reference run: converting message %.1f ms, median message %.1f ms' % (
            self.durations[0] * 1e3, sorted(self.durations)[len(self.durations) // 2] * 1e3))
        ci = 0
        while self.stats['kills'] < self.args.tree_kills:
            ci += 1
            if ci > self.args.max_chains:
                raise Failure('tree: only %d real kills after %d chains (seed %d)' % (
                    self.stats['kills'], ci - 1, self.seed))
            self.chain(ci)
            log('tree chain %d done: %d kills so far' % (ci, self.stats['kills']))
        s = self.stats
        if s['applied'] == 0 or s['not-applied'] == 0:
            raise Failure('tree: the kills all fell on one side (%d applied, %d not; seed %d)' % (
                s['applied'], s['not-applied'], self.seed))
        log('tree kills by strategy (killed, of which applied): %s' % ', '.join(
            '%s %d/%d' % (k, v[0], v[1]) for k, v in sorted(self.by_strategy.items())))
        log('PASS tree seed %d: %d chains, %d kill attempts, %d real kills (%d while converting); '
            '%d applied, %d not applied; %.1f s' % (
                self.seed, s['chains'], s['attempts'], s['kills'], s['converting-kills'],
                s['applied'], s['not-applied'], time.perf_counter() - t_start))


# ------------------------------------------------------------ PFX installs
#
# ClientCertificateInstall/PFXCertInstall (docs/pfx.md): an install puts a
# leaf, its key, intermediates and the install's state record into the store
# in one transaction; a Delete takes them out in one.  Messages install,
# re-install (Replace) and delete PFX files made here by openssl; a process
# killed anywhere must leave the store as before the message or as after it:
# every certificate with or without its key, every {UniqueID}'s Thumbprint
# and Status, all of one or all of the other.

PFX_D = './Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/'
PFX_U = './User/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/'
PFX_PASSWORD = 'Kennwort-\u00e4\u00f6\u00fc'


def make_pfx_files(work):
    """A root, two intermediates and four leaves (RSA), each leaf as a PFX
    with the chain: a, c, d modern (AES-256, SHA-256 MAC), b legacy (RC2-40,
    3DES, SHA-1 MAC).  {name: (pfx bytes, leaf thumbprint)}."""
    d = os.path.join(work, 'pki')
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, LC_ALL='C.UTF-8')

    def ssl(*a):
        subprocess.run(['openssl'] + list(a), check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def path(n, ext):
        return os.path.join(d, n + ext)

    ca_ext, ee_ext = path('ca', '.ext'), path('ee', '.ext')
    with open(ca_ext, 'w') as f:
        f.write('basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
    with open(ee_ext, 'w') as f:
        f.write('basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n')
    serial = 1
    for name, issuer in [('root', None), ('int1', 'root'), ('int2', 'int1'), ('a', 'int2'),
                         ('b', 'int2'), ('c', 'int2'), ('d', 'int1')]:
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', path(name, '.key'), '-out',
            path(name, '.csr'), '-subj', '/CN=crash pfx %s' % name)
        serial += 1
        if issuer is None:
            ssl('x509', '-req', '-in', path(name, '.csr'), '-signkey', path(name, '.key'),
                '-days', '3650', '-extfile', ca_ext, '-out', path(name, '.pem'))
        else:
            ssl('x509', '-req', '-in', path(name, '.csr'), '-CA', path(issuer, '.pem'), '-CAkey',
                path(issuer, '.key'), '-set_serial', str(serial), '-days', '3650', '-extfile',
                ca_ext if name.startswith('int') else ee_ext, '-out', path(name, '.pem'))
    with open(path('chain', '.pem'), 'wb') as f:
        for n in ('int2', 'int1', 'root'):
            f.write(read_bytes(path(n, '.pem')))
    out = {}
    for name in ('a', 'b', 'c', 'd'):
        opts = ['-legacy'] if name == 'b' else []
        ssl('pkcs12', '-export', '-in', path(name, '.pem'), '-inkey', path(name, '.key'),
            '-certfile', path('chain', '.pem'), '-passout', 'pass:' + PFX_PASSWORD,
            '-out', path(name, '.pfx'), *opts)
        out[name] = (read_bytes(path(name, '.pfx')), pem_thumbs(read_bytes(path(name, '.pem')))[0])
    return out


def read_bytes(p):
    with open(p, 'rb') as f:
        return f.read()


def pfx_session(files):
    """The messages, as (cmds, ids they touch): each cmd (verb, uri, format,
    data), an Atomic as ('Atomic', [cmds])."""
    def install(base, uid, f, kl=3):
        return ('Atomic', [('Add', base + uid + '/KeyLocation', 'int', str(kl)),
                           ('Add', base + uid + '/PFXCertBlob', 'chr',
                            base64.b64encode(files[f][0]).decode()),
                           ('Add', base + uid + '/PFXCertPassword', 'chr', PFX_PASSWORD)])

    def replace(base, uid, f):
        return ('Atomic', [('Replace', base + uid + '/PFXCertBlob', 'b64',
                            base64.b64encode(files[f][0]).decode()),
                           ('Add', base + uid + '/PFXCertPassword', 'chr', PFX_PASSWORD)])

    def delete(base, uid):
        return ('Delete', base + uid, None, None)

    return [
        ([install(PFX_D, 'A', 'a')], [PFX_D + 'A']),
        ([install(PFX_U, 'B', 'b', kl=2)], [PFX_U + 'B']),
        ([install(PFX_D, 'D', 'd'), install(PFX_U, 'C', 'c')], [PFX_D + 'D', PFX_U + 'C']),
        ([replace(PFX_D, 'A', 'c')], [PFX_D + 'A']),
        ([delete(PFX_U, 'B')], [PFX_U + 'B']),
        ([delete(PFX_D, 'A'), install(PFX_D, 'E', 'b')], [PFX_D + 'A', PFX_D + 'E']),
        ([delete(PFX_D, 'D'), delete(PFX_U, 'C'), delete(PFX_D, 'E')],
         [PFX_D + 'D', PFX_U + 'C', PFX_D + 'E']),
    ]


def render_pfx_message(msg_id, cmds):
    n = [0]

    def one(c):
        n[0] += 1
        if c[0] == 'Atomic':
            head = '<Atomic><CmdID>%d</CmdID>' % n[0]
            return head + ''.join(one(x) for x in c[1]) + '</Atomic>'
        verb, uri, fmt, data = c
        item = '<Item><Target><LocURI>%s</LocURI></Target>' % uri
        if fmt:
            item += '<Meta><Format xmlns="syncml:metinf">%s</Format></Meta>' % fmt
        if data is not None:
            item += '<Data>%s</Data>' % xml_escape(data)
        return '<%s><CmdID>%d</CmdID>%s</Item></%s>' % (verb, n[0], item, verb)

    body = ''.join(one(c) for c in cmds)
    return ('<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>'
            '<VerProto>DM/1.2</VerProto><SessionID>%s</SessionID><MsgID>%d</MsgID>'
            '<Target><LocURI>omadm-device</LocURI></Target><Source><LocURI>%s</LocURI></Source>'
            '</SyncHdr><SyncBody>%s<Final/></SyncBody></SyncML>' % (SESSION_ID, msg_id, SERVER,
                                                                   body))


class PfxTest(TreeTest):
    """Kills during PFX installs, Replaces and Deletes (docs/pfx.md)."""

    def __init__(self, args, dm, work):
        super().__init__(args, dm, work)
        self.work = os.path.join(work, 'pfx')
        self.krng = random.Random('pfx-kills-%d' % args.seed)
        self.ids = []

    def fail(self, what, k, ctx, detail=''):
        raise Failure('pfx: %s at message %d (seed %d%s)\n%s' % (what, k, self.seed, ctx, detail))

    def snapshot(self, sd):
        """What the messages change: every certificate (store, thumbprint,
        whether the store holds its key) and every {UniqueID}'s Thumbprint and
        Status (None: no such node)."""
        check_store(self.dm, sd)
        left = leftovers(sd)
        if left:
            raise Failure('pfx: left in the store after recovery: %s' % ', '.join(left))
        p = self.dm.run(sd, 'store', 'list', '--json')
        certs = sorted((r['store'], r['thumbprint'], bool(r['private_key']))
                       for r in json.loads(p.stdout.decode()))
        nodes = self.read(sd, [u + leaf for u in self.ids for leaf in ('/Thumbprint', '/Status')])
        return certs, sorted(nodes.items())

    def verify(self, sd, k, ctx):
        got = self.snapshot(sd)
        if got == self.states[k]:
            return True
        if got == self.states[k - 1]:
            return False
        self.fail('the store is neither the one before nor the one after the message', k, ctx,
                  'got    %r\nbefore %r\nafter  %r' % (got, self.states[k - 1], self.states[k]))

    def process(self, sd, k, ctx):
        p = self.dm.run(sd, 'process', self.msg_path(k))
        codes = [c for (_ref, cmd, c) in parse_statuses(p.stdout) if cmd != 'SyncHdr']
        if any(c != 200 for c in codes):
            self.fail('unexpected Status codes %s' % codes, k, ctx)

    def kill_attempt(self, sd, k, chain):
        r = self.krng
        dur = self.durations[k - 1]
        strategy = r.choices(['early', 'uniform', 'late', 'journal'], weights=[5, 35, 25, 35])[0]
        proc = subprocess.Popen([self.dm.path, '--state-dir', sd, 'process', self.msg_path(k)],
                                env=self.dm.kill_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.perf_counter()
        if strategy != 'journal':
            if strategy == 'early':
                delay = 10 ** r.uniform(-5, -2.5)
            else:
                lo, hi = (0.0, 1.25 * dur) if strategy == 'uniform' else (0.6 * dur, 1.05 * dur)
                delay = r.uniform(lo, hi)
            spin_until(t0 + delay)
            detail = 'SIGKILL %.3f ms after start' % (delay * 1e3)
        else:
            extra = r.uniform(0, 0.002)
            journal = os.path.join(sd, 'store', 'journal')
            seen, i = False, 0
            while not seen:
                seen = os.path.exists(journal)
                i += 1
                if not seen and (i & 7) == 0 and (proc.poll() is not None or
                                                  time.perf_counter() - t0 > 30):
                    break
            if seen:
                spin_until(time.perf_counter() + extra)
            detail = ('SIGKILL %.3f ms after the journal appeared' % (extra * 1e3) if seen
                      else 'journal never seen')
        proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        sanitizer_check(err, 'process (killed run)')
        self.dm.runs += 1
        self.stats['attempts'] += 1
        killed = proc.returncode == -signal.SIGKILL
        ctx = ', pfx chain %d, %s, %s' % (chain, strategy, detail)
        if not killed and proc.returncode != 0:
            self.fail('dmclient process exited %d' % proc.returncode, k, ctx, err.decode())
        applied = self.verify(sd, k, ctx)
        if not killed and not applied:
            self.fail('process finished but its message is not in the store', k, ctx)
        if killed:
            self.stats['kills'] += 1
            st = self.by_strategy.setdefault(strategy, [0, 0])
            st[0] += 1
            st[1] += applied
            self.stats['applied' if applied else 'not-applied'] += 1
        return applied

    def chain(self, ci):
        sd = os.path.join(self.work, 'chain')
        shutil.rmtree(sd, ignore_errors=True)
        os.makedirs(sd)
        r = self.krng
        for k in range(1, len(self.msgs) + 1):
            tries = 0
            while True:
                if tries >= 6 or r.random() > self.args.kill_ratio:
                    self.process(sd, k, ', pfx chain %d, sent without a kill' % ci)
                    if not self.verify(sd, k, ', pfx chain %d' % ci):
                        self.fail('message sent without a kill is not in the store', k,
                                  ', pfx chain %d' % ci)
                    break
                tries += 1
                if self.kill_attempt(sd, k, ci):
                    break
        self.stats['chains'] += 1

    def main(self):
        t_start = time.perf_counter()
        os.makedirs(os.path.join(self.work, 'msg'), exist_ok=True)
        files = make_pfx_files(self.work)
        session = pfx_session(files)
        self.msgs = [cmds for cmds, _ids in session]
        self.ids = sorted({u for _cmds, ids in session for u in ids})
        for k, cmds in enumerate(self.msgs, 1):
            with open(self.msg_path(k), 'w') as f:
                f.write(render_pfx_message(k, cmds))
        ref = os.path.join(self.work, 'reference')
        os.makedirs(ref)
        self.states = [self.snapshot(ref)]
        self.durations = []
        for k in range(1, len(self.msgs) + 1):
            t = time.perf_counter()
            self.process(ref, k, ', reference run')
            self.durations.append(time.perf_counter() - t)
            self.states.append(self.snapshot(ref))
            if self.states[k] == self.states[k - 1]:
                self.fail('reference run: the message changed nothing', k, '')
        installed = self.states[3][0]
        if not any(s == 'my-user' and key for s, _t, key in installed) or \
                not any(s == 'ca' for s, _t, _k in installed) or self.states[-1][0]:
            self.fail('reference run: unexpected stores %r / at the end %r' % (
                installed, self.states[-1][0]), 3, '')
        log('pfx reference run: %d messages, median %.1f ms' % (
            len(self.msgs), sorted(self.durations)[len(self.durations) // 2] * 1e3))
        ci = 0
        while self.stats['kills'] < self.args.pfx_kills:
            ci += 1
            if ci > self.args.max_chains:
                raise Failure('pfx: only %d real kills after %d chains (seed %d)' % (
                    self.stats['kills'], ci - 1, self.seed))
            self.chain(ci)
            log('pfx chain %d done: %d kills so far' % (ci, self.stats['kills']))
        s = self.stats
        if s['applied'] == 0 or s['not-applied'] == 0:
            raise Failure('pfx: the kills all fell on one side (%d applied, %d not; seed %d)' % (
                s['applied'], s['not-applied'], self.seed))
        log('pfx kills by strategy (killed, of which applied): %s' % ', '.join(
            '%s %d/%d' % (k, v[0], v[1]) for k, v in sorted(self.by_strategy.items())))
        log('PASS pfx seed %d: %d chains, %d kill attempts, %d real kills; %d applied, %d not '
            'applied; %.1f s' % (self.seed, s['chains'], s['attempts'], s['kills'], s['applied'],
                                 s['not-applied'], time.perf_counter() - t_start))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dmclient', required=True)
    ap.add_argument('--work', required=True, help='an empty scratch directory')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--kills', type=int, default=200, help='real kills to reach (at least 200)')
    ap.add_argument('--messages', type=int, default=64)
    ap.add_argument('--certs', type=int, default=40)
    ap.add_argument('--kill-ratio', type=float, default=0.8,
                    help='share of messages first sent to a process that gets killed')
    ap.add_argument('--max-chains', type=int, default=40)
    ap.add_argument('--tree-kills', type=int, default=100,
                    help='real kills to reach on engine-tree messages (0: skip that part)')
    ap.add_argument('--tree-messages', type=int, default=30)
    ap.add_argument('--only-tree', action='store_true', help='skip the certificate store part')
    ap.add_argument('--pfx-kills', type=int, default=60,
                    help='real kills to reach on PFX installs and Deletes (0: skip that part)')
    ap.add_argument('--only-pfx', action='store_true',
                    help='only the PFX part (skip the certificate store and tree parts)')
    args = ap.parse_args()
    if args.kills < 200 or args.messages < 60:
        ap.error('--kills must be at least 200 and --messages at least 60')

    def body():
        if not args.only_tree and not args.only_pfx:
            Test(args).main()
        if args.tree_kills and not args.only_pfx:
            TreeTest(args, Dm(args.dmclient), args.work).main()
        if args.pfx_kills:
            PfxTest(args, Dm(args.dmclient), args.work).main()
    return run_test(body, args.seed, log)


def run_test(body, seed, log_fn):
    """Run body(); 0 when it passes, 1 after a FAIL line (a Failure, or any
    other error: a bug here, or a dmclient that hangs, still names the seed)."""
    try:
        body()
    except Failure as e:
        log_fn('FAIL: %s' % e)
        return 1
    except Exception:
        import traceback
        traceback.print_exc()
        log_fn('FAIL: unexpected error (seed %d)' % seed)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
