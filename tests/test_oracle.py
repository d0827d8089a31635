"""The real kernel as oracle: recorded cases from Linux 6.1, 6.12 and 7.x under qemu.

tests/data/oracle/<scenario>/ (6.1) and tests/data/oracle/<major.minor>/<scenario>/
(later kernels) were recorded by ``lpc oracle run`` (see each case.json).
Every check of every case must agree task by task with the kernel's
patch_state, except disagreements a named rule of lpc.oracle.compare
explains, and the disagreements listed in PENDING: recorded on purpose,
each waiting for a fix of lpc's model (issue 12). The rules are tested here
on their own too.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jsonschemas import loads
from lpc.check import TaskResult, check
from lpc.cli import main
from lpc.dump import parse_dump
from lpc.kernel import Kernel
from lpc.models import Outlook, Verdict
from lpc.oracle.case import (
    CaseError,
    parse_calls,
    parse_klp_dmesg,
    parse_states,
    read_case,
    trim_kallsyms,
)
from lpc.oracle.compare import (
    BLOCKED,
    SWITCHED,
    UNKNOWN,
    Evidence,
    compare_case,
    explain,
    judge,
    lpc_claim,
)
from lpc.oracle.run import kernel_series
from lpc.oracle.scenarios import SCENARIOS, thunk_spec
from lpc.symbols import Symbols

ORACLE = Path(__file__).parent / "data" / "oracle"
#: the 6.1 cases recorded first: tests/data/oracle/<scenario> (the later 6.1
#: cases are under 6.1/ like every other kernel's)
CASES = sorted(p.parent.name for p in ORACLE.glob("*/case.json"))
#: later kernels: tests/data/oracle/<major.minor>/<scenario>
KERNEL_CASES = sorted(str(p.parent.relative_to(ORACLE)) for p in ORACLE.glob("*/*/case.json"))
ALL_CASES = CASES + KERNEL_CASES

#: Disagreements recorded on purpose, unexplained by lpc.oracle.compare's rules:
#: case -> {(check, comm): what is expected to close it}. Each entry is
#: asserted to be there; when a model fix makes one agree, the test fails until
#: the entry is deleted here. Empty since the issue-12 model (kernel profiles,
#: woken kthreads and user D sleeps as no claim, stacked patches through
#: CheckSpec.loaded) closed the fourteen recorded against the model before it:
#: 6.1/6.12 freezable_resleep (lpc_freezer, after_freezable and after_signals:
#: after_wakeup vs blocked), kthread_resleep on all three (lpc_resleeper,
#: after_signals), stacked on all three (lpc_resleeper, first_retry and
#: signals_now: blocked vs switched), user_dsleep on all three (the reader,
#: after_release: stuck vs switched).
PENDING: dict[str, dict[tuple[str, str], str]] = {}


def test_every_scenario_has_a_recorded_case() -> None:
    assert set(CASES) <= set(SCENARIOS)
    assert len(CASES) >= 10
    recorded = {read_case(ORACLE / name)["scenario"] for name in ALL_CASES}
    assert recorded == set(SCENARIOS)
    for name in KERNEL_CASES:  # a case sits under its own kernel's series
        series = name.split("/")[0]
        assert kernel_series(read_case(ORACLE / name)["kernel_release"]) == series
    assert set(PENDING) <= set(ALL_CASES)


@pytest.mark.parametrize("name", ALL_CASES)
def test_case_agrees_with_the_kernel(name: str) -> None:
    comparison = compare_case(ORACLE / name)
    assert comparison.tasks > 0
    pending = PENDING.get(name, {})
    found = {(d.when, d.comm) for d in comparison.unexplained}
    assert found - set(pending) == set(), "new unexplained disagreements"
    assert set(pending) - found == set(), "lpc agrees now: delete these from PENDING"
    # every other disagreement names the rule that explains it
    assert all(d.rule for d in comparison.disagreements if (d.when, d.comm) not in pending)
    for c in comparison.checks:
        # the guest has ~55 tasks; a comparison on far fewer lost its dump
        assert c.tasks >= 40, (c.when, c.tasks)


def _kernel_and_lpc(name: str, when: str, comm: str) -> tuple[str, str]:
    """The kernel's verdict and lpc's claim for one task of one check
    (``comm``, or ``comm@STATE`` when the name alone is ambiguous)."""
    case_dir = ORACLE / name
    case = read_case(case_dir)
    spec = next(s for s in case["checks"] if s["when"] == when)
    result = judge(case_dir, spec, case["kernel_release"])
    states = parse_states(case_dir / spec["states_file"])
    wanted, _, state = comm.partition("@")
    task = next(t for t in result.tasks
                if t.facts.comm == wanted and state in ("", t.facts.state))
    assert task.facts.tid is not None
    switched = states.switched(task.facts.tid, 0 if spec["unpatch"] else 1)
    return SWITCHED if switched else BLOCKED, lpc_claim(task, spec["compare"])


# (scenario, check, task, what the kernel did) — the point of each scenario,
# read from the recorded patch_state; lpc must say the same.
GOLDEN = [
    ("nanosleep", "first_retry", "sleep", BLOCKED),
    ("nanosleep", "after_signals", "sleep", SWITCHED),
    ("pipe_read", "first_retry", "cat", BLOCKED),
    ("pipe_read", "after_signals", "cat", SWITCHED),
    ("poll", "first_retry", "sh@S", BLOCKED),  # the poller, not the running scenario shell
    ("poll", "after_signals", "sh@S", SWITCHED),
    ("kthread_loops", "after_signals", "kthreadd", BLOCKED),
    ("kthread_loops", "after_signals", "ksoftirqd/0", BLOCKED),
    ("project_kthread", "first_retry", "lpc_sleeper", BLOCKED),
    ("project_kthread", "after_signals", "lpc_sleeper", SWITCHED),
    ("uninterruptible", "first_retry", "cat", BLOCKED),
    ("uninterruptible", "after_signals", "cat", BLOCKED),
    ("reversal", "first_retry", "sleep", BLOCKED),
    ("reversal", "after_reversal", "sleep", SWITCHED),
    ("force", "first_retry", "sleep", BLOCKED),
    ("force", "after_force", "sleep", SWITCHED),
    ("unpatch", "unpatch_first_retry", "lpc_sleeper", BLOCKED),
    ("unpatch", "unpatch_after_signals", "lpc_sleeper", SWITCHED),
    ("atomic_replace", "first_retry", "sleep", SWITCHED),
    ("atomic_replace", "first_retry", "cat", BLOCKED),
    ("idle_leaf", "first_retry", "init", SWITCHED),
]


# (case, check, task, what the kernel did): the kernel's side only, the facts
# the issue-12 cases were recorded for; lpc claims nothing on several of them
# (no_claim: what decides is in no dump).
KERNEL_GOLDEN = [
    ("6.1/freezable_resleep", "after_freezable", "lpc_freezer", BLOCKED),
    ("6.1/freezable_resleep", "after_signals", "lpc_freezer", BLOCKED),
    ("6.1/kthread_resleep", "after_signals", "lpc_resleeper", BLOCKED),
    ("6.1/stacked", "first_retry", "lpc_resleeper", SWITCHED),
    ("6.1/stacked", "first_retry", "lpc_sleeper", BLOCKED),
    ("6.1/user_dsleep", "after_signals", "sh@D", BLOCKED),
    ("6.1/user_dsleep", "after_release", "sh@D", SWITCHED),
    ("6.1/runnable", "after_signals", "lpc_spin_in/0", BLOCKED),
    ("6.1/runnable", "after_signals", "lpc_spin/0", SWITCHED),
    # 6.16+ switches the freezer at its first freezable sleep, ~4 s in, with
    # no signal; 6.12 still has it blocked after the signals
    ("6.12/freezable_resleep", "after_freezable", "lpc_freezer", BLOCKED),
    ("6.12/freezable_resleep", "after_signals", "lpc_freezer", BLOCKED),
    ("7.3/freezable_resleep", "first_retry", "lpc_freezer", BLOCKED),
    ("7.3/freezable_resleep", "after_freezable", "lpc_freezer", SWITCHED),
    # woken by the fake signal, it sleeps again in the same function
    ("6.12/kthread_resleep", "after_signals", "lpc_resleeper", BLOCKED),
    ("7.3/kthread_resleep", "after_signals", "lpc_resleeper", BLOCKED),
    # the stacked function is checked at lpc_pt's thunk: lpc_resleeper is not
    # blocked; lpc_sleeper, in a function patched for the first time, is
    ("6.12/stacked", "first_retry", "lpc_resleeper", SWITCHED),
    ("6.12/stacked", "first_retry", "lpc_sleeper", BLOCKED),
    ("7.3/stacked", "first_retry", "lpc_resleeper", SWITCHED),
    ("7.3/stacked", "first_retry", "lpc_sleeper", BLOCKED),
    # a user D sleep outlasts the signals, and switches at kernel exit once released
    ("6.12/user_dsleep", "after_signals", "sh@D", BLOCKED),
    ("6.12/user_dsleep", "after_release", "sh@D", SWITCHED),
    ("7.3/user_dsleep", "after_signals", "sh@D", BLOCKED),
    ("7.3/user_dsleep", "after_release", "sh@D", SWITCHED),
    # runnable kthreads: the one spinning in the patched function never switches,
    # the others do (6.12 at cond_resched(), 7.3 at a retry that finds them off CPU)
    ("6.12/runnable", "after_signals", "lpc_spin_in/0", BLOCKED),
    ("6.12/runnable", "after_signals", "lpc_spin/0", SWITCHED),
    ("6.12/runnable", "after_signals", "lpc_spin/1", SWITCHED),
    ("7.3/runnable", "after_signals", "lpc_spin_in/0", BLOCKED),
    ("7.3/runnable", "after_signals", "lpc_spin/0", SWITCHED),
    ("7.3/runnable", "after_signals", "lpc_spin/1", SWITCHED),
    ("6.1/runnable_nmi", "after_signals", "lpc_spin_in/0", BLOCKED),
    ("6.12/runnable_nmi", "after_signals", "lpc_spin_in/0", BLOCKED),
    ("7.3/runnable_nmi", "after_signals", "lpc_spin_in/0", BLOCKED),
    # atomic replace: the nop checks lpc_pt's replacement
    ("6.12/atomic_replace", "first_retry", "sleep", SWITCHED),
    ("6.12/atomic_replace", "first_retry", "cat", BLOCKED),
    ("7.3/atomic_replace", "first_retry", "sleep", SWITCHED),
    ("7.3/atomic_replace", "first_retry", "cat", BLOCKED),
    # issue 13, the same on the three kernels (below, per series)
]
for _k in ("6.1", "6.12", "7.3"):
    KERNEL_GOLDEN += [
        # lpc_fix loaded over lpc_pt: its three sleepers block; after the
        # signals only lpc_resleeper (asleep again in lpc_sleeper_wait); the
        # cat in lpc_pt's pipe function is not lpc_fix's business
        (f"{_k}/module_check", "first_retry", "lpc_sleeper", BLOCKED),
        (f"{_k}/module_check", "first_retry", "lpc_resleeper", BLOCKED),
        (f"{_k}/module_check", "first_retry", "sleep", BLOCKED),
        (f"{_k}/module_check", "first_retry", "cat", SWITCHED),
        (f"{_k}/module_check", "after_signals", "lpc_sleeper", SWITCHED),
        (f"{_k}/module_check", "after_signals", "lpc_resleeper", BLOCKED),
        # lpc_pt_b over lpc_fix: the stacked lpc_sleeper_wait is checked at
        # lpc_fix_sleeper_wait; the pipe function is new
        (f"{_k}/stacked_sysfs", "first_retry", "lpc_resleeper", SWITCHED),
        (f"{_k}/stacked_sysfs", "first_retry", "cat", BLOCKED),
        (f"{_k}/stacked_sysfs", "after_signals", "cat", SWITCHED),
        # lpc_fix_r over lpc_pt and lpc_pt_b: do_nanosleep and the nop are
        # checked at their thunks, lpc_sleeper_nap is new
        (f"{_k}/replace_over_two", "first_retry", "sleep", SWITCHED),
        (f"{_k}/replace_over_two", "first_retry", "cat", SWITCHED),
        (f"{_k}/replace_over_two", "first_retry", "lpc_sleeper", BLOCKED),
        (f"{_k}/replace_over_two", "after_signals", "lpc_sleeper", SWITCHED),
        # the watched transition: the freezer blocks at first, ends by itself
        (f"{_k}/watch_transition", "snap_00", "lpc_freezer", BLOCKED),
        (f"{_k}/watch_transition", "after", "lpc_freezer", SWITCHED),
    ]


@pytest.mark.parametrize(("name", "when", "comm", "kernel"), KERNEL_GOLDEN)
def test_kernel_golden_task(name: str, when: str, comm: str, kernel: str) -> None:
    assert _kernel_and_lpc(name, when, comm)[0] == kernel


def test_freezer_entered_the_replacement_only_where_it_switched() -> None:
    """lpc_pt's call counter for lpc_sleeper_doze: a switched freezer dozes
    through the replacement. 7.3: it did within ~4 s, with no fake signal
    sent; 6.12: never, signals included."""
    def calls(series: str, label: str) -> int:
        counts = parse_calls(ORACLE / series / "freezable_resleep" / f"{label}_calls.txt")
        return counts["lpc_pt"][0]

    def signalled(series: str) -> bool:
        dmesg = (ORACLE / series / "freezable_resleep" / "klp_dmesg.txt").read_text()
        return "signaling remaining tasks" in dmesg

    assert calls("7.3", "freeze") > 0 and not signalled("7.3")
    assert calls("6.12", "signals") == 0 and signalled("6.12")


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.3"])
def test_nmi_backtrace_in_the_dump_puts_its_tasks_on_their_cpus(series: str) -> None:
    """runnable_nmi: SysRq-l right after SysRq-t in one dump. The tasks its NMI
    backtraces show (the scenario shell and one spinner), and the runqueue
    dump's current task of each CPU (its `>R` rows, a few ms after the task
    list), are on a CPU for lpc, and no other spinner is."""
    case_dir = ORACLE / series / "runnable_nmi"
    text = (case_dir / "first_sysrq.txt").read_text()
    nmi = set(re.findall(r"CPU: \d+ .*?PID: \d+ Comm: (\S+)", text))
    assert "sh" in nmi and len(nmi) == 2
    current = set(re.findall(r"\] >R +(\S+) +\d+ ", text))
    on_cpu = nmi | current
    case = read_case(case_dir)
    result = judge(case_dir, case["checks"][0], case["kernel_release"])
    running = {t.facts.comm for t in result.tasks if t.facts.running}
    spinners = {"lpc_spin/0", "lpc_spin/1", "lpc_spin_in/0"}
    assert running & spinners == on_cpu & spinners


def test_runnable_dump_shows_which_task_runs_on_each_cpu() -> None:
    """SysRq-l (the NMI backtraces, cpus.txt) names the task on each CPU right
    after the SysRq-t dump; every spinner is in state R in both."""
    for series in ("6.1", "6.12", "7.3"):
        cpus = (ORACLE / series / "runnable" / "first_cpus.txt").read_text()
        on_cpu = set(re.findall(r"CPU: \d+ .*?PID: \d+ Comm: (\S+)", cpus))
        assert len(on_cpu) == 2, (series, on_cpu)
        dump = (ORACLE / series / "runnable" / "first_sysrq.txt").read_text()
        for spinner in ("lpc_spin/0", "lpc_spin/1", "lpc_spin_in/0"):
            assert re.search(rf"task:{re.escape(spinner)} +state:R  running task", dump)


def _pins(case_dir: Path) -> dict[str, dict[str, str]]:
    """pin.txt of force_pin: label -> {module, refcnt, livepatch, rmmod}."""
    out = {}
    for line in (case_dir / "pin.txt").read_text().splitlines():
        label, *pairs = line.split()
        out[label] = dict(p.split("=", 1) for p in pairs)
    return out


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.3"])
def test_force_pins_only_the_forced_removal(series: str) -> None:
    case_dir = ORACLE / series / "force_pin"
    pins = _pins(case_dir)
    assert pins["enable_forced"]["rmmod"] == "ok" and pins["enable_forced"]["refcnt"] == "0"
    assert pins["disable_forced"]["rmmod"] == "failed"
    assert pins["disable_forced"]["refcnt"] == "1"
    # lpc's transition claims (5.18+, commit 2957308343fa): only the forced
    # removal pins its module
    case = read_case(case_dir)
    claims = {s["when"]: judge(case_dir, s, case["kernel_release"]).transition.reason
              for s in case["checks"] if s.get("force")}
    assert "no module is pinned" in claims["after_force"]
    assert "can never be removed" in claims["unpatch_after_force"]


#: Where lpc claims nothing (outlook unknown, or "once its sleep ends") while
#: the kernel did decide: what decided is not in any dump (rules 2 and 3).
NO_CLAIM = {
    # woken by the fake wake-up, the project's kthread rests outside nap; a
    # kthread waiting for a condition would sleep in nap again
    ("project_kthread", "after_signals", "lpc_sleeper"),
    ("unpatch", "unpatch_after_signals", "lpc_sleeper"),
    # a D sleep: it switches once the sleep ends, which the scenario decides
    ("uninterruptible", "after_signals", "cat"),
}


@pytest.mark.parametrize(("name", "when", "comm", "kernel"), GOLDEN)
def test_golden_task(name: str, when: str, comm: str, kernel: str) -> None:
    lpc = UNKNOWN if (name, when, comm) in NO_CLAIM else kernel
    assert _kernel_and_lpc(name, when, comm) == (kernel, lpc)


def test_kthreadd_main_loop_is_its_thread_function() -> None:
    """kthreadd is started by kernel_thread(), not kthread(): its main function
    sits right under ret_from_fork, with a '?' guess in between."""
    case = read_case(ORACLE / "kthread_loops")
    spec = case["checks"][0]
    result = judge(ORACLE / "kthread_loops", spec, case["kernel_release"])
    kthreadd = next(t for t in result.tasks if t.facts.comm == "kthreadd")
    assert kthreadd.facts.patched_function == "kthreadd"
    assert kthreadd.facts.patched_frame_is_thread_fn
    assert kthreadd.outcome.outlook is Outlook.STUCK


def test_atomic_replace_checks_the_previous_replacement() -> None:
    """The nop of do_nanosleep checks lpc_pt's replacement: a sleeper that went
    through it shows the old do_nanosleep and is not blocked — the original
    function's range would have (wrongly) blocked it."""
    case_dir = ORACLE / "atomic_replace"
    case = read_case(case_dir)
    spec = dict(case["checks"][0])
    assert spec["replace"] and spec["loaded"] == ["do_nanosleep->lpc_pt:lpc_pt_thunk_0"]
    naive = judge(case_dir, {**spec, "patch": "pipe_read,do_nanosleep", "replace": False,
                             "loaded": []}, case["kernel_release"])
    sleep = next(t for t in naive.tasks if t.facts.comm == "sleep")
    assert sleep.outcome.verdict is Verdict.BLOCKED
    assert _kernel_and_lpc("atomic_replace", "first_retry", "sleep") == (SWITCHED, SWITCHED)
    checked = judge(case_dir, spec, case["kernel_release"]).patch
    assert [f.spec for f in checked.functions] == ["pipe_read", "lpc_pt:lpc_pt_thunk_0"]


