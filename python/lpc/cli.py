"""The ``lpc`` command line: a thin shell over the library.

``main(argv) -> int``. Results go to stdout (``--json``: one document with
``schema_version``, or one line per retry for ``watch``); logs, warnings and
progress go to stderr. Exit status: one meaning per code, the same for every
subcommand (:data:`EXIT_STATUS`, printed by ``--help``). A traceback never ends
a run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from lpc._version import version_line
from lpc.errors import LpcError

EXIT_OK = 0
#: Does not converge, the kernel would refuse the patch, unexplained disagreements.
EXIT_BLOCKED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
#: The verdict is UNKNOWN: lpc cannot tell whether the transition converges.
EXIT_UNKNOWN = 4
#: A bug in lpc (never a verdict's code); LPC_DEBUG=1 prints the traceback.
EXIT_INTERNAL = 5

#: Each exit code and its one meaning, for every subcommand (``--help``, README).
EXIT_STATUS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "converges; or the command did its job (capture, schema, an inventory without "
              "a patch, simulate as expected, oracle compare: every disagreement explained)"),
    (EXIT_BLOCKED, "does not converge, or the kernel would refuse the patch (REFUSED); "
                   "simulate: differs from the expected facts; oracle: unexplained "
                   "disagreements; fleet: some host does not converge"),
    (EXIT_USAGE, "usage error (an unknown option, model or parameter; --force with a model "
                 "that has no forced transition)"),
    (EXIT_BAD_INPUT, "bad input: a file that cannot be read or parsed (one line naming it); "
                     "fleet: no dump matched, or none could be read"),
    (EXIT_UNKNOWN, "cannot tell: the verdict is UNKNOWN (fleet: on some host, or some host "
                   "was not checked, and no host does not converge)"),
    (EXIT_INTERNAL, "a bug in lpc (LPC_DEBUG=1 prints its traceback)"),
)


def exit_status_text() -> str:
    """The exit-status table as ``--help`` prints it."""
    import textwrap

    def wrap(text: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(text, 78, initial_indent=first, subsequent_indent=rest,
                             break_on_hyphens=False)

    lines = ["exit status (the same for every command):"]
    for code, meaning in EXIT_STATUS:
        lines += wrap(meaning, f"  {code}  ", "     ")
    lines += wrap("With --model all, the status follows the kernel's own model, klp "
                  "(or --exit-model NAME).", "  ", "  ")
    return "\n".join(lines)


def _verdict_exit(converges: bool | None) -> int:
    return {True: EXIT_OK, False: EXIT_BLOCKED, None: EXIT_UNKNOWN}[converges]


def _log(message: str) -> None:
    from lpc import progress

    progress.clear()
    print(f"lpc: {message}", file=sys.stderr)


# ---- the request ---------------------------------------------------------------------------------


def _module_patch(path: str, unpatch: bool = False, replace: bool = False,
                  as_loaded: bool = False) -> Any:
    """The patch of a livepatch module file (said on stderr: how it was read,
    and each assumption); ``replace`` (--replace) wins over the module's flag."""
    from lpc.patch_module import read_module

    module = read_module(path)
    _log(f"patch from module {module.module}: {module.format}, layout {module.layout} "
         f"({module.layout_source}), {len(module.functions)} function(s)")
    for note in module.notes:
        _log(f"assumed: {note}")
    return module.patch(unpatch=unpatch, replace=True if replace else None, as_loaded=as_loaded)


def _patch(args: argparse.Namespace) -> Any:
    """The patch the command line names, with ``--name`` when given."""
    from dataclasses import replace as dc_replace

    patch = _named_patch(args)
    name = getattr(args, "name", None)
    if name is None or patch is None:
        return patch
    if patch.name is not None and patch.name != name:
        raise UsageError(f"--name {name}: the module says its name is {patch.name}")
    return dc_replace(patch, name=name)


def _named_patch(args: argparse.Namespace) -> Any:
    from lpc.patch import Patch
    from lpc.patch_module import is_module_file

    replace = getattr(args, "replace", False)
    module = getattr(args, "patch_module", None)
    if module is None and args.patch_file and is_module_file(args.patch_file):
        module = args.patch_file  # a module given as a patch list: read it as one
    if module is not None:
        return _module_patch(module, args.unpatch, replace)
    if args.patch_file:
        return Patch.from_file(args.patch_file, unpatch=args.unpatch, replace=replace)
    if args.patch is not None:
        if not args.patch.replace(",", " ").strip():  # asked for a patch, named nothing
            raise UsageError("--patch: empty patch: name at least one function")
        return Patch.parse(args.patch, unpatch=args.unpatch, replace=replace)
    return None


def _param_value(text: str) -> Any:
    """``true``/``false``, an integer, a number, else the text."""
    low = text.strip().lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _model_params(args: argparse.Namespace) -> dict[str, Any]:
    """Model parameters from the flags, by the name the models take them under."""
    params: dict[str, Any] = {}
    if args.force:
        params["force"] = True
    if args.no_cond_resched:
        params["cond_resched_switch"] = False
    if args.no_reliable_stacks:
        params["reliable_stacks"] = False
    for item in getattr(args, "param", None) or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        params[name.strip()] = _param_value(value)
    return params


