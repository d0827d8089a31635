"""lpc — Linux live-patching consistency models, executable and fast.

The Rust core (``lpc._core``) answers ``within_patched_set(ip)`` and scans
stacks; the Python layers above it hold symbols, patches and models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lpc._core import IntervalTree, __version__
from lpc.dump import Dump, Frame, Task, parse_dump
from lpc.errors import (
    CaptureError,
    DumpParseError,
    InternalError,
    InvalidRangeError,
    LpcError,
    ModuleError,
    SymbolError,
)
from lpc.patch import Patch, PatchFunction
from lpc.symbols import Symbol, Symbols

# `lpc.check` stays the module (`lpc.check.check`, `lpc.check.run`); its
# result types are exported here.
from lpc.check import CheckRequest, CheckResult, Report, check_all  # noqa: E402

if TYPE_CHECKING:
    from lpc.capture import capture_live
    from lpc.patch_module import read_module


def __getattr__(name: str) -> Any:
    # Loaded on first use: a dump check never captures.
    if name == "capture_live":
        from lpc.capture import capture_live

        return capture_live
    if name == "read_module":  # a livepatch module's patch (lpc.patch_module)
        from lpc.patch_module import read_module

        return read_module
    raise AttributeError(f"module 'lpc' has no attribute {name!r}")

__all__ = [
    "CaptureError",
    "CheckRequest",
    "CheckResult",
    "Dump",
    "DumpParseError",
    "Frame",
    "InternalError",
    "IntervalTree",
    "InvalidRangeError",
    "LpcError",
    "ModuleError",
    "Patch",
    "PatchFunction",
    "Report",
    "Symbol",
    "SymbolError",
    "Symbols",
    "Task",
    "__version__",
    "capture_live",
    "check_all",
    "parse_dump",
    "read_module",
]
