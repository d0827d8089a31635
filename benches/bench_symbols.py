"""Load time of a real 122k-line kallsyms: lpc (Rust core) against plain Python.

Run: ``pytest benches/bench_symbols.py --benchmark-only``. The baseline does
the same work the core does (parse, per-object sizes to the next higher
address, sympos per object), written the obvious Python way.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from lpc.symbols import Symbols

KALLSYMS_GZ = Path(__file__).parent.parent / "tests" / "data" / "kallsyms-6.18.txt.gz"


@pytest.fixture(scope="module")
def kallsyms_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "kallsyms.txt"
    path.write_bytes(gzip.decompress(KALLSYMS_GZ.read_bytes()))
    return path


def python_baseline(path: Path) -> tuple[list[int], list[int], list[int]]:
    """Addresses, sizes and sympos the plain-Python way."""
    addresses: list[int] = []
    names: list[str] = []
    modules: list[str | None] = []
    malformed = 0
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3:
                malformed += 1
                continue
            try:
                addresses.append(int(fields[0], 16))
            except ValueError:
                malformed += 1
                continue
            names.append(fields[2])
            modules.append(fields[3].strip("[]") if len(fields) > 3 else None)
    n = len(addresses)
    order = sorted(range(n), key=lambda i: (modules[i] or "", addresses[i]))
    sizes = [0] * n
    # Walk runs of equal (module, address); each run ends at the next run.
    k = 0
    while k < n:
        i = order[k]
        end = k + 1
        while end < n and modules[order[end]] == modules[i] and addresses[order[end]] == addresses[i]:
            end += 1
        if end < n and modules[order[end]] == modules[i]:
            size = addresses[order[end]] - addresses[i]
            for r in order[k:end]:
                sizes[r] = size
        k = end
    seen: dict[tuple[str | None, str], int] = {}
    sympos = [0] * n
    for i in range(n):
        key = (modules[i], names[i])
        seen[key] = seen.get(key, 0) + 1
        sympos[i] = seen[key]
    return addresses, sizes, sympos


def test_lpc_from_kallsyms(benchmark: BenchmarkFixture, kallsyms_file: Path) -> None:
    table = benchmark(Symbols.from_kallsyms, kallsyms_file)
    assert len(table) == 64_194


def test_plain_python_baseline(benchmark: BenchmarkFixture, kallsyms_file: Path) -> None:
    addresses, sizes, _ = benchmark(python_baseline, kallsyms_file)
    assert len(addresses) == 122_059
    worker = addresses.index(0xFFFFFFFF81381800)
    assert sizes[worker] == 0x310
