"""The reliability run: idempotency-keyed orders at a steady rate through the gateway while the
services are killed, then a full reconciliation of the three databases.

- capacity: a short closed-loop burst measures how many orders per second the system confirms;
  the run then offers about half of that, open-loop (a new order every 1/rate seconds);
- faults: every ``kill_every`` seconds one target (svc-a, svc-b, svc-c in turn — and the gateway
  too in the restart-chaos scenario, ``RESTART_TARGETS``) is killed with SIGKILL
  (``signal.SIGTERM`` for the graceful variant); the supervisor brings it back;
- clients retry an unanswered or refused order with the same Idempotency-Key until it is
  acknowledged (201: the final order; 202: accepted, still moving) or the run's grace period ends;
- readiness of every target is polled every 50 ms; the longest unready stretch is reported, and
  when each killed target was back (ready again);
- afterwards every order must settle (the saga, or svc-b's sweeper), and the databases are
  reconciled (tests/reconcile.py). An order is *orphaned* when its life (placed → its final write,
  read from svc-b's database) overlaps an outage of a service; how long after that service was
  back it became final is reported (the slowest, and how many took longer than 5 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from reconcile import TERMINAL, Snapshot, Verdict, reconcile
from system import ACKNOWLEDGED, SERVICES, System

RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})
GATEWAY = "gateway"
#: the restart-chaos scenario kills the gateway too
RESTART_TARGETS = (*SERVICES, GATEWAY)
#: an orphaned order should be final this soon after its service is back
ORPHAN_WITHIN_S = 5.0


@dataclass
class Outage:
    target: str
    killed_at: float  # wall clock (time.time()): compared with svc-b's timestamps
    back_at: float | None = None  # ready again


@dataclass(frozen=True)
class Orphan:
    order_id: str
    target: str  # the service whose outage the order lived through (the last one)
    after_return_s: float  # final this long after that service was back (<= 0: before)


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
    outages: list[Outage] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    upstream_unavailable: int = 0  # acknowledged orders cancelled with upstream_unavailable

    def outage_row(self) -> str:
        down = [(o.back_at - o.killed_at, o.target) for o in self.outages if o.back_at is not None]
        if not down:
            return "–"
        seconds, target = max(down)
        return f"{seconds:.2f} s ({target}); median {sorted(down)[len(down) // 2][0]:.2f} s"

    @property
    def unavailable_share(self) -> float:
        return self.upstream_unavailable / max(self.acknowledged, 1)

    def orphans_row(self) -> str:
        if not self.orphans:
            return "none"
        late = sorted(self.orphans, key=lambda o: o.after_return_s)
        worst = late[-1]
        over = sum(1 for o in late if o.after_return_s > ORPHAN_WITHIN_S)
        return (
            f"{len(late)}; final at most {max(worst.after_return_s, 0.0):.2f} s after their service was "
            f"back ({worst.target}), median {max(late[len(late) // 2].after_return_s, 0.0):.2f} s; "
            f"{over} later than {ORPHAN_WITHIN_S:g} s"
        )

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
            ("longest outage (killed → ready)", self.outage_row()),
            ("longest unready", f"{longest[1]:.2f} s ({longest[0]})"),
            ("order outcomes", ", ".join(f"{k} {n}" for k, n in sorted(self.statuses.items()))),
            (
                "cancelled upstream_unavailable",
                f"{self.upstream_unavailable} ({self.unavailable_share:.1%} of acknowledged)",
            ),
            ("orphaned orders", self.orphans_row()),
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


def _program(target: str) -> str:
    return f"{target}-1"


async def _watch_readiness(
    system: System, stop: asyncio.Event, report: Report, targets: tuple[str, ...]
) -> None:
    ports = system.runtime.ports.allocated()
    down_since: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=0.5) as client:
        while not stop.is_set():
            for target in targets:
                asked_at = time.time()
                try:
                    ready = (
                        await client.get(f"http://127.0.0.1:{ports[_program(target)]}/health/ready")
                    ).status_code == 200
                except httpx.HTTPError:
                    ready = False
                now = time.monotonic()
                if not ready:
                    down_since.setdefault(target, now)
                    continue
                if target in down_since:
                    stretch = now - down_since.pop(target)
                    report.unready_s[target] = max(report.unready_s.get(target, 0.0), stretch)
                for outage in report.outages:  # a ready answer to a question asked after the kill
                    if outage.target == target and outage.back_at is None and outage.killed_at < asked_at:
                        outage.back_at = time.time()
            await asyncio.sleep(0.05)


async def _kill_loop(
    system: System, stop: asyncio.Event, report: Report, every: float, sig: int, targets: tuple[str, ...]
) -> None:
    turn = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
            return
        except TimeoutError:
            pass
        target = targets[turn % len(targets)]
        turn += 1
        while not stop.is_set():  # a target still coming back from its last kill: wait for it
            pid = _pid(system, _program(target))
            coming_back = any(o.target == target and o.back_at is None for o in report.outages)
            if pid is not None and not coming_back:  # running and ready again: a restart, not a loop
                try:  # the whole process group: the server's workers die with it, as in a crash
                    killed_at = time.time()
                    os.killpg(os.getpgid(pid), sig)
                    report.kills[target] += 1
                    report.outages.append(Outage(target, killed_at))
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
    targets: tuple[str, ...] = SERVICES,
) -> Report:
    capacity = await measure_capacity(system, system.new_product(stock=1_000_000, price=999))
    sku = system.new_product(stock=1_000_000, price=999)  # the run's own: reconciled on its own
    rate = rate or max(capacity / 2, 1.0)
    report = Report(rate=rate, capacity=capacity)
    pending_at_ack: set[str] = set()
    acknowledged: dict[str, str] = {}
    stop, watched = asyncio.Event(), asyncio.Event()  # the load and kills end; the watching ends
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
        asyncio.create_task(_watch_readiness(system, watched, report, targets)),
        asyncio.create_task(_kill_loop(system, stop, report, kill_every, sig, targets)),
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
    back_by = time.monotonic() + 30.0
    while any(o.back_at is None for o in report.outages) and time.monotonic() < back_by:
        await asyncio.sleep(0.1)  # the watcher sees the last killed target back
    watched.set()
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
    ids = set(acknowledged.values())
    report.upstream_unavailable = sum(
        1 for i, o in snapshot.orders.items() if i in ids and o.get("cancel_reason") == "upstream_unavailable"
    )
    report.orphans = orphans(snapshot.orders, report.outages)
    return report


def _wall(value: Any) -> float:
    """A timestamp of svc-b's database as wall-clock seconds (SQLite: text; Postgres: datetime)."""
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp.timestamp()


def orphans(orders: dict[str, dict[str, Any]], outages: list[Outage]) -> list[Orphan]:
    """Every final order whose life overlaps a service's outage, and how long after the (last such)
    service was back it became final."""
    found = []
    for order_id, order in orders.items():
        if order.get("status") not in TERMINAL:
            continue
        placed, final = _wall(order["created_at"]), _wall(order["updated_at"])
        lived_through = [
            o for o in outages
            if o.target in SERVICES and o.back_at is not None and o.killed_at < final and placed < o.back_at
        ]  # fmt: skip
        if lived_through:
            last = max(lived_through, key=lambda o: o.back_at or 0.0)
            found.append(Orphan(order_id, last.target, final - (last.back_at or final)))
    return found


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
        "dropped_in_flight": report.dropped_in_flight, "upstream_unavailable": report.upstream_unavailable,
        "orphans": len(report.orphans),
        "slowest_orphans": [vars(o) for o in sorted(report.orphans, key=lambda o: -o.after_return_s)[:5]],
    }  # fmt: skip
