"""The JSON Schemas (draft 2020-12) of lpc's JSON outputs, shipped with the package.

Each document's schema is a file of this package; the definitions they share
are in ``common.json``. :func:`schema` returns one self-contained: the shared
definitions it uses copied into its own ``$defs``, so that a validator needs
no other file (``lpc schema NAME`` prints it).
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

__all__ = ["SCHEMAS", "schema"]

#: Each schema's name and the output it describes.
SCHEMAS: dict[str, str] = {
    "check": "lpc check --json (one model)",
    "check-all": "lpc check --model all --json",
    "check-inventory": "lpc check --json without a patch (the task inventory)",
    "check-jsonl": "lpc check --jsonl: each line (header, task, summary)",
    "watch": "lpc watch --json: each line (one per retry)",
    "fleet": "lpc fleet check --json",
    "fleet-jsonl": "lpc fleet check --jsonl: each line (header, host, not_checked, summary)",
    "simulate": "lpc simulate --json (--matrix, or --model M --scenario S)",
    "oracle-compare": "lpc oracle compare --json",
}

_COMMON = "common.json"
_PREFIX = _COMMON + "#/$defs/"


def _load(file: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (resources.files(__package__) / file).read_text(encoding="utf-8"))
    return doc


def _refs(node: Any, out: set[str]) -> Any:
    """``node`` with each reference into common.json made local; the names
    referenced are added to ``out``."""
    if isinstance(node, dict):
        return {k: (_local(v, out) if k == "$ref" and isinstance(v, str) else _refs(v, out))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_refs(v, out) for v in node]
    return node


def _local(ref: str, out: set[str]) -> str:
    if not ref.startswith(_PREFIX):
        return ref
    name = ref[len(_PREFIX):]
    out.add(name)
    return "#/$defs/" + name


def schema(name: str) -> dict[str, Any]:
    """The schema of the output ``name`` (a key of :data:`SCHEMAS`), self-contained."""
    if name not in SCHEMAS:
        raise KeyError(f"unknown schema {name!r} (known: {', '.join(SCHEMAS)})")
    used: set[str] = set()
    doc: dict[str, Any] = _refs(_load(f"{name}.json"), used)
    common = _load(_COMMON)["$defs"]
    defs = doc.setdefault("$defs", {})
    clash = sorted(set(defs) & set(common))
    if clash:
        raise ValueError(f"{name}.json: $defs {', '.join(clash)} would shadow {_COMMON}'s")
    todo = sorted(used)
    while todo:  # the shared definitions used, and those they use in turn
        key = todo.pop()
        if key in defs:
            continue
        if key not in common:
            raise ValueError(f"{name}.json: no definition {key} in {_COMMON}")
        defs[key] = copy.deepcopy(common[key])
        _find_local(defs[key], todo)
    return doc


def _find_local(node: Any, out: list[str]) -> None:
    """Add to ``out`` each definition ``node`` references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out.append(ref[len("#/$defs/"):])
        for v in node.values():
            _find_local(v, out)
    elif isinstance(node, list):
        for v in node:
            _find_local(v, out)
