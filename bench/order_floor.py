"""Benchmark: the floor under the order path — its hops and statements with nothing else.

    python bench/order_floor.py [--duration 10] [--connections 16]

How many orders per second could the order path's *shape* carry on this machine, before any of
Caravan's own code runs? Three processes stand in for svc-b, svc-a and svc-c: bare Litestar apps
(no commons stack: no identity, tracing, metrics, access log, deadline, problem mapping) on the
services' own server (granian, embedded, one worker) and event loop (uvloop), bound to
127.0.0.1. ``POST /orders`` on the svc-b stand-in makes svc-b's five calls one after another over
one pooled aiohttp session — svc-a ``GET /products``, ``POST /reservations``, svc-c
``POST /payments/authorize``, svc-a ``POST /reservations/{id}/commit``, svc-c
``POST /payments/{id}/capture`` — and answers 201. Variants:

- ``hops``:       the handlers answer a fixed JSON body; no database;
- ``hops+sqlite``: each handler also runs, on one long-lived aiosqlite connection per process (WAL,
  ``synchronous=NORMAL``, as commons' engine), the statements and commits the real services
  count per order (bench/e2e_orders.py: svc-a 5 statements in 2 commits, svc-b 7 in 5, svc-c 8 in
  2) as small single-row statements with their parameters bound;
- ``hops+sqlite-inline``: the same statements through the standard library's sqlite3 on the
  event loop's own thread (no hop to a connection thread and back per statement).

Load: ``wrk -t1 -c16`` on ``POST /orders`` (no gateway: bench/gateway.py measures it). Reported:
orders per second, p50/p99, and CPU milliseconds per order per process (from /proc), next to the
hello-world baseline of the same run (bench/commons_stack.py's "bare": one Litestar app, one
request per request). Prints a table and writes bench/results/order_floor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from commons_stack import cpu_seconds, free_port, measure, run_wrk, wait_up

RESULTS = Path(__file__).resolve().parent / "results" / "order_floor.json"
VARIANTS = ("hops", "hops+sqlite", "hops+sqlite-inline")
ROLES = ("svc-a", "svc-c", "svc-b")
#: per call: (statements, commits) — the real services' counts per order, spread over their calls
SQL_PER_CALL = {
    "products": (1, 0), "reserve": (2, 1), "commit": (2, 1),  # svc-a: 5 in 2
    "authorize": (4, 1), "capture": (4, 1),  # svc-c: 8 in 2
    "order": (7, 5),  # svc-b: 7 in 5, over its saga
}  # fmt: skip
GOAL = 500.0


# --------------------------------------------------------------------------- server side


class Statements:
    """One long-lived aiosqlite connection; ``run(n, commits)`` executes ``n`` single-row
    statements spread over ``commits`` transactions (none: one read outside a transaction)."""

    def __init__(self, path: str | None, inline: bool = False) -> None:
        self.path, self.inline = path, inline
        self.connection = None
        self.lock = asyncio.Lock()
        self.counter = 0

    async def open(self) -> None:
        if self.path is None:
            return
        if self.inline:
            import sqlite3

            self.connection = _Inline(sqlite3.connect(self.path, isolation_level=None))
        else:
            import aiosqlite

            self.connection = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            await self.connection.execute(f"PRAGMA {pragma}")
        await self.connection.execute(
            "CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT)"
        )

    async def run(self, statements: int, commits: int) -> None:
        db = self.connection
        if db is None:
            return
        if commits == 0:
            for _ in range(statements):
                async with db.execute("SELECT version, body FROM rows WHERE id = ?", ("none",)) as cursor:
                    await cursor.fetchall()
            return
        per_commit = [statements // commits + (i < statements % commits) for i in range(commits)]
        for count in per_commit:
            async with self.lock:  # one writer, as commons' engine
                await db.execute("BEGIN IMMEDIATE")
                for _ in range(count):
                    self.counter += 1
                    key = f"{os.getpid()}-{self.counter}"
                    await db.execute(
                        "INSERT INTO rows (id, version, body) VALUES (?, 1, ?) "
                        "ON CONFLICT (id) DO UPDATE SET version = version + 1",
                        (key, "x" * 64),
                    )
                await db.execute("COMMIT")


class _Inline:
    """sqlite3 with aiosqlite's calling convention, run on the caller's thread."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> _Done:
        return _Done(self.connection.execute(sql, parameters))


class _Done:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def __await__(self) -> Any:
        return self.cursor
        yield  # a generator: awaiting it returns at once

    async def __aenter__(self) -> _Done:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cursor.close()

    async def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())


