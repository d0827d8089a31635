"""A small reader of relocatable 64-bit ELF files (a kernel module, ``.ko``),
for :mod:`lpc.patch_module`: sections, symbols, relocations, and the pointer a
relocation puts into a data word.

Written here rather than through pyelftools because every malformed byte must
end in one :class:`~lpc.errors.ModuleError` naming the file: this reader checks
each offset it follows against the file, so a damaged module is refused, never
a traceback. (pyelftools still reads DWARF, behind its own guard.)

Facts used: the ELF-64 object file format (System V gABI: header, section
header, ``Elf64_Sym``, ``Elf64_Rel``/``Elf64_Rela``, ``r_info`` = sym << 32 |
type) and, for each machine, the number of its 64-bit absolute relocation —
the only kind a pointer in initialised data gets: x86-64 psABI
``R_X86_64_64`` = 1, AArch64 ELF ABI ``R_AARCH64_ABS64`` = 257, 64-bit
PowerPC ELF ABI ``R_PPC64_ADDR64`` = 38, s390x ELF ABI ``R_390_64`` = 22.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lpc.errors import ModuleError

#: e_machine → (architecture name, its 64-bit absolute relocation type).
MACHINES = {
    62: ("x86_64", 1),  # EM_X86_64, R_X86_64_64
    183: ("aarch64", 257),  # EM_AARCH64, R_AARCH64_ABS64
    21: ("ppc64", 38),  # EM_PPC64, R_PPC64_ADDR64
    22: ("s390x", 22),  # EM_S390, R_390_64
}
#: A relocation type that writes nothing (each psABI numbers its NONE 0).
_R_NONE = 0
#: e_machine → {relocation type: bytes written} for what DWARF in an ET_REL
#: uses (absolute 32- and 64-bit: offsets into .debug_str/.debug_abbrev, and
#: addresses): x86-64 R_X86_64_32/32S/64, AArch64 R_AARCH64_ABS32/ABS64,
#: PowerPC R_PPC64_ADDR32/ADDR64, s390x R_390_32/R_390_64.
_DEBUG_RELOCS = {
    62: {10: 4, 11: 4, 1: 8},
    183: {258: 4, 257: 8},
    21: {1: 4, 38: 8},
    22: {4: 4, 22: 8},
}

SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
ET_REL = 1


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    @property
    def nobits(self) -> bool:
        return self.type == SHT_NOBITS


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int
    shndx: int

    @property
    def defined(self) -> bool:
        return SHN_UNDEF < self.shndx < SHN_LORESERVE


@dataclass(frozen=True)
class Pointer:
    """Where a relocated word points: into a section of this file (``section``,
    ``offset``), or to an undefined symbol (``section`` None, ``symbol`` its name)."""

    section: int | None
    offset: int
    symbol: str | None


class ModuleElf:
    """The sections, symbols and relocations of one ELF64 ET_REL image."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.path = path
        if data[:4] != b"\x7fELF":
            self.fail("not an ELF file")
        if len(data) < 64:
            self.fail("an ELF header cut short")
        if data[4] != 2:
            self.fail("a 32-bit ELF file: lpc reads 64-bit modules only")
        if data[5] not in (1, 2):
            self.fail(f"unknown ELF byte order {data[5]}")
        self.endian = "<" if data[5] == 1 else ">"
        e_type, e_machine = self.unpack("HH", 16)
        if e_type != ET_REL:
            self.fail(f"an ELF file of type {e_type}, not a kernel module (a relocatable "
                      "object, ET_REL)")
        self.machine = e_machine
        self.abs64()  # refuse a machine whose pointers this reader cannot relocate, first
        shoff, = self.unpack("Q", 40)
        shentsize, shnum, shstrndx = self.unpack("HHH", 58)
        if shentsize != 64 or not 0 < shnum <= 0xFF00 or shstrndx >= shnum:
            self.fail("damaged section header table")
        self.sections = self._read_sections(shoff, shnum, shstrndx)
        self.by_name = {s.name: s for s in reversed(self.sections)}
        self.symbols = self._read_symbols()
        self._relocs: dict[int, dict[int, tuple[int, int, int | None]]] | None = None

    # ---- low level ---------------------------------------------------------------------------

    def fail(self, what: str) -> None:
        raise ModuleError(what, self.path)

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        size = struct.calcsize(self.endian + fmt)
        if offset < 0 or offset + size > len(self.data):
            self.fail(f"damaged: a field at file offset {offset:#x} lies past the end of the file")
        return struct.unpack_from(self.endian + fmt, self.data, offset)

    def _read_sections(self, shoff: int, shnum: int, shstrndx: int) -> list[Section]:
        raw = [self.unpack("IIQQQQIIQQ", shoff + 64 * i) for i in range(shnum)]
        names = self._extent(raw[shstrndx][4], raw[shstrndx][5])
        out = []
        for i, (name, typ, flags, _addr, off, size, link, info, _align, entsize) in enumerate(raw):
            if typ != SHT_NOBITS and i:
                self._extent(off, size)  # every section with contents lies inside the file
            out.append(Section(i, self._string(names, name), typ, flags, off, size, link, info,
                               entsize))
        return out

    def _extent(self, offset: int, size: int) -> bytes:
        if offset + size > len(self.data):
            self.fail(f"damaged: a section at file offset {offset:#x} (size {size:#x}) "
                      "runs past the end of the file")
        return self.data[offset:offset + size]

    def _string(self, table: bytes, offset: int) -> str:
        end = table.find(b"\0", offset)
        if offset >= len(table) or end < 0:
            self.fail("damaged: a name outside its string table")
        try:
            return table[offset:end].decode("utf-8")
        except UnicodeDecodeError:
            self.fail("damaged: a name that is not UTF-8")
            raise  # unreachable: fail raises

    def contents(self, section: Section) -> bytes:
        return bytes(section.size) if section.nobits else self._extent(section.offset,
                                                                       section.size)

    # ---- symbols and relocations -------------------------------------------------------------

    def _read_symbols(self) -> list[Symbol]:
        tabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if not tabs:
            return []  # no symbol: no relocation can be applied either; said by the caller
        tab = tabs[0]
        if tab.link >= len(self.sections) or tab.entsize not in (0, 24):
            self.fail("damaged symbol table")
        names = self.contents(self.sections[tab.link])
        out = []
        for i in range(tab.size // 24):
            name, info, _other, shndx, value, size = self.unpack("IBBHQQ", tab.offset + 24 * i)
            out.append(Symbol(self._string(names, name), value, size, info & 0xF, shndx))
        return out

    def relocations(self, target: int) -> dict[int, tuple[int, int, int | None]]:
        """Offset in section ``target`` → (type, symbol index, RELA addend or None for REL)."""
        if self._relocs is None:
            self._relocs = {}
            for sec in self.sections:
                if sec.type in (SHT_RELA, SHT_REL) and sec.info < len(self.sections):
                    self._relocs.setdefault(sec.info, {}).update(self._read_relocs(sec))
        return self._relocs.get(target, {})

    def _read_relocs(self, sec: Section) -> dict[int, tuple[int, int, int | None]]:
        rela = sec.type == SHT_RELA
        size = 24 if rela else 16
        out: dict[int, tuple[int, int, int | None]] = {}
        for i in range(sec.size // size):
            if rela:
                off, info, addend = self.unpack("QQq", sec.offset + size * i)
            else:
                off, info = self.unpack("QQ", sec.offset + size * i)
                addend = None
            out[off] = (info & 0xFFFFFFFF, info >> 32, addend)
        return out

    def abs64(self) -> int:
        known = MACHINES.get(self.machine)
        if known is None:
            self.fail(f"ELF machine {self.machine}: lpc knows the relocations of x86_64, "
                      "aarch64, ppc64 and s390x modules only")
            raise AssertionError  # unreachable
        return known[1]

    def word(self, section: Section, offset: int, size: int = 8) -> int:
        """An unsigned ``size``-byte integer of ``section`` at ``offset`` (a
        NOBITS section reads as zeros, as the loader allocates it)."""
        if offset < 0 or offset + size > section.size:
            self.fail(f"damaged, or another layout: a read at {section.name}+{offset:#x} runs "
                      f"past the section's end ({section.size:#x})")
        if section.nobits:
            return 0
        fmt = {8: "Q", 4: "I", 1: "B"}[size]
        return self.unpack(fmt, section.offset + offset)[0]

    def pointer(self, section: Section, offset: int) -> Pointer | None:
        """The pointer stored at ``section+offset`` once the module is relocated:
        None for a NULL pointer. A non-zero word without a relocation has no
        meaning before the module loader runs, so it is refused."""
        stored = self.word(section, offset)
        reloc = self.relocations(section.index).get(offset)
        if reloc is None:
            if stored:
                self.fail(f"{section.name}+{offset:#x}: a pointer without a relocation")
            return None
        rtype, sym_index, addend = reloc
        if rtype == _R_NONE:
            return None
        if rtype != self.abs64():
            self.fail(f"{section.name}+{offset:#x}: relocation type {rtype}, not the 64-bit "
                      f"absolute one ({self.abs64()}) a pointer in data gets")
        if sym_index >= len(self.symbols):
            self.fail(f"{section.name}+{offset:#x}: relocation names symbol {sym_index}, "
                      "past the symbol table")
        sym = self.symbols[sym_index]
        # RELA carries the addend; REL keeps it in the word being relocated.
        add = addend if addend is not None else stored
        if not sym.defined:
            return Pointer(None, add, sym.name)
        if sym.shndx >= len(self.sections):
            self.fail(f"symbol {sym.name!r} in section {sym.shndx}, past the section table")
        name = None if sym.type == STT_SECTION else sym.name
        return Pointer(sym.shndx, sym.value + add, name)

    def cstring(self, ptr: Pointer, what: str) -> str:
        """The NUL-terminated string ``ptr`` points at (a name: at most 512 bytes)."""
        if ptr.section is None:
            self.fail(f"{what} points to {ptr.symbol!r}, outside the module: not a string")
            raise AssertionError  # unreachable
        sec = self.sections[ptr.section]
        data = self.contents(sec)
        if not 0 <= ptr.offset < len(data):
            self.fail(f"{what} points past the end of {sec.name}")
        end = data.find(b"\0", ptr.offset, ptr.offset + 513)
        if end < 0:
            self.fail(f"{what} at {sec.name}+{ptr.offset:#x} is not a NUL-terminated name")
        try:
            return data[ptr.offset:end].decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} at {sec.name}+{ptr.offset:#x} is not UTF-8 text")
            raise  # unreachable

    def function_at(self, ptr: Pointer) -> str | None:
        """The name of the function ``ptr`` points to: its symbol, or the
        function symbol at that place (the assembler relocates against a
        section symbol + offset for a static function)."""
        if ptr.section is None:
            return ptr.symbol if not ptr.offset else None
        best = None
        for sym in self.symbols:
            if sym.shndx == ptr.section and sym.value == ptr.offset and sym.name:
                if sym.type == STT_FUNC:
                    return sym.name
                if sym.type != STT_SECTION and best is None:
                    best = sym.name
        return best

    def symbol_at(self, section: int, offset: int) -> Symbol | None:
        """The data symbol that starts at ``section+offset`` (for its size)."""
        for sym in self.symbols:
            if sym.shndx == section and sym.value == offset and sym.type == STT_OBJECT:
                return sym
        return None

    def relocated_debug_info(self) -> bytes:
        """The file with ``.debug_info``'s relocations applied (S + A, sections
        at address 0 as in any ET_REL), so a DWARF reader need not relocate
        every debug section itself (pyelftools takes ~0.4 s doing it for one
        small module). A relocation of a type not listed is left alone: the
        fields the layout reader needs (names, member offsets) are not those."""
        info = self.by_name.get(".debug_info")
        if info is None or info.nobits:
            return self.data
        widths = _DEBUG_RELOCS.get(self.machine, {})
        out = bytearray(self.data)
        fmt = {4: "I", 8: "Q"}
        for off, (rtype, sym_index, addend) in self.relocations(info.index).items():
            width = widths.get(rtype)
            if width is None or sym_index >= len(self.symbols) or off + width > info.size:
                continue
            sym = self.symbols[sym_index]
            at = info.offset + off
            add = addend if addend is not None else struct.unpack_from(
                self.endian + fmt[width], out, at)[0]
            value = (sym.value if sym.defined else 0) + add
            struct.pack_into(self.endian + fmt[width], out, at, value & ((1 << 8 * width) - 1))
        return bytes(out)

    def modinfo(self) -> dict[str, str]:
        """The ``.modinfo`` key=value strings (the first of each key)."""
        sec = self.by_name.get(".modinfo")
        out: dict[str, str] = {}
        if sec is None:
            return out
        for item in self.contents(sec).split(b"\0"):
            key, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep:
                out.setdefault(key, value)
        return out
