# force: the same blocked transition, ended by writing 1 to force.
. /scenarios/lib.sh
quiet_and_verbose
sleep 1000 &
usleep 300000
patch_passthru do_nanosleep,worker_thread || exit 1
first_retry
capture first lpc_pt
echo 1 > /sys/kernel/livepatch/lpc_pt/force
say "forced: $(klp lpc_pt)"
done_wait lpc_pt 10 || say "force did not finish"
after forced lpc_pt
finish
