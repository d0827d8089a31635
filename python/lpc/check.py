"""`lpc check`: will this patch converge on this machine, and who blocks it?

The pipeline, each step a function:

1. :func:`scan` — which frame of which task lies inside the patched set. With
   a symbol table the patch resolves to address ranges and every frame to an
   address (printed, or ``symbol + offset`` resolved in the table); the Rust
   scanner then answers the kernel's ``klp_check_stack()`` question for all
   tasks at once. Without one, frames match the patch by name — weaker, and
   said so in the warnings.
2. :func:`lpc.facts.task_facts` — what a model may know of each task.
3. a model from :mod:`lpc.models` judges one task per group of tasks with
   identical facts — the stacks as its own walker reports them
   (``Model.stack_source``, :meth:`lpc.facts.TaskTable.seen_by`) — and the
   transition.

:func:`run` does all of it for one :class:`CheckRequest` (where the tasks come
from, the patch, the models, their parameters) and returns one
:class:`Report`; the CLI's text and JSON are renderers of that report
(:mod:`lpc.report`). Everything is read-only: lpc never writes to /proc or /sys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from lpc import _core
from lpc._grouping import group, name_flags
from lpc.dump import UNKNOWN_U64, Dump
from lpc.facts import (
    PatchedFrames,
    Scan,
    TaskTable,
    frame_function_names,
    infer_kind,
    sleeping_functions,
    task_inventory,
    task_facts,
    token_function_names,
    token_losses,
    token_name_ids,
)
from lpc.kernel import Kernel, arch_of_frames, arch_of_release, in_sched_text_by_name
from lpc.livepatch_state import LivepatchState, LoadedPatch, PatchStates, loaded_patches
from lpc.locate import unseen_functions
from lpc.models import MODELS, Model, configure, get_model
from lpc.patch import Patch
from lpc.result import SCHEMA_VERSION, CheckResult, GroupOutcomes, TaskResult, TaskResults
from lpc.symbols import Symbols

__all__ = [
    "SCHEMA_VERSION",
    "CheckRequest",
    "CheckResult",
    "MachineView",
    "Report",
    "Scan",
    "TaskResult",
    "TaskResults",
    "TaskTable",
    "check",
    "check_all",
    "first_patched_frame",
    "machine_view",
    "frame_function_names",
    "infer_kind",
    "run",
    "run_loaded",
    "scan",
    "sleeping_functions",
    "token_function_names",
    "token_name_ids",
]


def _token_addresses(
    dump: Dump, symbols: Symbols
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Each frame token's return address: printed, or the symbol's address + offset.

    A dump holds few distinct tokens (``worker_thread+0x98/0x310`` repeats on
    every kworker), so each is resolved once, and each distinct (function,
    object, size) once among them. Returns the addresses, which tokens have
    one, and which named tokens could not be pinned to one function.
    """
    addresses = dump.token_addresses.astype(np.uint64, copy=True)
    known = dump.token_has_address.astype(bool, copy=True)
    unresolved = np.zeros(dump.token_count, dtype=bool)
    named = ~known & (dump.token_function_ids != Dump.NO_NAME)
    named &= dump.token_symbol_offsets != np.uint64(UNKNOWN_U64)
    rows = np.flatnonzero(named)
    if not rows.size:
        return addresses, known, unresolved
    fids, mids = dump.token_function_ids[rows], dump.token_module_ids[rows]
    sizes = dump.token_symbol_sizes[rows]
    keys, reps = group(fids, mids, sizes)
    starts = np.zeros(len(reps), dtype=np.uint64)
    ok = np.zeros(len(reps), dtype=bool)
    for k, (fid, mid, size) in enumerate(zip(fids[reps].tolist(), mids[reps].tolist(),
                                             sizes[reps].tolist())):
        module = None if mid == Dump.NO_NAME else dump.names[mid]
        start = symbols.resolve(dump.names[fid], 0, None if size == UNKNOWN_U64 else size, module)
        if start is not None:
            starts[k], ok[k] = start, True
    good = ok[keys]
    addresses[rows[good]] = starts[keys[good]] + dump.token_symbol_offsets[rows[good]]
    known[rows[good]] = True
    unresolved[rows[~good]] = True
    return addresses, known, unresolved


