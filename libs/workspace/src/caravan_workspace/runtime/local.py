"""The embedded local runtime: every program of the system under one real supervisor.

Programs are derived from the declarations — the foundation model (tiers, ports, flows) and each
service's service.toml (instances, health paths) — never listed by hand. Each service runs from
its own virtualenv, built from its own project with caravan-commons from the workspace index;
every listener binds loopback on a port allocated from its tier's range; settings reach each
program as CARAVAN_* environment variables (the commons settings).

:class:`LocalRuntime` assembles the parts, one module each: identities, environments
(virtualenvs), databases, instances (service programs), programs (the supervisor's programs and
discovery) and monitoring (Prometheus' targets); it deploys and scales a service with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from caravan_workspace.foundation import Foundation, load_foundation
from caravan_workspace.registry import Context
from caravan_workspace.runtime import monitoring
from caravan_workspace.runtime.databases import Databases
from caravan_workspace.runtime.environments import Environments
from caravan_workspace.runtime.identities import Identities
from caravan_workspace.runtime.instances import Instances
from caravan_workspace.runtime.ports import PortBook
from caravan_workspace.runtime.programs import Program, Programs, RuntimeError_
from caravan_workspace.runtime.supervisor import Supervisor
from caravan_workspace.services import Service, load_services

GATEWAY = "gateway"


class LocalRuntime:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.services: dict[str, Service] = load_services(ctx.root)
        self.foundation: Foundation = load_foundation(ctx.root, self.services)
        self.ports = PortBook(ctx.state_dir, self.foundation)
        self.supervisor = Supervisor(ctx.state_dir)
        self.identities = Identities(ctx.state_dir, self.foundation, [GATEWAY, *self.services])
        self.environments = Environments(ctx)
        self.databases = Databases(ctx)
        self.programs = Programs(ctx.state_dir, self.supervisor, self.foundation.host)
        self.instances = Instances(
            ctx.state_dir,
            self.foundation,
            self.ports,
            identities=self.identities,
            environments=self.environments,
            databases=self.databases,
        )

    # The names the system tests and benchmarks read.
    @property
    def identity_dir(self) -> Path:
        return self.identities.dir

    def venv_dir(self, name: str) -> Path:
        return self.environments.dir(name)

    def database_url(self, service: Service) -> str:
        return self.databases.url(service)

    def service_programs(self, service: Service) -> list[Program]:
        return self.instances.programs(service)

    def recorded_programs(self) -> dict[str, dict[str, object]]:
        return self.programs.recorded()

    def running_names(self) -> set[str]:
        return self.programs.running_names()

    def supervisor_names(self) -> set[str]:
        """Every program the supervisor knows, whatever its state."""
        return self.programs.names()

    def metrics_ports(self) -> dict[str, int]:
        return self.programs.metrics_ports()

    # What every deploy ends with.
    def run(self, programs: Iterable[Program]) -> list[str]:
        """Start (or update) each program under the supervisor; returns the names that changed."""
        return self.programs.run(programs)

    def sync_monitoring(self) -> bool:
        """Rewrite Prometheus' target files from the running programs that serve metrics."""
        return monitoring.sync_targets(self.ctx.state_dir, self.programs)

    def deploy(self, service: Service, *, timeout: float = 60.0) -> list[str]:
        """Run the service's declared instances from its own virtualenv; returns what changed."""
        self.identities.provision()
        venv = self.environments.dir(service.name)
        rebuilt = self.environments.build(service.folder, service.name, venv)
        programs = self.instances.programs(service)
        declared = {p.name for p in programs}
        surplus = [
            name
            for name, info in self.programs.recorded().items()
            if info.get("kind") == "service" and info.get("member") == service.name and name not in declared
        ]
        for name in surplus:  # scaled down: stop and forget the extra instances
            self.supervisor.remove_program(name)
        self.ports.release(surplus)
        self.databases.migrate(service, venv / "bin" / "python")
        changed = self.programs.run(programs)
        if rebuilt:
            for p in programs:
                if p.name not in changed:
                    self.supervisor.restart(p.name)
                    changed.append(p.name)
        self.programs.publish_instances()
        self.programs.wait_ready(programs, timeout=timeout)
        self.programs.publish_instances()
        self.sync_monitoring()
        return changed + surplus

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
        self.instances.choose(service, count)
        return self.deploy(service, timeout=timeout)

    def running_service_programs(self) -> list[Program]:
        """Service instances the supervisor reports running (ports as allocated)."""
        running = self.programs.running_names()
        allocated = self.ports.allocated()
        return [
            p
            for service in self.services.values()
            for p in self.instances.programs(service)
            if p.name in running and p.name in allocated
        ]
