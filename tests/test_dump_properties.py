"""Hypothesis properties of the kernel-side dump parsers.

* Any input — random bytes, kernel-flavoured random text, mutated real
  samples — is parsed (unknown lines counted) or refused with DumpParseError;
  never a panic (InternalError) and never inconsistent columns.
* The recorded /proc snapshot round-trips: generated tasks -> format_snapshot
  -> parse_dump equals a brute-force model of what the format keeps.
* Generated SysRq-t / hung-task text in every header generation and line
  prefix style parses back to the generated tasks; inserted console noise is
  counted exactly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lpc.capture import format_snapshot
from lpc.dump import Dump, Frame, StackStatus, Task, parse_dump
from lpc.errors import DumpParseError

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(p.read_bytes() for p in DATA.glob("*.txt")) + [
    (DATA / "procdump-6.18" / "stacks.txt").read_bytes()
]
FORMATS = [None, "proc_snapshot", "proc_stack", "dmesg"]


def check_consistent(dump: Dump) -> None:
    offsets = dump.frame_offsets.tolist()
    assert len(offsets) == dump.task_count + 1
    assert offsets[0] == 0 and offsets[-1] == dump.frame_count
    assert all(a <= b for a, b in zip(offsets, offsets[1:], strict=False))
    assert dump.skipped_lines >= len(dump.skipped_samples)
    for task in dump.tasks:  # every task and frame can be built
        assert isinstance(task.stack_status, StackStatus)


def parse_or_refuse(data: bytes, fmt: str | None) -> None:
    try:
        dump = parse_dump(data, fmt)
    except DumpParseError:
        assert fmt is None  # only detection may refuse
        return
    check_consistent(dump)


@given(st.binary(max_size=3000), st.sampled_from(FORMATS))
def test_random_bytes_never_crash(data: bytes, fmt: str | None) -> None:
    parse_or_refuse(data, fmt)


KERNELISH = "[]<>?#:+-/x0123456789abcdef TCRSDI.=()\n\t" + "task:state pid ppid Call Trace RIP 0010 0033 IRQ NMI"


@given(st.text(alphabet=KERNELISH, max_size=3000), st.sampled_from(FORMATS))
def test_kernel_flavoured_text_never_crashes(text: str, fmt: str | None) -> None:
    parse_or_refuse(text.encode(), fmt)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 2), st.binary(max_size=40)),
        min_size=1,
        max_size=10,
    ),
    st.sampled_from(FORMATS),
)
def test_mutated_samples_never_crash(
    sample: bytes, edits: list[tuple[float, int, bytes]], fmt: str | None
) -> None:
    data = bytearray(sample)
    for where, op, payload in edits:
        at = int(where * len(data))
        if op == 0:
            data[at : at + len(payload)] = payload  # overwrite
        elif op == 1:
            del data[at : at + 1 + len(payload)]  # delete
        else:
            data[at:at] = payload  # insert
    parse_or_refuse(bytes(data), fmt)


# ---- /proc snapshot round trip -----------------------------------------------------------------

U64_MAX = 2**64 - 1
symbol_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,24}(\.(isra|constprop|part)\.[0-9]|\.cold)?", fullmatch=True)
module_names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


@st.composite
def snapshot_frames(draw: st.DrawFn) -> Frame:
    address = draw(st.none() | st.integers(1, U64_MAX - 1))
    if draw(st.integers(0, 9)) == 0:  # an unsymbolised address
        return Frame(address=address, function=None, offset=None, size=None, module=None, reliable=draw(st.booleans()))
    offset = draw(st.none() | st.integers(0, 2**32))
    size = draw(st.none() | st.integers(0, 2**32)) if offset is not None else None
    module = draw(st.none() | module_names) if offset is not None else None
    return Frame(
        address=address,
        function=draw(symbol_names),
        offset=offset,
        size=size,
        module=module,
        reliable=draw(st.integers(0, 5)) > 0,
    )


def expected_status(written: str, frames: list[Frame]) -> StackStatus:
    """The brute-force model of the parser's status rules for /proc snapshots."""
    if written == "unreadable":
        return StackStatus.UNREADABLE
    if written == "truncated" or len(frames) >= 64:
        return StackStatus.TRUNCATED
    if not frames:
        return StackStatus.EMPTY
    if not any(f.reliable for f in frames):
        return StackStatus.UNWIND_FAILURE
    return StackStatus.COMPLETE


@st.composite
def snapshot_tasks(draw: st.DrawFn) -> Task:
    pid = draw(st.integers(0, 2**22))
    written = draw(st.sampled_from(["ok", "ok", "ok", "unreadable", "truncated"]))
    frames = draw(st.lists(snapshot_frames(), max_size=6))
    if frames and draw(st.integers(0, 15)) == 0:
        frames = frames * (64 // len(frames) + draw(st.integers(0, 1)))  # deep: /proc's 64 cut
    state = draw(st.none() | st.sampled_from("RSDTtZXIPKWN"))
    flags = draw(st.none() | st.integers(0, 2**32 - 1))
    kthread = bool(flags & 0x00200000) if flags is not None else draw(st.none() | st.booleans())
    status = expected_status(written, frames)
    return Task(
        pid=pid,
        tid=draw(st.integers(0, 2**22)),
        comm=draw(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40)),
        state=state,
        kthread=kthread,
        on_cpu=True if state == "R" and written == "ok" and not frames else None,
        frames=tuple(frames),
        stack_status=status,
        tgid=pid,
        ppid=draw(st.none() | st.integers(0, 2**22)),
        cpu=draw(st.none() | st.integers(0, 8191)),
        task_flags=flags,
    )


