"""Josh Poimboeuf's LEAVE_PATCHED_SET + SWITCH_THREAD algorithm, as written in 2014.

From the mail, for each thread::

    if (!on_cpu(thread) and !on_stack(thread, funcs))
        switch thread to new universe
    else if (unfreezable kthread)
        retry and/or fail   (kthread is either CPU-bound or is using patched func)
    else
        freeze thread
        if (!on_stack(thread, funcs))
            switch thread to new universe
        else
            fail (patch affects freezer/schedule path)

Freezing moves a user task out of its syscall to the freezer in the signal
path, and a freezable kthread to the ``try_to_freeze()`` in its main loop;
the recheck then fails only when a patched function is on *that* path. A task
in uninterruptible sleep cannot be frozen (the freezer gives up after its
timeout), so it fails too. The merged kernel dropped the freezer (see klp.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from lpc.models.base import (
    INTERRUPTIBLE,
    RUNNABLE,
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

#: Functions a frozen task sits in: the refrigerator, the signal path a user
#: task freezes from, the scheduler it sleeps in (kernel/freezer.c,
#: kernel/signal.c, kernel/entry/common.c, kernel/sched/core.c).
FREEZER_PATH = frozenset(
    {
        "__refrigerator",
        "try_to_freeze",
        "freezing_slow_path",
        "__try_to_freeze",
        "get_signal",
        "do_signal_stop",
        "arch_do_signal_or_restart",
        "exit_to_user_mode_loop",
        "exit_to_user_mode_prepare",
        "syscall_exit_to_user_mode",
        "do_syscall_64",
        "entry_SYSCALL_64_after_hwframe",
        "schedule",
        "__schedule",
        "kthread",
        "ret_from_fork",
        "ret_from_fork_asm",
    }
)


@dataclass(frozen=True)
class Josh:
    name: str = "josh"
    cell: tuple[str, str] = ("PATCHED_SET", "THREAD")
    #: The patch changes a function on the freezer/schedule path (set by the caller).
    freezer_path_patched: bool = False

    #: The mail's on_stack() assumes a stack walker that can be trusted.
    stack_source: ClassVar[StackSource] = StackSource.RELIABLE

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """The per-thread check, then freeze-and-recheck for what it could not switch."""
        return (SwitchPoint.RETRY, SwitchPoint.FREEZER)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        unknown_stack = not t.stack_trusted
        on_stack = t.patched_frame is not None
        if not t.running and not unknown_stack and not on_stack:
            return TaskOutcome(Verdict.SWITCH, Outlook.SWITCHED, "off CPU, no patched frame", None, 0.0)
        verdict = (
            Verdict.RUNNING if t.running
            else Verdict.BLOCKED if on_stack
            else Verdict.UNRELIABLE
        )
        errno = {Verdict.RUNNING: "EBUSY", Verdict.BLOCKED: "EADDRINUSE"}.get(verdict, "EINVAL")
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                verdict, Outlook.UNKNOWN,
                "idle task: the mail's algorithm walks threads and does not cover per-CPU idle",
                errno,
            )
        if t.kind is TaskKind.KTHREAD and t.freezable is not True:
            if t.running:
                return TaskOutcome(
                    verdict, Outlook.UNKNOWN,
                    "unfreezable kthread on a CPU: retried until it is caught off CPU", errno,
                )
            if on_stack:
                return TaskOutcome(
                    verdict, Outlook.STUCK,
                    f"unfreezable kthread sleeping on {t.patched_function}: fail", errno,
                )
            return TaskOutcome(
                verdict, Outlook.UNKNOWN,
                f"unfreezable kthread with a {t.stack.value} stack: retried", errno,
            )
        if t.kind is TaskKind.UNKNOWN:
            return TaskOutcome(
                verdict, Outlook.UNKNOWN,
                f"cannot tell whether it is an unfreezable kthread ({t.kind_evidence})", errno,
            )
        return self._freeze_and_recheck(t, verdict, errno)

    def _freeze_and_recheck(self, t: TaskFacts, verdict: Verdict, errno: str) -> TaskOutcome:
        if self.freezer_path_patched:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                "frozen, but the patch affects the freezer/schedule path: fail", errno,
            )
        if t.state is not None and t.state not in INTERRUPTIBLE | RUNNABLE:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                f"cannot be frozen in state {t.state} (uninterruptible sleep): fail", errno,
            )
        if t.kind is TaskKind.KTHREAD and t.patched_frame_is_thread_fn:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                f"frozen in its main loop {t.patched_function}, still on the stack: fail", errno,
            )
        return TaskOutcome(
            verdict, Outlook.SWITCHED,
            "frozen; the recheck finds no patched frame on the freezer path: switched", errno, 0.0,
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        summary = summarize(outcomes)
        if summary.converges is False:
            return TransitionOutcome(False, "fail: " + summary.reason)
        return summary
