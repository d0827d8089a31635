"""What a check answers: per-task results, the transition, and their JSON.

A :class:`CheckResult` is one model's answer on one snapshot; a
:class:`~lpc.check.Report` holds one per model asked, and the renderers of
:mod:`lpc.report` read nothing else. Per-task results are built on demand
from the shared facts and the outcomes of each group of identical tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from lpc.facts import TaskTable
from lpc.models import (
    Outlook,
    TalliedOutcomes,
    TaskFacts,
    TaskKind,
    TaskOutcome,
    TransitionOutcome,
    Verdict,
    tally,
)
from lpc.patch import Patch

__all__ = [
    "SCHEMA_VERSION",
    "CheckResult",
    "GroupOutcomes",
    "TaskResult",
    "TaskResults",
]

#: The version of the check documents' layout (``--json``, ``--jsonl``, the
#: inventory). 2: 64-bit addresses became hex strings ("0xffffffff81100000"),
#: and the machine's state (``machine``) and a module's origin (``patch_module``)
#: joined; a reader of version 1 would misread the addresses.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class TaskResult:
    facts: TaskFacts
    outcome: TaskOutcome

    def as_json(self) -> dict[str, Any]:
        f, o = self.facts, self.outcome
        frame = (
            None if f.patched_frame is None
            else {"index": f.patched_frame, "function": f.patched_function}
        )
        return {
            "pid": f.pid,
            "tid": f.tid,
            "comm": f.comm,
            "state": f.state,
            "kthread": None if f.kind is TaskKind.UNKNOWN else f.kind is TaskKind.KTHREAD,
            "kind": f.kind.value,
            "kind_evidence": f.kind_evidence,
            "on_cpu": f.on_cpu,
            "stack": f.stack.value,
            "verdict": o.verdict.value,
            "errno": o.errno,
            "frame": frame,
            "outlook": o.outlook.value,
            "reason": o.reason,
            "eta_s": o.eta_s,
            "evidence_lost": f.evidence_lost,
            "evidence_line": f.evidence_line,
            **({"extra": o.extra} if o.extra else {}),
        }


class GroupOutcomes(TalliedOutcomes):
    """Each task's outcome, stored once per group of tasks with identical facts
    (see :attr:`TaskTable.groups`)."""

    def __init__(self, judged: Sequence[TaskOutcome], groups: npt.NDArray[np.int64]) -> None:
        #: One outcome per group, and the group of each task.
        self.judged, self.groups = list(judged), groups

    def __len__(self) -> int:
        return len(self.groups)

    @overload
    def __getitem__(self, index: int) -> TaskOutcome: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskOutcome]: ...

    def __getitem__(self, index: int | slice) -> TaskOutcome | list[TaskOutcome]:
        if isinstance(index, slice):
            return [self.judged[g] for g in self.groups[index].tolist()]
        return self.judged[int(self.groups[index])]

    def tally(self) -> list[tuple[TaskOutcome, int]]:
        # Groups are numbered in order of first appearance, so this order is too.
        counts = np.bincount(self.groups, minlength=len(self.judged)).tolist()
        return [(o, n) for o, n in zip(self.judged, counts) if n]

    @cached_property
    def members(self) -> list[npt.NDArray[np.int64]]:
        """The tasks of each group, ascending."""
        order = np.argsort(self.groups, kind="stable")
        bounds = np.cumsum(np.bincount(self.groups, minlength=len(self.judged)))[:-1]
        return np.split(order, bounds)


class TaskResults(Sequence[TaskResult]):
    """Per-task results of one check (all tasks, or a chosen few in a chosen
    order), built on demand from the facts and the shared outcomes."""

    def __init__(
        self,
        facts: Sequence[TaskFacts],
        outcomes: Sequence[TaskOutcome],
        indices: Sequence[int] | None = None,
    ) -> None:
        self.facts, self.outcomes = facts, outcomes
        self._indices = range(len(outcomes)) if indices is None else indices

    def distinct(self) -> list[tuple[TaskOutcome, npt.NDArray[np.int64]]]:
        """Each distinct outcome with the tasks that share it (all tasks)."""
        if isinstance(self.outcomes, GroupOutcomes):
            members = self.outcomes.members
            return [(o, ts) for o, ts in zip(self.outcomes.judged, members) if len(ts)]
        return [(o, np.array([t])) for t, o in enumerate(self.outcomes)]

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> TaskResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[TaskResult]: ...

    def __getitem__(self, index: int | slice) -> TaskResult | list[TaskResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        t = self._indices[index]
        return TaskResult(self.facts[t], self.outcomes[t])

    def subset(self, indices: Sequence[int]) -> TaskResults:
        """The results of these tasks (by task index), in this order."""
        return TaskResults(self.facts, self.outcomes, indices)

    def as_json(self) -> list[dict[str, Any]]:
        """Every result's :meth:`TaskResult.as_json`, in order.

        With grouped outcomes, everything but identity (pid, tid, comm) is the
        same within a group — state, CPU, kind, stack, patched frame and the
        outcome are all in :attr:`TaskTable.groups`' key — so each group's
        document is made once and copied per task.
        """
        if not (isinstance(self.facts, TaskTable) and isinstance(self.outcomes, GroupOutcomes)):
            return [t.as_json() for t in self]
        table, groups = self.facts, self.outcomes.groups
        d = table.dump
        tasks = np.asarray(self._indices, dtype=np.int64)
        templates: dict[int, dict[str, Any]] = {}
        for g, t in zip(groups[tasks].tolist(), tasks.tolist()):
            if g not in templates:
                templates[g] = TaskResult(table[t], self.outcomes[t]).as_json()
        pids, tids = d.pids[tasks].tolist(), d.tids[tasks].tolist()
        comms = [d.comm_names[c] for c in d.comm_ids[tasks].tolist()]
        out = []
        for g, pid, tid, comm in zip(groups[tasks].tolist(), pids, tids, comms):
            doc = templates[g].copy()
            doc["pid"] = None if pid < 0 else pid
            doc["tid"] = None if tid < 0 else tid
            doc["comm"] = comm
            for nested in ("frame", "extra"):  # no dict shared between two tasks' documents
                if isinstance(doc.get(nested), dict):
                    doc[nested] = dict(doc[nested])
            out.append(doc)
        return out


_OUTLOOK_ORDER = {o: i for i, o in enumerate([
    Outlook.STUCK, Outlook.UNKNOWN, Outlook.AFTER_WAKEUP, Outlook.AFTER_SIGNAL,
    Outlook.AT_KERNEL_EXIT, Outlook.SWITCHED,
])}


@dataclass(frozen=True)
class CheckResult:
    """One model's answer on one snapshot."""

    model: str
    cell: tuple[str, str]
    patch: Patch
    source: Mapping[str, Any]
    tasks: TaskResults
    transition: TransitionOutcome
    warnings: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    #: What the verdict rests on and what was lost on the way (see
    #: :meth:`lpc.facts.TaskTable.evidence`).
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: The kernel the model follows and what that gives it: ``kernel_release``,
    #: ``arch`` (and where each came from), ``profile``, ``switch_points``,
    #: ``assumed`` (what the input did not say).
    model_profile: Mapping[str, Any] = field(default_factory=dict)

    @property
    def converges(self) -> bool | None:
        return self.transition.converges

    def count(self, verdict: Verdict) -> int:
        return sum(n for o, n in tally(self.tasks.outcomes) if o.verdict is verdict)

    @cached_property
    def blocking(self) -> TaskResults:
        """Tasks that did not switch now, worst outlook first (built on demand)."""
        keep = [(o, ts) for o, ts in self.tasks.distinct()
                if o.verdict is not Verdict.SWITCH or o.outlook is not Outlook.SWITCHED]
        if not keep:
            return self.tasks.subset([])
        tasks = np.concatenate([ts for _, ts in keep])
        rank = np.concatenate([np.full(len(ts), _OUTLOOK_ORDER[o.outlook]) for o, ts in keep])
        order = np.lexsort((tasks, rank))
        return self.tasks.subset(tasks[order].tolist())

    def summary(self) -> dict[str, Any]:
        verdicts: Counter[Verdict] = Counter()
        outlooks: Counter[str] = Counter()
        for o, n in tally(self.tasks.outcomes):
            verdicts[o.verdict] += n
            outlooks[o.outlook.value] += n
        return {
            "tasks": len(self.tasks),
            "switch": verdicts[Verdict.SWITCH],
            "blocked": verdicts[Verdict.BLOCKED],
            "running": verdicts[Verdict.RUNNING],
            "unreliable": verdicts[Verdict.UNRELIABLE],
            "converges": self.converges,
            "reason": self.transition.reason,
            "eta_s": self.transition.eta_s,
            "outlooks": dict(outlooks),
            "evidence": dict(self.evidence),
        }

    def as_json(self, with_source: bool = True, with_tasks: bool = True) -> dict[str, Any]:
        """The ``--json`` document. ``with_tasks=False`` leaves ``tasks`` out, for
        writers that stream the per-task list (``self.tasks.as_json()``) themselves."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if with_source:
            out["source"] = dict(self.source)
        out.update(
            model=self.model,
            cell={"leave": self.cell[0], "switch": self.cell[1]},
            params=dict(self.params),
            model_profile=dict(self.model_profile),
            patch=self.patch.as_json(),
            summary=self.summary(),
            warnings=list(self.warnings),
        )
        if with_tasks:
            out["tasks"] = self.tasks.as_json()
        return out