def _loaded(args: argparse.Namespace) -> tuple[Any, ...]:
    """``--loaded``: each an enabled patch, a spec or a file, oldest first."""
    import os

    from lpc.patch import Patch
    from lpc.patch_module import is_module_file

    out = []
    for item in getattr(args, "loaded", None) or ():
        if os.path.isfile(item) and is_module_file(item):
            out.append(_module_patch(item, as_loaded=True))  # the enabled patch, as built
        else:
            out.append(Patch.from_file(item) if os.path.isfile(item) else Patch.parse(item))
    return tuple(out)


def _recorded_state(args: argparse.Namespace) -> dict[str, Any]:
    """``--livepatch-state`` / ``--patch-states``: recorded files that stand for
    the machine's state."""
    if not (args.livepatch_state or args.patch_states):
        return {}
    from lpc.source import read_recorded_state

    for path in (args.livepatch_state, args.patch_states):
        if path and not os.path.isfile(path):
            raise UsageError(f"{path}: no such file")
    state, states = read_recorded_state(args.livepatch_state, args.patch_states)
    if state is None:
        raise UsageError("--patch-states needs --livepatch-state (which patch is in transition)")
    return {"livepatch": state, "patch_states": states}


def _takes_force(name: str) -> bool:
    """Does this model have a forced transition (a ``force`` parameter)?"""
    from lpc.models import get_model

    return "force" in type(get_model(name)).accepts()


def _check_force(args: argparse.Namespace) -> None:
    """``--force`` names a forced transition: a usage error with a model that
    has none (it would be ignored); with ``--model all`` it applies to the
    models that have one, said on stderr."""
    if not args.force:
        return
    from lpc.models import MODELS

    if args.model == "all":
        takers = [name for name in MODELS if _takes_force(name)]
        _log(f"--force applies to {', '.join(takers)} only (the models with a forced "
             "transition); the others are judged unforced")
        return
    try:
        takes = _takes_force(args.model)
    except (KeyError, ValueError):
        return  # an unknown model: validate() names it
    if not takes:
        takers = [name for name in MODELS if _takes_force(name)]
        raise UsageError(f"--force: model {args.model} has no forced transition "
                         f"(models with one: {', '.join(takers)})")


def _check_exit_model(args: argparse.Namespace) -> None:
    """``--exit-model`` (check only) names one of the models checked."""
    exit_model = args.exit_model
    if exit_model is None:
        return
    from lpc.models import MODELS

    if args.model != "all":
        if exit_model != args.model:
            raise UsageError(f"--exit-model {exit_model}: only {args.model} is checked "
                             "(--exit-model chooses among --model all)")
        return
    if exit_model not in MODELS:
        raise UsageError(f"--exit-model {exit_model}: not one of --model all's models "
                         f"({', '.join(MODELS)})")


def _request(args: argparse.Namespace, dump: str | None = None) -> Any:
    """The command line as one :class:`~lpc.check.CheckRequest` (refused with a
    usage error when it names a model or parameter that does not exist)."""
    from lpc.check import CheckRequest, validate

    _check_force(args)
    request = CheckRequest(
        dump=dump, live=args.live, demo=getattr(args, "demo", False),
        symbols_mismatch_ok=args.symbols_mismatch_ok, symbols=args.symbols, patch=_patch(args),
        models=(args.model,), params=_model_params(args),
        kernel_release=getattr(args, "kernel_release", None), loaded=_loaded(args),
        arch=getattr(args, "arch", None), machine_state=not args.no_machine_state,
        **_recorded_state(args),
    )
    try:
        validate(request)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return request


# ---- commands ------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from lpc import progress
    from lpc.check import run
    from lpc.report import render_json, render_text

    if args.json and args.jsonl:
        raise UsageError("--json and --jsonl: choose one")
    _check_exit_model(args)
    request = _request(args, args.dump)
    if args.jsonl and request.patch is None:
        raise UsageError("--jsonl needs a patch (--patch, --patch-file or --patch-module); "
                         "without one, --json lists the tasks")
    options = _text_options(args)
    _log(f"reading dump {args.dump}" if args.dump else "reading this machine's tasks")
    with progress.on_stderr():
        report = run(request)
    _log(f"source: {report.description}")
    if request.patch is not None and report.symbols is None:
        _log("no symbol table: matching frames by function name")
    if args.jsonl:
        from lpc.report import render_jsonl

        render_jsonl(report, sys.stdout, _exit_model(args))
    else:
        if args.json:
            render_json(report, sys.stdout)
        else:
            render_text(report, sys.stdout, options)
    if args.plot:
        if request.patch is None:
            raise UsageError("--plot draws a patch's transition: name the patch")
        from lpc.plot import plot_check

        names = ", ".join(report.results)
        _log(f"wrote {plot_check(report.results, args.plot, f'tasks not yet switched: {names}')}")
    if args.html:
        if request.patch is None:
            raise UsageError("--html reports a patch's check: name the patch")
        from lpc.html_report import write_html

        _log(f"wrote {write_html(report, args.html)}")
    if request.patch is None:
        return EXIT_OK
    model = _exit_model(args)
    verdict = report.converges_under(model)
    if request.all_models:
        from lpc.report import verdict_text

        _log(f"exit status: {model}'s verdict, {verdict_text(verdict)}"
             + (" (the kernel's own model; --exit-model NAME for another)"
                if args.exit_model is None else ""))
    return _verdict_exit(verdict)


