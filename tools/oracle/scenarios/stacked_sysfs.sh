# Stacked patches, the loaded one read from sysfs: lpc_fix (static, A) is
# enabled first and its transition completes; lpc_sleeper then loads (klp
# patches it as it comes, so its kthreads enter lpc_sleeper_nap and
# lpc_sleeper_wait through lpc_fix's thunks), a sleep enters do_nanosleep
# through A and a cat sleeps in the pipe reader's function. lpc_pt_b (B, no
# replace) then passes lpc_sleeper_wait (A's too) and the pipe reader's
# function (new) through. The host feeds A_livepatch.txt (pre_b) as the
# loaded patches, A's replacements from its .ko, and predicts B's blockers:
# lpc_resleeper, in lpc_sleeper_wait, is checked at A's lpc_fix_sleeper_wait
# (transition.c klp_check_stack_func: the func_stack's previous entry), on no
# stack, and switches at once; the cat in the pipe read blocks until the
# fake signal.
. /scenarios/lib.sh
quiet_and_verbose
lpstate boot_livepatch.txt
patch lpc_fix || exit 1
done_wait lpc_fix 20 || say "lpc_fix did not finish"
insmod /modules/lpc_sleeper.ko sleeper=1 resleeper=1
sleep 1000 &
sleep 1000 | cat &
usleep 300000
P=$(pipe_read_fn)
echo "module=lpc_fix.ko" > module.txt
echo "lpc_sleeper:lpc_sleeper_wait,$P over lpc_fix (lpc_fix.ko)" > funcs.txt
lpstate pre_b_livepatch.txt
patch lpc_pt_b funcs="lpc_sleeper:lpc_sleeper_wait,$P" || exit 1
lpstate insmod_b_livepatch.txt
first_retry
capture first lpc_pt_b
settle lpc_pt_b 25
capture signals lpc_pt_b
finish
