"""Renderers of a :class:`~lpc.check.Report`: the text a person reads, the JSON a tool reads.

Each reads the report and nothing else: what was checked and how is all in it.

The text answers first: the source and the kernel's profile, the verdict, then
the culprits — the tasks that do not switch now, grouped by what holds them
(first patched function, verdict, outlook, reason, kind), one row per group
with its count, a comm pattern and example ids — then the advice, then the
details (lost evidence, the machine's livepatch state, warnings). One code
path writes it for a terminal and for a pipe: plain columns fitted to the
width (``COLUMNS`` or the terminal's), the reason wrapped, colour only when
asked or on a terminal (``NO_COLOR`` honoured). JSON is one document with
``schema_version``, each task list streamed one compact object per line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from lpc.check import MachineView, Report
from lpc.models import CONVERGING, MODELS, Outlook, Verdict, get_model
from lpc.models.base import TaskFacts, TaskOutcome
from lpc.patch import Patch, PatchOrigin
from lpc.result import SCHEMA_VERSION, CheckResult, TaskResults

__all__ = [
    "GROUP_BY",
    "TaskList",
    "TextOptions",
    "culprit_table",
    "render_json",
    "render_jsonl",
    "render_text",
    "verdict_text",
    "write_json",
    "write_table",
]


# ---- text ---------------------------------------------------------------------------------------

#: C0 controls, DEL and C1 controls: what a terminal may act on (ESC and CSI start
#: colour, cursor and title sequences; OSC can set the window title or a link).
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}


def printable(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN``: dump text (a comm
    any process can set with prctl(PR_SET_NAME), a frame name, a meta field)
    must not reach a terminal as escape sequences."""
    return text.translate(_CONTROLS)


#: What ``--group-by`` takes: the default key, and the three others.
GROUP_BY = ("outcome", "function", "comm", "stack")

#: Groups shown by default: with the lines around them, one screen.
DEFAULT_TOP = 15


@dataclass(frozen=True)
class TextOptions:
    """How the text report is laid out (the CLI's text-only options)."""

    #: Columns to fit; None: ``COLUMNS``, else the terminal's; a pipe: whole lines.
    width: int | None = None
    #: ``auto`` (a terminal, and no ``NO_COLOR``), ``never`` or ``always``.
    color: str = "auto"
    #: One row per task (every task of the check) instead of groups.
    tasks: bool = False
    #: The culprits' grouping key (:data:`GROUP_BY`).
    group_by: str = "outcome"
    #: Each group's stack (its first task's), once, under its row.
    show_stacks: bool = False
    #: Groups shown at most; None: every group.
    top: int | None = DEFAULT_TOP


def _use_color(option: str, out: TextIO) -> bool:
    if option == "always":
        return True
    if option == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


#: The width of a pipe without ``COLUMNS``: lines whole, for grep and other tools.
UNLIMITED = 1 << 30


def _width(option: int | None, out: TextIO | None = None) -> int:
    """``option``, else ``COLUMNS``, else the terminal's width when ``out`` is
    one; a pipe or a file without ``COLUMNS`` gets whole lines."""
    if option is not None:
        return max(option, 20)
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), 20)
    isatty = getattr(out, "isatty", None)
    if out is not None and isatty is not None and isatty():
        try:
            return max(os.get_terminal_size(out.fileno()).columns, 20)
        except (OSError, ValueError, AttributeError):
            return max(shutil.get_terminal_size((80, 24)).columns, 20)
    return UNLIMITED


