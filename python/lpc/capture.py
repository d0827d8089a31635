"""Live capture of every task's kernel stack, and the recorded snapshot format.

:func:`capture_live` reads ``/proc/PID/task/TID/stat`` and ``.../stack`` for
every thread (read-only: nothing under ``/proc`` is ever written, no task is
signalled). :func:`write_snapshot` records a dump as a directory that
:func:`lpc.dump.parse_dump` reads back:

* ``stacks.txt`` — per thread a header line
  ``# pid=P tid=T comm=C state=S flags=0xF kthread=0|1 cpu=N status=ok|unreadable|gone``
  followed by the raw ``/proc`` stack lines and a blank line. ``comm`` is
  everything between ``comm=`` and the last `` state=``, with ``\\``,
  newline and carriage return escaped as ``\\\\``, ``\\n``, ``\\r`` (the full
  grammar is in ``rust/lpc-core/src/dump/procsnap.rs``).
* ``meta.txt`` — ``key=value`` lines (``kernel_release``, ``captured_at``...).
* ``kallsyms.txt`` — a copy of ``/proc/kallsyms`` when the dump came from a
  live capture (for the symbol tables).

A capture is not atomic: each thread's ``stat`` is read just before its stack,
and threads keep running meanwhile. Threads that exit mid-read are recorded
with ``status=gone`` (an unknown stack), unreadable stacks with
``status=unreadable``; both are counted in the dump's warnings.
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lpc import _core
from lpc.dump import (
    SNAPSHOT_KALLSYMS,
    SNAPSHOT_META,
    SNAPSHOT_STACKS,
    Dump,
    Frame,
    StackStatus,
    Task,
)
from lpc.errors import CaptureError, SnapshotError
from lpc.kernel import PF_KTHREAD
from lpc.livepatch_state import (
    LIVEPATCH_STATE_FILE,
    PATCH_STATE_FILE,
    LivepatchState,
    PatchStates,
    format_patch_states,
)

__all__ = [
    "PF_KTHREAD",
    "ProcStat",
    "capture_live",
    "escape_comm",
    "format_snapshot",
    "parse_stat",
    "snapshot_header",
    "write_snapshot",
]

_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/PID/task/TID/stat`` a snapshot keeps."""

    comm: str
    state: str
    ppid: int
    flags: int
    cpu: int | None


def parse_stat(raw: bytes) -> ProcStat | None:
    """Parses a ``stat`` line (``fs/proc/array.c: do_task_stat``).

    ``comm`` is taken between the first ``(`` and the **last** ``)``, since a
    comm may itself hold spaces and parentheses; the fields after it are
    counted from 3 (state), so flags are field 9 and the last CPU field 39.
    Returns ``None`` for a line that does not have that shape.
    """
    left, right = raw.find(b"("), raw.rfind(b")")
    if left < 0 or right < left:
        return None
    fields = raw[right + 2 :].split()
    try:
        return ProcStat(
            comm=raw[left + 1 : right].decode("utf-8", "replace"),
            state=fields[0].decode("ascii", "replace")[:1],
            ppid=int(fields[1]),
            flags=int(fields[6]),
            cpu=int(fields[36]) if len(fields) > 36 else None,
        )
    except (IndexError, ValueError):
        return None


def escape_comm(comm: str) -> str:
    """``comm`` as a snapshot header writes it (``\\``, ``\\n``, ``\\r`` escaped)."""
    return comm.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def snapshot_header(
    *,
    pid: int,
    tid: int,
    comm: str,
    state: str | None,
    flags: int | None = None,
    kthread: bool | None = None,
    cpu: int | None = None,
    status: str = "ok",
    ppid: int | None = None,
    tgid: int | None = None,
) -> str:
    """One ``# pid=..`` header line (without newline); unknown fields are left out."""
    if pid < 0 or tid < 0:
        raise ValueError(f"snapshot headers need non-negative pid and tid, got {pid}/{tid}")
    if state is not None and (len(state) != 1 or state.isspace()):
        raise ValueError(f"state must be one non-blank character, got {state!r}")
    parts = [f"# pid={pid} tid={tid} comm={escape_comm(comm)} state={state or '?'}"]
    if flags is not None:
        parts.append(f"flags=0x{flags:08x}")
    if kthread is not None:
        parts.append(f"kthread={int(kthread)}")
    if cpu is not None:
        parts.append(f"cpu={cpu}")
    parts.append(f"status={status}")
    if ppid is not None:
        parts.append(f"ppid={ppid}")
    if tgid is not None and tgid != pid:
        parts.append(f"tgid={tgid}")
    return " ".join(parts)


def _frame_line(f: Frame) -> str:
    """A frame in ``/proc`` stack syntax (``? `` kept for unreliable frames)."""
    address = f"{f.address:x}" if f.address is not None else "0"
    mark = "" if f.reliable else "? "
    if f.function is None:
        return f"[<{address}>] {mark}0x{f.address or 0:x}"
    symbol = f.function
    if f.offset is not None:
        symbol += f"+0x{f.offset:x}"
        if f.size is not None:
            symbol += f"/0x{f.size:x}"
        if f.module is not None:
            symbol += f" [{f.module}]"
    return f"[<{address}>] {mark}{symbol}"


