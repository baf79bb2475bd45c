"""Connections to service instances: an HTTP/1.1 response parser per connection, and a keep-alive pool.

An :class:`UpstreamConnection` serves one exchange at a time; it hands the response head, body
chunks and completion to its current listener (the gateway's request object) as they arrive, so
nothing is buffered here. A connection goes back to the pool only after a complete response
that allows keep-alive; a connection that closes while idle simply leaves the pool.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import httptools

if TYPE_CHECKING:
    from caravan_gateway.headers import Headers


class ResponseListener(Protocol):
    def on_response_head(self, status: int, headers: Headers, keep_alive: bool) -> None: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_complete(self) -> None: ...
    def on_upstream_lost(self, exc: Exception | None) -> None: ...
    def on_upstream_writable(self, writable: bool) -> None: ...
    def flush(self) -> None: ...


class ConnectFailed(Exception):
    """No connection could be established (nothing was sent)."""


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_headers",
        "closed",
        "key",
        "listener",
        "parser",
        "pool",
        "reused",
        "transport",
        "until_close",
    )

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.listener: ResponseListener | None = None
        self.closed = False
        self.reused = False
        self.until_close = False
        self._headers: Headers = []

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        listener = self.listener
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.abort(exc)
        if listener is not None:
            listener.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        listener, self.listener = self.listener, None
        if listener is not None:
            if self.until_close and exc is None:
                listener.on_response_complete()
            else:
                listener.on_upstream_lost(exc)

    def pause_writing(self) -> None:
        if self.listener is not None:
            self.listener.on_upstream_writable(False)

    def resume_writing(self) -> None:
        if self.listener is not None:
            self.listener.on_upstream_writable(True)

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._headers = []
        self.until_close = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (we never send Expect, so rare): not forwarded
            return
        headers = self._headers
        if status not in (204, 304):
            framed = False
            for name, value in headers:
                if name == b"content-length" or (
                    name == b"transfer-encoding" and b"chunked" in value.lower()
                ):
                    framed = True
                    break
            self.until_close = not framed
        if self.listener is not None:
            self.listener.on_response_head(status, headers, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.listener is not None:
            self.listener.on_response_body(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            return
        self.until_close = False
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_response_complete()

    # -- use --------------------------------------------------------------------------------
    def abort(self, exc: Exception | None = None) -> None:
        """Drop the connection (its state is unknown): the listener hears about it once."""
        if not self.closed:
            self.closed = True
            assert self.transport is not None
            self.transport.abort()


class UpstreamPool:
    """Idle keep-alive connections per instance ``(host, port)``."""

    def __init__(self, *, max_idle_per_instance: int = 512) -> None:
        self._idle: dict[tuple[str, int], list[UpstreamConnection]] = {}
        self._max_idle = max_idle_per_instance

    async def acquire(self, host: str, port: int, connect_timeout: float) -> UpstreamConnection:
        key = (host, port)
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: UpstreamConnection(self, key), host, port)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{host}:{port}: {exc or type(exc).__name__}") from exc
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if conn.closed:
            return
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in list(idle):
                conn.abort()
        self._idle.clear()
