"""kpatch's original core (kpatch.ko): LEAVE_PATCHED_SET + SWITCH_KERNEL.

From dynup/kpatch kmod/core/core.c and the ``kpatch`` script: the patch is
applied inside ``stop_machine()`` after ``kpatch_verify_activeness_safety()``
walks every thread (``do_each_thread`` — the per-CPU idle tasks are never
visited) with the best-effort ``save_stack_trace_tsk()`` into 64 entries; a
deeper stack or a return address inside a function being replaced fails the
attempt with -EBUSY ("activeness safety check failed for X"). The script
retries ``insmod`` ``MAX_LOAD_ATTEMPTS`` = 5 times, ``RETRY_INTERVAL`` = 2 s
apart, then gives up: all or nothing. Inside stop_machine nothing else runs,
so no task is "running" at the check — but a snapshot cannot show where a
running task will be stopped.
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
    count_where,
)

MAX_STACK_TRACE_DEPTH = 64
MAX_LOAD_ATTEMPTS = 5
RETRY_INTERVAL_S = 2.0


def all_or_nothing(
    name: str, outcomes: Sequence[TaskOutcome], attempts: int, interval_s: float
) -> TransitionOutcome:
    """SWITCH_KERNEL: one instant for everyone, so one busy task fails the attempt."""
    busy, first_busy = count_where(outcomes, Outlook.STUCK)
    unknown, first_unknown = count_where(outcomes, Outlook.UNKNOWN)
    if first_busy is not None:
        return TransitionOutcome(
            False,
            f"{busy} task(s) keep the check failing: {first_busy.reason}; {name} gives up after "
            f"{attempts} attempts {interval_s:g} s apart and nothing is patched",
        )
    if first_unknown is not None:
        return TransitionOutcome(
            None, f"{unknown} task(s) whose stacks at the stop cannot be known now: "
            f"{first_unknown.reason}",
        )
    return TransitionOutcome(True, "every task passes: applied atomically at the first attempt", eta_s=0.0)


@dataclass(frozen=True)
class Kpatch(Model):
    name: ClassVar[str] = "kpatch"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "KERNEL")
    max_depth: int = MAX_STACK_TRACE_DEPTH
    attempts: int = MAX_LOAD_ATTEMPTS
    retry_interval_s: float = RETRY_INTERVAL_S

    stack_source: ClassVar[StackSource] = StackSource.BEST_EFFORT

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """kpatch_apply_patch() inside stop_machine(), retried by the script."""
        return (SwitchPoint.STOP_MACHINE,)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                "idle task: not on the thread list, never checked (a hole in kpatch's check)",
                errno=None, eta_s=0.0, extra={"unchecked": True},
            )
        if t.running:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.UNKNOWN,
                "running now: stop_machine stops it somewhere this snapshot cannot show", errno="EBUSY",
            )
        if (t.stack in (Stack.EMPTY, Stack.UNREADABLE) or t.hidden_patched_text
                or t.evidence_lost is not None):
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.UNKNOWN,
                "stack is hidden in this dump" if t.hidden_patched_text
                else f"{t.stack_problem} in this dump",
                errno="EINVAL",
            )
        # kpatch core.c kpatch_verify_activeness_safety(): -EBUSY when trace.nr_entries
        # >= MAX_STACK_TRACE_DEPTH, and x86 save_stack_trace_tsk() stores a ULONG_MAX
        # end marker after the last frame while there is room: 63 frames already fail.
        if t.depth + 1 >= self.max_depth:
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.STUCK,
                f"its {self.max_depth}-entry stack trace is full", errno="EBUSY",
            )
        if t.patched_frame is not None:
            outlook = Outlook.UNKNOWN if t.state in RUNNABLE else Outlook.STUCK
            return TaskOutcome(
                Verdict.BLOCKED, outlook,
                f"activeness safety check failed for {t.patched_function}", errno="EBUSY",
            )
        return TaskOutcome(Verdict.SWITCH, Outlook.SWITCHED, "passes the activeness check", errno=None, eta_s=0.0)

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        return all_or_nothing("kpatch", outcomes, self.attempts, self.retry_interval_s)
