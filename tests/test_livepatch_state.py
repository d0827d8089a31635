"""The machine's livepatch state: the recorded format, sysfs as lpc reads it,
the loaded patches it stands for, the kernel's refusals, and ``lpc watch``
following a transition in progress.

The stacked-patch tests run on a real 6.12 guest's dump (tests/data/oracle/
6.12/stacked: lpc_pt patched lpc_sleeper_wait, then lpc_pt_b patched it again
with lpc_sleeper_nap), with the sysfs state that scenario leaves on 6.12
written out by hand in the recorded format.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from hypothesis import given
from hypothesis import strategies as st

from jsonschemas import lines as json_lines
from jsonschemas import loads

from lpc import cli
from lpc.check import CheckRequest, run
from lpc.errors import LivepatchStateError
from lpc.livepatch_state import (
    LivepatchState,
    LoadedObject,
    LoadedPatch,
    PatchStates,
    format_patch_states,
    loaded_patches,
    parse_livepatch_state,
    parse_patch_states,
    read_livepatch_state,
)
from lpc.patch import Patch, PatchFunction
from lpc.symbols import Symbols

DATA = Path(__file__).parent / "data"
#: The recorded format's first line.
H = "# lpc livepatch state 1\n"
STACKED = DATA / "oracle" / "6.12" / "stacked"

# ---- the recorded format -------------------------------------------------------------------------

names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
flags = st.one_of(st.none(), st.booleans())


@st.composite
def states(draw: st.DrawFn) -> LivepatchState:
    if not draw(st.booleans()) and draw(st.booleans()):
        return LivepatchState(False, (), "drawn")
    patch_names = draw(st.lists(names, min_size=0, max_size=4, unique=True))
    patches = []
    for name in patch_names:
        objs = draw(st.lists(st.one_of(st.none(), names), min_size=1, max_size=3, unique=True))
        objects = tuple(
            LoadedObject(o, draw(flags), tuple(draw(st.lists(
                st.tuples(names, st.integers(1, 4)), max_size=3, unique=True))))
            for o in objs if o != "vmlinux")
        patches.append(LoadedPatch(name, draw(flags), draw(flags), draw(flags),
                                   draw(st.one_of(st.none(), st.integers(1, 9))), objects))
    return LivepatchState(True, tuple(patches), "drawn", draw(st.one_of(
        st.none(), st.integers(0, 10**6).map(float))))


@given(states())
def test_the_recorded_format_reads_back_what_was_written(state: LivepatchState) -> None:
    text = "\n".join(state.lines()) + "\n"
    back = parse_livepatch_state(text, "drawn")
    assert back == state


def test_a_recorded_6_12_state_reads_as_the_kernel_shows_it() -> None:
    state = parse_livepatch_state(STACKED_STATE, "stacked.txt")
    assert state.present and not state.unparsed
    assert [p.name for p in state.patches] == ["lpc_pt", "lpc_pt_b"]
    pt, ptb = state.patches
    assert (pt.enabled, pt.transition, pt.replace, pt.stack_order) == (True, False, None, None)
    assert ptb.transition is True and state.in_transition == ptb
    assert ptb.functions == (("lpc_sleeper", "lpc_sleeper_nap", 1),
                             ("lpc_sleeper", "lpc_sleeper_wait", 1))
    assert not state.order_known  # 6.12 has no stack_order: sysfs lists by name


@pytest.mark.parametrize("text, message", [
    ("absent\nlpc_pt/\n", "after 'absent'"),
    ("lpc_pt/\nabsent\n", "'absent' after"),
    ("lpc_pt/\nlpc_pt/enabled 2\n", "state.txt:3: patch lpc_pt enabled: '2' is not 0 or 1"),
    ("lpc_pt/\nlpc_pt/stack_order x\n", "not a number"),
    ("lpc_pt/\nlpc_pt/stack_order \u00b2\n", "not a number"),  # a Unicode digit
    ("lpc_pt/\nlpc_pt/vmlinux/\nlpc_pt/vmlinux/do_nanosleep/\n", "no function directory"),
])
def test_a_state_contradicting_the_sysfs_layout_is_refused_with_its_line(
        text: str, message: str) -> None:
    with pytest.raises(LivepatchStateError, match=message) as err:
        parse_livepatch_state(H + text, "state.txt")
    assert "state.txt" in str(err.value)


@pytest.mark.parametrize("text", ["", "155 0 cat\n", "# uptime=1\n", "lpc_pt/\n"])
def test_a_file_without_the_state_header_is_refused_not_read_as_empty(text: str) -> None:
    with pytest.raises(LivepatchStateError, match="s.txt:1: not a recorded"):
        parse_livepatch_state(text, "s.txt")


def test_a_bad_uptime_or_tid_is_refused_with_its_line() -> None:
    state = parse_livepatch_state("# lpc livepatch state 1 uptime=1.2.3\n", "s")
    assert state.uptime is None  # no number there: not taken
    with pytest.raises(LivepatchStateError, match="p.txt:2"):
        parse_patch_states("# uptime=1\n\u00b2 0 x\n", "p.txt")


def test_lines_that_are_no_entry_are_kept_as_unparsed_never_dropped() -> None:
    state = parse_livepatch_state(H + "lpc_pt/\nlpc_pt/enabled\nwhat is this\n", "s.txt")
    assert state.unparsed == ("s.txt:3: lpc_pt/enabled", "s.txt:4: what is this")
    assert [u for u in state.unknowns if "not understood" in u] == [
        "s.txt:3: lpc_pt/enabled: not understood", "s.txt:4: what is this: not understood"]


def test_sysfs_as_a_directory_tree_reads_like_the_kernel_s(tmp_path: Path) -> None:
    """A tree laid out as core.c lays it out (attributes as files; force, which
    cannot be read, as a file that reads nothing) gives the recorded lines."""
    root = tmp_path / "livepatch"
    fn = root / "lpc_fix" / "vmlinux" / "do_nanosleep,1"
    fn.mkdir(parents=True)
    (root / "lpc_fix" / "lpc_sleeper" / "lpc_sleeper_nap,2").mkdir(parents=True)
    for name, value in (("enabled", "1\n"), ("transition", "1\n"), ("force", ""),
                        ("replace", "1\n"), ("stack_order", "3\n")):
        (root / "lpc_fix" / name).write_text(value)
    (root / "lpc_fix" / "vmlinux" / "patched").write_text("1\n")
    state = read_livepatch_state(root)
    (patch,) = state.patches
    assert (patch.enabled, patch.transition, patch.replace, patch.stack_order) == (
        True, True, True, 3)
    assert set(patch.functions) == {(None, "do_nanosleep", 1),
                                    ("lpc_sleeper", "lpc_sleeper_nap", 2)}
    patched = {o.name: o.patched for o in patch.objects}
    assert patched == {None: True, "lpc_sleeper": None}
    assert "lpc_fix/force !" in state.lines() or not any("force" in x for x in state.lines())
    assert read_livepatch_state(tmp_path / "nowhere").present is False


def test_patch_states_read_back_and_bad_rows_are_refused() -> None:
    states = PatchStates({155: 0, 156: 1, 1: -1})
    states.uptime = 12.5
    back = parse_patch_states(format_patch_states(states, {155: "lpc sleeper"}), "p.txt")
    assert dict(back) == dict(states) and back.uptime == 12.5
    with pytest.raises(LivepatchStateError, match="p.txt:2"):
        parse_patch_states("# uptime=1\n155 2 x\n", "p.txt")


# ---- loaded patches from the state -------------------------------------------------------------

STACKED_STATE = """\
# lpc livepatch state 1 uptime=44.1
lpc_pt/
lpc_pt/enabled 1
lpc_pt/force !
lpc_pt/transition 0
lpc_pt/lpc_sleeper/
lpc_pt/lpc_sleeper/lpc_sleeper_wait,1/
lpc_pt_b/
lpc_pt_b/enabled 1
lpc_pt_b/force !
lpc_pt_b/transition 1
lpc_pt_b/lpc_sleeper/
lpc_pt_b/lpc_sleeper/lpc_sleeper_nap,1/
lpc_pt_b/lpc_sleeper/lpc_sleeper_wait,1/
"""


def test_an_enabled_patch_s_replacement_is_every_function_of_its_module() -> None:
    state = parse_livepatch_state(STACKED_STATE, "s")
    loaded = loaded_patches(state)
    assert [p.name for p in loaded] == ["lpc_pt", "lpc_pt_b"]
    assert all(not p.order_known for p in loaded)
    assert [f.spec for f in loaded[0].functions] == ["lpc_sleeper:lpc_sleeper_wait@1->lpc_pt:*"]
    symbols = Symbols.from_kallsyms(STACKED / "first_kallsyms.txt")
    new = Patch.parse("lpc_sleeper:lpc_sleeper_wait").checked_against(loaded[:1])
    resolved = new.resolve(symbols)
    mine = {s.name for s in symbols.module_functions("lpc_pt")}
    assert {f.name for f in resolved.functions} == mine
    assert "lpc_pt_thunk_0" in mine
    assert all(f.object == "lpc_pt" and f.stands_for for f in resolved.functions)


def test_sympos_0_and_1_are_one_function_as_sysfs_names_both() -> None:
    assert PatchFunction("f").key == PatchFunction("f", sympos=1).key
    assert PatchFunction("f", sympos=2).key != PatchFunction("f", sympos=1).key


def _ranges(patch: Patch) -> set[str]:
    return {f.spec for f in patch.functions}


@given(st.lists(st.tuples(st.sets(st.sampled_from("abcd"), min_size=1), st.booleans()),
                min_size=1, max_size=4),
       st.sets(st.sampled_from("abcde"), min_size=1), st.booleans())
def test_with_the_order_unknown_every_order_s_checked_function_is_checked(
        drawn: list[tuple[set[str], bool]], new: set[str], replace: bool) -> None:
    """Brute force over every load order that leaves all of them registered
    (an atomic replace frees every older patch, so a replace can only be the
    oldest of those sysfs still lists): what any such order would check, the
    unordered (sysfs without stack_order) check checks too."""
    patches = [Patch(tuple(PatchFunction(f, new=PatchFunction(f"{f}_{i}", f"m{i}"))
                           for f in sorted(fs)), replace=rep, name=f"m{i}")
               for i, (fs, rep) in enumerate(drawn)]
    mine = Patch(tuple(PatchFunction(f) for f in sorted(new)), replace=replace)
    unordered = [Patch(p.functions, replace=p.replace, name=p.name, order_known=False)
                 for p in patches]
    wide = _ranges(mine.checked_against(unordered))
    for order in itertools.permutations(patches):
        if any(p.replace for p in order[1:]):
            continue  # it would have freed the ones before it: sysfs would not list them
        assert _ranges(mine.checked_against(list(order))) <= wide


# ---- what the kernel refuses, said first -------------------------------------------------------


def _snapshot_with_state(tmp: Path, state: str, patch_states: str | None = None) -> Path:
    snap = tmp / "snap"
    shutil.copytree(DATA / "procdump-6.18", snap)
    (snap / "livepatch.txt").write_text(state)
    if patch_states is not None:
        (snap / "patch_state.txt").write_text(patch_states)
    return snap


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_sys_kernel_livepatch_means_the_patch_cannot_be_loaded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_with_state(tmp_path, "# lpc livepatch state 1\nabsent\n")
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "pipe_read")
    first = out.splitlines()[0]
    assert first.startswith("refused: -ENODEV") and "CONFIG_LIVEPATCH" in first
    assert "verdict: REFUSED (-ENODEV)" in out
    assert code == 1
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "pipe_read", "--json")
    doc = loads(out, "check")
    assert doc["machine"]["refusals"][0]["code"] == "ENODEV"
    assert code == 1
    # Asked to, lpc leaves the machine's state aside: the stacks alone decide.
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "pipe_read",
                        "--no-machine-state")
    assert "refused" not in out


def test_a_transition_in_progress_refuses_another_patch_with_ebusy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_with_state(tmp_path, STACKED_STATE)
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "pipe_read")
    assert out.splitlines()[0].startswith("refused: -EBUSY: patch lpc_pt_b is in transition")
    assert code == 1


def test_a_disabled_but_registered_patch_is_no_loaded_patch() -> None:
    state = parse_livepatch_state(
        H + "a/\na/enabled 0\na/transition 0\na/vmlinux/\na/vmlinux/f,1/\n", "s")
    assert loaded_patches(state) == ()
    assert state.preflight() == []


# ---- stacked patches from the guest's state, on a real 6.12 dump --------------------------------


def _stacked_request(**kw: object) -> CheckRequest:
    return CheckRequest(
        dump=str(STACKED / "first_sysrq.txt"), symbols=str(STACKED / "first_kallsyms.txt"),
        patch=Patch(Patch.parse("lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap"
                                ).functions, name="lpc_pt_b"), **kw)  # type: ignore[arg-type]


def test_the_stacked_function_is_checked_against_the_loaded_patch_s_module() -> None:
    """lpc_pt_b's own transition, seen through the sysfs state: lpc_pt_b is the
    patch in transition (its functions match), lpc_pt is the loaded one, and
    the kernel's per-task answer (first_states.txt) stands beside lpc's."""
    state = parse_livepatch_state(STACKED_STATE, "stacked")
    states = parse_patch_states((STACKED / "first_states.txt").read_text(), "first_states")
    report = run(_stacked_request(livepatch=state, patch_states=states))
    machine = report.machine
    assert machine is not None and machine.transition is not None
    assert machine.transition.name == "lpc_pt_b" and machine.refusals == ()
    assert [p.name for p in machine.loaded] == ["lpc_pt"]
    result = report.results["klp"]
    by_comm = {t.facts.comm: t for t in result.tasks}
    # lpc_resleeper sleeps in lpc_sleeper_wait, which lpc_pt replaced: the check
    # looks at lpc_pt's functions, on no stack; lpc_sleeper sleeps in
    # lpc_sleeper_nap, patched for the first time.
    assert by_comm["lpc_resleeper"].outcome.verdict.value == "switch"
    assert by_comm["lpc_sleeper"].outcome.verdict.value == "blocked"
    assert machine.kernel_switched(by_comm["lpc_resleeper"].facts.tid) is True
    assert machine.kernel_switched(by_comm["lpc_sleeper"].facts.tid) is False


def test_the_transition_view_names_the_tasks_the_kernel_has_not_switched(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "state.txt"
    state.write_text(STACKED_STATE)
    code, out, _ = _cli(capsys, "check", "--dump", str(STACKED / "first_sysrq.txt"),
                        "--symbols", str(STACKED / "first_kallsyms.txt"),
                        "--patch", "lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap",
                        "--livepatch-state", str(state), "--name", "lpc_pt_b",
                        "--patch-states", str(STACKED / "first_states.txt"))
    view = [x for x in out.splitlines() if x.startswith("transition in progress")]
    assert len(view) == 1 and "lpc_pt_b (patching)" in view[0]
    assert " 1 not yet" in view[0]
    detail = out.splitlines()[out.splitlines().index(view[0]) + 1]
    assert "blocked" in detail and "lpc_sleeper" in detail
    assert "refused" not in out


# ---- capture and watch ---------------------------------------------------------------------------


def test_a_snapshot_records_and_replays_the_state(tmp_path: Path) -> None:
    from lpc.capture import write_snapshot
    from lpc.dump import parse_dump
    from lpc.source import machine_state

    dump = parse_dump(str(DATA / "procdump-6.18"))
    state = parse_livepatch_state(STACKED_STATE, "s")
    states = PatchStates({t.tid: 0 for t in dump.tasks if t.tid is not None})
    out = write_snapshot(dump, tmp_path / "snap", livepatch=state, patch_states=states)
    back, back_states = machine_state(str(out))
    assert back is not None and back.patches == state.patches
    assert back_states is not None and dict(back_states) == dict(states)


def _series(tmp: Path, n: int, final: str) -> list[str]:
    """n snapshots of the 6.18 machine while a patch of pipe_read is in transition,
    its last state ``final``; task 1 switches at the second look."""
    tids = [int(x.split()[2].split("=")[1]) for x in
            (DATA / "procdump-6.18" / "stacks.txt").read_text().splitlines()
            if x.startswith("# pid=")]
    out = []
    for i in range(n):
        snap = tmp / f"s{i}"
        shutil.copytree(DATA / "procdump-6.18", snap)
        last = i == n - 1
        (snap / "livepatch.txt").write_text(H + (
            "fix/\nfix/enabled 1\nfix/transition " + ("0" if last and final == "done" else "1")
            + "\nfix/vmlinux/\nfix/vmlinux/pipe_read,1/\n"
            if not (last and final == "reversed") else
            "fix/\nfix/enabled 0\nfix/transition 1\nfix/vmlinux/\nfix/vmlinux/pipe_read,1/\n"))
        (snap / "patch_state.txt").write_text(
            "# uptime=1\n" + "".join(f"{t} {1 if (t == tids[0] and i) else 0} x\n" for t in tids))
        out.append(str(snap))
    return out


@pytest.mark.parametrize("final, ends", [("done", "completed"), ("reversed", "reversed")])
def test_watch_follows_a_transition_until_it_ends(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], final: str, ends: str) -> None:
    snaps = _series(tmp_path, 4, final)
    argv = ["watch", "--patch", "pipe_read", "--name", "fix", "--json"]
    for s in snaps:
        argv += ["--dump", s]
    code, out, err = _cli(capsys, *argv)
    lines = json_lines(out, "watch")
    assert len(lines) == 4
    assert lines[0]["transition"]["patch"] == "fix"
    assert lines[1]["transition"]["switched"] == lines[0]["transition"]["switched"] + 1
    # a task the kernel has switched is never listed as blocking
    assert all(b["patch_state"] == 0 for x in lines[:3] for b in x["blocking"])
    if final == "done":
        assert "transition" not in lines[3]  # it ended: a plain prediction again
    else:  # reversed: the watch stops there, still counting towards what was asked
        assert lines[3]["transition"]["target"] == 1
    assert f"the transition of fix {ends}" in err
    assert code == (0 if ends == "completed" else 1)


def test_the_live_state_is_read_only_and_absent_here_without_livepatch() -> None:
    if os.path.isdir("/sys/kernel/livepatch"):
        pytest.skip("this kernel has CONFIG_LIVEPATCH")
    state = read_livepatch_state()
    assert not state.present
    assert state.preflight()[0][0] == "ENODEV"


def test_a_loaded_patch_s_module_file_narrows_its_replacements_in_sysfs_order() -> None:
    """Given the module of an enabled patch (here its spec, named as its module
    is), its exact replacement stands in for "every function of the module";
    a given patch sysfs does not list never hides what sysfs shows: both are
    kept, in an unknown order."""
    state = parse_livepatch_state(STACKED_STATE, "stacked")
    exact = Patch.parse("lpc_sleeper:lpc_sleeper_wait->lpc_pt:lpc_pt_thunk_0")
    named = Patch(exact.functions, name="lpc_pt")
    report = run(_stacked_request(livepatch=state, loaded=(named,)))
    assert report.machine is not None
    (loaded,) = report.machine.loaded
    assert [f.spec for f in loaded.functions] == [
        "lpc_sleeper:lpc_sleeper_wait->lpc_pt:lpc_pt_thunk_0"]
    assert loaded.order_known is False  # sysfs's place, sysfs's (unknown) order
    assert "--loaded patches given" in report.machine.loaded_from
    assert report.machine.notes == ()
    checked = {f.name for f in report.results["klp"].patch.functions}
    assert checked == {"lpc_pt_thunk_0", "lpc_sleeper_nap"}
    unnamed = run(_stacked_request(livepatch=state, loaded=(exact,)))
    assert unnamed.machine is not None
    assert [p.name for p in unnamed.machine.loaded] == ["lpc_pt", None]
    assert "sysfs does not list" in unnamed.machine.notes[0]
    checked = {f.name for f in unnamed.results["klp"].patch.functions}
    assert {"lpc_pt_thunk_0", "lpc_pt_exit"} <= checked  # the file's and sysfs's, both
    # A module file that lists other functions than sysfs (another build): both kept.
    other = Patch(Patch.parse("do_nanosleep->lpc_pt:lpc_pt_thunk_3").functions, name="lpc_pt")
    mixed = run(_stacked_request(livepatch=state, loaded=(other,)))
    assert mixed.machine is not None and "another build" in mixed.machine.notes[0]
    (both,) = mixed.machine.loaded
    assert {f.spec for f in both.functions} == {"lpc_sleeper:lpc_sleeper_wait@1->lpc_pt:*",
                                               "do_nanosleep->lpc_pt:lpc_pt_thunk_3"}


def test_kpatch_with_the_order_unknown_checks_every_candidate_replacement() -> None:
    from lpc.models.kpatch import activeness_functions

    a = Patch((PatchFunction("f", new=PatchFunction("f_a", "a")),), name="a", order_known=False)
    b = Patch((PatchFunction("f", new=PatchFunction("f_b", "b")),), name="b", order_known=False)
    checked = activeness_functions(Patch.parse("f"), [a, b])
    assert {f.spec for f in checked.functions} == {"a:f_a", "b:f_b"}
    ordered = activeness_functions(Patch.parse("f"), [a, Patch(b.functions, name="b")])
    assert {f.spec for f in ordered.functions} == {"b:f_b"}


def test_the_text_names_a_whole_module_once(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    state = tmp_path / "state.txt"
    state.write_text(STACKED_STATE)
    code, out, _ = _cli(capsys, "check", "--dump", str(STACKED / "first_sysrq.txt"),
                        "--symbols", str(STACKED / "first_kallsyms.txt"),
                        "--patch", "lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap",
                        "--livepatch-state", str(state), "--model", "all", "--name", "lpc_pt_b")
    patch_line = next(x for x in out.splitlines() if x.startswith("patch: "))
    n = len(Symbols.from_kallsyms(STACKED / "first_kallsyms.txt").module_functions("lpc_pt"))
    assert patch_line == (f"patch: lpc_pt:* ({n} functions: every function of the module), "
                          "lpc_sleeper:lpc_sleeper_nap")
    assert sum(x.startswith("transition in progress") for x in out.splitlines()) == 1


def test_a_module_s_stale_init_symbols_are_not_its_code() -> None:
    """7.3 guest: lpc_fix's init function was freed after loading and
    lpc_sleeper's text now sits at its address, while kallsyms still lists
    lpc_fix_init (and its init_module alias) there. Only the module's live
    functions stand for it."""
    symbols = Symbols.from_kallsyms(DATA / "oracle" / "7.3" / "stacked_sysfs" / "first_kallsyms.txt")
    nap = symbols.lookup("lpc_sleeper_nap", "lpc_sleeper")
    names = {s.name for s in symbols.module_functions("lpc_fix")}
    assert "lpc_fix_sleeper_nap" in names and "cleanup_module" in names
    assert not names & {"lpc_fix_init", "init_module"}
    assert all(not s.address <= nap.address < s.address + s.size
               for s in symbols.module_functions("lpc_fix"))
    with pytest.raises(Exception, match="vmlinux is no livepatch module"):
        symbols.module_functions(None)


def test_loading_an_enabled_patch_again_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.txt"
    state.write_text(H + "lpc_fix/\nlpc_fix/enabled 1\nlpc_fix/transition 0\nlpc_fix/vmlinux/\n"
                     "lpc_fix/vmlinux/do_nanosleep,1/\n")
    ko = DATA / "modules" / "6.1" / "lpc_fix.stripped.ko"
    code, out, _ = _cli(capsys, "check", "--dump", str(STACKED / "first_sysrq.txt"),
                        "--patch-module", str(ko), "--livepatch-state", str(state))
    assert out.splitlines()[0].startswith("refused: -EEXIST: module lpc_fix is loaded already")
    assert "verdict: REFUSED (-EEXIST)" in out and code == 1


def test_patch_states_are_read_per_thread_from_proc(tmp_path: Path) -> None:
    """/proc/PID/task/TID/patch_state, every thread; one that exits meanwhile
    (no file) or a kernel without livepatch (no file anywhere) is left out."""
    from lpc.livepatch_state import read_patch_states

    for pid, tid, value in ((1, 1, "-1\n"), (40, 40, "0\n"), (40, 41, "1\n")):
        d = tmp_path / str(pid) / "task" / str(tid)
        d.mkdir(parents=True)
        (d / "patch_state").write_text(value)
    (tmp_path / "52" / "task" / "52").mkdir(parents=True)  # gone, or no CONFIG_LIVEPATCH
    (tmp_path / "self").mkdir()
    assert dict(read_patch_states(str(tmp_path))) == {1: -1, 40: 0, 41: 1}
    assert dict(read_patch_states(str(tmp_path / "nowhere"))) == {}


def test_watch_stops_at_once_when_the_kernel_would_refuse(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot_with_state(tmp_path, "# lpc livepatch state 1\nabsent\n")
    code, out, err = _cli(capsys, "watch", "--dump", str(snap), "--dump", str(snap),
                          "--patch", "pipe_read", "--json")
    assert out == "" and "refused: -ENODEV" in err and code == 1


def test_unpatching_a_patch_that_is_not_enabled_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.txt"
    state.write_text(H + "lpc_pt/\nlpc_pt/enabled 1\nlpc_pt/transition 0\nlpc_pt/vmlinux/\n"
                     "lpc_pt/vmlinux/pipe_read,1/\n")
    ko = DATA / "modules" / "6.1" / "lpc_fix.stripped.ko"
    argv = ["check", "--dump", str(STACKED / "first_sysrq.txt"), "--patch-module", str(ko),
            "--unpatch", "--livepatch-state", str(state)]
    code, out, _ = _cli(capsys, *argv)
    assert out.splitlines()[0].startswith("refused: -ENOENT: patch lpc_fix is not registered")
    assert code == 1
    state.write_text(state.read_text().replace("lpc_pt", "lpc_fix"))
    code, out, _ = _cli(capsys, *argv)
    assert "refused" not in out  # enabled, so it can be disabled


# ---- from the independent review: each a way to a wrong CONVERGES ----------------------------------


def test_a_function_list_without_a_name_never_takes_over_another_transition(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another module patching the same functions is in transition: the
    kernel refuses this patch (-EBUSY), whatever its functions."""
    state = tmp_path / "s.txt"
    state.write_text(H + "lpc_x/\nlpc_x/enabled 1\nlpc_x/transition 1\nlpc_x/vmlinux/\n"
                     "lpc_x/vmlinux/do_nanosleep,1/\n")
    argv = ["check", "--dump", str(STACKED / "first_sysrq.txt"), "--patch", "do_nanosleep",
            "--livepatch-state", str(state)]
    code, out, _ = _cli(capsys, *argv)
    assert out.startswith("refused: -EBUSY: patch lpc_x is in transition") and code == 1
    code, out, _ = _cli(capsys, *argv, "--name", "lpc_x")  # named: its own transition
    assert "refused" not in out and "transition in progress: lpc_x (patching)" in out


