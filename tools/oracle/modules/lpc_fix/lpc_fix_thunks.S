/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lpc_fix's replacement functions, one per patched function, each named after
 * the function it stands for (a reader of the .ko sees which is which).
 *
 * A replacement counts its call in lpc_fix_calls[i] and jumps through
 * lpc_fix_dest[i], which the object's pre_patch callback (lpc_fix_main.c)
 * sets to the first byte after the original's ftrace site before the object's
 * ftrace hook is registered. It jumps, so it leaves no frame: the original
 * body runs with the caller's arguments and returns straight to the caller,
 * and the livepatch ftrace handler at the original entry is not run again.
 * Only %r11 is touched: the x86-64 ABI leaves it free across calls.
 *
 * The same idea as tools/oracle/modules/lpc_pt/lpc_pt_thunks.S (there: slots
 * aimed at run time from a parameter list); here the set is fixed.
 *
 * ENDBR (asm/ibt.h) starts each one: livepatch's ftrace handler sends the
 * patched call to new_func by rewriting the saved ip, so on a kernel with IBT
 * (Debian's 6.12 and 7.x) the replacement must be a valid indirect target.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>
#include <asm/ibt.h>

	.text
.macro LPC_FIX_PASS name, i
SYM_FUNC_START(\name)
	ENDBR
	lock incq	lpc_fix_calls+(8*\i)(%rip)
	movq		lpc_fix_dest+(8*\i)(%rip), %r11
	JMP_NOSPEC	r11
SYM_FUNC_END(\name)
.endm

	LPC_FIX_PASS lpc_fix_do_nanosleep, 0
	LPC_FIX_PASS lpc_fix_cmdline_proc_show, 1
	LPC_FIX_PASS lpc_fix_sleeper_wait, 2
	LPC_FIX_PASS lpc_fix_sleeper_nap, 3
