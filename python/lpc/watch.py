"""``lpc watch``: one line per retry, and when a real transition ends.

The kernel retries a transition every second (transition.c
klp_transition_work_fn); ``watch`` checks the machine (or one recorded
snapshot per retry) as often. When the machine shows the checked patch's own
transition in progress, each line carries the kernel's own answer too: which
tasks it has switched (``/proc/PID/task/TID/patch_state`` is the target
state) and lpc's verdict on each task it has not.
"""

from __future__ import annotations

from typing import Any

from lpc.check import MachineView
from lpc.livepatch_state import LivepatchState, LoadedPatch
from lpc.models import CONVERGING, Outlook
from lpc.result import CheckResult

__all__ = ["pending_converges", "transition_end", "watch_line"]

#: 2: each blocking task is the document `lpc check --json` writes for it.
SCHEMA_VERSION = 2


def watch_line(retry: int, now: float, result: CheckResult,
               machine: MachineView | None) -> dict[str, Any]:
    """One retry as a JSON object. ``blocking``: the tasks lpc would not switch
    now (those the kernel has already switched are left out: their verdict is
    moot). With a transition followed, ``transition`` gives the kernel's
    counts and each blocking task its ``patch_state``."""
    following = machine is not None and machine.transition is not None
    # The same task documents as `lpc check --json` (TaskResults.as_json),
    # with the kernel's patch_state beside each while a transition is followed.
    positions = []
    for k, t in enumerate(result.tasks):
        if t.outcome.verdict.value == "switch":
            continue
        if following and machine is not None and machine.kernel_switched(t.facts.tid):
            continue
        positions.append(k)
    blocking = result.tasks.subset(positions).as_json()
    if following and machine is not None:
        kernel_states = machine.patch_states
        for doc in blocking:
            doc["patch_state"] = (None if kernel_states is None
                                  else kernel_states.get(doc["tid"] or -1))
    line: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "retry": retry,
        "time": now,
        "model": result.model,
        "blocking": blocking,
        "converges": result.converges,
        "eta_s": result.transition.eta_s,
    }
    if following:
        assert machine is not None and machine.transition is not None
        switched, pending = machine.kernel_pending()
        unseen = _not_in_dump(result, pending)
        line["pending_converges"] = pending_converges(result, machine, unseen)
        line["transition"] = {
            "patch": machine.transition.name,
            "target": machine.target,
            "switched": switched,
            "not_switched": len(pending),
            "not_in_dump": unseen,
        }
    return line


def _not_in_dump(result: CheckResult, pending: list[int]) -> list[int]:
    """Threads the kernel has not switched that the stack capture did not see
    (born or gone between the two reads): counted, never judged."""
    judged = {t.facts.tid for t in result.tasks}
    return [tid for tid in pending if tid not in judged]


def pending_converges(result: CheckResult, machine: MachineView,
                      unseen: list[int] | None = None) -> bool | None:
    """lpc's prediction for the tasks the kernel has not switched yet (those it
    has are done, whatever their stacks show): False when one is stuck, True
    when every one converges, else None. A task the kernel lists nothing for
    counts as not switched; a thread the kernel has not switched and the dump
    did not show (``unseen``) is unjudged, so no True."""
    outlooks = [t.outcome.outlook for t in result.tasks
                if not machine.kernel_switched(t.facts.tid)]
    if any(o is Outlook.STUCK for o in outlooks):
        return False
    if unseen is None:
        unseen = _not_in_dump(result, machine.kernel_pending()[1])
    return True if not unseen and all(o in CONVERGING for o in outlooks) else None


def transition_end(followed: LoadedPatch, state: LivepatchState) -> str | None:
    """How the followed transition stands now: None while it runs on in the
    same direction, else a sentence starting with ``completed`` or
    ``reversed`` (or saying the patch is gone)."""
    now = next((p for p in state.patches if p.name == followed.name), None)
    if now is None:
        # A disabled patch is freed once its transition ends (core.c
        # klp_free_patch_async); an enabled one stays.
        return ("completed: the patch is gone (unpatched and freed)" if not followed.enabled
                else "reversed: the patch is gone (the reversal completed and freed it)")
    if now.enabled != followed.enabled:
        return ("reversed: enabled went "
                f"{int(bool(followed.enabled))} -> {int(bool(now.enabled))} "
                "(echo to enabled during the transition reverses it)")
    if now.transition is False:
        return ("completed (or forced: sysfs does not tell which; a forced transition "
                "leaves the module pinned)")
    return None  # still in transition, or unreadable: watch on
