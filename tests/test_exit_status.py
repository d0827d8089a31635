"""The exit status: one meaning per code, the same for every subcommand.

0 converges (or the command did its job), 1 does not converge / REFUSED /
differs / unexplained disagreements, 2 usage, 3 bad input, 4 cannot tell
(UNKNOWN), 5 a bug in lpc. Each code is reached here by real runs through
``main(argv)`` on recorded data, for each subcommand that can reach it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from jsonschemas import lines as json_lines
from jsonschemas import loads
from lpc import cli
from test_review_holes import user_task
from lpc.cli import (
    EXIT_BAD_INPUT,
    EXIT_BLOCKED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_STATUS,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    main,
)

DATA = Path(__file__).parent / "data"
SNAP = str(DATA / "procdump-6.18")
ORACLE = DATA / "oracle"
STATE_HEADER = "# lpc livepatch state 1\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_codes_are_distinct_and_documented_in_help_and_readme(
        capsys: pytest.CaptureFixture[str]) -> None:
    codes = [code for code, _ in EXIT_STATUS]
    assert codes == [0, 1, 2, 3, 4, 5]
    assert (EXIT_OK, EXIT_BLOCKED, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_UNKNOWN,
            EXIT_INTERNAL) == (0, 1, 2, 3, 4, 5)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for argv in (["--help"], ["check", "--help"], ["watch", "--help"], ["capture", "--help"],
                 ["simulate", "--help"], ["oracle", "compare", "--help"],
                 ["oracle", "run", "--help"], ["schema", "--help"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0, argv
        table = out[out.index("exit status"):]
        for c, meaning in EXIT_STATUS:
            # the first words of each meaning, on the line of its code
            assert re.search(rf"^  {c}  {re.escape(meaning[:20])}", table, re.M), (argv, c)
    for c, _ in EXIT_STATUS:
        assert re.search(rf"^\| {c} \|", readme, re.M), f"README: no row for exit status {c}"


# ---- 0 ---------------------------------------------------------------------------------------


def test_0_converges_and_commands_that_did_their_job(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check", "--dump", SNAP, "--patch", "cmdline_proc_show", "--json")
    assert code == EXIT_OK and loads(out, "check")["summary"]["converges"] is True
    code, out, _ = run(capsys, "check", "--dump", SNAP, "--json")  # an inventory, no verdict
    assert code == EXIT_OK and loads(out, "check-inventory")["tasks"]
    code, out, _ = run(capsys, "schema")
    assert code == EXIT_OK and "check-jsonl" in out
    code, out, _ = run(capsys, "oracle", "compare", str(ORACLE / "kthread_loops"), "--json")
    assert code == EXIT_OK and not [d for d in loads(out, "oracle-compare")["disagreements"]
                                    if not d["explained"]]
    code, out, _ = run(capsys, "simulate", "--model", "klp", "--scenario", "S26", "--json")
    assert code == EXIT_OK and loads(out, "simulate")["as_expected"] is True
    # watch: blocked at the first retry, every task switchable at the second
    (tmp_path / "a.txt").write_text(user_task(300, "bash", "S", ["do_wait+0x63a/0x930"]))
    (tmp_path / "b.txt").write_text(user_task(300, "bash", "S", ["do_select+0x63a/0x930"]))
    code, out, _ = run(capsys, "watch", "--dump", str(tmp_path / "a.txt"), "--dump",
                       str(tmp_path / "b.txt"), "--patch", "do_wait", "--json")
    lines = json_lines(out, "watch")
    assert [len(line["blocking"]) for line in lines] == [1, 0] and code == EXIT_OK


def test_model_all_exits_by_klp_not_by_the_worst_model(capsys: pytest.CaptureFixture[str]) -> None:
    """trivial is always UNKNOWN and kpatch does not converge here: the exit
    status is klp's verdict (CONVERGES), unless --exit-model names another."""
    base = ["check", "--dump", SNAP, "--patch", "futex_do_wait", "--model", "all"]
    code, out, err = run(capsys, *base, "--json")
    assert "exit status: klp's verdict, CONVERGES (the kernel's own model" in err
    doc = loads(out, "check-all")
    assert doc["models"]["klp"]["summary"]["converges"] is True
    assert doc["models"]["trivial"]["summary"]["converges"] is None
    assert doc["models"]["kpatch"]["summary"]["converges"] is False
    assert code == EXIT_OK
    code, _, err = run(capsys, *base, "--exit-model", "kpatch")
    assert code == EXIT_BLOCKED and "exit status: kpatch's verdict, DOES NOT CONVERGE" in err
    assert run(capsys, *base, "--exit-model", "trivial")[0] == EXIT_UNKNOWN
    assert run(capsys, *base, "--exit-model", "klp")[0] == EXIT_OK


