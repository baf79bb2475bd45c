"""The client side of the proxy: one :class:`ClientConnection` per accepted TCP connection.

Requests are parsed with httptools as bytes arrive; each becomes an :class:`Exchange` that the
gateway handles in a task. Pipelined requests wait their turn. Bodies are streamed in both
directions with back-pressure: when one side's transport buffer fills, the other side stops
reading until it drains, so neither a large upload nor a large download is ever held whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

from caravan_gateway.headers import Headers, downstream_response_headers, serialize

if TYPE_CHECKING:
    from caravan_gateway.gateway import Gateway
    from caravan_gateway.upstream import UpstreamConnection

MAX_HEAD_BYTES = 64 * 1024
BUFFER_PAUSE_BYTES = 256 * 1024
LINGER_S = 5.0
_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})


class ResponseAborted(Exception):
    """The exchange cannot continue (the caller left, or the upstream died mid-answer)."""


class UpstreamLost(Exception):
    """The upstream connection closed before a complete answer head."""


class RetryableAnswer(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


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

    def __init__(self, conn: ClientConnection, method: bytes, url: bytes, headers: Headers,
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
            self.sink.transport.write(b"0\r\n\r\n")
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
            self._fail(RetryableAnswer(status))
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
            self._fail(ResponseAborted("the upstream closed mid-answer"))
        else:
            self._fail(UpstreamLost(str(exc) if exc else "connection closed"))

    def on_upstream_writable(self, writable: bool) -> None:
        if writable:
            self.conn.resume_reading("upstream")
        else:
            self.conn.pause_reading("upstream")

    def _finish(self) -> None:
        future = self.future
        if future is not None and not future.done():
            future.set_result(None)

    def _fail(self, exc: Exception) -> None:
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


class ClientConnection(asyncio.Protocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client_ip = b"127.0.0.1"
        self.current: Exchange | None = None
        self.parsing: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.closed = False
        self.lingering = False
        self.last_active = time.monotonic()
        self._url = b""
        self._headers: Headers = []
        self._head_bytes = 0
        self._paused: set[str] = set()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode()
        self.gateway.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject(501, b"protocol upgrades (WebSocket) are not supported by the gateway")
        except httptools.HttpParserError:
            self.reject(400, b"malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gateway.connections.discard(self)
        for exchange in (self.current, *self.queue):
            if exchange is not None:
                exchange._fail(ResponseAborted("the caller went away"))
                exchange.detach_upstream()

    def pause_writing(self) -> None:
        up = self.current.upstream if self.current is not None else None
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.current.upstream if self.current is not None else None
        if up is not None and up.transport is not None and not up.closed:
            up.transport.resume_reading()

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ValueError("request head too large")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        exchange = Exchange(self, parser.get_method(), self._url, self._headers, parser.should_keep_alive(),
                            parser.get_http_version(), self.gateway.max_body)  # fmt: skip
        self.parsing = exchange
        self.last_active = time.monotonic()
        if self.current is None:
            self.current = exchange
            self.gateway.start(exchange)
        else:
            self.queue.append(exchange)
            if len(self.queue) > 16:
                self.pause_reading("queue")

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.body_received(body)

    def on_message_complete(self) -> None:
        exchange, self.parsing = self.parsing, None
        if exchange is not None:
            exchange.body_complete()

    # -- flow control -----------------------------------------------------------------------
    def pause_reading(self, reason: str) -> None:
        if not self._paused and not self.closed:
            self.transport.pause_reading()
        self._paused.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._paused:
            self._paused.discard(reason)
            if not self._paused and not self.closed:
                self.transport.resume_reading()

    # -- answering --------------------------------------------------------------------------
    def head_bytes(self, exchange: Exchange, status: int, headers: Headers) -> bytes:
        headers.append((b"x-request-id", exchange.request_id))
        if not self.reusable(exchange):
            headers.append((b"connection", b"close"))
        return serialize(b"HTTP/1.1 %d %b" % (status, _PHRASES.get(status, b"Unknown")), headers)

    def reusable(self, exchange: Exchange) -> bool:
        return (
            exchange.keep_alive
            and not exchange.too_large
            and not exchange.until_close
            and not self.gateway.draining
            and (exchange.body_done or not exchange.has_body)
        )

    def respond(self, exchange: Exchange, status: int, headers: Headers, body: bytes) -> None:
        """A complete answer made by the gateway itself."""
        exchange.status = status
        headers.append((b"content-length", b"%d" % len(body)))
        head = self.head_bytes(exchange, status, headers)
        self.transport.write(head if exchange.is_head else head + body)
        exchange.committed = True
        exchange.complete = True
        exchange.response_bytes = len(body)

    def body_too_large(self, exchange: Exchange) -> None:
        """Streamed bytes passed the limit: stop forwarding and answer 413 if nothing was sent yet."""
        exchange.detach_upstream()
        if exchange is self.current and not exchange.committed:
            self.gateway.too_large_midway(exchange)
        self.resume_reading("buffer")
        self.resume_reading("upstream")

    def exchange_done(self, exchange: Exchange) -> None:
        """The answer to ``exchange`` is complete: close, or go on with the next request."""
        if self.closed:
            return
        for reason in ("upstream", "buffer"):  # back-pressure from this exchange's upstream ends with it
            self.resume_reading(reason)
        if exchange.too_large and not exchange.body_done and exchange.committed:
            # Lingering close: read and drop the rest of the body for a while, so the caller gets
            # to read the 413 instead of a connection reset.
            self.lingering = True
            asyncio.get_running_loop().call_later(LINGER_S, self.abort, True)
            return
        if not exchange.complete:  # e.g. the deadline cut a streaming answer: the caller must see it end
            self.abort()
            return
        if not self.reusable(exchange):
            self.closed = True
            self.transport.close()
            return
        self.last_active = time.monotonic()
        self.current = None
        if self.queue:
            self.current = self.queue.popleft()
            self.resume_reading("queue")
            self.gateway.start(self.current)

    def reject(self, status: int, detail: bytes) -> None:
        """A request that cannot even be parsed: a plain problem answer, then close."""
        body = b'{"type":"about:blank","title":"%b","status":%d,"detail":"%b"}' % (
            _PHRASES.get(status, b"Error"), status, detail,
        )  # fmt: skip
        head = serialize(
            b"HTTP/1.1 %d %b" % (status, _PHRASES.get(status, b"Error")),
            [(b"content-type", b"application/problem+json"), (b"content-length", b"%d" % len(body)),
             (b"connection", b"close")],
        )  # fmt: skip
        if self.current is None or not self.current.committed:
            self.transport.write(head + body)
        self.abort(graceful=True)

    def abort(self, graceful: bool = False) -> None:
        if not self.closed:
            self.closed = True
            if graceful:
                self.transport.close()
            else:
                self.transport.abort()

    def close_if_idle(self, idle_for: float = 0.0) -> bool:
        if self.current is None and not self.closed and time.monotonic() - self.last_active >= idle_for:
            self.closed = True
            self.transport.close()
            return True
        return False
