"""klp follows the kernel of the dump (issue 12): each release's rules, each
rule with the kernel source it comes from (docs/kernel-profiles.md).

The table tests hold the profile of a release against what changed when; the
property tests hold every task a 6.16+ kernel could show against the promise
that kernel no longer makes (a cond_resched() switch)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jsonschemas import loads
from lpc.check import check, dump_kernel
from lpc.cli import main
from lpc.dump import parse_dump
from lpc.kernel import Kernel, arch_of_release, parse_version
from lpc.models import Klp, Nudge, Outlook, Stack, SwitchPoint, TaskFacts, TaskKind, Verdict
from lpc.models import get_model
from lpc.patch import Patch, PatchSpecError
from test_check_scenarios import KTHREAD_ROOT, kworker, outlook, sleeper, snapshot, task, verdict
from test_models import task_facts

DATA = Path(__file__).parent / "data"


def klp(release: str | None, arch: str | None = None, **params: object) -> Klp:
    m = get_model("klp", Kernel(release, "test", arch), **params)
    assert isinstance(m, Klp)
    return m


def facts(**kw: object) -> TaskFacts:
    base: dict[str, object] = dict(
        index=0, pid=10, tid=10, comm="t", state="S", kind=TaskKind.USER, kind_evidence="test",
        on_cpu=False, stack=Stack.COMPLETE, depth=5, frames=("a", "b", "c", "d", "e"))
    base.update(kw)
    return TaskFacts(**base)  # type: ignore[arg-type]


# ---- the release and the architecture ------------------------------------------------------


@pytest.mark.parametrize(("release", "version", "arch"), [
    ("6.12.118+deb13-cloud-amd64", (6, 12, 118), "x86_64"),
    ("4.18.0-553.el8_10.x86_64", (4, 18, 0), "x86_64"),
    ("5.15.0-91-generic", (5, 15, 0), None),
    ("6.1.0-57-arm64", (6, 1, 0), "arm64"),
    ("5.14.0-427.el9.ppc64le", (5, 14, 0), "powerpc"),
    ("4.19.0-27-s390x", (4, 19, 0), "s390"),
    ("6.6.0-loongarch64", (6, 6, 0), "loongarch"),
    ("7.0", (7, 0, 0), None),
    ("not a release", None, None),
])
def test_release_and_arch(release: str, version: tuple[int, int, int] | None,
                          arch: str | None) -> None:
    assert parse_version(release) == version
    assert arch_of_release(release) == arch


# ---- the profile of each release -----------------------------------------------------------

#: release → (profile, switch points, auto signals, pins always, regs unreliable, reliable)
PROFILES = {
    # before 4.12: per task, since distributions backported the model (see below)
    "4.10.0-x86_64": ("<4.12", ("kernel_exit", "idle_loop"), False, True, True, False),
    "4.13.0-x86_64": ("4.12+", ("retry", "kernel_exit", "idle_loop"), False, True, True, True),
    # 4.14–4.17: ORC, the default, has no reliable stacks before 4.18
    "4.14.0-x86_64": ("4.12+", ("kernel_exit", "idle_loop"), False, True, True, False),
    "4.19.0-amd64": ("4.16+", ("retry", "kernel_exit", "idle_loop"), False, True, False, True),
    "5.10.0-amd64": ("5.1+", ("retry", "kernel_exit", "idle_loop"), True, True, False, True),
    "6.1.0-57-cloud-amd64": ("5.18+", ("retry", "kernel_exit", "idle_loop"), True, False,
                             False, True),
    "6.12.118-cloud-amd64": ("6.4–6.15", ("retry", "kernel_exit", "idle_loop", "cond_resched"),
                             True, False, False, True),
    "6.18.44-amd64": ("6.16+", ("retry", "kernel_exit", "idle_loop", "freezable_sleep"),
                      True, False, False, True),
    "7.0.1-cloud-amd64": ("6.16+", ("retry", "kernel_exit", "idle_loop", "freezable_sleep"),
                          True, False, False, True),
    # arm64: HAVE_RELIABLE_STACKTRACE from 6.17 (805f13e403cd), and it stops at
    # any exception boundary.
    "6.12.0-arm64": ("6.4–6.15", ("kernel_exit", "idle_loop"), True, False, True, False),
    "6.17.1-arm64": ("6.16+", ("retry", "kernel_exit", "idle_loop", "freezable_sleep"),
                     True, False, True, True),
    "6.12.0-riscv64": ("6.4–6.15", ("kernel_exit", "idle_loop"), True, False, True, False),
    "5.4.0-s390x": ("5.1+", ("kernel_exit", "idle_loop"), True, True, True, False),
    "5.10.0-s390x": ("5.1+", ("retry", "kernel_exit", "idle_loop"), True, True, True, True),
}


@pytest.mark.parametrize("release", sorted(PROFILES))
def test_each_release_has_its_profile(release: str) -> None:
    name, points, auto, pins, regs, reliable = PROFILES[release]
    m = klp(release)
    assert m.profile == name
    assert tuple(p.value for p in m.switch_points) == tuple(SwitchPoint(p).value for p in points)
    assert (m.auto_signals, m.force_pins_always, m.regs_frames_unreliable,
            m.reliable_stacks) == (auto, pins, regs, reliable)


def test_an_unknown_release_gets_the_newest_profile_and_says_so() -> None:
    m = klp(None)
    assert m.profile == "6.16+" and SwitchPoint.FREEZABLE_SLEEP in m.switch_points
    notes = Klp.kernel_notes(Kernel(None, "test"))
    assert any("release unknown" in n for n in notes)
    assert any("architecture unknown" in n for n in notes)


def test_user_parameters_win_over_the_profile() -> None:
    assert klp("6.18.1", cond_resched_switch=True).cond_resched_switch is True
    assert klp("6.12.1", regs_frames_unreliable=True).regs_frames_unreliable is True


def test_before_4_12_the_release_does_not_tell_the_model() -> None:
    """Upstream 4.0–4.11 (b700e7f03df5) has no per-task state: every call is
    redirected at once. Distributions backported the 4.12 model (RHEL 7.5+ on
    3.10), so such a release is judged per task and never said to converge;
    ``consistency_model=False`` states the upstream behaviour."""
    t = facts(patched_frame=1, patched_function="b")
    m = klp("3.10.0-1160.el7.x86_64")
    assert m.consistency_model is None and m.rests_on_evidence
    assert m.judge(t).verdict is not Verdict.SWITCH
    clean = m.judge(facts())
    assert m.judge_transition([], [clean]).converges is None
    assert "per-task model" in m.judge_transition([], [clean]).reason
    upstream = klp("4.9.0", consistency_model=False)
    o = upstream.judge(facts(patched_frame=1, patched_function="b", state="D",
                             evidence_lost="cut"))
    assert (o.verdict, o.outlook) == (Verdict.SWITCH, Outlook.SWITCHED)
    assert o.extra["executing_old"] is True
    assert upstream.judge_transition([], [o]).converges is True
    assert any("backported" in n for n in Klp.kernel_notes(Kernel("3.10.0", "test")))


def test_an_architecture_without_livepatch_cannot_load_a_patch() -> None:
    for release, arch in (("6.12.0", "arm64"), ("6.6.0", "riscv"), ("6.1.0", "arm"),
                          ("6.1.0", "x86")):
        m = klp(release, arch)
        assert not m.has_livepatch
        r = m.judge_transition([], [m.judge(facts())])
        assert r.converges is None and "HAVE_LIVEPATCH" in r.reason
    assert klp("6.17.0", "arm64").has_livepatch


def test_a_runnable_task_may_be_on_its_cpu_where_the_walker_shows_it_anyway() -> None:
    """x86 ORC refuses to walk a task running on another CPU (unwind_orc.c
    task_on_another_cpu): a clean printed stack is an off-CPU task's. Other
    walkers print a running task's stale frame: a runnable kthread with no
    CPU evidence may be on one (-EBUSY), so no switch is promised."""
    t = facts(kind=TaskKind.KTHREAD, state="R", on_cpu=None)
    assert klp("6.18.0-amd64").judge_task(t).verdict is Verdict.SWITCH
    for m in (klp("6.18.0-arm64"), klp("6.18.0-amd64", regs_frames_unreliable=True,
                                        running_stacks_hidden=False), klp("6.18.0", None)):
        o = m.judge_task(t)
        assert o.outlook is Outlook.UNKNOWN and "perhaps on a CPU" in o.reason, m.profile
    user = facts(kind=TaskKind.USER, state="R", on_cpu=None)
    assert klp("6.18.0-arm64").judge_task(user).outlook is Outlook.AT_KERNEL_EXIT


def test_the_profile_name_is_checked() -> None:
    with pytest.raises(ValueError, match="not a klp profile"):
        klp("6.18.0", profile="7.x")


def test_before_5_1_no_fake_signal_is_sent_by_itself() -> None:
    """4.16–5.0: klp_send_signals() ran only when the admin wrote the signal
    attribute; 5.1 (0b3d52790e1c) sends it every SIGNALS_TIMEOUT retries."""
    t = facts(patched_frame=1, patched_function="b")
    old, new = klp("4.19.0"), klp("5.10.0")
    assert old.judge_task(t).outlook is Outlook.AFTER_WAKEUP
    assert new.judge_task(t).outlook is Outlook.AFTER_SIGNAL
    assert old.nudge(15, t) is Nudge.NONE and new.nudge(15, t) is Nudge.FAKE_SIGNAL
    assert old.judge_transition([t], [old.judge_task(t)]).converges is None


# ---- 6.16+: no cond_resched() switch point -------------------------------------------------


@given(task_facts())
def test_a_6_16_kernel_never_promises_a_cond_resched_switch(t: TaskFacts) -> None:
    for release in ("6.16.0", "6.18.44-fc-v657", "7.0.1"):
        o = klp(release).judge(t)
        assert "next cond_resched()" not in o.reason
        if t.kind is TaskKind.KTHREAD and t.running:
            assert o.outlook in (Outlook.UNKNOWN, Outlook.STUCK, Outlook.SWITCHED)
            assert o.outlook is not Outlook.SWITCHED or t.dead


def test_lpc_check_on_a_6_18_dump_names_the_6_16_profile() -> None:
    dump = parse_dump((DATA / "hung-task-6.18.txt").read_bytes())
    r = check(dump, Patch.parse("schedule_timeout"))
    assert r.model_profile["kernel_release"] == "6.18.44-fc-v657"
    assert r.model_profile["profile"] == "6.16+"
    assert "cond_resched" not in r.model_profile["switch_points"]
    assert "freezable_sleep" in r.model_profile["switch_points"]
    assert not any("next cond_resched()" in t.outcome.reason for t in r.tasks)


def test_the_cli_reports_the_profile_and_takes_another_release(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "hung-task-6.18.txt")
    main(["check", "--dump", path, "--patch", "schedule_timeout", "--json"])
    doc = loads(capsys.readouterr().out, "check")
    assert doc["model_profile"]["profile"] == "6.16+"
    assert doc["model_profile"]["release_from"] == "named by the dump"
    main(["check", "--dump", path, "--patch", "schedule_timeout", "--json",
          "--kernel-release", "6.12.118+deb13-cloud-amd64"])
    doc = loads(capsys.readouterr().out, "check")
    assert doc["model_profile"]["profile"] == "6.4–6.15"
    assert doc["model_profile"]["release_from"] == "--kernel-release"
    assert doc["model_profile"]["arch"] == "x86_64"
    main(["check", "--dump", path, "--patch", "schedule_timeout"])
    text = capsys.readouterr().out
    assert "kernel: 6.18.44-fc-v657 (named by the dump)" in text and "profile 6.16+" in text
    main(["check", "--dump", path, "--patch", "schedule_timeout", "--json",
          "-p", "cond_resched_switch=true"])
    assert "cond_resched" in loads(capsys.readouterr().out, "check")["model_profile"]["switch_points"]


@pytest.mark.parametrize(("sample", "arch"), [
    ("hung-task-6.18.txt", "x86_64"), ("hung-task-arm64-6.x-task-flags.txt", "arm64"),
    ("riscv64-dump-stack-6.6.txt", "riscv"), ("ppc64le-hung-task-5.15-nmi.txt", "powerpc"),
    ("s390x-hung-task-4.19.txt", "s390"),
])
def test_the_architecture_from_the_release_or_the_entry_frames(sample: str, arch: str) -> None:
    kernel = dump_kernel(parse_dump((DATA / sample).read_bytes()))
    assert kernel.arch == arch, (sample, kernel.arch_source)


def test_a_snapshot_names_its_kernel_and_machine() -> None:
    from lpc.source import load

    dump, *_ = load(str(DATA / "procdump-6.18"), None)
    kernel = dump_kernel(dump)
    assert kernel.source == "the capture's osrelease" and kernel.release == dump.kernel_release
    if dump.metadata.get("machine"):
        assert kernel.arch_source == "the snapshot's uname -m"


def test_dump_kernel_prefers_the_command_line() -> None:
    dump = parse_dump((DATA / "hung-task-6.18.txt").read_bytes())
    assert dump_kernel(dump).release == "6.18.44-fc-v657"
    k = dump_kernel(dump, "5.10.0-30-arm64")
    assert (k.release, k.source, k.arch) == ("5.10.0-30-arm64", "--kernel-release", "arm64")


# ---- kthreads are woken, never pulled out (rule 2) ------------------------------------------


@pytest.mark.parametrize("release", ["6.1.0", "6.12.0", "6.18.0"])
def test_a_woken_kthread_sleeps_again_where_it_waited(release: str) -> None:
    """klp_send_signals() does wake_up_state(TASK_INTERRUPTIBLE) to a kthread:
    one waiting for a condition goes back to sleep in the same function, so
    the wake-up does not promise a switch (unknown, with the reason)."""
    dump = parse_dump(snapshot(task(300, "lpc_sleeper", "S", True, [
        "schedule+0x2c/0xf0", "lpc_sleeper_nap+0x44/0x90 [lpc_sleeper]",
        "lpc_sleeper_thread+0x20/0x60 [lpc_sleeper]", *KTHREAD_ROOT])))
    r = check(dump, "lpc_sleeper:lpc_sleeper_nap", kernel=Kernel(release, "test"))
    assert (verdict(r, "lpc_sleeper"), outlook(r, "lpc_sleeper")) == ("blocked", "unknown")
    reason = r.tasks[0].outcome.reason
    assert "goes back to sleep" in reason and "wakes it" in reason
    assert ("freezable sleep switches it" in reason) is (release == "6.18.0")
    assert r.converges is None


# ---- user D sleeps (rule 3) -----------------------------------------------------------------


@pytest.mark.parametrize("state", ["D", "T", "I"])
def test_a_user_task_in_an_uninterruptible_sleep_is_not_stuck(state: str) -> None:
    dump = parse_dump(snapshot(sleeper(500, "cat", "lpc_sleeper_hold+0x30/0x60 [lpc_sleeper]",
                                       "proc_reg_read+0x56/0xa0", "vfs_read+0xa8/0x300",
                                       state=state)))
    r = check(dump, "lpc_sleeper:lpc_sleeper_hold")
    assert outlook(r, "cat") == "after_wakeup" and r.converges is None
    assert "once the sleep ends" in r.tasks[0].outcome.reason
    assert "sleep ends" in r.transition.reason


# ---- rule 11: a running task of unknown kind; the direction is read --------------------------


def test_a_running_task_of_unknown_kind_is_not_taken_for_a_kthread() -> None:
    t = facts(kind=TaskKind.UNKNOWN, kind_evidence="nothing tells", on_cpu=True, state="R")
    for m in (klp("6.12.0"), klp("6.18.0")):
        o = m.judge_task(t)
        assert (o.verdict, o.outlook) == (Verdict.RUNNING, Outlook.UNKNOWN)
        assert "whether it is a kernel thread" in o.reason


def test_unpatching_is_read() -> None:
    t = facts(kind=TaskKind.KTHREAD, state="D", patched_frame=1, patched_function="new_b")
    assert "replacement" in klp("6.18.0", unpatching=True).judge_task(t).reason
    assert "replacement" not in klp("6.18.0").judge_task(t).reason


# ---- stacked patches and atomic replace (rule 10) --------------------------------------------

ENTERED = snapshot(
    sleeper(100, "sleep", "hrtimer_nanosleep+0x9c/0x160", "do_nanosleep+0x84/0x190",
            "common_nsleep+0x43/0x50"),
    sleeper(101, "cat", "pipe_read+0x31a/0x450", "vfs_read+0x2f0/0x300"),
    sleeper(102, "old", "schedule+0x2c/0xf0", "lp_do_nanosleep+0x10/0x90 [lp_a]",
            "common_nsleep+0x43/0x50"),
)
LP_A = Patch.parse("do_nanosleep->lp_a:lp_do_nanosleep,pipe_read->lp_a:lp_pipe_read")


def test_a_stacked_patch_checks_the_previous_replacement() -> None:
    """klp_check_stack_func(): a function an enabled patch already replaced is
    checked against that patch's new_func (the ftrace ops' func_stack), not the
    original: a task in the original body does not block, one in lp_a's does."""
    plain = check(parse_dump(ENTERED), "do_nanosleep")
    assert verdict(plain, "sleep") == "blocked" and verdict(plain, "old") == "switch"
    stacked = check(parse_dump(ENTERED), "do_nanosleep", loaded=[LP_A])
    assert verdict(stacked, "sleep") == "switch"
    assert verdict(stacked, "old") == "blocked"
    checked = stacked.patch.functions[0]
    assert checked.spec == "lp_a:lp_do_nanosleep" and "already patched" in (checked.stands_for or "")


