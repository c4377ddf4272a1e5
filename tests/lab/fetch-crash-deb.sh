#!/usr/bin/env bash
# Fetch the crash binary a distribution ships, unpacked (not installed) into the cache.
#
#   fetch-crash-deb.sh [--cached] [SUITE]   # default bookworm: Debian 12's crash (8.0.2)
#
# --cached: only print the path of the binary already in the cache (exit 1 if it is not:
# `make lab` fetches it), never download.
#
# Prints the path of the binary on stdout (last line).  The package is the one
# tests/lab/lab.lock pins.  `make lab` fetches it for the tests that check crash-ext
# refuses a crash that cannot read the lab's kernels.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHED=; [ "${1:-}" = --cached ] && { CACHED=1; shift; }
SUITE=${1:-bookworm}
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
. "$HERE/log.sh"; log() { lab_log fetch-crash-deb "$@"; }
. "$HERE/lablock.sh"
ver=$(lock_value crash-deb "$SUITE")
[ -n "$ver" ] || { log "no crash package of $SUITE pinned in $LAB_LOCK (make lab-update)"; exit 1; }
DEST=$CACHE/crash-deb/$SUITE-$ver
if [ -x "$DEST/usr/bin/crash" ]; then echo "$DEST/usr/bin/crash"; exit 0; fi
[ -z "$CACHED" ] || { log "crash $ver of $SUITE is not in $CACHE (make lab fetches it)"; exit 1; }
rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp"; cd "$DEST.tmp"
lock_fetch "crash-deb-$SUITE" . deb >/dev/null 2>&1 || { log "cannot download crash $ver"; exit 1; }
dpkg-deb -x crash_*.deb . && rm -f crash_*.deb
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
log "crash $ver from $SUITE unpacked in $DEST"
echo "$DEST/usr/bin/crash"
