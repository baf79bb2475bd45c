"""Stage 15: monitoring and operations — the metrics the alert rules read are collected, an alert
reaches the workspace's receiver when a service really stops (and resolves when it is back), and
every alert has a runbook whose commands exist.

The rules (observability/rules/), Alertmanager's routes and the alert receiver are put in place
by stage 2's monitoring action (``monitoring.ensure``), which this stage runs again.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from caravan_workspace.ops import alert_log, rules, runbooks
from caravan_workspace.registry import Context, GateFailure, gate
from caravan_workspace.runtime import monitoring
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.programs import Program, RuntimeError_, http_status
from caravan_workspace.runtime.supervisor import SupervisorError
from caravan_workspace.stages import shared

#: The bound the alerts gate holds delivery to: instance stopped → alert at the receiver.
DELIVERY_BOUND_S = 10.0
#: How long the gate waits for an alert (or its resolution) before it calls it lost.
ALERT_WAIT_S = 30.0
#: How long the metrics gate waits for series a service samples in the background.
SERIES_WAIT_S = 20.0
#: How long a stopped program may take to start and be ready again (a loaded machine is slow).
START_WAIT_S = 120.0
ALERT = "InstanceDown"


def _prometheus_port(rt: LocalRuntime) -> int:
    port = rt.ports.allocated().get(monitoring.PROMETHEUS)
    if port is None or http_status(port, "/-/ready") != 200:
        raise GateFailure("Prometheus is not running", fix="invoke stage 2")
    return port


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GateFailure(f"Prometheus query failed: {exc}", fix="invoke logs prometheus") from exc
    return list(data.get("data", {}).get("result", []))


def _get_json(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@gate("ops.metrics")
def metrics_collected(ctx: Context) -> str:
    """Every program's target is up, and every series the rules read is in Prometheus."""
    targets = shared.monitoring_scrapes(ctx)
    rt = LocalRuntime(ctx)
    port = _prometheus_port(rt)
    needed = rules.raw_series(ctx.root)
    pattern = "|".join(sorted(needed))
    deadline = time.monotonic() + SERIES_WAIT_S
    while True:
        found = {
            r["metric"].get("__name__")
            for r in _query(port, f'count by (__name__) ({{__name__=~"{pattern}"}})')
        }
        missing = needed - found
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if missing:
        raise GateFailure(
            f"series the rules read are not collected: {', '.join(sorted(missing))}",
            fix="invoke status (is every service running the current code?); invoke stage 2",
        )
    return f"{targets}; the {len(needed)} series the rules read are collected"


def _prometheus_has_rule(port: int, name: str) -> bool:
    data = _get_json(port, "/api/v1/rules?type=alert") or {}
    groups = data.get("data", {}).get("groups", [])
    return any(rule.get("name") == name for g in groups for rule in g.get("rules", []))


def _wait_for(ctx: Context, program: str, status: str, since: float) -> dict[str, Any] | None:
    """The first notification of ``ALERT`` for ``program`` with ``status`` received after
    ``since`` (Unix time), waiting up to ALERT_WAIT_S."""
    deadline = time.monotonic() + ALERT_WAIT_S
    while time.monotonic() < deadline:
        for record in alert_log.read_log(ctx.state_dir):
            labels = record["labels"]
            if (
                labels.get("alertname") == ALERT
                and labels.get("program") == program
                and record.get("status") == status
                and float(record.get("received_at", 0)) >= since
            ):
                return record
        time.sleep(0.1)
    return None


