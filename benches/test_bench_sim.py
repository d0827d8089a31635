"""The transition simulator's speed: simulated events per second, and what a
Hypothesis budget costs.

* ``adversarial``: the Hypothesis driver's runs (choices → events) on 200 fixed
  drawn examples, per model; ``extra_info["events"]`` is the events per round,
  so events/s = events / time;
* ``timed``: the seeded clock on the reference system (40 s of simulated time);
* ``survey``: one model over N derandomised examples (generation included),
  the unit the matrix and the tests pay per model.

    pytest benches/test_bench_sim.py --benchmark-only
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from lpc.models import get_model
from lpc.sim.engine import run_choices
from lpc.sim.expected import CLASSES
from lpc.sim.scenarios import reference_system
from lpc.sim.search import survey
from lpc.sim.strategies import Example, Space, examples
from lpc.sim.timed import run_timed

MODELS = ["null", "trivial", "klp", "kpatch", "kgraft", "ksplice"]


@cache
def corpus(n: int = 200) -> list[Example]:
    """The first ``n`` examples Hypothesis draws (derandomised: the same every run)."""
    drawn: list[Example] = []

    def keep(ex: Example) -> bool:
        drawn.append(ex)
        return False

    try:
        find(examples(Space()), keep, settings=settings(
            max_examples=n, database=None, derandomize=True, deadline=None,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        pass
    return drawn


@pytest.mark.parametrize("model", MODELS)
def test_adversarial_runs(benchmark: pytest.FixtureRequest, model: str) -> None:
    m = get_model(model)
    exs = corpus()

    def run() -> int:
        return sum(run_choices(ex.system, m, ex.warmup, ex.after).event_count for ex in exs)

    events = benchmark(run)
    benchmark.extra_info["events"] = events
    benchmark.extra_info["runs"] = len(exs)


@pytest.mark.parametrize("model", ["klp", "kgraft", "josh"])
def test_timed_reference_system(benchmark: pytest.FixtureRequest, model: str) -> None:
    system = reference_system()
    m = get_model(model)
    result = benchmark(lambda: run_timed(system, m, seed=1, horizon_s=40.0))
    benchmark.extra_info["events"] = result.run.event_count
    benchmark.extra_info["simulated_s"] = 40.0


@pytest.mark.parametrize("budget", [300, 600])
def test_survey_budget(benchmark: pytest.FixtureRequest, budget: int) -> None:
    benchmark.pedantic(lambda: survey(["klp"], CLASSES, budget=budget, space=Space()),
                       rounds=1, iterations=1)
    benchmark.extra_info["examples"] = budget
