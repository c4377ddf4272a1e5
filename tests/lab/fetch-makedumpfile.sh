#!/usr/bin/env bash
# Fetch the makedumpfile the lab's kdump guests run (tests/lab/kdump.py): trixie's,
# unpacked (not installed) into the cache.  Debian 12's own 1.7.2 does not know 6.12
# ("The kernel version is not supported") and leaves its slab pages out as if free;
# trixie's 1.7.6 does, and has zstd (-z).  It links only libraries Debian 12 has
# (glibc >= 2.34, libzstd, liblzo2, libdw, libelf, zlib: deps.sh's makedumpfile package
# brings those that are not always there).
#
#   fetch-makedumpfile.sh [--cached]     # --cached: only print the cached path, never fetch
#
# Prints the path of the binary on stdout (last line).  The package is the one
# tests/lab/lab.lock pins (line "makedumpfile SUITE VERSION", sha256-checked); the host's
# apt sources are not touched.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHED=; [ "${1:-}" = --cached ] && { CACHED=1; shift; }
SUITE=trixie
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
. "$HERE/log.sh"; log() { lab_log fetch-makedumpfile "$@"; }
. "$HERE/lablock.sh"
ver=$(lock_value makedumpfile "$SUITE")
[ -n "$ver" ] || { log "no makedumpfile of $SUITE pinned in $LAB_LOCK (make lab-update)"; exit 1; }
DEST=$CACHE/makedumpfile/$SUITE-${ver//:/_}
BIN=$DEST/usr/bin/makedumpfile
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
[ -z "$CACHED" ] || { log "makedumpfile $ver of $SUITE is not in $CACHE (make lab fetches it)"; exit 1; }
mkdir -p "$CACHE/makedumpfile"
exec 9>"$CACHE/makedumpfile/.fetch.lock"; flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp"; cd "$DEST.tmp"
lock_fetch "makedumpfile-$SUITE" . deb >/dev/null 2>&1 \
    || { log "cannot download makedumpfile $ver of $SUITE"; exit 1; }
dpkg-deb -x makedumpfile_*.deb . && rm -f makedumpfile_*.deb
[ -x "$DEST.tmp/usr/bin/makedumpfile" ] || { log "no usr/bin/makedumpfile in the package"; exit 1; }
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
log "makedumpfile $ver from $SUITE unpacked in $DEST"
echo "$BIN"
