# Helpers for the oracle scenarios (busybox sh). Under TCG a fork costs
# milliseconds, so the per-task loops read /proc with builtins only.

now() { local u rest; read -r u rest < /proc/uptime; echo "$u"; }
say() { echo "[$(now)] $*"; }

# livepatch's klp_try_switch_task() says why each task did not switch (on
# every retry) only through dynamic debug; SysRq-t is KERN_INFO, so keep the
# console quiet and read everything back from dmesg.
quiet_and_verbose() {
	echo 'file kernel/livepatch/* +p' > /sys/kernel/debug/dynamic_debug/control
	dmesg -n 1
}

# klp NAME: "enabled=E transition=T" or "absent"
klp() {
	local d=/sys/kernel/livepatch/$1 e t
	[ -d "$d" ] || { echo absent; return; }
	read -r e < "$d/enabled"; read -r t < "$d/transition"
	echo "enabled=$e transition=$t"
}

# states FILE NAME: the kernel's per-task verdict. A header with the patch's
# sysfs state, then "tid patch_state comm" per thread (comm last: it may
# contain spaces). patch_state: -1 no transition, 0 / 1 the task's state.
states() {
	local f=$1 d c s
	{
	echo "# uptime=$(now) patch=$2 $(klp "$2")"
	for d in /proc/[0-9]*/task/[0-9]*; do
		s=; c=
		read -r s < "$d/patch_state" 2>/dev/null || continue
		read -r c < "$d/comm" 2>/dev/null
		echo "${d##*/} $s $c"
	done
	} > "$f"
}

# sysrq FILE: the SysRq-t dump (full stacks, .sched.text included, unlike
# /proc/<pid>/stack), i.e. the dmesg lines it added.
sysrq() { trigger t "$1"; unreport "$1"; }

# sysrq_tl FILE: SysRq-t, then at once SysRq-l (the NMI backtrace of every
# CPU), into one file: the tasks on a CPU are printed twice, milliseconds
# apart, the second time with the stack they run on
sysrq_tl() { trigger tl "$1"; unreport "$1"; }

# quiet_lines: how many dmesg lines are not livepatch's per-task debug
# reports (a task that keeps calling cond_resched() while a patch is pending
# on it adds one every call, v6.4..v6.15: they must not keep trigger waiting)
quiet_lines() { dmesg | grep -vc 'livepatch: klp_try_switch_task'; }

# unreport FILE: drop livepatch's per-task reports that printk interleaved
# with a dump (klp_dmesg.txt keeps them all)
unreport() { grep -v 'livepatch: klp_try_switch_task' "$1" > "$1.tmp"; mv "$1.tmp" "$1"; }

# trigger KEYS FILE: write each of KEYS to sysrq-trigger in turn; FILE gets
# the dmesg lines that came after them once printk has settled
trigger() {
	local before after last=-1 key
	before=$(dmesg | wc -l)
	for key in $(echo "$1" | sed 's/./& /g'); do echo "$key" > /proc/sysrq-trigger; done
	while :; do	# printk may still be flushing: wait until it settles
		usleep 200000
		after=$(quiet_lines)
		[ "$after" = "$last" ] && break
		last=$after
	done
	dmesg | tail -n +$((before + 1)) > "$2"
}

# where FILE: where every thread is: "tid state cpu comm" from
# /proc/<pid>/task/<tid>/stat (field 3 the state, field 39 the CPU it last
# ran on), under a header with the time. A task in state R whose cpu is a
# CPU's current task was on it; the NMI backtraces (cpus) say which those are.
where() {
	local f=$1 d line rest c
	{
	echo "# uptime=$(now) tid state cpu comm"
	for d in /proc/[0-9]*/task/[0-9]*; do
		read -r line < "$d/stat" 2>/dev/null || continue
		rest=${line##*) }	# after the comm, which may hold spaces and ')'
		read -r c < "$d/comm" 2>/dev/null
		set -- $rest
		echo "${d##*/} $1 ${37} $c"
	done
	} > "$f"
}

# cpus FILE: SysRq-l, the NMI backtrace of every CPU (which task each runs)
cpus() { trigger l "$1"; unreport "$1"; }

# params FILE: lpc_sleeper's counters (wake-ups, dozes...) at that moment
params() {
	local p v
	for p in /sys/module/lpc_sleeper/parameters/*; do
		[ -e "$p" ] || continue
		read -r v < "$p"; echo "${p##*/} $v"
	done > "$1"
}

# lpstate FILE: the whole livepatch sysfs tree, for lpc's livepatch-state
# reader (the same format is written on live machines):
#   # lpc livepatch state 1 uptime=SECONDS
#   absent                    only line after the header without /sys/kernel/livepatch
#   lpc_pt/                   a directory (path relative to /sys/kernel/livepatch)
#   lpc_pt/enabled 1          a readable attribute: path, one space, its first line
#   lpc_pt/force !            an attribute that cannot be opened for reading
# Depth first, each directory's entries in byte order (the shell's glob
# order), the directory line before its contents. Symlinks are neither listed
# nor followed (the livepatch tree has none). An attribute that opens but
# reads nothing would be "path " with an empty value (none does).
lpstate() {
	local root=/sys/kernel/livepatch
	{
	echo "# lpc livepatch state 1 uptime=$(now)"
	if [ -d $root ]; then lpwalk $root ""; else echo absent; fi
	} > "$1"
}

