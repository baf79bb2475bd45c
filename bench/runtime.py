"""Local runtime benchmark: what the user waits for (`invoke up` cold, warm and after one service
changed), the runtime's own bring-up, total memory, and recovery after kill -9.

    python bench/runtime.py [--recoveries 5] [--only up|runtime]

What the user waits for (``up``), in a fresh clone of this repository (its committed HEAD) with a
state folder and ports of its own (``CARAVAN_IT_PORT_OFFSET``), system packages and the package
caches present:

- cold: ``./caravan up`` in the fresh clone (it creates .venv, then brings every stage up);
- warm: ``./caravan up`` again, everything up and nothing changed (gates cached by their inputs);
- one service: one service's source touched, then ``./caravan up``.

Each is timed to "stage 13 passed" (stages 14–15 are not built here yet) and to the command's
end. The clone's runtime is stopped (``./caravan down``) and the clone removed afterwards.

Runs in a fresh temporary state folder (own supervisor, own ports), so it never touches the
workspace's own runtime. Baseline, measured in the same run: one bare hello-world app (granian,
the same server the services use) from process start to answering — every figure is also given
as a multiple of it, since absolute times on these machines are noisy.

- cold: empty state → identities, supervisor, package index, commons published, discovery,
  Prometheus (when installed) and every service's virtualenv built and its instances ready
  (package caches allowed);
- warm: everything built, runtime stopped → supervisor started → every program ready;
- memory: resident memory (RSS, and PSS, which splits shared pages fairly) of the supervisor and
  every process under it;
- recovery: kill -9 of a service instance → the supervisor restarts it → ready again.

Prints a table and writes bench/results/runtime.json (a run of one part keeps the other's last
results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psutil

from caravan_workspace.registry import Context
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.stages import commons as stage3
from caravan_workspace.stages import foundation as stage1
from caravan_workspace.stages import services as lanes
from caravan_workspace.stages import shared as stage2

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "runtime.json"
GOALS = {"warm_s": 3.0, "memory_mb": 500.0, "recovery_s": 2.0}
UP_GOALS = {"cold_s": 120.0, "warm_s": 5.0, "one_service_s": 40.0}
#: The last stage built here: the user's "all stages passed" (14–15 are built in other issues).
LAST_STAGE = 13
TOUCHED_SERVICE = "svc-c"


def ready(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=0.5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_all_ready(rt: LocalRuntime, limit: float = 120.0) -> None:
    programs = {
        name: (int(str(info["port"])), str(info["ready_path"]))
        for name, info in rt.recorded_programs().items()
        if info.get("port") and info.get("ready_path") and name in rt.supervisor_names()
    }
    deadline = time.monotonic() + limit
    while programs:
        programs = {n: pr for n, pr in programs.items() if not ready(*pr)}
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready: {sorted(programs)}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare_app_start(python: str) -> float:
    """Baseline: a bare Litestar hello-world under granian, from spawn to its first answer."""
    port = free_port()
    code = textwrap.dedent(
        f"""
        from granian import Granian
        from granian.constants import Interfaces
        Granian("bare_app:app", interface=Interfaces.ASGI, address="127.0.0.1", port={port}).serve()
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(
            "from litestar import Litestar, get\n\n"
            "@get('/', sync_to_thread=False)\ndef hello() -> str:\n    return 'hi'\n\n"
            "app = Litestar([hello])\n"
        )
        started = time.perf_counter()
        proc = subprocess.Popen(
            [python, "-c", code], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while not ready(port, "/"):
                time.sleep(0.005)
            return time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def memory(rt: LocalRuntime) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, processes) of supervisord and everything below it."""
    pid = rt.supervisor.pid()
    if pid is None:
        return 0.0, 0.0, 0
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20, len(procs)


def recovery(rt: LocalRuntime, program: str) -> tuple[float, float]:
    """(seconds until the supervisor runs a new process, seconds until it answers ready)."""
    info = rt.recorded_programs()[program]
    port, path = int(str(info["port"])), str(info["ready_path"])
    # A crash counts as such once the process has been up for its startsecs (RUNNING); killed
    # earlier, supervisord treats it as a failed start and backs off (1 s more each time).
    while (status := rt.supervisor.program(program)) is None or status.state != "RUNNING":
        time.sleep(0.01)
    pid = status.pid
    assert pid
    killed = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    respawned = None
    while True:
        status = rt.supervisor.program(program)
        if respawned is None and status and status.pid and status.pid != pid:
            respawned = time.perf_counter() - killed
        if respawned is not None and ready(port, path):
            return respawned, time.perf_counter() - killed
        time.sleep(0.005)


def timed_up(clone: Path, env: dict[str, str]) -> tuple[float | None, float, int]:
    """``./caravan up`` in ``clone``: (seconds to "stage 13 passed" or None, seconds in all, exit code)."""
    started = time.perf_counter()
    reached = None
    proc = subprocess.Popen(
        ["./caravan", "up"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if reached is None and line.startswith(f"■ stage {LAST_STAGE} passed"):
            reached = time.perf_counter() - started
    code = proc.wait()
    return reached, time.perf_counter() - started, code


def measure_up() -> dict[str, object]:
    """`./caravan up` cold, warm and after one service changed, in a fresh clone."""
    with tempfile.TemporaryDirectory(prefix="caravan-bench-up-") as tmp:
        clone = Path(tmp) / "caravan"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CARAVAN_STATE_DIR", "CARAVAN_ROOT", "VIRTUAL_ENV")
        }
        env["CARAVAN_PORT_OFFSET"] = os.environ.get("CARAVAN_IT_PORT_OFFSET", "1000")
        env["COLUMNS"] = "160"
        results: dict[str, object] = {}
        try:
            for name, prepare in (
                ("cold", lambda: None),
                ("warm", lambda: None),
                ("one_service", lambda: touch_service(clone)),
            ):
                prepare()
                reached, total, code = timed_up(clone, env)
                results[name] = {"to_stage_13_s": reached and round(reached, 2), "total_s": round(total, 2),
                                 "exit": code}  # fmt: skip
                print(f"  {name}: stage {LAST_STAGE} passed after {reached and f'{reached:.1f}'} s, "
                      f"done in {total:.1f} s (exit {code})", flush=True)  # fmt: skip
        finally:
            subprocess.run(["./caravan", "down"], cwd=clone, env=env, capture_output=True, check=False)
    return results


def touch_service(clone: Path) -> None:
    """Change one service's source (a comment), as a developer's edit would."""
    source = clone / TOUCHED_SERVICE / "src" / TOUCHED_SERVICE.replace("-", "_") / "__init__.py"
    source.write_text(source.read_text() + f"# touched by bench/runtime.py at {time.time():.0f}\n")


def up_rows(up: dict[str, dict[str, float | None]], baseline: float) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, title, goal in (
        ("cold", "invoke up, cold: fresh clone → stage 13 passed", UP_GOALS["cold_s"]),
        ("warm", "invoke up, warm: nothing changed → stage 13 passed", UP_GOALS["warm_s"]),
        ("one_service", f"invoke up, {TOUCHED_SERVICE} touched → stage 13 passed", UP_GOALS["one_service_s"]),
    ):
        value = up[name]["to_stage_13_s"]
        total = up[name]["total_s"]
        shown = f"{value:.1f} s" if value is not None else "not reached"
        ratio = f"{value / baseline:.0f}×" if value is not None else "–"
        rows.append((f"{title} (whole command {total:.1f} s)", shown, ratio, f"≤ {goal:g} s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recoveries", type=int, default=5)
    parser.add_argument("--only", choices=("up", "runtime"), default=None)
    args = parser.parse_args()

    baseline = statistics.median(bare_app_start(sys.executable) for _ in range(3))
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    up = measure_up() if args.only in (None, "up") else previous.get("up")
    if args.only == "up":
        print_table(up_rows(up, baseline), baseline)
        RESULTS.write_text(json.dumps({**previous, "up": up, "up_baseline_app_start_s": round(baseline, 3),
                                       "up_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "up_goals": UP_GOALS}, indent=2) + "\n")  # fmt: skip
        print(f"results: {RESULTS.relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as tmp:
        ctx = Context(root=ROOT, state_dir=Path(tmp) / "state")
        rt = LocalRuntime(ctx)
        try:
            started = time.perf_counter()
            stage1.provision(ctx)
            stage3.ensure_index(ctx)
            stage3.publish_commons(ctx)
            stage2.ensure_discovery(ctx)
            stage2.ensure_monitoring(ctx)
            stage2.ensure_gateway(ctx)
            for service in rt.services:
                lanes.deploy(ctx, service)
            wait_all_ready(rt)
            cold = time.perf_counter() - started

            rt.supervisor.shutdown()
            started = time.perf_counter()
            rt.supervisor.ensure_running()
            wait_all_ready(rt)
            warm = time.perf_counter() - started

            time.sleep(1.0)  # let every process finish its start-up allocations
            rss, pss, count = memory(rt)
            programs = sorted(rt.supervisor_names())

            victim = f"{next(iter(rt.services))}-1"
            measured = [recovery(rt, victim) for _ in range(args.recoveries)]
            respawns = [m[0] for m in measured]
            recoveries = [m[1] for m in measured]
        finally:
            rt.supervisor.shutdown()

    rec = statistics.median(recoveries)
    respawn = statistics.median(respawns)
    rows = [
        ("baseline: one bare app, start → answering", f"{baseline:.2f} s", "1.0×", "–"),
        ("cold up: empty state → every program ready", f"{cold:.2f} s", f"{cold / baseline:.1f}×", "–"),
        (
            "warm up: stopped → every program ready",
            f"{warm:.2f} s",
            f"{warm / baseline:.1f}×",
            f"≤ {GOALS['warm_s']:g} s",
        ),
        (f"memory: {count} processes, RSS", f"{rss:.0f} MB", "–", f"< {GOALS['memory_mb']:g} MB"),
        (f"memory: {count} processes, PSS", f"{pss:.0f} MB", "–", f"< {GOALS['memory_mb']:g} MB"),
        (f"recovery: kill -9 {victim} → new process (median)", f"{respawn:.3f} s", "–", "–"),
        (
            f"recovery: kill -9 {victim} → ready (median of {len(recoveries)})",
            f"{rec:.2f} s",
            f"{rec / baseline:.1f}×",
            f"< {GOALS['recovery_s']:g} s",
        ),
    ]
    if up:
        rows = up_rows(up, baseline) + rows
    print_table(rows, baseline)
    print(f"programs: {', '.join(programs)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "programs": programs,
                "baseline_app_start_s": round(baseline, 3),
                "cold_up_s": round(cold, 3),
                "warm_up_s": round(warm, 3),
                "memory_rss_mb": round(rss, 1),
                "memory_pss_mb": round(pss, 1),
                "processes": count,
                "recovery_s": [round(r, 3) for r in recoveries],
                "recovery_median_s": round(rec, 3),
                "respawn_s": [round(r, 3) for r in respawns],
                "goals": GOALS,
                "up": up,
                "up_baseline_app_start_s": round(baseline, 3),
                "up_goals": UP_GOALS,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {RESULTS.relative_to(ROOT)}")


def print_table(rows: list[tuple[str, str, str, str]], baseline: float) -> None:
    rows = [("baseline: one bare app, start → answering", f"{baseline:.2f} s", "1.0×", "–")] + [
        r for r in rows if not r[0].startswith("baseline")
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>11}  {'vs baseline':>11}  goal")
    for name, value, ratio, goal in rows:
        print(f"{name:<{width}}  {value:>11}  {ratio:>11}  {goal}")


if __name__ == "__main__":
    main()
