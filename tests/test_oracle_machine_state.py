"""The issue-13 oracle cases, read the way an engineer's machine is read: the
patch from its module file, the loaded patches from the guest's
``/sys/kernel/livepatch``, and ``lpc watch`` replaying a real transition
snapshot by snapshot against the kernel's ``patch_state``.

Recorded on Debian 6.1.0-57, 6.12.111 and 7.3.4 (tools/oracle; the cases'
``case.json`` say what each scenario does). ``tests/test_oracle.py`` checks
every case agrees task by task; here, that what lpc derives from the guest's
own records is what the scenarios wrote down by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jsonschemas import lines as json_lines
from jsonschemas import loads
from lpc import cli
from lpc.livepatch_state import parse_livepatch_state, parse_patch_states
from lpc.oracle.case import read_case
from lpc.oracle.compare import compare_case, derived, module_path, state_file
from lpc.patch import Patch
from lpc.patch_module import read_module
from lpc.symbols import Symbols

ORACLE = Path(__file__).parent / "data" / "oracle"
SERIES = ["6.1", "6.12", "7.3"]
MACHINE_CASES = [f"{k}/{c}" for k in SERIES
                 for c in ("module_check", "stacked_sysfs", "replace_over_two")]


def _checks_with_state(name: str) -> list[tuple[Path, dict, dict]]:  # type: ignore[type-arg]
    case_dir = ORACLE / name
    case = read_case(case_dir)
    return [(case_dir, spec, case) for spec in case["checks"]
            if state_file(case_dir, spec) is not None]


@pytest.mark.parametrize("name", MACHINE_CASES)
def test_the_patch_from_the_module_file_is_the_one_written_by_hand(name: str) -> None:
    checks = _checks_with_state(name)
    assert checks, "every check of these cases has the guest's sysfs state beside its dump"
    for case_dir, spec, case in checks:
        found = derived(case_dir, spec, case)
        assert found is not None
        patch, _ = found
        hand = Patch.parse(spec["patch"], replace=bool(spec.get("replace")))
        assert {f.key for f in patch.functions} == {f.key for f in hand.functions}, spec["when"]
        assert patch.replace == hand.replace


@pytest.mark.parametrize("name", MACHINE_CASES)
def test_the_loaded_patches_from_sysfs_hold_the_hand_written_ones(name: str) -> None:
    """Each hand-written loaded function (the replacement the scenario knows)
    is among the derived ones: the same function, its replacement standing
    for every function of the same module, which resolves to a set of ranges
    holding the exact replacement in the guest's kallsyms."""
    for case_dir, spec, case in _checks_with_state(name):
        state = parse_livepatch_state(state_file(case_dir, spec).read_text(), "s")  # type: ignore[union-attr]
        if state.in_transition is None:
            continue  # after the transition: the hand spec describes the time before
        found = derived(case_dir, spec, case)
        assert found is not None
        _, loaded = found
        symbols = Symbols.from_kallsyms(case_dir / spec["kallsyms_file"])
        derived_new = {(f.key, f.new.object) for p in loaded for f in p.functions
                       if f.new is not None}
        for text in spec.get("loaded", ()):
            for f in Patch.parse(text).functions:
                assert f.new is not None
                assert (f.key, f.new.object) in derived_new, (spec["when"], f.spec)
                exact = symbols.lookup(f.new.name, f.new.object)
                assert exact.name in {s.name for s in symbols.module_functions(f.new.object)}


@pytest.mark.parametrize("series", SERIES)
def test_a_loaded_module_file_narrows_sysfs_to_the_exact_replacements(series: str) -> None:
    """stacked_sysfs: lpc_fix.ko is the patch below lpc_pt_b. Given as --loaded,
    its module file replaces "every function of lpc_fix" by lpc_fix's exact
    replacements: the very spec the scenario wrote by hand."""
    case_dir = ORACLE / series / "stacked_sysfs"
    case = read_case(case_dir)
    spec = next(s for s in case["checks"] if s["when"] == "first_retry")
    module = read_module(str(module_path(case_dir, case)))
    from lpc.check import machine_view

    state = parse_livepatch_state((case_dir / "first_livepatch.txt").read_text(), "first")
    patch = Patch(Patch.parse(spec["patch"]).functions, name="lpc_pt_b")
    view = machine_view(state, patch, (module.patch(as_loaded=True),), None)
    (below,) = view.loaded
    assert {f.spec for f in below.functions} == {
        g.spec for text in spec["loaded"] for g in Patch.parse(text).functions}
    assert view.transition is not None and view.transition.name == "lpc_pt_b"


