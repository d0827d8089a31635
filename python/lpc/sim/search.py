"""Model × patch class: prove a cell within a budget, or find its shortest counterexample.

For one cell, Hypothesis draws systems and schedules (:mod:`lpc.sim.strategies`)
and runs each under the model; the cell is *refuted* by the first run that
violates a property the class needs (:data:`lpc.sim.properties.PATCH_CLASSES`),
which Hypothesis then shrinks; it *holds* when ``budget`` runs find none. Runs
are derandomised, so the same budget gives the same table and the same
counterexamples every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from lpc import progress
from lpc.models import Model, get_model, model_names
from lpc.sim.engine import ENABLE, Event, RunResult, Sim, run_choices
from lpc.sim.properties import PATCH_CLASSES, Property
from lpc.sim.strategies import Example, Space, examples
from lpc.sim.system import System, system_from_json, system_to_json

#: The registry's models in its order, then the matrix cells.
MODEL_NAMES: tuple[str, ...] = tuple(model_names(cells=True))
DEFAULT_BUDGET = 300


@dataclass(frozen=True)
class Counterexample:
    """A run that violates a property the class needs, and its readable trace.

    ``events`` replays it exactly (:func:`replay_counterexample`); the trace
    ends at the violation.
    """

    model: str
    patch_class: str
    system: System
    events: tuple[Event, ...]
    prop: str
    message: str
    trace: tuple[str, ...]

    def text(self) -> str:
        lines = [f"{self.model} / {self.patch_class}: {self.prop} violated — {self.message}",
                 "system:", *self.system.describe(), "trace:"]
        lines.extend("  " + line for line in self.trace)
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "property": self.prop,
            "message": self.message,
            "system": system_to_json(self.system),
            "events": [list(e) for e in self.events],
            "trace": list(self.trace),
        }


@dataclass(frozen=True)
class CellResult:
    model: str
    patch_class: str
    holds: bool
    examples_tried: int
    counterexample: Counterexample | None = None

    @property
    def result(self) -> str:
        return "holds" if self.holds else "refuted"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "patch_class": self.patch_class,
            "result": self.result,
            "counterexample": (
                None if self.counterexample is None else self.counterexample.as_json()
            ),
            "examples_tried": self.examples_tried,
        }


def run_example(
    model: Model, ex: Example, props: Iterable[Property], record: bool = False
) -> RunResult:
    stop = frozenset(p.value for p in props)
    return run_choices(ex.system, model, ex.warmup, ex.after, record=record, stop_on=stop)


def violated(model: Model, ex: Example, props: Sequence[Property]) -> Property | None:
    r = run_example(model, ex, props)
    for p in props:
        if p.value in r.violations:
            return p
    return None


def search_settings(budget: int, shrink: bool = True) -> settings:
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
    return settings(
        max_examples=budget, database=None, derandomize=True, deadline=None,
        suppress_health_check=list(HealthCheck), phases=phases,
    )


def search_cell(
    model_name: str,
    patch_class: str,
    *,
    budget: int = DEFAULT_BUDGET,
    space: Space = Space(),
    shrink: bool = True,
) -> CellResult:
    """Hold within ``budget`` generated runs, or the shrunk counterexample."""
    model = get_model(model_name)
    props = PATCH_CLASSES[patch_class]
    tried = 0
    first_hit: int | None = None

    def bad(ex: Example) -> bool:
        nonlocal tried, first_hit
        tried += 1
        hit = violated(model, ex, props) is not None
        if hit and first_hit is None:
            first_hit = tried
        return hit

    try:
        ex = find(examples(space), bad, settings=search_settings(budget, shrink))
    except NoSuchExample:
        return CellResult(model_name, patch_class, True, tried)
    return CellResult(model_name, patch_class, False, first_hit or tried,
                      explain(model_name, patch_class, ex))


def explain(model_name: str, patch_class: str, ex: Example) -> Counterexample:
    """Replay a failing example, cut it to a short event list, trace it."""
    model = get_model(model_name)
    props = PATCH_CLASSES[patch_class]
    r = run_example(model, ex, props)
    events = minimize(ex.system, model_name, r.events, props)
    sim = replay_events(ex.system, model_name, events, record=True)
    for p in props:
        v = sim.monitor.first.get(p)
        if v is not None:
            trace = readable(sim.trace, props)
            return Counterexample(model_name, patch_class, ex.system, tuple(events), p.value,
                                  v.message, tuple(trace))
    raise ValueError("the example does not violate the class's properties")


def replay_events(system: System, model_name: str, events: Sequence[Event], *,
                  record: bool = False) -> Sim:
    sim = Sim(system, get_model(model_name), record=record)
    sim.replay(events)
    return sim


def _fails(system: System, model_name: str, events: Sequence[Event],
           props: Sequence[Property]) -> bool:
    if ENABLE not in events:
        return False
    try:
        sim = replay_events(system, model_name, events)
    except ValueError:
        return False  # some event is no longer possible
    return any(p in sim.monitor.first for p in props)


def minimize(system: System, model_name: str, events: Sequence[Event],
             props: Sequence[Property], max_window: int = 4) -> list[Event]:
    """Delta debugging on the concrete events: drop windows of up to ``max_window``
    events while the run stays possible and still violates ``props``.

    Hypothesis shrinks the choices (towards small values, so long runs of the
    first possible event); this finds the shorter story those choices hide.
    """
    best = list(events)
    changed = True
    while changed:
        changed = False
        for width in range(max_window, 0, -1):
            i = len(best) - width
            while i >= 0:
                candidate = best[:i] + best[i + width:]
                if _fails(system, model_name, candidate, props):
                    best = candidate
                    changed = True
                i -= 1
    return best


def readable(trace: Sequence[str], props: Sequence[Property] = tuple(Property)) -> list[str]:
    """The trace a reader needs: no routine idle-loop steps, only the class's violations."""
    wanted = {p.value for p in props}
    keep = []
    for line in trace:
        if "✗ " in line:
            if line.split("✗ ", 1)[1].split(":", 1)[0] not in wanted:
                continue
            keep.append(line)
            continue
        routine = "swapper/" in line and "@" not in line and "switched" not in line \
            and "runs" not in line
        if not routine:
            keep.append(line)
    return keep


