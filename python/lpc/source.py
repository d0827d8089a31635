"""Where a snapshot comes from: a dump file, this machine's /proc, or the copy
shipped with lpc — each with the symbol table that belongs to it.

A symbol table must describe the kernel the stacks came from: a recorded
snapshot carries its own ``kallsyms.txt``, a live capture uses
``/proc/kallsyms``; a bare dump (a customer's SysRq-t) usually has none, and
then frames are matched by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lpc._files import check_input_path, read_input
from lpc.dump import SNAPSHOT_META, SNAPSHOT_STACKS, Dump, parse_dump, read_metadata
from lpc.errors import CaptureError, SnapshotError, SymbolError
from lpc.symbols import Symbols

if TYPE_CHECKING:
    from lpc.capture import capture_live, write_snapshot
    from lpc.livepatch_state import LivepatchState, PatchStates


def __getattr__(name: str) -> Any:
    # The capture module (and what it imports) loads only when a live capture
    # is asked for: `lpc check --dump` never needs it.
    if name in ("capture_live", "write_snapshot"):
        from lpc import capture

        return getattr(capture, name)
    raise AttributeError(name)


__all__ = [
    "capture_live",
    "embedded_snapshot",
    "check_same_kernel",
    "load",
    "machine_state",
    "read_recorded_state",
    "parse_dump_path",
    "live_stacks_readable",
    "parse_dump",
    "symbols_for_dump",
    "symbols_for_live",
    "write_snapshot",
]

EMBEDDED = "procdump-6.18"


def live_stacks_readable(proc: str = "/proc") -> bool:
    """Can this process read kernel stacks at all (root with CAP_SYS_ADMIN)?

    Its own stack is the probe: pid 1's may be refused even to root inside a
    container (the ptrace check), and such tasks are recorded as unreadable.
    """
    try:
        with open(os.path.join(proc, "self", "stack"), "rb") as fh:
            return bool(fh.read())
    except OSError:
        return False


def symbols_for_dump(dump: Dump, path: str | os.PathLike[str] | None = None) -> Symbols | None:
    """The given table, else the one recorded beside the dump (the same
    kernel's, by construction), else None."""
    if path is None and dump.kallsyms_path is not None:
        symbols = Symbols.from_kallsyms(dump.kallsyms_path)
        symbols.kernel_release = dump.kernel_release
        return symbols
    if path is None:
        return None
    return Symbols.from_kallsyms(path)


def check_same_kernel(dump: Dump, symbols: Symbols | None, *, mismatch_ok: bool = False
                      ) -> list[str]:
    """Refuse a symbol table of another kernel than the dump's
    (:class:`~lpc.errors.SymbolError`, unless ``mismatch_ok``); the warnings to
    report when the two cannot be compared or were allowed to differ."""
    if symbols is None:
        return []
    ours, theirs = dump.kernel_release, symbols.kernel_release
    if ours and theirs and ours != theirs:
        what = (f"the dump is of kernel {ours}, the symbol table {symbols.source} of kernel "
                f"{theirs}")
        if not mismatch_ok:
            raise SymbolError(f"{what}: addresses and sizes differ between builds, so frames "
                              "would be matched against the wrong functions (pass the dump's "
                              "own kallsyms, or --symbols-mismatch-ok to go on anyway)")
        return [f"{what} (allowed by --symbols-mismatch-ok): every frame that does not fit "
                "the table makes its task unreliable"]
    if not theirs:
        return [f"the symbol table's kernel release is unknown: lpc cannot check that "
                f"{symbols.source} is the dump's kernel{f' ({ours})' if ours else ''}; a frame "
                "that does not fit it makes its task unreliable"]
    return []


def symbols_for_live(path: str | os.PathLike[str] | None = None) -> Symbols | None:
    """The given table, else /proc/kallsyms when its addresses are real."""
    if path is not None:
        return Symbols.from_kallsyms(path)
    try:
        return Symbols.live()
    except SymbolError:
        return None


def embedded_snapshot() -> tuple[Dump, Symbols]:
    """The recorded /proc snapshot of a 6.18 machine shipped inside lpc."""
    import gzip
    from importlib import resources

    base = resources.files("lpc") / "data" / EMBEDDED
    with resources.as_file(base) as directory:
        root = Path(directory)
        stacks = (root / "stacks.txt").read_bytes()
        meta = read_metadata(root / "meta.txt")
        kallsyms = gzip.decompress((root / "kallsyms.txt.gz").read_bytes())
    dump = parse_dump(stacks, "proc_snapshot")
    dump.path = f"<embedded {EMBEDDED}>"
    dump.kernel_release = meta.get("kernel_release")
    symbols = Symbols.from_kallsyms(kallsyms)
    symbols.kernel_release = dump.kernel_release  # recorded together
    return dump, symbols


def check_snapshot_complete(directory: str) -> None:
    """Refuse a snapshot directory that a capture did not finish: lpc writes
    ``meta.txt`` last, ending with the completeness marker (lpc.capture)."""
    from lpc.capture import COMPLETE_MARKER

    meta = os.path.join(directory, SNAPSHOT_META)
    if not os.path.exists(os.path.join(directory, SNAPSHOT_STACKS)):
        return  # not a snapshot directory: the parser says what it is
    if not os.path.exists(meta):
        raise SnapshotError(f"{directory}: no {SNAPSHOT_META}: an incomplete capture "
                            "(lpc writes it last)")
    key = COMPLETE_MARKER.split("=")[0]
    fields = read_metadata(meta)
    if key in fields and fields[key] != COMPLETE_MARKER.split("=")[1]:
        raise SnapshotError(f"{meta}: {key}={fields[key]}: the capture did not finish")


def parse_dump_path(path: str | os.PathLike[str]) -> Dump:
    """A dump file or snapshot directory, after checking it is one (a device,
    FIFO or socket is refused at once) and, for a snapshot, that its capture
    finished."""
    where = check_input_path(path, "dump", directory=True)
    if os.path.isdir(where):
        check_snapshot_complete(where)
    return parse_dump(where)


def machine_state(
    dump_path: str | os.PathLike[str] | None, *, live: bool = False
) -> tuple[LivepatchState | None, PatchStates | None]:
    """The livepatch state that goes with a dump: this machine's sysfs and
    ``patch_state`` files when ``live``; a snapshot directory's recorded
    ``livepatch.txt`` / ``patch_state.txt``; nothing for a bare dump file."""
    from lpc import livepatch_state as lps

    if live:
        return lps.read_livepatch_state(), lps.read_patch_states()
    if dump_path is None or not os.path.isdir(dump_path):
        return None, None
    return read_recorded_state(Path(dump_path) / lps.LIVEPATCH_STATE_FILE,
                               Path(dump_path) / lps.PATCH_STATE_FILE)


def read_recorded_state(
    state_path: str | os.PathLike[str] | None, patch_states_path: str | os.PathLike[str] | None
) -> tuple[LivepatchState | None, PatchStates | None]:
    """A recorded state and per-task states (each None when its file is absent)."""
    from lpc import livepatch_state as lps

    state = states = None
    if state_path is not None and os.path.exists(state_path):
        text = read_input(state_path, "livepatch state", 16 << 20).decode("utf-8", "replace")
        state = lps.parse_livepatch_state(text, str(state_path))
    if patch_states_path is not None and os.path.exists(patch_states_path):
        text = read_input(patch_states_path, "patch_state list", 64 << 20).decode(
            "utf-8", "replace")
        states = lps.parse_patch_states(text, str(patch_states_path))
    return state, states


def load(
    dump_path: str | os.PathLike[str] | None,
    symbols_path: str | os.PathLike[str] | None = None,
    *,
    live: bool = False,
    demo: bool = False,
    symbols_mismatch_ok: bool = False,
) -> tuple[Dump, Symbols | None, str, list[str]]:
    """The dump, its symbol table (or None), a sentence saying where both came
    from, and warnings about the pair: a dump path; the embedded recorded
    snapshot (``demo``); else this machine's /proc. When this machine's stacks
    cannot be read, that is a :class:`~lpc.errors.CaptureError`: lpc never
    analyses its demo snapshot as if it were this machine unless asked to. A
    symbol table of another kernel is refused (:func:`check_same_kernel`)."""
    symbols: Symbols | None
    if demo:
        dump, symbols = embedded_snapshot()
        how = "the embedded recorded snapshot of a 6.18 machine (--demo), not this machine"
    elif dump_path is not None:
        dump = parse_dump_path(dump_path)
        symbols = symbols_for_dump(dump, symbols_path)
        how = f"dump {dump_path} ({dump.source_format})"
    elif live or live_stacks_readable():
        from lpc.capture import capture_live

        dump = capture_live()
        symbols = symbols_for_live(symbols_path)
        how = "this machine's /proc (live)"
    else:
        raise CaptureError(
            "this machine's task stacks are not readable (/proc/PID/stack needs root): run as "
            "root, pass --dump PATH, or --demo for lpc's recorded 6.18 snapshot"
        )
    warnings = check_same_kernel(dump, symbols, mismatch_ok=symbols_mismatch_ok)
    where = f"symbols from {symbols.source}" if symbols is not None else "no symbol table"
    return dump, symbols, f"{how}; {where}", warnings
