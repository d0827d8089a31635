"""``lpc.IntervalTree`` on real kernel text: /proc/kallsyms of a 6.18 x86_64 VM.

The file (tests/data/kallsyms-6.18.txt.gz, captured with the stack dump in
tests/data/proc-stacks-6.18.txt) is read here by a small reader written for
the test, so the tree is checked against numbers derived independently of
lpc's own symbol code:

* function ranges follow the kernel's own size rule (kernel/kallsyms.c,
  ``kallsyms_lookup_size_offset``): a symbol ends at the next kallsyms symbol
  with a higher address, so the ``/0x<size>`` printed in every stack trace is
  ``next address - address``;
* ``__pfx_*`` symbols are the 16-byte padding CONFIG_FUNCTION_PADDING puts
  before a function: not functions, but they end the function before them;
* ``_etext``, ``__entry_text_end`` and the like are section markers followed by
  a large hole; a "function" over 64 KiB is such a hole and is dropped.
"""

from __future__ import annotations

import gzip

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lpc
import numpy as np
import numpy.typing as npt
import pytest

TEXT_TYPES = frozenset("tTwW")
PADDING_PREFIX = "__pfx_"
MAX_FUNCTION_SIZE = 64 * 1024
SAMPLED_ADDRESSES = 100_000


@dataclass(frozen=True)
class Symbol:
    address: int
    kind: str
    name: str
    module: str | None


@dataclass(frozen=True)
class Function:
    name: str
    start: int
    end: int
    module: str | None


def read_kallsyms(path: Path) -> list[Symbol]:
    """``address type name [module]`` lines; blank and ``#`` lines skipped."""
    symbols = []
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        module = fields[3].strip("[]") if len(fields) > 3 else None
        symbols.append(Symbol(int(fields[0], 16), fields[1], fields[2], module))
    return symbols


def function_ranges(symbols: Iterable[Symbol]) -> list[Function]:
    """Text symbols as ``[address, next higher text address)`` within their object."""
    by_object: dict[str | None, list[Symbol]] = defaultdict(list)
    for sym in symbols:
        if sym.kind in TEXT_TYPES:
            by_object[sym.module].append(sym)
    functions = []
    for module, syms in by_object.items():
        addresses = sorted({s.address for s in syms})
        next_address = dict(zip(addresses, addresses[1:], strict=False))
        for sym in syms:
            end = next_address.get(sym.address)
            if sym.name.startswith(PADDING_PREFIX) or end is None:
                continue  # padding, or the last symbol of its object: no known end
            if end - sym.address > MAX_FUNCTION_SIZE:
                continue  # a section marker followed by a hole
            functions.append(Function(sym.name, sym.address, end, module))
    return functions


@dataclass(frozen=True)
class Frame:
    name: str
    offset: int
    size: int


FRAME = re.compile(
    r"^\[<[0-9a-f]+>\] (?P<name>[^\s+]+)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)$"
)


