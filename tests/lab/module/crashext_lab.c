// SPDX-License-Identifier: GPL-2.0
/*
 * crashext_lab: stages lock scenarios for crash-ext's lab and publishes the ground truth.
 *
 * Tasks write a script to /proc/crashext_lab and spend the rest of their life in the
 * kernel running it.  A script is a ';'-separated list of steps:
 *
 *   run take LOCK MODE     acquire LOCK (MODE: w or r; r only for rw_semaphores) and run
 *                          the rest of the script holding it (released after the rest)
 *   run signal EVENT       complete_all() the completion EVENT
 *   run wait EVENT         wait_for_completion() on EVENT (uninterruptible, maybe forever)
 *
 * LOCK names pick the type by prefix: "m:NAME" mutex, "r:NAME" rw_semaphore,
 * "s:NAME" semaphore (count 1), "i:/PATH" the real i_rwsem of the inode at PATH,
 * "p:NAME" spinlock_t (PREEMPT_RT only, where it is a sleeping rt_mutex-based lock).
 *
 * On PREEMPT_RT, mutex, rw_semaphore (i_rwsem too) and spinlock_t are built on
 * struct rt_mutex_base: their waiters sit in its rbtree (priority order, FIFO among
 * equals) as rt_mutex_waiter records on the waiters' stacks, and each waiting task points
 * at its record through task_struct.pi_blocked_on.  The module does not mirror the
 * private rt_mutex_waiter layout: it walks the rbtree with the exported rb_next() and
 * names each node's task by the task whose pi_blocked_on is that node (the rbtree node is
 * the record's first member), so a node no known task claims fails verification.
 *
 * The orchestrator (the guest's init) writes commands that return:
 *
 *   gate LOCK N            wait until LOCK's wait list holds exactly N tasks, and confirm
 *                          the task that declared it would block there as the N-th waiter
 *   wgate LOCK             (PREEMPT_RT rw_semaphore) wait until the declared writer owns
 *                          its rtmutex and sleeps until the readers leave (on no list)
 *   expect LOCK PID MODE   declare that task PID (not ours, e.g. rm) is about to wait on LOCK
 *   await EVENT            wait (bounded) until EVENT has been signalled
 *   run signal EVENT       signal EVENT from the orchestrator
 *   kspawn COMM SCRIPT     start a kernel thread named COMM running SCRIPT
 *   verify                 cross-check the recorded truth against the locks' own fields
 *
 * Reading /proc/crashext_lab returns the truth as JSON: locks (address, type, owners,
 * waiters in queue order), tasks, and every pointer argument passed to the module's own
 * noinline lock functions.  Queue order comes from the orchestration (one new waiter per
 * gate); verify checks it against a walk of each wait list.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/semaphore.h>
#include <linux/completion.h>
#include <linux/kthread.h>
#include <linux/namei.h>
#include <linux/fs.h>
#include <linux/delay.h>
#include <linux/uaccess.h>
#include <linux/sched.h>
#include <linux/pid.h>
#include <linux/utsname.h>
#include <linux/version.h>
#include <linux/workqueue.h>

/*
 * Kernel API differences the module meets on the lab's kernels (5.10 .. 7.x):
 * mutex.wait_lock became a raw_spinlock_t in 5.15 (a spinlock_t before).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 15, 0)
#define LAB_MUTEX_WAIT_LOCK_IS_SPINLOCK 1
#endif
/*
 * sid's 7.x: mutex, rw_semaphore and semaphore keep a pointer to their first waiter record
 * (first_waiter) instead of a list_head wait_list; the records form a ring without head.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
#define LAB_FIRST_WAITER 1
#endif
#ifdef CONFIG_PREEMPT_RT
#include <linux/rtmutex.h>
#include <linux/rbtree.h>
#endif

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("crash-ext lab: lock scenarios with published ground truth");

static char *scenario = "unnamed";
module_param(scenario, charp, 0444);

#define LAB_NAME_LEN 64
#define GATE_TIMEOUT_MS 60000

enum lab_kind { LAB_MUTEX, LAB_RWSEM, LAB_SEM, LAB_INODE, LAB_SPIN };

struct lab_ref {		/* a task in an owner or waiter list */
	struct list_head node;
	pid_t pid;
	char comm[TASK_COMM_LEN];
	char mode;		/* 'w', 'r' or '-' */
	struct task_struct *task;
};

struct lab_lock {
	struct list_head node;
	char name[LAB_NAME_LEN];
	enum lab_kind kind;
	union {
		struct mutex mutex;
		struct rw_semaphore rwsem;
		struct semaphore sem;
		spinlock_t spin;	/* LAB_SPIN, PREEMPT_RT only */
	};
	struct path path;		/* LAB_INODE only */
	void *ext;			/* the held-locks section's locks: the lock itself */
	void *ext_obj;			/* ... the object it is a member of (NULL: a global) */
	const char *ext_type;		/* ... that object's type, and the lock's member */
	const char *ext_member;
	struct list_head owners;
	struct list_head waiters;	/* confirmed, queue order */
	struct list_head pending;	/* declared, not yet confirmed by a gate */
	int nowners;
	struct lab_ref *drainer;	/* PREEMPT_RT rwsem: the waiter (in waiters, first)
					 * that owns the rtmutex and sleeps until the readers
					 * leave; on no wait list (confirmed by wgate) */
};

struct lab_event {
	struct list_head node;
	char name[LAB_NAME_LEN];
	struct completion done;
};

struct lab_call {
	struct list_head node;
	pid_t pid;
	const char *func;
	const char *arg;
	unsigned long value;
};

struct lab_taskinfo {
	struct list_head node;
	pid_t pid;
	char comm[TASK_COMM_LEN];
	char blocked_kind[16];		/* "lock", "completion" or "" */
	char blocked_on[LAB_NAME_LEN];
	unsigned long blocked_addr;
};

static LIST_HEAD(lab_locks);
static LIST_HEAD(lab_events);
static LIST_HEAD(lab_calls);
static LIST_HEAD(lab_tasks);
static DEFINE_SPINLOCK(lab_truth_lock);	/* guards the four lists and every lab_ref list */
static DEFINE_MUTEX(lab_create_mutex);	/* serialises lookup-or-create of locks and events */
static int lab_verified = -1;		/* -1 not run, 0 failed, 1 passed */
/*
 * A page of zeros the module keeps (address in the truth as "zero_page"): makedumpfile's
 * -d 31 leaves zero pages out of a kdump-made dump, so a read there must be reported as
 * not in the dump; QEMU's snapshot keeps it.
 */
static unsigned long lab_zero_page;
static char lab_verify_msg[256];

/* ---- truth recording ------------------------------------------------------------ */

static void lab_note_call(const char *func, const char *arg, const void *value)
{
	struct lab_call *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return;
	c->pid = current->pid;
	c->func = func;
	c->arg = arg;
	c->value = (unsigned long)value;
	spin_lock(&lab_truth_lock);
	list_add_tail(&c->node, &lab_calls);
	spin_unlock(&lab_truth_lock);
}

static struct lab_taskinfo *lab_task_find_locked(pid_t pid)
{
	struct lab_taskinfo *t;

	list_for_each_entry(t, &lab_tasks, node)
		if (t->pid == pid)
			return t;
	return NULL;
}

