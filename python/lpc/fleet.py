"""``lpc fleet check``: one patch judged on many machines' dumps, on Dask.

Each dump (a snapshot directory or a dump file) is judged exactly as ``lpc
check`` judges it (:func:`lpc.check.run_loaded`); only a small summary per
host travels back from the workers (:func:`check_host`), never a Dump. The
dumps are cut into batches, each one Dask task (:func:`check_batch`); the
patch is scattered to every worker once, and each worker loads each symbol
table once (:func:`_symbols`, a per-process cache keyed by the file).

:func:`gather` turns the per-host summaries into the fleet's answer: hosts by
verdict and kernel release, the blocking functions with how many hosts and
tasks each blocks, the worst hosts, and the dumps that could not be read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import json
import math
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lpc.errors import LpcError
from lpc.patch import Patch

__all__ = [
    "FLEET_SCHEMA_VERSION",
    "FleetRequest",
    "FleetResult",
    "check_batch",
    "check_host",
    "find_dumps",
    "gather",
    "read_dump_list",
    "run_fleet",
    "symbols_in_dir",
]

#: The layout of ``lpc fleet check --json`` (``lpc schema fleet``).
FLEET_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FleetRequest:
    """What every host is checked for: the patch, the models (the first one's
    verdict is the host's), their parameters, and where symbol tables are."""

    patch: Patch
    models: tuple[str, ...] = ("klp",)
    params: dict[str, Any] = field(default_factory=dict)
    #: ``DIR/<release>/kallsyms`` (or ``kallsyms.gz``): each dump's by its release.
    symbols_dir: str | None = None
    machine_state: bool = True


def find_dumps(pattern: str) -> list[str]:
    """The dump files and snapshot directories the glob matches, sorted
    (``snapshots/*/`` matches directories only; ``**`` recurses)."""
    out = []
    for path in glob.glob(pattern, recursive=True):
        path = path.rstrip("/") or path
        if os.path.isdir(path) or os.path.isfile(path):
            out.append(path)
    return sorted(set(out))


def read_dump_list(path: str) -> list[str]:
    """The dumps a manifest names, one per line, in its order, each once
    however spelt (``-``: standard input; blank lines and ``#`` comments
    skipped). A path that does not exist stays: its check says so, it is not
    dropped here."""
    from lpc.errors import InputFileError

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the dump list ({exc})", path) from exc
    out: dict[str, str] = {}  # absolute path -> the path as first listed
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            # ./x, x and /abs/x are one name: checked and counted once. Two names
            # of one snapshot through a symlink stay two hosts, each answered.
            out.setdefault(os.path.abspath(line), line.rstrip("/") or line)
    return list(out.values())


def symbols_in_dir(directory: str, release: str | None) -> str | None:
    """``directory/<release>/kallsyms`` or ``kallsyms.gz`` for this release, or None."""
    if release is None:
        return None
    for name in ("kallsyms", "kallsyms.gz"):
        path = os.path.join(directory, release, name)
        if os.path.isfile(path):
            return path
    return None


#: Per worker process: each symbol table read once (path, mtime, size → table).
_SYMBOLS: dict[tuple[str, int, int], Any] = {}


def _symbols(path: str, release: str | None) -> Any:
    from lpc.symbols import Symbols

    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    table = _SYMBOLS.get(key)
    if table is None:
        if path.endswith(".gz"):
            table = Symbols.from_kallsyms_gz(path)
        else:
            table = Symbols.from_kallsyms(path)
        if release is not None:
            # DIR/<release>/kallsyms is that release's table by its place.
            table.kernel_release = table.kernel_release or release
        _SYMBOLS[key] = table
    return table


def _blocking_groups(result: Any) -> list[dict[str, Any]]:
    """The tasks that do not switch now, grouped by (patched function, verdict,
    outlook): ``function`` is None for a task with no patched frame (running,
    unreliable stack)."""
    from lpc.models import Outlook, Verdict

    groups: Counter[tuple[str | None, str, str]] = Counter()
    for outcome, tasks in result.tasks.distinct():
        if outcome.verdict is Verdict.SWITCH and outcome.outlook is Outlook.SWITCHED:
            continue
        function = result.tasks.facts[int(tasks[0])].patched_function
        groups[(function, outcome.verdict.value, outcome.outlook.value)] += len(tasks)
    return [{"function": f, "verdict": v, "outlook": o, "tasks": n}
            for (f, v, o), n in sorted(groups.items(), key=lambda kv: (-kv[1], str(kv[0])))]


def check_host(path: str, request: FleetRequest) -> dict[str, Any]:
    """One host: its summary per model, as ``lpc check --json`` prints it, its
    verdict (with the machine's state) and its blocking groups; or, for a dump
    that cannot be read, ``error``."""
    from lpc import source
    from lpc.check import CheckRequest, run_loaded

    try:
        dump = source.parse_dump_path(path)
        symbols = None
        if request.symbols_dir is not None:
            table = symbols_in_dir(request.symbols_dir, dump.kernel_release)
            if table is not None:
                symbols = _symbols(table, dump.kernel_release)
        if symbols is None and dump.kallsyms_path is not None:
            symbols = _symbols(dump.kallsyms_path, dump.kernel_release)
            symbols.kernel_release = dump.kernel_release  # recorded together
        where = f"symbols from {symbols.source}" if symbols is not None else "no symbol table"
        notes = source.check_same_kernel(dump, symbols)
        check = CheckRequest(dump=path, symbols=None, patch=request.patch,
                             models=request.models, params=request.params,
                             machine_state=request.machine_state)
        report = run_loaded(check, dump, symbols, f"dump {path} ({dump.source_format}); {where}",
                            notes)
    except (LpcError, OSError) as exc:
        return {"dump": path, "error": str(exc), "kind": "bad_input"}
    except Exception as exc:  # a bug in lpc: said per host, never dropped
        return {"dump": path, "error": f"internal error (a bug in lpc): {type(exc).__name__}: "
                                       f"{exc}", "kind": "internal"}
    first = request.models[0] if request.models != ("all",) else "klp"
    return {
        "dump": path,
        "kernel_release": dump.kernel_release,
        "host_class": dump.metadata.get("host_class") or dump.metadata.get("machine"),
        "symbols": None if symbols is None else symbols.source,
        "converges": report.converges_under(first),
        "summaries": {name: r.summary() for name, r in report.results.items()},
        "model": first,
        "blocking": _blocking_groups(report.results[first]),
    }


def check_batch(paths: Sequence[str], request: FleetRequest, batch: str | None = None,
                topic: str | None = None,
                host_timeout: float | None = None) -> list[dict[str, Any]]:
    """One Dask task: many hosts, each :func:`check_host`. With a ``topic`` and
    ``host_timeout``, the worker's watchdog tells the client (an event on
    ``topic``) which host of the batch has been checked for too long."""
    worker = _this_worker() if topic is not None and host_timeout is not None else None
    out = []
    try:
        for index, path in enumerate(paths):
            if worker is not None:
                _watch(worker, (topic, batch, index, host_timeout, time.monotonic()))
            out.append(check_host(path, request))
    finally:
        if worker is not None:
            _watch(worker, None)
    return out


#: In a worker process: for each worker (threads of one process may be
#: several), the host it is checking as (topic, batch, index, timeout, since)
#: and the worker; and the one thread that watches them. Only a host past its
#: timeout costs a message: an event per host cost about 1 ms of it (measured).
_CHECKING: dict[str, tuple[tuple[Any, ...] | None, Any]] = {}
_WATCHDOG: list[threading.Thread] = []


def _forget_watched() -> None:
    """In a forked child: the parent's watched hosts and watchdog are not its own."""
    _CHECKING.clear()
    _WATCHDOG.clear()


os.register_at_fork(after_in_child=_forget_watched)


def _watch(worker: Any, checking: tuple[Any, ...] | None) -> None:
    _CHECKING[worker.address] = (checking, worker)
    # A forked worker inherits the list, not the thread (fork keeps only the
    # thread that forked), so look whether it runs.
    if not any(t.is_alive() for t in _WATCHDOG):
        thread = threading.Thread(target=_watchdog, daemon=True, name="lpc-fleet-watchdog")
        _WATCHDOG[:] = [thread]
        thread.start()


def _watchdog() -> None:
    """Says, once, which host has been checked for longer than its timeout:
    the task's thread cannot be stopped, but the client can restart the
    worker, and reports that host."""
    said: set[tuple[Any, ...]] = set()
    while True:
        time.sleep(0.25)
        for address, (checking, worker) in list(_CHECKING.items()):
            if checking is None or checking in said:
                continue
            topic, batch, index, timeout, since = checking
            if time.monotonic() - since > timeout:
                worker.log_event(topic, {"batch": batch, "index": index, "worker": address})
                said.add(checking)


def _this_worker() -> Any:
    """The Dask worker running this task, or None when called outside one."""
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def dump_bytes(path: str) -> int:
    """What checking a dump costs, in bytes read: the file; or a snapshot's
    stacks and its own symbol table, what a check's time follows (its small
    files are left out: a scandir and a stat for each cost the client 50 us a
    host, 0.1 s of 2,000 that no worker could use). A file that cannot be
    looked at weighs 0: its error comes from the check, not from here."""
    from lpc.dump import SNAPSHOT_KALLSYMS, SNAPSHOT_STACKS

    total = 0
    for name in (SNAPSHOT_STACKS, SNAPSHOT_KALLSYMS) if os.path.isdir(path) else ("",):
        try:
            total += os.stat(os.path.join(path, name) if name else path).st_size
        except OSError:
            pass
    return total


def batches(paths: Sequence[str], workers: int,
            sizes: Sequence[int] | None = None) -> list[list[str]]:
    """About four batches per worker, so that a slow batch does not leave the
    others idle and each task still carries many dumps; cut by bytes when the
    ``sizes`` are known (a check costs about linearly in its dump's size, and a
    10,000-task host would otherwise make its batch the run's tail), else by
    count. Batches keep the dumps' order."""
    want = max(1, workers) * 4
    if sizes is None:
        size = max(1, math.ceil(len(paths) / want))
        return [list(paths[i:i + size]) for i in range(0, len(paths), size)]
    # Each dump counts at least 1 byte, so empty files still spread out.
    weights = [max(1, n) for n in sizes]
    target = sum(weights) / want
    out: list[list[str]] = []
    current: list[str] = []
    held = 0
    for path, weight in zip(paths, weights, strict=True):
        if current and held + weight / 2 > target:
            out.append(current)
            current, held = [], 0
        current.append(path)
        held += weight
    if current:
        out.append(current)
    return out


@dataclass
class FleetResult:
    """Every host's summary (or error), in the order of the dumps."""

    request: FleetRequest
    hosts: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    #: Seconds: starting the cluster, and checking (submit to last result).
    startup_s: float = 0.0
    check_s: float = 0.0
    workers: int = 0

    @property
    def model(self) -> str:
        return self.request.models[0] if self.request.models != ("all",) else "klp"

    def counts(self) -> Counter[bool | None]:
        return Counter(h["converges"] for h in self.hosts)

    def by_release(self) -> dict[str, Counter[str]]:
        return self._by("kernel_release")

    def by_class(self) -> dict[str, Counter[str]]:
        """Verdict counts by host class (meta.txt's host_class, else machine)."""
        return self._by("host_class")

    def _by(self, key: str) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for h in self.hosts:
            out[h[key] or "unknown"][_word(h["converges"])] += 1
        return dict(sorted(out.items()))

    def by_function(self) -> list[dict[str, Any]]:
        hosts: Counter[str | None] = Counter()
        tasks: Counter[str | None] = Counter()
        for h in self.hosts:
            seen = set()
            for g in h["blocking"]:
                tasks[g["function"]] += g["tasks"]
                seen.add(g["function"])
            for f in seen:
                hosts[f] += 1
        return [{"function": f, "hosts": hosts[f], "tasks": tasks[f]}
                for f in sorted(hosts, key=lambda f: (-hosts[f], -tasks[f], str(f)))]

    def worst(self, n: int = 10) -> list[dict[str, Any]]:
        """Hosts that do not converge first, then cannot tell; most blocked tasks first."""
        rank = {False: 0, None: 1, True: 2}

        def key(h: dict[str, Any]) -> tuple[int, int, float, str]:
            s = h["summaries"][h["model"]]
            return (rank[h["converges"]], -(s["blocked"] + s["running"] + s["unreliable"]),
                    -(s["eta_s"] or 0.0), h["dump"])
        return [h for h in sorted(self.hosts, key=key) if h["converges"] is not True][:n]

    def outcome(self) -> str:
        """What the fleet's answer is, for the command's exit status: ``bug`` (a
        host's check raised an error that is no LpcError), ``no_host`` (nothing
        readable), ``blocked`` (a host does not converge), ``unknown`` (a host
        cannot tell, or was not checked), ``ok``."""
        if any(e.get("kind") == "internal" for e in self.errors):
            return "bug"
        if not self.hosts:
            return "no_host"
        counts = self.counts()
        if counts[False]:
            return "blocked"
        # A host not checked is a host whose answer nobody knows: never "every
        # host converges".
        return "unknown" if counts[None] or self.errors else "ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": FLEET_SCHEMA_VERSION,
            "patch": self.request.patch.as_json(),
            "model": self.model,
            "hosts": [host_json(h) for h in self.hosts],
            "by_function": self.by_function(),
            "errors": [{"dump": e["dump"], "error": e["error"], "kind": e["kind"]}
                       for e in self.errors],
        }


