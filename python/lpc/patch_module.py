"""The patch a livepatch module (``.ko``, also ``.ko.xz``/``.ko.zst``/``.ko.gz``) carries.

Three kinds of module are read, each from its data and relocations (nothing
is run, no symbol of the patch itself is looked up by name):

``klp``
    A hand-written module (samples/livepatch style): a static ``struct
    klp_patch`` whose ``mod`` is ``THIS_MODULE`` and whose ``objs`` point to a
    zero-terminated array of ``struct klp_object``, each pointing to a
    zero-terminated array of ``struct klp_func``. The structures' layout comes
    from the module's BTF, else its DWARF, else the kernel release of its
    ``vermagic`` (a table of the layouts of include/linux/livepatch.h).
``kpatch`` / ``kpatch-core``
    kpatch-build output: a ``.kpatch.funcs`` section of ``struct
    kpatch_patch_func``; its patch hook builds the klp_patch at load time
    (kpatch kmod/patch/livepatch-patch-hook.c), or, for the old kpatch.ko core,
    hands the functions to ``kpatch_register`` (kmod/patch/kpatch-patch-hook.c).
``klp-build``
    The kernel's own klp-build (7.x): ``.init.klp_objects`` of ``struct
    klp_object_ext`` pointing to ``struct klp_func_ext`` arrays
    (include/linux/livepatch_external.h; scripts/livepatch/init.c builds the
    klp_patch from them at load time).

What the reader could not know from the file (a layout assumed from the
release, a replace flag chosen at build or load time) is said in
:attr:`PatchModule.notes` and carried into the check's report.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpc._files import MiB, inflate_gzip, read_input
from lpc._modelf import SHF_ALLOC, SHF_EXECINSTR, ModuleElf, Pointer, Section
from lpc.errors import InputFileError, ModuleError
from lpc.patch import MODULE_TEXT, Patch, PatchFunction, PatchOrigin

__all__ = ["KlpLayout", "ModuleFunction", "PatchModule", "is_module_file", "read_module"]

#: A livepatch module with debug info is a few MB; a vmlinux is not a module.
_FILE_LIMIT = 256 * MiB
_MAGIC_XZ = b"\xfd7zXZ\x00"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_GZIP = b"\x1f\x8b"
#: At most this many objects or functions per array: a real patch has tens.
_ARRAY_LIMIT = 100_000


# ---- the result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleFunction:
    """One function the module patches."""

    object: str | None  # None = vmlinux
    old_name: str
    sympos: int
    #: The replacement's symbol in the module; None when no symbol names it
    #: (a module stripped of its local symbols).
    new_func: str | None


@dataclass(frozen=True)
class ReadPatch:
    """What one format's reader recovers from the module's data."""

    #: ``klp``, ``kpatch``, ``kpatch-core`` or ``klp-build``.
    format: str
    #: The structure layout read with (e.g. ``klp 5.5+``).
    layout: str
    #: How that layout was known: ``BTF``, ``DWARF``, ``assumed for release X (…)``, or a header.
    layout_source: str
    functions: tuple[ModuleFunction, ...]
    replace: bool
    #: Where ``replace`` came from (the module's data, or an assumption).
    replace_source: str
    #: Everything assumed or doubtful, one sentence each.
    notes: tuple[str, ...]


@dataclass(frozen=True)
class PatchModule(ReadPatch):
    """A livepatch module's patch, and how it was read."""

    path: str
    #: The module's name (modinfo ``name=``, else the file name's stem).
    module: str
    #: The kernel release of modinfo ``vermagic=`` (None without one).
    release: str | None

    @property
    def objects(self) -> tuple[str | None, ...]:
        return tuple(dict.fromkeys(f.object for f in self.functions))

    def origin(self) -> PatchOrigin:
        return PatchOrigin(self.path, self.module, self.format, self.layout, self.layout_source,
                           self.replace_source, self.notes)

    @property
    def replace_assumed(self) -> bool:
        """The file does not record ``replace`` (a build-time macro, a load-time
        parameter): :attr:`replace` is a default, not the module's word."""
        return self.replace_source.startswith("assumed")

    def patch(self, unpatch: bool = False, replace: bool | None = None,
              as_loaded: bool = False) -> Patch:
        """As a :class:`~lpc.patch.Patch`: each function with its replacement
        (a symbol of this module, as kallsyms lists it under ``[module]``).
        ``replace`` overrides the module's flag (the command line's --replace).
        Unpatching checks the replacements: one without a symbol of its own
        (a module stripped of local symbols) is every function of the module.
        A ``replace`` the file does not record is taken on the stricter side:
        on for the patch being checked (its nops are checked too), off for a
        patch already enabled (``as_loaded``: it then frees nothing below it)."""
        if replace is None and self.replace_assumed:
            replace = not as_loaded
        # A replacement with no symbol of its own is somewhere in the module:
        # every function of it stands for it (MODULE_TEXT), a range that holds it.
        funcs = tuple(
            PatchFunction(f.old_name, f.object, f.sympos or None,
                          new=PatchFunction(f.new_func or MODULE_TEXT, self.module))
            for f in self.functions)
        return Patch(funcs, unpatch, self.replace if replace is None else replace,
                     name=self.module, origin=self.origin())


