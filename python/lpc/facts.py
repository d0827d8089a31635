"""What a model may know of each task: :class:`~lpc.models.TaskFacts`, built once.

One fact builder serves snapshots and the simulator: :func:`facts_from_frames`
turns one task's frames (name, whether the kernel's reliable walker reports
it, which patched function it lies in) and header into TaskFacts. The
simulator calls it on the stack its model's walker would see
(:meth:`lpc.sim.engine.Sim.facts`); :class:`TaskTable` calls it for each dump
task someone looks at, and keeps the same facts as numpy columns for the
whole dump so that :mod:`lpc.check` can group tasks with equal facts (the key
columns are named by TaskFacts' field metadata, so a new field cannot be left
out of the key).

A model whose check reads another stack walker than the one the dump printed
with gets the facts as that walker reports them (:meth:`TaskTable.seen_by`,
after the model's ``stack_source``): a best-effort ``save_stack_trace_tsk()``
skips other tasks' .sched.text and lock-text frames, in the simulator as here.

The rules that decide facts — a task's kind and its evidence
(:func:`infer_kind`), whether a patched frame is a kthread's main function
(:func:`is_thread_fn`), which tasks are on a CPU (:func:`on_cpu_evidence`)
— are each written once, here, from the Linux facts of :mod:`lpc.kernel`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import IntEnum, IntFlag
from functools import cached_property
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from lpc._grouping import factorize, group, name_flags, per_task
from lpc.dump import _CONTEXTS as _DUMP_CONTEXTS
from lpc.dump import _STATUSES as _DUMP_STATUSES
from lpc.dump import UNKNOWN_U64, Dump, FrameContext, TaskLoss
from lpc.kernel import (
    FREEZABLE_KTHREAD_PREFIXES,
    IDLE_COMM_PREFIX,
    IDLE_LOOP_NAMES,
    KTHREAD_FN,
    KTHREAD_NAME_PREFIXES,
    PF_KTHREAD,
    PRINTING_FRAMES,
    RUNNABLE,
    is_fork_return,
    is_interrupt_entry,
    is_syscall_entry,
    starts_threads,
)
from lpc.models import Stack, StackSource, TaskFacts, TaskKind
from lpc.patch import Patch
from lpc.symbols import Symbols

__all__ = [
    "PROC_FORMATS",
    "STACK_CODES",
    "GROUP_KEYS",
    "FrameFact",
    "Loss",
    "task_loss",
    "PatchedFrames",
    "Scan",
    "StackEvidence",
    "TaskTable",
    "facts_from_frames",
    "frame_function_names",
    "token_losses",
    "group_keys",
    "infer_kind",
    "is_thread_fn",
    "sleeping_functions",
    "task_inventory",
    "on_cpu_evidence",
    "token_function_names",
    "token_name_ids",
]

#: Formats that come from /proc/<pid>/stack, which drops .sched.text and lock
#: text frames of tasks other than current (kernel/stacktrace.c).
PROC_FORMATS = ("proc_snapshot", "proc_stack")
#: What a dump that stops in the middle of a line lost.
INPUT_CUT = ("the dump ends in the middle of a line: it was cut, and the tasks after the cut "
             "are missing")
#: What a dump with no task at all lost: every task it should hold.
NO_TASKS = "no task could be read from the dump"
#: How many line numbers the evidence summary lists per kind.
_LINES_SHOWN = 10
#: Stack statuses in the order of the dump's ``stack_status_codes``.
STACK_CODES: tuple[Stack, ...] = _DUMP_STATUSES


class Loss(IntEnum):
    """Evidence a frame lost on its way into the dump or the symbol table; any
    one makes its task's stack incomplete (never clean)."""

    NONE = 0
    #: A symbol table is in use and the frame cannot be pinned to one function of
    #: it while it could be a patched one (its name is a patch function's, or it
    #: has no name): another kernel's table, or an ambiguous name.
    UNPINNED = 1
    #: ``name+off/size`` with ``off`` beyond ``size``, or wrapped round: the line
    #: was damaged, or the dump and the kernel disagree about the function.
    OFFSET_OUTSIDE = 2
    #: A frame printed without a function name (an address, or nothing), and no
    #: symbol table to name it: it could be any function, a patched one too.
    NAMELESS = 3
    #: The parser saw these go missing (:class:`lpc.dump.TaskLoss`): a line
    #: inside the stack that reads like a frame but not as one,
    FRAME_LINE = 4
    #: a stack without its end (closing marker missing, input cut inside it),
    UNCLOSED = 5
    #: a task whose header could not be read.
    HEADER = 6

    @property
    def reason(self) -> str:
        return _LOSS_REASONS[self]

    @property
    def parsed(self) -> bool:
        """A loss the parser saw (of the task's text), not one of a frame's symbol."""
        return self >= Loss.FRAME_LINE


#: The parser's losses, most telling first: when a task lost several, its
#: reason names the first of these it lost.
_TASK_LOSSES = ((TaskLoss.HEADER, Loss.HEADER), (TaskLoss.UNCLOSED, Loss.UNCLOSED),
                (TaskLoss.FRAME_LINE, Loss.FRAME_LINE))


_LOSS_REASONS = {
    Loss.NONE: "",
    Loss.UNPINNED: "a frame that could be a patched function cannot be pinned to one function "
                   "of the symbol table (another kernel's table?)",
    Loss.OFFSET_OUTSIDE: "a frame's offset lies outside its function (a damaged line?)",
    Loss.NAMELESS: "a frame has no function name and there is no symbol table to name it "
                   "(pass --symbols)",
    Loss.FRAME_LINE: "a line inside the stack reads like a frame but could not be read: a frame "
                     "is missing",
    Loss.UNCLOSED: "the stack has no end: its closing marker is missing, or the dump was cut "
                   "inside it",
    Loss.HEADER: "the task's header could not be read: who the task is, and its state, are "
                 "unknown",
}


def task_loss(bits: int) -> Loss:
    """The :class:`Loss` that names a task's parser losses (bits of
    :class:`lpc.dump.TaskLoss`), NONE when there are none."""
    return next((loss for bit, loss in _TASK_LOSSES if bits & bit), Loss.NONE)


