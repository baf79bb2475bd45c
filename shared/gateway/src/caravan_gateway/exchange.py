"""One request passing through the gateway: its body on the way in, its answer on the way out.

An :class:`Exchange` is created by the client connection when a request head has been parsed; it
sees that connection only as a :class:`Caller`, so this module imports neither the connection nor
the gateway. The body arrives through :meth:`Exchange.body_received` and goes straight to the
upstream once one is attached (buffered, with reading paused past a threshold, until then). The
upstream connection calls the ``on_response_*`` methods as it parses the answer; their output is
gathered and written to the caller once per upstream read (:meth:`Exchange.flush`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from caravan_gateway.headers import Headers, downstream_response_headers

if TYPE_CHECKING:
    from caravan_gateway.upstream import UpstreamConnection

BUFFER_PAUSE_BYTES = 256 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class ResponseAborted(Exception):
    """The exchange cannot continue (the caller left, or the upstream died mid-answer)."""


class UpstreamLost(Exception):
    """The upstream connection closed before a complete answer head."""


class RetryableAnswer(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Caller(Protocol):
    """The client connection an exchange belongs to, as the exchange and the gateway use it
    (:class:`caravan_gateway.connection.ClientConnection`)."""

    transport: asyncio.Transport
    client_ip: bytes
    closed: bool
    lingering: bool

    def head_bytes(self, exchange: Exchange, status: int, headers: Headers) -> bytes: ...
    def respond(self, exchange: Exchange, status: int, headers: Headers, body: bytes) -> None: ...
    def exchange_done(self, exchange: Exchange) -> None: ...
    def body_too_large(self, exchange: Exchange) -> None: ...
    def pause_reading(self, reason: str) -> None: ...
    def resume_reading(self, reason: str) -> None: ...
    def abort(self, graceful: bool = False) -> None: ...


class Exchange:
    """One request from a client, and the state of its answer."""

    __slots__ = (
        "_chunked_out",
        "_until_close",
        "body_chunked",
        "body_done",
        "body_waiter",
        "buffered",
        "buffered_size",
        "committed",
        "complete",
        "conn",
        "content_length",
        "future",
        "has_body",
        "headers",
        "is_head",
        "keep_alive",
        "max_body",
        "method",
        "out",
        "received",
        "request_id",
        "response_bytes",
        "retry_statuses",
        "sink",
        "started",
        "status",
        "too_large",
        "upstream",
        "url",
        "version",
    )  # fmt: skip

    def __init__(self, conn: Caller, method: bytes, url: bytes, headers: Headers,
                 keep_alive: bool, version: str, max_body: int) -> None:  # fmt: skip
        self.conn = conn
        self.method = method
        self.url = url
        self.headers = headers
        self.keep_alive = keep_alive
        self.version = version
        self.max_body = max_body
        self.is_head = method == b"HEAD"
        self.started = time.perf_counter()
        self.request_id = b""
        self.status = 0
        self.committed = False
        self.complete = False  # the whole answer has been written
        self.response_bytes = 0
        # request body
        self.content_length: int | None = None
        self.body_chunked = False
        for name, value in headers:
            if name == b"content-length":
                self.content_length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self.body_chunked = True
        self.has_body = self.body_chunked or bool(self.content_length)
        self.body_done = not self.has_body
        self.received = 0
        self.too_large = False
        self.buffered: list[bytes] | None = []
        self.buffered_size = 0
        self.body_waiter: asyncio.Future[None] | None = None
        self.sink: UpstreamConnection | None = None
        # the current upstream attempt
        self.upstream: UpstreamConnection | None = None
        self.future: asyncio.Future[None] | None = None
        self.retry_statuses: frozenset[int] = frozenset()
        self._until_close = False
        self._chunked_out = False
        self.out: list[bytes] = []  # answer bytes gathered while one upstream read is parsed

    # ---------------------------------------------------------------- request body (from client)
    def body_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_body:
            if not self.too_large:
                self.too_large = True
                self.conn.body_too_large(self)
            return
        sink = self.sink
        if sink is not None:
            if sink.closed or sink.transport is None:
                return  # the upstream answered (or failed) without waiting for the rest: drop it
            sink.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.body_chunked else chunk)
        elif self.buffered is not None:
            self.buffered.append(chunk)
            self.buffered_size += len(chunk)
            if self.buffered_size > BUFFER_PAUSE_BYTES and self.body_waiter is None:
                self.conn.pause_reading("buffer")

    def body_complete(self) -> None:
        self.body_done = True
        if self.too_large and self.conn.lingering:
            self.conn.abort(graceful=True)
        sink = self.sink
        if sink is not None and self.body_chunked and not sink.closed and sink.transport is not None:
            sink.transport.write(b"0\r\n\r\n")
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read_whole_body(self) -> bytes:
        """The complete (small) body, kept so the request can be sent again."""
        if not self.body_done:
            self.body_waiter = asyncio.get_running_loop().create_future()
            self.conn.resume_reading("buffer")
            await self.body_waiter
        return b"".join(self.buffered or ())

    def stream_body_to(self, upstream: UpstreamConnection) -> None:
        """Send what arrived so far to ``upstream`` and route the rest of the body straight to it."""
        assert upstream.transport is not None
        write = upstream.transport.write
        for chunk in self.buffered or ():
            write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.body_chunked else chunk)
        self.buffered = None
        self.sink = upstream
        if self.body_done and self.body_chunked:
            write(b"0\r\n\r\n")
        self.conn.resume_reading("buffer")

    # ---------------------------------------------------------------- answer (from upstream)
    def on_response_head(self, status: int, headers: Headers, keep_alive: bool) -> None:
        if status in self.retry_statuses:
            self.fail(RetryableAnswer(status))
            return
        self.status = status
        out = downstream_response_headers(headers)
        body_allowed = status not in _NO_BODY_STATUS and not self.is_head
        self._until_close = False
        if self.is_head or status in _NO_BODY_STATUS:
            length = next((v for n, v in headers if n == b"content-length"), None)
            if length is not None:
                out.append((b"content-length", length))
        elif body_allowed:
            length = next((v for n, v in headers if n == b"content-length"), None)
            chunked = any(n == b"transfer-encoding" and b"chunked" in v.lower() for n, v in headers)
            if length is not None and not chunked:
                out.append((b"content-length", length))
            elif self.version == "1.1":
                out.append((b"transfer-encoding", b"chunked"))
                self._chunked_out = True
            else:
                self._until_close = True
        self.out.append(self.conn.head_bytes(self, status, out))
        self.committed = True
        if self.is_head and self.upstream is not None:
            self.flush()
            self.complete = True
            up, self.upstream = self.upstream, None
            up.listener = None
            up.abort()
            self._finish()

    def on_response_body(self, chunk: bytes) -> None:
        if not self.committed or self.is_head:
            return
        self.response_bytes += len(chunk)
        self.out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self._chunked_out else chunk)

    def on_response_complete(self) -> None:
        if not self.committed:
            return
        if self._chunked_out:
            self.out.append(b"0\r\n\r\n")
        self.flush()
        self.complete = True
        up, self.upstream = self.upstream, None
        if up is not None:
            if self.body_done and not self.too_large:
                up.pool.release(up)
            else:
                up.abort()
        self._finish()

    def flush(self) -> None:
        """Write what the last upstream read produced, in one write."""
        out = self.out
        if out:
            if not self.conn.closed:
                self.conn.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def on_upstream_lost(self, exc: Exception | None) -> None:
        self.flush()
        self.upstream = None
        if self.committed:
            self.conn.abort()
            self.fail(ResponseAborted("the upstream closed mid-answer"))
        else:
            self.fail(UpstreamLost(str(exc) if exc else "connection closed"))

    def on_upstream_writable(self, writable: bool) -> None:
        if writable:
            self.conn.resume_reading("upstream")
        else:
            self.conn.pause_reading("upstream")

    def _finish(self) -> None:
        future = self.future
        if future is not None and not future.done():
            future.set_result(None)

    def fail(self, exc: Exception) -> None:
        """End the current upstream attempt with ``exc`` (raised where the gateway awaits it);
        nothing happens when no attempt is waiting."""
        future = self.future
        if future is not None and not future.done():
            future.set_exception(exc)

    def detach_upstream(self) -> None:
        """Abandon the current attempt: its connection is dropped (its state is unknown)."""
        up, self.upstream = self.upstream, None
        if self.sink is up:
            self.sink = None
        if up is not None:
            up.listener = None
            up.abort()

    @property
    def until_close(self) -> bool:
        return self._until_close