def host_json(h: dict[str, Any]) -> dict[str, Any]:
    """A host as ``--json`` and ``--jsonl`` write it: its summary under the
    fleet's model is exactly the one ``lpc check --json`` prints."""
    return {"dump": h["dump"], "kernel_release": h["kernel_release"],
            "host_class": h["host_class"], "converges": h["converges"],
            "summary": h["summaries"][h["model"]]}


class JsonLines:
    """``lpc fleet check --jsonl``: a header, then a line per host as its
    answer comes back (``host``, or ``not_checked`` with why), then a summary;
    each line flushed, so a fleet's answers can be read while it runs."""

    def __init__(self, out: Any, request: FleetRequest, dumps: int) -> None:
        self.out, self.said = out, set[tuple[str, str]]()
        model = request.models[0] if request.models != ("all",) else "klp"
        self._line({"schema_version": FLEET_SCHEMA_VERSION, "kind": "header",
                    "patch": request.patch.as_json(), "model": model, "dumps": dumps})

    def _line(self, doc: dict[str, Any]) -> None:
        self.out.write(json.dumps(doc, sort_keys=True) + "\n")
        self.out.flush()

    def answers(self, records: Sequence[dict[str, Any]]) -> None:
        for r in records:
            if "error" in r:
                self.said.add((r["dump"], r["error"]))
                self._line({"kind": "not_checked", "dump": r["dump"], "error": r["error"],
                            "error_kind": r["kind"]})
            else:
                self._line({"kind": "host", **host_json(r)})

    def end(self, fleet: FleetResult) -> None:
        """The errors only the final bookkeeping found, then the summary."""
        self.answers([e for e in fleet.errors if (e["dump"], e["error"]) not in self.said])
        counts = fleet.counts()
        self._line({"kind": "summary", "hosts": len(fleet.hosts), "converge": counts[True],
                    "do_not": counts[False], "cannot_tell": counts[None],
                    "not_checked": len(fleet.errors), "by_function": fleet.by_function(),
                    "outcome": fleet.outcome()})


