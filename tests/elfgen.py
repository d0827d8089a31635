"""A pure-Python writer of small relocatable ELF64 files shaped like livepatch
modules, for tests/test_patch_module.py.

It knows only what a test needs: sections with contents, a symbol table,
RELA or REL relocations, and builders that lay out the three kinds of patch
lpc.patch_module reads (a static klp_patch, kpatch-build's .kpatch.funcs,
klp-build's .init.klp_objects), plus a BTF section describing the klp structs.
Written from the ELF-64 gABI, include/uapi/linux/btf.h and the struct
definitions cited in lpc/patch_module.py; nothing here is read back by this
file, so a test compares the reader against what was written.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

#: (e_machine, 64-bit absolute relocation type, byte order) per architecture.
ARCHES = {
    "x86_64": (62, 1, "<"),
    "aarch64": (183, 257, "<"),
    "ppc64le": (21, 38, "<"),
    "ppc64": (21, 38, ">"),
    "s390x": (22, 22, ">"),
}

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 3, 4, 8, 9
SHF_WRITE, SHF_ALLOC, SHF_EXEC = 1, 2, 4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3


@dataclass
class _Sec:
    name: str
    data: bytearray
    type: int
    flags: int
    size: int  # NOBITS: the size; else len(data)


@dataclass
class _Sym:
    name: str
    section: str | None  # None: undefined
    value: int
    size: int
    type: int
    glob: bool


@dataclass
class Elf:
    """Sections, symbols and relocations, written by :meth:`build`."""

    arch: str = "x86_64"
    rela: bool = True
    sections: list[_Sec] = field(default_factory=list)
    symbols: list[_Sym] = field(default_factory=list)
    relocs: dict[str, list[tuple[int, str, int, int | None]]] = field(default_factory=dict)

    @property
    def endian(self) -> str:
        return ARCHES[self.arch][2]

    def section(self, name: str, data: bytes = b"", flags: int = SHF_ALLOC | SHF_WRITE,
                type: int = SHT_PROGBITS, size: int | None = None) -> _Sec:
        sec = _Sec(name, bytearray(data), type, flags, len(data) if size is None else size)
        self.sections.append(sec)
        self.symbols.append(_Sym("", name, 0, 0, STT_SECTION, False))  # its section symbol
        return sec

    def get(self, name: str) -> _Sec:
        return next(s for s in self.sections if s.name == name)

    def symbol(self, name: str, section: str | None, value: int = 0, size: int = 0,
               type: int = STT_NOTYPE, glob: bool = False) -> None:
        self.symbols.append(_Sym(name, section, value, size, type, glob or section is None))

    def put(self, section: str, offset: int, value: int, size: int = 8) -> None:
        fmt = self.endian + {8: "Q", 4: "I", 1: "B"}[size]
        struct.pack_into(fmt, self.get(section).data, offset, value)

    def reloc(self, section: str, offset: int, symbol: str, addend: int = 0,
              rtype: int | None = None) -> None:
        """A pointer at ``section+offset`` to ``symbol`` (a symbol name, or a
        section name for that section's own symbol) + ``addend``. REL keeps the addend
        in the word, as the assembler writes it."""
        rtype = ARCHES[self.arch][1] if rtype is None else rtype
        self.relocs.setdefault(section, []).append((offset, symbol, addend, rtype))
        if not self.rela:
            self.put(section, offset, addend)

    # ---- writing ------------------------------------------------------------------------------

    def build(self) -> bytes:
        e = self.endian
        order = [s for s in self.symbols if not s.glob] + [s for s in self.symbols if s.glob]
        nlocal = 1 + sum(1 for s in self.symbols if not s.glob)
        index_of_sec = {s.name: i + 1 for i, s in enumerate(self.sections)}
        strtab = bytearray(b"\0")
        syms = bytearray(24)
        sym_index: dict[str, int] = {}
        for i, s in enumerate(order, 1):
            name_off = 0
            if s.name:
                name_off = len(strtab)
                strtab += s.name.encode() + b"\0"
            # A section's own symbol is named by the section (no test symbol starts with ".").
            key = s.section or "" if s.type == STT_SECTION else s.name
            sym_index.setdefault(key, i)
            shndx = index_of_sec[s.section] if s.section is not None else 0
            info = (1 if s.glob else 0) << 4 | s.type
            syms += struct.pack(e + "IBBHQQ", name_off, info, 0, shndx, s.value, s.size)
        # Section headers: NULL, user sections, relocation sections, symtab, strtab, shstrtab.
        # (name, data, type, link, info, entsize) of each section the writer adds
        extra: list[tuple[str, bytes, int, int, int, int]] = []
        nuser = len(self.sections)
        symtab_index = nuser + 1 + len(self.relocs)
        for target, entries in self.relocs.items():
            body = bytearray()
            for off, sym, add, rtype in entries:
                info = sym_index[sym] << 32 | rtype
                body += (struct.pack(e + "QQq", off, info, add) if self.rela
                         else struct.pack(e + "QQ", off, info))
            name = (".rela" if self.rela else ".rel") + target
            extra.append((name, bytes(body), SHT_RELA if self.rela else SHT_REL, symtab_index,
                          index_of_sec[target], 24 if self.rela else 16))
        extra.append((".symtab", bytes(syms), SHT_SYMTAB, symtab_index + 1, nlocal, 24))
        extra.append((".strtab", bytes(strtab), SHT_STRTAB, 0, 0, 0))
        shstr = bytearray(b"\0")
        names = []
        for n in [s.name for s in self.sections] + [x[0] for x in extra] + [".shstrtab"]:
            names.append(len(shstr))
            shstr += n.encode() + b"\0"
        extra.append((".shstrtab", bytes(shstr), SHT_STRTAB, 0, 0, 0))
        body = bytearray(64)
        headers = [bytes(64)]
        rows = [(s.name, bytes(s.data), s.type, 0, 0, 0, s.flags, s.size) for s in self.sections]
        rows += [(n, d, t, link, info, ent, 0, len(d)) for n, d, t, link, info, ent in extra]
        for i, (_n, data, typ, link, info, ent, flags, size) in enumerate(rows):
            while len(body) % 8:
                body += b"\0"
            off = len(body)
            if typ != SHT_NOBITS:
                body += data
            headers.append(struct.pack(e + "IIQQQQIIQQ", names[i], typ, flags, 0, off, size,
                                       link, info, 8, ent))
        while len(body) % 8:
            body += b"\0"
        shoff = len(body)
        body += b"".join(headers)
        machine = ARCHES[self.arch][0]
        ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1]) + bytes(9)
        hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, machine, 1, 0, 0, shoff, 0, 64, 0, 0,
                                  64, len(headers), len(headers) - 1)
        body[:64] = hdr
        return bytes(body)


# ---- a patch, and the modules that carry it ------------------------------------------------------

#: One object: its name (None = vmlinux) and its functions (old name, sympos, new function name).
Obj = tuple[str | None, list[tuple[str, int, str]]]


class Strings:
    """A ``.rodata.str1.1``-like section; pointers to its strings relocate
    against its section symbol + offset, as the assembler writes them."""

    def __init__(self, elf: Elf, name: str = ".rodata.str1.1") -> None:
        self.elf, self.name, self.at = elf, name, {}
        elf.section(name, b"", flags=SHF_ALLOC)

    def ref(self, section: str, offset: int, text: str) -> None:
        sec = self.elf.get(self.name)
        if text not in self.at:
            self.at[text] = len(sec.data)
            sec.data += text.encode() + b"\0"
            sec.size = len(sec.data)
        self.elf.reloc(section, offset, self.name, self.at[text])


def _functions(elf: Elf, objects: list[Obj], via_section: bool,
               strip: bool = False) -> dict[str, tuple[str, int]]:
    """A ``.text`` of 16-byte functions, one per new function name: name →
    (symbol to relocate against, addend). ``via_section``: against ``.text`` +
    offset, as for a static function."""
    names = list(dict.fromkeys(new for _, funcs in objects for _, _, new in funcs))
    elf.section(".text", bytes(16 * len(names)), flags=SHF_ALLOC | SHF_EXEC)
    out = {}
    for i, n in enumerate(names):
        if not strip:  # strip --strip-unneeded drops a static function's symbol
            elf.symbol(n, ".text", 16 * i, 16, STT_FUNC)
        out[n] = (".text", 16 * i) if via_section else (n, 0)
    return out


def modinfo(elf: Elf, name: str | None, release: str | None, livepatch: bool = True) -> None:
    items = []
    if livepatch:
        items.append("livepatch=Y")
    if name:
        items.append(f"name={name}")
    if release:
        items.append(f"vermagic={release} SMP preempt mod_unload modversions ")
    elf.section(".modinfo", b"".join(i.encode() + b"\0" for i in items), flags=SHF_ALLOC)


@dataclass(frozen=True)
class Layout:
    """What the writer lays out a static klp_patch with (64-bit)."""

    func_size: int
    object_size: int
    replace: int | None  # klp_patch.replace offset
    patch_size: int = 256


def klp_module(objects: list[Obj], layout: Layout, *, replace: bool = False,
               arch: str = "x86_64", rela: bool = True, release: str | None = "6.1.0-1-amd64",
               name: str | None = "lpc_test", via_section: bool = True,
               this_module_defined: bool = True, decoy: bool = True,
               btf: bytes | None = None, runtime: bool = False,
               array_symbols: bool = True, strip_functions: bool = False,
               dwarf: tuple[bytes, bytes] | None = None,
               empty_object: bool = False, spare: int = 0) -> bytes:
    """A module with a static klp_patch over ``objects``. ``decoy`` adds a
    file_operations-like struct (owner = THIS_MODULE, then a function
    pointer) the reader must not take for the patch; ``runtime`` leaves the
    object array zero in .bss, as a module filling it at load time does;
    ``array_symbols`` names each array with a sized local symbol, as the
    compiler does for a static array; ``spare`` zero elements follow each
    terminator (an array declared longer than its initialiser)."""
    elf = Elf(arch, rela)
    new = _functions(elf, objects, via_section, strip_functions)
    strings = Strings(elf)
    modinfo(elf, name, release)
    if this_module_defined:
        elf.section(".gnu.linkonce.this_module", bytes(0x380))
        elf.symbol("__this_module", ".gnu.linkonce.this_module", 0, 0x380, STT_OBJECT, True)
    else:
        elf.symbol("__this_module", None)
    fsize, osize = layout.func_size, layout.object_size
    decoy_at = 0
    patch_at = 64 if decoy else 0
    objs_at = patch_at + layout.patch_size
    funcs_at = objs_at + osize * (len(objects) + 1 + spare)
    total = funcs_at + sum(fsize * (len(f) + 1 + spare) for _, f in objects)
    elf.section(".data", bytes(total))
    if runtime or empty_object:
        # As lpc_pt: arrays of several zero elements, each with its symbol.
        elf.section(".bss", b"", type=SHT_NOBITS, size=5 * (osize + fsize))
        if array_symbols:
            elf.symbol("bss_objs", ".bss", 0, 5 * osize, STT_OBJECT)
            elf.symbol("bss_funcs", ".bss", 5 * osize, 5 * fsize, STT_OBJECT)
    if decoy:
        elf.reloc(".data", decoy_at, "__this_module")
        elf.reloc(".data", decoy_at + 8, *next(iter(new.values()), (".text", 0)))
    elf.reloc(".data", patch_at, "__this_module")
    elf.reloc(".data", patch_at + 8, ".bss" if runtime else ".data", 0 if runtime else objs_at)
    if replace and layout.replace is not None:
        elf.put(".data", patch_at + layout.replace, 1, 1)
    elf.symbol("patch", ".data", patch_at, layout.patch_size, STT_OBJECT)
    if array_symbols and not runtime:
        elf.symbol("objs", ".data", objs_at, osize * (len(objects) + 1 + spare), STT_OBJECT)
    at = funcs_at
    for i, (obj, funcs) in enumerate(objects):
        here = objs_at + i * osize
        if obj is not None and not runtime:
            strings.ref(".data", here, obj)
        if empty_object and i == len(objects) - 1:
            # The last object's functions are filled at load time, in .bss.
            elf.reloc(".data", here + 8, ".bss", 5 * osize)
            continue
        if not runtime:
            elf.reloc(".data", here + 8, ".data", at)
        if array_symbols:
            elf.symbol(f"funcs{i}", ".data", at, fsize * (len(funcs) + 1 + spare), STT_OBJECT)
        for j, (old, sympos, nf) in enumerate(funcs):
            f = at + j * fsize
            strings.ref(".data", f, old)
            elf.reloc(".data", f + 8, *new[nf])
            elf.put(".data", f + 16, sympos)
        at += fsize * (len(funcs) + 1 + spare)
    if btf is not None:
        elf.section(".BTF", btf, flags=0)
    if dwarf is not None:
        elf.section(".debug_abbrev", dwarf[0], flags=0)
        elf.section(".debug_info", dwarf[1], flags=0)
    return elf.build()


def btf_klp(layout: Layout, endian: str = "<", extra_types: int = 3) -> bytes:
    """A .BTF section (include/uapi/linux/btf.h) describing struct klp_func,
    klp_object and klp_patch with ``layout``'s sizes and the usual member
    offsets, after a few unrelated types (INT, PTR, an ENUM) the parser must
    step over."""
    strings = bytearray(b"\0")

    def s(text: str) -> int:
        off = len(strings)
        strings.extend(text.encode() + b"\0")
        return off

    types = bytearray()

    def rec(name: int, kind: int, vlen: int, size: int, tail: bytes = b"") -> None:
        types.extend(struct.pack(endian + "III", name, kind << 24 | vlen, size) + tail)

    rec(s("long"), 1, 0, 8, struct.pack(endian + "I", 64))  # INT, type 1
    for _ in range(extra_types):
        rec(0, 2, 0, 1)  # PTR to type 1
    rec(s("klp_state_e"), 6, 2, 4, struct.pack(endian + "iIiI", s("A"), 0, s("B"), 1))

    def struct_(name: str, size: int, members: list[tuple[str, int]]) -> None:
        tail = b"".join(struct.pack(endian + "III", s(m), 1, off * 8) for m, off in members)
        rec(s(name), 4, len(members), size, tail)

    struct_("klp_func", layout.func_size, [("old_name", 0), ("new_func", 8), ("old_sympos", 16)])
    struct_("klp_object", layout.object_size, [("name", 0), ("funcs", 8)])
    patch_members = [("mod", 0), ("objs", 8)]
    if layout.replace is not None:
        patch_members.append(("replace", layout.replace))
    struct_("klp_patch", layout.patch_size, patch_members)
    hdr = struct.pack(endian + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                      len(strings))
    return hdr + bytes(types) + bytes(strings)


def kpatch_module(objects: list[Obj], *, sympos_field: bool = True, core: bool = False,
                  arch: str = "x86_64", rela: bool = True, name: str = "kpatch_test",
                  via_section: bool = False) -> bytes:
    """kpatch-build output: ``.kpatch.funcs`` of struct kpatch_patch_func (7
    longs with sympos, else 6), objname ``vmlinux`` for vmlinux; the hook's
    undefined symbol says which: klp_enable_patch, or kpatch_register (core)."""
    elf = Elf(arch, rela)
    new = _functions(elf, objects, via_section)
    strings = Strings(elf, ".rodata.kpatch")
    modinfo(elf, name, "5.14.0-1-amd64")
    size = 56 if sympos_field else 48
    flat = [(obj or "vmlinux", old, sp, nf) for obj, funcs in objects for old, sp, nf in funcs]
    elf.section(".kpatch.funcs", bytes(size * len(flat)))
    name_off, obj_off = (40, 48) if sympos_field else (32, 40)
    for i, (obj, old, sp, nf) in enumerate(flat):
        at = i * size
        elf.reloc(".kpatch.funcs", at, *new[nf])
        elf.put(".kpatch.funcs", at + 8, 16)  # new_size
        elf.put(".kpatch.funcs", at + 24, 32)  # old_size
        if sympos_field:
            elf.put(".kpatch.funcs", at + 32, sp)
        strings.ref(".kpatch.funcs", at + name_off, old)
        strings.ref(".kpatch.funcs", at + obj_off, obj)
    elf.symbol("kpatch_register" if core else "klp_enable_patch", None)
    return elf.build()


def klp_build_module(objects: list[Obj], *, arch: str = "x86_64", rela: bool = True,
                     name: str = "livepatch_test") -> bytes:
    """klp-build output (7.x): ``.init.klp_objects`` of 64-byte
    klp_object_ext (no name relocation for vmlinux) and ``.init.klp_funcs``
    of 24-byte klp_func_ext, as objtool's klp-diff writes them."""
    elf = Elf(arch, rela)
    new = _functions(elf, objects, via_section=False)
    strings = Strings(elf, ".init.klp_strings")
    modinfo(elf, name, "7.3.0-1-amd64")
    elf.section(".init.klp_objects", bytes(64 * len(objects)))
    total = sum(len(f) for _, f in objects)
    elf.section(".init.klp_funcs", bytes(24 * total))
    at = 0
    for i, (obj, funcs) in enumerate(objects):
        if obj is not None:
            strings.ref(".init.klp_objects", 64 * i, obj)
        elf.reloc(".init.klp_objects", 64 * i + 8, ".init.klp_funcs", 24 * at)
        elf.put(".init.klp_objects", 64 * i + 56, len(funcs), 4)
        for j, (old, sp, nf) in enumerate(funcs):
            f = 24 * (at + j)
            strings.ref(".init.klp_funcs", f, old)
            elf.reloc(".init.klp_funcs", f + 8, *new[nf])
            elf.put(".init.klp_funcs", f + 16, sp)
        at += len(funcs)
    elf.symbol("klp_enable_patch", None)
    return elf.build()


def plain_module(livepatch: bool = False, arch: str = "x86_64") -> bytes:
    """A module with no patch: a file_operations-like owner struct only."""
    elf = Elf(arch)
    elf.section(".text", bytes(16), flags=SHF_ALLOC | SHF_EXEC)
    elf.symbol("fop_read", ".text", 0, 16, STT_FUNC)
    modinfo(elf, "plain", "6.1.0-1-amd64", livepatch)
    elf.section(".data", bytes(64))
    elf.symbol("__this_module", None)
    elf.reloc(".data", 0, "__this_module")
    elf.reloc(".data", 8, "fop_read")
    return elf.build()


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def dwarf_klp(layout: Layout, endian: str = "<") -> tuple[bytes, bytes]:
    """``(.debug_abbrev, .debug_info)``: one DWARF 4 compile unit describing a
    base type and struct klp_func, klp_object and klp_patch with ``layout``'s
    sizes (names inline, DW_FORM_string; offsets DW_FORM_data2), so the
    abbreviation offset 0 needs no relocation."""
    string, data1, data2 = 0x08, 0x0B, 0x05
    abbrev = b"".join([
        _uleb(1) + _uleb(0x11) + b"\x01" + _uleb(0x03) + _uleb(string) + b"\0\0",  # compile_unit
        _uleb(2) + _uleb(0x13) + b"\x01" + _uleb(0x03) + _uleb(string)  # structure_type
        + _uleb(0x0B) + _uleb(data2) + b"\0\0",
        _uleb(3) + _uleb(0x0D) + b"\x00" + _uleb(0x03) + _uleb(string)  # member
        + _uleb(0x38) + _uleb(data2) + b"\0\0",
        _uleb(4) + _uleb(0x24) + b"\x00" + _uleb(0x03) + _uleb(string)  # base_type
        + _uleb(0x0B) + _uleb(data1) + b"\0\0",
        b"\0",
    ])
    h = struct.Struct(endian + "H")

    def struct_(name: str, size: int, members: list[tuple[str, int]]) -> bytes:
        body = _uleb(2) + name.encode() + b"\0" + h.pack(size)
        for m, off in members:
            body += _uleb(3) + m.encode() + b"\0" + h.pack(off)
        return body + b"\0"

    patch_members = [("mod", 0), ("objs", 8)]
    if layout.replace is not None:
        patch_members.append(("replace", layout.replace))
    dies = (_uleb(1) + b"gen.c\0" + _uleb(4) + b"long\0\x08"
            + struct_("klp_func", layout.func_size,
                      [("old_name", 0), ("new_func", 8), ("old_sympos", 16)])
            + struct_("klp_object", layout.object_size, [("name", 0), ("funcs", 8)])
            + struct_("klp_patch", layout.patch_size, patch_members) + b"\0")
    rest = struct.pack(endian + "HIB", 4, 0, 8) + dies
    return abbrev, struct.pack(endian + "I", len(rest)) + rest
