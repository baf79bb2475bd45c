"""The plan engine: re-checks dependencies, runs actions, evaluates gates, schedules lanes.

Stages whose dependencies are all done are dispatched together, so lanes without a path between
them (A, B and C) run concurrently. The scheduler records every dispatch and completion as an
ordered event list; tests check concurrency and ordering from those events, not from timings.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from caravan_workspace.gate_cache import Entry, GateCache, InputsFn, cache_key
from caravan_workspace.plan import Gate, Plan, Stage
from caravan_workspace.registry import (
    ACTIONS,
    GATE_INPUTS,
    GATES,
    Action,
    ActionError,
    ActionResult,
    Context,
    GateFailure,
)
from caravan_workspace.registry import Gate as GateProbe
from caravan_workspace.state import (
    ActionRecord,
    GateRecord,
    StageRecord,
    StateStore,
    junit_xml,
    now_iso,
    write_atomic,
)

NOT_IMPLEMENTED = "not implemented yet"
UNCHECKED = "gates only: dependencies not checked"


class Reporter(Protocol):
    """Receives the engine's progress; the CLI shows it live, tests record it."""

    def stage_started(self, stage: Stage) -> None: ...
    def progress(self, stage: Stage, message: str) -> None: ...
    def action_done(self, stage: Stage, action_id: str, record: ActionRecord) -> None: ...
    def gate_done(self, stage: Stage, gate_id: str, record: GateRecord) -> None: ...
    def stage_finished(self, stage: Stage, record: StageRecord) -> None: ...


class NullReporter:
    def stage_started(self, stage: Stage) -> None: ...
    def progress(self, stage: Stage, message: str) -> None: ...
    def action_done(self, stage: Stage, action_id: str, record: ActionRecord) -> None: ...
    def gate_done(self, stage: Stage, gate_id: str, record: GateRecord) -> None: ...
    def stage_finished(self, stage: Stage, record: StageRecord) -> None: ...


@dataclass(frozen=True)
class Event:
    """One scheduler event: ``dispatch``, ``begin`` (a worker picked the stage up), ``end``,
    ``blocked``, or ``wait`` (the scheduler waits for a completion; ``stage`` is 0)."""

    seq: int
    kind: str
    stage: int
    ok: bool | None = None


@dataclass(frozen=True)
class Refusal:
    """A dependency gate that failed when ``invoke stage N`` re-checked it."""

    for_stage: int
    dep: int
    dep_name: str
    gate_title: str
    reason: str
    fix: str | None

    def message(self, with_deps_hint: str) -> str:
        fix = self.fix or f"invoke stage {self.dep}"
        return (
            f"stage {self.for_stage} refused: stage {self.dep} ({self.dep_name}) gate "
            f"'{self.gate_title}' failed: {self.reason}. Fix: {fix}, or {with_deps_hint}"
        )


@dataclass
class RunResult:
    run_id: str
    selected: list[int]
    records: dict[int, StageRecord] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    junit_path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.refusals and all(r.status == "passed" for r in self.records.values())