def _token_patch_ids_by_name(dump: Dump, patch: Patch) -> npt.NDArray[np.int64]:
    """Patch-function index of each frame token matched by (name, object), or -1."""
    index = {name: i for i, name in enumerate(dump.names)}
    fids = dump.token_function_ids.astype(np.int64)
    mids = dump.token_module_ids.astype(np.int64)
    ids = np.full(dump.token_count, -1, dtype=np.int64)
    for k, f in enumerate(patch.functions):
        # Object check: a vmlinux function must not match a same-named module frame.
        mid = Dump.NO_NAME if f.object is None else index.get(f.object, -2)
        if f.module_text:  # any frame of the module
            ids[(mids == mid) & (fids != Dump.NO_NAME) & (ids < 0)] = k
            continue
        fid = index.get(f.name)
        if fid is None:
            continue
        ids[(fids == fid) & (mids == mid) & (ids < 0)] = k
    return ids


def _first_per_task(
    token_function: npt.NDArray[np.int64], dump: Dump, eligible: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per task, its first eligible frame whose token lies in the patch, and
    that patch function: the Rust CSR scanner over token indices (token ``k``
    is given the one-address range ``[k, k + 1)``, labelled with its function)."""
    hit = np.flatnonzero(token_function >= 0)
    tree = _core.IntervalTree.from_arrays(hit, hit + 1, token_function[hit])
    token_ips = np.arange(dump.token_count, dtype=np.uint64)
    return tree.first_hit_per_token_stack(
        token_ips, dump.frame_tokens, dump.frame_offsets, mask=eligible
    )


def scan(dump: Dump, patch: Patch, symbols: Symbols | None = None) -> Scan:
    """Where the patch meets each task's stack (see :class:`Scan`).

    Work is per frame *token* (a distinct printed frame): each token is
    resolved and looked up once, by address in the patch's interval tree when
    there is a symbol table, else by name. The first eligible hit per task then
    comes from the Rust CSR scanner (``IntervalTree.first_hit_per_token_stack``:
    every stack at once, GIL released, parallel for large dumps); ``?`` and
    inlined frames are masked out, as the kernel's reliable unwinder never
    reports them.
    """
    warnings: list[str] = []
    eligible = dump.frame_reliable & ~dump.frame_inlined
    tokens = dump.frame_tokens
    if symbols is not None and patch.resolved:
        addresses, known, unresolved = _token_addresses(dump, symbols)
        lost = token_losses(dump, patch, symbols, unresolved)
        tree = _core.IntervalTree(
            (f.start, f.end, k)
            for k, f in enumerate(patch.functions)
            if f.start is not None and f.end is not None
        )
        token_function = np.where(known, tree.find_many(addresses), -1)
        by_address = True
        nosched = _token_nosched(dump, symbols, addresses, known)
    else:
        token_function = _token_patch_ids_by_name(dump, patch)
        lost = token_losses(dump, patch)
        by_address = False
        nosched = _token_nosched(dump)
        warnings.append(
            "no symbol table: frames matched the patch by name, so duplicate static functions "
            "(sympos) are not told apart"
        )
    first, function = _first_per_task(token_function, dump, eligible)
    token_hit = token_function >= 0
    rows = np.flatnonzero(token_hit[tokens]) if token_hit.any() else np.zeros(0, dtype=np.int64)
    offsets = dump.frame_offsets.view(np.int64)  # < 2**63: the same numbers
    return Scan(first, function, PatchedFrames(offsets, rows), by_address, tuple(warnings),
                token_function, eligible, lost, nosched)


def _token_nosched(
    dump: Dump,
    symbols: Symbols | None = None,
    addresses: npt.NDArray[np.uint64] | None = None,
    known: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.bool_]:
    """Per frame token: does it lie in .sched.text or the lock text
    (kernel/sched/core.c in_sched_functions())? By address when the symbol
    table has the section markers, else by name (lpc.kernel.SCHED_TEXT_FUNCTIONS)."""
    by_name = name_flags(dump.names, in_sched_text_by_name).astype(bool)
    fids = dump.token_function_ids.astype(np.int64)
    named = fids != Dump.NO_NAME
    out = np.zeros(dump.token_count, dtype=bool)
    out[named] = by_name[fids[named]]
    if symbols is None or addresses is None or known is None or (
            symbols.sched_text_range is None and symbols.lock_text_range is None):
        return out
    return np.where(known, symbols.in_hidden_text(addresses), out)


def first_patched_frame(
    dump: Dump, patch: Patch, symbols: Symbols | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per task: the position of its first reliable frame inside the patched set
    and the index (into ``patch.functions``) of that function, -1 for none."""
    if symbols is not None and not patch.resolved:
        patch = patch.resolve(symbols)
    found = scan(dump, patch, symbols)
    return found.first, found.function

def _source(dump: Dump, symbols: Symbols | None, by_address: bool) -> dict[str, Any]:
    return {
        "format": dump.source_format,
        "path": dump.path,
        "kernel_release": dump.kernel_release,
        "tasks": dump.task_count,
        "frames": dump.frame_count,
        "skipped_lines": dump.skipped_lines,
        "skipped_samples": [{"line": n, "text": t} for n, t in dump.skipped_samples],
        "symbols": None if symbols is None else symbols.source,
        "matched_by": "address" if by_address else "name",
    }


def _as_patch(patch: Patch | str | Sequence[str]) -> Patch:
    if isinstance(patch, Patch):
        return patch
    return Patch.parse(patch if isinstance(patch, str) else ",".join(patch))


Prepared = tuple[Patch, Scan, TaskTable, list[str]]


def _prepare(
    dump: Dump, patch: Patch | str | Sequence[str], symbols: Symbols | None,
    loaded: Sequence[Patch] = (), model: Model | None = None,
    done: dict[Patch, Prepared] | None = None,
) -> Prepared:
    """The patch as ``model`` checks it over the ``loaded`` patches (the ranges
    it compares stacks with: :meth:`~lpc.models.Model.checked_functions`), its
    scan and the task facts; models that check the same ranges share one scan
    (``done``)."""
    requested = _as_patch(patch)
    checked = (model.checked_functions(requested, loaded) if model is not None
               else requested.checked_against(loaded))
    key = checked
    if done is not None and key in done:
        return done[key]
    if symbols is not None and not checked.resolved:
        checked = checked.resolve(symbols)
    found = scan(dump, checked, symbols)
    facts, warnings = task_facts(dump, checked, symbols, found)
    if not found.by_address:  # a name matched against nothing proves nothing
        # A set of the few token hits: np.unique would import numpy.ma (~40 ms).
        warnings += unseen_functions(dump, checked, sorted(set(found.token_function[
            found.token_function >= 0].tolist())))
    if requested.replace and not loaded:
        warnings.append("an atomic replace with no loaded patch named (--loaded): the nops "
                        "it adds for older patches' functions are not checked")
    out = (checked, found, facts, warnings)
    if done is not None:
        done[key] = out
    return out


def dump_kernel(dump: Dump, release: str | None = None, arch: str | None = None) -> Kernel:
    """The kernel a dump comes from: ``release`` (``--kernel-release``) when
    given, else the release the dump names (its header, meta.txt, log banner;
    ``uname -r`` for this machine)."""
    arch_from = "--arch" if arch else None
    if arch is None and dump.metadata.get("machine"):
        # A snapshot's meta.txt (and a live capture) records uname -m.
        arch, arch_from = dump.metadata["machine"], "the snapshot's uname -m"
    if arch is None and arch_of_release(release or dump.kernel_release or "") is None:
        # Else the frames: their syntax (ARM, powerpc, s390 print their own),
        # or the architecture's own entry functions on the stacks.
        if dump.arch is not None:
            arch, arch_from = dump.arch, "the frames' syntax"
        else:
            arch = arch_of_frames(dump.names)
            arch_from = "the dump's entry frames" if arch else None
    if release:
        return Kernel(release, "--kernel-release", arch, arch_from)
    # A capture (live, or a snapshot's meta.txt) read /proc/sys/kernel/osrelease.
    named = ("the capture's osrelease" if dump.metadata.get("kernel_release")
             else "named by the dump")
    return Kernel(dump.kernel_release, named, arch, arch_from)


def check(
    dump: Dump,
    patch: Patch | str | Sequence[str],
    model: str | Model = "klp",
    symbols: Symbols | None = None,
    kernel: Kernel | None = None,
    loaded: Sequence[Patch] = (),
    **params: Any,
) -> CheckResult:
    """Judge every task of the dump under one model (see the module docstring).

    ``patch`` is a :class:`~lpc.patch.Patch` or its command-line spelling
    (``"worker_thread,ext4:ext4_file_write_iter@2"``); ``params`` go to the
    model by name (e.g. ``force=True``, ``cond_resched_switch=False`` for klp;
    one the model does not take is a ValueError). A model named by string
    follows the profile of ``kernel`` (default: the dump's, :func:`dump_kernel`);
    ``params`` win over it. The model takes what it needs from the patch itself
    (:meth:`~lpc.models.Model.with_patch`). ``loaded`` are the patches already
    enabled, oldest first (:meth:`~lpc.patch.Patch.checked_against`).
    """
    kernel = kernel or dump_kernel(dump)
    if isinstance(model, str):
        model = get_model(model, kernel, **params)
    elif params:
        raise ValueError("parameters go with a model name, not a model object")
    patch, found, facts, warnings = _prepare(dump, patch, symbols, loaded, model)
    return _judge(dump, symbols, found, facts, warnings, model.with_patch(patch), kernel)


def check_all(
    dump: Dump, patch: Patch | str | Sequence[str], symbols: Symbols | None = None,
    kernel: Kernel | None = None, loaded: Sequence[Patch] = (), **params: Any,
) -> dict[str, CheckResult]:
    """Every named model side by side on the same snapshot (one scan). Every
    model gets the same ``params`` and reads those it takes; one no model
    takes is a ValueError."""
    validate(CheckRequest(models=("all",), params=params))
    kernel = kernel or dump_kernel(dump)
    models = {name: configure(name, params, kernel) for name in MODELS}
    done: dict[Patch, Prepared] = {}
    out = {}
    for name, model in models.items():
        checked, found, facts, warnings = _prepare(dump, patch, symbols, loaded, model, done)
        out[name] = _judge(dump, symbols, found, facts, warnings, model.with_patch(checked),
                           kernel)
    return out


def model_profile(model: Model, kernel: Kernel) -> dict[str, Any]:
    """What the model follows of the kernel: reported beside every verdict."""
    return {
        "kernel_release": kernel.release,
        "release_from": kernel.source,
        "arch": kernel.arch,
        "arch_from": kernel.arch_source,
        "profile": model.profile_name,
        "switch_points": [p.value for p in model.switch_points],
        "assumed": type(model).kernel_notes(kernel),
    }


def _judge(
    dump: Dump,
    symbols: Symbols | None,
    found: Scan,
    facts: TaskTable,
    warnings: list[str],
    model: Model,
    kernel: Kernel,
) -> CheckResult:
    # The stacks as the model's own walker reports them (Model.stack_source: a
    # best-effort save_stack_trace_tsk() drops .sched.text frames), as the
    # simulator shows them to it.
    facts = facts.seen_by(model.stack_source)
    # One judgement per group of identical facts (TaskTable.groups): a model is
    # a pure function of TaskFacts, so the answer holds for the whole group.
    # Computed once, shared by every model of check_all (per comm prefixes read).
    groups, reps = facts.groups_for(model.comm_prefixes)
    outcomes = GroupOutcomes([model.judge(facts[t]) for t in reps.tolist()], groups)
    transition = model.judge_dump(facts, outcomes, facts.tasks_lost())
    extra = list(warnings) + list(dump.warnings)
    if facts.unseen_patched:
        extra.append(
            f"{facts.unseen_patched} task(s) hold a patched function in .sched.text or the lock "
            f"text, which the {model.stack_source.value} stack walker of {model.name} skips "
            "(kernel/stacktrace.c stack_trace_consume_entry_nosched): its check does not see them"
            + ("" if found.by_address else
               "; without a symbol table that text is known by name only"))
    evidence = facts.evidence()
    if evidence["untrusted_stacks"]:
        extra.append(f"{evidence['untrusted_stacks']} task(s) have an empty, unreadable, "
                     "unreliable or incomplete stack: unknown")
    patch = facts.patch
    return CheckResult(
        model.name, model.cell, patch, _source(dump, symbols, found.by_address),
        TaskResults(facts, outcomes), transition, tuple(dict.fromkeys(extra)),
        model.params(), evidence, model_profile(model, kernel),
    )


# ---- one request, one report --------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRequest:
    """Everything one ``lpc check`` needs: where the tasks come from, the symbol
    table, the patch, the models and their parameters."""

    #: A dump file or snapshot directory; None: this machine (live /proc).
    dump: str | None = None
    #: Read this machine's /proc (the default without ``dump``).
    live: bool = False
    #: The embedded recorded snapshot of a 6.18 machine instead of this machine.
    demo: bool = False
    #: Go on with a symbol table of another kernel release than the dump's.
    symbols_mismatch_ok: bool = False
    #: A kallsyms or System.map for the dump (a snapshot carries its own).
    symbols: str | None = None
    #: None: no patch, so the report lists the functions sleeping tasks hold.
    patch: Patch | None = None
    #: Model names (registry names or matrix cells); ``("all",)``: every named model.
    models: tuple[str, ...] = ("klp",)
    #: Model parameters by name; each model reads those it takes.
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The kernel release whose rules the models follow, instead of the dump's.
    kernel_release: str | None = None
    #: The kernel's architecture, when the release does not name it.
    arch: str | None = None
    #: The patches already enabled on the machine, oldest first. Given, they
    #: win over the machine's ``/sys/kernel/livepatch`` state.
    loaded: tuple[Patch, ...] = ()
    #: The machine's livepatch state and per-task ``patch_state``; None: read
    #: them from the source (live sysfs, or a snapshot's ``livepatch.txt``).
    livepatch: LivepatchState | None = None
    patch_states: PatchStates | None = None
    #: False: ignore the machine's livepatch state altogether.
    machine_state: bool = True

    @property
    def all_models(self) -> bool:
        return self.models == ("all",)


@dataclass(frozen=True)
class Report:
    """One check's whole answer: what it read, and each model's result. The
    text and JSON outputs (:mod:`lpc.report`) read only this."""

    request: CheckRequest
    #: Where the tasks and the symbols came from, in one sentence.
    description: str
    dump: Dump
    symbols: Symbols | None
    #: Model name → its result, in the order asked (empty without a patch).
    results: dict[str, CheckResult]
    #: Without a patch: functions on sleeping stacks, and how many tasks each holds.
    sleeping: list[tuple[str, int]] | None = None
    #: Without a patch: every task read, with its stack's status (facts.task_inventory).
    inventory: list[dict[str, Any]] | None = None
    #: The machine's livepatch state, what the kernel would refuse, and the
    #: transition in progress when it is the checked patch's.
    machine: MachineView | None = None

    @property
    def converges(self) -> bool | None:
        """True when every model's transition converges; False when one does not."""
        if self.machine is not None and self.machine.refusals:
            return False  # the kernel would not even start the transition
        answers = [r.converges for r in self.results.values()]
        if any(a is False for a in answers):
            return False
        if self.machine is not None and self.machine.unknowns:
            return None  # the machine's state leaves something the verdict needs open
        return True if all(a is True for a in answers) else None

    def converges_under(self, model: str) -> bool | None:
        """One model's verdict with the machine's state: False when the kernel
        would refuse the patch or the model does not converge, None when the
        model cannot tell or the state leaves what the verdict needs open."""
        if self.machine is not None and self.machine.refusals:
            return False
        answer = self.results[model].converges
        if answer is False:
            return False
        if self.machine is not None and self.machine.unknowns:
            return None
        return answer


@dataclass(frozen=True)
class MachineView:
    """What the machine's livepatch state adds to a check (:func:`machine_view`)."""

    state: LivepatchState
    #: ``(code, sentence)``: what ``klp_enable_patch()`` would refuse, said first.
    refusals: tuple[tuple[str, str], ...]
    #: Facts about the machine that refuse nothing (e.g. no reliable stacks), said with the details.
    notes: tuple[str, ...]
    #: Where the loaded patches came from (``sysfs``, the command line, none).
    loaded_from: str
    loaded: tuple[Patch, ...]
    #: The checked patch's own transition, in progress: the patch, and the
    #: state each task reaches (1 patching, 0 unpatching).
    transition: LoadedPatch | None = None
    target: int | None = None
    patch_states: PatchStates | None = None
    #: What the state does not tell that the verdict needs: no CONVERGES then.
    unknowns: tuple[str, ...] = ()

    def kernel_switched(self, tid: int | None) -> bool | None:
        """Has the kernel switched this task (its ``patch_state`` is the target)?"""
        if self.patch_states is None or self.target is None or tid is None:
            return None
        state = self.patch_states.get(tid)
        return None if state is None else state == self.target

    def kernel_pending(self) -> tuple[int, list[int]]:
        """The kernel's count of switched threads, and the tids it has not
        switched (sorted), from ``patch_states``."""
        states = self.patch_states or PatchStates()
        pending = sorted(t for t, v in states.items() if v != self.target)
        return len(states) - len(pending), pending

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "livepatch_present": self.state.present,
            "livepatch_source": self.state.source,
            "patches": [{"name": p.name, "enabled": p.enabled, "transition": p.transition,
                         "replace": p.replace, "stack_order": p.stack_order,
                         "functions": [f"{o or 'vmlinux'}:{n},{pos}"
                                       for o, n, pos in p.functions]}
                        for p in self.state.patches],
            "refusals": [{"code": c, "reason": r} for c, r in self.refusals],
            "notes": list(self.notes),
            "unknowns": list(self.unknowns),
            "loaded_from": self.loaded_from,
            "unparsed": list(self.state.unparsed),
        }
        if self.transition is not None:
            switched, pending = self.kernel_pending()
            out["transition"] = {"patch": self.transition.name, "target": self.target,
                                 "switched": switched, "not_switched": pending}
        return out


