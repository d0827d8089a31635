"""kGraft (SUSE): LEAVE_KERNEL + SWITCH_THREAD.

From kernel/kgraft.c: the 2014 lkml posting, jirislaby's tree and the later SLE
variant. At patch start ``kgr_handle_processes()`` gives every thread
``TIF_KGR_IN_PROGRESS`` (``kgr_mark_task_in_progress``); a thread sheds it on
the slow path of syscall entry/exit — with an empty kernel stack — and kernel
threads at their safe points: ``try_to_freeze()`` for freezable ones, the
kthread_worker loop, or an explicit ``kgr_task_safe()`` annotation (SUSE
annotated the workqueue worker loop). No stack is checked for a patched
function, so a patched function that is always on some stack does not matter:
what matters is that the thread leaves the kernel.

Right after marking, ``kgr_wakeup_kthreads()`` calls ``wake_up_process()`` on
every kernel thread still marked (the 2014 posting did it inside
``kgr_handle_processes``, for every kernel thread), so that each runs to its
safe point. ``wake_up_process`` wakes a
TASK_NORMAL sleep, uninterruptible (D) ones included — but a wait whose
condition has not come re-checks it and sleeps again, short of the safe point.

``kgr_work_fn`` re-checks every ``KGR_TIMEOUT`` = 2 s. From the SLE 12 kernel
3.12.44 update (SUSE-SU-2015:1324-1, "kgr: send a fake signal to all blocking
tasks") each of its runs that finds threads still marked also calls
``kgr_send_fake_signal()``: ``wake_up_process()`` again for kernel threads,
``signal_wake_up(t, 0)`` — which ends only an interruptible sleep — for the
others. Before it (``fake_signals=False``) a user task asleep in the kernel
switched only when its sleep ended on its own.

The 2014 posting (``lazy_migration=True``) did not mark every thread: x86
``kgr_needs_lazy_migration()`` saved the thread's stack with the best-effort
``save_stack_trace_tsk()`` into ``max_entries`` = 3 and marked it only when
``nr_entries > 2``; a thread with a shorter kernel stack was taken to be in
user space and counted as migrated at once. That walker skips .sched.text
frames, and before 5.2 x86 appends a ULONG_MAX end marker while there is room,
so a thread showing at most one frame outside .sched.text was never marked —
whatever that frame was. Later versions mark every thread.

Idle tasks are not on the thread list; interrupts follow a per-CPU flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from lpc.kernel import FREEZABLE_KTHREAD_PREFIXES, WORKQUEUE_WORKER_PREFIX
from lpc.models.base import (
    INTERRUPTIBLE,
    RUNNABLE,
    UNINTERRUPTIBLE,
    Model,
    Nudge,
    Outlook,
    StackSource,
    SwitchPoint,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    dead_task,
    summarize,
)

KGR_TIMEOUT_S = 2.0
#: x86 kgr_needs_lazy_migration(): ``struct stack_trace`` with ``max_entries = 3``,
#: the thread is marked when ``nr_entries > 2``.
LAZY_PROBE_ENTRIES = 3
#: Kernel threads that pass a kGraft safe point in their loop: workqueue
#: workers (annotated worker loop), kthread_worker users, and the freezable
#: kthreads of mm/ (set_freezable() in mm/vmscan.c, mm/khugepaged.c, mm/compaction.c).
SAFE_POINT_KTHREADS = (WORKQUEUE_WORKER_PREFIX, *FREEZABLE_KTHREAD_PREFIXES)
#: States wake_up_process() (try_to_wake_up(p, TASK_NORMAL)) ends: S, D, and
#: TASK_IDLE (``I``, TASK_UNINTERRUPTIBLE | TASK_NOLOAD).
TASK_NORMAL_SLEEPS = INTERRUPTIBLE | UNINTERRUPTIBLE


@dataclass(frozen=True)
class Kgraft(Model):
    name: ClassVar[str] = "kgraft"
    cell: ClassVar[tuple[str, str]] = ("KERNEL", "THREAD")
    #: KGR_TIMEOUT: kgr_work_fn re-checks (and nudges) this often.
    retry_interval_s: float = KGR_TIMEOUT_S
    safe_point_kthreads: tuple[str, ...] = SAFE_POINT_KTHREADS
    #: SLE kernels annotated the sleeping loops of their in-tree kthreads with
    #: kgr_task_safe(); out-of-tree ones are not (set False to model only
    #: freezable and listed kthreads). A kthread that never sleeps never gets there.
    annotated_kthreads: bool = True
    #: kgr_send_fake_signal() from kgr_work_fn (SLE 12 3.12.44, 2015, and later).
    fake_signals: bool = True
    #: The 2014 posting's kgr_needs_lazy_migration() probe at start.
    lazy_migration: bool = False

    @property
    def stack_source(self) -> StackSource:
        """No stack is read — except by the 2014 lazy-migration probe, which
        counts the entries save_stack_trace_tsk() saves."""
        return StackSource.BEST_EFFORT if self.lazy_migration else StackSource.NONE

    @property
    def comm_prefixes(self) -> tuple[str, ...]:
        """The comm prefixes judge_task() tests (lpc.check groups tasks by them)."""
        return self.safe_point_kthreads

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Syscall entry/exit slow paths, kthread safe points; the retry only
        finds the idle tasks, which are not on the thread list (and, with the
        lazy-migration probe, the threads it never marked)."""
        return (
            SwitchPoint.RETRY,
            SwitchPoint.KERNEL_ENTRY,
            SwitchPoint.KERNEL_EXIT,
            SwitchPoint.KTHREAD_SAFE_POINT,
        )

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """At start (pass 0), kgr_wakeup_kthreads(): wake_up_process() to every
        marked kernel thread. At each kgr_work_fn run (KGR_TIMEOUT later, and
        every KGR_TIMEOUT after), kgr_send_fake_signal() when ``fake_signals``:
        wake_up_process() to kernel threads, signal_wake_up() to the others."""
        if task.kind is TaskKind.KTHREAD:
            return Nudge.WAKE_PROCESS if retry == 0 or self.fake_signals else Nudge.NONE
        if task.kind is TaskKind.USER and retry > 0 and self.fake_signals:
            return Nudge.FAKE_SIGNAL
        return Nudge.NONE

    def _never_marked(self, t: TaskFacts) -> bool:
        """kgr_needs_lazy_migration() false: the probe saved at most 2 entries,
        the x86 end marker included, so at most one real frame."""
        saved = min(t.depth + 1, LAZY_PROBE_ENTRIES)  # frames + the end marker, if room
        return self.lazy_migration and not t.running and t.stack_trusted and not saved > 2

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                "idle task: not on the thread list; interrupts use the per-CPU flag", errno=None, eta_s=0.0,
            )
        if self._never_marked(t):
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                f"kgr_needs_lazy_migration() saved {t.depth} frame(s) outside .sched.text: taken "
                "for a thread in user space and never marked, whatever it runs",
                errno=None, eta_s=0.0, extra={"unchecked": True},
            )
        if t.kind is TaskKind.USER:
            if t.running or t.state in RUNNABLE:
                return TaskOutcome(
                    Verdict.RUNNING, Outlook.AT_KERNEL_EXIT,
                    "switches at its next kernel entry or exit", errno="EBUSY", eta_s=self.retry_interval_s,
                )
            if t.state in INTERRUPTIBLE and self.fake_signals:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.AFTER_SIGNAL,
                    "asleep in the kernel; the fake signal makes it leave and switch", errno=None,
                    eta_s=self.retry_interval_s,
                )
            if t.state in INTERRUPTIBLE:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.UNKNOWN,
                    "asleep in the kernel, and no fake signal before SLE 12's 3.12.44 kernel: it "
                    "switches when its sleep ends on its own",
                )
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                f"asleep in the kernel in state {t.state or '?'}: no signal ends that sleep, and "
                "it must leave the kernel to switch",
            )
        if t.kind is TaskKind.KTHREAD:
            # Safe points sit where a kthread's loop sleeps (the freezer, the
            # annotated waits): one that is on a CPU now may never sleep (a
            # CPU-bound worker such as vhost — S6), so only the known ones count.
            sleeping_loop = (
                self.annotated_kthreads and not t.running and t.state in INTERRUPTIBLE | {"I"}
            )
            safe = (
                sleeping_loop
                or t.freezable is True
                or t.comm.startswith(self.safe_point_kthreads)
            )
            if safe and t.state in UNINTERRUPTIBLE - {"I"}:  # D; TASK_IDLE loops are safe points
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.UNKNOWN,
                    f"kernel thread in state {t.state}: wake_up_process() ends that sleep, but a "
                    "wait whose condition has not come sleeps again before the safe point",
                )
            if safe and t.state is not None and t.state not in TASK_NORMAL_SLEEPS | RUNNABLE:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.STUCK,
                    f"kernel thread in state {t.state}: no wake-up ends it, so it cannot reach its "
                    "safe point",
                )
            if safe:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.AFTER_WAKEUP,
                    "kernel thread: switches at the safe point of its loop (freezer or "
                    "kgr_task_safe), whatever is on its stack",
                    errno=None, eta_s=self.retry_interval_s,
                )
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                "kernel thread without a known kGraft safe point: needs kgr_task_safe() or force",
            )
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.UNKNOWN,
            f"cannot tell whether it is a kernel thread ({t.kind_evidence})",
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        return summarize(outcomes)
