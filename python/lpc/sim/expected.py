"""What the literature says each model tolerates, and where the simulator disagrees.

:data:`LITERATURE` restates docs/livepatch.md §Guarantees per cell (and, for
the trivial model, the 2014 mail's own claim: docs/livepatch.md §The trivial
model) as model × patch class → holds. The systems inherit their cell's row (klp and josh: LEAVE_PATCHED_SET /
SWITCH_THREAD; kpatch and ksplice: LEAVE_PATCHED_SET / SWITCH_KERNEL; kGraft:
LEAVE_KERNEL / SWITCH_THREAD; null: LEAVE_FUNCTION / SWITCH_FUNCTION). Cells the
table does not cover carry our own reading, marked as such in :data:`SOURCES`.

:data:`DEVIATIONS` lists every cell where the simulator's answer differs, with
the mechanism its counterexample shows and our verdict on which side is right.
The tests assert ``simulator == literature`` outside this list and the listed
answer inside it, so a change in either the models or the simulator that moves
a cell is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

from lpc.sim.strategies import LITERATURE_SPACE, Space

CLASSES = ("body", "prototype", "semantics_moved", "shared_data", "shared_data_shadow")


def _row(*holds: bool) -> dict[str, bool]:
    return dict(zip(CLASSES, holds, strict=True))


#                                body  proto  moved  data   shadow
_NULL = _row(True, False, False, False, False)
_PATCHED_SET_THREAD = _row(True, True, True, False, True)
_PATCHED_SET_KERNEL = _row(True, True, True, True, True)
_KERNEL_THREAD = _row(True, True, True, False, True)
_EVERYTHING = _row(True, True, True, True, True)

LITERATURE: dict[str, dict[str, bool]] = {
    "null": _NULL,
    # The mail: "This is enough to make sure that function calls are consistent."
    "trivial": _row(True, True, True, False, False),
    "josh": _PATCHED_SET_THREAD,
    "klp": _PATCHED_SET_THREAD,
    "kpatch": _PATCHED_SET_KERNEL,
    "kgraft": _KERNEL_THREAD,
    "ksplice": _PATCHED_SET_KERNEL,
    "leave_function/switch_function": _NULL,
    "leave_function/switch_thread": _NULL,
    "leave_function/switch_kernel": _NULL,
    "leave_patched_set/switch_function": _NULL,
    "leave_patched_set/switch_thread": _PATCHED_SET_THREAD,
    "leave_patched_set/switch_kernel": _PATCHED_SET_KERNEL,
    "leave_kernel/switch_function": _EVERYTHING,
    "leave_kernel/switch_thread": _KERNEL_THREAD,
    "leave_kernel/switch_kernel": _EVERYTHING,
}

_ROW = "docs/livepatch.md §Guarantees per cell, row "
_OPEN = "our reading (docs/livepatch.md §Cells the table leaves open): "

SOURCES: dict[str, str] = {
    "null": _ROW + "LEAVE_FUNCTION / SWITCH_FUNCTION",
    "trivial": "docs/livepatch.md §The trivial model (the 2014 mail): calls are consistent; "
               "data is not addressed",
    "josh": _ROW + "LEAVE_PATCHED_SET / SWITCH_THREAD",
    "klp": _ROW + "LEAVE_PATCHED_SET / SWITCH_THREAD",
    "kpatch": _ROW + "LEAVE_PATCHED_SET / SWITCH_KERNEL",
    "kgraft": _ROW + "LEAVE_KERNEL / SWITCH_THREAD",
    "ksplice": _ROW + "LEAVE_PATCHED_SET / SWITCH_KERNEL",
    "leave_function/switch_function": _ROW + "LEAVE_FUNCTION / SWITCH_FUNCTION",
    "leave_function/switch_thread": _OPEN + "in-flight old activations continue, as in the "
                                            "null row",
    "leave_function/switch_kernel": _OPEN + "in-flight old activations continue, as in the "
                                            "null row",
    "leave_patched_set/switch_function": _OPEN + "functions flip at different instants, so a "
                                                 "chain entered between two flips mixes versions",
    "leave_patched_set/switch_thread": _ROW + "LEAVE_PATCHED_SET / SWITCH_THREAD",
    "leave_patched_set/switch_kernel": _ROW + "LEAVE_PATCHED_SET / SWITCH_KERNEL",
    "leave_kernel/switch_function": _OPEN + "a function may flip only at an instant with no "
                                            "kernel stack anywhere, which never comes while "
                                            "kthreads and idle tasks exist (holds vacuously)",
    "leave_kernel/switch_thread": _ROW + "LEAVE_KERNEL / SWITCH_THREAD",
    "leave_kernel/switch_kernel": _ROW + "LEAVE_KERNEL / SWITCH_KERNEL (the same as a restart; "
                                         "never reached while kthreads exist)",
}


@dataclass(frozen=True)
class Deviation:
    literature: bool
    simulator: bool
    #: What the shrunk counterexample shows.
    mechanism: str
    #: Which side is right, and why.
    verdict: str
    #: A smaller space of systems where the literature's answer does hold, if any.
    holds_in: Space | None = None


_SHADOW = Deviation(
    True, False,
    "a task still in the old universe runs old code on an object that a task in the new "
    "universe created with a shadow variable",
    "the simulator: a shadow tag lets new code recognise old objects, not old code new ones. "
    "Under SWITCH_THREAD both universes run for the whole transition, so the discipline is "
    "safe only if old code keeps the new invariant on tagged objects (a property of the patch) "
    "or new code starts the new semantic only after completion (a two-phase patch) — Josh's "
    "oldfunc/newdata problem is not solved by tagging alone",
)
_KPATCH_HIDDEN = Deviation(
    True, False,
    "a task sleeping in a patched .sched.text function passes the activeness check: "
    "save_stack_trace_tsk() drops scheduler frames of other tasks "
    "(kernel/stacktrace.c stack_trace_consume_entry_nosched), so old code survives "
    "stop_machine",
    "the simulator, for kernels whose best-effort walker skips __sched frames (docs/livepatch.md "
    "§S27); the literature's row describes the cell, whose check sees every frame — the pure "
    "leave_patched_set/switch_kernel cell holds",
    LITERATURE_SPACE,
)
_KGRAFT_SAFE_POINTS = Deviation(
    True, False,
    "a kthread switches at its try_to_freeze()/kgr_task_safe() point with its patched main "
    "loop still on the stack, and the idle tasks (not on the thread list) use new code at "
    "once, even inside an old idle-loop function",
    "the simulator: LEAVE_KERNEL holds for user tasks only; kGraft's safe points are an "
    "approximation that is exact only when the kthread loops and the idle path are not "
    "patched. The pure leave_kernel/switch_thread cell (no kthread ever switches) holds",
    LITERATURE_SPACE,
)

DEVIATIONS: dict[tuple[str, str], Deviation] = {
    ("trivial", "prototype"): Deviation(
        True, False,
        "an old function makes a sibling (tail) call: its frame is gone, parent_ip is its "
        "unpatched caller, so the callee goes new with arguments built for the old one",
        "the simulator, as docs/livepatch.md §Failure mode 2 says: within_patched_set(parent_ip) "
        "cannot see a caller that tail-called. (The unpatched-intermediary hole cannot break "
        "a prototype change: a function with an unpatched caller cannot change prototype)",
    ),
    ("trivial", "semantics_moved"): Deviation(
        True, False,
        "old g calls unpatched h, which calls f with h as parent_ip: f goes new inside an "
        "old chain",
        "the simulator, as docs/livepatch.md §Failure mode 1 says: consistency per call pair is "
        "not consistency per chain",
    ),
    ("josh", "shared_data_shadow"): _SHADOW,
    ("klp", "shared_data_shadow"): _SHADOW,
    ("leave_patched_set/switch_thread", "shared_data_shadow"): _SHADOW,
    ("kgraft", "shared_data_shadow"): _SHADOW,
    ("leave_kernel/switch_thread", "shared_data_shadow"): _SHADOW,
    ("kpatch", "prototype"): _KPATCH_HIDDEN,
    ("kpatch", "semantics_moved"): _KPATCH_HIDDEN,
    ("kpatch", "shared_data"): _KPATCH_HIDDEN,
    ("kpatch", "shared_data_shadow"): _KPATCH_HIDDEN,
    ("kgraft", "prototype"): _KGRAFT_SAFE_POINTS,
    ("kgraft", "semantics_moved"): _KGRAFT_SAFE_POINTS,
}


def expected(model: str, patch_class: str) -> bool:
    """What the simulator should answer: the literature, unless a deviation is recorded."""
    d = DEVIATIONS.get((model, patch_class))
    return LITERATURE[model][patch_class] if d is None else d.simulator
