"""The fact builder (lpc.facts) and the check pipeline (lpc.check), rule by rule.

Each rule is written once in lpc.facts from the Linux facts of lpc.kernel:
the kind of a task and the evidence it rests on (PF_KTHREAD, user registers,
a system-call entry frame, ret_from_fork -> kthread(), kthreadd's children),
the reliable walker's verdict on an interrupted stack
(arch_stack_walk_reliable() gives up on kernel-mode regs), the first frame
klp_check_stack() would find (it reads only what the reliable walker reports:
never a `?` frame) and whether that frame is a kthread's main function. These
tests pin each rule's branches and the messages lpc check prints.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from lpc.check import CheckRequest, Report, check, check_all, first_patched_frame, run, scan, validate
from lpc.dump import Dump, parse_dump
from lpc.facts import (
    frame_function_names,
    GROUP_KEYS,
    FrameFact,
    PatchedFrames,
    StackEvidence,
    facts_from_frames,
    first_patched,
    freezable_by_comm,
    group_keys,
    infer_kind,
    is_thread_fn,
    on_cpu_evidence,
)
from lpc.models import MODELS, Klp, Stack, TaskFacts, TaskKind
from lpc.patch import Patch
from lpc.symbols import Symbols

DATA = Path(__file__).parent / "data"
UNKNOWN_FLAGS = 2**64 - 1


def kind_of(**kw: Any) -> tuple[TaskKind, str]:
    base: dict[str, Any] = dict(pid=100, comm="x", kthread=-1, task_flags=UNKNOWN_FLAGS,
                                user_regs=False, ppid=1, syscall_entry=False, kthread_root=False)
    base.update(kw)
    return infer_kind(**base)


IDLE = (TaskKind.IDLE, "pid 0: a per-CPU idle task")
IDLE_BY_LOOP = (TaskKind.IDLE, "swapper with the idle loop on its stack: a per-CPU idle task")
PF_TASK = "PF_KTHREAD in the task flags"
PF_STAT = "PF_KTHREAD in flags"
REGS = (TaskKind.USER, "a user-mode register dump (RIP: 0033) follows its header")
SYSCALL = (TaskKind.USER, "a system-call entry frame on its stack")
ROOT = (TaskKind.KTHREAD, "stack rooted in ret_from_fork → kthread() without a syscall entry")
KTHREADD = (TaskKind.KTHREAD, "a child of kthreadd (ppid 2)")
NAME = (TaskKind.KTHREAD, "its name is a kernel thread's (weak evidence)")
NOTHING = (TaskKind.UNKNOWN, "no flags, registers or stack root tell")


@pytest.mark.parametrize(
    "kw,expected",
    [
        (dict(pid=0, kthread=0), IDLE),
        # The comm alone is not enough (PID 1 is swapper/0 before init runs).
        (dict(comm="swapper/3", kthread=0), (TaskKind.USER, "PF_KTHREAD in the task flags")),
        (dict(comm="swapper/0", pid=1, idle_loop=True), (TaskKind.UNKNOWN,
                                                          "no flags, registers or stack root tell")),
        (dict(comm="swapper/3", pid=-1, idle_loop=True), IDLE_BY_LOOP),
        (dict(comm="swapper/3", pid=-1), (TaskKind.UNKNOWN, "no flags, registers or stack root tell")),
        (dict(comm="kworker/0:1", idle_loop=True), (TaskKind.KTHREAD,
                                                    "its name is a kernel thread's (weak evidence)")),
        (dict(kthread=1), (TaskKind.KTHREAD, PF_TASK)),
        # 0 is an answer (not a kthread), -1 is "not shown": the boundary is >= 0.
        (dict(kthread=0, task_flags=0x00200000, user_regs=False, kthread_root=True), (TaskKind.USER, PF_TASK)),
        (dict(task_flags=0x00200000 | 0x40), (TaskKind.KTHREAD, PF_STAT)),
        (dict(task_flags=0, kthread_root=True), (TaskKind.USER, PF_STAT)),
        (dict(task_flags=0x00400100, ppid=2), (TaskKind.USER, PF_STAT)),
        (dict(user_regs=True, kthread_root=True, ppid=2), REGS),
        (dict(syscall_entry=True, kthread_root=True, ppid=2), SYSCALL),
        (dict(kthread_root=True, ppid=2), ROOT),
        (dict(ppid=2, comm="bash"), KTHREADD),
        (dict(pid=2, ppid=0, comm="kthreadd"), KTHREADD),
        (dict(comm="ksoftirqd/0"), NAME),
        (dict(comm="jbd2/sda1-8"), NAME),
        (dict(comm="bash"), NOTHING),
        (dict(comm="my_ksoftirqd"), NOTHING),
    ],
)
def test_infer_kind_takes_the_strongest_evidence(kw: dict[str, Any], expected: tuple[TaskKind, str]) -> None:
    assert kind_of(**kw) == expected


def test_an_interrupt_frame_is_a_fact_the_models_judge() -> None:
    # The stack stays as printed; whether kernel-mode registers make the walk
    # fail is the kernel's (the model's) rule: ORC walks through them.
    irq = build(frames=[F("a")], interrupted=True)
    assert irq.stack is Stack.COMPLETE and irq.interrupted and not irq.stack_trusted
    assert "interrupt" in irq.stack_problem
    assert build(frames=[F("a")]).stack_trusted


def test_on_cpu_comes_from_evidence_only() -> None:
    said = np.array([-1, -1, -1, -1, -1, 0, 1], np.int8)
    states = np.frombuffer(b"RRRRSRS", np.uint8)
    ev = np.array([0, StackEvidence.ON_IRQ_STACK, StackEvidence.PRINTING, 0,
                   StackEvidence.PRINTING, StackEvidence.PRINTING, 0], np.uint8)
    guesses = np.array([False, False, False, True, False, False, False])
    # runnable alone is not on a CPU; an IRQ stack, the printer's frames, only
    # guesses are; a sleeping task never is; the source's own word stands.
    assert on_cpu_evidence(said, states, ev, guesses).tolist() == [-1, 1, 1, 1, -1, 0, 1]
    # The same pid printed again on a CPU (an NMI backtrace): its runnable
    # SysRq-t occurrence is on that CPU too; a sleeping one is not changed.
    pids = np.array([7, 3, 4, 5, 7, 8, 9], np.int64)
    twice = on_cpu_evidence(np.array([-1, -1, -1, -1, -1, -1, 1], np.int8), states,
                            np.zeros(7, np.uint8), np.zeros(7, bool),
                            np.array([9, 3, 4, 5, 6, 8, 9], np.int64))
    assert twice.tolist() == [1, -1, -1, -1, -1, -1, 1]
    assert on_cpu_evidence(said, states, ev, guesses, pids).tolist() == [-1, 1, 1, 1, -1, 0, 1]


def test_stack_evidence_of_a_frame_name() -> None:
    assert StackEvidence.of_name("entry_SYSCALL_64_after_hwframe") is StackEvidence.SYSCALL_ENTRY
    assert StackEvidence.of_name("__x64_sys_wait4") is StackEvidence.SYSCALL_ENTRY
    assert StackEvidence.of_name("kthread") is StackEvidence.KTHREAD
    assert StackEvidence.of_name("kthread_worker_fn") is StackEvidence.NONE
    assert StackEvidence.of_name("ret_from_fork_asm") is StackEvidence.FORK_RETURN
    assert StackEvidence.of_name("schedule") is StackEvidence.NONE
    both = StackEvidence.KTHREAD | StackEvidence.FORK_RETURN
    assert both.kthread_root
    assert (both | StackEvidence.SYSCALL_ENTRY).kthread_root
    assert not StackEvidence.KTHREAD.kthread_root
    assert not StackEvidence.FORK_RETURN.kthread_root
    assert not StackEvidence.NONE.kthread_root


def F(name: str, eligible: bool = True, patched: str | None = None, sched: bool = False) -> FrameFact:
    return FrameFact(name, eligible, patched, sched)


def test_the_first_patched_frame_is_the_first_reliable_one() -> None:
    frames = [F("a"), F("b", False, "b"), F("c", True, "c"), F("d", True, "d")]
    assert first_patched(frames) == 2
    assert first_patched([F("a"), F("b", False, "b")]) is None
    assert first_patched([]) is None
    assert first_patched([F("x", True, "x")]) == 0


def test_a_thread_function_is_called_by_kthread_or_ret_from_fork() -> None:
    loop = [F("worker_thread", True, "worker_thread"), F("x", False), F("kthread"), F("ret_from_fork")]
    assert is_thread_fn(loop, 0)
    # kthreadd is called by ret_from_fork itself.
    assert is_thread_fn([F("kthreadd", True, "kthreadd"), F("ret_from_fork_asm")], 0)
    # The caller is the next *eligible* frame out: a `?` kthread does not count.
    assert not is_thread_fn([F("f", True, "f"), F("kthread", False), F("g"), F("kthread")], 0)
    assert not is_thread_fn([F("f", True, "f")], 0)
    assert not is_thread_fn([F("f", True, "f"), F("kthread", False)], 0)
    # Frames inner to `at` are not its callers.
    assert not is_thread_fn([F("kthread"), F("f", True, "f"), F("g")], 1)
    assert is_thread_fn([F("g"), F("f", True, "f"), F("kthread")], 1)


def build(**kw: Any) -> TaskFacts:
    base: dict[str, Any] = dict(
        index=3, pid=7, tid=8, comm="kswapd0", state="S", kind=TaskKind.KTHREAD,
        kind_evidence="PF_KTHREAD in flags", on_cpu=False, printed=Stack.COMPLETE,
        interrupted=False, frames=[],
    )
    base.update(kw)
    return facts_from_frames(**base)


def test_facts_from_frames_builds_every_field() -> None:
    frames = [F("schedule"), F("?old", False, "old"), F("kswapd", True, "kswapd", True),
              F("kthread"), F("ret_from_fork")]
    assert build(frames=frames, freezable=True, extra_depth=3) == TaskFacts(
        index=3, pid=7, tid=8, comm="kswapd0", state="S", kind=TaskKind.KTHREAD,
        kind_evidence="PF_KTHREAD in flags", on_cpu=False, stack=Stack.COMPLETE,
        depth=4 + 3, patched_frame=2, patched_function="kswapd", patched_frame_is_thread_fn=True,
        frames=("schedule", "?old", "kswapd", "kthread", "ret_from_fork"),
        patched_frames_any=(1, 2), hidden_patched_text=False, freezable=True,
        patched_frame_in_sched_text=True,
    )


def test_facts_from_frames_branches() -> None:
    loop = [F("kswapd", True, "kswapd"), F("kthread")]
    # A user task's patched frame is never a thread function.
    assert not build(frames=loop, kind=TaskKind.USER).patched_frame_is_thread_fn
    assert build(frames=loop).patched_frame_is_thread_fn
    assert not build(frames=loop).patched_frame_in_sched_text
    assert not build(frames=[F("a")]).patched_frame_in_sched_text
    none = build(frames=[F("a"), F("b", False, "b")])
    assert (none.patched_frame, none.patched_function, none.patched_frame_is_thread_fn) == (None, None, False)
    assert none.depth == 1 and none.patched_frames_any == (1,)
    # An interrupted stack stays complete (the model judges it); hidden text is
    # reported only on complete stacks.
    irq = build(frames=loop, interrupted=True, hidden_text=True)
    assert irq.stack is Stack.COMPLETE and irq.interrupted and irq.hidden_patched_text is True
    assert build(frames=loop, printed=Stack.EMPTY, hidden_text=True).hidden_patched_text is False
    assert build(frames=loop, hidden_text=True).hidden_patched_text is True
    assert build(frames=loop).hidden_patched_text is False
    assert build(frames=loop).freezable is None


def test_freezable_kthreads_by_name() -> None:
    assert freezable_by_comm("kswapd0") is True
    assert freezable_by_comm("khugepaged") is True
    assert freezable_by_comm("kcompactd0") is True
    assert freezable_by_comm("kworker/0:1") is None
    assert freezable_by_comm("bash") is None


def test_group_keys_come_from_field_metadata() -> None:
    assert GROUP_KEYS == ("states", "kind_groups", "on_cpus", "stack_codes", "depth", "first",
                          "function", "thread_fn", "hit_sequences", "hung",
                          "interrupted_column", "lost_codes")
    assert group_keys() == GROUP_KEYS

    @dataclass
    class Partial:
        who: int = field(metadata={"identity": True})
        what: int = field(metadata={"key": "states"})
        also: int = field(metadata={"key": "states"})

    assert group_keys(Partial) == ("states",)

    @dataclass
    class Loose:
        who: int = field(metadata={"identity": True})
        new_fact: int = 0

    with pytest.raises(TypeError, match=r"^Loose\.new_fact names neither identity nor its group-key column$"):
        group_keys(Loose)


def test_patched_frames_is_a_mapping_of_tasks_to_positions() -> None:
    # Tasks own frame rows [0, 3), [3, 5), [5, 9), [9, 9); rows inside the set: 1, 2, 6, 7, 8.
    pf = PatchedFrames(np.array([0, 3, 5, 9, 9]), np.array([1, 2, 6, 7, 8]))
    assert list(pf) == [0, 2]
    assert len(pf) == 2
    assert pf[0] == (1, 2) and pf[2] == (1, 2, 3)
    assert dict(pf) == {0: (1, 2), 2: (1, 2, 3)}
    for absent in (1, 3, 4, -1):
        assert absent not in pf
        with pytest.raises(KeyError) as missing:
            pf[absent]
        assert missing.value.args == (absent,)
    assert 0 in pf and 2 in pf and np.int64(2) in pf
    assert "0" not in pf and 0.0 not in pf
    assert pf.owners.tolist() == [0, 0, 2, 2, 2] and pf.positions.tolist() == [1, 2, 1, 2, 3]
    last = PatchedFrames(np.array([0, 2, 4]), np.array([3]))
    assert list(last) == [1] and last[1] == (1,) and 0 not in last and 2 not in last
    empty = PatchedFrames(np.array([0, 3]), np.array([], dtype=np.int64))
    assert len(empty) == 0 and list(empty) == [] and 0 not in empty


# ---- a small snapshot through TaskTable and lpc.check -------------------------------------------

SNAPSHOT = b"""\
# pid=10 tid=10 comm=bash state=S cpu=0 status=ok
[<0>] do_wait+0x1/0x40
[<0>] ? foo+0x1/0x40
[<0>] do_syscall_64+0x1/0x40
[<0>] entry_SYSCALL_64_after_hwframe+0x1/0x40

