"""The `lpc` command line: exit codes, JSON shape, no tracebacks on bad input."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jsonschemas import lines as json_lines
from jsonschemas import loads
from lpc.cli import main

DATA = Path(__file__).parent / "data"

@pytest.fixture(scope="module")
def kallsyms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sym") / "kallsyms.txt"
    path.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_blocked_patch_exits_1_with_valid_json(capsys: pytest.CaptureFixture[str],
                                               kallsyms: Path) -> None:
    code, out, err = run(capsys, "check", "--dump", str(DATA / "procdump-6.18"),
                         "--symbols", str(kallsyms), "--patch", "worker_thread", "--json")
    assert code == 1
    doc = loads(out, "check")
    assert doc["model"] == "klp" and doc["summary"]["converges"] is False
    assert doc["patch"]["functions"][0]["start"] == "0xffffffff81381800"
    assert doc["patch"]["functions"][0]["end"] == "0xffffffff81381b10"  # + 0x310
    blocked = [t for t in doc["tasks"] if t["verdict"] == "blocked"]
    assert len(blocked) == 14 and all(t["frame"] == {"index": 0, "function": "worker_thread"}
                                      for t in blocked)
    assert "reading dump" in err  # logs go to stderr, never stdout


def test_converging_patch_exits_0(capsys: pytest.CaptureFixture[str], kallsyms: Path) -> None:
    code, out, _ = run(capsys, "check", "--dump", str(DATA / "procdump-6.18"), "--symbols",
                       str(kallsyms), "--patch", "cmdline_proc_show", "--json")
    assert code == 0
    assert loads(out, "check")["summary"]["converges"] is True


def test_model_all_side_by_side(capsys: pytest.CaptureFixture[str], kallsyms: Path) -> None:
    code, out, _ = run(capsys, "check", "--dump", str(DATA / "procdump-6.18"), "--symbols",
                       str(kallsyms), "--patch", "futex_do_wait", "--model", "all", "--json")
    doc = loads(out, "check-all")
    assert set(doc["models"]) == {"null", "trivial", "josh", "klp", "kpatch", "kgraft", "ksplice"}
    assert doc["models"]["klp"]["summary"]["converges"] is True
    assert doc["models"]["kpatch"]["summary"]["converges"] is False
    assert code == 0  # klp's verdict: kpatch not converging does not make the exit 1


def test_human_output_names_frames_and_gives_advice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--dump", str(DATA / "procdump-6.18"),
                       "--patch", "worker_thread")
    assert code == 1
    assert "#0 worker_thread" in out and "DOES NOT CONVERGE" in out
    assert "advice (14 task(s), kworker/*): is sleeping on function worker_thread" in out
    assert "kgraft would converge" in out
    assert "warning: no symbol table" in out


def test_no_patch_lists_sleeping_functions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--dump", str(DATA / "procdump-6.18"), "--json")
    assert code == 0
    doc = loads(out, "check-inventory")
    top = {f["function"]: f["tasks"] for f in doc["sleeping_functions"]}
    assert top["worker_thread"] == 14


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--dump", "/nonexistent/dump.txt", "--patch", "x"],
        ["check", "--dump", str(DATA / "kallsyms-6.18.txt.gz"), "--patch", "x"],
        ["check", "--dump", str(DATA / "procdump-6.18"), "--patch", "no_such_function_anywhere",
         "--symbols", "KALLSYMS"],
        ["check", "--dump", str(DATA / "procdump-6.18"), "--patch", "bad name!"],
        ["check", "--dump", str(DATA / "procdump-6.18"), "--patch-file", "/nonexistent/patch"],
    ],
    ids=["missing-file", "no-format", "missing-symbol", "bad-spec", "missing-patch-file"],
)
def test_bad_input_exits_3_with_one_line(capsys: pytest.CaptureFixture[str], kallsyms: Path,
                                         argv: list[str]) -> None:
    argv = [str(kallsyms) if a == "KALLSYMS" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 3
    assert out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


@pytest.mark.parametrize("argv", [[], ["check", "--no-such-flag"], ["check", "--live", "--dump", "x"],
                                  ["watch", "--dump", "x"], ["frobnicate"],
                                  ["check", "--model", "nonsense", "--patch", "f"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err


def test_watch_over_recorded_dumps_emits_one_json_line_per_retry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = (DATA / "procdump-6.18" / "stacks.txt").read_text()
    # The second snapshot: every task that held do_wait has left it.
    second = first.replace("do_wait+", "do_select+")
    (tmp_path / "a.txt").write_text(first)
    (tmp_path / "b.txt").write_text(second)
    code, out, err = run(capsys, "watch", "--dump", str(tmp_path / "a.txt"), "--dump",
                         str(tmp_path / "b.txt"), "--patch", "do_wait", "--json")
    lines = json_lines(out, "watch")
    assert [x["retry"] for x in lines] == [0, 1]
    assert all(x["schema_version"] == 2 for x in lines)
    assert {b["comm"] for b in lines[0]["blocking"]} >= {"bash", "wl-waitpid"}
    assert not any(b["verdict"] == "blocked" for b in lines[1]["blocking"])
    assert "retry 0:" in err and "retry 1:" in err


def test_embedded_snapshot_only_with_demo_when_proc_is_unreadable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lpc import source

    monkeypatch.setattr(source, "live_stacks_readable", lambda proc="/proc": False)
    code, out, err = run(capsys, "check", "--patch", "worker_thread", "--json")
    assert code == 3 and out == "" and "--demo" in err  # never the demo as if it were this machine
    code, out, err = run(capsys, "check", "--demo", "--patch", "worker_thread", "--json")
    doc = loads(out, "check")
    assert code == 1
    assert "embedded recorded snapshot" in doc["source"]["description"]
    assert doc["source"]["matched_by"] == "address"  # it ships its kallsyms


def test_python_dash_m_runs_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "lpc", "check", "--dump", "/nonexistent"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "Traceback" not in done.stderr


def test_the_command_flushes_everything_before_its_fast_exit() -> None:
    """`python -m lpc` ends with os._exit: the whole JSON document and the exit
    code (1: kworkers block a worker_thread patch) must still come through a pipe."""
    argv = [sys.executable, "-m", "lpc", "check", "--dump", str(DATA / "procdump-6.18"),
            "--patch", "worker_thread", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    doc = loads(done.stdout, "check")
    assert len(doc["tasks"]) == 101 and doc["summary"]["converges"] is False
    assert done.stderr.startswith("lpc: reading dump")


@pytest.mark.live
def test_live_check_reads_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    from lpc import source

    if not source.live_stacks_readable():
        pytest.skip("needs root: /proc/<pid>/stack is not readable")
    code, out, _ = run(capsys, "check", "--live", "--patch", "cmdline_proc_show", "--json")
    doc = loads(out, "check")
    assert doc["source"]["format"] == "proc_snapshot" and doc["summary"]["tasks"] > 10
    assert doc["source"]["matched_by"] == "address"
    assert code in (0, 1, 4)


def test_json_writer_streams_task_lists_one_per_line(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--json writes each task list a slice at a time, one compact task per line,
    inside the indented document: the same JSON as dumping the whole document."""
    import lpc.report as report

    monkeypatch.setattr(report, "_TASKS_PER_WRITE", 7)  # 101 tasks: 15 slices
    rc = main(["check", "--dump", str(DATA / "procdump-6.18"), "--patch", "worker_thread",
               "--model", "all", "--json"])
    out = capsys.readouterr().out
    doc = loads(out, "check-all")
    assert rc == 1 and list(doc["models"]) == sorted(doc["models"])
    from lpc.check import check_all
    from lpc.dump import parse_dump

    dump = parse_dump(DATA / "procdump-6.18")  # no kallsyms.txt beside it: matched by name
    for name, result in check_all(dump, "worker_thread").items():
        assert doc["models"][name]["tasks"] == [t.as_json() for t in result.tasks], name
    lines = out.splitlines()
    task_lines = [line for line in lines if line.lstrip().startswith('{"comm"')]
    assert len(task_lines) == 101 * len(doc["models"])
    assert all(line.startswith(" " * 8 + "{") for line in task_lines)  # inside models.NAME.tasks
    empty = io.StringIO()
    report.write_json({"a": report.TaskList(result.tasks.subset([])), "b": 1}, empty)
    assert json.loads(empty.getvalue()) == {"a": [], "b": 1}
