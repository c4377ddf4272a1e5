# The lab's pinned inputs (source this file): tests/lab/lab.lock names, for each kernel
# series, the exact ABI, and for each ABI, crash version and packaged crash the exact
# Debian files (URI, sha256) the lab is made from.  The fetch and build scripts read it
# and need no package index; `make lab-update` (tests/lab/lock-update.sh) moves it
# forward on purpose.
#
#   . tests/lab/lablock.sh
#   abi=$(lock_kernel 6.1)                 # 6.1.0-57-amd64
#   lock_fetch "$abi" DIR [ROLE...]        # its files (all, or those of ROLE), checked
#
# Lines (fields separated by blanks; '#' starts a comment):
#   kernel SERIES ABI
#   crash VERSION DEBIAN-SOURCE-VERSION
#   crash-deb SUITE VERSION
#   makedumpfile SUITE VERSION
#   file KEY ROLE NAME URI SHA256
# KEY is an ABI, crash-VERSION, crash-deb-SUITE or makedumpfile-SUITE; ROLE says what the
# file is for (kernel: image, headers, dbg, libc; crash: source; crash-deb and
# makedumpfile: deb).  A URI starts with
# @debian/ or @security/: the host's mirror (tests/lab/papt.sh) is put in its place.

LAB_LOCK=${CRASH_EXT_LAB_LOCK:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lab.lock}
. "$(dirname "${BASH_SOURCE[0]}")/papt.sh"      # papt_mirror, papt_security_mirror

# lock_value KIND KEY: the 3rd field of the lock's line "KIND KEY VALUE" (empty if none).
lock_value() {
    [ -f "$LAB_LOCK" ] || return 0
    awk -v k="$1" -v key="$2" '$1 == k && $2 == key {print $3; exit}' "$LAB_LOCK"
}

# lock_kernel SERIES: the pinned ABI of a kernel series (5.10, 6.1, 6.12, 6.12-rt, 7).
lock_kernel() { lock_value kernel "$1"; }

# lock_files KEY [ROLE...]: "ROLE NAME URI SHA256" lines of KEY's files.
lock_files() {
    local key=$1; shift
    [ -f "$LAB_LOCK" ] || return 0
    awk -v key="$key" -v roles=" $* " '$1 == "file" && $2 == key &&
        (roles == "  " || index(roles, " " $3 " ")) {print $3, $4, $5, $6}' "$LAB_LOCK"
}

# lock_url URI: the lock's URI with the host's mirror in place of @debian / @security.
lock_url() {
    case "$1" in
        @debian/*) echo "$(papt_mirror)/${1#@debian/}";;
        @security/*) echo "$(papt_security_mirror)/${1#@security/}";;
        *) echo "$1";;
    esac
}

# lock_fetch KEY DIR [ROLE...]: download KEY's files into DIR, each checked against its
# sha256 (apt-helper refuses a file whose hash differs); a file already there with the
# right hash is kept.  Returns non-zero when KEY has no files or one cannot be fetched.
lock_fetch() {
    local key=$1 dir=$2 role name uri sha n=0; shift 2
    mkdir -p "$dir"
    while read -r role name uri sha; do
        n=$((n + 1))
        if [ -f "$dir/$name" ] && echo "$sha  $dir/$name" | sha256sum -c --status; then
            continue
        fi
        /usr/lib/apt/apt-helper download-file "$(lock_url "$uri")" "$dir/$name" \
            "SHA256:$sha" >&2 || { echo "lablock: $name: download or sha256 check failed" \
            "(pinned in $LAB_LOCK; if the mirror dropped it: make lab-update)" >&2; return 1; }
    done < <(lock_files "$key" "$@")
    [ "$n" -gt 0 ] || { echo "lablock: nothing pinned for $key $* in $LAB_LOCK" \
                             "(make lab-update)" >&2; return 1; }
}
