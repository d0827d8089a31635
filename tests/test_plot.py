"""Pictures: the curve a check predicts, the signal rounds on it, ``check
--plot`` / ``watch --plot`` files, and the simulator's lines at their true
values with a legend outside the axes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lpc import cli
from lpc.check import CheckRequest, run
from lpc.models import CONVERGING, Outlook
from lpc.patch import Patch
from lpc.plot import nudge_rounds, predicted_curve

DATA = Path(__file__).parent / "data"
SNAP = DATA / "procdump-6.18"
PNG = b"\x89PNG\r\n\x1a\n"


def _results(model: str = "klp", patch: str = "do_wait") -> dict:  # type: ignore[type-arg]
    return run(CheckRequest(dump=str(SNAP), patch=Patch.parse(patch), models=(model,))).results


@pytest.mark.parametrize("model", ["klp", "kgraft", "kpatch", "null", "trivial"])
def test_the_curve_counts_each_task_until_its_own_delay(model: str) -> None:
    """Brute force: at any time, the curve is the number of tasks whose
    outlook has not yet let them switch."""
    (result,) = _results(model).values()
    curve = predicted_curve(result)

    def delay(t: object) -> float:
        o = t.outcome  # type: ignore[attr-defined]
        if o.outlook is Outlook.SWITCHED:
            return 0.0
        return o.eta_s if o.outlook in CONVERGING and o.eta_s is not None else math.inf

    delays = [delay(t) for t in result.tasks]
    for at in (0.0, 0.5, 1.0, 2.0, 14.9, 15.0, 30.0, 1e9):
        assert curve.at(at) == sum(1 for d in delays if d > at), at
    assert curve.never == sum(1 for d in delays if d == math.inf)
    assert list(curve.times) == sorted(curve.times)


def test_klp_signal_rounds_are_every_fifteen_retries() -> None:
    (result,) = _results().values()
    rounds = nudge_rounds(result, 50)
    assert [t for t, _ in rounds] == [15.0]  # the sleepers the round is for are gone after it
    assert all("fake_signal" in kind for _, kind in rounds)
    curve = predicted_curve(result)
    assert curve.at(14.9) > curve.at(15.0)  # the sleepers leave at the first round


def test_no_round_is_marked_once_every_task_is_expected_gone() -> None:
    """Two tasks running through cmdline_proc_show's caller leave at their
    kernel exit, one retry in: no signal round is drawn after that."""
    (result,) = _results(patch="cmdline_proc_show").values()
    assert predicted_curve(result).pending == (2, 0)
    assert nudge_rounds(result, 60) == []


def test_check_plot_writes_an_image_per_model(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.png"
    code = cli.main(["check", "--dump", str(SNAP), "--patch", "do_wait", "--model", "all",
                     "--plot", str(out)])
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    assert f"wrote {out}" in capsys.readouterr().err
    assert code in (0, 1, 4)
    code = cli.main(["check", "--dump", str(SNAP), "--plot", str(tmp_path / "x.png")])
    assert code == 2  # no patch: nothing to draw


def test_watch_plot_uses_the_recorded_clock(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A recorded series is drawn at its own uptimes (seconds apart), not at
    the replay's (milliseconds)."""
    case = DATA / "oracle" / "7.3" / "watch_transition"
    out = tmp_path / "w.svg"
    argv = ["watch", "--symbols", str(case / "snap_kallsyms.txt"), "--patch",
            "lpc_sleeper:lpc_sleeper_doze,hrtimer_nanosleep", "--name", "lpc_pt",
            "--plot", str(out)]
    for snap in sorted(case.glob("snap_0*")):
        argv += ["--dump", str(snap)]
    assert cli.main(argv) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "observed: tasks the kernel has not switched" in svg


def test_the_simulator_draws_true_values_and_keeps_the_legend_off_the_lines() -> None:
    from lpc.sim import scenarios
    from lpc.sim.plot import _steps, convergence, figure_convergence

    results = convergence(scenarios.reference_system(), ("klp", "kpatch", "null"), seed=1)
    fig = figure_convergence(results, "t")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    assert len(lines) == 3
    for line, r in zip(lines, results):
        assert list(line.get_ydata()) == _steps(r)[1]  # no offset: the counts themselves
    legend = ax.get_legend()
    fig.canvas.draw()
    box = legend.get_window_extent()
    axes_box = ax.get_window_extent()
    assert box.y1 <= axes_box.y0  # below the axes: over no line
    import matplotlib.pyplot as plt

    plt.close(fig)
