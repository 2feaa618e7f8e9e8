#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/scripts/test-crash-consistency.sh BUILD_DIR - kill -9 dmclient at
# random points of a certificate-store session (at least 200 real kills) and
# check after each kill that `dmclient store check` passes and the store holds
# exactly the messages before the one in flight, or that one too; then finish
# the session and compare with an uninterrupted run.  Then the same for the
# engine tree (at least 100 kills): messages changing leaves of a ~1 MB tree
# written in the previous format, killed at random moments and when a tree
# bucket or the manifest is being written; the nodes each message touches
# must read as before it or after it.  Then PFX installs, Replaces and
# Deletes (ClientCertificateInstall/PFXCertInstall, at least 60 kills): every
# certificate with its key and every install's Thumbprint and Status as
# before the message or after it.  The work is done by crash_consistency.py
# beside this script; see docs/testing.md.
#
# CRASH_SEED   seed of the session and of the kill schedule (default 1)
# CRASH_KILLS  real kills to reach (default 200, at least 200)
# CRASH_KEEP   1: keep the scratch directory also when the test passes
# CRASH_TMPDIR where the scratch directory goes (default BUILD_DIR; not tmpfs)
set -u
build=${1:?usage: tests/scripts/test-crash-consistency.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd) || exit 1
dm=$build/bin/dmclient
if [ ! -x "$dm" ]; then
    echo "test-crash-consistency: $dm is missing (build first)" >&2
    exit 1
fi
for tool in python3 openssl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-crash-consistency: $tool is needed (./setup.sh installs it)" >&2
        exit 1
    fi
done
seed=${CRASH_SEED:-1}
kills=${CRASH_KILLS:-200}
# The scratch directory (state directories included) goes under BUILD_DIR
# unless CRASH_TMPDIR says otherwise: on tmpfs fsync costs nothing, the
# journal windows shrink to microseconds and too few kills land in them.
work=$(mktemp -d "${CRASH_TMPDIR:-$build}/crash-consistency.XXXXXX") || exit 1
# a private copy: a rebuild during the run must not swap the binary under it
echo "test-crash-consistency: $dm"
if cp "$dm" "$work/dmclient"; then
    python3 "$here/crash_consistency.py" --dmclient "$work/dmclient" --work "$work" \
        --seed "$seed" --kills "$kills"
    rc=$?
else
    rc=1
fi
if [ "$rc" -eq 0 ] && [ "${CRASH_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "test-crash-consistency: scratch directory kept: $work"
fi
exit "$rc"