# ---- reading the file ----------------------------------------------------------------------------


def is_module_file(path: str | os.PathLike[str]) -> bool:
    """True when the file starts like an ELF file or a compressed one (xz,
    zstd, gzip): a module, not a list of names. False when unreadable or not
    a regular file (opening a FIFO would block): the caller's own reader then
    says why."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return False
    return head.startswith((b"\x7fELF", _MAGIC_XZ, _MAGIC_ZSTD, _MAGIC_GZIP))


def _decompress(data: bytes, path: str) -> bytes:
    """The ELF image inside ``data``, by its magic bytes (kmod decides the
    same way, not by the suffix). Output is bounded like the input, so a
    small file that inflates without end is refused, not held in memory."""
    import zstandard

    try:
        if data.startswith(_MAGIC_XZ):
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            out = dec.decompress(data, _FILE_LIMIT + 1)
            ok = dec.eof
        elif data.startswith(_MAGIC_ZSTD):
            out, ok = _unzstd(zstandard, data)
        elif data.startswith(_MAGIC_GZIP):
            out, ok = inflate_gzip(data, _FILE_LIMIT)
        else:
            return data
    except (lzma.LZMAError, zlib.error, zstandard.ZstdError, EOFError, ValueError) as exc:
        raise ModuleError(f"a compressed file that does not decompress ({exc})", path) from None
    if len(out) > _FILE_LIMIT:
        raise ModuleError(f"decompresses to more than {_FILE_LIMIT // MiB} MiB: not a module",
                          path)
    if not ok:
        raise ModuleError("a compressed file cut short", path)
    return out


def _unzstd(zstandard: Any, data: bytes) -> tuple[bytes, bool]:
    """A zstd frame, fed 1 KiB at a time (the decompressor has no output
    bound; 1 KiB of RLE blocks inflates to at most ~32 MiB), so a bomb stops
    at the limit: (what came out, whether the frame ended)."""
    dec = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    view = memoryview(data)
    for at in range(0, len(data), 1 << 10):
        out += dec.decompress(view[at:at + (1 << 10)])
        if len(out) > _FILE_LIMIT or dec.eof:
            break
    return bytes(out), bool(dec.eof)


def _image(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    where = os.fspath(path)
    try:
        data = read_input(where, "module file", _FILE_LIMIT)
    except InputFileError as exc:
        raise ModuleError(str(exc).removeprefix(f"{where}: "), where) from None
    return _decompress(data, where), where


def _module_name(info: dict[str, str], path: str) -> str:
    if info.get("name"):
        return info["name"]
    stem = Path(path).name.split(".")[0]
    return stem.replace("-", "_")  # kbuild's KBUILD_MODNAME spelling


def _release(info: dict[str, str]) -> str | None:
    words = info.get("vermagic", "").split()
    return words[0] if words else None


def read_module(path: str | os.PathLike[str]) -> PatchModule:
    """The patch of the livepatch module at ``path``; a :class:`ModuleError`
    naming the file for anything else (not ELF, damaged, not a livepatch
    module, a patch only built at load time)."""
    raw, where = _image(path)
    elf = ModuleElf(raw, where)
    info = elf.modinfo()
    module, release = _module_name(info, where), _release(info)
    if ".init.klp_objects" in elf.by_name:
        found = _read_klp_build(elf)
    elif ".kpatch.funcs" in elf.by_name:
        found = _read_kpatch(elf)
    else:
        found = _read_klp(elf, release, info)
    return PatchModule(**vars(found), path=where, module=module, release=release)


def _replacement(elf: ModuleElf, ptr: Pointer | None, old: str, notes: list[str]) -> str | None:
    """The symbol name of a replacement function; a note when none names it."""
    if ptr is None:
        elf.fail(f"the patch of {old} has no new function")
        raise AssertionError  # unreachable
    name = elf.function_at(ptr)
    if name is None:
        notes.append(f"the replacement of {old} has no symbol in the module (stripped of local "
                     "symbols?): its range cannot be looked up")
    return name


# ---- klp: a static klp_patch ---------------------------------------------------------------------


@dataclass(frozen=True)
class KlpLayout:
    """Offsets and sizes of the external fields of include/linux/livepatch.h's
    structures, 64-bit. Only these fields are read; the sizes step the arrays."""

    name: str
    func_size: int
    object_size: int
    #: Offset of ``klp_patch.replace`` (None: the release has no atomic replace).
    replace: int | None
    old_name: int = 0
    new_func: int = 8
    old_sympos: int = 16
    obj_name: int = 0
    obj_funcs: int = 8
    patch_mod: int = 0
    patch_objs: int = 8


# Sizes assume CONFIG_DEBUG_KOBJECT_RELEASE off (struct kobject is 64 bytes on
# 64-bit; with it on a delayed_work follows kref). A wrong size is caught: the
# arrays' relocations then fall on no pointer field, or their symbols are no
# whole number of elements, and the module is refused.
# The 6.1, 6.12 and 7.3 rows were read from those headers on the build host;
# the older ones from the kernel's history of include/linux/livepatch.h,
# cross-checked against a per-release listing of these three structs in
# Ubuntu's 4.4-6.8 kernels (fields of klp_func/klp_object/klp_patch at 4.8,
# 4.10, 4.13, 4.15, 4.18, 5.0, 5.3, 5.4, 5.8: replace appears by 5.3, states
# between 5.4 and 5.8 — mainline 5.1 and 5.5).
_RELEASE_LAYOUTS: tuple[tuple[tuple[int, int], KlpLayout, str], ...] = (
    # v4.7–v4.11: klp_func {old_name, new_func, old_sympos, old_addr, kobj,
    # enum state, stack_node}; klp_object {name, funcs, kobj, mod, state}
    # (v4.7 dropped klp_object.relocs, which v4.5–4.6 had before funcs).
    ((4, 7), KlpLayout("klp 4.7-4.11", 120, 96, None), "include/linux/livepatch.h of v4.7"),
    # v4.12 (consistency model): klp_func gains bool immediate after old_sympos,
    # old_size/new_size, patched, transition; klp_patch gains immediate (no replace).
    ((4, 12), KlpLayout("klp 4.12-4.14", 144, 96, None), "include/linux/livepatch.h of v4.12"),
    # v4.15: klp_object gains struct klp_callbacks (4 pointers + bool) after funcs.
    ((4, 15), KlpLayout("klp 4.15", 144, 136, None), "include/linux/livepatch.h of v4.15"),
    # v4.16: the immediate flags are gone.
    ((4, 16), KlpLayout("klp 4.16-5.0", 136, 136, None), "include/linux/livepatch.h of v4.16"),
    # v5.1 (atomic replace): klp_func {…, old_func, kobj, node, stack_node,
    # old_size, new_size, nop, patched, transition}; klp_object gains func_list,
    # node, dynamic; klp_patch {mod, objs, replace, …}.
    ((5, 1), KlpLayout("klp 5.1-5.4", 152, 168, 16), "include/linux/livepatch.h of v5.1"),
    # v5.5 (system states): klp_patch {mod, objs, states, replace, …}. Unchanged
    # through 6.1, 6.12 (linux-headers-6.1.0-57-common, -6.12.111+deb12-common)
    # and 7.3 (linux-source-7.3 include/linux/livepatch.h).
    ((5, 5), KlpLayout("klp 5.5+", 152, 168, 24),
     "include/linux/livepatch.h of v5.5 through v7.3"),
)
#: The newest release whose header this table was checked against.
_NEWEST_KNOWN = (7, 3)


def _version(release: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else None


def _layout_for_release(release: str | None, path: str) -> tuple[KlpLayout, str, list[str]]:
    """The layout of ``release``'s livepatch.h, how it is known, and notes."""
    version = _version(release) if release else None
    if version is None:
        raise ModuleError("no BTF or DWARF describes struct klp_func, and no modinfo vermagic "
                          "names the kernel release: the structure layout is unknown", path)
    chosen = [(header, layout) for since, layout, header in _RELEASE_LAYOUTS if version >= since]
    if not chosen:
        raise ModuleError(f"release {release}: lpc knows the livepatch structures of 4.7 and "
                          "later only", path)
    header, layout = chosen[-1]
    notes = [f"structure layout assumed for release {release} ({header}; "
             "CONFIG_DEBUG_KOBJECT_RELEASE off)"]
    if version > _NEWEST_KNOWN:
        notes.append(f"release {release} is newer than any livepatch.h lpc was checked "
                     f"against ({_NEWEST_KNOWN[0]}.{_NEWEST_KNOWN[1]})")
    return layout, f"assumed for release {release} ({header})", notes


