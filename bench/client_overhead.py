"""Benchmark: what the inter-service client's policies cost on top of a bare aiohttp session.

One upstream (a minimal aiohttp server in its own process on 127.0.0.1) and, in the same run,
alternating rounds of ``concurrency`` workers issuing GETs for ``duration`` seconds through:

- ``bare-aiohttp``   one pooled ``aiohttp.ClientSession`` (the baseline);
- ``service-client`` caravan-commons' ``ServiceClient``: static discovery, round-robin, deadline
                     header, CLIENT span + traceparent (no-op tracer provider), retry budget,
                     circuit breaker, typed response.

Prints requests/s per variant and the ratio to the baseline; writes bench/results/client_overhead.json.
Usage: python bench/client_overhead.py [--duration 5] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "client_overhead.json"


def serve(port: int) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def load(call, duration: float, concurrency: int) -> int:  # type: ignore[no-untyped-def]
    done = 0
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def run_variant(variant: str, url: str, duration: float, concurrency: int) -> float:
    import aiohttp

    from caravan_commons.client import ClientConfig, ServiceClient
    from caravan_commons.discovery import StaticResolver

    if variant == "bare-aiohttp":
        async with aiohttp.ClientSession() as session:

            async def call() -> None:
                async with session.get(url + "/hello") as answer:
                    await answer.read()
                    assert answer.status == 200

            await load(call, 0.5, concurrency)  # warm-up
            started = time.perf_counter()
            count = await load(call, duration, concurrency)
            return count / (time.perf_counter() - started)

    async with ServiceClient(StaticResolver({"up": [url]}), ClientConfig()) as client:

        async def call() -> None:
            answer = await client.get("up", "/hello")
            assert answer.status == 200

        await load(call, 0.5, concurrency)
        started = time.perf_counter()
        count = await load(call, duration, concurrency)
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        variants = ("bare-aiohttp", "service-client")
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:  # alternate so drift on a shared machine hits both alike
                samples[variant].append(
                    asyncio.run(run_variant(variant, url, args.duration, args.concurrency))
                )
    finally:
        server.terminate()
        server.wait(timeout=10)

    baseline = statistics.median(samples["bare-aiohttp"])
    rows = []
    print(f"{'variant':<16} {'req/s (median)':>15} {'rounds':>30} {'ratio':>7}")
    for variant, values in samples.items():
        median = statistics.median(values)
        rounds = [round(v, 1) for v in values]
        ratio = median / baseline
        rows.append(
            {"variant": variant, "rps": round(median, 1), "rounds": rounds, "ratio_to_bare": round(ratio, 3)}
        )
        print(f"{variant:<16} {median:>15.0f} {', '.join(f'{v:.0f}' for v in values):>30} {ratio:>7.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "client_overhead",
                "duration_s": args.duration,
                "rounds": args.rounds,
                "concurrency": args.concurrency,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
