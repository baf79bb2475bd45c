"""Alert delivery on the local runtime with the real Prometheus, Alertmanager and the workspace's
alert receiver (all under the real supervisor): routes by severity, inhibition, a real outage of a
program firing InstanceDown and resolving, and the receiver's own HTTP contract."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caravan_workspace.ops import alert_log
from caravan_workspace.registry import Context, GateFailure
from caravan_workspace.runtime import monitoring
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.stages import foundation as stage1
from caravan_workspace.stages import ops as stage15
from caravan_workspace.stages import shared as stage2

REPO = Path(__file__).resolve().parents[4]
pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or monitoring.alertmanager_binary() is None,
    reason="Prometheus and Alertmanager are not installed (apt-get install prometheus "
    "prometheus-alertmanager); CI installs them",
)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    context = Context(root=REPO, state_dir=tmp_path_factory.mktemp("alerting") / "state")
    stage1.provision(context)
    stage2.ensure_monitoring(context)
    yield context
    LocalRuntime(context).supervisor.shutdown()


def _port(ctx: Context, name: str) -> int:
    return LocalRuntime(ctx).ports.allocated()[name]


def _post(port: int, path: str, body: object) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def _alert(name: str, severity: str, ends_at: datetime | None = None, **labels: str) -> dict[str, object]:
    now = datetime.now(UTC)
    alert: dict[str, object] = {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} test", "runbook_url": f"observability/runbooks/{name}.md"},
        "startsAt": (now - timedelta(seconds=5)).isoformat(),
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def _received(ctx: Context, **labels: str) -> list[dict[str, object]]:
    return [
        r
        for r in alert_log.read_log(ctx.state_dir)
        if all(r["labels"].get(k) == v for k, v in labels.items())
    ]


def _wait(ctx: Context, timeout: float = 20.0, **labels: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _received(ctx, **labels)
        if found:
            return found
        time.sleep(0.1)
    return []


def test_alertmanager_routes_by_severity_and_an_instance_down_silences_its_latency_alerts(ctx):
    port = _port(ctx, monitoring.ALERTMANAGER)
    status, _, _ = _post(
        port, "/api/v2/alerts", [_alert("InstanceDown", "critical", service="svc-t", program="svc-t-1")]
    )
    assert status == 200
    down = _wait(ctx, alertname="InstanceDown", service="svc-t")
    assert down and down[0]["route"] == "critical" and down[0]["status"] == "firing"
    # The latency alerts come once the outage is known: Alertmanager's inhibitor and its dispatcher
    # read new alerts concurrently, so an alert arriving in the same instant as its inhibitor can be
    # sent before the inhibitor has it (how Alertmanager works, not what this test is about).
    status, _, _ = _post(
        port,
        "/api/v2/alerts",
        [
            _alert("HighLatencyP99", "warning", service="svc-t", route="/things", method="GET"),
            _alert("HighLatencyP99", "warning", service="svc-u", route="/things", method="GET"),
        ],
    )
    assert status == 200
    other = _wait(ctx, alertname="HighLatencyP99", service="svc-u")
    assert other and other[0]["route"] == "warning"
    time.sleep(2)  # two more group intervals: an inhibited alert would have been sent by now
    assert _received(ctx, alertname="HighLatencyP99", service="svc-t") == []

    # resolved: Alertmanager sends the resolution, and `invoke alerts` reads it as resolved
    past = datetime.now(UTC) - timedelta(seconds=1)
    _post(
        port, "/api/v2/alerts", [_alert("InstanceDown", "critical", past, service="svc-t", program="svc-t-1")]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = {s.labels.get("service"): s for s in alert_log.summarise(alert_log.read_log(ctx.state_dir))}
        if states["svc-t"].status == "resolved":
            break
        time.sleep(0.1)
    assert states["svc-t"].status == "resolved"
    assert states["svc-t"].runbook == "observability/runbooks/InstanceDown.md"


def test_a_program_stopped_for_real_fires_instance_down_at_the_receiver_and_resolves(ctx):
    detail = stage15.alerts_reach_receiver(ctx, program=stage1.PROBE)
    assert "InstanceDown reached the receiver's critical route" in detail
    assert "resolved" in detail
    assert stage1.PROBE in LocalRuntime(ctx).running_names()  # left as it was


def test_the_metrics_gate_names_the_series_nobody_serves(ctx, monkeypatch):
    monkeypatch.setattr(stage15, "SERIES_WAIT_S", 1.0)
    with pytest.raises(GateFailure, match=r"series the rules read are not collected: .*ledger_balanced"):
        stage15.metrics_collected(ctx)


def test_the_receiver_answers_bad_input_with_a_problem_and_stores_nothing(ctx):
    port = _port(ctx, stage2.RECEIVER)
    before = len(alert_log.read_log(ctx.state_dir))
    for path, body in (
        ("/alerts/critical", {"alerts": "nope"}),
        ("/alerts/critical", [1]),
        ("/alerts/nope", {}),
    ):
        status, raw, content_type = _post(port, path, body)
        assert status in (400, 404)
        assert content_type == "application/problem+json"
        assert json.loads(raw)["status"] == status
    assert len(alert_log.read_log(ctx.state_dir)) == before


def test_the_receiver_exports_the_package_index_probe_and_discovery_readiness(ctx):
    with urllib.request.urlopen(f"http://127.0.0.1:{_port(ctx, stage2.RECEIVER)}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "caravan_package_index_up{" in text
    assert "# TYPE caravan_discovery_ready gauge" in text
    assert 'caravan_alerts_received_total{route="critical"}' in text
