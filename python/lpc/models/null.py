"""The null model: LEAVE_FUNCTION + SWITCH_FUNCTION, immediate replacement.

Linux 4.0–4.11 livepatch (and ``patch->immediate`` until 2018): the ftrace
handler redirects every new call at once and keeps no per-task state. An
activation already inside the old function finishes there, so the transition
is complete the moment the patch is enabled — and every task that holds a
patched function on its stack at that instant is where inconsistency lives:
it may return from old code into callers that now call new code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from typing import ClassVar

from lpc.models.base import (
    Model,
    Outlook,
    StackSource,
    SwitchPoint,
    TaskFacts,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    tally,
)


@dataclass(frozen=True)
class Null(Model):
    name: ClassVar[str] = "null"
    cell: ClassVar[tuple[str, str]] = ("FUNCTION", "FUNCTION")

    #: The simulator shows it every frame; it never reads them to decide anything.
    stack_source: ClassVar[StackSource] = StackSource.EXACT

    @property
    def rests_on_evidence(self) -> bool:
        """Every task switches at once, whatever the dump shows of it."""
        return False

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Every task, every function, at the instant the patch is enabled."""
        return (SwitchPoint.IMMEDIATE,)

    def judge_task(self, task: TaskFacts) -> TaskOutcome:
        if task.patched_frame is not None:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                f"switched at once while executing old {task.patched_function}: its old "
                "activation finishes in old code while new calls run new code",
                errno=None, eta_s=0.0, extra={"executing_old": True},
            )
        if not task.stack_trusted:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                f"switched at once; {task.stack_problem}, so it may be executing old code",
                errno=None, eta_s=0.0, extra={"executing_old": None},
            )
        return TaskOutcome(
            Verdict.SWITCH, Outlook.SWITCHED, "switched at once", errno=None, eta_s=0.0,
            extra={"executing_old": False},
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        old = sum(n for o, n in tally(outcomes) if o.extra.get("executing_old") is True)
        return TransitionOutcome(
            True,
            f"complete at once; {old} task(s) were executing old code at that instant "
            "(safe only for changes whose old and new versions may interleave)",
            eta_s=0.0,
        )
