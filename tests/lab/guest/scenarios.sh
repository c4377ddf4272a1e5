# Lab scenarios, sourced by the guest's init.  Each function stages real tasks through
# /proc/crashext_lab and returns once every waiter is confirmed on its wait list.
# Function names are scenario_<name> with '-' written as '_'.

# The seed's ABBA on one inode: ruby 1 holds fire.js's i_rwsem and wants the per-inode
# "i_iolock" (a module rw_semaphore); ruby 2 holds i_iolock and wants i_rwsem; rm queues
# behind ruby 2 in vfs_unlink.
scenario_seed() {
    F=/tmp/js/fire.js
    mkdir -p /tmp/js && echo "console.log(1)" > $F || fail "create $F"
    spawn ruby "take i:$F w; signal a_locked; wait b_locked; take r:i_iolock w"
    spawn ruby "wait a_locked; take r:i_iolock w; signal b_locked; take i:$F w"
    cmd gate r:i_iolock 1
    cmd gate i:$F 1
    labctl exec /bin/rm $F &
    cmd expect i:$F $! w
    cmd gate i:$F 2
}

scenario_abba_mutex() {
    spawn abba_a "take m:abba_lock_a; signal a_held; wait b_held; take m:abba_lock_b"
    spawn abba_b "wait a_held; take m:abba_lock_b; signal b_held; take m:abba_lock_a"
    cmd gate m:abba_lock_b 1
    cmd gate m:abba_lock_a 1
}

# mutex -> rw_semaphore (write) -> semaphore -> mutex
scenario_cycle3() {
    spawn cyc_mutex "take m:cyc_mutex; signal h1; wait all_held; take r:cyc_rwsem w"
    spawn cyc_rwsem "take r:cyc_rwsem w; signal h2; wait all_held; take s:cyc_sem"
    spawn cyc_sem "take s:cyc_sem; signal h3; wait all_held; take m:cyc_mutex"
    cmd await h1; cmd await h2; cmd await h3
    cmd run signal all_held
    cmd gate r:cyc_rwsem 1
    cmd gate s:cyc_sem 1
    cmd gate m:cyc_mutex 1
}

scenario_convoy() {
    spawn convoy_owner "take m:convoy_lock; signal held; wait io_never_done"
    cmd await held
    i=1
    while [ $i -le 16 ]; do
        spawn "convoy_w$i" "take m:convoy_lock"
        cmd gate m:convoy_lock $i
        i=$((i + 1))
    done
}

# is_rt: the guest runs a PREEMPT_RT kernel (its release names the -rt flavour)
is_rt() { case "$(cat /proc/sys/kernel/osrelease)" in *-rt-*|*-rt) return 0;; esac; return 1; }

# writer_waits LOCK N: the declared writer now waits for LOCK.  On PREEMPT_RT it owns the
# rw_semaphore's rtmutex and sleeps in rwbase_write_lock until the readers leave, on no
# wait list (wgate); elsewhere it is the N-th on the wait list.
writer_waits() {
    if is_rt; then cmd wgate $1; else cmd gate $1 $2; fi
}

# reader_waits LOCK N: the declared reader queued behind a waiting writer: the N-th on
# the wait list, or on PREEMPT_RT the (N-1)-th in the rtmutex's rbtree (the writer owns
# the rtmutex and is on none)
reader_waits() {
    if is_rt; then cmd gate $1 $(($2 - 1)); else cmd gate $1 $2; fi
}

scenario_readers() {
    for i in 1 2 3; do
        spawn "reader_$i" "take r:rd_sem r; signal r$i; wait reader_stuck_$i"
        cmd await r$i
    done
    spawn writer "take r:rd_sem w"
    writer_waits r:rd_sem 1
    spawn reader_4 "take r:rd_sem r"
    reader_waits r:rd_sem 2
}

scenario_semaphore() {
    spawn sem_holder "take s:sem_one; signal held; wait holder_stuck"
    cmd await held
    for i in 1 2 3 4; do
        spawn "sem_wait_$i" "take s:sem_one"
        cmd gate s:sem_one $i
    done
}

# N blocked kernel threads over 20 locks (10 mutexes, 5 rw_semaphores, 5 semaphores), each
# lock's owner stuck on a completion, plus one 2-task mutex cycle.
scenario_scale() {
    N=${N:-2000}
    i=0
    while [ $i -lt 20 ]; do
        if [ $i -lt 10 ]; then lk=m:scale_$i; elif [ $i -lt 15 ]; then lk=r:scale_$i; else lk=s:scale_$i; fi
        cmd kspawn "scale_own_$i" "take $lk; signal own_$i; wait scale_stuck"
        cmd await own_$i
        i=$((i + 1))
    done
    cmd kspawn scale_cyc_a "take m:scale_cyc_x; signal cx; wait cy; take m:scale_cyc_y"
    cmd kspawn scale_cyc_b "wait cx; take m:scale_cyc_y; signal cy; take m:scale_cyc_x"
    cmd gate m:scale_cyc_y 1
    cmd gate m:scale_cyc_x 1
    w=0
    left=$((N - 22))
    while [ $w -lt $left ]; do
        i=$((w % 20))
        if [ $i -lt 10 ]; then lk=m:scale_$i; elif [ $i -lt 15 ]; then lk=r:scale_$i; else lk=s:scale_$i; fi
        cmd kspawn "scale_w$w" "take $lk"
        cmd gate $lk $((w / 20 + 1))
        w=$((w + 1))
    done
}