static void lab_note_task(struct task_struct *task, const char *kind, const char *on,
			  unsigned long addr)
{
	struct lab_taskinfo *t, *fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);

	spin_lock(&lab_truth_lock);
	t = lab_task_find_locked(task->pid);
	if (!t && fresh) {
		t = fresh;
		fresh = NULL;
		t->pid = task->pid;
		get_task_comm(t->comm, task);
		list_add_tail(&t->node, &lab_tasks);
	}
	if (t) {
		strscpy(t->blocked_kind, kind, sizeof(t->blocked_kind));
		strscpy(t->blocked_on, on, sizeof(t->blocked_on));
		t->blocked_addr = addr;
	}
	spin_unlock(&lab_truth_lock);
	kfree(fresh);
}

static struct lab_ref *lab_ref_new(struct task_struct *task, char mode)
{
	struct lab_ref *r = kzalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return NULL;
	r->pid = task->pid;
	get_task_comm(r->comm, task);
	r->mode = mode;
	r->task = task;
	get_task_struct(task);
	return r;
}

static void lab_add_ref(struct list_head *list, struct lab_ref *r)
{
	if (!r)
		return;
	spin_lock(&lab_truth_lock);
	list_add_tail(&r->node, list);
	spin_unlock(&lab_truth_lock);
}

/* ---- locks and events -------------------------------------------------------- */

static const char *lab_kind_type(enum lab_kind k)
{
	switch (k) {
	case LAB_MUTEX: return "mutex";
	case LAB_SEM: return "semaphore";
	case LAB_SPIN: return "spinlock";
	default: return "rw_semaphore";
	}
}

static void *lab_lock_addr(struct lab_lock *l)
{
	if (l->ext)
		return l->ext;
	switch (l->kind) {
	case LAB_MUTEX: return &l->mutex;
	case LAB_RWSEM: return &l->rwsem;
	case LAB_SEM: return &l->sem;
	case LAB_SPIN: return &l->spin;
	default: return &d_inode(l->path.dentry)->i_rwsem;
	}
}

#ifdef CONFIG_PREEMPT_RT
/* The rt_mutex_base a PREEMPT_RT sleeping lock is built on; NULL for a semaphore. */
static struct rt_mutex_base *lab_rtm(struct lab_lock *l)
{
	switch (l->kind) {
	case LAB_MUTEX: return &l->mutex.rtmutex;
	case LAB_SPIN: return &l->spin.lock;
	case LAB_SEM: return NULL;
	default: return &((struct rw_semaphore *)lab_lock_addr(l))->rwbase.rtmutex;
	}
}
#endif

static int lab_held_lock_init(struct lab_lock *l, const char *name);

static struct lab_lock *lab_lock_get(const char *name, int *err)
{
	struct lab_lock *l;

	*err = 0;
	mutex_lock(&lab_create_mutex);
	list_for_each_entry(l, &lab_locks, node)
		if (!strcmp(l->name, name))
			goto out;
	l = kzalloc(sizeof(*l), GFP_KERNEL);
	if (!l) {
		*err = -ENOMEM;
		goto out;
	}
	strscpy(l->name, name, sizeof(l->name));
	INIT_LIST_HEAD(&l->owners);
	INIT_LIST_HEAD(&l->waiters);
	INIT_LIST_HEAD(&l->pending);
	if (!strncmp(name, "m:", 2)) {
		l->kind = LAB_MUTEX;
		mutex_init(&l->mutex);
	} else if (!strncmp(name, "r:", 2)) {
		l->kind = LAB_RWSEM;
		init_rwsem(&l->rwsem);
	} else if (!strncmp(name, "s:", 2)) {
		l->kind = LAB_SEM;
		sema_init(&l->sem, 1);
	} else if (!strncmp(name, "i:", 2)) {
		l->kind = LAB_INODE;
		*err = kern_path(name + 2, LOOKUP_FOLLOW, &l->path);
	} else if (!strncmp(name, "p:", 2)) {
#ifdef CONFIG_PREEMPT_RT
		l->kind = LAB_SPIN;
		spin_lock_init(&l->spin);
#else
		*err = -EOPNOTSUPP;	/* a spinning lock: no task may sleep holding it */
#endif
	} else if ((*err = lab_held_lock_init(l, name)) != -ENOENT) {
		/* g:, x:, mm: the held-locks section's locks (0, or its error) */
	} else {
		*err = -EINVAL;
	}
	if (*err) {
		pr_err("crashext_lab: bad lock %s: %d\n", name, *err);
		kfree(l);
		l = NULL;
		goto out;
	}
	list_add_tail(&l->node, &lab_locks);
out:
	mutex_unlock(&lab_create_mutex);
	return l;
}

static struct lab_event *lab_event_get(const char *name)
{
	struct lab_event *e;

	mutex_lock(&lab_create_mutex);
	list_for_each_entry(e, &lab_events, node)
		if (!strcmp(e->name, name))
			goto out;
	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (e) {
		strscpy(e->name, name, sizeof(e->name));
		init_completion(&e->done);
		list_add_tail(&e->node, &lab_events);
	}
out:
	mutex_unlock(&lab_create_mutex);
	return e;
}

/*
 * The noinline, noclone lock functions: their pointer arguments are what argrecover must
 * find.  Each records its arguments first and does work after the lock call so that the
 * call is never a tail call (the frame stays on the stack).
 */
static noinline __noclone void lab_mutex_lock(struct mutex *lock)
{
	lab_note_call(__func__, "lock", lock);
	mutex_lock(lock);
	barrier();
}

static noinline __noclone void lab_rwsem_down_write(struct rw_semaphore *sem)
{
	lab_note_call(__func__, "sem", sem);
	down_write(sem);
	barrier();
}

static noinline __noclone void lab_rwsem_down_read(struct rw_semaphore *sem)
{
	lab_note_call(__func__, "sem", sem);
	down_read(sem);
	barrier();
}

static noinline __noclone void lab_sem_down(struct semaphore *sem)
{
	lab_note_call(__func__, "sem", sem);
	down(sem);
	barrier();
}

/*
 * PREEMPT_RT only: a sleeping spinlock_t, held across the rest of the script (a task that
 * blocks while holding one is the bug class RT turns into a sleeping-lock deadlock).
 */
static noinline __noclone void lab_spin_lock(spinlock_t *lock)
{
	lab_note_call(__func__, "lock", lock);
	spin_lock(lock);
	barrier();
}

static noinline __noclone void lab_inode_lock(struct dentry *dentry, struct inode *inode)
{
	lab_note_call(__func__, "dentry", dentry);
	lab_note_call(__func__, "inode", inode);
	if (d_inode(dentry) == inode)
		inode_lock(inode);
	barrier();
}

static noinline __noclone void lab_wait_event(struct completion *done)
{
	lab_note_call(__func__, "done", done);
	wait_for_completion(done);
	barrier();
}