class StackEvidence(IntFlag):
    """What a task's frames show about it (one bit each, OR-ed over its stack)."""

    NONE = 0
    #: A system-call entry frame: the task came from user space.
    SYSCALL_ENTRY = 1
    #: ``kthread()``: a kthread_create() thread.
    KTHREAD = 2
    #: ``ret_from_fork*``: every task's first frame.
    FORK_RETURN = 4
    #: An interrupt or exception frame (an ``<IRQ>``/``<NMI>``/exception section,
    #: or an interrupt entry on the task's own stack: kernel-mode registers).
    INTERRUPTED = 8
    #: The idle loop (``do_idle``, ``cpu_startup_entry``; ``cpu_idle`` before 3.10).
    IDLE_LOOP = 16
    #: A function only the task printing the dump runs (SysRq, dump_stack, NMI backtrace).
    PRINTING = 32
    #: A frame inside an ``<IRQ>``/``<SOFTIRQ>``/``<NMI>`` section: the per-CPU
    #: interrupt stacks are walked only for the task running on that CPU.
    ON_IRQ_STACK = 64

    @classmethod
    def of_name(cls, name: str) -> StackEvidence:
        bits = cls.NONE
        if is_syscall_entry(name):
            bits |= cls.SYSCALL_ENTRY
        if name == KTHREAD_FN:
            bits |= cls.KTHREAD
        if is_fork_return(name):
            bits |= cls.FORK_RETURN
        if name in IDLE_LOOP_NAMES:
            bits |= cls.IDLE_LOOP
        if is_interrupt_entry(name):
            bits |= cls.INTERRUPTED
        if name in PRINTING_FRAMES:
            bits |= cls.PRINTING
        return bits

    @property
    def kthread_root(self) -> bool:
        """Rooted in ``ret_from_fork`` → ``kthread()``."""
        return StackEvidence.KTHREAD | StackEvidence.FORK_RETURN in self


class PatchedFrames(Mapping[int, tuple[int, ...]]):
    """Per task with at least one, the positions of its frames inside the patched
    set (reliable or not), innermost first — kept as two sorted arrays."""

    def __init__(self, offsets: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> None:
        #: Frame rows inside the set, ascending, and the task each belongs to.
        self.rows = rows
        self.owners = np.searchsorted(offsets, rows, side="right") - 1
        self.positions = rows - offsets[self.owners]
        starts = np.flatnonzero(np.diff(self.owners, prepend=-1)) if rows.size else rows
        self._tasks = self.owners[starts]
        self._bounds = np.append(starts, rows.size)

    def __getitem__(self, t: int) -> tuple[int, ...]:
        i = int(np.searchsorted(self._tasks, t))
        if i == len(self._tasks) or int(self._tasks[i]) != t:
            raise KeyError(t)
        return tuple(self.positions[self._bounds[i] : self._bounds[i + 1]].tolist())

    def __iter__(self) -> Iterator[int]:
        return iter(self._tasks.tolist())

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, t: object) -> bool:
        if not isinstance(t, (int, np.integer)):
            return False
        i = int(np.searchsorted(self._tasks, t))
        return i < len(self._tasks) and int(self._tasks[i]) == t


@dataclass(frozen=True)
class Scan:
    """Where the patched set meets each task's stack.

    ``first`` and ``function`` hold, per task, the position of the first
    *reliable* frame inside the set (the kernel's check ignores ``?`` frames)
    and the index of the patch function it belongs to, or -1. ``any_frames``
    lists, per task with at least one, every frame (reliable or not) inside it;
    ``token_function`` gives each of the dump's frame tokens the patch function
    it lies in, or -1.
    """

    first: npt.NDArray[np.int64]
    function: npt.NDArray[np.int64]
    any_frames: PatchedFrames
    by_address: bool
    warnings: tuple[str, ...]
    token_function: npt.NDArray[np.int64]
    #: Per frame: what the kernel's reliable walker reports (not ``?``, not inlined).
    eligible: npt.NDArray[np.bool_]
    #: Per frame token: the evidence it lost (a :class:`Loss` code, 0 for none).
    token_lost: npt.NDArray[np.uint8]
    #: Per frame token: it lies in .sched.text or the lock text, which a best-effort
    #: walk of another task drops (kernel/stacktrace.c stack_trace_consume_entry_nosched;
    #: before 5.2 the arch's save_stack_address_nosched). None: not known.
    token_nosched: npt.NDArray[np.bool_] | None = None

    def seen_by(self, source: StackSource, offsets: npt.NDArray[np.int64],
                tokens: npt.NDArray[Any]) -> Scan:
        """The scan as a model's stack walker sees the stacks (``offsets`` and
        ``tokens`` are the dump's frame CSR). Only the best-effort walker differs
        from what the dump prints: save_stack_trace_tsk() of a task other than
        current skips every frame in .sched.text and the lock text, so such a
        frame is neither counted nor compared with the patch — the simulator's
        walker (lpc.sim.engine ``Sim._walk``) drops the same frames."""
        if source is not StackSource.BEST_EFFORT or self.token_nosched is None \
                or not self.token_nosched.any():
            return self
        dropped = self.token_nosched
        token_function = np.where(dropped, -1, self.token_function)
        eligible = self.eligible & ~dropped[tokens]
        tasks = len(offsets) - 1
        first = np.full(tasks, -1, dtype=np.int64)
        function = np.full(tasks, -1, dtype=np.int64)
        hits = np.flatnonzero(eligible & (token_function[tokens] >= 0))
        if hits.size:
            owners = np.searchsorted(offsets, hits, side="right") - 1
            seen, at = np.unique(owners, return_index=True)
            first[seen] = hits[at] - offsets[seen]
            function[seen] = token_function[tokens[hits[at]]]
        rows = np.flatnonzero(token_function[tokens] >= 0)
        return replace(self, first=first, function=function,
                       any_frames=PatchedFrames(offsets, rows),
                       token_function=token_function, eligible=eligible)


_USER_CODE = _DUMP_CONTEXTS.index(FrameContext.USER)


