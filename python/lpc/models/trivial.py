"""Vojtech Pavlik's "trivial" model from the 2014 mail.

The ftrace handler redirects a call to the new function only when the caller
is outside the old patched set::

    if (!within_patched_set(parent_ip))
        regs->ip = func->new_addr;

So a call chain that is inside old patched code keeps calling old versions,
and calls from anywhere else (including from new code) get new versions. There
is no per-task state and no stack check, hence — as the mail itself says — no
indication that patching is over: nothing ever proves old code will not run
again, so the transition has no completion point.

Per task this model reports the *call sites that keep calling old code*: every
patched function on the stack will, when it calls another patched function,
reach the old one. It also flags the known hole: an unpatched function between
(or above) patched frames calls patched functions with its own address as
``parent_ip``, so it gets new code in the middle of an old chain.
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
class Trivial(Model):
    name: ClassVar[str] = "trivial"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET (per call)", "FUNCTION")

    stack_source: ClassVar[StackSource] = StackSource.EXACT

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """No task ever switches: each call picks old or new from its parent_ip."""
        return (SwitchPoint.PER_CALL,)

    def judge_task(self, task: TaskFacts) -> TaskOutcome:
        patched = task.patched_frames_any
        if not patched and task.stack_trusted:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                "outside the patched set: its next calls reach new code", errno=None, eta_s=0.0,
                extra={"old_call_sites": []},
            )
        if not patched:
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.UNKNOWN,
                f"{task.stack_problem}: cannot tell whether it is inside the patched set",
                errno=None, eta_s=None, extra={"old_call_sites": None},
            )
        sites = [task.frames[i] for i in patched if i < len(task.frames)]
        # An unpatched frame inner to the outermost patched one calls patched
        # functions with an outside parent_ip: new code inside an old chain.
        mixing = any(i not in patched for i in range(0, max(patched)))
        reason = f"inside the patched set ({', '.join(sites)}): calls from there keep reaching old code"
        if mixing:
            reason += "; an unpatched function inside that chain would call new code (mixed chain)"
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.UNKNOWN, reason, errno=None, eta_s=None,
            extra={"old_call_sites": sites, "mixed_chain_possible": mixing},
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        inside = sum(n for o, n in tally(outcomes) if o.verdict is Verdict.BLOCKED)
        return TransitionOutcome(
            None,
            f"no completion point: the model never learns that old code is unused "
            f"({inside} task(s) are inside the patched set now); old code can never be freed",
        )
