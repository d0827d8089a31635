"""The simulator's mechanics on hand-built systems: redirects, walkers, switch points.

Each test drives a tiny system with an explicit event script and checks one
rule the simulator takes from a kernel source (named in the test), or shows
that a property check fires on a run that breaks it (so no check is dead).
"""

from __future__ import annotations

import json

import pytest

from lpc.models import Stack, StackSource, TaskKind, Verdict, get_model
from lpc.sim.drivers import ThreadDriver
from lpc.sim.engine import ENABLE, Sim, run_choices
from lpc.sim.properties import Property
from lpc.sim.scenarios import Script
from lpc.sim.search import minimize, replay_counterexample, explain
from lpc.sim.strategies import Example
from lpc.sim.system import (
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
    system_from_json,
    system_to_json,
    tail,
)


def pair(*, sched_text: bool = False) -> System:
    """g sleeps, then calls f; f is reached only from g (so it may change prototype)."""
    fns = [Function("sys_p", (call("g"),)),
           Function("g", (sleep(True), call("f")), sched_text=sched_text), Function("f", ())]
    return build(fns, [TaskSpec("user", TaskKind.USER, ("sys_p",))], {"g", "f"}, cpus=1)


def asleep_in_g(model: str, system: System | None = None) -> tuple[Sim, Script]:
    sim = Sim(system or pair(), get_model(model))
    sc = Script(sim)
    sc("sched 0 user", "syscall user", "run user *")
    return sim, sc


def test_system_knows_which_functions_may_change_prototype() -> None:
    s = pair()
    assert s.prototype_changed == {"f"}  # g's caller sys_p is unpatched
    assert s.callers("g") == {"sys_p"}
    assert s.callers("sys_p") == {"do_syscall_64"}


def test_invalid_systems_are_refused() -> None:
    with pytest.raises(ValueError, match="last op"):
        Function("x", (tail("y"), call("z")))
    with pytest.raises(ValueError, match="unknown function"):
        build([Function("a", (call("nowhere"),))], [], {"a"})
    with pytest.raises(ValueError, match="must loop"):
        build([Function("k", ())], [TaskSpec("k", TaskKind.KTHREAD, ("k",))], set())


def test_null_reaches_new_code_from_an_old_activation() -> None:
    sim, sc = asleep_in_g("null")
    sc("enable", "wake user", "sched 0 user", "run user")
    assert [f"{f.fn}@{f.version}" for f in sim.tasks[0].stack[3:]] == ["g@0", "f@1"]
    assert Property.CALL_PAIR in sim.monitor.first
    assert Property.PER_THREAD in sim.monitor.first


def test_klp_blocks_a_task_sleeping_in_a_patched_function_and_switches_it_at_exit() -> None:
    sim, sc = asleep_in_g("klp")
    sc("enable")
    user = sim.tasks[0]
    outcome = sim.driver.judge(user)
    assert outcome.verdict is Verdict.BLOCKED and "g" in outcome.reason
    assert user.pending
    sc("wake user", "sched 0 user", "run user *")
    assert not user.pending  # exit_to_user_mode_loop → klp_update_patch_state
    hazards = {Property.ATOMICITY, Property.PER_THREAD, Property.CALL_PAIR, Property.COMPLETION}
    assert not sim.monitor.first.keys() & hazards


def test_reliable_walker_sees_sched_text_and_best_effort_walker_does_not() -> None:
    sim, sc = asleep_in_g("klp", pair(sched_text=True))
    sc("enable")
    user = sim.tasks[0]
    reliable = sim.facts(user, StackSource.RELIABLE)
    best_effort = sim.facts(user, StackSource.BEST_EFFORT)
    assert reliable.patched_function == "g" and "schedule" in reliable.frames
    assert best_effort.patched_frame is None and "schedule" not in best_effort.frames
    # kernel/stacktrace.c stack_trace_consume_entry_nosched: kpatch passes the check
    assert get_model("kpatch").judge_task(best_effort).verdict is Verdict.SWITCH