def replay_counterexample(model_name: str, doc: dict[str, Any]) -> Sim:
    """Run a stored counterexample (``CellResult.as_json()['counterexample']``) again."""
    system = system_from_json(doc["system"])
    events = [(str(e[0]), int(e[1]), int(e[2])) for e in doc["events"]]
    return replay_events(system, model_name, events, record=True)


def survey(
    models: Sequence[str],
    classes: Sequence[str],
    *,
    budget: int,
    space: Space,
) -> dict[tuple[str, str], int | None]:
    """Run every model on the same ``budget`` examples: for each cell, the index of
    the first example that refutes it (None: it held on all of them).

    One pass for the whole table: a run checks every property at once, so a
    model costs one run per example whatever the number of classes.
    """
    chosen = [(m, get_model(m)) for m in models]
    first: dict[tuple[str, str], int | None] = {(m, c): None for m in models for c in classes}
    seen = 0

    def record(ex: Example) -> bool:
        nonlocal seen
        seen += 1
        progress.step(f"{seen}/{budget} examples")
        for name, model in chosen:
            if all(first[(name, c)] is not None for c in classes):
                continue
            bad = run_choices(ex.system, model, ex.warmup, ex.after).violations
            for c in classes:
                if first[(name, c)] is None and any(p.value in bad for p in PATCH_CLASSES[c]):
                    first[(name, c)] = seen
        return False

    try:
        find(examples(space), record, settings=search_settings(budget, shrink=False))
    except NoSuchExample:
        pass
    return first


def search_matrix(
    models: Sequence[str] = MODEL_NAMES,
    classes: Sequence[str] = tuple(PATCH_CLASSES),
    *,
    budget: int = DEFAULT_BUDGET,
    space: Space = Space(),
    shrink: bool = True,
) -> list[CellResult]:
    """The table: a survey of every cell, then a shrunk counterexample per refuted one."""
    progress.phase(f"surveying {len(models)} models × {len(classes)} patch classes")
    first = survey(models, classes, budget=budget, space=space)
    results = []
    for m in models:
        for c in classes:
            hit = first[(m, c)]
            if hit is None:
                results.append(CellResult(m, c, True, budget))
                continue
            progress.phase(f"shrinking a counterexample: {m} / {c} "
                           f"(cell {len(results) + 1}/{len(models) * len(classes)})")
            found = search_cell(m, c, budget=max(hit, 1) + budget, space=space, shrink=shrink)
            # The same derandomised sequence: the search meets the survey's example first.
            results.append(CellResult(m, c, False, hit, found.counterexample))
    return results
