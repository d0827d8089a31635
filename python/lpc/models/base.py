"""What every consistency model shares: its inputs, its answers, its protocol.

A model never sees text. It sees :class:`TaskFacts` — what a snapshot (or the
simulator) knows about one task at one instant: its kind, its state, whether it
is on a CPU, whether its stack can be trusted, and the first frame inside the
patched set — and it answers two questions per task:

* the **verdict**: what the model's check does with the task *now*, named in the
  vocabulary of the kernel's ``klp_try_switch_task()``
  (kernel/livepatch/transition.c): ``switch``, ``blocked`` (-EADDRINUSE, a
  patched frame), ``running`` (-EBUSY), ``unreliable`` (-EINVAL);
* the **outlook**: what happens *next* under the model's switch points —
  ``switched`` (done now, or by the model's own action in this pass),
  ``at_kernel_exit``, ``after_signal``, ``after_wakeup``, ``stuck`` (never, short
  of force or reversal), ``unknown``.

and, for the whole transition, whether and when it completes.

The same functions serve snapshots (``lpc.check``) and the simulator: a model's
per-task decision is a pure function of :class:`TaskFacts` and its parameters.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class Verdict(str, Enum):
    SWITCH = "switch"
    BLOCKED = "blocked"
    RUNNING = "running"
    UNRELIABLE = "unreliable"


class Outlook(str, Enum):
    SWITCHED = "switched"
    AT_KERNEL_EXIT = "at_kernel_exit"
    AFTER_SIGNAL = "after_signal"
    AFTER_WAKEUP = "after_wakeup"
    STUCK = "stuck"
    UNKNOWN = "unknown"


#: Outlooks that end in the target state without anyone forcing it.
CONVERGING = frozenset(
    {Outlook.SWITCHED, Outlook.AT_KERNEL_EXIT, Outlook.AFTER_SIGNAL, Outlook.AFTER_WAKEUP}
)


class SwitchPoint(str, Enum):
    """Where a model moves a task (or the whole kernel) to the target universe.

    Snapshots never need this; the simulator (``lpc.sim``) drives these points,
    and asks ``judge_task()`` wherever the model's kernel code runs a check.
    """

    #: The periodic check (klp_try_complete_transition): judge_task() says ``switch``.
    RETRY = "retry"
    #: All or nothing at one instant (stop_machine), retried a few times.
    STOP_MACHINE = "stop_machine"
    #: Everyone at once when the patch is enabled (no per-task state).
    IMMEDIATE = "immediate"
    #: No switching at all: every call is redirected by its caller (parent_ip).
    PER_CALL = "per_call"
    #: One function flips for every task at a retry, when every task passes.
    FUNCTION_FLIP = "function_flip"
    #: A user task entering the kernel (syscall entry slow path), kernel stack empty.
    KERNEL_ENTRY = "kernel_entry"
    #: A user task returning to user space (exit_to_user_mode_loop), kernel stack empty.
    KERNEL_EXIT = "kernel_exit"
    #: The idle task at the tail of do_idle(), after schedule_idle() (kernel/sched/idle.c).
    IDLE_LOOP = "idle_loop"
    #: cond_resched(): the running task checks its own stack (v6.4+, __klp_sched_try_switch).
    COND_RESCHED = "cond_resched"
    #: Josh's freezer: freeze the task, then check its stack again.
    FREEZER = "freezer"
    #: kGraft: a kthread's try_to_freeze()/kgr_task_safe() point, with no stack check.
    KTHREAD_SAFE_POINT = "kthread_safe_point"


class StackSource(str, Enum):
    """Which stack walker a model's check reads (decides what the simulator shows it)."""

    #: Every frame, exactly (the idealised matrix cells).
    EXACT = "exact"
    #: stack_trace_save_tsk_reliable(): every frame, .sched.text included; an interrupt
    #: frame (a task preempted in the kernel) makes the trace unreliable.
    RELIABLE = "reliable"
    #: save_stack_trace_tsk(): best effort, drops .sched.text frames of other tasks
    #: (kernel/stacktrace.c stack_trace_consume_entry_nosched).
    BEST_EFFORT = "best_effort"
    #: Every word of the stack, stale ones included (ksplice check_stack()).
    WORD_SCAN = "word_scan"
    #: The model reads no stack.
    NONE = "none"


class TaskKind(str, Enum):
    USER = "user"
    KTHREAD = "kthread"
    IDLE = "idle"  # the per-CPU swapper tasks (pid 0)
    UNKNOWN = "unknown"


class Stack(str, Enum):
    """What is known of the task's kernel stack (mirrors the dump's stack_status)."""

    COMPLETE = "complete"
    EMPTY = "empty"
    UNREADABLE = "unreadable"
    UNWIND_FAILURE = "unwind_failure"
    TRUNCATED = "truncated"


# Task states as `ps` prints them; see fs/proc/array.c task_state_array.
INTERRUPTIBLE = frozenset({"S"})
UNINTERRUPTIBLE = frozenset({"D", "I"})  # TASK_IDLE (I) is uninterruptible + noload
RUNNABLE = frozenset({"R"})
#: Zombie / dead: the task has exited; kernel/stacktrace.c treats a task without
#: a stack as "reliably" empty, and kpatch/Ksplice/kGraft skip or pass it too.
DEAD = frozenset({"Z", "X"})


