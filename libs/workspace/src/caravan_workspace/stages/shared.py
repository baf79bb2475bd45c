"""Stage 2: shared infrastructure — service discovery (the runtime's catalogue and its health
checker) and monitoring (Prometheus scraping every program)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from caravan_commons.discovery_local import LocalCatalogResolver
from caravan_workspace.registry import ActionError, ActionResult, Context, GateFailure, action, gate
from caravan_workspace.runtime import catalog, monitoring
from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.local import LocalRuntime
from caravan_workspace.runtime.programs import Program, RuntimeError_, http_status

CHECK_INTERVAL_S = 1.0
DISCOVERY_PROBE = "discovery-probe"
RECEIVER = "alert-receiver"

#: How long the monitoring gate waits for every target to be scraped up (discovery and scrapes
#: run every second, so a healthy target is up within a few seconds).
SCRAPE_WAIT_S = 20.0
#: How long the monitoring gate waits for programs the supervisor just started again to be ready.
START_WAIT_S = 120.0


def prometheus_program(rt: LocalRuntime) -> Program:
    port = rt.ports.port_for(monitoring.PROMETHEUS, "monitoring")
    return Program(
        name=monitoring.PROMETHEUS,
        member="monitoring",
        kind="monitoring",
        command=monitoring.prometheus_command(rt.ctx.state_dir, port),
        port=port,
        ready_path="/-/ready",
        stopwaitsecs=10,
    )


def alertmanager_program(rt: LocalRuntime) -> Program:
    port = rt.ports.port_for(monitoring.ALERTMANAGER, "alerting")
    return Program(
        name=monitoring.ALERTMANAGER,
        member="alerting",
        kind="alerting",
        command=monitoring.alertmanager_command(rt.ctx.state_dir, port),
        port=port,
        ready_path="/-/ready",
        stopwaitsecs=10,
    )


def receiver_program(rt: LocalRuntime) -> Program:
    """The workspace's alert receiver (Alertmanager's webhooks into the state folder; workspace
    probes for Prometheus): caravan_workspace.ops.receiver."""
    from caravan_workspace.runtime import index

    port = rt.ports.port_for(RECEIVER, "alerting")
    return Program(
        name=RECEIVER,
        member="alerting",
        kind="receiver",
        command=(
            sys.executable, "-m", "caravan_workspace.ops.receiver", f"--state-dir={rt.ctx.state_dir}",
            f"--port={port}", f"--index-url={index.index_url(rt.ctx).removesuffix('/simple/')}",
        ),
        port=port,
        ready_path="/health/ready",
        metrics_path="/metrics",
        stopwaitsecs=5,
    )  # fmt: skip


def sync_rules(state_dir: Path, root: Path) -> bool:
    """Copy observability/rules/*.yml into the state folder (each checked by promtool first) and
    drop the copies of rules files that are gone; True when anything changed."""
    from caravan_workspace.ops.rules import rule_files

    folder = monitoring.monitoring_dir(state_dir) / "rules"
    sources = rule_files(root)
    changed = False
    for source in sources:
        changed |= _write_checked(
            folder / source.name, source.read_text(encoding="utf-8"), monitoring.check_rules
        )
    for stale in set(folder.glob("*.yml")) - {folder / s.name for s in sources}:
        stale.unlink()
        changed = True
    return changed


def _write_checked(path: Path, text: str, check: Callable[[Path], None]) -> bool:
    """Replace ``path`` by ``text`` only when it changed and passes ``check``; True when replaced."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(path.name + ".new")
    candidate.write_text(text)
    check(candidate)  # never replace a working config by a broken one
    candidate.replace(path)
    return True


@action("monitoring.ensure")
def ensure_monitoring(ctx: Context) -> ActionResult:
    """Alertmanager, then Prometheus with a generated, checked config and the running programs as
    targets; either missing fails the action (`invoke toolchain --install` installs them)."""
    if monitoring.prometheus_binary() is None or monitoring.alertmanager_binary() is None:
        raise ActionError("Prometheus or Alertmanager is not installed: invoke toolchain --install")
    rt = LocalRuntime(ctx)
    folder = monitoring.monitoring_dir(ctx.state_dir)
    programs: list[Program] = []
    changed_configs: list[str] = []
    receiver = receiver_program(rt)
    alerting = alertmanager_program(rt)
    alertmanager_port = alerting.port
    if _write_checked(
        folder / "alertmanager.yml",
        monitoring.render_alertmanager_config(receiver.port),
        monitoring.check_alertmanager_config,
    ):
        changed_configs.append(alerting.name)
    programs += [receiver, alerting]
    try:
        rules_changed = sync_rules(ctx.state_dir, ctx.root)
    except monitoring.MonitoringError as exc:
        raise GateFailure(str(exc), fix="promtool check rules observability/rules/*.yml") from exc
    text = monitoring.render_config(
        ctx.state_dir,
        monitoring.jobs(),
        rule_files=[folder / "rules" / "*.yml"],
        alertmanager_port=alertmanager_port,
    )
    prometheus = prometheus_program(rt)
    if _write_checked(folder / "prometheus.yml", text, monitoring.check_config) or rules_changed:
        changed_configs.append(prometheus.name)
    programs.append(prometheus)
    targets_changed = rt.sync_monitoring()
    try:
        started = rt.run(programs)
        for name in changed_configs:
            if name not in started and rt.supervisor.program(name):
                rt.supervisor.restart(name)
        rt.programs.wait_ready(programs, timeout=30)
    except RuntimeError_ as exc:
        raise GateFailure(str(exc)) from exc
    targets_changed |= rt.sync_monitoring()  # the programs started here serve metrics too
    changed = bool(changed_configs or targets_changed or started)
    where = ", ".join(f"{p.name} on 127.0.0.1:{p.port}" for p in programs)
    return ActionResult(changed=changed, detail=where)


@gate("shared.monitoring")
def monitoring_scrapes(ctx: Context) -> str:
    """Prometheus reports every expected target up."""
    if monitoring.prometheus_binary() is None:
        raise GateFailure("Prometheus is not installed", fix="invoke toolchain --install")
    rt = LocalRuntime(ctx)
    port = rt.ports.allocated().get(monitoring.PROMETHEUS)
    status = rt.supervisor.program(monitoring.PROMETHEUS) if rt.supervisor.is_running() else None
    running = status is not None and status.state in ("RUNNING", "STARTING")
    if port is None or not running or http_status(port, "/-/ready") != 200:
        raise GateFailure("Prometheus is not running", fix="invoke stage 2")
    try:
        rt.programs.wait_started(timeout=START_WAIT_S)  # programs the supervisor just started again
    except RuntimeError_ as exc:
        raise GateFailure(str(exc), fix="invoke logs NAME") from exc
    rt.sync_monitoring()
    expected = {f"127.0.0.1:{p}" for p in rt.metrics_ports().values()}
    if not expected:
        raise GateFailure("no program serves metrics yet", fix="invoke stage 1")
    deadline = time.monotonic() + SCRAPE_WAIT_S
    since = datetime.now(UTC)
    down: set[str] = expected
    while time.monotonic() < deadline:
        # only a scrape made after the gate started counts: an old "up" proves nothing now
        seen = {
            t.instance: t.health
            for t in monitoring.active_targets(port)
            if t.last_scrape is not None and t.last_scrape >= since
        }
        down = {target for target in expected if seen.get(target) != "up"}
        if not down:
            return f"{len(expected)} targets up: {', '.join(sorted(rt.metrics_ports()))}"
        time.sleep(0.25)
    raise GateFailure(f"targets not up: {', '.join(sorted(down))}", fix="invoke status; invoke logs NAME")


# ---------------------------------------------------------------------------------- discovery


def checker_program(rt: LocalRuntime) -> Program:
    return Program(
        name=catalog.CHECKER_PROGRAM,
        member="monitoring",
        kind="catalog",
        command=tuple(catalog.checker_command(rt.ctx.state_dir, interval=CHECK_INTERVAL_S)),
        port=None,
        stopwaitsecs=5,
    )


@action("discovery.ensure")
def ensure_discovery(ctx: Context) -> ActionResult:
    """Run the catalogue's health checker and publish the running instances to it."""
    rt = LocalRuntime(ctx)
    changed = rt.run([checker_program(rt)])
    rt.programs.publish_instances()
    return ActionResult(changed=bool(changed), detail=f"health checker every {CHECK_INTERVAL_S:g}s")


def _resolve(resolver: LocalCatalogResolver, service: str) -> set[str]:
    return {i.instance_id for i in asyncio.run(resolver.resolve(service))}


@gate("shared.discovery")
def discovery_works(ctx: Context) -> str:
    """A probe instance registered through the active backend resolves; killed, it leaves the
    healthy set within the check interval."""
    rt = LocalRuntime(ctx)
    checker = rt.supervisor.program(catalog.CHECKER_PROGRAM) if rt.supervisor.is_running() else None
    if checker is None or checker.state not in ("RUNNING", "STARTING"):
        raise GateFailure("the discovery health checker is not running", fix="invoke stage 2")
    tier_member = next(iter(rt.services))
    port = rt.ports.port_for(DISCOVERY_PROBE, tier_member)
    probe = Program(
        name=DISCOVERY_PROBE,
        member=tier_member,
        kind="discovery-probe",
        discovery_name=DISCOVERY_PROBE,
        command=(sys.executable, "-m", "caravan_workspace.runtime.probe"),
        port=port,
        ready_path="/health/ready",
        autorestart=False,
        stopwaitsecs=5,
        env={
            "CARAVAN_SERVICE_NAME": DISCOVERY_PROBE,
            "CARAVAN_PORT": str(port),
            "CARAVAN_TRACE_EXPORTER": "none",
        },
    )
    resolver = LocalCatalogResolver(catalog.catalog_path(ctx.state_dir), stat_interval=0)
    try:
        rt.run([probe])
        rt.programs.wait_ready([probe], timeout=30)
        rt.programs.publish_instances()
        deadline = time.monotonic() + 10 * CHECK_INTERVAL_S
        while DISCOVERY_PROBE not in _resolve(resolver, DISCOVERY_PROBE):
            if time.monotonic() > deadline:
                raise GateFailure(
                    "a registered probe instance never resolved", fix="invoke logs catalog-checker"
                )
            time.sleep(0.05)
        rt.supervisor.signal(DISCOVERY_PROBE, "KILL")
        killed = time.monotonic()
        bound = 2 * CHECK_INTERVAL_S + min(1.0, CHECK_INTERVAL_S)  # a round, plus its probe timeout
        while DISCOVERY_PROBE in _resolve(resolver, DISCOVERY_PROBE):
            if time.monotonic() - killed > 10 * bound:
                break
            time.sleep(0.02)
        gone_after = time.monotonic() - killed
    except RuntimeError_ as exc:
        raise GateFailure(str(exc)) from exc
    finally:
        rt.supervisor.remove_program(DISCOVERY_PROBE)
        rt.ports.release([DISCOVERY_PROBE])
        rt.programs.publish_instances()
    if gone_after > bound:
        raise GateFailure(
            f"a killed instance stayed in the healthy set for {gone_after:.1f}s (bound {bound:.1f}s)",
            fix="invoke logs catalog-checker",
        )
    return (
        f"probe resolved; killed, it left the healthy set after {gone_after:.2f}s "
        f"(interval {CHECK_INTERVAL_S:g}s)"
    )


# ------------------------------------------------------------------------------------ gateway


@action("gateway.ensure")
def ensure_gateway(ctx: Context) -> ActionResult:
    """Run the gateway. It is built, like every deployable, with caravan-commons from the
    workspace index, so the current commons is published first when it is not there yet (stage 3
    then proves the release itself: installable from the index alone, matching its source)."""
    from caravan_workspace.stages import commons as commons_stage

    published = commons_stage.publish_commons(ctx)
    rt = LocalRuntime(ctx)
    try:
        changed = gateway_runtime.ensure(rt) + (["commons published"] if published.changed else [])
    except RuntimeError_ as exc:
        raise GateFailure(str(exc)) from exc
    port = rt.ports.allocated()[gateway_runtime.PROGRAM]
    return ActionResult(changed=bool(changed), detail=f"gateway on 127.0.0.1:{port}")


def _through_gateway(port: int, path: str, key: str, timeout_ms: int = 2000) -> tuple[int, str, bytes, float]:
    """(status, content type, body, seconds) of GET through the gateway."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key, "X-Request-Timeout-Ms": str(timeout_ms)}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout_ms / 1000 + 5) as response:
            return (
                response.status,
                response.headers.get("content-type", ""),
                response.read(),
                time.monotonic() - started,
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read(), time.monotonic() - started


@gate("shared.gateway")
def gateway_routes(ctx: Context) -> str:
    """Through the gateway: a request reaches a probe instance; an unknown route is a 404
    problem; once the probe is down, a request is a 503 problem within its deadline."""
    rt = LocalRuntime(ctx)
    port = rt.ports.allocated().get(gateway_runtime.PROGRAM)
    status = rt.supervisor.program(gateway_runtime.PROGRAM) if rt.supervisor.is_running() else None
    if port is None or status is None or status.state not in ("RUNNING", "STARTING"):
        raise GateFailure("the gateway is not running", fix="invoke stage 2")
    key = gateway_runtime.api_key(rt)
    tier_member = next(iter(rt.services))
    probe_port = rt.ports.port_for(gateway_runtime.PROBE_SERVICE, tier_member)
    probe = Program(
        name=gateway_runtime.PROBE_SERVICE, member=tier_member, kind="discovery-probe",
        discovery_name=gateway_runtime.PROBE_SERVICE,
        command=(sys.executable, "-m", "caravan_workspace.runtime.probe"), port=probe_port,
        ready_path="/health/ready", autorestart=False, stopwaitsecs=5,
        env={"CARAVAN_SERVICE_NAME": gateway_runtime.PROBE_SERVICE, "CARAVAN_PORT": str(probe_port),
             "CARAVAN_TRACE_EXPORTER": "none"},
    )  # fmt: skip
    problems: list[str] = []
    try:
        rt.run([probe])
        rt.programs.wait_ready([probe], timeout=30)
        rt.programs.publish_instances()
        deadline = time.monotonic() + 10 * CHECK_INTERVAL_S
        while True:  # until discovery lists the probe, the gateway answers 503
            code, ctype, body, _ = _through_gateway(port, f"{gateway_runtime.PROBE_ROUTE}/probe", key)
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if code != 200 or b'"service":"gateway-probe"' not in body.replace(b" ", b""):
            problems.append(f"a request through the gateway did not reach the probe ({code})")
        code, ctype, _, _ = _through_gateway(port, "/api/no-such-service/x", key)
        if code != 404 or "application/problem+json" not in ctype:
            problems.append(f"an unknown route got {code} {ctype}, not a 404 problem")
        code, ctype, _, _ = _through_gateway(port, f"{gateway_runtime.PROBE_ROUTE}/probe", "not-a-key")
        if code != 401:
            problems.append(f"a bad API key got {code}, not 401")
        rt.supervisor.signal(gateway_runtime.PROBE_SERVICE, "KILL")
        time.sleep(0.05)
        code, ctype, _, took = _through_gateway(port, f"{gateway_runtime.PROBE_ROUTE}/probe", key, 2000)
        if code != 503 or "application/problem+json" not in ctype:
            problems.append(f"a downed upstream got {code} {ctype}, not a 503 problem")
        elif took > 2.0:
            problems.append(f"the 503 took {took:.2f}s, beyond the 2s deadline")
    except RuntimeError_ as exc:
        raise GateFailure(str(exc)) from exc
    finally:
        rt.supervisor.remove_program(gateway_runtime.PROBE_SERVICE)
        rt.ports.release([gateway_runtime.PROBE_SERVICE])
        rt.programs.publish_instances()
    if problems:
        raise GateFailure("; ".join(problems), fix=f"invoke logs {gateway_runtime.PROGRAM}")
    return f"probe reached; unknown route → 404; bad key → 401; downed upstream → 503 in {took * 1000:.0f} ms"
