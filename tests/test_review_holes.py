"""Holes a mutation run found: ``name@N`` patch specs end to end, the
``PF_KTHREAD`` branch of ``infer_kind``, and every field of ``lpc watch``'s
JSON lines.

``name@N`` follows kernel/livepatch/core.c: ``klp_find_callback()`` counts
every symbol of that name in the object, in kallsyms order, and stops at the
``pos``-th (1-based); ``klp_find_object_symbol()`` refuses a name that is not
unique when ``sympos`` is 0, and a position past the last occurrence. The
expected addresses below are read straight from the kallsyms text, not from
``lpc.symbols``.
"""

from __future__ import annotations

import gzip
import io
import json
import types
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from jsonschemas import lines as json_lines
from jsonschemas import loads
from lpc import cli
from lpc.check import check
from lpc.facts import infer_kind
from lpc.kernel import PF_KTHREAD
from lpc.dump import parse_dump
from lpc.errors import SymbolError
from lpc.models import TaskKind
from lpc.patch import Patch, PatchFunction, PatchSpecError
from lpc.symbols import Symbols

DATA = Path(__file__).parent / "data"
#: A static function defined once per filesystem cache: 12 in vmlinux.
DUPLICATE = "init_once"


@pytest.fixture(scope="module")
def kallsyms_text() -> bytes:
    return gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes())


@pytest.fixture(scope="module")
def kallsyms_file(kallsyms_text: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kallsyms") / "kallsyms.txt"
    path.write_bytes(kallsyms_text)
    return path


@pytest.fixture(scope="module")
def symbols(kallsyms_text: bytes) -> Symbols:
    return Symbols.from_kallsyms(kallsyms_text)


@pytest.fixture(scope="module")
def occurrences(kallsyms_text: bytes) -> list[int]:
    """Addresses of every vmlinux ``DUPLICATE`` line, in file order: what the
    kernel's kallsyms_on_each_symbol() walk meets, one by one."""
    found = []
    for line in kallsyms_text.decode().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == DUPLICATE:  # a 4th field names a module
            found.append(int(fields[0], 16))
    return found


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ---- name@N: parse → spec -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "obj", "sympos", "spec"), [
    ("init_once@2", "init_once", None, 2, "init_once@2"),
    ("init_once@12", "init_once", None, 12, "init_once@12"),
    ("vmlinux:init_once@1", "init_once", None, 1, "init_once@1"),
    ("ext4:ext4_file_write_iter@2", "ext4_file_write_iter", "ext4", 2,
     "ext4:ext4_file_write_iter@2"),
    ("nfs:init_once", "init_once", "nfs", None, "nfs:init_once"),
    # sympos 0 is the kernel's "must be unique": the same as no position at all.
    ("init_once@0", "init_once", None, None, "init_once"),
    ("  worker_thread  ", "worker_thread", None, None, "worker_thread"),
])
def test_patch_function_spec_round_trips(text: str, name: str, obj: str | None,
                                         sympos: int | None, spec: str) -> None:
    f = PatchFunction.parse(text)
    assert (f.name, f.object, f.sympos) == (name, obj, sympos)
    assert f.spec == spec
    assert PatchFunction.parse(f.spec) == f
    assert f.as_json()["sympos"] == (sympos or 0)
    assert f.as_json()["object"] == (obj or "vmlinux")


@pytest.mark.parametrize("text", ["init_once@", "init_once@-1", "init_once@x", "@2", "a:b:c",
                                  "init once", ""])
def test_malformed_specs_are_refused(text: str) -> None:
    with pytest.raises(PatchSpecError):
        Patch.parse(text)


def test_patch_list_keeps_order_and_positions() -> None:
    p = Patch.parse("init_once@3, worker_thread,ext4:ext4_file_write_iter@2")
    assert [f.spec for f in p.functions] == ["init_once@3", "worker_thread",
                                             "ext4:ext4_file_write_iter@2"]
    assert p.names == {"init_once", "worker_thread", "ext4_file_write_iter"}


def test_patch_file_reads_positions(tmp_path: Path) -> None:
    path = tmp_path / "patch.txt"
    path.write_text("# two of the twelve\ninit_once@2\ninit_once@11  # trailing comment\n")
    p = Patch.from_file(path)
    assert [(f.name, f.sympos) for f in p.functions] == [("init_once", 2), ("init_once", 11)]


