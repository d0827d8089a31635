"""lpc.patch_module: the patch a livepatch module file carries.

Synthetic modules (tests/elfgen.py) for every layout, format, architecture
and relocation kind, with random patches the reader must recover exactly;
damaged files must end in ModuleError; real modules built for Debian 6.1,
6.12 and 7.3 (tests/data/modules) must read as their sources say.
"""

from __future__ import annotations

import gzip
import lzma
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import elfgen  # noqa: E402

from jsonschemas import loads
from lpc.cli import build_parser, main, _loaded  # noqa: E402
from lpc.errors import LpcError, ModuleError  # noqa: E402
from lpc.patch import Patch  # noqa: E402
from lpc.patch_module import PatchModule, read_module  # noqa: E402

MODULES = Path(__file__).parent / "data" / "modules"

# Each release's layout, as lpc.patch_module's table states it; the writer lays
# modules out independently from these numbers.
RELEASES = {
    "4.9.0-19-amd64": (elfgen.Layout(120, 96, None), "klp 4.7-4.11"),
    "4.14.0-3-amd64": (elfgen.Layout(144, 96, None), "klp 4.12-4.14"),
    "4.15.0-1-amd64": (elfgen.Layout(144, 136, None), "klp 4.15"),
    "4.19.0-27-amd64": (elfgen.Layout(136, 136, None), "klp 4.16-5.0"),
    "5.4.0-1-amd64": (elfgen.Layout(152, 168, 16), "klp 5.1-5.4"),
    "6.1.0-57-cloud-amd64": (elfgen.Layout(152, 168, 24), "klp 5.5+"),
    "7.3.4+deb13-cloud-amd64": (elfgen.Layout(152, 168, 24), "klp 5.5+"),
}

names = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)


@st.composite
def patches(draw: st.DrawFn) -> list[elfgen.Obj]:
    """1–4 objects (vmlinux at most once), each 1–5 distinct functions with a
    sympos and a replacement drawn from a small pool (shared replacements too)."""
    objs = draw(st.lists(st.one_of(st.none(), names), min_size=1, max_size=4, unique=True))
    pool = draw(st.lists(names.map(lambda n: "new_" + n), min_size=1, max_size=4, unique=True))
    out: list[elfgen.Obj] = []
    for obj in objs:
        olds = draw(st.lists(names, min_size=1, max_size=5, unique=True))
        out.append((obj, [(o, draw(st.integers(0, 9)), draw(st.sampled_from(pool)))
                          for o in olds]))
    return out


def expected(objects: list[elfgen.Obj]) -> list[tuple[str | None, str, int, str]]:
    return [(obj, old, sp, new) for obj, funcs in objects for old, sp, new in funcs]


def got(m: PatchModule) -> list[tuple[str | None, str, int, str | None]]:
    return [(f.object, f.old_name, f.sympos, f.new_func) for f in m.functions]


def write(tmp_path: Path, data: bytes, name: str = "m.ko") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


SIMPLE = [(None, [("do_nanosleep", 0, "fix_nanosleep"), ("cmdline_proc_show", 2, "fix_cmdline")]),
          ("lpc_sleeper", [("lpc_sleeper_nap", 0, "fix_nap")])]


# ---- klp: a static klp_patch, layout by release --------------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          max_examples=150)
@given(objects=patches(), release=st.sampled_from(sorted(RELEASES)),
       arch=st.sampled_from(sorted(elfgen.ARCHES)), rela=st.booleans(),
       via_section=st.booleans(), defined=st.booleans(), decoy=st.booleans(),
       replace=st.booleans(), array_symbols=st.booleans(), spare=st.integers(0, 2))
