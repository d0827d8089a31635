"""The JSON Schemas shipped in the package, ``lpc schema``, and ``check --jsonl``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from jsonschemas import lines as json_lines
from jsonschemas import loads, validate
from lpc.cli import main
from lpc.schemas import SCHEMAS, schema

DATA = Path(__file__).parent / "data"
SNAP = str(DATA / "procdump-6.18")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_each_schema_is_package_data_and_a_valid_2020_12_schema(name: str) -> None:
    """Loaded through importlib.resources (as an installed wheel would be), each
    file is a draft 2020-12 schema and its bundled form needs no other file."""
    raw = json.loads((resources.files("lpc.schemas") / f"{name}.json").read_text())
    assert raw["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    bundled = schema(name)
    jsonschema.Draft202012Validator.check_schema(bundled)
    assert "common.json" not in json.dumps(bundled)  # self-contained
    assert bundled["$id"] == raw["$id"]


def test_lpc_schema_lists_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()] == list(SCHEMAS)
    for name in SCHEMAS:
        code, out, _ = run(capsys, "schema", name)
        assert code == 0 and json.loads(out) == schema(name)
    code, out, err = run(capsys, "schema", "checks")
    assert code == 2 and out == "" and "unknown schema 'checks'" in err


@pytest.fixture(scope="module")
def check_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A check with the dump's kallsyms: its patch function has addresses."""
    import gzip
    import io

    from lpc.check import CheckRequest, run as check_run
    from lpc.patch import Patch
    from lpc.report import render_json

    kallsyms = tmp_path_factory.mktemp("sym") / "kallsyms.txt"
    kallsyms.write_bytes(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))
    out = io.StringIO()
    render_json(check_run(CheckRequest(dump=SNAP, symbols=str(kallsyms),
                                       patch=Patch.parse("worker_thread"))), out)
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


@pytest.mark.parametrize("spoil", [
    lambda d: d["patch"]["functions"][0].update(start=0xFFFFFFFF81381800),  # an int address
    lambda d: d["patch"]["functions"][0].update(start="ffffffff81381800"),  # no 0x
    lambda d: d["tasks"][0].update(surprise=1),  # a key the schema does not name
    lambda d: d["tasks"][0].pop("outlook"),
    lambda d: d["tasks"][0].update(verdict="maybe"),
    lambda d: d["summary"].update(converges="yes"),
    lambda d: d.update(models={}),  # a check-all key in a one-model document
    lambda d: d.update(schema_version=1),
    lambda d: d["source"].pop("description"),
], ids=["int-address", "hex-without-0x", "extra-task-key", "no-outlook", "bad-verdict",
        "converges-string", "foreign-key", "schema-version", "no-description"])
def test_the_check_schema_rejects_what_lpc_never_writes(check_doc: dict[str, Any],
                                                        spoil: Any) -> None:
    validate(check_doc, "check")  # as written: valid
    doc = json.loads(json.dumps(check_doc))
    spoil(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "check")


def test_addresses_are_hex_strings_and_counts_integers(check_doc: dict[str, Any]) -> None:
    (f,) = check_doc["patch"]["functions"]
    assert (f["start"], f["end"]) == ("0xffffffff81381800", "0xffffffff81381b10")
    assert isinstance(check_doc["summary"]["tasks"], int)
    assert all(isinstance(t["pid"], int) for t in check_doc["tasks"])


def test_jsonl_is_the_json_answer_line_by_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Header, then every task under every model in the order of --json's
    documents, then the summary: the same facts as --json, no line a list."""
    base = ["check", "--dump", SNAP, "--patch", "worker_thread", "--model", "all"]
    code_json, out, _ = run(capsys, *base, "--json")
    whole = loads(out, "check-all")
    code, out, _ = run(capsys, *base, "--jsonl")
    lines = json_lines(out, "check-jsonl")
    assert code == code_json == 1
    header, tasks, summary = lines[0], lines[1:-1], lines[-1]
    assert header["kind"] == "header" and summary["kind"] == "summary"
    assert {x["kind"] for x in tasks} == {"task"}
    assert list(header["models"]) == list(whole["models"]) == sorted(whole["models"])
    order = [t["model"] for t in tasks]
    assert order == sorted(order)  # model by model, in the header's order
    assert header["patch"] == whole["patch"] and header["exit_model"] == "klp"
    assert summary["converges"] is False  # klp's
    for name, doc in whole["models"].items():
        mine = [dict(t) for t in tasks if t["model"] == name]
        for t in mine:
            t["kind"] = t.pop("task_kind")
            del t["model"]
        assert mine == doc["tasks"], name
        assert summary["models"][name] == doc["summary"]
        assert header["models"][name] == {k: doc[k] for k in
                                          ("cell", "params", "model_profile", "warnings")}
    assert len(tasks) == sum(len(d["tasks"]) for d in whole["models"].values())
    # --exit-model: the summary follows it, and so does the exit status
    code, out, _ = run(capsys, *base, "--jsonl", "--exit-model", "null")
    last = json_lines(out, "check-jsonl")[-1]
    assert (last["exit_model"], last["converges"], code) == ("null", True, 0)


def test_jsonl_of_one_model_carries_the_machine_and_module(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import shutil

    snap = tmp_path / "snap"
    shutil.copytree(DATA / "procdump-6.18", snap)
    (snap / "livepatch.txt").write_text("# lpc livepatch state 1\nabsent\n")
    code, out, _ = run(capsys, "check", "--dump", str(snap), "--patch", "cmdline_proc_show",
                       "--jsonl")
    lines = json_lines(out, "check-jsonl")
    assert lines[0]["machine"]["refusals"][0]["code"] == "ENODEV"
    assert list(lines[0]["models"]) == ["klp"] and lines[-1]["converges"] is False
    assert code == 1
