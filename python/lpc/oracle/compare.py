"""lpc's klp model against the kernel's own verdicts on a recorded case.

For every check of a case (see :mod:`lpc.oracle.scenarios`) lpc judges the
captured SysRq-t dump with the guest's kallsyms under the ``klp`` model, and
each task's answer is set against the kernel's ``patch_state``:

* ``now`` checks: lpc says *switched* when the task's outlook is
  ``switched``, *blocked* when its stack check fails (blocked, unreliable)
  or it is running with a decided outlook;
* ``eventual`` checks: lpc says *switched* for every converging outlook
  (``switched``, ``at_kernel_exit``, ``after_signal``, ``after_wakeup``) and
  *blocked* for ``stuck``;
* ``unknown`` is no claim.

A task present in only one of the two captures (forked or exited in between)
is not compared. A disagreement is *explained* only by one of the rules in
:data:`RULES`, each a documented, tested fact of the capture; anything else is
reported unexplained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lpc.check import CheckResult, TaskResult, check
from lpc.dump import parse_dump
from lpc.kernel import Kernel
from lpc.models import CONVERGING, Outlook, Verdict
from lpc.oracle.case import (
    CaseError,
    KernelStates,
    RetryReport,
    parse_calls,
    parse_klp_dmesg,
    parse_states,
    read_case,
    snapshot_time,
)
from lpc.patch import Patch
from lpc.symbols import Symbols

__all__ = [
    "RULES",
    "SCHEMA_VERSION",
    "CheckComparison",
    "Comparison",
    "Disagreement",
    "Evidence",
    "compare_case",
    "explain",
    "judge",
    "lpc_claim",
]

SCHEMA_VERSION = 1
SWITCHED, BLOCKED, UNKNOWN = "switched", "blocked", "unknown"


@dataclass(frozen=True)
class Disagreement:
    tid: int
    comm: str
    lpc: str
    kernel: str
    when: str
    explained: bool
    why: str
    rule: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"tid": self.tid, "comm": self.comm, "lpc": self.lpc, "kernel": self.kernel,
                "when": self.when, "explained": self.explained, "why": self.why,
                "rule": self.rule}


@dataclass(frozen=True)
class CheckComparison:
    when: str
    compare: str
    tasks: int
    agree: int
    #: tasks of the dump with no kernel verdict (exited before it was read)
    not_compared: int
    disagreements: tuple[Disagreement, ...]

    def as_json(self) -> dict[str, Any]:
        return {"when": self.when, "compare": self.compare, "tasks": self.tasks,
                "agree": self.agree, "not_compared": self.not_compared,
                "explained": sum(d.explained for d in self.disagreements),
                "unexplained": sum(not d.explained for d in self.disagreements)}


@dataclass(frozen=True)
class Comparison:
    scenario: str
    kernel_release: str
    checks: tuple[CheckComparison, ...]

    @property
    def tasks(self) -> int:
        return sum(c.tasks for c in self.checks)

    @property
    def agree(self) -> int:
        return sum(c.agree for c in self.checks)

    @property
    def disagreements(self) -> list[Disagreement]:
        return [d for c in self.checks for d in c.disagreements]

    @property
    def unexplained(self) -> list[Disagreement]:
        return [d for d in self.disagreements if not d.explained]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "scenario": self.scenario,
            "kernel_release": self.kernel_release,
            "tasks": self.tasks,
            "agree": self.agree,
            "disagreements": [d.as_json() for d in self.disagreements],
            "checks": [c.as_json() for c in self.checks],
        }


# ---- the explanation rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What a rule may look at for one disagreeing task."""

    when: str
    compare: str
    task: TaskResult
    lpc: str
    kernel: str
    #: patch_state read just before the dump (None: not captured / task absent)
    kernel_before_dump: str | None
    #: the pass-through call counts at the capture: function name -> calls
    passthru_calls: Mapping[str, int]
    #: the kernel's last per-task report before the dump, if any
    last_report: RetryReport | None
    #: whether the kernel reported this task blocked at the last retry before the dump
    reported_at_last_retry: bool
    #: a check of a snapshot series: the kernel's verdict on the task at the next
    #: snapshot (None: the last snapshot, not a series, or the task gone by then)
    kernel_next: str | None = None
    #: ... and whether a retry between the two snapshots reported it blocked
    reported_before_next: bool = False


