"""kGraft (SUSE): LEAVE_KERNEL + SWITCH_THREAD.

From kernel/kgraft.c (jirislaby's tree and the later SLE variant): at patch
start every thread gets ``TIF_KGR_IN_PROGRESS``; a thread sheds it on the slow
path of syscall entry/exit — with an empty kernel stack — and kernel threads
at their safe points: ``try_to_freeze()`` for freezable ones, the
kthread_worker loop, or an explicit ``kgr_task_safe()`` annotation (SUSE
annotated the workqueue worker loop). No stack is ever checked, so a patched
function that is always on some stack does not matter: what matters is that
the thread leaves the kernel. ``kgr_work_fn`` re-checks every ``KGR_TIMEOUT`` =
2 s and (2015+) sends a fake signal to user tasks and wakes kthreads. Idle
tasks are not on the thread list; interrupts follow a per-CPU flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from lpc.kernel import FREEZABLE_KTHREAD_PREFIXES, WORKQUEUE_WORKER_PREFIX
from lpc.models.base import (
    INTERRUPTIBLE,
    RUNNABLE,
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
    signal_or_wake,
    summarize,
)

KGR_TIMEOUT_S = 2.0
#: Kernel threads that pass a kGraft safe point in their loop: workqueue
#: workers (annotated worker loop), kthread_worker users, and the freezable
#: kthreads of mm/ (set_freezable() in mm/vmscan.c, mm/khugepaged.c, mm/compaction.c).
SAFE_POINT_KTHREADS = (WORKQUEUE_WORKER_PREFIX, *FREEZABLE_KTHREAD_PREFIXES)


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

    #: kGraft reads no stack at all.
    stack_source: ClassVar[StackSource] = StackSource.NONE

    @property
    def comm_prefixes(self) -> tuple[str, ...]:
        """The comm prefixes judge_task() tests (lpc.check groups tasks by them)."""
        return self.safe_point_kthreads

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Syscall entry/exit slow paths, kthread safe points; the retry only
        finds the idle tasks, which are not on the thread list."""
        return (
            SwitchPoint.RETRY,
            SwitchPoint.KERNEL_ENTRY,
            SwitchPoint.KERNEL_EXIT,
            SwitchPoint.KTHREAD_SAFE_POINT,
        )

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """kgr_work_fn (2015+), from its first run KGR_TIMEOUT after the start
        (the pass at enable only finds the idle tasks, which were never marked):
        a fake signal to every user task and a wake-up to every kthread still
        marked."""
        return Nudge.NONE if retry == 0 else signal_or_wake(task)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                "idle task: not on the thread list; interrupts use the per-CPU flag", errno=None, eta_s=0.0,
            )
        if t.kind is TaskKind.USER:
            if t.running or t.state in RUNNABLE:
                return TaskOutcome(
                    Verdict.RUNNING, Outlook.AT_KERNEL_EXIT,
                    "switches at its next kernel entry or exit", errno="EBUSY", eta_s=self.retry_interval_s,
                )
            if t.state in INTERRUPTIBLE:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.AFTER_SIGNAL,
                    "asleep in the kernel; the fake signal makes it leave and switch", errno=None,
                    eta_s=self.retry_interval_s,
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
            if safe and t.state is not None and t.state not in INTERRUPTIBLE | RUNNABLE | {"I"}:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.STUCK,
                    f"kernel thread in state {t.state}: it cannot reach its safe point until that "
                    "sleep ends",
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
