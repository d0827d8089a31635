"""Tests of lpc.symbols: golden facts from a real 6.18 kallsyms, brute-force
models on synthetic tables, bad input, the live machine and gcc-built ELF files.

tests/data/kallsyms-6.18.txt.gz is /work/shared/samples/procdump-6.18/kallsyms.txt
(the text symbols of a 6.18 VM, 122,059 lines) gzipped: 0.85 MB instead of
5.4 MB in the repository, for ~20 ms of decompression per test session.
tests/data/proc-stacks-6.18.txt is the /proc stacks recorded from the same
boot, so every size the kernel printed there must equal ours.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpc import IntervalTree
from lpc.errors import LpcError, SymbolError
from lpc.symbols import Symbol, Symbols, split_compiler_suffix

DATA = Path(__file__).parent / "data"
KALLSYMS_GZ = DATA / "kallsyms-6.18.txt.gz"
STACKS = DATA / "proc-stacks-6.18.txt"

# `name+0xoff/0xsize [module]`, the format of kernel/kallsyms.c __sprint_symbol().
FRAME = re.compile(
    r"(?P<sym>[^\s+\[\]]+?)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)"
    r"(?: \[(?P<mod>[^\]\s]+)(?: [0-9a-f]{40})?\])?"
)


@pytest.fixture(scope="module")
def kallsyms_text() -> bytes:
    return gzip.decompress(KALLSYMS_GZ.read_bytes())


@pytest.fixture(scope="module")
def real(kallsyms_text: bytes) -> Symbols:
    return Symbols.from_kallsyms(kallsyms_text)


# ---- golden facts from the real 6.18 table ----------------------------------------------------


def test_counts(real: Symbols) -> None:
    # 122,059 lines: 57,836 __pfx_ padding symbols and 29 section markers
    # (_stext, __sched_text_start, ...) are not functions.
    assert real.symbol_count == 122_059
    assert len(real) == 122_059 - 57_836 - 29 == 64_194
    assert real.malformed_lines == 0
    assert real.modules == ["__builtin__ftrace"]


def test_sizes_computed_by_hand(real: Symbols) -> None:
    # worker_thread ffffffff81381800, next: __pfx_try_to_grab_pending ffffffff81381b10.
    worker = real.lookup("worker_thread")
    assert (worker.address, worker.size, worker.sympos) == (0xFFFFFFFF81381800, 0x310, 0)
    # schedule ffffffff821f94a0, next: __pfx_io_schedule ffffffff821f9540.
    assert real.lookup("schedule").size == 0xA0
    # ldsem_down_write ffffffff82200d50 ends at the marker __sched_text_end ffffffff82200fb7.
    assert real.lookup("ldsem_down_write").size == 0x267
    # A compiler-split cold part (GCC .cold suffix, as kallsyms prints it): nmi_cpu_backtrace.cold+0x71/0xaa.
    cold = real.lookup("nmi_cpu_backtrace.cold")
    assert (cold.address, cold.size) == (0xFFFFFFFF81247208, 0xAA)
    assert cold.part_kind == "cold"


def test_duplicated_static_name(real: Symbols) -> None:
    # init_once exists 12 times in vmlinux (one per filesystem cache).
    with pytest.raises(SymbolError) as err:
        real.lookup("init_once")
    message = str(err.value)
    assert "ambiguous in vmlinux: 12 symbols" in message
    assert "init_once,1 " in message and "init_once,12 " in message
    third = real.lookup("init_once", sympos=3)
    assert (third.address, third.size, third.sympos, third.name_count) == (
        0xFFFFFFFF817F6B50,
        0x80,
        3,
        12,
    )
    every = real.lookup_all("init_once")
    assert [s.sympos for s in every] == list(range(1, 13))
    assert [s.address for s in every] == sorted(s.address for s in every)
    with pytest.raises(SymbolError, match="no sympos 13"):
        real.lookup("init_once", sympos=13)


def test_name_index_finds_every_row_of_every_name(real: Symbols, kallsyms_text: bytes) -> None:
    """The Rust name index against a brute-force walk of the 122k names."""
    lines = [line.split() for line in kallsyms_text.decode().splitlines() if not line.startswith("#")]
    by_name: dict[str, list[int]] = {}
    for row, fields in enumerate(lines):
        by_name.setdefault(fields[2], []).append(row)
    names = real._names
    assert len(names) == len(lines) == real.symbol_count
    for name, rows in by_name.items():
        assert names.rows(name) == rows, name
    assert all(names.name(r) == f[2] for r, f in enumerate(lines[:2000]))
    assert names.rows("no_such_function_anywhere") == [] and names.rows("") == []
    for row in (len(lines), -1):
        with pytest.raises(IndexError):
            names.name(row)


def test_hidden_text_ranges(real: Symbols) -> None:
    assert real.sched_text_range == (0xFFFFFFFF821F84A0, 0xFFFFFFFF82200FB7)
    assert real.lock_text_range == (0xFFFFFFFF82200FC0, 0xFFFFFFFF82202A08)
    schedule = real.lookup("schedule")
    lock = real.lookup("_raw_spin_lock_irqsave")
    worker = real.lookup("worker_thread")
    assert real.in_hidden_text(schedule.address)
    assert real.in_hidden_text(lock.address + 4)
    assert not real.in_hidden_text(worker.address)
    assert not real.in_hidden_text(0xFFFFFFFF82200FB7)  # __sched_text_end is exclusive
    mask = real.in_hidden_text(np.array([schedule.address, worker.address, lock.address], np.uint64))
    assert mask.tolist() == [True, False, True]


def test_padding_markers_and_modules(real: Symbols) -> None:
    with pytest.raises(SymbolError, match="not a function.*padding"):
        real.lookup("__pfx_schedule")
    with pytest.raises(SymbolError, match="not a function.*section marker"):
        real.lookup("_etext")
    with pytest.raises(SymbolError, match="no symbol 'no_such_function'"):
        real.lookup("no_such_function")
    with pytest.raises(SymbolError, match=r"not in vmlinux; it is in: __builtin__ftrace"):
        real.lookup("ftrace_trampoline")
    tramp = real.lookup("ftrace_trampoline", module="__builtin__ftrace")
    # The last (only) symbol of a pseudo-module: bounded by its page, flagged.
    assert (tramp.address, tramp.size, tramp.size_exact) == (0xFFFFFFFFC0203000, 0x1000, False)
    assert any("bounds" in w for w in real.warnings)
    with pytest.raises(SymbolError, match="no module 'ext4'"):
        real.lookup("ext4_sync_fs", module="ext4")
    # The address of __sched_text_start is __pfx_io_schedule_timeout's padding.
    ids, offsets = real.symbolize([0xFFFFFFFF821F84A0, 0xFFFFFFFF821F84B0])
    assert ids[0] == -1 and offsets[0] == -1
    assert real.name_of(int(ids[1])) == "io_schedule_timeout" and offsets[1] == 0


def test_compiler_parts(real: Symbols) -> None:
    assert Symbols.parent_of("nmi_cpu_backtrace.cold") == "nmi_cpu_backtrace"
    assert Symbols.parent_of("do_sigtimedwait.isra.0") == "do_sigtimedwait"
    assert Symbols.parent_of("worker_thread") is None
    assert [s.name for s in real.parts_of("nmi_cpu_backtrace")] == ["nmi_cpu_backtrace.cold"]
    parent = real.lookup("nmi_cpu_backtrace")
    cold = real.parts_of("nmi_cpu_backtrace")[0]
    # Not contiguous: the parent's range does not cover its cold part.
    assert cold.address not in parent
    # poll_schedule_timeout only exists as a clone on this kernel.
    clone = real.parts_of("poll_schedule_timeout")
    assert [(s.name, s.part_kind) for s in clone] == [
        ("poll_schedule_timeout.constprop.0", "constprop")
    ]
    # Every part's parent name, recomputed with a regex, agrees with the core.
    suffix = re.compile(r"^(.+?)((?:\.(?:cold|part|isra|constprop|llvm)(?:\.\d+)?)*)$")
    for sym in real:
        split = split_compiler_suffix(sym.name)
        if split is not None:
            assert suffix.match(sym.name) is not None
            assert sym.name.startswith(split[0] + ".")


def _frames(text: str) -> Iterator[tuple[str, int, int, str | None]]:
    for m in FRAME.finditer(text):
        yield m["sym"], int(m["off"], 16), int(m["size"], 16), m["mod"]


def test_every_printed_size_matches(real: Symbols) -> None:
    """The kernel printed these sizes from the same boot's kallsyms."""
    frames = set(_frames(STACKS.read_text()))
    assert len(frames) > 50
    for name, off, size, module in frames:
        address = real.resolve(name, off, size, module)
        assert address is not None, (name, off, size)
        same = [s for s in real.lookup_all(name) if s.module == module]
        if len(same) == 1:
            assert same[0].size == size, name
        # %pB looks return addresses up at address - 1.
        ids, offsets = real.symbolize([address], return_addresses=True)
        assert real.name_of(int(ids[0])) == name and offsets[0] == off