Rule = Callable[[Evidence], "str | None"]


def rule_no_claim(e: Evidence) -> str | None:
    """lpc's outlook is unknown: it makes no claim that could be checked."""
    if e.lpc != UNKNOWN:
        return None
    return f"lpc makes no claim (outlook unknown): {e.task.outcome.reason}"


def rule_passed_kernel_exit(e: Evidence) -> str | None:
    """A user task on a CPU (or runnable) at the dump switches at its next kernel
    exit (exit_to_user_mode_loop -> klp_update_patch_state, no stack check):
    here, before its patch_state was read. lpc's outlook ``at_kernel_exit``
    says exactly that; only the moment differs."""
    if e.compare != "now" or e.lpc != BLOCKED or e.kernel != SWITCHED:
        return None
    if e.task.outcome.outlook is not Outlook.AT_KERNEL_EXIT:
        return None
    return ("a running user task: lpc's outlook at_kernel_exit; it passed kernel exit and "
            "switched before patch_state was read")


def rule_passthru_reentry(e: Evidence) -> str | None:
    """The task was switched at an earlier try, then entered the patched
    function again through the pass-through replacement, which tail-jumps into
    the old body: the dump shows the old function, as if the task had never
    switched (so lpc's claims from that dump, now and eventual, are about a
    state the task had already left). Evidence: the replacement had run, and
    either the kernel did not report the task at the last retry before the
    dump, or patch_state read just before the dump already said switched (a
    task reported at the last failing retry that switched afterwards — at the
    fake signal, at a freezable sleep — and slept in the function again before
    the dump, seen on 7.3 in ``stacked``)."""
    if e.lpc != BLOCKED or e.kernel != SWITCHED:
        return None
    fn = e.task.facts.patched_function
    if e.task.outcome.verdict is not Verdict.BLOCKED or fn is None:
        return None
    calls = e.passthru_calls.get(fn, 0)
    if calls <= 0:
        return None
    if e.kernel_before_dump == SWITCHED:
        evidence = "patch_state said switched just before the dump"
    elif not e.reported_at_last_retry:
        evidence = "the kernel did not report it at the last retry"
    else:
        return None
    return (f"switched earlier, then re-entered {fn} through the pass-through replacement "
            f"({calls} call(s) by the capture), whose jump into the old body leaves {fn} on "
            f"the stack; {evidence}")


def rule_retry_during_dump(e: Evidence) -> str | None:
    """A retry ran while the dump was taken: patch_state changed between the
    reads before and after it, and lpc agrees with the earlier one."""
    if e.compare != "now" or e.kernel_before_dump is None:
        return None
    if e.kernel_before_dump == e.kernel or e.kernel_before_dump != e.lpc:
        return None
    return (f"a retry ran during the dump: patch_state said {e.kernel_before_dump} before it "
            f"and {e.kernel} after it; lpc agrees with the state before")


def rule_retry_pending(e: Evidence) -> str | None:
    """A snapshot of a series fell between two retries: lpc says the task
    switches at the next try, patch_state still holds the last try's "not
    yet". Evidence: at the next snapshot the kernel had switched it, and no
    retry in between reported it blocked."""
    if e.compare != "now" or e.lpc != SWITCHED or e.kernel != BLOCKED:
        return None
    if e.kernel_next != SWITCHED or e.reported_before_next:
        return None
    return ("taken between two retries: lpc's switch is the next retry's, which switched it "
            "(patch_state says so at the next snapshot; no retry reported it in between)")


#: Tried in order; the first that applies explains the disagreement.
RULES: tuple[tuple[str, Rule], ...] = (
    ("no_claim", rule_no_claim),
    ("retry_during_dump", rule_retry_during_dump),
    ("retry_pending", rule_retry_pending),
    ("passed_kernel_exit", rule_passed_kernel_exit),
    ("passthru_reentry", rule_passthru_reentry),
)


def explain(e: Evidence) -> tuple[str, str] | None:
    for name, rule in RULES:
        why = rule(e)
        if why is not None:
            return name, why
    return None


# ---- the comparison -----------------------------------------------------------------------------


