# lab_log NAME MSG...: one progress line on stderr, "[m:ss] NAME: MSG", the time counted
# from $CRASH_EXT_T0 (seconds since the epoch, set by the Makefile) when it is set.
lab_log() {
    local name=$1 t; shift
    if [ -n "${CRASH_EXT_T0:-}" ]; then
        t=$(( $(date +%s) - ${CRASH_EXT_T0%.*} ))
        printf '[%d:%02d] %s: %s\n' $((t / 60)) $((t % 60)) "$name" "$*" >&2
    else
        printf '%s: %s\n' "$name" "$*" >&2
    fi
}
