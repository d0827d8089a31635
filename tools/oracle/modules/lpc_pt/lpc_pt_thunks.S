/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lpc_pt's replacement functions. Slot N bumps lpc_pt_calls[N] and jumps
 * (never calls: no frame of ours is left on the stack, and argument and
 * return registers stay untouched) to lpc_pt_target[N], which lpc_pt_main.c
 * points just past the original function's ftrace site before any hook is
 * live. The original body therefore runs unchanged, and the livepatch ftrace
 * handler on the original entry is not re-entered. %r11 is a scratch
 * register at any call boundary in the x86-64 ABI.
 *
 * ENDBR (asm/ibt.h: endbr64 with CONFIG_X86_KERNEL_IBT, else nothing) opens
 * each slot: the ftrace handler redirects to a slot rather than calling it
 * directly, so on an IBT kernel (Debian's 6.12 and 7.x) a slot must be a
 * valid indirect-branch target (needed for 7.x, see make-chroot.sh).
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>
#include <asm/ibt.h>

	.text
.macro LPC_PT_SLOT n
SYM_FUNC_START(lpc_pt_thunk_\n)
	ENDBR
	lock incq	lpc_pt_calls+(8*\n)(%rip)
	movq		lpc_pt_target+(8*\n)(%rip), %r11
	JMP_NOSPEC	r11
SYM_FUNC_END(lpc_pt_thunk_\n)
.endm

.irp n, 0,1,2,3,4,5,6,7,8,9,10,11
	LPC_PT_SLOT \n
.endr
