"""`lpc.check` on real dumps: the recorded 6.18 /proc snapshot (with its own
kallsyms) and the SysRq-t / hung-task samples (without symbols)."""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

import pytest

from lpc.check import check, check_all, scan, sleeping_functions
from lpc.dump import Dump, parse_dump
from lpc.errors import SymbolError
from lpc.patch import Patch
from lpc.symbols import Symbols

DATA = Path(__file__).parent / "data"


@cache
def snapshot() -> Dump:
    return parse_dump(DATA / "procdump-6.18")


@cache
def symbols() -> Symbols:
    return Symbols.from_kallsyms(gzip.decompress((DATA / "kallsyms-6.18.txt.gz").read_bytes()))


def blocked(result: object) -> dict[str, str]:
    return {t.facts.comm: t.outcome.outlook.value for t in result.tasks  # type: ignore[attr-defined]
            if t.outcome.verdict.value == "blocked"}


def test_worker_thread_blocks_every_kworker_forever_under_klp() -> None:
    r = check(snapshot(), Patch.parse("worker_thread"), "klp", symbols())
    assert r.source["matched_by"] == "address"
    assert r.patch.functions[0].start == 0xFFFFFFFF81381800
    assert r.patch.functions[0].end == 0xFFFFFFFF81381800 + 0x310
    kworkers = {c for c in snapshot().comms if c.startswith("kworker/")}
    # Every kworker idles in worker_thread — except the rescuers' kthreads, which
    # are not kworkers; all 14 sleep there with worker_thread as the innermost frame.
    got = blocked(r)
    assert set(got) == {c for c in kworkers if c in got} and len(got) == 14
    assert set(got.values()) == {"stuck"}
    assert all(t.facts.patched_frame == 0 for t in r.tasks if t.outcome.verdict.value == "blocked")
    assert r.converges is False
    # Same answer matching by name, without the symbol table.
    by_name = check(snapshot(), Patch.parse("worker_thread"), "klp")
    assert blocked(by_name) == got and by_name.source["matched_by"] == "name"
    # kGraft: the workers pass their loop's safe point whatever is on their stack...
    kg = check(snapshot(), Patch.parse("worker_thread"), "kgraft", symbols())
    assert {t.outcome.outlook.value for t in kg.tasks if t.facts.comm in got} == {"after_wakeup"}
    # ...but LEAVE_KERNEL needs every user task out of the kernel, and the two tasks
    # parked in D (and one stopped) never leave: klp switches those at once.
    stuck = sorted((t.facts.comm, t.facts.state) for t in kg.tasks if t.outcome.outlook.value == "stuck")
    assert stuck == [("sh", "D"), ("sleep", "T"), ("touch", "D")]
    assert all(t.outcome.verdict.value == "switch" for t in r.tasks if t.facts.comm in ("sh", "touch"))


def test_futex_waiters_switch_after_the_fake_signal() -> None:
    r = check(snapshot(), Patch.parse("futex_do_wait"), "klp", symbols())
    assert blocked(r) == {"wl-futex": "after_signal", "memfd:sealed-91": "after_signal"}
    assert r.converges is True and r.transition.eta_s == 15.0


def test_pipe_readers_block_on_anon_pipe_read() -> None:
    r = check(snapshot(), Patch.parse("anon_pipe_read"), "klp", symbols())
    readers = [t for t in r.tasks if t.outcome.verdict.value == "blocked"]
    assert len(readers) == 15 == r.summary()["blocked"]
    assert {t.facts.patched_function for t in readers} == {"anon_pipe_read"}
    assert {t.outcome.outlook.value for t in readers} == {"after_signal"}


def test_scheduler_patch_on_proc_stacks_is_never_judged_clean() -> None:
    """/proc/<pid>/stack drops .sched.text: a patch to schedule() cannot be seen there."""
    r = check(snapshot(), Patch.parse("schedule"), "klp", symbols())
    assert r.summary()["switch"] < 10  # only zombies and tasks without a stack to distrust
    assert any(".sched.text" in w for w in r.warnings)
    assert all(t.outcome.verdict.value != "switch" or t.facts.dead or t.facts.running
               for t in r.tasks)


def test_patch_function_missing_from_the_symbol_table_is_an_error() -> None:
    with pytest.raises(SymbolError, match="pipe_read"):
        check(snapshot(), Patch.parse("pipe_read"), "klp", symbols())


def test_scan_agrees_with_a_brute_force_walk_of_the_real_stacks() -> None:
    patch = Patch.parse("worker_thread,do_wait,smpboot_thread_fn,kthread").resolve(symbols())
    found = scan(snapshot(), patch, symbols())
    names = [f.name for f in patch.functions]
    for t, task in enumerate(snapshot().tasks):
        want = next(((i, names.index(f.function)) for i, f in enumerate(task.frames)
                     if f.reliable and f.function in names), (-1, -1))
        assert (int(found.first[t]), int(found.function[t])) == want, task.comm


def test_sleeping_functions_lists_what_a_patch_cannot_touch() -> None:
    top = dict(sleeping_functions(snapshot()))
    assert top["worker_thread"] == 14
    assert top["kthread"] == 61
    assert "anon_pipe_read" in top


def test_hung_task_sample_without_symbols() -> None:
    dump = parse_dump(DATA / "hung-task-6.18.txt")
    r = check(dump, Patch.parse("percpu_rwsem_wait"), "klp")
    sh = [t for t in r.tasks if t.facts.comm == "sh"]
    assert sh and all(t.outcome.verdict.value == "blocked" for t in sh)
    assert {t.outcome.outlook.value for t in sh} == {"stuck"}  # D state
    assert all(t.facts.kind.value == "user" for t in sh)
    assert r.converges is False
    assert any("matched the patch by name" in w for w in r.warnings)


@pytest.mark.parametrize("sample", ["sysrq-t-6.x-i915-modules.txt", "sysrq-t-5.9-header-change-journald.txt",
                                    "hung-task-5.3-x86.txt", "rcu-stall-6.10-nmi.txt",
                                    "sysrq-t-5.7-orc-all-unreliable.txt", "crash-bt-foreach.txt",
                                    "hung-task-arm64-6.x-task-flags.txt"])
def test_every_model_judges_every_task_of_real_kernel_samples(sample: str) -> None:
    dump = parse_dump(DATA / sample)
    fn = next(f for f in dump.names if f.startswith(("schedule", "__schedule")))
    results = check_all(dump, Patch.parse(fn))
    for name, r in results.items():
        assert len(r.tasks) == dump.task_count, name
    klp = results["klp"]
    for t in klp.tasks:
        # Conservative: an unknown or distrusted stack is never "switch".
        if not t.facts.stack_trusted and not t.facts.dead:
            assert t.outcome.verdict.value != "switch", (sample, t.facts.comm)


def test_all_unreliable_orc_sample_is_unreliable_not_clean() -> None:
    dump = parse_dump(DATA / "sysrq-t-5.7-orc-all-unreliable.txt")
    r = check(dump, Patch.parse("cmdline_proc_show"), "klp")
    statuses = {t.facts.stack.value for t in r.tasks}
    assert "unwind_failure" in statuses
    for t in r.tasks:
        if t.facts.stack.value == "unwind_failure":
            assert t.outcome.verdict.value in ("unreliable", "running")
