"""`lpc check`: will this patch converge on this machine, and who blocks it?

The pipeline, each step a function:

1. :func:`scan` — which frame of which task lies inside the patched set. With
   a symbol table the patch resolves to address ranges and every frame to an
   address (printed, or ``symbol + offset`` resolved in the table); the Rust
   scanner then answers the kernel's ``klp_check_stack()`` question for all
   tasks at once. Without one, frames match the patch by name — weaker, and
   said so in the warnings.
2. :func:`task_facts` — what a model may know of each task: its kind (and what
   that inference rests on), state, CPU, whether its stack can be trusted, the
   first patched frame.
3. a model from :mod:`lpc.models` judges each task and the transition.

Everything is read-only: lpc never writes to /proc or /sys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from lpc import _core
from lpc.dump import _STATUSES as _DUMP_STATUSES
from lpc.dump import Dump
from lpc.models import (
    MODELS,
    Model,
    Outlook,
    Stack,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    get_model,
)
from lpc.models.josh import FREEZER_PATH
from lpc.patch import Patch
from lpc.symbols import Symbols

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "Scan",
    "TaskResult",
    "TaskResults",
    "TaskTable",
    "check",
    "check_all",
    "first_patched_frame",
    "frame_function_names",
    "scan",
    "sleeping_functions",
    "task_facts",
]

SCHEMA_VERSION = 1

#: PF_KTHREAD (include/linux/sched.h).
PF_KTHREAD = 0x00200000
#: Frames that only a task which entered through a system call has.
SYSCALL_ENTRY = ("entry_SYSCALL_64", "do_syscall_64", "__x64_sys_", "__arm64_sys_", "el0_svc",
                 "__do_sys_", "__se_sys_", "do_int80_syscall_32", "entry_INT80")
#: Names of kernel threads (a weak hint, used only when nothing better is known).
KTHREAD_NAMES = ("kworker/", "ksoftirqd/", "migration/", "rcu_", "kthreadd", "kswapd",
                 "khugepaged", "kcompactd", "watchdog", "cpuhp/", "idle_inject/", "irq/",
                 "kauditd", "oom_reaper", "writeback", "kblockd", "jbd2/", "xfsaild/",
                 "scsi_eh_", "khungtaskd", "ksmd", "kdevtmpfs", "netns", "kintegrityd")
#: Kernel threads that call set_freezable() (mm/vmscan.c, mm/khugepaged.c, mm/compaction.c).
FREEZABLE_KTHREADS = ("kswapd", "khugepaged", "kcompactd")
#: Formats that come from /proc/<pid>/stack, which drops .sched.text and lock text frames.
PROC_FORMATS = ("proc_snapshot", "proc_stack")


@dataclass(frozen=True)
class Scan:
    """Where the patched set meets each task's stack.

    ``first`` and ``function`` hold, per task, the position of the first
    *reliable* frame inside the set (the kernel's check ignores ``?`` frames)
    and the index of the patch function it belongs to, or -1. ``any_frames``
    lists, per task with at least one, every frame (reliable or not) inside it.
    """

    first: npt.NDArray[np.int64]
    function: npt.NDArray[np.int64]
    any_frames: Mapping[int, tuple[int, ...]]
    by_address: bool
    warnings: tuple[str, ...]


def _frame_addresses(
    dump: Dump, symbols: Symbols
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_], int]:
    """Each frame's return address: printed, or the symbol's address + offset.

    Names are interned, so each distinct (function, module, size) is resolved
    once. Returns the addresses, which frames have one, and how many named
    frames could not be pinned to a single function of the table.
    """
    addresses = dump.frame_addresses.astype(np.uint64, copy=True)
    known = dump.frame_has_address.astype(bool, copy=True)
    named = ~known & (dump.frame_function_ids != Dump.NO_NAME)
    named &= dump.frame_symbol_offsets != np.uint64(2**64 - 1)
    rows = np.flatnonzero(named)
    if rows.size == 0:
        return addresses, known, 0
    keys = np.stack(
        [
            dump.frame_function_ids[rows].astype(np.uint64),
            dump.frame_module_ids[rows].astype(np.uint64),
            dump.frame_symbol_sizes[rows],
        ],
        axis=1,
    )
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    starts = np.zeros(len(unique), dtype=np.uint64)
    ok = np.zeros(len(unique), dtype=bool)
    for k, (fid, mid, size) in enumerate(unique.tolist()):
        name = dump.names[int(fid)]
        module = None if mid == Dump.NO_NAME else dump.names[int(mid)]
        start = symbols.resolve(
            name, 0, None if size == 2**64 - 1 else int(size), module
        )
        if start is not None:
            starts[k], ok[k] = start, True
    inverse = inverse.reshape(-1)
    good = ok[inverse]
    addresses[rows[good]] = starts[inverse[good]] + dump.frame_symbol_offsets[rows[good]]
    known[rows[good]] = True
    return addresses, known, int((~good).sum())


def _frame_patch_ids_by_name(dump: Dump, patch: Patch) -> npt.NDArray[np.int64]:
    """Patch-function index of each frame matched by (name, object), or -1."""
    lut = np.full(len(dump.names) + 1, -1, dtype=np.int64)
    index = {name: i for i, name in enumerate(dump.names)}
    for k, f in enumerate(patch.functions):
        if f.name in index:
            lut[index[f.name]] = k
    fids = dump.frame_function_ids.astype(np.int64)
    fids = np.where(fids == Dump.NO_NAME, len(dump.names), fids)
    ids = lut[fids]
    # Object check: a vmlinux function must not match a same-named module frame.
    mids = dump.frame_module_ids
    for k, f in enumerate(patch.functions):
        sel = ids == k
        if not sel.any():
            continue
        if f.object is None:
            ids[sel & (mids != Dump.NO_NAME)] = -1
        else:
            mod = index.get(f.object)
            ids[sel & (mids != (Dump.NO_NAME if mod is None else mod))] = -1
    return ids


def _first_per_task(
    offsets: npt.NDArray[np.uint64], frame_ids: npt.NDArray[np.int64], tasks: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    first = np.full(tasks, -1, dtype=np.int64)
    function = np.full(tasks, -1, dtype=np.int64)
    hits = np.flatnonzero(frame_ids >= 0)
    if hits.size:
        owner = np.searchsorted(offsets.astype(np.int64), hits, side="right") - 1
        owners, at = np.unique(owner, return_index=True)
        first[owners] = hits[at] - offsets[owners].astype(np.int64)
        function[owners] = frame_ids[hits[at]]
    return first, function


def scan(dump: Dump, patch: Patch, symbols: Symbols | None = None) -> Scan:
    """Where the patch meets each task's stack (see :class:`Scan`).

    By address, the first reliable hit per task comes from the Rust CSR scan
    (``IntervalTree.first_hit_per_stack``: every stack at once, GIL released,
    parallel for large dumps); ``?`` and inlined frames are masked out first,
    as the kernel's reliable unwinder never reports them.
    """
    warnings: list[str] = []
    eligible = dump.frame_reliable & ~dump.frame_inlined
    if symbols is not None and patch.resolved:
        addresses, known, unresolved = _frame_addresses(dump, symbols)
        if unresolved:
            warnings.append(
                f"{unresolved} frame(s) could not be pinned to one function of the symbol table "
                "(another kernel's symbols, or an ambiguous name): they count as outside the patch"
            )
        tree = _core.IntervalTree(
            (f.start, f.end, k)
            for k, f in enumerate(patch.functions)
            if f.start is not None and f.end is not None
        )
        nowhere = np.uint64(0)  # no patched function starts at address 0
        first, function = tree.first_hit_per_stack(
            np.where(known & eligible, addresses, nowhere), dump.frame_offsets
        )
        ids = np.where(known, tree.find_many(np.where(known, addresses, nowhere)), -1)
        by_address = True
    else:
        ids = _frame_patch_ids_by_name(dump, patch)
        by_address = False
        warnings.append(
            "no symbol table: frames matched the patch by name, so duplicate static functions "
            "(sympos) are not told apart"
        )
        first, function = _first_per_task(
            dump.frame_offsets, np.where(eligible, ids, -1), dump.task_count
        )
    any_frames: dict[int, tuple[int, ...]] = {}
    hits = np.flatnonzero(ids >= 0)
    if hits.size:
        offsets = dump.frame_offsets.astype(np.int64)
        owner = np.searchsorted(offsets, hits, side="right") - 1
        for t, h in zip(owner.tolist(), hits.tolist()):
            any_frames[t] = any_frames.get(t, ()) + (h - int(offsets[t]),)
    return Scan(first, function, any_frames, by_address, tuple(warnings))


def first_patched_frame(
    dump: Dump, patch: Patch, symbols: Symbols | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per task: the position of its first reliable frame inside the patched set
    and the index (into ``patch.functions``) of that function, -1 for none."""
    if symbols is not None and not patch.resolved:
        patch = patch.resolve(symbols)
    found = scan(dump, patch, symbols)
    return found.first, found.function


def frame_function_names(dump: Dump, symbols: Symbols | None = None) -> npt.NDArray[np.object_]:
    """Every frame's function name: as printed, else symbolized from its address
    (the kernel's ``%pB`` rule: a return address belongs to the function holding
    ``address - 1``) when a symbol table is given, else ``"?"``."""
    table = np.array([*dump.names, "?"], dtype=object)
    fids = dump.frame_function_ids.astype(np.int64)
    names: npt.NDArray[np.object_] = table[np.where(fids == Dump.NO_NAME, len(dump.names), fids)]
    if symbols is not None:
        bare = np.flatnonzero((fids == Dump.NO_NAME) & dump.frame_has_address)
        if bare.size:
            index, _ = symbols.symbolize(dump.frame_addresses[bare], return_addresses=True)
            for row, f in zip(bare.tolist(), index.tolist()):
                if f >= 0:
                    names[row] = symbols[f].name
    return names


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
) -> tuple[TaskKind, str]:
    """A task's kind and the evidence it rests on, strongest evidence first.

    ``kthread`` is -1/0/1 (PF_KTHREAD when the source shows it); ``task_flags``
    are PF_* flags (``/proc`` stat, SysRq ``task_flags:`` since 6.15 — the older
    ``flags:`` field holds TIF_* flags and lands in ``thread_flags``), ``2**64 - 1``
    when unknown. ``syscall_entry``: a system-call entry frame is on the stack;
    ``kthread_root``: the stack is rooted in ``ret_from_fork`` → ``kthread()``.
    """
    if pid == 0 or comm.startswith("swapper"):
        return TaskKind.IDLE, "pid 0 / swapper: a per-CPU idle task"
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
    if comm.startswith(KTHREAD_NAMES):
        return TaskKind.KTHREAD, "its name is a kernel thread's (weak evidence)"
    return TaskKind.UNKNOWN, "no flags, registers or stack root tell"


