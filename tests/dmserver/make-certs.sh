#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make-certs.sh OUTDIR - throwaway TLS certificates for the scripted DM test server
# (tests/dmserver/dmserver.py).  EC P-256 keys, ECDSA-SHA256, 2 days validity from now;
# about 0.2 s.  Nothing here is secret.  Writes into OUTDIR (created):
#
#   ca.pem ca.key                 test CA (CN=dmserver test CA)
#   server.pem server.key         server certificate for 127.0.0.1 and localhost, issued by ca
#   server-chain.pem              server.pem followed by ca.pem
#   client-ca.pem client-ca.key   CA for client certificates (CN=dmserver client CA)
#   client.pem client.key         client certificate (CN=$DMSERVER_CLIENT_CN, default
#                                 omadm-device; clientAuth), issued by client-ca
#   other-ca.pem other-ca.key     an unrelated CA (CN=dmserver unrelated CA): give it to the
#                                 client as --cacert for the "untrusted server" case
#   other-client.pem other-client.key
#                                 a client certificate issued by other-ca (the server refuses it)
#   other-server.pem other-server.key
#                                 a server certificate for 127.0.0.1 issued by other-ca
#                                 (--cert/--key for a server the client must not trust)
#
# Usage in a test: sh tests/dmserver/make-certs.sh "$work/pki"
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
cd "$out"
umask 077

cn_client=${DMSERVER_CLIENT_CN:-omadm-device}
tmp=$(mktemp -d ./.mkcerts.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME CN
ca() {
    key "$1.key"
    openssl req -new -x509 -key "$1.key" -subj "/O=dmserver test/CN=$2" -days 2 -sha256 \
        -set_serial "0x$(openssl rand -hex 8)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

# leaf NAME ISSUER CN EXTENSIONS...
leaf() {
    name=$1 issuer=$2 cn=$3
    shift 3
    key "$name.key"
    openssl req -new -key "$name.key" -subj "/O=dmserver test/CN=$cn" -out "$tmp/$name.csr"
    : > "$tmp/$name.ext"
    for e in "$@"; do printf '%s\n' "$e" >> "$tmp/$name.ext"; done
    openssl x509 -req -in "$tmp/$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "$tmp/$name.ext" \
        -out "$name.pem" 2>/dev/null
}

ca ca "dmserver test CA"
ca client-ca "dmserver client CA"
ca other-ca "dmserver unrelated CA"

leaf server ca 127.0.0.1 "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" \
    "subjectAltName = IP:127.0.0.1, DNS:localhost"
leaf other-server other-ca 127.0.0.1 "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" \
    "subjectAltName = IP:127.0.0.1, DNS:localhost"
leaf client client-ca "$cn_client" "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = clientAuth"
leaf other-client other-ca "$cn_client" "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = clientAuth"
cat server.pem ca.pem > server-chain.pem

# certificates are public; keys stay 0600
chmod 644 ./*.pem
openssl verify -CAfile ca.pem server.pem >/dev/null
openssl verify -CAfile client-ca.pem client.pem >/dev/null
openssl verify -CAfile other-ca.pem other-client.pem other-server.pem >/dev/null