def without_lines(task: Task) -> Task:
    frames = tuple(dataclasses.replace(f, line=0) for f in task.frames)
    return dataclasses.replace(task, line=0, frames=frames)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(snapshot_tasks(), max_size=5))
def test_snapshot_round_trip(tasks: list[Task]) -> None:
    text = format_snapshot(tasks)
    dump = parse_dump(text.encode(), "proc_snapshot")
    assert dump.skipped_lines == 0
    assert [without_lines(t) for t in dump.tasks] == tasks
    if tasks:
        assert parse_dump(text.encode()).source_format == "proc_snapshot"


def test_snapshot_round_trip_of_awkward_comms() -> None:
    comms = ["a state=b", "x\\ny", "line\nbreak", "cr\r", " lead", "trail ", "(paren) (x)", "ü-名"]
    tasks = [
        Task(pid=i, tid=i, comm=c, state="S", kthread=None, on_cpu=None, frames=(), stack_status=StackStatus.EMPTY, tgid=i)
        for i, c in enumerate(comms)
    ]
    dump = parse_dump(format_snapshot(tasks).encode())
    assert list(dump.comms) == comms


# ---- generated kernel logs ---------------------------------------------------------------------

comm_text = st.from_regex(r"[a-z_/.:-]([a-z0-9_/.: -]{0,13}[a-z0-9_/.:-])?", fullmatch=True)


@st.composite
def dmesg_tasks(draw: st.DrawFn) -> dict[str, object]:
    frames = draw(
        st.lists(
            st.tuples(symbol_names, st.integers(0, 2**20), st.integers(1, 2**20), st.none() | module_names, st.booleans()),
            min_size=1,
            max_size=12,
        )
    )
    assume(any(reliable for *_, reliable in frames))
    return {
        "comm": draw(comm_text),
        "pid": draw(st.integers(1, 2**22)),
        "ppid": draw(st.integers(0, 2**22)),
        "state": draw(st.sampled_from("RSDTtIZ")),
        "stack": draw(st.integers(0, 99999)),
        "tif": draw(st.integers(0, 2**32 - 1)),
        "pf": draw(st.integers(0, 2**32 - 1)),
        "frames": frames,
        "user_regs": draw(st.booleans()),
        "generation": draw(st.sampled_from(["5.8", "5.9", "6.6", "6.15"])),
    }


def header_line(t: dict[str, object]) -> str:
    comm, state, pid, ppid, tif = t["comm"], t["state"], t["pid"], t["ppid"], t["tif"]
    gen = t["generation"]
    if gen == "5.8":
        return f"{comm:<15} {state}{t['stack']:>5} {pid:>5} {ppid:>6} 0x{tif:08x}"
    head = f"task:{comm:<15} state:{state} stack:{t['stack']:<5} pid:{pid:<5} "
    if gen in ("6.6", "6.15"):
        head += f"tgid:{pid:<5} "
    head += f"ppid:{ppid:<6} "
    if gen == "6.15":
        head += f"task_flags:0x{t['pf']:x} "
    return head + f"flags:0x{tif:08x}"


PREFIXES = [
    lambda n: "",
    lambda n: f"[{n:>5}.{n * 7 % 1000000:06d}] ",
    lambda n: f"[{n:>5}.{n:06d}][  T{n % 97}] ",
    lambda n: f"<6> [{n}.{n:06d}] ",
    lambda n: f"Nov 26 10:{n % 60:02d}:00 vm kernel: ",
    lambda n: "\tkernel: ",
]


@settings(max_examples=150)
@given(st.lists(dmesg_tasks(), min_size=1, max_size=5), st.integers(0, len(PREFIXES) - 1), st.data())
def test_generated_kernel_logs_parse_back(
    tasks: list[dict[str, object]], prefix_style: int, data: st.DataObject
) -> None:
    prefix = PREFIXES[prefix_style]
    lines: list[str] = []
    noise = 0
    for t in tasks:
        lines.append(header_line(t))
        lines.append("Call Trace:")
        if t["generation"] != "5.8":
            lines.append(" <TASK>")
        for name, off, size, module, reliable in t["frames"]:  # type: ignore[attr-defined]
            mark = "" if reliable else "? "
            mod = f" [{module}]" if module else ""
            lines.append(f" {mark}{name}+0x{off:x}/0x{size:x}{mod}")
            if data.draw(st.integers(0, 15)) == 0:
                lines.append("executing program")  # console noise between frames
                noise += 1
        if t["user_regs"]:
            lines.append("RIP: 0033:0x7f125f847011")
            lines.append("RSP: 002b:00007ffd33a5d9e0 EFLAGS: 00000202 ORIG_RAX: 0000000000000101")
        if t["generation"] != "5.8":
            lines.append(" </TASK>")
    text = "\n".join(prefix(n) + line for n, line in enumerate(lines, 1)) + "\n"
    dump = parse_dump(text.encode(), "dmesg")
    assert dump.skipped_lines == noise
    assert len(dump.tasks) == len(tasks)
    for got, want in zip(dump.tasks, tasks, strict=True):
        gen = want["generation"]
        assert (got.comm, got.pid, got.tid, got.ppid, got.state) == (
            want["comm"],
            want["pid"],
            want["pid"],
            want["ppid"],
            want["state"],
        )
        assert got.thread_flags == want["tif"]
        assert got.tgid == (want["pid"] if gen in ("6.6", "6.15") else None)
        assert got.task_flags == (want["pf"] if gen == "6.15" else None)
        assert got.kthread == (bool(want["pf"] & 0x00200000) if gen == "6.15" else None)  # type: ignore[operator]
        assert got.user_regs == want["user_regs"]
        assert [(f.function, f.offset, f.size, f.module, f.reliable) for f in got.frames] == want["frames"]
        assert got.stack_status is StackStatus.COMPLETE
