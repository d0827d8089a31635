"""The text report a person reads (issue 14), on real recorded dumps: the
answer first, the culprits grouped with counts that add up, every column
whole at 80 columns, colour only when asked for, ids never ``None``."""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from pathlib import Path

import pytest

from lpc import progress
from lpc.check import CheckRequest, Report, run
from lpc.cli import main
from lpc.errors import LpcError
from lpc.patch import Patch
from lpc.report import (
    TextOptions,
    comm_pattern,
    group_culprits,
    printable,
    render_text,
)
from lpc.result import CheckResult

DATA = Path(__file__).parent / "data"
ORACLE = DATA / "oracle"
SNAPSHOT = DATA / "procdump-6.18"


@pytest.fixture(scope="module")
def kallsyms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sym") / "kallsyms.txt"
    path.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    return path


def _oracle_cases() -> list[tuple[Path, str]]:
    """Every recorded oracle case whose case.json names its patch as a spec."""
    out = []
    for sysrq in sorted(ORACLE.glob("**/first_sysrq.txt")):
        funcs = json.loads((sysrq.parent / "case.json").read_text()).get("funcs", "")
        try:
            Patch.parse(funcs)
        except (LpcError, ValueError):
            continue  # a prose description (stacked, replace cases): not a spec
        out.append((sysrq.parent, funcs))
    return out


ORACLE_CASES = _oracle_cases()


def test_the_oracle_cases_are_there() -> None:
    # The parametrised tests below would pass on an empty list.
    assert len(ORACLE_CASES) >= 20


def _oracle_report(case: Path, funcs: str) -> Report:
    return run(CheckRequest(dump=str(case / "first_sysrq.txt"),
                            symbols=str(case / "first_kallsyms.txt"),
                            patch=Patch.parse(funcs), machine_state=False))


def _snapshot_report(patch: str, symbols: Path | None = None, **kw: object) -> Report:
    return run(CheckRequest(dump=str(SNAPSHOT), symbols=None if symbols is None else str(symbols),
                            patch=Patch.parse(patch), machine_state=False, **kw))  # type: ignore[arg-type]


def _reports(kallsyms: Path) -> list[tuple[str, Report]]:
    out = [(f"snapshot {p}", _snapshot_report(p, kallsyms))
           for p in ("worker_thread", "futex_do_wait", "do_nanosleep", "cmdline_proc_show")]
    out.append(("snapshot by name", _snapshot_report("worker_thread")))
    out += [(str(case.relative_to(ORACLE)), _oracle_report(case, funcs))
            for case, funcs in ORACLE_CASES]
    return out


@pytest.fixture(scope="module")
def reports(kallsyms: Path) -> list[tuple[str, Report]]:
    return _reports(kallsyms)


def text(report: Report, **options: object) -> str:
    out = io.StringIO()
    render_text(report, out, TextOptions(**options))  # type: ignore[arg-type]
    return out.getvalue()


def klp(report: Report) -> CheckResult:
    return report.results["klp"]


#: Rows of the group table: the count, two spaces (continuation lines are indented).
ROW = re.compile(r"^(\d+)\s{2}")


def group_rows(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("tasks  comm"))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith(" "):
            continue
        if not ROW.match(line):
            break
        rows.append(line)
    return rows


# ---- order --------------------------------------------------------------------------------------


