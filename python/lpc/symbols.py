"""Kernel symbol tables: which function holds an address, and how big it is.

:class:`Symbols` loads ``/proc/kallsyms``, ``System.map`` or an ELF symbol
table and answers the questions a live-patch consistency check asks:

* the functions, each with its name, module (``None`` = vmlinux), address,
  size and ``sympos``, computed exactly as the kernel computes them
  (sizes: ``kernel/kallsyms.c: get_symbol_pos``; positions:
  ``kernel/livepatch/core.c: klp_find_callback``), so they can be compared
  with the ``name+0xoff/0xsize`` the kernel prints in every stack trace;
* name lookups (:meth:`Symbols.lookup`), address lookups
  (:meth:`Symbols.symbolize`, vectorised through :class:`lpc.IntervalTree`)
  and frame resolution (:meth:`Symbols.resolve`);
* compiler-made parts (``foo.cold``, ``foo.isra.0``, ...) and their parents;
* the ``.sched.text`` and lock text ranges, whose frames ``/proc/<pid>/stack``
  never shows.

Parsing runs in the Rust core (``lpc._core.parse_symbols``); this module only
arranges the columns. Every failure is an :class:`lpc.errors.SymbolError`.
"""

from __future__ import annotations

import difflib
import os
import platform
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

from lpc import _core
from lpc._core import IntervalTree
from lpc._files import MiB, inflate_gzip, read_input
from lpc.errors import InputFileError, SymbolError

__all__ = ["Symbol", "Symbols", "split_compiler_suffix"]

# Names of the core's ``kind`` column codes (lpc_core::symbols::SymbolKind), read from the core.
_KIND_NAMES: Final = tuple(_core.symbol_kinds())
_FUNCTION: Final = _KIND_NAMES.index("function")
# lpc_core::symbols::NO_MODULE / NO_SYMBOL.
_NO_MODULE: Final = _core.SYMBOL_NO_MODULE
_NO_SYMBOL: Final = _core.SYMBOL_NO_SYMBOL

PROC_KALLSYMS: Final = "/proc/kallsyms"

#: Where ``Symbols.from_elf`` places the sections of a relocatable object
#: (``.ko``) when no load addresses are given: one after the other from here,
#: so that functions of different sections never overlap.
SYNTHETIC_SECTION_BASE: Final = 0x10000