def test_static_klp_patch_is_recovered_for_every_release_layout(
        tmp_path: Path, objects: list[elfgen.Obj], release: str, arch: str, rela: bool,
        via_section: bool, defined: bool, decoy: bool, replace: bool,
        array_symbols: bool, spare: int) -> None:
    layout, layout_name = RELEASES[release]
    data = elfgen.klp_module(objects, layout, replace=replace, arch=arch, rela=rela,
                             release=release, via_section=via_section,
                             this_module_defined=defined, decoy=decoy,
                             array_symbols=array_symbols, spare=spare)
    m = read_module(write(tmp_path, data))
    assert got(m) == expected(objects)
    assert (m.format, m.layout, m.module, m.release) == ("klp", layout_name, "lpc_test", release)
    assert m.layout_source.startswith(f"assumed for release {release}")
    assert any("assumed for release" in n for n in m.notes)
    # No atomic replace before 5.1: the flag is not even written there.
    assert m.replace is (replace and layout.replace is not None)


def test_release_layout_is_assumed_and_the_patch_carries_it(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    path = write(tmp_path, elfgen.klp_module(SIMPLE, layout, replace=True,
                                             release="6.1.0-57-cloud-amd64"))
    patch = read_module(path).patch()
    assert [f.spec for f in patch.functions] == [
        "do_nanosleep->lpc_test:fix_nanosleep", "cmdline_proc_show@2->lpc_test:fix_cmdline",
        "lpc_sleeper:lpc_sleeper_nap->lpc_test:fix_nap"]
    assert patch.replace and not patch.unpatch
    assert patch.origin is not None and patch.origin.format == "klp"
    assert "assumed for release 6.1.0-57-cloud-amd64" in patch.origin.layout_source
    # --replace wins over a module without it; unpatch checks the replacements.
    plain = read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout), "p.ko"))
    assert not plain.patch().replace and plain.patch(replace=True).replace
    assert [f.name for f in plain.patch(unpatch=True).checked_against().functions] == [
        "fix_nanosleep", "fix_cmdline", "fix_nap"]


