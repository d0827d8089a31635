"""Bad input ends in one clear line and exit 2 (usage) or 3 (bad input), never a
traceback, and never 0 or 1 — which are verdicts. Every subcommand, one table."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from jsonschemas import loads
from lpc import capture
from lpc.capture import COMPLETE_MARKER, write_snapshot
from lpc.cli import EXIT_BAD_INPUT, EXIT_USAGE, main
from lpc.dump import parse_dump
from lpc.errors import SnapshotError
from lpc.patch import Patch, PatchSpecError

DATA = Path(__file__).parent / "data"
SNAP = str(DATA / "procdump-6.18")


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad")
    files = {
        "utf8": b"worker_thread\n\xff\xfe\n",
        "elf": b"\x7fELF\x02\x01\x01" + bytes(64),
        "empty_patch": b"# nothing\n\n",
        "bad_spec": b"worker_thread\nnot a name!\n",
        "file": b"x",
        "garbage_dump": b"\x00\x01 nothing a parser knows\n",
    }
    out = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        out[name] = str(root / name)
    fifo = root / "fifo"
    os.mkfifo(fifo)
    out["fifo"] = str(fifo)
    half = root / "half_snapshot"
    half.mkdir()
    (half / "stacks.txt").write_bytes((DATA / "procdump-6.18" / "stacks.txt").read_bytes())
    out["half"] = str(half)
    unfinished = root / "unfinished"
    unfinished.mkdir()
    (unfinished / "stacks.txt").write_bytes((DATA / "procdump-6.18" / "stacks.txt").read_bytes())
    (unfinished / "meta.txt").write_text("kernel_release=6.18\nsnapshot_complete=0\n")
    out["unfinished"] = str(unfinished)
    out["root"] = str(root)
    return out


CASES = [
    # (arguments, the exit status, words the one line must hold)
    (["check", "--dump", SNAP, "--patch-file", "{utf8}"], 3, "utf8:2: not UTF-8"),
    (["check", "--dump", SNAP, "--patch-file", "{elf}"], 3, "an ELF file"),
    (["check", "--dump", SNAP, "--patch-file", "{empty_patch}"], 3, "no patch function"),
    (["check", "--dump", SNAP, "--patch-file", "{bad_spec}"], 3, "bad_spec:2"),
    (["check", "--dump", SNAP, "--patch-file", "/dev/zero"], 3, "character device"),
    (["check", "--dump", SNAP, "--patch-file", "{fifo}"], 3, "a FIFO"),
    (["check", "--dump", SNAP, "--patch-file", "{root}/missing"], 3, "cannot read patch file"),
    (["check", "--dump", SNAP, "--patch", ""], 2, "empty patch"),
    (["check", "--dump", SNAP, "--patch", " , "], 2, "empty patch"),
    (["check", "--dump", SNAP, "--patch", "x@\u0661"], 3, "bad patch function"),
    (["check", "--dump", SNAP, "--patch", "x@-1"], 3, "bad patch function"),
    (["check", "--dump", "/dev/zero", "--patch", "x"], 3, "character device"),
    (["check", "--dump", "{fifo}", "--patch", "x"], 3, "a FIFO"),
    (["check", "--dump", "{root}/missing", "--patch", "x"], 3, "cannot read dump"),
    (["check", "--dump", "{garbage_dump}", "--patch", "x"], 3, ""),
    (["check", "--dump", "{half}", "--patch", "x"], 3, "incomplete capture"),
    (["check", "--dump", "{unfinished}", "--patch", "x"], 3, "did not finish"),
    (["check", "--dump", SNAP, "--symbols", "/dev/zero", "--patch", "x"], 3,
     "symbols must be a regular file, and this is a character device"),
    (["check", "--dump", SNAP, "--symbols", "{utf8}", "--patch", "x"], 3, ""),
    (["check", "--dump", SNAP, "--patch", "x", "--model", "nope"], 2, "unknown model"),
    (["check", "--dump", SNAP, "--patch", "x", "--model", "kpatch", "--force"], 2,
     "has no forced transition"),
    (["watch", "--dump", SNAP, "--patch", "x", "--model", "all"], 2, "one model"),
    (["watch", "--dump", SNAP, "--patch", "x", "--model", "nope"], 2, "unknown model"),
    (["watch", "--dump", SNAP], 2, "needs --patch"),
    (["watch", "--patch", "x", "--interval", "-1"], 2, "--interval"),
    (["watch", "--patch", "x", "--interval", "nan"], 2, "--interval"),
    (["watch", "--patch", "x", "--interval", "inf"], 2, "--interval"),
    (["watch", "--patch", "x", "--retries", "-5"], 2, "--retries"),
    (["watch", "--patch", "x", "--retries", "0"], 2, "--retries"),
    (["simulate", "--matrix", "--budget", "-1"], 2, "--budget"),
    (["simulate", "--model", "nope"], 2, "unknown model"),
    (["simulate", "--scenario", "S99", "--model", "klp"], 2, "unknown scenario"),
    (["simulate"], 2, "simulate needs"),
    (["capture", "--out", "{file}"], 3, "not a directory"),
    (["capture", "--out", "{file}/sub"], 3, "is not a directory"),
    (["capture", "--out", "/proc/lpc-test"], 3, "never writes under /proc"),
    (["capture", "--out", "/sys/lpc-test"], 3, "never writes under /sys"),
    (["capture", "--out", "{half}"], 3, "non-empty directory"),
    (["oracle"], 2, "subcommand"),
    (["oracle", "compare", "{root}/missing"], 3, ""),
    (["nope"], 2, ""),
    ([], 2, ""),
]


@pytest.mark.parametrize(("argv", "status", "words"), CASES,
                         ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_and_exit_2_or_3(
    argv: list[str], status: int, words: str, bad: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main([a.format(**bad) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    assert code == status, err
    assert words in err
    if status == EXIT_BAD_INPUT:
        assert len([line for line in err.splitlines() if line.startswith("lpc: ")
                    and not line.startswith(("lpc: reading", "lpc: source"))]) == 1, err


def test_a_bug_is_exit_5_not_a_verdict(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import lpc.check

    def broken(*_: object, **__: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(lpc.check, "run", broken)
    assert main(["check", "--dump", SNAP, "--patch", "x"]) == 5
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err


def test_a_unicode_digit_is_no_sympos() -> None:
    with pytest.raises(PatchSpecError):
        Patch.parse("worker_thread@\u0663")
    assert Patch.parse("worker_thread@3").functions[0].sympos == 3


# ---- lpc capture writes only what it means to ---------------------------------------------------


def _dump() -> object:
    return parse_dump(DATA / "procdump-6.18")


def test_a_snapshot_ends_with_its_completeness_marker(tmp_path: Path) -> None:
    out = write_snapshot(_dump(), tmp_path / "snap", copy_kallsyms=False)  # type: ignore[arg-type]
    assert (out / "meta.txt").read_text().splitlines()[-1] == COMPLETE_MARKER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]  # no temporary left
    assert main(["check", "--dump", str(out), "--patch", "worker_thread"]) in (0, 1)


def test_a_full_disk_leaves_no_half_snapshot(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = capture._write

    def full(path: Path, data: bytes) -> None:
        if path.name == "meta.txt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(capture, "_write", full)
    with pytest.raises(SnapshotError, match="disk is full"):
        write_snapshot(_dump(), tmp_path / "snap", copy_kallsyms=False)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_capture_leaves_nothing(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(path: Path, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(capture, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_snapshot(_dump(), tmp_path / "snap", copy_kallsyms=False)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_capture_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "snap").symlink_to(victim)
    with pytest.raises(SnapshotError, match="not a directory"):
        write_snapshot(_dump(), tmp_path / "snap", copy_kallsyms=False)  # type: ignore[arg-type]
    assert list(victim.iterdir()) == []


def test_capture_fills_an_empty_directory_but_never_a_used_one(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_snapshot(_dump(), tmp_path / "empty", copy_kallsyms=False)  # type: ignore[arg-type]
    assert (tmp_path / "empty" / "stacks.txt").exists()
    with pytest.raises(SnapshotError, match="non-empty"):
        write_snapshot(_dump(), tmp_path / "empty", copy_kallsyms=False)  # type: ignore[arg-type]


# ---- hostile text ------------------------------------------------------------------------------


def test_dump_text_never_reaches_the_terminal_as_escape_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A comm is whatever a process sets with prctl(PR_SET_NAME): ESC, OSC, BEL."""
    evil = "\x1b]0;owned\x07\x1b[2J"
    dump = tmp_path / "stacks.txt"
    dump.write_bytes(
        (f"# pid=10 tid=10 comm={evil} state=S flags=0x00400100 kthread=0 cpu=0 status=ok\n"
         "[<0>] pf_a+0x1/0x40\n[<0>] do_syscall_64+0x1/0x40\n").encode())
    assert main(["check", "--dump", str(dump), "--patch", "pf_a"]) in (0, 1)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out