def build_app(role: str, db: Statements, upstreams: dict[str, str]):  # type: ignore[no-untyped-def]
    from litestar import Litestar, get, post

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    async def answer(call: str, body: dict[str, object]) -> dict[str, object]:
        await db.run(*SQL_PER_CALL[call])
        return body

    if role == "svc-a":

        @get("/products")
        async def products(sku: str) -> dict[str, object]:
            return await answer("products", {"items": [{"sku": sku, "price": 500}], "next_cursor": None})

        @post("/reservations")
        async def reserve(data: dict[str, object]) -> dict[str, object]:
            return await answer("reserve", {"id": "r-1", "status": "held"})

        @post("/reservations/{rid:str}/commit", status_code=200)
        async def commit(rid: str) -> dict[str, object]:
            return await answer("commit", {"id": rid, "status": "committed"})

        handlers = [health, products, reserve, commit]
    elif role == "svc-c":

        @post("/payments/authorize")
        async def authorize(data: dict[str, object]) -> dict[str, object]:
            return await answer("authorize", {"id": "p-1", "status": "authorized"})

        @post("/payments/{pid:str}/capture", status_code=200)
        async def capture(pid: str) -> dict[str, object]:
            return await answer("capture", {"id": pid, "status": "captured"})

        handlers = [health, authorize, capture]
    else:
        import aiohttp

        session: dict[str, aiohttp.ClientSession] = {}

        async def start() -> None:
            session["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))

        async def stop() -> None:
            await session["s"].close()

        async def call(method: str, url: str, body: object = None) -> dict[str, object]:
            async with session["s"].request(method, url, json=body) as response:
                response.raise_for_status()
                result: dict[str, object] = await response.json()
                return result

        @post("/orders", status_code=201)
        async def place(data: dict[str, object]) -> dict[str, object]:
            a, c = upstreams["svc-a"], upstreams["svc-c"]
            lines = data["lines"]
            sku = lines[0]["sku"]  # type: ignore[index]
            await call("GET", f"{a}/products?sku={sku}")
            reservation = await call("POST", f"{a}/reservations", {"lines": lines})
            payment = await call("POST", f"{c}/payments/authorize", {"amount": 500, **data["payment"]})  # type: ignore[dict-item]
            await call("POST", f"{a}/reservations/{reservation['id']}/commit")
            await call("POST", f"{c}/payments/{payment['id']}/capture")
            return await answer("order", {"id": "o-1", "status": "confirmed"})

        return Litestar([health, place], on_startup=[db.open, start], on_shutdown=[stop])
    return Litestar(handlers, on_startup=[db.open])


def serve(role: str, port: int, database: str | None, inline: bool, upstreams: dict[str, str]) -> None:
    import uvloop
    from granian.constants import Interfaces
    from granian.server.embed import Server

    app = build_app(role, Statements(database, inline), upstreams)
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, backlog=1024)
    uvloop.run(server.serve())


# --------------------------------------------------------------------------- load side


def run_variant(variant: str, duration: int, connections: int, workdir: Path) -> dict[str, object]:
    ports = {role: free_port() for role in ROLES}
    upstreams = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for role in ROLES:
            command = [sys.executable, __file__, "--serve", role, "--port", str(ports[role]),
                       "--upstreams", json.dumps(upstreams)]  # fmt: skip
            if variant != "hops":
                command += ["--database", str(workdir / f"{variant}-{role}.sqlite3")]
            if variant == "hops+sqlite-inline":
                command.append("--inline")
            processes[role] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            wait_up(f"{upstreams[role]}/health", processes[role])
        script = workdir / "order.lua"
        body = {"lines": [{"sku": "FLOOR-1", "quantity": 1}], "payment": {"card_token": "tok_approve"}}
        script.write_text(
            f"wrk.method = 'POST'\nwrk.body = {json.dumps(json.dumps(body))}\n"
            "wrk.headers['Content-Type'] = 'application/json'\n"
        )
        url = f"{upstreams['svc-b']}/orders"
        subprocess.run(["wrk", "-t1", f"-c{connections}", "-d3s", "-s", str(script), url],
                       capture_output=True, check=True)  # fmt: skip
        before = {role: cpu_seconds(p.pid) for role, p in processes.items()}
        result: dict[str, object] = dict(run_wrk(url, duration, connections=connections, script=script))
        orders = int(result["requests"]) - int(result["non_2xx"])  # type: ignore[call-overload]
        result["orders_per_s"] = float(result["rps"]) if not result["non_2xx"] else orders / duration  # type: ignore[arg-type]
        result["cpu_ms_per_order"] = {
            role: (cpu_seconds(p.pid) - before[role]) * 1000 / max(orders, 1) for role, p in processes.items()
        }
        return result
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--upstreams", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database, args.inline, json.loads(args.upstreams))
        return
    if args.duration <= 0 or args.connections <= 0:
        parser.error("--duration and --connections must be positive")

    hello = measure("bare", duration=args.duration, warmup=3)
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="caravan-floor-") as tmp:
        for variant in VARIANTS:
            rows[variant] = run_variant(variant, args.duration, args.connections, Path(tmp))

    print(f"hello-world baseline (same run): {hello['rps']:.0f} req/s, "
          f"{hello['server_cpu_us_per_request']:.0f} µs server CPU per request")  # fmt: skip
    print(f"{'variant':<19} {'orders/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'share':>7}   "
          "CPU ms per order (a / c / b)")  # fmt: skip
    for variant, row in rows.items():
        cpu = row["cpu_ms_per_order"]
        share = float(row["orders_per_s"]) / hello["rps"]  # type: ignore[arg-type]
        row["share_of_hello_world"] = share
        print(f"{variant:<19} {row['orders_per_s']:>9.1f} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} "
              f"{share:>7.2%}   {cpu['svc-a']:.2f} / {cpu['svc-c']:.2f} / {cpu['svc-b']:.2f}")  # type: ignore[index]  # fmt: skip
    print(f"goal of the real order path: {GOAL:.0f} confirmed orders/s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "load_average_1m": os.getloadavg()[0]},
        "load": f"wrk -t1 -c{args.connections} -d{args.duration}s, POST /orders on the svc-b stand-in",
        "statements_per_call": SQL_PER_CALL, "hello_world": hello, "variants": rows,
        "goal_orders_per_s": GOAL,
    }, indent=2) + "\n")  # fmt: skip
    print(f"results: {RESULTS.relative_to(Path(__file__).resolve().parents[1])}")


if __name__ == "__main__":
    main()