static noinline __noclone int lab_take(struct lab_lock *l, char mode)
{
	struct lab_ref *pend = lab_ref_new(current, mode);

	lab_note_call(__func__, "l", l);
	if (!pend)
		return -ENOMEM;
	lab_add_ref(&l->pending, pend);
	lab_note_task(current, "lock", l->name, (unsigned long)lab_lock_addr(l));
	switch (l->kind) {
	case LAB_MUTEX:
		lab_mutex_lock(&l->mutex);
		break;
	case LAB_RWSEM:
		if (mode == 'r')
			lab_rwsem_down_read(&l->rwsem);
		else
			lab_rwsem_down_write(&l->rwsem);
		break;
	case LAB_SEM:
		lab_sem_down(&l->sem);
		break;
	case LAB_INODE:
		lab_inode_lock(l->path.dentry, d_inode(l->path.dentry));
		break;
	case LAB_SPIN:
		lab_spin_lock(&l->spin);
		break;
	}
	/* Acquired without waiting (or after): move from pending to owners. */
	spin_lock(&lab_truth_lock);
	list_del(&pend->node);
	list_add_tail(&pend->node, &l->owners);
	l->nowners++;
	spin_unlock(&lab_truth_lock);
	lab_note_task(current, "", "", 0);
	return 0;
}

static int lab_run(char *script);
static int lab_held_step(const char *verb, const char *arg, char **rest, int *err);

static void lab_release(struct lab_lock *l, void *lock, char mode)
{
	switch (l->kind) {
	case LAB_MUTEX:
		mutex_unlock(lock);
		break;
	case LAB_RWSEM:
		if (mode == 'r')
			up_read(lock);
		else
			up_write(lock);
		break;
	case LAB_SEM:
		up(lock);
		break;
	case LAB_INODE:
		inode_unlock(d_inode(l->path.dentry));
		break;
	case LAB_SPIN:
		spin_unlock(lock);
		break;
	}
}

/*
 * Take a lock, run the rest of the script while holding it, then release it.  Like kernel
 * code that holds a lock across calls (the seed's xfs_file_splice_write holding i_iolock
 * while generic_file_splice_write waits for i_mutex), the holder's frame keeps the lock's
 * address live for the release.  Staged tasks block inside the rest and never release.
 */
static noinline __noclone int lab_hold(struct lab_lock *l, void *lock, char mode, char *rest)
{
	int err;

	lab_note_call(__func__, "l", l);
	lab_note_call(__func__, "lock", lock);
	lab_note_call(__func__, "rest", rest);
	err = lab_take(l, mode);
	if (err)
		return err;
	err = lab_run(rest);
	lab_release(l, lock, mode);
	return err;
}

/* ==== waits that are not locks: a driver's work item and poll thread ============ *
 *
 * A device as a driver would have it: a kmalloc'ed struct with a mutex guarding its
 * state, a work_struct handling its events on a workqueue, and a poll kthread.  Two
 * classic deadlocks a lock graph alone cannot close:
 *
 *   reset DEV   lab_dev_reset(): mutex_lock(&dev->lock); queue the event work;
 *               flush_work(&dev->work) -- while the work function, on a kworker,
 *               blocks in mutex_lock(&dev->lock).
 *   stop DEV    lab_dev_stop(): mutex_lock(&dev->lock); kthread_stop(dev->poller) --
 *               while the poll thread, woken, blocks in mutex_lock(&dev->lock).
 *   sync DEV    lab_dev_sync(): mutex_lock(&dev->lock); queue the event work;
 *               flush_workqueue() of the device's workqueue -- the work function blocks
 *               as for reset.
 *
 * Orchestrator commands: "devinit DEV" (create it), "devpoll DEV" (start its poll
 * thread), "devgate DEV" (wait until both tasks of the deadlock sleep where they will
 * stay).  Truth: "devices" (addresses, which task runs the work, the poll thread) and
 * "waits" (who waits on what, who must act, the work function), printed by lab_show_devs.
 */
struct lab_dev {
	struct list_head node;		/* lab_devs, under lab_truth_lock */
	char name[LAB_NAME_LEN];
	struct mutex lock;		/* guards the device state */
	struct work_struct work;	/* the event handler */
	struct task_struct *poller;	/* the poll thread, when started */
	unsigned long generation;
	unsigned long events;
	unsigned long polls;
	/* truth, recorded by the code paths as they run */
	struct task_struct *actor;	/* the task in lab_dev_reset / lab_dev_stop */
	const char *actor_wait;		/* "flush_work", "flush_workqueue" or "kthread_stop" */
	struct task_struct *worker;	/* the task running lab_dev_work_fn */
	char worker_comm[TASK_COMM_LEN];
};

static LIST_HEAD(lab_devs);
static struct workqueue_struct *lab_dev_wq;

static struct lab_dev *lab_dev_find(const char *name)
{
	struct lab_dev *d;

	spin_lock(&lab_truth_lock);
	list_for_each_entry(d, &lab_devs, node)
		if (!strcmp(d->name, name))
			goto out;
	d = NULL;
out:
	spin_unlock(&lab_truth_lock);
	return d;
}

static void lab_dev_work_fn(struct work_struct *work)
{
	struct lab_dev *dev = container_of(work, struct lab_dev, work);

	WRITE_ONCE(dev->worker, current);	/* truth: this task runs the work */
	get_task_comm(dev->worker_comm, current);
	mutex_lock(&dev->lock);
	dev->events++;
	mutex_unlock(&dev->lock);
}

static int lab_dev_poll(void *data)
{
	struct lab_dev *dev = data;

	while (!kthread_should_stop()) {
		schedule_timeout_interruptible(HZ / 10);
		mutex_lock(&dev->lock);
		dev->polls++;
		mutex_unlock(&dev->lock);
	}
	return 0;
}

/* The reset path: raises the device's event and waits for its handler, lock held. */
static noinline __noclone void lab_dev_reset(struct lab_dev *dev)
{
	mutex_lock(&dev->lock);
	dev->generation++;
	queue_work(lab_dev_wq, &dev->work);
	WRITE_ONCE(dev->actor_wait, "flush_work");
	flush_work(&dev->work);
	mutex_unlock(&dev->lock);
}

/* The suspend path: queues a last event and drains the device's workqueue, lock held. */
static noinline __noclone void lab_dev_sync(struct lab_dev *dev)
{
	mutex_lock(&dev->lock);
	dev->generation++;
	queue_work(lab_dev_wq, &dev->work);
	WRITE_ONCE(dev->actor_wait, "flush_workqueue");
	flush_workqueue(lab_dev_wq);
	mutex_unlock(&dev->lock);
}

/* The remove path: stops the poll thread, lock held. */
static noinline __noclone void lab_dev_stop(struct lab_dev *dev)
{
	mutex_lock(&dev->lock);
	dev->generation++;
	WRITE_ONCE(dev->actor_wait, "kthread_stop");
	kthread_stop(dev->poller);
	dev->poller = NULL;
	mutex_unlock(&dev->lock);
}

static int lab_dev_init(const char *name)
{
	struct lab_dev *dev;

	if (lab_dev_find(name))
		return -EEXIST;
	if (!lab_dev_wq) {
		lab_dev_wq = alloc_workqueue("labdev_events", 0, 0);
		if (!lab_dev_wq)
			return -ENOMEM;
	}
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	strscpy(dev->name, name, sizeof(dev->name));
	mutex_init(&dev->lock);
	INIT_WORK(&dev->work, lab_dev_work_fn);
	spin_lock(&lab_truth_lock);
	list_add_tail(&dev->node, &lab_devs);
	spin_unlock(&lab_truth_lock);
	return 0;
}

static int lab_dev_start_poll(const char *name)
{
	struct lab_dev *dev = lab_dev_find(name);
	struct task_struct *t;

	if (!dev || dev->poller)
		return -EINVAL;
	t = kthread_run(lab_dev_poll, dev, "%s-poll", dev->name);
	if (IS_ERR(t))
		return PTR_ERR(t);
	get_task_struct(t);		/* the truth prints it after kthread_stop began */
	dev->poller = t;
	return 0;
}

