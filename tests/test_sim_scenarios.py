"""livepatch-anchors.md §(d): each named scenario, under each model it predicts for.

The scenario reports facts (who blocked, which errno, which versions ran,
which properties broke); the anchors' predictions are ``Scenario.expected``.
"""

from __future__ import annotations

import pytest

from lpc.sim.scenarios import SCENARIOS, run_scenario

CASES = [(name, model) for name, sc in SCENARIOS.items() for model in sc.expected]


def test_every_scenario_from_s13_to_s27_is_there() -> None:
    assert {f"S{n}" for n in range(13, 28)} <= SCENARIOS.keys()
    assert {"S11", "S12"} <= SCENARIOS.keys()  # reversal and force


@pytest.mark.parametrize(("name", "model"), CASES)
def test_scenario_outcome_matches_the_anchors(name: str, model: str) -> None:
    outcome = run_scenario(name, model)
    want = SCENARIOS[name].expected[model]
    got = {k: outcome.facts.get(k) for k in want}
    assert got == dict(want), outcome.text()


def test_scenarios_are_deterministic() -> None:
    a = run_scenario("S11", "klp")
    b = run_scenario("S11", "klp")
    assert a.facts == b.facts and a.trace == b.trace


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'S99'"):
        run_scenario("S99", "klp")
