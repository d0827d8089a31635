# Unpatching: lpc_swap really replaces lpc_sleeper_nap. Once the kthread
# sleeps in the replacement, disabling the patch is held back by the new
# function until the fake signal wakes the kthread.
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko rest_ms=3000
usleep 300000
echo lpc_sleeper:lpc_sleeper_nap > funcs.txt
patch lpc_swap || exit 1
first_retry
capture first lpc_swap
settle lpc_swap 25
after signals lpc_swap
done_wait lpc_swap 10 || say "patching did not finish"
usleep 3500000		# the kthread rests 3 s (so a retry finds it outside), then naps in lpc_swap_nap
echo 0 > /sys/kernel/livepatch/lpc_swap/enabled
say "disabled: $(klp lpc_swap)"
first_retry
capture unpatch_first lpc_swap
settle lpc_swap 25
after unpatch_signals lpc_swap
finish