def user_tail(dump: Dump) -> npt.NDArray[np.bool_]:
    """Per frame, whether it is one of the user-space frames that end a kernel
    stack: a ``user`` frame with only user frames after it in its task and a
    kernel frame before them (perf and drgn print the user part after the
    kernel part). Such frames are where the kernel stack ends, not an
    interruption of it nor a kernel function lost; a stack of user frames
    only, or user frames inside a kernel stack, stay unexplained."""
    codes = dump.frame_context_codes
    n = len(codes)
    if not n:
        return np.zeros(0, dtype=bool)
    user: npt.NDArray[np.bool_] = codes == _USER_CODE
    if not user.any():  # kernel logs and /proc stacks: no user frames, nothing to place
        return np.zeros(n, dtype=bool)
    offsets = np.asarray(dump.frame_offsets, dtype=np.int64)
    rows = np.arange(n, dtype=np.int64)
    owner = np.searchsorted(offsets, rows, side="right") - 1
    end = offsets[owner + 1]
    # The first non-user frame at or after each row.
    next_kernel = np.minimum.accumulate(np.where(user, n, rows)[::-1])[::-1]
    tail: npt.NDArray[np.bool_] = user & (next_kernel >= end)
    # ... and a kernel frame before the tail in the same task.
    last_kernel = np.maximum.accumulate(np.where(user, -1, rows))
    ends_a_kernel_stack: npt.NDArray[np.bool_] = tail & (last_kernel >= offsets[owner])
    return ends_a_kernel_stack


def token_losses(
    dump: Dump,
    patch: Patch,
    symbols: Symbols | None = None,
    unresolved: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.uint8]:
    """Per frame token, the evidence it lost (:class:`Loss`).

    ``name+off/size`` with ``off`` past ``size`` cannot be a return address of
    that function: the kernel prints the offset from the function holding
    ``address - 1`` (lib/vsprintf.c, %pB), so ``off <= size`` always.

    Without a symbol table, a frame without a name could be any function.
    With one, a token that cannot be pinned to one function of it
    (``unresolved``: named tokens :func:`lpc.check.scan` could not resolve; and
    bare addresses inside no function) has lost its evidence when it could be
    a patched function: it has no name, or the (name, object) of one of the
    patch's functions. A named frame of another function is outside the patch
    by the dump's own kernel's word, wherever the table puts it.
    """
    lost = np.zeros(dump.token_count, dtype=np.uint8)
    offsets, sizes = dump.token_symbol_offsets, dump.token_symbol_sizes
    unknown = np.uint64(UNKNOWN_U64)
    outside = (offsets != unknown) & (sizes != unknown) & (offsets > sizes)
    lost[outside] = Loss.OFFSET_OUTSIDE
    nameless = dump.token_function_ids == Dump.NO_NAME
    # A user-space PC that ends a kernel stack is no kernel function lost.
    tail = user_tail(dump)
    if tail.any():
        kernel_use = np.zeros(dump.token_count, dtype=bool)
        kernel_use[dump.frame_tokens[~tail]] = True
        nameless &= kernel_use
    if symbols is None:
        lost[nameless & (lost == 0)] = Loss.NAMELESS
        return lost
    bare = np.flatnonzero(nameless & dump.token_has_address)
    if bare.size:
        index, _ = symbols.symbolize(dump.token_addresses[bare], return_addresses=True)
        lost[bare[(index < 0) & (lost[bare] == 0)]] = Loss.UNPINNED
    lost[nameless & ~dump.token_has_address & (lost == 0)] = Loss.UNPINNED
    if unresolved is not None and unresolved.any():
        name_ids = {name: i for i, name in enumerate(dump.names)}
        could_be = np.zeros(dump.token_count, dtype=bool)
        for f in patch.functions:
            mid = Dump.NO_NAME if f.object is None else name_ids.get(f.object, -2)
            if f.module_text:
                could_be |= dump.token_module_ids == mid
                continue
            fid = name_ids.get(f.name)
            if fid is None:
                continue
            could_be |= (dump.token_function_ids == fid) & (dump.token_module_ids == mid)
        lost[unresolved & could_be & (lost == 0)] = Loss.UNPINNED
    return lost


def token_name_ids(
    dump: Dump, symbols: Symbols | None = None
) -> tuple[list[str], npt.NDArray[np.int64]]:
    """``(names, id of each frame token's function name in names)``.

    ``names`` is the dump's interned names, then ``"?"``, then the names of
    functions that address-only tokens were symbolized to (the kernel's
    ``%pB`` rule: a return address belongs to the function holding
    ``address - 1``) when a symbol table is given; a token with neither a
    printed name nor a symbol is ``"?"``. Everything is per token and per
    name, never per frame.
    """
    names = [*dump.names, "?"]
    unknown = len(dump.names)
    fids = dump.token_function_ids.astype(np.int64)
    ids = np.where(fids == Dump.NO_NAME, unknown, fids)
    if symbols is not None:
        bare = np.flatnonzero((dump.token_function_ids == Dump.NO_NAME) & dump.token_has_address)
        if bare.size:
            index, _ = symbols.symbolize(dump.token_addresses[bare], return_addresses=True)
            extra: dict[str, int] = {}
            for k, f in zip(bare.tolist(), index.tolist()):
                if f >= 0:
                    name = symbols.name_of(f)
                    ids[k] = extra.setdefault(name, len(names) + len(extra))
            names += list(extra)
    return names, ids


def token_function_names(dump: Dump, symbols: Symbols | None = None) -> list[str]:
    """Every frame token's function name (see :func:`token_name_ids`)."""
    names, ids = token_name_ids(dump, symbols)
    return [names[i] for i in ids.tolist()]


def frame_function_names(dump: Dump, symbols: Symbols | None = None) -> npt.NDArray[np.object_]:
    """Every frame's function name (see :func:`token_name_ids`)."""
    names, ids = token_name_ids(dump, symbols)
    table = np.array(names, dtype=object)
    out: npt.NDArray[np.object_] = table[ids[dump.frame_tokens]] if len(ids) else table[:0]
    return out


