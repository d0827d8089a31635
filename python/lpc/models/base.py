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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, final

from lpc.dump import StackStatus
from lpc.kernel import DEAD, INTERRUPTIBLE, RUNNABLE, UNINTERRUPTIBLE

if TYPE_CHECKING:
    from lpc.kernel import Kernel
    from lpc.patch import Patch

__all__ = [
    "CONVERGING",
    "DEAD",
    "INTERRUPTIBLE",
    "RUNNABLE",
    "UNINTERRUPTIBLE",
    "Model",
    "Nudge",
    "Outlook",
    "Stack",
    "StackSource",
    "SwitchPoint",
    "TalliedOutcomes",
    "TaskFacts",
    "TaskKind",
    "TaskOutcome",
    "TransitionOutcome",
    "Verdict",
    "count_where",
    "dead_task",
    "signal_or_wake",
    "summarize",
    "tally",
]


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
    and asks ``judge()`` wherever the model's kernel code runs a check.
    """

    #: The periodic check (klp_try_complete_transition): judge() says ``switch``.
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
    #: __schedule() for a task going to sleep with TASK_FREEZABLE in its state: it
    #: checks its own stack (6.16+, klp_sched_try_switch; include/linux/livepatch_sched.h).
    FREEZABLE_SLEEP = "freezable_sleep"
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


#: What is known of the task's kernel stack: the dump's own enum (one on the
#: Python side; its values come from the Rust parser).
Stack = StackStatus


def _identity() -> dict[str, Any]:
    """Metadata of a TaskFacts field no model may read (see :class:`Model`)."""
    return {"identity": True}


def _judged(key: str) -> dict[str, Any]:
    """Metadata of a TaskFacts field models read: ``key`` names the column of
    :class:`lpc.facts.TaskTable` that determines it, so tasks grouped by those
    columns have equal values of the field (a field without one fails at import)."""
    return {"key": key}


@dataclass(frozen=True)
class TaskFacts:
    """Everything a model may know about one task at one instant.

    Each field's metadata says whether it is the task's identity (``identity``:
    models may not read it) or a judged fact, and which column of the dump's
    task table determines it (``key``): snapshots judge one task per group of
    tasks whose key columns are equal, so a new field must name its column.
    """

    index: int = field(metadata=_identity())
    pid: int | None = field(metadata=_identity())
    tid: int | None = field(metadata=_identity())
    comm: str = field(metadata=_identity())
    state: str | None = field(metadata=_judged("states"))
    kind: TaskKind = field(metadata=_judged("kind_groups"))
    #: Why `kind` is what it is ("PF_KTHREAD in /proc stat", "RIP: 0033 user registers", ...).
    kind_evidence: str = field(metadata=_judged("kind_groups"))
    on_cpu: bool | None = field(metadata=_judged("on_cpus"))
    stack: Stack = field(metadata=_judged("stack_codes"))
    depth: int = field(metadata=_judged("depth"))
    #: Position (0 = innermost) of the first reliable frame inside the patched set.
    patched_frame: int | None = field(default=None, metadata=_judged("first"))
    #: Name of the patched function that frame belongs to.
    patched_function: str | None = field(default=None, metadata=_judged("function"))
    #: True when that frame is the kthread's main-loop function (the frame `kthread()` called).
    patched_frame_is_thread_fn: bool = field(default=False, metadata=_judged("thread_fn"))
    #: Names of every frame as the source shows it, innermost first. Models read them only at
    #: the positions of ``patched_frames_any`` (what the grouping key holds).
    frames: tuple[str, ...] = field(default=(), metadata=_judged("hit_sequences"))
    #: Frames (by position) inside the patched set, innermost first, including `?` frames.
    patched_frames_any: tuple[int, ...] = field(default=(), metadata=_judged("hit_sequences"))
    #: The source cannot show where the patched function would be (e.g. /proc hides .sched.text).
    hidden_patched_text: bool = field(default=False, metadata=_judged("stack_codes"))
    #: Kernel-thread freezability when known (None = unknown); from the comm, which
    #: the kind's group key reads through its prefixes.
    freezable: bool | None = field(default=None, metadata=_judged("kind_groups"))
    #: The patched frame lies in .sched.text or the lock text: a scheduler or lock
    #: sleep primitive (schedule_timeout, ...), which a woken loop sleeps through again.
    patched_frame_in_sched_text: bool = field(default=False, metadata=_judged("function"))
    #: The kernel's hung-task detector reported the task: its D sleep has lasted
    #: hung_task_timeout_secs already (kernel/hung_task.c check_hung_task).
    hung: bool = field(default=False, metadata=_judged("hung"))
    #: An interrupt or exception entry is on the stack (kernel-mode registers
    #: between it and the interrupted code): a frame-pointer walker gives up there.
    interrupted: bool = field(default=False, metadata=_judged("interrupted_column"))
    #: What was lost on the way from the kernel to these facts, when something was
    #: (a frame that cannot be pinned to a function, an offset outside its
    #: function, ...): the stack is then incomplete, whatever its status says.
    evidence_lost: str | None = field(default=None, metadata=_judged("lost_codes"))
    #: The source line of that loss (a damaged line, the line a stack was cut at).
    evidence_line: int | None = field(default=None, metadata=_identity())

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
    def stack_whole(self) -> bool:
        """The stack as shown is the whole stack: complete, nothing hidden or lost."""
        return (self.stack is Stack.COMPLETE and not self.hidden_patched_text
                and self.evidence_lost is None)

    @property
    def stack_trusted(self) -> bool:
        """The whole stack, as a frame-pointer walker would vouch for it: no
        interrupt frame on it (a model whose kernel walks through interrupt
        frames reads :attr:`stack_whole` and says so itself)."""
        return self.stack_whole and not self.interrupted

    @property
    def stack_problem(self) -> str:
        """Why the stack cannot be trusted, in a few words (for a verdict's reason)."""
        if self.evidence_lost is not None:
            why = f"stack is incomplete: {self.evidence_lost}"
        elif self.stack is Stack.COMPLETE and self.interrupted:
            why = "an interrupt or exception frame is on the stack (kernel-mode registers)"
        else:
            why = f"stack is {self.stack.value}"
        if self.patched_frame is None and self.patched_frames_any:
            # Older unwinders print every frame as a `?` guess: the patched
            # function is there, the walker just cannot vouch for it.
            name = self.frames[self.patched_frames_any[0]]
            why += f"; patched {name} is on it, but only as a frame the unwinder could not vouch for"
        return why


@dataclass(frozen=True)
class TaskOutcome:
    verdict: Verdict
    outlook: Outlook
    #: One sentence a live-patch engineer can act on.
    reason: str
    _: KW_ONLY
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
    _: KW_ONLY
    #: Worst-case seconds to completion under the model's defaults, when bounded.
    eta_s: float | None = None


class Nudge(str, Enum):
    """What a model does to a task that has not switched, at a retry.

    The simulator carries it out; a snapshot's outlook predicts its effect.
    """

    NONE = "none"
    #: set_notify_signal(): a user task's interruptible sleep ends, the system
    #: call returns towards user space (kernel/livepatch/transition.c klp_send_signals).
    FAKE_SIGNAL = "fake_signal"
    #: wake_up_state(TASK_INTERRUPTIBLE): a kthread in an interruptible sleep runs
    #: again (and may go back to sleep where it was).
    WAKE_INTERRUPTIBLE = "wake_interruptible"
    #: wake_up_if_idle(): an idle CPU goes once more through do_idle().
    KICK_IDLE = "kick_idle"
    #: wake_up_process(): a kthread asleep in TASK_NORMAL — interruptible or
    #: not — runs again (kGraft's kgr_wakeup_kthreads / kgr_send_fake_signal),
    #: and may go back to sleep where it was.
    WAKE_PROCESS = "wake_process"


class Model(ABC):
    """One consistency model: everything an engine reads from it is declared here.

    A model is a small frozen value (a dataclass of its parameters). It never
    sees text: snapshots (:mod:`lpc.check`) and the simulator (:mod:`lpc.sim`)
    both hand it :class:`TaskFacts`, built by the same code (:mod:`lpc.facts`).

    ``judge_task`` may not read a task's identity (``index``, ``pid``, ``tid``,
    ``comm``) except through the comm prefixes the model declares in
    :attr:`comm_prefixes`: snapshots judge one task per group of tasks with
    equal facts, and that is the only part of the identity the groups know.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """The name ``lpc check --model`` knows it by."""

    @property
    @abstractmethod
    def cell(self) -> tuple[str, str]:
        """Vojtech Pavlik's classification (LEAVE, SWITCH), e.g. ("PATCHED_SET", "THREAD")."""

    @property
    @abstractmethod
    def stack_source(self) -> StackSource:
        """The stack walker the model's check reads (what the simulator shows it)."""

    @property
    @abstractmethod
    def switch_points(self) -> tuple[SwitchPoint, ...]:
        """Where tasks (or the whole kernel) move to the target: the simulator
        reaches these points, and chooses its driver from them."""

    @property
    def retry_interval_s(self) -> float:
        """Seconds between two periodic checks (the simulator's tick)."""
        return 1.0

    @property
    def attempts(self) -> int | None:
        """Attempts before a stop-the-world model gives up; None: it retries for ever."""
        return None

    @property
    def comm_prefixes(self) -> tuple[str, ...]:
        """The comm prefixes ``judge_task`` tests (snapshots group tasks by them)."""
        return ()

    def params(self) -> dict[str, Any]:
        """The model's parameters as set (reported beside every verdict)."""
        values = vars(self)
        return {f.name: values[f.name] for f in fields(self) if f.init}  # type: ignore[arg-type]

    @classmethod
    def accepts(cls) -> frozenset[str]:
        """Names of the parameters the model takes."""
        return frozenset(f.name for f in fields(cls) if f.init)  # type: ignore[arg-type]

    @classmethod
    def kernel_params(cls, kernel: Kernel) -> dict[str, Any]:
        """The parameters the model takes from the kernel the dump comes from
        (its release and architecture decide which rules hold). Parameters the
        user gives win over these. Default: none."""
        return {}

    @classmethod
    def kernel_notes(cls, kernel: Kernel) -> list[str]:
        """What :meth:`kernel_params` had to assume because the input did not
        say it (an unknown release, an assumed unwinder). Default: none."""
        return []

    @property
    def profile_name(self) -> str | None:
        """The name of the kernel profile the model follows (e.g. ``6.16+``),
        when it has profiles."""
        return None

    def with_patch(self, patch: Patch) -> Model:
        """The model with the parameters it takes from the patch itself (whether
        it unpatches, whether it touches the freezer path...). Default: none."""
        return self

    def checked_functions(self, patch: Patch, loaded: Sequence[Patch]) -> Patch:
        """The functions whose ranges the model's check compares stacks with,
        for ``patch`` over the enabled ``loaded`` patches (oldest first).
        Default: livepatch's rule (:meth:`lpc.patch.Patch.checked_against`)."""
        return patch.checked_against(loaded)

    def nudge(self, retry: int, task: TaskFacts) -> Nudge:
        """What the model does at pass ``retry`` (0 = the first check, at enable)
        to a task that has not switched yet. Default: nothing."""
        return Nudge.NONE

    @property
    def rests_on_evidence(self) -> bool:
        """Whether the model's judgement of a task rests on what the dump shows
        of it (its stack, its kind, its state). Default True; the null model,
        which switches every task at once whatever it shows, says False."""
        return True

    @abstractmethod
    def judge_task(self, task: TaskFacts) -> TaskOutcome:
        """The verdict now and the outlook under the model's switch points."""

    @final
    def judge(self, task: TaskFacts) -> TaskOutcome:
        """:meth:`judge_task` under the evidence rule every engine applies: a
        task whose evidence was lost on the way (a cut stack, a damaged line, a
        header that could not be read) is never ``switch`` and its outlook is
        never better than unknown — lpc cannot vouch for what it did not read.
        A ``stuck`` outlook stands (it is already the worst)."""
        outcome = self.judge_task(task)
        if task.evidence_lost is None or not self.rests_on_evidence:
            return outcome
        if outcome.outlook in (Outlook.UNKNOWN, Outlook.STUCK) and outcome.verdict is not Verdict.SWITCH:
            return outcome
        verdict = Verdict.UNRELIABLE if outcome.verdict is Verdict.SWITCH else outcome.verdict
        outlook = Outlook.STUCK if outcome.outlook is Outlook.STUCK else Outlook.UNKNOWN
        return replace(
            outcome, verdict=verdict, outlook=outlook, eta_s=None,
            reason=f"{outcome.reason}; unknown: {task.stack_problem}",
        )

    @abstractmethod
    def judge_transition(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome]
    ) -> TransitionOutcome:
        """Whether, and how soon, the whole transition completes."""

    @final
    def judge_dump(
        self, tasks: Sequence[TaskFacts], outcomes: Sequence[TaskOutcome],
        lost: str | None = None,
    ) -> TransitionOutcome:
        """:meth:`judge_transition` under the evidence rule for the dump as a
        whole: when the source lost tasks (``lost`` says how: a dump cut in
        the middle of a line), the transition can converge for the tasks read
        but not be said to converge."""
        transition = self.judge_transition(tasks, outcomes)
        if lost is None or not self.rests_on_evidence or transition.converges is not True:
            return transition
        return replace(transition, converges=None, eta_s=None,
                       reason=f"{transition.reason} (of the tasks read); unknown: {lost}")


