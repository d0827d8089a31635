# Stacked patches: lpc_pt passes lpc_sleeper_wait through before lpc_sleeper
# is even loaded (klp patches the module as it comes), so lpc_resleeper
# enters that function through lpc_pt's replacement, which jumps into the old
# body. lpc_pt_b, NOT a replace patch, then patches lpc_sleeper_wait again
# and lpc_sleeper_nap for the first time. transition.c klp_check_stack_func
# checks, for a function an earlier patch already replaces, that patch's
# new_func (the func_stack's previous entry): lpc_pt_thunk_0, on no stack.
# So lpc_resleeper (stacked) switches at once, while lpc_sleeper, asleep the
# same way in lpc_sleeper_nap (patched for the first time), blocks until the
# fake signal. The functions are the module's own: no other task calls them,
# so the pass-through call counters are the two kthreads'.
. /scenarios/lib.sh
quiet_and_verbose
patch lpc_pt funcs=lpc_sleeper:lpc_sleeper_wait || exit 1
done_wait lpc_pt 20 || say "first patch did not finish"
insmod /modules/lpc_sleeper.ko sleeper=1 resleeper=1
usleep 300000
say "lpc_pt calls: $(cat /sys/module/lpc_pt/parameters/calls)"
echo "lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap over lpc_pt's lpc_sleeper_wait" > funcs.txt
patch lpc_pt_b funcs=lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap || exit 1
first_retry
capture first lpc_pt_b
settle lpc_pt_b 25
capture signals lpc_pt_b
finish
