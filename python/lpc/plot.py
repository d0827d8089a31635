"""Pictures of a check: tasks not yet switched vs time, per model (matplotlib, Agg).

A check is one instant. Its outlooks say, for each task, when the model
expects it to switch. :attr:`~lpc.models.TaskOutcome.eta_s` is the worst-case
delay under the model's timing constants: one retry for a task at its kernel
exit, the signal round for an interruptible sleeper. Counting the tasks whose
delay has not yet passed gives the curve this dump predicts.

A task with no bounded delay (stuck, unknown, or waiting for an event the
model does not bound) never leaves the curve. The retries at which the model
nudges the tasks still pending (:meth:`~lpc.models.Model.nudge`: fake
signals, kthread wake-ups) are marked on its line.

``lpc watch --plot`` draws what was observed, retry by retry, over the
prediction of its first retry.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lpc.models import CONVERGING, Nudge, Outlook, get_model
from lpc.result import CheckResult

__all__ = ["Curve", "legend_below", "nudge_rounds", "plot_check", "plot_check_png", "plot_watch",
           "predicted_curve", "step_line"]

#: Distinct line styles, so lines that coincide stay visible without moving them.
_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*")


@dataclass(frozen=True)
class Curve:
    """Tasks not yet switched as a step function of time since the enable."""

    model: str
    #: Step times (seconds) and the pending count from each on.
    times: tuple[float, ...]
    pending: tuple[int, ...]
    #: Tasks the model gives no bounded time: still pending at any horizon.
    never: int

    def at(self, t: float) -> int:
        """The pending count at time ``t``."""
        count = self.pending[0]
        for x, y in zip(self.times, self.pending):
            if x > t:
                break
            count = y
        return count


def _delay(outlook: Outlook, eta_s: float | None) -> float:
    """When the model expects the task to switch, inf when it does not say."""
    if outlook is Outlook.SWITCHED:
        return 0.0
    if outlook in CONVERGING and eta_s is not None:
        return float(eta_s)
    return math.inf


def predicted_curve(result: CheckResult) -> Curve:
    """The curve one check predicts (module docstring)."""
    delays = sorted(_delay(t.outcome.outlook, t.outcome.eta_s) for t in result.tasks)
    total = len(delays)
    times, pending = [0.0], [total - sum(1 for d in delays if d <= 0.0)]
    for d in sorted({d for d in delays if 0.0 < d < math.inf}):
        times.append(d)
        pending.append(total - sum(1 for x in delays if x <= d))
    return Curve(result.model, tuple(times), tuple(pending),
                 sum(1 for d in delays if d == math.inf))


def nudge_rounds(result: CheckResult, horizon_s: float) -> list[tuple[float, str]]:
    """``(seconds, nudge)`` for each retry before ``horizon_s`` at which the
    model nudges one of the tasks still pending (judged on the distinct facts
    of those tasks, as the model itself decides per task)."""
    model = get_model(result.model, **dict(result.params))
    interval = model.retry_interval_s
    if interval <= 0:
        return []
    # Per distinct outcome: one task's facts, and when the model expects it gone.
    pending = [(result.tasks.facts[int(tasks[0])], _delay(outcome.outlook, outcome.eta_s))
               for outcome, tasks in result.tasks.distinct()
               if outcome.outlook is not Outlook.SWITCHED]
    rounds = []
    for retry in range(1, int(horizon_s / interval) + 1):
        now = retry * interval
        kinds = {model.nudge(retry, facts) for facts, gone in pending if gone >= now}
        kinds.discard(Nudge.NONE)
        if kinds:
            rounds.append((retry * interval, ", ".join(sorted(k.value for k in kinds))))
    return rounds


def _horizon(curves: Sequence[Curve]) -> float:
    last = max((c.times[-1] for c in curves), default=0.0)
    return max(30.0, last * 1.25)


def _figure(title: str, since: str = "the patch was enabled") -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # tasks come whole
    ax.set_xlabel(f"seconds since {since}")
    ax.set_ylabel("tasks not yet switched")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def step_line(ax: Any, xs: Sequence[float], ys: Sequence[int], k: int, label: str) -> Any:
    """The ``k``-th curve of a figure as a step line at its true values: its
    own line style and marker (on each step, not the horizon) keep lines that
    coincide visible without moving them."""
    return ax.step(xs, ys, where="post", label=label, linewidth=1.8,
                   linestyle=_STYLES[k % len(_STYLES)], marker=_MARKERS[k % len(_MARKERS)],
                   markevery=list(range(len(xs) - 1)), markersize=4)[0]


def legend_below(ax: Any, n: int, columns: int = 2) -> None:
    """The legend below the axes: it hides no line, whatever their values."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(n, columns),
              fontsize=8, frameon=False)


