"""The whole system on the local runtime, in a workspace of its own, for the cross-service suites.

:func:`bring_up` runs every action of plan stages 1–12 in dependency order (provisioning, the
package index, discovery, gateway, monitoring, the three services, the demo catalogue) in a fresh
state folder — so its own supervisor, ports, keys and databases — without the stage gates, which
the stage runs prove elsewhere. :func:`tear_down` stops everything and drops the Postgres
databases it made. With ``postgres_dsn`` every service gets a database of its own on that server
(``CARAVAN_RUNTIME_POSTGRES_DSN``), otherwise SQLite files in the state folder.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from reconcile import TERMINAL

from caravan_workspace import registry, stages
from caravan_workspace.plan import load_plan
from caravan_workspace.registry import Context
from caravan_workspace.runtime import catalog
from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.databases import POSTGRES_DSN_ENV
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.ports import PORT_OFFSET_ENV
from caravan_workspace.runtime.supervisor import Supervisor
from caravan_workspace.traces import sampled_traceparent

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("svc-a", "svc-b", "svc-c")
#: POST /orders acknowledges an order with 201 (its saga finished within svc-b's wait: the final
#: order) or 202 (still moving: poll it, e.g. ``System.settled``)
ACKNOWLEDGED = (201, 202)
#: The suite's workspace allocates its ports this far above the foundation's ranges, clear of a
#: developer's own workspace (whose stopped programs keep their ports).
PORT_OFFSET = os.environ.get("CARAVAN_IT_PORT_OFFSET", "1000")


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class System:
    state_dir: Path
    postgres_dsn: str | None
    runtime: LocalRuntime = field(init=False)
    gateway_url: str = field(init=False)
    keys: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        with self.env():
            self.runtime = LocalRuntime(Context(ROOT, self.state_dir))
        self.gateway_url = gateway_runtime.url(self.runtime)
        self.keys = {c: gateway_runtime.api_key(self.runtime, c) for c in gateway_runtime.KEYS}
        self.http = httpx.Client(timeout=60)

    @property
    def database(self) -> str:
        return "postgres" if self.postgres_dsn else "sqlite"

    @contextmanager
    def env(self) -> Iterator[None]:
        with environment({
            "CARAVAN_STATE_DIR": str(self.state_dir), POSTGRES_DSN_ENV: self.postgres_dsn,
            PORT_OFFSET_ENV: PORT_OFFSET,
        }):  # fmt: skip
            yield

    def wait_in_discovery(self, services: tuple[str, ...] = SERVICES, *, within: float = 30.0) -> None:
        """Wait until discovery lists a ready instance of each service: its checker probes once a
        round (about a second), so a program that has just come back answers ready before the
        gateway routes to it."""
        deadline = time.monotonic() + within
        while not all(catalog.ready_instances(self.state_dir, s) for s in services):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every one of {services} is ready in discovery: see {self.state_dir}")
            time.sleep(0.1)

    def database_url(self, service: str) -> str:
        with self.env():
            return self.runtime.database_url(self.runtime.services[service])

    # ------------------------------------------------------------------ calls through the gateway

    def call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        customer: str = "demo",
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.gateway_url}/api/{service}{path}",
            json=json,
            headers={"X-API-Key": self.keys[customer], **(headers or {})},
        )

    def new_product(self, stock: int, price: int = 1250) -> str:
        """A fresh product with ``stock`` units (as the operator)."""
        sku = f"IT-{uuid.uuid4().hex[:10].upper()}"
        body = {"sku": sku, "name": f"Integration {sku}", "price": {"amount": price, "currency": "EUR"},
                "initial_stock": stock}  # fmt: skip
        response = self.call("POST", "svc-a", "/products", customer="workspace", json=body)
        assert response.status_code == 201, response.text
        return sku

    def stock(self, sku: str) -> dict[str, Any]:
        response = self.call("GET", "svc-a", f"/stock/{sku}")
        assert response.status_code == 200, response.text
        return response.json()

    def place_order(
        self, lines: list[tuple[str, int]], card: str = "tok_approve", *, key: str | None = None,
        customer: str = "demo", timeout_ms: int | None = None,
    ) -> httpx.Response:  # fmt: skip
        # the suites read orders' traces: ask for each to be recorded whatever the sampling ratio
        headers = {"Idempotency-Key": f'"{key or uuid.uuid4()}"', "traceparent": sampled_traceparent()}
        if timeout_ms:
            headers["X-Request-Timeout-Ms"] = str(timeout_ms)
        body = {"lines": [{"sku": s, "quantity": q} for s, q in lines], "payment": {"card_token": card}}
        return self.call("POST", "svc-b", "/orders", customer=customer, json=body, headers=headers)

    def order(self, order_id: str, customer: str = "demo") -> dict[str, Any]:
        response = self.call("GET", "svc-b", f"/orders/{order_id}", customer=customer)
        assert response.status_code == 200, response.text
        return response.json()

    def settled(self, order_id: str, *, within: float = 60.0, customer: str = "demo") -> dict[str, Any]:
        """The order once the saga (or the recovery loop) has finished with it."""
        deadline = time.monotonic() + within
        while True:
            order = self.order(order_id, customer)
            if order["status"] in TERMINAL or time.monotonic() > deadline:
                return order
            time.sleep(0.2)


def tear_down(state_dir: Path, postgres_dsn: str | None = None) -> None:
    """Stop every program of the workspace and drop the Postgres databases it made."""
    Supervisor(state_dir).shutdown()
    if postgres_dsn:
        with environment({POSTGRES_DSN_ENV: postgres_dsn}):
            rt = LocalRuntime(Context(ROOT, state_dir))
            urls = [rt.database_url(rt.services[s]) for s in SERVICES]
        asyncio.run(_drop_databases(postgres_dsn, urls))


async def _drop_databases(dsn: str, urls: list[str]) -> None:
    import asyncpg

    admin = await asyncpg.connect(dsn)
    try:
        for url in urls:
            name = urlsplit(url).path.lstrip("/")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


#: The gateway's per-customer rate for suites that measure or load the system (not its limits).
UNLIMITED = {
    "CARAVAN_GATEWAY_RATE_PER_SECOND": "1000000", "CARAVAN_GATEWAY_RATE_BURST": "1000000",
    "CARAVAN_GATEWAY_AUTH_FAILURES_PER_SECOND": "1000000", "CARAVAN_GATEWAY_AUTH_FAILURES_BURST": "1000000",
}  # fmt: skip


def bring_up(
    state_dir: Path, postgres_dsn: str | None = None, *, last_stage: int = 12, production_limits: bool = False
) -> System:
    """Run the actions of stages 1–``last_stage`` in dependency order in a fresh workspace. The
    gateway's per-customer rate and its failed-authentication limit are lifted unless
    ``production_limits`` (the security suite)."""
    stages.load_all()
    plan = load_plan(ROOT / "plan.toml")
    limits = dict.fromkeys(UNLIMITED) if production_limits else UNLIMITED
    with environment({
        "CARAVAN_STATE_DIR": str(state_dir), POSTGRES_DSN_ENV: postgres_dsn, PORT_OFFSET_ENV: PORT_OFFSET,
        **limits,
    }):  # fmt: skip
        ctx = Context(ROOT, state_dir)
        for number in plan.topological_order(range(1, last_stage + 1)):
            for action in plan.stages[number].actions:
                registry.ACTIONS[action.run](ctx, **action.args)
    system = System(state_dir, postgres_dsn)
    if last_stage >= 12:
        system.wait_in_discovery()
    return system
