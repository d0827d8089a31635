"""Progress of long work, on stderr, only when stderr is a terminal.

The work says where it is (:func:`phase`, then :func:`step` for a count
within the phase); a line ``lpc: <phase> (<step>)… N s`` is redrawn in place
twice a second once a phase has lasted half a second, and erased when the
work ends, so a quick run shows nothing. Nowhere but a terminal: on a pipe,
a file or a test's captured stderr :func:`on_stderr` turns nothing on, and
:func:`phase` and :func:`step` cost a global read.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress", "clear", "on_stderr", "phase", "step"]

#: Seconds between redraws, and before a phase is first drawn.
_TICK = 0.5


class Progress:
    """One progress line on ``stream``, redrawn by a daemon thread."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._phase, self._step, self._since = "", "", time.monotonic()
        self._shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lpc-progress", daemon=True)
        self._thread.start()

    def phase(self, text: str) -> None:
        with self._lock:
            self._phase, self._step, self._since = text, "", time.monotonic()

    def step(self, text: str) -> None:
        with self._lock:
            self._step = text

    def clear(self) -> None:
        """Erase the line (before another message is written to the stream)."""
        with self._lock:
            self._erase()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._erase()

    def _erase(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def _run(self) -> None:
        while not self._stop.wait(_TICK):
            with self._lock:
                elapsed = time.monotonic() - self._since
                if not self._phase or elapsed < _TICK:
                    continue
                step = f" ({self._step})" if self._step else ""
                line = f"lpc: {self._phase}{step}… {elapsed:.0f} s"
                columns = shutil.get_terminal_size((80, 24)).columns
                self.stream.write("\r\x1b[K" + line[:max(columns - 1, 10)])
                self.stream.flush()
                self._shown = True


_active: Progress | None = None


def phase(text: str) -> None:
    """The work now under way (a no-op unless :func:`on_stderr` is on)."""
    if _active is not None:
        _active.phase(text)


def step(text: str) -> None:
    """Where the current phase is (``1200/5000 examples``)."""
    if _active is not None:
        _active.step(text)


def clear() -> None:
    """Erase the progress line before writing a message to stderr."""
    if _active is not None:
        _active.clear()


@contextmanager
def on_stderr(stream: TextIO | None = None) -> Iterator[Progress | None]:
    """Progress on ``stream`` (stderr) for the ``with`` block, when it is a terminal."""
    global _active
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if _active is not None or not (isatty and isatty()):
        yield None
        return
    _active = Progress(stream)
    try:
        yield _active
    finally:
        progress, _active = _active, None
        progress.close()
