"""The user-facing contract of lpc.patch and lpc.symbols, pinned down where a
mutation run (mutmut, see docs/testing.md) showed that nothing checked it:
the messages a user reads, the JSON fields, defaults, and the less-travelled
lookups. Each test names the behaviour, not the mutant; docs/testing.md lists
the mutants that remain and why they are harmless.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lpc.errors import SymbolError
from lpc.patch import Patch, PatchFunction, PatchSpecError
from lpc.symbols import Symbol, Symbols

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def real() -> Symbols:
    return Symbols.from_kallsyms(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))


# ---- lpc.patch -------------------------------------------------------------------------------------


def test_a_bad_function_names_itself_and_shows_the_syntax() -> None:
    with pytest.raises(PatchSpecError) as err:
        PatchFunction.parse("ext4:bad name@2")
    assert str(err.value) == (
        "bad patch function 'ext4:bad name@2': expected [object:]name[@sympos][->[module:]new], "
        "e.g. cmdline_proc_show or ext4:ext4_file_write_iter@2 or do_nanosleep->lpc_pt:lpc_pt_thunk_0 "
            "(or ->lpc_pt:* for any function of the module)"
    )


def test_an_empty_patch_says_what_is_missing() -> None:
    for spec in ("", " , ,", ","):
        with pytest.raises(PatchSpecError) as err:
            Patch.parse(spec)
        assert str(err.value) == "empty patch: name at least one function"


def test_patching_is_the_default_and_unpatch_is_kept(tmp_path: Path) -> None:
    assert Patch.parse("worker_thread").unpatch is False
    assert Patch.parse("worker_thread", unpatch=True).unpatch is True
    path = tmp_path / "patch.txt"
    path.write_text("worker_thread\n")
    assert Patch.from_file(path).unpatch is False
    assert Patch.from_file(path, unpatch=True).unpatch is True
    assert Patch.from_file(str(path), True).unpatch is True


def test_patch_file_syntax(tmp_path: Path) -> None:
    path = tmp_path / "patch.txt"
    # UTF-8 comments (an author's name) must not trip the reader.
    path.write_text("# patch by Jiří Kosina — CVE fix\n\n  vfs_read , vfs_write\n"
                    "ext4:ext4_file_write_iter@2 # the second one\n#worker_thread\n"
                    "do_wait # a comment # with a second hash, vfs_fsync\n",
                    encoding="utf-8")
    p = Patch.from_file(path)
    assert [f.spec for f in p.functions] == ["vfs_read", "vfs_write", "ext4:ext4_file_write_iter@2",
                                             "do_wait"]


def test_patch_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("vfs_read\n# fine\nvfs write\n")
    with pytest.raises(PatchSpecError) as err:
        Patch.from_file(bad)
    assert str(err.value) == (
        f"{bad}:3: bad patch function 'vfs write': expected [object:]name[@sympos][->[module:]new], "
        "e.g. cmdline_proc_show or ext4:ext4_file_write_iter@2 or do_nanosleep->lpc_pt:lpc_pt_thunk_0 "
            "(or ->lpc_pt:* for any function of the module)"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(PatchSpecError) as err:
        Patch.from_file(empty)
    assert str(err.value) == f"{empty}: no patch function in the file"
    missing = tmp_path / "missing.txt"
    with pytest.raises(PatchSpecError) as err:
        Patch.from_file(missing)
    assert str(err.value) == f"{missing}: cannot read patch file (No such file or directory)"
    with pytest.raises(PatchSpecError) as err:
        Patch.from_file(tmp_path)
    assert str(err.value) == (f"{tmp_path}: patch file must be a regular file, and this is a "
                              "directory")


def test_patch_json_is_exactly_this(real: Symbols) -> None:
    p = Patch.parse("worker_thread,init_once@3", unpatch=True).resolve(real)
    assert p.as_json() == {
        "unpatch": True, "replace": False,
        "functions": [
            {"name": "worker_thread", "object": "vmlinux", "sympos": 0,
             "start": "0xffffffff81381800", "end": "0xffffffff81381b10"},  # + 0x310
            {"name": "init_once", "object": "vmlinux", "sympos": 3,
             "start": "0xffffffff817f6b50", "end": "0xffffffff817f6bd0"},  # + 0x80
        ],
    }
    assert Patch.parse("nfs:nfs_read_folio").as_json() == {
        "unpatch": False, "replace": False,
        "functions": [{"name": "nfs_read_folio", "object": "nfs", "sympos": 0,
                       "start": None, "end": None}],
    }


def test_resolve_errors_name_the_patch_function(real: Symbols) -> None:
    with pytest.raises(SymbolError) as err:
        Patch.parse("worker_thread,no_such_function_anywhere").resolve(real)
    assert str(err.value).startswith("patch function no_such_function_anywhere: no symbol ")
    with pytest.raises(SymbolError) as err:
        Patch.parse("init_once@40").resolve(real)
    assert str(err.value) == ("patch function init_once@40: 'init_once' has no sympos 40 in "
                              "vmlinux: 12 symbol(s) of that name")
    # Resolving keeps the order and the patch direction.
    p = Patch.parse("vfs_write,vfs_read", unpatch=True).resolve(real)
    assert [f.name for f in p.functions] == ["vfs_write", "vfs_read"] and p.unpatch
    assert p.resolved and not Patch.parse("vfs_read").resolved


# ---- lpc.symbols: a small table whose every answer is known ----------------------------------------

#: vmlinux with .sched.text and lock text markers, a duplicated static, a
#: cold part, a data symbol; a module with a build id and one without.
SMALL = """\
ffffffff81000000 T _stext
ffffffff81000000 T start_kernel
ffffffff81000100 t helper
ffffffff81000140 t helper.cold
ffffffff81000180 t dup
ffffffff810001c0 t dup
ffffffff81000200 T __sched_text_start
ffffffff81000200 T schedule
ffffffff81000280 T __sched_text_end
ffffffff81000280 T __lock_text_start
ffffffff81000280 T _raw_spin_lock
ffffffff810002c0 T __lock_text_end
ffffffff810002c0 T _etext
ffffffff82000000 D some_data
ffffffffc0001000 t mod_fn\t[ext4 0123456789abcdef0123456789abcdef01234567]
ffffffffc0001040 t mod_fn.cold\t[ext4 0123456789abcdef0123456789abcdef01234567]
ffffffffc0002000 t other_fn\t[nfs]
"""


@pytest.fixture
def small() -> Symbols:
    # mutmut maps a mutant to the tests whose body ran its code, and code run
    # by a fixture counts for none: tests of the constructor build the table
    # themselves.
    return Symbols.from_kallsyms(SMALL.encode())


def test_the_source_name_of_each_kind_of_input(tmp_path: Path) -> None:
    assert Symbols.from_kallsyms(SMALL.encode()).source == "<bytes>"
    assert Symbols.from_kallsyms(SMALL).source == "<text>"
    path = tmp_path / "kallsyms"
    path.write_text(SMALL)
    assert Symbols.from_kallsyms(path).source == str(path)
    assert Symbols.from_kallsyms(str(path)).source == str(path)
    system_map = "ffffffff81000000 T _stext\nffffffff81000000 T start_kernel\n" \
                 "ffffffff81000100 T _etext\n"
    assert Symbols.from_system_map(system_map).source == "<text>"
    assert Symbols.from_system_map(system_map.encode()).source == "<bytes>"
    assert Symbols.from_system_map(system_map).lookup("start_kernel").size == 0x100
    missing = tmp_path / "nope"
    for load in (Symbols.from_kallsyms, Symbols.from_system_map):
        with pytest.raises(SymbolError) as err:
            load(missing)
        assert str(err.value) == f"{missing}: cannot read symbols (No such file or directory)"
        assert (err.value.path, err.value.message) == (
            str(missing), "cannot read symbols (No such file or directory)")


def test_live_explains_hidden_addresses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import lpc.symbols as symbols_module

    zeros = tmp_path / "kallsyms"
    zeros.write_text("0000000000000000 T start_kernel\n0000000000000000 t helper\n")
    monkeypatch.setattr(symbols_module, "PROC_KALLSYMS", str(zeros))
    with pytest.raises(SymbolError) as err:
        Symbols.live()
    restrict = Path("/proc/sys/kernel/kptr_restrict").read_text().strip() \
        if Path("/proc/sys/kernel/kptr_restrict").exists() else "unknown"
    assert err.value.path == str(zeros)
    assert "address 0" in err.value.message
    assert err.value.message.endswith(
        f" (this process: euid {os.geteuid()}, kernel.kptr_restrict = {restrict})")
    # Any other failure passes through untouched.
    monkeypatch.setattr(symbols_module, "PROC_KALLSYMS", str(tmp_path / "absent"))
    with pytest.raises(SymbolError) as err:
        Symbols.live()
    assert err.value.message == "cannot read symbols (No such file or directory)"


def test_module_build_ids(small: Symbols) -> None:
    assert small.modules == ["ext4", "nfs"]
    assert small.module_build_id("ext4") == "0123456789abcdef0123456789abcdef01234567"
    assert small.module_build_id("nfs") is None
    with pytest.raises(SymbolError) as err:
        small.module_build_id("xfs")
    assert str(err.value) == "no module 'xfs' in <bytes>"


def test_symbol_membership_and_text(small: Symbols) -> None:
    helper = small.lookup("helper")
    assert (helper.address, helper.end) == (0xFFFFFFFF81000100, 0xFFFFFFFF81000140)
    assert helper.address in helper and helper.end - 1 in helper
    assert helper.end not in helper and helper.address - 1 not in helper
    assert float(helper.address) not in helper and "helper" not in helper  # type: ignore[operator]
    assert str(helper) == "helper @ 0xffffffff81000100/0x40"
    assert str(small.lookup("dup", sympos=2)) == "dup,2 @ 0xffffffff810001c0/0x40"
    assert str(small.lookup("mod_fn", module="ext4")) == "mod_fn [ext4] @ 0xffffffffc0001000/0x40"


def test_indexing_and_names(small: Symbols) -> None:
    n = len(small)
    assert small[-1] == small[n - 1] and small[-n] == small[0]
    for bad in (n, -n - 1):
        with pytest.raises(IndexError) as err:
            small[bad]
        assert str(err.value) == f"function index {bad} out of range for {n} functions"
    assert [s.name for s in small] == [small.name_of(i) for i in range(n)]


def test_lookup_messages(small: Symbols) -> None:
    with pytest.raises(SymbolError) as err:
        small.lookup("dup")
    assert str(err.value) == (
        "'dup' is ambiguous in vmlinux: 2 symbols, pass sympos=1..2: "
        "dup,1 (function, type t, 0xffffffff81000180/0x40); "
        "dup,2 (function, type t, 0xffffffff810001c0/0x40)")
    with pytest.raises(SymbolError) as err:
        small.lookup("some_data")
    assert str(err.value) == "'some_data' in vmlinux is not a function: some_data,1 (data, type D)"
    with pytest.raises(SymbolError) as err:
        small.lookup("mod_fn")
    assert str(err.value) == "'mod_fn' is not in vmlinux; it is in: ext4"
    with pytest.raises(SymbolError) as err:
        small.lookup("mod_fn", module="nfs")
    assert str(err.value) == "'mod_fn' is not in nfs; it is in: ext4"
    with pytest.raises(SymbolError) as err:
        small.lookup("dup", sympos=3)
    assert str(err.value) == "'dup' has no sympos 3 in vmlinux: 2 symbol(s) of that name"
    with pytest.raises(SymbolError) as err:
        small.lookup("start_kernel", module="xfs")
    assert str(err.value) == "no module 'xfs' in <bytes> (modules: ext4, nfs)"


def test_lookup_all_and_membership(small: Symbols) -> None:
    assert [(s.name, s.sympos, s.name_count) for s in small.lookup_all("dup")] == [
        ("dup", 1, 2), ("dup", 2, 2)]
    assert small.lookup_all("some_data") == []  # not a function
    assert small.lookup_all("nothing") == []
    assert [s.module for s in small.lookup_all("mod_fn")] == ["ext4"]
    assert "dup" in small and "mod_fn" in small and "schedule" in small
    assert "some_data" not in small and "nothing" not in small and "_etext" not in small
    assert 0xFFFFFFFF81000100 not in small  # names only


def test_columns() -> None:
    small = Symbols.from_kallsyms(SMALL.encode())  # built here: mutmut sees __init__ run
    by_name = {small.name_of(i): i for i in range(len(small))}
    dup1, dup2 = (s.index for s in small.lookup_all("dup"))
    assert small.sympos[dup1] == 1 and small.sympos[dup2] == 2
    assert small.sympos[by_name["helper"]] == 0
    assert small.module_ids[by_name["helper"]] == -1
    assert small.module_ids[by_name["mod_fn"]] == 0 and small.module_ids[by_name["other_fn"]] == 1
    assert small.sizes[by_name["helper.cold"]] == 0x40
    assert small.addresses[by_name["schedule"]] == 0xFFFFFFFF81000200
    assert bool(small.size_exact[by_name["schedule"]])
    assert not bool(small.size_exact[by_name["other_fn"]])  # a module's last function
    for column in (small.addresses, small.sizes, small.size_exact, small.sympos, small.module_ids):
        assert len(column) == len(small)
        with pytest.raises(ValueError):
            column[0] = 0


def test_function_tree(small: Symbols) -> None:
    helper, dup2 = small.lookup("helper"), small.lookup("dup", sympos=2)
    tree = small.function_tree([helper, dup2.index])
    assert tree.find(helper.address) == helper.index and tree.find(dup2.end - 1) == dup2.index
    assert tree.find(dup2.end) is None and tree.find(helper.end) is None
    assert len(tree) == 2 and len(small.function_tree([])) == 0
    for bad in (-1, len(small)):
        with pytest.raises(SymbolError) as err:
            small.function_tree([helper.index, bad])
        assert str(err.value) == f"function index {bad} out of range for {len(small)} functions"


def test_symbolize_rules(small: Symbols) -> None:
    helper = small.lookup("helper")
    ids, offsets = small.symbolize([helper.address, helper.end - 1, helper.end,
                                    0xFFFFFFFF80000000])
    cold = small.lookup("helper.cold").index
    assert ids.tolist() == [helper.index, helper.index, cold, -1]
    assert offsets.tolist() == [0, 0x3F, 0, -1]
    assert ids.dtype == np.int64 and offsets.dtype == np.int64
    # A return address at the very end of a function belongs to it (%pB).
    ids, offsets = small.symbolize(np.array([helper.end, helper.address + 1], dtype=np.uint64),
                                   return_addresses=True)
    assert ids.tolist() == [helper.index, helper.index] and offsets.tolist() == [0x40, 1]
    ids, offsets = small.symbolize(helper.address + 4)
    assert ids.tolist() == [helper.index] and offsets.tolist() == [4]


def test_address_inputs(small: Symbols) -> None:
    base = 0xFFFFFFFF81000100
    want = small.lookup("helper").index
    for good in ([base, np.uint64(base)], (base, base), np.array([[base], [base]], dtype=np.uint64),
                 np.array([base, base], dtype=np.uint64), range(base, base + 2)):
        assert small.symbolize(good)[0].tolist() == [want, want]
    assert small.symbolize(np.array([5, 6], dtype=np.int64))[0].tolist() == [-1, -1]
    assert small.symbolize(np.array([5], dtype=np.uint8))[0].tolist() == [-1]
    for bad, kind, text in [
        ([base, 1.0], TypeError, "addresses: expected integers"),
        ([True], TypeError, "addresses: expected integers"),
        (["0x1"], TypeError, "addresses: expected integers"),
        ([2**64], ValueError, "addresses: every address must be in [0, 2**64)"),
        ([-1], ValueError, "addresses: every address must be in [0, 2**64)"),
        (np.array([1, -1]), ValueError, "addresses: every address must be in [0, 2**64)"),
        (np.array([1.0]), TypeError, "addresses: expected an integer array, got dtype float64"),
        (np.array([True]), TypeError, "addresses: expected an integer array, got dtype bool"),
    ]:
        with pytest.raises(kind) as err:
            small.symbolize(bad)
        assert str(err.value) == text


def test_resolve_rules(small: Symbols) -> None:
    helper = small.lookup("helper")
    assert small.resolve("helper", 0x10) == helper.address + 0x10
    assert small.resolve("helper", 0x10, 0x40) == helper.address + 0x10
    assert small.resolve("helper", 0x40, 0x40) == helper.end  # %pB: a call ending the function
    assert small.resolve("helper", 0x41) is None and small.resolve("helper", 0x41, 0x40) is None
    assert small.resolve("helper", -1) is None
    assert small.resolve("helper", 0x10, 0x80) is None  # another kernel's helper
    assert small.resolve("dup", 0x10) is None and small.resolve("dup", 0x10, 0x40) is None
    assert small.resolve("mod_fn", 0x8, 0x40, module="ext4") == 0xFFFFFFFFC0001008
    assert small.resolve("mod_fn", 0x8, 0x40) is None and small.resolve("mod_fn", 8, 64, "xfs") is None
    # A module's last function has only a bound for a size: the printed size wins.
    assert small.resolve("other_fn", 0x90, 0xA0, module="nfs") == 0xFFFFFFFFC0002090
    assert small.resolve("some_data", 0) is None


def test_parts(small: Symbols) -> None:
    assert [s.name for s in small.parts_of("helper")] == ["helper.cold"]
    assert small.parts_of("helper", module="ext4") == []
    assert [s.name for s in small.parts_of("mod_fn", module="ext4")] == ["mod_fn.cold"]
    assert small.parts_of("mod_fn") == [] and small.parts_of("dup") == []
    assert Symbols.parent_of("helper.cold") == "helper" and Symbols.parent_of("helper") is None
    assert isinstance(small.parts_of("helper")[0], Symbol)


def test_hidden_text(small: Symbols) -> None:
    assert small.sched_text_range == (0xFFFFFFFF81000200, 0xFFFFFFFF81000280)
    assert small.lock_text_range == (0xFFFFFFFF81000280, 0xFFFFFFFF810002C0)
    probes = [0xFFFFFFFF810001FF, 0xFFFFFFFF81000200, 0xFFFFFFFF8100027F, 0xFFFFFFFF81000280,
              0xFFFFFFFF810002BF, 0xFFFFFFFF810002C0]
    want = [False, True, True, True, True, False]
    assert [small.in_hidden_text(a) for a in probes] == want
    got = small.in_hidden_text(np.array(probes, dtype=np.uint64))
    assert got.dtype == np.bool_ and got.tolist() == want
    assert small.in_hidden_text(np.array([[probes[1]], [probes[0]]])).tolist() == [True, False]
    bare = Symbols.from_kallsyms("ffffffff81000000 T start_kernel\nffffffff81000100 T _etext\n")
    assert bare.sched_text_range is None and bare.lock_text_range is None
    assert not bare.in_hidden_text(0xFFFFFFFF81000010)
    assert bare.in_hidden_text(np.array([0xFFFFFFFF81000010], dtype=np.uint64)).tolist() == [False]


def test_a_module_function_resolves_in_its_module(small: Symbols) -> None:
    (f,) = Patch.parse("ext4:mod_fn").resolve(small).functions
    assert (f.start, f.end, f.object) == (0xFFFFFFFFC0001000, 0xFFFFFFFFC0001040, "ext4")
    with pytest.raises(SymbolError) as err:
        Patch.parse("nfs:mod_fn").resolve(small)
    assert str(err.value) == "patch function nfs:mod_fn: 'mod_fn' is not in nfs; it is in: ext4"


def test_the_first_function_of_a_table_is_a_function_like_any_other() -> None:
    """Function index 0 must not be taken for "no function" anywhere."""
    t = Symbols.from_kallsyms(b"ffffffff81000000 t dup\nffffffff81000040 t dup\n"
                              b"ffffffff81000080 T _etext\n"
                              b"ffffffffc0000000 t shared\t[a]\nffffffffc0001000 t shared\t[b]\n")
    assert [s.index for s in t.lookup_all("dup")] == [0, 1]
    with pytest.raises(SymbolError) as err:
        t.lookup("dup")
    assert str(err.value) == (
        "'dup' is ambiguous in vmlinux: 2 symbols, pass sympos=1..2: "
        "dup,1 (function, type t, 0xffffffff81000000/0x40); "
        "dup,2 (function, type t, 0xffffffff81000040/0x40)")
    with pytest.raises(SymbolError) as err:
        t.lookup("shared")
    assert str(err.value) == "'shared' is not in vmlinux; it is in: a, b"
    with pytest.raises(SymbolError) as err:
        t.function_tree([0, -1])
    assert str(err.value) == "function index -1 out of range for 4 functions"
    assert t.function_tree([0]).find(0xFFFFFFFF81000000) == 0


def test_symbol_fields() -> None:
    small = Symbols.from_kallsyms(SMALL.encode())
    helper = small.lookup("helper")
    assert helper == Symbol(index=helper.index, name="helper", module=None,
                            address=0xFFFFFFFF81000100, size=0x40, sympos=0, name_count=1,
                            type="t", size_exact=True, line=3)
    assert small.sympos.dtype == np.uint32 and small.module_ids.dtype == np.int64
    assert small.addresses.dtype == np.uint64 and small.sizes.dtype == np.uint64


def test_table_warnings() -> None:
    t = Symbols.from_kallsyms(b"ffffffff81000000 T start_kernel\n0000000000000000 t zero_fn\n"
                              b"garbage line\nffffffff81000100 T _etext\n"
                              b"ffffffffc0000000 t last\t[m]\n")
    assert t.warnings == [
        "<bytes>: 1 malformed line(s) skipped, first at line 3: " + t.malformed_samples[0][1],
        "<bytes>: 1 text symbol(s) at address 0 left out",
        "<bytes>: 1 function size(s) are bounds, not the kernel's numbers (a module's last "
        "function: its text end is not in kallsyms)",
        "<bytes>: no __sched_text_start/__sched_text_end markers",
    ]
    assert t.malformed_samples[0][0] == 3 and "garbage line" in t.malformed_samples[0][1]


def test_membership_of_the_first_function_and_odd_inputs() -> None:
    t = Symbols.from_kallsyms(b"ffffffff81000000 t only\nffffffff81000040 T _etext\n")
    assert "only" in t and t.lookup("only").index == 0
    with pytest.raises(SymbolError) as err:
        t.lookup("only", module="ext4")
    assert str(err.value) == "no module 'ext4' in <bytes> (modules: none)"
    # Address 0 is a valid query (a miss), also in a signed array.
    assert t.symbolize(np.array([0, 0xFFFFFFFF81000000], dtype=np.uint64))[0].tolist() == [-1, 0]
    assert t.symbolize(np.array([0, 1], dtype=np.int64))[0].tolist() == [-1, -1]


def test_a_printed_size_below_a_bound_limits_the_offset(small: Symbols) -> None:
    """other_fn's size is only a bound (0xff0); the dump's /0xa0 is the truth."""
    assert small.resolve("other_fn", 0xA0, 0xA0, module="nfs") == 0xFFFFFFFFC00020A0
    assert small.resolve("other_fn", 0xB0, 0xA0, module="nfs") is None
    assert small.resolve("other_fn", 0xB0, module="nfs") == 0xFFFFFFFFC00020B0


def test_load_errors_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(SymbolError) as err:
        Symbols.from_system_map("ffffffff81000000 T f\t[mod]\n")
    assert (err.value.path, err.value.line) == ("<text>", 1)
    assert str(err.value).startswith("<text>:1: no symbol line parsed")
    missing = tmp_path / "missing.ko"
    with pytest.raises(SymbolError) as err:
        Symbols.from_elf(missing)
    assert err.value.path == str(missing)
    assert str(err.value) == f"{missing}: cannot read ELF symbols: No such file or directory"


def test_elf_without_functions_is_refused_naming_the_file(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build an object file")
    source = tmp_path / "data_only.c"
    source.write_text("int only_data = 1;\n")
    obj = tmp_path / "data_only.o"
    subprocess.run([gcc, "-c", str(source), "-o", str(obj)], check=True)
    with pytest.raises(SymbolError) as err:
        Symbols.from_elf(obj)
    assert err.value.path == str(obj) and err.value.line is None
    assert err.value.message == ("no function among 1 symbols (no text symbol of type t, T, w or "
                                 "W other than padding and section markers)")


def test_unreadable_proc_values_read_as_unknown(tmp_path: Path) -> None:
    from lpc.symbols import _read_text

    value = tmp_path / "kptr_restrict"
    value.write_text(" 2\n")
    assert _read_text(str(value)) == "2"
    assert _read_text(str(tmp_path / "absent")) == "unknown"
