"""Writes a large kernel log made of the real kernel-log samples laid end to
end (for the memory bound in the README): ``python tools/bigdump.py OUT SIZE_MB
[--bad-byte]``. With ``--bad-byte`` one byte in the middle is made invalid
UTF-8 (the case that used to cost a second, lossy copy of the whole text)."""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LOGS = ["hung-task-6.18.txt", "sysrq-t-6.x-i915-modules.txt",
        "sysrq-t-5.9-header-change-journald.txt", "hung-task-arm64-6.x-task-flags.txt",
        "hung-task-6.0-syzbot-symbolized.txt", "hung-task-5.3-x86.txt",
        "hung-task-4.4-x86-addresses.txt", "rcu-stall-6.10-nmi.txt"]


def main(argv: list[str]) -> int:
    out, size = Path(argv[0]), int(argv[1]) << 20
    # Each sample without its provenance line, so that the log reads as one.
    unit = b"".join(b"".join((DATA / n).read_bytes().splitlines(keepends=True)[1:])
                    for n in LOGS)
    with out.open("wb") as f:
        written = 0
        while written < size:
            f.write(unit)
            written += len(unit)
    if "--bad-byte" in argv:
        with out.open("r+b") as f:
            f.seek(written // 2)
            line = f.read(4096)
            at = written // 2 + line.index(b"\n") + 1  # the start of a line
            f.seek(at)
            f.write(b"\xff")
    print(f"{out}: {written >> 20} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
