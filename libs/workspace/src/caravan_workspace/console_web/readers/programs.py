"""The programs of the local runtime as `invoke status` shows them (the supervisor, the runtime's
records of ports and health paths, each program's health endpoints), their restarts, and each
service's instances against its declared scaling bounds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from caravan_workspace.runtime.inspect import format_uptime, probe_program, spawn_counts
from caravan_workspace.runtime.ports import read_ports
from caravan_workspace.runtime.programs import read_programs
from caravan_workspace.runtime.supervisor import Supervisor, SupervisorError
from caravan_workspace.services import Service

ACTIONS = ("start", "stop", "restart")


@dataclass(frozen=True)
class ProgramRow:
    name: str
    member: str
    kind: str
    state: str
    pid: int | None
    uptime: str
    restarts: int
    address: str
    version: str
    readiness: str


@dataclass(frozen=True)
class InstancesRow:
    service: str
    title: str
    running: int
    declared: int
    low: int
    high: int

    @property
    def within_bounds(self) -> bool:
        return self.low <= self.running <= self.high


@dataclass(frozen=True)
class ProgramsView:
    supervisor_up: bool
    programs: list[ProgramRow]
    instances: list[InstancesRow]
    problem: str = ""


def programs_view(state_dir: Path, services: dict[str, Service]) -> ProgramsView:
    supervisor = Supervisor(state_dir)
    try:
        statuses = supervisor.status()
    except (SupervisorError, OSError) as exc:
        return ProgramsView(False, [], [], f"the supervisor does not answer: {exc}")
    if not statuses and not supervisor.is_running():
        return ProgramsView(False, [], _instances(services, set()))
    ports = read_ports(state_dir)
    recorded = read_programs(state_dir)
    spawned = spawn_counts(supervisor.logfile)

    def probe(name: str, running: bool) -> tuple[str, str]:
        return probe_program(ports.get(name), recorded.get(name, {})) if running else ("–", "–")

    with ThreadPoolExecutor(max_workers=8) as pool:
        probes = list(pool.map(lambda s: probe(s.name, s.state == "RUNNING"), statuses))
    rows = [
        ProgramRow(
            name=s.name,
            member=str(recorded.get(s.name, {}).get("member", s.name)),
            kind=str(recorded.get(s.name, {}).get("kind", "–")),
            state=s.state,
            pid=s.pid,
            uptime=format_uptime(s.uptime),
            restarts=max(spawned.get(s.name, 0) - 1, 0),
            address=f"127.0.0.1:{ports[s.name]}" if s.name in ports else "–",
            version=version,
            readiness=ready,
        )
        for s, (version, ready) in zip(statuses, probes, strict=True)
    ]
    running = {r.name for r in rows if r.state == "RUNNING"}
    return ProgramsView(True, rows, _instances(services, running))


def _instances(services: dict[str, Service], running: set[str]) -> list[InstancesRow]:
    return [
        InstancesRow(
            service=s.name,
            title=s.title,
            running=sum(1 for i in range(1, s.scaling.max + 1) if f"{s.name}-{i}" in running),
            declared=s.scaling.instances,
            low=s.scaling.min,
            high=s.scaling.max,
        )
        for s in services.values()
    ]


def known_program(state_dir: Path, name: str) -> bool:
    """Whether the supervisor (or the runtime's records) knows a program of that name."""
    return (
        name in read_programs(state_dir)
        or name in read_ports(state_dir)
        or any(s.name == name for s in Supervisor(state_dir).status())
    )
