"""`lpc simulate`: the matrix (table and JSON), a scenario, a model's liveness, the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from jsonschemas import loads
from lpc.cli import EXIT_OK, EXIT_USAGE, main

CELL_KEYS = {"model", "patch_class", "result", "counterexample", "examples_tried"}


def test_matrix_json_schema_and_cells(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", "--matrix", "--json", "--models", "null,klp", "--budget", "300"])
    assert rc == EXIT_OK
    doc = loads(capsys.readouterr().out, "simulate")
    assert set(doc) == {"schema_version", "cells"} and doc["schema_version"] == 1
    cells = {(c["model"], c["patch_class"]): c for c in doc["cells"]}
    assert len(cells) == 10 and all(set(c) == CELL_KEYS for c in doc["cells"])
    assert {c["patch_class"] for c in doc["cells"]} == {
        "body", "prototype", "semantics_moved", "shared_data", "shared_data_shadow"}
    proto = cells[("null", "prototype")]
    assert proto["result"] == "refuted" and proto["counterexample"]["property"] == "call_pair"
    assert proto["counterexample"]["trace"] and proto["counterexample"]["events"]
    assert 1 <= proto["examples_tried"] <= 300
    held = cells[("klp", "prototype")]
    assert held == {"model": "klp", "patch_class": "prototype", "result": "holds",
                    "counterexample": None, "examples_tried": 300}
    assert cells[("klp", "shared_data")]["result"] == "refuted"


def test_matrix_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--matrix", "--models", "klp", "--budget", "300"]) == EXIT_OK
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("klp "))
    assert row.split()[1:] == ["holds", "holds", "holds", "REFUTED", "REFUTED"]
    assert "5/5 cells as expected" in out
    assert "klp / shared_data: data_format violated" in out


def test_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--model", "null", "--scenario", "S21"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "verdict: as expected" in out and "g@old calls f@new" in out
    assert main(["simulate", "--model", "klp", "--scenario", "S26", "--json"]) == EXIT_OK
    doc = loads(capsys.readouterr().out, "simulate")
    assert doc["facts"]["second_enable"] == "EBUSY" and doc["as_expected"] is True


def test_model_liveness_on_the_reference_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--model", "klp"]) == EXIT_OK
    assert "klp on the reference system: converges after" in capsys.readouterr().out


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "convergence.png"
    assert main(["simulate", "--plot", str(out)]) == EXIT_OK
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "klp: converges after" in text and "kpatch: fails" in text


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate"]) == EXIT_USAGE
    assert main(["simulate", "--model", "klp", "--scenario", "S99"]) == EXIT_USAGE
    assert main(["simulate", "--matrix", "--models", "nope"]) == EXIT_USAGE
    assert "unknown" in capsys.readouterr().err
    assert main(["simulate", "--list"]) == EXIT_OK
    assert "S27: Stack-scan precision" in capsys.readouterr().out
