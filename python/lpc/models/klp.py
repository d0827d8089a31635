"""Upstream livepatch since v4.12: LEAVE_PATCHED_SET + SWITCH_THREAD, the hybrid.

Josh Poimboeuf's per-thread stack check from the 2014 mail, without his freezer
step, plus kGraft's switch at kernel exit. Every rule below is read from
kernel/livepatch/transition.c unless another file is named.

Per task, ``klp_try_switch_task()`` decides, in this order:

1. no ``HAVE_RELIABLE_STACKTRACE``: the check is never attempted; tasks switch
   only at kernel exit and in the idle loop;
2. ``task_curr(task)`` → -EBUSY "is running";
3. ``stack_trace_save_tsk_reliable()`` fails, or the stack is deeper than
   ``MAX_STACK_ENTRIES`` (100) → -EINVAL "has an unreliable stack";
4. a return address inside a to-be-(un)patched function → -EADDRINUSE
   "is sleeping on function X" (the range is the old function when patching,
   the new one when unpatching: the caller's scan already chose it);
5. otherwise the task switches now.

A task that did not switch gets another chance at:

* kernel exit (``exit_to_user_mode_loop`` → ``klp_update_patch_state``), with no
  stack check at all — user tasks;
* the idle loop after ``schedule_idle()``, kicked by ``wake_up_if_idle()`` — idle tasks;
* ``cond_resched()`` (v6.4+, ``__klp_sched_try_switch``) — a stack check of itself;
* every retry, ``klp_try_complete_transition`` runs again from delayed work
  every ``round_jiffies_relative(HZ)`` ≈ 1 s;
* every ``SIGNALS_TIMEOUT`` (15) retries, ``klp_send_signals``: user tasks get a
  fake signal (``set_notify_signal``) that ends an *interruptible* sleep so the
  task leaves the kernel; kthreads get ``wake_up_state(TASK_INTERRUPTIBLE)``,
  which does nothing to running, uninterruptible or TASK_IDLE kthreads.

There is no timeout: a transition that cannot finish stays pending until the
admin reverses it (``enabled`` ← the opposite) or forces it (``force`` ← 1,
which sets every task's state and makes the module unremovable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

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

if TYPE_CHECKING:
    from lpc.patch import Patch

#: transition.c: MAX_STACK_ENTRIES
MAX_STACK_ENTRIES = 100
#: transition.c: SIGNALS_TIMEOUT (retries between two rounds of fake signals)
SIGNALS_TIMEOUT = 15
#: transition.c: klp_transition_work is queued with round_jiffies_relative(HZ)
RETRY_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Klp(Model):
    """The kernel's model; parameters default to the kernel's constants."""

    name: ClassVar[str] = "klp"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "THREAD")
    #: HAVE_RELIABLE_STACKTRACE (x86_64 with ORC, arm64 ≥ 6.x, s390, ppc64le, ...).
    reliable_stacks: bool = True
    #: The cond_resched() switch point (v6.4+; commit e3ff7c609f39).
    cond_resched_switch: bool = True
    max_stack_entries: int = MAX_STACK_ENTRIES
    signals_timeout: int = SIGNALS_TIMEOUT
    retry_interval_s: float = RETRY_INTERVAL_S
    #: ``/sys/kernel/livepatch/<p>/force`` written: every task is set to the target.
    force: bool = False
    #: This transition unpatches (a disable, or a reversal mid-transition).
    unpatching: bool = False

    stack_source: ClassVar[StackSource] = StackSource.RELIABLE

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Where transition.c, entry/common.c and sched/idle.c call into livepatch.

        Without HAVE_RELIABLE_STACKTRACE klp_try_switch_task() gives up before
        any check, so only kernel exit and the idle loop switch tasks.
        """
        if not self.reliable_stacks:
            return (SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP)
        points = [SwitchPoint.RETRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP]
        if self.cond_resched_switch:
            points.append(SwitchPoint.COND_RESCHED)
        return tuple(points)

    @property
    def signal_eta_s(self) -> float:
        return self.signals_timeout * self.retry_interval_s

    def with_patch(self, patch: Patch) -> Klp:
        # klp_init_transition(): unpatching checks the new functions' ranges.
        return replace(self, unpatching=self.unpatching or patch.unpatch)

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """klp_try_complete_transition() after a pass that left tasks behind.

        Every pass: an idle task that could not switch gets wake_up_if_idle(),
        which sends its CPU through do_idle() (and klp_update_patch_state()).
        Every ``signals_timeout`` passes after the first, klp_send_signals(): a
        fake signal to user tasks (it ends only an interruptible sleep) and
        wake_up_state(TASK_INTERRUPTIBLE) to kthreads (it wakes only
        interruptible ones, and does not pull them out of anything).
        """
        if task.kind is TaskKind.IDLE:
            return Nudge.KICK_IDLE if task.running else Nudge.NONE
        if retry == 0 or retry % self.signals_timeout:
            return Nudge.NONE
        return signal_or_wake(task)

    def judge_task(self, task: TaskFacts) -> TaskOutcome:
        outcome = self._check(task)
        if self.force and outcome.outlook is not Outlook.SWITCHED:
            return TaskOutcome(
                outcome.verdict,
                Outlook.SWITCHED,
                f"forced: {outcome.reason} — the consistency model may be broken for this task",
                errno=outcome.errno,
                eta_s=0.0,
                extra={"forced": True},
            )
        return outcome

    def _check(self, t: TaskFacts) -> TaskOutcome:
        # kernel/stacktrace.c: a task without a stack (a zombie) is "reliably" empty.
        if (dead := dead_task(t)) is not None:
            return dead
        if not self.reliable_stacks:
            return self._without_reliable_stacks(t)
        if t.running:
            return self._running(t)
        # kernel/stacktrace.c stack_trace_consume_entry() returns false once it has
        # stored entry number MAX_STACK_ENTRIES, and arch_stack_walk_reliable() turns
        # that into -EINVAL: a stack of 100 entries is already unreliable.
        if not t.stack_trusted or t.depth >= self.max_stack_entries:
            return self._unreliable(t)
        if t.patched_frame is not None:
            return self._sleeping_on(t)
        return TaskOutcome(
            Verdict.SWITCH, Outlook.SWITCHED, "no patched function on a reliable stack", errno=None, eta_s=0.0
        )

    def _without_reliable_stacks(self, t: TaskFacts) -> TaskOutcome:
        # klp_try_switch_task() returns false before looking at the stack.
        why = "no reliable stack traces on this kernel"
        if t.kind is TaskKind.USER:
            return self._user_leaves_kernel(t, Verdict.UNRELIABLE, why, "EINVAL")
        if t.kind is TaskKind.IDLE:
            return self._idle_switches_in_do_idle(why)
        return TaskOutcome(
            Verdict.UNRELIABLE, Outlook.STUCK,
            f"{why}: a kernel thread has no kernel exit to switch at", errno="EINVAL",
        )

    def _idle_switches_in_do_idle(self, why: str) -> TaskOutcome:
        # do_idle() calls klp_update_patch_state() with no stack check at all.
        return TaskOutcome(
            Verdict.UNRELIABLE, Outlook.AFTER_WAKEUP, f"{why}; switches in do_idle()",
            errno="EINVAL", eta_s=self.retry_interval_s,
        )

    def _running(self, t: TaskFacts) -> TaskOutcome:
        if t.kind is TaskKind.USER:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.AT_KERNEL_EXIT,
                "is running; switches at its next return to user space", errno="EBUSY",
                eta_s=self.retry_interval_s,
            )
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.AFTER_WAKEUP,
                "idle on its CPU; wake_up_if_idle() sends it through do_idle(), where it switches",
                errno="EBUSY", eta_s=self.retry_interval_s,
            )
        if (
            self.cond_resched_switch
            and t.stack_trusted
            and t.patched_frame is None
            and t.depth < self.max_stack_entries  # the same klp_check_stack() limit
        ):
            # The dump shows the running stack (an NMI backtrace, "running task"):
            # __klp_sched_try_switch() checks exactly that stack at cond_resched().
            return TaskOutcome(
                Verdict.RUNNING, Outlook.SWITCHED,
                "is running with no patched frame: switches itself at its next cond_resched()",
                errno="EBUSY", eta_s=self.retry_interval_s,
            )
        where = (
            "at its next cond_resched() or when it sleeps"
            if self.cond_resched_switch
            else "only when it sleeps (no cond_resched() switch point before v6.4)"
        )
        return TaskOutcome(
            Verdict.RUNNING, Outlook.UNKNOWN,
            f"is running; its stack is checked again {where}", errno="EBUSY",
        )

    def _unreliable(self, t: TaskFacts) -> TaskOutcome:
        if t.hidden_patched_text:
            why = "the dump cannot show the patched function (/proc stacks hide .sched.text)"
        elif t.depth >= self.max_stack_entries:
            why = f"a stack of {self.max_stack_entries} entries or more counts as unreliable"
        else:
            why = t.stack_problem
        if t.kind is TaskKind.USER:
            return self._user_leaves_kernel(t, Verdict.UNRELIABLE, why, "EINVAL")
        if t.kind is TaskKind.IDLE:
            return self._idle_switches_in_do_idle(why)
        return TaskOutcome(
            Verdict.UNRELIABLE, Outlook.UNKNOWN,
            f"{why}; retried every {self.retry_interval_s:g} s", errno="EINVAL",
        )

    def _sleeping_on(self, t: TaskFacts) -> TaskOutcome:
        fn = t.patched_function or "a patched function"
        why = f"is sleeping on function {fn}"
        if t.kind is TaskKind.USER:
            return self._user_leaves_kernel(t, Verdict.BLOCKED, why, "EADDRINUSE")
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.AFTER_WAKEUP,
                f"{why}; wake_up_if_idle() moves it on", errno="EADDRINUSE", eta_s=self.retry_interval_s,
            )
        if t.kind is TaskKind.KTHREAD:
            if t.patched_frame_is_thread_fn:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.STUCK,
                    f"{why}, its main loop: it is always asleep there, so this patch never "
                    "converges without force",
                    errno="EADDRINUSE",
                )
            if t.state in INTERRUPTIBLE and t.patched_frame_in_sched_text:
                # The fake signal only wakes a kthread (wake_up_state); it does not
                # make it leave anything. Woken in a scheduler sleep primitive, a
                # thread loop sleeps through that primitive again (khungtaskd,
                # kcompactd in schedule_timeout: tests/data/oracle/sched_text).
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.UNKNOWN,
                    f"{why}, a scheduler sleep primitive: klp_send_signals() wakes it, but a "
                    "thread loop sleeps through it again unless it next sleeps elsewhere",
                    errno="EADDRINUSE",
                )
            if t.state in INTERRUPTIBLE:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.AFTER_WAKEUP,
                    f"{why}; woken by klp_send_signals() after {self.signals_timeout} retries",
                    errno="EADDRINUSE", eta_s=self.signal_eta_s,
                )
            if t.state in RUNNABLE:
                return TaskOutcome(
                    Verdict.BLOCKED, Outlook.UNKNOWN,
                    f"{why}; runnable, so it may leave it when it next runs", errno="EADDRINUSE",
                )
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                f"{why} in state {t.state or '?'}: wake_up_state(TASK_INTERRUPTIBLE) cannot "
                "wake it",
                errno="EADDRINUSE",
            )
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.UNKNOWN,
            f"{why}; whether it is a kernel thread is unknown ({t.kind_evidence})", errno="EADDRINUSE",
        )

    def _user_leaves_kernel(
        self, t: TaskFacts, verdict: Verdict, why: str, errno: str
    ) -> TaskOutcome:
        """A user task switches at kernel exit; the question is what gets it there."""
        if t.state in RUNNABLE:
            return TaskOutcome(
                verdict, Outlook.AT_KERNEL_EXIT, f"{why}; runnable: switches at kernel exit",
                errno=errno, eta_s=self.retry_interval_s,
            )
        if t.state in INTERRUPTIBLE:
            return TaskOutcome(
                verdict, Outlook.AFTER_SIGNAL,
                f"{why}; the fake signal after {self.signals_timeout} retries ends its sleep and "
                "it switches at kernel exit",
                errno=errno, eta_s=self.signal_eta_s,
            )
        return TaskOutcome(
            verdict, Outlook.STUCK,
            f"{why} in state {t.state or '?'}: fake signals do not end that sleep; it switches "
            "only when the sleep ends on its own",
            errno=errno,
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        summary = summarize(outcomes)
        if self.force:
            return TransitionOutcome(
                True,
                "forced: every task is set to the target state; the patch module can never be "
                "removed",
                eta_s=0.0,
            )
        if summary.converges is False:
            return TransitionOutcome(
                False,
                summary.reason + " — the transition stays pending until reversed or forced",
            )
        return summary
