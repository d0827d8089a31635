"""Damaged dumps never look cleaner than they are (issue 10's property).

Every real sample is damaged at a random point — cut in the middle of a line,
cut at a line end, a byte flipped, a line dropped, a task header cut short —
and judged again with a patch of functions from its own stacks.

The rule (docs/testing.md, "Damage"): a task the damage touched is never
judged ``switch`` and a damaged dump never ``converges: true``, unless the
damage left text that is itself a well-formed dump of the format, which no
reader of the text can tell from a real one. Those cases are exactly:

* a frame read as another frame: one frame of the stack changed into another
  well-formed frame (a byte flipped inside a name, ``? `` into two blanks);
* a frame line dropped whole: the stack is one frame shorter;
* a stack cut at a line end in a format without a closing marker (the file
  ends as the format may end): the stack is a prefix of the real one, and the
  tasks after the cut are gone;
* a header damaged or dropped so that it no longer reads as a header in a
  format with nothing else to mark one (<= 5.8 column headers, snapshot
  blocks): its frames join the task before it;
* a header read as another header (a state letter flipped into another one);
* a section marker line dropped whole (``<TASK>``, crash's ``--- <NMI
  exception stack> ---``, bpftrace's ``@[``): the stack then reads as one
  printed without that section (a bpftrace key's frames as a printed stack);
* an excerpt marker someone typed into a paste (``...``, ``[...]``) damaged
  into other text: what it said (frames were left out) goes with it, as it
  is no part of any tool's format;
* a hung-task report (``INFO: task C:P blocked for more than N seconds``)
  dropped or damaged so that it no longer reads as one: the task then reads as
  one the detector did not report, whose D sleep may still end;
* a kernel before 4.12: livepatch had no per-task consistency model, every
  task switches at once whatever the dump shows (the model does not rest on
  evidence there);
* ``perf script`` keeps one sample per thread, its latest: when the damage
  cuts that sample away or leaves its header unreadable, an earlier sample of
  the same thread, itself a well-formed sample (whole, or cut at a line end),
  stands for the thread — a recording that ended earlier reads the same.

Everything else — a line cut in the middle, a byte that leaves a frame or a
header unreadable, a missing ``</TASK>``, a header cut short where headers are
recognisable — must show in the verdict: the task ``unreliable``, the dump not
converging. The test checks each damaged task judged ``switch`` against its
origin in the undamaged dump and names the case that explains it; a switch no
case explains fails.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpc.check import check, dump_kernel
from lpc.dump import Dump, FrameContext, parse_dump
from lpc.errors import LpcError
from lpc.models import CONVERGING, Verdict, get_model

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(p.name for p in DATA.glob("*.txt")) + ["procdump-6.18/stacks.txt"]
#: Models whose judgement reads the stack: the kernel's, and the mail's.
MODELS = ("klp", "josh")
#: Lines that only mark where a stack or a section of it starts: ``<TASK>``,
#: ``</NMI>``… behind any log prefixes (``[  1.2][ C0]``), crash's
#: ``--- <NMI exception stack> ---``, a bpftrace map key's ``@name[``.
SECTION_MARKER = re.compile(rb"^\s*(\[[^\]]*\]\s*)*</?[A-Z#_0-9]+>\s*$|^\s*--- <.*> ---\s*$"
                            rb"|^@\w*\[")
#: Excerpt markers people type into pastes (toolscan.rs is_elision reads them).
ELISIONS = (b"...", b"[...]", "\u2026".encode())


@cache
def original(name: str) -> tuple[bytes, Dump]:
    data = (DATA / name).read_bytes()
    return data, parse_dump(data)


def patchable(dump: Dump) -> list[str]:
    """Patch specs for the functions on the dump's reliable frames."""
    specs = set()
    for task in dump.tasks:
        for f in task.frames:
            kernel = f.context is not FrameContext.USER and not (f.module or "").startswith("/")
            if kernel and f.function and f.reliable and not f.function.startswith("0x"):
                specs.add(f"{f.module}:{f.function}" if f.module else f.function)
    return sorted(specs)


@dataclass(frozen=True)
class Damage:
    kind: str
    #: 0-based index of the line damaged (cut, dropped, flipped in).
    line: int
    text: bytes
    #: The flipped byte's offset, for flips.
    offset: int = -1
    #: The line dropped, for dropped lines.
    dropped: bytes = b""
    #: The original line the damage touched.
    touched: bytes = b""