def test_the_direction_asked_for_decides_what_switched_means(tmp_path: Path) -> None:
    """lpc_x is being disabled; a check that patches with it is a reversal
    (writing enabled during a transition reverses it): the target is 1."""
    state = parse_livepatch_state(H + "lpc_x/\nlpc_x/enabled 0\nlpc_x/transition 1\n"
                                  "lpc_x/vmlinux/\nlpc_x/vmlinux/do_nanosleep,1/\n", "s")
    from lpc.check import machine_view

    patching = Patch(Patch.parse("do_nanosleep").functions, name="lpc_x")
    assert machine_view(state, patching, (), None).target == 1
    unpatching = Patch(patching.functions, unpatch=True, name="lpc_x")
    assert machine_view(state, unpatching, (), None).target == 0


def test_an_assumed_replace_frees_nothing_below_a_loaded_patch() -> None:
    """A loaded module whose replace flag the file does not record (kpatch,
    klp-build) is taken as no replace: the older patch stays checked."""
    from lpc.patch_module import PatchModule

    module = PatchModule(format="klp-build", layout="x", layout_source="x", functions=(),
                         replace=True, replace_source="assumed: klp-build's default",
                         notes=(), path="b.ko", module="b", release=None)
    assert module.patch().replace is True  # the patch checked: its nops checked too
    assert module.patch(as_loaded=True).replace is False
    recorded = PatchModule(format="klp", layout="x", layout_source="x", functions=(),
                           replace=True, replace_source="klp_patch.replace in .data",
                           notes=(), path="c.ko", module="c", release=None)
    assert recorded.patch(as_loaded=True).replace is True
    # sysfs-listed patches never free one another: the ones replaced are gone.
    state = parse_livepatch_state(H + "a/\na/enabled 1\na/transition 0\na/replace 1\n"
                                  "a/vmlinux/\na/vmlinux/f,1/\n", "s")
    assert [p.replace for p in loaded_patches(state)] == [False]


