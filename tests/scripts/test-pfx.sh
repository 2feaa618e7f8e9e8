#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-pfx.sh BUILD_DIR
#
# ClientCertificateInstall/PFXCertInstall (docs/pfx.md) through `dmclient
# process`, with PFX files and password envelopes made here by openssl(1):
# a test CA (a root and two intermediates), leaves, `openssl pkcs12 -export`
# in OpenSSL 3's default encryption (AES-256-CBC, PBKDF2, SHA-256 MAC) and
# with -legacy (RC2-40 and 3DES, SHA-1 MAC), passwords with non-ASCII
# characters, `openssl cms -encrypt` envelopes of the password.
#   1. install (modern, ./Device): leaf and key in My/System, the two
#      intermediates in CA/System, the root nowhere; Thumbprint, Status 0,
#      ErrorCode 0; the exported pair signs and verifies; the record names
#      what was installed and holds no password
#   2. legacy PFX into ./User: My/User and user-ca; ./Vendor is ./Device
#   3. PFXCertPasswordEncryptionType 1 (envelope to the MDM client
#      certificate in My/System; the password in UTF-8 or UTF-16LE) and 2
#      (to a certificate in the store that
#      PFXCertPasswordEncryptionStore names, My = My/User for ./User)
#   4. KeyLocation 1 (no TPM: ErrorCode 0x8028400F), 2 (software), 3, 4
#      (0x80090029); nothing installed for 1 and 4
#   5. failures: wrong password (Status 86, ErrorCode 0x80070056), corrupt
#      blob, truncated blob, blob that is not base64 (0x80092002), key that is not the certificate's
#      (0x80090003), envelope no store certificate opens (0x8009200C),
#      envelope that is not CMS (0x80090005): each leaves the store listing
#      as it was and `store check` clean
#   6. refusals: PFXKeyExportable true with KeyLocation 2 and KeyLocation
#      unset (Atomic 507), the blob outside an Atomic (405), Add of the blob
#      when one is installed (418), Replace when none is (404), Get of the
#      password and of the blob (405)
#   7. Delete {UniqueID} removes its leaf, key and intermediates, and leaves
#      an intermediate that was in CA/System before; Replace re-installs; a
#      Replace that does not install leaves the old install
#   8. list, ?list=Struct; a password Added in one process is not kept for a
#      blob in the next (Status 1168), nor one whose Atomic rolled back; a
#      second blob in one Atomic (418); Delete of the password; at most 1,000
#      {UniqueID}s per scope (420)
#  10. with a software TPM (swtpm, lib/swtpm.sh): KeyLocation 1 and 2 import
#      an RSA key into the TPM (the store keeps only its TSS2 blob; the
#      exported blob signs with openssl -provider tpm2); an EC key, which the
#      TPM store does not take: 2 keeps it in software, 1 fails (0x80090029)
# Needs: POSIX sh, timeout (coreutils), openssl(1) 3.x, base64, iconv, xmllint, grep,
# sed, swtpm and the OpenSSL tpm2 provider.  Exits 0 on success.
# shellcheck disable=SC2015  # "check && ok ... || fail ...": ok always succeeds
set -u

