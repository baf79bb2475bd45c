"""Benchmark: a hello-world Litestar app bare vs. with the full caravan-commons stack.

Both variants run on the same ASGI server (granian, commons' embedded server helper) in one run,
one at a time, bound to 127.0.0.1, and are loaded with ``wrk -t1 -c32 -d10s`` after a warm-up.

Variants:
- ``bare``             Litestar([hello]) — nothing else;
- ``full``             create_app(...) with everything on, as the runtime runs services: request
                       ids, RED metrics, an access-log line per request (JSON lines to a file,
                       written in batches), tracing of every request (sample ratio 1.0) exported
                       by the JSON-lines *file* exporter through a BatchSpanProcessor, problem+json;
- ``full-default``     the same at commons' default sample ratio (``trace_sample_ratio``): the
                       variant the 0.60 goal is judged on;
- ``full-no-tracing``  the same with ``trace_exporter=none`` (what tracing costs);
- ``full-default-no-access-log`` ``full-default`` without the access log (what a line costs;
                       not run by default);
- ``full-default-unbuffered`` ``full-default`` writing every log line as it comes
                       (``log_flush_interval_s=0``; not run by default);
- ``full-stock-otel``  full, but with the stock opentelemetry-instrumentation-asgi middleware
                       (not run by default; ``--variants bare,full-stock-otel``).

Each round measures bare right next to every other variant (alternating the order) and the ratio
is the median of those per-pair ratios, so that load from other processes on a shared machine
hits both sides of a comparison alike. The server's CPU time per request (from /proc, all its
threads) is recorded too: its ratio to bare is the throughput a saturated core would keep, and is
far less disturbed by other processes than wrk's RPS. Prints a table (median RPS, p50, p99, ratio
to bare, CPU per request, CPU ratio) and writes bench/results/commons_stack.json.
Usage: python bench/commons_stack.py [--duration 10] [--rounds 3] [--variants bare,full,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "commons_stack.json"
VARIANTS = (
    "bare", "full", "full-default", "full-no-tracing", "full-stock-otel", "full-default-unbuffered",
    "full-default-no-access-log",
)  # fmt: skip
DEFAULT_VARIANTS = ("bare", "full", "full-default", "full-no-tracing")
#: The variant the goal is judged on: the stack as a service runs it by default.
GOAL_VARIANT = "full-default"


# --------------------------------------------------------------------------- server side


def build_app(variant: str, workdir: str):  # type: ignore[no-untyped-def]
    from litestar import Litestar, get

    @get("/hello", sync_to_thread=False)
    def hello() -> str:
        return "Hello, world!"

    if variant == "bare":
        return Litestar([hello]), None

    from caravan_commons.app import create_app
    from caravan_commons.logging import configure_logging
    from caravan_commons.settings import ServiceSettings, load_settings
    from caravan_commons.tracing import setup_tracing

    env = {
        "CARAVAN_SERVICE_NAME": "bench",
        "CARAVAN_SERVICE_VERSION": "1.0.0",
        "CARAVAN_LOG_FILE": os.path.join(workdir, "bench.log"),
        "CARAVAN_TRACE_FILE": os.path.join(workdir, "bench.traces.jsonl"),
        "CARAVAN_TRACE_EXPORTER": "none" if variant == "full-no-tracing" else "file",
        "CARAVAN_ACCESS_LOG": "false" if variant == "full-default-no-access-log" else "true",  # as run
    }
    if not variant.startswith("full-default"):
        env["CARAVAN_TRACE_SAMPLE_RATIO"] = "1.0"
    if variant == "full-default-unbuffered":
        env["CARAVAN_LOG_FLUSH_INTERVAL_S"] = "0"
    settings = load_settings(ServiceSettings, env)
    configure_logging(settings)
    tracing = setup_tracing(settings, stock_middleware=variant == "full-stock-otel") or False
    return create_app(settings, route_handlers=[hello], tracing=tracing), settings


def serve(variant: str, port: int, workdir: str) -> None:
    import msgspec

    from caravan_commons.server import serve_app
    from caravan_commons.settings import ServiceSettings, load_settings

    app, settings = build_app(variant, workdir)
    if settings is None:
        settings = load_settings(
            ServiceSettings, {"CARAVAN_SERVICE_NAME": "bench", "CARAVAN_TRACE_EXPORTER": "none"}
        )
    asyncio.run(serve_app(app, msgspec.structs.replace(settings, port=port)))


def default_sample_ratio() -> float:
    """commons' default ``trace_sample_ratio`` (what ``full-default`` runs at)."""
    from caravan_commons.settings import ServiceSettings, load_settings

    return load_settings(ServiceSettings, {"CARAVAN_SERVICE_NAME": "bench"}).trace_sample_ratio


