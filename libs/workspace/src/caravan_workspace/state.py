"""The workspace state folder: the JSON record of stage and gate results, and JUnit reports.

Writes are atomic (a temporary file renamed into place), so an interrupted run never leaves a
half-written state file. A state file that cannot be read is reported, never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_VERSION = 1


class StateError(Exception):
    """The state folder or file is unusable; the message is one line with the way out."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class GateRecord:
    title: str
    ok: bool
    detail: str
    at: str
    duration_s: float
    fix: str | None = None
    cached_since: str | None = None  # reused: its inputs have not changed since this pass

    @property
    def shown_detail(self) -> str:
        """The detail as the CLI shows it, saying when a pass was reused from the cache."""
        if self.cached_since is None:
            return self.detail
        return f"passed (cached: inputs unchanged since {self.cached_since}): {self.detail}"


@dataclass
class ActionRecord:
    title: str
    ok: bool
    changed: bool
    detail: str
    at: str
    duration_s: float


@dataclass
class StageRecord:
    status: str = "not run"  # passed | failed | blocked | refused | not run
    reason: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    actions: dict[str, ActionRecord] = field(default_factory=dict)
    gates: dict[str, GateRecord] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StageRecord:
        return cls(
            status=raw.get("status", "not run"),
            reason=raw.get("reason", ""),
            started_at=raw.get("started_at"),
            finished_at=raw.get("finished_at"),
            duration_s=raw.get("duration_s"),
            actions={k: ActionRecord(**v) for k, v in raw.get("actions", {}).items()},
            gates={k: GateRecord(**v) for k, v in raw.get("gates", {}).items()},
        )


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateStore:
    """Thread-safe access to ``<state>/state.json``; every update is written atomically."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "state.json"
        self.reports_dir = state_dir / "reports"
        self._lock = threading.RLock()
        self._stages: dict[int, StageRecord] = {}
        self._runs: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        where = self.path.name
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported layout (version {raw.get('version')!r})")
            self._stages = {int(k): StageRecord.from_json(v) for k, v in raw.get("stages", {}).items()}
            self._runs = list(raw.get("runs", []))
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StateError(
                f"state file {where} in the state folder is corrupt ({reason}); "
                f"run `invoke reset` to set it aside and start afresh"
            ) from exc

    def _save(self) -> None:
        payload = {
            "version": STATE_VERSION,
            "stages": {str(n): asdict(rec) for n, rec in sorted(self._stages.items())},
            "runs": self._runs[-50:],
        }
        write_atomic(self.path, json.dumps(payload, indent=2).encode())

    # ------------------------------------------------------------------ reads

    def stage(self, number: int) -> StageRecord:
        with self._lock:
            return self._stages.get(number, StageRecord())

    def stages(self) -> dict[int, StageRecord]:
        with self._lock:
            return dict(self._stages)

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._runs)

    # ------------------------------------------------------------------ writes

    @contextmanager
    def updating(self, number: int) -> Iterator[StageRecord]:
        with self._lock:
            record = self._stages.setdefault(number, StageRecord())
            yield record
            self._save()

    def record_gate(self, number: int, gate_id: str, record: GateRecord) -> None:
        with self.updating(number) as stage:
            stage.gates[gate_id] = record

    def add_run(self, run: Mapping[str, Any]) -> None:
        with self._lock:
            self._runs.append(dict(run))
            self._save()


def reset_state(state_dir: Path) -> Path | None:
    """Set a (possibly corrupt) state file aside; returns where it went, or None if absent."""
    path = state_dir / "state.json"
    if not path.exists():
        return None
    target = path.with_name(f"state.json.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.bak")
    os.replace(path, target)
    return target


# ---------------------------------------------------------------------- JUnit XML


def junit_xml(run_id: str, stages: Mapping[int, tuple[str, StageRecord]]) -> bytes:
    """A JUnit report: one testsuite per stage, one testcase per action and gate."""
    suites = ET.Element("testsuites", name=f"caravan {run_id}")
    total = failures = 0
    for number, (name, record) in sorted(stages.items()):
        suite = ET.SubElement(suites, "testsuite", name=f"stage {number}: {name}")
        cases = fails = skipped = 0
        for action_id, action in record.actions.items():
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"stage{number}.action",
                name=f"{action_id}: {action.title}",
                time=f"{action.duration_s:.3f}",
            )
            cases += 1
            if not action.ok:
                fails += 1
                ET.SubElement(case, "failure", message=action.detail)
        for gate_id, gate in record.gates.items():
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"stage{number}.gate",
                name=f"{gate_id}: {gate.title}",
                time=f"{gate.duration_s:.3f}",
            )
            cases += 1
            if not gate.ok:
                fails += 1
                message = gate.detail + (f" (fix: {gate.fix})" if gate.fix else "")
                ET.SubElement(case, "failure", message=message)
        if record.status in ("blocked", "refused") and not record.gates:
            case = ET.SubElement(suite, "testcase", classname=f"stage{number}", name="not run")
            ET.SubElement(case, "skipped", message=record.reason)
            cases += 1
            skipped += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("skipped", str(skipped))
        total += cases
        failures += fails
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)
