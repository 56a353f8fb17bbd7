"""Decisions of a batch on their way to a client that may not be reading yet."""

from __future__ import annotations

import tempfile
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Any

BLOCK = 64 * 1024
# Decisions of a batch queued in memory for a client that is not reading yet; beyond it
# they wait in a temporary file, up to BATCH_SPOOL_LIMIT (then the server waits).
BATCH_OUTPUT_BUFFER = 8 * 1024 * 1024
BATCH_SPOOL_LIMIT = 2 * 1024 * 1024 * 1024


class BatchOutput:
    """Bytes on their way to the client, sent by a writer thread so that reading the
    request goes on while the client is not reading. Past `cap` bytes in memory, what
    follows waits in a temporary file (a client that sends a whole batch before it reads
    still gets every decision); `put` waits only when the file holds BATCH_SPOOL_LIMIT
    bytes (for at most `timeout` seconds without progress)."""

    def __init__(self, write: Callable[[bytes], Any], cap: int, timeout: float) -> None:
        self._write = write
        self._cap = cap
        self._timeout = timeout
        self._items: deque[bytes | None] = deque()
        self._held = 0
        self._spool: IO[bytes] | None = None
        self._spool_read = 0
        self._spool_written = 0
        self._closing = False
        self._failed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name="cleanclaim-batch-writer", daemon=True
        )
        self._thread.start()

    def put(self, data: bytes) -> None:
        with self._cond:
            if self._failed:
                raise ConnectionError("the client is gone")
            if self._spool is None and self._held + len(data) <= self._cap:
                self._items.append(data)
                self._held += len(data)
            else:
                while (
                    self._spool_written - self._spool_read > BATCH_SPOOL_LIMIT and not self._failed
                ):
                    if not self._cond.wait(self._timeout):
                        raise TimeoutError("the client does not read its decisions")
                if self._failed:
                    raise ConnectionError("the client is gone")
                if self._spool is None:
                    self._spool = tempfile.TemporaryFile(prefix="cleanclaim-batch-")  # noqa: SIM115
                self._spool.seek(self._spool_written)
                self._spool.write(data)
                self._spool_written += len(data)
            self._cond.notify_all()

    def close(self) -> bool:
        """Wait until everything queued is sent; False when sending failed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._spool is not None:
            self._spool.close()
        return not self._failed

    def _next(self) -> bytes | None:
        """The next bytes to send (memory first, then the spool); None: all sent."""
        with self._cond:
            while True:
                if self._items:
                    batch = []
                    while self._items:
                        item = self._items.popleft()
                        assert item is not None
                        batch.append(item)
                    data = b"".join(batch)
                    self._held -= len(data)
                    return data
                if self._spool is not None and self._spool_read < self._spool_written:
                    self._spool.seek(self._spool_read)
                    data = self._spool.read(min(BLOCK * 16, self._spool_written - self._spool_read))
                    self._spool_read += len(data)
                    if self._spool_read == self._spool_written:  # drained: back to memory
                        self._spool.seek(0)
                        self._spool.truncate()
                        self._spool_read = self._spool_written = 0
                        self._spool.close()
                        self._spool = None
                    return data
                if self._closing:
                    return None
                self._cond.wait()

    def _run(self) -> None:
        while True:
            data = self._next()
            if data is None:
                return
            try:
                self._write(data)
            except (OSError, ValueError, RuntimeError):
                with self._cond:
                    self._failed = True
                    self._items.clear()
                    self._cond.notify_all()
                return
            with self._cond:
                self._cond.notify_all()
