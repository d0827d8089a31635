"""A state machine that grows and shrinks an ``lpc.IntervalTree`` through its
derivations (``with_ranges`` / ``without_ids``) and checks every query against
the brute-force model after each step, including on older trees, which must not
change when a new one is derived from them.
"""

from __future__ import annotations

import lpc
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import interval_model as model
from interval_model import U64_MAX, Range, range_lists


class IntervalTreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tree = lpc.IntervalTree()
        self.ranges: list[Range] = []
        # An earlier (tree, ranges) pair: derivations must leave it as it was.
        self.snapshot: tuple[lpc.IntervalTree, list[Range]] = (self.tree, [])

    def _addresses(self, data: st.DataObject, max_size: int = 24) -> list[int]:
        return data.draw(model.queries_for(self.ranges, max_size=max_size))

    # ---- transitions -------------------------------------------------------------------------

    @rule(extra=range_lists(max_size=8))
    def add_ranges(self, extra: list[Range]) -> None:
        self.tree = self.tree.with_ranges(extra)
        self.ranges = self.ranges + extra

    @rule(extra=range_lists(max_size=4), data=st.data())
    def add_ranges_with_a_bad_one(self, extra: list[Range], data: st.DataObject) -> None:
        at = data.draw(st.integers(0, len(extra)))
        start = data.draw(model.interesting_addresses)
        extra.insert(at, (start, data.draw(st.integers(0, start)), 1))
        with pytest.raises(lpc.InvalidRangeError) as err:
            self.tree.with_ranges(extra)
        assert err.value.index == at

    @precondition(lambda self: bool(self.ranges))
    @rule(data=st.data())
    def remove_present_ids(self, data: st.DataObject) -> None:
        present = sorted({r[2] for r in self.ranges})
        gone = data.draw(st.lists(st.sampled_from(present), min_size=1, max_size=3))
        self.tree = self.tree.without_ids(gone)
        self.ranges = [r for r in self.ranges if r[2] not in gone]

    @rule(ids=st.lists(model.range_ids, max_size=3))
    def remove_any_ids(self, ids: list[int]) -> None:
        self.tree = self.tree.without_ids(np.array(ids, dtype=np.int64))
        self.ranges = [r for r in self.ranges if r[2] not in ids]

    @rule()
    def take_snapshot(self) -> None:
        self.snapshot = (self.tree, list(self.ranges))

    # ---- queries -----------------------------------------------------------------------------

    @rule(data=st.data())
    def point_queries(self, data: st.DataObject) -> None:
        for q in self._addresses(data, max_size=12):
            want = model.find_all(self.ranges, q)
            assert self.tree.find_all(q) == want
            assert self.tree.find(q) == (want[0] if want else None)

    @rule(data=st.data(), parallel=st.booleans())
    def batch_query(self, data: st.DataObject, parallel: bool) -> None:
        qs = self._addresses(data)
        got = self.tree.find_many(np.array(qs, dtype=np.uint64), parallel=parallel)
        assert got.tolist() == model.find_many(self.ranges, qs)

    @rule(data=st.data())
    def range_query(self, data: st.DataObject) -> None:
        edges = model.edge_points(self.ranges)
        a, b = sorted(
            data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=2, unique=True))
        )
        assert self.tree.overlapping(a, b) == model.overlapping(self.ranges, a, b)

    @rule(data=st.data())
    def snapshot_is_unchanged(self, data: st.DataObject) -> None:
        old_tree, old_ranges = self.snapshot
        assert len(old_tree) == len(old_ranges)
        for q in data.draw(model.queries_for(old_ranges, max_size=8)):
            assert old_tree.find_all(q) == model.find_all(old_ranges, q)

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def size_and_shape(self) -> None:
        assert len(self.tree) == len(self.ranges)
        assert self.tree.is_disjoint == model.is_disjoint(self.ranges)
        assert self.tree.find(U64_MAX) is None, "a half-open range cannot hold 2**64 - 1"


IntervalTreeMachine.TestCase.settings = settings(
    IntervalTreeMachine.TestCase.settings, max_examples=100, stateful_step_count=30
)
TestIntervalTreeMachine = IntervalTreeMachine.TestCase
