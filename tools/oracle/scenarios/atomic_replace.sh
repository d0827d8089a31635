# Atomic replace: lpc_pt passes do_nanosleep through; a sleeper then enters
# do_nanosleep through it. lpc_pt_b (replace=1) patches pipe_read only (7.x:
# anon_pipe_read), so
# do_nanosleep gets a nop function whose check range is lpc_pt's replacement
# (transition.c: the previous func's new_func), not the original.
. /scenarios/lib.sh
quiet_and_verbose
patch lpc_pt funcs=do_nanosleep || exit 1
done_wait lpc_pt 20 || say "first patch did not finish"
sleep 1000 &
sleep 1000 | cat &
usleep 300000
P=$(pipe_read_fn)
echo "$P replace=1 over do_nanosleep" > funcs.txt
patch lpc_pt_b funcs="$P" replace=1 || exit 1
first_retry
capture first lpc_pt_b
settle lpc_pt_b 25
after signals lpc_pt_b
finish