def test_a_module_built_with_another_layout_is_refused_not_misread(tmp_path: Path) -> None:
    """A 6.1-layout module whose vermagic says 4.19 (136-byte klp_func): the
    arrays' relocations fall off the assumed fields, so it is refused."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    for symbols in (True, False):
        data = elfgen.klp_module(SIMPLE, layout, release="4.19.0-27-amd64",
                                 array_symbols=symbols)
        with pytest.raises(ModuleError, match="built with another layout"):
            read_module(write(tmp_path, data))


def test_unknown_or_ancient_release_without_debug_info_is_refused(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    with pytest.raises(ModuleError, match="no modinfo vermagic"):
        read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, release=None)))
    with pytest.raises(ModuleError, match="4.7 and later"):
        read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, release="4.4.0-1")))


def test_a_release_newer_than_known_says_so(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    m = read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, release="8.2.0-1")))
    assert got(m) == expected(SIMPLE)
    assert any("newer than any livepatch.h" in n for n in m.notes)


def test_module_name_falls_back_to_the_file_stem(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    m = read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, name=None),
                          "my-fix.ko.xz.ko"))
    assert m.module == "my_fix"


# ---- BTF-described layouts -----------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(objects=patches(), func_size=st.integers(3, 40).map(lambda n: 8 * n),
       object_size=st.integers(2, 30).map(lambda n: 8 * n), replace_at=st.sampled_from([16, 24]),
       replace=st.booleans(), endian_arch=st.sampled_from(["x86_64", "s390x"]))
def test_btf_layout_wins_over_the_release(tmp_path: Path, objects: list[elfgen.Obj],
                                          func_size: int, object_size: int, replace_at: int,
                                          replace: bool, endian_arch: str) -> None:
    """Sizes no release has, described by BTF, with a vermagic naming 6.1:
    only a reader that takes the BTF recovers the patch."""
    object_size = max(object_size, 48)  # callbacks end at +48 in the real one
    layout = elfgen.Layout(func_size, object_size, replace_at)
    btf = elfgen.btf_klp(layout, elfgen.ARCHES[endian_arch][2])
    data = elfgen.klp_module(objects, layout, replace=replace, arch=endian_arch, btf=btf,
                             release="6.1.0-57-cloud-amd64")
    m = read_module(write(tmp_path, data))
    assert got(m) == expected(objects)
    assert m.layout_source == "BTF" and f"klp_func {func_size} bytes" in m.layout
    assert m.replace is replace
    assert not any("assumed for release" in n for n in m.notes)


def test_damaged_btf_is_a_note_and_the_release_layout_is_used(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    btf = bytearray(elfgen.btf_klp(layout))
    btf[31] = 0x1F  # the first type's kind (info's top byte, after the 24-byte header): 31
    m = read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, btf=bytes(btf))))
    assert got(m) == expected(SIMPLE)
    assert any(".BTF section is unreadable" in n for n in m.notes)
    assert m.layout_source.startswith("assumed for release")


# ---- kpatch-build and klp-build ------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(objects=patches(), sympos_field=st.booleans(), core=st.booleans(),
       arch=st.sampled_from(sorted(elfgen.ARCHES)), rela=st.booleans(), via=st.booleans())
def test_kpatch_funcs_are_recovered(tmp_path: Path, objects: list[elfgen.Obj],
                                    sympos_field: bool, core: bool, arch: str, rela: bool,
                                    via: bool) -> None:
    objects = [(o if o != "vmlinux" else "vmlinux_", f) for o, f in objects]
    data = elfgen.kpatch_module(objects, sympos_field=sympos_field, core=core, arch=arch,
                                rela=rela, via_section=via)
    m = read_module(write(tmp_path, data))
    want = [(o, n, sp if sympos_field else 0, new) for o, n, sp, new in expected(objects)]
    assert got(m) == want
    assert m.format == ("kpatch-core" if core else "kpatch")
    assert m.layout.startswith("kpatch_patch_func " + ("with" if sympos_field else "without"))
    # The hook's replace is not data: kpatch's default, assumed and said.
    assert m.replace is (not core)
    assert m.replace_source.startswith("assumed")
    assert any("replace" in n for n in m.notes)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(objects=patches(), arch=st.sampled_from(sorted(elfgen.ARCHES)), rela=st.booleans())
def test_klp_build_objects_are_recovered(tmp_path: Path, objects: list[elfgen.Obj], arch: str,
                                        rela: bool) -> None:
    m = read_module(write(tmp_path, elfgen.klp_build_module(objects, arch=arch, rela=rela)))
    assert got(m) == expected(objects)
    assert (m.format, m.replace) == ("klp-build", True)
    assert "KLP_NO_REPLACE" in " ".join(m.notes)
    assert m.layout_source == "include/linux/livepatch_external.h"


# ---- compression ---------------------------------------------------------------------------------


def test_compressed_modules_are_read_by_their_magic(tmp_path: Path) -> None:
    import zstandard

    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    raw = elfgen.klp_module(SIMPLE, layout, replace=True)
    packed = {"xz": lzma.compress(raw, format=lzma.FORMAT_XZ),
              "zst": zstandard.ZstdCompressor().compress(raw), "gz": gzip.compress(raw)}
    for kind, data in packed.items():
        # A misleading suffix: the magic decides, as kmod's does.
        m = read_module(write(tmp_path, data, f"m.{kind}.ko"))
        assert got(m) == expected(SIMPLE) and m.replace, kind
        with pytest.raises(ModuleError, match="cut short|does not decompress"):
            read_module(write(tmp_path, data[: len(data) // 2], f"cut.{kind}"))


# ---- what is not a patch, and what is damaged ----------------------------------------------------


def test_not_a_livepatch_module(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="not a livepatch module.*no modinfo livepatch=Y"):
        read_module(write(tmp_path, elfgen.plain_module()))
    with pytest.raises(ModuleError, match=r"livepatch=Y\) with no static klp_patch"):
        read_module(write(tmp_path, elfgen.plain_module(livepatch=True)))


@pytest.mark.parametrize("array_symbols", [True, False])
def test_runtime_filled_patch_is_refused_in_one_sentence(tmp_path: Path,
                                                         array_symbols: bool) -> None:
    """As lpc_pt: the objects are a zero .bss array of several elements."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    path = write(tmp_path, elfgen.klp_module(SIMPLE, layout, runtime=True,
                                             array_symbols=array_symbols))
    with pytest.raises(ModuleError) as info:
        read_module(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "filled in at load time" in text
    assert "\n" not in text


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not an ELF file"),
    (b"hello\n", "not an ELF file"),
    (b"\x7fELF\x01\x01\x01" + bytes(60), "32-bit"),
    (b"\x7fELF\x02\x01\x01", "cut short"),
])
def test_not_elf_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        read_module(write(tmp_path, data))


