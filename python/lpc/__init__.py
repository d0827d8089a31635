"""lpc — Linux live-patching consistency models, executable and fast.

The Rust core (``lpc._core``) answers ``within_patched_set(ip)`` and scans
stacks; the Python layers above it hold symbols, patches and models.
"""

from __future__ import annotations

from lpc._core import IntervalTree, __version__
from lpc.dump import Dump, Frame, Task, parse_dump
from lpc.errors import (
    CaptureError,
    DumpParseError,
    InternalError,
    InvalidRangeError,
    LpcError,
    SymbolError,
)

__all__ = [
    "CaptureError",
    "Dump",
    "DumpParseError",
    "Frame",
    "InternalError",
    "IntervalTree",
    "InvalidRangeError",
    "LpcError",
    "SymbolError",
    "Task",
    "__version__",
    "parse_dump",
]