# ---- the explanation rules, one by one ----------------------------------------------------------


def _task(name: str, comm: str, when: str = "first_retry") -> TaskResult:
    case = read_case(ORACLE / name)
    spec = next(s for s in case["checks"] if s["when"] == when)
    result = judge(ORACLE / name, spec, case["kernel_release"])
    return next(t for t in result.tasks if t.facts.comm == comm)


def _evidence(task: TaskResult, **kw: object) -> Evidence:
    base = Evidence("first_retry", "now", task, lpc_claim(task, "now"), SWITCHED, None, {},
                    None, False)
    return replace(base, **kw)  # type: ignore[arg-type]


def _rule(e: Evidence) -> str | None:
    found = explain(e)
    return None if found is None else found[0]


def test_rule_no_claim_only_for_unknown() -> None:
    sleep = _task("nanosleep", "sleep")
    assert _rule(_evidence(sleep)) is None
    assert _rule(_evidence(sleep, lpc=UNKNOWN)) == "no_claim"


def test_rule_passed_kernel_exit_needs_the_at_kernel_exit_outlook() -> None:
    shell = _task("idle_leaf", "sh")
    assert shell.outcome.outlook is Outlook.AT_KERNEL_EXIT
    assert _rule(_evidence(shell)) == "passed_kernel_exit"
    # only at the instant of the dump: eventually the outlook itself says "switched"
    assert _rule(_evidence(shell, compare="eventual")) is None
    sleep = _task("nanosleep", "sleep")  # after_signal: a claim of its own
    assert _rule(_evidence(sleep)) is None


