#!/usr/bin/env bash
# Move the lab's pinned inputs forward on purpose (`make lab-update`): read today's
# package indexes (refreshed now) and write tests/lab/lab.lock: for each kernel series
# the newest generic amd64 ABI of its suite and the exact files the lab takes from it
# (image, -dbg, headers; sid's libc6), for each crash version the Debian source
# files build-crash.sh builds, Debian 12's packaged crash (fetch-crash-deb.sh) and
# trixie's makedumpfile for the kdump guests (fetch-makedumpfile.sh); each
# file with its URI and sha256 as the index gives them.
#
#   tests/lab/lock-update.sh [SERIES...]     # default every series of the lab
#
# Series not named keep their lines.  The fetch and build scripts read only the lock:
# a cache made from it is reused as it is, without any index, until this runs again.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/log.sh"; log() { lab_log lock-update "$@"; }
. "$HERE/lablock.sh"
ALL="5.10 6.1 6.1-rt 6.12 6.12-rt 7"
SERIES=${*:-$ALL}
CRASHES="8.0.6 9.0.2"
MIRROR=$(papt_mirror); SEC=$(papt_security_mirror)

suite_of() {
    case "$1" in
        5.10*) echo bullseye;; 6.1|6.1-rt) echo bookworm;; 6.12*) echo bookworm-backports;;
        7|7-rt) echo sid;; *) return 1;;
    esac
}

# fresh SUITE: the suite's private index, fetched now whatever its age.
fresh() {
    rm -f "$PAPT_CACHE/$1/.updated"
    papt_setup "$1" 2>/dev/null || { log "could not read $1's package index"; exit 1; }
}

# lines KEY ROLE: lock lines from apt's --print-uris output on stdin
lines() {
    local key=$1 role=$2 uri name size hash u
    while read -r uri name size hash; do
        uri=${uri//\'/}
        case "$uri" in
            "$MIRROR"/*) u="@debian/${uri#"$MIRROR"/}";;
            "$SEC"/*) u="@security/${uri#"$SEC"/}";;
            *) u=$uri;;
        esac
        case "$hash" in SHA256:*) ;; *) log "$name: apt gives no sha256 ($hash)"; exit 1;; esac
        echo "file $key $role $name $u ${hash#SHA256:}"
    done
}

uris() { papt apt-get download --print-uris "$@" 2>/dev/null | grep "^'"; }

kernel_lines() {
    local series=$1 suite fam flav=amd64 abi img parts hdr deps
    suite=$(suite_of "$series"); fresh "$suite"
    fam=${series%-rt}; [ "$fam" != "$series" ] && flav=rt-amd64
    abi=$(papt apt-cache search --names-only "^linux-image-${fam//./\\.}[.-].*-dbg\$" \
          | awk '{print $1}' | sed -e 's/^linux-image-//' -e 's/-dbg$//' \
          | grep -E "^[0-9][^-]*(-[0-9]+)?-$flav\$" | sort -V | tail -1)
    [ -n "$abi" ] || { log "no generic $flav kernel of series $fam in $suite"; exit 1; }
    img=linux-image-$abi
    papt apt-cache show "$img" >/dev/null 2>&1 || img=linux-image-$abi-unsigned
    # sid's image package depends on linux-binary-ABI and linux-modules-ABI (the files)
    parts=$(papt apt-cache depends "$img" 2>/dev/null \
            | awk -v abi="$abi" '/Depends: linux-(binary|modules)-/ &&
                  substr($2, length($2) - length(abi) + 1) == abi {print $2}' | sort -u)
    hdr=linux-headers-$abi
    deps=$(papt apt-cache depends "$hdr" 2>/dev/null | awk '/Depends: linux-(headers|kbuild)/ {print $2}')
    [ -n "$deps" ] || { log "no $hdr (or its common/kbuild packages) in $suite"; exit 1; }
    log "$series: $abi ($suite)"
    echo "kernel $series $abi"
    uris "$img" $parts | lines "$abi" image
    uris "$hdr" $deps | lines "$abi" headers
    uris "linux-image-$abi-dbg" | lines "$abi" dbg
    # sid's kbuild tools are built against a newer glibc than Debian 12's: its libc6
    # (older suites' libc6 is not newer than the host's: apt offers none to download)
    [ "$suite" != sid ] || uris libc6 | lines "$abi" libc
}

crash_lines() {
    local v=$1 suite srcver tmp
    case "$v" in 8.*) suite=trixie;; 9.*) suite=sid;; esac
    fresh "$suite"
    srcver=$(papt apt-cache showsrc crash 2>/dev/null | awk '/^Version:/ {print $2}' \
             | grep -E "^${v//./\\.}[-+]" | sort -V | tail -1)
    [ -n "$srcver" ] || { log "crash $v is not in $suite's source index"; exit 1; }
    log "crash $v: Debian source $srcver ($suite)"
    echo "crash $v $srcver"
    tmp=$(mktemp -d)
    (cd "$tmp" && papt apt-get source --print-uris --download-only "crash=$srcver" 2>/dev/null) \
        | grep "^'" | case "$v" in
            8.*) grep "\.orig\.tar\.";;          # 8.x: the orig tarball (it holds gdb)
            *) cat;;                             # 9.x: dsc, orig, orig-gdb, debian
          esac | lines "crash-$v" source
    rm -rf "$tmp"
}

crashdeb_lines() {
    local suite=bookworm ver
    fresh "$suite"
    ver=$(papt apt-cache show crash 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -1)
    log "Debian 12's crash package: $ver"
    echo "crash-deb $suite $ver"
    uris "crash=$ver" | lines "crash-deb-$suite" deb
}

# makedumpfile_lines: the makedumpfile the kdump guests run (fetch-makedumpfile.sh):
# trixie's newest (Debian 12's 1.7.2 does not know 6.12's slab pages)
makedumpfile_lines() {
    local suite=trixie ver
    fresh "$suite"
    ver=$(papt apt-cache show makedumpfile 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -1)
    [ -n "$ver" ] || { log "no makedumpfile in $suite's index"; exit 1; }
    log "makedumpfile for the kdump guests: $ver ($suite)"
    echo "makedumpfile $suite $ver"
    uris "makedumpfile=$ver" | lines "makedumpfile-$suite" deb \
        | sed 's/ makedumpfile_[0-9]*%3a/ makedumpfile_/'
}

new=$(mktemp)
{
    echo "# The lab's pinned inputs: written by tests/lab/lock-update.sh (make lab-update) on"
    echo "# $(date -u +%Y-%m-%d) from Debian's indexes; read by fetch-kernel.sh, build-crash.sh,"
    echo "# fetch-crash-deb.sh, fetch-makedumpfile.sh (tests/lab/lablock.sh describes the lines)."
    echo "# Do not edit by hand."
    for s in $ALL; do
        if [[ " $SERIES " == *" $s "* ]]; then
            kernel_lines "$s"
        else
            abi=$(lock_kernel "$s")
            [ -n "$abi" ] || continue
            awk -v s="$s" -v abi="$abi" '($1 == "kernel" && $2 == s) ||
                ($1 == "file" && $2 == abi)' "$LAB_LOCK"
        fi
    done
    for v in $CRASHES; do crash_lines "$v"; done
    crashdeb_lines
    makedumpfile_lines
} > "$new"
mv "$new" "$LAB_LOCK"
log "wrote $LAB_LOCK"
