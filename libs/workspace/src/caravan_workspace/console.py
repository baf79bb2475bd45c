"""Terminal output: the plan table, the lanes, the critical path, and live stage progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from caravan_workspace.plan import Plan, Stage
from caravan_workspace.state import ActionRecord, GateRecord, StageRecord

STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "refused": "yellow",
    "blocked": "yellow",
    "running": "cyan",
    "not run": "dim",
}


def compact_numbers(numbers: Iterable[int]) -> str:
    """[1, 2, 3, 5] → "1–3, 5"; runs of three or more become ranges."""
    nums = sorted(set(numbers))
    if not nums:
        return "–"
    parts: list[str] = []
    start = prev = nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        if prev - start >= 2:
            parts.append(f"{start}–{prev}")
        else:
            parts.extend(str(x) for x in range(start, prev + 1))
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def stage_status(record: StageRecord) -> str:
    return record.status if record.status in STATUS_STYLE else "not run"


def lanes_line(plan: Plan, records: Mapping[int, StageRecord]) -> Text:
    text = Text()
    for i, lane in enumerate(plan.lanes):
        if i:
            text.append("   ")
        text.append(f"{lane.name} [", style="bold")
        for j, n in enumerate(plan.lane_stages(lane.id)):
            if j:
                text.append("→")
            text.append(str(n), style=STATUS_STYLE[stage_status(records.get(n, StageRecord()))])
        text.append("]", style="bold")
    return text


def critical_path(plan: Plan, records: Mapping[int, StageRecord]) -> list[int]:
    durations = {n: r.duration_s for n, r in records.items() if r.duration_s}
    weights = durations if len(durations) == len(plan.stages) else None
    return plan.critical_path(weights)


def gate_line(gate_id: str, title: str, record: GateRecord | None) -> Text:
    if record is None:
        return Text.assemble(("· ", "dim"), (f"{title}", "dim"), (" — never checked", "dim"))
    mark, style = ("✓", "green") if record.ok else ("✗", "red")
    text = Text.assemble(
        (f"{mark} ", style), title, (f" — {record.shown_detail}", "dim" if record.ok else style)
    )
    text.append(f" ({record.at})", style="dim")
    if record.fix and not record.ok:
        text.append(f" fix: {record.fix}", style="yellow")
    return text


def plan_table(plan: Plan, records: Mapping[int, StageRecord]) -> Table:
    table = Table(title="Caravan plan", show_lines=True, expand=False)
    table.add_column("Stage", justify="right", no_wrap=True)
    table.add_column("Name")
    table.add_column("Lane", no_wrap=True)
    table.add_column("Depends on", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Gates (last result, when)")
    lane_names = {lane.id: lane.name for lane in plan.lanes}
    for n, stage in plan.stages.items():
        record = records.get(n, StageRecord())
        status = stage_status(record)
        gates = Group(*(gate_line(g.id, g.title, record.gates.get(g.id)) for g in stage.gates))
        table.add_row(
            str(n),
            stage.name,
            lane_names[stage.lane],
            compact_numbers(stage.depends_on),
            Text(status, style=STATUS_STYLE[status]),
            gates,
        )
    return table


def plan_json(plan: Plan, records: Mapping[int, StageRecord]) -> dict[str, Any]:
    stages = []
    for n, stage in plan.stages.items():
        record = records.get(n, StageRecord())
        gates = []
        for g in stage.gates:
            last = record.gates.get(g.id)
            gates.append(
                {
                    "id": g.id,
                    "title": g.title,
                    "check": g.check,
                    "ok": None if last is None else last.ok,
                    "detail": None if last is None else last.detail,
                    "fix": None if last is None else last.fix,
                    "at": None if last is None else last.at,
                    "duration_s": None if last is None else last.duration_s,
                    "cached_since": None if last is None else last.cached_since,
                }
            )
        stages.append(
            {
                "number": n,
                "name": stage.name,
                "lane": stage.lane,
                "depends_on": list(stage.depends_on),
                "status": stage_status(record),
                "reason": record.reason,
                "gates": gates,
            }
        )
    return {
        "stages": stages,
        "lanes": [
            {"id": lane.id, "name": lane.name, "stages": plan.lane_stages(lane.id)} for lane in plan.lanes
        ],
        "critical_path": critical_path(plan, records),
    }


# ---------------------------------------------------------------------- live progress


class ConsoleReporter:
    """Prints each action and gate result with its time; on a terminal, a live spinner per stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._running: dict[int, tuple[Stage, float, str]] = {}
        self._live: Live | None = None

    def __enter__(self) -> ConsoleReporter:
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=8, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Group:
        rows = []
        now = time.monotonic()
        for stage, started, message in self._running.values():
            label = Text.assemble(
                (f"stage {stage.number} {stage.name}", "bold"), f" {now - started:5.1f}s ", (message, "dim")
            )
            rows.append(Spinner("dots", text=label))
        return Group(*rows)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def stage_started(self, stage: Stage) -> None:
        with self._lock:
            self._running[stage.number] = (stage, time.monotonic(), "starting")
            self.console.print(
                Text.assemble(("▶ ", "cyan"), (f"stage {stage.number} — {stage.name}", "bold"))
            )
            self._refresh()

    def progress(self, stage: Stage, message: str) -> None:
        with self._lock:
            entry = self._running.get(stage.number)
            if entry is not None:
                self._running[stage.number] = (entry[0], entry[1], message)
            if self._live is None:
                self.console.print(Text(f"  … [{stage.number}] {message}", style="dim"))
            self._refresh()

    def action_done(self, stage: Stage, action_id: str, record: ActionRecord) -> None:
        mark, style = ("✓", "green") if record.ok else ("✗", "red")
        state = "" if not record.ok else ("changed" if record.changed else "up to date")
        with self._lock:
            self.console.print(
                Text.assemble(
                    f"  [{stage.number}] ",
                    (f"{mark} action ", style),
                    f"{record.title}",
                    (f" ({record.duration_s:.2f}s) ", "dim"),
                    (state + (": " if state else ""), "dim"),
                    (record.detail, "dim" if record.ok else style),
                )
            )

    def gate_done(self, stage: Stage, gate_id: str, record: GateRecord) -> None:
        mark, style = ("✓", "green") if record.ok else ("✗", "red")
        with self._lock:
            line = Text.assemble(
                f"  [{stage.number}] ",
                (f"{mark} gate ", style),
                record.title,
                (f" ({record.duration_s:.2f}s): ", "dim"),
                (record.shown_detail, "dim" if record.ok else style),
            )
            if record.fix and not record.ok:
                line.append(f" — fix: {record.fix}", style="yellow")
            self.console.print(line)

    def stage_finished(self, stage: Stage, record: StageRecord) -> None:
        with self._lock:
            self._running.pop(stage.number, None)
            status = stage_status(record)
            took = f" in {record.duration_s:.2f}s" if record.duration_s and status != "blocked" else ""
            reason = f" ({record.reason})" if record.reason else ""
            self.console.print(
                Text.assemble(
                    (f"■ stage {stage.number} {status}", STATUS_STYLE[status]), took, (reason, "dim")
                )
            )
            self._refresh()
