"""The consistency matrix as executable truth: a live-patch transition simulator.

The same model code that judges snapshots (``lpc check``) decides here, at
every check the model's kernel code would run, on a simulated kernel:
:mod:`~lpc.sim.system` (functions, tasks, CPUs, the patch),
:mod:`~lpc.sim.engine` (discrete events, the ftrace-like redirect, the facts a
model's stack walker sees), :mod:`~lpc.sim.drivers` (each model's switch
points and nudges), :mod:`~lpc.sim.properties` (the guarantees, and what each
patch class needs), :mod:`~lpc.sim.strategies` and :mod:`~lpc.sim.search`
(Hypothesis proves or refutes each model × class cell).
"""

from __future__ import annotations

from lpc.sim.engine import ENABLE, TICK, Event, RunResult, Sim, run_choices
from lpc.sim.properties import PATCH_CLASSES, Monitor, Property, Violation
from lpc.sim.system import Function, Op, OpKind, System, TaskSpec, build

__all__ = [
    "ENABLE",
    "PATCH_CLASSES",
    "TICK",
    "Event",
    "Function",
    "Monitor",
    "Op",
    "OpKind",
    "Property",
    "RunResult",
    "Sim",
    "System",
    "TaskSpec",
    "Violation",
    "build",
    "run_choices",
]
