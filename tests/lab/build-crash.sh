#!/usr/bin/env bash
# Build crash 8.0.6 from Debian's source tarball into a cache outside the repo.
# Prints the path of the built binary on stdout (last line). Reuses the cache when present.
# Env: CRASH_EXT_CACHE (default ~/.cache/crash-ext).
set -euo pipefail
VERSION=8.0.6
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
DEST=$CACHE/crash-$VERSION
BIN=$DEST/crash
log() { echo "build-crash: $*" >&2; }

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "crash $VERSION"; then
    echo "$BIN"; exit 0
fi
[ "$(id -u)" = 0 ] || { log "needs root to install build dependencies (apt-get)"; exit 2; }

SRC_LIST=/etc/apt/sources.list.d/crash-ext-src.sources
if ! apt-cache showsrc crash 2>/dev/null | grep -q "^Version: $VERSION"; then
    log "adding a deb-src entry for trixie ($SRC_LIST) to fetch crash $VERSION's source"
    cat > "$SRC_LIST" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
fi
log "installing build dependencies"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    build-essential bison flex gawk texinfo zlib1g-dev libncurses-dev liblzo2-dev \
    libsnappy-dev libzstd-dev binutils-dev dpkg-dev wget ca-certificates >&2

WORK=$CACHE/build-crash
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
# The .dsc may 404 on the mirror; --download-only still brings the orig tarball.
apt-get source --download-only "crash=$VERSION-1" >&2 || true
TARBALL=$(ls crash_"$VERSION".orig.tar.* 2>/dev/null | head -1)
[ -n "$TARBALL" ] || { log "could not download crash_$VERSION.orig.tar.gz from Debian's pool"; exit 1; }
tar xf "$TARBALL"
dir=$(find . -maxdepth 1 -type d -name "crash*" | head -1)
cd "$dir"
ls gdb-*.tar.gz >/dev/null 2>&1 || { log "gdb tarball missing from $TARBALL (crash would try to download it)"; exit 1; }
log "building crash $VERSION (takes ~5-6 min on 2 cores)"
make -j"$(nproc)" lzo snappy zstd >&2
mkdir -p "$DEST"
install -m 0755 crash "$BIN"
cd "$CACHE"; rm -rf "$WORK"
"$BIN" --version | head -1 >&2
echo "$BIN"