/* A script step on a device ("reset", "sync" or "stop" DEV); -ENOENT for another VERB. */
static int lab_dev_step(const char *verb, const char *name)
{
	struct lab_dev *dev;

	if (strcmp(verb, "reset") && strcmp(verb, "stop") && strcmp(verb, "sync"))
		return -ENOENT;
	dev = lab_dev_find(name);
	if (!dev || READ_ONCE(dev->actor))
		return -EINVAL;
	if (!strcmp(verb, "stop") && !dev->poller)
		return -EINVAL;
	get_task_struct(current);
	WRITE_ONCE(dev->actor, current);
	if (!strcmp(verb, "reset"))
		lab_dev_reset(dev);
	else if (!strcmp(verb, "sync"))
		lab_dev_sync(dev);
	else
		lab_dev_stop(dev);
	return 0;
}

static bool lab_task_sleeps_un(struct task_struct *t)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 14, 0)
	return t && READ_ONCE(t->__state) == TASK_UNINTERRUPTIBLE;
#else
	return t && READ_ONCE(t->state) == TASK_UNINTERRUPTIBLE;
#endif
}

/* The task that waits on the device's mutex in the staged deadlock. */
static struct task_struct *lab_dev_blocked(struct lab_dev *dev)
{
	if (!dev->actor_wait)
		return NULL;
	return strcmp(dev->actor_wait, "kthread_stop") ? READ_ONCE(dev->worker) : dev->poller;
}

/*
 * Wait (bounded) until the actor sleeps uninterruptibly after announcing its wait and
 * the other task sleeps uninterruptibly on the held mutex (its only UN sleep), the same
 * on three looks 20 ms apart.
 */
static int lab_dev_gate(const char *name)
{
	struct lab_dev *dev = lab_dev_find(name);
	int waited, stable = 0;

	if (!dev)
		return -EINVAL;
	for (waited = 0; waited < GATE_TIMEOUT_MS && stable < 3; waited += 20) {
		msleep(20);
		if (READ_ONCE(dev->actor_wait) && mutex_is_locked(&dev->lock) &&
		    lab_task_sleeps_un(dev->actor) && lab_task_sleeps_un(lab_dev_blocked(dev)))
			stable++;
		else
			stable = 0;
	}
	if (stable < 3) {
		pr_err("crashext_lab: devgate %s: the deadlock did not settle\n", name);
		return -ETIMEDOUT;
	}
	return 0;
}

static void lab_show_devs(struct seq_file *m)
{
	struct lab_dev *d;
	struct task_struct *b;
	bool first = true;

	seq_puts(m, ",\n \"devices\": [");
	list_for_each_entry(d, &lab_devs, node) {
		seq_printf(m, "%s\n  {\"name\": \"%s\", \"address\": \"0x%lx\", \"type\": "
			   "\"crashext_lab lab_dev\", \"mutex\": \"0x%lx\", \"work\": \"0x%lx\", "
			   "\"work_func\": \"%ps\", \"workqueue\": \"0x%lx\", \"workqueue_name\": "
			   "\"labdev_events\", \"worker_pid\": %d, \"worker_comm\": \"%s\", "
			   "\"poller_pid\": %d, \"poller_task\": \"0x%lx\"}",
			   first ? "" : ",", d->name, (unsigned long)d, (unsigned long)&d->lock,
			   (unsigned long)&d->work, d->work.func, (unsigned long)lab_dev_wq,
			   d->worker ? d->worker->pid : 0, d->worker ? d->worker_comm : "",
			   d->poller ? d->poller->pid : 0, (unsigned long)d->poller);
		first = false;
	}
	seq_puts(m, "],\n \"waits\": [");
	first = true;
	list_for_each_entry(d, &lab_devs, node) {
		b = lab_dev_blocked(d);
		if (!d->actor || !d->actor_wait || !b)
			continue;
		/* the actor waits on the work item / the poll thread, which must act ... */
		seq_printf(m, "%s\n  {\"pid\": %d, \"comm\": \"%s\", \"waits\": \"%s\", "
			   "\"must_act_pid\": %d, \"must_act_comm\": \"%s\", ",
			   first ? "" : ",", d->actor->pid, d->actor->comm, d->actor_wait,
			   b->pid, b->comm);
		if (!strcmp(d->actor_wait, "flush_work"))
			seq_printf(m, "\"object\": \"0x%lx\", \"work_func\": \"%ps\"}",
				   (unsigned long)&d->work, d->work.func);
		else if (!strcmp(d->actor_wait, "flush_workqueue"))
			seq_printf(m, "\"object\": \"0x%lx\", \"work_func\": \"%ps\"}",
				   (unsigned long)lab_dev_wq, d->work.func);
		else
			seq_printf(m, "\"object\": \"0x%lx\"}", (unsigned long)b);
		/* ... and waits on the mutex the actor holds: the cycle */
		seq_printf(m, ",\n  {\"pid\": %d, \"comm\": \"%s\", \"waits\": \"mutex\", "
			   "\"object\": \"0x%lx\", \"holder_pid\": %d}",
			   b->pid, b->comm, (unsigned long)&d->lock, d->actor->pid);
		first = false;
	}
	seq_puts(m, "]");
}

/* ==== end of waits that are not locks ============================================= */

/* Runs one step; a "take" runs the rest of the script (*rest) itself, under the lock. */
static int lab_step(char *step, char **rest)
{
	char *verb = strsep(&step, " ");
	char *arg = strsep(&step, " ");
	char *mode = step;
	struct lab_lock *l;
	struct lab_event *e;
	int err;

	if (!verb || !arg)
		return -EINVAL;
	if (lab_held_step(verb, arg, rest, &err))
		return err;
	if (!strcmp(verb, "take")) {
		l = lab_lock_get(arg, &err);
		if (!l)
			return err;
		err = lab_hold(l, lab_lock_addr(l), (mode && *mode == 'r') ? 'r' :
			       (l->kind == LAB_RWSEM || l->kind == LAB_INODE) ? 'w' : '-', *rest);
		*rest = NULL;
		return err;
	}
	err = lab_dev_step(verb, arg);
	if (err != -ENOENT)
		return err;
	e = lab_event_get(arg);
	if (!e)
		return -ENOMEM;
	if (!strcmp(verb, "signal")) {
		complete_all(&e->done);
		return 0;
	}
	if (!strcmp(verb, "wait")) {
		lab_note_task(current, "completion", e->name, (unsigned long)&e->done);
		lab_wait_event(&e->done);
		lab_note_task(current, "", "", 0);
		return 0;
	}
	return -EINVAL;
}

static int lab_run(char *script)
{
	char *step;
	int err;

	while ((step = strsep(&script, ";")) != NULL) {
		step = strim(step);
		if (!*step)
			continue;
		err = lab_step(step, &script);
		if (err) {
			pr_err("crashext_lab: step '%s' failed: %d\n", step, err);
			return err;
		}
	}
	return 0;
}

static int lab_kthread(void *data)
{
	char *script = data;

	lab_run(script);
	kfree(script);
	/* A staged kthread never returns to a scenario that could be verified. */
	while (!kthread_should_stop())
		schedule_timeout_interruptible(MAX_SCHEDULE_TIMEOUT);
	return 0;
}

