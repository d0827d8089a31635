"""Each model against a brute-force restatement of its rule, on random task facts.

The restatements are written as flat decision tables straight from the sources
(kernel/livepatch/transition.c for klp, the 2014 mail for josh, ...), not by
calling the models' helpers, so a drift in either shows up here.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lpc.models import (
    CONVERGING,
    Kgraft,
    Klp,
    Kpatch,
    Ksplice,
    Matrix,
    Null,
    Outlook,
    Stack,
    TaskFacts,
    TaskKind,
    Trivial,
    Verdict,
    get_model,
    matrix_cells,
)
from lpc.kernel import Kernel
from lpc.models.josh import Josh

STATES = st.sampled_from(["R", "S", "D", "I", "T", "Z", None])


@st.composite
def task_facts(draw: st.DrawFn) -> TaskFacts:
    depth = draw(st.integers(0, 130))
    frames = tuple(draw(st.lists(st.sampled_from(["f", "g", "kthread", "worker_thread", "schedule"]),
                                 min_size=depth, max_size=depth)))
    patched = draw(st.one_of(st.none(), st.integers(0, max(depth - 1, 0)))) if depth else None
    any_frames = tuple(sorted(draw(st.sets(st.integers(0, max(depth - 1, 0)), max_size=3)))) if depth else ()
    if patched is not None and patched not in any_frames:
        any_frames = tuple(sorted({*any_frames, patched}))
    kind = draw(st.sampled_from(list(TaskKind)))
    return TaskFacts(
        index=0,
        pid=draw(st.integers(0, 5000)),
        tid=None,
        comm=draw(st.sampled_from(["bash", "kworker/0:1", "kswapd0", "swapper/0", "x"])),
        state=draw(STATES),
        kind=kind,
        kind_evidence="test",
        on_cpu=draw(st.one_of(st.none(), st.booleans())),
        stack=draw(st.sampled_from(list(Stack))),
        depth=depth,
        patched_frame=patched,
        patched_function=None if patched is None else "f",
        patched_frame_is_thread_fn=patched is not None and draw(st.booleans()),
        frames=frames,
        patched_frames_any=any_frames,
        hidden_patched_text=draw(st.booleans()),
        freezable=draw(st.one_of(st.none(), st.booleans())),
        patched_frame_in_sched_text=patched is not None and draw(st.booleans()),
        interrupted=draw(st.booleans()),
    )


def running(t: TaskFacts) -> bool:
    return t.on_cpu if t.on_cpu is not None else (t.state == "R" and t.stack is Stack.EMPTY)


def klp_verdict(t: TaskFacts, m: Klp = Klp()) -> Verdict:
    """klp_try_switch_task(): running → -EBUSY; unreliable → -EINVAL; patched frame → -EADDRINUSE.
    A zombie has no stack, which kernel/stacktrace.c reports as reliably empty."""
    if t.state in ("Z", "X"):
        return Verdict.SWITCH
    if running(t):
        return Verdict.RUNNING
    if (t.stack is not Stack.COMPLETE or t.hidden_patched_text or t.depth >= 100
            or (t.interrupted and m.regs_frames_unreliable)):
        return Verdict.UNRELIABLE
    if t.patched_frame is not None:
        return Verdict.BLOCKED
    return Verdict.SWITCH


def klp_outlook(t: TaskFacts, m: Klp = Klp()) -> Outlook:
    v = klp_verdict(t, m)
    if v is Verdict.SWITCH:
        return Outlook.SWITCHED
    if t.kind is TaskKind.USER:
        if v is Verdict.RUNNING:
            return Outlook.AT_KERNEL_EXIT  # on a CPU: it returns to user space soon
        # D/T/I sleeps end on their own; fake signals end only S sleeps.
        return {"R": Outlook.AT_KERNEL_EXIT, "S": Outlook.AFTER_SIGNAL}.get(
            t.state or "", Outlook.AFTER_WAKEUP
        )
    if t.kind is TaskKind.IDLE:
        return Outlook.AFTER_WAKEUP
    if (v is Verdict.RUNNING and t.kind is TaskKind.KTHREAD and m.cond_resched_switch
            and t.stack is Stack.COMPLETE and not (t.interrupted and m.regs_frames_unreliable)
            and not t.hidden_patched_text and t.patched_frame is None and t.depth < 100):
        return Outlook.SWITCHED  # the cond_resched() switch point checks the visible stack
    if v is Verdict.BLOCKED and t.kind is TaskKind.KTHREAD:
        if t.patched_frame_is_thread_fn:
            return Outlook.STUCK
        # S: woken by the fake wake-up, a waiting thread sleeps where it was.
        return {"S": Outlook.UNKNOWN, "R": Outlook.UNKNOWN}.get(t.state or "", Outlook.STUCK)
    return Outlook.UNKNOWN


KLP_6_12 = get_model("klp", Kernel("6.12.118+deb12-cloud-amd64", "test"))
KLP_FP = Klp(regs_frames_unreliable=True)


@given(task_facts(), st.sampled_from([Klp(), KLP_6_12, KLP_FP]))
def test_klp_matches_its_decision_table(t: TaskFacts, m: Klp) -> None:
    o = m.judge_task(t)
    assert o.verdict is klp_verdict(t, m)
    assert o.outlook is klp_outlook(t, m)
    assert o.errno == {Verdict.RUNNING: "EBUSY", Verdict.UNRELIABLE: "EINVAL",
                       Verdict.BLOCKED: "EADDRINUSE", Verdict.SWITCH: None}[o.verdict]


@given(task_facts())
def test_klp_never_switches_a_task_whose_stack_it_cannot_trust(t: TaskFacts) -> None:
    o = Klp().judge_task(t)
    if t.state in ("Z", "X"):
        return  # exited: no stack left to distrust
    if t.stack in (Stack.EMPTY, Stack.UNREADABLE, Stack.UNWIND_FAILURE, Stack.TRUNCATED):
        assert o.verdict is not Verdict.SWITCH
    if t.hidden_patched_text:
        assert o.verdict is not Verdict.SWITCH


@given(task_facts())
def test_klp_without_reliable_stacks_never_switches_by_stack_check(t: TaskFacts) -> None:
    o = Klp(reliable_stacks=False).judge_task(t)
    if t.state in ("Z", "X"):
        return
    assert o.verdict is not Verdict.SWITCH
    if t.kind is TaskKind.KTHREAD:
        assert o.outlook is Outlook.STUCK


@given(st.lists(task_facts(), max_size=6))
def test_klp_force_completes_every_transition(tasks: list[TaskFacts]) -> None:
    m = Klp(force=True)
    outs = [m.judge_task(t) for t in tasks]
    assert all(o.outlook is Outlook.SWITCHED for o in outs)
    assert m.judge_transition(tasks, outs).converges is True


@given(st.lists(task_facts(), max_size=6))
def test_thread_models_converge_iff_every_outlook_converges(tasks: list[TaskFacts]) -> None:
    for m in (Klp(), Josh(), Kgraft(), Matrix("PATCHED_SET", "THREAD"), Matrix("KERNEL", "THREAD")):
        outs = [m.judge_task(t) for t in tasks]
        c = m.judge_transition(tasks, outs).converges
        looks = {o.outlook for o in outs}
        if Outlook.STUCK in looks:
            assert c is False
        elif Outlook.UNKNOWN in looks:
            assert c is None
        elif any(o.outlook is Outlook.AFTER_WAKEUP and o.eta_s is None for o in outs):
            assert c is None  # a sleep only its own end moves on
        else:
            assert c is True and looks <= CONVERGING


@given(task_facts())
def test_josh_follows_the_mail(t: TaskFacts) -> None:
    o = Josh().judge_task(t)
    clean_now = t.state in ("Z", "X") or (
        not running(t) and t.stack is Stack.COMPLETE and not t.hidden_patched_text
        and t.patched_frame is None and not t.interrupted  # 2014: frame pointers only
    )
    if clean_now:
        assert (o.verdict, o.outlook) == (Verdict.SWITCH, Outlook.SWITCHED)
        return
    assert o.verdict is not Verdict.SWITCH
    unfreezable_kthread = t.kind is TaskKind.KTHREAD and t.freezable is not True
    if unfreezable_kthread and t.patched_frame is not None and not running(t):
        assert o.outlook is Outlook.STUCK  # "fail"
    if unfreezable_kthread and running(t):
        assert o.outlook is Outlook.UNKNOWN  # "retry"
    if t.kind is TaskKind.USER and t.state in ("S", "R", None):
        assert o.outlook is Outlook.SWITCHED  # freeze, recheck, switch
    assert Josh(freezer_path_patched=True).judge_task(t).outlook in (Outlook.STUCK, Outlook.UNKNOWN)


@given(task_facts())
def test_null_switches_everyone_and_flags_old_code(t: TaskFacts) -> None:
    o = Null().judge_task(t)
    assert (o.verdict, o.outlook) == (Verdict.SWITCH, Outlook.SWITCHED)
    assert o.extra["executing_old"] is (True if t.patched_frame is not None
                                        else None if not (t.stack is Stack.COMPLETE
                                                          and not t.hidden_patched_text
                                                          and not t.interrupted)
                                        else False)


@given(st.lists(task_facts(), max_size=5))
def test_trivial_never_claims_completion(tasks: list[TaskFacts]) -> None:
    m = Trivial()
    outs = [m.judge_task(t) for t in tasks]
    assert m.judge_transition(tasks, outs).converges is None
    for t, o in zip(tasks, outs):
        assert (o.verdict is Verdict.BLOCKED) == bool(t.patched_frames_any)


@given(st.lists(task_facts(), max_size=5))
def test_stop_machine_models_are_all_or_nothing(tasks: list[TaskFacts]) -> None:
    for m in (Kpatch(), Ksplice(), Matrix("PATCHED_SET", "KERNEL")):
        outs = [m.judge_task(t) for t in tasks]
        c = m.judge_transition(tasks, outs).converges
        if any(o.outlook is Outlook.STUCK for o in outs):
            assert c is False
        elif all(o.outlook is Outlook.SWITCHED for o in outs):
            assert c is True


@given(task_facts())
def test_ksplice_counts_stale_words_kpatch_does_not(t: TaskFacts) -> None:
    ks = Ksplice().judge_task(t)
    if t.kind is not TaskKind.IDLE and not running(t) and t.patched_frames_any \
            and t.state not in ("Z", "X"):
        assert ks.verdict is Verdict.BLOCKED
    kp = Kpatch().judge_task(t)
    if t.kind is TaskKind.IDLE and t.state not in ("Z", "X"):
        assert kp.verdict is Verdict.SWITCH and kp.extra["unchecked"]


@given(task_facts())
def test_kgraft_ignores_stacks_and_needs_kernel_exit_or_a_safe_point(t: TaskFacts) -> None:
    o = Kgraft().judge_task(t)
    same = Kgraft().judge_task(
        TaskFacts(**{**t.__dict__, "patched_frame": None, "patched_frames_any": ()})
    )
    assert (o.verdict, o.outlook) == (same.verdict, same.outlook), "kGraft checks no stack"
    if t.kind is TaskKind.USER and t.state == "D" and not running(t):
        assert o.outlook is Outlook.STUCK


@given(task_facts())
def test_matrix_cells_are_ordered_by_strength(t: TaskFacts) -> None:
    """LEAVE_FUNCTION never waits; LEAVE_KERNEL never finishes for kernel threads."""
    assert Matrix("FUNCTION", "THREAD").judge_task(t).outlook is Outlook.SWITCHED
    if t.kind is TaskKind.KTHREAD and t.state not in ("Z", "X"):
        assert Matrix("KERNEL", "THREAD").judge_task(t).outlook is Outlook.STUCK


def test_every_model_and_cell_is_reachable_by_name() -> None:
    for name in ["null", "trivial", "josh", "klp", "kpatch", "kgraft", "ksplice"]:
        assert get_model(name).name == name
    for cell in matrix_cells():
        assert get_model(cell.name).cell == cell.cell
    assert len(matrix_cells()) == 9
