"""Stack-depth limits at their boundary, for klp and kpatch.

The kernel facts, read from the sources:

* klp — kernel/livepatch/transition.c ``klp_check_stack()`` saves the stack
  with ``stack_trace_save_tsk_reliable(task, entries, MAX_STACK_ENTRIES)``
  (100). kernel/stacktrace.c ``stack_trace_consume_entry()`` stores an entry
  and then answers ``c->len < c->size``: storing entry number 100 answers
  false, and ``arch_stack_walk_reliable()`` (arch/x86/kernel/stacktrace.c,
  likewise s390) returns -EINVAL when the consumer answers false. So 99
  entries pass and a stack of 100 or more is "unreliable".
* kpatch — dynup/kpatch kmod/core/core.c ``kpatch_verify_activeness_safety()``
  fails with -EBUSY when ``trace.nr_entries >= trace.max_entries``
  (``MAX_STACK_TRACE_DEPTH`` = 64). The x86 ``save_stack_trace_tsk()`` of the
  kernels kpatch.ko ran on (arch/x86/kernel/stacktrace.c, before the 5.2
  stack-walk rework) appends a ``ULONG_MAX`` end marker when there is room
  — core.c's loop stops at that marker. So 62 frames give nr_entries 63 and
  pass, 63 frames give 64 (frames + marker) and fail, and 64 or more fill the
  buffer and fail.

Each boundary is checked through the model API and end to end, from the text
of a SysRq-t dump (the 6.x ``task:`` header generation) through
``lpc.check.check``. A ``/proc/<pid>/stack`` file cannot show a 100-frame
stack: ``fs/proc/base.c`` cuts it at 64 entries, which lpc reads as
truncated, so the klp boundary is only reachable from a kernel log.
"""

from __future__ import annotations

import pytest

from lpc.check import check
from lpc.dump import parse_dump
from lpc.models import Outlook, Stack, TaskFacts, TaskKind, Verdict, get_model
from lpc.models.klp import MAX_STACK_ENTRIES
from lpc.models.kpatch import MAX_STACK_TRACE_DEPTH
from lpc.patch import Patch

#: A function on none of the stacks below: the stacks are clean.
ELSEWHERE = Patch.parse("cmdline_proc_show")


def facts(depth: int, *, kind: TaskKind = TaskKind.USER, state: str = "S",
          on_cpu: bool = False) -> TaskFacts:
    """A sleeping task with a complete stack of ``depth`` frames, none patched."""
    return TaskFacts(
        index=0, pid=4242, tid=4242, comm="deep", state=state, kind=kind,
        kind_evidence="test", on_cpu=on_cpu, stack=Stack.COMPLETE, depth=depth,
        frames=tuple(f"deep_fn_{i}" for i in range(depth)),
    )


def sysrq_t(depth: int, comm: str = "deep") -> bytes:
    """One user task of a 6.x SysRq-t dump with ``depth`` reliable frames
    (the innermost ones made up, rooted in a system-call entry)."""
    lines = [
        f"[  812.100000] task:{comm:<15} state:S stack:0     pid:4242  tgid:4242  ppid:1      "
        "task_flags:0x400100 flags:0x00004002",
        "[  812.100001] Call Trace:",
        "[  812.100002]  <TASK>",
        *(f"[  812.100003]  deep_fn_{i}+0x1c/0x60" for i in range(depth - 2)),
        "[  812.100004]  do_syscall_64+0x71/0x280",
        "[  812.100005]  entry_SYSCALL_64_after_hwframe+0x76/0x7e",
        "[  812.100006]  </TASK>",
    ]
    return ("\n".join(lines) + "\n").encode()


def proc_snapshot(depth: int) -> bytes:
    """The same task as lpc's recorded /proc snapshot (the ``# pid=`` header
    of ``lpc capture``; /proc shows no .sched.text frame)."""
    head = "# pid=4242 tid=4242 comm=deep state=S flags=0x00400100 kthread=0 cpu=0 status=ok"
    frames = [*(f"[<0>] deep_fn_{i}+0x1c/0x60" for i in range(depth - 2)),
              "[<0>] do_syscall_64+0x71/0x280",
              "[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e"]
    return ("\n".join([head, *frames]) + "\n\n").encode()


def test_the_limits_are_the_kernels() -> None:
    assert MAX_STACK_ENTRIES == 100  # transition.c
    assert MAX_STACK_TRACE_DEPTH == 64  # kpatch core.c


# ---- klp: 99 entries pass, 100 do not ----------------------------------------------------------

KLP_CASES = [(MAX_STACK_ENTRIES - 1, Verdict.SWITCH), (MAX_STACK_ENTRIES, Verdict.UNRELIABLE),
             (MAX_STACK_ENTRIES + 1, Verdict.UNRELIABLE)]


@pytest.mark.parametrize(("depth", "verdict"), KLP_CASES)
def test_klp_model_depth_boundary(depth: int, verdict: Verdict) -> None:
    o = get_model("klp").judge_task(facts(depth))
    assert o.verdict is verdict
    if verdict is Verdict.UNRELIABLE:
        assert o.errno == "EINVAL"
        assert f"{MAX_STACK_ENTRIES} entries or more" in o.reason
        # A user task in an interruptible sleep still leaves through the fake signal.
        assert o.outlook is Outlook.AFTER_SIGNAL
    else:
        assert (o.outlook, o.errno) == (Outlook.SWITCHED, None)


