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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from lpc import _core
from lpc.dump import _STATUSES as _DUMP_STATUSES
from lpc.dump import UNKNOWN_U64, Dump
from lpc.models import (
    MODELS,
    Model,
    Outlook,
    Stack,
    TalliedOutcomes,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    get_model,
    tally,
)
from lpc.models.josh import FREEZER_PATH
from lpc.patch import Patch
from lpc.symbols import Symbols

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "PatchedFrames",
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
    "token_function_names",
    "token_name_ids",
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


def _token_addresses(
    dump: Dump, symbols: Symbols
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Each frame token's return address: printed, or the symbol's address + offset.

    A dump holds few distinct tokens (``worker_thread+0x98/0x310`` repeats on
    every kworker), so each is resolved once, and each distinct (function,
    object, size) once among them. Returns the addresses, which tokens have
    one, and which named tokens could not be pinned to one function.
    """
    addresses = dump.token_addresses.astype(np.uint64, copy=True)
    known = dump.token_has_address.astype(bool, copy=True)
    unresolved = np.zeros(dump.token_count, dtype=bool)
    named = ~known & (dump.token_function_ids != Dump.NO_NAME)
    named &= dump.token_symbol_offsets != np.uint64(UNKNOWN_U64)
    rows = np.flatnonzero(named)
    if not rows.size:
        return addresses, known, unresolved
    fids, mids = dump.token_function_ids[rows], dump.token_module_ids[rows]
    sizes = dump.token_symbol_sizes[rows]
    keys, reps = _group(fids, mids, sizes)
    starts = np.zeros(len(reps), dtype=np.uint64)
    ok = np.zeros(len(reps), dtype=bool)
    for k, (fid, mid, size) in enumerate(zip(fids[reps].tolist(), mids[reps].tolist(),
                                             sizes[reps].tolist())):
        module = None if mid == Dump.NO_NAME else dump.names[mid]
        start = symbols.resolve(dump.names[fid], 0, None if size == UNKNOWN_U64 else size, module)
        if start is not None:
            starts[k], ok[k] = start, True
    good = ok[keys]
    addresses[rows[good]] = starts[keys[good]] + dump.token_symbol_offsets[rows[good]]
    known[rows[good]] = True
    unresolved[rows[~good]] = True
    return addresses, known, unresolved


def _token_patch_ids_by_name(dump: Dump, patch: Patch) -> npt.NDArray[np.int64]:
    """Patch-function index of each frame token matched by (name, object), or -1."""
    index = {name: i for i, name in enumerate(dump.names)}
    fids = dump.token_function_ids.astype(np.int64)
    mids = dump.token_module_ids.astype(np.int64)
    ids = np.full(dump.token_count, -1, dtype=np.int64)
    for k, f in enumerate(patch.functions):
        fid = index.get(f.name)
        if fid is None:
            continue
        # Object check: a vmlinux function must not match a same-named module frame.
        mid = Dump.NO_NAME if f.object is None else index.get(f.object, -2)
        ids[(fids == fid) & (mids == mid) & (ids < 0)] = k
    return ids


def _first_per_task(
    token_function: npt.NDArray[np.int64], dump: Dump, eligible: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per task, its first eligible frame whose token lies in the patch, and
    that patch function: the Rust CSR scanner over token indices (token ``k``
    is given the one-address range ``[k, k + 1)``, labelled with its function)."""
    hit = np.flatnonzero(token_function >= 0)
    tree = _core.IntervalTree.from_arrays(hit, hit + 1, token_function[hit])
    token_ips = np.arange(dump.token_count, dtype=np.uint64)
    return tree.first_hit_per_token_stack(
        token_ips, dump.frame_tokens, dump.frame_offsets, mask=eligible
    )


def scan(dump: Dump, patch: Patch, symbols: Symbols | None = None) -> Scan:
    """Where the patch meets each task's stack (see :class:`Scan`).

    Work is per frame *token* (a distinct printed frame): each token is
    resolved and looked up once, by address in the patch's interval tree when
    there is a symbol table, else by name. The first eligible hit per task then
    comes from the Rust CSR scanner (``IntervalTree.first_hit_per_token_stack``:
    every stack at once, GIL released, parallel for large dumps); ``?`` and
    inlined frames are masked out, as the kernel's reliable unwinder never
    reports them.
    """
    warnings: list[str] = []
    eligible = dump.frame_reliable & ~dump.frame_inlined
    tokens = dump.frame_tokens
    if symbols is not None and patch.resolved:
        addresses, known, unresolved = _token_addresses(dump, symbols)
        if unresolved.any():
            frames = int(np.bincount(tokens, minlength=dump.token_count)[unresolved].sum())
            warnings.append(
                f"{frames} frame(s) could not be pinned to one function of the symbol table "
                "(another kernel's symbols, or an ambiguous name): they count as outside the patch"
            )
        tree = _core.IntervalTree(
            (f.start, f.end, k)
            for k, f in enumerate(patch.functions)
            if f.start is not None and f.end is not None
        )
        token_function = np.where(known, tree.find_many(addresses), -1)
        by_address = True
    else:
        token_function = _token_patch_ids_by_name(dump, patch)
        by_address = False
        warnings.append(
            "no symbol table: frames matched the patch by name, so duplicate static functions "
            "(sympos) are not told apart"
        )
    first, function = _first_per_task(token_function, dump, eligible)
    token_hit = token_function >= 0
    rows = np.flatnonzero(token_hit[tokens]) if token_hit.any() else np.zeros(0, dtype=np.int64)
    offsets = dump.frame_offsets.view(np.int64)  # < 2**63: the same numbers
    return Scan(first, function, PatchedFrames(offsets, rows), by_address, tuple(warnings),
                token_function, eligible)


def first_patched_frame(
    dump: Dump, patch: Patch, symbols: Symbols | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per task: the position of its first reliable frame inside the patched set
    and the index (into ``patch.functions``) of that function, -1 for none."""
    if symbols is not None and not patch.resolved:
        patch = patch.resolve(symbols)
    found = scan(dump, patch, symbols)
    return found.first, found.function


def token_name_ids(dump: Dump, symbols: Symbols | None = None) -> tuple[list[str], npt.NDArray[np.int64]]:
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


def _name_flags(names: Sequence[str], test: Callable[[str], bool | int]) -> npt.NDArray[np.uint8]:
    """A per-name lookup table of ``test`` (names are few; frames are millions)."""
    return np.fromiter((int(test(n)) for n in names), dtype=np.uint8, count=len(names))


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


def _starts_threads(name: str) -> bool:
    return name in THREAD_FN_CALLERS or name.startswith("ret_from_fork")


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


#: Stack statuses in the order of the dump's ``stack_status_codes``.
STACK_CODES = tuple(Stack(x.value) for x in _DUMP_STATUSES)
#: Above this many possible values, grouping sorts instead of using a dense table.
_DENSE_LIMIT = 1 << 22


def _per_task(
    reduce: np.ufunc, offsets: npt.NDArray[np.int64], per_frame: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """``reduce`` (add, bitwise_or) of a per-frame column over each task's CSR
    segment; an empty segment gives 0."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=per_frame.dtype)
    filled = offsets[1:] > offsets[:-1]
    if per_frame.size and filled.any():
        out[filled] = reduce.reduceat(per_frame, offsets[:-1][filled])
    return out


def _factorize(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense ids for integer keys, numbered in order of first appearance, and
    the position of each id's first appearance.

    Small non-negative keys go through a dense table (O(n), no sort); others
    through a sort. Grouping half a million tasks costs about a millisecond.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(keys.min()), int(keys.max())
    if low >= 0 and high < _DENSE_LIMIT:
        first = np.full(high + 1, n, dtype=np.int64)
        np.minimum.at(first, keys, np.arange(n, dtype=np.int64))
        reps = np.sort(first[first < n])
        ids = np.empty(high + 1, dtype=np.int64)
        ids[keys[reps]] = np.arange(len(reps), dtype=np.int64)
        return ids[keys], reps
    _, at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(at)
    rank = np.empty(len(at), dtype=np.int64)
    rank[order] = np.arange(len(at), dtype=np.int64)
    return rank[inverse.reshape(-1)], at[order].astype(np.int64)


def _group(*columns: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense id of each row of these equal-length integer columns (rows equal
    ⇔ ids equal), in order of first appearance, and each id's first row.

    Columns (bool or small ints, any width) are packed in place into one
    mixed-radix int64 key while its range stays small; when it would not, the
    key so far is re-densified (its range becomes the number of distinct rows
    so far) before the next column goes in. One key array, no temporaries of
    the columns' length: on half a million tasks, fresh pages cost more than
    the arithmetic.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        col = column.view(np.uint8) if column.dtype == np.bool_ else column
        if col.dtype == np.uint64:  # int64 keys: the same bits, then compared as signed
            col = col.view(np.int64)
        low = int(col.min()) if col.size else 0
        width = (int(col.max()) - low + 1) if col.size else 1
        if span * width >= _DENSE_LIMIT:
            key, reps = _factorize(key)
            span = max(len(reps), 1)
            if span * width >= _DENSE_LIMIT:  # a wide column: densify it alone first
                col, col_reps = _factorize(col.astype(np.int64))
                width, low = max(len(col_reps), 1), 0
        key *= width
        key += col
        if low:
            key -= low
        span *= width
    return _factorize(key)


def _hit_sequences(found: Scan, frame_names: npt.NDArray[np.int64], tasks: int) -> npt.NDArray[np.int64]:
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
    code, _ = _group(frames.positions, frame_names)
    starts = np.flatnonzero(np.diff(owners, prepend=-1))
    rank = np.arange(len(owners)) - np.repeat(starts, np.diff(np.append(starts, len(owners))))
    next_free = 1
    for r in range(int(rank.max()) + 1):
        at = rank == r
        ids, reps = _group(out[owners[at]], code[at])
        out[owners[at]] = ids + next_free
        next_free += len(reps)
    return out


class TaskTable(Sequence[TaskFacts]):
    """Every task's :class:`TaskFacts`, kept as columns and built on demand.

    A big dump holds hundreds of thousands of tasks, most of them alike for a
    model's purposes; the columns let :func:`check` judge one representative
    per group of identical facts (see :attr:`groups`) instead of every task.
    Everything here is a numpy column or a table over the dump's interned
    names, comms and frame tokens; Python objects are made only for the tasks
    someone looks at.
    """

    def __init__(
        self, dump: Dump, patch: Patch, symbols: Symbols | None, found: Scan, hidden: bool
    ) -> None:
        self.dump, self.patch, self.found, self.hidden = dump, patch, found, hidden
        self._symbols = symbols
        offsets = dump.frame_offsets.view(np.int64)  # < 2**63: the same numbers
        self._offsets = offsets
        self._tokens = dump.frame_tokens
        #: Function names (dump's, "?", symbolized) and each token's name id.
        self._names, self._token_name = token_name_ids(dump, symbols)
        eligible = found.eligible
        self._eligible = eligible
        #: Per task: reliable, non-inlined frames (what the kernel's walker reports),
        #: counted as all frames minus the (few) others.
        passed_over = np.flatnonzero(~eligible)
        owners = np.searchsorted(offsets, passed_over, side="right") - 1
        self.depth = np.diff(offsets) - np.bincount(owners, minlength=len(self))
        self._evidence_bits = self._stack_evidence(dump, offsets)
        interrupted = (self._evidence_bits & 8) != 0
        # An interrupt or exception frame makes the reliable unwinder give up.
        codes = dump.stack_status_codes.astype(np.int64)
        complete = STACK_CODES.index(Stack.COMPLETE)
        self.stack_codes = np.where(
            (codes == complete) & interrupted, STACK_CODES.index(Stack.UNWIND_FAILURE), codes
        )
        self.first, self.function = found.first, found.function
        self._kind_of_group, self._evidence_of_group, self.kind_groups = self._kinds(dump)
        self._kind_codes = np.array(
            [list(TaskKind).index(k) for k in self._kind_of_group], dtype=np.int64
        )[self.kind_groups] if len(self._kind_of_group) else np.zeros(0, dtype=np.int64)
        self.thread_fn = self._thread_functions()
        self._groups_by_prefixes: dict[tuple[str, ...], tuple[npt.NDArray[np.int64],
                                                              npt.NDArray[np.int64]]] = {}

    # ---- columns ---------------------------------------------------------------------

    def _stack_evidence(self, dump: Dump, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """Per task, bits of what its stack shows: 1 a system-call entry frame,
        2 ``kthread()``, 4 ``ret_from_fork``, 8 an interrupt/exception frame."""
        by_name = _name_flags(self._names, lambda n: (
            (1 if n.startswith(SYSCALL_ENTRY) else 0) | (2 if n == "kthread" else 0)
            | (4 if n.startswith("ret_from_fork") else 0)))
        by_token = by_name[self._token_name]
        per_frame = by_token[self._tokens] if len(by_token) else np.zeros(len(self._tokens), np.uint8)
        per_frame[dump.frame_context_codes != 0] |= 8
        return _per_task(np.bitwise_or, offsets, per_frame)

    def _kinds(self, dump: Dump) -> tuple[list[TaskKind], list[str], npt.NDArray[np.int64]]:
        """Each task's kind and evidence: one :func:`infer_kind` call per distinct
        combination of what it reads. It reads the comm only through three
        prefixes (swapper, kernel-thread names, freezable kthreads), so comms
        enter the key as those three bits, computed once per distinct comm."""
        comm_class = np.array(
            [(1 if c.startswith("swapper") else 0) | (2 if c.startswith(KTHREAD_NAMES) else 0)
             | (4 if c.startswith(FREEZABLE_KTHREADS) else 0) for c in dump.comm_names] or [0],
            dtype=np.uint8,
        )
        pids, flags = dump.pids, dump.task_flags
        pf_unknown = flags == np.uint64(UNKNOWN_U64)
        pf_kthread = (flags & np.uint64(PF_KTHREAD)) != 0
        bits = self._evidence_bits
        kthread_root = (bits & 6) == 6
        groups, reps = _group(
            comm_class[dump.comm_ids] if dump.task_count else np.zeros(0, dtype=np.uint8),
            pids == 0, pids == 2, dump.kthreads, pf_unknown, pf_kthread & ~pf_unknown,
            dump.user_regs, dump.ppids == 2, (bits & 1) != 0, kthread_root,
        )
        judged = [
            infer_kind(pid=int(pids[t]), comm=dump.comm(t), kthread=int(dump.kthreads[t]),
                       task_flags=int(flags[t]), user_regs=bool(dump.user_regs[t]),
                       ppid=int(dump.ppids[t]), syscall_entry=bool(bits[t] & 1),
                       kthread_root=bool(kthread_root[t]))
            for t in reps.tolist()
        ]
        return [k for k, _ in judged], [e for _, e in judged], groups

    def _thread_functions(self) -> npt.NDArray[np.bool_]:
        """Per kthread whose first patched frame is known: is that frame the
        thread's main function? Its caller — the next *eligible* frame out (``?``
        frames are stack-scan guesses) — starts threads."""
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
        starter = _name_flags(self._names, _starts_threads).astype(bool)[self._token_name]
        inside = at < end
        out[tasks[inside]] = starter[self._tokens[at[inside]]]
        return out

    # ---- one task --------------------------------------------------------------------

    def __len__(self) -> int:
        return self.dump.task_count

    def frames(self, t: int) -> tuple[str, ...]:
        names, tokens = self._names, self._tokens[self._offsets[t] : self._offsets[t + 1]]
        return tuple(names[k] for k in self._token_name[tokens].tolist())

    def interrupted(self, t: int) -> bool:
        """Whether task ``t``'s stack holds an interrupt or exception frame (an
        ``<IRQ>``/``<NMI>``/exception section): the dump caught it mid-interrupt."""
        return bool(self._evidence_bits[t] & 8)

    def kind(self, t: int) -> TaskKind:
        return self._kind_of_group[int(self.kind_groups[t])]

    def stack(self, t: int) -> Stack:
        return STACK_CODES[int(self.stack_codes[t])]

    def _facts(self, t: int) -> TaskFacts:
        d = self.dump
        first = int(self.first[t])
        stack = self.stack(t)
        kind_group = int(self.kind_groups[t])
        state, on_cpu = int(d.states[t]), int(d.on_cpus[t])
        pid, tid = int(d.pids[t]), int(d.tids[t])
        return TaskFacts(
            index=t,
            pid=None if pid < 0 else pid,
            tid=None if tid < 0 else tid,
            comm=d.comm(t),
            state=chr(state) if state else None,
            kind=self._kind_of_group[kind_group],
            kind_evidence=self._evidence_of_group[kind_group],
            on_cpu=None if on_cpu < 0 else bool(on_cpu),
            stack=stack,
            depth=int(self.depth[t]),
            patched_frame=first if first >= 0 else None,
            patched_function=(
                self.patch.functions[int(self.function[t])].name if first >= 0 else None
            ),
            patched_frame_is_thread_fn=bool(self.thread_fn[t]),
            frames=self.frames(t),
            patched_frames_any=self.found.any_frames.get(t, ()),
            hidden_patched_text=self.hidden and stack is Stack.COMPLETE,
            freezable=True if d.comm(t).startswith(FREEZABLE_KTHREADS) else None,
            patched_frame_in_sched_text=(
                first >= 0 and self._symbols is not None
                and _patched_in_sched_text(self.patch, int(self.function[t]), self._symbols)
            ),
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

        Two tasks share a group when every fact a model reads is equal:
        :class:`TaskFacts` minus identity (index, pid, tid, comm beyond what
        :meth:`_kinds` reads; see :meth:`groups_for` for models that test comm
        prefixes) and the frame names, which models read only at patched
        positions — so tasks with patched frames group by the first patched
        frame and function and by the positions and names of every patched
        frame (not their offsets: no model reads them).
        """
        d = self.dump
        return _group(
            self.kind_groups, d.states, d.on_cpus, self.stack_codes, self.depth,
            self.first, self.function,
            _hit_sequences(self.found, self._token_name[self._tokens[self.found.any_frames.rows]],
                           len(self)),
            self.thread_fn,
        )

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
            classes, _ = _factorize(np.fromiter(
                (sum(1 << k for k, p in enumerate(comm_prefixes) if c.startswith(p))
                 for c in self.dump.comm_names), dtype=np.int64, count=len(self.dump.comm_names)))
            by_comm = classes[self.dump.comm_ids] if len(self) else classes[:0]
            self._groups_by_prefixes[comm_prefixes] = _group(self.groups[0], by_comm)
        return self._groups_by_prefixes[comm_prefixes]


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


class GroupOutcomes(TalliedOutcomes):
    """Each task's outcome, stored once per group of tasks with identical facts
    (see :attr:`TaskTable.groups`)."""

    def __init__(self, judged: Sequence[TaskOutcome], groups: npt.NDArray[np.int64]) -> None:
        #: One outcome per group, and the group of each task.
        self.judged, self.groups = list(judged), groups

    def __len__(self) -> int:
        return len(self.groups)

    @overload
    def __getitem__(self, index: int) -> TaskOutcome: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskOutcome]: ...

    def __getitem__(self, index: int | slice) -> TaskOutcome | list[TaskOutcome]:
        if isinstance(index, slice):
            return [self.judged[g] for g in self.groups[index].tolist()]
        return self.judged[int(self.groups[index])]

    def tally(self) -> list[tuple[TaskOutcome, int]]:
        # Groups are numbered in order of first appearance, so this order is too.
        counts = np.bincount(self.groups, minlength=len(self.judged)).tolist()
        return [(o, n) for o, n in zip(self.judged, counts) if n]

    @cached_property
    def members(self) -> list[npt.NDArray[np.int64]]:
        """The tasks of each group, ascending."""
        order = np.argsort(self.groups, kind="stable")
        bounds = np.cumsum(np.bincount(self.groups, minlength=len(self.judged)))[:-1]
        return np.split(order, bounds)


class TaskResults(Sequence[TaskResult]):
    """Per-task results of one check (all tasks, or a chosen few in a chosen
    order), built on demand from the facts and the shared outcomes."""

    def __init__(
        self,
        facts: Sequence[TaskFacts],
        outcomes: Sequence[TaskOutcome],
        indices: Sequence[int] | None = None,
    ) -> None:
        self.facts, self.outcomes = facts, outcomes
        self._indices = range(len(outcomes)) if indices is None else indices

    def distinct(self) -> list[tuple[TaskOutcome, npt.NDArray[np.int64]]]:
        """Each distinct outcome with the tasks that share it (all tasks)."""
        if isinstance(self.outcomes, GroupOutcomes):
            members = self.outcomes.members
            return [(o, ts) for o, ts in zip(self.outcomes.judged, members) if len(ts)]
        return [(o, np.array([t])) for t, o in enumerate(self.outcomes)]

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
        return TaskResults(self.facts, self.outcomes, indices)

    def as_json(self) -> list[dict[str, Any]]:
        """Every result's :meth:`TaskResult.as_json`, in order.

        With grouped outcomes, everything but identity (pid, tid, comm) is the
        same within a group — state, CPU, kind, stack, patched frame and the
        outcome are all in :attr:`TaskTable.groups`' key — so each group's
        document is made once and copied per task.
        """
        if not (isinstance(self.facts, TaskTable) and isinstance(self.outcomes, GroupOutcomes)):
            return [t.as_json() for t in self]
        table, groups = self.facts, self.outcomes.groups
        d = table.dump
        tasks = np.asarray(self._indices, dtype=np.int64)
        templates: dict[int, dict[str, Any]] = {}
        for g, t in zip(groups[tasks].tolist(), tasks.tolist()):
            if g not in templates:
                templates[g] = TaskResult(table[t], self.outcomes[t]).as_json()
        pids, tids = d.pids[tasks].tolist(), d.tids[tasks].tolist()
        comms = [d.comm_names[c] for c in d.comm_ids[tasks].tolist()]
        out = []
        for g, pid, tid, comm in zip(groups[tasks].tolist(), pids, tids, comms):
            doc = templates[g].copy()
            doc["pid"] = None if pid < 0 else pid
            doc["tid"] = None if tid < 0 else tid
            doc["comm"] = comm
            for nested in ("frame", "extra"):  # no dict shared between two tasks' documents
                if isinstance(doc.get(nested), dict):
                    doc[nested] = dict(doc[nested])
            out.append(doc)
        return out


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
        return sum(n for o, n in tally(self.tasks.outcomes) if o.verdict is verdict)

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
        for o, n in tally(self.tasks.outcomes):
            verdicts[o.verdict] += n
            outlooks[o.outlook.value] += n
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

    def as_json(self, with_source: bool = True, with_tasks: bool = True) -> dict[str, Any]:
        """The ``--json`` document. ``with_tasks=False`` leaves ``tasks`` out, for
        writers that stream the per-task list (``self.tasks.as_json()``) themselves."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if with_source:
            out["source"] = dict(self.source)
        out.update(
            model=self.model,
            cell={"leave": self.cell[0], "switch": self.cell[1]},
            params=dict(self.params),
            patch=self.patch.as_json(),
            summary=self.summary(),
            warnings=list(self.warnings),
        )
        if with_tasks:
            out["tasks"] = self.tasks.as_json()
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
    # Computed once, shared by every model of check_all (per comm prefixes read).
    groups, reps = facts.groups_for(tuple(getattr(m, "comm_prefixes", ())))
    outcomes = GroupOutcomes([m.judge_task(facts[t]) for t in reps.tolist()], groups)
    transition = m.judge_transition(facts, outcomes)
    extra = list(warnings) + list(dump.warnings)
    complete = STACK_CODES.index(Stack.COMPLETE)
    unreliable = len(facts) if facts.hidden else int((facts.stack_codes != complete).sum())
    if unreliable:
        extra.append(f"{unreliable} task(s) have an empty, unreadable or unreliable stack: unknown")
    if not found.by_address:
        hit = np.unique(facts.function[facts.first >= 0]).tolist()
        missing = sorted(patch.names - {patch.functions[f].name for f in hit})
        if missing:
            extra.append(f"patch function(s) seen on no stack: {', '.join(missing)}")
    return CheckResult(
        m.name, m.cell, patch, _source(dump, symbols, found.by_address),
        TaskResults(facts, outcomes), transition, tuple(dict.fromkeys(extra)),
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