def _own_transition(busy: LoadedPatch | None, patch: Patch) -> LoadedPatch | None:
    """The transition in progress when it is the checked patch's own: the same
    patch by name (a module's, or ``--name``). Its direction may be the other
    one: writing ``enabled`` during a transition reverses it (core.c
    enabled_store, transition.c klp_reverse_transition). A function list
    without a name is never taken for it: another module may patch the same
    functions, and the kernel would refuse this one (-EBUSY)."""
    if busy is None or patch.name is None or patch.name != busy.name:
        return None
    return busy


def _merged_loaded(state: LivepatchState, enabled: tuple[Patch, ...],
                   given: Sequence[Patch]) -> tuple[tuple[Patch, ...], str, list[str]]:
    """The loaded patches: sysfs's, with the exact replacements of the module
    files given for them (--loaded x.ko). A given patch never hides what sysfs
    shows: a function sysfs lists and the file does not keeps its module-wide
    range, and a given patch sysfs does not list is kept beside them, every
    order then unknown."""
    if not given:
        return enabled, (f"{state.source}" if enabled else "none enabled"), []
    notes: list[str] = []
    named = {p.name: p for p in given if p.name is not None}
    out: list[Patch] = []
    for p in enabled:
        file = named.pop(p.name, None) if p.name is not None else None
        if file is None:
            out.append(p)
            continue
        exact = {f.key: f for f in file.functions}
        listed = {f.key for f in p.functions}
        if set(exact) != listed:
            notes.append(f"loaded patch {p.name}: its module file and sysfs list different "
                         "functions (another build?): both kept")
        funcs = [exact.get(f.key, f) for f in p.functions]
        funcs += [f for k, f in exact.items() if k not in listed]
        out.append(Patch(tuple(funcs), replace=False, name=p.name, order_known=p.order_known))
    rest = [g for g in given if g.name is None or g.name in named]
    if rest:
        notes.append(f"{len(rest)} --loaded patch(es) that sysfs does not list as enabled: "
                     "kept beside the enabled ones, in an unknown order")
        out = [replace(p, order_known=False) for p in [*out, *rest]]
    return tuple(out), f"{state.source}, with the --loaded patches given", notes


