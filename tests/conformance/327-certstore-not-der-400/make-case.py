#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make-case.py ROOT.der OUTDIR
# One-off: how the certificates of this case (and of 328) were made from
# tests/data/pki/root.der, and 01-server.xml written (see README); the suite
# does not run it.  Prints the thumbprints.
import base64, hashlib, os, sys

root = open(sys.argv[1], 'rb').read()
out = sys.argv[2]


def tlv(b, i):
    """tag, start of the content, content length of the element at i"""
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[j:j + k], 'big')
        j += k
    return b[i], j, n


# Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
_, body, _ = tlv(root, 0)
_, j, n = tlv(root, body)          # tbsCertificate
_, j, n = tlv(root, j + n)         # signatureAlgorithm
tag, j, n = tlv(root, j + n)       # signatureValue
assert tag == 0x03 and root[j] == 0 and j + n == len(root)
bits = bytearray(root)
bits[j] = 1                        # one unused bit ...
bits[-1] |= 1                      # ... and it is set (DER: unused bits are zero)
bits = bytes(bits)
# the outer SEQUENCE's length in four bytes instead of three (BER, not DER)
assert root[:2] == b'\x30\x82'
longlen = b'\x30\x83\x00' + root[2:]

for name, der in (('unused-bits', bits), ('long-length', longlen)):
    open(os.path.join(out, name + '.der'), 'wb').write(der)
    print(name, hashlib.sha1(der).hexdigest().upper())
print('root', hashlib.sha1(root).hexdigest().upper())


def b64(der):
    return base64.b64encode(der).decode()


def pem(der, headers=''):
    t = b64(der)
    lines = [t[i:i + 64] for i in range(0, len(t), 64)]
    return '-----BEGIN CERTIFICATE-----\n' + headers + '\n'.join(lines) + '\n-----END CERTIFICATE-----\n'


CS = './Vendor/MSFT/CertificateStore/Root/System/'


def add(cmd, der, fmt, data):
    thumb = hashlib.sha1(der).hexdigest().upper()
    return f'''    <Add>
      <CmdID>{cmd}</CmdID>
      <Item>
        <Target>
          <LocURI>{CS}{thumb}/EncodedCertificate</LocURI>
        </Target>
        <Meta>
          <Format xmlns="syncml:metinf">{fmt}</Format>
        </Meta>
        <Data>{data}</Data>
      </Item>
    </Add>
'''


encrypted = 'Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n'
body = (add(1, bits, 'b64', b64(bits)) + add(2, bits, 'chr', '\n' + pem(bits)) +
        add(3, longlen, 'b64', b64(longlen)) + add(4, longlen, 'chr', '\n' + pem(longlen)) +
        add(5, root, 'chr', '\n' + pem(root, encrypted)) +
        '''    <Get>
      <CmdID>6</CmdID>
      <Item>
        <Target>
          <LocURI>./Vendor/MSFT/CertificateStore/Root/System</LocURI>
        </Target>
      </Item>
    </Get>
''' + add(7, root, 'b64', b64(root)))
msg = '''<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1</SessionID>
    <MsgID>1</MsgID>
    <Target>
      <LocURI>omadm-device</LocURI>
    </Target>
    <Source>
      <LocURI>https://dm.example.com/omadm</LocURI>
    </Source>
  </SyncHdr>
  <SyncBody>
''' + body + '''    <Final/>
  </SyncBody>
</SyncML>
'''
open(os.path.join(out, '01-server.xml'), 'w').write(msg)
