#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# examples/host/make-message.sh CERT.pem [DEVICE_ID] > message.xml
#
# A server message that installs CERT as a trusted root through
# RootCATrustedCertificates and reads back its IssuedTo: an Add of
# ./Vendor/MSFT/RootCATrustedCertificates/Root/<SHA-1 thumbprint>/EncodedCertificate
# (the DER in base64, Format b64) and a Get of .../IssuedTo.  add-root.xml is
# this script's output for tests/data/pki/root.pem (below its licence line).
# Needs the openssl CLI.
set -eu
cert=${1:?usage: make-message.sh CERT.pem [DEVICE_ID]}
device=${2:-example-device-0001}

thumb=$(openssl x509 -in "$cert" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
b64=$(openssl x509 -in "$cert" -outform DER | openssl base64 -A)
node=./Vendor/MSFT/RootCATrustedCertificates/Root/$thumb

cat <<XML
<SyncML xmlns="SYNCML:SYNCML1.2">
  <SyncHdr>
    <VerDTD>1.2</VerDTD>
    <VerProto>DM/1.2</VerProto>
    <SessionID>1</SessionID>
    <MsgID>1</MsgID>
    <Target><LocURI>$device</LocURI></Target>
    <Source><LocURI>https://dm.example.com/omadm</LocURI></Source>
  </SyncHdr>
  <SyncBody>
    <Add>
      <CmdID>1</CmdID>
      <Item>
        <Target><LocURI>$node/EncodedCertificate</LocURI></Target>
        <Meta><Format xmlns="syncml:metinf">b64</Format></Meta>
        <Data>$b64</Data>
      </Item>
    </Add>
    <Get>
      <CmdID>2</CmdID>
      <Item>
        <Target><LocURI>$node/IssuedTo</LocURI></Target>
      </Item>
    </Get>
    <Final/>
  </SyncBody>
</SyncML>
XML
