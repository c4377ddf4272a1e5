# The live lab's second half, sourced by the guest's init once the scenario is staged and
# its truth printed (tests/lab/live.py builds the initramfs that carries this file).
#
# With lab.churn=N on the command line, 5*N busy shell loops first make real lock
# traffic in real kernel code, at crash's own priority: appends to one tmpfs file and its
# truncation (the inode's i_rwsem, for write; truncating frees its pages under it),
# mkdir/rmdir in one directory (the directory's i_rwsem), and writers and readers of one
# FIFO (the pipe's mutex).  They never stop.
# Then the host's root is mounted read-only over virtio 9p (tag hostroot) with this
# guest's /proc, /sys, /dev and a tmpfs /tmp inside it, and /lib/live-job (a shell
# fragment the host wrote: LIVE_ARGV, the runner and its arguments; LIVE_KEEP, a checkout
# under /tmp to keep visible) runs chrooted there.
# Its output goes to the console between LIVE-RUN-BEGIN and LIVE-RUN-END; then the guest
# powers off.  Nothing on the host is written: the mount is read-only.
live_fail() { echo "LIVE-FAILED: $*"; echo LIVE-DONE; poweroff -f; while :; do sleep 3600; done; }
CHURN=0
for w in $(cat /proc/cmdline); do
    case "$w" in lab.churn=*) CHURN=${w#*=};; esac
done
if [ "$CHURN" -gt 0 ]; then
    mkdir -p /tmp/churn && mkfifo /tmp/churn/fifo || live_fail "churn setup"
    i=0
    while [ $i -lt "$CHURN" ]; do
        sh -c 'while :; do head -c 262144 /dev/zero >> /tmp/churn/file; done' &
        sh -c 'while :; do : > /tmp/churn/file; done' &
        sh -c "while :; do mkdir /tmp/churn/d$i && rmdir /tmp/churn/d$i; done" &
        sh -c 'while :; do cat /dev/zero > /tmp/churn/fifo; done' 2>/dev/null &
        sh -c 'while :; do head -c 65536 /tmp/churn/fifo > /dev/null; done' &
        i=$((i + 1))
    done
    echo "LIVE-CHURN: $((5 * CHURN)) loops"
fi
# virtio/9p drivers, in whatever order their dependencies allow (a few passes)
for pass in 1 2 3 4 5; do
    for ko in /lib/live-modules/*.ko; do
        [ -e "$ko" ] || continue
        m=$(basename "$ko" .ko)
        [ -d "/sys/module/$m" ] || insmod "$ko" 2>/dev/null
    done
done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host \
    || live_fail "mount of the host's root over 9p"
for d in proc sys dev tmp; do [ -d "/host/$d" ] || live_fail "no /$d on the host's root"; done
. /lib/live-job
# the guest's own /tmp is a tmpfs over the host's; a checkout under the host's /tmp (a CI
# clone) is bound back in place first
if [ -n "$LIVE_KEEP" ]; then
    mkdir -p /keep && mount -o bind "/host$LIVE_KEEP" /keep || live_fail "bind $LIVE_KEEP"
fi
mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && \
    mount -t devtmpfs dev /host/dev && mount -t tmpfs tmp /host/tmp || live_fail "mounts"
if [ -n "$LIVE_KEEP" ]; then
    mkdir -p "/host$LIVE_KEEP" && mount -o bind /keep "/host$LIVE_KEEP" \
        || live_fail "bind $LIVE_KEEP back"
fi
echo LIVE-RUN-BEGIN
chroot /host /usr/bin/env -i HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    TERM=dumb CRASH_EXT_CACHE=/tmp/crash-ext $LIVE_ARGV
echo "LIVE-RUN-END rc=$?"
echo LIVE-DONE
poweroff -f
