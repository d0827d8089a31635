"""kpatch, kGraft and Ksplice read beside their sources (issue 12, rules 7-9).

* kpatch.ko sees a stack as ``save_stack_trace_tsk()`` saves it — without the
  .sched.text and lock-text frames of other tasks — in ``lpc check`` as in the
  simulator; kpatch_backtrace_address_verify()'s repatch and replace ranges;
  the kpatch script's 75 s wait over a livepatch transition;
* kGraft's start-up wake-ups and periodic fake signals, its 2014
  lazy-migration probe of 3 stack entries;
* Ksplice's abort on a running task that is not a stop_machine thread, and its
  check of ``restart_block.fn``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lpc.check import check
from lpc.dump import parse_dump
from lpc.facts import FrameFact, facts_from_frames
from lpc.kernel import in_sched_text_by_name
from lpc.models import (
    Kgraft,
    Kpatch,
    Ksplice,
    Nudge,
    Outlook,
    Stack,
    StackSource,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    Verdict,
)
from lpc.models.kpatch import activeness_functions, tool_waits
from lpc.models.ksplice import RESTART_DEFAULT
from lpc.patch import Patch
from lpc.symbols import Symbols
from test_models import running, task_facts

DATA = Path(__file__).parent / "data"
SCHED_TEXT = DATA / "oracle" / "sched_text"


def _asleep(**kw: object) -> TaskFacts:
    base: dict[str, object] = dict(
        index=0, pid=100, tid=100, comm="bash", state="S", kind=TaskKind.USER,
        kind_evidence="test", on_cpu=False, stack=Stack.COMPLETE, depth=10,
    )
    base.update(kw)
    return TaskFacts(**base)  # type: ignore[arg-type]


# ---- rule 7: kpatch.ko reads what save_stack_trace_tsk() saves ---------------------------------


def test_kpatch_does_not_see_a_patched_sched_text_function_on_a_sleeping_stack() -> None:
    """The 6.1 guest's kthreads asleep in schedule_timeout (a .sched.text function):
    klp's reliable walker sees it and blocks them, kpatch.ko's best-effort one
    (kernel/stacktrace.c stack_trace_consume_entry_nosched) does not."""
    dump = parse_dump(SCHED_TEXT / "first_sysrq.txt")
    syms = Symbols.from_kallsyms(SCHED_TEXT / "first_kallsyms.txt")
    klp = check(dump, "schedule_timeout", "klp", syms)
    kpatch = check(dump, "schedule_timeout", "kpatch", syms)
    blocked = [r.facts.index for r in klp.tasks if r.outcome.verdict is Verdict.BLOCKED]
    assert blocked
    for t in blocked:
        seen = kpatch.tasks[t]
        assert seen.facts.patched_frame is None and not seen.facts.patched_frames_any
        assert seen.outcome.verdict is Verdict.SWITCH
        assert seen.facts.depth < klp.tasks[t].facts.depth  # __schedule, schedule, ... skipped
    assert any(f"{len(blocked)} task(s) hold a patched function in .sched.text" in w
               for w in kpatch.warnings)
    assert not any(".sched.text or the lock text" in w for w in klp.warnings)


def test_without_a_symbol_table_sched_text_is_known_by_name() -> None:
    dump = parse_dump(DATA / "hung-task-5.3-x86.txt")
    kpatch = check(dump, "schedule_timeout", "kpatch")
    assert kpatch.tasks[0].outcome.verdict is Verdict.SWITCH
    assert check(dump, "schedule_timeout", "klp").tasks[0].outcome.verdict is Verdict.BLOCKED
    assert any("known by name only" in w for w in kpatch.warnings)


NAMES = ["pf_a", "schedule_timeout", "schedule", "__schedule", "mutex_lock", "_raw_spin_lock",
         "other_fn", "kthread", "ret_from_fork", "do_syscall_64"]
PATCH = frozenset({"pf_a", "schedule_timeout", "mutex_lock"})


@settings(deadline=None, max_examples=150)
@given(stack=st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), max_size=70),
       state=st.sampled_from("SDR"), kthread=st.booleans())
def test_kpatch_on_a_dump_judges_the_stack_its_walker_saves(
    stack: list[tuple[str, bool]], state: str, kthread: bool
) -> None:
    """Brute force: drop the .sched.text/lock-text frames, then apply kpatch's
    rule to what is left; ``lpc check`` must agree (depth limit included)."""
    lines = [f"[<0>] {'' if reliable else '? '}{name}+0x1/0x40" for name, reliable in stack]
    flag = "0x00200040 kthread=1" if kthread else "0x00400100 kthread=0"
    text = (f"# pid=42 tid=42 comm=task state={state} flags={flag} cpu=0 status=ok\n"
            + "\n".join(lines) + "\n")
    dump = parse_dump(text.encode(), "proc_snapshot")
    result = check(dump, ",".join(sorted(PATCH)), "kpatch")
    got = result.tasks[0]
    kept = [FrameFact(n, r, n if n in PATCH else None) for n, r in stack
            if not in_sched_text_by_name(n)]
    brute = facts_from_frames(
        index=0, pid=42, tid=42, comm="task", state=state, kind=got.facts.kind,
        kind_evidence=got.facts.kind_evidence, on_cpu=got.facts.on_cpu,
        printed=got.facts.stack, interrupted=False, frames=kept,
    )
    expected = Kpatch().judge(brute)
    assert (got.outcome.verdict, got.outcome.outlook, got.outcome.reason) == (
        expected.verdict, expected.outlook, expected.reason)
    assert got.facts.depth == brute.depth
    assert (got.facts.patched_function, got.facts.patched_frames_any != ()) == (
        brute.patched_function, brute.patched_frames_any != ())


def test_only_the_best_effort_walker_sees_fewer_frames() -> None:
    dump = parse_dump(DATA / "hung-task-5.3-x86.txt")
    for model in ("klp", "ksplice", "josh"):
        assert check(dump, "schedule_timeout", model).tasks[0].facts.patched_function == \
            "schedule_timeout", model


def test_kpatch_checks_the_original_the_active_replacement_or_the_replaced() -> None:
    """kmod/core/core.c kpatch_backtrace_address_verify()."""
    def specs(p: Patch) -> list[str]:
        return [f.spec for f in p.functions]

    p1 = Patch.parse("a->p1:a1,b->p1:b1")
    # First patch: the originals.
    assert specs(activeness_functions(Patch.parse("a,b"), [])) == ["a", "b"]
    # A repatch of a: the running replacement (p1's a1); c is new: its original.
    assert specs(activeness_functions(Patch.parse("a,c"), [p1])) == ["p1:a1", "c"]
    # Replace: also every function of every replaced patch, at its new range —
    # older ones too, where klp's nops look only at the newest.
    p2 = Patch.parse("a->p2:a2")
    both = activeness_functions(Patch.parse("c", replace=True), [p1, p2])
    assert specs(both) == ["c", "p1:a1", "p1:b1", "p2:a2"]
    klp = Patch.parse("c", replace=True).checked_against([p1, p2])
    assert specs(klp) == ["c", "p2:a2", "p1:b1"]
    # The newest registration is the active one.
    assert specs(activeness_functions(Patch.parse("a"), [p1, p2])) == ["p2:a2"]
    # Unpatching the top patch: its own new code.
    assert specs(activeness_functions(Patch.parse("a->p2:a2", unpatch=True), [p1])) == ["p2:a2"]
    # The model hands lpc check these ranges; over livepatch, klp's.
    assert specs(Kpatch().checked_functions(Patch.parse("c", replace=True), [p1, p2])) == specs(
        both)
    assert specs(Kpatch(livepatch=True).checked_functions(
        Patch.parse("c", replace=True), [p1, p2])) == specs(klp)


def test_check_all_scans_each_models_ranges() -> None:
    """klp checks the newest replacement, kpatch.ko every replaced one: a task
    asleep in p1's a1 blocks kpatch's replace, not klp's."""
    from lpc.check import check_all
    from lpc.dump import parse_dump

    text = ("# pid=5 tid=5 comm=w state=S flags=0x00400100 kthread=0 cpu=0 status=ok\n"
            "[<0>] a1+0x10/0x40 [p1]\n[<0>] do_syscall_64+0x71/0x280\n"
            "[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n\n").encode()
    r = check_all(parse_dump(text), Patch.parse("c", replace=True),
                  loaded=[Patch.parse("a->p1:a1"), Patch.parse("a->p2:a2")])
    assert r["klp"].tasks[0].outcome.verdict is Verdict.SWITCH
    assert r["kpatch"].tasks[0].outcome.verdict is Verdict.BLOCKED


