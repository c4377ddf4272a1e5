#!/usr/bin/env bash
# Fetch a Debian generic amd64 kernel (image, vmlinux from -dbg, headers) into the cache.
# Nothing is installed on the host: the packages are downloaded and extracted.
# Usage: fetch-kernel.sh [SERIES|ABI]
#   SERIES (5.10, 6.1 -- the default --, 6.12, 6.12-rt, 7) is the ABI tests/lab/lab.lock
#   pins for it; an ABI (6.1.0-57-amd64, 6.12.117+deb12-amd64) must be one the lock pins.
#   The files are the lock's, each checked against its sha256: no package index is read,
#   and a kernel already in the cache is used as it is.  `make lab-update`
#   (tests/lab/lock-update.sh) moves the pins to the newest kernels of the suites.
# Prints the kernel cache directory on stdout (last line).
set -euo pipefail
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/log.sh"; log() { lab_log fetch-kernel "$@"; }
ABI=${1:-6.1}
. "$HERE/lablock.sh"
case "$ABI" in
    *-amd64) ;;
    *) series=$ABI; ABI=$(lock_kernel "$series")
       [ -n "$ABI" ] || { log "kernel series $series is not pinned in $LAB_LOCK (make lab-update)"; exit 2; };;
esac
case "$ABI" in *cloud*) log "use the generic amd64 kernel, not $ABI (crash fails on cloud kernels)"; exit 2;; esac
DIR=$CACHE/kernel/$ABI
# index_vmlinux: add gdb's symbol index (.gdb_index) to the vmlinux, as the debuginfo
# packages of RHEL and Fedora ship it (find-debuginfo runs gdb-add-index); Debian's -dbg
# has none.  crash then opens a dump in ~4 s instead of ~10 s.  Types, symbols and code
# are unchanged (the build-id too); without gdb-add-index the vmlinux stays as it is.
index_vmlinux() {
    [ -f "$DIR/.gdb-index" ] && return 0
    command -v gdb-add-index >/dev/null || { log "no gdb-add-index: vmlinux left unindexed"; return 0; }
    rm -f "$DIR/vmlinux.idx"; cp "$DIR/vmlinux" "$DIR/vmlinux.idx"
    if gdb-add-index "$DIR/vmlinux.idx" >/dev/null 2>&1; then
        mv "$DIR/vmlinux.idx" "$DIR/vmlinux"; touch "$DIR/.gdb-index"
    else
        rm -f "$DIR/vmlinux.idx"*; log "gdb-add-index failed: vmlinux left unindexed"
    fi
}
# Modules the guests load (insmod, from the initramfs): qemu_fw_cfg (VMCOREINFO for QEMU's
# dumps) is required; the virtio/9p set mounts the host's root read-only in the live lab
# (tests/lab/live.py), virtio_blk carries the kdump capture kernel's dump disk
# (tests/lab/kdump.py); each is taken where the kernel builds it as a module.
REQUIRED_MODULES="qemu_fw_cfg"
OPTIONAL_MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
                  virtio_blk netfs fscache 9pnet 9pnet_virtio 9p"
# modules_done: every module is extracted (or known absent: modules/ABSENT lists those)
modules_done() {
    local m
    for m in $REQUIRED_MODULES $OPTIONAL_MODULES; do
        [ -f "$DIR/modules/$m.ko" ] || grep -qx "$m" "$DIR/modules/ABSENT" 2>/dev/null || return 1
    done
}
# extract_modules ROOT: copy the modules from an unpacked image package into modules/
extract_modules() {
    local m f
    mkdir -p "$DIR/modules"; : > "$DIR/modules/ABSENT"
    for m in $REQUIRED_MODULES $OPTIONAL_MODULES; do
        f=$(find "$1"/lib/modules "$1"/usr/lib/modules -name "$m.ko*" 2>/dev/null | head -1 || true)
        if [ -z "$f" ]; then
            case " $REQUIRED_MODULES " in
                *" $m "*) log "module $m not found in the image packages of $ABI"; exit 1;; esac
            echo "$m" >> "$DIR/modules/ABSENT"; continue
        fi
        case "$f" in *.xz) xz -dc "$f" > "$DIR/modules/$m.ko";; *.zst) zstd -dqc "$f" > "$DIR/modules/$m.ko";;
                     *) cp "$f" "$DIR/modules/$m.ko";; esac
    done
}
if [ -f "$DIR/.complete" ] && [ -f "$DIR/.gdb-index" ] && modules_done; then echo "$DIR"; exit 0; fi
# One fetch at a time (parallel test runs): wait, then see whether it is done.
mkdir -p "$CACHE/kernel"
exec 9>"$CACHE/kernel/.fetch.lock"
flock 9
LOG=$CACHE/logs/fetch-kernel-$ABI.log; mkdir -p "$CACHE/logs"
if [ -f "$DIR/.complete" ] && ! modules_done; then
    # a kernel fetched before the module list grew: fetch its image again for the modules
    log "$ABI: extracting the lab's modules from its pinned image"
    rm -rf "$DIR/mods.tmp"; mkdir -p "$DIR/mods.tmp/debs"
    lock_fetch "$ABI" "$DIR/mods.tmp/debs" image >>"$LOG" 2>&1 \
        || { tail -n 30 "$LOG" >&2; log "download failed; full log: $LOG"; exit 1; }
    while read -r _ name _; do dpkg-deb -x "$DIR/mods.tmp/debs/$name" "$DIR/mods.tmp/root"
    done < <(lock_files "$ABI" image)
    extract_modules "$DIR/mods.tmp/root"
    rm -rf "$DIR/mods.tmp"
