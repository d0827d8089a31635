"""The benchmark workload, built exactly as ../shared/bench/ivlimit.c builds it.

Functions: text symbols (t/T/w/W) of a kallsyms file; a function's range is
[address, next distinct address) within vmlinux or one module (the kernel's
kallsyms_lookup_size_offset rule); ranges over 64 KiB (gaps after section
markers) and addresses held only by __pfx_ padding symbols are not functions.
Patched set: K random functions. Queries: return-address-like points (offset
1..size-1) inside random functions, a given fraction inside patched ones, so
the expected answer of every query is known by construction.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
KALLSYMS = Path(
    os.environ.get("LPC_BENCH_KALLSYMS", REPO / "tests" / "data" / "kallsyms-6.18.txt.gz")
)
MAX_FUNCTION = 65536


@dataclass(frozen=True)
class Functions:
    starts: npt.NDArray[np.uint64]
    ends: npt.NDArray[np.uint64]


def load_functions(path: Path = KALLSYMS) -> Functions:
    """Function ranges of a kallsyms file (see the module docstring)."""
    rows: dict[tuple[str, int], bool] = {}  # (segment, address) -> only padding so far
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3 or parts[1] not in ("t", "T", "w", "W"):
                continue
            try:
                address = int(parts[0], 16)
            except ValueError:
                continue
            segment = parts[3] if len(parts) > 3 else "[vmlinux]"
            padding = parts[2].startswith("__pfx_")
            rows[(segment, address)] = rows.get((segment, address), True) and padding
    starts: list[int] = []
    ends: list[int] = []
    by_segment: dict[str, list[tuple[int, bool]]] = {}
    for (segment, address), padding in rows.items():
        by_segment.setdefault(segment, []).append((address, padding))
    for entries in by_segment.values():
        entries.sort()
        for (address, padding), (following, _) in zip(entries, entries[1:]):
            if not padding and following - address <= MAX_FUNCTION:
                starts.append(address)
                ends.append(following)
    order = np.argsort(np.array(starts, dtype=np.uint64), kind="stable")
    return Functions(
        np.array(starts, dtype=np.uint64)[order], np.array(ends, dtype=np.uint64)[order]
    )


@dataclass(frozen=True)
class Workload:
    k: int
    starts: npt.NDArray[np.uint64]  # patched ranges, sorted
    ends: npt.NDArray[np.uint64]
    ids: npt.NDArray[np.int64]  # function index of each patched range
    queries: npt.NDArray[np.uint64]
    truth: npt.NDArray[np.int64]  # id of the patched function hit, or -1


def make_workload(
    functions: Functions, k: int, queries: int = 1_000_000, hit_fraction: float = 0.10, seed: int = 1
) -> Workload:
    rng = np.random.default_rng(seed + k)
    n = len(functions.starts)
    k = min(k, n)
    perm = rng.permutation(n)
    patched = np.sort(perm[:k])
    unpatched = perm[k:]
    want_hit = (rng.random(queries) < hit_fraction) | (len(unpatched) == 0)
    chosen = np.where(
        want_hit,
        patched[rng.integers(0, k, queries)],
        unpatched[rng.integers(0, max(len(unpatched), 1), queries)] if len(unpatched) else 0,
    )
    sizes = functions.ends[chosen] - functions.starts[chosen]
    offsets = np.where(sizes > 1, 1 + (rng.integers(0, 2**62, queries).astype(np.uint64) % np.maximum(sizes - 1, 1)), 0)
    q = functions.starts[chosen] + offsets.astype(np.uint64)
    is_patched = np.zeros(n, dtype=bool)
    is_patched[patched] = True
    truth = np.where(is_patched[chosen], chosen, -1).astype(np.int64)
    return Workload(
        k,
        functions.starts[patched],
        functions.ends[patched],
        patched.astype(np.int64),
        q.astype(np.uint64),
        truth,
    )
