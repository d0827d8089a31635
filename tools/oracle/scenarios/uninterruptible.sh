# A user task in uninterruptible sleep (D) inside lpc_sleeper_hold: no fake
# signal ends that sleep, so it stays blocked.
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko
cat /proc/lpc_sleeper &
usleep 300000
patch_passthru lpc_sleeper:lpc_sleeper_hold || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
after signals lpc_pt
echo release > /proc/lpc_sleeper
finish