/* ---- held locks only the code shows (issue 14) ---------------------------------------
 *
 * Real kernel code rarely keeps a held lock's address where a debugger finds it: a
 * driver-global semaphore is reached RIP-relative (down(&foo_sem) ... up(&foo_sem)), a
 * lock inside an object is taken through a noinline wrapper handed the object
 * (xfs_ilock(ip, ...), inode_lock(inode), mmap_read_lock(mm)) and the caller keeps only
 * the object.  These steps stage exactly that; the lab_lock records keep only the truth
 * (the bookkeeping calls take the lab_lock record, and the argument truth records the
 * object or script the frame was handed, never the lock's address).
 *
 *   run gsem a|b           down(&lab_global_sem_a|b), the rest of the script, up(...)
 *   run xlock x:NAME       lab_xnode_ilock(xnode NAME), the rest, lab_xnode_iunlock(...)
 *   run mmread mm:NAME     lab_mmap_read_lock(lab_mm NAME), the rest, ..._read_unlock(...)
 *   run mmwrite mm:NAME    lab_mmap_write_lock(lab_mm NAME), the rest, ..._write_unlock(...)
 *
 * Their locks are named g:lab_global_sem_a, g:lab_global_sem_b, x:NAME (a semaphore at
 * a non-zero offset in a kmalloc'ed struct lab_xnode) and mm:NAME (an rw_semaphore in a
 * kmalloc'ed struct lab_mm), for gate and verify as any other lock.
 */
static struct semaphore lab_global_sem_a = __SEMAPHORE_INITIALIZER(lab_global_sem_a, 1);
static struct semaphore lab_global_sem_b = __SEMAPHORE_INITIALIZER(lab_global_sem_b, 1);

struct lab_xnode {		/* an xfs_inode-like object: its iolock deep inside */
	unsigned long x_ino;
	unsigned long x_flags;
	char x_name[LAB_NAME_LEN];
	struct semaphore x_iolock;
	struct lab_lock *x_truth;
};

struct lab_mm {			/* an mm_struct-like object */
	unsigned long flags;
	atomic_t mm_users;
	char name[LAB_NAME_LEN];
	struct rw_semaphore mmap_lock;
	struct lab_lock *truth;
};

/* Returns 0 after setting up a g:, x: or mm: lock in @l, -ENOENT for other names. */
static int lab_held_lock_init(struct lab_lock *l, const char *name)
{
	if (!strcmp(name, "g:lab_global_sem_a") || !strcmp(name, "g:lab_global_sem_b")) {
		l->kind = LAB_SEM;
		l->ext = name[17] == 'a' ? &lab_global_sem_a : &lab_global_sem_b;
		return 0;
	}
	if (!strncmp(name, "x:", 2)) {
		struct lab_xnode *xn = kzalloc(sizeof(*xn), GFP_KERNEL);

		if (!xn)
			return -ENOMEM;
		strscpy(xn->x_name, name + 2, sizeof(xn->x_name));
		xn->x_ino = 1000 + name[strlen(name) - 1];
		sema_init(&xn->x_iolock, 1);
		xn->x_truth = l;
		l->kind = LAB_SEM;
		l->ext = &xn->x_iolock;
		l->ext_obj = xn;
		l->ext_type = "crashext_lab lab_xnode";
		l->ext_member = "x_iolock";
		return 0;
	}
	if (!strncmp(name, "mm:", 3)) {
		struct lab_mm *mm = kzalloc(sizeof(*mm), GFP_KERNEL);

		if (!mm)
			return -ENOMEM;
		strscpy(mm->name, name + 3, sizeof(mm->name));
		atomic_set(&mm->mm_users, 1);
		init_rwsem(&mm->mmap_lock);
		mm->truth = l;
		l->kind = LAB_RWSEM;
		l->ext = &mm->mmap_lock;
		l->ext_obj = mm;
		l->ext_type = "crashext_lab lab_mm";
		l->ext_member = "mmap_lock";
		return 0;
	}
	return -ENOENT;
}

/* Truth: the current task is about to wait for @l; returns its pending record. */
static noinline struct lab_ref *lab_book_wait(struct lab_lock *l, char mode)
{
	struct lab_ref *r = lab_ref_new(current, mode);

	lab_add_ref(&l->pending, r);
	lab_note_task(current, "lock", l->name, (unsigned long)lab_lock_addr(l));
	return r;
}

/* Truth: the current task now holds @l (its pending record @r moves to the owners). */
static noinline void lab_book_owned(struct lab_lock *l, struct lab_ref *r)
{
	if (r) {
		spin_lock(&lab_truth_lock);
		list_del(&r->node);
		list_add_tail(&r->node, &l->owners);
		l->nowners++;
		spin_unlock(&lab_truth_lock);
	}
	lab_note_task(current, "", "", 0);
}

static noinline __noclone int lab_gsem_a_section(char *rest)
{
	int err;
	struct lab_lock *l = lab_lock_get("g:lab_global_sem_a", &err);
	struct lab_ref *r;

	if (!l)
		return err;
	lab_note_call(__func__, "rest", rest);
	r = lab_book_wait(l, '-');
	down(&lab_global_sem_a);
	lab_book_owned(l, r);
	err = lab_run(rest);
	up(&lab_global_sem_a);
	return err;
}

static noinline __noclone int lab_gsem_b_section(char *rest)
{
	int err;
	struct lab_lock *l = lab_lock_get("g:lab_global_sem_b", &err);
	struct lab_ref *r;

	if (!l)
		return err;
	lab_note_call(__func__, "rest", rest);
	r = lab_book_wait(l, '-');
	down(&lab_global_sem_b);
	lab_book_owned(l, r);
	err = lab_run(rest);
	up(&lab_global_sem_b);
	return err;
}

/* xfs_ilock()-style wrappers: handed the object, they lock a member of it. */
static noinline __noclone void lab_xnode_ilock(struct lab_xnode *xn)
{
	struct lab_ref *r;

	lab_note_call(__func__, "xn", xn);
	r = lab_book_wait(xn->x_truth, '-');

	down(&xn->x_iolock);
	lab_book_owned(xn->x_truth, r);
}

static noinline __noclone void lab_xnode_iunlock(struct lab_xnode *xn)
{
	up(&xn->x_iolock);
}

static noinline __noclone int lab_xnode_section(struct lab_xnode *xn, char *rest)
{
	int err;

	lab_xnode_ilock(xn);
	xn->x_flags |= 1;
	err = lab_run(rest);
	xn->x_flags &= ~1UL;
	lab_xnode_iunlock(xn);
	return err;
}

/* mmap_read_lock()-style wrappers on a lab_mm */
static noinline __noclone void lab_mmap_read_lock(struct lab_mm *mm)
{
	struct lab_ref *r;

	lab_note_call(__func__, "mm", mm);
	r = lab_book_wait(mm->truth, 'r');

	down_read(&mm->mmap_lock);
	lab_book_owned(mm->truth, r);
}

static noinline __noclone void lab_mmap_read_unlock(struct lab_mm *mm)
{
	up_read(&mm->mmap_lock);
}

static noinline __noclone void lab_mmap_write_lock(struct lab_mm *mm)
{
	struct lab_ref *r;

	lab_note_call(__func__, "mm", mm);
	r = lab_book_wait(mm->truth, 'w');

	down_write(&mm->mmap_lock);
	lab_book_owned(mm->truth, r);
}

