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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lpc._files import read_input
from lpc.errors import InputFileError, LpcError, SymbolError

if TYPE_CHECKING:
    from lpc.symbols import Symbols

__all__ = ["MODULE_TEXT", "Patch", "PatchFunction", "PatchOrigin", "PatchSpecError"]

#: The name of a replacement known only by its module (``old->module:*``):
#: every function of that module. ``/sys/kernel/livepatch`` names what an
#: enabled patch replaces but not with what, so a later patch of the same
#: function is checked against the whole module, a range holding the real one.
MODULE_TEXT = "*"

# ASCII only: a Unicode digit in @sympos is not a position the kernel knows.
_SPEC = re.compile(
    r"^(?:(?P<object>[A-Za-z0-9_\-]+):)?(?P<name>[A-Za-z_.$][A-Za-z0-9_.$]*)(?:@(?P<sympos>[0-9]+))?$",
    re.ASCII,
)
# A replacement may also be a whole module's text: ``module:*``.
_MODULE_TEXT_SPEC = re.compile(r"^(?P<object>[A-Za-z0-9_\-]+):\*$", re.ASCII)
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
    #: The replacement the patch installs (``klp_func.new_func``), when named:
    #: ``old->[module:]new`` in a spec. A patch already enabled needs it, since
    #: the next patch of the same function is checked against it.
    new: PatchFunction | None = None
    #: For a range checked in place of a patched function (a loaded patch's
    #: replacement, a nop's), the function it stands for and why.
    stands_for: str | None = None
    #: One of the functions a :data:`MODULE_TEXT` replacement resolved to.
    in_module_text: bool = False

    @property
    def resolved(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def module_text(self) -> bool:
        """A stand-in for every function of a module (:data:`MODULE_TEXT`)."""
        return self.name == MODULE_TEXT

    @property
    def key(self) -> tuple[str | None, str, int]:
        """What livepatch identifies a patched function by: object, name, position.
        A position of 0 (unique name) and 1 are one function: sysfs names both
        ``name,1`` (core.c klp_init_func) and both resolve to the only symbol."""
        return (self.object, self.name, self.sympos or 1)

    @property
    def old_spec(self) -> str:
        """``[object:]name[@sympos]``: the function, without its replacement."""
        text = f"{self.object}:{self.name}" if self.object else self.name
        return f"{text}@{self.sympos}" if self.sympos else text

    @property
    def spec(self) -> str:
        return f"{self.old_spec}->{self.new.spec}" if self.new is not None else self.old_spec

    @classmethod
    def parse(cls, text: str) -> PatchFunction:
        old, arrow, new = text.strip().partition("->")
        whole = _MODULE_TEXT_SPEC.match(new.strip()) if arrow else None
        if whole is not None:
            return replace(cls.parse(old), new=cls(MODULE_TEXT, whole["object"]))
        match = _SPEC.match(old.strip())
        if match is None or (arrow and _SPEC.match(new.strip()) is None):
            raise PatchSpecError(
                f"bad patch function {text!r}: expected [object:]name[@sympos][->[module:]new], "
                "e.g. cmdline_proc_show or ext4:ext4_file_write_iter@2 or "
                "do_nanosleep->lpc_pt:lpc_pt_thunk_0 (or ->lpc_pt:* for any function of "
                "the module)"
            )
        sympos = int(match["sympos"]) if match["sympos"] else None
        obj = match["object"]
        return cls(match["name"], None if obj in (None, "vmlinux") else obj, sympos or None,
                   new=cls.parse(new) if arrow else None)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "object": self.object or "vmlinux",
            "sympos": self.sympos or 0,
            # Addresses as hex strings: a 64-bit kernel address is above 2**53,
            # beyond what a JSON reader with doubles (JavaScript, jq) holds exactly.
            "start": hex_address(self.start),
            "end": hex_address(self.end),
        }
        if self.new is not None:
            out["new"] = self.new.spec
        if self.stands_for is not None:
            out["stands_for"] = self.stands_for
        return out


def hex_address(address: int | None) -> str | None:
    """A kernel address as JSON writes it: ``"0xffffffff81100000"`` (None stays None)."""
    return None if address is None else f"{address:#x}"


def still_enabled(loaded: Sequence[Patch]) -> list[tuple[int, PatchFunction]]:
    """The functions of the ``loaded`` patches (oldest first) that are still
    enabled, each with its patch's 1-based depth. An atomic replace freed every
    patch under it once its transition completed (core.c
    klp_free_replaced_patches_async, klp_free_objects_dynamic: their functions
    left every func_stack; kpatch.ko drops their KPATCH_OP_UNPATCH entries).
    A loaded patch is an enabled one: an unpatch among them is refused."""
    out: list[tuple[int, PatchFunction]] = []
    for depth, below in enumerate(loaded, 1):
        if below.unpatch:
            raise PatchSpecError(f"loaded patch {depth} is an unpatch; a loaded patch is "
                                 "one that is enabled")
        if below.replace and below.order_known:
            out.clear()  # with the order unknown, what it freed is not known: keep all
        out.extend((depth, f) for f in below.functions)
    return out


def replacement_of(f: PatchFunction, stands_for: str) -> PatchFunction:
    """The replacement an enabled patch installed for ``f`` (its ``new``), as
    the range a check compares against; a refusal when it was not named."""
    if f.new is None:
        raise PatchSpecError(
            f"{f.spec}: a loaded patch replaces it, and the check then looks for that "
            f"replacement: name it ({f.spec}->module:replacement)")
    return replace(f.new, stands_for=stands_for)