def test_an_atomic_replace_checks_every_older_function() -> None:
    """klp_add_nops(): a replace patch gets a nop for each function only older
    patches patch; each nop is checked against the newest older replacement."""
    replace = Patch.parse("cmdline_proc_show", replace=True)
    r = check(parse_dump(ENTERED), replace, loaded=[LP_A])
    assert [f.spec for f in r.patch.functions] == ["cmdline_proc_show", "lp_a:lp_do_nanosleep",
                                                   "lp_a:lp_pipe_read"]
    assert all(verdict(r, c) == "switch" for c in ("sleep", "cat"))
    assert verdict(r, "old") == "blocked"
    newer = Patch.parse("do_nanosleep->lp_b:lp2_do_nanosleep")
    top = replace.checked_against([LP_A, newer])
    assert [f.spec for f in top.functions] == ["cmdline_proc_show", "lp_b:lp2_do_nanosleep",
                                               "lp_a:lp_pipe_read"]
    # Without the loaded patches named, the nops cannot be checked: said.
    alone = check(parse_dump(ENTERED), replace)
    assert any("atomic replace" in w for w in alone.warnings)


def test_a_stacked_patch_needs_the_replacement_named() -> None:
    with pytest.raises(PatchSpecError, match="name it"):
        Patch.parse("do_nanosleep").checked_against([Patch.parse("do_nanosleep")])
    with pytest.raises(PatchSpecError):
        Patch.parse("do_nanosleep->")
    assert Patch.parse("a->m:b").functions[0].new == Patch.parse("m:b").functions[0]


