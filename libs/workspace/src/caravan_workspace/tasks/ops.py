"""`invoke alerts`: the alerts Alertmanager delivered to the workspace's receiver, firing and
resolved, each with its runbook."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime

from invoke import Context, task
from invoke.exceptions import Exit
from rich.table import Table
from rich.text import Text

from caravan_workspace.ops import alert_log
from caravan_workspace.tasks.common import BAD_INPUT, console, workspace

STATUS_STYLE = {"firing": "bold red", "resolved": "green"}


def _ago(moment: float, now: float) -> str:
    seconds = max(0, int(now - moment))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


@task(
    help={
        "all": "also list every resolved alert (default: the last 10)",
        "format": "table (default) or json",
    }
)
def alerts(c: Context, all: bool = False, format: str = "table") -> None:
    """List the alerts the workspace's receiver got: firing ones first, then resolved ones, each
    with its severity, what it concerns, when it was received and its runbook."""
    if format not in ("table", "json"):
        raise Exit(f"error: unknown format {format!r}: use table or json", code=BAD_INPUT)
    ws = workspace()
    states = alert_log.summarise(alert_log.read_log(ws.ctx.state_dir))
    firing = [s for s in states if s.status == "firing"]
    resolved = [s for s in states if s.status != "firing"]
    shown_resolved = resolved if all else resolved[:10]
    if format == "json":
        print(json.dumps([asdict(s) for s in firing + shown_resolved], indent=2, sort_keys=True))
        return
    out = console()
    if not states:
        out.print("No alert received yet (`invoke stage 15` proves the path to the receiver).")
        return
    now = time.time()
    table = Table(title=f"Alerts: {len(firing)} firing, {len(resolved)} resolved")
    for column in ("status", "alert", "severity", "concerns", "summary", "since"):
        table.add_column(column, overflow="fold")
    table.add_column("runbook", no_wrap=True)
    for s in firing + shown_resolved:
        since = _ago(s.first_received, now) + (
            "" if s.status == "firing" else f", resolved {_ago(s.last_received, now)}"
        )
        runbook = ws.ctx.root / s.runbook if s.runbook and not s.runbook.startswith("http") else None
        table.add_row(
            Text(s.status, style=STATUS_STYLE.get(s.status, "yellow")),
            s.name,
            s.severity,
            s.subject,
            s.summary,
            since,
            str(runbook.relative_to(ws.ctx.root)) if runbook and runbook.exists() else (s.runbook or "–"),
        )
    out.print(table)
    if len(shown_resolved) < len(resolved):
        out.print(
            f"{len(resolved) - len(shown_resolved)} older resolved alert(s) not shown: `invoke alerts --all`"
        )