def _out(outlook: Outlook, eta: float | None) -> TaskOutcome:
    return TaskOutcome(Verdict.BLOCKED, outlook, "why", eta_s=eta)


def test_the_kpatch_tool_reverses_what_is_not_done_in_75_seconds() -> None:
    """kpatch/kpatch: POST_ENABLE_WAIT 15 s, signal, POST_SIGNAL_WAIT 60 s, disable."""
    m = Kpatch(livepatch=True)
    assert (m.cell, m.stack_source) == (("PATCHED_SET", "THREAD"), StackSource.RELIABLE)
    signalled = m.judge_task(_asleep(patched_frame=2, patched_function="f",
                                     patched_frames_any=(2,)))
    assert (signalled.outlook, signalled.eta_s) == (Outlook.AFTER_SIGNAL, 15.0)
    assert m.judge_transition([], [signalled]).converges is True
    # A D sleep the hung-task detector reported: stuck (rule 3 of issue 12).
    stuck = m.judge_task(_asleep(state="D", patched_frame=2, patched_function="f",
                                 patched_frames_any=(2,), hung=True))
    no = m.judge_transition([], [signalled, stuck])
    # An unreported D sleep may end within the wait, or not: unknown.
    maybe = m.judge_task(_asleep(state="D", patched_frame=2, patched_function="f",
                                 patched_frames_any=(2,)))
    assert m.judge_transition([], [signalled, maybe]).converges is None
    assert no.converges is False and "disables the patch" in no.reason
    assert Kpatch().judge_transition([], [stuck]).converges is False  # kpatch.ko: stuck anyway
    late = tool_waits(m._klp.judge_transition([], [_out(Outlook.AFTER_SIGNAL, 90.0)]),
                      [_out(Outlook.AFTER_SIGNAL, 90.0)])
    assert late.converges is False and "only after 90 s" in late.reason
    unknown = m.judge_transition([], [_out(Outlook.UNKNOWN, None)])
    assert unknown.converges is None and "unless they switch within 75 s" in unknown.reason
    assert m.nudge(15, _asleep()) is Nudge.FAKE_SIGNAL and Kpatch().nudge(15, _asleep()) is Nudge.NONE


