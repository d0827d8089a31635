"""``lpc fleet check`` on a local Dask cluster against a plain loop, same run.

A fleet of 2,000 snapshot directories is generated once into a temporary
directory from the real 6.18 /proc snapshot (tests/data/procdump-6.18): each
host keeps a random share of the recorded tasks, repeated 1-4 times under new
pids (so hosts differ in size), some hosts' stacks have a frame renamed (their
kworkers or shells sleep elsewhere, so verdicts differ), and hosts are spread
over two kernel releases whose symbol table (the real 6.18 kallsyms) sits in
a ``--symbols-dir``.

Compared, on the same hosts in the same run:

* the fleet: :func:`lpc.fleet.run_fleet` on a LocalCluster of one worker
  process per core (one thread each, forked), four batches per worker
  cut by bytes;
* the loop: one process calling :func:`lpc.fleet.check_host` (which calls
  ``lpc.check.run_loaded``, ``lpc check``'s own path) for each host in turn,
  each symbol table read once as in a worker.

Then the Dask layer's own cost per host: the same two on 2,000 trivially
small snapshots (one task each), where nearly all time is the layer's.

Loop and fleet alternate ``ROUNDS`` times (3; ``LPC_BENCH_ROUNDS``); the
figures are medians, the ratios the median of each round's own.

``pytest benches/test_bench_fleet.py -s -p no:cacheprovider``: the figures
print on stderr and land in ``extra_info``. No timing is asserted (shared CI
machines), but both sides must give the same per-host results.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from lpc import fleet  # noqa: E402
from lpc.fleet import FleetRequest, check_host, find_dumps, run_fleet  # noqa: E402
from lpc.patch import Patch  # noqa: E402

DATA = Path(__file__).parent.parent / "tests" / "data"
#: ``LPC_BENCH_FLEET_HOSTS`` sets another fleet size (docs/fleet.md's 20,000).
HOSTS = int(os.environ.get("LPC_BENCH_FLEET_HOSTS", "2000"))
RELEASES = ("6.18.44-fc-v657", "6.18.45-fc-v700")
PATCH = "do_wait,worker_thread,do_epoll_wait"
RENAMES = (("worker_thread", "rescuer_thread"), ("do_wait", "do_nanosleep"))


def _blocks() -> list[tuple[str, list[str]]]:
    """The recorded snapshot's tasks: each header line and its frames."""
    text = (DATA / "procdump-6.18" / "stacks.txt").read_text()
    out = []
    for chunk in text.strip().split("\n\n"):
        lines = chunk.splitlines()
        out.append((lines[0], lines[1:]))
    return out


def _write_host(dst: Path, blocks: list[tuple[str, list[str]]], release: str,
                rng: random.Random, small: bool) -> None:
    dst.mkdir()
    meta = (DATA / "procdump-6.18" / "meta.txt").read_text()
    meta = meta.replace("kernel_release=6.18.44-fc-v657", f"kernel_release={release}")
    if small:
        chosen = [blocks[rng.randrange(len(blocks))]]
    else:
        share = rng.uniform(0.5, 1.0)
        chosen = [b for b in blocks if rng.random() < share] * rng.randint(1, 4)
    rename = rng.choice(RENAMES) if rng.random() < 0.3 else None
    parts = []
    for pid, (header, frames) in enumerate(chosen, start=100):
        fields = header.split()
        fields = [f"pid={pid}" if f.startswith("pid=") else f"tid={pid}" if f.startswith("tid=")
                  else f for f in fields]
        body = "\n".join(frames)
        if rename is not None:
            body = body.replace(rename[0] + "+", rename[1] + "+")
        parts.append(" ".join(fields) + ("\n" + body if body else ""))
    (dst / "stacks.txt").write_text("\n\n".join(parts) + "\n")
    (dst / "modules.txt").write_text("")
    (dst / "meta.txt").write_text(meta)


