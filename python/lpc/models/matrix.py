"""Vojtech Pavlik's classification as one parameterised model: LEAVE × SWITCH.

LEAVE_x — what a task must have left before it may run new code:

* ``FUNCTION``: only the function itself; in-flight activations finish old,
  the next call may be new. Nothing to wait for.
* ``PATCHED_SET``: no frame of any patched function on the task's stack
  (needs a stack that can be trusted).
* ``KERNEL``: no kernel stack at all — the task must return to user space.
  Kernel threads and idle tasks never do, so this cell alone cannot finish
  for them (kGraft adds safe points, see kgraft.py).

SWITCH_y — what flips at once:

* ``FUNCTION`` and ``THREAD``: each task (and, for FUNCTION, each function)
  flips on its own when its LEAVE condition holds. At one snapshot both
  finish when every task's condition comes to hold; they differ in what a
  task may mix on its way there, which the simulator checks.
* ``KERNEL``: everyone at one instant — only when every task's condition
  holds at the same moment (stop_machine), so one stuck task fails it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from lpc.models.base import (
    Model,
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
from lpc.models.kpatch import all_or_nothing

LEAVES = ("FUNCTION", "PATCHED_SET", "KERNEL")
SWITCHES = ("FUNCTION", "THREAD", "KERNEL")


@dataclass(frozen=True)
class Matrix(Model):
    leave: str = "PATCHED_SET"
    switch: str = "THREAD"

    def __post_init__(self) -> None:
        if self.leave not in LEAVES or self.switch not in SWITCHES:
            raise ValueError(f"no such cell: LEAVE_{self.leave} / SWITCH_{self.switch}")

    @property
    def name(self) -> str:
        return f"leave_{self.leave.lower()}/switch_{self.switch.lower()}"

    @property
    def cell(self) -> tuple[str, str]:
        return (self.leave, self.switch)

    def params(self) -> dict[str, object]:
        """None: the cell is the whole model, and its name says which."""
        return {}

    #: The cells are the idealised guarantees: they see every frame exactly.
    stack_source: ClassVar[StackSource] = StackSource.EXACT

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """When the unit of SWITCH_y may flip, given what LEAVE_x asks.

        LEAVE_FUNCTION never waits, so each unit flips at its first chance;
        LEAVE_PATCHED_SET flips a unit at a check that every task passes (for
        SWITCH_THREAD, the task alone); LEAVE_KERNEL flips a thread as it
        crosses the user/kernel boundary, and a function or the kernel only at
        an instant when no task has a kernel stack.
        """
        if self.switch == "KERNEL":
            return (SwitchPoint.STOP_MACHINE,)
        if self.switch == "THREAD":
            if self.leave == "KERNEL":
                return (SwitchPoint.KERNEL_ENTRY, SwitchPoint.KERNEL_EXIT)
            return (SwitchPoint.RETRY,)
        if self.leave == "FUNCTION":
            return (SwitchPoint.IMMEDIATE,)
        return (SwitchPoint.FUNCTION_FLIP,)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if self.leave == "FUNCTION":
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED, "only the function must be left: switches now",
                errno=None, eta_s=0.0,
            )
        if self.leave == "PATCHED_SET":
            return self._leave_patched_set(t)
        return self._leave_kernel(t)

    def _leave_patched_set(self, t: TaskFacts) -> TaskOutcome:
        if t.running:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.UNKNOWN, "on a CPU: its stack is unknown until it stops",
                errno="EBUSY",
            )
        if not t.stack_trusted:
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.UNKNOWN, t.stack_problem, errno="EINVAL"
            )
        if t.patched_frame is None:
            return TaskOutcome(Verdict.SWITCH, Outlook.SWITCHED, "no patched frame", errno=None, eta_s=0.0)
        if t.patched_frame_is_thread_fn or t.state not in INTERRUPTIBLE | RUNNABLE:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                f"holds {t.patched_function} and nothing makes it leave", errno="EADDRINUSE",
            )
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.UNKNOWN,
            f"holds {t.patched_function}; switches once it returns from it", errno="EADDRINUSE",
        )

    def _leave_kernel(self, t: TaskFacts) -> TaskOutcome:
        if t.kind is not TaskKind.USER:
            outlook = Outlook.UNKNOWN if t.kind is TaskKind.UNKNOWN else Outlook.STUCK
            return TaskOutcome(
                Verdict.BLOCKED, outlook,
                f"{t.kind.value} task: never leaves the kernel", errno=None,
            )
        if t.running or t.state in RUNNABLE:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.AT_KERNEL_EXIT, "switches when it returns to user space",
                errno="EBUSY", eta_s=0.0,
            )
        if t.state in INTERRUPTIBLE:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.AFTER_SIGNAL,
                "asleep in the kernel: a signal ends the sleep and it leaves", errno=None,
            )
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.STUCK,
            f"asleep in the kernel in state {t.state or '?'}: cannot be made to leave", errno=None,
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        if self.switch == "KERNEL":
            return all_or_nothing(self.name, outcomes, 1, 0.0)
        return summarize(outcomes)
