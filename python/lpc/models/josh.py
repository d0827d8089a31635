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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from lpc.kernel import FREEZER_PATH
from lpc.models.base import (
    INTERRUPTIBLE,
    RUNNABLE,
    Model,
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

if TYPE_CHECKING:
    from lpc.patch import Patch

@dataclass(frozen=True)
class Josh(Model):
    name: ClassVar[str] = "josh"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "THREAD")
    #: The patch changes a function on the freezer/schedule path (set by the caller).
    freezer_path_patched: bool = False

    #: The mail's on_stack() assumes a stack walker that can be trusted.
    stack_source: ClassVar[StackSource] = StackSource.RELIABLE

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """The per-thread check, then freeze-and-recheck for what it could not switch."""
        return (SwitchPoint.RETRY, SwitchPoint.FREEZER)

    def with_patch(self, patch: Patch) -> Josh:
        """A frozen task sits on the freezer path: patching it fails the recheck."""
        touched = bool(patch.names & FREEZER_PATH)
        return replace(self, freezer_path_patched=self.freezer_path_patched or touched)

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        unknown_stack = not t.stack_trusted
        on_stack = t.patched_frame is not None
        if not t.running and not unknown_stack and not on_stack:
            return TaskOutcome(Verdict.SWITCH, Outlook.SWITCHED, "off CPU, no patched frame", errno=None, eta_s=0.0)
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
                errno=errno,
            )
        if t.kind is TaskKind.KTHREAD and t.freezable is not True:
            if t.running:
                return TaskOutcome(
                    verdict, Outlook.UNKNOWN,
                    "unfreezable kthread on a CPU: retried until it is caught off CPU", errno=errno,
                )
            if on_stack:
                return TaskOutcome(
                    verdict, Outlook.STUCK,
                    f"unfreezable kthread sleeping on {t.patched_function}: fail", errno=errno,
                )
            return TaskOutcome(
                verdict, Outlook.UNKNOWN,
                f"unfreezable kthread, {t.stack_problem}: retried", errno=errno,
            )
        if t.kind is TaskKind.UNKNOWN:
            return TaskOutcome(
                verdict, Outlook.UNKNOWN,
                f"cannot tell whether it is an unfreezable kthread ({t.kind_evidence})", errno=errno,
            )
        return self._freeze_and_recheck(t, verdict, errno)

    def _freeze_and_recheck(self, t: TaskFacts, verdict: Verdict, errno: str) -> TaskOutcome:
        if self.freezer_path_patched:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                "frozen, but the patch affects the freezer/schedule path: fail", errno=errno,
            )
        if t.state is not None and t.state not in INTERRUPTIBLE | RUNNABLE:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                f"cannot be frozen in state {t.state} (uninterruptible sleep): fail", errno=errno,
            )
        if t.kind is TaskKind.KTHREAD and t.patched_frame_is_thread_fn:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                f"frozen in its main loop {t.patched_function}, still on the stack: fail", errno=errno,
            )
        return TaskOutcome(
            verdict, Outlook.SWITCHED,
            "frozen; the recheck finds no patched frame on the freezer path: switched", errno=errno, eta_s=0.0,
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        summary = summarize(outcomes)
        if summary.converges is False:
            return TransitionOutcome(False, "fail: " + summary.reason)
        return summary
