# A user task asleep in poll(2): busybox sh's "read -t" polls its input.
. /scenarios/lib.sh
quiet_and_verbose
mkfifo /tmp/fifo
sleep 1000 > /tmp/fifo &
sh -c 'read -t 1000 x' < /tmp/fifo &
usleep 500000
DEFAULT_FUNCS=do_sys_poll,do_select
. /scenarios/passthru.sh
