"""Reproduce the README performance table in one run.

1. compiles and runs the C limit proxy ``../shared/bench/ivlimit.c`` (when it
   and gcc exist) on the same kallsyms: the best single-core figure of eight
   layouts, per K;
2. runs ``benches/test_bench_intervals.py`` (pytest-benchmark) in this same
   session: lpc, numpy.searchsorted, ncls, bisect, intervaltree;
3. prints a Markdown table of ratios (and the absolute ns/query behind them).

    python benches/report.py [--json-out bench.json] [--no-limit]

Medians throughout (ivlimit reports the median of its repetitions). Ratios
are only meaningful within one run on one machine.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIMIT_SOURCE = REPO.parent / "shared" / "bench" / "ivlimit.c"
KALLSYMS_GZ = REPO / "tests" / "data" / "kallsyms-6.18.txt.gz"


def run_limit(queries: int, reps: int, hit: float) -> dict[str, dict[str, float]]:
    """{K: {method: median thr ns}} from the C proxy, or {} when unavailable."""
    if not LIMIT_SOURCE.exists() or shutil.which("gcc") is None:
        print(f"# C limit proxy unavailable ({LIMIT_SOURCE})", file=sys.stderr)
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        kallsyms = Path(tmp) / "kallsyms.txt"  # ivlimit reads plain text
        kallsyms.write_bytes(gzip.decompress(KALLSYMS_GZ.read_bytes()))
        binary = Path(tmp) / "ivlimit"
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(LIMIT_SOURCE)], check=True)
        done = subprocess.run(
            [str(binary), str(kallsyms), str(queries), str(reps), str(hit)],
            check=True,
            capture_output=True,
            text=True,
        )
    figures: dict[str, dict[str, float]] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if line.startswith("#") or len(parts) < 5 or parts[0] == "method":
            continue
        method, k, thr = parts[0], parts[1], float(parts[2])
        if int(parts[4]) != 0:
            raise SystemExit(f"ivlimit reported wrong answers: {line}")
        figures.setdefault(k, {})[method] = thr
    return figures


def run_benchmarks(json_out: Path) -> dict[tuple[str, float, str], float]:
    """{(K, hit, method): median ns per query}."""
    import contextlib

    import pytest

    with contextlib.redirect_stdout(sys.stderr):  # pytest's tables go to stderr
        code = pytest.main(
            [
                str(HERE / "test_bench_intervals.py"),
                "--benchmark-only",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--benchmark-json={json_out}",
            ]
        )
    if code != 0:
        raise SystemExit(f"benchmarks failed (pytest exit {code})")
    data = json.loads(json_out.read_text())
    out: dict[tuple[str, float, str], float] = {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if "queries" not in info:
            continue
        key = (info["k"], float(info["hit"]), info["method"])
        out[key] = bench["stats"]["median"] / info["queries"] * 1e9
    return out


def build_figures(json_out: Path) -> dict[str, dict[str, float]]:
    data = json.loads(json_out.read_text())
    out: dict[str, dict[str, float]] = {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if "operation" in info:
            out.setdefault(info["k"], {})[info["operation"]] = bench["stats"]["median"] * 1e3
            out[info["k"]]["bytes_per_range"] = info["bytes_per_range"]
            out[info["k"]]["ranges"] = info["ranges"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--no-limit", action="store_true")
    parser.add_argument("--limit-reps", type=int, default=5)
    args = parser.parse_args()
    limit = {} if args.no_limit else run_limit(1_000_000, args.limit_reps, 0.10)
    json_out = args.json_out or Path(tempfile.mkdtemp()) / "bench.json"
    ns = run_benchmarks(json_out)
    builds = build_figures(json_out)

    def fig(k: str, hit: float, method: str) -> float:
        return ns.get((k, hit, method), float("nan"))

    print("\n### Batch `find_many`, 1M queries, one thread (10% hits / 90% hits)\n")
    print(
        "| K | lpc ÷ C limit | numpy ÷ lpc | ncls ÷ lpc | intervaltree ÷ lpc | bisect ÷ lpc "
        "| lpc ns/query | C limit ns (best layout) | lpc 2 threads ns/query |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in ["10", "1000", "10000", "all"]:
        c_best = min(limit.get(k, {}).values(), default=float("nan"))
        c_name = min(limit.get(k, {}), key=lambda m: limit[k][m], default="–")
        cells = []
        for hit in (0.10, 0.90):
            cells.append(fig(k, hit, "lpc_batch"))
        lpc10, lpc90 = cells
        row = [
            k,
            f"{lpc10 / c_best:.2f}×" if limit else "–",
            f"{fig(k, 0.10, 'numpy_searchsorted') / lpc10:.1f}× / {fig(k, 0.90, 'numpy_searchsorted') / lpc90:.1f}×",
            f"{fig(k, 0.10, 'ncls') / lpc10:.1f}× / {fig(k, 0.90, 'ncls') / lpc90:.1f}×",
            f"{fig(k, 0.10, 'intervaltree') / lpc10:.0f}× / {fig(k, 0.90, 'intervaltree') / lpc90:.0f}×",
            f"{fig(k, 0.10, 'python_bisect') / lpc10:.0f}× / {fig(k, 0.90, 'python_bisect') / lpc90:.0f}×",
            f"{lpc10:.2f} / {lpc90:.2f}",
            f"{c_best:.2f} ({c_name})" if limit else "–",
            f"{fig(k, 0.10, 'lpc_batch_parallel'):.2f}",
        ]
        print("| " + " | ".join(row) + " |")
    print("\n### Single calls from a Python loop (10% hits)\n")
    print("| K | `tree.find(ip)` ns/call | bisect ns/call | intervaltree ns/call |")
    print("|---|---:|---:|---:|")
    for k in ["10", "1000", "10000", "all"]:
        print(
            f"| {k} | {fig(k, 0.10, 'lpc_find_loop'):.1f} | {fig(k, 0.10, 'python_bisect'):.1f} "
            f"| {fig(k, 0.10, 'intervaltree'):.0f} |"
        )
    print("\n### Build and rebuild\n")
    print("| K | ranges | build from arrays | rebuild +1 range | rebuild −1 id | bytes/range |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, f in builds.items():
        print(
            f"| {k} | {f['ranges']:.0f} | {f['build']:.3f} ms | {f['rebuild_add']:.3f} ms "
            f"| {f['rebuild_remove']:.3f} ms | {f['bytes_per_range']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
