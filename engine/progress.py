"""A progress line on stderr for long `cleanclaim check` runs.

Shows claims done, claims per second, time elapsed and, when the input's size is known,
a bar of the share of input read:

    [##########--------------]  42%  420,500 claims  16,210 claims/s  0:26

On a terminal the line redraws in place (at most 10 times a second); forced onto a
stream that is not a terminal (`--progress` into a log), it prints one line every few
seconds instead. `wanted` decides whether to show it at all.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False


def _is_pipe(stream: TextIO) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no file descriptor: not a pipe
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def wanted(flag: bool | None, stdout: TextIO, stderr: TextIO) -> bool:
    """Whether to show progress: `flag` when the user chose (`--progress/--no-progress`),
    else only when stderr is a terminal and the decisions go to a file (not into a pipe,
    where another program's output may share the terminal, nor to the terminal itself,
    where the bar would break the decisions' lines)."""
    if flag is not None:
        return flag
    return _isatty(stderr) and not _isatty(stdout) and not _is_pipe(stdout)


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Claims done and claims/s, drawn on `stream` (stderr) as they advance."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total_bytes: int | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = _isatty(stream)
        self.total_bytes = total_bytes or None
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.clock = clock
        self.started = clock()
        self.last_drawn = self.started
        self.claims = 0
        self.bytes_done: int | None = None
        self.closed = False

    def update(self, claims: int, bytes_done: int | None = None) -> None:
        """`claims` done so far, `bytes_done` of the input read; redraws when due."""
        self.claims = claims
        self.bytes_done = bytes_done
        now = self.clock()
        if now - self.last_drawn >= self.interval:
            self.last_drawn = now
            self._draw(now)

    def note(self, message: str) -> None:
        """A message (warning, error) on the same stream, without garbling the bar."""
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """The final figures, on a line of their own."""
        if self.closed:
            return
        self.closed = True
        if self.total_bytes is not None:
            self.bytes_done = self.total_bytes
        self._draw(self.clock(), final=True)

    def render(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        parts = []
        if self.total_bytes is not None and self.bytes_done is not None:
            share = min(1.0, self.bytes_done / self.total_bytes)
            filled = int(share * BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:4.0%}")
        parts.append(f"{self.claims:,} claims")
        parts.append(f"{self.claims / elapsed:,.0f} claims/s")
        parts.append(_clock_text(elapsed))
        return "  ".join(parts)

    def _draw(self, now: float, final: bool = False) -> None:
        text = self.render(now)
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