def _described_layout(structs: dict[str, tuple[int, dict[str, int]]],
                      how: str) -> KlpLayout | None:
    """A layout from debug info's structs (size, member offsets by name)."""
    if not {"klp_func", "klp_object", "klp_patch"} <= set(structs):
        return None
    (fsize, fm), (osize, om), (_, pm) = (structs[n] for n in ("klp_func", "klp_object",
                                                                "klp_patch"))
    try:
        return KlpLayout(f"klp (klp_func {fsize} bytes, klp_object {osize})", fsize, osize,
                         pm.get("replace"),
                         fm["old_name"], fm["new_func"], fm["old_sympos"], om["name"],
                         om["funcs"], pm["mod"], pm["objs"])
    except KeyError:
        return None  # a struct of another shape (pre-4.5): not one this reader knows


def _klp_layout(elf: ModuleElf, release: str | None
                ) -> tuple[KlpLayout, str, list[str]]:
    notes: list[str] = []
    from_btf = _described_layout(_btf_structs(elf, notes), "BTF")
    if from_btf is not None:
        return from_btf, "BTF", notes
    from_dwarf = _described_layout(_dwarf_structs(elf, notes), "DWARF")
    if from_dwarf is not None:
        return from_dwarf, "DWARF", notes
    layout, source, more = _layout_for_release(release, elf.path)
    return layout, source, notes + more


