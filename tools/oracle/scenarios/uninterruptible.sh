# A user task in uninterruptible sleep (D) inside lpc_sleeper_hold: no fake
# signal ends that sleep, so it stays blocked.
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko
cat /proc/lpc_sleeper &
usleep 300000
F=$(funcs_or lpc_sleeper:lpc_sleeper_hold)
echo "$F" > funcs.txt
patch lpc_pt funcs="$F" || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
after signals lpc_pt
echo release > /proc/lpc_sleeper
finish