# ---- name@N: resolve against the real table ----------------------------------------------------------


def test_the_sample_has_twelve_occurrences(occurrences: list[int]) -> None:
    assert len(occurrences) == 12 and len(set(occurrences)) == 12


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12])
def test_at_n_resolves_to_the_nth_occurrence_in_kallsyms_order(
    n: int, symbols: Symbols, occurrences: list[int]
) -> None:
    (f,) = Patch.parse(f"{DUPLICATE}@{n}").resolve(symbols).functions
    assert f.start == occurrences[n - 1]
    assert f.end is not None and f.start < f.end
    # No other occurrence starts inside the range.
    assert not any(f.start < a < f.end for a in occurrences)
    assert f.spec == f"{DUPLICATE}@{n}" and f.as_json()["sympos"] == n


def test_every_position_is_a_different_function(symbols: Symbols, occurrences: list[int]) -> None:
    starts = [Patch.parse(f"{DUPLICATE}@{n}").resolve(symbols).functions[0].start
              for n in range(1, len(occurrences) + 1)]
    assert starts == occurrences


@pytest.mark.parametrize("spec", [DUPLICATE, f"{DUPLICATE}@0"])
def test_an_ambiguous_name_without_a_position_is_refused(spec: str, symbols: Symbols) -> None:
    with pytest.raises(SymbolError, match="ambiguous"):
        Patch.parse(spec).resolve(symbols)


def test_a_position_past_the_last_occurrence_is_refused(symbols: Symbols) -> None:
    with pytest.raises(SymbolError, match="no sympos 13"):
        Patch.parse(f"{DUPLICATE}@13").resolve(symbols)


def test_position_1_of_a_unique_name_is_that_name(symbols: Symbols) -> None:
    plain = Patch.parse("worker_thread").resolve(symbols).functions[0]
    first = Patch.parse("worker_thread@1").resolve(symbols).functions[0]
    assert (plain.start, plain.end) == (first.start, first.end)
    with pytest.raises(SymbolError, match="no sympos 2"):
        Patch.parse("worker_thread@2").resolve(symbols)


# ---- name@N through `lpc check` ------------------------------------------------------------------


def one_task_per_occurrence(symbols: Symbols) -> str:
    """A /proc snapshot in which task tK sleeps inside the K-th ``DUPLICATE``,
    its frame printed with the address (as /proc did before v4.17)."""
    blocks = []
    for k, sym in enumerate(symbols.lookup_all(DUPLICATE), 1):
        off = sym.size // 2
        blocks.append(
            f"# pid={100 + k} tid={100 + k} comm=t{k} state=D flags=0x00400100 kthread=0 cpu=0 "
            f"status=ok\n[<{sym.address + off:016x}>] {DUPLICATE}+{off:#x}/{sym.size:#x}\n"
            "[<0>] do_syscall_64+0x71/0x280\n[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n\n"
        )
    return "".join(blocks)


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_cli_check_at_n_blocks_only_the_task_in_the_nth_function(
    n: int, symbols: Symbols, kallsyms_file: Path, occurrences: list[int], tmp_path: Path
) -> None:
    dump = tmp_path / "stacks.txt"
    dump.write_text(one_task_per_occurrence(symbols))
    code, out, _ = run_cli("check", "--dump", str(dump), "--symbols", str(kallsyms_file),
                           "--patch", f"{DUPLICATE}@{n}", "--json")
    doc = loads(out, "check")
    # one task is blocked in D in the patched function: whether it wakes, lpc cannot tell
    assert doc["summary"]["converges"] is None and code == 4
    (function,) = doc["patch"]["functions"]
    assert (function["name"], function["object"], function["sympos"]) == (DUPLICATE, "vmlinux", n)
    assert function["start"] == f"{occurrences[n - 1]:#x}"
    assert doc["source"]["matched_by"] == "address"
    blocked = [t["comm"] for t in doc["tasks"] if t["verdict"] == "blocked"]
    assert blocked == [f"t{n}"]
    assert all(t["verdict"] == "switch" for t in doc["tasks"] if t["comm"] != f"t{n}")