# --------------------------------------------------------------------------- load side


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not come up")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    url: str, duration: int, *, connections: int = 32, script: Path | None = None
) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script is not None:
        command[-1:-1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": requests,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }  # fmt: skip


def measure(variant: str, duration: int, warmup: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as workdir:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", variant, "--port", str(port), "--workdir", workdir],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/hello"
            wait_up(url, process)
            subprocess.run(["wrk", "-t1", "-c32", f"-d{warmup}s", url], capture_output=True, check=True)
            cpu_before = cpu_seconds(process.pid)
            result = run_wrk(url, duration)
            result["server_cpu_us_per_request"] = (
                (cpu_seconds(process.pid) - cpu_before) * 1e6 / result["requests"]
            )
        finally:
            process.terminate()
            process.wait(timeout=60)
        if variant.startswith("full") and variant != "full-no-tracing":
            spans = Path(workdir, "bench.traces.jsonl")
            result["spans_exported"] = sum(1 for _ in spans.open()) if spans.exists() else 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="repeat the whole set; medians are reported")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"from {', '.join(VARIANTS)}")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workdir)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "bare" not in variants:
        raise SystemExit(f"variants must include 'bare' and come from {', '.join(VARIANTS)}")

    # The machine may be shared: each round measures bare right before each other variant and the
    # ratio is taken within that pair; the order alternates between rounds to cancel drift.
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    others = [v for v in variants if v != "bare"]
    for round_no in range(args.rounds):
        for variant in others:
            pair = ("bare", variant) if round_no % 2 == 0 else (variant, "bare")
            measured = {name: measure(name, args.duration, args.warmup) for name in pair}
            measured[variant]["ratio"] = measured[variant]["rps"] / measured["bare"]["rps"]
            measured[variant]["cpu_ratio"] = (
                measured["bare"]["server_cpu_us_per_request"] / measured[variant]["server_cpu_us_per_request"]
            )
            for name, result in measured.items():
                runs[name].append(result)
            print(
                f"round {round_no + 1}: bare {measured['bare']['rps']:8.0f} req/s, {variant} "
                f"{measured[variant]['rps']:8.0f} req/s, ratio {measured[variant]['ratio']:.2f} "
                f"(server CPU per request ratio {measured[variant]['cpu_ratio']:.2f})",
                file=sys.stderr,
            )

    summary = {}
    for variant, results in runs.items():
        summary[variant] = {
            key: statistics.median(r[key] for r in results)
            for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request")
        } | {"non_2xx": sum(r["non_2xx"] for r in results)}
        if "spans_exported" in results[0]:
            summary[variant]["spans_exported"] = results[-1]["spans_exported"]
    header = ("variant", "RPS", "p50 ms", "p99 ms", "vs bare", "CPU us/req", "CPU vs bare")
    print("\n{:18} {:>10} {:>8} {:>8} {:>8} {:>11} {:>11}".format(*header))
    for variant, row in summary.items():
        ratios = [r["ratio"] for r in runs[variant] if "ratio" in r]
        cpu_ratios = [r["cpu_ratio"] for r in runs[variant] if "cpu_ratio" in r]
        row["ratio_vs_bare"] = round(statistics.median(ratios), 3) if ratios else 1.0
        row["cpu_ratio_vs_bare"] = round(statistics.median(cpu_ratios), 3) if cpu_ratios else 1.0
        rps, p50, p99, ratio = row["rps"], row["p50_ms"], row["p99_ms"], row["ratio_vs_bare"]
        cpu, cpu_ratio = row["server_cpu_us_per_request"], row["cpu_ratio_vs_bare"]
        print(f"{variant:18} {rps:10.0f} {p50:8.2f} {p99:8.2f} {ratio:8.2f} {cpu:11.1f} {cpu_ratio:11.2f}")
    goal = 0.6
    full_ratio = summary.get(GOAL_VARIANT, {}).get("ratio_vs_bare")
    default_ratio = default_sample_ratio()
    if full_ratio is not None:
        verdict = "meets" if full_ratio >= goal else "misses"
        print(
            f"\nthe stack at the default sampling ({default_ratio:.0%} of new traces) keeps "
            f"{full_ratio:.0%} of bare throughput: {verdict} the {goal:.0%} goal"
        )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "commons_stack",
        "server": "granian (embedded, 1 worker), 127.0.0.1",
        "load": f"wrk -t1 -c32 -d{args.duration}s after a {args.warmup}s warm-up; {args.rounds} round(s)",
        "method": "each variant is measured right after/before bare; ratio = median of per-pair ratios; "
        "cpu_ratio = bare's server CPU time per request / the variant's (less sensitive to other load)",
        "tracing_exporter": "JSON-lines file exporter behind a BatchSpanProcessor",
        "access_log": "on (JSON lines to a file, written in batches unless the variant says otherwise)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "default_trace_sample_ratio": default_ratio,
        "goal": {"variant": GOAL_VARIANT, "min_ratio_vs_bare": goal, "ratio_vs_bare": full_ratio},
        "results": summary,
        "rounds": runs,
    }
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(RESULTS)
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
