"""The embedded local runtime: every program of the system under one real supervisor.

Programs are derived from the declarations — the foundation model (tiers, ports, flows) and each
service's service.toml (instances, health paths) — never listed by hand. Each service runs from
its own virtualenv, built from its own project with caravan-commons from the workspace index;
every listener binds loopback on a port allocated from its tier's range; settings reach each
program as CARAVAN_* environment variables (the commons settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from caravan_commons.identity import PUBLIC_KEYS_FILE, generate_identities
from caravan_workspace.runtime import index
from caravan_workspace.foundation import Foundation, load_foundation
from caravan_workspace.registry import Context
from caravan_workspace.runtime import catalog, monitoring
from caravan_workspace.runtime.ports import PortBook, check_collision, process_tree
from caravan_workspace.runtime.supervisor import Supervisor
from caravan_workspace.services import Service, load_services
from caravan_workspace.state import write_atomic

IDENTITY_DIR = "identity"
POSTGRES_DSN_ENV = "CARAVAN_RUNTIME_POSTGRES_DSN"
#: Prometheus job of each kind of program that serves /metrics.
JOBS = {
    "service": "services",
    "gateway": "gateway",
    "probe": "runtime",
    "catalog": "runtime",
    "receiver": "runtime",
}
#: Kinds of program that discovery lists (as their ``discovery_name``, else their member). The
#: security probe is not among them: it stands in for svc-a and must never receive its traffic.
DISCOVERABLE = ("service", "gateway", "discovery-probe")
GATEWAY = "gateway"


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


def service_version(service: Service) -> str:
    project = tomllib.loads((service.folder / "pyproject.toml").read_text(encoding="utf-8"))
    return str(project.get("project", {}).get("version", "0.0.0"))


def source_digest(folder: Path) -> str:
    """A digest of a project's source files: a service's instances carry it in their settings, so
    a deploy after a code change restarts them (their virtualenv installs the project editable)."""
    digest = hashlib.sha256()
    for path in sorted(
        p for p in (folder / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_programs(state_dir: Path) -> dict[str, dict[str, object]]:
    path = state_dir / "runtime" / "programs.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class LocalRuntime:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.services: dict[str, Service] = load_services(ctx.root)
        self.foundation: Foundation = load_foundation(ctx.root, self.services)
        self.ports = PortBook(ctx.state_dir, self.foundation)
        self.supervisor = Supervisor(ctx.state_dir)

    # ------------------------------------------------------------------ folders

    @property
    def identity_dir(self) -> Path:
        return self.ctx.state_dir / IDENTITY_DIR

    @property
    def runtime_dir(self) -> Path:
        return self.ctx.state_dir / "runtime"

    def venv_dir(self, service: str) -> Path:
        return self.ctx.state_dir / "venvs" / service

    # ------------------------------------------------------------------ provisioning

    def provision_identities(self) -> list[str]:
        """A key pair for the gateway and every service (0600 private keys); idempotent."""
        return generate_identities([GATEWAY, *self.services], self.identity_dir)

    def discovery_env(self) -> dict[str, str]:
        return {
            "CARAVAN_DISCOVERY_BACKEND": "local",
            "CARAVAN_DISCOVERY_CATALOG": str(catalog.catalog_path(self.ctx.state_dir)),
        }

    def known_identities(self) -> set[str]:
        """Every program name that has a private key (the gateway and the services)."""
        return {p.stem for p in self.identity_dir.glob("*.key")}

    def identity_env(self, member: str) -> dict[str, str]:
        callers = self.foundation.callers_of(member)
        return {
            "CARAVAN_IDENTITY_NAME": member,
            "CARAVAN_IDENTITY_KEY_FILE": str(self.identity_dir / f"{member}.key"),
            "CARAVAN_PUBLIC_KEYS_FILE": str(self.identity_dir / PUBLIC_KEYS_FILE),
            "CARAVAN_SECRET_KEY_FILE": str(self.identity_dir / f"{member}.secret"),
            "CARAVAN_ALLOWED_CALLERS": json.dumps(
                {k: list(v) if v else None for k, v in sorted(callers.items())}
            ),
        }

    # ------------------------------------------------------------------ service virtualenvs

    def venv_fingerprint(self, folder: Path) -> str:
        """What a service's virtualenv is built from: Python, its project (and lock), and the
        workspace's commons version — a new commons release rebuilds it, so it runs that release."""
        digest = hashlib.sha256(sys.version.encode())
        commons = self.ctx.root / "libs" / "commons" / "pyproject.toml"
        if commons.exists():
            version = tomllib.loads(commons.read_text(encoding="utf-8")).get("project", {}).get("version")
            digest.update(f"caravan-commons {version}".encode())
        for name in ("pyproject.toml", "uv.lock"):
            path = folder / name
            digest.update(name.encode() + (path.read_bytes() if path.exists() else b"-"))
        return digest.hexdigest()

    def ensure_venv(self, service: Service, *, test: bool = False) -> Path:
        """The service's virtualenv (``test``: with its test dependency group), rebuilt only when
        its project or lock changed; returns its Python."""
        venv = self.venv_dir(service.name + ("-test" if test else ""))
        self.build_venv(service.folder, service.name, venv, test=test)
        return venv / "bin" / "python"

    def build_venv(self, folder: Path, name: str, venv: Path, *, test: bool = False) -> bool:
        """Build ``venv`` from the project in ``folder`` (caravan-commons from the workspace index)
        unless it is current; True when it was (re)built."""
        stamp = venv / ".caravan-fingerprint"
        fingerprint = self.venv_fingerprint(folder)
        if stamp.exists() and stamp.read_text() == fingerprint and (venv / "bin" / "python").exists():
            return False
        self.ctx.progress(f"building the virtualenv of {name}{' (tests)' if test else ''}")
        env = index.uv_env(self.ctx)  # caravan-commons from the workspace index, named "workspace"
        uv = index.uv_bin()
        steps = [
            [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
             "-e", str(folder), *(["--group", str(folder / "pyproject.toml") + ":test"] if test else [])],
        ]  # fmt: skip
        for command in steps:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["uv failed"])[-1]
                raise RuntimeError_(f"cannot build the virtualenv of {name}: {last}")
        stamp.write_text(fingerprint)
        return True

    def database_url(self, service: Service) -> str:
        """The service's own database: a SQLite file in the state folder, or — when
        ``CARAVAN_RUNTIME_POSTGRES_DSN`` names a Postgres server (a role with CREATEDB) — a
        database of its own on that server, named after the state folder and the service (the
        service's migrate command creates it)."""
        dsn = os.environ.get(POSTGRES_DSN_ENV)
        if dsn:
            tag = hashlib.sha256(str(self.ctx.state_dir.resolve()).encode()).hexdigest()[:8]
            return urlunsplit(urlsplit(dsn)._replace(path=f"/caravan_{tag}_{service.package}"))
        return f"sqlite:///{self.ctx.state_dir / 'data' / service.name}.sqlite3"

    @staticmethod
    def migrate_module(service: Service) -> str | None:
        """The service's migrate command module (house convention), or None while it has none."""
        module = f"{service.package}.infrastructure.db.migrate"
        path = (service.folder / "src" / Path(*module.split("."))).with_suffix(".py")
        return module if path.exists() else None

    def migrate(self, service: Service, python: Path, database_url: str | None = None) -> bool:
        """Apply the service's migrations (``python -m <package>.infrastructure.db.migrate``) to
        ``database_url`` (default: its own database); False when the service has none yet."""
        module = self.migrate_module(service)
        if module is None:
            return False
        if database_url is None:
            (self.ctx.state_dir / "data").mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.ctx.state_dir / "data").chmod(0o700)
            database_url = self.database_url(service)
        self.ctx.progress(f"applying the migrations of {service.name}")
        done = subprocess.run(
            [str(python), "-m", module],
            cwd=service.folder,
            env={**os.environ, "CARAVAN_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            umask=0o077,  # a SQLite database it creates is the service's alone (0600)
        )
        if done.returncode != 0:
            last = ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]
            raise RuntimeError_(f"migrations of {service.name} failed: {last}")
        return True

    def deploy(self, service: Service, *, timeout: float = 60.0) -> list[str]:
        """Run the service's declared instances from its own virtualenv; returns what changed."""
        self.provision_identities()
        venv = self.venv_dir(service.name)
        rebuilt = self.build_venv(service.folder, service.name, venv)
        programs = self.service_programs(service)
        declared = {p.name for p in programs}
        surplus = [
            name
            for name, info in self.recorded_programs().items()
            if info.get("kind") == "service" and info.get("member") == service.name and name not in declared
        ]
        for name in surplus:  # scaled down: stop and forget the extra instances
            self.supervisor.remove_program(name)
        self.ports.release(surplus)
        self.migrate(service, venv / "bin" / "python")
        changed = self.run(programs)
        if rebuilt:
            for p in programs:
                if p.name not in changed:
                    self.supervisor.restart(p.name)
                    changed.append(p.name)
        self.publish_instances()
        self.wait_ready(programs, timeout=timeout)
        self.publish_instances()
        self.sync_monitoring()
        return changed + surplus

    # ------------------------------------------------------------------ programs

    # ------------------------------------------------------------------ scale

    @property
    def scale_file(self) -> Path:
        return self.runtime_dir / "scale.json"

    def instances(self, service: Service) -> int:
        """How many instances of ``service`` run: ``invoke scale``'s choice, else service.toml's."""
        try:
            chosen = json.loads(self.scale_file.read_text()).get(service.name)
        except (OSError, ValueError, AttributeError):
            chosen = None
        if isinstance(chosen, int) and service.scaling.min <= chosen <= service.scaling.max:
            return chosen
        return service.scaling.instances

    def scale(self, name: str, count: int, *, timeout: float = 60.0) -> list[str]:
        """Run ``count`` instances of service ``name`` (within its scaling bounds): start the
        missing ones, stop the surplus; discovery and the gateway follow. Returns what changed."""
        service = self.services.get(name)
        if service is None:
            raise RuntimeError_(f"no service {name!r} (services: {', '.join(sorted(self.services))})")
        low, high = service.scaling.min, service.scaling.max
        if not low <= count <= high:
            raise RuntimeError_(
                f"{name} scales between {low} and {high} instances (service.toml), not {count}"
            )
        if not self.supervisor.is_running() or f"{name}-1" not in self.supervisor_names():
            raise RuntimeError_(f"{name} is not running here: bring its stage up first (invoke up)")
        try:
            chosen = json.loads(self.scale_file.read_text())
        except (OSError, ValueError):
            chosen = {}
        write_atomic(self.scale_file, json.dumps({**chosen, name: count}, indent=2, sort_keys=True).encode())
        return self.deploy(service, timeout=timeout)

    def service_programs(self, service: Service) -> list[Program]:
        python = self.venv_dir(service.name) / "bin" / "python"
        digest = source_digest(service.folder)
        programs = []
        for i in range(1, self.instances(service) + 1):
            name = f"{service.name}-{i}"
            port = self.ports.port_for(name, service.name)
            env = {
                "CARAVAN_SERVICE_NAME": service.name,
                "CARAVAN_SERVICE_VERSION": service_version(service),
                "CARAVAN_SOURCE_DIGEST": digest,
                "CARAVAN_HOST": self.foundation.host,
                "CARAVAN_PORT": str(port),
                "CARAVAN_INSTANCE_ID": name,
                "CARAVAN_DATABASE_URL": self.database_url(service),
                "CARAVAN_TRACE_FILE": str(self.ctx.state_dir / "traces" / f"{name}.jsonl"),
                "CARAVAN_ACCESS_LOG": "true",  # a line per request, with its trace id
                **self.discovery_env(),
                "PYTHONUNBUFFERED": "1",
                **self.identity_env(service.name),
            }
            programs.append(
                Program(
                    name=name,
                    member=service.name,
                    kind="service",
                    command=(str(python), "-m", service.package),
                    port=port,
                    ready_path=service.health_ready,
                    metrics_path="/metrics",
                    env=env,
                    directory=service.folder,
                )
            )
        return programs

    def running_service_programs(self) -> list[Program]:
        """Service instances the supervisor reports running (ports as allocated)."""
        if not self.supervisor.is_running():
            return []
        running = {s.name for s in self.supervisor.status() if s.state == "RUNNING"}
        allocated = self.ports.allocated()
        return [
            p
            for service in self.services.values()
            for p in self.service_programs(service)
            if p.name in running and p.name in allocated
        ]

    def publish_instances(self) -> None:
        """Tell discovery which instances run: every recorded service/gateway/probe instance the
        supervisor runs goes into instances.json, the health checker's input."""
        running = self.running_names() | self.starting_names()
        instances: dict[str, list[dict[str, object]]] = {}
        for name, info in sorted(self.recorded_programs().items()):
            if info.get("kind") in DISCOVERABLE and info.get("port") and name in running:
                instances.setdefault(str(info["discovery_name"] or info["member"]), []).append(
                    {
                        "id": name,
                        "host": self.foundation.host,
                        "port": info["port"],
                        "ready_path": info["ready_path"] or "/health/ready",
                    }
                )
        catalog.write_instances(self.ctx.state_dir, instances)

    def our_pids(self) -> set[int]:
        pids: set[int] = set()
        if self.supervisor.is_running():
            for status in self.supervisor.status():
                if status.pid:
                    pids |= process_tree(status.pid)
        return pids

    def run(self, programs: Iterable[Program]) -> list[str]:
        """Start (or update) each program under the supervisor; returns the names that changed."""
        programs = list(programs)
        ours = self.our_pids()
        for p in programs:
            if p.port:
                check_collision(p.name, p.port, ours)
        for folder in ("data", "traces"):  # databases and span files: private to the workspace
            (self.ctx.state_dir / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.ctx.state_dir / folder).chmod(0o700)
        self.record_programs(programs)
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

    def record_programs(self, programs: Iterable[Program]) -> None:
        """Remember what each program is (member, kind, port, health and metrics paths), for
        status, monitoring targets and the gates."""
        path = self.runtime_dir / "programs.json"
        known = self.recorded_programs()
        for p in programs:
            known[p.name] = {
                "member": p.member,
                "kind": p.kind,
                "port": p.port,
                "ready_path": p.ready_path,
                "metrics_path": p.metrics_path,
                "discovery_name": p.discovery_name,
            }
        write_atomic(path, json.dumps(known, indent=2, sort_keys=True).encode())

    def recorded_programs(self) -> dict[str, dict[str, object]]:
        return read_programs(self.ctx.state_dir)

    def jobs(self) -> list[str]:
        return sorted(set(JOBS.values()))

    def metrics_ports(self) -> dict[str, int]:
        """Live programs (running, or past their start but not yet marked running) that serve
        /metrics, with their ports."""
        running = self.running_names() | self.starting_names()
        return {
            name: int(str(info["port"]))
            for name, info in self.recorded_programs().items()
            if info.get("metrics_path") and info.get("port") and name in running
        }

    def running_names(self) -> set[str]:
        if not self.supervisor.is_running():
            return set()
        return {s.name for s in self.supervisor.status() if s.state == "RUNNING"}

    def supervisor_names(self) -> set[str]:
        """Every program the supervisor knows, whatever its state."""
        if not self.supervisor.is_running():
            return set()
        return {s.name for s in self.supervisor.status()}

    def starting_names(self) -> set[str]:
        if not self.supervisor.is_running():
            return set()
        return {s.name for s in self.supervisor.status() if s.state in ("STARTING", "BACKOFF")}

    def sync_monitoring(self) -> bool:
        """Rewrite Prometheus' target files from the running programs that serve metrics."""
        programs = self.recorded_programs()
        targets = [
            monitoring.Target(
                job=JOBS.get(str(programs[name]["kind"]), "runtime"),
                program=name,
                member=str(programs[name]["member"]),
                port=port,
            )
            for name, port in self.metrics_ports().items()
        ]
        return monitoring.write_targets(self.ctx.state_dir, targets, self.jobs())

    def wait_started(self, *, timeout: float = 60.0) -> None:
        """Wait (bounded) until every program the supervisor is running or starting answers
        ready — after `invoke down`, a new supervisor starts every program again, and a gate must
        not probe one before it is ready."""
        live = self.running_names() | self.starting_names()
        programs = [
            Program(name, str(info["member"]), str(info["kind"]), (), int(str(info["port"])),
                    ready_path=str(info["ready_path"]))
            for name, info in self.recorded_programs().items()
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
