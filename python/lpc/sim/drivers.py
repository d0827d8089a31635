"""How each model moves tasks from one universe to the other, around its own judge.

One implementation of each model, two drivers: ``lpc check`` asks
``model.judge()`` once per task of a snapshot; the simulator asks the same
function at every point where the model's kernel code runs its check, on
facts built from the simulated stack. What a driver adds is only *where* the
checks and the check-free switches happen — the model's ``switch_points``
(:class:`~lpc.models.SwitchPoint`) — and the model's nudges:

* after every pass that left tasks behind, ``model.nudge(retry, facts)`` says
  what the model does to each of them (klp: ``wake_up_if_idle()``, and fake
  signals every ``signals_timeout`` passes; kGraft: signals and wake-ups at
  every ``kgr_work_fn`` run): the driver carries it out;
* Josh's freezer: a task the check could not switch is frozen — a user task in
  the signal path at kernel exit (an interruptible sleep is ended to get
  there), a freezable kthread at its ``try_to_freeze()`` — and checked again.

Drivers by unit of switching:

* :class:`ThreadDriver` — per-task universes (klp, josh, kgraft, ``*/switch_thread``);
* :class:`KernelDriver` — all at one instant, stop_machine (kpatch, ksplice, ``*/switch_kernel``);
* :class:`FunctionDriver` — one function for everyone at a retry (``*/switch_function``);
* :class:`ImmediateDriver` — everything at enable (null);
* :class:`TrivialDriver` — no switching; every call chooses by its caller (trivial).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lpc.models import (
    Model,
    Nudge,
    Outlook,
    StackSource,
    SwitchPoint,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    Verdict,
)

if TYPE_CHECKING:
    from lpc.sim.world import Frame, Kernel, Task


class Driver:
    #: The transition can be reversed mid-way (per-thread universes only).
    can_reverse = False

    def __init__(self, sim: Kernel, model: Model) -> None:
        self.sim = sim
        self.model = model
        self.points: frozenset[SwitchPoint] = frozenset(model.switch_points)
        self.done = False
        self.completed_at: float | None = None
        self.failed: str | None = None
        self.retries = 0
        #: tid → why the model says this task will never switch (its STUCK outlook).
        self.stuck: dict[int, str] = {}
        self.interval = model.retry_interval_s
        #: The stack walker the model's check reads.
        self.source: StackSource = model.stack_source

    # -- the redirect ---------------------------------------------------------------------------

    def version(self, t: Task, fn: str, parent: Frame | None) -> int:
        """The version a call to ``fn`` reaches (klp_ftrace_handler's decision)."""
        return self.sim.configs[t.universe][fn]

    # -- lifecycle ------------------------------------------------------------------------------

    def enable(self) -> None:
        for t in self.sim.tasks:
            t.universe = self.sim.src
            t.pending = True

    def tick(self) -> None:
        pass

    def reverse(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot reverse a transition")

    def wants_tick(self) -> bool:
        return not self.done and self.failed is None

    def pending_count(self) -> int:
        if not self.sim.started:
            return len(self.sim.tasks)
        return sum(1 for t in self.sim.tasks if t.pending)

    def finish(self) -> None:
        self.done = True
        self.completed_at = self.sim.time
        self.sim.complete()

    def fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            self.sim.note(f"-- {self.model.name}: transition fails: {why}")

    def judge(self, t: Task, *, stopped: bool = False, self_check: bool = False) -> TaskOutcome:
        return self.model.judge(self.facts(t, stopped=stopped, self_check=self_check))

    def facts(self, t: Task, *, stopped: bool = False, self_check: bool = False) -> TaskFacts:
        return self.sim.facts(t, self.source, stopped=stopped, self_check=self_check)

    # -- switch points the engine reaches (no-ops unless the model has them) -------------------

    def kernel_entry(self, t: Task) -> None:
        pass

    def kernel_exit(self, t: Task) -> None:
        pass

    def idle_loop(self, t: Task) -> None:
        pass

    def cond_resched(self, t: Task) -> None:
        pass

    def freezable_sleep(self, t: Task) -> None:
        pass

    def freeze_point(self, t: Task) -> None:
        pass


class ThreadDriver(Driver):
    """SWITCH_THREAD: each task carries its universe (task->patch_state)."""

    can_reverse = True

    def __init__(self, sim: Kernel, model: Model) -> None:
        super().__init__(sim, model)
        #: Passes since the transition (re)started, the ``retry`` of model.nudge()
        #: (transition.c: klp_signals_cnt, reset by klp_start_transition()).
        self.passes = 0

    def enable(self) -> None:
        super().enable()  # klp_init_transition(): every task and idle task
        self.tick()  # klp_try_complete_transition() runs at once

    def tick(self) -> None:
        if self.done or self.failed:
            return
        self.retries += 1
        #: The facts each check read this pass, reused for the nudges after it.
        checked: dict[int, TaskFacts] = {}
        if SwitchPoint.RETRY in self.points or SwitchPoint.FREEZER in self.points:
            for t in self.sim.tasks:
                if t.pending:
                    self._retry_one(t, checked)
        if any(t.pending for t in self.sim.tasks):
            self._nudge(checked)
            self.passes += 1
        else:
            self.finish()

    def _retry_one(self, t: Task, checked: dict[int, TaskFacts]) -> None:
        facts = checked[t.tid] = self.facts(t)
        out = self.model.judge(facts)
        if SwitchPoint.RETRY in self.points and (
            out.verdict is Verdict.SWITCH or out.extra.get("forced") is True
        ):
            self.stuck.pop(t.tid, None)
            self.sim.switch(t, "forced" if out.extra.get("forced") else "retry")
            return
        if out.outlook is Outlook.STUCK:
            self.stuck[t.tid] = out.reason
        else:
            self.stuck.pop(t.tid, None)
        if SwitchPoint.FREEZER in self.points:
            self._freeze(t, out)

    def _nudge(self, checked: dict[int, TaskFacts]) -> None:
        """Carry out what the model does to each task it left behind."""
        what = f"{self.model.name}'s fake signal"
        for t in self.sim.tasks:
            if not t.pending:
                continue
            facts = checked.get(t.tid) or self.facts(t)
            nudge = self.model.nudge(self.passes, facts)
            if nudge is Nudge.KICK_IDLE:
                t.kicked = True  # through do_idle() once more
            elif nudge is Nudge.FAKE_SIGNAL:
                self.sim.signal(t, what)  # ends an interruptible sleep only
            elif nudge is Nudge.WAKE_INTERRUPTIBLE and t.state == "S":
                self.sim.wake(t, f"woken by {what} (wake_up_state(TASK_INTERRUPTIBLE))")
            elif nudge is Nudge.WAKE_PROCESS and t.state in ("S", "D") and not (
                    t.sleep_op is not None and t.sleep_op.forever):
                # A wait whose condition never comes re-checks it and sleeps again.
                self.sim.wake(t, f"woken by {self.model.name} (wake_up_process())")

    def reverse(self) -> None:
        """klp_reverse_transition(): clear every pending flag, flip the target, restart.

        Tasks that never switched are already in the new target; the others must
        switch back, checked against the code they run now (the new functions).
        """
        sim = self.sim
        sim.src, sim.dst = sim.dst, sim.src
        sim.note(f"-- {self.model.name}: reversing the transition, target "
                 f"{sim.cname(sim.dst)}")
        for t in sim.tasks:
            t.pending = t.universe != sim.dst
        self.stuck.clear()
        self.passes = 0
        self.tick()

    # Josh's freezer ---------------------------------------------------------------------------

    def _freeze(self, t: Task, out: TaskOutcome) -> None:
        if out.outlook is Outlook.STUCK:
            self.fail(f"{t.name}: {out.reason}")
            return
        if out.outlook is not Outlook.SWITCHED or t.freeze_pending:
            return
        t.freeze_pending = True
        self.sim.note(f"{t.name}: freezing")
        if t.state == "S":
            if t.kind is TaskKind.USER:
                self.sim.signal(t, "the freezer's fake signal")
            elif t.kind is TaskKind.KTHREAD and t.spec.freezable:
                self.sim.wake(t, "woken by the freezer")

    def _recheck_frozen(self, t: Task) -> None:
        t.freeze_pending = False
        out = self.judge(t, self_check=True)
        if out.verdict is Verdict.SWITCH:
            self.sim.switch(t, "frozen and rechecked")
        else:
            self.fail(f"{t.name} frozen, but still on {out.reason}: the patch affects its "
                      "freezer path")

    # switch points --------------------------------------------------------------------------

    def kernel_entry(self, t: Task) -> None:
        if t.pending and SwitchPoint.KERNEL_ENTRY in self.points:
            self.sim.switch(t, "kernel entry")

    def kernel_exit(self, t: Task) -> None:
        if not t.pending:
            return
        if SwitchPoint.KERNEL_EXIT in self.points:
            self.sim.switch(t, "kernel exit")
        elif t.freeze_pending:
            self._recheck_frozen(t)  # frozen in the signal path on its way out

    def idle_loop(self, t: Task) -> None:
        if t.pending and SwitchPoint.IDLE_LOOP in self.points:
            self.sim.switch(t, "idle loop")

    def cond_resched(self, t: Task) -> None:
        if t.pending and SwitchPoint.COND_RESCHED in self.points:
            # __klp_sched_try_switch(): klp_try_switch_task(current), a check of itself.
            if self.judge(t, self_check=True).verdict is Verdict.SWITCH:
                self.sim.switch(t, "cond_resched")

    def freezable_sleep(self, t: Task) -> None:
        if t.pending and SwitchPoint.FREEZABLE_SLEEP in self.points:
            # 6.16+ __klp_sched_try_switch(): klp_try_switch_task(current) in
            # __schedule() for a task going to sleep with TASK_FREEZABLE.
            if self.judge(t, self_check=True).verdict is Verdict.SWITCH:
                self.sim.switch(t, "freezable sleep")

    def freeze_point(self, t: Task) -> None:
        if not t.pending or t.kind is not TaskKind.KTHREAD:
            return
        if SwitchPoint.KTHREAD_SAFE_POINT in self.points:
            # kGraft's own rule decides which kthreads have a safe point here:
            # those it expects to switch "after wakeup" (freezable, annotated).
            if self.judge(t).outlook is Outlook.AFTER_WAKEUP:
                self.sim.switch(t, "kthread safe point")
        elif t.freeze_pending and t.spec.freezable:
            self._recheck_frozen(t)


class KernelDriver(Driver):
    """SWITCH_KERNEL: stop_machine(), check every task, flip everyone or no one."""

    def __init__(self, sim: Kernel, model: Model) -> None:
        super().__init__(sim, model)
        self.max_attempts = model.attempts
        self.leave_kernel = model.cell[0] == "KERNEL"
        self.blockers: list[str] = []

    def enable(self) -> None:
        super().enable()
        if self.sim.idle_quiescent():
            self.tick()  # insmod: the first attempt is immediate
        else:
            self.sim.note("-- stop_machine waits for the idle tasks to reach schedule_idle()")

    def wants_tick(self) -> bool:
        # The stopper thread runs on a CPU only once its idle task schedules.
        return super().wants_tick() and self.sim.idle_quiescent()

    def passes(self, t: Task) -> bool:
        if self.leave_kernel:
            return t.kernel_stack_empty
        return self.judge(t, stopped=True).verdict is Verdict.SWITCH

    def tick(self) -> None:
        if self.done or self.failed:
            return
        for c, cur in enumerate(self.sim.cpu_current):
            if cur is None:
                self.sim.park_idle(c)  # the stopper thread takes every CPU
        self.retries += 1
        blockers = [t for t in self.sim.tasks if not self.passes(t)]
        if not blockers:
            self.sim.note(f"-- stop_machine: every task passes ({self.model.name})")
            for t in self.sim.tasks:
                self.sim.switch(t, "stop_machine")
            self.finish()
            return
        self.blockers = [t.name for t in blockers]
        self.sim.note(f"-- stop_machine: attempt {self.retries} fails, busy: "
                      f"{', '.join(self.blockers)}")
        for t in blockers:
            self.stuck[t.tid] = "busy at every attempt so far"
        if self.max_attempts is not None and self.retries >= self.max_attempts:
            self.fail(f"{self.retries} attempts failed ({', '.join(self.blockers)} busy); "
                      "nothing is patched")


class FunctionDriver(Driver):
    """SWITCH_FUNCTION: one function flips for every task at a check all tasks pass."""

    def __init__(self, sim: Kernel, model: Model) -> None:
        super().__init__(sim, model)
        self.flipped: set[str] = set()
        self.order: list[str] = []
        self.leave_kernel = model.cell[0] == "KERNEL"

    def version(self, t: Task, fn: str, parent: Frame | None) -> int:
        cfg = self.sim.dst if fn in self.flipped else self.sim.src
        return self.sim.configs[cfg][fn]

    def enable(self) -> None:
        super().enable()
        self.order = sorted(self.sim.patched_now)
        self.tick()

    def passes(self, t: Task) -> bool:
        if self.leave_kernel:
            return t.kernel_stack_empty
        return self.judge(t, stopped=True).verdict is Verdict.SWITCH

    def tick(self) -> None:
        if self.done:
            return
        self.retries += 1
        if not all(self.passes(t) for t in self.sim.tasks):
            return
        if len(self.flipped) < len(self.order):
            fn = self.order[len(self.flipped)]
            self.flipped.add(fn)
            self.sim.note(f"-- {fn} flips to {self.sim.cname(self.sim.dst)} for every task")
            for t in self.sim.tasks:
                self.sim.observer.on_switch(t, f"flip of {fn}")
        if len(self.flipped) == len(self.order):
            for t in self.sim.tasks:
                t.universe = self.sim.dst
                t.pending = False
            self.finish()


class ImmediateDriver(Driver):
    """Every task, every function, at the instant the patch is enabled."""

    def enable(self) -> None:
        super().enable()
        for t in self.sim.tasks:
            self.sim.switch(t, "enable")
        self.finish()


class TrivialDriver(Driver):
    """Vojtech's ftrace handler: ``if (!within_patched_set(parent_ip)) ip = new``.

    ``parent_ip`` is the return address the call leaves: the calling frame, or
    for a sibling call the frame *below* the caller, whose frame is gone. The
    replacement functions live in the patch module, outside the old patched
    set, so their calls go new too.
    """

    def version(self, t: Task, fn: str, parent: Frame | None) -> int:
        sim = self.sim
        if not sim.started:
            return sim.configs[sim.src][fn]
        if (
            parent is not None
            and parent.fn in sim.patched_now
            and parent.version == sim.configs[sim.src][parent.fn]
        ):
            return sim.configs[sim.src][fn]
        return sim.configs[sim.dst][fn]

    def wants_tick(self) -> bool:
        return False  # no completion point, nothing to retry


def make_driver(model: Model, sim: Kernel) -> Driver:
    points = frozenset(model.switch_points)
    if SwitchPoint.IMMEDIATE in points:
        return ImmediateDriver(sim, model)
    if SwitchPoint.PER_CALL in points:
        return TrivialDriver(sim, model)
    if SwitchPoint.STOP_MACHINE in points:
        return KernelDriver(sim, model)
    if SwitchPoint.FUNCTION_FLIP in points:
        return FunctionDriver(sim, model)
    return ThreadDriver(sim, model)
