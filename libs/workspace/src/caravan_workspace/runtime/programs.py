"""The programs the local runtime runs under its supervisor: what each one is, starting them,
remembering them (``<state>/runtime/programs.json``), which of them run, and waiting until they
answer ready. Discovery hears of the instances that run (:meth:`Programs.publish_instances`)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caravan_workspace.runtime import catalog
from caravan_workspace.runtime.ports import check_collision, process_tree
from caravan_workspace.runtime.supervisor import Supervisor
from caravan_workspace.state import write_atomic

#: Kinds of program that discovery lists (as their ``discovery_name``, else their member). The
#: security probe is not among them: it stands in for svc-a and must never receive its traffic.
DISCOVERABLE = ("service", "gateway", "discovery-probe")
#: Folders of the state folder private to the workspace: databases and span files.
PRIVATE_FOLDERS = ("data", "traces")


class RuntimeError_(Exception):
    """The local runtime could not do what was asked; the message is one line."""


@dataclass(frozen=True)
class Program:
    name: str  # supervisor program name, e.g. "svc-a-1"
    member: str  # foundation member it runs as, e.g. "svc-a"
    kind: str  # service | gateway | index | catalog | monitoring | alerting | receiver | probe
    command: tuple[str, ...]
    port: int | None
    ready_path: str | None = None
    metrics_path: str | None = None
    discovery_name: str | None = None  # listed in discovery under this name (default: member)
    env: Mapping[str, str] = field(default_factory=dict)
    directory: Path | None = None
    stopwaitsecs: int = 30
    autorestart: bool = True

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}" if self.port else "–"


def http_status(
    port: int, path: str, *, headers: Mapping[str, str] | None = None, timeout: float = 2.0
) -> int:
    """The HTTP status of GET 127.0.0.1:port/path, or 0 when nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def http_json(port: int, path: str, *, timeout: float = 1.0) -> dict[str, object]:
    """GET a JSON object from 127.0.0.1:port/path; empty when nothing (or no JSON) answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def programs_path(state_dir: Path) -> Path:
    return state_dir / "runtime" / "programs.json"


def read_programs(state_dir: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(programs_path(state_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Programs:
    """The supervisor's programs in one state folder; ``host`` is where their listeners bind."""

    def __init__(self, state_dir: Path, supervisor: Supervisor, host: str) -> None:
        self.state_dir = state_dir
        self.supervisor = supervisor
        self.host = host

    def run(self, programs: Iterable[Program]) -> list[str]:
        """Start (or update) each program under the supervisor; returns the names that changed."""
        programs = list(programs)
        ours = self.our_pids()
        for p in programs:
            if p.port:
                check_collision(p.name, p.port, ours)
        for folder in PRIVATE_FOLDERS:
            (self.state_dir / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.state_dir / folder).chmod(0o700)
        self.record(programs)
        changed = []
        for p in programs:
            result = self.supervisor.add_program(
                p.name,
                p.command,
                env=p.env,
                directory=p.directory,
                stopsignal="TERM",
                stopwaitsecs=p.stopwaitsecs,
                autorestart=p.autorestart,
                startsecs=1,
                startretries=10,
            )
            if result.any:
                changed.append(p.name)
        return changed

    def record(self, programs: Iterable[Program]) -> None:
        """Remember what each program is (member, kind, port, health and metrics paths), for
        status, monitoring targets and the gates."""
        known = self.recorded()
        for p in programs:
            known[p.name] = {
                "member": p.member,
                "kind": p.kind,
                "port": p.port,
                "ready_path": p.ready_path,
                "metrics_path": p.metrics_path,
                "discovery_name": p.discovery_name,
            }
        write_atomic(programs_path(self.state_dir), json.dumps(known, indent=2, sort_keys=True).encode())

    def recorded(self) -> dict[str, dict[str, object]]:
        return read_programs(self.state_dir)

    def our_pids(self) -> set[int]:
        pids: set[int] = set()
        if self.supervisor.is_running():
            for status in self.supervisor.status():
                if status.pid:
                    pids |= process_tree(status.pid)
        return pids

    def names(self, *states: str) -> set[str]:
        """The programs the supervisor knows in one of ``states`` (every one when none is given)."""
        if not self.supervisor.is_running():
            return set()
        return {s.name for s in self.supervisor.status() if not states or s.state in states}

    def running_names(self) -> set[str]:
        return self.names("RUNNING")

    def live_names(self) -> set[str]:
        """Running, or past their start but not yet marked running."""
        return self.names("RUNNING", "STARTING", "BACKOFF")

    def metrics_ports(self) -> dict[str, int]:
        """Live programs that serve /metrics, with their ports."""
        live = self.live_names()
        return {
            name: int(str(info["port"]))
            for name, info in self.recorded().items()
            if info.get("metrics_path") and info.get("port") and name in live
        }

    def publish_instances(self) -> None:
        """Tell discovery which instances run: every recorded service/gateway/probe instance the
        supervisor runs goes into instances.json, the health checker's input."""
        live = self.live_names()
        instances: dict[str, list[dict[str, object]]] = {}
        for name, info in sorted(self.recorded().items()):
            if info.get("kind") in DISCOVERABLE and info.get("port") and name in live:
                instances.setdefault(str(info["discovery_name"] or info["member"]), []).append(
                    {
                        "id": name,
                        "host": self.host,
                        "port": info["port"],
                        "ready_path": info["ready_path"] or "/health/ready",
                    }
                )
        catalog.write_instances(self.state_dir, instances)

    def wait_started(self, *, timeout: float = 60.0) -> None:
        """Wait (bounded) until every program the supervisor is running or starting answers
        ready — after `invoke down`, a new supervisor starts every program again, and a gate must
        not probe one before it is ready."""
        live = self.live_names()
        programs = [
            Program(name, str(info["member"]), str(info["kind"]), (), int(str(info["port"])),
                    ready_path=str(info["ready_path"]))
            for name, info in self.recorded().items()
            if name in live and info.get("port") and info.get("ready_path")
        ]  # fmt: skip
        self.wait_ready(programs, timeout=timeout)

    def wait_ready(self, programs: Iterable[Program], *, timeout: float = 60.0) -> None:
        pending = {p.name: p for p in programs if p.port and p.ready_path}
        deadline = time.monotonic() + timeout
        while pending:
            for name, p in list(pending.items()):
                assert p.port is not None and p.ready_path is not None
                if http_status(p.port, p.ready_path, timeout=1.0) == 200:
                    del pending[name]
                    continue
                status = self.supervisor.program(name)
                if status is not None and status.state in ("FATAL", "EXITED"):
                    raise RuntimeError_(f"{name} did not start ({status.state}): see `invoke logs {name}`")
            if pending and time.monotonic() > deadline:
                names = ", ".join(sorted(pending))
                raise RuntimeError_(f"not ready within {timeout:.0f}s: {names} (see `invoke logs NAME`)")
            if pending:
                time.sleep(0.05)
