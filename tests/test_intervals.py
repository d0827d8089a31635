"""Properties of ``lpc.IntervalTree`` against the brute-force model in interval_model.py.

Every query of the public API is compared with the model on range sets full of
identical, nested, chained and address-space-edge ranges, at every address
where an answer can change. The batch paths only split work across threads for
batches of at least 65536 addresses, so the parallel code has its own
non-hypothesis tests with long batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import lpc
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import interval_model as model
from interval_model import U64_MAX, Range, queries_for, range_lists

#: The batch length from which the core splits a batch across threads.
PARALLEL_MIN = 1 << 16


def u64(values: Sequence[int]) -> npt.NDArray[np.uint64]:
    return np.array(values, dtype=np.uint64)


def triples(tree: lpc.IntervalTree) -> list[Range]:
    """The tree's ranges as sorted triples (the order of ends among equal
    ``(start, id)`` keys is not part of the contract)."""
    return sorted(zip(tree.starts.tolist(), tree.ends.tolist(), tree.ids.tolist(), strict=True))


def assert_point_queries(
    tree: lpc.IntervalTree, ranges: Sequence[Range], qs: Sequence[int]
) -> None:
    for q in qs:
        want = model.find_all(ranges, q)
        assert tree.find_all(q) == want, f"find_all({q:#x})"
        assert tree.find(q) == (want[0] if want else None), f"find({q:#x})"
        assert tree.contains(q) is bool(want), f"contains({q:#x})"


def assert_same_tree(got: lpc.IntervalTree, want: lpc.IntervalTree) -> None:
    assert len(got) == len(want)
    assert got.is_disjoint == want.is_disjoint
    assert got.starts.tolist() == want.starts.tolist()
    assert got.ids.tolist() == want.ids.tolist()
    assert triples(got) == triples(want)


# ---- point and range queries -----------------------------------------------------------------


@given(ranges=range_lists(), data=st.data())
def test_point_queries_match_model(ranges: list[Range], data: st.DataObject) -> None:
    tree = lpc.IntervalTree(ranges)
    qs = model.edge_points(ranges) + data.draw(st.lists(model.interesting_addresses, max_size=8))
    assert_point_queries(tree, ranges, qs)


@given(ranges=range_lists(), data=st.data())
def test_overlapping_matches_model(ranges: list[Range], data: st.DataObject) -> None:
    tree = lpc.IntervalTree(ranges)
    edges = model.edge_points(ranges)
    for _ in range(12):
        a, b = sorted(
            data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=2, unique=True))
        )
        assert tree.overlapping(a, b) == model.overlapping(ranges, a, b), f"[{a:#x}, {b:#x})"
    assert tree.overlapping(0, U64_MAX) == model.overlapping(ranges, 0, U64_MAX)


@given(ranges=range_lists(), data=st.data())
def test_overlapping_one_address_is_find_all(ranges: list[Range], data: st.DataObject) -> None:
    tree = lpc.IntervalTree(ranges)
    for q in data.draw(queries_for(ranges, max_size=12)):
        if q < U64_MAX:
            assert tree.overlapping(q, q + 1) == tree.find_all(q)


def test_ties_go_to_the_largest_start_then_the_highest_id() -> None:
    # The same function patched three times (ids given out of order) plus a
    # nested replacement: the innermost start wins, then the newest patch.
    ranges = [(100, 200, 1), (100, 200, 3), (100, 200, 2), (150, 160, 0), (100, 150, 3)]
    tree = lpc.IntervalTree(ranges)
    assert tree.find(120) == 3
    assert tree.find(155) == 0
    assert tree.find_all(155) == [0, 3, 2, 1]
    assert tree.find_all(120) == [3, 3, 2, 1]
    assert tree.overlapping(159, 161) == [0, 3, 2, 1]
    assert tree.overlapping(160, 161) == [3, 2, 1]
    assert_point_queries(tree, ranges, model.edge_points(ranges))


def test_address_space_edges() -> None:
    # Half-open ranges can never hold 2**64 - 1 itself.
    # Both ranges at 0 share the start, so the higher id wins even though its
    # range is the wider one.
    ranges = [(0, 1, 10), (U64_MAX - 1, U64_MAX, 11), (2**63 - 1, 2**63 + 1, 12), (0, U64_MAX, 13)]
    tree = lpc.IntervalTree(ranges)
    assert tree.find(0) == 13
    assert tree.find_all(0) == [13, 10]
    assert tree.find(U64_MAX - 1) == 11
    assert tree.find(U64_MAX) is None
    assert tree.find_all(2**63) == [12, 13]
    assert tree.find_many(u64([0, 1, U64_MAX - 1, U64_MAX])).tolist() == [13, 13, 11, -1]
    assert_point_queries(tree, ranges, model.edge_points(ranges))


def test_empty_tree_answers_nothing() -> None:
    for tree in (lpc.IntervalTree(), lpc.IntervalTree([]), lpc.IntervalTree(None)):
        assert len(tree) == 0
        assert tree.is_disjoint
        assert tree.find(0) is None
        assert tree.find(U64_MAX) is None
        assert not tree.contains(5)
        assert tree.find_all(5) == []
        assert tree.overlapping(0, U64_MAX) == []
        assert tree.find_many(u64([0, 7, U64_MAX])).tolist() == [-1, -1, -1]
        assert tree.contains_many(u64([0, U64_MAX])).tolist() == [False, False]
        frame, ids = tree.first_hit_per_stack(u64([1, 2]), u64([0, 1, 2]))
        assert frame.tolist() == [-1, -1] and ids.tolist() == [-1, -1]


# ---- batch queries ---------------------------------------------------------------------------


@given(ranges=range_lists(), data=st.data(), parallel=st.booleans())
def test_find_many_matches_model(ranges: list[Range], data: st.DataObject, parallel: bool) -> None:
    tree = lpc.IntervalTree(ranges)
    qs = data.draw(queries_for(ranges))
    want = model.find_many(ranges, qs)
    got = tree.find_many(u64(qs), parallel=parallel)
    assert got.dtype == np.int64
    assert got.tolist() == want


@given(ranges=range_lists(), data=st.data(), parallel=st.booleans())
def test_find_many_into_out(ranges: list[Range], data: st.DataObject, parallel: bool) -> None:
    tree = lpc.IntervalTree(ranges)
    qs = data.draw(queries_for(ranges))
    out = np.full(len(qs), 0x5A5A, dtype=np.int64)  # garbage that must be overwritten
    got = tree.find_many(u64(qs), out=out, parallel=parallel)
    assert got is out
    assert out.tolist() == model.find_many(ranges, qs)


@given(ranges=range_lists(), data=st.data(), parallel=st.booleans())
def test_contains_many_matches_model(
    ranges: list[Range], data: st.DataObject, parallel: bool
) -> None:
    tree = lpc.IntervalTree(ranges)
    qs = data.draw(queries_for(ranges))
    got = tree.contains_many(u64(qs), parallel=parallel)
    assert got.dtype == np.bool_
    assert got.tolist() == [model.find(ranges, q) is not None for q in qs]


@st.composite
def csr_stacks(draw: st.DrawFn, ranges: Sequence[Range]) -> tuple[list[int], list[int]]:
    """Frames plus offsets that partition them (0 first, the frame count
    last, non-decreasing): empty stacks included."""
    ips = draw(queries_for(ranges, max_size=30))
    cuts = draw(st.lists(st.integers(0, len(ips)), max_size=10))
    return ips, [0, *sorted(cuts), len(ips)]


@given(ranges=range_lists(), data=st.data(), parallel=st.booleans())
def test_first_hit_per_stack_matches_model(
    ranges: list[Range], data: st.DataObject, parallel: bool
) -> None:
    tree = lpc.IntervalTree(ranges)
    ips, offsets = data.draw(csr_stacks(ranges))
    frame, ids = tree.first_hit_per_stack(u64(ips), u64(offsets), parallel=parallel)
    assert frame.dtype == np.int64 and ids.dtype == np.int64
    want_frame, want_ids = model.first_hits(ranges, ips, offsets)
    assert frame.tolist() == want_frame
    assert ids.tolist() == want_ids


# ---- structure and derived trees -------------------------------------------------------------


@given(ranges=range_lists())
def test_columns_describe_the_ranges(ranges: list[Range]) -> None:
    tree = lpc.IntervalTree(ranges)
    assert len(tree) == len(ranges)
    assert tree.starts.dtype == np.uint64
    assert tree.ends.dtype == np.uint64
    assert tree.ids.dtype == np.int64
    keys = list(zip(tree.starts.tolist(), tree.ids.tolist(), strict=True))
    assert keys == sorted(keys), "columns are sorted by (start, id)"
    assert triples(tree) == sorted(ranges)
    assert tree.is_disjoint == model.is_disjoint(ranges)
    assert tree.nbytes >= 24 * len(ranges)
    assert f"ranges={len(ranges)}" in repr(tree)
    # The column getters hand out copies: scribbling on one changes nothing.
    if ranges:
        starts = tree.starts
        starts[:] = 0
        assert triples(tree) == sorted(ranges)


@given(ranges=range_lists())
def test_from_arrays_equals_the_tuple_constructor(ranges: list[Range]) -> None:
    starts = u64([r[0] for r in ranges])
    ends = u64([r[1] for r in ranges])
    ids = np.array([r[2] for r in ranges], dtype=np.int64)
    assert_same_tree(lpc.IntervalTree.from_arrays(starts, ends, ids), lpc.IntervalTree(ranges))
    # Without ids, each range is named by its input position.
    by_position = [(s, e, i) for i, (s, e, _) in enumerate(ranges)]
    assert_same_tree(lpc.IntervalTree.from_arrays(starts, ends), lpc.IntervalTree(by_position))


@given(base=range_lists(max_size=16), extra=range_lists(max_size=16), data=st.data())
def test_with_ranges_equals_a_fresh_build(
    base: list[Range], extra: list[Range], data: st.DataObject
) -> None:
    tree = lpc.IntervalTree(base)
    grown = tree.with_ranges(extra)
    both = base + extra
    assert_same_tree(grown, lpc.IntervalTree(both))
    assert_point_queries(grown, both, data.draw(queries_for(both, max_size=30)))
    # The original is untouched.
    assert triples(tree) == sorted(base)
    assert_point_queries(tree, base, model.edge_points(base)[:20])


@given(ranges=range_lists(), data=st.data())
def test_without_ids_equals_a_fresh_build(ranges: list[Range], data: st.DataObject) -> None:
    present = sorted({r[2] for r in ranges})
    gone = data.draw(st.lists(st.sampled_from(present), max_size=4)) if present else []
    gone += data.draw(st.lists(model.range_ids, max_size=2))  # ids that may not exist
    tree = lpc.IntervalTree(ranges)
    shrunk = tree.without_ids(np.array(gone, dtype=np.int64))
    kept = [r for r in ranges if r[2] not in set(gone)]
    assert_same_tree(shrunk, lpc.IntervalTree(kept))
    assert shrunk.is_disjoint == model.is_disjoint(kept)
    assert_point_queries(shrunk, kept, data.draw(queries_for(ranges, max_size=30)))
    assert triples(tree) == sorted(ranges)


@given(base=range_lists(max_size=8), extra=range_lists(max_size=8), data=st.data())
def test_with_ranges_reports_the_index_within_its_argument(
    base: list[Range], extra: list[Range], data: st.DataObject
) -> None:
    bad_at = data.draw(st.integers(0, len(extra)))
    start = data.draw(model.interesting_addresses)
    end = data.draw(st.integers(0, start))  # end <= start: empty or inverted
    extra.insert(bad_at, (start, end, 7))
    tree = lpc.IntervalTree(base)
    with pytest.raises(lpc.InvalidRangeError) as err:
        tree.with_ranges(extra)
    assert err.value.index == bad_at
    assert triples(tree) == sorted(base)


# ---- deep nesting ----------------------------------------------------------------------------


def test_deep_nesting_is_exact() -> None:
    # [i, 2n - i): every range nests in the one before, so a lookup past the
    # innermost range's end must skip whole blocks of too-short ranges.
    n = 3000
    tree = lpc.IntervalTree.from_arrays(
        u64(range(n)), u64([2 * n - i for i in range(n)]), np.arange(n, dtype=np.int64)
    )
    assert not tree.is_disjoint
    qs = np.arange(2 * n + 2, dtype=np.uint64)
    # Address q lies in ranges 0..min(q, 2n-1-q); the innermost wins.
    innermost = [min(q, 2 * n - 1 - q, n - 1) if q < 2 * n else -1 for q in range(2 * n + 2)]
    assert tree.find_many(qs, parallel=False).tolist() == innermost
    for q in (0, 1, n - 1, n, n + 1, 2 * n - 1, 2 * n, 2 * n + 1, 777, 4321):
        want = innermost[q]
        assert tree.find_all(q) == (list(range(want, -1, -1)) if want >= 0 else [])
    assert tree.overlapping(2 * n - 1, 2 * n) == [0]
    assert tree.overlapping(n - 1, n + 1) == list(range(n - 1, -1, -1))


def test_shared_starts_and_shared_ends() -> None:
    # Many ranges from one start with shrinking ends (ids falling as ends grow),
    # then many ranges to one end: the innermost match is deep in the block tree.
    n = 700
    same_start = [(1000, 1000 + n - i, i) for i in range(n)]
    same_end = [(5000 + i, 5000 + n, 10_000 + i) for i in range(n)]
    ranges = same_start + same_end
    tree = lpc.IntervalTree(ranges)
    qs = model.edge_points(ranges)
    assert (
        tree.find_many(u64(qs), parallel=False).tolist()
        == model.find_many_vectorized(ranges, u64(qs)).tolist()
    )
    # At 1000 + k, ranges i < n - k hold it; the highest id among them wins.
    assert tree.find(1000) == n - 1
    assert tree.find(1000 + n - 1) == 0
    assert tree.find(1000 + n) is None
    assert tree.find(5000 + n - 1) == 10_000 + n - 1
    assert tree.find_all(1000 + n - 3) == [2, 1, 0]


def test_staircase_of_long_overlapping_ranges() -> None:
    # Each range overlaps the next 40: chained, not nested.
    rng = np.random.default_rng(2024)
    ranges = [(i * 10, i * 10 + 400 + int(rng.integers(0, 5)), i) for i in range(2000)]
    tree = lpc.IntervalTree(ranges)
    qs = u64(model.edge_points(ranges))
    assert (
        tree.find_many(qs, parallel=False).tolist()
        == model.find_many_vectorized(ranges, qs).tolist()
    )
    for q in (0, 9, 10, 405, 19_990, 20_389):
        assert tree.find_all(q) == model.find_all(ranges, q)


def random_heavy_overlap(seed: int, n: int) -> list[Range]:
    """Hundreds to thousands of ranges, deep enough for several levels of the
    max-end tree: random spans, duplicates, nests, chains, and both ends of u64."""
    rng = np.random.default_rng(seed)
    ranges: list[Range] = [(0, int(rng.integers(1, 500)), 0), (U64_MAX - 100, U64_MAX, 1)]
    while len(ranges) < n:
        kind = rng.integers(0, 5)
        base_start, base_end, _ = ranges[int(rng.integers(0, len(ranges)))]
        new_id = int(rng.integers(0, n // 4))
        if kind == 0 or base_end > 2**40:
            start = int(rng.integers(0, 60_000))
            end = start + int(rng.geometric(1 / 300))
        elif kind == 1:  # duplicate span
            start, end = base_start, base_end
        elif kind == 2:  # nested
            start = int(rng.integers(base_start, base_end))
            end = int(rng.integers(start + 1, base_end + 1))
        elif kind == 3:  # chained
            start, end = base_end, base_end + int(rng.integers(1, 2000))
        else:  # enclosing
            start = max(0, base_start - int(rng.integers(0, 100)))
            end = base_end + int(rng.integers(0, 100))
        ranges.append((start, end, new_id))
    return ranges


@pytest.mark.parametrize(("seed", "n"), [(1, 300), (2, 1500), (3, 4000)])
def test_large_random_sets_at_every_edge(seed: int, n: int) -> None:
    ranges = random_heavy_overlap(seed, n)
    tree = lpc.IntervalTree(ranges)
    assert not tree.is_disjoint
    qs = u64(model.edge_points(ranges))
    want = model.find_many_vectorized(ranges, qs)
    assert np.array_equal(tree.find_many(qs, parallel=False), want)
    rng = np.random.default_rng(seed)
    for q in rng.choice(qs, size=150).tolist():
        assert tree.find_all(q) == model.find_all(ranges, q)
    for a in rng.choice(qs, size=60).tolist():
        b = min(U64_MAX, a + int(rng.integers(1, 3000)))
        if a < b:
            assert tree.overlapping(a, b) == model.overlapping(ranges, a, b)
    # Remove a third of the ids and add new ranges: still exact.
    gone = rng.choice(n // 4, size=n // 12, replace=False)
    kept = [r for r in ranges if r[2] not in set(gone.tolist())]
    extra = random_heavy_overlap(seed + 100, 200)
    derived = tree.without_ids(gone).with_ranges(extra)
    qs = u64(model.edge_points(kept + extra))
    assert np.array_equal(
        derived.find_many(qs, parallel=False), model.find_many_vectorized(kept + extra, qs)
    )


# ---- long batches: the parallel paths --------------------------------------------------------


@pytest.fixture(scope="module")
def overlapping_set() -> list[Range]:
    """A few hundred ranges with duplicates, nests and chains in a small address window."""
    rng = np.random.default_rng(7)
    ranges: list[Range] = []
    for i in range(300):
        start = int(rng.integers(0, 200_000))
        ranges.append((start, start + int(rng.integers(1, 3000)), int(rng.integers(0, 50))))
        if i % 10 == 0:
            ranges.append((start, ranges[-1][1], int(rng.integers(0, 50))))  # duplicate span
            ranges.append((start + 1, start + 2, i))  # nested one-byte range
    ranges.append((0, 1, 999))
    ranges.append((U64_MAX - 5, U64_MAX, 998))
    return ranges


@pytest.fixture(scope="module")
def long_batch(overlapping_set: list[Range]) -> npt.NDArray[np.uint64]:
    rng = np.random.default_rng(8)
    edges = u64(model.edge_points(overlapping_set))
    random = rng.integers(0, 210_000, size=3 * PARALLEL_MIN, dtype=np.uint64)
    qs = np.concatenate([edges, random, edges[::-1]])
    assert len(qs) >= PARALLEL_MIN
    return qs


def test_long_batch_find_many_parallel_and_serial(
    overlapping_set: list[Range], long_batch: npt.NDArray[np.uint64]
) -> None:
    tree = lpc.IntervalTree(overlapping_set)
    want = model.find_many_vectorized(overlapping_set, long_batch)
    assert (want >= 0).any() and (want < 0).any(), "the batch has both hits and misses"
    for parallel in (True, False):
        assert np.array_equal(tree.find_many(long_batch, parallel=parallel), want)
        out = np.full(len(long_batch), 17, dtype=np.int64)
        assert tree.find_many(long_batch, out=out, parallel=parallel) is out
        assert np.array_equal(out, want)
        assert np.array_equal(tree.contains_many(long_batch, parallel=parallel), want >= 0)


def test_long_batch_first_hit_per_stack(
    overlapping_set: list[Range], long_batch: npt.NDArray[np.uint64]
) -> None:
    tree = lpc.IntervalTree(overlapping_set)
    rng = np.random.default_rng(9)
    depths = rng.integers(0, 24, size=len(long_batch) // 14)
    offsets = np.concatenate([[0], np.cumsum(depths)]).astype(np.uint64)
    assert offsets[-1] <= len(long_batch) and offsets[-1] >= PARALLEL_MIN
    hits = model.find_many_vectorized(overlapping_set, long_batch)
    want_frame = np.full(len(depths), -1, dtype=np.int64)
    want_ids = np.full(len(depths), -1, dtype=np.int64)
    bounds = offsets.tolist()
    for s in range(len(depths)):
        inside = np.flatnonzero(hits[bounds[s] : bounds[s + 1]] >= 0)
        if len(inside):
            want_frame[s] = inside[0]
            want_ids[s] = hits[bounds[s] + int(inside[0])]
    assert (want_frame >= 0).any() and (want_frame < 0).any()
    frames = long_batch[: bounds[-1]]  # offsets cover every frame they are given
    for parallel in (True, False):
        frame, ids = tree.first_hit_per_stack(frames, offsets, parallel=parallel)
        assert np.array_equal(frame, want_frame)
        assert np.array_equal(ids, want_ids)


def test_long_batch_on_disjoint_ranges() -> None:
    # The disjoint fast path (no max-end climb) over a wide, clustered layout
    # like kernel text plus modules ~1 GiB above it.
    text = [
        (0xFFFF_FFFF_8100_0000 + i * 64, 0xFFFF_FFFF_8100_0000 + i * 64 + 48, i)
        for i in range(5000)
    ]
    mods = [
        (0xFFFF_FFFF_C000_0000 + i * 256, 0xFFFF_FFFF_C000_0000 + i * 256 + 200, 10_000 + i)
        for i in range(80)
    ]
    ranges = text + mods
    tree = lpc.IntervalTree(ranges)
    assert tree.is_disjoint
    edges = u64(model.edge_points(ranges))
    qs = np.concatenate([edges] * (PARALLEL_MIN // len(edges) + 1))
    want = model.find_many_vectorized(ranges, qs, chunk=1024)
    for parallel in (True, False):
        assert np.array_equal(tree.find_many(qs, parallel=parallel), want)
