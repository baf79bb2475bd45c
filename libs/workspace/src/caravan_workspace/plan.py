"""The plan: stages, lanes, dependencies, actions and gates, loaded from plan.toml and validated.

Everything here is pure data and graph logic (no I/O beyond reading the file), so the engine,
the CLI and the property tests share one model.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from caravan_workspace.declarations import Misfit, Table, convert, fields, lookup


class PlanError(Exception):
    """The plan file is invalid. The message is one line naming the problem."""


class SelectionError(Exception):
    """A stage selector given on the command line does not name stages of the plan."""


# The plan's tables, as plan.toml writes them (msgspec Structs: decoding is validation).


class Gate(Table, frozen=True, kw_only=False):
    id: str
    title: str
    check: str
    args: Mapping[str, Any] = {}


class Action(Table, frozen=True, kw_only=False):
    id: str
    title: str
    run: str
    args: Mapping[str, Any] = {}


class Stage(Table, frozen=True, kw_only=False):
    number: int
    name: str
    lane: str
    depends_on: tuple[int, ...]
    gates: tuple[Gate, ...] = msgspec.field(default=(), name="gate")
    actions: tuple[Action, ...] = msgspec.field(default=(), name="action")
    summary: str = ""


class Lane(Table, frozen=True, kw_only=False):
    id: str
    name: str
    service: str | None = None


class _PlanFile(Table, frozen=True):
    stage: list[Stage] = []
    lane: list[Lane] = []


@dataclass(frozen=True)
class Plan:
    stages: Mapping[int, Stage]
    lanes: tuple[Lane, ...]

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, stages: Iterable[Stage], lanes: Iterable[Lane]) -> Plan:
        """Validate and assemble a plan; raises PlanError on the first problem found."""
        lanes = tuple(lanes)
        lane_ids = [lane.id for lane in lanes]
        if len(set(lane_ids)) != len(lane_ids):
            raise PlanError(f"duplicate lane id in {lane_ids}")
        by_number: dict[int, Stage] = {}
        for stage in stages:
            if stage.number in by_number:
                raise PlanError(f"duplicate stage number {stage.number}")
            if stage.number < 1:
                raise PlanError(f"stage number {stage.number} must be a positive integer")
            if stage.lane not in lane_ids:
                raise PlanError(f"stage {stage.number} names unknown lane {stage.lane!r}")
            gate_ids = [gate.id for gate in stage.gates]
            if len(set(gate_ids)) != len(gate_ids):
                raise PlanError(f"stage {stage.number} has duplicate gate ids {gate_ids}")
            if not stage.gates:
                raise PlanError(f"stage {stage.number} has no gates: every stage must be provable")
            by_number[stage.number] = stage
        for stage in by_number.values():
            for dep in stage.depends_on:
                if dep == stage.number:
                    raise PlanError(f"stage {stage.number} depends on itself")
                if dep not in by_number:
                    raise PlanError(f"stage {stage.number} depends on unknown stage {dep}")
        plan = cls(stages=dict(sorted(by_number.items())), lanes=lanes)
        cycle = plan.find_cycle()
        if cycle:
            raise PlanError("dependency cycle: " + " → ".join(str(n) for n in cycle))
        return plan

    # ------------------------------------------------------------------ graph queries

    def find_cycle(self) -> list[int] | None:
        """A dependency cycle as a list of stage numbers (first == last), or None."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.stages, white)
        stack: list[int] = []

        def visit(n: int) -> list[int] | None:
            colour[n] = grey
            stack.append(n)
            for dep in self.stages[n].depends_on:
                if colour[dep] == grey:
                    return [*stack[stack.index(dep) :], dep]
                if colour[dep] == white:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            colour[n] = black
            return None

        for n in self.stages:
            if colour[n] == white:
                found = visit(n)
                if found:
                    return found
        return None

    def topological_order(self, subset: Iterable[int] | None = None) -> list[int]:
        """Stages in an order where every dependency comes first (ties: lowest number first)."""
        chosen = set(self.stages if subset is None else subset)
        order: list[int] = []
        done: set[int] = set()
        remaining = sorted(chosen)
        while remaining:
            for n in remaining:
                if all(d in done or d not in chosen for d in self.stages[n].depends_on):
                    order.append(n)
                    done.add(n)
                    remaining.remove(n)
                    break
            else:  # pragma: no cover - build() rejects cycles
                raise PlanError("dependency cycle among " + ", ".join(map(str, remaining)))
        return order

    def ancestors(self, numbers: Iterable[int]) -> set[int]:
        """Every stage the given ones depend on, directly or not (excluding the given ones)."""
        seen: set[int] = set()
        todo = [d for n in numbers for d in self.stages[n].depends_on]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(self.stages[n].depends_on)
        return seen

    def external_dependencies(self, selected: Iterable[int]) -> list[int]:
        """Stages the selection depends on directly but does not include, in run order."""
        chosen = set(selected)
        deps = {d for n in chosen for d in self.stages[n].depends_on} - chosen
        return self.topological_order(deps)

    def lane_stages(self, lane_id: str) -> list[int]:
        return [n for n in self.topological_order() if self.stages[n].lane == lane_id]

    def critical_path(self, weights: Mapping[int, float] | None = None) -> list[int]:
        """The longest dependency chain; weights (e.g. last durations) default to 1 per stage."""
        best: dict[int, tuple[float, list[int]]] = {}
        for n in self.topological_order():
            weight = (weights or {}).get(n, 1.0)
            incoming = [best[d] for d in self.stages[n].depends_on]
            # Ties are broken by the lower stage numbers, so the answer is deterministic.
            base = max(incoming, key=lambda item: (item[0], [-x for x in item[1]]), default=(0.0, []))
            best[n] = (base[0] + weight, [*base[1], n])
        if not best:
            return []
        return max(best.values(), key=lambda item: (item[0], [-x for x in item[1]]))[1]

    # ------------------------------------------------------------------ selectors

    def select(self, selector: str) -> list[int]:
        """Stages named by a CLI selector: ``4``, ``4-6``, or a lane id (``a``, ``foundation``)."""
        text = selector.strip().lower()
        known = ", ".join(lane.id for lane in self.lanes)
        first, last = min(self.stages), max(self.stages)
        if not text:
            raise SelectionError(
                f"no stage given: use a number {first}..{last}, a range like 4-6, or a lane ({known})"
            )
        if text.isdigit():
            number = int(text)
            if number not in self.stages:
                raise SelectionError(f"stage {number} does not exist: the plan has stages {first}..{last}")
            return [number]
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
        if match:
            low, high = int(match[1]), int(match[2])
            if low > high:
                raise SelectionError(
                    f"range {selector!r} runs backwards: write it low-high, e.g. {high}-{low}"
                )
            missing = [n for n in (low, high) if n not in self.stages]
            if missing:
                raise SelectionError(
                    f"stage {missing[0]} does not exist: the plan has stages {first}..{last}"
                )
            return self.topological_order(n for n in self.stages if low <= n <= high)
        for lane in self.lanes:
            if text in (lane.id, lane.name.lower()):
                return self.lane_stages(lane.id)
        raise SelectionError(
            f"{selector!r} is not a stage: use a number {first}..{last}, "
            f"a range like 4-6, or a lane ({known})"
        )