def test_rule_passthru_reentry_needs_calls_and_no_report() -> None:
    sleep = _task("nanosleep", "sleep")
    assert _rule(_evidence(sleep)) is None
    assert _rule(_evidence(sleep, passthru_calls={"do_nanosleep": 2})) == "passthru_reentry"
    assert _rule(_evidence(sleep, passthru_calls={"do_nanosleep": 2},
                           reported_at_last_retry=True)) is None
    # reported at the last failing retry, but switched before the dump began
    assert _rule(_evidence(sleep, passthru_calls={"do_nanosleep": 2},
                           reported_at_last_retry=True,
                           kernel_before_dump=SWITCHED)) == "passthru_reentry"
    assert _rule(_evidence(sleep, passthru_calls={"do_nanosleep": 0},
                           kernel_before_dump=SWITCHED)) is None
    assert _rule(_evidence(sleep, passthru_calls={"pipe_read": 2})) is None
    assert _rule(_evidence(sleep, passthru_calls={"do_nanosleep": 0})) is None


def test_rule_retry_pending_needs_the_next_snapshot_to_agree() -> None:
    """A snapshot of a series taken between two retries: lpc's "switches now"
    is the next retry's; the next snapshot shows it, with no report between."""
    sleep = _task("nanosleep", "sleep")
    pending = _evidence(sleep, lpc=SWITCHED, kernel=BLOCKED)
    assert _rule(pending) is None  # no next snapshot: no evidence
    assert _rule(replace(pending, kernel_next=SWITCHED)) == "retry_pending"
    assert _rule(replace(pending, kernel_next=SWITCHED, reported_before_next=True)) is None
    assert _rule(replace(pending, kernel_next=BLOCKED)) is None
    assert _rule(replace(pending, kernel_next=SWITCHED, compare="eventual")) is None