def _exit_model(args: argparse.Namespace) -> str:
    """The model whose verdict is the exit status: the one asked, or with
    ``--model all`` the kernel's own (klp) unless ``--exit-model`` names another."""
    if args.model != "all":
        return str(args.model)
    return str(args.exit_model or "klp")


def _text_options(args: argparse.Namespace) -> Any:
    """The text report's layout from ``--tasks``, ``--group-by``, ``--top``,
    ``--show-stacks`` and ``--color``."""
    from lpc.report import TextOptions

    if args.json and (args.tasks or args.group_by or args.top or args.show_stacks):
        raise UsageError("--tasks, --group-by, --top and --show-stacks shape the text report; "
                         "--json holds every task")
    if args.tasks and (args.group_by or args.top):
        raise UsageError("--tasks lists every task: it takes no --group-by or --top")
    return TextOptions(color=args.color, tasks=args.tasks, group_by=args.group_by or "outcome",
                       show_stacks=args.show_stacks,
                       top=args.top if args.top is not None else TextOptions.top)


def cmd_capture(args: argparse.Namespace) -> int:
    from lpc import source

    from lpc.livepatch_state import read_livepatch_state, read_patch_states

    dump = source.capture_live()
    # Right after the stacks: the machine's livepatch state and each thread's
    # patch_state (another instant, milliseconds later: a capture is not atomic).
    state, states = read_livepatch_state(), read_patch_states()
    source.write_snapshot(dump, args.out, livepatch=state, patch_states=states)
    patches = (f"{len(state.patches)} livepatch(es)" if state.present
               else "no /sys/kernel/livepatch")
    _log(f"captured {dump.task_count} tasks into {args.out} ({patches})")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    """The kernel's retry loop, driven by repeated snapshots: each retry a check.

    When the machine (or the recorded snapshot) shows the patch's own
    transition in progress, each retry also shows the kernel's answer, every
    task's ``patch_state``, beside lpc's verdict for the tasks it has not
    switched, and the watch stops when the transition completes or is
    reversed (:func:`lpc.watch.transition_end`)."""
    from dataclasses import replace as dc_replace

    from lpc.check import run
    from lpc.report import verdict_text
    from lpc.watch import transition_end, watch_line

    if args.model == "all":
        raise UsageError("watch follows one model: name it with --model")
    request = _request(args)
    if request.patch is None:
        raise UsageError("watch needs --patch or --patch-file")
    dumps = list(args.dump or [])
    retries = len(dumps) if dumps else args.retries
    first_blocked: set[int] | None = None
    converged = False
    followed = None  # the transition in progress, once seen
    ended = None
    last_look: tuple[int, bool | None] = (0, True)  # not switched, lpc's outlook for them
    first_result = None
    seen: list[tuple[float, int, bool]] = []  # time, tasks not switched, by the kernel's word
    for retry in range(retries):
        report = run(dc_replace(request, dump=dumps[retry] if dumps else None,
                                live=not dumps))
        result = report.results[args.model]
        machine = report.machine
        if machine is not None and machine.refusals and followed is None:
            # Nothing to watch: the kernel would not start this transition.
            for code, why in machine.refusals:
                _log(f"refused: -{code}: {why}")
            if not args.json:
                print(f"refused: {', '.join('-' + c for c, _ in machine.refusals)}")
            return EXIT_BLOCKED
        if followed is not None and machine is not None:
            ended = transition_end(followed, machine.state)
        if followed is None and machine is not None and machine.transition is not None:
            followed = machine.transition
        line = watch_line(retry, time.time(), result, machine if followed else None)
        first_result = first_result or result
        # A recorded state carries the machine's uptime: the replay's own clock
        # would squeeze a recorded series into milliseconds.
        at = (machine.state.uptime if machine is not None and machine.state.uptime is not None
              else line["time"])
        if "transition" in line:
            seen.append((at, line["transition"]["not_switched"], True))
        elif ended is not None and ended.startswith("completed"):
            seen.append((at, 0, True))  # by the kernel's word: every task switched
        else:
            seen.append((at, len(line["blocking"]), False))
        if "transition" in line:
            last_look = (line["transition"]["not_switched"], line["pending_converges"])
        if args.json:
            print(json.dumps(line, sort_keys=True), flush=True)
        blocking = line["blocking"]
        tids = {b["tid"] if b["tid"] is not None else -1 for b in blocking}
        first_blocked = tids if first_blocked is None else first_blocked & tids
        if "transition" in line:
            k = line["transition"]
            _log(f"retry {retry}: kernel: {k['switched']} switched, {k['not_switched']} not yet "
                 f"({k['patch']}, patch_state); lpc: {len(blocking)} of those not switchable "
                 f"now; prediction for them: {verdict_text(line['pending_converges'])}")
        else:
            _log(f"retry {retry}: {len(blocking)} task(s) not switchable now by lpc; "
                 f"prediction: {verdict_text(result.converges)}"
                 + (f" in ~{result.transition.eta_s:g} s" if result.transition.eta_s else ""))
        if ended is not None:
            break
        if not blocking and followed is None:
            converged = True
            break
        if retry + 1 < retries and not dumps:
            time.sleep(args.interval)
    status = EXIT_BLOCKED
    if ended is not None:
        report_line = f"the transition of {followed.name if followed else '?'} {ended}"
        # sysfs shows a forced end as a completed one: a completion counts only
        # when, at the last look, lpc saw every remaining task on its way.
        pending, outlook = last_look
        converged = ended.startswith("completed") and (pending == 0 or outlook is True)
        if ended.startswith("completed") and not converged:
            report_line += (f"; at the last look {pending} task(s) had not switched and lpc "
                            "did not expect them to: it may have been forced")
            # lpc saw tasks stuck: forced, not converged (1); it could not judge
            # them: whether they switched on their own or were forced is unknown (4).
            status = EXIT_BLOCKED if outlook is False else EXIT_UNKNOWN
    else:
        still = sorted(first_blocked or set())
        report_line = ("converged at a retry: every task can switch" if converged
                       else f"{len(still)} task(s) could not switch at any retry "
                            f"(tids {still[:20]})")
    _log(report_line)
    if not args.json:
        print(report_line)
    if args.plot:
        from lpc.plot import plot_watch

        t0 = seen[0][0] if seen else 0.0
        kernel = any(k for _, _, k in seen)
        observed = [(t - t0, n) for t, n, _ in seen]
        what = ("tasks the kernel has not switched (patch_state)" if kernel
                else "tasks lpc would not switch")
        _log(f"wrote {plot_watch(observed, first_result, args.plot, 'lpc watch', what)}")
    return EXIT_OK if converged else status


