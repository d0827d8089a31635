"""Tasks not yet switched vs time, one line per model, on one system (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lpc.models import get_model, model_names
from lpc.plot import legend_below, step_line
from lpc.sim.system import System
from lpc.sim.timed import TimedResult, run_timed

#: The registry's named models, in its order.
PLOT_MODELS = tuple(model_names())


def convergence(
    system: System, models: Sequence[str] = PLOT_MODELS, *, seed: int = 1,
    horizon_s: float = 40.0,
) -> list[TimedResult]:
    """One timed run per model, same system, same seed."""
    return [run_timed(system, get_model(m), seed=seed, horizon_s=horizon_s) for m in models]


def _steps(r: TimedResult) -> tuple[list[float], list[int]]:
    """The pending-task count as a step function from enable to the horizon."""
    xs: list[float] = []
    ys: list[int] = []
    total = r.run.timeline[0][1] if r.run.timeline else 0
    xs.append(0.0)
    ys.append(total)
    for t, pending in r.run.timeline:
        if t < r.enable_at:
            continue
        xs.append(t - r.enable_at)
        ys.append(pending)
    xs.append(r.horizon_s)
    ys.append(ys[-1])
    return xs, ys


def figure_convergence(results: Sequence[TimedResult], title: str) -> Any:
    """The figure: one step line per model at its true counts, the legend
    below the axes (it hides no line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for k, r in enumerate(results):
        xs, ys = _steps(r)
        step_line(ax, xs, ys, k, f"{r.model}: {_short(r)}")
    ax.set_xlabel("seconds since the patch was enabled")
    ax.set_ylabel("tasks not yet switched")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    legend_below(ax, len(results))
    fig.tight_layout()
    return fig


def plot_convergence(results: Sequence[TimedResult], out: str | Path, title: str) -> Path:
    """Write the figure to ``out`` (any format matplotlib knows from the suffix)."""
    import matplotlib.pyplot as plt

    fig = figure_convergence(results, title)
    path = Path(out)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _short(r: TimedResult) -> str:
    if r.converged_at is not None:
        return f"complete after {r.converged_at:.1f} s"
    if r.run.failed:
        return "gives up, nothing patched"
    if r.model == "trivial":
        return "no completion point"
    return f"{r.run.pending} task(s) never switch"
