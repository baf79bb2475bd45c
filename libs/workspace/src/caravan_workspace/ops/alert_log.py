"""The alerts the workspace's receiver got from Alertmanager: ``<state>/monitoring/alerts/
received.jsonl``, one JSON line per alert per notification, appended as they arrive::

    {"received_at": 1764200000.5, "route": "critical", "status": "firing",
     "fingerprint": "…", "labels": {"alertname": "InstanceDown", …}, "annotations": {…},
     "starts_at": "2026-…Z", "ends_at": "0001-…Z"}

:func:`summarise` folds the lines into one :class:`AlertState` per alert (its fingerprint): the
last notification says whether it is firing or resolved. Standard library only (the receiver runs
it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = Path("monitoring") / "alerts" / "received.jsonl"


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG


def append_alerts(
    state_dir: Path, route: str, alerts: Iterable[Mapping[str, Any]], *, received_at: float
) -> None:
    """Append one line per alert in a single write (O_APPEND), so readers never see half a line."""
    lines = "".join(
        json.dumps(
            {
                "received_at": received_at,
                "route": route,
                "status": str(alert.get("status", "")),
                "fingerprint": str(alert.get("fingerprint", "")),
                "labels": dict(alert.get("labels") or {}),
                "annotations": dict(alert.get("annotations") or {}),
                "starts_at": str(alert.get("startsAt", "")),
                "ends_at": str(alert.get("endsAt", "")),
            },
            sort_keys=True,
        )
        + "\n"
        for alert in alerts
    )
    path = log_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class AlertState:
    fingerprint: str
    name: str
    status: str  # firing | resolved (the last notification's)
    severity: str
    route: str
    labels: Mapping[str, str]
    summary: str
    runbook: str
    starts_at: str
    ends_at: str
    first_received: float  # when the receiver first heard of it firing
    last_received: float

    @property
    def subject(self) -> str:
        """The labels that tell this alert from others of its name."""
        skip = {"alertname", "severity", "job"}
        return ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in skip)


def read_log(state_dir: Path) -> list[dict[str, Any]]:
    """Every well-formed line of the log (a torn or foreign line is skipped); [] when none."""
    try:
        text = log_path(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("labels"), dict):
            records.append(record)
    return records


def summarise(records: Iterable[Mapping[str, Any]]) -> list[AlertState]:
    """One state per alert: firing ones first (newest first), then resolved ones (newest first).
    An alert that resolves and fires again is the same alert (fingerprint) firing again."""
    states: dict[str, AlertState] = {}
    for r in sorted(records, key=lambda r: float(r.get("received_at", 0))):
        labels = {str(k): str(v) for k, v in r["labels"].items()}
        key = str(r.get("fingerprint") or json.dumps(labels, sort_keys=True))
        previous = states.get(key)
        received = float(r.get("received_at", 0))
        annotations = r.get("annotations") or {}
        again = previous is not None and previous.status == "resolved" and r.get("status") == "firing"
        states[key] = AlertState(
            fingerprint=key,
            name=labels.get("alertname", "?"),
            status=str(r.get("status", "?")),
            severity=labels.get("severity", "?"),
            route=str(r.get("route", "?")),
            labels=labels,
            summary=str(annotations.get("summary", "")),
            runbook=str(annotations.get("runbook_url", "")),
            starts_at=str(r.get("starts_at", "")),
            ends_at=str(r.get("ends_at", "")),
            first_received=received if previous is None or again else previous.first_received,
            last_received=received,
        )
    return sorted(states.values(), key=lambda s: (s.status != "firing", -s.last_received))