def _is_data(sec: Section) -> bool:
    return bool(sec.flags & SHF_ALLOC) and not sec.flags & SHF_EXECINSTR


def _candidates(elf: ModuleElf, layout: KlpLayout) -> list[tuple[Section, int]]:
    """Data words relocated to ``__this_module`` (THIS_MODULE), each a possible
    ``klp_patch.mod``. Other structures start with an owner too (a
    file_operations), so each is tried, not trusted."""
    out = []
    for sec in elf.sections:
        if not _is_data(sec) or sec.name == ".gnu.linkonce.this_module":
            continue
        for off, (_type, sym, _add) in sorted(elf.relocations(sec.index).items()):
            if sym < len(elf.symbols) and elf.symbols[sym].name == "__this_module":
                start = off - layout.patch_mod
                if start >= 0:
                    out.append((sec, start))
    return out


def _array_of_objects(elf: ModuleElf, sec: Section, start: int,
                      layout: KlpLayout) -> Pointer | None:
    """The ``objs`` pointer of a candidate klp_patch, when it points to data."""
    if start + layout.patch_objs + 8 > sec.size:
        return None
    try:
        ptr = elf.pointer(sec, start + layout.patch_objs)
    except ModuleError:
        return None  # not a pointer here: not a klp_patch
    if ptr is None or ptr.section is None or not _is_data(elf.sections[ptr.section]):
        return None
    return ptr


#: klp_patch {mod, objs, ...}: the same first two fields in every release, so
#: the patch is found before (and whether or not) its full layout is known.
_PATCH_HEAD = KlpLayout("klp_patch head", 0, 0, None)


