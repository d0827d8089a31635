# More CPU-bound kthreads (nice 19) than the guest's 2 CPUs: two spin in
# lpc_sleeper_spin_out (not patched), one in lpc_sleeper_spin_in (patched),
# each calling cond_resched() every 20 ms. SysRq-t shows them all in state R
# ("running task"); at most two are on a CPU (the SysRq-l NMI backtraces and
# /proc stat's processor field say which). The kernel stack-checks a runnable
# task that is not on a CPU (transition.c klp_check_and_switch_task: only
# task_curr() gives -EBUSY); before v6.16 cond_resched() also switches the
# caller (klp_sched_try_switch) when its stack is clean.
. /scenarios/lib.sh
quiet_and_verbose
CAPTURE_CPUS=${CAPTURE_CPUS:-1}
insmod /modules/lpc_sleeper.ko sleeper=0 spinners=2 spinners_in=1
usleep 500000
patch_passthru lpc_sleeper:lpc_sleeper_spin_in || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
capture signals lpc_pt
echo 0 > /sys/module/lpc_sleeper/parameters/spin
finish