def test_0_capture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from lpc import source

    if not source.live_stacks_readable():
        pytest.skip("capture reads this machine's /proc/<pid>/stack (root)")
    code, out, err = run(capsys, "capture", "--out", str(tmp_path / "snap"))
    assert code == EXIT_OK and out == "" and "captured" in err
    code, out, _ = run(capsys, "check", "--dump", str(tmp_path / "snap"), "--json")
    assert code == EXIT_OK and loads(out, "check-inventory")["source"]["tasks"] > 0


# ---- 1 ---------------------------------------------------------------------------------------


def _snapshot(tmp: Path, state: str, patch_states: str | None = None,
              name: str = "snap") -> Path:
    snap = tmp / name
    shutil.copytree(DATA / "procdump-6.18", snap)
    (snap / "livepatch.txt").write_text(state)
    if patch_states is not None:
        (snap / "patch_state.txt").write_text(patch_states)
    return snap


def test_1_does_not_converge_or_refused(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check", "--dump", SNAP, "--patch", "worker_thread", "--json")
    assert code == EXIT_BLOCKED and loads(out, "check")["summary"]["converges"] is False
    code, out, _ = run(capsys, "check", "--dump", SNAP, "--patch", "worker_thread",
                       "--model", "all", "--json")
    assert code == EXIT_BLOCKED
    assert loads(out, "check-all")["models"]["klp"]["summary"]["converges"] is False
    # REFUSED: no /sys/kernel/livepatch; the stacks alone would converge
    absent = _snapshot(tmp_path, STATE_HEADER + "absent\n")
    code, out, _ = run(capsys, "check", "--dump", str(absent), "--patch", "cmdline_proc_show",
                       "--json")
    doc = loads(out, "check")
    assert doc["summary"]["converges"] is True and doc["machine"]["refusals"][0]["code"] == "ENODEV"
    assert code == EXIT_BLOCKED
    code, _, err = run(capsys, "watch", "--dump", str(absent), "--patch", "cmdline_proc_show")
    assert code == EXIT_BLOCKED and "refused: -ENODEV" in err
    # watch: tasks in the patched function at every retry
    code, out, _ = run(capsys, "watch", "--dump", SNAP, "--dump", SNAP, "--patch",
                       "worker_thread", "--json")
    assert code == EXIT_BLOCKED and len(json_lines(out, "watch")) == 2


def test_1_simulate_differs_and_oracle_disagrees(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    # trivial never learns that the old code is unused: no convergence in simulation
    code, out, _ = run(capsys, "simulate", "--model", "trivial")
    assert code == EXIT_BLOCKED and "trivial on the reference system" in out
    # A recorded case where the kernel held init back and lpc would switch it:
    # a disagreement no rule explains.
    case = tmp_path / "nanosleep"
    shutil.copytree(ORACLE / "nanosleep", case)
    for name in ("first_states.txt", "first_states_pre.txt"):
        path = case / name
        text = path.read_text()
        assert "\n1 1 init\n" in text
        path.write_text(text.replace("\n1 1 init\n", "\n1 0 init\n"))
    code, out, _ = run(capsys, "oracle", "compare", str(case), "--json")
    doc = loads(out, "oracle-compare")
    assert [(d["comm"], d["explained"]) for d in doc["disagreements"]
            if not d["explained"]] == [("init", False)]
    assert code == EXIT_BLOCKED


# ---- 2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["check", "--dump", SNAP, "--patch", "worker_thread", "--model", "kpatch", "--force"],
    ["check", "--dump", SNAP, "--patch", "worker_thread", "--model", "null", "--force"],
    ["check", "--dump", SNAP, "--patch", "worker_thread", "--model", "klp", "--exit-model",
     "kpatch"],
    ["check", "--dump", SNAP, "--patch", "worker_thread", "--model", "all", "--exit-model",
     "nonsense"],
    ["check", "--dump", SNAP, "--patch", "worker_thread", "--json", "--jsonl"],
    ["check", "--dump", SNAP, "--jsonl"],
    ["watch", "--dump", SNAP, "--patch", "worker_thread", "--model", "kgraft", "--force"],
    ["watch", "--dump", SNAP, "--patch", "worker_thread", "--model", "all"],
    ["capture"],
    ["simulate"],
    ["oracle"],
    ["oracle", "run", "--scenario", "nope", "--no-build"],
    ["schema", "nope"],
], ids=["nothing", "unknown-command", "force-kpatch", "force-null", "exit-model-not-checked",
        "exit-model-unknown", "json-and-jsonl", "jsonl-no-patch", "watch-force-kgraft",
        "watch-all", "capture-no-out", "simulate-nothing", "oracle-nothing", "oracle-scenario",
        "schema-unknown"])
