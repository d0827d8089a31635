# A transition that ends by itself after a few retries, watched: lpc_pt
# passes lpc_sleeper_doze and hrtimer_nanosleep through. lpc_freezer dozes 3 s in
# lpc_sleeper_doze, then sleeps 1.5 s (TASK_FREEZABLE) outside it: a retry
# in that window switches it (v6.16+: the freezable sleep itself does). Two
# user sleeps in hrtimer_nanosleep block until they end, 2 s and 5 s after the
# patch (an exiting task leaves the transition). hrtimer_nanosleep rather
# than do_nanosleep: that one is .sched.text, which /proc stacks never show.
# The guest takes a snapshot
# (lib.sh snapshot: /proc stacks, patch_state, livepatch sysfs) about every
# second from the insmod until the transition is over, at most 20: the host
# replays them with `lpc watch --dump snap_00 --dump snap_01 ...` against each
# snapshot's patch_state.txt. kallsyms once for the series (snap_kallsyms).
. /scenarios/lib.sh
quiet_and_verbose
insmod /modules/lpc_sleeper.ko sleeper=0 freezer=1 doze_ms=3000 freeze_ms=1500
usleep 200000
sleep 2 &
sleep 5 &
F=lpc_sleeper:lpc_sleeper_doze,hrtimer_nanosleep
echo "$F" > funcs.txt
patch lpc_pt funcs="$F" || exit 1
snapshot_kallsyms snap_kallsyms.txt.gz
i=0
while [ $i -lt 20 ]; do
	n=$i; [ $i -lt 10 ] && n=0$i
	snapshot snap_$n lpc_pt
	t=; [ -d /sys/kernel/livepatch/lpc_pt ] && read -r t < /sys/kernel/livepatch/lpc_pt/transition
	say "snap_$n: $(klp lpc_pt)"
	[ "$t" = 1 ] || break
	i=$((i + 1))
	usleep 800000
done
capture after lpc_pt
finish
