# Kernel threads that are always asleep in their main loop: kworkers
# (TASK_IDLE in worker_thread), per-CPU smpboot threads, kthreadd.
. /scenarios/lib.sh
quiet_and_verbose
DEFAULT_FUNCS=worker_thread,smpboot_thread_fn,kthreadd
. /scenarios/passthru.sh
