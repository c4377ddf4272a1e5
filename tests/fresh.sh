#!/usr/bin/env bash
# make fresh: the README's commands on a clean Debian 12 root, as a new user runs them.
#
# Makes a minimal Debian 12 (bookworm) root with debootstrap from Debian's packages (plus
# `make`, which the README's commands are, and ca-certificates), bind-mounts /proc, /sys,
# /dev and /dev/pts,
# copies a clone of this repository's HEAD (committed work only, as CI sees it) and the
# shared/ folder beside it, then runs, as root inside it, with no host cache:
#     make demo          (cold: builds crash and the seed dump, shows the verbs)
#     make demo          (again, warm)
#     make test          (builds the rest of the lab, runs every test)
# and fails when any fails.  Prints one line per step with its time; each step's output
# is in $FRESH_LOGS (default /var/tmp/crash-ext-fresh-logs), the last 30 lines on failure.
# The root is removed afterwards (FRESH_KEEP=1 keeps it; FRESH_ROOT names it).
# FRESH_STEPS (default "demo test") picks the README commands to run: "demo" runs the cold
# and the warm demo, "test" make test; FRESH_STEPS=demo times the cold demo alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROOT=${FRESH_ROOT:-/var/tmp/crash-ext-fresh}
LOGS=${FRESH_LOGS:-/var/tmp/crash-ext-fresh-logs}
SHARED=$REPO/../shared
. "$HERE/lab/papt.sh"

say() { echo "fresh: $*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, bind mounts)"
command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q debootstrap >/dev/null; } || die "cannot install debootstrap"
}

mounted() { findmnt -rn -o TARGET | awk -v r="$ROOT" 'index($0, r) == 1'; }
cleanup() {
    local m
    for m in $(mounted | sort -r); do umount -l "$m" 2>/dev/null || true; done
    if [ -n "$(mounted)" ]; then
        say "left $ROOT in place: still mounted"; return
    fi
    if [ "${FRESH_KEEP:-0}" = 1 ]; then say "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT

# step NAME LOG COMMAND...: run COMMAND with output to LOG; print its time, or fail.
step() {
    local name=$1 log=$LOGS/$2.log t0 rc; shift 2
    t0=$(date +%s)
    say "$name ..."
    set +e; "$@" >"$log" 2>&1; rc=$?; set -e
    local t=$(( $(date +%s) - t0 ))
    if [ $rc -ne 0 ]; then
        tail -n 30 "$log" >&2
        die "$name FAILED after $((t / 60))m$((t % 60))s (exit $rc); full log: $log"
    fi
    say "$name passed in $((t / 60))m$((t % 60))s (log: $log)"
}

[ -z "$(mounted)" ] || die "$ROOT has mounts from an earlier run; unmount them first"
rm -rf "$ROOT" "$LOGS"; mkdir -p "$ROOT" "$LOGS"
step "debootstrap bookworm" debootstrap \
    debootstrap --variant=minbase --include=make,ca-certificates bookworm "$ROOT" "$(papt_mirror)"
# This machine's network setup, as any new machine here has it: name servers, the extra CA
# certificates its HTTPS proxy needs (added to the root's bundle) and pip's setting to use that bundle.  No package, wheel or cache.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mkdir -p "$ROOT/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$ROOT/etc/pip.conf"; fi
chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || true
mkdir -p "$ROOT/work"
git clone -q "$REPO" "$ROOT/work/main"
[ -d "$SHARED" ] && cp -r "$SHARED" "$ROOT/work/shared"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$ROOT/$m"; done

inside() {   # inside COMMAND: run it in the root, as root, with a clean environment
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 TERM=dumb /bin/bash -c "cd /work/main && $1"
}
STEPS=${FRESH_STEPS:-demo test}
case " $STEPS " in *" demo "*)
    step "make demo (cold)" demo-cold inside "make demo"
    step "make demo (warm)" demo-warm inside "make demo";;
esac
case " $STEPS " in *" test "*)
    step "make test" test inside "make test"
    grep -E "^[0-9]+ passed|passed|failed" "$LOGS/test.log" | tail -1 >&2 || true;;
esac
say "all passed ($STEPS)"
