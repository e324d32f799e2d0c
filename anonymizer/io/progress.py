"""A one-line progress display for terminals: lines, events/s, bytes done and time left.

It shows counts only, never anything read from the logs. On a terminal the line is redrawn in
place (``\r``); into a file or a pipe (``--progress`` forced), a plain line is written every
``PLAIN_INTERVAL`` seconds instead, so that a log file holds no carriage-return frames.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from .runner import Progress


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


PLAIN_INTERVAL = 10.0


def _duration(seconds: float) -> str:
    seconds = math.ceil(seconds)  # rounded up: a run that is not done never shows 0:00:00 left
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """Redraws one line on STREAM at most a few times a second; ``finish`` ends it."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.25) -> None:
        self.stream = stream = stream if stream is not None else sys.stderr
        isatty = getattr(stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.interval = interval if self.terminal else max(interval, PLAIN_INTERVAL)
        self.started = time.monotonic()
        self._last = 0.0
        self._width = 0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        fraction = progress.bytes_done / progress.bytes_total if progress.bytes_total else 0.0
        rate = progress.lines / elapsed
        left = elapsed * (1 - fraction) / fraction if fraction > 0.001 else None
        text = (
            f"{fraction:6.1%}  {_size(progress.bytes_done)} of {_size(progress.bytes_total)}"
            f"  file {min(progress.files_done + 1, progress.files_total)}/{progress.files_total}"
            f"  {progress.lines:,} lines  {rate:,.0f} lines/s"
            f"  {'left ' + _duration(left) if left is not None else ''}"
        )
        if not self.terminal:
            self.stream.write(text.rstrip() + "\n")
            self.stream.flush()
            return
        self._width = max(self._width, len(text))
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()

    def finish(self) -> None:
        if self._width and self.terminal:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
