# A user task in D sleep in lpc_sleeper_hold (a read of /proc/lpc_sleeper),
# released after the signals round: the fake signal cannot end a D sleep, but
# once the read returns the task switches on its way out to user space
# (klp_update_patch_state at kernel exit), then execs sleep under the same
# tid. kthreadd, patched too, keeps the transition open (it never leaves its
# thread function) so that the released task's own patch_state stays visible.
. /scenarios/lib.sh
quiet_and_verbose
CAPTURE_CPUS=1
insmod /modules/lpc_sleeper.ko sleeper=0
sh -c 'read -r x < /proc/lpc_sleeper; exec sleep 1000' &
usleep 300000
patch_passthru lpc_sleeper:lpc_sleeper_hold,kthreadd || exit 1
first_retry
capture first lpc_pt
settle lpc_pt 25
capture signals lpc_pt
echo release > /proc/lpc_sleeper
say "released the reader"
usleep 1500000
capture released lpc_pt
finish