def test_resolve_rules(real: Symbols) -> None:
    third = real.lookup("init_once", sympos=3)
    # Only one init_once is 0x80 long: the size disambiguates.
    assert real.resolve("init_once", 0x12, 0x80) == third.address + 0x12
    # Seven are 0x10 long: ambiguous, so no answer.
    assert real.resolve("init_once", 0x4, 0x10) is None
    assert real.resolve("init_once", 0x4) is None
    assert real.resolve("worker_thread", 0x310, 0x310) == 0xFFFFFFFF81381800 + 0x310
    assert real.resolve("worker_thread", 0x311, 0x310) is None
    assert real.resolve("worker_thread", 0x10, 0x300) is None  # another build
    assert real.resolve("worker_thread", 0x10, module="ext4") is None
    assert real.resolve("no_such_function", 0) is None


def test_function_tree(real: Symbols) -> None:
    worker = real.lookup("worker_thread")
    cold = real.lookup("nmi_cpu_backtrace.cold")
    tree = real.function_tree([worker, cold.index])
    assert isinstance(tree, IntervalTree) and len(tree) == 2
    assert tree.find(worker.address + 0x98) == worker.index
    assert tree.find(cold.address + 0x71) == cold.index
    assert tree.find(worker.end) is None
    with pytest.raises(SymbolError, match="out of range"):
        real.function_tree([len(real)])