def test_cli_check_ambiguous_name_is_bad_input(symbols: Symbols, kallsyms_file: Path,
                                               tmp_path: Path) -> None:
    dump = tmp_path / "stacks.txt"
    dump.write_text(one_task_per_occurrence(symbols))
    code, out, err = run_cli("check", "--dump", str(dump), "--symbols", str(kallsyms_file),
                             "--patch", DUPLICATE)
    assert code == 3 and out == ""
    assert "ambiguous" in err and "Traceback" not in err


# ---- infer_kind: the PF_KTHREAD branch -------------------------------------------------------------

UNKNOWN_FLAGS = 2**64 - 1


def kind(**overrides: object) -> tuple[TaskKind, str]:
    """infer_kind with nothing known but what ``overrides`` says."""
    args: dict[str, object] = dict(pid=1234, comm="worker", kthread=-1, task_flags=UNKNOWN_FLAGS,
                                   user_regs=False, ppid=1, syscall_entry=False,
                                   kthread_root=False)
    args.update(overrides)
    return infer_kind(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("flags", "expected"), [
    (PF_KTHREAD, TaskKind.KTHREAD),
    (0x00208040, TaskKind.KTHREAD),  # PF_KTHREAD | PF_NOFREEZE | PF_FORKNOEXEC (a kworker)
    (0x00400100, TaskKind.USER),  # PF_RANDOMIZE | PF_SUPERPRIV: no PF_KTHREAD
    (0, TaskKind.USER),
    (UNKNOWN_FLAGS - PF_KTHREAD, TaskKind.USER),  # every other bit set
])
def test_infer_kind_reads_pf_kthread_from_the_task_flags(flags: int, expected: TaskKind) -> None:
    assert kind(task_flags=flags) == (expected, "PF_KTHREAD in flags")


def test_the_flags_outrank_every_weaker_hint() -> None:
    # User registers, a syscall frame and a kthread-looking name all say otherwise.
    assert kind(task_flags=PF_KTHREAD, user_regs=True, syscall_entry=True)[0] is TaskKind.KTHREAD
    assert kind(task_flags=0, comm="kworker/0:1", ppid=2, kthread_root=True)[0] is TaskKind.USER


def test_unknown_flags_fall_through_to_the_next_evidence() -> None:
    assert kind(user_regs=True)[0] is TaskKind.USER
    assert kind(kthread_root=True)[0] is TaskKind.KTHREAD
    assert kind() == (TaskKind.UNKNOWN, "no flags, registers or stack root tell")


def test_the_kthread_column_and_idle_come_before_the_flags() -> None:
    assert kind(kthread=0, task_flags=PF_KTHREAD) == (TaskKind.USER, "PF_KTHREAD in the task flags")
    assert kind(pid=0, task_flags=PF_KTHREAD)[0] is TaskKind.IDLE


def test_a_6_15_task_flags_header_decides_the_kind_through_the_parser() -> None:
    """The arm64 hung-task sample prints ``task_flags:0x400140`` (6.15+). The
    dmesg parser turns it into the kthread column (PF_KTHREAD clear: a user
    task), so ``infer_kind`` answers from its ``kthread`` branch; its
    ``task_flags`` branch is reached by no parser (each derives ``kthread``
    from the flags it reads) — only by a direct call."""
    dump = parse_dump(DATA / "hung-task-arm64-6.x-task-flags.txt")
    assert [hex(f) for f in dump.task_flags] == ["0x400140"]
    assert dump.kthreads.tolist() == [0]
    (task,) = check(dump, Patch.parse("io_schedule"), "klp").tasks
    assert (task.facts.comm, task.facts.kind) == ("udevd", TaskKind.USER)
    assert task.facts.kind_evidence == "PF_KTHREAD in the task flags"


def test_a_snapshot_header_without_a_kthread_value_takes_it_from_flags() -> None:
    text = ("# pid=50 tid=50 comm=mystery state=S flags=0x00208040 kthread=? cpu=0 status=ok\n"
            "[<0>] some_loop+0x10/0x40\n\n"
            "# pid=51 tid=51 comm=kworker/9:9 state=S flags=0x00400100 kthread=? cpu=0 status=ok\n"
            "[<0>] some_loop+0x10/0x40\n\n").encode()
    result = check(parse_dump(text), Patch.parse("cmdline_proc_show"), "klp")
    assert [(t.facts.comm, t.facts.kind) for t in result.tasks] == [
        ("mystery", TaskKind.KTHREAD), ("kworker/9:9", TaskKind.USER)]


