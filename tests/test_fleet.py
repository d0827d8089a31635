"""``lpc fleet check``: many dumps on Dask, each judged exactly as ``lpc check``.

The fleets are built from real recorded data: the 6.18 /proc snapshot, and the
oracle's SysRq-t dumps of 6.1, 6.12 and 7.3 guests (given a kernel banner so
that each names its release, with their kallsyms under ``--symbols-dir``);
hosts are made to differ by editing frames and releases.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from jsonschemas import loads  # noqa: E402
from lpc import fleet as fleet_mod  # noqa: E402
from lpc.cli import main  # noqa: E402
from lpc.fleet import FleetRequest, find_dumps, run_fleet  # noqa: E402
from lpc.patch import Patch  # noqa: E402

DATA = Path(__file__).parent / "data"
PATCH = "do_wait,worker_thread,lpc_sleeper:lpc_sleeper_spin_in"
RELEASES = {"6.1": "6.1.0-28-cloud-amd64", "6.12": "6.12.9-test-amd64", "7.3": "7.3.0-test-amd64"}


def _snapshot(dst: Path, release: str | None = None, rename: tuple[str, str] | None = None) -> None:
    shutil.copytree(DATA / "procdump-6.18", dst)
    if release is not None:
        meta = (dst / "meta.txt").read_text()
        old = next(line for line in meta.splitlines() if line.startswith("kernel_release="))
        (dst / "meta.txt").write_text(meta.replace(old, f"kernel_release={release}"))
    if rename is not None:
        stacks = (dst / "stacks.txt").read_text()
        assert rename[0] in stacks
        (dst / "stacks.txt").write_text(stacks.replace(rename[0], rename[1]))


def _bare(dst: Path, series: str, scenario: str, rename: tuple[str, str] | None = None) -> None:
    banner = (f"[    0.000000] Linux version {RELEASES[series]} (builder@example) (gcc-12) "
              "#1 SMP PREEMPT_DYNAMIC\n")
    text = (DATA / "oracle" / series / scenario / "first_sysrq.txt").read_text()
    if rename is not None:
        assert rename[0] in text
        text = text.replace(rename[0], rename[1])
    dst.write_text(banner + text)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots (two releases; one whose kworkers sleep elsewhere), bare dumps
    of three releases with a symbol directory, and two unreadable dumps."""
    root = tmp_path_factory.mktemp("fleet")
    hosts = root / "hosts"
    hosts.mkdir()
    _snapshot(hosts / "snap-a")
    _snapshot(hosts / "snap-b", release="6.18.45-fc-v700")
    _snapshot(hosts / "snap-c", rename=("worker_thread", "rescuer_thread"))
    for series in RELEASES:
        _bare(hosts / f"bare-{series}-runnable.txt", series, "runnable")
        _bare(hosts / f"bare-{series}-kthread.txt", series, "kthread_resleep")
        _bare(hosts / f"bare-{series}-nowait.txt", series, "runnable",
              rename=("do_wait", "do_wait_x"))
        symbols = root / "symbols" / RELEASES[series]
        symbols.mkdir(parents=True)
        table = (DATA / "oracle" / series / "runnable" / "first_kallsyms.txt").read_bytes()
        if series == "7.3":  # DIR/<release>/kallsyms.gz is read too
            (symbols / "kallsyms.gz").write_bytes(gzip.compress(table))
        else:
            (symbols / "kallsyms").write_bytes(table)
    (hosts / "junk.txt").write_text("hello world\nnothing here\n")
    (hosts / "half").mkdir()
    shutil.copy(DATA / "procdump-6.18" / "stacks.txt", hosts / "half" / "stacks.txt")
    return root


def _check_doc(path: str, symbols: str | None, capsys: pytest.CaptureFixture[str],
               model: str = "klp", patch: str = PATCH) -> dict[str, Any]:
    argv = ["check", "--dump", path, "--patch", patch, "--model", model, "--json"]
    if symbols is not None:
        argv += ["--symbols", symbols]
    main(argv)
    doc: dict[str, Any] = loads(capsys.readouterr().out, "check")
    return doc