def test_did_you_mean_is_computed_once_per_table(kallsyms_text: bytes,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`lpc fleet` looks the same missing name up on every host of a release:
    difflib over the 64k names (~80 ms) must run once per table, not per miss."""
    import lpc.symbols

    table = Symbols.from_kallsyms(kallsyms_text, source=str(KALLSYMS_GZ))  # a fresh cache
    calls: list[str] = []
    candidates: list[object] = []
    real_close_names = lpc.symbols.close_names

    def counting(name: str, names: list[str], **kwargs: Any) -> list[str]:
        calls.append(name)
        candidates.append(names)
        return real_close_names(name, names, **kwargs)

    monkeypatch.setattr(lpc.symbols, "close_names", counting)
    messages = []
    for _ in range(3):
        with pytest.raises(SymbolError) as exc:
            table.lookup("do_waitt")
        messages.append(exc.value.message)
    assert calls == ["do_waitt"]
    assert messages[0] == messages[1] == messages[2]
    assert "did you mean do_wait or __do_wait or do_wait_intr?" in messages[0]
    # An answer handed out is a copy: changing it does not change the next one.
    near = table.close_names("do_waitt")
    near.clear()
    assert table.close_names("do_waitt") == ["do_wait", "__do_wait", "do_wait_intr"]
    # Another n is another question, asked of the same sorted name list.
    assert table.close_names("do_waitt", n=1) == ["do_wait"]
    assert calls == ["do_waitt", "do_waitt"]
    assert candidates[0] is candidates[1]


def test_columns_are_read_only(real: Symbols) -> None:
    with pytest.raises(ValueError):
        real.addresses[0] = 1
    assert real.addresses.dtype == np.uint64 and len(real.addresses) == len(real)
    assert real[-1] == real[len(real) - 1]
    with pytest.raises(IndexError):
        real[len(real)]


# ---- synthetic tables against a brute-force model ---------------------------------------------

NAMES = ["a", "b", "dup", "dup", "x", "x.cold", "y.isra.0", "z.constprop.0.cold"]
VMLINUX_BASE = 0xFFFFFFFF81000000
MODULE_BASE = 0xFFFFFFFFC0000000


@dataclass(frozen=True)
class Line:
    address: int
    type: str
    name: str
    module: str | None

    def text(self) -> str:
        tail = "" if self.module is None else f"\t[{self.module}]"
        return f"{self.address:016x} {self.type} {self.name}{tail}"


@st.composite
def symbol_line(draw: st.DrawFn, address: int, module: str | None) -> Line:
    role = draw(st.sampled_from(["text", "text", "text", "pad", "data"]))
    name = draw(st.sampled_from(NAMES))
    if role == "pad":
        return Line(address, draw(st.sampled_from("tT")), "__pfx_" + name, module)
    if role == "data":
        return Line(address, draw(st.sampled_from("dDbr")), name, module)
    return Line(address, draw(st.sampled_from("tTwW")), name, module)


@st.composite
def synthetic(draw: st.DrawFn) -> list[Line]:
    """vmlinux sorted (aliases allowed), then modules in shuffled order."""
    lines: list[Line] = []
    if draw(st.booleans()):
        lines.append(Line(0, "D", "__per_cpu_start", None))
    offsets = sorted(draw(st.lists(st.integers(0, 0x300), min_size=1, max_size=30)))
    lines += [draw(symbol_line(VMLINUX_BASE + 16 * o, None)) for o in offsets]
    for k in range(draw(st.integers(0, 3))):
        base = MODULE_BASE + k * 0x10000 + draw(st.integers(0, 0x800)) * 8
        mod_offsets = draw(st.lists(st.integers(0, 0x400), min_size=1, max_size=12))
        mod_lines = [draw(symbol_line(base + 8 * o, f"m{k}")) for o in mod_offsets]
        lines += draw(st.permutations(mod_lines))
    return lines


@dataclass
class Model:
    size: list[int]
    exact: list[bool]
    functions: list[int]  # rows
    primary: set[int]  # rows
    sympos: list[int]  # klp style: 0 when unique
    count: list[int]


def is_function(line: Line) -> bool:
    return (
        line.address != 0
        and line.type in "tTwW"
        and not line.name.startswith(("__pfx_", "__cfi_"))
        and line.name not in ("_stext", "_etext")
    )


def model(lines: list[Line]) -> Model:
    """The kernel's rules, spelled out one symbol at a time."""
    n = len(lines)
    sizing = [i for i in range(n) if lines[i].address != 0]
    every_address = sorted({lines[i].address for i in sizing})
    size, exact = [0] * n, [False] * n
    for i in sizing:
        here = lines[i]
        above = [lines[j] for j in sizing if lines[j].module == here.module and lines[j].address > here.address]
        bound = None
        if above:
            nxt = min(x.address for x in above)
            next_is_text = any(x.type in "tTwW" for x in above if x.address == nxt)
            if here.module is None or next_is_text:
                size[i], exact[i] = nxt - here.address, True
                continue
            bound = nxt
        page_end = (here.address | 0xFFF) + 1
        anywhere = [a for a in every_address if a > here.address]
        end = min([page_end] + anywhere[:1] + ([bound] if bound is not None else []))
        size[i] = end - here.address
    functions = [i for i in range(n) if is_function(lines[i])]
    primary: set[int] = set()
    seen: set[tuple[str | None, int]] = set()
    for i in functions:
        key = (lines[i].module, lines[i].address)
        if key not in seen:
            seen.add(key)
            primary.add(i)
    sympos, count = [0] * n, [0] * n
    for i in range(n):
        same = [j for j in range(n) if (lines[j].module, lines[j].name) == (lines[i].module, lines[i].name)]
        count[i] = len(same)
        sympos[i] = same.index(i) + 1 if len(same) > 1 else 0
    return Model(size, exact, functions, primary, sympos, count)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=synthetic(), probes=st.lists(st.integers(0, 0x4000), max_size=40))
