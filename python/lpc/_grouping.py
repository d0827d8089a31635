"""Numpy kernels that group half a million tasks without a Python loop per task.

Snapshots hold few distinct situations; :mod:`lpc.facts` and :mod:`lpc.check`
use these to give equal rows of integer columns one dense id, so that a model
judges one task per group. Nothing here knows what the columns mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DENSE_LIMIT", "factorize", "group", "name_flags", "per_task"]

def name_flags(names: Sequence[str], test: Callable[[str], bool | int]) -> npt.NDArray[np.uint8]:
    """A per-name lookup table of ``test`` (names are few; frames are millions)."""
    return np.fromiter((int(test(n)) for n in names), dtype=np.uint8, count=len(names))


#: Above this many possible values, grouping sorts instead of using a dense table.
DENSE_LIMIT = 1 << 22


def per_task(
    reduce: np.ufunc, offsets: npt.NDArray[np.int64], per_frame: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """``reduce`` (add, bitwise_or) of a per-frame column over each task's CSR
    segment; an empty segment gives 0."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=per_frame.dtype)
    filled = offsets[1:] > offsets[:-1]
    if per_frame.size and filled.any():
        out[filled] = reduce.reduceat(per_frame, offsets[:-1][filled])
    return out


def factorize(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense ids for integer keys, numbered in order of first appearance, and
    the position of each id's first appearance.

    Small non-negative keys go through a dense table (O(n), no sort); others
    through a sort. Grouping half a million tasks costs about a millisecond.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(keys.min()), int(keys.max())
    if low >= 0 and high < DENSE_LIMIT:
        first = np.full(high + 1, n, dtype=np.int64)
        np.minimum.at(first, keys, np.arange(n, dtype=np.int64))
        reps = np.sort(first[first < n])
        ids = np.empty(high + 1, dtype=np.int64)
        ids[keys[reps]] = np.arange(len(reps), dtype=np.int64)
        return ids[keys], reps
    _, at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(at)
    rank = np.empty(len(at), dtype=np.int64)
    rank[order] = np.arange(len(at), dtype=np.int64)
    return rank[inverse.reshape(-1)], at[order].astype(np.int64)


def group(*columns: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense id of each row of these equal-length integer columns (rows equal
    ⇔ ids equal), in order of first appearance, and each id's first row.

    Columns (bool or small ints, any width) are packed in place into one
    mixed-radix int64 key while its range stays small; when it would not, the
    key so far is re-densified (its range becomes the number of distinct rows
    so far) before the next column goes in. One key array, no temporaries of
    the columns' length: on half a million tasks, fresh pages cost more than
    the arithmetic.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        col = column.view(np.uint8) if column.dtype == np.bool_ else column
        if col.dtype == np.uint64:  # int64 keys: the same bits, then compared as signed
            col = col.view(np.int64)
        low = int(col.min()) if col.size else 0
        width = (int(col.max()) - low + 1) if col.size else 1
        if span * width >= DENSE_LIMIT:
            key, reps = factorize(key)
            span = max(len(reps), 1)
            if span * width >= DENSE_LIMIT:  # a wide column: densify it alone first
                col, col_reps = factorize(col.astype(np.int64))
                width, low = max(len(col_reps), 1), 0
        key *= width
        key += col
        if low:
            key -= low
        span *= width
    return factorize(key)