# ---------------------------------------------------------------------- loading from TOML


def _where(data: Mapping[str, Any], misfit: Misfit) -> str:
    """The words for the table at fault: "plan", "lane #2", "stage 4" (or "stage #4" while its
    number is in doubt), "stage 4, gate 'tests'"."""
    table = misfit.table
    if not table:
        return "plan"
    if table[0] == "lane":
        return f"lane #{int(table[1]) + 1}"
    stage = lookup(data, table[:2])
    number = stage.get("number") if isinstance(stage, Mapping) else None
    doubt = len(table) == 2 and (misfit.kind == "unknown" or misfit.key == "number")
    if doubt or not isinstance(number, int) or isinstance(number, bool):
        where = f"stage #{int(table[1]) + 1}"
    else:
        where = f"stage {number}"
    if len(table) > 2:
        entry = lookup(data, table[:4])
        ident = entry.get("id", "?") if isinstance(entry, Mapping) else "?"
        where += f", {table[2]} {ident!r}"
    return where


def parse_plan(data: Mapping[str, Any]) -> Plan:
    try:
        document = convert(data, _PlanFile)
    except Misfit as misfit:
        where = _where(data, misfit)
        if misfit.kind == "unknown":
            allowed = ", ".join(fields(_PlanFile, misfit.table))
            raise PlanError(f"{where}: unknown key {misfit.key!r} (allowed: {allowed})") from None
        if misfit.kind == "missing":
            raise PlanError(f"{where}: missing key {misfit.key!r}") from None
        if misfit.key == "depends_on" and misfit.inner:
            raise PlanError(f"{where}: depends_on must list stage numbers") from None
        raise PlanError(f"{where}: {misfit.wrong_type(data)}") from None
    if not document.stage:
        raise PlanError("the plan has no stages")
    return Plan.build(document.stage, document.lane)


def load_plan(path: Path) -> Plan:
    """Read and validate plan.toml; every problem becomes a one-line PlanError."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read the plan {path.name}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path.name} is not valid TOML: {exc}") from exc
    try:
        return parse_plan(data)
    except PlanError as exc:
        raise PlanError(f"{path.name}: {exc}") from exc