def test_unknown_machine_and_foreign_relocation_are_refused(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    raw = bytearray(elfgen.klp_module(SIMPLE, layout))
    raw[18:20] = (243).to_bytes(2, "little")  # EM_RISCV
    with pytest.raises(ModuleError, match="x86_64, aarch64, ppc64 and s390x"):
        read_module(write(tmp_path, bytes(raw)))
    # A klp_patch → object → func chain whose old_name relocation is R_X86_64_PC32.
    elf = elfgen.Elf()
    strings = elfgen.Strings(elf)
    elfgen.modinfo(elf, "pc32", "6.1.0-57-cloud-amd64")
    elf.section(".data", bytes(64 + 2 * 168 + 2 * 152))
    elf.symbol("__this_module", None)
    elf.reloc(".data", 0, "__this_module")
    elf.reloc(".data", 8, ".data", 64)
    elf.reloc(".data", 64 + 8, ".data", 400)
    strings.ref(".data", 400, "do_nanosleep")
    elf.relocs[".data"][-1] = (400, ".rodata.str1.1", 0, 2)
    with pytest.raises(ModuleError, match=r"\.data\+0x190: relocation type 2, not the 64-bit"):
        read_module(write(tmp_path, elf.build(), "pc32.ko"))
    # Without any klp_patch and without vermagic: said to be no livepatch module.
    with pytest.raises(ModuleError, match="not a livepatch module"):
        read_module(write(tmp_path, elfgen.plain_module(), "plain.ko"))


def test_input_file_errors_are_module_errors(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="cannot read module file"):
        read_module(tmp_path / "missing.ko")
    with pytest.raises(ModuleError, match="must be a regular file"):
        read_module(tmp_path)


def _valid_modules() -> list[bytes]:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    return [elfgen.klp_module(SIMPLE, layout, replace=True),
            elfgen.klp_module(SIMPLE, layout, btf=elfgen.btf_klp(layout), arch="s390x",
                              rela=False),
            elfgen.kpatch_module(SIMPLE), elfgen.klp_build_module(SIMPLE),
            lzma.compress(elfgen.kpatch_module(SIMPLE, sympos_field=False))]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=400)
@given(which=st.integers(0, 4), cut=st.one_of(st.none(), st.integers(0, 1 << 16)),
       edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8))
