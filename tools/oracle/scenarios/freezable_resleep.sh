# A kthread (lpc_freezer) that dozes 4 s at a time in lpc_sleeper_doze, a
# plain TASK_INTERRUPTIBLE sleep, then sleeps 10 ms TASK_FREEZABLE in its main
# loop, outside the patched function. v6.16+ switches it in __schedule() at
# its first freezable sleep (kernel/sched/core.c: klp_sched_try_switch(prev)),
# so the transition ends ~4 s in, long before the signals. Before 6.16 only a
# 1 Hz retry that falls into one of the 10 ms windows can switch it; the fake
# signal wakes it from the doze, and it is dozing again at the next retry.
. /scenarios/lib.sh
quiet_and_verbose
CAPTURE_CPUS=1
insmod /modules/lpc_sleeper.ko sleeper=0 freezer=1 doze_ms=4000 freeze_ms=10
usleep 500000
# start the patch just after a doze begins: the first capture finds it dozing
d0=$(cat /sys/module/lpc_sleeper/parameters/dozes)
while [ "$(cat /sys/module/lpc_sleeper/parameters/dozes)" = "$d0" ]; do usleep 20000; done
say "doze $(cat /sys/module/lpc_sleeper/parameters/dozes) began"
patch_passthru lpc_sleeper:lpc_sleeper_doze || exit 1
first_retry
capture first lpc_pt
usleep 4000000	# past the end of that doze and the freezable sleep after it
capture freeze lpc_pt
settle lpc_pt 25
capture signals lpc_pt
finish
