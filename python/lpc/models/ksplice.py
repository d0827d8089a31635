"""Ksplice (open-source era): LEAVE_PATCHED_SET + SWITCH_KERNEL, conservative scan.

From jirislaby/ksplice ``kmodsrc/ksplice.c``. ``patch_action()`` runs
``__apply_patches`` inside ``stop_machine()`` up to 5 times: after an attempt
that failed with CODE_BUSY it sleeps 1 s (``schedule_timeout(1000 ms)``) and
tries again; any other failure ends the loop at once, and after the fifth
CODE_BUSY the update is aborted ("stack check: to-be-replaced code is busy").

``check_each_task`` walks every thread (``do_each_thread``: not the idle tasks)
with ``check_task``; it goes on past a CODE_BUSY task (to list every
conflict) but returns at once on any other error. ``check_task``:

1. a ``TASK_DEAD`` task passes;
2. where the architecture allows it (``KSPLICE_CHECK_IP``) the saved IP, and
   always ``restart_block.fn`` of its thread_info, are compared with the ranges
   being replaced — the function a restarted system call would resume in, kept
   there long after the call (``INIT_THREAD_INFO`` and every ``sigreturn`` set it
   to ``do_no_restart_syscall``; an interrupted ``nanosleep``, ``poll`` or
   ``futex`` wait sets it to its restart function);
3. ``check_stack``: current's stack from its frame, or — for a task not on a CPU
   — *every word* from its saved stack pointer to the end of its thread stack.
   No unwinding: stale words count, so it can refuse a task klp would switch
   (false positives) but never misses a live frame. A dump's ``?`` frames are
   exactly such stale words: they count here;
4. a task on a CPU that is not a stop_machine thread (``is_stop_machine``: comm
   ``migration/N`` since 2.6.35, ``kstop/N`` before) is UNEXPECTED_RUNNING_TASK —
   not CODE_BUSY, so the update is aborted at the first attempt, without a retry.
   Inside stop_machine every CPU runs its stopper, so a task a snapshot shows on
   a CPU is normally stopped and scanned where it was; only one still on its CPU
   at the check aborts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

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
    tally,
)
from lpc.models.kpatch import all_or_nothing

if TYPE_CHECKING:
    from lpc.patch import Patch

#: patch_action(): ``for (i = 0; i < 5; i++)`` around stop_machine().
ATTEMPTS = 5
#: patch_action(): ``schedule_timeout(msecs_to_jiffies(1000))`` after a CODE_BUSY attempt.
RETRY_INTERVAL_S = 1.0
#: is_stop_machine(): the stopper threads' comm, ``migration/N`` (2.6.35+; ``kstop/`` before).
STOPPER_PREFIX = "migration/"
#: restart_block.fn of every thread that has not been interrupted in a restartable
#: sleep since its last sigreturn (INIT_THREAD_INFO, kernel/signal.c sys_restart_syscall).
RESTART_DEFAULT = "do_no_restart_syscall"
#: Restart functions an interrupted system call leaves in restart_block.fn
#: (kernel/hrtimer.c hrtimer_nanosleep_restart, kernel/posix-cpu-timers.c
#: posix_cpu_nsleep_restart, kernel/compat.c compat_nanosleep_restart,
#: kernel/futex.c futex_wait_restart, fs/select.c do_restart_poll,
#: kernel/time/alarmtimer.c alarm_timer_nsleep_restart).
RESTART_FUNCTIONS = frozenset({
    RESTART_DEFAULT, "hrtimer_nanosleep_restart", "posix_cpu_nsleep_restart",
    "compat_nanosleep_restart", "futex_wait_restart", "do_restart_poll",
    "alarm_timer_nsleep_restart",
})


@dataclass(frozen=True)
class Ksplice(Model):
    name: ClassVar[str] = "ksplice"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "KERNEL")
    attempts: int = ATTEMPTS
    retry_interval_s: float = RETRY_INTERVAL_S
    stopper_prefix: str = STOPPER_PREFIX
    #: The patch's functions that can be a thread's restart_block.fn (from the patch).
    restart_functions_patched: tuple[str, ...] = ()

    stack_source: ClassVar[StackSource] = StackSource.WORD_SCAN

    @property
    def comm_prefixes(self) -> tuple[str, ...]:
        """judge_task() reads the comm only to tell stop_machine threads."""
        return (self.stopper_prefix,)

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """__apply_patches() inside stop_machine(), up to `attempts` times."""
        return (SwitchPoint.STOP_MACHINE,)

    def with_patch(self, patch: Patch) -> Ksplice:
        """check_task() compares restart_block.fn with the replaced ranges: which
        of the patch's functions can be there."""
        hit = tuple(sorted(patch.names & RESTART_FUNCTIONS))
        return replace(self, restart_functions_patched=hit)

    def is_stop_machine(self, t: TaskFacts) -> bool:
        """ksplice.c is_stop_machine(): the comm is the prefix and a CPU number."""
        rest = t.comm[len(self.stopper_prefix):] if t.comm.startswith(self.stopper_prefix) else ""
        return bool(rest) and rest.isascii() and rest.isdigit()

    def judge_task(self, t: TaskFacts) -> TaskOutcome:
        if (dead := dead_task(t)) is not None:
            return dead
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED, "idle task: not on the thread list, never checked",
                errno=None, eta_s=0.0, extra={"unchecked": True},
            )
        if RESTART_DEFAULT in self.restart_functions_patched:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                f"restart_block.fn inside to-be-replaced code ({RESTART_DEFAULT}, which every "
                "thread holds from INIT_THREAD_INFO and each sigreturn): code is busy",
                errno="EBUSY",
            )
        if self.is_stop_machine(t) and not t.patched_frames_any:
            # At the check it runs the stop_machine callback: check_task() scans
            # the stack of current only (its stopper loop), never another stopper's.
            return TaskOutcome(
                Verdict.SWITCH, Outlook.SWITCHED,
                "a stop_machine thread: on its CPU at the check, and let be (is_stop_machine)",
                errno=None, eta_s=0.0,
            )
        if t.running and not self.is_stop_machine(t):
            return TaskOutcome(
                Verdict.RUNNING, Outlook.UNKNOWN,
                "running now: stop_machine normally stops it where this snapshot cannot show; "
                "were it still on its CPU at the check, check_task() would return "
                "UNEXPECTED_RUNNING_TASK and the update would be aborted without a retry",
                errno="EBUSY", extra={"abort": "UNEXPECTED_RUNNING_TASK"},
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
        if t.kind is not TaskKind.KTHREAD and self.restart_functions_patched:
            # Kernel threads never make a restartable system call: theirs stays the default.
            fns = ", ".join(self.restart_functions_patched)
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.UNKNOWN,
                f"restart_block.fn may point into to-be-replaced code ({fns}: left there by an "
                "interrupted restartable sleep until the next sigreturn); a snapshot cannot show it",
                errno="EBUSY",
            )
        return TaskOutcome(
            Verdict.SWITCH, Outlook.SWITCHED, "no stack word inside the replaced code", errno=None, eta_s=0.0
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        """patch_action(): CODE_BUSY (a stuck task) is retried ``attempts`` times;
        an UNEXPECTED_RUNNING_TASK abort is not retried."""
        outcome = all_or_nothing("ksplice", outcomes, self.attempts, self.retry_interval_s)
        running = sum(n for o, n in tally(outcomes) if o.extra.get("abort"))
        if outcome.converges is None and running:
            return replace(outcome, reason=(
                f"{outcome.reason}; {running} task(s) on a CPU now: if one is still there when "
                "stop_machine checks, the update is aborted at the first attempt (only CODE_BUSY "
                "is retried)"))
        return outcome
