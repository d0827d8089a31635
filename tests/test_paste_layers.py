"""Any sample wrapped in any combination of paste layers — mail quoting of any
depth, quoted-printable with soft line breaks, indentation — parses to the
same tasks and frames as the bare sample (issue 11; the layer is rust/lpc-core/src/dump/paste.rs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpc.dump import Dump, Task, parse_dump

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(p.name for p in DATA.glob("*.txt")) + ["procdump-6.18/stacks.txt"]
STYLES = ["> ", ">> ", "> > ", "> > > ", ">>> "]


def quote(data: bytes, styles: list[str]) -> bytes:
    """Each line behind ``styles`` in turn (a mail client quotes an empty line as ``>``)."""
    out = []
    for i, line in enumerate(data.splitlines(keepends=True)):
        style = styles[i % len(styles)].encode()
        out.append((style.rstrip() if line.strip() == b"" else style) + line)
    return b"".join(out)


def quoted_printable(data: bytes, width: int = 76) -> bytes:
    """RFC 2045 encoding: ``=`` and bytes outside printable ASCII as ``=XX``,
    trailing blanks escaped, lines longer than ``width`` cut with soft breaks."""
    out = [b"Content-Transfer-Encoding: quoted-printable\n"]
    for line in data.splitlines():
        enc = bytearray()
        for i, c in enumerate(line):
            blank_at_end = c in b" \t" and i == len(line) - 1
            if c == ord("=") or c > 126 or (c < 32 and c != 9) or blank_at_end:
                enc += b"=%02X" % c
            else:
                enc.append(c)
        # Soft breaks: never inside an escape.
        while len(enc) > width:
            cut = width - 1
            while b"=" in enc[max(0, cut - 2):cut]:
                cut -= 1
            out.append(bytes(enc[:cut]) + b"=\n")
            enc = enc[cut:]
        out.append(bytes(enc) + b"\n")
    return b"".join(out)


def without_lines(task: Task) -> Task:
    frames = tuple(dataclasses.replace(f, line=0) for f in task.frames)
    return dataclasses.replace(task, line=0, lost_line=0, frames=frames)


def same_dump(bare: Dump, wrapped: Dump, lines: bool) -> None:
    assert wrapped.source_format == bare.source_format
    assert wrapped.kernel_release == bare.kernel_release
    if lines:
        assert list(wrapped.tasks) == list(bare.tasks)
    else:
        assert [without_lines(t) for t in wrapped.tasks] == [without_lines(t) for t in bare.tasks]


@pytest.mark.parametrize("name", SAMPLES)
@settings(max_examples=8)
@given(style=st.sampled_from(STYLES), twice=st.booleans())
def test_quoted_samples_read_as_the_bare_ones(name: str, style: str, twice: bool) -> None:
    """A dump quoted as a block (one depth, in any spelling), or quoted again
    in a reply to the reply."""
    data = (DATA / name).read_bytes()
    bare = parse_dump(data)
    quoted = quote(data, [style])
    wrapped = parse_dump(quote(quoted, ["> "]) if twice else quoted)
    # Quoting keeps every line where it was: line numbers agree too.
    same_dump(bare, wrapped, lines=True)
    assert wrapped.skipped_lines == bare.skipped_lines


def indent(data: bytes, by: bytes) -> bytes:
    """Every non-blank line indented (a Markdown code block, an indented ticket)."""
    return b"".join(by + line if line.strip() else line
                    for line in data.splitlines(keepends=True))


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("by", [b"    ", b"\t", b"  "])
def test_indented_samples_read_as_the_bare_ones(name: str, by: bytes) -> None:
    data = (DATA / name).read_bytes()
    bare = parse_dump(data)
    same_dump(bare, parse_dump(indent(data, by)), lines=True)
    # Indented inside the quoting, as a reply quotes an indented block.
    same_dump(bare, parse_dump(quote(indent(data, by), ["> "])), lines=True)


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("layers", ["qp", "quote+qp"])
def test_quoted_printable_samples_read_as_the_bare_ones(name: str, layers: str) -> None:
    data = (DATA / name).read_bytes()
    bare = parse_dump(data)
    text = quote(data, ["> "]) if layers == "quote+qp" else data
    wrapped = parse_dump(quoted_printable(text))
    # Soft breaks join lines: the tasks and frames are the same, their line
    # numbers are the encoded file's.
    same_dump(bare, wrapped, lines=False)


def test_line_numbers_point_into_the_pasted_file() -> None:
    text = (DATA / "hung-task-6.18.txt").read_bytes()
    encoded = quoted_printable(quote(text, ["> "]), width=40)
    dump = parse_dump(encoded)
    lines = encoded.splitlines()
    for task in dump.tasks:
        for frame in task.frames[:3]:
            assert frame.function is not None
            # The line a frame reports is where its text starts in the paste.
            assert frame.function[:10].encode() in b"".join(lines[frame.line - 1: frame.line + 3])


@pytest.mark.parametrize("first,second", [
    ("hung-task-6.18.txt", "crash-bt-foreach.txt"),
    ("sysrq-t-5.9-header-change-journald.txt", "crash-bt-foreach.txt"),
    ("crash-bt-foreach.txt", "hung-task-4.4-x86-addresses.txt"),
    ("proc-stacks-6.18.txt", "gdb-kernel-qemu-gdbstub.txt"),
])
def test_a_paste_that_mixes_formats_keeps_every_part(first: str, second: str) -> None:
    """A hung-task report then a `crash>` session (and the like): each part is
    read in its own format, every task kept, line numbers the paste's."""
    a = (DATA / first).read_bytes()
    # The second part without its provenance line (a test-data note, not pasted text).
    b = (DATA / second).read_bytes().split(b"\n", 1)[1]
    da, db = parse_dump(a), parse_dump(b)
    mixed = parse_dump(a + b)
    assert mixed.task_count == da.task_count + db.task_count
    shift = a.count(b"\n")
    moved = [dataclasses.replace(
        t, line=t.line + shift, lost_line=t.lost_line + shift if t.lost_line else 0,
        frames=tuple(dataclasses.replace(f, line=f.line + shift) for f in t.frames))
        for t in db.tasks]
    assert list(mixed.tasks) == list(da.tasks) + moved
    assert any("mixes formats" in w and da.source_format in w and db.source_format in w
               for w in mixed.warnings)