def _read_klp(elf: ModuleElf, release: str | None, info: dict[str, str]) -> ReadPatch:
    found = []
    for sec, start in _candidates(elf, _PATCH_HEAD):
        objs = _array_of_objects(elf, sec, start, _PATCH_HEAD)
        if objs is not None:
            found.append((sec, start, objs))
    if not found:
        _not_livepatch(elf, info)
    layout, layout_source, notes = _klp_layout(elf, release)
    if (layout.patch_mod, layout.patch_objs) != (0, 8):
        elf.fail(f"its {layout_source} puts klp_patch.mod/objs at {layout.patch_mod}/"
                 f"{layout.patch_objs}, not 0/8 as every release does")
    if len(found) > 1:
        where = ", ".join(f"{s.name}+{o:#x}" for s, o, _ in found)
        elf.fail(f"several structures look like a klp_patch ({where}): lpc reads one patch "
                 "per module")
    sec, start, objs = found[0]
    functions = _klp_objects(elf, objs, layout, notes)
    if not functions:
        elf.fail("its klp_patch (at "
                 f"{sec.name}+{start:#x}) has no function in its static arrays: the patch "
                 "is filled in at load time (from module parameters?), so the file does not "
                 "say what it patches; name the functions with --patch")
    if layout.replace is None:
        replace, replace_source = False, f"no atomic replace before 5.1 ({layout.name})"
    else:
        replace = bool(elf.word(sec, start + layout.replace, 1))
        replace_source = f"klp_patch.replace in {sec.name}"
        if _replace_is_a_parameter(elf):
            replace_source = ("assumed: a module parameter replace= may set it at load "
                              f"time (klp_patch.replace in {sec.name} is only its default)")
            notes.append("the module has a parameter named replace: klp_patch.replace is "
                         "taken as on for this patch, off when it is a loaded one")
    return ReadPatch("klp", layout.name, layout_source, tuple(functions), replace, replace_source,
                  tuple(notes))


def _replace_is_a_parameter(elf: ModuleElf) -> bool:
    """modinfo ``parmtype=replace:…``: module_param(replace, …) (include/linux/
    moduleparam.h), which init code may copy into klp_patch.replace."""
    sec = elf.by_name.get(".modinfo")
    return sec is not None and any(item.startswith(b"parmtype=replace:")
                                   for item in elf.contents(sec).split(b"\0"))


def _not_livepatch(elf: ModuleElf, info: dict[str, str]) -> None:
    if info.get("livepatch") == "Y":
        elf.fail("a livepatch module (modinfo livepatch=Y) with no static klp_patch, "
                 ".kpatch.funcs or .init.klp_objects: its patch is built at load time, so the "
                 "file does not say what it patches; name the functions with --patch")
    elf.fail("not a livepatch module: no klp_patch, .kpatch.funcs or .init.klp_objects, "
             "and no modinfo livepatch=Y")


#: klp_object.callbacks: four function pointers at +16..+40 (v4.15+).
_CALLBACKS = frozenset({16, 24, 32, 40})


def _check_fields(elf: ModuleElf, base: Pointer, count: int, size: int,
                  fields: frozenset[int], what: str, layout: str) -> None:
    """The array, its terminator included, must fit the layout: every
    relocation inside falls on a pointer field (a callback's only when it
    points to code), and a symbol at its start spans exactly the array.
    Else its element size is not ``size``, and what was read is wrong."""
    assert base.section is not None
    sec = elf.sections[base.section]
    where = f"the {what} array at {sec.name}+{base.offset:#x}"
    end = base.offset + (count + 1) * size
    for off, (_type, sym, _add) in elf.relocations(base.section).items():
        if not base.offset <= off < end:
            continue
        field = (off - base.offset) % size
        if field in fields or (what == "klp_object" and field in _CALLBACKS
                               and _points_to_code(elf, sym)):
            continue
        elf.fail(f"{where} has a pointer at +{off - base.offset:#x}, on no pointer field of "
                 f"the {layout} layout: the module was built with another layout")
    # An array may be declared longer than its initialiser (zero elements after
    # the terminator), so its symbol holds at least the elements read, and a
    # whole number of them.
    symbol = elf.symbol_at(base.section, base.offset)
    if symbol is not None and symbol.size and (symbol.size % size
                                               or symbol.size < end - base.offset):
        elf.fail(f"{where} is the symbol {symbol.name} of {symbol.size} bytes, not a whole "
                 f"number (at least {count + 1}) of {size}-byte elements of the {layout} "
                 "layout: the module was built with another layout")


def _points_to_code(elf: ModuleElf, sym: int) -> bool:
    if sym >= len(elf.symbols) or not elf.symbols[sym].defined:
        return sym < len(elf.symbols)  # an undefined function (a callback in another module)
    shndx = elf.symbols[sym].shndx
    return shndx < len(elf.sections) and bool(elf.sections[shndx].flags & SHF_EXECINSTR)


