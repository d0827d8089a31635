# A kthread (lpc_resleeper) asleep (S) in lpc_sleeper_wait, a
# wait_event_interruptible() whose condition never comes true. The fake
# signal (klp_send_signals: wake_up_state(TASK_INTERRUPTIBLE) for a kthread)
# wakes it; it re-tests the condition and sleeps again inside the same
# patched function, so it stays blocked. resleeper_wakeups in the params
# capture counts the tests of the condition (one more per wake-up).
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko sleeper=0 resleeper=1
usleep 300000
patch_passthru lpc_sleeper:lpc_sleeper_wait || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
capture signals lpc_pt
finish
