"""The oracle's scenarios: what each guest script sets up, and what is compared.

A scenario runs in the guest as ``tools/oracle/scenarios/<name>.sh``. It leaves
capture files named by *label*: ``<label>_sysrq.txt`` (the SysRq-t dump),
``<label>_kallsyms.txt.gz``, ``<label>_states_pre.txt`` / ``<label>_states.txt``
(the kernel's per-task ``patch_state`` just before and just after the dump)
and ``<label>_calls.txt`` (how often each pass-through replacement ran). A
:class:`CheckSpec` names which dump lpc judges and which kernel verdicts it is
held against.

Two kinds of comparison (``compare``):

* ``now`` — lpc's verdict on this instant against the kernel's patch_state read
  around the dump: does the task switch now?
* ``eventual`` — lpc's *outlook* from the dump against the kernel's
  patch_state once the kernel has sent its fake signals (or been forced, or
  reversed): does the task ever switch without force?
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CheckSpec", "Scenario", "SCENARIOS", "thunk_spec"]

#: the module name of the pass-through patch, and its replacement symbols
PASSTHRU = "lpc_pt"


def thunk_spec(funcs: str, module: str = PASSTHRU) -> str:
    """The replacement functions of a pass-through patch of ``funcs``: slot i
    replaces the i-th function (tools/oracle/modules/lpc_pt), so unpatching
    checks ``lpc_pt_thunk_<i>`` (transition.c checks new_func when unpatching)."""
    n = len([f for f in funcs.split(",") if f.strip()])
    return ",".join(f"{module}:lpc_pt_thunk_{i}" for i in range(n))


@dataclass(frozen=True)
class CheckSpec:
    #: the moment compared: first_retry, after_signals, after_force, ...
    when: str
    #: the capture whose SysRq-t dump and kallsyms lpc judges
    dump: str
    #: the kernel's per-task patch_state compared with (``<states>_states.txt``)
    states: str
    compare: str  # "now" | "eventual"
    #: lpc's patch: "funcs" (the functions patched), "thunks" (their pass-through
    #: replacements), or an explicit [object:]name list
    patch: str = "funcs"
    unpatch: bool = False
    force: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    checks: tuple[CheckSpec, ...]
    #: the guest script honours ``--funcs`` (lpc_funcs=) for its patch
    takes_funcs: bool = True
    #: pass-through modules and the functions of their slots, in slot order,
    #: when not simply ``lpc_pt`` over the scenario's functions
    passthru: tuple[tuple[str, tuple[str, ...]], ...] | None = None


_FIRST = CheckSpec("first_retry", "first", "first", "now")
_SIGNALS = CheckSpec("after_signals", "first", "signals", "eventual")
_PLAIN = (_FIRST, _SIGNALS)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("idle_leaf", "a leaf function no task sleeps in (cmdline_proc_show)", _PLAIN),
        Scenario("nanosleep", "a user task asleep (S) in do_nanosleep (sleep 1000)", _PLAIN),
        Scenario("pipe_read", "a user task asleep (S) in pipe_read (cat on an idle pipe)", _PLAIN),
        Scenario("poll", "a user task asleep in poll(2) (sh's read -t): do_sys_poll, do_select",
                 _PLAIN),
        Scenario("kthread_loops", "kthreads always asleep in their main loop: worker_thread, "
                 "smpboot_thread_fn, kthreadd", _PLAIN),
        Scenario("sched_text", "a .sched.text function many kthreads wait in: schedule_timeout",
                 _PLAIN),
        Scenario("project_kthread", "the project's kthread asleep (S) in "
                 "lpc_sleeper:lpc_sleeper_nap; rests outside it once woken", _PLAIN),
        Scenario("uninterruptible", "a user task in D sleep in lpc_sleeper:lpc_sleeper_hold",
                 _PLAIN),
        Scenario(
            "reversal",
            "do_nanosleep,worker_thread blocked by a sleeper and the kworkers, then disabled "
            "mid-transition: the reverse direction checks the pass-through replacements",
            (
                _FIRST,
                CheckSpec("at_reversal", "reversal", "reversal", "now", "thunks", unpatch=True),
                CheckSpec("after_reversal", "reversal", "reversed", "eventual", "thunks",
                          unpatch=True),
            ),
        ),
        Scenario(
            "force",
            "do_nanosleep,worker_thread blocked, then force written: every task is switched",
            (_FIRST, CheckSpec("after_force", "first", "forced", "eventual", force=True)),
        ),
        Scenario(
            "unpatch",
            "lpc_swap really replaces lpc_sleeper_nap; once the kthread sleeps in the "
            "replacement, disabling the patch is held back by the new function",
            (
                CheckSpec("first_retry", "first", "first", "now", "lpc_sleeper:lpc_sleeper_nap"),
                CheckSpec("after_signals", "first", "signals", "eventual",
                          "lpc_sleeper:lpc_sleeper_nap"),
                CheckSpec("unpatch_first_retry", "unpatch_first", "unpatch_first", "now",
                          "lpc_swap:lpc_swap_nap", unpatch=True),
                CheckSpec("unpatch_after_signals", "unpatch_first", "unpatch_signals", "eventual",
                          "lpc_swap:lpc_swap_nap", unpatch=True),
            ),
            takes_funcs=False,
            passthru=(),
        ),
        Scenario(
            "atomic_replace",
            "lpc_pt passes do_nanosleep through, a sleeper enters it through the replacement; "
            "lpc_pt_b (replace=1) patches pipe_read: the nop for do_nanosleep checks lpc_pt's "
            "replacement, not the original",
            (
                CheckSpec("first_retry", "first", "first", "now",
                          "pipe_read,lpc_pt:lpc_pt_thunk_0"),
                CheckSpec("after_signals", "first", "signals", "eventual",
                          "pipe_read,lpc_pt:lpc_pt_thunk_0"),
            ),
            takes_funcs=False,
            passthru=(("lpc_pt", ("do_nanosleep",)), ("lpc_pt_b", ("pipe_read",))),
        ),
    )
}