def _word(converges: bool | None) -> str:
    return {True: "converges", False: "does_not", None: "cannot_tell"}[converges]


def gather(request: FleetRequest, results: Sequence[dict[str, Any]],
           paths: Sequence[str] | None = None) -> FleetResult:
    """Split the per-host results into hosts and errors, in the order of
    ``paths`` (the dumps asked for; sorted when not given). Each dump asked for
    has exactly one answer: one missing or given twice is said as a bug in lpc
    (an ``internal`` error), never dropped or counted twice."""
    if paths is None:
        paths = sorted({r["dump"] for r in results})
    first: dict[str, dict[str, Any]] = {}
    bugs = []
    for r in results:
        if r["dump"] in first:
            bugs.append({"dump": r["dump"], "kind": "internal",
                         "error": "internal error (a bug in lpc): checked twice; the first "
                                  "answer is kept"})
        else:
            first[r["dump"]] = r
    ordered = []
    for path in dict.fromkeys(paths):
        ordered.append(first.pop(path) if path in first else {
            "dump": path, "kind": "internal",
            "error": "internal error (a bug in lpc): the fleet lost track of this dump"})
    ordered += first.values()  # answers for dumps nobody asked for: shown, not hidden
    return FleetResult(request, [h for h in ordered if "error" not in h],
                       [h for h in ordered if "error" in h] + bugs)


