"""The one-line answer of ``lpc --version``.

The version has one source: the Cargo workspace's ``version``. The Rust core
compiles it in (``lpc._core.__version__``) and maturin writes it into the
package metadata, so the wheel, the extension and the command agree.
"""

from __future__ import annotations

import platform
from pathlib import Path

from lpc import _core


def version_line() -> str:
    """``lpc X.Y.Z (_core <build>, <Python> X.Y.Z)``, short enough for one line.

    The build is the extension's file-name tag: ``abi3`` plus the machine for a
    stable-ABI wheel (``_core.abi3.so``), or the interpreter it was built for
    (``_core.cpython-311-x86_64-linux-gnu.so``).
    """
    parts = Path(_core.__file__ or "_core").name.split(".")
    build = parts[1] if len(parts) == 3 else "unknown"
    if build == "abi3":
        build = f"abi3 {platform.machine()}"
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"lpc {_core.__version__} (_core {build}, {py})"
