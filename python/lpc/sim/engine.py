"""The dynamic half: tasks running a :class:`~lpc.sim.system.System` under one model.

The simulation is a sequence of discrete events; which events are possible
depends only on the state (:meth:`Sim.enabled`), and which one happens next is
chosen from outside — by a Hypothesis-drawn list of integers
(:func:`run_choices`), by a seeded clock (:mod:`lpc.sim.timed`), or by a
recorded list (:meth:`Sim.replay`). So every run is deterministic and can be
printed and replayed.

Events:

``run t``       the task on a CPU executes its next op (a call, a return, a sleep, ...)
``syscall t k`` a user task in user space enters its ``k``-th system call
``sched c t``   CPU ``c``'s idle task, in ``schedule_idle()``, hands the CPU to runnable ``t``
``preempt t``   the task on a CPU is preempted (in the kernel: an interrupt frame remains)
``wake t``      a sleeping task's sleep ends
``signal t``    a real signal ends a user task's interruptible sleep: the system call
                returns to user space (-EINTR/restart)
``tick``        the model's periodic retry (its check, its nudges, its completion)
``enable``      the patch is enabled: the transition starts

The ftrace-like redirect at every patched function's entry asks the model's
driver (:mod:`lpc.sim.drivers`) which version a call reaches; the driver asks
``model.judge()`` wherever the model's kernel code runs a check, on
:class:`~lpc.models.TaskFacts` built here from the simulated stack as that
model's stack walker would see it (:meth:`Sim.facts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lpc.facts import FrameFact, facts_from_frames
from lpc.kernel import SCHED_FRAMES
from lpc.models import Model, Stack, StackSource, TaskFacts, TaskKind
from lpc.sim.drivers import Driver, make_driver
from lpc.sim.properties import Monitor, Violation
from lpc.sim.system import ROOTS, Op, OpKind, System, TaskSpec
from lpc.sim.world import Event, Frame, Task

__all__ = ["ENABLE", "TICK", "Event", "Frame", "RunResult", "Sim", "Task", "pick", "result_of",
           "run_choices"]

TICK: Event = ("tick", 0, 0)
ENABLE: Event = ("enable", 0, 0)


@dataclass
class RunResult:
    """What one run showed: violations, the trace, and how the transition ended."""

    violations: dict[str, Violation]
    events: list[Event]
    trace: list[str]
    completed_at: float | None
    failed: str | None
    time: float
    pending: int
    stuck: dict[str, str] = field(default_factory=dict)
    #: (time, tasks not yet switched) after every change, for plots.
    timeline: list[tuple[float, int]] = field(default_factory=list)
    event_count: int = 0


class Sim:
    """A running system: tasks, CPUs, shared objects, the transition in progress."""

    def __init__(
        self,
        system: System,
        model: Model,
        *,
        record: bool = True,
        driver: Driver | None = None,
        monitor: Monitor | None = None,
    ) -> None:
        self.system = system
        self.model = model
        self.functions = system.functions
        self.record = record
        self.trace: list[str] = []
        self.events: list[Event] = []
        self.time = 0.0
        #: configs[i][fn]: the version of fn that runs in universe i; 0 = the original kernel.
        self.configs: list[dict[str, int]] = [{name: 0 for name in self.functions}]
        self.version_names: dict[int, str] = {0: "old", 1: "new"}
        #: Names of configurations, for the trace (default: the version names).
        self.config_names: dict[int, str] = {}
        self.ever_patched: frozenset[str] = frozenset()
        #: The transition: from configuration src to dst, over the functions that differ.
        self.src = 0
        self.dst = 0
        self.patched_now: frozenset[str] = frozenset()
        self.started = False
        self.cpu_current: list[int | None] = [None] * system.cpus
        self.idle_of: dict[int, Task] = {}
        self.tasks: list[Task] = []
        #: Shared objects: [format, has_shadow]; format 0 = the original layout.
        self.objects: list[list[int | bool]] = [[0, False] for _ in range(system.slots)]
        self.timeline: list[tuple[float, int]] = []
        for spec in system.tasks:
            self._spawn(spec)
        self.driver: Driver = driver or make_driver(model, self)
        self.monitor: Monitor = monitor or Monitor(self)
        self.define_patch({f: 1 for f in system.patched})

    @property
    def observer(self) -> Monitor:
        """Who hears about switches a driver makes without the engine (a function flip)."""
        return self.monitor

    # ---- set-up ----------------------------------------------------------------------------------

    def _spawn(self, spec: TaskSpec) -> Task:
        t = Task(len(self.tasks), spec)
        self.tasks.append(t)
        if spec.kind is TaskKind.USER:
            t.in_user = True
            return t
        t.stack = [Frame(name, 0, root=True) for name in ROOTS[spec.kind]]
        t.stack.append(Frame(spec.entries[0], 0))
        if spec.kind is TaskKind.IDLE:
            self.idle_of[spec.cpu] = t
            # Every CPU starts in schedule_idle(), ready to hand itself to a task.
            t.stack[-1].pc = self._op_index(spec.entries[0], OpKind.SCHED_IDLE) + 1
            t.parked = True
        return t

    def _op_index(self, fn: str, kind: OpKind) -> int:
        for i, op in enumerate(self.functions[fn].ops):
            if op.kind is kind:
                return i
        raise ValueError(f"{fn} has no {kind.value}")

    def define_patch(self, changes: Mapping[str, int], base: int | None = None) -> int:
        """A new configuration: ``base`` (default: the latest) with ``changes`` applied."""
        cfg = dict(self.configs[-1 if base is None else base])
        cfg.update(changes)
        self.configs.append(cfg)
        self.ever_patched = frozenset(
            f for f in self.functions if any(c[f] != 0 for c in self.configs)
        )
        if not self.started:
            self.src, self.dst = 0, len(self.configs) - 1
            self.patched_now = self._differing(self.src, self.dst)
        return len(self.configs) - 1

    def _differing(self, a: int, b: int) -> frozenset[str]:
        ca, cb = self.configs[a], self.configs[b]
        return frozenset(f for f in self.functions if ca[f] != cb[f])

    def begin(self, src: int, dst: int, driver: Driver | None = None) -> None:
        """Start a transition from configuration ``src`` to ``dst``."""
        self.src, self.dst = src, dst
        self.patched_now = self._differing(src, dst)
        self.started = True
        self.driver = driver or make_driver(self.model, self)
        self.note(f"-- {self.model.name}: transition {self.cname(src)} → {self.cname(dst)} "
                  f"over {', '.join(sorted(self.patched_now)) or 'nothing'}")
        self.driver.enable()
        self._sample()

    def vname(self, version: int) -> str:
        return self.version_names.get(version, f"v{version}")

    def cname(self, cfg: int) -> str:
        return self.config_names.get(cfg, self.vname(cfg))

    # ---- the trace -----------------------------------------------------------------------------

    def note(self, text: str) -> None:
        if self.record:
            self.trace.append(f"[{max(len(self.events) - 1, 0):>3}] {text}")

    def frame_text(self, f: Frame) -> str:
        if f.fn in self.ever_patched:
            return f"{f.fn}@{self.vname(f.version)}"
        return f.fn

    def _sample(self) -> None:
        pending = self.driver.pending_count()
        if not self.timeline or self.timeline[-1][1] != pending:
            self.timeline.append((self.time, pending))

    # ---- what can happen next ------------------------------------------------------------------

    def on_cpu(self, t: Task) -> bool:
        if t.kind is TaskKind.IDLE:
            # Parked in schedule_idle(): it has handed its CPU over.
            return self.cpu_current[t.spec.cpu] is None and not t.parked
        return t.cpu is not None

    def _runnable(self) -> list[Task]:
        return [t for t in self.tasks
                if t.state == "R" and t.cpu is None and t.kind is not TaskKind.IDLE]

    def current_op(self, t: Task) -> Op | None:
        f = t.stack[-1]
        ops = self.functions[f.fn].ops
        if f.pc < len(ops):
            return ops[f.pc]
        return ops[0] if self.functions[f.fn].loops else None

    def enabled(self, *, environment_only: bool = False) -> list[Event]:
        """Every event possible now, in a fixed order (simple ones first, for shrinking)."""
        ev: list[Event] = []
        runnable = self._runnable()
        for c, cur in enumerate(self.cpu_current):
            if cur is not None:
                t = self.tasks[cur]
                if t.in_user:
                    ev.extend(("syscall", t.tid, k) for k in range(len(t.spec.entries)))
                else:
                    ev.append(("run", t.tid, 0))
                continue
            idle = self.idle_of[c]
            op = self.current_op(idle)
            # The scheduler switches straight to a runnable task; the idle task runs
            # only when there is none (or to get back to schedule_idle()).
            if runnable and self.idle_waiting(idle):
                ev.extend(("sched", c, t.tid) for t in runnable)
            elif op is not None and op.kind is OpKind.IDLE_WAIT and not (runnable or idle.kicked):
                pass  # nothing to do: the CPU idles
            else:
                ev.append(("run", idle.tid, 0))
        ev.extend(("wake", t.tid, 0) for t in self.tasks
                  if t.sleeping and t.sleep_op is not None and not t.sleep_op.forever)
        if not environment_only and self.started and self.driver.wants_tick():
            ev.append(TICK)
        ev.extend(("preempt", cur, 0) for cur in self.cpu_current if cur is not None)
        ev.extend(("signal", t.tid, 0) for t in self.tasks
                  if t.kind is TaskKind.USER and t.state == "S")
        return ev

    # ---- applying events -----------------------------------------------------------------------

    def apply(self, e: Event) -> None:
        kind, a, b = e
        self.events.append(e)
        if kind == "run":
            self._run(self.tasks[a])
        elif kind == "syscall":
            self._syscall(self.tasks[a], b)
        elif kind == "sched":
            self._sched(a, self.tasks[b])
        elif kind == "preempt":
            self._preempt(self.tasks[a])
        elif kind == "wake":
            self.wake(self.tasks[a])
        elif kind == "signal":
            self.signal(self.tasks[a])
        elif kind == "tick":
            self.note(f"-- tick: {self.model.name} retries")
            self.driver.tick()
        elif kind == "enable":
            self.begin(self.src, self.dst)
        else:
            raise ValueError(f"unknown event {e!r}")
        self.monitor.after_event()
        self._sample()

    def replay(self, events: Sequence[Event]) -> None:
        """Apply a recorded event list, checking each was possible."""
        for e in events:
            if e != ENABLE and e not in self.enabled():
                raise ValueError(f"event {e} is not possible at step {len(self.events)}")
            self.apply(e)

    def _run(self, t: Task) -> None:
        t.parked = False
        f = t.stack[-1]
        if f.root:  # a forked child in ret_from_fork: straight back to user space
            self._exit_to_user(t, "returns to user space from fork")
            return
        fn = self.functions[f.fn]
        if f.pc >= len(fn.ops):
            if not fn.loops:
                self._return(t)
                return
            f.pc = 0
        op = fn.ops[f.pc]
        self.monitor.on_op(t, f)
        k = op.kind
        if k is OpKind.CALL:
            f.pc += 1
            self._call(t, op.target, issuer=f, parent=f, tail=False)
        elif k is OpKind.TAIL:
            t.stack.pop()
            parent = t.stack[-1]
            self._call(t, op.target, issuer=f, parent=parent, tail=True)
        elif k is OpKind.SLEEP:
            t.state = "S" if op.interruptible else "D"
            t.sleep_op = op
            if op.freezable:
                # __schedule() → klp_sched_try_switch(prev) with the sleep's state
                # set: the task is still current, and checks its own stack.
                self.driver.freezable_sleep(t)
            self._release_cpu(t)
            self.note(f"{t.name}: sleeps ({t.state}) in {self.frame_text(f)}")
        elif k is OpKind.COND_RESCHED:
            f.pc += 1
            self.note(f"{t.name}: cond_resched() in {self.frame_text(f)}")
            self.driver.cond_resched(t)
        elif k is OpKind.FREEZE:
            f.pc += 1
            self.note(f"{t.name}: try_to_freeze() in {self.frame_text(f)}")
            self.driver.freeze_point(t)
        elif k is OpKind.ACCESS:
            f.pc += 1
            self.note(f"{t.name}: {self.frame_text(f)} {'allocates' if op.alloc else 'uses'} "
                      f"obj{op.slot}")
            self.monitor.on_access(t, f, op)
        elif k is OpKind.FNPTR:
            f.pc += 1
            f.stale.append(op.target)
            self.note(f"{t.name}: {self.frame_text(f)} keeps &{op.target} in a local")
        elif k is OpKind.IDLE_WAIT:
            f.pc += 1
            t.kicked = False
        elif k is OpKind.SCHED_IDLE:
            f.pc += 1
        elif k is OpKind.IDLE_SWITCH:
            # klp_update_patch_state() and do_idle()'s return are one step: klp's
            # completion waits for every CPU to schedule (klp_synchronize_transition),
            # so no check can fall between the two.
            f.pc += 1
            self.driver.idle_loop(t)
            self._return(t)

    def _call(
        self, t: Task, target: str, *, issuer: Frame, parent: Frame | None, tail: bool
    ) -> None:
        version = self.driver.version(t, target, parent)
        callee = Frame(target, version)
        t.stack.append(callee)
        if self.record:
            how = "tail-calls" if tail else "calls"
            self.note(f"{t.name}: {self.frame_text(issuer)} {how} {self.frame_text(callee)}")
        self.monitor.on_call(t, issuer, callee, tail)

    def _return(self, t: Task) -> None:
        f = t.stack.pop()
        top = t.stack[-1]
        if not top.root:
            self.note(f"{t.name}: {self.frame_text(f)} returns to {self.frame_text(top)}")
            return
        self.note(f"{t.name}: {self.frame_text(f)} returns")
        if t.kind is TaskKind.USER:
            self._exit_to_user(t, "returns to user space")
        elif t.kind is TaskKind.IDLE:
            self._call(t, t.spec.entries[0], issuer=top, parent=top, tail=False)
        else:
            raise AssertionError(f"kthread {t.name}'s thread function returned")

    def _exit_to_user(self, t: Task, why: str) -> None:
        # exit_to_user_mode_loop(): klp_update_patch_state() runs with only the
        # entry frames left (kernel/entry/common.c).
        self.note(f"{t.name}: {why}")
        self.driver.kernel_exit(t)
        t.stack.clear()
        t.in_user = True

    def _syscall(self, t: Task, k: int) -> None:
        t.in_user = False
        t.stack = [Frame(name, 0, root=True) for name in ROOTS[TaskKind.USER]]
        self.note(f"{t.name}: enters the kernel")
        self.driver.kernel_entry(t)
        root = t.stack[-1]
        self._call(t, t.spec.entries[k], issuer=root, parent=root, tail=False)

    def idle_waiting(self, idle: Task) -> bool:
        """In schedule_idle() already, or at a point where need_resched sends it there."""
        op = self.current_op(idle)
        return idle.parked or (op is not None and op.kind in (OpKind.IDLE_WAIT, OpKind.SCHED_IDLE))

    def idle_quiescent(self) -> bool:
        """Every idle task can be switched away from now (it is never preempted
        elsewhere: the idle loop runs with preemption disabled)."""
        return all(self.idle_waiting(idle) for idle in self.idle_of.values())

    def park_idle(self, c: int) -> None:
        """need_resched: the idle task leaves cpuidle and calls schedule_idle()."""
        idle = self.idle_of[c]
        if idle.parked:
            return
        do_idle = self.functions[idle.spec.entries[0]]
        while idle.stack[-1].fn != do_idle.name:
            idle.stack.pop()
        idle.stack[-1].pc = self._op_index(do_idle.name, OpKind.SCHED_IDLE) + 1
        idle.parked = True

    def _sched(self, c: int, t: Task) -> None:
        self.park_idle(c)
        self.cpu_current[c] = t.tid
        t.cpu = c
        t.irq = False
        self.note(f"cpu{c}: runs {t.name}")

    def _release_cpu(self, t: Task) -> None:
        if t.cpu is not None:
            self.cpu_current[t.cpu] = None
            t.cpu = None

    def _preempt(self, t: Task) -> None:
        self._release_cpu(t)
        t.irq = not t.in_user
        self.note(f"{t.name}: preempted" + ("" if t.in_user else " in the kernel"))

    def wake(self, t: Task, why: str = "woken") -> None:
        t.state = "R"
        t.sleep_op = None
        t.stack[-1].pc += 1
        self.note(f"{t.name}: {why}")

    def signal(self, t: Task, why: str = "a signal") -> None:
        """An interruptible sleep ends with -EINTR: the system call unwinds to user space."""
        if t.kind is not TaskKind.USER or t.state != "S":
            return
        t.state = "R"
        t.sleep_op = None
        while not t.stack[-1].root:
            t.stack.pop()
        self._exit_to_user(t, f"{why} ends its sleep; the system call returns to user space")

    def fork(self, parent: Task, name: str | None = None) -> Task:
        """A user task in a system call forks: the child starts in ret_from_fork.

        It copies the parent's universe and pending flag (klp_copy_process();
        kGraft copies TIF_KGR_IN_PROGRESS the same way).
        """
        if parent.kind is not TaskKind.USER or parent.in_user:
            raise ValueError("only a user task inside a system call forks")
        child = Task(len(self.tasks), parent.spec, name or f"{parent.name}-child")
        child.stack = [Frame(n, 0, root=True) for n in ROOTS[TaskKind.USER]]
        child.universe = parent.universe
        child.pending = parent.pending
        self.tasks.append(child)
        self.note(f"{parent.name}: forks {child.name} (universe {self.cname(child.universe)}, "
                  f"{'pending' if child.pending else 'not pending'})")
        return child

    # ---- switching and completion (called by drivers) ------------------------------------------

    def switch(self, t: Task, where: str) -> None:
        self.monitor.on_switch(t, where)
        t.universe = self.dst
        t.pending = False
        t.switched_at = self.time
        self.note(f"{t.name}: switched to {self.cname(self.dst)} ({where})")

    def complete(self) -> None:
        self.note(f"-- {self.model.name}: transition complete")
        self.monitor.on_complete()
        # Post-patch callbacks (kpatch: inside stop_machine) convert the shared data.
        if self.system.convertible:
            fmt = 0 if self.dst == 0 else 1
            for obj in self.objects:
                obj[0] = fmt

    # ---- what a model's check sees -------------------------------------------------------------

    def facts(
        self, t: Task, source: StackSource, *, stopped: bool = False, self_check: bool = False
    ) -> TaskFacts:
        """The task as ``source`` shows it now.

        ``stopped``: inside stop_machine(), where every task is off its CPU;
        ``self_check``: the task checks its own stack (cond_resched(), the freezer).
        """
        running = self.on_cpu(t)
        entries, irq = self._walk(t, running, stopped, self_check, source)
        seen = []
        for name, fr, stale in entries:
            if stale:  # a `?` frame: the address of the original function, in a local
                hit = name in self.patched_now and self.configs[t.universe][name] == 0
            else:
                hit = fr is not None and name in self.patched_now and self._counts(t, fr, source)
            seen.append(FrameFact(name, not stale, name if hit else None,
                                  hit and self._sched_text(name)))
        reliable = source is StackSource.RELIABLE
        # The same builder as a dump's tasks (lpc.facts): the simulated stack is
        # what the model's walker would print.
        return facts_from_frames(
            index=t.tid,
            pid=t.tid,
            tid=t.tid,
            comm=t.name,
            state=t.state,
            kind=t.kind,
            kind_evidence="simulated",
            on_cpu=running and not stopped and not self_check,
            printed=Stack.UNWIND_FAILURE if reliable and t.spec.unreliable else Stack.COMPLETE,
            interrupted=reliable and irq,
            frames=seen,
            freezable=t.spec.freezable if t.kind is TaskKind.KTHREAD else None,
            extra_depth=t.spec.extra_depth,
        )

    def _counts(self, t: Task, fr: Frame, source: StackSource) -> bool:
        """Is this frame inside the range the model's check compares against?"""
        if source in (StackSource.EXACT, StackSource.NONE):
            return fr.version != self.configs[self.dst][fr.fn]
        # klp_check_stack_func(), kpatch_backtrace_address_verify(), ksplice's
        # safety records: the code the task runs today in the transitioning
        # functions, i.e. its own universe's version.
        return fr.version == self.configs[t.universe][fr.fn]

    def _walk(
        self, t: Task, running: bool, stopped: bool, self_check: bool, source: StackSource
    ) -> tuple[list[tuple[str, Frame | None, bool]], bool]:
        """``(name, the Frame it came from or None, is a stale word)`` innermost
        first, and whether an interrupt frame is on the stack. Scheduler frames
        the engine does not simulate have no Frame; stale words (function
        addresses a word scan finds in locals) are no frames at all."""
        real: list[tuple[str, Frame | None, bool]] = []
        for fr in reversed(t.stack):
            if source is StackSource.WORD_SCAN:
                real.extend((w, None, True) for w in reversed(fr.stale))
            real.append((fr.fn, fr, False))
        top: list[str]
        irq = False
        if t.in_user:
            top = [] if running and not stopped and not self_check else [
                "__schedule", "schedule", "exit_to_user_mode_loop"]
        elif self_check or (running and not stopped):
            top = []
        elif running or (t.state == "R" and t.irq):
            # Preempted by an interrupt (or stopped by the stopper thread there).
            top = ["__schedule", "preempt_schedule_irq", "asm_sysvec_apic_timer_interrupt"]
            irq = True
        elif t.kind is TaskKind.IDLE:
            top = ["__schedule", "schedule_idle"] if t.parked else []
        else:
            top = ["__schedule", "schedule"]
        entries = [(n, None, False) for n in top] + real
        if source is StackSource.BEST_EFFORT:
            entries = [e for e in entries if not self._sched_text(e[0])]
        return entries, irq

    def _sched_text(self, name: str) -> bool:
        if name in SCHED_FRAMES:
            return True
        f = self.functions.get(name)
        return f is not None and f.sched_text