def _klp_objects(elf: ModuleElf, objs: Pointer, layout: KlpLayout,
                 notes: list[str]) -> list[ModuleFunction]:
    """The functions of each object of the zero-terminated ``objs`` array
    (core.c klp_for_each_object_static: an object ends the array when both
    its name and its funcs are NULL)."""
    assert objs.section is not None
    sec = elf.sections[objs.section]
    out: list[ModuleFunction] = []
    for i in range(_ARRAY_LIMIT):
        at = objs.offset + i * layout.object_size
        name_ptr = elf.pointer(sec, at + layout.obj_name)
        funcs = elf.pointer(sec, at + layout.obj_funcs)
        if name_ptr is None and funcs is None:
            # Callbacks sit at +16..+48 (four pointers) in every layout with them.
            _check_fields(elf, objs, i, layout.object_size,
                          frozenset({layout.obj_name, layout.obj_funcs}), "klp_object",
                          layout.name)
            return out
        obj = None if name_ptr is None else elf.cstring(name_ptr, f"klp_object {i}'s name")
        if funcs is None or funcs.section is None:
            elf.fail(f"klp_object {obj or 'vmlinux'} has no static klp_func array")
            raise AssertionError  # unreachable
        funcs_read = _klp_funcs(elf, funcs, obj, layout, notes)
        if not funcs_read:
            # Part of the patch is written at load time: what the file shows is not all of it.
            elf.fail(f"klp_object {obj or 'vmlinux'}'s klp_func array is empty in the file: the "
                     "patch is filled in at load time, so the file does not say what it "
                     "patches; name the functions with --patch")
        out.extend(funcs_read)
    elf.fail("a klp_object array with no terminator")
    raise AssertionError  # unreachable


def _klp_funcs(elf: ModuleElf, funcs: Pointer, obj: str | None, layout: KlpLayout,
               notes: list[str]) -> list[ModuleFunction]:
    """One object's zero-terminated klp_func array (klp_for_each_func_static:
    a function ends it when old_name, new_func and old_sympos are all zero)."""
    assert funcs.section is not None
    sec = elf.sections[funcs.section]
    out: list[ModuleFunction] = []
    for i in range(_ARRAY_LIMIT):
        at = funcs.offset + i * layout.func_size
        old = elf.pointer(sec, at + layout.old_name)
        new = elf.pointer(sec, at + layout.new_func)
        sympos = elf.word(sec, at + layout.old_sympos)
        if old is None and new is None and not sympos:
            _check_fields(elf, funcs, i, layout.func_size,
                          frozenset({layout.old_name, layout.new_func}), "klp_func",
                          layout.name)
            return out
        if old is None:
            elf.fail(f"klp_func {i} of {obj or 'vmlinux'} has no old_name")
            raise AssertionError  # unreachable
        name = elf.cstring(old, f"klp_func {i}'s old_name")
        out.append(ModuleFunction(obj, name, sympos, _replacement(elf, new, name, notes)))
    elf.fail("a klp_func array with no terminator")
    raise AssertionError  # unreachable


# ---- layouts from BTF and DWARF ------------------------------------------------------------------

#: Bytes after each BTF type record, by kind (include/uapi/linux/btf.h of 6.1):
#: fixed, or per member (``vlen`` of them). None: a kind this reader stops at.
_BTF_FIXED = {1: 4, 2: 0, 3: 12, 7: 0, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0, 14: 4, 16: 0, 17: 4,
              18: 0}
_BTF_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_WANTED = frozenset({"klp_func", "klp_object", "klp_patch"})


def _btf_structs(elf: ModuleElf, notes: list[str]) -> dict[str, tuple[int, dict[str, int]]]:
    """The klp structs a ``.BTF`` section describes (size, member byte offsets).
    A module's BTF is usually split against vmlinux's, which holds these
    structs; then it describes none of them, and the next source is tried."""
    sec = elf.by_name.get(".BTF")
    if sec is None:
        return {}
    data = elf.contents(sec)
    try:
        return _parse_btf(data, elf.endian)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        notes.append(f"the .BTF section is unreadable ({exc}): not used")
        return {}


def _parse_btf(data: bytes, endian: str) -> dict[str, tuple[int, dict[str, int]]]:
    magic, _version, _flags, hdr_len = struct.unpack_from(endian + "HBBI", data, 0)
    if magic != 0xEB9F:
        raise ValueError("bad BTF magic")
    type_off, type_len, str_off, str_len = struct.unpack_from(endian + "IIII", data, 8)
    types = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]

    def name(off: int) -> str:
        end = strings.find(b"\0", off)
        return strings[off:end].decode("utf-8") if 0 <= off < len(strings) and end >= 0 else ""

    out: dict[str, tuple[int, dict[str, int]]] = {}
    pos = 0
    while pos + 12 <= len(types):
        name_off, info, size = struct.unpack_from(endian + "III", types, pos)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        pos += 12
        if kind in _BTF_FIXED:
            pos += _BTF_FIXED[kind]
            continue
        if kind not in _BTF_PER_MEMBER:
            raise ValueError(f"unknown BTF kind {kind}")
        if kind == 4 and name(name_off) in _WANTED:
            members = {}
            for m in range(vlen):
                m_name, _m_type, m_off = struct.unpack_from(endian + "III", types, pos + 12 * m)
                bits = m_off & 0xFFFFFF if kflag else m_off  # kflag: bitfield size in the top byte
                members[name(m_name)] = bits // 8
            out[name(name_off)] = (size, members)
        pos += _BTF_PER_MEMBER[kind] * vlen
    return out


