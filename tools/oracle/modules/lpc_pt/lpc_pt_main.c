// SPDX-License-Identifier: GPL-2.0
/*
 * lpc_pt: a livepatch that changes nothing, over a function list given at
 * load time, so that the kernel's consistency model can be queried:
 *
 *   insmod lpc_pt.ko funcs=do_nanosleep,lpc_sleeper:lpc_sleeper_nap [replace=1]
 *
 * An entry is [module:]function[@sympos] (no module = vmlinux). Each function
 * gets a slot of lpc_pt_thunks.S as its replacement. Which tasks the
 * transition holds back, and for how long, is then the kernel's own answer.
 *
 * x86-64 only. A function must have an ftrace site (be listed in
 * available_filter_functions): a 5-byte nop, or a 5-byte call when another
 * livepatch already hooks it. An endbr64 (IBT kernels), or the 4-byte nop
 * such a kernel seals an unused one into, may precede the site: skipped.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/slab.h>
#include <linux/string.h>

#define LPC_PT_SLOTS 12
#define LPC_PT_OBJECTS 4

unsigned long lpc_pt_target[LPC_PT_SLOTS];
unsigned long lpc_pt_calls[LPC_PT_SLOTS];

extern void lpc_pt_thunk_0(void), lpc_pt_thunk_1(void), lpc_pt_thunk_2(void);
extern void lpc_pt_thunk_3(void), lpc_pt_thunk_4(void), lpc_pt_thunk_5(void);
extern void lpc_pt_thunk_6(void), lpc_pt_thunk_7(void), lpc_pt_thunk_8(void);
extern void lpc_pt_thunk_9(void), lpc_pt_thunk_10(void), lpc_pt_thunk_11(void);

static void (*const lpc_pt_slot_fn[LPC_PT_SLOTS])(void) = {
	lpc_pt_thunk_0, lpc_pt_thunk_1, lpc_pt_thunk_2, lpc_pt_thunk_3,
	lpc_pt_thunk_4, lpc_pt_thunk_5, lpc_pt_thunk_6, lpc_pt_thunk_7,
	lpc_pt_thunk_8, lpc_pt_thunk_9, lpc_pt_thunk_10, lpc_pt_thunk_11,
};

static char *funcs;
module_param(funcs, charp, 0444);
MODULE_PARM_DESC(funcs, "[module:]function[@sympos],... to pass through");
static bool replace;
module_param(replace, bool, 0444);
MODULE_PARM_DESC(replace, "atomic replace: supersede every earlier livepatch");
static int nslots;
module_param(nslots, int, 0444);
module_param_array_named(calls, lpc_pt_calls, ulong, NULL, 0444);
MODULE_PARM_DESC(calls, "per slot: how many times the replacement ran");

/* one zero-terminated klp_func array per object, plus the terminator object */
static struct klp_func lpc_pt_funcs[LPC_PT_OBJECTS][LPC_PT_SLOTS + 1];
static int lpc_pt_slot_of[LPC_PT_OBJECTS][LPC_PT_SLOTS];
static struct klp_object lpc_pt_objs[LPC_PT_OBJECTS + 1];
static char *lpc_pt_spec;

static struct klp_patch lpc_pt_patch = {
	.mod = THIS_MODULE,
	.objs = lpc_pt_objs,
};

static bool lpc_pt_is_ftrace_site(const u8 *site)
{
	static const u8 nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	return !memcmp(site, nop5, sizeof(nop5)) || site[0] == 0xe8;
}

/*
 * klp calls this per object once old_func is resolved and before the object's
 * ftrace hooks are registered, so no task can reach a slot without a target.
 */
