#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make-wbxml.py SYNCMLCONV wbxml-source.xml 01-server.wbxml LEAF.pfx
# One-off: how 01-server.wbxml was made (see README); the suite does not run it.
import os, subprocess, sys
conv, src, dst, pfx = sys.argv[1:5]
subprocess.run([conv, 'to-wbxml', src, dst + '.tmp'], check=True)
d = open(dst + '.tmp', 'rb').read()
def mb(n):
    out = [n & 0x7f]; n >>= 7
    while n: out.insert(0, 0x80 | (n & 0x7f)); n >>= 7
    return bytes(out)
def opaque(b): return b'\xc3' + mb(len(b)) + b
old = b'\xc3\x0eDER-OF-THE-PFX'
assert d.count(old) == 1
d = d.replace(old, opaque(open(pfx, 'rb').read()))
open(dst, 'wb').write(d)
os.unlink(dst + '.tmp')