def infer_kind(
    *,
    pid: int,
    comm: str,
    kthread: int,
    task_flags: int,
    user_regs: bool,
    ppid: int,
    syscall_entry: bool,
    kthread_root: bool,
    idle_loop: bool = False,
) -> tuple[TaskKind, str]:
    """A task's kind and the evidence it rests on, strongest evidence first.

    ``kthread`` is -1/0/1 (PF_KTHREAD when the source shows it); ``task_flags``
    are PF_* flags (``/proc`` stat, SysRq ``task_flags:`` since 6.15 — the older
    ``flags:`` field holds TIF_* flags and lands in ``thread_flags``), ``2**64 - 1``
    when unknown. ``syscall_entry``: a system-call entry frame is on the stack;
    ``kthread_root``: the stack is rooted in ``ret_from_fork`` → ``kthread()``;
    ``idle_loop``: the idle loop is on the stack.

    The idle task is pid 0. Its comm alone does not make a task idle: before
    init runs, PID 1 is ``swapper/0`` too (arm64 and others print it so), and
    it can sleep in D. Without a pid, a ``swapper`` comm with the idle loop on
    its stack is the idle task.
    """
    if pid == 0:
        return TaskKind.IDLE, "pid 0: a per-CPU idle task"
    if pid < 0 and idle_loop and comm.startswith(IDLE_COMM_PREFIX):
        return TaskKind.IDLE, "swapper with the idle loop on its stack: a per-CPU idle task"
    if kthread >= 0:
        return (TaskKind.KTHREAD if kthread else TaskKind.USER), "PF_KTHREAD in the task flags"
    if task_flags != 2**64 - 1:
        return (TaskKind.KTHREAD if task_flags & PF_KTHREAD else TaskKind.USER), "PF_KTHREAD in flags"
    if user_regs:
        return TaskKind.USER, "a user-mode register dump (RIP: 0033) follows its header"
    if syscall_entry:
        return TaskKind.USER, "a system-call entry frame on its stack"
    if kthread_root:
        return TaskKind.KTHREAD, "stack rooted in ret_from_fork → kthread() without a syscall entry"
    if ppid == 2 or pid == 2:
        return TaskKind.KTHREAD, "a child of kthreadd (ppid 2)"
    if comm.startswith(KTHREAD_NAME_PREFIXES):
        return TaskKind.KTHREAD, "its name is a kernel thread's (weak evidence)"
    return TaskKind.UNKNOWN, "no flags, registers or stack root tell"


# ---- the rules, once ----------------------------------------------------------------------------


def on_cpu_evidence(
    said: npt.NDArray[np.int8], states: npt.NDArray[np.uint8],
    evidence: npt.NDArray[np.uint8], only_guesses: npt.NDArray[np.bool_],
    pids: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int8]:
    """Which tasks were on a CPU, from evidence only.

    SysRq-t's "running task" means runnable (``task_is_running()``,
    kernel/sched/core.c sched_show_task), not on a CPU: livepatch's -EBUSY
    needs ``task_curr()`` (transition.c klp_check_and_switch_task), and a
    runnable task waiting for a CPU is checked like a sleeping one. A task
    is taken to be on a CPU when the source says so (a ``CPU: N PID:`` or NMI
    backtrace header, the runqueue dump's ``>R`` row, an empty /proc stack in
    state R...) or, for a
    runnable task, when its stack shows it: a per-CPU interrupt stack
    (walked only for the CPU's own task), the functions of the task printing
    the dump, or nothing but ``?`` guesses (a running task's stack, read from
    another CPU, holds no frame an unwinder can vouch for).
    A runnable task printed twice (``pids``) is on a CPU when either
    occurrence shows it.
    """
    runnable = np.isin(states, np.frombuffer("".join(RUNNABLE).encode(), np.uint8))
    shown = ((evidence & (StackEvidence.ON_IRQ_STACK | StackEvidence.PRINTING)) != 0) \
        | only_guesses
    out = said.copy()
    out[(said < 0) & runnable & shown] = 1
    if pids is not None and len(pids):
        # One task printed twice (SysRq-t, then its NMI backtrace or a `CPU: N
        # PID:` report): what one occurrence shows of the CPU holds for the
        # other, runnable one.
        on = np.unique(pids[(out == 1) & (pids >= 0)])
        out[(out < 0) & runnable & np.isin(pids, on)] = 1
    return out


class FrameFact(NamedTuple):
    """One frame, as much of it as the facts need."""

    name: str
    #: The kernel's reliable walker reports it (not a ``?`` guess, not inlined).
    eligible: bool
    #: The patched function the frame lies in, None when outside the patch.
    patched: str | None = None
    #: That patched function lies in .sched.text or the lock text.
    in_sched_text: bool = False
    #: Evidence the frame lost (:class:`Loss`).
    lost: Loss = Loss.NONE


def first_patched(frames: Sequence[FrameFact]) -> int | None:
    """The position of the first frame the kernel's check would find inside the
    patch (klp_check_stack() reads only what the reliable walker reports)."""
    return next((i for i, f in enumerate(frames) if f.eligible and f.patched is not None), None)


def is_thread_fn(frames: Sequence[FrameFact], at: int) -> bool:
    """Is frame ``at`` a kthread's main function? Its caller — the next eligible
    frame out (``?`` frames are stack-scan guesses) — starts threads
    (``kthread()``, or ``ret_from_fork`` for kthreadd)."""
    caller = next((f for f in frames[at + 1 :] if f.eligible), None)
    return caller is not None and starts_threads(caller.name)


