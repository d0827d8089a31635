"""`lpc check --dump` end to end on a 100 MB recorded /proc snapshot, same run as
its baselines.

The snapshot directory (stacks.txt built by repeating the real 6.18 snapshot
to ≥ 100 MB — 427,735 tasks, 1.9M frames — plus that machine's kallsyms), a
100 MB kernel log (every SysRq-t / hung-task / RCU-stall sample repeated) and
a 100 MB Debian 6.1 SysRq-t log (every oracle capture under tests/data/oracle,
``[ seconds]`` timestamps, pids renumbered per copy so that no two tasks share
one: grouping gains less) are made at bench time in a temporary directory. Each round runs the real
command in a fresh interpreter, as an engineer would (``python -m lpc check
--dump DIR --patch worker_thread``: startup, imports, read, parse, symbols,
scan, every task judged, the report printed), and compares it with, in the
same run:

* the interpreter floor: ``python -c "import numpy"`` (lpc's columns are numpy
  arrays, so no lpc command can start faster);
* the plain-``re`` parser of ``benches/re_baseline.py`` merely *parsing* the
  same stacks (no symbols, no verdicts), in-process.

Run with ``pytest benches/test_bench_check.py``; figures land in
``extra_info``, and ``-s`` prints each case's ratio on one line
(``pytest benches/test_bench_check.py -k distinct --benchmark-only -s``).
No timing is asserted.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import re_baseline

DATA = Path(__file__).parent.parent / "tests" / "data"
TARGET_BYTES = 100_000_000


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bigsnap")
    piece = (DATA / "procdump-6.18" / "stacks.txt").read_bytes()
    (root / "stacks.txt").write_bytes(piece * (TARGET_BYTES // len(piece) + 1))
    (root / "meta.txt").write_bytes((DATA / "procdump-6.18" / "meta.txt").read_bytes())
    (root / "kallsyms.txt").write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    return root


def run(argv: list[str], expect: int) -> None:
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    assert done.returncode == expect, done.stderr.decode()


def best_wall(argv: list[str], rounds: int, expect: int) -> float:
    """Best wall time of ``rounds`` runs of a command, after one warm-up run."""
    run(argv, expect)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run(argv, expect)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kernel-log sample (SysRq-t, hung-task, RCU stall) repeated to 100 MB."""
    names = sorted(DATA.glob("hung-task-*.txt")) + sorted(DATA.glob("rcu-stall-*.txt"))
    piece = b"".join(p.read_bytes() for p in names + sorted(DATA.glob("sysrq-t-*.txt")))
    path = tmp_path_factory.mktemp("biglog") / "dmesg.txt"
    path.write_bytes(piece * (TARGET_BYTES // len(piece) + 1))
    return path


PID_FIELD = re.compile(rb"(?<=\s)(pid|tgid|ppid):(\s*)(\d+)")
PID_STRIDE = 1000  # above every pid in the oracle captures (max 226)


def renumber(text: bytes, base: int) -> bytes:
    """Shift the ``pid:``/``tgid:``/``ppid:`` fields of 5.9+ ``task:`` headers by ``base``.

    ``ppid:0`` (the parent of init and kthreadd) stays 0; every other pid moves,
    so tasks of different copies never share a pid.
    """

    def shift(m: re.Match[bytes]) -> bytes:
        n = int(m.group(3))
        if m.group(1) == b"ppid" and n == 0:
            return m.group(0)
        return m.group(1) + b":" + m.group(2) + str(n + base).encode()

    return b"".join(
        PID_FIELD.sub(shift, line) if b"task:" in line else line for line in text.splitlines(keepends=True)
    )


@pytest.fixture(scope="module")
def big_oracle_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every 6.1 oracle SysRq-t capture, laid end to end to 100 MB, pids distinct per copy.

    The captures (``tests/data/oracle/*/*sysrq*.txt``: Debian 6.1 under qemu,
    ``[ seconds]`` timestamps) are repeated; each piece of each copy gets its own
    pid range (``PID_STRIDE`` apart), so no two tasks in the file share a pid and
    grouping by pid cannot help.
    """
    pieces = [p.read_bytes() for p in sorted(DATA.glob("oracle/*/*sysrq*.txt"))]
    assert pieces
    path = tmp_path_factory.mktemp("bigoracle") / "dmesg.txt"
    written = 0
    base = 0
    with path.open("wb") as out:
        while written < TARGET_BYTES:
            for piece in pieces:
                chunk = renumber(piece, base)
                out.write(chunk)
                written += len(chunk)
                base += PID_STRIDE
    return path


CASES = {
    "snapshot_dir_with_kallsyms": ("big_snapshot", "proc_snapshot"),
    "stacks_file_by_name": ("big_snapshot", "proc_snapshot"),
    "dmesg_log_by_name": ("big_log", "dmesg"),
    "dmesg_6_1_distinct_pids": ("big_oracle_log", "dmesg"),
}


@pytest.mark.parametrize("how", list(CASES))
def test_bench_check_end_to_end(benchmark: Any, request: pytest.FixtureRequest, how: str) -> None:
    fixture, fmt = CASES[how]
    dump: Path = request.getfixturevalue(fixture)
    if how == "stacks_file_by_name":
        dump = dump / "stacks.txt"
    argv = [sys.executable, "-m", "lpc", "check", "--dump", str(dump), "--patch", "worker_thread"]
    # Exit 1: kworkers sleep in worker_thread forever, so the transition is blocked.
    benchmark.pedantic(run, args=(argv, 1), rounds=7, iterations=1, warmup_rounds=1)
    lpc_seconds = benchmark.stats.stats.min

    floor = best_wall([sys.executable, "-c", "import numpy"], 5, 0)
    data = (dump / "stacks.txt" if dump.is_dir() else dump).read_bytes()
    start = time.perf_counter()
    re_baseline.parse(data, fmt)
    re_seconds = time.perf_counter() - start

    benchmark.extra_info.update(
        input_mb=round(len(data) / 1e6, 1),
        end_to_end_s=round(lpc_seconds, 3),
        numpy_import_floor_s=round(floor, 3),
        re_parse_only_s=round(re_seconds, 3),
        re_parse_only_over_lpc=round(re_seconds / lpc_seconds, 1),
        lpc_over_floor=round(lpc_seconds / floor, 1),
        lpc_mb_per_s=round(len(data) / 1e6 / lpc_seconds, 1),
    )
    print(
        f"\n{how}: {len(data) / 1e6:.1f} MB, lpc end to end {lpc_seconds:.3f} s, "
        f"re parse only {re_seconds:.3f} s, ratio {re_seconds / lpc_seconds:.2f}x, floor {floor:.3f} s"
    )
    assert len(data) >= 100_000_000
