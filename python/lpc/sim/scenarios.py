"""Named scenarios S6 and S11–S27 (docs/livepatch.md §Scenarios), with asserted outcomes.

Each scenario builds a small system, drives it (a script of events, or the
seeded clock of :mod:`lpc.sim.timed`), lets the admin act (enable, disable,
force, load a module, ...) through :class:`Livepatch` — the sysfs side of
kernel/livepatch/core.c, and kGraft's where it differs — and reports what
happened as plain facts.

Every scenario is one function, named after what it shows, with the
``@scenario(...)`` registration right above it: its id, title and source, and
``expected``, the facts docs/livepatch.md predicts per model (the tests compare
them with what the simulation reports). A scenario never asks which model it
runs. Where a model needs a different set-up — klp on a kernel before v6.4 or
without reliable stacks, libpulp's ``--check-stack`` — the registration says so
in ``variants``: per model, keyword arguments the function receives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lpc.models import Kgraft, Model, TaskKind, Verdict, get_model
from lpc.sim.engine import ENABLE, TICK, Event, Sim, Task
from lpc.sim.properties import Property
from lpc.sim.system import (
    COND_RESCHED,
    FREEZE,
    Function,
    Op,
    OpKind,
    System,
    TaskSpec,
    access,
    build,
    call,
    sleep,
)
from lpc.sim.timed import Clock


# ---- the admin side --------------------------------------------------------------------------


@dataclass
class Patch:
    name: str
    #: Function → the version this patch installs.
    functions: dict[str, int]
    replace: bool = False
    #: klp_state: id → version.
    states: dict[int, int] = field(default_factory=dict)
    #: A pre-patch callback that fails with this errno.
    pre_patch_error: str | None = None
    forced: bool = False


@dataclass(frozen=True)
class Sysfs:
    """The admin rules where a system's interface departs from klp's.

    klp (kernel/livepatch/core.c) refuses a second patch with -EBUSY while one is
    in transition and reverses a transition when ``enabled`` is written back.
    kGraft (kernel/kgraft.c) refuses both with -EAGAIN: ``kgr_modify_kernel``
    logs that the previous patching is not finalised, and ``revert`` waits for
    finalisation (docs/livepatch.md §kGraft).
    """

    #: The errno of an enable while a transition is in progress, and the line it logs.
    busy_errno: str = "EBUSY"
    busy_message: str | None = None
    #: The errno of a disable of the patch in transition; None: the transition reverses.
    reverse_errno: str | None = None


KLP_SYSFS = Sysfs()
KGRAFT_SYSFS = Sysfs("EAGAIN", "can't patch, another patching not yet finalized", "EAGAIN")

#: The admin interface that comes with each model implementation; klp's for the rest.
SYSFS_OF: Mapping[type, Sysfs] = {Kgraft: KGRAFT_SYSFS}


def _forced(model: Model) -> Model | None:
    """The model's own forced variant, if it has one (klp's ``force`` parameter)."""
    if not dataclasses.is_dataclass(model) or isinstance(model, type):
        return None
    if "force" not in model.accepts():
        return None
    forced: Model = dataclasses.replace(model, force=True)
    return forced


class Livepatch:
    """Enable, disable, force, replace — the rules of kernel/livepatch/core.c.

    ``sysfs`` holds where the model's own admin interface differs (kGraft
    refuses what klp reverses); by default, the one :data:`SYSFS_OF` gives the
    model's implementation.
    """

    def __init__(self, sim: Sim, sysfs: Sysfs | None = None) -> None:
        self.sim = sim
        self.sysfs = sysfs or SYSFS_OF.get(type(sim.model), KLP_SYSFS)
        self.enabled: list[Patch] = []
        self.transition: Patch | None = None
        self.unpatching = False
        self.ftrace_enabled = True
        #: Functions with a kprobe: True when it has a post_handler (IPMODIFY).
        self.kprobes: dict[str, bool] = {}
        self.log: list[str] = []
        self.callbacks: list[str] = []
        self.current = 0  # the configuration every task runs when no transition is on
        sim.config_names.setdefault(0, "orig")

    def say(self, line: str) -> None:
        self.log.append(line)
        self.sim.note(f"-- admin: {line}")

    def _config_of(self, patches: Iterable[Patch]) -> dict[str, int]:
        cfg = {f: 0 for f in self.sim.functions}
        for p in patches:
            if p.replace:
                cfg = {f: 0 for f in self.sim.functions}  # nops for everything else
            cfg.update(p.functions)
        return cfg

    def _begin(self, cfg: dict[str, int], patch: Patch, unpatching: bool) -> None:
        sim = self.sim
        dst = len(sim.configs)
        sim.configs.append(cfg)
        names = [p.name for p in self.enabled if p is not patch] if unpatching else \
            [*(p.name for p in self.enabled if not patch.replace), patch.name]
        sim.config_names[dst] = "+".join(names) or "orig"
        sim.ever_patched = frozenset(
            f for f in sim.functions if any(c[f] != 0 for c in sim.configs)
        )
        self.transition, self.unpatching = patch, unpatching
        self.say(f"'{patch.name}': starting {'unpatching' if unpatching else 'patching'} "
                 "transition")
        sim.begin(self.current, dst)

    def busy(self) -> bool:
        self.poll()
        return self.transition is not None

    def poll(self) -> None:
        """Notice a finished transition (klp_complete_transition's bookkeeping)."""
        p = self.transition
        if p is None or not self.sim.driver.done:
            return
        self.current = self.sim.dst
        if self.unpatching:
            if p in self.enabled:
                self.enabled.remove(p)
            self.say(f"'{p.name}': unpatching complete")
            self.callbacks.append(f"post_unpatch({p.name})")
        else:
            if p.replace:
                self.enabled = []
            self.enabled.append(p)
            self.say(f"'{p.name}': patching complete")
            self.callbacks.append(f"post_patch({p.name})")
        self.transition = None

    def enable(self, patch: Patch) -> str | None:
        """insmod of a livepatch module: the errno it fails with, or None."""
        if self.busy():  # __klp_enable_patch: one transition at a time
            if self.sysfs.busy_message:
                self.say(self.sysfs.busy_message)
            return self.sysfs.busy_errno
        for sid, version in patch.states.items():
            if any(p.states.get(sid, -1) > version for p in self.enabled):
                self.say(f"livepatch: '{patch.name}': not compatible with the already "
                         "installed livepatches")
                return "EINVAL"
        conflict = [f for f in patch.functions if self.kprobes.get(f)]
        if not self.ftrace_enabled or conflict:
            what = sorted(patch.functions)[0] if patch.functions else "?"
            self.say(f"failed to register ftrace handler for function '{what}' (-16)")
            self.say("canceling patching transition, going to unpatch")
            return "EBUSY"
        if patch.pre_patch_error:
            self.say("pre-patch callback failed for object 'vmlinux'")
            self.say("canceling patching transition, going to unpatch")
            return patch.pre_patch_error
        self.callbacks.append(f"pre_patch({patch.name})")
        self._begin(self._config_of([*self.enabled, patch]), patch, unpatching=False)
        return None

    def disable(self, patch: Patch) -> str | None:
        """``echo 0 > enabled``: unpatch, or reverse the transition in progress."""
        if self.transition is patch and self.busy():
            if self.sysfs.reverse_errno:
                return self.sysfs.reverse_errno
            self.say(f"'{patch.name}': reversing transition from "
                     f"{'unpatching' if self.unpatching else 'patching'} to "
                     f"{'patching' if self.unpatching else 'unpatching'}")
            self.unpatching = not self.unpatching
            if not self.sim.driver.can_reverse:
                return "EINVAL"
            # The task states, not the enabled list, hold the truth now.
            self.current = self.sim.dst
            self.sim.driver.reverse()
            return None
        if self.busy():
            return "EBUSY"
        if patch not in self.enabled:
            return "EINVAL"
        rest = [p for p in self.enabled if p is not patch]
        if not patch.replace:
            self.callbacks.append(f"pre_unpatch({patch.name})")
        self._begin(self._config_of(rest), patch, unpatching=True)
        return None

    def force(self) -> str | None:
        """``echo 1 > force``: every task to the target (klp_force_transition)."""
        if not self.busy():
            return "EINVAL"
        self.say("forcing remaining tasks to the patched state")
        drv = self.sim.driver
        forced = _forced(drv.model)
        if forced is not None:
            # klp: the model's own force; judge_task() then says switched for everyone.
            drv.model = forced
            drv.tick()
        else:  # kGraft: echo 0 > in_progress, kgr_unmark_processes(); any other model alike
            for t in self.sim.tasks:
                if t.pending:
                    self.sim.switch(t, "forced")
            drv.tick()
        for p in [*self.enabled, *([self.transition] if self.transition else [])]:
            p.forced = True  # klp_free_patch_finish() never calls module_put()
        self.poll()
        return None

    def set_ftrace_enabled(self, value: bool) -> str | None:
        if not value and (self.enabled or self.transition):
            return "EBUSY"  # the patch's ftrace_ops are FTRACE_OPS_FL_PERMANENT
        self.ftrace_enabled = value
        return None


# ---- scripting helpers -----------------------------------------------------------------------


class Script:
    """Readable event scripts: ``sc("sched 0 user0", "syscall user0", "run user0 *")``."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def task(self, name: str) -> Task:
        for t in self.sim.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def __call__(self, *commands: str) -> None:
        for command in commands:
            self._one(command.split())

    def _apply(self, e: Event) -> None:
        if e not in self.sim.enabled():
            raise ValueError(f"scenario script: {e} is not possible now")
        self.sim.apply(e)

    def _one(self, words: list[str]) -> None:
        kind, args = words[0], words[1:]
        if kind == "enable":
            self.sim.apply(ENABLE)
        elif kind == "tick":
            for _ in range(int(args[0]) if args else 1):
                self.sim.apply(TICK)
        elif kind == "sched":
            self._apply(("sched", int(args[0]), self.task(args[1]).tid))
        elif kind == "syscall":
            self._apply(("syscall", self.task(args[0]).tid, int(args[1]) if len(args) > 1 else 0))
        elif kind == "run":
            t = self.task(args[0])
            count = args[1] if len(args) > 1 else "1"
            if count == "*":  # until it sleeps, or is back in user space and yields
                for _ in range(100):
                    if ("run", t.tid, 0) not in self.sim.enabled():
                        break
                    self.sim.apply(("run", t.tid, 0))
                if t.in_user and t.cpu is not None:
                    self.sim.apply(("preempt", t.tid, 0))
            else:
                for _ in range(int(count)):
                    self._apply(("run", t.tid, 0))
        elif kind in ("wake", "preempt", "signal"):
            self._apply((kind, self.task(args[0]).tid, 0))
        elif kind == "wake?":  # if a nudge has not ended the sleep already
            t = self.task(args[0])
            if t.sleeping:
                self._apply(("wake", t.tid, 0))
        elif kind == "idle":  # every free CPU's idle task runs until it waits again
            for idle in self.sim.idle_of.values():
                for _ in range(20):
                    if ("run", idle.tid, 0) not in self.sim.enabled():
                        break
                    self.sim.apply(("run", idle.tid, 0))
        else:
            raise ValueError(f"scenario script: unknown command {kind}")


def _sim(system: System, model: str | Model, **params: Any) -> Sim:
    m = get_model(model, **params) if isinstance(model, str) else model
    return Sim(system, m, record=True)


def _violations(sim: Sim) -> list[str]:
    """The hazards a run hit. LEAVE_KERNEL and system-wide consistency are claims some
    models make, not hazards by themselves: the scenarios report them separately."""
    claims = (Property.LEAVE_KERNEL, Property.SYSTEM_WIDE)
    return sorted(p.value for p in sim.monitor.first if p not in claims)


def _switched_inside(sim: Sim, frame: str) -> bool:
    """Did some task switch universe with ``frame`` on its stack?"""
    v = sim.monitor.first.get(Property.LEAVE_KERNEL)
    return any(frame in line and "switches at" in line for line in sim.trace) if v else False


def _calls(sim: Sim, task: str, fn: str) -> list[str]:
    return [sim.vname(v) for who, f, v in sim.monitor.calls if who == task and f == fn]


@dataclass
class Outcome:
    scenario: str
    model: str
    facts: dict[str, Any]
    trace: list[str]

    def text(self) -> str:
        lines = [f"{self.scenario} under {self.model}:"]
        lines += [f"  {k}: {v}" for k, v in self.facts.items()]
        lines.append("trace:")
        lines += ["  " + line for line in self.trace]
        return "\n".join(lines)


# ---- registration ----------------------------------------------------------------------------

#: Per-model keyword arguments of a scenario function (see :class:`Scenario`).
Params = Mapping[str, Any]


@dataclass(frozen=True)
class Observed:
    """What a scenario function hands back: the run to take the trace from, and the facts."""

    sim: Sim
    facts: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: Where the scenario comes from: its section of docs/livepatch.md, then the kernel
    #: source, selftest or paper it rests on.
    source: str
    #: The scenario function: ``fn(model, **variants.get(model, {}))``.
    fn: Callable[..., Observed]
    #: model → the facts docs/livepatch.md predicts.
    expected: Mapping[str, Mapping[str, Any]]
    #: model → extra keyword arguments for ``fn``: the set-up that model needs.
    variants: Mapping[str, Params] = field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.expected)

    def run(self, model: str) -> Outcome:
        seen = self.fn(model, **self.variants.get(model, {}))
        trace = [line for line in seen.sim.trace if "swapper/" not in line or "switched" in line]
        return Outcome(self.name, model, seen.facts, trace)


SCENARIOS: dict[str, Scenario] = {}

_Fn = TypeVar("_Fn", bound=Callable[..., Observed])


def scenario(name: str, title: str, *, source: str,
             expected: Mapping[str, Mapping[str, Any]],
             variants: Mapping[str, Params] | None = None) -> Callable[[_Fn], _Fn]:
    """Register the decorated function as scenario ``name`` (see :class:`Scenario`)."""

    def register(fn: _Fn) -> _Fn:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name} registered twice")
        unknown = set(variants or {}) - set(expected)
        if unknown:
            raise ValueError(f"scenario {name}: variants for models it expects nothing of: "
                             f"{sorted(unknown)}")
        SCENARIOS[name] = Scenario(name, title, source, fn, expected, dict(variants or {}))
        return fn

    return register


def run_scenario(name: str, model: str) -> Outcome:
    try:
        found = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    return found.run(model)


def run_timed_outcome(system: System, model: Model, horizon: float) -> str:
    from lpc.sim.timed import run_timed

    r = run_timed(system, model, seed=3, horizon_s=horizon)
    return "converges" if r.converged_at is not None else "never converges"


# ---- S6 a busy kthread that passes cond_resched() ---------------------------------------------


@scenario("S6", "CPU-bound kthread that calls cond_resched() but never sleeps",
          source="docs/livepatch.md §S6; Song Liu's RFC, Josh's cond_resched series "
                 "(transition.c __klp_sched_try_switch)",
          expected={
              "klp": {"converges": {"v6.4+": "converges", "before v6.4": "never converges",
                                    "v6.16+": "never converges"}},
              "kgraft": {"converges": {"v6.4+": "never converges",
                                       "before v6.4": "never converges",
                                       "v6.16+": "never converges"}},
          },
          variants={"klp": {"v6_4": {"cond_resched_switch": True,
                                     "freezable_sleep_switch": False},
                            "before_v6_4": {"cond_resched_switch": False,
                                            "freezable_sleep_switch": False}}})
def busy_kthread_with_cond_resched(model: str, v6_4: Params | None = None,
                                   before_v6_4: Params | None = None) -> Observed:
    """A CPU-bound kthread (``vhost``) loops on work and ``cond_resched()`` and never
    sleeps; the patched function is on no stack. klp 6.4–6.15 switches it at
    ``cond_resched()`` and converges; klp before 6.4 never gets a stack check in
    (the kthread is always running), nor does 6.16+, which moved the switch into
    ``__schedule()`` for freezable sleeps (676e8cf70cb0) — and this kthread never
    sleeps; kGraft has no safe point in that loop. None of those converges.

    ``v6_4``, ``before_v6_4``: the model's parameters for those kernels; the
    default model is the newest kernel's; a model without the switch points
    runs unchanged in every column.
    Source: docs/livepatch.md §S6 (Song Liu's RFC; Josh Poimboeuf's
    ``livepatch,sched: Add livepatch task switching to cond_resched()``).
    """
    fns = [Function("busy_fn", (call("work"), COND_RESCHED), loops=True),
           Function("work", ()), Function("patched", ()),
           Function("sleepy_fn", (sleep(True), FREEZE), loops=True)]
    tasks = [TaskSpec("vhost", TaskKind.KTHREAD, ("busy_fn",)),
             TaskSpec("kswapd0", TaskKind.KTHREAD, ("sleepy_fn",), freezable=True)]
    system = build(fns, tasks, {"patched"}, cpus=2)
    out = {}
    for variant, m in (("v6.4+", get_model(model, **(v6_4 or {}))),
                       ("before v6.4", get_model(model, **(before_v6_4 or {}))),
                       ("v6.16+", get_model(model))):
        out[variant] = run_timed_outcome(system, m, 20.0)
    sim = _sim(system, model)
    return Observed(sim, {"converges": out})


# ---- the busy kworker of the selftests (S2, S11, S12, S15, S26) -------------------------------


def busymod() -> System:
    """test_klp_callbacks_busy: a kworker loops on msleep() inside the patched work
    function; a user task calls another patched function now and then."""
    fns = [
        Function("worker_thread", (call("busymod_work_func"), sleep(True)), loops=True),
        Function("busymod_work_func", (call("busy_helper"), sleep(False)), loops=True),
        Function("busy_helper", ()),
        Function("sys_getpid", (call("do_getpid"),)),
        Function("do_getpid", ()),
    ]
    tasks = [
        TaskSpec("kworker/0:1", TaskKind.KTHREAD, ("worker_thread",)),
        TaskSpec("bash", TaskKind.USER, ("sys_getpid",)),
    ]
    return build(fns, tasks, {"busymod_work_func", "busy_helper", "do_getpid"}, cpus=1)


def _busy_started(model: str) -> tuple[Sim, Livepatch, Clock, Patch]:
    sim = _sim(busymod(), model)
    sc = Script(sim)
    sc("sched 0 kworker/0:1", "run kworker/0:1 2")  # inside busymod_work_func
    lp = Livepatch(sim)
    patch = Patch("livepatch_busy", {f: 1 for f in sim.system.patched})
    clock = Clock(sim, seed=1)
    lp.enable(patch)
    clock.started()
    clock.run_until(sim.time + 20.0)
    return sim, lp, clock, patch


# ---- S11 reverse, S12 force -------------------------------------------------------------------


@scenario("S11", "Reverse mid-transition",
          source="docs/livepatch.md §S11; core.c enabled_store, transition.c "
                 "klp_reverse_transition",
          expected={
              "klp": {"stalled": True, "kworker_blocked_on": "busymod_work_func",
                      "reverse": "reversed", "completes": True, "busymod_ran_new": False,
                      "violations": []},
              "kgraft": {"stalled": True, "reverse": "EAGAIN", "completes": False},
          })
def reverse_mid_transition(model: str) -> Observed:
    """The busy kworker stalls the transition; the admin writes 0 to ``enabled``.
    klp reverses, and the reversal completes without the busy work function ever
    having run new code; kGraft refuses to revert while patching is in progress
    (-EAGAIN), so the stall stays.

    Source: docs/livepatch.md §S11 (kernel/livepatch/core.c ``enabled_store``,
    transition.c ``klp_reverse_transition``; kernel/kgraft.c ``revert``).
    """
    sim, lp, clock, patch = _busy_started(model)
    stalled = lp.busy()
    kworker = Script(sim).task("kworker/0:1")
    blocker = sim.facts(kworker, sim.driver.source).patched_function
    errno = lp.disable(patch)
    if errno is None:
        clock.started()
        clock.run_until(sim.time + 20.0)
    facts = {
        "stalled": stalled,
        "kworker_blocked_on": blocker,
        "reverse": errno or "reversed",
        "completes": not lp.busy() if errno is None else False,
        "busymod_ran_new": "new" in _calls(sim, "kworker/0:1", "busymod_work_func"),
        "violations": _violations(sim),
    }
    return Observed(sim, facts)


@scenario("S12", "Force mid-transition",
          source="docs/livepatch.md §S12; livepatch.rst §3, §5.5",
          expected={
              "klp": {"stalled": True, "completes": True, "module_removable": False,
                      "violations": ["call_pair", "completion", "per_thread"]},
              "kgraft": {"stalled": True, "completes": True,
                         "violations": ["call_pair", "completion", "per_thread"]},
          })
def force_mid_transition(model: str) -> Observed:
    """The busy kworker stalls the transition; the admin forces it. Every task is
    set to the target, the kworker included, whose old loop then calls new code:
    per-thread and call-pair consistency break, and completion is declared while
    old code runs. klp marks the patch forced, so its module can never be removed.

    Source: docs/livepatch.md §S12 (Documentation/livepatch/livepatch.rst §3 and
    §5.5, transition.c ``klp_force_transition``; kGraft's ``in_progress`` ← 0).
    """
    sim, lp, clock, patch = _busy_started(model)
    stalled = lp.busy()
    lp.force()
    clock.run_until(sim.time + 1.0, stop_when_finished=False)
    facts = {
        "stalled": stalled,
        "completes": not lp.busy(),
        "module_removable": not patch.forced,
        "violations": _violations(sim),
    }
    return Observed(sim, facts)


# ---- S13 atomic replace ---------------------------------------------------------------------


def _replace_system() -> System:
    fns = [
        Function("sys_a", (call("f"),)), Function("sys_b", (call("g"),)),
        Function("sys_c", (call("h"),)),
        Function("f", (sleep(True),)), Function("g", (sleep(True),)), Function("h", (sleep(True),)),
    ]
    tasks = [TaskSpec("user1", TaskKind.USER, ("sys_a",)),
             TaskSpec("user2", TaskKind.USER, ("sys_c",)),
             TaskSpec("user3", TaskKind.USER, ("sys_a", "sys_b", "sys_c"))]
    return build(fns, tasks, set(), cpus=1)


@scenario("S13", "Atomic replace (cumulative patches)",
          source="docs/livepatch.md §S13; selftests test-livepatch.sh, cumulative-patches.rst",
          expected={
              "klp": {"blocked_on": {"user1": "f", "user2": "h"},
                      "after_replace": {"f": 0, "g": 2, "h": 2},
                      "f_after_replace_runs": "orig",
                      "after_disabling_B": {"f": 0, "g": 0, "h": 0}, "enabled": [],
                      "violations": []},
              "kpatch": {"after_replace": {"f": 0, "g": 2, "h": 2}, "violations": []},
          })
def atomic_replace(model: str) -> Observed:
    """Patch A (``f``, ``g``) is in place; B (``g``, ``h``) replaces it. During B's
    transition klp checks A's ``f`` (the previous ``func_stack`` entry) and the
    original ``h``; after it ``f`` runs the original again (B's nop), and disabling
    B returns every function to the original, not to A. kpatch swaps all in one
    stop_machine.

    Source: docs/livepatch.md §S13 (selftests test-livepatch.sh and
    test-callbacks.sh, Documentation/livepatch/cumulative-patches.rst).
    """
    sim = _sim(_replace_system(), model)
    sim.version_names = {0: "orig", 1: "A", 2: "B"}
    lp = Livepatch(sim)
    sc = Script(sim)
    a = Patch("A", {"f": 1, "g": 1})
    b = Patch("B", {"g": 2, "h": 2}, replace=True)
    lp.enable(a)
    sc("idle", "tick")
    lp.poll()
    # user1 sleeps in A's f, user2 in the original h.
    sc("sched 0 user1", "syscall user1", "run user1 *", "sched 0 user2", "syscall user2",
       "run user2 *")
    lp.enable(b)
    check = {}
    for name in ("user1", "user2"):
        seen = sim.facts(sc.task(name), sim.driver.source)  # klp_check_stack()'s view
        check[name] = seen.patched_function
    sc("wake user1", "wake user2", "sched 0 user1", "run user1 *", "sched 0 user2",
       "run user2 *", "idle", "tick")
    lp.poll()
    after_b = {f: sim.configs[sim.dst][f] for f in ("f", "g", "h")}
    sc("sched 0 user3", "syscall user3 0", "run user3")
    f_now = _calls(sim, "user3", "f")[-1:]
    lp.disable(b)
    sc("run user3 *", "wake user3", "sched 0 user3", "run user3 *", "idle", "tick")
    lp.poll()
    after_disable = {f: sim.configs[sim.dst][f] for f in ("f", "g", "h")}
    facts = {
        "blocked_on": check,
        "after_replace": after_b,
        "f_after_replace_runs": f_now[0] if f_now else None,
        "after_disabling_B": after_disable,
        "enabled": [p.name for p in lp.enabled],
        "violations": _violations(sim),
    }
    return Observed(sim, facts)


# ---- S14 the immediate hole -------------------------------------------------------------------


@scenario("S14", "Non-cumulative stacking and the 'immediate' hole",
          source="docs/livepatch.md §S14; 'livepatch: Remove immediate feature'",
          expected={
              "klp": {"switched_while_in_P1_f": True,
                      "violations": ["call_pair", "completion", "per_thread"]},
              "leave_patched_set/switch_thread": {"switched_while_in_P1_f": False,
                                                  "violations": []},
          })
def immediate_patches_hole(model: str) -> Observed:
    """P1 and P2 patch ``f`` 'immediately' (no transition: the null model); a task
    sleeps in P1's ``f``. P3, a consistent patch, checks only the previous entry,
    P2's ``f``, so klp switches the task and breaks consistency; an exact check of
    every version (the pure LEAVE_PATCHED_SET / SWITCH_THREAD cell) blocks it. This
    is why only one patch may be in transition and why ``immediate`` was removed.

    Source: docs/livepatch.md §S14 (the commit "livepatch: Remove immediate
    feature"; transition.c ``klp_check_stack_func``).
    """
    fns = [Function("sys_x", (call("f"),)), Function("f", (sleep(True), call("g"))),
           Function("g", ())]
    system = build(fns, [TaskSpec("user", TaskKind.USER, ("sys_x",))], set(), cpus=1)
    sim = _sim(system, model)
    sim.version_names = {0: "orig", 1: "P1", 2: "P2", 3: "P3"}
    sc = Script(sim)
    null = get_model("null")
    p1 = sim.define_patch({"f": 1}, base=0)
    p2 = sim.define_patch({"f": 2}, base=p1)
    p3 = sim.define_patch({"f": 3, "g": 3}, base=p2)
    for name, cfg in (("P1", p1), ("P2", p2), ("P3", p3)):
        sim.config_names[cfg] = name
    sim.model = null  # P1 and P2 are 'immediate': no transition at all
    sim.begin(0, p1)
    sc("sched 0 user", "syscall user", "run user *")  # asleep in P1's f
    sim.begin(p1, p2)
    sim.model = get_model(model)
    sim.monitor.first.clear()  # what P1 and P2 broke is theirs; judge P3 alone
    sim.begin(p2, p3)
    switched = not sc.task("user").pending
    sc("wake user", "sched 0 user", "run user *", "tick")
    facts = {
        "switched_while_in_P1_f": switched,
        "violations": _violations(sim),
    }
    return Observed(sim, facts)


# ---- S15 module loaded during a transition ----------------------------------------------------


@scenario("S15", "Module loaded during a transition",
          source="docs/livepatch.md §S15; test-callbacks.sh",
          expected={
              "klp": {"A_calls_mod_fn": ["new"], "B_calls_mod_fn": ["old"],
                      "transition_pending": True, "violations": []},
          })
def module_loaded_mid_transition(model: str) -> Observed:
    """While the busy kworker stalls the transition, a target module is loaded and
    patched at once: a task already switched calls its new function, one still in
    the old universe its old one. Its pre-patch callback runs at load, post-patch
    waits for completion; at unload pre-unpatch is skipped, post-unpatch runs.

    Source: docs/livepatch.md §S15 (selftest test-callbacks.sh, "busy target
    module"; core.c ``klp_module_coming``).
    """
    fns = [
        Function("worker_thread", (call("busymod_work_func"), sleep(True)), loops=True),
        Function("busymod_work_func", (sleep(False),), loops=True),
        Function("sys_mod", (call("mod_fn"),)),
        Function("other", (sleep(True), call("mod_fn"))),
        Function("mod_fn", ()),
    ]
    tasks = [TaskSpec("kworker/0:1", TaskKind.KTHREAD, ("worker_thread",)),
             TaskSpec("A", TaskKind.USER, ("sys_mod",)),
             TaskSpec("B", TaskKind.USER, ("other",))]
    system = build(fns, tasks, {"busymod_work_func", "other", "mod_fn"}, cpus=1)
    sim = _sim(system, model)
    sc = Script(sim)
    lp = Livepatch(sim)
    sc("sched 0 kworker/0:1", "run kworker/0:1 2", "sched 0 B", "syscall B", "run B *")
    lp.enable(Patch("p", {"busymod_work_func": 1, "other": 1, "mod_fn": 1}))
    lp.callbacks.append("pre_patch(test_klp_callbacks_mod) at load: post_patch deferred")
    sc("sched 0 A", "syscall A", "run A *", "wake B", "sched 0 B", "run B *", "tick")
    lp.callbacks.append("unload: pre_unpatch skipped, post_unpatch(test_klp_callbacks_mod)")
    facts = {
        "A_calls_mod_fn": _calls(sim, "A", "mod_fn"),
        "B_calls_mod_fn": _calls(sim, "B", "mod_fn"),
        "transition_pending": lp.busy(),
        "callbacks": lp.callbacks,
        "violations": _violations(sim),
    }
    return Observed(sim, facts)


# ---- S16, S18, S19: the admin's errors ---------------------------------------------------------


def _admin_system() -> System:
    fns = [Function("sys_f", (call("f"),)), Function("f", (sleep(True),))]
    return build(fns, [TaskSpec("user", TaskKind.USER, ("sys_f",))], set(), cpus=1)


@scenario("S16", "Failing pre-patch callback",
          source="docs/livepatch.md §S16; test-callbacks.sh",
          expected={
              "klp": {"errno": "ENODEV", "new_code_ran": False,
                      "log": ["pre-patch callback failed for object 'vmlinux'",
                              "canceling patching transition, going to unpatch"]},
          })
def failing_pre_patch_callback(model: str) -> Observed:
    """A pre-patch callback fails with -ENODEV: the transition is cancelled before
    it starts, the load fails with that errno, and no new code ever runs.

    Source: docs/livepatch.md §S16 (selftest test-callbacks.sh, "pre-patch
    callback -ENODEV"; transition.c ``klp_cancel_transition``).
    """
    sim = _sim(_admin_system(), model)
    lp = Livepatch(sim)
    errno = lp.enable(Patch("p", {"f": 1}, pre_patch_error="ENODEV"))
    Script(sim)("sched 0 user", "syscall user", "run user *")
    facts = {"errno": errno, "log": lp.log, "new_code_ran": "new" in _calls(sim, "user", "f")}
    return Observed(sim, facts)


# ---- S17 shadow variables across a transition -------------------------------------------------


@scenario("S17", "Shadow variables across a transition",
          source="docs/livepatch.md §S17; samples/livepatch/livepatch-shadow-*.c",
          expected={
              "klp": {"new_code_met_unshadowed_objects": 1,
                      "old_code_met_a_shadowed_object": True},
              "kpatch": {"old_code_met_a_shadowed_object": False},
          })
def shadow_variables_across_transition(model: str) -> Observed:
    """New code attaches a shadow variable to the objects it allocates. It meets an
    object allocated before the patch (no shadow) and must handle it; under klp a
    task still in the old universe then meets an object new code tagged, which
    kpatch's single switch instant rules out.

    Source: docs/livepatch.md §S17 (samples/livepatch/livepatch-shadow-mod.c,
    -fix1.c, -fix2.c; Documentation/livepatch/shadow-vars.rst).
    """
    fns = [Function("dummy_alloc", (access(0, alloc=True),)),
           Function("dummy_check", (sleep(True), access(0)))]
    tasks = [TaskSpec(n, TaskKind.USER, (e,)) for n, e in
             (("old_alloc", "dummy_alloc"), ("checker", "dummy_check"),
              ("sleeper", "dummy_check"), ("new_alloc", "dummy_alloc"))]
    system = build(fns, tasks, {"dummy_alloc", "dummy_check"}, cpus=1, slots=1)
    sim = _sim(system, model)
    sc = Script(sim)
    # An object allocated before the patch (no shadow), one task asleep in old code.
    sc("sched 0 old_alloc", "syscall old_alloc", "run old_alloc *",
       "sched 0 sleeper", "syscall sleeper", "run sleeper *", "enable")
    sc("sched 0 checker", "syscall checker", "run checker *", "wake checker", "sched 0 checker",
       "run checker *")
    handled = sim.monitor.new_reads_untagged
    sc("sched 0 new_alloc", "syscall new_alloc", "run new_alloc *", "wake sleeper",
       "sched 0 sleeper", "run sleeper *")
    facts = {
        "new_code_met_unshadowed_objects": handled,
        "old_code_met_a_shadowed_object": Property.DATA_SHADOW in sim.monitor.first,
    }
    return Observed(sim, facts)


# ---- S18 system states, S19 ftrace and kprobes ------------------------------------------------


@scenario("S18", "System-state versioning",
          source="docs/livepatch.md §S18; test-state.sh",
          expected={
              "klp": {"results": ["ok", "ok", "EINVAL"],
                      "log": ["livepatch: 'state_again': not compatible with the already "
                              "installed livepatches"]},
          })
def system_state_versioning(model: str) -> Observed:
    """Patches declare versions of a system state: ``state`` (1), then the cumulative
    ``state2`` (2) load; a later patch that would lower the version back to 1 is
    refused with -EINVAL.

    Source: docs/livepatch.md §S18 (selftest test-state.sh; core.c
    ``klp_is_patch_compatible``, Documentation/livepatch/system-state.rst).
    """
    sim = _sim(_admin_system(), model)
    lp = Livepatch(sim)
    results = []
    for patch in (Patch("state", {"f": 1}, states={1: 1}),
                  Patch("state2", {"f": 2}, replace=True, states={1: 2}),
                  Patch("state_again", {"f": 3}, states={1: 1})):
        results.append(lp.enable(patch) or "ok")
        Script(sim)("idle", "tick")
        lp.poll()
    facts = {"results": results, "log": [line for line in lp.log if "compatible" in line]}
    return Observed(sim, facts)


@scenario("S19", "ftrace/kprobe conflicts",
          source="docs/livepatch.md §S19; test-ftrace.sh, test-kprobe.sh",
          expected={"klp": {"ftrace_disabled": "EBUSY", "kprobe_with_post_handler": "EBUSY",
                            "kprobe_without_post_handler": "ok",
                            "ftrace_enabled=0 while patched": "EBUSY"}})
def ftrace_kprobe_conflicts(model: str) -> Observed:
    """Loading fails with -EBUSY when ftrace is off (``ftrace_enabled=0``) or a kprobe
    with a post handler (IPMODIFY) sits on the target; a kprobe without one does no
    harm; with a patch loaded, turning ftrace off is refused with -EBUSY.

    Source: docs/livepatch.md §S19 (selftests test-ftrace.sh and test-kprobe.sh).
    """
    sim = _sim(_admin_system(), model)
    lp = Livepatch(sim)
    lp.ftrace_enabled = False
    with_ftrace_off = lp.enable(Patch("p", {"f": 1}))
    lp.ftrace_enabled = True
    lp.kprobes["f"] = True  # a kprobe with a post_handler: IPMODIFY
    with_kprobe_post = lp.enable(Patch("p", {"f": 1}))
    lp.kprobes["f"] = False
    with_kprobe = lp.enable(Patch("p", {"f": 1}))
    Script(sim)("idle", "tick")
    lp.poll()
    disable_ftrace = lp.set_ftrace_enabled(False)
    facts = {
        "ftrace_disabled": with_ftrace_off,
        "kprobe_with_post_handler": with_kprobe_post,
        "kprobe_without_post_handler": with_kprobe or "ok",
        "ftrace_enabled=0 while patched": disable_ftrace,
    }
    return Observed(sim, facts)


# ---- S20 unreliable stacks --------------------------------------------------------------------


@scenario("S20", "Unreliable stacks",
          source="docs/livepatch.md §S20; kpatch #799",
          expected={
              "klp": {"verdicts": {"kretprobed": "unreliable", "deep": "switch"},
                      "unreliable_switches_at_kernel_exit": True,
                      "without_reliable_stacks": "never converges"},
              "kpatch": {"verdicts": {"kretprobed": "switch", "deep": "unreliable"},
                         "kpatch_gives_up": True},
          },
          variants={"klp": {"without_reliable_stacks": {"reliable_stacks": False}},
                    "kpatch": {"gives_up_after": 5}})
def unreliable_stacks(model: str, without_reliable_stacks: Params | None = None,
                      gives_up_after: int | None = None) -> Observed:
    """A task with a kretprobe trampoline on its stack and one 70 frames deep, both
    asleep; a kthread loops through the patched function. klp calls the first
    stack unreliable and switches that task at kernel exit; kpatch's 64-entry walk
    fails on the deep one and kpatch gives up after its attempts.

    ``without_reliable_stacks``: the model's parameters for a kernel without
    HAVE_RELIABLE_STACKTRACE; with them the scenario also reports whether that
    kernel converges (klp: never, the kthread has no kernel exit).
    ``gives_up_after``: retry that many times more and report whether the model gave up.
    Source: docs/livepatch.md §S20 (Documentation/livepatch/reliable-stacktrace.rst,
    kpatch issue #799).
    """
    fns = [Function("sys_read", (call("wait"),)), Function("wait", (sleep(True),)),
           Function("patched", ()),
           Function("kthread_fn", (call("patched"), sleep(True)), loops=True)]
    users = [TaskSpec("kretprobed", TaskKind.USER, ("sys_read",), unreliable=True),
             TaskSpec("deep", TaskKind.USER, ("sys_read",), extra_depth=70)]
    kthread = TaskSpec("kthread", TaskKind.KTHREAD, ("kthread_fn",))
    system = build(fns, [*users, kthread], {"patched"}, cpus=1)
    sim = _sim(system, model)
    sc = Script(sim)
    sc("sched 0 kretprobed", "syscall kretprobed", "run kretprobed *", "sched 0 deep",
       "syscall deep", "run deep *", "enable")
    verdicts = {t.name: sim.driver.judge(t, stopped=True).verdict.value
                for t in sim.tasks if t.kind is TaskKind.USER}
    sc("wake kretprobed", "sched 0 kretprobed", "run kretprobed *")
    switched_at_exit = not sc.task("kretprobed").pending
    facts: dict[str, Any] = {"verdicts": verdicts, "unreliable_switches_at_kernel_exit":
                             switched_at_exit}
    if without_reliable_stacks is not None:
        norel = run_timed_outcome(system, get_model(model, **without_reliable_stacks), 30.0)
        facts["without_reliable_stacks"] = norel
    if gives_up_after is not None:
        sc(f"tick {gives_up_after}")
        facts["kpatch_gives_up"] = sim.driver.failed is not None
    return Observed(sim, facts)


# ---- S21 prototype change, S22 shared data ---------------------------------------------------


@scenario("S21", "Prototype change across the patched set",
          source="docs/livepatch.md §S21",
          expected={
              "null": {"violations": ["call_pair", "completion", "per_thread"],
                       "switched_while_in_g": True},
              "trivial": {"violations": [], "via_unpatched_h": ["per_thread"]},
              "klp": {"violations": [], "switched_while_in_g": False, "via_unpatched_h": []},
              "kpatch": {"violations": [], "switched_while_in_g": False},
              "ksplice": {"violations": [], "switched_while_in_g": False},
              "kgraft": {"violations": [], "switched_while_in_g": False},
          })
def prototype_change(model: str) -> Observed:
    """The patch changes ``f``'s prototype and its caller ``g``; a task sleeps in old
    ``g`` before its call to ``f``. The null model lets old ``g`` call new ``f``;
    the trivial model keeps ``f`` old for an old caller, but not when the call goes
    through an unpatched ``h``; klp, kpatch and Ksplice never switch the task with
    ``g`` on its stack, and kGraft waits for it to leave the kernel.

    Source: docs/livepatch.md §S21 (our analysis of the 2014 thread's scenarios;
    the trivial model's failure mode 1).
    """
    def one(via: bool) -> Sim:
        if via:
            fns = [Function("sys_p", (call("g"),)), Function("g", (sleep(True), call("h"))),
                   Function("h", (call("f"),)), Function("f", ())]
        else:
            fns = [Function("sys_p", (call("g"),)), Function("g", (sleep(True), call("f"))),
                   Function("f", ())]
        system = build(fns, [TaskSpec("user", TaskKind.USER, ("sys_p",))], {"g", "f"}, cpus=1)
        sim = _sim(system, model)
        sc = Script(sim)
        sc("sched 0 user", "syscall user", "run user 2", "enable", "tick 2", "wake? user",
           "sched 0 user", "run user *", "idle", "tick 6")
        return sim

    direct = one(via=False)
    via = one(via=True)
    facts = {
        "violations": _violations(direct),
        "switched_while_in_g": _switched_inside(direct, "g@"),
        "via_unpatched_h": _violations(via),
    }
    return Observed(direct, facts)


@scenario("S22", "Data-semantic change shared across threads",
          source="docs/livepatch.md §S22; kpatch patch-author-guide 'Data semantic changes'",
          expected={
              "klp": {"shared_data_violated": True, "shadow_violated": True},
              "kgraft": {"shared_data_violated": True, "shadow_violated": True},
              "kpatch": {"shared_data_violated": False, "shadow_violated": False},
              "ksplice": {"shared_data_violated": False, "shadow_violated": False},
              "null": {"shared_data_violated": True},
          })
def shared_data_change(model: str) -> Observed:
    """The patch changes what a shared ``kioctx``-like object means; one task runs in
    the new universe, one in the old, both on the same object. SWITCH_THREAD
    models (klp, kGraft) and the null model mix the two meanings, with or without
    shadow tagging; SWITCH_KERNEL models (kpatch, Ksplice) never run both.

    Source: docs/livepatch.md §S22 (kpatch's doc/patch-author-guide.md, "Data
    semantic changes"; the CVE-2014-0206 fix).
    """
    fns = [Function("io_submit", (access(0),)), Function("aio_complete", (sleep(True), access(0))),
           Function("ioctx_alloc", (access(0, alloc=True),))]
    tasks = [TaskSpec("submitter", TaskKind.USER, ("io_submit", "ioctx_alloc")),
             TaskSpec("completer", TaskKind.USER, ("aio_complete",))]
    system = build(fns, tasks, {"io_submit", "aio_complete", "ioctx_alloc"}, cpus=1, slots=1)
    sim = _sim(system, model)
    sc = Script(sim)
    sc("sched 0 completer", "syscall completer", "run completer *", "idle", "enable")
    sc("sched 0 submitter", "syscall submitter 1", "run submitter *")
    sc("wake? completer", "sched 0 completer", "run completer *", "idle", "tick 6")
    sc("sched 0 submitter", "syscall submitter 0", "run submitter *")
    facts = {
        "shared_data_violated": Property.DATA_FORMAT in sim.monitor.first,
        "shadow_violated": Property.DATA_SHADOW in sim.monitor.first,
    }
    return Observed(sim, facts)


# ---- S23, S24: libpulp's tests, with the library in the kernel's place ------------------------

#: libpulp's --check-stack refuses while any frame lies in the library's range: under
#: LEAVE_PATCHED_SET / SWITCH_KERNEL that is the patched set grown to the library's entries.
_CHECK_STACK: Params = {"library_range": True}


@scenario("S23", "libpulp 'contract' (per-thread consistency in user space)",
          source="docs/livepatch.md §S23; SUSE/libpulp tests/contract.py",
          expected={
              "leave_kernel/switch_thread": {"output": "TYPE A data 128",
                                             "applied_while_inside_library": False},
              "null": {"output": "Invalid type"},
              "leave_patched_set/switch_kernel": {"output": "TYPE A data 128",
                                                  "applied_while_inside_library": False,
                                                  "applied_after": True},
              "klp": {"output": "Invalid type", "applied_while_inside_library": True},
          },
          variants={"leave_patched_set/switch_kernel": _CHECK_STACK})
def libpulp_contract(model: str, library_range: bool = False) -> Observed:
    """contract.py: ``fna`` writes data in format A, ``fnb`` reads it; the patch changes
    both formats while the thread is between the calls, inside the library. A
    per-thread universe that switches only outside the library finishes the old
    way ("TYPE A data 128"); the null model mixes ("Invalid type"); libpulp's
    ``--check-stack`` refuses while the thread is inside, then applies; klp's
    LEAVE_PATCHED_SET mixes too, since the data crosses an unpatched frame.

    ``library_range``: the library's entry joins the patched set (--check-stack).
    Source: docs/livepatch.md §S23 (SUSE/libpulp tests/contract.py, an XFAIL test
    in tests/Makefile.am).
    """
    fns = [Function("lib_call", (call("fna"), sleep(True), call("fnb"))),
           Function("fna", (access(0, alloc=True),)), Function("fnb", (access(0),))]
    patched = {"fna", "fnb"} | ({"lib_call"} if library_range else set())
    system = build(fns, [TaskSpec("thread", TaskKind.USER, ("lib_call",))], patched, cpus=1,
                   slots=1, convertible=False)
    sim = _sim(system, model)
    sc = Script(sim)
    sc("sched 0 thread", "syscall thread", "run thread *", "enable", "tick")
    applied_while_inside = not sc.task("thread").pending
    sc("wake thread", "sched 0 thread", "run thread *", "tick")
    facts = {
        "output": "Invalid type" if Property.DATA_FORMAT in sim.monitor.first
        else "TYPE A data 128",
        "applied_while_inside_library": applied_while_inside,
        "applied_after": not sc.task("thread").pending,
    }
    return Observed(sim, facts)


@scenario("S24", "libpulp 'blocked' thread",
          source="docs/livepatch.md §S24; SUSE/libpulp tests/blocked.py",
          expected={
              "leave_kernel/switch_thread": {"thread1_greets": "new", "thread2_greets": "old",
                                             "completes": False},
              "null": {"thread1_greets": "new", "thread2_greets": "new", "completes": True},
              "leave_patched_set/switch_kernel": {"thread1_greets": "old",
                                                  "thread2_greets": "old", "completes": False},
          },
          variants={"leave_patched_set/switch_kernel": _CHECK_STACK})
def libpulp_blocked_thread(model: str, library_range: bool = False) -> Observed:
    """blocked.py: thread 1 calls into the library and leaves; thread 2 loops in it for
    ever. A per-thread universe gives thread 1 the new code and keeps thread 2 on
    the old for ever, with no completion; the null model gives both the new code;
    ``--check-stack`` never applies.

    ``library_range``: the library's entries join the patched set (--check-stack).
    Source: docs/livepatch.md §S24 (SUSE/libpulp tests/blocked.py, an XFAIL test).
    """
    fns = [Function("hello_once", (call("greet"),)),
           Function("hello_loop", (call("greet"), sleep(True)), loops=True),
           Function("greet", ())]
    patched = {"greet"} | ({"hello_once", "hello_loop"} if library_range else set())
    tasks = [TaskSpec("thread1", TaskKind.USER, ("hello_once",)),
             TaskSpec("thread2", TaskKind.USER, ("hello_loop",))]
    system = build(fns, tasks, patched, cpus=1)
    sim = _sim(system, model)
    sc = Script(sim)
    sc("sched 0 thread2", "syscall thread2", "run thread2 *", "enable", "tick")
    for _ in range(3):
        sc("sched 0 thread1", "syscall thread1", "run thread1 *", "wake thread2",
           "sched 0 thread2", "run thread2 *", "tick")
    facts = {
        "thread1_greets": _calls(sim, "thread1", "greet")[-1],
        "thread2_greets": _calls(sim, "thread2", "greet")[-1],
        "completes": sim.driver.done,
    }
    return Observed(sim, facts)


# ---- S25 fork during a transition, S26 a second patch ------------------------------------------


@scenario("S25", "Fork during a transition",
          source="docs/livepatch.md §S25; transition.c klp_copy_process",
          expected={
              "klp": {"parent_pending": True, "child_at_fork": {"universe": "old",
                                                                 "pending": True},
                      "child_switched_at_kernel_exit": True},
              "kgraft": {"child_at_fork": {"universe": "old", "pending": True},
                         "child_switched_at_kernel_exit": True},
          })
def fork_mid_transition(model: str) -> Observed:
    """A task still pending forks: the child copies the parent's universe and pending
    flag, and switches at its first kernel exit.

    Source: docs/livepatch.md §S25 (transition.c ``klp_copy_process``; kGraft's
    inherited in-progress flag).
    """
    fns = [Function("sys_clone", (call("copy_process"),)), Function("copy_process", ()),
           Function("patched", ())]
    system = build(fns, [TaskSpec("parent", TaskKind.USER, ("sys_clone",))], {"patched"}, cpus=1)
    sim = _sim(system, model)
    sc = Script(sim)
    sc("sched 0 parent", "syscall parent", "enable")  # running in the kernel: -EBUSY
    parent = sc.task("parent")
    child = sim.fork(parent)
    at_fork = {"universe": sim.vname(child.universe), "pending": child.pending}
    sc("preempt parent", "sched 0 parent-child", "run parent-child")
    facts = {
        "parent_pending": parent.pending,
        "child_at_fork": at_fork,
        "child_switched_at_kernel_exit": not child.pending,
    }
    return Observed(sim, facts)


@scenario("S26", "Second patch while one is in transition",
          source="docs/livepatch.md §S26; core.c __klp_enable_patch, kgraft.c kgr_modify_kernel",
          expected={
              "klp": {"in_transition": True, "second_enable": "EBUSY"},
              "kgraft": {"in_transition": True, "second_enable": "EAGAIN",
                         "log": ["can't patch, another patching not yet finalized"]},
          })
def second_patch_mid_transition(model: str) -> Observed:
    """While the busy kworker stalls a transition a second patch is loaded: klp
    refuses it with -EBUSY (one transition at a time), kGraft with -EAGAIN and "can't
    patch, another patching not yet finalized".

    Source: docs/livepatch.md §S26 (core.c ``__klp_enable_patch``, kernel/kgraft.c
    ``kgr_modify_kernel``).
    """
    sim, lp, _clock, _patch = _busy_started(model)
    other = Patch("second", {"do_getpid": 2})
    facts = {"in_transition": lp.busy(), "second_enable": lp.enable(other),
             "log": [line for line in lp.log if "finalized" in line]}
    return Observed(sim, facts)


# ---- S27 stack-scan precision -----------------------------------------------------------------


@scenario("S27", "Stack-scan precision",
          source="docs/livepatch.md §S27; ksplice check_stack, kernel/stacktrace.c nosched",
          expected={
              "ksplice": {"stale_pointer": "aborted", "sleeping_in_sched_text_switched": False,
                          "sched_text_violations": []},
              "klp": {"stale_pointer": "applied", "sleeping_in_sched_text_switched": False,
                      "sched_text_violations": []},
              "kpatch": {"stale_pointer": "applied", "sleeping_in_sched_text_switched": True,
                         "sched_text_violations": ["call_pair", "completion", "per_thread"]},
          })
def stack_scan_precision(model: str) -> Observed:
    """Two ways a stack check can be wrong. A kthread keeps a stale ``&f`` in its locals:
    Ksplice's word scan sees it and aborts (a false positive); the unwinders of klp
    and kpatch do not. A task sleeps in a patched ``.sched.text`` function: kpatch's
    best-effort walker drops that frame, switches the task and breaks consistency;
    klp's reliable walker and Ksplice's scan see it.

    Source: docs/livepatch.md §S27 (ksplice.c ``check_stack``; kernel/stacktrace.c
    ``stack_trace_consume_entry_nosched``).
    """
    stale = build(
        [Function("poller_fn", (Op(OpKind.FNPTR, "f"), sleep(True)), loops=True),
         Function("f", ())],
        [TaskSpec("poller", TaskKind.KTHREAD, ("poller_fn",))], {"f"}, cpus=1)
    sim = _sim(stale, model)
    sc = Script(sim)
    sc("sched 0 poller", "run poller *", "idle", "enable", "idle", "tick 6")
    stale_result = "applied" if sim.driver.done else (sim.driver.failed and "aborted") or "pending"
    hidden = build(
        [Function("sys_lock", (call("g"),)),
         Function("g", (sleep(True), call("f")), sched_text=True), Function("f", ())],
        [TaskSpec("user", TaskKind.USER, ("sys_lock",))], {"g", "f"}, cpus=1)
    sim2 = _sim(hidden, model)
    sc2 = Script(sim2)
    sc2("sched 0 user", "syscall user", "run user *", "enable", "tick")
    switched = not sc2.task("user").pending or sim2.driver.done
    sc2("wake user", "sched 0 user", "run user *", "tick 5")
    facts = {
        "stale_pointer": stale_result,
        "sleeping_in_sched_text_switched": switched,
        "sched_text_violations": _violations(sim2),
    }
    return Observed(sim2, facts)


# ---- the reference system for liveness and the plot ------------------------------------------


def reference_system() -> System:
    """A small server: why each model exists, on one system.

    * ``getty`` sleeps interruptibly in the patched ``n_tty_read`` for minutes;
    * three ``worker`` tasks hammer a patched system call;
    * ``nfsd`` sleeps uninterruptibly (a slow disk) in a patched function, for a
      while (sleeps end at the default wake rate);
    * ``kworker/0:1`` runs patched work and sleeps in its loop, freezable;
    * ``vhost`` is CPU-bound and only passes cond_resched();
    * two CPUs with their idle tasks.
    """
    fns = [
        Function("sys_read", (call("n_tty_read"),)),
        Function("n_tty_read", (sleep(True, forever=True),)),
        Function("sys_getpid", (call("do_getpid"),)),
        Function("do_getpid", ()),
        Function("sys_write", (call("nfs_write"),)),
        Function("nfs_write", (sleep(False),)),
        Function("worker_thread", (call("process_one_work"), sleep(True), FREEZE), loops=True),
        Function("process_one_work", (call("do_getpid"),)),
        Function("vhost_worker", (call("vhost_work"), COND_RESCHED), loops=True),
        Function("vhost_work", ()),
    ]
    tasks = [
        TaskSpec("getty", TaskKind.USER, ("sys_read",)),
        *(TaskSpec(f"worker{i}", TaskKind.USER, ("sys_getpid",)) for i in range(3)),
        TaskSpec("nfsd", TaskKind.USER, ("sys_write",)),
        TaskSpec("kworker/0:1", TaskKind.KTHREAD, ("worker_thread",), freezable=True),
        TaskSpec("vhost", TaskKind.KTHREAD, ("vhost_worker",)),
    ]
    return build(fns, tasks, {"n_tty_read", "do_getpid", "nfs_write"}, cpus=2)
