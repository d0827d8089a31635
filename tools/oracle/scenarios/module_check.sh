# A livepatch module checked before it is loaded: the host reads the patch
# from the .ko itself (tests/data/modules/<series>/lpc_fix.ko, named in
# module.txt) and the loaded patches from pre_livepatch.txt (lpstate), and
# predicts from the pre capture what lpc_fix's transition will do.
#
# The guest before: lpc_pt passes the pipe reader's function through (an
# earlier, unrelated patch: a `cat` sleeps in it, entered through lpc_pt's
# replacement); lpc_sleeper's two kthreads sleep in lpc_sleeper_nap and
# lpc_sleeper_wait; a `sleep` sleeps in do_nanosleep. Then lpc_fix (static:
# do_nanosleep, cmdline_proc_show@1, lpc_sleeper:lpc_sleeper_wait,
# lpc_sleeper:lpc_sleeper_nap) is loaded: the three sleepers block it; the
# fake signals free the sleep and lpc_sleeper, while lpc_resleeper goes back
# to sleep in lpc_sleeper_wait and keeps the transition open.
. /scenarios/lib.sh
quiet_and_verbose
P=$(pipe_read_fn)
patch lpc_pt funcs="$P" || exit 1
done_wait lpc_pt 20 || say "first patch did not finish"
insmod /modules/lpc_sleeper.ko sleeper=1 resleeper=1
sleep 1000 &
sleep 1000 | cat &
usleep 300000
echo "module=lpc_fix.ko" > module.txt
echo "below=lpc_pt funcs=$P" >> module.txt
lpstate pre_livepatch.txt
capture pre lpc_pt
patch lpc_fix || exit 1
lpstate first_insmod_livepatch.txt
first_retry
capture first lpc_fix
settle lpc_fix 25
capture signals lpc_fix
finish
