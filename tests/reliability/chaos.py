"""The reliability run: idempotency-keyed orders at a steady rate through the gateway while the
services are killed, then a full reconciliation of the three databases.

- capacity: a short closed-loop burst measures how many orders per second the system confirms;
  the run then offers about half of that, open-loop (a new order every 1/rate seconds);
- faults: every ``kill_every`` seconds one service (svc-a, svc-b, svc-c in turn) is killed with
  SIGKILL (``signal.SIGTERM`` for the graceful variant); the supervisor brings it back;
- clients retry an unanswered or refused order with the same Idempotency-Key until it is
  acknowledged (201: the final order; 202: accepted, still moving) or the run's grace period ends;
- readiness of every service is polled every 50 ms; the longest unready stretch is reported;
- afterwards every order must settle (the saga, or svc-b's sweeper), and the databases are
  reconciled (tests/reconcile.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from reconcile import TERMINAL, Snapshot, Verdict, reconcile
from system import ACKNOWLEDGED, SERVICES, System

RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})
SETTLE_S = 180.0  # the longest the orders may take to settle after the load stops


@dataclass
class Report:
    rate: float
    capacity: float
    attempted: int = 0
    acknowledged: int = 0
    retried: int = 0
    recovered: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    unready_s: dict[str, float] = field(default_factory=dict)
    dropped_in_flight: int = 0  # graceful variant: requests cut off by a stopping instance
    verdict: Verdict | None = None
    statuses: Counter[str] = field(default_factory=Counter)

    def rows(self) -> list[tuple[str, str]]:
        v = self.verdict or Verdict()
        longest = max(self.unready_s.items(), key=lambda kv: kv[1], default=("–", 0.0))
        return [
            ("offered rate (orders/s)", f"{self.rate:.1f} (capacity {self.capacity:.1f})"),
            ("attempted", str(self.attempted)),
            ("acknowledged", str(self.acknowledged)),
            ("retried", str(self.retried)),
            ("recovered (finished after the answer)", str(self.recovered)),
            ("lost", str(len(v.lost))),
            ("duplicated", str(v.duplicated)),
            ("stuck", str(len(v.stuck))),
            ("other problems", str(len(v.problems))),
            ("answers lost in flight (502 or cut off)", str(self.dropped_in_flight)),
            ("kills", ", ".join(f"{k}×{n}" for k, n in sorted(self.kills.items())) or "–"),
            ("longest unready", f"{longest[1]:.2f} s ({longest[0]})"),
            ("order outcomes", ", ".join(f"{k} {n}" for k, n in sorted(self.statuses.items()))),
        ]

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())


async def _order(client: httpx.AsyncClient, system: System, sku: str, key: str) -> httpx.Response:
    return await client.post(
        f"{system.gateway_url}/api/svc-b/orders",
        json={"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": "tok_approve"}},
        headers={
            "X-API-Key": system.keys["demo"],
            "Idempotency-Key": f'"{key}"',
            "X-Request-Timeout-Ms": "10000",
        },
    )


async def measure_capacity(system: System, sku: str, seconds: float = 4.0, concurrency: int = 8) -> float:
    """Confirmed orders per second in a closed loop of ``concurrency`` clients."""
    done = 0
    stop = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < stop:
            response = await _order(client, system, sku, f"cap-{uuid.uuid4()}")
            if response.status_code == 201 and response.json().get("status") == "confirmed":
                done += 1

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return done / (time.monotonic() - started)


def _pid(system: System, program: str) -> int | None:
    status = system.runtime.supervisor.program(program)
    return status.pid if status is not None and status.state == "RUNNING" and status.pid else None


async def _watch_readiness(system: System, stop: asyncio.Event, report: Report) -> None:
    ports = system.runtime.ports.allocated()
    down_since: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=0.5) as client:
        while not stop.is_set():
            for service in SERVICES:
                program = f"{service}-1"
                try:
                    ready = (
                        await client.get(f"http://127.0.0.1:{ports[program]}/health/ready")
                    ).status_code == 200
                except httpx.HTTPError:
                    ready = False
                now = time.monotonic()
                if not ready:
                    down_since.setdefault(service, now)
                elif service in down_since:
                    stretch = now - down_since.pop(service)
                    report.unready_s[service] = max(report.unready_s.get(service, 0.0), stretch)
            await asyncio.sleep(0.05)


async def _kill_loop(system: System, stop: asyncio.Event, report: Report, every: float, sig: int) -> None:
    turn = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
            return
        except TimeoutError:
            pass
        service = SERVICES[turn % len(SERVICES)]
        turn += 1
        while not stop.is_set():  # a service still coming back from its last kill: wait for it
            pid = _pid(system, f"{service}-1")
            if pid is not None:
                try:  # the whole process group: the server's workers die with it, as in a crash
                    os.killpg(os.getpgid(pid), sig)
                    report.kills[service] += 1
                    break
                except ProcessLookupError:
                    pass
            await asyncio.sleep(0.2)


async def run(
    system: System,
    *,
    seconds: float = 60.0,
    kill_every: float = 7.0,
    sig: int = signal.SIGKILL,
    grace: float = 60.0,
    rate: float | None = None,
) -> Report:
    capacity = await measure_capacity(system, system.new_product(stock=1_000_000, price=999))
    sku = system.new_product(stock=1_000_000, price=999)  # the run's own: reconciled on its own
    rate = rate or max(capacity / 2, 1.0)
    report = Report(rate=rate, capacity=capacity)
    pending_at_ack: set[str] = set()
    acknowledged: dict[str, str] = {}
    stop = asyncio.Event()
    give_up = time.monotonic() + seconds + grace

    async def place(client: httpx.AsyncClient, key: str) -> None:
        first = True
        while time.monotonic() < give_up:
            if not first:
                report.retried += 1
                await asyncio.sleep(0.25)
            first = False
            try:
                response = await _order(client, system, sku, key)
            except httpx.HTTPError:
                report.dropped_in_flight += 1
                continue
            if response.status_code == 502:  # the gateway lost the answer of an instance
                report.dropped_in_flight += 1
            if response.status_code in ACKNOWLEDGED:
                order = response.json()
                acknowledged[key] = order["id"]
                if order.get("status") not in TERMINAL:
                    pending_at_ack.add(order["id"])
                return
            if response.status_code not in RETRYABLE:
                report.statuses[f"refused {response.status_code}"] += 1
                return

    watchers = [
        asyncio.create_task(_watch_readiness(system, stop, report)),
        asyncio.create_task(_kill_loop(system, stop, report, kill_every, sig)),
    ]
    tasks = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            tasks.append(asyncio.create_task(place(client, f"rel-{uuid.uuid4()}")))
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        stop.set()
        await asyncio.gather(*tasks)
    await asyncio.gather(*watchers)
    report.attempted = n
    report.acknowledged = len(acknowledged)
    # svc-b retries a transient failure for up to 30 s per order, and its sweeper resumes an order
    # whose instance died within seconds
    await _settle(system, list(acknowledged.values()), SETTLE_S)
    snapshot = await asyncio.to_thread(Snapshot.read, {s: system.database_url(s) for s in SERVICES}, [sku])
    report.verdict = reconcile(
        snapshot, acknowledged=acknowledged.values(), attempted_keys=n, initial_stock={sku: 1_000_000}
    )
    report.recovered = sum(1 for i in pending_at_ack if snapshot.orders.get(i, {}).get("status") in TERMINAL)
    report.statuses.update(
        o["status"] + (f" ({o['cancel_reason']})" if o.get("cancel_reason") else "")
        for o in snapshot.orders.values()
    )
    return report


async def _settle(system: System, order_ids: list[str], within: float) -> None:
    """Wait until svc-b has finished every order (or ``within`` seconds passed)."""
    deadline = time.monotonic() + within
    remaining = set(order_ids)
    async with httpx.AsyncClient(timeout=10) as client:
        while remaining and time.monotonic() < deadline:
            for order_id in list(remaining):
                try:
                    response = await client.get(
                        f"{system.gateway_url}/api/svc-b/orders/{order_id}",
                        headers={"X-API-Key": system.keys["demo"]},
                    )
                except httpx.HTTPError:
                    continue
                if response.status_code == 200 and response.json().get("status") in TERMINAL:
                    remaining.discard(order_id)
            if remaining:
                await asyncio.sleep(0.5)


def summary(report: Report) -> dict[str, Any]:
    verdict = report.verdict or Verdict()
    return {
        "rate": report.rate, "capacity": report.capacity, "attempted": report.attempted,
        "acknowledged": report.acknowledged, "retried": report.retried, "recovered": report.recovered,
        "lost": len(verdict.lost), "duplicated": verdict.duplicated, "stuck": len(verdict.stuck),
        "problems": verdict.problems[:20], "kills": dict(report.kills), "unready_s": report.unready_s,
        "dropped_in_flight": report.dropped_in_flight,
    }  # fmt: skip
