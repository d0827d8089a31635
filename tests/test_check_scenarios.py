"""Scenarios S1–S12 and S20 (docs/livepatch.md §Scenarios), as built dumps + patches.

Each scenario is written the way a machine would show it — a recorded /proc
snapshot (lpc's own capture format) or a SysRq-t / hung-task kernel log — then
parsed, scanned and judged by every model through `lpc.check`, so the whole
pipeline (parser → scan → facts → model) is what is asserted. The expected
verdicts and outlooks are the ones each system's sources give (docs/livepatch.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import replace

import pytest

from lpc.check import CheckResult, check, check_all
from lpc.dump import parse_dump
from lpc.kernel import Kernel
from lpc.patch import Patch

KTHREAD_ROOT = ["kthread+0xf8/0x220", "ret_from_fork+0x151/0x170", "ret_from_fork_asm+0x1a/0x30"]
SYSCALL_ROOT = ["do_syscall_64+0x71/0x280", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"]


def task(pid: int, comm: str, state: str, kthread: bool, frames: Sequence[str],
         status: str = "ok", cpu: int = 0) -> str:
    head = (f"# pid={pid} tid={pid} comm={comm} state={state} "
            f"flags={'0x00208040' if kthread else '0x00400100'} kthread={int(kthread)} "
            f"cpu={cpu} status={status}")
    return "\n".join([head, *(f"[<0>] {f}" for f in frames)]) + "\n\n"


def snapshot(*tasks: str) -> bytes:
    return "".join(tasks).encode()


def kworker(pid: int, *inner: str, state: str = "I") -> str:
    return task(pid, f"kworker/0:{pid}", state, True,
                [*inner, "worker_thread+0x98/0x310", *KTHREAD_ROOT])


def sleeper(pid: int, comm: str, *inner: str, state: str = "S") -> str:
    return task(pid, comm, state, False, [*inner, *SYSCALL_ROOT])


def outlook(r: CheckResult, comm: str) -> str:
    return next(t.outcome.outlook.value for t in r.tasks if t.facts.comm == comm)


def verdict(r: CheckResult, comm: str) -> str:
    return next(t.outcome.verdict.value for t in r.tasks if t.facts.comm == comm)


IDLE_SYSTEM = snapshot(
    sleeper(100, "bash", "do_wait+0x53/0x120", "kernel_wait4+0xa9/0x150"),
    sleeper(101, "sshd", "do_sys_poll+0x2b1/0x4d0", "__x64_sys_ppoll+0xbe/0x150"),
    kworker(9),
    task(2, "kthreadd", "S", True, ["kthreadd+0x11b/0x170", "ret_from_fork+0x151/0x170",
                                   "ret_from_fork_asm+0x1a/0x30"]),
)


def test_s1_idle_system_leaf_function_converges_under_every_model() -> None:
    results = check_all(parse_dump(IDLE_SYSTEM), Patch.parse("cmdline_proc_show"))
    for name in ("null", "josh", "klp", "kpatch", "kgraft", "ksplice"):
        assert results[name].converges is True, (name, results[name].transition.reason)
    klp = results["klp"]
    assert all(t.outcome.verdict.value == "switch" for t in klp.tasks)
    assert results["trivial"].converges is None  # no completion point, ever
    assert any("seen on no stack: cmdline_proc_show" in w for w in klp.warnings)


S2 = snapshot(
    kworker(40, "msleep+0x2d/0x40", "busymod_work_func+0x29/0x40 [test_klp_callbacks_busy]",
            "process_one_work+0x178/0x340", state="D"),
    sleeper(100, "bash", "do_wait+0x53/0x120"),
)
S2_PATCH = Patch.parse("test_klp_callbacks_busy:busymod_work_func")


def test_s2_busy_worker_blocks_klp_kpatch_ksplice_kgraft_but_not_null() -> None:
    r = check_all(parse_dump(S2), S2_PATCH)
    assert verdict(r["klp"], "kworker/0:40") == "blocked"
    assert r["klp"].tasks[0].outcome.errno == "EADDRINUSE"
    assert r["klp"].tasks[0].facts.patched_frame == 1
    assert outlook(r["klp"], "kworker/0:40") == "stuck"  # D: the wake-ups do not reach it
    assert r["klp"].converges is False
    assert r["kpatch"].converges is False and "5 attempts" in r["kpatch"].transition.reason
    assert r["ksplice"].converges is False
    # D: kGraft's wake_up_process() ends the sleep, but msleep() sleeps again: unknown.
    assert outlook(r["kgraft"], "kworker/0:40") == "unknown"
    assert r["null"].converges is True
    assert r["null"].tasks[0].outcome.extra["executing_old"] is True


def test_s2_module_object_must_match() -> None:
    # The same name in vmlinux would be another function: no match. But a bare
    # name the dump shows only in a module is most likely that module's
    # function, misnamed: refused, with the spelling that would match.
    from lpc.locate import PatchNotLocatedError

    with pytest.raises(PatchNotLocatedError,
                       match="did you mean test_klp_callbacks_busy:busymod_work_func"):
        check(parse_dump(S2), Patch.parse("busymod_work_func"))
    r = check(parse_dump(S2), Patch.parse("test_klp_callbacks_busy:busymod_work_func"))
    assert r.converges is not True


def test_s3_user_tasks_hammering_a_patched_syscall_switch_at_kernel_exit() -> None:
    dump = parse_dump(snapshot(
        task(200, "getpid-loop", "R", False, []),  # on a CPU: /proc shows no stack
        task(201, "getpid-loop", "R", False, ["__x64_sys_getpid+0x1d/0x30", *SYSCALL_ROOT]),
        sleeper(100, "bash", "do_wait+0x53/0x120"),
    ))
    r = check_all(dump, Patch.parse("__x64_sys_getpid"))
    klp = r["klp"]
    assert [t.outcome.verdict.value for t in klp.tasks] == ["running", "blocked", "switch"]
    assert [t.outcome.outlook.value for t in klp.tasks][:2] == ["at_kernel_exit", "at_kernel_exit"]
    assert klp.converges is True and r["kgraft"].converges is True
    assert r["kpatch"].converges is None  # a task preempted inside: retry, outcome unknown


S4 = snapshot(
    sleeper(300, "irqbalance", "hrtimer_nanosleep+0x8e/0x130", "common_nsleep+0x40/0x50",
            "__x64_sys_clock_nanosleep+0xcf/0x140"),
)


def test_s4_interruptible_sleeper_switches_after_the_fake_signal() -> None:
    r = check_all(parse_dump(S4), Patch.parse("hrtimer_nanosleep"))
    t = r["klp"].tasks[0]
    assert (t.outcome.verdict.value, t.outcome.outlook.value) == ("blocked", "after_signal")
    assert t.outcome.eta_s == 15.0  # SIGNALS_TIMEOUT retries ~1 s apart
    assert r["klp"].converges is True
    assert r["kpatch"].converges is False  # activeness safety check fails 5 times
    assert "activeness safety check failed for hrtimer_nanosleep" in r["kpatch"].tasks[0].outcome.reason
    assert outlook(r["kgraft"], "irqbalance") == "after_signal"


def test_s5_function_always_on_a_stack_only_kgraft_converges() -> None:
    dump = parse_dump(snapshot(
        kworker(9), kworker(10), sleeper(400, "agetty", "n_tty_read+0x4a4/0x6f0",
                                         "tty_read+0x13c/0x1f0", "vfs_read+0xb4/0x310"),
    ))
    r = check_all(dump, Patch.parse("worker_thread,n_tty_read"))
    assert outlook(r["klp"], "kworker/0:9") == "stuck"
    assert "main loop" in r["klp"].tasks[0].outcome.reason
    assert outlook(r["klp"], "agetty") == "after_signal"
    assert r["klp"].converges is False
    assert r["kpatch"].converges is False and r["ksplice"].converges is False
    assert r["kgraft"].converges is True
    assert r["null"].converges is True


BUSY_KTHREAD_FRAMES = (
    "[  100.000004]  busy_loop+0x10/0x40 [busymod]\n"
    "[  100.000005]  kthread+0xf8/0x220\n"
    "[  100.000006]  ret_from_fork+0x151/0x170\n"
    "[  100.000007]  ret_from_fork_asm+0x1a/0x30\n"
)


def test_s6_runnable_is_not_running() -> None:
    """SysRq-t's "running task" is task_is_running(): runnable. Without evidence
    of a CPU, klp checks the stack like any other (rule: -EBUSY needs task_curr())."""
    log = (
        "[  100.000000] sysrq: Show State\n"
        "[  100.000001] task:busy_kthread    state:R  running task     stack:0     pid:77    "
        "tgid:77    ppid:2      task_flags:0x208040 flags:0x00004000\n"
        "[  100.000002] Call Trace:\n"
        "[  100.000003]  <TASK>\n"
        "[  100.000004]  __schedule+0x3d0/0x1100\n"
        "[  100.000004]  __cond_resched+0x2c/0x40\n"
        f"{BUSY_KTHREAD_FRAMES}"
        "[  100.000008]  </TASK>\n"
    )
    dump = parse_dump(log.encode())
    assert dump.tasks[0].on_cpu is None and dump.tasks[0].state == "R"
    r = check(dump, Patch.parse("cmdline_proc_show"))
    assert (verdict(r, "busy_kthread"), outlook(r, "busy_kthread")) == ("switch", "switched")
    blocked = check(dump, Patch.parse("busymod:busy_loop"))
    assert verdict(blocked, "busy_kthread") == "blocked"


def test_s6_cpu_bound_kthread_switches_at_cond_resched_only_in_6_4_to_6_15() -> None:
    """An NMI backtrace puts the kthread on its CPU. 6.4–6.15 check it at
    cond_resched() (e3ff7c609f39); 6.16+ only at a freezable sleep (676e8cf70cb0)."""
    log = (
        "[  100.000000] NMI backtrace for cpu 1\n"
        "[  100.000001] CPU: 1 PID: 77 Comm: busy_kthread Not tainted 6.12.0 #1\n"
        "[  100.000002] Call Trace:\n"
        "[  100.000002]  <NMI>\n"
        "[  100.000002]  nmi_cpu_backtrace+0xa8/0xf0\n"
        "[  100.000002]  </NMI>\n"
        "[  100.000003]  <TASK>\n"
        f"{BUSY_KTHREAD_FRAMES}"
        "[  100.000008]  </TASK>\n"
    )
    dump = parse_dump(log.encode())
    assert dump.tasks[0].on_cpu is True
    patch = Patch.parse("cmdline_proc_show")
    r = check(dump, patch, kernel=Kernel("6.12.118", "test", "x86_64"))
    assert (verdict(r, "busy_kthread"), outlook(r, "busy_kthread")) == ("running", "switched")
    assert r.model_profile["profile"] == "6.4–6.15" and "cond_resched" in r.model_profile[
        "switch_points"]
    for release in ("6.18.3", "7.0.1", "6.1.150"):
        r = check(dump, patch, kernel=Kernel(release, "test", "x86_64"))
        assert outlook(r, "busy_kthread") == "unknown", release
        assert "cond_resched" not in r.model_profile["switch_points"], release
        assert r.converges is None
    assert "freezable" in check(dump, patch, kernel=Kernel("6.18.3", "test", "x86_64")).tasks[
        0].outcome.reason.lower()


def test_s7_uninterruptible_user_sleep_switches_once_it_ends() -> None:
    dump = parse_dump(snapshot(
        sleeper(500, "cp", "rpc_wait_bit_killable+0x1e/0xa0", "nfs_file_read+0x8c/0xd0",
                "vfs_read+0xb4/0x310", state="D"),
    ))
    r = check_all(dump, Patch.parse("nfs_file_read"))
    # Not stuck: the D sleep ends on its own and the task switches at kernel exit;
    # but nothing livepatch does ends it, so the transition is unknown.
    assert outlook(r["klp"], "cp") == "after_wakeup"
    assert "fake signals do not end that sleep" in r["klp"].tasks[0].outcome.reason
    assert r["klp"].converges is None
    assert r["null"].converges is True


def test_s8_init_in_ep_poll_is_reached_by_the_fake_signal() -> None:
    dump = parse_dump(snapshot(
        sleeper(1, "systemd", "ep_poll+0x4d1/0x5c0", "do_epoll_wait+0xb8/0xd0",
                "__x64_sys_epoll_wait+0x65/0x100"),
    ))
    r = check(dump, Patch.parse("ep_poll"))
    assert outlook(r, "systemd") == "after_signal"
    assert r.converges is True


def test_s9_running_user_task_switches_at_kernel_exit() -> None:
    dump = parse_dump(snapshot(task(600, "spin", "R", False, [])))
    assert dump.tasks[0].on_cpu is True
    r = check(dump, Patch.parse("cmdline_proc_show"))
    assert (verdict(r, "spin"), outlook(r, "spin")) == ("running", "at_kernel_exit")
    assert r.tasks[0].outcome.errno == "EBUSY"


def test_s10_idle_cpus_switch_in_do_idle_and_kpatch_never_looks() -> None:
    log = (
        "[  100.000000] NMI backtrace for cpu 1 skipped: idling at default_idle+0x9/0x20\n"
    )
    dump = parse_dump(log.encode())
    r = check_all(dump, Patch.parse("cmdline_proc_show"))
    t = r["klp"].tasks[0]
    assert t.facts.kind.value == "idle"
    assert (t.outcome.verdict.value, t.outcome.outlook.value) == ("running", "after_wakeup")
    assert r["kpatch"].tasks[0].outcome.extra["unchecked"] is True


def test_s11_reversal_checks_the_new_functions_only() -> None:
    # Mid-transition reversal: the worker still runs the *old* function (it never
    # switched), so unpatching — which checks the replacement's range — passes it.
    r = check(parse_dump(S2), Patch.parse("livepatch_busy:busymod_work_func", unpatch=True))
    assert r.converges is True
    assert r.params["unpatching"] is True
    # A task asleep in the replacement does block the reversal.
    in_new = snapshot(kworker(41, "msleep+0x2d/0x40",
                              "busymod_work_func+0x29/0x40 [livepatch_busy]",
                              "process_one_work+0x178/0x340", state="D"))
    r = check(parse_dump(in_new), Patch.parse("livepatch_busy:busymod_work_func", unpatch=True))
    assert verdict(r, "kworker/0:41") == "blocked" and r.converges is False


def test_s12_force_completes_but_says_consistency_may_break() -> None:
    r = check(parse_dump(S2), S2_PATCH, force=True)
    assert r.converges is True
    t = r.tasks[0]
    assert t.outcome.outlook.value == "switched" and t.outcome.extra["forced"] is True
    assert "may be broken" in t.outcome.reason
    # 5.18+ (2957308343fa): forcing a plain enable pins no module; the
    # transition completes at the next klp_transition_work run, not at once.
    assert "no module is pinned" in r.transition.reason and r.transition.eta_s == 1.0
    old = check(parse_dump(S2), S2_PATCH, kernel=Kernel("5.10.0-30-amd64", "test"), force=True)
    assert "never be removed" in old.transition.reason
    gone = check(parse_dump(S2), S2_PATCH, force=True, unpatching=True)
    assert "never be removed" in gone.transition.reason
    replacing = check(parse_dump(S2), replace(S2_PATCH, replace=True),
                      force=True)
    assert "patches it replaces" in replacing.transition.reason
    with pytest.raises(ValueError, match="4.16"):
        check(parse_dump(S2), S2_PATCH, kernel=Kernel("4.14.0", "test"), force=True)


def test_s20_unreliable_stacks() -> None:
    deep = [f"fn{i}+0x10/0x40" for i in range(101)]
    dump = parse_dump(snapshot(
        task(700, "deep", "S", False, [*deep, *SYSCALL_ROOT]),
        task(701, "gone", "S", False, [], status="gone"),
        kworker(9),
    ))
    r = check_all(dump, Patch.parse("cmdline_proc_show"))
    klp = r["klp"]
    assert verdict(klp, "deep") == "unreliable" and klp.tasks[0].outcome.errno == "EINVAL"
    assert "100 entries or more" in klp.tasks[0].outcome.reason
    assert verdict(klp, "gone") == "unreliable"  # unreadable: unknown, never clean
    assert verdict(r["kpatch"], "deep") == "unreliable"  # > 64 entries: -EBUSY
    assert r["kpatch"].tasks[0].outcome.errno == "EBUSY"
    # Without HAVE_RELIABLE_STACKTRACE kthreads never switch.
    weak = check(dump, Patch.parse("cmdline_proc_show"), reliable_stacks=False)
    assert outlook(weak, "kworker/0:9") == "stuck" and weak.converges is False


def test_s20_an_interrupt_frame_is_unreliable_only_without_orc() -> None:
    """A kthread preempted in the kernel: kernel-mode registers on its stack.
    x86 ORC walks through them (arch_stack_walk_reliable); frame pointers,
    arm64, powerpc and s390 give up there."""
    log = (
        "[  100.000001] task:preempted       state:R  running task     stack:0     pid:800   "
        "tgid:800   ppid:2      task_flags:0x208040 flags:0x00004000\n"
        "[  100.000002] Call Trace:\n"
        "[  100.000006]  <TASK>\n"
        "[  100.000007]  __schedule+0x3d0/0x1100\n"
        "[  100.000007]  preempt_schedule_irq+0x34/0x50\n"
        "[  100.000007]  irqentry_exit+0x31/0x80\n"
        "[  100.000007]  asm_sysvec_apic_timer_interrupt+0x1a/0x20\n"
        "[  100.000007] RIP: 0010:busy_loop+0x10/0x40 [busymod]\n"
        f"{BUSY_KTHREAD_FRAMES}"
        "[  100.000009]  </TASK>\n"
    )
    dump = parse_dump(log.encode())
    patch = Patch.parse("cmdline_proc_show")
    assert verdict(check(dump, patch), "preempted") == "switch"
    fp = check(dump, patch, regs_frames_unreliable=True)
    assert verdict(fp, "preempted") == "unreliable" and "interrupt" in fp.tasks[0].outcome.reason
    # arm64 stops there too, and walks a running task's stale frame: this
    # runnable kthread may be on its CPU, so nothing is promised either way.
    arm64 = check(dump, patch, kernel=Kernel("6.18.0-arm64", "test"))
    assert outlook(arm64, "preempted") == "unknown" and verdict(arm64, "preempted") != "switch"
    # x86_64 4.14–4.17: an ORC kernel has no reliable stacks at all.
    old = check(dump, patch, kernel=Kernel("4.15.0-20-generic", "test", "x86_64"))
    assert verdict(old, "preempted") == "unreliable"


def test_zombies_have_no_stack_and_switch() -> None:
    r = check_all(parse_dump(snapshot(task(900, "defunct", "Z", False, []))),
                  Patch.parse("do_exit"))
    for name in ("klp", "kpatch", "ksplice", "kgraft", "josh"):
        assert verdict(r[name], "defunct") == "switch", name


@pytest.mark.parametrize("model", ["leave_function/switch_function", "leave_patched_set/switch_thread",
                                   "leave_kernel/switch_thread", "leave_patched_set/switch_kernel"])
def test_matrix_cells_on_s5(model: str) -> None:
    dump = parse_dump(snapshot(kworker(9), sleeper(100, "bash", "do_wait+0x53/0x120")))
    r = check(dump, Patch.parse("worker_thread"), model)
    expected = {
        "leave_function/switch_function": True,
        "leave_patched_set/switch_thread": False,
        "leave_kernel/switch_thread": False,  # kthreads never leave the kernel
        "leave_patched_set/switch_kernel": False,
    }[model]
    assert r.converges is expected
