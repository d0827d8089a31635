"""Linux facts that several layers need, each with the kernel source it comes from.

The dump side (:mod:`lpc.facts`), the models and the simulator all reason about
the same kernel; they read its names and flags from here so that no two of
them keep their own copy of a list. Nothing here knows a model or a text
format: these are facts about the kernel only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# ---- task flags -------------------------------------------------------------------------------

#: PF_KTHREAD (include/linux/sched.h): the task is a kernel thread. /proc/<pid>/stat
#: field 9 and, since 6.15, SysRq-t's ``task_flags:`` print the PF_* word.
PF_KTHREAD = 0x00200000

# ---- frames that say what a task is -----------------------------------------------------------

#: Frame-name prefixes only a task that entered through a system call has on its
#: stack (arch/x86/entry/entry_64.S, arch/x86/entry/common.c do_syscall_64,
#: include/linux/syscalls.h __do_sys_/__se_sys_, arch/arm64/kernel/entry-common.c
#: el0_svc, arch/x86/entry/entry_32.S and common.c for the int80 path).
SYSCALL_ENTRY_PREFIXES = (
    "entry_SYSCALL_64", "do_syscall_64", "__x64_sys_", "__arm64_sys_", "el0_svc",
    "__do_sys_", "__se_sys_", "do_int80_syscall_32", "entry_INT80",
)

#: The frame that calls a kthread_create() thread's main function: kthread()
#: (kernel/kthread.c, ``threadfn(data)``).
KTHREAD_FN = "kthread"
#: Where every new task starts (arch/x86/entry/entry_64.S ret_from_fork_asm, which
#: calls ret_from_fork() since 6.7). kthreadd itself is started by rest_init()
#: with kernel_thread() (init/main.c), so its main function's caller is
#: ret_from_fork, not kthread().
RET_FROM_FORK_PREFIX = "ret_from_fork"


def is_syscall_entry(name: str) -> bool:
    """A frame only a task inside a system call has."""
    return name.startswith(SYSCALL_ENTRY_PREFIXES)


def starts_threads(name: str) -> bool:
    """Is a frame of this name what calls a kernel thread's main function?"""
    return name == KTHREAD_FN or name.startswith(RET_FROM_FORK_PREFIX)


def is_fork_return(name: str) -> bool:
    return name.startswith(RET_FROM_FORK_PREFIX)


# ---- kernel thread names ----------------------------------------------------------------------

#: Comm prefixes of kernel threads: a weak hint, used only when neither flags,
#: registers nor the stack root tell (names set by kthread_create() callers:
#: kernel/workqueue.c "kworker/", kernel/softirq.c "ksoftirqd/", kernel/stop_machine.c
#: "migration/", kernel/rcu/tree.c "rcu_", mm/vmscan.c "kswapd", ...).
KTHREAD_NAME_PREFIXES = (
    "kworker/", "ksoftirqd/", "migration/", "rcu_", "kthreadd", "kswapd",
    "khugepaged", "kcompactd", "watchdog", "cpuhp/", "idle_inject/", "irq/",
    "kauditd", "oom_reaper", "writeback", "kblockd", "jbd2/", "xfsaild/",
    "scsi_eh_", "khungtaskd", "ksmd", "kdevtmpfs", "netns", "kintegrityd",
)
#: Kernel threads that call set_freezable() and sleep in try_to_freeze() from
#: their loop (mm/vmscan.c kswapd, mm/khugepaged.c, mm/compaction.c kcompactd).
FREEZABLE_KTHREAD_PREFIXES = ("kswapd", "khugepaged", "kcompactd")
#: Workqueue workers: their loop is worker_thread() (kernel/workqueue.c).
WORKQUEUE_WORKER_PREFIX = "kworker/"
#: The per-CPU idle tasks are named swapper/N (init/main.c, kernel/sched/core.c
#: init_idle()); pid 0.
IDLE_COMM_PREFIX = "swapper"

# ---- text sections ----------------------------------------------------------------------------

