"""Validate lpc's JSON outputs against the schemas the package ships (lpc.schemas).

Every test that parses a JSON output of lpc goes through :func:`validate` (or
:func:`loads` / :func:`lines`), so a change of shape that the schema does not
describe fails the test that produced it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from lpc.schemas import schema


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    checker: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(doc)
    return checker


def validate(doc: Any, name: str) -> Any:
    """``doc`` if it is valid under the schema ``name``; else jsonschema's ValidationError."""
    validator(name).validate(doc)
    return doc


def loads(text: str, name: str) -> Any:
    """One JSON document of lpc's, parsed and validated."""
    return validate(json.loads(text), name)


def lines(text: str, name: str) -> list[Any]:
    """A JSON-lines output of lpc (watch, check --jsonl), each line parsed and validated."""
    return [validate(json.loads(line), name) for line in text.splitlines()]