def _check_summary(path: str, symbols: str | None, capsys: pytest.CaptureFixture[str],
                   model: str = "klp") -> dict[str, Any]:
    summary: dict[str, Any] = _check_doc(path, symbols, capsys, model)["summary"]
    return summary


def _symbols_for(root: Path, dump: str) -> str | None:
    name = Path(dump).name
    for series in RELEASES:
        if name.startswith(f"bare-{series}-"):
            return str(DATA / "oracle" / series / "runnable" / "first_kallsyms.txt")
    return None


def test_fleet_equals_per_host_check_processes(fleet_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A two-process LocalCluster through the CLI: every host's summary is the
    one `lpc check --json` prints, the unreadable dumps are in errors."""
    code = main(["fleet", "check", "--dumps", str(fleet_dir / "hosts" / "*"), "--patch", PATCH,
                 "--symbols-dir", str(fleet_dir / "symbols"), "--workers", "2", "--json"])
    out = capsys.readouterr()
    doc = loads(out.out, "fleet")
    assert code == 1  # worker_thread never lets go on the 6.18 snapshots
    dumps = [h["dump"] for h in doc["hosts"]]
    assert len(dumps) == 12 and dumps == sorted(dumps)
    assert {Path(e["dump"]).name for e in doc["errors"]} == {"junk.txt", "half"}
    assert any("no meta.txt" in e["error"] for e in doc["errors"])
    hosts_of: dict[str | None, set[str]] = {}
    tasks_of: dict[str | None, int] = {}
    for host in doc["hosts"]:
        check = _check_doc(host["dump"], _symbols_for(fleet_dir, host["dump"]), capsys)
        assert host["summary"] == check["summary"], host["dump"]
        for task in check["tasks"]:  # by_function, from lpc check's own task list
            if task["verdict"] == "switch" and task["outlook"] == "switched":
                continue
            function = task["frame"]["function"] if task["frame"] else None
            hosts_of.setdefault(function, set()).add(host["dump"])
            tasks_of[function] = tasks_of.get(function, 0) + 1
    assert {b["function"]: (b["hosts"], b["tasks"]) for b in doc["by_function"]} == {
        f: (len(h), tasks_of[f]) for f, h in hosts_of.items()}
    by_release = {h["kernel_release"] for h in doc["hosts"]}
    assert set(RELEASES.values()) | {"6.18.44-fc-v657", "6.18.45-fc-v700"} == by_release
    # The renamed frame: snap-c's kworkers sleep in rescuer_thread, not the patch.
    hosts = {Path(h["dump"]).name: h for h in doc["hosts"]}
    assert hosts["snap-a"]["converges"] is False
    assert hosts["snap-c"]["summary"]["blocked"] < hosts["snap-a"]["summary"]["blocked"]
    blockers = {b["function"]: b for b in doc["by_function"]}
    assert blockers["worker_thread"]["hosts"] == 11  # every host but snap-c
    assert "snap-c" not in {Path(d).name for d in hosts_of["worker_thread"]}
    assert "lpc: 12 host(s) checked, 2 not checked" in out.err


def test_local_threads_symbols_dir_once_per_worker(fleet_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A two-worker LocalCluster in this process: each bare dump gets its
    release's table from --symbols-dir, each table read at most once per worker."""
    from lpc.symbols import Symbols

    loads_seen: list[str] = []
    real = Symbols.from_kallsyms

    def counting(path: Any, *a: Any, **k: Any) -> Symbols:
        loads_seen.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(Symbols, "from_kallsyms", staticmethod(counting))
    monkeypatch.setattr(fleet_mod, "_SYMBOLS", {})
    request = FleetRequest(Patch.parse(PATCH), symbols_dir=str(fleet_dir / "symbols"))
    paths = []  # 27 hosts, 3 releases: each bare dump three times, under three names
    for copy in range(3):
        for dump in find_dumps(str(fleet_dir / "hosts" / "bare-*.txt")):
            shutil.copy(dump, tmp_path / f"{copy}-{Path(dump).name}")
            paths.append(str(tmp_path / f"{copy}-{Path(dump).name}"))
    assert len(paths) == 27
    result = run_fleet(paths, request, workers=2, processes=False, log=lambda m: None)
    assert len(result.hosts) == 27 and not result.errors
    for h in result.hosts:
        series = Path(h["dump"]).name.split("-")[2]
        name = "kallsyms.gz" if series == "7.3" else "kallsyms"
        assert h["symbols"] == str(fleet_dir / "symbols" / RELEASES[series] / name)
    # Workers are threads of this process sharing one cache: a race may read twice.
    assert 3 <= len(loads_seen) <= 6
    assert len(fleet_mod._SYMBOLS) == 3


def test_scheduler_address(fleet_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--scheduler: a Scheduler and two Workers started here on 127.0.0.1."""
    from distributed import Scheduler, Worker

    ready: list[str] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with Scheduler(host="127.0.0.1", port=0, dashboard_address=None) as s:
            async with Worker(s.address, nthreads=1), Worker(s.address, nthreads=1):
                ready.append(s.address)
                started.set()
                await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        assert ready[0].startswith("tcp://127.0.0.1:")
        code = main(["fleet", "check", "--dumps", str(fleet_dir / "hosts" / "snap-*/"),
                     "--patch", PATCH, "--scheduler", ready[0], "--json"])
        out = capsys.readouterr()
        doc = loads(out.out, "fleet")
        assert "on 2 worker(s)" in out.err
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
    assert code == 1
    assert [Path(h["dump"]).name for h in doc["hosts"]] == ["snap-a", "snap-b", "snap-c"]
    for host in doc["hosts"]:
        assert host["summary"] == _check_summary(host["dump"], None, capsys)


def test_parquet_html_and_text(fleet_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    request = FleetRequest(Patch.parse(PATCH), models=("klp", "kpatch"),
                           symbols_dir=str(fleet_dir / "symbols"))
    paths = find_dumps(str(fleet_dir / "hosts" / "*"))
    result = run_fleet(paths, request, workers=2, processes=False, log=lambda m: None)
    hosts, groups = fleet_mod.write_parquet(result, str(tmp_path / "out.parquet"))
    assert groups == str(tmp_path / "out.groups.parquet")
    table = pq.read_table(hosts).to_pylist()
    assert len(table) == 12 * 2
    assert {(r["dump"], r["model"]) for r in table} == {
        (h["dump"], m) for h in result.hosts for m in ("klp", "kpatch")}
    for r in table:
        host = next(h for h in result.hosts if h["dump"] == r["dump"])
        assert r["blocked"] == host["summaries"][r["model"]]["blocked"]
    rows = pq.read_table(groups).to_pylist()
    per_function: dict[str | None, int] = {}
    for r in rows:
        per_function[r["function"]] = per_function.get(r["function"], 0) + r["tasks"]
    assert per_function == {b["function"]: b["tasks"] for b in result.by_function()}
    page = Path(fleet_mod.write_html(result, str(tmp_path / "fleet.html"))).read_text()
    assert "data:image/png;base64," in page and "worker_thread" in page
    assert "junk.txt" in page
    import io

    text = io.StringIO()
    fleet_mod.render_text(result, text)
    report = text.getvalue()
    assert "top blocking functions:" in report and "\nnot checked (" in report
    assert "6.18.45-fc-v700" in report
    # Snapshots name their machine (x86_64); bare dumps do not.
    assert {k: sum(c.values()) for k, c in result.by_class().items()} == {"x86_64": 3,
                                                                          "unknown": 9}
    assert "by host class:" in report
    curve = fleet_mod.converging_curve(result)
    assert len(curve) == result.counts()[True]


def test_exit_status_and_errors(fleet_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    base = ["fleet", "check", "--workers", "1", "--patch", "no_such_function_anywhere",
            "--json"]
    # No dump matched: 3, said on stderr.
    assert main([*base, "--dumps", str(tmp_path / "nothing-*")]) == 3
    assert "no dump matched" in capsys.readouterr().err
    # Every dump unreadable: 3, each one in errors.
    assert main([*base, "--dumps", str(fleet_dir / "hosts" / "junk.txt")]) == 3
    doc = loads(capsys.readouterr().out, "fleet")
    assert doc["hosts"] == [] and [Path(e["dump"]).name for e in doc["errors"]] == ["junk.txt"]
    # A patch nothing sleeps in converges on every host read, but the junk was
    # not checked: cannot tell (4), never "every host converges", the junk reported.
    code = main([*base, "--dumps", str(fleet_dir / "hosts" / "[js]*")])
    doc = loads(capsys.readouterr().out, "fleet")
    assert code == 4 and len(doc["hosts"]) == 3 and len(doc["errors"]) == 1
    assert main([*base, "--dumps", str(fleet_dir / "hosts" / "snap-*/")]) == 0
    assert len(loads(capsys.readouterr().out, "fleet")["hosts"]) == 3
    assert all(h["converges"] is True for h in doc["hosts"])
    # The spinning task's stack leaves it open: cannot tell (4), as lpc check says.
    runnable = str(fleet_dir / "hosts" / "bare-6.12-runnable.txt")
    code = main(["fleet", "check", "--workers", "1", "--patch", "lpc_sleeper:lpc_sleeper_spin_in",
                 "--json", "--dumps", runnable])
    doc = loads(capsys.readouterr().out, "fleet")
    assert code == 4 and [h["converges"] for h in doc["hosts"]] == [None]
    assert main(["check", "--dump", runnable, "--patch", "lpc_sleeper:lpc_sleeper_spin_in"]) == 4
    capsys.readouterr()
    # A symbol table that cannot be read: that host in errors, naming the file.
    bad = tmp_path / "bad"
    (bad / "hosts").mkdir(parents=True)
    (bad / "symbols" / "6.1.0-bad").mkdir(parents=True)
    (bad / "symbols" / "6.1.0-bad" / "kallsyms.gz").write_bytes(b"not gzip at all")
    (bad / "hosts" / "h.txt").write_text(
        "[    0.000000] Linux version 6.1.0-bad (b@x) #1 SMP\n"
        + (DATA / "oracle" / "6.1" / "runnable" / "first_sysrq.txt").read_text())
    code = main([*base, "--dumps", str(bad / "hosts" / "*"),
                 "--symbols-dir", str(bad / "symbols")])
    doc = loads(capsys.readouterr().out, "fleet")
    assert code == 3 and doc["hosts"] == []
    assert "kallsyms.gz: not a readable gzip file" in doc["errors"][0]["error"]
    # Usage errors.
    assert main(["fleet", "check", "--dumps", "x", "--patch", "f", "--model", "nope"]) == 2
    assert main(["fleet", "check", "--dumps", "x", "--patch", "f", "--json",
                 "--parquet", "o.parquet"]) == 2


def test_schema_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "fleet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["properties"]["schema_version"] == {"const": 1}
    assert "summary" in doc["$defs"]


def test_batches_cover_every_dump() -> None:
    paths = [f"d{i}" for i in range(103)]
    parts = fleet_mod.batches(paths, 2)
    assert [p for part in parts for p in part] == paths
    assert len(parts) == 8 and max(map(len, parts)) == 13
    assert fleet_mod.batches(["x"], 4) == [["x"]]


def test_a_bug_on_one_host_is_that_hosts_error_and_exit_5(
        fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception that is not bad input: said for the host it hit, the others
    still judged, and the run's status is 5 (a bug), never a verdict."""
    import lpc.check

    real = lpc.check.run_loaded

    def flaky(request: Any, dump: Any, *a: Any, **k: Any) -> Any:
        if dump.path.endswith("snap-b"):
            raise RuntimeError("boom")
        return real(request, dump, *a, **k)

    monkeypatch.setattr(lpc.check, "run_loaded", flaky)
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    result = run_fleet(paths, FleetRequest(Patch.parse(PATCH)), workers=2, processes=False,
                       log=lambda m: None)
    assert [Path(h["dump"]).name for h in result.hosts] == ["snap-a", "snap-c"]
    assert [(Path(e["dump"]).name, e["kind"]) for e in result.errors] == [("snap-b", "internal")]
    assert "RuntimeError: boom" in result.errors[0]["error"]
    assert result.outcome() == "bug"  # the command exits 5 on it


def test_batches_by_bytes_keep_order_and_spread_weight() -> None:
    """Cut by size: every dump once, in order; a heavy dump does not drag a
    crowd of others into its batch; the count-cut is the fallback."""
    sizes = [10] * 40 + [4000] + [10] * 40
    paths = [f"d{i}" for i in range(len(sizes))]
    parts = fleet_mod.batches(paths, 2, sizes)
    assert [p for part in parts for p in part] == paths
    heavy = next(part for part in parts if "d40" in part)
    assert len(heavy) <= 2
    weights = [sum(sizes[paths.index(p)] for p in part) for part in parts]
    assert max(weights) <= 4000 + 10
    even = fleet_mod.batches(paths[:80], 2, [100] * 80)
    assert len(even) == 8 and {len(p) for p in even} == {10}
    assert fleet_mod.batches(["x"], 4, [0]) == [["x"]]


def test_dump_bytes(fleet_dir: Path, tmp_path: Path) -> None:
    snap = fleet_dir / "hosts" / "snap-a"
    weight = fleet_mod.dump_bytes(str(snap))
    assert weight == sum((snap / f).stat().st_size for f in ("stacks.txt", "kallsyms.txt")
                         if (snap / f).exists())
    assert weight >= (snap / "stacks.txt").stat().st_size > 0
    junk = fleet_dir / "hosts" / "junk.txt"
    assert fleet_mod.dump_bytes(str(junk)) == junk.stat().st_size
    assert fleet_mod.dump_bytes(str(tmp_path / "gone")) == 0


def _sabotaged(monkeypatch: pytest.MonkeyPatch, name: str, action: Any) -> None:
    """check_host misbehaves on the dump called ``name``. The local cluster
    forks its workers, so they see this module as patched here."""
    real = fleet_mod.check_host

    def check_host(path: str, request: FleetRequest) -> dict[str, Any]:
        if Path(path).name == name:
            action()
        return real(path, request)

    monkeypatch.setattr(fleet_mod, "check_host", check_host)


def test_a_hung_host_is_reported_and_its_worker_restarted(
        fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that never returns: after --host-timeout that host is in the
    errors (not checked), its worker is restarted, every other host is judged,
    and the fleet cannot say every host converges."""
    import time

    _sabotaged(monkeypatch, "snap-b", lambda: time.sleep(120))  # fails, not hangs, if missed
    said: list[str] = []
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    t = time.monotonic()
    result = run_fleet(paths, FleetRequest(Patch.parse("do_nanosleep")), workers=1,
                       host_timeout=2.0, log=said.append)
    assert time.monotonic() - t < 60
    assert [Path(h["dump"]).name for h in result.hosts] == ["snap-a", "snap-c"]
    assert [(Path(e["dump"]).name, e["kind"]) for e in result.errors] == [("snap-b", "timeout")]
    assert "--host-timeout (2 s)" in result.errors[0]["error"]
    assert any("restarting worker" in m for m in said)
    assert all(h["converges"] is True for h in result.hosts)
    assert result.outcome() == "unknown"


def test_a_host_that_kills_its_worker_is_found_alone(
        fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that takes its worker process down (as the memory limit does):
    Dask gives up on the batch, each of its hosts runs alone, and only the
    guilty one is reported."""
    import os

    import dask

    _sabotaged(monkeypatch, "snap-b", lambda: os._exit(9))
    said: list[str] = []
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        result = run_fleet(paths, FleetRequest(Patch.parse("do_nanosleep")), workers=1,
                           log=said.append)
    assert [Path(h["dump"]).name for h in result.hosts] == ["snap-a", "snap-c"]
    assert [(Path(e["dump"]).name, e["kind"]) for e in result.errors] == [("snap-b", "lost")]
    assert "killed the Dask worker" in result.errors[0]["error"]
    assert any("checking them one at a time" in m for m in said)
    assert result.outcome() == "unknown"


def test_an_unreachable_scheduler_is_said_at_once(
        fleet_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-a/"))
    t = time.monotonic()
    with pytest.raises(fleet_mod.FleetError, match="no Dask scheduler answered within 1 s"):
        run_fleet(paths, FleetRequest(Patch.parse(PATCH)), scheduler=f"tcp://127.0.0.1:{port}",
                  connect_timeout=1.0, log=lambda m: None)
    assert time.monotonic() - t < 15
    assert fleet_mod.CONNECT_TIMEOUT_S <= 10  # the command's own wait
    assert main(["fleet", "check", "--dumps", str(fleet_dir / "hosts" / "snap-a/"),
                 "--patch", PATCH, "--scheduler", f"tcp://127.0.0.1:{port}"]) == 3
    assert f"--scheduler tcp://127.0.0.1:{port}: no Dask scheduler" in capsys.readouterr().err


def test_spawned_workers_give_the_same_answers(fleet_dir: Path) -> None:
    """--start-method spawn (and the fallback where fork is not offered)."""
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    request = FleetRequest(Patch.parse(PATCH))
    forked = run_fleet(paths, request, workers=2, log=lambda m: None)
    spawned = run_fleet(paths, request, workers=2, start_method="spawn", log=lambda m: None)
    assert forked.as_json() == spawned.as_json()
    with pytest.raises(ValueError, match="start method"):
        run_fleet(paths, request, start_method="vfork", log=lambda m: None)


def test_a_dump_list_and_the_cli_knobs(fleet_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--dump-list: a manifest's paths in its order, each once, comments skipped,
    a missing path reported as not checked (exit 4), an unreadable list exit 3;
    --start-method spawn and --host-timeout 0 (no limit) give the same hosts."""
    hosts = fleet_dir / "hosts"
    manifest = tmp_path / "fleet.txt"
    manifest.write_text(f"# rollout wave 1\n{hosts / 'snap-b'}/\n\n{hosts / 'snap-a'}\n"
                        f"{hosts / 'snap-b'}\n{hosts / 'x' / '..' / 'snap-a'}\n"
                        f"{tmp_path / 'gone'}\n")
    assert fleet_mod.read_dump_list(str(manifest)) == [
        str(hosts / "snap-b"), str(hosts / "snap-a"), str(tmp_path / "gone")]
    code = main(["fleet", "check", "--dump-list", str(manifest), "--patch", "do_nanosleep",
                 "--workers", "1", "--start-method", "spawn", "--host-timeout", "0", "--json"])
    doc = loads(capsys.readouterr().out, "fleet")
    assert code == 4  # two hosts converge; the third was not checked
    assert [Path(h["dump"]).name for h in doc["hosts"]] == ["snap-b", "snap-a"]  # its order
    assert [(Path(e["dump"]).name, e["kind"]) for e in doc["errors"]] == [("gone", "bad_input")]
    assert main(["fleet", "check", "--dump-list", str(tmp_path / "nope.txt"),
                 "--patch", "do_nanosleep"]) == 3
    assert "nope.txt: cannot read the dump list" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    assert main(["fleet", "check", "--dump-list", str(tmp_path / "empty.txt"),
                 "--patch", "do_nanosleep"]) == 3
    assert "names no dump" in capsys.readouterr().err
    assert main(["fleet", "check", "--dump-list", str(manifest), "--dumps", "x",
                 "--patch", "do_nanosleep"]) == 2
    assert main(["fleet", "check", "--dump-list", str(manifest), "--patch", "do_nanosleep",
                 "--start-method", "vfork"]) == 2


def test_text_report_top_and_grouped_reasons(fleet_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--top N rows per table, the rest counted; dumps not checked for the same
    reason are one row (and one stderr line), not one per host."""
    snaps = str(fleet_dir / "hosts" / "snap-*/")
    assert main(["fleet", "check", "--dumps", snaps, "--patch", "do_waitt", "--workers",
                 "1", "--top", "1"]) == 3
    out = capsys.readouterr()
    assert "  3 dumps, e.g. " in out.out and "did you mean do_wait?" in out.out
    assert out.out.count("did you mean") == 1 and out.err.count("did you mean") == 1
    assert "lpc: not checked: 3 dumps: " in out.err
    assert main(["fleet", "check", "--dumps", snaps, "--patch", PATCH, "--workers", "1",
                 "--top", "1"]) == 1
    text = capsys.readouterr().out
    blockers = text.split("top blocking functions:")[1].split("\n\n")[0]
    assert len([line for line in blockers.splitlines() if line.startswith("  ")]) == 3
    assert "  … and " in blockers and "more function(s)" in blockers
    worst = text.split("worst hosts:")[1].split("\n\n")[0]
    assert "  … and 1 more host(s)" in worst  # snap-c converges: not among the worst
    # How fast: the converging hosts' etas, as shares of them (the brute count).
    summary = {"tasks": 1, "switch": 1, "blocked": 0, "running": 0, "unreliable": 0,
               "converges": True, "reason": "", "evidence": {}}
    hosts = [{"dump": f"h{i}", "kernel_release": "r", "host_class": None, "converges": True,
              "model": "klp", "blocking": [], "summaries": {"klp": {**summary, "eta_s": eta}}}
             for i, eta in enumerate([None, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])]
    out = io.StringIO()
    fleet_mod.render_text(fleet_mod.gather(FleetRequest(Patch.parse("f")), hosts), out)
    assert ("  converging hosts done (each by its eta): half by 5 s, 90 % by 9 s, all by 10 s"
            in out.getvalue())
    groups = fleet_mod.error_groups([
        {"dump": "a", "error": "x", "kind": "bad_input"},
        {"dump": "b", "error": "y", "kind": "timeout"},
        {"dump": "c", "error": "x", "kind": "bad_input"}])
    assert groups == [(("bad_input", "x"), ["a", "c"]), (("timeout", "y"), ["b"])]


def test_gather_answers_each_dump_once_in_the_order_asked() -> None:
    """A dump with no answer, or with two, is a bug in lpc said as such (exit
    5), never dropped nor counted twice."""
    request = FleetRequest(Patch.parse("do_wait"))
    host = {"converges": True, "kernel_release": None, "host_class": None, "model": "klp",
            "summaries": {}, "blocking": []}
    results = [{**host, "dump": "b"}, {"dump": "c", "error": "x", "kind": "bad_input"},
               {**host, "dump": "b", "converges": False}]
    out = fleet_mod.gather(request, results, ["c", "b", "a"])
    assert [h["dump"] for h in out.hosts] == ["b"] and out.hosts[0]["converges"] is True
    assert [(e["dump"], e["kind"]) for e in out.errors] == [
        ("c", "bad_input"), ("a", "internal"), ("b", "internal")]
    assert "lost track" in out.errors[1]["error"] and "twice" in out.errors[2]["error"]
    assert out.outcome() == "bug"
    assert [h["dump"] for h in fleet_mod.gather(request, results[:2]).errors] == ["c"]


def test_a_hung_host_on_thread_workers_cannot_be_restarted_but_is_reported(
        fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers without a nanny (threads of this process here; --no-nanny
    workers elsewhere) cannot be restarted: that is said, the host reported,
    and the others checked by the other worker."""
    import time

    _sabotaged(monkeypatch, "snap-b", lambda: time.sleep(6))
    said: list[str] = []
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    result = run_fleet(paths, FleetRequest(Patch.parse("do_nanosleep")), workers=2,
                       processes=False, host_timeout=1.0, log=said.append)
    assert [Path(h["dump"]).name for h in result.hosts] == ["snap-a", "snap-c"]
    assert [(Path(e["dump"]).name, e["kind"]) for e in result.errors] == [("snap-b", "timeout")]
    assert any("could not be restarted" in m and "nanny" in m for m in said)
    assert result.outcome() == "unknown"


def test_recorded_livepatch_state_per_host(capsys: pytest.CaptureFixture[str]) -> None:
    """Real snapshots a 6.12 guest recorded while a patch was in transition,
    and once after: the hosts taken during it are refused (-EBUSY, as lpc check
    says of each) and do not converge; the last one converges. Each host's
    summary is lpc check's, and a refusal is never a converging host."""
    snaps = DATA / "oracle" / "6.12" / "watch_transition"
    code = main(["fleet", "check", "--dumps", f"{snaps}/snap_*/", "--patch",
                 "do_nanosleep", "--workers", "1", "--json"])
    doc = loads(capsys.readouterr().out, "fleet")
    assert code == 1 and not doc["errors"] and len(doc["hosts"]) == 6
    for host in doc["hosts"]:
        check = _check_doc(host["dump"], None, capsys, patch="do_nanosleep")
        assert host["summary"] == check["summary"], host["dump"]
        refused = bool(check["machine"]["refusals"])
        assert host["converges"] is (False if refused else check["summary"]["converges"])
    assert [h["converges"] for h in doc["hosts"]] == [False] * 5 + [True]


def test_a_stuck_worker_that_cannot_be_restarted_is_dropped(
        fleet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only worker hangs on a host and has no nanny: it is dropped from the
    cluster (not given more work it would never start), and with no worker
    left the hosts still waiting are said not checked — not waited for until
    the hung check returns."""
    import time

    monkeypatch.setattr(fleet_mod, "_WORKERLESS_S", 2.0)
    _sabotaged(monkeypatch, "snap-b", lambda: time.sleep(10))
    said: list[str] = []
    paths = find_dumps(str(fleet_dir / "hosts" / "snap-*/"))
    result = run_fleet(paths, FleetRequest(Patch.parse("do_nanosleep")), workers=1,
                       processes=False, host_timeout=1.0, log=said.append)
    answers = {Path(h["dump"]).name: "checked" for h in result.hosts}
    answers |= {Path(e["dump"]).name: e["kind"] for e in result.errors}
    assert answers["snap-b"] == "timeout"
    assert answers == {"snap-a": answers["snap-a"], "snap-b": "timeout", "snap-c": "worker"}
    assert answers["snap-a"] in ("checked", "worker")
    assert any("dropped from the cluster" in m for m in said)
    assert "no Dask worker was left" in next(e["error"] for e in result.errors
                                             if e["kind"] == "worker")
    assert result.outcome() == "unknown"


def test_jsonl_streams_each_host_as_answered(fleet_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--jsonl: a header, a line per dump (host or not_checked) — each host's
    line the --json document's — then a summary whose outcome is the exit
    status's; every line valid against `lpc schema fleet-jsonl`."""
    from jsonschemas import lines

    argv = ["fleet", "check", "--dumps", str(fleet_dir / "hosts" / "[js]*"), "--patch", PATCH,
            "--workers", "2"]
    code = main([*argv, "--jsonl"])
    stream = lines(capsys.readouterr().out, "fleet-jsonl")
    assert main([*argv, "--json"]) == code == 1
    doc = loads(capsys.readouterr().out, "fleet")
    assert stream[0]["kind"] == "header" and stream[0]["dumps"] == 4
    assert stream[0]["patch"] == doc["patch"] and stream[0]["model"] == "klp"
    hosts = sorted((line for line in stream if line["kind"] == "host"), key=lambda h: h["dump"])
    assert [{k: v for k, v in h.items() if k != "kind"} for h in hosts] == doc["hosts"]
    assert [(line["dump"], line["error_kind"]) for line in stream
            if line["kind"] == "not_checked"] == [(e["dump"], e["kind"]) for e in doc["errors"]]
    summary = stream[-1]
    assert summary["kind"] == "summary" and summary["outcome"] == "blocked"
    assert summary["by_function"] == doc["by_function"]
    assert (summary["hosts"], summary["not_checked"]) == (3, 1)
    assert len(stream) == 1 + 4 + 1
    assert main([*argv, "--jsonl", "--json"]) == 2
