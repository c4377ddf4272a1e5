#!/usr/bin/env bash
# Build crash from Debian's source tarball into a cache outside the repo.
#
#   build-crash.sh [VERSION]      # default 8.0.6 (trixie's source); 9.0.x (9.0.2) from sid
#
# 8.0.6's orig tarball bundles gdb-10.2.tar.gz (its .dsc answers 404, so only the tarball is
# used).  sid's 9.0.x source is Debian's 3.0 (quilt) package with the gdb source as a second
# component (crash_9.0.2+~16.3.orig-gdb.tar.gz) and patches that make crash use it (gdb 16.3,
# no wget): it is unpacked with dpkg-source -x, which applies them.
#
# Prints the path of the built binary on stdout (last line); reuses the cache when present.
# The built source tree is kept beside the binary ($CACHE/crash-VERSION/src), its defs.h
# marking a complete build.  The source files are those tests/lab/lab.lock pins
# (sha256-checked); the host's apt sources are not touched.
# Build output goes to $CACHE/logs/build-crash-VERSION.log; on failure its last 30 lines
# and its path are printed.
# Env: CRASH_EXT_CACHE (default ~/.cache/crash-ext).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=${1:-8.0.6}
case "$VERSION" in
    8.*) SUITE=trixie;;
    9.*) SUITE=sid;;
    *) echo "build-crash: no Debian suite known for crash $VERSION" >&2; exit 2;;
esac
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
DEST=$CACHE/crash-$VERSION
BIN=$DEST/crash
LOG=$CACHE/logs/build-crash-$VERSION.log
. "$HERE/log.sh"; log() { lab_log build-crash "$@"; }
fail() {
    log "$*"
    if [ -s "$LOG" ]; then tail -n 30 "$LOG" >&2; log "full log: $LOG"; fi
    exit 1
}

if [ -x "$BIN" ] && [ -f "$DEST/src/defs.h" ] && "$BIN" --version 2>/dev/null | grep -q "crash $VERSION"; then
    echo "$BIN"; exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root to install build dependencies (apt-get)"; exit 2; }
mkdir -p "$CACHE/logs"
# One build at a time (parallel test runs): wait, then see whether it is done.
exec 8>"$CACHE/.build-crash-$VERSION.lock"
flock 8
if [ -x "$BIN" ] && [ -f "$DEST/src/defs.h" ]; then echo "$BIN"; exit 0; fi
: > "$LOG"
t0=$(date +%s)
log "crash $VERSION: installing build dependencies (log: $LOG)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    build-essential bison flex gawk texinfo zlib1g-dev libncurses-dev liblzo2-dev \
    libsnappy-dev libzstd-dev binutils-dev dpkg-dev ca-certificates libgmp-dev libmpfr-dev \
    >>"$LOG" 2>&1 || fail "apt-get install of the build dependencies failed"

# The source is the one tests/lab/lab.lock pins (no package index is read).
. "$HERE/lablock.sh"
srcver=$(lock_value crash "$VERSION")
[ -n "$srcver" ] || fail "crash $VERSION is not pinned in $LAB_LOCK (make lab-update)"
rm -rf "$DEST"; mkdir -p "$DEST/dl"; cd "$DEST/dl"
log "crash $VERSION: downloading Debian's source ($SUITE, $srcver, pinned)"
lock_fetch "crash-$VERSION" . source >>"$LOG" 2>&1 || fail "crash $srcver: pinned source not fetched"
upstream=${srcver%-*}
case "$VERSION" in
8.*)
    TARBALL=$(ls crash_"$upstream".orig.tar.* 2>/dev/null | head -1)
    [ -n "$TARBALL" ] || fail "could not download crash_$upstream.orig.tar.* from Debian's pool"
    mkdir ../src; tar xf "$TARBALL" -C ../src --strip-components=1
    cd ../src; rm -rf ../dl
    ls gdb-*.tar.gz >/dev/null 2>&1 || fail "gdb tarball missing from $TARBALL (crash would try to download it)"
    ;;
*)
    DSC=$(ls crash_"$srcver".dsc 2>/dev/null | head -1)
    [ -n "$DSC" ] || fail "could not download crash_$srcver.dsc from Debian's pool"
    ls crash_"$upstream".orig-gdb.tar.* >/dev/null 2>&1 \
        || fail "crash $srcver: no orig-gdb component tarball (crash would try to download gdb)"
    dpkg-source --no-check -x "$DSC" ../src >>"$LOG" 2>&1 || fail "dpkg-source -x $DSC failed"
    # dpkg-source leaves copies of the orig tarballs beside the tree it unpacked
    cd ../src; rm -rf ../dl ../crash_*.tar.*
    [ -d gdb ] || fail "crash $srcver: unpacked source has no gdb/ directory"
    ;;
esac
log "crash $VERSION: building (about 6 min on 2 cores)"
make -j"$(nproc)" lzo snappy zstd >>"$LOG" 2>&1 || fail "crash $VERSION: make failed"
install -m 0755 crash "$BIN"
log "crash $VERSION: built in $(( $(date +%s) - t0 ))s: $BIN"
echo "$BIN"