#: Markers of the scheduler and lock text (include/asm-generic/vmlinux.lds.h
#: SCHED_TEXT, LOCK_TEXT). /proc/<pid>/stack and save_stack_trace_tsk() drop
#: frames inside them for tasks other than current (kernel/stacktrace.c
#: stack_trace_consume_entry_nosched, in_sched_functions()).
SCHED_TEXT_MARKERS = ("__sched_text_start", "__sched_text_end")
LOCK_TEXT_MARKERS = ("__lock_text_start", "__lock_text_end")

#: Scheduler entry points a sleeping task's stack holds (kernel/sched/core.c; all
#: __sched, so inside SCHED_TEXT).
SCHED_FRAMES = frozenset(
    {"__schedule", "schedule", "schedule_idle", "preempt_schedule_irq", "schedule_timeout"}
)

#: Sleep and lock primitives marked ``__sched`` (so placed in SCHED_TEXT) in
#: kernel/sched/core.c, kernel/sched/completion.c, kernel/time/timer.c,
#: kernel/time/hrtimer.c, kernel/locking/{mutex,rwsem,semaphore}.c and
#: kernel/sched/wait_bit.c: what a best-effort walker drops when there is no
#: symbol table to place a frame by address. A name list, so a guide only: the
#: markers of a real kallsyms decide whenever there is one.
SCHED_TEXT_FUNCTIONS = SCHED_FRAMES | frozenset({
    "__sched_text_start",  # a frame printed against the section's first label
    "preempt_schedule", "preempt_schedule_common", "preempt_schedule_notrace",
    "schedule_preempt_disabled", "io_schedule", "io_schedule_timeout", "yield", "yield_to",
    "schedule_timeout_interruptible", "schedule_timeout_killable",
    "schedule_timeout_uninterruptible", "schedule_timeout_idle",
    "schedule_hrtimeout", "schedule_hrtimeout_range", "schedule_hrtimeout_range_clock",
    "do_nanosleep",
    "wait_for_completion", "wait_for_completion_timeout", "wait_for_completion_io",
    "wait_for_completion_io_timeout", "wait_for_completion_interruptible",
    "wait_for_completion_interruptible_timeout", "wait_for_completion_killable",
    "wait_for_completion_killable_timeout", "wait_for_common", "__wait_for_common",
    "do_wait_for_common",
    "mutex_lock", "mutex_lock_interruptible", "mutex_lock_killable", "mutex_lock_io",
    "__mutex_lock", "__mutex_lock_slowpath", "__mutex_lock_interruptible_slowpath",
    "__mutex_lock_killable_slowpath",
    "down_read", "down_write", "down_read_killable", "down_write_killable",
    "rwsem_down_read_slowpath", "rwsem_down_write_slowpath",
    "down", "down_interruptible", "down_killable", "down_timeout",
    "__down", "__down_interruptible", "__down_killable", "__down_timeout", "__down_common",
    "bit_wait", "bit_wait_io", "bit_wait_timeout", "__wait_on_bit", "__wait_on_bit_lock",
    "out_of_line_wait_on_bit", "out_of_line_wait_on_bit_lock",
})
#: Lock text (``__lockfunc``, kernel/locking/spinlock.c): the _raw_* lock functions.
LOCK_TEXT_PREFIXES = ("_raw_spin_", "_raw_read_", "_raw_write_")


def in_sched_text_by_name(name: str) -> bool:
    """By name only: is this a .sched.text or lock-text function
    (kernel/sched/core.c in_sched_functions())? See SCHED_TEXT_FUNCTIONS."""
    return name in SCHED_TEXT_FUNCTIONS or name.startswith(LOCK_TEXT_PREFIXES)

# ---- the freezer ------------------------------------------------------------------------------

#: Functions a frozen task sits in: the refrigerator, the signal path a user task
#: freezes from, the scheduler it sleeps in (kernel/freezer.c, kernel/signal.c,
#: kernel/entry/common.c, kernel/sched/core.c, kernel/kthread.c).
FREEZER_PATH = frozenset(
    {
        "__refrigerator", "try_to_freeze", "freezing_slow_path", "__try_to_freeze",
        "get_signal", "do_signal_stop", "arch_do_signal_or_restart",
        "exit_to_user_mode_loop", "exit_to_user_mode_prepare", "syscall_exit_to_user_mode",
        "do_syscall_64", "entry_SYSCALL_64_after_hwframe",
        "schedule", "__schedule", "kthread", "ret_from_fork", "ret_from_fork_asm",
    }
)

