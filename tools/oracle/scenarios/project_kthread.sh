# The project's own kthread, asleep (S) in lpc_sleeper_nap: the fake signal
# wakes it, it rests outside the function and the next retry switches it.
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko rest_ms=3000
usleep 300000
DEFAULT_FUNCS=lpc_sleeper:lpc_sleeper_nap
. /scenarios/passthru.sh