def _checked(f: PatchFunction, below: list[tuple[int, PatchFunction]] | None,
             why: str) -> list[PatchFunction]:
    """What ``f`` is checked against: itself, or the replacement of the newest
    enabled patch of the same function (``below``: its depth and its entry;
    several when the loaded patches' order is unknown: each could be on top)."""
    if not below:
        return [f]
    return [replacement_of(prev, f"{f.old_spec} ({why}: loaded patch "
                                 f"{prev_depth}'s replacement)")
            for prev_depth, prev in below]


def top_entries(loaded: Sequence[Patch]) -> dict[tuple[str | None, str, int],
                                                 list[tuple[int, PatchFunction]]]:
    """Per function key, the enabled entry on top of its func_stack: the newest
    one; every one of the patches whose order is not known (sysfs without
    ``stack_order``), since any of them could be the newest."""
    tops: dict[tuple[str | None, str, int], list[tuple[int, PatchFunction]]] = {}
    for depth, f in still_enabled(loaded):
        if loaded[depth - 1].order_known:
            tops[f.key] = [(depth, f)]
        else:
            tops.setdefault(f.key, []).append((depth, f))
    return tops


@dataclass(frozen=True)
class PatchOrigin:
    """Where a patch read from a livepatch module came from, and what was
    assumed reading it (:mod:`lpc.patch_module` makes these)."""

    path: str
    module: str
    #: ``klp``, ``kpatch``, ``kpatch-core`` or ``klp-build``.
    format: str
    layout: str
    #: ``BTF``, ``DWARF``, ``assumed for release X (...)``, or the header of a fixed layout.
    layout_source: str
    replace_source: str
    assumed: tuple[str, ...] = ()

    def text(self) -> str:
        return (f"from module {self.module} ({self.path}), {self.format}, layout {self.layout} "
                f"({self.layout_source}); replace: {self.replace_source}")

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "module": self.module, "format": self.format,
                "layout": self.layout, "layout_source": self.layout_source,
                "replace_source": self.replace_source, "assumed": list(self.assumed)}


@dataclass(frozen=True)
class Patch:
    """The set of functions a live patch touches."""

    functions: tuple[PatchFunction, ...]
    unpatch: bool = False
    #: An atomic-replace patch (``klp_patch.replace``, 5.1+): it replaces every
    #: enabled patch, and the functions only they patch get nops.
    replace: bool = False
    #: The patch's name (its module's) when known.
    name: str | None = None
    #: As a loaded patch: False when its place among the others is not known
    #: (read from sysfs without ``stack_order``).
    order_known: bool = True
    #: The module the patch was read from (None: named on the command line or in a list).
    origin: PatchOrigin | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, spec: str, unpatch: bool = False, replace: bool = False) -> Patch:
        """From ``name[,name…]`` as the command line takes it."""
        parts = [p for p in (s.strip() for s in spec.split(",")) if p]
        if not parts:
            raise PatchSpecError("empty patch: name at least one function")
        return cls(tuple(PatchFunction.parse(p) for p in parts), unpatch, replace)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], unpatch: bool = False,
                  replace: bool = False) -> Patch:
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
                "read a module with lpc.patch_module.read_module (lpc check --patch-module)"
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
        return cls(tuple(functions), unpatch, replace)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.functions)

    @property
    def resolved(self) -> bool:
        return all(f.resolved for f in self.functions)

    def resolve(self, symbols: Symbols) -> Patch:
        """Every function's range from the symbol table; a missing or ambiguous
        function is a :class:`~lpc.errors.SymbolError` naming it."""
        out: list[PatchFunction] = []
        for f in self.functions:
            try:
                if f.module_text:  # every function of the module, each its own range
                    out.extend(replace(f, name=s.name, sympos=s.sympos or None,
                                       start=s.address, end=s.address + s.size,
                                       in_module_text=True)
                               for s in symbols.module_functions(f.object))
                    continue
                sym = symbols.lookup(f.name, module=f.object, sympos=f.sympos)
            except SymbolError as exc:
                raise SymbolError(f"patch function {f.spec}: {exc}") from exc
            out.append(replace(f, start=sym.address, end=sym.address + sym.size))
        return replace(self, functions=tuple(out))

    def checked_against(self, loaded: Sequence[Patch] = ()) -> Patch:
        """The functions whose ranges a transition to this patch compares stacks
        against, given the patches already enabled (``loaded``, oldest first).

        kernel/livepatch/transition.c klp_check_stack_func(): unpatching checks
        the patch's own replacements; patching a function no enabled patch
        touches checks the original; patching one an enabled patch already
        replaced checks *that patch's* replacement (the next entry of the ftrace
        ops' func_stack, kernel/livepatch/patch.c). An atomic replace (core.c
        klp_add_nops) also adds a nop for every function only older patches
        patch: each is checked against the newest of their replacements.
        kpatch.ko's kpatch_backtrace_address_verify() checks the same ranges
        (the active func's new_addr; KPATCH_OP_UNPATCH entries on replace).
        """
        if self.unpatch:
            # The replacements; a function named without one is taken to be one
            # (the command line's convention: --unpatch names the replacements).
            return replace(self, functions=tuple(
                replace(f.new, stands_for=f"the replacement of {f.old_spec}")
                if f.new is not None else f for f in self.functions))
        if not loaded:
            return self
        # The newest enabled patch of each function is on top of its func_stack.
        top = top_entries(loaded)
        out = []
        for f in self.functions:
            out.extend(_checked(f, top.pop(f.key, None), "already patched"))
        if self.replace:
            for below in top.values():
                out.extend(_checked(below[0][1], below, "a nop of this atomic replace"))
        return replace(self, functions=tuple(out))

    def as_json(self) -> dict[str, Any]:
        return {"unpatch": self.unpatch, "replace": self.replace,
                "functions": [f.as_json() for f in self.functions]}
