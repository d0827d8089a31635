"""Stack dumps: every format lpc reads, in one columnar model.

:func:`parse_dump` reads a file, a recorded snapshot directory or bytes and
returns a :class:`Dump`. A dump keeps the parser's columns (numpy arrays, CSR
layout: task ``t``'s frames are ``frame_offsets[t]:frame_offsets[t + 1]``,
innermost first) for the scanner, and builds :class:`Task` / :class:`Frame`
objects only when :attr:`Dump.tasks` is indexed.

Nothing here knows a consistency model: a dump says what the text says. An
empty, unreadable or truncated stack is reported as such (see
:class:`StackStatus`), never as clean.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar, overload

import numpy as np
import numpy.typing as npt

from lpc import _core

__all__ = [
    "NO_ID",
    "UNKNOWN_U64",
    "Dump",
    "Frame",
    "FrameContext",
    "StackStatus",
    "Task",
    "TaskList",
    "TaskLoss",
    "dump_formats",
    "parse_dump",
    "read_metadata",
]

#: Value of the int64 task columns (pids, tids, tgids, ppids, cpus) for "unknown".
NO_ID: Final[int] = _core.NO_ID
#: Value of the uint64 columns (symbol offsets and sizes, flags) for "unknown".
UNKNOWN_U64: Final[int] = _core.UNKNOWN_U64
#: Value of the ``states`` column for "unknown" (code point 0).
_NO_STATE: Final[int] = _core.NO_STATE
#: The snapshot directory's files.
SNAPSHOT_STACKS = "stacks.txt"
SNAPSHOT_META = "meta.txt"
SNAPSHOT_KALLSYMS = "kallsyms.txt"


_E = TypeVar("_E", bound=StrEnum)


class StackStatus(StrEnum):
    """What is known about a task's stack as a whole."""

    #: Frames were printed and nothing says the unwind failed.
    COMPLETE = "complete"
    #: No frame at all (a running task, a zombie...): unknown.
    EMPTY = "empty"
    #: The stack could not be read (permission, task gone): unknown.
    UNREADABLE = "unreadable"
    #: Every frame is ``?`` (the unwinder vouched for none): unknown.
    UNWIND_FAILURE = "unwind_failure"
    #: The dump cut the stack short (64-entry /proc limit, dedup reference): unknown.
    TRUNCATED = "truncated"


class FrameContext(StrEnum):
    """Where a frame executed, from ``<IRQ>``/``<NMI>``/... sections."""

    TASK = "task"
    IRQ = "irq"
    SOFTIRQ = "softirq"
    NMI = "nmi"
    EXCEPTION = "exception"
    USER = "user"


def _code_table(enum: type[_E], names: Sequence[str]) -> tuple[_E, ...]:
    """The members of ``enum`` indexed by the core's codes (``names[code]`` is
    the member's value); the enum and the core must name the same members."""
    table = tuple(enum(name) for name in names)
    if len(set(table)) != len(table) or set(table) != set(enum):
        raise ImportError(f"lpc._core and lpc.dump disagree on {enum.__name__}: {list(names)}")
    return table


class TaskLoss(IntFlag):
    """What the parser saw a task lose while it read its text (the bits of
    :attr:`Dump.task_lost`): any one makes the task's stack incomplete."""

    NONE = 0
    #: A line inside the stack reads like a frame but not as one: a frame is missing.
    FRAME_LINE = 1
    #: The stack does not end as its format ends one (no ``</TASK>``, no
    #: bpftrace ``]: N``), or the input stops in the middle of a line inside it.
    UNCLOSED = 2
    #: The task's header could not be read: who the task is, and its state, are unknown.
    HEADER = 4


def _check_losses(names: Sequence[str]) -> None:
    """The core names its loss bits in bit order; they must be this enum's."""
    ours = [m.name.lower() for m in TaskLoss if m]  # type: ignore[union-attr]
    if list(names) != ours:
        raise ImportError(f"lpc._core and lpc.dump disagree on TaskLoss: {list(names)}")


_check_losses(_core.dump_task_losses())