def pick(enabled: Sequence[Event], choice: int) -> Event:
    return enabled[choice % len(enabled)]


def run_choices(
    system: System,
    model: Model,
    warmup: Sequence[int],
    after: Sequence[int],
    *,
    record: bool = False,
    stop_on: frozenset[str] | None = None,
) -> RunResult:
    """Run ``warmup`` choices on the unpatched system, enable the patch, run ``after``.

    Each choice picks one of the events possible at that moment (modulo their
    number). Stops early once a property in ``stop_on`` is violated.
    """
    sim = Sim(system, model, record=record)
    for c in warmup:
        ev = sim.enabled(environment_only=True)
        if not ev:
            break
        sim.apply(pick(ev, c))
        sim.time += 1.0
    sim.apply(ENABLE)
    for c in after:
        if stop_on and stop_on & sim.monitor.first.keys():
            break
        ev = sim.enabled()
        if not ev:
            break
        sim.apply(pick(ev, c))
        sim.time += 1.0
    return result_of(sim)


def result_of(sim: Sim) -> RunResult:
    return RunResult(
        violations={p.value: v for p, v in sim.monitor.first.items()},
        events=list(sim.events),
        trace=list(sim.trace),
        completed_at=sim.driver.completed_at,
        failed=sim.driver.failed,
        time=sim.time,
        pending=sim.driver.pending_count(),
        stuck={sim.tasks[tid].name: why for tid, why in sim.driver.stuck.items()},
        timeline=list(sim.timeline),
        event_count=len(sim.events),
    )
