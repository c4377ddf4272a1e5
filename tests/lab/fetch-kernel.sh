#!/usr/bin/env bash
# Fetch a Debian generic amd64 kernel (image, vmlinux from -dbg, headers) into the cache.
# Nothing is installed on the host: the packages are downloaded and extracted.
# Usage: fetch-kernel.sh [ABI|FAMILY]
#   ABI like 6.1.0-56-amd64 or 6.12.117+deb12-amd64; FAMILY like 6.1 or 6.12 picks the newest
#   generic amd64 ABI of that series in its suite's package index (5.10: bullseye, 6.1:
#   bookworm, Debian 12's own and the default; 6.12: bookworm-backports; 7.x: sid);
#   FAMILY-rt (6.12-rt) picks the PREEMPT_RT flavour.  The suites' indexes are private to
#   the cache (tests/lab/papt.sh): the host's apt sources are not touched.
# Prints the kernel cache directory on stdout (last line).
set -euo pipefail
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/log.sh"; log() { lab_log fetch-kernel "$@"; }
ABI=${1:-6.1}
. "$HERE/papt.sh"
# suite_of SERIES: the Debian suite whose index carries that kernel series.
suite_of() {
    case "$1" in
        5.10*) echo bullseye;; 6.1|6.1.*|6.1-*) echo bookworm;;
        6.12*) echo bookworm-backports;; 7|7.*) echo sid;; *) return 1;;
    esac
}
# newest_in_family SERIES [rt]: the newest ABI of that series and flavour in the index.
newest_in_family() {
    local flav=amd64; [ "${2:-}" = rt ] && flav=rt-amd64
    papt apt-cache search --names-only "^linux-image-${1//./\\.}[.-].*-dbg\$" | awk '{print $1}' \
        | sed -e 's/^linux-image-//' -e 's/-dbg$//' | grep -E "^[0-9][^-]*(-[0-9]+)?-$flav\$" \
        | sort -V | tail -1
}
case "$ABI" in
    *-amd64) series=$(echo "$ABI" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/');;
    *) series=${ABI%-rt};;
esac
suite=$(suite_of "$series") || { log "no Debian suite known for kernel series $series"; exit 2; }
papt_setup "$suite" 2>/dev/null || { log "could not read $suite's package index"; exit 1; }
case "$ABI" in
    *-amd64) ;;
    *) fam=${ABI%-rt}; flav=; [ "$fam" != "$ABI" ] && flav=rt
       ABI=$(newest_in_family "$fam" $flav)
       [ -n "$ABI" ] || { log "no generic amd64 kernel of series $fam in $suite's index"; exit 1; };;
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
# Modules the lab's guests load (decompressed into modules/): qemu_fw_cfg (VMCOREINFO in
# QEMU's dumps); the virtio block stack for the kdump capture kernel's dump disk (those of
# it a kernel builds in or lacks are skipped).  A cache fetched before a module was added
# here gets the image package again for its modules only.
MODULES="qemu_fw_cfg virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk"
have_modules() { [ -f "$DIR/modules/.listed" ] && [ "$(cat "$DIR/modules/.listed")" = "$MODULES" ]; }
if [ -f "$DIR/.complete" ] && [ -f "$DIR/.gdb-index" ] && have_modules; then echo "$DIR"; exit 0; fi
# One fetch at a time (parallel test runs): wait, then see whether it is done.
mkdir -p "$CACHE/kernel"
exec 9>"$CACHE/kernel/.fetch.lock"
flock 9
# image_packages: set img (the image package: 'linux-image-ABI' (signed) or
# 'linux-image-ABI-unsigned') and parts (sid's (7.x) image package is a small one
# depending on linux-binary-ABI (vmlinuz) and linux-modules-ABI (the modules): those
# carry the files, fetched alongside).
image_packages() {
    img=linux-image-$ABI
    papt apt-cache show "$img" >/dev/null 2>&1 || img=linux-image-$ABI-unsigned
    parts=$(papt apt-cache depends "$img" 2>/dev/null \
            | awk -v abi="$ABI" '/Depends: linux-(binary|modules)-/ &&
                  substr($2, length($2) - length(abi) + 1) == abi {print $2}' | sort -u)
}
# extract_modules: MODULES from the image unpacked in root/ into modules/
extract_modules() {
    rm -rf modules; mkdir -p modules
    for m in $MODULES; do
        f=$(find root/lib/modules root/usr/lib/modules -name "$m.ko*" 2>/dev/null | head -1 || true)
        if [ -z "$f" ]; then
            [ "$m" = qemu_fw_cfg ] && { log "module $m not found in $img"; exit 1; }
            continue
        fi
        case "$f" in *.xz) xz -dc "$f" > modules/$m.ko;; *.zst) zstd -dqc "$f" > modules/$m.ko;; *) cp "$f" modules/$m.ko;; esac
    done
    echo "$MODULES" > modules/.listed
}
if [ -f "$DIR/.complete" ]; then
    index_vmlinux
    if ! have_modules; then
        log "$ABI: fetching the image again for the modules $MODULES"
        rm -rf "$DIR/debs" "$DIR/root"; mkdir -p "$DIR/debs"; cd "$DIR/debs"
        image_packages
        LOG=$CACHE/logs/fetch-kernel-$ABI.log; mkdir -p "$CACHE/logs"
        papt apt-get download -q "$img" $parts >>"$LOG" 2>&1 \
            || { tail -n 30 "$LOG" >&2; log "download failed; full log: $LOG"; exit 1; }
        cd "$DIR"
        for p in "$img" $parts; do dpkg-deb -x debs/"${p}"_*.deb root; done
        extract_modules
        rm -rf root debs
    fi
    echo "$DIR"; exit 0
fi
rm -rf "$DIR"; mkdir -p "$DIR/debs"; cd "$DIR/debs"
image_packages
# Headers for building the lab module: extracted here, not installed (installing the
# headers of some ABIs pulls the kernel image onto the host).
hdr=linux-headers-$ABI
deps=$(papt apt-cache depends "$hdr" 2>/dev/null | awk '/Depends: linux-(headers|kbuild)/ {print $2}')
[ -n "$deps" ] || { log "no $hdr (or its common/kbuild packages) in the package index"; exit 1; }
log "$ABI: downloading the image, its -dbg (~0.9 GB) and headers from $suite"
LOG=$CACHE/logs/fetch-kernel-$ABI.log; mkdir -p "$CACHE/logs"
papt apt-get download -q "$img" $parts "linux-image-$ABI-dbg" "$hdr" $deps >"$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; log "download failed; full log: $LOG"; exit 1; }
cd "$DIR"
for p in "$img" $parts; do dpkg-deb -x debs/"${p}"_*.deb root; done
for p in "$hdr" $deps; do dpkg-deb -x debs/"${p}"_*.deb headers; done
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
    log "$ABI: ${#newer[@]} kbuild tools need $suite's glibc: running them with its libc6"
    (cd debs && papt apt-get download -q libc6 >>"$LOG" 2>&1) || { log "libc6 download failed"; exit 1; }
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
[ -f vmlinuz ] || { log "no vmlinuz in $img $parts"; exit 1; }
extract_modules
rm -rf root debs
echo "$ABI" > abi
index_vmlinux
touch .complete
log "kernel $ABI ready in $DIR"
echo "$DIR"
