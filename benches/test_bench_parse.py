"""Parse throughput: lpc's Rust parsers vs a plain Python ``re`` parser, same run.

The ≥100 MB inputs are built at bench time in a temporary directory by
repeating the real samples (the recorded /proc snapshot, and every dmesg
sample of tests/data): nothing large is committed. Run with
``pytest benches/test_bench_parse.py``; the figures (MB/s of both parsers and
their ratio) land in the benchmark's ``extra_info``. No timing is asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import re_baseline

from lpc.dump import parse_dump

DATA = Path(__file__).parent.parent / "tests" / "data"
TARGET_BYTES = 100_000_000


def unit(fmt: str) -> bytes:
    if fmt == "proc_snapshot":
        return (DATA / "procdump-6.18" / "stacks.txt").read_bytes()
    names = sorted(DATA.glob("hung-task-*.txt")) + sorted(DATA.glob("rcu-stall-*.txt")) + sorted(DATA.glob("sysrq-t-*.txt"))
    return b"".join(p.read_bytes() for p in names)


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for fmt in ("proc_snapshot", "dmesg"):
        piece = unit(fmt)
        path = tmp_path_factory.mktemp("bench") / f"{fmt}.txt"
        path.write_bytes(piece * (TARGET_BYTES // len(piece) + 1))
        out[fmt] = path
    return out


@pytest.mark.parametrize("fmt", ["proc_snapshot", "dmesg"])
def test_bench_parse(benchmark: Any, big_inputs: dict[str, Path], fmt: str) -> None:
    data = big_inputs[fmt].read_bytes()
    megabytes = len(data) / 1e6
    dump = benchmark.pedantic(parse_dump, args=(data, fmt), rounds=5, iterations=1, warmup_rounds=1)
    lpc_seconds = benchmark.stats.stats.min

    re_seconds = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        base = re_baseline.parse(data, fmt)
        re_seconds = min(re_seconds, time.perf_counter() - start)

    benchmark.extra_info.update(
        input_mb=round(megabytes, 1),
        lpc_mb_per_s=round(megabytes / lpc_seconds, 1),
        re_mb_per_s=round(megabytes / re_seconds, 1),
        speedup_vs_re=round(re_seconds / lpc_seconds, 1),
        tasks=dump.task_count,
        frames=dump.frame_count,
        re_tasks=len(base.pids),
        re_frames=len(base.functions),
    )
    assert megabytes >= 100
    if fmt == "proc_snapshot":  # the simple grammar: both parsers must agree exactly
        assert (len(base.pids), len(base.functions)) == (dump.task_count, dump.frame_count)
        assert base.offsets == dump.frame_offsets.tolist()
