"""within_patched_set(ip) at scale: lpc against the baselines, in one run.

Workload (see workload.py, the same construction as ../shared/bench/ivlimit.c):
the real kallsyms of a 6.18 machine, K random patched functions, 1M
return-address-like queries with 10% or 90% inside patched functions. Every
method's answers are checked against the known truth before it is timed.
`extra_info["queries"]` holds the queries per round, so ns/query = time/queries
(benches/report.py turns the JSON into the README table of ratios).

    pytest benches/test_bench_intervals.py --benchmark-only
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from conftest import workload
from workload import Workload

import lpc

KS = [10, 1000, 10000, "all"]
HITS = [0.10, 0.90]
SINGLE_QUERIES = 20_000  # per-call methods run over a prefix of the stream
SLOW_QUERIES = 5_000  # pure-Python trees: microseconds per lookup

Answer = Callable[[], npt.NDArray[np.int64]]


def lpc_tree(w: Workload) -> lpc.IntervalTree:
    return lpc.IntervalTree.from_arrays(w.starts, w.ends, w.ids)


def numpy_searchsorted(w: Workload, queries: npt.NDArray[np.uint64]) -> Answer:
    """The reference: predecessor by searchsorted, then the end check."""

    def run() -> npt.NDArray[np.int64]:
        i = np.searchsorted(w.starts, queries, side="right") - 1
        j = np.maximum(i, 0)
        return np.where((i >= 0) & (queries < w.ends[j]), w.ids[j], -1)

    return run


def python_bisect(w: Workload, queries: list[int]) -> Answer:
    starts = [int(x) for x in w.starts]
    ends = [int(x) for x in w.ends]
    ids = [int(x) for x in w.ids]

    def run() -> npt.NDArray[np.int64]:
        out = []
        for q in queries:
            i = bisect.bisect_right(starts, q) - 1
            out.append(ids[i] if i >= 0 and q < ends[i] else -1)
        return np.array(out, dtype=np.int64)

    return run


def intervaltree_package(w: Workload, queries: list[int]) -> Answer:
    import intervaltree

    tree = intervaltree.IntervalTree.from_tuples(
        (int(s), int(e), int(i)) for s, e, i in zip(w.starts, w.ends, w.ids)
    )

    def run() -> npt.NDArray[np.int64]:
        out = []
        for q in queries:
            hits = tree.at(q)
            out.append(next(iter(hits)).data if hits else -1)
        return np.array(out, dtype=np.int64)

    return run


def ncls_package(w: Workload, queries: npt.NDArray[np.uint64]) -> Answer:
    """ncls keys are int64: addresses become offsets from the lowest start."""
    from ncls import NCLS

    base = w.starts[0]
    nc = NCLS(
        (w.starts - base).astype(np.int64),
        (w.ends - base).astype(np.int64),
        np.arange(len(w.starts), dtype=np.int64),
    )
    shifted = (queries - np.minimum(queries, base)).astype(np.int64)
    below = queries < base
    qidx = np.arange(len(queries), dtype=np.int64)

    def run() -> npt.NDArray[np.int64]:
        q_hit, r_hit = nc.first_overlap_both(shifted, shifted + 1, qidx)
        out = np.full(len(queries), -1, dtype=np.int64)
        out[q_hit] = w.ids[r_hit]
        out[below] = -1
        return out

    return run


@pytest.mark.parametrize("hit", HITS, ids=lambda h: f"hit{int(h * 100)}")
@pytest.mark.parametrize("k", KS, ids=lambda k: f"K{k}")
@pytest.mark.parametrize(
    "method",
    [
        "lpc_batch",
        "lpc_batch_parallel",
        "lpc_single",
        "numpy_searchsorted",
        "ncls",
        "python_bisect",
        "intervaltree",
    ],
)
def test_lookup(benchmark, method: str, k: int | str, hit: float) -> None:  # type: ignore[no-untyped-def]
    w = workload(k, hit)
    queries = w.queries
    if method in ("lpc_single", "python_bisect"):
        queries = queries[:SINGLE_QUERIES]
    elif method == "intervaltree":
        queries = queries[:SLOW_QUERIES]
    truth = w.truth[: len(queries)]
    as_ints = [int(q) for q in queries]
    run: Answer
    if method.startswith("lpc_batch"):
        tree = lpc_tree(w)
        out = np.empty(len(queries), dtype=np.int64)
        parallel = method.endswith("parallel")

        def run() -> npt.NDArray[np.int64]:
            return tree.find_many(queries, out, parallel=parallel)

    elif method == "lpc_single":
        find = lpc_tree(w).find

        def run() -> npt.NDArray[np.int64]:
            return np.array([-1 if (r := find(q)) is None else r for q in as_ints], dtype=np.int64)

    elif method == "numpy_searchsorted":
        run = numpy_searchsorted(w, queries)
    elif method == "ncls":
        run = ncls_package(w, queries)
    elif method == "python_bisect":
        run = python_bisect(w, as_ints)
    else:
        run = intervaltree_package(w, as_ints)
    np.testing.assert_array_equal(run(), truth)
    benchmark.group = f"lookup K={k} hit={hit:.0%}"
    benchmark.extra_info.update(queries=len(queries), k=str(k), hit=hit, method=method)
    benchmark.pedantic(run, rounds=5 if len(queries) > SINGLE_QUERIES else 3, iterations=1)


@pytest.mark.parametrize("k", KS, ids=lambda k: f"K{k}")
def test_single_call_only(benchmark, k: int | str) -> None:  # type: ignore[no-untyped-def]
    """One `find` per address in a plain loop, results discarded: the per-call cost."""
    w = workload(k, 0.10)
    find = lpc_tree(w).find
    queries = [int(q) for q in w.queries[:SINGLE_QUERIES]]

    def run() -> None:
        for q in queries:
            find(q)

    benchmark.group = "single call (loop only)"
    benchmark.extra_info.update(queries=len(queries), k=str(k), hit=0.10, method="lpc_find_loop")
    benchmark.pedantic(run, rounds=7, iterations=1)


@pytest.mark.parametrize("k", [10000, "all"], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("operation", ["build", "rebuild_add", "rebuild_remove"])
def test_build(benchmark, operation: str, k: int | str) -> None:  # type: ignore[no-untyped-def]
    w = workload(k, 0.10)
    tree = lpc_tree(w)
    one = [(1, 2, 10**12)]  # an id no function has
    victim = np.array([int(w.ids[len(w.ids) // 2])], dtype=np.int64)
    if operation == "build":

        def run() -> lpc.IntervalTree:
            return lpc.IntervalTree.from_arrays(w.starts, w.ends, w.ids)

    elif operation == "rebuild_add":

        def run() -> lpc.IntervalTree:
            return tree.with_ranges(one)

    else:

        def run() -> lpc.IntervalTree:
            return tree.without_ids(victim)

    benchmark.group = f"build K={k}"
    benchmark.extra_info.update(
        k=str(k), operation=operation, ranges=len(tree), bytes_per_range=tree.nbytes / len(tree)
    )
    benchmark.pedantic(run, rounds=20, iterations=1)