def test_damaged_files_end_in_module_error_only(tmp_path: Path, which: int, cut: int | None,
                                                 edits: list[tuple[int, int]]) -> None:
    data = bytearray(_valid_modules()[which])
    for at, value in edits:
        data[at % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        m = read_module(write(tmp_path, bytes(data)))
    except ModuleError as exc:
        assert str(exc).startswith(str(tmp_path / "m.ko"))
    else:
        assert m.functions  # a damage that left a readable patch: still a whole one


# ---- the command line ----------------------------------------------------------------------------


@pytest.fixture()
def demo_module(tmp_path: Path) -> Path:
    """A module patching functions the --demo snapshot's symbols hold."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    objects: list[elfgen.Obj] = [(None, [("do_nanosleep", 0, "fix_nanosleep"),
                                         ("worker_thread", 0, "fix_worker")])]
    return write(tmp_path, elfgen.klp_module(objects, layout, replace=True), "lpc_demo.ko")


def test_cli_patch_module_text_says_where_the_patch_came_from(
        capsys: pytest.CaptureFixture[str], demo_module: Path) -> None:
    rc = main(["check", "--demo", "--patch-module", str(demo_module)])
    out = capsys.readouterr().out
    assert rc == 4  # the demo snapshot holds tasks lpc cannot judge: UNKNOWN
    lines = out.splitlines()
    assert lines[0].startswith("source: ")
    assert lines[1].startswith(f"patch: from module lpc_test ({demo_module}), klp, layout klp 5.5+")
    assert lines[2].startswith("  assumed: structure layout assumed for release 6.1.0-1-amd64")
    assert "do_nanosleep" in lines[3] and "worker_thread" in lines[3]


def test_cli_patch_module_json_and_patch_file_reads_modules_too(
        capsys: pytest.CaptureFixture[str], demo_module: Path) -> None:
    for flag in ("--patch-module", "--patch-file"):
        main(["check", "--demo", flag, str(demo_module), "--json"])
        doc = loads(capsys.readouterr().out, "check")
        pm = doc["patch_module"]
        assert (pm["format"], pm["module"], pm["layout"]) == ("klp", "lpc_test", "klp 5.5+")
        assert pm["layout_source"].startswith("assumed for release")
        assert pm["assumed"] and pm["replace_source"] == "klp_patch.replace in .data"
        assert doc["patch"]["replace"] is True
        assert [f["name"] for f in doc["patch"]["functions"]] == ["do_nanosleep",
                                                                   "worker_thread"]
    main(["check", "--demo", "--patch", "do_nanosleep", "--json"])
    assert "patch_module" not in loads(capsys.readouterr().out, "check")


def test_cli_bad_module_exits_3_with_one_line(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    bad = write(tmp_path, elfgen.klp_module(SIMPLE, layout, runtime=True), "lpc_pt.ko")
    for flag in ("--patch-module", "--patch-file"):
        assert main(["check", "--demo", flag, str(bad)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "filled in at load time" in err[0] and str(bad) in err[0]


def test_cli_loaded_reads_a_module_file(tmp_path: Path, demo_module: Path) -> None:
    args = build_parser().parse_args(["check", "--patch", "do_nanosleep", "--loaded",
                                      str(demo_module), "--loaded", "schedule->m:new"])
    loaded = _loaded(args)
    assert isinstance(loaded[0], Patch) and loaded[0].replace
    assert [f.spec for f in loaded[0].functions] == ["do_nanosleep->lpc_test:fix_nanosleep",
                                                     "worker_thread->lpc_test:fix_worker"]
    assert [f.spec for f in loaded[1].functions] == ["schedule->m:new"]
    # The loaded module's replacement is what the new patch is checked against.
    checked = Patch.parse("do_nanosleep").checked_against(loaded[:1])
    assert [f.spec for f in checked.functions] == ["lpc_test:fix_nanosleep"]
    # An atomic replace over it also checks a nop of the function only it patches.
    checked = Patch.parse("do_nanosleep", replace=True).checked_against(loaded[:1])
    assert [f.spec for f in checked.functions] == ["lpc_test:fix_nanosleep",
                                                   "lpc_test:fix_worker"]


def test_patch_from_file_still_refuses_elf_in_library(tmp_path: Path,
                                                      demo_module: Path) -> None:
    with pytest.raises(LpcError, match="patch-module"):
        Patch.from_file(demo_module)


# ---- real modules (built for Debian kernels; tools/oracle) ---------------------------------------

FIX = [(None, "do_nanosleep", 0, "lpc_fix_do_nanosleep"),
       (None, "cmdline_proc_show", 1, "lpc_fix_cmdline_proc_show"),
       ("lpc_sleeper", "lpc_sleeper_wait", 0, "lpc_fix_sleeper_wait"),
       ("lpc_sleeper", "lpc_sleeper_nap", 0, "lpc_fix_sleeper_nap")]
SWAP = [("lpc_sleeper", "lpc_sleeper_nap", 0, "lpc_swap_nap")]
# tests/data/modules/README.md: every series has these three; 6.1 also the
# stripped and compressed copies of lpc_fix.ko (which carries DWARF).
REAL = [(rel, name, want, replace) for rel in ("6.1", "6.12", "7.3")
        for name, want, replace in (("lpc_fix.ko", FIX, False), ("lpc_fix_r.ko", FIX, True),
                                    ("lpc_swap.ko", SWAP, False))]
REAL += [("6.1", name, FIX, False)
         for name in ("lpc_fix.stripped.ko", "lpc_fix.ko.xz", "lpc_fix.ko.zst")]


@pytest.mark.parametrize(("release", "name", "want", "replace"), REAL)
def test_real_module(release: str, name: str, want: list[tuple[str | None, str, int, str]],
                     replace: bool) -> None:
    if not MODULES.is_dir():
        pytest.skip("tests/data/modules comes with the oracle branch (oracle-13)")
    m = read_module(MODULES / release / name)
    assert got(m) == want
    assert m.format == "klp" and m.replace is replace
    assert m.replace_source == "klp_patch.replace in .data"
    assert m.release is not None and m.release.startswith(release + ".")
    if release == "6.1" and name != "lpc_fix.stripped.ko" and name.startswith("lpc_fix."):
        assert m.layout_source == "DWARF"  # built with -g: the layout is known, not assumed
        assert m.layout == "klp (klp_func 152 bytes, klp_object 168)"  # as the table says
        assert not m.notes
    else:
        assert m.layout == "klp 5.5+" and m.layout_source.startswith("assumed for release")
        assert len(m.notes) == 1


def test_stripped_replacements_are_a_note_and_unpatch_is_refused(tmp_path: Path) -> None:
    """A module stripped of its local symbols: relocations against .text + offset
    name no function; the patch is still read, each replacement (which an
    unpatch checks, and a later patch stacks on) standing for the whole module."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    data = elfgen.klp_module(SIMPLE, layout, via_section=True, strip_functions=True)
    m = read_module(write(tmp_path, data))
    assert [(f.old_name, f.new_func) for f in m.functions] == [
        ("do_nanosleep", None), ("cmdline_proc_show", None), ("lpc_sleeper_nap", None)]
    assert sum("has no symbol in the module" in n for n in m.notes) == 3
    # Each replacement is somewhere in the module: every function of it stands for it.
    assert [f.spec for f in m.patch().functions][0] == "do_nanosleep->lpc_test:*"
    unpatch = m.patch(unpatch=True).checked_against(())
    assert {f.spec for f in unpatch.functions} == {"lpc_test:*"}


def test_is_module_file_never_opens_a_fifo(tmp_path: Path) -> None:
    """--patch-file asks whether a path is a module before reading it: a FIFO
    must not be opened (it would block until a writer came)."""
    import os

    from lpc.patch_module import is_module_file

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert not is_module_file(fifo)
    assert not is_module_file(tmp_path / "missing")
    assert is_module_file(write(tmp_path, gzip.compress(b"x"), "x.gz"))
    assert not is_module_file(write(tmp_path, b"do_nanosleep\n", "list.txt"))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(objects=patches(), func_size=st.integers(3, 40).map(lambda n: 8 * n),
       object_size=st.integers(6, 30).map(lambda n: 8 * n), replace=st.booleans(),
       arch=st.sampled_from(["x86_64", "s390x"]), with_btf=st.booleans())
def test_dwarf_layout_wins_over_the_release_and_btf_over_dwarf(
        tmp_path: Path, objects: list[elfgen.Obj], func_size: int, object_size: int,
        replace: bool, arch: str, with_btf: bool) -> None:
    """Sizes no release has, described by DWARF (and by BTF too, or not)."""
    layout = elfgen.Layout(func_size, object_size, 24)
    endian = elfgen.ARCHES[arch][2]
    data = elfgen.klp_module(objects, layout, replace=replace, arch=arch,
                             dwarf=elfgen.dwarf_klp(layout, endian),
                             btf=elfgen.btf_klp(layout, endian) if with_btf else None)
    m = read_module(write(tmp_path, data))
    assert got(m) == expected(objects) and m.replace is replace
    assert m.layout_source == ("BTF" if with_btf else "DWARF")
    assert m.layout == f"klp (klp_func {func_size} bytes, klp_object {object_size})"


def test_damaged_dwarf_is_a_note_and_the_release_layout_is_used(tmp_path: Path) -> None:
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    abbrev, info = elfgen.dwarf_klp(layout)
    info = info[:4] + b"\x63\x00" + info[6:]  # DWARF version 99
    m = read_module(write(tmp_path, elfgen.klp_module(SIMPLE, layout, dwarf=(abbrev, info))))
    assert got(m) == expected(SIMPLE)
    assert any("DWARF is unreadable" in n for n in m.notes)
    assert m.layout_source.startswith("assumed for release")


def test_a_decompression_bomb_stops_at_the_limit(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import zstandard

    import lpc.patch_module as pm

    monkeypatch.setattr(pm, "_FILE_LIMIT", 1 << 20)
    zeros = b"\x7fELF" + bytes(3 << 20)
    for data in (lzma.compress(zeros), gzip.compress(zeros),
                 zstandard.ZstdCompressor().compress(zeros)):
        with pytest.raises(ModuleError, match="decompresses to more than 1 MiB"):
            read_module(write(tmp_path, data))


def test_one_object_filled_at_load_time_refuses_the_whole_patch(tmp_path: Path) -> None:
    """Reading the other objects' functions alone would check less than the
    kernel will patch: refused, naming the object."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    data = elfgen.klp_module(SIMPLE, layout, empty_object=True)
    with pytest.raises(ModuleError, match="klp_object lpc_sleeper's klp_func array is empty"):
        read_module(write(tmp_path, data))


def test_real_lpc_pt_is_refused_as_filled_at_load_time(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parent / "data" / "patch-modules" / "6.1" / "lpc_pt.ko"
    with pytest.raises(ModuleError, match=r"klp_patch \(at \.data\+0x0\) has no function in its "
                                          "static arrays: the patch is filled in at load time"):
        read_module(path)
    assert main(["check", "--demo", "--patch-module", str(path)]) == 3
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_array_symbols_show_a_wrong_layout_that_relocations_cannot(tmp_path: Path) -> None:
    """One object with one function: no relocation shows the stride, but the
    arrays' symbols (2 × 168 and 2 × 152 bytes) are no whole number of the
    136-byte elements 4.19 has: refused. Without those symbols nothing shows
    it, and the one element read is right whatever the stride."""
    layout, _ = RELEASES["6.1.0-57-cloud-amd64"]
    one: list[elfgen.Obj] = [(None, [("do_nanosleep", 0, "fix")])]
    with pytest.raises(ModuleError, match="is the symbol funcs0 of 304 bytes, not a whole"):
        read_module(write(tmp_path, elfgen.klp_module(one, layout, release="4.19.0-27-amd64")))
    m = read_module(write(tmp_path, elfgen.klp_module(one, layout, release="4.19.0-27-amd64",
                                                      array_symbols=False), "n.ko"))
    assert got(m) == expected(one) and m.layout == "klp 4.16-5.0"
