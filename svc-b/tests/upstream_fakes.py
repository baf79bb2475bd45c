"""Fakes of svc-a's and svc-c's documented HTTP contracts, as real HTTP servers on 127.0.0.1
(aiohttp.web, in-process). They implement only what svc-b calls, as the contracts state it, and
record every request, so the HTTP clients' mapping of answers to the saga's errors is tested over
real sockets. They are NOT the services: the stage-9 gate (tests/gateway) is the real proof.

svc-a (Catalog): ``GET /products?sku=..`` → ``{"items": [...], "next_cursor"}``;
``POST /reservations`` → 201 (idempotent per order id; 409 ``out-of-stock``; 404 unknown sku);
``POST /reservations/{id}/commit|release`` → 200 (idempotent; 404 without a reservation).
svc-c (Payments): ``POST /payments/authorize`` (Idempotency-Key required) → 201 PaymentOut with
status ``authorized`` or ``declined``; ``tok_error`` → 502 ``processor-error``; an unknown token →
422 ``unknown-card-token``; ``POST /payments/{id}/capture|void|refund`` → 200 PaymentOut.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PROBLEMS = "https://caravan.dev/problems/"


def problem(status: int, slug: str, detail: str, *, retry_after: float | None = None) -> web.Response:
    document: dict[str, Any] = {"type": PROBLEMS + slug, "title": slug, "status": status, "detail": detail}
    headers = {}
    if retry_after is not None:
        document["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return web.json_response(
        document, status=status, content_type="application/problem+json", headers=headers
    )


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Upstream:
    """Shared behaviour: a request log and scripted failures (status answers or a slow answer)."""

    requests: list[Recorded] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)  # the next requests answer these statuses
    #: what a scripted 409 says, and how long it asks to wait (``Retry-After``, and the problem's
    #: ``retry_after`` member)
    conflict_slug: str = "conflict"
    fail_only: str = ""  # ``fail_with`` applies only to paths ending so ('': every path)
    retry_after: float | None = None
    delay: float = 0.0
    down: set[str] = field(default_factory=set)  # path endings answering 503 while listed
    port: int = 0

    async def record(self, request: web.Request) -> web.Response | None:
        raw = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                list(request.query.items()),
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with and request.path.endswith(self.fail_only):
            status = self.fail_with.pop(0)
            slug = self.conflict_slug if status == 409 else "scripted"
            answer = problem(status, slug, f"scripted {status}", retry_after=self.retry_after)
            return answer
        if any(request.path.endswith(ending) for ending in self.down):
            return problem(503, "scripted", f"{request.path} is down")
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FakeCatalogService(Upstream):
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # sku → {price, active}
    stock: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/products", self.list_products)
        app.router.add_post("/reservations", self.reserve)
        app.router.add_post("/reservations/{order_id}/{action}", self.move)
        return app

    async def list_products(self, request: web.Request) -> web.Response:
        if (failed := await self.record(request)) is not None:
            return failed
        skus = request.query.getall("sku", [])
        if len(skus) > 100:
            return problem(400, "validation-error", "at most 100 skus")
        items = [
            {"sku": s, "name": s, "description": "", "price": p["price"], "active": p.get("active", True)}
            for s, p in self.products.items()
            if s in skus
        ]
        return web.json_response({"items": items, "next_cursor": None})

    async def reserve(self, request: web.Request) -> web.Response:
        if (failed := await self.record(request)) is not None:
            return failed
        body = await request.json()
        order_id, lines = body["order_id"], body["lines"]
        if order_id in self.reservations:
            return web.json_response(self.reservations[order_id], status=201)
        for line in lines:
            if line["sku"] not in self.products:
                return problem(404, "product-not-found", f"no product {line['sku']}")
            if self.stock.get(line["sku"], 0) < line["quantity"]:
                return problem(409, "out-of-stock", f"not enough {line['sku']}")
        for line in lines:
            self.stock[line["sku"]] -= line["quantity"]
        self.reservations[order_id] = {
            "order_id": order_id,
            "status": "held",
            "lines": lines,
            "expires_at": "2030-01-01T00:00:00Z",
        }
        return web.json_response(self.reservations[order_id], status=201)

    async def move(self, request: web.Request) -> web.Response:
        if (failed := await self.record(request)) is not None:
            return failed
        order_id, action = request.match_info["order_id"], request.match_info["action"]
        reservation = self.reservations.get(order_id)
        if reservation is None:
            return problem(404, "reservation-not-found", f"no reservation for {order_id}")
        status = reservation["status"]
        if action == "commit":
            if status == "released":
                return problem(409, "reservation-released", "released")
            reservation["status"] = "committed"
        elif action == "release":
            if status != "released":
                for line in reservation["lines"]:
                    self.stock[line["sku"]] += line["quantity"]
            reservation["status"] = "released"
        else:
            return problem(404, "not-found", action)
        return web.json_response(reservation)


@dataclass
class FakePaymentsService(Upstream):
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/payments/authorize", self.authorize)
        app.router.add_post("/payments/{payment_id}/{action}", self.move)
        return app

    async def authorize(self, request: web.Request) -> web.Response:
        if (failed := await self.record(request)) is not None:
            return failed
        key = request.headers.get("Idempotency-Key")
        if not key:
            return problem(400, "validation-error", "Idempotency-Key required")
        if key in self.by_key:
            return web.json_response(self.by_key[key], status=201)
        body = await request.json()
        token = body["card_token"]
        if token == "tok_error":
            return problem(502, "processor-error", "the processor failed; nothing authorised")
        if token not in ("tok_approve", "tok_decline"):
            return problem(422, "unknown-card-token", f"unknown card token {token}")
        declined = token == "tok_decline"
        payment = {
            "id": f"pay-{next(self._ids)}",
            "order_id": body["order_id"],
            "status": "declined" if declined else "authorized",
            "amount": body["amount"],
            "captured": {"amount": 0, "currency": body["amount"]["currency"]},
            "refunded": {"amount": 0, "currency": body["amount"]["currency"]},
            "processor_reference": "ref",
            "decline_reason": "card_declined" if declined else None,
            "movements": [],
        }
        self.by_key[key] = payment
        self.payments[payment["id"]] = payment
        return web.json_response(payment, status=201)

    async def move(self, request: web.Request) -> web.Response:
        if (failed := await self.record(request)) is not None:
            return failed
        payment = self.payments.get(request.match_info["payment_id"])
        if payment is None:
            return problem(404, "payment-not-found", "no such payment")
        action = request.match_info["action"]
        allowed = {
            "capture": ("authorized", "captured"),
            "void": ("authorized", "voided"),
            "refund": ("captured", "refunded"),
        }
        source, target = allowed[action]
        if payment["status"] not in (source, target):
            return problem(409, "invalid-payment-transition", f"{payment['status']} cannot become {target}")
        payment["status"] = target
        return web.json_response(payment)


@asynccontextmanager
async def serving(*upstreams: Upstream) -> AsyncIterator[None]:
    """Serve each fake on loopback for the block: on ``upstream.port`` when set (e.g. a port that
    refused connections until now), else on a free port (then ``upstream.port``)."""
    runners = []
    try:
        for upstream in upstreams:
            runner = web.AppRunner(upstream.app())  # type: ignore[attr-defined]
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", upstream.port)
            await site.start()
            upstream.port = runner.addresses[0][1]
            runners.append(runner)
        yield
    finally:
        for runner in runners:
            await runner.cleanup()
