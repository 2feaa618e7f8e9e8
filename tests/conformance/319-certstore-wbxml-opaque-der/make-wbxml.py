#!/usr/bin/env python3
# make-wbxml.py SYNCMLCONV wbxml-source.xml 01-server.wbxml ROOT.der INTER.b64
# One-off: how 01-server.wbxml was made (see README); the suite does not run it.
import os, subprocess, sys
conv, src, dst, root_der, inter_b64 = sys.argv[1:6]
subprocess.run([conv, 'to-wbxml', src, dst + '.tmp'], check=True)
d = open(dst + '.tmp', 'rb').read()
def mb(n):
    out = [n & 0x7f]; n >>= 7
    while n: out.insert(0, 0x80 | (n & 0x7f)); n >>= 7
    return bytes(out)
def opaque(b): return b'\xc3' + mb(len(b)) + b
der = open(root_der, 'rb').read()
b64 = open(inter_b64, 'rb').read().strip()
old1 = b'\xc3\x0fDER-OF-ROOT-PEM'
old2 = b'\x03DER-OF-INTER-B64\x00'
assert d.count(old1) == 1 and d.count(old2) == 1
d = d.replace(old1, opaque(der)).replace(old2, opaque(b64))
open(dst, 'wb').write(d)
os.unlink(dst + '.tmp')
