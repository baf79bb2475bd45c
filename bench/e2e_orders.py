"""End-to-end benchmark: confirmed orders per second through the gateway, and latency at half load.

    python bench/e2e_orders.py [--duration 10] [--postgres DSN]

Brings the whole system up in a temporary workspace of its own (the local runtime: gateway,
orders, catalog, payments, one instance each, tracing and access logs on — as `invoke up` runs
it), then:

- saturation: ``wrk -t1 -c16`` places orders (``POST /api/svc-b/orders``, a fresh Idempotency-Key
  each, the approving test card) for ``--duration`` seconds; confirmed orders per second are
  counted in svc-b's database afterwards (an answer is not a confirmation);
- half load: the same at no more than half the saturation rate (each wrk connection pauses, after
  each answer, the time in which it placed two orders at saturation), reporting p50 and p99
  latency and the rate it came to;
- per order and per service (svc-a, svc-b, svc-c; for the gateway its CPU only): SQL statements
  and commits, counted by commons' database engines (``caravan_db_statements_total`` /
  ``caravan_db_commits_total`` on each service's ``/metrics``; transaction control — BEGIN,
  COMMIT, ROLLBACK — is not a statement), and CPU milliseconds (the process's user + system time).
  Counted over ``--count`` orders placed one after another, minus what the same service did during
  an idle window of the same length right after (readiness probes, background loops), divided by
  the confirmed orders; CPU ms per order is also given over the saturation run;
- baseline, measured in the same run: a hello-world Litestar app on the same ASGI server (granian),
  ``wrk -t1 -c32`` (bench/commons_stack.py's "bare" variant). Orders per second are reported as a
  share of its requests per second, since absolute figures on these machines are noisy.

Prints a table and writes bench/results/e2e_orders-<database>.json (sqlite, or postgres with --postgres).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

import psutil  # noqa: E402
from commons_stack import _ms, measure  # noqa: E402
from reconcile import fetch  # noqa: E402
from system import System, bring_up, tear_down  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "e2e_orders-{database}.json"
GOALS = {"confirmed_per_s": 500.0, "share_of_hello_world": 0.025, "p99_ms_at_half_load": 50.0}

LUA = """
local counter = 0
local prefix = ""
local delay_ms = tonumber(os.getenv("E2E_DELAY_MS") or "0")
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  prefix = string.format("bench-%08x-", math.random(0, 0x7fffffff))
end
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = '"' .. prefix .. counter .. '"'
  return wrk.format("POST", nil, nil, wrk.body)
end
function delay()
  return delay_ms
end
"""


def wrk_orders(
    system: System, sku: str, duration: int, connections: int, delay_ms: int, workdir: Path
) -> dict:
    script = workdir / "orders.lua"
    body = json.dumps({"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": "tok_approve"}})
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency",
        "-s", str(script),
        "-H", f"X-API-Key: {system.keys['demo']}", "-H", "Content-Type: application/json",
        f"{system.gateway_url}/api/svc-b/orders",
    ]  # fmt: skip
    env = {"E2E_DELAY_MS": str(delay_ms), "PATH": "/usr/bin:/bin"}
    script.write_text(f"wrk.body = {json.dumps(body)}\n" + LUA)  # the body every request sends
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "answers_per_s": rps,
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def confirmed_count(system: System, sku: str) -> int:
    rows = fetch(
        system.database_url("svc-b"),
        "SELECT count(*) AS n FROM svc_b_orders o JOIN svc_b_order_lines l ON l.order_id = o.id "
        f"WHERE o.status = 'confirmed' AND l.sku = '{sku}'",
    )
    return int(rows[0]["n"])


SERVICES = ("svc-a", "svc-b", "svc-c", "gateway")  # the gateway: CPU only (it has no database)
COUNTERS = {"statements": "caravan_db_statements_total", "commits": "caravan_db_commits_total"}


def service_counters(system: System) -> dict[str, dict[str, float]]:
    """Per service: its database counters (from /metrics; absent with a commons without them)
    and its process's CPU seconds so far."""
    ports = system.runtime.metrics_ports()
    out: dict[str, dict[str, float]] = {}
    for service in SERVICES:
        program = f"{service}-1"
        values: dict[str, float] = {}
        status = system.runtime.supervisor.program(program)
        if status is not None and status.pid:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(status.pid).cpu_times()
                values["cpu_s"] = times.user + times.system
        with contextlib.suppress(Exception):
            text = system.http.get(f"http://127.0.0.1:{ports[program]}/metrics", timeout=5).text
            for name, metric in COUNTERS.items():
                found = re.search(rf"^{metric} ([\d.e+]+)$", text, re.M)
                if found:
                    values[name] = float(found.group(1))
        out[service] = values
    return out


def per_order(before: dict, after: dict, orders: int) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for service in SERVICES:
        row: dict[str, float | None] = {}
        for name in ("statements", "commits", "cpu_s"):
            a, b = after[service].get(name), before[service].get(name)
            row[name] = None if a is None or b is None or not orders else (a - b) / orders
        result[service] = row
    return result