static noinline __noclone void lab_mmap_write_unlock(struct lab_mm *mm)
{
	up_write(&mm->mmap_lock);
}

static noinline __noclone int lab_mm_read_section(struct lab_mm *mm, char *rest)
{
	int err;

	lab_mmap_read_lock(mm);
	atomic_inc(&mm->mm_users);
	err = lab_run(rest);
	atomic_dec(&mm->mm_users);
	lab_mmap_read_unlock(mm);
	return err;
}

static noinline __noclone int lab_mm_write_section(struct lab_mm *mm, char *rest)
{
	int err;

	lab_mmap_write_lock(mm);
	mm->flags |= 1;
	err = lab_run(rest);
	mm->flags &= ~1UL;
	lab_mmap_write_unlock(mm);
	return err;
}

/*
 * Runs a held-locks step (gsem, xlock, mmread, mmwrite), which runs the rest of the
 * script (*rest) itself; returns 1 with the step's result in *err, 0 for other verbs.
 */
static int lab_held_step(const char *verb, const char *arg, char **rest, int *err)
{
	struct lab_lock *l;
	char *script = *rest;

	if (!strcmp(verb, "gsem")) {
		*rest = NULL;
		*err = *arg == 'a' ? lab_gsem_a_section(script) :
		       *arg == 'b' ? lab_gsem_b_section(script) : -EINVAL;
		return 1;
	}
	if (strcmp(verb, "xlock") && strcmp(verb, "mmread") && strcmp(verb, "mmwrite"))
		return 0;
	*rest = NULL;
	l = lab_lock_get(arg, err);
	if (!l)
		return 1;
	if (!strcmp(verb, "xlock"))
		*err = l->ext_type && !strncmp(arg, "x:", 2) ?
		       lab_xnode_section(l->ext_obj, script) : -EINVAL;
	else if (l->ext_type && !strncmp(arg, "mm:", 3))
		*err = verb[2] == 'r' ? lab_mm_read_section(l->ext_obj, script) :
		       lab_mm_write_section(l->ext_obj, script);
	else
		*err = -EINVAL;
	return 1;
}

/* ---- gates and verification ------------------------------------------------- */

#ifdef CONFIG_PREEMPT_RT
/* The task among the lock's declared and confirmed waiters whose pi_blocked_on is @node. */
static struct task_struct *lab_rt_node_task(struct lab_lock *l, struct rb_node *node)
{
	struct list_head *lists[2] = { &l->waiters, &l->pending };
	struct task_struct *found = NULL;
	struct lab_ref *r;
	int i;

	spin_lock(&lab_truth_lock);
	for (i = 0; i < 2 && !found; i++)
		list_for_each_entry(r, lists[i], node)
			if ((void *)READ_ONCE(r->task->pi_blocked_on) == (void *)node) {
				found = r->task;
				break;
			}
	spin_unlock(&lab_truth_lock);
	return found;
}

#define LAB_MAX_RT_NODES 64

/*
 * Returns the number of waiters in the rbtree of the lock's rt_mutex_base (in order);
 * with @tasks, the task of each (NULL where no known task claims the node).
 */
static int lab_count_rt_waiters(struct lab_lock *l, struct task_struct **tasks, int max)
{
	struct rt_mutex_base *rtm = lab_rtm(l);
	struct rb_node *nodes[LAB_MAX_RT_NODES], *node;
	unsigned long flags;
	int n = 0, i;

	raw_spin_lock_irqsave(&rtm->wait_lock, flags);
	for (node = rb_first_cached(&rtm->waiters); node; node = rb_next(node)) {
		if (n < LAB_MAX_RT_NODES)
			nodes[n] = node;
		if (++n > 100000)
			break;
	}
	raw_spin_unlock_irqrestore(&rtm->wait_lock, flags);
	/* the truth lock is a sleeping lock on RT: map nodes to tasks outside wait_lock */
	for (i = 0; tasks && i < n && i < max && i < LAB_MAX_RT_NODES; i++)
		tasks[i] = lab_rt_node_task(l, nodes[i]);
	return n;
}
#endif

/* Returns the number of nodes on the lock's wait list (bounded), taken under its wait lock. */
static int lab_count_waiters(struct lab_lock *l, struct task_struct **tasks, int max)
{
	struct list_head *head, *pos;
#ifdef LAB_FIRST_WAITER
	struct list_head *first;
#endif
	raw_spinlock_t *wl = NULL;
#ifdef LAB_MUTEX_WAIT_LOCK_IS_SPINLOCK
	spinlock_t *mwl = NULL;
#endif
	unsigned long flags;
	int n = 0;

#ifdef CONFIG_PREEMPT_RT
	if (lab_rtm(l))
		return lab_count_rt_waiters(l, tasks, max);
#endif
	switch (l->kind) {
#ifndef CONFIG_PREEMPT_RT
	case LAB_MUTEX:
#ifdef LAB_FIRST_WAITER
		head = (struct list_head *)&l->mutex.first_waiter;
#else
		head = &l->mutex.wait_list;
#endif
#ifdef LAB_MUTEX_WAIT_LOCK_IS_SPINLOCK
		mwl = &l->mutex.wait_lock;
#else
		wl = &l->mutex.wait_lock;
#endif
		break;
	case LAB_RWSEM:
	case LAB_INODE: {
		struct rw_semaphore *s = lab_lock_addr(l);

#ifdef LAB_FIRST_WAITER
		head = (struct list_head *)&s->first_waiter;
#else
		head = &s->wait_list;
#endif
		wl = &s->wait_lock;
		break;
	}
#endif
	default: {	/* LAB_SEM */
		struct semaphore *s = lab_lock_addr(l);

#ifdef LAB_FIRST_WAITER
		head = (struct list_head *)&s->first_waiter;
#else
		head = &s->wait_list;
#endif
		wl = &s->lock;
	}
	}
#ifdef LAB_MUTEX_WAIT_LOCK_IS_SPINLOCK
	if (mwl)
		spin_lock_irqsave(mwl, flags);
	else
#endif
		raw_spin_lock_irqsave(wl, flags);
	/*
	 * mutex_waiter, rwsem_waiter and semaphore_waiter all begin with
	 * { struct list_head list; struct task_struct *task; }.
	 */
#ifdef LAB_FIRST_WAITER
	/* head is the first_waiter pointer: a ring of records from there, no head node */
	first = *(struct list_head **)head;
	for (pos = first; pos; pos = pos->next == first ? NULL : pos->next) {
		if (tasks && n < max)
			tasks[n] = *(struct task_struct **)(pos + 1);
		if (++n > 100000)
			break;
	}
#else
	list_for_each(pos, head) {
		if (tasks && n < max)
			tasks[n] = *(struct task_struct **)(pos + 1);
		if (++n > 100000)
			break;
	}
#endif
#ifdef LAB_MUTEX_WAIT_LOCK_IS_SPINLOCK
	if (mwl)
		spin_unlock_irqrestore(mwl, flags);
	else
#endif
		raw_spin_unlock_irqrestore(wl, flags);
	return n;
}