@pytest.mark.parametrize(("depth", "verdict"), KLP_CASES)
def test_klp_depth_boundary_from_a_sysrq_t_dump(depth: int, verdict: Verdict) -> None:
    dump = parse_dump(sysrq_t(depth))
    assert dump.source_format == "dmesg"
    result = check(dump, ELSEWHERE, "klp")
    (task,) = result.tasks
    assert (task.facts.depth, task.facts.stack, task.facts.kind) == (depth, Stack.COMPLETE,
                                                                     TaskKind.USER)
    assert task.outcome.verdict is verdict
    assert (task in result.blocking) is (verdict is not Verdict.SWITCH)


@pytest.mark.parametrize(("depth", "outlook"), [(MAX_STACK_ENTRIES - 1, Outlook.SWITCHED),
                                                (MAX_STACK_ENTRIES, Outlook.UNKNOWN)])
def test_klp_cond_resched_switch_point_has_the_same_limit(depth: int, outlook: Outlook) -> None:
    """A running kthread switches itself at cond_resched() (__klp_sched_try_switch
    → klp_check_stack): the same 100-entry buffer, so a 100-entry stack fails there too."""
    o = get_model("klp", cond_resched_switch=True).judge_task(
        facts(depth, kind=TaskKind.KTHREAD, state="R", on_cpu=True))
    assert (o.verdict, o.outlook) == (Verdict.RUNNING, outlook)


def test_klp_limit_is_a_parameter_with_the_same_rule() -> None:
    klp = get_model("klp", max_stack_entries=10)
    assert klp.judge_task(facts(9)).verdict is Verdict.SWITCH
    assert klp.judge_task(facts(10)).verdict is Verdict.UNRELIABLE


# ---- kpatch: 62 frames pass, 63 do not -----------------------------------------------------------

KPATCH_CASES = [(MAX_STACK_TRACE_DEPTH - 2, Verdict.SWITCH),
                (MAX_STACK_TRACE_DEPTH - 1, Verdict.UNRELIABLE),
                (MAX_STACK_TRACE_DEPTH, Verdict.UNRELIABLE),
                (MAX_STACK_TRACE_DEPTH + 1, Verdict.UNRELIABLE)]


@pytest.mark.parametrize(("depth", "verdict"), KPATCH_CASES)
def test_kpatch_model_depth_boundary(depth: int, verdict: Verdict) -> None:
    o = get_model("kpatch").judge_task(facts(depth))
    assert o.verdict is verdict
    if verdict is Verdict.UNRELIABLE:
        # The whole attempt fails with -EBUSY, at every retry of the script.
        assert (o.outlook, o.errno) == (Outlook.STUCK, "EBUSY")
        assert "64-entry stack trace is full" in o.reason
    else:
        assert (o.outlook, o.errno) == (Outlook.SWITCHED, None)


@pytest.mark.parametrize(("depth", "verdict"), KPATCH_CASES)
def test_kpatch_depth_boundary_from_a_sysrq_t_dump(depth: int, verdict: Verdict) -> None:
    result = check(parse_dump(sysrq_t(depth)), ELSEWHERE, "kpatch")
    (task,) = result.tasks
    assert task.facts.depth == depth
    assert task.outcome.verdict is verdict
    # All or nothing: one such task and nothing is patched.
    assert result.converges is (verdict is Verdict.SWITCH)


@pytest.mark.parametrize(("depth", "verdict"), KPATCH_CASES[:2])
def test_kpatch_depth_boundary_from_a_proc_snapshot(depth: int, verdict: Verdict) -> None:
    """Below 64 lines a /proc stack is whole, so the same boundary shows there."""
    dump = parse_dump(proc_snapshot(depth))
    assert dump.source_format == "proc_snapshot"
    (task,) = check(dump, ELSEWHERE, "kpatch").tasks
    assert (task.facts.depth, task.facts.stack) == (depth, Stack.COMPLETE)
    assert task.outcome.verdict is verdict


def test_a_proc_stack_of_64_lines_is_truncated_never_clean() -> None:
    """fs/proc/base.c prints at most 64 entries: such a stack may be cut, so
    klp cannot call it clean even though 64 < 100."""
    (task,) = check(parse_dump(proc_snapshot(64)), ELSEWHERE, "klp").tasks
    assert task.facts.stack is Stack.TRUNCATED
    assert task.outcome.verdict is Verdict.UNRELIABLE


def test_kpatch_running_task_is_unknown_whatever_its_depth() -> None:
    """stop_machine stops a running task somewhere the snapshot cannot show:
    its visible depth decides nothing, on either side of the limit."""
    for depth in (MAX_STACK_TRACE_DEPTH - 2, MAX_STACK_TRACE_DEPTH + 1):
        o = get_model("kpatch").judge_task(facts(depth, state="R", on_cpu=True))
        assert (o.verdict, o.outlook) == (Verdict.RUNNING, Outlook.UNKNOWN)


@pytest.mark.parametrize(("depth", "verdict"), [(MAX_STACK_ENTRIES, Verdict.SWITCH),
                                                (MAX_STACK_ENTRIES + 1, Verdict.UNRELIABLE)])
def test_klp_before_5_2_took_a_full_buffer(depth: int, verdict: Verdict) -> None:
    """4.12–5.1 x86 save_stack_address() refused an entry only when the buffer
    was already full, so exactly 100 entries passed; the 5.2 stacktrace rework
    (stack_trace_consume_entry) fails on storing the 100th."""
    from lpc.kernel import Kernel

    old = get_model("klp", Kernel("4.19.0-27-amd64", "test"))
    assert old.judge_task(facts(depth)).verdict is verdict
    if verdict is Verdict.UNRELIABLE:
        assert "more than 100 entries" in old.judge_task(facts(depth)).reason
