"""Benchmark: the API gateway against Caddy's reverse_proxy, both in front of the same upstream.

In one run, on 127.0.0.1: a fast hello-world upstream (granian, RSGI, one worker, its own process)
hit with ``wrk -t1 -c32 -d10s``

- directly (the baseline);
- through the Caravan gateway (``python -m caravan_gateway``) with routing, API-key authentication,
  the per-caller rate limiter (a limit the load stays under), the body limit, upstream identity
  signing, metrics and tracing (edge spans to the JSON-lines file, sample ratio 1.0) all ON;
- through Caddy (``reverse_proxy``, admin off, bound to 127.0.0.1; the anchor).

Rounds alternate the three targets; the median round of each is reported. Prints RPS, p50, p99
and the ratios; writes bench/results/gateway.json. ``--profile`` also records the gateway with
py-spy during one extra round and prints its hottest frames.

Needs: wrk and caddy (apt-get install -y wrk caddy), the gateway installed (pip install -e
shared/gateway). Usage: python bench/gateway.py [--duration 10] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "gateway.json"
WRK_THREADS, WRK_CONNECTIONS = 1, 32


def serve_upstream(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "gateway:hello",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.RSGI,
        workers=1,
        log_enabled=False,
    ).serve()


async def hello(scope, protocol) -> None:  # type: ignore[no-untyped-def] - the RSGI upstream
    protocol.response_bytes(200, [("content-type", "text/plain")], b"hello, world")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"gateway bench: {what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"gateway bench: {what} did not listen on {port}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict[str, float]:
    def latency(pct: str) -> float:
        found = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not found:
            raise SystemExit(f"gateway bench: no {pct}% latency in wrk output:\n{text}")
        return float(found[1]) * _UNITS[found[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        raise SystemExit(f"gateway bench: no Requests/sec in wrk output:\n{text}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "rps": float(rps[1]),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(bad[1]) if bad else 0,
        "socket_errors": errors[0] if errors else "",
    }


def wrk(url: str, duration: int, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def start(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def top_frames(raw: Path, count: int = 15) -> list[tuple[float, str]]:
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        own[stack.split(";")[-1]] += int(n)
    return [(100.0 * n / max(total, 1), frame) for frame, n in own.most_common(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway during one extra round")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a gateway setting for a variant run, e.g. CARAVAN_TRACE_EXPORTER=none",
    )
    args = parser.parse_args()
    for tool in ("wrk", "caddy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"gateway bench: {tool} is not installed (apt-get install -y {tool})")

    from caravan_commons.identity import generate_identities
    from caravan_gateway.auth import add_key

    work = Path(tempfile.mkdtemp(prefix="caravan-gateway-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        up_port, gw_port, caddy_port = free_port(), free_port(), free_port()
        upstream = start([sys.executable, __file__, "--serve-upstream", str(up_port)])
        procs.append(upstream)
        wait_for(up_port, upstream, "upstream")

        key = add_key(work / "api-keys.json", "bench", ["operator"])
        generate_identities(["gateway"], work / "identities")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
        env.update({
            "CARAVAN_PORT": str(gw_port),
            "CARAVAN_GATEWAY_ROUTES": json.dumps({"/api/svc-a": "svc-a"}),
            "CARAVAN_DISCOVERY_BACKEND": "static",
            "CARAVAN_UPSTREAM_SVC_A": f"http://127.0.0.1:{up_port}",
            "CARAVAN_API_KEYS_FILE": str(work / "api-keys.json"),
            "CARAVAN_IDENTITY_KEY_FILE": str(work / "identities" / "gateway.key"),
            "CARAVAN_RATE_PER_SECOND": "1000000",  # limiter ON, with a rate the load stays under
            "CARAVAN_RATE_BURST": "100000",
            "CARAVAN_TRACE_EXPORTER": "file",
            "CARAVAN_TRACE_SAMPLE_RATIO": "1.0",
            "CARAVAN_TRACE_FILE": str(work / "gateway.traces.jsonl"),
            "CARAVAN_LOG_FILE": str(work / "gateway.log"),
        })  # fmt: skip
        env.update(dict(item.split("=", 1) for item in args.gateway_env))
        gateway = start([sys.executable, "-m", "caravan_gateway"], env=env, log=work / "gateway.out")
        procs.append(gateway)
        wait_for(gw_port, gateway, "gateway")

        caddyfile = work / "Caddyfile"
        caddyfile.write_text(
            "{\n\tadmin off\n\tauto_https off\n}\n"
            f"http://127.0.0.1:{caddy_port} {{\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:{up_port}\n}}\n"
        )
        caddy = start(
            ["caddy", "run", "--config", str(caddyfile), "--adapter", "caddyfile"], log=work / "caddy.out"
        )
        procs.append(caddy)
        wait_for(caddy_port, caddy, "caddy")

        targets = {
            "direct": (f"http://127.0.0.1:{up_port}/api/svc-a/hello", {}),
            "gateway": (f"http://127.0.0.1:{gw_port}/api/svc-a/hello", {"Authorization": f"Bearer {key}"}),
            "caddy": (f"http://127.0.0.1:{caddy_port}/hello", {}),
        }
        for url, headers in targets.values():  # warm-up: pools, caches, JIT-free but page cache
            wrk(url, 2, headers)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, headers) in targets.items():
                runs[name].append(wrk(url, args.duration, headers))
        profile: list[tuple[float, str]] = []
        if args.profile and shutil.which("py-spy"):
            raw = work / "gateway.pyspy.txt"
            spy = subprocess.Popen(["py-spy", "record", "-p", str(gateway.pid), "-d", str(args.duration - 1),
                                    "-r", "250", "-f", "raw", "-o", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            wrk(*targets["gateway"][:1], args.duration, targets["gateway"][1])
            spy.wait()
            profile = top_frames(raw) if raw.exists() else []
    finally:
        for proc in reversed(procs):
            stop(proc)
    trace_file = work / "gateway.traces.jsonl"
    spans = len(trace_file.read_bytes().splitlines()) if trace_file.exists() else 0

    def median(name: str) -> dict[str, float]:
        ordered = sorted(runs[name], key=lambda r: r["rps"])
        return ordered[len(ordered) // 2]

    best = {name: median(name) for name in runs}
    for name in best:
        if any(r["non_2xx"] for r in runs[name]):
            raise SystemExit(f"gateway bench: {name} answered non-2xx: {runs[name]}")
    d, g, c = best["direct"], best["gateway"], best["caddy"]
    ratios = {
        "gateway_vs_direct": g["rps"] / d["rps"],
        "caddy_vs_direct": c["rps"] / d["rps"],
        "gateway_vs_caddy": g["rps"] / c["rps"],
        "p50_gateway_minus_caddy_ms": g["p50_ms"] - c["p50_ms"],
    }
    print(f"\nwrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s, median of {args.rounds} rounds")
    print(f"{'target':<10}{'RPS':>12}{'p50 ms':>10}{'p99 ms':>10}{'vs direct':>11}")
    for name in ("direct", "gateway", "caddy"):
        r = best[name]
        share = r["rps"] / d["rps"]
        print(f"{name:<10}{r['rps']:>12,.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{share:>10.0%}")
    print(
        f"\ngateway/caddy throughput: {ratios['gateway_vs_caddy']:.0%}   "
        f"p50 gateway - caddy: {ratios['p50_gateway_minus_caddy_ms']:+.2f} ms   (goal: >= 90%, <= +1 ms)"
    )
    print(f"spans exported by the gateway during the run: {spans}")
    if profile:
        print("\npy-spy, the gateway's hottest frames (own time):")
        for share, frame in profile:
            print(f"  {share:5.1f}%  {frame}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "gateway",
                "load": f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s",
                "rounds": args.rounds,
                "gateway_features": [
                    "routing",
                    "api-key auth",
                    "rate limit",
                    "body limit",
                    "identity signing",
                    "metrics",
                    "tracing (file, ratio 1.0)",
                ],
                "median": best,
                "runs": runs,
                "ratios": ratios,
                "goal": {"gateway_vs_caddy_min": 0.9, "p50_gateway_minus_caddy_ms_max": 1.0},
                "met": ratios["gateway_vs_caddy"] >= 0.9 and ratios["p50_gateway_minus_caddy_ms"] <= 1.0,
                "spans_exported": spans,
                "profile_top_frames": profile,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {RESULTS.relative_to(RESULTS.parents[2])}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-upstream":
        sys.path.insert(0, str(Path(__file__).parent))
        serve_upstream(int(sys.argv[2]))
    else:
        main()