_STATUS_WORD = {StackStatus.UNREADABLE: "unreadable", StackStatus.TRUNCATED: "truncated"}


def format_snapshot(tasks: Iterable[Task]) -> str:
    """The ``stacks.txt`` text of ``tasks``.

    Kept: ids, comm, state, PF flags, kthread, cpu, ppid, tgid, unreadable and
    truncated statuses, and per frame the address, symbol, offset, size,
    module and ``?`` mark. Not kept (the format has no place for them):
    ``on_cpu``, thread flags, ``user_regs``, frame contexts and inlining.
    Raises ``ValueError`` for a task without pid or tid.
    """
    out: list[str] = []
    for task in tasks:
        if task.pid is None or task.tid is None:
            raise SnapshotError(f"task {task.comm!r} (line {task.line}) has no pid/tid")
        out.append(
            snapshot_header(
                pid=task.pid,
                tid=task.tid,
                comm=task.comm,
                state=task.state,
                flags=task.task_flags,
                kthread=task.kthread,
                cpu=task.cpu,
                status=_STATUS_WORD.get(task.stack_status, "ok"),
                ppid=task.ppid,
                tgid=task.tgid,
            )
        )
        out.extend(_frame_line(f) for f in task.frames)
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


# ---- live capture ------------------------------------------------------------------------------


