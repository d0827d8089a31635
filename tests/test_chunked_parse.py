"""The chunked (multi-threaded) parses, reached from Python.

An input of at least 4 MiB (``PARALLEL_MIN_BYTES``, rust/lpc-core/src/dump/
mod.rs) is parsed on ``parse_threads()`` threads: a kernel log is cut at its
``task:`` header lines (``dmesg::split_at_task_headers``), a recorded /proc
snapshot at its ``# pid=`` headers, every chunk parsed on its own thread and
the chunks merged (``parse_chunks_with``). The result must equal the
sequential parse, and — for self-contained samples laid end to end — the
per-sample parses laid end to end.

``parse_threads()`` is one per core in ``std::thread::available_parallelism()``,
which follows the calling thread's CPU affinity: pinning the test's thread to
one CPU forces the sequential parse of the same bytes, so both paths are
compared on one input. (Checked by hand while writing this: parsing 100 MB
from Python shows one extra thread in /proc/self/task with two CPUs allowed,
none with one.) On a machine that gives this process a single CPU the chunked
path cannot be reached and those tests skip.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lpc.dump import Dump, Task, parse_dump

DATA = Path(__file__).parent / "data"
PARALLEL_MIN_BYTES = 4 << 20
#: Kernel logs with 5.9+ ``task:`` headers (where a chunk may start) and one
#: without them, from four kernel generations and two architectures.
KERNEL_LOGS = [
    "hung-task-6.18.txt",
    "sysrq-t-6.x-i915-modules.txt",
    "sysrq-t-5.9-header-change-journald.txt",
    "hung-task-arm64-6.x-task-flags.txt",
    "hung-task-6.0-syzbot-symbolized.txt",
    "hung-task-5.3-x86.txt",
]
#: Appended once after the copies: its kernel release is named only in the
#: last chunk, so the merge must carry it over from there.
LAST_LOG = "rcu-stall-6.10-nmi.txt"
SNAPSHOT = DATA / "procdump-6.18"

#: Every column of a Dump that a parse fills.
COLUMNS = [
    "comm_ids", "frame_context_codes", "frame_inlined", "frame_lines", "frame_offsets",
    "frame_reliable", "frame_tokens", "kthreads", "on_cpus", "pids", "ppids", "stack_status_codes",
    "states", "task_flags", "task_lines", "tgids", "thread_flags", "tids", "token_addresses",
    "token_function_ids", "token_has_address", "token_module_ids", "token_symbol_offsets",
    "token_symbol_sizes", "cpus", "user_regs",
]
VALUES = ["source_format", "kernel_release", "task_count", "frame_count", "token_count",
          "comm_names", "names", "skipped_lines", "skipped_samples", "warnings"]

needs_two_cpus = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="one CPU: the parse is never chunked here"
)


@contextmanager
def one_cpu() -> Iterator[None]:
    """This thread pinned to one CPU: the Rust parser then uses one thread."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def assert_same(a: Dump, b: Dump) -> None:
    for name in VALUES:
        assert getattr(a, name) == getattr(b, name), name
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def shifted(task: Task, lines: int) -> Task:
    frames = tuple(dataclasses.replace(f, line=f.line + lines) for f in task.frames)
    lost_line = task.lost_line + lines if task.lost_line else 0
    return dataclasses.replace(task, line=task.line + lines, frames=frames, lost_line=lost_line)


def laid_end_to_end(parts: list[tuple[Dump, int]], copies: int,
                    last: tuple[Dump, int] | None = None) -> list[Task]:
    """The tasks of ``parts`` (each a dump and its line count), as they read
    when the texts are concatenated ``copies`` times, then ``last`` once."""
    out, lines = [], 0
    for dump, count in [*parts * copies, *([last] if last else [])]:
        out.extend(shifted(t, lines) for t in dump.tasks)
        lines += count
    return out


# ---- a kernel log of at least 4 MiB -------------------------------------------------------------


KernelLog = tuple[bytes, int, list[tuple[Dump, int]], tuple[Dump, int]]


@pytest.fixture(scope="module")
def kernel_log() -> KernelLog:
    """The samples laid end to end until past 4 MiB, then LAST_LOG: the text,
    the number of copies, and each sample's parse and line count."""
    texts = [(DATA / name).read_bytes() for name in KERNEL_LOGS]
    tail = (DATA / LAST_LOG).read_bytes()
    assert all(t.endswith(b"\n") for t in [*texts, tail])
    unit = b"".join(texts)
    copies = PARALLEL_MIN_BYTES // len(unit) + 2
    parts = [(parse_dump(t), t.count(b"\n")) for t in texts]
    return unit * copies + tail, copies, parts, (parse_dump(tail), tail.count(b"\n"))