def test_rule_retry_during_dump_needs_lpc_to_match_the_earlier_state() -> None:
    sleep = _task("nanosleep", "sleep")
    assert _rule(_evidence(sleep, kernel_before_dump=BLOCKED)) == "retry_during_dump"
    assert _rule(_evidence(sleep, kernel_before_dump=SWITCHED)) is None


def test_an_interrupt_on_the_stack_is_the_models_to_judge() -> None:
    """Once an artifact rule of the oracle (idle_leaf, rcu_preempt: SysRq-t
    printed the kthread inside an interrupt, and the next retry switched it),
    now the model's: an <IRQ> section puts a runnable task on its CPU
    (-EBUSY now, no claim of a check that fails), and ORC's reliable walk goes
    through kernel-mode registers, so an interrupted stack is checked."""
    text = (
        "task:rcu_preempt     state:R stack:0     pid:15    ppid:2      flags:0x00004000\n"
        "Call Trace:\n <IRQ>\n ? sched_clock_cpu+0x9/0xb0\n </IRQ>\n <TASK>\n"
        " rcu_gp_kthread+0x120/0x1a0\n kthread+0xe8/0x110\n ret_from_fork+0x22/0x30\n </TASK>\n"
        "task:rcu_sched       state:I stack:0     pid:16    ppid:2      flags:0x00004000\n"
        "Call Trace:\n <TASK>\n __schedule+0x32d/0x9b0\n"
        " asm_sysvec_apic_timer_interrupt+0x1a/0x20\n rcu_gp_kthread+0x120/0x1a0\n"
        " kthread+0xe8/0x110\n ret_from_fork+0x22/0x30\n </TASK>\n"
    ).encode()
    result = check(parse_dump(text, "dmesg"), "cmdline_proc_show", "klp",
                   kernel=Kernel("6.1.0-56-cloud-amd64", "test"))
    on_cpu, interrupted = result.tasks[0], result.tasks[1]
    assert on_cpu.facts.running and on_cpu.outcome.verdict is Verdict.RUNNING
    assert lpc_claim(on_cpu, "now") == UNKNOWN
    assert interrupted.facts.interrupted and interrupted.outcome.verdict is Verdict.SWITCH
    fp = check(parse_dump(text, "dmesg"), "cmdline_proc_show", "klp",
               kernel=Kernel("6.1.0-56-cloud-amd64", "test"), regs_frames_unreliable=True)
    assert fp.tasks[1].outcome.verdict is Verdict.UNRELIABLE