def facts_from_frames(
    *,
    index: int,
    pid: int | None,
    tid: int | None,
    comm: str,
    state: str | None,
    kind: TaskKind,
    kind_evidence: str,
    on_cpu: bool | None,
    printed: Stack,
    interrupted: bool,
    frames: Sequence[FrameFact],
    hidden_text: bool = False,
    freezable: bool | None = None,
    extra_depth: int = 0,
    task_lost: Loss = Loss.NONE,
    lost_line: int | None = None,
    hung: bool = False,
) -> TaskFacts:
    """One task's :class:`TaskFacts` from its frames (innermost first) and header.

    ``printed`` is the stack status the source gave; ``interrupted``, whether an
    interrupt or exception frame is on it; ``hidden_text``, whether the source
    cannot show the patched text at all (/proc hides .sched.text);
    ``extra_depth``, frames the caller left out (deep call chains);
    ``task_lost``, what the parser saw the task's text lose (it wins over a
    frame's loss), and ``lost_line``, the source line of the first loss.
    """
    # The stack as printed: whether an interrupt frame on it makes the walk
    # unreliable is the kernel's (the model's) to say, not the dump's.
    stack = printed
    first = first_patched(frames)
    hit = None if first is None else frames[first]
    lost = task_lost or next((f.lost for f in frames if f.lost), Loss.NONE)
    return TaskFacts(
        index=index,
        pid=pid,
        tid=tid,
        comm=comm,
        state=state,
        kind=kind,
        kind_evidence=kind_evidence,
        on_cpu=on_cpu,
        stack=stack,
        depth=sum(f.eligible for f in frames) + extra_depth,
        patched_frame=first,
        patched_function=None if hit is None else hit.patched,
        patched_frame_is_thread_fn=(
            first is not None and kind is TaskKind.KTHREAD and is_thread_fn(frames, first)
        ),
        frames=tuple(f.name for f in frames),
        patched_frames_any=tuple(i for i, f in enumerate(frames) if f.patched is not None),
        hidden_patched_text=hidden_text and stack is Stack.COMPLETE,
        freezable=freezable,
        interrupted=interrupted,
        hung=hung,
        patched_frame_in_sched_text=hit is not None and hit.in_sched_text,
        evidence_lost=lost.reason if lost else None,
        evidence_line=lost_line if lost else None,
    )


def freezable_by_comm(comm: str) -> bool | None:
    """Known freezable kthreads by name (set_freezable() in their code); None: unknown."""
    return True if comm.startswith(FREEZABLE_KTHREAD_PREFIXES) else None


# ---- a dump's tasks as columns ------------------------------------------------------------------


def hit_sequences(found: Scan, frame_names: npt.NDArray[np.int64], tasks: int) -> npt.NDArray[np.int64]:
    """Per task, an id of its sequence of patched frames — (position, name id)
    of every frame inside the patched set, ``frame_names`` giving the name id
    of each of those frames — equal ids for equal sequences, 0 for none.

    Folded one rank at a time (a stack holds a handful of patched frames), each
    rank's ids disjoint from the earlier ones', so a sequence never equals
    a proper prefix of itself.
    """
    out = np.zeros(tasks, dtype=np.int64)
    frames = found.any_frames
    if not frames.rows.size:
        return out
    owners = frames.owners
    code, _ = group(frames.positions, frame_names)
    starts = np.flatnonzero(np.diff(owners, prepend=-1))
    rank = np.arange(len(owners)) - np.repeat(starts, np.diff(np.append(starts, len(owners))))
    next_free = 1
    for r in range(int(rank.max()) + 1):
        at = rank == r
        ids, reps = group(out[owners[at]], code[at])
        out[owners[at]] = ids + next_free
        next_free += len(reps)
    return out


def group_keys(facts_type: type[Any] = TaskFacts) -> tuple[str, ...]:
    """The :class:`TaskTable` columns that decide every judged field of
    ``facts_type``, read from the fields' metadata (see ``lpc.models.base``);
    a field that names neither identity nor a column is a TypeError."""
    keys: dict[str, None] = {}
    for f in fields(facts_type):
        if f.metadata.get("identity"):
            continue
        if "key" not in f.metadata:
            raise TypeError(
                f"{facts_type.__name__}.{f.name} names neither identity nor its group-key column"
            )
        keys[f.metadata["key"]] = None
    return tuple(keys)


#: Columns of :class:`TaskTable` whose equal rows make equal judged facts.
GROUP_KEYS = group_keys()