static int lpc_pt_aim(struct klp_object *obj)
{
	int o = obj - lpc_pt_objs;
	struct klp_func *f;
	int i;

	for (i = 0, f = lpc_pt_funcs[o]; f->old_name; i++, f++) {
		const u8 *site = f->old_func;

		/* endbr64, or the nop an IBT kernel seals it into where nothing
		 * calls the function indirectly (asm/ibt.h: 66 0f 1f 00 on 6.12,
		 * 0f 1f 40 d6 on 7.3, e.g. at hrtimer_nanosleep) */
		if (!memcmp(site, "\xf3\x0f\x1e\xfa", 4) || !memcmp(site, "\x66\x0f\x1f\x00", 4) ||
		    !memcmp(site, "\x0f\x1f\x40\xd6", 4))
			site += 4;
		if (!lpc_pt_is_ftrace_site(site)) {
			pr_err("lpc_pt: %s has no ftrace site: %*ph\n",
			       f->old_name, 8, (const u8 *)f->old_func);
			return -EINVAL;
		}
		lpc_pt_target[lpc_pt_slot_of[o][i]] = (unsigned long)site + 5;
		pr_info("lpc_pt: slot %d passes %s%s%s (%px) through %ps\n",
			lpc_pt_slot_of[o][i], obj->name ?: "", obj->name ? ":" : "",
			f->old_name, f->old_func, f->new_func);
	}
	return 0;
}

/* the object slot for a module name (NULL = vmlinux), created on first use */
static int lpc_pt_object(const char *name)
{
	int o;

	for (o = 0; o < LPC_PT_OBJECTS && lpc_pt_objs[o].funcs; o++) {
		const char *have = lpc_pt_objs[o].name;

		if (have == name || (have && name && !strcmp(have, name)))
			return o;
	}
	if (o == LPC_PT_OBJECTS)
		return -ENOSPC;
	lpc_pt_objs[o].name = name;
	lpc_pt_objs[o].funcs = lpc_pt_funcs[o];
	lpc_pt_objs[o].callbacks.pre_patch = lpc_pt_aim;
	return o;
}

static int lpc_pt_add(char *entry)
{
	char *module = NULL, *name = entry, *sep;
	unsigned long sympos = 0;
	int o, n;

	sep = strchr(entry, ':');
	if (sep) {
		*sep = '\0';
		module = entry;
		name = sep + 1;
	}
	sep = strchr(name, '@');
	if (sep) {
		*sep = '\0';
		if (kstrtoul(sep + 1, 10, &sympos))
			return -EINVAL;
	}
	if (!*name || nslots == LPC_PT_SLOTS)
		return -EINVAL;
	o = lpc_pt_object(module);
	if (o < 0)
		return o;
	for (n = 0; lpc_pt_funcs[o][n].old_name; n++)
		;
	lpc_pt_funcs[o][n].old_name = name;
	lpc_pt_funcs[o][n].old_sympos = sympos;
	lpc_pt_funcs[o][n].new_func = lpc_pt_slot_fn[nslots];
	lpc_pt_slot_of[o][n] = nslots++;
	return 0;
}

static int __init lpc_pt_init(void)
{
	char *rest, *entry;
	int err;

	if (!funcs || !*funcs)
		return -EINVAL;
	lpc_pt_spec = kstrdup(funcs, GFP_KERNEL);
	if (!lpc_pt_spec)
		return -ENOMEM;
	rest = lpc_pt_spec;
	while ((entry = strsep(&rest, ",")) != NULL) {
		if (!*entry)
			continue;
		err = lpc_pt_add(entry);
		if (err) {
			pr_err("lpc_pt: cannot use funcs entry '%s'\n", entry);
			kfree(lpc_pt_spec);
			return err;
		}
	}
	lpc_pt_patch.replace = replace;
	err = klp_enable_patch(&lpc_pt_patch);
	if (err)
		kfree(lpc_pt_spec);
	return err;
}

static void __exit lpc_pt_exit(void)
{
	kfree(lpc_pt_spec);
}

module_init(lpc_pt_init);
module_exit(lpc_pt_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lpc oracle: behaviour-preserving livepatch over a chosen function list");
MODULE_INFO(livepatch, "Y");
