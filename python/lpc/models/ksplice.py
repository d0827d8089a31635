"""Ksplice (open-source era): LEAVE_PATCHED_SET + SWITCH_KERNEL, conservative scan.

From jirislaby/ksplice kmodsrc/ksplice.c: ``__apply_patches`` runs inside
``stop_machine()``; ``check_each_task`` walks every thread (not the idle
tasks) and ``check_task`` compares the saved IP, ``restart_block.fn`` and
*every word* from the saved stack pointer to the end of the thread stack with
the ranges being replaced. No unwinding: stale words count, so it can refuse
a task klp would switch (false positives) but never misses a live frame. Up to
5 attempts with a 1 s sleep between them, then "to-be-replaced code is busy".
A dump's ``?`` frames are exactly such stale words: they count here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from lpc.models.base import (
    Model,
    RUNNABLE,
    Outlook,
    Stack,
    StackSource,
    SwitchPoint,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    dead_task,
)
from lpc.models.kpatch import all_or_nothing

ATTEMPTS = 5
RETRY_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Ksplice(Model):
    name: ClassVar[str] = "ksplice"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "KERNEL")
    attempts: int = ATTEMPTS
    retry_interval_s: float = RETRY_INTERVAL_S

    stack_source: ClassVar[StackSource] = StackSource.WORD_SCAN

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """__apply_patches() inside stop_machine(), up to `attempts` times."""
        return (SwitchPoint.STOP_MACHINE,)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED, "idle task: not on the thread list, never checked",
                errno=None, eta_s=0.0, extra={"unchecked": True},
            )
        if t.running:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.UNKNOWN,
                "running now: where stop_machine parks it cannot be known from this snapshot",
                errno="EBUSY",
            )
        if t.patched_frames_any:
            first = t.patched_frames_any[0]
            what = t.frames[first] if first < len(t.frames) else t.patched_function
            outlook = Outlook.UNKNOWN if t.state in RUNNABLE else Outlook.STUCK
            return TaskOutcome(
                Verdict.BLOCKED, outlook,
                f"stack word inside to-be-replaced code ({what}): code is busy", errno="EBUSY",
            )
        if (t.stack in (Stack.EMPTY, Stack.UNREADABLE, Stack.TRUNCATED) or t.hidden_patched_text
                or t.evidence_lost is not None):
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.UNKNOWN,
                "the dump does not show every stack word this scan would read", errno="EINVAL",
            )
        return TaskOutcome(
            Verdict.SWITCH, Outlook.SWITCHED, "no stack word inside the replaced code", errno=None, eta_s=0.0
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        return all_or_nothing("ksplice", outcomes, self.attempts, self.retry_interval_s)