@needs_two_cpus
@pytest.mark.parametrize("via", ["path", "bytes"])
def test_large_kernel_log_chunked_equals_sequential(
    via: str, kernel_log: KernelLog, tmp_path: Path
) -> None:
    data, _, _, _ = kernel_log
    assert len(data) >= PARALLEL_MIN_BYTES
    path = tmp_path / "kern.log"
    path.write_bytes(data)
    source: Path | bytes = path if via == "path" else data
    chunked = parse_dump(source)
    with one_cpu():
        sequential = parse_dump(source)
    assert chunked.source_format == "dmesg"
    assert_same(chunked, sequential)


def test_large_kernel_log_is_the_samples_end_to_end(kernel_log: KernelLog, tmp_path: Path
                                                   ) -> None:
    data, copies, parts, last = kernel_log
    every = [*parts * copies, last]
    path = tmp_path / "kern.log"
    path.write_bytes(data)
    for big in (parse_dump(path), parse_dump(data)):
        # Task by task and frame by frame, line numbers included.
        assert list(big.tasks) == laid_end_to_end(parts, copies, last)
        assert big.skipped_lines == sum(d.skipped_lines for d, _ in every)
        expected_samples, lines = [], 0
        for d, count in every:
            expected_samples.extend((n + lines, text) for n, text in d.skipped_samples)
            lines += count
        assert list(big.skipped_samples) == expected_samples[: len(big.skipped_samples)]
        assert len(big.skipped_samples) == min(len(expected_samples), 20)
        # The first release named is the dump's; each other one is a warning, in order.
        releases = list(dict.fromkeys(d.kernel_release for d, _ in every if d.kernel_release))
        assert releases[-1] == last[0].kernel_release == "6.10.0-rc5-00257-g88d8f64b9f5f-dirty"
        assert big.kernel_release == releases[0]
        mixes = [w for w in big.warnings if w.startswith("the dump mixes kernel releases")]
        assert mixes == [f"the dump mixes kernel releases ({releases[0]}, {r}); the first is "
                         "reported" for r in releases[1:]]
        # Every copy after the first repeats its tasks.
        tids = [t.tid for d, _ in every for t in d.tasks if t.tid is not None]
        repeats = len(tids) - len(set(tids))
        assert (f"{repeats} task header(s) repeat a task already in the dump (e.g. a hung-task "
                "report followed by SysRq-t): every occurrence is kept") in big.warnings
        own = {w for d, _ in every for w in d.warnings
               if not w.startswith(("the dump mixes", "1 task header(s) repeat"))}
        assert own <= set(big.warnings)


# ---- a recorded snapshot directory of at least 4 MiB -------------------------------------------------


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    text = (SNAPSHOT / "stacks.txt").read_bytes()
    copies = PARALLEL_MIN_BYTES // len(text) + 2
    directory = tmp_path_factory.mktemp("snapshot")
    (directory / "stacks.txt").write_bytes(text * copies)
    shutil.copy(SNAPSHOT / "meta.txt", directory / "meta.txt")
    return directory, copies


@needs_two_cpus
@pytest.mark.parametrize("via", ["directory", "bytes"])
def test_large_snapshot_chunked_equals_sequential(via: str, big_snapshot: tuple[Path, int]) -> None:
    directory, _ = big_snapshot
    source: Path | bytes = (directory if via == "directory"
                            else (directory / "stacks.txt").read_bytes())
    chunked = parse_dump(source)
    with one_cpu():
        sequential = parse_dump(source)
    assert chunked.source_format == "proc_snapshot"
    assert_same(chunked, sequential)


def test_large_snapshot_directory_is_the_sample_repeated(big_snapshot: tuple[Path, int]) -> None:
    directory, copies = big_snapshot
    one = parse_dump(SNAPSHOT)
    lines = (SNAPSHOT / "stacks.txt").read_bytes().count(b"\n")
    for big in (parse_dump(directory), parse_dump((directory / "stacks.txt").read_bytes())):
        assert list(big.tasks) == laid_end_to_end([(one, lines)], copies)
        assert big.skipped_lines == copies * one.skipped_lines
    big = parse_dump(directory)
    # The directory's meta.txt names the release; the stacks alone cannot.
    assert big.kernel_release == one.kernel_release == "6.18.44-fc-v657"
    assert big.metadata == one.metadata
    assert big.warnings == one.warnings