class Engine:
    def __init__(
        self,
        plan: Plan,
        *,
        root: Path,
        state_dir: Path,
        store: StateStore | None = None,
        reporter: Reporter | None = None,
        gates: Mapping[str, GateProbe] | None = None,
        actions: Mapping[str, Action] | None = None,
        gate_inputs: Mapping[str, InputsFn] | None = None,
        fresh: bool = False,
        max_workers: int = 4,
    ) -> None:
        self.plan = plan
        self.root = root
        self.state_dir = state_dir
        self.store = store or StateStore(state_dir)
        self.reporter: Reporter = reporter or NullReporter()
        self.gates = GATES if gates is None else gates
        self.actions = ACTIONS if actions is None else actions
        self.gate_inputs = GATE_INPUTS if gate_inputs is None else gate_inputs
        self.fresh = fresh  # re-run every gate, cached or not
        self.cache = GateCache(state_dir)
        self.max_workers = max_workers
        self._events: list[Event] = []
        self._events_lock = threading.Lock()

    # ------------------------------------------------------------------ events

    def _event(self, kind: str, stage: int, ok: bool | None = None) -> None:
        with self._events_lock:
            self._events.append(Event(len(self._events), kind, stage, ok))

    def _context(self, stage: Stage) -> Context:
        return Context(
            root=self.root,
            state_dir=self.state_dir,
            progress=lambda message: self.reporter.progress(stage, message),
        )

    # ------------------------------------------------------------------ gates and actions

    def evaluate_gate(self, stage: Stage, gate: Gate) -> GateRecord:
        started, at = time.perf_counter(), now_iso()
        key, digests = self._cache_key(stage, gate)
        cached = self.cache.lookup(gate.check, gate.args, key) if key and not self.fresh else None
        if cached is not None:
            record = GateRecord(
                title=gate.title,
                ok=True,
                detail=cached.detail,
                at=at,
                duration_s=round(time.perf_counter() - started, 3),
                cached_since=cached.at,
            )
        else:
            record = self._probe(stage, gate, at, started)
            if key and record.ok:
                entry = Entry(key, record.detail, record.at, record.duration_s, digests)
                self.cache.store(gate.check, gate.args, entry)
            elif key:
                self.cache.forget(gate.check, gate.args)
        self.store.record_gate(stage.number, gate.id, record)
        self.reporter.gate_done(stage, gate.id, record)
        return record

    def _cache_key(self, stage: Stage, gate: Gate) -> tuple[str | None, dict[str, str]]:
        """The gate's cache key from its declared inputs; None when it has none (it probes the
        running system) or they cannot be read (the gate then runs and reports why)."""
        inputs = self.gate_inputs.get(gate.check)
        if inputs is None or gate.check not in self.gates:
            return None, {}
        try:
            digests = inputs(self._context(stage), **gate.args).digests(self.root)
        except Exception:  # e.g. its virtualenv cannot be built: the probe says why
            return None, {}
        return cache_key(gate.check, gate.args, digests), digests

    def _probe(self, stage: Stage, gate: Gate, at: str, started: float) -> GateRecord:
        probe = self.gates.get(gate.check)
        ok, fix = False, None
        if probe is None:
            detail = NOT_IMPLEMENTED
        else:
            try:
                detail = probe(self._context(stage), **gate.args) or "ok"
                ok = True
            except GateFailure as exc:
                detail, fix = exc.reason, exc.fix
            except Exception as exc:  # a crashing probe is a failed gate, with its reason
                detail = f"probe crashed: {type(exc).__name__}: {_one_line(exc)}"
        return GateRecord(
            title=gate.title,
            ok=ok,
            detail=_one_line(detail),
            at=at,
            duration_s=round(time.perf_counter() - started, 3),
            fix=fix,
        )

    def evaluate_gates(self, number: int) -> dict[str, GateRecord]:
        stage = self.plan.stages[number]
        return {gate.id: self.evaluate_gate(stage, gate) for gate in stage.gates}

    def _run_action(self, stage: Stage, action_id: str, title: str, run: str, args: Mapping) -> ActionRecord:
        started, at = time.perf_counter(), now_iso()
        fn = self.actions.get(run)
        ok, changed = False, False
        if fn is None:
            detail = NOT_IMPLEMENTED
        else:
            try:
                result = fn(self._context(stage), **args)
                if not isinstance(result, ActionResult):
                    raise TypeError(f"action {run} returned {type(result).__name__}, not ActionResult")
                ok, changed, detail = (
                    True,
                    result.changed,
                    result.detail or ("done" if result.changed else "up to date"),
                )
            except ActionError as exc:
                detail = _one_line(exc)
            except Exception as exc:
                detail = f"{type(exc).__name__}: {_one_line(exc)}"
        record = ActionRecord(
            title=title,
            ok=ok,
            changed=changed,
            detail=_one_line(detail),
            at=at,
            duration_s=round(time.perf_counter() - started, 3),
        )
        self.reporter.action_done(stage, action_id, record)
        return record

    def run_stage(self, number: int) -> StageRecord:
        """Run one stage now: its actions in order, then every gate. Dependencies are not checked."""
        stage = self.plan.stages[number]
        self._event("begin", number)
        self.reporter.stage_started(stage)
        started = time.perf_counter()
        with self.store.updating(number) as rec:
            rec.status, rec.reason, rec.started_at, rec.finished_at = "running", "", now_iso(), None
            rec.actions = {}
        actions: dict[str, ActionRecord] = {}
        for action in stage.actions:
            actions[action.id] = self._run_action(stage, action.id, action.title, action.run, action.args)
            if not actions[action.id].ok:
                break  # later actions build on earlier ones; the gates still report the truth
        gates = self.evaluate_gates(number)
        failed_actions = [a for a, r in actions.items() if not r.ok]
        failed_gates = [g for g, r in gates.items() if not r.ok]
        with self.store.updating(number) as rec:
            rec.actions = actions
            rec.finished_at = now_iso()
            rec.duration_s = round(time.perf_counter() - started, 3)
            if failed_actions or failed_gates:
                rec.status = "failed"
                what = [f"action {a}" for a in failed_actions] + [f"gate {g}" for g in failed_gates]
                rec.reason = "failed: " + ", ".join(what)
            else:
                rec.status, rec.reason = "passed", ""
            final = copy.deepcopy(rec)
        self.reporter.stage_finished(stage, final)
        return final

    # ------------------------------------------------------------------ dependencies

    def check_dependencies(self, selected: list[int]) -> list[Refusal]:
        """Re-evaluate the gates of every stage the selection depends on but does not include."""
        refusals: list[Refusal] = []
        for dep in self.plan.external_dependencies(selected):
            stage = self.plan.stages[dep]
            results = self.evaluate_gates(dep)
            with self.store.updating(dep) as rec:
                rec.status = "passed" if all(r.ok for r in results.values()) else "failed"
            for_stage = min(n for n in selected if dep in self.plan.stages[n].depends_on)
            for gate in stage.gates:
                result = results[gate.id]
                if not result.ok:
                    refusals.append(
                        Refusal(for_stage, dep, stage.name, gate.title, result.detail, result.fix)
                    )
        return refusals

    # ------------------------------------------------------------------ running a selection

    def run(
        self, selected: list[int], *, with_deps: bool = False, check_deps: bool = True, command: str = ""
    ) -> RunResult:
        """Run the selection. ``with_deps`` runs the dependencies first; ``check_deps=False`` proves
        the selected stages' own gates without re-checking their dependencies (recorded as such)."""
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        chosen = set(selected)
        if with_deps:
            chosen |= self.plan.ancestors(selected)
        order = self.plan.topological_order(chosen)
        result = RunResult(run_id=run_id, selected=order)
        if not with_deps and check_deps:
            result.refusals = self.check_dependencies(order)
        if result.refusals:
            failing = sorted({r.dep for r in result.refusals})
            for n in order:
                with self.store.updating(n) as rec:
                    rec.status = "refused"
                    rec.reason = "dependencies not passing: stage " + ", ".join(map(str, failing))
                    result.records[n] = copy.deepcopy(rec)
        else:
            result.records = self._schedule(order)
            if not check_deps and not with_deps:
                for n, record in result.records.items():
                    if self.plan.external_dependencies([n]) and record.status == "passed":
                        with self.store.updating(n) as rec:
                            rec.reason = UNCHECKED
                            result.records[n] = copy.deepcopy(rec)
        result.events = list(self._events)
        result.junit_path = self._write_report(result, command)
        return result

    def _schedule(self, order: list[int]) -> dict[int, StageRecord]:
        chosen = set(order)
        pending = list(order)
        passed: set[int] = set()
        not_passed: set[int] = set()
        records: dict[int, StageRecord] = {}
        running: dict[Future[StageRecord], int] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="stage") as pool:
            while pending or running:
                changed = True
                while changed:  # dispatch every ready stage; block dependents of failures
                    changed = False
                    for n in list(pending):
                        deps = [d for d in self.plan.stages[n].depends_on if d in chosen]
                        bad = [d for d in deps if d in not_passed]
                        if bad:
                            pending.remove(n)
                            not_passed.add(n)
                            self._event("blocked", n, False)
                            with self.store.updating(n) as rec:
                                rec.status = "blocked"
                                rec.reason = f"stage {bad[0]} did not pass"
                                records[n] = copy.deepcopy(rec)
                            self.reporter.stage_finished(self.plan.stages[n], records[n])
                            changed = True
                        elif all(d in passed for d in deps):
                            pending.remove(n)
                            self._event("dispatch", n)
                            running[pool.submit(self.run_stage, n)] = n
                            changed = True
                if not running:
                    break
                self._event("wait", 0)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f]):
                    n = running.pop(future)
                    try:
                        record = future.result()
                    except Exception as exc:  # pragma: no cover - run_stage catches probe errors
                        record = StageRecord(status="failed", reason=f"engine error: {_one_line(exc)}")
                    records[n] = record
                    ok = record.status == "passed"
                    (passed if ok else not_passed).add(n)
                    self._event("end", n, ok)
        return records

    # ------------------------------------------------------------------ reports

    def _write_report(self, result: RunResult, command: str) -> Path:
        touched = set(result.records)
        touched |= {r.dep for r in result.refusals}
        stages = {n: (self.plan.stages[n].name, self.store.stage(n)) for n in touched}
        path = self.store.reports_dir / f"run-{result.run_id}.xml"
        data = junit_xml(result.run_id, stages)
        write_atomic(path, data)
        write_atomic(self.store.reports_dir / "latest.xml", data)
        self.store.add_run(
            {
                "id": result.run_id,
                "command": command,
                "at": now_iso(),
                "stages": result.selected,
                "ok": result.ok,
                "report": str(path.relative_to(self.state_dir)),
            }
        )
        return path


def _one_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
