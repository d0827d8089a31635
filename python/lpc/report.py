"""Renderers of a :class:`~lpc.check.Report`: the text a person reads, the JSON a tool reads.

Each reads the report and nothing else: what was checked and how is all in it.
Text goes to a table (rich on a terminal, aligned columns elsewhere); JSON is
one document with ``schema_version``, each task list streamed one compact
object per line.
"""

from __future__ import annotations

from collections import Counter

import json
from typing import Any, TextIO

from lpc.check import MachineView, Report
from lpc.models import CONVERGING, MODELS, Outlook, get_model
from lpc.patch import Patch, PatchOrigin
from lpc.result import SCHEMA_VERSION, CheckResult, TaskResults

__all__ = ["TaskList", "render_json", "render_jsonl", "render_text", "verdict_text", "write_json", "write_table"]


# ---- text ---------------------------------------------------------------------------------------

#: C0 controls, DEL and C1 controls: what a terminal may act on (ESC and CSI start
#: colour, cursor and title sequences; OSC can set the window title or a link).
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}


def printable(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN``: dump text (a comm
    any process can set with prctl(PR_SET_NAME), a frame name, a meta field)
    must not reach a terminal as escape sequences."""
    return text.translate(_CONTROLS)


def _print(text: str, out: TextIO) -> None:
    print(printable(text), file=out)



def write_table(rows: list[list[str]], header: list[str], out: TextIO) -> None:
    if out.isatty():
        try:
            from rich.console import Console
            from rich.markup import escape as rich_escape
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table()
            for i, h in enumerate(header):
                # Identity columns never wrap; the last (free text) column takes the rest.
                last = i == len(header) - 1
                table.add_column(h, no_wrap=not last, ratio=1 if last else None)
            for row in rows:
                table.add_row(*(rich_escape(printable(c)) for c in row))
            Console(file=out).print(table)
            return
    rows = [[printable(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the last column is free text
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)


def patch_functions_text(patch: Patch, with_ranges: bool = False) -> str:
    """The checked functions in one line; the functions standing for a whole
    module (a loaded patch whose replacement sysfs does not name) as one
    ``module:* (N functions)``."""
    parts: list[str] = []
    modules: dict[str | None, int] = {}
    for f in patch.functions:
        if f.in_module_text:
            if f.object not in modules:
                modules[f.object] = len(parts)
                parts.append("")
            parts[modules[f.object]] += "."
            continue
        parts.append(f.spec + (f" [{f.start:#x}, {f.end:#x})"
                               if with_ranges and f.resolved else ""))
    for module, at in modules.items():
        parts[at] = f"{module}:* ({len(parts[at])} functions: every function of the module)"
    return ", ".join(parts)


def verdict_text(converges: bool | None) -> str:
    return {True: "CONVERGES", False: "DOES NOT CONVERGE", None: "UNKNOWN"}[converges]


def _advice(result: CheckResult) -> list[str]:
    """Sentences an engineer acts on, one per distinct situation the model leaves
    stuck: what it waits for, how many tasks share it, and which other model
    would converge (judged on the same facts)."""
    others = [get_model(name) for name in MODELS if name != result.model]
    lines = []
    for outcome, tasks in result.tasks.distinct():
        if outcome.outlook is not Outlook.STUCK:
            continue
        facts = result.tasks.facts[int(tasks[0])]
        many = f" and {len(tasks) - 1} more like it" if len(tasks) > 1 else ""
        line = f"{facts.comm} (pid {facts.pid}){many} {outcome.reason}"
        for m in others:
            o = m.judge(facts)
            if o.outlook in CONVERGING and o.outlook is not Outlook.SWITCHED:
                line += f"; {m.name} would converge ({o.outlook.value.replace('_', ' ')})"
                break
        lines.append(line)
        if len(lines) == 10:
            break
    return lines


#: Rows of blocking tasks the text shows (the JSON holds every task).
_ROWS = 50


def _origin_lines(origin: PatchOrigin | None, out: TextIO) -> None:
    """``patch:`` where a patch read from a module came from, and what was assumed."""
    if origin is not None:
        _print(f"patch: {origin.text()}", out)
        for note in origin.assumed:
            _print(f"  assumed: {note}", out)


def _text_one(result: CheckResult, description: str, out: TextIO,
              refused: str | None = None, origin: PatchOrigin | None = None) -> None:
    _print(f"source: {description}", out)
    _origin_lines(origin, out)
    fns = patch_functions_text(result.patch, with_ranges=True)
    _print(f"patch ({'unpatch' if result.patch.unpatch else 'patch'}): {fns}", out)
    profile = result.model_profile
    if profile:
        release = profile.get("kernel_release") or "unknown release"
        named = f" profile {profile['profile']}" if profile.get("profile") else ""
        _print(f"kernel: {release} ({profile.get('release_from')}), "
               f"{profile.get('arch') or 'unknown arch'} — {result.model}{named}: switches at "
               f"{', '.join(profile.get('switch_points', ())) or 'nothing'}", out)
        for note in profile.get("assumed", ()):
            _print(f"  assumed: {note}", out)
    s = result.summary()
    print(
        f"model {result.model} (LEAVE_{result.cell[0]} / SWITCH_{result.cell[1]}): "
        f"{s['tasks']} tasks — {s['switch']} switch now, {s['blocked']} blocked, "
        f"{s['running']} running, {s['unreliable']} unreliable",
        file=out,
    )
    rows = [
        [str(t.facts.pid), t.facts.comm, t.facts.state or "?", t.facts.kind.value,
         t.outcome.verdict.value,
         "" if t.facts.patched_frame is None
         else f"#{t.facts.patched_frame} {t.facts.patched_function}",
         t.outcome.outlook.value, t.outcome.reason]
        for t in result.blocking[:_ROWS]
    ]
    if rows:
        write_table(rows, ["pid", "comm", "st", "kind", "verdict", "frame", "outlook", "why"],
                    out)
        if len(result.blocking) > _ROWS:
            _print(f"… and {len(result.blocking) - _ROWS} more (see --json)", out)
    for line in _evidence_lines(result):
        _print(line, out)
    eta = f" (worst case ~{s['eta_s']:g} s)" if s["eta_s"] else ""
    if refused == "unknown" and result.converges is True:
        _print(f"verdict: UNKNOWN: the machine's livepatch state leaves it open (unknown: "
               f"above); the stacks alone: CONVERGES{eta} — {s['reason']}", out)
    elif refused is not None and refused != "unknown":
        _print(f"verdict: REFUSED ({refused}): the kernel would not start this transition; "
               f"once it would: {verdict_text(result.converges)}{eta} — {s['reason']}", out)
    else:
        _print(f"verdict: {verdict_text(result.converges)}{eta} — {s['reason']}", out)
    for line in _advice(result):
        _print(f"advice: {line}", out)
    for w in result.warnings:
        _print(f"warning: {w}", out)


def _evidence_lines(result: CheckResult) -> list[str]:
    """One line per kind of lost evidence, with counts, said before the verdict."""
    lines = []
    path = result.source.get("path") or "the dump"
    evidence = result.evidence
    if evidence.get("input_cut"):
        lines.append(f"{path} ends in the middle of a line: it was cut, and the tasks after the "
                     "cut are missing: verdict cannot be CONVERGES")
    headers = evidence.get("unreadable_headers", {})
    if headers.get("tasks"):
        shown = ", ".join(str(n) for n in headers["lines"])
        more = ", …" if headers["tasks"] > len(headers["lines"]) else ""
        lines.append(f"{headers['tasks']} task header(s) unreadable ({path} lines {shown}{more}): "
                     "verdict cannot be CONVERGES")
    for kind, loss in evidence.get("lost", {}).items():
        if kind == "header":
            continue  # said above, with its lines
        first = loss["first"][0]
        where = f"{path}:{first['line']}" if first.get("line") else f"{path}:{first['task_line']}"
        frame = f", frame #{first['frame']}" if "frame" in first else ""
        lines.append(f"evidence lost: {loss['tasks']} task(s): {loss['reason']} (first: {where}, "
                     f"the task at line {first['task_line']}{frame}): their stacks count as "
                     "unreliable")
    skipped = evidence.get("skipped_lines", 0)
    if skipped:
        lines.append(f"{skipped} line(s) of {path} read as nothing known (see --json "
                     "skipped_samples)")
    return lines


def _text_all(results: dict[str, CheckResult], description: str, out: TextIO,
              origin: PatchOrigin | None = None) -> None:
    first = next(iter(results.values()))
    _print(f"source: {description}", out)
    _origin_lines(origin, out)
    _print(f"patch: {patch_functions_text(first.patch)}", out)
    rows = []
    for name, r in results.items():
        s = r.summary()
        rows.append([name, f"{r.cell[0]}/{r.cell[1]}", str(s["switch"]), str(s["blocked"]),
                     str(s["running"]), str(s["unreliable"]), verdict_text(r.converges),
                     s["reason"]])
    write_table(rows, ["model", "cell", "switch", "blocked", "running", "unreliable", "verdict",
                       "why"], out)
    for w in first.warnings:
        _print(f"warning: {w}", out)


#: Functions the text lists without a patch (the JSON holds them all).
_FUNCTIONS = 40


#: Tasks the text lists without a patch (the JSON holds them all).
_INVENTORY = 60


def _inventory(tasks: list[dict[str, Any]], out: TextIO) -> None:
    """Every task read, empty and unreadable stacks included, with its status."""
    by_status = Counter(t["stack"] for t in tasks)
    lost = sum(1 for t in tasks if t["lost"])
    counts = ", ".join(f"{n} {status}" for status, n in by_status.most_common())
    _print(f"tasks read: {len(tasks)} ({counts or 'none'}"
           f"{f'; {lost} lost evidence while read' if lost else ''})", out)
    rows = [[_id(t["tid"] if t["tid"] is not None else t["pid"]), t["comm"], t["state"] or "?",
             t["stack"], str(t["frames"]), t["innermost"] or "-", ",".join(t["lost"]) or "-"]
            for t in tasks[:_INVENTORY]]
    write_table(rows, ["tid", "comm", "st", "stack", "frames", "innermost", "lost"], out)
    if len(tasks) > _INVENTORY:
        _print(f"… {len(tasks) - _INVENTORY} more (see --json)", out)


def _id(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_text(report: Report, out: TextIO) -> None:
    if report.sleeping is not None:
        _print(f"source: {report.description}", out)
        print("functions on sleeping stacks (a patch to one of these blocks that many tasks "
              "under klp until they leave it):", file=out)
        write_table([[f, str(n)] for f, n in report.sleeping[:_FUNCTIONS]],
                    ["function", "tasks"], out)
        if len(report.sleeping) > _FUNCTIONS:
            _print(f"… {len(report.sleeping) - _FUNCTIONS} more (see --json)", out)
        _inventory(report.inventory or [], out)
        return
    origin = report.request.patch.origin if report.request.patch is not None else None
    if report.machine is not None:
        for line in _machine_lines(report.machine):
            _print(line, out)
    if report.request.all_models:
        _text_all(report.results, report.description, out, origin)
    else:
        refused = None
        if report.machine is not None and report.machine.refusals:
            refused = ", ".join(f"-{code}" for code, _ in report.machine.refusals)
        elif report.machine is not None and report.machine.unknowns:
            refused = "unknown"
        for result in report.results.values():
            _text_one(result, report.description, out, refused, origin)
    if report.machine is not None and report.machine.transition is not None:
        # The kernel runs one model: beside several, only its counts are shown.
        shown = list(report.results.values())[:1 if report.request.all_models else None]
        for result in shown:
            lines = _transition_lines(report.machine, result)
            for line in lines[:1] if report.request.all_models else lines:
                _print(line.split("; lpc on")[0] if report.request.all_models else line, out)


def _machine_lines(machine: MachineView) -> list[str]:
    """The machine's livepatch state, said before anything else: what the kernel
    would refuse outright comes first."""
    lines = [f"refused: -{code}: {why}" for code, why in machine.refusals]
    state = machine.state
    if state.present:
        enabled = [p.name for p in state.enabled]
        busy = state.in_transition
        order = "" if state.order_known or len(enabled) < 2 else \
            " (order unknown: no stack_order in sysfs)"
        lines.append(f"livepatch: {len(state.patches)} patch(es) registered, enabled: "
                     f"{', '.join(enabled) or 'none'}{order}"
                     + (f"; {busy.name} in transition" if busy is not None else "")
                     + f" ({state.source})")
        lines.append(f"loaded patches checked against: {machine.loaded_from}")
    lines.extend(f"note: {n}" for n in machine.notes)
    lines.extend(f"unknown: {u}: verdict cannot be CONVERGES" for u in machine.unknowns)
    return lines


#: Tasks listed per group of the transition view.
_EXAMPLES = 8


def _transition_lines(machine: MachineView, result: CheckResult) -> list[str]:
    """The checked patch's own transition, in progress: the kernel's
    ``patch_state`` per task beside lpc's verdict for those not yet switched."""
    assert machine.transition is not None
    head = (f"transition in progress: {machine.transition.name} "
            f"({'patching' if machine.target == 1 else 'unpatching'})")
    if machine.patch_states is None:
        return [head + ": no per-task patch_state read (lpc's verdicts above stand alone)"]
    switched = pending = 0
    groups: dict[tuple[str, str, str], list[str]] = {}
    for t in result.tasks:
        done = machine.kernel_switched(t.facts.tid)
        if done is None:
            continue
        if done:
            switched += 1
            continue
        pending += 1
        key = (t.outcome.verdict.value, t.outcome.outlook.value, t.outcome.reason)
        groups.setdefault(key, []).append(f"{t.facts.tid}:{t.facts.comm}")
    lines = [f"{head}: the kernel has switched {switched} task(s), {pending} not yet "
             f"(patch_state); lpc on those {pending}:"]
    for (verdict, outlook, reason), tasks in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(tasks[:_EXAMPLES]) + (", …" if len(tasks) > _EXAMPLES else "")
        lines.append(f"  {len(tasks)} {verdict} ({outlook}): {reason} — {shown}")
    return lines


# ---- JSON ---------------------------------------------------------------------------------------


class TaskList:
    """Stands for a check's per-task list inside a document given to :func:`write_json`."""

    def __init__(self, tasks: TaskResults) -> None:
        self.tasks = tasks


#: Tasks rendered and written at a time: bounds the memory of a 400k-task document.
_TASKS_PER_WRITE = 1 << 15


def _holds_tasks(value: Any) -> bool:
    if isinstance(value, TaskList):
        return True
    if isinstance(value, dict):
        return any(_holds_tasks(v) for v in value.values())
    return False


def _write_value(value: Any, indent: str, out: TextIO) -> None:
    """``value`` as ``json.dumps(indent=2, sort_keys=True)`` would write it at
    this indent, with each :class:`TaskList` streamed in place. Only dicts on
    the way to a task list are walked here; everything else is the library
    encoder's, so no dump text can be mistaken for structure."""
    if isinstance(value, TaskList):
        _write_tasks(value.tasks, indent, out)
    elif isinstance(value, dict) and _holds_tasks(value):
        inner = indent + "  "
        out.write("{")
        for i, key in enumerate(sorted(value)):
            out.write(("," if i else "") + f"\n{inner}{json.dumps(str(key))}: ")
            _write_value(value[key], inner, out)
        out.write(f"\n{indent}}}" if value else "}")
    else:
        out.write(json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + indent))