def test_2_usage(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE, err
    assert out == "" and "Traceback" not in err


def test_force_names_the_models_that_have_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--dump", SNAP, "--patch", "worker_thread",
                       "--model", "ksplice", "--force")
    assert code == EXIT_USAGE
    assert "--force: model ksplice has no forced transition (models with one: klp)" in err
    # --model all: force applies to klp (said so), and klp's forced verdict converges
    code, out, err = run(capsys, "check", "--dump", SNAP, "--patch", "worker_thread",
                         "--model", "all", "--force", "--json")
    doc = loads(out, "check-all")
    assert "--force applies to klp only" in err
    assert doc["models"]["klp"]["params"]["force"] is True
    assert doc["models"]["klp"]["summary"]["converges"] is True
    assert doc["models"]["kpatch"]["summary"]["converges"] is False
    assert code == EXIT_OK


# ---- 3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["check", "--dump", "/nonexistent/dump.txt", "--patch", "x"],
    ["check", "--dump", str(DATA / "kallsyms-6.18.txt.gz"), "--patch", "x", "--json"],
    ["watch", "--dump", "/nonexistent/dump.txt", "--patch", "x"],
    ["oracle", "compare", "EMPTY_DIR"],
    ["oracle", "compare", "EMPTY_DIR", "--json"],
    ["capture", "--out", "/dev/null/snapshot"],
], ids=["check-missing", "check-not-a-dump", "watch-missing", "oracle-empty-case",
        "oracle-empty-case-json", "capture-unwritable"])
def test_3_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                     argv: list[str]) -> None:
    from lpc import source

    if argv[0] == "capture" and not source.live_stacks_readable():
        pytest.skip("capture reads this machine's /proc/<pid>/stack (root)")
    argv = [str(tmp_path) if a == "EMPTY_DIR" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == EXIT_BAD_INPUT, err
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) <= 3


# ---- 4 ---------------------------------------------------------------------------------------


def test_4_cannot_tell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # trivial never knows: always UNKNOWN
    code, out, _ = run(capsys, "check", "--dump", SNAP, "--patch", "cmdline_proc_show",
                       "--model", "trivial", "--json")
    assert loads(out, "check")["summary"]["converges"] is None and code == EXIT_UNKNOWN
    # the machine's state leaves it open: transition unreadable; the stacks alone converge
    unreadable = _snapshot(tmp_path, STATE_HEADER + "a/\na/enabled 1\na/transition !\n"
                           "a/vmlinux/\na/vmlinux/do_nanosleep,1/\n")
    code, out, _ = run(capsys, "check", "--dump", str(unreadable), "--patch",
                       "cmdline_proc_show", "--json")
    doc = loads(out, "check")
    assert doc["summary"]["converges"] is True and doc["machine"]["unknowns"]
    assert code == EXIT_UNKNOWN
    assert run(capsys, "check", "--dump", str(unreadable), "--patch", "cmdline_proc_show",
               "--no-machine-state")[0] == EXIT_OK
    code, out, _ = run(capsys, "check", "--dump", str(unreadable), "--patch",
                       "cmdline_proc_show", "--jsonl")
    assert code == EXIT_UNKNOWN and json_lines(out, "check-jsonl")[-1]["converges"] is None