#: Kernel-log samples (their lines may carry a timestamp already).
KERNEL_LOGS = [n for n in SAMPLES
               if parse_dump((DATA / n).read_bytes()).source_format == "dmesg"]
LOG_PREFIXES = [
    b"Nov 26 10:00:00 buildhost kernel: ",                # syslog
    b"2026-11-26T10:00:00.123456+00:00 buildhost kernel: ",  # rsyslog ISO
    b"kernel: ",                                          # journalctl -k -o cat
    b"<6>",                                               # /dev/kmsg level
]


@pytest.mark.parametrize("name", KERNEL_LOGS)
@pytest.mark.parametrize("prefix", LOG_PREFIXES)
def test_kernel_logs_through_syslog_or_journald_read_as_the_bare_ones(
        name: str, prefix: bytes) -> None:
    """The kernel log's own prefix layer (dmesg.rs strip_prefix), under the
    paste layers too: every line behind a syslog / journald / level prefix."""
    data = (DATA / name).read_bytes()
    head, body = data.split(b"\n", 1)  # the provenance line stays as it is
    wrapped = head + b"\n" + b"".join(
        prefix + line if line.strip() else line for line in body.splitlines(keepends=True))
    bare = parse_dump(data)
    same_dump(bare, parse_dump(wrapped), lines=True)
    same_dump(bare, parse_dump(quote(wrapped, ["> "])), lines=True)