# ---- the roots of each kind of task -----------------------------------------------------------

#: The outermost frames of a user task inside a system call (x86-64).
USER_ROOT = ("entry_SYSCALL_64", "do_syscall_64")
#: The outermost frames of a kthread_create() thread.
KTHREAD_ROOT = ("ret_from_fork", "kthread")
#: The outermost frames of a secondary CPU's idle task (arch/x86/kernel/smpboot.c
#: start_secondary → kernel/sched/idle.c cpu_startup_entry → do_idle).
IDLE_ROOT = ("start_secondary", "cpu_startup_entry")
#: The idle loop: do_idle() calls klp_update_patch_state() after schedule_idle()
#: (kernel/sched/idle.c), livepatch's switch point for idle tasks.
IDLE_LOOP_FN = "do_idle"
#: Frames only an idle task's stack holds: the loop, its caller, and the loop's
#: name before 3.10 (arch/*/kernel/process.c cpu_idle).
IDLE_LOOP_NAMES = frozenset({IDLE_LOOP_FN, "cpu_startup_entry", "cpu_idle"})

# ---- task states ------------------------------------------------------------------------------

#: Task states as ``ps`` and SysRq-t print them (fs/proc/array.c task_state_array).
INTERRUPTIBLE = frozenset({"S"})
#: TASK_IDLE (I) is TASK_UNINTERRUPTIBLE | TASK_NOLOAD.
UNINTERRUPTIBLE = frozenset({"D", "I"})
RUNNABLE = frozenset({"R"})
#: Zombie / dead: the task has exited; kernel/stacktrace.c treats a task without a
#: stack as reliably empty.
DEAD = frozenset({"Z", "X"})

# ---- interrupt entries --------------------------------------------------------------------------

#: Frames that enter an interrupt or exception on the task's own stack, so that
#: kernel-mode registers (a pt_regs frame) sit between them and the interrupted
#: code: x86 arch/x86/include/asm/idtentry.h (asm_sysvec_*, asm_exc_*,
#: asm_common_interrupt) and entry_64.S before 5.8 (apic_timer_interrupt,
#: common_interrupt, ret_from_intr, retint_kernel); the preemption it may end in
#: (kernel/sched/core.c preempt_schedule_irq); arm64 arch/arm64/kernel/entry.S
#: el1h_64_irq/el1h_64_sync and entry-common.c el1_interrupt.
INTERRUPT_ENTRY_PREFIXES = (
    "asm_sysvec_", "asm_exc_", "asm_common_interrupt", "asm_spurious_interrupt",
    "apic_timer_interrupt", "common_interrupt", "ret_from_intr", "retint_kernel",
    "preempt_schedule_irq", "el1h_64_irq", "el1h_64_sync", "el1_interrupt", "el1_irq",
)


def is_interrupt_entry(name: str) -> bool:
    """A frame that puts kernel-mode registers on the stack (an interrupt, an
    exception or a preemption from one): a frame-pointer walker stops there."""
    return name.startswith(INTERRUPT_ENTRY_PREFIXES)


#: Functions only the task *printing* a dump has on its stack: it runs on its CPU
#: while it prints (drivers/tty/sysrq.c __handle_sysrq, sysrq_handle_showstate;
#: kernel/sched/core.c show_state_filter; lib/dump_stack.c dump_stack_lvl;
#: lib/nmi_backtrace.c nmi_cpu_backtrace; kernel/hung_task.c is not one: it
#: prints other tasks).
PRINTING_FRAMES = frozenset(
    {"__handle_sysrq", "sysrq_handle_showstate", "sysrq_handle_showallcpus",
     "show_state_filter", "dump_stack", "dump_stack_lvl", "nmi_cpu_backtrace",
     "nmi_trigger_cpumask_backtrace", "write_sysrq_trigger", "sched_show_task"}
)


