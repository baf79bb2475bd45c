"""Monitoring on the local runtime: Prometheus (Debian's package, run as a plain process under
the supervisor) scraping every program that serves /metrics.

The Prometheus configuration is generated from the same declarations as everything else and
checked with ``promtool check config`` before it is used. Targets are file-based service
discovery: the runtime rewrites ``<state>/monitoring/targets/*.json`` whenever programs change,
so a new instance is scraped without touching the configuration.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from caravan_workspace.runtime.programs import Programs
from caravan_workspace.state import write_atomic

PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
SCRAPE_INTERVAL = "1s"
#: Prometheus job of each kind of program that serves /metrics.
JOBS = {
    "service": "services",
    "gateway": "gateway",
    "probe": "runtime",
    "catalog": "runtime",
    "receiver": "runtime",
}


class MonitoringError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    job: str  # "services", "gateway", "runtime"
    program: str
    member: str
    port: int


def monitoring_dir(state_dir: Path) -> Path:
    return state_dir / "monitoring"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def render_config(
    state_dir: Path,
    jobs: Iterable[str],
    *,
    rule_files: Iterable[Path] = (),
    alertmanager_port: int | None = None,
) -> str:
    """prometheus.yml (JSON is YAML): one job per target file, scraped every second on loopback;
    alerts go to the local Alertmanager when one runs."""
    targets = monitoring_dir(state_dir) / "targets"
    config: dict[str, object] = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "scrape_timeout": SCRAPE_INTERVAL,
                "file_sd_configs": [{"files": [str(targets / f"{job}.json")], "refresh_interval": "1s"}],
            }
            for job in sorted(set(jobs))
        ],
    }
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    return json.dumps(config, indent=2) + "\n"


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


#: Alertmanager receivers, one per severity; each is a webhook of the workspace's alert receiver.
SEVERITY_ROUTES = ("critical", "warning")
#: An InstanceDown silences the alerts it causes: (target alerts, labels that must be equal).
INHIBITIONS = (
    ("HighLatencyP99|OrderPlacementLatencyBurn", ("service",)),
    ("ReadinessFailing", ("program",)),
)


def render_alertmanager_config(receiver_port: int | None = None) -> str:
    """alertmanager.yml: routed by severity to the workspace's alert receiver (a webhook per
    severity, resolved alerts included), grouped by alert and service, an InstanceDown inhibiting
    the latency and readiness alerts of what it takes down. Short waits, so that alerts move at the
    pace of local tests. Without a receiver port, one route that delivers nowhere."""
    route: dict[str, object] = {
        "receiver": "warning" if receiver_port else "local",
        "group_by": ["alertname", "service"],
        "group_wait": "1s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    if receiver_port is None:
        config: dict[str, object] = {"route": route, "receivers": [{"name": "local"}]}
        return json.dumps(config, indent=2) + "\n"
    route["routes"] = [
        {"matchers": [f'severity="{severity}"'], "receiver": severity} for severity in SEVERITY_ROUTES
    ]
    config = {
        "route": route,
        "receivers": [
            {
                "name": severity,
                "webhook_configs": [
                    {"url": f"http://127.0.0.1:{receiver_port}/alerts/{severity}", "send_resolved": True}
                ],
            }
            for severity in SEVERITY_ROUTES
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="InstanceDown"'],
                "target_matchers": [f'alertname=~"{targets}"'],
                "equal": list(equal),
            }
            for targets, equal in INHIBITIONS
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def check_rules(path: Path) -> None:
    _promtool("rules", path, what=path.name)


def check_alertmanager_config(config_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        return  # amtool ships with Alertmanager; without it, Alertmanager's own start-up checks
    done = subprocess.run(
        [amtool, "check-config", str(config_path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise MonitoringError(f"amtool rejects the generated config: {lines[-1] if lines else '?'}")


def alertmanager_command(state_dir: Path, port: int) -> tuple[str, ...]:
    binary = alertmanager_binary()
    if binary is None:
        raise MonitoringError("Alertmanager is not installed: apt-get install prometheus-alertmanager")
    folder = monitoring_dir(state_dir)
    return (
        binary,
        f"--config.file={folder / 'alertmanager.yml'}",
        f"--storage.path={folder / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single local instance, loopback only
        "--log.format=json",
    )


def write_targets(state_dir: Path, targets: Iterable[Target], jobs: Iterable[str]) -> bool:
    """Rewrite each job's target file (atomically, only when it changed); True when any changed."""
    folder = monitoring_dir(state_dir) / "targets"
    by_job: dict[str, list[dict[str, object]]] = {job: [] for job in jobs}
    for t in sorted(targets, key=lambda t: (t.job, t.program)):
        by_job.setdefault(t.job, []).append(
            {"targets": [f"127.0.0.1:{t.port}"], "labels": {"program": t.program, "service": t.member}}
        )
    changed = False
    for job, entries in by_job.items():
        path = folder / f"{job}.json"
        data = (json.dumps(entries, indent=2) + "\n").encode()
        if not path.exists() or path.read_bytes() != data:
            write_atomic(path, data)
            changed = True
    return changed


def jobs() -> list[str]:
    return sorted(set(JOBS.values()))


def sync_targets(state_dir: Path, programs: Programs) -> bool:
    """Rewrite Prometheus' target files from the live programs that serve metrics."""
    recorded = programs.recorded()
    targets = [
        Target(
            job=JOBS.get(str(recorded[name]["kind"]), "runtime"),
            program=name,
            member=str(recorded[name]["member"]),
            port=port,
        )
        for name, port in programs.metrics_ports().items()
    ]
    return write_targets(state_dir, targets, jobs())


def check_config(config_path: Path) -> None:
    _promtool("config", config_path, what="the generated config")


def _promtool(kind: str, path: Path, *, what: str) -> None:
    """``promtool check <kind> <path>``; MonitoringError with promtool's last line when it fails."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise MonitoringError("promtool is not installed: apt-get install prometheus")
    done = subprocess.run([promtool, "check", kind, str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise MonitoringError(f"promtool rejects {what}: {lines[-1] if lines else '?'}")


def prometheus_command(state_dir: Path, port: int) -> tuple[str, ...]:
    binary = prometheus_binary()
    if binary is None:
        raise MonitoringError("Prometheus is not installed: apt-get install prometheus")
    folder = monitoring_dir(state_dir)
    return (
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        "--storage.tsdb.retention.time=2h",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.format=json",
    )


@dataclass(frozen=True)
class ActiveTarget:
    job: str
    instance: str
    health: str  # "up", "down" or "unknown"
    last_error: str
    last_scrape: datetime | None


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _timestamp(text: str) -> datetime | None:
    """Prometheus' RFC 3339 times carry nanoseconds; Python's parser takes microseconds."""
    match = _RFC3339.match(text)
    if not match or text.startswith("0001-"):  # Go's zero time: never scraped
        return None
    seconds, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{seconds}.{micro}{'+00:00' if zone == 'Z' else zone}")


def active_targets(port: int) -> list[ActiveTarget]:
    """Prometheus' view of its targets (GET /api/v1/targets), or [] when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets?state=active", timeout=2) as r:
            data = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return [
        ActiveTarget(
            job=str(t.get("labels", {}).get("job", "")),
            instance=str(t.get("labels", {}).get("instance", "")),
            health=str(t.get("health", "unknown")),
            last_error=str(t.get("lastError", "")),
            last_scrape=_timestamp(str(t.get("lastScrape", ""))),
        )
        for t in data.get("data", {}).get("activeTargets", [])
    ]
