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

A scenario with a snapshot :attr:`Scenario.series` (``watch_transition``)
also leaves ``<series>_NN/`` directories (lib.sh ``snapshot``: /proc stacks,
patch_state, the livepatch sysfs tree): each becomes a ``now`` check of its
own when recorded. Captures also hold ``<label>_livepatch.txt`` (lib.sh
``lpstate``), which the sysfs-state reader is to take as the loaded patches.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "CheckSpec", "Scenario", "fix_loaded", "thunk_spec"]

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
    #: replacements), or an explicit [object:]name list, in which ``{key}`` is
    #: the guest's ``key=value`` of subst.txt (``{pipe_read}``: pipe_read, or
    #: anon_pipe_read where fs/pipe.c split it)
    patch: str = "funcs"
    unpatch: bool = False
    force: bool = False
    #: the livepatches already enabled when this one is, bottom first, each as a
    #: patch spec ``fn[,fn…]`` whose functions may carry their replacement as
    #: ``old->module:new`` (``do_nanosleep->lpc_pt:lpc_pt_thunk_0``). A function an
    #: earlier patch replaces is checked at that patch's new function
    #: (transition.c klp_check_stack_func: the func_stack's previous entry).
    #: Recorded for the model; lpc.oracle.compare does not read it yet.
    loaded: tuple[str, ...] = ()
    #: the patch is an atomic replace (klp_patch.replace): every function of
    #: ``loaded`` it does not name gets a nop, checked at the loaded new function
    replace: bool = False


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
    #: the label prefix of a snapshot series the guest took (lib.sh snapshot:
    #: ``<series>_00/``, ``<series>_01/``…, kallsyms once in
    #: ``<series>_kallsyms.txt.gz``): each snapshot becomes a ``now`` check of
    #: its /proc stacks against its own patch_state.txt, under the patch of
    #: :attr:`series_patch`
    series: str | None = None
    series_patch: str = "funcs"
    #: what the host still needs to use the case fully (recorded in case.json
    #: as ``needs``): the checks above run now; these are further readings of
    #: the same captures that wait for other code
    needs: str = ""


#: lpc_pt over do_nanosleep, enabled below the patch a stacked scenario checks
_STACKED_BELOW = "do_nanosleep->lpc_pt:lpc_pt_thunk_0"
#: the stacked scenario: lpc_pt over lpc_sleeper_wait below lpc_pt_b
_STACKED_BELOW_WAIT = "lpc_sleeper:lpc_sleeper_wait->lpc_pt:lpc_pt_thunk_0"
_STACKED_FUNCS = "lpc_sleeper:lpc_sleeper_wait,lpc_sleeper:lpc_sleeper_nap"
#: lpc_fix (tools/oracle/modules/lpc_fix, tests/data/modules/*/lpc_fix.ko): its
#: functions in the order of its klp_func arrays, which is also the order of
#: its call counters, and the same patch enabled below another, each function
#: with its replacement
_FIX_FUNCS = ("do_nanosleep", "cmdline_proc_show@1", "lpc_sleeper:lpc_sleeper_wait",
              "lpc_sleeper:lpc_sleeper_nap")
_FIX_NEW = ("lpc_fix_do_nanosleep", "lpc_fix_cmdline_proc_show", "lpc_fix_sleeper_wait",
            "lpc_fix_sleeper_nap")
_FIX = ",".join(_FIX_FUNCS)


def fix_loaded(module: str = "lpc_fix") -> str:
    """lpc_fix (or lpc_fix_r) as an enabled patch: ``old->module:new`` per function."""
    return ",".join(f"{old}->{module}:{new}" for old, new in zip(_FIX_FUNCS, _FIX_NEW))


#: what the module_check / stacked_sysfs / replace_over_two cases wait for
_NEEDS_MODULE = ("lpc.patch_module (the patch read from module.txt's .ko, "
                 "tests/data/modules/<series>/) and lpc.livepatch_state (the loaded patches "
                 "read from *_livepatch.txt) to derive the checks' patch and loaded specs, "
                 "written out here by hand")
