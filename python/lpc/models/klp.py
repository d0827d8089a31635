"""Upstream livepatch since v4.12: LEAVE_PATCHED_SET + SWITCH_THREAD, the hybrid.

Josh Poimboeuf's per-thread stack check from the 2014 mail, without his freezer
step, plus kGraft's switch at kernel exit. Every rule below is read from
kernel/livepatch/transition.c unless another file is named; what changed in
which release (and the commits) is docs/kernel-profiles.md, and the model
follows the release of the dump it judges (:func:`klp_profile`).

Per task, ``klp_try_switch_task()`` decides, in this order:

1. no ``HAVE_RELIABLE_STACKTRACE`` (arm64 before 6.17, riscv...): the check is
   never attempted; tasks switch only at kernel exit and in the idle loop;
2. ``task_curr(task)`` → -EBUSY "is running" — on a CPU, not merely runnable:
   SysRq-t's "running task" is ``task_is_running()``, and a runnable task
   waiting for a CPU gets its stack checked like a sleeping one;
3. ``stack_trace_save_tsk_reliable()`` fails → -EINVAL "has an unreliable
   stack": a walk that stores entry ``MAX_STACK_ENTRIES`` (100) fails (5.2+;
   before, entry 101), and kernel-mode registers (a task interrupted or
   preempted in the kernel) stop every walker but x86_64's ORC;
4. a return address inside a to-be-(un)patched function → -EADDRINUSE
   "is sleeping on function X" (the range is the old function when patching,
   the new one when unpatching, the previous patch's new one when the function
   is already patched: :meth:`lpc.patch.Patch.checked_against`);
5. otherwise the task switches now.

A task that did not switch gets another chance at:

* kernel exit (``exit_to_user_mode_loop`` → ``klp_update_patch_state``), with no
  stack check at all — user tasks, once whatever sleep they are in ends;
* the idle loop after ``schedule_idle()``, kicked by ``wake_up_if_idle()`` — idle tasks;
* ``cond_resched()`` (6.4–6.15, ``__klp_sched_try_switch``) — a stack check of itself;
* 6.16+ instead: ``__schedule()`` of a task going to sleep with ``TASK_FREEZABLE``
  (``klp_sched_try_switch``, include/linux/livepatch_sched.h) — a check of itself;
* every retry, ``klp_try_complete_transition`` runs again from delayed work
  every ``round_jiffies_relative(HZ)`` ≈ 1 s;
* every ``SIGNALS_TIMEOUT`` (15) retries (5.1+; 4.16–5.0 only when the admin
  writes the ``signal`` attribute; never before 4.16), ``klp_send_signals``: user tasks get a fake
  signal that ends an *interruptible* sleep so the task leaves the kernel;
  kthreads get ``wake_up_state(TASK_INTERRUPTIBLE)``, which wakes only an
  interruptible sleeper — and a kthread waiting for a condition sleeps again in
  the same function.

There is no timeout: a transition that cannot finish stays pending until the
admin reverses it (``enabled`` ← the opposite) or forces it (``force`` ← 1,
4.16+: every task's state is set, the transition completes at the next retry,
and the modules of patches being removed stay pinned — every patch before 5.18).
Before 4.12 upstream has no transition at all: every task switches at once, as
in the null model — but distributions backported the per-task model, so a
release before 4.12 is judged per task and never said to converge unless
``consistency_model`` is set. An architecture without HAVE_LIVEPATCH (32-bit
x86, arm, mips, riscv; arm64 before 6.17) cannot load a patch at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

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
from lpc.models.null import Null

if TYPE_CHECKING:
    from lpc.kernel import Kernel
    from lpc.patch import Patch

#: transition.c: MAX_STACK_ENTRIES
MAX_STACK_ENTRIES = 100
#: transition.c: SIGNALS_TIMEOUT (retries between two rounds of fake signals)
SIGNALS_TIMEOUT = 15
#: transition.c: klp_transition_work is queued with round_jiffies_relative(HZ)
RETRY_INTERVAL_S = 1.0


# ---- the kernel profiles --------------------------------------------------------------------
#
# Each release of livepatch changed what a transition does; the table of what
# changed when, with the commits, is docs/kernel-profiles.md. The model takes
# its parameters from the dump's kernel (klp_profile); parameters given by the
# user win over the profile.

#: (release it first shipped in, what changed) — newest last.
PROFILES: tuple[tuple[tuple[int, int], str], ...] = (
    ((0, 0), "<4.12"),   # 4.0, b700e7f03df5: immediate redirection, no per-task state
    ((4, 12), "4.12+"),  # d83a7cb375ee: per-task consistency model
    # force: "livepatch: force transition to finish" (c99a2be790b0, id unverified);
    # 43347d56c8d9: the fake signal, sent when the admin writes `signal`
    ((4, 16), "4.16+"),
    ((5, 1), "5.1+"),    # 0b3d52790e1c: the fake signal is sent every SIGNALS_TIMEOUT retries
    ((5, 18), "5.18+"),  # 2957308343fa: force pins only patches being removed
    ((6, 4), "6.4–6.15"),  # e3ff7c609f39: the cond_resched() switch point
    ((6, 16), "6.16+"),  # 676e8cf70cb0: the switch moves into __schedule(), TASK_FREEZABLE sleeps
)
PROFILE_NAMES = frozenset(name for _, name in PROFILES)

#: First release with HAVE_LIVEPATCH per architecture (arch/*/Kconfig): x86_64
#: 4.0 upstream, but distributions backported it (RHEL 7's 3.10), so any
#: x86_64 release may have it; powerpc 4.7, s390 4.13, loongarch 6.9, arm64 6.17 (fd1e0fd71f65); no
#: other architecture selects it (32-bit x86, arm, mips, riscv: none).
LIVEPATCH_SINCE = {"x86_64": (0, 0), "powerpc": (4, 7), "s390": (4, 13),
                   "loongarch": (6, 9), "arm64": (6, 17)}
#: First release with HAVE_RELIABLE_STACKTRACE per architecture
#: (docs/kernel-profiles.md §6): x86_64 af085d9084b4 (frame pointers), ORC
#: 6415b38bae26 (4.18); powerpc df78d3f61480 (release not verified: 4.18 or
#: 4.19); s390 in the 5.5 merge window; loongarch with its livepatch support
#: (6.9); arm64 805f13e403cd (6.17).
RELIABLE_SINCE = {"x86_64": (4, 12), "powerpc": (4, 18), "s390": (5, 5),
                  "loongarch": (6, 9), "arm64": (6, 17)}
#: The ORC unwinder (x86_64, the distributions' default) walks through
#: kernel-mode registers, and refuses to walk a task running on another CPU
#: (arch/x86/kernel/unwind_orc.c __unwind_start, task_on_another_cpu), so such
#: a task prints no frame it can vouch for. The frame-pointer walker, arm64,
#: powerpc and s390 stop at kernel-mode registers and walk a running task's
#: stale frame as if it slept. It has reliable stacks only from 4.18
#: (6415b38bae26): in 4.14–4.17 a kernel built with it has none. LoongArch's
#: walker is ORC too (arch/loongarch/kernel/stacktrace.c) but is judged like the
#: others here: lpc has no LoongArch dump to hold it to.
ORC_SINCE = (4, 14)
ORC_RELIABLE_SINCE = (4, 18)


def klp_profile(kernel: Kernel) -> tuple[str, dict[str, Any], list[str]]:
    """The profile of ``kernel``: its name, the model parameters it sets and
    what was assumed because the input did not say it."""
    notes: list[str] = []
    v = kernel.version
    if v is None:
        notes.append("kernel release unknown: the newest profile (6.16+) is assumed; "
                     "--kernel-release names it")
        v = (99, 0, 0)
    label = next(name for since, name in reversed(PROFILES) if v[:2] >= since)
    consistency: bool | None = True
    if v[:2] < (4, 12):
        # Upstream patches every task at once before 4.12, but distributions
        # backported the per-task model (RHEL 7.5+ on 3.10): the release alone
        # does not tell which this kernel does.
        consistency = None
        notes.append(f"{kernel.release}: upstream livepatch before 4.12 switches every task at "
                     "once, but distributions backported the per-task model; judged per task, "
                     "the transition is unknown (-p consistency_model=false: at once, "
                     "=true: per task)")
    guessed = kernel.arch is None
    if guessed:
        notes.append("architecture unknown: x86_64 is assumed, with a walker that stops at "
                     "interrupt frames and walks running tasks (--arch names it)")
    arch: str = kernel.arch or "x86_64"
    since = LIVEPATCH_SINCE.get(arch)
    has_livepatch = since is not None and v[:2] >= since
    if not has_livepatch:
        notes.append(f"{arch} {kernel.release or ''}: no livepatch (HAVE_LIVEPATCH) on this "
                     "architecture and release: the patch cannot be loaded".replace("  ", " "))
    reliable_since = RELIABLE_SINCE.get(arch)
    reliable = reliable_since is not None and v[:2] >= reliable_since
    orc = arch == "x86_64" and v[:2] >= ORC_SINCE and not guessed
    if orc and v[:2] < ORC_RELIABLE_SINCE:
        # ORC was the default unwinder, without reliable stacks before 4.18.
        reliable, orc = False, False
        notes.append("x86_64 4.14–4.17: an ORC kernel (the default) has no reliable stack "
                     "traces before 4.18; -p reliable_stacks=true "
                     "-p regs_frames_unreliable=true for a frame-pointer kernel")
    elif orc:
        notes.append("x86_64: the ORC unwinder is assumed (interrupt frames are reliable, a "
                     "running task prints no stack); -p regs_frames_unreliable=true "
                     "-p running_stacks_hidden=false for a frame-pointer kernel")
    elif has_livepatch and not reliable:
        notes.append(f"{arch}: no HAVE_RELIABLE_STACKTRACE on this release: tasks switch only "
                     "at kernel exit and in the idle loop")
    params: dict[str, Any] = {
        "has_livepatch": has_livepatch,
        "consistency_model": consistency,
        "reliable_stacks": reliable,
        "regs_frames_unreliable": not orc,
        "running_stacks_hidden": orc,
        # kernel/stacktrace.c since 5.2: storing entry MAX_STACK_ENTRIES fails the walk;
        # the 4.x x86 save_stack_address() failed only on the entry after it.
        "walk_fails_at_limit": v[:2] >= (5, 2),
        "force_available": v[:2] >= (4, 16),
        "auto_signals": v[:2] >= (5, 1),
        "force_pins_always": v[:2] < (5, 18),
        "cond_resched_switch": (6, 4) <= v[:2] < (6, 16),
        "freezable_sleep_switch": v[:2] >= (6, 16),
        "profile": label,
    }
    return label, params, notes


@dataclass(frozen=True)
class Klp(Model):
    """The kernel's model; parameters default to the newest kernel's behaviour
    and constants (see :func:`klp_profile` for a given release)."""

    name: ClassVar[str] = "klp"
    cell: ClassVar[tuple[str, str]] = ("PATCHED_SET", "THREAD")
    #: The release's profile name (PROFILES), as reported.
    profile: str = PROFILES[-1][1]
    #: The architecture and release can load a livepatch at all (LIVEPATCH_SINCE).
    has_livepatch: bool = True
    #: 4.12+: per-task states (d83a7cb375ee); False: every task switches at once
    #: (upstream before 4.12); None: not known (a distribution kernel older than
    #: 4.12 may have the per-task model backported) — judged per task, and the
    #: transition is never said to converge.
    consistency_model: bool | None = True
    #: HAVE_RELIABLE_STACKTRACE (RELIABLE_SINCE).
    reliable_stacks: bool = True
    #: The reliable walker gives up at kernel-mode registers (frame pointers, arm64,
    #: powerpc, s390); x86_64's ORC walks through them.
    regs_frames_unreliable: bool = False
    #: ORC prints no trustworthy frame for a task running on another CPU, so a
    #: runnable task shown with a clean stack was off its CPU; other walkers print
    #: a running task's stale frame as if it slept.
    running_stacks_hidden: bool = True
    #: 5.2+: a walk that stores entry ``max_stack_entries`` fails; before, one more fits.
    walk_fails_at_limit: bool = True
    #: The cond_resched() switch point (6.4–6.15; commit e3ff7c609f39).
    cond_resched_switch: bool = False
    #: 6.16+: __schedule() calls klp_sched_try_switch(prev) for a task going to sleep
    #: with TASK_FREEZABLE in its state (include/linux/livepatch_sched.h, 676e8cf70cb0).
    freezable_sleep_switch: bool = True
    #: 5.1+: klp_try_complete_transition() sends the fake signals itself; 4.16–5.0
    #: only when the admin writes /sys/kernel/livepatch/<p>/signal; never before.
    auto_signals: bool = True
    #: 4.16+: /sys/kernel/livepatch/<p>/force exists.
    force_available: bool = True
    #: 4.16–5.17: force pins every patch module; 5.18+ only those being removed.
    force_pins_always: bool = False
    max_stack_entries: int = MAX_STACK_ENTRIES
    signals_timeout: int = SIGNALS_TIMEOUT
    retry_interval_s: float = RETRY_INTERVAL_S
    #: ``/sys/kernel/livepatch/<p>/force`` written: every task is set to the target.
    force: bool = False
    #: This transition unpatches (a disable, or a reversal mid-transition): the
    #: replacements' ranges are checked, and a forced removal pins the module.
    unpatching: bool = False
    #: The patch is an atomic replace (klp_patch.replace, 5.1+): forcing it pins the
    #: patches it replaces.
    replace: bool = False

    stack_source: ClassVar[StackSource] = StackSource.RELIABLE

    def __post_init__(self) -> None:
        if self.profile not in PROFILE_NAMES:
            raise ValueError(f"profile {self.profile!r}: not a klp profile (known: "
                             f"{', '.join(name for _, name in PROFILES)})")
        if self.force and not self.force_available:
            raise ValueError("force: this kernel has no /sys/kernel/livepatch/<p>/force "
                             "(it came in 4.16)")

    @classmethod
    def kernel_params(cls, kernel: Kernel) -> dict[str, Any]:
        return klp_profile(kernel)[1]

    @classmethod
    def kernel_notes(cls, kernel: Kernel) -> list[str]:
        return klp_profile(kernel)[2]

    @property
    def profile_name(self) -> str | None:
        return self.profile

    @property
    def rests_on_evidence(self) -> bool:
        # Without the per-task model every task switches at once, whatever its
        # stack holds.
        return self.consistency_model is not False

    @property
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Where transition.c, entry/common.c, sched/idle.c and sched/core.c call
        into livepatch.

        Without HAVE_RELIABLE_STACKTRACE klp_try_switch_task() gives up before
        any check, so only kernel exit and the idle loop switch tasks.
        """
        if self.consistency_model is False:
            return (SwitchPoint.IMMEDIATE,)
        if not self.reliable_stacks:
            return (SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP)
        points = [SwitchPoint.RETRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP]
        if self.cond_resched_switch:
            points.append(SwitchPoint.COND_RESCHED)
        if self.freezable_sleep_switch:
            points.append(SwitchPoint.FREEZABLE_SLEEP)
        return tuple(points)

    @property
    def signal_eta_s(self) -> float:
        return self.signals_timeout * self.retry_interval_s

    def with_patch(self, patch: Patch) -> Klp:
        # klp_init_transition(): unpatching checks the new functions' ranges.
        return replace(self, unpatching=self.unpatching or patch.unpatch,
                       replace=self.replace or patch.replace)

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """klp_try_complete_transition() after a pass that left tasks behind.

        Every pass: an idle task that could not switch gets wake_up_if_idle(),
        which sends its CPU through do_idle() (and klp_update_patch_state()).
        Every ``signals_timeout`` passes after the first (5.1+; before, only
        when the admin asks), klp_send_signals(): a fake signal to user tasks
        (it ends only an interruptible sleep) and wake_up_state(TASK_INTERRUPTIBLE)
        to kthreads (it wakes only interruptible ones, and does not pull them
        out of anything).
        """
        if task.kind is TaskKind.IDLE:
            return Nudge.KICK_IDLE if task.running else Nudge.NONE
        if not self.auto_signals or retry == 0 or retry % self.signals_timeout:
            return Nudge.NONE
        return signal_or_wake(task)

    def judge_task(self, task: TaskFacts) -> TaskOutcome:
        if self.consistency_model is False:
            return Null().judge_task(task)
        outcome = self._check(task)
        if self.force and outcome.outlook is not Outlook.SWITCHED:
            # klp_force_transition() sets every task's state; the transition
            # completes at the next run of klp_transition_work (≈ 1 s), not at once.
            return TaskOutcome(
                outcome.verdict,
                Outlook.SWITCHED,
                f"forced: {outcome.reason} — the consistency model may be broken for this task",
                errno=outcome.errno,
                eta_s=self.retry_interval_s,
                extra={"forced": True},
            )
        return outcome

    def _check(self, t: TaskFacts) -> TaskOutcome:
        # kernel/stacktrace.c: a task without a stack (a zombie) is "reliably" empty.
        if (dead := dead_task(t)) is not None:
            return dead
        if not self.reliable_stacks:
            return self._without_reliable_stacks(t)
        # klp_check_and_switch_task(): -EBUSY only for task_curr(), a task on a
        # CPU. A runnable task waiting for one is checked like a sleeping one.
        if t.running:
            return self._running(t)
        if t.on_cpu is None and t.state in RUNNABLE and not self.running_stacks_hidden:
            # Nothing says whether it was on a CPU, and this walker prints a running
            # task's stale frame as if it slept: the stack shown may not be its own.
            outcome = self._running(t)
            if t.kind in (TaskKind.USER, TaskKind.IDLE):
                return outcome  # on a CPU or not, it switches on its own way out
            return replace(outcome, outlook=Outlook.UNKNOWN, eta_s=None,
                           reason=f"runnable, perhaps on a CPU (this kernel's walker prints a "
                                  f"running task's stale stack): {outcome.reason}")
        if not self._walk_reliable(t):
            return self._unreliable(t)
        if t.patched_frame is not None:
            return self._sleeping_on(t)
        return TaskOutcome(
            Verdict.SWITCH, Outlook.SWITCHED, "no patched function on a reliable stack", errno=None, eta_s=0.0
        )

    def _too_deep(self, t: TaskFacts) -> bool:
        # kernel/stacktrace.c stack_trace_consume_entry() returns false once it has
        # stored entry number MAX_STACK_ENTRIES, and arch_stack_walk_reliable()
        # turns that into -EINVAL (5.2+): a stack of 100 entries is unreliable.
        # Before 5.2 the x86 walker failed only when entry 101 found no room.
        limit = self.max_stack_entries
        return t.depth >= limit if self.walk_fails_at_limit else t.depth > limit

    def _walk_reliable(self, t: TaskFacts) -> bool:
        """What stack_trace_save_tsk_reliable() would say of the stack shown."""
        if not t.stack_whole:
            return False
        if t.interrupted and self.regs_frames_unreliable:
            return False  # kernel-mode registers on the stack: the walk gives up
        return not self._too_deep(t)

    def _without_reliable_stacks(self, t: TaskFacts) -> TaskOutcome:
        # klp_try_switch_task() returns false before looking at the stack.
        why = "no reliable stack traces on this kernel"
        if t.kind is TaskKind.USER:
            return self._user_leaves_kernel(t, Verdict.UNRELIABLE, why, "EINVAL")
        if t.kind is TaskKind.IDLE:
            return self._idle_switches_in_do_idle(why)
        if t.kind is not TaskKind.KTHREAD:
            return TaskOutcome(
                Verdict.UNRELIABLE, Outlook.UNKNOWN,
                f"{why}: it switches only at kernel exit, and whether it is a kernel thread "
                f"(which has none) is unknown ({t.kind_evidence})", errno="EINVAL",
            )
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
        if t.kind is not TaskKind.KTHREAD:
            return TaskOutcome(
                Verdict.RUNNING, Outlook.UNKNOWN,
                f"is running, and whether it is a kernel thread (no kernel exit) is unknown "
                f"({t.kind_evidence}); checked again when it is off its CPU", errno="EBUSY",
            )
        if self.cond_resched_switch and self._walk_reliable(t) and t.patched_frame is None:
            # The dump shows the running stack (an NMI backtrace, the task printing
            # the dump): __klp_sched_try_switch() checks exactly that stack at
            # cond_resched() (6.4–6.15).
            return TaskOutcome(
                Verdict.RUNNING, Outlook.SWITCHED,
                "is running with no patched frame: switches itself at its next cond_resched()",
                errno="EBUSY", eta_s=self.retry_interval_s,
            )
        return TaskOutcome(
            Verdict.RUNNING, Outlook.UNKNOWN,
            f"is running; its stack is checked again {self._kthread_checks()}", errno="EBUSY",
        )

    def _kthread_checks(self) -> str:
        """Where a kernel thread that has not switched gets its next stack check."""
        if self.cond_resched_switch:
            return "at its next cond_resched() or at a retry while it is off its CPU"
        if self.freezable_sleep_switch:
            return ("when it goes to sleep with TASK_FREEZABLE (__schedule(), 6.16+: "
                    "cond_resched() no longer checks) or at a retry while it is off its CPU")
        return "only at a retry while it is off its CPU (no cond_resched() switch point " \
               "before 6.4)"

    def _unreliable(self, t: TaskFacts) -> TaskOutcome:
        if t.hidden_patched_text:
            why = "the dump cannot show the patched function (/proc stacks hide .sched.text)"
        elif self._too_deep(t):
            limit = (f"{self.max_stack_entries} entries or more" if self.walk_fails_at_limit
                     else f"more than {self.max_stack_entries} entries")
            why = f"a stack of {limit} counts as unreliable ({t.depth} here)"
        elif t.stack_whole and t.interrupted:
            why = ("an interrupt or exception frame is on the stack, and this kernel's "
                   "reliable walker gives up at kernel-mode registers")
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
        new = "the replacement " if self.unpatching else ""
        why = f"is sleeping on {new}function {fn}"
        if t.kind is TaskKind.USER:
            return self._user_leaves_kernel(t, Verdict.BLOCKED, why, "EADDRINUSE")
        if t.kind is TaskKind.IDLE:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.AFTER_WAKEUP,
                f"{why}; wake_up_if_idle() moves it on", errno="EADDRINUSE", eta_s=self.retry_interval_s,
            )
        if t.kind is TaskKind.KTHREAD:
            return self._kthread_sleeping_on(t, why)
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.UNKNOWN,
            f"{why}; whether it is a kernel thread is unknown ({t.kind_evidence})", errno="EADDRINUSE",
        )

    def _kthread_sleeping_on(self, t: TaskFacts, why: str) -> TaskOutcome:
        """A kthread is never pulled out of anything: klp_send_signals() only
        wakes it (wake_up_state(TASK_INTERRUPTIBLE)), and a thread waiting for a
        condition goes back to sleep where it was. It switches only once it
        sleeps (or, 6.16+, goes to a freezable sleep) outside the patched set."""
        if t.patched_frame_is_thread_fn:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.STUCK,
                f"{why}, its main loop: it is always asleep there, so this patch never "
                "converges without force",
                errno="EADDRINUSE",
            )
        if t.state in INTERRUPTIBLE:
            if self.auto_signals:
                woken = f"klp_send_signals() wakes it after {self.signals_timeout} retries"
            elif self.force_available:
                woken = "only an admin's write to the signal attribute wakes it (4.16–5.0)"
            else:
                woken = "nothing in livepatch wakes it (no fake signal before 4.16)"
            if t.patched_frame_in_sched_text:
                # Woken in a scheduler sleep primitive, a thread loop sleeps through
                # it again (khungtaskd, kcompactd in schedule_timeout:
                # tests/data/oracle/sched_text).
                where = "a scheduler sleep primitive a thread loop sleeps through again"
            else:
                where = "a thread waiting for a condition goes back to sleep in it"
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.UNKNOWN,
                f"{why}: {woken}, but {where}; it switches only if it then sleeps outside "
                f"the patched set{self._freezable_clause()}",
                errno="EADDRINUSE",
            )
        if t.state in RUNNABLE:
            return TaskOutcome(
                Verdict.BLOCKED, Outlook.UNKNOWN,
                f"{why}; runnable, so it may leave it when it next runs", errno="EADDRINUSE",
            )
        return TaskOutcome(
            Verdict.BLOCKED, Outlook.STUCK,
            f"{why} in state {t.state or '?'}: wake_up_state(TASK_INTERRUPTIBLE) cannot "
            "wake it; only the end of that sleep can move it",
            errno="EADDRINUSE",
        )

    def _freezable_clause(self) -> str:
        if self.freezable_sleep_switch:
            return " (a freezable sleep switches it at once, in __schedule())"
        return ""

    def _user_leaves_kernel(
        self, t: TaskFacts, verdict: Verdict, why: str, errno: str
    ) -> TaskOutcome:
        """A user task switches at kernel exit; the question is what gets it there."""
        if t.state in RUNNABLE:
            return TaskOutcome(
                verdict, Outlook.AT_KERNEL_EXIT, f"{why}; runnable: switches at kernel exit",
                errno=errno, eta_s=self.retry_interval_s,
            )
        if t.state in INTERRUPTIBLE and self.auto_signals:
            return TaskOutcome(
                verdict, Outlook.AFTER_SIGNAL,
                f"{why}; the fake signal after {self.signals_timeout} retries ends its sleep and "
                "it switches at kernel exit",
                errno=errno, eta_s=self.signal_eta_s,
            )
        if t.state in INTERRUPTIBLE:
            no_signal = ("before 5.1 no fake signal is sent unless the admin writes the patch's "
                         "signal attribute" if self.force_available else
                         "there is no fake signal before 4.16")
            return TaskOutcome(
                verdict, Outlook.AFTER_WAKEUP,
                f"{why}; {no_signal}: it switches at kernel exit once its sleep ends",
                errno=errno,
            )
        # The fake signal wakes only TASK_INTERRUPTIBLE sleepers (set_notify_signal,
        # signal_wake_up); a killable sleep ends only on a fatal signal. But the
        # sleep ends on its own (I/O completes, the lock is released) and the task
        # switches on its way out: when is not for livepatch to say — unless the
        # kernel's hung-task detector already said that sleep does not end.
        if t.hung:
            return TaskOutcome(
                verdict, Outlook.STUCK,
                f"{why} in state {t.state or '?'}, reported hung by the kernel's hung-task "
                "detector: fake signals do not end that sleep, and it has not ended on its own",
                errno=errno,
            )
        return TaskOutcome(
            verdict, Outlook.AFTER_WAKEUP,
            f"{why} in state {t.state or '?'}: fake signals do not end that sleep; it switches "
            "at kernel exit once the sleep ends on its own",
            errno=errno,
        )

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        if not self.has_livepatch:
            return TransitionOutcome(
                None, "this architecture and release have no livepatch (HAVE_LIVEPATCH): the "
                "patch cannot be loaded")
        if self.consistency_model is False:
            return Null().judge_transition(tasks, outcomes)
        summary = summarize(outcomes)
        if self.consistency_model is None and summary.converges is not False:
            return TransitionOutcome(
                None, f"{summary.reason}, if this kernel has the per-task model; upstream "
                "before 4.12 switches every task at once instead (-p consistency_model=…)")
        if self.force:
            # klp_force_transition() (core.c force_store) sets `forced` on the patches
            # whose module must then stay loaded: 4.16–5.17 every patch; 5.18+
            # (2957308343fa) only those being removed — this one when unpatching,
            # the replaced ones for an atomic replace.
            if self.force_pins_always or self.unpatching:
                pinned = "the patch module can never be removed"
            elif self.replace:
                pinned = "the modules of the patches it replaces can never be removed"
            else:
                pinned = "no module is pinned (5.18+: only patches being removed are)"
            return TransitionOutcome(
                True,
                f"forced: every task is set to the target state, and the transition completes "
                f"at the next retry; {pinned}",
                eta_s=self.retry_interval_s,
            )
        if summary.converges is False:
            return TransitionOutcome(
                False,
                summary.reason + " — the transition stays pending until reversed or forced",
            )
        return summary