def test_4_watch_cannot_tell_a_completion_from_a_forced_end(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The transition completes while a task lpc could not judge (an unreadable
    kthread stack) had not switched at the last look: converged on its own, or forced?"""
    tids = [int(line.split()[2].split("=")[1])
            for line in (DATA / "procdump-6.18" / "stacks.txt").read_text().splitlines()
            if line.startswith("# pid=")]
    snaps = []
    for i, transition in enumerate((1, 0)):
        snap = _snapshot(tmp_path, STATE_HEADER + f"fix/\nfix/enabled 1\nfix/transition "
                         f"{transition}\nfix/vmlinux/\nfix/vmlinux/pipe_read,1/\n",
                         "# uptime=1\n" + "".join(f"{t} 1 x\n" for t in tids) + "9999 0 hidden\n",
                         name=f"s{i}")
        stacks = snap / "stacks.txt"
        stacks.write_text(stacks.read_text() + (
            "# pid=9999 tid=9999 comm=hidden state=S flags=0x00208040 kthread=1 cpu=0 "
            "status=unreadable\n\n"))
        snaps += ["--dump", str(snap)]
    code, out, err = run(capsys, "watch", "--patch", "pipe_read", "--name", "fix", "--json",
                         *snaps)
    lines = json_lines(out, "watch")
    assert lines[0]["transition"]["not_switched"] == 1
    assert lines[0]["pending_converges"] is None
    assert "may have been forced" in err
    assert code == EXIT_UNKNOWN


# ---- 5 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_5_a_bug_in_lpc(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                        debug: bool) -> None:
    import lpc.check

    def broken(*_: object, **__: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(lpc.check, "run", broken)
    if debug:
        monkeypatch.setenv("LPC_DEBUG", "1")
    else:
        monkeypatch.delenv("LPC_DEBUG", raising=False)
    code, out, err = run(capsys, "check", "--dump", SNAP, "--patch", "worker_thread")
    assert code == EXIT_INTERNAL and out == ""
    assert "internal error (a bug in lpc" in err
    assert ("Traceback" in err) is debug


def test_5_is_no_verdict_code(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """A bug in the JSON writer, after the verdict: still 5, not the verdict's code."""
    import lpc.report

    def broken(*_: object, **__: object) -> None:
        raise TypeError("not serialisable")

    monkeypatch.setattr(lpc.report, "render_json", broken)
    assert cli.main(["check", "--dump", SNAP, "--patch", "cmdline_proc_show",
                     "--json"]) == EXIT_INTERNAL


def test_1_simulate_matrix_differs_from_the_documented_cell(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--matrix exits 1 when a cell's search result is not the documented one
    (here the documentation is made to say the opposite for one cell), and
    names that cell; with the documentation as it is, 0. ksplice holds in every
    cell, so a small search budget cannot miss a counterexample."""
    import lpc.sim.expected

    code, out, _ = run(capsys, "simulate", "--matrix", "--models", "ksplice", "--budget", "20")
    assert code == EXIT_OK and "unexpected:" not in out
    real = lpc.sim.expected.expected
    flipped: list[tuple[str, str]] = []

    def wrong(model: str, patch_class: str) -> bool:
        if not flipped:
            flipped.append((model, patch_class))
            return not real(model, patch_class)
        return real(model, patch_class)

    monkeypatch.setattr(lpc.sim.expected, "expected", wrong)
    code, out, _ = run(capsys, "simulate", "--matrix", "--models", "ksplice", "--budget", "20")
    assert code == EXIT_BLOCKED
    assert f"unexpected: {flipped[0][0]} / {flipped[0][1]}" in out
