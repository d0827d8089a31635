"""The consistency models, one module each, behind one protocol (models.base.Model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lpc.kernel import Kernel
from lpc.models.base import (
    CONVERGING,
    Model,
    Nudge,
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

#: The registry: every named model, as `lpc check --model NAME`, `lpc simulate`
#: (search, plot, the expected matrix) and the CLI's choices know it. Adding a
#: model is its module, one line here, its tests and its row of the expected
#: matrix (lpc.sim.expected): see docs/models.md.
MODELS: dict[str, type[Model]] = {
    "null": Null,
    "trivial": Trivial,
    "josh": Josh,
    "klp": Klp,
    "kpatch": Kpatch,
    "kgraft": Kgraft,
    "ksplice": Ksplice,
}


def model_names(*, cells: bool = False) -> list[str]:
    """The named models, then (with ``cells``) every matrix cell's name."""
    return [*MODELS, *(m.name for m in matrix_cells())] if cells else list(MODELS)


def get_model(name: str, kernel: Kernel | None = None, **params: Any) -> Model:
    """A model by name (`klp`, ...) or matrix cell (`leave_kernel/switch_thread`).

    ``params`` are the model's own (see :meth:`Model.accepts`); one it does not
    take is a ValueError naming it. With ``kernel``, the model first takes the
    parameters of that kernel's profile (:meth:`Model.kernel_params`); those
    given in ``params`` win.
    """
    cls, args = _lookup(name)
    unknown = sorted(set(params) - cls.accepts())
    if unknown:
        raise ValueError(
            f"model {name} takes no parameter {', '.join(unknown)} "
            f"(it takes: {', '.join(sorted(cls.accepts() - set(args))) or 'none'})"
        )
    profile = cls.kernel_params(kernel) if kernel is not None else {}
    return cls(**args, **{**profile, **params})


def configure(name: str, params: Mapping[str, Any], kernel: Kernel | None = None) -> Model:
    """The model with those of ``params`` it takes: ``check_all`` hands every
    model the same parameters, and each reads its own."""
    cls, _ = _lookup(name)
    return get_model(name, kernel, **{k: v for k, v in params.items() if k in cls.accepts()})


def _lookup(name: str) -> tuple[type[Model], dict[str, str]]:
    if name in MODELS:
        return MODELS[name], {}
    if name.startswith("leave_") and "/switch_" in name:
        leave, switch = name[len("leave_") :].split("/switch_", 1)
        if leave.upper() in LEAVES and switch.upper() in SWITCHES:
            return Matrix, {"leave": leave.upper(), "switch": switch.upper()}
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
    "Nudge",
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
    "configure",
    "get_model",
    "matrix_cells",
    "model_names",
    "tally",
]