def read_stacks(path: Path) -> list[list[Frame]]:
    """The procdump stacks file: a ``# pid=...`` header, then one frame a line."""
    stacks: list[list[Frame]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# pid="):
            stacks.append([])
        elif m := FRAME.match(line):
            stacks[-1].append(Frame(m["name"], int(m["off"], 16), int(m["size"], 16)))
        else:
            assert not line.strip(), f"unexpected line {line!r}"
    return stacks


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def symbols(data_dir: Path) -> list[Symbol]:
    return read_kallsyms(data_dir / "kallsyms-6.18.txt.gz")


@pytest.fixture(scope="module")
def functions(symbols: list[Symbol]) -> list[Function]:
    return function_ranges(symbols)


@pytest.fixture(scope="module")
def stacks(data_dir: Path) -> list[list[Frame]]:
    return read_stacks(data_dir / "proc-stacks-6.18.txt")


@pytest.fixture(scope="module")
def by_name(functions: list[Function]) -> dict[str, list[int]]:
    names: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(functions):
        names[f.name].append(i)
    return names


def build(functions: Sequence[Function], ids: Sequence[int]) -> lpc.IntervalTree:
    return lpc.IntervalTree.from_arrays(
        np.array([functions[i].start for i in ids], dtype=np.uint64),
        np.array([functions[i].end for i in ids], dtype=np.uint64),
        np.array(ids, dtype=np.int64),
    )


# ---- the model -------------------------------------------------------------------------------


class SearchsortedModel:
    """Predecessor search over starts sorted by ``(start, id)`` plus one end check.

    Exact here because kernel functions with different starts never overlap
    (each ends at the next text address) and aliases share start *and* end, so
    the last of equal starts is the highest id, as ``find`` ranks them.
    """

    def __init__(self, functions: Sequence[Function], ids: Sequence[int]) -> None:
        starts = np.array([functions[i].start for i in ids], dtype=np.uint64)
        ends = np.array([functions[i].end for i in ids], dtype=np.uint64)
        id_array = np.array(ids, dtype=np.int64)
        order = np.lexsort((id_array, starts))
        self.starts, self.ends, self.ids = starts[order], ends[order], id_array[order]
        later = np.flatnonzero(self.starts[1:] != self.starts[:-1]) + 1
        assert (self.ends[later - 1] <= self.starts[later]).all(), "model needs disjoint starts"

    def find_many(self, qs: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        i = np.searchsorted(self.starts, qs, side="right").astype(np.int64) - 1
        safe = np.maximum(i, 0)
        hit = (i >= 0) & (qs < self.ends[safe])
        return np.where(hit, self.ids[safe], -1)


def sampled_addresses(
    functions: Sequence[Function],
    symbols: Sequence[Symbol],
    rng: np.random.Generator,
    focus: Sequence[int] | None = None,
) -> npt.NDArray[np.uint64]:
    """~100k addresses: inside random functions, in padding and section holes,
    far outside the text, and at every edge of a sample of functions.

    ``focus`` (the ids in the tree under test) gets half of the inside and
    edge addresses, so that even a tree of one function sees hits.
    """
    starts = np.array([f.start for f in functions], dtype=np.uint64)
    sizes = np.array([f.end - f.start for f in functions], dtype=np.uint64)
    pool = np.arange(len(functions)) if focus is None else np.asarray(focus)

    def pick(count: int) -> npt.NDArray[np.int64]:
        half = count // 2
        return np.concatenate(
            [rng.integers(0, len(functions), size=count - half), rng.choice(pool, size=half)]
        )

    inside_of = pick(SAMPLED_ADDRESSES // 2)
    inside = starts[inside_of] + (rng.random(len(inside_of)) * sizes[inside_of]).astype(np.uint64)
    padding = np.array(
        [s.address for s in symbols if s.name.startswith(PADDING_PREFIX)], dtype=np.uint64
    )
    in_padding = rng.choice(padding, size=10_000) + rng.integers(
        0, 16, size=10_000, dtype=np.uint64
    )
    lo, hi = int(starts.min()), max(f.end for f in functions)
    anywhere_in_text = rng.integers(lo - 4096, hi + 4096, size=10_000, dtype=np.uint64)
    anywhere = rng.integers(0, 2**64 - 1, size=2_000, dtype=np.uint64, endpoint=True)
    edge_of = pick((SAMPLED_ADDRESSES - 72_000) // 4)
    first, last = starts[edge_of], starts[edge_of] + sizes[edge_of]
    edges = np.concatenate([first - 1, first, last - 1, last])
    qs = np.concatenate([inside, in_padding, anywhere_in_text, anywhere, edges]).astype(np.uint64)
    rng.shuffle(qs)
    return qs


# ---- facts about the sample ------------------------------------------------------------------


def test_reader_sees_the_whole_capture(symbols: list[Symbol], functions: list[Function]) -> None:
    # meta.txt of the capture: kallsyms_text_lines=122059 (CONFIG_KALLSYMS_ALL off).
    assert len(symbols) == 122_059
    assert all(s.kind in TEXT_TYPES for s in symbols)
    assert sum(s.name.startswith(PADDING_PREFIX) for s in symbols) == 57_836
    # The one module-side symbol is an ftrace trampoline alone in its pseudo-module:
    # with no symbol after it its size is unknown, so it is not a function.
    assert [s.name for s in symbols if s.module] == ["ftrace_trampoline"]
    assert all(f.module is None for f in functions)
    assert len(functions) == 64_218
    assert len({f.start for f in functions}) == 64_088
    dropped = {s.name for s in symbols if not s.name.startswith(PADDING_PREFIX)} - {
        f.name for f in functions
    }
    # Section holes (> 64 KiB to the next text symbol), the last vmlinux symbol,
    # and the module trampoline.
    assert dropped == {
        "__entry_text_end",
        "srso_alias_return_thunk",
        "_etext",
        "_einittext",
        "ftrace_trampoline",
    }


def test_worker_thread_holds_its_return_address(
    functions: list[Function], by_name: dict[str, list[int]], stacks: list[list[Frame]]
) -> None:
    (wt,) = by_name["worker_thread"]
    assert functions[wt].start == 0xFFFF_FFFF_8138_1800
    # stacks.txt prints "worker_thread+0x98/0x310" for every idle kworker.
    frames = [f for stack in stacks for f in stack if f.name == "worker_thread"]
    assert frames and all((f.offset, f.size) == (0x98, 0x310) for f in frames)
    assert functions[wt].end - functions[wt].start == 0x310
    tree = build(functions, range(len(functions)))
    start, end = functions[wt].start, functions[wt].end
    assert tree.find(start + 0x98) == wt
    assert tree.find(start) == wt and tree.find(end - 1) == wt
    assert tree.find_all(start + 0x98) == [wt]
    # The 16 bytes before it are __pfx_worker_thread: padding, in no function.
    assert tree.find(start - 1) is None and tree.find(start - 16) is None
    # Right after it comes __pfx_try_to_grab_pending, then try_to_grab_pending.
    assert tree.find(end) is None
    (grab,) = by_name["try_to_grab_pending"]
    assert tree.find(end + 16) == grab
    assert tree.overlapping(start - 16, end + 17) == [grab, wt]


def test_printed_sizes_agree_with_the_reader(
    functions: list[Function], by_name: dict[str, list[int]], stacks: list[list[Frame]]
) -> None:
    """Every frame's ``/0x<size>`` is the kernel's own range length: the tree
    must place ``start + off - 1`` (the ``%pB`` lookup address) in that function."""
    tree = build(functions, range(len(functions)))
    checked = 0
    for frame in {f for stack in stacks for f in stack}:
        candidates = [
            i for i in by_name[frame.name] if functions[i].end - functions[i].start == frame.size
        ]
        assert candidates, f"{frame.name}: no function of size {frame.size:#x}"
        if len({functions[i].start for i in candidates}) > 1:
            continue  # a duplicated name with equal sizes: ambiguous, don't guess
        start = functions[candidates[0]].start
        assert 0 < frame.offset <= frame.size
        hit = tree.find(start + frame.offset - 1)
        assert hit is not None and functions[hit].start == start, frame
        checked += 1
    assert checked >= 60


def test_stack_scan_finds_the_tasks_sleeping_in_a_patch(
    functions: list[Function], by_name: dict[str, list[int]], stacks: list[list[Frame]]
) -> None:
    """``first_hit_per_stack`` on the real stacks, each frame rebuilt as
    ``start + offset``, against a scan of the frame names."""
    start_of = {f.name: f.start for f in functions if len(by_name[f.name]) == 1}
    ips: list[int] = []
    offsets = [0]
    names_per_stack: list[list[str]] = []
    for stack in stacks:
        usable = [f for f in stack if f.name in start_of]
        ips.extend(start_of[f.name] + f.offset for f in usable)
        offsets.append(len(ips))
        names_per_stack.append([f.name for f in usable])
    for patched in (
        ["worker_thread"],
        ["kthread", "do_syscall_64"],
        ["schedule", "do_wait", "anon_pipe_read"],
    ):
        ids = [by_name[name][0] for name in patched]
        tree = build(functions, ids)
        frame, hit = tree.first_hit_per_stack(
            np.array(ips, dtype=np.uint64), np.array(offsets, dtype=np.uint64)
        )
        for s, names in enumerate(names_per_stack):
            first = next((k for k, name in enumerate(names) if name in patched), -1)
            assert frame[s] == first, (patched, s)
            assert hit[s] == (by_name[names[first]][0] if first >= 0 else -1)
    kworkers = sum("worker_thread" in names for names in names_per_stack)
    assert kworkers >= 10, "the capture has many idle kworkers"


# ---- agreement with the models at scale ------------------------------------------------------


@pytest.mark.parametrize("subset", ["all", 1, 10, 1000, 30_000])
def test_find_many_agrees_with_searchsorted(
    functions: list[Function], symbols: list[Symbol], subset: str | int
) -> None:
    rng = np.random.default_rng(6_18 + (0 if subset == "all" else int(subset)))
    if subset == "all":
        ids = list(range(len(functions)))
    else:
        ids = sorted(rng.choice(len(functions), size=int(subset), replace=False).tolist())
    tree = build(functions, ids)
    assert len(tree) == len(ids)
    # Aliases (several names, one address) make identical ranges.
    assert tree.is_disjoint == (len({functions[i].start for i in ids}) == len(ids))
    qs = sampled_addresses(functions, symbols, rng, focus=ids)
    want = SearchsortedModel(functions, ids).find_many(qs)
    assert (want >= 0).any() and (want < 0).any()
    assert np.array_equal(tree.find_many(qs), want)  # >= 64k addresses: the parallel path
    assert np.array_equal(tree.find_many(qs, parallel=False), want)
    assert np.array_equal(tree.contains_many(qs), want >= 0)


def test_tuple_constructor_agrees_with_from_arrays(functions: list[Function]) -> None:
    by_tuples = lpc.IntervalTree((f.start, f.end, i) for i, f in enumerate(functions))
    by_arrays = build(functions, range(len(functions)))
    assert np.array_equal(by_tuples.starts, by_arrays.starts)
    assert np.array_equal(by_tuples.ends, by_arrays.ends)
    assert np.array_equal(by_tuples.ids, by_arrays.ids)


def test_scalar_queries_agree_with_bisect(functions: list[Function], symbols: list[Symbol]) -> None:
    """A pure-Python predecessor search, independent of numpy, on a smaller sample."""
    ranked = sorted(range(len(functions)), key=lambda i: (functions[i].start, i))
    starts = [functions[i].start for i in ranked]
    aliases: dict[int, list[int]] = defaultdict(list)
    for i in ranked:
        aliases[functions[i].start].insert(0, i)  # highest id first, as find_all ranks
    tree = build(functions, range(len(functions)))
    rng = np.random.default_rng(4)
    for q in sampled_addresses(functions, symbols, rng)[:3000].tolist():
        k = bisect.bisect_right(starts, q) - 1
        want = ranked[k] if k >= 0 and q < functions[ranked[k]].end else None
        assert tree.find(q) == want, hex(q)
        assert tree.contains(q) == (want is not None)
        assert tree.find_all(q) == (aliases[functions[want].start] if want is not None else [])


def test_unpatching_a_subset_restores_the_rest(
    functions: list[Function], symbols: list[Symbol]
) -> None:
    """Dropping ids then adding them back gives the full tree's answers."""
    rng = np.random.default_rng(5)
    full = build(functions, range(len(functions)))
    gone = rng.choice(len(functions), size=5000, replace=False)
    shrunk = full.without_ids(gone)
    assert len(shrunk) == len(functions) - 5000
    restored = shrunk.with_ranges((functions[i].start, functions[i].end, int(i)) for i in gone)
    qs = sampled_addresses(functions, symbols, rng)
    assert np.array_equal(restored.find_many(qs), full.find_many(qs))
    gone_set = set(gone.tolist())
    shrunk_hits = shrunk.find_many(qs)
    full_hits = full.find_many(qs)
    keep = np.array([h < 0 or int(h) not in gone_set for h in full_hits.tolist()])
    assert np.array_equal(shrunk_hits[keep], full_hits[keep])
    assert (shrunk_hits[~keep] != full_hits[~keep]).all()