# ---- rule 8: kGraft ---------------------------------------------------------------------------


@given(task_facts(), st.integers(0, 40), st.booleans())
def test_kgraft_outlooks_rest_on_its_own_nudges(t: TaskFacts, retry: int, signals: bool) -> None:
    """What kGraft's judgement expects to happen is what it does: a user task
    expected to leave after a signal gets kgr_send_fake_signal(); a kernel
    thread expected at its safe point after a wake-up gets wake_up_process()
    (at start and, with fake signals, at every kgr_work_fn run)."""
    m = Kgraft(fake_signals=signals)
    o = m.judge_task(t)
    if o.outlook is Outlook.AFTER_SIGNAL:
        assert signals and t.kind is TaskKind.USER
        assert m.nudge(max(retry, 1), t) is Nudge.FAKE_SIGNAL
    if o.outlook is Outlook.AFTER_WAKEUP and t.kind is TaskKind.KTHREAD and not running(t):
        assert m.nudge(0, t) is Nudge.WAKE_PROCESS
    if t.kind is TaskKind.KTHREAD and t.state == "D" and o.verdict is not Verdict.SWITCH:
        assert o.outlook is not Outlook.STUCK or not (
            t.freezable is True or t.comm.startswith(m.safe_point_kthreads))
    if t.kind is not TaskKind.KTHREAD:
        assert m.nudge(retry, t) is not Nudge.WAKE_PROCESS


def test_kgraft_2014_lazy_migration_probes_three_entries() -> None:
    """x86 kgr_needs_lazy_migration(): max_entries 3, marked when nr_entries > 2;
    save_stack_trace_tsk() adds a ULONG_MAX end marker while there is room."""
    lazy = Kgraft(lazy_migration=True)
    assert lazy.stack_source is StackSource.BEST_EFFORT
    assert Kgraft().stack_source is StackSource.NONE
    short = _asleep(state="D", depth=1)
    assert lazy.judge_task(short).verdict is Verdict.SWITCH
    assert lazy.judge_task(short).extra == {"unchecked": True}
    assert Kgraft().judge_task(short).outlook is Outlook.STUCK
    assert lazy.judge_task(_asleep(state="D", depth=2)).outlook is Outlook.STUCK
    assert lazy.judge_task(_asleep(state="D", depth=1, on_cpu=True)).verdict is not Verdict.SWITCH
    # On a dump: a task preempted on its way to user space shows only
    # .sched.text frames and its entry stub to save_stack_trace_tsk().
    text = ("# pid=7 tid=7 comm=loop state=D flags=0x00400100 kthread=0 cpu=0 status=ok\n"
            "[<0>] __schedule+0x1/0x40\n[<0>] schedule+0x1/0x40\n"
            "[<0>] retint_careful+0x1/0x40\n")
    dump = parse_dump(text.encode(), "proc_snapshot")
    got = check(dump, "pf_a", "kgraft", lazy_migration=True).tasks[0]
    assert (got.facts.depth, got.outcome.verdict) == (1, Verdict.SWITCH)
    assert check(dump, "pf_a", "kgraft").tasks[0].outcome.verdict is Verdict.BLOCKED