_FIRST = CheckSpec("first_retry", "first", "first", "now")
_SIGNALS = CheckSpec("after_signals", "first", "signals", "eventual")
_PLAIN = (_FIRST, _SIGNALS)
#: ... and the kernel's state at the signals capture against that capture's own dump
_SIGNALS_NOW = CheckSpec("signals_now", "signals", "signals", "now")
_PLAIN_NOW = (*_PLAIN, _SIGNALS_NOW)

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
            "freezable_resleep",
            "the project's kthread lpc_freezer dozes 4 s in lpc_sleeper:lpc_sleeper_doze (plain "
            "S), then sleeps 10 ms TASK_FREEZABLE outside it: v6.16+ switches it in __schedule() "
            "at that freezable sleep; before, only a retry falling in the 10 ms can",
            (
                _FIRST,
                CheckSpec("after_freezable", "first", "freeze", "eventual"),
                _SIGNALS,
                _SIGNALS_NOW,
            ),
        ),
        Scenario(
            "runnable",
            "three CPU-bound kthreads (nice 19) on 2 CPUs (runnable, R, not all on a CPU): two spin in "
            "lpc_sleeper_spin_out, one in the patched lpc_sleeper:lpc_sleeper_spin_in; all call "
            "cond_resched()",
            _PLAIN_NOW,
        ),
        Scenario(
            "runnable_nmi",
            "runnable, with SysRq-l's NMI backtraces printed right after SysRq-t in the same "
            "dump: a task on a CPU appears twice, the second time on the stack it runs on",
            _PLAIN_NOW,
        ),
        Scenario(
            "user_dsleep",
            "a user task in D sleep in lpc_sleeper:lpc_sleeper_hold, released after the signals "
            "round: it switches at kernel exit once the read returns (kthreadd, patched too, keeps "
            "the transition open)",
            (
                *_PLAIN_NOW,
                CheckSpec("after_release", "first", "released", "eventual"),
                CheckSpec("released_now", "released", "released", "now"),
            ),
        ),
        Scenario(
            "kthread_resleep",
            "the project's kthread lpc_resleeper asleep (S) in lpc_sleeper:lpc_sleeper_wait, a "
            "wait_event_interruptible() loop whose condition never holds: the fake signal wakes "
            "it and it sleeps again in the same function",
            _PLAIN_NOW,
        ),
        Scenario(
            "stacked",
            "lpc_pt passes lpc_sleeper_wait through before lpc_sleeper loads, so lpc_resleeper "
            "sleeps in it entered through the replacement; lpc_pt_b (no replace) patches "
            "lpc_sleeper_wait again and lpc_sleeper_nap: the stacked function is checked at "
            "lpc_pt's replacement, so lpc_resleeper switches at once and lpc_sleeper (in "
            "lpc_sleeper_nap) blocks until the signal",
            (
                CheckSpec("first_retry", "first", "first", "now", _STACKED_FUNCS,
                          loaded=(_STACKED_BELOW_WAIT,)),
                CheckSpec("after_signals", "first", "signals", "eventual", _STACKED_FUNCS,
                          loaded=(_STACKED_BELOW_WAIT,)),
                CheckSpec("signals_now", "signals", "signals", "now", _STACKED_FUNCS,
                          loaded=(_STACKED_BELOW_WAIT,)),
            ),
            takes_funcs=False,
            passthru=(("lpc_pt", ("lpc_sleeper:lpc_sleeper_wait",)),
                      ("lpc_pt_b", ("lpc_sleeper:lpc_sleeper_wait",
                                    "lpc_sleeper:lpc_sleeper_nap"))),
        ),
        Scenario(
            "force_pin",
            "force and the module reference (pin.txt): a forced plain enable of lpc_pt "
            "(do_nanosleep), then disabled and removed; a forced disable of lpc_swap "
            "(blocked by the kthread in lpc_swap_nap), then rmmod tried. Since 5.18 only the "
            "forced removal pins its module",
            (
                _FIRST,
                CheckSpec("after_force", "first", "forced", "eventual", force=True),
                CheckSpec("unpatch_first_retry", "unpatch_first", "unpatch_first", "now",
                          "lpc_swap:lpc_swap_nap", unpatch=True),
                CheckSpec("unpatch_after_force", "unpatch_first", "unforced", "eventual",
                          "lpc_swap:lpc_swap_nap", unpatch=True, force=True),
            ),
            takes_funcs=False,
            passthru=(("lpc_pt", ("do_nanosleep",)),),
        ),
        Scenario(
            "atomic_replace",
            "lpc_pt passes do_nanosleep through, a sleeper enters it through the replacement; "
            "lpc_pt_b (replace=1) patches pipe_read: the nop for do_nanosleep checks lpc_pt's "
            "replacement, not the original",
            (
                CheckSpec("first_retry", "first", "first", "now",
                          "{pipe_read}", loaded=(_STACKED_BELOW,),
                          replace=True),
                CheckSpec("after_signals", "first", "signals", "eventual",
                          "{pipe_read}", loaded=(_STACKED_BELOW,),
                          replace=True),
            ),
            takes_funcs=False,
            passthru=(("lpc_pt", ("do_nanosleep",)), ("lpc_pt_b", ("{pipe_read}",))),
        ),
        Scenario(
            "module_check",
            "a module checked before it is loaded: lpc_pt passes the pipe reader's function "
            "through (a cat sleeps in it), lpc_sleeper's kthreads sleep in lpc_sleeper_nap and "
            "lpc_sleeper_wait, a sleep in do_nanosleep; the pre capture and pre_livepatch.txt "
            "come before lpc_fix.ko (module.txt) is loaded: its patch is predicted from the "
            "module file and the sysfs state, then compared with the kernel's",
            (
                CheckSpec("predicted", "pre", "first", "now", _FIX,
                          loaded=("{pipe_read}->lpc_pt:lpc_pt_thunk_0",)),
                *(CheckSpec(c.when, c.dump, c.states, c.compare, _FIX,
                            loaded=("{pipe_read}->lpc_pt:lpc_pt_thunk_0",))
                  for c in _PLAIN_NOW),
            ),
            takes_funcs=False,
            passthru=(("lpc_pt", ("{pipe_read}",)), ("lpc_fix", _FIX_FUNCS)),
            needs=_NEEDS_MODULE,
        ),
        Scenario(
            "stacked_sysfs",
            "lpc_fix (static) enabled and done before lpc_sleeper loads, so its kthreads enter "
            "lpc_sleeper_nap/_wait through lpc_fix's thunks; lpc_pt_b (no replace) then passes "
            "lpc_sleeper_wait (lpc_fix's too) and the pipe reader's function through. The sysfs "
            "state before lpc_pt_b (pre_b_livepatch.txt) names the loaded patch: lpc_resleeper "
            "is checked at lpc_fix_sleeper_wait and switches at once, the cat blocks until the "
            "signal",
            tuple(CheckSpec(c.when, c.dump, c.states, c.compare,
                            "lpc_sleeper:lpc_sleeper_wait,{pipe_read}", loaded=(fix_loaded(),))
                  for c in _PLAIN_NOW),
            takes_funcs=False,
            passthru=(("lpc_fix", _FIX_FUNCS),
                      ("lpc_pt_b", ("lpc_sleeper:lpc_sleeper_wait", "{pipe_read}"))),
            needs=_NEEDS_MODULE,
        ),
        Scenario(
            "replace_over_two",
            "lpc_pt (do_nanosleep) and lpc_pt_b (the pipe reader's function), not replace, each "
            "with a sleeper entered through its thunk; lpc_fix_r (replace) then patches "
            "do_nanosleep again, cmdline_proc_show@1, lpc_sleeper_wait/_nap and nops the pipe "
            "function: both are checked at the earlier patches' thunks, so only lpc_sleeper "
            "(lpc_sleeper_nap, new) blocks, until the signal; sysfs before, at the insmod and "
            "once done (the replaced patches gone)",
            tuple(CheckSpec(c.when, c.dump, c.states, c.compare, _FIX,
                            loaded=("do_nanosleep->lpc_pt:lpc_pt_thunk_0",
                                    "{pipe_read}->lpc_pt_b:lpc_pt_thunk_0"),
                            replace=True)
                  for c in _PLAIN_NOW),
            takes_funcs=False,
            passthru=(("lpc_pt", ("do_nanosleep",)), ("lpc_pt_b", ("{pipe_read}",)),
                      ("lpc_fix_r", _FIX_FUNCS)),
            needs=_NEEDS_MODULE,
        ),
        Scenario(
            "watch_transition",
            "a transition that ends by itself within seconds, snapshotted about every second "
            "(snap_NN/: /proc stacks, patch_state, sysfs): lpc_pt over lpc_sleeper_doze "
            "(lpc_freezer dozes 3 s in it, then 1.5 s outside) and hrtimer_nanosleep (user "
            "sleeps of 2 s and 5 s); each snapshot is a check of its own",
            (CheckSpec("after", "after", "after", "now"),),
            takes_funcs=False,
            passthru=(("lpc_pt", ("lpc_sleeper:lpc_sleeper_doze", "hrtimer_nanosleep")),),
            series="snap",
            needs="lpc watch --dump snap_00 --dump snap_01 ... (the series replayed as retries, "
                  "each retry's per-task view against that snapshot's patch_state.txt)",
        ),
    )
}
