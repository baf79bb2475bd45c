"""Console benchmark: how fast each page of the console answers on a running system.

    invoke up                      # a running system first (the workspace's own)
    python bench/console.py [--requests 30]

Starts `invoke console` on a free loopback port over the workspace's state folder (the token it
uses is the workspace's), asks every page ``--requests`` times one after the other (after a
warm-up), and stops it. Baseline, measured in the same run: ``/healthz`` — the same app and server
answering with no reading at all; each page is also given as a multiple of it. Goal: every page's
p95 ≤ 200 ms. Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from caravan_workspace import paths
from caravan_workspace.console_web.settings import ensure_token
from caravan_workspace.runtime.supervisor import Supervisor, free_port
from caravan_workspace.traces import find_trace, read_spans

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "console.json"
GOAL_MS = 200.0
BASELINE = "/healthz"


def pages(state_dir: Path) -> list[str]:
    """Every page, with the demo order's trace (and its log lines) when there is one."""
    found = [
        BASELINE,
        "/static/console.css",
        "/plan",
        "/plan/stages/13",
        "/programs",
        "/logs/svc-b-1",
        "/traces",
        "/traces?orders=true",
        "/metrics",
        "/alerts",
        "/deployments",
    ]
    try:
        order = json.loads((state_dir / "integration" / "demo-order.json").read_text())["id"]
    except (OSError, ValueError, KeyError):
        return found
    trace = find_trace(read_spans(state_dir / "traces"), str(order))
    if trace is not None:
        found += [f"/traces/{trace.trace_id}", f"/logs/svc-b-1?trace={trace.trace_id}"]
    return found


def serve(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CARAVAN_STATE_DIR": str(state_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "console", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{BASELINE}", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("bench/console: the console did not start (try `invoke console` by hand)")
        time.sleep(0.2)


def measure(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(3):  # warm-up: caches (the graph, the span files) filled as a user would find them
        client.get(path)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"bench/console: {path} answered {answer.status_code}: {answer.text[:200]}")
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(int(len(times) * 0.95) - 1, 0)], 2),
        "max_ms": round(times[-1], 2),
        "bytes": len(answer.content),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    state_dir = paths.state_dir(paths.find_root(ROOT))
    if not Supervisor(state_dir).is_running():
        print("bench/console: no running system in this workspace: run `invoke up` first", file=sys.stderr)
        return 2
    token = ensure_token(state_dir)
    port = free_port()
    console = serve(state_dir, port)
    results: dict[str, dict[str, float]] = {}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}
        ) as client:
            for path in pages(state_dir):
                results[path] = measure(client, path, args.requests)
    finally:
        console.terminate()
        console.wait(timeout=20)
    base = results[BASELINE]["median_ms"] or 0.01
    print(
        f"{'page':<52} {'median':>9} {'p95':>9} {'max':>9} {'× base':>8} {'KiB':>7}"
        f"  goal p95 ≤ {GOAL_MS:.0f} ms"
    )
    for path, r in results.items():
        mark = "ok" if r["p95_ms"] <= GOAL_MS else "SLOW"
        print(
            f"{path[:52]:<52} {r['median_ms']:>7.1f}ms {r['p95_ms']:>7.1f}ms {r['max_ms']:>7.1f}ms"
            f" {r['median_ms'] / base:>7.1f}× {r['bytes'] / 1024:>7.1f}  {mark}"
        )
    slow = [p for p, r in results.items() if r["p95_ms"] > GOAL_MS]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "requests_per_page": args.requests,
                "goal_p95_ms": GOAL_MS,
                "baseline": BASELINE,
                "pages": {
                    p: {**r, "x_baseline": round(r["median_ms"] / base, 2)} for p, r in results.items()
                },
                "slow_pages": slow,
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"results: {RESULTS.relative_to(ROOT)}"
        + (f" — over the goal: {', '.join(slow)}" if slow else " — every page within the goal")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