@st.composite
def damaged(draw: st.DrawFn, name: str) -> Damage:
    data, dump = original(name)
    lines = data.splitlines(keepends=True)
    kind = draw(st.sampled_from(["cut_mid_line", "cut_at_line_end", "flip", "drop_line",
                                 "cut_header"]))
    if kind == "cut_header":
        headers = sorted({int(n) - 1 for n in dump.task_lines.tolist()
                          if 0 < n <= len(lines) and len(lines[int(n) - 1].rstrip()) > 2})
        if not headers:
            kind = "cut_mid_line"
        else:
            i = draw(st.sampled_from(headers))
            body = lines[i].rstrip(b"\r\n")
            k = draw(st.integers(1, len(body) - 1))
            return Damage(kind, i, b"".join(lines[:i]) + body[:k] + b"\n" + b"".join(lines[i + 1:]))
    if kind == "cut_mid_line":
        candidates = [i for i, ln in enumerate(lines) if len(ln.rstrip(b"\r\n")) > 1]
        i = draw(st.sampled_from(candidates))
        k = draw(st.integers(1, len(lines[i].rstrip(b"\r\n")) - 1))
        return Damage(kind, i, b"".join(lines[:i]) + lines[i][:k])
    if kind == "cut_at_line_end":
        i = draw(st.integers(0, len(lines) - 1))
        return Damage(kind, i, b"".join(lines[: i + 1]))
    if kind == "drop_line":
        i = draw(st.integers(0, len(lines) - 1))
        return Damage(kind, i, b"".join(lines[:i] + lines[i + 1:]), dropped=lines[i],
                      touched=lines[i])
    # A flip keeps line ends where they are (merging or splitting lines is a
    # dropped or an added line, covered above).
    offset = draw(st.integers(0, len(data) - 1).filter(lambda o: data[o] not in b"\r\n"))
    new = data[offset] ^ draw(st.integers(1, 255))
    if new in b"\r\n":
        new ^= 0x40
    flipped = data[:offset] + bytes([new]) + data[offset + 1:]
    line = data.count(b"\n", 0, offset)
    return Damage("flip", line, flipped, offset, touched=lines[line])


def frames(dump: Dump, t: int) -> list[tuple[str | None, bool]]:
    lo, hi = int(dump.frame_offsets[t]), int(dump.frame_offsets[t + 1])
    return [(f.function, f.reliable) for f in (dump.frame(i) for i in range(lo, hi))]


def origin(dump: Dump, line: int) -> int | None:
    """The original task whose lines hold 1-based ``line`` (None: before any)."""
    starts = dump.task_lines.tolist()
    found = None
    for t, start in enumerate(starts):
        if start <= line:
            found = t
    return found


def undamaged_line(damage: Damage, line: int) -> int:
    """The 1-based line of the original that damaged line ``line`` was."""
    if damage.kind == "drop_line" and line > damage.line:
        return line + 1
    return line


def explain(damage: Damage, before: list[tuple[str | None, bool]],
            after: list[tuple[str | None, bool]], header_line: int,
            joined: bool, next_header: int) -> str | None:
    """The case of the module docstring that explains an outcome better than
    the origin's, or None. ``joined``: the task's frames come after another
    task's header (its own was lost); ``next_header``, the line of the next
    task's header in the undamaged dump (0: none)."""
    header_damaged = damage.kind in ("drop_line", "flip", "cut_header")
    if joined and header_damaged and damage.line == header_line - 1:
        return "a header that no longer reads as one"
    if header_damaged and damage.line + 1 == next_header and after[: len(before)] == before \
            and len(after) > len(before):
        return "a header that no longer reads as one (the next task's frames joined this one)"
    if len(after) == len(before) and sum(a != b for a, b in zip(after, before)) == 1:
        return "a frame read as another frame"
    if len(after) == len(before) - 1 and any(after == before[:i] + before[i + 1:]
                                             for i in range(len(before))):
        return "a frame line dropped whole"
    if damage.kind == "cut_at_line_end" and before[: len(after)] == after:
        return "a stack cut at a line end"
    if after == before and damage.kind == "flip" and damage.line == header_line - 1:
        return "a header read as another header"
    if damage.kind == "drop_line" and SECTION_MARKER.match(damage.dropped):
        return "a section marker line dropped whole"
    if damage.kind in ("flip", "drop_line", "cut_header") and damage.touched.strip() in ELISIONS:
        return "an excerpt marker damaged"
    if damage.kind in ("flip", "drop_line", "cut_header") and b"INFO: task " in damage.touched:
        return "a hung-task report that no longer reads as one"
    return None


def earlier_sample(text: bytes, dump: Dump, hurt: Dump, t: int, damage: Damage) -> str | None:
    """The ``perf script`` case of the module docstring: damaged task ``t`` is
    an earlier sample of a thread of the original whose kept (latest) sample
    the damage cut away or left without a readable header, and its frames are
    that earlier sample's (a prefix of them for a cut at a line end)."""
    if dump.source_format != "perf_script":
        return None
    tid, cpu = int(hurt.tids[t]), int(hurt.cpus[t])
    kept = [o for o in range(dump.task_count)
            if int(dump.tids[o]) == tid and (tid != 0 or int(dump.cpus[o]) == cpu)]
    if len(kept) != 1:
        return None
    kept_at = int(dump.task_lines[kept[0]]) - 1  # 0-based
    cut = damage.kind in ("cut_at_line_end", "cut_mid_line") and damage.line <= kept_at + 1
    header = damage.kind in ("flip", "drop_line", "cut_header") and damage.line == kept_at
    if not (cut or header):
        return None
    start = undamaged_line(damage, int(hurt.task_lines[t])) - 1
    if start >= kept_at:
        return None
    lines = text.splitlines(keepends=True)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    alone = parse_dump(b"".join(lines[start:end + 1]))
    if alone.task_count != 1 or int(alone.tids[0]) != tid:
        return None
    whole, now = frames(alone, 0), frames(hurt, t)
    if now == whole or (damage.kind == "cut_at_line_end" and whole[: len(now)] == now):
        return "an earlier sample of the thread stands for it"
    return None


