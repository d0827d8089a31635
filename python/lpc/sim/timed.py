"""Liveness: the same simulation on a clock, with rates instead of an adversary.

Safety is checked against every schedule Hypothesis can draw; convergence is a
question about *likely* schedules, so here the next event is drawn from a
seeded random clock (a continuous-time Markov chain: each possible event has a
rate, the next one comes after an exponential delay), and the model's retry
comes every ``model.retry_interval_s`` seconds of simulated time,
as its kernel code schedules it. A run ends when the model completes, gives
up, or the horizon passes; the result says when, or why not.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from lpc.models import Model
from lpc.sim.engine import ENABLE, TICK, Event, RunResult, Sim, result_of
from lpc.sim.system import System


@dataclass(frozen=True)
class Rates:
    """Events per second of simulated time."""

    #: Ops a task on a CPU executes (calls, returns, ...): 1 ms each.
    step: float = 1000.0
    #: Context switches to a runnable task on a free CPU.
    sched: float = 1000.0
    #: A user task in user space enters a system call.
    syscall: float = 20.0
    #: A sleep ends (mean 100 ms); ``forever`` sleeps never end on their own.
    wake: float = 10.0
    #: Preemption of a task on a CPU.
    preempt: float = 5.0
    #: Real signals to interruptible sleepers (0: only the models' fake ones).
    signal: float = 0.0


def _rate(sim: Sim, e: Event, rates: Rates) -> float:
    kind = e[0]
    if kind == "run":
        return rates.step
    if kind == "sched":
        return rates.sched
    if kind == "syscall":
        return rates.syscall / len(sim.tasks[e[1]].spec.entries)
    if kind == "wake":
        return rates.wake
    if kind == "preempt":
        return rates.preempt
    if kind == "signal":
        return rates.signal
    return 0.0


@dataclass
class TimedResult:
    model: str
    run: RunResult
    enable_at: float
    horizon_s: float

    @property
    def converged_at(self) -> float | None:
        """Seconds from enabling to completion, or None."""
        done = self.run.completed_at
        return None if done is None else done - self.enable_at

    def outcome(self) -> str:
        if self.converged_at is not None:
            return f"converges after {self.converged_at:.2f} s"
        if self.run.failed:
            return f"fails: {self.run.failed}"
        why = "; ".join(f"{k}: {v}" for k, v in list(self.run.stuck.items())[:3])
        return (f"not converged after {self.horizon_s:g} s, {self.run.pending} task(s) pending"
                + (f" ({why})" if why else ""))


class Clock:
    """Drives a :class:`Sim` on simulated time: random events at their rates, the
    model's retries at its interval. Scenarios advance it, act, advance again."""

    def __init__(self, sim: Sim, *, seed: int = 0, rates: Rates = Rates()) -> None:
        self.sim = sim
        self.rng = random.Random(seed)
        self.rates = rates
        self.next_tick = math.inf
        self.max_events = 2_000_000

    def started(self) -> None:
        """Call after the transition began: its first retry is one interval away."""
        self.next_tick = self.sim.time + self.sim.driver.interval

    def finished(self) -> bool:
        d = self.sim.driver
        return self.sim.started and (d.done or d.failed is not None)

    def run_until(self, end: float, *, stop_when_finished: bool = True) -> None:
        sim = self.sim
        while len(sim.events) < self.max_events and sim.time < end:
            if stop_when_finished and self.finished():
                return
            cap = self.next_tick
            if sim.started and sim.time >= self.next_tick:
                if sim.driver.wants_tick():
                    sim.apply(TICK)
                    self.next_tick += sim.driver.interval
                    continue
                if sim.idle_quiescent():
                    self.next_tick += sim.driver.interval  # nothing to retry
                    continue
                cap = math.inf  # stop_machine waits until the idle tasks schedule
            self.step(min(cap, end))

    def step(self, limit: float) -> bool:
        """One random event before ``limit``, or time moves to ``limit``."""
        sim = self.sim
        events = sim.enabled(environment_only=True)
        weights = [_rate(sim, e, self.rates) for e in events]
        total = sum(weights)
        if total <= 0:
            sim.time = limit  # nothing can happen before the next tick
            return False
        dt = self.rng.expovariate(total)
        if sim.time + dt >= limit:
            sim.time = limit  # memoryless: the draw restarts after the tick
            return False
        sim.time += dt
        sim.apply(self.rng.choices(events, weights)[0])
        return True


def run_timed(
    system: System,
    model: Model,
    *,
    seed: int = 0,
    enable_at: float = 1.0,
    horizon_s: float = 60.0,
    rates: Rates = Rates(),
    record: bool = False,
) -> TimedResult:
    """Run ``system`` under ``model`` from a seed: enable at ``enable_at``, stop at
    completion, failure or ``enable_at + horizon_s``."""
    sim = Sim(system, model, record=record)
    clock = Clock(sim, seed=seed, rates=rates)
    clock.run_until(enable_at)
    sim.time = enable_at
    sim.apply(ENABLE)
    clock.started()
    clock.run_until(enable_at + horizon_s)
    return TimedResult(model.name, result_of(sim), enable_at, horizon_s)
