"""Live capture from /proc (a fake procfs tree, and this machine's) and snapshot recording."""

from __future__ import annotations

import dataclasses
import os
import platform
import threading
from pathlib import Path
from typing import Any

import pytest

import lpc.capture as capture
from lpc.capture import PF_KTHREAD, ProcStat, capture_live, parse_stat, write_snapshot
from lpc.dump import StackStatus, Task, parse_dump
from lpc.errors import CaptureError, LpcError


def stat_line(pid: int, comm: str, state: str, ppid: int, flags: int, cpu: int) -> bytes:
    """A real-shaped stat line: 52 fields, flags at 9 and processor at 39."""
    fields = [str(pid), f"({comm})", state, str(ppid)] + ["0"] * 48
    fields[8] = str(flags)
    fields[38] = str(cpu)
    return (" ".join(fields) + "\n").encode()


def test_parse_stat_handles_spaces_and_parentheses_in_comm() -> None:
    assert parse_stat(stat_line(7, "a) (b c", "S", 1, PF_KTHREAD, 3)) == ProcStat(
        comm="a) (b c", state="S", ppid=1, flags=PF_KTHREAD, cpu=3
    )
    assert parse_stat(b"12 (x) R 1") is None
    assert parse_stat(b"garbage") is None


def make_task(root: Path, pid: int, tid: int, comm: str, state: str, flags: int, stack: str | None) -> None:
    base = root / str(pid) / "task" / str(tid)
    base.mkdir(parents=True)
    (base / "stat").write_bytes(stat_line(tid, comm, state, 1, flags, tid % 2))
    if stack is not None:
        (base / "stack").write_text(stack)


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    make_task(root, 10, 10, "kworker/0:0H-events_highpri", "I", 0x04208060, "[<0>] worker_thread+0x98/0x310\n[<0>] kthread+0xf8/0x220\n")
    make_task(root, 20, 20, "my (odd) comm", "S", 0x00400000, "[<0>] do_wait+0x53/0x120\n")
    make_task(root, 20, 21, "spin", "R", 0x00400040, "")
    make_task(root, 30, 30, "exiting", "Z", 0x0040804C, None)  # stack vanished: gone
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("6.18.44-test\n")
    (root / "kallsyms").write_text("ffffffff81000000 T _stext\n")
    (root / "self").mkdir()  # not a pid: ignored
    return root


def test_capture_of_a_fake_proc(fake_proc: Path) -> None:
    dump = capture_live(fake_proc)
    assert dump.source_format == "proc_snapshot"
    assert dump.kernel_release == "6.18.44-test"
    assert dump.kallsyms_path == f"{fake_proc}/kallsyms"
    assert dump.skipped_lines == 0
    got = [(t.pid, t.tid, t.comm, t.state, t.kthread, t.on_cpu, t.stack_status) for t in dump.tasks]
    assert got == [
        (10, 10, "kworker/0:0H-events_highpri", "I", True, None, StackStatus.COMPLETE),
        (20, 20, "my (odd) comm", "S", False, None, StackStatus.COMPLETE),
        (20, 21, "spin", "R", False, True, StackStatus.EMPTY),
        (30, 30, "exiting", "Z", False, None, StackStatus.UNREADABLE),
    ]
    assert [f.function for f in dump.tasks[0].frames] == ["worker_thread", "kthread"]
    assert (dump.tasks[1].ppid, dump.tasks[1].cpu, dump.tasks[1].task_flags) == (1, 0, 0x00400000)
    assert any("exited" in w for w in dump.warnings)
    assert any("idle tasks" in w for w in dump.warnings)


def test_snapshot_round_trip_through_a_directory(fake_proc: Path, tmp_path: Path) -> None:
    dump = capture_live(fake_proc)
    out = write_snapshot(dump, tmp_path / "snap")
    assert (out / "kallsyms.txt").read_text() == "ffffffff81000000 T _stext\n"
    again = parse_dump(out)
    assert again.kernel_release == "6.18.44-test"
    assert again.kallsyms_path == str(out / "kallsyms.txt")
    assert list(again.tasks) == list(dump.tasks)
    assert again.metadata["source_format"] == "proc_snapshot"


