"""The client side of the proxy: one :class:`ClientConnection` per accepted TCP connection.

Requests are parsed with httptools as bytes arrive; each becomes an :class:`Exchange` that the
gateway (seen here only as a :class:`Dispatcher`) handles in a task. Pipelined requests wait their
turn. Bodies are streamed in both directions with back-pressure: when one side's transport buffer
fills, the other side stops reading until it drains, so neither a large upload nor a large download
is ever held whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

import httptools

from caravan_gateway.exchange import Exchange, ResponseAborted
from caravan_gateway.headers import Headers, serialize
from caravan_gateway.problems import body_too_large

if TYPE_CHECKING:
    from caravan_gateway.settings import GatewaySettings

MAX_HEAD_BYTES = 64 * 1024
LINGER_S = 5.0
_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}


class Dispatcher(Protocol):
    """What a client connection needs of the gateway: its limits, the set of open connections,
    whether it is draining, and where each parsed request goes."""

    settings: GatewaySettings
    connections: set[ClientConnection]
    draining: bool

    def start(self, exchange: Exchange) -> None: ...


class ClientConnection(asyncio.Protocol):
    def __init__(self, gateway: Dispatcher) -> None:
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
        self._target_too_long = False
        self._discarding = False
        self._head_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode()
        if len(self.gateway.connections) >= self.gateway.settings.max_connections:
            self.reject(503, b"the gateway holds as many connections as it may; retry later")
            return
        self.gateway.connections.add(self)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._discarding:  # refused; the caller's remaining bytes are read and dropped
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject(501, b"protocol upgrades (WebSocket) are not supported by the gateway")
        except httptools.HttpParserError:
            if self._target_too_long:
                self.reject(414, b"the request target is longer than the gateway accepts", linger=True)
            else:
                self.reject(400, b"malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._stop_head_timer()
        self.gateway.connections.discard(self)
        for exchange in (self.current, *self.queue):
            if exchange is not None:
                exchange.fail(ResponseAborted("the caller went away"))
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
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if len(self._url) > self.gateway.settings.max_target_bytes:
            self._target_too_long = True
            raise ValueError("request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ValueError("request head too large")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        parser = self.parser
        exchange = Exchange(self, parser.get_method(), self._url, self._headers, parser.should_keep_alive(),
                            parser.get_http_version(), self.gateway.settings.max_body_bytes)  # fmt: skip
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

    # -- the head timeout -------------------------------------------------------------------
    def _start_head_timer(self) -> None:
        """A request head must arrive whole within ``head_timeout_s`` of its first byte (or of
        the connection, for the first one): a slow-loris client is answered 408 and closed."""
        self._stop_head_timer()
        if not self.closed:
            self._head_timer = asyncio.get_running_loop().call_later(
                self.gateway.settings.head_timeout_s, self._head_timed_out
            )

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.closed or self.parsing is not None or self.current is not None:
            return
        self.reject(408, b"the request head did not arrive in time")

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
            exchange.fail(body_too_large(exchange.max_body))
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

    def reject(self, status: int, detail: bytes, *, linger: bool = False) -> None:
        """A request that cannot even be parsed: a plain problem answer, then close — or, with
        ``linger``, half-close and drop what the caller is still sending for a while, so it gets
        to read the answer instead of a connection reset."""
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
        if linger and not self.closed and self.transport.can_write_eof():
            self._discarding = True
            self._stop_head_timer()
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_S, self.abort, True)
            return
        self.abort(graceful=True)

    def abort(self, graceful: bool = False) -> None:
        self._stop_head_timer()
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
