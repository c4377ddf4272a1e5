#!/usr/bin/env bash
# Fetch a Debian generic amd64 kernel (image, vmlinux from -dbg, headers) into the cache.
# Nothing is installed on the host: the packages are downloaded and extracted.
# Usage: fetch-kernel.sh [ABI|FAMILY]
#   ABI like 6.1.0-56-amd64 or 6.12.117+deb12-amd64; FAMILY like 6.1 or 6.12 picks the newest
#   generic amd64 ABI of that series in the package index (default: 6.1, Debian 12's own;
#   6.12 comes from bookworm-backports).
# Prints the kernel cache directory on stdout (last line).
set -euo pipefail
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
log() { echo "fetch-kernel: $*" >&2; }
ABI=${1:-6.1}
BPO_LIST=/etc/apt/sources.list.d/crash-ext-backports.sources
add_backports() {   # newer series (6.12) and their ABIs live in bookworm-backports
    [ -f "$BPO_LIST" ] && return 1
    log "adding bookworm-backports to apt's sources ($BPO_LIST)"
    printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
        "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > "$BPO_LIST"
    apt-get update -q >&2
}
newest_in_family() {
    apt-cache search --names-only "^linux-image-${1//./\\.}[.-].*-amd64-dbg\$" | awk '{print $1}' \
        | grep -v -e cloud -e '-rt-' | sed -e 's/^linux-image-//' -e 's/-dbg$//' | sort -V | tail -1
}
case "$ABI" in
    *-amd64) apt-cache show "linux-image-$ABI-dbg" >/dev/null 2>&1 || add_backports || true;;
    *) fam=$ABI
       ABI=$(newest_in_family "$fam")
       if [ -z "$ABI" ] && add_backports; then ABI=$(newest_in_family "$fam"); fi
       [ -n "$ABI" ] || { log "no generic amd64 kernel of series $fam in the package index"; exit 1; };;
esac
case "$ABI" in *cloud*|*-rt-*) log "use the generic amd64 kernel, not $ABI (crash fails on cloud kernels)"; exit 2;; esac
DIR=$CACHE/kernel/$ABI
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi
# One fetch at a time (parallel test runs): wait, then see whether it is done.
mkdir -p "$CACHE/kernel"
exec 9>"$CACHE/kernel/.fetch.lock"
flock 9
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi
rm -rf "$DIR"; mkdir -p "$DIR/debs"; cd "$DIR/debs"
# The image package is 'linux-image-ABI' (signed) or 'linux-image-ABI-unsigned'.
img=linux-image-$ABI
apt-cache show "$img" >/dev/null 2>&1 || img=linux-image-$ABI-unsigned
# Headers for building the lab module: extracted here, not installed (installing the
# headers of some ABIs pulls the kernel image onto the host).
hdr=linux-headers-$ABI
deps=$(apt-cache depends "$hdr" 2>/dev/null | awk '/Depends: linux-(headers|kbuild)/ {print $2}')
[ -n "$deps" ] || { log "no $hdr (or its common/kbuild packages) in the package index"; exit 1; }
log "downloading $img, linux-image-$ABI-dbg, $hdr" $deps
apt-get download -q "$img" "linux-image-$ABI-dbg" "$hdr" $deps >&2
cd "$DIR"
dpkg-deb -x debs/${img}_*.deb root
for p in "$hdr" $deps; do dpkg-deb -x debs/"${p}"_*.deb headers; done
KDIR=$DIR/headers/usr/src/linux-headers-$ABI
sed -i "s#^include /usr/src/#include $DIR/headers/usr/src/#" "$KDIR/Makefile"
[ -f "$KDIR/Module.symvers" ] || { log "headers for $ABI incomplete"; exit 1; }
echo "$KDIR" > kdir
dpkg-deb --fsys-tarfile debs/linux-image-"$ABI"-dbg_*.deb | tar x --wildcards './usr/lib/debug/boot/vmlinux-*'
mv usr/lib/debug/boot/vmlinux-"$ABI" vmlinux; rm -rf usr
cp root/boot/vmlinuz-"$ABI" vmlinuz
mkdir -p modules
for m in qemu_fw_cfg; do
    f=$(find root/lib/modules -name "$m.ko*" | head -1)
    [ -n "$f" ] || { log "module $m not found in $img"; exit 1; }
    case "$f" in *.xz) xz -dc "$f" > modules/$m.ko;; *.zst) zstd -dqc "$f" > modules/$m.ko;; *) cp "$f" modules/$m.ko;; esac
done
rm -rf root debs
echo "$ABI" > abi
touch .complete
log "kernel $ABI ready in $DIR"
echo "$DIR"
