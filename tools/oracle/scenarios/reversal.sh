# Reversal mid-transition: blocked by a sleeper and the kworkers, the patch
# is disabled while in transition. The reverse direction checks the
# replacement (the pass-through thunks), which no stack holds.
. /scenarios/lib.sh
quiet_and_verbose
sleep 1000 &
usleep 300000
patch_passthru do_nanosleep,worker_thread || exit 1
first_retry
capture first lpc_pt
echo 0 > /sys/kernel/livepatch/lpc_pt/enabled
say "reversed: $(klp lpc_pt)"
# klp_reverse_transition() only flips the target and re-marks the tasks; each
# keeps its patch_state until the next retry checks it (transition.c)
first_retry
capture reversal lpc_pt
done_wait lpc_pt 20 || say "reversal did not finish"
after reversed lpc_pt
finish