def cmd_oracle(args: argparse.Namespace) -> int:
    """``oracle run``: record cases from a real kernel in qemu; ``oracle compare``:
    lpc's klp model against a recorded case."""
    from pathlib import Path

    if args.oracle_command == "compare":
        from lpc.oracle.compare import compare_case

        comparison = compare_case(args.case_dir)
        if args.json:
            json.dump(comparison.as_json(), sys.stdout, indent=2, sort_keys=True)
            print()
        else:
            from lpc.oracle.report import print_comparison

            print_comparison(comparison, sys.stdout)
        return EXIT_OK if not comparison.unexplained else EXIT_BLOCKED
    if args.oracle_command == "run":
        from lpc.oracle.compare import compare_case
        from lpc.oracle.report import print_comparison
        from lpc.oracle.run import (
            build_guest,
            default_tools_dir,
            kernel_series,
            run_scenario,
        )
        from lpc.oracle.scenarios import SCENARIOS

        names = args.scenario or list(SCENARIOS)
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise UsageError(f"unknown scenario(s) {', '.join(unknown)}; "
                             f"known: {', '.join(SCENARIOS)}")
        chroot = Path(args.chroot) if args.chroot else None
        if args.work:
            work = Path(args.work)
        else:  # one work directory per kernel: guests of several kernels side by side
            work = Path("/tmp/lpc-oracle") / (args.kver or (f"chroot-{chroot.name}" if chroot
                                                            else "default"))
        out = Path(args.out)
        tools = Path(args.tools) if args.tools else default_tools_dir()
        if not args.no_build:
            _log(f"building the guest in {work} from {tools}")
            build_guest(tools, work, args.kver, chroot,
                        Path(args.vmlinuz) if args.vmlinuz else None)
        if args.per_kernel:
            kver_file = work / "kver"
            if not kver_file.exists():
                raise UsageError(f"{work}: no guest built there (no kver file)")
            out = out / kernel_series(kver_file.read_text().strip())
        worst = EXIT_OK
        for name in names:
            _log(f"booting scenario {name}")
            case_dir = run_scenario(name, work, out, args.funcs)
            comparison = compare_case(case_dir)
            print(f"== {name}: recorded {case_dir}")
            print_comparison(comparison, sys.stdout)
            if comparison.unexplained:
                worst = EXIT_BLOCKED
        return worst
    raise UsageError("oracle needs a subcommand: run or compare")