def test_the_verdict_comes_in_the_first_lines(reports: list[tuple[str, Report]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for name, report in reports:
        lines = text(report).splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("verdict: "))
        assert at <= 8, (name, lines[:at + 1])
        # Only the source, the patch and the profile come before it.
        assert all(re.match(r"(source|patch|kernel|  )", line) for line in lines[:at]), name
        if klp(report).blocking:
            assert lines.index(next(x for x in lines if x.startswith("tasks  comm"))) > at
        for prefix in ("warning:", "assumed:", "evidence lost", "advice"):
            later = [i for i, line in enumerate(lines) if line.startswith(prefix)]
            assert all(i > at for i in later), (name, prefix)


def test_a_refusal_is_the_first_line(kallsyms: Path) -> None:
    from lpc.livepatch_state import LivepatchState

    report = _snapshot_report("worker_thread", kallsyms)
    absent = run(CheckRequest(dump=str(SNAPSHOT), symbols=str(kallsyms),
                              patch=Patch.parse("worker_thread"),
                              livepatch=LivepatchState(False, (), "drawn")))
    assert report.machine is None and absent.machine is not None and absent.machine.refusals
    lines = text(absent).splitlines()
    assert lines[0].startswith("refused: -ENODEV: ")
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert verdict.startswith("verdict: REFUSED (-ENODEV)")


# ---- groups -------------------------------------------------------------------------------------


def test_group_counts_add_up_to_the_blocking_tasks(reports: list[tuple[str, Report]]) -> None:
    for name, report in reports:
        result = klp(report)
        for by in ("outcome", "function", "comm", "stack"):
            groups = group_culprits(result, by)
            assert sum(g.count for g in groups) == len(result.blocking), (name, by)
            members = sorted(int(t) for g in groups for t in g.members())
            assert members == sorted(int(t.facts.index) for t in result.blocking), (name, by)
            lines = text(report, group_by=by, top=None).splitlines()
            if result.blocking:
                rows = group_rows(lines)
                assert sum(int(ROW.match(r)[1]) for r in rows) == len(result.blocking), (  # type: ignore[index]
                    name, by)
                assert len(rows) == len(groups)


def test_every_distinct_situation_has_its_row(reports: list[tuple[str, Report]]) -> None:
    for name, report in reports:
        result = klp(report)
        wanted = {(t.facts.patched_function, t.outcome.verdict.value, t.outcome.outlook.value,
                   t.outcome.reason, t.facts.kind.value) for t in result.blocking}
        lines = text(report, top=None, width=100_000).splitlines()
        rows = group_rows(lines) if wanted else []
        assert len(rows) == len(wanted), name
        for function, verdict, outlook, reason, kind in wanted:
            cells = [r for r in rows if re.search(rf"  {kind}\s+{verdict}\s+{outlook}\s", r)
                     and r.endswith(reason)]
            frame = [r for r in cells if (function is None and "  -  " in r)
                     or (function is not None and re.search(rf"#[\d,]+ {function}  ", r))]
            assert len(frame) == 1, (name, function, verdict, outlook, reason)


def test_worker_thread_is_one_group_of_kworkers(kallsyms: Path) -> None:
    report = _snapshot_report("worker_thread", kallsyms)
    rows = group_rows(text(report, width=200).splitlines())
    assert len(rows) == 2
    assert re.match(r"14\s+kworker/\*\s+10,10867,11,…\s+kthread\s+blocked\s+stuck\s+"
                    r"#0 worker_thread\s+is sleeping on function worker_thread", rows[0])
    # Threads of a process show their thread-group leader beside their own id.
    assert re.match(r"2\s+2 comms\s+11834/11767,", rows[1])


def test_comm_patterns() -> None:
    assert comm_pattern(["kworker/0:0H-events_highpri", "kworker/u8:2"]) == "kworker/*"
    assert comm_pattern(["ksoftirqd/0", "ksoftirqd/1"]) == "ksoftirqd/*"
    assert comm_pattern(["sshd", "sshd"]) == "sshd"
    assert comm_pattern(["pipe-step", "pipe-closer", "sshd"]) == "3 comms"
    assert comm_pattern(["jbd2/sda1-8", "jbd2/vda1-8"]) == "jbd*"


def test_top_says_what_it_left_out(kallsyms: Path) -> None:
    report = _snapshot_report("futex_do_wait", kallsyms)
    groups = group_culprits(klp(report))
    assert len(groups) == 2
    lines = text(report, top=1).splitlines()
    assert len(group_rows(lines)) == 1
    assert (f"… 1 more group(s) of {groups[1].count} task(s) not shown: --top 2 shows every "
            "group, --tasks every task, --json all of it") in lines
    assert not any("more group(s)" in line for line in text(report).splitlines())


def test_the_default_top_fits_one_screen(kallsyms: Path) -> None:
    # do_nanosleep: the snapshot's user tasks, 47 comm groups.
    report = _snapshot_report("do_nanosleep", kallsyms)
    groups = group_culprits(klp(report), "comm")
    assert len(groups) > 15
    lines = text(report, group_by="comm", width=100).splitlines()
    assert len(group_rows(lines)) == 15
    left = groups[15:]
    said = " ".join(" ".join(lines).split())  # the line is wrapped at 100 columns
    assert (f"… {len(left)} more group(s) of {sum(g.count for g in left)} task(s) not shown: "
            f"--top {len(groups)} shows every group, --tasks every task, --json all of it") \
        in said
    # The largest groups (worst outlook first) are the ones shown.
    shown = [int(ROW.match(r)[1]) for r in group_rows(lines)]  # type: ignore[index]
    assert shown == [g.count for g in groups[:15]]


def test_show_stacks_prints_each_groups_stack_once(kallsyms: Path) -> None:
    report = _snapshot_report("worker_thread", kallsyms)
    out = text(report, group_by="stack", show_stacks=True, width=100)
    assert out.count("#0 worker_thread+0x98/0x310") == 1
    assert out.count("#1 kthread+0xf8/0x220") == 1
    assert "#0 worker_thread+0x98/0x310" not in text(report, group_by="stack", width=100)


# ---- width --------------------------------------------------------------------------------------


def _over(line: str, width: int) -> bool:
    """Longer than ``width``, other than by one token that cannot be broken
    (wrapping puts such a token alone on its line)."""
    return len(line) > width and len(line.split()) > 1


def test_80_columns(reports: list[tuple[str, Report]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for name, report in reports:
        result = klp(report)
        for options in ({}, {"tasks": True}, {"group_by": "comm"}, {"show_stacks": True}):
            out = text(report, **options)
            assert not [line for line in out.splitlines() if _over(line, 80)], (name, options)
        # Identity columns are whole: each group's comm pattern, each task's comm.
        grouped = text(report)
        for g in group_culprits(result)[:15]:
            comms = sorted({t.facts.comm for t in result.tasks.subset(g.members().tolist())})
            assert re.search(rf"^{g.count}\s+{re.escape(printable(comm_pattern(comms)))}\s",
                             grouped, re.M), name
        every = text(report, tasks=True)
        for t in result.tasks:
            assert re.search(rf"\s{re.escape(printable(t.facts.comm))}(\s|$)", every, re.M), name


def test_a_pipe_without_columns_gets_whole_lines(kallsyms: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    report = _snapshot_report("worker_thread", kallsyms)
    lines = text(report).splitlines()
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert verdict.endswith("the transition stays pending until reversed or forced")
    monkeypatch.setenv("COLUMNS", "60")
    assert max(len(line) for line in text(report).splitlines()) <= 60


# ---- colour -------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_when_asked_or_on_a_terminal(kallsyms: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    report = _snapshot_report("worker_thread", kallsyms)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b" not in text(report)  # a StringIO is no terminal
    assert "\x1b" not in text(report, color="never")
    always = text(report, color="always")
    assert "\x1b[31m\x1b[1mDOES NOT CONVERGE\x1b[0m" in always
    tty = Terminal()
    render_text(report, tty, TextOptions(width=80))
    assert "\x1b[" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = Terminal()
    render_text(report, tty, TextOptions(width=80))
    assert "\x1b" not in tty.getvalue()
    # Without colour, the text is the same text.
    assert re.sub(r"\x1b\[[0-9;]*m", "", always) == text(report, color="never")


def test_dump_text_stays_escaped_in_colour(tmp_path: Path, kallsyms: Path) -> None:
    snap = tmp_path / "snap"
    snap.mkdir()
    for f in SNAPSHOT.iterdir():
        data = f.read_bytes()
        if f.name in ("stacks.txt", "tasks.tsv"):
            data = data.replace(b"kworker/0:0H-events_highpri", b"kw\x1b]0;pwn\x07")
        (snap / f.name).write_bytes(data)
    report = run(CheckRequest(dump=str(snap), symbols=str(kallsyms),
                              patch=Patch.parse("worker_thread"), machine_state=False))
    for options in ({"color": "always"}, {"color": "always", "tasks": True}):
        out = text(report, **options)
        assert "\x1b]" not in out and "\x07" not in out
    assert "kw\\x1b]0;pwn\\x07" in text(report, tasks=True)


# ---- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gdb-kernel-qemu-gdbstub.txt",
                                  "proc-pid-stack-legacy-addresses.txt",
                                  "bpftrace-kstack-6.18.txt", "perf-script-kernel-6.18.txt",
                                  "drgn-user-frames-0.0.27.txt"])
def test_ids_never_print_none(name: str) -> None:
    from lpc.source import parse_dump_path

    dump = parse_dump_path(DATA / name)
    innermost = {f.function for t in dump.tasks for f in t.frames[:1] if f.function}
    report = run(CheckRequest(dump=str(DATA / name), patch=Patch.parse(",".join(sorted(innermost))),
                              machine_state=False))
    result = klp(report)
    for options in ({}, {"tasks": True}, {"group_by": "stack"}):
        assert "None" not in text(report, width=120, **options)
    every = text(report, tasks=True, width=100_000).splitlines()
    start = every.index(next(x for x in every if x.startswith("tid  ")))
    ids = [line.split()[0] for line in every[start + 1:start + 1 + len(result.tasks)]]
    want = []
    for t in result.tasks:
        tid = t.facts.tid if t.facts.tid is not None else t.facts.pid
        want.append("-" if tid is None else str(tid))
    assert sorted(i.split("/")[0] for i in ids) == sorted(want)
    if any(w == "-" for w in want):
        assert "-" in ids


# ---- --tasks ------------------------------------------------------------------------------------


def test_tasks_lists_every_task(reports: list[tuple[str, Report]]) -> None:
    for name, report in reports:
        result = klp(report)
        lines = text(report, tasks=True, width=100_000).splitlines()
        start = lines.index(next(x for x in lines if x.startswith("tid  ")))
        rows = lines[start + 1:start + 1 + len(result.tasks)]
        following = lines[start + 1 + len(result.tasks):]
        assert all(re.match(r"(\d+(/\d+)?|-)\s", r) for r in rows), name
        assert not following or not re.match(r"(\d+(/\d+)?|-)\s{2}", following[0]), name
        ids = sorted(r.split()[0].split("/")[0] for r in rows)
        assert ids == sorted(str(t.facts.tid if t.facts.tid is not None else t.facts.pid)
                             for t in result.tasks), name
        # The tasks that do not switch come first, then those that do.
        done = re.compile(r"\sswitch\s+switched\s")
        blocking = len(result.blocking)
        assert not any(done.search(r) for r in rows[:blocking]), name
        assert all(done.search(r) for r in rows[blocking:]), name


# ---- advice -------------------------------------------------------------------------------------


def test_one_advice_per_distinct_sentence(kallsyms: Path) -> None:
    report = _snapshot_report("worker_thread", kallsyms)
    advice = [line for line in text(report).splitlines() if line.startswith("advice")]
    assert advice == ["advice (14 task(s), kworker/*): is sleeping on function worker_thread, "
                      "its main loop: it is always asleep there, so this patch never converges "
                      "without force; kgraft would converge (after wakeup)"]


def test_outcomes_that_share_a_sentence_share_its_advice_line() -> None:
    # The oracle's force case: its kworkers are judged in two groups (their
    # facts differ: the depth of worker_thread), with one sentence between them.
    case, funcs = next(c for c in ORACLE_CASES if c[0].name == "force")
    report = _oracle_report(case, funcs)
    stuck = [(o, len(m)) for o, m in klp(report).tasks.distinct() if o.outlook.value == "stuck"]
    assert len(stuck) == 2 and stuck[0][0].reason == stuck[1][0].reason
    advice = [line for line in text(report).splitlines() if line.startswith("advice")]
    assert len(advice) == 1
    assert advice[0].startswith(f"advice ({sum(n for _, n in stuck)} task(s), kworker/*): "
                                f"{stuck[0][0].reason}")


def test_advice_counts_cover_the_stuck_tasks(reports: list[tuple[str, Report]]) -> None:
    for name, report in reports:
        result = klp(report)
        stuck = sum(1 for t in result.blocking if t.outcome.outlook.value == "stuck")
        advice = [line for line in text(report).splitlines() if line.startswith("advice (")]
        counted = sum(int(re.match(r"advice \((\d+) task", a)[1]) for a in advice)  # type: ignore[index]
        assert counted == stuck, name
        assert len(advice) == len(set(a.split("): ", 1)[1] for a in advice)), name


# ---- --model all --------------------------------------------------------------------------------


def test_model_all_groups_the_culprits_once(kallsyms: Path) -> None:
    report = _snapshot_report("worker_thread", kallsyms, models=("all",))
    out = text(report, width=100)
    lines = out.splitlines()
    assert sum(1 for line in lines if line.startswith("tasks  comm")) == 1
    assert "culprits under klp (the kernel's model" in out
    assert sum(1 for line in lines if re.match(r"14\s+kworker/\*", line)) == 1
    for model in ("null", "trivial", "josh", "klp", "kpatch", "kgraft", "ksplice"):
        assert any(line.startswith(f"{model} ") for line in lines)
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert lines.index(verdict) < lines.index(next(x for x in lines if x.startswith("model ")))
    assert "DOES NOT CONVERGE under" in out


# ---- a 427k-task dump ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 6.18 snapshot repeated to 427k tasks (as benches/test_bench_check.py
    does), every copy's ids renumbered so that no two tasks share one."""
    root = tmp_path_factory.mktemp("bigsnap")
    piece = (SNAPSHOT / "stacks.txt").read_text()
    tasks = piece.count("# pid=")
    copies = 427_735 // tasks + 1
    ids = re.compile(r"\b(pid|tid)=(\d+)")
    parts = [piece]
    for k in range(1, copies):
        parts.append(ids.sub(lambda m: f"{m[1]}={int(m[2]) + k * 40_000}", piece))
    (root / "stacks.txt").write_text("".join(parts))
    (root / "meta.txt").write_bytes((SNAPSHOT / "meta.txt").read_bytes())
    return root


def test_a_427k_task_dump_fits_one_screen(big_snapshot: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code = main(["check", "--dump", str(big_snapshot), "--patch", "worker_thread"])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert code == 1
    assert 427_735 <= int(re.search(r"(\d+) tasks — ", out)[1]) < 428_000  # type: ignore[index]
    assert len(lines) < 40, out
    assert any(line.startswith("verdict: DOES NOT CONVERGE") for line in lines[:8])
    rows = group_rows(lines)
    blocked = int(re.search(r"not switched now: (\d+)", out)[1])  # type: ignore[index]
    assert sum(int(ROW.match(r)[1]) for r in rows) == blocked  # type: ignore[index]
    assert "more (see --json)" not in out and "\r" not in err  # no progress on a pipe


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_text_options(capsys: pytest.CaptureFixture[str], kallsyms: Path) -> None:
    base = ["check", "--dump", str(SNAPSHOT), "--symbols", str(kallsyms), "--patch",
            "worker_thread"]
    assert main([*base, "--color=always"]) == 1
    assert "\x1b[" in capsys.readouterr().out
    assert main([*base, "--color=never"]) == 1
    assert "\x1b" not in capsys.readouterr().out
    assert main([*base, "--tasks"]) == 1
    out = capsys.readouterr().out
    assert out.count("#0 worker_thread") == 14
    assert main([*base, "--group-by", "comm", "--top", "1"]) == 1
    out = capsys.readouterr().out
    # The two user threads have comms of their own: two groups left out.
    assert "… 2 more group(s) of 2 task(s) not shown: --top 3 shows every group" in out
    assert main([*base, "--tasks", "--top", "3"]) == 2
    assert "--tasks lists every task" in capsys.readouterr().err
    assert main([*base, "--json", "--tasks"]) == 2
    assert main([*base, "--group-by", "kind"]) == 2


# ---- progress -----------------------------------------------------------------------------------


def test_progress_on_a_terminal_only() -> None:
    pipe = io.StringIO()
    with progress.on_stderr(pipe) as p:
        assert p is None
        progress.phase("reading")
        time.sleep(0.6)
    assert pipe.getvalue() == ""
    tty = Terminal()
    with progress.on_stderr(tty) as p:
        assert p is not None
        progress.phase("reading a dump")
        progress.step("3/7")
        time.sleep(1.3)
    drawn = tty.getvalue()
    assert "lpc: reading a dump (3/7)… 1 s" in drawn
    assert drawn.endswith("\r\x1b[K")  # erased before the report
    progress.phase("after")  # off again: a no-op
    assert tty.getvalue() == drawn
