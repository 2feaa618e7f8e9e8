#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make-wbxml.py SYNCMLCONV wbxml-source.xml 01-server.wbxml UNUSED-BITS.der LONG-LENGTH.der ROOT.der
# One-off: how 01-server.wbxml was made (see README); the suite does not run it.  The two
# crafted certificates come from ../327-certstore-not-der-400/make-case.py.
import os, subprocess, sys
conv, src, dst = sys.argv[1:4]
ders = [open(p, 'rb').read() for p in sys.argv[4:7]]
subprocess.run([conv, 'to-wbxml', src, dst + '.tmp'], check=True)
d = open(dst + '.tmp', 'rb').read()


def mb(n):
    out = [n & 0x7f]
    n >>= 7
    while n:
        out.insert(0, 0x80 | (n & 0x7f))
        n >>= 7
    return bytes(out)


def opaque(b):
    return b'\xc3' + mb(len(b)) + b


for ph, der in zip((b'DER-OF-UNUSED-BITS', b'DER-OF-LONG-LENGTH', b'DER-OF-THE-ROOT'), ders):
    old = opaque(ph)   # syncmlconv writes Format bin Data as OPAQUE
    assert d.count(old) == 1, ph
    d = d.replace(old, opaque(der))
open(dst, 'wb').write(d)
os.unlink(dst + '.tmp')
