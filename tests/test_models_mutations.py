"""Each model's rules, one row per rule, pinned to the exact answer.

The property tests of test_models.py restate each model as a decision table
over random facts; these rows pin the parts a random table leaves loose and a
mutation tool found unchecked: the boundaries (MAX_STACK_ENTRIES = 100 is
still reliable, 101 is not), the nudge schedule (klp_send_signals() every
SIGNALS_TIMEOUT = 15 retries, never at the first pass), the worst-case times
(SIGNALS_TIMEOUT x the retry interval), the errno each verdict mirrors, and
the reason sentence the report prints beside each task. Sources, per model:
kernel/livepatch/transition.c (klp), kpatch kmod/core/core.c (kpatch),
kernel/kgraft.c (kGraft), the 2014 mails (josh, trivial), ksplice.c.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lpc.models import (
    Kgraft,
    Klp,
    Kpatch,
    Ksplice,
    Matrix,
    Model,
    Null,
    Outlook,
    Stack,
    SwitchPoint,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    Trivial,
    Verdict,
)
from lpc.models.base import Nudge, StackSource, TalliedOutcomes, count_where, summarize, tally
from lpc.models.josh import Josh
from lpc.models.kpatch import all_or_nothing
from lpc.patch import Patch

O, V, K = Outlook, Verdict, TaskKind


def task(**kw: Any) -> TaskFacts:
    """A user task asleep (S) off CPU, with a complete 10-frame stack and no patched frame."""
    base: dict[str, Any] = dict(
        index=0, pid=100, tid=100, comm="bash", state="S", kind=K.USER, kind_evidence="test",
        on_cpu=False, stack=Stack.COMPLETE, depth=10,
    )
    base.update(kw)
    return TaskFacts(**base)


def on(fn: str = "do_wait", at: int = 2, **kw: Any) -> TaskFacts:
    """A task whose frame ``at`` is the patched function ``fn``."""
    frames = tuple(fn if i == at else f"f{i}" for i in range(10))
    return task(patched_frame=at, patched_function=fn, frames=frames, patched_frames_any=(at,), **kw)


def answer(o: TaskOutcome) -> tuple[Verdict, Outlook, str | None, float | None, str]:
    return (o.verdict, o.outlook, o.errno, o.eta_s, o.reason)


ZOMBIE = "has exited (zombie): no stack left, so nothing on it can be patched"
SIGNAL_15 = "the fake signal after 15 retries ends its sleep and it switches at kernel exit"
NOT_ENDED = "fake signals do not end that sleep; it switches at kernel exit once the sleep ends on its own"
NO_RELIABLE = "no reliable stack traces on this kernel"
HIDDEN = "the dump cannot show the patched function (/proc stacks hide .sched.text)"
CHECKED_AGAIN = "is running; its stack is checked again"
WAKES_IT = ("wake_up_state(TASK_INTERRUPTIBLE) cannot wake it; only the end of that sleep can "
            "move it")
#: klp of 6.4–6.15: the cond_resched() switch point.
K612 = Klp(cond_resched_switch=True, freezable_sleep_switch=False, profile="6.4–6.15")
AT_COND_RESCHED = f"{CHECKED_AGAIN} at its next cond_resched() or at a retry while it is off its CPU"
AT_FREEZABLE = (f"{CHECKED_AGAIN} when it goes to sleep with TASK_FREEZABLE (__schedule(), 6.16+: "
                "cond_resched() no longer checks) or at a retry while it is off its CPU")
SLEEPS_AGAIN = ("it switches only if it then sleeps outside the patched set (a freezable sleep "
                "switches it at once, in __schedule())")

# ---- klp: klp_try_switch_task() and what happens next ----------------------------------------

KLP_ROWS: list[tuple[str, Model, TaskFacts, tuple[Any, ...]]] = [
    ("zombie Z", Klp(), task(state="Z", stack=Stack.EMPTY, depth=0),
     (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("dead X", Klp(), on(state="X"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("no reliable stacks, user asleep", Klp(reliable_stacks=False), on(),
     (V.UNRELIABLE, O.AFTER_SIGNAL, "EINVAL", 15.0, f"{NO_RELIABLE}; {SIGNAL_15}")),
    ("no reliable stacks, idle", Klp(reliable_stacks=False), task(kind=K.IDLE, on_cpu=True),
     (V.UNRELIABLE, O.AFTER_WAKEUP, "EINVAL", 1.0, f"{NO_RELIABLE}; switches in do_idle()")),
    ("no reliable stacks, kthread", Klp(reliable_stacks=False), task(kind=K.KTHREAD),
     (V.UNRELIABLE, O.STUCK, "EINVAL", None,
      f"{NO_RELIABLE}: a kernel thread has no kernel exit to switch at")),
    ("no reliable stacks, unknown kind", Klp(reliable_stacks=False), task(kind=K.UNKNOWN),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
      f"{NO_RELIABLE}: it switches only at kernel exit, and whether it is a kernel thread "
      "(which has none) is unknown (test)")),
    ("running user", Klp(), on(on_cpu=True),
     (V.RUNNING, O.AT_KERNEL_EXIT, "EBUSY", 1.0,
      "is running; switches at its next return to user space")),
    ("running idle", Klp(), task(kind=K.IDLE, on_cpu=True, pid=0, comm="swapper/0"),
     (V.RUNNING, O.AFTER_WAKEUP, "EBUSY", 1.0,
      "idle on its CPU; wake_up_if_idle() sends it through do_idle(), where it switches")),
    ("running kthread, clean stack of 99 entries", K612,
     task(kind=K.KTHREAD, on_cpu=True, depth=99),
     (V.RUNNING, O.SWITCHED, "EBUSY", 1.0,
      "is running with no patched frame: switches itself at its next cond_resched()")),
    ("running kthread, 100 entries", K612, task(kind=K.KTHREAD, on_cpu=True, depth=100),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_COND_RESCHED)),
    ("running kthread on a patched frame", K612, on(kind=K.KTHREAD, on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_COND_RESCHED)),
    ("running kthread, hidden text", K612,
     task(kind=K.KTHREAD, on_cpu=True, hidden_patched_text=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_COND_RESCHED)),
    ("running kthread, interrupted, frame pointers", replace(K612, regs_frames_unreliable=True),
     task(kind=K.KTHREAD, on_cpu=True, interrupted=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_COND_RESCHED)),
    ("running kthread, interrupted, ORC", K612, task(kind=K.KTHREAD, on_cpu=True, interrupted=True),
     (V.RUNNING, O.SWITCHED, "EBUSY", 1.0,
      "is running with no patched frame: switches itself at its next cond_resched()")),
    ("running kthread, 6.16+", Klp(), task(kind=K.KTHREAD, on_cpu=True, depth=9),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_FREEZABLE)),
    ("running kthread before v6.4", Klp(cond_resched_switch=False, freezable_sleep_switch=False),
     task(kind=K.KTHREAD, on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None,
      f"{CHECKED_AGAIN} only at a retry while it is off its CPU (no cond_resched() switch "
      "point before 6.4)")),
    ("running, kind unknown", K612, task(kind=K.UNKNOWN, kind_evidence="no flags", on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None,
      "is running, and whether it is a kernel thread (no kernel exit) is unknown (no flags); "
      "checked again when it is off its CPU")),
    ("runnable with no stack counts as running", Klp(),
     task(kind=K.KTHREAD, on_cpu=None, state="R", stack=Stack.EMPTY, depth=0),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, AT_FREEZABLE)),
    ("runnable with a complete stack is judged by it", Klp(),
     task(kind=K.KTHREAD, on_cpu=None, state="R"),
     (V.SWITCH, O.SWITCHED, None, 0.0, "no patched function on a reliable stack")),
    ("asleep with no stack is not running", Klp(),
     task(kind=K.KTHREAD, on_cpu=None, state="S", stack=Stack.EMPTY, depth=0),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is empty; retried every 1 s")),
    ("99 entries are reliable", Klp(), task(kind=K.KTHREAD, depth=99),
     (V.SWITCH, O.SWITCHED, None, 0.0, "no patched function on a reliable stack")),
    ("100 entries are not", Klp(), task(kind=K.KTHREAD, depth=100),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
      "a stack of 100 entries or more counts as unreliable (100 here); retried every 1 s")),
    ("an interrupt frame, frame pointers", Klp(regs_frames_unreliable=True),
     task(kind=K.KTHREAD, interrupted=True),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
      "an interrupt or exception frame is on the stack, and this kernel's reliable walker gives "
      "up at kernel-mode registers; retried every 1 s")),
    ("an interrupt frame, ORC", Klp(), task(kind=K.KTHREAD, interrupted=True),
     (V.SWITCH, O.SWITCHED, None, 0.0, "no patched function on a reliable stack")),
    # 99 entries: the stack is unreliable for its own reason, not for its depth.
    ("truncated at 99 entries", Klp(), task(kind=K.KTHREAD, depth=99, stack=Stack.TRUNCATED),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is truncated; retried every 1 s")),
    ("unwind failure, runnable user", Klp(), task(state="R", stack=Stack.UNWIND_FAILURE),
     (V.UNRELIABLE, O.AT_KERNEL_EXIT, "EINVAL", 1.0,
      "stack is unwind_failure; runnable: switches at kernel exit")),
    ("hidden text, user in D", Klp(), task(state="D", hidden_patched_text=True),
     (V.UNRELIABLE, O.AFTER_WAKEUP, "EINVAL", None, f"{HIDDEN} in state D: {NOT_ENDED}")),
    ("truncated, idle", Klp(), task(kind=K.IDLE, stack=Stack.TRUNCATED),
     (V.UNRELIABLE, O.AFTER_WAKEUP, "EINVAL", 1.0, "stack is truncated; switches in do_idle()")),
    ("slower retries", Klp(retry_interval_s=2.0), task(kind=K.KTHREAD, stack=Stack.UNREADABLE),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is unreadable; retried every 2 s")),
    ("user asleep on do_wait", Klp(), on(),
     (V.BLOCKED, O.AFTER_SIGNAL, "EADDRINUSE", 15.0, f"is sleeping on function do_wait; {SIGNAL_15}")),
    ("user runnable on do_wait", Klp(), on(state="R"),
     (V.BLOCKED, O.AT_KERNEL_EXIT, "EADDRINUSE", 1.0,
      "is sleeping on function do_wait; runnable: switches at kernel exit")),
    ("user in D", Klp(), on(state="D"),
     (V.BLOCKED, O.AFTER_WAKEUP, "EADDRINUSE", None,
      f"is sleeping on function do_wait in state D: {NOT_ENDED}")),
    ("user, state unknown", Klp(), on(state=None),
     (V.BLOCKED, O.AFTER_WAKEUP, "EADDRINUSE", None,
      f"is sleeping on function do_wait in state ?: {NOT_ENDED}")),
    ("user, other signal schedule", Klp(signals_timeout=5, retry_interval_s=2.0), on(),
     (V.BLOCKED, O.AFTER_SIGNAL, "EADDRINUSE", 10.0,
      "is sleeping on function do_wait; the fake signal after 5 retries ends its sleep and it "
      "switches at kernel exit")),
    ("function name unknown", Klp(), replace(on(), patched_function=None),
     (V.BLOCKED, O.AFTER_SIGNAL, "EADDRINUSE", 15.0,
      f"is sleeping on function a patched function; {SIGNAL_15}")),
    ("idle on a patched frame", Klp(), on(kind=K.IDLE),
     (V.BLOCKED, O.AFTER_WAKEUP, "EADDRINUSE", 1.0,
      "is sleeping on function do_wait; wake_up_if_idle() moves it on")),
    ("kthread main loop", Klp(), on("worker_thread", kind=K.KTHREAD, patched_frame_is_thread_fn=True),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None,
      "is sleeping on function worker_thread, its main loop: it is always asleep there, so this "
      "patch never converges without force")),
    ("kthread main loop in D", Klp(),
     on("worker_thread", kind=K.KTHREAD, state="D", patched_frame_is_thread_fn=True),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None,
      "is sleeping on function worker_thread, its main loop: it is always asleep there, so this "
      "patch never converges without force")),
    ("kthread S in .sched.text", Klp(),
     on("schedule_timeout", kind=K.KTHREAD, patched_frame_in_sched_text=True),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function schedule_timeout: klp_send_signals() wakes it after 15 retries, "
      f"but a scheduler sleep primitive a thread loop sleeps through again; {SLEEPS_AGAIN}")),
    ("kthread S", Klp(), on("f", kind=K.KTHREAD),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f: klp_send_signals() wakes it after 15 retries, but a thread "
      f"waiting for a condition goes back to sleep in it; {SLEEPS_AGAIN}")),
    ("kthread S, 6.12", K612, on("f", kind=K.KTHREAD),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f: klp_send_signals() wakes it after 15 retries, but a thread "
      "waiting for a condition goes back to sleep in it; it switches only if it then sleeps "
      "outside the patched set")),
    ("kthread S, unpatching", Klp(unpatching=True), on("f", kind=K.KTHREAD),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on the replacement function f: klp_send_signals() wakes it after 15 retries, "
      f"but a thread waiting for a condition goes back to sleep in it; {SLEEPS_AGAIN}")),
    ("kthread S before 5.1", Klp(auto_signals=False), on("f", kind=K.KTHREAD),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f: only an admin's write to the signal attribute wakes it "
      f"(4.16–5.0), but a thread waiting for a condition goes back to sleep in it; "
      f"{SLEEPS_AGAIN}")),
    ("user S before 5.1", Klp(auto_signals=False), on(),
     (V.BLOCKED, O.AFTER_WAKEUP, "EADDRINUSE", None,
      "is sleeping on function do_wait; before 5.1 no fake signal is sent unless the admin "
      "writes the patch's signal attribute: it switches at kernel exit once its sleep ends")),
    ("kthread R", Klp(), on("f", kind=K.KTHREAD, state="R"),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f; runnable, so it may leave it when it next runs")),
    ("kthread R in .sched.text", Klp(),
     on("f", kind=K.KTHREAD, state="R", patched_frame_in_sched_text=True),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f; runnable, so it may leave it when it next runs")),
    ("kthread D", Klp(), on("f", kind=K.KTHREAD, state="D"),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, f"is sleeping on function f in state D: {WAKES_IT}")),
    ("kthread TASK_IDLE", Klp(), on("f", kind=K.KTHREAD, state="I"),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, f"is sleeping on function f in state I: {WAKES_IT}")),
    ("kthread, state unknown", Klp(), on("f", kind=K.KTHREAD, state=None),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, f"is sleeping on function f in state ?: {WAKES_IT}")),
    ("kind unknown", Klp(), on("f", kind=K.UNKNOWN, kind_evidence="no flags"),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "is sleeping on function f; whether it is a kernel thread is unknown (no flags)")),
]


@pytest.mark.parametrize("model,facts,expected", [r[1:] for r in KLP_ROWS], ids=[r[0] for r in KLP_ROWS])
def test_klp_rules_row_by_row(model: Model, facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    outcome = model.judge_task(facts)
    assert answer(outcome) == expected
    assert outcome.extra == {}


def test_klp_force_switches_what_is_left_and_keeps_the_verdict() -> None:
    forced = Klp(force=True).judge_task(on("worker_thread", kind=K.KTHREAD, patched_frame_is_thread_fn=True))
    assert answer(forced) == (
        V.BLOCKED, O.SWITCHED, "EADDRINUSE", 1.0,
        "forced: is sleeping on function worker_thread, its main loop: it is always asleep there, "
        "so this patch never converges without force — the consistency model may be broken for "
        "this task",
    )
    assert forced.extra == {"forced": True}
    # A task that switches anyway is not marked forced.
    clean = Klp(force=True).judge_task(task())
    assert answer(clean) == (V.SWITCH, O.SWITCHED, None, 0.0, "no patched function on a reliable stack")
    assert clean.extra == {}


def test_klp_switch_points_follow_the_kernel_config() -> None:
    assert Klp().switch_points == (
        SwitchPoint.RETRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP,
        SwitchPoint.FREEZABLE_SLEEP,
    )
    assert K612.switch_points == (
        SwitchPoint.RETRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP, SwitchPoint.COND_RESCHED
    )
    assert Klp(freezable_sleep_switch=False).switch_points == (
        SwitchPoint.RETRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP
    )
    assert Klp(consistency_model=False).switch_points == (SwitchPoint.IMMEDIATE,)
    # Without HAVE_RELIABLE_STACKTRACE there is no check at all, cond_resched() included.
    assert Klp(reliable_stacks=False).switch_points == (SwitchPoint.KERNEL_EXIT, SwitchPoint.IDLE_LOOP)
    assert Klp().stack_source is StackSource.RELIABLE
    assert Klp().retry_interval_s == 1.0 and Klp().attempts is None and Klp().comm_prefixes == ()
    assert Klp().signal_eta_s == 15.0
    assert Klp(signals_timeout=3, retry_interval_s=0.5).signal_eta_s == 1.5


def test_klp_takes_unpatching_from_the_patch_and_never_drops_it() -> None:
    assert Klp().with_patch(Patch.parse("do_wait", unpatch=True)).unpatching is True
    assert Klp().with_patch(Patch.parse("do_wait")).unpatching is False
    assert Klp(unpatching=True).with_patch(Patch.parse("do_wait")).unpatching is True
    kept = Klp(force=True, signals_timeout=7).with_patch(Patch.parse("do_wait", unpatch=True))
    assert kept == Klp(force=True, signals_timeout=7, unpatching=True)


@pytest.mark.parametrize(
    "retry,facts,expected",
    [
        # wake_up_if_idle() at every pass, for an idle task still running its old loop.
        (0, task(kind=K.IDLE, on_cpu=True), Nudge.KICK_IDLE),
        (1, task(kind=K.IDLE, on_cpu=True), Nudge.KICK_IDLE),
        (15, task(kind=K.IDLE, on_cpu=False), Nudge.NONE),
        # klp_send_signals() when !(klp_signals_cnt % SIGNALS_TIMEOUT), never at the first pass.
        (0, task(), Nudge.NONE),
        (1, task(), Nudge.NONE),
        (14, task(), Nudge.NONE),
        (15, task(), Nudge.FAKE_SIGNAL),
        (16, task(), Nudge.NONE),
        (30, task(), Nudge.FAKE_SIGNAL),
        (15, task(state="D"), Nudge.FAKE_SIGNAL),
        (15, task(kind=K.KTHREAD, state="S"), Nudge.WAKE_INTERRUPTIBLE),
        (14, task(kind=K.KTHREAD, state="S"), Nudge.NONE),
        (15, task(kind=K.KTHREAD, state="D"), Nudge.NONE),
        (15, task(kind=K.KTHREAD, state="I"), Nudge.NONE),
        (15, task(kind=K.UNKNOWN, state="S"), Nudge.NONE),
    ],
)
def test_klp_nudges_on_the_kernels_schedule(retry: int, facts: TaskFacts, expected: Nudge) -> None:
    assert Klp().nudge(retry, facts) is expected


def test_klp_nudge_follows_its_signals_timeout() -> None:
    assert Klp(signals_timeout=4).nudge(4, task()) is Nudge.FAKE_SIGNAL
    assert Klp(signals_timeout=4).nudge(6, task()) is Nudge.NONE


def test_klp_transition_pending_forced_or_done() -> None:
    m = Klp()
    stuck = [m.judge_task(on("f", kind=K.KTHREAD, state="D")), m.judge_task(task())]
    t = m.judge_transition([], stuck)
    assert t.converges is False and t.eta_s is None
    assert t.reason == (
        f"1 task(s) can never switch: is sleeping on function f in state D: {WAKES_IT}"
        " — the transition stays pending until reversed or forced"
    )
    forced = Klp(force=True).judge_transition([], stuck)
    assert (forced.converges, forced.eta_s, forced.reason) == (
        True, 1.0,
        "forced: every task is set to the target state, and the transition completes at the "
        "next retry; no module is pinned (5.18+: only patches being removed are)",
    )
    for pinned in (Klp(force=True, unpatching=True), Klp(force=True, force_pins_always=True)):
        assert pinned.judge_transition([], stuck).reason.endswith(
            "; the patch module can never be removed")
    assert Klp(force=True, replace=True).judge_transition([], stuck).reason.endswith(
        "; the modules of the patches it replaces can never be removed")
    fine = m.judge_transition([], [m.judge_task(on()), m.judge_task(task())])
    assert (fine.converges, fine.eta_s, fine.reason) == (True, 15.0, "every task reaches the target state")
    unknown = m.judge_transition([], [m.judge_task(on("f", kind=K.KTHREAD, state="R"))])
    assert unknown.converges is None


# ---- the shared roll-ups (base.py) ------------------------------------------------------------


def test_summarize_counts_tasks_and_quotes_the_first() -> None:
    a = TaskOutcome(V.BLOCKED, O.STUCK, "first stuck")
    b = TaskOutcome(V.BLOCKED, O.STUCK, "second stuck")
    u = TaskOutcome(V.RUNNING, O.UNKNOWN, "first unknown")
    s = TaskOutcome(V.SWITCH, O.SWITCHED, "ok", eta_s=3.0)
    late = TaskOutcome(V.BLOCKED, O.AFTER_SIGNAL, "late", eta_s=15.0)
    assert summarize([s, u, a, b, a]) == summarize([s, u, a, b, a])
    no = summarize([s, u, a, b, a])
    assert (no.converges, no.reason, no.eta_s) == (False, "3 task(s) can never switch: first stuck", None)
    maybe = summarize([s, u, u])
    assert (maybe.converges, maybe.reason, maybe.eta_s) == (
        None, "2 task(s) with an unknown outlook: first unknown", None)
    yes = summarize([s, late, s])
    assert (yes.converges, yes.reason, yes.eta_s) == (True, "every task reaches the target state", 15.0)
    assert summarize([s, late], eta_cap=4.0).eta_s == 4.0
    assert summarize([s, late], eta_cap=40.0).eta_s == 15.0
    assert summarize([]).eta_s == 0.0
    assert summarize([TaskOutcome(V.SWITCH, O.SWITCHED, "no eta")]).eta_s == 0.0


def test_tally_and_count_where_keep_first_appearance_order() -> None:
    a = TaskOutcome(V.BLOCKED, O.STUCK, "a")
    b = TaskOutcome(V.BLOCKED, O.STUCK, "a")  # equal, but another task's outcome object
    c = TaskOutcome(V.SWITCH, O.SWITCHED, "c")
    assert tally([c, a, c, b, a]) == [(c, 2), (a, 2), (b, 1)]
    assert tally([]) == []
    n, first = count_where([c, a, c, b, a], O.STUCK)
    assert n == 3 and first is a
    assert count_where([c], O.STUCK) == (0, None)

    class Tallied(TalliedOutcomes):
        def __getitem__(self, i: Any) -> Any:
            raise AssertionError("a tallied sequence is read through tally()")

        def __len__(self) -> int:
            return 7

        def tally(self) -> list[tuple[TaskOutcome, int]]:
            return [(a, 5), (c, 2)]

    assert tally(Tallied()) == [(a, 5), (c, 2)]
    assert count_where(Tallied(), O.STUCK) == (5, a)


def test_task_facts_properties() -> None:
    assert task(on_cpu=True, state="S").running is True
    assert task(on_cpu=False, state="R", stack=Stack.EMPTY).running is False
    assert task(on_cpu=None, state="R", stack=Stack.EMPTY).running is True
    assert task(on_cpu=None, state="R", stack=Stack.COMPLETE).running is False
    assert task(on_cpu=None, state="S", stack=Stack.EMPTY).running is False
    assert task(state="Z").dead and task(state="X").dead and not task(state="D").dead
    assert task().stack_trusted
    assert not task(hidden_patched_text=True).stack_trusted
    assert not task(stack=Stack.TRUNCATED).stack_trusted


def test_model_defaults_and_params() -> None:
    assert Klp().params() == {
        "profile": "6.16+", "has_livepatch": True, "consistency_model": True,
        "reliable_stacks": True, "regs_frames_unreliable": False, "running_stacks_hidden": True,
        "walk_fails_at_limit": True,
        "cond_resched_switch": False, "freezable_sleep_switch": True, "auto_signals": True,
        "force_available": True, "force_pins_always": False, "max_stack_entries": 100,
        "signals_timeout": 15, "retry_interval_s": 1.0, "force": False, "unpatching": False,
        "replace": False,
    }
    assert Klp.accepts() == frozenset(Klp().params())
    assert Kpatch().params() == {"max_depth": 64, "attempts": 5, "insmod_retry_s": 2.0,
                                 "livepatch": False, "unpatching": False, "klp_profile": ()}
    assert Ksplice().params() == {"attempts": 5, "retry_interval_s": 1.0,
                                  "stopper_prefix": "migration/", "restart_functions_patched": ()}
    assert Josh().params() == {"freezer_path_patched": False}
    assert Null().params() == {} and Trivial().params() == {}
    assert Matrix().params() == {}
    assert Kgraft().params()["retry_interval_s"] == 2.0
    # The base model's defaults, read by the simulator.
    assert (Null().retry_interval_s, Null().attempts, Null().comm_prefixes) == (1.0, None, ())
    assert Null().nudge(15, task()) is Nudge.NONE
    assert Null().with_patch(Patch.parse("x")) == Null()


# ---- kpatch and ksplice: stop_machine, all or nothing -----------------------------------------

KPATCH_ROWS: list[tuple[str, TaskFacts, tuple[Any, ...]]] = [
    ("zombie", task(state="Z"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("idle never visited", on(kind=K.IDLE, on_cpu=True),
     (V.SWITCH, O.SWITCHED, None, 0.0,
      "idle task: not on the thread list, never checked (a hole in kpatch's check)")),
    ("running", on(on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None,
      "running now: stop_machine stops it somewhere this snapshot cannot show")),
    ("empty stack", task(stack=Stack.EMPTY),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is empty in this dump")),
    ("unreadable stack", task(stack=Stack.UNREADABLE),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is unreadable in this dump")),
    ("hidden text", task(hidden_patched_text=True),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is hidden in this dump")),
    # save_stack_trace_tsk() is best effort: a truncated or unwind-failed trace is still read.
    ("unwind failure is read anyway", task(stack=Stack.UNWIND_FAILURE),
     (V.SWITCH, O.SWITCHED, None, 0.0, "passes the activeness check")),
    ("62 frames and the end marker fit", task(depth=62),
     (V.SWITCH, O.SWITCHED, None, 0.0, "passes the activeness check")),
    ("63 frames and the end marker fill the trace", task(depth=63),
     (V.UNRELIABLE, O.STUCK, "EBUSY", None, "its 64-entry stack trace is full")),
    ("patched frame, asleep", on(),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "activeness safety check failed for do_wait")),
    ("patched frame, runnable", on(state="R"),
     (V.BLOCKED, O.UNKNOWN, "EBUSY", None, "activeness safety check failed for do_wait")),
]


@pytest.mark.parametrize("facts,expected", [r[1:] for r in KPATCH_ROWS], ids=[r[0] for r in KPATCH_ROWS])
def test_kpatch_rules_row_by_row(facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    outcome = Kpatch().judge_task(facts)
    assert answer(outcome) == expected
    assert outcome.extra == ({"unchecked": True} if facts.kind is K.IDLE and not facts.dead else {})


def test_kpatch_depth_is_a_parameter() -> None:
    assert Kpatch(max_depth=10).judge_task(task(depth=11)).reason == "its 10-entry stack trace is full"
    assert Kpatch().switch_points == (SwitchPoint.STOP_MACHINE,)
    assert Kpatch().stack_source is StackSource.BEST_EFFORT
    assert (Kpatch().attempts, Kpatch().retry_interval_s) == (5, 2.0)


KSPLICE_ROWS: list[tuple[str, TaskFacts, tuple[Any, ...]]] = [
    ("zombie", task(state="Z"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("idle never visited", on(kind=K.IDLE),
     (V.SWITCH, O.SWITCHED, None, 0.0, "idle task: not on the thread list, never checked")),
    ("running", on(on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None,
      ("running now: stop_machine normally stops it where this snapshot cannot show; were it still "
       "on its CPU at the check, check_task() would return UNEXPECTED_RUNNING_TASK and the update "
       "would be aborted without a retry"))),
    ("a stopper thread", task(on_cpu=True, comm="migration/3"),
     (V.SWITCH, O.SWITCHED, None, 0.0,
      "a stop_machine thread: on its CPU at the check, and let be (is_stop_machine)")),
    ("reliable patched frame", on(),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "stack word inside to-be-replaced code (do_wait): code is busy")),
    ("runnable", on(state="R"),
     (V.BLOCKED, O.UNKNOWN, "EBUSY", None, "stack word inside to-be-replaced code (do_wait): code is busy")),
    # A stale `?` word counts: ksplice scans every word, not the unwound frames.
    ("stale word only", task(frames=("a", "? do_wait", "b"), patched_frames_any=(1,)),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "stack word inside to-be-replaced code (? do_wait): code is busy")),
    ("first of several words", task(frames=("a", "x", "y"), patched_frames_any=(1, 2)),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "stack word inside to-be-replaced code (x): code is busy")),
    ("word beyond the frames shown", replace(on(), frames=("a",), patched_frames_any=(1,)),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "stack word inside to-be-replaced code (do_wait): code is busy")),
    ("the last frame shown", task(frames=("a", "hit"), patched_frames_any=(1,)),
     (V.BLOCKED, O.STUCK, "EBUSY", None, "stack word inside to-be-replaced code (hit): code is busy")),
    ("empty", task(stack=Stack.EMPTY), (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
                                        "the dump does not show every stack word this scan would read")),
    ("unreadable", task(stack=Stack.UNREADABLE), (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
                                                  "the dump does not show every stack word this scan would read")),
    ("truncated", task(stack=Stack.TRUNCATED), (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
                                                "the dump does not show every stack word this scan would read")),
    ("hidden", task(hidden_patched_text=True), (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None,
                                                "the dump does not show every stack word this scan would read")),
    # An unwinder failure does not stop a word scan.
    ("unwind failure", task(stack=Stack.UNWIND_FAILURE),
     (V.SWITCH, O.SWITCHED, None, 0.0, "no stack word inside the replaced code")),
]


@pytest.mark.parametrize("facts,expected", [r[1:] for r in KSPLICE_ROWS], ids=[r[0] for r in KSPLICE_ROWS])
def test_ksplice_rules_row_by_row(facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    outcome = Ksplice().judge_task(facts)
    assert answer(outcome) == expected
    extra = ({"unchecked": True} if facts.kind is K.IDLE and not facts.dead
             else {"abort": "UNEXPECTED_RUNNING_TASK"} if outcome.verdict is V.RUNNING else {})
    assert outcome.extra == extra


def test_ksplice_constants() -> None:
    assert Ksplice().switch_points == (SwitchPoint.STOP_MACHINE,)
    assert Ksplice().stack_source is StackSource.WORD_SCAN
    t = Ksplice().judge_transition([], [Ksplice().judge_task(on())])
    assert t.reason == (
        "1 task(s) keep the check failing: stack word inside to-be-replaced code (do_wait): code is "
        "busy; ksplice gives up after 5 attempts 1 s apart and nothing is patched"
    )


def test_all_or_nothing_reasons() -> None:
    stuck = TaskOutcome(V.BLOCKED, O.STUCK, "busy")
    unknown = TaskOutcome(V.RUNNING, O.UNKNOWN, "running")
    ok = TaskOutcome(V.SWITCH, O.SWITCHED, "ok", eta_s=0.0)
    no = all_or_nothing("kpatch", [ok, stuck, unknown, stuck], 5, 2.0)
    assert (no.converges, no.eta_s, no.reason) == (
        False, None,
        "2 task(s) keep the check failing: busy; kpatch gives up after 5 attempts 2 s apart and "
        "nothing is patched",
    )
    maybe = all_or_nothing("kpatch", [ok, unknown], 5, 2.5)
    assert (maybe.converges, maybe.eta_s, maybe.reason) == (
        None, None, "1 task(s) whose stacks at the stop cannot be known now: running")
    yes = all_or_nothing("kpatch", [ok], 5, 2.0)
    assert (yes.converges, yes.eta_s, yes.reason) == (
        True, 0.0, "every task passes: applied atomically at the first attempt")
    assert Kpatch().judge_transition([], [stuck]) == all_or_nothing("kpatch", [stuck], 5, 2.0)


# ---- kGraft: LEAVE_KERNEL, kthread safe points -------------------------------------------------

KERNEL_EXIT = "switches at its next kernel entry or exit"
SAFE = ("kernel thread: switches at the safe point of its loop (freezer or kgr_task_safe), "
        "whatever is on its stack")
NO_SAFE = "kernel thread without a known kGraft safe point: needs kgr_task_safe() or force"

KGRAFT_ROWS: list[tuple[str, Model, TaskFacts, tuple[Any, ...]]] = [
    ("zombie", Kgraft(), task(state="Z"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("idle", Kgraft(), task(kind=K.IDLE),
     (V.SWITCH, O.SWITCHED, None, 0.0, "idle task: not on the thread list; interrupts use the per-CPU flag")),
    ("user on CPU", Kgraft(), on(on_cpu=True), (V.RUNNING, O.AT_KERNEL_EXIT, "EBUSY", 2.0, KERNEL_EXIT)),
    ("user runnable", Kgraft(), on(state="R"), (V.RUNNING, O.AT_KERNEL_EXIT, "EBUSY", 2.0, KERNEL_EXIT)),
    ("user asleep", Kgraft(), on(),
     (V.BLOCKED, O.AFTER_SIGNAL, None, 2.0,
      "asleep in the kernel; the fake signal makes it leave and switch")),
    ("user in D", Kgraft(), on(state="D"),
     (V.BLOCKED, O.STUCK, None, None,
      "asleep in the kernel in state D: no signal ends that sleep, and it must leave the kernel "
      "to switch")),
    ("user, state unknown", Kgraft(), on(state=None),
     (V.BLOCKED, O.STUCK, None, None,
      "asleep in the kernel in state ?: no signal ends that sleep, and it must leave the kernel "
      "to switch")),
    ("kthread asleep (annotated loop)", Kgraft(), task(kind=K.KTHREAD, comm="kthreadd"),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    ("kthread TASK_IDLE (annotated loop)", Kgraft(), task(kind=K.KTHREAD, comm="rcu_gp", state="I"),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    ("kthread asleep, not annotated", Kgraft(annotated_kthreads=False), task(kind=K.KTHREAD, comm="vhost-1"),
     (V.BLOCKED, O.STUCK, None, None, NO_SAFE)),
    ("kthread on CPU, not known", Kgraft(), task(kind=K.KTHREAD, comm="vhost-1", on_cpu=True),
     (V.BLOCKED, O.STUCK, None, None, NO_SAFE)),
    ("kthread runnable, not known", Kgraft(), task(kind=K.KTHREAD, comm="vhost-1", state="R"),
     (V.BLOCKED, O.STUCK, None, None, NO_SAFE)),
    ("kworker on CPU", Kgraft(), task(kind=K.KTHREAD, comm="kworker/0:1", on_cpu=True),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    ("freezable on CPU", Kgraft(), task(kind=K.KTHREAD, comm="x", on_cpu=True, freezable=True),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    ("freezability unknown", Kgraft(), task(kind=K.KTHREAD, comm="x", on_cpu=True, freezable=None),
     (V.BLOCKED, O.STUCK, None, None, NO_SAFE)),
    ("kswapd by name", Kgraft(annotated_kthreads=False), task(kind=K.KTHREAD, comm="kswapd0", state="R"),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    # wake_up_process() (kgr_wakeup_kthreads, kgr_send_fake_signal) ends a D sleep too.
    ("kworker in D", Kgraft(), task(kind=K.KTHREAD, comm="kworker/1:0", state="D"),
     (V.BLOCKED, O.UNKNOWN, None, None,
      ("kernel thread in state D: wake_up_process() ends that sleep, but a wait whose condition "
       "has not come sleeps again before the safe point"))),
    ("kworker stopped", Kgraft(), task(kind=K.KTHREAD, comm="kworker/1:0", state="T"),
     (V.BLOCKED, O.STUCK, None, None,
      "kernel thread in state T: no wake-up ends it, so it cannot reach its safe point")),
    ("user asleep, before the fake signal", Kgraft(fake_signals=False), on(),
     (V.BLOCKED, O.UNKNOWN, None, None,
      ("asleep in the kernel, and no fake signal before SLE 12's 3.12.44 kernel: it switches when "
       "its sleep ends on its own"))),
    ("kworker, state unknown", Kgraft(), task(kind=K.KTHREAD, comm="kworker/1:0", state=None),
     (V.BLOCKED, O.AFTER_WAKEUP, None, 2.0, SAFE)),
    ("unknown kind", Kgraft(), task(kind=K.UNKNOWN, kind_evidence="no flags"),
     (V.BLOCKED, O.UNKNOWN, None, None, "cannot tell whether it is a kernel thread (no flags)")),
]


@pytest.mark.parametrize("model,facts,expected", [r[1:] for r in KGRAFT_ROWS], ids=[r[0] for r in KGRAFT_ROWS])
def test_kgraft_rules_row_by_row(model: Model, facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    assert answer(model.judge_task(facts)) == expected


def test_kgraft_nudges_from_its_first_work_run() -> None:
    k = Kgraft()
    assert k.nudge(0, task()) is Nudge.NONE
    assert k.nudge(1, task()) is Nudge.FAKE_SIGNAL
    assert k.nudge(1, task(state="D")) is Nudge.FAKE_SIGNAL
    assert k.nudge(2, task(kind=K.KTHREAD)) is Nudge.WAKE_PROCESS
    assert k.nudge(0, task(kind=K.KTHREAD)) is Nudge.WAKE_PROCESS  # kgr_wakeup_kthreads()
    assert k.nudge(2, task(kind=K.KTHREAD, state="D")) is Nudge.WAKE_PROCESS
    assert k.nudge(2, task(kind=K.IDLE)) is Nudge.NONE
    assert k.nudge(2, task(kind=K.UNKNOWN)) is Nudge.NONE


def test_kgraft_declares_what_it_reads() -> None:
    k = Kgraft()
    assert k.comm_prefixes == ("kworker/", "kswapd", "khugepaged", "kcompactd")
    assert Kgraft(safe_point_kthreads=("vhost",)).comm_prefixes == ("vhost",)
    assert k.switch_points == (
        SwitchPoint.RETRY, SwitchPoint.KERNEL_ENTRY, SwitchPoint.KERNEL_EXIT, SwitchPoint.KTHREAD_SAFE_POINT
    )
    assert k.stack_source is StackSource.NONE
    t = k.judge_transition([], [k.judge_task(on()), k.judge_task(task(kind=K.IDLE))])
    assert (t.converges, t.eta_s) == (True, 2.0)


# ---- Josh's 2014 algorithm -------------------------------------------------------------------

FROZEN_OK = "frozen; the recheck finds no patched frame on the freezer path: switched"

JOSH_ROWS: list[tuple[str, Model, TaskFacts, tuple[Any, ...]]] = [
    ("zombie", Josh(), task(state="Z"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("off CPU, clean", Josh(), task(), (V.SWITCH, O.SWITCHED, None, 0.0, "off CPU, no patched frame")),
    ("idle running", Josh(), task(kind=K.IDLE, on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None,
      "idle task: the mail's algorithm walks threads and does not cover per-CPU idle")),
    ("unfreezable kthread on CPU", Josh(), task(kind=K.KTHREAD, on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, "unfreezable kthread on a CPU: retried until it is caught off CPU")),
    ("unfreezable kthread on a patched frame", Josh(), on("f", kind=K.KTHREAD, freezable=False),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, "unfreezable kthread sleeping on f: fail")),
    ("unfreezable kthread, untrusted stack", Josh(), task(kind=K.KTHREAD, stack=Stack.TRUNCATED),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "unfreezable kthread, stack is truncated: retried")),
    ("unknown kind", Josh(), on(kind=K.UNKNOWN, kind_evidence="no flags"),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None,
      "cannot tell whether it is an unfreezable kthread (no flags)")),
    ("user, freezer path patched", Josh(freezer_path_patched=True), on(),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None,
      "frozen, but the patch affects the freezer/schedule path: fail")),
    ("user in D", Josh(), on(state="D"),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, "cannot be frozen in state D (uninterruptible sleep): fail")),
    ("user runnable, frozen", Josh(), on(state="R"), (V.BLOCKED, O.SWITCHED, "EADDRINUSE", 0.0, FROZEN_OK)),
    ("user asleep, frozen", Josh(), on(), (V.BLOCKED, O.SWITCHED, "EADDRINUSE", 0.0, FROZEN_OK)),
    ("user state unknown, frozen", Josh(), on(state=None),
     (V.BLOCKED, O.SWITCHED, "EADDRINUSE", 0.0, FROZEN_OK)),
    ("user running", Josh(), task(on_cpu=True), (V.RUNNING, O.SWITCHED, "EBUSY", 0.0, FROZEN_OK)),
    ("user, hidden text", Josh(), task(hidden_patched_text=True),
     (V.UNRELIABLE, O.SWITCHED, "EINVAL", 0.0, FROZEN_OK)),
    ("freezable kthread in its main loop", Josh(),
     on("kswapd", kind=K.KTHREAD, freezable=True, patched_frame_is_thread_fn=True),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, "frozen in its main loop kswapd, still on the stack: fail")),
    ("freezable kthread elsewhere", Josh(), on("f", kind=K.KTHREAD, freezable=True),
     (V.BLOCKED, O.SWITCHED, "EADDRINUSE", 0.0, FROZEN_OK)),
    # patched_frame_is_thread_fn is only ever set for kthreads; the rule reads the kind anyway.
    ("user whose frame is flagged", Josh(), on(patched_frame_is_thread_fn=True),
     (V.BLOCKED, O.SWITCHED, "EADDRINUSE", 0.0, FROZEN_OK)),
]


@pytest.mark.parametrize("model,facts,expected", [r[1:] for r in JOSH_ROWS], ids=[r[0] for r in JOSH_ROWS])
def test_josh_rules_row_by_row(model: Model, facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    assert answer(model.judge_task(facts)) == expected


def test_josh_reads_the_freezer_path_from_the_patch() -> None:
    assert Josh().with_patch(Patch.parse("__refrigerator,do_wait")).freezer_path_patched is True
    assert Josh().with_patch(Patch.parse("do_wait")).freezer_path_patched is False
    assert Josh(freezer_path_patched=True).with_patch(Patch.parse("do_wait")).freezer_path_patched is True
    assert Josh().switch_points == (SwitchPoint.RETRY, SwitchPoint.FREEZER)
    j = Josh()
    t = j.judge_transition([], [j.judge_task(on(state="D")), j.judge_task(task())])
    assert (t.converges, t.reason) == (
        False, "fail: 1 task(s) can never switch: cannot be frozen in state D (uninterruptible sleep): fail")
    assert j.judge_transition([], [j.judge_task(task())]).converges is True


# ---- null and trivial: no switch point to wait for -------------------------------------------


def test_null_rules() -> None:
    old = Null().judge_task(on())
    assert answer(old) == (
        V.SWITCH, O.SWITCHED, None, 0.0,
        "switched at once while executing old do_wait: its old activation finishes in old code "
        "while new calls run new code",
    )
    assert old.extra == {"executing_old": True}
    maybe = Null().judge_task(task(stack=Stack.TRUNCATED))
    assert answer(maybe) == (
        V.SWITCH, O.SWITCHED, None, 0.0,
        "switched at once; stack is truncated, so it may be executing old code")
    assert maybe.extra == {"executing_old": None}
    clean = Null().judge_task(task())
    assert answer(clean) == (V.SWITCH, O.SWITCHED, None, 0.0, "switched at once")
    assert clean.extra == {"executing_old": False}
    # Counted: executing_old is True (not None: "maybe"), once per task.
    t = Null().judge_transition([], [old, maybe, clean, old, old])
    assert (t.converges, t.eta_s, t.reason) == (
        True, 0.0,
        "complete at once; 3 task(s) were executing old code at that instant (safe only for "
        "changes whose old and new versions may interleave)",
    )
    assert Null().switch_points == (SwitchPoint.IMMEDIATE,)


def test_trivial_rules() -> None:
    outside = Trivial().judge_task(task())
    assert answer(outside) == (
        V.SWITCH, O.SWITCHED, None, 0.0, "outside the patched set: its next calls reach new code")
    assert outside.extra == {"old_call_sites": []}
    unknown = Trivial().judge_task(task(stack=Stack.UNREADABLE))
    assert answer(unknown) == (
        V.UNRELIABLE, O.UNKNOWN, None, None,
        "stack is unreadable: cannot tell whether it is inside the patched set")
    assert unknown.extra == {"old_call_sites": None}
    # Patched frames 0 and 1, adjacent from the innermost: one unbroken old chain.
    chain = Trivial().judge_task(task(frames=("b", "a", "main"), patched_frames_any=(0, 1)))
    assert answer(chain) == (
        V.BLOCKED, O.UNKNOWN, None, None,
        "inside the patched set (b, a): calls from there keep reaching old code")
    assert chain.extra == {"old_call_sites": ["b", "a"], "mixed_chain_possible": False}
    # An unpatched frame (0) inner to a patched one (1): it calls with its own parent_ip.
    mixed = Trivial().judge_task(task(frames=("helper", "a", "main"), patched_frames_any=(1,)))
    assert mixed.reason == (
        "inside the patched set (a): calls from there keep reaching old code; an unpatched "
        "function inside that chain would call new code (mixed chain)")
    assert mixed.extra == {"old_call_sites": ["a"], "mixed_chain_possible": True}
    gap = Trivial().judge_task(task(frames=("a", "helper", "b"), patched_frames_any=(0, 2)))
    assert gap.extra == {"old_call_sites": ["a", "b"], "mixed_chain_possible": True}
    # Even with an untrusted stack, a patched frame that is seen counts.
    seen = Trivial().judge_task(task(stack=Stack.TRUNCATED, frames=("a",), patched_frames_any=(0,)))
    assert seen.verdict is V.BLOCKED and seen.extra == {"old_call_sites": ["a"], "mixed_chain_possible": False}
    beyond = Trivial().judge_task(task(frames=("a",), patched_frames_any=(0, 1)))
    assert beyond.extra == {"old_call_sites": ["a"], "mixed_chain_possible": False}
    t = Trivial().judge_transition([], [chain, outside, mixed, unknown, chain])
    assert (t.converges, t.eta_s, t.reason) == (
        None, None,
        "no completion point: the model never learns that old code is unused (3 task(s) are "
        "inside the patched set now); old code can never be freed",
    )
    assert Trivial().switch_points == (SwitchPoint.PER_CALL,)


# ---- the LEAVE x SWITCH cells ----------------------------------------------------------------

MATRIX_ROWS: list[tuple[str, Matrix, TaskFacts, tuple[Any, ...]]] = [
    ("zombie", Matrix("KERNEL", "THREAD"), task(state="Z"), (V.SWITCH, O.SWITCHED, None, 0.0, ZOMBIE)),
    ("leave function", Matrix("FUNCTION", "FUNCTION"), on(on_cpu=True),
     (V.SWITCH, O.SWITCHED, None, 0.0, "only the function must be left: switches now")),
    ("patched set, running", Matrix(), on(on_cpu=True),
     (V.RUNNING, O.UNKNOWN, "EBUSY", None, "on a CPU: its stack is unknown until it stops")),
    ("patched set, untrusted", Matrix(), task(stack=Stack.UNWIND_FAILURE),
     (V.UNRELIABLE, O.UNKNOWN, "EINVAL", None, "stack is unwind_failure")),
    ("patched set, clean", Matrix(), task(), (V.SWITCH, O.SWITCHED, None, 0.0, "no patched frame")),
    ("patched set, main loop", Matrix(), on(kind=K.KTHREAD, patched_frame_is_thread_fn=True),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, "holds do_wait and nothing makes it leave")),
    ("patched set, D", Matrix(), on(state="D"),
     (V.BLOCKED, O.STUCK, "EADDRINUSE", None, "holds do_wait and nothing makes it leave")),
    ("patched set, S", Matrix(), on(),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None, "holds do_wait; switches once it returns from it")),
    ("patched set, R", Matrix(), on(state="R"),
     (V.BLOCKED, O.UNKNOWN, "EADDRINUSE", None, "holds do_wait; switches once it returns from it")),
    ("kernel, kthread", Matrix("KERNEL", "THREAD"), task(kind=K.KTHREAD),
     (V.BLOCKED, O.STUCK, None, None, "kthread task: never leaves the kernel")),
    ("kernel, idle", Matrix("KERNEL", "THREAD"), task(kind=K.IDLE),
     (V.BLOCKED, O.STUCK, None, None, "idle task: never leaves the kernel")),
    ("kernel, unknown kind", Matrix("KERNEL", "THREAD"), task(kind=K.UNKNOWN),
     (V.BLOCKED, O.UNKNOWN, None, None, "unknown task: never leaves the kernel")),
    ("kernel, user on CPU", Matrix("KERNEL", "THREAD"), task(on_cpu=True),
     (V.RUNNING, O.AT_KERNEL_EXIT, "EBUSY", 0.0, "switches when it returns to user space")),
    ("kernel, user runnable", Matrix("KERNEL", "THREAD"), task(state="R"),
     (V.RUNNING, O.AT_KERNEL_EXIT, "EBUSY", 0.0, "switches when it returns to user space")),
    ("kernel, user asleep", Matrix("KERNEL", "KERNEL"), task(),
     (V.BLOCKED, O.AFTER_SIGNAL, None, None, "asleep in the kernel: a signal ends the sleep and it leaves")),
    ("kernel, user in D", Matrix("KERNEL", "FUNCTION"), task(state="D"),
     (V.BLOCKED, O.STUCK, None, None, "asleep in the kernel in state D: cannot be made to leave")),
    ("kernel, user state unknown", Matrix("KERNEL", "THREAD"), task(state=None),
     (V.BLOCKED, O.STUCK, None, None, "asleep in the kernel in state ?: cannot be made to leave")),
]


@pytest.mark.parametrize("model,facts,expected", [r[1:] for r in MATRIX_ROWS], ids=[r[0] for r in MATRIX_ROWS])
def test_matrix_rules_row_by_row(model: Model, facts: TaskFacts, expected: tuple[Any, ...]) -> None:
    assert answer(model.judge_task(facts)) == expected


def test_matrix_cells_name_points_and_roll_up() -> None:
    cells = {(l, s): Matrix(l, s) for l in ("FUNCTION", "PATCHED_SET", "KERNEL")
             for s in ("FUNCTION", "THREAD", "KERNEL")}
    assert Matrix() == cells["PATCHED_SET", "THREAD"]
    assert cells["KERNEL", "THREAD"].name == "leave_kernel/switch_thread"
    assert cells["PATCHED_SET", "FUNCTION"].cell == ("PATCHED_SET", "FUNCTION")
    points = {key: m.switch_points for key, m in cells.items()}
    assert points == {
        ("FUNCTION", "FUNCTION"): (SwitchPoint.IMMEDIATE,),
        ("FUNCTION", "THREAD"): (SwitchPoint.RETRY,),
        ("FUNCTION", "KERNEL"): (SwitchPoint.STOP_MACHINE,),
        ("PATCHED_SET", "FUNCTION"): (SwitchPoint.FUNCTION_FLIP,),
        ("PATCHED_SET", "THREAD"): (SwitchPoint.RETRY,),
        ("PATCHED_SET", "KERNEL"): (SwitchPoint.STOP_MACHINE,),
        ("KERNEL", "FUNCTION"): (SwitchPoint.FUNCTION_FLIP,),
        ("KERNEL", "THREAD"): (SwitchPoint.KERNEL_ENTRY, SwitchPoint.KERNEL_EXIT),
        ("KERNEL", "KERNEL"): (SwitchPoint.STOP_MACHINE,),
    }
    assert Matrix().stack_source is StackSource.EXACT
    with pytest.raises(ValueError, match=r"^no such cell: LEAVE_THREAD / SWITCH_THREAD$"):
        Matrix("THREAD", "THREAD")
    with pytest.raises(ValueError, match=r"^no such cell: LEAVE_KERNEL / SWITCH_PATCHED_SET$"):
        Matrix("KERNEL", "PATCHED_SET")
    stuck = TaskOutcome(V.BLOCKED, O.STUCK, "x")
    kernel = cells["PATCHED_SET", "KERNEL"]
    assert kernel.judge_transition([], [stuck]) == all_or_nothing(
        "leave_patched_set/switch_kernel", [stuck], 1, 0.0)
    assert kernel.judge_transition([], [stuck]).reason.endswith("after 1 attempts 0 s apart and nothing is patched")
    assert cells["PATCHED_SET", "THREAD"].judge_transition([], [stuck]) == summarize([stuck])