def cmd_simulate(args: argparse.Namespace) -> int:
    """The transition simulator: the matrix, one scenario, a model's liveness, a plot."""
    try:
        from lpc.sim import scenarios
        from lpc.sim.expected import expected
        from lpc.sim.properties import PATCH_CLASSES
        from lpc.sim.search import MODEL_NAMES, search_matrix
        from lpc.report import write_table
    except ImportError as exc:  # hypothesis is an optional dependency
        raise UsageError(f"lpc simulate needs the 'sim' extra ({exc.name} is missing): "
                         "pip install 'lpc[sim]'") from None
    out = sys.stdout
    if args.scenario and args.scenario not in scenarios.SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r} (see --list)")
    if args.model and args.model not in MODEL_NAMES:
        raise UsageError(f"unknown model {args.model!r} (known: {', '.join(MODEL_NAMES)})")
    if args.list:
        for sc in scenarios.SCENARIOS.values():
            print(f"{sc.name}: {sc.title} — models: {', '.join(sc.models)}", file=out)
        return EXIT_OK
    if args.matrix:
        models = args.models.split(",") if args.models else list(MODEL_NAMES)
        unknown = [m for m in models if m not in MODEL_NAMES]
        if unknown:
            raise UsageError(f"unknown model(s) {', '.join(unknown)}")
        _log(f"searching {len(models)} models × {len(PATCH_CLASSES)} patch classes, "
             f"{args.budget} examples per model")
        from lpc import progress

        with progress.on_stderr():
            cells = search_matrix(models, budget=args.budget)
        differ = [c for c in cells if c.holds != expected(c.model, c.patch_class)]
        status = EXIT_OK if not differ else EXIT_BLOCKED  # 1: a cell differs from docs
        if args.json:
            json.dump({"schema_version": 1, "cells": [c.as_json() for c in cells]}, out,
                      indent=2)
            print(file=out)
            return status
        rows = [[m] + [next(("holds" if c.holds else "REFUTED") for c in cells
                            if c.model == m and c.patch_class == k) for k in PATCH_CLASSES]
                for m in models]
        write_table(rows, ["model", *PATCH_CLASSES], out)
        print(f"\n{len(cells) - len(differ)}/{len(cells)} cells as expected "
              "(docs/livepatch.md, guarantees per cell, with the deviations of lpc.sim.expected)", file=out)
        for c in differ:
            print(f"unexpected: {c.model} / {c.patch_class} {c.result}", file=out)
        for c in cells:
            if c.counterexample is not None:
                print(f"\n{c.counterexample.text()}", file=out)
        return status
    if args.plot:
        from lpc.sim.plot import convergence, plot_convergence

        results = convergence(scenarios.reference_system(), seed=args.seed)
        path = plot_convergence(results, args.plot, "tasks not yet switched: the reference system")
        for r in results:
            print(f"{r.model}: {r.outcome()}", file=out)
        _log(f"wrote {path}")
        return EXIT_OK
    if args.model and args.scenario:
        outcome = scenarios.run_scenario(args.scenario, args.model)
        want = scenarios.SCENARIOS[args.scenario].expected.get(args.model, {})
        bad = {k: v for k, v in want.items() if outcome.facts.get(k) != v}
        if args.json:
            json.dump({"schema_version": 1, "scenario": args.scenario, "model": args.model,
                       "facts": outcome.facts, "expected": want, "as_expected": not bad,
                       "trace": outcome.trace}, out, indent=2, default=str)
            print(file=out)
        else:
            print(outcome.text(), file=out)
            verdict = "as expected" if not bad else f"differs from the expected facts: {bad}"
            print(f"verdict: {verdict}" if want else "verdict: no expectation for this model",
                  file=out)
        return EXIT_OK if not bad else EXIT_BLOCKED
    if args.model:
        from lpc.models import get_model
        from lpc.sim.timed import run_timed

        r = run_timed(scenarios.reference_system(), get_model(args.model), seed=args.seed,
                      record=True)
        print("\n".join(r.run.trace[-40:]), file=out)
        print(f"{args.model} on the reference system: {r.outcome()}", file=out)
        return EXIT_OK if r.converged_at is not None else EXIT_BLOCKED
    raise UsageError("simulate needs --matrix, --plot PATH, --list, or --model M [--scenario S]")


