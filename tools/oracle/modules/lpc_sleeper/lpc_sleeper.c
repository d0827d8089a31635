// SPDX-License-Identifier: GPL-2.0
/*
 * lpc_sleeper: tasks asleep (or spinning) in functions a livepatch can target.
 * Each piece is switched on by a module parameter:
 *
 * - sleeper=1 (default): the kthread "lpc_sleeper" sleeps TASK_INTERRUPTIBLE
 *   inside lpc_sleeper_nap(); every time it is woken it rests rest_ms outside
 *   that function (in its main loop) before napping again. livepatch's fake
 *   signal for a kthread is wake_up_state(TASK_INTERRUPTIBLE), so this is a
 *   kthread the signal frees.
 * - a read of /proc/lpc_sleeper sleeps TASK_UNINTERRUPTIBLE inside
 *   lpc_sleeper_hold() until something is written to the file: a user task
 *   in D state, which no fake signal can move.
 * - resleeper=1: the kthread "lpc_resleeper" waits in lpc_sleeper_wait() for
 *   a condition that never comes true (the wait_event_interruptible() loop of
 *   include/linux/wait.h): the fake signal wakes it, it tests the condition
 *   and sleeps again in the same function.
 * - freezer=1: the kthread "lpc_freezer" spends doze_ms at a time in a plain
 *   (not freezable) TASK_INTERRUPTIBLE sleep inside lpc_sleeper_doze(), then
 *   freeze_ms in a TASK_INTERRUPTIBLE|TASK_FREEZABLE sleep in its main loop,
 *   outside any function a scenario patches. From v6.16 __schedule() tries to
 *   switch a task that goes to sleep with TASK_FREEZABLE (kernel/sched/core.c,
 *   klp_sched_try_switch()); before, only a retry that happens to fall in
 *   those few milliseconds, or cond_resched(), which it never calls, can.
 *   "dozes" counts the dozes begun, so a scenario can start a patch right at
 *   the beginning of one.
 * - spinners=N, spinners_in=M: N kthreads "lpc_spin/i" spin in
 *   lpc_sleeper_spin_out() and M kthreads "lpc_spin_in/i" in
 *   lpc_sleeper_spin_in(), each calling cond_resched() every spin_chunk_ms
 *   (20 ms: chunks, so a patch pending on them does not run the cond_resched()
 *   stack check of v6.4..v6.15, and log its failure, millions of times),
 *   while "spin" is non-zero; with spin=0
 *   they sleep in their main loop. More spinners than CPUs leaves some
 *   runnable (R) but off CPU.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/freezer.h>
#include <linux/jiffies.h>
#include <linux/proc_fs.h>
#include <linux/wait.h>
#include <linux/delay.h>

static int rest_ms = 3000;
module_param(rest_ms, int, 0444);
static int wakeups;
module_param(wakeups, int, 0444);
static bool sleeper = true;
module_param(sleeper, bool, 0444);
static bool resleeper;
module_param(resleeper, bool, 0444);
static int resleeper_wakeups;
module_param(resleeper_wakeups, int, 0444);
static bool freezer;
module_param(freezer, bool, 0444);
static int doze_ms = 4000;
module_param(doze_ms, int, 0444);
static int freeze_ms = 10;
module_param(freeze_ms, int, 0444);
static int dozes;
module_param(dozes, int, 0444);
static int dozes_done;
module_param(dozes_done, int, 0444);
#define LPC_SPIN_MAX 8
static int spinners;
module_param(spinners, int, 0444);
static int spinners_in;
module_param(spinners_in, int, 0444);
static int spin = 1;
module_param(spin, int, 0644);
static int spin_chunk_ms = 20;
module_param(spin_chunk_ms, int, 0444);

bool lpc_sleeper_nap(void);
void lpc_sleeper_hold(void);
void lpc_sleeper_wait(void);
void lpc_sleeper_doze(void);
void lpc_sleeper_spin_out(void);
void lpc_sleeper_spin_in(void);

static struct task_struct *lpc_sleeper_task, *lpc_resleeper_task, *lpc_freezer_task;
static struct task_struct *lpc_spin_task[LPC_SPIN_MAX];
static DECLARE_WAIT_QUEUE_HEAD(lpc_sleeper_wq);
static DECLARE_WAIT_QUEUE_HEAD(lpc_resleeper_wq);
static bool lpc_sleeper_released;

/* returns false when the thread is asked to stop */
noinline bool lpc_sleeper_nap(void)
{
	set_current_state(TASK_INTERRUPTIBLE);
	if (kthread_should_stop()) {
		__set_current_state(TASK_RUNNING);
		return false;
	}
	schedule();
	return true;
}
EXPORT_SYMBOL_GPL(lpc_sleeper_nap);	/* global: livepatch finds it by name */

noinline void lpc_sleeper_hold(void)
{
	wait_event(lpc_sleeper_wq, READ_ONCE(lpc_sleeper_released));
}
EXPORT_SYMBOL_GPL(lpc_sleeper_hold);

/* the condition of lpc_sleeper_wait(), counting how often it is tested */
static bool lpc_resleeper_done(void)
{
	WRITE_ONCE(resleeper_wakeups, resleeper_wakeups + 1);
	return kthread_should_stop();
}

/* sleeps until the thread is asked to stop; every wake-up re-tests and re-sleeps here */
noinline void lpc_sleeper_wait(void)
{
	wait_event_interruptible(lpc_resleeper_wq, lpc_resleeper_done());
}
EXPORT_SYMBOL_GPL(lpc_sleeper_wait);

/*
 * a plain interruptible sleep of doze_ms: no TASK_FREEZABLE. The count after
 * the sleep keeps the compiler from making it a tail call, which would take
 * this function off the stack while it sleeps.
 */
