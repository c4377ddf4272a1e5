#!/usr/bin/env bash
# Install the Debian packages the project needs (idempotent; quick when all are present).
set -euo pipefail
PKGS="qemu-system-x86 busybox-static zstd gcc make libc6-dev graphviz python3-venv dwarves libpython3.11-dev zip"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || { echo "deps: as root, run: apt-get install$missing" >&2; exit 2; }
    echo "deps: installing$missing" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi
