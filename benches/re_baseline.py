"""A plain Python ``re`` parser for the /proc snapshot and dmesg formats.

The baseline of benches/test_bench_parse.py: what a careful Python author
writes without lpc — line by line, one compiled regex per construct, names
interned in a dict, frames kept as columns of Python lists. It reads the main
constructs only (headers, frames, section markers); it is not a reference
parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KSYM = r"(?P<sym>[^\s+\[\]]+?)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)(?: \[(?P<mod>[^\]\s]+)(?: [0-9a-f]{40})?\])?"

SNAP_HEADER = re.compile(r"^# pid=(?P<pid>\d+) tid=(?P<tid>\d+) comm=(?P<comm>.*) state=(?P<state>\S)(?P<rest>.*)$")
SNAP_FIELD = re.compile(r"(\w+)=(\S+)")
PROC_FRAME = re.compile(r"^\[<(?P<addr>[0-9a-f]+)>\] (?P<unrel>\? )?" + KSYM + r"\s*$")

PREFIX = re.compile(r"^(?:<\d+>)?\s*(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s*(?:kernel: )?\s*")
NEW_HEADER = re.compile(
    r"^task:(?P<comm>.{1,15}?)\s+state:(?P<state>\S)(?P<running>\s+running task)?\s+stack:\s*(?P<stack>\d+)"
    r"\s+pid:\s*(?P<pid>\d+)(?:\s+tgid:\s*(?P<tgid>\d+))?\s+ppid:\s*(?P<ppid>\d+)"
    r"(?:\s+task_flags:0x(?P<pf>[0-9a-f]+))?\s+flags:0x(?P<tif>[0-9a-f]+)"
)
OLD_HEADER = re.compile(
    r"^(?P<comm>.{1,15}?)\s+(?P<state>[A-Za-z])(?: (?P<pc>[0-9a-f]{16}) | +running task +)?\s*(?P<stack>\d+)"
    r"\s+(?P<pid>\d+)\s+(?P<ppid>\d+) 0x(?P<flags>[0-9a-f]+)"
)
CPU_HEADER = re.compile(r"^CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?) (?:Not tainted|Tainted:)")
DMESG_FRAME = re.compile(r"^(?:<(?:IRQ|EOI|NMI|EOE)>\s+)?(?:\[<(?P<addr>[0-9a-f]+)>\] )?(?P<unrel>\? )?" + KSYM + r"(?: \(\w\))?(?: \S+:\d+)?$")
INLINE_FRAME = re.compile(r"^(?P<sym>[A-Za-z_][\w.]*) (?P<file>\S+):(?P<line>\d+) \[inline\]$")
MARKER = re.compile(r"^</?(?P<name>[A-Z#_0-9]+)>$")
CONTEXTS = {"IRQ": 1, "SOFTIRQ": 2, "NMI": 3}


@dataclass
class Columns:
    """Tasks and frames as Python lists (the baseline's "columnar" result)."""

    pids: list[int | None] = field(default_factory=list)
    comms: list[str] = field(default_factory=list)
    states: list[str | None] = field(default_factory=list)
    offsets: list[int] = field(default_factory=lambda: [0])
    functions: list[int] = field(default_factory=list)
    frame_offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    modules: list[int] = field(default_factory=list)
    reliable: list[bool] = field(default_factory=list)
    contexts: list[int] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def begin(self, pid: int | None, comm: str, state: str | None) -> None:
        if self.pids:
            self.offsets.append(len(self.functions))
        self.pids.append(pid)
        self.comms.append(comm)
        self.states.append(state)

    def frame(self, m: re.Match[str], context: int = 0) -> None:
        names = self.names
        self.functions.append(names.setdefault(m["sym"], len(names)))
        mod = m["mod"]
        self.modules.append(names.setdefault(mod, len(names)) if mod else -1)
        self.frame_offsets.append(int(m["off"], 16))
        self.sizes.append(int(m["size"], 16))
        self.reliable.append(m["unrel"] is None)
        self.contexts.append(context)

    def finish(self) -> Columns:
        if self.pids:
            self.offsets.append(len(self.functions))
        return self


def parse_snapshot(text: str) -> Columns:
    out = Columns()
    for line in text.splitlines():
        if line.startswith("# pid="):
            m = SNAP_HEADER.match(line)
            if m is None:
                out.skipped += 1
                continue
            dict(SNAP_FIELD.findall(m["rest"]))
            out.begin(int(m["pid"]), m["comm"], m["state"])
            continue
        m = PROC_FRAME.match(line)
        if m is not None and out.pids:
            out.frame(m)
        elif line.strip():
            out.skipped += 1
    return out.finish()


def parse_dmesg(text: str) -> Columns:
    out = Columns()
    context = 0
    for raw in text.splitlines():
        line = PREFIX.sub("", raw, count=1).rstrip()
        if not line:
            continue
        m = DMESG_FRAME.match(line) or INLINE_FRAME.match(line)
        if m is not None:
            if out.pids:
                if "off" in m.groupdict():
                    out.frame(m, context)
                else:  # inline frames have no offset
                    out.functions.append(out.names.setdefault(m["sym"], len(out.names)))
                    out.modules.append(-1)
                    out.frame_offsets.append(-1)
                    out.sizes.append(-1)
                    out.reliable.append(True)
                    out.contexts.append(context)
            else:
                out.skipped += 1
            continue
        m = MARKER.match(line)
        if m is not None:
            context = 0 if line.startswith("</") else CONTEXTS.get(m["name"], 0)
            continue
        if line.startswith("Call Trace:") or line.startswith("Call trace:"):
            context = 0
            continue
        m = NEW_HEADER.match(line) or OLD_HEADER.match(line) or CPU_HEADER.match(line)
        if m is not None:
            state = m.groupdict().get("state")
            out.begin(int(m["pid"]), m["comm"].rstrip(), state)
            context = 0
            continue
        out.skipped += 1
    return out.finish()


def parse(data: bytes, fmt: str) -> Columns:
    text = data.decode("utf-8", "replace")
    return parse_snapshot(text) if fmt == "proc_snapshot" else parse_dmesg(text)