fi
if [ -f "$DIR/.complete" ]; then index_vmlinux; echo "$DIR"; exit 0; fi
[ -n "$(lock_files "$ABI" dbg)" ] || { log "$ABI is not pinned in $LAB_LOCK (make lab-update)"; exit 2; }
rm -rf "$DIR"; mkdir -p "$DIR/debs"
log "$ABI: downloading the pinned image, its -dbg (~0.9 GB) and headers"
lock_fetch "$ABI" "$DIR/debs" image headers dbg >"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; log "download failed; full log: $LOG"; exit 1; }
cd "$DIR"
while read -r _ name _; do dpkg-deb -x debs/"$name" root; done < <(lock_files "$ABI" image)
while read -r _ name _; do dpkg-deb -x debs/"$name" headers; done < <(lock_files "$ABI" headers)
KDIR=$DIR/headers/usr/src/linux-headers-$ABI
# the headers' top Makefile names /usr/src absolutely (include; sid's also KBUILD_OUTPUT)
sed -i -e "s#^include /usr/src/#include $DIR/headers/usr/src/#" \
       -e "s#^KBUILD_OUTPUT=/usr/src/#KBUILD_OUTPUT=$DIR/headers/usr/src/#" "$KDIR/Makefile"
[ -f "$KDIR/Module.symvers" ] || { log "headers for $ABI incomplete"; exit 1; }
# sid's kbuild tools (modpost, objtool, ...) are linked against a newer glibc than the
# host's: run those through the suite's own libc6 (downloaded and extracted here, not
# installed), each binary X renamed X.real behind a wrapper calling its loader.
newer=()
while IFS= read -r f; do
    LD_TRACE_LOADED_OBJECTS=1 "$f" 2>&1 | grep -q "version .GLIBC_[0-9.]*' not found" && newer+=("$f")
done < <(find headers -type f -perm -u+x -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print)
if [ ${#newer[@]} -gt 0 ]; then
    log "$ABI: ${#newer[@]} kbuild tools need its suite's glibc: running them with its libc6"
    lock_fetch "$ABI" debs libc >>"$LOG" 2>&1 || { log "libc6 download failed"; exit 1; }
    dpkg-deb -x debs/libc6_*.deb libc
    ld=$DIR/libc/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
    libs=$DIR/libc/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
    for f in "${newer[@]}"; do
        mv "$f" "$f.real"
        printf '#!/bin/sh\nexec %s --library-path %s --argv0 "$0" "$0.real" "$@"\n' "$ld" "$libs" > "$f"
        chmod +x "$f"
    done
fi
echo "$KDIR" > kdir
# boot/vmlinux-ABI is the file, or (sid) a symlink to lib/modules/ABI/vmlinux
dpkg-deb --fsys-tarfile debs/linux-image-"$ABI"-dbg_*.deb | tar x --wildcards './usr/lib/debug/*vmlinux*'
mv "$(readlink -f usr/lib/debug/boot/vmlinux-"$ABI")" vmlinux; rm -rf usr
[ -f vmlinux ] && [ ! -L vmlinux ] || { log "no vmlinux in linux-image-$ABI-dbg"; exit 1; }
# /boot/vmlinuz-ABI, or (sid's merged /usr) /usr/lib/modules/ABI/vmlinuz
for z in root/boot/vmlinuz-"$ABI" root/usr/lib/modules/"$ABI"/vmlinuz; do
    [ -f "$z" ] && { cp "$z" vmlinuz; break; }
done
[ -f vmlinuz ] || { log "no vmlinuz in the image packages of $ABI"; exit 1; }
extract_modules "$DIR/root"
rm -rf root debs
echo "$ABI" > abi
index_vmlinux
touch .complete
log "kernel $ABI ready in $DIR"
echo "$DIR"