def cmd_fleet(args: argparse.Namespace) -> int:
    """``lpc fleet check``: every dump the glob matches, checked on a Dask cluster."""
    if args.fleet_command != "check":
        raise UsageError("fleet needs a subcommand: check")
    if args.json and args.parquet:
        raise UsageError("--json and --parquet: choose one")
    if args.json and args.jsonl:
        raise UsageError("--json and --jsonl: choose one")
    if args.symbols_dir is not None and not os.path.isdir(args.symbols_dir):
        raise UsageError(f"--symbols-dir {args.symbols_dir}: not a directory")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError("lpc fleet needs Dask: pip install 'lpc[fleet]'") from None
    from lpc.check import CheckRequest, validate
    from lpc.fleet import (FleetRequest, JsonLines, error_groups, find_dumps, read_dump_list,
                           render_text, run_fleet, write_html, write_parquet)

    patch = _patch(args)
    if patch is None:
        raise UsageError("fleet check needs a patch (--patch, --patch-file or --patch-module)")
    models = tuple(m.strip() for m in args.model.split(",") if m.strip()) or ("klp",)
    params = _model_params(args)
    try:
        validate(CheckRequest(patch=patch, models=models, params=params))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.dumps is not None:
        paths = find_dumps(args.dumps)
        if not paths:
            _log(f"--dumps {args.dumps!r}: no dump matched")
            return EXIT_BAD_INPUT
    else:
        paths = read_dump_list(args.dump_list)
        if not paths:
            _log(f"--dump-list {args.dump_list}: names no dump")
            return EXIT_BAD_INPUT
    request = FleetRequest(patch, models, params, args.symbols_dir,
                           machine_state=not args.no_machine_state)
    lines = JsonLines(sys.stdout, request, len(paths)) if args.jsonl else None
    fleet = run_fleet(paths, request, scheduler=args.scheduler, workers=args.workers,
                      host_timeout=args.host_timeout or None, start_method=args.start_method,
                      on_results=None if lines is None else lines.answers)
    _log(f"{len(fleet.hosts)} host(s) checked, {len(fleet.errors)} not checked, in "
         f"{fleet.check_s:.2f} s on {fleet.workers} worker(s) "
         f"(cluster start {fleet.startup_s:.2f} s)")
    reasons = error_groups(fleet.errors)
    for (kind, error), dumps in reasons[:5]:
        _log(f"not checked: {dumps[0] if len(dumps) == 1 else f'{len(dumps)} dumps'}: {error}")
    if len(reasons) > 5:
        _log(f"not checked: {len(reasons) - 5} more reason(s), in the report")
    if lines is not None:
        lines.end(fleet)
    elif args.json:
        json.dump(fleet.as_json(), sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        render_text(fleet, sys.stdout, top=args.top)
    if args.parquet:
        hosts, groups = write_parquet(fleet, args.parquet)
        _log(f"wrote {hosts} and {groups}")
    if args.html:
        _log(f"wrote {write_html(fleet, args.html)}")
    return {"bug": EXIT_INTERNAL, "no_host": EXIT_BAD_INPUT, "blocked": EXIT_BLOCKED,
            "unknown": EXIT_UNKNOWN, "ok": EXIT_OK}[fleet.outcome()]


def cmd_schema(args: argparse.Namespace) -> int:
    """``lpc schema [NAME]``: the JSON Schema of one of lpc's JSON outputs, or their names."""
    from lpc.schemas import SCHEMAS, schema

    if args.schema_name is None:
        for name, what in SCHEMAS.items():
            print(f"{name}: {what}")
        return EXIT_OK
    if args.schema_name not in SCHEMAS:
        raise UsageError(f"unknown schema {args.schema_name!r} (known: {', '.join(SCHEMAS)})")
    json.dump(schema(args.schema_name), sys.stdout, indent=2)
    print()
    return EXIT_OK


class UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lpc", description="Live-patch consistency: which tasks block a transition, and why.",
        epilog=exit_status_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=version_line())
    sub = _Subparsers(parser.add_subparsers(dest="command", metavar="COMMAND"))

    def source_options(p: argparse.ArgumentParser, many: bool = False) -> None:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--live", action="store_true", help="read this machine's /proc (root)")
        if not many:
            g.add_argument("--demo", action="store_true",
                           help="lpc's embedded recorded snapshot of a 6.18 machine, not this one")
        if many:
            g.add_argument("--dump", action="append", metavar="PATH",
                           help="a recorded dump per retry (repeat the option)")
        else:
            g.add_argument("--dump", metavar="PATH", help="a stack dump file or snapshot directory")
        p.add_argument("--symbols", metavar="PATH", help="kallsyms or System.map for the dump")
        p.add_argument("--symbols-mismatch-ok", action="store_true",
                       help="go on when the symbol table is of another kernel release")

    def patch_and_model_options(p: argparse.ArgumentParser) -> None:
        """The patch and how the models judge it: shared by check and fleet."""
        g = p.add_mutually_exclusive_group()
        g.add_argument("--patch", metavar="FUNC[,FUNC…]",
                       help="patched functions, each [object:]name[@sympos]")
        g.add_argument("--patch-file", metavar="PATH",
                       help="one patch function per line (a module file is read as --patch-module)")
        g.add_argument("--patch-module", metavar="FILE.ko",
                       help="the livepatch module (.ko, .ko.xz, .ko.zst, .ko.gz): its functions, "
                            "replacements and replace flag")
        p.add_argument("--unpatch", action="store_true",
                       help="the transition removes the patch (name the replacement functions)")
        p.add_argument("--replace", action="store_true",
                       help="the patch is an atomic replace (klp_patch.replace; a module's own "
                            "flag applies without it)")
        p.add_argument("--force", action="store_true", help="model a forced transition (klp)")
        p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                       help="set a model parameter by name, e.g. "
                            "regs_frames_unreliable=true; wins over the kernel's profile")
        p.add_argument("--no-cond-resched", action="store_true",
                       help="no cond_resched() switch point, whatever the release (klp)")
        p.add_argument("--no-reliable-stacks", action="store_true",
                       help="no HAVE_RELIABLE_STACKTRACE (klp)")

    def patch_options(p: argparse.ArgumentParser) -> None:
        patch_and_model_options(p)
        p.add_argument("--loaded", action="append", metavar="FUNC->MOD:NEW[,…]|PATH",
                       help="a patch already enabled, oldest first (repeat the option): "
                            "each function with its replacement, or its module file")
        p.add_argument("--kernel-release", metavar="RELEASE",
                       help="follow this kernel's rules (uname -r) instead of the dump's release")
        p.add_argument("--arch", metavar="ARCH",
                       help="the kernel's architecture when its release does not name it "
                            "(x86_64, arm64, ppc64le, s390x, loongarch64)")
        p.add_argument("--livepatch-state", metavar="FILE",
                       help="the machine's /sys/kernel/livepatch as recorded (livepatch.txt); "
                            "default: the live machine's, or the snapshot's")
        p.add_argument("--patch-states", metavar="FILE",
                       help="each task's patch_state as recorded (patch_state.txt)")
        p.add_argument("--name", metavar="MODULE",
                       help="the patch's name, its module's (a module file names itself): "
                            "how its own transition is told apart in /sys/kernel/livepatch")
        p.add_argument("--no-machine-state", action="store_true",
                       help="ignore the machine's livepatch state (loaded patches, refusals)")
        p.add_argument("--json", action="store_true", help="JSON on stdout")

    p = sub.add_parser("check", help="which tasks block this patch, under which model")
    source_options(p)
    patch_options(p)
    p.add_argument("--model", default="klp",
                   help="null, trivial, josh, klp, kpatch, kgraft, ksplice, "
                        "leave_<x>/switch_<y>, or all (default: klp)")
    p.add_argument("--plot", metavar="PATH",
                   help="draw tasks not yet switched vs time, per model, with each model's "
                        "signal rounds (PNG, SVG, PDF: from the suffix)")
    p.add_argument("--html", metavar="PATH",
                   help="one self-contained page: verdict, grouped culprits, the plot, the "
                        "models side by side, the evidence")
    p.add_argument("--exit-model", metavar="NAME",
                   help="with --model all: the model whose verdict is the exit status "
                        "(default: klp, the kernel's own)")
    p.add_argument("--jsonl", action="store_true",
                   help="JSON lines on stdout: a header, one object per task and model, "
                        "a summary last (`lpc schema check-jsonl`)")
    text = p.add_argument_group("text report")
    text.add_argument("--tasks", action="store_true",
                      help="one row per task, every task, instead of groups")
    text.add_argument("--group-by", choices=("function", "comm", "stack"),
                      help="group the tasks that do not switch by this instead of by "
                           "(function, verdict, outlook, reason, kind)")
    text.add_argument("--top", type=_positive_int, metavar="N",
                      help="show at most N groups (default: 15)")
    text.add_argument("--show-stacks", action="store_true",
                      help="print each group's stack (its first task's) under its row")
    text.add_argument("--color", choices=("auto", "never", "always"), default="auto",
                      help="colour the verdict and warnings: auto = on a terminal without "
                           "NO_COLOR (default)")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("capture", help="record this machine's stacks into a snapshot directory")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(run=cmd_capture)

    p = sub.add_parser("watch", help="repeat the check like the kernel's retry loop")
    source_options(p, many=True)
    patch_options(p)
    p.add_argument("--model", default="klp")
    p.add_argument("--retries", type=_positive_int, default=15)
    p.add_argument("--interval", type=_seconds, default=1.0, help="seconds between live retries")
    p.add_argument("--plot", metavar="PATH",
                   help="draw what each retry saw over what the first one predicted")
    p.set_defaults(run=cmd_watch)

    p = sub.add_parser("oracle", help="the real kernel (qemu) as oracle for lpc's klp model")
    oracle = p.add_subparsers(dest="oracle_command", metavar="SUBCOMMAND")
    oracle_sub = _Subparsers(oracle)
    o = oracle_sub.add_parser("run", help="boot the guest, run scenarios, record cases")
    o.add_argument("--scenario", action="append", metavar="NAME",
                   help="a scenario (repeat the option; default: all)")
    o.add_argument("--funcs", metavar="FUNC[,FUNC…]",
                   help="pass-through patch of these functions instead of the scenario's")
    o.add_argument("--work", metavar="DIR",
                   help="guest build and raw captures (default /tmp/lpc-oracle/KVER, "
                        "/tmp/lpc-oracle/chroot-NAME or /tmp/lpc-oracle/default)")
    o.add_argument("--out", default="oracle-cases", metavar="DIR",
                   help="where recorded case directories go (default ./oracle-cases)")
    o.add_argument("--per-kernel", action="store_true",
                   help="record into DIR/<major.minor>/<scenario> (as tests/data/oracle/6.12/…)")
    o.add_argument("--kver", metavar="ABI",
                   help="the kernel: linux-headers-ABI under /usr/src (of the host, or of "
                        "--chroot); default the newest *-cloud-amd64 there")
    o.add_argument("--chroot", metavar="DIR",
                   help="build the modules inside this chroot (headers that need a newer "
                        "gcc: tools/oracle/make-chroot.sh); needs root")
    o.add_argument("--vmlinuz", metavar="FILE",
                   help="the kernel image to boot (default: DIR/boot/vmlinuz-ABI of --chroot, "
                        "else Debian's linux-image-ABI package)")
    o.add_argument("--tools", metavar="DIR", help="tools/oracle of the source tree")
    o.add_argument("--no-build", action="store_true", help="reuse the guest already in --work")
    o = oracle_sub.add_parser("compare", help="lpc's klp model against a recorded case")
    o.add_argument("case_dir", metavar="CASE_DIR")
    o.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(run=cmd_oracle)
    p = sub.add_parser("simulate", help="prove or refute each model's guarantees in simulation")
    p.add_argument("--matrix", action="store_true",
                   help="model × patch class: holds, or refuted with a shrunk counterexample")
    p.add_argument("--models", metavar="M[,M…]", help="restrict --matrix to these models")
    p.add_argument("--budget", type=_positive_int, default=1000,
                   help="generated systems and schedules per model (default: 1000)")
    p.add_argument("--model", help="a model, as `lpc check` names it")
    p.add_argument("--scenario", help="a named scenario (see --list), with --model")
    p.add_argument("--list", action="store_true", help="list the scenarios")
    p.add_argument("--plot", metavar="PATH", help="plot tasks not yet switched vs time, per model")
    p.add_argument("--seed", type=int, default=1, help="seed of the timed runs")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.set_defaults(run=cmd_simulate)
    p = sub.add_parser("fleet", help="one patch checked on many machines' dumps (Dask)")
    fleet = _Subparsers(p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND"))
    f = fleet.add_parser("check", help="check every dump the glob matches; gather the results")
    d = f.add_mutually_exclusive_group(required=True)
    d.add_argument("--dumps", metavar="GLOB",
                   help="snapshot directories or dump files, e.g. 'snapshots/*/' (quote it)")
    d.add_argument("--dump-list", metavar="FILE",
                   help="the dumps, one path per line ('-': standard input; '#' starts a "
                        "comment): a fleet's manifest, instead of globbing shared storage")
    f.add_argument("--symbols-dir", metavar="DIR",
                   help="DIR/<release>/kallsyms (or kallsyms.gz), by each dump's release "
                        "(default: each snapshot's own kallsyms.txt)")
    f.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: a local cluster, one process "
                        "per core)")
    f.add_argument("--workers", type=_positive_int, metavar="N",
                   help="the local cluster's worker processes (default: one per core)")
    f.add_argument("--start-method", choices=("fork", "spawn", "forkserver"), default="fork",
                   help="how the local cluster starts its workers (default: fork, which "
                        "starts them with lpc already imported)")
    f.add_argument("--host-timeout", type=_seconds, metavar="SECONDS",
                   default=600.0,
                   help="a host checked for longer is reported as not checked and its "
                        "worker restarted (default: 600; 0: no limit)")
    f.add_argument("--model", default="klp",
                   help="a model, or several separated by commas (the first one's verdict "
                        "is each host's; --parquet has a row per host and model)")
    f.add_argument("--parquet", metavar="OUT.parquet",
                   help="one row per host and model; the blocking groups in "
                        "OUT.groups.parquet")
    f.add_argument("--html", metavar="PATH", help="one page: the counts and the plots")
    f.add_argument("--top", type=_positive_int, default=15, metavar="N",
                   help="rows per table of the text report (default 15; the rest are "
                        "counted)")
    f.add_argument("--json", action="store_true", help="JSON on stdout (`lpc schema fleet`)")
    f.add_argument("--jsonl", action="store_true",
                   help="JSON lines on stdout as hosts are answered: a header, a line per "
                        "host, a summary (`lpc schema fleet-jsonl`)")
    patch_and_model_options(f)
    f.add_argument("--no-machine-state", action="store_true",
                   help="ignore each snapshot's recorded livepatch state")
    p.set_defaults(run=cmd_fleet)
    p = sub.add_parser("schema", help="the JSON Schema of an output of lpc (none: list them)")
    p.add_argument("schema_name", nargs="?", metavar="NAME")
    p.set_defaults(run=cmd_schema)
    return parser


