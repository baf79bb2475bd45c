"""The plan and its recorded results (the state file `invoke plan` reads), and its graph — the
picture of `invoke plan --graph`, each stage's box a link to its gates."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace import graph
from caravan_workspace.console import STATUS_STYLE, stage_status
from caravan_workspace.plan import Plan, Stage
from caravan_workspace.state import GateRecord, StageRecord, StateError, StateStore


@dataclass(frozen=True)
class GateRow:
    id: str
    title: str
    record: GateRecord | None


@dataclass(frozen=True)
class StageRow:
    stage: Stage
    status: str
    record: StageRecord
    gates: list[GateRow]


@dataclass(frozen=True)
class PlanView:
    rows: list[StageRow]
    svg: str  # the graph, inline SVG ("" when Graphviz is missing)
    problem: str  # why the state or the graph could not be read ("" when all is well)


def read_records(state_dir: Path) -> tuple[dict[int, StageRecord], str]:
    """Every stage's record, or none and the one-line reason (a corrupt state file)."""
    try:
        return StateStore(state_dir).stages(), ""
    except StateError as exc:
        return {}, str(exc)


def stage_rows(plan: Plan, records: Mapping[int, StageRecord], running: set[int]) -> list[StageRow]:
    rows = []
    for n, stage in plan.stages.items():
        record = records.get(n, StageRecord())
        status = "running" if n in running else stage_status(record)
        gates = [GateRow(g.id, g.title, record.gates.get(g.id)) for g in stage.gates]
        rows.append(StageRow(stage, status, record, gates))
    return rows


class GraphCache:
    """Graphviz runs once per distinct picture (status changes), not once per page view."""

    def __init__(self, size: int = 32) -> None:
        self._svgs: dict[str, str] = {}
        self._size = size
        self._lock = threading.Lock()

    def svg(self, plan: Plan, records: Mapping[int, StageRecord], running: set[int]) -> str:
        shown = dict(records)
        for n in running:
            shown[n] = StageRecord(status="running")
        source = graph.to_dot(plan, shown, links={n: f"/plan/stages/{n}" for n in plan.stages})
        with self._lock:
            cached = self._svgs.get(source)
        if cached is not None:
            return cached
        text = graph.svg(source)
        text = text[text.find("<svg") :]  # inline: no XML declaration or DOCTYPE
        with self._lock:
            if len(self._svgs) >= self._size:
                self._svgs.pop(next(iter(self._svgs)))
            self._svgs[source] = text
        return text


def plan_view(plan: Plan, state_dir: Path, cache: GraphCache, running: set[int]) -> PlanView:
    records, problem = read_records(state_dir)
    try:
        svg = cache.svg(plan, records, running)
    except graph.GraphError as exc:
        svg, problem = "", problem or str(exc)
    return PlanView(stage_rows(plan, records, running), svg, problem)


__all__ = ["STATUS_STYLE", "GraphCache", "PlanView", "StageRow", "plan_view", "stage_rows"]
