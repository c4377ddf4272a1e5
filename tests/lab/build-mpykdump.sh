#!/usr/bin/env bash
# Build pykdump's mpykdump.so from the vendored source, for the lab's crash, into a cache
# outside the repo.
#
#   build-mpykdump.sh             # prints the path of mpykdump.so (last stdout line)
#
# Inputs: the vendored tarball ../shared/vendor/pykdump/pykdump-bc2526c.tar.gz (sha256
# checked), the built crash 8.0.6 tree that build-crash.sh keeps ($CACHE/crash-8.0.6/src),
# Debian's /usr/bin/python3.11 and its libpython3.11-pic.a (package libpython3.11-dev).
# Output: $CACHE/mpykdump/<key>/mpykdump.so, <key> a hash of the tarball's sha256, the crash
# version, the Python version and this script; reused when present.
# The embedded standard library is pykdump's own list, Extension/minpylib-3.9.lst, changed
# only where Python 3.11 forces it (re.py became the re/ package).  Python 3.11 also needs
# epython.c's includes of <compile.h>/<eval.h> guarded (3.11 removed those headers).
# Build output goes to $CACHE/logs/build-mpykdump.log; on failure its last 30 lines and its
# path are printed.
# Env: CRASH_EXT_CACHE (default ~/.cache/crash-ext), PYKDUMP_TARBALL (another tarball).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARBALL=${PYKDUMP_TARBALL:-$REPO/../shared/vendor/pykdump/pykdump-bc2526c.tar.gz}
TARBALL_SHA=b2299f438d94fc537788718e5c2337a6696ec9425f411ee6b0559c4bfa519b9a
CRASH_VERSION=8.0.6
PY=/usr/bin/python3.11
CACHE=${CRASH_EXT_CACHE:-$HOME/.cache/crash-ext}
LOG=$CACHE/logs/build-mpykdump.log
log() { echo "build-mpykdump: $*" >&2; }
fail() {
    log "$*"
    if [ -s "$LOG" ]; then tail -n 30 "$LOG" >&2; log "full log: $LOG"; fi
    exit 1
}
mkdir -p "$CACHE/logs"

[ -f "$TARBALL" ] || { log "no pykdump source at $TARBALL"; exit 2; }
sha=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ -z "${PYKDUMP_TARBALL:-}" ] && [ "$sha" != "$TARBALL_SHA" ]; then
    log "$TARBALL: sha256 $sha, expected $TARBALL_SHA"; exit 2
fi
[ -x "$PY" ] || { log "$PY missing (run tests/lab/deps.sh as root)"; exit 2; }
pyver=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
key=$( { echo "$sha"; echo "crash $CRASH_VERSION"; echo "python $pyver"; cat "$0"; } \
       | sha256sum | cut -c1-16)
DEST=$CACHE/mpykdump/$key
SO=$DEST/mpykdump.so
if [ -s "$SO" ]; then echo "$SO"; exit 0; fi

CRASH_BIN=$("$HERE/build-crash.sh" "$CRASH_VERSION" | tail -n 1)
CRASHDIR=$(dirname "$CRASH_BIN")/src
[ -f "$CRASHDIR/defs.h" ] && [ -f "$CRASHDIR/build_data.c" ] \
    || fail "no built crash tree at $CRASHDIR (tests/lab/build-crash.sh keeps it)"

mkdir -p "$CACHE/mpykdump"
exec 8>"$CACHE/mpykdump/.lock"
flock 8
if [ -s "$SO" ]; then echo "$SO"; exit 0; fi
: > "$LOG"
t0=$(date +%s)
log "building mpykdump.so (pykdump ${sha:0:12}, crash $CRASH_VERSION, Python $pyver; log: $LOG)"
"$HERE/deps.sh" >>"$LOG" 2>&1 || fail "tests/lab/deps.sh failed"
LIBPL=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBPL"))')
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PICLIB=$LIBPL/libpython$PYVER-pic.a
[ -f "$PICLIB" ] || fail "$PICLIB missing (package libpython$PYVER-dev)"

