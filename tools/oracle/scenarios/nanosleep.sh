# A user task asleep (S) in do_nanosleep: blocked until the fake signal ends
# its sleep; it switches on the way out to user space and restarts the sleep.
. /scenarios/lib.sh
quiet_and_verbose
sleep 1000 &
usleep 300000
DEFAULT_FUNCS=do_nanosleep
. /scenarios/passthru.sh