def lpc_claim(task: TaskResult, compare: str) -> str:
    """What lpc says of the task: switched, blocked, or unknown (no claim).

    ``now``: the verdict decides (a failed stack check is "blocked" whatever
    comes next); a running task is judged by its outlook. ``eventual``: the
    outlook decides.
    """
    outlook, verdict = task.outcome.outlook, task.outcome.verdict
    if compare == "now":
        if outlook is Outlook.SWITCHED:
            return SWITCHED
        if verdict in (Verdict.BLOCKED, Verdict.UNRELIABLE):
            return BLOCKED
        return UNKNOWN if outlook is Outlook.UNKNOWN else BLOCKED
    if outlook is Outlook.UNKNOWN:
        return UNKNOWN
    if outlook is Outlook.AFTER_WAKEUP and task.outcome.eta_s is None:
        # "once its sleep ends": a claim about an event the scenario, not
        # livepatch, decides (a D sleep released later); no claim on its own.
        return UNKNOWN
    return SWITCHED if outlook in CONVERGING else BLOCKED


def state_file(directory: Path, spec: Mapping[str, Any]) -> Path | None:
    """The guest's ``/sys/kernel/livepatch`` at the check's dump, when recorded:
    ``LABEL_livepatch.txt`` beside a capture, ``livepatch.txt`` in a snapshot."""
    dump = directory / spec["dump_file"]
    for candidate in (dump / "livepatch.txt", directory / f"{spec['dump']}_livepatch.txt"):
        if candidate.is_file():
            return candidate
    return None


def module_path(directory: Path, case: Mapping[str, Any]) -> Path | None:
    """The case's livepatch module file (``module_file``, relative to the
    source tree the case lives in, ``tests/data/oracle/<k>/<case>``)."""
    name = str(case.get("module_file") or "")
    if not name:
        return None
    for root in (directory, *directory.parents):
        if (root / name).is_file():
            return root / name
    raise CaseError(f"{directory / 'case.json'}: module_file {name} not found")


def derived(directory: Path, spec: Mapping[str, Any], case: Mapping[str, Any]
            ) -> tuple[Patch, list[Patch]] | None:
    """The check's patch and loaded patches as lpc derives them from what the
    guest recorded, not from the spec written by hand: the sysfs state at the
    dump gives the loaded patches (each replacement: every function of its
    module, ``lpc.livepatch_state.loaded_patches``), the module file gives the
    patch when it is the one in transition. None without a recorded state."""
    from lpc.check import machine_view
    from lpc.livepatch_state import parse_livepatch_state
    from lpc.patch_module import read_module

    where = state_file(directory, spec)
    if where is None:
        return None
    state = parse_livepatch_state(where.read_text(), str(where))
    patch = Patch.parse(spec["patch"], unpatch=bool(spec.get("unpatch")),
                        replace=bool(spec.get("replace")))
    # The scenario knows which module it loaded with these functions (its
    # pass-through map): that names the patch, as --name does on the command line.
    keys = {f.key for f in patch.functions}
    for module_name, funcs in spec.get("passthru", {}).items():
        if {f.key for f in Patch.parse(",".join(funcs)).functions} == keys:
            patch = replace(patch, name=module_name)
    ko = module_path(directory, case)
    if ko is not None:
        module = read_module(str(ko))
        busy = state.in_transition
        if busy is not None and busy.name == module.module:
            patch = module.patch(unpatch=bool(spec.get("unpatch")))
        elif busy is None and not any(p.name == module.module for p in state.patches):
            patch = module.patch()  # not loaded yet: the check predicts its load
    # machine_view leaves the checked patch (by name) out of the loaded ones:
    # once its transition is over, it is one of the enabled patches.
    return patch, list(machine_view(state, patch, (), None).loaded)


def judge(directory: Path, spec: Mapping[str, Any], release: str,
          case: Mapping[str, Any] | None = None) -> CheckResult:
    """lpc's klp model on the check's dump, under the profile of the guest's
    kernel release (nothing else is set: the model must know that kernel).
    With the case's recorded sysfs state (and module file), the patch and the
    loaded patches are derived from them (:func:`derived`); else the spec's."""
    dump = parse_dump(directory / spec["dump_file"])
    symbols = Symbols.from_kallsyms(directory / spec["kallsyms_file"])
    found = derived(directory, spec, case) if case is not None else None
    if found is not None:
        patch, loaded = found
    else:
        patch = Patch.parse(spec["patch"], unpatch=bool(spec.get("unpatch")),
                            replace=bool(spec.get("replace")))
        loaded = [Patch.parse(p) for p in spec.get("loaded", ())]
    params: dict[str, Any] = {}
    if spec.get("force"):
        params["force"] = True
    return check(dump, patch, "klp", symbols, kernel=Kernel(release, "the oracle guest"),
                 loaded=loaded, **params)


