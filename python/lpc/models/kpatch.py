"""kpatch: its core module kpatch.ko (LEAVE_PATCHED_SET + SWITCH_KERNEL), and the
``kpatch`` tool that loads a patch.

From dynup/kpatch ``kmod/core/core.c`` and the ``kpatch/kpatch`` script
(docs/kernel-profiles.md §11 has the notes and their confidence).

**kpatch.ko.** The patch is applied inside ``stop_machine()``:
``kpatch_apply_patch()`` first runs ``kpatch_verify_activeness_safety()``, which
walks every thread (``do_each_thread`` — the per-CPU idle tasks are never
visited) and hands each return address to ``kpatch_backtrace_address_verify()``.
The newer core.c saves each stack with the best-effort
``save_stack_trace_tsk()`` into ``MAX_STACK_TRACE_DEPTH`` = 64 entries (the
2014 core.c used ``dump_trace()`` with a frame-pointer walk, no depth limit,
and every frame reported). Two consequences of the newer walker:

* it is not the reliable one: for a task other than current it skips every
  frame in ``.sched.text`` and the lock text (kernel/stacktrace.c
  ``stack_trace_consume_entry_nosched``; before 5.2 the arch's
  ``save_stack_address_nosched``). A patched ``schedule_timeout`` (or any
  ``__sched`` function) on a sleeping task's stack is never seen: kpatch.ko
  applies the patch over it. ``lpc check`` shows this model the stacks as that
  walker reports them (``stack_source``; ``lpc.facts.TaskTable.seen_by``), as the
  simulator does;
* a trace that fills the 64 entries fails the attempt with -EBUSY ("more than
  %u trace entries!"); x86 before 5.2 stores a ULONG_MAX end marker after the
  last frame while there is room, so 63 frames already fail.

Which range a return address is compared with (``kpatch_backtrace_address_verify``):
the function's original ``[old_addr, old_addr + old_size)`` when no loaded patch
replaces it yet; the active replacement's ``[new_addr, new_addr + new_size)`` when
one does (a repatch, or an unpatch); and, for a ``replace`` patch, also the
``new_addr`` range of every function of the patches it replaces (hash entries
with op KPATCH_OP_UNPATCH). :func:`activeness_functions` is that rule, which
``lpc check`` applies to the loaded patches (``--loaded``, ``--replace``) through
:meth:`Kpatch.checked_functions`.

Any match returns -EBUSY ("activeness safety check failed for X"); the script
retries ``insmod`` ``MAX_LOAD_ATTEMPTS`` = 5 times, ``RETRY_INTERVAL`` = 2 s apart,
but only on "Device or resource busy", then gives up: all or nothing. Inside
stop_machine nothing else runs, so no task is "running" at the check — but a
snapshot cannot show where a running task will be stopped.

**The kpatch tool over livepatch** (``livepatch=True``: a module kpatch-build
made for a kernel with CONFIG_LIVEPATCH; kpatch.ko plays no part). The kernel's
klp does the transition (:mod:`lpc.models.klp`, judged as is); the script's
``wait_for_patch_transition`` polls ``/sys/kernel/livepatch/<p>/transition``
for ``POST_ENABLE_WAIT`` = 15 s, writes 1 to ``/sys/kernel/livepatch/<p>/signal``
when that file exists (4.16–5.0; later kernels signal on their own), polls
``POST_SIGNAL_WAIT`` = 60 s more, and then gives up: ``disable_patch`` writes 0
to ``enabled`` — the kernel reverses the transition — and the script fails
("transition stalled"). So a transition that has not completed 75 s after
enable is reversed, not left pending: :func:`tool_waits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from lpc.models.base import (
    Model,
    RUNNABLE,
    Nudge,
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
    tally,
)
from lpc.models.klp import Klp

from lpc.patch import PatchFunction, replacement_of, still_enabled, top_entries

if TYPE_CHECKING:
    from lpc.kernel import Kernel
    from lpc.patch import Patch

MAX_STACK_TRACE_DEPTH = 64
#: kpatch/kpatch: MAX_LOAD_ATTEMPTS and RETRY_INTERVAL (insmod retried on EBUSY).
MAX_LOAD_ATTEMPTS = 5
RETRY_INTERVAL_S = 2.0
#: kpatch/kpatch wait_for_patch_transition: POST_ENABLE_WAIT, then (after the
#: signal) POST_SIGNAL_WAIT; then the script disables the patch and fails.
POST_ENABLE_WAIT_S = 15.0
POST_SIGNAL_WAIT_S = 60.0


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


def tool_waits(
    transition: TransitionOutcome, outcomes: Sequence[TaskOutcome],
    wait_s: float = POST_ENABLE_WAIT_S + POST_SIGNAL_WAIT_S,
) -> TransitionOutcome:
    """The kpatch script over a livepatch transition (kpatch/kpatch
    ``wait_for_patch_transition``, ``signal_stalled_processes``, then
    ``unload_module`` → ``disable_patch_strict``): what the kernel would finish
    only after ``wait_s`` seconds, or never, the script reverses instead.

    A task that switches within the wait (an ``after_signal`` outlook due 15 s
    after enable, say) is fine; one stuck, or due later than the wait, makes the
    script disable the patch; one whose outlook is unknown may or may not beat
    the deadline."""
    if transition.converges is True and (transition.eta_s or 0.0) <= wait_s:
        return transition
    late = [(o, n) for o, n in tally(outcomes)
            if o.outlook is Outlook.STUCK or (o.outlook is not Outlook.UNKNOWN and o.eta_s is not None
                                              and o.eta_s > wait_s)]
    giving_up = (f"the kpatch tool waits {POST_ENABLE_WAIT_S:g} s, signals, waits "
                 f"{POST_SIGNAL_WAIT_S:g} s more, then disables the patch: the kernel reverses "
                 "the transition and the load fails")
    if late:
        o = late[0][0]
        when = "never" if o.outlook is Outlook.STUCK else f"only after {o.eta_s:g} s"
        return TransitionOutcome(
            False, f"{sum(n for _, n in late)} task(s) switch {when} ({o.reason}); {giving_up}",
        )
    if transition.converges is True:  # every task converges, but the roll-up is late
        return TransitionOutcome(False, f"the transition needs {transition.eta_s:g} s; {giving_up}")
    return TransitionOutcome(
        transition.converges,
        f"{transition.reason}; unless they switch within {wait_s:g} s, {giving_up}",
    )


def activeness_functions(patch: Patch, loaded: Sequence[Patch]) -> Patch:
    """The functions ``kpatch_backtrace_address_verify()`` (kmod/core/core.c)
    compares return addresses with, for ``patch`` on top of the ``loaded``
    patches (oldest first), as :class:`~lpc.patch.PatchFunction` ranges.

    Per function of ``patch``: ``kpatch_get_func(old_addr)`` finds the active
    replacement — the newest loaded patch's, or this patch's own when it is
    being removed — and the range is that replacement's; with none, the
    original. With ``replace``, every function of every loaded patch (hash
    entries with op KPATCH_OP_UNPATCH) adds its replacement's range — all of
    them, where klp's nops look only at the newest (``Patch.checked_against``).
    (Functions marked KPATCH_FORCE_UNSAFE skip the check; a patch spec has no
    such mark, so none is skipped.)"""
    # Unpatching: the patch's own replacements are the active ones (it is on top).
    own = patch.checked_against(())
    enabled = [f for _, f in still_enabled(loaded)]
    # The newest registration is first in its hash bucket: the func_stack's
    # top, with the same rule when the loaded patches' order is unknown.
    active = top_entries(loaded)
    out: list[PatchFunction] = []
    for f, mine in zip(patch.functions, own.functions):
        now = [] if patch.unpatch else [g for _, g in active.get(f.key, [])]
        out.extend([replacement_of(g, f"{f.old_spec} (active replacement)") for g in now]
                   or [mine])
    if patch.replace:
        seen = {g.spec for g in out}
        for f in enabled:
            g = replacement_of(f, f"{f.old_spec} (replaced: KPATCH_OP_UNPATCH)")
            if g.spec not in seen:
                seen.add(g.spec)
                out.append(g)
    return replace(patch, functions=tuple(out))


@dataclass(frozen=True)
class Kpatch(Model):
    name: ClassVar[str] = "kpatch"
    max_depth: int = MAX_STACK_TRACE_DEPTH
    attempts: int = MAX_LOAD_ATTEMPTS
    #: Seconds between two insmod attempts (the script's RETRY_INTERVAL).
    insmod_retry_s: float = RETRY_INTERVAL_S
    #: The patch is a livepatch module: the kernel's klp transition, under the
    #: script's 75 s wait (see the module docstring), instead of kpatch.ko.
    livepatch: bool = False
    #: The load disables a patch (kpatch unload / a reversal).
    unpatching: bool = False

    #: The kernel's klp profile (Klp.kernel_params of the dump's kernel) that
    #: judges the transition when ``livepatch``; empty: the newest kernel's.
    klp_profile: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def kernel_params(cls, kernel: Kernel) -> dict[str, Any]:
        return {"klp_profile": tuple(sorted(Klp.kernel_params(kernel).items()))}

    @property
    def profile_name(self) -> str | None:
        return self._klp.profile_name if self.livepatch else None

    @cached_property
    def _klp(self) -> Klp:
        return Klp(**dict(self.klp_profile), unpatching=self.unpatching)

    @property
    def cell(self) -> tuple[str, str]:
        """kpatch.ko: one stop_machine instant; over livepatch, klp's per-thread switch."""
        return self._klp.cell if self.livepatch else ("PATCHED_SET", "KERNEL")

    @property
    def stack_source(self) -> StackSource:
        """save_stack_trace_tsk() (kpatch.ko), or klp's reliable walker."""
        return self._klp.stack_source if self.livepatch else StackSource.BEST_EFFORT

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """kpatch_apply_patch() inside stop_machine(), retried by the script."""
        return self._klp.switch_points if self.livepatch else (SwitchPoint.STOP_MACHINE,)

    @property
    def retry_interval_s(self) -> float:
        """The simulator's tick: the insmod retry, or klp's own retry pace."""
        return self._klp.retry_interval_s if self.livepatch else self.insmod_retry_s

    def with_patch(self, patch: Patch) -> Kpatch:
        return replace(self, unpatching=self.unpatching or patch.unpatch)

    def checked_functions(self, patch: Patch, loaded: Sequence[Patch]) -> Patch:
        """kpatch.ko's ranges (:func:`activeness_functions`); over livepatch, klp's."""
        if self.livepatch:
            return patch.checked_against(loaded)
        return activeness_functions(patch, loaded)

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """kpatch.ko nudges no one; over livepatch the kernel's klp_send_signals()
        does (the script's own signal, 4.16–5.0, comes at 15 s, as klp's does)."""
        return self._klp.nudge(retry, task) if self.livepatch else Nudge.NONE

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if self.livepatch:
            return self._klp.judge_task(t)
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
        # The depth counts what save_stack_trace_tsk() saves: no .sched.text frames.
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
        if self.livepatch:
            return tool_waits(self._klp.judge_transition(tasks, outcomes), outcomes)
        return all_or_nothing("kpatch", outcomes, self.attempts, self.insmod_retry_s)
