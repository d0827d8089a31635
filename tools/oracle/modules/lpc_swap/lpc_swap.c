// SPDX-License-Identifier: GPL-2.0
/*
 * lpc_swap: a livepatch with a real replacement, lpc_swap_nap() for
 * lpc_sleeper:lpc_sleeper_nap(). Once patched, the lpc_sleeper kthread
 * sleeps inside lpc_swap_nap() itself, so disabling the patch is held back
 * by the *new* function (transition.c checks new_func when unpatching).
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/sched.h>

static unsigned long naps;
module_param(naps, ulong, 0444);

bool lpc_swap_nap(void);

noinline bool lpc_swap_nap(void)
{
	naps++;
	set_current_state(TASK_INTERRUPTIBLE);
	if (kthread_should_stop()) {
		__set_current_state(TASK_RUNNING);
		return false;
	}
	schedule();
	return true;
}

static struct klp_func lpc_swap_funcs[] = {
	{ .old_name = "lpc_sleeper_nap", .new_func = lpc_swap_nap },
	{ }
};

static struct klp_object lpc_swap_objs[] = {
	{ .name = "lpc_sleeper", .funcs = lpc_swap_funcs },
	{ }
};

static struct klp_patch lpc_swap_patch = {
	.mod = THIS_MODULE,
	.objs = lpc_swap_objs,
};

static int __init lpc_swap_init(void)
{
	return klp_enable_patch(&lpc_swap_patch);
}

static void __exit lpc_swap_exit(void)
{
}

module_init(lpc_swap_init);
module_exit(lpc_swap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpc oracle: real replacement of lpc_sleeper_nap");
MODULE_INFO(livepatch, "Y");
