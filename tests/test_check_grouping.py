"""`lpc.check` judges one task per group of identical facts, from columns.

Both shortcuts are checked here against brute force: every task's facts are
rebuilt from its :class:`~lpc.dump.Task` object, one task at a time, and every
task is judged on its own; the grouped, columnar answer must be the same — on
the real dumps and on generated snapshots built to make the groups collide
(recursion through patched functions, ``?`` frames next to the patched one,
interrupt frames, kernel threads told apart only by their stacks).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpc.check import CheckResult, check, sleeping_functions
from lpc.facts import STACK_CODES, TaskTable, infer_kind
from lpc.kernel import FREEZABLE_KTHREAD_PREFIXES as FREEZABLE_KTHREADS
from lpc.kernel import INTERRUPT_ENTRY_PREFIXES, PRINTING_FRAMES
from lpc.kernel import SYSCALL_ENTRY_PREFIXES as SYSCALL_ENTRY
from lpc.kernel import in_sched_text_by_name
from lpc.dump import UNKNOWN_U64, Dump, FrameContext, StackStatus, Task, parse_dump
from lpc.models import MODELS, Stack, StackSource, TaskFacts, get_model
from lpc.patch import Patch
from lpc.symbols import Symbols
from test_check_real import snapshot, symbols  # the real 6.18 snapshot and its kallsyms

DATA = Path(__file__).parent / "data"


def brute_on_cpu(task: Task) -> bool | None:
    """On a CPU: the parser's word, else (runnable) an IRQ stack, the printer's
    functions, or nothing but `?` guesses."""
    names = [f.function or "?" for f in task.frames]
    if task.on_cpu is None and task.state == "R" and (
        any(f.context in (FrameContext.IRQ, FrameContext.SOFTIRQ, FrameContext.NMI)
            for f in task.frames)
        or any(n in PRINTING_FRAMES for n in names)
        or (task.frames and not any(f.reliable and not f.inlined for f in task.frames))
    ):
        return True
    return task.on_cpu


def brute_facts(task: Task, index: int, patch: Patch, result: CheckResult,
                source: StackSource = StackSource.RELIABLE,
                on_cpu_pids: frozenset[int | None] = frozenset()) -> TaskFacts:
    """One task's facts from its Task object, by name (no symbol table), as the
    model's stack walker (``source``) reports them: a best-effort one skips
    .sched.text and lock-text frames."""
    names = tuple(f.function or "?" for f in task.frames)
    skipped = [source is StackSource.BEST_EFFORT and in_sched_text_by_name(n) for n in names]
    eligible = [f.reliable and not f.inlined and not s for f, s in zip(task.frames, skipped)]
    inside = [f.function in patch.names and not s and (f.module is None) == all(
        p.object is None for p in patch.functions if p.name == f.function)
        for f, s in zip(task.frames, skipped)]
    first = next((i for i, (e, hit) in enumerate(zip(eligible, inside)) if e and hit), None)
    status = Stack(task.stack_status.value)
    # Interrupted: a frame in an interrupt/exception section (a user part at the
    # end is not one), or an interrupt entry's name.
    tail = len(task.frames)
    while tail and task.frames[tail - 1].context is FrameContext.USER:
        tail -= 1
    interrupted = any(f.context is not FrameContext.TASK for f in task.frames[:tail]) or any(
        n.startswith(INTERRUPT_ENTRY_PREFIXES) for n in names)
    on_cpu = brute_on_cpu(task)
    if on_cpu is None and task.state == "R" and task.pid in on_cpu_pids:
        on_cpu = True  # the same task printed again, on its CPU
    kind, evidence = infer_kind(
        pid=-1 if task.pid is None else task.pid, comm=task.comm,
        kthread=-1 if task.kthread is None else int(task.kthread),
        task_flags=UNKNOWN_U64 if task.task_flags is None else task.task_flags,
        user_regs=task.user_regs, ppid=-1 if task.ppid is None else task.ppid,
        syscall_entry=any(n.startswith(SYSCALL_ENTRY) for n in names),
        kthread_root="kthread" in names and any(n.startswith("ret_from_fork") for n in names),
        idle_loop=any(n in ("do_idle", "cpu_startup_entry", "cpu_idle") for n in names),
    )
    thread_fn = False
    if first is not None and kind.value == "kthread":
        after = [names[k] for k in range(first + 1, len(names)) if eligible[k]]
        thread_fn = bool(after) and (after[0] in ("kthread", "ret_from_fork")
                                     or after[0].startswith("ret_from_fork"))
    hidden = result.tasks.facts.hidden  # type: ignore[attr-defined]
    return TaskFacts(
        index=index, pid=task.pid, tid=task.tid, comm=task.comm, state=task.state, kind=kind,
        kind_evidence=evidence, on_cpu=on_cpu, stack=status, depth=sum(eligible),
        patched_frame=first,
        patched_function=None if first is None else names[first],
        patched_frame_is_thread_fn=thread_fn, frames=names,
        patched_frames_any=tuple(i for i, hit in enumerate(inside) if hit),
        hidden_patched_text=hidden and status is Stack.COMPLETE,
        freezable=True if task.comm.startswith(FREEZABLE_KTHREADS) else None,
        patched_frame_in_sched_text=False,
        interrupted=interrupted,
        hung=task.hung,
        evidence_lost=brute_loss(task)[0],
        evidence_line=brute_loss(task)[1],
    )


def brute_loss(task: Task) -> tuple[str | None, int | None]:
    """What the task lost and the line of it (no symbol table here): what the
    parser saw first (header, then end, then a frame line), else its first
    frame that lost evidence."""
    from lpc.dump import TaskLoss
    from lpc.facts import Loss

    for bit, loss in ((TaskLoss.HEADER, Loss.HEADER), (TaskLoss.UNCLOSED, Loss.UNCLOSED),
                      (TaskLoss.FRAME_LINE, Loss.FRAME_LINE)):
        if task.lost & bit:
            return loss.reason, task.lost_line
    for f in task.frames:
        if f.offset is not None and f.size is not None and f.offset > f.size:
            return Loss.OFFSET_OUTSIDE.reason, f.line
        if f.function is None:
            return Loss.NAMELESS.reason, f.line
    return None, None


def assert_grouping_is_exact(dump: Dump, patch: Patch, syms: Symbols | None = None) -> None:
    for name in MODELS:
        result = check(dump, patch, name, syms)
        model = get_model(name, **result.params)
        facts = result.tasks.facts
        outcomes = [model.judge(facts[t]) for t in range(dump.task_count)]
        assert [r.outcome for r in result.tasks] == outcomes, name
        assert model.judge_dump(facts, outcomes, facts.tasks_lost()) == result.transition, name
        assert result.tasks.as_json() == [r.as_json() for r in result.tasks], name
        if syms is None:
            on_cpu_pids = frozenset(task.pid for task in dump.tasks
                                    if task.pid is not None and brute_on_cpu(task) is True)
            for t, task in enumerate(dump.tasks):
                assert facts[t] == brute_facts(task, t, result.patch, result,
                                               model.stack_source, on_cpu_pids), (name, t, task.comm)
        assert_columns_agree_with_facts(facts)  # type: ignore[arg-type]
    assert sleeping_functions(dump) == brute_sleeping_functions(dump)


def assert_columns_agree_with_facts(table: TaskTable) -> None:
    """The grouping columns (numpy, whole dump) and each task's TaskFacts (built
    by lpc.facts.facts_from_frames) are two computations of the same facts."""
    for t in range(len(table)):
        f = table[t]
        assert int(table.first[t]) == (-1 if f.patched_frame is None else f.patched_frame)
        assert bool(table.thread_fn[t]) == f.patched_frame_is_thread_fn, t
        assert int(table.depth[t]) == f.depth, t
        assert table.stack(t) is f.stack or f.hidden_patched_text, t
        assert table.kind(t) is f.kind, t


def brute_sleeping_functions(dump: Dump) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for task in dump.tasks:
        if task.stack_status is not StackStatus.COMPLETE or task.on_cpu is True:
            continue
        for name in dict.fromkeys(f.function for f in task.frames
                                  if f.reliable and not f.inlined and f.function):
            counts[name] = counts.get(name, 0) + 1  # type: ignore[index]
    return sorted(counts.items(), key=lambda kv: -kv[1])  # stable: first appearance breaks ties


@pytest.mark.parametrize("functions", ["worker_thread", "do_wait,kthread", "anon_pipe_read",
                                       "smpboot_thread_fn,worker_thread", "schedule"])
def test_grouped_answers_equal_task_by_task_on_the_real_snapshot(functions: str) -> None:
    assert_grouping_is_exact(snapshot(), Patch.parse(functions))
    if functions != "anon_pipe_read":  # not in the table: a SymbolError, tested elsewhere
        assert_grouping_is_exact(snapshot(), Patch.parse(functions), symbols())


@pytest.mark.parametrize("sample", ["sysrq-t-6.x-i915-modules.txt", "rcu-stall-6.10-nmi.txt",
                                    "hung-task-6.18.txt", "sysrq-t-5.7-orc-all-unreliable.txt",
                                    "crash-bt-foreach.txt", "hung-task-4.4-x86-addresses.txt"])
def test_grouped_answers_equal_task_by_task_on_kernel_logs(sample: str) -> None:
    dump = parse_dump(DATA / sample)
    named = [n for n in dump.names if n.startswith(("schedule", "do_", "worker", "kthread"))]
    assert_grouping_is_exact(dump, Patch.parse(",".join(named[:3]) or "schedule"))


# ---- generated snapshots ------------------------------------------------------------------------

PATCHED = ["pf_a", "pf_b", "pf_c"]
VOCABULARY = [*PATCHED, "other_fn", "schedule", "kthread", "ret_from_fork", "ret_from_fork_asm",
              "do_syscall_64", "entry_SYSCALL_64_after_hwframe", "worker_thread"]
COMMS = ["kworker/0:1", "kswapd0", "bash", "swapper/0", "sleep", "rcu_sched", "my thread",
         "ksoftirqd/0", "khugepaged"]


FRAME = st.tuples(st.sampled_from(VOCABULARY), st.booleans(), st.integers(1, 3))


def mutate_one_frame(draw: st.DrawFn, frames: list[tuple[str, bool, int]]) -> None:
    """One small change to a stack, in place: what separates near-twin tasks."""
    if not frames:
        return
    k = draw(st.integers(0, len(frames) - 1))
    name, reliable, offset = frames[k]
    change = draw(st.sampled_from(["swap", "patched", "reliability", "offset", "any"]))
    if change == "swap" and k + 1 < len(frames):  # two frames trade places
        frames[k], frames[k + 1] = frames[k + 1], frames[k]
    elif change == "patched":  # another patched function at the same place
        frames[k] = (draw(st.sampled_from(PATCHED)), reliable, offset)
    elif change == "reliability":  # the same frame, now a `?` one (or back)
        frames[k] = (name, not reliable, offset)
    elif change == "offset":  # another return site in the same function
        frames[k] = (name, reliable, draw(st.integers(1, 3)))
    else:
        frames[k] = draw(FRAME)


@st.composite
def snapshot_text(draw: st.DrawFn) -> str:
    """Tasks drawn from a few shared stacks, and near-twins: a task that copies
    the previous one and changes one thing (one or two frames, its comm or its
    state) — the pairs a wrong group key would merge."""
    pool = draw(st.lists(st.lists(FRAME, max_size=7), min_size=1, max_size=3))
    blocks = []
    previous: dict[str, object] | None = None
    for i in range(draw(st.integers(1, 25))):
        if previous is not None and draw(st.booleans()):
            task = dict(previous, frames=list(previous["frames"]))  # type: ignore[call-overload]
            what = draw(st.sampled_from(["frame", "frame", "comm", "state"]))
            if what == "frame":  # one or two changes: `?` moving between frames takes two
                for _ in range(draw(st.integers(1, 2))):
                    mutate_one_frame(draw, task["frames"])  # type: ignore[arg-type]
            elif what == "comm":
                task["comm"] = draw(st.sampled_from(COMMS))
            else:
                task["state"] = draw(st.sampled_from("SDRIZT"))
        else:
            frames = list(draw(st.sampled_from(pool)))
            if draw(st.booleans()):
                mutate_one_frame(draw, frames)
            task = {
                "comm": draw(st.sampled_from(COMMS)),
                "state": draw(st.sampled_from("SSSDRIZT")),
                "kthread": draw(st.sampled_from(["0", "1", "1", None])),
                "status": draw(st.sampled_from(["ok"] * 6 + ["unreadable", "truncated"])),
                "pid": draw(st.sampled_from([0, 2, None])),
                "frames": frames,
            }
        previous = task
        kthread = task["kthread"]
        pid = 100 + i if task["pid"] is None else task["pid"]
        fields = f"flags=0x{0x200040 if kthread == '1' else 0x400100:08x} " if kthread else ""
        header = (f"# pid={pid} tid={100 + i} comm={task['comm']} state={task['state']} {fields}"
                  f"{'kthread=' + str(kthread) + ' ' if kthread else ''}cpu=0 status={task['status']}")
        lines = [f"[<0>] {'' if reliable else '? '}{fn}+0x{off:x}/0x40"
                 for fn, reliable, off in task["frames"]]  # type: ignore[attr-defined]
        blocks.append("\n".join([header, *lines]) + "\n")
    return "\n".join(blocks)


@settings(deadline=None)  # examples: the hypothesis profile (conftest.py)
@given(text=snapshot_text(), patch=st.lists(st.sampled_from(PATCHED), min_size=1, unique=True))
def test_grouped_answers_equal_task_by_task_on_generated_snapshots(text: str, patch: list[str]) -> None:
    dump = parse_dump(text.encode(), "proc_snapshot")
    assert_grouping_is_exact(dump, Patch.parse(",".join(patch)))


def test_stack_codes_follow_the_dump_statuses() -> None:
    assert [s.value for s in STACK_CODES] == [s.value for s in StackStatus]


KW = ("kworker/0:1", "S")
#: case -> (a model whose answers differ between the twins, or None when only the
#: facts do — e.g. the reported frame index — and the twins' (comm, state) and stacks).
NEAR_TWINS: dict[str, tuple[str | None, list[tuple[tuple[str, str], list[str]]]]] = {
    # Same depth, same first patched position, different patched function.
    "function": ("klp", [(KW, ["pf_a", "other_fn"]), (KW, ["pf_b", "other_fn"])]),
    # The patched frame is the thread's main function only when kthread() calls it.
    "thread_fn": ("klp", [(KW, ["pf_a", "kthread", "other_fn", "ret_from_fork"]),
                          (KW, ["pf_a", "other_fn", "kthread", "ret_from_fork"])]),
    # A `?` copy of a patched function further out: the trivial model and Ksplice see it.
    "unreliable_copy": ("trivial", [(KW, ["other_fn", "schedule", "?pf_a"]),
                                    (KW, ["other_fn", "schedule", "?other_fn"])]),
    # Recursion through the patched set versus one patched frame.
    "recursion": ("trivial", [(KW, ["pf_a", "pf_a", "other_fn"]), (KW, ["pf_a", "pf_b", "other_fn"])]),
    # Same depth and patched positions; which frame is `?` decides the first patched one.
    "which_frame_is_unreliable": ("klp", [(KW, ["other_fn", "?pf_a", "schedule"]),
                                          (KW, ["?other_fn", "pf_a", "schedule"])]),
    # Same patched names at the same positions; the reported first frame differs.
    "which_copy_is_unreliable": (None, [(KW, ["pf_a", "?pf_a", "other_fn"]),
                                        (KW, ["?pf_a", "pf_a", "other_fn"])]),
    # kGraft knows kworkers' safe point by name; ksoftirqd has none.
    "kgraft_comm": ("kgraft", [(("kworker/0:1", "R"), []), (("ksoftirqd/0", "R"), [])]),
}


@pytest.mark.parametrize("case", sorted(NEAR_TWINS))
def test_near_identical_tasks_are_judged_apart(case: str) -> None:
    model, twins = NEAR_TWINS[case]
    blocks = []
    for i, ((comm, state), stack) in enumerate(twins):
        lines = [f"[<0>] {'? ' if f.startswith('?') else ''}{f.lstrip('?')}+0x1/0x40" for f in stack]
        blocks.append(f"# pid={10 + i} tid={10 + i} comm={comm} state={state} flags=0x00200040 "
                      f"kthread=1 cpu=0 status=ok\n" + "\n".join(lines) + "\n")
    dump = parse_dump("\n".join(blocks).encode(), "proc_snapshot")
    assert_grouping_is_exact(dump, Patch.parse("pf_a,pf_b"))
    result = check(dump, Patch.parse("pf_a,pf_b"), model or "klp")
    assert result.tasks.outcomes.groups.tolist() == [0, 1]  # type: ignore[attr-defined]
    if model is not None:
        assert result.tasks.outcomes[0] != result.tasks.outcomes[1]
