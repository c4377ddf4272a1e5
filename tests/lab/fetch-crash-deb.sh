#!/usr/bin/env bash
# Fetch the crash binary a distribution ships, unpacked (not installed) into the cache.
#
#   fetch-crash-deb.sh [SUITE]     # default bookworm: Debian 12's crash (8.0.2)
#
# Prints the path of the binary on stdout (last line).  Used by the tests that check
# crash-ext refuses a crash that cannot read the lab's kernels.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${1:-bookworm}
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
. "$HERE/log.sh"; log() { lab_log fetch-crash-deb "$@"; }
. "$HERE/papt.sh"
papt_setup "$SUITE" 2>/dev/null || { log "could not read $SUITE's package index"; exit 1; }
ver=$(papt apt-cache show crash 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[ -n "$ver" ] || { log "no crash package in $SUITE"; exit 1; }
DEST=$CACHE/crash-deb/$SUITE-$ver
if [ -x "$DEST/usr/bin/crash" ]; then echo "$DEST/usr/bin/crash"; exit 0; fi
rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp"; cd "$DEST.tmp"
papt apt-get download -q "crash=$ver" >/dev/null 2>&1 || { log "cannot download crash $ver"; exit 1; }
dpkg-deb -x crash_*.deb . && rm -f crash_*.deb
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
log "crash $ver from $SUITE unpacked in $DEST"
echo "$DEST/usr/bin/crash"
