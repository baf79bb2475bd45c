"""A buffered loguru sink: log lines are written in batches instead of one write per line.

A service under load writes an access-log line per request; with loguru's own file or stream sink
each line is a ``write`` system call (a stream sink also flushes every line). :class:`BufferedSink`
keeps lines in memory and writes them together when

- ``interval`` seconds have passed since the last write (checked on every line, and by a timer
  thread so that a quiet service's last lines do not wait for the next one),
- the buffer holds ``max_bytes``, or
- a line is a WARNING or worse (errors are never held back).

:meth:`stop` writes what is left; loguru calls it when the handler is removed — at interpreter
exit (loguru's ``atexit`` hook) and in :func:`flush_logs`, which the server calls once the app has
stopped (SIGTERM), also on its ``os._exit`` path. What a SIGKILL interrupts is lost: at most
``interval`` seconds of INFO lines.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import IO, Any

WARNING_NO = 30
_SINKS: weakref.WeakSet[BufferedSink] = weakref.WeakSet()


class BufferedSink:
    """A loguru sink (an object with ``write`` and ``stop``, deliberately no ``flush``: loguru would
    call it after every line) writing to a file path (appending) or a text stream."""

    def __init__(self, target: str | IO[str], *, interval: float = 1.0, max_bytes: int = 1 << 16) -> None:
        self._owned = isinstance(target, str)
        self._stream: IO[str] | None = (
            open(target, "a", encoding="utf-8") if isinstance(target, str) else target  # noqa: SIM115 - closed in stop()
        )
        self.interval = interval
        self.max_bytes = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        _SINKS.add(self)
        if interval > 0:
            threading.Thread(target=self._tick, name="caravan-log-flush", daemon=True).start()

    def write(self, message: Any) -> None:
        record = getattr(message, "record", None)  # loguru's message: a str with its record
        urgent = record is not None and record["level"].no >= WARNING_NO
        with self._lock:
            self._lines.append(str(message))
            self._size += len(message)
            if urgent or self._size >= self.max_bytes or time.monotonic() - self._last >= self.interval:
                self._drain()

    def drain(self) -> None:
        """Write whatever is buffered now."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        self._last = time.monotonic()
        if not self._lines or self._stream is None:
            return
        text, self._lines, self._size = "".join(self._lines), [], 0
        self._stream.write(text)
        self._stream.flush()

    def _tick(self) -> None:
        # checks four times per interval, so no line waits much longer than ``interval``
        while not self._stopped.wait(self.interval / 4):
            if self._lines and time.monotonic() - self._last >= self.interval:
                self.drain()

    def stop(self) -> None:
        """Write what is left and close a file this sink opened (loguru calls this on removal)."""
        self._stopped.set()
        with self._lock:
            self._drain()
            if self._owned and self._stream is not None:
                self._stream.close()
            self._stream = None


def flush_logs() -> None:
    """Write every buffered sink's lines now (before a process exits without ``atexit``)."""
    for sink in list(_SINKS):
        sink.drain()
    sys.stderr.flush()


__all__ = ["BufferedSink", "flush_logs"]
