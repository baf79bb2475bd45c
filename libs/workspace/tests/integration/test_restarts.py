"""Restarts just work: `invoke up`, `down`, `up`, `down` in one workspace (the real CLI, the real
plan, a state folder of its own). Every `up` passes every stage, exits 0 and ends with the order
*it* placed; every `down` leaves no process behind; the
second `up` reuses the gates whose inputs did not change; after both, the catalogue lists exactly
the demo products; and stopping the system right after a burst of orders, every program exits
within its drain (the supervisor kills none of them).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from caravan_workspace.registry import Context
from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.supervisor import MARKER_ENV, _marked_processes

INVOKE = Path(sys.executable).with_name("invoke")
BUILT = range(1, 16)  # every stage of the plan
ORDERS_FOR_S = 15.0


def invoke(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(INVOKE), *args], cwd=root, env=env, capture_output=True, text=True, timeout=3600, check=False
    )


def stages(state: Path) -> dict[int, str]:
    recorded = json.loads((state / "state.json").read_text())["stages"]
    return {int(n): s["status"] for n, s in recorded.items()}


def demo_order(output: str) -> str:
    found = re.search(r"^demo order (\S+): confirmed$", output, re.MULTILINE)
    assert found, f"up did not end with a confirmed demo order:\n{output[-3000:]}"
    return found.group(1)


def assert_up_passed(done: subprocess.CompletedProcess[str], state: Path) -> None:
    status = stages(state)
    failing = {n: status.get(n) for n in BUILT if status.get(n) != "passed"}
    failures = "\n".join(line for line in done.stdout.splitlines() if "✗" in line)
    assert not failing, f"{failing}\n{failures}\n{done.stderr[-2000:]}"
    assert "Programs" in done.stdout and "Stages" in done.stdout  # the closing status table


def assert_down_left_nothing(done: subprocess.CompletedProcess[str], state: Path) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stopped every program and the supervisor" in done.stdout
    home = str((state / "supervisor").resolve())
    assert _marked_processes(home) == [], f"processes with {MARKER_ENV}={home} are still running"


def get_json(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def listed_skus(base: str, key: str) -> list[str]:
    skus, cursor = [], None
    while True:
        page = get_json(f"{base}/api/svc-a/products?limit=100" + (f"&cursor={cursor}" if cursor else ""), key)
        skus += [item["sku"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return skus


def place_orders(base: str, key: str, sku: str, seconds: float) -> int:
    """Orders from 6 clients for ``seconds``; some give up early (a short timeout), leaving work
    cancelled in the middle. Returns how many orders were answered."""

    def client(number: int) -> int:
        answered, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            body = json.dumps(
                {"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": "tok_approve"}}
            )
            request = urllib.request.Request(
                f"{base}/api/svc-b/orders",
                data=body.encode(),
                method="POST",
                headers={
                    "X-API-Key": key,
                    "Idempotency-Key": str(uuid.uuid4()),
                    "content-type": "application/json",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=0.2 if number % 2 else 10) as answer:
                    answer.read()
                    answered += 1
            except urllib.error.HTTPError:
                answered += 1  # an answer all the same (e.g. 409 once the stock runs out)
            except (urllib.error.URLError, OSError):
                pass  # gave up early: the order goes on in the system
        return answered

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        return sum(pool.map(client, range(6)))


def test_up_down_up_down_passes_every_time_and_stops_cleanly(repo_root: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        first = invoke(repo_root, "up")
        assert_up_passed(first, state)
        assert first.returncode == 0, first.stderr[-2000:]
        first_order = demo_order(first.stdout)
        waterfall = ("svc-a POST /reservations", "svc-c POST /payments/authorize")
        assert all(hop in first.stdout for hop in waterfall), first.stdout[-3000:]
        assert_down_left_nothing(invoke(repo_root, "down"), state)

        second = invoke(repo_root, "up")  # the supervisor starts every program again
        assert_up_passed(second, state)
        assert second.returncode == 0, second.stderr[-2000:]
        assert demo_order(second.stdout) != first_order  # the summary shows this run's order
        assert "(cached: inputs unchanged since " in second.stdout
        assert "gate domain tests pass" in second.stdout

        rt = LocalRuntime(Context(root=repo_root, state_dir=state))
        base, key = gateway_runtime.url(rt), gateway_runtime.api_key_file(rt, "demo").read_text().strip()
        catalogue = tomllib.loads((repo_root / "svc-a/src/svc_a/demo_catalogue.toml").read_text())
        demo = sorted(p["sku"] for p in catalogue["product"])
        assert sorted(listed_skus(base, key)) == demo  # no gate's product, after two runs

        log = state / "supervisor" / "supervisord.log"
        killed_before = log.read_text().count("with SIGKILL")
        stock = {sku: get_json(f"{base}/api/svc-a/stock/{sku}", key)["available"] for sku in demo}
        assert place_orders(base, key, max(stock, key=lambda sku: stock[sku]), ORDERS_FOR_S) > 0
        stop = invoke(repo_root, "down")  # right after the load
        assert_down_left_nothing(stop, state)
        kills = [line for line in log.read_text().splitlines() if "with SIGKILL" in line][killed_before:]
        assert kills == [], f"programs outlived their drain: {kills}\n{stop.stdout}"
    finally:
        invoke(repo_root, "down")