def _make_fleet(root: Path, small: bool) -> Path:
    rng = random.Random(15)
    blocks = _blocks()
    hosts = root / "hosts"
    hosts.mkdir()
    for i in range(HOSTS):
        _write_host(hosts / f"host-{i:05d}", blocks, RELEASES[i % len(RELEASES)], rng, small)
    kallsyms = gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes())
    for release in RELEASES:
        (root / "symbols" / release).mkdir(parents=True)
        (root / "symbols" / release / "kallsyms").write_bytes(kallsyms)
    return root


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = _make_fleet(tmp_path_factory.mktemp("fleet"), small=False)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = _make_fleet(tmp_path_factory.mktemp("small"), small=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _rss_kb() -> int:
    """This process's resident set now, in KiB (Linux's /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _loop(paths: list[str], request: FleetRequest) -> tuple[float, list[dict[str, Any]]]:
    fleet._SYMBOLS.clear()  # the loop reads each table once, as a worker does
    t = time.perf_counter()
    out = [check_host(p, request) for p in paths]
    return time.perf_counter() - t, out


#: Loop and fleet alternate this many times (``LPC_BENCH_ROUNDS``): the shared
#: machine's speed drifts by 20 % from minute to minute, so one pair is luck.
ROUNDS = int(os.environ.get("LPC_BENCH_ROUNDS", "3"))


def _compare(root: Path, label: str) -> dict[str, Any]:
    paths = find_dumps(str(root / "hosts" / "*/"))
    assert len(paths) == HOSTS
    request = FleetRequest(Patch.parse(PATCH), symbols_dir=str(root / "symbols"))
    rounds = []
    for _ in range(ROUNDS):
        loop_s, serial = _loop(paths, request)
        fleet._SYMBOLS.clear()  # forked workers would inherit the loop's tables
        rss = _rss_kb()
        t = time.perf_counter()
        result = run_fleet(paths, request, log=lambda m: None)
        total_s = time.perf_counter() - t
        client_kb_per_host = (_rss_kb() - rss) / HOSTS
        assert not result.errors and len(result.hosts) == HOSTS
        by_dump = {h["dump"]: h for h in result.hosts}
        assert all(by_dump[h["dump"]]["summaries"] == h["summaries"] for h in serial)
        rounds.append((loop_s, result.check_s, result.startup_s, total_s))
        print(f"  {label}, round {len(rounds)}: loop {loop_s:.2f} s, fleet {total_s:.2f} s "
              f"(start {result.startup_s:.2f} s): {loop_s / total_s:.2f}x", file=sys.stderr)
    loop_s, check_s, startup_s, total_s = (statistics.median(r[i] for r in rounds)
                                            for i in range(4))
    tasks = sum(h["summaries"]["klp"]["tasks"] for h in serial)
    figures = {
        "hosts": HOSTS, "tasks": tasks, "workers": result.workers, "cores": os.cpu_count(),
        "rounds": ROUNDS,
        "loop_s": round(loop_s, 3), "fleet_check_s": round(check_s, 3),
        "fleet_startup_s": round(startup_s, 3), "fleet_total_s": round(total_s, 3),
        # Medians of each round's own ratio: both sides of a round ran within seconds.
        "ratio_check": round(statistics.median(r[0] / r[1] for r in rounds), 2),
        "ratio_with_startup": round(statistics.median(r[0] / r[3] for r in rounds), 2),
        "ratio_with_startup_min": round(min(r[0] / r[3] for r in rounds), 2),
        "loop_ms_per_host": round(1000 * loop_s / HOSTS, 3),
        "fleet_ms_per_host": round(1000 * check_s / HOSTS, 3),
        # Worker-seconds spent per host beyond the loop's own work: the Dask layer.
        "dask_overhead_ms_per_host": round(
            1000 * statistics.median(r[1] * result.workers - r[0] for r in rounds) / HOSTS, 3),
        "converge": result.counts()[True], "do_not": result.counts()[False],
        # The client's resident memory grown by the last round's result (the
        # earlier rounds' are freed by then, and the allocator keeps their pages).
        "client_kb_per_host_last_round": round(client_kb_per_host, 2),
    }
    print(f"\n{label}: {figures}", file=sys.stderr)
    return figures


def test_fleet_vs_loop(fleet_root: Path, benchmark: Any) -> None:
    figures = benchmark.pedantic(_compare, args=(fleet_root, f"{HOSTS:,} hosts"), rounds=1,
                                 iterations=1)
    benchmark.extra_info.update(figures)
    assert figures["converge"] + figures["do_not"] <= HOSTS
    assert figures["do_not"] > 0 and figures["converge"] > 0  # the hosts do differ


def test_dask_layer_per_host(small_root: Path, benchmark: Any) -> None:
    figures = benchmark.pedantic(_compare, args=(small_root, f"{HOSTS:,} one-task hosts"),
                                 rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