build=${1:?usage: test-pfx.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/dm-check.sh
. "$here/lib/dm-check.sh"
# shellcheck source=SCRIPTDIR/lib/syncml.sh
. "$here/lib/syncml.sh"
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
for tool in timeout openssl base64 iconv xmllint; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done

scratch_dir pfx
pki=$tmp/pki
mkdir "$pki" || exit 1
state=$tmp/state
export LC_ALL=C.UTF-8

# ---- the PKI ----
mkcert() { # mkcert NAME SUBJECT ISSUER|self [ca]
    openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" \
        -subj "$2" 2>/dev/null || exit 1
    if [ "${4:-}" = ca ]; then
        printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'
    else
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
    fi >"$pki/$1.ext"
    if [ "$3" = self ]; then
        openssl x509 -req -in "$pki/$1.csr" -signkey "$pki/$1.key" -out "$pki/$1.pem" -days 30 \
            -extfile "$pki/$1.ext" 2>/dev/null || exit 1
    else
        openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$3.pem" -CAkey "$pki/$3.key" \
            -set_serial "0x$(openssl rand -hex 8)" -out "$pki/$1.pem" -days 30 \
            -extfile "$pki/$1.ext" 2>/dev/null || exit 1
    fi
}
thumb() { openssl x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'; }
mkcert root "/CN=PFX Test Root" self ca
mkcert int1 "/CN=PFX Test Intermediate 1" root ca
mkcert int2 "/CN=PFX Test Intermediate 2" int1 ca
for n in leaf leaf2 leaf3 mdm enc other; do mkcert "$n" "/CN=PFX Test $n" int2; done
cat "$pki/int2.pem" "$pki/int1.pem" "$pki/root.pem" >"$pki/chain.pem"
PW='pässwörd-€'
# pfx OUT CERT [openssl pkcs12 options...]: CERT with its key and the chain
pfx() {
    _out=$1 _c=$2
    shift 2
    openssl pkcs12 -export -in "$pki/$_c.pem" -inkey "$pki/$_c.key" -certfile "$pki/chain.pem" \
        -out "$pki/$_out" "$@" 2>/dev/null || { echo "FAIL: openssl pkcs12 $_out"; exit 1; }
}
pfx modern.pfx leaf -passout "pass:$PW"
pfx legacy.pfx leaf2 -legacy -passout "pass:$PW"
pfx leaf3.pfx leaf3 -passout "pass:$PW"
pfx mdm.pfx mdm -passout pass:mdm
pfx enc.pfx enc -passout pass:enc
pfx nopass.pfx leaf -passout pass:
openssl pkcs12 -in "$pki/legacy.pfx" -info -noout -legacy -passin "pass:$PW" 2>&1 |
    grep -q 'pbeWithSHA1And40BitRC2-CBC' && ok "the legacy PFX is RC2-40 (SHA-1 MAC)" ||
    fail "openssl pkcs12 -legacy did not make an RC2 PFX"
openssl pkcs12 -in "$pki/modern.pfx" -info -noout -passin "pass:$PW" 2>&1 |
    grep -q 'AES-256-CBC' && ok "the modern PFX is AES-256-CBC" || fail "modern PFX not AES"
# a key that is not the certificate's: the other key, the leaf as a certificate bag
openssl pkcs12 -export -nocerts -inkey "$pki/other.key" -certfile "$pki/leaf.pem" \
    -passout "pass:$PW" -out "$pki/mismatch.pfx" 2>/dev/null || exit 1
head -c 700 "$pki/modern.pfx" >"$pki/truncated.pfx"
openssl rand 900 >"$pki/random.pfx"
# envelope OUT RECIPIENT TEXT: TEXT encrypted to RECIPIENT's certificate, base64 DER
envelope() {
    printf '%s' "$3" | openssl cms -encrypt -binary -aes256 -outform DER "$pki/$2.pem" |
        base64 -w0 >"$pki/$1" || exit 1
}

D=./Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall
U=./User/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall

# install MSG BASE KEYLOCATION PFX [PASSWORD [ENCTYPE [ENCSTORE [EXPORTABLE]]]]: the
# Adds in one Atomic, the blob (Format chr, base64: as Intune sends it) second, as in the
# published example
install_msg() {
    msg_begin "$tmp/$1"
    m_atomic
    m_cmd Add "$2/KeyLocation" int "$3"
    m_cmd Add "$2/PFXCertBlob" chr "$(base64 -w0 "$pki/$4")"
    [ $# -ge 5 ] && m_cmd Add "$2/PFXCertPassword" chr "$5"
    [ $# -ge 6 ] && m_cmd Add "$2/PFXCertPasswordEncryptionType" int "$6"
    [ -n "${7:-}" ] && m_cmd Add "$2/PFXCertPasswordEncryptionStore" chr "$7"
    [ -n "${8:-}" ] && m_cmd Add "$2/PFXKeyExportable" bool "$8"
    m_atomic_end
    msg_end
}
# process MSG WANT_CODES: dmclient process MSG; the reply's Status codes
process() {
    dm 0 process "$tmp/$1" || return 1
    cp "$tmp/out" "$tmp/reply.xml"
    got=$(reply_codes "$tmp/reply.xml")
    [ "$got" = "$2" ] || { fail "$1: codes $got, expected $2"; return 1; }
}
expect_get() { # URI VALUE
    dm 0 get "$1" && [ "$(cat "$tmp/out")" = "$2" ] && return 0
    fail "get $1: '$(cat "$tmp/out")', expected '$2'"
    return 1
}
listing() { dm 0 store list && cp "$tmp/out" "$tmp/$1"; }
check_clean() { dm 0 store check >/dev/null && ok "$1: store check clean" || fail "$1: store check"; }
# signs STORE THUMB: the exported certificate and key sign, and verify with the certificate
signs() {
    dm 0 store export "$1" "$2" --key || return 1
    echo "to be signed" >"$tmp/data"
    openssl dgst -sha256 -sign "$tmp/out" -out "$tmp/sig" "$tmp/data" 2>/dev/null &&
        openssl x509 -in "$tmp/out" -pubkey -noout >"$tmp/pub" &&
        openssl dgst -sha256 -verify "$tmp/pub" -signature "$tmp/sig" "$tmp/data" >/dev/null
}
A5="SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,"

LEAF=$(thumb "$pki/leaf.pem") LEAF2=$(thumb "$pki/leaf2.pem") LEAF3=$(thumb "$pki/leaf3.pem")
INT1=$(thumb "$pki/int1.pem") INT2=$(thumb "$pki/int2.pem") ROOT=$(thumb "$pki/root.pem")

# ---- 1. modern PFX into ./Device ----
install_msg m1 "$D/P1" 3 modern.pfx "$PW"
process m1 "$A5" && ok "modern PFX: Atomic 200, every Add 200"
expect_get "$D/P1/Thumbprint" "$LEAF" && expect_get "$D/P1/Status" 0 &&
    expect_get "$D/P1/ErrorCode" 0 && ok "Thumbprint, Status 0, ErrorCode 0"
dm 0 store list my-system && grep -q "^my-system  *$LEAF " "$tmp/out" &&
    dm 0 store list ca && grep -q "$INT1" "$tmp/out" && grep -q "$INT2" "$tmp/out" &&
    dm 0 store list root && [ ! -s "$tmp/out" ] && dm 0 store list && ! grep -q "$ROOT" "$tmp/out" &&
    ok "leaf in My/System, both intermediates in CA/System, the root in no store" ||
    fail "modern PFX: stores: $(cat "$tmp/out")"
signs my-system "$LEAF" && ok "the installed key signs for the certificate (store export --key)" ||
    fail "the installed key does not sign for the certificate"
rec=$(grep -l "^id P1$" "$state"/store/state/pfx-d-* 2>/dev/null)
[ -n "$rec" ] && grep -q "^inst my-system $LEAF$" "$rec" && grep -q "^inst ca $INT2$" "$rec" &&
    ok "the record names what was installed" || fail "record: $(cat "$state"/store/state/pfx-* 2>&1)"
! grep -rqF "$PW" "$state" && ! grep -rqF "pässwörd" "$state" &&
    ok "the password is nowhere in the state directory" || fail "the password was written"
check_clean "modern PFX"

# ---- 2. legacy PFX into ./User; ./Vendor is ./Device ----
install_msg m2 "$U/L1" 2 legacy.pfx "$PW"
process m2 "$A5" && expect_get "$U/L1/Thumbprint" "$LEAF2" && expect_get "$U/L1/ErrorCode" 0 &&
    dm 0 store list my-user && grep -q "$LEAF2" "$tmp/out" && dm 0 store list user-ca &&
    grep -q "$INT1" "$tmp/out" && signs my-user "$LEAF2" &&
    ok "legacy (RC2-40/3DES) PFX into ./User: My/User, user CA, the key signs" ||
    fail "legacy PFX into ./User"
expect_get ./Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/P1/Thumbprint "$LEAF" &&
    dm 1 get "$U/P1/Thumbprint" && ok "./Vendor/... is ./Device/...; ./User has its own IDs"

# ---- 3. encrypted passwords ----
# type 1: the MDM client certificate (dmclient session --client-cert) sits in My/System
install_msg m3a "$D/MDM" 3 mdm.pfx mdm
process m3a "$A5" || fail "installing the MDM client certificate"
envelope env-mdm mdm "$PW"
install_msg m3b "$D/E1" 3 leaf3.pfx "$(cat "$pki/env-mdm")" 1
process m3b "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$D/E1/Thumbprint" "$LEAF3" && expect_get "$D/E1/ErrorCode" 0 &&
    ok "EncryptionType 1: the envelope to the MDM certificate opens, the PFX installs"
# type 2: a certificate in My (= My/User under ./User)
install_msg m3c "$U/ENC" 3 enc.pfx enc
process m3c "$A5" || fail "installing the user's encryption certificate"
envelope env-enc enc "$PW"
install_msg m3d "$U/E2" 3 leaf3.pfx "$(cat "$pki/env-enc")" 2 My
process m3d "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$U/E2/Thumbprint" "$LEAF3" && expect_get "$U/E2/ErrorCode" 0 &&
    ok "EncryptionType 2, store My: a My/User certificate opens the envelope"
# the password as Windows encrypts strings: UTF-16LE
printf '%s' "$PW" | iconv -f UTF-8 -t UTF-16LE | openssl cms -encrypt -binary -aes256 -outform DER \
    "$pki/mdm.pem" | base64 -w0 >"$pki/env-utf16" || exit 1
install_msg m3g "$D/E5" 3 leaf3.pfx "$(cat "$pki/env-utf16")" 1
process m3g "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$D/E5/ErrorCode" 0 && ok "an envelope holding the password in UTF-16LE opens too"
# UTF-16 with a byte-order mark, a password of CJK characters only (no zero byte in UTF-16)
PW3='密码口令'
pfx cjk.pfx leaf3 -passout "pass:$PW3"
printf '%s' "$PW3" | iconv -f UTF-8 -t UTF-16 | openssl cms -encrypt -binary -aes256 -outform DER \
    "$pki/mdm.pem" | base64 -w0 >"$pki/env-bom" || exit 1
install_msg m3h "$D/E6" 3 cjk.pfx "$(cat "$pki/env-bom")" 1
process m3h "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$D/E6/ErrorCode" 0 && ok "UTF-16 with a byte-order mark, CJK characters only, opens too"
# the same envelope with the store My/System: no certificate there opens it
install_msg m3e "$U/E3" 3 leaf3.pfx "$(cat "$pki/env-enc")" 2 My/System
listing before3e
process m3e "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$U/E3/ErrorCode" -2146885620 && expect_get "$U/E3/Status" -2146885620 &&
    listing after3e && cmp -s "$tmp/before3e" "$tmp/after3e" &&
    ok "an envelope no certificate of the named store opens: 0x8009200C, nothing installed" ||
    fail "undecryptable envelope"
install_msg m3f "$D/E4" 3 leaf3.pfx "bm90IGNtcw==" 1
process m3f "SyncHdr 200,Atomic 200,Add 200,Add 200,Add 200,Add 200," &&
    expect_get "$D/E4/ErrorCode" -2146893819 && ok "an envelope that is not CMS: 0x80090005"
check_clean "encrypted passwords"

# ---- 4. KeyLocation ----
listing before4
install_msg m4a "$D/K1" 1 leaf3.pfx "$PW"
process m4a "$A5" && expect_get "$D/K1/ErrorCode" -2144845809 && dm 1 get "$D/K1/Thumbprint" &&
    ok "KeyLocation 1 without a TPM: ErrorCode 0x8028400F, no Thumbprint"
install_msg m4b "$D/K4" 4 leaf3.pfx "$PW"
process m4b "$A5" && expect_get "$D/K4/ErrorCode" -2146893783 &&
    ok "KeyLocation 4 (Windows Hello): ErrorCode 0x80090029"
listing after4
cmp -s "$tmp/before4" "$tmp/after4" && ok "KeyLocation 1 and 4: nothing installed" ||
    fail "KeyLocation 1/4 changed the store"
install_msg m4c "$D/K2" 2 nopass.pfx
process m4c "SyncHdr 200,Atomic 200,Add 200,Add 200," && expect_get "$D/K2/Thumbprint" "$LEAF" &&
    ok "KeyLocation 2 (software fallback), a PFX without a password and no PFXCertPassword"

# ---- 5. failures leave the store as it was ----
failing() { # NAME PFX PASSWORD WANT_STATUS WANT_ERRORCODE
    listing "before-$1"
    install_msg "m5-$1" "$D/F-$1" 3 "$2" "$3"
    process "m5-$1" "$A5" && expect_get "$D/F-$1/Status" "$4" &&
        expect_get "$D/F-$1/ErrorCode" "$5" && dm 1 get "$D/F-$1/Thumbprint" &&
        listing "after-$1" && cmp -s "$tmp/before-$1" "$tmp/after-$1" &&
        dm 0 store check && ok "$1: Status $4, ErrorCode $5, the store as it was, check clean" ||
        fail "$1"
}
failing wrong-password modern.pfx "Pässwörd-€" 86 -2147024810
failing wrong-password-legacy legacy.pfx wrong 86 -2147024810
failing corrupt random.pfx "$PW" -2146885630 -2146885630
failing truncated truncated.pfx "$PW" -2146885630 -2146885630
failing mismatched-key mismatch.pfx "$PW" -2146893821 -2146893821
msg_begin "$tmp/m5b"
m_atomic
m_cmd Add "$D/F-text/KeyLocation" int 3
m_cmd Add "$D/F-text/PFXCertBlob" chr "Base64_Encode_Cert_Blob"
m_atomic_end
msg_end
process m5b "SyncHdr 200,Atomic 200,Add 200,Add 200," && expect_get "$D/F-text/ErrorCode" -2146885630 &&
    ok "a blob that is not base64: ErrorCode 0x80092002 (the install judges the content)"
dm 0 store list ca && grep -c . "$tmp/out" | grep -qx 2 || fail "CA/System: $(cat "$tmp/out")"

# ---- 6. refusals ----
listing before6
install_msg m6a "$D/X1" 2 leaf3.pfx "$PW" 0 "" true
process m6a "SyncHdr 200,Atomic 507,Add 400,Add 400,Add 400,Add 400,Add 400," &&
    dm 1 get "$D/X1" && ok "PFXKeyExportable true with KeyLocation 2: Atomic 507, rolled back"
msg_begin "$tmp/m6b"
m_atomic
m_cmd Add "$D/X2/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
msg_end
process m6b "SyncHdr 200,Atomic 507,Add 400," && ok "no KeyLocation: Atomic 507"
msg_begin "$tmp/m6c"
m_cmd Add "$D/X3/KeyLocation" int 3
m_cmd Add "$D/X3/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
msg_end
process m6c "SyncHdr 200,Add 200,Add 405," && dm 1 get "$D/X3/Thumbprint" &&
    ok "the blob outside an Atomic: 405 (AtomicRequired)"
install_msg m6d "$D/P1" 3 modern.pfx "$PW"
process m6d "SyncHdr 200,Atomic 507,Add 418,Add 215,Add 215," &&
    ok "Add of a parameter that is set: 418"
msg_begin "$tmp/m6d2"
m_atomic
m_cmd Add "$D/P1/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
msg_end
process m6d2 "SyncHdr 200,Atomic 507,Add 418," && ok "Add of a blob when one is installed: 418"
msg_begin "$tmp/m6e"
m_atomic
m_cmd Replace "$D/X3/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
m_cmd Get "$D/P1/PFXCertPassword"
m_cmd Get "$D/P1/PFXCertBlob"
m_cmd Add "$D/P1/Thumbprint" chr x
m_cmd Add "$D/X4/KeyLocation" int 5
msg_end
process m6e "SyncHdr 200,Atomic 507,Replace 404,Get 405,Get 405,Add 405,Add 400," &&
    ok "Replace of a blob never installed 404; Get password/blob 405; Add Thumbprint 405; KeyLocation 5 400"
listing after6
cmp -s "$tmp/before6" "$tmp/after6" && ok "the refusals changed no certificate" ||
    fail "refusals changed the store"

# ---- 7. Delete and Replace ----
# int1 in CA/System before the PFX: it must stay when the PFX goes
msg_begin "$tmp/m7a"
m_cmd Delete "$D/P1"
m_cmd Delete "$U/L1"
m_cmd Delete "$D/E1"
m_cmd Delete "$U/E2"
m_cmd Delete "$D/K2"
msg_end
process m7a "SyncHdr 200,Delete 200,Delete 200,Delete 200,Delete 200,Delete 200," &&
    dm 0 store list && ! grep -q "$LEAF" "$tmp/out" && ! grep -q "$INT2" "$tmp/out" &&
    ok "Delete: leaves and intermediates gone" || fail "Delete: $(cat "$tmp/out")"
msg_begin "$tmp/m7b"
m_cmd Add "./Vendor/MSFT/CertificateStore/CA/System/$INT1/EncodedCertificate" b64 \
    "$(openssl x509 -in "$pki/int1.pem" -outform DER | base64 -w0)"
msg_end
process m7b "SyncHdr 200,Add 200,"
install_msg m7c "$D/R1" 3 modern.pfx "$PW"
process m7c "$A5" && dm 0 store list ca && grep -q "$INT2" "$tmp/out" &&
    ok "install with int1 already in CA/System"
msg_begin "$tmp/m7d"
m_atomic
m_cmd Replace "$D/R1/PFXCertBlob" chr "$(base64 -w0 "$pki/leaf3.pfx")"
m_cmd Replace "$D/R1/PFXCertPassword" chr "$PW"
m_atomic_end
msg_end
# the password of R1 served its install: Replace needs one set (404), Add it
process m7d "SyncHdr 200,Atomic 507,Replace 216,Replace 404,"
msg_begin "$tmp/m7e"
m_atomic
m_cmd Replace "$D/R1/PFXCertBlob" chr "$(base64 -w0 "$pki/leaf3.pfx")"
m_cmd Add "$D/R1/PFXCertPassword" chr "$PW"
m_atomic_end
msg_end
process m7e "SyncHdr 200,Atomic 200,Replace 200,Add 200," &&
    expect_get "$D/R1/Thumbprint" "$LEAF3" && dm 0 store list my-system &&
    ! grep -q "$LEAF " "$tmp/out" && grep -q "$LEAF3" "$tmp/out" &&
    ok "Replace re-installs: the new leaf, the old one gone" || fail "Replace: $(cat "$tmp/out")"
msg_begin "$tmp/m7e2"
m_atomic
m_cmd Replace "$D/R1/PFXCertBlob" chr "$(base64 -w0 "$pki/modern.pfx")"
m_cmd Add "$D/R1/PFXCertPassword" chr "not the password"
m_atomic_end
msg_end
listing before7e2
process m7e2 "SyncHdr 200,Atomic 200,Replace 200,Add 200," && expect_get "$D/R1/Status" 86 &&
    expect_get "$D/R1/Thumbprint" "$LEAF3" && listing after7e2 &&
    cmp -s "$tmp/before7e2" "$tmp/after7e2" &&
    ok "a Replace that does not install: Status 86, the old install stays" ||
    fail "a failed Replace changed the install"
msg_begin "$tmp/m7f"
m_cmd Delete "$D/R1"
msg_end
process m7f "SyncHdr 200,Delete 200," && dm 0 store list ca && grep -q "$INT1" "$tmp/out" &&
    ! grep -q "$INT2" "$tmp/out" &&
    ok "Delete: the intermediate that was there before stays, the one it installed goes" ||
    fail "Delete with a CA there before: $(cat "$tmp/out")"
dm 1 get "$D/R1" && ok "Delete: the {UniqueID} is gone"
check_clean "Delete and Replace"

# ---- 8. list, ?list=Struct, the password across processes ----
dm 0 get "$D" && [ "$(tr '/' '\n' <"$tmp/out" | sort | tr '\n' ' ')" = \
    "E4 E5 E6 F-corrupt F-mismatched-key F-text F-truncated F-wrong-password F-wrong-password-legacy K1 K4 MDM X3 " ] &&
    ok "PFXCertInstall lists the device IDs" || fail "list: $(cat "$tmp/out")"
dm 0 get ./Device/Vendor/MSFT/ClientCertificateInstall && [ "$(cat "$tmp/out")" = PFXCertInstall/SCEP ] &&
    ok "ClientCertificateInstall lists PFXCertInstall/SCEP" || fail "root: $(cat "$tmp/out")"
msg_begin "$tmp/m8a"
m_cmd Get "$D/MDM?list=Struct"
msg_end
process m8a "SyncHdr 200,Get 200," &&
    [ "$(grep -o '<LocURI>[^<]*</LocURI>' "$tmp/reply.xml" | sed 's/<[^>]*>//g' | grep MDM | tr '\n' ' ')" = \
        "$D/MDM $D/MDM/KeyLocation $D/MDM/Thumbprint $D/MDM/Status $D/MDM/ErrorCode " ] &&
    ok "?list=Struct: the node, its parameters, Thumbprint, Status, ErrorCode; no password" ||
    fail "?list=Struct: $(cat "$tmp/reply.xml")"
msg_begin "$tmp/m8b"
m_cmd Add "$D/N1/KeyLocation" int 3
m_cmd Add "$D/N1/PFXCertPassword" chr "$PW"
msg_end
process m8b "SyncHdr 200,Add 200,Add 200,"
msg_begin "$tmp/m8c"
m_atomic
m_cmd Add "$D/N1/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
msg_end
process m8c "SyncHdr 200,Atomic 200,Add 200," && expect_get "$D/N1/Status" 1168 &&
    expect_get "$D/N1/ErrorCode" -2147023728 &&
    ok "a password from an earlier process is not kept: Status 1168 (ERROR_NOT_FOUND)"
# a password whose Atomic rolled back is not kept: the next blob opens without one
msg_begin "$tmp/m8d"
m_atomic
m_cmd Add "$D/N2/KeyLocation" int 3
m_cmd Add "$D/N2/PFXCertPassword" chr "$PW"
m_cmd Add "$D/N2/KeyLocation" int 3
m_atomic_end
msg_end
process m8d "SyncHdr 200,Atomic 507,Add 216,Add 216,Add 418,"
msg_begin "$tmp/m8e"
m_atomic
m_cmd Add "$D/N2/KeyLocation" int 3
m_cmd Add "$D/N2/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
msg_end
process m8e "SyncHdr 200,Atomic 200,Add 200,Add 200," && expect_get "$D/N2/Status" 86 &&
    ok "the password of a rolled-back Atomic is forgotten (Status 86 without one)"
# two blobs for one {UniqueID} in one Atomic: 418
msg_begin "$tmp/m8f"
m_atomic
m_cmd Add "$U/X5/KeyLocation" int 3
m_cmd Add "$U/X5/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_cmd Add "$U/X5/PFXCertBlob" b64 "$(base64 -w0 "$pki/leaf3.pfx")"
m_atomic_end
msg_end
process m8f "SyncHdr 200,Atomic 507,Add 216,Add 216,Add 418," && ok "a second blob in the same Atomic: 418"
# Delete of the password: it is unset (Add again 200, Delete again 404)
msg_begin "$tmp/m8g"
m_cmd Add "$U/X6/PFXCertPassword" chr "$PW"
m_cmd Delete "$U/X6/PFXCertPassword"
m_cmd Delete "$U/X6/PFXCertPassword"
m_cmd Add "$U/X6/PFXCertPassword" chr "$PW"
m_cmd Add "$U/X6/PFXCertPassword" chr "$PW"
m_cmd Get "$U/X6/PFXCertPassword"
msg_end
process m8g "SyncHdr 200,Add 200,Delete 200,Delete 404,Add 200,Add 418,Get 405," &&
    ok "PFXCertPassword: Delete unsets it, Add twice 418, Get 405"
# ContainerName and the other parameters: Add, Get, Replace, Delete; names as the server spelled them
msg_begin "$tmp/m8j"
m_cmd Add "$U/X6/containername" chr "Container 1"
m_cmd Add "$U/X6/PFXKeyExportable" bool FALSE
m_cmd Replace "$U/X6/ContainerName" chr "Container 2"
m_cmd Add "$U/X6/PFXCertPasswordEncryptionType" int 3
m_cmd Add "$U/X6/PFXKeyExportable" bool true
m_cmd Replace "$U/X6/PFXKeyExportable" bool maybe
m_cmd Replace "$U/X6/KeyLocation" int 3
m_cmd Delete "$U/X6/PFXKeyExportable"
m_cmd Add "$U/X6/KeyLocation" b64 Mw==
m_cmd Add "$U/X7/PFXCertPassword" int 1234
m_atomic
m_cmd Add "$U/X7/PFXCertBlob" xml "<x/>"
m_atomic_end
msg_end
process m8j "SyncHdr 200,Add 200,Add 200,Replace 200,Add 400,Add 418,Replace 400,Replace 404,Delete 200,Add 415,Add 415,Atomic 507,Add 415," &&
    expect_get "$U/X6/ContainerName" "Container 2" && dm 1 get "$U/X6/PFXKeyExportable" &&
    dm 0 get "$U/X6" && [ "$(cat "$tmp/out")" = containername ] &&
    dm 1 get "$U/X7" &&
    ok "parameters: Add, Replace (the server's spelling kept), Delete; bad values 400, formats 415" ||
    fail "parameters: $(cat "$tmp/out")"
# at most 1,000 {UniqueID}s per scope: the next Add, also an implicit one, is 420
dm 0 get "$U" && have=$(tr '/' '\n' <"$tmp/out" | grep -c .)
msg_begin "$tmp/m8h"
i=$have want=
while [ "$i" -lt 1000 ]; do
    i=$((i + 1))
    m_cmd Add "$U/Many$i" node
    want="${want}Add 200,"
done
m_cmd Add "$U/OneTooMany" node
m_cmd Add "$U/OneTooMany2/KeyLocation" int 3
msg_end
process m8h "SyncHdr 200,${want}Add 420,Add 420," && ok "1,000 {UniqueID}s under ./User, then 420"
msg_begin "$tmp/m8i"
m_cmd Add "$D/RoomLeft" node
msg_end
process m8i "SyncHdr 200,Add 200," && ok "./Device has its own 1,000"
check_clean "the end"
# a damaged install record is a problem store check names
rec=$(grep -l "^id RoomLeft$" "$state"/store/state/pfx-d-*)
cp "$rec" "$tmp/rec.saved"
printf 'omadm-pfx 1\nns 0\nid RoomLeft\nbogus\nend\n' >"$rec"
dm 1 store check && grep -q "state/$(basename "$rec"): PFX install record is damaged" "$tmp/err" &&
    ok "store check names a damaged PFX install record" || fail "store check: $(cat "$tmp/err")"
printf 'omadm-pfx 9\n' >"$rec"
dm 1 store check && grep -q "newer than this library" "$tmp/err" &&
    ok "store check names a PFX install record of a newer format" || fail "store check: $(cat "$tmp/err")"
cp "$tmp/rec.saved" "$rec"
# the Thumbprint of a leaf deleted through CertificateStore reads ""
msg_begin "$tmp/m9"
m_cmd Delete "./Vendor/MSFT/CertificateStore/My/System/$(thumb "$pki/mdm.pem")"
msg_end
process m9 "SyncHdr 200,Delete 200," && expect_get "$D/MDM/Thumbprint" "" &&
    ok "Thumbprint reads \"\" once the leaf was deleted through CertificateStore"
check_clean "after all"

# ---- 10. KeyLocation 1 and 2 with a TPM (swtpm): the key imported into it ----
# shellcheck source=SCRIPTDIR/lib/swtpm.sh
. "$here/lib/swtpm.sh"
if ! swtpm_available; then
    fail "swtpm, swtpm_setup or the OpenSSL tpm2 provider is missing (./setup.sh installs them)"
elif ! swtpm_start "$tmp/tpm"; then
    fail "swtpm did not start (log in $tmp/tpm)"
else
    export DMCLIENT_TPM_TCTI="$swtpm_tcti"
    mkcert leaf4 "/CN=PFX Test leaf4" int2
    mkcert leaf5 "/CN=PFX Test leaf5" int2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/leafec.key" \
        -out "$pki/leafec.csr" -subj "/CN=PFX Test EC leaf" 2>/dev/null &&
        openssl x509 -req -in "$pki/leafec.csr" -CA "$pki/int2.pem" -CAkey "$pki/int2.key" \
            -set_serial 0x4543 -out "$pki/leafec.pem" -days 30 -extfile "$pki/leaf.ext" 2>/dev/null ||
        exit 1
    pfx t1.pfx leaf4 -passout "pass:$PW"
    pfx t2.pfx leaf5 -legacy -passout "pass:$PW"
    pfx tec.pfx leafec -passout "pass:$PW"
    LEAF4=$(thumb "$pki/leaf4.pem") LEAF5=$(thumb "$pki/leaf5.pem") LEAFEC=$(thumb "$pki/leafec.pem")
    K=./Vendor/omadm/CertificateKeys/my-system
    # in_tpm THUMB: the store keeps the TPM's blob, no plaintext key
    in_tpm() {
        head -n 1 "$state/store/keys/my-system-$1" 2>/dev/null |
            grep -qx -- '-----BEGIN TSS2 PRIVATE KEY-----' &&
            ! grep -q -- 'BEGIN PRIVATE KEY\|BEGIN RSA PRIVATE KEY' "$state/store/keys/my-system-$1" &&
            expect_get "$K/$1" TPM
    }
    install_msg m10a "$D/T1" 1 t1.pfx "$PW"
    process m10a "$A5" && expect_get "$D/T1/Thumbprint" "$LEAF4" && expect_get "$D/T1/ErrorCode" 0 &&
        in_tpm "$LEAF4" && ok "KeyLocation 1 with a TPM: installed, the key imported into the TPM (TSS2 blob only)" ||
        fail "KeyLocation 1 with a TPM: $(head -n 1 "$state/store/keys/my-system-$LEAF4" 2>&1)"
    echo "signed in the TPM" >"$tmp/tdata"
    if dm 0 store export my-system "$LEAF4" --key && cp "$tmp/out" "$tmp/t1.pem" &&
        grep -q -- '-----BEGIN TSS2 PRIVATE KEY-----' "$tmp/t1.pem" &&
        TPM2OPENSSL_TCTI=$swtpm_tcti openssl pkeyutl -provider tpm2 -provider default -sign \
            -inkey "$tmp/t1.pem" -rawin -digest sha256 -in "$tmp/tdata" -out "$tmp/t1.sig" 2>/dev/null &&
        openssl x509 -in "$tmp/t1.pem" -pubkey -noout >"$tmp/t1.pub" &&
        openssl pkeyutl -verify -pubin -inkey "$tmp/t1.pub" -rawin -digest sha256 -in "$tmp/tdata" \
            -sigfile "$tmp/t1.sig" >/dev/null 2>&1; then
        ok "the exported TPM blob signs (openssl -provider tpm2) for the PFX's certificate"
    else
        fail "the imported key does not sign for its certificate"
    fi
    install_msg m10b "$D/T2" 2 t2.pfx "$PW"
    process m10b "$A5" && expect_get "$D/T2/Thumbprint" "$LEAF5" && in_tpm "$LEAF5" &&
        ok "KeyLocation 2 with a TPM (a legacy PFX): the key in the TPM" ||
        fail "KeyLocation 2 with a TPM"
    # an EC key: the TPM store takes RSA keys only; 2 keeps it in software, 1 fails
    install_msg m10c "$D/T3" 2 tec.pfx "$PW"
    process m10c "$A5" && expect_get "$D/T3/Thumbprint" "$LEAFEC" &&
        head -n 1 "$state/store/keys/my-system-$LEAFEC" | grep -qx -- '-----BEGIN PRIVATE KEY-----' &&
        expect_get "$K/$LEAFEC" Software && signs my-system "$LEAFEC" &&
        ok "KeyLocation 2, an EC key the TPM does not take: a software key (CertificateKeys: Software)" ||
        fail "KeyLocation 2 with an EC key"
    listing before10
    install_msg m10d "$D/T4" 1 tec.pfx "$PW"
    process m10d "$A5" && expect_get "$D/T4/ErrorCode" -2146893783 && dm 1 get "$D/T4/Thumbprint" &&
        listing after10 && cmp -s "$tmp/before10" "$tmp/after10" &&
        ok "KeyLocation 1, an EC key: 0x80090029, nothing installed" || fail "KeyLocation 1 with an EC key"
    # Delete removes the blob with the certificate
    msg_begin "$tmp/m10e"
    m_cmd Delete "$D/T1"
    msg_end
    process m10e "SyncHdr 200,Delete 200," && [ ! -e "$state/store/keys/my-system-$LEAF4" ] &&
        ok "Delete of a TPM-keyed install removes its key blob" || fail "Delete left the key blob"
    check_clean "TPM installs"
    swtpm_stop
    unset DMCLIENT_TPM_TCTI
fi

finish test-pfx