def _refusals(state: LivepatchState, patch: Patch,
              own: LoadedPatch | None) -> tuple[tuple[str, str], ...]:
    """What the kernel would refuse before looking at a task (core.c
    klp_enable_patch / enabled_store; kernel/module/main.c for a module that
    is loaded already)."""
    if own is not None:
        return ()
    out = list(state.preflight())
    if patch.name is None or not state.present:
        return tuple(out)
    listed = next((p for p in state.patches if p.name == patch.name), None)
    if patch.unpatch:
        if listed is None:
            out.append(("ENOENT", f"patch {patch.name} is not registered: no "
                        f"/sys/kernel/livepatch/{patch.name} to disable"))
        elif listed.enabled is False:
            out.append(("EINVAL", f"patch {patch.name} is disabled already (core.c "
                        "enabled_store refuses a write of the current state)"))
    elif listed is not None or (state.modules is not None and patch.name in state.modules):
        # The module is loaded already (its patch enabled, or disabled but not
        # removed): a second insmod fails, kernel/module/main.c add_unformed_module.
        out.append(("EEXIST", f"module {patch.name} is loaded already: loading it again fails"
                    + ("" if listed is None else
                       f" (its patch is {'enabled' if listed.enabled else 'registered'})")))
    return tuple(out)


def machine_view(state: LivepatchState, patch: Patch, given: Sequence[Patch],
                 patch_states: PatchStates | None) -> MachineView:
    """The loaded patches (sysfs's, refined by module files given), the
    refusals, and the checked patch's own transition when it is in progress."""
    own = _own_transition(state.in_transition, patch)
    enabled = tuple(p for p in loaded_patches(state) if p.name != patch.name)
    loaded, loaded_from, notes = _merged_loaded(state, enabled, given)
    target = None if own is None else (0 if patch.unpatch else 1)
    return MachineView(state, _refusals(state, patch, own), tuple(notes),
                       loaded_from, loaded, own, target, patch_states,
                       tuple(state.unknowns))