class TaskTable(Sequence[TaskFacts]):
    """Every task's :class:`TaskFacts`, kept as columns and built on demand.

    A big dump holds hundreds of thousands of tasks, most of them alike for a
    model's purposes; the columns let :func:`lpc.check.check` judge one
    representative per group of identical facts (see :attr:`groups`) instead of
    every task. Everything here is a numpy column or a table over the dump's
    interned names, comms and frame tokens; TaskFacts are made (by
    :func:`facts_from_frames`) only for the tasks someone looks at.
    """

    def __init__(
        self, dump: Dump, patch: Patch, symbols: Symbols | None, found: Scan, hidden: bool
    ) -> None:
        self.dump, self.patch, self.found, self.hidden = dump, patch, found, hidden
        self._symbols = symbols
        self._views: dict[StackSource, TaskTable] = {}
        #: Tasks whose patched frames the walker of this view does not report
        #: (set on a view: see :meth:`seen_by`).
        self.unseen_patched = 0
        offsets = dump.frame_offsets.view(np.int64)  # < 2**63: the same numbers
        self._offsets = offsets
        self._tokens = dump.frame_tokens
        #: Function names (dump's, "?", symbolized) and each token's name id.
        self._names, self._token_name = token_name_ids(dump, symbols)
        eligible = found.eligible
        self._eligible = eligible
        #: Per patch function: its name, and whether it lies in .sched.text/lock text.
        self._patched_names = [f.spec if f.module_text else f.name for f in patch.functions]
        self._patched_in_sched_text = [
            symbols is not None and f.start is not None and bool(symbols.in_hidden_text(f.start))
            for f in patch.functions
        ]
        #: Per task: reliable, non-inlined frames (what the kernel's walker reports),
        #: counted as all frames minus the (few) others.
        passed_over = np.flatnonzero(~eligible)
        owners = np.searchsorted(offsets, passed_over, side="right") - 1
        self.depth = np.diff(offsets) - np.bincount(owners, minlength=len(self))
        self._evidence = self._stack_evidence(dump, offsets)
        #: Per task, an interrupt or exception frame is on its stack (the models judge it).
        self.interrupted_column = (self._evidence & StackEvidence.INTERRUPTED) != 0
        self.stack_codes = dump.stack_status_codes.astype(np.int64)
        self.first, self.function = found.first, found.function
        self._kind_of_group, self._evidence_of_group, self.kind_groups = self._kinds(dump)
        self._kind_codes = np.array(
            [list(TaskKind).index(k) for k in self._kind_of_group], dtype=np.int64
        )[self.kind_groups] if len(self._kind_of_group) else np.zeros(0, dtype=np.int64)
        self.thread_fn = self._thread_functions()
        self.lost_codes, self.lost_frame, self.lost_line = self._losses()
        self._groups_by_prefixes: dict[tuple[str, ...], tuple[npt.NDArray[np.int64],
                                                              npt.NDArray[np.int64]]] = {}

    def seen_by(self, source: StackSource) -> TaskTable:
        """The tasks as a model whose check reads ``source`` (its
        :attr:`lpc.models.Model.stack_source`) sees them: the same dump, the
        frames that walker reports (see :meth:`Scan.seen_by`). A best-effort
        walker shows what /proc/<pid>/stack shows — the same
        save_stack_trace_tsk() — so nothing is hidden from it there. Built
        once per source; a source that sees what the dump prints is ``self``."""
        if source in self._views:
            return self._views[source]
        offsets = self._offsets
        found = self.found.seen_by(source, offsets, self._tokens)
        hidden = self.hidden and source is not StackSource.BEST_EFFORT
        if found is self.found and hidden == self.hidden:
            view = self
        else:
            view = TaskTable(self.dump, self.patch, self._symbols, found, hidden)
            view.unseen_patched = len(set(self.found.any_frames) - set(found.any_frames))
            # Which task was on a CPU is the dump's fact, read from the stacks as
            # printed, whatever another walker would have saved of them.
            view.__dict__["on_cpus"] = self.on_cpus
        self._views[source] = view
        return view

    # ---- columns ---------------------------------------------------------------------

    @property
    def states(self) -> npt.NDArray[np.uint8]:
        return self.dump.states

    @property
    def hung(self) -> npt.NDArray[np.bool_]:
        return self.dump.hung

    @cached_property
    def on_cpus(self) -> npt.NDArray[np.int8]:
        """Per task, on a CPU (1), not (0), unknown (-1): the dump's own word
        when it has one, else :func:`on_cpu_evidence`."""
        d = self.dump
        only_guesses = (self.depth == 0) & (np.diff(self._offsets) > 0)
        return on_cpu_evidence(d.on_cpus, d.states, self._evidence, only_guesses, d.pids)

    @cached_property
    def hit_sequences(self) -> npt.NDArray[np.int64]:
        """Per task, an id of its (position, name) sequence of patched frames."""
        rows = self.found.any_frames.rows
        return hit_sequences(self.found, self._token_name[self._tokens[rows]], len(self))

    def _stack_evidence(
        self, dump: Dump, offsets: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.uint8]:
        """Per task, the :class:`StackEvidence` bits of its frames."""
        by_name = name_flags(self._names, StackEvidence.of_name)
        by_token = by_name[self._token_name]
        per_frame = (by_token[self._tokens] if len(by_token)
                     else np.zeros(len(self._tokens), np.uint8))
        # A user part after the kernel stack ends it; it interrupts nothing.
        contexts = dump.frame_context_codes
        interrupted = (contexts != 0) & ~user_tail(dump)
        per_frame[interrupted] |= np.uint8(StackEvidence.INTERRUPTED)
        irq_stacks = [_DUMP_CONTEXTS.index(c) for c in
                      (FrameContext.IRQ, FrameContext.SOFTIRQ, FrameContext.NMI)]
        per_frame[np.isin(contexts, irq_stacks)] |= np.uint8(StackEvidence.ON_IRQ_STACK)
        return per_task(np.bitwise_or, offsets, per_frame)

    def _kinds(self, dump: Dump) -> tuple[list[TaskKind], list[str], npt.NDArray[np.int64]]:
        """Each task's kind and evidence: one :func:`infer_kind` call per distinct
        combination of what it reads. It reads the comm only through three
        prefixes (swapper, kernel-thread names, freezable kthreads), so comms
        enter the key as those three bits, computed once per distinct comm."""
        comm_class = np.array(
            [(1 if c.startswith(IDLE_COMM_PREFIX) else 0)
             | (2 if c.startswith(KTHREAD_NAME_PREFIXES) else 0)
             | (4 if freezable_by_comm(c) else 0) for c in dump.comm_names] or [0],
            dtype=np.uint8,
        )
        pids, flags = dump.pids, dump.task_flags
        pf_unknown = flags == np.uint64(UNKNOWN_U64)
        pf_kthread = (flags & np.uint64(PF_KTHREAD)) != 0
        evidence = self._evidence
        syscall = (evidence & StackEvidence.SYSCALL_ENTRY) != 0
        idle_loop = (evidence & StackEvidence.IDLE_LOOP) != 0
        root = StackEvidence.KTHREAD | StackEvidence.FORK_RETURN
        kthread_root = (evidence & root) == root
        groups, reps = group(
            comm_class[dump.comm_ids] if dump.task_count else np.zeros(0, dtype=np.uint8),
            pids == 0, pids == 2, pids < 0, dump.kthreads, pf_unknown, pf_kthread & ~pf_unknown,
            dump.user_regs, dump.ppids == 2, syscall, kthread_root, idle_loop,
        )
        judged = [
            infer_kind(pid=int(pids[t]), comm=dump.comm(t), kthread=int(dump.kthreads[t]),
                       task_flags=int(flags[t]), user_regs=bool(dump.user_regs[t]),
                       ppid=int(dump.ppids[t]), syscall_entry=bool(syscall[t]),
                       kthread_root=bool(kthread_root[t]), idle_loop=bool(idle_loop[t]))
            for t in reps.tolist()
        ]
        return [k for k, _ in judged], [e for _, e in judged], groups

    def _losses(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64],
                               npt.NDArray[np.int64]]:
        """Per task, the :class:`Loss` that names what it lost (0: none): the
        parser's loss when it saw one, else the loss of its first frame that
        lost evidence; that frame's position (-1: none, or a parser loss); and
        the source line of the loss (0: none)."""
        n = len(self)
        codes = np.zeros(n, dtype=np.uint8)
        at = np.full(n, -1, dtype=np.int64)
        line = np.zeros(n, dtype=np.int64)
        lost = self.found.token_lost
        if lost.any():
            rows = np.flatnonzero(lost[self._tokens])
            owners = np.searchsorted(self._offsets, rows, side="right") - 1
            tasks, first = np.unique(owners, return_index=True)
            codes[tasks] = lost[self._tokens[rows[first]]]
            at[tasks] = rows[first] - self._offsets[tasks]
            line[tasks] = self.dump.frame_lines[rows[first]]
        bits = self.dump.task_lost
        if bits.any():
            # Later rows of the table win: the most telling loss is written last.
            for bit, loss in reversed(_TASK_LOSSES):
                tasks = np.flatnonzero(bits & np.uint8(bit))
                codes[tasks], at[tasks] = loss, -1
                line[tasks] = self.dump.task_lost_lines[tasks]
        return codes, at, line

    def evidence(self) -> dict[str, Any]:
        """What the dump's tasks rest on, counted: stacks by status, tasks whose
        stack lost evidence (by kind, with the first few tasks' frame), lines the
        parser skipped."""
        codes = np.bincount(self.stack_codes, minlength=len(STACK_CODES))
        complete = STACK_CODES.index(Stack.COMPLETE)
        lost = self.lost_codes != 0
        untrusted = (len(self) if self.hidden
                     else int(((self.stack_codes != complete) | lost).sum()))
        losses: dict[str, Any] = {}
        for loss in Loss:
            tasks = np.flatnonzero(self.lost_codes == loss) if loss else np.zeros(0, np.int64)
            if tasks.size:
                losses[loss.name.lower()] = {
                    "tasks": int(tasks.size),
                    "reason": loss.reason,
                    "first": [{"task_line": int(self.dump.task_lines[t]),
                               "line": int(self.lost_line[t]),
                               **({} if loss.parsed else {"frame": int(self.lost_frame[t])})}
                              for t in tasks[:5].tolist()],
                }
        headers = np.flatnonzero(self.dump.task_lost & np.uint8(TaskLoss.HEADER))
        cut = self.dump.input_cut
        return {
            "stacks": {s.value: int(n) for s, n in zip(STACK_CODES, codes.tolist()) if n},
            "untrusted_stacks": untrusted,
            "incomplete_stacks": int(lost.sum()),
            "unreadable_headers": {
                "tasks": int(headers.size),
                "lines": self.dump.task_lost_lines[headers[:_LINES_SHOWN]].tolist(),
            },
            "input_cut": cut,
            "hidden_patched_text": self.hidden,
            "lost": losses,
            "skipped_lines": self.dump.skipped_lines,
        }

    def tasks_lost(self) -> str | None:
        """How the source lost whole tasks, if it did (the dump-level evidence
        rule of :meth:`lpc.models.Model.judge_dump`), else None."""
        if self.dump.input_cut:
            return INPUT_CUT
        if self.dump.task_count == 0:
            return NO_TASKS
        return None

    def _thread_functions(self) -> npt.NDArray[np.bool_]:
        """:func:`is_thread_fn` for every kthread whose first patched frame is known."""
        out = np.zeros(len(self), dtype=bool)
        tasks = np.flatnonzero((self.first >= 0) & (self._kind_codes == list(TaskKind).index(
            TaskKind.KTHREAD)))
        if not tasks.size:
            return out
        end = self._offsets[tasks + 1]
        at = self._offsets[tasks] + self.first[tasks] + 1
        # Step over ineligible frames: rarely more than one step.
        while True:
            behind = (at < end) & ~self._eligible[np.minimum(at, len(self._eligible) - 1)]
            if not behind.any():
                break
            at = np.where(behind, at + 1, at)
        starter = name_flags(self._names, starts_threads).astype(bool)[self._token_name]
        inside = at < end
        out[tasks[inside]] = starter[self._tokens[at[inside]]]
        return out

    # ---- one task --------------------------------------------------------------------

    def __len__(self) -> int:
        return self.dump.task_count

    def frames(self, t: int) -> tuple[str, ...]:
        names, tokens = self._names, self._tokens[self._offsets[t] : self._offsets[t + 1]]
        return tuple(names[k] for k in self._token_name[tokens].tolist())

    def frame_facts(self, t: int) -> list[FrameFact]:
        """Task ``t``'s frames as :func:`facts_from_frames` reads them."""
        lo, hi = int(self._offsets[t]), int(self._offsets[t + 1])
        tokens = self._tokens[lo:hi]
        hits = self.found.token_function[tokens].tolist()
        return [
            FrameFact(self._names[n], bool(e), None if k < 0 else self._patched_names[k],
                      k >= 0 and self._patched_in_sched_text[k], Loss(lost))
            for n, e, k, lost in zip(self._token_name[tokens].tolist(),
                                     self._eligible[lo:hi].tolist(), hits,
                                     self.found.token_lost[tokens].tolist())
        ]

    def interrupted(self, t: int) -> bool:
        """Whether task ``t``'s stack holds an interrupt or exception frame (an
        ``<IRQ>``/``<NMI>``/exception section, or an interrupt entry)."""
        return bool(self.interrupted_column[t])

    def kind(self, t: int) -> TaskKind:
        return self._kind_of_group[int(self.kind_groups[t])]

    def stack(self, t: int) -> Stack:
        return STACK_CODES[int(self.stack_codes[t])]

    def _facts(self, t: int) -> TaskFacts:
        d = self.dump
        kind_group = int(self.kind_groups[t])
        state, on_cpu = int(d.states[t]), int(self.on_cpus[t])
        pid, tid = int(d.pids[t]), int(d.tids[t])
        comm = d.comm(t)
        return facts_from_frames(
            index=t,
            pid=None if pid < 0 else pid,
            tid=None if tid < 0 else tid,
            comm=comm,
            state=chr(state) if state else None,
            kind=self._kind_of_group[kind_group],
            kind_evidence=self._evidence_of_group[kind_group],
            on_cpu=None if on_cpu < 0 else bool(on_cpu),
            printed=STACK_CODES[int(d.stack_status_codes[t])],
            interrupted=bool(self.interrupted_column[t]),
            frames=self.frame_facts(t),
            hidden_text=self.hidden,
            freezable=freezable_by_comm(comm),
            task_lost=task_loss(int(d.task_lost[t])),
            lost_line=int(self.lost_line[t]) or None,
            hung=bool(d.hung[t]),
        )

    @overload
    def __getitem__(self, index: int) -> TaskFacts: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskFacts]: ...

    def __getitem__(self, index: int | slice) -> TaskFacts | list[TaskFacts]:
        if isinstance(index, slice):
            return [self._facts(t) for t in range(len(self))[index]]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._facts(index % len(self))

    @cached_property
    def groups(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(group of each task, first task of each group)``, groups numbered in
        order of first appearance.

        Two tasks share a group when every column of :data:`GROUP_KEYS` is
        equal: the columns TaskFacts' judged fields name in their metadata.
        Identity (index, pid, tid, comm) stays out, except the comm prefixes
        :meth:`_kinds` reads (see :meth:`groups_for` for models that test
        others); frame names enter only at patched positions, where models
        read them (the hit sequence).
        """
        return group(*(getattr(self, key) for key in GROUP_KEYS))

    def groups_for(
        self, comm_prefixes: tuple[str, ...] = ()
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """:attr:`groups`, split further by which of ``comm_prefixes`` each
        task's comm starts with — for a model that reads those (see
        ``lpc.models.base.Model``). Computed once per tuple of prefixes."""
        if not comm_prefixes:
            return self.groups
        if comm_prefixes not in self._groups_by_prefixes:
            # One small id per distinct set of prefixes a comm starts with.
            classes, _ = factorize(np.fromiter(
                (sum(1 << k for k, p in enumerate(comm_prefixes) if c.startswith(p))
                 for c in self.dump.comm_names), dtype=np.int64, count=len(self.dump.comm_names)))
            by_comm = classes[self.dump.comm_ids] if len(self) else classes[:0]
            self._groups_by_prefixes[comm_prefixes] = group(self.groups[0], by_comm)
        return self._groups_by_prefixes[comm_prefixes]


def hidden_text(dump: Dump, patch: Patch, symbols: Symbols | None) -> bool:
    """Does the patch touch functions /proc/<pid>/stack never shows?"""
    if dump.source_format not in PROC_FORMATS or symbols is None or not patch.resolved:
        return False
    return any(
        bool(symbols.in_hidden_text(f.start)) for f in patch.functions if f.start is not None
    )


def task_facts(dump: Dump, patch: Patch, symbols: Symbols | None, found: Scan
               ) -> tuple[TaskTable, list[str]]:
    """What a model may know of each task of the dump, and the warnings it rests on."""
    warnings = list(found.warnings)
    if symbols is not None:  # what the symbol table's own reading lost (malformed lines, ...)
        warnings += symbols.warnings
    hidden = hidden_text(dump, patch, symbols)
    if hidden:
        warnings.append(
            "the patch touches .sched.text/lock text, which /proc/<pid>/stack never shows: "
            "sleeping tasks' stacks cannot prove they are outside it (use a SysRq-t dump)"
        )
    return TaskTable(dump, patch, symbols, found, hidden), warnings


def sleeping_functions(dump: Dump) -> list[tuple[str, int]]:
    """Functions on the stacks of tasks that are asleep, with how many tasks each
    holds (most first; ties in order of first appearance): what a patch cannot
    touch without blocking those tasks under klp."""
    if not dump.frame_count:
        return []
    offsets = dump.frame_offsets.astype(np.int64)
    complete = STACK_CODES.index(Stack.COMPLETE)
    asleep = (dump.stack_status_codes == complete) & (dump.on_cpus != 1)
    owner = np.repeat(np.arange(dump.task_count, dtype=np.int64), np.diff(offsets))
    fids = dump.frame_function_ids.astype(np.int64)
    keep = asleep[owner] & dump.frame_reliable & ~dump.frame_inlined & (fids != Dump.NO_NAME)
    # One count per task and function, however often the function recurs on its stack.
    pairs = np.unique(owner[keep] * (len(dump.names) + 1) + fids[keep])
    counts = np.bincount(pairs % (len(dump.names) + 1), minlength=len(dump.names))
    first_seen = np.full(len(dump.names), dump.frame_count, dtype=np.int64)
    rows = np.flatnonzero(keep)
    np.minimum.at(first_seen, fids[rows], rows)
    named = np.flatnonzero(counts)
    order = np.lexsort((first_seen[named], -counts[named]))
    return [(dump.names[f], int(counts[f])) for f in named[order].tolist()]


def task_inventory(dump: Dump) -> list[dict[str, Any]]:
    """Every task the dump holds, as read: identity, state, what is known of
    its stack (status, frames, its innermost reliable function) and what the
    parser saw it lose — the list a report without a patch shows, so that no
    task, empty or unreadable, goes unmentioned."""
    offsets = dump.frame_offsets.astype(np.int64)
    depth = np.diff(offsets)
    usable = dump.frame_reliable & (dump.frame_function_ids != Dump.NO_NAME)
    rows = np.flatnonzero(usable)
    owners = np.searchsorted(offsets, rows, side="right") - 1
    first_row = np.full(dump.task_count, -1, dtype=np.int64)
    tasks_with, first = np.unique(owners, return_index=True)
    first_row[tasks_with] = rows[first]
    fids = dump.frame_function_ids
    out = []
    for t in range(dump.task_count):
        lost = TaskLoss(int(dump.task_lost[t]))
        pid, tid, state = int(dump.pids[t]), int(dump.tids[t]), int(dump.states[t])
        row = int(first_row[t])
        out.append({
            "pid": None if pid < 0 else pid,
            "tid": None if tid < 0 else tid,
            "comm": dump.comm(t),
            "state": chr(state) if state else None,
            "stack": STACK_CODES[int(dump.stack_status_codes[t])].value,
            "frames": int(depth[t]),
            "innermost": None if row < 0 else dump.names[int(fids[row])],
            "lost": [m.name.lower() for m in TaskLoss if m and m in lost],  # type: ignore[union-attr]
            "line": int(dump.task_lines[t]),
        })
    return out
