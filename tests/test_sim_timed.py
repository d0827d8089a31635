"""Liveness on the reference system: who converges, when, and why the others never do."""

from __future__ import annotations

import pytest

from lpc.models import CONVERGING, Outlook, TaskKind, get_model
from lpc.sim.engine import ENABLE, Sim
from lpc.sim.scenarios import reference_system
from lpc.sim.system import Function, TaskSpec, build, call, sleep
from lpc.sim.timed import Clock, run_timed


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    system = reference_system()
    return {m: run_timed(system, get_model(m), seed=1, horizon_s=40.0)
            for m in ("null", "trivial", "josh", "klp", "kpatch", "kgraft", "ksplice")}


def test_null_is_complete_at_once(results: dict) -> None:
    assert results["null"].converged_at == 0.0


def test_klp_waits_for_the_fake_signal_to_move_getty(results: dict) -> None:
    klp = get_model("klp")
    done = results["klp"].converged_at
    assert done is not None
    # getty sleeps for ever in the patched n_tty_read: only klp_send_signals(),
    # after SIGNALS_TIMEOUT retries, makes it leave; completion is at the next retry.
    first_signals = klp.signals_timeout * klp.retry_interval_s
    assert first_signals <= done < first_signals + 2 * klp.retry_interval_s


@pytest.mark.parametrize("name", ["kpatch", "ksplice"])
def test_stop_machine_models_give_up_while_getty_sleeps_in_the_patch(results: dict,
                                                                     name: str) -> None:
    r = results[name]
    assert r.converged_at is None
    assert r.run.failed is not None and "getty" in r.run.failed
    assert "5 attempts" in r.run.failed


def test_kgraft_never_switches_a_kthread_without_a_safe_point(results: dict) -> None:
    r = results["kgraft"]
    assert r.converged_at is None and r.run.pending == 1
    assert "kgr_task_safe" in r.run.stuck["vhost"]


def test_josh_retries_the_cpu_bound_kthread_for_ever(results: dict) -> None:
    r = results["josh"]
    assert r.converged_at is None and r.run.pending == 1 and r.run.failed is None


def test_trivial_has_no_completion_point(results: dict) -> None:
    r = results["trivial"]
    assert r.converged_at is None and r.run.pending == len(reference_system().tasks)


def test_klp_without_cond_resched_waits_on_the_busy_kthread_with_frame_pointers() -> None:
    """No cond_resched() switch point (before 6.4, or 6.16+), and a walker that
    stops at kernel-mode registers: the busy kthread, preempted or running, is
    never checked clean."""
    r = run_timed(reference_system(), get_model("klp", cond_resched_switch=False,
                                                regs_frames_unreliable=True), seed=1,
                  horizon_s=40.0)
    assert r.converged_at is None


def test_orc_catches_the_busy_kthread_while_it_is_preempted() -> None:
    """x86 ORC walks through the interrupt frame of a preempted task, and a
    runnable task off its CPU is not -EBUSY: a retry that finds the busy
    kthread preempted switches it, with no cond_resched() switch point."""
    r = run_timed(reference_system(), get_model("klp", cond_resched_switch=False), seed=1,
                  horizon_s=40.0, record=True)
    assert r.converged_at is not None
    assert any("vhost: switched to new (retry)" in line for line in r.run.trace)


def test_timed_runs_are_deterministic_per_seed() -> None:
    system = reference_system()
    a = run_timed(system, get_model("klp"), seed=7, horizon_s=20.0)
    b = run_timed(system, get_model("klp"), seed=7, horizon_s=20.0)
    assert a.run.events == b.run.events and a.converged_at == b.converged_at


def test_snapshot_outlook_of_a_kthread_looping_in_a_patched_function_is_unknown() -> None:
    """Once a finding of the simulator (docs/simulator.md), now the model's rule:
    a kthread asleep *interruptibly* inside a patched function that loops on its
    sleep (an msleep_interruptible() loop, like the selftests' busy module) is
    woken by klp_send_signals() and returns to the same loop: it never
    switches, so the snapshot outlook no longer promises it does."""
    fns = [Function("worker_thread", (call("busy_loop"), sleep(True)), loops=True),
           Function("busy_loop", (sleep(True, forever=True),), loops=True)]
    kworker_spec = TaskSpec("kworker/0:1", TaskKind.KTHREAD, ("worker_thread",))
    system = build(fns, [kworker_spec], {"busy_loop"}, cpus=1)
    sim = Sim(system, get_model("klp"))
    clock = Clock(sim, seed=2)
    clock.run_until(0.5)
    sim.apply(ENABLE)
    kworker = sim.tasks[0]
    snapshot = sim.driver.judge(kworker)
    assert snapshot.outlook is Outlook.UNKNOWN and snapshot.outlook not in CONVERGING
    assert "goes back to sleep" in snapshot.reason
    clock.started()
    clock.run_until(60.0)
    assert kworker.pending and not sim.driver.done
    assert any("woken by klp's fake signal" in line for line in sim.trace)


def _resleeper() -> object:
    """A kthread that waits (D) inside the patched helper and then, briefly,
    in a freezable sleep of its own loop (wait_event_freezable)."""
    fns = [Function("loop", (call("nap"), sleep(True, freezable=True)), loops=True),
           Function("nap", (sleep(False),))]
    return build(fns, [TaskSpec("khelper", TaskKind.KTHREAD, ("loop",))], {"nap"}, cpus=1)


def test_6_16_switches_a_kthread_at_its_freezable_sleep() -> None:
    """676e8cf70cb0: __schedule() calls klp_sched_try_switch(prev) for a task
    whose state has TASK_FREEZABLE; it checks its own stack, clean outside nap."""
    new = Sim(_resleeper(), get_model("klp"))  # type: ignore[arg-type]
    clock = Clock(new, seed=3)
    clock.run_until(0.25)
    new.apply(ENABLE)
    clock.started()
    clock.run_until(30.0)
    assert new.driver.done
    assert any("freezable sleep" in line for line in new.trace)
    old = Sim(_resleeper(), get_model("klp", freezable_sleep_switch=False))  # type: ignore[arg-type]
    clock = Clock(old, seed=3)
    clock.run_until(0.25)
    old.apply(ENABLE)
    clock.started()
    clock.run_until(30.0)
    assert not any("freezable sleep" in line for line in old.trace)
