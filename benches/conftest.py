"""Shared fixtures of the benchmarks: real kallsyms functions and workloads."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Functions, Workload, load_functions, make_workload  # noqa: E402


@cache
def functions() -> Functions:
    return load_functions()


@cache
def workload(k: int | str, hit_fraction: float) -> Workload:
    f = functions()
    return make_workload(f, len(f.starts) if k == "all" else int(k), hit_fraction=hit_fraction)


@pytest.fixture(scope="session")
def kallsyms_functions() -> Functions:
    return functions()
