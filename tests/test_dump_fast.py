"""The fast dump path: interned frame tokens and comms, reading files in Rust,
the parallel snapshot parse, as seen from Python.

Golden data: ``tests/data/procdump-6.18`` (a real recorded /proc snapshot and
its ``tasks.tsv``) and the 6.18 hung-task report.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lpc import _core
from lpc.dump import UNKNOWN_U64, Dump, parse_dump
from lpc.errors import DumpParseError

DATA = Path(__file__).parent / "data"
SNAPSHOT = DATA / "procdump-6.18"
STACKS = SNAPSHOT / "stacks.txt"

#: The binding's contract with ``lpc.dump`` and ``lpc.check``.
REMOVED_KEYS = {
    "comm_bytes",
    "comm_offsets",
    "frame_address",
    "frame_has_address",
    "frame_function",
    "frame_offset",
    "frame_size",
    "frame_module",
}
TOKEN_DTYPES = {
    "comm": np.uint32,
    "frame_token": np.uint32,
    "token_address": np.uint64,
    "token_has_address": np.bool_,
    "token_function": np.uint32,
    "token_module": np.uint32,
    "token_offset": np.uint64,
    "token_size": np.uint64,
}


#: Every attribute of ``_core.DumpColumns`` (the typed boundary; ``_core.pyi`` declares each).
COLUMN_ATTRIBUTES = [
    "format", "kernel_release", "names", "comm_names", "skipped_lines", "skipped_samples",
    "warnings", "comm", "pid", "tid", "tgid", "ppid", "cpu", "state", "kthread", "on_cpu",
    "task_flags", "thread_flags", "user_regs", "task_line", "stack_status", "frame_offsets",
    "frame_token", "token_address", "token_has_address", "token_function", "token_offset",
    "token_size", "token_module", "frame_reliable", "frame_context", "frame_inlined", "frame_line",
]  # fmt: skip


def test_binding_columns_have_the_token_and_comm_attributes() -> None:
    columns = _core.parse_dump_file(str(STACKS))
    assert isinstance(columns, _core.DumpColumns)
    assert not any(hasattr(columns, key) for key in REMOVED_KEYS)
    for key, dtype in TOKEN_DTYPES.items():
        assert getattr(columns, key).dtype == dtype, key
    assert isinstance(columns.comm_names, tuple)
    assert all(isinstance(c, str) for c in columns.comm_names)
    assert len(columns.comm) == len(columns.pid)
    assert len(columns.frame_token) == len(columns.frame_reliable)
    tokens = len(columns.token_function)
    assert all(len(getattr(columns, k)) == tokens for k in TOKEN_DTYPES if k.startswith("token_"))
    assert int(columns.frame_token.max()) < tokens
    # the same columns as from bytes
    from_bytes = _core.parse_dump_bytes(STACKS.read_bytes(), None, str(STACKS))
    for key in COLUMN_ATTRIBUTES:
        value = getattr(columns, key)
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, getattr(from_bytes, key)), key
        else:
            assert value == getattr(from_bytes, key), key


def test_binding_columns_are_frozen_and_hand_out_one_array_each() -> None:
    columns = _core.parse_dump_file(str(STACKS))
    for key in COLUMN_ATTRIBUTES:
        if isinstance(getattr(columns, key), (np.ndarray, tuple)):
            assert getattr(columns, key) is getattr(columns, key), key
        with pytest.raises(AttributeError):
            setattr(columns, key, None)
    # numpy adopted the parser's buffers: no array owns a copy of its data
    arrays = [getattr(columns, k) for k in COLUMN_ATTRIBUTES]
    assert all(not a.flags.owndata for a in arrays if isinstance(a, np.ndarray))


def _rows() -> list[list[str]]:
    lines = (SNAPSHOT / "tasks.tsv").read_text().splitlines()[1:]
    return [line.split("\t") for line in lines]


def test_comm_table_agrees_with_tasks_tsv() -> None:
    dump = parse_dump(SNAPSHOT)
    rows = _rows()
    assert [r[2] for r in rows] == list(dump.comms)
    assert [dump.comm(t) for t in range(dump.task_count)] == [r[2] for r in rows]
    # distinct, in first-occurrence order
    first_seen = list(dict.fromkeys(r[2] for r in rows))
    assert list(dump.comm_names) == first_seen
    assert dump.comm_ids.dtype == np.uint32 and len(dump.comm_ids) == dump.task_count
    assert [dump.comm_names[i] for i in dump.comm_ids.tolist()] == [r[2] for r in rows]


def test_frame_columns_are_the_token_columns_gathered() -> None:
    for dump in (parse_dump(SNAPSHOT), parse_dump(DATA / "hung-task-6.18.txt")):
        tokens = dump.frame_tokens
        assert tokens.dtype == np.uint32 and len(tokens) == dump.frame_count
        pairs = [
            (dump.frame_addresses, dump.token_addresses),
            (dump.frame_has_address, dump.token_has_address),
            (dump.frame_function_ids, dump.token_function_ids),
            (dump.frame_module_ids, dump.token_module_ids),
            (dump.frame_symbol_offsets, dump.token_symbol_offsets),
            (dump.frame_symbol_sizes, dump.token_symbol_sizes),
        ]
        for per_frame, per_token in pairs:
            assert per_token.shape == (dump.token_count,)
            assert per_frame.dtype == per_token.dtype
            assert np.array_equal(per_frame, per_token[tokens])
            assert per_frame is not per_token and not per_frame.flags.writeable
        # cached: the same array on every access
        assert dump.frame_function_ids is dump.frame_function_ids
        # tokens are distinct: no two rows of the token table are equal
        rows = set(
            zip(
                dump.token_addresses.tolist(),
                dump.token_has_address.tolist(),
                dump.token_function_ids.tolist(),
                dump.token_module_ids.tolist(),
                dump.token_symbol_offsets.tolist(),
                dump.token_symbol_sizes.tolist(),
                strict=True,
            )
        )
        assert len(rows) == dump.token_count
        # first-occurrence order: token k first appears before token k + 1
        _, first = np.unique(tokens, return_index=True)
        assert np.all(np.diff(first) > 0)


def test_snapshot_frames_match_the_text() -> None:
    dump = parse_dump(SNAPSHOT)
    worker = dump.names.index("worker_thread")
    frames = np.flatnonzero(dump.frame_function_ids == worker)
    assert len(frames) > 0
    first = dump.frame(int(frames[0]))
    assert (first.function, first.offset, first.size, first.address) == (
        "worker_thread",
        0x98,
        0x310,
        None,
    )
    assert all(dump.frame(int(i)).function == "worker_thread" for i in frames)
    assert dump.token_symbol_offsets.dtype == np.uint64
    assert int(dump.token_symbol_offsets.max()) < UNKNOWN_U64


def test_token_columns_are_read_only() -> None:
    dump = parse_dump(STACKS)
    for column in (dump.frame_tokens, dump.token_function_ids, dump.comm_ids):
        with pytest.raises(ValueError):
            column[0] = 1


def test_a_large_snapshot_is_the_sample_repeated(tmp_path: Path) -> None:
    """Big enough for the parallel parse: every copy reads like the original,
    with line numbers shifted by the copies before it."""
    text = STACKS.read_bytes()
    copies = 4 * 2**20 // len(text) + 3
    big = tmp_path / "stacks.txt"
    big.write_bytes(text * copies)
    one, many = parse_dump(STACKS), parse_dump(big)
    n, lines = one.task_count, text.count(b"\n")
    assert many.task_count == n * copies and many.frame_count == one.frame_count * copies
    assert many.comm_names == one.comm_names and many.token_count == one.token_count
    assert np.array_equal(many.comm_ids, np.tile(one.comm_ids, copies))
    assert np.array_equal(many.frame_tokens, np.tile(one.frame_tokens, copies))
    shifts = np.repeat(np.arange(copies, dtype=np.int64) * lines, n)
    assert np.array_equal(many.task_lines, np.tile(one.task_lines, copies) + shifts)
    frame_shifts = np.repeat(np.arange(copies, dtype=np.int64) * lines, one.frame_count)
    expected = np.tile(one.frame_lines.astype(np.int64), copies) + frame_shifts
    assert np.array_equal(many.frame_lines.astype(np.int64), expected)
    assert np.array_equal(many.stack_status_codes, np.tile(one.stack_status_codes, copies))
    assert many.warnings == one.warnings and many.skipped_lines == 0


def test_unreadable_counts_cover_the_whole_large_snapshot(tmp_path: Path) -> None:
    block = (
        "# pid=5 tid=5 comm=a state=S flags=0x0 kthread=0 cpu=0 status=unreadable\n"
        "[<0>] do_wait+0x5f/0xa0\n"
    )
    copies = 5 * 2**20 // len(block)
    path = tmp_path / "stacks.txt"
    path.write_text(block * copies)
    dump = parse_dump(path)
    assert dump.task_count == copies
    assert f"{copies} task(s) had an unreadable stack (status=unreadable): unknown" in dump.warnings


def test_invalid_utf8_in_a_large_snapshot_is_repaired_in_place(tmp_path: Path) -> None:
    text = STACKS.read_bytes()
    copies = 4 * 2**20 // len(text) + 2
    data = bytearray(text * copies)
    at = data.rindex(b"comm=") + len("comm=")
    data[at] = 0xFF
    path = tmp_path / "stacks.txt"
    path.write_bytes(bytes(data))
    dump = parse_dump(path)
    assert dump.task_count == parse_dump(STACKS).task_count * copies
    assert dump.comms[-1].startswith("\x1a")  # SUB: one byte for one byte, no second copy
    assert any("not valid UTF-8" in w for w in dump.warnings)


# ---- reading files -------------------------------------------------------------------------------


def test_missing_file_is_no_such_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(DumpParseError, match="no such file") as info:
        _core.parse_dump_file(str(missing))
    assert info.value.path == str(missing) and info.value.line is None


def test_stacks_txt_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "stacks.txt").mkdir()
    with pytest.raises(DumpParseError, match="is a directory") as info:
        parse_dump(tmp_path)
    assert info.value.path == os.path.join(tmp_path, "stacks.txt")


def test_unreadable_file_says_why() -> None:
    # /proc/self/mem has no mapping at address 0: reading it fails with EIO.
    with pytest.raises(DumpParseError, match="cannot read: Input/output error") as info:
        parse_dump("/proc/self/mem")
    assert info.value.path == "/proc/self/mem"


def test_empty_file_is_refused_as_unrecognised(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DumpParseError, match="no known stack-dump format"):
        parse_dump(empty)
    # ... unless the format is given: an empty /proc stack is one unknown task
    dump = parse_dump(empty, "proc_stack")
    assert dump.task_count == 1 and dump.stack_statuses[0] == "empty"


@pytest.mark.skipif(os.geteuid() != 0, reason="/proc/PID/stack needs root")
def test_a_proc_file_that_reports_size_zero_is_read() -> None:
    assert os.stat("/proc/self/stack").st_size == 0
    dump = parse_dump("/proc/self/stack")
    assert dump.source_format == "proc_stack" and dump.task_count == 1
    assert dump.pids[0] == os.getpid()
    functions = {f.function for f in dump.tasks[0].frames}
    assert "proc_pid_stack" in functions  # the reader's own stack, read by itself


def test_parse_dump_file_accepts_path_objects() -> None:
    by_path = _core.parse_dump_file(STACKS)
    assert by_path.format == "proc_snapshot" and len(by_path.pid) > 0


def test_dump_wraps_the_columns_without_copying_them() -> None:
    columns = _core.parse_dump_file(str(STACKS))
    dump = Dump(columns)
    assert np.shares_memory(dump.frame_tokens, columns.frame_token)
    assert np.shares_memory(dump.comm_ids, columns.comm)


def test_markers_and_code_tables_are_the_cores() -> None:
    """Python defines its sentinels and code tables from ``lpc._core``, not by hand."""
    from lpc import dump as dump_module
    from lpc import symbols as symbols_module

    assert dump_module.UNKNOWN_U64 == _core.UNKNOWN_U64 == 2**64 - 1
    assert dump_module.NO_ID == _core.NO_ID == -1
    assert Dump.NO_NAME == _core.NO_NAME == 0xFFFFFFFF
    assert [s.value for s in dump_module._STATUSES] == _core.dump_stack_statuses()
    assert [c.value for c in dump_module._CONTEXTS] == _core.dump_frame_contexts()
    assert set(dump_module._STATUSES) == set(dump_module.StackStatus)
    assert set(dump_module._CONTEXTS) == set(dump_module.FrameContext)
    assert list(symbols_module._KIND_NAMES) == _core.symbol_kinds()
    assert symbols_module._FUNCTION == 0
    assert symbols_module._NO_MODULE == _core.SYMBOL_NO_MODULE == 0xFFFFFFFF
    assert _core.symbol_formats() == ["kallsyms", "system_map"]
