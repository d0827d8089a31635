"""Reading input files the safe way: regular files only, and bounded.

A dump, symbol table or patch list is a file a person names; lpc refuses at
once what could hang (a FIFO, a terminal), never end (``/dev/zero``), or is
not what it claims, instead of reading it.
"""

from __future__ import annotations

import os
import stat
import zlib

from lpc.errors import InputFileError

__all__ = ["MiB", "check_input_path", "inflate_gzip", "read_input"]

MiB = 1 << 20


def check_input_path(path: str | os.PathLike[str], what: str, *, directory: bool = False) -> str:
    """``path`` as a string, after checking that it is a regular file (or, with
    ``directory``, a directory); an :class:`InputFileError` otherwise."""
    where = os.fspath(path)
    try:
        mode = os.stat(where).st_mode
    except OSError as exc:
        raise InputFileError(f"cannot read {what} ({exc.strerror or exc})", where) from exc
    if stat.S_ISREG(mode) or (directory and stat.S_ISDIR(mode)):
        return where
    kind = ("a directory" if stat.S_ISDIR(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    expected = "a regular file or a directory" if directory else "a regular file"
    raise InputFileError(f"{what} must be {expected}, and this is {kind}", where)


def read_input(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (a procfs file
    says size 0, so the bound holds on what is read, not on ``st_size``)."""
    where = check_input_path(path, what)
    try:
        with open(where, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputFileError(f"cannot read {what} ({exc.strerror or exc})", where) from exc
    if len(data) > limit:
        raise InputFileError(
            f"{what} is larger than {limit // MiB} MiB: not a {what} lpc knows", where
        )
    return data


def inflate_gzip(data: bytes, limit: int) -> tuple[bytes, bool]:
    """A gzip stream's content, at most ``limit + 1`` bytes of it (so a small
    file that inflates without end stops there), and whether the stream
    ended. ``zlib.error`` when it is no gzip stream."""
    dec = zlib.decompressobj(wbits=31)
    return dec.decompress(data, limit + 1), dec.eof
