"""Packaging: one version everywhere (Cargo workspace, wheel metadata, the Rust
core, ``lpc --version``) and the stable-ABI build settings the wheel relies on."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lpc
from lpc.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _toml(name: str) -> dict[str, object]:
    with (ROOT / name).open("rb") as f:
        return tomllib.load(f)


def _cargo_version() -> str:
    workspace = _toml("Cargo.toml")["workspace"]
    assert isinstance(workspace, dict)
    version = workspace["package"]["version"]
    assert isinstance(version, str)
    return version


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_prints_the_one_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1, out
    m = re.fullmatch(r"lpc (\S+) \(_core (.+), (\S+) (\S+)\)\n", out)
    assert m is not None, out
    version, build, impl, pyver = m.groups()
    assert version == _cargo_version()
    assert version == importlib.metadata.version("lpc")
    assert version == lpc.__version__
    assert build.startswith(("abi3 ", "cpython-3")), build
    assert pyver == ".".join(map(str, sys.version_info[:3]))


def test_version_through_the_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "lpc", "--version"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.startswith(f"lpc {_cargo_version()} (_core ")


def test_abi3_floor_matches_requires_python() -> None:
    # One cp3XY-abi3 wheel per platform: pyo3's abi3 floor is the oldest Python
    # the package declares, and mypy checks the code against that same floor.
    pyproject = _toml("pyproject.toml")
    project = pyproject["project"]
    assert isinstance(project, dict)
    floor = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert floor is not None
    minor = floor.group(1)
    binding = (ROOT / "rust" / "lpc-py" / "Cargo.toml").read_text()
    assert f'features = ["abi3-py3{minor}"]' in binding
    tool = pyproject["tool"]
    assert isinstance(tool, dict)
    assert tool["mypy"]["python_version"] == f"3.{minor}"
    assert "version" in project["dynamic"]  # maturin takes it from Cargo.toml


def test_one_core_build_beside_the_package() -> None:
    # A checkout built before the abi3 switch keeps `_core.cpython-311-*.so`
    # next to the new `_core.abi3.so`, and CPython imports the interpreter-tagged
    # file first: the fresh build would be silently ignored.
    builds = sorted(p.name for p in Path(lpc.__file__).parent.glob("_core.*"))
    builds = [name for name in builds if not name.endswith(".pyi")]
    assert len(builds) == 1, f"delete the stale build(s) among {builds} (see README, Set-up)"
