"""Brute-force model of ``lpc.IntervalTree`` and hypothesis strategies for it.

The model is deliberately the dumbest thing that can be right: a list of
``(start, end, id)`` triples scanned in full for every question. The ranking
rule it encodes is the documented one: among the ranges containing an address,
the one with the largest start wins, ties going to the highest id (klp's
``func_stack`` keeps the newest patch first).

Shared by test_intervals.py and test_intervals_stateful.py (pytest puts this
directory on ``sys.path``, so a plain import works).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

Range = tuple[int, int, int]


# ---- the model -------------------------------------------------------------------------------


def ranked(ranges: Iterable[Range]) -> list[Range]:
    """Ranges best first: largest start, then highest id."""
    return sorted(ranges, key=lambda r: (r[0], r[2]), reverse=True)


def find_all(ranges: Sequence[Range], q: int) -> list[int]:
    return [r[2] for r in ranked(r for r in ranges if r[0] <= q < r[1])]


def find(ranges: Sequence[Range], q: int) -> int | None:
    hits = find_all(ranges, q)
    return hits[0] if hits else None


def overlapping(ranges: Sequence[Range], start: int, end: int) -> list[int]:
    return [r[2] for r in ranked(r for r in ranges if r[0] < end and r[1] > start)]


def is_disjoint(ranges: Sequence[Range]) -> bool:
    """No address lies in two ranges (pairwise, so it cannot share a bug with a sweep)."""
    return not any(
        a[0] < b[1] and b[0] < a[1] for i, a in enumerate(ranges) for b in ranges[i + 1 :]
    )


def find_many(ranges: Sequence[Range], qs: Iterable[int]) -> list[int]:
    """``find`` per address with the batch API's miss marker, -1."""
    out = []
    for q in qs:
        hit = find(ranges, q)
        out.append(-1 if hit is None else hit)
    return out


def first_hits(
    ranges: Sequence[Range], ips: Sequence[int], offsets: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Per CSR stack: position of the first frame inside a range, and its id."""
    frames: list[int] = []
    ids: list[int] = []
    for s in range(len(offsets) - 1):
        frame, hit_id = -1, -1
        for k, q in enumerate(ips[offsets[s] : offsets[s + 1]]):
            hit = find(ranges, q)
            if hit is not None:
                frame, hit_id = k, hit
                break
        frames.append(frame)
        ids.append(hit_id)
    return frames, ids


def find_many_vectorized(
    ranges: Sequence[Range], qs: npt.NDArray[np.uint64], chunk: int = 4096
) -> npt.NDArray[np.int64]:
    """The same brute force, vectorized with numpy for batches too long for Python loops.

    Every query is compared with every range; the best hit is the last covering
    range in ``(start, id)`` order.
    """
    order = sorted(ranges, key=lambda r: (r[0], r[2]))
    starts = np.array([r[0] for r in order], dtype=np.uint64)
    ends = np.array([r[1] for r in order], dtype=np.uint64)
    ids = np.array([r[2] for r in order], dtype=np.int64)
    out = np.full(len(qs), -1, dtype=np.int64)
    if not order:
        return out
    for lo in range(0, len(qs), chunk):
        q = qs[lo : lo + chunk, None]
        covered = (starts[None, :] <= q) & (q < ends[None, :])
        any_hit = covered.any(axis=1)
        # argmax over the reversed columns finds the last True.
        last = len(order) - 1 - np.argmax(covered[:, ::-1], axis=1)
        out[lo : lo + chunk] = np.where(any_hit, ids[last], -1)
    return out


def edge_points(ranges: Iterable[Range]) -> list[int]:
    """Every address where an answer can change, plus the ends of the address space."""
    points = {0, 1, U64_MAX - 1, U64_MAX}
    for start, end, _ in ranges:
        for p in (start - 1, start, start + 1, end - 1, end, end + 1):
            if 0 <= p <= U64_MAX:
                points.add(p)
    return sorted(points)


# ---- strategies ------------------------------------------------------------------------------

#: Addresses where trouble lives: near 0, near 2**63 (the sign bit of an int64
#: view of a u64), near 2**64 - 1, and anywhere.
interesting_addresses = st.one_of(
    st.integers(0, 48),
    st.integers(U64_MAX - 48, U64_MAX),
    st.integers(2**63 - 24, 2**63 + 24),
    st.integers(0, U64_MAX),
)

#: Mostly small ids so that equal-start ties and duplicate ids are common.
range_ids = st.one_of(st.integers(0, 12), st.integers(0, I64_MAX))

_lengths = st.one_of(st.integers(1, 64), st.integers(1, 2**64))

_KINDS = (
    "anchored",
    "between",
    "duplicate",
    "nested",
    "enclosing",
    "chained",
    "to_top",
    "from_zero",
)


def _span(start: int, length: int) -> tuple[int, int]:
    """A non-empty range at ``start`` clipped to the address space."""
    start = min(start, U64_MAX - 1)
    return start, min(start + length, U64_MAX)


@st.composite
def range_lists(
    draw: st.DrawFn, max_size: int = 24, ids: st.SearchStrategy[int] = range_ids
) -> list[Range]:
    """Valid ranges with heavy overlap: duplicates, nests, chains, both ends of u64."""
    anchors = sorted(set(draw(st.lists(interesting_addresses, min_size=1, max_size=8))))
    ranges: list[Range] = []
    for _ in range(draw(st.integers(0, max_size))):
        kind = draw(st.sampled_from(_KINDS))
        if not ranges and kind in ("duplicate", "nested", "enclosing", "chained"):
            kind = "anchored"
        if kind == "between" and len(anchors) < 2:
            kind = "anchored"
        if kind == "chained" and all(r[1] == U64_MAX for r in ranges):
            kind = "anchored"
        if kind == "anchored":
            start, end = _span(draw(st.sampled_from(anchors)), draw(_lengths))
        elif kind == "between":
            i = draw(st.integers(0, len(anchors) - 2))
            j = draw(st.integers(i + 1, len(anchors) - 1))
            start, end = anchors[i], anchors[j]
        elif kind == "duplicate":
            start, end, same_id = draw(st.sampled_from(ranges))
            if draw(st.booleans()):
                ranges.append((start, end, same_id))
                continue
        elif kind == "nested":
            outer_start, outer_end, _ = draw(st.sampled_from(ranges))
            start = draw(st.integers(outer_start, outer_end - 1))
            end = draw(st.integers(start + 1, outer_end))
        elif kind == "enclosing":
            inner_start, inner_end, _ = draw(st.sampled_from(ranges))
            start = draw(st.integers(max(0, inner_start - 64), inner_start))
            end = draw(st.integers(inner_end, min(U64_MAX, inner_end + 64)))
        elif kind == "chained":
            open_ended = [r for r in ranges if r[1] < U64_MAX]
            start, end = _span(draw(st.sampled_from(open_ended))[1], draw(_lengths))
        elif kind == "to_top":
            start, end = min(draw(st.sampled_from(anchors)), U64_MAX - 1), U64_MAX
        else:  # from_zero
            start, end = 0, max(1, draw(st.sampled_from(anchors)))
        ranges.append((start, end, draw(ids)))
    return ranges


@st.composite
def queries_for(draw: st.DrawFn, ranges: Sequence[Range], max_size: int = 40) -> list[int]:
    """Addresses for a query batch: the ranges' edges plus arbitrary ones, in any order."""
    edges = edge_points(ranges)
    picked = draw(st.lists(st.sampled_from(edges), max_size=max_size))
    extra = draw(st.lists(interesting_addresses, max_size=max_size // 4))
    return picked + extra
