#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make-pki.sh - how the test PKI in this directory was made (run once, by
# hand, with the openssl CLI; the results are committed and the tests never
# run this).  Running it again makes NEW keys and certificates (ECDSA
# signatures are randomised), so every thumbprint and base64 value copied
# into tests/conformance/3NN-*/ would have to be updated too.
#
#   cd tests/data/pki && sh make-pki.sh
#
# Needs OpenSSL 3.0 or later (the CLI's `openssl ca` is used because it can
# set fixed validity dates; 3.0's `x509`/`req` only take -days).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/ca.cnf" <<'CNF'
[ ca ]
default_ca = test_ca

[ test_ca ]
dir              = WORKDIR
database         = $dir/index.txt
new_certs_dir    = $dir/new
serial           = $dir/serial
default_md       = sha256
policy           = any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
preserve         = yes
utf8             = yes
name_opt         = ca_default
cert_opt         = ca_default

[ any ]
countryName            = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied

[ req ]
distinguished_name = dn
utf8               = yes
string_mask        = utf8only
prompt             = no
[ dn ]
CN = unused

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_inter ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = DNS:leaf.conformance.example
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_template ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
# Microsoft "Certificate Template Name" (szOID_ENROLL_CERTTYPE_EXTENSION)
1.3.6.1.4.1.311.20.2   = ASN1:BMPSTRING:WebServer
CNF
sed -i "s|WORKDIR|$tmp|" "$tmp/ca.cnf"
mkdir "$tmp/new"
: >"$tmp/index.txt"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }

# sign NAME SUBJECT SERIAL EXTENSIONS [ISSUER]  (no ISSUER: self-signed)
sign() {
    name=$1 subj=$2 serial=$3 ext=$4 issuer=${5:-}
    key "$name"
    openssl req -new -config "$tmp/ca.cnf" -key "$name.key" -subj "$subj" -utf8 \
        -out "$tmp/$name.csr"
    echo "$serial" >"$tmp/serial"
    if [ -z "$issuer" ]; then
        set -- -selfsign -keyfile "$name.key"
    else
        set -- -cert "$issuer.pem" -keyfile "$issuer.key"
    fi
    openssl ca -batch -config "$tmp/ca.cnf" -notext -utf8 "$@" -extensions "$ext" \
        -startdate 20250101000000Z -enddate 20450101000000Z \
        -in "$tmp/$name.csr" -out "$name.pem"
    openssl x509 -in "$name.pem" -outform DER -out "$name.der"
    openssl base64 -A -in "$name.der" >"$name.b64"
    echo >>"$name.b64"
    openssl x509 -in "$name.pem" -noout -fingerprint -sha1 |
        sed 's/^.*=//; s/://g' >"$name.sha1"
}

sign root      "/C=DE/O=Conformance Test PKI/CN=Conformance Root"               1001 v3_root
sign inter     "/C=DE/O=Conformance Test PKI/CN=Conformance Intermediate"       1002 v3_inter root
sign leaf      "/C=DE/O=Example, Inc./OU=Prüfung/CN=leaf.conformance.example"   1003 v3_leaf inter
sign root2     "/O=Unrelated Test PKI/CN=Unrelated Root"                        2001 v3_root
sign template  "/C=DE/O=Conformance Test PKI/CN=template.conformance.example"   1004 v3_template inter

# DER that is not a certificate (the root's public key, SubjectPublicKeyInfo)
openssl pkey -in root.key -pubout -outform DER -out not-a-cert.der
openssl base64 -A -in not-a-cert.der >not-a-cert.b64
echo >>not-a-cert.b64
