"""A live patch as lpc sees it: the functions it replaces, and where they are.

A patch function is written ``[object:]name[@sympos]``, as livepatch names
them (kernel/livepatch/core.c): ``object`` is a module name (absent = vmlinux),
``sympos`` the 1-based position among same-named symbols of that object
(absent or 0 = the name must be unique). With a symbol table the functions
resolve to address ranges ``[start, end)`` — the kernel's ``old_func`` and
``old_size`` from kallsyms — and frames are matched by address. Without one,
frames are matched by name (a weaker claim, which the results say).

When *unpatching*, the kernel checks the replacement functions' ranges
(``new_func``/``new_size``, transition.c ``klp_check_stack_func``), so the
functions to name are the ones in the livepatch module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lpc._files import read_input
from lpc.errors import InputFileError, LpcError, SymbolError

if TYPE_CHECKING:
    from lpc.symbols import Symbols

__all__ = ["Patch", "PatchFunction", "PatchSpecError"]

# ASCII only: a Unicode digit in @sympos is not a position the kernel knows.
_SPEC = re.compile(
    r"^(?:(?P<object>[A-Za-z0-9_\-]+):)?(?P<name>[A-Za-z_.$][A-Za-z0-9_.$]*)(?:@(?P<sympos>[0-9]+))?$",
    re.ASCII,
)
#: A patch list is a few hundred names; anything this large is another kind of file.
_PATCH_FILE_LIMIT = 16 << 20


class PatchSpecError(LpcError, ValueError):
    """A patch specification that does not parse (names the file and line when it has them)."""


@dataclass(frozen=True)
class PatchFunction:
    """One function the patch replaces (or, when unpatching, the replacement to remove)."""

    name: str
    object: str | None = None  # None = vmlinux
    sympos: int | None = None
    start: int | None = None
    end: int | None = None

    @property
    def resolved(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def spec(self) -> str:
        text = f"{self.object}:{self.name}" if self.object else self.name
        return f"{text}@{self.sympos}" if self.sympos else text

    @classmethod
    def parse(cls, text: str) -> PatchFunction:
        match = _SPEC.match(text.strip())
        if match is None:
            raise PatchSpecError(
                f"bad patch function {text!r}: expected [object:]name[@sympos], "
                "e.g. cmdline_proc_show or ext4:ext4_file_write_iter@2"
            )
        sympos = int(match["sympos"]) if match["sympos"] else None
        obj = match["object"]
        return cls(match["name"], None if obj in (None, "vmlinux") else obj, sympos or None)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "object": self.object or "vmlinux",
            "sympos": self.sympos or 0,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Patch:
    """The set of functions a live patch touches."""

    functions: tuple[PatchFunction, ...]
    unpatch: bool = False

    @classmethod
    def parse(cls, spec: str, unpatch: bool = False) -> Patch:
        """From ``name[,name…]`` as the command line takes it."""
        parts = [p for p in (s.strip() for s in spec.split(",")) if p]
        if not parts:
            raise PatchSpecError("empty patch: name at least one function")
        return cls(tuple(PatchFunction.parse(p) for p in parts), unpatch)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], unpatch: bool = False) -> Patch:
        """One function per line (commas also allowed); ``#`` starts a comment.

        A kernel module (ELF) or a file that is not UTF-8 text is refused with a
        :class:`PatchSpecError` naming the file (and the line of a bad byte).
        """
        try:
            data = read_input(path, "patch file", _PATCH_FILE_LIMIT)
        except InputFileError as exc:
            raise PatchSpecError(str(exc)) from None
        if data.startswith(b"\x7fELF"):
            raise PatchSpecError(
                f"{path}: an ELF file (a livepatch module?), not a list of patch functions; "
                "name the functions it replaces, one per line"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data.count(b"\n", 0, exc.start) + 1
            raise PatchSpecError(
                f"{path}:{bad_line}: not UTF-8 text (byte {data[exc.start]:#04x}): "
                "a patch file lists function names"
            ) from None
        functions: list[PatchFunction] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            for part in line.split("#", 1)[0].split(","):
                if part.strip():
                    try:
                        functions.append(PatchFunction.parse(part))
                    except PatchSpecError as exc:
                        raise PatchSpecError(f"{path}:{lineno}: {exc}") from exc
        if not functions:
            raise PatchSpecError(f"{path}: no patch function in the file")
        return cls(tuple(functions), unpatch)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.functions)

    @property
    def resolved(self) -> bool:
        return all(f.resolved for f in self.functions)

    def resolve(self, symbols: Symbols) -> Patch:
        """Every function's range from the symbol table; a missing or ambiguous
        function is a :class:`~lpc.errors.SymbolError` naming it."""
        out = []
        for f in self.functions:
            try:
                sym = symbols.lookup(f.name, module=f.object, sympos=f.sympos)
            except SymbolError as exc:
                raise SymbolError(f"patch function {f.spec}: {exc}") from exc
            out.append(replace(f, start=sym.address, end=sym.address + sym.size))
        return replace(self, functions=tuple(out))

    def as_json(self) -> dict[str, Any]:
        return {"unpatch": self.unpatch, "functions": [f.as_json() for f in self.functions]}
