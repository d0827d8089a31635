"""A recorded oracle case: the guest's captures, read back for comparison.

A case directory holds ``case.json`` (the scenario, the kernel release, the
checks — see :mod:`lpc.oracle.scenarios`) and the capture files it names. The
kernel's side of every check is read here; lpc's side is computed in
:mod:`lpc.oracle.compare`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpc.errors import LpcError

__all__ = [
    "CASE_FILE",
    "CaseError",
    "KernelStates",
    "RetryReport",
    "parse_calls",
    "parse_klp_dmesg",
    "parse_states",
    "read_case",
    "snapshot_time",
    "trim_kallsyms",
]

CASE_FILE = "case.json"
CASE_SCHEMA_VERSION = 1


class CaseError(LpcError):
    """A recorded case that cannot be read (names the file and line)."""


@dataclass(frozen=True)
class KernelStates:
    """``/proc/<pid>/task/<tid>/patch_state`` of every thread at one instant.

    ``transition`` is the patch's sysfs ``transition`` flag then (None: the
    patch was gone). patch_state is -1 when no transition runs (including once
    it has completed), else 0 / 1: the task's current state.
    """

    patch: str
    enabled: int | None
    transition: int | None
    uptime: float
    tasks: Mapping[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def transition_over(self) -> bool:
        return self.transition != 1

    def switched(self, tid: int, target: int) -> bool | None:
        """Has the task reached ``target`` (1 patched, 0 unpatched)? None: no such task."""
        if tid not in self.tasks:
            return None
        state = self.tasks[tid][0]
        if state == -1:
            # KLP_UNDEFINED: no transition. After one completed, every task is in the target.
            return self.transition_over
        return state == target


_STATES_HEADER = re.compile(
    r"^# uptime=(?P<uptime>[\d.]+) patch=(?P<patch>\S+) "
    r"(?:enabled=(?P<enabled>\d) transition=(?P<transition>\d)|absent)\s*$"
)


def parse_states(path: Path) -> KernelStates:
    """A ``states`` file of tools/oracle/guest/lib.sh: header, then ``tid state comm``."""
    lines = _read(path).splitlines()
    head = _STATES_HEADER.match(lines[0]) if lines else None
    if head is None:
        raise CaseError(f"{path}:1: not a patch_state capture (expected '# uptime=... patch=...')")
    tasks: dict[int, tuple[int, str]] = {}
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[0].isdigit() or parts[1] not in ("-1", "0", "1"):
            raise CaseError(f"{path}:{lineno}: expected 'tid patch_state comm', got {line!r}")
        tasks[int(parts[0])] = (int(parts[1]), parts[2] if len(parts) > 2 else "")
    enabled, transition = head["enabled"], head["transition"]
    return KernelStates(
        head["patch"],
        None if enabled is None else int(enabled),
        None if transition is None else int(transition),
        float(head["uptime"]),
        tasks,
    )


@dataclass(frozen=True)
class RetryReport:
    """One line of klp_try_switch_task()'s dynamic debug output: why a task did
    not switch at one try (kernel/livepatch/transition.c)."""

    time: float
    tid: int
    comm: str
    reason: str  # "sleeping" | "running" | "unreliable" | "other"
    function: str | None = None


_KLP_DEBUG = re.compile(
    r"^\[\s*(?P<time>[\d.]+)\] livepatch: klp_try_switch_task: (?P<comm>.*):(?P<tid>\d+) "
    r"(?P<what>is sleeping on function (?P<function>\S+)|is running|has an unreliable stack|.*)$"
)


def parse_klp_dmesg(path: Path) -> list[RetryReport]:
    """The per-task reasons from a dmesg excerpt; other lines are not reports."""
    reports = []
    for line in _read(path).splitlines():
        m = _KLP_DEBUG.match(line)
        if m is None:
            continue
        what = m["what"]
        reason = (
            "sleeping" if m["function"] else "running" if what == "is running"
            else "unreliable" if what == "has an unreliable stack" else "other"
        )
        reports.append(
            RetryReport(float(m["time"]), int(m["tid"]), m["comm"], reason, m["function"])
        )
    return reports


_TIMESTAMP = re.compile(r"^\[\s*([\d.]+)\]")


def snapshot_time(dump_path: Path) -> float | None:
    """The kernel timestamp of the dump's first line (when SysRq-t began); for a
    guest snapshot directory (lib.sh snapshot), the uptime its meta.txt gives
    for the start of the capture."""
    if dump_path.is_dir():
        meta = dump_path / "meta.txt"
        if meta.exists():
            for line in _read(meta).splitlines():
                key, _, value = line.partition("=")
                if key == "uptime":
                    try:
                        return float(value)
                    except ValueError:
                        return None
        return None
    for line in _read(dump_path).splitlines():
        m = _TIMESTAMP.match(line)
        if m:
            return float(m[1])
    return None


def parse_calls(path: Path) -> dict[str, tuple[int, ...]]:
    """``<module>/parameters/calls N,N,...`` lines: calls per pass-through slot."""
    out: dict[str, tuple[int, ...]] = {}
    for lineno, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            key, values = line.split()
            out[key.split("/", 1)[0]] = tuple(int(v) for v in values.split(","))
        except ValueError as exc:
            raise CaseError(f"{path}:{lineno}: expected '<module>/parameters/calls N,N,...'") from exc
    return out


def read_case(directory: Path) -> dict[str, Any]:
    """``case.json`` of a case directory, checked for the fields compare needs."""
    path = directory / CASE_FILE
    try:
        doc = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != CASE_SCHEMA_VERSION:
        raise CaseError(f"{path}: not an oracle case (schema_version {CASE_SCHEMA_VERSION})")
    for key in ("scenario", "kernel_release", "checks"):
        if key not in doc:
            raise CaseError(f"{path}: missing {key!r}")
    return doc


def trim_kallsyms(text: str, keep_names: Iterable[str], keep_modules: Iterable[str]) -> str:
    """The lines of a kallsyms a case needs, such that every kept function keeps
    its size and sympos.

    Kept: every line of a kept name (all same-named symbols, so sympos is
    unchanged), the next line at a higher address in the same table (the
    kernel's size is the distance to it: kernel/kallsyms.c get_symbol_pos),
    and every line of the kept modules (a module's last symbol is bounded by
    its text end, which kallsyms does not print — trimming could move it).
    """
    names = set(keep_names)
    modules = set(keep_modules)
    rows: list[tuple[int, str, str | None, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        module = parts[3].strip("[]") if len(parts) > 3 else None
        rows.append((int(parts[0], 16), parts[2], module, line))
    keep = [False] * len(rows)
    by_table: dict[str | None, list[int]] = {}
    for i, row in enumerate(rows):
        by_table.setdefault(row[2], []).append(i)
    for table, indices in by_table.items():
        if table in modules:
            for i in indices:
                keep[i] = True
            continue
        ordered = sorted(indices, key=lambda i: rows[i][0])
        for pos, i in enumerate(ordered):
            if rows[i][1] not in names:
                continue
            keep[i] = True
            for j in ordered[pos + 1:]:
                if rows[j][0] > rows[i][0]:
                    keep[j] = True
                    break
    return "".join(row[3] + "\n" for row, k in zip(rows, keep) if k)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CaseError(f"{path}: cannot read ({exc.strerror})") from exc
