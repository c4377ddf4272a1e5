# Private apt configuration for one Debian suite, under the cache (source this file).
#
#   . tests/lab/papt.sh
#   papt_setup trixie          # once per shell; refreshes the index when it is a day old
#   papt apt-cache showsrc crash
#   papt apt-get download linux-image-...
#
# The host's apt sources are never touched: the suite's index lives in
# $CRASH_EXT_CACHE/apt/SUITE (lists, archives, sources.list) and every call names it.
# The mirror is the one the host's own sources name (deb.debian.org by default).

PAPT_CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}/apt
PAPT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PAPT_OPTS=()

papt_mirror() {
    local uri
    uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
          | grep -v -e security -e snapshot | head -1)
    [ -n "$uri" ] || uri=$(awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
          /etc/apt/sources.list 2>/dev/null | grep -v security | head -1)
    echo "${uri:-http://deb.debian.org/debian}"
}

papt_security_mirror() {
    local uri
    uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
          | grep security | grep -v snapshot | head -1)
    echo "${uri:-http://deb.debian.org/debian-security}"
}

# papt_setup SUITE: point PAPT_OPTS at SUITE's private index, fetching it when missing or
# older than a day.  A stable suite (bullseye, bookworm, trixie) comes with its -updates
# and -security suites, as a user of that release has them (new kernels land there first).
# Returns non-zero (apt's output is on stderr) when the update fails.  The signatures are
# checked; a Release file's Valid-Until is not: the registry this project reaches may be a
# mirror snapshot older than sid's one-week validity (apt then refuses the whole suite).
papt_setup() {
    local suite=$1 dir=$PAPT_CACHE/$1 mirror sec s
    mirror=$(papt_mirror); sec=$(papt_security_mirror)
    mkdir -p "$dir/lists/partial" "$dir/archives/partial"
    {
        for s in "$suite" $(case "$suite" in bullseye|bookworm|trixie) echo "$suite-updates";; esac); do
            printf 'deb [signed-by=%s] %s %s main\ndeb-src [signed-by=%s] %s %s main\n' \
                "$PAPT_KEYRING" "$mirror" "$s" "$PAPT_KEYRING" "$mirror" "$s"
        done
        case "$suite" in bullseye|bookworm|trixie)
            printf 'deb [signed-by=%s] %s %s-security main\n' "$PAPT_KEYRING" "$sec" "$suite";; esac
    } > "$dir/sources.list.new"
    cmp -s "$dir/sources.list.new" "$dir/sources.list" || rm -f "$dir/.updated"
    mv "$dir/sources.list.new" "$dir/sources.list"
    PAPT_OPTS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=-"
               -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir"
               -o "Dir::Cache::archives=$dir/archives" -o "APT::Get::List-Cleanup=0"
               -o "Debug::NoLocking=1" -o "Acquire::Check-Valid-Until=false")
    if [ -z "$(find "$dir/.updated" -mmin -1440 2>/dev/null)" ]; then
        apt-get "${PAPT_OPTS[@]}" update -q >&2 || return 1
        touch "$dir/.updated"
    fi
}

# papt CMD ARGS...: run apt-get or apt-cache with the private configuration.
papt() { local cmd=$1; shift; "$cmd" "${PAPT_OPTS[@]}" "$@"; }