rm -rf "$DEST"; mkdir -p "$DEST/build"
tar xzf "$TARBALL" -C "$DEST/build" --strip-components=1 || fail "cannot unpack $TARBALL"
cd "$DEST/build/Extension"

# Python 3.11 removed <compile.h> and <eval.h> (their contents are in <Python.h>).
sed -i -e 's|^#include <compile.h>.*|#if PY_VERSION_HEX < 0x030b0000\n#include <compile.h>\n#endif|' \
       -e 's|^#include <eval.h>.*|#if PY_VERSION_HEX < 0x030b0000\n#include <eval.h>\n#endif|' epython.c

# pykdump's stdlib list for this Python: its own 3.9 list; from 3.11 on re is a package.
LST=minpylib-$PYVER.lst
if [ ! -f "$LST" ]; then
    awk -v pyver="$PYVER" '
        $0 == "re.py" && pyver + 0 >= 3.11 {
            print "re/__init__.py"; print "re/_casefix.py"; print "re/_compiler.py"
            print "re/_constants.py"; print "re/_parser.py"; next }
        { print }' minpylib-3.9.lst > "$LST"
fi
STDLIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
while read -r f; do
    case "$f" in ''|'#'*) continue;; esac
    [ -f "$STDLIB/$f" ] || fail "$LST: $STDLIB/$f does not exist"
done < "$LST"

# crash.mk: pykdump's own configuration of the crash side.
"$PY" pyconf.py --crashdir="$CRASHDIR" >>"$LOG" 2>&1 || fail "pyconf.py failed"
grep -q '^GDBOBJ := gdbspec10.o' crash.mk || fail "pyconf.py did not detect gdb 10 in $CRASHDIR"
# slocal.mk: the Python side, from Debian's python3.11 (no CPython source tree needed).
"$PY" - "$PICLIB" "$LST" "$DEST/build" > slocal.mk <<'EOF' || fail "cannot write slocal.mk"
import sys, sysconfig
v = sysconfig.get_config_var
pic, lst, top = sys.argv[1:4]
stdlib = sysconfig.get_path("stdlib")
inc = sysconfig.get_path("include")
print("# Configuration options for Python (written by build-mpykdump.sh)")
print("PYTHONSRCDIR := %s" % v("LIBPL"))
print("PYTHON := %s" % sys.executable)
print("PYINCLUDE := -I%s -I%s" % (inc, sysconfig.get_config_h_filename().rsplit("/", 1)[0]))
print("CC := gcc")
print("CFLAGS := %s -fPIC" % v("CFLAGS"))
print("LIBS := %s %s %s %s" % (pic, v("MODLIBS"), v("LIBS"), v("SYSLIBS")))
print("LINKFLAGS := -nostartfiles -shared %s" % v("LINKFORSHARED"))
print("TOPDIR := %s" % top)
print("PYMAJOR := 3")
print("STDLIBP := %s" % stdlib)
print("COMPALL := %s/compileall.py -b" % stdlib)
print("MINPYLIB_FILES := %s" % lst)
EOF
log "compiling (about 10 s)"
# serial: its Makefile misses README.py -> pykdump_c.so (a race under -j)
make >>"$LOG" 2>&1 || fail "make failed"
[ -s mpykdump.so ] || fail "make made no mpykdump.so"
install -m 0755 mpykdump.so "$SO.tmp"
{ echo "tarball $TARBALL sha256 $sha"; echo "crash $CRASH_VERSION $CRASHDIR"
  echo "python $pyver $PY $PICLIB"; echo "stdlib list $LST"; } > "$DEST/inputs.txt"
cp "$LST" "$DEST/"
cd "$DEST"; rm -rf build
mv "$SO.tmp" "$SO"
log "built in $(( $(date +%s) - t0 ))s: $SO"
echo "$SO"
