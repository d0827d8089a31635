"""docs/livepatch.md §Scenarios: each named scenario, under each model it predicts for.

The scenario reports facts (who blocked, which errno, which versions ran,
which properties broke); the predictions of docs/livepatch.md are ``Scenario.expected``.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from lpc.sim import expected, scenarios
from lpc.sim.scenarios import SCENARIOS, run_scenario

LIVEPATCH_MD = Path(__file__).parent.parent / "docs" / "livepatch.md"

CASES = [(name, model) for name, sc in SCENARIOS.items() for model in sc.expected]


def test_every_scenario_from_s13_to_s27_is_there() -> None:
    assert {f"S{n}" for n in range(13, 28)} <= SCENARIOS.keys()
    assert {"S11", "S12"} <= SCENARIOS.keys()  # reversal and force


@pytest.mark.parametrize(("name", "model"), CASES)
def test_scenario_outcome_matches_its_expectation(name: str, model: str) -> None:
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


def test_scenarios_are_named_documented_functions_registered_with_their_section() -> None:
    for name, sc in SCENARIOS.items():
        assert not re.fullmatch(r"s\d+", sc.fn.__name__), sc.fn.__name__
        assert sc.fn.__doc__ and f"docs/livepatch.md §{name} " in sc.fn.__doc__, name
        assert sc.source.startswith(f"docs/livepatch.md §{name}"), sc.source
        assert set(sc.variants) <= set(sc.expected), name


def test_scenarios_do_not_branch_on_a_model_name() -> None:
    source = inspect.getsource(scenarios)
    assert not re.search(r"\bmodel\s*[!=]=|[!=]=\s*\"(klp|kgraft|kpatch|ksplice|null|leave_)"
                         r"|model\.name\s*[!=]=|flavor", source)


def _headings() -> list[str]:
    titles = re.findall(r"^#{2,4} (.+)$", LIVEPATCH_MD.read_text(), re.M)
    # Cited by what comes before a colon ("§Failure mode 2"), a scenario by its id ("§S11").
    return [*titles, *(t.split(":")[0] for t in titles),
            *(t.split()[0] for t in titles if re.match(r"S\d+ ", t))]


def test_every_citation_of_docs_livepatch_md_names_one_of_its_sections() -> None:
    texts = [scenarios.__doc__ or "", expected.__doc__ or "", *expected.SOURCES.values(),
             *(d.verdict for d in expected.DEVIATIONS.values())]
    texts += [t for sc in SCENARIOS.values() for t in (sc.source, sc.fn.__doc__ or "")]
    headings = _headings()
    cited = [rest for t in texts for rest in " ".join(t.split()).split("docs/livepatch.md §")[1:]]
    assert len(cited) > 40
    for rest in cited:
        assert any(re.match(re.escape(h) + r"\b", rest) for h in headings), rest
