"""What the parser sees go missing reaches the verdict (issue 10): a damaged
frame line, a stack without its end, an unreadable header, a cut file, a bad
byte — each is said above the verdict with its line, carried per task and in
the JSON summary, and none ends in CONVERGES."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from jsonschemas import loads
from lpc.check import check
from lpc.cli import main
from lpc.dump import TaskLoss, parse_dump
from lpc.models import Verdict
from lpc.symbols import Symbols

DATA = Path(__file__).parent / "data"

#: One 6.18 SysRq-t task, whole: `do_sys_poll` is on its stack.
TASK = (
    "task:cat             state:S stack:0     pid:7     tgid:7     ppid:1      "
    "task_flags:0x400000 flags:0x00004002\n"
    "Call Trace:\n"
    " <TASK>\n"
    " __schedule+0x4c2/0x1260\n"
    " schedule+0x27/0xe0\n"
    " do_sys_poll+0x3b4/0x560\n"
    " __x64_sys_poll+0x3d/0x150\n"
    " do_syscall_64+0x82/0x9f0\n"
    " entry_SYSCALL_64_after_hwframe+0x76/0x7e\n"
    " </TASK>\n"
)


def run(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, dict, str]:
    path = tmp_path / "dump.txt"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    code = main(["check", "--dump", str(path), "--patch", "__x64_sys_read", "--json", *args])
    doc = loads(capsys.readouterr().out, "check")
    main(["check", "--dump", str(path), "--patch", "__x64_sys_read", *args])
    return code, doc, capsys.readouterr().out


def test_whole_tasks_lose_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, text = run(tmp_path, TASK * 2, capsys)
    evidence = doc["summary"]["evidence"]
    assert evidence["incomplete_stacks"] == 0 and evidence["lost"] == {}
    assert evidence["unreadable_headers"] == {"tasks": 0, "lines": []}
    assert evidence["input_cut"] is False
    assert doc["summary"]["converges"] is True and code == 0
    assert "evidence lost" not in text


def test_a_damaged_frame_line_makes_its_task_unreliable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = TASK.replace(" do_sys_poll+0x3b4/0x560", " do_sys_p\x01ll+0x3b4/0x560")
    code, doc, text = run(tmp_path, TASK + damaged, capsys)
    first, second = doc["tasks"][0], doc["tasks"][1]
    assert first["evidence_lost"] is None and first["verdict"] == "switch"
    assert second["verdict"] == "unreliable" and second["evidence_line"] == 16
    assert "a frame is missing" in second["evidence_lost"]
    lost = doc["summary"]["evidence"]["lost"]["frame_line"]
    assert lost["tasks"] == 1 and lost["first"] == [{"task_line": 11, "line": 16}]
    assert doc["summary"]["converges"] is not True and code != 0
    assert "dump.txt:16, the task at line 11" in text
    # Said with the details, after the verdict and its culprits.
    assert text.index("verdict:") < text.index("evidence lost")


def test_a_missing_task_end_and_a_cut_file_are_never_converges(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unclosed = TASK.replace(" </TASK>\n", "")
    code, doc, _ = run(tmp_path, unclosed + TASK, capsys)
    assert doc["tasks"][0]["verdict"] == "unreliable"
    assert "no end" in doc["tasks"][0]["evidence_lost"]
    assert doc["summary"]["converges"] is not True and code != 0
    # Cut after a whole task, in the middle of the next one's header.
    code, doc, text = run(tmp_path, TASK + TASK[:30], capsys)
    assert doc["summary"]["evidence"]["input_cut"] is True
    assert doc["summary"]["converges"] is not True and code != 0
    assert "ends in the middle of a line" in text


def test_an_unreadable_header_is_counted_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut_header = TASK.replace("task:cat             state:S stack:0     pid:7", "task:cat    sta")
    code, doc, text = run(tmp_path, TASK + cut_header + TASK, capsys)
    headers = doc["summary"]["evidence"]["unreadable_headers"]
    assert headers == {"tasks": 1, "lines": [11]}
    assert [t["comm"] for t in doc["tasks"]] == ["cat", "?", "cat"]
    assert doc["tasks"][1]["verdict"] == "unreliable"
    assert doc["summary"]["converges"] is not True and code != 0
    assert "1 task header(s) unreadable (" in text and "lines 11): verdict cannot be CONVERGES" in text


def test_a_bad_byte_costs_the_frame_it_is_in(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = (TASK * 2).encode().replace(b" do_sys_poll", b" do_sys_\xffoll", 1)
    dump = parse_dump(bad)
    assert any("not valid UTF-8" in w for w in dump.warnings)
    assert [t.lost for t in dump.tasks] == [TaskLoss.FRAME_LINE, TaskLoss.NONE]
    code, doc, text = run(tmp_path, bad, capsys)
    assert doc["tasks"][0]["verdict"] == "unreliable" and code != 0
    assert "not valid UTF-8" in text


def test_skipped_lines_are_counted_with_samples(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, doc, text = run(tmp_path, "a note from the reporter\n" + TASK, capsys)
    assert doc["source"]["skipped_lines"] == 1
    assert doc["source"]["skipped_samples"] == [{"line": 1, "text": "a note from the reporter"}]
    assert "1 line(s) of" in text


def test_every_model_that_reads_evidence_refuses_a_clean_answer_on_lost_evidence() -> None:
    """The evidence rule is the engines' (Model.judge / judge_dump): no model
    answers switch or a converging outlook for a task whose evidence is lost,
    except the null model, which reads nothing."""
    damaged = parse_dump((TASK + TASK.replace(" schedule+", " sch\x01dule+")).encode())
    cut = parse_dump((TASK + TASK[:40]).encode())
    from lpc.models import CONVERGING, MODELS
    for name in MODELS:
        result = check(damaged, "__x64_sys_read", name)
        lost = result.tasks[1]
        if name == "null":
            assert lost.outcome.verdict is Verdict.SWITCH
            continue
        assert lost.outcome.verdict is not Verdict.SWITCH, name
        assert lost.outcome.outlook not in CONVERGING, name
        assert result.transition.converges is not True, name
        assert check(cut, "__x64_sys_read", name).transition.converges is not True, name


def test_a_symbol_table_out_of_the_kernels_order_is_said() -> None:
    raw = gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()).splitlines(keepends=True)
    body = [line for line in raw if not line.startswith(b"#")]
    assert not [w for w in Symbols.from_kallsyms(b"".join(raw)).warnings if "order" in w]
    by_name = Symbols.from_kallsyms(b"".join(sorted(body, key=lambda line: line.split()[2])))
    assert any("out of the kernel's kallsyms order" in w for w in by_name.warnings)
    # Each module in one run: a module split in two runs is out of order too.
    def module(rows: list[tuple[int, str, str]]) -> list[bytes]:
        return [f"{0xffffffffc0001000 + 0x100 * k:016x} t {name}\t[{mod}]\n".encode()
                for k, name, mod in rows]

    runs = module([(0, "a1", "mod_a"), (1, "a2", "mod_a"), (2, "b1", "mod_b")])
    split = module([(0, "a1", "mod_a"), (2, "b1", "mod_b"), (1, "a2", "mod_a")])
    assert not [w for w in Symbols.from_kallsyms(b"".join(body + runs)).warnings if "order" in w]
    assert any("order" in w for w in Symbols.from_kallsyms(b"".join(body + split)).warnings)


def test_a_dump_with_no_task_never_converges(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    dump = parse_dump(b"sysrq: Show State\n")
    assert dump.task_count == 0
    for name in ("klp", "josh", "kpatch"):
        assert check(dump, "schedule", name).transition.converges is not True, name
    path = tmp_path / "empty.txt"
    path.write_bytes(b"sysrq: Show State\n")
    assert main(["check", "--dump", str(path), "--patch", "schedule"]) != 0
    assert "no task could be read" in capsys.readouterr().out


def test_a_patched_function_seen_only_as_a_guess_is_named() -> None:
    dump = parse_dump(DATA / "sysrq-t-5.7-orc-all-unreliable.txt")
    result = check(dump, "ep_poll", "klp")
    guessed = result.tasks[0]
    assert guessed.outcome.verdict is Verdict.UNRELIABLE
    assert "patched ep_poll is on it, but only as a frame the unwinder could not vouch for" \
        in guessed.outcome.reason
    assert not [w for w in result.warnings if "seen on no stack" in w]


def test_the_idle_task_is_pid_0_not_a_comm() -> None:
    """Before init runs, PID 1 is swapper/0 too, and it can sleep in D."""
    pid1 = TASK.replace("task:cat            ", "task:swapper/0      ").replace(
        "state:S", "state:D").replace("pid:7     tgid:7     ppid:1 ", "pid:1     tgid:1     ppid:0 ")
    dump = parse_dump(pid1.encode())
    assert (dump.tasks[0].comm, dump.tasks[0].pid) == ("swapper/0", 1)
    facts = check(dump, "do_sys_poll", "klp").tasks[0].facts
    assert facts.kind.value != "idle"


def test_without_a_patch_every_task_is_listed_with_its_stack(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = "task:idle_one       state:R  running task     stack:0     pid:9     tgid:9     " \
            "ppid:2      task_flags:0x208040 flags:0x00004000\n"
    cut_header = TASK.replace("task:cat             state:S stack:0     pid:7", "task:cat    sta")
    path = tmp_path / "dump.txt"
    path.write_text(TASK + empty + cut_header)
    assert main(["check", "--dump", str(path), "--json"]) == 0
    doc = loads(capsys.readouterr().out, "check-inventory")
    got = [(t["comm"], t["stack"], t["frames"], t["innermost"], t["lost"]) for t in doc["tasks"]]
    assert got == [("cat", "complete", 6, "__schedule", []),
                   ("idle_one", "empty", 0, None, []),
                   ("?", "complete", 6, "__schedule", ["header"])]
    main(["check", "--dump", str(path)])
    text = capsys.readouterr().out
    assert "tasks read: 3 (" in text and "1 empty" in text and "1 lost evidence while read" in text
    assert "idle_one" in text and "header" in text