def _cells(text: str) -> int:
    """Terminal columns of ``text`` (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _cells(text))


#: SGR colours of the words and prefixes a reader looks for first.
_RED, _GREEN, _YELLOW, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
_PAINT = {
    "DOES NOT CONVERGE": _RED + _BOLD, "REFUSED": _RED + _BOLD, "CONVERGES": _GREEN + _BOLD,
    "UNKNOWN": _YELLOW + _BOLD, "refused:": _RED, "warning:": _YELLOW, "blocked": _RED,
    "stuck": _RED,
}
_PAINTED = re.compile("|".join(re.escape(w) for w in sorted(_PAINT, key=len, reverse=True)))
#: Holds a phrase together while wrapping (never in the output: see _Writer.say).
_GLUE = "\x00"


class _Writer:
    """Lines fitted to the width: long ones wrapped at spaces, continuation lines
    indented; unbreakable tokens (a path, a long symbol) kept whole."""

    def __init__(self, out: TextIO, width: int, color: bool) -> None:
        self.out, self.width, self.color = out, width, color

    def paint(self, text: str, words: Iterable[str] = ()) -> str:
        """``text`` (printable already) with the given marker words coloured."""
        wanted = set(words)
        if not self.color or not wanted:
            return text
        return _PAINTED.sub(lambda m: (_PAINT[m[0]] + m[0] + _RESET) if m[0] in wanted
                            else m[0], text)

    def wrap(self, text: str, width: int, indent: int = 2) -> list[str]:
        if _cells(text) <= width:
            return [text]
        lines = textwrap.wrap(text, width=width, subsequent_indent=" " * indent,
                              break_long_words=False, break_on_hyphens=False)
        return lines or [text]

    def say(self, text: str, paint: Iterable[str] = (), indent: int = 2,
            glue: Sequence[str] = ()) -> None:
        """One logical line (dump text escaped), wrapped; the ``glue`` phrases
        never split across lines."""
        text = printable(text)
        for phrase in glue:
            text = text.replace(phrase, phrase.replace(" ", _GLUE))
        for line in self.wrap(text, self.width, indent):
            self.raw(self.paint(line.replace(_GLUE, " "), paint))

    def raw(self, line: str) -> None:
        print(line.rstrip(), file=self.out)


def write_table(rows: list[list[str]], header: list[str], out: TextIO,
                width: int | None = None, color: bool = False,
                paint: Sequence[int] = ()) -> None:
    """Aligned columns fitted to ``width``: every column but the last is whole
    (identity: never cut); the last, free text, is wrapped to what remains —
    under the row, indented, when too little remains beside it. Cells are dump
    text, shown escaped; ``paint`` names the columns whose marker words are
    coloured."""
    _table(_Writer(out, _width(width, out), color), header, rows, paint)


#: Below this many columns left for the last (free-text) column, it goes under its row.
_MIN_FREE = 28


def _table(w: _Writer, header: list[str], rows: Sequence[Sequence[str]],
           paint: Sequence[int] = (), under: Sequence[Sequence[str]] = (),
           identity: int = 1) -> None:
    """The table behind :func:`write_table`; ``under[i]``: lines printed as they
    are under row ``i`` (a stack), indented. The columns that do not fit beside
    the first ``identity`` ones (never cut) go under the row, before the free
    text, named by a second header line."""
    cells = [[printable(c) for c in row] for row in rows]
    fixed = len(header) - 1
    widths = [max([_cells(header[i]), *(_cells(r[i]) for r in cells)]) for i in range(fixed)]
    kept = fixed
    while kept > identity and sum(widths[:kept]) + 2 * (kept - 1) > w.width:
        kept -= 1
    left = sum(widths[:kept]) + 2 * kept
    free = w.width - left
    longest = max([_cells(header[-1]), *(_cells(r[-1]) for r in cells)])
    beside = kept == fixed and free >= min(_MIN_FREE, longest)
    if beside and longest > free:
        # Wrapped in a narrow column or under its row: whichever takes fewer lines
        # (judged on the first rows: --tasks may have half a million).
        sample = [r[-1] for r in cells[:200] if r[-1]]
        narrow = sum(len(w.wrap(t, free, 0)) for t in sample)
        wide = sum(1 + len(w.wrap("    " + t, w.width, 4)) for t in sample)
        beside = narrow <= wide
    heads = "  ".join(_pad(h, n) for h, n in zip(header, widths[:kept]))
    w.raw(heads + "  " + header[-1] if beside else heads)
    if not beside:
        w.raw("    " + " · ".join(header[kept:]))
    for i, row in enumerate(cells):
        head = "  ".join(w.paint(_pad(c, n), _PAINT if k in paint else ())
                         for k, (c, n) in enumerate(zip(row[:kept], widths)))
        if beside:
            lines = w.wrap(row[-1], free, 0) if row[-1] else [""]
            w.raw(head + "  " + lines[0])
            for more in lines[1:]:
                w.raw(" " * left + more)
        else:
            w.raw(head)
            moved = "  ".join(c for c in row[kept:fixed] if c not in ("", "-"))
            text = f"{moved} — {row[-1]}" if moved else row[-1]
            for k, line in enumerate(w.wrap("    " + text, w.width, 4) if text else []):
                # The moved columns lead the first line: their marker words are coloured.
                w.raw(w.paint(line, _PAINT if k == 0 and any(
                    c in paint for c in range(kept, fixed)) else ()))
        for line in under[i] if i < len(under) else ():
            for part in w.wrap("        " + printable(line), w.width, 10):
                w.raw(part)


def patch_functions_text(patch: Patch, with_ranges: bool = False) -> str:
    """The checked functions in one line; the functions standing for a whole
    module (a loaded patch whose replacement sysfs does not name) as one
    ``module:* (N functions)``."""
    parts: list[str] = []
    modules: dict[str | None, int] = {}
    for f in patch.functions:
        if f.in_module_text:
            if f.object not in modules:
                modules[f.object] = len(parts)
                parts.append("")
            parts[modules[f.object]] += "."
            continue
        parts.append(f.spec + (f" [{f.start:#x}, {f.end:#x})"
                               if with_ranges and f.resolved else ""))
    for module, at in modules.items():
        parts[at] = f"{module}:* ({len(parts[at])} functions: every function of the module)"
    return ", ".join(parts)


def verdict_text(converges: bool | None) -> str:
    return {True: "CONVERGES", False: "DOES NOT CONVERGE", None: "UNKNOWN"}[converges]


# ---- the culprits, grouped ----------------------------------------------------------------------

#: A comm's stem: up to the first digit, slash or colon (the slash or colon kept).
_STEM = re.compile(r"[^0-9/:]*[/:]?")


def comm_pattern(comms: Sequence[str]) -> str:
    """One name for a group's comms: the comm when they share one, ``stem*``
    (``kworker/*``) when they share a stem up to a digit, slash or colon,
    else ``N comms``."""
    distinct = sorted(set(comms))
    if len(distinct) == 1:
        return distinct[0]
    stems = {_STEM.match(c)[0] for c in distinct}  # type: ignore[index]
    if len(stems) == 1:
        stem = stems.pop()
        if stem:
            return f"{stem}*"
    return f"{len(distinct)} comms"


def _stem(comm: str) -> str:
    stem = _STEM.match(comm)[0]  # type: ignore[index]
    return f"{stem}*" if stem and stem != comm else comm


@dataclass
class _Atom:
    """Tasks of one judged outcome that share one sub-key (a comm stem, a stack)."""

    outcome: TaskOutcome
    facts: TaskFacts  # the first task's (what the group key reads is the same for all)
    members: npt.NDArray[np.int64]
    sub: object = None


@dataclass
class _Group:
    key: tuple[object, ...]
    atoms: list[_Atom]

    @property
    def count(self) -> int:
        return sum(len(a.members) for a in self.atoms)

    @property
    def rank(self) -> int:
        return min(_OUTLOOK_RANK[a.outcome.outlook] for a in self.atoms)

    def members(self) -> npt.NDArray[np.int64]:
        return np.sort(np.concatenate([a.members for a in self.atoms]))


_OUTLOOK_RANK = {o: i for i, o in enumerate([
    Outlook.STUCK, Outlook.UNKNOWN, Outlook.AFTER_WAKEUP, Outlook.AFTER_SIGNAL,
    Outlook.AT_KERNEL_EXIT, Outlook.SWITCHED,
])}


def _blocking(o: TaskOutcome) -> bool:
    return o.verdict is not Verdict.SWITCH or o.outlook is not Outlook.SWITCHED


class _Identity:
    """Per-task identity (tid, tgid, comm) and stack text, from the dump's
    columns when the facts are a task table, else from each task's facts."""

    def __init__(self, tasks: TaskResults) -> None:
        from lpc.facts import TaskTable

        self.facts = tasks.facts
        self.dump = tasks.facts.dump if isinstance(tasks.facts, TaskTable) else None

    def comm_ids(self, members: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Each member's comm as an index into the returned names."""
        if self.dump is not None:
            return self.dump.comm_ids[members].astype(np.int64), list(self.dump.comm_names)
        names = [self.facts[int(t)].comm for t in members]
        index = {n: i for i, n in enumerate(dict.fromkeys(names))}
        return np.array([index[n] for n in names], dtype=np.int64), list(index)

    def comms(self, members: npt.NDArray[np.int64]) -> list[str]:
        ids, names = self.comm_ids(members)
        return [names[i] for i in np.unique(ids).tolist()]

    def ids(self, members: Sequence[int]) -> list[str]:
        """``tid``, or ``tid/tgid`` for a thread whose group leader is another
        task; ``-`` where the dump gives no id."""
        if self.dump is not None:
            tids = self.dump.tids[list(members)].tolist()
            tgids = self.dump.tgids[list(members)].tolist()
            pids = self.dump.pids[list(members)].tolist()
        else:
            fs = [self.facts[int(t)] for t in members]
            tids = [-1 if f.tid is None else f.tid for f in fs]
            pids = [-1 if f.pid is None else f.pid for f in fs]
            tgids = [-1] * len(fs)
        out = []
        for tid, tgid, pid in zip(tids, tgids, pids):
            if tid < 0:
                tid = pid  # a format that prints one id: the task's
            if tid < 0:
                out.append("-")
            elif 0 <= tgid != tid:
                out.append(f"{tid}/{tgid}")
            else:
                out.append(str(tid))
        return out

    def stack_keys(self, members: npt.NDArray[np.int64]) -> list[object]:
        """Each member's stack text as a key (equal ⇔ the same printed frames)."""
        if self.dump is not None:
            d = self.dump
            offsets = d.frame_offsets
            tokens = d.frame_tokens
            return [tokens[int(offsets[t]):int(offsets[t + 1])].tobytes()
                    for t in members.tolist()]
        return [self.facts[int(t)].frames for t in members]

    def stack_lines(self, t: int) -> list[str]:
        """Task ``t``'s stack as the dump printed it, one frame a line."""
        if self.dump is None:
            return [f"#{i} {name}" for i, name in enumerate(self.facts[t].frames)] or ["(empty)"]
        lines = []
        for i, f in enumerate(self.dump.task(t).frames):
            name = f.function or (f"{f.address:#x}" if f.address is not None else "?")
            off = f"+{f.offset:#x}" if f.offset is not None else ""
            size = f"/{f.size:#x}" if f.size is not None and f.offset is not None else ""
            module = f" [{f.module}]" if f.module else ""
            lines.append(f"#{i} {'' if f.reliable else '? '}{name}{off}{size}{module}")
        return lines or ["(empty stack)"]


def _atoms(result: CheckResult, ident: _Identity, by: str,
           everyone: bool = False) -> list[_Atom]:
    """The tasks of each distinct outcome (the blocking ones, or all), split by
    the sub-key ``by`` needs (a comm stem, a stack)."""
    out: list[_Atom] = []
    for outcome, members in result.tasks.distinct():
        if not everyone and not _blocking(outcome):
            continue
        facts = result.tasks.facts[int(members[0])]
        if by == "comm":
            ids, names = ident.comm_ids(members)
            stems = [_stem(n) for n in names]
            split: dict[object, list[int]] = {}
            for t, c in zip(members.tolist(), ids.tolist()):
                split.setdefault(stems[c], []).append(t)
        elif by == "stack":
            split = {}
            for t, k in zip(members.tolist(), ident.stack_keys(members)):
                split.setdefault(k, []).append(t)
        else:
            out.append(_Atom(outcome, facts, members))
            continue
        for sub, ts in split.items():
            out.append(_Atom(outcome, facts, np.array(ts, dtype=np.int64), sub))
    return out


def _group_key(atom: _Atom, by: str) -> tuple[object, ...]:
    o, f = atom.outcome, atom.facts
    if by == "function":
        return (f.patched_function,)
    if by in ("comm", "stack"):
        return (atom.sub,)
    return (f.patched_function, o.verdict, o.outlook, o.reason, f.kind)


def group_culprits(result: CheckResult, by: str = "outcome",
                   everyone: bool = False) -> list[_Group]:
    """The tasks that do not switch now (``everyone``: all tasks), grouped by
    ``by``: worst outlook first, then the largest group."""
    if by not in GROUP_BY:
        raise ValueError(f"group by {by!r}: one of {', '.join(GROUP_BY)}")
    ident = _Identity(result.tasks)
    groups: dict[tuple[object, ...], _Group] = {}
    for atom in _atoms(result, ident, by, everyone):
        key = _group_key(atom, by)
        groups.setdefault(key, _Group(key, [])).atoms.append(atom)
    return sorted(groups.values(), key=lambda g: (g.rank, -g.count, int(g.members()[0])))


def _one(values: Iterable[str], many: str) -> str:
    """The value when all agree, else ``N <many>``."""
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else f"{len(distinct)} {many}"


#: Example ids in a group's row.
_EXAMPLES = 3


def _group_row(g: _Group, ident: _Identity, examples: int = _EXAMPLES) -> list[str]:
    members = g.members()
    shown = ident.ids(members[:examples].tolist())
    more = len(members) > len(shown)
    reasons = Counter()  # type: Counter[str]
    for a in g.atoms:
        reasons[a.outcome.reason] += len(a.members)
    reason = next(iter(reasons)) if len(reasons) == 1 else \
        f"{len(reasons)} reasons; most tasks: {reasons.most_common(1)[0][0]}"
    return [
        str(g.count),
        comm_pattern(ident.comms(members)),
        ",".join(shown) + (",…" if more else ""),
        _one((a.facts.kind.value for a in g.atoms), "kinds"),
        _one((a.outcome.verdict.value for a in g.atoms), "verdicts"),
        _one((a.outcome.outlook.value for a in g.atoms), "outlooks"),
        _frames(g.atoms),
        reason,
    ]


def _frame(f: TaskFacts) -> str:
    """``#N function``: the first patched frame, ``-`` when none."""
    return "-" if f.patched_frame is None else f"#{f.patched_frame} {f.patched_function}"


def _frames(atoms: Sequence[_Atom]) -> str:
    """A group's first patched frame: ``#0 f``; ``#0,2 f`` when the function is
    met at several depths; ``N functions`` when the group mixes functions."""
    functions = {a.facts.patched_function for a in atoms}
    if len(functions) > 1:
        return f"{len(functions)} functions"
    depths = sorted({a.facts.patched_frame for a in atoms if a.facts.patched_frame is not None})
    if not depths:
        return "-"
    return f"#{','.join(str(d) for d in depths)} {functions.pop()}"


_GROUP_HEADER = ["tasks", "comm", "tid", "kind", "verdict", "outlook", "frame", "why"]
_TASK_HEADER = ["tid", "comm", "st", "kind", "verdict", "outlook", "frame", "why"]


def _culprits(result: CheckResult, w: _Writer, options: TextOptions) -> None:
    """The culprits: one row per group (or per task with ``--tasks``)."""
    ident = _Identity(result.tasks)
    if options.tasks:
        rows, under = [], []
        for g in group_culprits(result, "outcome", everyone=True):
            for a in sorted(g.atoms, key=lambda a: int(a.members[0])):
                f, o = a.facts, a.outcome
                frame = _frame(f)
                members = a.members.tolist()
                ids = ident.ids(members)
                comm_ids, names = ident.comm_ids(a.members)
                for t, tid, c in zip(members, ids, comm_ids.tolist()):
                    rows.append([tid, names[c], f.state or "?", f.kind.value, o.verdict.value,
                                 o.outlook.value, frame, o.reason])
                    under.append(ident.stack_lines(t) if options.show_stacks else [])
        if rows:
            _table(w, _TASK_HEADER, rows, paint=(4, 5), under=under, identity=2)
        return
    groups = group_culprits(result, options.group_by)
    if not groups:
        return
    shown = groups if options.top is None else groups[:options.top]
    for examples in range(_EXAMPLES, 0, -1):  # fewer example ids before the columns fold
        rows = [_group_row(g, ident, examples) for g in shown]
        widths = [max(_cells(h), *(_cells(printable(r[i])) for r in rows))
                  for i, h in enumerate(_GROUP_HEADER[:-1])]
        if sum(widths) + 2 * len(widths) <= w.width:
            break
    under = [ident.stack_lines(int(g.members()[0])) if options.show_stacks else []
             for g in shown]
    _table(w, _GROUP_HEADER, rows, paint=(4, 5), under=under, identity=3)
    if len(shown) < len(groups):
        rest = groups[len(shown):]
        w.say(f"… {len(rest)} more group(s) of {sum(g.count for g in rest)} task(s) not shown: "
              f"--top {len(groups)} shows every group, --tasks every task, --json all of it")


def culprit_table(result: CheckResult, by: str = "outcome") -> tuple[list[str], list[list[str]]]:
    """The culprit groups as the text report shows them: its header and one row
    per group, every group (other renderers, e.g. the HTML page, read this)."""
    ident = _Identity(result.tasks)
    return list(_GROUP_HEADER), [_group_row(g, ident) for g in group_culprits(result, by)]


def _advice(result: CheckResult) -> list[tuple[str, int]]:
    """Sentences an engineer acts on, one per distinct advice, with the number
    of tasks it concerns: what the stuck tasks wait for, and which other model
    would converge on them (judged on the same facts)."""
    others = [get_model(name) for name in MODELS if name != result.model]
    counts: Counter[str] = Counter()
    comms: dict[str, list[str]] = {}
    ident = _Identity(result.tasks)
    for outcome, tasks in result.tasks.distinct():
        if outcome.outlook is not Outlook.STUCK:
            continue
        facts = result.tasks.facts[int(tasks[0])]
        line = outcome.reason
        for m in others:
            o = m.judge(facts)
            if o.outlook in CONVERGING and o.outlook is not Outlook.SWITCHED:
                line += f"; {m.name} would converge ({o.outlook.value.replace('_', ' ')})"
                break
        counts[line] += len(tasks)
        comms.setdefault(line, []).extend(ident.comms(tasks))
    return [(f"({n} task(s), {comm_pattern(comms[line])}): {line}", n)
            for line, n in counts.most_common()]


#: Advice lines shown (the rest are counted).
_ADVICE = 5


def _header(w: _Writer, description: str, origin: PatchOrigin | None,
            patch_line: str | None, result: CheckResult | None) -> list[str]:
    """Source, patch, profile: one line each; returns the profile's
    assumptions, said with the details."""
    w.say(f"source: {description}")
    if origin is not None:
        w.say(f"patch: {origin.text()}")
        for note in origin.assumed:
            w.say(f"  assumed: {note}", indent=4)
    if patch_line is not None:
        w.say(patch_line)
    if result is None or not result.model_profile:
        return []
    profile = result.model_profile
    release = profile.get("kernel_release") or "unknown release"
    named = f" profile {profile['profile']}" if profile.get("profile") else ""
    w.say(f"kernel: {release} ({profile.get('release_from')}), "
          f"{profile.get('arch') or 'unknown arch'} — {result.model}{named}: switches at "
          f"{', '.join(profile.get('switch_points', ())) or 'nothing'}")
    return [f"assumed: {note}" for note in profile.get("assumed", ())]


def _verdict_line(result: CheckResult, refused: str | None) -> str:
    s = result.summary()
    eta = f" (worst case ~{s['eta_s']:g} s)" if s["eta_s"] else ""
    if refused == "unknown" and result.converges is True:
        return (f"verdict: UNKNOWN: the machine's livepatch state leaves it open (unknown: "
                f"below); the stacks alone: CONVERGES{eta} — {s['reason']}")
    if refused is not None and refused != "unknown":
        return (f"verdict: REFUSED ({refused}): the kernel would not start this transition; "
                f"once it would: {verdict_text(result.converges)}{eta} — {s['reason']}")
    return f"verdict: {verdict_text(result.converges)}{eta} — {s['reason']}"


_VERDICT_WORDS = ("DOES NOT CONVERGE", "REFUSED", "CONVERGES", "UNKNOWN")


def _counts_line(result: CheckResult) -> str:
    s = result.summary()
    return (f"model {result.model} (LEAVE_{result.cell[0]} / SWITCH_{result.cell[1]}): "
            f"{s['tasks']} tasks — {s['switch']} switch now, {s['blocked']} blocked, "
            f"{s['running']} running, {s['unreliable']} unreliable")


def _text_one(report: Report, result: CheckResult, w: _Writer, options: TextOptions,
              refused: str | None, origin: PatchOrigin | None) -> None:
    fns = patch_functions_text(result.patch, with_ranges=True)
    assumed = _header(w, report.description, origin,
                      f"patch ({'unpatch' if result.patch.unpatch else 'patch'}): {fns}", result)
    w.say(_verdict_line(result, refused), paint=_VERDICT_WORDS, glue=_VERDICT_WORDS)
    blocking = len(result.blocking)
    w.say(_counts_line(result) + (f"; not switched now: {blocking}" if blocking else ""))
    _culprits(result, w, options)
    advice = _advice(result)
    for line, _ in advice[:_ADVICE]:
        w.say(f"advice {line}")
    if len(advice) > _ADVICE:
        rest = advice[_ADVICE:]
        w.say(f"advice: … {len(rest)} more, on {sum(n for _, n in rest)} task(s) (see --json)")
    _details(report, [result], w, assumed)


def _details(report: Report, results: Sequence[CheckResult], w: _Writer,
             assumed: Sequence[str]) -> None:
    """After the culprits: lost evidence, the profile's assumptions, the
    machine's state and transition, warnings."""
    first = results[0]
    for line in _evidence_lines(first):
        w.say(line)
    for line in assumed:
        w.say(line)
    machine = report.machine
    if machine is not None:
        for line in _machine_lines(machine)[len(machine.refusals):]:
            w.say(line)
        if machine.transition is not None:
            # The kernel runs one model: beside several, only its counts are shown.
            many = len(results) > 1
            for result in results[:1 if many else None]:
                lines = _transition_lines(machine, result)
                for line in lines[:1] if many else lines:
                    w.say(line.split("; lpc on")[0] if many else line, indent=4)
    for warning in first.warnings:
        w.say(f"warning: {warning}", paint=("warning:",))


def _evidence_lines(result: CheckResult) -> list[str]:
    """One line per kind of lost evidence, with counts."""
    lines = []
    path = result.source.get("path") or "the dump"
    evidence = result.evidence
    if evidence.get("input_cut"):
        lines.append(f"{path} ends in the middle of a line: it was cut, and the tasks after the "
                     "cut are missing: verdict cannot be CONVERGES")
    headers = evidence.get("unreadable_headers", {})
    if headers.get("tasks"):
        shown = ", ".join(str(n) for n in headers["lines"])
        more = ", …" if headers["tasks"] > len(headers["lines"]) else ""
        lines.append(f"{headers['tasks']} task header(s) unreadable ({path} lines {shown}{more}): "
                     "verdict cannot be CONVERGES")
    for kind, loss in evidence.get("lost", {}).items():
        if kind == "header":
            continue  # said above, with its lines
        first = loss["first"][0]
        where = f"{path}:{first['line']}" if first.get("line") else f"{path}:{first['task_line']}"
        frame = f", frame #{first['frame']}" if "frame" in first else ""
        lines.append(f"evidence lost: {loss['tasks']} task(s): {loss['reason']} (first: {where}, "
                     f"the task at line {first['task_line']}{frame}): their stacks count as "
                     "unreliable")
    skipped = evidence.get("skipped_lines", 0)
    if skipped:
        lines.append(f"{skipped} line(s) of {path} read as nothing known (see --json "
                     "skipped_samples)")
    return lines


#: The model whose culprits ``--model all`` lists: the kernel's own.
_KERNEL_MODEL = "klp"


def _text_all(report: Report, w: _Writer, options: TextOptions,
              origin: PatchOrigin | None) -> None:
    results = report.results
    first = next(iter(results.values()))
    kernel = results.get(_KERNEL_MODEL, first)
    assumed = _header(w, report.description, origin,
                      f"patch: {patch_functions_text(first.patch)}", kernel)
    by_verdict: dict[str, list[str]] = {}
    for name, r in results.items():
        by_verdict.setdefault(verdict_text(r.converges), []).append(name)
    said = "; ".join(f"{v} under {', '.join(names)}" for v, names in by_verdict.items())
    if report.machine is not None and report.machine.refusals:
        codes = ", ".join(f"-{code}" for code, _ in report.machine.refusals)
        said = f"REFUSED ({codes}): the kernel would not start this transition; once it would: " \
            + said
    w.say(f"verdict: {said}", paint=_VERDICT_WORDS, glue=_VERDICT_WORDS)
    rows = []
    for name, r in results.items():
        s = r.summary()
        rows.append([name, str(s["switch"]), str(s["blocked"]), str(s["running"]),
                     str(s["unreliable"]), verdict_text(r.converges),
                     f"(LEAVE_{r.cell[0]} / SWITCH_{r.cell[1]}) {s['reason']}"])
    _table(w, ["model", "switch", "blocked", "running", "unreliable", "verdict", "why"], rows,
           paint=(5,))
    if kernel.blocking:
        w.say(f"culprits under {kernel.model} (the kernel's model; --model NAME for another's):")
        _culprits(kernel, w, options)
    _details(report, list(results.values()), w, assumed)


#: Functions the text lists without a patch (the JSON holds them all).
_FUNCTIONS = 40


#: Tasks the text lists without a patch (the JSON holds them all).
_INVENTORY = 60


def _inventory(tasks: list[dict[str, Any]], w: _Writer) -> None:
    """Every task read, empty and unreadable stacks included, with its status."""
    by_status = Counter(t["stack"] for t in tasks)
    lost = sum(1 for t in tasks if t["lost"])
    counts = ", ".join(f"{n} {status}" for status, n in by_status.most_common())
    w.say(f"tasks read: {len(tasks)} ({counts or 'none'}"
          f"{f'; {lost} lost evidence while read' if lost else ''})")
    rows = [[_id(t["tid"] if t["tid"] is not None else t["pid"]), t["comm"], t["state"] or "?",
             t["stack"], str(t["frames"]), ",".join(t["lost"]) or "-", t["innermost"] or "-"]
            for t in tasks[:_INVENTORY]]
    _table(w, ["tid", "comm", "st", "stack", "frames", "lost", "innermost"], rows)
    if len(tasks) > _INVENTORY:
        w.say(f"… {len(tasks) - _INVENTORY} more (see --json)")


def _id(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_text(report: Report, out: TextIO, options: TextOptions | None = None) -> None:
    """The report a person reads (see the module docstring)."""
    options = options or TextOptions()
    w = _Writer(out, _width(options.width, out), _use_color(options.color, out))
    if report.sleeping is not None:
        w.say(f"source: {report.description}")
        w.say("functions on sleeping stacks (a patch to one of these blocks that many tasks "
              "under klp until they leave it):")
        _table(w, ["tasks", "function"], [[str(n), f] for f, n in report.sleeping[:_FUNCTIONS]])
        if len(report.sleeping) > _FUNCTIONS:
            w.say(f"… {len(report.sleeping) - _FUNCTIONS} more (see --json)")
        _inventory(report.inventory or [], w)
        return
    origin = report.request.patch.origin if report.request.patch is not None else None
    machine = report.machine
    if machine is not None:
        for code, why in machine.refusals:  # a refusal is the answer: said first
            w.say(f"refused: -{code}: {why}", paint=("refused:",))
    if report.request.all_models:
        _text_all(report, w, options, origin)
        return
    refused = None
    if machine is not None and machine.refusals:
        refused = ", ".join(f"-{code}" for code, _ in machine.refusals)
    elif machine is not None and machine.unknowns:
        refused = "unknown"
    for result in report.results.values():
        _text_one(report, result, w, options, refused, origin)


def _machine_lines(machine: MachineView) -> list[str]:
    """The machine's livepatch state: what the kernel would refuse outright
    first (the report says those before anything else)."""
    lines = [f"refused: -{code}: {why}" for code, why in machine.refusals]
    state = machine.state
    if state.present:
        enabled = [p.name for p in state.enabled]
        busy = state.in_transition
        order = "" if state.order_known or len(enabled) < 2 else \
            " (order unknown: no stack_order in sysfs)"
        lines.append(f"livepatch: {len(state.patches)} patch(es) registered, enabled: "
                     f"{', '.join(enabled) or 'none'}{order}"
                     + (f"; {busy.name} in transition" if busy is not None else "")
                     + f" ({state.source})")
        lines.append(f"loaded patches checked against: {machine.loaded_from}")
    lines.extend(f"note: {n}" for n in machine.notes)
    lines.extend(f"unknown: {u}: verdict cannot be CONVERGES" for u in machine.unknowns)
    return lines


#: Tasks listed per group of the transition view.
_TRANSITION_EXAMPLES = 8


def _transition_lines(machine: MachineView, result: CheckResult) -> list[str]:
    """The checked patch's own transition, in progress: the kernel's
    ``patch_state`` per task beside lpc's verdict for those not yet switched."""
    assert machine.transition is not None
    head = (f"transition in progress: {machine.transition.name} "
            f"({'patching' if machine.target == 1 else 'unpatching'})")
    if machine.patch_states is None:
        return [head + ": no per-task patch_state read (lpc's verdicts above stand alone)"]
    switched = pending = 0
    groups: dict[tuple[str, str, str], list[str]] = {}
    for t in result.tasks:
        done = machine.kernel_switched(t.facts.tid)
        if done is None:
            continue
        if done:
            switched += 1
            continue
        pending += 1
        key = (t.outcome.verdict.value, t.outcome.outlook.value, t.outcome.reason)
        groups.setdefault(key, []).append(f"{_id(t.facts.tid)}:{t.facts.comm}")
    lines = [f"{head}: the kernel has switched {switched} task(s), {pending} not yet "
             f"(patch_state); lpc on those {pending}:"]
    for (verdict, outlook, reason), tasks in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(tasks[:_TRANSITION_EXAMPLES]) + \
            (", …" if len(tasks) > _TRANSITION_EXAMPLES else "")
        lines.append(f"  {len(tasks)} {verdict} ({outlook}): {reason} — {shown}")
    return lines


# ---- JSON ---------------------------------------------------------------------------------------


class TaskList:
    """Stands for a check's per-task list inside a document given to :func:`write_json`."""

    def __init__(self, tasks: TaskResults) -> None:
        self.tasks = tasks


#: Tasks rendered and written at a time: bounds the memory of a 400k-task document.
_TASKS_PER_WRITE = 1 << 15


def _holds_tasks(value: Any) -> bool:
    if isinstance(value, TaskList):
        return True
    if isinstance(value, dict):
        return any(_holds_tasks(v) for v in value.values())
    return False


def _write_value(value: Any, indent: str, out: TextIO) -> None:
    """``value`` as ``json.dumps(indent=2, sort_keys=True)`` would write it at
    this indent, with each :class:`TaskList` streamed in place. Only dicts on
    the way to a task list are walked here; everything else is the library
    encoder's, so no dump text can be mistaken for structure."""
    if isinstance(value, TaskList):
        _write_tasks(value.tasks, indent, out)
    elif isinstance(value, dict) and _holds_tasks(value):
        inner = indent + "  "
        out.write("{")
        for i, key in enumerate(sorted(value)):
            out.write(("," if i else "") + f"\n{inner}{json.dumps(str(key))}: ")
            _write_value(value[key], inner, out)
        out.write(f"\n{indent}}}" if value else "}")
    else:
        out.write(json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + indent))


def write_json(doc: dict[str, Any], out: TextIO) -> None:
    """``doc`` as indented JSON with sorted keys, each task list one compact
    object per line.

    Python's indenting JSON encoder is pure Python (half a minute for 400k
    tasks); its compact one is C. The document's frame goes through the
    first, each task through the second, a slice of tasks at a time, straight
    to ``out`` — so ``--model all`` never holds seven models' task lists.
    """
    _write_value(doc, "", out)
    out.write("\n")


def _write_tasks(tasks: TaskResults, indent: str, out: TextIO) -> None:
    if not len(tasks):
        out.write("[]")
        return
    out.write("[")
    separator = "\n"
    for lo in range(0, len(tasks), _TASKS_PER_WRITE):
        part = tasks.subset(range(lo, min(lo + _TASKS_PER_WRITE, len(tasks)))).as_json()
        for task in part:
            out.write(f"{separator}{indent}  {json.dumps(task, sort_keys=True)}")
            separator = ",\n"
    out.write(f"\n{indent}]")


def render_json(report: Report, out: TextIO) -> None:
    if report.sleeping is not None:
        d = report.dump
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "source": {"format": d.source_format, "path": d.path, "tasks": d.task_count,
                       "description": report.description},
            "sleeping_functions": [{"function": f, "tasks": n} for f, n in report.sleeping],
            "tasks": report.inventory or [],
        }
        json.dump(doc, out, indent=2, sort_keys=True)
        print(file=out)
        return
    first = next(iter(report.results.values()))
    machine = {} if report.machine is None else {"machine": report.machine.as_json()}
    origin = report.request.patch.origin if report.request.patch is not None else None
    extra = {"patch_module": origin.as_json()} if origin is not None else {}
    extra.update(machine)
    if report.request.all_models:
        models: dict[str, Any] = {}
        for name, r in report.results.items():
            models[name] = r.as_json(with_source=False, with_tasks=False)
            models[name]["tasks"] = TaskList(r.tasks)
        write_json({"schema_version": SCHEMA_VERSION, "source": dict(first.source),
                    "patch": first.patch.as_json(), "models": models, **extra}, out)
        return
    one = first.as_json(with_tasks=False)
    one["source"]["description"] = report.description
    one["tasks"] = TaskList(first.tasks)
    one.update(extra)
    write_json(one, out)


def render_jsonl(report: Report, out: TextIO, exit_model: str | None = None) -> None:
    """``--jsonl``: one compact JSON object per line (``lpc schema check-jsonl``):
    a header (what was checked, each model's configuration), one line per task
    and model (the models in the header's order, by name), and a summary last.
    Nothing is indented, no blank follows ``,`` or ``:``, and no line holds a
    list of tasks: a reader can stream it. ``exit_model``: the model whose
    verdict is the summary's ``converges`` (default: the one checked, or klp
    with ``--model all``)."""
    if not report.results:
        raise ValueError("render_jsonl needs a checked patch")
    first = next(iter(report.results.values()))
    if exit_model is None:
        exit_model = first.model if not report.request.all_models else "klp"
    header: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "header",
        "source": {**first.source, "description": report.description},
        "patch": first.patch.as_json(),
        "models": {name: {"cell": {"leave": r.cell[0], "switch": r.cell[1]},
                          "params": dict(r.params), "model_profile": dict(r.model_profile),
                          "warnings": list(r.warnings)}
                   for name, r in report.results.items()},
        "exit_model": exit_model,
    }
    origin = report.request.patch.origin if report.request.patch is not None else None
    if origin is not None:
        header["patch_module"] = origin.as_json()
    if report.machine is not None:
        header["machine"] = report.machine.as_json()
    out.write(_line(header) + "\n")
    for name in sorted(report.results):  # the header's order (its keys are sorted)
        r = report.results[name]
        for lo in range(0, len(r.tasks), _TASKS_PER_WRITE):
            part = r.tasks.subset(range(lo, min(lo + _TASKS_PER_WRITE, len(r.tasks))))
            lines = []
            for task in part.as_json():
                task["task_kind"] = task.pop("kind")
                task["kind"] = "task"
                task["model"] = name
                lines.append(_line(task))
            out.write("\n".join(lines) + "\n")
    summary = {"kind": "summary", "exit_model": exit_model,
               "converges": report.converges_under(exit_model),
               "models": {name: r.summary() for name, r in report.results.items()}}
    out.write(_line(summary) + "\n")


def _line(doc: dict[str, Any]) -> str:
    """One JSON line: sorted keys, no blanks (a blank after each ``,`` and ``:``
    of 3M task lines is 0.1 GB)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