def count_orders(system: System, orders: int) -> dict:
    """Statements, commits and CPU per confirmed order, net of the idle background."""
    sku = system.new_product(stock=10_000_000, price=500)
    body = {"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": "tok_approve"}}
    url = f"{system.gateway_url}/api/svc-b/orders"
    headers = {"X-API-Key": system.keys["demo"]}
    before = service_counters(system)
    started = time.monotonic()
    for i in range(orders):
        key = f"count-{os.getpid()}-{time.time_ns()}-{i}"
        system.http.post(url, json=body, headers={**headers, "Idempotency-Key": key})
    elapsed = time.monotonic() - started
    after = service_counters(system)
    time.sleep(elapsed)  # the idle window: what the services do with no orders
    idle = service_counters(system)
    confirmed = confirmed_count(system, sku)
    net = {
        service: {
            name: after[service][name] - (idle[service][name] - after[service][name])
            for name in after[service]
            if name in idle[service]
        }
        for service in SERVICES
    }
    return {"orders": orders, "confirmed": confirmed, "seconds": elapsed,
            "per_order": per_order(before, net, confirmed)}  # fmt: skip


def run_load(system: System, duration: int, connections: int, delay_ms: int, workdir: Path) -> dict:
    sku = system.new_product(stock=10_000_000, price=500)
    before = service_counters(system)
    started = time.monotonic()
    result = wrk_orders(system, sku, duration, connections, delay_ms, workdir)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # let the last sagas finish
    confirmed = confirmed_count(system, sku)
    result["confirmed_per_s"] = confirmed / elapsed
    result["per_order"] = per_order(before, service_counters(system), confirmed)
    return result


def fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def print_table(hello: dict, saturation: dict, half: dict, counted: dict) -> float:
    share = saturation["confirmed_per_s"] / hello["rps"]
    rows = [
        ("hello-world Litestar (granian), requests/s", f"{hello['rps']:.0f}", "baseline"),
        ("orders at saturation, confirmed/s", f"{saturation['confirmed_per_s']:.1f}",
         f"goal {GOALS['confirmed_per_s']:.0f}"),
        ("  share of hello-world", f"{share:.2%}", f"goal {GOALS['share_of_hello_world']:.1%}"),
        ("  p50 / p99 at saturation, ms", f"{saturation['p50_ms']:.1f} / {saturation['p99_ms']:.1f}", ""),
        ("orders at half load, confirmed/s", f"{half['confirmed_per_s']:.1f}", ""),
        ("  p50 / p99 at half load, ms", f"{half['p50_ms']:.1f} / {half['p99_ms']:.1f}",
         f"goal p99 ≤ {GOALS['p99_ms_at_half_load']:.0f}"),
        ("  non-2xx answers (saturation, half)", f"{saturation['non_2xx']}, {half['non_2xx']}", ""),
    ]  # fmt: skip
    for service, row in counted["per_order"].items():
        cpu_saturated = saturation["per_order"][service]["cpu_s"]
        if service != "gateway" and row["statements"] is not None:
            rows.append((
                f"{service} per order: statements / commits",
                f"{fmt(row['statements'])} / {fmt(row['commits'])}",
                f"{counted['confirmed']} orders one by one, net of idle",
            ))  # fmt: skip
        rows.append((
            f"{service} per order: CPU ms (one by one, saturation)",
            f"{fmt(row['cpu_s'], 1000)} / {fmt(cpu_saturated, 1000)}",
            "",
        ))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':>20}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")
    return share


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", metavar="DSN", default=None)
    parser.add_argument("--count", type=int, default=50, help="orders placed one by one for the counts")
    args = parser.parse_args()
    if args.duration <= 0 or args.connections <= 0 or args.count <= 0:
        parser.error("--duration, --connections and --count must be positive")

    hello = measure("bare", duration=args.duration, warmup=3)
    with tempfile.TemporaryDirectory(prefix="caravan-e2e-") as tmp:
        state = Path(tmp) / "state"
        try:
            system = bring_up(state, args.postgres)
            run_load(system, 3, args.connections, 0, Path(tmp))  # warm-up
            counted = count_orders(system, args.count)
            saturation = run_load(system, args.duration, args.connections, 0, Path(tmp))
            # at most half the rate: each connection waits the time in which it would place two
            # orders at saturation (its answers' own time comes on top, so the rate is a little less)
            pause_ms = 2 * args.connections * 1000 / max(saturation["answers_per_s"], 1)
            half = run_load(system, args.duration, args.connections, round(pause_ms), Path(tmp))
            # printed before tearing down: nothing measured is lost
            share = print_table(hello, saturation, half, counted)
        finally:
            try:
                tear_down(state, args.postgres)
            except Exception as exc:  # a slow stop must not throw away what was measured
                print(f"warning: tear-down: {exc}", file=sys.stderr)

    results = Path(str(RESULTS).format(database="postgres" if args.postgres else "sqlite"))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "database": "postgres" if args.postgres else "sqlite",
        "load": f"wrk -t1 -c{args.connections} -d{args.duration}s, POST /api/svc-b/orders, a fresh key each",
        "hello_world": hello, "saturation": saturation, "half_load": half, "counted": counted,
        "share_of_hello_world": share, "goals": GOALS,
    }, indent=2) + "\n")  # fmt: skip
    print(f"\nresults: {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