# PREEMPT_RT only: spinlock_t is a sleeping rt_mutex-based lock there.  rt_spin_a holds the
# spinlock_t and wants the mutex; rt_mutex_b holds the mutex and wants the spinlock_t (a
# 2-cycle through a spinlock_t); rt_spin_c queues on the spinlock_t behind rt_mutex_b
# (rbtree order among equal priorities is arrival order).
scenario_rt_spin() {
    spawn rt_spin_a "take p:rt_spin; signal a_held; wait b_held; take m:rt_mutex"
    spawn rt_mutex_b "wait a_held; take m:rt_mutex; signal b_held; take p:rt_spin"
    cmd gate p:rt_spin 1
    cmd gate m:rt_mutex 1
    spawn rt_spin_c "take p:rt_spin"
    cmd gate p:rt_spin 2
}

# Waits that are not locks (the device section of the module).  flush-work: lab_reset
# holds labdev0's mutex and flushes its event work; the work function, on a kworker of
# the labdev_events workqueue, blocks on that mutex.
scenario_flush_work() {
    cmd devinit labdev0
    spawn lab_reset "reset labdev0"
    cmd devgate labdev0
}

# kthread-stop: lab_remove holds labdev1's mutex and stops its poll thread, which, woken
# from its sleep, blocks on that mutex before it can see the stop.
scenario_kthread_stop() {
    cmd devinit labdev1
    cmd devpoll labdev1
    spawn lab_remove "stop labdev1"
    cmd devgate labdev1
}

# flush-wq: lab_suspend holds labdev2's mutex, queues its event work and flushes the
# whole labdev_events workqueue; the work function blocks on the mutex.
scenario_flush_wq() {
    cmd devinit labdev2
    spawn lab_suspend "sync labdev2"
    cmd devgate labdev2
}

# ---- Held locks only the code shows (issue 14) -------------------------------------

# ABBA over two driver-global semaphores taken RIP-relative (down(&lab_global_sem_a)):
# neither holder keeps a semaphore's address in a register or a stack slot.
scenario_global_sems() {
    spawn gsem_a "gsem a; signal a_held; wait b_held; gsem b"
    spawn gsem_b "wait a_held; gsem b; signal b_held; gsem a"
    cmd gate g:lab_global_sem_b 1
    cmd gate g:lab_global_sem_a 1
}

# ABBA over the semaphores inside two kmalloc'ed xnodes, taken through the noinline
# xfs_ilock()-style wrapper lab_xnode_ilock(xn); the holders keep only the xnode;
# xfs_c queues on ino_a behind xfs_b.
scenario_wrapper() {
    spawn xfs_a "xlock x:ino_a; signal a_held; wait b_held; xlock x:ino_b"
    spawn xfs_b "wait a_held; xlock x:ino_b; signal b_held; xlock x:ino_a"
    cmd gate x:ino_b 1
    cmd gate x:ino_a 1
    spawn xfs_c "xlock x:ino_a"
    cmd gate x:ino_a 2
}

# An mmap_lock-style rw_semaphore in a kmalloc'ed lab_mm held for read by three tasks
# through lab_mmap_read_lock(mm), each then stuck on a completion; a writer queues
# behind them, then a fourth reader behind the writer.
scenario_rwsem_readers() {
    for i in 1 2 3; do
        spawn "mm_reader_$i" "mmread mm:mm_a; signal mr$i; wait mm_stuck_$i"
        cmd await mr$i
    done
    spawn mm_writer "mmwrite mm:mm_a"
    writer_waits mm:mm_a 1
    spawn mm_reader_4 "mmread mm:mm_a"
    reader_waits mm:mm_a 2
}

# A reader/writer ABBA: rw_reader holds the mmap_lock-style rw_semaphore of a kmalloc'ed
# lab_mm for read (through lab_mmap_read_lock) and wants a mutex; rw_writer holds that
# mutex and wants the rw_semaphore for write (lab_mmap_write_lock) -- on PREEMPT_RT
# owning its rtmutex and waiting for the reader to leave.
scenario_rw_abba() {
    spawn rw_reader "mmread mm:mm_b; signal r_held; wait w_held; take m:rw_mutex"
    spawn rw_writer "wait r_held; take m:rw_mutex; signal w_held; mmwrite mm:mm_b"
    writer_waits mm:mm_b 1
    cmd gate m:rw_mutex 1
}