def test_synthetic_tables_match_the_model(lines: list[Line], probes: list[int]) -> None:
    if not any(is_function(x) for x in lines):
        with pytest.raises(SymbolError):
            Symbols.from_kallsyms("\n".join(x.text() for x in lines) + "\n")
        return
    table = Symbols.from_kallsyms("\n".join(x.text() for x in lines) + "\n")
    want = model(lines)
    assert len(table) == len(want.functions)
    for f, row in enumerate(want.functions):
        sym = table[f]
        line = lines[row]
        assert (sym.name, sym.module, sym.address, sym.type) == (line.name, line.module, line.address, line.type)
        assert (sym.size, sym.size_exact) == (want.size[row], want.exact[row]), line
        assert (sym.sympos, sym.name_count) == (want.sympos[row], want.count[row]), line

    # symbolize: the primary function whose range holds the address.
    candidates = sorted({x.address for x in lines if x.address})
    queries = [a + d for a in candidates for d in (-1, 0, 1, 7)] + [VMLINUX_BASE + 4 * p for p in probes]
    queries = [q for q in queries if q >= 0]
    ids, offsets = table.symbolize(np.array(queries, dtype=np.uint64))
    for q, got, off in zip(queries, ids.tolist(), offsets.tolist(), strict=True):
        holders = [
            f
            for f, row in enumerate(want.functions)
            if row in want.primary and lines[row].address <= q < lines[row].address + want.size[row]
        ]
        assert len(holders) <= 1
        expected = holders[0] if holders else -1
        assert got == expected, hex(q)
        assert off == (q - lines[want.functions[got]].address if got >= 0 else -1)

    # resolve: the unique same-named function of the object with that size.
    for f, row in enumerate(want.functions):
        line, size = lines[row], want.size[row]
        same = [
            g
            for g, r in enumerate(want.functions)
            if (lines[r].name, lines[r].module) == (line.name, line.module)
            and (want.size[r] == size or not want.exact[r])
        ]
        expected_address = line.address + size // 2 if same == [f] else None
        assert table.resolve(line.name, size // 2, size, line.module) == expected_address

    # lookup: unique names resolve, duplicates need sympos.
    for f, row in enumerate(want.functions):
        line = lines[row]
        if want.count[row] == 1:
            assert table.lookup(line.name, line.module).index == f
        else:
            with pytest.raises(SymbolError, match="ambiguous"):
                table.lookup(line.name, line.module)
            assert table.lookup(line.name, line.module, want.sympos[row]).index == f

    # function_tree over every other function: the tree answers like brute force.
    chosen = [f for f in range(len(table)) if f % 2 == 0]
    tree = table.function_tree(chosen)
    for q in queries:
        holders = [f for f in chosen if table[f].address <= q < table[f].end]
        hit = tree.find(q)
        assert (hit in holders) if holders else hit is None


# ---- bad input -------------------------------------------------------------------------------


def test_garbage_lines_are_counted() -> None:
    text = (
        "# recorded on vm\n"
        "ffffffff81000000 T good_one\n"
        "this is not a symbol\n"
        "ffffffff81000040 T good_two\n"
        "ffffffff8100004g T bad_hex\n"
        "ffffffff81000080 t tail\t[mod] junk\n"
    )
    table = Symbols.from_kallsyms(text)
    assert [s.name for s in table] == ["good_one", "good_two"]
    assert table.comment_lines == 1
    assert table.malformed_lines == 3
    assert [line for line, _ in table.malformed_samples] == [3, 5, 6]
    assert "this is not a symbol" in table.malformed_samples[0][1]
    assert any("3 malformed line(s)" in w and "line 3" in w for w in table.warnings)


def test_all_zero_addresses_are_refused(tmp_path: Path, kallsyms_text: bytes) -> None:
    hidden = re.sub(rb"^[0-9a-f]{16}", b"0" * 16, kallsyms_text[:20000], flags=re.M)
    path = tmp_path / "kallsyms"
    path.write_bytes(hidden)
    with pytest.raises(SymbolError, match="kptr_restrict") as err:
        Symbols.from_kallsyms(path)
    assert err.value.path == str(path)
    assert str(err.value).startswith(f"{path}: ")
    assert isinstance(err.value, LpcError) and isinstance(err.value, LookupError)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "kallsyms"
    with pytest.raises(SymbolError, match="cannot read symbols") as err:
        Symbols.from_kallsyms(missing)
    assert err.value.path == str(missing) and str(missing) in str(err.value)
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(SymbolError, match="no symbols") as err:
        Symbols.from_kallsyms(empty)
    assert err.value.path == str(empty)
    garbage = tmp_path / "garbage"
    garbage.write_text("\n\nnot kallsyms at all\nnor this\n")
    with pytest.raises(SymbolError, match="no symbol line parsed") as err:
        Symbols.from_kallsyms(garbage)
    assert (err.value.path, err.value.line) == (str(garbage), 3)
    assert str(err.value).startswith(f"{garbage}:3: ")


def test_system_map() -> None:
    text = (
        "0000000000000000 D __per_cpu_start\n"
        "0000000000001000 A some_absolute\n"
        "ffffffff81000000 T _stext\n"
        "ffffffff81000000 T first\n"
        "ffffffff81000010 A absolute_inside_text\n"
        "ffffffff81000040 t second\n"
        "ffffffff81000060 T _etext\n"
        "ffffffff82000000 D some_data\n"
        "ffffffff81000070 t in_module\t[m]\n"
    )
    table = Symbols.from_system_map(text)
    # Absolute symbols are not in kallsyms: they end no function.
    assert [(s.name, s.size) for s in table] == [("first", 0x40), ("second", 0x20)]
    assert table.malformed_lines == 1  # System.map has no module column


def test_symbolize_input_rules(real: Symbols) -> None:
    worker = real.lookup("worker_thread")
    # A list mixing kernel addresses and small ints must not go through float64.
    ids, offsets = real.symbolize([worker.address + 0x98, 5])
    assert ids.tolist() == [worker.index, -1] and offsets.tolist() == [0x98, -1]
    with pytest.raises(TypeError):
        real.symbolize(np.array([1.5]))
    with pytest.raises(ValueError):
        real.symbolize([-1])
    with pytest.raises(TypeError):
        real.symbolize(["ffff"])


# ---- this machine ----------------------------------------------------------------------------


def _live_stacks() -> Iterator[str]:
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*/stack"):
        try:
            yield task.read_text()
        except OSError:
            continue  # gone, or not ours to read


@pytest.mark.live
def test_live_kallsyms_matches_live_stacks() -> None:
    if os.geteuid() != 0:
        with pytest.raises(SymbolError, match="address 0"):
            Symbols.live()
        return
    table = Symbols.live()
    assert table.source == "/proc/kallsyms"
    assert table.malformed_lines == 0
    assert len(table) > 1000
    assert table.sched_text_range is not None
    checked = 0
    for text in _live_stacks():
        for name, off, size, module in _frames(text):
            assert table.resolve(name, off, size, module) is not None, (name, off, size, module)
            same = [s for s in table.lookup_all(name) if s.module == module]
            if len(same) == 1 and same[0].size_exact:
                assert same[0].size == size, name
            checked += 1
    assert checked > 0, "no readable /proc/*/task/*/stack"


# ---- ELF files built by gcc ------------------------------------------------------------------

C_A = "static int __attribute__((noinline, noclone)) helper(int x) { return x * 3 + 1; }\n" \
    "int entry_a(int x) { return helper(x) + 2; }\n"
C_B = "static int __attribute__((noinline, noclone)) helper(int x) { return (x ^ 0x55) * 5; }\n" \
    "int entry_b(int x) { return helper(x) * 7; }\n"
C_MAIN = """
#include <stdio.h>
#include <stdlib.h>
extern int entry_a(int), entry_b(int);
__attribute__((cold, noinline)) void report(const char *what, int x) { fprintf(stderr, "%s %d", what, x); }
__attribute__((noinline, noclone)) int splitter(int x) {
    int acc = 0;
    for (int i = 0; i < x; i++) {
        if (__builtin_expect(i == 12345, 0)) { report("unlikely", i); report("again", i * 3); abort(); }
        acc += i * x;
    }
    return acc;
}
int main(int argc, char **argv) { (void)argv; return entry_a(argc) + entry_b(argc) + splitter(argc); }
"""


def _nm_sizes(path: Path) -> list[tuple[int, int, str]]:
    """``(address, st_size, name)`` of sized text symbols, as binutils sees them."""
    out = subprocess.run(
        ["nm", "-S", "--defined-only", str(path)], check=True, capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            rows.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return rows


@pytest.fixture(scope="module")
def c_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        pytest.skip("gcc and nm are needed to build the ELF test files")
    d = tmp_path_factory.mktemp("elf")
    (d / "a.c").write_text(C_A)
    (d / "b.c").write_text(C_B)
    (d / "main.c").write_text(C_MAIN)
    return d


def test_elf_executable_sizes_are_st_size(c_sources: Path) -> None:
    prog = c_sources / "prog"
    subprocess.run(
        ["gcc", "-O2", "-o", str(prog), "a.c", "b.c", "main.c"], cwd=c_sources, check=True
    )
    table = Symbols.from_elf(prog)
    assert table.source == str(prog)
    nm = _nm_sizes(prog)
    assert len(nm) >= 6
    for address, size, name in nm:
        matches = [s for s in table.lookup_all(name) if s.address == address]
        assert len(matches) == 1, name
        assert (matches[0].size, matches[0].size_exact) == (size, True), name
    helpers = table.lookup_all("helper")
    assert [h.sympos for h in helpers] == [1, 2]
    assert helpers[0].address < helpers[1].address
    with pytest.raises(SymbolError, match="ambiguous"):
        table.lookup("helper")
    if not any(name == "splitter.cold" for _, _, name in nm):
        pytest.skip("this gcc did not split splitter.cold out")
    assert [p.name for p in table.parts_of("splitter")] == ["splitter.cold"]
    cold = table.lookup("splitter.cold")
    ids, _ = table.symbolize([cold.address + 1])
    assert int(ids[0]) == cold.index


def test_elf_relocatable_sections_do_not_overlap(c_sources: Path) -> None:
    obj = c_sources / "a.o"
    subprocess.run(
        ["gcc", "-O2", "-ffunction-sections", "-c", "a.c", "-o", str(obj)],
        cwd=c_sources,
        check=True,
    )
    # With one section per function every st_value is 0: the sections must be
    # laid out apart, each function keeping its st_size.
    table = Symbols.from_elf(obj, module="mod_a")
    nm = {name: size for _, size, name in _nm_sizes(obj)}
    helper = table.lookup("helper", module="mod_a")
    entry = table.lookup("entry_a", module="mod_a")
    assert (helper.size, entry.size) == (nm["helper"], nm["entry_a"])
    assert helper.end <= entry.address or entry.end <= helper.address
    placed = Symbols.from_elf(
        obj, module="mod_a", section_addresses={".text.helper": 0xFFFFFFFFC0001000}
    )
    assert placed.lookup("helper", module="mod_a").address == 0xFFFFFFFFC0001000


def test_elf_errors(tmp_path: Path) -> None:
    not_elf = tmp_path / "x.o"
    not_elf.write_text("hello")
    with pytest.raises(SymbolError, match="not an ELF file, or a damaged one") as err:
        Symbols.from_elf(not_elf)
    assert err.value.path == str(not_elf)
    with pytest.raises(SymbolError, match="cannot read ELF symbols"):
        Symbols.from_elf(tmp_path / "missing.ko")


def test_symbol_str() -> None:
    sym = Symbol(3, "init_once", None, 0x10, 0x20, 2, 3, "t", True, 7)
    assert str(sym) == "init_once,2 @ 0x10/0x20"
    assert sym.object_name == "vmlinux" and sym.end == 0x30 and 0x2F in sym and 0x30 not in sym


def test_gzipped_kallsyms_is_read_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kallsyms.gz`` (fleet --symbols-dir): the same table as the plain
    file; a cut, a non-gzip or an endlessly inflating file is a SymbolError
    naming it, never a table nor an unbounded read."""
    text = gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes())
    packed = tmp_path / "kallsyms.gz"
    packed.write_bytes(gzip.compress(text))
    table = Symbols.from_kallsyms_gz(packed)
    plain = Symbols.from_kallsyms(text)
    assert table.source == str(packed) and len(table) == len(plain)
    assert table.lookup("do_wait").address == plain.lookup("do_wait").address
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed.read_bytes()[:4096])
    with pytest.raises(SymbolError, match=r"cut\.gz: not a readable gzip file \(cut short\)"):
        Symbols.from_kallsyms_gz(cut)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(SymbolError, match=r"junk\.gz: not a readable gzip file"):
        Symbols.from_kallsyms_gz(junk)
    monkeypatch.setattr("lpc.symbols._SYMBOLS_LIMIT", 1 << 20)
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (4 << 20)))
    with pytest.raises(SymbolError, match=r"bomb\.gz: inflates to more than 1 MiB"):
        Symbols.from_kallsyms_gz(bomb)
