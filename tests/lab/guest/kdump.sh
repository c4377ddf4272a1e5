# kdump guests only (tests/lab/kdump.py), sourced by init before the scenario is staged:
# load the capture kernel as a production machine does at boot; kdump_panic, called once
# the truth is printed, makes the machine panic by itself.
# lab.kdump=PANIC,MAKEDUMPFILE_COMPRESSION,HUNG_TIMEOUT,HUNG_INTERVAL on the command line.
for w in $(cat /proc/cmdline); do case "$w" in lab.kdump=*) KDUMP=${w#*=};; esac; done
IFS=, read -r KDUMP_PANIC KDUMP_COMP KDUMP_TIMEOUT KDUMP_INTERVAL <<EOT
$KDUMP
EOT
# the hung-task detector stays quiet while the scenario is staged (hung_task_panic=1 is on
# the command line; a staging slower than the timeout would panic before the truth)
echo 0 > /proc/sys/kernel/hung_task_timeout_secs || fail "hung_task_timeout_secs"
kexec -p /boot/vmlinuz --initrd=/boot/capture.gz \
    --append="console=ttyS0 quiet loglevel=1 panic=-1 irqpoll nr_cpus=1 reset_devices lab.capture=$KDUMP_COMP" \
    || fail "kexec -p"
[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || fail "no capture kernel loaded"
rm -f /boot/vmlinuz /boot/capture.gz
echo "LAB-KDUMP-LOADED $KDUMP_PANIC $KDUMP_COMP"

kdump_panic() {
    case "$KDUMP_PANIC" in
    hung_task)
        echo "$KDUMP_INTERVAL" > /proc/sys/kernel/hung_task_check_interval_secs
        echo "$KDUMP_TIMEOUT" > /proc/sys/kernel/hung_task_timeout_secs;;
    sysrq)
        /bin/sh -c "echo c > /proc/sysrq-trigger";;
    *)  echo "LAB-KDUMP-FAILED: unknown panic kind $KDUMP_PANIC";;
    esac
}
