// SPDX-License-Identifier: GPL-2.0
/*
 * lpc_fix: a livepatch whose whole description is static data, as a livepatch
 * built by kpatch-build or by hand usually is, so that a reader of the .ko
 * (lpc's module reader) can recover it without loading it:
 *
 *   vmlinux       do_nanosleep                        -> lpc_fix_do_nanosleep
 *                 cmdline_proc_show  (old_sympos = 1) -> lpc_fix_cmdline_proc_show
 *   lpc_sleeper   lpc_sleeper_wait                    -> lpc_fix_sleeper_wait
 *                 lpc_sleeper_nap                     -> lpc_fix_sleeper_nap
 *
 * Built twice (Kbuild): lpc_fix, and lpc_fix_r with .replace = true (atomic
 * replace: every function of the patches loaded before that it does not name
 * gets a nop).
 *
 * The replacements change nothing: each is a thunk of lpc_fix_thunks.S that
 * jumps into the original body just past its ftrace site. This file only
 * aims them: klp resolves old_func for an object, then runs its pre_patch
 * callback, and only after that registers the object's ftrace hooks
 * (kernel/livepatch/core.c klp_init_object_loaded, then __klp_enable_patch:
 * klp_pre_patch_callback before klp_patch_object), so no task can enter a
 * thunk before its destination is set. lpc_sleeper may come after the patch;
 * klp then does the same for it when the module loads (klp_module_coming).
 *
 * x86-64, one ftrace site per function: the 5-byte nop (or the call once some
 * livepatch hooks it) at the entry, after an endbr64 on an IBT kernel.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/string.h>

#ifndef LPC_FIX_REPLACE
#define LPC_FIX_REPLACE 0
#endif

/* per replacement, in the order of lpc_fix_thunks.S */
#define LPC_FIX_N 4
unsigned long lpc_fix_dest[LPC_FIX_N];
unsigned long lpc_fix_calls[LPC_FIX_N];
module_param_array_named(calls, lpc_fix_calls, ulong, NULL, 0444);
MODULE_PARM_DESC(calls, "per replacement (do_nanosleep, cmdline_proc_show, "
		 "lpc_sleeper_wait, lpc_sleeper_nap): how many times it ran");

void lpc_fix_do_nanosleep(void);
void lpc_fix_cmdline_proc_show(void);
void lpc_fix_sleeper_wait(void);
void lpc_fix_sleeper_nap(void);

static struct klp_func lpc_fix_vmlinux_funcs[] = {
	{
		.old_name = "do_nanosleep",
		.new_func = lpc_fix_do_nanosleep,
	},
	{
		.old_name = "cmdline_proc_show",
		.new_func = lpc_fix_cmdline_proc_show,
		.old_sympos = 1,
	},
	{ }
};

static struct klp_func lpc_fix_sleeper_funcs[] = {
	{
		.old_name = "lpc_sleeper_wait",
		.new_func = lpc_fix_sleeper_wait,
	},
	{
		.old_name = "lpc_sleeper_nap",
		.new_func = lpc_fix_sleeper_nap,
	},
	{ }
};

static int lpc_fix_aim(struct klp_object *obj);

static struct klp_object lpc_fix_objs[] = {
	{
		/* .name NULL: vmlinux */
		.funcs = lpc_fix_vmlinux_funcs,
		.callbacks = { .pre_patch = lpc_fix_aim },
	},
	{
		.name = "lpc_sleeper",
		.funcs = lpc_fix_sleeper_funcs,
		.callbacks = { .pre_patch = lpc_fix_aim },
	},
	{ }
};

static struct klp_patch lpc_fix_patch = {
	.mod = THIS_MODULE,
	.objs = lpc_fix_objs,
	.replace = LPC_FIX_REPLACE,
};

/* the replacement's index: its place in lpc_fix_thunks.S */
static int lpc_fix_index(void *new_func)
{
	if (new_func == lpc_fix_do_nanosleep)
		return 0;
	if (new_func == lpc_fix_cmdline_proc_show)
		return 1;
	if (new_func == lpc_fix_sleeper_wait)
		return 2;
	if (new_func == lpc_fix_sleeper_nap)
		return 3;
	return -1;
}

/*
 * the first byte after the ftrace site at the entry of fn, or 0. The site
 * may follow an endbr64, or the 4-byte nop an IBT kernel writes over the
 * endbr64 of a function nothing calls indirectly (arch/x86/include/asm/ibt.h
 * and kernel/alternative.c, the endbr "poison"): 66 0f 1f 00 on 6.12,
 * 0f 1f 40 d6 on 7.3, both seen at hrtimer_nanosleep under qemu -cpu max.
 */
static unsigned long lpc_fix_past_site(const u8 *fn)
{
	static const u8 endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	static const u8 poison_612[4] = { 0x66, 0x0f, 0x1f, 0x00 };
	static const u8 poison_73[4] = { 0x0f, 0x1f, 0x40, 0xd6 };
	static const u8 nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	if (!memcmp(fn, endbr64, 4) || !memcmp(fn, poison_612, 4) || !memcmp(fn, poison_73, 4))
		fn += 4;
	if (memcmp(fn, nop5, sizeof(nop5)) && fn[0] != 0xe8)	/* nop, or call once hooked */
		return 0;
	return (unsigned long)fn + 5;
}

static int lpc_fix_aim(struct klp_object *obj)
{
	struct klp_func *f;

	for (f = obj->funcs; f->old_name; f++) {
		int i = lpc_fix_index(f->new_func);
		unsigned long dest = lpc_fix_past_site(f->old_func);

		if (i < 0 || !dest) {
			pr_err("%s: cannot pass %s through: %*ph\n", THIS_MODULE->name,
			       f->old_name, 9, (const u8 *)f->old_func);
			return -EINVAL;
		}
		WRITE_ONCE(lpc_fix_dest[i], dest);
		pr_info("%s: %s%s%s (%px) passes through %ps\n", THIS_MODULE->name,
			obj->name ?: "", obj->name ? ":" : "", f->old_name, f->old_func,
			f->new_func);
	}
	return 0;
}

static int __init lpc_fix_init(void)
{
	return klp_enable_patch(&lpc_fix_patch);
}

static void __exit lpc_fix_exit(void)
{
}

module_init(lpc_fix_init);
module_exit(lpc_fix_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpc oracle: a static pass-through livepatch (do_nanosleep, "
		   "cmdline_proc_show@1, lpc_sleeper_wait, lpc_sleeper_nap)");
MODULE_INFO(livepatch, "Y");
