# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tests/scripts/lib/swtpm.sh - a software TPM 2.0 for the tests (POSIX sh; sourced):
# Debian's swtpm, its state made by swtpm_setup in a directory of the test's, serving
# the TPM command and control channels on 127.0.0.1 (a free port P and P + 1, the
# swtpm TCTI's convention).
#
#   swtpm_available     0 when swtpm, swtpm_setup, python3 and the OpenSSL tpm2 provider
#                       are installed (./setup.sh installs them)
#   swtpm_start DIR     make the TPM state in DIR (created) and start swtpm; sets
#                       $swtpm_pid and $swtpm_tcti ("swtpm:host=127.0.0.1,port=P"); 1
#                       when it does not answer within 5 s (the state and swtpm's log
#                       stay in DIR)
#   swtpm_stop          stop the swtpm started last (nothing when none runs)
#   swtpm_free_port     a free TCP port P on 127.0.0.1 with P + 1 free as well

# shellcheck disable=SC2034  # swtpm_tcti is for the sourcing script
swtpm_pid=
swtpm_tcti=

swtpm_available() {
    command -v swtpm >/dev/null 2>&1 && command -v swtpm_setup >/dev/null 2>&1 &&
        command -v python3 >/dev/null 2>&1 &&
        [ -n "$(find /usr/lib /usr/local/lib -name tpm2.so -path '*ossl-modules*' 2>/dev/null | head -n 1)" ]
}

swtpm_free_port() {
    python3 -c '
import socket
for _ in range(100):
    a = socket.socket()
    a.bind(("127.0.0.1", 0))
    p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    finally:
        b.close()
        a.close()
    print(p)
    break
'
}

swtpm_start() {
    mkdir -p "$1" || return 1
    swtpm_setup --tpm2 --tpmstate "$1" --overwrite >"$1/setup.log" 2>&1 || {
        echo "swtpm_setup failed: $(tail -n 3 "$1/setup.log")"
        return 1
    }
    _port=$(swtpm_free_port)
    [ -n "$_port" ] || return 1
    # not --daemon: a daemonised swtpm answers with TPM failures here
    swtpm socket --tpm2 --tpmstate dir="$1" --flags not-need-init,startup-clear \
        --server type=tcp,port="$_port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((_port + 1)),bindaddr=127.0.0.1 \
        --log file="$1/swtpm.log" >/dev/null 2>&1 &
    swtpm_pid=$!
    swtpm_tcti="swtpm:host=127.0.0.1,port=$_port"
    _i=0
    while [ $_i -lt 50 ]; do
        if python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$_port" 2>/dev/null; then
            return 0
        fi
        kill -0 "$swtpm_pid" 2>/dev/null || break
        sleep 0.1
        _i=$((_i + 1))
    done
    echo "swtpm did not start: $(tail -n 3 "$1/swtpm.log" 2>/dev/null)"
    swtpm_stop
    return 1
}

swtpm_stop() {
    if [ -n "$swtpm_pid" ]; then
        kill "$swtpm_pid" 2>/dev/null
        wait "$swtpm_pid" 2>/dev/null
    fi
    swtpm_pid=
}
