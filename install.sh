#!/usr/bin/env bash
# install.sh — install crash-ext for use inside crash (pykdump) and outside it.
#
#   ./install.sh [--mpykdump PATH] [--prefix DIR] [--no-cli]
#   ./install.sh --uninstall [--prefix DIR]
#
# Inside crash: copies the crash_ext package into PREFIX (default ~/.local/share/crash-ext;
# it needs only the standard library pykdump embeds), writes one small program per verb
# there plus a loader, and adds to ~/.crashrc (between "# >>> crash-ext >>>" markers,
# idempotently):
#     extend MPYKDUMP
#     epython PREFIX/pykdump/load.py
# The loader registers the verbs; the next `crash` (also from this shell) has them.
# mpykdump.so is looked for in: --mpykdump, $CRASH_EXTENSIONS, crash's extension
# directories, /usr/local/lib.  Without it, the package is still installed and you are told
# where to get pykdump.
# Outside crash: a virtualenv in PREFIX/venv with the `crash-ext` console script, linked
# into ~/.local/bin (skip with --no-cli).
# --uninstall removes exactly what this script added.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${HOME}/.local/share/crash-ext
MPYKDUMP=""
UNINSTALL=0
CLI=1
PY=${PYTHON:-python3}
BEGIN="# >>> crash-ext >>>"
END="# <<< crash-ext <<<"

# --help prints the comment block at the top (the lines after the first that start
# with '#'), up to the first line that does not
usage() { sed -n '2,/^[^#]/p' "$0" | sed '/^[^#]/d; s/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --mpykdump) MPYKDUMP=${2:-}; shift 2 || die "--mpykdump needs a path";;
        --mpykdump=*) MPYKDUMP=${1#*=}; shift;;
        --prefix) PREFIX=${2:-}; shift 2 || die "--prefix needs a directory";;
        --prefix=*) PREFIX=${1#*=}; shift;;
        --no-cli) CLI=0; shift;;
        --uninstall) UNINSTALL=1; shift;;
        -h|--help) usage; exit 0;;
        *) die "unknown option: $1 (see --help)";;
    esac
done

CRASHRC=$HOME/.crashrc
BIN=$HOME/.local/bin/crash-ext

# remove_block FILE: delete the marked block (and nothing else); remove FILE if that leaves
# it empty and we created it.
remove_block() {
    local f=$1
    [ -f "$f" ] || return 0
    grep -qF "$BEGIN" "$f" || return 0
    awk -v b="$BEGIN" -v e="$END" '$0==b{skip=1;next} $0==e{skip=0;next} !skip' "$f" > "$f.crash-ext.tmp"
    mv "$f.crash-ext.tmp" "$f"
    [ -s "$f" ] || rm -f "$f"
}

# put_block FILE LINES...: replace (or append) the marked block with LINES.
put_block() {
    local f=$1; shift
    remove_block "$f"
    { echo "$BEGIN"; printf '%s\n' "$@"; echo "$END"; } >> "$f"
}

if [ "$UNINSTALL" = 1 ]; then
    remove_block "$CRASHRC"
    remove_block "$HOME/.bash_profile"
    remove_block "$HOME/.profile"
    if [ -L "$BIN" ] && [ "$(readlink "$BIN")" = "$PREFIX/venv/bin/crash-ext" ]; then rm -f "$BIN"; fi
    rm -rf "$PREFIX"
    echo "crash-ext uninstalled"
    exit 0
fi

find_mpykdump() {
    local d f
    if [ -n "$MPYKDUMP" ]; then
        [ -f "$MPYKDUMP" ] || die "no such file: $MPYKDUMP"
        echo "$MPYKDUMP"; return
    fi
    for d in ${CRASH_EXTENSIONS:-} /usr/lib64/crash/extensions /usr/lib/crash/extensions \
             "$HOME/.crash/extensions" /usr/local/lib /usr/local/lib64 /usr/lib64 /usr/lib; do
        for f in "$d"/mpykdump*.so; do
            [ -f "$f" ] && { echo "$f"; return; }
        done
    done
}

# The package, where pykdump's interpreter can import it (no other packages: crash_ext
# imports only what pykdump's stock standard-library lists have).
rm -rf "$PREFIX/lib" "$PREFIX/pykdump"
mkdir -p "$PREFIX/lib" "$PREFIX/pykdump"
cp -r "$HERE/crash_ext" "$PREFIX/lib/"
find "$PREFIX/lib" -name __pycache__ -prune -exec rm -rf {} +

cat > "$PREFIX/pykdump/_crash_ext_path.py" <<EOF
# Written by install.sh: where crash-ext lives.
import sys
if "$PREFIX/lib" not in sys.path:
    sys.path.insert(0, "$PREFIX/lib")
EOF
for verb in whoholds argrecover deadlock; do
    cat > "$PREFIX/pykdump/$verb.py" <<EOF
# crash-ext verb '$verb' for pykdump (written by install.sh).
import _crash_ext_path  # noqa: F401
from crash_ext.verbs.incrash import run_verb
run_verb("$verb")
EOF
done
cat > "$PREFIX/pykdump/load.py" <<EOF
# Registers crash-ext's verbs with pykdump (written by install.sh; run from ~/.crashrc).
import sys
sys.path.insert(0, "$PREFIX/pykdump")
import _crash_ext_path  # noqa: F401
from crash_ext.verbs.incrash import register_verbs
register_verbs()
EOF

MP=$(find_mpykdump || true)
if [ -n "$MP" ]; then
    put_block "$CRASHRC" "extend $MP" "epython $PREFIX/pykdump/load.py"
    remove_block "$HOME/.bash_profile"     # PYKDUMPPATH of earlier versions: not needed
    remove_block "$HOME/.profile"
    echo "crash-ext: inside crash via $MP (~/.crashrc): start crash, then e.g. 'help deadlock'"
else
    echo "crash-ext: pykdump's mpykdump.so not found (looked in --mpykdump, \$CRASH_EXTENSIONS,"
    echo "  crash's extension directories, /usr/local/lib). Get it from"
    echo "  https://sourceforge.net/projects/pykdump/ and run ./install.sh --mpykdump PATH,"
    echo "  or use the verbs outside crash: crash-ext VERB --vmlinux V --vmcore C"
fi

if [ "$CLI" = 1 ]; then
    "$PY" -m venv "$PREFIX/venv"
    "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check "$HERE" >/dev/null \
        || die "could not install the crash-ext console script"
    mkdir -p "$(dirname "$BIN")"
    ln -sfn "$PREFIX/venv/bin/crash-ext" "$BIN"
    echo "crash-ext: console script $BIN"
fi
