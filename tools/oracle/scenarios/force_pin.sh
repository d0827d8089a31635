# force and the module reference. A forced transition marks patches
# "forced", and klp_free_patch_finish() (kernel/livepatch/core.c) never drops
# the module reference of a forced patch, so its module cannot be unloaded.
# Since 5.18 (commit 2957308343fa) only patches being removed are marked:
# the patch when the forced transition unpatches, the replaced ones when it
# is a replace; a plain (non-replace) enable is not (transition.c
# klp_force_transition).
#   A: lpc_pt (no replace) over do_nanosleep, blocked by a sleeper, forced;
#      then disabled (unpatching checks lpc_pt_thunk_0: on no stack) and rmmod.
#   B: lpc_swap replaces lpc_sleeper_nap; once the kthread sleeps in
#      lpc_swap_nap, the disable is blocked, forced, and rmmod tried.
# pin.txt: per part, the module's refcnt and whether rmmod succeeded.
. /scenarios/lib.sh
quiet_and_verbose

# pin LABEL MODULE: the module's reference count, then try to unload it
pin() {
	local r d=gone rm=failed
	read -r r < "/sys/module/$2/refcnt"
	[ -d "/sys/kernel/livepatch/$2" ] && d=present
	rmmod "$2" 2>/dev/null && rm=ok
	echo "$1 module=$2 refcnt=$r livepatch=$d rmmod=$rm" >> pin.txt
	say "pin $1: module=$2 refcnt=$r livepatch=$d rmmod=$rm"
}

# A: a forced enable
sleep 1000 &
usleep 300000
echo do_nanosleep > funcs.txt
patch lpc_pt funcs=do_nanosleep || exit 1
first_retry
capture first lpc_pt
echo 1 > /sys/kernel/livepatch/lpc_pt/force
done_wait lpc_pt 10 || say "force did not finish"
after forced lpc_pt
echo 0 > /sys/kernel/livepatch/lpc_pt/enabled
done_wait lpc_pt 30 || say "disable of lpc_pt did not finish"
pin enable_forced lpc_pt

# B: a forced disable
insmod /modules/lpc_sleeper.ko rest_ms=3000
usleep 300000
patch lpc_swap || exit 1
settle lpc_swap 25
done_wait lpc_swap 10 || say "patching lpc_swap did not finish"
usleep 3500000		# the kthread rests 3 s, then naps in lpc_swap_nap
echo 0 > /sys/kernel/livepatch/lpc_swap/enabled
say "disabled: $(klp lpc_swap)"
first_retry
capture unpatch_first lpc_swap
echo 1 > /sys/kernel/livepatch/lpc_swap/force
done_wait lpc_swap 10 || say "force did not finish"
after unforced lpc_swap
pin disable_forced lpc_swap
finish