def test_preempted_in_the_kernel_is_unreliable_only_without_orc() -> None:
    fns = [Function("sys_spin", (call("work"), call("work"))), Function("work", ())]
    s = build(fns, [TaskSpec("user", TaskKind.USER, ("sys_spin",))], {"work"}, cpus=1)
    sim = Sim(s, get_model("klp"))
    Script(sim)("sched 0 user", "syscall user", "preempt user")
    user = sim.tasks[0]
    reliable = sim.facts(user, StackSource.RELIABLE)
    assert reliable.stack is Stack.COMPLETE and reliable.interrupted
    assert not sim.facts(user, StackSource.BEST_EFFORT).interrupted
    # The walker decides: ORC walks through the registers, frame pointers stop.
    assert get_model("klp").judge_task(reliable).verdict is not Verdict.UNRELIABLE
    assert get_model("klp", regs_frames_unreliable=True).judge_task(
        reliable).verdict is Verdict.UNRELIABLE


def test_word_scan_counts_a_stale_pointer() -> None:
    fns = [Function("poll_fn", (Op(OpKind.FNPTR, "f"), sleep(True)), loops=True),
           Function("f", ())]
    s = build(fns, [TaskSpec("poller", TaskKind.KTHREAD, ("poll_fn",))], {"f"}, cpus=1)
    sim = Sim(s, get_model("ksplice"))
    Script(sim)("sched 0 poller", "run poller *", "enable")
    poller = sim.tasks[0]
    scan = sim.facts(poller, StackSource.WORD_SCAN, stopped=True)
    walk = sim.facts(poller, StackSource.RELIABLE, stopped=True)
    assert scan.patched_frames_any and scan.patched_frame is None
    assert not walk.patched_frames_any
    assert get_model("ksplice").judge_task(scan).verdict is Verdict.BLOCKED


def test_trivial_uses_the_caller_and_loses_it_in_a_tail_call() -> None:
    fns = [Function("u", (call("g"),)), Function("g", (sleep(True), tail("f"))),
           Function("f", ())]
    s = build(fns, [TaskSpec("user", TaskKind.USER, ("u",))], {"g", "f"}, cpus=1)
    sim = Sim(s, get_model("trivial"))
    sc = Script(sim)
    sc("sched 0 user", "syscall user", "run user *", "enable", "wake user", "sched 0 user",
       "run user")
    assert [(f.fn, f.version) for f in sim.tasks[0].stack[2:]] == [("u", 0), ("f", 1)]
    assert "tail-calls f@new" in sim.monitor.first[Property.CALL_PAIR].message


def test_kgraft_switches_a_kthread_at_its_safe_point_whatever_its_stack() -> None:
    fns = [Function("loop", (call("f"), sleep(True), FREEZE), loops=True), Function("f", ())]
    s = build(fns, [TaskSpec("kworker/0:0", TaskKind.KTHREAD, ("loop",), kgr_safe=True)],
              {"loop", "f"}, cpus=1)
    sim = Sim(s, get_model("kgraft"))
    # enable: kgr_wakeup_kthreads() wakes it (wake_up_process), no outside wake-up needed.
    Script(sim)("sched 0 kworker/0:0", "run kworker/0:0 *", "enable",
                "sched 0 kworker/0:0", "run kworker/0:0 2")
    assert any("wake_up_process()" in line for line in sim.trace)
    assert not sim.tasks[0].pending
    assert "kthread_safe_point" not in sim.monitor.first  # not a property name
    assert Property.LEAVE_KERNEL in sim.monitor.first
    assert "loop@old calls f@new" in sim.monitor.first[Property.CALL_PAIR].message


def test_klp_idle_task_switches_at_the_tail_of_do_idle() -> None:
    s = build([], [], set(), cpus=1, patch_cpuidle=True)
    sim = Sim(s, get_model("klp"))
    idle = sim.tasks[0]
    sc = Script(sim)
    sc("idle")  # the idle task waits in cpuidle_enter, on its CPU
    sc("enable")
    assert sim.driver.judge(idle).verdict is Verdict.RUNNING  # task_curr → -EBUSY
    assert idle.kicked  # wake_up_if_idle()
    sc("idle")
    assert not idle.pending
    assert not sim.monitor.first.keys() - {Property.LEAVE_KERNEL}


def test_stop_machine_waits_for_idle_tasks_to_reach_schedule_idle() -> None:
    s = build([], [], set(), cpus=1, patch_do_idle=True)
    sim = Sim(s, get_model("kpatch"))
    sim.apply(("run", 0, 0))  # the idle task leaves schedule_idle, into a new do_idle
    assert not sim.idle_quiescent()
    sim.apply(ENABLE)
    assert not sim.driver.wants_tick() and sim.driver.retries == 0
    Script(sim)("idle")
    assert sim.driver.wants_tick()