def test_unreadable_attributes_are_taken_on_the_cautious_side(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = parse_livepatch_state(H + "a/\na/enabled !\na/transition !\na/vmlinux/\n"
                                  "a/vmlinux/pipe_read,1/\n", "s")
    assert [p.name for p in loaded_patches(state)] == ["a"]  # may be enabled: checked
    assert state.unknowns and "transition unreadable" in state.unknowns[0]
    snap = _snapshot_with_state(tmp_path, H + "a/\na/enabled 1\na/transition !\n"
                                "a/vmlinux/\na/vmlinux/do_nanosleep,1/\n")
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "cmdline_proc_show")
    assert "unknown: patch a: transition unreadable" in out
    # the stacks alone converge (--no-machine-state says so); the state leaves it open
    assert "verdict: UNKNOWN: the machine's livepatch state leaves it open" in out
    assert "the stacks alone: CONVERGES" in out and code == 4  # cannot tell
    code, out, _ = _cli(capsys, "check", "--dump", str(snap), "--patch", "cmdline_proc_show",
                        "--no-machine-state")
    assert "verdict: CONVERGES" in out and code == 0


def test_a_module_still_loaded_after_its_patch_was_freed_cannot_be_loaded_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "s.txt"
    state.write_text(H + "@modules lpc_fix lpc_sleeper\n")
    code, out, _ = _cli(capsys, "check", "--dump", str(STACKED / "first_sysrq.txt"),
                        "--patch-module", str(DATA / "modules" / "6.1" / "lpc_fix.stripped.ko"),
                        "--livepatch-state", str(state))
    assert out.startswith("refused: -EEXIST: module lpc_fix is loaded already") and code == 1
    assert parse_livepatch_state(state.read_text(), "s").modules == {"lpc_fix", "lpc_sleeper"}