def _log(message: str) -> None:
    print(f"lpc: {message}", file=sys.stderr, flush=True)


class FleetError(LpcError, RuntimeError):
    """The fleet's cluster cannot be used: its scheduler is unreachable, say."""


#: A host's check may take this long before its worker is restarted and the
#: host reported as not checked (the largest real dump, 427,735 tasks, took
#: 59-97 s under every model at once).
HOST_TIMEOUT_S = 600.0

#: How long to try the scheduler given with ``--scheduler``.
CONNECT_TIMEOUT_S = 10.0


def run_fleet(paths: Sequence[str], request: FleetRequest, scheduler: str | None = None,
              workers: int | None = None, processes: bool = True,
              log: Callable[[str], None] = _log, host_timeout: float | None = HOST_TIMEOUT_S,
              start_method: str = "fork",
              connect_timeout: float = CONNECT_TIMEOUT_S,
              on_results: Callable[[list[dict[str, Any]]], None] | None = None) -> FleetResult:
    """Check every dump on a Dask cluster: the one at ``scheduler``
    (``tcp://host:8786``), else a local one of ``workers`` processes (default:
    one per core), one thread each, started with ``start_method``.

    ``on_results`` is handed each batch of answers as it comes back (in the
    order they come: ``lpc fleet check --jsonl``). A host whose check runs past
    ``host_timeout`` seconds is reported as not checked and its worker restarted; a batch whose worker dies (memory limit,
    crash) is retried one host per task, and a host that kills its worker
    again is reported, the others checked."""
    import dask

    unique = list(dict.fromkeys(paths))  # each dump's answer is found by its path
    if len(unique) < len(paths):
        log(f"{len(paths) - len(unique)} dump(s) named twice: each checked once")
    paths = unique
    settings: dict[str, Any] = {}
    if scheduler is None:
        # Dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536: glibc
        # then hands every freed numpy column back to the kernel and maps it
        # again for the next host, which doubles the cost of a check (measured:
        # 4.1 -> 8.6 ms per host). The workers keep glibc's default. Nor does
        # the statistical profiler sample every worker's stack each 10 ms, nor
        # do the event loops wake every 20 ms to see whether they are blocked,
        # nor is each process's CPU and memory read twice a second: idle, a
        # two-worker cluster then costs 0.06 CPU-seconds in 5 s, not 0.36
        # (measured), on a machine whose two cores do the checking. The
        # nannies still enforce the memory limit, looking every 0.5 s.
        settings = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                    "distributed.worker.profile.enabled": False,
                    "distributed.admin.tick.interval": "1s",
                    "distributed.admin.system-monitor.interval": "5s",
                    "distributed.worker.memory.monitor-interval": "500ms",
                    "distributed.worker.multiprocessing-method": _start_method(start_method)}
        if host_timeout is not None:
            # A check that holds the GIL without end silences the worker's
            # watchdog and its heartbeat alike: the scheduler then restarts the
            # worker after this long, and the host ends up reported as lost.
            settings["distributed.scheduler.worker-ttl"] = f"{max(host_timeout, 30.0):g}s"
    # Held for the whole run: a worker restarted after a timeout starts the same way.
    with dask.config.set(settings):
        return _run(paths, request, scheduler, workers, processes, log, host_timeout,
                    connect_timeout, on_results)


def _start_method(wanted: str) -> str:
    """``fork`` by default: a forked worker starts with Dask, numpy and lpc
    already imported (0.15 s for two workers, against 0.6 s when each spawned
    one imports them again: measured, benches/test_bench_fleet.py), which is a
    tenth of a 2,000-host run on two cores. Where fork is not offered, spawn."""
    import multiprocessing

    offered = multiprocessing.get_all_start_methods()
    if wanted not in ("fork", "spawn", "forkserver"):
        raise ValueError(f"start method {wanted!r}: expected fork, spawn or forkserver")
    return wanted if wanted in offered else "spawn"