def test_sched_text_kthread_woken_by_the_signal_is_no_claim() -> None:
    """khungtaskd sleeps in schedule_timeout from its main loop: the fake signal
    wakes it, it sleeps there again, and the kernel never switches it (recorded).
    lpc says unknown instead of after_wakeup."""
    task = _task("sched_text", "khungtaskd", "after_signals")
    assert task.facts.patched_frame_in_sched_text and not task.facts.patched_frame_is_thread_fn
    assert task.outcome.outlook is Outlook.UNKNOWN
    assert _kernel_and_lpc("sched_text", "after_signals", "khungtaskd") == (BLOCKED, UNKNOWN)
    # the project's kthread sleeps outside .sched.text, in lpc_sleeper_nap, and
    # leaves it once woken: but nothing in a dump says it will (a kthread waiting
    # for a condition sleeps again where it was), so lpc claims nothing either.
    mine = _task("project_kthread", "lpc_sleeper", "after_signals")
    assert not mine.facts.patched_frame_in_sched_text
    assert mine.outcome.outlook is Outlook.UNKNOWN


# ---- the capture files ----------------------------------------------------------------------------


def test_states_parse_and_errors(tmp_path: Path) -> None:
    states = parse_states(ORACLE / "nanosleep" / "first_states.txt")
    assert states.transition == 1 and states.patch == "lpc_pt"
    sleep = [tid for tid, (_, comm) in states.tasks.items() if comm == "sleep"]
    assert len(sleep) == 1 and states.switched(sleep[0], 1) is False
    assert states.switched(999_999, 1) is None
    bad = tmp_path / "s.txt"
    bad.write_text("# uptime=1.0 patch=p enabled=1 transition=1\n12 2 comm\n")
    with pytest.raises(CaseError, match=r"s.txt:2:"):
        parse_states(bad)
    bad.write_text("12 1 comm\n")
    with pytest.raises(CaseError, match=r"s.txt:1:"):
        parse_states(bad)