def _model_names(request: CheckRequest) -> list[str]:
    return list(MODELS) if request.all_models else list(request.models)


def validate(request: CheckRequest) -> None:
    """Refuse, before any dump is read, a request naming a model that does not
    exist or a parameter none of its models takes (ValueError). Every model
    gets the same parameters and reads those it takes."""
    names = _model_names(request)
    models = [get_model(name) for name in names]
    taken = frozenset().union(*(type(m).accepts() for m in models))
    unknown = sorted(set(request.params) - taken)
    if len(names) == 1 and unknown:
        get_model(names[0], **request.params)  # its own message: what it does take
    if unknown:
        raise ValueError(f"no model asked for takes the parameter(s) {', '.join(unknown)}")


def run(request: CheckRequest) -> Report:
    """Load the request's source and symbols, and judge it under each model."""
    from lpc import progress, source

    validate(request)
    progress.phase(f"reading {request.dump}" if request.dump else "reading the tasks")
    dump, symbols, description, notes = source.load(
        request.dump, request.symbols, live=request.live, demo=request.demo,
        symbols_mismatch_ok=request.symbols_mismatch_ok)
    return run_loaded(request, dump, symbols, description, notes)


def run_loaded(request: CheckRequest, dump: Dump, symbols: Symbols | None, description: str,
               notes: Sequence[str] = ()) -> Report:
    """The second half of :func:`run`: judge a dump already loaded with its
    symbol table (as :func:`lpc.source.load` returns them). ``lpc fleet``
    loads each release's table once per worker and comes in here, so every
    host is judged exactly as ``lpc check`` judges it."""
    from lpc import progress, source

    notes = list(notes)
    if request.patch is None:
        return Report(request, description, dump, symbols, {}, sleeping_functions(dump),
                      task_inventory(dump))
    kernel = dump_kernel(dump, request.kernel_release, request.arch)
    machine = None
    loaded = request.loaded
    if request.machine_state:
        state, patch_states = request.livepatch, request.patch_states
        if state is None:
            state, found_states = source.machine_state(
                request.dump, live=request.dump is None and not request.demo)
            patch_states = patch_states or found_states
        if state is not None:
            machine = machine_view(state, request.patch, request.loaded, patch_states)
            loaded = machine.loaded
    done: dict[Patch, Prepared] = {}
    results = {}
    names = _model_names(request)
    for i, name in enumerate(names):
        progress.phase(f"checking {dump.task_count} tasks under {name}"
                       + (f" ({i + 1}/{len(names)})" if len(names) > 1 else ""))
        model = configure(name, request.params, kernel)
        checked, found, facts, warnings = _prepare(dump, request.patch, symbols, loaded,
                                                   model, done)
        results[name] = _judge(dump, symbols, found, facts, notes + warnings,
                               model.with_patch(checked), kernel)
    if machine is not None:
        machine = _with_stack_notes(machine, results)
    return Report(request, description, dump, symbols, results, machine=machine)


def _with_stack_notes(machine: MachineView, results: Mapping[str, CheckResult]) -> MachineView:
    """Note when the kernel's model has no reliable stacks: then only kernel
    exit and the idle loop switch tasks (transition.c klp_try_switch_task
    refuses every task whose stack it cannot trust)."""
    notes = list(machine.notes)
    for name, r in results.items():
        if r.params.get("reliable_stacks") is False:
            notes.append(f"{name}: this kernel has no reliable stack traces "
                         "(HAVE_RELIABLE_STACKTRACE): only the kernel exit and the idle loop "
                         "switch tasks; kthreads that never leave the kernel block for good")
    return replace(machine, notes=tuple(notes))
