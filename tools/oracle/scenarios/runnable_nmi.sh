# runnable, with the SysRq-l NMI backtraces printed right after the SysRq-t
# dump into the same file: each task on a CPU then appears twice, the second
# time with the stack it is running on, milliseconds after the first.
CAPTURE_CPUS=tl
. /scenarios/runnable.sh