# lpwalk DIR PREFIX: lpstate's lines for DIR's entries, named PREFIX+name
lpwalk() {
	local e n v ok
	for e in "$1"/*; do
		[ -e "$e" ] || continue		# an empty directory: the glob stayed
		[ -L "$e" ] && continue
		n=$2${e##*/}
		if [ -d "$e" ]; then
			echo "$n/"
			lpwalk "$e" "$n/"
			continue
		fi
		ok=; v=
		# the group runs only if the file opened (force is write-only:
		# kernfs refuses to open it for reading)
		{ ok=1; read -r v; } 2>/dev/null < "$e"
		if [ -n "$ok" ]; then echo "$n $v"; else echo "$n !"; fi
	done
}

# snapshot DIR [NAME]: an lpc snapshot directory of the guest at this instant, as
# lpc capture writes it (python/lpc/capture.py, grammar in
# rust/lpc-core/src/dump/procsnap.rs), read with builtins only:
#   stacks.txt       per thread "# pid=P tid=T comm=C state=S flags=0xF
#                    kthread=0|1 cpu=N status=ok|unreadable|gone ppid=PP",
#                    its /proc/P/task/T/stack lines, a blank line
#   patch_state.txt  "# uptime=U" (with NAME: "# uptime=U patch=NAME
#                    enabled=E transition=T", the header of states, which
#                    lpc.oracle.case.parse_states reads), then "tid
#                    patch_state comm" per thread, each read right after that
#                    thread's stack
#   livepatch.txt    lpstate
#   calls.txt        the pass-through call counters (calls)
#   meta.txt         key=value; snapshot_complete=1 last
# No kallsyms.txt (it is the same for a whole series and large): snapshot_kallsyms.
snapshot() {
	local dir=$1 name=${2:-} d p s l line rest c cr st ok n=0 up0 up1 v
	mkdir -p "$dir"
	up0=$(now)
	exec 4> "$dir/patch_state.txt"
	if [ -n "$name" ]; then
		echo "# uptime=$up0 patch=$name $(klp "$name")" >&4
	else
		echo "# uptime=$up0" >&4
	fi
	{
	for d in /proc/[0-9]*/task/[0-9]*; do
		p=${d#/proc/}; p=${p%%/*}
		line=
		n=$((n + 1))	# threads= of meta.txt: every header, gone ones too
		read -r line < "$d/stat" 2>/dev/null
		if [ -z "$line" ]; then
			echo "# pid=$p tid=${d##*/} comm= state=? status=gone"
			echo
			continue
		fi
		cr=${line#*(}; cr=${cr%)*}	# comm: from the first '(' to the last ')'
		c=${cr//\\/\\\\}		# escaped for the header
		rest=${line##*) }
		set -- $rest
		# the stack into $st first (no fork: a group redirected in this
		# shell, run only if the file opened), then the header, whose
		# status says whether it was read
		ok=; st=
		{ ok=ok; while read -r l; do st="$st$l
"; done; } 2>/dev/null < "$d/stack"
		[ -n "$ok" ] || { [ -d "$d" ] && ok=unreadable || ok=gone; }
		printf '# pid=%s tid=%s comm=%s state=%s flags=0x%08x kthread=%d cpu=%s status=%s ppid=%s\n%s\n' \
			"$p" "${d##*/}" "$c" "$1" "$7" $(( ($7 >> 21) & 1 )) "${37}" "$ok" "$2" "$st"
		s=; read -r s < "$d/patch_state" 2>/dev/null && echo "${d##*/} $s $cr" >&4
	done
	} > "$dir/stacks.txt"
	exec 4>&-
	up1=$(now)
	lpstate "$dir/livepatch.txt"
	calls "$dir/calls.txt"
	{
	read -r v < /proc/sys/kernel/osrelease
	echo "kernel_release=$v"
	echo "machine=$(uname -m)"
	echo "captured_at=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
	echo "uptime=$up0"
	echo "uptime_end=$up1"
	read -r v < /proc/sys/kernel/kptr_restrict
	echo "kptr_restrict=$v"
	echo "euid=0"
	echo "threads=$n"
	echo "source_format=proc_snapshot"
	echo "captured_by=tools/oracle/guest/lib.sh snapshot (busybox sh, qemu guest)"
	echo "kallsyms=none in the snapshot: the series' (snapshot_kallsyms)"
	echo "snapshot_complete=1"
	} > "$dir/meta.txt"
}

# snapshot_kallsyms FILE: the guest's /proc/kallsyms, gzipped, once for a
# series of snapshots (no module comes or goes between them)
snapshot_kallsyms() { gzip -c /proc/kallsyms > "$1"; }

# calls FILE: the pass-through call counters of lpc_pt, lpc_pt_b, lpc_fix,
# lpc_fix_r ("<module>/parameters/calls N,N,..." per loaded module)
calls() {
	local m v
	for m in /sys/module/lpc_pt*/parameters/calls /sys/module/lpc_fix*/parameters/calls; do
		[ -e "$m" ] || continue
		read -r v < "$m"; echo "${m#/sys/module/} $v"
	done > "$1"
}

# capture LABEL NAME: kernel verdicts, then the stacks, then the verdicts
# again (a retry may fire in between: both are kept), plus the livepatch
# sysfs tree (lpstate: LABEL_livepatch.txt), the guest's kallsyms and the
# pass-through call counters at that moment. With
# CAPTURE_CPUS=1 also where every thread is just before and after the dump
# (where) and the CPUs' NMI backtraces after it (cpus: a second or two
# later, another instant); CAPTURE_CPUS=tl also puts a SysRq-l right after
# the SysRq-t into the dump itself (the same instant, to milliseconds).
capture() {
	local label=$1 name=$2 m
	states "${label}_states_pre.txt" "$name"
	[ "${CAPTURE_CPUS:-0}" = 0 ] || where "${label}_stat_pre.txt"
	if [ "${CAPTURE_CPUS:-0}" = tl ]; then
		sysrq_tl "${label}_sysrq.txt"
	else
		sysrq "${label}_sysrq.txt"
	fi
	states "${label}_states.txt" "$name"
	if [ "${CAPTURE_CPUS:-0}" != 0 ]; then
		cpus "${label}_cpus.txt"
		where "${label}_stat.txt"
	fi
	params "${label}_params.txt"
	lpstate "${label}_livepatch.txt"
	gzip -c /proc/kallsyms > "${label}_kallsyms.txt.gz"
	calls "${label}_calls.txt"
	say "captured $label: $(klp "$name"); not switched: $(grep -c ' 0 ' "${label}_states.txt")"
}

# patch NAME ARGS...: insmod a livepatch module; the first try of the
# transition runs inside insmod (klp_enable_patch)
patch() {
	local m=$1; shift
	insmod "/modules/$m.ko" "$@" || { say "insmod $m failed"; return 1; }
	say "insmod $m $*: $(klp "$m")"
}

# first_retry: the first delayed retry comes about 1 s after the first try
# (klp_transition_work is queued with round_jiffies_relative(HZ))
first_retry() { usleep 1500000; }

# settle NAME TIMEOUT: wait until the transition is over, or until the
# kernel has sent its fake signals (after SIGNALS_TIMEOUT = 15 retries) and
# two more retries have run; at most TIMEOUT seconds
settle() {
	local n=$1 left=$(( $2 * 2 )) t= sig0 sig
	sig0=$(dmesg | grep -c 'signaling remaining tasks')
	while [ $left -gt 0 ]; do
		t=; [ -d /sys/kernel/livepatch/$n ] && read -r t < /sys/kernel/livepatch/$n/transition
		[ "$t" = 1 ] || { say "settle $n: transition over"; return 0; }
		sig=$(dmesg | grep -c 'signaling remaining tasks')
		if [ "$sig" != "$sig0" ]; then
			usleep 2500000
			say "settle $n: signals sent, two retries later: $(klp "$n")"
			return 0
		fi
		usleep 500000; left=$((left - 1))
	done
	say "settle $n: gave up after $2 s: $(klp "$n")"
	return 1
}

# done_wait NAME TIMEOUT: wait until the transition is over (0 = it is)
done_wait() {
	local n=$1 left=$(( $2 * 10 )) t
	while [ $left -gt 0 ]; do
		t=; [ -d /sys/kernel/livepatch/$n ] && read -r t < /sys/kernel/livepatch/$n/transition
		[ "$t" = 1 ] || return 0
		usleep 100000; left=$((left - 1))
	done
	return 1
}

# after LABEL NAME: the kernel's verdicts once things have settled
after() {
	states "${1}_states.txt" "$2"
	say "after $1: $(klp "$2"); not switched: $(grep -c ' 0 ' "${1}_states.txt")"
}

# pipe_read_fn: the function a reader of an idle pipe sleeps in: pipe_read,
# or, from the kernels that split it (7.x: fs/pipe.c anon_pipe_read and
# fifo_pipe_read), anon_pipe_read. Also noted in subst.txt, which the host
# reads to fill in "{pipe_read}" in a scenario's patch (lpc.oracle.run).
pipe_read_fn() {
	local f=pipe_read
	grep -q ' pipe_read$' /proc/kallsyms || f=anon_pipe_read
	grep -q '^pipe_read=' subst.txt 2>/dev/null || echo "pipe_read=$f" >> subst.txt
	echo "$f"
}

# the pass-through function list: the scenario's default unless the boot
# line overrides it (lpc oracle run --funcs)
funcs_or() { echo "${lpc_funcs:-$1}"; }

# patch_passthru DEFAULT: load lpc_pt over the scenario's functions (DEFAULT,
# or --funcs), noted in funcs.txt for the host; leaves them in $F
patch_passthru() {
	F=$(funcs_or "$1")
	echo "$F" > funcs.txt
	patch lpc_pt funcs="$F"
}

finish() {
	dmesg | grep -E 'livepatch|lpc_' > klp_dmesg.txt
	say "scenario done"
}