@dataclass(frozen=True)
class TaskFacts:
    """Everything a model may know about one task at one instant."""

    index: int
    pid: int | None
    tid: int | None
    comm: str
    state: str | None
    kind: TaskKind
    #: Why `kind` is what it is ("PF_KTHREAD in /proc stat", "RIP: 0033 user registers", ...).
    kind_evidence: str
    on_cpu: bool | None
    stack: Stack
    depth: int
    #: Position (0 = innermost) of the first reliable frame inside the patched set.
    patched_frame: int | None = None
    #: Name of the patched function that frame belongs to.
    patched_function: str | None = None
    #: True when that frame is the kthread's main-loop function (the frame `kthread()` called).
    patched_frame_is_thread_fn: bool = False
    #: Names of the reliable frames, innermost first (used by models that reason about paths).
    frames: tuple[str, ...] = ()
    #: Frames (by position) inside the patched set, innermost first, including `?` frames.
    patched_frames_any: tuple[int, ...] = ()
    #: The source cannot show where the patched function would be (e.g. /proc hides .sched.text).
    hidden_patched_text: bool = False
    #: Kernel-thread freezability when known (None = unknown).
    freezable: bool | None = None
    #: The patched frame lies in .sched.text or the lock text: a scheduler or lock
    #: sleep primitive (schedule_timeout, ...), which a woken loop sleeps through again.
    patched_frame_in_sched_text: bool = False

    @property
    def running(self) -> bool:
        """On a CPU, or (when the source does not say) runnable with no stack to show."""
        if self.on_cpu is not None:
            return self.on_cpu
        return self.state in RUNNABLE and self.stack is Stack.EMPTY

    @property
    def dead(self) -> bool:
        return self.state in DEAD

    @property
    def stack_trusted(self) -> bool:
        return self.stack is Stack.COMPLETE and not self.hidden_patched_text


@dataclass(frozen=True)
class TaskOutcome:
    verdict: Verdict
    outlook: Outlook
    #: One sentence a live-patch engineer can act on.
    reason: str
    #: The kernel error the verdict mirrors, when there is one ("EBUSY", "EINVAL", "EADDRINUSE").
    errno: str | None = None
    #: Worst-case seconds until the task switches under the model's defaults, when bounded.
    eta_s: float | None = None
    #: Model-specific facts (e.g. the null model's "executing old code").
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionOutcome:
    converges: bool | None
    reason: str
    #: Worst-case seconds to completion under the model's defaults, when bounded.
    eta_s: float | None = None


class Model(Protocol):
    """One consistency model. Implementations are small, pure, and parameterised.

    ``judge_task`` may not read a task's identity (``index``, ``pid``,
    ``tid``, ``comm``) except through comm prefixes the model declares in an
    optional ``comm_prefixes`` attribute (kGraft's known kthreads): snapshots
    judge one task per group of tasks with equal facts, and that is the only
    part of the identity the groups know.
    """

    @property
    def name(self) -> str: ...

    @property
    def cell(self) -> tuple[str, str]:
        """Vojtech Pavlik's classification, e.g. ("PATCHED_SET", "THREAD")."""
        ...

    def judge_task(self, task: TaskFacts) -> TaskOutcome: ...

    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome: ...


def dead_task(t: TaskFacts) -> TaskOutcome | None:
    """The common first rule: an exited task holds no stack and switches."""
    if not t.dead:
        return None
    return TaskOutcome(
        Verdict.SWITCH, Outlook.SWITCHED,
        "has exited (zombie): no stack left, so nothing on it can be patched", None, 0.0,
    )


class TalliedOutcomes(Sequence[TaskOutcome]):
    """Per-task outcomes that know how many tasks share each distinct outcome.

    A snapshot of half a million tasks holds a few dozen distinct situations;
    ``lpc.check`` judges one task per situation and hands models this view, so
    that a transition's roll-up costs one step per distinct outcome, not one
    per task. A plain list works everywhere a tallied sequence does.
    """

    @abstractmethod
    def tally(self) -> list[tuple[TaskOutcome, int]]:
        """Each distinct outcome and its number of tasks, in order of first appearance."""


def tally(outcomes: Sequence[TaskOutcome]) -> list[tuple[TaskOutcome, int]]:
    """Each distinct outcome object and how many tasks share it, in task order
    of first appearance (``first[0]`` of any kind is the earliest such task's)."""
    if isinstance(outcomes, TalliedOutcomes):
        return outcomes.tally()
    first: dict[int, TaskOutcome] = {}
    counts: dict[int, int] = {}
    for o in outcomes:
        key = id(o)
        first.setdefault(key, o)
        counts[key] = counts.get(key, 0) + 1
    return [(o, counts[key]) for key, o in first.items()]


def count_where(outcomes: Sequence[TaskOutcome], outlook: Outlook) -> tuple[int, TaskOutcome | None]:
    """How many tasks have this outlook, and the first such task's outcome."""
    hits = [(o, n) for o, n in tally(outcomes) if o.outlook is outlook]
    return sum(n for _, n in hits), (hits[0][0] if hits else None)


def summarize(outcomes: Sequence[TaskOutcome], eta_cap: float | None = None) -> TransitionOutcome:
    """The usual per-thread roll-up: stuck anywhere → no; unknown anywhere → maybe; else yes."""
    stuck, first_stuck = count_where(outcomes, Outlook.STUCK)
    unknown, first_unknown = count_where(outcomes, Outlook.UNKNOWN)
    if first_stuck is not None:
        return TransitionOutcome(False, f"{stuck} task(s) can never switch: {first_stuck.reason}")
    if first_unknown is not None:
        return TransitionOutcome(
            None, f"{unknown} task(s) with an unknown outlook: {first_unknown.reason}"
        )
    etas = [o.eta_s for o, _ in tally(outcomes) if o.eta_s is not None]
    eta = max(etas, default=0.0)
    if eta_cap is not None:
        eta = min(eta, eta_cap)
    return TransitionOutcome(True, "every task reaches the target state", eta)