def test_unpatching_checks_the_replacements() -> None:
    p = Patch.parse("do_nanosleep->lp_a:lp_do_nanosleep", unpatch=True)
    assert [f.spec for f in p.checked_against().functions] == ["lp_a:lp_do_nanosleep"]
    r = check(parse_dump(ENTERED), p)
    assert verdict(r, "old") == "blocked" and verdict(r, "sleep") == "switch"


def test_the_cli_takes_loaded_patches(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dump = tmp_path / "snap.txt"
    dump.write_bytes(ENTERED)
    loaded = tmp_path / "lp_a.txt"
    loaded.write_text("do_nanosleep->lp_a:lp_do_nanosleep\npipe_read->lp_a:lp_pipe_read\n")
    code = main(["check", "--dump", str(dump), "--patch", "do_nanosleep", "--loaded",
                 str(loaded), "--json"])
    doc = loads(capsys.readouterr().out, "check")
    assert doc["patch"]["functions"][0]["stands_for"].startswith("do_nanosleep (already patched")
    old = next(t for t in doc["tasks"] if t["comm"] == "old")
    assert old["verdict"] == "blocked"  # it sleeps in lp_a's replacement
    assert code == 0  # ... interruptibly: the fake signal moves it on
    assert main(["check", "--dump", str(dump), "--patch", "cmdline_proc_show", "--replace",
                 "--loaded", "do_nanosleep->lp_a:lp_do_nanosleep"]) in (0, 1)
    capsys.readouterr()


@given(st.lists(st.sampled_from(["a", "b", "c", "m:d"]), min_size=1, max_size=3, unique=True),
       st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "c", "m:d"]), min_size=1,
                                   max_size=3, unique=True), st.booleans()), max_size=3),
       st.booleans())