def test_done_transition_means_every_task_switched(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("# uptime=1.0 patch=p enabled=1 transition=0\n5 -1 a\n")
    assert parse_states(f).switched(5, 1) is True
    f.write_text("# uptime=1.0 patch=p absent\n5 -1 a\n")
    assert parse_states(f).switched(5, 0) is True
    f.write_text("# uptime=1.0 patch=p enabled=1 transition=1\n5 -1 a\n")
    assert parse_states(f).switched(5, 1) is False


def test_klp_dmesg_reasons() -> None:
    reports = parse_klp_dmesg(ORACLE / "nanosleep" / "klp_dmesg.txt")
    sleeping = {r.function for r in reports if r.comm == "sleep"}
    assert sleeping == {"do_nanosleep"}
    assert all(r.reason in {"sleeping", "running", "unreliable", "other"} for r in reports)


def test_calls_file(tmp_path: Path) -> None:
    f = tmp_path / "c.txt"
    f.write_text("lpc_pt/parameters/calls 3,0,1\n")
    assert parse_calls(f) == {"lpc_pt": (3, 0, 1)}
    f.write_text("lpc_pt/parameters/calls 3,x\n")
    with pytest.raises(CaseError, match="c.txt:1"):
        parse_calls(f)


def test_tcg_is_single_threaded_from_6_16(monkeypatch: pytest.MonkeyPatch) -> None:
    from lpc.oracle.run import tcg_accel

    monkeypatch.delenv("LPC_ORACLE_TCG", raising=False)
    assert tcg_accel("6.1.0-57-cloud-amd64") == "tcg"
    assert tcg_accel("6.12.111+deb12-cloud-amd64") == "tcg"
    assert tcg_accel("7.3.4+deb13-cloud-amd64") == "tcg,thread=single"
    assert tcg_accel(None) == "tcg"
    monkeypatch.setenv("LPC_ORACLE_TCG", "tcg,thread=multi")
    assert tcg_accel("7.3.4+deb13-cloud-amd64") == "tcg,thread=multi"


def test_kernel_series_names_the_case_directory() -> None:
    assert kernel_series("6.1.0-57-cloud-amd64") == "6.1"
    assert kernel_series("6.12.111+deb12-cloud-amd64") == "6.12"
    assert kernel_series("7.3.4+deb13-cloud-amd64") == "7.3"
    with pytest.raises(CaseError, match="not a kernel release"):
        kernel_series("cloud")


def test_patch_placeholders_take_the_guest_values(tmp_path: Path) -> None:
    """7.x split pipe_read (anon_pipe_read, fifo_pipe_read): the guest says
    which it patched in subst.txt, the recorded patch names it."""
    from lpc.oracle.run import _patch_for, _read_subst

    (tmp_path / "subst.txt").write_text("pipe_read=anon_pipe_read\n")
    subst = _read_subst(tmp_path)
    assert _patch_for("{pipe_read},lpc_pt:lpc_pt_thunk_0", "", subst) == (
        "anon_pipe_read,lpc_pt:lpc_pt_thunk_0")
    assert _patch_for("funcs", "a,b", subst) == "a,b"
    with pytest.raises(CaseError, match="no 'other'"):
        _patch_for("{other}", "", subst)


def test_stacked_and_replace_cases_record_the_loaded_patches() -> None:
    """CheckSpec.loaded / replace reach case.json, for the model to read."""
    spec = SCENARIOS["stacked"].checks[0]
    assert spec.loaded == ("lpc_sleeper:lpc_sleeper_wait->lpc_pt:lpc_pt_thunk_0",)
    assert not spec.replace
    assert all(c.replace and c.loaded for c in SCENARIOS["atomic_replace"].checks)
    for name in KERNEL_CASES:
        case = read_case(ORACLE / name)
        if case["scenario"] == "stacked":
            assert case["checks"][0]["loaded"] == list(spec.loaded)


def test_thunk_spec_follows_slot_order() -> None:
    assert thunk_spec("a,b") == "lpc_pt:lpc_pt_thunk_0,lpc_pt:lpc_pt_thunk_1"


def test_the_guest_kernel_picks_the_profile() -> None:
    from lpc.kernel import Kernel
    from lpc.models import SwitchPoint, get_model

    def points(release: str) -> tuple[SwitchPoint, ...]:
        return get_model("klp", Kernel(release, "the oracle guest")).switch_points

    assert SwitchPoint.COND_RESCHED not in points("6.1.0-56-cloud-amd64")
    assert SwitchPoint.COND_RESCHED in points("6.12.118+deb12-cloud-amd64")
    assert SwitchPoint.COND_RESCHED not in points("6.18.1")
    assert SwitchPoint.FREEZABLE_SLEEP in points("6.18.1")


@pytest.fixture(scope="module")
def full_kallsyms(data_dir: Path) -> str:
    return gzip.decompress((data_dir / "kallsyms-6.18.txt.gz").read_bytes()).decode()


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_trimmed_kallsyms_keeps_sizes_and_sympos(full_kallsyms: str, data: st.DataObject) -> None:
    lines = full_kallsyms.splitlines()
    picked = data.draw(st.lists(st.sampled_from(lines), min_size=1, max_size=30))
    full = Symbols.from_kallsyms(full_kallsyms.encode())
    # Only names kallsyms calls functions: _stext or a __pfx_ padding symbol alone
    # trims to a table without a function, which Symbols rightly refuses.
    names = {line.split()[2] for line in picked if line.split()[1] in "tTwW"}
    names = {name for name in names if full.lookup_all(name)}
    assume(names)
    trimmed = Symbols.from_kallsyms(trim_kallsyms(full_kallsyms, names, ()).encode())
    for name in names:
        for a, b in zip(full.lookup_all(name), trimmed.lookup_all(name), strict=True):
            assert (a.address, a.size, a.sympos, a.module) == (b.address, b.size, b.sympos, b.module)


def test_case_kallsyms_are_trimmed_but_complete_for_the_dump() -> None:
    """lpc resolves every named frame of the recorded dumps with the trimmed table."""
    for name in ALL_CASES:
        comparison = compare_case(ORACLE / name)  # resolves the dumps' frames
        assert comparison.tasks
        for f in (ORACLE / name).glob("*_kallsyms.txt"):
            assert f.stat().st_size < 200_000


# ---- the guest's sysfs state, snapshots and modules (issue 13) ----------------------------------

#: lib.sh lpstate: the header, then "absent" alone, or directories ("path/")
#: and attributes ("path value", "path !" when it cannot be read)
_LPSTATE_HEADER = re.compile(r"^# lpc livepatch state 1 uptime=\d+(\.\d+)?$")
_LPSTATE_LINE = re.compile(r"^(?P<path>[^ /][^ ]*?)(?P<dir>/)?(?: (?P<value>.*))?$")
LIVEPATCH_FILES = sorted(str(p.relative_to(ORACLE)) for p in ORACLE.glob("*/*/*_livepatch.txt"))
SERIES_CASES = [n for n in KERNEL_CASES if "series" in read_case(ORACLE / n)]


def _lpstate(path: Path) -> dict[str, str | None]:
    """An lpstate file: path -> value (None for a directory); checks the grammar."""
    lines = path.read_text().splitlines()
    assert _LPSTATE_HEADER.match(lines[0]), lines[0]
    if lines[1:] == ["absent"]:
        return {}
    out: dict[str, str | None] = {}
    for line in lines[1:]:
        m = _LPSTATE_LINE.match(line)
        assert m is not None, line
        is_dir = m["dir"] is not None
        assert is_dir == (m["value"] is None), line  # a directory has no value
        parent = m["path"].rpartition("/")[0]
        assert not parent or out.get(parent, "") is None, f"{line}: its directory comes first"
        out[m["path"]] = None if is_dir else m["value"]
    return out


def test_livepatch_state_files_follow_the_format() -> None:
    assert len(LIVEPATCH_FILES) >= 12
    for name in LIVEPATCH_FILES:
        state = _lpstate(ORACLE / name)
        for patch in {p.split("/")[0] for p in state}:
            assert state[patch] is None
            assert state[f"{patch}/enabled"] in ("0", "1")
            assert state[f"{patch}/transition"] in ("0", "1")
            assert state[f"{patch}/force"] == "!"  # write-only


@pytest.mark.parametrize("series", ["6.1", "6.12", "7.3"])
def test_livepatch_state_shows_the_static_patch(series: str) -> None:
    """lpc_fix as the kernel lists it: sympos 0 and 1 both appear as ",1"."""
    state = _lpstate(ORACLE / series / "module_check" / "first_livepatch.txt")
    for func in ("vmlinux/do_nanosleep,1", "vmlinux/cmdline_proc_show,1",
                 "lpc_sleeper/lpc_sleeper_wait,1", "lpc_sleeper/lpc_sleeper_nap,1"):
        assert state[f"lpc_fix/{func}"] is None
    assert state["lpc_fix/transition"] == "1"
    assert "lpc_pt/vmlinux/" + ("anon_pipe_read" if series == "7.3" else "pipe_read") + ",1" in state
    pre = _lpstate(ORACLE / series / "module_check" / "pre_livepatch.txt")
    assert {p.split("/")[0] for p in pre} == {"lpc_pt"}
    # once lpc_fix_r's transition is over, the patches it replaced are gone
    done = _lpstate(ORACLE / series / "replace_over_two" / "done_livepatch.txt")
    assert {p.split("/")[0] for p in done} == {"lpc_fix_r"}
    before = _lpstate(ORACLE / series / "replace_over_two" / "pre_livepatch.txt")
    assert {p.split("/")[0] for p in before} == {"lpc_pt", "lpc_pt_b"}


@pytest.mark.parametrize("name", SERIES_CASES)
def test_guest_snapshots_parse_whole(name: str) -> None:
    """A guest snapshot (lib.sh snapshot) is an lpc snapshot: every line read,
    every thread of meta.txt there, patch_state readable as a states file."""
    case_dir = ORACLE / name
    series = read_case(case_dir)["series"]
    assert len(series["snapshots"]) >= 3
    for snap in series["snapshots"]:
        dump = parse_dump(case_dir / snap)
        meta = dict(line.split("=", 1) for line in
                    (case_dir / snap / "meta.txt").read_text().splitlines())
        assert dump.source_format == "proc_snapshot"
        assert dump.skipped_lines == 0
        assert len(dump.tasks) == int(meta["threads"])
        assert meta["snapshot_complete"] == "1"
        states = parse_states(case_dir / snap / "patch_state.txt")
        assert set(states.tasks) <= {t.tid for t in dump.tasks}
        _lpstate(case_dir / snap / "livepatch.txt")


def test_module_cases_name_a_committed_module() -> None:
    for name in KERNEL_CASES:
        case = read_case(ORACLE / name)
        if case["scenario"] in ("module_check", "stacked_sysfs", "replace_over_two"):
            module = Path(__file__).parents[1] / case["module_file"]
            assert module.is_file(), module
            assert case["needs"]


# ---- the command line -------------------------------------------------------------------------------


def test_cli_oracle_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["oracle", "compare", str(ORACLE / "nanosleep"), "--json"])
    doc = loads(capsys.readouterr().out, "oracle-compare")
    assert rc == 0
    assert doc["schema_version"] == 1 and doc["scenario"] == "nanosleep"
    assert doc["agree"] <= doc["tasks"]
    for d in doc["disagreements"]:
        assert set(d) >= {"tid", "comm", "lpc", "kernel", "when", "explained", "why"}
        assert d["explained"]