# ---- lpc watch: every field of every JSON line ------------------------------------------------------

WATCH_FIELDS = {"schema_version", "retry", "time", "model", "blocking", "converges", "eta_s"}
#: The fields these tests pin by value; each blocking entry carries every
#: field `lpc check --json` writes for the task (checked against check's own).
BLOCKING_FIELDS = {"tid", "comm", "verdict", "outlook"}


def pinned(lines: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """The lines with each blocking task cut to BLOCKING_FIELDS."""
    return [{**x, "blocking": [{k: b[k] for k in BLOCKING_FIELDS} for b in x["blocking"]]}
            for x in lines]


def snapshot(*blocks: str) -> str:
    return "".join(blocks)


def user_task(tid: int, comm: str, state: str, frames: list[str], cpu_status: str = "ok") -> str:
    head = (f"# pid={tid} tid={tid} comm={comm} state={state} flags=0x00400100 kthread=0 cpu=0 "
            f"status={cpu_status}")
    body = [*(f"[<0>] {f}" for f in frames), "[<0>] do_syscall_64+0x71/0x280",
            "[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e"]
    return "\n".join([head, *body]) + "\n\n"


def kworker(tid: int) -> str:
    return (f"# pid={tid} tid={tid} comm=kworker/0:{tid} state=I flags=0x04208060 kthread=1 cpu=0 "
            "status=ok\n[<0>] worker_thread+0x98/0x310\n[<0>] kthread+0xf8/0x220\n"
            "[<0>] ret_from_fork+0x151/0x170\n[<0>] ret_from_fork_asm+0x1a/0x30\n\n")


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """cli's clock, made to tick 0.25 s per reading; nothing else sees it."""
    readings: list[float] = []

    def now() -> float:
        readings.append(1_700_000_000.0 + 0.25 * len(readings))
        return readings[-1]

    def no_sleep(_: float) -> None:
        raise AssertionError("recorded dumps are never waited for")

    monkeypatch.setattr(cli, "time", types.SimpleNamespace(time=now, sleep=no_sleep))
    return readings


def test_watch_json_lines_hold_exactly_these_values(tmp_path: Path, fixed_clock: list[float]
                                                    ) -> None:
    first = snapshot(
        user_task(300, "bash", "S", ["do_wait+0x53/0x120", "kernel_wait4+0x9c/0x140"]),
        user_task(301, "mount", "D", ["do_wait+0x53/0x120"]),
        kworker(12),
        user_task(302, "gone", "S", [], cpu_status="gone"),
    )
    # One retry later: mount left do_wait, bash is still in it, the unreadable task is gone.
    second = snapshot(
        user_task(300, "bash", "S", ["do_wait+0x53/0x120", "kernel_wait4+0x9c/0x140"]),
        user_task(301, "mount", "D", ["do_select+0x63a/0x930"]),
        kworker(12),
    )
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(first)
    b.write_text(second)
    code, out, err = run_cli("watch", "--dump", str(a), "--dump", str(b), "--patch", "do_wait",
                             "--json")
    lines = json_lines(out, "watch")
    assert pinned(lines) == [
        {
            "schema_version": 2, "retry": 0, "time": 1_700_000_000.0, "model": "klp",
            "blocking": [
                {"tid": 300, "comm": "bash", "verdict": "blocked", "outlook": "after_signal"},
                {"tid": 301, "comm": "mount", "verdict": "blocked", "outlook": "after_wakeup"},
                {"tid": 302, "comm": "gone", "verdict": "unreliable", "outlook": "after_signal"},
            ],
            # mount sleeps uninterruptibly in do_wait: no fake signal ends that,
            # only the sleep's own end, which livepatch does not bound.
            "converges": None, "eta_s": None,
        },
        {
            "schema_version": 2, "retry": 1, "time": 1_700_000_000.25, "model": "klp",
            "blocking": [
                {"tid": 300, "comm": "bash", "verdict": "blocked", "outlook": "after_signal"},
            ],
            # bash leaves at the fake signal: SIGNALS_TIMEOUT (15) retries of 1 s.
            "converges": True, "eta_s": 15.0,
        },
    ]
    assert len(fixed_clock) == 2
    check_fields = set(json.loads(run_cli("check", "--dump", str(a), "--patch", "do_wait",
                                          "--json")[1])["tasks"][0])
    for line in lines:  # a renamed or added field fails here too
        assert set(line) == WATCH_FIELDS
        assert all(set(x) == check_fields for x in line["blocking"])
    assert code == 1
    assert "1 task(s) could not switch at any retry (tids [300])" in err


def test_watch_stops_at_the_first_retry_where_every_task_switches(
    tmp_path: Path, fixed_clock: list[float]
) -> None:
    clean = tmp_path / "clean.txt"
    clean.write_text(snapshot(user_task(300, "bash", "S", ["do_select+0x63a/0x930"]), kworker(12)))
    code, out, _ = run_cli("watch", "--dump", str(clean), "--dump", str(clean), "--patch",
                           "do_wait", "--model", "kpatch", "--json")
    assert json_lines(out, "watch") == [
        {"schema_version": 2, "retry": 0, "time": 1_700_000_000.0, "model": "kpatch",
         "blocking": [], "converges": True, "eta_s": 0.0},
    ]
    assert code == 0


def test_watch_on_the_recorded_snapshot_reports_what_check_reports(
    tmp_path: Path, fixed_clock: list[float]
) -> None:
    """The real 6.18 snapshot, twice: each line's blocking list is check()'s,
    task for task and in order, and its prediction is check()'s."""
    stacks = DATA / "procdump-6.18" / "stacks.txt"
    text = stacks.read_text()
    later = tmp_path / "later.txt"
    later.write_text(text.replace("do_wait+", "do_select+"))
    code, out, _ = run_cli("watch", "--dump", str(stacks), "--dump", str(later), "--patch",
                           "do_wait", "--json")
    lines = json_lines(out, "watch")
    assert [x["retry"] for x in lines] == [0, 1]
    for path, line in zip((stacks, later), lines, strict=True):
        result = check(parse_dump(path), Patch.parse("do_wait"), "klp")
        expected = [t.as_json() for t in result.tasks if t.outcome.verdict.value != "switch"]
        assert line["blocking"] == expected  # check's own task documents
        assert (line["converges"], line["eta_s"]) == (result.converges, result.transition.eta_s)
        assert (line["schema_version"], line["model"]) == (2, "klp")
        assert set(line) == WATCH_FIELDS
    assert [x["time"] for x in lines] == [1_700_000_000.0, 1_700_000_000.25]
    assert any(b["verdict"] == "blocked" for b in lines[0]["blocking"])
    assert not any(b["verdict"] == "blocked" for b in lines[1]["blocking"])
    assert code == 1


def test_watch_prints_an_unknown_prediction_as_null(tmp_path: Path, fixed_clock: list[float]
                                                    ) -> None:
    """A runnable kthread inside the patched function may leave it when it
    next runs, or not: klp cannot say, and the line says null — not false."""
    busy = tmp_path / "busy.txt"
    busy.write_text(
        "# pid=40 tid=40 comm=kworker/0:4 state=R flags=0x04208060 kthread=1 cpu=0 status=ok\n"
        "[<0>] msleep+0x2d/0x40\n[<0>] process_one_work+0x178/0x340\n"
        "[<0>] worker_thread+0x98/0x310\n[<0>] kthread+0xf8/0x220\n"
        "[<0>] ret_from_fork+0x151/0x170\n[<0>] ret_from_fork_asm+0x1a/0x30\n\n")
    code, out, _ = run_cli("watch", "--dump", str(busy), "--patch", "msleep", "--json")
    assert pinned(json_lines(out, "watch")) == [
        {"schema_version": 2, "retry": 0, "time": 1_700_000_000.0, "model": "klp",
         "blocking": [{"tid": 40, "comm": "kworker/0:4", "verdict": "blocked",
                       "outlook": "unknown"}],
         "converges": None, "eta_s": None},
    ]
    assert code == 1