def test_checked_ranges_follow_the_func_stack(new: list[str], below: list[tuple[list[str], bool]],
                                              atomic: bool) -> None:
    """A brute-force func_stack: enable the loaded patches one by one (a
    replace frees everything under it, core.c klp_free_replaced_patches_async),
    push each function's replacement on its stack, then read what the kernel
    checks for the new patch (transition.c klp_check_stack_func): the entry
    under the new one, or the original when the stack is empty; an atomic
    replace also checks each function only older patches have (its nops)."""
    stacks: dict[str, list[str]] = {}
    for i, (fns, replaces) in enumerate(below):
        if replaces:
            stacks = {}
        for fn in fns:
            stacks.setdefault(fn, []).append(f"lp{i}:{fn.split(':')[-1]}_{i}")
    expect = [stacks[fn][-1] if stacks.get(fn) else fn for fn in new]
    if atomic:
        expect += [s[-1] for fn, s in stacks.items() if fn not in new and s]
    loaded = [Patch.parse(",".join(f"{fn}->lp{i}:{fn.split(':')[-1]}_{i}" for fn in fns),
                          replace=replaces) for i, (fns, replaces) in enumerate(below)]
    patch = Patch.parse(",".join(new), replace=atomic)
    got = [f.spec for f in patch.checked_against(loaded).functions]
    assert got[:len(new)] == expect[:len(new)]
    assert sorted(got) == sorted(expect)


def test_the_kpatch_tool_over_livepatch_follows_the_kernel_too() -> None:
    """Kpatch(livepatch=True) is klp's transition under the tool's wait: the
    klp it holds takes the dump's kernel, not the newest."""
    m = get_model("kpatch", Kernel("6.12.0-arm64", "test"), livepatch=True)
    assert m.profile_name == "6.4–6.15"
    assert [p.value for p in m.switch_points] == ["kernel_exit", "idle_loop"]
    assert get_model("kpatch", Kernel("6.12.0-arm64", "test")).profile_name is None


def test_a_loaded_replace_frees_what_it_replaced() -> None:
    """A replace patch already enabled freed the patches under it: their
    replacements are on no func_stack (klp) and no kpatch hash entry."""
    from lpc.models.kpatch import activeness_functions

    a = Patch.parse("f->a:fa,g->a:ga")
    b = Patch.parse("f->b:fb", replace=True)
    assert [f.spec for f in Patch.parse("g").checked_against([a, b]).functions] == ["g"]
    assert [f.spec for f in activeness_functions(Patch.parse("g"), [a, b]).functions] == ["g"]
    assert [f.spec for f in activeness_functions(Patch.parse("f"), [a, b]).functions] == [
        "b:fb"]