def _read_optional(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


@dataclass
class _Counts:
    read: int = 0
    denied: int = 0
    gone: int = 0
    vanished_processes: int = 0


def _capture_thread(proc: str, pid: int, tid: int, counts: _Counts) -> list[str]:
    """The snapshot block of one thread: header and raw stack lines."""
    base = f"{proc}/{pid}/task/{tid}"
    try:
        with open(f"{base}/stat", "rb") as f:
            stat = parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError):
        counts.gone += 1
        return [snapshot_header(pid=pid, tid=tid, comm="", state=None, status="gone")]
    except OSError:
        stat = None
    status, lines = "ok", []
    try:
        with open(f"{base}/stack", "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        counts.read += 1
    except (FileNotFoundError, ProcessLookupError):
        status = "gone"
        counts.gone += 1
    except PermissionError:
        status = "unreadable"
        counts.denied += 1
    except OSError:
        status = "unreadable"
    header = snapshot_header(
        pid=pid,
        tid=tid,
        comm=stat.comm if stat else "",
        state=stat.state if stat and stat.state.strip() else None,
        flags=stat.flags if stat else None,
        kthread=bool(stat.flags & PF_KTHREAD) if stat else None,
        cpu=stat.cpu if stat else None,
        status=status,
        ppid=stat.ppid if stat else None,
    )
    return [header, *lines]


def _numeric_entries(path: str) -> list[int]:
    return sorted(int(name) for name in os.listdir(path) if name.isdigit())


def capture_live(proc: str | os.PathLike[str] = "/proc") -> Dump:
    """Captures every thread's kernel stack from ``proc`` (read-only).

    Returns a ``proc_snapshot`` :class:`~lpc.dump.Dump` whose
    ``kernel_release`` comes from ``proc/sys/kernel/osrelease`` and whose
    ``kallsyms_path`` is ``proc/kallsyms``. Raises
    :class:`~lpc.errors.CaptureError` when ``proc`` is not a procfs directory
    or when not a single stack could be read for lack of privilege (reading
    ``/proc/PID/stack`` needs root). The idle tasks (pid 0) have no ``/proc``
    entry: the dump's warnings say so.
    """
    root = os.fspath(proc)
    try:
        pids = _numeric_entries(root)
    except OSError as exc:
        raise CaptureError(f"{root}: cannot list tasks ({exc.strerror or exc})") from None
    counts = _Counts()
    blocks: list[str] = []
    for pid in pids:
        try:
            tids = _numeric_entries(f"{root}/{pid}/task")
        except (FileNotFoundError, ProcessLookupError):
            counts.vanished_processes += 1  # exited before its threads were listed
            continue
        except OSError:
            tids = [pid]
        for tid in tids:
            blocks.extend(_capture_thread(root, pid, tid, counts))
            blocks.append("")
    if counts.read == 0 and counts.denied > 0:
        raise CaptureError(
            f"{root}: no task stack is readable ({counts.denied} refused): "
            "reading /proc/PID/stack needs root (CAP_SYS_ADMIN)"
        )
    release = _read_optional(f"{root}/sys/kernel/osrelease")
    metadata = {
        "kernel_release": release or "",
        "machine": platform.machine(),
        "captured_at": datetime.now(UTC).isoformat(),
        "kptr_restrict": _read_optional(f"{root}/sys/kernel/kptr_restrict") or "",
        "euid": str(os.geteuid()),
        "threads": str(counts.read + counts.denied + counts.gone),
    }
    warnings = []
    if counts.vanished_processes:
        warnings.append(
            f"{counts.vanished_processes} process(es) exited before their threads were listed"
        )
    text = "\n".join(blocks).encode("utf-8")
    kallsyms = f"{root}/kallsyms"
    return Dump(
        _core.parse_dump_bytes(text, "proc_snapshot", f"{root} (live capture)"),
        path=root,
        kallsyms_path=kallsyms if os.path.exists(kallsyms) else None,
        kernel_release=release,
        metadata=metadata,
        warnings=warnings,
    )


# ---- recording ---------------------------------------------------------------------------------


def _refuse_pseudo_fs(directory: Path) -> None:
    resolved = directory.resolve()
    for root in (Path("/proc"), Path("/sys")):
        if resolved == root or root in resolved.parents:
            raise SnapshotError(f"{directory}: lpc never writes under {root}")


def _create(path: Path) -> int:
    """A new file for writing, never through a symlink and never over a file."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                   0o644)


def _write(path: Path, data: bytes) -> None:
    with os.fdopen(_create(path), "wb") as dst:
        dst.write(data)


def _copy(source: str, target: Path) -> None:
    # Streamed by hand: /proc files report size 0, which fast-copy paths trust.
    with open(source, "rb") as src, os.fdopen(_create(target), "wb") as dst:
        while chunk := src.read(_COPY_CHUNK):
            dst.write(chunk)


#: The last line of a snapshot's meta.txt: written after everything else, so a
#: snapshot without it was cut short (see :func:`lpc.source.load`).
COMPLETE_MARKER = "snapshot_complete=1"


def write_snapshot(
    dump: Dump, directory: str | os.PathLike[str], *, copy_kallsyms: bool = True,
    livepatch: LivepatchState | None = None, patch_states: PatchStates | None = None,
) -> Path:
    """Records ``dump`` as a snapshot directory that :func:`lpc.dump.parse_dump` reads back.

    Writes ``stacks.txt`` (see :func:`format_snapshot` for what is kept),
    ``meta.txt`` (the dump's metadata plus ``kernel_release`` and
    ``source_format``, ending with :data:`COMPLETE_MARKER`) and, when
    ``copy_kallsyms`` and the dump knows its symbol file (a live capture's
    ``/proc/kallsyms``), ``kallsyms.txt``; with ``livepatch`` and
    ``patch_states``, the machine's livepatch state (``livepatch.txt``) and
    each thread's ``patch_state`` (``patch_state.txt``,
    :mod:`lpc.livepatch_state`). Returns the directory.

    Everything is written into a fresh private directory beside the target
    (files created exclusively, never through a symlink) and renamed into
    place at the end: a failed capture (a full disk, an interrupt) leaves no
    half snapshot, and an existing file or non-empty directory is never
    overwritten. Refuses directories under ``/proc`` or ``/sys``
    (:class:`~lpc.errors.SnapshotError`).
    """
    target = Path(directory)
    _refuse_pseudo_fs(target)
    parent = target.parent
    if not parent.is_dir():
        raise SnapshotError(f"{target}: its parent {parent} is not a directory")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise SnapshotError(f"{target}: exists and is not a directory; lpc will not replace it")
    if target.is_dir() and any(target.iterdir()):
        raise SnapshotError(f"{target}: a non-empty directory; lpc writes a snapshot only anew")
    stacks = format_snapshot(dump.tasks).encode()
    meta = dict(dump.metadata)
    meta.pop(COMPLETE_MARKER.split("=")[0], None)
    meta["kernel_release"] = dump.kernel_release or ""
    meta["source_format"] = dump.source_format
    lines = [f"{k}={' '.join(str(v).split())}" for k, v in meta.items() if "=" not in k]
    try:
        work = Path(tempfile.mkdtemp(prefix=".lpc-capture-", dir=parent))
    except OSError as exc:
        raise SnapshotError(f"{target}: cannot write beside it ({exc.strerror or exc})") from exc
    try:
        _write(work / SNAPSHOT_STACKS, stacks)
        if copy_kallsyms and dump.kallsyms_path:
            _copy(dump.kallsyms_path, work / SNAPSHOT_KALLSYMS)
        if livepatch is not None:
            _write(work / LIVEPATCH_STATE_FILE, ("\n".join(livepatch.lines()) + "\n").encode())
        if patch_states is not None:
            comms = {t.tid: t.comm for t in dump.tasks if t.tid is not None}
            _write(work / PATCH_STATE_FILE, format_patch_states(patch_states, comms).encode())
        _write(work / SNAPSHOT_META, ("\n".join([*lines, COMPLETE_MARKER]) + "\n").encode())
        os.chmod(work, 0o755)
        os.rename(work, target)  # atomic; replaces only an empty directory
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        why = ("the disk is full" if exc.errno == errno.ENOSPC
               else "it exists now" if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR)
               else exc.strerror or str(exc))
        raise SnapshotError(f"{target}: snapshot not written: {why}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target
