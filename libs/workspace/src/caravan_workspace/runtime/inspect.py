"""What a program of the local runtime is doing beyond the supervisor's state: its version and
readiness from its health endpoints, its uptime as people read it, how often it was (re)started.
`invoke status` and the console both show these."""

from __future__ import annotations

import re
from pathlib import Path

from caravan_workspace.runtime.programs import http_json, http_status

_SPAWNED = re.compile(rb"spawned: '([^']+)' with pid")


def format_uptime(seconds: float) -> str:
    if seconds <= 0:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def probe_program(port: int | None, info: dict[str, object]) -> tuple[str, str]:
    """(version, readiness) of a program, from its health endpoints as the runtime recorded them."""
    if not port or not info.get("ready_path"):
        return "–", "–"
    live = http_json(port, "/health/live") if info.get("kind") in ("service", "gateway", "probe") else {}
    version = str(live.get("version", "–")) if live else "–"
    ready = http_status(port, str(info["ready_path"]), timeout=1.0)
    return version, ("ready" if ready == 200 else f"not ready ({ready or 'no answer'})")


def spawn_counts(supervisord_log: Path) -> dict[str, int]:
    """How many times supervisord spawned each program (its log's ``spawned: 'NAME'`` lines);
    restarts are that count less one."""
    counts: dict[str, int] = {}
    try:
        data = supervisord_log.read_bytes()
    except OSError:
        return counts
    for match in _SPAWNED.finditer(data):
        name = match.group(1).decode(errors="replace")
        counts[name] = counts.get(name, 0) + 1
    return counts