static int lab_gate(const char *name, int want)
{
	struct lab_lock *l;
	struct lab_ref *r, *found = NULL;
	struct lab_taskinfo *t;
	int err, n = 0, waited, npending = 0;

	l = lab_lock_get(name, &err);
	if (!l)
		return err;
	for (waited = 0; waited < GATE_TIMEOUT_MS; waited += 2) {
		n = lab_count_waiters(l, NULL, 0);
		if (n >= want)
			break;
		msleep(2);
	}
	if (n != want) {
		pr_err("crashext_lab: gate %s: %d waiters, want %d\n", name, n, want);
		return -ETIMEDOUT;
	}
	spin_lock(&lab_truth_lock);
	list_for_each_entry(r, &l->pending, node) {
		npending++;
		found = r;
	}
	if (npending == 1) {
		list_del(&found->node);
		list_add_tail(&found->node, &l->waiters);
		/* A waiter we were told about may have exec'd since: take its comm now. */
		get_task_comm(found->comm, found->task);
		t = lab_task_find_locked(found->pid);
		if (t)
			memcpy(t->comm, found->comm, sizeof(t->comm));
	}
	spin_unlock(&lab_truth_lock);
	if (npending != 1) {
		pr_err("crashext_lab: gate %s: %d tasks pending, need exactly 1\n", name, npending);
		return -EPROTO;
	}
	return 0;
}

/*
 * PREEMPT_RT rw_semaphore: wait until the one declared writer of @name owns its rtmutex,
 * has taken READER_BIAS out of the readers count (new readers now take the slow path)
 * and sleeps in TASK_UNINTERRUPTIBLE until the readers leave -- rwbase_write_lock's
 * wait, on no wait list.  It becomes the lock's first waiter in the truth (drainer).
 */