def test_cli_oracle_compare_text_and_bad_case(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["oracle", "compare", str(ORACLE / "kthread_loops")]) == 0
    assert "task verdicts agree" in capsys.readouterr().out
    (tmp_path / "case.json").write_text("{}")
    assert main(["oracle", "compare", str(tmp_path)]) == 3
    assert main(["oracle", "run", "--scenario", "nope", "--no-build"]) == 2


# ---- the live oracle --------------------------------------------------------------------------------


def _live_oracle_available() -> str | None:
    if os.environ.get("LPC_ORACLE_LIVE") != "1":
        return "set LPC_ORACLE_LIVE=1 to boot the real kernel (needs qemu and cloud headers)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed"
    if not list(Path("/usr/src").glob("linux-headers-*-cloud-amd64")):
        return "no linux-headers-*-cloud-amd64"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_live_oracle_available() is not None,
                    reason=str(_live_oracle_available()))
def test_live_oracle(tmp_path: Path) -> None:
    """Boot Linux under qemu TCG and compare live (about 60 s: a guest build,
    then two boots, idle_leaf ~6 s and nanosleep ~22 s of guest time; twice
    that when the first run needs repeating)."""
    kver = _cheapest_kver()

    def run(out: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "lpc", "oracle", "run", "--work", str(tmp_path / "work"),
               "--kver", kver, "--out", str(tmp_path / out), "--scenario", "idle_leaf",
               "--scenario", "nanosleep"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)

    proc = run("cases")
    if proc.returncode == 1:
        # Exit 1 = an unexplained disagreement. A live run samples instants: one
        # that a second run does not repeat is a timing artifact of the first
        # (reported here, and worth a rule once understood); one that repeats fails.
        print("first live run disagreed; running again:\n" + proc.stdout, file=sys.stderr)
        proc = run("cases-again")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = tmp_path / ("cases-again" if (tmp_path / "cases-again").exists() else "cases")
    for name in ("idle_leaf", "nanosleep"):
        comparison = compare_case(cases / name)
        assert comparison.unexplained == []
    assert _kernel_and_lpc_live(cases / "nanosleep") == (BLOCKED, SWITCHED)


def _cheapest_kver() -> str:
    """The oldest cloud headers installed (6.1 where several are): one kernel per
    CI run, the quickest to build and boot; never a chroot's 7.x."""
    def version(abi: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", abi)[:3])
    abis = [p.name.removeprefix("linux-headers-")
            for p in Path("/usr/src").glob("linux-headers-*-cloud-amd64")]
    return min(abis, key=version)


def test_cheapest_kver_prefers_6_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = ["linux-headers-6.12.111+deb12-cloud-amd64", "linux-headers-6.1.0-57-cloud-amd64"]
    monkeypatch.setattr(Path, "glob", lambda self, pattern: [tmp_path / n for n in names])
    assert _cheapest_kver() == "6.1.0-57-cloud-amd64"


def _kernel_and_lpc_live(case_dir: Path) -> tuple[str, str]:
    """The sleeper's kernel verdict at the first retry and after the signals."""
    case = read_case(case_dir)
    out = []
    for spec in case["checks"]:
        states = parse_states(case_dir / spec["states_file"])
        tid = next(t for t, (_, comm) in states.tasks.items() if comm == "sleep")
        out.append(SWITCHED if states.switched(tid, 1) else BLOCKED)
    return out[0], out[1]