@pytest.mark.parametrize("name", MACHINE_CASES + [f"{k}/watch_transition" for k in SERIES])
def test_derived_specs_leave_nothing_unexplained(name: str) -> None:
    assert compare_case(ORACLE / name).unexplained == []


@pytest.mark.parametrize("series", SERIES)
def test_module_check_predicts_the_load_from_the_state_before_it(
        series: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The engineer's own command, before the insmod: the guest's dump and sysfs
    state a moment before lpc_fix was loaded, the committed lpc_fix.ko. lpc
    names the tasks the kernel's first retry then held back."""
    case_dir = ORACLE / series / "module_check"
    ko = Path(__file__).parents[1] / read_case(case_dir)["module_file"]
    code = cli.main(["check", "--dump", str(case_dir / "pre_sysrq.txt"),
                     "--symbols", str(case_dir / "pre_kallsyms.txt"),
                     "--livepatch-state", str(case_dir / "pre_livepatch.txt"),
                     "--patch-module", str(ko), "--json"])
    doc = loads(capsys.readouterr().out, "check")
    assert doc["patch_module"]["module"] == "lpc_fix"
    assert doc["machine"]["refusals"] == []
    assert [p["name"] for p in doc["machine"]["patches"]] == ["lpc_pt"]
    kernel = parse_patch_states((case_dir / "first_states.txt").read_text(), "first")
    held = {t["tid"] for t in doc["tasks"] if t["verdict"] in ("blocked", "running")}
    not_switched = {tid for tid, s in kernel.items() if s == 0}
    assert not_switched <= held | {t["tid"] for t in doc["tasks"]
                                   if t["outlook"] == "at_kernel_exit"}
    # blocked now (the kernel too held tasks back); whether they all switch later
    # lpc cannot tell: UNKNOWN, exit 4
    assert held and doc["summary"]["converges"] is None and code == 4


@pytest.mark.parametrize("series", SERIES)
def test_watch_replays_a_real_transition_as_the_kernel_saw_it(
        series: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each retry line: the kernel's counts are that snapshot's patch_state;
    every task lpc lists is one the kernel has not switched; a task the kernel
    has not switched that lpc would switch, the kernel switched by the next
    snapshot; and the watch ends when sysfs says the transition did."""
    case_dir = ORACLE / series / "watch_transition"
    snaps = read_case(case_dir)["series"]["snapshots"]
    argv = ["watch", "--symbols", str(case_dir / "snap_kallsyms.txt"),
            "--patch", "lpc_sleeper:lpc_sleeper_doze,hrtimer_nanosleep", "--name", "lpc_pt",
            "--json"]
    for s in snaps:
        argv += ["--dump", str(case_dir / s)]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    lines = json_lines(out, "watch")
    assert len(lines) == len(snaps)
    states = [parse_patch_states((case_dir / s / "patch_state.txt").read_text(), s)
              for s in snaps]
    for i, line in enumerate(lines):
        if "transition" not in line:
            assert i == len(lines) - 1  # only the snapshot after the end
            continue
        k = line["transition"]
        assert k["switched"] == sum(1 for v in states[i].values() if v == 1)
        assert k["not_switched"] == sum(1 for v in states[i].values() if v != 1)
        listed = {b["tid"] for b in line["blocking"]}
        assert all(states[i].get(t) == 0 for t in listed)
        would_switch = {t for t, v in states[i].items() if v == 0} - listed
        if i + 1 < len(states):
            assert all(states[i + 1].get(t, 1) == 1 for t in would_switch), (i, would_switch)
    assert "completed" in err and code == 0
