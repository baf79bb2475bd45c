"""Jepsen-style reconciliation: a full read of the three services' databases after a run, checked
against what the clients were told.

Reads the tables directly (SQLite files or Postgres databases, as the runtime configured them), so
nothing a service's API hides or caches can make a lost or doubled order look right.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from caravan_commons.db import sqlite_path

TERMINAL = frozenset({"confirmed", "cancelled"})


def fetch(url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` (no parameters) on the database ``url`` names, as dicts."""
    if urlsplit(url).scheme == "sqlite":
        connection = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True, timeout=30)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute(sql)]
        finally:
            connection.close()
    return asyncio.run(_fetch_postgres(url, sql))


async def _fetch_postgres(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


@dataclass
class Snapshot:
    """What the three databases hold about a set of products (and the orders that touch them)."""

    orders: dict[str, dict[str, Any]]  # order id → order row (+ "lines": [(sku, qty)])
    stock: dict[str, dict[str, Any]]  # sku → {on_hand, reserved}
    reservations: dict[str, dict[str, Any]]  # order id → reservation row
    payments: dict[str, list[dict[str, Any]]]  # order id → payment rows
    captures: Counter[str]  # payment id → capture movements
    ledger_sums: dict[str, int]  # currency → sum of every ledger entry (0 when balanced)

    @classmethod
    def read(cls, database_urls: Mapping[str, str], skus: Iterable[str]) -> Snapshot:
        skus = sorted(set(skus))
        quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in skus) or "''"
        orders_db, catalog_db, payments_db = (database_urls[s] for s in ("svc-b", "svc-a", "svc-c"))
        lines = fetch(
            orders_db, f"SELECT order_id, sku, quantity FROM svc_b_order_lines WHERE sku IN ({quoted})"
        )
        ids = sorted({row["order_id"] for row in lines})
        id_list = ", ".join("'" + i.replace("'", "''") + "'" for i in ids) or "''"
        orders = {
            row["id"]: {**row, "lines": []}
            for row in fetch(orders_db, f"SELECT * FROM svc_b_orders WHERE id IN ({id_list})")
        }
        for row in lines:
            orders[row["order_id"]]["lines"].append((row["sku"], int(row["quantity"])))
        stock = {
            row["sku"]: row
            for row in fetch(
                catalog_db, f"SELECT sku, on_hand, reserved FROM catalog_stock WHERE sku IN ({quoted})"
            )
        }
        reservations = {
            row["order_id"]: row
            for row in fetch(catalog_db, f"SELECT * FROM catalog_reservation WHERE order_id IN ({id_list})")
        }
        payments: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in fetch(payments_db, f"SELECT * FROM payments WHERE order_id IN ({id_list})"):
            payments[row["order_id"]].append(row)
        captures: Counter[str] = Counter(
            row["payment_id"]
            for row in fetch(payments_db, "SELECT payment_id, kind FROM ledger_movements")
            if row["kind"] == "capture"
        )
        sums = {
            row["currency"]: int(row["total"])
            for row in fetch(
                payments_db, "SELECT currency, SUM(amount) AS total FROM ledger_entries GROUP BY currency"
            )
        }
        return cls(orders, stock, reservations, dict(payments), captures, sums)

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] == status]


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: int = 0
    stuck: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.problems)


def reconcile(
    snapshot: Snapshot, *, acknowledged: Iterable[str], attempted_keys: int, initial_stock: Mapping[str, int]
) -> Verdict:
    """Every acknowledged order exists and is confirmed or properly cancelled; stock matches the
    confirmed orders; each confirmed order was captured exactly once, no cancelled one kept money;
    the ledger balances; no idempotency key made more than one order."""
    verdict = Verdict()
    verdict.lost = sorted(set(acknowledged) - set(snapshot.orders))
    verdict.duplicated = max(0, len(snapshot.orders) - attempted_keys)
    verdict.stuck = sorted(o["id"] for o in snapshot.orders.values() if o["status"] not in TERMINAL)
    sold: Counter[str] = Counter()
    for order in snapshot.with_status("confirmed"):
        for sku, quantity in order["lines"]:
            sold[sku] += quantity
        captured = [p for p in snapshot.payments.get(order["id"], []) if int(p["captured"]) > 0]
        if len(captured) != 1:
            verdict.problems.append(f"confirmed order {order['id']} has {len(captured)} captured payments")
        elif (
            int(captured[0]["captured"]) != int(order["total_amount"])
            or snapshot.captures[captured[0]["id"]] != 1
        ):
            verdict.problems.append(
                f"confirmed order {order['id']}: captured {captured[0]['captured']} "
                f"of {order['total_amount']} "
                f"in {snapshot.captures[captured[0]['id']]} movements"
            )
        if snapshot.reservations.get(order["id"], {}).get("status") != "committed":
            verdict.problems.append(f"confirmed order {order['id']}: reservation not committed")
    for order in snapshot.with_status("cancelled"):
        kept = [
            p for p in snapshot.payments.get(order["id"], []) if int(p["captured"]) - int(p["refunded"]) > 0
        ]
        if kept:
            verdict.problems.append(f"cancelled order {order['id']} kept money ({kept[0]['id']})")
        if snapshot.reservations.get(order["id"], {}).get("status") == "held":
            verdict.problems.append(f"cancelled order {order['id']} still holds stock")
    for sku, initial in initial_stock.items():
        row = snapshot.stock.get(sku)
        if row is None:
            verdict.problems.append(f"{sku}: no stock row")
            continue
        if int(row["on_hand"]) != initial - sold[sku] or int(row["reserved"]) != 0:
            verdict.problems.append(
                f"{sku}: on_hand {row['on_hand']} reserved {row['reserved']}, "
                f"expected {initial - sold[sku]} and 0"
            )
    for currency, total in snapshot.ledger_sums.items():
        if total != 0:
            verdict.problems.append(f"the ledger does not balance in {currency}: {total}")
    return verdict


def as_json(verdict: Verdict) -> str:
    return json.dumps({"lost": verdict.lost, "duplicated": verdict.duplicated, "stuck": verdict.stuck,
                       "problems": verdict.problems[:20]}, indent=2)  # fmt: skip