def _run(paths: Sequence[str], request: FleetRequest, scheduler: str | None,
         workers: int | None, processes: bool, log: Callable[[str], None],
         host_timeout: float | None, connect_timeout: float,
         on_results: Callable[[list[dict[str, Any]]], None] | None) -> FleetResult:
    import logging
    from distributed import Client, LocalCluster

    # What a forked worker should not import again (the check's own modules).
    import lpc.check  # noqa: F401
    import lpc.source  # noqa: F401

    t0 = time.perf_counter()
    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise FleetError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                             f"{connect_timeout:g} s ({exc})") from exc
    else:
        import gc

        # A forked worker inherits this process's objects; its collector would
        # walk them all at each full collection (and copy every page it marks):
        # frozen, they are left out. Measured on 2,000 hosts: the workers' own
        # overhead 0.6-1.2 ms per host without, 0.03-0.5 with (a noisy machine).
        gc.freeze()
        try:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                   threads_per_worker=1, processes=processes,
                                   dashboard_address=None, silence_logs=logging.WARNING)
        finally:
            gc.unfreeze()
        client = Client(cluster)
    try:
        try:  # a scheduler whose workers have not come (yet): said, not waited on for ever
            client.wait_for_workers(1, timeout=_WORKERLESS_S)
        except TimeoutError as exc:
            raise FleetError(f"--scheduler {scheduler}: no Dask worker joined within "
                             f"{_WORKERLESS_S:g} s") from exc
        n_workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        run = _FleetRun(client, request, host_timeout, log, on_results)
        parts = batches(paths, n_workers, [dump_bytes(p) for p in paths])
        log(f"{len(paths)} dump(s) in {len(parts)} batch(es) on {n_workers} worker(s)")
        for part in parts:
            run.submit(part)
        run.collect(len(paths))
        out = gather(request, run.results, paths)
        out.startup_s, out.check_s = startup, time.perf_counter() - t1
        out.workers = n_workers
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: What a cancelled Dask future raises (distributed's are concurrent.futures').
_CANCELLED = (asyncio.CancelledError, concurrent.futures.CancelledError)

#: How often the client looks at hung hosts and at the workers, in seconds.
_POLL_S = 1.0

#: With no worker for this long, the hosts still waiting are said not checked.
_WORKERLESS_S = 60.0

#: How long re-sending the patch to the workers may take.
_SCATTER_S = 30.0


@dataclass
class _Batch:
    """One Dask task's hosts, how often they were sent, and whether the task
    runs alone on the cluster (to tell which host kills its worker)."""

    future: Any
    paths: list[str]
    sent: int
    alone: bool