class _Subparsers:
    """``add_subparsers()``'s action, each subcommand's ``--help`` ending with
    the exit-status table."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("epilog", exit_status_text())
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        parser: argparse.ArgumentParser = self.action.add_parser(name, **kwargs)
        return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except UsageError as exc:
        _log(str(exc))
        return EXIT_USAGE
    except LpcError as exc:
        _log(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a file the input named, read or written: bad input, not a verdict
        where = f"{exc.filename}: " if exc.filename else ""
        _log(f"{where}{exc.strerror or exc}")
        return EXIT_BAD_INPUT
    except MemoryError:
        _log("out of memory: the input is larger than this machine can hold")
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug in lpc: never a verdict's exit status
        _log(f"internal error (a bug in lpc; please report it): {type(exc).__name__}: {exc}")
        if os.environ.get("LPC_DEBUG"):
            traceback.print_exc()
        return EXIT_INTERNAL


def run() -> NoReturn:
    """The ``lpc`` command (and ``python -m lpc``): :func:`main`, then exit at once.

    A checked dump leaves millions of array elements and half a million small
    objects behind; letting the interpreter free them one by one at exit costs
    more (~20 ms on a 100 MB dump) than the kernel dropping the whole process.
    Nothing of lpc's needs a finaliser: every file is written through a
    ``with`` block, and both streams are flushed here first.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # reader gone, or stream closed
            pass
    os._exit(code)
