#!/usr/bin/env bash
# Fetch a Debian generic amd64 kernel (image, vmlinux from -dbg, headers) into the cache.
# Usage: fetch-kernel.sh [ABI]   (ABI like 6.1.0-56-amd64; default: newest 6.1 generic in the index)
# Prints the kernel cache directory on stdout (last line). Needs root for apt-get.
set -euo pipefail
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
log() { echo "fetch-kernel: $*" >&2; }
ABI=${1:-}
if [ -z "$ABI" ]; then
    ABI=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-dbg$' | awk '{print $1}' \
          | sed -e 's/^linux-image-//' -e 's/-dbg$//' | sort -V | tail -1)
    [ -n "$ABI" ] || { log "no linux-image-6.1.0-*-amd64-dbg in the package index (run apt-get update)"; exit 1; }
fi
case "$ABI" in *cloud*|*rt-*) log "use the generic amd64 kernel, not $ABI (crash fails on cloud kernels)"; exit 2;; esac
DIR=$CACHE/kernel/$ABI
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi
rm -rf "$DIR"; mkdir -p "$DIR/debs"; cd "$DIR/debs"
# The image package is 'linux-image-ABI' (signed) or 'linux-image-ABI-unsigned'.
img=linux-image-$ABI
apt-cache show "$img" >/dev/null 2>&1 || img=linux-image-$ABI-unsigned
log "downloading $img, linux-image-$ABI-dbg"
apt-get download -q "$img" "linux-image-$ABI-dbg" >&2
log "installing linux-headers-$ABI (for building the lab module)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "linux-headers-$ABI" >&2
cd "$DIR"
dpkg-deb -x debs/${img}_*.deb root
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