noinline void lpc_sleeper_doze(void)
{
	WRITE_ONCE(dozes, dozes + 1);
	schedule_timeout_interruptible(msecs_to_jiffies(doze_ms));
	WRITE_ONCE(dozes_done, dozes_done + 1);
}
EXPORT_SYMBOL_GPL(lpc_sleeper_doze);

/* spin_chunk_ms of busy work, then a voluntary preemption point */
static __always_inline void lpc_spin_chunk(void)
{
	unsigned long until = jiffies + max(1UL, msecs_to_jiffies(spin_chunk_ms));

	while (time_before(jiffies, until))
		cpu_relax();
	cond_resched();
}

noinline void lpc_sleeper_spin_out(void)
{
	while (READ_ONCE(spin) && !kthread_should_stop())
		lpc_spin_chunk();
}
EXPORT_SYMBOL_GPL(lpc_sleeper_spin_out);

noinline void lpc_sleeper_spin_in(void)
{
	while (READ_ONCE(spin) && !kthread_should_stop())
		lpc_spin_chunk();
}
EXPORT_SYMBOL_GPL(lpc_sleeper_spin_in);

static int lpc_sleeper_main(void *unused)
{
	while (lpc_sleeper_nap()) {
		WRITE_ONCE(wakeups, wakeups + 1);
		schedule_timeout_interruptible(msecs_to_jiffies(rest_ms));
	}
	return 0;
}

static int lpc_resleeper_main(void *unused)
{
	while (!kthread_should_stop())
		lpc_sleeper_wait();
	return 0;
}

static int lpc_freezer_main(void *unused)
{
	set_freezable();
	while (!kthread_should_stop()) {
		lpc_sleeper_doze();
		/* the freezable sleep, open-coded so that its state is plain to see */
		set_current_state(TASK_INTERRUPTIBLE | TASK_FREEZABLE);
		if (kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			break;
		}
		schedule_timeout(max(1UL, msecs_to_jiffies(freeze_ms)));
	}
	return 0;
}

static int lpc_spin_main(void *inside)
{
	/* runnable, but yielding to the scenario's shell under qemu TCG */
	set_user_nice(current, MAX_NICE);
	while (!kthread_should_stop()) {
		if (inside)
			lpc_sleeper_spin_in();
		else
			lpc_sleeper_spin_out();
		schedule_timeout_interruptible(HZ / 10);
	}
	return 0;
}

static ssize_t lpc_sleeper_read(struct file *file, char __user *buf, size_t len, loff_t *pos)
{
	lpc_sleeper_hold();
	return 0;
}

static ssize_t lpc_sleeper_write(struct file *file, const char __user *buf, size_t len,
				 loff_t *pos)
{
	WRITE_ONCE(lpc_sleeper_released, true);
	wake_up_all(&lpc_sleeper_wq);
	return len;
}

static const struct proc_ops lpc_sleeper_fops = {
	.proc_read = lpc_sleeper_read,
	.proc_write = lpc_sleeper_write,
};

static void lpc_sleeper_stop_all(void)
{
	int i;

	for (i = 0; i < LPC_SPIN_MAX; i++)
		if (lpc_spin_task[i])
			kthread_stop(lpc_spin_task[i]);
	if (lpc_freezer_task)
		kthread_stop(lpc_freezer_task);
	if (lpc_resleeper_task)
		kthread_stop(lpc_resleeper_task);
	if (lpc_sleeper_task)
		kthread_stop(lpc_sleeper_task);
}

static struct task_struct *lpc_sleeper_start(int (*fn)(void *), void *arg, const char *name,
					     int i)
{
	struct task_struct *t = kthread_run(fn, arg, name, i);

	return IS_ERR(t) ? NULL : t;
}

static int __init lpc_sleeper_init(void)
{
	int i, n = 0;

	if (spinners < 0 || spinners_in < 0 || spinners + spinners_in > LPC_SPIN_MAX)
		return -EINVAL;
	if (!proc_create("lpc_sleeper", 0600, NULL, &lpc_sleeper_fops))
		return -ENOMEM;
	if (sleeper && !(lpc_sleeper_task = lpc_sleeper_start(lpc_sleeper_main, NULL,
							      "lpc_sleeper", 0)))
		goto fail;
	if (resleeper && !(lpc_resleeper_task = lpc_sleeper_start(lpc_resleeper_main, NULL,
								  "lpc_resleeper", 0)))
		goto fail;
	if (freezer && !(lpc_freezer_task = lpc_sleeper_start(lpc_freezer_main, NULL,
							      "lpc_freezer", 0)))
		goto fail;
	for (i = 0; i < spinners; i++, n++)
		if (!(lpc_spin_task[n] = lpc_sleeper_start(lpc_spin_main, NULL, "lpc_spin/%d", i)))
			goto fail;
	for (i = 0; i < spinners_in; i++, n++)
		if (!(lpc_spin_task[n] = lpc_sleeper_start(lpc_spin_main, (void *)1,
							   "lpc_spin_in/%d", i)))
			goto fail;
	return 0;
fail:
	lpc_sleeper_stop_all();
	remove_proc_entry("lpc_sleeper", NULL);
	return -ENOMEM;
}

static void __exit lpc_sleeper_exit(void)
{
	WRITE_ONCE(lpc_sleeper_released, true);
	wake_up_all(&lpc_sleeper_wq);
	WRITE_ONCE(spin, 0);
	remove_proc_entry("lpc_sleeper", NULL);
	lpc_sleeper_stop_all();
}

module_init(lpc_sleeper_init);
module_exit(lpc_sleeper_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpc oracle: tasks sleeping in patchable functions");
