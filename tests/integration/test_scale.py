"""`invoke scale NAME N` on the local runtime (the real supervisor): instances start and stop within
service.toml's bounds, discovery follows, and the gateway balances across them."""

from __future__ import annotations

import time

import pytest
from system import System

from caravan_workspace.runtime import catalog
from caravan_workspace.runtime.programs import RuntimeError_


def ready_ids(system: System, service: str) -> set[str]:
    return {i.id for i in catalog.ready_instances(system.state_dir, service)}


def wait_for(condition, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not reached: {what}")


def served_by(system: System, program: str) -> int:
    log = system.runtime.supervisor.log_path(program).read_text(errors="replace")
    return log.count('"/products"')


def test_scale_starts_and_stops_instances_and_the_gateway_balances(system: System) -> None:
    rt = system.runtime
    with system.env():
        with pytest.raises(RuntimeError_, match="scales between 1 and 3 instances"):
            rt.scale("svc-a", 4)
        changed = rt.scale("svc-a", 2)
        assert "svc-a-2" in changed
        wait_for(
            lambda: ready_ids(system, "svc-a") == {"svc-a-1", "svc-a-2"}, "two ready instances in discovery"
        )
        before = {p: served_by(system, p) for p in ("svc-a-1", "svc-a-2")}
        for _ in range(40):
            assert system.call("GET", "svc-a", "/products").status_code == 200
        wait_for(
            lambda: all(served_by(system, p) > before[p] for p in before),
            "both instances served /products",
            10,
        )
        changed = rt.scale("svc-a", 1)
        assert "svc-a-2" in changed
        assert "svc-a-2" not in rt.supervisor_names()
        wait_for(lambda: ready_ids(system, "svc-a") == {"svc-a-1"}, "one instance left in discovery")
        assert system.call("GET", "svc-a", "/products").status_code == 200
