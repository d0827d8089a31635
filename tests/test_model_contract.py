"""One model, one file: the model contract, the registry, one fact builder.

The engines (``lpc.check``, the simulator) read a model only through
``lpc.models.Model``; both build TaskFacts with ``lpc.facts``; these tests hold
them to it — including a stack built both ways, from a dump and from the
simulator, which must give the same facts.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lpc
import lpc.check
from jsonschemas import loads
from lpc.check import check, check_all, scan
from lpc.dump import parse_dump
from lpc.facts import (
    GROUP_KEYS,
    FrameFact,
    TaskTable,
    facts_from_frames,
    group_keys,
    task_facts,
)
from lpc.models import (
    MODELS,
    Josh,
    Klp,
    Model,
    Nudge,
    Stack,
    StackSource,
    TaskFacts,
    TaskKind,
    get_model,
    model_names,
)
from lpc.patch import Patch
from lpc.sim.engine import Sim
from lpc.sim.scenarios import Script
from lpc.sim.search import MODEL_NAMES
from lpc.sim.system import Function, TaskSpec, build, call, sleep

SOURCE = Path(lpc.__file__).parent


# ---- the contract ---------------------------------------------------------------------------


def test_every_registered_model_implements_the_whole_contract() -> None:
    for name in model_names(cells=True):
        m = get_model(name)
        assert isinstance(m, Model), name
        assert m.name == name
        assert len(m.cell) == 2
        assert isinstance(m.stack_source, StackSource)
        assert m.switch_points, name
        assert m.retry_interval_s > 0
        assert m.attempts is None or m.attempts > 0
        assert all(isinstance(p, str) for p in m.comm_prefixes)
        assert set(m.params()) <= m.accepts() | {"leave", "switch"}


def test_one_registry_feeds_check_simulate_and_the_cli() -> None:
    assert list(MODELS) == model_names()
    assert MODEL_NAMES == tuple(model_names(cells=True))
    from lpc.sim.plot import PLOT_MODELS

    assert PLOT_MODELS == tuple(MODELS)


def test_a_parameter_the_model_does_not_take_is_refused() -> None:
    with pytest.raises(ValueError, match="takes no parameter force"):
        get_model("kpatch", force=True)
    assert get_model("klp", force=True).params()["force"] is True


def _dump_with(stacks: list[list[str]], state: str = "S") -> lpc.Dump:
    blocks = []
    for i, stack in enumerate(stacks):
        lines = [f"[<0>] {'? ' if f.startswith('?') else ''}{f.lstrip('?')}+0x1/0x40"
                 for f in stack]
        blocks.append(f"# pid={10 + i} tid={10 + i} comm=t{i} state={state} flags=0x00400100 "
                      f"kthread=0 cpu=0 status=ok\n" + "\n".join(lines) + "\n")
    return parse_dump("\n".join(blocks).encode(), "proc_snapshot")


def test_check_all_passes_the_same_parameters_to_every_model() -> None:
    dump = _dump_with([["other_fn", "do_syscall_64"]])
    results = check_all(dump, "pf_a", reliable_stacks=False, signals_timeout=3)
    assert results["klp"].params["reliable_stacks"] is False
    assert results["klp"].params["signals_timeout"] == 3
    assert "reliable_stacks" not in results["kpatch"].params
    with pytest.raises(ValueError, match="no model asked for takes"):
        check_all(dump, "pf_a", no_such_parameter=1)


def test_models_take_their_parameters_from_the_patch() -> None:
    dump = _dump_with([["other_fn", "do_syscall_64"]])
    assert check(dump, Patch.parse("pf_a", unpatch=True), "klp").params["unpatching"] is True
    assert check(dump, Patch.parse("pf_a"), "klp").params["unpatching"] is False
    assert check(dump, "get_signal", "josh").params["freezer_path_patched"] is True
    assert check(dump, "pf_a", "josh").params["freezer_path_patched"] is False
    assert Klp().with_patch(Patch.parse("x", unpatch=True)).unpatching is True
    assert Josh().with_patch(Patch.parse("__refrigerator")).freezer_path_patched is True


def _facts(kind: TaskKind, state: str = "S", on_cpu: bool = False) -> TaskFacts:
    return TaskFacts(index=0, pid=1, tid=1, comm="t", state=state, kind=kind,
                     kind_evidence="test", on_cpu=on_cpu, stack=Stack.COMPLETE, depth=3,
                     patched_frame=0, patched_function="f")


@pytest.mark.parametrize(("retry", "kind", "state", "on_cpu", "nudge"), [
    (0, TaskKind.USER, "S", False, Nudge.NONE),
    (14, TaskKind.USER, "S", False, Nudge.NONE),
    (15, TaskKind.USER, "S", False, Nudge.FAKE_SIGNAL),
    (30, TaskKind.USER, "D", False, Nudge.FAKE_SIGNAL),  # sent; it ends only an S sleep
    (15, TaskKind.KTHREAD, "S", False, Nudge.WAKE_INTERRUPTIBLE),
    (15, TaskKind.KTHREAD, "D", False, Nudge.NONE),  # wake_up_state(TASK_INTERRUPTIBLE)
    (15, TaskKind.KTHREAD, "I", False, Nudge.NONE),
    (1, TaskKind.IDLE, "R", True, Nudge.KICK_IDLE),  # wake_up_if_idle() every pass
    (1, TaskKind.IDLE, "S", False, Nudge.NONE),
])
def test_klp_nudges_as_klp_try_complete_transition(
    retry: int, kind: TaskKind, state: str, on_cpu: bool, nudge: Nudge
) -> None:
    assert Klp().nudge(retry, _facts(kind, state, on_cpu)) is nudge


def test_klp_signals_follow_its_signals_timeout() -> None:
    klp = Klp(signals_timeout=4)
    sent = [r for r in range(20) if klp.nudge(r, _facts(TaskKind.USER)) is Nudge.FAKE_SIGNAL]
    assert sent == [4, 8, 12, 16]


def test_kgraft_nudges_from_its_first_work_run() -> None:
    """kgr_wakeup_kthreads() at start, kgr_send_fake_signal() at every kgr_work_fn run."""
    kgraft = get_model("kgraft")
    assert kgraft.nudge(0, _facts(TaskKind.USER)) is Nudge.NONE
    assert kgraft.nudge(0, _facts(TaskKind.KTHREAD, "D")) is Nudge.WAKE_PROCESS
    assert kgraft.nudge(1, _facts(TaskKind.USER)) is Nudge.FAKE_SIGNAL
    assert kgraft.nudge(2, _facts(TaskKind.KTHREAD)) is Nudge.WAKE_PROCESS
    before_2015 = get_model("kgraft", fake_signals=False)
    assert before_2015.nudge(0, _facts(TaskKind.KTHREAD)) is Nudge.WAKE_PROCESS
    assert before_2015.nudge(1, _facts(TaskKind.USER)) is Nudge.NONE
    assert before_2015.nudge(1, _facts(TaskKind.KTHREAD)) is Nudge.NONE
    assert get_model("kpatch").nudge(15, _facts(TaskKind.USER)) is Nudge.NONE


# ---- what engines may not do ------------------------------------------------------------------


def _python_sources() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def test_no_engine_reads_a_model_through_getattr_or_branches_on_its_name() -> None:
    offenders = []
    for path in _python_sources():
        rel = path.relative_to(SOURCE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and node.args:
                target = ast.unparse(node.args[0])
                if "model" in target.lower() or "model" in ast.unparse(node).lower():
                    offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.Compare) and not rel.startswith("models/"):
                text = ast.unparse(node)
                if ".name ==" in text and "model" in text.lower():
                    offenders.append(f"{rel}:{node.lineno}: {text}")
    assert offenders == []


def test_no_import_circles() -> None:
    """Every import (top level, in functions, under TYPE_CHECKING) goes one way."""
    root = SOURCE.parent
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in _python_sources()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name and t != "lpc"}
    # A package importing its own submodules is how packages work: not a circle.
    def edges(m: str) -> set[str]:
        return {t for t in graph[m] if not m.startswith(t + ".")}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            for t in edges(m):
                if t == goal:
                    return True
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return False

    circles = sorted(f"{m} -> {t}" for m in graph for t in edges(m)
                     if not t.startswith(m + ".") and reaches(t, m))
    assert circles == []


def test_lpc_check_is_the_module() -> None:
    assert lpc.check.check_all is check_all
    assert callable(lpc.check.run)


# ---- one fact builder ---------------------------------------------------------------------------


def test_group_keys_come_from_the_field_metadata() -> None:
    @dataclasses.dataclass(frozen=True)
    class Extended(TaskFacts):
        new_fact: int = 0  # judged, but names no column

    with pytest.raises(TypeError, match="new_fact"):
        group_keys(Extended)
    table = task_facts(*_scanned(_dump_with([["pf_a"]]), Patch.parse("pf_a")))[0]
    for key in GROUP_KEYS:
        assert len(getattr(table, key)) == len(table), key


def _scanned(dump: lpc.Dump, patch: Patch) -> tuple[lpc.Dump, Patch, None, object]:
    return dump, patch, None, scan(dump, patch)


NAMES = ["pf_a", "pf_b", "other_fn", "schedule", "kthread", "ret_from_fork",
         "ret_from_fork_asm", "do_syscall_64", "worker_thread"]
FRAMES = st.lists(st.tuples(st.sampled_from(NAMES), st.booleans()), max_size=8)


def _table_facts(stack: list[tuple[str, bool]], state: str, kthread: bool,
                 printed: list[Stack] | None = None, patch: str = "pf_a,pf_b") -> TaskFacts:
    lines = [f"[<0>] {'' if reliable else '? '}{name}+0x1/0x40" for name, reliable in stack]
    flag = "0x00200040 kthread=1" if kthread else "0x00400100 kthread=0"
    text = (f"# pid=42 tid=42 comm=task state={state} flags={flag} cpu=0 status=ok\n"
            + "\n".join(lines) + "\n")
    dump = parse_dump(text.encode(), "proc_snapshot")
    table, _ = task_facts(*_scanned(dump, Patch.parse(patch)))  # type: ignore[arg-type]
    assert isinstance(table, TaskTable)
    if printed is not None:
        printed.append(Stack(dump.tasks[0].stack_status.value))
    return table[0]


@settings(deadline=None)
@given(stack=FRAMES, state=st.sampled_from("SDRI"), kthread=st.booleans())
def test_a_dump_task_and_the_shared_builder_give_the_same_facts(
    stack: list[tuple[str, bool]], state: str, kthread: bool
) -> None:
    printed: list[Stack] = []
    dumped = _table_facts(stack, state, kthread, printed)
    built = facts_from_frames(
        index=0, pid=42, tid=42, comm="task", state=state, kind=dumped.kind,
        kind_evidence=dumped.kind_evidence, on_cpu=dumped.on_cpu,
        printed=printed[0], interrupted=False,
        frames=[FrameFact(n, r, n if n in ("pf_a", "pf_b") else None) for n, r in stack],
    )
    assert dumped == built
    assert dumped.kind is (TaskKind.KTHREAD if kthread else TaskKind.USER)


def _kthread_asleep_in(main_loop_caller: tuple[str, ...]) -> tuple[TaskFacts, list[str]]:
    """A simulated kthread asleep in its patched main loop, and the frames the
    reliable walker shows of it."""
    fns = [Function("pf_loop", (call("pf_wait"),), loops=True),
           Function("pf_wait", (sleep(True),))]
    system = build(fns, [TaskSpec("kt", TaskKind.KTHREAD, ("pf_loop",))], {"pf_loop"}, cpus=1)
    sim = Sim(system, get_model("klp"))
    Script(sim)("sched 0 kt", "run kt *")
    t = next(t for t in sim.tasks if t.name == "kt")
    facts = sim.facts(t, StackSource.RELIABLE)
    return facts, list(facts.frames)


def test_a_simulated_task_and_its_dump_give_the_same_facts() -> None:
    simulated, frames = _kthread_asleep_in(("kthread", "ret_from_fork"))
    assert simulated.patched_function == "pf_loop" and simulated.patched_frame_is_thread_fn
    dumped = _table_facts([(name, True) for name in frames], simulated.state or "S", True,
                          patch="pf_loop")
    # What each side knows beyond the stack differs by design: the kind's evidence,
    # whether the dump says the task is on a CPU, and freezability (the simulator
    # knows it; a dump knows only the known freezable kthreads by name).
    judged = [f.name for f in dataclasses.fields(TaskFacts)
              if not f.metadata.get("identity")
              and f.name not in ("kind_evidence", "on_cpu", "freezable")]
    assert {k: getattr(dumped, k) for k in judged} == {k: getattr(simulated, k) for k in judged}
    for name in MODELS:  # and so every model judges them alike
        model = get_model(name)
        assert model.judge_task(dumped) == model.judge_task(dataclasses.replace(
            simulated, on_cpu=dumped.on_cpu, freezable=dumped.freezable)), name


def test_ret_from_fork_calls_kthreadds_main_function_on_both_sides() -> None:
    """kthreadd's main function is called by ret_from_fork, not kthread() (init/main.c
    rest_init → kernel_thread): both builders see a thread function there."""
    frames = [FrameFact("pf_a", True, "pf_a"), FrameFact("ret_from_fork", True)]
    built = facts_from_frames(index=0, pid=2, tid=2, comm="kthreadd", state="S",
                              kind=TaskKind.KTHREAD, kind_evidence="test", on_cpu=False,
                              printed=Stack.COMPLETE, interrupted=False, frames=frames)
    assert built.patched_frame_is_thread_fn
    dumped = _table_facts([("pf_a", True), ("ret_from_fork", True)], "S", True)
    assert dumped.patched_frame_is_thread_fn


def test_an_interrupt_frame_is_a_fact_on_both_sides() -> None:
    common = dict(index=0, pid=1, tid=1, comm="t", state="R", kind=TaskKind.USER,
                  kind_evidence="t", on_cpu=False, frames=[FrameFact("f", True)])
    irq = facts_from_frames(printed=Stack.COMPLETE, interrupted=True,
                            **common)  # type: ignore[arg-type]
    assert irq.stack is Stack.COMPLETE and irq.interrupted and not irq.stack_trusted
    assert facts_from_frames(printed=Stack.TRUNCATED, interrupted=True,
                             **common).stack is Stack.TRUNCATED  # type: ignore[arg-type]


# ---- one request, one report ------------------------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_one_request_gives_one_report_that_every_output_reads() -> None:
    import io
    import json

    from lpc.check import CheckRequest, run
    from lpc.report import render_json, render_text

    request = CheckRequest(dump=str(DATA / "procdump-6.18"), patch=Patch.parse("worker_thread"),
                           models=("klp", "kpatch"), params={"force": True})
    report = run(request)
    assert list(report.results) == ["klp", "kpatch"]
    assert report.results["klp"].params["force"] is True  # klp takes it
    assert "force" not in report.results["kpatch"].params  # kpatch does not
    assert report.results["klp"].converges is True  # forced
    assert report.results["kpatch"].converges is False
    assert report.converges is False
    text = io.StringIO()
    render_text(report, text)
    assert "model klp" in text.getvalue() and "model kpatch" in text.getvalue()
    one = run(CheckRequest(dump=str(DATA / "procdump-6.18"), patch=Patch.parse("worker_thread")))
    out = io.StringIO()
    render_json(one, out)
    doc = loads(out.getvalue(), "check")
    assert doc["schema_version"] == 2 and doc["model"] == "klp"
    assert len(doc["tasks"]) == one.dump.task_count
    with pytest.raises(ValueError, match="takes no parameter force"):
        run(CheckRequest(dump=str(DATA / "procdump-6.18"), patch=Patch.parse("worker_thread"),
                         models=("kpatch",), params={"force": True}))


def test_the_json_writer_cannot_be_confused_by_dump_text() -> None:
    """A string in the document that looks like the writer's own markers stays a string."""
    import io
    import json

    from lpc.report import TaskList, write_json

    dump = _dump_with([["pf_a"]])
    result = check(dump, "pf_a")
    for text in ["\x00tasks 0\x00", "\x00tasks 7\x00", '"tasks"', "\\u0000tasks 0\\u0000"]:
        out = io.StringIO()
        write_json({"kernel_release": text, "tasks": TaskList(result.tasks), "z": [text]}, out)
        doc = json.loads(out.getvalue())
        assert doc["kernel_release"] == text and doc["z"] == [text]
        assert doc["tasks"] == result.tasks.as_json()