@gate("ops.alerts")
def alerts_reach_receiver(ctx: Context, program: str = "svc-c-1") -> str:
    """Stop ``program`` for real: InstanceDown reaches the receiver (through its severity's route)
    within DELIVERY_BOUND_S of the instance going down; start it again: the alert resolves. The
    program is running and ready again afterwards, whatever happened."""
    rt = LocalRuntime(ctx)
    port = _prometheus_port(rt)
    for name in (monitoring.ALERTMANAGER, shared.RECEIVER):
        status = rt.supervisor.program(name) if rt.supervisor.is_running() else None
        if status is None or status.state != "RUNNING":
            raise GateFailure(f"{name} is not running", fix="invoke stage 2")
    if not _prometheus_has_rule(port, ALERT):
        raise GateFailure(f"Prometheus has not loaded the alert {ALERT}", fix="invoke stage 2")
    info = rt.recorded_programs().get(program)
    if info is None or not info.get("port") or program not in rt.running_names():
        raise GateFailure(f"{program} is not running", fix="invoke up")
    victim = Program(
        name=program,
        member=str(info["member"]),
        kind=str(info["kind"]),
        command=(),
        port=int(str(info["port"])),
        ready_path=str(info["ready_path"]) if info.get("ready_path") else None,
    )
    if _query(port, f'ALERTS{{alertname="{ALERT}", program="{program}"}}'):
        raise GateFailure(f"{ALERT} is already pending or firing for {program}", fix="invoke alerts")
    severity = next(r.labels["severity"] for r in rules.alerts(ctx.root)[ALERT])
    ctx.progress(f"stopping {program} for real")
    asked = time.time()
    try:
        rt.supervisor.stop(program)  # returns once the process is gone (drained)
        down = time.time()
        fired = _wait_for(ctx, program, "firing", down)
    finally:
        restarted = time.time()
        try:
            rt.supervisor.start(program)
            rt.programs.wait_ready([victim], timeout=START_WAIT_S)
        except (SupervisorError, RuntimeError_) as exc:
            raise GateFailure(
                f"could not start {program} again: {exc}", fix=f"invoke restart {program}"
            ) from exc
        ready = time.time()
    resolved = _wait_for(ctx, program, "resolved", restarted)
    if fired is None:
        raise GateFailure(
            f"{ALERT} for {program} never reached the receiver within {ALERT_WAIT_S:.0f}s",
            fix="invoke logs prometheus; invoke logs alertmanager; invoke logs alert-receiver",
        )
    delivery = float(fired["received_at"]) - down
    if fired.get("route") != severity:
        raise GateFailure(
            f"{ALERT} (severity {severity}) arrived through the {fired.get('route')!r} route",
            fix="invoke stage 2 (Alertmanager's routes)",
        )
    if delivery > DELIVERY_BOUND_S:
        raise GateFailure(
            f"{ALERT} for {program} reached the receiver {delivery:.1f}s after it went down "
            f"(bound {DELIVERY_BOUND_S:.0f}s)",
            fix="the scrape and evaluation intervals and the alert's `for` (observability/rules/alerts.yml)",
        )
    if resolved is None:
        raise GateFailure(
            f"{ALERT} for {program} did not resolve within {ALERT_WAIT_S:.0f}s of its start",
            fix="invoke logs alertmanager",
        )
    back = max(0.0, float(resolved["received_at"]) - ready)
    return (
        f"{program} stopped (in {down - asked:.1f}s): {ALERT} reached the receiver's {severity} route "
        f"{delivery:.2f}s later (bound {DELIVERY_BOUND_S:.0f}s); started again (ready after "
        f"{ready - restarted:.1f}s), resolved at the receiver {back:.2f}s after it was ready"
    )


@gate("ops.runbooks")
def every_alert_has_a_runbook(ctx: Context) -> str:
    """Every alert: severity, summary, description, its runbook; every runbook: an alert, every
    section, and only invoke tasks and flags that exist."""
    found = rules.problems(ctx.root) + runbooks.check(ctx.root)
    if found:
        more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
        raise GateFailure("; ".join(found[:3]) + more, fix="observability/runbooks/ (see docs/operations.md)")
    names = rules.alerts(ctx.root)
    return f"{len(names)} alerts, each with severity, summary, description and a runbook whose commands exist"
