"""The consistency models, one module each, behind one protocol (models.base.Model)."""

from __future__ import annotations

from typing import Any

from lpc.models.base import (
    CONVERGING,
    Model,
    Outlook,
    Stack,
    StackSource,
    SwitchPoint,
    TalliedOutcomes,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    tally,
)
from lpc.models.josh import Josh
from lpc.models.kgraft import Kgraft
from lpc.models.klp import Klp
from lpc.models.kpatch import Kpatch
from lpc.models.ksplice import Ksplice
from lpc.models.matrix import LEAVES, SWITCHES, Matrix
from lpc.models.null import Null
from lpc.models.trivial import Trivial

#: Named models, as `lpc check --model NAME` knows them.
MODELS: dict[str, type[Any]] = {
    "null": Null,
    "trivial": Trivial,
    "josh": Josh,
    "klp": Klp,
    "kpatch": Kpatch,
    "kgraft": Kgraft,
    "ksplice": Ksplice,
}


def get_model(name: str, **params: Any) -> Model:
    """A model by name (`klp`, ...) or matrix cell (`leave_kernel/switch_thread`)."""
    if name in MODELS:
        model: Model = MODELS[name](**params)
        return model
    if name.startswith("leave_") and "/switch_" in name:
        leave, switch = name[len("leave_") :].split("/switch_")
        return Matrix(leave.upper(), switch.upper())
    known = ", ".join([*MODELS, "leave_<x>/switch_<y>"])
    raise ValueError(f"unknown model {name!r} (known: {known})")


def matrix_cells() -> list[Matrix]:
    return [Matrix(leave, switch) for leave in LEAVES for switch in SWITCHES]


__all__ = [
    "CONVERGING",
    "MODELS",
    "Josh",
    "Kgraft",
    "Klp",
    "Kpatch",
    "Ksplice",
    "Matrix",
    "Model",
    "Null",
    "Outlook",
    "Stack",
    "StackSource",
    "SwitchPoint",
    "TalliedOutcomes",
    "TaskFacts",
    "TaskKind",
    "TaskOutcome",
    "TransitionOutcome",
    "Trivial",
    "Verdict",
    "get_model",
    "matrix_cells",
    "tally",
]
