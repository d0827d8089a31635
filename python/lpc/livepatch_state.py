"""The machine's livepatch state: ``/sys/kernel/livepatch`` and each task's ``patch_state``.

What the kernel already runs decides what a new patch is checked against (a
function an enabled patch replaced is checked against that patch's
replacement, kernel/livepatch/transition.c klp_check_stack_func) and whether it
can be loaded at all (no ``/sys/kernel/livepatch``: no CONFIG_LIVEPATCH; a
transition in progress: ``klp_enable_patch()`` returns -EBUSY, core.c
__klp_enable_patch).

The state is recorded as text, one line per sysfs entry, so that a live read
and a recorded snapshot go through the same parser (``livepatch.txt``)::

    # lpc livepatch state 1 uptime=12.34      comments start with '#'
    absent                                    no /sys/kernel/livepatch at all
    lpc_pt/                                   a directory (ends with '/')
    lpc_pt/enabled 1                          an attribute and its first line
    lpc_pt/force !                            an attribute that cannot be read
    lpc_pt/vmlinux/do_nanosleep,1/            a patched function: name,sympos

The sysfs layout is kernel/livepatch/core.c's: a directory per patch (named
after its module) with ``enabled``, ``transition``, ``force`` (write-only) and,
in newer kernels ``replace`` and ``stack_order``; a directory per object
(``vmlinux`` or the module) with ``patched``; a directory per function
``<name>,<sympos>``. ``replace``, ``stack_order`` and ``patched`` came after
6.1 (7.3 has them; 6.1 has none), so each is optional. sysfs lists the patches by name, not in load order, so
without ``stack_order`` their order is unknown.

``patch_state.txt`` holds ``tid patch_state comm`` per thread, after a comment
header (``/proc/PID/task/TID/patch_state``: -1 no transition, 0 the old
state, 1 the new; kernel/livepatch/transition.c klp_update_patch_state).

Reading is read-only: nothing under ``/proc`` or ``/sys`` is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lpc.errors import LivepatchStateError
from lpc.patch import MODULE_TEXT, Patch, PatchFunction

__all__ = [
    "LIVEPATCH_STATE_FILE",
    "PATCH_STATE_FILE",
    "SYSFS_LIVEPATCH",
    "LivepatchState",
    "LoadedObject",
    "LoadedPatch",
    "PatchStates",
    "format_patch_states",
    "loaded_patches",
    "parse_livepatch_state",
    "parse_patch_states",
    "read_livepatch_state",
    "read_patch_states",
    "sysfs_lines",
]

#: In a snapshot directory: the livepatch sysfs tree, and the per-task states.
LIVEPATCH_STATE_FILE = "livepatch.txt"
PATCH_STATE_FILE = "patch_state.txt"
SYSFS_LIVEPATCH = "/sys/kernel/livepatch"
_HEADER = "# lpc livepatch state 1"
_ABSENT = "absent"
#: ``@modules NAME…``: the modules loaded (``/proc/modules``), when recorded.
_MODULES = "@modules"
_UNREADABLE = "!"
#: A sysfs attribute is one short line; a livepatch tree is a few hundred entries.
_VALUE_LIMIT = 4096
_FUNCTION_DIR = re.compile(r"^(?P<name>[^,/\s]+),(?P<sympos>[0-9]+)$", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_UPTIME = re.compile(r"\buptime=([0-9]+(?:\.[0-9]+)?)(?![0-9.])", re.ASCII)
#: The first line of ``patch_state.txt`` (lpc capture's and the guest's).
_STATES_HEADER = "# uptime="


class PatchStates(dict[int, int]):
    """tid → ``patch_state`` (-1, 0, 1), with the time it was read when known."""

    uptime: float | None = None


@dataclass(frozen=True)
class LoadedObject:
    """One ``klp_object`` of an enabled patch: ``None`` = vmlinux."""

    name: str | None
    #: ``patched`` (newer kernels): the object is loaded and its functions redirected.
    patched: bool | None
    #: Each patched function as livepatch names it: (name, sympos).
    functions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class LoadedPatch:
    """One directory of ``/sys/kernel/livepatch``: a registered patch."""

    name: str
    enabled: bool | None
    transition: bool | None
    #: ``replace`` and ``stack_order`` exist in newer kernels (not 6.1); None when absent.
    replace: bool | None
    stack_order: int | None
    objects: tuple[LoadedObject, ...]

    @property
    def functions(self) -> tuple[tuple[str | None, str, int], ...]:
        return tuple((o.name, n, p) for o in self.objects for n, p in o.functions)


@dataclass(frozen=True)
class LivepatchState:
    """The parsed ``/sys/kernel/livepatch`` (see the module docstring)."""

    #: False: no ``/sys/kernel/livepatch``, the kernel has no CONFIG_LIVEPATCH.
    present: bool
    patches: tuple[LoadedPatch, ...]
    #: Where it was read: the sysfs directory or the recorded file.
    source: str
    uptime: float | None = None
    #: Lines not understood, as ``"file:line: text"``: reported, never dropped.
    unparsed: tuple[str, ...] = field(default=())
    #: The modules loaded (``/proc/modules``), when recorded: a livepatch
    #: module stays loaded after its patch is disabled and freed.
    modules: frozenset[str] | None = None

    @property
    def in_transition(self) -> LoadedPatch | None:
        """The patch whose transition is running, if any (at most one: core.c
        klp_transition_patch)."""
        return next((p for p in self.patches if p.transition), None)

    @property
    def unknowns(self) -> list[str]:
        """What the state does not tell, that a verdict needs: an unreadable
        ``transition`` (is one in progress?) or a line not understood."""
        out = [f"patch {p.name}: transition unreadable: whether a transition is in progress "
               "is not known" for p in self.patches if p.transition is None]
        out.extend(f"{where}: not understood" for where in self.unparsed)
        return out

    @property
    def enabled(self) -> tuple[LoadedPatch, ...]:
        """The enabled patches, oldest first when ``stack_order`` says so. A
        patch whose ``enabled`` cannot be read counts as enabled: its functions
        may be on the func_stack, and checking them is the cautious side."""
        on = [p for p in self.patches if p.enabled is not False]
        if on and all(p.stack_order is not None for p in on):
            on.sort(key=lambda p: p.stack_order or 0)
        return tuple(on)

    @property
    def order_known(self) -> bool:
        return all(p.stack_order is not None for p in self.enabled)

    def preflight(self) -> list[tuple[str, str]]:
        """What the kernel would do at ``klp_enable_patch()`` before any task is
        looked at, as ``(code, sentence)``: refusals first."""
        if not self.present:
            return [("ENODEV", f"{SYSFS_LIVEPATCH} does not exist: this kernel has no "
                     "CONFIG_LIVEPATCH, so no livepatch module can be loaded at all "
                     "(its klp_enable_patch() is an unknown symbol)")]
        busy = self.in_transition
        if busy is not None:
            going = "enabling" if busy.enabled else "disabling"
            return [("EBUSY", f"patch {busy.name} is in transition ({going}): the kernel "
                     "refuses a new patch with -EBUSY until that transition ends "
                     "(core.c __klp_enable_patch)")]
        return []

    def lines(self) -> list[str]:
        """The state in the recorded format (what :func:`parse_livepatch_state` reads)."""
        head = _HEADER + (f" uptime={self.uptime:g}" if self.uptime is not None else "")
        if not self.present:
            return [head, _ABSENT]
        out = [head]
        if self.modules is not None:
            out.append(" ".join([_MODULES, *sorted(self.modules)]))
        for p in self.patches:
            out.append(f"{p.name}/")
            for attr, value in (("enabled", p.enabled), ("transition", p.transition),
                                ("replace", p.replace), ("stack_order", p.stack_order)):
                if value is not None:
                    out.append(f"{p.name}/{attr} {int(value)}")
            for o in p.objects:
                obj = o.name or "vmlinux"
                out.append(f"{p.name}/{obj}/")
                if o.patched is not None:
                    out.append(f"{p.name}/{obj}/patched {int(o.patched)}")
                out.extend(f"{p.name}/{obj}/{n},{s}/" for n, s in o.functions)
        return out


# ---- reading -----------------------------------------------------------------------------------


def sysfs_lines(root: str | os.PathLike[str] = SYSFS_LIVEPATCH) -> list[str]:
    """The tree under ``root`` in the recorded format: every entry, sorted,
    symlinks not followed (an object's directory links nowhere else)."""
    top = Path(root)
    uptime = _uptime()
    head = _HEADER + (f" uptime={uptime:g}" if uptime is not None else "")
    if not top.is_dir():
        return [head, _ABSENT]
    out = [head]
    modules = _loaded_modules()
    if modules is not None:
        out.append(" ".join([_MODULES, *sorted(modules)]))
    for entry in sorted(_walk(top)):
        rel = entry.relative_to(top).as_posix()
        if entry.is_dir() and not entry.is_symlink():
            out.append(f"{rel}/")
        elif entry.is_file():
            out.append(f"{rel} {_attribute(entry)}")
    return out


def _walk(top: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        here = Path(dirpath)
        yield from (here / d for d in dirnames)
        yield from (here / f for f in filenames)


def _attribute(path: Path) -> str:
    """An attribute's first line; ``!`` when it cannot be read (``force`` is
    write-only: even root's read gets EIO/EACCES)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_VALUE_LIMIT)
    except OSError:
        return _UNREADABLE
    return data.decode("utf-8", "replace").split("\n", 1)[0].strip()


def _loaded_modules(path: str = "/proc/modules") -> frozenset[str] | None:
    """The names of the loaded modules (first column of ``/proc/modules``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return frozenset(line.split(" ", 1)[0] for line in fh if line.strip())
    except OSError:
        return None


def _uptime() -> float | None:
    try:
        with open("/proc/uptime", encoding="ascii") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_livepatch_state(root: str | os.PathLike[str] = SYSFS_LIVEPATCH) -> LivepatchState:
    """This machine's state (``root``: the sysfs directory)."""
    return parse_livepatch_state("\n".join(sysfs_lines(root)) + "\n", str(root))


def parse_livepatch_state(text: str, source: str) -> LivepatchState:
    """The recorded format (module docstring). A line that is not an entry is
    kept in :attr:`LivepatchState.unparsed`; an entry that contradicts the
    sysfs layout is a :class:`~lpc.errors.LivepatchStateError` naming the line."""
    attrs: dict[str, dict[str, str]] = {}
    objects: dict[str, dict[str, tuple[dict[str, str], list[tuple[str, int]]]]] = {}
    order: list[str] = []
    lines: dict[str, dict[str, int]] = {}
    unparsed: list[str] = []
    present: bool | None = None
    modules: frozenset[str] | None = None
    uptime, rows = _rows(text, source, _HEADER)
    for lineno, raw, line in rows:
        where = f"{source}:{lineno}"
        if line.split(" ", 1)[0] == _MODULES:
            modules = frozenset(line.split()[1:])
            continue
        if line == _ABSENT:
            if order:
                raise LivepatchStateError(f"{where}: 'absent' after patch entries")
            present = False
            continue
        if present is False:
            raise LivepatchStateError(f"{where}: an entry after 'absent'")
        present = True
        path, _, value = line.partition(" ")
        is_dir = path.endswith("/")
        parts = path.rstrip("/").split("/")
        if not all(parts) or (is_dir and value) or (not is_dir and not value):
            unparsed.append(f"{where}: {raw}")
            continue
        if len(parts) == 1 and not is_dir:
            unparsed.append(f"{where}: {raw}")  # a patch is a directory
            continue
        patch = parts[0]
        if patch not in attrs:
            attrs[patch], objects[patch], lines[patch] = {}, {}, {}
            order.append(patch)
        if len(parts) == 1:
            continue
        if len(parts) == 2:
            if is_dir:
                objects[patch].setdefault(parts[1], ({}, []))
            else:
                attrs[patch][parts[1]] = value
                lines[patch][parts[1]] = lineno
            continue
        obj = objects[patch].setdefault(parts[1], ({}, []))
        if len(parts) == 3 and not is_dir:
            obj[0][parts[2]] = value
            lines[patch][f"{parts[1]}/{parts[2]}"] = lineno
            continue
        func = _FUNCTION_DIR.match(parts[2])
        if func is None:
            if len(parts) == 3:
                raise LivepatchStateError(
                    f"{where}: {parts[2]!r} is no function directory (name,sympos)")
            continue  # a function's own attributes (none today): nothing to read
        if len(parts) == 3:
            obj[1].append((func["name"], int(func["sympos"])))
    patches = tuple(_patch(name, attrs[name], objects[name], source, lines[name])
                    for name in order)
    return LivepatchState(present is not False, patches, source, uptime, tuple(unparsed),
                          modules)


def _rows(text: str, source: str, header: str) -> tuple[float | None, list[tuple[int, str, str]]]:
    """The uptime its header gives, and each other non-blank line as
    ``(number, raw, stripped)``: both recorded formats share this shape. The
    first line must be the format's ``header`` (another file given in its
    place is refused, not read as an empty state)."""
    uptime: float | None = None
    rows = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith(header):
        raise LivepatchStateError(f"{source}:1: not a recorded {header.lstrip('# ')!r} file "
                                  f"(its first line must start with {header!r})")
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("#"):
            found = _UPTIME.search(line)
            if found and uptime is None:
                uptime = float(found[1])
        elif line:
            rows.append((lineno, raw, line))
    return uptime, rows


def _flag(value: str | None, what: str) -> bool | None:
    if value is None or value == _UNREADABLE:
        return None
    if value not in ("0", "1"):
        raise LivepatchStateError(f"{what}: {value!r} is not 0 or 1")
    return value == "1"


def _number(value: str | None, what: str) -> int | None:
    if value is None or value == _UNREADABLE:
        return None
    if not _DIGITS.fullmatch(value):
        raise LivepatchStateError(f"{what}: {value!r} is not a number")
    return int(value)


def _patch(name: str, attrs: dict[str, str],
           objects: dict[str, tuple[dict[str, str], list[tuple[str, int]]]],
           source: str, lines: dict[str, int]) -> LoadedPatch:
    def what(attr: str) -> str:
        return f"{source}:{lines.get(attr, '?')}: patch {name} {attr}"

    return LoadedPatch(
        name,
        _flag(attrs.get("enabled"), what("enabled")),
        _flag(attrs.get("transition"), what("transition")),
        _flag(attrs.get("replace"), what("replace")),
        _number(attrs.get("stack_order"), what("stack_order")),
        tuple(LoadedObject(None if obj == "vmlinux" else obj,
                           _flag(oattrs.get("patched"), what(f"{obj}/patched")),
                           tuple(funcs))
              for obj, (oattrs, funcs) in objects.items()),
    )


# ---- per-task patch_state ----------------------------------------------------------------------


def read_patch_states(proc: str = "/proc") -> PatchStates:
    """Every thread's ``patch_state`` (absent without CONFIG_LIVEPATCH: empty)."""
    states = PatchStates()
    states.uptime = _uptime()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return states
    for pid in pids:
        try:
            tids = [t for t in os.listdir(os.path.join(proc, pid, "task")) if t.isdigit()]
        except OSError:
            continue  # exited
        for tid in tids:
            try:
                with open(os.path.join(proc, pid, "task", tid, "patch_state"), "rb") as fh:
                    states[int(tid)] = int(fh.read(16).strip() or b"x")
            except (OSError, ValueError):
                continue  # exited, or no CONFIG_LIVEPATCH
    return states


def format_patch_states(states: PatchStates, comms: dict[int, str] | None = None) -> str:
    head = _STATES_HEADER + (f"{states.uptime:g}" if states.uptime is not None else "?")
    rows = [f"{tid} {s} {(comms or {}).get(tid, '')}".rstrip()
            for tid, s in sorted(states.items())]
    return "\n".join([head + " tid patch_state comm", *rows]) + "\n"


def parse_patch_states(text: str, source: str) -> PatchStates:
    """``tid patch_state [comm]`` lines (the guest's and ``lpc capture``'s)."""
    states = PatchStates()
    states.uptime, rows = _rows(text, source, _STATES_HEADER)
    for lineno, raw, line in rows:
        fields = line.split(None, 2)
        if (len(fields) < 2 or not _DIGITS.fullmatch(fields[0])
                or fields[1] not in ("-1", "0", "1")):
            raise LivepatchStateError(f"{source}:{lineno}: not 'tid patch_state comm': {raw!r}")
        states[int(fields[0])] = int(fields[1])
    return states


# ---- the state as loaded patches -----------------------------------------------------------------


def loaded_patches(state: LivepatchState) -> tuple[Patch, ...]:
    """The enabled patches as :class:`~lpc.patch.Patch` es, oldest first when
    ``stack_order`` tells (else marked ``order_known=False``).

    sysfs names each patched function but not its replacement: a later patch
    of the same function is checked against *that* replacement, which lives
    somewhere in the patch's module. Each function's replacement is therefore
    every function of the module (:data:`~lpc.patch.MODULE_TEXT`): a range
    that holds the true one, so a stack it misses holds none of them. A patch
    in transition counts: its functions are on the func_stack already.
    """
    known = state.order_known
    out = []
    for p in state.enabled:
        functions = tuple(
            PatchFunction(name, obj, sympos or None, new=PatchFunction(MODULE_TEXT, p.name))
            for obj, name, sympos in p.functions)
        if functions:
            # replace=False whatever sysfs says: what an atomic replace freed is
            # gone from sysfs already, and every patch still listed is enabled.
            out.append(Patch(functions, replace=False, name=p.name, order_known=known))
    return tuple(out)