def split_compiler_suffix(name: str) -> tuple[str, str] | None:
    """``(parent, kind)`` for a compiler-made part, else ``None``.

    ``kind`` is ``"cold"`` (``foo.cold``, ``foo.cold.12``: the unlikely half of
    ``foo``, reached by a jump, not patchable on its own), ``"part"``,
    ``"isra"``, ``"constprop"`` (separate functions GCC derived from ``foo``)
    or ``"llvm"`` (ThinLTO's renamed copy). Only the last suffix is split:
    ``foo.isra.0.cold`` gives ``("foo.isra.0", "cold")``.
    """
    return _core.compiler_parent(name)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One function of a symbol table.

    ``sympos`` follows livepatch's ``old_sympos``: 0 when the name is unique
    in its object (vmlinux or the module), else the 1-based position among the
    ``name_count`` symbols of that name in kallsyms order. ``size_exact`` is
    False when the end is a fallback bound (the last symbol of a module: its
    text end is not in kallsyms) rather than the kernel's own number.
    """

    index: int
    name: str
    module: str | None
    address: int
    size: int
    sympos: int
    name_count: int
    type: str
    size_exact: bool
    line: int | None

    @property
    def end(self) -> int:
        """First address past the function."""
        return self.address + self.size

    @property
    def object_name(self) -> str:
        """The livepatch object name: ``"vmlinux"`` or the module."""
        return "vmlinux" if self.module is None else self.module

    @property
    def part_kind(self) -> str | None:
        """``"cold"``, ``"part"``, ``"isra"``, ``"constprop"``, ``"llvm"`` or ``None``."""
        split = split_compiler_suffix(self.name)
        return None if split is None else split[1]

    def __contains__(self, address: object) -> bool:
        return isinstance(address, int) and self.address <= address < self.end

    def __str__(self) -> str:
        where = "" if self.module is None else f" [{self.module}]"
        pos = f",{self.sympos}" if self.sympos else ""
        return f"{self.name}{pos}{where} @ {self.address:#x}/{self.size:#x}"


#: The largest symbol table read: a distribution kernel's kallsyms with every
#: module is about 20 MiB.
_SYMBOLS_LIMIT = 512 * MiB


def close_names(name: str, candidates: Iterable[str], n: int = 3,
                cutoff: float = 0.8) -> list[str]:
    """The ``n`` names most like ``name`` (difflib's ratio >= ``cutoff``)."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=cutoff)


def _release_of(source: str) -> str | None:
    """The kernel release a symbol source names, when it names one."""
    if source == PROC_KALLSYMS:
        return platform.release()
    # /boot's naming (installkernel): System.map-<release>, vmlinux-<release>.
    base = os.path.basename(source)
    for prefix in ("System.map-", "vmlinux-"):
        release = base[len(prefix):]
        if base.startswith(prefix) and release[:1].isdigit() and "." in release:
            return release
    return None


def _read_source(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    """The bytes of a symbol source and the name to report it by."""
    if isinstance(source, bytes):
        return source, "<bytes>"
    if isinstance(source, str) and "\n" in source:
        return source.encode(), "<text>"
    path = os.fspath(source)
    try:
        return read_input(path, "symbols", _SYMBOLS_LIMIT), path
    except InputFileError as exc:
        raise SymbolError(str(exc).removeprefix(f"{path}: "), path) from exc


def _parse(data: bytes, fmt: str, source: str) -> dict[str, Any]:
    try:
        return _core.parse_symbols(data, fmt)
    except SymbolError as exc:
        raise SymbolError(exc.message, source, exc.line) from exc


def _out_of_order(address: npt.NDArray[np.uint64], module: npt.NDArray[np.uint32]) -> int:
    """How many rows break the order the kernel lists its symbols in: vmlinux
    rows by ascending address (kallsyms is built sorted: scripts/kallsyms.c),
    then each module's rows in one run (kernel/kallsyms.c walks module by
    module). livepatch's ``old_sympos`` counts same-named symbols in exactly
    that order (kernel/livepatch/core.c klp_find_callback), so a file sorted
    any other way numbers them differently. Address-0 rows (kptr_restrict) are
    not counted."""
    vmlinux = np.flatnonzero((module == _NO_MODULE) & (address != 0))
    addresses = address[vmlinux]
    backwards = int(np.count_nonzero(addresses[1:] < addresses[:-1]))
    modules = module[module != _NO_MODULE]
    runs = 1 + int(np.count_nonzero(modules[1:] != modules[:-1])) if len(modules) else 0
    split = runs - len(np.unique(modules))
    return backwards + split


class Symbols:
    """The functions of one kernel (vmlinux plus loaded modules).

    Build it with :meth:`from_kallsyms`, :meth:`from_system_map`,
    :meth:`from_elf` or :meth:`live`. ``len(symbols)`` is the number of
    functions; ``symbols[i]`` is function ``i`` (kallsyms order) as a
    :class:`Symbol`. The per-function columns (:attr:`addresses`,
    :attr:`sizes`, ...) are read-only numpy arrays indexed the same way.

    Functions are the text symbols (types ``t T w W``) except ``__pfx_``/
    ``__cfi_`` padding and linker section markers (``_stext``,
    ``__sched_text_start``...); those still end the function before them,
    as in the kernel. Aliases (several names at one address) are all
    functions; address lookups answer with the first one in kallsyms order,
    the name the kernel prints.
    """

    def __init__(self, columns: Mapping[str, Any], source: str) -> None:
        """Wraps the columns of ``lpc._core.parse_symbols``; use the constructors."""
        self._source = source
        #: The release (``uname -r``) of the kernel these symbols belong to, when
        #: the source says: this machine's for /proc/kallsyms, the file name's for
        #: ``System.map-<release>``; None when nothing tells.
        self.kernel_release: str | None = _release_of(source)
        #: Row names, kept in Rust (``lpc._core.SymbolNames``): ``.name(row)``, ``.rows(name)``.
        self._names: _core.SymbolNames = columns["names"]
        self._module_names: list[str] = columns["modules"]
        self._module_build_ids: list[str | None] = columns["module_build_ids"]
        self._malformed_lines: int = columns["malformed_lines"]
        self._malformed_samples: list[tuple[int, str]] = columns["malformed_samples"]
        self._comment_lines: int = columns["comment_lines"]
        self._zero_address_text: int = columns["zero_address_text"]
        self._sched_text: tuple[int, int] | None = columns["sched_text"]
        self._lock_text: tuple[int, int] | None = columns["lock_text"]
        # Row columns (every symbol, kallsyms order).
        self._kind: npt.NDArray[np.uint8] = columns["kind"]
        self._row_module: npt.NDArray[np.uint32] = columns["module"]
        self._row_type: npt.NDArray[np.uint8] = columns["type"]
        self._row_sympos: npt.NDArray[np.uint32] = columns["sympos"]
        self._row_count: npt.NDArray[np.uint32] = columns["name_count"]
        self._prev_same_name: npt.NDArray[np.uint32] = columns["prev_same_name"]
        #: Rows out of the kernel's kallsyms order (see :func:`_out_of_order`).
        self._out_of_order: int = _out_of_order(columns["address"], self._row_module)
        # Function columns.
        rows = columns["functions"].astype(np.int64)
        self._rows: npt.NDArray[np.int64] = rows
        self._address: npt.NDArray[np.uint64] = _frozen(columns["address"][rows])
        self._size: npt.NDArray[np.uint64] = _frozen(columns["size"][rows])
        self._exact: npt.NDArray[np.bool_] = _frozen(columns["size_exact"][rows])
        self._primary: npt.NDArray[np.bool_] = columns["primary"][rows]
        self._parent_len: npt.NDArray[np.uint32] = columns["parent_len"][rows]
        self._line: npt.NDArray[np.uint32] = columns["line"][rows]
        count = self._row_count[rows]
        self._sympos: npt.NDArray[np.uint32] = _frozen(
            np.where(count > 1, self._row_sympos[rows], 0).astype(np.uint32)
        )
        module = self._row_module[rows].astype(np.int64)
        self._module: npt.NDArray[np.int64] = _frozen(np.where(module == _NO_MODULE, -1, module))
        self._function_of_row = np.full(len(self._names), -1, dtype=np.int64)
        self._function_of_row[rows] = np.arange(len(rows), dtype=np.int64)
        # Built on first use.
        self._parts: dict[tuple[int, str], list[int]] | None = None
        self._tree: IntervalTree | None = None
        # "Did you mean" (close_names): the names never change after load, and a
        # fleet asks the same table about the same missing name on every host.
        self._sorted_names: list[str] | None = None
        self._near: dict[tuple[str, int], tuple[str, ...]] = {}

    # ---- constructors ------------------------------------------------------------------------

    @classmethod
    def from_kallsyms(cls, path_or_text: str | os.PathLike[str] | bytes = PROC_KALLSYMS,
                      source: str | None = None) -> Symbols:
        """Loads ``/proc/kallsyms`` text: a path, or the text itself (``bytes``,
        or a ``str`` holding a newline). Module lines (``\\t[mod]``,
        ``[mod buildid]``) go to their module. ``source``: the name to report
        text by (e.g. the ``.gz`` file it was decompressed from).

        Raises :class:`SymbolError` naming the source when it cannot be read,
        holds no symbol line, or shows every address as 0 (read without the
        privilege to see addresses).
        """
        data, name = _read_source(path_or_text)
        source = source or name
        return cls(_parse(data, "kallsyms", source), source)

    @classmethod
    def from_kallsyms_gz(cls, path: str | os.PathLike[str]) -> Symbols:
        """Loads a gzipped ``/proc/kallsyms`` (``kallsyms.gz`` of ``lpc fleet
        check --symbols-dir``), bounded like a plain table, before and after
        inflating."""
        where = os.fspath(path)
        data, _ = _read_source(where)
        try:
            text, ended = inflate_gzip(data, _SYMBOLS_LIMIT)
        except zlib.error as exc:
            raise SymbolError(f"not a readable gzip file ({exc})", where) from exc
        if len(text) > _SYMBOLS_LIMIT:
            raise SymbolError(f"inflates to more than {_SYMBOLS_LIMIT // MiB} MiB: not a "
                              "symbol table lpc knows", where)
        if not ended:
            raise SymbolError("not a readable gzip file (cut short)", where)
        return cls.from_kallsyms(text, source=where)

    @classmethod
    def from_system_map(cls, path_or_text: str | os.PathLike[str] | bytes) -> Symbols:
        """Loads a ``System.map`` (vmlinux only, link-time addresses: shift them
        by the KASLR offset before comparing with a running kernel)."""
        data, source = _read_source(path_or_text)
        return cls(_parse(data, "system_map", source), source)

    @classmethod
    def live(cls) -> Symbols:
        """This machine's ``/proc/kallsyms``. Needs root (CAP_SYSLOG) and
        ``kernel.kptr_restrict`` <= 1; otherwise the kernel prints zeros and a
        :class:`SymbolError` says so."""
        try:
            return cls.from_kallsyms(PROC_KALLSYMS)
        except SymbolError as exc:
            if "address 0" not in exc.message:
                raise
            restrict = _read_text("/proc/sys/kernel/kptr_restrict")
            raise SymbolError(
                f"{exc.message} (this process: euid {os.geteuid()}, "
                f"kernel.kptr_restrict = {restrict})",
                PROC_KALLSYMS,
            ) from exc

    @classmethod
    def from_elf(
        cls,
        path: str | os.PathLike[str],
        module: str | None = None,
        *,
        section_addresses: Mapping[str, int] | None = None,
    ) -> Symbols:
        """Loads the ``.symtab`` (else ``.dynsym``) of an ELF file via pyelftools.

        Sizes are ``st_size`` (which, unlike kallsyms sizes, excludes the
        alignment padding after a function); a symbol with ``st_size`` 0 gets
        the kallsyms size. ``module`` names the object (``None`` = vmlinux).
        Symbols of a relocatable file (``.ko``) are section-relative: their
        sections are placed at ``section_addresses[name]`` when given (e.g.
        from ``/sys/module/<m>/sections/``), else one after the other from
        :data:`SYNTHETIC_SECTION_BASE`.
        """
        from lpc._elf import read_elf_symbols

        where = os.fspath(path)
        try:
            addresses, types, names, sizes = read_elf_symbols(
                where, section_addresses, SYNTHETIC_SECTION_BASE
            )
        except OSError as exc:
            raise SymbolError(f"cannot read ELF symbols: {exc.strerror or exc}", where) from exc
        try:
            columns = _core.symbols_from_entries(addresses, types, names, sizes, module)
        except SymbolError as exc:
            raise SymbolError(exc.message, where, exc.line) from exc
        return cls(columns, where)

    # ---- the table ---------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The path the table came from (``<text>``/``<bytes>`` for in-memory text)."""
        return self._source

    @property
    def malformed_lines(self) -> int:
        """Lines that were neither a symbol, a ``#`` comment nor blank."""
        return self._malformed_lines

    @property
    def malformed_samples(self) -> list[tuple[int, str]]:
        """``(line number, reason and text)`` of the first few malformed lines."""
        return list(self._malformed_samples)

    @property
    def comment_lines(self) -> int:
        """``#`` lines (the provenance line of a recorded file)."""
        return self._comment_lines

    @property
    def symbol_count(self) -> int:
        """Every symbol read, functions or not."""
        return len(self._names)

    @property
    def modules(self) -> list[str]:
        """Module names in order of first appearance (pseudo-modules such as
        ``__builtin__ftrace`` and ``bpf`` included)."""
        return list(self._module_names)

    def module_build_id(self, module: str) -> str | None:
        """The build id printed with ``[module buildid]``, if any."""
        try:
            return self._module_build_ids[self._module_names.index(module)]
        except ValueError:
            raise SymbolError(f"no module {module!r} in {self._source}") from None

    @property
    def warnings(self) -> list[str]:
        """What a report built on this table must mention."""
        out = []
        if self._malformed_lines:
            first = self._malformed_samples[0]
            out.append(
                f"{self._source}: {self._malformed_lines} malformed line(s) skipped, "
                f"first at line {first[0]}: {first[1]}"
            )
        if self._zero_address_text:
            out.append(
                f"{self._source}: {self._zero_address_text} text symbol(s) at address 0 left out"
            )
        inexact = int(np.count_nonzero(~self._exact))
        if inexact:
            out.append(
                f"{self._source}: {inexact} function size(s) are bounds, not the kernel's "
                "numbers (a module's last function: its text end is not in kallsyms)"
            )
        if self._sched_text is None:
            out.append(f"{self._source}: no __sched_text_start/__sched_text_end markers")
        if self._out_of_order:
            out.append(
                f"{self._source}: {self._out_of_order} symbol(s) out of the kernel's kallsyms "
                "order (vmlinux by address, each module in one run): the file was sorted or "
                "edited, and sympos, which counts same-named functions in the kernel's order, "
                "may not be the kernel's"
            )
        return out

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> Symbol:
        n = len(self._rows)
        if not -n <= index < n:
            raise IndexError(f"function index {index} out of range for {n} functions")
        return self._symbol(index % n)

    def __iter__(self) -> Iterator[Symbol]:
        return (self._symbol(i) for i in range(len(self._rows)))

    def __repr__(self) -> str:
        return (
            f"Symbols({self._source!r}, functions={len(self)}, symbols={self.symbol_count}, "
            f"modules={len(self._module_names)}, malformed_lines={self._malformed_lines})"
        )

    # ---- per-function columns ----------------------------------------------------------------

    @property
    def addresses(self) -> npt.NDArray[np.uint64]:
        """Start address of each function."""
        return self._address

    @property
    def sizes(self) -> npt.NDArray[np.uint64]:
        """Size of each function (kernel rule; ``st_size`` for ELF)."""
        return self._size

    @property
    def size_exact(self) -> npt.NDArray[np.bool_]:
        """False where the size is a fallback bound (see :class:`Symbol`)."""
        return self._exact

    @property
    def sympos(self) -> npt.NDArray[np.uint32]:
        """livepatch ``old_sympos`` of each function (0 = unique in its object)."""
        return self._sympos

    @property
    def module_ids(self) -> npt.NDArray[np.int64]:
        """Index into :attr:`modules` of each function, -1 for vmlinux."""
        return self._module

    def name_of(self, index: int) -> str:
        """The name of function ``index``."""
        return self._names.name(int(self._rows[index]))

    def _symbol(self, f: int) -> Symbol:
        row = int(self._rows[f])
        module = int(self._module[f])
        line = int(self._line[f])
        return Symbol(
            index=f,
            name=self._names.name(row),
            module=None if module < 0 else self._module_names[module],
            address=int(self._address[f]),
            size=int(self._size[f]),
            sympos=int(self._sympos[f]),
            name_count=int(self._row_count[row]),
            type=chr(int(self._row_type[row])),
            size_exact=bool(self._exact[f]),
            line=line or None,
        )

    # ---- names -------------------------------------------------------------------------------

    def _rows_named(self, name: str) -> list[int]:
        """Every row with this name, any kind and object, kallsyms order."""
        return self._names.rows(name)

    def _module_id(self, module: str | None) -> int:
        """Row-column module id of an object (``_NO_MODULE`` for vmlinux)."""
        if module is None:
            return _NO_MODULE
        try:
            return self._module_names.index(module)
        except ValueError:
            raise SymbolError(
                f"no module {module!r} in {self._source} (modules: "
                f"{', '.join(self._module_names) or 'none'})"
            ) from None

    def _object_name(self, module_id: int) -> str:
        return "vmlinux" if module_id == _NO_MODULE else self._module_names[module_id]

    def _describe_row(self, row: int) -> str:
        kind = int(self._kind[row])
        pos = int(self._row_sympos[row])
        what = f"{self._names.name(row)},{pos} ({_KIND_NAMES[kind]}, type {chr(int(self._row_type[row]))}"
        f = int(self._function_of_row[row])
        if f >= 0:
            what += f", {int(self._address[f]):#x}/{int(self._size[f]):#x}"
        return what + ")"

    def close_names(self, name: str, n: int = 3) -> list[str]:
        """Function names most like ``name`` (for "did you mean" on a miss).

        The first call reads every function name (tens of ms on a distribution
        kernel); the sorted names and each answer are kept on the table, so
        asking again (``lpc fleet``: one table, thousands of hosts) is free.
        """
        key = (name, n)
        near = self._near.get(key)
        if near is None:
            near = tuple(close_names(name, self._function_names(), n=n, cutoff=0.8))
            self._near[key] = near
        return list(near)  # a fresh list: callers may change it, the cache must not

    def _function_names(self) -> list[str]:
        """The distinct function names, sorted (difflib's ties then do not
        depend on kallsyms order)."""
        if self._sorted_names is None:
            self._sorted_names = sorted({self._names.name(r) for r in self._rows.tolist()})
        return self._sorted_names

    def lookup(self, name: str, module: str | None = None, sympos: int | None = None) -> Symbol:
        """The function ``name`` of ``module`` (``None`` = vmlinux).

        ``sympos`` selects among same-named symbols as livepatch does: ``None``
        or 0 require the name to be unique in the object, ``n`` picks the
        ``n``-th in kallsyms order. Raises :class:`SymbolError` when the name
        is missing, ambiguous (the message lists each candidate with its
        sympos), the position does not exist, or the symbol is no function.
        """
        rows = self._rows_named(name)
        if not rows:
            near = self.close_names(name)
            hint = f"; did you mean {' or '.join(near)}?" if near else ""
            raise SymbolError(f"no symbol {name!r} in {self._source}{hint}")
        module_id = self._module_id(module)
        in_object = [r for r in rows if int(self._row_module[r]) == module_id]
        obj = self._object_name(module_id)
        if not in_object:
            elsewhere = sorted({self._object_name(int(self._row_module[r])) for r in rows})
            raise SymbolError(f"{name!r} is not in {obj}; it is in: {', '.join(elsewhere)}")
        if not sympos:
            if len(in_object) > 1:
                listing = "; ".join(self._describe_row(r) for r in in_object)
                raise SymbolError(
                    f"{name!r} is ambiguous in {obj}: {len(in_object)} symbols, "
                    f"pass sympos=1..{len(in_object)}: {listing}"
                )
            row = in_object[0]
        else:
            if not 1 <= sympos <= len(in_object):
                raise SymbolError(
                    f"{name!r} has no sympos {sympos} in {obj}: "
                    f"{len(in_object)} symbol(s) of that name"
                )
            row = in_object[sympos - 1]
        f = int(self._function_of_row[row])
        if f < 0:
            raise SymbolError(f"{name!r} in {obj} is not a function: {self._describe_row(row)}")
        return self._symbol(f)

    def module_functions(self, module: str | None) -> list[Symbol]:
        """Every function of ``module`` in the table but its init function:
        what a loaded livepatch module can run. (One range from its first to
        its last function could take in another module's text: since 6.4 each
        region is allocated apart.)"""
        if module is None:
            raise SymbolError("vmlinux is no livepatch module: name the module")
        owner = self._module_id(module)
        mine = np.flatnonzero(self._module == owner)
        if not mine.size:
            raise SymbolError(f"module {module!r} has no function in {self._source}")
        # A module's init text is freed once it has loaded and may then hold a
        # module loaded later, while kallsyms still lists the old init symbols
        # (seen on 6.1 and 7.3: lpc_fix_init at lpc_sleeper_nap's address). No
        # replacement lives in init text, and module_init() names the init
        # function a second time, init_module (include/linux/module.h): the
        # functions at that address are the stale ones. (Other __init helpers
        # stay: a range too many only makes the check stricter.)
        init = [int(self._address[f]) for f in mine.tolist()
                if self.name_of(int(f)) == "init_module"]
        live = [self._symbol(int(f)) for f in mine.tolist()
                if int(self._address[f]) not in init]
        if not live:
            raise SymbolError(f"module {module!r} has no function in {self._source} but its "
                              "init function, which is freed once it has loaded")
        return live

    def lookup_all(self, name: str) -> list[Symbol]:
        """Every function called ``name``, in any object, in kallsyms order."""
        fs = (int(self._function_of_row[r]) for r in self._rows_named(name))
        return [self._symbol(f) for f in fs if f >= 0]

    def __contains__(self, name: object) -> bool:
        """Whether some function is called ``name``."""
        return isinstance(name, str) and any(
            self._function_of_row[r] >= 0 for r in self._rows_named(name)
        )

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def tree(self) -> IntervalTree:
        """All functions' ranges (one per address: aliases after the first are
        left out), ids = function indices. Built on first use."""
        if self._tree is None:
            primary = np.flatnonzero(self._primary)
            self._tree = IntervalTree.from_arrays(
                self._address[primary], self._address[primary] + self._size[primary], primary
            )
        return self._tree

    def function_tree(self, functions: Iterable[int | Symbol]) -> IntervalTree:
        """A tree over the given functions' ``[address, address + size)``,
        ids = function indices (e.g. the functions a patch replaces)."""
        ids = np.fromiter(
            (f.index if isinstance(f, Symbol) else int(f) for f in functions), dtype=np.int64
        )
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            bad = int(ids[(ids < 0) | (ids >= len(self))][0])
            raise SymbolError(f"function index {bad} out of range for {len(self)} functions")
        return IntervalTree.from_arrays(self._address[ids], self._address[ids] + self._size[ids], ids)

    def symbolize(
        self, addresses: npt.ArrayLike, *, return_addresses: bool = False
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(function index, offset)`` for each address; ``(-1, -1)`` where no
        function holds it (padding, gaps, other kernels).

        With ``return_addresses=True`` each address is looked up as
        ``address - 1`` and the offset counted from the address itself, as the
        kernel's ``%pB`` does for return addresses: a call that ends a function
        then reports ``off == size`` in that function instead of the next one.
        """
        qs = _as_addresses(addresses)
        lookup = qs - np.uint64(1) if return_addresses else qs
        ids = self.tree.find_many(lookup)
        hit = ids >= 0
        offsets = np.full(ids.shape, -1, dtype=np.int64)
        offsets[hit] = (qs[hit] - self._address[ids[hit]]).astype(np.int64)
        return ids, offsets

    def resolve(
        self, name: str, offset: int, size: int | None = None, module: str | None = None
    ) -> int | None:
        """The address of frame ``name+offset/size [module]``, or ``None`` when
        the frame cannot be pinned to one function of this table.

        Among same-named functions of the object, ``size`` (the kernel's
        printed size) keeps those whose size equals it; a function whose size
        is only a bound (``size_exact`` False) cannot be excluded that way. The
        answer is ``None`` when no candidate or several remain (report, don't
        guess), or when ``offset`` exceeds the size (``offset == size`` is
        allowed: ``%pB`` prints it for a call ending a function).
        """
        try:
            module_id = self._module_id(module)
        except SymbolError:
            return None
        candidates = []
        for row in self._rows_named(name):
            f = int(self._function_of_row[row])
            if f < 0 or int(self._row_module[row]) != module_id:
                continue
            if size is None or not self._exact[f] or int(self._size[f]) == size:
                candidates.append(f)
        if len(candidates) != 1:
            return None
        f = candidates[0]
        limit = int(self._size[f]) if size is None else size
        if not 0 <= offset <= limit:
            return None
        return int(self._address[f]) + offset

    # ---- compiler parts ----------------------------------------------------------------------

    @staticmethod
    def parent_of(name: str) -> str | None:
        """The function a compiler part belongs to or was derived from
        (``foo`` for ``foo.cold``), or ``None`` for an ordinary name."""
        split = split_compiler_suffix(name)
        return None if split is None else split[0]

    def parts_of(self, name: str, module: str | None = None) -> list[Symbol]:
        """The functions of ``module`` (``None`` = vmlinux) whose parent is
        ``name``: its ``.cold`` part(s) and derived clones, kallsyms order.

        A static ``foo`` that exists several times has as many ``foo.cold``;
        kallsyms cannot tell which belongs to which, so all are returned.
        """
        if self._parts is None:
            parts: dict[tuple[int, str], list[int]] = {}
            for f in np.flatnonzero(self._parent_len).tolist():
                row = int(self._rows[f])
                parent = self._names.name(row)[: int(self._parent_len[f])]
                parts.setdefault((int(self._row_module[row]), parent), []).append(f)
            self._parts = parts
        found = self._parts.get((self._module_id(module), name), [])
        return [self._symbol(f) for f in found]

    # ---- text hidden from /proc/<pid>/stack --------------------------------------------------

    @property
    def sched_text_range(self) -> tuple[int, int] | None:
        """``[__sched_text_start, __sched_text_end)`` of vmlinux, if present."""
        return self._sched_text

    @property
    def lock_text_range(self) -> tuple[int, int] | None:
        """``[__lock_text_start, __lock_text_end)`` of vmlinux, if present."""
        return self._lock_text

    @overload
    def in_hidden_text(self, address: int) -> bool: ...
    @overload
    def in_hidden_text(self, address: npt.NDArray[Any]) -> npt.NDArray[np.bool_]: ...
    def in_hidden_text(self, address: int | npt.NDArray[Any]) -> bool | npt.NDArray[np.bool_]:
        """Whether an address lies in ``.sched.text`` or the lock text.

        ``/proc/<pid>/stack`` skips such frames (kernel/stacktrace.c skips
        ``in_sched_functions()``, i.e. kernel/sched/core.c's sched text and
        kernel/locking/spinlock.c's ``in_lock_functions()``), so a patched
        function there is invisible in that format: the caller must warn.
        A range whose markers are missing counts as empty.
        """
        if isinstance(address, np.ndarray):
            qs = _as_addresses(address)
            mask = np.zeros(qs.shape, dtype=np.bool_)
            for lo, hi in filter(None, (self._sched_text, self._lock_text)):
                mask |= (qs >= np.uint64(lo)) & (qs < np.uint64(hi))
            return mask
        return any(lo <= address < hi for lo, hi in filter(None, (self._sched_text, self._lock_text)))


def _as_addresses(addresses: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """A flat uint64 copy-free view of integer addresses.

    numpy infers float64 for a list mixing kernel addresses (above 2**63) with
    small ints, which would silently round them; lists are therefore converted
    element by element, and float arrays are refused.
    """
    if not isinstance(addresses, np.ndarray):
        items = list(addresses) if isinstance(addresses, Iterable) else [addresses]
        if not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in items):
            raise TypeError("addresses: expected integers")
        try:
            return np.array(items, dtype=np.uint64).reshape(-1)
        except OverflowError as exc:
            raise ValueError("addresses: every address must be in [0, 2**64)") from exc
    kind = addresses.dtype.kind
    if kind == "i" and bool((addresses < 0).any()):
        raise ValueError("addresses: every address must be in [0, 2**64)")
    if kind not in "ui":
        raise TypeError(f"addresses: expected an integer array, got dtype {addresses.dtype}")
    return addresses.astype(np.uint64, copy=False).reshape(-1)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unknown"