def _dwarf_structs(module: ModuleElf, notes: list[str]) -> dict[str, tuple[int, dict[str, int]]]:
    """The klp structs the module's DWARF describes (a module built with -g,
    as Debian's out-of-tree builds are). pyelftools reads it, from an image
    whose .debug_info this reader relocated; a failure of pyelftools' own is
    a note, and the next source is tried."""
    from elftools.elf.elffile import ELFFile

    if ".debug_info" not in module.by_name:
        return {}
    try:
        elf = ELFFile(io.BytesIO(module.relocated_debug_info()))
        return _dwarf_walk(elf.get_dwarf_info(relocate_dwarf_sections=False))
    except Exception as exc:  # pyelftools raises many kinds on damaged DWARF; none is fatal here
        notes.append(f"the DWARF is unreadable ({type(exc).__name__}: {exc}): not used")
        return {}


def _dwarf_walk(dwarf: Any) -> dict[str, tuple[int, dict[str, int]]]:
    out: dict[str, tuple[int, dict[str, int]]] = {}
    for cu in dwarf.iter_CUs():
        for die in cu.get_top_DIE().iter_children():
            attrs = die.attributes
            if die.tag != "DW_TAG_structure_type" or "DW_AT_byte_size" not in attrs:
                continue
            name = attrs["DW_AT_name"].value.decode() if "DW_AT_name" in attrs else ""
            if name not in _WANTED or name in out:
                continue
            members = {}
            for m in die.iter_children():
                ma = m.attributes
                loc = ma.get("DW_AT_data_member_location")
                # A constant offset (DWARF 3+); an expression form is not one of these structs.
                if m.tag == "DW_TAG_member" and "DW_AT_name" in ma and loc is not None \
                        and isinstance(loc.value, int):
                    members[ma["DW_AT_name"].value.decode()] = loc.value
            out[name] = (int(attrs["DW_AT_byte_size"].value), members)
        if len(out) == len(_WANTED):
            break
    return out


# ---- kpatch-build: .kpatch.funcs -----------------------------------------------------------------

# struct kpatch_patch_func (kpatch kmod/patch/kpatch-patch.h): {new_addr,
# new_size, old_addr, old_size, sympos, name, objname}, 7 longs; before sympos
# was added, 6 (old_addr was old_offset in the oldest). Pointer fields: new_addr,
# name, objname.
_KPATCH_LAYOUTS = (
    ("kpatch_patch_func with sympos (56 bytes)", 56, 0, 32, 40, 48),
    ("kpatch_patch_func without sympos (48 bytes)", 48, 0, None, 32, 40),
)


def _kpatch_layout(elf: ModuleElf, sec: Section) -> tuple[str, int, int, int | None, int, int]:
    """Which kpatch_patch_func the section holds: the one whose pointer fields
    are exactly where the section's relocations are."""
    offsets = set(elf.relocations(sec.index))
    for name, size, new, sympos, nm, objname in _KPATCH_LAYOUTS:
        count = sec.size // size
        want = {i * size + f for i in range(count) for f in (new, nm, objname)}
        if sec.size and sec.size % size == 0 and offsets == want:
            return name, size, new, sympos, nm, objname
    elf.fail("its .kpatch.funcs does not hold kpatch_patch_func entries of a known layout "
             "(56 or 48 bytes, relocated at new_addr, name and objname)")
    raise AssertionError  # unreachable