class _FleetRun:
    """The batches in flight and what came back; :meth:`collect` waits for
    them, retries the batches Dask dropped, finds the hosts that kill their
    worker, and stops hung hosts."""

    def __init__(self, client: Any, request: FleetRequest, host_timeout: float | None,
                 log: Callable[[str], None],
                 on_results: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        import itertools
        import uuid

        self.client, self.host_timeout, self.log = client, host_timeout, log
        self.on_results = on_results
        self._request = request
        self.request = client.scatter(request, broadcast=True)
        self.topic = f"lpc-fleet-{uuid.uuid4().hex[:12]}"
        self.results: list[dict[str, Any]] = []
        self.batches: dict[str, _Batch] = {}
        #: Hosts of a batch whose worker died under it, each to be checked alone.
        self.suspects: list[tuple[str, int]] = []
        #: Batches that found no worker to send the patch to: (paths, sent, alone).
        self.waiting: list[tuple[list[str], int, bool]] = []
        #: (worker address, batch key, index): hosts a worker's watchdog said
        #: are past the timeout (appended by the client's event loop thread).
        self.hung: list[tuple[str, str, int]] = []
        self._numbers = itertools.count()
        if host_timeout is not None:
            client.subscribe_topic(self.topic, self._host_hung)

    def _add(self, records: Iterable[dict[str, Any]]) -> None:
        """Hosts answered (or said not checked): kept, and handed on at once."""
        records = list(records)
        self.results.extend(records)
        if self.on_results is not None:
            self.on_results(records)

    def _host_hung(self, event: tuple[float, dict[str, Any]]) -> None:
        msg = event[1]
        self.hung.append((msg["worker"], msg["batch"], msg["index"]))

    def submit(self, paths: list[str], sent: int = 1, alone: bool = False) -> None:
        if self.request.status != "finished":
            # The patch was scattered to workers that are gone (restarted after a
            # timeout, or dead): send it again, once some worker is there to
            # take it (scatter would wait for one without end).
            if not self._workers():
                self.waiting.append((paths, sent, alone))
                return
            try:
                self.request = self.client.scatter(self._request, broadcast=True,
                                                   timeout=_SCATTER_S)
            except (TimeoutError, OSError):
                self.waiting.append((paths, sent, alone))
                return
        key = f"{self.topic}-{next(self._numbers)}"
        future = self.client.submit(check_batch, paths, self.request, key, self.topic,
                                    self.host_timeout, key=key)
        self.batches[key] = _Batch(future, paths, sent, alone)

    def _workers(self) -> list[str]:
        return list(self.client.scheduler_info(n_workers=-1)["workers"])

    def collect(self, total: int) -> None:
        from distributed import wait

        reported = 0
        workerless_since: float | None = None
        while self.batches or self.suspects or self.waiting:
            if self.waiting and self._workers():
                waiting, self.waiting = self.waiting, []
                for paths, sent, alone in waiting:
                    self.submit(paths, sent, alone)
            if not self.batches and self.suspects:
                # Only now, with nothing else on the cluster, does a worker that
                # dies under a host say that this host killed it (a task queued
                # behind it on the same worker dies with it).
                path, sent = self.suspects.pop(0)
                self.submit([path], sent, alone=True)
            futures = [b.future for b in self.batches.values()]
            done: set[Any] = set()
            if not futures:
                time.sleep(_POLL_S)  # nothing in flight: waiting for a worker
            else:
                try:
                    done = set(wait(futures, timeout=_POLL_S,
                                    return_when="FIRST_COMPLETED").done)
                except TimeoutError:
                    pass
                except _CANCELLED:  # wait() gives up on a cancelled one: look at each
                    done = {f for f in futures if f.done()}
            for future in done:
                if future.key in self.batches:
                    self._finished(self.batches.pop(future.key))
            self._stop_hung_hosts()
            if not done:  # no news: are there workers at all?
                workerless_since = self._give_up_without_workers(workerless_since)
            checked = len(self.results)
            if checked - reported >= max(1, total // 10) or (checked == total and reported
                                                             < total):
                self.log(f"{checked}/{total} hosts checked")
                reported = checked

    def _give_up_without_workers(self, since: float | None) -> float | None:
        """With no worker at all for a while (a cluster whose workers died, or
        were dropped stuck, and were not replaced), every host still waiting is
        said not checked instead of waited for without end. Returns since when
        none was seen."""
        if self._workers():
            return None
        now = time.monotonic()
        if since is None or now - since < _WORKERLESS_S:
            return since if since is not None else now
        why = f"no Dask worker was left to check it (none for {_WORKERLESS_S:g} s)"
        for batch in self.batches.values():
            self.client.cancel([batch.future])
            self._add({"dump": p, "kind": "worker", "error": why} for p in batch.paths)
        self.batches.clear()
        for paths, _, _ in self.waiting:
            self._add({"dump": p, "kind": "worker", "error": why} for p in paths)
        self.waiting.clear()
        self._add({"dump": p, "kind": "worker", "error": why} for p, _ in self.suspects)
        self.suspects.clear()
        return None

    def _finished(self, batch: _Batch) -> None:
        """What a batch's end says: its hosts' answers; or it goes again (Dask
        dropped it, or its result was on a worker that died before it was
        fetched); or its hosts are checked one at a time (its worker died each
        time it ran); or each of its hosts is said not checked, with why."""
        from distributed import KilledWorker

        future = batch.future
        status = future.status
        if status == "finished":
            try:
                self._add(future.result())
                return
            except _CANCELLED:
                status = "cancelled"
            except Exception as unreadable:  # a result that cannot be fetched or read
                self._not_checked(batch, unreadable)
                return
        if status != "error":  # cancelled by Dask, or lost since: send it again
            if batch.sent < 3:
                self.submit(batch.paths, batch.sent + 1, batch.alone)
            else:
                self._not_checked(batch, RuntimeError(f"Dask dropped it {batch.sent} times"))
            return
        failure: BaseException | None
        try:
            failure = future.exception()
        except Exception as why:  # noqa: BLE001 - whatever it is, it is said per host
            failure = why
        if isinstance(failure, KilledWorker) and not batch.alone:
            # A host of it likely takes its worker down (the memory limit, a
            # crash, a hang that stops the worker's heartbeat); Dask gave up
            # after its allowed failures. Find which.
            self.log(f"the worker died each time it ran a batch of {len(batch.paths)} "
                     "host(s); checking them one at a time")
            self.suspects += [(p, batch.sent) for p in batch.paths]
            return
        self._not_checked(batch, failure)

    def _not_checked(self, batch: _Batch, exc: BaseException | None) -> None:
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            error, kind = ("its check killed the Dask worker each time it ran, alone on the "
                           "cluster (the worker's memory limit, a crash, or a hang that "
                           "stopped the worker's heartbeat): not checked"), "lost"
        else:
            error, kind = (f"the Dask worker failed to run the check: "
                           f"{type(exc).__name__}: {exc}"), "worker"
        self._add({"dump": p, "error": error, "kind": kind} for p in batch.paths)

    def _stop_hung_hosts(self) -> None:
        """A host checked for longer than the timeout is reported, its batch
        cancelled and its worker restarted (a thread cannot be stopped; its
        process can); the batch's other hosts go again in a new task."""
        while self.hung:
            worker, key, index = self.hung.pop(0)
            batch = self.batches.get(key)
            if batch is None or batch.future.done():  # it ended meanwhile: its end says
                continue
            del self.batches[key]
            self._add([{"dump": batch.paths[index], "kind": "timeout",
                        "error": f"its check ran past --host-timeout "
                                 f"({self.host_timeout:g} s): not checked"}])
            self.client.cancel([batch.future])
            self.log(f"{batch.paths[index]}: checked for more than {self.host_timeout:g} s; "
                     f"restarting worker {worker}")
            self._restart(worker)
            rest = batch.paths[:index] + batch.paths[index + 1:]
            if rest:
                self.submit(rest, batch.sent, batch.alone)

    def _restart(self, worker: str) -> None:
        """Restart a worker through its nanny. Without one (workers started
        with --no-nanny, or threads of this process) or gone already, it is
        dropped from the scheduler instead, said on stderr."""
        try:
            status = self.client.restart_workers([worker], timeout=60, raise_for_error=False)
            why = status.get(worker)
        except Exception as exc:  # noqa: BLE001 - no nanny, or no such worker any more
            why = f"{type(exc).__name__}: {exc}"
        if why != "OK":
            # Still busy with the hung host, it would be given more work it never
            # starts: the scheduler forgets it, and its other tasks go elsewhere.
            self.log(f"worker {worker} could not be restarted ({why}): it is dropped from "
                     "the cluster, still busy with that host")
            self._drop(worker)

    def _drop(self, worker: str) -> None:
        async def remove(dask_scheduler: Any) -> None:
            await dask_scheduler.remove_worker(address=worker, close=True,
                                               stimulus_id=f"lpc-fleet-stuck-{time.time()}")

        try:
            self.client.run_on_scheduler(remove)
        except Exception as exc:  # noqa: BLE001 - said; the 60 s give-up still holds
            self.log(f"worker {worker} could not be dropped either ({exc})")


def render_text(fleet: FleetResult, out: Any, top: int = 15) -> None:
    """For people: verdict counts by release and host class; then, ``top`` rows
    each, the blocking functions, the worst hosts, the hosts with evidence
    problems and the reasons dumps were not checked (the rest counted, never
    cut silently; ``--json`` and ``--parquet`` have every row)."""
    counts = fleet.counts()
    total = len(fleet.hosts)
    print(f"patch {_patch_text(fleet.request.patch)}"
          f" under {fleet.model}: {total} host(s) checked, {len(fleet.errors)} not checked",
          file=out)
    print(f"  converge: {counts[True]}   do not: {counts[False]}   cannot tell: {counts[None]}",
          file=out)
    curve = converging_curve(fleet)
    if curve:
        def by(share: float) -> str:
            return f"{curve[max(0, math.ceil(share * len(curve)) - 1)][0]:g} s"
        print(f"  converging hosts done (each by its eta): half by {by(0.5)}, 90 % by "
              f"{by(0.9)}, all by {by(1.0)}", file=out)
    for title, groups in (("kernel release", fleet.by_release()),
                          ("host class", fleet.by_class())):
        print(f"\nby {title}:", file=out)
        print(f"  {title:<32} {'converge':>9} {'do not':>8} {'cannot tell':>12}", file=out)
        for name, c in groups.items():
            print(f"  {name:<32} {c['converges']:>9} {c['does_not']:>8} {c['cannot_tell']:>12}",
                  file=out)
    blockers = fleet.by_function()
    if blockers:
        print("\ntop blocking functions:", file=out)
        print(f"  {'function':<40} {'hosts':>7} {'tasks':>8}", file=out)
        for b in blockers[:top]:
            name = b["function"] or "(no patched frame: running/unreliable)"
            print(f"  {name:<40} {b['hosts']:>7} {b['tasks']:>8}", file=out)
        _more(len(blockers) - top, "function", out)
    worst = fleet.worst(len(fleet.hosts))
    if worst:
        print("\nworst hosts:", file=out)
        for h in worst[:top]:
            s = h["summaries"][h["model"]]
            print(f"  {h['dump']}: {_word(h['converges']).replace('_', ' ')}, "
                  f"{s['blocked']} blocked, {s['running']} running, {s['unreliable']} "
                  f"unreliable of {s['tasks']}: {s['reason'] or ''}", file=out)
        _more(len(worst) - top, "host", out)
    problems = [(h["dump"], _evidence_problems(h["summaries"][h["model"]]["evidence"]))
                for h in fleet.hosts]
    problems = [(d, p) for d, p in problems if p]
    if problems:
        print("\nevidence problems:", file=out)
        for dump, p in problems[:top]:
            print(f"  {dump}: {'; '.join(p)}", file=out)
        _more(len(problems) - top, "host", out)
    if fleet.errors:
        print("\nnot checked (unreadable, timed out, or lost with their worker):", file=out)
        reasons = error_groups(fleet.errors)
        for (kind, error), dumps in reasons[:top]:
            where = dumps[0] if len(dumps) == 1 else (
                f"{len(dumps)} dumps, e.g. {', '.join(dumps[:3])}")
            print(f"  {where}: {error} [{kind}]", file=out)
        _more(len(reasons) - top, "reason", out)


def error_groups(errors: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str], list[str]]]:
    """The dumps not checked, grouped by (kind, message) — a patch function
    missing from a release's table is one message for all its hosts — most
    dumps first."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in errors:
        groups[(e["kind"], e["error"])].append(e["dump"])
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _more(hidden: int, what: str, out: Any) -> None:
    if hidden > 0:
        print(f"  … and {hidden} more {what}(s) (--top N shows more; --json has them all)",
              file=out)


def _patch_text(patch: Patch) -> str:
    names = [f.name for f in patch.functions]
    return ",".join(names[:5]) + (f" (+{len(names) - 5})" if len(names) > 5 else "")


def _evidence_problems(evidence: dict[str, Any]) -> list[str]:
    """What weakens a host's verdict: untrusted or cut stacks, unread lines, a cut input."""
    out = []
    if evidence.get("untrusted_stacks"):
        out.append(f"{evidence['untrusted_stacks']} untrusted stack(s)")
    if evidence.get("incomplete_stacks"):
        out.append(f"{evidence['incomplete_stacks']} incomplete stack(s)")
    headers = evidence.get("unreadable_headers") or {}
    if headers.get("tasks"):
        out.append(f"{headers['tasks']} unreadable task header(s)")
    if evidence.get("input_cut"):
        out.append("the input was cut")
    if evidence.get("skipped_lines"):
        out.append(f"{evidence['skipped_lines']} skipped line(s)")
    if evidence.get("lost"):
        out.append("patched frames lost: " + ", ".join(map(str, evidence["lost"])))
    return out


