# A leaf function nobody sleeps in: every task switches at once.
. /scenarios/lib.sh
quiet_and_verbose
DEFAULT_FUNCS=cmdline_proc_show
. /scenarios/passthru.sh
