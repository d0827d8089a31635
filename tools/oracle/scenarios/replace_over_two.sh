# Atomic replace over two patches: lpc_pt passes do_nanosleep through and a
# sleep enters it through lpc_pt's thunk; lpc_pt_b (no replace) passes the
# pipe reader's function through and a cat enters it through lpc_pt_b's
# thunk; lpc_sleeper's kthread naps in lpc_sleeper_nap. lpc_fix_r (replace)
# then patches do_nanosleep (lpc_pt's too), cmdline_proc_show@1,
# lpc_sleeper_wait and lpc_sleeper_nap, and gets a nop for the pipe reader's
# function. transition.c checks a function an earlier patch replaces at that
# patch's new_func: do_nanosleep at lpc_pt_thunk_0, the nop at lpc_pt_b's
# lpc_pt_thunk_0, so neither sleeper blocks; lpc_sleeper (lpc_sleeper_nap,
# patched for the first time) blocks until the fake signal. Once the
# transition completes, lpc_pt and lpc_pt_b leave sysfs (replaced).
. /scenarios/lib.sh
quiet_and_verbose
patch lpc_pt funcs=do_nanosleep || exit 1
done_wait lpc_pt 20 || say "lpc_pt did not finish"
sleep 1000 &
P=$(pipe_read_fn)
patch lpc_pt_b funcs="$P" || exit 1
done_wait lpc_pt_b 20 || say "lpc_pt_b did not finish"
sleep 1000 | cat &
insmod /modules/lpc_sleeper.ko sleeper=1
usleep 300000
echo "module=lpc_fix_r.ko" > module.txt
echo "lpc_fix_r.ko (replace) over lpc_pt do_nanosleep, lpc_pt_b $P" > funcs.txt
lpstate pre_livepatch.txt
patch lpc_fix_r || exit 1
lpstate insmod_livepatch.txt
first_retry
capture first lpc_fix_r
settle lpc_fix_r 25
capture signals lpc_fix_r
done_wait lpc_fix_r 5 || say "lpc_fix_r still in transition"
lpstate done_livepatch.txt
after done lpc_fix_r
finish