Outcomes = tuple[list[tuple[Verdict, bool]], bool | None]


def outcomes(dump: Dump, patch: str, model: str) -> Outcomes | None:
    """Each task's verdict and whether its outlook converges, and the
    transition's answer; None when lpc refuses the dump (never clean)."""
    try:
        result = check(dump, patch, model)
    except LpcError:
        return None
    tasks = [(r.outcome.verdict, r.outcome.outlook in CONVERGING) for r in result.tasks]
    return tasks, result.transition.converges


def better(now: tuple[Verdict, bool], then: tuple[Verdict, bool]) -> bool:
    """Whether a task's outcome is more optimistic than its origin's."""
    return (now[0] is Verdict.SWITCH and then[0] is not Verdict.SWITCH) or (now[1] and not then[1])


@pytest.mark.parametrize("name", SAMPLES)
@settings(max_examples=int(os.environ.get("LPC_DAMAGE_EXAMPLES", "40")),
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damage_never_looks_clean(name: str, data: st.DataObject) -> None:
    text, dump = original(name)
    specs = patchable(dump)
    if not specs:
        pytest.skip("no named reliable frame to patch")
    damage = data.draw(damaged(name), label="damage")
    patch = ",".join(data.draw(st.lists(st.sampled_from(specs), min_size=1, max_size=3,
                                        unique=True), label="patch"))
    try:
        hurt = parse_dump(damage.text)
    except LpcError:
        return  # refused: never clean
    for model in MODELS:
        before = outcomes(dump, patch, model)
        after = outcomes(hurt, patch, model)
        assert before is not None, "the undamaged sample is judged"
        if after is None:
            continue
        (tasks0, converges0), (tasks1, converges1) = before, after
        explained = []
        for t, now in enumerate(tasks1):
            # Where the task's text starts: its first frame (a header may be
            # rebuilt from an earlier line, e.g. a hung-task INFO line).
            lo, hi = int(hurt.frame_offsets[t]), int(hurt.frame_offsets[t + 1])
            first = int(hurt.frame_lines[lo]) if hi > lo else int(hurt.task_lines[t])
            o = origin(dump, undamaged_line(damage, first))
            by_header = origin(dump, undamaged_line(damage, int(hurt.task_lines[t])))
            sample_case = earlier_sample(text, dump, hurt, t, damage)
            if sample_case is not None:
                explained.append(sample_case)
                continue
            if o is None:
                assert now[0] is not Verdict.SWITCH and not now[1], \
                    (model, damage.kind, "a clean task from nowhere", t)
                continue
            if not better(now, tasks0[o]):
                continue
            case = explain(damage, frames(dump, o), frames(hurt, t), int(dump.task_lines[o]),
                           joined=by_header != o,
                           next_header=int(dump.task_lines[o + 1]) if o + 1 < dump.task_count else 0)
            assert case is not None, (model, damage.kind, damage.line, t, tasks0[o], now,
                                      frames(dump, o), frames(hurt, t), hurt.task(t))
            explained.append(case)
        if converges1 is True and converges0 is not True:
            assert damage.kind != "cut_mid_line", (model, damage.line)
            # Tasks gone whole: at a line end after a complete stack, or a
            # dropped header whose frames joined a neighbour.
            gone = hurt.task_count < dump.task_count
            assert explained or gone, (model, damage.kind, damage.line, tasks0, tasks1)


def test_a_cut_in_the_middle_of_a_line_is_never_clean() -> None:
    """The strict half of the rule, on every sample and every line: a dump cut
    inside a line never converges, whatever the patch."""
    for name in SAMPLES:
        text, dump = original(name)
        lines = text.splitlines(keepends=True)
        for i in range(0, len(lines), max(1, len(lines) // 25)):
            if len(lines[i].rstrip(b"\r\n")) < 2:
                continue
            cut = b"".join(lines[:i]) + lines[i][:1]
            try:
                hurt = parse_dump(cut)
            except LpcError:
                continue
            assert hurt.input_cut, (name, i)
            for model in MODELS:
                if not get_model(model, dump_kernel(hurt)).rests_on_evidence:
                    continue  # before 4.12: every task switches at once, read or not
                after = outcomes(hurt, "schedule", model)
                assert after is None or after[1] is not True, (name, i, model)
