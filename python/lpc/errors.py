"""The exceptions lpc raises. Every one derives from :class:`LpcError`.

The Rust core raises these too: ``lpc._core`` imports the classes from here,
so a caller catches one hierarchy whichever layer refused the input.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "DumpParseError",
    "InputFileError",
    "LivepatchStateError",
    "SnapshotError",
    "InternalError",
    "InvalidRangeError",
    "LpcError",
    "ModuleError",
    "SymbolError",
]


class LpcError(Exception):
    """Root of every error lpc raises on purpose."""


class InvalidRangeError(LpcError, ValueError):
    """A range whose start is not below its end, or a malformed range input.

    ``index`` is the position of the offending range in the caller's input
    (``None`` when the error is not about one range).
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class DumpParseError(LpcError, ValueError):
    """Input that no parser accepts, naming the file and the 1-based line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = path if path is not None else "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class InputFileError(LpcError, ValueError):
    """A path given as input that lpc will not read: missing, unreadable, not a
    regular file (a device, FIFO or socket could hang or never end), or larger
    than any real input of its kind."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class SnapshotError(LpcError, ValueError):
    """A snapshot that cannot be written where asked (under /proc or /sys, over
    an existing file or snapshot, a full disk), or read back as whole."""


class LivepatchStateError(LpcError, ValueError):
    """A recorded ``/sys/kernel/livepatch`` state or ``patch_state`` list that
    contradicts its format (names the file and line)."""


class CaptureError(LpcError, PermissionError):
    """A live capture that cannot read task stacks: ``/proc/PID/stack`` needs
    root (CAP_SYS_ADMIN) since Linux 4.19, or ``proc`` is not a procfs mount."""


class SymbolError(LpcError, LookupError):
    """A symbol that cannot be found or resolved, or a symbol source that
    cannot be used (unreadable, hidden addresses, no symbol line).

    ``path`` and the 1-based ``line`` name the source when the error is about
    one; both are ``None`` for a lookup in an already-loaded table.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = path if path is not None else ("<input>" if line is not None else None)
        if where is not None and line is not None:
            where = f"{where}:{line}"
        super().__init__(message if where is None else f"{where}: {message}")
        self.message = message
        self.path = path
        self.line = line


class ModuleError(LpcError, ValueError):
    """A livepatch module file lpc cannot read a patch from: not an ELF module,
    a damaged one, not a livepatch module, or one whose patch is only built
    at load time. The message names the file and says what is wrong."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


class InternalError(LpcError, RuntimeError):
    """A bug inside lpc (a Rust panic caught at the boundary). Please report it."""