def write_json(doc: dict[str, Any], out: TextIO) -> None:
    """``doc`` as indented JSON with sorted keys, each task list one compact
    object per line.

    Python's indenting JSON encoder is pure Python (half a minute for 400k
    tasks); its compact one is C. The document's frame goes through the
    first, each task through the second, a slice of tasks at a time, straight
    to ``out`` — so ``--model all`` never holds seven models' task lists.
    """
    _write_value(doc, "", out)
    out.write("\n")


def _write_tasks(tasks: TaskResults, indent: str, out: TextIO) -> None:
    if not len(tasks):
        out.write("[]")
        return
    out.write("[")
    separator = "\n"
    for lo in range(0, len(tasks), _TASKS_PER_WRITE):
        part = tasks.subset(range(lo, min(lo + _TASKS_PER_WRITE, len(tasks)))).as_json()
        for task in part:
            out.write(f"{separator}{indent}  {json.dumps(task, sort_keys=True)}")
            separator = ",\n"
    out.write(f"\n{indent}]")


def render_json(report: Report, out: TextIO) -> None:
    if report.sleeping is not None:
        d = report.dump
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "source": {"format": d.source_format, "path": d.path, "tasks": d.task_count,
                       "description": report.description},
            "sleeping_functions": [{"function": f, "tasks": n} for f, n in report.sleeping],
            "tasks": report.inventory or [],
        }
        json.dump(doc, out, indent=2, sort_keys=True)
        print(file=out)
        return
    first = next(iter(report.results.values()))
    machine = {} if report.machine is None else {"machine": report.machine.as_json()}
    origin = report.request.patch.origin if report.request.patch is not None else None
    extra = {"patch_module": origin.as_json()} if origin is not None else {}
    extra.update(machine)
    if report.request.all_models:
        models: dict[str, Any] = {}
        for name, r in report.results.items():
            models[name] = r.as_json(with_source=False, with_tasks=False)
            models[name]["tasks"] = TaskList(r.tasks)
        write_json({"schema_version": SCHEMA_VERSION, "source": dict(first.source),
                    "patch": first.patch.as_json(), "models": models, **extra}, out)
        return
    one = first.as_json(with_tasks=False)
    one["source"]["description"] = report.description
    one["tasks"] = TaskList(first.tasks)
    one.update(extra)
    write_json(one, out)


