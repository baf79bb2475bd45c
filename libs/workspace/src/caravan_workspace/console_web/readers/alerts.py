"""Alerts: the ones Alertmanager holds now (its API v2, the Alertmanager the runtime runs) and the
ones stage 15's webhook receiver kept in the state folder (``<state>/alerts/``, Alertmanager's own
webhook JSON: payloads with an ``alerts`` list, or the alerts themselves, one per line or one per
file), each with its runbook (``runbook_url``, else ``observability/runbooks/<alertname>.md``)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.runtime.ports import read_ports

ALERTMANAGER_PROGRAM = "alertmanager"
RECEIVED_DIR = "alerts"
RUNBOOKS = Path("observability") / "runbooks"
_ALERT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:-]*$")


@dataclass(frozen=True)
class Alert:
    name: str
    status: str  # firing | resolved
    severity: str
    summary: str
    labels: dict[str, str]
    starts_at: str
    ends_at: str
    runbook: str  # a URL, a console path, or ""


@dataclass(frozen=True)
class AlertsView:
    current: list[Alert]
    received: list[Alert]
    alertmanager_problem: str  # "" when Alertmanager answered
    receiver_built: bool  # stage 15's receiver has written to the state folder


def runbook_path(root: Path, name: str) -> Path | None:
    if not _ALERT_NAME.match(name):
        return None
    path = root / RUNBOOKS / f"{name}.md"
    return path if path.is_file() else None


def _alert(raw: dict[str, object], root: Path) -> Alert:
    labels = {str(k): str(v) for k, v in dict(raw.get("labels") or {}).items()}  # type: ignore[call-overload]
    notes = {str(k): str(v) for k, v in dict(raw.get("annotations") or {}).items()}  # type: ignore[call-overload]
    name = labels.get("alertname", "?")
    state = raw.get("status")
    status = str(state.get("state") if isinstance(state, dict) else state or "firing")
    status = "firing" if status == "active" else status
    runbook = notes.get("runbook_url", "")
    if not runbook and runbook_path(root, name):
        runbook = f"/alerts/runbooks/{name}"
    return Alert(
        name=name,
        status=status,
        severity=labels.get("severity", "–"),
        summary=notes.get("summary", notes.get("description", "")),
        labels=labels,
        starts_at=str(raw.get("startsAt", "")),
        ends_at=str(raw.get("endsAt", "")) if status == "resolved" else "",
        runbook=runbook,
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
    return [_alert(a, root) for a in data if isinstance(a, dict)], ""


def _documents(folder: Path) -> Iterator[dict[str, object]]:
    for path in sorted(folder.glob("*.json*")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        chunks = text.splitlines() if path.suffix == ".jsonl" else [text]
        for chunk in chunks:
            try:
                doc = json.loads(chunk)
            except ValueError:
                continue
            for item in doc if isinstance(doc, list) else [doc]:
                if isinstance(item, dict):
                    yield item


def received_alerts(state_dir: Path, root: Path) -> tuple[list[Alert], bool]:
    """Every alert the receiver kept, latest state per alert; and whether there is a receiver."""
    folder = state_dir / RECEIVED_DIR
    if not folder.is_dir():
        return [], False
    latest: dict[str, Alert] = {}
    for doc in _documents(folder):
        listed = doc.get("alerts", [doc])
        for raw in listed if isinstance(listed, list) else []:
            if isinstance(raw, dict) and "labels" in raw:
                alert = _alert(raw, root)
                key = str(raw.get("fingerprint") or sorted(alert.labels.items()))
                latest[key] = alert
    alerts = sorted(latest.values(), key=lambda a: (a.status != "firing", a.starts_at), reverse=False)
    return alerts, True


def alerts_view(state_dir: Path, root: Path) -> AlertsView:
    current, problem = current_alerts(state_dir, root)
    received, built = received_alerts(state_dir, root)
    return AlertsView(current, received, problem, built)
