"""Service instances on the local runtime: how many of each service run (``invoke scale``'s
choice, else service.toml's), and the program of each instance with its settings — the commons
settings as CARAVAN_* environment variables."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from caravan_workspace.foundation import Foundation
from caravan_workspace.runtime import catalog
from caravan_workspace.runtime.databases import Databases
from caravan_workspace.runtime.environments import Environments
from caravan_workspace.runtime.identities import Identities
from caravan_workspace.runtime.ports import PortBook
from caravan_workspace.runtime.programs import Program
from caravan_workspace.services import Service
from caravan_workspace.state import write_atomic


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


class Instances:
    def __init__(
        self,
        state_dir: Path,
        foundation: Foundation,
        ports: PortBook,
        *,
        identities: Identities,
        environments: Environments,
        databases: Databases,
    ) -> None:
        self.state_dir = state_dir
        self.foundation = foundation
        self.ports = ports
        self.identities = identities
        self.environments = environments
        self.databases = databases
        self.scale_file = state_dir / "runtime" / "scale.json"

    def _chosen(self) -> dict[str, object]:
        try:
            chosen = json.loads(self.scale_file.read_text())
        except (OSError, ValueError):
            return {}
        return chosen if isinstance(chosen, dict) else {}

    def count(self, service: Service) -> int:
        """How many instances of ``service`` run: ``invoke scale``'s choice, else service.toml's."""
        chosen = self._chosen().get(service.name)
        if isinstance(chosen, int) and service.scaling.min <= chosen <= service.scaling.max:
            return chosen
        return service.scaling.instances

    def choose(self, service: Service, count: int) -> None:
        """Remember ``invoke scale``'s choice for ``service``."""
        document = {**self._chosen(), service.name: count}
        write_atomic(self.scale_file, json.dumps(document, indent=2, sort_keys=True).encode())

    def programs(self, service: Service) -> list[Program]:
        python = self.environments.dir(service.name) / "bin" / "python"
        digest = source_digest(service.folder)
        programs = []
        for i in range(1, self.count(service) + 1):
            name = f"{service.name}-{i}"
            port = self.ports.port_for(name, service.name)
            env = {
                "CARAVAN_SERVICE_NAME": service.name,
                "CARAVAN_SERVICE_VERSION": service_version(service),
                "CARAVAN_SOURCE_DIGEST": digest,
                "CARAVAN_HOST": self.foundation.host,
                "CARAVAN_PORT": str(port),
                "CARAVAN_INSTANCE_ID": name,
                "CARAVAN_DATABASE_URL": self.databases.url(service),
                "CARAVAN_TRACE_FILE": str(self.state_dir / "traces" / f"{name}.jsonl"),
                "CARAVAN_ACCESS_LOG": "true",  # a line per request, with its trace id
                **catalog.discovery_env(self.state_dir),
                "PYTHONUNBUFFERED": "1",
                **self.identities.env(service.name),
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
