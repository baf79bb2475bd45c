"""A real aiohttp HTTP server on 127.0.0.1 whose behaviour a test scripts, and that counts requests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from caravan_commons.deadline import deadline_from_headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """One server instance: ``handler`` answers, ``seen`` records every request that arrived."""

    handler: Handler
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str | None = None) -> int:
        return sum(1 for s in self.seen if method is None or s.method == method)


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Upstream]:
    upstream = Upstream(handler)

    async def entry(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        upstream.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        request[UPSTREAM] = upstream
        return await upstream.handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", entry)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream.port = runner.addresses[0][1]
    try:
        yield upstream
    finally:
        await runner.cleanup()


UPSTREAM = web.RequestKey("upstream", Upstream)


def unused_port() -> int:
    """A loopback port nothing listens on (bound then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def problem(status: int, slug: str | None, detail: str, **extensions: object) -> web.Response:
    doc: dict[str, object] = {"status": status, "title": "t", "detail": detail, **extensions}
    if slug is not None:
        doc["type"] = slug if "://" in slug else f"https://caravan.dev/problems/{slug}"
    return web.json_response(doc, status=status, content_type="application/problem+json")


async def ok_json(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "method": request.method})


def always(status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return problem(status, None, f"scripted {status}")

    return handler


async def slow_honouring_deadline(request: web.Request) -> web.Response:
    """Works 'forever' but under the caller's deadline; records whether the work was cancelled."""
    upstream = request[UPSTREAM]
    deadline = deadline_from_headers(request.headers)
    assert deadline is not None
    try:
        async with asyncio.timeout(deadline.remaining()):
            upstream.events.append("started")
            await asyncio.sleep(3600)
    except TimeoutError:
        upstream.events.append("cancelled-by-deadline")
        upstream.cancelled.set()
        raise web.HTTPGatewayTimeout() from None
    upstream.events.append("finished")  # pragma: no cover - never reached
    return web.json_response({})


class FakeClock:
    """Real monotonic time plus a jump the test controls (to pass a cool-down without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