def _read_kpatch(elf: ModuleElf) -> ReadPatch:
    sec = elf.by_name[".kpatch.funcs"]
    layout, size, new_off, sympos_off, name_off, obj_off = _kpatch_layout(elf, sec)
    notes: list[str] = []
    out = []
    for i in range(sec.size // size):
        at = i * size
        name = elf.cstring(_needed(elf, sec, at + name_off, "name"), "kpatch_patch_func name")
        objname = elf.cstring(_needed(elf, sec, at + obj_off, "objname"),
                              "kpatch_patch_func objname")
        sympos = elf.word(sec, at + sympos_off) if sympos_off is not None else 0
        new = _replacement(elf, elf.pointer(sec, at + new_off), name, notes)
        out.append(ModuleFunction(None if objname == "vmlinux" else objname, name, sympos, new))
    undefined = {s.name for s in elf.symbols if not s.defined}
    if "kpatch_register" in undefined:
        # kmod/patch/kpatch-patch-hook.c: kpatch_register(&kpmod, replace), with
        # replace a module parameter (default false) given at load time.
        notes.append("replace is the kpatch.ko patch's load-time parameter replace= (default "
                     "off), which the file does not record: checked as on (the stricter "
                     "check), and as off when the module is a loaded patch")
        return ReadPatch("kpatch-core", layout, "kpatch kmod/patch/kpatch-patch.h", tuple(out),
                      False, "assumed: kpatch.ko parameter replace= defaults off", tuple(notes))
    # kmod/patch/livepatch-patch-hook.c sets klp_patch.replace = KLP_REPLACE_ENABLE,
    # a macro (true unless kpatch-build --non-replace) compiled into the init code.
    notes.append("replace assumed on: kpatch-build's patch hook sets klp_patch.replace from "
                 "KLP_REPLACE_ENABLE at build time (on unless built with --non-replace), which "
                 "the file does not record as data")
    return ReadPatch("kpatch", layout, "kpatch kmod/patch/kpatch-patch.h", tuple(out), True,
                  "assumed: kpatch-build's default (KLP_REPLACE_ENABLE)", tuple(notes))


def _needed(elf: ModuleElf, sec: Section, offset: int, what: str) -> Pointer:
    ptr = elf.pointer(sec, offset)
    if ptr is None:
        elf.fail(f"{sec.name}+{offset:#x}: {what} is NULL")
        raise AssertionError  # unreachable
    return ptr


# ---- klp-build: .init.klp_objects ----------------------------------------------------------------

# include/linux/livepatch_external.h (7.3): klp_object_ext {name, funcs,
# struct klp_callbacks (4 pointers + bool: 40 bytes), unsigned int nr_funcs}
# = 64 bytes; klp_func_ext {old_name, new_func, unsigned long sympos} = 24.
# A fixed interface between objtool and scripts/livepatch/init.c, not kernel-internal.
_EXT_OBJECT, _EXT_NR_FUNCS, _EXT_FUNC = 64, 56, 24


def _read_klp_build(elf: ModuleElf) -> ReadPatch:
    sec = elf.by_name[".init.klp_objects"]
    if not sec.size or sec.size % _EXT_OBJECT:
        elf.fail(f".init.klp_objects is {sec.size} bytes, not a whole number of "
                 f"{_EXT_OBJECT}-byte klp_object_ext")
    notes: list[str] = []
    out: list[ModuleFunction] = []
    for i in range(sec.size // _EXT_OBJECT):
        at = i * _EXT_OBJECT
        name_ptr = elf.pointer(sec, at)
        # objtool klp-diff.c: no name relocation for vmlinux.
        obj = None if name_ptr is None else elf.cstring(name_ptr, "klp_object_ext name")
        count = elf.word(sec, at + _EXT_NR_FUNCS, 4)
        funcs = elf.pointer(sec, at + 8)
        if count and (funcs is None or funcs.section is None):
            elf.fail(f"klp_object_ext {obj or 'vmlinux'} has {count} functions and no array")
        for j in range(count):
            assert funcs is not None and funcs.section is not None
            fsec, fat = elf.sections[funcs.section], funcs.offset + j * _EXT_FUNC
            old = elf.cstring(_needed(elf, fsec, fat, "old_name"), "klp_func_ext old_name")
            new = _replacement(elf, elf.pointer(fsec, fat + 8), old, notes)
            out.append(ModuleFunction(obj, old, elf.word(fsec, fat + 16), new))
    if not out:
        elf.fail(".init.klp_objects lists no function")
    notes.append("replace assumed on: scripts/livepatch/init.c sets klp_patch.replace unless "
                 "built with KLP_NO_REPLACE (klp-build --no-replace), a compile-time choice "
                 "the file does not record as data")
    return ReadPatch("klp-build", "klp_object_ext/klp_func_ext (64/24 bytes)",
                  "include/linux/livepatch_external.h", tuple(out), True,
                  "assumed: klp-build's default (no KLP_NO_REPLACE)", tuple(notes))
