"""ELF symbol tables as kallsyms-like entries (for ``Symbols.from_elf``).

Reads ``.symtab`` (else ``.dynsym``) with pyelftools and gives each defined
symbol an nm-style type letter, so the core treats ELF symbols exactly like
kallsyms lines. Kept apart so that ``import lpc.symbols`` does not import
pyelftools.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section, SymbolTableSection

from lpc.errors import SymbolError

# Symbol types that are no addressable symbol at all.
_SKIPPED_TYPES = frozenset({"STT_SECTION", "STT_FILE"})


def _letter(section: Section | None, shndx: object, bind: str) -> str:
    """The letter ``nm`` prints: section class, upper case when global."""
    if shndx == "SHN_ABS":
        base = "a"
    elif section is None:
        base = "n"
    else:
        flags = int(section["sh_flags"])
        if flags & SH_FLAGS.SHF_EXECINSTR:
            base = "t"
        elif not flags & SH_FLAGS.SHF_ALLOC:
            base = "n"
        elif section["sh_type"] == "SHT_NOBITS":
            base = "b"
        elif flags & SH_FLAGS.SHF_WRITE:
            base = "d"
        else:
            base = "r"
    if bind == "STB_WEAK" and base in "tdbr":
        return "W" if base == "t" else "V"
    return base.upper() if bind == "STB_GLOBAL" else base


def _section_bases(
    elf: ELFFile, given: Mapping[str, int] | None, synthetic_base: int
) -> dict[int, int]:
    """Load address of each allocated section of a relocatable file: the given
    one, else consecutive synthetic addresses (alignment respected)."""
    bases: dict[int, int] = {}
    cursor = synthetic_base
    for index, section in enumerate(elf.iter_sections()):
        if not int(section["sh_flags"]) & SH_FLAGS.SHF_ALLOC:
            continue
        if given is not None and section.name in given:
            bases[index] = int(given[section.name])
            continue
        align = max(int(section["sh_addralign"]), 1)
        cursor = (cursor + align - 1) // align * align
        bases[index] = cursor
        cursor += max(int(section["sh_size"]), 1)
    return bases


def read_elf_symbols(
    path: str, section_addresses: Mapping[str, int] | None, synthetic_base: int
) -> tuple[npt.NDArray[np.uint64], bytes, list[str], npt.NDArray[np.uint64]]:
    """``(addresses, type letters, names, st_size)`` of the defined symbols, in
    kallsyms order: by address for a linked image, symtab order for a ``.ko``.

    Raises :class:`SymbolError` for a file pyelftools cannot parse and
    ``OSError`` when the file cannot be read.
    """
    with open(path, "rb") as f:
        try:
            rows, relocatable = _symbol_rows(ELFFile(f), section_addresses, synthetic_base, path)
        except (ELFError, struct.error, ValueError) as exc:
            raise SymbolError(f"not an ELF file, or a damaged one ({exc})", path) from exc
    if not relocatable:
        rows.sort(key=lambda r: r[0])  # stable: ties keep symtab order
    addresses = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
    sizes = np.fromiter((r[3] for r in rows), dtype=np.uint64, count=len(rows))
    types = "".join(r[1] for r in rows).encode("ascii")
    return addresses, types, [r[2] for r in rows], sizes


def _symbol_rows(
    elf: ELFFile, section_addresses: Mapping[str, int] | None, synthetic_base: int, path: str
) -> tuple[list[tuple[int, str, str, int]], bool]:
    """``(address, letter, name, st_size)`` per defined symbol, symtab order."""
    symtab = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
    if not isinstance(symtab, SymbolTableSection):
        raise SymbolError("no .symtab or .dynsym (stripped file?)", path)
    relocatable = elf["e_type"] == "ET_REL"
    bases = _section_bases(elf, section_addresses, synthetic_base) if relocatable else {}
    rows: list[tuple[int, str, str, int]] = []
    for sym in symtab.iter_symbols():
        shndx = sym["st_shndx"]
        if not sym.name or shndx in ("SHN_UNDEF", "SHN_COMMON"):
            continue
        if sym["st_info"]["type"] in _SKIPPED_TYPES:
            continue
        section = elf.get_section(shndx) if isinstance(shndx, int) else None
        address = int(sym["st_value"])
        if relocatable and isinstance(shndx, int):
            if shndx not in bases:
                continue  # a non-allocated section: never in memory
            address += bases[shndx]
        letter = _letter(section, shndx, sym["st_info"]["bind"])
        rows.append((address, letter, sym.name, int(sym["st_size"])))
    return rows, relocatable
