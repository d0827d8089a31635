# A patch to .sched.text: schedule_timeout, where many kthreads wait.
. /scenarios/lib.sh
quiet_and_verbose
DEFAULT_FUNCS=schedule_timeout
. /scenarios/passthru.sh
