"""The stack check for a whole machine at once: 100k tasks x 30 frames against
1000 patched functions of the real 6.18 kallsyms.

Methods, answers checked against each other before timing:
- ``lpc``: ``IntervalTree.first_hit_per_stack`` over the CSR frame array (Rust,
  GIL released), one thread and all threads;
- ``numpy``: ``searchsorted`` + end check per frame, then the first hit per
  stack with ``np.unique`` — the best a pure-numpy scanner does;
- ``kernel_loop``: ``klp_check_stack``'s shape (for each function, for each
  frame: a range test), vectorised over frames with numpy but still
  O(functions x frames); timed on 2% of the stacks and scaled.

    pytest benches/test_bench_scan.py --benchmark-only
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from conftest import functions

import lpc

TASKS = 100_000
DEPTH = 30
PATCHED = 1000


def machine() -> tuple[lpc.IntervalTree, npt.NDArray[np.uint64], npt.NDArray[np.uint64],
                       npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    f = functions()
    rng = np.random.default_rng(7)
    patched = np.sort(rng.choice(len(f.starts), PATCHED, replace=False))
    tree = lpc.IntervalTree.from_arrays(f.starts[patched], f.ends[patched], patched)
    # Return addresses inside random functions: ~1 stack in 3 holds a patched frame.
    pick = rng.integers(0, len(f.starts), TASKS * DEPTH)
    hot = rng.random(TASKS * DEPTH) < 0.013
    pick[hot] = patched[rng.integers(0, PATCHED, int(hot.sum()))]
    sizes = f.ends[pick] - f.starts[pick]
    ips = f.starts[pick] + np.maximum(sizes // 2, 1).astype(np.uint64)
    offsets = np.arange(0, TASKS * DEPTH + 1, DEPTH, dtype=np.uint64)
    return tree, ips, offsets, f.starts[patched], f.ends[patched]


def numpy_scan(starts: npt.NDArray[np.uint64], ends: npt.NDArray[np.uint64],
               ips: npt.NDArray[np.uint64], offsets: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    i = np.searchsorted(starts, ips, side="right") - 1
    hit = (i >= 0) & (ips < ends[np.maximum(i, 0)])
    frame = np.full(len(offsets) - 1, -1, dtype=np.int64)
    where = np.flatnonzero(hit)
    owner = where // DEPTH
    owners, first = np.unique(owner, return_index=True)
    frame[owners] = where[first] - owners * DEPTH
    return frame


def kernel_loop(starts: npt.NDArray[np.uint64], ends: npt.NDArray[np.uint64],
                ips: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    blocked = np.zeros(len(ips) // DEPTH, dtype=bool)
    stacks = ips.reshape(-1, DEPTH)
    for s, e in zip(starts, ends):  # klp_check_stack: every func, every frame
        blocked |= ((stacks >= s) & (stacks < e)).any(axis=1)
    return blocked


@pytest.mark.parametrize("method", ["lpc_serial", "lpc_parallel", "numpy", "kernel_loop"])
def test_scan(benchmark: Any, method: str) -> None:
    tree, ips, offsets, starts, ends = machine()
    frame, _ = tree.first_hit_per_stack(ips, offsets, parallel=False)
    assert (frame >= 0).mean() > 0.2
    scale = 1.0
    if method.startswith("lpc"):
        par = method == "lpc_parallel"

        def run() -> object:
            return tree.first_hit_per_stack(ips, offsets, parallel=par)

        np.testing.assert_array_equal(run()[0], frame)  # type: ignore[index]
    elif method == "numpy":

        def run() -> object:
            return numpy_scan(starts, ends, ips, offsets)

        np.testing.assert_array_equal(numpy_scan(starts, ends, ips, offsets), frame)
    else:
        part = ips[: (TASKS // 50) * DEPTH]
        scale = 50.0

        def run() -> object:
            return kernel_loop(starts, ends, part)

        np.testing.assert_array_equal(kernel_loop(starts, ends, part), frame[: TASKS // 50] >= 0)
    benchmark.group = "scan 100k tasks x 30 frames, 1000 patched"
    benchmark.extra_info.update(method=method, tasks=TASKS, frames=TASKS * DEPTH, scale=scale)
    benchmark.pedantic(run, rounds=5, iterations=1)