static int lab_wgate(const char *name)
{
#ifdef CONFIG_PREEMPT_RT
	struct lab_lock *l;
	struct lab_ref *r, *found = NULL;
	struct rw_semaphore *s;
	int err, waited, npending = 0, readers = 0;
	bool ok = false;

	l = lab_lock_get(name, &err);
	if (!l)
		return err;
	if (l->kind != LAB_RWSEM && l->kind != LAB_INODE)
		return -EINVAL;
	s = lab_lock_addr(l);
	/* the writer is spawned just before: wait for it to declare itself, then to sleep */
	for (waited = 0; waited < GATE_TIMEOUT_MS; waited += 2) {
		unsigned long o = (unsigned long)READ_ONCE(s->rwbase.rtmutex.owner) & ~1UL;

		npending = 0;
		spin_lock(&lab_truth_lock);
		list_for_each_entry(r, &l->pending, node) {
			npending++;
			found = r;
		}
		spin_unlock(&lab_truth_lock);
		readers = atomic_read(&s->rwbase.readers);
		if (npending == 1 && found->mode == 'w' && !l->drainer &&
		    o == (unsigned long)found->task && readers > 0 &&
		    readers < (int)WRITER_BIAS && lab_task_sleeps_un(found->task)) {
			ok = true;
			break;
		}
		msleep(2);
	}
	if (!ok) {
		pr_err("crashext_lab: wgate %s: %d tasks pending, no writer waiting for readers "
		       "(readers %#x)\n", name, npending, readers);
		return -ETIMEDOUT;
	}
	spin_lock(&lab_truth_lock);
	list_del(&found->node);
	list_add(&found->node, &l->waiters);
	l->drainer = found;
	spin_unlock(&lab_truth_lock);
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

static int lab_expect(const char *name, const char *pidstr, const char *mode)
{
	struct lab_lock *l;
	struct task_struct *task;
	struct pid *pid;
	int err, nr;

	if (kstrtoint(pidstr, 10, &nr))
		return -EINVAL;
	l = lab_lock_get(name, &err);
	if (!l)
		return err;
	pid = find_get_pid(nr);
	task = pid ? get_pid_task(pid, PIDTYPE_PID) : NULL;
	put_pid(pid);
	if (!task)
		return -ESRCH;
	lab_add_ref(&l->pending, lab_ref_new(task, mode ? *mode : 'w'));
	lab_note_task(task, "lock", l->name, (unsigned long)lab_lock_addr(l));
	put_task_struct(task);
	return 0;
}

/* Owner recorded in the lock itself, or NULL for locks that record none. */
static struct task_struct *lab_field_owner(struct lab_lock *l)
{
#ifdef CONFIG_PREEMPT_RT
	/* a reader-held rwbase_rt leaves its rtmutex unowned: NULL, like a semaphore */
	if (lab_rtm(l))
		return (struct task_struct *)((unsigned long)READ_ONCE(lab_rtm(l)->owner) & ~1UL);
	return NULL;
#else
	switch (l->kind) {
	case LAB_MUTEX:
		return (struct task_struct *)(atomic_long_read(&l->mutex.owner) & ~0x7UL);
	case LAB_SEM:
		return NULL;
	default: {
		struct rw_semaphore *s = lab_lock_addr(l);
		unsigned long o = atomic_long_read(&s->owner);

		return (o & 1UL) ? NULL : (struct task_struct *)(o & ~0x7UL);
	}
	}
#endif
}

#define LAB_MAX_WALK 8192

static int lab_verify(void)
{
	struct task_struct **walked = kmalloc_array(LAB_MAX_WALK, sizeof(*walked), GFP_KERNEL);
	struct lab_lock *l;
	struct lab_ref *r;
	int n, i, bad = 0;

	if (!walked)
		return -ENOMEM;
	list_for_each_entry(l, &lab_locks, node) {
		n = lab_count_waiters(l, walked, LAB_MAX_WALK);
		i = 0;
		spin_lock(&lab_truth_lock);
		if (!list_empty(&l->pending)) {
			snprintf(lab_verify_msg, sizeof(lab_verify_msg),
				 "%s: a declared waiter was never confirmed by a gate", l->name);
			bad = 1;
		}
		list_for_each_entry(r, &l->waiters, node) {
			if (r == l->drainer)
				continue;	/* on no wait list: checked below */
			if (i >= n || i >= LAB_MAX_WALK || walked[i] != r->task) {
				snprintf(lab_verify_msg, sizeof(lab_verify_msg),
					 "%s: waiter %d is not pid %d", l->name, i, r->pid);
				bad = 1;
			}
			i++;
		}
		if (i != n) {
			snprintf(lab_verify_msg, sizeof(lab_verify_msg),
				 "%s: %d waiters on the list, %d recorded", l->name, n, i);
			bad = 1;
		}
#ifdef CONFIG_PREEMPT_RT
		if (l->drainer) {
			struct rw_semaphore *s = lab_lock_addr(l);

			if (lab_field_owner(l) != l->drainer->task ||
			    atomic_read(&s->rwbase.readers) != l->nowners) {
				snprintf(lab_verify_msg, sizeof(lab_verify_msg),
					 "%s: the writer waiting for readers does not own the "
					 "rtmutex, or the readers count is not the readers", l->name);
				bad = 1;
			}
		} else
#endif
		if (lab_field_owner(l) && (l->nowners != 1 ||
		    list_first_entry(&l->owners, struct lab_ref, node)->task != lab_field_owner(l))) {
			snprintf(lab_verify_msg, sizeof(lab_verify_msg),
				 "%s: owner field disagrees with the recorded owner", l->name);
			bad = 1;
		}
		spin_unlock(&lab_truth_lock);
	}
	kfree(walked);
	lab_verified = !bad;
	if (bad)
		pr_err("crashext_lab: verify failed: %s\n", lab_verify_msg);
	return bad ? -EPROTO : 0;
}

/* ---- /proc/crashext_lab ------------------------------------------------------- */

static ssize_t lab_proc_write(struct file *file, const char __user *ubuf, size_t len,
			      loff_t *ppos)
{
	char *buf, *cmd, *verb, *a1, *a2;
	int err = -EINVAL;

	if (len > PAGE_SIZE - 1)
		return -E2BIG;
	buf = memdup_user_nul(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	cmd = strim(buf);
	verb = strsep(&cmd, " ");
	if (!strcmp(verb, "run")) {
		err = lab_run(cmd);
	} else if (!strcmp(verb, "gate")) {
		int want;

		a1 = strsep(&cmd, " ");
		if (a1 && cmd && !kstrtoint(strim(cmd), 10, &want))
			err = lab_gate(a1, want);
	} else if (!strcmp(verb, "wgate") && cmd) {
		err = lab_wgate(strim(cmd));
	} else if (!strcmp(verb, "expect")) {
		a1 = strsep(&cmd, " ");
		a2 = strsep(&cmd, " ");
		if (a1 && a2)
			err = lab_expect(a1, a2, cmd);
	} else if (!strcmp(verb, "kspawn")) {
		char *comm = strsep(&cmd, " ");
		char *script = cmd ? kstrdup(cmd, GFP_KERNEL) : NULL;
		struct task_struct *t;

		if (comm && script) {
			t = kthread_run(lab_kthread, script, "%s", comm);
			err = IS_ERR(t) ? PTR_ERR(t) : 0;
			if (err)
				kfree(script);
		}
	} else if (!strcmp(verb, "await")) {
		struct lab_event *e = cmd ? lab_event_get(strim(cmd)) : NULL;

		if (e)
			err = wait_for_completion_timeout(&e->done,
					msecs_to_jiffies(GATE_TIMEOUT_MS)) ? 0 : -ETIMEDOUT;
	} else if (!strcmp(verb, "verify")) {
		err = lab_verify();
	} else if (!strcmp(verb, "devinit") && cmd) {
		err = lab_dev_init(strim(cmd));
	} else if (!strcmp(verb, "devpoll") && cmd) {
		err = lab_dev_start_poll(strim(cmd));
	} else if (!strcmp(verb, "devgate") && cmd) {
		err = lab_dev_gate(strim(cmd));
	}
	kfree(buf);
	return err ? err : len;
}

static void lab_show_refs(struct seq_file *m, struct list_head *list)
{
	struct lab_ref *r;
	bool first = true;

	seq_puts(m, "[");
	list_for_each_entry(r, list, node) {
		seq_printf(m, "%s{\"pid\": %d, \"comm\": \"%s\", \"mode\": \"%c\"}",
			   first ? "" : ", ", r->pid, r->comm, r->mode);
		first = false;
	}
	seq_puts(m, "]");
}

static int lab_proc_show(struct seq_file *m, void *v)
{
	struct lab_lock *l;
	struct lab_call *c;
	struct lab_taskinfo *t;
	struct lab_event *e;
	bool first;

	spin_lock(&lab_truth_lock);
	seq_printf(m, "{\"scenario\": \"%s\", \"kernel_release\": \"%s\", \"verified\": %s,\n",
		   scenario, utsname()->release,
		   lab_verified == 1 ? "true" : "false");
	seq_printf(m, " \"verify_message\": \"%s\",\n \"zero_page\": \"0x%lx\",\n \"locks\": [",
		   lab_verify_msg, lab_zero_page);
	first = true;
	list_for_each_entry(l, &lab_locks, node) {
		seq_printf(m, "%s\n  {\"name\": \"%s\", \"type\": \"%s\", \"address\": \"0x%lx\", ",
			   first ? "" : ",", l->name, lab_kind_type(l->kind),
			   (unsigned long)lab_lock_addr(l));
		if (l->ext && !l->ext_obj)
			seq_printf(m, "\"container\": {\"type\": \"global\", \"symbol\": \"%s\"}, ",
				   l->name + 2);
		else if (l->ext)
			seq_printf(m, "\"container\": {\"type\": \"%s\", \"member\": \"%s\", "
				   "\"address\": \"0x%lx\"}, ", l->ext_type, l->ext_member,
				   (unsigned long)l->ext_obj);
		else if (l->kind == LAB_INODE)
			seq_printf(m, "\"container\": {\"type\": \"inode\", \"member\": \"i_rwsem\", "
				   "\"address\": \"0x%lx\", \"dentry\": \"0x%lx\", \"path\": \"%s\"}, ",
				   (unsigned long)d_inode(l->path.dentry),
				   (unsigned long)l->path.dentry, l->name + 2);
		else
			seq_printf(m, "\"container\": {\"type\": \"crashext_lab lab_lock\", "
				   "\"address\": \"0x%lx\"}, ", (unsigned long)l);
		seq_puts(m, "\"owners\": ");
		lab_show_refs(m, &l->owners);
		seq_puts(m, ", \"waiters\": ");
		lab_show_refs(m, &l->waiters);
		if (l->drainer)
			seq_printf(m, ", \"writer_waits_for_readers\": %d", l->drainer->pid);
		seq_puts(m, "}");
		first = false;
	}
	seq_puts(m, "],\n \"events\": [");
	first = true;
	list_for_each_entry(e, &lab_events, node) {
		seq_printf(m, "%s{\"name\": \"%s\", \"address\": \"0x%lx\", \"done\": %s, "
			   "\"container\": \"0x%lx\", \"container_size\": %zu}",
			   first ? "" : ", ", e->name, (unsigned long)&e->done,
			   completion_done(&e->done) ? "true" : "false", (unsigned long)e, ksize(e));
		first = false;
	}
	seq_puts(m, "],\n \"tasks\": [");
	first = true;
	list_for_each_entry(t, &lab_tasks, node) {
		seq_printf(m, "%s\n  {\"pid\": %d, \"comm\": \"%s\", \"blocked_kind\": \"%s\", "
			   "\"blocked_on\": \"%s\", \"blocked_address\": \"0x%lx\"}",
			   first ? "" : ",", t->pid, t->comm, t->blocked_kind, t->blocked_on,
			   t->blocked_addr);
		first = false;
	}
	seq_puts(m, "],\n \"calls\": [");
	first = true;
	list_for_each_entry(c, &lab_calls, node) {
		seq_printf(m, "%s\n  {\"pid\": %d, \"function\": \"%s\", \"arg\": \"%s\", "
			   "\"value\": \"0x%lx\"}", first ? "" : ",", c->pid, c->func, c->arg,
			   c->value);
		first = false;
	}
	seq_puts(m, "]");
	lab_show_devs(m);
	seq_puts(m, "}\n");
	spin_unlock(&lab_truth_lock);
	return 0;
}

static int lab_proc_open(struct inode *inode, struct file *file)
{
	return single_open_size(file, lab_proc_show, NULL, 8 << 20);
}

static const struct proc_ops lab_proc_ops = {
	.proc_open = lab_proc_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = lab_proc_write,
};

static int __init lab_init(void)
{
	lab_zero_page = get_zeroed_page(GFP_KERNEL);
	if (!lab_zero_page)
		return -ENOMEM;
	if (!proc_create("crashext_lab", 0600, NULL, &lab_proc_ops))
		return -ENOMEM;
	pr_info("crashext_lab: scenario %s ready\n", scenario);
	return 0;
}
module_init(lab_init);
/* No module_exit: staged tasks stay blocked inside the module for the dump's sake. */
