#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-cli-conf.sh BUILD_DIR
#
# dmclient.conf as docs/cli.md describes it: '#' after white space starts a
# comment (also after a value), a "quoted" value keeps '#' and spaces, blank
# lines count for the line numbers of errors, and an unknown key, a bad value,
# an unterminated quote or text after a closing quote each stop dmclient with
# one line naming the file, the line and the key (exit 1).  The
# ./DevDetail/Ext/Microsoft keys give their values, and absent or empty the
# OS's (host name, os-release, uname, /proc/meminfo, DMI); LocalTime follows TZ.
# tpm_tcti and DMCLIENT_TPM_TCTI are checked as TCTI strings.
set -u
build=${1:?usage: test-cli-conf.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$here/lib/common.sh"
dmclient=$build/bin/dmclient
[ -x "$dmclient" ] || { echo "FAIL: $dmclient missing (build first)"; exit 1; }
scratch_dir cli-conf
state=$tmp/state
mkdir -p "$state"

# get URI WANT: the node's value must be WANT, stderr empty
get() {
    out=$(timeout -s KILL 30 "$dmclient" --state-dir "$state" get "$1" 2>"$tmp/err")
    rc=$?
    if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ] || [ "$out" != "$2" ]; then
        fail "get $1: exit $rc, '$out' (want '$2'): $(cat "$tmp/err")"
    else
        echo "PASS: get $1 = '$2'"
    fi
}
# refused CONF_TEXT WANT_STDERR: dmclient exits 1 with exactly that line
refused() {
    printf '%b' "$1" >"$state/dmclient.conf"
    timeout -s KILL 30 "$dmclient" --state-dir "$state" get ./DevInfo/DevId >"$tmp/out" 2>"$tmp/err"
    rc=$?
    want="dmclient: $state/dmclient.conf:$2"
    if [ "$rc" -ne 1 ] || [ "$(cat "$tmp/err")" != "$want" ] || [ -s "$tmp/out" ]; then
        fail "conf '$1': exit $rc, stderr '$(cat "$tmp/err")' (want exit 1, '$want')"
    else
        echo "PASS: refused: $2"
    fi
}

cat >"$state/dmclient.conf" <<'CONF'
# a whole-line comment

dev_id = "gw 100 # 7"    # a quoted value keeps '#'
man = Example GmbH   # trailing comment after a bare value
fwv = 1.0#build7
max_nodes = 500 # a number with a comment
server_url = https://dm.example.com/omadm   # production
CONF
get ./DevInfo/DevId "gw 100 # 7"
get ./DevInfo/Man "Example GmbH"
get ./DevDetail/FwV "1.0#build7"

# ./DevDetail/Ext/Microsoft: the keys, else the OS's values (docs/cli.md)
M=./DevDetail/Ext/Microsoft
cat >"$state/dmclient.conf" <<'CONF'
device_name = "Lab PC # 7"
dns_computer_name = lab-pc-7
os_platform = "Example OS 1.0"
processor_type = 8664
total_ram = 16384   # MB
smbios_version = 1.16.3-2
CONF
get $M/DeviceName "Lab PC # 7"
get $M/DNSComputerName lab-pc-7
get $M/OSPlatform "Example OS 1.0"
get $M/ProcessorType 8664
get $M/TotalRAM 16384
get $M/SMBIOSVersion 1.16.3-2
printf 'device_name =\nos_platform = ""\n' >"$state/dmclient.conf" # empty: the OS's
host=$(hostname)
get $M/DeviceName "$host"
label=$(printf '%s' "${host%%.*}" | cut -c1-63)
get $M/DNSComputerName "$label"
if [ -r /etc/os-release ] && grep -q '^PRETTY_NAME=' /etc/os-release; then
    pretty=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | head -n 1 | sed 's/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/')
    get $M/OSPlatform "$pretty"
fi
case $(uname -m) in
x86_64 | amd64) cpu=8664 ;;
i586 | i686) cpu=586 ;;
i486) cpu=486 ;;
i386) cpu=386 ;;
ia64) cpu=2200 ;;
*) cpu=0 ;;
esac
get $M/ProcessorType $cpu
ram=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
get $M/TotalRAM "$ram"
bios=unknown
if [ -r /sys/class/dmi/id/bios_version ]; then
    b=$(head -n 1 /sys/class/dmi/id/bios_version 2>/dev/null | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    [ -n "$b" ] && bios=$b
fi
get $M/SMBIOSVersion "$bios"
out=$(TZ=EST5 "$dmclient" --state-dir "$state" get $M/LocalTime 2>&1)
case $out in
[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]-05:00) echo "PASS: LocalTime (TZ=EST5) $out" ;;
*) fail "LocalTime (TZ=EST5): '$out'" ;;
esac
refused 'processor_type = x86\n' '1: bad value for '"'"'processor_type'"'"
refused '\ntotal_ram = 12.5\n' '2: bad value for '"'"'total_ram'"'"
refused 'total_ram = -1\n' '1: bad value for '"'"'total_ram'"'"

refused '\n\nbogus_key = 1\n' '3: unknown key '"'"'bogus_key'"'"
refused 'max_nodes = -1\n' '1: bad value for '"'"'max_nodes'"'"
refused 'max_nodes = 100 extra\n' '1: bad value for '"'"'max_nodes'"'"
refused 'dev_id = "abc\n' '1: bad value for '"'"'dev_id'"'"
refused 'dev_id = "abc" def\n' '1: bad value for '"'"'dev_id'"'"
refused '# c\nno equals sign\n' "2: expected 'key = value'"
# tpm_tcti (docs/keys.md): a TCTI string; nothing connects to the TPM for a get
refused 'tpm_tcti = swtpm:host=a;b\n' '1: bad value for '"'"'tpm_tcti'"'"
printf 'tpm_tcti = device:/dev/tpmrm0\ndev_id = tpm-1\n' >"$state/dmclient.conf"
get ./DevInfo/DevId tpm-1
# DMCLIENT_TPM_TCTI wins, and is checked the same way
DMCLIENT_TPM_TCTI='bad value' timeout -s KILL 30 "$dmclient" --state-dir "$state" get ./DevInfo/DevId \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && [ "$(cat "$tmp/err")" = "dmclient: DMCLIENT_TPM_TCTI: not a TCTI configuration string: bad value" ]; then
    echo "PASS: DMCLIENT_TPM_TCTI 'bad value' refused"
else
    fail "DMCLIENT_TPM_TCTI 'bad value': exit $rc, $(cat "$tmp/err")"
fi

finish test-cli-conf