def _draw(ax: Any, curve: Curve, k: int, horizon: float, label: str,
          rounds: Sequence[tuple[float, str]] = ()) -> None:
    """The curve, and a triangle on it at each of its model's nudge rounds."""
    xs = [*curve.times, horizon]
    ys = [*curve.pending, curve.pending[-1]]
    kinds = sorted({kind for _, kind in rounds})
    if kinds:
        label += f" (\u25b2 {'; '.join(kinds)})"
    line = step_line(ax, xs, ys, k, label)
    if rounds:
        # On the line just before the round: what the nudge acts on.
        ax.plot([t for t, _ in rounds], [curve.at(t - 1e-9) for t, _ in rounds], linestyle="none",
                marker="^", markersize=7, color=line.get_color())


def _save(fig: Any, ax: Any, out: str | Path | BinaryIO, n: int, columns: int = 2) -> None:
    """Finish the figure and write it: to a path in the format of its suffix,
    or to a binary file object as PNG (a file object has no suffix to say)."""
    legend_below(ax, n, columns)
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    if isinstance(out, str | Path):
        fig.savefig(Path(out), dpi=110)
    else:
        fig.savefig(out, dpi=110, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _label(curve: Curve, result: CheckResult) -> str:
    eta = result.transition.eta_s
    end = (f"{curve.never} never switch" if curve.never
           else f"all by ~{eta:g} s" if eta is not None else "all switch")
    return f"{result.model}: {curve.pending[0]} pending now, {end}"


def _check_figure(results: Mapping[str, CheckResult], title: str) -> tuple[Any, Any]:
    """The figure of :func:`plot_check`, not yet finished nor written."""
    curves = [predicted_curve(r) for r in results.values()]
    horizon = _horizon(curves)
    fig, ax = _figure(title)
    for k, (curve, result) in enumerate(zip(curves, results.values())):
        _draw(ax, curve, k, horizon, _label(curve, result), nudge_rounds(result, horizon))
    ax.set_xlim(0, horizon)
    return fig, ax


def plot_check(results: Mapping[str, CheckResult], out: str | Path, title: str) -> Path:
    """One predicted curve per model, each model's nudge rounds (fake
    signals, wake-ups) marked on its own line, into ``out`` (format from its
    suffix)."""
    fig, ax = _check_figure(results, title)
    _save(fig, ax, out, len(results))
    return Path(out)


def plot_check_png(results: Mapping[str, CheckResult], title: str) -> bytes:
    """The picture of :func:`plot_check` as PNG bytes, written to no file: for
    a page that inlines it (:mod:`lpc.html_report`)."""
    fig, ax = _check_figure(results, title)
    buf = io.BytesIO()
    _save(fig, ax, buf, len(results))
    return buf.getvalue()


def plot_watch(observed: Sequence[tuple[float, int]], first: CheckResult | None,
               out: str | Path, title: str, what: str) -> Path:
    """What ``lpc watch`` saw, ``(seconds since its first look, tasks not
    switched)`` per retry (``what`` says whose count: the kernel's patch_state
    or lpc's), over the curve its first look predicted."""
    fig, ax = _figure(title, "the first look")
    horizon = max([30.0, *(t * 1.25 for t, _ in observed)])
    if observed:
        ax.step([t for t, _ in observed], [n for _, n in observed], where="post",
                label=f"observed: {what}", linewidth=2.2, color="black", marker="o",
                markersize=4)
    if first is not None:
        curve = predicted_curve(first)
        _draw(ax, curve, 1, horizon, "predicted at the first look — " + _label(curve, first),
              nudge_rounds(first, horizon))
    ax.set_xlim(0, horizon)
    _save(fig, ax, out, 2, columns=1)
    return Path(out)
