"""The real kernel as oracle: lpc's klp predictions against Linux's own transitions.

* :mod:`lpc.oracle.scenarios` — what each recorded scenario sets up and compares;
* :mod:`lpc.oracle.case` — a recorded case directory, read back;
* :mod:`lpc.oracle.compare` — lpc's ``klp`` model against the kernel, per task,
  every disagreement explained by a named rule or reported unexplained;
* :mod:`lpc.oracle.run` — the qemu driver that records cases (tools/oracle).
"""

from __future__ import annotations

from lpc.oracle.compare import Comparison, Disagreement, compare_case
from lpc.oracle.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "Comparison", "Disagreement", "compare_case"]