def test_fork_copies_universe_and_pending_flag() -> None:
    fns = [Function("sys_clone", (call("copy"),)), Function("copy", ()), Function("f", ())]
    s = build(fns, [TaskSpec("parent", TaskKind.USER, ("sys_clone",))], {"f"}, cpus=1)
    sim = Sim(s, get_model("klp"))
    Script(sim)("sched 0 parent", "syscall parent", "enable")
    child = sim.fork(sim.tasks[0])
    assert (child.universe, child.pending) == (sim.tasks[0].universe, True)


def test_klp_reversal_switches_tasks_back() -> None:
    sim, sc = asleep_in_g("klp")
    fns_user = sim.tasks[0]
    sc("enable")
    assert fns_user.pending
    driver = sim.driver
    assert isinstance(driver, ThreadDriver)
    driver.reverse()  # the sleeper never switched: it is already at the new target
    assert not fns_user.pending and sim.dst == 0


def test_choices_are_deterministic_and_events_replay() -> None:
    s = pair()
    a = run_choices(s, get_model("klp"), [0, 0, 0], [3, 1, 4, 1, 5, 9, 2, 6], record=True)
    b = run_choices(s, get_model("klp"), [0, 0, 0], [3, 1, 4, 1, 5, 9, 2, 6], record=True)
    assert a.events == b.events and a.trace == b.trace
    sim = Sim(s, get_model("klp"), record=True)
    sim.replay(a.events)
    assert sim.trace == a.trace
    with pytest.raises(ValueError, match="not possible"):
        Sim(s, get_model("klp")).replay([("wake", 0, 0)])


def test_system_json_round_trip() -> None:
    s = build([Function("g", (sleep(False, forever=True), access(0, alloc=True), tail("f"))),
               Function("f", (), sched_text=True)],
              [TaskSpec("u", TaskKind.USER, ("g",), unreliable=True, extra_depth=3)],
              {"g"}, cpus=2, slots=1)
    doc = json.loads(json.dumps(system_to_json(s)))
    assert system_from_json(doc) == s


def test_counterexample_is_minimised_and_replays_from_json() -> None:
    ex = Example(pair(), (0, 0, 0), (0,) * 12)
    cx = explain("null", "prototype", ex)
    assert cx.prop == "call_pair"
    events = list(cx.events)
    assert minimize(pair(), "null", events, [Property.CALL_PAIR]) == events  # a fixpoint
    sim = replay_counterexample("null", json.loads(json.dumps(cx.as_json())))
    assert Property.CALL_PAIR in sim.monitor.first


class _Migrating(ThreadDriver):
    """A mutant: moves in-flight activations to the new version when a task switches."""

    def enable(self) -> None:
        super().enable()
        for t in self.sim.tasks:
            for f in t.stack:
                if f.fn in self.sim.patched_now:
                    f.version = self.sim.configs[self.sim.dst][f.fn]


@pytest.mark.parametrize(
    ("model", "prop", "make"),
    [
        ("klp", Property.ATOMICITY, "migrating"),
        ("null", Property.COMPLETION, None),
        ("null", Property.LEAVE_KERNEL, None),
        ("null", Property.SYSTEM_WIDE, None),
    ],
)
def test_every_property_check_fires_on_a_run_that_breaks_it(
    model: str, prop: Property, make: str | None
) -> None:
    s = pair()
    sim = Sim(s, get_model(model), driver=None)
    if make == "migrating":
        sim.driver = _Migrating(sim, sim.model)
    sc = Script(sim)
    sc("sched 0 user", "syscall user", "run user")  # in g, before its sleep
    sim.begin(sim.src, sim.dst, driver=sim.driver)
    sc("run user", "wake user", "sched 0 user", "run user *")
    assert prop in sim.monitor.first


def test_data_checks_fire_for_old_readers_of_new_data() -> None:
    fns = [Function("alloc", (access(0, alloc=True),)), Function("use", (sleep(True), access(0)))]
    tasks = [TaskSpec("reader", TaskKind.USER, ("use",)), TaskSpec("writer", TaskKind.USER,
                                                                    ("alloc",))]
    s = build(fns, tasks, {"alloc", "use"}, cpus=1, slots=1)
    sim = Sim(s, get_model("klp"))
    Script(sim)("sched 0 reader", "syscall reader", "run reader *", "enable", "sched 0 writer",
                "syscall writer", "run writer *", "wake reader", "sched 0 reader",
                "run reader *")
    assert {Property.DATA_FORMAT, Property.DATA_SHADOW} <= sim.monitor.first.keys()
