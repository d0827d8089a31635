// SPDX-License-Identifier: GPL-2.0
/*
 * lpc_sleeper: tasks asleep in functions a livepatch can target.
 *
 * - the kthread "lpc_sleeper" sleeps TASK_INTERRUPTIBLE inside
 *   lpc_sleeper_nap(); every time it is woken it rests rest_ms outside that
 *   function (in its main loop) before napping again. livepatch's fake
 *   signal for a kthread is wake_up_state(TASK_INTERRUPTIBLE), so this is a
 *   kthread the signal frees.
 * - a read of /proc/lpc_sleeper sleeps TASK_UNINTERRUPTIBLE inside
 *   lpc_sleeper_hold() until something is written to the file: a user task
 *   in D state, which no fake signal can move.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/jiffies.h>
#include <linux/proc_fs.h>
#include <linux/wait.h>

static int rest_ms = 3000;
module_param(rest_ms, int, 0444);
static int wakeups;
module_param(wakeups, int, 0444);

static struct task_struct *lpc_sleeper_task;
static DECLARE_WAIT_QUEUE_HEAD(lpc_sleeper_wq);
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

static int lpc_sleeper_main(void *unused)
{
	while (lpc_sleeper_nap()) {
		WRITE_ONCE(wakeups, wakeups + 1);
		schedule_timeout_interruptible(msecs_to_jiffies(rest_ms));
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

static int __init lpc_sleeper_init(void)
{
	if (!proc_create("lpc_sleeper", 0600, NULL, &lpc_sleeper_fops))
		return -ENOMEM;
	lpc_sleeper_task = kthread_run(lpc_sleeper_main, NULL, "lpc_sleeper");
	if (IS_ERR(lpc_sleeper_task)) {
		remove_proc_entry("lpc_sleeper", NULL);
		return PTR_ERR(lpc_sleeper_task);
	}
	return 0;
}

static void __exit lpc_sleeper_exit(void)
{
	WRITE_ONCE(lpc_sleeper_released, true);
	wake_up_all(&lpc_sleeper_wq);
	remove_proc_entry("lpc_sleeper", NULL);
	kthread_stop(lpc_sleeper_task);
}

module_init(lpc_sleeper_init);
module_exit(lpc_sleeper_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpc oracle: tasks sleeping in patchable functions");
