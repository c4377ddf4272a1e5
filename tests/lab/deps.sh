#!/usr/bin/env bash
# Install the Debian packages the project needs (idempotent; quick when all are present).
# apt's output goes to $CRASH_EXT_CACHE/logs/deps.log; on failure its last 30 lines are shown.
set -euo pipefail
PKGS="qemu-system-x86 busybox-static zstd gcc make libc6-dev graphviz python3 python3-venv
      dwarves debootstrap xz-utils ca-certificates git gdb kexec-tools makedumpfile faketime"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
[ -n "$missing" ] || exit 0
[ "$(id -u)" = 0 ] || { echo "deps: as root, run: apt-get install$missing" >&2; exit 2; }
LOG=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}/logs/deps.log
mkdir -p "$(dirname "$LOG")"
echo "deps: installing$missing (log: $LOG)" >&2
# kexec-tools and makedumpfile are for the lab's kdump guests (their binaries and the
# libraries ldd lists go into the guest): never let kexec-tools take over the host's reboots
echo "kexec-tools kexec-tools/load_kexec boolean false" | debconf-set-selections 2>/dev/null || true
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $missing; } >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2; echo "deps: apt-get failed; full log: $LOG" >&2; exit 1
fi
