# A user task asleep (S) in pipe_read (7.x: anon_pipe_read), reading an idle pipe.
. /scenarios/lib.sh
quiet_and_verbose
sleep 1000 | cat &
usleep 300000
DEFAULT_FUNCS=$(pipe_read_fn)
. /scenarios/passthru.sh
