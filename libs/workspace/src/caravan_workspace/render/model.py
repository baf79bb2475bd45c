"""What the renderers render: every deployable (the gateway and each service) with what all targets
need to agree on — image, port, health paths, scaling bounds, environment, upstreams, callers — read
from the one source: ``service.toml``, ``foundation/foundation.toml`` and one small file per
environment (``deploy/environments/<env>.toml``). Nomad jobs, Consul config entries and Kubernetes
manifests are all derived from :class:`Deployment`, so they cannot disagree with one another.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caravan_commons.identity import PUBLIC_KEYS_FILE
from caravan_workspace.foundation import ANY, Flow, Foundation, load_foundation
from caravan_workspace.runtime.gateway import policy_of
from caravan_workspace.services import Scaling, load_services

ENVIRONMENTS_DIR = Path("deploy") / "environments"
SECRETS_DIR = "/secrets"  # Nomad's task secrets dir; a projected Secret volume on Kubernetes
IDENTITY_KEY_FILE = "identity.key"
SECRET_KEY_FILE = "secret.key"
PORT = 8000  # every container listens here (CARAVAN_HOST=0.0.0.0)
GATEWAY = "gateway"
GATEWAY_FOLDER = Path("shared") / "gateway"
#: The gateway has no service.toml; its declaration lives here.
GATEWAY_SCALING = Scaling(min=1, max=4, instances=1)
GATEWAY_HEALTH = ("/health/live", "/health/ready")
#: A service's upstream is reached at 127.0.0.1:<port> through its Connect sidecar on Nomad.
UPSTREAM_BIND_BASE = 9100


class RenderError(Exception):
    """The source cannot be rendered; the message is one line naming the file."""


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    datacenters: tuple[str, ...]
    image_registry: str
    image_tag: str  # may hold "{version}"
    drain_s: int
    ingress_host: str
    database_cidr: str
    docs_url: str  # where the Nomad UI's links point (the repository's docs as published)
    runbook_url: str
    cpu: int
    memory: int
    target_cpu_percent: int
    evaluation_interval_s: int
    scale_down_window_s: int
    counts: dict[str, int]


_ENV_KEYS = {
    "name", "namespace", "datacenters", "image_registry", "image_tag", "drain_s", "ingress_host",
    "database_cidr", "links", "resources", "autoscaling", "counts",
}  # fmt: skip


def load_environment(root: Path, name: str) -> Environment:
    path = root / ENVIRONMENTS_DIR / f"{name}.toml"
    where = str(ENVIRONMENTS_DIR / f"{name}.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        known = ", ".join(environment_names(root)) or "none"
        raise RenderError(f"no environment {name!r} (known: {known})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RenderError(f"{where}: not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - _ENV_KEYS)
    if unknown:
        raise RenderError(f"{where}: unknown key {unknown[0]!r}")
    try:
        resources, scaling, links = raw["resources"], raw["autoscaling"], raw["links"]
        env = Environment(
            name=str(raw["name"]),
            namespace=str(raw["namespace"]),
            datacenters=tuple(str(d) for d in raw["datacenters"]),
            image_registry=str(raw["image_registry"]),
            image_tag=str(raw["image_tag"]),
            drain_s=int(raw["drain_s"]),
            ingress_host=str(raw["ingress_host"]),
            database_cidr=str(raw["database_cidr"]),
            docs_url=str(links["docs"]),
            runbook_url=str(links["runbook"]),
            cpu=int(resources["cpu"]),
            memory=int(resources["memory"]),
            target_cpu_percent=int(scaling["target_cpu_percent"]),
            evaluation_interval_s=int(scaling["evaluation_interval_s"]),
            scale_down_window_s=int(scaling["scale_down_window_s"]),
            counts={str(k): int(v) for k, v in raw.get("counts", {}).items()},
        )
    except KeyError as exc:
        raise RenderError(f"{where}: missing key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise RenderError(f"{where}: {exc}") from exc
    if env.name != name:
        raise RenderError(f"{where}: name {env.name!r} must be the file's name {name!r}")
    if not 0 < env.target_cpu_percent <= 100 or env.drain_s <= 0:
        raise RenderError(f"{where}: target_cpu_percent must be in 1..100 and drain_s positive")
    return env


def environment_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / ENVIRONMENTS_DIR).glob("*.toml"))


@dataclass(frozen=True)
class Permission:
    """One allowed (path, methods) of a flow; ``path`` None: every path."""

    path: str | None
    methods: tuple[str, ...] | None


@dataclass(frozen=True)
class Caller:
    """Who may call a deployable: ``permissions`` None means every method and path."""

    source: str
    permissions: tuple[Permission, ...] | None


@dataclass(frozen=True)
class Deployable:
    name: str
    title: str
    version: str
    folder: Path
    health_live: str
    health_ready: str
    scaling: Scaling
    upstreams: tuple[str, ...]  # deployables it calls (in the mesh)
    callers: tuple[Caller, ...]  # who may call it (foundation flows), sorted by source
    database: str | None  # its database member (svc-a-db), if it owns one
    env: dict[str, str]  # environment common to every target

    def image(self, env: Environment, tag: str | None = None) -> str:
        return f"{self.image_name(env)}:{tag or self.tag(env)}"

    def image_name(self, env: Environment) -> str:
        return f"{env.image_registry}/{self.name}"

    def tag(self, env: Environment) -> str:
        return env.image_tag.format(version=self.version)

    def count(self, env: Environment) -> int:
        return env.counts.get(self.name, self.scaling.instances)

    def upstream_port(self, upstream: str, order: list[str]) -> int:
        return UPSTREAM_BIND_BASE + order.index(upstream)


@dataclass(frozen=True)
class Deployment:
    """Every deployable of the system, in dependency order (a level's members need only earlier levels)."""

    deployables: dict[str, Deployable]
    levels: tuple[tuple[str, ...], ...]
    foundation: Foundation

    @property
    def order(self) -> list[str]:
        return [name for level in self.levels for name in level]

    def sorted_names(self) -> list[str]:
        return sorted(self.deployables)


def project_version(folder: Path) -> str:
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    return str(project.get("project", {}).get("version", "0.0.0"))


def _callers(foundation: Foundation, target: str) -> tuple[Caller, ...]:
    by_source: dict[str, list[Flow]] = {}
    for flow in foundation.flows:
        if flow.target in (target, ANY):
            by_source.setdefault(flow.source, []).append(flow)
    callers = []
    for source, flows in sorted(by_source.items()):
        if any(f.paths is None and f.methods is None for f in flows):
            callers.append(Caller(source, None))
            continue
        perms = [Permission(p, f.methods) for f in flows for p in (f.paths or (None,))]
        callers.append(Caller(source, tuple(perms)))
    return tuple(callers)


def levels_of(depends: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """Dependency levels: each level's members depend only on members of earlier levels."""
    done: set[str] = set()
    levels = []
    while len(done) < len(depends):
        level = sorted(n for n, deps in depends.items() if n not in done and set(deps) <= done)
        if not level:
            raise RenderError(f"dependency cycle among {sorted(set(depends) - done)}")
        levels.append(tuple(level))
        done |= set(level)
    return tuple(levels)


def load_deployment(root: Path) -> Deployment:
    services = load_services(root)
    foundation = load_foundation(root, services)
    deployables: dict[str, Deployable] = {}
    names = sorted([GATEWAY, *services])
    db_of = {owner: db for db, owner in foundation.databases.items()}
    for name in names:
        upstreams = tuple(
            sorted(
                {
                    f.target
                    for f in foundation.flows
                    if f.source == name and f.target in names and f.target != name
                }
            )
        )
        if name == GATEWAY:
            folder, title, health, scaling = (
                root / GATEWAY_FOLDER,
                "API gateway",
                GATEWAY_HEALTH,
                GATEWAY_SCALING,
            )
            routed = {s.name for s in services.values() if s.routes}
            env = {
                "CARAVAN_GATEWAY_ROUTES": _routes_json(services),
                # what its public OpenAPI document may list (as on the local runtime)
                "CARAVAN_GATEWAY_POLICY": json.dumps(policy_of(foundation, routed), sort_keys=True),
                "CARAVAN_API_KEYS_FILE": f"{SECRETS_DIR}/api-keys.json",
            }
        else:
            svc = services[name]
            folder, title, scaling = svc.folder, svc.title, svc.scaling
            health = (svc.health_live, svc.health_ready)
            # the service's own secret (svc-b derives order ids with it): one per deployable,
            # shared by all its instances, as the local runtime provisions it
            env = {"CARAVAN_SECRET_KEY_FILE": f"{SECRETS_DIR}/{SECRET_KEY_FILE}"}
            missing = set(svc.depends_on) - set(upstreams)
            if missing:
                raise RenderError(
                    f"{name}/service.toml: depends on {sorted(missing)} with no foundation flow"
                )
        deployables[name] = Deployable(
            name=name,
            title=title,
            version=project_version(folder),
            folder=folder,
            health_live=health[0],
            health_ready=health[1],
            scaling=scaling,
            upstreams=upstreams,
            callers=_callers(foundation, name),
            database=db_of.get(name),
            env={
                "CARAVAN_SERVICE_NAME": name,
                "CARAVAN_HOST": "0.0.0.0",
                "CARAVAN_PORT": str(PORT),
                "CARAVAN_DISCOVERY_BACKEND": "static",
                "CARAVAN_ACCESS_LOG": "true",
                "CARAVAN_IDENTITY_NAME": name,
                "CARAVAN_IDENTITY_KEY_FILE": f"{SECRETS_DIR}/{IDENTITY_KEY_FILE}",
                "CARAVAN_PUBLIC_KEYS_FILE": f"{SECRETS_DIR}/{PUBLIC_KEYS_FILE}",
                "CARAVAN_ALLOWED_CALLERS": _allowed_callers(foundation, name),
                "PYTHONUNBUFFERED": "1",
                **env,
            },
        )
    levels = levels_of({n: d.upstreams for n, d in deployables.items()})
    return Deployment(deployables, levels, foundation)


def _allowed_callers(foundation: Foundation, member: str) -> str:
    """What commons' identity middleware enforces (the local runtime passes the same)."""
    callers = foundation.callers_of(member)
    return json.dumps({k: list(v) if v else None for k, v in sorted(callers.items())})


def _routes_json(services: Any) -> str:
    return json.dumps({route: s.name for s in services.values() for route in s.routes}, sort_keys=True)


def upstream_env_name(upstream: str) -> str:
    """The static discovery variable of an upstream (caravan_commons.discovery.StaticResolver)."""
    return "CARAVAN_UPSTREAM_" + upstream.upper().replace("-", "_")
