"""Human-readable output of an oracle comparison."""

from __future__ import annotations

from typing import TextIO

from lpc.oracle.compare import Comparison

__all__ = ["print_comparison"]


def print_comparison(comparison: Comparison, out: TextIO) -> None:
    print(f"scenario {comparison.scenario} (kernel {comparison.kernel_release}): "
          f"{comparison.agree}/{comparison.tasks} task verdicts agree", file=out)
    for c in comparison.checks:
        explained = sum(d.explained for d in c.disagreements)
        print(f"  {c.when:<22} ({c.compare:<8}) {c.agree:>3}/{c.tasks:<3} agree, "
              f"{explained} explained, {len(c.disagreements) - explained} unexplained"
              + (f", {c.not_compared} not compared (gone)" if c.not_compared else ""), file=out)
    for d in comparison.disagreements:
        mark = f"explained ({d.rule})" if d.explained else "UNEXPLAINED"
        print(f"    {d.when}: {d.comm} [{d.tid}] lpc={d.lpc} kernel={d.kernel} — {mark}: {d.why}",
              file=out)