#: StackStatus by ``stack_status_codes`` value, read from the core.
_STATUSES: Final = _code_table(StackStatus, _core.dump_stack_statuses())
#: FrameContext by ``frame_context_codes`` value, read from the core.
_CONTEXTS: Final = _code_table(FrameContext, _core.dump_frame_contexts())


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame as the dump printed it.

    ``offset``/``size`` are the ``+0xoff/0xsize`` of the kernel's symbol token
    (``None`` when not printed, e.g. syzbot's inlined frames); ``address`` is
    only known when the format prints it (pre-4.17 /proc, old call traces).
    ``reliable`` is False for ``?`` frames. ``line`` is the 1-based source line.
    """

    address: int | None
    function: str | None
    offset: int | None
    size: int | None
    module: str | None
    reliable: bool
    context: FrameContext = FrameContext.TASK
    inlined: bool = False
    line: int = 0


@dataclass(frozen=True, slots=True)
class Task:
    """One task (thread) of a dump; ``None`` = the format did not say.

    ``pid`` is the number the source prints under that name: /proc snapshots
    give the process id (``tid`` is the thread, ``tgid == pid``); kernel log
    headers print the task's own id, so there ``pid == tid`` and ``tgid``
    (6.6+) is the process. ``state`` is the one-letter ``ps`` state.
    ``kthread`` is PF_KTHREAD when the source shows flags; ``on_cpu`` is True
    only when the source proves the task was running (``running task``, an
    NMI backtrace, an empty /proc stack in state R). ``task_flags`` are PF_*
    flags, ``thread_flags`` TIF_* flags. ``user_regs`` is True when a
    user-mode register dump (``RIP: 0033:``) followed the header.
    """

    pid: int | None
    tid: int | None
    comm: str
    state: str | None
    kthread: bool | None
    on_cpu: bool | None
    frames: tuple[Frame, ...]
    stack_status: StackStatus
    tgid: int | None = None
    ppid: int | None = None
    cpu: int | None = None
    task_flags: int | None = None
    thread_flags: int | None = None
    user_regs: bool = False
    line: int = 0
    #: What the parser saw the task lose, and the line of its first loss (0: none).
    lost: TaskLoss = TaskLoss.NONE
    lost_line: int = 0
    #: The kernel's hung-task detector reported it (kernel/hung_task.c).
    hung: bool = False


def _id(value: int) -> int | None:
    return None if value == NO_ID else int(value)


def _u64(value: int) -> int | None:
    return None if value == UNKNOWN_U64 else int(value)


def _tristate(value: int) -> bool | None:
    return None if value < 0 else bool(value)


def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


class TaskList(Sequence[Task]):
    """The tasks of a :class:`Dump`, built on demand from its columns."""

    __slots__ = ("_dump",)

    def __init__(self, dump: Dump) -> None:
        self._dump = dump

    def __len__(self) -> int:
        return self._dump.task_count

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> list[Task]: ...

    def __getitem__(self, index: int | slice) -> Task | list[Task]:
        if isinstance(index, slice):
            return [self._dump.task(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"task index {index} out of range for {n} tasks")
        return self._dump.task(index % n)

    def __iter__(self) -> Iterator[Task]:
        for i in range(len(self)):
            yield self._dump.task(i)

    def __repr__(self) -> str:
        return f"<TaskList of {len(self)} tasks>"


class Dump:
    """A parsed stack dump, columnar.

    Per-task columns (length :attr:`task_count`): ``pids``, ``tids``, ``tgids``,
    ``ppids``, ``cpus`` (int64, :data:`NO_ID` = unknown), ``states`` (uint32
    code point, 0 = unknown), ``kthreads``/``on_cpus`` (int8: -1 unknown, 0, 1),
    ``task_flags``/``thread_flags`` (uint64, :data:`UNKNOWN_U64` = unknown),
    ``user_regs`` (bool), ``hung`` (bool: the hung-task detector reported it),
    ``task_lines`` (int64), ``task_lost`` (uint8,
    :class:`TaskLoss` bits), ``task_lost_lines`` (int64, 0 = nothing lost),
    ``stack_status_codes`` (uint8,
    index into :class:`StackStatus` order), ``comm_ids`` (uint32 index into
    ``comm_names``, the tuple of distinct comms in first-occurrence order);
    :attr:`comms` expands them to one string per task on first use.

    Frames are interned as *tokens*: a token is everything about a frame
    except where it occurred (address, function, symbol offset and size,
    module). Token columns (length :attr:`token_count`): ``token_addresses``
    (uint64, valid where ``token_has_address``), ``token_function_ids`` /
    ``token_module_ids`` (uint32 index into :attr:`names`, ``0xffffffff`` =
    none / vmlinux), ``token_symbol_offsets`` / ``token_symbol_sizes`` (uint64,
    :data:`UNKNOWN_U64` = not printed). A 100 MB snapshot has ~2M frames but
    a few thousand tokens: per-token work (resolving a symbol) is done once.

    Per-frame columns (length :attr:`frame_count`, CSR by :attr:`frame_offsets`):
    ``frame_tokens`` (uint32 index into the token columns), ``frame_reliable``,
    ``frame_inlined`` (bool), ``frame_context_codes`` (uint8), ``frame_lines``;
    and, gathered from the token columns on first use and then cached,
    ``frame_addresses`` (valid where ``frame_has_address``),
    ``frame_function_ids``, ``frame_module_ids``, ``frame_symbol_offsets``,
    ``frame_symbol_sizes``.

    All arrays are read-only and owned by the dump.
    """

    __slots__ = (
        "_comms",
        "_gathered",
        "comm_ids",
        "comm_names",
        "frame_context_codes",
        "frame_inlined",
        "frame_lines",
        "frame_offsets",
        "frame_reliable",
        "frame_tokens",
        "input_cut",
        "kallsyms_path",
        "kernel_release",
        "arch",
        "kthreads",
        "metadata",
        "names",
        "on_cpus",
        "path",
        "pids",
        "ppids",
        "skipped_lines",
        "skipped_samples",
        "source_format",
        "stack_status_codes",
        "states",
        "task_flags",
        "task_lines",
        "task_lost",
        "task_lost_lines",
        "tgids",
        "thread_flags",
        "tids",
        "token_addresses",
        "token_function_ids",
        "token_has_address",
        "token_module_ids",
        "token_symbol_offsets",
        "token_symbol_sizes",
        "cpus",
        "user_regs",
        "hung",
        "warnings",
    )

    #: Sentinel of ``frame_function_ids`` / ``frame_module_ids`` (``0xFFFFFFFF``).
    NO_NAME: Final[int] = _core.NO_NAME

    def __init__(
        self,
        columns: _core.DumpColumns,
        *,
        path: str | None = None,
        kallsyms_path: str | None = None,
        kernel_release: str | None = None,
        metadata: Mapping[str, str] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        """Wraps the columns returned by ``lpc._core.parse_dump_bytes`` / ``parse_dump_file``.

        ``kernel_release`` overrides the parser's (a snapshot's ``meta.txt``
        knows it, its stacks do not); ``warnings`` are appended to the parser's.
        """
        c = columns
        self.source_format: str = c.format
        self.kernel_release: str | None = kernel_release or c.kernel_release
        #: The architecture the frames' own syntax names (ARM, powerpc, s390), if any.
        self.arch: str | None = c.arch
        self.path = path
        self.kallsyms_path = kallsyms_path
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.names: tuple[str, ...] = c.names
        self.comm_names: tuple[str, ...] = c.comm_names
        self.comm_ids = _readonly(c.comm)
        self._comms: tuple[str, ...] | None = None
        self._gathered: dict[str, npt.NDArray[Any]] = {}
        self.skipped_lines: int = c.skipped_lines
        #: The text stops in the middle of a line: it was cut, tasks after the cut are missing.
        self.input_cut: bool = c.input_cut
        self.skipped_samples: tuple[tuple[int, str], ...] = c.skipped_samples
        self.warnings: tuple[str, ...] = c.warnings + tuple(warnings)
        self.pids = _readonly(c.pid)
        self.tids = _readonly(c.tid)
        self.tgids = _readonly(c.tgid)
        self.ppids = _readonly(c.ppid)
        self.cpus = _readonly(c.cpu)
        self.states = _readonly(c.state)
        self.kthreads = _readonly(c.kthread)
        self.on_cpus = _readonly(c.on_cpu)
        self.task_flags = _readonly(c.task_flags)
        self.thread_flags = _readonly(c.thread_flags)
        self.user_regs = _readonly(c.user_regs)
        self.hung = _readonly(c.hung)
        self.task_lines = _readonly(c.task_line)
        self.task_lost = _readonly(c.task_lost)
        self.task_lost_lines = _readonly(c.task_lost_line)
        self.stack_status_codes = _readonly(c.stack_status)
        self.frame_offsets = _readonly(c.frame_offsets)
        self.frame_tokens = _readonly(c.frame_token)
        self.token_addresses = _readonly(c.token_address)
        self.token_has_address = _readonly(c.token_has_address)
        self.token_function_ids = _readonly(c.token_function)
        self.token_symbol_offsets = _readonly(c.token_offset)
        self.token_symbol_sizes = _readonly(c.token_size)
        self.token_module_ids = _readonly(c.token_module)
        self.frame_reliable = _readonly(c.frame_reliable)
        self.frame_context_codes = _readonly(c.frame_context)
        self.frame_inlined = _readonly(c.frame_inlined)
        self.frame_lines = _readonly(c.frame_line)

    # ---- sizes -------------------------------------------------------------

    @property
    def task_count(self) -> int:
        return len(self.comm_ids)

    def comm(self, t: int) -> str:
        """Task ``t``'s comm."""
        return self.comm_names[int(self.comm_ids[t])]

    @property
    def comms(self) -> tuple[str, ...]:
        """Every task's comm, in task order (expanded once, on first use)."""
        if self._comms is None:
            names = self.comm_names
            self._comms = tuple([names[i] for i in self.comm_ids.tolist()])
        return self._comms

    @property
    def frame_count(self) -> int:
        return len(self.frame_tokens)

    @property
    def token_count(self) -> int:
        """Number of distinct frame tokens."""
        return len(self.token_function_ids)

    def _per_frame(self, name: str, tokens: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The token column ``tokens`` gathered per frame, computed once."""
        column = self._gathered.get(name)
        if column is None:
            column = self._gathered[name] = _readonly(tokens[self.frame_tokens])
        return column

    @property
    def frame_addresses(self) -> npt.NDArray[np.uint64]:
        """Per frame: the address (valid where :attr:`frame_has_address`)."""
        return self._per_frame("address", self.token_addresses)

    @property
    def frame_has_address(self) -> npt.NDArray[np.bool_]:
        """Per frame: whether the dump printed the address."""
        return self._per_frame("has_address", self.token_has_address)

    @property
    def frame_function_ids(self) -> npt.NDArray[np.uint32]:
        """Per frame: function name id (:attr:`NO_NAME` = none)."""
        return self._per_frame("function", self.token_function_ids)

    @property
    def frame_module_ids(self) -> npt.NDArray[np.uint32]:
        """Per frame: module name id (:attr:`NO_NAME` = vmlinux)."""
        return self._per_frame("module", self.token_module_ids)

    @property
    def frame_symbol_offsets(self) -> npt.NDArray[np.uint64]:
        """Per frame: ``+0xoff`` (:data:`UNKNOWN_U64` = not printed)."""
        return self._per_frame("offset", self.token_symbol_offsets)

    @property
    def frame_symbol_sizes(self) -> npt.NDArray[np.uint64]:
        """Per frame: ``/0xsize`` (:data:`UNKNOWN_U64` = not printed)."""
        return self._per_frame("size", self.token_symbol_sizes)

    def __len__(self) -> int:
        return self.task_count

    @property
    def tasks(self) -> TaskList:
        """The tasks, as a lazy sequence of :class:`Task`."""
        return TaskList(self)

    @property
    def stack_statuses(self) -> tuple[StackStatus, ...]:
        """Every task's :class:`StackStatus`, in task order."""
        return tuple(_STATUSES[code] for code in self.stack_status_codes.tolist())

    def frames_of(self, t: int) -> slice:
        """The frame-column slice of task ``t``."""
        return slice(int(self.frame_offsets[t]), int(self.frame_offsets[t + 1]))

    def name(self, index: int) -> str | None:
        """The interned name ``index`` (``None`` for :attr:`NO_NAME`)."""
        return None if index == self.NO_NAME else self.names[index]

    # ---- objects -----------------------------------------------------------

    def frame(self, i: int) -> Frame:
        """Frame ``i`` of the frame columns."""
        k = int(self.frame_tokens[i])
        return Frame(
            address=int(self.token_addresses[k]) if self.token_has_address[k] else None,
            function=self.name(int(self.token_function_ids[k])),
            offset=_u64(int(self.token_symbol_offsets[k])),
            size=_u64(int(self.token_symbol_sizes[k])),
            module=self.name(int(self.token_module_ids[k])),
            reliable=bool(self.frame_reliable[i]),
            context=_CONTEXTS[int(self.frame_context_codes[i])],
            inlined=bool(self.frame_inlined[i]),
            line=int(self.frame_lines[i]),
        )

    def task(self, t: int) -> Task:
        """Task ``t`` with its frames (built now, not cached)."""
        frames = self.frames_of(t)
        state = int(self.states[t])
        return Task(
            pid=_id(int(self.pids[t])),
            tid=_id(int(self.tids[t])),
            comm=self.comm(t),
            state=None if state == _NO_STATE else chr(state),
            kthread=_tristate(int(self.kthreads[t])),
            on_cpu=_tristate(int(self.on_cpus[t])),
            frames=tuple(self.frame(i) for i in range(frames.start, frames.stop)),
            stack_status=_STATUSES[int(self.stack_status_codes[t])],
            tgid=_id(int(self.tgids[t])),
            ppid=_id(int(self.ppids[t])),
            cpu=_id(int(self.cpus[t])),
            task_flags=_u64(int(self.task_flags[t])),
            thread_flags=_u64(int(self.thread_flags[t])),
            user_regs=bool(self.user_regs[t]),
            line=int(self.task_lines[t]),
            lost=TaskLoss(int(self.task_lost[t])),
            lost_line=int(self.task_lost_lines[t]),
            hung=bool(self.hung[t]),
        )

    def __repr__(self) -> str:
        where = f" from {self.path!r}" if self.path else ""
        return (
            f"<Dump {self.source_format}{where}: {self.task_count} tasks, "
            f"{self.frame_count} frames, release={self.kernel_release!r}, "
            f"skipped_lines={self.skipped_lines}>"
        )


def dump_formats() -> list[str]:
    """The format names :func:`parse_dump` accepts, in detection order."""
    return list(_core.dump_formats())


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """A snapshot's ``meta.txt``: ``key=value`` lines (others are ignored)."""
    meta: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            meta[key.strip()] = value.strip()
    return meta


#: `/proc/PID/task/TID/stack` or `/proc/PID/stack`: pid and tid from the path.
_PROC_STACK_PATH = re.compile(r"(?:^|/)(\d+)(?:/task/(\d+))?/stack$")


def _ids_from_path(columns: _core.DumpColumns, path: str) -> None:
    """Fills pid/tid/tgid of a one-task ``/proc/.../stack`` read from its path
    (in place: the columns' arrays are still writable before ``Dump`` wraps them)."""
    match = _PROC_STACK_PATH.search(path)
    if match is None or len(columns.comm) != 1:
        return
    pid = int(match.group(1))
    tid = int(match.group(2) or pid)
    for column, value in ((columns.pid, pid), (columns.tid, tid), (columns.tgid, pid)):
        if column[0] == NO_ID:
            column[0] = value


def _parse_snapshot_dir(directory: str, format: str | None) -> Dump:
    stacks = os.path.join(directory, SNAPSHOT_STACKS)
    columns = _core.parse_dump_file(stacks, format or "proc_snapshot")
    meta_path = os.path.join(directory, SNAPSHOT_META)
    meta = read_metadata(meta_path) if os.path.isfile(meta_path) else {}
    kallsyms = os.path.join(directory, SNAPSHOT_KALLSYMS)
    return Dump(
        columns,
        path=directory,
        kallsyms_path=kallsyms if os.path.isfile(kallsyms) else None,
        kernel_release=meta.get("kernel_release") or None,
        metadata=meta,
    )


def parse_dump(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    format: str | None = None,
) -> Dump:
    """Parses a stack dump.

    ``source`` is a path (``str`` or path-like) to a dump file, a path to a
    recorded snapshot directory (``stacks.txt`` + ``meta.txt``, as written by
    :func:`lpc.capture.write_snapshot`; its ``kallsyms.txt`` is exposed as
    :attr:`Dump.kallsyms_path`), or the dump's bytes (pass text as
    ``text.encode()``: a ``str`` is always a path). ``format`` is a name from
    :func:`dump_formats`, or ``None`` to detect it.

    Files are read and parsed by the Rust core without the GIL: a large
    recorded snapshot is parsed while it is read, one chunk per core, never
    held whole in memory (the result is the same as a sequential parse).

    Raises :class:`~lpc.errors.DumpParseError` (naming the file) when the file
    is missing ("no such file"), a directory ("is a directory"), unreadable
    ("cannot read: <reason>"), the format name is unknown, or no format is
    recognised. Lines that no construct explains are counted in
    :attr:`Dump.skipped_lines`, never an error.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Dump(_core.parse_dump_bytes(bytes(source), format, None))
    path = os.fspath(source)
    if os.path.isdir(path):
        return _parse_snapshot_dir(path, format)
    columns = _core.parse_dump_file(path, format)
    if columns.format == "proc_stack":
        _ids_from_path(columns, os.path.realpath(path))
    return Dump(columns, path=path)