def _passthru_calls(directory: Path, spec: Mapping[str, Any]) -> dict[str, int]:
    """Calls of each pass-through replacement at the capture, by function name."""
    name = spec.get("calls_file")
    if not name or not (directory / name).exists():
        return {}
    calls = parse_calls(directory / name)
    out: dict[str, int] = {}
    for module, funcs in spec.get("passthru", {}).items():
        counts = calls.get(module, ())
        for slot, fn in enumerate(funcs):
            if slot < len(counts):
                out[fn.split(":")[-1].split("@")[0]] = counts[slot]
    return out


def _last_retry(reports: Sequence[RetryReport], before: float | None) -> list[RetryReport]:
    """The reports of the last try before ``before``: one try logs its tasks within
    a few milliseconds, tries are about a second apart."""
    earlier = [r for r in reports if before is None or r.time < before]
    if not earlier:
        return []
    end = earlier[-1].time
    return [r for r in earlier if end - r.time < 0.5]


def compare_check(
    directory: Path, spec: Mapping[str, Any], release: str, reports: Sequence[RetryReport],
    case: Mapping[str, Any] | None = None,
) -> CheckComparison:
    result = judge(directory, spec, release, case)
    target = 0 if spec.get("unpatch") else 1
    kernel = parse_states(directory / spec["states_file"])
    before: KernelStates | None = None
    pre = spec.get("states_pre_file")
    if pre and (directory / pre).exists():
        before = parse_states(directory / pre)
    when, compare = spec["when"], spec["compare"]
    calls = _passthru_calls(directory, spec)
    at = snapshot_time(directory / spec["dump_file"])
    last = _last_retry(reports, at)
    reported = {r.tid for r in last}
    following: KernelStates | None = None
    reported_before_next: set[int] = set()
    nxt = spec.get("states_next_file")
    if nxt and (directory / nxt).exists():
        following = parse_states(directory / nxt)
        reported_before_next = {r.tid for r in reports
                                if (at is None or r.time >= at) and r.time < following.uptime}
    agree = not_compared = 0
    disagreements = []
    for task in result.tasks:
        tid = task.facts.tid
        switched = None if tid is None else kernel.switched(tid, target)
        if switched is None:
            not_compared += 1
            continue
        assert tid is not None
        k = SWITCHED if switched else BLOCKED
        mine = lpc_claim(task, compare)
        if mine == k:
            agree += 1
            continue
        k_before = None
        if before is not None and compare == "now":
            b = before.switched(tid, target)
            k_before = None if b is None else SWITCHED if b else BLOCKED
        k_next = None
        if following is not None:
            n = following.switched(tid, target)
            k_next = None if n is None else SWITCHED if n else BLOCKED
        evidence = Evidence(
            when, compare, task, mine, k, k_before, calls,
            next((r for r in reversed(last) if r.tid == tid), None), tid in reported,
            k_next, tid in reported_before_next,
        )
        found = explain(evidence)
        disagreements.append(Disagreement(
            tid, task.facts.comm, mine, k, when, found is not None,
            found[1] if found else f"unexplained: lpc: {task.outcome.outlook.value} "
            f"({task.outcome.reason}); kernel patch_state {kernel.tasks[tid][0]}",
            found[0] if found else None,
        ))
    compared = len(result.tasks) - not_compared
    return CheckComparison(when, compare, compared, agree, not_compared, tuple(disagreements))


def compare_case(directory: str | Path) -> Comparison:
    """Every check of the case directory, lpc against the kernel."""
    path = Path(directory)
    case = read_case(path)
    release = str(case["kernel_release"])
    dmesg = path / case.get("klp_dmesg_file", "klp_dmesg.txt")
    reports = parse_klp_dmesg(dmesg) if dmesg.exists() else []
    checks = []
    for spec in case["checks"]:
        for key in ("when", "compare", "dump_file", "kallsyms_file", "states_file", "patch"):
            if key not in spec:
                raise CaseError(f"{path / 'case.json'}: a check lacks {key!r}")
        checks.append(compare_check(path, spec, release, reports, case))
    return Comparison(str(case["scenario"]), release, tuple(checks))