# ---- rule 9: Ksplice --------------------------------------------------------------------------


def ksplice_brute(t: TaskFacts, restart: frozenset[str] = frozenset()) -> tuple[Verdict, Outlook]:
    """ksplice.c check_each_task()/check_task(), restated flat."""
    if t.state in ("Z", "X"):
        return Verdict.SWITCH, Outlook.SWITCHED  # TASK_DEAD
    if t.kind is TaskKind.IDLE:
        return Verdict.SWITCH, Outlook.SWITCHED  # not on do_each_thread
    if RESTART_DEFAULT in restart:
        return Verdict.BLOCKED, Outlook.STUCK  # restart_block.fn of (nearly) every thread
    stopper = t.comm.startswith("migration/") and t.comm[10:].isdigit()
    if stopper and not t.patched_frames_any:
        return Verdict.SWITCH, Outlook.SWITCHED
    if running(t) and not stopper:
        return Verdict.RUNNING, Outlook.UNKNOWN  # stopped somewhere, or UNEXPECTED_RUNNING_TASK
    if t.patched_frames_any:
        return Verdict.BLOCKED, Outlook.UNKNOWN if t.state == "R" else Outlook.STUCK
    if t.stack in (Stack.EMPTY, Stack.UNREADABLE, Stack.TRUNCATED) or t.hidden_patched_text:
        return Verdict.UNRELIABLE, Outlook.UNKNOWN
    if restart and t.kind is not TaskKind.KTHREAD:
        return Verdict.BLOCKED, Outlook.UNKNOWN
    return Verdict.SWITCH, Outlook.SWITCHED


@given(task_facts(), st.sampled_from(["migration/0", "migration/12", "migration/x", "bash"]),
       st.sampled_from([(), ("hrtimer_nanosleep_restart",), (RESTART_DEFAULT,)]))
def test_ksplice_matches_check_task(t: TaskFacts, comm: str, restart: tuple[str, ...]) -> None:
    t = replace(t, comm=comm)
    m = Ksplice(restart_functions_patched=restart)
    o = m.judge_task(t)
    assert (o.verdict, o.outlook) == ksplice_brute(t, frozenset(restart))


def test_a_running_task_aborts_ksplice_without_a_retry_a_stopper_does_not() -> None:
    m = Ksplice()
    stopper = m.judge_task(_asleep(comm="migration/1", state="R", on_cpu=True))
    assert stopper.verdict is Verdict.SWITCH
    busy = m.judge_task(_asleep(comm="stress", state="R", on_cpu=True))
    assert busy.verdict is Verdict.RUNNING and busy.extra == {"abort": "UNEXPECTED_RUNNING_TASK"}
    t = m.judge_transition([], [stopper, busy])
    assert t.converges is None and "aborted at the first attempt" in t.reason
    assert Ksplice(stopper_prefix="kstop/").judge_task(
        _asleep(comm="kstop/0", state="R", on_cpu=True)).verdict is Verdict.SWITCH


def test_ksplice_checks_restart_block_fn() -> None:
    """check_task(): restart_block.fn is compared with the replaced ranges; every
    thread holds do_no_restart_syscall (INIT_THREAD_INFO, sigreturn)."""
    dump = parse_dump(DATA / "hung-task-5.3-x86.txt")
    default = check(dump, Patch.parse("do_no_restart_syscall"), "ksplice")
    assert default.params["restart_functions_patched"] == ("do_no_restart_syscall",)
    assert default.converges is False
    assert all(r.outcome.outlook is Outlook.STUCK for r in default.tasks if not r.facts.dead)
    nanosleep = Ksplice().with_patch(Patch.parse("hrtimer_nanosleep_restart"))
    assert nanosleep.judge_task(_asleep()).outlook is Outlook.UNKNOWN
    assert nanosleep.judge_task(_asleep(kind=TaskKind.KTHREAD)).verdict is Verdict.SWITCH
    assert Ksplice().with_patch(Patch.parse("pf_a")).judge_task(_asleep()).verdict is Verdict.SWITCH