def test_watch_does_not_call_a_possibly_forced_end_a_convergence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The transition ends while lpc still saw a task stuck in the patched
    function: sysfs cannot tell a forced end from a completion, so no exit 0."""
    snaps = _series(tmp_path, 2, "done")
    for s in snaps:  # a kthread asleep in pipe_read's caller chain for good
        stacks = Path(s) / "stacks.txt"
        stacks.write_text(stacks.read_text() + (
            "# pid=9999 tid=9999 comm=stuckd state=S flags=0x00208040 kthread=1 cpu=0 "
            "status=ok\n[<0>] pipe_read+0x1/0x10\n[<0>] kthread+0xf8/0x220\n"
            "[<0>] ret_from_fork+0x151/0x170\n[<0>] ret_from_fork_asm+0x1a/0x30\n\n"))
        states = Path(s) / "patch_state.txt"
        states.write_text(states.read_text() + "9999 0 stuckd\n")
    argv = ["watch", "--patch", "pipe_read", "--name", "fix"]
    for s in snaps:
        argv += ["--dump", s]
    code, _, err = _cli(capsys, *argv)
    assert "may have been forced" in err and code == 1


def test_a_thread_the_dump_did_not_show_leaves_the_prediction_open(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """patch_state lists a thread the stack capture missed (born or gone in
    between) and the kernel has not switched: counted, never judged, and the
    prediction for the pending tasks cannot be True."""
    snaps = _series(tmp_path, 2, "done")
    states = Path(snaps[0]) / "patch_state.txt"
    states.write_text(states.read_text() + "424242 0 newborn\n")
    argv = ["watch", "--patch", "cmdline_proc_show", "--name", "fix", "--json", "--dump",
            snaps[0]]
    code, out, _ = _cli(capsys, *argv)
    (line,) = json_lines(out, "watch")
    assert line["transition"]["not_in_dump"] == [424242]
    assert line["pending_converges"] is None
    states.write_text(states.read_text().replace("424242 0 newborn\n", ""))
    code, out, _ = _cli(capsys, *argv)
    (line,) = json_lines(out, "watch")
    assert line["transition"]["not_in_dump"] == []