def signal_or_wake(task: TaskFacts) -> Nudge:
    """The nudge klp_send_signals() and kGraft's kgr_work_fn give a task left
    behind: a fake signal to a user task, wake_up_state(TASK_INTERRUPTIBLE) to
    a kthread in an interruptible sleep (others it cannot wake)."""
    if task.kind is TaskKind.USER:
        return Nudge.FAKE_SIGNAL
    if task.kind is TaskKind.KTHREAD and task.state in INTERRUPTIBLE:
        return Nudge.WAKE_INTERRUPTIBLE
    return Nudge.NONE


def dead_task(t: TaskFacts) -> TaskOutcome | None:
    """The common first rule: an exited task holds no stack and switches."""
    if not t.dead:
        return None
    return TaskOutcome(
        Verdict.SWITCH, Outlook.SWITCHED,
        "has exited (zombie): no stack left, so nothing on it can be patched", eta_s=0.0,
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
    """The usual per-thread roll-up: stuck anywhere → no; unknown anywhere → maybe;
    a task that waits for a wake-up nothing in the model bounds (``after_wakeup``
    with no eta: a D sleep's end) → maybe; else yes."""
    stuck, first_stuck = count_where(outcomes, Outlook.STUCK)
    unknown, first_unknown = count_where(outcomes, Outlook.UNKNOWN)
    if first_stuck is not None:
        return TransitionOutcome(False, f"{stuck} task(s) can never switch: {first_stuck.reason}")
    if first_unknown is not None:
        return TransitionOutcome(
            None, f"{unknown} task(s) with an unknown outlook: {first_unknown.reason}"
        )
    waiting = [(o, n) for o, n in tally(outcomes)
               if o.outlook is Outlook.AFTER_WAKEUP and o.eta_s is None]
    if waiting:
        return TransitionOutcome(
            None, f"{sum(n for _, n in waiting)} task(s) switch only once a sleep ends that "
            f"the model does not end: {waiting[0][0].reason}"
        )
    etas = [o.eta_s for o, _ in tally(outcomes) if o.eta_s is not None]
    eta = max(etas, default=0.0)
    if eta_cap is not None:
        eta = min(eta, eta_cap)
    return TransitionOutcome(True, "every task reaches the target state", eta_s=eta)
