"""Alerts: the ones the workspace's alert receiver got from Alertmanager (stage 15's path:
``<state>/monitoring/alerts/received.jsonl``, read and folded by
:mod:`caravan_workspace.ops.alert_log` — the same reader as ``invoke alerts``) and the ones
Alertmanager holds now (its API v2); each with its runbook, ``observability/runbooks/<alert>.md``
(served by the console), else the alert's ``runbook_url`` when that is a web address."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.ops import alert_log
from caravan_workspace.ops.rules import RUNBOOKS_DIR
from caravan_workspace.runtime.ports import read_ports

ALERTMANAGER_PROGRAM = "alertmanager"
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:-]*$")
_SKIP_LABELS = ("alertname", "severity")


@dataclass(frozen=True)
class Alert:
    name: str
    status: str  # firing | resolved | suppressed
    severity: str
    summary: str
    labels: dict[str, str]
    since: str  # when it started firing
    ends_at: str  # when it resolved ("" while firing)
    route: str  # the receiver's route (its severity webhook); "" for Alertmanager's own list
    runbook: str  # a console path, a URL, or ""

    @property
    def shown_labels(self) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in self.labels.items() if k not in _SKIP_LABELS)


@dataclass(frozen=True)
class AlertsView:
    current: list[Alert]
    received: list[Alert]
    alertmanager_problem: str  # "" when Alertmanager answered
    received_any: bool  # the receiver has logged at least one notification


def runbook_path(root: Path, name: str) -> Path | None:
    if not _ALERT_NAME.match(name):
        return None
    path = root / RUNBOOKS_DIR / f"{name}.md"
    return path if path.is_file() else None


def runbook_link(root: Path, name: str, runbook_url: str) -> str:
    """The console's page of the alert's runbook when the repository has it, else ``runbook_url``
    when it is a web address (a repository path the console does not have leads nowhere)."""
    if runbook_path(root, name):
        return f"/alerts/runbooks/{name}"
    return runbook_url if runbook_url.startswith(("https://", "http://")) else ""


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) if stamp else ""


def received_alerts(state_dir: Path, root: Path) -> list[Alert]:
    """Every alert the receiver got, latest state per alert: firing first, newest first."""
    return [
        Alert(
            name=s.name,
            status=s.status,
            severity=s.severity,
            summary=s.summary,
            labels=dict(s.labels),
            since=_when(s.first_received),
            ends_at=s.ends_at[:19].replace("T", " ") if s.status == "resolved" else "",
            route=s.route,
            runbook=runbook_link(root, s.name, s.runbook),
        )
        for s in alert_log.summarise(alert_log.read_log(state_dir))
    ]


def _current(raw: dict[str, object], root: Path) -> Alert:
    labels = {str(k): str(v) for k, v in dict(raw.get("labels") or {}).items()}  # type: ignore[call-overload]
    notes = {str(k): str(v) for k, v in dict(raw.get("annotations") or {}).items()}  # type: ignore[call-overload]
    name = labels.get("alertname", "?")
    state = raw.get("status")
    status = str(state.get("state", "active") if isinstance(state, dict) else "active")
    return Alert(
        name=name,
        status="firing" if status == "active" else status,
        severity=labels.get("severity", "–"),
        summary=notes.get("summary", ""),
        labels=labels,
        since=str(raw.get("startsAt", ""))[:19].replace("T", " "),
        ends_at="",
        route="",
        runbook=runbook_link(root, name, notes.get("runbook_url", "")),
    )


def current_alerts(state_dir: Path, root: Path) -> tuple[list[Alert], str]:
    port = read_ports(state_dir).get(ALERTMANAGER_PROGRAM)
    if not port:
        return [], "Alertmanager has no port yet: the monitoring stage (2) has not run"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/alerts", timeout=2) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return [], f"Alertmanager on 127.0.0.1:{port} does not answer ({exc})"
    alerts = [_current(a, root) for a in data if isinstance(a, dict)] if isinstance(data, list) else []
    return sorted(alerts, key=lambda a: (a.status != "firing", a.name, a.since)), ""


def alerts_view(state_dir: Path, root: Path) -> AlertsView:
    current, problem = current_alerts(state_dir, root)
    received = received_alerts(state_dir, root)
    return AlertsView(current, received, problem, alert_log.log_path(state_dir).is_file())
