"""Bad input to ``lpc.IntervalTree`` gets a clear Python exception, never a crash;
odd-but-valid input (strided, big-endian, misaligned, narrow integer arrays)
gets the same answers as a plain uint64 array; panics surface as
``lpc.InternalError``; one tree answers many threads at once.

The input rule under test (rust/lpc-py/src/convert.rs): a 1-D C-contiguous
uint64 array is borrowed, any other integer array is converted (negative values
refused with ValueError), bool/float/complex/object/str arrays are refused with
TypeError, arrays of another dimension with ValueError, and every message names
the argument.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import lpc
import numpy as np
import numpy.typing as npt
import pytest

import interval_model as model
from interval_model import U64_MAX

RANGES = [(10, 20, 1), (15, 30, 2), (100, 200, 3), (U64_MAX - 8, U64_MAX, 4)]
QUERIES = [0, 10, 15, 19, 20, 29, 30, 150, 200, U64_MAX - 8, U64_MAX - 1, U64_MAX]


@pytest.fixture
def tree() -> lpc.IntervalTree:
    return lpc.IntervalTree(RANGES)


def u64(values: list[int]) -> npt.NDArray[np.uint64]:
    return np.array(values, dtype=np.uint64)


#: Every argument that goes through the array conversion, as
#: (name in messages, call that passes ``bad`` in that position).
ARRAY_ARGUMENTS: list[tuple[str, Callable[[lpc.IntervalTree, Any], object]]] = [
    ("ips", lambda t, bad: t.find_many(bad)),
    ("ips", lambda t, bad: t.contains_many(bad)),
    ("ips", lambda t, bad: t.first_hit_per_stack(bad, u64([0, 1]))),
    ("offsets", lambda t, bad: t.first_hit_per_stack(u64([1, 2, 3]), bad)),
    ("starts", lambda t, bad: lpc.IntervalTree.from_arrays(bad, u64([5, 6, 7]))),
    ("ends", lambda t, bad: lpc.IntervalTree.from_arrays(u64([1, 2, 3]), bad)),
    ("ids", lambda t, bad: lpc.IntervalTree.from_arrays(u64([1, 2, 3]), u64([5, 6, 7]), bad)),
    ("ids", lambda t, bad: t.without_ids(bad)),
]
ARRAY_IDS = [
    "find_many",
    "contains_many",
    "first_hit.ips",
    "first_hit.offsets",
    "from_arrays.starts",
    "from_arrays.ends",
    "from_arrays.ids",
    "without_ids",
]


# ---- array dtypes and shapes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1.0, 2.0, 3.0]),
        np.array([1.0, 2.0, 3.0], dtype=np.float32),
        np.array([True, False, True]),
        np.array([1, 2, 3], dtype=object),
        np.array(["1", "2", "3"]),
        np.array([b"1", b"2", b"3"]),
        np.array([1 + 0j, 2, 3]),
        np.array(["2024-01-01"] * 3, dtype="datetime64[D]"),
        [1.5, 2.5, 3.5],
    ],
    ids=[
        "float64",
        "float32",
        "bool",
        "object",
        "str",
        "bytes",
        "complex",
        "datetime",
        "float-list",
    ],
)
@pytest.mark.parametrize(("name", "call"), ARRAY_ARGUMENTS, ids=ARRAY_IDS)
def test_non_integer_arrays_are_refused_with_type_error(
    tree: lpc.IntervalTree, name: str, call: Callable[[lpc.IntervalTree, Any], object], bad: Any
) -> None:
    with pytest.raises(TypeError, match=name):
        call(tree, bad)


@pytest.mark.parametrize(("name", "call"), ARRAY_ARGUMENTS, ids=ARRAY_IDS)
def test_python_ints_out_of_range_are_refused_naming_the_element(
    tree: lpc.IntervalTree, name: str, call: Callable[[lpc.IntervalTree, Any], object]
) -> None:
    """A list is read int by int, so an int no column can hold is a ValueError at its position."""
    with pytest.raises(ValueError, match=rf"{name}\[0\]"):
        call(tree, [2**64, 1, 2])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((3, 1), dtype=np.uint64),
        np.zeros((1, 3), dtype=np.int64),
        np.uint64(3),
        3,
        [[1, 2, 3]],
    ],
    ids=["2-D column", "2-D row", "numpy scalar", "int", "nested list"],
)
@pytest.mark.parametrize(("name", "call"), ARRAY_ARGUMENTS, ids=ARRAY_IDS)
def test_arrays_of_other_dimensions_are_refused_with_value_error(
    tree: lpc.IntervalTree, name: str, call: Callable[[lpc.IntervalTree, Any], object], bad: Any
) -> None:
    with pytest.raises(ValueError, match=name):
        call(tree, bad)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", ">i4", ">i8"])
@pytest.mark.parametrize(
    ("name", "call"), ARRAY_ARGUMENTS[:6], ids=ARRAY_IDS[:6]
)  # ids may be negative: not an address
def test_negative_addresses_are_refused_naming_the_element(
    tree: lpc.IntervalTree, name: str, call: Callable[[lpc.IntervalTree, Any], object], dtype: str
) -> None:
    bad = np.array([1, 2, -3], dtype=dtype)
    with pytest.raises(ValueError, match=rf"{name}\[2\] = -3"):
        call(tree, bad)


def test_ids_above_int64_are_refused(tree: lpc.IntervalTree) -> None:
    too_big = u64([1, 2**63])
    with pytest.raises(ValueError, match=r"ids\[1\]"):
        lpc.IntervalTree.from_arrays(u64([1, 2]), u64([5, 6]), too_big)
    with pytest.raises(ValueError, match=r"ids\[1\]"):
        tree.without_ids(too_big)


def test_negative_ids_are_refused_at_build_naming_the_range(tree: lpc.IntervalTree) -> None:
    """-1 marks a miss in every batch answer, so ids must be >= 0."""
    with pytest.raises(lpc.InvalidRangeError, match="id -7 is negative") as info:
        lpc.IntervalTree.from_arrays(
            u64([1, 5]), u64([3, 9]), np.array([0, -7], dtype=np.int64)
        )
    assert info.value.index == 1
    with pytest.raises(lpc.InvalidRangeError) as info:
        tree.with_ranges([(300, 400, 5), (500, 600, -(2**63))])
    assert info.value.index == 1
    # Removing ids that cannot exist is a no-op, not an error.
    assert len(tree.without_ids(np.array([-7], dtype=np.int16))) == len(tree)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[::2],
        lambda a: a[::-1],
        lambda a: a.astype(">u8"),
        lambda a: a.astype(">u8")[::3],
        lambda a: a.astype(np.uint32),
        lambda a: a.astype(np.uint16),
        lambda a: a.astype(np.int64),
        lambda a: a.astype(np.int32)[::2],
        lambda a: np.asfortranarray(a),
        lambda a: a.tolist(),
        lambda a: tuple(a.tolist()),
    ],
    ids=[
        "strided",
        "reversed",
        "big-endian",
        "big-endian-strided",
        "uint32",
        "uint16",
        "int64",
        "int32-strided",
        "fortran-1d",
        "list",
        "tuple",
    ],
)
def test_other_integer_layouts_give_the_uint64_answer(make: Callable[[Any], Any]) -> None:
    # Small addresses so that every dtype can hold them.
    ranges = [(10, 20, 1), (15, 30, 2), (100, 200, 3), (150, 160, 4)]
    tree = lpc.IntervalTree(ranges)
    base = np.arange(0, 240, 3, dtype=np.uint64)
    qs = make(base)
    plain = np.array(qs, dtype=np.uint64)
    want = model.find_many(ranges, plain.tolist())
    assert tree.find_many(qs).tolist() == want
    assert tree.find_many(qs, parallel=False).tolist() == want
    assert tree.contains_many(qs).tolist() == [w >= 0 for w in want]
    # Offsets in the same dtype (reordering them would make them invalid).
    offsets = np.array([0, 3, 3, 9, len(plain)], dtype=np.asarray(qs).dtype)
    frame, _ = tree.first_hit_per_stack(qs, offsets)
    assert frame.tolist() == model.first_hits(ranges, plain.tolist(), offsets.tolist())[0]
    built = lpc.IntervalTree.from_arrays(qs, plain + 1)
    assert built.starts.tolist() == sorted(plain.tolist())


def test_misaligned_uint64_input_is_read_correctly(tree: lpc.IntervalTree) -> None:
    # A uint64 view one byte into a buffer: contiguous but not 8-byte aligned.
    qs = np.ndarray(
        shape=(len(QUERIES),), dtype=np.uint64, buffer=bytearray(8 * len(QUERIES) + 1), offset=1
    )
    qs[:] = QUERIES
    assert not qs.flags.aligned
    want = model.find_many(RANGES, QUERIES)
    assert tree.find_many(qs).tolist() == want
    assert tree.find_many(qs, parallel=False).tolist() == want


def test_python_lists_of_kernel_addresses_are_accepted(tree: lpc.IntervalTree) -> None:
    """Kernel addresses are >= 2**63; mixed with a small value in a Python list,
    ``numpy.asarray`` gives float64, which would both be refused and lose bits."""
    ranges = [(0xFFFF_FFFF_8138_1800, 0xFFFF_FFFF_8138_1B10, 7)]
    kernel = lpc.IntervalTree(ranges)
    qs = [0, 0xFFFF_FFFF_8138_1898, 0xFFFF_FFFF_8138_1B10, 5]
    assert kernel.find_many(qs).tolist() == [-1, 7, -1, -1]
    assert kernel.contains_many(qs).tolist() == [False, True, False, False]
    assert kernel.first_hit_per_stack(qs, [0, 2, 4])[0].tolist() == [1, -1]
    built = lpc.IntervalTree.from_arrays([0xFFFF_FFFF_8138_1800, 16], [0xFFFF_FFFF_8138_1B10, 32])
    assert built.find(0xFFFF_FFFF_8138_1B0F) == 0


def test_empty_python_sequences_are_empty_batches(tree: lpc.IntervalTree) -> None:
    """``[]`` is an empty batch, not a float64 array to refuse."""
    assert tree.find_many([]).tolist() == []
    assert tree.contains_many(()).tolist() == []
    frame, ids = tree.first_hit_per_stack([], [0])
    assert frame.tolist() == [] and ids.tolist() == []
    assert len(tree.without_ids([])) == len(tree)
    assert len(lpc.IntervalTree.from_arrays([], [])) == 0


def test_empty_arrays_are_empty_batches(tree: lpc.IntervalTree) -> None:
    empty = np.array([], dtype=np.uint64)
    assert tree.find_many(empty).tolist() == []
    assert tree.find_many(empty, out=np.array([], dtype=np.int64)).tolist() == []
    assert tree.contains_many(empty).tolist() == []
    frame, ids = tree.first_hit_per_stack(empty, empty)
    assert frame.tolist() == [] and ids.tolist() == []
    frame, ids = tree.first_hit_per_stack(empty, u64([0, 0, 0]))
    assert frame.tolist() == [-1, -1] and ids.tolist() == [-1, -1]
    assert len(tree.without_ids(np.array([], dtype=np.int64))) == len(tree)
    built = lpc.IntervalTree.from_arrays(empty, empty, np.array([], dtype=np.int64))
    assert len(built) == 0 and built.find(0) is None


# ---- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [(5, 5), (6, 5), (U64_MAX, U64_MAX), (U64_MAX, 0)])
@pytest.mark.parametrize("at", [0, 1, 3])
def test_empty_or_inverted_ranges_name_their_index(bad: tuple[int, int], at: int) -> None:
    good = [(1, 2, 0), (3, 9, 1), (0, U64_MAX, 2)]
    ranges = good[:at] + [(bad[0], bad[1], 9)] + good[at:]
    with pytest.raises(lpc.InvalidRangeError) as err:
        lpc.IntervalTree(ranges)
    assert err.value.index == at
    assert isinstance(err.value, ValueError) and isinstance(err.value, lpc.LpcError)
    with pytest.raises(lpc.InvalidRangeError) as err:
        lpc.IntervalTree.from_arrays(u64([r[0] for r in ranges]), u64([r[1] for r in ranges]))
    assert err.value.index == at
    with pytest.raises(lpc.InvalidRangeError) as err:
        lpc.IntervalTree(good).with_ranges(ranges)
    assert err.value.index == at


def test_the_first_bad_range_is_the_one_named() -> None:
    with pytest.raises(lpc.InvalidRangeError) as err:
        lpc.IntervalTree([(1, 2, 0), (9, 3, 1), (4, 4, 2)])
    assert err.value.index == 1
    assert "0x9" in str(err.value) and "0x3" in str(err.value)


@pytest.mark.parametrize(("start", "end"), [(5, 5), (6, 5), (U64_MAX, U64_MAX), (U64_MAX, 0)])
def test_overlapping_refuses_an_empty_window(tree: lpc.IntervalTree, start: int, end: int) -> None:
    with pytest.raises(lpc.InvalidRangeError):
        tree.overlapping(start, end)


def test_from_arrays_lengths_must_agree() -> None:
    with pytest.raises(lpc.InvalidRangeError, match="starts and ends") as err:
        lpc.IntervalTree.from_arrays(u64([1, 2]), u64([3]))
    assert err.value.index is None
    with pytest.raises(lpc.InvalidRangeError, match="starts and ids"):
        lpc.IntervalTree.from_arrays(u64([1, 2]), u64([3, 4]), np.array([1], dtype=np.int64))
    with pytest.raises(ValueError):
        lpc.IntervalTree.from_arrays(u64([1]), u64([3]), np.array([1, 2, 3], dtype=np.int64))


@pytest.mark.parametrize(
    "bad",
    [
        (1, 2),
        (1, 2, 3, 4),
        (),
        5,
        None,
        "abc",
        (1.0, 2, 0),
        (1, 2.5, 0),
        (1, 2, 0.0),
        ("1", "2", "3"),
        (1, 2, None),
    ],
)
@pytest.mark.parametrize("at", [0, 2])
def test_malformed_range_tuples_are_type_errors(bad: object, at: int) -> None:
    """Not three ints: a TypeError (three ints out of range: a ValueError, below)."""
    ranges: list[object] = [(1, 2, 0), (3, 4, 1)]
    ranges.insert(at, bad)
    with pytest.raises(TypeError, match=rf"ranges\[{at}\]"):
        lpc.IntervalTree(ranges)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=rf"ranges\[{at}\]"):
        lpc.IntervalTree().with_ranges(ranges)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        (-1, 2, 0),
        (1, -2, 0),
        (1, 2**64, 0),
        (2**64, 2**64 + 1, 0),
        (1, 2, 2**63),
        (1, 2, -(2**63) - 1),
    ],
)
@pytest.mark.parametrize("at", [0, 2])
def test_range_tuples_with_ints_out_of_range_are_value_errors(
    bad: tuple[int, int, int], at: int
) -> None:
    """As in the batch calls (``from_arrays``): a value out of range is a ValueError."""
    ranges = [(1, 2, 0), (3, 4, 1)]
    ranges.insert(at, bad)
    with pytest.raises(ValueError, match=rf"ranges\[{at}\] = "):
        lpc.IntervalTree(ranges)
    with pytest.raises(ValueError, match=rf"ranges\[{at}\] = "):
        lpc.IntervalTree().with_ranges(ranges)


def test_extreme_but_valid_tuples_are_accepted() -> None:
    tree = lpc.IntervalTree([(0, U64_MAX, 0), (U64_MAX - 1, U64_MAX, 2**63 - 1)])
    assert tree.find(U64_MAX - 1) == 2**63 - 1
    assert tree.find(0) == 0
    # numpy integer scalars and lists work as tuple items and as tuples.
    tree = lpc.IntervalTree([(np.uint64(5), np.int32(9), np.int8(1))])  # type: ignore[list-item]
    assert tree.find(5) == 1


def test_a_non_iterable_or_failing_iterable_raises_its_error() -> None:
    with pytest.raises(TypeError):
        lpc.IntervalTree(5)  # type: ignore[arg-type]

    def broken() -> Any:
        yield (1, 2, 3)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        lpc.IntervalTree(broken())
    with pytest.raises(KeyError, match="boom"):
        lpc.IntervalTree().with_ranges(broken())


@pytest.mark.parametrize("ip", [-1, 2**64, -(2**70)])
def test_scalar_addresses_outside_u64_are_refused(tree: lpc.IntervalTree, ip: int) -> None:
    """A ValueError, as in the batch calls (no longer an OverflowError)."""
    for call in (tree.find, tree.contains, tree.find_all):
        with pytest.raises(ValueError, match=r"ip = .*: addresses must be in \[0, 2\*\*64\)"):
            call(ip)
    with pytest.raises(ValueError, match="start"):
        tree.overlapping(ip, 5)


@pytest.mark.parametrize("ip", [1.0, "12", None, b"1"])
def test_scalar_addresses_of_other_types_are_refused(tree: lpc.IntervalTree, ip: Any) -> None:
    for call in (tree.find, tree.contains, tree.find_all):
        with pytest.raises(TypeError):
            call(ip)


def test_negative_ids_are_refused_or_fully_supported() -> None:
    """``find_many`` marks a miss with -1, so an id of -1 is ambiguous there;
    but ``contains_many`` and ``first_hit_per_stack`` return a mask and a frame
    position and must not confuse a negative id with a miss. Either negative
    ids are refused when the tree is built, or every query sees them."""
    ranges = [(0, 10, -5), (20, 30, -1), (40, 50, 3)]
    with pytest.raises(lpc.InvalidRangeError) as info:
        lpc.IntervalTree(ranges)
    assert info.value.index == 0
    tree = lpc.IntervalTree([(0, 10, 0), (20, 30, 1), (40, 50, 3)])
    qs = u64([5, 25, 45, 35])
    assert tree.contains_many(qs).tolist() == [tree.contains(int(q)) for q in qs]
    frame, ids = tree.first_hit_per_stack(qs, u64([0, 1, 2, 3, 4]))
    assert frame.tolist() == [0, 0, 0, -1]
    assert ids.tolist() == [0, 1, 3, -1]


# ---- out= ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(len(QUERIES), dtype=np.int32),
        np.zeros(len(QUERIES), dtype=np.uint64),
        np.zeros(len(QUERIES), dtype=np.float64),
        np.zeros((len(QUERIES), 1), dtype=np.int64),
        [0] * len(QUERIES),
    ],
    ids=["int32", "uint64", "float64", "2-D", "list"],
)
def test_out_of_the_wrong_type_is_refused(tree: lpc.IntervalTree, bad: Any) -> None:
    with pytest.raises(TypeError):
        tree.find_many(u64(QUERIES), out=bad)


def test_out_type_errors_name_the_argument(tree: lpc.IntervalTree) -> None:
    """PyO3 names it in a note ("while processing 'out'"): the message itself,
    "'ndarray' object is not an instance of 'ndarray'", does not."""
    with pytest.raises(TypeError, match="out"):
        tree.find_many(u64(QUERIES), out=np.zeros(len(QUERIES), dtype=np.int32))


def test_out_of_the_wrong_shape_or_flags_is_refused_and_left_alone(tree: lpc.IntervalTree) -> None:
    qs = u64(QUERIES)
    for length in (0, len(QUERIES) - 1, len(QUERIES) + 1):
        out = np.full(length, 77, dtype=np.int64)
        with pytest.raises(ValueError, match="out"):
            tree.find_many(qs, out=out)
        assert (out == 77).all()
    readonly = np.full(len(QUERIES), 77, dtype=np.int64)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        tree.find_many(qs, out=readonly)
    strided = np.full(2 * len(QUERIES), 77, dtype=np.int64)[::2]
    with pytest.raises(ValueError, match="out"):
        tree.find_many(qs, out=strided)
    assert (strided == 77).all()


def test_out_aliasing_the_input_is_refused_or_correct(tree: lpc.IntervalTree) -> None:
    # The same memory as uint64 input and int64 output: Rust may not hold a
    # shared and a mutable borrow of it at once.
    buffer = u64(QUERIES)
    want = model.find_many(RANGES, QUERIES)
    try:
        got = tree.find_many(buffer, out=buffer.view(np.int64))
    except ValueError:
        assert buffer.tolist() == QUERIES, "refused, and the input is untouched"
    else:
        assert got.tolist() == want


def test_misaligned_out_is_refused_or_filled(tree: lpc.IntervalTree) -> None:
    out = np.ndarray(
        shape=(len(QUERIES),), dtype=np.int64, buffer=bytearray(8 * len(QUERIES) + 1), offset=1
    )
    out[:] = 77
    try:
        tree.find_many(u64(QUERIES), out=out)
    except ValueError:
        assert (out == 77).all()
    else:
        assert out.tolist() == model.find_many(RANGES, QUERIES)


# ---- CSR offsets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "index"),
    [
        ([0, 3, 2], 2),
        ([0, 6], 1),
        ([7], 0),
        ([2, 1, 1], 1),
        ([0, 5, 5, 5, 0], 4),
        ([0, 2**64 - 1], 1),
    ],
)
def test_bad_offsets_name_their_index(
    tree: lpc.IntervalTree, offsets: list[int], index: int
) -> None:
    ips = u64([10, 11, 150, 0, 5])
    with pytest.raises(ValueError, match=rf"offsets\[{index}\]"):
        tree.first_hit_per_stack(ips, u64(offsets))
    with pytest.raises(ValueError, match=rf"offsets\[{index}\]"):
        tree.first_hit_per_stack(ips, u64(offsets), parallel=False)


@pytest.mark.parametrize(
    ("offsets", "message"),
    [
        ([1, 3, 3, 6], r"offsets\[0\] = 1 is invalid: the first offset must be 0"),
        ([0, 3, 3, 5], r"offsets: the last offset must be the number of frames \(6\), got 5"),
        ([], r"offsets: the last offset must be the number of frames \(6\), got no offset"),
        ([0], r"offsets: .*\(6\), got 0"),
        ([6], r"offsets\[0\] = 6 is invalid: the first offset must be 0"),
        ([0, 4, 2, 6], r"offsets\[2\] = 2 is invalid: below the previous offset"),
    ],
)
def test_offsets_must_partition_the_frames(
    tree: lpc.IntervalTree, offsets: list[int], message: str
) -> None:
    """CSR offsets start at 0, never decrease and end at the frame count:
    no frame belongs to no stack (a caller's off-by-one is an error, not a
    silently shorter scan)."""
    ips = u64([150, 0, 12, 0, 25, 150])
    tokens = np.zeros(len(ips), dtype=np.uint32)
    for parallel in (False, True):
        with pytest.raises(ValueError, match=message):
            tree.first_hit_per_stack(ips, u64(offsets), parallel=parallel)
        with pytest.raises(ValueError, match=message):
            tree.first_hit_per_token_stack(u64([150]), tokens, u64(offsets), parallel=parallel)
    frame, ids = tree.first_hit_per_stack(ips, u64([0, 1, 3, 3, 6]))
    assert frame.tolist() == [0, 1, -1, 1]
    assert ids.tolist() == [3, 1, -1, 2]
    for offsets in ([], [0]):  # no frames: no stack, or one empty stack... of none
        frame, ids = tree.first_hit_per_stack(u64([]), np.array(offsets, dtype=np.uint64))
        assert frame.tolist() == [] and ids.tolist() == []


# ---- scalar calls: the batch calls' rules ---------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 2**64, -(2**70), 2**80])
@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("ip", lambda t, bad: t.find(bad)),
        ("ip", lambda t, bad: t.contains(bad)),
        ("ip", lambda t, bad: t.find_all(bad)),
        ("start", lambda t, bad: t.overlapping(bad, 5)),
        ("end", lambda t, bad: t.overlapping(0, bad)),
        ("ranges", lambda t, bad: lpc.IntervalTree([(1, 2, 0), (bad, 5, 1)])),
        ("ranges", lambda t, bad: lpc.IntervalTree([(0, bad, 1)])),
        ("ranges", lambda t, bad: t.with_ranges([(0, bad, 1)])),
    ],
    ids=["find", "contains", "find_all", "overlapping.start", "overlapping.end", "new.start",
         "new.end", "with_ranges"],
)  # fmt: skip
def test_scalar_ints_out_of_range_are_value_errors(
    tree: lpc.IntervalTree, name: str, call: Callable[[lpc.IntervalTree, Any], object], bad: int
) -> None:
    with pytest.raises(ValueError, match=name) as err:
        call(tree, bad)
    assert not isinstance(err.value, OverflowError)


def test_scalar_calls_still_take_numpy_integers(tree: lpc.IntervalTree) -> None:
    assert tree.find(np.uint64(15)) == tree.find(15) == 2
    assert tree.find_all(np.int64(15)) == tree.find_all(15)
    assert tree.overlapping(np.uint64(0), np.int32(12)) == tree.overlapping(0, 12)
    with pytest.raises(ValueError, match="ip"):
        tree.find(np.int64(-1))


@pytest.mark.parametrize("flag", [True, False, np.bool_(True)])
def test_a_bool_is_not_an_address(tree: lpc.IntervalTree, flag: Any) -> None:
    with pytest.raises(TypeError, match="ip"):
        tree.find(flag)
    with pytest.raises(TypeError, match="ip"):
        tree.contains(flag)
    with pytest.raises(TypeError, match="start"):
        tree.overlapping(flag, 10)


def test_a_wrong_out_is_named_in_the_message_itself(tree: lpc.IntervalTree) -> None:
    for bad, got in [
        (np.zeros(len(QUERIES), dtype=np.int32), "dtype int32"),
        (np.zeros((len(QUERIES), 1), dtype=np.int64), "2-D"),
        ([0] * len(QUERIES), "list"),
    ]:
        with pytest.raises(TypeError) as err:
            tree.find_many(u64(QUERIES), out=bad)
        assert str(err.value).startswith("out: expected a writable 1-D int64 numpy array")
        assert got in str(err.value)


def test_an_out_of_range_token_is_named(tree: lpc.IntervalTree) -> None:
    tokens = np.array([0, 1, 7, 1], dtype=np.uint32)
    with pytest.raises(ValueError, match=r"tokens\[2\] = 7 is out of range: there are 2 token"):
        tree.first_hit_per_token_stack(u64([15, 150]), tokens, u64([0, 2, 4]))


# ---- panics and threads ----------------------------------------------------------------------


def test_a_rust_panic_is_an_internal_error() -> None:
    for _ in range(3):
        with pytest.raises(lpc.InternalError, match="boom from the test") as err:
            lpc._core._panic_for_tests("boom from the test")
        assert isinstance(err.value, lpc.LpcError)
        assert isinstance(err.value, RuntimeError)
    # The interpreter and the extension carry on.
    assert lpc.IntervalTree(RANGES).find(15) == 2


def test_a_rust_panic_does_not_abort_the_interpreter() -> None:
    code = (
        "import lpc\n"
        "try:\n"
        "    lpc._core._panic_for_tests('x')\n"
        "except lpc.InternalError:\n"
        "    print('caught')\n"
        "print(lpc.IntervalTree([(1, 5, 9)]).find(2))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["caught", "9"]


def test_a_caught_panic_prints_nothing_on_stderr() -> None:
    """The message is in the InternalError: Rust's "thread panicked at" report
    on stderr would only repeat it (unless RUST_BACKTRACE asks for it)."""
    code = (
        "import lpc\n"
        "try:\n"
        "    lpc._core._panic_for_tests('quiet please')\n"
        "except lpc.InternalError as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "quiet please" in done.stdout
    assert done.stderr == ""
    verbose = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**env, "RUST_BACKTRACE": "1"},
    )  # fmt: skip
    assert "panicked" in verbose.stderr and "quiet please" in verbose.stderr


def test_one_tree_serves_eight_threads() -> None:
    rng = np.random.default_rng(88)
    starts = rng.integers(0, 1_000_000, size=5000, dtype=np.uint64)
    ends = starts + rng.integers(1, 2000, size=5000, dtype=np.uint64)
    ids = rng.integers(0, 100, size=5000, dtype=np.int64)
    tree = lpc.IntervalTree.from_arrays(starts, ends, ids)
    assert not tree.is_disjoint
    qs = rng.integers(0, 1_010_000, size=70_000, dtype=np.uint64)  # long enough to go parallel
    offsets = np.arange(0, len(qs) + 1, 7, dtype=np.uint64)
    serial_many = tree.find_many(qs, parallel=False)
    serial_stacks = tree.first_hit_per_stack(qs, offsets, parallel=False)
    singles = qs[:300].tolist()
    serial_single = [tree.find(q) for q in singles]

    barrier = threading.Barrier(8)
    failures: list[str] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            for round_ in range(3):
                parallel = (n + round_) % 2 == 0
                if not np.array_equal(tree.find_many(qs, parallel=parallel), serial_many):
                    failures.append(f"thread {n}: find_many(parallel={parallel})")
                out = np.empty(len(qs), dtype=np.int64)
                tree.find_many(qs, out=out, parallel=parallel)
                if not np.array_equal(out, serial_many):
                    failures.append(f"thread {n}: find_many(out=, parallel={parallel})")
                frame, hit = tree.first_hit_per_stack(qs, offsets, parallel=parallel)
                if not (
                    np.array_equal(frame, serial_stacks[0])
                    and np.array_equal(hit, serial_stacks[1])
                ):
                    failures.append(f"thread {n}: first_hit_per_stack(parallel={parallel})")
                if [tree.find(q) for q in singles] != serial_single:
                    failures.append(f"thread {n}: find")
        except Exception as exc:  # noqa: BLE001 - reported through the list
            failures.append(f"thread {n}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