# ---- the kernel a dump comes from ---------------------------------------------------------------

#: ``uname -m`` spellings and Debian/Fedora flavour suffixes → the kernel's ARCH.
_ARCH_NAMES = {
    "x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64",
    "aarch64": "arm64", "arm64": "arm64",
    "ppc64le": "powerpc", "ppc64el": "powerpc", "ppc64": "powerpc", "powerpc": "powerpc",
    "s390x": "s390", "s390": "s390",
    "loongarch64": "loongarch", "loong64": "loongarch", "loongarch": "loongarch",
    "riscv64": "riscv", "riscv": "riscv",
    "i386": "x86", "i686": "x86", "686": "x86", "armhf": "arm", "armv7l": "arm",
    "armmp": "arm", "mips": "mips", "mips64": "mips",
}
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(release: str) -> tuple[int, int, int] | None:
    """``6.12.118+deb13-cloud-amd64`` → (6, 12, 118); ``2.6.32-754.el6`` → (2, 6, 32)."""
    m = _RELEASE.match(release.strip())
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3] or 0)


def arch_of_release(release: str) -> str | None:
    """The architecture a release string names in its flavour (Debian's
    ``-cloud-amd64``, Fedora/RHEL's ``.x86_64``, Ubuntu's ``-generic`` names none)."""
    for token in reversed(re.split(r"[-.+_~]", release.strip().lower())):
        if token in _ARCH_NAMES:
            return _ARCH_NAMES[token]
    if "x86_64" in release:
        return "x86_64"
    return None


#: Frames only one architecture's kernel has: its system-call and exception
#: entries (arch/x86/entry/entry_64.S, arch/arm64/kernel/entry-common.c,
#: arch/powerpc/kernel/interrupt.c and exceptions-64s.S, arch/s390/kernel/syscall.c,
#: arch/riscv/kernel/traps.c, arch/arm/kernel/entry-common.S,
#: arch/loongarch/kernel/syscall.c).
ARCH_FRAMES = {
    "entry_SYSCALL_64": "x86_64", "entry_SYSCALL_64_after_hwframe": "x86_64",
    "entry_SYSCALL_64_fastpath": "x86_64", "ret_from_fork_asm": "x86_64",
    "el0t_64_sync": "arm64", "el0t_64_sync_handler": "arm64", "el0_svc": "arm64",
    "do_el0_svc": "arm64",
    "system_call_exception": "powerpc", "system_call_common": "powerpc",
    "hardware_interrupt_common_virt": "powerpc", "start_secondary_prolog": "powerpc",
    "__do_syscall": "s390",
    "do_trap_ecall_u": "riscv",
    "ret_fast_syscall": "arm", "vector_swi": "arm",
    "handle_syscall": "loongarch",
}


def arch_of_frames(names: Iterable[str]) -> str | None:
    """The architecture the dump's frame names belong to, when exactly one
    architecture's entry frames are among them."""
    found = {ARCH_FRAMES[n] for n in names if n in ARCH_FRAMES}
    return found.pop() if len(found) == 1 else None


class Kernel:
    """The kernel a dump was taken on, as far as the input tells.

    ``release`` is what ``uname -r`` prints; ``source`` says where it came
    from (the dump's header, meta.txt, a log banner, ``uname -r`` of this
    machine, ``--kernel-release``), and ``arch_source`` likewise. Models read
    :attr:`version` and :attr:`arch` to pick the rules of that kernel.
    """

    __slots__ = ("arch", "arch_source", "release", "source", "version")

    def __init__(self, release: str | None, source: str, arch: str | None = None,
                 arch_source: str | None = None) -> None:
        self.release = release or None
        self.source = source if self.release else "unknown"
        self.version = parse_version(release) if release else None
        if arch is None and release:
            arch = arch_of_release(release)
            arch_source = "the release's flavour" if arch else None
        self.arch = _ARCH_NAMES.get(arch.lower(), arch.lower()) if arch else None
        self.arch_source = arch_source if self.arch else "unknown"

    def __repr__(self) -> str:
        return f"Kernel({self.release!r}, {self.source!r}, arch={self.arch!r})"