def write_parquet(fleet: FleetResult, path: str) -> tuple[str, str]:
    """Two tables: one row per host × model (``path``), and one per blocking
    group (host, function, verdict, outlook, tasks) beside it
    (``out.groups.parquet``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[Any]] = defaultdict(list)
    for h in fleet.hosts:
        for model, s in h["summaries"].items():
            rows["dump"].append(h["dump"])
            rows["kernel_release"].append(h["kernel_release"])
            rows["host_class"].append(h["host_class"])
            rows["model"].append(model)
            rows["host_converges"].append(h["converges"] if model == h["model"] else None)
            for k in ("tasks", "switch", "blocked", "running", "unreliable"):
                rows[k].append(s[k])
            rows["converges"].append(s["converges"])
            rows["eta_s"].append(s["eta_s"])
            rows["reason"].append(s["reason"])
            rows["evidence_problems"].append("; ".join(_evidence_problems(s["evidence"])))
    schema = pa.schema([("dump", pa.string()), ("kernel_release", pa.string()),
                        ("host_class", pa.string()), ("model", pa.string()),
                        ("host_converges", pa.bool_()), ("tasks", pa.int64()),
                        ("switch", pa.int64()), ("blocked", pa.int64()),
                        ("running", pa.int64()), ("unreliable", pa.int64()),
                        ("converges", pa.bool_()), ("eta_s", pa.float64()),
                        ("reason", pa.string()), ("evidence_problems", pa.string())])
    pq.write_table(pa.Table.from_pydict(dict(rows), schema=schema) if rows
                   else schema.empty_table(), path)
    groups: dict[str, list[Any]] = defaultdict(list)
    for h in fleet.hosts:
        for g in h["blocking"]:
            groups["dump"].append(h["dump"])
            groups["kernel_release"].append(h["kernel_release"])
            for k in ("function", "verdict", "outlook", "tasks"):
                groups[k].append(g[k])
    gschema = pa.schema([("dump", pa.string()), ("kernel_release", pa.string()),
                         ("function", pa.string()), ("verdict", pa.string()),
                         ("outlook", pa.string()), ("tasks", pa.int64())])
    base = path[:-len(".parquet")] if path.endswith(".parquet") else path
    gpath = base + ".groups.parquet"
    pq.write_table(pa.Table.from_pydict(dict(groups), schema=gschema) if groups
                   else gschema.empty_table(), gpath)
    return path, gpath


def converging_curve(fleet: FleetResult) -> list[tuple[float, int]]:
    """(seconds since enabled, hosts converged by then), from each converging
    host's eta (0 when it has none: every task switches at once)."""
    etas = sorted(h["summaries"][h["model"]]["eta_s"] or 0.0
                  for h in fleet.hosts if h["converges"] is True)
    return [(t, i + 1) for i, t in enumerate(etas)]


