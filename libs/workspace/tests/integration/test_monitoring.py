"""Monitoring on the local runtime with the real Prometheus (Debian's package) and promtool."""

import os
import shutil
import signal

import pytest

from caravan_workspace.registry import Context, GateFailure
from caravan_workspace.runtime import monitoring
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.stages import foundation as stage1
from caravan_workspace.stages import shared as stage2

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Prometheus is not installed (apt-get install prometheus); CI installs it",
)


@pytest.fixture
def ctx(repo_root, tmp_path):
    context = Context(root=repo_root, state_dir=tmp_path / "state")
    yield context
    LocalRuntime(context).supervisor.shutdown()


@needs_prometheus
def test_prometheus_scrapes_every_program_that_serves_metrics(ctx):
    stage1.provision(ctx)
    result = stage2.ensure_monitoring(ctx)
    assert result.changed
    detail = stage2.monitoring_scrapes(ctx)
    expected = (
        "2 targets up: alert-receiver, probe" if monitoring.alertmanager_binary() else "1 targets up: probe"
    )
    assert detail.startswith(expected)
    targets = (ctx.state_dir / "monitoring" / "targets" / "runtime.json").read_text()
    assert '"program": "probe"' in targets
    # a second run changes nothing
    assert stage2.ensure_monitoring(ctx).changed is False


@needs_prometheus
def test_a_target_that_stops_answering_fails_the_gate(ctx, monkeypatch):
    stage1.provision(ctx)
    stage2.ensure_monitoring(ctx)
    stage2.monitoring_scrapes(ctx)
    rt = LocalRuntime(ctx)
    pid = rt.supervisor.program(stage1.PROBE).pid
    monkeypatch.setattr(stage2, "SCRAPE_WAIT_S", 8.0)
    monkeypatch.setattr(stage2, "START_WAIT_S", 8.0)
    os.kill(pid, signal.SIGSTOP)  # still "RUNNING" for the supervisor, but it answers nothing
    try:
        # the gate first waits (bounded) for the programs to be ready, and names the one that is not
        with pytest.raises(GateFailure, match=f"not ready within 8s: {stage1.PROBE}"):
            stage2.monitoring_scrapes(ctx)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stage2.monitoring_scrapes(ctx)


@needs_prometheus
def test_promtool_rejects_a_broken_config(tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text('{"scrape_configs": [{"job_name": "x", "scrape_interval": "soon"}]}')
    with pytest.raises(monitoring.MonitoringError, match="promtool rejects"):
        monitoring.check_config(config)


@needs_prometheus
def test_the_generated_config_passes_promtool(tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text(monitoring.render_config(tmp_path, ["services", "gateway", "runtime"]))
    monitoring.check_config(config)


def test_the_gate_fails_and_names_the_fix_when_prometheus_is_not_running(ctx):
    with pytest.raises(GateFailure) as caught:
        stage2.monitoring_scrapes(ctx)
    assert caught.value.fix in ("invoke stage 2", "apt-get install prometheus")