def render_jsonl(report: Report, out: TextIO, exit_model: str | None = None) -> None:
    """``--jsonl``: one compact JSON object per line (``lpc schema check-jsonl``):
    a header (what was checked, each model's configuration), one line per task
    and model (the models in the header's order, by name), and a summary last.
    Nothing is indented, no blank follows ``,`` or ``:``, and no line holds a
    list of tasks: a reader can stream it. ``exit_model``: the model whose
    verdict is the summary's ``converges`` (default: the one checked, or klp
    with ``--model all``)."""
    if not report.results:
        raise ValueError("render_jsonl needs a checked patch")
    first = next(iter(report.results.values()))
    if exit_model is None:
        exit_model = first.model if not report.request.all_models else "klp"
    header: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "header",
        "source": {**first.source, "description": report.description},
        "patch": first.patch.as_json(),
        "models": {name: {"cell": {"leave": r.cell[0], "switch": r.cell[1]},
                          "params": dict(r.params), "model_profile": dict(r.model_profile),
                          "warnings": list(r.warnings)}
                   for name, r in report.results.items()},
        "exit_model": exit_model,
    }
    origin = report.request.patch.origin if report.request.patch is not None else None
    if origin is not None:
        header["patch_module"] = origin.as_json()
    if report.machine is not None:
        header["machine"] = report.machine.as_json()
    out.write(_line(header) + "\n")
    for name in sorted(report.results):  # the header's order (its keys are sorted)
        r = report.results[name]
        for lo in range(0, len(r.tasks), _TASKS_PER_WRITE):
            part = r.tasks.subset(range(lo, min(lo + _TASKS_PER_WRITE, len(r.tasks))))
            lines = []
            for task in part.as_json():
                task["task_kind"] = task.pop("kind")
                task["kind"] = "task"
                task["model"] = name
                lines.append(_line(task))
            out.write("\n".join(lines) + "\n")
    summary = {"kind": "summary", "exit_model": exit_model,
               "converges": report.converges_under(exit_model),
               "models": {name: r.summary() for name, r in report.results.items()}}
    out.write(_line(summary) + "\n")


def _line(doc: dict[str, Any]) -> str:
    """One JSON line: sorted keys, no blanks (a blank after each ``,`` and ``:``
    of 3M task lines is 0.1 GB)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