# ---- a patch function found nowhere --------------------------------------------------------------


def test_a_module_function_named_bare_is_refused_with_its_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dump = str(DATA / "sysrq-t-6.x-i915-modules.txt")
    assert main(["check", "--dump", dump, "--patch", "intel_wakeref_wait_for_idle"]) == 3
    assert "did you mean i915:intel_wakeref_wait_for_idle" in capsys.readouterr().err
    assert main(["check", "--dump", dump, "--patch", "i915:intel_wakeref_wait_for_idle"]) in (0, 1, 4)


def test_a_close_name_is_refused_with_a_suggestion(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    assert main(["check", "--dump", SNAP, "--patch", "worker_threa"]) == 3
    assert "did you mean worker_thread" in capsys.readouterr().err
    import gzip

    kallsyms = tmp_path / "kallsyms.txt"
    kallsyms.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    assert main(["check", "--dump", SNAP, "--symbols", str(kallsyms),
                 "--patch", "worker_threa"]) == 3
    assert "did you mean worker_thread" in capsys.readouterr().err


def test_a_name_seen_nowhere_and_like_nothing_is_said_plainly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--dump", SNAP, "--patch", "zzz_not_a_kernel_function"]) == 0
    out = capsys.readouterr().out
    assert "seen on no stack: zzz_not_a_kernel_function" in out
    assert "cannot be told from an absent one" in out


# ---- a symbol table of another kernel ----------------------------------------------------------


def test_a_symbol_table_of_another_release_is_refused(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The dump is of 6.18.44-fc-v657; a table named for another build is refused."""
    import gzip

    other = tmp_path / "System.map-6.18.44-fc-v1272"
    other.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    argv = ["check", "--dump", SNAP, "--symbols", str(other), "--patch", "kthread"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "6.18.44-fc-v657" in err and "6.18.44-fc-v1272" in err and "--symbols-mismatch-ok" in err
    assert main([*argv, "--symbols-mismatch-ok"]) in (0, 1)
    assert "allowed by --symbols-mismatch-ok" in capsys.readouterr().out


def test_frames_that_do_not_fit_the_table_are_never_clean(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Another build's table, the mismatch allowed: kthread is 0x40 bytes longer
    there, so the dump's ``kthread+0x../0x..`` frames do not fit it. Their tasks
    are unreliable and the answer is not CONVERGES (before, it was: 0 blocked)."""
    import gzip

    lines = gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()).decode().splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[2:3] == ["kthread"])
    for i in range(at + 1, len(lines)):  # everything after kthread 0x40 bytes later
        address, rest = lines[i].split(" ", 1)
        if not rest.endswith("]"):  # vmlinux only: modules load elsewhere
            lines[i] = f"{int(address, 16) + 0x40:016x} {rest}"
    other = tmp_path / "kallsyms-other-build"
    other.write_text("\n".join(lines) + "\n")
    code = main(["check", "--dump", SNAP, "--symbols", str(other), "--patch", "kthread", "--json"])
    doc = loads(capsys.readouterr().out, "check")
    lost = doc["summary"]["evidence"]["lost"]
    assert lost["unpinned"]["tasks"] > 0
    assert doc["summary"]["converges"] is None and code == 4  # UNKNOWN, never CONVERGES
    assert all(t["verdict"] != "switch" for t in doc["tasks"] if t["evidence_lost"])
    # The dump's own table: every frame fits, nothing lost.
    kallsyms = tmp_path / "kallsyms.txt"
    kallsyms.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    main(["check", "--dump", SNAP, "--symbols", str(kallsyms), "--patch", "kthread", "--json"])
    assert loads(capsys.readouterr().out, "check")["summary"]["evidence"]["lost"] == {}


def test_a_failed_guest_build_says_why_even_when_it_printed_nothing(tmp_path: Path) -> None:
    from lpc.oracle.run import OracleError, build_guest

    tools = tmp_path / "tools"
    tools.mkdir()
    script = tools / "build-guest.sh"
    script.write_text("#!/bin/sh\nexit 7\n")
    script.chmod(0o755)
    with pytest.raises(OracleError, match="exit 7.*printed nothing"):
        build_guest(tools, tmp_path / "work")