# pid=20 tid=20 comm=kworker/0:1 state=I cpu=0 status=ok
[<0>] schedule+0x1/0x40
[<0>] worker_thread+0x1/0x40
[<0>] kthread+0x1/0x40
[<0>] ret_from_fork+0x1/0x40

# pid=21 tid=21 comm=kworker/1:1 state=I cpu=1 status=ok
[<0>] schedule+0x1/0x40
[<0>] worker_thread+0x1/0x40
[<0>] kthread+0x1/0x40
[<0>] ret_from_fork+0x1/0x40

# pid=30 tid=30 comm=modthread state=D cpu=0 status=ok
[<0>] foo+0x1/0x40 [ext4]
[<0>] schedule+0x1/0x40
[<0>] kthread+0x1/0x40
[<0>] ret_from_fork+0x1/0x40

# pid=40 tid=40 comm=kswapd0 state=S cpu=0 status=unreadable
"""


@cache
def small() -> Dump:
    return parse_dump(SNAPSHOT, "proc_snapshot")


def test_the_task_table_answers_per_task() -> None:
    r = check(small(), "worker_thread,ext4:foo", "klp")
    table = r.tasks.facts  # type: ignore[attr-defined]
    assert len(table) == 5
    assert table.frames(0) == ("do_wait", "foo", "do_syscall_64", "entry_SYSCALL_64_after_hwframe")
    assert [f.patched for f in table.frame_facts(3)] == ["foo", None, None, None]
    assert [f.eligible for f in table.frame_facts(0)] == [True, False, True, True]
    assert [table.kind(t) for t in range(5)] == [TaskKind.USER, TaskKind.KTHREAD, TaskKind.KTHREAD,
                                                 TaskKind.KTHREAD, TaskKind.KTHREAD]
    assert table.stack(4) is Stack.UNREADABLE and table.stack(0) is Stack.COMPLETE
    assert not any(table.interrupted(t) for t in range(5))
    assert table[-1] == table[4] and table[4].index == 4 and table[4].freezable is True
    assert table[1:3] == [table[1], table[2]]
    with pytest.raises(IndexError):
        table[5]
    with pytest.raises(IndexError):
        table[-6]
    assert table[1].patched_frame == 1 and table[1].patched_frame_is_thread_fn
    assert table[3].patched_function == "foo" and table[3].patched_frame == 0
    assert table[0].patched_frame is None and table[0].patched_frames_any == ()
    # The two idle kworkers are one group; kGraft's comm prefixes do not split them.
    groups, reps = table.groups
    assert groups.tolist() == [0, 1, 1, 2, 3] and reps.tolist() == [0, 1, 3, 4]
    assert table.groups_for(()) is table.groups
    split, _ = table.groups_for(("kworker/1",))
    assert split.tolist() == [0, 1, 2, 3, 4]
    assert table.groups_for(("kworker/1",)) is table.groups_for(("kworker/1",))


def test_check_by_name_says_what_it_could_not_do() -> None:
    r = check(small(), "worker_thread,ext4:foo,not_on_any_stack,also_absent", "klp")
    assert r.source == {
        "format": "proc_snapshot", "path": None, "kernel_release": None, "tasks": 5, "frames": 16,
        "skipped_lines": 0, "skipped_samples": [], "symbols": None, "matched_by": "name",
    }
    ours = [w for w in r.warnings if w not in small().warnings]
    # The check's own warnings come first, then the dump's, then the roll-ups.
    unseen = ("patch function(s) seen on no stack: not_on_any_stack, also_absent (matched by "
              "name against every frame of the dump; without a symbol table a misspelt name "
              "cannot be told from an absent one)")
    assert r.warnings[: len(small().warnings) + 2] == (
        "no symbol table: frames matched the patch by name, so duplicate static functions "
        "(sympos) are not told apart", unseen, *small().warnings)
    assert ours == [
        "no symbol table: frames matched the patch by name, so duplicate static functions "
        "(sympos) are not told apart",
        unseen,
        "1 task(s) have an empty, unreadable, unreliable or incomplete stack: unknown",
    ]
    assert not any(w.startswith("patch function(s)") for w in check(small(), "worker_thread", "klp").warnings)
    # The object decides: vmlinux `foo` is not the ext4 module's `foo`, and the other way round.
    assert check(small(), "foo", "klp").tasks.facts[3].patched_frame is None  # type: ignore[attr-defined]
    assert check(small(), "ext4:foo", "klp").tasks.facts[0].patched_frames_any == ()  # type: ignore[attr-defined]
    assert check(small(), "foo", "klp").tasks.facts[0].patched_frames_any == (1,)  # type: ignore[attr-defined]
    # A `foo` of an object the dump never shows, where it shows other objects' `foo`:
    # most likely misnamed, so refused with the spellings that would match.
    from lpc.locate import PatchNotLocatedError

    with pytest.raises(PatchNotLocatedError, match="did you mean ext4:foo or foo"):
        check(small(), "xfs:foo", "klp")


def test_check_takes_parameters_with_a_name_only() -> None:
    with pytest.raises(ValueError, match=r"^parameters go with a model name, not a model object$"):
        check(small(), "foo", Klp(), force=True)
    assert check(small(), "foo", Klp(force=True)).params["force"] is True
    assert check(small(), "foo", "klp", force=True).params["force"] is True
    assert check(small(), ["foo", "worker_thread"], "klp").patch == Patch.parse("foo,worker_thread")
    assert check(small(), Patch.parse("foo", unpatch=True), "klp").params["unpatching"] is True


def test_check_all_and_run_give_every_model_the_same_request() -> None:
    every = check_all(small(), "worker_thread", force=True)
    assert list(every) == list(MODELS)
    assert every["klp"].params["force"] is True
    assert every["klp"].transition.converges is True and every["kpatch"].transition.converges is False
    with pytest.raises(ValueError, match=r"^no model asked for takes the parameter\(s\) bogus, nope$"):
        check_all(small(), "worker_thread", nope=1, bogus=2)


def test_validate_refuses_unknown_models_and_parameters() -> None:
    validate(CheckRequest(models=("klp", "kpatch"), params={"force": True}))
    validate(CheckRequest(models=("all",), params={"max_depth": 10}))
    with pytest.raises(ValueError, match=r"^no model asked for takes the parameter\(s\) force$"):
        validate(CheckRequest(models=("kpatch", "ksplice"), params={"force": True}))
    with pytest.raises(ValueError) as one:
        validate(CheckRequest(models=("kpatch",), params={"force": True}))
    assert "no model asked for takes" not in str(one.value)
    with pytest.raises(ValueError):
        validate(CheckRequest(models=("klp", "no_such_model")))
    assert CheckRequest(models=("all",)).all_models and not CheckRequest().all_models


def test_run_loads_judges_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.txt"
    path.write_bytes(SNAPSHOT)
    request = CheckRequest(dump=str(path), patch=Patch.parse("worker_thread"), models=("kpatch", "klp"),
                           params={"force": True})
    report = run(request)
    assert report.request is request and report.symbols is None
    assert list(report.results) == ["kpatch", "klp"]
    assert report.results["klp"].params["force"] is True
    kpatch_params = dict(report.results["kpatch"].params)
    assert dict(kpatch_params.pop("klp_profile"))["profile"] == "6.16+"  # the dump's kernel
    assert kpatch_params == {"max_depth": 64, "attempts": 5, "insmod_retry_s": 2.0,
                             "livepatch": False, "unpatching": False}
    assert report.results["klp"].source["matched_by"] == "name"
    assert report.dump.task_count == 5 and str(path) in report.description
    assert report.converges is False and report.sleeping is None
    assert report.results["klp"].tasks.facts[1].patched_frame == 1  # type: ignore[attr-defined]
    every = run(CheckRequest(dump=str(path), patch=Patch.parse("worker_thread"), models=("all",)))
    assert list(every.results) == list(MODELS)
    bare = run(CheckRequest(dump=str(path)))
    assert (bare.request.dump, bare.dump.task_count, bare.symbols) == (str(path), 5, None)
    assert str(path) in bare.description
    assert bare.results == {} and bare.sleeping == [
        ("schedule", 3), ("kthread", 3), ("ret_from_fork", 3), ("worker_thread", 2), ("do_wait", 1), ("do_syscall_64", 1),
        ("entry_SYSCALL_64_after_hwframe", 1), ("foo", 1)]


def test_a_report_converges_only_when_every_model_does() -> None:
    def report(*answers: bool | None) -> Report:
        results = {str(i): SimpleNamespace(converges=a) for i, a in enumerate(answers)}
        return Report(CheckRequest(), "", small(), None, results)  # type: ignore[arg-type]

    assert report(True, True).converges is True
    assert report(True, None).converges is None
    assert report(None, False, True).converges is False
    assert report(False).converges is False
    assert report().converges is True


# ---- with the snapshot's own symbol table ------------------------------------------------------


@cache
def snapshot() -> Dump:
    return parse_dump(DATA / "procdump-6.18")


@cache
def symbols() -> Symbols:
    return Symbols.from_kallsyms(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))


def test_proc_stacks_cannot_clear_sched_text() -> None:
    r = check(snapshot(), "schedule_timeout", "klp", symbols())
    assert r.source["matched_by"] == "address"
    assert "the patch touches .sched.text/lock text, which /proc/<pid>/stack never shows: sleeping " \
           "tasks' stacks cannot prove they are outside it (use a SysRq-t dump)" in r.warnings
    assert (f"{snapshot().task_count} task(s) have an empty, unreadable, unreliable or "
            "incomplete stack: unknown") in r.warnings
    assert all(r.tasks.facts[t].hidden_patched_text or r.tasks.facts[t].stack is not Stack.COMPLETE  # type: ignore[attr-defined]
               for t in range(snapshot().task_count))
    plain = check(snapshot(), "worker_thread", "klp", symbols())
    assert not any(w.startswith("the patch touches .sched.text") for w in plain.warnings)
    assert not any(w.startswith("patch function(s) seen on no stack") for w in plain.warnings)
    assert not any(w.startswith("no symbol table") for w in plain.warnings)


def test_frames_are_matched_by_address_with_a_symbol_table() -> None:
    # Without symbols, proc frames match by name; with them, by [start, end).
    first, function = first_patched_frame(snapshot(), Patch.parse("worker_thread"), symbols())
    named, _ = first_patched_frame(snapshot(), Patch.parse("worker_thread"))
    assert (first >= 0).any() and (first == named).all()
    assert set(function[first >= 0].tolist()) == {0}
    assert ((first >= 0) == (function >= 0)).all()


def test_frames_not_in_the_symbol_table_are_counted_outside_the_patch() -> None:
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<0>] no_such_function_here+0x10/0x40\n[<0>] also_missing+0x1/0x20\n"
            b"[<0>] worker_thread+0x98/0x310\n")
    found = scan(parse_dump(text, "proc_snapshot"), Patch.parse("worker_thread").resolve(symbols()), symbols())
    assert found.by_address and found.first.tolist() == [2]
    # Named frames of other functions are outside the patch by the dump's own word: no loss.
    assert found.warnings == () and not found.token_lost.any()


# ---- frames given by name and offset, resolved in a symbol table -------------------------------

#: A table with exact sizes (what Symbols.from_elf builds from st_size): two static
#: `helper`s told apart only by their printed size, and a module's own `foo`.
def sized_symbols(module: str | None = None) -> Symbols:
    from lpc import _core

    names = ["worker_thread", "helper", "helper", "do_wait"]
    addresses = np.array([0xFFFFFFFF81000000, 0xFFFFFFFF81000400, 0xFFFFFFFF81000500,
                          0xFFFFFFFF81000600], dtype=np.uint64)
    sizes = np.array([0x310, 0x40, 0x80, 0x100], dtype=np.uint64)
    return Symbols(_core.symbols_from_entries(addresses, b"Tttt", names, sizes, module), "test")


def test_a_named_frame_resolves_by_its_printed_size() -> None:
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<0>] helper+0x10/0x80\n[<0>] helper+0x10/0x40\n[<0>] helper+0x10\n"
            b"[<0>] worker_thread+0x30f/0x310\n")
    syms = sized_symbols()
    dump = parse_dump(text, "proc_snapshot")
    # Patch the second helper (size 0x80) by address: only the frame printed with /0x80 is in it.
    patch = PatchFunctionRange("helper", 0xFFFFFFFF81000500, 0xFFFFFFFF81000580)
    found = scan(dump, patch, syms)
    assert found.by_address and found.first.tolist() == [0]
    # Frame 2 names `helper` without a size: ambiguous, and it could be the patched
    # helper, so it lost its evidence (the task's stack is incomplete).
    assert found.warnings == ()
    assert found.token_lost[dump.frame_tokens[2]] == 1  # Loss.UNPINNED
    first = PatchFunctionRange("helper", 0xFFFFFFFF81000400, 0xFFFFFFFF81000440)
    assert scan(dump, first, syms).first.tolist() == [1]
    # The return address is the function's start + the printed offset: +0x30f is still inside.
    assert scan(dump, PatchFunctionRange("worker_thread", 0xFFFFFFFF81000000, 0xFFFFFFFF81000310),
                syms).first.tolist() == [3]


def test_a_module_frame_resolves_in_its_module() -> None:
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<0>] do_wait+0x10/0x100 [ext4]\n[<0>] worker_thread+0x10/0x310\n")
    dump = parse_dump(text, "proc_snapshot")
    in_module = PatchFunctionRange("do_wait", 0xFFFFFFFF81000600, 0xFFFFFFFF81000700, "ext4")
    # A vmlinux-only table cannot place the ext4 frame; an ext4 table can.
    assert scan(dump, in_module, sized_symbols()).first.tolist() == [-1]
    assert scan(dump, in_module, sized_symbols("ext4")).first.tolist() == [0]


def test_a_printed_address_wins_over_the_name() -> None:
    # Another kernel's symbols: the printed return address, not name+offset, is the frame.
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<ffffffff81000610>] worker_thread+0x10/0x310\n")
    dump = parse_dump(text, "proc_snapshot")
    patch = PatchFunctionRange("do_wait", 0xFFFFFFFF81000600, 0xFFFFFFFF81000700)
    found = scan(dump, patch, sized_symbols())
    assert found.first.tolist() == [0] and found.warnings == ()


def PatchFunctionRange(name: str, start: int, end: int, obj: str | None = None) -> Patch:
    from lpc.patch import PatchFunction

    return Patch((PatchFunction(name, obj, None, start, end),))


def test_first_patched_frame_resolves_the_patch_first() -> None:
    # By address, a frame whose printed size is not the table's is not pinned (outside);
    # by name it would match: the answer shows which way the patch was matched.
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<0>] worker_thread+0x10/0x999\n[<0>] do_wait+0x10/0x100\n")
    dump = parse_dump(text, "proc_snapshot")
    first, function = first_patched_frame(dump, Patch.parse("worker_thread,do_wait"), sized_symbols())
    assert first.tolist() == [1] and function.tolist() == [1]
    first, function = first_patched_frame(dump, Patch.parse("worker_thread,do_wait"))
    assert first.tolist() == [0] and function.tolist() == [0]


def test_symbols_reach_every_model_of_check_all_and_run(tmp_path: Path) -> None:
    every = check_all(snapshot(), "worker_thread", symbols())
    assert {r.source["matched_by"] for r in every.values()} == {"address"}
    assert all(r.source["symbols"] is not None for r in every.values())
    # An explicit symbol table for a dump without one.
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    stacks = tmp_path / "stacks.txt"
    stacks.write_bytes(b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n[<0>] worker_thread+0x98/0x310\n")
    given = run(CheckRequest(dump=str(stacks), symbols=str(kallsyms), patch=Patch.parse("worker_thread"),
                             models=("klp", "kpatch")))
    assert given.symbols is not None
    assert {r.source["matched_by"] for r in given.results.values()} == {"address"}
    assert all(r.source["symbols"] is not None for r in given.results.values())
    bare = CheckRequest(dump=str(stacks), symbols=str(kallsyms))
    answer = run(bare)
    assert answer.request is bare and answer.symbols is not None and answer.dump.task_count == 1
    assert str(stacks) in answer.description and answer.sleeping == [("worker_thread", 1)]


def test_frame_and_token_names() -> None:
    from lpc.facts import frame_function_names, token_function_names

    names = frame_function_names(small())
    assert names.tolist()[:4] == ["do_wait", "foo", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"]
    assert len(names) == small().frame_count
    tokens = token_function_names(small())
    assert len(tokens) == small().token_count and "worker_thread" in tokens
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<ffffffff81000610>] 0xffffffff81000610\n[<ffffffff91000000>] 0xffffffff91000000\n")
    bare = parse_dump(text, "proc_snapshot")
    assert frame_function_names(bare).tolist() == ["?", "?"]
    # %pB: a return address belongs to the function holding address - 1.
    assert frame_function_names(bare, sized_symbols()).tolist() == ["do_wait", "?"]
    assert token_function_names(bare, sized_symbols()) == ["do_wait", "?"]
    assert frame_function_names(parse_dump(b"", "proc_snapshot")).tolist() == []


# ---- the grouping key: equal groups iff equal judged facts --------------------------------------

#: Tasks alike in everything but their `?` frames inside the patch (every one has one reliable
#: frame, no reliable patched frame): only the hit sequence — (position, name) of each patched
#: frame, innermost first — tells them apart, and the trivial model and Ksplice read it.
QUESTIONABLE = [
    ("?other_fn", "?other_fn", "?other_fn"),
    ("?pf_a", "?other_fn", "?other_fn"),
    ("?pf_b", "?other_fn", "?other_fn"),
    ("?other_fn", "?pf_a", "?other_fn"),
    ("?pf_a", "?pf_b", "?other_fn"),
    ("?pf_b", "?pf_b", "?other_fn"),
    ("?pf_a", "?pf_b", "?pf_c"),
    ("?pf_a", "?pf_a", "?pf_c"),
    ("?pf_c", "?other_fn", "?other_fn"),
    ("?other_fn", "?other_fn", "?pf_c"),
    ("?pf_c", "?pf_a", "?other_fn"),
    ("?pf_a", "?pf_b", "?pf_c"),
    ("?other_fn", "?other_fn", "?other_fn"),
    ("?pf_b", "?other_fn", "?pf_c"),
]


def test_tasks_share_a_group_iff_their_patched_frames_agree() -> None:
    blocks = []
    for i, frames in enumerate(QUESTIONABLE):
        lines = [f"[<0>] ? {name[1:]}+0x1/0x40" for name in frames] + ["[<0>] schedule+0x1/0x40"]
        blocks.append("\n".join([f"# pid={100 + i} tid={100 + i} comm=bash state=S cpu=0 status=ok", *lines]))
    dump = parse_dump(("\n\n".join(blocks) + "\n").encode(), "proc_snapshot")
    table = check(dump, "pf_a,pf_b,pf_c", "trivial").tasks.facts  # type: ignore[attr-defined]
    groups, reps = table.groups
    hits = [tuple((k, f) for k, f in enumerate(frames) if f != "?other_fn") for frames in QUESTIONABLE]
    for s in range(len(hits)):
        for t in range(len(hits)):
            assert (groups[s] == groups[t]) == (hits[s] == hits[t]), (hits[s], hits[t])
    assert groups.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 6, 0, 11]
    assert reps.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]


def test_groups_for_splits_by_every_prefix_a_model_reads() -> None:
    table = check(small(), "worker_thread", "kgraft").tasks.facts  # type: ignore[attr-defined]
    # kworker/0:1 and kworker/1:1 share a group; a model that reads "kworker/1" (its second
    # prefix) tells them apart.
    split, _ = table.groups_for(("kworker/9", "kworker/1"))
    assert split.tolist() == [0, 1, 2, 3, 4]
    same, _ = table.groups_for(("kworker/9", "nope"))
    assert same.tolist() == [0, 1, 1, 2, 3]
    empty = check(parse_dump(b"", "proc_snapshot"), "x", "kgraft")
    assert empty.tasks.facts.groups_for(("kworker/",))[0].tolist() == []  # type: ignore[attr-defined]
    assert empty.transition.converges is None  # no task read: never CONVERGES (issue 11)


def test_task_table_indexing_and_unknown_identity() -> None:
    table = check(small(), "worker_thread", "klp").tasks.facts  # type: ignore[attr-defined]
    assert table[-5] == table[0]
    with pytest.raises(IndexError) as beyond:
        table[5]
    assert beyond.value.args == (5,)
    legacy = check(parse_dump(DATA / "proc-pid-stack-legacy-addresses.txt"), "schedule", "klp")
    facts = legacy.tasks.facts[0]  # type: ignore[attr-defined]
    assert facts.pid is None and facts.tid is None
    assert check(small(), "worker_thread", "klp").tasks.facts[0].pid == 10  # type: ignore[attr-defined]


def test_a_frame_in_sched_text_is_marked_so() -> None:
    syms = Symbols.from_kallsyms(
        b"ffffffff81000000 T worker_thread\n"
        b"ffffffff81000400 T __sched_text_start\n"
        b"ffffffff81000400 T schedule_timeout\n"
        b"ffffffff81000500 T __sched_text_end\n"
        b"ffffffff81000600 T do_wait\n"
        b"ffffffff81000700 T _etext\n")
    text = (b"# pid=10 tid=10 comm=kworker/0:1 state=S cpu=0 status=ok\n"
            b"[<0>] schedule_timeout+0x10/0x100\n[<0>] worker_thread+0x10/0x400\n[<0>] kthread+0x1/0x40\n")
    dump = parse_dump(text, "proc_snapshot")
    # Patch function 0 lies in .sched.text, function 1 does not.
    table = check(dump, "schedule_timeout,worker_thread", "klp", syms).tasks.facts  # type: ignore[attr-defined]
    assert [f.in_sched_text for f in table.frame_facts(0)] == [True, False, False]
    assert table[0].patched_frame == 0 and table[0].patched_frame_in_sched_text
    table = check(dump, "worker_thread", "klp", syms).tasks.facts  # type: ignore[attr-defined]
    assert [f.in_sched_text for f in table.frame_facts(0)] == [False, False, False]
    assert table[0].patched_frame == 1 and not table[0].patched_frame_in_sched_text


def test_by_name_the_first_patch_function_of_a_name_wins() -> None:
    # Without a symbol table sympos cannot be told apart: the first listed function is reported.
    found = scan(small(), Patch.parse("worker_thread,worker_thread@2"))
    assert set(found.token_function.tolist()) == {-1, 0}
    assert found.first.tolist() == [-1, 1, 1, -1, -1] and found.function.tolist() == [-1, 0, 0, -1, -1]


def test_the_report_names_the_symbol_table_it_used() -> None:
    r = check(snapshot(), "worker_thread", "klp", symbols())
    assert r.source["symbols"] == symbols().source and r.source["symbols"] is not None
    assert check(snapshot(), "worker_thread", "klp").source["symbols"] is None


def test_same_named_functions_of_two_objects_resolve_apart() -> None:
    syms = Symbols.from_kallsyms(
        b"ffffffff81000600 T do_wait\nffffffff81000700 T _etext\n"
        b"ffffffffc0001000 t do_wait\t[ext4]\nffffffffc0001100 t other\t[ext4]\n")
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n[<0>] do_wait+0x10/0x100 [ext4]\n\n"
            b"# pid=11 tid=11 comm=bash state=S cpu=0 status=ok\n[<0>] do_wait+0x10/0x100\n")
    dump = parse_dump(text, "proc_snapshot")
    ext4 = PatchFunctionRange("do_wait", 0xFFFFFFFFC0001000, 0xFFFFFFFFC0001100, "ext4")
    vmlinux = PatchFunctionRange("do_wait", 0xFFFFFFFF81000600, 0xFFFFFFFF81000700)
    assert scan(dump, ext4, syms).first.tolist() == [0, -1]
    assert scan(dump, vmlinux, syms).first.tolist() == [-1, 0]


def test_a_frame_without_a_printed_size_resolves_by_name_alone() -> None:
    text = b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n[<0>] do_wait+0x10\n"
    found = scan(parse_dump(text, "proc_snapshot"),
                 PatchFunctionRange("do_wait", 0xFFFFFFFF81000600, 0xFFFFFFFF81000700), sized_symbols())
    assert found.first.tolist() == [0] and found.warnings == ()


def test_without_a_symbol_table_even_a_resolved_patch_matches_by_name() -> None:
    resolved = PatchFunctionRange("worker_thread", 0xFFFFFFFF81000000, 0xFFFFFFFF81000310)
    found = scan(small(), resolved)
    assert found.by_address is False and found.first.tolist() == [-1, 1, 1, -1, -1]
    assert set(found.token_function.tolist()) == {-1, 0}
    # With the table, the frames' printed size (0x40) is not worker_thread's (0x310): they are
    # not pinned, so they count as outside (-1), like every token without an address.
    by_address = scan(small(), resolved, sized_symbols())
    assert by_address.by_address is True and by_address.first.tolist() == [-1, -1, -1, -1, -1]
    assert set(by_address.token_function.tolist()) == {-1}


def test_bare_return_addresses_are_named_by_the_kernels_pB_rule() -> None:
    # %pB: a return address belongs to the function holding address - 1, so the end of
    # worker_thread (0x310) is still worker_thread and the start of do_wait (0x600) is not do_wait.
    text = (b"# pid=10 tid=10 comm=bash state=S cpu=0 status=ok\n"
            b"[<ffffffff81000310>] 0xffffffff81000310\n[<ffffffff81000610>] 0xffffffff81000610\n"
            b"[<ffffffff81000600>] 0xffffffff81000600\n[<ffffffff91000000>] 0xffffffff91000000\n")
    dump = parse_dump(text, "proc_snapshot")
    names = frame_function_names(dump, sized_symbols())
    assert names.dtype == object
    assert names.tolist() == ["worker_thread", "do_wait", "?", "?"]
    table = check(dump, "do_wait", "klp", sized_symbols()).tasks.facts  # type: ignore[attr-defined]
    assert table.frames(0) == ("worker_thread", "do_wait", "?", "?")