def _plots_png(fleet: FleetResult) -> bytes | None:
    """Hosts converged vs time and blocked hosts by function, side by side, as
    PNG bytes (None without matplotlib)."""
    import io

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a test dependency
        return None
    curve = converging_curve(fleet)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    horizon = max(30.0, 1.25 * (curve[-1][0] if curve else 0.0))  # as lpc.plot's
    xs = [0.0] + [t for t, _ in curve] + [horizon]
    ys = [0] + [n for _, n in curve] + [curve[-1][1] if curve else 0]
    a.step(xs, ys, where="post", linewidth=1.8)
    a.axhline(len(fleet.hosts), linestyle=":", color="grey", label="hosts checked")
    a.set_xlabel("seconds since the patch was enabled")
    a.set_ylabel("hosts converged")
    a.set_ylim(bottom=0)
    a.set_title("converging hosts vs time (each host's eta)")
    a.legend(fontsize=8)
    a.grid(True, alpha=0.3)
    top = fleet.by_function()[:12][::-1]
    b.barh([t["function"] or "(no patched frame)" for t in top], [t["hosts"] for t in top])
    b.set_xlabel("hosts blocked")
    b.set_title("blockers by function")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_html(fleet: FleetResult, path: str) -> str:
    """One self-contained page: verdict counts by release, the plots (hosts
    converged vs time; blockers by function), worst hosts, hosts not checked."""
    import base64

    from lpc.html_report import escape, page, table

    counts = fleet.counts()
    title = f"lpc fleet check: {_patch_text(fleet.request.patch)} under {fleet.model}"
    parts = [f"<h1>{escape(title)}</h1>",
             f"<p>{len(fleet.hosts)} hosts: <span class='verdict converges'>{counts[True]} "
             f"converge</span> <span class='verdict blocked'>{counts[False]} do not</span> "
             f"<span class='verdict unknown'>{counts[None]} cannot tell</span>; "
             f"{len(fleet.errors)} not checked</p>",
             "<h2>By kernel release</h2>",
             table(["release", "converge", "do not", "cannot tell"],
                   [[r, str(c["converges"]), str(c["does_not"]), str(c["cannot_tell"])]
                    for r, c in fleet.by_release().items()], numeric=(1, 2, 3))]
    png = _plots_png(fleet)
    if png:
        parts.append("<h2>Plots</h2><img alt='converging hosts and blockers' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    parts += ["<h2>Blocking functions</h2>",
              table(["function", "hosts", "tasks"],
                    [[b["function"] or "(no patched frame)", str(b["hosts"]), str(b["tasks"])]
                     for b in fleet.by_function()], numeric=(1, 2)),
              "<h2>Worst hosts</h2>",
              table(["dump", "release", "verdict", "reason"],
                    [[h["dump"], h["kernel_release"] or "unknown",
                      _word(h["converges"]).replace("_", " "),
                      h["summaries"][h["model"]]["reason"] or ""] for h in fleet.worst(20)]),
              "<h2>Hosts not checked</h2>",
              table(["dump", "error"], [[e["dump"], e["error"]] for e in fleet.errors])]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page(title, "\n".join(parts)))
    return path


__all__ += ["CONNECT_TIMEOUT_S", "FleetError", "HOST_TIMEOUT_S", "JsonLines", "batches",
            "converging_curve", "dump_bytes", "error_groups", "host_json", "render_text",
            "write_html", "write_parquet"]
