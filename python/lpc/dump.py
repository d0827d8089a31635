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
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from lpc import _core
from lpc.errors import DumpParseError

__all__ = [
    "NO_ID",
    "UNKNOWN_U64",
    "Dump",
    "Frame",
    "FrameContext",
    "StackStatus",
    "Task",
    "TaskList",
    "dump_formats",
    "parse_dump",
    "read_metadata",
]

#: Value of the int64 task columns (pids, tids, tgids, ppids, cpus) for "unknown".
NO_ID = -1
#: Value of the uint64 columns (symbol offsets and sizes, flags) for "unknown".
UNKNOWN_U64 = 2**64 - 1
#: The snapshot directory's files.
SNAPSHOT_STACKS = "stacks.txt"
SNAPSHOT_META = "meta.txt"
SNAPSHOT_KALLSYMS = "kallsyms.txt"


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


_STATUSES = tuple(StackStatus(name) for name in _core.dump_stack_statuses())
_CONTEXTS = tuple(FrameContext(name) for name in _core.dump_frame_contexts())


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
    ``user_regs`` (bool), ``task_lines`` (int64), ``stack_status_codes`` (uint8,
    index into :class:`StackStatus` order); :attr:`comms` decodes the packed
    comm column on first use.

    Per-frame columns (length :attr:`frame_count`, CSR by :attr:`frame_offsets`):
    ``frame_addresses`` (uint64, valid where ``frame_has_address``),
    ``frame_function_ids``/``frame_module_ids`` (uint32 index into :attr:`names`,
    ``0xffffffff`` = none), ``frame_symbol_offsets``/``frame_symbol_sizes``
    (uint64, :data:`UNKNOWN_U64` = not printed), ``frame_reliable``,
    ``frame_inlined`` (bool), ``frame_context_codes`` (uint8), ``frame_lines``.

    All arrays are read-only views owned by the dump.
    """

    __slots__ = (
        "_shim",
        "_comm_bytes",
        "_comm_offsets",
        "_comms",
        "frame_addresses",
        "frame_context_codes",
        "frame_function_ids",
        "frame_has_address",
        "frame_inlined",
        "frame_lines",
        "frame_module_ids",
        "frame_offsets",
        "frame_reliable",
        "frame_symbol_offsets",
        "frame_symbol_sizes",
        "kallsyms_path",
        "kernel_release",
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
        "tgids",
        "thread_flags",
        "tids",
        "cpus",
        "user_regs",
        "warnings",
    )

    #: Sentinel of ``frame_function_ids`` / ``frame_module_ids``.
    NO_NAME = 0xFFFFFFFF

    def __init__(
        self,
        columns: Mapping[str, Any],
        *,
        path: str | None = None,
        kallsyms_path: str | None = None,
        kernel_release: str | None = None,
        metadata: Mapping[str, str] | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        """Wraps the dict returned by ``lpc._core.parse_dump_bytes``.

        ``kernel_release`` overrides the parser's (a snapshot's ``meta.txt``
        knows it, its stacks do not); ``warnings`` are appended to the parser's.
        """
        c = columns
        self.source_format: str = c["format"]
        self.kernel_release: str | None = kernel_release or c["kernel_release"]
        self.path = path
        self.kallsyms_path = kallsyms_path
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.names: tuple[str, ...] = tuple(c["names"])
        self._comm_bytes: bytes = c["comm_bytes"]
        self._comm_offsets = _readonly(c["comm_offsets"])
        self._comms: tuple[str, ...] | None = None
        self.skipped_lines: int = c["skipped_lines"]
        self.skipped_samples: tuple[tuple[int, str], ...] = tuple(
            (int(n), str(t)) for n, t in c["skipped_samples"]
        )
        self.warnings: tuple[str, ...] = tuple(c["warnings"]) + tuple(warnings)
        self.pids = _readonly(c["pid"])
        self.tids = _readonly(c["tid"])
        self.tgids = _readonly(c["tgid"])
        self.ppids = _readonly(c["ppid"])
        self.cpus = _readonly(c["cpu"])
        self.states = _readonly(c["state"])
        self.kthreads = _readonly(c["kthread"])
        self.on_cpus = _readonly(c["on_cpu"])
        self.task_flags = _readonly(c["task_flags"])
        self.thread_flags = _readonly(c["thread_flags"])
        self.user_regs = _readonly(c["user_regs"])
        self.task_lines = _readonly(c["task_line"])
        self.stack_status_codes = _readonly(c["stack_status"])
        self.frame_offsets = _readonly(c["frame_offsets"])
        self.frame_addresses = _readonly(c["frame_address"])
        self.frame_has_address = _readonly(c["frame_has_address"])
        self.frame_function_ids = _readonly(c["frame_function"])
        self.frame_symbol_offsets = _readonly(c["frame_offset"])
        self.frame_symbol_sizes = _readonly(c["frame_size"])
        self.frame_module_ids = _readonly(c["frame_module"])
        self.frame_reliable = _readonly(c["frame_reliable"])
        self.frame_context_codes = _readonly(c["frame_context"])
        self.frame_inlined = _readonly(c["frame_inlined"])
        self.frame_lines = _readonly(c["frame_line"])

    # ---- interned views (temporary pure-Python version; the parser's replaces it) ----

    def _interned(self) -> dict[str, Any]:
        try:
            return self._shim  # type: ignore[has-type,no-any-return]
        except AttributeError:
            pass
        comm_names, comm_ids = np.unique(np.array(self.comms, dtype=object), return_inverse=True)
        rows = np.stack([
            np.where(self.frame_has_address, self.frame_addresses, np.uint64(0)),
            self.frame_has_address.astype(np.uint64),
            self.frame_function_ids.astype(np.uint64), self.frame_module_ids.astype(np.uint64),
            self.frame_symbol_offsets, self.frame_symbol_sizes,
        ], axis=1) if self.frame_count else np.zeros((0, 6), dtype=np.uint64)
        table, inverse = np.unique(rows, axis=0, return_inverse=True)
        self._shim = {
            "comm_names": tuple(str(c) for c in comm_names),
            "comm_ids": comm_ids.reshape(-1).astype(np.uint32),
            "frame_tokens": inverse.reshape(-1).astype(np.uint32),
            "token_addresses": table[:, 0], "token_has_address": table[:, 1].astype(bool),
            "token_function_ids": table[:, 2].astype(np.uint32),
            "token_module_ids": table[:, 3].astype(np.uint32),
            "token_symbol_offsets": table[:, 4], "token_symbol_sizes": table[:, 5],
        }
        return self._shim

    @property
    def comm_ids(self) -> npt.NDArray[np.uint32]:
        return self._interned()["comm_ids"]  # type: ignore[no-any-return]

    @property
    def comm_names(self) -> tuple[str, ...]:
        return self._interned()["comm_names"]  # type: ignore[no-any-return]

    @property
    def frame_tokens(self) -> npt.NDArray[np.uint32]:
        return self._interned()["frame_tokens"]  # type: ignore[no-any-return]

    @property
    def token_count(self) -> int:
        return len(self.token_addresses)

    @property
    def token_addresses(self) -> npt.NDArray[np.uint64]:
        return self._interned()["token_addresses"]  # type: ignore[no-any-return]

    @property
    def token_has_address(self) -> npt.NDArray[np.bool_]:
        return self._interned()["token_has_address"]  # type: ignore[no-any-return]

    @property
    def token_function_ids(self) -> npt.NDArray[np.uint32]:
        return self._interned()["token_function_ids"]  # type: ignore[no-any-return]

    @property
    def token_module_ids(self) -> npt.NDArray[np.uint32]:
        return self._interned()["token_module_ids"]  # type: ignore[no-any-return]

    @property
    def token_symbol_offsets(self) -> npt.NDArray[np.uint64]:
        return self._interned()["token_symbol_offsets"]  # type: ignore[no-any-return]

    @property
    def token_symbol_sizes(self) -> npt.NDArray[np.uint64]:
        return self._interned()["token_symbol_sizes"]  # type: ignore[no-any-return]

    # ---- sizes -------------------------------------------------------------

    @property
    def task_count(self) -> int:
        return len(self._comm_offsets) - 1

    def comm(self, t: int) -> str:
        """Task ``t``'s comm (decoded on demand from the packed column)."""
        start, end = int(self._comm_offsets[t]), int(self._comm_offsets[t + 1])
        return self._comm_bytes[start:end].decode("utf-8", "replace")

    @property
    def comms(self) -> tuple[str, ...]:
        """Every task's comm, in task order (decoded once, on first use)."""
        if self._comms is None:
            bounds = self._comm_offsets.tolist()
            pairs = zip(bounds, bounds[1:])
            if self._comm_bytes.isascii():
                # One decode: byte offsets are character offsets in ASCII.
                text = self._comm_bytes.decode("ascii")
                self._comms = tuple(text[a:b] for a, b in pairs)
            else:
                raw = self._comm_bytes
                self._comms = tuple(raw[a:b].decode("utf-8", "replace") for a, b in pairs)
        return self._comms

    @property
    def frame_count(self) -> int:
        return len(self.frame_addresses)

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
        return Frame(
            address=int(self.frame_addresses[i]) if self.frame_has_address[i] else None,
            function=self.name(int(self.frame_function_ids[i])),
            offset=_u64(int(self.frame_symbol_offsets[i])),
            size=_u64(int(self.frame_symbol_sizes[i])),
            module=self.name(int(self.frame_module_ids[i])),
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
            state=chr(state) if state else None,
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


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DumpParseError("no such file", path) from None
    except IsADirectoryError:
        raise DumpParseError("is a directory without stacks.txt", path) from None
    except OSError as exc:
        raise DumpParseError(f"cannot read: {exc.strerror or exc}", path) from None


#: `/proc/PID/task/TID/stack` or `/proc/PID/stack`: pid and tid from the path.
_PROC_STACK_PATH = re.compile(r"(?:^|/)(\d+)(?:/task/(\d+))?/stack$")


def _ids_from_path(columns: dict[str, Any], path: str) -> None:
    """Fills pid/tid/tgid of a one-task ``/proc/.../stack`` read from its path."""
    match = _PROC_STACK_PATH.search(path)
    if match is None or len(columns["comm_offsets"]) != 2:
        return
    pid = int(match.group(1))
    tid = int(match.group(2) or pid)
    for key, value in (("pid", pid), ("tid", tid), ("tgid", pid)):
        if columns[key][0] == NO_ID:
            columns[key][0] = value


def _parse_snapshot_dir(directory: str, format: str | None) -> Dump:
    stacks = os.path.join(directory, SNAPSHOT_STACKS)
    data = _read_bytes(stacks)
    meta_path = os.path.join(directory, SNAPSHOT_META)
    meta = read_metadata(meta_path) if os.path.isfile(meta_path) else {}
    columns = _core.parse_dump_bytes(data, format or "proc_snapshot", stacks)
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

    Raises :class:`~lpc.errors.DumpParseError` (naming the file) when the file
    is missing or unreadable, the format name is unknown, or no format is
    recognised. Lines that no construct explains are counted in
    :attr:`Dump.skipped_lines`, never an error.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Dump(_core.parse_dump_bytes(bytes(source), format, None))
    path = os.fspath(source)
    if os.path.isdir(path):
        return _parse_snapshot_dir(path, format)
    columns = _core.parse_dump_bytes(_read_bytes(path), format, path)
    if columns["format"] == "proc_stack":
        _ids_from_path(columns, os.path.realpath(path))
    return Dump(columns, path=path)