#: What calls a kernel thread's main function: kthread() for every thread made by
#: kthread_create(); ret_from_fork directly for kthreadd, which rest_init()
#: starts with kernel_thread() (init/main.c).
THREAD_FN_CALLERS = ("kthread", "ret_from_fork")


def _is_thread_function(frames: Sequence[str], reliable: npt.NDArray[Any], at: int) -> bool:
    """Is frame ``at`` the thread's main function? Its caller — the next
    *reliable* frame out (``?`` frames are stack-scan guesses) — starts threads."""
    if at < 0:
        return False
    for k in range(at + 1, len(frames)):
        if bool(reliable[k]):
            return frames[k] in THREAD_FN_CALLERS or frames[k].startswith("ret_from_fork")
    return False


def _patched_in_sched_text(patch: Patch, index: int, symbols: Symbols) -> bool:
    start = patch.functions[index].start
    return start is not None and bool(symbols.in_hidden_text(start))


def _hidden_text(dump: Dump, patch: Patch, symbols: Symbols | None) -> bool:
    """Does the patch touch functions /proc/<pid>/stack never shows?"""
    if dump.source_format not in PROC_FORMATS or symbols is None or not patch.resolved:
        return False
    return any(
        bool(symbols.in_hidden_text(f.start)) for f in patch.functions if f.start is not None
    )