def deny_stacks(monkeypatch: pytest.MonkeyPatch, which: set[str] | None = None) -> None:
    """Makes `open` of stack files raise PermissionError (root bypasses chmod)."""
    real_open = open

    def fake_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        text = os.fspath(path)
        if text.endswith("/stack") and (which is None or any(w in text for w in which)):
            raise PermissionError(13, "Permission denied", text)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(capture, "open", fake_open, raising=False)


def test_some_unreadable_stacks_are_recorded(fake_proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny_stacks(monkeypatch, {"/20/task/20/"})
    dump = capture_live(fake_proc)
    statuses = {t.tid: t.stack_status for t in dump.tasks}
    assert statuses[20] is StackStatus.UNREADABLE
    assert statuses[10] is StackStatus.COMPLETE
    assert any("unreadable" in w for w in dump.warnings)


def test_no_privilege_is_a_capture_error(fake_proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny_stacks(monkeypatch)
    with pytest.raises(CaptureError, match="needs root") as info:
        capture_live(fake_proc)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, LpcError)


def test_missing_proc_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot list tasks"):
        capture_live(tmp_path / "nothing")


def test_threads_vanishing_mid_read_are_gone(fake_proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    def racing_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path).endswith("/20/task/21/stat"):
            raise ProcessLookupError(3, "No such process")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(capture, "open", racing_open, raising=False)
    spin = next(t for t in capture_live(fake_proc).tasks if t.tid == 21)
    assert (spin.comm, spin.state, spin.stack_status) == ("", None, StackStatus.UNREADABLE)


def test_write_snapshot_refuses_proc_and_sys(fake_proc: Path) -> None:
    dump = capture_live(fake_proc)
    for target in ("/proc/lpc-test", "/sys/lpc-test"):
        with pytest.raises(ValueError, match="never writes"):
            write_snapshot(dump, target)
    assert not os.path.exists("/proc/lpc-test")


def test_tasks_without_ids_cannot_be_recorded(tmp_path: Path) -> None:
    dump = parse_dump(b"Call Trace:\n schedule+0x1/0x2\n")
    with pytest.raises(ValueError, match="no pid"):
        write_snapshot(dump, tmp_path / "x")


@pytest.mark.live
def test_live_capture_of_this_machine(tmp_path: Path) -> None:
    try:
        with open("/proc/self/stack", "rb") as f:
            f.read()
    except OSError:
        pytest.skip("/proc/self/stack is not readable here (needs root)")
    stop = threading.Event()
    sleeper = threading.Thread(target=stop.wait, name="lpc-sleeper", daemon=True)
    sleeper.start()
    try:
        dump = capture_live()
    finally:
        stop.set()
        sleeper.join()
    assert dump.kernel_release == platform.release()
    assert dump.kallsyms_path == "/proc/kallsyms"
    assert dump.skipped_lines == 0
    mine = [t for t in dump.tasks if t.pid == os.getpid()]
    assert len(mine) >= 2 and all(t.comm for t in mine)
    with_frames = [t for t in dump.tasks if t.frames]
    assert len(with_frames) >= len(dump.tasks) // 2
    assert any(t.kthread for t in with_frames) and any(t.kthread is False for t in with_frames)
    kthreadd = next(t for t in dump.tasks if t.pid == 2)
    assert kthreadd.kthread is True and kthreadd.comm == "kthreadd"
    if platform.machine() == "x86_64" and kthreadd.frames:
        # a sleeping kernel thread's stack ends in the fork trampoline
        assert kthreadd.frames[0].function == "kthreadd"
        assert (kthreadd.frames[-1].function or "").startswith("ret_from_fork")
    # the sleeper thread waits on a futex
    assert any("futex" in (f.function or "") for t in mine for f in t.frames)
    out = write_snapshot(dump, tmp_path / "live", copy_kallsyms=False)
    again = parse_dump(out)
    assert [dataclasses.replace(t, line=0) for t in again.tasks] == [
        dataclasses.replace(t, line=0) for t in dump.tasks
    ]
    assert not (out / "kallsyms.txt").exists()


def test_task_equality_ignores_nothing() -> None:
    base = Task(pid=1, tid=1, comm="a", state="S", kthread=None, on_cpu=None, frames=(), stack_status=StackStatus.EMPTY)
    assert base != dataclasses.replace(base, cpu=0)
