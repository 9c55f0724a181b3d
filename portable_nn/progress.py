"""A dependency-free progress bar for the command line: redraws in place on a terminal, one line otherwise.

On a TTY the bar is redrawn at most every ``interval`` seconds; without one (CI logs, pipes)
nothing is written until ``close()``, which writes a single summary line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar = ProgressBar(total, label)``; ``bar.update(n, note="loss 0.12")`` per step; ``bar.close()``."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 28,
        interval: float = 0.1,
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.live = _isatty(self.stream) if enabled is None else enabled
        self.width = width
        self.interval = interval
        self.count = 0
        self.note = ""
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = 0  # length of the line on screen, to blank leftovers when it shrinks
        self._closed = False

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Advance by ``n`` steps; ``note`` replaces the text shown after the bar."""
        self.count += n
        if note is not None:
            self.note = note
        now = time.perf_counter()
        if self.live and (now - self._last_draw >= self.interval or self.count >= self.total):
            self._last_draw = now
            self._draw(self._line(now - self._start))

    def close(self) -> None:
        """Finish the line (live) or write the one summary line (not live)."""
        if self._closed:
            return
        self._closed = True
        line = self._line(time.perf_counter() - self._start)
        if self.live:
            self._draw(line)
            self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _draw(self, line: str) -> None:
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def _line(self, elapsed: float) -> str:
        fraction = self.count / self.total if self.total else 1.0
        filled = min(self.width, int(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        note = f"  {self.note}" if self.note else ""
        return f"{self.label} [{bar}] {self.count}/{self.total} {elapsed:5.1f}s{note}"

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False