def _per_task_sum(offsets: npt.NDArray[np.int64], per_frame: npt.NDArray[Any]) -> list[int]:
    """Sum of a per-frame quantity over each task's CSR segment (empty segments → 0)."""
    totals = np.concatenate([[0], np.cumsum(per_frame.astype(np.int64))])
    return np.diff(totals[offsets]).tolist()  # type: ignore[no-any-return]


#: Stack statuses in the order of the dump's ``stack_status_codes``.
STACK_CODES = tuple(Stack(x.value) for x in _DUMP_STATUSES)


def _unique_rows(
    rows: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(first row of each distinct row, distinct-row id of every row)``.

    Rows of small non-negative ints are packed into one int64 when they fit
    (a 1-D unique sorts ~20× faster than numpy's row-wise unique).
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    widths = [max(int(col.max()), 0).bit_length() for col in rows.T]
    if int(rows.min()) >= 0 and sum(widths) <= 63:
        packed = np.zeros(len(rows), dtype=np.int64)
        for col, width in zip(rows.T, widths):
            packed = (packed << width) | col
        _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


class TaskTable(Sequence[TaskFacts]):
    """Every task's :class:`TaskFacts`, kept as columns and built on demand.

    A big dump holds hundreds of thousands of tasks, most of them alike for a
    model's purposes; the columns let :func:`check` judge one representative
    per group of identical facts (see :attr:`groups`) instead of every task.
    """

    def __init__(
        self, dump: Dump, patch: Patch, symbols: Symbols | None, found: Scan, hidden: bool
    ) -> None:
        self.dump, self.patch, self.found, self.hidden = dump, patch, found, hidden
        self._symbols = symbols
        n = dump.task_count
        self._offsets = dump.frame_offsets.astype(np.int64)
        self._bounds = self._offsets.tolist()
        self._names = frame_function_names(dump, symbols)
        fnames = self._names
        eligible = dump.frame_reliable & ~dump.frame_inlined
        self._eligible = eligible
        self.depth = _per_task_sum(self._offsets, eligible)
        interrupted = _per_task_sum(self._offsets, dump.frame_context_codes != 0)
        # Stack-shape evidence for a task's kind, by name id, summed per task.
        table = [*dump.names, "?"]
        is_entry = np.array([n.startswith(SYSCALL_ENTRY) for n in table], dtype=bool)
        is_kthread = np.array([n == "kthread" for n in table], dtype=bool)
        is_fork = np.array([n.startswith("ret_from_fork") for n in table], dtype=bool)
        fids = dump.frame_function_ids.astype(np.int64)
        fids = np.where(fids == Dump.NO_NAME, len(dump.names), fids)
        entry = _per_task_sum(self._offsets, is_entry[fids])
        kroot = np.array(_per_task_sum(self._offsets, is_kthread[fids])) * np.array(
            _per_task_sum(self._offsets, is_fork[fids])
        )
        if symbols is not None and bool((dump.frame_function_ids == Dump.NO_NAME).any()):
            # Address-only frames were symbolized: recount from the names.
            entry = [sum(1 for f in fnames[a:b] if f.startswith(SYSCALL_ENTRY))
                     for a, b in zip(self._bounds, self._bounds[1:])]
        self.pids, self.tids = dump.pids.tolist(), dump.tids.tolist()
        self.states = [chr(x) if x else None for x in dump.states.tolist()]
        self.on_cpu = [None if x < 0 else bool(x) for x in dump.on_cpus.tolist()]
        interrupted_any = np.asarray(interrupted) > 0
        status_codes = dump.stack_status_codes.astype(np.int64)
        complete = STACK_CODES.index(Stack.COMPLETE)
        # An interrupt or exception frame makes the reliable unwinder give up.
        stack_codes = np.where(
            (status_codes == complete) & interrupted_any,
            STACK_CODES.index(Stack.UNWIND_FAILURE), status_codes,
        )
        self.stack = [STACK_CODES[c] for c in stack_codes.tolist()]
        self.first, self.function = found.first.tolist(), found.function.tolist()
        self.comms = dump.comms
        comm_ids: dict[str, int] = {}
        self._comm_id = np.array([comm_ids.setdefault(c, len(comm_ids)) for c in self.comms],
                                 dtype=np.int64)
        self.freezable = [True if c.startswith(FREEZABLE_KTHREADS) else None for c in self.comms]
        # Kind: one infer_kind() call per distinct combination of its inputs.
        pids = dump.pids.astype(np.int64)
        flags = dump.task_flags
        pf = np.where(flags == np.uint64(2**64 - 1), 2,
                      ((flags & np.uint64(PF_KTHREAD)) != 0).astype(np.int64))
        special_pid = np.where(pids == 0, 1, np.where(pids == 2, 2, 0))
        kind_inputs = np.stack([
            self._comm_id, special_pid, dump.kthreads.astype(np.int64) + 1, pf,
            dump.user_regs.astype(np.int64), (dump.ppids == 2).astype(np.int64),
            (np.asarray(entry) > 0).astype(np.int64), (np.asarray(kroot) > 0).astype(np.int64),
        ], axis=1) if n else np.zeros((0, 8), dtype=np.int64)
        first_of, self._kind_key = _unique_rows(kind_inputs)
        kthreads, tflags = dump.kthreads.tolist(), flags.tolist()
        ppids, regs = dump.ppids.tolist(), dump.user_regs.tolist()
        judged = [
            infer_kind(pid=self.pids[t], comm=self.comms[t], kthread=kthreads[t],
                       task_flags=tflags[t], user_regs=bool(regs[t]), ppid=ppids[t],
                       syscall_entry=entry[t] > 0, kthread_root=bool(kroot[t]))
            for t in first_of.tolist()
        ]
        keys = self._kind_key.tolist()
        self.kind = [judged[k][0] for k in keys]
        self.evidence = [judged[k][1] for k in keys]
        self._depth = np.asarray(self.depth, dtype=np.int64)
        self._state_codes = dump.states.astype(np.int64)
        self._on_cpu_codes = dump.on_cpus.astype(np.int64) + 1
        self._stack_codes = stack_codes

    def __len__(self) -> int:
        return self.dump.task_count

    def frames(self, t: int) -> tuple[str, ...]:
        return tuple(self._names[self._bounds[t] : self._bounds[t + 1]].tolist())

    def _facts(self, t: int) -> TaskFacts:
        frames = self.frames(t)
        first = self.first[t]
        stack = self.stack[t]
        return TaskFacts(
            index=t,
            pid=None if self.pids[t] < 0 else self.pids[t],
            tid=None if self.tids[t] < 0 else self.tids[t],
            comm=self.comms[t],
            state=self.states[t],
            kind=self.kind[t],
            kind_evidence=self.evidence[t],
            on_cpu=self.on_cpu[t],
            stack=stack,
            depth=self.depth[t],
            patched_frame=first if first >= 0 else None,
            patched_function=self.patch.functions[self.function[t]].name if first >= 0 else None,
            patched_frame_is_thread_fn=self._thread_fn(t, frames),
            frames=frames,
            patched_frames_any=self.found.any_frames.get(t, ()),
            hidden_patched_text=self.hidden and stack is Stack.COMPLETE,
            freezable=self.freezable[t],
            patched_frame_in_sched_text=(
                first >= 0 and self._symbols is not None
                and _patched_in_sched_text(self.patch, self.function[t], self._symbols)
            ),
        )

    def _thread_fn(self, t: int, frames: Sequence[str]) -> bool:
        lo, hi = self._bounds[t], self._bounds[t + 1]
        return self.kind[t] is TaskKind.KTHREAD and _is_thread_function(
            frames, self._eligible[lo:hi], self.first[t]
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
    def groups(self) -> tuple[list[int], list[int]]:
        """``(group of each task, one representative task per group)``.

        Two tasks share a group when every fact a model reads is equal:
        :class:`TaskFacts` minus identity (index, pid, tid) and the frame names,
        which models read only at patched positions — so tasks with patched
        frames group by those positions and names too.
        """
        n = len(self)
        if n == 0:
            return [], []
        # Patched frames: a small id per distinct (first, function, thread fn,
        # positions and names of every patched frame); 0 = no patched frame.
        hit_ids = np.zeros(n, dtype=np.int64)
        hit_keys: dict[tuple[Any, ...], int] = {}
        names, bounds = self._names, self._bounds
        for t in set(self.found.any_frames) | {t for t, f in enumerate(self.first) if f >= 0}:
            base, first = bounds[t], self.first[t]
            anyf = self.found.any_frames.get(t, ())
            # thread_fn depends on the frames beyond `first`; the kind is in the row.
            key = (first, self.function[t], anyf, tuple(names[base + i] for i in anyf),
                   self._thread_fn(t, tuple(names[base : bounds[t + 1]].tolist())))
            hit_ids[t] = hit_keys.setdefault(key, len(hit_keys) + 1)
        columns = np.stack([
            self._kind_key, self._state_codes, self._on_cpu_codes, self._stack_codes,
            self._depth, hit_ids,
        ], axis=1)
        reps, group = _unique_rows(columns)
        return group.tolist(), reps.tolist()


def task_facts(
    dump: Dump, patch: Patch, symbols: Symbols | None = None, found: Scan | None = None
) -> tuple[TaskTable, list[str]]:
    """What a model may know of each task of the dump, and the warnings it rests on."""
    found = found or scan(dump, patch, symbols)
    warnings = list(found.warnings)
    hidden = _hidden_text(dump, patch, symbols)
    if hidden:
        warnings.append(
            "the patch touches .sched.text/lock text, which /proc/<pid>/stack never shows: "
            "sleeping tasks' stacks cannot prove they are outside it (use a SysRq-t dump)"
        )
    return TaskTable(dump, patch, symbols, found, hidden), warnings


@dataclass(frozen=True)
class TaskResult:
    facts: TaskFacts
    outcome: TaskOutcome

    def as_json(self) -> dict[str, Any]:
        f, o = self.facts, self.outcome
        frame = (
            None if f.patched_frame is None
            else {"index": f.patched_frame, "function": f.patched_function}
        )
        return {
            "pid": f.pid,
            "tid": f.tid,
            "comm": f.comm,
            "state": f.state,
            "kthread": None if f.kind is TaskKind.UNKNOWN else f.kind is TaskKind.KTHREAD,
            "kind": f.kind.value,
            "kind_evidence": f.kind_evidence,
            "on_cpu": f.on_cpu,
            "stack": f.stack.value,
            "verdict": o.verdict.value,
            "errno": o.errno,
            "frame": frame,
            "outlook": o.outlook.value,
            "reason": o.reason,
            "eta_s": o.eta_s,
            **({"extra": o.extra} if o.extra else {}),
        }


class TaskResults(Sequence[TaskResult]):
    """Per-task results of one check (all tasks, or a chosen few in a chosen
    order), built on demand from the facts and the shared outcomes."""

    def __init__(
        self,
        facts: Sequence[TaskFacts],
        outcomes: Sequence[TaskOutcome],
        indices: Sequence[int] | None = None,
        groups: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.facts, self.outcomes = facts, outcomes
        self._indices = range(len(outcomes)) if indices is None else indices
        #: Group of each task when outcomes are shared per group (see TaskTable.groups).
        self.groups = groups

    def distinct(self) -> list[tuple[TaskOutcome, npt.NDArray[np.int64]]]:
        """Each distinct outcome object with the tasks that share it (all tasks)."""
        if self.groups is None:
            return [(o, np.array([t])) for t, o in enumerate(self.outcomes)]
        order = np.argsort(self.groups, kind="stable")
        bounds = np.flatnonzero(np.diff(self.groups[order])) + 1
        return [(self.outcomes[int(part[0])], part) for part in np.split(order, bounds)]

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> TaskResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskResult]: ...

    def __getitem__(self, index: int | slice) -> TaskResult | list[TaskResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        t = self._indices[index]
        return TaskResult(self.facts[t], self.outcomes[t])

    def subset(self, indices: Sequence[int]) -> TaskResults:
        """The results of these tasks (by task index), in this order."""
        return TaskResults(self.facts, self.outcomes, indices, self.groups)


_OUTLOOK_ORDER = {o: i for i, o in enumerate([
    Outlook.STUCK, Outlook.UNKNOWN, Outlook.AFTER_WAKEUP, Outlook.AFTER_SIGNAL,
    Outlook.AT_KERNEL_EXIT, Outlook.SWITCHED,
])}


@dataclass(frozen=True)
class CheckResult:
    """One model's answer on one snapshot."""

    model: str
    cell: tuple[str, str]
    patch: Patch
    source: Mapping[str, Any]
    tasks: TaskResults
    transition: TransitionOutcome
    warnings: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def converges(self) -> bool | None:
        return self.transition.converges

    def count(self, verdict: Verdict) -> int:
        return sum(len(ts) for o, ts in self.tasks.distinct() if o.verdict is verdict)

    @cached_property
    def blocking(self) -> TaskResults:
        """Tasks that did not switch now, worst outlook first (built on demand)."""
        keep = [(o, ts) for o, ts in self.tasks.distinct()
                if o.verdict is not Verdict.SWITCH or o.outlook is not Outlook.SWITCHED]
        if not keep:
            return self.tasks.subset([])
        tasks = np.concatenate([ts for _, ts in keep])
        rank = np.concatenate([np.full(len(ts), _OUTLOOK_ORDER[o.outlook]) for o, ts in keep])
        order = np.lexsort((tasks, rank))
        return self.tasks.subset(tasks[order].tolist())

    def summary(self) -> dict[str, Any]:
        verdicts: Counter[Verdict] = Counter()
        outlooks: Counter[str] = Counter()
        for o, ts in self.tasks.distinct():
            verdicts[o.verdict] += len(ts)
            outlooks[o.outlook.value] += len(ts)
        return {
            "tasks": len(self.tasks),
            "switch": verdicts[Verdict.SWITCH],
            "blocked": verdicts[Verdict.BLOCKED],
            "running": verdicts[Verdict.RUNNING],
            "unreliable": verdicts[Verdict.UNRELIABLE],
            "converges": self.converges,
            "reason": self.transition.reason,
            "eta_s": self.transition.eta_s,
            "outlooks": dict(outlooks),
        }

    def as_json(self, with_source: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if with_source:
            out["source"] = dict(self.source)
        out.update(
            model=self.model,
            cell={"leave": self.cell[0], "switch": self.cell[1]},
            params=dict(self.params),
            patch=self.patch.as_json(),
            tasks=[t.as_json() for t in self.tasks],
            summary=self.summary(),
            warnings=list(self.warnings),
        )
        return out


def _source(dump: Dump, symbols: Symbols | None, by_address: bool) -> dict[str, Any]:
    return {
        "format": dump.source_format,
        "path": dump.path,
        "kernel_release": dump.kernel_release,
        "tasks": dump.task_count,
        "frames": dump.frame_count,
        "skipped_lines": dump.skipped_lines,
        "symbols": None if symbols is None else symbols.source,
        "matched_by": "address" if by_address else "name",
    }


def _model_params(name: str, patch: Patch, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters a model takes from the patch itself, plus the caller's."""
    out = dict(params)
    if name == "klp":
        out.setdefault("unpatching", patch.unpatch)
    if name == "josh":
        out.setdefault("freezer_path_patched", bool(patch.names & FREEZER_PATH))
    return out


def _as_patch(patch: Patch | str | Sequence[str]) -> Patch:
    if isinstance(patch, Patch):
        return patch
    return Patch.parse(patch if isinstance(patch, str) else ",".join(patch))


def check(
    dump: Dump,
    patch: Patch | str | Sequence[str],
    model: str | Model = "klp",
    symbols: Symbols | None = None,
    **params: Any,
) -> CheckResult:
    """Judge every task of the dump under one model (see the module docstring).

    ``patch`` is a :class:`~lpc.patch.Patch` or its command-line spelling
    (``"worker_thread,ext4:ext4_file_write_iter@2"``); ``params`` go to the
    model (e.g. ``force=True``, ``cond_resched_switch=False`` for klp).
    """
    patch = _as_patch(patch)
    if symbols is not None and not patch.resolved:
        patch = patch.resolve(symbols)
    found = scan(dump, patch, symbols)
    facts, warnings = task_facts(dump, patch, symbols, found)
    return _judge(dump, patch, symbols, found, facts, warnings, model, params)


def _judge(
    dump: Dump,
    patch: Patch,
    symbols: Symbols | None,
    found: Scan,
    facts: TaskTable,
    warnings: list[str],
    model: str | Model,
    params: Mapping[str, Any],
) -> CheckResult:
    if isinstance(model, str):
        used = _model_params(model, patch, params)
        m = get_model(model, **used)
    else:
        m, used = model, dict(params)
    # One judgement per group of identical facts (TaskTable.groups): a model is
    # a pure function of TaskFacts, so the answer holds for the whole group.
    group, reps = facts.groups  # computed once, shared by every model of check_all
    judged = [m.judge_task(facts[t]) for t in reps]
    outcomes = [judged[g] for g in group]
    transition = m.judge_transition(facts, outcomes)
    groups = np.asarray(group, dtype=np.int64)
    extra = list(warnings) + list(dump.warnings)
    unreliable = len(facts) if facts.hidden else sum(
        1 for st in facts.stack if st is not Stack.COMPLETE
    )
    if unreliable:
        extra.append(f"{unreliable} task(s) have an empty, unreadable or unreliable stack: unknown")
    if not found.by_address:
        seen = {patch.functions[f].name for f, first in zip(facts.function, facts.first) if first >= 0}
        missing = sorted(patch.names - seen)
        if missing:
            extra.append(f"patch function(s) seen on no stack: {', '.join(missing)}")
    return CheckResult(
        m.name, m.cell, patch, _source(dump, symbols, found.by_address),
        TaskResults(facts, outcomes, groups=groups), transition, tuple(dict.fromkeys(extra)),
        used,
    )


def check_all(
    dump: Dump, patch: Patch | str | Sequence[str], symbols: Symbols | None = None, **params: Any
) -> dict[str, CheckResult]:
    """Every named model side by side on the same snapshot (one scan)."""
    patch = _as_patch(patch)
    if symbols is not None and not patch.resolved:
        patch = patch.resolve(symbols)
    found = scan(dump, patch, symbols)
    facts, warnings = task_facts(dump, patch, symbols, found)
    return {
        name: _judge(dump, patch, symbols, found, facts, warnings, name,
                     params if name == "klp" else {})
        for name in MODELS
    }


def sleeping_functions(dump: Dump) -> list[tuple[str, int]]:
    """Functions on the stacks of tasks that are asleep, with how many tasks each
    holds: what a patch cannot touch without blocking those tasks under klp."""
    counts: Counter[str] = Counter()
    statuses = dump.stack_statuses
    for t in range(dump.task_count):
        if statuses[t].value != "complete" or int(dump.on_cpus[t]) == 1:
            continue
        lo, hi = int(dump.frame_offsets[t]), int(dump.frame_offsets[t + 1])
        ok = dump.frame_reliable[lo:hi] & ~dump.frame_inlined[lo:hi]
        fids = dump.frame_function_ids[lo:hi][ok].tolist()
        counts.update({dump.names[f] for f in fids if f != Dump.NO_NAME})
    return counts.most_common()
